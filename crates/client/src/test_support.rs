//! A small honest ledger for tests: entries chained and hashed as SPEC §4
//! says, stored hashes for proofs (the independent oracle is
//! `aidledger-tlog`), and a checkpoint signer.

use aidledger_ledger::{Timestamp, encode_entry, sign_event};
use aidledger_tlog::ed25519::SecretKey;
use aidledger_tlog::{
    Checkpoint, Hash, HashReader, LogSigner, LogVerifier, TreeBuilder, leaf_hash, prove_inclusion,
    stored_hash_index,
};
use aidledger_wire::{Message as _, pb};

pub(crate) const ORIGIN: &str = "aid.example/test";

/// Stored hashes in memory.
pub(crate) struct Stored(Vec<Hash>);

impl HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, aidledger_tlog::tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
    }
}

pub(crate) struct Fixture {
    pub(crate) entries: Vec<Vec<u8>>,
    pub(crate) signed_events: Vec<pb::SignedEvent>,
    stored: Stored,
    tree: TreeBuilder,
    pub(crate) signer: LogSigner,
    pub(crate) actor: SecretKey,
}

impl Fixture {
    /// A ledger of `count` entries.
    pub(crate) fn new(count: u64) -> Self {
        let signer = LogSigner::new(ORIGIN, SecretKey::from_seed(&[1; 32])).unwrap();
        let actor = SecretKey::from_seed(&[2; 32]);
        let mut fixture = Fixture {
            entries: Vec::new(),
            signed_events: Vec::new(),
            stored: Stored(Vec::new()),
            tree: TreeBuilder::new(),
            signer,
            actor,
        };
        for seq in 0..count {
            fixture.push(fixture.signed(seq));
        }
        fixture
    }

    /// The event the fixture puts at `seq`, signed by its actor.
    pub(crate) fn signed(&self, seq: u64) -> pb::SignedEvent {
        let event = pb::Event {
            event_id: format!("00000000-0000-4000-8000-{seq:012x}"),
            org_id: "agency-1".into(),
            occurred_at: Some(aidledger_wire::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            body: Some(pb::event::Body::Reversal(pb::Reversal {
                target_event_id: "x".into(),
                reason: "test".into(),
            })),
        };
        sign_event(&self.actor, ORIGIN, event.encode_to_vec())
    }

    /// Appends `signed` as the next entry; returns its seq.
    pub(crate) fn push(&mut self, signed: pb::SignedEvent) -> u64 {
        let seq = self.entries.len() as u64;
        let prev = self.entries.last().map_or([0; 32], |e| leaf_hash(e).0);
        let bytes = encode_entry(
            seq,
            &prev,
            Timestamp::from_seconds(1_700_000_000 + seq as i64),
            &signed,
        );
        let stored = self.tree.push(leaf_hash(&bytes));
        assert_eq!(
            stored_hash_index(0, seq),
            self.stored.0.len() as u64,
            "stored hashes of leaf {seq} start at its index"
        );
        self.stored.0.extend(stored);
        self.entries.push(bytes);
        self.signed_events.push(signed);
        seq
    }

    pub(crate) fn size(&self) -> u64 {
        self.tree.size()
    }

    pub(crate) fn served(&self, seq: u64) -> pb::Entry {
        let entry = self.entries[seq as usize].clone();
        pb::Entry {
            seq,
            leaf_hash: leaf_hash(&entry).0.to_vec().into(),
            entry: entry.into(),
        }
    }

    pub(crate) fn checkpoint(&self) -> pb::Checkpoint {
        let checkpoint = Checkpoint {
            origin: ORIGIN.into(),
            size: self.tree.size(),
            root: self.tree.root(),
        };
        pb::Checkpoint {
            note: self.signer.sign(&checkpoint),
            size: checkpoint.size,
            root_hash: checkpoint.root.0.to_vec().into(),
        }
    }

    /// The inclusion proof of `seq` in the whole tree, with its checkpoint.
    pub(crate) fn proof(&self, seq: u64) -> pb::InclusionProof {
        let size = self.tree.size();
        let hashes = prove_inclusion(seq, size, &self.stored).unwrap();
        pb::InclusionProof {
            seq,
            tree_size: size,
            hashes: hashes.iter().map(|h| h.0.to_vec().into()).collect(),
            checkpoint: Some(self.checkpoint()),
        }
    }

    pub(crate) fn verifier(&self) -> LogVerifier {
        LogVerifier::from_vkey(&self.signer.vkey()).unwrap()
    }
}
