//! The feed as a replica of its own: it follows the ledger over gRPC,
//! checks the chain and every checkpoint against the pinned vkey, keeps a
//! verified copy of the log (entries, stored hashes, checkpoints) and its
//! own projections in one folder, and serves everything from them. It needs
//! nothing of the ledger's disk or process.
//!
//! A verification failure (a fork, a checkpoint inconsistent with one it
//! verified) stops the following, not the serving: the feed goes on
//! serving what it verified and says so on `/healthz` (503).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use aidledger_projector::{Follower, FollowerConfig, ProjectionStore, Shared};
use aidledger_store::{LogStore, RedbStore};
use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{Feed, FeedOptions, router};

/// redb's page cache for the replica's copy of the log: what tiles and
/// proofs read most (the upper tree and the recent entries) fits; redb's
/// default, 1 GiB, would grow beside the projections' model.
const LOG_CACHE_BYTES: usize = 256 << 20;

/// The log mirror's file in the data folder.
pub const LOG_FILE: &str = "log.redb";
/// The projections' file in the data folder.
pub const PROJECTIONS_FILE: &str = "projections.redb";

/// What a replica needs.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// The folder of its log copy and projections.
    pub data: PathBuf,
    /// Where to serve HTTP.
    pub listen: SocketAddr,
    /// The ledger to follow: URL, pinned vkey, TLS.
    pub follower: FollowerConfig,
    /// What it publishes besides what it reads.
    pub options: FeedOptions,
    /// Delete the copy and the projections first and follow from entry 0.
    pub rebuild: bool,
    /// Also write the log as static C2SP tiles here ([`crate::static_tiles`]).
    pub tiles_dir: Option<PathBuf>,
}

/// A replica, opened and bound, not yet running.
#[derive(Debug)]
pub struct Replica {
    listener: TcpListener,
    feed: Arc<Feed>,
    follower: Follower,
    log: Arc<dyn LogStore>,
    tiles_dir: Option<PathBuf>,
}

impl Replica {
    /// Opens (or rebuilds) the log copy and the projections and binds the
    /// port.
    ///
    /// # Errors
    ///
    /// The folder or its stores cannot be opened, the copy is behind the
    /// projections, or the port cannot be bound.
    pub async fn build(config: ReplicaConfig) -> anyhow::Result<Replica> {
        let log_path = config.data.join(LOG_FILE);
        let projections_path = config.data.join(PROJECTIONS_FILE);
        if config.rebuild {
            for path in [&log_path, &projections_path] {
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("removing {} to rebuild", path.display()));
                    }
                }
            }
        }
        std::fs::create_dir_all(&config.data)
            .with_context(|| format!("creating {}", config.data.display()))?;
        let (log, projections, model) = tokio::task::spawn_blocking(move || {
            let log = RedbStore::open_mirror(&log_path, LOG_CACHE_BYTES)
                .with_context(|| format!("opening the log copy {}", log_path.display()))?;
            let (projections, model) = ProjectionStore::open(&projections_path)
                .with_context(|| format!("opening {}", projections_path.display()))?;
            anyhow::Ok((log, projections, model))
        })
        .await
        .context("opening the replica's stores")??;
        let log: Arc<dyn LogStore> = Arc::new(log);
        tracing::info!(
            data = %config.data.display(),
            entries = log.size()?,
            applied = model.position.size,
            "replica loaded"
        );
        let shared = Shared::new(model);
        let follower = Follower::new(projections, Arc::clone(&shared), config.follower)
            .with_mirror(Arc::clone(&log))?;
        let feed = Feed::new(Arc::clone(&log), shared, config.options);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Ok(Replica {
            listener,
            feed,
            follower,
            log,
            tiles_dir: config.tiles_dir,
        })
    }

    /// Entries applied so far: wait on it to see a given entry served.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.feed.projections.applied()
    }

    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Follows and serves until `shutdown` completes. A follower that
    /// halts on a verification failure leaves the feed serving what it
    /// verified, with `/healthz` saying why it stopped.
    ///
    /// # Errors
    ///
    /// Serving failed, or the final commit failed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Replica {
            listener,
            feed,
            follower,
            log,
            tiles_dir,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        if let Some(dir) = tiles_dir {
            tokio::spawn(write_tiles(log, dir, stop_rx.clone()));
        }
        let following = tokio::spawn(follower.run(async move {
            let mut rx = stop_rx;
            let _ = rx.wait_for(|stop| *stop).await;
        }));
        let served = crate::serve(listener, router(feed), async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
        // A halt is already in the status (and on /healthz) and logged.
        if let Err(error) = following.await.context("the follower task")? {
            tracing::warn!(%error, "the replica stopped following");
        }
        served
    }
}

/// How often the tiles folder looks for a newer checkpoint.
const TILES_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// Keeps `dir` in step with the copy's latest checkpoint until stopped. A
/// failure is logged and retried at the next look: the folder is derived.
async fn write_tiles(log: Arc<dyn LogStore>, dir: PathBuf, mut stop: watch::Receiver<bool>) {
    let mut written = 0;
    loop {
        let (store, folder) = (Arc::clone(&log), dir.clone());
        match tokio::task::spawn_blocking(move || {
            crate::static_tiles::export(store.as_ref(), &folder, written)
        })
        .await
        {
            Ok(Ok(size)) => written = size,
            Ok(Err(error)) => tracing::error!(%error, dir = %dir.display(), "writing the tiles"),
            Err(error) => tracing::error!(%error, "the tiles writer panicked"),
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(TILES_POLL_INTERVAL) => {}
        }
    }
}
