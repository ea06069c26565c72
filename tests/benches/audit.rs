//! Auditor benchmark, run with `cargo bench -p aidledger-tests --bench audit`.
//!
//! Verifies a 1,000,000-event log (the demo programme's year plus its steady
//! state, signed by ~100 keys) with the auditor, in memory and from an
//! archive file, beside the bare all-core strict-verification rate of the
//! same signatures in the same run. Issue 5's target: the auditor at 80% or
//! more of the bare rate. Set `AIDLEDGER_BENCH_SCALE` below 1.0 for a quick
//! smoke run. The output is the markdown table BENCHMARKS.md keeps.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aidledger::{LedgerConfig, Sequencer};
use aidledger_audit::archive::{ArchiveWriter, Tail, verify_archive};
use aidledger_audit::{AUDIT_BATCH_ENTRIES_MAX, LogAuditor};
use aidledger_demo::{DemoConfig, Programme};
use aidledger_ledger::{PublicKey, Timestamp, check_format, signing_message};
use aidledger_store::{ENTRIES_PAGE_MAX, LogStore, MemStore};
use aidledger_tests::{ORIGIN, ledger_key, scaled};
use aidledger_tlog::{LogSigner, ed25519};
use aidledger_wire::{Message as _, pb};
use rayon::prelude::*;

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// The bare rate: strict verification of every event signature, all cores,
/// nothing else (the same closure as the core benchmark).
fn bare_verify(events: &[pb::SignedEvent]) -> f64 {
    let started = Instant::now();
    events.par_iter().for_each(|signed| {
        let key: [u8; 32] = signed.public_key.as_slice().try_into().unwrap();
        let sig: [u8; 64] = signed.signature.as_slice().try_into().unwrap();
        ed25519::verify_strict(&key, &signing_message(ORIGIN, &signed.event), &sig).unwrap();
    });
    rate(events.len(), started.elapsed())
}

fn main() {
    let target = scaled(1_000_000);
    let signer = LogSigner::new(ORIGIN, ledger_key()).unwrap();
    let vkey = signer.vkey();

    // --- a real log of `target` events, sequenced by the ledger's own code
    let started = Instant::now();
    let year = Programme::new(DemoConfig {
        seed: 2025,
        origin: ORIGIN.into(),
        log_vkey: vkey.clone(),
        extra_events: 0,
    })
    .year_events();
    let mut programme = Programme::new(DemoConfig {
        seed: 2025,
        origin: ORIGIN.into(),
        log_vkey: vkey.clone(),
        extra_events: target.saturating_sub(year),
    });
    let store: Arc<dyn LogStore> = Arc::new(MemStore::new());
    let mut ledger = Sequencer::open(
        store.clone(),
        LedgerConfig {
            signer,
            authority_key: Some(PublicKey(programme.authority_public_key())),
        },
    )
    .unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    loop {
        let batch = programme.next_batch(4096);
        if batch.is_empty() {
            break;
        }
        // Signed by the programme just now: the format is checked, the
        // signatures are what the benchmark verifies below.
        let checked = batch.into_iter().map(check_format).collect();
        for result in ledger
            .append_checked(
                checked,
                Timestamp {
                    seconds: now,
                    nanos: 0,
                },
            )
            .unwrap()
        {
            if let Err(rejection) = result {
                panic!("the demo's events must be accepted: {rejection}");
            }
        }
    }
    let note = ledger.sign_checkpoint().unwrap().note.clone();
    let size = store.size().unwrap();
    let mut entries = Vec::with_capacity(size as usize);
    while (entries.len() as u64) < size {
        let page = store
            .entries(entries.len() as u64, ENTRIES_PAGE_MAX)
            .unwrap();
        entries.extend(page.into_iter().map(|(_, bytes)| bytes));
    }
    drop(ledger);
    drop(store);
    let setup = started.elapsed();
    let events: Vec<pb::SignedEvent> = entries
        .par_iter()
        .map(|bytes| {
            pb::LedgerEntry::decode(bytes.as_slice())
                .unwrap()
                .signed_event
                .unwrap()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let archive_path = dir.path().join("log.archive");
    {
        let file = std::fs::File::create(&archive_path).unwrap();
        let mut writer = ArchiveWriter::new(std::io::BufWriter::new(file)).unwrap();
        for entry in &entries {
            writer.entry(entry).unwrap();
        }
        writer.checkpoint(&note).unwrap();
    }

    // --- measured side by side ---------------------------------------------
    let bare_before = bare_verify(&events);

    let archive_started = Instant::now();
    let file = std::fs::File::open(&archive_path).unwrap();
    let verified = verify_archive(file, &vkey, None, Tail::Refuse, &mut |_| {}).unwrap();
    let archive_rate = rate(entries.len(), archive_started.elapsed());
    assert_eq!(verified.checkpoint.size, size);
    drop(verified);

    let replay_entries = entries.clone();
    let batches: Vec<Vec<Vec<u8>>> = {
        let mut batches = Vec::new();
        let mut entries = entries;
        while !entries.is_empty() {
            let rest = entries.split_off(entries.len().min(AUDIT_BATCH_ENTRIES_MAX));
            batches.push(std::mem::replace(&mut entries, rest));
        }
        batches
    };
    let memory_started = Instant::now();
    let mut auditor = LogAuditor::new(&vkey).unwrap();
    for batch in batches {
        auditor.push(batch).unwrap();
    }
    let checkpoint = auditor.check_checkpoint(&note).unwrap();
    let memory_rate = rate(size as usize, memory_started.elapsed());
    assert_eq!(checkpoint.size, size);

    // What the sequential stage costs on its own: the same replay with the
    // signatures already verified (format checks only), one core.
    let replay_started = Instant::now();
    let mut chain = aidledger_ledger::ChainChecker::new();
    let mut tree = aidledger_tlog::TreeBuilder::new();
    let mut state = aidledger_ledger::State::new(aidledger_ledger::LedgerParams {
        origin: ORIGIN.into(),
        log_vkey: Some(vkey.clone()),
        authority_key: None,
    });
    for bytes in &replay_entries {
        let linked = chain.check(bytes).unwrap();
        let checked = check_format(linked.signed_event).unwrap();
        state
            .apply(linked.seq, linked.recorded_at, &checked)
            .unwrap();
        tree.push(aidledger_tlog::Hash(linked.leaf_hash));
    }
    assert_eq!(tree.root(), checkpoint.root);
    let replay_rate = rate(replay_entries.len(), replay_started.elapsed());

    let bare_after = bare_verify(&events);
    // The machine is shared: the ratio is given against the higher of the
    // two bare runs (errs against the auditor) and against their mean.
    let bare = bare_before.max(bare_after);
    let bare_mean = (bare_before + bare_after) / 2.0;
    let cores = rayon::current_num_threads();
    println!("| measurement ({size} entries, {cores} cores) | result | vs bare (higher / mean) |");
    println!("|---|---|---|");
    println!(
        "| bare strict Ed25519 verification, all cores (before / after) | {bare_before:.0} / {bare_after:.0} sig/s | baseline: {bare:.0} / {bare_mean:.0} |"
    );
    println!(
        "| `LogAuditor`, entries in memory: chain, signatures, keys, §7 replay, root | {memory_rate:.0} entries/s | {:.0}% / {:.0}% (target 80%) |",
        100.0 * memory_rate / bare,
        100.0 * memory_rate / bare_mean
    );
    println!(
        "| `verify_archive` from a file ({:.0} MiB), as `aidctl audit verify --archive` | {archive_rate:.0} entries/s | {:.0}% / {:.0}% (target 80%) |",
        std::fs::metadata(&archive_path).unwrap().len() as f64 / (1024.0 * 1024.0),
        100.0 * archive_rate / bare,
        100.0 * archive_rate / bare_mean
    );
    println!(
        "| the sequential stage alone (chain, check_format, §7 replay, tree), 1 core | {replay_rate:.0} entries/s | {:.0}x bare |",
        replay_rate / bare
    );
    println!(
        "| setup: signing and sequencing the log (not measured against the target) | {:.0} s | |",
        setup.as_secs_f64()
    );
}
