//! Following the ledger: subscribe, check, apply, commit, and bind what was
//! applied to the ledger's signed checkpoints.
//!
//! Every entry is checked by [`ChainChecker`] against the head persisted
//! with the model, so the stream cannot skip, repeat or alter an entry
//! without a chain error. The Merkle frontier of the applied entries is kept
//! too: each checkpoint the follower sees is verified (signature against the
//! pinned ledger key, consistency with the previous checkpoint seen, and
//! its root against the applied entries, directly or by a consistency
//! proof), so every answer can cite a checkpoint that covers it.
//!
//! A transport failure is retried (resubscribing from the persisted head);
//! a verification failure or an event the model cannot take halts the
//! follower: the service keeps answering from the last good state and says
//! why it stopped.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use aidledger_client::{Client, ClientError, ConnectOptions};
use aidledger_ledger::decode::decode_event;
use aidledger_ledger::{ChainChecker, ChainError, ParsedEntry, Timestamp};
use aidledger_store::{AppendBatch, LogStore, NewEntry};
use aidledger_tlog::{Hash, TreeBuilder, verify_consistency};
use bytes::Bytes;
use tokio::sync::watch;
use tokio_stream::StreamExt;

use crate::model::{Inconsistent, Model, ParsedEvent, Position, VerifiedCheckpoint};
use crate::store::{ProjectionStore, StoreError};

/// How the follower reaches the ledger and paces its work.
#[derive(Clone, Debug)]
pub struct FollowerConfig {
    /// `http://host:port` or `https://host:port`; several, separated by
    /// commas, for a writer and its standbys.
    pub ledger_url: String,
    /// Origin, pinned ledger key, TLS.
    pub connect: ConnectOptions,
    /// How often changes are committed to the projection store (while
    /// catching up, commits may fall up to `COMMIT_SPACING_MAX` apart).
    pub commit_interval: Duration,
    /// How often the ledger's latest checkpoint is fetched and verified.
    pub checkpoint_interval: Duration,
    /// Most entries applied under one hold of the model's lock.
    pub batch_entries_max: usize,
}

impl FollowerConfig {
    /// Defaults for a ledger at `ledger_url`.
    pub fn new(ledger_url: impl Into<String>, connect: ConnectOptions) -> Self {
        FollowerConfig {
            ledger_url: ledger_url.into(),
            connect,
            commit_interval: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(1),
            batch_entries_max: 4096,
        }
    }
}

/// Why following stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The ledger's answers do not check out: chain, leaf hash, checkpoint
    /// signature or consistency.
    #[error("verification failed: {0}")]
    Verification(String),
    /// An entry's event cannot be applied to the model.
    #[error("projection failed: {0}")]
    Inconsistent(#[from] Inconsistent),
    /// The projection store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mirror of the log failed.
    #[error("the log mirror: {0}")]
    Mirror(#[from] aidledger_store::StoreError),
    /// The options are unusable.
    #[error("configuration: {0}")]
    Config(String),
}

/// A failure that a reconnect may cure.
#[derive(Debug)]
enum Attempt {
    Transient(String),
    Fatal(FollowError),
}

impl From<FollowError> for Attempt {
    fn from(error: FollowError) -> Self {
        Attempt::Fatal(error)
    }
}

impl From<ClientError> for Attempt {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Verification { what } => Attempt::Fatal(FollowError::Verification(what)),
            ClientError::Config(detail) => Attempt::Fatal(FollowError::Config(detail)),
            other => Attempt::Transient(other.to_string()),
        }
    }
}

/// What the service reads: the model, and how the follower is doing.
#[derive(Debug)]
pub struct Shared {
    /// The read models. Held for writing by the apply thread alone: while
    /// a batch is applied, a checkpoint cited, a commit settled.
    model: RwLock<Model>,
    /// Bumped by every write to the model: equal revisions mean an
    /// unchanged model, so an answer computed at one still holds.
    revision: AtomicU64,
    status: Mutex<FollowStatus>,
    applied: watch::Sender<u64>,
}

/// The model held for writing; releasing it bumps the revision.
#[derive(Debug)]
pub struct ModelWrite<'a> {
    guard: RwLockWriteGuard<'a, Model>,
    revision: &'a AtomicU64,
}

impl std::ops::Deref for ModelWrite<'_> {
    type Target = Model;
    fn deref(&self) -> &Model {
        &self.guard
    }
}

impl std::ops::DerefMut for ModelWrite<'_> {
    fn deref_mut(&mut self) -> &mut Model {
        &mut self.guard
    }
}

impl Drop for ModelWrite<'_> {
    fn drop(&mut self) {
        // Before the lock is released: a reader that sees the new revision
        // then waits for the lock and reads the changed model, so an answer
        // is never labelled with a revision newer than what it was computed
        // from.
        self.revision.fetch_add(1, Ordering::Release);
    }
}

/// The follower's view of the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowStatus {
    /// Size of the latest checkpoint the follower saw.
    pub ledger_size: u64,
    /// Why following stopped, when it did.
    pub halted: Option<String>,
}

impl Shared {
    /// Wraps a loaded model.
    pub fn new(model: Model) -> Arc<Shared> {
        let (applied, _) = watch::channel(model.position.size);
        Arc::new(Shared {
            model: RwLock::new(model),
            revision: AtomicU64::new(0),
            status: Mutex::new(FollowStatus::default()),
            applied,
        })
    }

    /// The model, for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, Model> {
        self.model.read().expect("model lock")
    }

    /// The model, for writing.
    pub fn write(&self) -> ModelWrite<'_> {
        ModelWrite {
            guard: self.model.write().expect("model lock"),
            revision: &self.revision,
        }
    }

    /// The model, for a write no reader can see (taking a commit resets
    /// change tracking only): the revision stays.
    pub(crate) fn write_unversioned(&self) -> RwLockWriteGuard<'_, Model> {
        self.model.write().expect("model lock")
    }

    /// How many times the model has been written: read it before the model
    /// to label what is computed from it.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// The follower's status.
    pub fn status(&self) -> FollowStatus {
        self.status.lock().expect("status lock").clone()
    }

    /// Entries applied so far, updated after every batch: wait on it to see
    /// a given entry reflected in the model.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    fn set_status(&self, change: impl FnOnce(&mut FollowStatus)) {
        change(&mut self.status.lock().expect("status lock"));
    }
}

/// Follows one ledger into one projection store.
///
/// The async task receives entries, checks the chain and decodes the
/// events (on every core); a dedicated apply thread folds them into the
/// model, keeps the Merkle frontier and commits, and with a mirror a writer
/// thread appends each batch to it just ahead of the fold. The channel to
/// the apply thread is bounded, so a slow fold slows the subscription, not
/// memory.
#[derive(Debug)]
pub struct Follower {
    store: Arc<ProjectionStore>,
    shared: Arc<Shared>,
    config: FollowerConfig,
    /// A verified copy of the log (entries, stored hashes, checkpoints), for
    /// a replica that serves tiles and proofs on its own.
    mirror: Option<Arc<dyn LogStore>>,
    /// The last checkpoint seen, verified or pending: the next one must be
    /// consistent with it.
    last_seen: Option<VerifiedCheckpoint>,
}

/// Work for the apply thread.
enum Work {
    Entries(Vec<Decoded>),
    /// A checkpoint the applied entries had not reached when it was seen,
    /// to verify when they reach it.
    Pending(VerifiedCheckpoint),
    /// A checkpoint the follower verified against the applied entries, to
    /// record in the mirror (through the apply thread, which orders every
    /// write to the mirror).
    Record(VerifiedCheckpoint),
    /// Time passed: commit if the interval is up, even with nothing new.
    Tick,
    /// Following failed a verification: stop without committing.
    Abort,
}

impl Follower {
    /// A follower writing to `store` the model held by `shared` (loaded from
    /// that store).
    pub fn new(store: ProjectionStore, shared: Arc<Shared>, config: FollowerConfig) -> Self {
        let last_seen = shared.read().position.checkpoint.clone();
        Follower {
            store: Arc::new(store),
            shared,
            config,
            mirror: None,
            last_seen,
        }
    }

    /// Also keeps a copy of the log in `mirror`: every entry, with its
    /// stored hashes, before the model applies it, and every checkpoint the
    /// follower verified, once the copy holds what it covers. The copy's
    /// appends are unsynced and it is synced before each projection commit,
    /// so a crash leaves it ahead of the committed model, never behind: the
    /// entries it already holds are not appended again.
    ///
    /// # Errors
    ///
    /// The mirror cannot be read, or it is behind the projections (it was
    /// replaced or truncated: rebuild both).
    pub fn with_mirror(mut self, mirror: Arc<dyn LogStore>) -> Result<Self, FollowError> {
        let applied = self.shared.read().position.size;
        let mirrored = mirror.size()?;
        if mirrored < applied {
            return Err(FollowError::Config(format!(
                "the log mirror holds {mirrored} entries but the projections {applied}: rebuild both"
            )));
        }
        self.mirror = Some(mirror);
        Ok(self)
    }

    /// Follows until `shutdown` completes (then commits and returns `Ok`) or
    /// a verification or projection failure (then returns it, after
    /// recording it in the status). Transport failures are retried with
    /// backoff.
    ///
    /// # Errors
    ///
    /// Why following stopped.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), FollowError> {
        metrics::gauge!("aidledger_follower_halted").set(0.0);
        let (work, queue) = tokio::sync::mpsc::channel::<Work>(8);
        let applier = {
            let shared = Arc::clone(&self.shared);
            let store = Arc::clone(&self.store);
            let mirror = self.mirror.clone();
            let commit_interval = self.config.commit_interval;
            std::thread::Builder::new()
                .name("projector-apply".into())
                .spawn(move || apply_thread(&shared, &store, mirror, queue, commit_interval))
                .map_err(|e| FollowError::Config(format!("starting the apply thread: {e}")))?
        };
        let following = self.follow(shutdown, &work).await;
        if following.is_err() {
            // Entries queued after a failed check must not become durable.
            let _ = work.send(Work::Abort).await;
        }
        // Closing the queue lets the apply thread finish what is queued and
        // make its last commit.
        drop(work);
        let applied = tokio::task::spawn_blocking(move || applier.join())
            .await
            .expect("joining the apply thread")
            .unwrap_or_else(|_| Err(FollowError::Config("the apply thread panicked".into())));
        // When the apply thread failed, the follower stopped because of it:
        // its error is the one to report.
        let outcome = applied.and(following);
        metrics::gauge!("aidledger_follower_halted").set(if outcome.is_err() { 1.0 } else { 0.0 });
        if let Err(error) = &outcome {
            tracing::error!(%error, "projection halted");
            self.shared
                .set_status(|status| status.halted = Some(error.to_string()));
        }
        outcome
    }

    async fn follow(
        &mut self,
        shutdown: impl Future<Output = ()>,
        work: &tokio::sync::mpsc::Sender<Work>,
    ) -> Result<(), FollowError> {
        tokio::pin!(shutdown);
        // The chain is checked from the persisted head once; reconnects
        // resume from the last entry decoded (queued entries are applied).
        let mut checker = {
            let model = self.shared.read();
            let position = &model.position;
            if position.size == 0 {
                ChainChecker::new()
            } else {
                ChainChecker::resume(position.size, position.head, position.recorded_at)
            }
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            let before = checker.next_seq();
            let outcome = tokio::select! {
                () = &mut shutdown => return Ok(()),
                outcome = self.follow_once(&mut checker, work) => outcome,
            };
            if checker.next_seq() > before {
                // It was following well before this failure.
                backoff = Duration::from_millis(100);
            }
            match outcome {
                Ok(()) => return Ok(()),
                Err(Attempt::Transient(detail)) => {
                    tracing::warn!(%detail, ?backoff, "following the ledger failed; retrying");
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = work.closed() => return Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(Attempt::Fatal(error)) => return Err(error),
            }
        }
    }

    async fn follow_once(
        &mut self,
        checker: &mut ChainChecker,
        work: &tokio::sync::mpsc::Sender<Work>,
    ) -> Result<(), Attempt> {
        // A writer and its standbys all serve the log: follow whichever
        // answers, in the order given.
        let endpoints: Vec<&str> = self
            .config
            .ledger_url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect();
        let client = Client::connect_any(&endpoints, self.config.connect.clone()).await?;
        let stream = client.subscribe_raw(checker.next_seq()).await?;
        let stream = stream.chunks_timeout(self.config.batch_entries_max, Duration::from_millis(1));
        tokio::pin!(stream);
        let mut checkpoint_tick = tokio::time::interval(self.config.checkpoint_interval);
        let mut commit_tick = tokio::time::interval(self.config.commit_interval);
        loop {
            tokio::select! {
                batch = stream.next() => {
                    let Some(batch) = batch else {
                        return Err(Attempt::Transient("the ledger ended the subscription".into()));
                    };
                    let mut served = Vec::with_capacity(batch.len());
                    let mut failure = None;
                    for item in batch {
                        match item {
                            Ok(entry) => served.push(entry),
                            Err(status) => {
                                failure = Some(Attempt::Transient(format!(
                                    "subscription: {}: {}",
                                    status.code(),
                                    status.message()
                                )));
                                break;
                            }
                        }
                    }
                    let decoded = decode_batch(checker, served).await?;
                    if !decoded.is_empty() {
                        send(work, Work::Entries(decoded)).await?;
                    }
                    if let Some(failure) = failure {
                        return Err(failure);
                    }
                }
                _ = checkpoint_tick.tick() => self.check_checkpoint(&client, work).await?,
                _ = commit_tick.tick() => {
                    // A full queue has work that will commit anyway.
                    let _ = work.try_send(Work::Tick);
                }
                () = work.closed() => {
                    return Err(Attempt::Fatal(FollowError::Config("the apply thread stopped".into())));
                }
            }
        }
    }

    /// Fetches the latest checkpoint (its signature is verified by the
    /// client against the pinned key) and proves it consistent with the last
    /// one seen and with the applied entries.
    async fn check_checkpoint(
        &mut self,
        client: &Client,
        work: &tokio::sync::mpsc::Sender<Work>,
    ) -> Result<(), Attempt> {
        let signed = client.checkpoint().await?;
        if !signed.signature_verified {
            return Err(FollowError::Config(
                "no ledger key is pinned: checkpoints cannot be verified".into(),
            )
            .into());
        }
        let seen = VerifiedCheckpoint {
            note: signed.note,
            size: signed.checkpoint.size,
            root: signed.checkpoint.root.0,
        };
        if seen.size == 0 {
            return Ok(());
        }
        let cited = self
            .shared
            .read()
            .position
            .checkpoint
            .as_ref()
            .map_or(0, |c| c.size);
        if let Some(last) = &self.last_seen {
            if seen.size < last.size {
                return Err(FollowError::Verification(format!(
                    "the ledger's checkpoint went back from size {} to {}",
                    last.size, seen.size
                ))
                .into());
            }
            if seen.size == last.size && seen.root != last.root {
                return Err(FollowError::Verification(format!(
                    "two signed checkpoints of size {} have different roots: the log forked",
                    seen.size
                ))
                .into());
            }
            if seen.size == last.size && cited >= seen.size {
                if cited == seen.size && seen.note != last.note {
                    // The same checkpoint with more witness cosignatures:
                    // cite (and mirror) the fuller note.
                    self.cite(work, seen.clone()).await?;
                    self.last_seen = Some(seen);
                }
                return Ok(());
            }
        }
        if let Some(last) = self.last_seen.as_ref().filter(|last| last.size < seen.size) {
            let proof = client.consistency_proof(last.size, seen.size).await?;
            let proof: Vec<Hash> = proof.into_iter().map(Hash).collect();
            verify_consistency(
                last.size,
                seen.size,
                &Hash(last.root),
                &Hash(seen.root),
                &proof,
            )
            .map_err(|e| {
                FollowError::Verification(format!(
                    "checkpoint {} is not consistent with checkpoint {}: {e}",
                    seen.size, last.size
                ))
            })?;
        }
        self.last_seen = Some(seen.clone());
        self.shared
            .set_status(|status| status.ledger_size = seen.size);
        let applied = self.shared.read().position.size;
        metrics::gauge!("aidledger_follower_ledger_entries").set(seen.size as f64);
        metrics::gauge!("aidledger_follower_entries_behind")
            .set(seen.size.saturating_sub(applied) as f64);
        // The applied entries and their root, read together.
        let (applied, root) = {
            let model = self.shared.read();
            let frontier = model.position.frontier.iter().map(|h| Hash(*h)).collect();
            let tree = TreeBuilder::from_frontier(model.position.size, frontier).map_err(|e| {
                FollowError::Verification(format!("the stored Merkle frontier is unusable: {e}"))
            })?;
            (tree.size(), tree.root())
        };
        if seen.size > applied {
            // The apply thread verifies it when the entries reach it.
            return send(work, Work::Pending(seen)).await;
        }
        if seen.size < applied {
            let proof = client.consistency_proof(seen.size, applied).await?;
            let proof: Vec<Hash> = proof.into_iter().map(Hash).collect();
            verify_consistency(seen.size, applied, &Hash(seen.root), &root, &proof).map_err(
                |e| {
                    FollowError::Verification(format!(
                        "checkpoint {} is not a prefix of the {applied} entries applied: {e}",
                        seen.size
                    ))
                },
            )?;
        } else if root.0 != seen.root {
            return Err(FollowError::Verification(format!(
                "the {applied} entries applied hash to a root other than the signed checkpoint of that size"
            ))
            .into());
        }
        self.cite(work, seen).await
    }

    /// Cites a checkpoint proven against the applied entries, by the apply
    /// thread (for a replica, once its mirror holds the note). Not here:
    /// a write lock asked for while the apply thread encodes a commit under
    /// the read lock would queue every reader behind it for the rest of
    /// that encoding (seconds at 10M).
    async fn cite(
        &self,
        work: &tokio::sync::mpsc::Sender<Work>,
        checkpoint: VerifiedCheckpoint,
    ) -> Result<(), Attempt> {
        send(work, Work::Record(checkpoint)).await
    }
}

/// Records a verified checkpoint in the mirror unless it holds a later one:
/// checkpoints reach it from the apply thread and from the follower's
/// checks, in either order.
///
/// Unsynced, like the mirror's appends: the note is made durable by the
/// sync before the next commit, which is all a restart relies on (the
/// commit cites no checkpoint the durable mirror lacks; anything newer is
/// fetched again). Synced here, the model waited for an fsync per
/// checkpoint before showing the entries it covers, and an fsync queued
/// behind a large write on the same disk (the replica's own commit after
/// a 10M catch-up) takes up to seconds: 375 ms p99 beside a 6 GB write on
/// this machine, against 3.6 ms alone.
fn put_checkpoint_forward(mirror: &dyn LogStore, size: u64, note: &str) -> Result<(), FollowError> {
    let latest = mirror.latest_checkpoint()?.map_or(0, |(size, _)| size);
    if size >= latest {
        mirror.put_checkpoint_unsynced(size, note)?;
    }
    Ok(())
}

/// Queues work for the apply thread; a closed queue means it stopped on an
/// error, which the caller collects when it joins it.
async fn send(work: &tokio::sync::mpsc::Sender<Work>, item: Work) -> Result<(), Attempt> {
    work.send(item)
        .await
        .map_err(|_| Attempt::Fatal(FollowError::Config("the apply thread stopped".into())))
}

/// The apply thread: folds queued entries into the model, verifies pending
/// checkpoints as the entries reach them, and commits every
/// `commit_interval`, or further apart while catching up (the store write
/// runs on its own thread, one at a time, in order). On a closed queue it
/// commits and returns.
///
/// With a mirror, each batch goes to the mirror's writer thread first and
/// into the model once the mirror holds it; meanwhile this thread folds the
/// batch before it. So at most one batch the mirror is taking waits for
/// the model, and the model takes it whenever the queue runs dry, before
/// anything else touches the mirror or the model's position, and before
/// each commit. (After a crash the mirror may also hold entries the model
/// has yet to replay; those are not appended again.)
fn apply_thread(
    shared: &Shared,
    store: &Arc<ProjectionStore>,
    mirror: Option<Arc<dyn LogStore>>,
    mut queue: tokio::sync::mpsc::Receiver<Work>,
    commit_interval: Duration,
) -> Result<(), FollowError> {
    let mut mirror = match mirror {
        Some(store) => Some(Mirror {
            size: store.size()?,
            hash_count: store.hash_count()?,
            unsynced: false,
            writer: MirrorWriter::start(Arc::clone(&store), MIRROR_SYNC_BYTES)?,
            lagging: None,
            store,
        }),
        None => None,
    };
    let mut tree = {
        let model = shared.read();
        let frontier = model.position.frontier.iter().map(|h| Hash(*h)).collect();
        TreeBuilder::from_frontier(model.position.size, frontier).map_err(|e| {
            FollowError::Verification(format!("the stored Merkle frontier is unusable: {e}"))
        })?
    };
    let mut pending: Option<VerifiedCheckpoint> = None;
    let mut committed = shared.read().position.clone();
    let mut writing: Option<std::thread::JoinHandle<Result<(), StoreError>>> = None;
    let mut last_commit = std::time::Instant::now();
    let mut spacing = CommitSpacing::new(committed.size);
    let result = loop {
        let item = match queue.try_recv() {
            Ok(item) => Some(item),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                // Nothing else waiting: show readers all that arrived.
                if let Err(error) = catch_up(shared, mirror.as_mut()) {
                    break Err(error);
                }
                queue.blocking_recv()
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => None,
        };
        let Some(item) = item else {
            break catch_up(shared, mirror.as_mut());
        };
        if let Work::Abort = item {
            // Following failed: that failure is the one to report, not one
            // of the mirror's that waiting for its writer might return.
            let _ = catch_up(shared, mirror.as_mut());
            finish(&mut writing)?;
            return Ok(());
        }
        if !matches!(item, Work::Entries(_))
            && let Err(error) = catch_up(shared, mirror.as_mut())
        {
            break Err(error);
        }
        match item {
            Work::Entries(entries) => {
                let prepared = prepare_batch(&mut tree, &mut pending, mirror.as_mut(), entries);
                let applied = prepared.and_then(|(prepared, copy)| match mirror.as_mut() {
                    Some(mirror) => mirror.write_then_apply(shared, prepared, copy),
                    None => apply_prepared(shared, prepared),
                });
                if let Err(error) = applied {
                    break Err(error);
                }
            }
            Work::Pending(checkpoint) if checkpoint.size > tree.size() => {
                pending = Some(checkpoint);
            }
            Work::Pending(checkpoint) if checkpoint.size == tree.size() => {
                if let Err(error) = cite_if_root_matches(shared, &tree, mirror.as_mut(), checkpoint)
                {
                    break Err(error);
                }
            }
            // Passed already: the follower proves it against the applied
            // entries at its next look at the ledger's checkpoint.
            Work::Pending(_) => {}
            Work::Record(checkpoint) => {
                if let Some(mirror) = mirror.as_mut()
                    && let Err(error) = mirror.record(&checkpoint)
                {
                    break Err(error);
                }
                // Cited once the mirror holds its note: the feed serves
                // that note (the log page, proofs) beside the model's
                // answers, which are cached per model revision.
                shared.write().position.cite(checkpoint);
            }
            Work::Tick | Work::Abort => {}
        }
        let due = spacing.due(
            last_commit.elapsed(),
            commit_interval,
            *shared.applied.borrow(),
            shared.status().ledger_size,
            queue.is_empty(),
        );
        // The fold never waits for the last commit's write: a commit due
        // meanwhile is taken at the first look after the write ends.
        let writer_busy = writing.as_ref().is_some_and(|w| !w.is_finished());
        if due && !writer_busy {
            if let Err(error) = catch_up(shared, mirror.as_mut()) {
                break Err(error);
            }
            if let Err(error) = commit(shared, store, mirror.as_mut(), &mut writing, &mut committed)
            {
                break Err(error);
            }
            spacing.committed(committed.size);
            last_commit = std::time::Instant::now();
        }
    };
    match result {
        Ok(()) => commit(shared, store, mirror.as_mut(), &mut writing, &mut committed)
            .and_then(|()| finish(&mut writing)),
        // After a failure the model may hold a partly applied or unverified
        // entry: keep the last commit as the durable state, and replay from
        // there on restart.
        Err(error) => {
            finish(&mut writing)?;
            Err(error)
        }
    }
}

/// When the apply thread takes a commit. Every `commit_interval` once
/// caught up: nothing is gained by waiting, and what catch-up left is
/// committed while the log is quiet, not among the next appends (at 10M a
/// replica's commit of the last 400k entries of catch-up fell 27 s later,
/// among appends, and held them up to a second). Caught up means with the
/// ledger's last checkpoint: a ledger whose checkpoints lag far behind its
/// entries can make a catch-up commit every second, which costs bytes
/// written, never correctness.
///
/// While catching up, by entries: a commit waits until as many entries
/// were folded since the last one as between the start of the catch-up
/// and it, so a catch-up of N entries takes O(log N) commits whatever the
/// host's speed, at most [`COMMIT_SPACING_MAX`] apart. Spacing them by the
/// last one's cost (nine times it) tied their number to the host: a cheaper
/// encoding brought them closer, and bytes written per event rose by a
/// third. None is taken when fewer entries remain to the checkpoint than
/// the gap since the last: the commit on catching up comes sooner than the
/// gap took (so at most twice [`COMMIT_SPACING_MAX`] after the last), and
/// would rewrite what it wrote (at 1M, a commit at 914k cost 0.33 s of the
/// apply thread and 0.7 s of writing, for nothing; at 10M, the bound forced
/// a replica's commit of 6.5M rows at 9.92M, 84k entries before the end).
#[derive(Debug)]
struct CommitSpacing {
    /// The log size where the current catch-up began: where the follower
    /// started, or was last caught up.
    catch_up_from: u64,
    /// The log size of the last commit.
    committed_at: u64,
}

impl CommitSpacing {
    fn new(committed_at: u64) -> Self {
        CommitSpacing {
            catch_up_from: committed_at,
            committed_at,
        }
    }

    /// Whether to commit now, `since` the last commit, with `applied`
    /// entries folded, `ledger_size` the size of the ledger's last
    /// checkpoint (0: none seen yet) and `queue_empty` whether entries
    /// wait to be folded.
    fn due(
        &mut self,
        since: Duration,
        commit_interval: Duration,
        applied: u64,
        ledger_size: u64,
        queue_empty: bool,
    ) -> bool {
        if since < commit_interval {
            return false;
        }
        let caught_up = queue_empty && ledger_size > 0 && applied >= ledger_size;
        if caught_up {
            // A later fall behind is a new catch-up, spaced from here.
            self.catch_up_from = applied;
            return true;
        }
        let gap = applied.saturating_sub(self.committed_at);
        // Past the ledger's last checkpoint (it lags its entries), the end
        // is not known: the gaps just double.
        let near_the_end = ledger_size > applied && ledger_size - applied < gap;
        if near_the_end {
            return false;
        }
        let before = self.committed_at.saturating_sub(self.catch_up_from);
        since >= COMMIT_SPACING_MAX || gap >= before
    }

    fn committed(&mut self, size: u64) {
        self.committed_at = size;
    }
}

/// The furthest apart the apply thread spaces commits of its own accord
/// (a longer `commit_interval` still applies): beyond what a 10M-entry
/// catch-up reaches, so that bigger logs neither hold the model's lock for
/// a minute to take a commit nor lose more than that to a crash (twice
/// that when the end of a catch-up is near: see [`CommitSpacing`]). Not
/// tighter: a commit rewrites every page holding a changed row, and the
/// rows of a bigger commit share more pages, so fewer, bigger commits write
/// less per event (an 8 s bound wrote 312 bytes per event of a 10M
/// rebuild, against 189).
const COMMIT_SPACING_MAX: Duration = Duration::from_secs(60);

/// The log mirror as the apply thread appends to it.
struct Mirror {
    store: Arc<dyn LogStore>,
    /// Entries it holds or is being given: those below are not appended
    /// again.
    size: u64,
    hash_count: u64,
    /// Whether batches or checkpoints were recorded since the last commit's
    /// sync (the writer may have synced them since, of its own accord).
    unsynced: bool,
    writer: MirrorWriter,
    /// The batch the writer is appending, for the model once it is done.
    lagging: Option<Prepared>,
}

impl Mirror {
    /// Records `checkpoint` from this thread: the writer must be idle (see
    /// [`catch_up`]).
    fn record(&mut self, checkpoint: &VerifiedCheckpoint) -> Result<(), FollowError> {
        put_checkpoint_forward(self.store.as_ref(), checkpoint.size, &checkpoint.note)?;
        self.unsynced = true;
        Ok(())
    }

    /// Hands `prepared` to the writer, then folds the batch before it,
    /// which the writer holds once its job is done.
    fn write_then_apply(
        &mut self,
        shared: &Shared,
        prepared: Prepared,
        copy: AppendBatch,
    ) -> Result<(), FollowError> {
        let job = MirrorJob {
            copy,
            checkpoint: prepared
                .cite
                .as_ref()
                .map(|(_, checkpoint)| (checkpoint.size, checkpoint.note.clone())),
        };
        self.unsynced |= job.checkpoint.is_some();
        self.writer.send(job)?;
        match self.lagging.replace(prepared) {
            Some(previous) => {
                self.writer.wait_one()?;
                apply_prepared(shared, previous)
            }
            None => Ok(()),
        }
    }
}

/// Folds the batch the mirror's writer is appending, once it is done: after
/// this the model holds every entry given to the mirror since start-up, and
/// the mirror's store is idle, for this thread to write to directly.
fn catch_up(shared: &Shared, mirror: Option<&mut Mirror>) -> Result<(), FollowError> {
    let Some(mirror) = mirror else {
        return Ok(());
    };
    if let Some(lagging) = mirror.lagging.take() {
        mirror.writer.wait_one()?;
        apply_prepared(shared, lagging)?;
    }
    Ok(())
}

/// What the mirror's writer thread is given: a batch of entries, then the
/// checkpoint that batch completes, if any.
struct MirrorJob {
    copy: AppendBatch,
    checkpoint: Option<(u64, String)>,
}

/// The mirror's one writer while batches stream: a thread taking jobs in
/// order and answering each, so appending one batch overlaps folding the
/// one before it.
///
/// It also syncs the mirror every [`MIRROR_SYNC_BYTES`] appended, so that
/// what a commit's sync must flush stays small however far apart commits
/// fall: while catching up, their gaps double, and a sync that flushed
/// everything since the last one grew with the gap, until one flushed
/// gigabytes on the apply thread and held up the ledger's own fsyncs for
/// seconds after the replica caught up.
struct MirrorWriter {
    jobs: Option<std::sync::mpsc::SyncSender<MirrorJob>>,
    done: std::sync::mpsc::Receiver<Result<(), FollowError>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Syncs the writer made of its own accord.
    syncs: Arc<AtomicU64>,
}

/// Bytes of entries (hashes and the store's own pages not counted) the
/// mirror's writer appends between its own syncs: about a second of a
/// catch-up, a third of a second of this machine's disk.
const MIRROR_SYNC_BYTES: usize = 64 << 20;

impl MirrorWriter {
    fn start(store: Arc<dyn LogStore>, sync_bytes: usize) -> Result<MirrorWriter, FollowError> {
        // Two jobs at most: the one the model waits for and the next.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<MirrorJob>(2);
        let (answer, done) = std::sync::mpsc::sync_channel(2);
        let syncs = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&syncs);
        let thread = std::thread::Builder::new()
            .name("projector-mirror".into())
            .spawn(move || {
                let mut unsynced_bytes = 0usize;
                for job in queue {
                    let mut write = || {
                        if !job.copy.entries.is_empty() {
                            store.append_unsynced(&job.copy)?;
                            unsynced_bytes += job
                                .copy
                                .entries
                                .iter()
                                .map(|entry| entry.bytes.len())
                                .sum::<usize>();
                        }
                        if let Some((size, note)) = &job.checkpoint {
                            put_checkpoint_forward(store.as_ref(), *size, note)?;
                        }
                        if unsynced_bytes >= sync_bytes {
                            let started = std::time::Instant::now();
                            store.sync()?;
                            unsynced_bytes = 0;
                            counted.fetch_add(1, Ordering::Relaxed);
                            metrics::counter!("aidledger_follower_mirror_syncs_total").increment(1);
                            tracing::debug!(
                                seconds = started.elapsed().as_secs_f64(),
                                "the mirror's writer synced it"
                            );
                        }
                        Ok(())
                    };
                    let written = write();
                    let failed = written.is_err();
                    // After a failure the store's state is the caller's to
                    // find out (LogStore: stop appending after an I/O
                    // error), so nothing queued behind it is written.
                    if answer.send(written).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| FollowError::Config(format!("starting the mirror's writer: {e}")))?;
        Ok(MirrorWriter {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            syncs,
        })
    }

    fn send(&self, job: MirrorJob) -> Result<(), FollowError> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| FollowError::Config("the mirror's writer stopped".into()))
    }

    /// The outcome of the oldest job not yet answered.
    fn wait_one(&self) -> Result<(), FollowError> {
        let started = std::time::Instant::now();
        let answer = self
            .done
            .recv()
            .map_err(|_| FollowError::Config("the mirror's writer stopped".into()))?;
        // The model shows nothing newer meanwhile: a long wait is what
        // readers see as entries late to appear.
        let waited = started.elapsed();
        if waited >= Duration::from_millis(100) {
            tracing::debug!(
                seconds = waited.as_secs_f64(),
                "the model waited for the mirror's writer"
            );
        }
        answer
    }
}

impl Drop for MirrorWriter {
    fn drop(&mut self) {
        // Closing the jobs ends the thread once it has answered the last.
        drop(self.jobs.take());
        while self.done.recv().is_ok() {}
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        tracing::debug!(
            syncs = self.syncs.load(Ordering::Relaxed),
            "the mirror's writer stopped"
        );
    }
}

/// A batch checked against the Merkle tree and the pending checkpoint,
/// with its copy for the mirror, not yet in the model.
struct Prepared {
    entries: Vec<Decoded>,
    /// The checkpoint the batch completes, and the entry that completes it.
    cite: Option<(u64, VerifiedCheckpoint)>,
    /// The tree's frontier after the batch.
    frontier: Vec<[u8; 32]>,
}

/// Pushes the batch's leaves and checks the checkpoint they complete: an
/// entry a checkpoint disowns reaches neither the mirror nor the model.
/// Returns the batch for the model and what of it the mirror lacks.
fn prepare_batch(
    tree: &mut TreeBuilder,
    pending: &mut Option<VerifiedCheckpoint>,
    mut mirror: Option<&mut Mirror>,
    mut entries: Vec<Decoded>,
) -> Result<(Prepared, AppendBatch), FollowError> {
    let mut cite: Option<(u64, VerifiedCheckpoint)> = None;
    let mut copy = AppendBatch {
        first_seq: mirror.as_ref().map_or(0, |m| m.size),
        entries: Vec::new(),
        first_hash_index: mirror.as_ref().map_or(0, |m| m.hash_count),
        hashes: Vec::new(),
    };
    for entry in &mut entries {
        let stored = tree.push(Hash(entry.leaf_hash));
        if let Some(checkpoint) = pending.as_ref()
            && checkpoint.size == tree.size()
        {
            if tree.root().0 != checkpoint.root {
                return Err(root_mismatch(checkpoint.size));
            }
            cite = pending.take().map(|c| (entry.seq, c));
        }
        // The bytes were kept for the mirror only: released here, as the
        // slice of the buffer they arrived in, whatever the mirror does.
        let bytes = std::mem::take(&mut entry.bytes);
        if let Some(mirror) = &mirror
            && entry.seq >= mirror.size
        {
            // The mirror keeps its own copy, not a slice that would hold
            // the whole receive buffer.
            copy.entries.push(NewEntry {
                bytes: bytes.to_vec(),
                event_id: entry.event.event().event_id.clone(),
            });
            copy.hashes.extend(stored.iter().map(|h| h.0));
        }
    }
    if let Some(mirror) = mirror.as_mut()
        && !copy.entries.is_empty()
    {
        mirror.size += copy.entries.len() as u64;
        mirror.hash_count += copy.hashes.len() as u64;
        mirror.unsynced = true;
    }
    let prepared = Prepared {
        entries,
        cite,
        frontier: tree.frontier().iter().map(|h| h.0).collect(),
    };
    Ok((prepared, copy))
}

/// Folds a prepared batch into the model, citing the checkpoint it
/// completes at its entry, and tells readers and metrics.
fn apply_prepared(shared: &Shared, prepared: Prepared) -> Result<(), FollowError> {
    let Prepared {
        entries,
        mut cite,
        frontier,
    } = prepared;
    let mut model = shared.write();
    for entry in entries {
        if let Some((seq, _)) = &cite
            && *seq == entry.seq
            && let Some((_, checkpoint)) = cite.take()
        {
            model.position.cite(checkpoint);
        }
        model.apply_parsed(entry.seq, entry.recorded_at, entry.event)?;
        model.position.head = entry.leaf_hash;
    }
    model.position.frontier = frontier;
    let size = model.position.size;
    let recorded_at = model.position.recorded_at;
    drop(model);
    shared.applied.send_replace(size);
    metrics::gauge!("aidledger_follower_applied_entries").set(size as f64);
    metrics::gauge!("aidledger_follower_head_recorded_timestamp_seconds")
        .set(recorded_at.seconds as f64 + f64::from(recorded_at.nanos) / 1e9);
    let ledger_size = shared.status().ledger_size;
    metrics::gauge!("aidledger_follower_entries_behind")
        .set(ledger_size.saturating_sub(size) as f64);
    Ok(())
}

fn root_mismatch(size: u64) -> FollowError {
    FollowError::Verification(format!(
        "the entries up to {size} hash to a root other than the signed checkpoint of that size"
    ))
}

/// Cites `checkpoint` if the applied entries, exactly as many, hash to its
/// root.
fn cite_if_root_matches(
    shared: &Shared,
    tree: &TreeBuilder,
    mirror: Option<&mut Mirror>,
    checkpoint: VerifiedCheckpoint,
) -> Result<(), FollowError> {
    if tree.root().0 != checkpoint.root {
        return Err(root_mismatch(checkpoint.size));
    }
    if let Some(mirror) = mirror {
        mirror.record(&checkpoint)?;
    }
    shared.write().position.cite(checkpoint);
    Ok(())
}

/// Takes the changes under the lock and hands them to a writer thread,
/// after the previous write has finished.
fn commit(
    shared: &Shared,
    store: &Arc<ProjectionStore>,
    mirror: Option<&mut Mirror>,
    writing: &mut Option<std::thread::JoinHandle<Result<(), StoreError>>>,
    committed: &mut Position,
) -> Result<(), FollowError> {
    finish(writing)?;
    // The mirror takes each batch before the model does, unsynced: made
    // durable here, it holds at least every entry the commit covers, so a
    // crash never leaves the projections ahead of their copy of the log.
    if let Some(mirror) = mirror
        && mirror.unsynced
    {
        let started = std::time::Instant::now();
        mirror.store.sync()?;
        mirror.unsynced = false;
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            "the mirror synced for a commit"
        );
    }
    // Encoding the changes, the slow part, reads the model beside its
    // readers: held for writing, it kept every page waiting for seconds
    // while a 10M-entry log was caught up. This thread alone changes the
    // tables, so nothing changes between encoding and settling.
    let started = std::time::Instant::now();
    let (commit, settlement) = {
        let model = shared.read();
        // The position alone can change too (a newly cited checkpoint, or
        // events with no table effect).
        if model.pending_changes() == 0 && model.position == *committed {
            return Ok(());
        }
        *committed = model.position.clone();
        ProjectionStore::encode_commit(&model)
    };
    let encoded = started.elapsed();
    let started = std::time::Instant::now();
    let spent = {
        // Settling changes only what the store has yet to write, which no
        // reader sees: it leaves the revision, and so the answers cached
        // at it, alone.
        let mut model = shared.write_unversioned();
        ProjectionStore::settle_commit(&mut model, settlement)
    };
    let locked = started.elapsed();
    drop(spent);
    metrics::histogram!("aidledger_follower_commit_lock_seconds").record(locked.as_secs_f64());
    tracing::debug!(
        size = commit.size,
        encoded_seconds = encoded.as_secs_f64(),
        locked_seconds = locked.as_secs_f64(),
        "a commit taken"
    );
    let store = Arc::clone(store);
    *writing = Some(
        std::thread::Builder::new()
            .name("projector-commit".into())
            .spawn(move || {
                let (size, rows) = (commit.size, commit.rows());
                store.write(commit)?;
                tracing::debug!(size, rows, "projections committed");
                Ok(())
            })
            .map_err(|e| FollowError::Config(format!("starting a commit: {e}")))?,
    );
    Ok(())
}

fn finish(
    writing: &mut Option<std::thread::JoinHandle<Result<(), StoreError>>>,
) -> Result<(), FollowError> {
    match writing.take() {
        Some(handle) => Ok(handle.join().expect("the commit thread does not panic")?),
        None => Ok(()),
    }
}

struct Decoded {
    seq: u64,
    recorded_at: Timestamp,
    leaf_hash: [u8; 32],
    event: ParsedEvent,
    /// The entry as served, for the mirror: shared with the buffer it came
    /// in, so it is copied only if a mirror keeps it.
    bytes: Bytes,
}

/// Entries below this many are decoded where they arrive: handing them to
/// other threads would cost more than it saves.
const PARALLEL_DECODE_ENTRIES_MIN: usize = 64;

/// Hashes and decodes a batch of served entries on every core, then checks
/// their links and served leaf hashes in order on this task: the chain
/// check is sequential and cheap, the hashing and decoding are neither.
async fn decode_batch(
    checker: &mut ChainChecker,
    served: Vec<aidledger_wire::pb::Entry>,
) -> Result<Vec<Decoded>, FollowError> {
    let first = checker.next_seq();
    let parse = move |(index, served): (usize, aidledger_wire::pb::Entry)| {
        let seq = first + index as u64;
        let parsed = ParsedEntry::parse(seq, served.entry.clone());
        let event = parsed.as_ref().ok().map(|parsed| {
            decode_event(parsed.event_bytes())
                .map_err(|rejection| format!("the event does not decode: {rejection}"))
                .and_then(ParsedEvent::new)
        });
        (served, parsed, event)
    };
    let parsed: Vec<_> = if served.len() < PARALLEL_DECODE_ENTRIES_MIN {
        served.into_iter().enumerate().map(parse).collect()
    } else {
        tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            served.into_par_iter().enumerate().map(parse).collect()
        })
        .await
        .map_err(|e| FollowError::Config(format!("the decoding threads failed: {e}")))?
    };
    parsed
        .into_iter()
        .map(|(served, parsed, event)| link(checker, served, parsed, event))
        .collect()
}

/// Links one parsed entry to the chain and checks what the ledger served
/// with it, in the order a single pass over the entry would.
fn link(
    checker: &mut ChainChecker,
    served: aidledger_wire::pb::Entry,
    parsed: Result<ParsedEntry, ChainError>,
    event: Option<Result<ParsedEvent, String>>,
) -> Result<Decoded, FollowError> {
    let seq = checker.next_seq();
    if served.seq != seq {
        return Err(FollowError::Verification(format!(
            "the ledger served entry {} where {seq} was next",
            served.seq
        )));
    }
    let linked = parsed
        .and_then(|parsed| checker.link(parsed))
        .map_err(|e| FollowError::Verification(e.to_string()))?;
    if served.leaf_hash[..] != linked.leaf_hash {
        return Err(FollowError::Verification(format!(
            "entry {seq}: the served leaf hash is not the hash of the served bytes"
        )));
    }
    let event = event
        .expect("decoded whenever the entry parsed")
        .map_err(|detail| Inconsistent { seq, detail })?;
    Ok(Decoded {
        seq,
        recorded_at: linked.recorded_at,
        leaf_hash: linked.leaf_hash,
        event,
        bytes: served.entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aidledger_store::MemStore;

    /// Commit points of `spacing` as the follower folds from `start` to
    /// `end` in batches of 4,096 at `per_second` entries a second, the
    /// ledger's checkpoint at `end`, its queue empty only there; the last
    /// point is the commit on catching up.
    fn commits(spacing: &mut CommitSpacing, start: u64, end: u64, per_second: u64) -> Vec<u64> {
        let interval = Duration::from_secs(1);
        let (mut applied, mut last_commit) = (start, start);
        let mut points = Vec::new();
        while applied < end {
            applied = (applied + 4096).min(end);
            let since = Duration::from_secs_f64((applied - last_commit) as f64 / per_second as f64);
            if spacing.due(since, interval, applied, end, applied == end) {
                spacing.committed(applied);
                points.push(applied);
                last_commit = applied;
            }
        }
        points
    }

    #[test]
    fn catch_up_commits_double_their_gap_whatever_the_host_speed() {
        // 10M entries at 150k a second: the first commit after one
        // second, then each gap as long as all before it, none at 9.7M
        // (less remains than the gap), then the commit on catching up.
        let points = commits(&mut CommitSpacing::new(0), 0, 10_000_000, 150_000);
        assert_eq!(points.len(), 7, "{points:?}");
        for pair in points[..6].windows(2) {
            assert!(pair[1] >= 2 * pair[0], "{points:?}");
        }
        assert!(points[5] < 5_000_000, "{points:?}");
        assert_eq!(points[6], 10_000_000);
        // A host twice as fast commits one time fewer, not half as often.
        let faster = commits(&mut CommitSpacing::new(0), 0, 10_000_000, 300_000);
        assert_eq!(faster.len(), 6, "{faster:?}");
        // A slow host: the 60 s bound, not the doubling, spaces the last
        // ones, but does not force one just before the end.
        let slow = commits(&mut CommitSpacing::new(0), 0, 10_000_000, 50_000);
        let gaps: Vec<u64> = slow.windows(2).map(|p| p[1] - p[0]).collect();
        let (last, others) = gaps.split_last().unwrap();
        let bound = 60 * 50_000 + 4096;
        assert!(others.iter().all(|&gap| gap <= bound), "{slow:?}");
        assert!(*last > bound && *last <= 2 * bound, "{slow:?}");

        // Resumed from a store at 50M: spaced from there, not from 0.
        let mut spacing = CommitSpacing::new(50_000_000);
        assert_eq!(
            commits(&mut spacing, 50_000_000, 51_000_000, 150_000).len(),
            4
        );
        // Caught up, then behind again by 1M after an outage: a new
        // catch-up, spaced from where the last one ended, not left to the
        // 60 s bound.
        let again = commits(&mut spacing, 51_000_000, 52_000_000, 150_000);
        assert_eq!(again.len(), 4, "{again:?}");
        assert!(again[0] < 51_200_000, "{again:?}");
    }

    #[test]
    fn commit_spacing_edges() {
        let second = Duration::from_secs(1);
        let mut spacing = CommitSpacing::new(0);
        spacing.committed(200_000);
        // Never before the commit interval, even caught up.
        assert!(!spacing.due(second / 2, second, 400_000, 400_000, true));
        // The gap must reach what came before it...
        assert!(!spacing.due(second, second, 399_999, 0, false));
        assert!(spacing.due(second, second, 400_000, 0, false));
        // ...unless less than the gap remains to the checkpoint.
        assert!(!spacing.due(second, second, 400_000, 599_999, false));
        assert!(spacing.due(second, second, 400_000, 600_000, false));
        // A checkpoint lagging the entries does not stop the doubling.
        assert!(spacing.due(second, second, 400_000, 300_000, false));
        // At the checkpoint with entries still queued is not caught up.
        assert!(!spacing.due(second, second, 300_000, 300_000, false));
        // The 60 s bound holds, but not when the end is nearer than the
        // gap.
        assert!(spacing.due(COMMIT_SPACING_MAX, second, 300_000, 500_000, false));
        assert!(!spacing.due(COMMIT_SPACING_MAX, second, 300_000, 300_001, false));
    }

    /// `count` entries of `bytes` bytes each from `first_seq`, one stored
    /// hash per entry.
    fn batch(first_seq: u64, count: usize, bytes: usize) -> MirrorJob {
        let seqs = first_seq..first_seq + count as u64;
        MirrorJob {
            copy: AppendBatch {
                first_seq,
                entries: seqs
                    .clone()
                    .map(|seq| NewEntry {
                        bytes: vec![seq as u8; bytes],
                        event_id: format!("event-{seq}"),
                    })
                    .collect(),
                first_hash_index: first_seq,
                hashes: seqs.map(|seq| [seq as u8; 32]).collect(),
            },
            checkpoint: None,
        }
    }

    #[test]
    fn the_mirror_writer_answers_a_failed_append_then_writes_nothing_more() {
        let store = Arc::new(MemStore::new());
        let writer = MirrorWriter::start(store.clone(), MIRROR_SYNC_BYTES).unwrap();
        writer.send(batch(0, 3, 10)).unwrap();
        writer.wait_one().unwrap();
        store.fail_next_appends(1);
        writer.send(batch(3, 2, 10)).unwrap();
        let error = writer.wait_one().unwrap_err();
        assert!(matches!(error, FollowError::Mirror(_)), "{error}");
        // The same batch again: refused, by a writer that has stopped
        // (whether the job is still taken into its queue is a race).
        let _ = writer.send(batch(3, 2, 10));
        let stopped = writer.wait_one().unwrap_err().to_string();
        assert!(stopped.contains("stopped"), "{stopped}");
        assert_eq!(
            store.size().unwrap(),
            3,
            "only the batch before the failure"
        );
    }

    #[test]
    fn the_mirror_writer_answers_a_refused_batch_with_the_refusal() {
        let store = Arc::new(MemStore::new());
        let writer = MirrorWriter::start(store.clone(), MIRROR_SYNC_BYTES).unwrap();
        // Seq 1 where the store holds none: refused, not appended.
        writer.send(batch(1, 1, 10)).unwrap();
        let error = writer.wait_one().unwrap_err().to_string();
        assert!(error.contains("seq"), "{error}");
        assert_eq!(store.size().unwrap(), 0);
    }

    #[test]
    fn the_mirror_writer_records_a_checkpoint_without_syncing() {
        let store = Arc::new(MemStore::new());
        let writer = MirrorWriter::start(store.clone(), 1_000).unwrap();
        let mut job = batch(0, 2, 300);
        job.checkpoint = Some((2, "a checkpoint note".to_owned()));
        writer.send(job).unwrap();
        writer.wait_one().unwrap();
        assert_eq!(
            store.latest_checkpoint().unwrap().map(|(size, _)| size),
            Some(2)
        );
        assert_eq!(store.durable_calls(), 0, "neither a sync nor a synced put");
        // Bytes count on across the checkpoint: 1,200 in all sync once.
        writer.send(batch(2, 2, 300)).unwrap();
        writer.wait_one().unwrap();
        assert_eq!(writer.syncs.load(Ordering::Relaxed), 1);
        assert_eq!(store.durable_calls(), 1);
    }

    #[test]
    fn the_mirror_writer_syncs_after_so_many_bytes_and_not_before() {
        let store = Arc::new(MemStore::new());
        let writer = MirrorWriter::start(store, 1_000).unwrap();
        let mut syncs_after = Vec::new();
        for round in 0..6 {
            // 400 bytes a batch: the threshold is crossed by the third and
            // the sixth.
            writer.send(batch(round * 4, 4, 100)).unwrap();
            writer.wait_one().unwrap();
            syncs_after.push(writer.syncs.load(Ordering::Relaxed));
        }
        assert_eq!(syncs_after, [0, 0, 1, 1, 1, 2]);
    }

    #[test]
    fn a_mirror_writer_dropped_with_jobs_unanswered_finishes_them() {
        let store = Arc::new(MemStore::new());
        let writer = MirrorWriter::start(store.clone(), MIRROR_SYNC_BYTES).unwrap();
        writer.send(batch(0, 2, 10)).unwrap();
        writer.send(batch(2, 2, 10)).unwrap();
        drop(writer);
        assert_eq!(store.size().unwrap(), 4);
    }
}
