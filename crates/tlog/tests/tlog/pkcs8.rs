//! Private keys as PKCS#8 PEM: files written by OpenSSL load, and ours are
//! what OpenSSL would write.

use aidledger_tlog::ed25519::{self, KeyError, SecretKey};

/// Written by `openssl genpkey -algorithm ed25519` (OpenSSL 3.0.19).
const OPENSSL_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHm2eRL+W2R1yzcDgfdRNtxUA6MXrpP0GzV/RP0DSEdW
-----END PRIVATE KEY-----
";

/// The raw public key `openssl pkey -pubout` printed for it (the last 32
/// bytes of `MCowBQYDK2VwAyEAgyN/XrEP8YFbhZTpq02v17E8PtwHHfBdyd1+Gy/Zn7A=`).
const OPENSSL_PUBLIC_KEY_HEX: &str =
    "83237f5eb10ff1815b8594e9ab4dafd7b13c3edc071df05dc9dd7e1b2fd99fb0";

#[test]
fn an_openssl_key_loads_with_the_public_key_openssl_prints() {
    let key = SecretKey::from_pkcs8_pem(OPENSSL_PEM).expect("OpenSSL PEM loads");
    assert_eq!(hex::encode(key.public_key()), OPENSSL_PUBLIC_KEY_HEX);
    let signature = key.sign(b"checkpoint");
    ed25519::verify_strict(&key.public_key(), b"checkpoint", &signature).expect("signs");
    // We write PKCS#8 v1, exactly what OpenSSL wrote.
    assert_eq!(*key.to_pkcs8_pem(), OPENSSL_PEM);
}

#[test]
fn our_own_pem_round_trips() {
    let key = SecretKey::generate();
    let pem = key.to_pkcs8_pem();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{}", *pem);
    let loaded = SecretKey::from_pkcs8_pem(&pem).expect("own PEM loads");
    assert_eq!(loaded.public_key(), key.public_key());
    // Ed25519 signing is deterministic: same key, same signature.
    assert_eq!(loaded.sign(b"m"), key.sign(b"m"));
    assert_ne!(SecretKey::generate().public_key(), key.public_key());
}

#[test]
fn other_pem_is_refused() {
    let public_pem = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAgyN/XrEP8YFbhZTpq02v17E8PtwHHfBdyd1+Gy/Zn7A=
-----END PUBLIC KEY-----
";
    for bad in [
        "",
        "not a key",
        public_pem,
        &OPENSSL_PEM.replace("MC4C", "MC4D"),
    ] {
        let result = SecretKey::from_pkcs8_pem(bad);
        assert!(
            matches!(result, Err(KeyError::Pkcs8(_))),
            "{bad:?}: {result:?}"
        );
    }
}
