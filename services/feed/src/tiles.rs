//! The log itself as C2SP tlog-tiles (`/checkpoint`, `/tile/<L>/<N>[.p/<W>]`,
//! `/tile/entries/<N>[.p/<W>]`), read straight from the ledger's store, so
//! standard transparency-log clients, the auditor toolkit and any CDN can
//! fetch and verify the log over plain HTTP.
//!
//! Only what the latest signed checkpoint covers is served: a tile is
//! available once the checkpoint's tree contains all of it, so every byte
//! served can be verified against a published checkpoint.

use std::sync::Arc;

use aidledger_store::LogStore;
use aidledger_tlog::add_signature_lines;
use aidledger_tlog::tiles::{TILE_HEIGHT, TILE_WIDTH, entry_bundle, parse_tile_path};
use aidledger_tlog::tlog_tiles::{self, Hash, HashReader, Tile};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Full tiles never change: cache them for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Partial tiles are replaced by wider ones as the log grows.
const PARTIAL: &str = "public, max-age=60";
/// The checkpoint changes every time the ledger signs one.
const CHECKPOINT: &str = "no-cache";

/// The tile routes over `store`.
pub fn tiles_router(store: Arc<dyn LogStore>) -> Router {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .with_state(store)
}

/// Why a request gets no tile.
#[derive(Debug)]
pub(crate) enum Refusal {
    BadPath(String),
    NotYet(String),
    Store(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BadPath(detail) | Refusal::NotYet(detail) | Refusal::Store(detail) => {
                f.write_str(detail)
            }
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, detail) = match self {
            Refusal::BadPath(detail) => (StatusCode::BAD_REQUEST, detail),
            Refusal::NotYet(detail) => (StatusCode::NOT_FOUND, detail),
            Refusal::Store(detail) => (StatusCode::INTERNAL_SERVER_ERROR, detail),
        };
        (status, [(header::CACHE_CONTROL, "no-store")], detail).into_response()
    }
}

pub(crate) fn store_error(error: impl std::fmt::Display) -> Refusal {
    tracing::error!(%error, "reading the store for the feed");
    Refusal::Store(format!("the ledger's store failed: {error}"))
}

/// The latest checkpoint, with its witness cosignatures.
async fn checkpoint(State(store): State<Arc<dyn LogStore>>) -> Result<Response, Refusal> {
    let note = tokio::task::spawn_blocking(move || latest_note(store.as_ref()))
        .await
        .map_err(store_error)??;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, CHECKPOINT),
        ],
        note,
    )
        .into_response())
}

pub(crate) fn latest_note(store: &dyn LogStore) -> Result<String, Refusal> {
    let (size, note) = store
        .latest_checkpoint()
        .map_err(store_error)?
        .ok_or_else(|| Refusal::NotYet("the ledger has signed no checkpoint yet".into()))?;
    let lines = store.cosignatures(size).map_err(store_error)?;
    Ok(add_signature_lines(
        &note,
        lines.iter().map(|(_, line)| line.as_str()),
    ))
}

async fn tile(
    State(store): State<Arc<dyn LogStore>>,
    Path(path): Path<String>,
) -> Result<Response, Refusal> {
    let tile = parse_tile_path(&path).map_err(|e| Refusal::BadPath(e.to_string()))?;
    let full = u64::from(tile.width()) == TILE_WIDTH;
    let body = tokio::task::spawn_blocking(move || read_tile(store.as_ref(), tile))
        .await
        .map_err(store_error)??;
    let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if full { IMMUTABLE } else { PARTIAL }),
    );
    Ok(response)
}

/// The tile's bytes, if the latest checkpoint's tree covers all of it.
fn read_tile(store: &dyn LogStore, tile: Tile) -> Result<Vec<u8>, Refusal> {
    let size = store
        .latest_checkpoint()
        .map_err(store_error)?
        .map_or(0, |(size, _)| size);
    read_covered_tile(store, tile, size)
}

/// The bytes of the tile at `path` (`tile/...`), if a tree of `size`
/// entries covers all of it: for writing the tiles as files.
pub(crate) fn read_tile_path(
    store: &dyn LogStore,
    path: &str,
    size: u64,
) -> Result<Vec<u8>, Refusal> {
    let relative = path
        .strip_prefix("tile/")
        .ok_or_else(|| Refusal::BadPath(format!("{path} is not a tile path")))?;
    let tile = parse_tile_path(relative).map_err(|e| Refusal::BadPath(e.to_string()))?;
    read_covered_tile(store, tile, size)
}

fn read_covered_tile(store: &dyn LogStore, tile: Tile, size: u64) -> Result<Vec<u8>, Refusal> {
    // How many nodes (entries at level 0) of the tile's level the
    // checkpoint's tree has complete.
    let level_bits = u32::from(tile.level()) * u32::from(TILE_HEIGHT);
    let available = size.checked_shr(level_bits).unwrap_or(0);
    // An index of 2^56 or more names a tile no tree can have; shifting it
    // would wrap around to tile 0.
    let Some(first) = tile.level_index().checked_mul(1 << TILE_HEIGHT) else {
        return Err(Refusal::NotYet(format!(
            "no tree of size {size} has this tile"
        )));
    };
    let end = first.saturating_add(u64::from(tile.width()));
    if end > available {
        return Err(Refusal::NotYet(format!(
            "the latest checkpoint (tree size {size}) does not cover this tile yet"
        )));
    }
    if tile.is_data() {
        return read_entry_bundle(store, first, end);
    }
    tile.read_data(&StoreHashes(store))
        .map_err(|e| store_error(format!("reading tile hashes: {e}")))
}

/// The entry bundle of entries `first..end`.
fn read_entry_bundle(store: &dyn LogStore, first: u64, end: u64) -> Result<Vec<u8>, Refusal> {
    let count = usize::try_from(end - first).expect("at most 256 entries");
    let entries = store.entries(first, count).map_err(store_error)?;
    if entries.len() != count {
        return Err(store_error(format!(
            "entries {first}..{end} are covered by a checkpoint but {} were read",
            entries.len()
        )));
    }
    entry_bundle(entries.iter().map(|(_, entry)| entry.as_slice()))
        .map_err(|e| store_error(format!("entries {first}..{end}: {e}")))
}

/// The store's Merkle stored hashes, for `tlog_tiles`.
pub(crate) struct StoreHashes<'a>(pub(crate) &'a dyn LogStore);

impl HashReader for StoreHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let hashes = self
            .0
            .read_hashes(indexes)
            .map_err(|e| tlog_tiles::Error::InvalidInput(e.to_string()))?;
        Ok(hashes.into_iter().map(Hash).collect())
    }
}

#[cfg(test)]
mod tests;
