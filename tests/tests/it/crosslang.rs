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
    let mut first = proof.hashes[0].to_vec();
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
    let mut bytes = entry.entry.to_vec();
    *bytes.last_mut().unwrap() ^= 0x01;
    let mut tampered = material.clone();
    tampered["entry"] = BASE64.encode(&bytes).into();
    let (ok, _) = python_verifies(dir.path(), "bad-entry.json", &tampered);
    assert!(!ok, "a tampered entry was accepted");

    server.stop().await;
}

#[test]
fn a_python_implementation_of_spec_7_5_computes_the_same_commitments_and_keyed_hashes() {
    use aidledger_ledger::privacy::{BeneficiaryKey, RefKey, SecretKey32, name_commitment};
    let salt = [0x11u8; 32];
    let key = [0x5au8; 32];
    // Names and references as people type them: composed and decomposed
    // Vietnamese, spaces of several kinds, mixed case.
    let decomposed: String =
        unicode_normalization::UnicodeNormalization::nfd("Nguyễn Thị Ánh").collect();
    let names = [
        "Nguyễn Thị Ánh",
        decomposed.as_str(),
        "Công ty TNHH Ánh Dương",
        "A",
    ];
    let references = [
        "FT25123456789",
        " ft25 1234\t56789 ",
        "FT25\u{00a0}123\u{3000}456789",
        "PNK-quy-bao-tro-tre-em-00001/2025",
        "mã giao dịch 12",
    ];
    let records = ["22783/00017", "Hồ sơ-001"];
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for name in names {
        cases.push(
            serde_json::json!({"name_commitment": {"salt": hex::encode(salt), "name": name}}),
        );
        expected.push(hex::encode(name_commitment(&salt, name)));
    }
    let ref_key = RefKey(SecretKey32::from_bytes(key));
    for reference in references {
        cases.push(serde_json::json!({"external_ref_hash": {"key": hex::encode(key), "reference": reference}}));
        expected.push(hex::encode(ref_key.external_ref_hash(reference)));
    }
    let ben_key = BeneficiaryKey(SecretKey32::from_bytes(key));
    for record in records {
        cases.push(serde_json::json!({"beneficiary_token": {"key": hex::encode(key), "record_id": record}}));
        expected.push(hex::encode(ben_key.token(record)));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.json");
    std::fs::write(&path, serde_json::Value::Array(cases).to_string()).unwrap();
    let output = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("crosslang/privacy.py"))
        .arg(&path)
        .output()
        .expect("python3 is needed for the cross-language check");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let python: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(python, expected);
    // The normalised forms agree, so they hash alike; other inputs do not.
    assert_eq!(expected[4], expected[5], "spacing and case do not matter");
    assert_eq!(expected[4], expected[6], "nor do other kinds of space");
    assert_eq!(
        expected[0], expected[1],
        "nor composed or decomposed letters"
    );
    assert_ne!(expected[4], expected[7]);
}
