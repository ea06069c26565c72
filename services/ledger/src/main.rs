//! `aidledger`: the ledger server. Thin: parses the command line, sets up
//! logging, and hands over to the library; exit code 1 on error.

use std::process::ExitCode;

use aidledger::config::ServeArgs;
use aidledger::server::Application;
use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// The aidledger ledger: signed aid events in a verifiable log.
#[derive(Debug, Parser)]
#[command(name = "aidledger", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve aidledger.v1.Ledger over gRPC on the embedded store.
    Serve(Box<ServeArgs>),
}

fn main() -> ExitCode {
    aidledger_alloc::init();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let listen = config.listen;
    let tls = config.tls.is_some();
    if let Some(addr) = config.metrics_listen {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("serving metrics on {addr}"))?;
    }
    if config.store_url.is_some() {
        tracing::info!(%listen, tls, "ledger on PostgreSQL: writer or standby");
        return aidledger::server::serve_shared(config, shutdown_signal()).await;
    }
    let app = Application::build(config).await?;
    tracing::info!(
        vkey = app.vkey(),
        entries = app.size_at_start(),
        %listen,
        port = app.port(),
        tls,
        "ledger serving"
    );
    app.run_until_stopped(shutdown_signal()).await
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
