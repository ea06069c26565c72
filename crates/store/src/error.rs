//! Store errors, shaped by what the caller does with them: a refused request
//! changed nothing and the store stays usable; an I/O failure or corruption
//! leaves the durable state ambiguous, so the caller stops and recovers from
//! storage on restart.

/// An error from a [`LogStore`](crate::LogStore).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The request was refused before anything was written. The store is
    /// unchanged, now and after a restart, and still usable. For an append it
    /// means the caller's idea of the log disagrees with the store (a bug or
    /// a broken single-writer discipline), never that storage failed.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),

    /// Storage failed (I/O, fsync, lock, or the database refused to work).
    /// The outcome of the failed write is ambiguous: a batch is never partly
    /// applied, but it may be durable even though `Err` was returned. Stop
    /// writing and recover by reopening the store and reading its state.
    #[error("{context}")]
    Io {
        /// What the store was doing, e.g. "appending batch at seq 4096".
        context: String,
        /// The underlying failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// Stored data contradicts the store's own invariants (a checksum
    /// failure, a gap in the entries table, an index out of step with the
    /// entries). Not recoverable by retrying; an operator must look.
    #[error("store corrupt while {context}: {detail}")]
    Corrupt {
        /// What the store was doing.
        context: String,
        /// What was found.
        detail: String,
    },
}

impl StoreError {
    /// The refusal, if the request was refused (nothing changed).
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            StoreError::Refused(refusal) => Some(refusal),
            StoreError::Io { .. } | StoreError::Corrupt { .. } => None,
        }
    }

    /// True if the request was refused and the store is unchanged; false if
    /// storage failed and the state must be recovered.
    pub fn is_refused(&self) -> bool {
        self.refusal().is_some()
    }

    pub(crate) fn io(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        StoreError::Io {
            context: context.into(),
            source: source.into(),
        }
    }

    pub(crate) fn corrupt(context: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Corrupt {
            context: context.into(),
            detail: detail.into(),
        }
    }
}

/// Why a request was refused. Every refusal leaves the store unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The batch has no entries.
    #[error("empty batch")]
    EmptyBatch,

    /// The batch exceeds [`BATCH_ENTRIES_MAX`](crate::BATCH_ENTRIES_MAX) or
    /// [`BATCH_HASHES_MAX`](crate::BATCH_HASHES_MAX).
    #[error("batch too large: {entries} entries, {hashes} hashes")]
    BatchTooLarge {
        /// Entries in the batch.
        entries: usize,
        /// Hashes in the batch.
        hashes: usize,
    },

    /// `first_seq` is not the store's size.
    #[error("batch starts at seq {got}, store size is {expected}")]
    SeqMismatch {
        /// The store's size.
        expected: u64,
        /// The batch's `first_seq`.
        got: u64,
    },

    /// `first_hash_index` is not the store's stored-hash count.
    #[error("batch hashes start at index {got}, store holds {expected} hashes")]
    HashIndexMismatch {
        /// The store's stored-hash count.
        expected: u64,
        /// The batch's `first_hash_index`.
        got: u64,
    },

    /// An entry exceeds [`ENTRY_BYTES_MAX`](crate::ENTRY_BYTES_MAX).
    #[error("entry at seq {seq} is {bytes} bytes, over the limit")]
    EntryTooLarge {
        /// Seq the entry would have had.
        seq: u64,
        /// Its length.
        bytes: usize,
    },

    /// An event id is empty or exceeds
    /// [`EVENT_ID_BYTES_MAX`](crate::EVENT_ID_BYTES_MAX).
    #[error("event id of entry at seq {seq} is {bytes} bytes, outside 1..=limit")]
    EventIdInvalid {
        /// Seq the entry would have had.
        seq: u64,
        /// The event id's length.
        bytes: usize,
    },

    /// An event id is already indexed, or repeated within the batch.
    #[error("event id {event_id:?} already indexed at seq {existing_seq}")]
    DuplicateEventId {
        /// The event id.
        event_id: String,
        /// The seq it is (or, within the batch, would have been) indexed at.
        existing_seq: u64,
    },

    /// A mirror's file keeps no event-id index
    /// ([`RedbStore::open_mirror`](crate::RedbStore::open_mirror)): it
    /// cannot look one up, nor be opened as a store that must.
    #[error("this store is a mirror and keeps no event-id index")]
    EventIdsNotKept,

    /// A stored-hash index that is not stored was read.
    #[error("hash index {index} not stored, store holds {hash_count} hashes")]
    HashNotStored {
        /// The index asked for.
        index: u64,
        /// The stored-hash count.
        hash_count: u64,
    },

    /// More indexes than [`READ_HASHES_MAX`](crate::READ_HASHES_MAX) in one
    /// read.
    #[error("{requested} hash indexes in one read, over the limit")]
    TooManyHashIndexes {
        /// Indexes asked for.
        requested: usize,
    },

    /// A checkpoint size below the latest checkpoint's.
    #[error("checkpoint size {size} is below the latest checkpoint size {latest}")]
    CheckpointSizeDecreased {
        /// The latest checkpoint's size.
        latest: u64,
        /// The size offered.
        size: u64,
    },

    /// A checkpoint size above the number of stored entries.
    #[error("checkpoint size {size} is beyond the log size {log_size}")]
    CheckpointBeyondLog {
        /// The size offered.
        size: u64,
        /// The store's size.
        log_size: u64,
    },

    /// A checkpoint note exceeds
    /// [`CHECKPOINT_NOTE_BYTES_MAX`](crate::CHECKPOINT_NOTE_BYTES_MAX).
    #[error("checkpoint note is {bytes} bytes, over the limit")]
    CheckpointNoteTooLarge {
        /// The note's length.
        bytes: usize,
    },

    /// A cosignature of a checkpoint size for which no checkpoint is recorded.
    #[error("no checkpoint is recorded for size {size} to cosign")]
    CosignedCheckpointMissing {
        /// The size the cosignature is for.
        size: u64,
    },

    /// A witness id that is empty or over
    /// [`WITNESS_ID_BYTES_MAX`](crate::WITNESS_ID_BYTES_MAX).
    #[error("witness id is {bytes} bytes, outside 1..=limit")]
    WitnessIdInvalid {
        /// Its length.
        bytes: usize,
    },

    /// A cosignature line that is empty or over
    /// [`COSIGNATURE_LINE_BYTES_MAX`](crate::COSIGNATURE_LINE_BYTES_MAX).
    #[error("cosignature line for size {size} is {bytes} bytes, outside 1..=limit")]
    CosignatureLineInvalid {
        /// The size the cosignature is for.
        size: u64,
        /// Its length.
        bytes: usize,
    },

    /// One more witness than
    /// [`COSIGNATURES_PER_CHECKPOINT_MAX`](crate::COSIGNATURES_PER_CHECKPOINT_MAX)
    /// for one checkpoint.
    #[error("the checkpoint of size {size} already has the most cosignatures kept")]
    TooManyCosignatures {
        /// The checkpoint's size.
        size: u64,
    },

    /// A test hook asked to overwrite an entry that is not stored.
    #[error("no entry at seq {seq} to overwrite, store size is {size}")]
    EntryNotStored {
        /// The seq asked for.
        seq: u64,
        /// The store's size.
        size: u64,
    },
}
