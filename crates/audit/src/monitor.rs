//! The monitor: from a trusted checkpoint (and the auditor that verified
//! the log up to it), moves to each newer checkpoint only if it extends the
//! trusted one (a verified consistency proof) and the new entries replay
//! cleanly and hash to its root.
//!
//! Any other answer is an alarm: two roots for one size (`FORK`), a smaller
//! size (`ROLLBACK`), a failing proof (`INCONSISTENT`), a gap (`WRONG_SEQ`),
//! a rewritten entry (`BROKEN_CHAIN` at the first new entry, or its own
//! signature or rule failure), or entries that do not hash to the new root.

use aidledger_tlog::{Checkpoint, Hash};

use crate::auditor::{LogAuditor, verify_note};
use crate::consistency::check_extends;
use crate::failure::Failure;
use crate::quorum::WitnessQuorum;

/// A monitor's trusted state.
#[derive(Debug)]
pub struct Monitor {
    auditor: LogAuditor,
    trusted: Checkpoint,
    note: String,
    quorum: Option<WitnessQuorum>,
}

impl Monitor {
    /// A monitor that trusts `checkpoint` (with its `note`), the
    /// checkpoint `auditor` verified last.
    ///
    /// # Panics
    ///
    /// If the auditor is not exactly at the checkpoint's size.
    pub fn new(
        auditor: LogAuditor,
        checkpoint: Checkpoint,
        note: String,
        quorum: Option<WitnessQuorum>,
    ) -> Self {
        assert_eq!(
            auditor.size(),
            checkpoint.size,
            "the auditor is at the checkpoint"
        );
        Monitor {
            auditor,
            trusted: checkpoint,
            note,
            quorum,
        }
    }

    /// The trusted checkpoint.
    pub fn trusted(&self) -> &Checkpoint {
        &self.trusted
    }

    /// Its note.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// Checks a newly served checkpoint: its signature, the witness quorum,
    /// and, at the trusted size, that its root is the trusted one.
    /// Returns it when it is newer and must be caught up with.
    ///
    /// # Errors
    ///
    /// `CHECKPOINT_INVALID`, `WITNESS_QUORUM`, `ROLLBACK` or `FORK`.
    pub fn observe(&self, note: &str) -> Result<Option<Checkpoint>, Failure> {
        let checkpoint = verify_note(self.auditor.log_verifier(), note)?;
        if let Some(quorum) = &self.quorum {
            quorum.check(note)?;
        }
        if checkpoint.size <= self.trusted.size {
            check_extends(&self.trusted, &checkpoint, &[])?;
            return Ok(None);
        }
        Ok(Some(checkpoint))
    }

    /// Moves to `checkpoint` (from [`Self::observe`]), given the consistency
    /// proof from the trusted size and the new entries, in order.
    ///
    /// # Errors
    ///
    /// `INCONSISTENT`, an entry's failure, `LOG_TOO_SHORT` or
    /// `ROOT_MISMATCH`. The monitor must then stop: its auditor is
    /// poisoned.
    pub fn advance(
        &mut self,
        note: &str,
        checkpoint: &Checkpoint,
        proof: &[Hash],
        entries: Vec<impl Into<bytes::Bytes>>,
    ) -> Result<(), Failure> {
        check_extends(&self.trusted, checkpoint, proof)?;
        self.auditor.push(entries)?;
        let verified = self.auditor.check_checkpoint(note)?;
        assert_eq!(&verified, checkpoint, "observe verified the same note");
        self.trusted = verified;
        self.note = note.to_owned();
        Ok(())
    }
}
