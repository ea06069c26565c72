//! The sequencer: the single writer of the log.
//!
//! It turns verified submissions into entries: duplicate check, rules, entry
//! encoding, tree hashes, then one durable store transaction per batch (group
//! commit). Nothing is acknowledged before that transaction is fsync'd.
//!
//! Signature verification is stateless and runs on all cores before the
//! sequencer sees a batch ([`verify_all`]); the sequencer itself is
//! sequential, because each event is judged against the state left by the
//! one before it.

use std::sync::Arc;

use aidledger_ledger::{
    ChainChecker, ChainError, CheckedEvent, ENTRY_BYTES_MAX, LedgerParams, PublicKey, Reason,
    Rejection, State, Timestamp, check_format, encode_entry, verify_submission,
};
use aidledger_store::{
    AppendBatch, BATCH_ENTRIES_MAX, ENTRIES_PAGE_MAX, LogStore, NewEntry, READ_HASHES_MAX,
    StoreError,
};
use aidledger_tlog::{
    Checkpoint, CheckpointError, Hash, LogSigner, LogVerifier, ProofError, TreeBuilder, leaf_hash,
    stored_hash_count, stored_hash_index,
};
use aidledger_wire::pb;
use bytes::Bytes;
use rayon::prelude::*;

use crate::proofs;

/// What the ledger is: fixed for its whole life.
#[derive(Debug)]
pub struct LedgerConfig {
    /// Signs checkpoints; its key name is the origin.
    pub signer: LogSigner,
    /// The key the Genesis must be signed by, when configured.
    pub authority_key: Option<PublicKey>,
}

/// A checkpoint the ledger signed and stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The whole signed note text.
    pub note: String,
    /// What it says.
    pub checkpoint: Checkpoint,
}

/// What became of one accepted submission.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Appended as a new entry.
    Appended {
        /// Its seq.
        seq: u64,
        /// Its leaf hash.
        leaf_hash: Hash,
        /// The entry bytes, as stored.
        entry: Vec<u8>,
    },
    /// The identical submission was already in the log (SPEC §6 idempotency).
    Duplicate {
        /// The seq it has.
        seq: u64,
    },
}

impl Outcome {
    /// The seq of the entry that holds the submission.
    pub fn seq(&self) -> u64 {
        match self {
            Outcome::Appended { seq, .. } | Outcome::Duplicate { seq } => *seq,
        }
    }
}

/// Why a store could not be opened as this ledger. Each names what is wrong
/// and, where the content is at fault, the first bad seq.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The store itself failed.
    #[error("opening the log store")]
    Store(#[from] StoreError),
    /// The entries do not form a valid chain.
    #[error("the stored log is broken at seq {}: {source}", source.seq())]
    Chain {
        /// The first entry that does not continue the chain.
        #[source]
        source: ChainError,
    },
    /// A stored Merkle hash differs from the one the entries produce.
    #[error("the stored tree hash {index} does not match entry {seq}")]
    TreeHash {
        /// The first entry whose hashes differ.
        seq: u64,
        /// The stored-hash index.
        index: u64,
    },
    /// An entry the ledger holds would not be accepted by the rules.
    #[error("stored entry {seq} breaks the ledger's rules: {rejection}")]
    Rule {
        /// The entry.
        seq: u64,
        /// Why the rules refuse it.
        rejection: Rejection,
    },
    /// The stored checkpoint is not signed by this ledger's key.
    #[error("the latest stored checkpoint does not verify with this ledger's key")]
    Checkpoint(#[source] CheckpointError),
    /// The checkpoint covers more entries than the store holds.
    #[error(
        "the latest checkpoint covers {checkpoint_size} entries but the store holds {store_size}: entries {store_size}.. are lost"
    )]
    EntriesMissing {
        /// Entries the signed checkpoint commits to.
        checkpoint_size: u64,
        /// Entries in the store.
        store_size: u64,
    },
    /// The entries do not hash to the signed root.
    #[error("the first {size} entries do not hash to the root of the signed checkpoint")]
    RootMismatch {
        /// The checkpoint's tree size.
        size: u64,
    },
    /// The store's entry and hash counts disagree.
    #[error("the store holds {size} entries but {hash_count} tree hashes, not {expected}")]
    HashCount {
        /// Entries.
        size: u64,
        /// Hashes found.
        hash_count: u64,
        /// Hashes expected.
        expected: u64,
    },
}

impl OpenError {
    /// The first seq whose stored content is wrong, when one is known.
    pub fn first_bad_seq(&self) -> Option<u64> {
        match self {
            OpenError::Chain { source } => Some(source.seq()),
            OpenError::TreeHash { seq, .. } | OpenError::Rule { seq, .. } => Some(*seq),
            OpenError::EntriesMissing { store_size, .. } => Some(*store_size),
            _ => None,
        }
    }
}

/// An operating failure of the sequencer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The store failed during an append or checkpoint. Whether the batch is
    /// durable is unknown, and the in-memory state has moved on: the
    /// sequencer stops, and must be reopened from the store.
    #[error("storage failed; the ledger must be reopened from its store")]
    Storage(#[source] StoreError),
    /// An earlier storage failure stopped this sequencer.
    #[error("the ledger stopped after a storage failure and must be reopened")]
    Stopped,
    /// A read failed.
    #[error("reading the log")]
    Read(#[source] StoreError),
    /// A proof could not be produced.
    #[error("producing a proof")]
    Proof(#[source] ProofError),
    /// A proof or entry beyond the tree was asked for.
    #[error("{what} is beyond the tree of {size} entries")]
    OutOfRange {
        /// What was asked for.
        what: String,
        /// The tree size.
        size: u64,
    },
}

/// Verifies the format and signature of each submission, on all cores.
/// Stateless: call it before taking the sequencer.
pub fn verify_all(
    origin: &str,
    submissions: Vec<pb::SignedEvent>,
) -> Vec<Result<CheckedEvent, Rejection>> {
    submissions
        .into_par_iter()
        .map(|signed| verify_submission(origin, detached(signed)))
        .collect()
}

/// A submission holding only its own bytes. Decoded from a gRPC request,
/// its byte fields are slices of the request's receive buffer (8 KiB at
/// least); a queued event must not pin that buffer, or the memory queued
/// appends hold would be many times the request bytes the in-flight limit
/// counts.
fn detached(signed: pb::SignedEvent) -> pb::SignedEvent {
    pb::SignedEvent {
        event: Bytes::copy_from_slice(&signed.event),
        public_key: Bytes::copy_from_slice(&signed.public_key),
        signature: Bytes::copy_from_slice(&signed.signature),
    }
}

/// The single writer of one ledger.
#[derive(Debug)]
pub struct Sequencer {
    store: Arc<dyn LogStore>,
    state: State,
    tree: TreeBuilder,
    head: [u8; 32],
    signer: LogSigner,
    latest_checkpoint: Option<SignedCheckpoint>,
    stopped: bool,
}

impl Sequencer {
    /// Opens the ledger on `store`: replays every entry to rebuild the state,
    /// recomputes every leaf and tree hash and compares them with the stored
    /// ones, and checks the result against the latest signed checkpoint.
    /// A store whose content does not match refuses to open, naming the first
    /// bad seq.
    pub fn open(store: Arc<dyn LogStore>, config: LedgerConfig) -> Result<Self, OpenError> {
        let origin = config.signer.origin().to_owned();
        let vkey = config.signer.vkey();
        let mut state = State::new(LedgerParams {
            origin,
            log_vkey: Some(vkey.clone()),
            authority_key: config.authority_key,
        });
        let size = store.size()?;
        let hash_count = store.hash_count()?;
        let expected = stored_hash_count(size);
        if hash_count != expected {
            return Err(OpenError::HashCount {
                size,
                hash_count,
                expected,
            });
        }
        let latest = store.latest_checkpoint()?;
        let latest = match latest {
            None => None,
            Some((checkpoint_size, note)) => {
                let verifier = LogVerifier::from_vkey(&vkey).map_err(OpenError::Checkpoint)?;
                let checkpoint = verifier.verify(&note).map_err(OpenError::Checkpoint)?;
                if checkpoint.size != checkpoint_size {
                    return Err(OpenError::Checkpoint(CheckpointError::MalformedBody(
                        format!(
                            "stored under size {checkpoint_size} but says {}",
                            checkpoint.size
                        ),
                    )));
                }
                if checkpoint_size > size {
                    return Err(OpenError::EntriesMissing {
                        checkpoint_size,
                        store_size: size,
                    });
                }
                Some(SignedCheckpoint { note, checkpoint })
            }
        };

        state.reserve_events(usize::try_from(size).unwrap_or(0));
        let mut chain = ChainChecker::new();
        let mut tree = TreeBuilder::new();
        let mut root_at_checkpoint = None;
        if latest.as_ref().is_some_and(|c| c.checkpoint.size == 0) {
            root_at_checkpoint = Some(tree.root());
        }
        let mut next = 0u64;
        while next < size {
            let page = store.entries(next, ENTRIES_PAGE_MAX)?;
            if page.is_empty() {
                return Err(OpenError::Chain {
                    source: ChainError::Malformed {
                        seq: next,
                        detail: "entry missing from the store".into(),
                    },
                });
            }
            let page_end = page.last().map_or(next, |(seq, _)| seq + 1);
            // Compare each entry's hashes before checking the next entry's
            // link, so a rewritten entry is named itself, not its successor.
            let first_index = stored_hash_index(0, next);
            let stored = read_hash_range(
                store.as_ref(),
                first_index,
                stored_hash_count(page_end) - first_index,
            )?;
            let mut stored = stored.into_iter();
            let mut index = first_index;
            for (seq, bytes) in page {
                let linked = chain
                    .check(bytes)
                    .map_err(|source| OpenError::Chain { source })?;
                if linked.seq != seq {
                    return Err(OpenError::Chain {
                        source: ChainError::Malformed {
                            seq: linked.seq,
                            detail: format!("stored under key {seq}"),
                        },
                    });
                }
                for hash in tree.push(Hash(linked.leaf_hash)) {
                    if stored.next() != Some(hash.0) {
                        return Err(OpenError::TreeHash { seq, index });
                    }
                    index += 1;
                }
                let checked = check_format(linked.signed_event)
                    .map_err(|rejection| OpenError::Rule { seq, rejection })?;
                state
                    .apply(seq, linked.recorded_at, &checked)
                    .map_err(|rejection| OpenError::Rule { seq, rejection })?;
                if latest
                    .as_ref()
                    .is_some_and(|c| c.checkpoint.size == tree.size())
                {
                    root_at_checkpoint = Some(tree.root());
                }
                next = seq + 1;
            }
        }
        assert_eq!(state.next_seq(), size, "every stored entry was replayed");
        assert_eq!(tree.size(), size, "the tree has one leaf per entry");

        if let Some(signed) = &latest {
            let size = signed.checkpoint.size;
            if root_at_checkpoint != Some(signed.checkpoint.root) {
                return Err(OpenError::RootMismatch { size });
            }
        }
        Ok(Sequencer {
            store,
            state,
            tree,
            head: chain.head(),
            signer: config.signer,
            latest_checkpoint: latest,
            stopped: false,
        })
    }

    /// The ledger's origin.
    pub fn origin(&self) -> &str {
        self.signer.origin()
    }

    /// The checkpoint verifier key.
    pub fn vkey(&self) -> String {
        self.signer.vkey()
    }

    /// Entries in the log (all durable).
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The root of the whole log.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The rules' state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The store the log lives in.
    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// Verifies then appends a batch; see [`Sequencer::append_checked`].
    pub fn append_batch(
        &mut self,
        submissions: Vec<pb::SignedEvent>,
        now: Timestamp,
    ) -> Result<Vec<Result<Outcome, Rejection>>, LedgerError> {
        let checked = verify_all(self.origin(), submissions);
        self.append_checked(checked, now)
    }

    /// Sequences verified submissions in order and appends the accepted ones
    /// in one durable transaction (group commit). Returns one result per
    /// submission, in order. When this returns `Ok`, every `Appended` entry is
    /// fsync'd.
    ///
    /// The entries are recorded at `now`, or at the last recorded time if the
    /// clock went back, so recorded time never decreases.
    pub fn append_checked(
        &mut self,
        submissions: Vec<Result<CheckedEvent, Rejection>>,
        now: Timestamp,
    ) -> Result<Vec<Result<Outcome, Rejection>>, LedgerError> {
        if self.stopped {
            return Err(LedgerError::Stopped);
        }
        let recorded_at = now.max(self.state.last_recorded_at());
        let mut pending = PendingBatch::new(self.tree.size());
        let mut results = Vec::with_capacity(submissions.len());
        // Rules are applied to the in-memory state as the batch is built; if
        // the store then fails, state and store disagree, so the sequencer
        // stops (Sunlight's "stop and recover from durable storage").
        for submission in submissions {
            let checked = match submission {
                Ok(checked) => checked,
                Err(rejection) => {
                    results.push(Err(rejection));
                    continue;
                }
            };
            if let Some(seq) = self.state.duplicate_of(&checked) {
                results.push(Ok(Outcome::Duplicate { seq }));
                continue;
            }
            let seq = self.state.next_seq();
            assert_eq!(seq, self.tree.size(), "seq equals the tree size");
            let entry = encode_entry(seq, &self.head, recorded_at, &checked.signed);
            // SPEC §4: an entry is at most 65,535 bytes.
            if entry.len() > ENTRY_BYTES_MAX {
                results.push(Err(Rejection::new(
                    Reason::EntryTooLarge,
                    format!(
                        "the entry would be {} bytes, over the limit of {ENTRY_BYTES_MAX}",
                        entry.len()
                    ),
                )));
                continue;
            }
            if let Err(rejection) = self.state.apply(seq, recorded_at, &checked) {
                results.push(Err(rejection));
                continue;
            }
            let leaf = leaf_hash(&entry);
            pending
                .hashes
                .extend(self.tree.push(leaf).into_iter().map(|h| h.0));
            self.head = leaf.0;
            pending.entries.push(NewEntry {
                bytes: entry.clone(),
                event_id: checked.event.event_id,
            });
            results.push(Ok(Outcome::Appended {
                seq,
                leaf_hash: leaf,
                entry,
            }));
            // A store transaction takes at most BATCH_ENTRIES_MAX entries; a
            // larger group becomes several transactions, all durable before
            // any result is returned.
            if pending.entries.len() == BATCH_ENTRIES_MAX {
                let next = std::mem::replace(&mut pending, PendingBatch::new(self.tree.size()));
                self.commit(next)?;
            }
        }
        self.commit(pending)?;
        Ok(results)
    }

    /// The commit point: once the store returns Ok the entries are fsync'd
    /// and may be acknowledged. A crash before it leaves no trace of them; a
    /// crash inside it leaves all or nothing, and open() rebuilds the state
    /// from whatever is durable.
    fn commit(&mut self, pending: PendingBatch) -> Result<(), LedgerError> {
        if pending.entries.is_empty() {
            return Ok(());
        }
        let batch = AppendBatch {
            first_seq: pending.first_seq,
            first_hash_index: stored_hash_count(pending.first_seq),
            entries: pending.entries,
            hashes: pending.hashes,
        };
        if let Err(error) = self.store.append(&batch) {
            self.stopped = true;
            return Err(LedgerError::Storage(error));
        }
        Ok(())
    }

    /// The latest signed checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.latest_checkpoint.as_ref()
    }

    /// Signs and durably stores a checkpoint of the whole log, unless the
    /// latest one already covers it. Returns the latest checkpoint.
    pub fn sign_checkpoint(&mut self) -> Result<&SignedCheckpoint, LedgerError> {
        if self.stopped {
            return Err(LedgerError::Stopped);
        }
        let size = self.tree.size();
        let current = self
            .latest_checkpoint
            .as_ref()
            .is_some_and(|c| c.checkpoint.size == size);
        if !current {
            // SPEC §5: "The ledger MUST NOT sign two checkpoints that are
            // inconsistent." The tree only grows, open() proved it extends
            // the last signed root, and sizes never go back.
            if let Some(previous) = &self.latest_checkpoint {
                assert!(
                    previous.checkpoint.size < size,
                    "checkpoint sizes only grow"
                );
            }
            let checkpoint = Checkpoint {
                origin: self.origin().to_owned(),
                size,
                root: self.tree.root(),
            };
            let note = self.signer.sign(&checkpoint);
            if let Err(error) = self.store.put_checkpoint(size, &note) {
                self.stopped = true;
                return Err(LedgerError::Storage(error));
            }
            self.latest_checkpoint = Some(SignedCheckpoint { note, checkpoint });
        }
        Ok(self
            .latest_checkpoint
            .as_ref()
            .expect("set above when missing"))
    }

    /// The inclusion proof of `seq` in the tree of `tree_size` entries.
    pub fn inclusion_proof(&self, seq: u64, tree_size: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(tree_size)?;
        proofs::inclusion_proof(self.store.as_ref(), seq, tree_size).map_err(LedgerError::Proof)
    }

    /// The consistency proof between two tree sizes.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(new_size)?;
        proofs::consistency_proof(self.store.as_ref(), old_size, new_size)
            .map_err(LedgerError::Proof)
    }

    fn check_size(&self, tree_size: u64) -> Result<(), LedgerError> {
        if tree_size > self.tree.size() {
            return Err(LedgerError::OutOfRange {
                what: format!("tree size {tree_size}"),
                size: self.tree.size(),
            });
        }
        Ok(())
    }
}

/// Entries accepted but not yet handed to the store.
struct PendingBatch {
    first_seq: u64,
    entries: Vec<NewEntry>,
    hashes: Vec<[u8; 32]>,
}

impl PendingBatch {
    fn new(first_seq: u64) -> Self {
        PendingBatch {
            first_seq,
            entries: Vec::new(),
            hashes: Vec::new(),
        }
    }
}

/// The stored hashes at indexes `[first_index, first_index + count)`, in
/// scans of at most [`READ_HASHES_MAX`].
pub(crate) fn read_hash_range(
    store: &dyn LogStore,
    first_index: u64,
    count: u64,
) -> Result<Vec<[u8; 32]>, StoreError> {
    let mut hashes = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut start = first_index;
    let end = first_index + count;
    while start < end {
        let chunk = (end - start).min(READ_HASHES_MAX as u64);
        hashes.extend(store.read_hash_range(start, chunk as usize)?);
        start += chunk;
    }
    Ok(hashes)
}
