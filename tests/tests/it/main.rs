//! The one integration test binary: real ledgers on real files.

mod sequencer;
