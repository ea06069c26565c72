//! `aidledger-projector`: follows a ledger and serves its projections.

use std::net::SocketAddr;
use std::path::PathBuf;

use aidledger_projector::analytics::AnalyticsConfig;
use aidledger_projector::server::{EXCESS_PERCENT_DEFAULT, Projector, ProjectorConfig};
use aidledger_projector::{FollowArgs, ProjectionStore};
use anyhow::Context;
use clap::Parser;

/// Follow an aidledger ledger and serve balances, commune views, plans,
/// overlaps, recognition and traces over gRPC (aidledger.v1.Projections).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    follow: FollowArgs,
    /// Where the projection store lives.
    #[arg(
        long,
        env = "AIDLEDGER_PROJECTIONS_DATA",
        default_value = "projections"
    )]
    data: PathBuf,
    /// Where to serve gRPC.
    #[arg(
        long,
        env = "AIDLEDGER_PROJECTIONS_LISTEN",
        default_value = "127.0.0.1:50052"
    )]
    listen: SocketAddr,
    /// Delete the projection store and project the whole ledger again.
    #[arg(long)]
    rebuild: bool,
    /// Overlap findings: deliveries tolerated over a published need, in
    /// percent.
    #[arg(long, default_value_t = EXCESS_PERCENT_DEFAULT)]
    excess_percent: u32,
    /// Serve Prometheus metrics on this address (keep it off the public
    /// network): entries applied and behind the ledger, whether following
    /// halted.
    #[arg(
        long,
        env = "AIDLEDGER_PROJECTIONS_METRICS_LISTEN",
        value_name = "ADDR"
    )]
    metrics_listen: Option<SocketAddr>,
    /// Print the entries applied and the digest of the stored read models
    /// (SHA-256 over every table), then exit: two stores with the same
    /// digest hold the same projections.
    #[arg(long)]
    digest: bool,
    /// Also copy the public read models (organisations, communes, receipts,
    /// transfers, deliveries, pledges, balances; no hidden donor's name, no
    /// reference) into this PostgreSQL database, for analysts and BI tools:
    /// postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "AIDLEDGER_ANALYTICS_STORE", value_name = "URL")]
    analytics_store: Option<String>,
    /// The schema of --analytics-store's tables.
    #[arg(
        long,
        env = "AIDLEDGER_ANALYTICS_SCHEMA",
        default_value = aidledger_projector::analytics::SCHEMA_DEFAULT
    )]
    analytics_schema: String,
    /// How often to copy the read models to --analytics-store, when they
    /// have moved.
    #[arg(
        long,
        env = "AIDLEDGER_ANALYTICS_INTERVAL_MS",
        default_value_t = 10_000
    )]
    analytics_interval_ms: u64,
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
    if args.digest {
        let path = args.data.join("projections.redb");
        let (_, model) =
            ProjectionStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
        println!("{} {}", model.position.size, hex::encode(model.digest()));
        return Ok(());
    }
    let mut config = ProjectorConfig::new(
        args.data.join("projections.redb"),
        args.listen,
        &args.follow.ledger,
        &args.follow.vkey,
    );
    config.follower = args.follow.follower_config()?;
    config.rebuild = args.rebuild;
    config.excess_percent = args.excess_percent;
    if let Some(url) = args.analytics_store {
        if args.analytics_interval_ms == 0 {
            anyhow::bail!("--analytics-interval-ms must be at least 1");
        }
        let mut analytics = AnalyticsConfig::new(url);
        analytics.schema = args.analytics_schema;
        analytics.interval = std::time::Duration::from_millis(args.analytics_interval_ms);
        // A wrong URL or schema is said at start, not once per interval;
        // the database itself may come later.
        aidledger_projector::analytics::check(&analytics).context("--analytics-store")?;
        config.analytics = Some(analytics);
    }
    let projector = Projector::build(config).await?;
    tracing::info!(listen = %projector.local_addr(), ledger = %args.follow.ledger, "projector serving");
    projector
        .run_until_stopped(stop_signal())
        .await
        .context("running the projector")
}

/// Ctrl-C, or SIGTERM from a service manager.
async fn stop_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping: committing what was applied");
}
