//! Wycheproof `ed25519_test.json`: strict verification gives every case its
//! expected answer (SPEC §3).

use aidledger_tlog::ed25519::{self, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use serde::Deserialize;

use crate::support::testdata_dir;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    number_of_tests: usize,
    test_groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    public_key: PublicKey,
    tests: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct PublicKey {
    pk: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    tc_id: u64,
    comment: String,
    msg: String,
    sig: String,
    result: String,
}

#[test]
fn every_wycheproof_ed25519_case_gets_its_expected_answer() {
    let path = testdata_dir().join("wycheproof/ed25519_test.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: File = serde_json::from_str(&text).expect("Wycheproof JSON");

    let mut checked = 0;
    let mut failures = Vec::new();
    for group in &file.test_groups {
        let public_key: [u8; PUBLIC_KEY_LEN] = hex::decode(&group.public_key.pk)
            .expect("hex key")
            .try_into()
            .expect("every group key is 32 bytes");
        for case in &group.tests {
            let message = hex::decode(&case.msg).expect("hex message");
            let signature = hex::decode(&case.sig).expect("hex signature");
            // A signature that is not 64 bytes cannot reach the verifier: the
            // wire layer refuses it when converting to `[u8; 64]`.
            let result = match <[u8; SIGNATURE_LEN]>::try_from(signature.as_slice()) {
                Ok(signature) => ed25519::verify_strict(&public_key, &message, &signature)
                    .map_err(|e| e.to_string()),
                Err(_) => Err(format!("signature is {} bytes", signature.len())),
            };
            // No "acceptable" cases exist in this file; a new one must be
            // decided deliberately, not silently passed.
            let want_valid = match case.result.as_str() {
                "valid" => true,
                "invalid" => false,
                other => panic!("tcId {}: unexpected result {other:?}", case.tc_id),
            };
            // The decoded-once key (the auditor's path) agrees case by case.
            if let Ok(signature) = <[u8; SIGNATURE_LEN]>::try_from(signature.as_slice()) {
                let decoded = ed25519::DecodedPublicKey::from_bytes(&public_key)
                    .and_then(|key| key.verify_strict(&message, &signature));
                assert_eq!(
                    decoded.is_ok(),
                    result.is_ok(),
                    "tcId {}: the decoded key disagrees",
                    case.tc_id
                );
            }
            if result.is_ok() != want_valid {
                failures.push(format!(
                    "tcId {} ({}): want {}, got {result:?}",
                    case.tc_id, case.comment, case.result
                ));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, file.number_of_tests);
    assert_eq!(checked, 151);
}
