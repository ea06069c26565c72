//! The sequencer over the redb store: restart, tampering, interrupted
//! batches, proofs and the balance oracle.

use std::collections::BTreeMap;
use std::sync::Arc;

use aidledger::{OpenError, Outcome, Sequencer};
use aidledger_ledger::{Reason, encode_entry};
use aidledger_store::{AppendFault, LogStore, MemStore, RedbStore};
use aidledger_tests::generator::Generator;
use aidledger_tests::{ORIGIN, at, config, ledger_key, open_redb};
use aidledger_tlog::{LogSigner, LogVerifier, verify_consistency, verify_inclusion};

fn vkey() -> String {
    LogSigner::new(ORIGIN, ledger_key()).unwrap().vkey()
}

/// A ledger with the programme set up and `events` more events appended.
fn populated(dir: &std::path::Path, seed: u64, events: usize) -> (Sequencer, Generator) {
    let mut generator = Generator::new(seed);
    let mut ledger = open_redb(dir, generator.authority()).unwrap();
    append_all(&mut ledger, generator.setup(&vkey()));
    for _ in 0..events / 100 {
        append_all(&mut ledger, generator.events(100));
        ledger.sign_checkpoint().unwrap();
    }
    append_all(&mut ledger, generator.events(events % 100));
    (ledger, generator)
}

#[track_caller]
fn append_all(ledger: &mut Sequencer, events: Vec<aidledger_wire::pb::SignedEvent>) {
    let results = ledger.append_batch(events, at(60)).unwrap();
    for (i, result) in results.iter().enumerate() {
        assert!(
            matches!(result, Ok(Outcome::Appended { .. })),
            "event {i} of the batch: {result:?}"
        );
    }
}

fn ledger_balances(
    ledger: &Sequencer,
) -> BTreeMap<(String, String, aidledger_ledger::Earmark), u64> {
    ledger
        .state()
        .balances()
        .map(|(key, amount)| {
            (
                (
                    key.org_id.to_string(),
                    key.asset_id.to_string(),
                    key.earmark.clone(),
                ),
                amount,
            )
        })
        .collect()
}

#[test]
fn balances_match_the_generators_independent_model() {
    for seed in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, generator) = populated(dir.path(), seed, 1_500);
        let expected: BTreeMap<_, _> = generator.balances().map(|(k, v)| (k.clone(), v)).collect();
        assert!(
            expected.len() > 10,
            "seed {seed}: the generator moved money around"
        );
        assert_eq!(ledger_balances(&ledger), expected, "seed {seed}");
    }
}

#[test]
fn restart_rebuilds_the_same_state_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, generator) = populated(dir.path(), 7, 750);
    ledger.sign_checkpoint().unwrap();
    let (size, root, state) = (ledger.size(), ledger.root(), ledger.state().clone());
    drop(ledger);
    let reopened = open_redb(dir.path(), generator.authority()).unwrap();
    assert_eq!(reopened.size(), size);
    assert_eq!(reopened.root(), root);
    assert!(
        reopened.state() == &state,
        "replay rebuilt a different state"
    );
    assert_eq!(reopened.latest_checkpoint().unwrap().checkpoint.size, size);
}

#[test]
fn identical_resubmission_returns_the_original_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, mut generator) = populated(dir.path(), 11, 10);
    let event = generator.events(1).remove(0);
    let first = ledger.append_batch(vec![event.clone()], at(61)).unwrap();
    let Ok(Outcome::Appended { seq, .. }) = first[0] else {
        panic!("{first:?}")
    };
    let size = ledger.size();
    // Again in a later batch, and twice within one batch.
    let again = ledger
        .append_batch(vec![event.clone(), event], at(62))
        .unwrap();
    assert_eq!(
        again,
        vec![
            Ok(Outcome::Duplicate { seq }),
            Ok(Outcome::Duplicate { seq })
        ]
    );
    assert_eq!(ledger.size(), size);
}

#[test]
fn checkpoints_and_proofs_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = populated(dir.path(), 5, 300);
    let old = ledger.sign_checkpoint().unwrap().clone();
    let verifier = LogVerifier::from_vkey(&vkey()).unwrap();
    assert_eq!(verifier.verify(&old.note).unwrap(), old.checkpoint);
    let store = ledger.store().clone();
    for seq in [0, 1, old.checkpoint.size / 2, old.checkpoint.size - 1] {
        let proof = ledger.inclusion_proof(seq, old.checkpoint.size).unwrap();
        let leaf = aidledger::proofs::leaf_hash(store.as_ref(), seq).unwrap();
        verify_inclusion(
            &leaf,
            seq,
            old.checkpoint.size,
            &proof,
            &old.checkpoint.root,
        )
        .unwrap();
        // The stored leaf hash is the hash of the stored bytes.
        let bytes = store.entry(seq).unwrap().unwrap();
        assert_eq!(aidledger_tlog::leaf_hash(&bytes), leaf);
    }
    let mut generator = Generator::new(5);
    generator.setup(&vkey());
    let _ = generator.events(300);
    append_all(&mut ledger, generator.events(50));
    let new = ledger.sign_checkpoint().unwrap().clone();
    assert!(new.checkpoint.size > old.checkpoint.size);
    let proof = ledger
        .consistency_proof(old.checkpoint.size, new.checkpoint.size)
        .unwrap();
    verify_consistency(
        old.checkpoint.size,
        new.checkpoint.size,
        &old.checkpoint.root,
        &new.checkpoint.root,
        &proof,
    )
    .unwrap();
    // Beyond the tree is an error, not a panic.
    assert!(ledger.inclusion_proof(0, new.checkpoint.size + 1).is_err());
}

#[test]
fn recorded_time_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, mut generator) = populated(dir.path(), 9, 10);
    let results = ledger.append_batch(generator.events(1), at(10)).unwrap();
    let Ok(Outcome::Appended { entry, .. }) = &results[0] else {
        panic!("{results:?}")
    };
    let decoded =
        <aidledger_wire::pb::LedgerEntry as aidledger_wire::Message>::decode(entry.as_slice())
            .unwrap();
    // The batch before was recorded at at(60); the clock going back to at(10)
    // does not move recorded time back.
    assert_eq!(decoded.recorded_at.unwrap().seconds, at(60).seconds);
}

#[test]
fn an_oversized_entry_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = populated(dir.path(), 4, 0);
    let authority = Generator::new(4);
    let mut signed = {
        let mut g = Generator::new(4);
        g.setup(&vkey());
        g.events(1).remove(0)
    };
    // Pad the event with an unknown field: still decodable, still signed, too big.
    let mut event = signed.event.to_vec();
    event.extend_from_slice(&[0xfa, 0x3f]); // field 1023, length-delimited
    event.extend_from_slice(&[0x80, 0x80, 0x04]); // 65,536 bytes
    event.extend(std::iter::repeat_n(0u8, 65_536));
    signed = aidledger_ledger::sign_event(authority.authority(), ORIGIN, event);
    let (size, state) = (ledger.size(), ledger.state().clone());
    let results = ledger.append_batch(vec![signed], at(61)).unwrap();
    let Err(rejection) = &results[0] else {
        panic!("{results:?}")
    };
    assert_eq!(rejection.reason, Reason::EntryTooLarge);
    assert_eq!(ledger.size(), size);
    assert!(ledger.state() == &state);
}

#[test]
fn a_modified_stored_entry_is_caught_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, generator) = populated(dir.path(), 13, 400);
    ledger.sign_checkpoint().unwrap();
    let bad_seq = 250;
    let store = ledger.store().clone();
    let mut bytes = store.entry(bad_seq).unwrap().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    drop(ledger);
    drop(store);
    let redb = RedbStore::open(&dir.path().join("ledger.redb")).unwrap();
    redb.overwrite_entry_for_tests(bad_seq, &bytes).unwrap();
    drop(redb);
    let error = open_redb(dir.path(), generator.authority()).unwrap_err();
    assert_eq!(error.first_bad_seq(), Some(bad_seq), "{error}");
    assert!(error.to_string().contains(&bad_seq.to_string()), "{error}");
}

#[test]
fn a_rewritten_entry_with_a_consistent_chain_is_caught_by_the_checkpoint() {
    // An operator who rewrites the last entry and its stored hashes keeps
    // the chain and the tree hashes consistent; only the signed root catches it.
    let store = Arc::new(MemStore::new());
    let mut generator = Generator::new(21);
    let mut ledger = Sequencer::open(store.clone(), config(generator.authority())).unwrap();
    append_all(&mut ledger, generator.setup(&vkey()));
    append_all(&mut ledger, generator.events(20));
    ledger.sign_checkpoint().unwrap();
    let last = ledger.size() - 1;
    let original = store.entry(last).unwrap().unwrap();
    let decoded =
        <aidledger_wire::pb::LedgerEntry as aidledger_wire::Message>::decode(original.as_slice())
            .unwrap();
    let mut prev = [0u8; 32];
    prev.copy_from_slice(&decoded.prev_hash);
    // Same event, recorded one second later: a different but well-formed entry.
    let forged = encode_entry(
        last,
        &prev,
        aidledger_ledger::Timestamp::from_seconds(decoded.recorded_at.unwrap().seconds + 1),
        &decoded.signed_event.unwrap(),
    );
    store.overwrite_entry(last, forged.clone()).unwrap();
    store
        .overwrite_hash(
            aidledger_tlog::stored_hash_index(0, last),
            aidledger_tlog::leaf_hash(&forged).0,
        )
        .unwrap();
    drop(ledger);
    let error = Sequencer::open(store, config(generator.authority())).unwrap_err();
    assert!(
        matches!(
            error,
            OpenError::RootMismatch { .. } | OpenError::TreeHash { .. }
        ),
        "{error}"
    );
}

#[test]
fn a_batch_interrupted_before_its_commit_leaves_no_trace() {
    for fault in [
        AppendFault::BeforeWrite,
        AppendFault::AfterEntries(1),
        AppendFault::AfterHashes(1),
        AppendFault::BeforeCommit,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut ledger, mut generator) = populated(dir.path(), 17, 200);
        ledger.sign_checkpoint().unwrap();
        let (size, root, state) = (ledger.size(), ledger.root(), ledger.state().clone());
        drop(ledger);
        let redb = Arc::new(RedbStore::open(&dir.path().join("ledger.redb")).unwrap());
        let mut ledger = Sequencer::open(redb.clone(), config(generator.authority())).unwrap();
        let batch = generator.events(50);
        redb.inject_append_fault(fault);
        assert!(
            ledger.append_batch(batch.clone(), at(70)).is_err(),
            "{fault:?}: the append must fail"
        );
        // After a storage failure the sequencer stops until reopened.
        assert!(
            ledger.append_batch(batch.clone(), at(71)).is_err(),
            "{fault:?}"
        );
        drop(ledger);
        drop(redb);
        let mut reopened = open_redb(dir.path(), generator.authority()).unwrap();
        assert_eq!(reopened.size(), size, "{fault:?}");
        assert_eq!(reopened.root(), root, "{fault:?}");
        assert!(reopened.state() == &state, "{fault:?}");
        // And the same batch then appends.
        append_all(&mut reopened, batch);
    }
}

/// Regression: the writer grouped 64 concurrent batches of 100 into one
/// group of more than 4,096 events, the store refused a transaction that
/// large, and the ledger stopped. A group of any size is now split into
/// store-sized transactions.
#[test]
fn a_group_larger_than_one_store_transaction_is_split_not_refused() {
    let store = Arc::new(MemStore::new());
    let mut generator = Generator::new(31);
    let mut ledger = Sequencer::open(store.clone(), config(generator.authority())).unwrap();
    append_all(&mut ledger, generator.setup(&vkey()));
    let group = aidledger_store::BATCH_ENTRIES_MAX * 2 + 100;
    append_all(&mut ledger, generator.receipts(group));
    let (size, root) = (ledger.size(), ledger.root());
    drop(ledger);
    let reopened = Sequencer::open(store, config(generator.authority())).unwrap();
    assert_eq!(reopened.size(), size);
    assert_eq!(reopened.root(), root);
}
