//! The command-line options of a program that follows a ledger (the
//! projector and the feed replica): where the ledger is, the pinned vkey,
//! TLS, and the follower's pace. One definition, so the two programs and
//! their deploy files cannot differ.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aidledger_client::{ConnectOptions, TlsOptions};
use anyhow::Context as _;

use crate::FollowerConfig;

/// How to reach, trust and follow the ledger.
#[derive(Clone, Debug, clap::Args)]
pub struct FollowArgs {
    /// The ledger's gRPC endpoint, http:// or https://; for a writer and
    /// its standbys, their endpoints separated by commas (any of them
    /// serves the log).
    #[arg(
        long,
        env = "AIDLEDGER_LEDGER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub ledger: String,
    /// The ledger's checkpoint verifier key (C2SP vkey): every checkpoint
    /// cited or served is verified against it.
    #[arg(long, env = "AIDLEDGER_VKEY")]
    pub vkey: String,
    /// CA certificate (PEM) of the ledger's TLS certificate; needed for an
    /// https:// ledger.
    #[arg(long, env = "AIDLEDGER_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), for a ledger that requires mutual TLS.
    #[arg(long, env = "AIDLEDGER_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "AIDLEDGER_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The name expected in the ledger's certificate, if not the URL's host.
    #[arg(long, value_name = "NAME")]
    pub tls_domain: Option<String>,
    /// How often applied changes are committed to the store, in ms.
    #[arg(long, default_value_t = 1000)]
    pub commit_interval_ms: u64,
    /// How often the ledger's checkpoint is fetched and verified, in ms.
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_interval_ms: u64,
}

impl FollowArgs {
    /// The follower's configuration, with the TLS files read.
    ///
    /// # Errors
    ///
    /// A TLS file cannot be read.
    pub fn follower_config(&self) -> anyhow::Result<FollowerConfig> {
        let mut connect = ConnectOptions::new("");
        connect.vkey = Some(self.vkey.clone());
        if self.ca.is_some()
            || self.cert.is_some()
            || self.tls_key.is_some()
            || self.tls_domain.is_some()
        {
            connect.tls = Some(TlsOptions {
                ca_pem: read(self.ca.as_deref())?,
                client_cert_pem: read(self.cert.as_deref())?,
                client_key_pem: read(self.tls_key.as_deref())?,
                domain: self.tls_domain.clone(),
            });
        }
        let mut config = FollowerConfig::new(&self.ledger, connect);
        config.commit_interval = Duration::from_millis(self.commit_interval_ms.max(1));
        config.checkpoint_interval = Duration::from_millis(self.checkpoint_interval_ms.max(1));
        Ok(config)
    }
}

fn read(path: Option<&Path>) -> anyhow::Result<Option<Vec<u8>>> {
    path.map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
        .transpose()
}
