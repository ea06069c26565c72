//! Projection benchmark, run with `cargo bench -p aidledger-tests --bench projector`.
//!
//! A demo ledger (the programme year plus steady-state events; 1M entries,
//! or `AIDLEDGER_BENCH_EVENTS`) on redb, served by the real ledger on
//! loopback. Measured side by side in one run:
//! - bare decoding of the entries (chain check and event decoding) on one
//!   core and on all cores, and the bare fold into the read models
//!   (`Model::apply_parsed`, one core, no gRPC, no store): the baselines;
//! - the raw `Subscribe` stream from 0, counted but not decoded: what the
//!   ledger and gRPC deliver;
//! - the CPU each of those stages uses per event, beside the rebuild's:
//!   the stages run at once in a rebuild, so their sum against what the
//!   machine's cores give per event at the target rate says how far the
//!   target is from this machine;
//! - the projector rebuilding from zero over gRPC into its redb store, in
//!   this process (after the child processes, with the ledger's store
//!   read back into the page cache first) and as a process of its own
//!   (its resident memory), and that process started again on the store
//!   it left: a restart's load;
//! - append-to-visible delay under a steady append load: from sending an
//!   append (and from its acknowledgement) to the projector having applied
//!   it;
//! - a public feed replica catching up from 0 as a process of its own (the
//!   projector's work plus its own verified copy of the log; its resident
//!   memory), then a commune page, a donor page, the overlaps page and a
//!   page of the deliveries list from the middle of the log under 64
//!   concurrent readers, and each of them again while entries
//!   arrive, with the replica's append-to-visible meanwhile; then the
//!   replica started again on what it left.
//!
//! `AIDLEDGER_BENCH_SCALE` below 1.0 makes a quick smoke run.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aidledger::Sequencer;
use aidledger::sequencer::LedgerConfig;
use aidledger::server::{Application, ServeConfig};
use aidledger_ledger::decode::decode_event;
use aidledger_ledger::{ChainChecker, ParsedEntry, PublicKey, Timestamp, check_format};
use aidledger_programme::{DemoConfig, Programme};
use aidledger_projector::server::{Projector, ProjectorConfig};
use aidledger_projector::{Model, ParsedEvent};
use aidledger_store::{LogStore, RedbStore};
use aidledger_tests::http_load::{busiest_commune, get_json, get_once, load, ms, percentile};
use aidledger_tests::process::{
    cpu_seconds, kernel_work, read_bytes, resident_memory, written_bytes,
};
use aidledger_tests::{ORIGIN, ledger_key, scaled};
use aidledger_tlog::LogSigner;
use aidledger_wire::pb;
use bytes::Bytes;

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn now() -> Timestamp {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos(),
    }
}

/// Set in the environment of this benchmark run again as a process of its
/// own: `projector` or `feed`.
const CHILD: &str = "AIDLEDGER_BENCH_CHILD";
/// Concurrent readers of the feed's pages.
const READERS: usize = 64;
/// Entries read from the store per baseline chunk: the baselines stream,
/// so a 10M-entry ledger never sits in memory whole.
const BASELINE_CHUNK: usize = 100_000;

fn main() {
    // The allocator the programs run on.
    aidledger_alloc::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var(CHILD) {
        Ok(role) => {
            // RUST_LOG (e.g. `aidledger_projector::follower=debug`) shows
            // what a projector or replica child does while measured: its
            // commits and its mirror's syncs, on stderr.
            if std::env::var_os("RUST_LOG").is_some() {
                tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                    .with_writer(std::io::stderr)
                    .init();
            }
            runtime.block_on(child(&role))
        }
        Err(_) => runtime.block_on(bench()),
    }
}

/// A projector or a feed replica as a process of its own, as deployed:
/// follows the ledger until it has applied `AIDLEDGER_BENCH_SIZE` entries,
/// prints `caught-up <seconds> <rss> <peak rss> <http port>`, and serves
/// until its standard input closes.
async fn child(role: &str) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let dir = std::path::PathBuf::from(var("AIDLEDGER_BENCH_DIR"));
    let size: u64 = var("AIDLEDGER_BENCH_SIZE").parse().unwrap();
    if role == "build" {
        let later: usize = var("AIDLEDGER_BENCH_LATER").parse().unwrap();
        build_ledger(&dir, size as usize, later);
        return;
    }
    if role == "baselines" {
        let stages = baselines(&dir, size as usize);
        print!("baselines");
        for stage in stages {
            print!(" {} {}", stage.time.as_secs_f64(), stage.cpu);
        }
        println!();
        return;
    }
    if role == "serve" {
        serve(&dir).await;
        return;
    }
    let url = var("AIDLEDGER_BENCH_URL");
    let vkey = var("AIDLEDGER_BENCH_VKEY");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    type Running = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;
    let (mut applied, port, run) = match role {
        "projector" => {
            let projector = Projector::build(ProjectorConfig::new(
                dir.join("projections.redb"),
                "127.0.0.1:0".parse().unwrap(),
                &url,
                &vkey,
            ))
            .await
            .unwrap();
            let applied = projector.shared().applied();
            let port = projector.local_addr().port();
            let run: Running = Box::pin(async move {
                projector
                    .run_until_stopped(async {
                        let _ = stopped.await;
                    })
                    .await
                    .map_err(|e| e.to_string())
            });
            (applied, port, run)
        }
        "feed" => {
            let mut connect = aidledger_client::ConnectOptions::new("");
            connect.vkey = Some(vkey);
            let replica =
                aidledger_feed::replica::Replica::build(aidledger_feed::replica::ReplicaConfig {
                    data: dir.join("feed"),
                    listen: "127.0.0.1:0".parse().unwrap(),
                    follower: aidledger_projector::FollowerConfig::new(&url, connect),
                    options: aidledger_feed::FeedOptions::default(),
                    rebuild: false,
                    tiles_dir: None,
                })
                .await
                .unwrap();
            let applied = replica.applied();
            let port = replica.local_addr().port();
            let run: Running = Box::pin(async move {
                replica
                    .run_until_stopped(async {
                        let _ = stopped.await;
                    })
                    .await
                    .map_err(|e| e.to_string())
            });
            (applied, port, run)
        }
        other => panic!("{CHILD}={other}: projector or feed"),
    };
    let running = tokio::spawn(run);
    applied.wait_for(|applied| *applied >= size).await.unwrap();
    let elapsed = started.elapsed();
    let (rss, peak) = resident_memory();
    println!(
        "caught-up {} {rss} {peak} {port} {} {}",
        elapsed.as_secs_f64(),
        cpu_seconds(),
        written_bytes()
    );
    tokio::task::spawn_blocking(|| {
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    })
    .await
    .unwrap();
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

/// The ledger's server on the store in `data`, alone, for profiling a
/// projector or a replica that follows it from another process: prints
/// `serving <url> <vkey>` and serves until its standard input closes.
async fn serve(data: &std::path::Path) {
    let vkey = LogSigner::new(ORIGIN, ledger_key()).unwrap().vkey();
    let authority = PublicKey(Programme::new(programme_config(&vkey, 0)).authority_public_key());
    let app = ledger_server(data, authority).await;
    let url = format!("http://127.0.0.1:{}", app.port());
    println!("serving {url} {vkey}");
    // With a directory in AIDLEDGER_BENCH_PROJECT, also a projector in this
    // process, as the benchmark's in-process rebuild runs: prints
    // `projected <seconds>` once it has caught up.
    if let Ok(projections) = std::env::var("AIDLEDGER_BENCH_PROJECT") {
        let size = app.size_at_start();
        tokio::spawn(async move {
            let projector = Projector::build(ProjectorConfig::new(
                std::path::Path::new(&projections).join("projections.redb"),
                "127.0.0.1:0".parse().unwrap(),
                &url,
                &vkey,
            ))
            .await
            .unwrap();
            let mut applied = projector.shared().applied();
            let started = Instant::now();
            tokio::spawn(projector.run_until_stopped(std::future::pending()));
            applied.wait_for(|applied| *applied >= size).await.unwrap();
            println!("projected {}", started.elapsed().as_secs_f64());
        });
    }
    app.run_until_stopped(async {
        let _ = tokio::task::spawn_blocking(|| {
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        })
        .await;
    })
    .await
    .unwrap();
}

/// The ledger's server on the store in `data`, on a free port.
async fn ledger_server(data: &std::path::Path, authority: PublicKey) -> Application {
    let mut config = ServeConfig::new(
        data.to_owned(),
        "127.0.0.1:0".parse().unwrap(),
        ORIGIN,
        ledger_key(),
    );
    config.authority_key = Some(authority);
    Application::build(config).await.unwrap()
}

/// A child process that has caught up.
struct Child {
    process: std::process::Child,
    seconds: f64,
    rss: u64,
    peak: u64,
    port: u16,
    /// CPU seconds used until caught up.
    cpu: f64,
    /// Bytes written to storage until caught up.
    written: u64,
}

impl Child {
    /// Starts this benchmark as a `role` process following `url`, and waits
    /// until it has applied `size` entries.
    async fn start(role: &str, url: &str, vkey: &str, dir: &std::path::Path, size: u64) -> Child {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut process = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, role)
            .env("AIDLEDGER_BENCH_URL", url)
            .env("AIDLEDGER_BENCH_VKEY", vkey)
            .env("AIDLEDGER_BENCH_DIR", dir)
            .env("AIDLEDGER_BENCH_SIZE", size.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .unwrap();
            line
        })
        .await
        .unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            fields.first(),
            Some(&"caught-up"),
            "the {role} said {line:?}"
        );
        Child {
            process,
            seconds: fields[1].parse().unwrap(),
            rss: fields[2].parse().unwrap(),
            peak: fields[3].parse().unwrap(),
            port: fields[4].parse().unwrap(),
            cpu: fields[5].parse().unwrap(),
            written: fields[6].parse().unwrap(),
        }
    }

    fn stop(mut self) {
        drop(self.process.stdin.take());
        assert!(self.process.wait().unwrap().success());
    }
}

/// Appends one request of events, each of which must be accepted, and
/// returns the seq of the last.
async fn append(
    client: &mut pb::ledger_client::LedgerClient<tonic::transport::Channel>,
    events: &[pb::SignedEvent],
) -> u64 {
    let results = client
        .append_batch(pb::AppendBatchRequest {
            events: events.to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    for result in &results {
        assert_eq!(result.code, 0, "{}", result.message);
    }
    results.last().expect("one result per event").seq
}

/// A stage of the work measured alone: its wall time and the CPU seconds
/// the process used meanwhile, on all its threads.
#[derive(Clone, Copy, Debug, Default)]
struct Stage {
    time: Duration,
    cpu: f64,
}

impl Stage {
    /// Runs `work`, adding its wall time and CPU to the stage.
    fn run<T>(&mut self, work: impl FnOnce() -> T) -> T {
        let (cpu, started) = (cpu_seconds(), Instant::now());
        let done = work();
        self.time += started.elapsed();
        self.cpu += cpu_seconds() - cpu;
        done
    }

    /// What has passed since `started`, when the process had used `cpu`
    /// seconds: for work measured across awaits, which `run` cannot take.
    fn since(started: Instant, cpu: f64) -> Stage {
        Stage {
            time: started.elapsed(),
            cpu: cpu_seconds() - cpu,
        }
    }

    /// CPU microseconds per event, over `events`.
    fn cpu_per_event(&self, events: u64) -> f64 {
        self.cpu * 1e6 / events as f64
    }
}

/// The baselines, a chunk of entries at a time, read from the ledger's
/// store in `data` before the server opens it. Reading the store is not
/// timed. Per chunk: decoding on one core, the same on all cores (hash and
/// decode in parallel, link in order, as the follower does), and the fold
/// of the decoded events on one core. Returns the three stages.
fn baselines(data: &std::path::Path, log_events: usize) -> [Stage; 3] {
    let store = RedbStore::open(&data.join("ledger.redb")).unwrap();
    let mut model = Model::new();
    let mut one_core = ChainChecker::new();
    let mut all_cores = ChainChecker::new();
    let [mut decode, mut parallel, mut apply] = [Stage::default(); 3];
    let mut read = 0;
    while read < log_events {
        let mut entries = Vec::with_capacity(BASELINE_CHUNK);
        while entries.len() < BASELINE_CHUNK && read + entries.len() < log_events {
            let from = (read + entries.len()) as u64;
            entries.extend(store.entries(from, 4096).unwrap());
        }
        entries.truncate(log_events - read);
        read += entries.len();
        // As the projector holds them from its gRPC stream: shared, so
        // decoding slices rather than copies their byte fields.
        let entries: Vec<(u64, Bytes)> = entries
            .into_iter()
            .map(|(seq, bytes)| (seq, Bytes::from(bytes)))
            .collect();

        let decoded = decode.run(|| {
            let mut decoded = Vec::with_capacity(entries.len());
            for (_, bytes) in &entries {
                let linked = one_core.check(bytes.clone()).unwrap();
                let event = decode_event(linked.signed_event.event).unwrap();
                // Read as the follower reads them where it decodes.
                let event = ParsedEvent::new(event).unwrap();
                decoded.push((linked.seq, linked.recorded_at, event));
            }
            decoded
        });

        let linked = parallel.run(|| {
            let first = all_cores.next_seq();
            let parsed: Vec<_> = {
                use rayon::prelude::*;
                entries
                    .par_iter()
                    .enumerate()
                    .map(|(index, (_, bytes))| {
                        let parsed =
                            ParsedEntry::parse(first + index as u64, bytes.clone()).unwrap();
                        let event = decode_event(parsed.event_bytes()).unwrap();
                        (parsed, ParsedEvent::new(event).unwrap())
                    })
                    .collect()
            };
            parsed
                .into_iter()
                .map(|(parsed, event)| (all_cores.link(parsed).unwrap().seq, event))
                .collect::<Vec<_>>()
        });
        assert_eq!(linked.len(), decoded.len());
        drop(linked);

        apply.run(|| {
            for (seq, recorded_at, event) in decoded {
                model.apply_parsed(seq, recorded_at, event).unwrap();
            }
        });
    }
    [decode, parallel, apply]
}

/// [`baselines`] in a child process, whose memory goes with it.
fn baselines_in_child(data: &std::path::Path, log_events: usize) -> [Stage; 3] {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "baselines")
        .env("AIDLEDGER_BENCH_DIR", data)
        .env("AIDLEDGER_BENCH_SIZE", log_events.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "the baselines failed");
    let line = String::from_utf8(output.stdout).unwrap();
    let numbers: Vec<f64> = line
        .strip_prefix("baselines ")
        .unwrap_or_else(|| panic!("the baselines said {line:?}"))
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    std::array::from_fn(|stage| Stage {
        time: Duration::from_secs_f64(numbers[2 * stage]),
        cpu: numbers[2 * stage + 1],
    })
}

/// The demo programme, signed for a ledger whose vkey is `vkey`, with
/// `extra_events` steady-state events after the programme year.
fn programme_config(vkey: &str, extra_events: usize) -> DemoConfig {
    DemoConfig {
        seed: 2025,
        origin: ORIGIN.into(),
        log_vkey: vkey.to_owned(),
        extra_events,
    }
}

/// Builds a ledger of `log_events` entries of the demo programme in
/// `data`, appended straight into the store, then signs the `later` events
/// that follow them and writes them to `later.pb` for the benchmark to
/// append over gRPC.
fn build_ledger(data: &std::path::Path, log_events: usize, later: usize) {
    let vkey = LogSigner::new(ORIGIN, ledger_key()).unwrap().vkey();
    let mut programme = Programme::new(programme_config(&vkey, log_events + later));
    let authority = PublicKey(programme.authority_public_key());
    let store: Arc<dyn LogStore> = Arc::new(RedbStore::open(&data.join("ledger.redb")).unwrap());
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
        // Signed on every core (the programme signs with rayon).
        let batch = programme.next_batch((log_events - appended).min(16_384));
        appended += batch.len();
        // Our own freshly signed events: the format check suffices.
        let checked = batch.into_iter().map(check_format).collect();
        for result in ledger.append_checked(checked, now()).unwrap() {
            result.expect("the demo programme is valid");
        }
    }
    ledger.sign_checkpoint().unwrap();
    let events = programme.next_batch(later);
    assert_eq!(events.len(), later, "the programme plans the later events");
    std::fs::write(
        data.join("later.pb"),
        prost::Message::encode_to_vec(&pb::AppendBatchRequest { events }),
    )
    .unwrap();
}

fn log_events() -> usize {
    std::env::var("AIDLEDGER_BENCH_EVENTS")
        .ok()
        .map(|n| n.parse().expect("AIDLEDGER_BENCH_EVENTS is a number"))
        .unwrap_or_else(|| scaled(1_000_000))
}

async fn bench() {
    let log_events = log_events();
    let steady_events = scaled(20_000).max(2_000);
    // Entries appended while each of the three pages is read.
    let live_events = scaled(2_000).max(200);
    let dir = tempfile::tempdir().unwrap();
    let vkey = LogSigner::new(ORIGIN, ledger_key()).unwrap().vkey();
    let authority = PublicKey(Programme::new(programme_config(&vkey, 0)).authority_public_key());

    // --- the ledger, built by a process of its own -------------------------
    // Building leaves the builder's memory with the process that built
    // (the allocator keeps it); this process then holds only the server.
    let started = Instant::now();
    let data = dir.path().join("ledger");
    std::fs::create_dir_all(&data).unwrap();
    // One round of live entries per page read below.
    let later_events = 4 * live_events + steady_events;
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "build")
        .env("AIDLEDGER_BENCH_DIR", &data)
        .env("AIDLEDGER_BENCH_SIZE", log_events.to_string())
        .env("AIDLEDGER_BENCH_LATER", later_events.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "building the ledger failed");
    // Signed by the builder after the log, in the order they are appended.
    let later = std::fs::read(data.join("later.pb")).unwrap();
    let mut later = <pb::AppendBatchRequest as prost::Message>::decode(later.as_slice())
        .unwrap()
        .events
        .into_iter();
    let build_seconds = started.elapsed().as_secs_f64();
    eprintln!("built a {log_events}-entry ledger in {build_seconds:.1} s");

    // --- baselines, in a process of their own ------------------------------
    // The fold's model is as big as a projector's: built here, the memory
    // would stay with this process (the allocator keeps it) beside the
    // children's, more than this machine has at 10M entries.
    let [decode, parallel, apply] = baselines_in_child(&data, log_events);
    let decode_rate = rate(log_events as u64, decode.time);
    let parallel_rate = rate(log_events as u64, parallel.time);
    let apply_rate = rate(log_events as u64, apply.time);
    let fold_rate = rate(log_events as u64, decode.time + apply.time);

    // --- the ledger server on that store -------------------------------
    // Opening replays every entry into the rules' state, and checks every
    // stored hash: what a restart or a takeover costs before appends.
    let started = Instant::now();
    let app = ledger_server(&data, authority).await;
    let ledger_open = started.elapsed().as_secs_f64();
    let ledger_rss = resident_memory().0;
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
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut stream = reader.subscribe_raw(0).await.unwrap();
    let mut streamed = 0u64;
    while streamed < log_events as u64 {
        stream.message().await.unwrap().expect("the stream goes on");
        streamed += 1;
    }
    drop(stream);
    // The ledger's serving, the transport both ways, and the client's
    // receiving: what a follower's stream costs the machine.
    let stream_cpu = Stage::since(started, cpu);
    let stream_rate = rate(streamed, stream_cpu.time);

    let mut client = pb::ledger_client::LedgerClient::connect(url.clone())
        .await
        .unwrap();

    // --- a projector and a feed replica as processes of their own --------
    let total = log_events as u64;
    // What the children run beside: the ledger's server and the programme.
    eprintln!(
        "before its children, this process holds {} MiB",
        resident_memory().0 >> 20
    );
    let projector_dir = dir.path().join("child-projector");
    let projector = Child::start("projector", &url, &vkey, &projector_dir, total).await;
    let projector_rate = rate(total, Duration::from_secs_f64(projector.seconds));
    let (projector_rss, projector_peak) = (projector.rss, projector.peak);
    let projector_cpu = projector.cpu / projector.seconds;
    let projector_written = projector.written as f64 / total as f64;
    projector.stop();
    // Started again on the store it left: what a restart (an upgrade, a
    // crash) costs before pages are answered, loading every row.
    let restarted = Child::start("projector", &url, &vkey, &projector_dir, total).await;
    let (projector_restart, projector_restart_rss) = (restarted.seconds, restarted.rss);
    restarted.stop();
    let feed = Child::start("feed", &url, &vkey, &dir.path().join("child-feed"), total).await;
    let feed_rate = rate(total, Duration::from_secs_f64(feed.seconds));
    let feed_cpu = feed.cpu / feed.seconds;
    let feed_written = feed.written as f64 / total as f64;

    // --- the feed's heaviest pages under 64 concurrent readers -----------
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", feed.port).parse().unwrap();
    let commune = busiest_commune(addr).await;
    let donors = get_json(addr, "/api/v1/donors").await;
    let donor = donors["items"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|d| d["receipts"].as_u64())
        .unwrap()["donor"]["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let round = Duration::from_secs(scaled(5).max(2) as u64);
    let mut pages = Vec::new();
    for (name, path) in [
        ("commune page", format!("/communes/{commune}")),
        ("donor page", format!("/donors/{donor}")),
        ("overlaps page", "/overlaps".to_owned()),
        // A list that grows with the log: a page from its middle, by seq.
        (
            "deliveries list",
            format!("/api/v1/deliveries?after={}", log_events / 2),
        ),
    ] {
        // The first answer is computed; the readers then share it while
        // the model stays as it is (the ledger is quiet here).
        let started = Instant::now();
        assert_eq!(get_once(addr, &path).await.0, 200, "GET {path}");
        let first = started.elapsed();
        pages.push((
            name,
            path.clone(),
            first,
            load(addr, &path, READERS, round).await,
        ));
    }
    // --- the same pages while entries arrive ------------------------------
    // Each append changes the model, so readers share the previous answer
    // while one recomputes under the model's read lock, and the replica's
    // follower waits for that lock: its append-to-visible, read from
    // `/healthz`, shows what a recomputation costs the log's readers.
    let mut live_pages = Vec::new();
    let mut ledger_size = log_events as u64;
    for (name, path, _, _) in &pages {
        let live: Vec<pb::SignedEvent> = later.by_ref().take(live_events).collect();
        assert!(!live.is_empty(), "the programme plans the live entries");
        let readers = tokio::spawn({
            let path = path.clone();
            async move { load(addr, &path, READERS, round).await }
        });
        let mut feed_visible = Vec::new();
        let mut feed_visible_from_ack = Vec::new();
        let appending = Instant::now();
        for chunk in live.chunks(10) {
            // Past the readers' round, the rest is appended untimed: the
            // programme's later events build on these.
            let timed = appending.elapsed() < round;
            let sent = Instant::now();
            let last = append(&mut client, chunk).await;
            let acknowledged = Instant::now();
            ledger_size = last + 1;
            if !timed {
                continue;
            }
            loop {
                let health = get_json(addr, "/healthz").await;
                if health["applied"].as_u64().unwrap() > last {
                    break;
                }
                tokio::task::yield_now().await;
            }
            feed_visible.push(sent.elapsed());
            feed_visible_from_ack.push(acknowledged.elapsed());
        }
        let under_appends = readers.await.unwrap();
        feed_visible.sort();
        feed_visible_from_ack.sort();
        live_pages.push((
            *name,
            path.clone(),
            under_appends,
            feed_visible,
            feed_visible_from_ack,
        ));
    }
    let (feed_rss, feed_peak) = (feed.rss, feed.peak);
    feed.stop();
    let restarted = Child::start("feed", &url, &vkey, &dir.path().join("child-feed"), total).await;
    let feed_restart = restarted.seconds;
    // It holds the entries appended while its pages were read, too.
    let feed_restart_size = ledger_size;
    restarted.stop();

    // --- rebuild from zero over gRPC into the projection store ----------
    // The children wrote their stores through the page cache since the
    // ledger opened its own, and at 10M entries pushed much of it out
    // (run 19 read 147 bytes per event from storage here, with 1.34 cores
    // busy). Read back first, as a ledger machine serving a rebuild holds
    // it, so that this measures the pipeline, not this one shared disk.
    let started = Instant::now();
    let warmed = std::io::copy(
        &mut std::fs::File::open(data.join("ledger.redb")).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();
    eprintln!(
        "read the ledger's store back into the page cache: {} MiB in {:.1} s",
        warmed >> 20,
        started.elapsed().as_secs_f64()
    );
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
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let (kernel, read) = (kernel_work(), read_bytes());
    let projecting = tokio::spawn(projector.run_until_stopped(async {
        let _ = projector_stopped.await;
    }));
    applied
        .wait_for(|applied| *applied >= log_events as u64)
        .await
        .unwrap();
    let catch_up_cpu = Stage::since(started, cpu);
    let catch_up_kernel = {
        let (system, minor, major) = kernel_work();
        (system - kernel.0, minor - kernel.1, major - kernel.2)
    };
    let catch_up_read = read_bytes() - read;
    let catch_up = catch_up_cpu.time;
    // And the entries appended while the pages were read.
    applied
        .wait_for(|applied| *applied >= ledger_size)
        .await
        .unwrap();
    let catch_up_rate = rate(log_events as u64, catch_up);

    // --- append-to-visible under a steady load ---------------------------
    // One client appends the next programme events in requests of 10, back
    // to back; each request's last event is timed to visibility.
    let steady: Vec<pb::SignedEvent> = later.by_ref().take(steady_events).collect();
    let mut from_send = Vec::new();
    let mut from_ack = Vec::new();
    let load_started = Instant::now();
    for chunk in steady.chunks(10) {
        let sent = Instant::now();
        let last = append(&mut client, chunk).await;
        let acknowledged = Instant::now();
        applied.wait_for(|applied| *applied > last).await.unwrap();
        let visible = Instant::now();
        from_send.push(visible - sent);
        from_ack.push(visible - acknowledged);
    }
    let load_rate = rate(steady.len() as u64, load_started.elapsed());
    from_send.sort();
    from_ack.sort();
    let _ = stop_projector.send(());
    projecting.await.unwrap().unwrap();
    drop(shared);

    let _ = stop_ledger.send(());
    server.await.unwrap().unwrap();

    let millions = total as f64 / 1e6;
    let mib = |bytes: u64| bytes as f64 / (1u64 << 20) as f64;
    println!(
        "built a {log_events}-entry ledger in {build_seconds:.1} s ({:.0} events/s, signed on all cores)",
        rate(log_events as u64, Duration::from_secs_f64(build_seconds))
    );
    println!();
    println!("| measurement | result | ratio |");
    println!("|---|---|---|");
    println!(
        "| bare decoding (chain check, event decode, event id read), 1 core | {decode_rate:.0} events/s | baseline |"
    );
    println!(
        "| bare decoding, all cores (hash and decode in parallel, link in order) | {parallel_rate:.0} events/s | {:.2}x 1 core |",
        parallel_rate / decode_rate
    );
    println!(
        "| bare fold (decode + `Model::apply_parsed`), 1 core | {fold_rate:.0} events/s | {:.0}% of decoding (apply alone {apply_rate:.0}/s) |",
        100.0 * fold_rate / decode_rate
    );
    println!(
        "| raw `Subscribe` stream from 0, entries counted (no decoding) | {stream_rate:.0} entries/s | {:.2}x the bare fold |",
        stream_rate / fold_rate
    );
    println!(
        "| projector rebuild of {log_events} entries over gRPC into redb, in the ledger's process | {catch_up_rate:.0} events/s ({:.1} s) | {:.2}x the 400k/s target; {:.2}x the bare fold; {:.2}x the `Subscribe` rate |",
        catch_up.as_secs_f64(),
        catch_up_rate / 400_000.0,
        catch_up_rate / fold_rate,
        catch_up_rate / stream_rate
    );
    // The CPU budget: the rebuild runs the stages measured alone above
    // at once, on this machine's cores.
    let per_event = |stage: &Stage| stage.cpu_per_event(log_events as u64);
    let stages_cpu = per_event(&stream_cpu) + per_event(&parallel) + per_event(&apply);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let budget = cores as f64 * 1e6 / 400_000.0;
    println!(
        "| CPU per event of the stages measured alone: raw `Subscribe` (ledger, transport, client) / decoding on all cores / fold alone | {:.2} / {:.2} / {:.2} µs, {stages_cpu:.2} µs in all | at 400k/s, {cores} cores give {budget:.2} µs per event: the stages need {:.2}x that |",
        per_event(&stream_cpu),
        per_event(&parallel),
        per_event(&apply),
        stages_cpu / budget
    );
    println!(
        "| CPU per event of the projector rebuild in the ledger's process | {:.2} µs ({:.2} cores busy; the kernel's {:.2} µs of it, {:.2} page faults per event, {} major ones in all; {:.0} bytes read from storage per event) | {:.2}x the stages' sum (the rest: commits, the Merkle frontier, handing batches between threads) |",
        per_event(&catch_up_cpu),
        catch_up_cpu.cpu / catch_up_cpu.time.as_secs_f64(),
        catch_up_kernel.0 * 1e6 / log_events as f64,
        catch_up_kernel.1 as f64 / log_events as f64,
        catch_up_kernel.2,
        catch_up_read as f64 / log_events as f64,
        per_event(&catch_up_cpu) / stages_cpu
    );
    println!(
        "| projector rebuild of {total} entries, a process of its own | {projector_rate:.0} events/s ({:.1} s, {projector_cpu:.2} cores busy, {projector_written:.0} bytes written per event) | {:.2}x the 400k/s target |",
        total as f64 / projector_rate,
        projector_rate / 400_000.0
    );
    println!(
        "| feed replica catch-up of {total} entries, a process of its own (projections and its own copy of the log, both redb) | {feed_rate:.0} events/s ({:.1} s, {feed_cpu:.2} cores busy, {feed_written:.0} bytes written per event) | {:.2}x the projector's |",
        total as f64 / feed_rate,
        feed_rate / projector_rate
    );
    println!(
        "| projector restart on the store it left: load to caught up | {projector_restart:.1} s ({:.0} events/s, {:.0} MiB resident) | {:.2}x its rebuild time |",
        rate(total, Duration::from_secs_f64(projector_restart)),
        mib(projector_restart_rss),
        projector_restart * projector_rate / total as f64
    );
    println!(
        "| feed replica restart on what it left (projections and its copy of the log) | {feed_restart:.1} s ({:.0} events/s) | {:.2}x its catch-up time |",
        rate(feed_restart_size, Duration::from_secs_f64(feed_restart)),
        feed_restart * feed_rate / total as f64
    );
    println!(
        "| the ledger opening its store of {log_events} entries: replay and checks / resident memory after (redb's page cache of at most 1 GiB included) | {ledger_open:.1} s / {:.0} MiB | {:.0} MiB per million events |",
        mib(ledger_rss),
        mib(ledger_rss) / (log_events as f64 / 1e6)
    );
    println!(
        "| resident memory, projector process, caught up (peak) | {:.0} MiB ({:.0} MiB) | {:.0} MiB per million events ({:.0} peak) |",
        mib(projector_rss),
        mib(projector_peak),
        mib(projector_rss) / millions,
        mib(projector_peak) / millions
    );
    println!(
        "| resident memory, feed replica process, caught up (peak) | {:.0} MiB ({:.0} MiB) | {:.0} MiB per million events ({:.0} peak) |",
        mib(feed_rss),
        mib(feed_peak),
        mib(feed_rss) / millions,
        mib(feed_peak) / millions
    );
    println!(
        "| append-to-visible, from send, p50 / p99 ({} requests of 10, {load_rate:.0} events/s) | {:.1} ms / {:.1} ms | p99 at {:.2}x the 100 ms limit |",
        from_send.len(),
        ms(percentile(&from_send, 0.50)),
        ms(percentile(&from_send, 0.99)),
        ms(percentile(&from_send, 0.99)) / 100.0
    );
    println!(
        "| append-to-visible, from acknowledgement, p50 / p99 | {:.1} ms / {:.1} ms | p99 at {:.2}x the 100 ms limit |",
        ms(percentile(&from_ack, 0.50)),
        ms(percentile(&from_ack, 0.99)),
        ms(percentile(&from_ack, 0.99)) / 100.0
    );
    for (name, path, under_appends, feed_visible, feed_visible_from_ack) in &live_pages {
        println!(
            "| {name} `{path}` while entries arrive ({} requests of 10), {READERS} readers: p50 / p99 ({:.0} requests/s) | {:.1} ms / {:.1} ms | p99 at {:.2}x the 50 ms limit |",
            feed_visible.len(),
            under_appends.rate(),
            ms(percentile(&under_appends.latencies, 0.50)),
            ms(percentile(&under_appends.latencies, 0.99)),
            ms(percentile(&under_appends.latencies, 0.99)) / 50.0
        );
        // From acknowledgement too: the ledger shares this machine's disk
        // with the replica, and its fsyncs queue behind the replica's writes.
        println!(
            "| append-to-visible on the feed replica meanwhile, from send, p50 / p99 (`/healthz`); from acknowledgement, p99 | {:.1} ms / {:.1} ms; {:.1} ms | p99 at {:.2}x the 100 ms limit; from acknowledgement {:.2}x |",
            ms(percentile(feed_visible, 0.50)),
            ms(percentile(feed_visible, 0.99)),
            ms(percentile(feed_visible_from_ack, 0.99)),
            ms(percentile(feed_visible, 0.99)) / 100.0,
            ms(percentile(feed_visible_from_ack, 0.99)) / 100.0
        );
    }
    for (name, path, first, load) in &pages {
        println!(
            "| {name} `{path}`, {READERS} readers, feed at {total} entries: p50 / p99 ({:.0} requests/s, {:.1} KB; first answer, computed, {:.0} ms) | {:.1} ms / {:.1} ms | p99 at {:.2}x the 50 ms limit |",
            load.rate(),
            load.bytes as f64 / load.requests as f64 / 1e3,
            ms(*first),
            ms(percentile(&load.latencies, 0.50)),
            ms(percentile(&load.latencies, 0.99)),
            ms(percentile(&load.latencies, 0.99)) / 50.0
        );
    }
}
