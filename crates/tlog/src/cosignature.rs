//! Witness cosignatures (C2SP tlog-cosignature, Ed25519, signature type
//! 0x04) on checkpoints (SPEC §1, §5).
//!
//! A cosignature is one more signature line on the checkpoint's signed note:
//!
//! ```text
//! — <witness name> base64(key id || u64 timestamp (big-endian) || Ed25519 signature)
//! ```
//!
//! over the message `"cosignature/v1\ntime <timestamp>\n" || <checkpoint body>`.
//! The key id is the first 4 bytes of SHA-256(name || 0x0A || 0x04 || pubkey);
//! the vkey is `<name>+<8 hex key id>+<base64(0x04 || pubkey)>`.
//!
//! `signed_note` 0.2 has no cosignature type, so it is written here, with the
//! same strict Ed25519 as every other signature of the ledger.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::VerifyingKey;

use crate::checkpoint::{Checkpoint, CheckpointError, note_parts};
use crate::ed25519::{self, PUBLIC_KEY_LEN, SIGNATURE_LEN, SecretKey};

/// C2SP tlog-cosignature: the signature type of Ed25519 cosignatures.
pub const COSIGNATURE_TYPE_ED25519: u8 = 0x04;

/// Length of the signature of a cosignature line, after the key id:
/// `u64 timestamp || 64-byte Ed25519 signature`.
const TIMESTAMPED_SIGNATURE_LEN: usize = 8 + SIGNATURE_LEN;

/// C2SP tlog-cosignature: "It MUST NOT exceed 2^63 - 1".
pub const COSIGNATURE_TIMESTAMP_MAX: u64 = (1 << 63) - 1;

/// The message a witness signs: `"cosignature/v1\ntime <t>\n" || body`.
pub fn cosignature_message(checkpoint_body: &str, timestamp: u64) -> Vec<u8> {
    // SPEC: c2sp.org/tlog-cosignature: "two newline terminated lines (one
    // header line and one timestamp line) followed by the whole note body".
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_body}").into_bytes()
}

fn key_id(name: &str, public_key: &[u8; PUBLIC_KEY_LEN]) -> u32 {
    signed_note::key_id(name, &typed_public_key(public_key))
}

fn typed_public_key(public_key: &[u8; PUBLIC_KEY_LEN]) -> Vec<u8> {
    [&[COSIGNATURE_TYPE_ED25519][..], &public_key[..]].concat()
}

/// A witness's signing key.
#[derive(Debug)]
pub struct WitnessSigner {
    name: String,
    key_id: u32,
    key: SecretKey,
}

impl WitnessSigner {
    /// A signer for the witness named `name` (a schema-less URL, like an
    /// origin).
    ///
    /// # Errors
    ///
    /// [`CheckpointError::InvalidOrigin`] for a name that cannot be a key name.
    pub fn new(name: &str, key: SecretKey) -> Result<Self, CheckpointError> {
        if !crate::is_valid_origin(name) {
            return Err(CheckpointError::InvalidOrigin(name.to_owned()));
        }
        Ok(Self {
            key_id: key_id(name, &key.public_key()),
            name: name.to_owned(),
            key,
        })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<8 hex key id>+<base64(0x04 || pubkey)>`.
    pub fn vkey(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(typed_public_key(&self.key.public_key()))
        )
    }

    /// The cosignature line (ending in a newline) on `checkpoint` at
    /// `timestamp` (POSIX seconds), to append to the checkpoint's note.
    ///
    /// # Panics
    ///
    /// If `timestamp` exceeds [`COSIGNATURE_TIMESTAMP_MAX`].
    pub fn cosign(&self, checkpoint: &Checkpoint, timestamp: u64) -> String {
        assert!(
            timestamp <= COSIGNATURE_TIMESTAMP_MAX,
            "timestamp below 2^63"
        );
        let signature = self
            .key
            .sign(&cosignature_message(&checkpoint.body(), timestamp));
        let mut bytes = Vec::with_capacity(4 + TIMESTAMPED_SIGNATURE_LEN);
        bytes.extend_from_slice(&self.key_id.to_be_bytes());
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(&signature);
        format!("— {} {}\n", self.name, BASE64.encode(bytes))
    }
}

/// A verified cosignature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    /// `<name>+<8 hex key id>`: which witness.
    pub witness: String,
    /// When the witness cosigned, POSIX seconds.
    pub timestamp: u64,
    /// The signature line, with its final newline, as it appears in a note.
    pub line: String,
}

/// A known witness's public key.
#[derive(Clone, Debug)]
pub struct WitnessVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl WitnessVerifier {
    /// Parses `<name>+<8 hex key id>+<base64(0x04 || pubkey)>`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::InvalidOrigin`] or [`CheckpointError::MalformedVkey`]
    /// saying what is wrong, including another signature type than 0x04.
    pub fn from_vkey(vkey: &str) -> Result<Self, CheckpointError> {
        let parsed = crate::checkpoint::parse_vkey(
            vkey,
            COSIGNATURE_TYPE_ED25519,
            "an Ed25519 cosignature (0x04)",
        )?;
        let (name, id, key) = (parsed.name, parsed.key_id, parsed.key);
        Ok(Self {
            name: name.to_owned(),
            key_id: id,
            key,
        })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<8 hex key id>`, as error messages and reports name it.
    pub fn id(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }

    /// Finds this witness's cosignature among the signature lines of `note`
    /// and verifies it over the note's text.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::MalformedNote`], [`CheckpointError::MissingSignature`]
    /// when no line is this witness's, [`CheckpointError::InvalidSignature`]
    /// when one is but does not verify (or its timestamp is over 2^63 - 1).
    pub fn verify(&self, note: &str) -> Result<Cosignature, CheckpointError> {
        let (text, signatures) = note_parts(note)?;
        let mut missing = true;
        for (signature, line) in signatures {
            // SPEC: c2sp.org/tlog-cosignature: "ignore any signature lines
            // that don't match the name and key ID".
            if signature.name() != self.name || signature.id() != self.key_id {
                continue;
            }
            missing = false;
            if let Some(timestamp) = self.check(text, signature.signature()) {
                return Ok(Cosignature {
                    witness: self.id(),
                    timestamp,
                    line,
                });
            }
        }
        Err(if missing {
            CheckpointError::MissingSignature { key: self.id() }
        } else {
            CheckpointError::InvalidSignature { key: self.id() }
        })
    }

    /// The timestamp, if `signature` is a valid timestamped signature of `text`.
    fn check(&self, text: &str, signature: &[u8]) -> Option<u64> {
        let signature: &[u8; TIMESTAMPED_SIGNATURE_LEN] = signature.try_into().ok()?;
        let (timestamp, signature) = signature.split_at(8);
        let timestamp = u64::from_be_bytes(timestamp.try_into().ok()?);
        if timestamp > COSIGNATURE_TIMESTAMP_MAX {
            return None;
        }
        let signature: &[u8; SIGNATURE_LEN] = signature.try_into().ok()?;
        ed25519::verify_with_key(&self.key, &cosignature_message(text, timestamp), signature)
            .ok()?;
        Some(timestamp)
    }
}

/// `note` with `lines` (signature lines ending in newlines) appended, each
/// only if the note does not already carry that exact line.
pub fn add_signature_lines<'a>(note: &str, lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = note.to_owned();
    for line in lines {
        if !out.split_inclusive('\n').any(|existing| existing == line) {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LogSigner, LogVerifier, tlog_tiles::Hash};

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "aid.example/log".into(),
            size: 7,
            root: Hash([9; 32]),
        }
    }

    #[test]
    fn cosign_then_verify_and_the_log_key_still_verifies() {
        let log = LogSigner::new("aid.example/log", SecretKey::from_seed(&[1; 32])).unwrap();
        let witness = WitnessSigner::new("witness.example/w1", SecretKey::from_seed(&[2; 32]))
            .expect("valid name");
        let note = log.sign(&checkpoint());
        let line = witness.cosign(&checkpoint(), 1_700_000_000);
        let cosigned = add_signature_lines(&note, [line.as_str()]);
        let verifier = WitnessVerifier::from_vkey(&witness.vkey()).unwrap();
        let cosignature = verifier.verify(&cosigned).unwrap();
        assert_eq!(cosignature.timestamp, 1_700_000_000);
        assert_eq!(cosignature.line, line);
        // SPEC §5: the log's verifier ignores the witness line.
        let log_verifier = LogVerifier::from_vkey(&log.vkey()).unwrap();
        assert_eq!(log_verifier.verify(&cosigned).unwrap(), checkpoint());
        // Appending the same line twice keeps one.
        assert_eq!(add_signature_lines(&cosigned, [line.as_str()]), cosigned);
    }

    #[test]
    fn a_cosignature_of_another_checkpoint_does_not_verify() {
        let log = LogSigner::new("aid.example/log", SecretKey::from_seed(&[1; 32])).unwrap();
        let witness =
            WitnessSigner::new("witness.example/w1", SecretKey::from_seed(&[2; 32])).unwrap();
        let mut other = checkpoint();
        other.size = 8;
        let note = add_signature_lines(
            &log.sign(&checkpoint()),
            [witness.cosign(&other, 5).as_str()],
        );
        let verifier = WitnessVerifier::from_vkey(&witness.vkey()).unwrap();
        assert!(matches!(
            verifier.verify(&note),
            Err(CheckpointError::InvalidSignature { .. })
        ));
        assert!(matches!(
            verifier.verify(&log.sign(&checkpoint())),
            Err(CheckpointError::MissingSignature { .. })
        ));
    }

    #[test]
    fn a_log_vkey_is_not_a_witness_vkey() {
        let log = LogSigner::new("aid.example/log", SecretKey::from_seed(&[1; 32])).unwrap();
        let error = WitnessVerifier::from_vkey(&log.vkey()).unwrap_err();
        assert!(error.to_string().contains("0x01"), "{error}");
    }
}
