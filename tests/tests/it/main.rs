//! The one integration test binary: real ledgers on real files.

mod audit;
mod boundaries;
mod crosslang;
mod demo;
mod deploy;
mod feed;
mod grpc;
mod projector;
mod sequencer;
mod tls;
