//! Fault tables: an append interrupted at each point before the commit
//! leaves no trace, and the store stays usable; an append that fails after
//! the commit leaves the whole batch. Run against both stores through the
//! same fault points.

use super::{assert_log_is, batch, snapshot};
use crate::{AppendFault, InjectedFault, LogStore, MemStore, RedbStore, StoreError};

/// Asserts `err` is the injected fault `expected`, reported as an I/O error.
fn assert_injected(err: &StoreError, expected: AppendFault) {
    assert!(
        !err.is_refused(),
        "an injected fault is not a refusal: {err}"
    );
    let StoreError::Io { source, .. } = err else {
        panic!("expected an I/O error, got {err:?}");
    };
    assert_eq!(
        source.downcast_ref::<InjectedFault>(),
        Some(&InjectedFault(expected))
    );
}

/// Runs the fault table against `store`, using `inject` to queue a fault for
/// its next append. Returns the final size.
fn check_fault_table<S: LogStore>(store: &S, inject: impl Fn(&S, AppendFault)) -> u64 {
    const BATCH_LEN: u64 = 3;
    store.append(&batch(0, 3)).unwrap();
    store.append(&batch(3, 4)).unwrap();
    store.put_checkpoint(7, "c7").unwrap();

    let table = [
        AppendFault::BeforeWrite,
        AppendFault::AfterEntries(0),
        AppendFault::AfterEntries(1),
        AppendFault::AfterEntries(2),
        AppendFault::AfterEntries(99),
        AppendFault::AfterHashes(0),
        AppendFault::AfterHashes(1),
        AppendFault::AfterHashes(99),
        AppendFault::BeforeCommit,
    ];
    for fault in table {
        let size = store.size().unwrap();
        let next = batch(size, BATCH_LEN);
        // A position past the batch's end fires at the end, and says so.
        let reported = match fault {
            AppendFault::AfterEntries(n) => AppendFault::AfterEntries(n.min(next.entries.len())),
            AppendFault::AfterHashes(n) => AppendFault::AfterHashes(n.min(next.hashes.len())),
            other => other,
        };
        let before = snapshot(store, BATCH_LEN);
        inject(store, fault);
        let err = store.append(&next).unwrap_err();
        assert_injected(&err, reported);
        assert_eq!(snapshot(store, BATCH_LEN), before, "{fault:?} left a trace");
        // The very same batch goes through: nothing of it (an event id, a
        // hash index) lingers to refuse it.
        store
            .append(&next)
            .unwrap_or_else(|e| panic!("append after {fault:?}: {e}"));
        assert_log_is(store, size + BATCH_LEN);
    }

    // A fault is consumed by the append it was queued for, even a refused
    // one: the refusal wins and the next append is clean.
    let size = store.size().unwrap();
    inject(store, AppendFault::BeforeWrite);
    let err = store.append(&batch(size + 1, BATCH_LEN)).unwrap_err();
    assert!(err.is_refused(), "{err}");
    store.append(&batch(size, BATCH_LEN)).unwrap();

    // After the commit point the batch is there although the append failed:
    // the ambiguous outcome callers must recover from by reading the store.
    let size = store.size().unwrap();
    inject(store, AppendFault::AfterCommit);
    let err = store.append(&batch(size, BATCH_LEN)).unwrap_err();
    assert_injected(&err, AppendFault::AfterCommit);
    assert_log_is(store, size + BATCH_LEN);
    assert_eq!(store.latest_checkpoint().unwrap(), Some((7, "c7".into())));
    size + BATCH_LEN
}

#[test]
fn mem_store_fault_table() {
    let store = MemStore::new();
    check_fault_table(&store, MemStore::inject_append_fault);
}

#[test]
fn redb_store_fault_table_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let store = RedbStore::open(&path).unwrap();
    let size = check_fault_table(&store, RedbStore::inject_append_fault);
    drop(store);
    // Nothing a failed append wrote became durable either.
    let store = RedbStore::open(&path).unwrap();
    assert_log_is(&store, size);
}

#[test]
fn mem_store_convenience_hooks() {
    let store = MemStore::new();
    store.append(&batch(0, 2)).unwrap();
    let before = snapshot(&store, 4);

    store.fail_next_appends(2);
    for _ in 0..2 {
        let err = store.append(&batch(2, 3)).unwrap_err();
        assert_injected(&err, AppendFault::BeforeWrite);
    }
    store.fail_append_after(2);
    let err = store.append(&batch(2, 3)).unwrap_err();
    assert_injected(&err, AppendFault::AfterEntries(2));
    assert_eq!(snapshot(&store, 4), before);
    store.append(&batch(2, 3)).unwrap();

    store.fail_next_checkpoints(1);
    let err = store.put_checkpoint(5, "c5").unwrap_err();
    assert!(!err.is_refused());
    assert_eq!(store.latest_checkpoint().unwrap(), None);
    store.put_checkpoint(5, "c5").unwrap();
    assert_eq!(store.latest_checkpoint().unwrap(), Some((5, "c5".into())));
}
