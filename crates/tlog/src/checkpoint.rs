//! Checkpoints (C2SP tlog-checkpoint) in signed notes (C2SP signed-note),
//! signed and verified with the ledger key (SPEC §5).
//!
//! `signed_note` does the note framing; signing and verification go through
//! our own `Signer`/`Verifier` implementations because its standard verifier
//! uses non-strict Ed25519 (SPEC §3).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::VerifyingKey;
use signed_note::{Note, NoteError, VerificationError, Verifier, Verifiers};
use tlog_tiles::Hash;

use crate::ed25519::{self, PUBLIC_KEY_LEN, SIGNATURE_LEN, SecretKey};

/// Longest accepted origin, in bytes: room for any host name plus a path,
/// while keeping every checkpoint and signature line short.
pub const ORIGIN_LEN_MAX: usize = 255;

/// C2SP signed-note signature type of Ed25519 keys.
const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Whether `origin` can name a ledger (SPEC §2): a schema-less URL of
/// printable ASCII, without spaces or `+`, 1 to [`ORIGIN_LEN_MAX`] bytes.
pub fn is_valid_origin(origin: &str) -> bool {
    // SPEC §2 and C2SP signed-note: a key name has no spaces and no '+' (the
    // vkey separator); SPEC §2 adds "schema-less".
    !origin.is_empty()
        && origin.len() <= ORIGIN_LEN_MAX
        && origin
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b'+')
        && !origin.contains("://")
}

/// Why a checkpoint, key or note was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The origin does not satisfy [`is_valid_origin`].
    #[error(
        "invalid origin {0:?}: it must be 1 to {ORIGIN_LEN_MAX} printable ASCII bytes, without spaces, '+' or a URL scheme"
    )]
    InvalidOrigin(String),
    /// The note text is not exactly `<origin>\n<size>\n<base64 root>\n`.
    #[error("malformed checkpoint: {0}")]
    MalformedBody(String),
    /// The verifier key is not `<origin>+<8 hex key id>+<base64(0x01 || pubkey)>`.
    #[error("malformed verifier key: {0}")]
    MalformedVkey(String),
    /// The text is not a well-formed signed note.
    #[error("malformed signed note: {0}")]
    MalformedNote(String),
    /// A signature line from the pinned key does not verify.
    #[error("the signature by {key} does not verify")]
    InvalidSignature {
        /// `<origin>+<key id>`.
        key: String,
    },
    /// The note has no signature line from the pinned key.
    #[error("the note has no signature by {key}")]
    MissingSignature {
        /// `<origin>+<key id>`.
        key: String,
    },
    /// The checkpoint names a different log than the key does.
    #[error("checkpoint origin {found:?} is not the key's origin {expected:?}")]
    OriginMismatch { expected: String, found: String },
}

/// A C2SP tlog-checkpoint without extension lines (SPEC §5).
// `Eq` by hand: `tlog_tiles::Hash` does not derive it.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Eq for Checkpoint {}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root.0)
        )
    }

    /// Parses a note text, accepting only the canonical form [`Self::body`]
    /// writes: no extension lines (SPEC §5), no leading zeros or signs in the
    /// size, padded base64 of exactly 32 bytes.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::MalformedBody`] or [`CheckpointError::InvalidOrigin`].
    pub fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let malformed = |why: &str| CheckpointError::MalformedBody(why.to_owned());
        let lines = text
            .strip_suffix('\n')
            .ok_or_else(|| malformed("the text does not end in a newline"))?;
        let mut lines = lines.splitn(4, '\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(malformed(
                "expected three lines: origin, tree size, root hash",
            ));
        };
        // SPEC §5: "No extension lines."
        if lines.next().is_some() {
            return Err(malformed(
                "extension lines after the root hash are not allowed",
            ));
        }
        if !is_valid_origin(origin) {
            return Err(CheckpointError::InvalidOrigin(origin.to_owned()));
        }
        let size = parse_decimal(size).ok_or_else(|| {
            malformed("the tree size is not a decimal u64 without sign or leading zeros")
        })?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            // One encoding per hash: a padded, canonical base64 string.
            .filter(|bytes| BASE64.encode(bytes) == root)
            .ok_or_else(|| malformed("the root hash is not the padded base64 of 32 bytes"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root: Hash(root),
        })
    }
}

/// C2SP tlog-checkpoint: the size is ASCII decimal without leading zeros.
fn parse_decimal(text: &str) -> Option<u64> {
    let digits_only = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    if !digits_only || leading_zero {
        return None;
    }
    text.parse().ok()
}

/// C2SP signed-note key id: the first 4 bytes of
/// SHA-256(name || 0x0A || signature type || public key), big-endian (SPEC §5).
fn key_id(origin: &str, public_key: &[u8; PUBLIC_KEY_LEN]) -> u32 {
    signed_note::key_id(origin, &typed_public_key(public_key))
}

fn typed_public_key(public_key: &[u8; PUBLIC_KEY_LEN]) -> Vec<u8> {
    [&[SIGNATURE_TYPE_ED25519][..], &public_key[..]].concat()
}

/// A parsed C2SP vkey: `<name>+<8 hex key id>+<base64(type || pubkey)>`.
pub(crate) struct ParsedVkey<'a> {
    pub(crate) name: &'a str,
    pub(crate) key_id: u32,
    pub(crate) key: VerifyingKey,
}

/// Parses a vkey of `signature_type` (0x01 for logs, 0x04 for witness
/// cosignatures; `type_name` says which in errors), checking the name, the
/// key id against the name and key, and that the key is a usable Ed25519
/// point.
pub(crate) fn parse_vkey<'a>(
    vkey: &'a str,
    signature_type: u8,
    type_name: &str,
) -> Result<ParsedVkey<'a>, CheckpointError> {
    let malformed = |why: &str| CheckpointError::MalformedVkey(why.to_owned());
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_base64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected <name>+<key id>+<key>"));
    };
    if !is_valid_origin(name) {
        return Err(CheckpointError::InvalidOrigin(name.to_owned()));
    }
    if id_hex.len() != 8 || !id_hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(malformed("the key id is not 8 hex digits"));
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| malformed("the key id is not hex"))?;
    let typed_key = BASE64
        .decode(key_base64)
        .map_err(|_| malformed("the key is not base64"))?;
    let Some((&found_type, public_key)) = typed_key.split_first() else {
        return Err(malformed("the key is empty"));
    };
    if found_type != signature_type {
        return Err(CheckpointError::MalformedVkey(format!(
            "signature type 0x{found_type:02x} is not {type_name}"
        )));
    }
    let public_key: [u8; PUBLIC_KEY_LEN] = public_key
        .try_into()
        .map_err(|_| malformed("the Ed25519 public key is not 32 bytes"))?;
    let typed = [&[signature_type][..], &public_key[..]].concat();
    if id != signed_note::key_id(name, &typed) {
        return Err(malformed("the key id does not match the name and key"));
    }
    let key = VerifyingKey::from_bytes(&public_key)
        .map_err(|_| malformed("the public key is not an Ed25519 point"))?;
    if key.is_weak() {
        return Err(malformed("the public key has small order"));
    }
    Ok(ParsedVkey {
        name,
        key_id: id,
        key,
    })
}

/// The ledger key: signs checkpoints and nothing else (SPEC §2).
#[derive(Debug)]
pub struct LogSigner {
    origin: String,
    key_id: u32,
    key: SecretKey,
}

impl LogSigner {
    /// A signer for the log named `origin`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::InvalidOrigin`].
    pub fn new(origin: &str, key: SecretKey) -> Result<Self, CheckpointError> {
        if !is_valid_origin(origin) {
            return Err(CheckpointError::InvalidOrigin(origin.to_owned()));
        }
        let key_id = key_id(origin, &key.public_key());
        Ok(Self {
            origin: origin.to_owned(),
            key_id,
            key,
        })
    }

    /// The log's origin, which is also the key name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key: `<origin>+<8 hex key id>+<base64(0x01 || pubkey)>`.
    pub fn vkey(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.origin,
            self.key_id,
            BASE64.encode(typed_public_key(&self.key.public_key()))
        )
    }

    /// Signs `checkpoint` and returns the whole signed note.
    ///
    /// # Panics
    ///
    /// If `checkpoint.origin` is not this signer's origin: such a note would
    /// be refused by every verifier, so it is a bug in the caller.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        assert_eq!(
            checkpoint.origin, self.origin,
            "signing a checkpoint of another log"
        );
        let mut note = Note::new(checkpoint.body().as_bytes(), &[])
            .expect("a checkpoint with a valid origin is valid note text");
        note.add_sigs(&[&NoteSigner(self)])
            .expect("the origin is a valid key name and Ed25519 signing cannot fail");
        String::from_utf8(note.to_bytes()).expect("a note built from UTF-8 text is UTF-8")
    }
}

/// `signed_note` signer over the ledger key.
struct NoteSigner<'a>(&'a LogSigner);

impl signed_note::Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        &self.0.origin
    }

    fn key_id(&self) -> u32 {
        self.0.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.0.key.sign(msg).to_vec())
    }
}

/// A pinned ledger verifier key.
#[derive(Clone, Debug)]
pub struct LogVerifier {
    inner: StrictNoteVerifier,
}

impl LogVerifier {
    /// Parses `<origin>+<8 hex key id>+<base64(0x01 || pubkey)>`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::InvalidOrigin`], or [`CheckpointError::MalformedVkey`]
    /// saying which part is wrong (including a key id that does not match the
    /// key, and a small-order public key, which can never verify strictly).
    pub fn from_vkey(vkey: &str) -> Result<Self, CheckpointError> {
        let parsed = parse_vkey(vkey, SIGNATURE_TYPE_ED25519, "Ed25519 (0x01)")?;
        let (origin, id, key) = (parsed.name, parsed.key_id, parsed.key);
        Ok(Self {
            inner: StrictNoteVerifier {
                origin: origin.to_owned(),
                key_id: id,
                key,
            },
        })
    }

    /// The log's origin (the key name).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The 4-byte key id of its signature lines (C2SP signed-note).
    pub fn key_id(&self) -> u32 {
        self.inner.key_id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.inner.key.to_bytes()
    }

    /// Parses a signed note and returns its checkpoint if it carries a valid
    /// strict signature by this key and names this key's origin.
    ///
    /// Signature lines of other keys (witness cosignatures, other logs) are
    /// ignored (SPEC §5).
    ///
    /// # Errors
    ///
    /// Malformed note or checkpoint, a missing or invalid signature, or an
    /// origin other than the key's.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let key = || format!("{}+{:08x}", self.inner.origin, self.inner.key_id);
        let note = Note::from_bytes(note.as_bytes())
            .map_err(|error| CheckpointError::MalformedNote(error.to_string()))?;
        // SPEC §5: "clients ignore signature lines from keys they do not know":
        // `Note::verify` skips keys our `Verifiers` does not return.
        note.verify(&self.inner).map_err(|error| match error {
            NoteError::InvalidSignature { .. } => CheckpointError::InvalidSignature { key: key() },
            NoteError::UnverifiedNote => CheckpointError::MissingSignature { key: key() },
            other => CheckpointError::MalformedNote(other.to_string()),
        })?;
        let text = std::str::from_utf8(note.text())
            .map_err(|_| CheckpointError::MalformedNote("the text is not UTF-8".to_owned()))?;
        let checkpoint = Checkpoint::parse_body(text)?;
        // C2SP tlog-checkpoint: the origin line must be the expected origin, or
        // a key could vouch for another log's checkpoint.
        if checkpoint.origin != self.inner.origin {
            return Err(CheckpointError::OriginMismatch {
                expected: self.inner.origin.clone(),
                found: checkpoint.origin,
            });
        }
        Ok(checkpoint)
    }
}

/// Who signed a note: one signature line's key name and key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureName {
    /// The key name (a log's origin, a witness's name).
    pub name: String,
    /// The 4-byte key id (C2SP signed-note).
    pub key_id: u32,
}

/// The signers of `note`, in line order, read by the same strict parser
/// that verifies notes; nothing is verified here. For showing who signed
/// (the log and its witnesses) a note verified elsewhere.
///
/// # Errors
///
/// [`CheckpointError::MalformedNote`] when the note is not a C2SP signed
/// note.
pub fn note_signers(note: &str) -> Result<Vec<SignatureName>, CheckpointError> {
    let (_, lines) = note_parts(note)?;
    Ok(lines
        .into_iter()
        .map(|(signature, _)| SignatureName {
            name: signature.name().to_owned(),
            key_id: signature.id(),
        })
        .collect())
}

/// A parsed signature line and its text (with the final newline).
pub(crate) type SignatureLine = (signed_note::Signature, String);

/// Splits a signed note into its text and its signature lines (each parsed,
/// with its line text and final newline). Shared by the cosignature code,
/// which must see lines `signed_note` does not expose.
pub(crate) fn note_parts(note: &str) -> Result<(&str, Vec<SignatureLine>), CheckpointError> {
    let malformed = |why: &str| CheckpointError::MalformedNote(why.to_owned());
    // C2SP signed-note: the text, a blank line, then signature lines.
    let (text, signatures) = note
        .rsplit_once("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let signatures = signatures
        .strip_suffix('\n')
        .ok_or_else(|| malformed("the note does not end in a newline"))?;
    let text = &note[..text.len() + 1];
    let mut parsed = Vec::new();
    for line in signatures.split('\n') {
        let signature = signed_note::Signature::from_bytes(line.as_bytes())
            .map_err(|error| CheckpointError::MalformedNote(format!("{error}: {line:?}")))?;
        parsed.push((signature, format!("{line}\n")));
    }
    Ok((text, parsed))
}

/// One pinned key, as both the `signed_note` key lookup and its verifier.
#[derive(Clone, Debug)]
struct StrictNoteVerifier {
    origin: String,
    key_id: u32,
    key: VerifyingKey,
}

impl Verifier for StrictNoteVerifier {
    fn name(&self) -> &str {
        &self.origin
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(signature) = <&[u8; SIGNATURE_LEN]>::try_from(sig) else {
            return false;
        };
        ed25519::verify_with_key(&self.key, msg, signature).is_ok()
    }
}

impl Verifiers for StrictNoteVerifier {
    fn verifier(&self, name: &str, id: u32) -> Result<&dyn Verifier, VerificationError> {
        if name == self.origin && id == self.key_id {
            Ok(self)
        } else {
            Err(VerificationError::UnknownKey {
                name: name.to_owned(),
                id,
            })
        }
    }
}

#[cfg(test)]
mod signer_tests {
    use super::*;

    #[test]
    fn signers_are_read_strictly_and_in_order() {
        let log = LogSigner::new("aid.example/log", SecretKey::from_seed(&[1; 32])).unwrap();
        let verifier = LogVerifier::from_vkey(&log.vkey()).unwrap();
        let note = log.sign(&Checkpoint {
            origin: "aid.example/log".into(),
            size: 3,
            root: crate::tlog_tiles::Hash([7; 32]),
        });
        let signers = note_signers(&note).unwrap();
        assert_eq!(signers.len(), 1);
        assert_eq!(signers[0].name, "aid.example/log");
        assert_eq!(signers[0].key_id, verifier.key_id());
        assert!(matches!(
            note_signers("aid.example/log\n3\n"),
            Err(CheckpointError::MalformedNote(_))
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert!(is_valid_origin("aid.ninhthuan.example/children-2019-2025"));
        assert!(!is_valid_origin(""));
        assert!(!is_valid_origin("a b"));
        assert!(!is_valid_origin("a+b"));
        assert!(!is_valid_origin("https://example.com/log"));
        assert!(!is_valid_origin("tête.example"));
        assert!(!is_valid_origin("a\tb"));
        assert!(is_valid_origin(&"a".repeat(ORIGIN_LEN_MAX)));
        assert!(!is_valid_origin(&"a".repeat(ORIGIN_LEN_MAX + 1)));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal("18446744073709551616"), None);
        assert_eq!(parse_decimal("007"), None);
        assert_eq!(parse_decimal("+7"), None);
        assert_eq!(parse_decimal("-0"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal(" 7"), None);
    }
}
