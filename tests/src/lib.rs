//! Test kit shared by the integration tests and the benchmarks: a seeded
//! generator of valid signed ledgers, with its own simple model of the
//! balances it should produce, and helpers to open real ledgers on disk.

pub mod generator;
pub mod http_load;
pub mod process;

use std::path::Path;
use std::sync::Arc;

use aidledger::{LedgerConfig, OpenError, Sequencer};
use aidledger_ledger::{PublicKey, Timestamp};
use aidledger_store::{LogStore, RedbStore};
use aidledger_tlog::LogSigner;
use aidledger_tlog::ed25519::SecretKey;

/// `AIDLEDGER_BENCH_SCALE` (default 1.0): below 1 for a quick benchmark
/// smoke run.
pub fn bench_scale() -> f64 {
    std::env::var("AIDLEDGER_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// `n` scaled by [`bench_scale`], at least 1.
pub fn scaled(n: usize) -> usize {
    ((n as f64 * bench_scale()) as usize).max(1)
}

/// The origin every test ledger uses.
pub const ORIGIN: &str = "aid.ninhthuan.example/children-test";

/// The fixed ledger key of test ledgers, so reopening finds the same vkey.
pub fn ledger_key() -> SecretKey {
    SecretKey::from_seed(&[0x4c; 32])
}

/// The config of a test ledger whose Genesis is signed by `authority`.
pub fn config(authority: &SecretKey) -> LedgerConfig {
    LedgerConfig {
        signer: LogSigner::new(ORIGIN, ledger_key()).expect("valid origin"),
        authority_key: Some(PublicKey(authority.public_key())),
    }
}

/// Opens (creating if needed) a redb-backed ledger in `dir`.
pub fn open_redb(dir: &Path, authority: &SecretKey) -> Result<Sequencer, OpenError> {
    let store: Arc<dyn LogStore> = Arc::new(RedbStore::open(&dir.join("ledger.redb"))?);
    Sequencer::open(store, config(authority))
}

/// A clock for tests: 2025-01-01 plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_seconds(1_735_689_600 + seconds)
}

/// A real ledger server on a loopback port, stopped gracefully on drop of
/// its handle via [`TestServer::stop`].
#[derive(Debug)]
pub struct TestServer {
    /// The port it listens on.
    pub port: u16,
    /// The checkpoint verifier key.
    pub vkey: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server on `dir` whose Genesis must be signed by `authority`.
    pub async fn start(dir: &Path, authority: &SecretKey) -> TestServer {
        Self::start_with(dir, authority, |_| {}).await
    }

    /// Like [`TestServer::start`], with the config adjusted by `adjust`.
    pub async fn start_with(
        dir: &Path,
        authority: &SecretKey,
        adjust: impl FnOnce(&mut aidledger::server::ServeConfig),
    ) -> TestServer {
        let mut config = aidledger::server::ServeConfig::new(
            dir.to_path_buf(),
            "127.0.0.1:0".parse().unwrap(),
            ORIGIN,
            ledger_key(),
        );
        config.authority_key = Some(PublicKey(authority.public_key()));
        config.ingest.checkpoint_interval = std::time::Duration::from_millis(200);
        adjust(&mut config);
        let app = aidledger::server::Application::build(config)
            .await
            .expect("the server starts");
        let port = app.port();
        let vkey = app.vkey().to_owned();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async {
            let _ = stop.await;
        }));
        TestServer {
            port,
            vkey,
            shutdown: Some(shutdown),
            handle: Some(handle),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A generated gRPC client connected to it.
    pub async fn client(
        &self,
    ) -> aidledger_wire::pb::ledger_client::LedgerClient<tonic::transport::Channel> {
        aidledger_wire::pb::ledger_client::LedgerClient::connect(self.url())
            .await
            .expect("connecting to the test server")
    }

    /// Graceful shutdown: waits until in-flight appends are durable.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
    }
}

/// One plain HTTP/1.0 request over TCP, as any client (or CDN) would send
/// it: HTTP/1.0, so the body is never chunked. Returns the status, the
/// header block in lower case, and the body.
///
/// # Panics
///
/// The connection or the answer failed: this is for tests.
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> (u16, String, Vec<u8>) {
    http_exchange(
        addr,
        format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes(),
        &[],
    )
}

/// One plain HTTP/1.0 POST with a body, as a browser's form or a script
/// sends it. Returns the status, the header block in lower case, and the
/// body.
///
/// # Panics
///
/// The connection or the answer failed: this is for tests.
pub fn http_post(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let head = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    http_exchange(addr, head.as_bytes(), body)
}

/// One request written as raw bytes (`head`, then `body`), for requests
/// the helpers above do not write (another `Host`, an `Origin`).
///
/// # Panics
///
/// The connection or the answer failed: this is for tests.
pub fn http_exchange(
    addr: std::net::SocketAddr,
    head: &[u8],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(head).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    (
        status,
        head.to_ascii_lowercase(),
        response[split + 4..].to_vec(),
    )
}
