//! Lists longer than one page: a donor who gave more often than a page
//! shows, and more overlap findings (and events behind one finding) than a
//! page shows. Rows come in pages by key, every row once and in order, in
//! the API and the pages.

use std::sync::Arc;

use aidledger_ledger::Timestamp;
use aidledger_ledger::decode::event_from_pb;
use aidledger_projector::{Model, Shared};
use aidledger_store::MemStore;
use aidledger_wire::pb;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::pages::url_segment;
use crate::views::{
    DONOR_GIFTS_PER_PAGE, LIST_ROWS_PER_PAGE, OVERLAP_EVENTS_PER_PAGE, OVERLAPS_PER_PAGE,
};
use crate::{Feed, FeedOptions, router};

const GIFTS: usize = 2 * DONOR_GIFTS_PER_PAGE + 17;

type Bodies = Vec<(&'static str, pb::event::Body)>;

/// Genesis, and `orgs` registered with public names.
fn genesis_and(orgs: &[(&'static str, pb::OrgKind)]) -> Bodies {
    use pb::event::Body;
    let genesis = Body::Genesis(pb::Genesis {
        origin: "paging.test/log".into(),
        authority_org_id: "auth".into(),
        authority_name: "UBND tỉnh".into(),
        authority_public_key: aidledger_tlog::ed25519::SecretKey::from_seed(&[7; 32])
            .public_key()
            .to_vec()
            .into(),
        log_vkey: aidledger_tlog::LogSigner::new(
            "paging.test/log",
            aidledger_tlog::ed25519::SecretKey::from_seed(&[8; 32]),
        )
        .unwrap()
        .vkey(),
    });
    let mut bodies = vec![("auth", genesis)];
    for (org_id, kind) in orgs {
        bodies.push((
            "auth",
            Body::RegisterOrg(pb::RegisterOrganization {
                org_id: (*org_id).into(),
                name: format!("Tên {org_id}"),
                kind: *kind as i32,
                public_name: true,
                ..Default::default()
            }),
        ));
    }
    bodies
}

/// The model after `bodies`, one second apart.
fn model_of(bodies: Bodies) -> Model {
    let mut model = Model::new();
    for (seq, (org_id, body)) in bodies.into_iter().enumerate() {
        let at = Timestamp {
            seconds: 1_740_000_000 + seq as i64,
            nanos: 0,
        };
        let event = event_from_pb(pb::Event {
            event_id: format!("00000000-0000-4000-8000-{seq:012}"),
            org_id: org_id.into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: at.seconds,
                nanos: 0,
            }),
            body: Some(body),
        })
        .expect("a well-formed event");
        model
            .apply(seq as u64, at, event)
            .expect("the model takes it");
    }
    model
}

fn donor_model() -> Model {
    use pb::event::Body;
    let mut bodies = genesis_and(&[
        ("fund", pb::OrgKind::Agency),
        ("giver", pb::OrgKind::DonorBusiness),
        ("other", pb::OrgKind::DonorBusiness),
    ]);
    for n in 0..GIFTS {
        // Another donor's gifts in between: the donor's list skips them.
        let donor = if n % 3 == 2 { "other" } else { "giver" };
        bodies.push((
            "fund",
            Body::Receipt(pb::Receipt {
                receipt_id: format!("g-{n}"),
                donor_org_id: donor.into(),
                asset_id: "VND".into(),
                quantity: 1_000,
                ..Default::default()
            }),
        ));
    }
    model_of(bodies)
}

async fn get(app: &axum::Router, path: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_donors_gifts_come_in_pages_each_gift_once_in_log_order() {
    let app = router(Feed::new(
        Arc::new(MemStore::new()),
        Shared::new(donor_model()),
        FeedOptions::default(),
    ));
    let expected: Vec<String> = (0..GIFTS)
        .filter(|n| n % 3 != 2)
        .map(|n| format!("g-{n}"))
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/api/v1/donors/giver".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["receipts_total"], expected.len());
        let rows = answer["receipts"].as_array().unwrap();
        assert!(rows.len() <= DONOR_GIFTS_PER_PAGE);
        seen.extend(
            rows.iter()
                .map(|r| r["receipt_id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match answer["next_after"].as_u64() {
            Some(after) => {
                assert_eq!(Some(after), rows.last().and_then(|r| r["seq"].as_u64()));
                path = format!("/api/v1/donors/giver?after={after}");
            }
            None => break,
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, expected.len().div_ceil(DONOR_GIFTS_PER_PAGE));
    // The standing still counts every gift, not one page.
    let (_, body) = get(&app, "/api/v1/donors/giver").await;
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["standing"]["receipts"], expected.len());

    // The page links to the next one, and the last has no such link.
    let (status, first) = get(&app, "/en/donors/giver").await;
    assert_eq!(status, StatusCode::OK);
    let first_after = serde_json::from_str::<serde_json::Value>(&body).unwrap()["next_after"]
        .as_u64()
        .unwrap();
    assert!(
        first.contains(&format!("href=\"/en/donors/giver?after={first_after}\"")),
        "{first}"
    );
    assert!(
        first.contains(&expected[0])
            && !first.contains(&format!(">{}<", expected[DONOR_GIFTS_PER_PAGE]))
    );
    let (_, last) = get(&app, "/en/donors/giver?after=1000000").await;
    assert!(!last.contains("rel=\"next\""), "{last}");
    // A cursor that is not a seq is refused, not read as the first page.
    let (status, _) = get(&app, "/api/v1/donors/giver?after=g-3").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, page) = get(&app, "/en/donors/giver?after=g-3").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("must be the seq of a log entry"), "{page}");
}

/// More transfers than two pages show, between receipts: the list of
/// transfers skips the receipts.
const TRANSFERS: usize = 2 * LIST_ROWS_PER_PAGE + 7;

fn transfers_model() -> Model {
    use pb::event::Body;
    let mut bodies = genesis_and(&[
        ("fund", pb::OrgKind::Agency),
        ("school", pb::OrgKind::Agency),
        ("giver", pb::OrgKind::DonorBusiness),
    ]);
    for n in 0..TRANSFERS {
        bodies.push((
            "fund",
            Body::Receipt(pb::Receipt {
                receipt_id: format!("r-{n}"),
                donor_org_id: "giver".into(),
                asset_id: "VND".into(),
                quantity: 10,
                ..Default::default()
            }),
        ));
        bodies.push((
            "fund",
            Body::Transfer(pb::Transfer {
                transfer_id: format!("t-{n}"),
                to_org_id: "school".into(),
                asset_id: "VND".into(),
                quantity: 10,
                ..Default::default()
            }),
        ));
    }
    model_of(bodies)
}

#[tokio::test]
async fn transfers_come_in_pages_by_seq_each_once_in_log_order() {
    let app = router(Feed::new(
        Arc::new(MemStore::new()),
        Shared::new(transfers_model()),
        FeedOptions::default(),
    ));
    let expected: Vec<String> = (0..TRANSFERS).map(|n| format!("t-{n}")).collect();
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/api/v1/transfers".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        let rows = answer["items"].as_array().unwrap();
        assert!(rows.len() <= LIST_ROWS_PER_PAGE);
        seen.extend(
            rows.iter()
                .map(|r| r["transfer_id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match answer["next_after"].as_u64() {
            Some(after) => {
                assert_eq!(Some(after), rows.last().and_then(|r| r["seq"].as_u64()));
                path = format!("/api/v1/transfers?after={after}");
            }
            None => {
                assert!(answer["next_after"].is_null());
                break;
            }
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, TRANSFERS.div_ceil(LIST_ROWS_PER_PAGE));
    // Past the last entry: an empty page, and no next one.
    let (_, body) = get(&app, "/api/v1/transfers?after=1000000").await;
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(answer["items"].as_array().unwrap().is_empty() && answer["next_after"].is_null());
    // A cursor that is not a seq is refused, not read as the first page.
    for bad in ["t-3", "-1"] {
        let (status, _) = get(&app, &format!("/api/v1/transfers?after={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let (status, _) = get(&app, &format!("/api/v1/deliveries?after={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// Communes where both agencies delivered one category in one month: more
/// findings than a page shows.
const FINDING_COMMUNES: usize = 60;
/// Deliveries to the one big month scope: more events than a page shows.
const BIG_SCOPE_DELIVERIES: usize = OVERLAP_EVENTS_PER_PAGE + 20;

fn overlaps_model() -> Model {
    use pb::event::Body;
    let mut bodies = genesis_and(&[
        ("fund-a", pb::OrgKind::Agency),
        ("fund-b", pb::OrgKind::Agency),
        ("giver", pb::OrgKind::DonorBusiness),
    ]);
    let communes: Vec<String> = (0..=FINDING_COMMUNES)
        .map(|c| format!("30{c:03}"))
        .collect();
    for code in &communes {
        bodies.push((
            "auth",
            Body::RegisterCommune(pb::RegisterCommune {
                commune_code: code.clone(),
                name: format!("Xã {code}"),
                district: "Bác Ái".into(),
                province: "Ninh Thuận".into(),
                children_count: 100,
            }),
        ));
    }
    for fund in ["fund-a", "fund-b"] {
        bodies.push((
            fund,
            Body::Receipt(pb::Receipt {
                receipt_id: format!("r-{fund}"),
                donor_org_id: "giver".into(),
                asset_id: "VND".into(),
                quantity: 1_000_000_000,
                ..Default::default()
            }),
        ));
    }
    let mut n = 0;
    let mut deliver = |bodies: &mut Bodies,
                       by: &'static str,
                       commune: &str,
                       category: pb::Category,
                       period: &str| {
        n += 1;
        bodies.push((
            by,
            Body::Delivery(pb::Delivery {
                delivery_id: format!("d-{n}"),
                commune_code: commune.to_owned(),
                category: category as i32,
                asset_id: "VND".into(),
                quantity: 1_000,
                children_reached: 1,
                period: period.into(),
                ..Default::default()
            }),
        ));
    };
    for commune in &communes[1..] {
        for category in [pb::Category::Health, pb::Category::Nutrition] {
            for by in ["fund-a", "fund-b"] {
                deliver(&mut bodies, by, commune, category, "2025-03");
            }
        }
    }
    for i in 0..BIG_SCOPE_DELIVERIES {
        let by = if i % 2 == 0 { "fund-a" } else { "fund-b" };
        deliver(
            &mut bodies,
            by,
            &communes[0],
            pb::Category::Nutrition,
            "2025-04",
        );
    }
    model_of(bodies)
}

#[tokio::test]
async fn overlap_findings_and_the_events_behind_one_come_in_pages() {
    let app = router(Feed::new(
        Arc::new(MemStore::new()),
        Shared::new(overlaps_model()),
        FeedOptions::default(),
    ));
    // The findings, a page at a time: each once, in the order of their ids.
    let mut findings: Vec<serde_json::Value> = Vec::new();
    let mut path = "/api/v1/overlaps".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        let rows = answer["findings"].as_array().unwrap();
        assert!(rows.len() <= OVERLAPS_PER_PAGE);
        findings.extend(rows.iter().cloned());
        pages += 1;
        match answer["next_after"].as_str() {
            Some(after) => {
                assert_eq!(Some(after), rows.last().and_then(|r| r["finding"].as_str()));
                path = format!("/api/v1/overlaps?after={after}");
            }
            None => break,
        }
    }
    let expected_findings = 2 * FINDING_COMMUNES + 1;
    assert_eq!(findings.len(), expected_findings);
    assert_eq!(pages, expected_findings.div_ceil(OVERLAPS_PER_PAGE));
    let ids: Vec<&str> = findings
        .iter()
        .map(|f| f["finding"].as_str().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "each once, in order");
    assert!(findings.iter().all(|f| f["kind"] == "same_month"));

    // The big scope shows its first events and their number; its own
    // list pages through all of them in log order.
    let big = findings
        .iter()
        .find(|f| f["events_total"] == BIG_SCOPE_DELIVERIES)
        .expect("the big month scope is a finding");
    let shown: Vec<u64> = big["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(shown.len(), aidledger_projector::read::FINDING_EVENTS_SHOWN);
    let id = big["finding"].as_str().unwrap();
    let mut events: Vec<u64> = Vec::new();
    let mut path = format!("/api/v1/overlaps/{id}");
    loop {
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["events_total"], BIG_SCOPE_DELIVERIES);
        let rows = answer["events"].as_array().unwrap();
        assert!(rows.len() <= OVERLAP_EVENTS_PER_PAGE);
        assert!(
            rows.iter()
                .all(|e| e["org"]["org_id"] == "fund-a" || e["org"]["org_id"] == "fund-b"),
            "{body}"
        );
        events.extend(rows.iter().map(|e| e["seq"].as_u64().unwrap()));
        match answer["next_after"].as_u64() {
            Some(after) => path = format!("/api/v1/overlaps/{id}?after={after}"),
            None => break,
        }
    }
    assert_eq!(events.len(), BIG_SCOPE_DELIVERIES);
    assert!(
        events.windows(2).all(|w| w[0] < w[1]),
        "in log order, each once"
    );
    assert_eq!(events[..shown.len()], shown);

    // The pages link each to the next, in the reader's language.
    let (status, first) = get(&app, "/en/overlaps").await;
    assert_eq!(status, StatusCode::OK);
    let after = url_segment(ids[OVERLAPS_PER_PAGE - 1]);
    let link = url_segment(id);
    assert!(
        first.contains(&format!("href=\"/en/overlaps?after={after}\"")),
        "a link to the next page"
    );
    assert!(
        first.contains(&format!("href=\"/en/overlaps/{link}\"")),
        "a link to the finding's events"
    );
    let (status, finding_page) = get(&app, &format!("/en/overlaps/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(finding_page.contains(&format!(">{}<", events[OVERLAP_EVENTS_PER_PAGE - 1])));
    assert!(!finding_page.contains(&format!(">{}<", events[OVERLAP_EVENTS_PER_PAGE])));
    assert!(
        finding_page.contains(&format!(
            "href=\"/en/overlaps/{link}?after={}\"",
            events[OVERLAP_EVENTS_PER_PAGE - 1]
        )),
        "a link to the next page of events"
    );

    // Ids that name no finding are refused: malformed 400, unknown 404.
    for (path, status) in [
        ("/api/v1/overlaps/x".to_owned(), StatusCode::BAD_REQUEST),
        ("/en/overlaps/x".to_owned(), StatusCode::BAD_REQUEST),
        (
            "/api/v1/overlaps/3,0000002025,99999,01,2025-03".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/api/v1/overlaps/{id}?after=soon"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(get(&app, &path).await.0, status, "{path}");
    }
}
