//! The wire format of aidledger: the protobuf messages and the gRPC service of
//! `proto/aidledger/v1`, generated at build time.
//!
//! Boundary: this crate holds generated types and nothing else. The domain
//! model (what an event means, whether it is valid) lives in
//! `aidledger-ledger`; wire types never leak past the edges that decode them.

/// Generated code for package `aidledger.v1`.
pub mod pb {
    #![allow(
        missing_docs,
        missing_debug_implementations,
        clippy::all,
        clippy::pedantic
    )]
    tonic::include_proto!("aidledger.v1");
}

/// The encoded `FileDescriptorSet` of every aidledger proto, for gRPC server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/aidledger_descriptor.bin"));

pub use prost::Message;
pub use prost_types::Timestamp;
