//! The projector as a library: [`Projector::build`] opens the store and
//! binds the port, [`Projector::run_until_stopped`] follows the ledger and
//! serves `aidledger.v1.Projections` (with health and reflection) until the
//! shutdown future completes, then commits what it applied.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use aidledger_client::ConnectOptions;
use aidledger_wire::pb::projections_server::ProjectionsServer;
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::analytics::AnalyticsConfig;
use crate::follower::{Follower, FollowerConfig, Shared};
use crate::service::ProjectionsService;
use crate::store::ProjectionStore;

/// Default tolerance of overlap findings over a published need.
pub const EXCESS_PERCENT_DEFAULT: u32 = 10;

/// What a projector needs.
#[derive(Clone, Debug)]
pub struct ProjectorConfig {
    /// The projection store file.
    pub store_path: PathBuf,
    /// Delete the store first and project from entry 0.
    pub rebuild: bool,
    /// Where to serve gRPC.
    pub listen: SocketAddr,
    /// The ledger to follow.
    pub follower: FollowerConfig,
    /// See [`EXCESS_PERCENT_DEFAULT`].
    pub excess_percent: u32,
    /// Also copy the public read models into PostgreSQL.
    pub analytics: Option<AnalyticsConfig>,
}

impl ProjectorConfig {
    /// Defaults: store at `store_path`, following `ledger_url` with the
    /// ledger's verifier key `vkey` pinned.
    pub fn new(store_path: PathBuf, listen: SocketAddr, ledger_url: &str, vkey: &str) -> Self {
        let mut connect = ConnectOptions::new("");
        connect.vkey = Some(vkey.to_owned());
        ProjectorConfig {
            store_path,
            rebuild: false,
            listen,
            follower: FollowerConfig::new(ledger_url, connect),
            excess_percent: EXCESS_PERCENT_DEFAULT,
            analytics: None,
        }
    }
}

/// A projector, built and bound, not yet running.
#[derive(Debug)]
pub struct Projector {
    listener: TcpListener,
    shared: Arc<Shared>,
    follower: Follower,
    excess_percent: u32,
    analytics: Option<AnalyticsConfig>,
}

impl Projector {
    /// Opens (or rebuilds) the store, loads the model and binds the port.
    ///
    /// # Errors
    ///
    /// The store cannot be opened or removed; the port cannot be bound.
    pub async fn build(config: ProjectorConfig) -> anyhow::Result<Projector> {
        if config.rebuild && config.store_path.exists() {
            std::fs::remove_file(&config.store_path)
                .with_context(|| format!("removing {} to rebuild", config.store_path.display()))?;
        }
        if let Some(dir) = config.store_path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let path = config.store_path.clone();
        let (store, model) = tokio::task::spawn_blocking(move || ProjectionStore::open(&path))
            .await
            .context("opening the projection store")??;
        tracing::info!(
            store = %config.store_path.display(),
            size = model.position.size,
            "projections loaded"
        );
        let shared = Shared::new(model);
        let follower = Follower::new(store, Arc::clone(&shared), config.follower);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Ok(Projector {
            listener,
            shared,
            follower,
            excess_percent: config.excess_percent,
            analytics: config.analytics,
        })
    }

    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The model and the follower's status, for in-process readers.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Follows and serves until `shutdown` completes.
    ///
    /// # Errors
    ///
    /// Serving failed, or the final commit failed. A verification failure
    /// of the follower does not stop serving: it is logged and reported by
    /// `GetStatus`.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Projector {
            listener,
            shared,
            follower,
            excess_percent,
            analytics,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let following = tokio::spawn(follower.run(stopped(stop_rx.clone())));
        let copying = analytics.map(|config| {
            tokio::spawn(crate::analytics::run(
                Arc::clone(&shared),
                config,
                stop_rx.clone(),
            ))
        });

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<ProjectionsServer<ProjectionsService>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(aidledger_wire::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building the reflection service")?;
        let service = ProjectionsServer::new(ProjectionsService::new(shared, excess_percent));
        let served = Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(service)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    shutdown.await;
                    let _ = stop_tx.send(true);
                },
            )
            .await;
        if let Some(copying) = copying {
            copying.await.context("the analytics task panicked")?;
        }
        match following.await.context("the follower task panicked")? {
            Ok(()) => {}
            // Already logged and in the status; the state up to the failure
            // was served until shutdown.
            Err(error) => tracing::warn!(%error, "the follower had halted"),
        }
        served.context("serving gRPC")
    }
}
