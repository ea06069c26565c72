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
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aidledger_client::{Client, ClientError, ConnectOptions};
use aidledger_ledger::decode::decode_event;
use aidledger_ledger::{ChainChecker, Event, Timestamp};
use aidledger_tlog::{Hash, TreeBuilder, verify_consistency};
use tokio::sync::watch;
use tokio_stream::StreamExt;

use crate::model::{Inconsistent, Model, VerifiedCheckpoint};
use crate::store::{ProjectionStore, StoreError};

/// How the follower reaches the ledger and paces its work.
#[derive(Clone, Debug)]
pub struct FollowerConfig {
    /// `http://host:port` or `https://host:port`.
    pub ledger_url: String,
    /// Origin, pinned ledger key, TLS.
    pub connect: ConnectOptions,
    /// How often changes are committed to the projection store.
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
    /// The read models. Held for writing only while a batch is applied.
    pub model: RwLock<Model>,
    status: Mutex<FollowStatus>,
    applied: watch::Sender<u64>,
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
            status: Mutex::new(FollowStatus::default()),
            applied,
        })
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
#[derive(Debug)]
pub struct Follower {
    store: Arc<ProjectionStore>,
    shared: Arc<Shared>,
    config: FollowerConfig,
    /// A checkpoint beyond the applied entries, verified once they reach it.
    pending: Option<VerifiedCheckpoint>,
    /// The last checkpoint seen, verified or pending: the next one must be
    /// consistent with it.
    last_seen: Option<VerifiedCheckpoint>,
}

impl Follower {
    /// A follower writing to `store` the model held by `shared` (loaded from
    /// that store).
    pub fn new(store: ProjectionStore, shared: Arc<Shared>, config: FollowerConfig) -> Self {
        let last_seen = shared
            .model
            .read()
            .expect("model lock")
            .position
            .checkpoint
            .clone();
        Follower {
            store: Arc::new(store),
            shared,
            config,
            pending: None,
            last_seen,
        }
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
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        loop {
            let outcome = tokio::select! {
                () = &mut shutdown => Ok(()),
                outcome = self.follow_once() => outcome,
            };
            match outcome {
                Ok(()) => {
                    self.commit().await?;
                    return Ok(());
                }
                Err(Attempt::Transient(detail)) => {
                    tracing::warn!(%detail, ?backoff, "following the ledger failed; retrying");
                    // Keep what was applied: a restart resumes from it.
                    self.commit().await?;
                    tokio::select! {
                        () = &mut shutdown => {
                            self.commit().await?;
                            return Ok(());
                        }
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(Attempt::Fatal(error)) => {
                    tracing::error!(%error, "projection halted");
                    self.shared
                        .set_status(|status| status.halted = Some(error.to_string()));
                    return Err(error);
                }
            }
        }
    }

    async fn follow_once(&mut self) -> Result<(), Attempt> {
        let client = Client::connect(&self.config.ledger_url, self.config.connect.clone()).await?;
        let (mut checker, mut tree) = {
            let model = self.shared.model.read().expect("model lock");
            let position = &model.position;
            let checker = if position.size == 0 {
                ChainChecker::new()
            } else {
                ChainChecker::resume(position.size, position.head, position.recorded_at)
            };
            let frontier = position.frontier.iter().map(|h| Hash(*h)).collect();
            let tree = TreeBuilder::from_frontier(position.size, frontier).map_err(|e| {
                FollowError::Verification(format!("the stored Merkle frontier is unusable: {e}"))
            })?;
            (checker, tree)
        };
        let stream = client.subscribe_raw(checker.next_seq()).await?;
        let stream = stream.chunks_timeout(self.config.batch_entries_max, Duration::from_millis(1));
        tokio::pin!(stream);
        let mut checkpoint_tick = tokio::time::interval(self.config.checkpoint_interval);
        let mut commit_tick = tokio::time::interval(self.config.commit_interval);
        commit_tick.tick().await;
        loop {
            tokio::select! {
                batch = stream.next() => {
                    let Some(batch) = batch else {
                        return Err(Attempt::Transient("the ledger ended the subscription".into()));
                    };
                    let mut decoded = Vec::with_capacity(batch.len());
                    let mut failure = None;
                    for served in batch {
                        match served {
                            Ok(served) => decoded.push(decode(&mut checker, served)?),
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
                    self.apply(&mut tree, decoded)?;
                    if let Some(failure) = failure {
                        return Err(failure);
                    }
                }
                _ = checkpoint_tick.tick() => self.check_checkpoint(&client, &tree).await?,
                _ = commit_tick.tick() => self.commit().await?,
            }
        }
    }

    fn apply(&mut self, tree: &mut TreeBuilder, decoded: Vec<Decoded>) -> Result<(), FollowError> {
        if decoded.is_empty() {
            return Ok(());
        }
        let mut model = self.shared.model.write().expect("model lock");
        for entry in decoded {
            model.apply(entry.seq, entry.recorded_at, &entry.event)?;
            tree.push(Hash(entry.leaf_hash));
            model.position.head = entry.leaf_hash;
            if let Some(pending) = &self.pending
                && pending.size == tree.size()
            {
                if tree.root().0 != pending.root {
                    return Err(FollowError::Verification(format!(
                        "the entries up to {} hash to a root other than the signed checkpoint of that size",
                        pending.size
                    )));
                }
                model.position.checkpoint = self.pending.take();
            }
        }
        model.position.frontier = tree.frontier().iter().map(|h| h.0).collect();
        let size = model.position.size;
        drop(model);
        self.shared.applied.send_replace(size);
        Ok(())
    }

    /// Fetches the latest checkpoint (its signature is verified by the
    /// client against the pinned key) and proves it consistent with the last
    /// one seen and with the applied entries.
    async fn check_checkpoint(
        &mut self,
        client: &Client,
        tree: &TreeBuilder,
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
        self.shared
            .set_status(|status| status.ledger_size = seen.size);
        if seen.size == 0 {
            return Ok(());
        }
        if let Some(last) = &self.last_seen {
            if seen.size < last.size {
                return Err(FollowError::Verification(format!(
                    "the ledger's checkpoint went back from size {} to {}",
                    last.size, seen.size
                ))
                .into());
            }
            if seen.size == last.size {
                if seen.root != last.root {
                    return Err(FollowError::Verification(format!(
                        "two signed checkpoints of size {} have different roots: the log forked",
                        seen.size
                    ))
                    .into());
                }
                return Ok(());
            }
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
        let applied = tree.size();
        if seen.size > applied {
            // Verified against the entries when they reach it.
            self.pending = Some(seen);
            return Ok(());
        }
        if seen.size < applied {
            let proof = client.consistency_proof(seen.size, applied).await?;
            let proof: Vec<Hash> = proof.into_iter().map(Hash).collect();
            verify_consistency(seen.size, applied, &Hash(seen.root), &tree.root(), &proof)
                .map_err(|e| {
                    FollowError::Verification(format!(
                        "checkpoint {} is not a prefix of the {applied} entries applied: {e}",
                        seen.size
                    ))
                })?;
        } else if tree.root().0 != seen.root {
            return Err(FollowError::Verification(format!(
                "the {applied} entries applied hash to a root other than the signed checkpoint of that size"
            ))
            .into());
        }
        self.pending = None;
        self.shared
            .model
            .write()
            .expect("model lock")
            .position
            .checkpoint = Some(seen);
        Ok(())
    }

    /// Commits the changes since the last commit; the write runs off the
    /// async runtime and the model stays readable meanwhile.
    async fn commit(&self) -> Result<(), FollowError> {
        let commit = {
            let mut model = self.shared.model.write().expect("model lock");
            if model.pending_changes() == 0 {
                return Ok(());
            }
            ProjectionStore::take_commit(&mut model)
        };
        let store = Arc::clone(&self.store);
        let size = commit.size;
        let rows = commit.rows();
        tokio::task::spawn_blocking(move || store.write(commit))
            .await
            .expect("the commit task does not panic")?;
        tracing::debug!(size, rows, "projections committed");
        Ok(())
    }
}

struct Decoded {
    seq: u64,
    recorded_at: Timestamp,
    leaf_hash: [u8; 32],
    event: Event,
}

fn decode(
    checker: &mut ChainChecker,
    served: aidledger_wire::pb::Entry,
) -> Result<Decoded, FollowError> {
    let seq = checker.next_seq();
    if served.seq != seq {
        return Err(FollowError::Verification(format!(
            "the ledger served entry {} where {seq} was next",
            served.seq
        )));
    }
    let linked = checker
        .check(&served.entry)
        .map_err(|e| FollowError::Verification(e.to_string()))?;
    if served.leaf_hash != linked.leaf_hash {
        return Err(FollowError::Verification(format!(
            "entry {seq}: the served leaf hash is not the hash of the served bytes"
        )));
    }
    let event = decode_event(&linked.signed_event.event).map_err(|rejection| Inconsistent {
        seq,
        detail: format!("the event does not decode: {rejection}"),
    })?;
    Ok(Decoded {
        seq,
        recorded_at: linked.recorded_at,
        leaf_hash: linked.leaf_hash,
        event,
    })
}
