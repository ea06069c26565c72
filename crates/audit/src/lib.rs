//! `aidledger-audit`: verifying an aidledger log without trusting the
//! operator, the agencies or the server.
//!
//! - [`LogAuditor`]: the streaming verifier of SPEC §4: seq continuity, the
//!   hash chain, recorded time, strict signatures (on all cores), keys
//!   registered and not revoked at that point and a full replay of the
//!   rules of SPEC §7 (the ledger crate's own [`State::apply`]), then the
//!   Merkle root against a checkpoint signed by the pinned ledger key.
//!   Reports the first failing seq with a stable reason ([`Failure`]).
//! - [`archive`]: the portable, self-verifying archive of a log.
//! - [`bundle`]: offline-verifiable proof bundles of one entry.
//! - [`Monitor`]: moving a trusted checkpoint forward only along
//!   consistent, verified extensions.
//! - [`Witness`]: C2SP tlog-cosignature with crash-safe state.
//! - [`WitnessQuorum`]: k of n known witnesses.
//!
//! **Architecture Invariant:** depends only on the pure crates (`tlog`,
//! `ledger`, `wire`): no gRPC, no store, no server code, so what it accepts
//! cannot depend on how the ledger happens to be built. Its only I/O is the
//! files it is handed (archives, the witness state). The network belongs
//! to the command that drives it (`aidctl audit`).
//!
//! [`State::apply`]: aidledger_ledger::State::apply

pub mod archive;
mod auditor;
pub mod bundle;
mod consistency;
mod failure;
mod monitor;
mod quorum;
mod select;
mod witness;

#[cfg(test)]
mod tests;

pub use auditor::{AUDIT_BATCH_ENTRIES_MAX, LogAuditor, verify_note};
pub use consistency::check_extends;
pub use failure::{Failure, reason};
pub use monitor::Monitor;
pub use quorum::WitnessQuorum;
pub use select::EventSelector;
pub use witness::{Witness, WitnessError, WitnessState, write_atomically};
