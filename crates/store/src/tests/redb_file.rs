//! What only the file store can show: reopening keeps everything, an
//! uncommitted transaction leaves nothing, a damaged or foreign file is
//! refused at open, and the tamper hooks rewrite an entry in place.

use ::redb::{Database, ReadableDatabase, ReadableTableMetadata};

use super::{assert_log_is, batch, entry_bytes, event_id, hash_at, snapshot, stored_hash_count};
use crate::redb_store::{CHECKPOINTS, ENTRIES, EVENT_IDS, HASHES};
use crate::{LogStore, MemStore, RedbStore, Refusal, StoreError};

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let store = RedbStore::open(&path).unwrap();
    store.append(&batch(0, 1)).unwrap();
    store.append(&batch(1, 64)).unwrap();
    store.put_checkpoint(1, "c1").unwrap();
    store.append(&batch(65, 10)).unwrap();
    store.put_checkpoint(75, "c75").unwrap();
    let before = snapshot(&store, 2);
    drop(store);

    let store = RedbStore::open(&path).unwrap();
    assert_eq!(snapshot(&store, 2), before);
    assert_log_is(&store, 75);
    assert_eq!(store.checkpoint_at(1).unwrap(), Some("c1".into()));
    assert_eq!(store.latest_checkpoint().unwrap(), Some((75, "c75".into())));
    // And the log goes on where it stopped.
    store.append(&batch(75, 5)).unwrap();
    assert_log_is(&store, 80);
}

#[test]
fn synced_appends_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let store = RedbStore::open(&path).unwrap();
    store.append_unsynced(&batch(0, 3)).unwrap();
    store.append_unsynced(&batch(3, 5)).unwrap();
    store.sync().unwrap();
    drop(store);
    let store = RedbStore::open(&path).unwrap();
    assert_log_is(&store, 8);
}

/// What a mirror's file holds besides the event ids: every entry, every
/// hash, nothing past the end; and a lookup by event id is refused.
fn assert_mirror_is(store: &RedbStore, size: u64) {
    assert_eq!(store.size().unwrap(), size);
    assert_eq!(store.hash_count().unwrap(), stored_hash_count(size));
    let entries = store.entries(0, size as usize + 1).unwrap();
    let expected: Vec<_> = (0..size).map(|seq| (seq, entry_bytes(seq))).collect();
    assert_eq!(entries, expected);
    let indexes: Vec<u64> = (0..stored_hash_count(size)).collect();
    let hashes: Vec<_> = indexes.iter().map(|&index| hash_at(index)).collect();
    assert_eq!(store.read_hashes(&indexes).unwrap(), hashes);
    assert_eq!(
        store.seq_of_event(&event_id(0)).unwrap_err().refusal(),
        Some(&Refusal::EventIdsNotKept)
    );
}

#[test]
fn a_mirror_keeps_no_event_index_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.redb");
    let mirror = RedbStore::open_mirror(&path, 1 << 20).unwrap();
    mirror.append_unsynced(&batch(0, 4)).unwrap();
    // The ledger it copies refused repeats; the mirror does not look.
    let mut repeated = batch(4, 2);
    repeated.entries[1].event_id = event_id(0);
    mirror.append(&repeated).unwrap();
    mirror.put_checkpoint(6, "c6").unwrap();
    assert_mirror_is(&mirror, 6);
    drop(mirror);

    // A mirror's file is never taken for a store that finds events by id.
    assert_eq!(
        RedbStore::open(&path).unwrap_err().refusal(),
        Some(&Refusal::EventIdsNotKept)
    );
    let mirror = RedbStore::open_mirror(&path, 1 << 20).unwrap();
    assert_mirror_is(&mirror, 6);
    assert_eq!(mirror.latest_checkpoint().unwrap(), Some((6, "c6".into())));
}

#[test]
fn a_store_opened_as_a_mirror_drops_its_event_index_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let store = RedbStore::open(&path).unwrap();
    store.append(&batch(0, 9)).unwrap();
    store.put_checkpoint(9, "c9").unwrap();
    drop(store);

    let mirror = RedbStore::open_mirror(&path, 1 << 20).unwrap();
    assert_mirror_is(&mirror, 9);
    assert_eq!(mirror.checkpoint_at(9).unwrap(), Some("c9".into()));
    mirror.append(&batch(9, 3)).unwrap();
    drop(mirror);
    let db = Database::create(&path).unwrap();
    let txn = db.begin_read().unwrap();
    assert_eq!(txn.open_table(EVENT_IDS).unwrap().len().unwrap(), 0);
    drop(txn);
    drop(db);
    assert_mirror_is(&RedbStore::open_mirror(&path, 1 << 20).unwrap(), 12);
}

#[test]
fn dropped_write_transaction_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let store = RedbStore::open(&path).unwrap();
    store.append(&batch(0, 4)).unwrap();
    let before = snapshot(&store, 2);

    // Write the next entry, its id and a hash, then drop instead of commit,
    // as a crash or an error before the commit point does.
    {
        let txn = store.begin_write().unwrap();
        let mut entries = txn.open_table(ENTRIES).unwrap();
        entries.insert(4, entry_bytes(4).as_slice()).unwrap();
        let mut ids = txn.open_table(EVENT_IDS).unwrap();
        ids.insert(event_id(4).as_str(), 4).unwrap();
        let mut hashes = txn.open_table(HASHES).unwrap();
        hashes.insert(stored_hash_count(4), hash_at(0)).unwrap();
        assert_eq!(
            entries.len().unwrap(),
            5,
            "the transaction sees its own write"
        );
    }
    assert_eq!(snapshot(&store, 2), before);
    drop(store);

    let store = RedbStore::open(&path).unwrap();
    assert_eq!(snapshot(&store, 2), before);
    store.append(&batch(4, 2)).unwrap();
    assert_log_is(&store, 6);
}

/// Writes raw rows the store would never write, then expects open to call
/// the file corrupt.
fn assert_open_finds_corrupt(damage: impl FnOnce(&Database)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let store = RedbStore::open(&path).unwrap();
    store.append(&batch(0, 3)).unwrap();
    drop(store);
    {
        let db = Database::create(&path).unwrap();
        damage(&db);
    }
    match RedbStore::open(&path) {
        Err(StoreError::Corrupt { .. }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn open_refuses_a_gap_in_entries() {
    assert_open_finds_corrupt(|db| {
        let txn = db.begin_write().unwrap();
        txn.open_table(ENTRIES).unwrap().remove(1).unwrap();
        txn.open_table(EVENT_IDS)
            .unwrap()
            .remove(event_id(1).as_str())
            .unwrap();
        txn.commit().unwrap();
    });
}

#[test]
fn open_refuses_an_event_index_out_of_step() {
    assert_open_finds_corrupt(|db| {
        let txn = db.begin_write().unwrap();
        txn.open_table(EVENT_IDS)
            .unwrap()
            .insert("stray", 9)
            .unwrap();
        txn.commit().unwrap();
    });
}

#[test]
fn open_refuses_a_gap_in_hashes() {
    assert_open_finds_corrupt(|db| {
        let txn = db.begin_write().unwrap();
        txn.open_table(HASHES).unwrap().remove(0).unwrap();
        txn.commit().unwrap();
    });
}

#[test]
fn open_refuses_a_checkpoint_beyond_the_log() {
    assert_open_finds_corrupt(|db| {
        let txn = db.begin_write().unwrap();
        txn.open_table(CHECKPOINTS)
            .unwrap()
            .insert(4, "c4")
            .unwrap();
        txn.commit().unwrap();
    });
}

#[test]
fn open_refuses_a_file_that_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    std::fs::write(&path, vec![0x5a; 16 * 1024]).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(!err.is_refused(), "{err}");
}

#[test]
fn second_open_of_an_open_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let store = RedbStore::open(&path).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    store.append(&batch(0, 1)).unwrap();
}

#[test]
fn redb_overwrite_hook_rewrites_only_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let store = RedbStore::open(&path).unwrap();
    store.append(&batch(0, 5)).unwrap();
    store.overwrite_entry_for_tests(2, b"tampered").unwrap();
    assert_eq!(
        store
            .overwrite_entry_for_tests(5, b"x")
            .unwrap_err()
            .refusal(),
        Some(&Refusal::EntryNotStored { seq: 5, size: 5 })
    );
    drop(store);

    let store = RedbStore::open(&path).unwrap();
    assert_tampered_at_2(&store);
}

#[test]
fn mem_overwrite_hook_rewrites_only_the_entry() {
    let store = MemStore::new();
    store.append(&batch(0, 5)).unwrap();
    store.overwrite_entry(2, b"tampered".to_vec()).unwrap();
    assert_eq!(
        store
            .overwrite_entry(5, b"x".to_vec())
            .unwrap_err()
            .refusal(),
        Some(&Refusal::EntryNotStored { seq: 5, size: 5 })
    );
    assert_tampered_at_2(&store);
}

fn assert_tampered_at_2(store: &dyn LogStore) {
    assert_eq!(store.size().unwrap(), 5);
    assert_eq!(store.entry(2).unwrap(), Some(b"tampered".to_vec()));
    assert_eq!(store.entry(1).unwrap(), Some(entry_bytes(1)));
    assert_eq!(store.entry(3).unwrap(), Some(entry_bytes(3)));
    assert_eq!(store.seq_of_event(&event_id(2)).unwrap(), Some(2));
    let count = stored_hash_count(5);
    let indexes: Vec<u64> = (0..count).collect();
    let expected: Vec<_> = indexes.iter().map(|&i| hash_at(i)).collect();
    assert_eq!(store.read_hashes(&indexes).unwrap(), expected);
}

/// The hash table's own value type is redb's `[u8; 32]` on disk: a file
/// written with either is read with the other, byte for byte, so stores
/// written before it came open as they were.
#[test]
fn stored_hashes_read_as_redb_arrays_and_back() {
    use ::redb::TableDefinition;
    const AS_ARRAYS: TableDefinition<u64, [u8; 32]> = TableDefinition::new("hashes");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let store = RedbStore::open(&path).unwrap();
    store.append(&batch(0, 8)).unwrap();
    let hash_count = store.hash_count().unwrap();
    let written = store.read_hash_range(0, hash_count as usize).unwrap();
    drop(store);

    // Written by the store, read as redb's arrays.
    let db = Database::open(&path).unwrap();
    {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(AS_ARRAYS).unwrap();
        let read: Vec<[u8; 32]> = table
            .range(0..hash_count)
            .unwrap()
            .map(|row| row.unwrap().1.value())
            .collect();
        assert_eq!(read, written);
    }
    // Written as redb's arrays, read by the store.
    {
        let txn = db.begin_write().unwrap();
        txn.open_table(AS_ARRAYS)
            .unwrap()
            .insert(0, [0xa5; 32])
            .unwrap();
        txn.commit().unwrap();
    }
    drop(db);
    let db = Database::open(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(HASHES).unwrap();
    assert_eq!(table.get(0).unwrap().unwrap().value(), [0xa5; 32]);
    assert_eq!(table.get(1).unwrap().unwrap().value(), written[1]);
}
