//! Fault injection for appends: where in an append a test wants storage to
//! fail. Both implementations stop at the same points, so one fault table
//! covers the in-memory double and the real redb transaction.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Where an injected fault makes an append fail. Every point but
/// [`AfterCommit`](Self::AfterCommit) is before the commit point, so the
/// failed append must leave no trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppendFault {
    /// Before anything of the batch is written.
    BeforeWrite,
    /// After the first `n` entries (and their event ids) are written. An `n`
    /// at or past the batch length fails after all entries, before any hash.
    AfterEntries(usize),
    /// After all entries and the first `n` hashes are written. An `n` at or
    /// past the hash count fails just before the commit.
    AfterHashes(usize),
    /// After everything is written, just before the commit.
    BeforeCommit,
    /// After the commit: the batch is durable and visible, yet the append
    /// returns an I/O error, as when a commit's fsync result is lost. Models
    /// the ambiguous outcome callers must recover from.
    AfterCommit,
}

/// The error an injected fault fails with, as the source of a
/// [`StoreError::Io`](crate::StoreError::Io), so a test can tell it from a
/// real failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("injected fault {0:?}")]
pub struct InjectedFault(pub AppendFault);

/// Faults queued for the next appends, one per append, in order.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    queue: Mutex<VecDeque<AppendFault>>,
}

impl FaultQueue {
    pub(crate) fn push(&self, fault: AppendFault) {
        self.lock().push_back(fault);
    }

    /// The fault for the append now starting, if one is queued.
    pub(crate) fn take(&self) -> Option<AppendFault> {
        self.lock().pop_front()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<AppendFault>> {
        // The queue is a plain list; a panic while holding it cannot leave it
        // half-updated, so a poisoned lock is still safe to use.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// After how many of a batch's `len` entries `fault` fires, if it fires
/// among the entries.
pub(crate) fn stop_in_entries(fault: Option<AppendFault>, len: usize) -> Option<usize> {
    match fault {
        Some(AppendFault::AfterEntries(n)) => Some(n.min(len)),
        _ => None,
    }
}

/// After how many of a batch's `len` hashes `fault` fires, if it fires among
/// the hashes.
pub(crate) fn stop_in_hashes(fault: Option<AppendFault>, len: usize) -> Option<usize> {
    match fault {
        Some(AppendFault::AfterHashes(n)) => Some(n.min(len)),
        _ => None,
    }
}
