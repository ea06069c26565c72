//! `aidledger-projector`: follows a ledger and serves its projections.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use aidledger_client::TlsOptions;
use aidledger_projector::ProjectionStore;
use aidledger_projector::server::{EXCESS_PERCENT_DEFAULT, Projector, ProjectorConfig};
use anyhow::Context;
use clap::Parser;

/// Follow an aidledger ledger and serve balances, commune views, plans,
/// overlaps, recognition and traces over gRPC (aidledger.v1.Projections).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The ledger's gRPC endpoint.
    #[arg(
        long,
        env = "AIDLEDGER_LEDGER",
        default_value = "http://127.0.0.1:50051"
    )]
    ledger: String,
    /// The ledger's checkpoint verifier key (C2SP vkey): every checkpoint
    /// the projector cites is verified against it.
    #[arg(long, env = "AIDLEDGER_VKEY")]
    vkey: String,
    /// CA certificate (PEM) of the ledger's TLS certificate; needed for
    /// an https:// ledger.
    #[arg(long, env = "AIDLEDGER_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM), for a ledger that requires mutual TLS.
    #[arg(long, env = "AIDLEDGER_CERT", value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "AIDLEDGER_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// The name expected in the ledger's certificate, if not the URL's host.
    #[arg(long, value_name = "NAME")]
    tls_domain: Option<String>,
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
    /// How often applied changes are committed to the store, in ms.
    #[arg(long, default_value_t = 1000)]
    commit_interval_ms: u64,
    /// How often the ledger's checkpoint is fetched and verified, in ms.
    #[arg(long, default_value_t = 1000)]
    checkpoint_interval_ms: u64,
    /// Print the entries applied and the digest of the stored read models
    /// (SHA-256 over every table), then exit: two stores with the same
    /// digest hold the same projections.
    #[arg(long)]
    digest: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
        &args.ledger,
        &args.vkey,
    );
    config.rebuild = args.rebuild;
    if args.ca.is_some()
        || args.cert.is_some()
        || args.tls_key.is_some()
        || args.tls_domain.is_some()
    {
        config.follower.connect.tls = Some(TlsOptions {
            ca_pem: read_pem(args.ca.as_deref())?,
            client_cert_pem: read_pem(args.cert.as_deref())?,
            client_key_pem: read_pem(args.tls_key.as_deref())?,
            domain: args.tls_domain.clone(),
        });
    }
    config.excess_percent = args.excess_percent;
    config.follower.commit_interval = Duration::from_millis(args.commit_interval_ms.max(1));
    config.follower.checkpoint_interval = Duration::from_millis(args.checkpoint_interval_ms.max(1));
    let projector = Projector::build(config).await?;
    tracing::info!(listen = %projector.local_addr(), ledger = %args.ledger, "projector serving");
    projector
        .run_until_stopped(stop_signal())
        .await
        .context("running the projector")
}

fn read_pem(path: Option<&std::path::Path>) -> anyhow::Result<Option<Vec<u8>>> {
    path.map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
        .transpose()
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
