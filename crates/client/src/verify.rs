//! The checks the client runs on every answer, before handing it back: pure
//! functions from what the ledger sent to a verified value or a
//! [`ClientError::Verification`] naming what is wrong.
//!
//! What is checked, by answer:
//!
//! - an entry: `leaf_hash == SHA-256(0x00 || entry)` (SPEC §4), the entry
//!   decodes with the expected `seq`, and its event signature verifies
//!   strictly against the origin (SPEC §3);
//! - a stream of entries: the above, plus seq continuity, the hash chain and
//!   non-decreasing recorded time ([`ChainChecker`], SPEC §4);
//! - a checkpoint: the note's signature by the pinned ledger key when there
//!   is one (SPEC §5), the origin, and that `size` and `root_hash` agree with
//!   the note;
//! - an inclusion proof: RFC 9162 2.1.3.2 from the leaf hash to the
//!   checkpoint's root;
//! - an append: the entry carries exactly the submitted event at the
//!   acknowledged seq, and, when waited for, its inclusion proof.

use std::fmt;

use aidledger_ledger::signing::signing_message;
use aidledger_ledger::{ChainChecker, Timestamp};
use aidledger_tlog::ed25519::{self, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use aidledger_tlog::{Checkpoint, Hash, LogVerifier, leaf_hash, verify_inclusion};
use aidledger_wire::{Message as _, pb};
use bytes::Bytes;

use crate::error::{ClientError, Rejected};

/// How to find an entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EntryKey {
    /// By position in the log.
    Seq(u64),
    /// By the `event_id` of the event it carries.
    EventId(String),
}

impl fmt::Display for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryKey::Seq(seq) => write!(f, "entry {seq}"),
            EntryKey::EventId(id) => write!(f, "the entry of event {id}"),
        }
    }
}

/// An entry whose leaf hash, seq and event signature have been checked.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedEntry {
    /// Its position, the Merkle leaf index.
    pub seq: u64,
    /// `SHA-256(0x00 || bytes)`.
    pub leaf_hash: [u8; 32],
    /// The leaf hash of entry `seq - 1` (zeros for entry 0), as the entry
    /// states it. Checked against the previous entry only in a stream.
    pub prev_hash: [u8; 32],
    /// The ledger's clock when it appended the entry.
    pub recorded_at: Timestamp,
    /// The submission, exactly as signed.
    pub signed_event: pb::SignedEvent,
    /// The decoded event (decoded, not judged: the ledger's rules did that).
    pub event: pb::Event,
    /// The `LedgerEntry` bytes as served. Like the byte fields of
    /// `signed_event` and `event`, a slice of the buffer the entry arrived
    /// in: whoever keeps entries for long should copy what it keeps.
    pub bytes: Bytes,
}

/// A checkpoint and the signed note that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// Origin, tree size and root hash.
    pub checkpoint: Checkpoint,
    /// The whole signed note text.
    pub note: String,
    /// Whether the note's signature was verified against a pinned ledger key.
    /// `false` means only its form and origin were checked: without a pinned
    /// key, a checkpoint is the server's word.
    pub signature_verified: bool,
}

/// A verified inclusion proof: the entry's leaf is in the tree of the
/// checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// The checkpoint the proof leads to.
    pub checkpoint: SignedCheckpoint,
    /// The proof hashes, in RFC 9162 order (bottom up).
    pub proof: Vec<[u8; 32]>,
}

/// An acknowledged append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Where the event is in the log.
    pub seq: u64,
    /// The entry's leaf hash.
    pub leaf_hash: [u8; 32],
    /// The identical submission was already in the ledger; `seq` is where.
    pub duplicate: bool,
    /// With `wait_for_checkpoint`: the checkpoint covering the entry and the
    /// entry's verified inclusion proof.
    pub inclusion: Option<Inclusion>,
}

/// An entry proven to be in a checkpoint's tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Proven {
    /// The entry.
    pub entry: VerifiedEntry,
    /// Its inclusion in the latest checkpoint.
    pub inclusion: Inclusion,
}

fn hash32(what: &str, bytes: &[u8]) -> Result<[u8; 32], ClientError> {
    bytes
        .try_into()
        .map_err(|_| ClientError::verification(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// Checks one served entry against `checker`, which knows the seq and leaf
/// hash the entry must follow, and advances it.
pub(crate) fn link_entry(
    origin: &str,
    checker: &mut ChainChecker,
    served: pb::Entry,
) -> Result<VerifiedEntry, ClientError> {
    let prev_hash = checker.head();
    let expected_seq = checker.next_seq();
    if served.seq != expected_seq {
        return Err(ClientError::verification(format!(
            "expected entry {expected_seq}, the ledger sent entry {}",
            served.seq
        )));
    }
    // SPEC §4: seq continuity, prev_hash, recorded time; computes the leaf hash.
    let linked = checker
        .check(served.entry.clone())
        .map_err(|error| ClientError::verification(error.to_string()))?;
    // SPEC §4: "Leaf hash: SHA-256(0x00 || entry bytes)".
    if served.leaf_hash[..] != linked.leaf_hash {
        return Err(ClientError::verification(format!(
            "entry {}: the served leaf hash is not SHA-256(0x00 || entry)",
            linked.seq
        )));
    }
    let event = check_event_signature(origin, linked.seq, &linked.signed_event)?;
    Ok(VerifiedEntry {
        seq: linked.seq,
        leaf_hash: linked.leaf_hash,
        prev_hash,
        recorded_at: linked.recorded_at,
        signed_event: linked.signed_event,
        event,
        bytes: served.entry,
    })
}

/// Checks an entry fetched on its own: its leaf hash, that it is the entry
/// asked for, and its event signature. Its `prev_hash` is taken as stated.
pub(crate) fn check_entry(
    origin: &str,
    key: &EntryKey,
    served: pb::Entry,
) -> Result<VerifiedEntry, ClientError> {
    let stated = pb::LedgerEntry::decode(served.entry.clone()).map_err(|error| {
        ClientError::verification(format!("entry {}: undecodable: {error}", served.seq))
    })?;
    let prev_hash = hash32(
        &format!("entry {} prev_hash", served.seq),
        &stated.prev_hash,
    )?;
    // Resume a chain checker just before this entry, so one code path checks
    // the format of every entry; the earliest possible time as the floor.
    let mut checker =
        ChainChecker::resume(served.seq, prev_hash, Timestamp::from_seconds(i64::MIN));
    let entry = link_entry(origin, &mut checker, served)?;
    match key {
        EntryKey::Seq(seq) if entry.seq != *seq => Err(ClientError::verification(format!(
            "asked for entry {seq}, the ledger sent entry {}",
            entry.seq
        ))),
        EntryKey::EventId(id) if entry.event.event_id != *id => {
            Err(ClientError::verification(format!(
                "asked for event {id}, the ledger sent entry {} with event {}",
                entry.seq, entry.event.event_id
            )))
        }
        _ => Ok(entry),
    }
}

/// SPEC §3: the event signature verifies strictly over the origin-bound
/// message. Returns the decoded event.
fn check_event_signature(
    origin: &str,
    seq: u64,
    signed: &pb::SignedEvent,
) -> Result<pb::Event, ClientError> {
    let public_key: [u8; PUBLIC_KEY_LEN] = signed.public_key[..].try_into().map_err(|_| {
        ClientError::verification(format!(
            "entry {seq}: public key is {} bytes, not {PUBLIC_KEY_LEN}",
            signed.public_key.len()
        ))
    })?;
    let signature: [u8; SIGNATURE_LEN] = signed.signature[..].try_into().map_err(|_| {
        ClientError::verification(format!(
            "entry {seq}: signature is {} bytes, not {SIGNATURE_LEN}",
            signed.signature.len()
        ))
    })?;
    ed25519::verify_strict(
        &public_key,
        &signing_message(origin, &signed.event),
        &signature,
    )
    .map_err(|error| {
        ClientError::verification(format!(
            "entry {seq}: the event signature does not verify for origin {origin:?}: {error}"
        ))
    })?;
    pb::Event::decode(signed.event.clone()).map_err(|error| {
        ClientError::verification(format!("entry {seq}: the event is undecodable: {error}"))
    })
}

/// The text of a signed note: everything up to the blank line before the
/// signature lines (C2SP signed-note).
fn note_text(note: &str) -> Option<&str> {
    note.find("\n\n").map(|end| &note[..=end])
}

/// Checks a served checkpoint: signed by the pinned key when there is one,
/// of our origin, and with `size` and `root_hash` equal to the note's.
pub(crate) fn check_checkpoint(
    origin: &str,
    verifier: Option<&LogVerifier>,
    served: pb::Checkpoint,
) -> Result<SignedCheckpoint, ClientError> {
    let checkpoint = match verifier {
        // SPEC §5: signed by the ledger key; the verifier also checks that the
        // note's origin is the key's.
        Some(verifier) => verifier
            .verify(&served.note)
            .map_err(|error| ClientError::verification(format!("checkpoint: {error}")))?,
        None => {
            let text = note_text(&served.note).ok_or_else(|| {
                ClientError::verification("checkpoint: the note has no signature lines")
            })?;
            Checkpoint::parse_body(text)
                .map_err(|error| ClientError::verification(format!("checkpoint: {error}")))?
        }
    };
    if checkpoint.origin != origin {
        return Err(ClientError::verification(format!(
            "checkpoint: origin {:?} is not this ledger's {origin:?}",
            checkpoint.origin
        )));
    }
    if checkpoint.size != served.size {
        return Err(ClientError::verification(format!(
            "checkpoint: size field {} differs from the note's {}",
            served.size, checkpoint.size
        )));
    }
    if served.root_hash[..] != checkpoint.root.0 {
        return Err(ClientError::verification(
            "checkpoint: root_hash field differs from the note's root",
        ));
    }
    Ok(SignedCheckpoint {
        checkpoint,
        note: served.note,
        signature_verified: verifier.is_some(),
    })
}

/// Checks an inclusion proof of the leaf `leaf` at `seq` against the
/// checkpoint it carries (RFC 9162 2.1.3.2).
pub(crate) fn check_inclusion(
    origin: &str,
    verifier: Option<&LogVerifier>,
    seq: u64,
    leaf: &[u8; 32],
    served: pb::InclusionProof,
) -> Result<Inclusion, ClientError> {
    let served_checkpoint = served.checkpoint.ok_or_else(|| {
        ClientError::verification(format!(
            "inclusion proof of entry {seq}: no checkpoint in the response"
        ))
    })?;
    let checkpoint = check_checkpoint(origin, verifier, served_checkpoint)?;
    if served.seq != seq {
        return Err(ClientError::verification(format!(
            "asked for a proof of entry {seq}, the ledger proved entry {}",
            served.seq
        )));
    }
    let size = checkpoint.checkpoint.size;
    if served.tree_size != size {
        return Err(ClientError::verification(format!(
            "inclusion proof of entry {seq}: tree size {} but the checkpoint's is {size}",
            served.tree_size
        )));
    }
    let proof = served
        .hashes
        .iter()
        .enumerate()
        .map(|(i, hash)| hash32(&format!("inclusion proof of entry {seq}: hash {i}"), hash))
        .collect::<Result<Vec<_>, _>>()?;
    let path: Vec<Hash> = proof.iter().copied().map(Hash).collect();
    verify_inclusion(&Hash(*leaf), seq, size, &path, &checkpoint.checkpoint.root).map_err(
        |error| {
            ClientError::verification(format!(
                "inclusion proof of entry {seq} in the tree of size {size}: {error}"
            ))
        },
    )?;
    Ok(Inclusion { checkpoint, proof })
}

/// Checks an `AppendResponse` for `submitted`: the entry bytes (when sent)
/// hash to the leaf hash and carry exactly the submitted event at `seq`;
/// with `waited`, the checkpoint and inclusion proof verify.
pub(crate) fn check_appended(
    origin: &str,
    verifier: Option<&LogVerifier>,
    submitted: &pb::SignedEvent,
    response: pb::AppendResponse,
    waited: bool,
) -> Result<Appended, ClientError> {
    let seq = response.seq;
    let leaf = hash32(
        &format!("append: entry {seq} leaf hash"),
        &response.leaf_hash,
    )?;
    if !response.entry.is_empty() {
        if leaf_hash(&response.entry).0 != leaf {
            return Err(ClientError::verification(format!(
                "append: entry {seq}: the leaf hash is not SHA-256(0x00 || entry)"
            )));
        }
        let entry = pb::LedgerEntry::decode(response.entry.clone()).map_err(|error| {
            ClientError::verification(format!("append: entry {seq} is undecodable: {error}"))
        })?;
        if entry.seq != seq {
            return Err(ClientError::verification(format!(
                "append: acknowledged seq {seq}, but the entry says {}",
                entry.seq
            )));
        }
        if entry.signed_event.as_ref() != Some(submitted) {
            return Err(ClientError::verification(format!(
                "append: entry {seq} does not carry the submitted event"
            )));
        }
    }
    let inclusion = match (waited, response.checkpoint, response.proof) {
        (false, _, _) => None,
        (true, Some(checkpoint), Some(mut proof)) => {
            // The checkpoint sits beside the proof in the response; a proof
            // that carries its own must carry the same one.
            match &proof.checkpoint {
                Some(own) if *own != checkpoint => {
                    return Err(ClientError::verification(format!(
                        "append: entry {seq}: the proof's checkpoint differs from the response's"
                    )));
                }
                _ => proof.checkpoint = Some(checkpoint),
            }
            Some(check_inclusion(origin, verifier, seq, &leaf, proof)?)
        }
        (true, _, _) => {
            return Err(ClientError::verification(format!(
                "append: asked to wait for a checkpoint, but the response for entry {seq} has no checkpoint and proof"
            )));
        }
    };
    Ok(Appended {
        seq,
        leaf_hash: leaf,
        duplicate: response.duplicate,
        inclusion,
    })
}

/// Reads an `AppendBatchResponse`: one result per submitted event, in order.
pub(crate) fn check_batch(
    submitted_count: usize,
    response: pb::AppendBatchResponse,
) -> Result<Vec<Result<Appended, Rejected>>, ClientError> {
    if response.results.len() != submitted_count {
        return Err(ClientError::verification(format!(
            "append batch: {} events submitted, {} results returned",
            submitted_count,
            response.results.len()
        )));
    }
    response
        .results
        .into_iter()
        .enumerate()
        .map(|(i, result)| {
            if result.code != 0 {
                return Ok(Err(Rejected::from_result(
                    result.code,
                    &result.reason,
                    &result.message,
                )));
            }
            let leaf = hash32(
                &format!("append batch: result {i} leaf hash"),
                &result.leaf_hash,
            )?;
            Ok(Ok(Appended {
                seq: result.seq,
                leaf_hash: leaf,
                duplicate: result.duplicate,
                inclusion: None,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use aidledger_tlog::LogSigner;
    use aidledger_tlog::ed25519::SecretKey;

    use super::*;
    use crate::test_support::{Fixture, ORIGIN};

    /// A copy of `bytes` with one bit of byte `index` flipped.
    fn flipped(bytes: &[u8], index: usize) -> Bytes {
        let mut bytes = bytes.to_vec();
        bytes[index] ^= 1;
        bytes.into()
    }

    fn expect_verification(result: Result<impl fmt::Debug, ClientError>, needle: &str) {
        match result {
            Err(ClientError::Verification { what }) => {
                assert!(
                    what.contains(needle),
                    "{what:?} does not mention {needle:?}"
                );
            }
            other => panic!("expected a verification error about {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn an_honest_entry_verifies_by_seq_and_by_event_id() {
        let fixture = Fixture::new(3);
        let entry = check_entry(ORIGIN, &EntryKey::Seq(1), fixture.served(1)).unwrap();
        assert_eq!(entry.seq, 1);
        assert_eq!(entry.prev_hash, leaf_hash(&fixture.entries[0]).0);
        assert_eq!(entry.event.org_id, "agency-1");
        let id = entry.event.event_id.clone();
        let by_id = check_entry(ORIGIN, &EntryKey::EventId(id), fixture.served(1)).unwrap();
        assert_eq!(by_id, entry);
    }

    #[test]
    fn a_wrong_leaf_hash_is_caught() {
        let fixture = Fixture::new(2);
        let mut served = fixture.served(1);
        served.leaf_hash = flipped(&served.leaf_hash, 0);
        expect_verification(check_entry(ORIGIN, &EntryKey::Seq(1), served), "leaf hash");
    }

    #[test]
    fn another_entry_than_asked_is_caught() {
        let fixture = Fixture::new(3);
        expect_verification(
            check_entry(ORIGIN, &EntryKey::Seq(2), fixture.served(1)),
            "asked for entry 2",
        );
        expect_verification(
            check_entry(ORIGIN, &EntryKey::EventId("nope".into()), fixture.served(1)),
            "asked for event nope",
        );
    }

    #[test]
    fn an_event_signed_for_another_origin_is_caught() {
        let fixture = Fixture::new(1);
        expect_verification(
            check_entry("other.example/log", &EntryKey::Seq(0), fixture.served(0)),
            "signature does not verify",
        );
    }

    #[test]
    fn a_stream_checks_continuity_and_the_chain() {
        let fixture = Fixture::new(4);
        let mut checker = ChainChecker::new();
        for seq in 0..4 {
            let entry = link_entry(ORIGIN, &mut checker, fixture.served(seq)).unwrap();
            assert_eq!(entry.seq, seq);
        }
        // A gap: entry 2 where 1 is expected.
        let mut checker = ChainChecker::new();
        link_entry(ORIGIN, &mut checker, fixture.served(0)).unwrap();
        expect_verification(
            link_entry(ORIGIN, &mut checker, fixture.served(2)),
            "expected entry 1",
        );
        // A chain resumed from the wrong head.
        let mut checker = ChainChecker::resume(2, [7; 32], Timestamp::from_seconds(0));
        expect_verification(
            link_entry(ORIGIN, &mut checker, fixture.served(2)),
            "prev_hash",
        );
    }

    #[test]
    fn checkpoints_verify_with_and_without_a_pinned_key() {
        let fixture = Fixture::new(5);
        let verifier = fixture.verifier();
        let pinned = check_checkpoint(ORIGIN, Some(&verifier), fixture.checkpoint()).unwrap();
        assert!(pinned.signature_verified);
        assert_eq!(pinned.checkpoint.size, 5);
        let unpinned = check_checkpoint(ORIGIN, None, fixture.checkpoint()).unwrap();
        assert!(!unpinned.signature_verified);
        assert_eq!(unpinned.checkpoint, pinned.checkpoint);
    }

    #[test]
    fn a_checkpoint_by_another_key_or_with_lying_fields_is_caught() {
        let fixture = Fixture::new(5);
        let other = LogSigner::new(ORIGIN, SecretKey::from_seed(&[9; 32])).unwrap();
        let other_verifier = LogVerifier::from_vkey(&other.vkey()).unwrap();
        expect_verification(
            check_checkpoint(ORIGIN, Some(&other_verifier), fixture.checkpoint()),
            "no signature",
        );
        let mut lying = fixture.checkpoint();
        lying.size = 6;
        expect_verification(check_checkpoint(ORIGIN, None, lying), "size field");
        let mut lying = fixture.checkpoint();
        lying.root_hash = flipped(&lying.root_hash, 5);
        expect_verification(check_checkpoint(ORIGIN, None, lying), "root_hash");
        expect_verification(
            check_checkpoint("other.example/log", None, fixture.checkpoint()),
            "origin",
        );
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf() {
        let fixture = Fixture::new(7);
        let verifier = fixture.verifier();
        for seq in 0..7 {
            let leaf = leaf_hash(&fixture.entries[seq as usize]).0;
            let inclusion =
                check_inclusion(ORIGIN, Some(&verifier), seq, &leaf, fixture.proof(seq)).unwrap();
            assert_eq!(inclusion.checkpoint.checkpoint.size, 7);
        }
    }

    #[test]
    fn a_tampered_proof_is_caught() {
        let fixture = Fixture::new(7);
        let leaf = leaf_hash(&fixture.entries[3]).0;
        let mut proof = fixture.proof(3);
        proof.hashes[1] = flipped(&proof.hashes[1], 0);
        expect_verification(check_inclusion(ORIGIN, None, 3, &leaf, proof), "root");
        let mut proof = fixture.proof(3);
        proof.hashes.pop();
        expect_verification(check_inclusion(ORIGIN, None, 3, &leaf, proof), "hashes");
        expect_verification(
            check_inclusion(ORIGIN, None, 4, &leaf, fixture.proof(3)),
            "proved entry 3",
        );
        let other_leaf = leaf_hash(&fixture.entries[4]).0;
        expect_verification(
            check_inclusion(ORIGIN, None, 3, &other_leaf, fixture.proof(3)),
            "root",
        );
    }

    #[test]
    fn an_append_response_must_carry_the_submitted_event() {
        let fixture = Fixture::new(3);
        let submitted = fixture.signed(2);
        let response = pb::AppendResponse {
            seq: 2,
            leaf_hash: leaf_hash(&fixture.entries[2]).0.to_vec().into(),
            entry: fixture.entries[2].clone().into(),
            duplicate: false,
            checkpoint: Some(fixture.checkpoint()),
            proof: Some(fixture.proof(2)),
        };
        let verifier = fixture.verifier();
        let appended =
            check_appended(ORIGIN, Some(&verifier), &submitted, response.clone(), true).unwrap();
        assert_eq!(appended.seq, 2);
        assert!(appended.inclusion.unwrap().checkpoint.signature_verified);

        let other = fixture.signed(1);
        expect_verification(
            check_appended(ORIGIN, None, &other, response.clone(), false),
            "does not carry the submitted event",
        );
        let mut no_proof = response;
        no_proof.proof = None;
        expect_verification(
            check_appended(ORIGIN, None, &submitted, no_proof, true),
            "no checkpoint and proof",
        );
    }

    #[test]
    fn batch_results_map_one_to_one() {
        let response = pb::AppendBatchResponse {
            results: vec![
                pb::AppendResult {
                    seq: 4,
                    leaf_hash: vec![1; 32].into(),
                    duplicate: true,
                    ..Default::default()
                },
                pb::AppendResult {
                    code: 9,
                    reason: "INSUFFICIENT_BALANCE".into(),
                    message: "INSUFFICIENT_BALANCE: 5 < 10".into(),
                    ..Default::default()
                },
            ],
        };
        let results = check_batch(2, response.clone()).unwrap();
        assert_eq!(results[0].as_ref().unwrap().seq, 4);
        assert!(results[0].as_ref().unwrap().duplicate);
        let refused = results[1].as_ref().unwrap_err();
        assert_eq!(refused.reason, "INSUFFICIENT_BALANCE");
        assert_eq!(refused.message, "5 < 10");
        expect_verification(check_batch(3, response), "3 events submitted, 2 results");
    }
}
