//! Privacy on paths the demo data does not take: a donor who asked not to be
//! named, whose name an agency also wrote into a commendation's reason and
//! a receipt's note. Every page, API answer and export is swept.

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

use aidledger_ledger::privacy::{RefKey, SecretKey32};

use crate::{Feed, FeedOptions, router};

const HIDDEN: &str = "Lê Thị Kín Đáo";

fn event(n: u32, org_id: &str, body: pb::event::Body) -> pb::Event {
    pb::Event {
        event_id: format!("00000000-0000-4000-8000-{n:012}"),
        org_id: org_id.to_owned(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: 1_740_000_000 + i64::from(n) * 60,
            nanos: 0,
        }),
        body: Some(body),
    }
}

/// SPEC §7.5: a hidden donor is registered with a commitment and no name.
fn org(org_id: &str, name: &str, kind: pb::OrgKind, public_name: bool) -> pb::event::Body {
    pb::event::Body::RegisterOrg(pb::RegisterOrganization {
        org_id: org_id.to_owned(),
        name: if public_name {
            name.to_owned()
        } else {
            String::new()
        },
        kind: kind as i32,
        public_name,
        name_commitment: if public_name {
            Default::default()
        } else {
            aidledger_ledger::privacy::name_commitment(&[3; 32], name)
                .to_vec()
                .into()
        },
        ..Default::default()
    })
}

const REFERENCE: &str = "FT25077123456789";

fn ref_key() -> RefKey {
    RefKey(SecretKey32::from_bytes([0x21; 32]))
}

fn model() -> Model {
    use pb::event::Body;
    let events = [
        event(
            0,
            "auth",
            Body::Genesis(pb::Genesis {
                origin: "privacy.test/log".into(),
                authority_org_id: "auth".into(),
                authority_name: "UBND tỉnh".into(),
                authority_public_key: aidledger_tlog::ed25519::SecretKey::from_seed(&[7; 32])
                    .public_key()
                    .to_vec()
                    .into(),
                log_vkey: aidledger_tlog::LogSigner::new(
                    "privacy.test/log",
                    aidledger_tlog::ed25519::SecretKey::from_seed(&[8; 32]),
                )
                .unwrap()
                .vkey(),
            }),
        ),
        event(
            1,
            "auth",
            org("ag", "Quỹ Bảo trợ trẻ em", pb::OrgKind::Agency, true),
        ),
        event(
            2,
            "ag",
            org("d-hidden", HIDDEN, pb::OrgKind::DonorIndividual, false),
        ),
        event(
            3,
            "ag",
            Body::Receipt(pb::Receipt {
                receipt_id: "pt-1".into(),
                donor_org_id: "d-hidden".into(),
                asset_id: "VND".into(),
                quantity: 5_000_000,
                external_ref_hash: ref_key().external_ref_hash(REFERENCE).to_vec().into(),
                note: format!("Chuyển khoản của {HIDDEN}"),
                ..Default::default()
            }),
        ),
        event(
            4,
            "auth",
            Body::Commendation(pb::Commendation {
                honoree_org_id: "d-hidden".into(),
                year: 2025,
                decision_ref: "QĐ-77/UBND".into(),
                reason: format!("Tặng bằng khen cho bà {HIDDEN}"),
            }),
        ),
    ];
    let mut model = Model::new();
    for (seq, event) in events.into_iter().enumerate() {
        let event = event_from_pb(event).expect("a well-formed event");
        let at = Timestamp {
            seconds: 1_740_000_000 + seq as i64,
            nanos: 0,
        };
        model
            .apply(seq as u64, at, event)
            .expect("the model takes it");
    }
    model
}

#[tokio::test]
async fn a_hidden_donor_is_named_nowhere_even_where_an_agency_wrote_the_name() {
    let shared = Shared::new(model());
    let app = router(Feed::new(
        Arc::new(MemStore::new()),
        shared,
        FeedOptions::default(),
    ));
    let mut swept = 0;
    for path in [
        "/",
        "/en",
        "/donors",
        "/en/donors",
        "/donors/d-hidden",
        "/en/donors/d-hidden",
        "/commendations",
        "/en/commendations",
        "/pledges",
        "/balances",
        "/receipts/pt-1",
        "/en/receipts/pt-1",
        "/api/v1/donors",
        "/api/v1/donors/d-hidden",
        "/api/v1/receipts/pt-1",
        "/api/v1/balances",
        "/api/v1/pledges",
        "/exports/receipts.csv",
        "/exports/transfers.csv",
        "/exports/iati-activities.xml",
    ] {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            !body.contains(HIDDEN),
            "{path} names the hidden donor:\n{body}"
        );
        assert!(
            !body.contains("QĐ-77"),
            "{path} shows the decision that names them"
        );
        swept += 1;
    }
    assert_eq!(swept, 20);
    // The donor and the commendation are there, unnamed.
    let donors = app
        .oneshot(Request::get("/api/v1/donors").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let donors: serde_json::Value =
        serde_json::from_slice(&donors.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let row = &donors["items"][0];
    assert_eq!(row["donor"]["anonymous"], true);
    assert_eq!(row["donor"]["name"], serde_json::Value::Null);
    assert_eq!(row["commendations"][0]["year"], 2025);
    assert_eq!(row["total_vnd"], 5_000_000);
}

async fn post(
    app: &axum::Router,
    path: &str,
    content_type: &str,
    body: String,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app
        .clone()
        .oneshot(
            Request::post(path)
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_reference_is_looked_up_from_the_body_and_never_echoed_or_cached() {
    let app = router(Feed::new(
        Arc::new(MemStore::new()),
        Shared::new(model()),
        FeedOptions {
            ref_key: Some(ref_key()),
            ..FeedOptions::default()
        },
    ));
    // SPEC §9.3, as the donor typed it: normalised before it is keyed.
    let (status, headers, body) = post(
        &app,
        "/api/v1/receipts/lookup",
        "application/json",
        r#"{"reference": " ft25 0771 2345 6789 "}"#.into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["receipt_ids"], serde_json::json!(["pt-1"]));
    assert!(!body.contains("FT25") && !body.contains("ft25"), "{body}");
    // Unknown, malformed and oversized look-ups: clear errors that never
    // repeat what was sent, and never cached.
    for (body, expected) in [
        (
            r#"{"reference": "FT25077000000000"}"#.to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            r#"{"reference": "   "}"#.to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"ref": "FT25077000000000"}"#.to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"["FT25077000000000"]"#.to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!(r#"{{"reference": "FT25077{}"}}"#, "0".repeat(2000)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let (status, headers, answer) = post(
            &app,
            "/api/v1/receipts/lookup",
            "application/json",
            body.clone(),
        )
        .await;
        assert_eq!(status, expected, "{body}: {answer}");
        assert!(!answer.contains("FT25077"), "{body} echoed: {answer}");
        if status != StatusCode::PAYLOAD_TOO_LARGE {
            assert_eq!(headers["cache-control"], "no-store", "{body}");
        }
    }
    // The page's form: one match redirects to the receipt; the reference is
    // nowhere in the answer.
    let (status, headers, _) = post(
        &app,
        "/en/verify",
        "application/x-www-form-urlencoded",
        format!("reference={REFERENCE}"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/en/receipts/pt-1");
    assert_eq!(headers["cache-control"], "no-store");
    let (status, _, page) = post(
        &app,
        "/verify",
        "application/x-www-form-urlencoded",
        "reference=FT25077000000000".into(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains("FT25077"), "the page repeats the reference");
    // The reference never goes in a URL: a query string is not read.
    let response = app
        .clone()
        .oneshot(
            Request::get(format!("/api/v1/receipts/lookup?reference={REFERENCE}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_feed_without_the_reference_key_offers_no_look_up_and_says_so() {
    let app = router(Feed::new(
        Arc::new(MemStore::new()),
        Shared::new(model()),
        FeedOptions::default(),
    ));
    let (status, headers, body) = post(
        &app,
        "/api/v1/receipts/lookup",
        "application/json",
        format!(r#"{{"reference": "{REFERENCE}"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["cache-control"], "no-store");
    assert!(body.contains("no reference key"), "{body}");
    for (path, says) in [
        ("/verify", "không giữ khóa tra cứu"),
        ("/en/verify", "holds no look-up key"),
    ] {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let page = response.into_body().collect().await.unwrap().to_bytes();
        let page = String::from_utf8(page.to_vec()).unwrap();
        assert!(page.contains(says), "{path} does not say it");
        assert!(
            !page.contains("name=\"reference\""),
            "{path} offers the form"
        );
    }
}
