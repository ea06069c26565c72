//! `RedbStore`: the [`LogStore`] contract on an embedded redb file. One
//! write transaction per batch, committed with `Durability::Immediate`, so an
//! acknowledged batch is fsync'd (a mirror's unsynced appends commit with
//! `Durability::None` until its next sync); redb's MVCC gives readers
//! committed snapshots while the writer works.

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};

#[cfg(any(test, feature = "test-util"))]
use crate::fault::FaultQueue;
use crate::fault::{stop_in_entries, stop_in_hashes};
use crate::{
    AppendBatch, AppendFault, COSIGNATURES_PER_CHECKPOINT_MAX, COSIGNED_SCAN_ROWS_MAX,
    ENTRIES_PAGE_MAX, Hash, InjectedFault, LogStore, READ_HASHES_MAX, Refusal, StoreError,
    check_batch_shape, check_checkpoint_note, check_checkpoint_size, check_cosignature,
};

/// Entry bytes by seq. Keys are exactly `0..size`: the size is the table's
/// length, which redb keeps in the table header (O(1)).
pub(crate) const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// Seq by event id.
pub(crate) const EVENT_IDS: TableDefinition<&str, u64> = TableDefinition::new("event_ids");
/// Merkle stored hashes by stored-hash index. Keys are exactly
/// `0..hash_count`.
pub(crate) const HASHES: TableDefinition<u64, StoredHash> = TableDefinition::new("hashes");
/// Facts about the file itself, by name: [`EVENT_IDS_KEPT`].
pub(crate) const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// In [`META`], [`NOT_KEPT`] marks a mirror's file: its `event_ids` table is
/// empty and stays so. Absent, every entry is indexed.
const EVENT_IDS_KEPT: &str = "event_ids";
const NOT_KEPT: &str = "not kept";
/// Signed checkpoint notes by tree size.
pub(crate) const CHECKPOINTS: TableDefinition<u64, &str> = TableDefinition::new("checkpoints");
/// Witness cosignature lines by (checkpoint size, witness id).
pub(crate) const COSIGNATURES: TableDefinition<(u64, &str), &str> =
    TableDefinition::new("cosignatures");

/// A hash as the [`HASHES`] table holds it: the same 32 bytes, under the
/// same type name, as redb's own `[u8; 32]`, so files written with either
/// read with the other (a test writes and reads both ways). Its own because
/// redb reads and writes an array one element at a time through a vector,
/// an allocation per hash, and every entry read or written has two or so.
#[derive(Debug)]
pub(crate) struct StoredHash;

impl redb::Value for StoredHash {
    type SelfType<'a> = Hash;
    type AsBytes<'a> = &'a Hash;

    fn fixed_width() -> Option<usize> {
        Some(32)
    }

    fn from_bytes<'a>(data: &'a [u8]) -> Hash
    where
        Self: 'a,
    {
        data.try_into().expect("a stored hash is 32 bytes")
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a Hash) -> &'a Hash
    where
        Self: 'b,
    {
        value
    }

    fn type_name() -> redb::TypeName {
        <Hash as redb::Value>::type_name()
    }
}

/// The cosignature rows of one checkpoint size: every witness id sorts at or
/// after `""`, so the rows are `(size, "")..(size + 1, "")`.
fn rows_of_size<'t>(
    table: &'t impl ReadableTable<(u64, &'static str), &'static str>,
    size: u64,
) -> Result<redb::Range<'t, (u64, &'static str), &'static str>, redb::StorageError> {
    match size.checked_add(1) {
        Some(next) => table.range((size, "")..(next, "")),
        None => table.range((size, "")..),
    }
}

/// A [`LogStore`] on a redb database file.
///
/// The file is locked for this process while the store is open: a second
/// writer, in this process or another, is refused at open.
pub struct RedbStore {
    pub(crate) db: Database,
    path: PathBuf,
    /// Whether appends index event ids (false in a mirror's file).
    event_ids_kept: bool,
    /// Test hook: faults for the next appends (see [`AppendFault`]). Absent
    /// from production builds.
    #[cfg(any(test, feature = "test-util"))]
    append_faults: FaultQueue,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Maps a redb failure to a store error: redb's own corruption report is
/// `Corrupt`, everything else is `Io`.
fn redb_error(context: impl Into<String>, err: impl Into<redb::Error>) -> StoreError {
    match err.into() {
        redb::Error::Corrupted(detail) => StoreError::corrupt(context, detail),
        other => StoreError::io(context, other),
    }
}

/// `map_err` adapter for a fixed context string.
fn at<E: Into<redb::Error>>(context: &str) -> impl Fn(E) -> StoreError + '_ {
    move |err| redb_error(context, err)
}

impl RedbStore {
    /// Opens the store at `path`, creating the file and its tables if
    /// missing.
    ///
    /// After a crash redb repairs the file here (walking it to rebuild its
    /// allocator state), so the open after a crash takes time proportional to
    /// the file size. Then checks, in O(log n), that the tables agree with
    /// each other; disagreement is `Corrupt`.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let context = || format!("opening store {}", path.display());
        let db = Database::create(path).map_err(|e| redb_error(context(), e))?;
        Self::with_db(db, path, true)
    }

    /// A replica's copy of a log it verified, with a page cache of at most
    /// `cache_bytes` rather than redb's default of 1 GiB (a replica keeps
    /// its projections in memory beside it): a store like the others except that it keeps no
    /// event-id index. Nothing reads a mirror by event id, and with random
    /// (UUID) ids the index costs a page written per appended entry, a
    /// third of a replica's catch-up. So a mirror neither refuses a repeated
    /// event id (the ledger it copies did) nor answers
    /// [`seq_of_event`](LogStore::seq_of_event)
    /// ([`Refusal::EventIdsNotKept`]).
    ///
    /// The file is marked as a mirror; a file written by
    /// [`open`](Self::open) is turned into one here, its index dropped.
    pub fn open_mirror(path: &Path, cache_bytes: usize) -> Result<RedbStore, StoreError> {
        let context = || format!("opening mirror {}", path.display());
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| redb_error(context(), e))?;
        Self::with_db(db, path, false)
    }

    fn with_db(db: Database, path: &Path, event_ids_kept: bool) -> Result<RedbStore, StoreError> {
        let context = || format!("opening store {}", path.display());
        let store = RedbStore {
            db,
            path: path.to_owned(),
            event_ids_kept,
            #[cfg(any(test, feature = "test-util"))]
            append_faults: FaultQueue::default(),
        };
        store
            .create_tables()
            .map_err(|e| redb_error(context(), e))?;
        match (event_ids_kept, store.file_keeps_event_ids()?) {
            (true, false) => return Err(Refusal::EventIdsNotKept.into()),
            (false, true) => {
                // Dropping a 10M-entry index takes a while and frees
                // gigabytes: say why the replica's start-up waits.
                tracing::info!(
                    path = %path.display(),
                    "turning a ledger's store file into a mirror: dropping its event-id index"
                );
                store
                    .drop_event_ids()
                    .map_err(|e| redb_error(context(), e))?;
            }
            _ => {}
        }
        store.check_tables()?;
        Ok(store)
    }

    fn file_keeps_event_ids(&self) -> Result<bool, StoreError> {
        let context = "reading whether the file indexes event ids";
        let txn = self.begin_read(context)?;
        let meta = txn.open_table(META).map_err(at(context))?;
        let kept = meta.get(EVENT_IDS_KEPT).map_err(at(context))?;
        Ok(kept.is_none_or(|value| value.value() != NOT_KEPT))
    }

    /// Marks the file as a mirror and empties its event-id index, in one
    /// durable transaction.
    fn drop_event_ids(&self) -> Result<(), redb::Error> {
        let txn = self.begin_write()?;
        txn.delete_table(EVENT_IDS)?;
        txn.open_table(EVENT_IDS)?;
        txn.open_table(META)?.insert(EVENT_IDS_KEPT, NOT_KEPT)?;
        txn.commit()?;
        Ok(())
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Test hook: queues `fault` for the next append that has none queued
    /// before it. Faults are consumed one per append, in order, whether or
    /// not the append is refused first.
    #[cfg(any(test, feature = "test-util"))]
    pub fn inject_append_fault(&self, fault: AppendFault) {
        self.append_faults.push(fault);
    }

    /// Test hook: rewrites the bytes of the entry at `seq` in place, durably,
    /// without touching its hashes or event id, so tests can check that a
    /// tampered store is caught at start-up.
    #[cfg(any(test, feature = "test-util"))]
    pub fn overwrite_entry_for_tests(&self, seq: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let context = || format!("overwriting entry at seq {seq}");
        let txn = self.begin_write().map_err(|e| redb_error(context(), e))?;
        {
            let mut entries = txn
                .open_table(ENTRIES)
                .map_err(|e| redb_error(context(), e))?;
            let size = entries.len().map_err(|e| redb_error(context(), e))?;
            if seq >= size {
                return Err(Refusal::EntryNotStored { seq, size }.into());
            }
            entries
                .insert(seq, bytes)
                .map_err(|e| redb_error(context(), e))?;
        }
        txn.commit().map_err(|e| redb_error(context(), e))
    }

    /// The fault for the append now starting, if any. Always `None` in
    /// production builds.
    fn take_append_fault(&self) -> Option<AppendFault> {
        #[cfg(any(test, feature = "test-util"))]
        {
            self.append_faults.take()
        }
        #[cfg(not(any(test, feature = "test-util")))]
        {
            None
        }
    }

    /// A write transaction that fsyncs on commit.
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, redb::Error> {
        let mut txn = self.db.begin_write()?;
        // Immediate is redb 4's default; set it anyway so that a change of
        // default can never silently make an acknowledged append volatile.
        // With it, commit() returns only after fsync. One-phase commit (the
        // default) suffices for crash safety: redb checksums both commit
        // slots and falls back to the last valid one on open.
        txn.set_durability(Durability::Immediate)?;
        Ok(txn)
    }

    fn begin_read(&self, context: &str) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(|e| redb_error(context, e))
    }

    /// Creates the tables of a new file; readers can then open them without
    /// a missing-table case. On an existing file the commit changes nothing.
    fn create_tables(&self) -> Result<(), redb::Error> {
        let txn = self.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.open_table(EVENT_IDS)?;
        txn.open_table(HASHES)?;
        txn.open_table(CHECKPOINTS)?;
        txn.open_table(COSIGNATURES)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(())
    }

    /// Cheap cross-table checks at open, O(log n): keys of the entries and
    /// hashes tables are exactly `0..len`, the event-id index has one row per
    /// entry (none in a mirror's file), and no checkpoint is beyond the log.
    fn check_tables(&self) -> Result<(), StoreError> {
        let context = "checking tables at open";
        let txn = self.begin_read(context)?;
        let entries = txn.open_table(ENTRIES).map_err(at(context))?;
        let size = entries.len().map_err(at(context))?;
        let last_seq = entries.last().map_err(at(context))?.map(|(k, _)| k.value());
        if last_seq != size.checked_sub(1) {
            return Err(StoreError::corrupt(
                context,
                format!("entries table holds {size} rows but its last seq is {last_seq:?}"),
            ));
        }
        let event_ids = txn
            .open_table(EVENT_IDS)
            .map_err(at(context))?
            .len()
            .map_err(at(context))?;
        let expected = if self.event_ids_kept { size } else { 0 };
        if event_ids != expected {
            return Err(StoreError::corrupt(
                context,
                format!("{event_ids} event ids indexed for {size} entries"),
            ));
        }
        let hashes = txn.open_table(HASHES).map_err(at(context))?;
        let hash_count = hashes.len().map_err(at(context))?;
        let last_index = hashes.last().map_err(at(context))?.map(|(k, _)| k.value());
        if last_index != hash_count.checked_sub(1) {
            return Err(StoreError::corrupt(
                context,
                format!(
                    "hashes table holds {hash_count} rows but its last index is {last_index:?}"
                ),
            ));
        }
        let checkpoints = txn.open_table(CHECKPOINTS).map_err(at(context))?;
        if let Some((latest, _)) = checkpoints.last().map_err(at(context))? {
            let latest = latest.value();
            if latest > size {
                return Err(StoreError::corrupt(
                    context,
                    format!("latest checkpoint is for size {latest}, log holds {size} entries"),
                ));
            }
        }
        Ok(())
    }

    /// Writes the batch into `txn`, checking it against the committed state.
    /// On `Err` the caller must abort `txn`: it may hold part of the batch.
    fn stage(
        &self,
        txn: &WriteTransaction,
        batch: &AppendBatch,
        fault: Option<AppendFault>,
        context: &dyn Fn() -> String,
    ) -> Result<(), StoreError> {
        let e = |err: redb::StorageError| redb_error(context(), err);
        let t = |err: redb::TableError| redb_error(context(), err);
        let mut entries = txn.open_table(ENTRIES).map_err(t)?;
        let mut event_ids = match self.event_ids_kept {
            true => Some(txn.open_table(EVENT_IDS).map_err(t)?),
            false => None,
        };
        let mut hashes = txn.open_table(HASHES).map_err(t)?;

        let size = entries.len().map_err(e)?;
        if batch.first_seq != size {
            return Err(Refusal::SeqMismatch {
                expected: size,
                got: batch.first_seq,
            }
            .into());
        }
        let hash_count = hashes.len().map_err(e)?;
        if batch.first_hash_index != hash_count {
            return Err(Refusal::HashIndexMismatch {
                expected: hash_count,
                got: batch.first_hash_index,
            }
            .into());
        }
        if fault == Some(AppendFault::BeforeWrite) {
            return Err(StoreError::io(
                context(),
                InjectedFault(AppendFault::BeforeWrite),
            ));
        }

        let stop = stop_in_entries(fault, batch.entries.len());
        for (written, (seq, entry)) in (batch.first_seq..).zip(&batch.entries).enumerate() {
            if stop == Some(written) {
                let fault = AppendFault::AfterEntries(written);
                return Err(StoreError::io(context(), InjectedFault(fault)));
            }
            entries.insert(seq, entry.bytes.as_slice()).map_err(e)?;
            // insert returns the previous row: one B-tree walk both indexes
            // the id and finds a duplicate, whether already stored or earlier
            // in this batch. The caller aborts, so the refusal leaves nothing.
            let Some(event_ids) = event_ids.as_mut() else {
                continue;
            };
            let previous = event_ids
                .insert(entry.event_id.as_str(), seq)
                .map_err(e)?
                .map(|guard| guard.value());
            if let Some(existing_seq) = previous {
                return Err(Refusal::DuplicateEventId {
                    event_id: entry.event_id.clone(),
                    existing_seq,
                }
                .into());
            }
        }
        if stop == Some(batch.entries.len()) {
            let fault = AppendFault::AfterEntries(batch.entries.len());
            return Err(StoreError::io(context(), InjectedFault(fault)));
        }

        let stop = stop_in_hashes(fault, batch.hashes.len());
        for (written, (index, hash)) in (batch.first_hash_index..).zip(&batch.hashes).enumerate() {
            if stop == Some(written) {
                let fault = AppendFault::AfterHashes(written);
                return Err(StoreError::io(context(), InjectedFault(fault)));
            }
            hashes.insert(index, hash).map_err(e)?;
        }
        if stop == Some(batch.hashes.len()) {
            let fault = AppendFault::AfterHashes(batch.hashes.len());
            return Err(StoreError::io(context(), InjectedFault(fault)));
        }
        if fault == Some(AppendFault::BeforeCommit) {
            return Err(StoreError::io(
                context(),
                InjectedFault(AppendFault::BeforeCommit),
            ));
        }
        Ok(())
    }
}

impl RedbStore {
    /// One batch in one write transaction, durable on return or, with
    /// `Durability::None`, at the next durable commit.
    fn append_with(&self, batch: &AppendBatch, durability: Durability) -> Result<(), StoreError> {
        // A fault is consumed by every append, refused or not, so a test's
        // queue lines up with its calls.
        let fault = self.take_append_fault();
        let context = || format!("appending batch at seq {}", batch.first_seq);
        check_batch_shape(batch)?;
        let mut txn = self.begin_write().map_err(|e| redb_error(context(), e))?;
        txn.set_durability(durability)
            .map_err(|e| redb_error(context(), e))?;
        if let Err(err) = self.stage(&txn, batch, fault, &context) {
            // Nothing of the transaction was committed; aborting discards
            // whatever part of the batch it holds. If even the abort fails,
            // report that rather than the refusal: storage is in trouble.
            txn.abort().map_err(|e| redb_error(context(), e))?;
            return Err(err);
        }
        // Commit point. A crash before commit() returns leaves either the
        // previous commit or this whole batch (redb opens the newest commit
        // slot whose checksum is valid), never part of it; the crash test
        // sees both. Once it returns Ok the batch is fsync'd. If it returns
        // Err, redb applied the batch fully or not at all but may have made
        // it durable, hence Io (ambiguous) rather than Refused.
        txn.commit().map_err(|e| redb_error(context(), e))?;
        if fault == Some(AppendFault::AfterCommit) {
            return Err(StoreError::io(
                context(),
                InjectedFault(AppendFault::AfterCommit),
            ));
        }
        Ok(())
    }

    fn put_checkpoint_with(
        &self,
        size: u64,
        note: &str,
        durability: Durability,
    ) -> Result<(), StoreError> {
        check_checkpoint_note(note)?;
        let context = || format!("recording checkpoint at size {size}");
        let e = |err: redb::Error| redb_error(context(), err);
        let mut txn = self.begin_write().map_err(e)?;
        txn.set_durability(durability)
            .map_err(|err| e(err.into()))?;
        let checked = (|| -> Result<Result<(), Refusal>, redb::Error> {
            let log_size = txn.open_table(ENTRIES)?.len()?;
            let mut checkpoints = txn.open_table(CHECKPOINTS)?;
            let latest = checkpoints.last()?.map(|(k, _)| k.value());
            if let Err(refusal) = check_checkpoint_size(size, log_size, latest) {
                return Ok(Err(refusal));
            }
            checkpoints.insert(size, note)?;
            Ok(Ok(()))
        })();
        commit_unless_refused(txn, checked, e)
    }
}

/// Ends a write whose checks ran inside it: commits what passed, and
/// aborts on a refusal, so a refused write leaves nothing behind. `e`
/// names a store failure by what was being written.
fn commit_unless_refused(
    txn: WriteTransaction,
    checked: Result<Result<(), Refusal>, redb::Error>,
    e: impl Fn(redb::Error) -> StoreError,
) -> Result<(), StoreError> {
    match checked {
        Ok(Ok(())) => txn.commit().map_err(|err| e(err.into())),
        Ok(Err(refusal)) => {
            txn.abort().map_err(|err| e(err.into()))?;
            Err(refusal.into())
        }
        Err(err) => Err(e(err)),
    }
}

impl LogStore for RedbStore {
    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        self.append_with(batch, Durability::Immediate)
    }

    // redb keeps a non-durable commit's pages in its write buffer (up to
    // half its cache, beyond which it writes them out early), and a later
    // one rewriting the same pages (the last leaf and the path to it in
    // each table) frees them unwritten: a mirror synced at each commit
    // and every 64 MiB writes those pages about once per sync, not once
    // per batch.
    fn append_unsynced(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        self.append_with(batch, Durability::None)
    }

    fn sync(&self) -> Result<(), StoreError> {
        // A durable commit, even an empty one, writes out every page the
        // non-durable commits before it left buffered, then fsyncs.
        let context = "syncing the appended batches";
        let txn = self.begin_write().map_err(at(context))?;
        txn.commit().map_err(at(context))
    }

    fn size(&self) -> Result<u64, StoreError> {
        let context = "reading the size";
        let txn = self.begin_read(context)?;
        txn.open_table(ENTRIES)
            .map_err(at(context))?
            .len()
            .map_err(at(context))
    }

    fn hash_count(&self) -> Result<u64, StoreError> {
        let context = "reading the hash count";
        let txn = self.begin_read(context)?;
        txn.open_table(HASHES)
            .map_err(at(context))?
            .len()
            .map_err(at(context))
    }

    fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let context = || format!("reading entry at seq {seq}");
        let txn = self.begin_read(&context())?;
        let entries = txn
            .open_table(ENTRIES)
            .map_err(|e| redb_error(context(), e))?;
        let bytes = entries.get(seq).map_err(|e| redb_error(context(), e))?;
        Ok(bytes.map(|guard| guard.value().to_vec()))
    }

    fn entries(&self, start: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let context = || format!("reading entries from seq {start}");
        let limit = limit.min(ENTRIES_PAGE_MAX);
        let end = start.saturating_add(limit as u64);
        let txn = self.begin_read(&context())?;
        let entries = txn
            .open_table(ENTRIES)
            .map_err(|e| redb_error(context(), e))?;
        let range = entries
            .range(start..end)
            .map_err(|e| redb_error(context(), e))?;
        let mut page = Vec::with_capacity(limit);
        for row in range {
            let (seq, bytes) = row.map_err(|e| redb_error(context(), e))?;
            page.push((seq.value(), bytes.value().to_vec()));
        }
        Ok(page)
    }

    fn seq_of_event(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        if !self.event_ids_kept {
            return Err(Refusal::EventIdsNotKept.into());
        }
        let context = || format!("looking up event id {event_id:?}");
        let txn = self.begin_read(&context())?;
        let event_ids = txn
            .open_table(EVENT_IDS)
            .map_err(|e| redb_error(context(), e))?;
        let seq = event_ids
            .get(event_id)
            .map_err(|e| redb_error(context(), e))?;
        Ok(seq.map(|guard| guard.value()))
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        if indexes.len() > READ_HASHES_MAX {
            return Err(Refusal::TooManyHashIndexes {
                requested: indexes.len(),
            }
            .into());
        }
        let context = "reading hashes";
        let txn = self.begin_read(context)?;
        let hashes = txn.open_table(HASHES).map_err(at(context))?;
        let mut found = Vec::with_capacity(indexes.len());
        for &index in indexes {
            match hashes.get(index).map_err(at(context))? {
                Some(hash) => found.push(hash.value()),
                None => {
                    return Err(Refusal::HashNotStored {
                        index,
                        hash_count: hashes.len().map_err(at(context))?,
                    }
                    .into());
                }
            }
        }
        Ok(found)
    }

    fn read_hash_range(&self, first: u64, count: usize) -> Result<Vec<Hash>, StoreError> {
        if count > READ_HASHES_MAX {
            return Err(Refusal::TooManyHashIndexes { requested: count }.into());
        }
        let context = "reading a range of hashes";
        let txn = self.begin_read(context)?;
        let hashes = txn.open_table(HASHES).map_err(at(context))?;
        let end = first.saturating_add(count as u64);
        let mut found = Vec::with_capacity(count);
        for row in hashes.range(first..end).map_err(at(context))? {
            let (index, hash) = row.map_err(at(context))?;
            // The first index missing is the one refused, as read_hashes
            // refuses the first of the indexes it cannot find.
            if index.value() != first + found.len() as u64 {
                break;
            }
            found.push(hash.value());
        }
        if found.len() < count {
            return Err(Refusal::HashNotStored {
                index: first + found.len() as u64,
                hash_count: hashes.len().map_err(at(context))?,
            }
            .into());
        }
        Ok(found)
    }

    fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.put_checkpoint_with(size, note, Durability::Immediate)
    }

    // Like an unsynced append: a later durable commit writes the pages out.
    fn put_checkpoint_unsynced(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.put_checkpoint_with(size, note, Durability::None)
    }

    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        let context = "reading the latest checkpoint";
        let txn = self.begin_read(context)?;
        let checkpoints = txn.open_table(CHECKPOINTS).map_err(at(context))?;
        let latest = checkpoints.last().map_err(at(context))?;
        Ok(latest.map(|(size, note)| (size.value(), note.value().to_owned())))
    }

    fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StoreError> {
        let context = || format!("reading checkpoint at size {size}");
        let txn = self.begin_read(&context())?;
        let checkpoints = txn
            .open_table(CHECKPOINTS)
            .map_err(|e| redb_error(context(), e))?;
        let note = checkpoints
            .get(size)
            .map_err(|e| redb_error(context(), e))?;
        Ok(note.map(|guard| guard.value().to_owned()))
    }

    fn put_cosignature(&self, size: u64, witness: &str, line: &str) -> Result<(), StoreError> {
        check_cosignature(size, witness, line)?;
        let context = || format!("recording a cosignature of the checkpoint at size {size}");
        let e = |err: redb::Error| redb_error(context(), err);
        let txn = self.begin_write().map_err(e)?;
        let checked = (|| -> Result<Result<(), Refusal>, redb::Error> {
            if txn.open_table(CHECKPOINTS)?.get(size)?.is_none() {
                return Ok(Err(Refusal::CosignedCheckpointMissing { size }));
            }
            let mut cosignatures = txn.open_table(COSIGNATURES)?;
            let replacing = cosignatures.get((size, witness))?.is_some();
            if !replacing {
                // Bounded: at most COSIGNATURES_PER_CHECKPOINT_MAX rows per size.
                let kept = rows_of_size(&cosignatures, size)?
                    .take(COSIGNATURES_PER_CHECKPOINT_MAX)
                    .count();
                if kept >= COSIGNATURES_PER_CHECKPOINT_MAX {
                    return Ok(Err(Refusal::TooManyCosignatures { size }));
                }
            }
            cosignatures.insert((size, witness), line)?;
            Ok(Ok(()))
        })();
        commit_unless_refused(txn, checked, e)
    }

    fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError> {
        let context = || format!("reading cosignatures of the checkpoint at size {size}");
        let e = |err: redb::Error| redb_error(context(), err);
        let txn = self.begin_read(&context())?;
        let table = txn.open_table(COSIGNATURES).map_err(|err| e(err.into()))?;
        let range = rows_of_size(&table, size).map_err(|err| e(err.into()))?;
        let mut lines = Vec::new();
        for row in range.take(COSIGNATURES_PER_CHECKPOINT_MAX) {
            let (key, line) = row.map_err(|err| e(err.into()))?;
            lines.push((key.value().1.to_owned(), line.value().to_owned()));
        }
        Ok(lines)
    }

    fn latest_cosigned(&self, witnesses_min: usize) -> Result<Option<u64>, StoreError> {
        let context = "finding the latest cosigned checkpoint";
        let txn = self.begin_read(context)?;
        let table = txn.open_table(COSIGNATURES).map_err(at(context))?;
        let mut current: Option<(u64, usize)> = None;
        for row in table
            .iter()
            .map_err(at(context))?
            .rev()
            .take(COSIGNED_SCAN_ROWS_MAX)
        {
            let (key, _) = row.map_err(at(context))?;
            let size = key.value().0;
            let count = match current {
                Some((current_size, count)) if current_size == size => count + 1,
                _ => 1,
            };
            if count >= witnesses_min.max(1) {
                return Ok(Some(size));
            }
            current = Some((size, count));
        }
        Ok(None)
    }
}
