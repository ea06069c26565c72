//! Proofs and tree hashes read straight from the store, so readers never
//! wait for the sequencer: every read is O(log n) stored hashes.

use aidledger_store::LogStore;
use aidledger_tlog::{Hash, HashReader, ProofError, tlog_tiles};

/// Reads Merkle stored hashes from a [`LogStore`].
#[derive(Debug, Clone, Copy)]
pub struct StoreHashes<'a>(pub &'a dyn LogStore);

impl HashReader for StoreHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        self.0
            .read_hashes(indexes)
            .map(|hashes| hashes.into_iter().map(Hash).collect())
            .map_err(|e| tlog_tiles::Error::InvalidInput(format!("reading stored hashes: {e}")))
    }
}

/// The inclusion proof of entry `seq` in the tree of `tree_size` entries, in
/// RFC 9162 order.
pub fn inclusion_proof(
    store: &dyn LogStore,
    seq: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, ProofError> {
    aidledger_tlog::prove_inclusion(seq, tree_size, &StoreHashes(store))
}

/// The consistency proof from the tree of `old_size` entries to the tree of
/// `new_size`, in RFC 9162 order.
pub fn consistency_proof(
    store: &dyn LogStore,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, ProofError> {
    aidledger_tlog::prove_consistency(old_size, new_size, &StoreHashes(store))
}

/// The root of the tree of `size` entries.
pub fn tree_root(store: &dyn LogStore, size: u64) -> Result<Hash, ProofError> {
    aidledger_tlog::tree_root(size, &StoreHashes(store))
}

/// The leaf hash of entry `seq`.
pub fn leaf_hash(store: &dyn LogStore, seq: u64) -> Result<Hash, aidledger_store::StoreError> {
    let index = aidledger_tlog::stored_hash_index(0, seq);
    store.read_hashes(&[index]).map(|hashes| Hash(hashes[0]))
}
