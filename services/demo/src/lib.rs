//! `aidledger-demo`: the whole system in one command. Starts the ledger on
//! the embedded store in a local folder and creates its keys; starts the
//! projector and a public feed replica, each following the ledger over gRPC
//! with its own copy in the same folder, exactly as they run on separate
//! machines; submits a realistic programme year through gRPC like any
//! agency would; prints what to try next, and keeps serving.
//!
//! Boundary: the only crate that knows all the parts. The ledger service,
//! the projector and the feed do not depend on it or on each other's
//! processes, so `aidledger serve` links no read side.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aidledger::config::{load_key_file, write_key_file, write_secret_file};
use aidledger::server::{Application, ServeConfig};
use aidledger_client::ConnectOptions;
use aidledger_feed::replica::{Replica, ReplicaConfig};
use aidledger_ledger::PublicKey;
use aidledger_programme::{DemoConfig, Programme};
use aidledger_projector::FollowerConfig;
use aidledger_projector::server::{Projector, ProjectorConfig};
use aidledger_tlog::LogSigner;
use aidledger_tlog::ed25519::SecretKey;
use aidledger_wire::pb;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

/// The demo ledger's origin.
pub const DEMO_ORIGIN: &str = "aid.ninhthuan.example/children-2025";

/// The feed replica's folder inside the demo's data folder.
pub const DEMO_FEED_DIR: &str = "feed";

/// Options of `aidledger-demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Folder for the demo ledger and its key.
    #[arg(long, default_value = "demo-data", env = "AIDLEDGER_DATA")]
    pub data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = aidledger::config::DEFAULT_LISTEN, env = "AIDLEDGER_LISTEN")]
    pub listen: SocketAddr,
    /// Seed of the generated programme.
    #[arg(long, default_value_t = 2025)]
    pub seed: u64,
    /// Steady-state events to add after the programme year (load).
    #[arg(long, default_value_t = 0)]
    pub extra_events: usize,
    /// Address the projections (aidledger.v1.Projections) listen on.
    #[arg(
        long,
        default_value = "127.0.0.1:50052",
        env = "AIDLEDGER_PROJECTIONS_LISTEN"
    )]
    pub projections_listen: SocketAddr,
    /// Address the public feed (web pages, API, exports, tiles) listens on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "AIDLEDGER_FEED_LISTEN")]
    pub feed_listen: SocketAddr,
    /// The feed's public address, e.g. `https://minhbach.example.vn`, for
    /// the links printed on receipts (QR codes); by default the address the
    /// reader asked for.
    #[arg(long, env = "AIDLEDGER_FEED_PUBLIC_URL")]
    pub feed_public_url: Option<String>,
    /// Submit the data, wait until the projections have it, and exit
    /// instead of serving on.
    #[arg(long)]
    pub no_serve: bool,
}

/// The agency whose key the demo writes to `keys/`: the provincial
/// children's fund, which may record receipts.
pub const DEMO_AGENCY: &str = "quy-bao-tro-tre-em";

/// The reference key's file in `keys/`.
pub const DEMO_REF_KEY_FILE: &str = "ref.key";

/// How often the demo asks for the checkpoint covering what it sent, and
/// for how long (the ledger signs one within a second of an append).
const CHECKPOINT_POLL_INTERVAL: Duration = Duration::from_millis(50);
const CHECKPOINT_WAIT_MAX: Duration = Duration::from_secs(30);

/// Events per AppendBatch the demo sends.
const DEMO_BATCH_EVENTS: usize = 500;

/// Runs the demo until `shutdown` completes.
pub async fn run(
    args: DemoArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let key_path = args.data.join("ledger-key.pem");
    if !key_path.exists() {
        write_key_file(&key_path, &SecretKey::generate())?;
    }
    let ledger_key = load_key_file(&key_path)?;
    let vkey = LogSigner::new(DEMO_ORIGIN, load_key_file(&key_path)?)?.vkey();
    let mut programme = Programme::new(DemoConfig {
        seed: args.seed,
        origin: DEMO_ORIGIN.into(),
        log_vkey: vkey.clone(),
        extra_events: args.extra_events,
    });
    // One agency's key on disk, so a newcomer can sign and submit an event
    // by hand with aidctl.
    let keys_dir = args.data.join("keys");
    std::fs::create_dir_all(&keys_dir)
        .with_context(|| format!("creating {}", keys_dir.display()))?;
    let fund_key_path = keys_dir.join(format!("{DEMO_AGENCY}.pem"));
    if let Some(key) = programme.signing_key(DEMO_AGENCY)
        && !fund_key_path.exists()
    {
        write_key_file(&fund_key_path, key)?;
    }
    // SPEC §7.5 `K_ref`, as `aidctl keygen --ref-key` writes it: the fund
    // needs it to record receipts by reference, and the feed to look them up.
    let ref_key = programme.ref_key();
    let ref_key_path = keys_dir.join(DEMO_REF_KEY_FILE);
    if !ref_key_path.exists() {
        write_secret_file(
            &ref_key_path,
            format!("{}\n", ref_key.0.to_hex()).as_bytes(),
        )?;
    }
    let mut config = ServeConfig::new(args.data.clone(), args.listen, DEMO_ORIGIN, ledger_key);
    config.authority_key = Some(PublicKey(programme.authority_public_key()));
    let app = Application::build(config)
        .await
        .context("starting the demo ledger")?;
    let port = app.port();
    let existing = app.size_at_start();
    // One stop signal for the ledger and the projector.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let url = format!("http://127.0.0.1:{port}");
    let projector = Projector::build(ProjectorConfig::new(
        args.data.join("projections.redb"),
        args.projections_listen,
        &url,
        &vkey,
    ))
    .await
    .context("starting the demo projector")?;
    let projections_addr = projector.local_addr();
    let projections = projector.shared();
    // The feed is a replica like any other: it follows the ledger over
    // gRPC, verifies it against the vkey and keeps its own copy.
    let mut feed_connect = ConnectOptions::new("");
    feed_connect.vkey = Some(vkey.clone());
    let feed = Replica::build(ReplicaConfig {
        data: args.data.join(DEMO_FEED_DIR),
        listen: args.feed_listen,
        follower: FollowerConfig::new(&url, feed_connect),
        options: aidledger_feed::FeedOptions {
            vkey: vkey.clone(),
            public_url: args.feed_public_url.clone(),
            ref_key: Some(ref_key),
            ready_lag_entries_max: 0,
        },
        rebuild: false,
        tiles_dir: None,
    })
    .await
    .context("starting the demo feed")?;
    let feed_addr = feed.local_addr();
    let feed_applied = feed.applied();
    let feed = tokio::spawn(feed.run_until_stopped(stopped()));
    let server = tokio::spawn(app.run_until_stopped(stopped()));
    let projector = tokio::spawn(projector.run_until_stopped(stopped()));
    let signal = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = signal.send(true);
    });

    let size = if existing == 0 {
        // A stop asked for meanwhile ends the demo at once: the submission's
        // error about the ledger that stopped is not the demo's failure.
        tokio::select! {
            biased;
            () = stopped() => {}
            submitted = submit(&url, &mut programme) => submitted?,
        }
        programme.total_events() as u64
    } else {
        println!(
            "The ledger in {} already holds {existing} entries; serving it as it is.",
            args.data.display()
        );
        existing
    };
    // The projections and the feed are current once they have applied
    // every entry. A stop asked for meanwhile (Ctrl-C) ends the demo at once.
    let caught_up = async {
        let mut applied = projections.applied();
        applied
            .wait_for(|applied| *applied >= size)
            .await
            .context("the projector stopped before catching up")?;
        let mut applied = feed_applied;
        applied
            .wait_for(|applied| *applied >= size)
            .await
            .context("the feed stopped before catching up")?;
        anyhow::Ok(())
    };
    let stopping = stopped();
    let stopped_early = tokio::select! {
        caught_up = caught_up => {
            caught_up?;
            false
        }
        () = stopping => true,
        () = tokio::time::sleep(Duration::from_secs(60)) => {
            anyhow::bail!("the projections and the feed did not catch up with the ledger within 60 s: {:?}", projections.status());
        }
    };
    if !stopped_early {
        print_guide(
            &url,
            port,
            projections_addr,
            feed_addr,
            &args,
            &vkey,
            &programme,
        );
    }
    if args.no_serve {
        let _ = stop.send(true);
    } else if !stopped_early {
        println!("Serving. Press Ctrl-C to stop.");
    }
    projector.await.context("the projector task")??;
    feed.await.context("the feed task")??;
    server.await.context("the server task")??;
    Ok(())
}

async fn submit(url: &str, programme: &mut Programme) -> anyhow::Result<()> {
    let mut client = connect(url).await?;
    let total = programme.total_events();
    let progress = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events, {per_sec}, ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    progress.set_message("Submitting the programme year over gRPC");
    let mut refused = 0usize;
    loop {
        let events = programme.next_batch(DEMO_BATCH_EVENTS);
        if events.is_empty() {
            break;
        }
        let count = events.len();
        let response = client
            .append_batch(pb::AppendBatchRequest { events })
            .await
            .context("submitting a batch of demo events")?
            .into_inner();
        for result in response.results.iter().filter(|r| r.code != 0) {
            refused += 1;
            progress.println(format!("refused: {} {}", result.reason, result.message));
        }
        progress.inc(count as u64);
    }
    progress.finish();
    anyhow::ensure!(refused == 0, "{refused} demo events were refused");
    // Done once a signed checkpoint covers everything just appended, so
    // the guide's commands see the whole year.
    let total = total as u64;
    let deadline = tokio::time::Instant::now() + CHECKPOINT_WAIT_MAX;
    loop {
        let checkpoint = client
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .context("asking the ledger for its checkpoint")?
            .into_inner();
        if checkpoint.size >= total {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the ledger signed no checkpoint covering the {total} events within {CHECKPOINT_WAIT_MAX:?} (latest: {})",
            checkpoint.size
        );
        tokio::time::sleep(CHECKPOINT_POLL_INTERVAL).await;
    }
}

async fn connect(
    url: &str,
) -> anyhow::Result<pb::ledger_client::LedgerClient<tonic::transport::Channel>> {
    let mut last_error = None;
    for _ in 0..50 {
        match pb::ledger_client::LedgerClient::connect(url.to_owned()).await {
            Ok(client) => return Ok(client),
            Err(error) => last_error = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last_error.expect("tried at least once")).with_context(|| format!("connecting to {url}"))
}

fn print_guide(
    url: &str,
    port: u16,
    projections: SocketAddr,
    feed: SocketAddr,
    args: &DemoArgs,
    vkey: &str,
    programme: &Programme,
) {
    println!();
    println!("aidledger-demo: a year of the Ninh Thuận children's programme, verifiable.");
    println!("  gRPC        {url}  (aidledger.v1.Ledger, health, reflection)");
    println!("  projections {projections}  (aidledger.v1.Projections, health, reflection)");
    println!("  web         http://{feed}/  (Tiếng Việt; English at /en)");
    println!(
        "  feed        http://{feed}/api/v1/openapi.json, /exports/*.csv, /feed.atom, /exports/iati-activities.xml"
    );
    println!("  tiles       http://{feed}/checkpoint  (C2SP tlog-tiles: /checkpoint, /tile/...)");
    println!("  origin      {DEMO_ORIGIN}");
    println!("  vkey        {vkey}");
    println!("  data        {}", args.data.display());
    println!();
    println!("Try:");
    println!("  grpcurl -plaintext 127.0.0.1:{port} list");
    println!(
        "  grpcurl -plaintext -d '{{\"commune_code\": \"22783\"}}' {projections} aidledger.v1.Projections/GetCommune"
    );
    println!(
        "  cargo run -p aidctl -- --ledger {url} --origin {DEMO_ORIGIN} --vkey '{vkey}' checkpoint"
    );
    println!("  cargo run -p aidctl -- --ledger {url} --origin {DEMO_ORIGIN} tail --from 0");
    let samples = programme.sample_references();
    if !samples.is_empty() {
        println!();
        println!("Donations a donor can look up (receipt id, bank reference, amount):");
        for sample in samples {
            println!(
                "  {}  {}  {} VND  {}",
                sample.receipt_id,
                sample.reference,
                sample.amount_vnd,
                if sample.public_name {
                    sample.donor_name.as_str()
                } else {
                    "Nhà hảo tâm ẩn danh / Anonymous donor"
                }
            );
        }
    }
    println!();
    println!("A donor verifies a gift at http://{feed}/verify (receipt id or bank reference); the");
    println!(
        "reference is posted to the feed, which holds the reference key ({}/keys/{DEMO_REF_KEY_FILE}),",
        args.data.display()
    );
    println!("and never appears in the log, a URL or a log line.");
}
