//! The real server on a loopback port, driven by a real gRPC client: every
//! RPC, every status code of SPEC §6 reached by a bad input of its kind with
//! the ledger unchanged afterwards, subscriptions under concurrent appends,
//! restart, reflection and health.

use std::collections::BTreeSet;

use aidledger_ledger::{ChainChecker, sign_event};
use aidledger_tests::generator::Generator;
use aidledger_tests::{ORIGIN, TestServer};
use aidledger_tlog::{Hash, LogVerifier, leaf_hash, verify_consistency, verify_inclusion};
use aidledger_wire::{Message, pb};
use pb::ledger_client::LedgerClient;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

fn hash(bytes: &[u8]) -> Hash {
    Hash(bytes.try_into().expect("32-byte hash"))
}

/// Appends the programme set-up and `events` generated events in batches.
async fn populate(
    client: &mut LedgerClient<Channel>,
    generator: &mut Generator,
    vkey: &str,
    events: usize,
) {
    let setup = generator.setup(vkey);
    append_batch_ok(client, setup).await;
    let mut left = events;
    while left > 0 {
        let n = left.min(200);
        append_batch_ok(client, generator.events(n)).await;
        left -= n;
    }
}

async fn append_batch_ok(
    client: &mut LedgerClient<Channel>,
    events: Vec<pb::SignedEvent>,
) -> Vec<u64> {
    let response = client
        .append_batch(pb::AppendBatchRequest { events })
        .await
        .expect("AppendBatch")
        .into_inner();
    response
        .results
        .iter()
        .map(|r| {
            assert_eq!(r.code, 0, "refused: {} {}", r.reason, r.message);
            r.seq
        })
        .collect()
}

async fn checkpoint(client: &mut LedgerClient<Channel>) -> pb::Checkpoint {
    client
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .expect("GetCheckpoint")
        .into_inner()
}

/// Size and root of the log once a checkpoint covers everything committed,
/// to show a refusal changed nothing.
async fn fingerprint(client: &mut LedgerClient<Channel>) -> (u64, Vec<u8>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let cp = checkpoint(client).await;
        // Covered when no entry exists at the checkpoint's size.
        let beyond = client
            .get_entry(pb::GetEntryRequest {
                key: Some(pb::get_entry_request::Key::Seq(cp.size)),
            })
            .await;
        match beyond {
            Err(status) if status.code() == Code::NotFound => {
                return (cp.size, cp.root_hash.to_vec());
            }
            Err(status) => panic!("GetEntry: {status}"),
            Ok(_) => {}
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint covered the committed entries"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_works_and_proofs_verify_against_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(101);
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let mut client = server.client().await;
    populate(&mut client, &mut generator, &server.vkey, 300).await;
    let verifier = LogVerifier::from_vkey(&server.vkey).unwrap();

    // Append, waiting for the checkpoint: it comes with an inclusion proof.
    let event = generator.events(1).remove(0);
    let response = client
        .append(pb::AppendRequest {
            event: Some(event.clone()),
            wait_for_checkpoint: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!response.duplicate);
    assert_eq!(hash(&response.leaf_hash), leaf_hash(&response.entry));
    let cp = response.checkpoint.expect("checkpoint when waited for");
    let signed = verifier.verify(&cp.note).unwrap();
    assert_eq!(signed.size, cp.size);
    assert!(signed.size > response.seq);
    let proof = response.proof.expect("proof when waited for");
    let hashes: Vec<Hash> = proof.hashes.iter().map(|h| hash(h)).collect();
    verify_inclusion(
        &hash(&response.leaf_hash),
        response.seq,
        signed.size,
        &hashes,
        &signed.root,
    )
    .unwrap();

    // Idempotent resubmission over the wire.
    let again = client
        .append(pb::AppendRequest {
            event: Some(event),
            wait_for_checkpoint: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.seq, response.seq);
    assert_eq!(again.entry, response.entry);

    // GetEntry by seq and by event id.
    let by_seq = client
        .get_entry(pb::GetEntryRequest {
            key: Some(pb::get_entry_request::Key::Seq(response.seq)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_seq.entry, response.entry);
    let decoded = pb::LedgerEntry::decode(by_seq.entry.as_ref()).unwrap();
    let event = pb::Event::decode(decoded.signed_event.unwrap().event.as_ref()).unwrap();
    let by_id = client
        .get_entry(pb::GetEntryRequest {
            key: Some(pb::get_entry_request::Key::EventId(event.event_id)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id.seq, response.seq);
    let missing = client
        .get_entry(pb::GetEntryRequest {
            key: Some(pb::get_entry_request::Key::Seq(1_000_000)),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // GetInclusionProof against the latest checkpoint (tree_size 0).
    let latest = checkpoint(&mut client).await;
    let latest_signed = verifier.verify(&latest.note).unwrap();
    for seq in [0, 7, latest.size - 1] {
        let proof = client
            .get_inclusion_proof(pb::InclusionProofRequest { seq, tree_size: 0 })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(proof.tree_size, latest.size);
        let entry = client
            .get_entry(pb::GetEntryRequest {
                key: Some(pb::get_entry_request::Key::Seq(seq)),
            })
            .await
            .unwrap()
            .into_inner();
        let hashes: Vec<Hash> = proof.hashes.iter().map(|h| hash(h)).collect();
        verify_inclusion(
            &leaf_hash(&entry.entry),
            seq,
            latest.size,
            &hashes,
            &latest_signed.root,
        )
        .unwrap();
    }
    let beyond = client
        .get_inclusion_proof(pb::InclusionProofRequest {
            seq: 0,
            tree_size: latest.size + 10,
        })
        .await
        .unwrap_err();
    assert_eq!(beyond.code(), Code::OutOfRange);

    // GetConsistencyProof between two signed checkpoints.
    let old = signed;
    let proof = client
        .get_consistency_proof(pb::ConsistencyProofRequest {
            old_size: old.size,
            new_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(proof.new_size, latest.size);
    let hashes: Vec<Hash> = proof.hashes.iter().map(|h| hash(h)).collect();
    verify_consistency(
        old.size,
        latest.size,
        &old.root,
        &latest_signed.root,
        &hashes,
    )
    .unwrap();

    // Subscribe from 0: every entry, in order, chained.
    let mut stream = client
        .subscribe(pb::SubscribeRequest { from_seq: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut chain = ChainChecker::new();
    while chain.next_seq() < latest.size {
        let entry = stream.next().await.unwrap().unwrap();
        let linked = chain.check(entry.entry.clone()).unwrap();
        assert_eq!(linked.seq, entry.seq);
        assert_eq!(linked.leaf_hash.as_slice(), entry.leaf_hash.as_ref());
    }
    drop(stream);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_code_is_reached_and_leaves_the_ledger_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(202);
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let mut client = server.client().await;
    populate(&mut client, &mut generator, &server.vkey, 50).await;
    let before = fingerprint(&mut client).await;

    let good = generator.receipts(1).remove(0);
    let mut cases: Vec<(&str, pb::SignedEvent, Code, &str)> = Vec::new();
    cases.push((
        "undecodable event",
        pb::SignedEvent {
            event: vec![0xff; 5].into(),
            ..good.clone()
        },
        Code::InvalidArgument,
        "UNDECODABLE_EVENT",
    ));
    let mut tampered = good.clone();
    let mut signature = tampered.signature.to_vec();
    let last = signature.len() - 1;
    signature[last] ^= 1;
    tampered.signature = signature.into();
    cases.push((
        "bad signature",
        tampered,
        Code::Unauthenticated,
        "BAD_SIGNATURE",
    ));
    // A receipt signed by a commune committee key for an agency: wrong org.
    let event = pb::Event::decode(good.event.as_ref()).unwrap();
    let stranger = aidledger_tlog::ed25519::SecretKey::generate();
    cases.push((
        "unknown key",
        sign_event(&stranger, ORIGIN, good.event.to_vec()),
        Code::Unauthenticated,
        "UNKNOWN_KEY",
    ));
    let authority_receipt = sign_event(generator.authority(), ORIGIN, {
        let mut e = event.clone();
        e.org_id = "ubnd-tinh".into();
        e.event_id = "00000000-0000-4000-8000-00000000beef".into();
        e.encode_to_vec()
    });
    cases.push((
        "role not allowed",
        authority_receipt,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    ));
    let overdraft = {
        let mut g = Generator::new(202);
        let _ = g.setup(&server.vkey);
        let t = g.events(50);
        let _ = t;
        // A transfer of more than anyone holds, signed by an agency key.
        let mut e = pb::Event::decode(good.event.as_ref()).unwrap();
        e.event_id = "00000000-0000-4000-8000-00000000cafe".into();
        e.body = Some(pb::event::Body::Transfer(pb::Transfer {
            transfer_id: "t-overdraft".into(),
            to_org_id: "ubnd-22801".into(),
            asset_id: "VND".into(),
            quantity: 999_999_999_999_999,
            earmark: None,
            note: String::new(),
        }));
        generator.sign_as(&e.org_id.clone(), e)
    };
    cases.push((
        "insufficient balance",
        overdraft,
        Code::FailedPrecondition,
        "INSUFFICIENT_BALANCE",
    ));
    // The event id of entry 0 with other content.
    let genesis = client
        .get_entry(pb::GetEntryRequest {
            key: Some(pb::get_entry_request::Key::Seq(0)),
        })
        .await
        .unwrap()
        .into_inner();
    let genesis_id = pb::Event::decode(
        pb::LedgerEntry::decode(genesis.entry.as_ref())
            .unwrap()
            .signed_event
            .unwrap()
            .event
            .as_ref(),
    )
    .unwrap()
    .event_id;
    let reused = {
        let mut e = event.clone();
        e.event_id = genesis_id;
        generator.sign_as(&e.org_id.clone(), e)
    };
    cases.push((
        "reused event id",
        reused,
        Code::AlreadyExists,
        "EVENT_ID_EXISTS",
    ));
    let oversized = {
        let mut e = event.clone();
        e.event_id = "00000000-0000-4000-8000-0000000b16b1".into();
        let mut bytes = e.encode_to_vec();
        bytes.extend_from_slice(&[0xfa, 0x3f, 0x80, 0x80, 0x04]);
        bytes.extend(std::iter::repeat_n(0u8, 65_536));
        generator.sign_bytes_as(&event.org_id, bytes)
    };
    cases.push((
        "oversized entry",
        oversized,
        Code::ResourceExhausted,
        "ENTRY_TOO_LARGE",
    ));

    for (name, event, code, reason) in cases {
        let status = client
            .append(pb::AppendRequest {
                event: Some(event.clone()),
                wait_for_checkpoint: false,
            })
            .await
            .expect_err(name);
        assert_eq!(status.code(), code, "{name}: {status:?}");
        assert!(
            status.message().starts_with(reason),
            "{name}: {}",
            status.message()
        );
        let info = status.get_details_error_info().expect("ErrorInfo detail");
        assert_eq!(info.reason, reason, "{name}");
        assert_eq!(info.domain, "aidledger.v1");
        // The same refusal inside a batch is a per-event result.
        let batch = client
            .append_batch(pb::AppendBatchRequest {
                events: vec![event],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(batch.results[0].code, code as i32, "{name}");
        assert_eq!(batch.results[0].reason, reason, "{name}");
    }
    let too_many = client
        .append_batch(pb::AppendBatchRequest {
            events: vec![good.clone(); 1_001],
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::ResourceExhausted);
    let missing = client
        .append(pb::AppendRequest {
            event: None,
            wait_for_checkpoint: false,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);

    assert_eq!(
        fingerprint(&mut client).await,
        before,
        "a refusal changed the ledger"
    );
    // And a good event still appends.
    append_batch_ok(&mut client, vec![good]).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribe_delivers_every_entry_once_in_order_while_appends_race() {
    subscribers_see_every_entry_once_in_order(|_| {}).await;
}

/// Pages of one store read of three entries: many page ends, each a place
/// where an entry could be skipped or sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribe_delivers_every_entry_once_in_order_in_pages_of_three() {
    subscribers_see_every_entry_once_in_order(|config| {
        config.limits.subscribe_buffer_max = 3;
        config.limits.subscribe_page_bytes = 1;
    })
    .await;
}

/// Pages gathered from several store reads of three entries, up to 2 KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribe_delivers_every_entry_once_in_order_in_pages_of_several_reads() {
    subscribers_see_every_entry_once_in_order(|config| {
        config.limits.subscribe_buffer_max = 3;
        config.limits.subscribe_page_bytes = 2048;
    })
    .await;
}

async fn subscribers_see_every_entry_once_in_order(
    configure: impl FnOnce(&mut aidledger::server::ServeConfig),
) {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(303);
    let server = TestServer::start_with(dir.path(), generator.authority(), configure).await;
    let mut client = server.client().await;
    populate(&mut client, &mut generator, &server.vkey, 0).await;
    let start = checkpoint(&mut client).await.size;
    let appenders = 4;
    let per_appender = 60;
    let batches: Vec<Vec<pb::SignedEvent>> = (0..appenders)
        .map(|_| generator.receipts(per_appender))
        .collect();
    let total = start + (appenders * per_appender) as u64;

    // Subscribers from 0 and from the middle, started before the appends.
    let mut subscribers = Vec::new();
    for from_seq in [0, start / 2] {
        let mut client = server.client().await;
        subscribers.push(tokio::spawn(async move {
            let mut stream = client
                .subscribe(pb::SubscribeRequest { from_seq })
                .await
                .unwrap()
                .into_inner();
            let mut seqs = Vec::new();
            while seqs.len() < (total - from_seq) as usize {
                let entry = stream.next().await.expect("stream open").expect("entry");
                assert_eq!(hash(&entry.leaf_hash), leaf_hash(&entry.entry));
                seqs.push(entry.seq);
            }
            (from_seq, seqs)
        }));
    }
    let mut tasks = Vec::new();
    for batch in batches {
        let mut client = server.client().await;
        tasks.push(tokio::spawn(async move {
            for event in batch {
                client
                    .append(pb::AppendRequest {
                        event: Some(event),
                        wait_for_checkpoint: false,
                    })
                    .await
                    .expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for subscriber in subscribers {
        let (from_seq, seqs) = tokio::time::timeout(std::time::Duration::from_secs(30), subscriber)
            .await
            .expect("the subscriber saw every entry")
            .unwrap();
        let expected: Vec<u64> = (from_seq..total).collect();
        assert_eq!(
            seqs, expected,
            "from {from_seq}: a gap, a duplicate or out of order"
        );
        assert_eq!(seqs.iter().collect::<BTreeSet<_>>().len(), seqs.len());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(404);
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let mut client = server.client().await;
    populate(&mut client, &mut generator, &server.vkey, 200).await;
    // Graceful shutdown signs a final checkpoint covering everything.
    server.stop().await;
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let mut client = server.client().await;
    let after = checkpoint(&mut client).await;
    let verifier = LogVerifier::from_vkey(&server.vkey).unwrap();
    let signed = verifier.verify(&after.note).unwrap();
    assert!(signed.size > 200);
    // The next event continues the same ledger.
    let seqs = append_batch_ok(&mut client, generator.events(5)).await;
    assert_eq!(seqs[0], signed.size);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_service_and_health_reports_serving() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let dir = tempfile::tempdir().unwrap();
    let generator = Generator::new(505);
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"aidledger.v1.Ledger".to_string()),
        "{names:?}"
    );

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "aidledger.v1.Ledger".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    drop(responses);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_rate_limit_refuses_new_events_but_not_retries() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(606);
    let server = TestServer::start_with(dir.path(), generator.authority(), |config| {
        config.rate_limit_per_second = 0.001;
        config.rate_limit_burst = 1_000.0;
    })
    .await;
    let mut client = server.client().await;
    populate(&mut client, &mut generator, &server.vkey, 0).await;
    // The set-up used most of the authority's and the fund's budget; flood one key.
    let receipts = generator.receipts_by(0, 1_100);
    let response = client
        .append_batch(pb::AppendBatchRequest {
            events: receipts[..1_000].to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    let limited = response
        .results
        .iter()
        .filter(|r| r.reason == "RATE_LIMITED")
        .count();
    assert!(limited > 0, "the key's burst was exhausted");
    assert!(
        response
            .results
            .iter()
            .all(|r| r.code == 0 || r.code == Code::ResourceExhausted as i32)
    );
    // A retry of an event already appended gets its seq back even though
    // the key is over its rate (SPEC §6 idempotency).
    let first = receipts[0].clone();
    assert_eq!(response.results[0].code, 0);
    let retry = client
        .append(pb::AppendRequest {
            event: Some(first),
            wait_for_checkpoint: false,
        })
        .await
        .expect("a retry is not rate limited")
        .into_inner();
    assert!(retry.duplicate);
    assert_eq!(retry.seq, response.results[0].seq);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_keeps_every_acknowledged_in_flight_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(808);
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let mut client = server.client().await;
    populate(&mut client, &mut generator, &server.vkey, 0).await;
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for event in generator.receipts(300) {
        let mut client = client.clone();
        let answered = answered.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .append(pb::AppendRequest {
                    event: Some(event),
                    wait_for_checkpoint: false,
                })
                .await
                .map(|r| r.into_inner());
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            response
        }));
    }
    // Stop once some appends are answered, not after a guessed delay; the
    // rest are then in flight or answered, and every answered one must
    // survive.
    while answered.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        tokio::task::yield_now().await;
    }
    server.stop().await;
    let mut acknowledged = Vec::new();
    for task in tasks {
        if let Ok(response) = task.await.unwrap() {
            acknowledged.push(response);
        }
    }
    assert!(
        !acknowledged.is_empty(),
        "some appends were in flight and answered"
    );
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let mut client = server.client().await;
    for response in acknowledged {
        let entry = client
            .get_entry(pb::GetEntryRequest {
                key: Some(pb::get_entry_request::Key::Seq(response.seq)),
            })
            .await
            .expect("an acknowledged entry survives shutdown")
            .into_inner();
        assert_eq!(entry.entry, response.entry);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_does_not_hold_up_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(909);
    // Small pages, so that the 400 entries are more than the stream holds
    // and its sender blocks.
    let server = TestServer::start_with(dir.path(), generator.authority(), |config| {
        config.limits.subscribe_buffer_max = 16;
        config.limits.subscribe_page_bytes = 4096;
    })
    .await;
    let mut client = server.client().await;
    populate(&mut client, &mut generator, &server.vkey, 400).await;
    let mut stalled = client
        .subscribe(pb::SubscribeRequest { from_seq: 0 })
        .await
        .unwrap()
        .into_inner();
    let first = stalled.next().await.unwrap().unwrap();
    assert_eq!(first.seq, 0);
    // A second subscriber at the tip sees the shutdown as an error, not as
    // a normal end of the stream.
    let (tip, _) = fingerprint(&mut client).await;
    let mut at_tip = client
        .subscribe(pb::SubscribeRequest { from_seq: tip })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(std::time::Duration::from_secs(10), server.stop())
        .await
        .expect("shutdown finished despite a subscriber that stopped reading");
    let ended = at_tip.next().await;
    assert!(
        matches!(&ended, Some(Err(status)) if status.code() == Code::Unavailable),
        "{ended:?}"
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_size_limit_is_resource_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(911);
    let server = TestServer::start_with(dir.path(), generator.authority(), |config| {
        config.limits.request_bytes_max = 64 * 1024;
    })
    .await;
    let mut client = server.client().await;
    let setup = generator.setup(&server.vkey);
    for chunk in setup.chunks(50) {
        append_batch_ok(&mut client, chunk.to_vec()).await;
    }
    // About four times the limit.
    let events = generator.receipts(800);
    let status = client
        .append_batch(pb::AppendBatchRequest { events })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // Under the limit still works.
    append_batch_ok(&mut client, generator.receipts(20)).await;
    server.stop().await;
}
