//! The ledger's rules: events, their signatures, the entry chain, and the
//! state machine of SPEC §7 with its refusals.
//!
//! Boundary: pure and synchronous. No I/O, no async, no clock, no
//! randomness: the sequencer passes each entry's seq and recorded time in.
//! The same code runs in the ledger (deciding), in its start-up replay
//! (rebuilding) and in the auditor (checking), so all three agree.

pub mod calendar;
pub mod decode;
pub mod entry;
pub mod event;
mod events;
pub mod privacy;
pub mod rejection;
pub mod signing;
pub mod state;

pub use entry::{
    ChainChecker, ChainError, ENTRY_BYTES_MAX, EntryReadError, LinkedEntry, LoggedEvent,
    ParsedEntry, encode_entry, read_logged_event,
};
pub use event::*;
pub use rejection::{Code, Reason, Rejection};
pub use signing::{CheckedEvent, check_format, sign_event, signing_message, verify_submission};
pub use state::{BalanceKey, LedgerParams, State};

#[cfg(test)]
mod tests;
