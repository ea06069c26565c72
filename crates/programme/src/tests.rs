//! The generator's tests. The oracle is the ledger's own rules: every stream
//! is replayed through `verify_submission` and `State::apply`, and the
//! generator's books are compared with the balances the rules computed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aidledger_ledger::{
    Body, Category, ENTRY_BYTES_MAX, Event, LedgerParams, OrgKind, PublicKey, State, Timestamp,
    verify_submission,
};
use aidledger_wire::Message;

use crate::calendar::Date;
use crate::catalogue::COMMUNES;
use crate::{DemoConfig, Programme};

const ORIGIN: &str = "aid.ninhthuan.example/children-2025";
const LOG_VKEY: &str =
    "aid.ninhthuan.example/children-2025+4c1a2b3d+AXN0YW5kLWluLWxlZGdlci12ZXJpZmllci1rZXk=";

/// Entry overhead beyond the signed event: seq, prev_hash, recorded_at and
/// field tags (SPEC §4), generously.
const ENTRY_OVERHEAD_BYTES: usize = 128;

use aidledger_ledger::event::KIND_NAMES as EVERY_KIND;

fn config(seed: u64, extra_events: usize) -> DemoConfig {
    DemoConfig {
        seed,
        origin: ORIGIN.into(),
        log_vkey: LOG_VKEY.into(),
        extra_events,
    }
}

/// A stream replayed through the ledger's rules.
struct Replay {
    programme: Programme,
    state: State,
    events: Vec<Event>,
}

impl Replay {
    fn kinds(&self) -> BTreeMap<&'static str, usize> {
        let mut kinds = BTreeMap::new();
        for event in &self.events {
            *kinds.entry(event.body.kind_name()).or_insert(0) += 1;
        }
        kinds
    }
}

/// Verifies and applies every event, recorded at the latest `occurred_at`
/// so far, and panics with the seed and seq on the first refusal.
fn replay(seed: u64, extra_events: usize) -> Replay {
    let mut programme = Programme::new(config(seed, extra_events));
    let mut state = State::new(LedgerParams {
        origin: ORIGIN.into(),
        log_vkey: Some(LOG_VKEY.into()),
        authority_key: Some(PublicKey(programme.authority_public_key())),
    });
    let mut events = Vec::with_capacity(programme.total_events());
    let mut recorded_at = Timestamp::default();
    for (seq, signed) in programme.events().enumerate() {
        assert!(
            signed.encoded_len() + ENTRY_OVERHEAD_BYTES < ENTRY_BYTES_MAX,
            "seed {seed}: event {seq} is {} bytes",
            signed.encoded_len()
        );
        let checked = verify_submission(ORIGIN, signed)
            .unwrap_or_else(|rejection| panic!("seed {seed}: event {seq} malformed: {rejection}"));
        assert!(
            checked.event.occurred_at >= recorded_at,
            "seed {seed}: event {seq} occurred before the one before it"
        );
        recorded_at = checked.event.occurred_at;
        let seq = u64::try_from(seq).expect("fits");
        state
            .apply(seq, recorded_at, &checked)
            .unwrap_or_else(|rejection| {
                panic!(
                    "seed {seed}: event {seq} ({}) refused: {rejection}",
                    checked.event.body.kind_name()
                )
            });
        events.push(checked.event);
    }
    assert_eq!(events.len(), programme.total_events(), "seed {seed}");
    Replay {
        programme,
        state,
        events,
    }
}

#[test]
fn demo_year_is_accepted_and_tells_every_kind_of_event() {
    let replay = replay(2025, 0);
    let kinds = replay.kinds();
    eprintln!(
        "demo year, seed 2025: {} events, {kinds:?}",
        replay.events.len()
    );
    for kind in EVERY_KIND {
        assert!(kinds.contains_key(kind), "no {kind} in the demo year");
    }
    let categories: BTreeSet<Category> = replay
        .events
        .iter()
        .filter_map(|event| match &event.body {
            Body::Delivery(delivery) => Some(delivery.category),
            _ => None,
        })
        .collect();
    assert_eq!(
        categories,
        crate::catalogue::CATEGORIES.into_iter().collect()
    );
    assert!(
        replay
            .events
            .iter()
            .any(|event| matches!(&event.body, Body::Inspection(i) if !i.passed)),
        "a failed goods inspection"
    );
    assert!(
        replay.events.iter().any(|event| matches!(
            &event.body,
            Body::TransferReceived(received) if received.note.starts_with("Nhận thiếu")
        )),
        "a confirmation with a small loss"
    );
    let registered: BTreeSet<&str> = replay
        .events
        .iter()
        .filter_map(|event| match &event.body {
            Body::RegisterCommune(commune) => Some(commune.commune_code.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(registered, COMMUNES.iter().map(|c| c.code).collect());
    for event in &replay.events {
        let date = Date::of_instant(event.occurred_at.seconds * crate::calendar::NANOS_PER_SECOND);
        assert_eq!(
            date.year, 2025,
            "{} happens in the programme year",
            event.event_id
        );
    }
}

#[test]
fn every_delivery_reaches_as_many_children_as_it_names() {
    let replay = replay(11, 0);
    let mut deliveries = 0;
    for event in &replay.events {
        if let Body::Delivery(delivery) = &event.body {
            deliveries += 1;
            assert!(delivery.children_reached > 0);
            assert_eq!(
                delivery.beneficiary_tokens.len(),
                delivery.children_reached as usize
            );
            assert!(!delivery.evidence_hashes.is_empty());
            assert!(delivery.period.starts_with("2025-"));
        }
    }
    assert!(deliveries > 100, "a year of handovers, not {deliveries}");
}

#[test]
fn same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let collect = |seed: u64| {
        Programme::new(config(seed, 300))
            .events()
            .collect::<Vec<_>>()
    };
    let first = collect(7);
    let again = collect(7);
    assert_eq!(first.len(), Programme::new(config(7, 300)).total_events());
    assert!(first == again, "seed 7 gave two different streams");
    let other = collect(8);
    assert!(first != other, "seeds 7 and 8 gave the same stream");
    assert_ne!(
        Programme::new(config(7, 0)).authority_public_key(),
        Programme::new(config(8, 0)).authority_public_key()
    );
    // Batches of any size cut the same stream.
    let mut programme = Programme::new(config(7, 300));
    let mut batched = Vec::new();
    loop {
        let batch = programme.next_batch(997);
        if batch.is_empty() {
            break;
        }
        batched.extend(batch);
    }
    assert!(first == batched, "next_batch and events() differ");
    assert_eq!(programme.remaining_events(), 0);
}

#[test]
fn individual_gifts_have_the_shape_of_a_real_campaign() {
    let replay = replay(42, 0);
    let mut individuals: HashMap<&str, bool> = HashMap::new();
    let mut gifts: Vec<u64> = Vec::new();
    for event in &replay.events {
        match &event.body {
            Body::RegisterOrg(org) if org.kind == OrgKind::DonorIndividual => {
                individuals.insert(org.org_id.as_str(), org.name.is_public());
            }
            Body::Receipt(receipt)
                if receipt.asset_id == "VND"
                    && individuals.contains_key(receipt.donor_org_id.as_str()) =>
            {
                gifts.push(receipt.quantity);
            }
            _ => {}
        }
    }
    gifts.sort_unstable();
    let median = gifts[gifts.len() / 2];
    let hidden = individuals.values().filter(|public| !**public).count();
    let hidden_share = hidden as f64 / individuals.len() as f64;
    eprintln!(
        "seed 42: {} individuals, {} gifts, median {median}, largest {}, {hidden_share:.3} hidden",
        individuals.len(),
        gifts.len(),
        gifts[gifts.len() - 1]
    );
    assert!(
        individuals.len() > 300,
        "hundreds of individuals, not {}",
        individuals.len()
    );
    assert!(
        (150_000..=250_000).contains(&median),
        "median gift {median}"
    );
    assert!(gifts[gifts.len() - 1] >= 100_000_000, "a long tail");
    assert!(
        (0.32..=0.48).contains(&hidden_share),
        "{hidden_share} hide their name"
    );
}

#[test]
fn hidden_donors_are_in_the_log_by_commitment_only() {
    let replay = replay(42, 0);
    let hidden_names = replay.programme.hidden_donor_names();
    assert!(
        hidden_names.len() > 100,
        "{} hidden donors",
        hidden_names.len()
    );
    let mut hidden = 0;
    for event in &replay.events {
        if let Body::RegisterOrg(org) = &event.body
            && let aidledger_ledger::OrgName::Hidden { commitment } = org.name
        {
            hidden += 1;
            // SPEC §7.5: the id is random, not a number in a sequence.
            assert!(org.org_id.starts_with("an-"), "{}", org.org_id);
            // The agency's salt opens the commitment to one of the names.
            let salt = crate::derive::name_salt(42, &org.org_id);
            assert!(
                hidden_names.iter().any(|name| {
                    aidledger_ledger::privacy::name_commitment(&salt, name) == commitment
                }),
                "{}: the commitment opens to no hidden donor's name",
                org.org_id
            );
        }
    }
    assert_eq!(hidden, hidden_names.len());
    // The signed bytes hold none of the names.
    let mut programme = Programme::new(config(42, 0));
    let bytes: Vec<u8> = programme.events().flat_map(|signed| signed.event).collect();
    // Names come from tables: a public donor may share a hidden one's name.
    let public_names: Vec<&str> = replay
        .events
        .iter()
        .filter_map(|event| match &event.body {
            Body::RegisterOrg(org) => org.name.public(),
            _ => None,
        })
        .collect();
    let unshared: Vec<&String> = hidden_names
        .iter()
        .filter(|name| !public_names.iter().any(|p| p.contains(name.as_str())))
        .collect();
    assert!(unshared.len() > 100, "{}", unshared.len());
    for name in unshared {
        assert!(
            !bytes
                .windows(name.len())
                .any(|window| window == name.as_bytes()),
            "{name} is in the signed events"
        );
    }
}

#[test]
fn sample_references_lead_to_their_receipts() {
    let replay = replay(5, 0);
    let samples = replay.programme.sample_references();
    assert!(samples.len() >= 4, "{samples:?}");
    assert!(samples.iter().any(|s| s.public_name));
    assert!(samples.iter().any(|s| !s.public_name));
    let ref_key = replay.programme.ref_key();
    for sample in &samples {
        let keyed = ref_key.external_ref_hash(&sample.reference);
        let matching: Vec<_> = replay
            .events
            .iter()
            .filter_map(|event| match &event.body {
                Body::Receipt(receipt) if receipt.external_ref_hash == Some(keyed) => Some(receipt),
                _ => None,
            })
            .collect();
        // The gift entered twice has two receipts; the first is the sample.
        let receipt = matching.first().expect("a receipt for every sample");
        assert_eq!(receipt.receipt_id, sample.receipt_id);
        assert_eq!(receipt.quantity, sample.amount_vnd);
        assert_eq!(receipt.donor_org_id, sample.donor_org_id);
    }
}

#[test]
fn steady_state_stays_valid_and_the_books_match_the_ledger() {
    let extra = 20_000;
    let replay = replay(3, extra);
    let year = replay.programme.year_events();
    let mut steady_kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &replay.events[year..] {
        *steady_kinds.entry(event.body.kind_name()).or_insert(0) += 1;
    }
    eprintln!("steady state, seed 3: {steady_kinds:?}");
    for kind in ["receipt", "transfer", "transfer_received", "delivery"] {
        assert!(steady_kinds[kind] > extra / 20, "{kind}: {steady_kinds:?}");
    }
    // The generator's books, an independent model, agree with the rules.
    let generator = &replay.programme.generator;
    let books: BTreeMap<(String, String, Option<String>, Option<Category>), u64> = generator
        .books
        .all()
        .map(|(org, asset, mark, balance)| {
            (
                (
                    generator.orgs[org].id.clone(),
                    asset.id().to_owned(),
                    mark.commune.map(|c| COMMUNES[c].code.to_owned()),
                    mark.category,
                ),
                balance,
            )
        })
        .collect();
    let ledger: BTreeMap<(String, String, Option<String>, Option<Category>), u64> = replay
        .state
        .balances()
        .map(|(key, balance)| {
            (
                (
                    key.org_id.to_string(),
                    key.asset_id.to_string(),
                    key.earmark.commune_code.clone(),
                    key.earmark.category,
                ),
                balance,
            )
        })
        .collect();
    assert_eq!(books.len(), ledger.len());
    assert!(
        books == ledger,
        "the generator's books differ from the ledger's balances"
    );
}
