//! `aidledger-feed`: the public feed as a replica of its own (see
//! `aidledger_feed::replica`): follows a ledger, verifies it, keeps its own
//! copy, and serves the pages, the API, the exports and the log's tiles.

use std::net::SocketAddr;
use std::path::PathBuf;

use aidledger_feed::FeedOptions;
use aidledger_feed::replica::{Replica, ReplicaConfig};
use aidledger_ledger::privacy::{RefKey, SecretKey32};
use aidledger_projector::FollowArgs;
use anyhow::Context as _;
use clap::Parser;

/// Follow an aidledger ledger, verify it, keep a copy, and serve it to the
/// public: web pages, JSON API, exports, Atom, IATI, C2SP tiles and receipt
/// proofs.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    follow: FollowArgs,
    /// The folder of the feed's copy of the log and its projections.
    #[arg(long, env = "AIDLEDGER_FEED_DATA", default_value = "feed-data")]
    data: PathBuf,
    /// Where to serve HTTP (put a TLS-terminating proxy or CDN in front).
    #[arg(long, env = "AIDLEDGER_FEED_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The feed's public address, e.g. https://minhbach.example.vn, for the
    /// links printed on receipts (QR codes).
    #[arg(long, env = "AIDLEDGER_FEED_PUBLIC_URL")]
    public_url: Option<String>,
    /// The ledger's reference key (SPEC 7.5 K_ref, from `aidctl keygen
    /// --ref-key`): with it the feed offers the look-up by bank reference.
    #[arg(long, env = "AIDLEDGER_REF_KEY", value_name = "FILE")]
    ref_key: Option<PathBuf>,
    /// Delete the copy and the projections and follow from entry 0.
    #[arg(long)]
    rebuild: bool,
    /// Also write the log as static files in the C2SP tlog-tiles layout
    /// (checkpoint last), for any static web server, CDN or object store.
    #[arg(long, env = "AIDLEDGER_TILES_DIR", value_name = "DIR")]
    tiles_dir: Option<PathBuf>,
    /// /readyz answers 503 while the feed is more than this many entries
    /// behind the ledger (0: never for lag).
    #[arg(
        long,
        env = "AIDLEDGER_READY_LAG_ENTRIES_MAX",
        default_value_t = 10_000
    )]
    ready_lag_entries_max: u64,
    /// Serve Prometheus metrics on this address (keep it off the public
    /// network): entries applied and behind the ledger, whether following
    /// halted, requests by route and status, latency.
    #[arg(long, env = "AIDLEDGER_FEED_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    aidledger_alloc::init();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if let Some(addr) = args.metrics_listen {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("serving metrics on {addr}"))?;
    }
    let follower = args.follow.follower_config()?;
    let ref_key = match &args.ref_key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the reference key {}", path.display()))?;
            Some(RefKey(SecretKey32::from_hex(&text).with_context(|| {
                format!("reading the reference key {}", path.display())
            })?))
        }
        None => None,
    };
    let replica = Replica::build(ReplicaConfig {
        data: args.data.clone(),
        listen: args.listen,
        follower,
        options: FeedOptions {
            vkey: args.follow.vkey.clone(),
            public_url: args.public_url.clone(),
            ref_key,
            ready_lag_entries_max: args.ready_lag_entries_max,
        },
        rebuild: args.rebuild,
        tiles_dir: args.tiles_dir.clone(),
    })
    .await?;
    tracing::info!(listen = %replica.local_addr(), ledger = %args.follow.ledger, "feed serving");
    replica
        .run_until_stopped(stop_signal())
        .await
        .context("running the feed")
}

/// Ctrl-C or SIGTERM (systemd, Kubernetes).
async fn stop_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping: committing what was applied");
}
