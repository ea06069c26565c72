//! `aidledger-feed` as a replica of its own: two feed processes and an
//! `aidledger-projector` process follow a real ledger over mutual TLS; the
//! feeds keep their own copies, serve the same checkpoint and
//! byte-identical tiles; one is killed with SIGKILL and resumes from its
//! copy; pointed at a ledger that signs a fork, it stops following, keeps
//! serving what it verified and says so on `/healthz`.
//!
//! The ledger runs in this process (the fork needs a second ledger under
//! the same key, built here from the library), served over TCP like any
//! other. The projector's binary is another package's: it is found beside
//! this package's binary, where the README's test command (tests/run)
//! builds it.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aidledger::server::{Application, ServeConfig, TlsMaterial};
use aidledger_ledger::PublicKey;
use aidledger_programme::{DemoConfig, Programme};
use aidledger_tlog::LogSigner;
use aidledger_tlog::ed25519::SecretKey;
use aidledger_wire::{Message as _, pb};
use pb::ledger_client::LedgerClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const ORIGIN: &str = "aid.replica.example/children";

struct Certs {
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn certs() -> Certs {
    let server = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let client = rcgen::generate_simple_self_signed(vec!["feed.example".into()]).unwrap();
    Certs {
        server_cert: server.cert.pem(),
        server_key: server.signing_key.serialize_pem(),
        client_cert: client.cert.pem(),
        client_key: client.signing_key.serialize_pem(),
    }
}

fn ledger_key() -> SecretKey {
    SecretKey::from_seed(&[0x2f; 32])
}

fn vkey() -> String {
    LogSigner::new(ORIGIN, ledger_key()).unwrap().vkey()
}

fn programme(seed: u64) -> Programme {
    Programme::new(DemoConfig {
        seed,
        origin: ORIGIN.into(),
        log_vkey: vkey(),
        extra_events: 0,
    })
}

/// A ledger requiring mutual TLS, in this process, until `stop` is sent.
async fn ledger(
    dir: &Path,
    authority: [u8; 32],
    certs: &Certs,
) -> (u16, tokio::sync::oneshot::Sender<()>) {
    let mut config = ServeConfig::new(
        dir.to_owned(),
        "127.0.0.1:0".parse().unwrap(),
        ORIGIN,
        ledger_key(),
    );
    config.authority_key = Some(PublicKey(authority));
    config.ingest.checkpoint_interval = Duration::from_millis(100);
    config.tls = Some(TlsMaterial {
        cert_pem: certs.server_cert.clone(),
        key_pem: certs.server_key.clone(),
        client_ca_pem: Some(certs.client_cert.clone()),
    });
    let app = Application::build(config).await.unwrap();
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (port, stop)
}

async fn client(port: u16, certs: &Certs) -> LedgerClient<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&certs.server_cert))
        .identity(Identity::from_pem(&certs.client_cert, &certs.client_key))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    LedgerClient::new(channel)
}

/// Appends up to `count` more events of `programme` and waits for the
/// checkpoint that covers the whole log; returns its note and the ids of
/// the receipts appended.
async fn append(
    client: &mut LedgerClient<Channel>,
    programme: &mut Programme,
    count: usize,
) -> (String, Vec<String>) {
    let mut left = count;
    let mut receipts = Vec::new();
    while left > 0 {
        let events = programme.next_batch(left.min(500));
        if events.is_empty() {
            break;
        }
        left -= events.len();
        for signed in &events {
            let event = pb::Event::decode(signed.event.clone()).unwrap();
            if let Some(pb::event::Body::Receipt(receipt)) = event.body {
                receipts.push(receipt.receipt_id);
            }
        }
        let results = client
            .append_batch(pb::AppendBatchRequest { events })
            .await
            .unwrap()
            .into_inner()
            .results;
        assert!(results.iter().all(|r| r.code == 0), "refused: {results:?}");
    }
    let size = (programme.total_events() - programme.remaining_events()) as u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let checkpoint = client
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .unwrap()
            .into_inner();
        if checkpoint.size == size {
            return (checkpoint.note, receipts);
        }
        assert!(Instant::now() < deadline, "no checkpoint of size {size}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `aidledger-projector` binary of this build.
fn projector_binary() -> std::path::PathBuf {
    let path =
        Path::new(env!("CARGO_BIN_EXE_aidledger-feed")).with_file_name("aidledger-projector");
    assert!(
        path.exists(),
        "{} is missing: run the tests with tests/run, which builds every program first",
        path.display()
    );
    path
}

/// An `aidledger-projector` process following the ledger over mutual TLS,
/// with its store in `dir/projector`; killed when dropped.
struct ProjectorProcess(Child);

impl ProjectorProcess {
    fn start(dir: &Path, ledger_port: u16, grpc_port: u16) -> ProjectorProcess {
        let child = Command::new(projector_binary())
            .args(["--ledger", &format!("https://localhost:{ledger_port}")])
            .args(["--vkey", &vkey()])
            .arg("--ca")
            .arg(dir.join("ca.pem"))
            .arg("--cert")
            .arg(dir.join("client.pem"))
            .arg("--tls-key")
            .arg(dir.join("client.key"))
            .arg("--data")
            .arg(dir.join("projector"))
            .args(["--listen", &format!("127.0.0.1:{grpc_port}")])
            .args(["--checkpoint-interval-ms", "100"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting aidledger-projector");
        ProjectorProcess(child)
    }
}

impl Drop for ProjectorProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls the projector's `GetStatus` until it cites a checkpoint of `size`.
async fn projector_reaches(grpc_port: u16, size: u64) {
    use pb::projections_client::ProjectionsClient;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(mut projections) =
            ProjectionsClient::connect(format!("http://127.0.0.1:{grpc_port}")).await
            && let Ok(status) = projections.get_status(pb::GetStatusRequest {}).await
        {
            let status = status.into_inner();
            let cited = status
                .as_of
                .as_ref()
                .and_then(|a| a.checkpoint.as_ref())
                .map_or(0, |c| c.size);
            if cited == size {
                assert!(status.halted_reason.is_empty(), "{status:?}");
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the projector never cited a checkpoint of size {size}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `aidledger-feed` process and what it logged.
struct Feed {
    child: Child,
    addr: SocketAddr,
    logs: Arc<Mutex<String>>,
}

impl Feed {
    /// Starts a feed on `ledger_port` keeping its copy in `dir/data`; the
    /// TLS material is in `dir` (`ca.pem`, `client.pem`, `client.key`).
    fn start(dir: &Path, data: &str, ledger_port: u16, addr: SocketAddr) -> Feed {
        Feed::start_with(dir, data, ledger_port, addr, &[])
    }

    fn start_with(
        dir: &Path,
        data: &str,
        ledger_port: u16,
        addr: SocketAddr,
        extra: &[&str],
    ) -> Feed {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aidledger-feed"))
            .args(["--ledger", &format!("https://localhost:{ledger_port}")])
            .args(["--vkey", &vkey()])
            .arg("--ca")
            .arg(dir.join("ca.pem"))
            .arg("--cert")
            .arg(dir.join("client.pem"))
            .arg("--tls-key")
            .arg(dir.join("client.key"))
            .arg("--data")
            .arg(dir.join(data))
            .args(["--listen", &addr.to_string()])
            .args([
                "--commit-interval-ms",
                "100",
                "--checkpoint-interval-ms",
                "100",
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting aidledger-feed");
        let logs = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = Arc::clone(&logs);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut logs = logs.lock().unwrap();
                    logs.push_str(&line);
                    logs.push('\n');
                }
            });
        }
        Feed { child, addr, logs }
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let (status, _, body) = http_get(self.addr, path);
        (status, body)
    }

    fn health(&self) -> Option<(u16, serde_json::Value)> {
        // Not listening yet while it starts.
        std::net::TcpStream::connect(self.addr).ok()?;
        let (status, body) = self.get("/healthz");
        Some((status, serde_json::from_slice(&body).ok()?))
    }

    /// Polls `/healthz` until `done` holds.
    fn wait(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(u16, &serde_json::Value) -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            if let Some((status, health)) = self.health()
                && done(status, &health)
            {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "{what}: not within {timeout:?}; /healthz {:?}; logs:\n{}",
                self.health(),
                self.logs.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    (
        head[9..12].parse().unwrap(),
        head,
        response[split + 4..].to_vec(),
    )
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Every tile of a log of `size` entries: entry bundles and hash tiles.
fn every_tile(size: u64) -> Vec<String> {
    aidledger_tlog::tiles::tile_paths(size)
        .into_iter()
        .map(|path| format!("/{path}"))
        .collect()
}

fn note_size(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

fn wait_blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_feeds_replicate_the_ledger_resume_after_sigkill_and_refuse_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = certs();
    for (name, pem) in [
        ("ca.pem", &c.server_cert),
        ("client.pem", &c.client_cert),
        ("client.key", &c.client_key),
    ] {
        std::fs::write(d.join(name), pem).unwrap();
    }
    let mut year = programme(2025);
    let (port, stop) = ledger(&d.join("ledger"), year.authority_public_key(), &c).await;
    let mut ledger_client = client(port, &c).await;
    let (note, _) = append(&mut ledger_client, &mut year, 1_200).await;
    let size = note_size(&note);

    // A projector and two feeds catch up from nothing, over mutual TLS.
    let projector_port = free_addr().port();
    let _projector = ProjectorProcess::start(d, port, projector_port);
    let (addr_a, addr_b, metrics_b) = (free_addr(), free_addr(), free_addr());
    let mut a = Feed::start(d, "a", port, addr_a);
    let b = Feed::start_with(
        d,
        "b",
        port,
        addr_b,
        &["--metrics-listen", &metrics_b.to_string()],
    );
    for feed in [&a, &b] {
        wait_blocking(|| {
            feed.wait("catching up", Duration::from_secs(120), |status, h| {
                status == 200 && h["applied"] == size && h["checkpoint_size"] == size
            })
        });
        assert_eq!(feed.get("/readyz").0, 200, "current, so ready");
        let (status, served) = feed.get("/checkpoint");
        assert_eq!(status, 200);
        assert_eq!(
            String::from_utf8(served).unwrap(),
            note,
            "the ledger's own note"
        );
    }

    // New events: both feeds serve the new receipts' pages within seconds
    // of the checkpoint that covers them.
    let (note, receipts) = append(&mut ledger_client, &mut year, 300).await;
    let size = note_size(&note);
    assert!(!receipts.is_empty());
    let newest = receipts.last().unwrap().clone();
    for feed in [&a, &b] {
        let took = wait_blocking(|| {
            feed.wait("showing new events", Duration::from_secs(5), |_, h| {
                h["checkpoint_size"] == size
            })
        });
        let (status, _) = feed.get(&format!("/en/receipts/{newest}"));
        assert_eq!(status, 200, "{newest} on {}", feed.addr);
        eprintln!("feed {}: current {took:?} after the checkpoint", feed.addr);
    }
    projector_reaches(projector_port, size).await;
    // Prometheus metrics, on their own port: how far behind, requests by
    // route template (never by the path a reader sent).
    let (status, _, metrics) = http_get(metrics_b, "/metrics");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains(&format!("aidledger_follower_applied_entries {size}")),
        "{metrics}"
    );
    assert!(
        metrics.contains("aidledger_follower_entries_behind 0"),
        "{metrics}"
    );
    assert!(metrics.contains("aidledger_follower_halted 0"), "{metrics}");
    assert!(
        metrics.contains(
            r#"aidledger_feed_requests_total{route="/en/receipts/{receipt_id}",status="200"}"#
        ),
        "{metrics}"
    );
    assert!(!metrics.contains(&newest), "an id in a label: {metrics}");

    // Byte-identical: the checkpoint and every tile, hash and entry bundle.
    assert_eq!(a.get("/checkpoint"), b.get("/checkpoint"));
    let tiles = every_tile(size);
    assert!(tiles.len() > 10);
    for tile in &tiles {
        let (status, bytes) = a.get(tile);
        assert_eq!(status, 200, "{tile}");
        assert_eq!(
            (status, bytes),
            b.get(tile),
            "{tile} differs between the feeds"
        );
    }

    // SIGKILL, restart: the feed resumes from its own copy, not from 0.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let (note, _) = append(&mut ledger_client, &mut year, 200).await;
    let size = note_size(&note);
    let a2 = Feed::start(d, "a", port, addr_a);
    wait_blocking(|| {
        a2.wait("resuming", Duration::from_secs(60), |status, h| {
            status == 200 && h["checkpoint_size"] == size
        })
    });
    let logs = a2.logs.lock().unwrap().clone();
    let loaded = logs
        .lines()
        .find(|line| line.contains("replica loaded"))
        .unwrap_or_else(|| panic!("no start-up line:\n{logs}"));
    assert!(
        !loaded.contains("entries=0") && !loaded.contains("applied=0"),
        "it started from nothing: {loaded}"
    );
    assert_eq!(a2.get("/checkpoint"), b.get("/checkpoint"));
    for tile in every_tile(size) {
        assert_eq!(a2.get(&tile), b.get(&tile), "{tile} after the restart");
    }
    drop(a2);

    // A ledger under the same key that signs another history (a fork):
    // the feed stops following, keeps serving what it verified, and says
    // so on /healthz.
    let mut other = programme(4242);
    let (fork_port, fork_stop) = ledger(&d.join("fork"), other.authority_public_key(), &c).await;
    let mut fork_client = client(fork_port, &c).await;
    let (fork_note, _) = append(&mut fork_client, &mut other, 2_000).await;
    assert!(note_size(&fork_note) > size);
    let verified = b.get("/checkpoint");
    let receipt_page = b.get(&format!("/en/receipts/{newest}"));
    drop(b);
    let forked = Feed::start_with(
        d,
        "b",
        fork_port,
        addr_b,
        &["--metrics-listen", &metrics_b.to_string()],
    );
    let (status, health) = wait_blocking(|| {
        forked.wait(
            "halting on the fork",
            Duration::from_secs(30),
            |status, _| status == 503,
        );
        forked.health().unwrap()
    });
    assert_eq!(status, 503);
    assert_eq!(forked.get("/readyz").0, 503, "a halted feed is not ready");
    let (_, _, metrics) = http_get(metrics_b, "/metrics");
    assert!(
        String::from_utf8(metrics)
            .unwrap()
            .contains("aidledger_follower_halted 1"),
        "the halt is in the metrics"
    );
    assert_eq!(health["following"], false, "{health}");
    assert!(
        health["halted"]
            .as_str()
            .unwrap()
            .contains("verification failed"),
        "{health}"
    );
    assert_eq!(health["applied"], size, "{health}");
    assert_eq!(
        forked.get("/checkpoint"),
        verified,
        "it serves what it verified"
    );
    assert_eq!(forked.get(&format!("/en/receipts/{newest}")), receipt_page);

    let _ = stop.send(());
    let _ = fork_stop.send(());
}
