//! Determinism: the real `aidledger-projector` binary, SIGKILLed at random
//! points while it catches up with a demo ledger and restarted each time,
//! ends with read models identical (by digest) to a run that was never
//! interrupted.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aidledger::server::{Application, ServeConfig};
use aidledger_ledger::PublicKey;
use aidledger_programme::{DemoConfig, Programme};
use aidledger_tlog::LogSigner;
use aidledger_tlog::ed25519::SecretKey;
use aidledger_wire::pb;
use aidledger_wire::pb::projections_client::ProjectionsClient;
use rand::{Rng, SeedableRng};

const ORIGIN: &str = "aid.ninhthuan.example/children-resume-test";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_projector(data: &Path, ledger: &str, vkey: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_aidledger-projector"))
        .args(["--ledger", ledger, "--vkey", vkey])
        .arg("--data")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        // Frequent commits, so that kills land between them and after them.
        .args([
            "--commit-interval-ms",
            "30",
            "--checkpoint-interval-ms",
            "50",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting aidledger-projector")
}

/// The projector's status, once it answers.
async fn status(port: u16) -> Option<pb::ProjectionStatus> {
    let mut client = ProjectionsClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .ok()?;
    Some(
        client
            .get_status(pb::GetStatusRequest {})
            .await
            .ok()?
            .into_inner(),
    )
}

/// Polls until `done` holds for the status; panics after a minute.
async fn wait_for(port: u16, done: impl Fn(&pb::ProjectionStatus) -> bool) -> pb::ProjectionStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = status(port).await {
            assert_eq!(status.halted_reason, "", "the projector halted");
            if done(&status) {
                return status;
            }
        }
        assert!(Instant::now() < deadline, "the projector did not get there");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn applied(status: &pb::ProjectionStatus) -> u64 {
    status.as_of.as_ref().map_or(0, |a| a.size)
}

fn caught_up(size: u64) -> impl Fn(&pb::ProjectionStatus) -> bool {
    move |status| {
        let as_of = status.as_of.as_ref().unwrap();
        as_of.size == size && as_of.checkpoint.as_ref().is_some_and(|c| c.size == size)
    }
}

/// Runs the projector to the end and stops it gracefully (SIGINT).
async fn run_to_end(data: &Path, ledger: &str, vkey: &str, size: u64) {
    let port = free_port();
    let mut child = start_projector(data, ledger, vkey, port);
    wait_for(port, caught_up(size)).await;
    let stopped = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(child.wait().unwrap().success(), "a graceful stop exits 0");
}

fn digest(data: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_aidledger-projector"))
        .args(["--vkey", "unused", "--digest", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_resumed_projections_equal_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_key = || SecretKey::from_seed(&[9; 32]);
    let vkey = LogSigner::new(ORIGIN, ledger_key()).unwrap().vkey();
    let mut programme = Programme::new(DemoConfig {
        seed: 2025,
        origin: ORIGIN.into(),
        log_vkey: vkey.clone(),
        extra_events: 12_000,
    });
    let mut config = ServeConfig::new(
        dir.path().join("ledger"),
        "127.0.0.1:0".parse().unwrap(),
        ORIGIN,
        ledger_key(),
    );
    config.authority_key = Some(PublicKey(programme.authority_public_key()));
    config.ingest.checkpoint_interval = Duration::from_millis(100);
    let app = Application::build(config).await.unwrap();
    let ledger = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let mut client = pb::ledger_client::LedgerClient::connect(ledger.clone())
        .await
        .unwrap();
    loop {
        let events = programme.next_batch(1_000);
        if events.is_empty() {
            break;
        }
        let results = client
            .append_batch(pb::AppendBatchRequest { events })
            .await
            .unwrap()
            .into_inner()
            .results;
        assert!(results.iter().all(|r| r.code == 0));
    }
    let size = programme.total_events() as u64;

    let uninterrupted = dir.path().join("uninterrupted");
    run_to_end(&uninterrupted, &ledger, &vkey, size).await;
    let expected = digest(&uninterrupted);
    assert!(expected.starts_with(&format!("{size} ")), "{expected}");

    let resumed = dir.path().join("resumed");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut killed_mid_way = 0;
    // What the store held durably before each start: a kill may lose what
    // was applied since the last commit, never what was committed.
    let mut before = 0u64;
    for round in 0..6 {
        let port = free_port();
        let mut child = start_projector(&resumed, &ledger, &vkey, port);
        let started_at = applied(&wait_for(port, |_| true).await);
        assert!(
            started_at >= before,
            "round {round}: it resumed from {started_at}, below {before}"
        );
        let target = (started_at + rng.random_range(1..size / 4)).min(size - 1);
        let reached = applied(&wait_for(port, |s| applied(s) >= target).await);
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        if reached < size {
            killed_mid_way += 1;
        }
        let committed: u64 = digest(&resumed)
            .split_once(' ')
            .and_then(|(size, _)| size.parse().ok())
            .unwrap();
        assert!(
            committed >= before && committed <= size,
            "round {round}: the store holds a whole prefix ({committed} entries, {before} before)"
        );
        before = committed;
    }
    assert!(killed_mid_way >= 3, "kills landed while catching up");
    run_to_end(&resumed, &ledger, &vkey, size).await;
    assert_eq!(digest(&resumed), expected);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
