//! SPEC.md is readable from outside Rust: `tests/crosslang/verify.py`, an
//! independent verifier written from the spec with Python's `cryptography`
//! package, checks a checkpoint note, an inclusion proof and an event
//! signature produced by the real ledger, and refuses tampered ones.
//!
//! CI installs `cryptography` (`.ci/run`); without python3 and it this test
//! fails and says so, rather than silently skipping.

use std::path::{Path, PathBuf};
use std::process::Command;

use aidledger_tests::TestServer;
use aidledger_tests::generator::Generator;
use aidledger_wire::pb;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crosslang/verify.py")
}

/// Runs the Python verifier on `material`; (success, stderr).
fn python_verifies(dir: &Path, name: &str, material: &serde_json::Value) -> (bool, String) {
    let path = dir.join(name);
    std::fs::write(&path, material.to_string()).unwrap();
    let output = Command::new("python3")
        .arg(script())
        .arg(&path)
        .output()
        .expect("python3 is needed for the cross-language check (CI installs it with `cryptography`, see .ci/run)");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the Python `cryptography` package is missing: python3 -m pip install cryptography ({stderr})"
    );
    (output.status.success(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_verifier_written_from_the_spec_agrees_with_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(505);
    let server = TestServer::start(&dir.path().join("ledger"), generator.authority()).await;
    let mut client = server.client().await;
    let setup = generator.setup(&server.vkey);
    client
        .append_batch(pb::AppendBatchRequest { events: setup })
        .await
        .unwrap();
    let last = generator.events(1).remove(0);
    let appended = client
        .append(pb::AppendRequest {
            event: Some(last),
            wait_for_checkpoint: true,
        })
        .await
        .unwrap()
        .into_inner();
    let checkpoint = appended.checkpoint.unwrap();
    // An entry in the middle, so the proof has hashes on both sides.
    let seq = checkpoint.size / 2 + 1;
    let entry = client
        .get_entry(pb::GetEntryRequest {
            key: Some(pb::get_entry_request::Key::Seq(seq)),
        })
        .await
        .unwrap()
        .into_inner();
    let proof = client
        .get_inclusion_proof(pb::InclusionProofRequest {
            seq,
            tree_size: checkpoint.size,
        })
        .await
        .unwrap()
        .into_inner();
    let material = serde_json::json!({
        "vkey": server.vkey,
        "note": checkpoint.note,
        "seq": seq,
        "tree_size": checkpoint.size,
        "entry": BASE64.encode(&entry.entry),
        "proof": proof.hashes.iter().map(|h| BASE64.encode(h)).collect::<Vec<_>>(),
    });
    let (ok, stderr) = python_verifies(dir.path(), "good.json", &material);
    assert!(
        ok,
        "the Python verifier refused the ledger's proof: {stderr}"
    );

    // A tampered proof hash.
    let mut tampered = material.clone();
    let mut first = proof.hashes[0].clone();
    first[0] ^= 0x01;
    tampered["proof"][0] = BASE64.encode(&first).into();
    let (ok, stderr) = python_verifies(dir.path(), "bad-proof.json", &tampered);
    assert!(!ok, "a tampered proof was accepted");
    assert!(stderr.contains("inclusion proof"), "{stderr}");

    // A tampered checkpoint root under the original signature.
    let note = checkpoint.note.clone();
    let root_line = note.lines().nth(2).unwrap().to_owned();
    let other_root = BASE64.encode([0x42u8; 32]);
    let mut tampered = material.clone();
    tampered["note"] = note.replacen(&root_line, &other_root, 1).into();
    let (ok, stderr) = python_verifies(dir.path(), "bad-note.json", &tampered);
    assert!(!ok, "a tampered checkpoint was accepted");
    assert!(stderr.contains("checkpoint signature"), "{stderr}");

    // A tampered event signature inside the entry.
    let mut bytes = entry.entry.clone();
    *bytes.last_mut().unwrap() ^= 0x01;
    let mut tampered = material.clone();
    tampered["entry"] = BASE64.encode(&bytes).into();
    let (ok, _) = python_verifies(dir.path(), "bad-entry.json", &tampered);
    assert!(!ok, "a tampered entry was accepted");

    server.stop().await;
}
