//! Test kit shared by the integration tests and the benchmarks: a seeded
//! generator of valid signed ledgers, with its own simple model of the
//! balances it should produce, and helpers to open real ledgers on disk.

pub mod generator;

use std::path::Path;
use std::sync::Arc;

use aidledger::{LedgerConfig, OpenError, Sequencer};
use aidledger_ledger::{PublicKey, Timestamp};
use aidledger_store::{LogStore, RedbStore};
use aidledger_tlog::LogSigner;
use aidledger_tlog::ed25519::SecretKey;

/// The origin every test ledger uses.
pub const ORIGIN: &str = "aid.ninhthuan.example/children-test";

/// The fixed ledger key of test ledgers, so reopening finds the same vkey.
pub fn ledger_key() -> SecretKey {
    SecretKey::from_seed(&[0x4c; 32])
}

/// The config of a test ledger whose Genesis is signed by `authority`.
pub fn config(authority: &SecretKey) -> LedgerConfig {
    LedgerConfig {
        signer: LogSigner::new(ORIGIN, ledger_key()).expect("valid origin"),
        authority_key: Some(PublicKey(authority.public_key())),
    }
}

/// Opens (creating if needed) a redb-backed ledger in `dir`.
pub fn open_redb(dir: &Path, authority: &SecretKey) -> Result<Sequencer, OpenError> {
    let store: Arc<dyn LogStore> = Arc::new(RedbStore::open(&dir.join("ledger.redb"))?);
    Sequencer::open(store, config(authority))
}

/// A clock for tests: 2025-01-01 plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_seconds(1_735_689_600 + seconds)
}
