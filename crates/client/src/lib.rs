//! The client of the aidledger gRPC service (SPEC §6), for agencies, auditors
//! and our own tools: sign and append events, read entries, follow the log,
//! fetch checkpoints and prove inclusion.
//!
//! Boundary: the client trusts nothing it is told that it can check. Every
//! entry's leaf hash and event signature, the hash chain of a subscription,
//! checkpoints (against a pinned ledger key, when one is given) and inclusion
//! proofs are verified here, with `aidledger-tlog` and `aidledger-ledger`,
//! before anything is handed back; an answer that does not check out is
//! [`ClientError::Verification`]. It does not judge events against the rules
//! of SPEC §7: that is the ledger's job, and the auditor's.
//!
//! Errors are shaped by what the caller does next: a refusal
//! ([`Rejected`], with the stable reason such as `INSUFFICIENT_BALANCE`) is
//! final for that event; transport failures are retried with backoff (safe,
//! because resubmitting identical bytes is idempotent) and then reported as
//! [`ClientError::Transport`].

mod cluster;
mod error;
mod follow;
mod retry;
mod stream;
mod verify;

#[cfg(test)]
mod grpc_tests;
#[cfg(test)]
mod test_support;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aidledger_ledger::{ChainChecker, sign_event};
use aidledger_tlog::is_valid_origin;
use aidledger_wire::Message as _;
use aidledger_wire::pb::ledger_client::LedgerClient;
use tonic::Status;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::cluster::Ledgers;

pub use aidledger_tlog::ed25519::SecretKey;
pub use aidledger_tlog::{Checkpoint, Hash, LogVerifier};
pub use aidledger_wire::pb;
pub use error::{ClientError, ERROR_DOMAIN, Rejected, code_name};
pub use retry::RetryPolicy;
pub use stream::EntryStream;
/// The gRPC status code of a [`Rejected`] or [`ClientError::Server`].
pub use tonic::Code;
pub use verify::{Appended, EntryKey, Inclusion, Proven, SignedCheckpoint, VerifiedEntry};

use crate::retry::is_transient;
use crate::verify::{check_appended, check_batch, check_checkpoint, check_entry, check_inclusion};

/// TLS material for an `https://` endpoint, as PEM bytes.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// The CA certificate(s) that sign the ledger's server certificate.
    /// Required: no system roots are compiled in.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate, for a ledger that requires mutual TLS.
    pub client_cert_pem: Option<Vec<u8>>,
    /// The client certificate's private key.
    pub client_key_pem: Option<Vec<u8>>,
    /// The name to expect in the server certificate, when it is not the
    /// endpoint's host.
    pub domain: Option<String>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "<pem>"),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("domain", &self.domain)
            .finish()
    }
}

/// How to connect and what to trust.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The ledger's origin (SPEC §2): bound into every event signature and
    /// the first line of every checkpoint. May be empty when `vkey` is set;
    /// it is then the vkey's key name.
    pub origin: String,
    /// The ledger's checkpoint verifier key in C2SP vkey form. When set,
    /// checkpoints and proofs are verified against it; without it a
    /// checkpoint is the server's word ([`SignedCheckpoint::signature_verified`]).
    pub vkey: Option<String>,
    /// Required for `https://` endpoints, refused for `http://` ones.
    pub tls: Option<TlsOptions>,
    /// Deadline of each unary call (sent as `grpc-timeout`). Subscriptions
    /// have none.
    pub timeout: Duration,
    /// Deadline of establishing the connection.
    pub connect_timeout: Duration,
    /// Retries of transient failures, for connecting and for every call.
    pub retry: RetryPolicy,
}

impl ConnectOptions {
    /// Options for the ledger `origin`, with default timeouts and retries and
    /// no pinned key.
    pub fn new(origin: impl Into<String>) -> Self {
        ConnectOptions {
            origin: origin.into(),
            vkey: None,
            tls: None,
            // Long enough for an append that waits for the next checkpoint
            // (signed at least once per second, SPEC §5) under load.
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

/// HTTP/2 keep-alive pings, so a quiet subscription through a NAT or proxy
/// is not silently dropped.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// A connection to a ledger, or to a writer and its standbys that share one
/// store: reads go to whichever answers, appends follow the writer
/// (`NOT_LEADER`, see the crate's cluster module).
#[derive(Clone, Debug)]
pub struct Client {
    ledgers: Arc<Ledgers>,
    origin: String,
    verifier: Option<LogVerifier>,
    timeout: Duration,
    retry: RetryPolicy,
}

/// How many times one call follows a standby to the writer it names before
/// it falls back to backing off: a bound on two ledgers that each name the
/// other while a takeover settles.
const REDIRECTS_MAX: u32 = 8;

impl Client {
    /// Connects to `endpoint` (`http://host:port` or `https://host:port`),
    /// retrying transient failures.
    ///
    /// # Errors
    ///
    /// [`ClientError::Config`] for unusable options, [`ClientError::Transport`]
    /// if the ledger cannot be reached.
    pub async fn connect(endpoint: &str, options: ConnectOptions) -> Result<Client, ClientError> {
        Client::connect_any(&[endpoint], options).await
    }

    /// Connects to the first of `endpoints` that answers, retrying transient
    /// failures. The endpoints are ledgers sharing one store, a writer and
    /// its standbys, in the order to try them: a call that cannot reach one
    /// moves to the next, and an append a standby refuses with `NOT_LEADER`
    /// is sent again, identical, to the writer it names.
    ///
    /// # Errors
    ///
    /// [`ClientError::Config`] for unusable options or no endpoint,
    /// [`ClientError::Transport`] if no ledger can be reached.
    pub async fn connect_any(
        endpoints: &[impl AsRef<str>],
        options: ConnectOptions,
    ) -> Result<Client, ClientError> {
        let verifier = options
            .vkey
            .as_deref()
            .map(LogVerifier::from_vkey)
            .transpose()
            .map_err(|error| ClientError::Config(format!("vkey: {error}")))?;
        let origin = resolve_origin(&options.origin, verifier.as_ref())?;
        let urls: Vec<String> = endpoints
            .iter()
            .map(|endpoint| endpoint.as_ref().to_owned())
            .collect();
        let ledgers = Ledgers::new(&urls, options.tls.clone(), options.connect_timeout)?;
        let mut retry = 0;
        loop {
            match ledgers.connect_one().await {
                Ok(()) => break,
                Err(failures) if retry < options.retry.retries => {
                    let wait = options.retry.backoff(retry);
                    tracing::debug!(?failures, retry, ?wait, "connect failed; retrying");
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                Err(failures) => {
                    return Err(ClientError::Transport(format!(
                        "cannot connect to {} after {} attempts: {}",
                        urls.join(", "),
                        retry + 1,
                        failures.join("; ")
                    )));
                }
            }
        }
        Ok(Client {
            ledgers: Arc::new(ledgers),
            origin,
            verifier,
            timeout: options.timeout,
            retry: options.retry,
        })
    }

    /// The address of the ledger the next call goes to.
    pub fn endpoint(&self) -> String {
        self.ledgers.current_url()
    }

    /// Every ledger address this client knows: the ones it was given, then
    /// any writer a standby named.
    pub fn endpoints(&self) -> Vec<String> {
        self.ledgers.urls()
    }

    /// The ledger's origin: what events are signed for.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The pinned ledger key, if any.
    pub fn verifier(&self) -> Option<&LogVerifier> {
        self.verifier.as_ref()
    }

    /// The generated gRPC client on the current ledger's connection,
    /// unverified and without retries: for tools that check the answers
    /// themselves (the auditor replays the raw entry stream, and asks for
    /// cosigned checkpoints and consistency proofs).
    pub fn raw(&self) -> LedgerClient<Channel> {
        self.ledgers.current().1
    }

    /// Encodes `event` and signs it for this ledger's origin (SPEC §3). The
    /// signature is deterministic (RFC 8032), so signing the same event with
    /// the same key gives identical bytes: resubmitting them is idempotent.
    pub fn sign(&self, key: &SecretKey, event: &pb::Event) -> pb::SignedEvent {
        sign_event(key, &self.origin, event.encode_to_vec())
    }

    /// Appends one signed event. With `wait_for_checkpoint`, the ledger
    /// answers once a checkpoint covers the entry, and the answer's
    /// checkpoint and inclusion proof are verified.
    ///
    /// A resubmission of identical bytes (after a lost answer, or a rerun)
    /// gives the original seq with `duplicate = true`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Rejected`] when the ledger refuses the event;
    /// [`ClientError::Verification`] when the answer does not carry exactly
    /// the submitted event, or its proof fails; transport or server errors.
    pub async fn append(
        &self,
        event: pb::SignedEvent,
        wait_for_checkpoint: bool,
    ) -> Result<Appended, ClientError> {
        let request = pb::AppendRequest {
            event: Some(event.clone()),
            wait_for_checkpoint,
        };
        let response = self
            .call(
                "Append",
                request,
                Some(self.timeout),
                |mut ledger, request| async move { ledger.append(request).await },
            )
            .await
            .map_err(ClientError::from_status)?;
        check_appended(
            &self.origin,
            self.verifier.as_ref(),
            &event,
            response,
            wait_for_checkpoint,
        )
    }

    /// Appends several signed events in one request. The answer has one
    /// result per event, in order: an acknowledgement or a refusal.
    ///
    /// # Errors
    ///
    /// Transport or server errors for the whole request, or a refusal of the
    /// whole request (e.g. `RESOURCE_EXHAUSTED` for too many events);
    /// [`ClientError::Verification`] if the result count differs.
    pub async fn append_batch(
        &self,
        events: Vec<pb::SignedEvent>,
    ) -> Result<Vec<Result<Appended, Rejected>>, ClientError> {
        let count = events.len();
        let request = pb::AppendBatchRequest { events };
        let response = self
            .call(
                "AppendBatch",
                request,
                Some(self.timeout),
                |mut ledger, request| async move { ledger.append_batch(request).await },
            )
            .await
            .map_err(ClientError::from_status)?;
        check_batch(count, response)
    }

    /// Fetches one entry and checks its leaf hash, that it is the entry asked
    /// for, and its event signature. `None` if there is no such entry.
    ///
    /// # Errors
    ///
    /// [`ClientError::Verification`] when the entry does not check out;
    /// transport or server errors.
    pub async fn get_entry(&self, key: EntryKey) -> Result<Option<VerifiedEntry>, ClientError> {
        let request = pb::GetEntryRequest {
            key: Some(match &key {
                EntryKey::Seq(seq) => pb::get_entry_request::Key::Seq(*seq),
                EntryKey::EventId(id) => pb::get_entry_request::Key::EventId(id.clone()),
            }),
        };
        let result = self
            .call(
                "GetEntry",
                request,
                Some(self.timeout),
                |mut ledger, request| async move { ledger.get_entry(request).await },
            )
            .await;
        match result {
            Ok(served) => check_entry(&self.origin, &key, served).map(Some),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(ClientError::from_status(status)),
        }
    }

    /// Follows the log from `from_seq`: every entry from there on, then new
    /// ones as they are appended, each checked (see [`EntryStream`]). When
    /// `from_seq > 0`, entry `from_seq - 1` is fetched first to anchor the
    /// hash chain.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotFound`] when the anchor entry does not exist (yet);
    /// transport or server errors.
    pub async fn subscribe(&self, from_seq: u64) -> Result<EntryStream, ClientError> {
        let checker = match from_seq.checked_sub(1) {
            None => ChainChecker::new(),
            Some(anchor_seq) => {
                let anchor = self
                    .get_entry(EntryKey::Seq(anchor_seq))
                    .await?
                    .ok_or_else(|| ClientError::NotFound {
                        what: format!(
                            "entry {anchor_seq}, which anchors a subscription from {from_seq}"
                        ),
                    })?;
                ChainChecker::resume(from_seq, anchor.leaf_hash, anchor.recorded_at)
            }
        };
        let request = pb::SubscribeRequest { from_seq };
        // No deadline: a subscription lasts as long as the caller reads it.
        let streaming = self
            .call(
                "Subscribe",
                request,
                None,
                |mut ledger, request| async move { ledger.subscribe(request).await },
            )
            .await
            .map_err(ClientError::from_status)?;
        Ok(EntryStream::new(streaming, checker, self.origin.clone()))
    }

    /// The latest checkpoint, verified against the pinned key when there is
    /// one.
    ///
    /// # Errors
    ///
    /// [`ClientError::Verification`] when the note does not verify or its
    /// fields disagree with it; transport or server errors.
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint, ClientError> {
        let served = self
            .call(
                "GetCheckpoint",
                pb::GetCheckpointRequest::default(),
                Some(self.timeout),
                |mut ledger, request| async move { ledger.get_checkpoint(request).await },
            )
            .await
            .map_err(ClientError::from_status)?;
        check_checkpoint(&self.origin, self.verifier.as_ref(), served)
    }

    /// Fetches an entry and its inclusion proof in the latest checkpoint,
    /// and verifies both locally (RFC 9162 2.1.3.2; the checkpoint against
    /// the pinned key when there is one).
    ///
    /// An entry appended after the latest checkpoint cannot be proven until
    /// the next one; the ledger refuses such a request.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotFound`] when there is no such entry;
    /// [`ClientError::Verification`] when the entry, the checkpoint or the
    /// proof does not check out; a refusal, transport or server errors.
    pub async fn prove(&self, key: EntryKey) -> Result<Proven, ClientError> {
        let entry = self
            .get_entry(key.clone())
            .await?
            .ok_or_else(|| ClientError::NotFound {
                what: key.to_string(),
            })?;
        let request = pb::InclusionProofRequest {
            seq: entry.seq,
            // 0: the latest checkpoint (SPEC §6).
            tree_size: 0,
        };
        let served = self
            .call(
                "GetInclusionProof",
                request,
                Some(self.timeout),
                |mut ledger, request| async move { ledger.get_inclusion_proof(request).await },
            )
            .await
            .map_err(ClientError::from_status)?;
        let inclusion = check_inclusion(
            &self.origin,
            self.verifier.as_ref(),
            entry.seq,
            &entry.leaf_hash,
            served,
        )?;
        Ok(Proven { entry, inclusion })
    }

    /// Fetches the consistency proof between two checkpoints and verifies
    /// it: `old` is a prefix of `new`, so the log only grew between them.
    ///
    /// # Errors
    ///
    /// [`ClientError::Verification`] when the proof does not hold (the
    /// ledger forked, or rewrote history); what
    /// [`Client::consistency_proof`] returns.
    pub async fn verify_consistency(
        &self,
        old: &Checkpoint,
        new: &Checkpoint,
    ) -> Result<(), ClientError> {
        if old.size > new.size {
            return Err(ClientError::verification(format!(
                "the checkpoint of size {} is older than the one of size {}",
                new.size, old.size
            )));
        }
        if old.size == 0 {
            // An empty tree is a prefix of every tree, if it is empty.
            return if old.root == aidledger_tlog::EMPTY_ROOT {
                Ok(())
            } else {
                Err(ClientError::verification(
                    "a checkpoint of size 0 names a root other than the empty tree's",
                ))
            };
        }
        let proof = if old.size == new.size {
            // Nothing to fetch: equal sizes must have equal roots.
            Vec::new()
        } else {
            self.consistency_proof(old.size, new.size)
                .await?
                .into_iter()
                .map(Hash)
                .collect()
        };
        aidledger_tlog::verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
            .map_err(|error| {
                ClientError::verification(format!(
                    "the checkpoint of size {} is not a prefix of the one of size {}: {error}",
                    old.size, new.size
                ))
            })
    }

    /// Sends `message` with `send` to the current ledger. A standby's
    /// `NOT_LEADER` naming the writer sends it again to the writer at once;
    /// other transient failures move to the next ledger after a backoff.
    async fn call<Req, Resp, F, Fut>(
        &self,
        rpc: &'static str,
        message: Req,
        timeout: Option<Duration>,
        mut send: F,
    ) -> Result<Resp, Status>
    where
        Req: Clone,
        F: FnMut(LedgerClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let mut retry = 0;
        let mut redirects = 0;
        loop {
            let mut request = tonic::Request::new(message.clone());
            if let Some(timeout) = timeout {
                request.set_timeout(timeout);
            }
            let (index, ledger) = self.ledgers.current();
            let status = match send(ledger, request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if is_transient(&status) => status,
                Err(status) => return Err(status),
            };
            if let Some(Some(writer)) = cluster::not_leader(&status)
                && redirects < REDIRECTS_MAX
            {
                match self.ledgers.follow(&writer, index) {
                    Ok(true) => {
                        tracing::debug!(rpc, writer, "a standby named the writer; following");
                        redirects += 1;
                        continue;
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(rpc, writer, %error, "a standby named a writer that cannot be used");
                    }
                }
            }
            if retry >= self.retry.retries {
                return Err(status);
            }
            self.ledgers.move_on(index);
            let wait = self.retry.backoff(retry);
            tracing::debug!(
                rpc,
                retry,
                ?wait,
                code = code_name(status.code()),
                message = status.message(),
                next = self.ledgers.current_url(),
                "transient failure; retrying"
            );
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}

/// The origin to sign for: the one given, or the vkey's; both must agree.
fn resolve_origin(origin: &str, verifier: Option<&LogVerifier>) -> Result<String, ClientError> {
    let origin = match (origin.is_empty(), verifier) {
        (true, Some(verifier)) => verifier.origin().to_owned(),
        (true, None) => {
            return Err(ClientError::Config(
                "no origin: give the ledger's origin or its vkey".into(),
            ));
        }
        (false, Some(verifier)) if verifier.origin() != origin => {
            return Err(ClientError::Config(format!(
                "origin {origin:?} is not the vkey's origin {:?}",
                verifier.origin()
            )));
        }
        (false, _) => origin.to_owned(),
    };
    if !is_valid_origin(&origin) {
        return Err(ClientError::Config(format!(
            "origin {origin:?} is not a schema-less URL without spaces or '+' (SPEC §2)"
        )));
    }
    Ok(origin)
}

/// The endpoint with its TLS configuration; nothing is connected yet.
fn build_endpoint(
    url: &str,
    tls: Option<&TlsOptions>,
    connect_timeout: Duration,
) -> Result<Endpoint, ClientError> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|error| ClientError::Config(format!("endpoint {url:?}: {}", error_chain(&error))))?
        .connect_timeout(connect_timeout)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_while_idle(true);
    match (endpoint.uri().scheme_str(), tls) {
        (Some("http"), None) => Ok(endpoint),
        (Some("http"), Some(_)) => Err(ClientError::Config(format!(
            "TLS options were given for {url}, which is not https://"
        ))),
        (Some("https"), tls) => {
            let config = tls_config(tls.cloned().unwrap_or_default())?;
            endpoint.tls_config(config).map_err(|error| {
                ClientError::Config(format!("TLS for {url}: {}", error_chain(&error)))
            })
        }
        _ => Err(ClientError::Config(format!(
            "endpoint {url:?}: expected http://host:port or https://host:port"
        ))),
    }
}

fn tls_config(tls: TlsOptions) -> Result<ClientTlsConfig, ClientError> {
    let ca = tls.ca_pem.ok_or_else(|| {
        ClientError::Config(
            "an https:// endpoint needs the CA certificate of the ledger's server certificate (no system roots are built in)"
                .into(),
        )
    })?;
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    match (tls.client_cert_pem, tls.client_key_pem) {
        (Some(cert), Some(key)) => config = config.identity(Identity::from_pem(cert, key)),
        (None, None) => {}
        _ => {
            return Err(ClientError::Config(
                "a client certificate needs its key, and a key its certificate".into(),
            ));
        }
    }
    if let Some(domain) = tls.domain {
        config = config.domain_name(domain);
    }
    Ok(config)
}

/// An error and its sources, joined with ": ".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use aidledger_tlog::LogSigner;

    use super::*;

    fn vkey(origin: &str) -> LogVerifier {
        let signer = LogSigner::new(origin, SecretKey::from_seed(&[3; 32])).unwrap();
        LogVerifier::from_vkey(&signer.vkey()).unwrap()
    }

    #[test]
    fn the_origin_comes_from_the_options_or_the_vkey_and_they_must_agree() {
        let verifier = vkey("aid.example/log");
        assert_eq!(
            resolve_origin("", Some(&verifier)).unwrap(),
            "aid.example/log"
        );
        assert_eq!(
            resolve_origin("aid.example/log", Some(&verifier)).unwrap(),
            "aid.example/log"
        );
        assert_eq!(
            resolve_origin("aid.example/log", None).unwrap(),
            "aid.example/log"
        );
        assert!(matches!(
            resolve_origin("other.example/log", Some(&verifier)),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            resolve_origin("", None),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            resolve_origin("https://aid.example", None),
            Err(ClientError::Config(_))
        ));
    }

    #[test]
    fn endpoints_and_tls_options_must_match() {
        let timeout = Duration::from_secs(1);
        assert!(build_endpoint("http://127.0.0.1:50051", None, timeout).is_ok());
        let tls = TlsOptions {
            ca_pem: Some(b"unused".to_vec()),
            ..TlsOptions::default()
        };
        let config_error =
            |result: Result<Endpoint, ClientError>| matches!(result, Err(ClientError::Config(_)));
        assert!(config_error(build_endpoint(
            "http://127.0.0.1:1",
            Some(&tls),
            timeout
        )));
        assert!(config_error(build_endpoint(
            "https://127.0.0.1:1",
            None,
            timeout
        )));
        assert!(config_error(build_endpoint(
            "ftp://127.0.0.1:1",
            None,
            timeout
        )));
        assert!(config_error(build_endpoint("not a url", None, timeout)));
        let half_identity = TlsOptions {
            client_cert_pem: Some(b"cert".to_vec()),
            ..tls
        };
        assert!(config_error(build_endpoint(
            "https://127.0.0.1:1",
            Some(&half_identity),
            timeout
        )));
    }

    #[test]
    fn tls_options_never_print_the_key() {
        let tls = TlsOptions {
            client_key_pem: Some(b"-----BEGIN PRIVATE KEY----- secret".to_vec()),
            ..TlsOptions::default()
        };
        assert!(!format!("{tls:?}").contains("secret"));
    }

    #[tokio::test]
    async fn connecting_to_nothing_is_a_transport_error_after_the_retries() {
        // Port 9 (discard) on loopback: nothing listens in a test sandbox.
        let mut options = ConnectOptions::new("aid.example/log");
        options.retry = RetryPolicy {
            retries: 1,
            backoff_initial: Duration::from_millis(1),
            backoff_max: Duration::from_millis(1),
        };
        match Client::connect("http://127.0.0.1:9", options).await {
            Err(ClientError::Transport(message)) => {
                assert!(message.contains("after 2 attempts"), "{message}");
            }
            other => panic!("expected a transport error, got {other:?}"),
        }
    }
}
