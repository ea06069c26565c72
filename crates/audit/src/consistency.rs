//! Whether a new checkpoint extends one already trusted: what the monitor
//! and the witness both decide before they move on.

use aidledger_tlog::{Checkpoint, Hash, verify_consistency};

use crate::failure::{Failure, reason};

/// Checks that `new` is an append-only extension of `old` (RFC 9162
/// 2.1.4.2), given the consistency proof from `old.size` to `new.size`.
///
/// # Errors
///
/// [`reason::ORIGIN_MISMATCH`], [`reason::ROLLBACK`] (smaller than trusted),
/// [`reason::FORK`] (same size, other root) or [`reason::INCONSISTENT`].
pub fn check_extends(old: &Checkpoint, new: &Checkpoint, proof: &[Hash]) -> Result<(), Failure> {
    if old.origin != new.origin {
        return Err(Failure::of(
            reason::ORIGIN_MISMATCH,
            format!("checkpoint of {:?}, not of {:?}", new.origin, old.origin),
        ));
    }
    if new.size < old.size {
        return Err(Failure::of(
            reason::ROLLBACK,
            format!(
                "checkpoint of size {} is smaller than the trusted size {}",
                new.size, old.size
            ),
        ));
    }
    if new.size == old.size {
        if new.root != old.root {
            return Err(Failure::of(
                reason::FORK,
                format!(
                    "two checkpoints of size {} with different roots: the ledger shows a split view",
                    new.size
                ),
            ));
        }
        return Ok(());
    }
    if old.size == 0 {
        // Every tree extends the empty one; RFC 9162 has no proof for it.
        return Ok(());
    }
    verify_consistency(old.size, new.size, &old.root, &new.root, proof).map_err(|error| {
        Failure::of(
            reason::INCONSISTENT,
            format!(
                "checkpoint of size {} does not extend the trusted one of size {}: {error}",
                new.size, old.size
            ),
        )
    })
}
