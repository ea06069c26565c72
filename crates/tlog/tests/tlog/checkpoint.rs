//! Checkpoints in signed notes (SPEC §5): round trip, the exact text and key
//! id, and refusal of wrong keys, tampering and extension lines.

use aidledger_tlog::ed25519::SecretKey;
use aidledger_tlog::{Checkpoint, CheckpointError, LogSigner, LogVerifier, leaf_hash};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

const ORIGIN: &str = "aid.ninhthuan.example/children-2019-2025";

fn checkpoint() -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 4096,
        root: leaf_hash(b"root"),
    }
}

/// The key id computed by hand: SHA-256(origin || 0x0A || 0x01 || pubkey)[..4].
fn hand_key_id(origin: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(origin.as_bytes());
    hasher.update([0x0A, 0x01]);
    hasher.update(public_key);
    hasher.finalize()[..4].try_into().expect("4 bytes")
}

/// A signature line made by hand, for notes `LogSigner` refuses to produce.
fn signature_line(name: &str, key_id: [u8; 4], signature: &[u8]) -> String {
    format!(
        "— {name} {}\n",
        BASE64.encode([&key_id[..], signature].concat())
    )
}

/// Two handles on one key: one goes into a `LogSigner`, the other signs by hand.
fn twin_keys() -> (SecretKey, SecretKey) {
    let key = SecretKey::generate();
    let twin = SecretKey::from_pkcs8_pem(&key.to_pkcs8_pem()).expect("own PEM loads");
    (key, twin)
}

fn hand_signed(text: &str, origin: &str, key: &SecretKey) -> String {
    let line = signature_line(
        origin,
        hand_key_id(origin, &key.public_key()),
        &key.sign(text.as_bytes()),
    );
    format!("{text}\n{line}")
}

#[test]
fn sign_then_verify_round_trips() {
    let key = SecretKey::generate();
    let public_key = key.public_key();
    let signer = LogSigner::new(ORIGIN, key).expect("signer");
    assert_eq!(signer.origin(), ORIGIN);
    let note = signer.sign(&checkpoint());

    let root_base64 = BASE64.encode(checkpoint().root.0);
    let body = format!("{ORIGIN}\n4096\n{root_base64}\n");
    assert_eq!(checkpoint().body(), body);
    let (text, signatures) = note
        .split_once("\n\n")
        .expect("blank line before signatures");
    assert_eq!(format!("{text}\n"), body);
    let line = signatures.strip_suffix('\n').expect("final newline");
    assert!(!line.contains('\n'), "exactly one signature line: {note:?}");
    let signature = line
        .strip_prefix(&format!("— {ORIGIN} "))
        .expect("signature line prefix");
    let signature = BASE64.decode(signature).expect("base64 signature");
    assert_eq!(signature.len(), 4 + 64);
    assert_eq!(signature[..4], hand_key_id(ORIGIN, &public_key));
    let bare: [u8; 64] = signature[4..].try_into().expect("64 bytes");
    aidledger_tlog::ed25519::verify_strict(&public_key, body.as_bytes(), &bare)
        .expect("signature over the body");

    let verifier = LogVerifier::from_vkey(&signer.vkey()).expect("vkey");
    assert_eq!(verifier.origin(), ORIGIN);
    assert_eq!(verifier.public_key(), public_key);
    assert_eq!(verifier.verify(&note).expect("verifies"), checkpoint());
    assert_eq!(
        Checkpoint::parse_body(&body).expect("body parses"),
        checkpoint()
    );
}

#[test]
fn vkey_format_and_key_id_match_a_hand_computation() {
    let key = SecretKey::generate();
    let public_key = key.public_key();
    let signer = LogSigner::new(ORIGIN, key).expect("signer");
    let want = format!(
        "{ORIGIN}+{}+{}",
        hex::encode(hand_key_id(ORIGIN, &public_key)),
        BASE64.encode([&[0x01][..], &public_key[..]].concat())
    );
    assert_eq!(signer.vkey(), want);
}

#[test]
fn another_key_is_rejected() {
    let signer = LogSigner::new(ORIGIN, SecretKey::generate()).expect("signer");
    let verifier = LogVerifier::from_vkey(&signer.vkey()).expect("vkey");
    let impostor = LogSigner::new(ORIGIN, SecretKey::generate()).expect("impostor");
    let forged = impostor.sign(&checkpoint());
    let result = verifier.verify(&forged);
    assert!(
        matches!(result, Err(CheckpointError::MissingSignature { .. })),
        "{result:?}"
    );

    // An impostor that copies our key id: the line is ours, and it is invalid.
    let (key, twin) = twin_keys();
    let verifier =
        LogVerifier::from_vkey(&LogSigner::new(ORIGIN, key).expect("signer").vkey()).expect("vkey");
    let body = checkpoint().body();
    let other = SecretKey::generate();
    let key_id = hand_key_id(ORIGIN, &twin.public_key());
    let forged = format!(
        "{body}\n{}",
        signature_line(ORIGIN, key_id, &other.sign(body.as_bytes()))
    );
    let result = verifier.verify(&forged);
    assert!(
        matches!(result, Err(CheckpointError::InvalidSignature { .. })),
        "{result:?}"
    );
    // The same line signed with the right key passes: the refusal above was the signature.
    assert_eq!(
        verifier
            .verify(&hand_signed(&body, ORIGIN, &twin))
            .expect("verifies"),
        checkpoint()
    );
}

#[test]
fn tampered_size_root_or_origin_is_rejected() {
    let signer = LogSigner::new(ORIGIN, SecretKey::generate()).expect("signer");
    let verifier = LogVerifier::from_vkey(&signer.vkey()).expect("vkey");
    let cp = checkpoint();
    let note = signer.sign(&cp);
    let root_base64 = BASE64.encode(cp.root.0);
    let other_root = BASE64.encode(leaf_hash(b"other root").0);
    let tampered = [
        note.replacen("\n4096\n", "\n4097\n", 1),
        note.replacen(&root_base64, &other_root, 1),
        note.replacen(&format!("{ORIGIN}\n"), "aid.other.example/log\n", 1),
    ];
    for bad in tampered {
        assert_ne!(bad, note);
        let result = verifier.verify(&bad);
        assert!(
            matches!(result, Err(CheckpointError::InvalidSignature { .. })),
            "{bad:?}: {result:?}"
        );
    }
}

#[test]
fn a_signed_checkpoint_of_another_origin_is_rejected() {
    let (key, twin) = twin_keys();
    let verifier =
        LogVerifier::from_vkey(&LogSigner::new(ORIGIN, key).expect("signer").vkey()).expect("vkey");
    let body = Checkpoint {
        origin: "aid.other.example/log".to_owned(),
        ..checkpoint()
    }
    .body();
    let result = verifier.verify(&hand_signed(&body, ORIGIN, &twin));
    assert!(
        matches!(result, Err(CheckpointError::OriginMismatch { .. })),
        "{result:?}"
    );
}

#[test]
fn unknown_signature_lines_are_ignored() {
    let signer = LogSigner::new(ORIGIN, SecretKey::generate()).expect("signer");
    let verifier = LogVerifier::from_vkey(&signer.vkey()).expect("vkey");
    let note = signer.sign(&checkpoint());
    // A witness cosignature (C2SP tlog-cosignature: 8-byte timestamp and a
    // 64-byte signature) and a line of another key under our own name.
    let cosignature = signature_line("witness.example/w1", [1, 2, 3, 4], &[7; 72]);
    let rotated = signature_line(ORIGIN, [0xde, 0xad, 0xbe, 0xef], &[9; 64]);
    for extra in [
        format!("{note}{cosignature}"),
        format!("{note}{rotated}{cosignature}"),
    ] {
        assert_eq!(
            verifier.verify(&extra).expect("extra lines ignored"),
            checkpoint()
        );
    }
    let (text, ours) = note.split_once("\n\n").expect("signature block");
    let witness_first = format!("{text}\n\n{cosignature}{ours}");
    assert_eq!(
        verifier
            .verify(&witness_first)
            .expect("order does not matter"),
        checkpoint()
    );
    // Only unknown lines: nothing vouches for the checkpoint.
    let unsigned = format!("{text}\n\n{cosignature}");
    let result = verifier.verify(&unsigned);
    assert!(
        matches!(result, Err(CheckpointError::MissingSignature { .. })),
        "{result:?}"
    );
}

#[test]
fn extension_lines_are_rejected() {
    let (key, twin) = twin_keys();
    let verifier =
        LogVerifier::from_vkey(&LogSigner::new(ORIGIN, key).expect("signer").vkey()).expect("vkey");
    let body = format!("{}extension line\n", checkpoint().body());
    let result = verifier.verify(&hand_signed(&body, ORIGIN, &twin));
    assert!(
        matches!(result, Err(CheckpointError::MalformedBody(_))),
        "{result:?}"
    );
}

#[test]
fn only_canonical_bodies_parse() {
    let root = BASE64.encode(checkpoint().root.0);
    let unpadded = root.trim_end_matches('=').to_owned();
    let bad = [
        format!("{ORIGIN}\n4096\n{root}"),
        format!("{ORIGIN}\n4096\n"),
        format!("{ORIGIN}\n04096\n{root}\n"),
        format!("{ORIGIN}\n+4096\n{root}\n"),
        format!("{ORIGIN}\n4096\n{unpadded}\n"),
        format!("{ORIGIN}\n4096\n{}\n", BASE64.encode([0; 31])),
        format!("{ORIGIN}\n4096\n{root}\n\n"),
        format!("{ORIGIN} \n4096\n{root}\n"),
        format!("https://{ORIGIN}\n4096\n{root}\n"),
        format!("{ORIGIN}\r\n4096\n{root}\n"),
    ];
    for text in bad {
        assert!(Checkpoint::parse_body(&text).is_err(), "{text:?} parsed");
    }
    let empty = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 0,
        root: aidledger_tlog::EMPTY_ROOT,
    };
    assert_eq!(
        Checkpoint::parse_body(&empty.body()).expect("size 0"),
        empty
    );
}

#[test]
fn malformed_vkeys_are_rejected() {
    let (key, twin) = twin_keys();
    let vkey = LogSigner::new(ORIGIN, key).expect("signer").vkey();
    let public_key = twin.public_key();
    let id = hex::encode(hand_key_id(ORIGIN, &public_key));
    let typed =
        |signature_type: u8, key: &[u8]| BASE64.encode([&[signature_type][..], key].concat());
    let good = typed(0x01, &public_key);
    assert_eq!(vkey, format!("{ORIGIN}+{id}+{good}"));
    let bad = [
        format!("{ORIGIN}+{good}"),
        format!("{ORIGIN}+00000000+{good}"),
        format!("{ORIGIN}+{}+{good}", &id[..7]),
        format!("{ORIGIN}+{id}+{}", typed(0x04, &public_key)),
        format!("{ORIGIN}+{id}+{}", typed(0x01, &public_key[..31])),
        format!("{ORIGIN}+{id}+not base64"),
        format!("other.example+{id}+{good}"),
        format!("https://x+{id}+{good}"),
    ];
    for vkey in bad {
        assert!(LogVerifier::from_vkey(&vkey).is_err(), "{vkey:?} accepted");
    }
    // A small-order key (the identity point) could never verify strictly.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak_id = hex::encode(hand_key_id(ORIGIN, &identity));
    let weak = format!("{ORIGIN}+{weak_id}+{}", typed(0x01, &identity));
    let result = LogVerifier::from_vkey(&weak);
    assert!(
        matches!(result, Err(CheckpointError::MalformedVkey(_))),
        "{result:?}"
    );
}

#[test]
fn signer_refuses_invalid_origins_and_hides_its_key() {
    assert!(matches!(
        LogSigner::new("https://example.com", SecretKey::generate()),
        Err(CheckpointError::InvalidOrigin(_))
    ));
    let (key, twin) = twin_keys();
    let signer = LogSigner::new(ORIGIN, key).expect("signer");
    let pem = twin.to_pkcs8_pem();
    let der_base64 = pem.lines().nth(1).expect("base64 line");
    let der = BASE64.decode(der_base64).expect("base64 DER");
    // PKCS#8 v1 for Ed25519 ends with the 32-byte seed.
    let seed_hex = hex::encode(&der[der.len() - 32..]);
    let shown = format!("{signer:?}");
    assert!(!shown.contains(&seed_hex), "{shown}");
    assert!(!shown.contains(der_base64), "{shown}");
    assert!(shown.contains(&hex::encode(twin.public_key())), "{shown}");
}
