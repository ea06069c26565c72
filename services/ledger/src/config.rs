//! `aidledger serve` settings, layered: built-in defaults, then a TOML file
//! (`--config`), then environment variables, then flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aidledger_ledger::PublicKey;
use aidledger_tlog::ed25519::SecretKey;
use anyhow::{Context, bail};
use serde::Deserialize;

use crate::server::{ServeConfig, TlsMaterial};

/// Flags and environment variables of `aidledger serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (flag names with `_`).
    #[arg(long, env = "AIDLEDGER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded store (redb), unless --store names a
    /// database.
    #[arg(long, env = "AIDLEDGER_DATA")]
    pub data: Option<PathBuf>,
    /// The log in PostgreSQL instead of the embedded store:
    /// postgres://USER@HOST:PORT/DB (a password in it, or in PGPASSWORD's
    /// place, is never logged).
    #[arg(long, env = "AIDLEDGER_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// With --store: the address clients reach this ledger at, which
    /// standbys name when they send writers here (default: http:// or
    /// https:// and --listen).
    #[arg(long, env = "AIDLEDGER_ADVERTISE", value_name = "URL")]
    pub advertise: Option<String>,
    /// With --store: how often a standby tries to become the writer; it
    /// takes over within about this long of the writer's death.
    #[arg(long, env = "AIDLEDGER_TAKEOVER_INTERVAL_MS")]
    pub takeover_interval_ms: Option<u64>,
    /// Address to listen on, e.g. 127.0.0.1:50051.
    #[arg(long, env = "AIDLEDGER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The ledger's origin (SPEC §2), e.g. aid.ninhthuan.example/children-2025.
    #[arg(long, env = "AIDLEDGER_ORIGIN")]
    pub origin: Option<String>,
    /// PKCS#8 PEM file of the checkpoint key; must not be readable by others.
    #[arg(long, env = "AIDLEDGER_LEDGER_KEY")]
    pub ledger_key: Option<PathBuf>,
    /// Hex public key of the authority whose Genesis alone is accepted at seq 0.
    #[arg(long, env = "AIDLEDGER_AUTHORITY_PUBLIC_KEY")]
    pub authority_public_key: Option<String>,
    /// Sign a checkpoint at least this often while entries arrive.
    #[arg(long, env = "AIDLEDGER_CHECKPOINT_INTERVAL_MS")]
    pub checkpoint_interval_ms: Option<u64>,
    /// Events in one AppendBatch request.
    #[arg(long, env = "AIDLEDGER_BATCH_EVENTS_MAX")]
    pub batch_events_max: Option<usize>,
    /// Bytes in one request.
    #[arg(long, env = "AIDLEDGER_REQUEST_BYTES_MAX")]
    pub request_bytes_max: Option<usize>,
    /// Events per second per signing key (0: unlimited).
    #[arg(long, env = "AIDLEDGER_RATE_LIMIT_PER_SECOND")]
    pub rate_limit_per_second: Option<f64>,
    /// Events a key may send at once before its rate applies.
    #[arg(long, env = "AIDLEDGER_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<f64>,
    /// PEM certificate chain: serve TLS.
    #[arg(long, env = "AIDLEDGER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long, env = "AIDLEDGER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA: require client certificates it signed (mutual TLS).
    #[arg(long, env = "AIDLEDGER_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Vkey of a witness whose cosignatures the ledger records and serves
    /// (C2SP tlog-cosignature, type 0x04); repeat for each witness.
    #[arg(long = "witness", value_name = "VKEY")]
    pub witnesses: Vec<String>,
    /// Serve Prometheus metrics on this address (keep it off the public
    /// network): appends and refusals by reason, group sizes, commit
    /// latency, the latest checkpoint's size and time, subscribers.
    #[arg(long, env = "AIDLEDGER_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// The same settings in a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data: Option<PathBuf>,
    store: Option<String>,
    advertise: Option<String>,
    takeover_interval_ms: Option<u64>,
    listen: Option<SocketAddr>,
    origin: Option<String>,
    ledger_key: Option<PathBuf>,
    authority_public_key: Option<String>,
    checkpoint_interval_ms: Option<u64>,
    batch_events_max: Option<usize>,
    request_bytes_max: Option<usize>,
    rate_limit_per_second: Option<f64>,
    rate_limit_burst: Option<f64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    witnesses: Option<Vec<String>>,
    metrics_listen: Option<SocketAddr>,
}

/// The default listening address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

impl ServeArgs {
    /// Resolves the layers and loads the keys.
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the config file {}", path.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .with_context(|| format!("parsing the config file {}", path.display()))?
            }
            None => FileSettings::default(),
        };
        let store = self.store.or(file.store);
        if let Some(url) = &store
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            bail!("--store must be a postgres:// URL (without it, the log is in --data)");
        }
        let data = match (self.data.or(file.data), &store) {
            (Some(data), _) => data,
            (None, Some(_)) => PathBuf::new(),
            (None, None) => bail!("--data DIR (or --store URL) is required"),
        };
        let listen = match self.listen.or(file.listen) {
            Some(listen) => listen,
            None => DEFAULT_LISTEN.parse().expect("valid default"),
        };
        let origin = self
            .origin
            .or(file.origin)
            .context("--origin ORIGIN is required")?;
        let key_path = self
            .ledger_key
            .or(file.ledger_key)
            .context("--ledger-key FILE is required")?;
        let ledger_key = load_key_file(&key_path)?;
        let authority_key = self
            .authority_public_key
            .or(file.authority_public_key)
            .map(|hex_key| parse_public_key(&hex_key))
            .transpose()?;
        let mut config = ServeConfig::new(data, listen, &origin, ledger_key);
        config.authority_key = authority_key;
        config.store_url = store;
        config.advertise = self.advertise.or(file.advertise);
        if let Some(ms) = self.takeover_interval_ms.or(file.takeover_interval_ms) {
            if ms == 0 {
                bail!("takeover_interval_ms must be at least 1");
            }
            config.takeover_interval = Duration::from_millis(ms);
        }
        if let Some(ms) = self.checkpoint_interval_ms.or(file.checkpoint_interval_ms) {
            if ms == 0 {
                bail!("checkpoint_interval_ms must be at least 1");
            }
            config.ingest.checkpoint_interval = Duration::from_millis(ms);
        }
        if let Some(max) = self.batch_events_max.or(file.batch_events_max) {
            config.limits.batch_events_max = max;
        }
        if let Some(max) = self.request_bytes_max.or(file.request_bytes_max) {
            config.limits.request_bytes_max = max;
        }
        if let Some(rate) = self.rate_limit_per_second.or(file.rate_limit_per_second) {
            config.rate_limit_per_second = rate;
        }
        if let Some(burst) = self.rate_limit_burst.or(file.rate_limit_burst) {
            config.rate_limit_burst = burst;
        }
        config.witnesses = if self.witnesses.is_empty() {
            file.witnesses.unwrap_or_default()
        } else {
            self.witnesses
        };
        config.metrics_listen = self.metrics_listen.or(file.metrics_listen);
        let tls_cert = self.tls_cert.or(file.tls_cert);
        let tls_key = self.tls_key.or(file.tls_key);
        let tls_client_ca = self.tls_client_ca.or(file.tls_client_ca);
        config.tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => {
                check_private_file(&key)?;
                Some(TlsMaterial {
                    cert_pem: read(&cert)?,
                    key_pem: read(&key)?,
                    client_ca_pem: tls_client_ca.as_deref().map(read).transpose()?,
                })
            }
            (None, None) => None,
            _ => bail!("TLS needs both tls_cert and tls_key"),
        };
        Ok(config)
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Parses a 32-byte Ed25519 public key written in hex.
pub fn parse_public_key(hex_key: &str) -> anyhow::Result<PublicKey> {
    let bytes = hex::decode(hex_key.trim())
        .with_context(|| format!("public key {hex_key:?} is not hex"))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("public key is {} bytes, not 32", b.len()))?;
    Ok(PublicKey(key))
}

/// Refuses a private file others can read: a leaked checkpoint key lets
/// anyone sign checkpoints in the ledger's name.
pub fn check_private_file(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by group or others (mode {:o}); run: chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

/// Loads a PKCS#8 PEM key file after checking its permissions.
pub fn load_key_file(path: &Path) -> anyhow::Result<SecretKey> {
    check_private_file(path)?;
    let pem = read(path)?;
    SecretKey::from_pkcs8_pem(&pem).with_context(|| format!("loading the key {}", path.display()))
}

/// Writes a new PKCS#8 PEM key file with mode 0600, refusing to overwrite.
pub fn write_key_file(path: &Path, key: &SecretKey) -> anyhow::Result<()> {
    write_secret_file(path, key.to_pkcs8_pem().as_bytes())
}

/// Writes a secret (a key) to a new file only its owner can read, synced.
///
/// # Errors
///
/// The file exists or cannot be written.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating the key file {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(dir: &Path, mode: u32) -> PathBuf {
        let path = dir.join(format!("key-{mode:o}.pem"));
        write_key_file(&path, &SecretKey::generate()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        path
    }

    #[test]
    fn the_deployment_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/aidledger.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let settings: FileSettings = toml::from_str(&text).unwrap();
        assert_eq!(settings.checkpoint_interval_ms, Some(250));
        assert!(settings.authority_public_key.is_some());
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = load_key_file(&key_file(dir.path(), 0o644)).unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");
        assert!(load_key_file(&key_file(dir.path(), 0o600)).is_ok());
    }

    #[test]
    fn file_then_flags_layering() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_file(dir.path(), 0o600);
        let config_path = dir.path().join("aidledger.toml");
        std::fs::write(
            &config_path,
            format!(
                "data = \"{}\"\norigin = \"from.file.example/x\"\nledger_key = \"{}\"\nbatch_events_max = 7\n",
                dir.path().join("data").display(),
                key.display()
            ),
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(config_path.clone()),
            origin: Some("from.flag.example/x".into()),
            ..ServeArgs::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.origin, "from.flag.example/x");
        assert_eq!(config.limits.batch_events_max, 7);
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);

        std::fs::write(&config_path, "colour = \"blue\"\n").unwrap();
        let args = ServeArgs {
            config: Some(config_path),
            ..ServeArgs::default()
        };
        let error = format!("{:#}", args.resolve().unwrap_err());
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn a_store_url_replaces_the_data_folder_and_must_be_postgres() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_file(dir.path(), 0o600);
        let args = |store: &str| ServeArgs {
            store: Some(store.into()),
            origin: Some("aid.example/x".into()),
            ledger_key: Some(key.clone()),
            ..ServeArgs::default()
        };
        let url = "postgres://ledger:secret@db.internal:5432/aidledger";
        let config = args(url).resolve().unwrap();
        assert_eq!(config.store_url.as_deref(), Some(url));
        assert!(
            !format!("{config:?}").contains("secret"),
            "the URL's password stays out of logs"
        );
        let error = format!("{:#}", args("mysql://db/aidledger").resolve().unwrap_err());
        assert!(error.contains("postgres://"), "{error}");
        let error = format!(
            "{:#}",
            ServeArgs {
                origin: Some("aid.example/x".into()),
                ..ServeArgs::default()
            }
            .resolve()
            .unwrap_err()
        );
        assert!(error.contains("--data DIR (or --store URL)"), "{error}");
    }
}
