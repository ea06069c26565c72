//! The JSON API under `/api/v1`, described by `/api/v1/openapi.json`.
//!
//! Answers are the same views the pages render, so the API and the pages
//! never disagree and the privacy rules hold for both. Errors are
//! `{"error": "..."}` with 400 or 404.

use std::sync::Arc;

use aidledger_projector::read::QueryError;
use aidledger_tlog::{LogVerifier, prove_inclusion};
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::tiles::StoreHashes;
use crate::views;
use crate::{EXCESS_PERCENT, Feed};

const OPENAPI: &str = include_str!("../openapi.json");

/// SPEC §9.3: the look-up body is "JSON, at most 1 KiB".
pub const LOOKUP_BODY_BYTES_MAX: usize = 1024;

type AppState = Arc<Feed>;

pub fn router(feed: Arc<Feed>) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/overview", get(overview))
        .route("/api/v1/communes", get(communes))
        .route("/api/v1/communes/{code}", get(commune))
        .route("/api/v1/donors", get(donors))
        .route("/api/v1/donors/{org_id}", get(donor))
        .route("/api/v1/pledges", get(pledges))
        .route("/api/v1/balances", get(balances))
        .route("/api/v1/transfers", get(transfers))
        .route("/api/v1/deliveries", get(deliveries))
        .route("/api/v1/overlaps", get(overlaps))
        .route("/api/v1/overlaps/{finding}", get(overlap_finding))
        .route(
            "/api/v1/receipts/lookup",
            post(lookup).layer(DefaultBodyLimit::max(LOOKUP_BODY_BYTES_MAX)),
        )
        .route("/api/v1/receipts/{receipt_id}", get(receipt))
        .route("/api/v1/receipts/{receipt_id}/proof", get(proof))
        .route("/api/v1/checkpoint", get(checkpoint))
        .with_state(feed)
}

/// An API error: a status and a sentence.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
        }
        (self.0, Json(Body { error: self.1 })).into_response()
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, m),
            QueryError::InvalidArgument(m) => ApiError(StatusCode::BAD_REQUEST, m),
        }
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn overview(State(feed): State<AppState>) -> Json<views::Overview> {
    Json(feed.overview().as_ref().clone())
}

#[derive(Debug, Deserialize)]
struct YearQuery {
    #[serde(default)]
    year: u32,
}

/// A list with the position it reflects.
#[derive(Serialize)]
struct Listed<T> {
    as_of: views::AsOf,
    items: Vec<T>,
}

async fn communes(
    State(feed): State<AppState>,
    Query(q): Query<YearQuery>,
) -> ApiResult<Listed<views::CommuneRow>> {
    let model = feed.model();
    Ok(Json(Listed {
        items: views::communes(&model, q.year),
        as_of: views::AsOf::of(&model),
    }))
}

async fn commune(
    State(feed): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<YearQuery>,
) -> ApiResult<views::CommuneDetail> {
    Ok(Json(views::commune(&feed.model(), &code, q.year)?))
}

async fn donors(
    State(feed): State<AppState>,
    Query(q): Query<YearQuery>,
) -> ApiResult<Listed<views::DonorRow>> {
    let model = feed.model();
    Ok(Json(Listed {
        items: views::donors(&model, q.year),
        as_of: views::AsOf::of(&model),
    }))
}

#[derive(Debug, Deserialize)]
struct AfterQuery {
    after: Option<u64>,
}

async fn donor(
    State(feed): State<AppState>,
    Path(org_id): Path<String>,
    Query(q): Query<AfterQuery>,
) -> ApiResult<views::DonorDetail> {
    Ok(Json(views::donor(&feed.model(), &org_id, q.after)?))
}

async fn pledges(State(feed): State<AppState>) -> ApiResult<Listed<views::PledgeRow>> {
    let model = feed.model();
    Ok(Json(Listed {
        items: views::pledges(&model),
        as_of: views::AsOf::of(&model),
    }))
}

async fn balances(State(feed): State<AppState>) -> ApiResult<views::Balances> {
    Ok(Json(views::balances(&feed.model())))
}

// Transfers and deliveries grow with the log: a page at a time, by seq.
async fn transfers(
    State(feed): State<AppState>,
    Query(q): Query<AfterQuery>,
) -> Json<views::ListPage<views::TransferRow>> {
    Json(views::transfers_page(&feed.model(), q.after))
}

async fn deliveries(
    State(feed): State<AppState>,
    Query(q): Query<AfterQuery>,
) -> Json<views::ListPage<views::DeliveryRow>> {
    Json(views::deliveries_page(&feed.model(), q.after))
}

#[derive(Debug, Deserialize)]
struct AfterFindingQuery {
    after: Option<String>,
}

async fn overlaps(
    State(feed): State<AppState>,
    Query(q): Query<AfterFindingQuery>,
) -> ApiResult<views::Overlaps> {
    Ok(Json(views::overlaps(
        &feed.model(),
        EXCESS_PERCENT,
        q.after.as_deref(),
    )))
}

async fn overlap_finding(
    State(feed): State<AppState>,
    Path(finding): Path<String>,
    Query(q): Query<AfterQuery>,
) -> ApiResult<views::OverlapEvents> {
    Ok(Json(views::overlap_events(
        &feed.model(),
        &finding,
        q.after,
    )?))
}

/// The answer to a look-up by reference.
#[derive(Serialize)]
struct LookedUp {
    as_of: views::AsOf,
    receipt_ids: Vec<String>,
    items: Vec<views::ReceiptRow>,
}

/// SPEC §9.3 `POST /api/v1/receipts/lookup`: `{"reference": "..."}` in the
/// body, never in a URL. The reference is not logged, not kept and not
/// echoed in an error, and no answer may be cached.
async fn lookup(State(feed): State<AppState>, body: axum::body::Bytes) -> Response {
    let answer = (|| {
        if !feed.offers_reference_lookup() {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "this feed holds no reference key, so it offers no look-up by reference; look the receipt up by its id".into(),
            ));
        }
        // Exactly one member, a string. serde's messages can quote the input,
        // so the error says what is expected instead.
        let malformed = || {
            ApiError(
                StatusCode::BAD_REQUEST,
                "the body must be the JSON object {\"reference\": \"<your bank transfer reference>\"}".into(),
            )
        };
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&body).map_err(|_| malformed())?;
        let reference = match object.remove("reference") {
            Some(serde_json::Value::String(reference)) if object.is_empty() => reference,
            _ => return Err(malformed()),
        };
        if reference.trim().is_empty() {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "the reference is empty".into(),
            ));
        }
        let model = feed.model();
        let items = feed
            .lookup_reference(&model, &reference)
            .unwrap_or_default();
        // The count only: the reference is never logged (SPEC §9.3).
        tracing::debug!(found = items.len(), "receipt look-up by reference");
        if items.is_empty() {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "no receipt carries this reference yet; if you have just given, the receiving agency may not have recorded it".into(),
            ));
        }
        Ok(Json(LookedUp {
            as_of: views::AsOf::of(&model),
            receipt_ids: items.iter().map(|row| row.receipt_id.clone()).collect(),
            items,
        }))
    })();
    let mut response = match answer {
        Ok(json) => json.into_response(),
        Err(error) => error.into_response(),
    };
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

async fn receipt(
    State(feed): State<AppState>,
    Path(receipt_id): Path<String>,
) -> ApiResult<views::ReceiptTrace> {
    Ok(Json(views::trace(&feed.model(), &receipt_id)?))
}

/// What a browser needs to check, on its own, that a receipt's entry is in
/// the log the ledger signed.
#[derive(Debug, Serialize)]
pub struct ReceiptProof {
    pub receipt_id: String,
    pub seq: u64,
    /// The entry's bytes (SPEC §4 `LedgerEntry`), base64.
    pub entry: String,
    /// `SHA-256(0x00 || entry)`, hex.
    pub leaf_hash: String,
    /// The size of the checkpoint the proof is against.
    pub tree_size: u64,
    /// RFC 9162 inclusion proof, hex hashes.
    pub inclusion_proof: Vec<String>,
    /// The whole signed note of the checkpoint, with cosignatures.
    pub checkpoint: String,
    /// The ledger's verifier key the note is signed with.
    pub vkey: String,
}

async fn proof(
    State(feed): State<AppState>,
    Path(receipt_id): Path<String>,
) -> Result<Response, ApiError> {
    let seq = feed
        .model()
        .receipts
        .get(receipt_id.as_str())
        .map(|r| r.seq)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("receipt {receipt_id:?} does not exist"),
            )
        })?;
    let feed2 = Arc::clone(&feed);
    let proof = tokio::task::spawn_blocking(move || build_proof(&feed2, receipt_id, seq))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    // Valid until the next checkpoint, which the browser would prefer.
    Ok(([(header::CACHE_CONTROL, "no-cache")], Json(proof)).into_response())
}

fn build_proof(feed: &Feed, receipt_id: String, seq: u64) -> Result<ReceiptProof, ApiError> {
    let store = feed.store();
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "building a receipt proof");
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the ledger's store: {e}"),
        )
    };
    // The note (with cosignatures) and its size come from one read, so the
    // proof is against exactly the note served.
    let note = crate::tiles::latest_note(store).map_err(|e| internal(&e.to_string()))?;
    let tree_size = parse_note(&note, feed.vkey())
        .map_err(|e| internal(&e))?
        .size;
    if seq >= tree_size {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "receipt {receipt_id:?} (entry {seq}) is not covered by a signed checkpoint yet; \
                 try again in a few seconds"
            ),
        ));
    }
    let entry = store
        .entries(seq, 1)
        .map_err(|e| internal(&e))?
        .pop()
        .map(|(_, bytes)| bytes)
        .ok_or_else(|| internal(&format!("entry {seq} is missing")))?;
    let inclusion =
        prove_inclusion(seq, tree_size, &StoreHashes(store)).map_err(|e| internal(&e))?;
    Ok(ReceiptProof {
        receipt_id,
        seq,
        leaf_hash: hex::encode(aidledger_tlog::leaf_hash(&entry).0),
        entry: base64::engine::general_purpose::STANDARD.encode(&entry),
        tree_size,
        inclusion_proof: inclusion.iter().map(|h| hex::encode(h.0)).collect(),
        checkpoint: note,
        vkey: feed.vkey().to_owned(),
    })
}

/// A checkpoint note, read for display: who signed it and what it says.
#[derive(Debug, Clone, Serialize)]
pub struct NoteView {
    pub origin: String,
    pub size: u64,
    /// Hex root hash.
    pub root: String,
    pub signatures: Vec<SignatureLine>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignatureLine {
    pub name: String,
    /// Hex key id.
    pub key_id: String,
    /// Whether the key name and id are the ledger's own.
    pub is_ledger: bool,
}

/// Reads a checkpoint note the feed serves with `tlog`'s strict parsers:
/// the checkpoint as the ledger's key signed it, and every signer (the
/// ledger and its witnesses).
///
/// # Errors
///
/// The note does not verify against the ledger's key `vkey`. The feed
/// verified it when it followed the ledger, so this means its copy is
/// damaged.
pub fn parse_note(note: &str, vkey: &str) -> Result<NoteView, String> {
    let verifier = LogVerifier::from_vkey(vkey).map_err(|e| format!("the ledger's vkey: {e}"))?;
    let checkpoint = verifier
        .verify(note)
        .map_err(|e| format!("the stored checkpoint does not verify: {e}"))?;
    let signatures = aidledger_tlog::note_signers(note)
        .map_err(|e| format!("the stored checkpoint: {e}"))?
        .into_iter()
        .map(|signer| SignatureLine {
            is_ledger: signer.name == verifier.origin() && signer.key_id == verifier.key_id(),
            key_id: format!("{:08x}", signer.key_id),
            name: signer.name,
        })
        .collect();
    Ok(NoteView {
        origin: checkpoint.origin,
        size: checkpoint.size,
        root: hex::encode(checkpoint.root.0),
        signatures,
        note: note.to_owned(),
    })
}

async fn checkpoint(State(feed): State<AppState>) -> Result<Json<NoteView>, ApiError> {
    let feed2 = Arc::clone(&feed);
    let note = tokio::task::spawn_blocking(move || crate::tiles::latest_note(feed2.store()))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    parse_note(&note, feed.vkey())
        .map(Json)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))
}
