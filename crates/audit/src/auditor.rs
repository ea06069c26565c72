//! The streaming verifier: everything SPEC §4 asks of an auditor, entry by
//! entry, then the Merkle root against a checkpoint signed by the pinned
//! ledger key.
//!
//! Work is split in two stages that overlap. The **verify** stage is
//! stateless and runs on every core (rayon): decode each entry and verify
//! its event signature strictly (SPEC §3). The **replay** stage is
//! sequential: the hash chain, seq continuity and recorded time
//! ([`ChainChecker`]), the tree, and the rules of SPEC §7 ([`State::apply`],
//! the same code the ledger decides with, which also checks that the key
//! was registered and not revoked at that point). While batch n is
//! replayed, batch n+1 is verified, so the replay costs only the share of
//! one core it really uses.
//!
//! Failures are reported in seq order: an entry whose signature fails is
//! named before a later entry whose link breaks, whichever stage noticed
//! first.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use aidledger_ledger::{
    ChainChecker, CheckedEvent, LedgerParams, Reason, Rejection, State, check_format,
    signing_message,
};
use aidledger_tlog::ed25519::{DecodedPublicKey, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use aidledger_tlog::{Checkpoint, Hash, LogVerifier, TreeBuilder};
use aidledger_wire::{Message as _, pb};
use bytes::Bytes;
use rayon::prelude::*;

use crate::failure::{Failure, reason};

/// Entries verified per parallel batch: large enough to keep every core
/// busy between two replays, small enough to hold (at most 4096 x 64 KiB).
pub const AUDIT_BATCH_ENTRIES_MAX: usize = 4096;

/// The sequential part of the audit: chain, tree and rules.
#[derive(Debug)]
struct Replay {
    chain: ChainChecker,
    tree: TreeBuilder,
    state: State,
}

/// A batch whose signatures have been checked, waiting for replay.
#[derive(Debug)]
struct VerifiedBatch {
    entries: Vec<Bytes>,
    /// Per entry: the checked event, or why its signature or format failed
    /// (`None` when the entry does not even decode; the chain check names
    /// that).
    checked: Vec<Result<CheckedEvent, Option<Rejection>>>,
}

/// Verifies a log as a stream of entry bytes, from entry 0.
#[derive(Debug)]
pub struct LogAuditor {
    origin: String,
    log: LogVerifier,
    replay: Replay,
    pending: Option<VerifiedBatch>,
    failure: Option<Failure>,
    keys: RwLock<KeyCache>,
}

impl LogAuditor {
    /// An auditor of the log whose checkpoint key is `vkey`. The Genesis
    /// must name this vkey and the key's origin (SPEC §7 genesis).
    ///
    /// # Errors
    ///
    /// A malformed vkey.
    pub fn new(vkey: &str) -> Result<Self, aidledger_tlog::CheckpointError> {
        let log = LogVerifier::from_vkey(vkey)?;
        let origin = log.origin().to_owned();
        Ok(LogAuditor {
            replay: Replay {
                chain: ChainChecker::new(),
                tree: TreeBuilder::new(),
                state: State::new(LedgerParams {
                    origin: origin.clone(),
                    log_vkey: Some(vkey.trim().to_owned()),
                    // Any key may sign the Genesis as long as it registers
                    // itself (SPEC §7); which authority that is, is for the
                    // auditor to judge from the report.
                    authority_key: None,
                }),
            },
            origin,
            log,
            pending: None,
            failure: None,
            keys: RwLock::new(KeyCache::new()),
        })
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The pinned ledger key.
    pub fn log_verifier(&self) -> &LogVerifier {
        &self.log
    }

    /// Entries fully checked so far (verified batches still waiting for
    /// replay are not counted).
    pub fn size(&self) -> u64 {
        self.replay.tree.size()
    }

    /// The rules' state after the entries checked so far.
    pub fn state(&self) -> &State {
        &self.replay.state
    }

    /// Checks the next entries (at most [`AUDIT_BATCH_ENTRIES_MAX`] at a
    /// time is best). Their replay may complete only at the next call or at
    /// [`Self::flush`].
    ///
    /// # Errors
    ///
    /// The first failure, by seq; every later call returns it again.
    pub fn push(&mut self, entries: Vec<impl Into<Bytes>>) -> Result<(), Failure> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        // Shared, so the decoded fields of both passes are slices, not copies.
        let entries: Vec<Bytes> = entries.into_iter().map(Into::into).collect();
        let pending = self.pending.take();
        let origin = self.origin.as_str();
        let replay = &mut self.replay;
        let keys = &self.keys;
        // Verify this batch on the pool while this thread replays the last.
        let (verified, replayed) = rayon::join(
            || verify_batch(origin, keys, entries),
            || pending.map_or(Ok(()), |batch| replay.apply(batch)),
        );
        if let Err(failure) = replayed {
            self.failure = Some(failure.clone());
            return Err(failure);
        }
        self.pending = Some(verified);
        Ok(())
    }

    /// Replays everything pushed so far.
    ///
    /// # Errors
    ///
    /// The first failure, by seq.
    pub fn flush(&mut self) -> Result<(), Failure> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        if let Some(batch) = self.pending.take()
            && let Err(failure) = self.replay.apply(batch)
        {
            self.failure = Some(failure.clone());
            return Err(failure);
        }
        Ok(())
    }

    /// Replays everything pushed, then checks that `note` is a checkpoint
    /// signed by the pinned key of exactly the entries checked, with their
    /// root (SPEC §4, last sentence).
    ///
    /// # Errors
    ///
    /// An earlier entry failure; [`reason::CHECKPOINT_INVALID`],
    /// [`reason::LOG_TOO_SHORT`] or [`reason::ROOT_MISMATCH`].
    pub fn check_checkpoint(&mut self, note: &str) -> Result<Checkpoint, Failure> {
        self.flush()?;
        let checkpoint = verify_note(&self.log, note)?;
        let size = self.size();
        if checkpoint.size > size {
            return Err(Failure::at(
                size,
                reason::LOG_TOO_SHORT,
                format!(
                    "the checkpoint covers {} entries but the log ends after {size}",
                    checkpoint.size
                ),
            ));
        }
        if checkpoint.size < size {
            return Err(Failure::at(
                checkpoint.size,
                reason::MALFORMED_ENTRY,
                format!(
                    "{} entries follow the checkpoint of size {}: no checkpoint covers them",
                    size - checkpoint.size,
                    checkpoint.size
                ),
            ));
        }
        if checkpoint.root != self.replay.tree.root() {
            return Err(Failure::of(
                reason::ROOT_MISMATCH,
                format!(
                    "the {size} entries do not hash to the root of the signed checkpoint of size {size}"
                ),
            ));
        }
        Ok(checkpoint)
    }

    /// The root of the entries checked so far.
    pub fn root(&self) -> Hash {
        self.replay.tree.root()
    }
}

/// Verifies a checkpoint note against the pinned key.
///
/// # Errors
///
/// [`reason::CHECKPOINT_INVALID`] saying why.
pub fn verify_note(log: &LogVerifier, note: &str) -> Result<Checkpoint, Failure> {
    log.verify(note)
        .map_err(|error| Failure::of(reason::CHECKPOINT_INVALID, error.to_string()))
}

/// Most decoded public keys kept between batches. A real log has a few
/// hundred keys; a hostile one with a fresh key per entry only makes the
/// cache start over.
pub const KEY_CACHE_MAX: usize = 65_536;

/// Signers' public keys, decoded once: decoding (decompressing) the point
/// is a sixth of the cost of a strict verification, and a log is signed by
/// few keys. `None`: the bytes are not a point, so every signature by them
/// fails, as [`verify_strict`](aidledger_tlog::ed25519::verify_strict) says.
type KeyCache = HashMap<[u8; PUBLIC_KEY_LEN], Option<DecodedPublicKey>>;

/// The stateless stage, on every core: decode and check the format, then
/// verify the signature (SPEC §3: strict, over the origin-bound message)
/// with the signer's key decoded once per cache. The cache is read-mostly:
/// a new key takes the write lock once.
fn verify_batch(origin: &str, keys: &RwLock<KeyCache>, entries: Vec<Bytes>) -> VerifiedBatch {
    {
        let mut keys = keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.len() > KEY_CACHE_MAX {
            keys.clear();
        }
    }
    let checked = entries
        .par_iter()
        .map(|bytes| {
            let entry = pb::LedgerEntry::decode(bytes.clone()).map_err(|_| None)?;
            let checked = check_format(entry.signed_event.ok_or(None)?).map_err(Some)?;
            let signer = checked.signer.0;
            let cached = keys
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&signer)
                .copied();
            let key = match cached {
                Some(key) => key,
                None => {
                    let key = DecodedPublicKey::from_bytes(&signer).ok();
                    keys.write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(signer, key);
                    key
                }
            };
            let signature: &[u8; SIGNATURE_LEN] = checked.signed.signature[..]
                .try_into()
                .expect("check_format checked the signature length");
            let message = signing_message(origin, &checked.signed.event);
            if key.is_some_and(|key| key.verify_strict(&message, signature).is_ok()) {
                Ok(checked)
            } else {
                // The ledger's own refusal for this case (verify_submission).
                Err(Some(Rejection::new(
                    Reason::BadSignature,
                    format!(
                        "the signature by {} does not verify for origin {origin:?}",
                        checked.signer
                    ),
                )))
            }
        })
        .collect();
    VerifiedBatch { entries, checked }
}

impl Replay {
    /// The sequential stage, in seq order.
    fn apply(&mut self, batch: VerifiedBatch) -> Result<(), Failure> {
        for (bytes, checked) in batch.entries.into_iter().zip(batch.checked) {
            let seq = self.chain.next_seq();
            // SPEC §4: seq continuity, prev_hash and recorded time.
            let linked = self.chain.check(bytes).map_err(|e| Failure::chain(&e))?;
            let checked = match checked {
                Ok(checked) => checked,
                Err(Some(rejection)) => return Err(Failure::rejected(seq, &rejection)),
                Err(None) => {
                    return Err(Failure::at(
                        seq,
                        reason::MALFORMED_ENTRY,
                        "the entry carries no signed event",
                    ));
                }
            };
            // SPEC §4 and §7: the key registered and not revoked at this
            // point, then every rule, exactly as the ledger decides.
            self.state
                .apply(seq, linked.recorded_at, &checked)
                .map_err(|rejection| Failure::rejected(seq, &rejection))?;
            self.tree.push(Hash(linked.leaf_hash));
        }
        Ok(())
    }
}
