//! The ledger service: it sequences verified events into the durable log,
//! signs checkpoints, answers proofs, and serves `aidledger.v1.Ledger` over
//! gRPC.
//!
//! Boundary: this crate orchestrates; it owns no rules (those are
//! `aidledger-ledger`), no tree math (`aidledger-tlog`) and no disk format
//! (`aidledger-store`). It is the only place where all three meet, so it is
//! where the invariants linking them are asserted: `seq == tree size`,
//! `prev_hash == head`, and "acknowledged means durable".

pub mod config;
pub mod ingest;
mod metrics;
pub mod proofs;
pub mod rate_limit;
pub mod sequencer;
pub mod server;
pub mod service;
pub mod status;

pub use sequencer::{LedgerConfig, LedgerError, OpenError, Outcome, Sequencer, SignedCheckpoint};
