//! What an audit found wrong: the first failing seq (when the failure is in
//! an entry) and a stable, machine-readable reason.

use std::fmt;

use aidledger_ledger::{ChainError, Rejection};
use serde::Serialize;

/// Stable reasons for failures that are not one of the ledger's own
/// refusals. A failing entry that breaks a rule of SPEC §7, or whose
/// signature does not verify, carries the ledger's reason instead
/// (`BAD_SIGNATURE`, `KEY_REVOKED`, `INSUFFICIENT_BALANCE`, ...), so the
/// auditor and the ledger name a refusal the same way.
pub mod reason {
    /// SPEC §4: the entry bytes are not a `LedgerEntry`.
    pub const UNDECODABLE_ENTRY: &str = "UNDECODABLE_ENTRY";
    /// SPEC §4: a missing or malformed field of the entry.
    pub const MALFORMED_ENTRY: &str = "MALFORMED_ENTRY";
    /// SPEC §4: the entry's `seq` is not the next number (a gap, a removed
    /// or reordered entry).
    pub const WRONG_SEQ: &str = "WRONG_SEQ";
    /// SPEC §4: `prev_hash` is not the leaf hash of the previous entry.
    pub const BROKEN_CHAIN: &str = "BROKEN_CHAIN";
    /// SPEC §4: `recorded_at` goes back in time.
    pub const TIME_WENT_BACK: &str = "TIME_WENT_BACK";
    /// SPEC §4: the entry is over 65,535 bytes.
    pub const ENTRY_TOO_LARGE: &str = "ENTRY_TOO_LARGE";
    /// SPEC §5: the checkpoint is malformed or not signed by the pinned key.
    pub const CHECKPOINT_INVALID: &str = "CHECKPOINT_INVALID";
    /// SPEC §4: the entries do not hash to the checkpoint's root.
    pub const ROOT_MISMATCH: &str = "ROOT_MISMATCH";
    /// The checkpoint covers more entries than were served.
    pub const LOG_TOO_SHORT: &str = "LOG_TOO_SHORT";
    /// Fewer than the required known witnesses cosigned the checkpoint.
    pub const WITNESS_QUORUM: &str = "WITNESS_QUORUM";
    /// Two checkpoints of one size with different roots: a split view.
    pub const FORK: &str = "FORK";
    /// A newer checkpoint that is smaller than one already trusted.
    pub const ROLLBACK: &str = "ROLLBACK";
    /// The consistency proof between two checkpoints does not verify.
    pub const INCONSISTENT: &str = "INCONSISTENT";
    /// A checkpoint of another log.
    pub const ORIGIN_MISMATCH: &str = "ORIGIN_MISMATCH";
    /// An inclusion proof does not lead to the checkpoint's root.
    pub const PROOF_INVALID: &str = "PROOF_INVALID";
    /// The archive file is not in the format, or is cut short.
    pub const ARCHIVE_MALFORMED: &str = "ARCHIVE_MALFORMED";
}

/// The first thing found wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct Failure {
    /// The first failing entry, when the failure is in an entry; `None` for
    /// a failure of a checkpoint, a proof or an archive as a whole.
    pub seq: Option<u64>,
    /// Stable reason, see [`reason`].
    pub reason: &'static str,
    /// What exactly is wrong, for people.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "entry {seq}: {}: {}", self.reason, self.detail),
            None => write!(f, "{}: {}", self.reason, self.detail),
        }
    }
}

impl Failure {
    /// A failure of entry `seq`.
    pub fn at(seq: u64, reason: &'static str, detail: impl Into<String>) -> Self {
        Failure {
            seq: Some(seq),
            reason,
            detail: detail.into(),
        }
    }

    /// A failure of something other than one entry.
    pub fn of(reason: &'static str, detail: impl Into<String>) -> Self {
        Failure {
            seq: None,
            reason,
            detail: detail.into(),
        }
    }

    /// Entry `seq` was refused by the rules or its signature.
    pub fn rejected(seq: u64, rejection: &Rejection) -> Self {
        Failure::at(seq, rejection.reason.as_str(), rejection.detail.clone())
    }

    /// The entry stream broke SPEC §4.
    pub fn chain(error: &ChainError) -> Self {
        let reason = match error {
            ChainError::Undecodable { .. } => reason::UNDECODABLE_ENTRY,
            ChainError::WrongSeq { .. } => reason::WRONG_SEQ,
            ChainError::BrokenLink { .. } => reason::BROKEN_CHAIN,
            ChainError::TimeWentBack { .. } => reason::TIME_WENT_BACK,
            ChainError::TooLarge { .. } => reason::ENTRY_TOO_LARGE,
            _ => reason::MALFORMED_ENTRY,
        };
        Failure::at(error.seq(), reason, error.to_string())
    }
}
