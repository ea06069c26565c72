//! The projector against a real ledger over gRPC: its balances equal a
//! deliberately simple fold of the raw entries (on the demo ledger and on
//! seeded random ledgers), every query answers over the wire, and answers
//! cite a checkpoint verified against the entries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aidledger_client::{Client, ConnectOptions};
use aidledger_ledger::decode::event_from_pb;
use aidledger_ledger::{Body, Earmark, PublicKey};
use aidledger_programme::{DemoConfig, Programme};
use aidledger_projector::Shared;
use aidledger_projector::server::{Projector, ProjectorConfig};
use aidledger_tests::generator::Generator;
use aidledger_tests::{ORIGIN, TestServer, ledger_key};
use aidledger_tlog::LogSigner;
use aidledger_wire::pb;
use aidledger_wire::pb::projections_client::ProjectionsClient;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// A pool as the oracle and the comparison see it.
type PoolKey = (String, String, String, i32);

fn vkey() -> String {
    LogSigner::new(ORIGIN, ledger_key()).unwrap().vkey()
}

fn pool(org: &str, asset: &str, earmark: &Earmark) -> PoolKey {
    (
        org.to_owned(),
        asset.to_owned(),
        earmark.commune_code.clone().unwrap_or_default(),
        earmark
            .category
            .map_or(0, aidledger_ledger::Category::to_pb),
    )
}

/// The oracle: balances from the raw events by the plainest possible fold,
/// sharing no code with the projector (no lots, no tables, no queries).
fn fold_balances(events: &[pb::Event]) -> BTreeMap<PoolKey, u64> {
    let mut balances: BTreeMap<PoolKey, i128> = BTreeMap::new();
    // What a reversal of an event undoes: (pool, amount to add back).
    let mut undo: BTreeMap<String, (PoolKey, i128)> = BTreeMap::new();
    let mut transfers: BTreeMap<String, (PoolKey, String)> = BTreeMap::new();
    for event in events {
        let event = event_from_pb(event.clone()).expect("the ledger accepted it");
        match &event.body {
            Body::Receipt(r) => {
                let key = pool(&event.org_id, &r.asset_id, &r.earmark);
                *balances.entry(key.clone()).or_default() += i128::from(r.quantity);
                undo.insert(event.event_id.clone(), (key, -i128::from(r.quantity)));
            }
            Body::Transfer(t) => {
                let key = pool(&event.org_id, &t.asset_id, &t.earmark);
                *balances.entry(key.clone()).or_default() -= i128::from(t.quantity);
                undo.insert(
                    event.event_id.clone(),
                    (key.clone(), i128::from(t.quantity)),
                );
                let to = pool(&t.to_org_id, &t.asset_id, &t.earmark);
                transfers.insert(t.transfer_id.clone(), (to, event.event_id.clone()));
            }
            Body::TransferReceived(r) => {
                let (to, transfer_event) = transfers[&r.transfer_id].clone();
                *balances.entry(to).or_default() += i128::from(r.quantity_received);
                // A received transfer can no longer be reversed.
                undo.remove(&transfer_event);
            }
            Body::Delivery(d) => {
                let key = pool(&event.org_id, &d.asset_id, &d.earmark);
                *balances.entry(key.clone()).or_default() -= i128::from(d.quantity);
                undo.insert(event.event_id.clone(), (key, i128::from(d.quantity)));
            }
            Body::Reversal(r) => {
                if let Some((key, amount)) = undo.remove(&r.target_event_id) {
                    *balances.entry(key).or_default() += amount;
                }
            }
            _ => {}
        }
    }
    balances
        .into_iter()
        .filter(|(_, amount)| *amount != 0)
        .map(|(key, amount)| (key, u64::try_from(amount).expect("no negative balance")))
        .collect()
}

/// A projector following `server`, serving on a loopback port.
struct Following {
    shared: Arc<Shared>,
    client: ProjectionsClient<Channel>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Following {
    async fn start(server: &TestServer, dir: &std::path::Path) -> Following {
        let mut config = ProjectorConfig::new(
            dir.join("projections.redb"),
            "127.0.0.1:0".parse().unwrap(),
            &server.url(),
            &server.vkey,
        );
        config.follower.checkpoint_interval = Duration::from_millis(100);
        config.follower.commit_interval = Duration::from_millis(100);
        let projector = Projector::build(config).await.unwrap();
        let addr = projector.local_addr();
        let shared = projector.shared();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(projector.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let client = ProjectionsClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        Following {
            shared,
            client,
            stop,
            task,
        }
    }

    /// Waits until the projections reflect `size` entries and cite a
    /// checkpoint of exactly that size.
    async fn caught_up(&mut self, size: u64) -> pb::ProjectionStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status = self
                .client
                .get_status(pb::GetStatusRequest {})
                .await
                .unwrap()
                .into_inner();
            assert_eq!(status.halted_reason, "", "the projector halted");
            let as_of = status.as_of.clone().unwrap();
            if as_of.size == size && as_of.checkpoint.as_ref().is_some_and(|c| c.size == size) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not caught up with {size} entries: {status:?} {:?}",
                self.shared.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn balances(&mut self) -> BTreeMap<PoolKey, u64> {
        let mut balances = BTreeMap::new();
        let mut token = String::new();
        loop {
            let page = self
                .client
                .list_balances(pb::ListBalancesRequest {
                    page: Some(pb::Page {
                        page_size: 1000,
                        page_token: token,
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            for b in page.balances {
                let earmark = b.earmark.unwrap_or_default();
                let key = (b.org_id, b.asset_id, earmark.commune_code, earmark.category);
                assert!(
                    balances.insert(key, b.held).is_none(),
                    "a pool listed twice"
                );
            }
            if page.next_page_token.is_empty() {
                return balances;
            }
            token = page.next_page_token;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

async fn ledger_client(server: &TestServer) -> Client {
    let mut options = ConnectOptions::new(ORIGIN);
    options.vkey = Some(server.vkey.clone());
    Client::connect(&server.url(), options).await.unwrap()
}

/// Every event of the ledger, read back through a verified subscription.
async fn logged_events(client: &Client, size: u64) -> Vec<pb::Event> {
    let mut stream = client.subscribe(0).await.unwrap();
    let mut events = Vec::new();
    while (events.len() as u64) < size {
        events.push(stream.next().await.unwrap().unwrap().event);
    }
    events
}

async fn append_all(server: &TestServer, events: Vec<pb::SignedEvent>) {
    let mut ledger = server.client().await;
    for chunk in events.chunks(500) {
        let results = ledger
            .append_batch(pb::AppendBatchRequest {
                events: chunk.to_vec(),
            })
            .await
            .unwrap()
            .into_inner()
            .results;
        for result in results {
            assert_eq!(result.code, 0, "{}: {}", result.reason, result.message);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_equal_a_simple_fold_on_seeded_random_ledgers() {
    for seed in [11, 12, 13] {
        let dir = tempfile::tempdir().unwrap();
        let mut generator = Generator::new(seed);
        let server = TestServer::start(dir.path(), generator.authority()).await;
        let mut projector = Following::start(&server, dir.path()).await;
        // Appended while the projector follows: catch-up and live tail both.
        let mut events = generator.setup(&vkey());
        events.extend(generator.events(1_500));
        let size = events.len() as u64;
        append_all(&server, events).await;
        projector.caught_up(size).await;
        let expected = fold_balances(&logged_events(&ledger_client(&server).await, size).await);
        let projected = projector.balances().await;
        assert!(expected.len() > 20, "seed {seed}: a ledger with many pools");
        assert_eq!(projected, expected, "seed {seed}");
        // The test kit keeps its own model of the balances too.
        let generator_total: u64 = generator.balances().map(|(_, amount)| amount).sum();
        assert_eq!(
            projected.values().sum::<u64>(),
            generator_total,
            "seed {seed}"
        );
        projector.stop().await;
        server.stop().await;
    }
}

/// The demo programme on a test ledger, and the programme for its samples.
pub(crate) async fn demo_ledger(dir: &std::path::Path) -> (TestServer, Programme, u64) {
    let mut programme = Programme::new(DemoConfig {
        seed: 2025,
        origin: ORIGIN.into(),
        log_vkey: vkey(),
        extra_events: 0,
    });
    let authority = PublicKey(programme.authority_public_key());
    let server = TestServer::start_with(dir, &aidledger_client::SecretKey::generate(), |config| {
        config.authority_key = Some(authority);
    })
    .await;
    let mut events = Vec::new();
    loop {
        let batch = programme.next_batch(500);
        if batch.is_empty() {
            break;
        }
        events.extend(batch);
    }
    let size = events.len() as u64;
    append_all(&server, events).await;
    (server, programme, size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_ledger_projections_match_the_fold_and_answer_every_query() {
    let dir = tempfile::tempdir().unwrap();
    let (server, programme, size) = demo_ledger(dir.path()).await;
    let mut projector = Following::start(&server, dir.path()).await;
    let status = projector.caught_up(size).await;
    assert_eq!(status.origin, ORIGIN);
    let client = ledger_client(&server).await;
    let events = logged_events(&client, size).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e.body, Some(pb::event::Body::Reversal(_)))),
        "the demo ledger exercises reversals"
    );
    assert_eq!(projector.balances().await, fold_balances(&events));

    // The cited checkpoint is the ledger's signed one for that size.
    let checkpoint = client.checkpoint().await.unwrap();
    let cited = status.as_of.unwrap().checkpoint.unwrap();
    assert_eq!(cited.size, checkpoint.checkpoint.size);
    assert_eq!(cited.root_hash, checkpoint.checkpoint.root.0.to_vec());

    let p = &mut projector.client;
    let communes = p
        .list_communes(pb::ListCommunesRequest {
            year: 2025,
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    let busiest = communes
        .communes
        .iter()
        .max_by_key(|c| c.deliveries)
        .unwrap()
        .clone();
    assert!(busiest.deliveries > 0 && busiest.children_reached > 0);
    let view = p
        .get_commune(pb::GetCommuneRequest {
            commune_code: busiest.commune_code.clone(),
            year: 2025,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.summary.unwrap(), busiest);
    assert!(!view.categories.is_empty() && !view.donors.is_empty());
    assert!(!view.recent_deliveries.is_empty());

    // A donor finds their receipt by the keyed hash of their bank reference
    // (SPEC §7.5, computed by a publisher holding K_ref) and sees where it
    // went.
    let sample = &programme.sample_references()[0];
    let trace = p
        .trace_receipt(pb::TraceReceiptRequest {
            key: Some(pb::trace_receipt_request::Key::ExternalRefHash(
                programme
                    .ref_key()
                    .external_ref_hash(&sample.reference)
                    .to_vec()
                    .into(),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    let receipt = trace.receipt.clone().unwrap();
    assert_eq!(receipt.receipt_id, sample.receipt_id);
    let amount = receipt.amount.unwrap().quantity;
    assert_eq!(
        trace.delivered + trace.in_transit + trace.lost + trace.held + trace.withdrawn,
        amount,
        "every unit of the receipt is accounted for: {trace:?}"
    );

    // The same holds for every receipt of the ledger.
    {
        let model = projector.shared.read();
        let mut traced = 0;
        for (receipt_id, receipt) in model.receipts.iter_any_order() {
            let trace = aidledger_projector::queries::trace_receipt(
                &model,
                &aidledger_projector::read::ReceiptKey::Id(receipt_id.to_string()),
            )
            .unwrap();
            assert_eq!(
                trace.delivered + trace.in_transit + trace.lost + trace.held + trace.withdrawn,
                receipt.quantity,
                "receipt {receipt_id}: {trace:?}"
            );
            traced += 1;
        }
        assert!(traced > 500, "{traced} receipts traced");
    }

    let deliveries = p
        .list_deliveries(pb::ListDeliveriesRequest {
            commune_code: busiest.commune_code.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let delivery = &deliveries.deliveries[0];
    let funded = p
        .trace_delivery(pb::TraceDeliveryRequest {
            delivery_id: delivery.delivery_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let funded_total: u64 = funded.funded_by.iter().map(|f| f.quantity).sum();
    assert_eq!(funded_total, delivery.amount.clone().unwrap().quantity);

    let pledges = p
        .list_pledges(pb::ListPledgesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!pledges.pledges.is_empty() && !pledges.by_donor.is_empty());
    let plan = p
        .get_plan_progress(pb::GetPlanProgressRequest {
            year: 2025,
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!plan.rows.is_empty(), "the demo publishes a 2025 plan");
    let ranking = p
        .get_recognition(pb::GetRecognitionRequest {
            year: 2025,
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ranking.rows[0].rank, 1);
    assert!(
        ranking
            .rows
            .windows(2)
            .all(|w| w[0].total_value_vnd >= w[1].total_value_vnd)
    );
    let overlaps = p
        .list_overlaps(pb::ListOverlapsRequest::default())
        .await
        .unwrap()
        .into_inner();
    // Every finding names at least two events behind it, all in the log.
    assert!(!overlaps.findings.is_empty());
    for finding in &overlaps.findings {
        assert!(finding.seqs.len() >= 2 && finding.seqs.iter().all(|seq| *seq < size));
        // Its own list holds them all, the shown ones first.
        let events = p
            .list_overlap_events(pb::ListOverlapEventsRequest {
                finding_id: finding.finding_id.clone(),
                page: Some(pb::Page {
                    page_size: 1000,
                    page_token: String::new(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(events.events_total, finding.events_total);
        assert_eq!(events.events.len() as u64, finding.events_total);
        let listed: Vec<u64> = events.events.iter().map(|e| e.seq).collect();
        assert_eq!(listed[..finding.seqs.len()], finding.seqs);
    }
    let unknown = p
        .list_overlap_events(pb::ListOverlapEventsRequest {
            finding_id: "not-a-finding".into(),
            page: None,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument);
    let organizations = p
        .list_organizations(pb::ListOrganizationsRequest {
            kind: pb::OrgKind::DonorIndividual as i32,
            page: Some(pb::Page {
                page_size: 1000,
                page_token: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    // Individuals who asked not to be named are not named, in any answer.
    assert!(organizations.organizations.iter().any(|o| o.anonymous));
    assert!(
        organizations
            .organizations
            .iter()
            .all(|o| o.anonymous == o.name.is_empty())
    );
    let hidden: std::collections::BTreeSet<&str> = organizations
        .organizations
        .iter()
        .filter(|o| o.anonymous)
        .map(|o| o.org_id.as_str())
        .collect();
    for pledge in &pledges.pledges {
        if hidden.contains(pledge.donor_org_id.as_str()) {
            assert_eq!(pledge.donor_name, "", "pledge {}", pledge.pledge_id);
        }
    }
    for donor in &view.donors {
        assert_eq!(donor.anonymous, hidden.contains(donor.org_id.as_str()));
        assert_eq!(donor.anonymous, donor.name.is_empty());
    }
    assert!(ranking.rows.iter().any(|r| r.anonymous));
    for row in &ranking.rows {
        assert_eq!(row.anonymous, hidden.contains(row.org_id.as_str()));
        assert_eq!(row.anonymous, row.name.is_empty());
    }

    // Clear errors for bad requests.
    let missing = p
        .get_commune(pb::GetCommuneRequest {
            commune_code: "00000".into(),
            year: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let bad_page = p
        .list_balances(pb::ListBalancesRequest {
            page: Some(pb::Page {
                page_size: 10,
                page_token: "not-a-token".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_page.code(), tonic::Code::InvalidArgument);

    projector.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_projector_resumes_where_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(21);
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let mut events = generator.setup(&vkey());
    events.extend(generator.events(500));
    let first = events.len() as u64;
    append_all(&server, events).await;
    let mut projector = Following::start(&server, dir.path()).await;
    projector.caught_up(first).await;
    let digest_before = projector.shared.read().digest();
    projector.stop().await;

    // The store holds exactly the model that was served.
    let path = dir.path().join("projections.redb");
    let (_, stored) = aidledger_projector::ProjectionStore::open(&path).unwrap();
    assert_eq!(stored.position.size, first);
    assert_eq!(stored.digest(), digest_before);
    drop(stored);

    // Restarted on the same store, it follows the new entries from where it
    // stopped.
    append_all(&server, generator.events(300)).await;
    let mut projector = Following::start(&server, dir.path()).await;
    projector.caught_up(first + 300).await;
    let expected = fold_balances(&logged_events(&ledger_client(&server).await, first + 300).await);
    assert_eq!(projector.balances().await, expected);
    projector.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_whose_entries_disagree_with_the_ledger_halts_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(31);
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let mut events = generator.setup(&vkey());
    events.extend(generator.events(200));
    let size = events.len() as u64;
    append_all(&server, events).await;
    let mut projector = Following::start(&server, dir.path()).await;
    projector.caught_up(size).await;
    projector.stop().await;
    append_all(&server, generator.events(50)).await;

    let path = dir.path().join("projections.redb");
    let tamper = |change: &dyn Fn(&mut aidledger_projector::Model)| {
        let (store, mut model) = aidledger_projector::ProjectionStore::open(&path).unwrap();
        change(&mut model);
        let commit = aidledger_projector::ProjectionStore::take_commit(&mut model);
        store.write(commit).unwrap();
    };
    // A head that is not the leaf hash of the last entry: the next entry's
    // prev_hash does not link to it.
    let original = aidledger_projector::ProjectionStore::open(&path)
        .unwrap()
        .1
        .position;
    tamper(&|model| model.position.head[0] ^= 1);
    let mut projector = Following::start(&server, dir.path()).await;
    let reason = halted(&projector.shared).await;
    assert!(reason.contains(&format!("entry {size}")), "{reason}");
    assert!(reason.contains("prev_hash"), "{reason}");
    // It keeps serving the last good state, and says it stopped.
    let status = projector
        .client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.as_of.unwrap().size, size);
    assert_eq!(status.halted_reason, reason);
    projector.stop().await;

    // A Merkle frontier that does not hash the entries applied: the next
    // signed checkpoint does not match them.
    tamper(&|model| {
        model.position.head = original.head;
        model.position.frontier[0][0] ^= 1;
    });
    let projector = Following::start(&server, dir.path()).await;
    let reason = halted(&projector.shared).await;
    assert!(reason.contains("checkpoint"), "{reason}");
    projector.stop().await;
    server.stop().await;
}

/// Why the follower halted, once it has.
async fn halted(shared: &Shared) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(reason) = shared.status().halted {
            return reason;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the projector did not halt"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
