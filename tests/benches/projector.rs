//! Projection benchmark, run with `cargo bench -p aidledger-tests --bench projector`.
//!
//! A 1M-event demo ledger (the programme year plus steady-state events) on
//! redb, served by the real ledger on loopback. Measured side by side in one
//! run:
//! - bare decoding of the entries (chain check and event decoding, one
//!   core), and the bare fold into the read models (decoding plus
//!   `Model::apply`, one core, no gRPC, no store): the baselines;
//! - the raw `Subscribe` stream from 0, counted but not decoded: what the
//!   ledger and gRPC deliver;
//! - the projector rebuilding from zero over gRPC into its redb store;
//! - append-to-visible delay under a steady append load: from sending an
//!   append (and from its acknowledgement) to the projector having applied
//!   it;
//! - a public feed replica (`aidledger-feed`'s library) catching up from 0:
//!   the projector's work plus its own verified copy of the log.
//!
//! `AIDLEDGER_BENCH_SCALE` below 1.0 makes a quick smoke run.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aidledger::Sequencer;
use aidledger::sequencer::LedgerConfig;
use aidledger::server::{Application, ServeConfig};
use aidledger_ledger::decode::decode_event;
use aidledger_ledger::{ChainChecker, PublicKey, Timestamp, check_format};
use aidledger_programme::{DemoConfig, Programme};
use aidledger_projector::Model;
use aidledger_projector::server::{Projector, ProjectorConfig};
use aidledger_store::{LogStore, RedbStore};
use aidledger_tests::{ORIGIN, ledger_key, scaled};
use aidledger_tlog::LogSigner;
use aidledger_wire::pb;

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn now() -> Timestamp {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos(),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let log_events = scaled(1_000_000);
    let steady_events = scaled(20_000).max(2_000);
    let dir = tempfile::tempdir().unwrap();
    let vkey = LogSigner::new(ORIGIN, ledger_key()).unwrap().vkey();
    let mut programme = Programme::new(DemoConfig {
        seed: 2025,
        origin: ORIGIN.into(),
        log_vkey: vkey.clone(),
        extra_events: log_events + steady_events,
    });
    let authority = PublicKey(programme.authority_public_key());

    // --- the ledger: 1M entries appended straight into the store --------
    let started = Instant::now();
    let data = dir.path().join("ledger");
    std::fs::create_dir_all(&data).unwrap();
    {
        let store: Arc<dyn LogStore> =
            Arc::new(RedbStore::open(&data.join("ledger.redb")).unwrap());
        let mut ledger = Sequencer::open(
            store,
            LedgerConfig {
                signer: LogSigner::new(ORIGIN, ledger_key()).unwrap(),
                authority_key: Some(authority),
            },
        )
        .unwrap();
        let mut appended = 0;
        while appended < log_events {
            let batch = programme.next_batch((log_events - appended).min(4096));
            appended += batch.len();
            // Our own freshly signed events: the format check suffices.
            let checked = batch.into_iter().map(check_format).collect();
            for result in ledger.append_checked(checked, now()).unwrap() {
                result.expect("the demo programme is valid");
            }
        }
        ledger.sign_checkpoint().unwrap();
    }
    eprintln!(
        "built a {log_events}-entry ledger in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let steady: Vec<pb::SignedEvent> = programme.next_batch(steady_events);

    // --- baselines: bare decoding and the bare fold, one core ------------
    let store = RedbStore::open(&data.join("ledger.redb")).unwrap();
    let mut entries = Vec::with_capacity(log_events);
    while entries.len() < log_events {
        entries.extend(store.entries(entries.len() as u64, 4096).unwrap());
    }
    drop(store);
    let started = Instant::now();
    let mut checker = ChainChecker::new();
    let mut decoded = Vec::with_capacity(entries.len());
    for (_, bytes) in &entries {
        let linked = checker.check(bytes).unwrap();
        let event = decode_event(&linked.signed_event.event).unwrap();
        decoded.push((linked.seq, linked.recorded_at, event));
    }
    let decode_rate = rate(log_events as u64, started.elapsed());
    let started = Instant::now();
    let mut model = Model::new();
    for (seq, recorded_at, event) in &decoded {
        model.apply(*seq, *recorded_at, event).unwrap();
    }
    let apply_rate = rate(log_events as u64, started.elapsed());
    let fold_rate = 1.0 / (1.0 / decode_rate + 1.0 / apply_rate);
    drop((decoded, model, entries));

    // --- the ledger server on that store -------------------------------
    let mut config = ServeConfig::new(
        data.clone(),
        "127.0.0.1:0".parse().unwrap(),
        ORIGIN,
        ledger_key(),
    );
    config.authority_key = Some(authority);
    let app = Application::build(config).await.unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    let (stop_ledger, ledger_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = ledger_stopped.await;
    }));

    // --- baseline: the raw Subscribe stream, counted, not decoded --------
    let mut options = aidledger_client::ConnectOptions::new(ORIGIN);
    options.vkey = Some(vkey.clone());
    let reader = aidledger_client::Client::connect(&url, options)
        .await
        .unwrap();
    let started = Instant::now();
    let mut stream = reader.subscribe_raw(0).await.unwrap();
    let mut streamed = 0u64;
    while streamed < log_events as u64 {
        stream.message().await.unwrap().expect("the stream goes on");
        streamed += 1;
    }
    drop(stream);
    let stream_rate = rate(streamed, started.elapsed());

    // --- rebuild from zero over gRPC into the projection store ----------
    let projector = Projector::build(ProjectorConfig::new(
        dir.path().join("projections.redb"),
        "127.0.0.1:0".parse().unwrap(),
        &url,
        &vkey,
    ))
    .await
    .unwrap();
    let shared = projector.shared();
    let mut applied = shared.applied();
    let (stop_projector, projector_stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let projecting = tokio::spawn(projector.run_until_stopped(async {
        let _ = projector_stopped.await;
    }));
    applied
        .wait_for(|applied| *applied >= log_events as u64)
        .await
        .unwrap();
    let catch_up = started.elapsed();
    let catch_up_rate = rate(log_events as u64, catch_up);

    // --- append-to-visible under a steady load ---------------------------
    // One client appends the next programme events in requests of 10, back
    // to back; each request's last event is timed to visibility.
    let mut client = pb::ledger_client::LedgerClient::connect(url.clone())
        .await
        .unwrap();
    let mut from_send = Vec::new();
    let mut from_ack = Vec::new();
    let load_started = Instant::now();
    for chunk in steady.chunks(10) {
        let sent = Instant::now();
        let results = client
            .append_batch(pb::AppendBatchRequest {
                events: chunk.to_vec(),
            })
            .await
            .unwrap()
            .into_inner()
            .results;
        let acknowledged = Instant::now();
        let last = results.last().unwrap();
        assert_eq!(last.code, 0, "{}", last.message);
        applied
            .wait_for(|applied| *applied > last.seq)
            .await
            .unwrap();
        let visible = Instant::now();
        from_send.push(visible - sent);
        from_ack.push(visible - acknowledged);
    }
    let load_rate = rate(steady.len() as u64, load_started.elapsed());
    from_send.sort();
    from_ack.sort();
    let _ = stop_projector.send(());
    projecting.await.unwrap().unwrap();

    // --- a feed replica catching up from zero ------------------------------
    // The same follower with a mirror: every entry and its stored hashes in
    // the feed's own redb copy, every verified checkpoint recorded.
    let total = log_events as u64 + steady.len() as u64;
    let mut connect = aidledger_client::ConnectOptions::new("");
    connect.vkey = Some(vkey.clone());
    let replica = aidledger_feed::replica::Replica::build(aidledger_feed::replica::ReplicaConfig {
        data: dir.path().join("feed"),
        listen: "127.0.0.1:0".parse().unwrap(),
        follower: aidledger_projector::FollowerConfig::new(&url, connect),
        options: aidledger_feed::FeedOptions::default(),
        rebuild: false,
        tiles_dir: None,
    })
    .await
    .unwrap();
    let mut feed_applied = replica.applied();
    let (stop_feed, feed_stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let feeding = tokio::spawn(replica.run_until_stopped(async {
        let _ = feed_stopped.await;
    }));
    feed_applied
        .wait_for(|applied| *applied >= total)
        .await
        .unwrap();
    let feed_catch_up = started.elapsed();
    let feed_rate = rate(total, feed_catch_up);
    let _ = stop_feed.send(());
    feeding.await.unwrap().unwrap();
    let _ = stop_ledger.send(());
    server.await.unwrap().unwrap();

    println!("| measurement | result | ratio |");
    println!("|---|---|---|");
    println!(
        "| bare decoding (chain check + event decode), 1 core | {decode_rate:.0} events/s | baseline |"
    );
    println!(
        "| bare fold (decode + `Model::apply`), 1 core | {fold_rate:.0} events/s | {:.0}% of decoding (apply alone {apply_rate:.0}/s) |",
        100.0 * fold_rate / decode_rate
    );
    println!(
        "| raw `Subscribe` stream from 0, entries counted (no decoding) | {stream_rate:.0} entries/s | {:.2}x the bare fold |",
        stream_rate / fold_rate
    );
    println!(
        "| projector rebuild of {log_events} entries over gRPC into redb | {catch_up_rate:.0} events/s ({:.1} s) | {:.2}x the 250k/s target; {:.0}% of the bare fold |",
        catch_up.as_secs_f64(),
        catch_up_rate / 250_000.0,
        100.0 * catch_up_rate / fold_rate
    );
    println!(
        "| feed replica catch-up of {total} entries over gRPC (projections and its own copy of the log, both redb) | {feed_rate:.0} events/s ({:.1} s) | {:.0}% of the bare fold; {:.0}% of the projector's rebuild |",
        feed_catch_up.as_secs_f64(),
        100.0 * feed_rate / fold_rate,
        100.0 * feed_rate / catch_up_rate
    );
    println!(
        "| append-to-visible, from send, p50 / p99 ({} requests of 10, {load_rate:.0} events/s) | {:.1} ms / {:.1} ms | p99 at {:.2}x the 100 ms limit |",
        from_send.len(),
        ms(percentile(&from_send, 50)),
        ms(percentile(&from_send, 99)),
        ms(percentile(&from_send, 99)) / 100.0
    );
    println!(
        "| append-to-visible, from acknowledgement, p50 / p99 | {:.1} ms / {:.1} ms | p99 at {:.2}x the 100 ms limit |",
        ms(percentile(&from_ack, 50)),
        ms(percentile(&from_ack, 99)),
        ms(percentile(&from_ack, 99)) / 100.0
    );
}
