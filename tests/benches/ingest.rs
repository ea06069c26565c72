//! Ingest benchmark, run with `cargo bench -p aidledger-tests --bench ingest`.
//!
//! The real ledger server (redb, production defaults: group commit, an fsync
//! per commit, a checkpoint every 250 ms) on loopback, and 16 gRPC clients
//! each sending batches of 100 pre-signed demo receipts. Measured side by
//! side in one run:
//! - bare strict verification on all cores and on one core: the ceiling,
//!   and the CPU one verification costs;
//! - the clients in the server's process;
//! - the clients in a process of their own (this benchmark run again as a
//!   child), as a load generator on another machine would be, except that
//!   here it still shares the 2 cores;
//! - for each, the CPU time per event of every stage, read per thread from
//!   `/proc`: verification and decoding (rayon's pool), gRPC, protobuf and
//!   the handlers (tokio's workers), the rules, hashing and storage (the
//!   ledger's writer thread), and the clients.
//!
//! `AIDLEDGER_BENCH_SCALE` below 1.0 makes a quick smoke run.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aidledger_ledger::signing_message;
use aidledger_tests::generator::Generator;
use aidledger_tests::process::{cpu_seconds, cpu_seconds_by_thread_name};
use aidledger_tests::{ORIGIN, TestServer, scaled};
use aidledger_tlog::ed25519;
use aidledger_wire::pb;
use pb::ledger_client::LedgerClient;
use rayon::prelude::*;

const CHILD: &str = "AIDLEDGER_BENCH_CHILD";
const CLIENTS: usize = 16;
const BATCH: usize = 100;
const SEED: u64 = 99;

fn main() {
    // The allocator the programs run on.
    aidledger_alloc::init();
    // Named, so their CPU time can be told apart from tokio's workers.
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("rayon-{i}"))
        .build_global()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var(CHILD) {
        Ok(_) => runtime.block_on(child()),
        Err(_) => runtime.block_on(bench()),
    }
}

fn events_per_run() -> usize {
    scaled(60_000).max(2 * CLIENTS * BATCH)
}

/// The events a run sends: the generator after its setup, then `skip`
/// receipts (those of runs before), then `count`.
fn workload(vkey: &str, skip: usize, count: usize) -> Vec<pb::SignedEvent> {
    let mut generator = Generator::new(SEED);
    generator.setup(vkey);
    generator.receipts(skip);
    generator.receipts(count)
}

/// Sends `events` over `CLIENTS` connections in batches of `BATCH`, each
/// client with one batch in flight; returns when all are acknowledged.
async fn send(url: &str, events: Vec<pb::SignedEvent>) -> Duration {
    let mut connections = Vec::new();
    for _ in 0..CLIENTS {
        connections.push(LedgerClient::connect(url.to_owned()).await.unwrap());
    }
    let per_client = events.len().div_ceil(CLIENTS);
    let mut events = events.into_iter();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut client in connections {
        let mine: Vec<pb::SignedEvent> = events.by_ref().take(per_client).collect();
        tasks.push(tokio::spawn(async move {
            for chunk in mine.chunks(BATCH) {
                let response = client
                    .append_batch(pb::AppendBatchRequest {
                        events: chunk.to_vec(),
                    })
                    .await
                    .expect("append batch")
                    .into_inner();
                for result in response.results {
                    assert_eq!(result.code, 0, "{}", result.message);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

/// The clients as a process of their own: signs its events, says `ready`,
/// waits for a line, sends, and prints `sent <seconds> <cpu seconds>`.
async fn child() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let url = var("AIDLEDGER_BENCH_URL");
    let vkey = var("AIDLEDGER_BENCH_VKEY");
    let skip: usize = var("AIDLEDGER_BENCH_SKIP").parse().unwrap();
    let count: usize = var("AIDLEDGER_BENCH_COUNT").parse().unwrap();
    let events = workload(&vkey, skip, count);
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let cpu = cpu_seconds();
    let elapsed = send(&url, events).await;
    println!("sent {} {}", elapsed.as_secs_f64(), cpu_seconds() - cpu);
}

/// CPU seconds per thread group between two readings.
fn spent(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(name, seconds)| {
            (
                name.clone(),
                seconds - before.get(name).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, seconds)| *seconds > 0.0)
        .collect()
}

struct Run {
    name: &'static str,
    events: usize,
    elapsed: Duration,
    /// CPU seconds of the server's process by thread group.
    server: BTreeMap<String, f64>,
    /// CPU seconds of a separate client process, if any.
    clients: Option<f64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    /// Microseconds of CPU per event.
    fn per_event(&self, seconds: f64) -> f64 {
        seconds * 1e6 / self.events as f64
    }
}

async fn bench() {
    let dir = tempfile::tempdir().unwrap();
    let generator = Generator::new(SEED);
    let production = |config: &mut aidledger::server::ServeConfig| {
        config.ingest.checkpoint_interval =
            aidledger::ingest::IngestConfig::default().checkpoint_interval;
    };
    let server =
        TestServer::start_with(&dir.path().join("redb"), generator.authority(), production).await;
    let mut setup_generator = Generator::new(SEED);
    let setup = setup_generator.setup(&server.vkey);
    server
        .client()
        .await
        .append_batch(pb::AppendBatchRequest { events: setup })
        .await
        .unwrap();
    let count = events_per_run();
    let in_process = workload(&server.vkey, 0, count);

    // The ceiling: strict verification alone, all cores and one.
    let verify = |signed: &pb::SignedEvent| {
        let key: [u8; 32] = signed.public_key.as_ref().try_into().unwrap();
        let sig: [u8; 64] = signed.signature.as_ref().try_into().unwrap();
        ed25519::verify_strict(&key, &signing_message(ORIGIN, &signed.event), &sig).unwrap();
    };
    let started = Instant::now();
    in_process.par_iter().for_each(verify);
    let bare_all = count as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    in_process.iter().for_each(verify);
    let bare_one = count as f64 / started.elapsed().as_secs_f64();

    // Clients in the server's process.
    let before = cpu_seconds_by_thread_name();
    let elapsed = send(&server.url(), in_process).await;
    let runs_in_process = Run {
        name: "clients in the server's process",
        events: count,
        elapsed,
        server: spent(&before, &cpu_seconds_by_thread_name()),
        clients: None,
    };

    // Clients in a process of their own.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "clients")
        .env("AIDLEDGER_BENCH_URL", server.url())
        .env("AIDLEDGER_BENCH_VKEY", &server.vkey)
        .env("AIDLEDGER_BENCH_SKIP", count.to_string())
        .env("AIDLEDGER_BENCH_COUNT", count.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::task::spawn_blocking(move || {
        let line = lines.next().unwrap().unwrap();
        (line, lines)
    })
    .await
    .unwrap();
    assert_eq!(ready.0, "ready");
    let mut lines = ready.1;
    let before = cpu_seconds_by_thread_name();
    writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    let sent = tokio::task::spawn_blocking(move || lines.next().unwrap().unwrap())
        .await
        .unwrap();
    let server_spent = spent(&before, &cpu_seconds_by_thread_name());
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let fields: Vec<f64> = sent
        .strip_prefix("sent ")
        .unwrap_or_else(|| panic!("the child says {sent}"))
        .split(' ')
        .map(|f| f.parse().unwrap())
        .collect();
    let runs_separate = Run {
        name: "clients in a process of their own",
        events: count,
        elapsed: Duration::from_secs_f64(fields[0]),
        server: server_spent,
        clients: Some(fields[1]),
    };
    server.stop().await;

    let cores = rayon::current_num_threads();
    let verify_us = 1e6 / bare_one;
    println!("{count} receipts per run, {CLIENTS} clients, batches of {BATCH}; {cores} cores");
    println!();
    println!("| measurement | result | ratio |");
    println!("|---|---|---|");
    println!(
        "| bare strict verification, all cores | {bare_all:.0} events/s | baseline ({:.2}x one core) |",
        bare_all / bare_one
    );
    println!(
        "| bare strict verification, one core | {bare_one:.0} events/s | {verify_us:.1} µs of CPU per event |"
    );
    for run in [&runs_in_process, &runs_separate] {
        println!(
            "| ingest, {} | {:.0} events/s | **{:.0}%** of bare all-core verification |",
            run.name,
            run.rate(),
            100.0 * run.rate() / bare_all
        );
    }
    println!();
    println!(
        "CPU per event, µs (per thread group of the server's process; the clients' process apart):"
    );
    println!();
    let mut groups: Vec<String> = runs_in_process
        .server
        .keys()
        .chain(runs_separate.server.keys())
        .cloned()
        .collect();
    groups.sort();
    groups.dedup();
    println!(
        "| thread group | {} | {} |",
        runs_in_process.name, runs_separate.name
    );
    println!("|---|---|---|");
    for group in &groups {
        let cell = |run: &Run| {
            run.server
                .get(group)
                .map_or("-".to_owned(), |s| format!("{:.1}", run.per_event(*s)))
        };
        println!(
            "| `{group}` | {} | {} |",
            cell(&runs_in_process),
            cell(&runs_separate)
        );
    }
    let total = |run: &Run| run.per_event(run.server.values().sum());
    println!(
        "| server process, all threads | {:.1} | {:.1} |",
        total(&runs_in_process),
        total(&runs_separate)
    );
    println!(
        "| client process | (in the server's) | {:.1} |",
        runs_separate.per_event(runs_separate.clients.unwrap_or(0.0))
    );
    println!("| bare strict verification, for comparison | {verify_us:.1} | {verify_us:.1} |");
    println!();
    let all = total(&runs_separate) + runs_separate.per_event(runs_separate.clients.unwrap_or(0.0));
    println!(
        "With clients apart, the server spends {:.2}x the CPU of a bare verification per event, \
         and server and clients together {:.2}x: on {cores} cores shared by both, ingest can reach \
         at most {:.0}% of the bare all-core rate.",
        total(&runs_separate) / verify_us,
        all / verify_us,
        100.0 * cores as f64 * 1e6 / all / bare_all
    );
}
