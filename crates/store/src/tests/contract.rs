//! The `LogStore` contract, one function run against each implementation:
//! reads, ranges, event ids, hashes, refusals that leave nothing, checkpoint
//! monotonicity, cosignatures, and readers that see whole batches only.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{assert_log_is, batch, entry_bytes, event_id, hash_at, snapshot, stored_hash_count};
use crate::{
    BATCH_ENTRIES_MAX, CHECKPOINT_NOTE_BYTES_MAX, COSIGNATURE_LINE_BYTES_MAX,
    COSIGNATURES_PER_CHECKPOINT_MAX, ENTRIES_PAGE_MAX, ENTRY_BYTES_MAX, EVENT_ID_BYTES_MAX,
    LogStore, MemStore, READ_HASHES_MAX, RedbStore, Refusal, StoreError,
};

fn refusal(result: Result<(), StoreError>) -> Refusal {
    match result {
        Err(StoreError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn check_contract(store: &dyn LogStore) {
    // Empty store.
    assert_log_is(store, 0);
    assert_eq!(store.entries(0, 10).unwrap(), vec![]);
    assert_eq!(store.read_hashes(&[]).unwrap(), Vec::<[u8; 32]>::new());
    assert_eq!(
        store.read_hashes(&[0]).unwrap_err().refusal(),
        Some(&Refusal::HashNotStored {
            index: 0,
            hash_count: 0
        })
    );
    assert_eq!(store.latest_checkpoint().unwrap(), None);

    // Batches of 1, 3 and 5.
    store.append(&batch(0, 1)).unwrap();
    store.append(&batch(1, 3)).unwrap();
    store.append(&batch(4, 5)).unwrap();
    assert_log_is(store, 9);
    assert_eq!(store.entry(4).unwrap(), Some(entry_bytes(4)));
    assert_eq!(store.seq_of_event(&event_id(8)).unwrap(), Some(8));
    assert_eq!(store.seq_of_event("no-such-event").unwrap(), None);

    // Ranges: a middle slice, a slice cut by the end, past the end, and a
    // start whose end would overflow.
    let seqs = |page: Vec<(u64, Vec<u8>)>| page.into_iter().map(|(seq, _)| seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.entries(2, 3).unwrap()), vec![2, 3, 4]);
    assert_eq!(seqs(store.entries(7, 100).unwrap()), vec![7, 8]);
    assert_eq!(seqs(store.entries(9, 5).unwrap()), Vec::<u64>::new());
    assert_eq!(
        seqs(store.entries(u64::MAX, 10).unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(seqs(store.entries(3, 0).unwrap()), Vec::<u64>::new());

    // Hashes come back in the order asked, repeats included.
    assert_eq!(
        store.read_hashes(&[3, 0, 3]).unwrap(),
        vec![hash_at(3), hash_at(0), hash_at(3)]
    );
    let hash_count = stored_hash_count(9);
    assert_eq!(
        store.read_hashes(&[0, hash_count]).unwrap_err().refusal(),
        Some(&Refusal::HashNotStored {
            index: hash_count,
            hash_count
        })
    );
    // A range answers as the same indexes asked one by one, refusals too.
    assert_eq!(
        store.read_hash_range(2, 5).unwrap(),
        store.read_hashes(&[2, 3, 4, 5, 6]).unwrap()
    );
    assert_eq!(store.read_hash_range(4, 0).unwrap(), Vec::<[u8; 32]>::new());
    assert_eq!(
        store
            .read_hash_range(hash_count - 2, 3)
            .unwrap_err()
            .refusal(),
        Some(&Refusal::HashNotStored {
            index: hash_count,
            hash_count
        })
    );
    assert_eq!(
        store
            .read_hash_range(hash_count + 5, 1)
            .unwrap_err()
            .refusal(),
        Some(&Refusal::HashNotStored {
            index: hash_count + 5,
            hash_count
        })
    );
    assert_eq!(
        store
            .read_hash_range(0, READ_HASHES_MAX + 1)
            .unwrap_err()
            .refusal(),
        Some(&Refusal::TooManyHashIndexes {
            requested: READ_HASHES_MAX + 1
        })
    );
    let too_many = vec![0; READ_HASHES_MAX + 1];
    assert_eq!(
        store.read_hashes(&too_many).unwrap_err().refusal(),
        Some(&Refusal::TooManyHashIndexes {
            requested: READ_HASHES_MAX + 1
        })
    );

    check_refused_batches_leave_nothing(store);
    check_checkpoints(store);

    // A page is capped at ENTRIES_PAGE_MAX.
    let size = store.size().unwrap();
    store.append(&batch(size, ENTRIES_PAGE_MAX as u64)).unwrap();
    let page = store.entries(size, ENTRIES_PAGE_MAX + 10).unwrap();
    assert_eq!(page.len(), ENTRIES_PAGE_MAX);
    for (seq, (found, bytes)) in (size..).zip(&page) {
        assert_eq!(*found, seq);
        assert_eq!(bytes, &entry_bytes(seq));
    }
    assert_eq!(
        store.entries(0, ENTRIES_PAGE_MAX + 10).unwrap().len(),
        ENTRIES_PAGE_MAX
    );
}

/// Each refused batch must name its reason and leave the store exactly as
/// it was, event-id index included.
fn check_refused_batches_leave_nothing(store: &dyn LogStore) {
    let size = store.size().unwrap();
    let before = snapshot(store, 8);
    let next = || batch(size, 3);

    let mut empty = next();
    empty.entries.clear();
    empty.hashes.clear();
    let mut ahead = batch(size + 1, 3);
    ahead.first_hash_index = stored_hash_count(size);
    let behind = batch(size - 1, 3);
    let mut hash_ahead = next();
    hash_ahead.first_hash_index += 1;
    let mut too_large = next();
    too_large.entries[1].bytes = vec![7; ENTRY_BYTES_MAX + 1];
    let mut no_id = next();
    no_id.entries[2].event_id.clear();
    let mut long_id = next();
    long_id.entries[0].event_id = "e".repeat(EVENT_ID_BYTES_MAX + 1);
    // The duplicate comes last, so a store that writes as it goes has
    // already written the rest of the batch when it finds it.
    let mut stored_id = next();
    stored_id.entries[2].event_id = event_id(0);
    let mut repeated_id = next();
    repeated_id.entries[2].event_id = repeated_id.entries[0].event_id.clone();
    let huge = batch(size, BATCH_ENTRIES_MAX as u64 + 1);

    let table: Vec<(&str, crate::AppendBatch, Refusal)> = vec![
        ("empty", empty, Refusal::EmptyBatch),
        (
            "seq ahead",
            ahead,
            Refusal::SeqMismatch {
                expected: size,
                got: size + 1,
            },
        ),
        (
            "seq behind",
            behind,
            Refusal::SeqMismatch {
                expected: size,
                got: size - 1,
            },
        ),
        (
            "hash index ahead",
            hash_ahead,
            Refusal::HashIndexMismatch {
                expected: stored_hash_count(size),
                got: stored_hash_count(size) + 1,
            },
        ),
        (
            "entry too large",
            too_large,
            Refusal::EntryTooLarge {
                seq: size + 1,
                bytes: ENTRY_BYTES_MAX + 1,
            },
        ),
        (
            "empty event id",
            no_id,
            Refusal::EventIdInvalid {
                seq: size + 2,
                bytes: 0,
            },
        ),
        (
            "event id too long",
            long_id,
            Refusal::EventIdInvalid {
                seq: size,
                bytes: EVENT_ID_BYTES_MAX + 1,
            },
        ),
        (
            "event id already stored",
            stored_id,
            Refusal::DuplicateEventId {
                event_id: event_id(0),
                existing_seq: 0,
            },
        ),
        (
            "event id repeated in batch",
            repeated_id,
            Refusal::DuplicateEventId {
                event_id: event_id(size),
                existing_seq: size,
            },
        ),
        (
            "batch too large",
            huge,
            Refusal::BatchTooLarge {
                entries: BATCH_ENTRIES_MAX + 1,
                hashes: (stored_hash_count(size + BATCH_ENTRIES_MAX as u64 + 1)
                    - stored_hash_count(size)) as usize,
            },
        ),
    ];
    for (name, refused, expected) in table {
        assert_eq!(refusal(store.append(&refused)), expected, "{name}");
        assert_eq!(snapshot(store, 8), before, "{name} left a trace");
    }

    // Still usable, and the limit itself is accepted.
    let mut at_limit = next();
    at_limit.entries[0].bytes = vec![9; ENTRY_BYTES_MAX];
    store.append(&at_limit).unwrap();
    assert_eq!(store.entry(size).unwrap(), Some(vec![9; ENTRY_BYTES_MAX]));
    store
        .append(&batch(size + 3, 1))
        .expect("append after refusals");
    assert_eq!(store.size().unwrap(), size + 4);
}

fn check_checkpoints(store: &dyn LogStore) {
    let size = store.size().unwrap();
    assert_eq!(store.latest_checkpoint().unwrap(), None);
    store.put_checkpoint(0, "c0").unwrap();
    store.put_checkpoint(5, "c5").unwrap();
    assert_eq!(store.latest_checkpoint().unwrap(), Some((5, "c5".into())));

    assert_eq!(
        refusal(store.put_checkpoint(3, "c3")),
        Refusal::CheckpointSizeDecreased { latest: 5, size: 3 }
    );
    assert_eq!(
        refusal(store.put_checkpoint(size + 1, "beyond")),
        Refusal::CheckpointBeyondLog {
            size: size + 1,
            log_size: size
        }
    );
    let huge_note = "n".repeat(CHECKPOINT_NOTE_BYTES_MAX + 1);
    assert_eq!(
        refusal(store.put_checkpoint(size, &huge_note)),
        Refusal::CheckpointNoteTooLarge {
            bytes: CHECKPOINT_NOTE_BYTES_MAX + 1
        }
    );
    assert_eq!(store.latest_checkpoint().unwrap(), Some((5, "c5".into())));
    assert_eq!(store.checkpoint_at(3).unwrap(), None);

    // Same size again: the newer note (say, with cosignatures) replaces it.
    store.put_checkpoint(5, "c5 cosigned").unwrap();
    store.put_checkpoint(size, "c-latest").unwrap();
    assert_eq!(store.checkpoint_at(0).unwrap(), Some("c0".into()));
    assert_eq!(store.checkpoint_at(5).unwrap(), Some("c5 cosigned".into()));
    assert_eq!(store.checkpoint_at(size).unwrap(), Some("c-latest".into()));
    assert_eq!(
        store.latest_checkpoint().unwrap(),
        Some((size, "c-latest".into()))
    );
    check_cosignatures(store);
}

/// Cosignatures: only of recorded checkpoints, one line per witness and
/// size (the newer replaces the older), bounded, and found by count.
fn check_cosignatures(store: &dyn LogStore) {
    assert_eq!(store.latest_cosigned(1).unwrap(), None);
    assert_eq!(
        refusal(store.put_cosignature(3, "w1", "line")),
        Refusal::CosignedCheckpointMissing { size: 3 }
    );
    assert_eq!(
        refusal(store.put_cosignature(5, "", "line")),
        Refusal::WitnessIdInvalid { bytes: 0 }
    );
    let long_line = "l".repeat(COSIGNATURE_LINE_BYTES_MAX + 1);
    assert_eq!(
        refusal(store.put_cosignature(5, "w1", &long_line)),
        Refusal::CosignatureLineInvalid {
            size: 5,
            bytes: COSIGNATURE_LINE_BYTES_MAX + 1
        }
    );
    store.put_cosignature(5, "w2", "w2 at 5").unwrap();
    store.put_cosignature(5, "w1", "w1 at 5, old").unwrap();
    store.put_cosignature(5, "w1", "w1 at 5").unwrap();
    store.put_cosignature(0, "w1", "w1 at 0").unwrap();
    assert_eq!(
        store.cosignatures(5).unwrap(),
        vec![
            ("w1".to_owned(), "w1 at 5".to_owned()),
            ("w2".to_owned(), "w2 at 5".to_owned())
        ]
    );
    assert_eq!(store.cosignatures(3).unwrap(), vec![]);
    assert_eq!(store.latest_cosigned(1).unwrap(), Some(5));
    assert_eq!(store.latest_cosigned(2).unwrap(), Some(5));
    assert_eq!(store.latest_cosigned(3).unwrap(), None);
    for n in 2..=COSIGNATURES_PER_CHECKPOINT_MAX {
        store.put_cosignature(0, &format!("w{n:02}"), "l").unwrap();
    }
    assert_eq!(
        refusal(store.put_cosignature(0, "one too many", "l")),
        Refusal::TooManyCosignatures { size: 0 }
    );
    // Replacing a kept witness's line is not one more.
    store.put_cosignature(0, "w1", "w1 at 0, newer").unwrap();
    assert_eq!(
        store.cosignatures(0).unwrap().len(),
        COSIGNATURES_PER_CHECKPOINT_MAX
    );
    assert_eq!(store.latest_cosigned(3).unwrap(), Some(0));
}

/// A reader racing the writer sees whole batches: every page it reads is a
/// prefix of whole batches, byte-identical, and the hash count it reads is
/// that of a whole number of batches.
fn check_readers_see_whole_batches(store: &dyn LogStore) {
    const BATCH_LEN: u64 = 5;
    const BATCHES: u64 = 40;
    let started = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = store.entries(0, ENTRIES_PAGE_MAX).unwrap();
                assert_eq!(page.len() as u64 % BATCH_LEN, 0, "partial batch seen");
                for (seq, (found, bytes)) in (0..).zip(&page) {
                    assert_eq!(*found, seq);
                    assert_eq!(bytes, &entry_bytes(seq));
                }
                let hash_count = store.hash_count().unwrap();
                let whole = (0..=BATCHES).any(|k| stored_hash_count(k * BATCH_LEN) == hash_count);
                assert!(whole, "hash count {hash_count} is mid-batch");
                started.store(true, Ordering::SeqCst);
                if finished {
                    return;
                }
            }
        });
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        for k in 0..BATCHES {
            store.append(&batch(k * BATCH_LEN, BATCH_LEN)).unwrap();
            std::thread::yield_now();
        }
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap();
    });
    assert_log_is(store, BATCHES * BATCH_LEN);
}

/// Unsynced appends and checkpoints are appends and checkpoints: seen by
/// readers at once, refused for the same reasons with nothing written, and
/// continued by durable ones.
fn check_unsynced_appends(store: &dyn LogStore) {
    store.append(&batch(0, 2)).unwrap();
    store.append_unsynced(&batch(2, 3)).unwrap();
    assert_log_is(store, 5);
    let before = snapshot(store, 4);
    assert_eq!(
        refusal(store.append_unsynced(&batch(4, 2))),
        Refusal::SeqMismatch {
            expected: 5,
            got: 4
        }
    );
    let mut stored_id = batch(5, 3);
    stored_id.entries[2].event_id = event_id(1);
    assert_eq!(
        refusal(store.append_unsynced(&stored_id)),
        Refusal::DuplicateEventId {
            event_id: event_id(1),
            existing_seq: 1
        }
    );
    assert_eq!(snapshot(store, 4), before, "a refused batch left nothing");
    store.sync().unwrap();
    store.append_unsynced(&batch(5, 1)).unwrap();
    store.append(&batch(6, 4)).unwrap();
    store.sync().unwrap();
    assert_log_is(store, 10);

    // Unsynced checkpoints are checkpoints: seen at once, refused alike.
    store.put_checkpoint_unsynced(6, "c6").unwrap();
    store.put_checkpoint_unsynced(10, "c10").unwrap();
    assert_eq!(
        refusal(store.put_checkpoint_unsynced(8, "c8")),
        Refusal::CheckpointSizeDecreased {
            latest: 10,
            size: 8
        }
    );
    assert_eq!(
        refusal(store.put_checkpoint_unsynced(11, "beyond")),
        Refusal::CheckpointBeyondLog {
            size: 11,
            log_size: 10
        }
    );
    store.sync().unwrap();
    assert_eq!(store.latest_checkpoint().unwrap(), Some((10, "c10".into())));
    assert_eq!(store.checkpoint_at(6).unwrap().as_deref(), Some("c6"));
    assert_eq!(store.checkpoint_at(8).unwrap(), None);
}

#[test]
fn mem_store_keeps_the_contract() {
    check_contract(&MemStore::new());
}

#[test]
fn mem_store_appends_unsynced_as_the_contract_says() {
    check_unsynced_appends(&MemStore::new());
}

#[test]
fn redb_store_appends_unsynced_as_the_contract_says() {
    let dir = tempfile::tempdir().unwrap();
    check_unsynced_appends(&RedbStore::open(&dir.path().join("log.redb")).unwrap());
}

#[test]
fn pg_store_appends_unsynced_as_the_contract_says() {
    check_unsynced_appends(&crate::PgStore::open(&crate::test_database()).unwrap());
}

#[test]
fn redb_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    check_contract(&RedbStore::open(&dir.path().join("log.redb")).unwrap());
}

#[test]
fn pg_store_keeps_the_contract() {
    check_contract(&crate::PgStore::open(&crate::test_database()).unwrap());
}

#[test]
fn pg_store_readers_see_whole_batches() {
    check_readers_see_whole_batches(&crate::PgStore::open(&crate::test_database()).unwrap());
}

#[test]
fn pg_store_keeps_its_log_across_a_reopen_and_migrates_once() {
    let url = crate::test_database();
    {
        let store = crate::PgStore::open(&url).unwrap();
        store.append(&batch(0, 7)).unwrap();
        store.put_checkpoint(7, "c7").unwrap();
    }
    // A second open finds the schema at its version and the log intact.
    let store = crate::PgStore::open(&url).unwrap();
    assert_log_is(&store, 7);
    assert_eq!(store.latest_checkpoint().unwrap(), Some((7, "c7".into())));
}

#[test]
fn mem_store_readers_see_whole_batches() {
    check_readers_see_whole_batches(&MemStore::new());
}

#[test]
fn redb_store_readers_see_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    check_readers_see_whole_batches(&RedbStore::open(&dir.path().join("log.redb")).unwrap());
}

/// Runs `sql` on the database at `url` from a connection of its own.
fn pg_execute(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client.batch_execute(&sql).await.unwrap();
        });
    })
    .join()
    .unwrap();
}

#[test]
fn one_writer_holds_the_lease_and_a_deposed_writer_cannot_write() {
    let url = crate::test_database();
    let first = crate::PgStore::open(&url).unwrap();
    let second = crate::PgStore::open(&url).unwrap();
    assert_eq!(
        first.try_lead("first", "http://first:50051").unwrap(),
        Some(1)
    );
    // Taken again by its holder: the same epoch.
    assert_eq!(
        first.try_lead("first", "http://first:50051").unwrap(),
        Some(1)
    );
    assert_eq!(
        second.try_lead("second", "http://second:50051").unwrap(),
        None
    );
    let writer = second.writer().unwrap();
    assert_eq!(
        (writer.epoch, writer.address.as_str()),
        (1, "http://first:50051")
    );
    first.append(&batch(0, 3)).unwrap();

    // The first writer's lease session ends (as when its machine is cut
    // off and the database drops the connection): the second takes over.
    pg_execute(
        &url,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND objid = {} AND pid <> pg_backend_pid()",
            (crate::pg_store::lease_key() & 0xffff_ffff)
        ),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(10), first.lease_lost())
            .await
            .expect("the lost lease is noticed");
    });
    assert_eq!(
        second.try_lead("second", "http://second:50051").unwrap(),
        Some(2)
    );
    // The deposed writer's late batch fails and leaves nothing.
    let error = first.append(&batch(3, 2)).unwrap_err();
    assert!(error.to_string().contains("appending"), "{error}");
    assert!(format!("{error:?}").contains("deposed"), "{error:?}");
    assert_log_is(&second, 3);
    second.append(&batch(3, 2)).unwrap();
    assert_log_is(&first, 5);
}
