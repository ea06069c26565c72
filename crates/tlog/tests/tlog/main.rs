//! The crate's one integration test binary: published vectors (RFC 6962
//! proofs, Wycheproof Ed25519), randomized trees checked against an
//! independent naive Merkle tree, checkpoints and key files.

mod checkpoint;
mod pkcs8;
mod rfc6962_vectors;
mod support;
mod tree_props;
mod wycheproof;
