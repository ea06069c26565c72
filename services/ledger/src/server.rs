//! The gRPC server as a library: [`Application::build`] opens the ledger and
//! binds the port, [`Application::port`] tells where it listens (port 0 in
//! tests), [`Application::run_until_stopped`] serves until the shutdown
//! future completes, then finishes in-flight appends durably.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use aidledger_ledger::PublicKey;
use aidledger_store::{LogStore, PgStore, RedbStore};
use aidledger_tlog::ed25519::SecretKey;
use aidledger_tlog::{LogSigner, LogVerifier, WitnessVerifier};
use aidledger_wire::pb::ledger_server::LedgerServer;
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::ingest::{Clock, Ingest, IngestConfig, Writer, system_clock};
use crate::rate_limit::RateLimiter;
use crate::sequencer::{LedgerConfig, Sequencer, SignedCheckpoint};
use crate::service::{Cosigning, LedgerService, Limits};

/// SPEC §6: a request over the configured limit is `RESOURCE_EXHAUSTED`.
/// tonic's decoder refuses such a request itself, with `OUT_OF_RANGE`; this
/// rewrites that one status, in the headers of a trailers-only response or
/// in the trailers, and nothing else.
fn oversized_is_resource_exhausted(
    response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    use http_body_util::BodyExt;
    let (mut parts, body) = response.into_parts();
    fix_oversized_status(&mut parts.headers);
    let body = body.map_frame(|frame| match frame.into_trailers() {
        Ok(mut trailers) => {
            fix_oversized_status(&mut trailers);
            http_body::Frame::trailers(trailers)
        }
        Err(frame) => frame,
    });
    http::Response::from_parts(parts, tonic::body::Body::new(body))
}

fn fix_oversized_status(headers: &mut http::HeaderMap) {
    let oversized = headers.get("grpc-status").map(|v| v.as_bytes()) == Some(b"11".as_slice())
        // tonic percent-encodes the message, spaces included.
        && headers.get("grpc-message").is_some_and(|m| {
            m.as_bytes()
                .starts_with(b"Error,%20decoded%20message%20length%20too%20large")
        });
    if oversized {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
}

/// Concurrent streams (requests and subscriptions) on one connection.
pub const STREAMS_PER_CONNECTION_MAX: u32 = 256;

/// How long shutdown waits for connections to finish before it stops them.
pub const SHUTDOWN_DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// PEM material for TLS; with `client_ca_pem`, clients must present a
/// certificate it signed (mutual TLS). `Debug` never prints the key.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The server's certificate chain.
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
    /// The CA client certificates must chain to, for mutual TLS.
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// Everything the server needs, already loaded (no file paths for keys).
pub struct ServeConfig {
    /// Where the log lives (`ledger.redb` inside), unless `store_url` names
    /// a database.
    pub data_dir: PathBuf,
    /// The log in this PostgreSQL database (`postgres://...`) instead.
    /// Several ledgers may share it: one writes, the others are standbys.
    pub store_url: Option<String>,
    /// The address clients reach this ledger at, recorded when it becomes
    /// the writer so standbys can send clients there; by default
    /// `http(s)://` and the listening address.
    pub advertise: Option<String>,
    /// How often a standby tries to take the writer's lease.
    pub takeover_interval: std::time::Duration,
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// SPEC §2 origin.
    pub origin: String,
    /// The checkpoint key.
    pub ledger_key: SecretKey,
    /// The only key whose Genesis is accepted at seq 0.
    pub authority_key: Option<PublicKey>,
    /// Request limits.
    pub limits: Limits,
    /// Pipeline limits and checkpoint interval.
    pub ingest: IngestConfig,
    /// Events per second per key; 0 turns the limit off.
    pub rate_limit_per_second: f64,
    /// Events a key may send at once before the rate applies.
    pub rate_limit_burst: f64,
    /// TLS, or plaintext when `None`.
    pub tls: Option<TlsMaterial>,
    /// The ledger clock; the system clock in production.
    pub clock: Option<Clock>,
    /// Vkeys (C2SP, type 0x04) of the witnesses whose cosignatures the
    /// ledger records and serves.
    pub witnesses: Vec<String>,
    /// Where the program serves Prometheus metrics, if anywhere (the
    /// library only records them).
    pub metrics_listen: Option<SocketAddr>,
}

impl ServeConfig {
    /// The same settings again, for a ledger that starts over on a shared
    /// store (the key is copied through its PEM form: it is not `Clone`,
    /// so it is never copied by accident).
    pub fn copy(&self) -> ServeConfig {
        ServeConfig {
            data_dir: self.data_dir.clone(),
            store_url: self.store_url.clone(),
            advertise: self.advertise.clone(),
            takeover_interval: self.takeover_interval,
            listen: self.listen,
            origin: self.origin.clone(),
            ledger_key: SecretKey::from_pkcs8_pem(&self.ledger_key.to_pkcs8_pem())
                .expect("a key's own PEM reads back"),
            authority_key: self.authority_key,
            limits: self.limits.clone(),
            ingest: self.ingest.clone(),
            rate_limit_per_second: self.rate_limit_per_second,
            rate_limit_burst: self.rate_limit_burst,
            tls: self.tls.clone(),
            clock: self.clock.clone(),
            witnesses: self.witnesses.clone(),
            metrics_listen: self.metrics_listen,
        }
    }
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("data_dir", &self.data_dir)
            // The URL may carry a password.
            .field(
                "store_url",
                &self.store_url.as_ref().map(|_| "postgres://…"),
            )
            .field("listen", &self.listen)
            .field("origin", &self.origin)
            .field("authority_key", &self.authority_key)
            .field("limits", &self.limits)
            .field("ingest", &self.ingest)
            .field("tls", &self.tls.is_some())
            .field("witnesses", &self.witnesses)
            .finish_non_exhaustive()
    }
}

impl ServeConfig {
    /// A plaintext config with default limits.
    pub fn new(data_dir: PathBuf, listen: SocketAddr, origin: &str, ledger_key: SecretKey) -> Self {
        ServeConfig {
            data_dir,
            store_url: None,
            advertise: None,
            takeover_interval: std::time::Duration::from_secs(1),
            listen,
            origin: origin.into(),
            ledger_key,
            authority_key: None,
            limits: Limits::default(),
            ingest: IngestConfig::default(),
            rate_limit_per_second: 0.0,
            rate_limit_burst: 1_000.0,
            tls: None,
            clock: None,
            witnesses: Vec::new(),
            metrics_listen: None,
        }
    }
}

/// A built server, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    port: u16,
    vkey: String,
    size: u64,
    store: Arc<dyn LogStore>,
    service: LedgerService,
    /// The writer's pipeline and thread; `None` on a standby.
    ingest: Option<Ingest>,
    writer: Option<Writer>,
    closing: watch::Sender<bool>,
    tls: Option<TlsMaterial>,
    request_bytes_max: usize,
}

impl Application {
    /// Opens (or creates) the ledger in `config.data_dir`, verifying the
    /// whole stored log, and binds the listening socket.
    pub async fn build(config: ServeConfig) -> anyhow::Result<Application> {
        if config.store_url.is_none() {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("creating the data directory {}", config.data_dir.display())
            })?;
        }
        let path = config.data_dir.join("ledger.redb");
        let store_url = config.store_url.clone();
        let store = tokio::task::spawn_blocking(move || {
            let store: Arc<dyn LogStore> = match store_url {
                Some(url) => Arc::new(PgStore::open(&url).context("opening the PostgreSQL store")?),
                None => Arc::new(
                    RedbStore::open(&path)
                        .with_context(|| format!("opening {}", path.display()))?,
                ),
            };
            anyhow::Ok(store)
        })
        .await??;
        Application::build_with_store(config, store).await
    }

    /// Opens the ledger on `store` (its writer: nobody else writes to it),
    /// verifying the whole stored log, and binds the listening socket.
    pub async fn build_with_store(
        config: ServeConfig,
        store: Arc<dyn LogStore>,
    ) -> anyhow::Result<Application> {
        let (signer, cosigning, vkey) = signing(&config)?;
        let path = match &config.store_url {
            Some(_) => "the PostgreSQL store".to_owned(),
            None => config.data_dir.join("ledger.redb").display().to_string(),
        };
        let authority_key = config.authority_key;
        let (store, sequencer) = tokio::task::spawn_blocking(move || {
            let sequencer = Sequencer::open(
                store.clone(),
                LedgerConfig {
                    signer,
                    authority_key,
                },
            )
            .with_context(|| format!("verifying the log in {path}"))?;
            anyhow::Ok((store, sequencer))
        })
        .await??;
        let size = sequencer.size();
        let (closing, closing_rx) = watch::channel(false);
        let (ingest, writer) = Ingest::start(
            sequencer,
            config.ingest.clone(),
            config.clock.unwrap_or_else(system_clock),
            tokio::runtime::Handle::current(),
        );
        let rate_limiter = Arc::new(RateLimiter::new(
            config.rate_limit_per_second,
            config.rate_limit_burst,
        ));
        let request_bytes_max = config.limits.request_bytes_max;
        let service = LedgerService::new(
            &config.origin,
            store.clone(),
            ingest.clone(),
            config.limits,
            rate_limiter,
            closing_rx,
            cosigning,
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let port = listener.local_addr()?.port();
        Ok(Application {
            listener,
            port,
            vkey,
            size,
            store,
            service,
            ingest: Some(ingest),
            writer: Some(writer),
            closing,
            tls: config.tls,
            request_bytes_max,
        })
    }

    /// A standby on the shared `store`: serves reads from it, refuses
    /// writes with `NOT_LEADER` naming the writer, and follows the store's
    /// head as the writer appends.
    pub async fn build_standby(
        config: ServeConfig,
        store: Arc<PgStore>,
    ) -> anyhow::Result<Application> {
        let (_, cosigning, vkey) = signing(&config)?;
        let (closing, closing_rx) = watch::channel(false);
        let shared: Arc<dyn LogStore> = store.clone();
        let head = follow_store_head(
            Arc::clone(&shared),
            cosigning.log_verifier.clone(),
            closing_rx.clone(),
        );
        let size = *head.committed.borrow();
        let writer_address: crate::service::WriterAddress = Arc::new(move || {
            // Read when a write is refused: standbys are not the hot path.
            tokio::task::block_in_place(|| store.writer().ok().map(|writer| writer.address))
        });
        let request_bytes_max = config.limits.request_bytes_max;
        let service = LedgerService::standby(
            &config.origin,
            Arc::clone(&shared),
            head,
            writer_address,
            config.limits,
            closing_rx,
            cosigning,
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let port = listener.local_addr()?.port();
        Ok(Application {
            listener,
            port,
            vkey,
            size,
            store: shared,
            service,
            ingest: None,
            writer: None,
            closing,
            tls: config.tls,
            request_bytes_max,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ledger's store, for read-only neighbours in the same process
    /// (the public feed serves tiles from it).
    pub fn store(&self) -> Arc<dyn LogStore> {
        Arc::clone(&self.store)
    }

    /// The checkpoint verifier key, to publish.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// Entries in the log when it was opened.
    pub fn size_at_start(&self) -> u64 {
        self.size
    }

    /// Serves until `shutdown` completes. Then it stops accepting, ends
    /// subscriptions, lets in-flight requests finish, and waits for the
    /// writer to commit every queued append before returning.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            service,
            ingest,
            writer,
            closing,
            tls,
            request_bytes_max,
            ..
        } = self;
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<LedgerServer<LedgerService>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(aidledger_wire::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building the reflection service")?;
        // The decoder refuses a request over the limit before it is held in
        // memory; `oversized_is_resource_exhausted` gives it SPEC §6's code.
        let ledger = LedgerServer::new(service)
            .max_decoding_message_size(request_bytes_max)
            .max_encoding_message_size(request_bytes_max.saturating_mul(2));
        // Bounds per connection, so one client cannot open streams without
        // limit; keepalive finds dead peers, and a drain limit keeps a
        // client that never finishes its request from holding up shutdown.
        let mut builder = Server::builder()
            .layer(tower::util::MapResponseLayer::new(
                oversized_is_resource_exhausted,
            ))
            .max_concurrent_streams(Some(STREAMS_PER_CONNECTION_MAX))
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)));
        if let Some(tls) = tls {
            let mut tls_config =
                ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
            if let Some(ca) = &tls.client_ca_pem {
                tls_config = tls_config.client_ca_root(Certificate::from_pem(ca));
            }
            builder = builder.tls_config(tls_config).context("configuring TLS")?;
        }
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight appends");
            let _ = closing.send(true);
        };
        let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
        let serve = builder
            .add_service(health_service)
            .add_service(reflection)
            .add_service(ledger)
            .serve_with_incoming_shutdown(
                // Small request/response exchanges: without TCP_NODELAY, Nagle
                // and delayed ACKs add ~40 ms to every append.
                TcpIncoming::from(listener)
                    .with_nodelay(Some(true))
                    .with_keepalive(Some(std::time::Duration::from_secs(60))),
                async move {
                    signal.await;
                    let _ = drained_tx.send(());
                },
            );
        // After the shutdown signal, give connections SHUTDOWN_DRAIN_MAX to
        // finish; then stop serving them. Appends already handed to the
        // writer still complete: it drains its queue below.
        let served = tokio::select! {
            served = serve => served,
            () = async {
                let _ = drained_rx.await;
                tokio::time::sleep(SHUTDOWN_DRAIN_MAX).await;
            } => {
                tracing::warn!("connections did not finish within {SHUTDOWN_DRAIN_MAX:?}; closing them");
                Ok(())
            }
        };
        health_reporter
            .set_not_serving::<LedgerServer<LedgerService>>()
            .await;
        // Every request handler is gone; dropping the last ingest handle
        // lets the writer drain its queue, sign a final checkpoint and stop.
        drop(ingest);
        if let Some(writer) = writer {
            tokio::task::spawn_blocking(move || writer.join()).await?;
        }
        served.context("serving gRPC")?;
        Ok(())
    }
}

/// The ledger's signer, what cosigners are checked against, and its vkey.
fn signing(config: &ServeConfig) -> anyhow::Result<(LogSigner, Cosigning, String)> {
    let key = SecretKey::from_pkcs8_pem(&config.ledger_key.to_pkcs8_pem())
        .context("copying the ledger key")?;
    let signer = LogSigner::new(&config.origin, key)
        .with_context(|| format!("origin {:?}", config.origin))?;
    let vkey = signer.vkey();
    let witnesses = config
        .witnesses
        .iter()
        .map(|vkey| {
            WitnessVerifier::from_vkey(vkey).with_context(|| format!("witness vkey {vkey:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cosigning = Cosigning {
        log_verifier: LogVerifier::from_vkey(&vkey).context("the ledger's own vkey")?,
        witnesses,
    };
    Ok((signer, cosigning, vkey))
}

/// How often a standby reads the shared store's head.
const HEAD_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// A standby's view of the head: the shared store's size and latest
/// checkpoint, read every [`HEAD_POLL_INTERVAL`] until `closing`. The
/// checkpoint is read before the size, so a reader never sees a checkpoint
/// beyond the entries it can read; its note is verified before it is
/// served.
fn follow_store_head(
    store: Arc<dyn LogStore>,
    verifier: LogVerifier,
    mut closing: watch::Receiver<bool>,
) -> crate::service::Head {
    let (committed_tx, committed) = watch::channel(0);
    let (checkpoint_tx, checkpoint) = watch::channel(None);
    tokio::spawn(async move {
        loop {
            let reading = Arc::clone(&store);
            let read = tokio::task::spawn_blocking(move || {
                let latest = reading.latest_checkpoint()?;
                let size = reading.size()?;
                Ok::<_, aidledger_store::StoreError>((latest, size))
            })
            .await;
            match read {
                Ok(Ok((latest, size))) => {
                    if let Some((checkpoint_size, note)) = latest {
                        let known = checkpoint_tx
                            .borrow()
                            .as_ref()
                            .is_some_and(|c: &Arc<SignedCheckpoint>| c.note == note);
                        if !known {
                            match verifier.verify(&note) {
                                Ok(checkpoint) => {
                                    checkpoint_tx.send_replace(Some(Arc::new(SignedCheckpoint {
                                        note,
                                        checkpoint,
                                    })));
                                }
                                Err(error) => tracing::error!(
                                    %error,
                                    checkpoint_size,
                                    "the shared store's checkpoint does not verify"
                                ),
                            }
                        }
                    }
                    committed_tx.send_if_modified(|committed| {
                        let changed = *committed != size;
                        *committed = size;
                        changed
                    });
                }
                Ok(Err(error)) => tracing::warn!(%error, "reading the shared store's head"),
                Err(error) => tracing::warn!(%error, "the head reader failed"),
            }
            tokio::select! {
                _ = closing.wait_for(|closing| *closing) => return,
                () = tokio::time::sleep(HEAD_POLL_INTERVAL) => {}
            }
        }
    });
    crate::service::Head {
        committed,
        checkpoint,
    }
}

/// Serves a ledger whose log is in a shared PostgreSQL database, until
/// `shutdown`: as the writer while it holds the database's lease, as a
/// standby otherwise (reads served, writes sent to the writer), taking
/// over when the writer goes. Losing the lease (the database restarted, the
/// connection broke) makes it step down, reconnect with backoff, and take
/// part again; a writer rebuilds its state from the store every time, as a
/// restart does, so a commit whose outcome was lost is read back, never
/// guessed.
pub async fn serve_shared(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let url = config
        .store_url
        .clone()
        .context("a shared store needs --store")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_state = stop_rx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut stop = stop_rx.clone();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    };
    let holder = format!(
        "{}/{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
        std::process::id()
    );
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let address = config
        .advertise
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{}", config.listen));
    let mut backoff = BACKOFF_MIN;
    let mut kept: Option<Arc<PgStore>> = None;
    loop {
        let store = match kept.take() {
            Some(store) => Ok(store),
            None => {
                let url = url.clone();
                tokio::task::spawn_blocking(move || PgStore::open(&url).map(Arc::new))
                    .await?
                    .context("opening the PostgreSQL store")
            }
        };
        let attempt = match store {
            Ok(store) => {
                let (leading, holder, address) =
                    (Arc::clone(&store), holder.clone(), address.clone());
                tokio::task::spawn_blocking(move || leading.try_lead(&holder, &address))
                    .await?
                    .context("taking the writer's lease")
                    .map(|epoch| (store, epoch))
            }
            Err(error) => Err(error),
        };
        let ended = match attempt {
            Ok((store, Some(epoch))) => {
                tracing::info!(epoch, %address, "this ledger is the writer");
                let lost = store.lease_lost();
                let shared: Arc<dyn LogStore> = store.clone();
                match Application::build_with_store(config.copy(), shared).await {
                    Ok(app) => {
                        backoff = BACKOFF_MIN;
                        let stop = stopped();
                        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
                        app.run_until_stopped(async move {
                            let lost = tokio::select! {
                                () = stop => false,
                                () = lost => true,
                            };
                            if lost {
                                tracing::warn!(
                                    "the writer's lease is lost; stepping down to take part again"
                                );
                            }
                            let _ = ended_tx.send(lost);
                        })
                        .await?;
                        ended_rx.await.unwrap_or(false)
                    }
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "starting as the writer");
                        true
                    }
                }
            }
            Ok((store, None)) => {
                let app = Application::build_standby(config.copy(), Arc::clone(&store)).await?;
                tracing::info!(
                    writer = store.writer().map(|w| w.address).unwrap_or_default(),
                    "this ledger is a standby"
                );
                backoff = BACKOFF_MIN;
                let stop = stopped();
                let leading = Arc::clone(&store);
                let (holder, address) = (holder.clone(), address.clone());
                let interval = config.takeover_interval;
                let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
                app.run_until_stopped(async move {
                    let promoted = tokio::select! {
                        () = stop => false,
                        () = take_lease_when_free(leading, holder, address, interval) => true,
                    };
                    let _ = ended_tx.send(promoted);
                })
                .await?;
                let promoted = ended_rx.await.unwrap_or(false);
                if promoted {
                    // The lease is held by this store: lead with it.
                    kept = Some(store);
                }
                promoted
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    ?backoff,
                    "reaching the database"
                );
                true
            }
        };
        if *stop_state.borrow() || !ended {
            return Ok(());
        }
        if kept.is_none() {
            tokio::select! {
                () = stopped() => return Ok(()),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

const BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(100);
const BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Tries the lease every `interval` until this store holds it. A database
/// error ends the wait too: the caller reopens the store.
async fn take_lease_when_free(
    store: Arc<PgStore>,
    holder: String,
    address: String,
    interval: std::time::Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        let (leading, holder, address) = (Arc::clone(&store), holder.clone(), address.clone());
        match tokio::task::spawn_blocking(move || leading.try_lead(&holder, &address)).await {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(_))) => return,
            Ok(Err(error)) => {
                tracing::warn!(%error, "trying the writer's lease");
                return;
            }
            Err(_) => return,
        }
    }
}
