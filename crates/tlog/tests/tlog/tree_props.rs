//! Randomized trees: `TreeBuilder` against `tlog_tiles::stored_hashes` and a
//! naive MTH, and every generated proof verifies while every tampered one is
//! rejected. Each case is reproducible from the `(seed, size)` proptest prints.

use aidledger_tlog::{
    Hash, ProofError, TreeBuilder, leaf_hash, prove_consistency, prove_inclusion,
    stored_hash_count, stored_hash_index, tlog_tiles, tree_root, verify_consistency,
    verify_inclusion,
};
use proptest::prelude::*;

use crate::support::{MemoryHashes, SplitMix64, naive_root};

/// Proofs checked per tree, each with its tampered variants.
const PROOFS_PER_TREE: usize = 12;

fn leaf_data(seed: u64, count: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("entry {i} of tree {seed}").into_bytes())
        .collect()
}

/// Builds the tree, checking each push against `tlog_tiles::stored_hashes`.
fn build(leaves: &[Vec<u8>]) -> (TreeBuilder, MemoryHashes) {
    let mut tree = TreeBuilder::new();
    let mut stored = MemoryHashes::default();
    for (n, data) in (0u64..).zip(leaves) {
        let want = tlog_tiles::stored_hashes(n, data, &stored).expect("stored hashes");
        assert_eq!(stored.0.len() as u64, stored_hash_index(0, n));
        let got = tree.push(leaf_hash(data));
        assert_eq!(got, want, "stored hashes for leaf {n}");
        stored.0.extend(got);
        assert_eq!(stored.0.len() as u64, stored_hash_count(n + 1));
    }
    (tree, stored)
}

/// The proof with one bit flipped, one hash removed, one random hash added.
fn tampered(proof: &[Hash], rng: &mut SplitMix64) -> Vec<(&'static str, Vec<Hash>)> {
    let mut variants = Vec::new();
    if !proof.is_empty() {
        let mut flipped = proof.to_vec();
        let at = rng.in_range(0, proof.len() as u64 - 1) as usize;
        let bit = rng.in_range(0, 255) as usize;
        flipped[at].0[bit / 8] ^= 1 << (bit % 8);
        variants.push(("bit flipped", flipped));
        let mut removed = proof.to_vec();
        removed.remove(rng.in_range(0, proof.len() as u64 - 1) as usize);
        variants.push(("hash removed", removed));
    }
    let mut added = proof.to_vec();
    added.insert(rng.in_range(0, proof.len() as u64) as usize, rng.hash());
    variants.push(("hash added", added));
    variants
}

/// A value in `lo..=hi` other than `not`, if there is one.
fn other_than(not: u64, lo: u64, hi: u64, rng: &mut SplitMix64) -> Option<u64> {
    (lo < hi).then(|| {
        let pick = rng.in_range(lo, hi - 1);
        if pick >= not { pick + 1 } else { pick }
    })
}

fn check_tree(seed: u64, size: u64) {
    let leaves = leaf_data(seed, size);
    let (tree, stored) = build(&leaves);
    let mut rng = SplitMix64::new(seed);
    let mut naive_roots = std::collections::HashMap::new();
    let mut root_of = |n: u64| {
        *naive_roots
            .entry(n)
            .or_insert_with(|| naive_root(&leaves[..n as usize]))
    };

    assert_eq!(tree.size(), size);
    assert_eq!(tree.root(), root_of(size));
    assert_eq!(tree_root(size, &stored).expect("tree root"), root_of(size));

    for _ in 0..PROOFS_PER_TREE {
        // A prefix tree, rebuilt from storage, matches the naive root and
        // continues exactly like the tree that was never interrupted.
        let prefix = rng.in_range(0, size);
        let resumed = TreeBuilder::from_stored(prefix, &stored).expect("from stored");
        assert_eq!(resumed.size(), prefix);
        assert_eq!(resumed.root(), root_of(prefix));
        assert_eq!(
            tree_root(prefix, &stored).expect("prefix root"),
            root_of(prefix)
        );
        if prefix < size {
            let mut resumed = resumed;
            let n = prefix as usize;
            let want =
                tlog_tiles::stored_hashes(prefix, &leaves[n], &stored).expect("stored hashes");
            assert_eq!(resumed.push(leaf_hash(&leaves[n])), want);
        }

        // Inclusion.
        let tree_size = rng.in_range(1, size);
        let index = rng.in_range(0, tree_size - 1);
        let leaf = leaf_hash(&leaves[index as usize]);
        let root = root_of(tree_size);
        let proof = prove_inclusion(index, tree_size, &stored).expect("inclusion proof");
        verify_inclusion(&leaf, index, tree_size, &proof, &root)
            .unwrap_or_else(|e| panic!("inclusion {index} in {tree_size}: {e}"));
        for (what, bad) in tampered(&proof, &mut rng) {
            assert!(
                verify_inclusion(&leaf, index, tree_size, &bad, &root).is_err(),
                "inclusion {index} in {tree_size}: proof with {what} accepted"
            );
        }
        if let Some(wrong) = other_than(index, 0, tree_size - 1, &mut rng) {
            assert!(
                verify_inclusion(&leaf, wrong, tree_size, &proof, &root).is_err(),
                "inclusion {index} in {tree_size}: accepted at index {wrong}"
            );
        }
        if let Some(wrong) = other_than(tree_size, index + 1, size, &mut rng) {
            assert!(
                verify_inclusion(&leaf, index, wrong, &proof, &root_of(wrong)).is_err(),
                "inclusion {index} in {tree_size}: accepted for size {wrong}"
            );
        }
        assert!(matches!(
            verify_inclusion(&leaf, tree_size, tree_size, &proof, &root),
            Err(ProofError::IndexOutOfRange { .. })
        ));

        // Consistency.
        let new_size = rng.in_range(1, size);
        let old_size = rng.in_range(1, new_size);
        let (old_root, new_root) = (root_of(old_size), root_of(new_size));
        let proof = prove_consistency(old_size, new_size, &stored).expect("consistency proof");
        verify_consistency(old_size, new_size, &old_root, &new_root, &proof)
            .unwrap_or_else(|e| panic!("consistency {old_size} -> {new_size}: {e}"));
        for (what, bad) in tampered(&proof, &mut rng) {
            assert!(
                verify_consistency(old_size, new_size, &old_root, &new_root, &bad).is_err(),
                "consistency {old_size} -> {new_size}: proof with {what} accepted"
            );
        }
        if let Some(wrong) = other_than(old_size, 1, new_size, &mut rng) {
            assert!(
                verify_consistency(wrong, new_size, &root_of(wrong), &new_root, &proof).is_err(),
                "consistency {old_size} -> {new_size}: accepted from size {wrong}"
            );
        }
        if let Some(wrong) = other_than(new_size, old_size, size, &mut rng) {
            assert!(
                verify_consistency(old_size, wrong, &old_root, &root_of(wrong), &proof).is_err(),
                "consistency {old_size} -> {new_size}: accepted to size {wrong}"
            );
        }
        if old_root != new_root {
            assert!(
                verify_consistency(old_size, new_size, &new_root, &old_root, &proof).is_err(),
                "consistency {old_size} -> {new_size}: accepted with swapped roots"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_trees_build_prove_and_verify(seed in any::<u64>(), size in 1u64..=3000) {
        check_tree(seed, size);
    }
}

/// Small trees exhaustively: every (index, size) and (old, new) pair.
#[test]
fn every_proof_in_trees_up_to_40_leaves() {
    let leaves = leaf_data(0, 40);
    let (_, stored) = build(&leaves);
    let roots: Vec<Hash> = (0..=40).map(|n| naive_root(&leaves[..n])).collect();
    let mut proofs = 0;
    for size in 1..=40u64 {
        for index in 0..size {
            let proof = prove_inclusion(index, size, &stored).expect("inclusion proof");
            let leaf = leaf_hash(&leaves[index as usize]);
            verify_inclusion(&leaf, index, size, &proof, &roots[size as usize]).expect("inclusion");
            proofs += 1;
        }
        for old in 1..=size {
            let proof = prove_consistency(old, size, &stored).expect("consistency proof");
            verify_consistency(
                old,
                size,
                &roots[old as usize],
                &roots[size as usize],
                &proof,
            )
            .expect("consistency");
            proofs += 1;
        }
    }
    assert_eq!(proofs, 2 * (40 * 41 / 2));
}

#[test]
fn proof_generation_refuses_bad_ranges() {
    let (_, stored) = build(&leaf_data(1, 5));
    assert!(matches!(
        prove_inclusion(5, 5, &stored),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        prove_consistency(0, 5, &stored),
        Err(ProofError::EmptyOldTree)
    ));
    assert!(matches!(
        prove_consistency(4, 3, &stored),
        Err(ProofError::SizesOutOfOrder { .. })
    ));
    assert!(matches!(
        prove_inclusion(0, 6, &stored),
        Err(ProofError::Read(_))
    ));
    assert_eq!(
        prove_consistency(5, 5, &stored).expect("same size"),
        Vec::<Hash>::new()
    );
}
