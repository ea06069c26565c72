//! Inclusion and consistency proofs (RFC 9162 2.1.3 and 2.1.4).
//!
//! Generation reads stored hashes through `tlog_tiles`; its inputs come from
//! our own storage, and we check them before they reach its assertions.
//! Verification is written here from the RFC's algorithms, on plain bit
//! arithmetic, so that no proof, index or size can make it panic.

use tlog_tiles::{Hash, HashReader};

use crate::tree::node_hash;

/// Largest tree size the stored-hash layout supports. `stored_hash_index(0, n)`
/// is just under `2n`, so beyond 2^62 leaves the `tlog_tiles` index math would
/// overflow `u64`.
pub const TREE_SIZE_MAX: u64 = 1 << 62;

/// Why a proof could not be produced or did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A consistency proof between sizes in the wrong order.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    /// A consistency proof from the empty tree: RFC 9162 2.1.4 defines them only
    /// for a non-empty old tree, and every tree trivially extends the empty one.
    #[error("there is no consistency proof from the empty tree (old size 0)")]
    EmptyOldTree,
    /// The tree is larger than [`TREE_SIZE_MAX`].
    #[error("tree size {size} exceeds the maximum {TREE_SIZE_MAX}")]
    TreeTooLarge { size: u64 },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("proof has {actual} hashes, but a proof for these sizes has {expected}")]
    WrongProofSize { expected: usize, actual: usize },
    /// The proof leads to a different (new) root than the one given.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    /// The consistency proof leads to a different old root than the one given.
    #[error("consistency proof does not lead to the expected old root")]
    OldRootMismatch,
    /// The hash reader failed.
    #[error("reading stored hashes: {0}")]
    Read(String),
}

/// Root of the tree of `size` leaves, from stored hashes.
///
/// # Errors
///
/// [`ProofError::TreeTooLarge`], or [`ProofError::Read`] if the reader fails.
pub fn tree_root<R: HashReader>(size: u64, reader: &R) -> Result<Hash, ProofError> {
    check_size(size)?;
    tlog_tiles::tree_hash(size, &LengthChecked(reader)).map_err(read_error)
}

/// Inclusion proof (RFC 9162 2.1.3.1) for leaf `index` in the tree of `size`
/// leaves, bottom-up as RFC 9162 orders it.
///
/// # Errors
///
/// [`ProofError::IndexOutOfRange`], [`ProofError::TreeTooLarge`], or
/// [`ProofError::Read`] if the reader fails.
pub fn prove_inclusion<R: HashReader>(
    index: u64,
    size: u64,
    reader: &R,
) -> Result<Vec<Hash>, ProofError> {
    check_size(size)?;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    tlog_tiles::prove_record(size, index, &LengthChecked(reader)).map_err(read_error)
}

/// Consistency proof (RFC 9162 2.1.4.1) that the tree of `new_size` leaves
/// extends the tree of `old_size` leaves. Empty when the sizes are equal.
///
/// # Errors
///
/// [`ProofError::SizesOutOfOrder`], [`ProofError::EmptyOldTree`],
/// [`ProofError::TreeTooLarge`], or [`ProofError::Read`] if the reader fails.
pub fn prove_consistency<R: HashReader>(
    old_size: u64,
    new_size: u64,
    reader: &R,
) -> Result<Vec<Hash>, ProofError> {
    check_size(new_size)?;
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    tlog_tiles::prove_tree(new_size, old_size, &LengthChecked(reader)).map_err(read_error)
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with `root`
/// (RFC 9162 2.1.3.2). Never panics.
///
/// # Errors
///
/// Says what was wrong: index out of range, wrong number of hashes, or a root
/// mismatch.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    // RFC 9162 2.1.3.2 step 1
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofSize {
            expected,
            actual: proof.len(),
        });
    }
    // RFC 9162 2.1.3.2 steps 2-5
    let mut first = index;
    let mut second = size - 1;
    let mut hash = *leaf;
    for sibling in proof {
        // The length check above makes this unreachable; it is the RFC's own
        // guard and costs nothing.
        if second == 0 {
            return Err(ProofError::WrongProofSize {
                expected,
                actual: proof.len(),
            });
        }
        if first & 1 == 1 || first == second {
            hash = node_hash(sibling, &hash);
            if first & 1 == 0 {
                while first & 1 == 0 && first != 0 {
                    first >>= 1;
                    second >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        first >>= 1;
        second >>= 1;
    }
    if second != 0 {
        return Err(ProofError::WrongProofSize {
            expected,
            actual: proof.len(),
        });
    }
    if hash != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `new_size` leaves with `new_root` extends the tree
/// of `old_size` leaves with `old_root` (RFC 9162 2.1.4.2). Never panics.
///
/// Equal sizes need an empty proof and equal roots. An old size of 0 is
/// refused: such a proof is meaningless.
///
/// # Errors
///
/// Says what was wrong: sizes, number of hashes, or which root mismatched.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofSize {
                expected: 0,
                actual: proof.len(),
            });
        }
        if old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    let expected = consistency_proof_len(old_size, new_size);
    // RFC 9162 2.1.4.2 step 1 (an empty path) is covered: `expected` is at least 1.
    if proof.len() != expected {
        return Err(ProofError::WrongProofSize {
            expected,
            actual: proof.len(),
        });
    }
    // RFC 9162 2.1.4.2 step 2: when the old tree is a perfect subtree, its root
    // is the first value of the path and is not sent.
    let (seed, path) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        (proof[0], &proof[1..])
    };
    // RFC 9162 2.1.4.2 steps 3-4
    let mut first = old_size - 1;
    let mut second = new_size - 1;
    while first & 1 == 1 {
        first >>= 1;
        second >>= 1;
    }
    // RFC 9162 2.1.4.2 steps 5-6
    let mut old_hash = seed;
    let mut new_hash = seed;
    for sibling in path {
        if second == 0 {
            return Err(ProofError::WrongProofSize {
                expected,
                actual: proof.len(),
            });
        }
        if first & 1 == 1 || first == second {
            old_hash = node_hash(sibling, &old_hash);
            new_hash = node_hash(sibling, &new_hash);
            if first & 1 == 0 {
                while first & 1 == 0 && first != 0 {
                    first >>= 1;
                    second >>= 1;
                }
            }
        } else {
            new_hash = node_hash(&new_hash, sibling);
        }
        first >>= 1;
        second >>= 1;
    }
    // RFC 9162 2.1.4.2 step 7
    if second != 0 {
        return Err(ProofError::WrongProofSize {
            expected,
            actual: proof.len(),
        });
    }
    if old_hash != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if new_hash != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Number of hashes in the inclusion proof for `index < size`.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let (inner, border) = inclusion_proof_shape(index, size);
    (inner + border) as usize
}

/// Splits an inclusion path into `inner` hashes, below the level where the
/// paths to `index` and to the last leaf meet, and `border` hashes above it,
/// one per left sibling on the tree's right border.
fn inclusion_proof_shape(index: u64, size: u64) -> (u32, u32) {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    // `inner` is 64 only when `index` < 2^63 <= `size` - 1, and then no border
    // hashes remain.
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

/// Number of hashes in the consistency proof for `0 < old_size < new_size`:
/// the inclusion path of the old tree's last leaf, minus the levels inside the
/// old tree's rightmost perfect subtree, plus that subtree's root unless it is
/// the whole old tree.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let (inner, border) = inclusion_proof_shape(old_size - 1, new_size);
    let shared_levels = old_size.trailing_zeros();
    let seed = usize::from(!old_size.is_power_of_two());
    seed + (inner - shared_levels + border) as usize
}

fn check_size(size: u64) -> Result<(), ProofError> {
    if size > TREE_SIZE_MAX {
        return Err(ProofError::TreeTooLarge { size });
    }
    Ok(())
}

fn read_error(error: tlog_tiles::Error) -> ProofError {
    ProofError::Read(error.to_string())
}

/// Turns a reader that returns the wrong number of hashes into an error;
/// `tlog_tiles` asserts on it instead.
struct LengthChecked<'a, R>(&'a R);

impl<R: HashReader> HashReader for LengthChecked<'_, R> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let hashes = self.0.read_hashes(indexes)?;
        if hashes.len() != indexes.len() {
            return Err(tlog_tiles::Error::InvalidInput(format!(
                "hash reader returned {} hashes for {} indexes",
                hashes.len(),
                indexes.len()
            )));
        }
        Ok(hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_lengths_match_small_trees() {
        // Tree of 7: leaf 6 has siblings (4..6) and (0..4).
        assert_eq!(inclusion_proof_len(6, 7), 2);
        assert_eq!(inclusion_proof_len(0, 1), 0);
        assert_eq!(inclusion_proof_len(0, 8), 3);
        // RFC 9162 2.1.4.3 examples over the 7-leaf tree: 3 -> 7 needs
        // [c, d, g, l], 4 -> 7 needs [l], 6 -> 7 needs [i, j, k].
        assert_eq!(consistency_proof_len(3, 7), 4);
        assert_eq!(consistency_proof_len(4, 7), 1);
        assert_eq!(consistency_proof_len(6, 7), 3);
    }

    #[test]
    fn extreme_sizes_do_not_panic() {
        let h = Hash([7; 32]);
        assert!(verify_inclusion(&h, u64::MAX - 1, u64::MAX, &[], &h).is_err());
        assert!(verify_inclusion(&h, 0, u64::MAX, &[], &h).is_err());
        assert!(verify_inclusion(&h, u64::MAX, u64::MAX, &[], &h).is_err());
        assert!(verify_consistency(1, u64::MAX, &h, &h, &[h]).is_err());
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &h, &h, &[h; 3]).is_err());
        assert!(verify_consistency(1 << 63, u64::MAX, &h, &h, &[]).is_err());
    }

    struct ShortReader;

    impl HashReader for ShortReader {
        fn read_hashes(&self, _indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn a_reader_returning_too_few_hashes_is_an_error_not_a_panic() {
        assert!(matches!(
            tree_root(5, &ShortReader),
            Err(ProofError::Read(_))
        ));
        assert!(matches!(
            prove_inclusion(1, 5, &ShortReader),
            Err(ProofError::Read(_))
        ));
        assert!(matches!(
            prove_consistency(3, 5, &ShortReader),
            Err(ProofError::Read(_))
        ));
        assert!(crate::TreeBuilder::from_stored(5, &ShortReader).is_err());
    }
}
