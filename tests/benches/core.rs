//! Ledger core benchmark, run with `cargo bench -p aidledger-tests --bench core`.
//!
//! Everything is measured side by side in one run, because the machine is
//! shared and noisy; the output is the markdown table BENCHMARKS.md keeps.
//! Set `AIDLEDGER_BENCH_SCALE` below 1.0 (e.g. 0.05) for a quick smoke run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aidledger::{Outcome, Sequencer};
use aidledger_ledger::{CheckedEvent, Rejection, signing_message};
use aidledger_store::{AppendBatch, LogStore, NewEntry, RedbStore};
use aidledger_tests::generator::Generator;
use aidledger_tests::{ORIGIN, at, config, ledger_key, scaled};
use aidledger_tlog::{
    LogSigner, TreeBuilder, ed25519, leaf_hash, stored_hash_count, verify_consistency,
    verify_inclusion,
};
use aidledger_wire::pb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    // The allocator the programs run on.
    aidledger_alloc::init();
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // --- strict verification, one core and all cores -------------------
    let mut generator = Generator::new(42);
    let vkey = LogSigner::new(ORIGIN, ledger_key()).unwrap().vkey();
    generator.setup(&vkey);
    let verify_count = scaled(40_000);
    let events = generator.events(verify_count);
    let verify_one = |signed: &pb::SignedEvent| {
        let key: [u8; 32] = signed.public_key[..].try_into().unwrap();
        let sig: [u8; 64] = signed.signature[..].try_into().unwrap();
        ed25519::verify_strict(&key, &signing_message(ORIGIN, &signed.event), &sig).unwrap();
    };
    let started = Instant::now();
    events.iter().for_each(verify_one);
    let one_core = rate(events.len(), started.elapsed());
    let started = Instant::now();
    events.par_iter().for_each(verify_one);
    let all_cores = rate(events.len(), started.elapsed());
    rows.push((
        "strict Ed25519 verification, 1 core".into(),
        format!("{one_core:.0} sig/s"),
        "baseline".into(),
    ));
    rows.push((
        format!(
            "strict Ed25519 verification, {} cores",
            rayon::current_num_threads()
        ),
        format!("{all_cores:.0} sig/s"),
        format!("{:.2}x one core", all_cores / one_core),
    ));

    // --- append throughput at group-commit sizes -------------------------
    // Pre-verified events, so this measures sequencing, rules, hashing and
    // the fsync'd store transaction.
    let mut append_rates = Vec::new();
    for (batch_size, batches) in [(1usize, scaled(300)), (64, scaled(60)), (1024, scaled(12))] {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn LogStore> =
            Arc::new(RedbStore::open(&dir.path().join("bench.redb")).unwrap());
        let mut generator = Generator::new(7);
        let mut ledger = Sequencer::open(store, config(generator.authority())).unwrap();
        let setup = generator.setup(&vkey);
        assert_ok(ledger.append_batch(setup, at(0)).unwrap());
        let batches: Vec<Vec<Result<CheckedEvent, Rejection>>> = (0..batches)
            .map(|_| aidledger::sequencer::verify_all(ORIGIN, generator.events(batch_size)))
            .collect();
        let count = batch_size * batches.len();
        let started = Instant::now();
        for batch in batches {
            assert_ok(ledger.append_checked(batch, at(1)).unwrap());
        }
        let events_per_second = rate(count, started.elapsed());
        append_rates.push((batch_size, events_per_second));
    }
    let single = append_rates[0].1;
    for (batch_size, events_per_second) in &append_rates {
        rows.push((
            format!("append into redb, group commit of {batch_size}"),
            format!("{events_per_second:.0} events/s"),
            format!(
                "{:.1}x commit-of-1; {:.0}% of all-core verify rate",
                events_per_second / single,
                100.0 * events_per_second / all_cores
            ),
        ));
    }

    // --- proofs at 1M entries --------------------------------------------
    let leaves = scaled(1_000_000) as u64;
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("proofs.redb")).unwrap();
    let mut tree = TreeBuilder::new();
    let mut leaf_hashes = Vec::with_capacity(leaves as usize);
    let build_started = Instant::now();
    let mut seq = 0u64;
    while seq < leaves {
        let end = (seq + 4096).min(leaves);
        let first_hash_index = stored_hash_count(seq);
        let mut entries = Vec::new();
        let mut hashes = Vec::new();
        for n in seq..end {
            // Synthetic 300-byte entries: proofs read only hashes.
            let mut bytes = vec![0u8; 300];
            bytes[..8].copy_from_slice(&n.to_be_bytes());
            let leaf = leaf_hash(&bytes);
            leaf_hashes.push(leaf);
            hashes.extend(tree.push(leaf).into_iter().map(|h| h.0));
            entries.push(NewEntry {
                bytes,
                event_id: format!("e{n}"),
            });
        }
        store
            .append(&AppendBatch {
                first_seq: seq,
                entries,
                first_hash_index,
                hashes,
            })
            .unwrap();
        seq = end;
    }
    let build_time = build_started.elapsed();
    let root = tree.root();

    let mut rng = StdRng::seed_from_u64(1);
    let proofs = scaled(2_000).max(100);
    let mut inclusion_times = Vec::with_capacity(proofs);
    for _ in 0..proofs {
        let index = rng.random_range(0..leaves);
        let started = Instant::now();
        let proof = aidledger::proofs::inclusion_proof(&store, index, leaves).unwrap();
        inclusion_times.push(started.elapsed());
        verify_inclusion(&leaf_hashes[index as usize], index, leaves, &proof, &root).unwrap();
    }
    let mut consistency_times = Vec::with_capacity(proofs);
    for _ in 0..proofs {
        let old = rng.random_range(1..leaves);
        let old_root = aidledger::proofs::tree_root(&store, old).unwrap();
        let started = Instant::now();
        let proof = aidledger::proofs::consistency_proof(&store, old, leaves).unwrap();
        consistency_times.push(started.elapsed());
        verify_consistency(old, leaves, &old_root, &root, &proof).unwrap();
    }
    // The baseline a proof avoids: recomputing the root from every leaf.
    let started = Instant::now();
    let mut rebuilt = TreeBuilder::new();
    for leaf in &leaf_hashes {
        rebuilt.push(*leaf);
    }
    assert!(rebuilt.root() == root);
    let rebuild = started.elapsed();
    for (name, mut times) in [
        ("inclusion proof", inclusion_times),
        ("consistency proof", consistency_times),
    ] {
        times.sort();
        let p50 = times[times.len() / 2];
        let p99 = times[times.len() * 99 / 100];
        rows.push((
            format!("{name} at {leaves} entries (redb, p50 / p99)"),
            format!("{:.1} µs / {:.1} µs", micros(p50), micros(p99)),
            format!(
                "{:.0}x faster than rebuilding the root ({:.0} ms)",
                rebuild.as_secs_f64() / p50.as_secs_f64(),
                rebuild.as_secs_f64() * 1e3
            ),
        ));
    }
    rows.push((
        format!("filling the proof store with {leaves} entries, 4096 per commit"),
        format!("{:.0} entries/s", rate(leaves as usize, build_time)),
        "setup".into(),
    ));

    println!("| measurement | result | ratio |");
    println!("|---|---|---|");
    for (name, result, ratio) in rows {
        println!("| {name} | {result} | {ratio} |");
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn assert_ok(results: Vec<Result<Outcome, Rejection>>) {
    for result in results {
        if let Err(rejection) = result {
            panic!("the benchmark's events must be accepted: {rejection}");
        }
    }
}
