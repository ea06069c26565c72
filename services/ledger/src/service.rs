//! `aidledger.v1.Ledger` over gRPC (SPEC §6).
//!
//! Appends go through the [`Ingest`] pipeline; reads go straight to the
//! store, which serves committed data only, so readers never wait for the
//! writer.

use std::pin::Pin;
use std::sync::Arc;

use aidledger_ledger::{CheckedEvent, Rejection};
use aidledger_store::{ENTRIES_PAGE_MAX, LogStore, StoreError};
use aidledger_tlog::{
    CheckpointError, LogVerifier, WitnessVerifier, add_signature_lines, leaf_hash,
    stored_hash_index,
};
use aidledger_wire::{Message, pb};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};

use crate::ingest::{Ingest, IngestError};
use crate::proofs;
use crate::rate_limit::RateLimiter;
use crate::sequencer::{Outcome, SignedCheckpoint, read_hash_range, verify_all};
use crate::status::{refusal, rejection_status};

/// Request limits, each with its reason.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Events in one AppendBatch: bounds the work one request can queue.
    pub batch_events_max: usize,
    /// Bytes of one request: bounds memory per request.
    pub request_bytes_max: usize,
    /// Entries one store read for a subscriber takes (once the entries a
    /// subscriber could lag by; the name is kept for configurations). With
    /// `subscribe_page_bytes` it bounds memory per stream: a page holds at
    /// most that many bytes and one read more (this many 64 KiB entries),
    /// and a stream holds at most three pages (one sending, one waiting,
    /// one being read): by default about 15 MiB at worst, 3 MiB for
    /// entries of the usual size.
    pub subscribe_buffer_max: usize,
    /// Bytes of entries a subscriber's page gathers before it is sent:
    /// enough that handing a page between tasks costs little per entry (a
    /// thousand or so entries of the usual size), small enough to bound a
    /// stream's memory.
    pub subscribe_page_bytes: usize,
    /// Request bytes being verified or queued for the writer at once, over
    /// all clients: bounds the memory appends can hold.
    pub in_flight_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            batch_events_max: 1_000,
            request_bytes_max: 16 * 1024 * 1024,
            subscribe_buffer_max: 64,
            subscribe_page_bytes: 1 << 20,
            in_flight_bytes_max: 256 * 1024 * 1024,
        }
    }
}

/// What readers see of the log's head: the committed size and the latest
/// signed checkpoint. The writer's pipeline feeds it on the writer; on a
/// standby, a poller of the shared store does.
#[derive(Clone, Debug)]
pub struct Head {
    /// Entries durable so far.
    pub committed: watch::Receiver<u64>,
    /// The latest signed checkpoint.
    pub checkpoint: watch::Receiver<Option<Arc<SignedCheckpoint>>>,
}

/// Where a standby sends writers: the address the writer advertised.
pub type WriterAddress = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// The service state shared by every request.
#[derive(Clone)]
pub struct LedgerService {
    origin: Arc<str>,
    store: Arc<dyn LogStore>,
    /// The writer's pipeline; `None` on a standby, which only reads.
    ingest: Option<Ingest>,
    head: Head,
    /// On a standby: the writer's address, for `NOT_LEADER`.
    writer_address: Option<WriterAddress>,
    limits: Limits,
    rate_limiter: Arc<RateLimiter>,
    closing: watch::Receiver<bool>,
    /// One permit per KiB of request in flight.
    in_flight: Arc<Semaphore>,
    /// The ledger's own checkpoint key, to read back the notes it signed.
    log_verifier: LogVerifier,
    /// The witnesses whose cosignatures the ledger records.
    witnesses: Arc<[WitnessVerifier]>,
}

/// Who may cosign the ledger's checkpoints.
#[derive(Clone, Debug)]
pub struct Cosigning {
    /// The ledger's checkpoint verifier key.
    pub log_verifier: LogVerifier,
    /// The witnesses whose cosignatures are recorded; others are refused, so
    /// nobody can grow the store or the served notes with lines no client
    /// has reason to trust.
    pub witnesses: Vec<WitnessVerifier>,
}

impl std::fmt::Debug for LedgerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerService")
            .field("origin", &self.origin)
            .field("standby", &self.ingest.is_none())
            .finish_non_exhaustive()
    }
}

impl LedgerService {
    /// A standby's service: reads from the shared store, whose head `head`
    /// follows; appends and cosignatures are refused with `NOT_LEADER`,
    /// naming the writer.
    pub fn standby(
        origin: &str,
        store: Arc<dyn LogStore>,
        head: Head,
        writer_address: WriterAddress,
        limits: Limits,
        closing: watch::Receiver<bool>,
        cosigning: Cosigning,
    ) -> Self {
        LedgerService {
            log_verifier: cosigning.log_verifier,
            witnesses: cosigning.witnesses.into(),
            origin: origin.into(),
            store,
            ingest: None,
            head,
            writer_address: Some(writer_address),
            in_flight: Arc::new(Semaphore::new(
                (limits.in_flight_bytes_max / 1024).clamp(1, Semaphore::MAX_PERMITS),
            )),
            limits,
            rate_limiter: Arc::new(RateLimiter::new(0.0, 1.0)),
            closing,
        }
    }

    /// The writer's pipeline, or `NOT_LEADER` on a standby.
    fn writer(&self) -> Result<&Ingest, Status> {
        self.ingest.as_ref().ok_or_else(|| {
            let address = self
                .writer_address
                .as_ref()
                .and_then(|address| address())
                .filter(|address| !address.is_empty());
            let detail = match &address {
                Some(address) => format!("this ledger is a standby; the writer is at {address}"),
                None => "this ledger is a standby and no writer is known yet".to_owned(),
            };
            crate::status::refusal_with(
                Code::Unavailable,
                "NOT_LEADER",
                &detail,
                address.map(|address| ("writer".to_owned(), address)),
            )
        })
    }

    /// The service over a running ingest pipeline.
    pub fn new(
        origin: &str,
        store: Arc<dyn LogStore>,
        ingest: Ingest,
        limits: Limits,
        rate_limiter: Arc<RateLimiter>,
        closing: watch::Receiver<bool>,
        cosigning: Cosigning,
    ) -> Self {
        LedgerService {
            log_verifier: cosigning.log_verifier,
            witnesses: cosigning.witnesses.into(),
            origin: origin.into(),
            store,
            head: ingest.head(),
            ingest: Some(ingest),
            writer_address: None,
            in_flight: Arc::new(Semaphore::new(
                (limits.in_flight_bytes_max / 1024).clamp(1, Semaphore::MAX_PERMITS),
            )),
            limits,
            rate_limiter,
            closing,
        }
    }

    /// Waits until `len` more request bytes fit in memory.
    async fn admit(&self, len: usize) -> Result<OwnedSemaphorePermit, Status> {
        // A request larger than the whole budget waits for all of it, not
        // forever.
        let budget = (self.limits.in_flight_bytes_max / 1024).max(1);
        let permits = u32::try_from((len / 1024).clamp(1, budget)).unwrap_or(u32::MAX);
        self.in_flight
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| Status::unavailable("the ledger is shutting down"))
    }

    /// Verifies on all cores, then applies the per-key rate limit to the
    /// keys that proved themselves.
    async fn verify(
        &self,
        events: Vec<pb::SignedEvent>,
    ) -> Result<Vec<Result<CheckedEvent, Rejection>>, Status> {
        let origin = self.origin.clone();
        // Straight onto rayon's pool (one thread per core): verification is
        // CPU-bound, and a blocking-pool thread in between only adds a hop.
        let (done, verified) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let _ = done.send(verify_all(&origin, events));
        });
        let checked = verified
            .await
            .map_err(|e| Status::internal(format!("verifying signatures: {e}")))?;
        Ok(checked
            .into_iter()
            .map(|result| {
                result.and_then(|checked| {
                    // SPEC §6: resubmitting an identical event returns the
                    // original seq, so a retry over the rate is not refused;
                    // the store is asked only when the limit would refuse.
                    let allowed = self.rate_limiter.allow(&checked.signer.0)
                        || matches!(
                            self.store.seq_of_event(&checked.event.event_id),
                            Ok(Some(_))
                        );
                    if allowed {
                        Ok(checked)
                    } else {
                        Err(Rejection::new(
                            aidledger_ledger::Reason::RateLimited,
                            format!("key {} is over its rate limit; retry later", checked.signer),
                        ))
                    }
                })
            })
            .collect())
    }

    fn entry_at(&self, seq: u64) -> Result<Vec<u8>, Status> {
        self.store
            .entry(seq)
            .map_err(store_status)?
            .ok_or_else(|| refusal(Code::NotFound, "NOT_FOUND", &format!("no entry {seq}")))
    }

    fn checkpoint_pb(signed: &SignedCheckpoint) -> pb::Checkpoint {
        pb::Checkpoint {
            note: signed.note.clone(),
            size: signed.checkpoint.size,
            root_hash: signed.checkpoint.root.0.to_vec().into(),
        }
    }

    fn latest(&self) -> Result<Arc<SignedCheckpoint>, Status> {
        self.head.checkpoint.borrow().clone().ok_or_else(|| {
            refusal(
                Code::Unavailable,
                "NO_CHECKPOINT",
                "the ledger has not signed a checkpoint yet",
            )
        })
    }

    fn inclusion(&self, seq: u64, tree_size: u64) -> Result<pb::InclusionProof, Status> {
        let hashes =
            proofs::inclusion_proof(self.store.as_ref(), seq, tree_size).map_err(proof_status)?;
        let checkpoint = match self.store.checkpoint_at(tree_size).map_err(store_status)? {
            Some(note) => Some(pb::Checkpoint {
                note: self.with_cosignatures(tree_size, &note)?,
                size: tree_size,
                root_hash: proofs::tree_root(self.store.as_ref(), tree_size)
                    .map_err(|e| Status::internal(e.to_string()))?
                    .0
                    .to_vec()
                    .into(),
            }),
            None => None,
        };
        Ok(pb::InclusionProof {
            seq,
            tree_size,
            hashes: hashes.into_iter().map(|h| h.0.to_vec().into()).collect(),
            checkpoint,
        })
    }

    /// The checkpoint the ledger signed at `size`, its note carrying every
    /// cosignature recorded for it.
    fn checkpoint_at(&self, size: u64) -> Result<pb::Checkpoint, Status> {
        // The latest checkpoint is in memory; an older one is read back and
        // its note verified, so its root is the signed one.
        let latest = self
            .head
            .checkpoint
            .borrow()
            .clone()
            .filter(|latest| latest.checkpoint.size == size);
        let (note, root) = match latest {
            Some(latest) => (latest.note.clone(), latest.checkpoint.root),
            None => {
                let note = self
                    .store
                    .checkpoint_at(size)
                    .map_err(store_status)?
                    .ok_or_else(|| {
                        refusal(
                            Code::NotFound,
                            "NO_CHECKPOINT_AT_SIZE",
                            &format!("the ledger signed no checkpoint at tree size {size}"),
                        )
                    })?;
                let checkpoint = self.log_verifier.verify(&note).map_err(|error| {
                    Status::internal(format!(
                        "the stored checkpoint at size {size} does not verify: {error}"
                    ))
                })?;
                (note, checkpoint.root)
            }
        };
        Ok(pb::Checkpoint {
            note: self.with_cosignatures(size, &note)?,
            size,
            root_hash: root.0.to_vec().into(),
        })
    }

    /// `note` with the cosignature lines recorded for its size appended.
    fn with_cosignatures(&self, size: u64, note: &str) -> Result<String, Status> {
        let lines = self.store.cosignatures(size).map_err(store_status)?;
        Ok(add_signature_lines(
            note,
            lines.iter().map(|(_, line)| line.as_str()),
        ))
    }

    fn committed_size(&self) -> u64 {
        *self.head.committed.borrow()
    }
}

/// A page of entries from `start` as served, each with the leaf hash
/// stored when it was appended (SPEC §4: the hash of its bytes, which every
/// reader checks; the writer checks them all when it opens the store),
/// read as one range of stored hashes rather than hashed again for every
/// subscriber.
fn entries_with_leaf_hashes(
    store: &dyn LogStore,
    start: u64,
    limit: usize,
) -> Result<Vec<pb::Entry>, StoreError> {
    let page = store.entries(start, limit)?;
    let (Some(&(first, _)), Some(&(last, _))) = (page.first(), page.last()) else {
        return Ok(Vec::new());
    };
    // Leaf n is stored at index 2n - popcount(n), its subtrees' hashes
    // after it: the page's leaves lie in one range, with others between.
    let first_index = stored_hash_index(0, first);
    let count = stored_hash_index(0, last) + 1 - first_index;
    let hashes = read_hash_range(store, first_index, count)?;
    Ok(page
        .into_iter()
        .map(|(seq, entry)| pb::Entry {
            seq,
            leaf_hash: hashes[(stored_hash_index(0, seq) - first_index) as usize]
                .to_vec()
                .into(),
            entry: entry.into(),
        })
        .collect())
}

/// How a subscriber's stream reads the log: in store reads of at most
/// `read_max` entries, gathered into a page until it holds `bytes_max`
/// bytes or [`ENTRIES_PAGE_MAX`] entries, or reaches the committed size.
#[derive(Clone, Copy)]
struct SubscribePage {
    read_max: usize,
    bytes_max: usize,
}

impl SubscribePage {
    fn new(limits: &Limits) -> Self {
        SubscribePage {
            read_max: limits.subscribe_buffer_max.clamp(1, ENTRIES_PAGE_MAX),
            bytes_max: limits.subscribe_page_bytes,
        }
    }

    /// The entries from `start` on, below `size`: at least one read's
    /// worth, whatever `bytes_max`, and up to the first entry the store
    /// lacks. Empty only if it lacks entry `start`, which the caller
    /// reports.
    fn read(
        self,
        store: &dyn LogStore,
        start: u64,
        size: u64,
    ) -> Result<Vec<pb::Entry>, StoreError> {
        let mut page: Vec<pb::Entry> = Vec::new();
        let mut bytes = 0;
        let mut next = start;
        loop {
            let limit = usize::try_from(size - next)
                .unwrap_or(usize::MAX)
                .min(self.read_max)
                .min(ENTRIES_PAGE_MAX - page.len());
            let read = entries_with_leaf_hashes(store, next, limit)?;
            let whole = read.len() == limit;
            for entry in read {
                // A store lacking an entry returns the ones after it: the
                // page ends before the gap, so that none is skipped.
                if entry.seq != next {
                    return Ok(page);
                }
                next += 1;
                bytes += entry.entry.len();
                page.push(entry);
            }
            if !whole || next >= size || page.len() >= ENTRIES_PAGE_MAX || bytes >= self.bytes_max {
                return Ok(page);
            }
        }
    }
}

/// A stream of entries from a channel of pages of them.
struct PagedEntries {
    pages: mpsc::Receiver<Result<Vec<pb::Entry>, Status>>,
    page: std::vec::IntoIter<pb::Entry>,
    /// Set as the ledger stops: a stream that ends then ends in
    /// `UNAVAILABLE`, even when its task found the channel full and could
    /// not say so.
    closing: watch::Receiver<bool>,
    /// Whether an error was yielded: the stream's last item.
    failed: bool,
}

impl Stream for PagedEntries {
    type Item = Result<pb::Entry, Status>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        loop {
            if let Some(entry) = self.page.next() {
                return std::task::Poll::Ready(Some(Ok(entry)));
            }
            match std::task::ready!(self.pages.poll_recv(context)) {
                Some(Ok(page)) => self.page = page.into_iter(),
                Some(Err(status)) => {
                    self.failed = true;
                    return std::task::Poll::Ready(Some(Err(status)));
                }
                None if !self.failed && *self.closing.borrow() => {
                    self.failed = true;
                    return std::task::Poll::Ready(Some(Err(stopping())));
                }
                None => return std::task::Poll::Ready(None),
            }
        }
    }
}

/// A read the store failed. A storage failure (the database restarting, a
/// broken connection) is `UNAVAILABLE`, which clients retry; stored data
/// that contradicts itself is the server's fault.
fn store_status(error: StoreError) -> Status {
    let message = format!("reading the log: {error}");
    match error {
        StoreError::Io { .. } => Status::unavailable(message),
        _ => Status::internal(message),
    }
}

fn stopping() -> Status {
    refusal(
        Code::Unavailable,
        "LEDGER_STOPPING",
        "the ledger is shutting down; resubscribe from the next seq",
    )
}

/// A proof the store could not read is the server's failure, not a bad request.
fn proof_status(error: aidledger_tlog::ProofError) -> Status {
    match error {
        aidledger_tlog::ProofError::Read(detail) => {
            Status::internal(format!("reading tree hashes: {detail}"))
        }
        other => refusal(
            Code::InvalidArgument,
            "BAD_PROOF_REQUEST",
            &other.to_string(),
        ),
    }
}

fn ingest_status(error: IngestError) -> Status {
    refusal(Code::Unavailable, "LEDGER_STOPPED", &error.to_string())
}

fn append_result(outcome: &Result<Outcome, Rejection>, store: &dyn LogStore) -> pb::AppendResult {
    match outcome {
        Ok(Outcome::Appended { seq, leaf_hash, .. }) => pb::AppendResult {
            seq: *seq,
            leaf_hash: leaf_hash.0.to_vec().into(),
            ..Default::default()
        },
        Ok(Outcome::Duplicate { seq }) => match proofs::leaf_hash(store, *seq) {
            Ok(leaf) => pb::AppendResult {
                seq: *seq,
                leaf_hash: leaf.0.to_vec().into(),
                duplicate: true,
                ..Default::default()
            },
            Err(error) => pb::AppendResult {
                seq: *seq,
                code: Code::Internal as i32,
                message: format!(
                    "the event is at seq {seq}, but reading its leaf hash failed: {error}"
                ),
                duplicate: true,
                ..Default::default()
            },
        },
        Err(rejection) => pb::AppendResult {
            code: rejection.code().as_i32(),
            message: format!("{}: {}", rejection.reason, rejection.detail),
            reason: rejection.reason.as_str().into(),
            ..Default::default()
        },
    }
}

type EntryStream = Pin<Box<dyn Stream<Item = Result<pb::Entry, Status>> + Send>>;

#[tonic::async_trait]
impl pb::ledger_server::Ledger for LedgerService {
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let request = request.into_inner();
        // The decoder has already refused anything over request_bytes_max.
        let _admitted = self.admit(request.encoded_len()).await?;
        let Some(event) = request.event else {
            return Err(refusal(
                Code::InvalidArgument,
                "MISSING_FIELD",
                "AppendRequest.event is required",
            ));
        };
        let writer = self.writer()?;
        let checked = self.verify(vec![event]).await?;
        let result = writer
            .append(checked, request.wait_for_checkpoint)
            .await
            .map_err(ingest_status)?;
        let outcome = result
            .outcomes
            .into_iter()
            .next()
            .expect("one outcome per event");
        let (seq, leaf, entry, duplicate) = match outcome {
            Ok(Outcome::Appended {
                seq,
                leaf_hash,
                entry,
            }) => (seq, leaf_hash, entry, false),
            Ok(Outcome::Duplicate { seq }) => {
                let entry = self.entry_at(seq)?;
                (seq, leaf_hash(&entry), entry, true)
            }
            Err(rejection) => return Err(rejection_status(&rejection)),
        };
        let mut response = pb::AppendResponse {
            seq,
            leaf_hash: leaf.0.to_vec().into(),
            entry: entry.into(),
            duplicate,
            checkpoint: None,
            proof: None,
        };
        if request.wait_for_checkpoint {
            let checkpoint = match result.checkpoint {
                Some(checkpoint) if checkpoint.checkpoint.size > seq => checkpoint,
                // A duplicate of an entry older than the batch: the latest
                // checkpoint covers it.
                _ => self.latest()?,
            };
            let mut proof = self.inclusion(seq, checkpoint.checkpoint.size)?;
            proof.checkpoint = Some(Self::checkpoint_pb(&checkpoint));
            response.checkpoint = Some(Self::checkpoint_pb(&checkpoint));
            response.proof = Some(proof);
        }
        Ok(Response::new(response))
    }

    async fn append_batch(
        &self,
        request: Request<pb::AppendBatchRequest>,
    ) -> Result<Response<pb::AppendBatchResponse>, Status> {
        let request = request.into_inner();
        // The decoder has already refused anything over request_bytes_max.
        let _admitted = self.admit(request.encoded_len()).await?;
        if request.events.len() > self.limits.batch_events_max {
            return Err(refusal(
                Code::ResourceExhausted,
                "BATCH_TOO_LARGE",
                &format!(
                    "the batch has {} events, over the limit of {}",
                    request.events.len(),
                    self.limits.batch_events_max
                ),
            ));
        }
        if request.events.is_empty() {
            return Ok(Response::new(pb::AppendBatchResponse::default()));
        }
        let writer = self.writer()?;
        let checked = self.verify(request.events).await?;
        let result = writer.append(checked, false).await.map_err(ingest_status)?;
        let results = result
            .outcomes
            .iter()
            .map(|outcome| append_result(outcome, self.store.as_ref()))
            .collect();
        Ok(Response::new(pb::AppendBatchResponse { results }))
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::Entry>, Status> {
        let seq = match request.into_inner().key {
            Some(pb::get_entry_request::Key::Seq(seq)) => seq,
            Some(pb::get_entry_request::Key::EventId(event_id)) => self
                .store
                .seq_of_event(&event_id)
                .map_err(store_status)?
                .ok_or_else(|| {
                    refusal(
                        Code::NotFound,
                        "NOT_FOUND",
                        &format!("no event with id {event_id:?}"),
                    )
                })?,
            None => {
                return Err(refusal(
                    Code::InvalidArgument,
                    "MISSING_FIELD",
                    "GetEntryRequest needs a seq or an event_id",
                ));
            }
        };
        let entry = self.entry_at(seq)?;
        Ok(Response::new(pb::Entry {
            seq,
            leaf_hash: leaf_hash(&entry).0.to_vec().into(),
            entry: entry.into(),
        }))
    }

    type SubscribeStream = EntryStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let from_seq = request.into_inner().from_seq;
        // Pages, not entries, cross the channel: one hand-off per page
        // rather than per entry. One page waits while the next is read.
        let (sender, receiver) = mpsc::channel::<Result<Vec<pb::Entry>, Status>>(1);
        let store = self.store.clone();
        let mut committed = self.head.committed.clone();
        let mut closing = self.closing.clone();
        let page = SubscribePage::new(&self.limits);
        tokio::spawn(async move {
            let _counted = crate::metrics::Subscriber::new();
            let mut next = from_seq;
            loop {
                let size = *committed.borrow_and_update();
                // Every entry below `size` is committed, so reading by seq
                // from `next` can neither skip nor repeat one.
                while next < size {
                    let store = store.clone();
                    let read =
                        tokio::task::spawn_blocking(move || page.read(store.as_ref(), next, size))
                            .await;
                    let entries = match read {
                        Ok(Ok(entries)) if !entries.is_empty() => entries,
                        Ok(Ok(_)) => {
                            let _ = sender
                                .send(Err(Status::internal(format!("entry {next} is missing"))))
                                .await;
                            return;
                        }
                        Ok(Err(error)) => {
                            let _ = sender.send(Err(store_status(error))).await;
                            return;
                        }
                        Err(error) => {
                            let _ = sender.send(Err(Status::internal(error.to_string()))).await;
                            return;
                        }
                    };
                    debug_assert_eq!(entries[0].seq, next);
                    let after = next + entries.len() as u64;
                    // A subscriber that stops reading must not hold up
                    // shutdown.
                    tokio::select! {
                        sent = sender.send(Ok(entries)) => if sent.is_err() {
                            return; // the subscriber went away
                        },
                        _ = closing.wait_for(|closing| *closing) => {
                            let _ = sender.try_send(Err(stopping()));
                            return;
                        }
                    }
                    next = after;
                }
                // The ledger shutting down ends every stream, so graceful
                // shutdown is not held up by idle subscribers.
                tokio::select! {
                    changed = committed.changed() => if changed.is_err() { return },
                    _ = closing.wait_for(|closing| *closing) => {
                        // Not a normal end: the client should reconnect.
                        let _ = sender.try_send(Err(stopping()));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(PagedEntries {
            pages: receiver,
            page: Vec::new().into_iter(),
            closing: self.closing.clone(),
            failed: false,
        })))
    }

    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::Checkpoint>, Status> {
        let request = request.into_inner();
        let size = match (request.tree_size, request.cosignatures_min) {
            (0, 0) => self.latest()?.checkpoint.size,
            (size, 0) => size,
            (0, witnesses_min) => self
                .store
                .latest_cosigned(witnesses_min as usize)
                .map_err(store_status)?
                .ok_or_else(|| {
                    refusal(
                        Code::NotFound,
                        "NO_COSIGNED_CHECKPOINT",
                        &format!("no checkpoint carries {witnesses_min} cosignatures"),
                    )
                })?,
            (_, _) => {
                return Err(refusal(
                    Code::InvalidArgument,
                    "BAD_CHECKPOINT_REQUEST",
                    "give tree_size or cosignatures_min, not both",
                ));
            }
        };
        Ok(Response::new(self.checkpoint_at(size)?))
    }

    async fn add_cosignature(
        &self,
        request: Request<pb::AddCosignatureRequest>,
    ) -> Result<Response<pb::AddCosignatureResponse>, Status> {
        self.writer()?;
        let note = request.into_inner().note;
        // The note must be one the ledger signed: its own signature line
        // verifies, and it is the note stored for that size.
        let checkpoint = self.log_verifier.verify(&note).map_err(|error| {
            refusal(
                Code::InvalidArgument,
                "BAD_CHECKPOINT",
                &format!("the note is not a checkpoint signed by this ledger: {error}"),
            )
        })?;
        let size = checkpoint.size;
        let stored = self.checkpoint_at(size)?;
        if stored.root_hash[..] != checkpoint.root.0 {
            // Cannot happen unless the ledger key signed two trees of one size.
            return Err(Status::internal(format!(
                "the note's root differs from the checkpoint stored at size {size}"
            )));
        }
        let mut cosignatures = Vec::new();
        for witness in self.witnesses.iter() {
            match witness.verify(&note) {
                Ok(cosignature) => cosignatures.push(cosignature),
                Err(CheckpointError::MissingSignature { .. }) => {}
                Err(error) => {
                    return Err(refusal(
                        Code::Unauthenticated,
                        "BAD_COSIGNATURE",
                        &format!("checkpoint at size {size}: {error}"),
                    ));
                }
            }
        }
        if cosignatures.is_empty() {
            let known: Vec<String> = self.witnesses.iter().map(|w| w.id()).collect();
            return Err(refusal(
                Code::Unauthenticated,
                "UNKNOWN_WITNESS",
                &format!(
                    "the note carries no cosignature by a witness this ledger records (known: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        let store = self.store.clone();
        let recorded = cosignatures.clone();
        // A write transaction waits for the writer's; keep it off the runtime.
        tokio::task::spawn_blocking(move || {
            recorded.iter().try_for_each(|cosignature| {
                store.put_cosignature(size, &cosignature.witness, &cosignature.line)
            })
        })
        .await
        .map_err(|error| Status::internal(format!("recording cosignatures: {error}")))?
        .map_err(|error| Status::internal(format!("recording cosignatures: {error}")))?;
        tracing::info!(
            size,
            witnesses = ?cosignatures.iter().map(|c| &c.witness).collect::<Vec<_>>(),
            "recorded cosignatures"
        );
        Ok(Response::new(pb::AddCosignatureResponse {
            witnesses: cosignatures.into_iter().map(|c| c.witness).collect(),
            checkpoint: Some(self.checkpoint_at(size)?),
        }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::InclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        let request = request.into_inner();
        let (tree_size, latest) = if request.tree_size == 0 {
            let latest = self.latest()?;
            (latest.checkpoint.size, Some(latest))
        } else {
            (request.tree_size, None)
        };
        if tree_size > self.committed_size() {
            return Err(refusal(
                Code::OutOfRange,
                "BEYOND_TREE",
                &format!(
                    "tree size {tree_size} is beyond the log's {} entries",
                    self.committed_size()
                ),
            ));
        }
        if request.seq >= tree_size {
            return Err(refusal(
                Code::InvalidArgument,
                "BAD_PROOF_REQUEST",
                &format!(
                    "entry {} is not in the tree of size {tree_size}",
                    request.seq
                ),
            ));
        }
        let mut proof = self.inclusion(request.seq, tree_size)?;
        if let Some(latest) = latest {
            proof.checkpoint = Some(Self::checkpoint_pb(&latest));
        }
        Ok(Response::new(proof))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::ConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        let request = request.into_inner();
        let new_size = if request.new_size == 0 {
            self.latest()?.checkpoint.size
        } else {
            request.new_size
        };
        if new_size > self.committed_size() {
            return Err(refusal(
                Code::OutOfRange,
                "BEYOND_TREE",
                &format!(
                    "tree size {new_size} is beyond the log's {} entries",
                    self.committed_size()
                ),
            ));
        }
        let hashes = proofs::consistency_proof(self.store.as_ref(), request.old_size, new_size)
            .map_err(proof_status)?;
        Ok(Response::new(pb::ConsistencyProof {
            old_size: request.old_size,
            new_size,
            hashes: hashes.into_iter().map(|h| h.0.to_vec().into()).collect(),
        }))
    }
}
