//! Crash test of the real `aidledger serve` binary, on the embedded store
//! and on PostgreSQL: appenders running, the process killed with SIGKILL at
//! random moments, restarted. Every acknowledged event must be there with
//! the same seq and leaf hash, the chain and tree must verify, and nothing
//! may be duplicated.
//!
//! Seeded: set `AIDLEDGER_CRASH_SEED` to replay a failing run.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aidledger::config::write_key_file;
use aidledger_ledger::{ChainChecker, sign_event};
use aidledger_tlog::ed25519::SecretKey;
use aidledger_tlog::{Hash, LogVerifier, TreeBuilder, leaf_hash};
use aidledger_wire::pb::ledger_client::LedgerClient;
use aidledger_wire::{Message, Timestamp, pb};
use pb::event::Body as B;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;

const ORIGIN: &str = "aid.test.example/crash";

struct Ledger {
    dir: std::path::PathBuf,
    /// A PostgreSQL URL, or the embedded store in `dir/data`.
    store: Option<String>,
    authority_hex: String,
    port: u16,
}

/// A ledger process, killed when dropped: a test that fails leaves none
/// behind (an orphan would also hold the test run's output open).
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Ledger {
    fn start(&self) -> Running {
        self.start_with(&[])
    }

    fn start_with(&self, extra: &[&str]) -> Running {
        let child = Command::new(crate::program("aidledger"))
            .args(["serve", "--data"])
            .arg(self.dir.join("data"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--origin", ORIGIN, "--ledger-key"])
            .arg(self.dir.join("ledger.pem"))
            .args(["--authority-public-key", &self.authority_hex])
            .args(["--checkpoint-interval-ms", "50"])
            .args(self.store.iter().flat_map(|url| ["--store", url.as_str()]))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting aidledger serve");
        Running(child)
    }
}

async fn connect(port: u16) -> LedgerClient<Channel> {
    for _ in 0..200 {
        if let Ok(client) = LedgerClient::connect(format!("http://127.0.0.1:{port}")).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the ledger did not come up on port {port}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn event(n: u64, org: &str, body: B) -> Vec<u8> {
    pb::Event {
        event_id: format!("00000000-0000-4000-8000-{n:012x}"),
        org_id: org.into(),
        occurred_at: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        body: Some(body),
    }
    .encode_to_vec()
}

/// Genesis, an agency with a receiving key, and a donor.
fn setup(authority: &SecretKey, agency: &SecretKey, vkey: &str) -> Vec<pb::SignedEvent> {
    vec![
        sign_event(
            authority,
            ORIGIN,
            event(
                1,
                "province",
                B::Genesis(pb::Genesis {
                    origin: ORIGIN.into(),
                    authority_org_id: "province".into(),
                    authority_name: "Tỉnh".into(),
                    authority_public_key: authority.public_key().to_vec().into(),
                    log_vkey: vkey.into(),
                }),
            ),
        ),
        sign_event(
            authority,
            ORIGIN,
            event(
                2,
                "province",
                B::RegisterOrg(pb::RegisterOrganization {
                    org_id: "fund".into(),
                    name: "Quỹ".into(),
                    kind: pb::OrgKind::Agency as i32,
                    public_name: true,
                    ..Default::default()
                }),
            ),
        ),
        sign_event(
            authority,
            ORIGIN,
            event(
                3,
                "province",
                B::RegisterKey(pb::RegisterKey {
                    org_id: "fund".into(),
                    public_key: agency.public_key().to_vec().into(),
                    roles: vec![pb::Role::Receive as i32],
                    label: String::new(),
                }),
            ),
        ),
        sign_event(
            authority,
            ORIGIN,
            event(
                4,
                "province",
                B::RegisterOrg(pb::RegisterOrganization {
                    org_id: "donor".into(),
                    name: "Nhà hảo tâm".into(),
                    kind: pb::OrgKind::DonorIndividual as i32,
                    public_name: true,
                    ..Default::default()
                }),
            ),
        ),
    ]
}

fn receipt(agency: &SecretKey, n: u64) -> pb::SignedEvent {
    sign_event(
        agency,
        ORIGIN,
        event(
            n,
            "fund",
            B::Receipt(pb::Receipt {
                receipt_id: format!("r-{n}"),
                donor_org_id: "donor".into(),
                asset_id: "VND".into(),
                quantity: 200_000 + n,
                external_ref_hash: vec![9; 32].into(),
                ..Default::default()
            }),
        ),
    )
}

/// The seed of a randomised run: `AIDLEDGER_CRASH_SEED`, or a new one.
fn crash_seed() -> u64 {
    std::env::var("AIDLEDGER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>)
}

/// A folder holding the ledger key file, the ledger's vkey, and the
/// authority's and the agency's keys.
fn ledger_files() -> (tempfile::TempDir, String, SecretKey, Arc<SecretKey>) {
    let dir = tempfile::tempdir().unwrap();
    let vkey = aidledger_tlog::LogSigner::new(ORIGIN, SecretKey::from_seed(&[3; 32]))
        .unwrap()
        .vkey();
    write_key_file(
        &dir.path().join("ledger.pem"),
        &SecretKey::from_seed(&[3; 32]),
    )
    .unwrap();
    (
        dir,
        vkey,
        SecretKey::from_seed(&[1; 32]),
        Arc::new(SecretKey::from_seed(&[2; 32])),
    )
}

/// Polls until the ledger's checkpoint covers every acknowledged entry.
async fn wait_for_checkpoint_over(client: &mut LedgerClient<Channel>, acked: &Acked) {
    let last_acked = *acked.lock().unwrap().keys().last().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .map_or(0, |c| c.into_inner().size)
        <= last_acked
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint covers {last_acked}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the ledger acknowledged: seq and leaf hash per submission.
type Acked = Arc<Mutex<BTreeMap<u64, (Hash, pb::SignedEvent)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    survive_sigkill(None).await;
}

/// The PostgreSQL tests run one at a time: one of them restarts the
/// database.
static POSTGRES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_on_postgresql() {
    let _alone = POSTGRES.lock().await;
    survive_sigkill(Some(aidledger_store::test_database())).await;
}

async fn survive_sigkill(store: Option<String>) {
    let seed = crash_seed();
    println!("crash test seed: {seed} (replay with AIDLEDGER_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let (dir, vkey, authority, agency) = ledger_files();
    let ledger = Ledger {
        dir: dir.path().to_path_buf(),
        store,
        authority_hex: hex::encode(authority.public_key()),
        port: free_port(),
    };

    let mut child = ledger.start();
    let mut client = connect(ledger.port).await;
    let results = client
        .append_batch(pb::AppendBatchRequest {
            events: setup(&authority, &agency, &vkey),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert!(results.iter().all(|r| r.code == 0), "{results:?}");

    let acked: Acked = Arc::default();
    let next_event = Arc::new(std::sync::atomic::AtomicU64::new(1_000));
    let mut unacked: Vec<pb::SignedEvent> = Vec::new();
    let rounds = 4;
    for round in 0..rounds {
        let mut tasks = Vec::new();
        for appender in 0..3u64 {
            let mut client = connect(ledger.port).await;
            let agency = agency.clone();
            let acked = acked.clone();
            // Retry what the previous crash left unanswered (idempotent),
            // then append new events until the ledger dies under us.
            let retries: Vec<pb::SignedEvent> = if appender == 0 {
                std::mem::take(&mut unacked)
            } else {
                Vec::new()
            };
            let next_event = next_event.clone();
            tasks.push(tokio::spawn(async move {
                let mut lost = Vec::new();
                let fresh = std::iter::repeat_with(|| {
                    receipt(
                        &agency,
                        next_event.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    )
                });
                let mut events = retries.into_iter().chain(fresh);
                for event in events.by_ref() {
                    match client
                        .append(pb::AppendRequest {
                            event: Some(event.clone()),
                            wait_for_checkpoint: false,
                        })
                        .await
                    {
                        Ok(response) => {
                            let response = response.into_inner();
                            acked.lock().unwrap().insert(
                                response.seq,
                                (Hash(response.leaf_hash[..].try_into().unwrap()), event),
                            );
                        }
                        Err(_) => {
                            lost.push(event);
                            break;
                        }
                    }
                }
                lost
            }));
        }
        let delay = rng.random_range(100..700);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        child.kill().expect("SIGKILL");
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the ledger was killed");
        for task in tasks {
            unacked.extend(task.await.unwrap());
        }
        assert!(
            !unacked.is_empty(),
            "round {round}: the kill interrupted appends in flight"
        );

        child = ledger.start();
        let mut client = connect(ledger.port).await;
        verify(&mut client, &acked, &vkey, round).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    // The log was where --store said, not in the data folder.
    if let Some(url) = &ledger.store {
        assert!(!dir.path().join("data").join("ledger.redb").exists());
        let store = aidledger_store::PgStore::open(url).unwrap();
        let acked_max = *acked.lock().unwrap().keys().max().unwrap();
        assert!(
            aidledger_store::LogStore::size(&store).unwrap() > acked_max,
            "the database holds every acknowledged entry"
        );
    }
}

async fn verify(client: &mut LedgerClient<Channel>, acked: &Acked, vkey: &str, round: usize) {
    let checkpoint = client
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    let size = checkpoint.size;
    let acked = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "round {round}: something was acknowledged"
    );
    let mut stream = client
        .subscribe(pb::SubscribeRequest { from_seq: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut chain = ChainChecker::new();
    let mut tree = TreeBuilder::new();
    let mut events = HashSet::new();
    while chain.next_seq() < size {
        let entry = tokio_stream::StreamExt::next(&mut stream)
            .await
            .unwrap()
            .unwrap();
        let linked = chain
            .check(entry.entry.clone())
            .expect("the chain verifies");
        tree.push(leaf_hash(&entry.entry));
        assert!(
            events.insert(linked.signed_event.event.clone()),
            "round {round}: entry {} duplicates an earlier event",
            linked.seq
        );
        if let Some((leaf, submitted)) = acked.get(&linked.seq) {
            assert!(
                *leaf == Hash(linked.leaf_hash),
                "round {round}: entry {} changed",
                linked.seq
            );
            assert_eq!(
                &linked.signed_event, submitted,
                "round {round}: entry {}",
                linked.seq
            );
        }
    }
    let last_acked = *acked.keys().last().unwrap();
    assert!(
        last_acked < size,
        "round {round}: acknowledged entry {last_acked} is missing (log has {size})"
    );
    let signed = LogVerifier::from_vkey(vkey)
        .unwrap()
        .verify(&checkpoint.note)
        .unwrap();
    assert!(
        tree.root() == signed.root,
        "round {round}: the tree does not match the checkpoint"
    );
}

/// `--metrics-listen`: appends by outcome, refusals by stable reason, group
/// sizes, commit latency and the latest checkpoint, in Prometheus' text
/// format, from the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_reports_appends_refusals_and_checkpoints_to_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_key = SecretKey::from_seed(&[3; 32]);
    let vkey = aidledger_tlog::LogSigner::new(ORIGIN, SecretKey::from_seed(&[3; 32]))
        .unwrap()
        .vkey();
    write_key_file(&dir.path().join("ledger.pem"), &ledger_key).unwrap();
    let authority = SecretKey::from_seed(&[1; 32]);
    let agency = SecretKey::from_seed(&[2; 32]);
    let ledger = Ledger {
        dir: dir.path().to_path_buf(),
        store: None,
        authority_hex: hex::encode(authority.public_key()),
        port: free_port(),
    };
    let metrics_port = free_port();
    let _child = ledger.start_with(&["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]);
    let mut client = connect(ledger.port).await;
    let mut events = setup(&authority, &agency, &vkey);
    events.extend((1001..=1005).map(|n| receipt(&agency, n)));
    // The same submission again (a duplicate), and a receipt from a donor
    // nobody registered (UNKNOWN_ORGANIZATION).
    events.push(receipt(&agency, 1001));
    events.push(sign_event(
        &agency,
        ORIGIN,
        event(
            99,
            "fund",
            B::Receipt(pb::Receipt {
                receipt_id: "r-nobody".into(),
                donor_org_id: "nobody".into(),
                asset_id: "VND".into(),
                quantity: 1,
                ..Default::default()
            }),
        ),
    ));
    let results = client
        .append_batch(pb::AppendBatchRequest { events })
        .await
        .unwrap()
        .into_inner()
        .results;
    let appended = results
        .iter()
        .filter(|r| r.code == 0 && !r.duplicate)
        .count();
    assert_eq!(appended, 9, "{results:?}");
    // Scraped until the checkpoint of all nine is in.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = http_get(metrics_port, "/metrics").await.unwrap_or_default();
        if text.contains("aidledger_checkpoint_size 9") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for expected in [
        r#"aidledger_appends_total{outcome="appended"} 9"#,
        r#"aidledger_appends_total{outcome="duplicate"} 1"#,
        r#"aidledger_refusals_total{reason="UNKNOWN_ORGANIZATION"} 1"#,
        "aidledger_log_entries 9",
        "aidledger_commit_seconds",
        "aidledger_group_events",
        "aidledger_checkpoint_signed_timestamp_seconds",
    ] {
        assert!(text.contains(expected), "{expected} is not in:\n{text}");
    }
}

async fn http_get(port: u16, path: &'static str) -> std::io::Result<String> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })
    .await
    .expect("the scrape does not panic")
}

/// A client of the library for the ledgers at `ports`, in that order,
/// patient enough to wait out a takeover: every append it makes is retried,
/// identical, until a writer acknowledges it.
async fn failover_client(ports: &[u16]) -> aidledger_client::Client {
    let urls: Vec<String> = ports
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect();
    let mut options = aidledger_client::ConnectOptions::new(ORIGIN);
    options.timeout = Duration::from_secs(10);
    options.connect_timeout = Duration::from_secs(1);
    options.retry = aidledger_client::RetryPolicy {
        retries: 200,
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
    };
    aidledger_client::Client::connect_any(&urls, options)
        .await
        .expect("a ledger answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ledgers_on_postgresql_fail_over_twenty_sigkills_without_losing_an_ack() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let _alone = POSTGRES.lock().await;
    use std::time::Instant;
    const KILLS: usize = 20;
    let seed = crash_seed();
    println!("failover test seed: {seed} (replay with AIDLEDGER_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let (dir, vkey, authority, agency) = ledger_files();
    let url = aidledger_store::test_database();
    let ports = [free_port(), free_port()];
    let ledgers: Vec<Ledger> = ports
        .iter()
        .map(|&port| Ledger {
            dir: dir.path().to_path_buf(),
            store: Some(url.clone()),
            authority_hex: hex::encode(authority.public_key()),
            port,
        })
        .collect();
    let fast_takeover = ["--takeover-interval-ms", "200"];
    let mut children: Vec<Running> = ledgers
        .iter()
        .map(|ledger| ledger.start_with(&fast_takeover))
        .collect();
    let store = aidledger_store::PgStore::open(&url).unwrap();
    let writer_port = |store: &aidledger_store::PgStore| -> u16 {
        let address = store.writer().unwrap().address;
        address.rsplit(':').next().unwrap().parse().unwrap()
    };

    let setup_client = failover_client(&ports).await;
    for event in setup(&authority, &agency, &vkey) {
        let appended = setup_client
            .append(event, false)
            .await
            .expect("the set-up is acknowledged");
        assert!(!appended.duplicate);
    }

    // The standby refuses a write with NOT_LEADER, naming the writer.
    let writer = writer_port(&store);
    let standby = ports.into_iter().find(|&p| p != writer).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let attempt = match LedgerClient::connect(format!("http://127.0.0.1:{standby}")).await {
            Ok(mut client) => Some(
                client
                    .append(pb::AppendRequest {
                        event: Some(receipt(&agency, 9_999)),
                        wait_for_checkpoint: false,
                    })
                    .await,
            ),
            Err(_) => None,
        };
        if let Some(Err(status)) = attempt {
            break status;
        }
        assert!(attempt.is_none(), "the standby accepted a write");
        assert!(Instant::now() < deadline, "the standby never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    {
        use tonic_types::StatusExt as _;
        let info = refused.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(info.reason, "NOT_LEADER");
        assert_eq!(
            info.metadata.get("writer").map(String::as_str),
            Some(format!("http://127.0.0.1:{writer}").as_str())
        );
    }

    // Four appenders through the client library: two given both ledgers,
    // the standby first; two given only the standby, which must find the
    // writer from its NOT_LEADER and then keep both.
    let acked: Acked = Arc::default();
    let ack_times: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next_event = Arc::new(AtomicU64::new(10_000));
    let mut appenders = Vec::new();
    for i in 0..4 {
        let given: Vec<u16> = if i % 2 == 0 {
            vec![standby, writer]
        } else {
            vec![standby]
        };
        let client = failover_client(&given).await;
        let (agency, acked, ack_times, stop, next_event) = (
            agency.clone(),
            acked.clone(),
            ack_times.clone(),
            stop.clone(),
            next_event.clone(),
        );
        appenders.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let event = receipt(&agency, next_event.fetch_add(1, Ordering::SeqCst));
                let appended = match client.append(event.clone(), false).await {
                    Ok(appended) => appended,
                    Err(error) => panic!("appender {i}: {error}"),
                };
                let leaf = Hash(appended.leaf_hash);
                let previous = acked.lock().unwrap().insert(appended.seq, (leaf, event));
                if let Some((other_leaf, _)) = previous {
                    assert!(
                        other_leaf == leaf,
                        "seq {} acknowledged twice",
                        appended.seq
                    );
                }
                ack_times.lock().unwrap().push(Instant::now());
            }
            client.endpoints()
        }));
    }

    let mut served_checkpoints: Vec<pb::Checkpoint> = Vec::new();
    let mut failovers = Vec::new();
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..600))).await;
        let writer = writer_port(&store);
        let index = ports.iter().position(|&p| p == writer).unwrap();
        let mut client = connect(writer).await;
        if let Ok(checkpoint) = client
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
        {
            served_checkpoints.push(checkpoint.into_inner());
        }
        let acks_before = ack_times.lock().unwrap().len();
        let killed_at = Instant::now();
        children[index].kill().expect("SIGKILL");
        children[index].wait().unwrap();
        // Taken over once an append is acknowledged again.
        let deadline = killed_at + Duration::from_secs(20);
        let resumed = loop {
            let first = ack_times
                .lock()
                .unwrap()
                .get(acks_before..)
                .and_then(|after| after.iter().copied().find(|t| *t > killed_at));
            if let Some(first) = first {
                break first;
            }
            assert!(
                Instant::now() < deadline,
                "kill {kill}: no writer took over"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        failovers.push(resumed - killed_at);
        // The killed one comes back, as a standby.
        children[index] = ledgers[index].start_with(&fast_takeover);
    }
    stop.store(true, Ordering::SeqCst);
    for appender in appenders {
        let known = appender.await.unwrap();
        assert_eq!(known.len(), 2, "an appender knows both ledgers: {known:?}");
    }

    // Every acknowledged event, exactly once, at its seq with its leaf hash,
    // under a checkpoint of the final writer.
    let writer = writer_port(&store);
    let mut client = connect(writer).await;
    wait_for_checkpoint_over(&mut client, &acked).await;
    verify(&mut client, &acked, &vkey, KILLS).await;
    // Every checkpoint served along the way is a prefix of the final one.
    let last = client
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    let log_verifier = LogVerifier::from_vkey(&vkey).unwrap();
    let last_signed = log_verifier.verify(&last.note).unwrap();
    assert!(
        served_checkpoints.len() >= KILLS / 2,
        "{served_checkpoints:?}"
    );
    // Checked by the client library, from whichever ledger answers.
    let checker = failover_client(&ports).await;
    for old in &served_checkpoints {
        let old_signed = log_verifier.verify(&old.note).unwrap();
        checker
            .verify_consistency(&old_signed, &last_signed)
            .await
            .unwrap_or_else(|e| panic!("checkpoint {} is not a prefix: {e}", old_signed.size));
    }
    // An auditor, given both ledgers, verifies the final log independently:
    // chain, signatures, keys, rules and the checkpoint's root.
    let ledgers = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        ports[0], ports[1]
    );
    let audit = tokio::task::block_in_place(|| {
        Command::new(crate::program("aidctl"))
            .args(["audit", "verify", "--json", "--no-progress"])
            .args(["--ledger", &ledgers, "--vkey", &vkey])
            .output()
            .expect("running aidctl")
    });
    let report = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success(),
        "aidctl audit verify: {report}{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(report.lines().next().unwrap()).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        report["size"].as_u64().unwrap() >= last_signed.size,
        "the audit covers the final checkpoint: {report}"
    );

    failovers.sort();
    let p = |q: f64| failovers[((failovers.len() - 1) as f64 * q).round() as usize];
    println!(
        "failover over {KILLS} kills: p50 {:?}, p99 {:?}, max {:?}; {} events acknowledged",
        p(0.5),
        p(0.99),
        failovers.last().unwrap(),
        acked.lock().unwrap().len()
    );
}

/// `pg_ctl` on the test cluster that `tests/run` started, as its owner.
fn pg_ctl(args: &[&str]) {
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: run the tests with tests/run"))
    };
    let (bin, data) = (var("AIDLEDGER_TEST_PG_BIN"), var("AIDLEDGER_TEST_PG_DATA"));
    let user = std::env::var("AIDLEDGER_TEST_PG_USER").unwrap_or_default();
    let pg_ctl = format!("{bin}/pg_ctl");
    let mut command = if user.is_empty() {
        Command::new(&pg_ctl)
    } else {
        let mut runuser = Command::new("runuser");
        runuser.args(["-u", &user, "--", &pg_ctl]);
        runuser
    };
    // The restarted server inherits pg_ctl's output: give it a log file,
    // not a pipe this test would wait on forever.
    let log = Path::new(&data).with_file_name("server.log");
    let status = command
        .args(["-D", &data, "-l"])
        .arg(&log)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running pg_ctl");
    assert!(
        status.success(),
        "pg_ctl {args:?} failed; see {}",
        log.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_loses_nothing_and_the_ledger_resumes_by_itself() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Instant;
    let _alone = POSTGRES.lock().await;
    let (dir, vkey, authority, agency) = ledger_files();
    let port = free_port();
    let ledger = Ledger {
        dir: dir.path().to_path_buf(),
        store: Some(aidledger_store::test_database()),
        authority_hex: hex::encode(authority.public_key()),
        port,
    };
    let mut child = ledger.start();
    let setup_client = failover_client(&[port]).await;
    for event in setup(&authority, &agency, &vkey) {
        setup_client
            .append(event, false)
            .await
            .expect("the set-up is acknowledged");
    }
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next_event = Arc::new(AtomicU64::new(50_000));
    let mut appenders = Vec::new();
    for _ in 0..2 {
        let client = failover_client(&[port]).await;
        let (agency, acked, stop, next_event) = (
            agency.clone(),
            acked.clone(),
            stop.clone(),
            next_event.clone(),
        );
        appenders.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let event = receipt(&agency, next_event.fetch_add(1, Ordering::SeqCst));
                // The client retries, identical, until the ledger is back.
                let appended = client
                    .append(event.clone(), false)
                    .await
                    .unwrap_or_else(|error| panic!("an append through the restart: {error}"));
                let leaf = Hash(appended.leaf_hash);
                acked.lock().unwrap().insert(appended.seq, (leaf, event));
            }
        }));
    }
    let acked_count = || acked.lock().unwrap().len();
    let wait_for_more = |from: usize, what: &'static str| {
        let acked_count = &acked_count;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while acked_count() < from + 50 {
                assert!(Instant::now() < deadline, "{what}: appends did not resume");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for_more(0, "before the restart").await;
    // The database dies without a shutdown checkpoint and comes back.
    tokio::task::block_in_place(|| pg_ctl(&["restart", "-m", "immediate", "-w"]));
    let after_restart = acked_count();
    wait_for_more(after_restart, "after the restart").await;
    stop.store(true, Ordering::SeqCst);
    for appender in appenders {
        appender.await.unwrap();
    }
    let mut client = connect(port).await;
    wait_for_checkpoint_over(&mut client, &acked).await;
    verify(&mut client, &acked, &vkey, 0).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the ledger kept running through the restart"
    );
    child.kill().unwrap();
    let _ = child.wait();
}

/// A feed replica as a process of its own (`aidledger-feed`), following the
/// ledger on `ledger_port` into `data`, committing often so that kills land
/// between its copy's syncs and its projections' commits.
fn start_feed(data: &Path, ledger_port: u16, vkey: &str, port: u16) -> Running {
    let child = Command::new(crate::program("aidledger-feed"))
        .arg("--data")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--ledger", &format!("http://127.0.0.1:{ledger_port}")])
        .args(["--vkey", vkey])
        // Checkpoints rarely: only the sync before each commit keeps the
        // copy ahead of the projections (its checkpoints are unsynced).
        .args([
            "--commit-interval-ms",
            "5",
            "--checkpoint-interval-ms",
            "1000",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting aidledger-feed");
    Running(child)
}

/// The feed's `/healthz` answer, once it answers.
async fn feed_health(feed: &mut Running, port: u16) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = feed.try_wait().unwrap() {
            panic!("the feed exited ({status}) instead of serving");
        }
        if let Ok(response) = http_get(port, "/healthz").await
            && let Some((_, body)) = response.split_once("\r\n\r\n")
            && let Ok(health) = serde_json::from_str(body)
        {
            return health;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the feed did not answer /healthz"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Appends `count` receipts from event number `first`, in batches.
async fn append_receipts(
    client: &mut LedgerClient<Channel>,
    agency: &SecretKey,
    first: u64,
    count: u64,
) {
    for start in (first..first + count).step_by(250) {
        let events = (start..(start + 250).min(first + count))
            .map(|n| receipt(agency, n))
            .collect();
        let results = client
            .append_batch(pb::AppendBatchRequest { events })
            .await
            .unwrap()
            .into_inner()
            .results;
        assert!(results.iter().all(|r| r.code == 0), "{results:?}");
    }
}

/// A replica's copy of the log is appended unsynced and synced before each
/// projection commit. Killed at random while it catches up, the replica
/// must start again every time (a copy behind its projections would be
/// refused at start), and in the end hold the ledger's log exactly, entry
/// for entry, and serve all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_replica_killed_while_catching_up_resumes_from_its_own_copy() {
    let seed = crash_seed();
    println!("replica crash seed: {seed} (replay with AIDLEDGER_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let (dir, vkey, authority, agency) = ledger_files();
    let ledger = Ledger {
        dir: dir.path().to_path_buf(),
        store: None,
        authority_hex: hex::encode(authority.public_key()),
        port: free_port(),
    };
    let _ledger = ledger.start();
    let mut client = connect(ledger.port).await;
    let setup = setup(&authority, &agency, &vkey);
    let setup_entries = setup.len() as u64;
    let results = client
        .append_batch(pb::AppendBatchRequest { events: setup })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert!(results.iter().all(|r| r.code == 0), "{results:?}");

    let data = dir.path().join("feed");
    let next_event = Arc::new(std::sync::atomic::AtomicU64::new(1_000));
    let rounds = 5;
    for round in 0..rounds {
        // A backlog to catch up on, then entries arriving while it follows:
        // the copy then holds entries past the last checkpoint (whose
        // recording syncs it) when the projections commit them.
        let first = next_event.fetch_add(1_000, std::sync::atomic::Ordering::Relaxed);
        append_receipts(&mut client, &agency, first, 1_000).await;
        let port = free_port();
        let mut feed = start_feed(&data, ledger.port, &vkey, port);
        let health = feed_health(&mut feed, port).await;
        assert_eq!(
            health["following"], true,
            "round {round}: the feed restarted following: {health}"
        );
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let appending = {
            let (mut client, agency) = (client.clone(), agency.clone());
            let next_event = next_event.clone();
            tokio::spawn(async move {
                while !*stopped.borrow_and_update() {
                    let first = next_event.fetch_add(20, std::sync::atomic::Ordering::Relaxed);
                    append_receipts(&mut client, &agency, first, 20).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..300))).await;
        let applied = feed_health(&mut feed, port).await["applied"].clone();
        feed.kill().expect("SIGKILL");
        let status = feed.wait().unwrap();
        assert!(!status.success(), "round {round}: the feed was killed");
        stop.send(true).unwrap();
        appending.await.unwrap();
        println!(
            "round {round}: started at {}, killed at about {applied}",
            health["applied"]
        );
    }

    // Last, left to catch up: every entry, each checked against the ledger.
    let size = setup_entries + next_event.load(std::sync::atomic::Ordering::Relaxed) - 1_000;
    let port = free_port();
    let mut feed = start_feed(&data, ledger.port, &vkey, port);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let health = feed_health(&mut feed, port).await;
        assert_eq!(health["following"], true, "{health}");
        if health["applied"] == size && health["checkpoint_size"] == size {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the feed did not catch up to {size}: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Stopped as a service manager stops it: the stop commits, and so syncs
    // the copy. Killed, it may lose the copy's newest batches and
    // checkpoints, recorded unsynced, which a restart fetches again (the
    // rounds above).
    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &feed.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success(), "SIGTERM sent");
    let status = feed.wait().unwrap();
    assert!(status.success(), "the feed stopped cleanly: {status}");
    let copy = aidledger_store::RedbStore::open_mirror(&data.join("log.redb"), 16 << 20).unwrap();
    assert_eq!(aidledger_store::LogStore::size(&copy).unwrap(), size);
    let mut stream = client
        .subscribe(pb::SubscribeRequest { from_seq: 0 })
        .await
        .unwrap()
        .into_inner();
    for seq in 0..size {
        let served = tokio_stream::StreamExt::next(&mut stream)
            .await
            .unwrap()
            .unwrap();
        let copied = aidledger_store::LogStore::entry(&copy, seq).unwrap();
        assert!(
            copied.as_deref() == Some(served.entry.as_ref()),
            "entry {seq} of the copy is not the ledger's"
        );
    }
}
