//! The projector's own embedded store: every read-model table and the log
//! position they reflect, in one redb file.
//!
//! A commit writes the rows changed since the previous one and the position
//! in a single transaction, so after a crash the file holds the tables as of
//! some applied prefix of the log and exactly that prefix's position: the
//! follower resumes from there and the result is as if it never stopped.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableError,
};

use crate::model::{Model, Position};
use crate::table::{RowWrite, Settle, StoredTable};

/// Single-row facts about the store: the position and the format version.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const POSITION_KEY: &str = "position";
const FORMAT_KEY: &str = "format";
/// Bumped when a table's row layout changes (including the serde layout of
/// the `aidledger-ledger` types rows embed): an old file is then refused,
/// to be rebuilt from the ledger, rather than misread.
const FORMAT_VERSION: &[u8] = b"aidledger-projections/6";

/// redb's page cache for this file. The model lives in memory and the file
/// is read once, at open; commits write where the last ones did. redb's
/// default, 1 GiB, would mostly hold pages never read again.
const CACHE_BYTES: usize = 64 << 20;

/// Why the store cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("projection store {path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error(
        "projection store {path} was written by another format ({found}); rebuild it with --rebuild"
    )]
    Format { path: PathBuf, found: String },
}

/// The rows a commit writes, taken from the model while it is locked and
/// written after the lock is released.
#[derive(Debug)]
pub struct Commit {
    tables: Vec<(&'static str, Vec<RowWrite>)>,
    position: Vec<u8>,
    /// The log size this commit makes durable.
    pub size: u64,
}

impl Commit {
    /// Rows to write, over all tables.
    pub fn rows(&self) -> usize {
        self.tables.iter().map(|(_, rows)| rows.len()).sum()
    }

    /// Key and value bytes to write, over all tables: what a commit costs
    /// the store.
    pub fn bytes(&self) -> usize {
        self.bytes_by_table().iter().map(|(_, bytes)| bytes).sum()
    }

    /// [`Commit::bytes`] for each table written.
    pub fn bytes_by_table(&self) -> Vec<(&'static str, usize)> {
        self.tables
            .iter()
            .map(|(name, rows)| {
                let bytes = rows
                    .iter()
                    .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
                    .sum();
                (*name, bytes)
            })
            .collect()
    }
}

/// Loads every stored row of `table`.
fn load_table(txn: &redb::ReadTransaction, table: &mut dyn StoredTable) -> Result<(), String> {
    let name = table.name();
    let definition: TableDefinition<&[u8], &[u8]> = TableDefinition::new(name);
    let rows = txn
        .open_table(definition)
        .map_err(|e| format!("opening table {name}: {e}"))?;
    let iter = rows
        .iter()
        .map_err(|e| format!("reading table {name}: {e}"))?;
    for row in iter {
        let (key, value) = row.map_err(|e| format!("reading table {name}: {e}"))?;
        table
            .load_row(key.value(), value.value())
            .map_err(|e| format!("decoding a row of table {name}: {e}"))?;
    }
    Ok(())
}

/// Where each table's encoded changes stand, for
/// [`ProjectionStore::settle_commit`].
#[derive(Debug)]
pub struct Settlement {
    settles: Vec<Settle>,
}

/// The keys of rows a settled commit removed: dropped after the model's
/// lock is released, since for shared ids dropping them touches a reference
/// count per key, likely out of cache.
pub struct Spent {
    _keys: Vec<crate::table::Spent>,
}

impl std::fmt::Debug for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spent")
            .field("tables", &self._keys.len())
            .finish()
    }
}

/// The projection store file.
#[derive(Debug)]
pub struct ProjectionStore {
    db: Database,
    path: PathBuf,
}

impl ProjectionStore {
    /// Opens (or creates) the store at `path` and loads the model it holds.
    ///
    /// # Errors
    ///
    /// I/O or redb errors; a file of another format version.
    pub fn open(path: &Path) -> Result<(ProjectionStore, Model), StoreError> {
        let io = |detail: String| StoreError::Io {
            path: path.to_owned(),
            detail,
        };
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| io(format!("opening: {e}")))?;
        let store = ProjectionStore {
            db,
            path: path.to_owned(),
        };
        let mut model = Model::new();
        let txn = store
            .db
            .begin_read()
            .map_err(|e| io(format!("reading: {e}")))?;
        match txn.open_table(META) {
            Ok(meta) => {
                let format = meta
                    .get(FORMAT_KEY)
                    .map_err(|e| io(format!("reading the format: {e}")))?
                    .map(|v| v.value().to_vec());
                if format.as_deref() != Some(FORMAT_VERSION) {
                    return Err(StoreError::Format {
                        path: path.to_owned(),
                        found: format.map_or_else(
                            || "none".to_owned(),
                            |found| String::from_utf8_lossy(&found).into_owned(),
                        ),
                    });
                }
                if let Some(position) = meta
                    .get(POSITION_KEY)
                    .map_err(|e| io(format!("reading the position: {e}")))?
                {
                    model.position = postcard::from_bytes::<Position>(position.value())
                        .map_err(|e| io(format!("decoding the position: {e}")))?;
                }
            }
            Err(TableError::TableDoesNotExist(_)) => return Ok((store, model)),
            Err(e) => return Err(io(format!("reading the meta table: {e}"))),
        }
        // The tables load side by side, the biggest first, each thread in
        // a read transaction of its own (all see the one committed state):
        // a restart answers sooner.
        let mut stored: Vec<(u64, &mut dyn StoredTable)> = Vec::new();
        for table in model.tables_mut() {
            let name = table.name();
            let definition: TableDefinition<&[u8], &[u8]> = TableDefinition::new(name);
            match txn.open_table(definition) {
                Ok(rows) => {
                    let len = rows
                        .len()
                        .map_err(|e| io(format!("reading table {name}: {e}")))?;
                    stored.push((len, table));
                }
                Err(TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(io(format!("opening table {name}: {e}"))),
            }
        }
        // Popped from the end: the biggest first.
        stored.sort_by_key(|(len, _)| *len);
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .min(stored.len());
        let queue = std::sync::Mutex::new(stored);
        let db = &store.db;
        std::thread::scope(|scope| {
            let loaders: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let txn = db.begin_read().map_err(|e| io(format!("reading: {e}")))?;
                        loop {
                            let next = queue.lock().expect("the load queue").pop();
                            let Some((_, table)) = next else {
                                return Ok(());
                            };
                            if let Err(error) = load_table(&txn, table) {
                                // The other loaders stop at their next table.
                                queue.lock().expect("the load queue").clear();
                                return Err(io(error));
                            }
                        }
                    })
                })
                .collect();
            // The scope joins every loader; a failure is reported, the
            // first in the loaders' order if several failed.
            loaders.into_iter().try_for_each(|loader| {
                loader
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        })?;
        model
            .rebuild_indexes()
            .map_err(|e| io(format!("rebuilding the indexes: {e}")))?;
        Ok((store, model))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the model's changes since the last commit, and its position:
    /// [`ProjectionStore::encode_commit`] then
    /// [`ProjectionStore::settle_commit`].
    pub fn take_commit(model: &mut Model) -> Commit {
        let (commit, settlement) = ProjectionStore::encode_commit(model);
        drop(ProjectionStore::settle_commit(model, settlement));
        commit
    }

    /// Encodes the model's changes since the last settled commit, and its
    /// position, changing nothing: the slow part of taking a commit, run
    /// while readers read the model. [`ProjectionStore::settle_commit`]
    /// then marks those changes taken, before the model changes again;
    /// [`ProjectionStore::write`] writes them.
    pub fn encode_commit(model: &Model) -> (Commit, Settlement) {
        let position =
            postcard::to_allocvec(&model.position).expect("the position is plain serde data");
        let size = model.position.size;
        // Tables encode apart, on every core: while the fold waits for its
        // commit, the decoding threads wait for the fold, and the commit
        // that ends a catch-up encodes millions of rows.
        let encoded: Vec<_> = model
            .stored_tables()
            .into_par_iter()
            .map(|table| (table.name(), table.encode_changes()))
            .collect();
        let mut tables = Vec::new();
        let mut settles = Vec::new();
        for (name, (rows, settle)) in encoded {
            if !rows.is_empty() {
                tables.push((name, rows));
            }
            settles.push(settle);
        }
        let commit = Commit {
            tables,
            position,
            size,
        };
        (commit, Settlement { settles })
    }

    /// Marks the changes an [`ProjectionStore::encode_commit`] of this
    /// model encoded as taken. Only what the store has yet to write
    /// changes, which no reader sees, in time proportional to the lists
    /// changed (not the rows): the part of taking a commit that needs the
    /// model's write lock. Returns what to drop once that lock is
    /// released.
    ///
    /// # Panics
    ///
    /// When the settlement does not come from this model as it is, or the
    /// model's tables changed since it was encoded: settling then would
    /// mark changes taken that were never written.
    pub fn settle_commit(model: &mut Model, settlement: Settlement) -> Spent {
        let tables = model.tables_mut();
        assert_eq!(
            tables.len(),
            settlement.settles.len(),
            "a settlement of this model"
        );
        Spent {
            _keys: tables
                .into_iter()
                .zip(settlement.settles)
                .map(|(table, settle)| table.settle(settle))
                .collect(),
        }
    }

    /// Writes a commit in one fsync'd transaction.
    ///
    /// # Errors
    ///
    /// I/O or redb errors; nothing of the commit is then stored.
    pub fn write(&self, mut commit: Commit) -> Result<(), StoreError> {
        let io = |detail: String| StoreError::Io {
            path: self.path.clone(),
            detail,
        };
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| io(format!("starting a commit: {e}")))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| io(format!("starting a commit: {e}")))?;
        for (name, rows) in &mut commit.tables {
            // In key order, each B-tree page is found and changed once for
            // all its rows, not once per row as rows listed in log order
            // (random keys) would have it. Stable, though a commit names a
            // key at most once, so that order could never change an outcome.
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            let definition: TableDefinition<&[u8], &[u8]> = TableDefinition::new(name);
            let mut table = txn
                .open_table(definition)
                .map_err(|e| io(format!("opening table {name}: {e}")))?;
            for (key, value) in rows {
                match value {
                    Some(value) => table.insert(key.as_slice(), value.as_slice()).map(drop),
                    None => table.remove(key.as_slice()).map(drop),
                }
                .map_err(|e| io(format!("writing table {name}: {e}")))?;
            }
        }
        {
            let mut meta = txn
                .open_table(META)
                .map_err(|e| io(format!("opening the meta table: {e}")))?;
            meta.insert(FORMAT_KEY, FORMAT_VERSION)
                .map_err(|e| io(format!("writing the format: {e}")))?;
            meta.insert(POSITION_KEY, commit.position.as_slice())
                .map_err(|e| io(format!("writing the position: {e}")))?;
        }
        txn.commit()
            .map_err(|e| io(format!("committing entry {}: {e}", commit.size)))?;
        Ok(())
    }
}
