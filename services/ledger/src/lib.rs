//! The ledger service: it sequences verified events into the durable log,
//! signs checkpoints and answers proofs.
//!
//! Boundary: this crate orchestrates; it owns no rules (those are
//! `aidledger-ledger`), no tree math (`aidledger-tlog`) and no disk format
//! (`aidledger-store`). It is the only place where all three meet, so it is
//! where the invariants linking them are asserted: `seq == tree size`,
//! `prev_hash == head`, and "acknowledged means durable".

pub mod proofs;
pub mod sequencer;

pub use sequencer::{LedgerConfig, LedgerError, OpenError, Outcome, Sequencer, SignedCheckpoint};
