//! End-to-end benchmark, run beside a throwaway PostgreSQL with
//! `tests/with-postgres cargo bench -p aidledger-tests --bench e2e`.
//!
//! The real server on loopback and real gRPC clients in one process, side by
//! side with the bare all-core strict-verification rate measured in the same
//! run: 1, 16 and 64 concurrent clients appending pre-signed demo-sized
//! events, singly and in batches of 100, to a ledger on the embedded redb
//! store and to one on PostgreSQL (on the same machine), each configuration
//! on both stores one after the other. Reports events/s, request latency
//! p50/p99, and append-to-checkpoint delay p50/p99 (from sending an event to
//! seeing a signed checkpoint that covers it).
//! `AIDLEDGER_BENCH_SCALE` below 1.0 makes a quick smoke run.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aidledger_ledger::signing_message;
use aidledger_tests::generator::Generator;
use aidledger_tests::{ORIGIN, TestServer, scaled};
use aidledger_tlog::ed25519;
use aidledger_wire::pb;
use pb::ledger_client::LedgerClient;
use rayon::prelude::*;
use tonic::transport::Channel;

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Run {
    store: &'static str,
    clients: usize,
    batch: usize,
    events_per_second: f64,
    latency_p50: Duration,
    latency_p99: Duration,
    to_checkpoint_p50: Duration,
    to_checkpoint_p99: Duration,
}

fn main() {
    // The allocator the programs run on.
    aidledger_alloc::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(99);
    // The production defaults (TestServer shortens the checkpoint interval
    // for tests; put the default back).
    let production = |config: &mut aidledger::server::ServeConfig| {
        config.ingest.checkpoint_interval =
            aidledger::ingest::IngestConfig::default().checkpoint_interval;
    };
    let redb =
        TestServer::start_with(&dir.path().join("redb"), generator.authority(), production).await;
    let database = aidledger_store::test_database();
    let postgres =
        TestServer::start_with(&dir.path().join("pg"), generator.authority(), |config| {
            production(config);
            config.store_url = Some(database);
        })
        .await;
    let setup = generator.setup(&redb.vkey);
    for server in [&redb, &postgres] {
        server
            .client()
            .await
            .append_batch(pb::AppendBatchRequest {
                events: setup.clone(),
            })
            .await
            .unwrap();
    }

    let configs: Vec<(usize, usize, usize)> = vec![
        (1, 1, scaled(2_000)),
        (16, 1, scaled(8_000)),
        (64, 1, scaled(16_000)),
        (1, 100, scaled(20_000)),
        (16, 100, scaled(40_000)),
        (64, 100, scaled(40_000)),
    ];
    // Pre-sign everything before measuring anything.
    let workloads: Vec<Vec<pb::SignedEvent>> = configs
        .iter()
        .map(|(_, _, events)| generator.receipts(*events))
        .collect();

    // The bare all-core strict-verification rate, same machine, same run.
    let sample: Vec<&pb::SignedEvent> = workloads.iter().flatten().take(scaled(40_000)).collect();
    let started = Instant::now();
    sample.par_iter().for_each(|signed| {
        let key: [u8; 32] = signed.public_key[..].try_into().unwrap();
        let sig: [u8; 64] = signed.signature[..].try_into().unwrap();
        ed25519::verify_strict(&key, &signing_message(ORIGIN, &signed.event), &sig).unwrap();
    });
    let bare_rate = sample.len() as f64 / started.elapsed().as_secs_f64();

    // Each configuration on both stores back to back, so the machine's
    // noise falls on both alike.
    let mut runs = Vec::new();
    for ((clients, batch, _), events) in configs.into_iter().zip(workloads) {
        runs.push(run(&redb, "redb", clients, batch, events.clone()).await);
        runs.push(run(&postgres, "PostgreSQL", clients, batch, events).await);
    }
    redb.stop().await;
    postgres.stop().await;

    println!(
        "bare strict verification, {} cores: {bare_rate:.0} sig/s",
        rayon::current_num_threads()
    );
    println!();
    println!(
        "| store | clients | events per request | events/s | vs bare verify | vs redb | request p50 / p99 | append-to-checkpoint p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut redb_rate = 0.0;
    for r in runs {
        if r.store == "redb" {
            redb_rate = r.events_per_second;
        }
        println!(
            "| {} | {} | {} | {:.0} | {:.0}% | {:.2}x | {:.1} ms / {:.1} ms | {:.0} ms / {:.0} ms |",
            r.store,
            r.clients,
            r.batch,
            r.events_per_second,
            100.0 * r.events_per_second / bare_rate,
            r.events_per_second / redb_rate,
            ms(r.latency_p50),
            ms(r.latency_p99),
            ms(r.to_checkpoint_p50),
            ms(r.to_checkpoint_p99),
        );
    }
}

async fn run(
    server: &TestServer,
    store: &'static str,
    clients: usize,
    batch: usize,
    events: Vec<pb::SignedEvent>,
) -> Run {
    let total = events.len();
    let per_client = total.div_ceil(clients);
    let mut connections: Vec<LedgerClient<Channel>> = Vec::new();
    for _ in 0..clients {
        connections.push(server.client().await);
    }
    // (seq, sent at) of every event, to time checkpoint coverage.
    let sent: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    // Watch checkpoints: when did each size become covered?
    let coverage: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let mut client = server.client().await;
        let coverage = coverage.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut last = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let cp = client
                    .get_checkpoint(pb::GetCheckpointRequest::default())
                    .await
                    .unwrap()
                    .into_inner();
                if cp.size > last {
                    last = cp.size;
                    coverage.lock().unwrap().push((cp.size, Instant::now()));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut events = events.into_iter();
    for mut client in connections {
        let mine: Vec<pb::SignedEvent> = events.by_ref().take(per_client).collect();
        let sent = sent.clone();
        let latencies = latencies.clone();
        tasks.push(tokio::spawn(async move {
            let mut local_latency = Vec::new();
            let mut local_sent = Vec::new();
            for chunk in mine.chunks(batch) {
                let at = Instant::now();
                if batch == 1 {
                    let response = client
                        .append(pb::AppendRequest {
                            event: Some(chunk[0].clone()),
                            wait_for_checkpoint: false,
                        })
                        .await
                        .expect("append")
                        .into_inner();
                    local_sent.push((response.seq, at));
                } else {
                    let response = client
                        .append_batch(pb::AppendBatchRequest {
                            events: chunk.to_vec(),
                        })
                        .await
                        .expect("append batch")
                        .into_inner();
                    for result in response.results {
                        assert_eq!(result.code, 0, "{}", result.message);
                        local_sent.push((result.seq, at));
                    }
                }
                local_latency.push(at.elapsed());
            }
            latencies.lock().unwrap().extend(local_latency);
            sent.lock().unwrap().extend(local_sent);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    // Wait until the last event is covered by a checkpoint.
    let max_seq = sent.lock().unwrap().iter().map(|(s, _)| *s).max().unwrap();
    while coverage
        .lock()
        .unwrap()
        .last()
        .is_none_or(|(size, _)| *size <= max_seq)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.await.unwrap();

    let coverage = coverage.lock().unwrap().clone();
    let mut to_checkpoint: Vec<Duration> = sent
        .lock()
        .unwrap()
        .iter()
        .map(|(seq, at)| {
            let covered = coverage
                .iter()
                .find(|(size, _)| size > seq)
                .expect("every event is covered")
                .1;
            covered.saturating_duration_since(*at)
        })
        .collect();
    to_checkpoint.sort();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    Run {
        store,
        clients,
        batch,
        events_per_second: total as f64 / elapsed.as_secs_f64(),
        latency_p50: percentile(&latencies, 50),
        latency_p99: percentile(&latencies, 99),
        to_checkpoint_p50: percentile(&to_checkpoint, 50),
        to_checkpoint_p99: percentile(&to_checkpoint, 99),
    }
}
