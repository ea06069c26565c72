//! `aidledger-projector`: follows a ledger and serves its projections.

use std::net::SocketAddr;
use std::path::PathBuf;

use aidledger_projector::server::{EXCESS_PERCENT_DEFAULT, Projector, ProjectorConfig};
use anyhow::Context;
use clap::Parser;

/// Follow an aidledger ledger and serve balances, commune views, plans,
/// overlaps, recognition and traces over gRPC (aidledger.v1.Projections).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The ledger's gRPC endpoint.
    #[arg(long, env = "AIDLEDGER_LEDGER", default_value = "http://127.0.0.1:50051")]
    ledger: String,
    /// The ledger's checkpoint verifier key (C2SP vkey): every checkpoint
    /// the projector cites is verified against it.
    #[arg(long, env = "AIDLEDGER_VKEY")]
    vkey: String,
    /// Where the projection store lives.
    #[arg(long, env = "AIDLEDGER_PROJECTIONS_DATA", default_value = "projections")]
    data: PathBuf,
    /// Where to serve gRPC.
    #[arg(long, env = "AIDLEDGER_PROJECTIONS_LISTEN", default_value = "127.0.0.1:50052")]
    listen: SocketAddr,
    /// Delete the projection store and project the whole ledger again.
    #[arg(long)]
    rebuild: bool,
    /// Overlap findings: deliveries tolerated over a published need, in
    /// percent.
    #[arg(long, default_value_t = EXCESS_PERCENT_DEFAULT)]
    excess_percent: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = ProjectorConfig::new(
        args.data.join("projections.redb"),
        args.listen,
        &args.ledger,
        &args.vkey,
    );
    config.rebuild = args.rebuild;
    config.excess_percent = args.excess_percent;
    let projector = Projector::build(config).await?;
    tracing::info!(listen = %projector.local_addr(), ledger = %args.ledger, "projector serving");
    projector
        .run_until_stopped(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("running the projector")
}
