//! Event signatures (SPEC §3): the signed bytes, signing, and strict
//! verification of a submission.

use aidledger_tlog::ed25519;
use aidledger_wire::pb;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::decode::decode_event;
use crate::event::{Event, PublicKey};
use crate::rejection::{Reason, Rejection, reject};

/// SPEC §3: the domain separator at the start of every signed message.
pub const SIGNING_CONTEXT: &[u8] = b"aidledger/v1/event";

/// SPEC §3: `"aidledger/v1/event" || 0x0A || origin || 0x0A || event`.
/// Binding the origin means an event signed for one ledger can never be
/// replayed into another.
pub fn signing_message(origin: &str, event_bytes: &[u8]) -> Vec<u8> {
    let mut message =
        Vec::with_capacity(SIGNING_CONTEXT.len() + origin.len() + event_bytes.len() + 2);
    message.extend_from_slice(SIGNING_CONTEXT);
    message.push(b'\n');
    message.extend_from_slice(origin.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(event_bytes);
    message
}

/// Signs serialized event bytes for the ledger `origin`.
pub fn sign_event(key: &ed25519::SecretKey, origin: &str, event_bytes: Vec<u8>) -> pb::SignedEvent {
    let signature = key.sign(&signing_message(origin, &event_bytes));
    pb::SignedEvent {
        event: event_bytes.into(),
        public_key: Bytes::copy_from_slice(&key.public_key()),
        signature: Bytes::copy_from_slice(&signature),
    }
}

/// A submission whose format has been checked (and, when built by
/// [`verify_submission`], its signature too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedEvent {
    /// The submission exactly as received; stored verbatim.
    pub signed: pb::SignedEvent,
    /// What the event says.
    pub event: Event,
    /// Who signed it.
    pub signer: PublicKey,
    /// Identifies the exact submission bytes, for idempotent resubmission.
    pub digest: [u8; 32],
}

/// Identifies the exact bytes of a submission: two submissions have the same
/// digest only if event, key and signature bytes are all equal.
pub fn submission_digest(signed: &pb::SignedEvent) -> [u8; 32] {
    let mut hasher = Sha256::new();
    // Length-prefix the variable part so no two different triples collide.
    hasher.update((signed.event.len() as u64).to_be_bytes());
    hasher.update(&signed.event);
    hasher.update(&signed.public_key);
    hasher.update(&signed.signature);
    hasher.finalize().into()
}

/// Checks lengths and decodes the event, without verifying the signature.
/// Used when replaying the ledger's own store, whose integrity the checkpoint
/// vouches for.
pub fn check_format(signed: pb::SignedEvent) -> Result<CheckedEvent, Rejection> {
    let signer = <[u8; 32]>::try_from(&signed.public_key[..])
        .map(PublicKey)
        .map_err(|_| {
            Rejection::new(
                Reason::InvalidKey,
                format!(
                    "public_key is {} bytes, not a 32-byte Ed25519 key",
                    signed.public_key.len()
                ),
            )
        })?;
    if signed.signature.len() != ed25519::SIGNATURE_LEN {
        return reject(
            Reason::InvalidKey,
            format!(
                "signature is {} bytes, not a 64-byte Ed25519 signature",
                signed.signature.len()
            ),
        );
    }
    let event = decode_event(signed.event.clone())?;
    let digest = submission_digest(&signed);
    Ok(CheckedEvent {
        signed,
        event,
        signer,
        digest,
    })
}

/// Checks format and verifies the signature strictly (SPEC §3). Stateless,
/// so submissions can be verified in parallel before they are sequenced.
pub fn verify_submission(origin: &str, signed: pb::SignedEvent) -> Result<CheckedEvent, Rejection> {
    let checked = check_format(signed)?;
    let signature: [u8; 64] = checked.signed.signature[..]
        .try_into()
        .expect("check_format checked the signature length");
    let message = signing_message(origin, &checked.signed.event);
    if ed25519::verify_strict(&checked.signer.0, &message, &signature).is_err() {
        return reject(
            Reason::BadSignature,
            format!(
                "the signature by {} does not verify for origin {origin:?}",
                checked.signer
            ),
        );
    }
    Ok(checked)
}
