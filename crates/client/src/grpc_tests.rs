//! The client against an in-process fake of the `Ledger` service (the real
//! one lives in `services/ledger`): the wire glue, retries, refusals with
//! rich details, lookups that find nothing, subscriptions and proofs, and a
//! lying server caught.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aidledger_wire::pb::ledger_server::{Ledger, LedgerServer};
use aidledger_wire::{Message as _, pb};
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::test_support::{Fixture, ORIGIN};
use crate::{Client, ClientError, Code, ConnectOptions, EntryKey, RetryPolicy};

/// How the fake misbehaves.
#[derive(Default)]
struct Faults {
    /// Answer this many appends with UNAVAILABLE first.
    unavailable_appends: AtomicU32,
    /// Leave this seq out of subscriptions (a gap).
    skip_in_stream: Option<u64>,
}

struct FakeLedger {
    fixture: Mutex<Fixture>,
    faults: Faults,
    append_calls: AtomicU32,
}

/// A refusal shaped as SPEC §6 and `services/ledger` send it.
fn refusal(code: Code, reason: &str, detail: &str) -> Status {
    Status::with_error_details(
        code,
        format!("{reason}: {detail}"),
        ErrorDetails::with_error_info(reason, crate::ERROR_DOMAIN, HashMap::new()),
    )
}

#[tonic::async_trait]
impl Ledger for FakeLedger {
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        self.append_calls.fetch_add(1, Ordering::SeqCst);
        let unavailable = &self.faults.unavailable_appends;
        if unavailable
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Status::unavailable("warming up"));
        }
        let request = request.into_inner();
        let signed = request.event.unwrap_or_default();
        let event = pb::Event::decode(signed.event.as_ref())
            .map_err(|e| refusal(Code::InvalidArgument, "UNDECODABLE_EVENT", &e.to_string()))?;
        if let Some(pb::event::Body::Receipt(receipt)) = &event.body
            && receipt.quantity > 100
        {
            return Err(refusal(
                Code::FailedPrecondition,
                "INSUFFICIENT_BALANCE",
                "the balance is 100",
            ));
        }
        let mut fixture = self.fixture.lock().unwrap();
        let existing = fixture.signed_events.iter().position(|s| *s == signed);
        let (seq, duplicate) = match existing {
            Some(seq) => (seq as u64, true),
            None => (fixture.push(signed), false),
        };
        let served = fixture.served(seq);
        let (checkpoint, proof) = if request.wait_for_checkpoint {
            (Some(fixture.checkpoint()), Some(fixture.proof(seq)))
        } else {
            (None, None)
        };
        Ok(Response::new(pb::AppendResponse {
            seq,
            leaf_hash: served.leaf_hash,
            entry: served.entry,
            duplicate,
            checkpoint,
            proof,
        }))
    }

    async fn append_batch(
        &self,
        request: Request<pb::AppendBatchRequest>,
    ) -> Result<Response<pb::AppendBatchResponse>, Status> {
        let mut results = Vec::new();
        for event in request.into_inner().events {
            let request = Request::new(pb::AppendRequest {
                event: Some(event),
                wait_for_checkpoint: false,
            });
            results.push(match self.append(request).await {
                Ok(response) => {
                    let response = response.into_inner();
                    pb::AppendResult {
                        seq: response.seq,
                        leaf_hash: response.leaf_hash,
                        duplicate: response.duplicate,
                        ..Default::default()
                    }
                }
                Err(status) => pb::AppendResult {
                    code: status.code() as i32,
                    message: status.message().to_owned(),
                    reason: status
                        .get_details_error_info()
                        .map(|info| info.reason)
                        .unwrap_or_default(),
                    ..Default::default()
                },
            });
        }
        Ok(Response::new(pb::AppendBatchResponse { results }))
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::Entry>, Status> {
        let fixture = self.fixture.lock().unwrap();
        let seq = match request.into_inner().key {
            Some(pb::get_entry_request::Key::Seq(seq)) => Some(seq),
            Some(pb::get_entry_request::Key::EventId(id)) => fixture
                .signed_events
                .iter()
                .position(|s| pb::Event::decode(s.event.as_ref()).unwrap().event_id == id)
                .map(|seq| seq as u64),
            None => None,
        };
        match seq.filter(|&seq| seq < fixture.size()) {
            Some(seq) => Ok(Response::new(fixture.served(seq))),
            None => Err(refusal(Code::NotFound, "NOT_FOUND", "no such entry")),
        }
    }

    type SubscribeStream = Pin<Box<dyn Stream<Item = Result<pb::Entry, Status>> + Send>>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let from = request.into_inner().from_seq;
        let fixture = self.fixture.lock().unwrap();
        let entries: Vec<Result<pb::Entry, Status>> = (from..fixture.size())
            .filter(|&seq| Some(seq) != self.faults.skip_in_stream)
            .map(|seq| Ok(fixture.served(seq)))
            .collect();
        // Ends after the last entry: a real ledger keeps the stream open.
        Ok(Response::new(Box::pin(tokio_stream::iter(entries))))
    }

    async fn get_checkpoint(
        &self,
        _request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::Checkpoint>, Status> {
        Ok(Response::new(self.fixture.lock().unwrap().checkpoint()))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::InclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        let request = request.into_inner();
        let fixture = self.fixture.lock().unwrap();
        if request.tree_size != 0 || request.seq >= fixture.size() {
            return Err(refusal(
                Code::OutOfRange,
                "OUT_OF_RANGE",
                "not in the latest tree",
            ));
        }
        Ok(Response::new(fixture.proof(request.seq)))
    }

    async fn get_consistency_proof(
        &self,
        _request: Request<pb::ConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn add_cosignature(
        &self,
        _request: Request<pb::AddCosignatureRequest>,
    ) -> Result<Response<pb::AddCosignatureResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
}

/// Serves a fake ledger of `count` entries on a loopback port; returns its
/// URL and the vkey of its checkpoint key.
async fn serve(count: u64, faults: Faults) -> (String, String, std::sync::Arc<FakeLedger>) {
    let fixture = Fixture::new(count);
    let vkey = fixture.signer.vkey();
    let ledger = std::sync::Arc::new(FakeLedger {
        fixture: Mutex::new(fixture),
        faults,
        append_calls: AtomicU32::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = LedgerServer::from_arc(ledger.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (url, vkey, ledger)
}

fn options(vkey: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new("");
    options.vkey = Some(vkey.to_owned());
    options.retry = RetryPolicy {
        retries: 3,
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
    };
    options
}

fn receipt(quantity: u64) -> pb::Event {
    pb::Event {
        event_id: format!("00000000-0000-4000-9000-{quantity:012x}"),
        org_id: "agency-1".into(),
        occurred_at: Some(aidledger_wire::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        body: Some(pb::event::Body::Receipt(pb::Receipt {
            quantity,
            ..Default::default()
        })),
    }
}

#[tokio::test]
async fn append_retries_transient_failures_and_is_idempotent() {
    let faults = Faults {
        unavailable_appends: AtomicU32::new(2),
        ..Faults::default()
    };
    let (url, vkey, ledger) = serve(3, faults).await;
    let client = Client::connect(&url, options(&vkey)).await.unwrap();
    assert_eq!(client.origin(), ORIGIN);
    let key = Fixture::new(0).actor;
    let signed = client.sign(&key, &receipt(7));

    let appended = client.append(signed.clone(), true).await.unwrap();
    assert_eq!(appended.seq, 3);
    assert!(!appended.duplicate);
    let inclusion = appended.inclusion.expect("waited for a checkpoint");
    assert!(inclusion.checkpoint.signature_verified);
    assert_eq!(inclusion.checkpoint.checkpoint.size, 4);
    assert_eq!(ledger.append_calls.load(Ordering::SeqCst), 3, "two retries");

    let again = client.append(signed, false).await.unwrap();
    assert_eq!(again.seq, 3);
    assert!(again.duplicate);
}

#[tokio::test]
async fn refusals_carry_code_and_reason() {
    let (url, vkey, _ledger) = serve(1, Faults::default()).await;
    let client = Client::connect(&url, options(&vkey)).await.unwrap();
    let key = Fixture::new(0).actor;
    match client.append(client.sign(&key, &receipt(500)), false).await {
        Err(ClientError::Rejected(rejected)) => {
            assert_eq!(rejected.code, Code::FailedPrecondition);
            assert_eq!(rejected.reason, "INSUFFICIENT_BALANCE");
            assert_eq!(rejected.message, "the balance is 100");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let results = client
        .append_batch(vec![
            client.sign(&key, &receipt(5)),
            client.sign(&key, &receipt(500)),
            client.sign(&key, &receipt(5)),
        ])
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().seq, 1);
    assert_eq!(
        results[1].as_ref().unwrap_err().reason,
        "INSUFFICIENT_BALANCE"
    );
    assert!(results[2].as_ref().unwrap().duplicate);
}

#[tokio::test]
async fn entries_are_found_by_seq_or_event_id_or_not_at_all() {
    let (url, vkey, _ledger) = serve(4, Faults::default()).await;
    let client = Client::connect(&url, options(&vkey)).await.unwrap();
    let entry = client.get_entry(EntryKey::Seq(2)).await.unwrap().unwrap();
    assert_eq!(entry.seq, 2);
    let by_id = client
        .get_entry(EntryKey::EventId(entry.event.event_id.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id, entry);
    assert_eq!(client.get_entry(EntryKey::Seq(9)).await.unwrap(), None);
}

#[tokio::test]
async fn a_subscription_is_anchored_and_chain_checked() {
    let (url, vkey, _ledger) = serve(6, Faults::default()).await;
    let client = Client::connect(&url, options(&vkey)).await.unwrap();
    let entries: Vec<u64> = client
        .subscribe(2)
        .await
        .unwrap()
        .map(|entry| entry.unwrap().seq)
        .collect()
        .await;
    assert_eq!(entries, [2, 3, 4, 5]);
    match client.subscribe(9).await {
        Err(ClientError::NotFound { what }) => assert!(what.contains("entry 8"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn a_gap_in_the_stream_is_caught_and_ends_it() {
    let faults = Faults {
        skip_in_stream: Some(3),
        ..Faults::default()
    };
    let (url, vkey, _ledger) = serve(6, faults).await;
    let client = Client::connect(&url, options(&vkey)).await.unwrap();
    let items: Vec<Result<u64, String>> = client
        .subscribe(0)
        .await
        .unwrap()
        .map(|entry| entry.map(|e| e.seq).map_err(|e| e.to_string()))
        .collect()
        .await;
    assert_eq!(items.len(), 4, "0, 1, 2, then the error, then nothing");
    assert_eq!(items[..3], [Ok(0), Ok(1), Ok(2)]);
    assert!(items[3].as_ref().unwrap_err().contains("expected entry 3"));
}

#[tokio::test]
async fn proofs_and_checkpoints_verify_against_the_pinned_key() {
    let (url, vkey, _ledger) = serve(5, Faults::default()).await;
    let client = Client::connect(&url, options(&vkey)).await.unwrap();
    let checkpoint = client.checkpoint().await.unwrap();
    assert!(checkpoint.signature_verified);
    assert_eq!(checkpoint.checkpoint.size, 5);
    let proven = client.prove(EntryKey::Seq(3)).await.unwrap();
    assert_eq!(proven.entry.seq, 3);
    assert_eq!(
        proven.inclusion.checkpoint.checkpoint,
        checkpoint.checkpoint
    );
    match client.prove(EntryKey::Seq(5)).await {
        Err(ClientError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }

    // Another ledger's key: the checkpoint does not verify.
    let other = aidledger_tlog::LogSigner::new(
        ORIGIN,
        aidledger_tlog::ed25519::SecretKey::from_seed(&[8; 32]),
    )
    .unwrap();
    let client = Client::connect(&url, options(&other.vkey())).await.unwrap();
    assert!(matches!(
        client.checkpoint().await,
        Err(ClientError::Verification { .. })
    ));
    assert!(matches!(
        client.prove(EntryKey::Seq(1)).await,
        Err(ClientError::Verification { .. })
    ));
}

#[tokio::test]
async fn consistency_from_an_empty_or_to_an_older_checkpoint_needs_no_proof() {
    use aidledger_tlog::{Checkpoint, EMPTY_ROOT, Hash};
    let (url, vkey, _) = serve(3, Faults::default()).await;
    let client = Client::connect(&url, options(&vkey)).await.unwrap();
    let checkpoint = |size: u64, root: Hash| Checkpoint {
        origin: ORIGIN.into(),
        size,
        root,
    };
    let later = checkpoint(3, Hash([1; 32]));
    // The fake serves no consistency proofs: these are judged locally.
    client
        .verify_consistency(&checkpoint(0, EMPTY_ROOT), &later)
        .await
        .unwrap();
    for (old, new) in [
        (checkpoint(0, Hash([9; 32])), later.clone()),
        (later.clone(), checkpoint(2, Hash([2; 32]))),
        (later.clone(), checkpoint(3, Hash([2; 32]))),
    ] {
        assert!(
            matches!(
                client.verify_consistency(&old, &new).await,
                Err(ClientError::Verification { .. })
            ),
            "{} -> {}",
            old.size,
            new.size
        );
    }
}
