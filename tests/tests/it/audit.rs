//! The auditor against logs served by the real ledger over gRPC: a clean
//! log verifies; every tampering of issue 5 is named with its exact seq and
//! reason; witnesses cosign through the ledger, refuse an inconsistent
//! checkpoint, and can be required k of n; the monitor alarms on a fork
//! shown by a second ledger under the same key.

use aidledger_audit::archive::{ArchiveWriter, Tail, verify_archive};
use aidledger_audit::bundle::{ProofBundle, verify_bundle};
use aidledger_audit::{
    Failure, LogAuditor, Monitor, Witness, WitnessError, WitnessQuorum, reason, verify_note,
};
use aidledger_client::{Client, ConnectOptions};
use aidledger_ledger::encode_entry;
use aidledger_tests::generator::Generator;
use aidledger_tests::{ORIGIN, TestServer, ledger_key};
use aidledger_tlog::ed25519::SecretKey;
use aidledger_tlog::{
    Checkpoint, Hash, LogSigner, TreeBuilder, WitnessSigner, add_signature_lines, leaf_hash,
};
use aidledger_wire::{Message as _, pb};
use base64::Engine as _;
use pb::ledger_client::LedgerClient;
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic::transport::Channel;

/// Appends `events` and returns the seq of each, asserting none is refused.
async fn append_ok(client: &mut LedgerClient<Channel>, events: Vec<pb::SignedEvent>) -> Vec<u64> {
    let mut seqs = Vec::new();
    for chunk in events.chunks(200) {
        let response = client
            .append_batch(pb::AppendBatchRequest {
                events: chunk.to_vec(),
            })
            .await
            .expect("AppendBatch")
            .into_inner();
        for result in response.results {
            assert_eq!(
                result.code, 0,
                "refused: {} {}",
                result.reason, result.message
            );
            seqs.push(result.seq);
        }
    }
    seqs
}

/// Appends one event and waits for a checkpoint that covers it.
async fn append_and_checkpoint(client: &mut LedgerClient<Channel>, event: pb::SignedEvent) -> u64 {
    let response = client
        .append(pb::AppendRequest {
            event: Some(event),
            wait_for_checkpoint: true,
        })
        .await
        .expect("Append")
        .into_inner();
    response.checkpoint.expect("waited for a checkpoint").size
}

/// A ledger of the set-up and `events` generated events, plus one revoked
/// key (of the organisation the returned receipt is signed by: that
/// receipt, never appended, is signed by the revoked key).
async fn revoked_key_ledger(
    server: &TestServer,
    generator: &mut Generator,
    events: usize,
) -> pb::SignedEvent {
    let mut client = server.client().await;
    append_ok(&mut client, generator.setup(&server.vkey)).await;
    append_ok(&mut client, generator.events(events)).await;
    let late_receipt = generator.receipts_by(0, 1).remove(0);
    let agency = pb::Event::decode(late_receipt.event.as_ref())
        .unwrap()
        .org_id;
    let revoke = generator.sign_as(
        "authority",
        pb::Event {
            event_id: "0b0b0b0b-0000-4000-8000-00000000e001".into(),
            org_id: "ubnd-tinh".into(),
            occurred_at: Some(aidledger_wire::Timestamp {
                seconds: 1_735_689_600,
                nanos: 0,
            }),
            body: Some(pb::event::Body::RevokeKey(pb::RevokeKey {
                public_key: late_receipt.public_key.clone(),
                reason: format!("the key of {agency} was lost"),
            })),
        },
    );
    append_and_checkpoint(&mut client, revoke).await;
    late_receipt
}

/// The latest checkpoint's note and the entries it covers, as served.
async fn served_log(server: &TestServer) -> (Vec<Vec<u8>>, String) {
    let mut client = server.client().await;
    let checkpoint = client
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut stream = client
        .subscribe(pb::SubscribeRequest { from_seq: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut entries = Vec::new();
    while (entries.len() as u64) < checkpoint.size {
        entries.push(stream.next().await.unwrap().unwrap().entry.to_vec());
    }
    (entries, checkpoint.note)
}

fn archive(entries: &[Vec<u8>], note: &str) -> Vec<u8> {
    let mut writer = ArchiveWriter::new(Vec::new()).unwrap();
    for entry in entries {
        writer.entry(entry).unwrap();
    }
    writer.checkpoint(note).unwrap();
    writer.into_inner()
}

fn audit(vkey: &str, entries: &[Vec<u8>], note: &str) -> Result<Checkpoint, Failure> {
    let bytes = archive(entries, note);
    verify_archive(bytes.as_slice(), vkey, None, Tail::Refuse, &mut |_| {}).map(|v| v.checkpoint)
}

#[track_caller]
fn assert_fails(result: Result<Checkpoint, Failure>, seq: Option<u64>, reason: &str) {
    let failure = result.expect_err("the tampered log must fail");
    assert_eq!(
        (failure.seq, failure.reason),
        (seq, reason),
        "wrong failure: {failure}"
    );
}

/// What a ledger that rewrote its log would sign: a checkpoint of exactly
/// these entries, with the real ledger key.
fn resign(entries: &[Vec<u8>]) -> String {
    let mut tree = TreeBuilder::new();
    for entry in entries {
        tree.push(leaf_hash(entry));
    }
    LogSigner::new(ORIGIN, ledger_key())
        .unwrap()
        .sign(&Checkpoint {
            origin: ORIGIN.into(),
            size: tree.size(),
            root: tree.root(),
        })
}

fn reencode(bytes: &[u8], change: impl FnOnce(&mut pb::LedgerEntry)) -> Vec<u8> {
    let mut entry = pb::LedgerEntry::decode(bytes).unwrap();
    change(&mut entry);
    entry.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_log_verifies_and_every_tampering_is_named_with_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(501);
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let late_receipt = revoked_key_ledger(&server, &mut generator, 120).await;
    let (entries, note) = served_log(&server).await;
    let vkey = server.vkey.clone();
    let size = entries.len() as u64;
    assert!(size > 150, "{size} entries");

    let verified = audit(&vkey, &entries, &note).expect("the served log verifies");
    assert_eq!(verified.size, size);

    // One flipped byte in stored entry k: the last byte of the entry is the
    // last of its event signature (prost writes fields in order, and the
    // signature is the last field of the last field).
    let k = size / 2;
    let mut flipped = entries.clone();
    *flipped[k as usize].last_mut().unwrap() ^= 0x01;
    assert_fails(audit(&vkey, &flipped, &note), Some(k), "BAD_SIGNATURE");

    // Entry k removed: entry k+1 stands where k should.
    let mut removed = entries.clone();
    removed.remove(k as usize);
    assert_fails(audit(&vkey, &removed, &note), Some(k), reason::WRONG_SEQ);

    // Entries k and k+1 swapped.
    let mut swapped = entries.clone();
    swapped.swap(k as usize, k as usize + 1);
    assert_fails(audit(&vkey, &swapped, &note), Some(k), reason::WRONG_SEQ);

    // Entry k's signature replaced by a valid signature of the same event by
    // another registered key (the authority's, which is not k's organisation).
    let mut resigned = entries.clone();
    resigned[k as usize] = reencode(&entries[k as usize], |entry| {
        let signed = entry.signed_event.as_mut().unwrap();
        let org = pb::Event::decode(signed.event.as_ref()).unwrap().org_id;
        assert_ne!(org, "ubnd-tinh", "entry {k} is not the authority's");
        *signed = generator.sign_bytes_as("authority", signed.event.to_vec());
    });
    assert_fails(audit(&vkey, &resigned, &note), Some(k), "KEY_ORG_MISMATCH");

    // An entry signed by a key after its revocation, chained and checkpointed
    // by a ledger that broke its own rules.
    let last_entry = pb::LedgerEntry::decode(entries.last().unwrap().as_slice()).unwrap();
    let recorded_at = last_entry.recorded_at.unwrap();
    let mut after_revocation = entries.clone();
    after_revocation.push(encode_entry(
        size,
        &leaf_hash(entries.last().unwrap()).0,
        aidledger_ledger::Timestamp {
            seconds: recorded_at.seconds,
            nanos: u32::try_from(recorded_at.nanos).unwrap(),
        },
        &late_receipt,
    ));
    let rewritten_note = resign(&after_revocation);
    assert_fails(
        audit(&vkey, &after_revocation, &rewritten_note),
        Some(size),
        "KEY_REVOKED",
    );

    // A forged checkpoint: same text, another key under the ledger's name.
    let forger = LogSigner::new(ORIGIN, SecretKey::from_seed(&[0x66; 32])).unwrap();
    let forged = forger.sign(&verified);
    assert_fails(
        audit(&vkey, &entries, &forged),
        None,
        reason::CHECKPOINT_INVALID,
    );
    // The real key over a root the entries do not have.
    let mut wrong_root = verified.clone();
    wrong_root.root = Hash([0x42; 32]);
    let lying = LogSigner::new(ORIGIN, ledger_key())
        .unwrap()
        .sign(&wrong_root);
    assert_fails(audit(&vkey, &entries, &lying), None, reason::ROOT_MISMATCH);
    // A checkpoint covering more than was served.
    assert_fails(
        audit(&vkey, &entries[..entries.len() - 1], &note),
        Some(size - 1),
        reason::LOG_TOO_SHORT,
    );

    server.stop().await;
}

/// SPEC §7.5 on the real ledger and in the auditor: each way of putting a
/// hidden donor's name in the log is refused by the ledger with its reason
/// and leaves the log as it was; a ledger that appended it anyway is caught
/// by the auditor with the same reason at that entry's seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_name_rules_are_refused_by_the_ledger_and_named_alike_by_the_auditor() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(507);
    let server = TestServer::start(dir.path(), generator.authority()).await;
    let mut client = server.client().await;
    let setup = generator.setup(&server.vkey);
    // The test kit's first agency, which may register donors (RECEIVE).
    let agency = "quy-bao-tro-tre-em".to_owned();
    let (last, first) = setup.split_last().unwrap();
    append_ok(&mut client, first.to_vec()).await;
    append_and_checkpoint(&mut client, last.clone()).await;
    let (entries, note) = served_log(&server).await;
    let size = entries.len() as u64;
    let commitment = aidledger_ledger::privacy::name_commitment(&[4; 32], "Lê Thị Ẩn").to_vec();
    let cases = [
        (
            "HIDDEN_NAME_IN_LOG",
            pb::OrgKind::DonorIndividual,
            "Lê Thị Ẩn",
            commitment.clone(),
        ),
        (
            "HIDDEN_NAME_NOT_ALLOWED",
            pb::OrgKind::School,
            "",
            commitment.clone(),
        ),
        (
            "MISSING_FIELD",
            pb::OrgKind::DonorIndividual,
            "",
            Vec::new(),
        ),
        (
            "INVALID_HASH",
            pb::OrgKind::DonorIndividual,
            "",
            vec![1; 31],
        ),
    ];
    for (n, (reason, kind, name, commitment)) in cases.into_iter().enumerate() {
        let event = generator.sign_as(
            &agency,
            pb::Event {
                event_id: format!("0c0c0c0c-0000-4000-8000-{n:012}"),
                org_id: agency.clone(),
                occurred_at: Some(aidledger_wire::Timestamp {
                    seconds: 1_735_689_600,
                    nanos: 0,
                }),
                body: Some(pb::event::Body::RegisterOrg(pb::RegisterOrganization {
                    org_id: format!("an-case-{n}"),
                    name: name.into(),
                    kind: kind as i32,
                    public_name: false,
                    name_commitment: commitment.into(),
                    ..Default::default()
                })),
            },
        );
        let status = client
            .append(pb::AppendRequest {
                event: Some(event.clone()),
                wait_for_checkpoint: false,
            })
            .await
            .expect_err("the ledger refuses it");
        assert_eq!(status.code(), Code::InvalidArgument, "{reason}: {status:?}");
        assert!(status.message().starts_with(reason), "{reason}: {status:?}");
        // Refused means unchanged.
        let (now, _) = served_log(&server).await;
        assert_eq!(now, entries, "{reason}: the log changed");
        // A ledger that appended it anyway, chained and signed.
        let last = pb::LedgerEntry::decode(entries.last().unwrap().as_slice()).unwrap();
        let recorded_at = last.recorded_at.unwrap();
        let mut forged = entries.clone();
        forged.push(encode_entry(
            size,
            &leaf_hash(entries.last().unwrap()).0,
            aidledger_ledger::Timestamp {
                seconds: recorded_at.seconds,
                nanos: u32::try_from(recorded_at.nanos).unwrap(),
            },
            &event,
        ));
        assert_fails(
            audit(&server.vkey, &forged, &resign(&forged)),
            Some(size),
            reason,
        );
    }
    audit(&server.vkey, &entries, &note).expect("the real log verifies");
    server.stop().await;
}

/// The witness of the test ledger.
fn witness_signer(seed: u8) -> WitnessSigner {
    WitnessSigner::new(
        &format!("witness.example/w{seed}"),
        SecretKey::from_seed(&[seed; 32]),
    )
    .unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_cosign_through_the_ledger_and_can_be_required() {
    let dir = tempfile::tempdir().unwrap();
    let mut generator = Generator::new(502);
    let (w1, w2, stranger) = (witness_signer(1), witness_signer(2), witness_signer(3));
    let known = vec![w1.vkey(), w2.vkey()];
    let server = TestServer::start_with(dir.path(), generator.authority(), |config| {
        config.witnesses = known.clone();
    })
    .await;
    let mut client = server.client().await;
    append_ok(&mut client, generator.setup(&server.vkey)).await;
    let last = generator.events(1).remove(0);
    append_and_checkpoint(&mut client, last).await;
    let note = client
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner()
        .note;
    let log = aidledger_tlog::LogVerifier::from_vkey(&server.vkey).unwrap();
    let checkpoint = verify_note(&log, &note).unwrap();

    // No cosigned checkpoint yet.
    let none = client
        .get_checkpoint(pb::GetCheckpointRequest {
            cosignatures_min: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::NotFound, "{none:?}");

    // A stranger's cosignature is refused and not kept.
    let strange = client
        .add_cosignature(pb::AddCosignatureRequest {
            note: add_signature_lines(&note, [stranger.cosign(&checkpoint, unix_now()).as_str()]),
        })
        .await
        .unwrap_err();
    assert_eq!(strange.code(), Code::Unauthenticated, "{strange:?}");
    assert!(
        format!("{strange:?}").contains("UNKNOWN_WITNESS"),
        "{strange:?}"
    );
    // A known witness's forged line (over another checkpoint) is refused.
    let mut other = checkpoint.clone();
    other.size += 1;
    let forged = client
        .add_cosignature(pb::AddCosignatureRequest {
            note: add_signature_lines(&note, [w1.cosign(&other, unix_now()).as_str()]),
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated, "{forged:?}");

    // The witness, with crash-safe state, cosigns; the ledger records it.
    let state = dir.path().join("w1.json");
    let mut witness = Witness::open(&state, witness_signer(1), log.clone()).unwrap();
    let line = witness.cosign(&note, &[], unix_now()).unwrap();
    let added = client
        .add_cosignature(pb::AddCosignatureRequest {
            note: format!("{note}{line}"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        added.witnesses,
        vec![
            aidledger_tlog::WitnessVerifier::from_vkey(&w1.vkey())
                .unwrap()
                .id()
        ]
    );
    let served = client
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(served.note.ends_with(&line), "{}", served.note);
    let cosigned = client
        .get_checkpoint(pb::GetCheckpointRequest {
            cosignatures_min: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cosigned.size, checkpoint.size);

    // SPEC §5: the client library ignores the witness line it does not know.
    let mut options = ConnectOptions::new(ORIGIN);
    options.vkey = Some(server.vkey.clone());
    let library = Client::connect(&server.url(), options).await.unwrap();
    let latest = library.checkpoint().await.unwrap();
    assert!(latest.signature_verified);
    assert_eq!(latest.checkpoint, checkpoint);

    // k of n: one of two known witnesses cosigned.
    let one_of_two = WitnessQuorum::new(&known, 1).unwrap();
    let two_of_two = WitnessQuorum::new(&known, 2).unwrap();
    assert_eq!(one_of_two.check(&served.note).unwrap().len(), 1);
    assert_eq!(
        two_of_two.check(&served.note).unwrap_err().reason,
        reason::WITNESS_QUORUM
    );

    // A proof bundle carries the cosignature and verifies offline with it.
    let seq = checkpoint.size - 1;
    let entry = client
        .get_entry(pb::GetEntryRequest {
            key: Some(pb::get_entry_request::Key::Seq(seq)),
        })
        .await
        .unwrap()
        .into_inner();
    let proof = client
        .get_inclusion_proof(pb::InclusionProofRequest {
            seq,
            tree_size: checkpoint.size,
        })
        .await
        .unwrap()
        .into_inner();
    let proof_note = proof.checkpoint.unwrap().note;
    assert!(
        proof_note.ends_with(&line),
        "inclusion proofs carry the cosignatures"
    );
    let hashes: Vec<Hash> = proof
        .hashes
        .iter()
        .map(|h| Hash(h.as_ref().try_into().unwrap()))
        .collect();
    let bundle = ProofBundle::new(&server.vkey, &proof_note, seq, &entry.entry, &hashes);
    let bundle: ProofBundle =
        serde_json::from_str(&serde_json::to_string(&bundle).unwrap()).unwrap();
    let proven = verify_bundle(&bundle, &server.vkey, Some(&one_of_two)).unwrap();
    assert_eq!(proven.seq, seq);
    assert_eq!(proven.cosignatures.len(), 1);
    assert_eq!(
        verify_bundle(&bundle, &server.vkey, Some(&two_of_two))
            .unwrap_err()
            .reason,
        reason::WITNESS_QUORUM
    );
    let mut tampered = bundle.clone();
    tampered.proof[0] = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
    assert_eq!(
        verify_bundle(&tampered, &server.vkey, None)
            .unwrap_err()
            .reason,
        reason::PROOF_INVALID
    );

    server.stop().await;
}

/// Two ledgers under the same key and origin with different logs: what a
/// ledger showing a split view would serve to two audiences.
async fn two_views(dir: &std::path::Path, extra: usize) -> (TestServer, TestServer) {
    let mut first = Generator::new(503);
    let mut second = Generator::new(504);
    let a = TestServer::start(&dir.join("a"), first.authority()).await;
    let b = TestServer::start(&dir.join("b"), second.authority()).await;
    let mut client_a = a.client().await;
    let mut client_b = b.client().await;
    append_ok(&mut client_a, first.setup(&a.vkey)).await;
    append_ok(&mut client_b, second.setup(&b.vkey)).await;
    let last_a = first.events(1).remove(0);
    append_and_checkpoint(&mut client_a, last_a).await;
    append_ok(&mut client_b, second.events(extra)).await;
    let last_b = second.events(1).remove(0);
    append_and_checkpoint(&mut client_b, last_b).await;
    (a, b)
}

async fn consistency_proof(server: &TestServer, old_size: u64, new_size: u64) -> Vec<Hash> {
    server
        .client()
        .await
        .get_consistency_proof(pb::ConsistencyProofRequest { old_size, new_size })
        .await
        .unwrap()
        .into_inner()
        .hashes
        .iter()
        .map(|h| Hash(h.as_ref().try_into().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_refuses_a_checkpoint_inconsistent_with_its_last() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_views(dir.path(), 10).await;
    assert_eq!(a.vkey, b.vkey, "one ledger key, two views");
    let log = aidledger_tlog::LogVerifier::from_vkey(&a.vkey).unwrap();
    let state = dir.path().join("witness.json");
    let mut witness = Witness::open(&state, witness_signer(1), log.clone()).unwrap();
    let (_, note_a) = served_log(&a).await;
    witness.cosign(&note_a, &[], unix_now()).unwrap();
    let cosigned = witness.last().unwrap().clone();

    // B is larger; its own consistency proof from A's size cannot lead to
    // A's root.
    let (_, note_b) = served_log(&b).await;
    let size_b = verify_note(&log, &note_b).unwrap().size;
    assert!(size_b > cosigned.size);
    let proof = consistency_proof(&b, cosigned.size, size_b).await;
    let refusal = witness.cosign(&note_b, &proof, unix_now()).unwrap_err();
    let WitnessError::Refused(failure) = refusal else {
        panic!("expected a refusal, got {refusal:?}");
    };
    assert_eq!(failure.reason, reason::INCONSISTENT, "{failure}");

    // After a restart it still remembers A's checkpoint, not B's.
    let reopened = Witness::open(&state, witness_signer(1), log).unwrap();
    assert_eq!(reopened.last(), Some(&cosigned));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_follows_one_view_and_alarms_on_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    // Same size on both ledgers: B gets as many events after set-up as A.
    let (a, b) = two_views(dir.path(), 0).await;
    let (entries_a, note_a) = served_log(&a).await;
    let (entries_b, note_b) = served_log(&b).await;
    assert_eq!(entries_a.len(), entries_b.len(), "equal sizes make a fork");

    // The monitor starts from nothing and catches up with A.
    let mut monitor = Monitor::new(
        LogAuditor::new(&a.vkey).unwrap(),
        Checkpoint {
            origin: ORIGIN.into(),
            size: 0,
            root: aidledger_tlog::EMPTY_ROOT,
        },
        String::new(),
        None,
    );
    let half = entries_a.len() / 2;
    // A half-way checkpoint of A's own log, as if observed earlier.
    let half_note = resign(&entries_a[..half]);
    let half_checkpoint = monitor.observe(&half_note).unwrap().unwrap();
    monitor
        .advance(
            &half_note,
            &half_checkpoint,
            &[],
            entries_a[..half].to_vec(),
        )
        .unwrap();
    let checkpoint_a = monitor.observe(&note_a).unwrap().expect("A is newer");
    let proof = consistency_proof(&a, half as u64, checkpoint_a.size).await;
    monitor
        .advance(&note_a, &checkpoint_a, &proof, entries_a[half..].to_vec())
        .unwrap();
    assert_eq!(monitor.trusted(), &checkpoint_a);
    // The same checkpoint again is no news.
    assert_eq!(monitor.observe(&note_a).unwrap(), None);

    // B's checkpoint: same size, other root.
    let fork = monitor.observe(&note_b).unwrap_err();
    assert_eq!((fork.seq, fork.reason), (None, reason::FORK), "{fork}");

    // A rewritten entry handed over as new: caught at its seq.
    let mut follower = Monitor::new(
        LogAuditor::new(&a.vkey).unwrap(),
        Checkpoint {
            origin: ORIGIN.into(),
            size: 0,
            root: aidledger_tlog::EMPTY_ROOT,
        },
        String::new(),
        None,
    );
    follower
        .advance(
            &half_note,
            &half_checkpoint,
            &[],
            entries_a[..half].to_vec(),
        )
        .unwrap();
    let rewritten = entries_b[half..].to_vec();
    let failure = follower
        .advance(&note_a, &checkpoint_a, &proof, rewritten)
        .unwrap_err();
    assert_eq!(failure.seq, Some(half as u64), "{failure}");
    assert_eq!(failure.reason, reason::BROKEN_CHAIN, "{failure}");
    a.stop().await;
    b.stop().await;
}
