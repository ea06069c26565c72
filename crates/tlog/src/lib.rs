//! The verifiable core of aidledger: RFC 9162 Merkle hashing and proofs, C2SP
//! checkpoints in C2SP signed notes, witness cosignatures (C2SP
//! tlog-cosignature) and strict Ed25519. This is the crate an
//! outside verifier depends on, so it is pure: no I/O, no clock, no async, no
//! knowledge of events, storage or gRPC. The one impurity is
//! [`ed25519::SecretKey::generate`], which asks the OS for randomness.
//!
//! What is borrowed and what is written here:
//!
//! - **Tree layout and proof generation** come from `tlog_tiles` (cloudflare/azul,
//!   a port of Go's `golang.org/x/mod/sumdb/tlog`): the stored-hash order
//!   ([`stored_hash_index`]), [`HashReader`], and proofs built from stored
//!   hashes. Our [`TreeBuilder`] produces exactly the hashes
//!   `tlog_tiles::stored_hashes` would, in the same order, in O(log n) memory.
//! - **Note framing** (parsing and writing signed notes, key ids) comes from
//!   `signed_note`. Its `StandardVerifier` uses non-strict Ed25519, so we plug
//!   in our own verifier and signer built on [`ed25519::verify_strict`].
//! - **Proof verification** is written here, straight from RFC 9162 2.1.3.2
//!   and 2.1.4.2, because it runs on hostile input: it must never panic (the
//!   `tlog_tiles` check functions assert on their internal math) and it must
//!   reject every malformed vector in the shared test data.
//!
//! **Invariant:** nothing in this crate panics on bytes that came from outside;
//! verification answers `Ok` or an error that says what was wrong.

mod checkpoint;
mod cosignature;
pub mod ed25519;
mod proof;
pub mod tiles;
mod tree;

pub use checkpoint::{
    Checkpoint, CheckpointError, LogSigner, LogVerifier, ORIGIN_LEN_MAX, SignatureName,
    is_valid_origin, note_signers,
};
pub use cosignature::{
    COSIGNATURE_TIMESTAMP_MAX, COSIGNATURE_TYPE_ED25519, Cosignature, WitnessSigner,
    WitnessVerifier, add_signature_lines, cosignature_message,
};
pub use proof::{
    ProofError, TREE_SIZE_MAX, prove_consistency, prove_inclusion, tree_root, verify_consistency,
    verify_inclusion,
};
/// The `tlog_tiles` crate itself, so implementers of [`HashReader`] can name
/// `tlog_tiles::Error` without depending on a second copy.
pub use tlog_tiles;
pub use tlog_tiles::{
    Hash, HashReader, split_stored_hash_index, stored_hash_count, stored_hash_index,
};
pub use tree::{EMPTY_ROOT, TreeBuilder, leaf_hash, node_hash};
