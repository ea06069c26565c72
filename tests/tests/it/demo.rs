//! `aidledger demo`: the programme year goes in through gRPC, every event
//! accepted, and a second start serves the same ledger.

use aidledger::demo::{DemoArgs, run};
use aidledger_demo::{DemoConfig, Programme};
use aidledger_store::{LogStore, RedbStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_submits_its_year_and_a_restart_serves_it_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let args = DemoArgs {
        data: dir.path().join("demo-data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        projections_listen: "127.0.0.1:0".parse().unwrap(),
        seed: 7,
        extra_events: 100,
        no_serve: true,
    };
    // run() fails if any demo event is refused.
    run(args.clone(), std::future::pending()).await.unwrap();
    let expected = Programme::new(DemoConfig {
        seed: 7,
        origin: aidledger::demo::DEMO_ORIGIN.into(),
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
