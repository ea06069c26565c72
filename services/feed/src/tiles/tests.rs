//! A client that trusts nothing but the checkpoint rebuilds inclusion and
//! consistency proofs from the served tiles alone, and they verify.

use std::sync::Arc;

use aidledger_store::{AppendBatch, LogStore, MemStore, NewEntry};
use aidledger_tlog::ed25519::SecretKey;
use aidledger_tlog::tlog_tiles::{Error as TileError, Tile, TileHashReader, TileReader};
use aidledger_tlog::{
    Checkpoint, Hash, LogSigner, LogVerifier, TreeBuilder, leaf_hash, prove_consistency,
    prove_inclusion, verify_consistency, verify_inclusion,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

const ORIGIN: &str = "feed.test.example/log";

fn signer() -> LogSigner {
    LogSigner::new(ORIGIN, SecretKey::from_seed(&[5; 32])).unwrap()
}

fn entry(n: u64) -> Vec<u8> {
    // Varying lengths, to exercise the bundle framing.
    format!("entry {n} {}", "x".repeat((n % 40) as usize)).into_bytes()
}

/// A store of `size` entries with a signed checkpoint at each of `signed`.
fn log(size: u64, signed: &[u64]) -> (Arc<dyn LogStore>, Vec<Hash>) {
    let store = MemStore::new();
    let mut tree = TreeBuilder::new();
    let mut leaves = Vec::new();
    let mut hash_index = 0;
    for n in 0..size {
        let bytes = entry(n);
        let leaf = leaf_hash(&bytes);
        leaves.push(leaf);
        let hashes: Vec<[u8; 32]> = tree.push(leaf).into_iter().map(|h| h.0).collect();
        let count = hashes.len() as u64;
        store
            .append(&AppendBatch {
                first_seq: n,
                entries: vec![NewEntry {
                    bytes,
                    event_id: format!("e{n}"),
                }],
                first_hash_index: hash_index,
                hashes,
            })
            .unwrap();
        hash_index += count;
        if signed.contains(&(n + 1)) {
            let note = signer().sign(&Checkpoint {
                origin: ORIGIN.into(),
                size: n + 1,
                root: tree.root(),
            });
            store.put_checkpoint(n + 1, &note).unwrap();
        }
    }
    (Arc::new(store), leaves)
}

struct Http {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

impl Http {
    fn new(store: Arc<dyn LogStore>) -> Self {
        Http {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            router: tiles_router(store),
        }
    }

    fn get(&self, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, headers, body.to_vec())
        })
    }
}

/// Tiles fetched over the router, as a remote client would.
impl TileReader for Http {
    fn height(&self) -> u8 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileError> {
        tiles
            .iter()
            .map(|tile| {
                // sumdb's path with the height dropped is C2SP's.
                let path = tile
                    .path()
                    .replacen(&format!("tile/{TILE_HEIGHT}/"), "/tile/", 1);
                let (status, _, body) = self.get(&path);
                if status == StatusCode::OK {
                    Ok(body)
                } else {
                    Err(TileError::InvalidInput(format!("{path}: {status}")))
                }
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// Proofs from tiles alone, verified against the served checkpoint.
fn check_proofs_from_tiles(size: u64, signed: &[u64]) {
    let (store, leaves) = log(size, signed);
    let http = Http::new(store);
    let (status, headers, note) = http.get("/checkpoint");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    let verifier = LogVerifier::from_vkey(&signer().vkey()).unwrap();
    let checkpoint = verifier
        .verify(std::str::from_utf8(&note).unwrap())
        .unwrap();
    assert_eq!(checkpoint.size, size);

    let tiles = TileHashReader::new(checkpoint.size, checkpoint.root, &http);
    for index in [0, 1, size / 2, size - 1] {
        let proof = prove_inclusion(index, size, &tiles).unwrap();
        verify_inclusion(
            &leaves[index as usize],
            index,
            size,
            &proof,
            &checkpoint.root,
        )
        .unwrap();
    }
    // Consistency with an earlier checkpoint the client kept.
    let old = signed[0];
    let old_root = aidledger_tlog::tree_root(old, &tiles).unwrap();
    let proof = prove_consistency(old, size, &tiles).unwrap();
    verify_consistency(old, size, &old_root, &checkpoint.root, &proof).unwrap();

    // The entry bundles hold exactly the entries, each hashing to its leaf.
    let mut seq = 0;
    for n in 0..size.div_ceil(256) {
        let width = (size - n * 256).min(256);
        let path = if width == 256 {
            format!(
                "/tile/entries/{}",
                Tile::new(8, 0, n, 256, true)
                    .path()
                    .rsplit_once("data/")
                    .unwrap()
                    .1
            )
        } else {
            format!("/tile/entries/{:03}.p/{width}", n)
        };
        let (status, headers, bundle) = http.get(&path);
        assert_eq!(status, StatusCode::OK, "{path}");
        let cache = headers[header::CACHE_CONTROL].to_str().unwrap();
        assert_eq!(cache.contains("immutable"), width == 256, "{path}: {cache}");
        let mut rest = bundle.as_slice();
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            assert_eq!(leaf_hash(&rest[2..2 + len]), leaves[seq as usize]);
            rest = &rest[2 + len..];
            seq += 1;
        }
    }
    assert_eq!(seq, size);
}

#[test]
fn proofs_rebuilt_from_full_tiles_verify() {
    // 65,536 entries: full tiles at levels 0 and 1, a level-2 partial.
    check_proofs_from_tiles(65_536, &[1_000, 65_536]);
}

#[test]
fn proofs_rebuilt_from_partial_tiles_verify() {
    // A size that leaves partial tiles at every level.
    check_proofs_from_tiles(70_001, &[257, 70_001]);
}

#[test]
fn nothing_beyond_the_checkpoint_and_no_malformed_paths() {
    // 600 entries, but the latest checkpoint covers 300.
    let (store, _) = log(600, &[300]);
    let http = Http::new(store);
    assert_eq!(http.get("/tile/0/000").0, StatusCode::OK);
    assert_eq!(http.get("/tile/0/001.p/44").0, StatusCode::OK);
    // Entries 256..299 are covered; 256..300 is not.
    assert_eq!(http.get("/tile/entries/001.p/44").0, StatusCode::OK);
    assert_eq!(http.get("/tile/entries/001.p/45").0, StatusCode::NOT_FOUND);
    assert_eq!(http.get("/tile/0/001").0, StatusCode::NOT_FOUND);
    assert_eq!(http.get("/tile/1/000.p/2").0, StatusCode::NOT_FOUND);
    // 2^56: times 256 wraps to 0, and must not be served as tile 0.
    assert_eq!(
        http.get("/tile/0/x072/x057/x594/x037/x927/936").0,
        StatusCode::NOT_FOUND
    );
    for bad in [
        "/tile/0/1",
        "/tile/0/000.p/0",
        "/tile/0/000.p/256",
        "/tile/x/000",
        "/tile/entries/0001",
        "/tile/0/x000/001",
        "/tile/64/000",
        "/tile/255/000",
        "/tile/entries/000.p/",
        "/tile/entries",
    ] {
        assert_eq!(http.get(bad).0, StatusCode::BAD_REQUEST, "{bad}");
    }
    // No checkpoint yet: nothing at all.
    let (empty, _) = log(10, &[]);
    let http = Http::new(empty);
    assert_eq!(http.get("/checkpoint").0, StatusCode::NOT_FOUND);
    assert_eq!(http.get("/tile/entries/000.p/1").0, StatusCode::NOT_FOUND);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// Whatever path a client sends, the answer is a status, never a panic.
    #[test]
    fn any_tile_path_gets_an_answer(path in "[0-9x./pentris]{0,40}") {
        let path = path.trim_start_matches('/').to_owned();
        let parsed = parse_tile_path(&path);
        if let Ok(tile) = parsed {
            proptest::prop_assert!(tile.width() >= 1 && tile.level() < 64);
        }
    }
}
