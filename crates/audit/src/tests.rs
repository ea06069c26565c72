//! Unit tests of the parts that need no ledger: witness decisions and their
//! persistence, consistency, quorum and the archive framing. The replay of
//! real ledgers (and tampering with them) is tested in the integration
//! binary, against the real server.

use aidledger_tlog::ed25519::SecretKey;
use aidledger_tlog::{
    Checkpoint, Hash, HashReader, LogSigner, TreeBuilder, WitnessSigner, WitnessVerifier,
    add_signature_lines, leaf_hash, prove_consistency,
};

use crate::archive::{ArchiveWriter, Tail, verify_archive};
use crate::{Witness, WitnessError, WitnessQuorum, check_extends, reason};

const ORIGIN: &str = "aid.example/audit-unit";

/// A tree of synthetic leaves with all its stored hashes, to prove from.
struct Tree {
    builder: TreeBuilder,
    stored: Vec<Hash>,
}

impl Tree {
    fn new(leaves: u64, salt: u8) -> Tree {
        let mut tree = Tree {
            builder: TreeBuilder::new(),
            stored: Vec::new(),
        };
        for n in 0..leaves {
            let mut leaf = n.to_be_bytes().to_vec();
            // The salt changes leaves from 3 on, so two trees share a prefix.
            if n >= 3 {
                leaf.push(salt);
            }
            let hashes = tree.builder.push(leaf_hash(&leaf));
            tree.stored.extend(hashes);
        }
        tree
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.into(),
            size: self.builder.size(),
            root: self.builder.root(),
        }
    }
}

impl HashReader for Tree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, aidledger_tlog::tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.stored[i as usize]).collect())
    }
}

fn log_signer() -> LogSigner {
    LogSigner::new(ORIGIN, SecretKey::from_seed(&[7; 32])).unwrap()
}

fn witness_signer() -> WitnessSigner {
    WitnessSigner::new("witness.example/w1", SecretKey::from_seed(&[8; 32])).unwrap()
}

fn refusal_reason(result: Result<String, WitnessError>) -> &'static str {
    match result {
        Err(WitnessError::Refused(failure)) => failure.reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_witness_cosigns_consistent_checkpoints_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness.json");
    let log = log_signer();
    let verifier = aidledger_tlog::LogVerifier::from_vkey(&log.vkey()).unwrap();
    let mut witness = Witness::open(&path, witness_signer(), verifier.clone()).unwrap();
    assert!(witness.last().is_none());

    let small = Tree::new(5, 0);
    let line = witness
        .cosign(&log.sign(&small.checkpoint()), &[], 1_000)
        .unwrap();
    let cosigned = add_signature_lines(&log.sign(&small.checkpoint()), [line.as_str()]);
    let witness_verifier = WitnessVerifier::from_vkey(&witness_signer().vkey()).unwrap();
    assert_eq!(witness_verifier.verify(&cosigned).unwrap().timestamp, 1_000);

    // A larger tree with a valid proof: cosigned.
    let large = Tree::new(12, 0);
    let proof = prove_consistency(5, 12, &large).unwrap();
    witness
        .cosign(&log.sign(&large.checkpoint()), &proof, 1_001)
        .unwrap();
    assert_eq!(witness.last(), Some(&large.checkpoint()));

    // A fork of the same log at a larger size: its proof from 12 fails.
    let fork = Tree::new(20, 1);
    let forged_proof = prove_consistency(12, 20, &fork).unwrap();
    assert_eq!(
        refusal_reason(witness.cosign(&log.sign(&fork.checkpoint()), &forged_proof, 1_002)),
        reason::INCONSISTENT
    );
    // Same size, other root.
    let same_size_fork = Tree::new(12, 2);
    assert_eq!(
        refusal_reason(witness.cosign(&log.sign(&same_size_fork.checkpoint()), &[], 1_003)),
        reason::FORK
    );
    // Smaller than what it cosigned.
    assert_eq!(
        refusal_reason(witness.cosign(&log.sign(&small.checkpoint()), &[], 1_004)),
        reason::ROLLBACK
    );
    // Not signed by the log.
    let other_log = LogSigner::new(ORIGIN, SecretKey::from_seed(&[9; 32])).unwrap();
    assert_eq!(
        refusal_reason(witness.cosign(&other_log.sign(&Tree::new(30, 0).checkpoint()), &[], 1_005)),
        reason::CHECKPOINT_INVALID
    );

    // The state survives a restart, and refusals did not change it.
    let reopened = Witness::open(&path, witness_signer(), verifier).unwrap();
    assert_eq!(reopened.last(), Some(&large.checkpoint()));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec!["witness.json"], "no temporary file is left");
}

#[test]
fn a_witness_state_of_another_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("witness.json");
    let log = log_signer();
    let verifier = aidledger_tlog::LogVerifier::from_vkey(&log.vkey()).unwrap();
    let mut witness = Witness::open(&path, witness_signer(), verifier).unwrap();
    witness
        .cosign(&log.sign(&Tree::new(2, 0).checkpoint()), &[], 1)
        .unwrap();
    let other = LogSigner::new("other.example/log", SecretKey::from_seed(&[7; 32])).unwrap();
    let other_verifier = aidledger_tlog::LogVerifier::from_vkey(&other.vkey()).unwrap();
    let error = Witness::open(&path, witness_signer(), other_verifier).unwrap_err();
    assert!(error.to_string().contains("other.example/log"), "{error}");
}

#[test]
fn consistency_from_the_empty_tree_and_across_origins() {
    let empty = Tree::new(0, 0).checkpoint();
    let tree = Tree::new(4, 0).checkpoint();
    assert_eq!(check_extends(&empty, &tree, &[]), Ok(()));
    let mut elsewhere = tree.clone();
    elsewhere.origin = "other.example/log".into();
    assert_eq!(
        check_extends(&tree, &elsewhere, &[]).unwrap_err().reason,
        reason::ORIGIN_MISMATCH
    );
}

#[test]
fn a_quorum_counts_only_valid_cosignatures_of_known_witnesses() {
    let log = log_signer();
    let checkpoint = Tree::new(3, 0).checkpoint();
    let w1 = witness_signer();
    let w2 = WitnessSigner::new("witness.example/w2", SecretKey::from_seed(&[10; 32])).unwrap();
    let stranger =
        WitnessSigner::new("witness.example/w1", SecretKey::from_seed(&[11; 32])).unwrap();
    let note = add_signature_lines(
        &log.sign(&checkpoint),
        [
            w1.cosign(&checkpoint, 5).as_str(),
            stranger.cosign(&checkpoint, 5).as_str(),
        ],
    );
    let vkeys = vec![w1.vkey(), w2.vkey()];
    assert_eq!(
        WitnessQuorum::new(&vkeys, 1)
            .unwrap()
            .check(&note)
            .unwrap()
            .len(),
        1
    );
    let failure = WitnessQuorum::new(&vkeys, 2)
        .unwrap()
        .check(&note)
        .unwrap_err();
    assert_eq!(failure.reason, reason::WITNESS_QUORUM);
    assert!(failure.detail.contains("1 of 2"), "{failure}");
    assert!(WitnessQuorum::new(&vkeys, 3).is_err());
    assert!(WitnessQuorum::new(&[w1.vkey(), w1.vkey()], 1).is_err());
}

#[test]
fn malformed_archives_are_named() {
    let vkey = log_signer().vkey();
    let check =
        |bytes: &[u8]| verify_archive(bytes, &vkey, None, Tail::Refuse, &mut |_| {}).unwrap_err();
    let failure = check(b"not an archive at all, clearly");
    assert_eq!(failure.reason, reason::ARCHIVE_MALFORMED);
    assert!(
        failure.detail.contains("not an aidledger-archive/v1"),
        "{failure}"
    );

    let empty = ArchiveWriter::new(Vec::new()).unwrap().into_inner();
    assert!(check(&empty).detail.contains("no checkpoint"));

    let mut cut = ArchiveWriter::new(Vec::new()).unwrap();
    cut.checkpoint(&log_signer().sign(&Tree::new(0, 0).checkpoint()))
        .unwrap();
    let mut cut = cut.into_inner();
    cut.extend_from_slice(&[b'E', 0, 0, 1, 0, 1, 2]);
    assert!(check(&cut).detail.contains("at byte"), "cut short");

    // An empty log with its checkpoint verifies; a forged one does not.
    let mut good = ArchiveWriter::new(Vec::new()).unwrap();
    good.checkpoint(&log_signer().sign(&Tree::new(0, 0).checkpoint()))
        .unwrap();
    let good = good.into_inner();
    let verified = verify_archive(good.as_slice(), &vkey, None, Tail::Refuse, &mut |_| {}).unwrap();
    assert_eq!(verified.checkpoint.size, 0);
    assert_eq!(verified.verified_len, good.len() as u64);
    let forger = LogSigner::new(ORIGIN, SecretKey::from_seed(&[99; 32])).unwrap();
    let mut forged = ArchiveWriter::new(Vec::new()).unwrap();
    forged
        .checkpoint(&forger.sign(&Tree::new(0, 0).checkpoint()))
        .unwrap();
    assert_eq!(
        check(&forged.into_inner()).reason,
        reason::CHECKPOINT_INVALID
    );
}
