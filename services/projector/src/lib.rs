//! Projections: read models built from the ledger's entry stream.
//!
//! The [`follower`] subscribes to the ledger, checks the hash chain of every
//! entry and the consistency of every checkpoint it sees, and applies the
//! events to the [`model`], which the [`store`] persists together with the
//! position it reflects. The [`service`] answers `aidledger.v1.Projections`
//! queries from the model, each answer stamped with that position.
//!
//! With [`analytics`], the public read models are also copied into a
//! PostgreSQL schema for analysts.
//!
//! Boundary: the projector trusts the ledger's judgement of events (an
//! auditor re-checks it; see `aidctl audit`), but not its bytes: what it
//! applies is bound by the chain to a checkpoint signed by the ledger key.

pub mod aggregates;
pub mod analytics;
pub mod by_ref;
pub mod follow_args;
pub mod follower;
pub mod id;
pub mod model;
mod positions;
pub mod queries;
pub mod read;
mod rows;
pub mod server;
pub mod service;
pub mod store;
mod table;
mod wire;

pub use follow_args::FollowArgs;
pub use follower::{Follower, FollowerConfig, Shared};
pub use model::{Model, ParsedEvent};
pub use store::ProjectionStore;

#[cfg(test)]
mod tests;
