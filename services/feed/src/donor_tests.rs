//! A donor who gave more often than one page shows: the gifts come in
//! pages by seq, every gift once and in log order, in the API and the page.

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

use crate::views::DONOR_GIFTS_PER_PAGE;
use crate::{Feed, FeedOptions, router};

const GIFTS: usize = 2 * DONOR_GIFTS_PER_PAGE + 17;

fn model() -> Model {
    use pb::event::Body;
    let genesis = Body::Genesis(pb::Genesis {
        origin: "donor.test/log".into(),
        authority_org_id: "auth".into(),
        authority_name: "UBND tỉnh".into(),
        authority_public_key: aidledger_tlog::ed25519::SecretKey::from_seed(&[7; 32])
            .public_key()
            .to_vec(),
        log_vkey: aidledger_tlog::LogSigner::new(
            "donor.test/log",
            aidledger_tlog::ed25519::SecretKey::from_seed(&[8; 32]),
        )
        .unwrap()
        .vkey(),
    });
    let org = |org_id: &str, kind: pb::OrgKind| {
        Body::RegisterOrg(pb::RegisterOrganization {
            org_id: org_id.into(),
            name: format!("Tên {org_id}"),
            kind: kind as i32,
            public_name: true,
            ..Default::default()
        })
    };
    let mut bodies = vec![
        ("auth", genesis),
        ("auth", org("fund", pb::OrgKind::Agency)),
        ("auth", org("giver", pb::OrgKind::DonorBusiness)),
        ("auth", org("other", pb::OrgKind::DonorBusiness)),
    ];
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
            .apply(seq as u64, at, &event)
            .expect("the model takes it");
    }
    model
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
        Shared::new(model()),
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
