//! `MemStore`: the [`LogStore`] contract in memory, with fault hooks, for
//! tests of the crates above. Nothing is durable past the process; within it,
//! the semantics are the redb store's, refusals and all.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::fault::{FaultQueue, stop_in_entries, stop_in_hashes};
use crate::{
    AppendBatch, AppendFault, COSIGNATURES_PER_CHECKPOINT_MAX, COSIGNED_SCAN_ROWS_MAX,
    ENTRIES_PAGE_MAX, Hash, InjectedFault, LogStore, READ_HASHES_MAX, Refusal, StoreError,
    check_batch_shape, check_checkpoint_note, check_checkpoint_size, check_cosignature,
};

/// An in-memory [`LogStore`] with fault hooks.
///
/// An append writes into the live state under the write lock and, on an
/// injected fault, rolls back before releasing it: readers never see a
/// partial batch, and the fault table checks that the rollback leaves no
/// trace, which is what a real transaction abort must also do.
#[derive(Debug, Default)]
pub struct MemStore {
    state: RwLock<MemState>,
    append_faults: FaultQueue,
    checkpoint_faults_pending: AtomicUsize,
    durable_calls: AtomicUsize,
}

#[derive(Debug, Default)]
struct MemState {
    entries: Vec<Vec<u8>>,
    event_ids: HashMap<String, u64>,
    hashes: Vec<Hash>,
    checkpoints: BTreeMap<u64, String>,
    /// Cosignature lines by checkpoint size, then witness.
    cosignatures: BTreeMap<u64, BTreeMap<String, String>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Makes the next `n` appends fail with an I/O error before anything of
    /// their batch is written.
    pub fn fail_next_appends(&self, n: usize) {
        for _ in 0..n {
            self.append_faults.push(AppendFault::BeforeWrite);
        }
    }

    /// Makes the next append fail with an I/O error after `k` of its entries
    /// are written; the append rolls them back, leaving no trace.
    pub fn fail_append_after(&self, k: usize) {
        self.append_faults.push(AppendFault::AfterEntries(k));
    }

    /// Queues `fault` for the next append that has none queued before it.
    /// Faults are consumed one per append, in order, whether or not the
    /// append is refused first.
    pub fn inject_append_fault(&self, fault: AppendFault) {
        self.append_faults.push(fault);
    }

    /// Makes the next `n` checkpoints recorded (synced or not) fail with an
    /// I/O error before recording anything.
    pub fn fail_next_checkpoints(&self, n: usize) {
        self.checkpoint_faults_pending
            .fetch_add(n, Ordering::SeqCst);
    }

    /// Calls that ask for stable storage (`append`, `sync`, `put_checkpoint`,
    /// `put_cosignature`), refused or not: for tests that a caller leaves
    /// durability to its own syncs, as a redb store would fsync each.
    pub fn durable_calls(&self) -> usize {
        self.durable_calls.load(Ordering::SeqCst)
    }

    fn count_durable_call(&self) {
        self.durable_calls.fetch_add(1, Ordering::SeqCst);
    }

    /// Rewrites the bytes of the entry at `seq` in place, without touching
    /// its hashes or event id: for tests that a tampered store is caught.
    pub fn overwrite_entry(&self, seq: u64, bytes: Vec<u8>) -> Result<(), StoreError> {
        let mut state = self.write("overwriting an entry")?;
        let size = state.size();
        match index(seq).and_then(|i| state.entries.get_mut(i)) {
            Some(slot) => {
                *slot = bytes;
                Ok(())
            }
            None => Err(Refusal::EntryNotStored { seq, size }.into()),
        }
    }

    /// Rewrites one stored Merkle hash in place: with [`Self::overwrite_entry`],
    /// simulates an operator who rewrites an entry and its leaf hash
    /// consistently, which only a signed checkpoint can catch.
    pub fn overwrite_hash(&self, index: u64, hash: Hash) -> Result<(), StoreError> {
        let mut state = self.write("overwriting a hash")?;
        let hash_count = state.hashes.len() as u64;
        match self::index(index).and_then(|i| state.hashes.get_mut(i)) {
            Some(slot) => {
                *slot = hash;
                Ok(())
            }
            None => Err(Refusal::HashNotStored { index, hash_count }.into()),
        }
    }

    fn read(&self, context: &str) -> Result<RwLockReadGuard<'_, MemState>, StoreError> {
        self.state.read().map_err(|_| poisoned(context))
    }

    fn write(&self, context: &str) -> Result<RwLockWriteGuard<'_, MemState>, StoreError> {
        self.state.write().map_err(|_| poisoned(context))
    }

    fn take_checkpoint_fault(&self) -> bool {
        self.checkpoint_faults_pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn append_batch(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        // A fault is consumed by every append, refused or not, so a test's
        // queue lines up with its calls.
        let fault = self.append_faults.take();
        let context = || format!("appending batch at seq {}", batch.first_seq);
        check_batch_shape(batch)?;
        let mut state = self.write("appending a batch")?;
        if batch.first_seq != state.size() {
            return Err(Refusal::SeqMismatch {
                expected: state.size(),
                got: batch.first_seq,
            }
            .into());
        }
        if batch.first_hash_index != state.hash_count() {
            return Err(Refusal::HashIndexMismatch {
                expected: state.hash_count(),
                got: batch.first_hash_index,
            }
            .into());
        }
        state.check_new_event_ids(batch)?;
        if fault == Some(AppendFault::BeforeWrite) {
            return Err(injected(context(), AppendFault::BeforeWrite));
        }
        if let Err(stopped_at) = state.apply(batch, fault) {
            state.roll_back(batch);
            return Err(injected(context(), stopped_at));
        }
        // Commit point: the write lock is released with the whole batch in
        // place, so readers see all of it or, before this, none of it.
        if fault == Some(AppendFault::AfterCommit) {
            return Err(injected(context(), AppendFault::AfterCommit));
        }
        Ok(())
    }

    fn record_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        check_checkpoint_note(note)?;
        let mut state = self.write("recording a checkpoint")?;
        let latest = state.checkpoints.last_key_value().map(|(size, _)| *size);
        check_checkpoint_size(size, state.size(), latest)?;
        if self.take_checkpoint_fault() {
            return Err(injected(
                format!("recording checkpoint at size {size}"),
                AppendFault::BeforeWrite,
            ));
        }
        state.checkpoints.insert(size, note.to_owned());
        Ok(())
    }
}

/// A writer panicked while holding the lock, possibly mid-batch: the state
/// may be partial, which is what `Corrupt` means.
fn poisoned(context: &str) -> StoreError {
    StoreError::corrupt(
        context,
        "in-memory state lock poisoned by a panicking writer",
    )
}

fn injected(context: impl Into<String>, fault: AppendFault) -> StoreError {
    StoreError::io(context, InjectedFault(fault))
}

/// A seq or stored-hash index as a vector index, if it can be one.
fn index(position: u64) -> Option<usize> {
    usize::try_from(position).ok()
}

impl MemState {
    fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    fn hash_count(&self) -> u64 {
        self.hashes.len() as u64
    }

    /// Refuses event ids already indexed or repeated within the batch, before
    /// anything is written.
    fn check_new_event_ids(&self, batch: &AppendBatch) -> Result<(), Refusal> {
        let mut in_batch: HashMap<&str, u64> = HashMap::with_capacity(batch.entries.len());
        for (seq, entry) in (batch.first_seq..).zip(&batch.entries) {
            let event_id = entry.event_id.as_str();
            let existing = self
                .event_ids
                .get(event_id)
                .copied()
                .or_else(|| in_batch.get(event_id).copied());
            if let Some(existing_seq) = existing {
                return Err(Refusal::DuplicateEventId {
                    event_id: entry.event_id.clone(),
                    existing_seq,
                });
            }
            in_batch.insert(event_id, seq);
        }
        Ok(())
    }

    /// Writes the batch into the live state, stopping where `fault` says.
    /// On `Err` the state holds part of the batch and must be rolled back.
    fn apply(
        &mut self,
        batch: &AppendBatch,
        fault: Option<AppendFault>,
    ) -> Result<(), AppendFault> {
        let stop = stop_in_entries(fault, batch.entries.len());
        for (written, (seq, entry)) in (batch.first_seq..).zip(&batch.entries).enumerate() {
            if stop == Some(written) {
                return Err(AppendFault::AfterEntries(written));
            }
            self.entries.push(entry.bytes.clone());
            self.event_ids.insert(entry.event_id.clone(), seq);
        }
        if stop == Some(batch.entries.len()) {
            return Err(AppendFault::AfterEntries(batch.entries.len()));
        }
        let stop = stop_in_hashes(fault, batch.hashes.len());
        for (written, hash) in batch.hashes.iter().enumerate() {
            if stop == Some(written) {
                return Err(AppendFault::AfterHashes(written));
            }
            self.hashes.push(*hash);
        }
        if stop == Some(batch.hashes.len()) {
            return Err(AppendFault::AfterHashes(batch.hashes.len()));
        }
        if fault == Some(AppendFault::BeforeCommit) {
            return Err(AppendFault::BeforeCommit);
        }
        Ok(())
    }

    /// Removes whatever part of `batch` `apply` wrote. Its event ids were
    /// checked new before `apply`, so every one at or past `first_seq` is the
    /// batch's own.
    fn roll_back(&mut self, batch: &AppendBatch) {
        for entry in &batch.entries {
            if self
                .event_ids
                .get(&entry.event_id)
                .is_some_and(|seq| *seq >= batch.first_seq)
            {
                self.event_ids.remove(&entry.event_id);
            }
        }
        let size = index(batch.first_seq).expect("first_seq was checked equal to the size");
        self.entries.truncate(size);
        let hash_count =
            index(batch.first_hash_index).expect("first_hash_index was checked equal to the count");
        self.hashes.truncate(hash_count);
    }
}

impl LogStore for MemStore {
    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        self.count_durable_call();
        self.append_batch(batch)
    }

    fn append_unsynced(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        self.append_batch(batch)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.count_durable_call();
        Ok(())
    }

    fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.count_durable_call();
        self.record_checkpoint(size, note)
    }

    fn put_checkpoint_unsynced(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.record_checkpoint(size, note)
    }

    fn size(&self) -> Result<u64, StoreError> {
        Ok(self.read("reading the size")?.size())
    }

    fn hash_count(&self) -> Result<u64, StoreError> {
        Ok(self.read("reading the hash count")?.hash_count())
    }

    fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let state = self.read("reading an entry")?;
        Ok(index(seq).and_then(|i| state.entries.get(i)).cloned())
    }

    fn entries(&self, start: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let state = self.read("reading entries")?;
        let limit = limit.min(ENTRIES_PAGE_MAX);
        let Some(first) = index(start).filter(|i| *i < state.entries.len()) else {
            return Ok(Vec::new());
        };
        Ok((start..)
            .zip(state.entries[first..].iter().take(limit))
            .map(|(seq, bytes)| (seq, bytes.clone()))
            .collect())
    }

    fn seq_of_event(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .read("looking up an event id")?
            .event_ids
            .get(event_id)
            .copied())
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        if indexes.len() > READ_HASHES_MAX {
            return Err(Refusal::TooManyHashIndexes {
                requested: indexes.len(),
            }
            .into());
        }
        let state = self.read("reading hashes")?;
        indexes
            .iter()
            .map(|&i| {
                index(i)
                    .and_then(|i| state.hashes.get(i))
                    .copied()
                    .ok_or_else(|| {
                        Refusal::HashNotStored {
                            index: i,
                            hash_count: state.hash_count(),
                        }
                        .into()
                    })
            })
            .collect()
    }

    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        Ok(self
            .read("reading the latest checkpoint")?
            .checkpoints
            .last_key_value()
            .map(|(size, note)| (*size, note.clone())))
    }

    fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StoreError> {
        Ok(self
            .read("reading a checkpoint")?
            .checkpoints
            .get(&size)
            .cloned())
    }

    fn put_cosignature(&self, size: u64, witness: &str, line: &str) -> Result<(), StoreError> {
        self.count_durable_call();
        check_cosignature(size, witness, line)?;
        let mut state = self.write("recording a cosignature")?;
        if !state.checkpoints.contains_key(&size) {
            return Err(Refusal::CosignedCheckpointMissing { size }.into());
        }
        let lines = state.cosignatures.entry(size).or_default();
        if !lines.contains_key(witness) && lines.len() >= COSIGNATURES_PER_CHECKPOINT_MAX {
            return Err(Refusal::TooManyCosignatures { size }.into());
        }
        lines.insert(witness.to_owned(), line.to_owned());
        Ok(())
    }

    fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .read("reading cosignatures")?
            .cosignatures
            .get(&size)
            .map(|lines| {
                lines
                    .iter()
                    .map(|(witness, line)| (witness.clone(), line.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn latest_cosigned(&self, witnesses_min: usize) -> Result<Option<u64>, StoreError> {
        let state = self.read("finding the latest cosigned checkpoint")?;
        let mut rows = 0;
        for (size, lines) in state.cosignatures.iter().rev() {
            rows += lines.len();
            if rows > COSIGNED_SCAN_ROWS_MAX {
                break;
            }
            if lines.len() >= witnesses_min.max(1) {
                return Ok(Some(*size));
            }
        }
        Ok(None)
    }
}
