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
use aidledger_ledger::{PublicKey, Timestamp, check_format, signing_message};
use aidledger_programme::{DemoConfig, Programme};
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
        let key: [u8; 32] = signed.public_key[..].try_into().unwrap();
        let sig: [u8; 64] = signed.signature[..].try_into().unwrap();
        ed25519::verify_strict(&key, &signing_message(ORIGIN, &signed.event), &sig).unwrap();
    });
    rate(events.len(), started.elapsed())
}

/// User plus system CPU seconds of this process so far, from
/// `/proc/self/stat` (Linux; clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields[i - 3].parse::<f64>().expect("a tick count");
    (ticks(14) + ticks(15)) / 100.0
}

/// Wall time and CPU seconds of `work`.
fn measured(work: impl FnOnce()) -> (Duration, f64) {
    let cpu = cpu_seconds();
    let started = Instant::now();
    work();
    (started.elapsed(), cpu_seconds() - cpu)
}

fn main() {
    // The allocator the programs run on.
    aidledger_alloc::init();
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

    // --- measured side by side, in rounds ------------------------------------
    // The machine is shared, so each round measures the bare rate, the
    // archive and the in-memory auditor back to back, and CPU time is
    // recorded beside wall time: entries per CPU-second do not depend on
    // what else the machine is doing.
    let rounds: usize = std::env::var("AIDLEDGER_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let archive_mib = std::fs::metadata(&archive_path).unwrap().len() as f64 / (1024.0 * 1024.0);
    let cores = rayon::current_num_threads();
    println!(
        "| measurement ({size} entries, {cores} cores) | wall rate | vs bare, wall | vs bare, per CPU-second |"
    );
    println!("|---|---|---|---|");
    let mut memory_root = None;
    for round in 1..=rounds {
        let (bare, bare_cpu) = measured(|| {
            bare_verify(&events);
        });
        let bare_rate = rate(events.len(), bare);
        println!(
            "| round {round}: bare strict Ed25519 verification, all cores | {bare_rate:.0} sig/s | baseline | baseline |"
        );

        let (archive, archive_cpu) = measured(|| {
            let file = std::fs::File::open(&archive_path).unwrap();
            let verified = verify_archive(file, &vkey, None, Tail::Refuse, &mut |_| {}).unwrap();
            assert_eq!(verified.checkpoint.size, size);
        });
        let archive_rate = rate(entries.len(), archive);
        println!(
            "| round {round}: `verify_archive` from a file ({archive_mib:.0} MiB), as `aidctl audit verify --archive` | {archive_rate:.0} entries/s | {:.0}% | {:.0}% |",
            100.0 * archive_rate / bare_rate,
            100.0 * bare_cpu / archive_cpu,
        );

        let batches: Vec<Vec<Vec<u8>>> = entries
            .chunks(AUDIT_BATCH_ENTRIES_MAX)
            .map(<[Vec<u8>]>::to_vec)
            .collect();
        let (memory, memory_cpu) = measured(|| {
            let mut auditor = LogAuditor::new(&vkey).unwrap();
            for batch in batches {
                auditor.push(batch).unwrap();
            }
            memory_root = Some(auditor.check_checkpoint(&note).unwrap().root);
        });
        let memory_rate = rate(entries.len(), memory);
        println!(
            "| round {round}: `LogAuditor`, entries in memory: chain, signatures, keys, §7 replay, root | {memory_rate:.0} entries/s | {:.0}% | {:.0}% |",
            100.0 * memory_rate / bare_rate,
            100.0 * bare_cpu / memory_cpu,
        );
    }

    // What the sequential stage costs on its own: the same replay with the
    // signatures already verified (format checks only), one core. The
    // entries are shared before the clock starts, as the auditor shares the
    // batches it is given, so no copy is timed.
    let shared: Vec<bytes::Bytes> = entries.iter().cloned().map(Into::into).collect();
    let replay_started = Instant::now();
    let mut chain = aidledger_ledger::ChainChecker::new();
    let mut tree = aidledger_tlog::TreeBuilder::new();
    let mut state = aidledger_ledger::State::new(aidledger_ledger::LedgerParams {
        origin: ORIGIN.into(),
        log_vkey: Some(vkey.clone()),
        authority_key: None,
    });
    for bytes in &shared {
        let linked = chain.check(bytes.clone()).unwrap();
        let checked = check_format(linked.signed_event).unwrap();
        state
            .apply(linked.seq, linked.recorded_at, &checked)
            .unwrap();
        tree.push(aidledger_tlog::Hash(linked.leaf_hash));
    }
    assert_eq!(Some(tree.root()), memory_root);
    let replay_rate = rate(entries.len(), replay_started.elapsed());
    println!(
        "| the sequential stage alone (chain, check_format, §7 replay, tree), 1 core | {replay_rate:.0} entries/s | | |"
    );
    println!(
        "| setup: signing and sequencing the log (not measured against the target) | {:.0} s | | |",
        setup.as_secs_f64()
    );
}
