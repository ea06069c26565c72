//! `aidledger-store`: the durable log of the ledger, and the only crate that
//! touches disk.
//!
//! It keeps what it is given, verbatim: entry bytes, the event id each entry
//! is indexed under, the Merkle stored hashes the caller computed for them,
//! and signed checkpoint notes. This is the ledger's ground state; everything
//! else is derived from it and can be rebuilt.
//!
//! **Architecture Invariant:** this crate knows nothing about events, rules,
//! Merkle math, signatures or gRPC. It never decodes an entry and never
//! hashes one. Whether the stored hashes agree with the stored entries is
//! checked by the ledger at start-up, against a signed checkpoint; this crate
//! only promises to give back exactly what it acknowledged.
//!
//! Two implementations of [`LogStore`]:
//! - [`RedbStore`]: embedded redb file, one write transaction per batch,
//!   fsync'd on commit. The production store.
//! - [`MemStore`]: in memory, same semantics, with fault hooks
//!   ([`AppendFault`]) for tests of the crates above.
//! - `PgStore` (feature `postgres`): a PostgreSQL database, one
//!   transaction per batch, for a ledger whose storage outlives its
//!   machine.

mod error;
mod fault;
mod mem;
#[cfg(feature = "postgres")]
mod pg_store;
mod redb_store;

#[cfg(test)]
mod tests;

pub use error::{Refusal, StoreError};
pub use fault::{AppendFault, InjectedFault};
pub use mem::MemStore;
#[cfg(all(feature = "postgres", feature = "test-util"))]
pub use pg_store::test_database;
#[cfg(feature = "postgres")]
pub use pg_store::{PgStore, Writer};
pub use redb_store::RedbStore;

/// A 32-byte Merkle hash, as computed by the caller. Plain bytes, so this
/// crate does not depend on the tlog crate.
pub type Hash = [u8; 32];

/// Largest entry the store accepts, in bytes.
// SPEC §4: "An entry is at most 65,535 bytes (the C2SP entry-bundle limit)."
// The ledger refuses larger submissions first; this is the backstop that
// keeps an oversized entry out of the ground state.
pub const ENTRY_BYTES_MAX: usize = 65_535;

/// Most entries in one [`AppendBatch`]. Bounds the memory of one write
/// transaction (at most 4096 x 64 KiB = 256 MiB) while leaving headroom
/// above the group-commit sizes the ledger uses (up to 1024).
pub const BATCH_ENTRIES_MAX: usize = 4096;

/// Most stored hashes in one [`AppendBatch`]. In the tlog stored-hash layout
/// n appended entries add at most 2n + 63 hashes (2n minus the change in the
/// popcount of the tree size); the store does no Merkle math, it only bounds
/// the batch.
pub const BATCH_HASHES_MAX: usize = 2 * BATCH_ENTRIES_MAX + 64;

/// Longest event id, in bytes. Event ids are UUIDs (36 bytes, SPEC §7); the
/// bound keeps keys of the event-id index small.
pub const EVENT_ID_BYTES_MAX: usize = 128;

/// Most entries returned by one [`LogStore::entries`] call. Large enough that
/// reading 1M entries at start-up takes ~250 read transactions, small enough
/// that one page stays bounded (at most 4096 x 64 KiB).
pub const ENTRIES_PAGE_MAX: usize = 4096;

/// Most indexes in one [`LogStore::read_hashes`] call. A proof needs O(log n)
/// hashes (at most 2 x 64); a tile needs 256. The bound keeps one call from
/// pinning a read transaction for long.
pub const READ_HASHES_MAX: usize = 4096;

/// Longest checkpoint note, in bytes. A signed note with a few witness
/// cosignatures is well under 1 KiB.
pub const CHECKPOINT_NOTE_BYTES_MAX: usize = 16 * 1024;

/// Most witness cosignatures kept for one checkpoint: the ledger accepts
/// them only from the witnesses it is configured with, and this bounds the
/// note it serves (32 lines of at most [`COSIGNATURE_LINE_BYTES_MAX`] stay
/// far below [`CHECKPOINT_NOTE_BYTES_MAX`]).
pub const COSIGNATURES_PER_CHECKPOINT_MAX: usize = 32;

/// Longest cosignature line, in bytes: `— <name> <base64>` with a 255-byte
/// name and a 76-byte timestamped signature is under 400.
pub const COSIGNATURE_LINE_BYTES_MAX: usize = 512;

/// Longest witness id (`<name>+<key id>`), in bytes.
pub const WITNESS_ID_BYTES_MAX: usize = 300;

/// Most cosignature rows [`LogStore::latest_cosigned`] reads before it gives
/// up: bounds one read transaction.
pub const COSIGNED_SCAN_ROWS_MAX: usize = 65_536;

/// One group-committed batch of consecutive entries.
#[derive(Debug, Clone)]
pub struct AppendBatch {
    /// Seq of the first entry; must equal the store's current size.
    pub first_seq: u64,
    /// The entries, with consecutive seqs `first_seq..`.
    pub entries: Vec<NewEntry>,
    /// Stored-hash index where `hashes` start; must equal the store's current
    /// stored-hash count.
    pub first_hash_index: u64,
    /// Merkle stored hashes (Go sumdb/tlog layout) produced by these entries,
    /// contiguous.
    pub hashes: Vec<Hash>,
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// The entry bytes, stored and served verbatim.
    pub bytes: Vec<u8>,
    /// The event id the entry is indexed under; unique in the store.
    pub event_id: String,
}

/// The durable log: entries, their event-id index, Merkle stored hashes and
/// signed checkpoints.
///
/// **Durability.** When [`append`](Self::append) or
/// [`put_checkpoint`](Self::put_checkpoint) returns `Ok`, what it wrote is on
/// stable storage (fsync'd) and survives a crash or power loss.
///
/// **Atomicity.** A batch becomes visible whole or not at all: entries, their
/// event ids and their hashes together. What `Err` means depends on the kind:
/// - [`StoreError::Refused`]: nothing of the request was written, now or after
///   a restart; the store is unchanged and usable.
/// - [`StoreError::Io`] / [`StoreError::Corrupt`]: storage failed and the
///   outcome is ambiguous. A failure before the commit point leaves no trace,
///   but a failure reported by the commit itself (e.g. fsync) may leave the
///   whole batch durable. Either way the batch is never partly applied. The
///   caller must stop appending and recover from the store (reopen and read
///   `size()`), never retry blindly.
///
/// **Concurrency.** One writer: callers serialise `append`,
/// `append_unsynced`, `sync`, `put_checkpoint` and
/// `put_checkpoint_unsynced`. Any number of readers may run concurrently with the
/// writer; each read sees only committed batches. One read call is one
/// consistent snapshot; two calls may see different snapshots.
pub trait LogStore: Send + Sync + std::fmt::Debug {
    /// Appends the batch atomically and durably.
    ///
    /// Refused (nothing written) unless: the batch is non-empty and within
    /// [`BATCH_ENTRIES_MAX`] / [`BATCH_HASHES_MAX`], `first_seq == size()`,
    /// `first_hash_index == hash_count()`, every entry is at most
    /// [`ENTRY_BYTES_MAX`], and every event id is 1 to [`EVENT_ID_BYTES_MAX`]
    /// bytes and not already indexed (nor repeated in the batch).
    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError>;

    /// Appends like [`append`](Self::append), with the same refusals and
    /// atomicity and visible to readers at once, but may return before the
    /// batch is on stable storage: it is durable once a later
    /// [`sync`](Self::sync), `append` or `put_checkpoint` returns `Ok`. A
    /// crash may lose the batches appended since, always whole and always
    /// the newest.
    ///
    /// Only for a copy that can be fetched again (a replica's mirror of the
    /// ledger), never for what a ledger acknowledges. A store whose appends
    /// cost no more durable keeps the default.
    fn append_unsynced(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        self.append(batch)
    }

    /// Puts every batch appended so far on stable storage.
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Number of entries. O(1).
    fn size(&self) -> Result<u64, StoreError>;

    /// Number of stored hashes. O(1).
    fn hash_count(&self) -> Result<u64, StoreError>;

    /// The entry at `seq`, if stored.
    fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Entries with seq in `[start, start + limit)` that exist, in order, from
    /// one snapshot. `limit` is capped at [`ENTRIES_PAGE_MAX`].
    fn entries(&self, start: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// The seq of the entry indexed under `event_id`, if any.
    fn seq_of_event(&self, event_id: &str) -> Result<Option<u64>, StoreError>;

    /// Hashes at the given stored-hash indexes, same order, from one
    /// snapshot. An index not stored is refused
    /// ([`Refusal::HashNotStored`]); so are more than [`READ_HASHES_MAX`]
    /// indexes.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError>;

    /// The hashes at the stored-hash indexes `[first, first + count)`, in
    /// order, from one snapshot; refused as [`read_hashes`](Self::read_hashes)
    /// refuses the same indexes. A store that can scan a range (redb)
    /// answers in one scan instead of a lookup per index.
    fn read_hash_range(&self, first: u64, count: usize) -> Result<Vec<Hash>, StoreError> {
        if count > READ_HASHES_MAX {
            return Err(Refusal::TooManyHashIndexes { requested: count }.into());
        }
        let indexes: Vec<u64> = (0..count as u64)
            .map(|offset| first.saturating_add(offset))
            .collect();
        self.read_hashes(&indexes)
    }

    /// Durably records a signed checkpoint note for tree size `size`.
    ///
    /// Sizes never decrease: a size below the latest checkpoint's is refused,
    /// and so is a size above `size()`. A note for the latest size replaces
    /// the earlier one (e.g. the same checkpoint with witness cosignatures).
    fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError>;

    /// Records like [`put_checkpoint`](Self::put_checkpoint), with the same
    /// refusals and visible to readers at once, but may return before the
    /// note is on stable storage, as
    /// [`append_unsynced`](Self::append_unsynced) does: durable once a
    /// later [`sync`](Self::sync), `append` or `put_checkpoint` returns
    /// `Ok`. A crash may lose it with the batches appended since the last
    /// of those, the newest first.
    ///
    /// Only for a copy that can be fetched again (a replica's mirror), whose
    /// reader must not wait on the disk for each checkpoint: an fsync
    /// queued behind another process's large write takes up to seconds.
    fn put_checkpoint_unsynced(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.put_checkpoint(size, note)
    }

    /// The checkpoint with the largest size, if any.
    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError>;

    /// The checkpoint recorded for exactly `size`, if any.
    fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StoreError>;

    /// Durably records `line`, the cosignature by `witness` of the
    /// checkpoint recorded for `size`, replacing that witness's earlier line
    /// for the same size. The store does not check the signature (the
    /// caller does); it keeps the line verbatim.
    ///
    /// Refused unless a checkpoint is recorded for `size`, `witness` is 1 to
    /// [`WITNESS_ID_BYTES_MAX`] bytes, `line` is 1 to
    /// [`COSIGNATURE_LINE_BYTES_MAX`] bytes, and the size would keep at most
    /// [`COSIGNATURES_PER_CHECKPOINT_MAX`] witnesses.
    ///
    /// Unlike `append` and `put_checkpoint`, this may run concurrently with
    /// the writer: it touches only cosignatures, and the store serialises it
    /// with the writer's transactions.
    fn put_cosignature(&self, size: u64, witness: &str, line: &str) -> Result<(), StoreError>;

    /// The cosignature lines recorded for the checkpoint of `size`, as
    /// `(witness, line)` in witness order, from one snapshot.
    fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError>;

    /// The largest checkpoint size with at least `witnesses_min` (at least
    /// one) cosignatures, looking at most [`COSIGNED_SCAN_ROWS_MAX`]
    /// cosignature rows back from the latest.
    fn latest_cosigned(&self, witnesses_min: usize) -> Result<Option<u64>, StoreError>;
}

/// Checks what can be checked of a batch without reading the store: shape and
/// limits. Shared by both implementations so they refuse the same batches
/// with the same reason.
fn check_batch_shape(batch: &AppendBatch) -> Result<(), Refusal> {
    if batch.entries.is_empty() {
        return Err(Refusal::EmptyBatch);
    }
    if batch.entries.len() > BATCH_ENTRIES_MAX || batch.hashes.len() > BATCH_HASHES_MAX {
        return Err(Refusal::BatchTooLarge {
            entries: batch.entries.len(),
            hashes: batch.hashes.len(),
        });
    }
    let mut seq = batch.first_seq;
    for entry in &batch.entries {
        if entry.bytes.len() > ENTRY_BYTES_MAX {
            return Err(Refusal::EntryTooLarge {
                seq,
                bytes: entry.bytes.len(),
            });
        }
        if entry.event_id.is_empty() || entry.event_id.len() > EVENT_ID_BYTES_MAX {
            return Err(Refusal::EventIdInvalid {
                seq,
                bytes: entry.event_id.len(),
            });
        }
        // Only names the entry in a refusal; a first_seq near u64::MAX is
        // refused later as a seq mismatch.
        seq = seq.saturating_add(1);
    }
    Ok(())
}

/// Checks a checkpoint note against its limit.
fn check_checkpoint_note(note: &str) -> Result<(), Refusal> {
    if note.len() > CHECKPOINT_NOTE_BYTES_MAX {
        return Err(Refusal::CheckpointNoteTooLarge { bytes: note.len() });
    }
    Ok(())
}

/// Checks a cosignature against its limits, before the store is read.
fn check_cosignature(size: u64, witness: &str, line: &str) -> Result<(), Refusal> {
    if witness.is_empty() || witness.len() > WITNESS_ID_BYTES_MAX {
        return Err(Refusal::WitnessIdInvalid {
            bytes: witness.len(),
        });
    }
    if line.is_empty() || line.len() > COSIGNATURE_LINE_BYTES_MAX {
        return Err(Refusal::CosignatureLineInvalid {
            size,
            bytes: line.len(),
        });
    }
    Ok(())
}

/// Checks a checkpoint size against the log size and the latest checkpoint.
fn check_checkpoint_size(size: u64, log_size: u64, latest: Option<u64>) -> Result<(), Refusal> {
    if size > log_size {
        return Err(Refusal::CheckpointBeyondLog { size, log_size });
    }
    if let Some(latest) = latest
        && size < latest
    {
        return Err(Refusal::CheckpointSizeDecreased { latest, size });
    }
    Ok(())
}
