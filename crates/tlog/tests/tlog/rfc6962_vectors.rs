//! The transparency-dev/merkle proof vectors (`shared/testdata/rfc6962`):
//! every happy path verifies and every modified, garbage or wrong one is
//! rejected.

use std::path::Path;

use aidledger_tlog::{Hash, verify_consistency, verify_inclusion};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::support::{json_files, testdata_dir};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionVector {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    #[serde(rename = "wantErr")]
    want_err: bool,
}

/// Decodes a root or proof hash. The vectors treat these as opaque byte
/// strings (the reference verifier compares roots with `bytes.Equal`) and use
/// short or empty ones ("don't care", garbage); our API takes 32-byte hashes,
/// so those map to a stand-in: SHA-256 of a label and the bytes. That keeps
/// equal strings equal and different ones different, and never equals a real
/// tree hash, so the verifier, not the decoding, decides those cases.
fn hash(base64: &str, stand_ins: &mut usize) -> Hash {
    let bytes = BASE64.decode(base64).expect("vector hashes are base64");
    match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(hash) => Hash(hash),
        Err(_) => {
            *stand_ins += 1;
            let mut hasher = Sha256::new();
            hasher.update(b"not a 32-byte hash:");
            hasher.update(&bytes);
            Hash(hasher.finalize().into())
        }
    }
}

fn hashes(proof: &Option<Vec<String>>, stand_ins: &mut usize) -> Vec<Hash> {
    proof.iter().flatten().map(|h| hash(h, stand_ins)).collect()
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Debug, Default)]
struct Tally {
    checked: usize,
    accepted: usize,
    rejected: usize,
    stand_ins: usize,
    refused_by_decoding: usize,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, path: &Path, desc: &str, want_err: bool, result: Result<(), String>) {
        self.checked += 1;
        match (&result, want_err) {
            (Ok(()), false) => self.accepted += 1,
            (Err(_), true) => self.rejected += 1,
            _ => self.failures.push(format!(
                "{} ({desc}): want_err={want_err}, got {result:?}",
                path.display()
            )),
        }
    }
}

#[test]
fn every_rfc6962_vector_gets_its_expected_answer() {
    let root = testdata_dir().join("rfc6962");
    let inclusion_files = json_files(&root.join("inclusion"));
    let consistency_files = json_files(&root.join("consistency"));
    let mut tally = Tally::default();

    for path in &inclusion_files {
        let v: InclusionVector = read(path);
        let s = &mut tally.stand_ins;
        let (root, proof) = (hash(&v.root, s), hashes(&v.proof, s));
        // The leaf hash is the one input the reference verifier length-checks
        // ("leafHash has unexpected size"); here the `[u8; 32]` type does, at
        // decoding, as the wire layer would.
        let leaf = BASE64
            .decode(&v.leaf_hash)
            .expect("vector hashes are base64");
        let result = match <[u8; 32]>::try_from(leaf.as_slice()) {
            Ok(leaf) => verify_inclusion(&Hash(leaf), v.leaf_idx, v.tree_size, &proof, &root)
                .map_err(|e| e.to_string()),
            Err(_) => {
                tally.refused_by_decoding += 1;
                Err(format!("leaf hash is {} bytes", leaf.len()))
            }
        };
        tally.record(path, &v.desc, v.want_err, result);
    }
    for path in &consistency_files {
        let v: ConsistencyVector = read(path);
        let s = &mut tally.stand_ins;
        let (root1, root2, proof) = (hash(&v.root1, s), hash(&v.root2, s), hashes(&v.proof, s));
        let result = verify_consistency(v.size1, v.size2, &root1, &root2, &proof);
        tally.record(path, &v.desc, v.want_err, result.map_err(|e| e.to_string()));
    }

    assert!(
        tally.failures.is_empty(),
        "{} vectors wrong:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
    let files_found = inclusion_files.len() + consistency_files.len();
    assert!(
        files_found > 100,
        "only {files_found} vector files found under {}",
        root.display()
    );
    assert_eq!(tally.checked, files_found);
    assert_eq!(tally.accepted + tally.rejected, files_found);
    assert!(tally.accepted > 0 && tally.rejected > 0, "{tally:?}");
    assert!(
        tally.stand_ins > 0,
        "the garbage vectors did not exercise stand-ins"
    );
    println!(
        "rfc6962: {} vectors ({} inclusion, {} consistency), {} accepted, {} rejected \
         ({} of them for a leaf hash that is not 32 bytes), {} stand-in hashes",
        tally.checked,
        inclusion_files.len(),
        consistency_files.len(),
        tally.accepted,
        tally.rejected,
        tally.refused_by_decoding,
        tally.stand_ins
    );
}
