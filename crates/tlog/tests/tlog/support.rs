//! Shared helpers: locating the shared test data, a naive RFC 9162 tree head,
//! a seeded generator, and an in-memory `HashReader`.

use std::path::{Path, PathBuf};

use aidledger_tlog::{Hash, HashReader, tlog_tiles};
use sha2::{Digest, Sha256};

/// `shared/testdata`, a sibling of the repository root: the workspace is at
/// `X/main` (crate at `X/main/crates/tlog`) and the shared folder at
/// `X/shared`. Panics if it is missing, so a broken checkout never passes.
pub fn testdata_dir() -> PathBuf {
    // Cargo's variable when the test runs, not the one baked in when it was
    // built: a target folder shared by two checkouts (CI's clean clone) may
    // reuse a test binary built in the other one.
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let dir = crate_dir.join("../../../shared/testdata");
    assert!(
        dir.is_dir(),
        "test data folder {} is missing: these tests need the shared test vectors",
        dir.display()
    );
    dir
}

/// Every `*.json` file under `dir`, recursively, sorted.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// RFC 9162 2.1.1 MTH, written recursively from the definition and sharing no
/// code with the crate.
pub fn naive_root(leaf_data: &[Vec<u8>]) -> Hash {
    fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
        match leaves.len() {
            0 => sha256(&[]),
            1 => sha256(&[&[0x00], &leaves[0]]),
            n => {
                let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
                sha256(&[&[0x01], &mth(&leaves[..k]), &mth(&leaves[k..])])
            }
        }
    }
    Hash(mth(leaf_data))
}

/// SplitMix64: a tiny seeded generator, so each randomized case is
/// reproducible from the seed proptest prints.
#[derive(Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough value in `lo..=hi`.
    pub fn in_range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi);
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn hash(&mut self) -> Hash {
        let mut bytes = [0; 32];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        Hash(bytes)
    }
}

/// Stored hashes in one vector, indexed by `stored_hash_index`.
#[derive(Debug, Default)]
pub struct MemoryHashes(pub Vec<Hash>);

impl HashReader for MemoryHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&index| {
                usize::try_from(index)
                    .ok()
                    .and_then(|index| self.0.get(index).copied())
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}
