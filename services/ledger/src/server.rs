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
use crate::sequencer::{LedgerConfig, Sequencer};
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
    pub store_url: Option<String>,
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
    ingest: Ingest,
    writer: Writer,
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
        let signer = LogSigner::new(&config.origin, config.ledger_key)
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
        let path = config.data_dir.join("ledger.redb");
        let store_url = config.store_url.clone();
        let authority_key = config.authority_key;
        let (store, sequencer) = tokio::task::spawn_blocking(move || {
            let (store, path): (Arc<dyn LogStore>, String) = match store_url {
                Some(url) => (
                    Arc::new(PgStore::open(&url).context("opening the PostgreSQL store")?),
                    "the PostgreSQL store".to_owned(),
                ),
                None => (
                    Arc::new(
                        RedbStore::open(&path)
                            .with_context(|| format!("opening {}", path.display()))?,
                    ),
                    path.display().to_string(),
                ),
            };
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
            ingest,
            writer,
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
        tokio::task::spawn_blocking(move || writer.join()).await?;
        served.context("serving gRPC")?;
        Ok(())
    }
}
