//! The public transparency feed: the read-only HTTP side of aidledger.
//!
//! - web pages, server-rendered in Vietnamese (at `/`) and English (at
//!   `/en`), working without JavaScript except where a proof is verified in
//!   the browser ([`pages`]);
//! - a JSON API under `/api/v1` with an OpenAPI document ([`api`]);
//! - CSV exports, an Atom feed of new events and an IATI 2.03 export
//!   ([`exports`]);
//! - the log itself as C2SP tlog-tiles ([`tiles`]).
//!
//! Everything but the tiles is rendered from the projector's read model
//! and its typed answers (`aidledger_projector::read`), through [`views`],
//! where the privacy rules are applied once. The tiles and proofs are read
//! straight from the feed's verified copy of the log ([`replica`]).
//!
//! Boundary: no write routes at all; the store and the model are only read.

use std::sync::{Arc, Mutex, RwLockReadGuard};

use aidledger_ledger::privacy::RefKey;
use aidledger_projector::{Model, Shared};
use aidledger_store::LogStore;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::compression::CompressionLayer;

pub mod api;
pub mod cache;
pub mod exports;
mod lang;
pub mod pages;
pub mod replica;
pub mod static_tiles;
pub mod tiles;
pub mod views;

pub use lang::Lang;
pub use tiles::tiles_router;

/// Tolerance over a published need before deliveries count as exceeding it,
/// as the projector's default.
pub const EXCESS_PERCENT: u32 = 10;

/// What the feed reads: its copy of the log (tiles, proofs, checkpoints)
/// and the projector's read model (everything else).
pub struct Feed {
    store: Arc<dyn LogStore>,
    projections: Arc<Shared>,
    vkey: String,
    public_url: Option<String>,
    ref_key: Option<RefKey>,
    ready_lag_entries_max: u64,
    overview: Mutex<Option<Arc<views::Overview>>>,
}

/// What a feed publishes besides what it reads.
#[derive(Clone, Debug, Default)]
pub struct FeedOptions {
    /// The ledger's checkpoint key (C2SP vkey form), for verifiers.
    pub vkey: String,
    /// `https://host` (no trailing slash) printed in QR codes; without it,
    /// the address the reader asked for.
    pub public_url: Option<String>,
    /// SPEC §7.5 `K_ref`: with it the feed offers the look-up by bank
    /// reference (SPEC §9.3); without it, it does not.
    pub ref_key: Option<RefKey>,
    /// `/readyz` answers 503 while the feed is more entries than this
    /// behind the ledger's latest checkpoint (0: no bound), so a load
    /// balancer sends readers to replicas that are current.
    pub ready_lag_entries_max: u64,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("vkey", &self.vkey)
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// A feed over the ledger's `store` and the projector's model.
    pub fn new(
        store: Arc<dyn LogStore>,
        projections: Arc<Shared>,
        options: FeedOptions,
    ) -> Arc<Self> {
        Arc::new(Feed {
            store,
            projections,
            vkey: options.vkey,
            public_url: options
                .public_url
                .map(|url| url.trim_end_matches('/').to_owned()),
            ref_key: options.ref_key,
            ready_lag_entries_max: options.ready_lag_entries_max,
            overview: Mutex::new(None),
        })
    }

    /// Whether this feed offers the look-up by reference (it holds `K_ref`).
    pub fn offers_reference_lookup(&self) -> bool {
        self.ref_key.is_some()
    }

    /// SPEC §9.3: the receipts in `model` whose `external_ref_hash` is the
    /// keyed hash of `reference`; `None` without `K_ref`. The reference is
    /// hashed and dropped here: it is never logged, kept or put in a cache.
    pub fn lookup_reference(
        &self,
        model: &Model,
        reference: &str,
    ) -> Option<Vec<views::ReceiptRow>> {
        let hash = self.ref_key.as_ref()?.external_ref_hash(reference);
        Some(views::receipts_by_ref(model, &hash))
    }

    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    pub fn store(&self) -> &dyn LogStore {
        self.store.as_ref()
    }

    /// The read model, for one answer.
    pub fn model(&self) -> RwLockReadGuard<'_, Model> {
        self.projections.read()
    }

    /// The overview scans every receipt and delivery, so it is computed once
    /// per model position (entries applied and checkpoint cited: a
    /// checkpoint can be cited after its entries) and shared.
    pub fn overview(&self) -> Arc<views::Overview> {
        let model = self.model();
        let mut cached = self.overview.lock().expect("overview lock");
        let current = |overview: &views::Overview| {
            overview.as_of.size == model.position.size
                && overview.as_of.checkpoint_size
                    == model.position.checkpoint.as_ref().map(|c| c.size)
        };
        match cached.as_ref() {
            Some(overview) if current(overview) => Arc::clone(overview),
            _ => {
                let overview = Arc::new(views::Overview::of(&model));
                *cached = Some(Arc::clone(&overview));
                overview
            }
        }
    }
}

/// Every route of the feed: pages in both languages, the API, the exports
/// and the tiles.
pub fn router(feed: Arc<Feed>) -> Router {
    // Pages, JSON, CSV and XML shrink several times under gzip, which
    // matters on a phone in a mountain commune. Tiles are left as they are:
    // hashes do not compress, and CDNs cache them byte for byte.
    let answers = cache::AnswerCache::new(Arc::clone(&feed.projections));
    let documents = Router::new()
        .merge(pages::router(Arc::clone(&feed)))
        .merge(api::router(Arc::clone(&feed)))
        .merge(exports::router(Arc::clone(&feed)))
        .layer(middleware::from_fn_with_state(answers, cache::cached))
        .layer(CompressionLayer::new());
    Router::new()
        .route(
            "/healthz",
            axum::routing::get(healthz).with_state(Arc::clone(&feed)),
        )
        .route(
            "/readyz",
            axum::routing::get(readyz).with_state(Arc::clone(&feed)),
        )
        .merge(documents)
        .merge(tiles_router(Arc::clone(&feed.store)))
        .route_layer(middleware::from_fn(count_requests))
        .layer(middleware::from_fn(security_headers))
}

/// Prometheus metrics of every routed request, labelled by the route's
/// template (`/en/receipts/{receipt_id}`), never by the path a reader sent,
/// and by status: no id, no reference, no query reaches a label.
async fn count_requests(request: axum::extract::Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("aidledger_feed_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("aidledger_feed_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// For orchestrators (liveness): 200 while the projections follow the
/// ledger, 503 once following halted (a fork, a checkpoint that does not
/// verify); the feed still serves what it verified either way.
async fn healthz(axum::extract::State(feed): axum::extract::State<Arc<Feed>>) -> Response {
    health(&feed, false)
}

/// For load balancers (readiness): as `/healthz`, and 503 while the feed
/// is further behind the ledger's checkpoint than `ready_lag_entries_max`.
async fn readyz(axum::extract::State(feed): axum::extract::State<Arc<Feed>>) -> Response {
    health(&feed, true)
}

fn health(feed: &Feed, readiness: bool) -> Response {
    use axum::response::IntoResponse as _;
    let status = feed.projections.status();
    let (size, checkpoint) = {
        let model = feed.model();
        (
            model.position.size,
            model.position.checkpoint.as_ref().map(|c| c.size),
        )
    };
    let behind = status.ledger_size.saturating_sub(size);
    let lagging = feed.ready_lag_entries_max > 0 && behind > feed.ready_lag_entries_max;
    let body = serde_json::json!({
        "following": status.halted.is_none(),
        "halted": status.halted,
        "applied": size,
        "checkpoint_size": checkpoint,
        "ledger_size": status.ledger_size,
        "entries_behind": behind,
    });
    let code = if status.halted.is_none() && !(readiness && lagging) {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response()
}

/// No page loads anything from elsewhere: scripts, styles and images are
/// the feed's own, so a content security policy can say so.
async fn security_headers(request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Serves `router` on `listener` until `shutdown` completes.
///
/// # Errors
///
/// The server failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod paging_tests;

#[cfg(test)]
mod privacy_tests;

#[cfg(test)]
mod compression_tests {
    use aidledger_store::MemStore;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn documents_are_gzipped_for_clients_that_accept_it() {
        let feed = Feed::new(
            Arc::new(MemStore::new()),
            Shared::new(Model::new()),
            FeedOptions::default(),
        );
        let app = router(feed);
        let get = |path: &str, gzip: bool| {
            let mut request = Request::get(path);
            if gzip {
                request = request.header(header::ACCEPT_ENCODING, "gzip");
            }
            app.clone().oneshot(request.body(Body::empty()).unwrap())
        };
        let plain = get("/static/style.css", false).await.unwrap();
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let plain = plain.into_body().collect().await.unwrap().to_bytes();
        let zipped = get("/static/style.css", true).await.unwrap();
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        let zipped = zipped.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&zipped[..2], &[0x1f, 0x8b], "a gzip stream");
        assert!(
            zipped.len() * 2 < plain.len(),
            "{} vs {}",
            zipped.len(),
            plain.len()
        );
        // The security headers are on every answer.
        let page = get("/en", true).await.unwrap();
        assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }
}

#[cfg(test)]
mod overview_tests {
    use aidledger_projector::model::VerifiedCheckpoint;
    use aidledger_store::MemStore;

    use super::*;

    #[test]
    fn the_cached_overview_follows_a_checkpoint_cited_after_its_entries() {
        let shared = Shared::new(Model::new());
        let feed = Feed::new(
            Arc::new(MemStore::new()),
            Arc::clone(&shared),
            FeedOptions::default(),
        );
        assert_eq!(feed.overview().as_of.checkpoint_size, None);
        shared.write().position.checkpoint = Some(VerifiedCheckpoint {
            note: String::new(),
            size: 0,
            root: [0; 32],
        });
        assert_eq!(feed.overview().as_of.checkpoint_size, Some(0));
    }
}
