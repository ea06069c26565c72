//! `aidledger-demo`: the programme year goes in through gRPC, every event
//! accepted, and a second start serves the same ledger.

use aidledger_demo::{DemoArgs, run};
use aidledger_programme::{DemoConfig, Programme};
use aidledger_store::{LogStore, RedbStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_submits_its_year_and_a_restart_serves_it_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let args = DemoArgs {
        data: dir.path().join("demo-data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        projections_listen: "127.0.0.1:0".parse().unwrap(),
        feed_listen: "127.0.0.1:0".parse().unwrap(),
        feed_public_url: None,
        seed: 7,
        extra_events: 100,
        no_serve: true,
    };
    // run() fails if any demo event is refused.
    run(args.clone(), std::future::pending()).await.unwrap();
    let expected = Programme::new(DemoConfig {
        seed: 7,
        origin: aidledger_demo::DEMO_ORIGIN.into(),
        log_vkey: String::new(),
        extra_events: 100,
    })
    .total_events() as u64;
    let size = |path: &std::path::Path| {
        RedbStore::open(&path.join("ledger.redb"))
            .unwrap()
            .size()
            .unwrap()
    };
    assert_eq!(size(&args.data), expected);
    assert!(
        expected > 2_000,
        "a realistic year, not a handful of events"
    );

    run(args.clone(), std::future::pending()).await.unwrap();
    assert_eq!(
        size(&args.data),
        expected,
        "a second start neither adds nor loses entries"
    );
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    aidledger_tests::http_request(addr, "GET", path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_log_as_tiles_over_http() {
    use aidledger_wire::Message as _;
    let dir = tempfile::tempdir().unwrap();
    let feed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let args = DemoArgs {
        data: dir.path().join("demo-data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        projections_listen: "127.0.0.1:0".parse().unwrap(),
        feed_listen: feed,
        feed_public_url: None,
        seed: 3,
        extra_events: 0,
        no_serve: false,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let demo = tokio::spawn(run(args.clone(), async {
        let _ = stopped.await;
    }));
    let vkey = || {
        let key = aidledger::config::load_key_file(&args.data.join("ledger-key.pem")).ok()?;
        Some(
            aidledger_tlog::LogSigner::new(aidledger_demo::DEMO_ORIGIN, key)
                .unwrap()
                .vkey(),
        )
    };
    // Wait until the demo has submitted its year and a checkpoint covers it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let checkpoint = loop {
        assert!(std::time::Instant::now() < deadline, "no checkpoint served");
        let served = tokio::task::spawn_blocking(move || {
            std::net::TcpStream::connect(feed)
                .ok()
                .map(|_| http_get(feed, "/checkpoint"))
        })
        .await
        .unwrap();
        if let (Some((200, head, body)), Some(vkey)) = (served, vkey()) {
            assert!(head.contains("text/plain; charset=utf-8"), "{head}");
            let verifier = aidledger_tlog::LogVerifier::from_vkey(&vkey).unwrap();
            let checkpoint = verifier
                .verify(std::str::from_utf8(&body).unwrap())
                .unwrap();
            if checkpoint.size > 2_000 {
                break checkpoint;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // The first entry bundle: 256 entries, each framed by its length,
    // starting with the genesis at seq 0; a full tile is immutable.
    let (status, head, bundle) =
        tokio::task::spawn_blocking(move || http_get(feed, "/tile/entries/000"))
            .await
            .unwrap();
    assert_eq!(status, 200);
    assert!(head.contains("immutable"), "{head}");
    let len = usize::from(u16::from_be_bytes([bundle[0], bundle[1]]));
    let first = aidledger_wire::pb::LedgerEntry::decode(&bundle[2..2 + len]).unwrap();
    assert_eq!(first.seq, 0);
    // Nothing past the checkpoint.
    let beyond = format!("/tile/entries/{:03}.p/1", checkpoint.size / 256 + 1);
    let (status, _, _) = tokio::task::spawn_blocking(move || http_get(feed, &beyond))
        .await
        .unwrap();
    assert_eq!(status, 404);
    // Stopping at any point (here possibly before the projections caught
    // up) ends the demo cleanly.
    let _ = stop.send(());
    demo.await.unwrap().unwrap();
}
