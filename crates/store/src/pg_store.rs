//! `PgStore`: the [`LogStore`] contract on PostgreSQL, for a ledger whose
//! storage must outlive its machine (a streaming standby, `pg_basebackup`
//! and point-in-time recovery are the operator's usual tools).
//!
//! One database transaction per call that writes, committed with
//! `synchronous_commit = on`, so `Ok` means the commit record is flushed on
//! the primary (and, when the operator configures a synchronous standby,
//! on it too). Every writing transaction first takes one transaction-scoped
//! advisory lock, so writes are serialised even between processes: a
//! second writer's batch is refused as a seq mismatch, never interleaved.
//! Readers use single statements, each of which sees one snapshot, so they
//! see whole batches only.
//!
//! The trait is synchronous and is called from async handlers as well as
//! from the writer thread, so the store runs its own small Tokio runtime
//! and hands each call to it, waiting on a plain channel: that works from
//! any thread, inside a runtime or not.

use std::future::Future;
use std::sync::Arc;

use tokio_postgres::{Client, NoTls};

use crate::{
    AppendBatch, COSIGNATURES_PER_CHECKPOINT_MAX, COSIGNED_SCAN_ROWS_MAX, ENTRIES_PAGE_MAX, Hash,
    LogStore, READ_HASHES_MAX, Refusal, StoreError, check_batch_shape, check_checkpoint_note,
    check_checkpoint_size, check_cosignature,
};

/// The schema, one migration per element, applied in order and recorded in
/// `aidledger_migrations`. Never edit a released migration: add one.
const MIGRATIONS: &[&str] = &[
    // 1: the log.
    r#"
    CREATE TABLE log_entries (
        seq      bigint PRIMARY KEY CHECK (seq >= 0),
        bytes    bytea  NOT NULL,
        event_id text COLLATE "C" NOT NULL UNIQUE
    );
    CREATE TABLE log_hashes (
        idx  bigint PRIMARY KEY CHECK (idx >= 0),
        hash bytea  NOT NULL CHECK (octet_length(hash) = 32)
    );
    CREATE TABLE log_checkpoints (
        size bigint PRIMARY KEY CHECK (size >= 0),
        note text   NOT NULL
    );
    CREATE TABLE log_cosignatures (
        size    bigint NOT NULL REFERENCES log_checkpoints (size),
        witness text COLLATE "C" NOT NULL,
        line    text NOT NULL,
        PRIMARY KEY (size, witness)
    );
    "#,
    // 2: who writes. One row; `epoch` grows by one at every change of
    // writer, and every write checks it (fencing).
    r#"
    CREATE TABLE log_writer (
        id      integer PRIMARY KEY CHECK (id = 1),
        epoch   bigint NOT NULL,
        holder  text NOT NULL,
        address text NOT NULL,
        since   timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO log_writer (id, epoch, holder, address) VALUES (1, 0, '', '');
    "#,
];

/// Serialises every writing transaction, across processes. An arbitrary
/// constant ("aidledgr" in ASCII), shared by every ledger on the database.
const WRITE_LOCK: i64 = 0x6169_646c_6564_6772;
/// Serialises schema migrations between processes starting together.
const MIGRATION_LOCK: i64 = WRITE_LOCK + 1;
/// The writer's lease: a session advisory lock, held by the writer's own
/// connection for as long as it lives. PostgreSQL releases it when that
/// session ends, however the process ended.
const LEASE_LOCK: i64 = WRITE_LOCK + 2;

/// The lease's advisory lock key, for tests that cut a writer off.
#[cfg(test)]
pub(crate) fn lease_key() -> i64 {
    LEASE_LOCK
}

/// The writer of a shared database, as recorded by the latest to take the
/// lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Writer {
    /// Grows by one at every change of writer.
    pub epoch: u64,
    /// Who holds it (a host name and process id, for operators).
    pub holder: String,
    /// Where clients reach it.
    pub address: String,
}

/// A [`LogStore`] on a PostgreSQL database.
pub struct PgStore {
    runtime: Option<tokio::runtime::Runtime>,
    url: String,
    /// Holds the write transactions, one at a time.
    writer: Arc<tokio::sync::Mutex<Client>>,
    /// Answers reads; queries on one connection are pipelined.
    reader: Arc<Client>,
    /// The lease's connection and its epoch, once [`PgStore::try_lead`]
    /// took it. While set, every write checks that the recorded epoch is
    /// still this one, so a writer that lost the lease cannot write.
    lease: std::sync::Mutex<Option<Lease>>,
}

struct Lease {
    epoch: i64,
    /// Keeps the session, and so the lock, alive.
    _client: Client,
    /// Becomes true when the session ends.
    lost: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another
        // runtime, where a store may well be dropped.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn pg_error(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    let context = context.into();
    move |error| StoreError::io(context, error)
}

/// A u64 position as PostgreSQL's bigint; positions at or above 2^63 are
/// never stored.
fn to_i64(n: u64) -> Option<i64> {
    i64::try_from(n).ok()
}

fn to_u64(n: i64, context: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::corrupt(context, format!("negative position {n}")))
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`), creates or
    /// upgrades the schema, and checks that the tables are contiguous.
    ///
    /// # Errors
    ///
    /// The database cannot be reached, a migration fails, or the stored log
    /// has a gap.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pg-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::io("starting the PostgreSQL runtime", e))?;
        let url = url.to_owned();
        let url_for_lease = url.clone();
        let (writer, reader) = run_on(&runtime, "opening the PostgreSQL store", async move {
            let mut writer = connect(&url).await?;
            migrate(&mut writer).await?;
            let reader = connect(&url).await?;
            Ok((writer, reader))
        })?;
        let store = PgStore {
            runtime: Some(runtime),
            url: url_for_lease,
            lease: std::sync::Mutex::new(None),
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            reader: Arc::new(reader),
        };
        store.check_contiguous()?;
        Ok(store)
    }

    fn run<T: Send + 'static>(
        &self,
        what: &str,
        future: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        run_on(
            self.runtime.as_ref().expect("the runtime lives until drop"),
            what,
            future,
        )
    }

    /// Tries to become the database's one writer: takes the lease (a
    /// session advisory lock on a connection of its own) if nobody holds
    /// it, and records a new epoch with `holder` and `address`, serialised
    /// with every write. `Ok(None)`: another process holds it.
    ///
    /// # Errors
    ///
    /// The database cannot be reached.
    pub fn try_lead(&self, holder: &str, address: &str) -> Result<Option<u64>, StoreError> {
        let mut lease = self.lease.lock().expect("lease lock");
        if let Some(lease) = lease.as_ref() {
            return Ok(Some(to_u64(lease.epoch, "reading the epoch")?));
        }
        let url = self.url.clone();
        let (holder, address) = (holder.to_owned(), address.to_owned());
        let taken = self.run("taking the writer's lease", async move {
            let (mut client, connection) = tokio_postgres::connect(&url, NoTls)
                .await
                .map_err(pg_error("connecting for the writer's lease"))?;
            let (lost_tx, lost) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(%error, "the writer's lease connection ended");
                }
                let _ = lost_tx.send(true);
            });
            let held: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&LEASE_LOCK])
                .await
                .map_err(pg_error("taking the writer's lease"))?
                .get(0);
            if !held {
                return Ok(None);
            }
            let transaction = client
                .transaction()
                .await
                .map_err(pg_error("recording the writer"))?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                .await
                .map_err(pg_error("recording the writer"))?;
            let epoch: i64 = transaction
                .query_one(
                    "UPDATE log_writer SET epoch = epoch + 1, holder = $1, address = $2, \
                     since = now() WHERE id = 1 RETURNING epoch",
                    &[&holder, &address],
                )
                .await
                .map_err(pg_error("recording the writer"))?
                .get(0);
            transaction
                .commit()
                .await
                .map_err(pg_error("recording the writer"))?;
            Ok(Some(Lease {
                epoch,
                _client: client,
                lost,
            }))
        })?;
        let Some(taken) = taken else {
            return Ok(None);
        };
        let epoch = to_u64(taken.epoch, "reading the epoch")?;
        *lease = Some(taken);
        Ok(Some(epoch))
    }

    /// Resolves once the lease this store took is lost (its session ended:
    /// the database restarted, or the connection broke). Never resolves
    /// for a store that holds no lease.
    pub fn lease_lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let lost = self
            .lease
            .lock()
            .expect("lease lock")
            .as_ref()
            .map(|lease| lease.lost.clone());
        async move {
            match lost {
                Some(mut lost) => {
                    let _ = lost.wait_for(|lost| *lost).await;
                }
                None => std::future::pending().await,
            }
        }
    }

    /// The writer as last recorded: who took the lease most recently.
    ///
    /// # Errors
    ///
    /// The database cannot be read.
    pub fn writer(&self) -> Result<Writer, StoreError> {
        let reader = Arc::clone(&self.reader);
        self.run("reading the writer", async move {
            let row = reader
                .query_one(
                    "SELECT epoch, holder, address FROM log_writer WHERE id = 1",
                    &[],
                )
                .await
                .map_err(pg_error("reading the writer"))?;
            Ok(Writer {
                epoch: to_u64(row.get(0), "reading the writer")?,
                holder: row.get(1),
                address: row.get(2),
            })
        })
    }

    /// The epoch every write of this store must still find recorded.
    fn fence(&self) -> Option<i64> {
        self.lease
            .lock()
            .expect("lease lock")
            .as_ref()
            .map(|lease| lease.epoch)
    }

    /// The tables hold positions `0..n` without gaps: a log with a hole is
    /// not one this store wrote.
    fn check_contiguous(&self) -> Result<(), StoreError> {
        let reader = Arc::clone(&self.reader);
        self.run("checking the stored log", async move {
            let row = reader
                .query_one(
                    "SELECT (SELECT count(*) FROM log_entries), \
                            (SELECT COALESCE(max(seq) + 1, 0) FROM log_entries), \
                            (SELECT count(*) FROM log_hashes), \
                            (SELECT COALESCE(max(idx) + 1, 0) FROM log_hashes)",
                    &[],
                )
                .await
                .map_err(pg_error("checking the stored log"))?;
            let (entries, end, hashes, hashes_end): (i64, i64, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            if entries != end || hashes != hashes_end {
                return Err(StoreError::corrupt(
                    "opening the PostgreSQL store",
                    format!(
                        "{entries} entries up to seq {end} and {hashes} hashes up to index {hashes_end}: a gap"
                    ),
                ));
            }
            Ok(())
        })
    }
}

fn run_on<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    what: &str,
    future: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = sender.send(future.await);
    });
    receiver
        .recv()
        .map_err(|_| StoreError::io(what, "the PostgreSQL task ended without an answer"))?
}

async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(pg_error("connecting to PostgreSQL"))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::error!(%error, "the PostgreSQL connection ended");
        }
    });
    // Acknowledged means durable, whatever the server's default.
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .map_err(pg_error("setting synchronous_commit"))?;
    Ok(client)
}

async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let transaction = client
        .transaction()
        .await
        .map_err(pg_error("starting the migration"))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error("locking the schema"))?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS aidledger_migrations (
                version    integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(pg_error("creating the migrations table"))?;
    let applied: i32 = transaction
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM aidledger_migrations",
            &[],
        )
        .await
        .map_err(pg_error("reading the schema version"))?
        .get(0);
    let known = i32::try_from(MIGRATIONS.len()).expect("a few migrations");
    if applied > known {
        return Err(StoreError::corrupt(
            "opening the PostgreSQL store",
            format!(
                "the schema is at version {applied}, newer than this program's {known}: upgrade the program"
            ),
        ));
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(applied as usize) {
        transaction
            .batch_execute(sql)
            .await
            .map_err(pg_error(format!("applying migration {version}")))?;
        transaction
            .execute(
                "INSERT INTO aidledger_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(pg_error(format!("recording migration {version}")))?;
    }
    transaction
        .commit()
        .await
        .map_err(pg_error("committing the migration"))
}

/// Opens a write transaction: takes the write lock, which serialises
/// every write across processes, then checks the fence.
async fn begin_write<'c>(
    client: &'c mut Client,
    fence: Option<i64>,
    context: &str,
) -> Result<tokio_postgres::Transaction<'c>, StoreError> {
    let transaction = client.transaction().await.map_err(pg_error(context))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .await
        .map_err(pg_error(context))?;
    check_fence(&transaction, fence, context).await?;
    Ok(transaction)
}

/// Inside a write transaction, after the write lock: the recorded epoch
/// must still be `fence`'s, or another process has taken the lease since
/// and this one must not write.
async fn check_fence(
    transaction: &tokio_postgres::Transaction<'_>,
    fence: Option<i64>,
    context: &str,
) -> Result<(), StoreError> {
    let Some(mine) = fence else {
        return Ok(());
    };
    let current: i64 = transaction
        .query_one("SELECT epoch FROM log_writer WHERE id = 1", &[])
        .await
        .map_err(pg_error(context))?
        .get(0);
    if current != mine {
        return Err(StoreError::io(
            context,
            format!("deposed: this writer's epoch is {mine}, the database's is now {current}"),
        ));
    }
    Ok(())
}

/// The log size and stored-hash count, from one snapshot.
async fn sizes(client: &impl tokio_postgres::GenericClient) -> Result<(u64, u64), StoreError> {
    let row = client
        .query_one(
            "SELECT (SELECT COALESCE(max(seq) + 1, 0) FROM log_entries), \
                    (SELECT COALESCE(max(idx) + 1, 0) FROM log_hashes)",
            &[],
        )
        .await
        .map_err(pg_error("reading the log size"))?;
    Ok((
        to_u64(row.get(0), "reading the log size")?,
        to_u64(row.get(1), "reading the hash count")?,
    ))
}

async fn latest_checkpoint_size(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Option<u64>, StoreError> {
    let row = client
        .query_one("SELECT max(size) FROM log_checkpoints", &[])
        .await
        .map_err(pg_error("reading the latest checkpoint"))?;
    row.get::<_, Option<i64>>(0)
        .map(|size| to_u64(size, "reading the latest checkpoint"))
        .transpose()
}

impl LogStore for PgStore {
    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        check_batch_shape(batch)?;
        let context = format!("appending batch at seq {}", batch.first_seq);
        let first_seq = batch.first_seq;
        let first_hash_index = batch.first_hash_index;
        let seqs: Vec<i64> = (first_seq..)
            .take(batch.entries.len())
            .map(|seq| to_i64(seq).unwrap_or(i64::MAX))
            .collect();
        let bytes: Vec<Vec<u8>> = batch.entries.iter().map(|e| e.bytes.clone()).collect();
        let event_ids: Vec<String> = batch.entries.iter().map(|e| e.event_id.clone()).collect();
        let hash_indexes: Vec<i64> = (first_hash_index..)
            .take(batch.hashes.len())
            .map(|index| to_i64(index).unwrap_or(i64::MAX))
            .collect();
        let hashes: Vec<Vec<u8>> = batch.hashes.iter().map(|h| h.to_vec()).collect();
        let writer = Arc::clone(&self.writer);
        let fence = self.fence();
        self.run(&context.clone(), async move {
            let mut client = writer.lock().await;
            let transaction = begin_write(&mut client, fence, &context).await?;
            let (size, hash_count) = sizes(&transaction).await?;
            if first_seq != size {
                return Err(Refusal::SeqMismatch {
                    expected: size,
                    got: first_seq,
                }
                .into());
            }
            if first_hash_index != hash_count {
                return Err(Refusal::HashIndexMismatch {
                    expected: hash_count,
                    got: first_hash_index,
                }
                .into());
            }
            let stored: std::collections::HashMap<String, u64> = transaction
                .query(
                    "SELECT event_id, seq FROM log_entries WHERE event_id = ANY($1)",
                    &[&event_ids],
                )
                .await
                .map_err(pg_error(&context))?
                .into_iter()
                .map(|row| Ok((row.get(0), to_u64(row.get(1), "reading event ids")?)))
                .collect::<Result<_, StoreError>>()?;
            // The same order of checks as the other stores: the first entry
            // whose id is taken, stored or earlier in the batch, is named.
            let mut in_batch = std::collections::HashMap::new();
            for (seq, event_id) in (first_seq..).zip(&event_ids) {
                if let Some(&existing_seq) = stored.get(event_id).or(in_batch.get(event_id)) {
                    return Err(Refusal::DuplicateEventId {
                        event_id: event_id.clone(),
                        existing_seq,
                    }
                    .into());
                }
                in_batch.insert(event_id.clone(), seq);
            }
            transaction
                .execute(
                    "INSERT INTO log_entries (seq, bytes, event_id) \
                     SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::text[])",
                    &[&seqs, &bytes, &event_ids],
                )
                .await
                .map_err(pg_error(&context))?;
            if !hashes.is_empty() {
                transaction
                    .execute(
                        "INSERT INTO log_hashes (idx, hash) \
                         SELECT * FROM UNNEST($1::bigint[], $2::bytea[])",
                        &[&hash_indexes, &hashes],
                    )
                    .await
                    .map_err(pg_error(&context))?;
            }
            // The commit point. An error from it is ambiguous (the commit
            // may have happened), which is what StoreError::Io says.
            transaction.commit().await.map_err(pg_error(&context))
        })
    }

    fn size(&self) -> Result<u64, StoreError> {
        let reader = Arc::clone(&self.reader);
        self.run("reading the log size", async move {
            Ok(sizes(reader.as_ref()).await?.0)
        })
    }

    fn hash_count(&self) -> Result<u64, StoreError> {
        let reader = Arc::clone(&self.reader);
        self.run("reading the hash count", async move {
            Ok(sizes(reader.as_ref()).await?.1)
        })
    }

    fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(seq) = to_i64(seq) else {
            return Ok(None);
        };
        let reader = Arc::clone(&self.reader);
        self.run("reading an entry", async move {
            Ok(reader
                .query_opt("SELECT bytes FROM log_entries WHERE seq = $1", &[&seq])
                .await
                .map_err(pg_error(format!("reading entry {seq}")))?
                .map(|row| row.get(0)))
        })
    }

    fn entries(&self, start: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let limit = limit.min(ENTRIES_PAGE_MAX);
        let Some(first) = to_i64(start).filter(|_| limit > 0) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).expect("a page fits in i64");
        let reader = Arc::clone(&self.reader);
        self.run("reading entries", async move {
            reader
                .query(
                    "SELECT seq, bytes FROM log_entries WHERE seq >= $1 ORDER BY seq LIMIT $2",
                    &[&first, &limit],
                )
                .await
                .map_err(pg_error(format!("reading entries from {first}")))?
                .into_iter()
                .map(|row| Ok((to_u64(row.get(0), "reading entries")?, row.get(1))))
                .collect()
        })
    }

    fn seq_of_event(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        let event_id = event_id.to_owned();
        let reader = Arc::clone(&self.reader);
        self.run("looking up an event id", async move {
            reader
                .query_opt(
                    "SELECT seq FROM log_entries WHERE event_id = $1",
                    &[&event_id],
                )
                .await
                .map_err(pg_error("looking up an event id"))?
                .map(|row| to_u64(row.get(0), "looking up an event id"))
                .transpose()
        })
    }

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        if indexes.len() > READ_HASHES_MAX {
            return Err(Refusal::TooManyHashIndexes {
                requested: indexes.len(),
            }
            .into());
        }
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<i64> = indexes.iter().filter_map(|&i| to_i64(i)).collect();
        let indexes = indexes.to_vec();
        let reader = Arc::clone(&self.reader);
        self.run("reading hashes", async move {
            // One statement: the count and the hashes from one snapshot.
            let rows = reader
                .query(
                    "SELECT (SELECT COALESCE(max(idx) + 1, 0) FROM log_hashes), h.idx, h.hash \
                     FROM (SELECT 1) AS one \
                     LEFT JOIN log_hashes h ON h.idx = ANY($1)",
                    &[&wanted],
                )
                .await
                .map_err(pg_error("reading hashes"))?;
            let hash_count = to_u64(rows[0].get(0), "reading hashes")?;
            let mut found = std::collections::HashMap::with_capacity(rows.len());
            for row in &rows {
                if let Some(index) = row.get::<_, Option<i64>>(1) {
                    let bytes: Vec<u8> = row.get(2);
                    let hash: Hash = bytes.as_slice().try_into().map_err(|_| {
                        StoreError::corrupt(
                            "reading hashes",
                            format!("hash {index} is {} bytes", bytes.len()),
                        )
                    })?;
                    found.insert(to_u64(index, "reading hashes")?, hash);
                }
            }
            indexes
                .iter()
                .map(|index| {
                    found.get(index).copied().ok_or_else(|| {
                        Refusal::HashNotStored {
                            index: *index,
                            hash_count,
                        }
                        .into()
                    })
                })
                .collect()
        })
    }

    fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        check_checkpoint_note(note)?;
        let note = note.to_owned();
        let writer = Arc::clone(&self.writer);
        let fence = self.fence();
        let context = format!("recording checkpoint at size {size}");
        self.run(&context.clone(), async move {
            let mut client = writer.lock().await;
            let transaction = begin_write(&mut client, fence, &context).await?;
            let (log_size, _) = sizes(&transaction).await?;
            let latest = latest_checkpoint_size(&transaction).await?;
            check_checkpoint_size(size, log_size, latest)?;
            let size = to_i64(size).expect("at most the log size");
            transaction
                .execute(
                    "INSERT INTO log_checkpoints (size, note) VALUES ($1, $2) \
                     ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note",
                    &[&size, &note],
                )
                .await
                .map_err(pg_error(&context))?;
            transaction.commit().await.map_err(pg_error(&context))
        })
    }

    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        let reader = Arc::clone(&self.reader);
        self.run("reading the latest checkpoint", async move {
            reader
                .query_opt(
                    "SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1",
                    &[],
                )
                .await
                .map_err(pg_error("reading the latest checkpoint"))?
                .map(|row| Ok((to_u64(row.get(0), "reading a checkpoint")?, row.get(1))))
                .transpose()
        })
    }

    fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StoreError> {
        let Some(size) = to_i64(size) else {
            return Ok(None);
        };
        let reader = Arc::clone(&self.reader);
        self.run("reading a checkpoint", async move {
            Ok(reader
                .query_opt("SELECT note FROM log_checkpoints WHERE size = $1", &[&size])
                .await
                .map_err(pg_error(format!("reading the checkpoint at {size}")))?
                .map(|row| row.get(0)))
        })
    }

    fn put_cosignature(&self, size: u64, witness: &str, line: &str) -> Result<(), StoreError> {
        check_cosignature(size, witness, line)?;
        let (witness, line) = (witness.to_owned(), line.to_owned());
        let writer = Arc::clone(&self.writer);
        let fence = self.fence();
        let context = format!("recording a cosignature of size {size}");
        self.run(&context.clone(), async move {
            let Some(key) = to_i64(size) else {
                return Err(Refusal::CosignedCheckpointMissing { size }.into());
            };
            let mut client = writer.lock().await;
            let transaction = begin_write(&mut client, fence, &context).await?;
            let row = transaction
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM log_checkpoints WHERE size = $1), \
                            (SELECT count(*) FROM log_cosignatures WHERE size = $1), \
                            EXISTS (SELECT 1 FROM log_cosignatures WHERE size = $1 AND witness = $2)",
                    &[&key, &witness],
                )
                .await
                .map_err(pg_error(&context))?;
            let (recorded, lines, known): (bool, i64, bool) = (row.get(0), row.get(1), row.get(2));
            if !recorded {
                return Err(Refusal::CosignedCheckpointMissing { size }.into());
            }
            if !known && lines >= COSIGNATURES_PER_CHECKPOINT_MAX as i64 {
                return Err(Refusal::TooManyCosignatures { size }.into());
            }
            transaction
                .execute(
                    "INSERT INTO log_cosignatures (size, witness, line) VALUES ($1, $2, $3) \
                     ON CONFLICT (size, witness) DO UPDATE SET line = EXCLUDED.line",
                    &[&key, &witness, &line],
                )
                .await
                .map_err(pg_error(&context))?;
            transaction.commit().await.map_err(pg_error(&context))
        })
    }

    fn cosignatures(&self, size: u64) -> Result<Vec<(String, String)>, StoreError> {
        let Some(size) = to_i64(size) else {
            return Ok(Vec::new());
        };
        let reader = Arc::clone(&self.reader);
        self.run("reading cosignatures", async move {
            Ok(reader
                .query(
                    "SELECT witness, line FROM log_cosignatures WHERE size = $1 ORDER BY witness",
                    &[&size],
                )
                .await
                .map_err(pg_error("reading cosignatures"))?
                .into_iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect())
        })
    }

    fn latest_cosigned(&self, witnesses_min: usize) -> Result<Option<u64>, StoreError> {
        let reader = Arc::clone(&self.reader);
        // One row past the bound shows that the scan stopped short.
        let scan = i64::try_from(COSIGNED_SCAN_ROWS_MAX + 1).expect("a small bound");
        self.run("finding the latest cosigned checkpoint", async move {
            // The newest cosignature rows only, as the other stores scan.
            let rows = reader
                .query(
                    "SELECT size, count(*) FROM ( \
                         SELECT size FROM log_cosignatures ORDER BY size DESC LIMIT $1::bigint \
                     ) AS newest GROUP BY size ORDER BY size DESC",
                    &[&scan],
                )
                .await
                .map_err(pg_error("finding the latest cosigned checkpoint"))?;
            let mut seen = 0usize;
            for row in rows {
                let (size, lines): (i64, i64) = (row.get(0), row.get(1));
                let lines = usize::try_from(lines).unwrap_or(usize::MAX);
                seen = seen.saturating_add(lines);
                if seen > COSIGNED_SCAN_ROWS_MAX {
                    break;
                }
                if lines >= witnesses_min.max(1) {
                    return Ok(Some(to_u64(size, "reading cosignatures")?));
                }
            }
            Ok(None)
        })
    }
}

/// A new, empty database on the PostgreSQL server that `tests/run` starts
/// (its URL in `AIDLEDGER_TEST_PG`), for one test; returns its URL.
///
/// # Panics
///
/// `AIDLEDGER_TEST_PG` is unset or the server refuses: a test that needs
/// PostgreSQL fails without it, it never skips.
#[cfg(feature = "test-util")]
pub fn test_database() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin = std::env::var("AIDLEDGER_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "AIDLEDGER_TEST_PG is not set: run the tests with tests/run, which starts a throwaway PostgreSQL"
        )
    });
    let name = format!(
        "aidledger_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let (base, _) = admin
        .rsplit_once('/')
        .expect("AIDLEDGER_TEST_PG is postgres://user@host:port/db");
    let url = format!("{base}/{name}");
    // A thread of its own: callers may be inside a runtime.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&admin, NoTls)
                .await
                .unwrap_or_else(|e| panic!("connecting to {admin}: {e}"));
            tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("creating the database {name}: {e}"));
        });
    })
    .join()
    .expect("creating a test database");
    url
}
