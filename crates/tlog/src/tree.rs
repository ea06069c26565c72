//! RFC 9162 2.1.1 hashing and the incremental tree the ledger appends to.
//!
//! [`TreeBuilder`] keeps only the right frontier (one perfect-subtree root per
//! set bit of the size), so appending costs O(log n) memory and no reads. Each
//! push returns exactly what `tlog_tiles::stored_hashes` returns for that leaf,
//! which lets the store lay hashes out in the tlog-tiles order without ever
//! calling back into storage on the write path.

use sha2::{Digest, Sha256};
use tlog_tiles::{Hash, HashReader};

use crate::proof::TREE_SIZE_MAX;

/// Root of the empty tree: SHA-256 of the empty string (RFC 9162 2.1.1).
pub const EMPTY_ROOT: Hash = tlog_tiles::EMPTY_HASH;

/// Hash of a leaf: SHA-256(0x00 || entry bytes).
pub fn leaf_hash(entry_bytes: &[u8]) -> Hash {
    // RFC 9162 2.1.1: the 0x00 prefix keeps leaves and interior nodes in
    // separate domains, so a leaf can never be passed off as a node.
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry_bytes);
    Hash(hasher.finalize().into())
}

/// Hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // RFC 9162 2.1.1
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left.0);
    hasher.update(right.0);
    Hash(hasher.finalize().into())
}

/// Incremental Merkle tree over leaf hashes, holding only the right frontier.
///
/// Appending a leaf yields the hashes `tlog_tiles::stored_hashes` would yield
/// (same values, same order); they belong at `stored_hash_index(0, n)` onward,
/// where `n` is the size before the push.
// `Eq` is implemented by hand below: `tlog_tiles::Hash` derives `PartialEq`
// but not `Eq`, although byte-array equality is a full equivalence.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TreeBuilder {
    size: u64,
    /// Roots of the perfect subtrees that make up the tree, leftmost (largest)
    /// first: one per set bit of `size`.
    frontier: Vec<Hash>,
}

impl Eq for TreeBuilder {}

impl TreeBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its stored hashes,
    /// with one read of at most 62 hashes.
    ///
    /// # Errors
    ///
    /// The reader's error, or `InvalidInput` if `size` exceeds
    /// [`TREE_SIZE_MAX`] or the reader returns the wrong number of hashes.
    pub fn from_stored<R: HashReader>(size: u64, reader: &R) -> Result<Self, tlog_tiles::Error> {
        if size > TREE_SIZE_MAX {
            return Err(tlog_tiles::Error::InvalidInput(format!(
                "tree size {size} exceeds the maximum {TREE_SIZE_MAX}"
            )));
        }
        // The frontier is the tree's decomposition into perfect subtrees,
        // which is what tlog_tiles reads to compute a tree hash.
        let indexes = tlog_tiles::sub_tree_index(0, size, Vec::new());
        let frontier = reader.read_hashes(&indexes)?;
        if frontier.len() != indexes.len() {
            return Err(tlog_tiles::Error::InvalidInput(format!(
                "hash reader returned {} hashes for {} indexes",
                frontier.len(),
                indexes.len()
            )));
        }
        assert_eq!(frontier.len(), size.count_ones() as usize);
        Ok(Self { size, frontier })
    }

    /// The roots of the perfect subtrees that make up the tree, leftmost
    /// (largest) first: what a follower persists to resume hashing the tree
    /// without its leaves.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// Resumes a tree from its size and [`TreeBuilder::frontier`].
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the frontier does not have one hash per set bit of
    /// `size`, or `size` exceeds [`TREE_SIZE_MAX`].
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Result<Self, tlog_tiles::Error> {
        if size > TREE_SIZE_MAX || frontier.len() != size.count_ones() as usize {
            return Err(tlog_tiles::Error::InvalidInput(format!(
                "a frontier of {} hashes does not fit a tree of {size} leaves",
                frontier.len()
            )));
        }
        Ok(Self { size, frontier })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf and returns the hashes to store for it: the leaf hash
    /// first, then the root of each subtree this leaf completes, smallest first.
    ///
    /// # Panics
    ///
    /// If the tree already holds [`TREE_SIZE_MAX`] leaves.
    pub fn push(&mut self, leaf: Hash) -> Vec<Hash> {
        assert!(self.size < TREE_SIZE_MAX, "tree is full");
        // Each trailing 1 bit of the old size is a perfect subtree that the new
        // leaf's subtree now pairs with (the tlog stored-hash layout).
        let completed = self.size.trailing_ones() as usize;
        let mut stored = Vec::with_capacity(1 + completed);
        stored.push(leaf);
        let mut subtree = leaf;
        for _ in 0..completed {
            let left = self
                .frontier
                .pop()
                .expect("the frontier has one hash per set bit of the size");
            subtree = node_hash(&left, &subtree);
            stored.push(subtree);
        }
        self.frontier.push(subtree);
        self.size += 1;
        assert_eq!(self.frontier.len(), self.size.count_ones() as usize);
        stored
    }

    /// The tree head (RFC 9162 2.1.1 MTH) over all leaves pushed so far.
    pub fn root(&self) -> Hash {
        // MTH splits at the largest power of two, so the perfect subtrees fold
        // together from the right.
        let mut subtrees = self.frontier.iter().rev();
        match subtrees.next() {
            None => EMPTY_ROOT,
            Some(last) => subtrees.fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT.0, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(TreeBuilder::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn leaf_and_node_hash_match_tlog_tiles() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        assert_eq!(a, tlog_tiles::record_hash(b"a"));
        assert_eq!(node_hash(&a, &b), tlog_tiles::node_hash(a, b));
        assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
    }

    #[test]
    fn three_leaf_root_is_unbalanced_mth() {
        let leaves: Vec<Hash> = [b"0", b"1", b"2"].iter().map(|d| leaf_hash(*d)).collect();
        let mut tree = TreeBuilder::new();
        for leaf in &leaves {
            tree.push(*leaf);
        }
        let want = node_hash(&node_hash(&leaves[0], &leaves[1]), &leaves[2]);
        assert_eq!(tree.root(), want);
        assert_eq!(tree.size(), 3);
    }
}
