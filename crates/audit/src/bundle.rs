//! Proof bundles: one entry, its inclusion proof and the signed (and
//! cosigned) checkpoint it leads to, in one JSON document that anyone can
//! verify offline with the ledger's vkey (and, if they want, the witnesses'
//! vkeys).
//!
//! ```json
//! {
//!   "format": "aidledger-proof-bundle/v1",
//!   "vkey": "<the ledger's vkey, informational: verifiers pin their own>",
//!   "checkpoint": "<signed note, with cosignature lines>",
//!   "seq": 42,
//!   "entry": "<base64 of the LedgerEntry bytes>",
//!   "proof": ["<base64 hash>", "..."]
//! }
//! ```
//!
//! Verifying it proves that the entry is the leaf `seq` of the tree the
//! ledger signed, and that its event was signed by the key it names. It
//! does not prove that the key was registered at that point: that is a
//! replay of the log before it, which `verify` does.

use aidledger_ledger::{CheckedEvent, verify_submission};
use aidledger_tlog::{Checkpoint, Cosignature, Hash, leaf_hash, verify_inclusion};
use aidledger_wire::{Message as _, pb};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::auditor::verify_note;
use crate::failure::{Failure, reason};
use crate::quorum::WitnessQuorum;

/// The `format` of a bundle.
pub const BUNDLE_FORMAT: &str = "aidledger-proof-bundle/v1";

/// A self-contained inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// The ledger's vkey as the prover knew it; a verifier pins its own.
    pub vkey: String,
    /// The signed checkpoint note, with cosignature lines.
    pub checkpoint: String,
    /// The entry's seq, its leaf index.
    pub seq: u64,
    /// The `LedgerEntry` bytes, base64.
    pub entry: String,
    /// The inclusion proof, RFC 9162 order, base64 hashes.
    pub proof: Vec<String>,
}

impl ProofBundle {
    /// A bundle of entry `seq` with `proof` into the checkpoint `note`.
    pub fn new(vkey: &str, note: &str, seq: u64, entry: &[u8], proof: &[Hash]) -> Self {
        ProofBundle {
            format: BUNDLE_FORMAT.into(),
            vkey: vkey.into(),
            checkpoint: note.into(),
            seq,
            entry: BASE64.encode(entry),
            proof: proof.iter().map(|hash| BASE64.encode(hash.0)).collect(),
        }
    }
}

/// What a verified bundle proves.
#[derive(Debug)]
pub struct ProvenEntry {
    /// The checkpoint the entry is in.
    pub checkpoint: Checkpoint,
    /// The entry's seq.
    pub seq: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// The event, decoded, with its verified signer.
    pub event: CheckedEvent,
    /// Valid cosignatures of known witnesses (empty without a quorum).
    pub cosignatures: Vec<Cosignature>,
}

/// Verifies a bundle offline against the pinned `vkey` and, when given,
/// a witness quorum.
///
/// # Errors
///
/// [`reason::CHECKPOINT_INVALID`], [`reason::WITNESS_QUORUM`],
/// [`reason::PROOF_INVALID`], or the entry's own failure (undecodable,
/// `BAD_SIGNATURE`, ...).
pub fn verify_bundle(
    bundle: &ProofBundle,
    vkey: &str,
    quorum: Option<&WitnessQuorum>,
) -> Result<ProvenEntry, Failure> {
    let invalid = |detail: String| Failure::of(reason::PROOF_INVALID, detail);
    if bundle.format != BUNDLE_FORMAT {
        return Err(invalid(format!(
            "format {:?} is not {BUNDLE_FORMAT}",
            bundle.format
        )));
    }
    let log = aidledger_tlog::LogVerifier::from_vkey(vkey)
        .map_err(|e| Failure::of(reason::CHECKPOINT_INVALID, e.to_string()))?;
    let checkpoint = verify_note(&log, &bundle.checkpoint)?;
    let cosignatures = match quorum {
        Some(quorum) => quorum.check(&bundle.checkpoint)?,
        None => Vec::new(),
    };
    let entry = BASE64
        .decode(&bundle.entry)
        .map_err(|_| invalid("the entry is not base64".into()))?;
    let proof = bundle
        .proof
        .iter()
        .map(|hash| {
            BASE64
                .decode(hash)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .map(Hash)
                .ok_or_else(|| invalid("a proof hash is not the base64 of 32 bytes".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let seq = bundle.seq;
    // SPEC §4: the leaf hash is SHA-256(0x00 || entry bytes).
    let leaf = leaf_hash(&entry);
    verify_inclusion(&leaf, seq, checkpoint.size, &proof, &checkpoint.root).map_err(|error| {
        invalid(format!(
            "entry {seq} is not proven in the checkpoint of size {}: {error}",
            checkpoint.size
        ))
    })?;
    let decoded = pb::LedgerEntry::decode(entry.as_slice())
        .map_err(|e| Failure::at(seq, reason::UNDECODABLE_ENTRY, e.to_string()))?;
    if decoded.seq != seq {
        return Err(Failure::at(
            seq,
            reason::WRONG_SEQ,
            format!("the entry says seq {}", decoded.seq),
        ));
    }
    let signed = decoded
        .signed_event
        .ok_or_else(|| Failure::at(seq, reason::MALFORMED_ENTRY, "no signed event"))?;
    let event = verify_submission(&checkpoint.origin, signed)
        .map_err(|rejection| Failure::rejected(seq, &rejection))?;
    Ok(ProvenEntry {
        checkpoint,
        seq,
        leaf_hash: leaf,
        event,
        cosignatures,
    })
}
