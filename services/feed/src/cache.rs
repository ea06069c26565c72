//! Answers cached per model revision, so that a page costs its computation
//! once per change of the model rather than once per reader.
//!
//! A page is a function of the read models, its URL and the host asked: while the model
//! is unchanged ([`Shared::revision`]), the same URL gets the same bytes, so
//! they are kept and served again. When the model moves on, the first
//! request for a URL recomputes it; readers who ask meanwhile get the
//! previous answer at once rather than queueing behind the computation.
//! That answer says which log position it shows (every page and API answer
//! carries its `as_of`), so a reader may see a page one recomputation old,
//! never a page that claims a position it does not show. With nothing
//! cached yet, readers wait for the one computation under way.
//!
//! Only whole `200` answers of known length up to [`ANSWER_BYTES_MAX`] are
//! kept, at most [`CACHE_BYTES_MAX`] in all (bodies, headers, keys and a
//! fixed cost per entry), least recently used first out. A URL whose
//! answer is not kept (too big, not found) is dropped from the cache, and
//! requests woken after its computation compute their own rather than
//! queueing one behind another. URLs longer than [`URL_BYTES_MAX`] and the
//! verification form are not cached: a URL is chosen by the client, and a
//! bank reference typed into a form's URL by mistake must not be held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aidledger_projector::Shared;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

/// Largest answer kept (a CSV export of a big log is computed each time).
pub const ANSWER_BYTES_MAX: usize = 4 << 20;
/// All answers kept, together.
pub const CACHE_BYTES_MAX: usize = 64 << 20;
/// Longest host and URL kept.
pub const URL_BYTES_MAX: usize = 512;
/// What an entry costs besides its body, headers and key (the slot, the
/// map's share), counted so that many small answers stay bounded too.
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// The answers, by host and URL (path and query).
#[derive(Debug)]
pub struct AnswerCache {
    shared: Arc<Shared>,
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    by_url: HashMap<String, Slot>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Slot {
    answer: Option<Answer>,
    /// Set while one request recomputes this URL; woken when it is done.
    computing: Option<Arc<Notify>>,
    last_used: Option<Instant>,
}

#[derive(Clone, Debug)]
struct Answer {
    revision: u64,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// What keeping it costs, its key aside.
    fn cost(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        self.body.len() + headers + ENTRY_OVERHEAD_BYTES
    }

    fn response(&self) -> Response {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

/// What a request found.
enum Found {
    /// Served from the cache (current, or the previous while another
    /// request recomputes).
    Served(Response),
    /// Wait for the computation under way, then look again.
    Wait(Arc<Notify>),
    /// This request computes.
    Compute,
}

impl AnswerCache {
    pub fn new(shared: Arc<Shared>) -> Arc<AnswerCache> {
        Arc::new(AnswerCache {
            shared,
            slots: Mutex::new(Slots::default()),
        })
    }

    fn find(&self, url: &str, revision: u64) -> Found {
        let mut slots = self.slots.lock().expect("cache lock");
        let slot = slots.by_url.entry(url.to_owned()).or_default();
        slot.last_used = Some(Instant::now());
        match (&slot.answer, &slot.computing) {
            (Some(answer), _) if answer.revision == revision => {
                metrics::counter!("aidledger_feed_cache_total", "result" => "hit").increment(1);
                Found::Served(answer.response())
            }
            (Some(answer), Some(_)) => {
                metrics::counter!("aidledger_feed_cache_total", "result" => "previous")
                    .increment(1);
                Found::Served(answer.response())
            }
            (None, Some(computing)) => Found::Wait(Arc::clone(computing)),
            (_, None) => {
                metrics::counter!("aidledger_feed_cache_total", "result" => "miss").increment(1);
                slot.computing = Some(Arc::new(Notify::new()));
                Found::Compute
            }
        }
    }

    /// Ends this request's computation of `url`, keeping `answer`, and
    /// wakes the requests waiting for it. With no answer to keep (too big,
    /// not found, the computation abandoned), the URL leaves the cache, its
    /// previous answer with it: an answer that can no longer be renewed
    /// must not be served on.
    fn finish(&self, url: &str, answer: Option<Answer>) {
        let mut slots = self.slots.lock().expect("cache lock");
        let Slots { by_url, bytes } = &mut *slots;
        let Some(slot) = by_url.get_mut(url) else {
            return;
        };
        if let Some(computing) = slot.computing.take() {
            computing.notify_waiters();
        }
        if let Some(old) = slot.answer.take() {
            *bytes -= old.cost() + url.len();
        }
        match answer {
            Some(answer) => {
                *bytes += answer.cost() + url.len();
                slot.answer = Some(answer);
            }
            None => {
                by_url.remove(url);
            }
        }
        if slots.bytes > CACHE_BYTES_MAX {
            slots.evict();
        }
    }
}

impl Slots {
    /// Drops the least recently used answers until a tenth of the budget
    /// is free: one sort serves many inserts.
    fn evict(&mut self) {
        let mut idle: Vec<(Option<Instant>, String)> = self
            .by_url
            .iter()
            .filter(|(_, slot)| slot.computing.is_none() && slot.answer.is_some())
            .map(|(url, slot)| (slot.last_used, url.clone()))
            .collect();
        idle.sort_unstable();
        for (_, url) in idle {
            if self.bytes <= CACHE_BYTES_MAX / 10 * 9 {
                break;
            }
            if let Some(slot) = self.by_url.remove(&url) {
                self.bytes -= slot.answer.map_or(0, |a| a.cost() + url.len());
            }
        }
    }
}

/// Clears a computation that did not finish (the client went away, the
/// handler panicked), so that waiting requests do not wait forever.
struct Computing<'a> {
    cache: &'a AnswerCache,
    url: &'a str,
    done: bool,
}

impl Drop for Computing<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.cache.finish(self.url, None);
        }
    }
}

/// The middleware: serves GET requests from the cache, computing each URL
/// once per model revision.
pub async fn cached(
    State(cache): State<Arc<AnswerCache>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    // The Host too: without a configured public URL, a receipt's QR code
    // names the host it was asked from.
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or_default();
    let url = format!("{host} {}", request.uri());
    let path = request.uri().path();
    if url.len() > URL_BYTES_MAX || path == "/verify" || path == "/en/verify" {
        return next.run(request).await;
    }
    loop {
        // Read before the model, so the answer is never labelled newer
        // than what it shows.
        let revision = cache.shared.revision();
        match cache.find(&url, revision) {
            Found::Served(response) => return response,
            Found::Wait(computing) => {
                let notified = computing.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // It may have finished between the look and the enable.
                if cache
                    .slots
                    .lock()
                    .expect("cache lock")
                    .by_url
                    .get(&url)
                    .is_some_and(|slot| {
                        slot.computing
                            .as_ref()
                            .is_some_and(|c| Arc::ptr_eq(c, &computing))
                    })
                {
                    notified.await;
                }
                // It left nothing to share (too big, not found): compute
                // alongside the others rather than one after another.
                let shared = cache
                    .slots
                    .lock()
                    .expect("cache lock")
                    .by_url
                    .get(&url)
                    .is_some_and(|slot| slot.answer.is_some() || slot.computing.is_some());
                if !shared {
                    return next.run(request).await;
                }
            }
            Found::Compute => {
                let mut guard = Computing {
                    cache: &cache,
                    url: &url,
                    done: false,
                };
                let response = next.run(request).await;
                let (response, answer) = keep(response, revision).await;
                guard.done = true;
                cache.finish(&url, answer);
                return response;
            }
        }
    }
}

/// The response to send, and the answer to keep if it is worth keeping.
async fn keep(response: Response, revision: u64) -> (Response, Option<Answer>) {
    let length = response.body().size_hint().exact();
    if response.status() != StatusCode::OK
        || length.is_none_or(|length| length > ANSWER_BYTES_MAX as u64)
    {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, ANSWER_BYTES_MAX).await {
        Ok(body) => {
            let answer = Answer {
                revision,
                status: parts.status,
                headers: parts.headers,
                body,
            };
            (answer.response(), Some(answer))
        }
        Err(error) => (
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the answer: {error}"),
            )
                .into_response(),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use aidledger_projector::Model;
    use axum::Router;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tokio::sync::Semaphore;
    use tower::ServiceExt;

    use super::*;

    /// A page that counts its computations and, while `gate` has no
    /// permit, waits before answering.
    fn app(shared: &Arc<Shared>, computed: &Arc<AtomicUsize>, gate: &Arc<Semaphore>) -> Router {
        let (computed, gate) = (Arc::clone(computed), Arc::clone(gate));
        Router::new()
            .route(
                "/page",
                get(move || async move {
                    let count = computed.fetch_add(1, Ordering::SeqCst) + 1;
                    gate.acquire().await.unwrap().forget();
                    count.to_string()
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                AnswerCache::new(Arc::clone(shared)),
                cached,
            ))
    }

    async fn status_and_body(app: &Router) -> (StatusCode, String) {
        let request = axum::http::Request::get("/page")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn body(app: &Router) -> String {
        let request = axum::http::Request::get("/page")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_page_is_computed_once_per_model_revision() {
        let shared = Shared::new(Model::new());
        let computed = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(100));
        let app = app(&shared, &computed, &gate);
        assert_eq!(body(&app).await, "1");
        assert_eq!(body(&app).await, "1", "the model did not change");
        drop(shared.write());
        assert_eq!(body(&app).await, "2", "the model changed");
        assert_eq!(body(&app).await, "2");
        assert_eq!(computed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn readers_get_the_previous_answer_while_one_recomputes_and_wait_for_the_first() {
        let shared = Shared::new(Model::new());
        let computed = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let app = app(&shared, &computed, &gate);

        // Nothing cached: the first reader computes, the second waits for
        // it rather than computing too (it would count 2 on its first poll).
        let first = tokio::spawn({
            let app = app.clone();
            async move { body(&app).await }
        });
        while computed.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let app = app.clone();
            async move { body(&app).await }
        });
        let waited = tokio::time::timeout(Duration::from_millis(20), async {
            while !second.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(
            waited.is_err(),
            "the second reader was answered before the first"
        );
        assert_eq!(
            computed.load(Ordering::SeqCst),
            1,
            "the second reader computed"
        );
        gate.add_permits(1);
        assert_eq!(first.await.unwrap(), "1");
        assert_eq!(second.await.unwrap(), "1");

        // The model changes: one reader recomputes, and meanwhile another
        // gets the previous answer at once.
        drop(shared.write());
        let recomputing = tokio::spawn({
            let app = app.clone();
            async move { body(&app).await }
        });
        while computed.load(Ordering::SeqCst) == 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            body(&app).await,
            "1",
            "the previous answer, without waiting"
        );
        gate.add_permits(1);
        assert_eq!(recomputing.await.unwrap(), "2");
        assert_eq!(body(&app).await, "2");
        assert_eq!(computed.load(Ordering::SeqCst), 2);
    }

    /// An answer that can no longer be renewed (its recomputation gave
    /// nothing to keep) is not served on to readers who come while it is
    /// computed again.
    #[tokio::test]
    async fn an_answer_whose_recomputation_is_not_kept_is_dropped() {
        let shared = Shared::new(Model::new());
        let computed = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let (counter, entry) = (Arc::clone(&computed), Arc::clone(&gate));
        let app = Router::new()
            .route(
                "/page",
                get(move || async move {
                    let count = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    if count >= 2 {
                        entry.acquire().await.unwrap().forget();
                    }
                    if count == 2 {
                        (StatusCode::NOT_FOUND, "gone".to_owned())
                    } else {
                        (StatusCode::OK, count.to_string())
                    }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                AnswerCache::new(Arc::clone(&shared)),
                cached,
            ));
        let spawn = |app: &Router| {
            let app = app.clone();
            tokio::spawn(async move { status_and_body(&app).await })
        };
        let computed_at_least = |n: usize| {
            let computed = Arc::clone(&computed);
            async move {
                while computed.load(Ordering::SeqCst) < n {
                    tokio::task::yield_now().await;
                }
            }
        };
        assert_eq!(status_and_body(&app).await, (StatusCode::OK, "1".into()));

        // The model changes; its recomputation finds nothing to keep. A
        // reader meanwhile gets the previous answer, as it could not know.
        drop(shared.write());
        let gone = spawn(&app);
        computed_at_least(2).await;
        assert_eq!(status_and_body(&app).await, (StatusCode::OK, "1".into()));
        gate.add_permits(1);
        assert_eq!(gone.await.unwrap(), (StatusCode::NOT_FOUND, "gone".into()));

        // Computed again: a reader meanwhile waits, it is not handed the
        // answer from before.
        let third = spawn(&app);
        computed_at_least(3).await;
        let waiting = spawn(&app);
        let served = tokio::time::timeout(Duration::from_millis(20), async {
            while !waiting.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(served.is_err(), "served the answer from before the change");
        assert_eq!(computed.load(Ordering::SeqCst), 3);
        gate.add_permits(1);
        assert_eq!(third.await.unwrap(), (StatusCode::OK, "3".into()));
        assert_eq!(waiting.await.unwrap(), (StatusCode::OK, "3".into()));
    }
}
