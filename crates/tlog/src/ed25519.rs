//! Strict Ed25519 (SPEC §3) and the private-key file format.
//!
//! Verification accepts exactly what ed25519-dalek's `verify_strict` accepts:
//! canonical S, canonical R, A and R not of small order, cofactorless
//! equation. That set lies inside what every mainstream verifier accepts, so
//! an auditor with any library agrees with the ledger.
//!
//! Private keys are stored as PKCS#8 PEM, the format
//! `openssl genpkey -algorithm ed25519` writes, so operators can create and
//! inspect keys with standard tools.

use std::fmt;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroize;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

pub use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;

/// Length of an Ed25519 public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The 32 bytes do not encode a point on the curve.
    #[error("public key is not the encoding of an Ed25519 point")]
    MalformedPublicKey,
    /// The signature does not verify under strict RFC 8032 rules (this includes
    /// non-canonical S or R and small-order A or R).
    #[error("signature does not verify under strict Ed25519 rules")]
    Invalid,
}

/// Why a private key could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a PEM-encoded PKCS#8 Ed25519 private key (or its embedded public
    /// key does not match the private key).
    #[error("not an Ed25519 private key in PKCS#8 PEM form: {0}")]
    Pkcs8(String),
    /// The key file is encrypted and no passphrase was given.
    #[error("the key is encrypted: a passphrase is needed")]
    PassphraseNeeded,
    /// The passphrase does not open the encrypted key (or the file is
    /// damaged: PBES2 cannot tell the two apart).
    #[error("the passphrase does not open this key (wrong passphrase, or a damaged file)")]
    WrongPassphrase,
}

/// PBKDF2-HMAC-SHA256 rounds of an encrypted key file: OWASP's 2023 advice
/// for that function, a fraction of a second to open once.
pub const KEY_FILE_PBKDF2_ROUNDS: u32 = 600_000;

/// Verifies `signature` over `message` with strict RFC 8032 rules (SPEC §3).
///
/// # Errors
///
/// [`SignatureError::MalformedPublicKey`] or [`SignatureError::Invalid`].
pub fn verify_strict(
    public_key: &[u8; PUBLIC_KEY_LEN],
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), SignatureError> {
    let key =
        VerifyingKey::from_bytes(public_key).map_err(|_| SignatureError::MalformedPublicKey)?;
    verify_with_key(&key, message, signature)
}

/// [`verify_strict`] for a key that is already decoded.
pub(crate) fn verify_with_key(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), SignatureError> {
    // SPEC §3: `verify_strict`, never `verify`, which accepts small-order keys
    // and so a wider set than some verifiers.
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| SignatureError::Invalid)
}

/// A public key decoded (decompressed) once, to verify many signatures by
/// it with exactly the rules of [`verify_strict`], without decoding the
/// point again for each one. An auditor checks a million signatures by a
/// hundred keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedPublicKey(VerifyingKey);

impl DecodedPublicKey {
    /// Decodes a 32-byte public key.
    ///
    /// # Errors
    ///
    /// [`SignatureError::MalformedPublicKey`], as [`verify_strict`] would.
    pub fn from_bytes(public_key: &[u8; PUBLIC_KEY_LEN]) -> Result<Self, SignatureError> {
        VerifyingKey::from_bytes(public_key)
            .map(Self)
            .map_err(|_| SignatureError::MalformedPublicKey)
    }

    /// [`verify_strict`] with this key.
    ///
    /// # Errors
    ///
    /// [`SignatureError::Invalid`].
    pub fn verify_strict(
        &self,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), SignatureError> {
        verify_with_key(&self.0, message, signature)
    }
}

/// An Ed25519 private key. Zeroized on drop; `Debug` shows only the public key.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Self {
        Self(SigningKey::generate(&mut rand_core::OsRng))
    }

    /// The key whose RFC 8032 seed is `seed`. For reproducible test and
    /// benchmark data; real keys come from [`Self::generate`] or a key file.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// Loads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`), as
    /// written by `openssl genpkey -algorithm ed25519` or [`Self::to_pkcs8_pem`].
    ///
    /// # Errors
    ///
    /// [`KeyError::Pkcs8`] if the text is not such a key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(Self)
            .map_err(|error| KeyError::Pkcs8(error.to_string()))
    }

    /// Whether `pem` is an encrypted PKCS#8 key
    /// (`-----BEGIN ENCRYPTED PRIVATE KEY-----`).
    pub fn pem_is_encrypted(pem: &str) -> bool {
        pem.trim_start()
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    }

    /// Loads a PKCS#8 PEM private key, plain or encrypted with
    /// `passphrase` (PBES2, as [`Self::to_encrypted_pkcs8_pem`] or
    /// `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256` write
    /// it).
    ///
    /// # Errors
    ///
    /// [`KeyError::PassphraseNeeded`] for an encrypted key without a
    /// passphrase, [`KeyError::WrongPassphrase`] when it does not open the
    /// key, [`KeyError::Pkcs8`] when the text is not such a key.
    pub fn from_pkcs8_pem_with_passphrase(
        pem: &str,
        passphrase: Option<&[u8]>,
    ) -> Result<Self, KeyError> {
        if !Self::pem_is_encrypted(pem) {
            return Self::from_pkcs8_pem(pem);
        }
        let passphrase = passphrase.ok_or(KeyError::PassphraseNeeded)?;
        let (label, document) = pkcs8::SecretDocument::from_pem(pem)
            .map_err(|error| KeyError::Pkcs8(error.to_string()))?;
        if label != "ENCRYPTED PRIVATE KEY" {
            return Err(KeyError::Pkcs8(format!("a {label} is not a private key")));
        }
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(document.as_bytes())
            .map_err(|error| KeyError::Pkcs8(error.to_string()))?;
        // A wrong passphrase shows as bad padding, or (about once in 256)
        // as padding that passes over bytes that are not a key.
        let plain = encrypted
            .decrypt(passphrase)
            .map_err(|_| KeyError::WrongPassphrase)?;
        SigningKey::from_pkcs8_der(plain.as_bytes())
            .map(Self)
            .map_err(|_| KeyError::WrongPassphrase)
    }

    /// The key as encrypted PKCS#8 PEM: PBES2 with PBKDF2-HMAC-SHA256
    /// ([`KEY_FILE_PBKDF2_ROUNDS`]) and AES-256-CBC, a random salt and IV.
    /// Not pkcs8's default (scrypt), whose parameters OpenSSL 3 refuses by
    /// its memory limit: this is what `openssl pkcs8 -topk8 -v2 aes-256-cbc
    /// -v2prf hmacWithSHA256` writes and every OpenSSL reads.
    pub fn to_encrypted_pkcs8_pem(&self, passphrase: &[u8]) -> Zeroizing<String> {
        use rand_core::RngCore as _;
        let (mut salt, mut iv) = ([0u8; 16], [0u8; 16]);
        rand_core::OsRng.fill_bytes(&mut salt);
        rand_core::OsRng.fill_bytes(&mut iv);
        let mut keypair = KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        };
        let plain = keypair
            .to_pkcs8_der()
            .expect("a 32-byte Ed25519 seed always encodes as PKCS#8");
        keypair.secret_key.zeroize();
        let parameters = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
            KEY_FILE_PBKDF2_ROUNDS,
            &salt,
            &iv,
        )
        .expect("fixed PBKDF2 rounds within pkcs5's bounds");
        pkcs8::PrivateKeyInfo::try_from(plain.as_bytes())
            .and_then(|info| info.encrypt_with_params(parameters, passphrase))
            .and_then(|encrypted| {
                encrypted
                    .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
                    .map_err(Into::into)
            })
            .expect("a PKCS#8 key we just encoded encrypts")
    }

    /// The key as PKCS#8 v1 PEM, byte for byte what OpenSSL writes for it.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        // v1 (no embedded public key) rather than ed25519-dalek's v2, so the
        // file is the one OpenSSL would write and every tool reads it.
        let mut keypair = KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        };
        let pem = keypair
            .to_pkcs8_pem(LineEnding::LF)
            .expect("a 32-byte Ed25519 seed always encodes as PKCS#8");
        keypair.secret_key.zeroize();
        pem
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs `message` (RFC 8032, deterministic).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("public_key", &HexBytes(&self.public_key()))
            .finish_non_exhaustive()
    }
}

/// Formats bytes as lowercase hex in `Debug` output.
struct HexBytes<'a>(&'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_print_the_secret() {
        let key = SecretKey::generate();
        let secret_hex: String = key
            .0
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&secret_hex), "{shown}");
        let public_hex: String = key
            .public_key()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(shown.contains(&public_hex), "{shown}");
    }

    #[test]
    fn an_encrypted_key_opens_with_its_passphrase_only() {
        let key = SecretKey::generate();
        let pem = key.to_encrypted_pkcs8_pem(b"correct horse battery");
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(SecretKey::pem_is_encrypted(&pem));
        assert!(!SecretKey::pem_is_encrypted(&key.to_pkcs8_pem()));
        let opened =
            SecretKey::from_pkcs8_pem_with_passphrase(&pem, Some(b"correct horse battery"))
                .unwrap();
        assert_eq!(opened.public_key(), key.public_key());
        assert_eq!(
            SecretKey::from_pkcs8_pem_with_passphrase(&pem, Some(b"correct horse batterY"))
                .unwrap_err(),
            KeyError::WrongPassphrase
        );
        assert_eq!(
            SecretKey::from_pkcs8_pem_with_passphrase(&pem, None).unwrap_err(),
            KeyError::PassphraseNeeded
        );
        // The plain loader does not mistake it for a key.
        assert!(matches!(
            SecretKey::from_pkcs8_pem(&pem),
            Err(KeyError::Pkcs8(_))
        ));
        // A plain key needs no passphrase, and ignores one.
        let plain = key.to_pkcs8_pem();
        assert_eq!(
            SecretKey::from_pkcs8_pem_with_passphrase(&plain, Some(b"unused"))
                .unwrap()
                .public_key(),
            key.public_key()
        );
        // Salt and IV are drawn anew each time.
        assert_ne!(*pem, *key.to_encrypted_pkcs8_pem(b"correct horse battery"));
    }

    #[test]
    fn a_decoded_key_verifies_exactly_as_verify_strict() {
        let key = SecretKey::generate();
        let decoded = DecodedPublicKey::from_bytes(&key.public_key()).unwrap();
        let signature = key.sign(b"message");
        assert_eq!(decoded.verify_strict(b"message", &signature), Ok(()));
        assert_eq!(
            decoded.verify_strict(b"massage", &signature),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn sign_then_verify_strict() {
        let key = SecretKey::generate();
        let signature = key.sign(b"message");
        assert_eq!(
            verify_strict(&key.public_key(), b"message", &signature),
            Ok(())
        );
        assert_eq!(
            verify_strict(&key.public_key(), b"massage", &signature),
            Err(SignatureError::Invalid)
        );
    }
}
