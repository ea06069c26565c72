//! Rule tests: one or more per rule of SPEC §7, each refusal checked to leave
//! the state exactly as it was.

use std::collections::HashMap;

use aidledger_tlog::ed25519::SecretKey;
use aidledger_wire::{Message, Timestamp as PbTimestamp, pb};
use pb::event::Body as B;

use crate::event::{PublicKey, Timestamp};
use crate::rejection::{Code, Reason};
use crate::signing::{sign_event, verify_submission};
use crate::state::{BalanceKey, LedgerParams, State};
use crate::{Earmark, Rejection};

const ORIGIN: &str = "aid.test.example/rules";
const NOW: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z
const CAT_NUTRITION: i32 = pb::Category::Nutrition as i32;
const CAT_HEALTH: i32 = pb::Category::Health as i32;

/// A ledger under test with named keys.
struct World {
    state: State,
    keys: HashMap<&'static str, SecretKey>,
    next_uuid: u64,
}

fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn earmark(commune: &str, category: i32) -> Option<pb::Earmark> {
    Some(pb::Earmark {
        commune_code: commune.into(),
        category,
    })
}

fn roles(roles: &[pb::Role]) -> Vec<i32> {
    roles.iter().map(|r| *r as i32).collect()
}

impl World {
    fn empty() -> Self {
        let mut keys = HashMap::new();
        keys.insert("authority", SecretKey::generate());
        World {
            state: State::new(LedgerParams {
                origin: ORIGIN.into(),
                log_vkey: None,
                authority_key: None,
            }),
            keys,
            next_uuid: 1,
        }
    }

    fn genesis_body(&self) -> B {
        B::Genesis(pb::Genesis {
            origin: ORIGIN.into(),
            authority_org_id: "province".into(),
            authority_name: "Ủy ban nhân dân tỉnh Ninh Thuận".into(),
            authority_public_key: self.keys["authority"].public_key().to_vec().into(),
            log_vkey: "aid.test.example/rules+00000000+AQ".into(),
        })
    }

    /// Genesis, two agencies, a commune org, donors, communes, an in-kind
    /// asset and keys with the roles the tests need.
    fn standard() -> Self {
        let mut w = World::empty();
        w.ok("authority", "province", w.genesis_body());
        for code in ["C1", "C2"] {
            w.ok(
                "authority",
                "province",
                B::RegisterCommune(pb::RegisterCommune {
                    commune_code: code.into(),
                    name: format!("Xã {code}"),
                    district: "Bác Ái".into(),
                    province: "Ninh Thuận".into(),
                    children_count: 500,
                }),
            );
        }
        w.ok(
            "authority",
            "province",
            B::RegisterAsset(pb::RegisterAsset {
                asset_id: "RICE".into(),
                name: "Gạo".into(),
                unit: "kg".into(),
                unit_value_vnd: 20_000,
                in_kind: true,
            }),
        );
        for (org, kind) in [
            ("fund", pb::OrgKind::Agency),
            ("redcross", pb::OrgKind::Agency),
            ("commune-c1", pb::OrgKind::Commune),
            ("donor-a", pb::OrgKind::DonorBusiness),
            ("donor-b", pb::OrgKind::DonorIndividual),
        ] {
            w.ok(
                "authority",
                "province",
                B::RegisterOrg(pb::RegisterOrganization {
                    org_id: org.into(),
                    name: format!("Org {org}"),
                    kind: kind as i32,
                    parent_org_id: String::new(),
                    commune_code: String::new(),
                    public_name: true,
                    name_commitment: Default::default(),
                }),
            );
        }
        use pb::Role::*;
        w.register_key("fund", "fund", &[Receive, Transfer, Deliver, PublishNeed]);
        w.register_key("redcross", "redcross", &[Receive, Transfer, Deliver]);
        w.register_key("commune-c1", "commune-c1", &[Receive, Deliver, Inspect]);
        w.register_key("donor-a", "donor-a", &[Pledge]);
        w
    }

    fn register_key(&mut self, name: &'static str, org: &str, role_list: &[pb::Role]) {
        let key = SecretKey::generate();
        let body = B::RegisterKey(pb::RegisterKey {
            org_id: org.into(),
            public_key: key.public_key().to_vec().into(),
            roles: roles(role_list),
            label: format!("{name} key"),
        });
        self.keys.insert(name, key);
        self.ok("authority", "province", body);
    }

    fn event_bytes(&mut self, org: &str, body: B) -> Vec<u8> {
        let event_id = uuid(self.next_uuid);
        self.next_uuid += 1;
        pb::Event {
            event_id,
            org_id: org.into(),
            occurred_at: Some(PbTimestamp {
                seconds: NOW - 3600,
                nanos: 0,
            }),
            body: Some(body),
        }
        .encode_to_vec()
    }

    fn sign(&mut self, key: &str, org: &str, body: B) -> pb::SignedEvent {
        let bytes = self.event_bytes(org, body);
        sign_event(&self.keys[key], ORIGIN, bytes)
    }

    fn submit_signed(&mut self, signed: pb::SignedEvent) -> Result<u64, Rejection> {
        let checked = verify_submission(ORIGIN, signed)?;
        if let Some(seq) = self.state.duplicate_of(&checked) {
            return Ok(seq);
        }
        let seq = self.state.next_seq();
        self.state
            .apply(seq, Timestamp::from_seconds(NOW), &checked)
            .map(|applied| applied.seq)
    }

    fn submit(&mut self, key: &str, org: &str, body: B) -> Result<u64, Rejection> {
        let signed = self.sign(key, org, body);
        self.submit_signed(signed)
    }

    #[track_caller]
    fn ok(&mut self, key: &str, org: &str, body: B) -> u64 {
        match self.submit(key, org, body) {
            Ok(seq) => seq,
            Err(rejection) => panic!("refused: {rejection}"),
        }
    }

    /// Submits, expects `reason`, and checks the state did not change.
    #[track_caller]
    fn refused(&mut self, key: &str, org: &str, body: B, reason: Reason) -> Rejection {
        let signed = self.sign(key, org, body);
        self.refused_signed(signed, reason)
    }

    #[track_caller]
    fn refused_signed(&mut self, signed: pb::SignedEvent, reason: Reason) -> Rejection {
        let before = self.state.clone();
        match self.submit_signed(signed) {
            Ok(seq) => panic!("expected {reason}, but it was appended at {seq}"),
            Err(rejection) => {
                assert_eq!(rejection.reason, reason, "wrong reason: {rejection}");
                assert_eq!(rejection.code(), reason.code());
                assert!(
                    self.state == before,
                    "a refusal ({rejection}) changed the state"
                );
                rejection
            }
        }
    }

    fn balance(&self, org: &str, asset: &str, earmark: Earmark) -> u64 {
        self.state.balance(&BalanceKey {
            org_id: org.into(),
            asset_id: asset.into(),
            earmark,
        })
    }

    fn receipt(
        &mut self,
        id: &str,
        org: &str,
        donor: &str,
        qty: u64,
        mark: Option<pb::Earmark>,
    ) -> u64 {
        self.ok(org, org, receipt_body(id, donor, "", "VND", qty, mark))
    }
}

fn receipt_body(
    id: &str,
    donor: &str,
    pledge: &str,
    asset: &str,
    qty: u64,
    mark: Option<pb::Earmark>,
) -> B {
    B::Receipt(pb::Receipt {
        receipt_id: id.into(),
        donor_org_id: donor.into(),
        pledge_id: pledge.into(),
        asset_id: asset.into(),
        quantity: qty,
        earmark: mark,
        external_ref_hash: vec![7; 32].into(),
        note: String::new(),
    })
}

fn transfer_body(id: &str, to: &str, qty: u64, mark: Option<pb::Earmark>) -> B {
    B::Transfer(pb::Transfer {
        transfer_id: id.into(),
        to_org_id: to.into(),
        asset_id: "VND".into(),
        quantity: qty,
        earmark: mark,
        note: String::new(),
    })
}

fn received_body(id: &str, qty: u64) -> B {
    B::TransferReceived(pb::TransferReceived {
        transfer_id: id.into(),
        quantity_received: qty,
        note: String::new(),
    })
}

fn delivery_body(id: &str, commune: &str, category: i32, qty: u64, mark: Option<pb::Earmark>) -> B {
    B::Delivery(pb::Delivery {
        delivery_id: id.into(),
        commune_code: commune.into(),
        category,
        asset_id: "VND".into(),
        quantity: qty,
        earmark: mark,
        children_reached: 40,
        beneficiary_tokens: vec![vec![1; 32].into(), vec![2; 32].into()],
        evidence_hashes: vec![vec![3; 32].into()],
        period: "2024-12".into(),
        note: String::new(),
    })
}

fn pledge_body(id: &str, donor: &str, recipient: &str, qty: u64, mark: Option<pb::Earmark>) -> B {
    B::Pledge(pb::Pledge {
        pledge_id: id.into(),
        donor_org_id: donor.into(),
        recipient_org_id: recipient.into(),
        asset_id: "VND".into(),
        quantity: qty,
        earmark: mark,
        due_date: "2025-06-30".into(),
    })
}

fn nutrition_c1() -> Earmark {
    Earmark {
        commune_code: Some("C1".into()),
        category: Some(crate::Category::Nutrition),
    }
}

// ---- genesis and keys -------------------------------------------------

#[test]
fn the_first_entry_must_be_a_genesis() {
    let mut w = World::empty();
    let body = B::RegisterCommune(pb::RegisterCommune {
        commune_code: "C1".into(),
        name: "Xã".into(),
        ..Default::default()
    });
    let signed = w.sign("authority", "province", body);
    // The key is unknown, but the missing genesis is the first thing wrong.
    w.refused_signed(signed, Reason::GenesisRequired);
}

#[test]
fn genesis_registers_authority_key_and_vnd() {
    let w = World::standard();
    let authority = PublicKey(w.keys["authority"].public_key());
    let key = w.state.key(&authority).expect("authority key registered");
    assert_eq!(key.org_id, "province");
    assert_eq!(key.roles, vec![crate::Role::Authority]);
}

#[test]
fn genesis_is_refused_after_the_first_entry() {
    let mut w = World::standard();
    let body = w.genesis_body();
    w.refused("authority", "province", body, Reason::GenesisNotFirst);
}

#[test]
fn genesis_for_another_origin_is_refused() {
    let mut w = World::empty();
    let B::Genesis(mut genesis) = w.genesis_body() else {
        unreachable!()
    };
    genesis.origin = "aid.other.example/ledger".into();
    w.refused(
        "authority",
        "province",
        B::Genesis(genesis),
        Reason::OriginMismatch,
    );
}

#[test]
fn genesis_signed_by_another_key_is_refused() {
    let mut w = World::empty();
    w.keys.insert("intruder", SecretKey::generate());
    let body = w.genesis_body();
    w.refused("intruder", "province", body, Reason::GenesisSignerMismatch);
}

#[test]
fn genesis_must_use_the_configured_authority_key_and_log_vkey() {
    let mut w = World::empty();
    w.state = State::new(LedgerParams {
        origin: ORIGIN.into(),
        log_vkey: None,
        authority_key: Some(PublicKey(SecretKey::generate().public_key())),
    });
    let body = w.genesis_body();
    w.refused("authority", "province", body, Reason::GenesisSignerMismatch);

    let mut w = World::empty();
    w.state = State::new(LedgerParams {
        origin: ORIGIN.into(),
        log_vkey: Some("aid.test.example/rules+11111111+AQ".into()),
        authority_key: None,
    });
    let body = w.genesis_body();
    w.refused("authority", "province", body, Reason::OriginMismatch);
}

#[test]
fn a_signature_for_another_origin_is_refused() {
    let mut w = World::standard();
    let bytes = w.event_bytes("fund", transfer_body("t1", "redcross", 1, None));
    let signed = sign_event(&w.keys["fund"], "aid.other.example/ledger", bytes);
    w.refused_signed(signed, Reason::BadSignature);
}

#[test]
fn a_tampered_event_is_refused() {
    let mut w = World::standard();
    let mut signed = w.sign("fund", "fund", transfer_body("t1", "redcross", 1, None));
    let mut tampered = signed.event.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    signed.event = tampered.into();
    // Either undecodable or a bad signature; never accepted.
    let before = w.state.clone();
    assert!(w.submit_signed(signed).is_err());
    assert!(w.state == before);
}

#[test]
fn an_unregistered_key_is_unauthenticated() {
    let mut w = World::standard();
    w.keys.insert("stranger", SecretKey::generate());
    let r = w.refused(
        "stranger",
        "fund",
        transfer_body("t1", "redcross", 1, None),
        Reason::UnknownKey,
    );
    assert_eq!(r.code(), Code::Unauthenticated);
}

#[test]
fn a_key_signs_only_for_its_own_organisation() {
    let mut w = World::standard();
    w.receipt("r1", "fund", "donor-a", 100, None);
    w.refused(
        "redcross",
        "fund",
        transfer_body("t1", "redcross", 1, None),
        Reason::KeyOrgMismatch,
    );
}

#[test]
fn a_key_signs_only_what_its_roles_allow() {
    let mut w = World::standard();
    // donor-a's key has PLEDGE only.
    w.refused(
        "donor-a",
        "donor-a",
        receipt_body("r1", "donor-b", "", "VND", 1, None),
        Reason::RoleNotAllowed,
    );
    let r = w.refused(
        "fund",
        "fund",
        B::RegisterCommune(pb::RegisterCommune {
            commune_code: "C9".into(),
            name: "Xã C9".into(),
            ..Default::default()
        }),
        Reason::RoleNotAllowed,
    );
    assert_eq!(r.code(), Code::PermissionDenied);
}

#[test]
fn register_key_rules() {
    let mut w = World::standard();
    let key = SecretKey::generate().public_key().to_vec();
    let body = |org: &str, key: &Vec<u8>| {
        B::RegisterKey(pb::RegisterKey {
            org_id: org.into(),
            public_key: key.clone().into(),
            roles: roles(&[pb::Role::Receive]),
            label: String::new(),
        })
    };
    w.refused(
        "authority",
        "province",
        body("nobody", &key),
        Reason::UnknownOrganization,
    );
    w.refused("fund", "fund", body("fund", &key), Reason::RoleNotAllowed);
    let fund_key = w.keys["fund"].public_key().to_vec();
    let r = w.refused(
        "authority",
        "province",
        body("redcross", &fund_key),
        Reason::KeyAlreadyRegistered,
    );
    assert_eq!(r.code(), Code::AlreadyExists);
    w.refused(
        "authority",
        "province",
        body("redcross", &vec![0u8; 32]),
        Reason::InvalidKey,
    );
    w.ok("authority", "province", body("redcross", &key));
}

#[test]
fn revoke_key_rules() {
    let mut w = World::standard();
    let revoke = |key: [u8; 32]| {
        B::RevokeKey(pb::RevokeKey {
            public_key: key.to_vec().into(),
            reason: "lost".into(),
        })
    };
    let fund = w.keys["fund"].public_key();
    let authority = w.keys["authority"].public_key();
    w.refused(
        "authority",
        "province",
        revoke([9; 32]),
        Reason::KeyNotRegistered,
    );
    // Another organisation without AUTHORITY may not revoke fund's key.
    w.refused("redcross", "redcross", revoke(fund), Reason::NotAuthorized);
    // The ledger must keep an authority key.
    w.refused(
        "authority",
        "province",
        revoke(authority),
        Reason::LastAuthorityKey,
    );
    // An organisation may revoke its own key, even with that key.
    w.ok("fund", "fund", revoke(fund));
    w.refused(
        "authority",
        "province",
        revoke(fund),
        Reason::KeyAlreadyRevoked,
    );
    let r = w.refused(
        "fund",
        "fund",
        transfer_body("t1", "redcross", 1, None),
        Reason::KeyRevoked,
    );
    assert_eq!(r.code(), Code::PermissionDenied);
}

#[test]
fn a_second_authority_key_allows_revoking_the_first() {
    let mut w = World::standard();
    w.register_key("authority2", "province", &[pb::Role::Authority]);
    let first = w.keys["authority"].public_key();
    w.ok(
        "authority2",
        "province",
        B::RevokeKey(pb::RevokeKey {
            public_key: first.to_vec().into(),
            reason: "rotated".into(),
        }),
    );
    let second = w.keys["authority2"].public_key();
    w.refused(
        "authority2",
        "province",
        B::RevokeKey(pb::RevokeKey {
            public_key: second.to_vec().into(),
            reason: String::new(),
        }),
        Reason::LastAuthorityKey,
    );
}

// ---- registrations ----------------------------------------------------

#[test]
fn register_org_rules() {
    let mut w = World::standard();
    let org = |id: &str, kind: pb::OrgKind, parent: &str, commune: &str| {
        B::RegisterOrg(pb::RegisterOrganization {
            org_id: id.into(),
            name: "Tổ chức".into(),
            kind: kind as i32,
            parent_org_id: parent.into(),
            commune_code: commune.into(),
            public_name: true,
            name_commitment: Default::default(),
        })
    };
    let r = w.refused(
        "authority",
        "province",
        org("fund", pb::OrgKind::Agency, "", ""),
        Reason::IdExists,
    );
    assert_eq!(r.code(), Code::AlreadyExists);
    w.refused(
        "authority",
        "province",
        org("school-1", pb::OrgKind::School, "nobody", ""),
        Reason::UnknownOrganization,
    );
    w.refused(
        "authority",
        "province",
        org("school-1", pb::OrgKind::School, "", "C99"),
        Reason::UnknownCommune,
    );
    w.refused(
        "authority",
        "province",
        org("x", pb::OrgKind::Unspecified, "", ""),
        Reason::InvalidEnum,
    );
    w.ok(
        "authority",
        "province",
        org("school-1", pb::OrgKind::School, "commune-c1", "C1"),
    );
    // RECEIVE may register donors, and only donors.
    w.ok(
        "fund",
        "fund",
        org("donor-c", pb::OrgKind::DonorIndividual, "", ""),
    );
    w.refused(
        "fund",
        "fund",
        org("agency-x", pb::OrgKind::Agency, "", ""),
        Reason::RoleNotAllowed,
    );
}

// ---- SPEC §7.5: hidden donors ------------------------------------------

fn hidden_donor(id: &str, kind: pb::OrgKind, name: &str, commitment: Vec<u8>) -> B {
    B::RegisterOrg(pb::RegisterOrganization {
        org_id: id.into(),
        name: name.into(),
        kind: kind as i32,
        public_name: false,
        name_commitment: commitment.into(),
        ..Default::default()
    })
}

#[test]
fn a_hidden_donor_is_registered_with_a_commitment_and_no_name() {
    let mut w = World::standard();
    let salt = [9u8; 32];
    let commitment = crate::privacy::name_commitment(&salt, "Nguyễn Thị Lan");
    let seq = w.ok(
        "fund",
        "fund",
        hidden_donor(
            "an-7f3a9c",
            pb::OrgKind::DonorIndividual,
            "",
            commitment.to_vec(),
        ),
    );
    assert!(seq > 0);
    // The id is taken like any other organisation's.
    w.refused(
        "fund",
        "fund",
        hidden_donor(
            "an-7f3a9c",
            pb::OrgKind::DonorIndividual,
            "",
            commitment.to_vec(),
        ),
        Reason::IdExists,
    );
    // And it receives gifts like any donor.
    w.receipt("r-hidden", "fund", "an-7f3a9c", 1_000, None);
}

#[test]
fn every_hidden_donor_rule_has_its_reason_and_changes_nothing() {
    use pb::OrgKind::*;
    let mut w = World::standard();
    let good = vec![5u8; 32];
    // SPEC §7.5: a name in the log is HIDDEN_NAME_IN_LOG, even with a
    // commitment beside it.
    let r = w.refused(
        "fund",
        "fund",
        hidden_donor("an-1", DonorIndividual, "Trần Văn Nam", good.clone()),
        Reason::HiddenNameInLog,
    );
    assert_eq!(r.code(), Code::InvalidArgument);
    assert!(
        !r.detail.contains("Trần"),
        "the refusal repeats the name: {r}"
    );
    // Only donor kinds may be hidden.
    for kind in [Agency, Commune, School, Clinic, Authority] {
        let r = w.refused(
            "authority",
            "province",
            hidden_donor("org-1", kind, "", good.clone()),
            Reason::HiddenNameNotAllowed,
        );
        assert_eq!(r.code(), Code::InvalidArgument);
    }
    // Every donor kind may.
    for (i, kind) in [DonorBusiness, DonorOrganization, DonorIndividual]
        .into_iter()
        .enumerate()
    {
        w.ok(
            "fund",
            "fund",
            hidden_donor(&format!("an-ok-{i}"), kind, "", good.clone()),
        );
    }
    // The commitment is required and 32 bytes.
    w.refused(
        "fund",
        "fund",
        hidden_donor("an-2", DonorIndividual, "", Vec::new()),
        Reason::MissingField,
    );
    for len in [1, 31, 33, 64] {
        w.refused(
            "fund",
            "fund",
            hidden_donor("an-2", DonorIndividual, "", vec![1; len]),
            Reason::InvalidHash,
        );
    }
    // A public name carries no commitment.
    w.refused(
        "fund",
        "fund",
        B::RegisterOrg(pb::RegisterOrganization {
            org_id: "donor-pub".into(),
            name: "Công ty Ánh Dương".into(),
            kind: DonorBusiness as i32,
            public_name: true,
            name_commitment: good.clone().into(),
            ..Default::default()
        }),
        Reason::InvalidHash,
    );
    // Format rules come before state: a hidden name on an existing id is
    // still HIDDEN_NAME_IN_LOG, not ID_EXISTS (SPEC §6.1 step 2 before 10).
    w.refused(
        "fund",
        "fund",
        hidden_donor("donor-b", DonorIndividual, "Lê Thị Hoa", good),
        Reason::HiddenNameInLog,
    );
}

#[test]
fn the_commitment_formula_is_the_specs() {
    // SPEC §7.5, computed here by hand: SHA-256 over the domain, the salt and
    // the NFC name, each separated by a line feed.
    use sha2::{Digest as _, Sha256};
    let salt = [0xabu8; 32];
    let mut expected = Sha256::new();
    expected.update(b"aidledger/v1/name\n");
    expected.update(salt);
    expected.update(b"\n");
    expected.update("Phạm Thị Mai".as_bytes());
    let expected: [u8; 32] = expected.finalize().into();
    assert_eq!(
        crate::privacy::name_commitment(&salt, "Phạm Thị Mai"),
        expected
    );
    // The name is normalised first: decomposed input commits the same.
    let decomposed: String =
        unicode_normalization::UnicodeNormalization::nfd("Phạm Thị Mai").collect();
    assert_ne!(decomposed, "Phạm Thị Mai");
    assert_eq!(
        crate::privacy::name_commitment(&salt, &decomposed),
        expected
    );
    assert_ne!(
        crate::privacy::name_commitment(&[0xac; 32], "Phạm Thị Mai"),
        expected,
        "another salt, another commitment"
    );
}

#[test]
fn references_are_normalised_then_keyed() {
    use crate::privacy::{RefKey, SecretKey32, normalize_reference};
    assert_eq!(normalize_reference(" ft25 123\t456 789 "), "FT25123456789");
    // Only ASCII letters are upper-cased; other letters stay as written, in NFC.
    let decomposed: String =
        unicode_normalization::UnicodeNormalization::nfd("chuyển khoản").collect();
    assert_eq!(normalize_reference(&decomposed), "CHUYểNKHOảN");
    let key = RefKey(SecretKey32::from_bytes([1; 32]));
    let other = RefKey(SecretKey32::from_bytes([2; 32]));
    assert_eq!(
        key.external_ref_hash("FT25123456789"),
        key.external_ref_hash("ft25 1234 56789")
    );
    assert_ne!(
        key.external_ref_hash("FT25123456789"),
        other.external_ref_hash("FT25123456789")
    );
    // Not the unkeyed hash of either form.
    use sha2::{Digest as _, Sha256};
    let unkeyed: [u8; 32] = Sha256::digest(b"FT25123456789").into();
    assert_ne!(key.external_ref_hash("FT25123456789"), unkeyed);
}

#[test]
fn key_files_are_64_hex_characters_and_never_printed() {
    use crate::privacy::SecretKey32;
    let key = SecretKey32::from_bytes([0x5a; 32]);
    let text = key.to_hex();
    assert_eq!(text.len(), 64);
    assert_eq!(SecretKey32::from_hex(&format!("  {text}\n")).unwrap(), key);
    assert!(SecretKey32::from_hex(&text[..62]).is_err());
    assert!(SecretKey32::from_hex(&format!("{}zz", &text[..62])).is_err());
    let error = SecretKey32::from_hex("secret-but-wrong")
        .unwrap_err()
        .to_string();
    assert!(!error.contains("secret"), "{error}");
    assert!(!format!("{key:?}").contains("5a5a"));
}

#[test]
fn notes_that_look_personal_are_warned_about() {
    use crate::privacy::{TextWarning, text_warnings};
    assert_eq!(text_warnings("Bữa trưa tháng 3 cho 120 học sinh"), vec![]);
    assert_eq!(
        text_warnings("Hỗ trợ tỉnh Lâm Đồng, Hà Nội, TP Hồ Chí Minh"),
        vec![]
    );
    assert_eq!(
        text_warnings("CCCD 012345678 của mẹ em"),
        vec![TextWarning::LongNumber { digits: 9 }]
    );
    assert_eq!(
        text_warnings("gọi 0912 345 678"),
        vec![TextWarning::LongNumber { digits: 10 }]
    );
    assert_eq!(
        text_warnings("hóa đơn 12345678"),
        vec![],
        "8 digits is fine"
    );
    assert_eq!(
        text_warnings("giao cho em Nguyễn Văn An lớp 3"),
        vec![TextWarning::LooksLikeName {
            words: "Nguyễn Văn An".into()
        }]
    );
}

#[test]
fn register_commune_and_asset_ids_are_new() {
    let mut w = World::standard();
    w.refused(
        "authority",
        "province",
        B::RegisterCommune(pb::RegisterCommune {
            commune_code: "C1".into(),
            name: "Again".into(),
            ..Default::default()
        }),
        Reason::IdExists,
    );
    for asset in ["VND", "RICE"] {
        w.refused(
            "authority",
            "province",
            B::RegisterAsset(pb::RegisterAsset {
                asset_id: asset.into(),
                name: "Again".into(),
                unit: "x".into(),
                unit_value_vnd: 1,
                in_kind: false,
            }),
            Reason::IdExists,
        );
    }
}

#[test]
fn publish_need_and_plan_reference_known_communes_and_assets() {
    let mut w = World::standard();
    let need = |id: &str, commune: &str, asset: &str| {
        B::PublishNeed(pb::PublishNeed {
            need_id: id.into(),
            commune_code: commune.into(),
            category: CAT_NUTRITION,
            year: 2025,
            asset_id: asset.into(),
            quantity: 1_000,
            children_targeted: 120,
            description: "Bữa trưa cho học sinh".into(),
        })
    };
    w.refused(
        "fund",
        "fund",
        need("n1", "C99", "RICE"),
        Reason::UnknownCommune,
    );
    w.refused(
        "fund",
        "fund",
        need("n1", "C1", "SALT"),
        Reason::UnknownAsset,
    );
    w.refused(
        "redcross",
        "redcross",
        need("n1", "C1", "RICE"),
        Reason::RoleNotAllowed,
    );
    w.ok("fund", "fund", need("n1", "C1", "RICE"));
    w.refused(
        "authority",
        "province",
        need("n1", "C2", "RICE"),
        Reason::IdExists,
    );

    let plan = |commune: &str, asset: &str| {
        B::PublishPlan(pb::PublishAnnualPlan {
            year: 2025,
            targets: vec![pb::PlanTarget {
                category: CAT_HEALTH,
                commune_code: commune.into(),
                asset_id: asset.into(),
                quantity: 10,
                children_targeted: 10,
            }],
        })
    };
    w.refused(
        "authority",
        "province",
        plan("C99", "VND"),
        Reason::UnknownCommune,
    );
    w.refused(
        "authority",
        "province",
        plan("C1", "GOLD"),
        Reason::UnknownAsset,
    );
    w.refused("fund", "fund", plan("C1", "VND"), Reason::RoleNotAllowed);
    w.ok("authority", "province", plan("C1", "VND"));
    w.ok("authority", "province", plan("", "VND"));
}

// ---- pledges and receipts ----------------------------------------------

#[test]
fn pledge_is_signed_by_donor_or_recorded_by_recipient() {
    let mut w = World::standard();
    w.ok(
        "donor-a",
        "donor-a",
        pledge_body("p1", "donor-a", "fund", 1_000, None),
    );
    w.ok(
        "fund",
        "fund",
        pledge_body("p2", "donor-b", "fund", 1_000, None),
    );
    // A recipient cannot record a pledge to someone else.
    w.refused(
        "fund",
        "fund",
        pledge_body("p3", "donor-b", "redcross", 1, None),
        Reason::RoleNotAllowed,
    );
    // A donor cannot pledge in another donor's name.
    w.refused(
        "donor-a",
        "donor-a",
        pledge_body("p3", "donor-b", "fund", 1, None),
        Reason::RoleNotAllowed,
    );
    w.refused(
        "fund",
        "fund",
        pledge_body("p3", "nobody", "fund", 1, None),
        Reason::UnknownOrganization,
    );
    w.refused(
        "fund",
        "fund",
        pledge_body("p3", "donor-b", "fund", 1, earmark("C99", 0)),
        Reason::UnknownCommune,
    );
    w.refused(
        "fund",
        "fund",
        pledge_body("p1", "donor-b", "fund", 1, None),
        Reason::IdExists,
    );
}

#[test]
fn cancel_pledge_rules() {
    let mut w = World::standard();
    w.ok(
        "donor-a",
        "donor-a",
        pledge_body("p1", "donor-a", "fund", 1_000, None),
    );
    let cancel = |id: &str| {
        B::CancelPledge(pb::CancelPledge {
            pledge_id: id.into(),
            reason: "changed plans".into(),
        })
    };
    w.refused("fund", "fund", cancel("p1"), Reason::NotAuthorized);
    w.refused("donor-a", "donor-a", cancel("p9"), Reason::UnknownPledge);
    w.ok("donor-a", "donor-a", cancel("p1"));
    w.refused("donor-a", "donor-a", cancel("p1"), Reason::PledgeNotOpen);
    w.refused(
        "fund",
        "fund",
        receipt_body("r1", "donor-a", "p1", "VND", 10, None),
        Reason::PledgeNotOpen,
    );
}

#[test]
fn receipt_against_a_pledge_must_match_it() {
    let mut w = World::standard();
    w.ok(
        "donor-a",
        "donor-a",
        pledge_body("p1", "donor-a", "fund", 1_000, earmark("C1", CAT_NUTRITION)),
    );
    let mark = || earmark("C1", CAT_NUTRITION);
    w.refused(
        "fund",
        "fund",
        receipt_body("r1", "donor-b", "p1", "VND", 10, mark()),
        Reason::PledgeMismatch,
    );
    w.refused(
        "fund",
        "fund",
        receipt_body("r1", "donor-a", "p1", "RICE", 10, mark()),
        Reason::PledgeMismatch,
    );
    w.refused(
        "redcross",
        "redcross",
        receipt_body("r1", "donor-a", "p1", "VND", 10, mark()),
        Reason::PledgeMismatch,
    );
    w.refused(
        "fund",
        "fund",
        receipt_body("r1", "donor-a", "p1", "VND", 10, None),
        Reason::EarmarkMismatch,
    );
    w.refused(
        "fund",
        "fund",
        receipt_body("r1", "donor-a", "p9", "VND", 10, mark()),
        Reason::UnknownPledge,
    );
    w.ok(
        "fund",
        "fund",
        receipt_body("r1", "donor-a", "p1", "VND", 600, mark()),
    );
    w.ok(
        "fund",
        "fund",
        receipt_body("r2", "donor-a", "p1", "VND", 400, mark()),
    );
    assert_eq!(w.state.pledge("p1").unwrap().received, 1_000);
    assert_eq!(w.balance("fund", "VND", nutrition_c1()), 1_000);
    // Fulfilled: no more receipts against it.
    w.refused(
        "fund",
        "fund",
        receipt_body("r3", "donor-a", "p1", "VND", 1, mark()),
        Reason::PledgeNotOpen,
    );
}

#[test]
fn receipt_rules() {
    let mut w = World::standard();
    w.refused(
        "fund",
        "fund",
        receipt_body("r1", "nobody", "", "VND", 10, None),
        Reason::UnknownOrganization,
    );
    w.refused(
        "fund",
        "fund",
        receipt_body("r1", "donor-a", "", "GOLD", 10, None),
        Reason::UnknownAsset,
    );
    w.refused(
        "fund",
        "fund",
        receipt_body("r1", "donor-a", "", "VND", 10, earmark("C99", 0)),
        Reason::UnknownCommune,
    );
    w.receipt("r1", "fund", "donor-a", 10, None);
    w.refused(
        "fund",
        "fund",
        receipt_body("r1", "donor-a", "", "VND", 10, None),
        Reason::IdExists,
    );
    assert_eq!(w.balance("fund", "VND", Earmark::default()), 10);
}

// ---- transfers ----------------------------------------------------------

#[test]
fn transfer_needs_the_balance_in_the_same_earmark() {
    let mut w = World::standard();
    w.receipt("r1", "fund", "donor-a", 1_000, earmark("C1", CAT_NUTRITION));
    w.receipt("r2", "fund", "donor-b", 50, None);
    // The unrestricted pool has 50; the nutrition pool's money cannot cover it.
    let r = w.refused(
        "fund",
        "fund",
        transfer_body("t1", "redcross", 100, None),
        Reason::InsufficientBalance,
    );
    assert_eq!(r.code(), Code::FailedPrecondition);
    w.refused(
        "fund",
        "fund",
        transfer_body("t1", "redcross", 1_001, earmark("C1", CAT_NUTRITION)),
        Reason::InsufficientBalance,
    );
    w.refused(
        "fund",
        "fund",
        transfer_body("t1", "fund", 1, None),
        Reason::SelfTransfer,
    );
    w.refused(
        "fund",
        "fund",
        transfer_body("t1", "nobody", 1, None),
        Reason::UnknownOrganization,
    );
    w.ok(
        "fund",
        "fund",
        transfer_body("t1", "commune-c1", 700, earmark("C1", CAT_NUTRITION)),
    );
    // Debited at once; nobody holds it while in transit.
    assert_eq!(w.balance("fund", "VND", nutrition_c1()), 300);
    assert_eq!(w.balance("commune-c1", "VND", nutrition_c1()), 0);
}

#[test]
fn transfer_received_rules() {
    let mut w = World::standard();
    w.receipt("r1", "fund", "donor-a", 1_000, earmark("C1", CAT_NUTRITION));
    w.ok(
        "fund",
        "fund",
        transfer_body("t1", "commune-c1", 700, earmark("C1", CAT_NUTRITION)),
    );
    w.refused(
        "redcross",
        "redcross",
        received_body("t1", 700),
        Reason::NotAuthorized,
    );
    w.refused(
        "commune-c1",
        "commune-c1",
        received_body("t9", 700),
        Reason::UnknownTransfer,
    );
    w.refused(
        "commune-c1",
        "commune-c1",
        received_body("t1", 701),
        Reason::QuantityExceedsTransfer,
    );
    // 690 arrived: 10 is a recorded loss; the recipient holds 690 in the same earmark.
    w.ok("commune-c1", "commune-c1", received_body("t1", 690));
    assert_eq!(w.balance("commune-c1", "VND", nutrition_c1()), 690);
    assert_eq!(w.state.transfer("t1").unwrap().received, Some(690));
    w.refused(
        "commune-c1",
        "commune-c1",
        received_body("t1", 690),
        Reason::TransferAlreadyReceived,
    );
}

// ---- deliveries -------------------------------------------------------

#[test]
fn delivery_must_match_its_earmark_and_balance() {
    let mut w = World::standard();
    w.receipt("r1", "fund", "donor-a", 1_000, earmark("C1", CAT_NUTRITION));
    let mark = || earmark("C1", CAT_NUTRITION);
    let r = w.refused(
        "fund",
        "fund",
        delivery_body("d1", "C2", CAT_NUTRITION, 100, mark()),
        Reason::EarmarkMismatch,
    );
    assert_eq!(r.code(), Code::FailedPrecondition);
    w.refused(
        "fund",
        "fund",
        delivery_body("d1", "C1", CAT_HEALTH, 100, mark()),
        Reason::EarmarkMismatch,
    );
    w.refused(
        "fund",
        "fund",
        delivery_body("d1", "C1", CAT_NUTRITION, 1_001, mark()),
        Reason::InsufficientBalance,
    );
    w.refused(
        "fund",
        "fund",
        delivery_body("d1", "C99", CAT_NUTRITION, 1, None),
        Reason::UnknownCommune,
    );
    w.refused(
        "donor-a",
        "donor-a",
        delivery_body("d1", "C1", CAT_NUTRITION, 1, None),
        Reason::RoleNotAllowed,
    );
    w.ok(
        "fund",
        "fund",
        delivery_body("d1", "C1", CAT_NUTRITION, 1_000, mark()),
    );
    assert_eq!(w.balance("fund", "VND", nutrition_c1()), 0);
    // Category-only earmark: any commune, that category.
    w.receipt("r2", "fund", "donor-a", 10, earmark("", CAT_HEALTH));
    w.ok(
        "fund",
        "fund",
        delivery_body("d2", "C2", CAT_HEALTH, 10, earmark("", CAT_HEALTH)),
    );
}

// ---- inspections ------------------------------------------------------

#[test]
fn inspection_is_for_in_kind_receipts_and_transfers() {
    let mut w = World::standard();
    w.receipt("r-cash", "commune-c1", "donor-a", 10, None);
    w.ok(
        "commune-c1",
        "commune-c1",
        receipt_body("r-rice", "donor-a", "", "RICE", 500, None),
    );
    let inspect = |subject: &str, passed: bool| {
        B::Inspection(pb::GoodsInspection {
            subject_id: subject.into(),
            passed,
            standard: "TCVN 11888:2017".into(),
            note: "Gạo ẩm mốc".into(),
        })
    };
    w.refused(
        "commune-c1",
        "commune-c1",
        inspect("r-cash", false),
        Reason::SubjectNotInKind,
    );
    w.refused(
        "commune-c1",
        "commune-c1",
        inspect("nothing", false),
        Reason::UnknownSubject,
    );
    w.refused(
        "fund",
        "fund",
        inspect("r-rice", false),
        Reason::RoleNotAllowed,
    );
    w.ok("commune-c1", "commune-c1", inspect("r-rice", false));
}

// ---- reversals --------------------------------------------------------

fn reversal(target: &str) -> B {
    B::Reversal(pb::Reversal {
        target_event_id: target.into(),
        reason: "entered twice by mistake".into(),
    })
}

#[test]
fn reversing_a_receipt_needs_the_balance_still_there() {
    let mut w = World::standard();
    w.receipt("r1", "fund", "donor-a", 1_000, None);
    let receipt_event = uuid(w.next_uuid - 1);
    w.ok("fund", "fund", transfer_body("t1", "redcross", 600, None));
    w.refused(
        "fund",
        "fund",
        reversal(&receipt_event),
        Reason::InsufficientBalance,
    );
    w.receipt("r2", "fund", "donor-b", 600, None);
    w.refused(
        "redcross",
        "redcross",
        reversal(&receipt_event),
        Reason::NotAuthorized,
    );
    w.ok("fund", "fund", reversal(&receipt_event));
    assert_eq!(w.balance("fund", "VND", Earmark::default()), 0);
    w.refused(
        "fund",
        "fund",
        reversal(&receipt_event),
        Reason::AlreadyReversed,
    );
}

#[test]
fn reversing_a_pledged_receipt_reopens_the_pledge() {
    let mut w = World::standard();
    w.ok(
        "donor-a",
        "donor-a",
        pledge_body("p1", "donor-a", "fund", 100, None),
    );
    w.ok(
        "fund",
        "fund",
        receipt_body("r1", "donor-a", "p1", "VND", 100, None),
    );
    let receipt_event = uuid(w.next_uuid - 1);
    assert!(!w.state.pledge("p1").unwrap().is_open());
    // The authority may reverse anyone's event.
    w.ok("authority", "province", reversal(&receipt_event));
    assert!(w.state.pledge("p1").unwrap().is_open());
    assert_eq!(w.state.pledge("p1").unwrap().received, 0);
}

#[test]
fn a_transfer_is_reversible_only_before_it_is_received() {
    let mut w = World::standard();
    w.receipt("r1", "fund", "donor-a", 1_000, None);
    w.ok("fund", "fund", transfer_body("t1", "commune-c1", 400, None));
    let t1 = uuid(w.next_uuid - 1);
    w.ok("fund", "fund", transfer_body("t2", "commune-c1", 100, None));
    let t2 = uuid(w.next_uuid - 1);
    w.ok("commune-c1", "commune-c1", received_body("t2", 100));
    w.refused(
        "fund",
        "fund",
        reversal(&t2),
        Reason::TransferAlreadyReceived,
    );
    w.ok("fund", "fund", reversal(&t1));
    assert_eq!(w.balance("fund", "VND", Earmark::default()), 900);
    w.refused(
        "commune-c1",
        "commune-c1",
        received_body("t1", 400),
        Reason::TransferReversed,
    );
}

#[test]
fn reversing_a_delivery_credits_the_deliverer() {
    let mut w = World::standard();
    w.receipt("r1", "fund", "donor-a", 100, None);
    w.ok(
        "fund",
        "fund",
        delivery_body("d1", "C1", CAT_HEALTH, 100, None),
    );
    let d1 = uuid(w.next_uuid - 1);
    assert_eq!(w.balance("fund", "VND", Earmark::default()), 0);
    w.ok("fund", "fund", reversal(&d1));
    assert_eq!(w.balance("fund", "VND", Earmark::default()), 100);
}

#[test]
fn registrations_and_unknown_events_are_not_reversible() {
    let mut w = World::standard();
    let genesis = uuid(1);
    w.refused(
        "authority",
        "province",
        reversal(&genesis),
        Reason::NotReversible,
    );
    w.refused(
        "authority",
        "province",
        reversal(&uuid(999_999)),
        Reason::UnknownEvent,
    );
}

// ---- commendations ----------------------------------------------------

#[test]
fn commendation_rules() {
    let mut w = World::standard();
    let commend = |org: &str| {
        B::Commendation(pb::Commendation {
            honoree_org_id: org.into(),
            year: 2025,
            decision_ref: "QĐ 123/QĐ-UBND".into(),
            reason: "Đóng góp xuất sắc".into(),
        })
    };
    w.refused(
        "authority",
        "province",
        commend("nobody"),
        Reason::UnknownOrganization,
    );
    w.refused("fund", "fund", commend("donor-a"), Reason::RoleNotAllowed);
    w.ok("authority", "province", commend("donor-a"));
}

// ---- format and idempotency -------------------------------------------

fn receipt_fields() -> pb::Receipt {
    match receipt_body("r1", "donor-a", "", "VND", 1, None) {
        B::Receipt(r) => r,
        _ => unreachable!(),
    }
}

fn pledge_fields() -> pb::Pledge {
    match pledge_body("p1", "donor-a", "fund", 1, None) {
        B::Pledge(p) => p,
        _ => unreachable!(),
    }
}

fn delivery_fields() -> pb::Delivery {
    match delivery_body("d1", "C1", CAT_HEALTH, 1, None) {
        B::Delivery(d) => d,
        _ => unreachable!(),
    }
}

#[test]
fn malformed_events_are_invalid_arguments() {
    let mut w = World::standard();
    let cases: Vec<(B, Reason)> = vec![
        (
            receipt_body("bad id!", "donor-a", "", "VND", 1, None),
            Reason::InvalidId,
        ),
        (
            receipt_body(&"x".repeat(65), "donor-a", "", "VND", 1, None),
            Reason::InvalidId,
        ),
        (
            receipt_body("r1", "donor-a", "", "VND", 0, None),
            Reason::InvalidQuantity,
        ),
        (
            receipt_body("r1", "donor-a", "", "VND", 1_000_000_000_000_001, None),
            Reason::InvalidQuantity,
        ),
        (
            receipt_body("r1", "", "", "VND", 1, None),
            Reason::MissingField,
        ),
        (
            receipt_body("r1", "donor-a", "", "VND", 1, earmark("", 99)),
            Reason::InvalidEnum,
        ),
        (delivery_body("d1", "C1", 0, 1, None), Reason::InvalidEnum),
        (
            B::Receipt(pb::Receipt {
                external_ref_hash: vec![1; 31].into(),
                ..receipt_fields()
            }),
            Reason::InvalidHash,
        ),
        (
            B::Receipt(pb::Receipt {
                // "Hòa" with a combining grave accent: not NFC.
                note: "Ho\u{0300}a".into(),
                ..receipt_fields()
            }),
            Reason::InvalidText,
        ),
        (
            B::Receipt(pb::Receipt {
                note: "line\nbreak".into(),
                ..receipt_fields()
            }),
            Reason::InvalidText,
        ),
        (
            B::Receipt(pb::Receipt {
                note: "ư".repeat(2_001),
                ..receipt_fields()
            }),
            Reason::InvalidText,
        ),
        (
            B::Pledge(pb::Pledge {
                due_date: "2025-02-30".into(),
                ..pledge_fields()
            }),
            Reason::InvalidDate,
        ),
        (
            B::Delivery(pb::Delivery {
                period: "2025-13".into(),
                ..delivery_fields()
            }),
            Reason::InvalidDate,
        ),
        (
            B::Delivery(pb::Delivery {
                beneficiary_tokens: vec![vec![1; 32].into(), vec![1; 32].into()],
                ..delivery_fields()
            }),
            Reason::InvalidHash,
        ),
    ];
    for (body, reason) in cases {
        let r = w.refused("fund", "fund", body, reason);
        assert_eq!(r.code(), Code::InvalidArgument, "{r}");
    }
}

/// The first fault in a list's order is the one named, whichever kind it
/// is, and every message names its field by its full path.
#[test]
fn a_list_names_its_first_fault_by_its_path() {
    let mut w = World::standard();
    let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
        (
            vec![vec![1; 32], vec![1; 32], vec![2; 31]],
            "delivery.beneficiary_tokens[1] repeats an earlier item",
        ),
        (
            vec![vec![1; 32], vec![2; 31], vec![1; 32]],
            "delivery.beneficiary_tokens[1] is 31 bytes, not 32",
        ),
        (
            vec![vec![3; 32], vec![1; 32], vec![2; 32], vec![1; 32]],
            "delivery.beneficiary_tokens[3] repeats an earlier item",
        ),
    ];
    for (tokens, detail) in cases {
        let body = B::Delivery(pb::Delivery {
            beneficiary_tokens: tokens.into_iter().map(Into::into).collect(),
            ..delivery_fields()
        });
        let r = w.refused("fund", "fund", body, Reason::InvalidHash);
        assert_eq!(r.detail, detail);
    }
    let body = B::Delivery(pb::Delivery {
        earmark: Some(pb::Earmark {
            commune_code: "bad code!".into(),
            category: 0,
        }),
        ..delivery_fields()
    });
    let r = w.refused("fund", "fund", body, Reason::InvalidId);
    assert!(
        r.detail
            .starts_with("delivery.earmark.commune_code \"bad code!\""),
        "{r}"
    );
}

#[test]
fn event_envelope_is_checked() {
    let mut w = World::standard();
    let sign_raw =
        |w: &World, event: pb::Event| sign_event(&w.keys["fund"], ORIGIN, event.encode_to_vec());
    let base = pb::Event {
        event_id: uuid(500),
        org_id: "fund".into(),
        occurred_at: Some(PbTimestamp {
            seconds: NOW,
            nanos: 0,
        }),
        body: Some(transfer_body("t1", "redcross", 1, None)),
    };
    let uppercase = pb::Event {
        event_id: uuid(500).to_uppercase().replace('X', "x"),
        ..base.clone()
    };
    let uppercase = pb::Event {
        event_id: uppercase.event_id.replace("4000", "4A00"),
        ..uppercase
    };
    w.refused_signed(sign_raw(&w, uppercase), Reason::InvalidId);
    let no_body = pb::Event {
        body: None,
        ..base.clone()
    };
    w.refused_signed(sign_raw(&w, no_body), Reason::MissingField);
    let no_time = pb::Event {
        occurred_at: None,
        ..base.clone()
    };
    w.refused_signed(sign_raw(&w, no_time), Reason::MissingField);
    let future = pb::Event {
        occurred_at: Some(PbTimestamp {
            seconds: NOW + 301,
            nanos: 0,
        }),
        ..base.clone()
    };
    w.refused_signed(sign_raw(&w, future), Reason::OccurredInFuture);
    let garbage = pb::SignedEvent {
        event: vec![0xff, 0xff, 0xff].into(),
        ..sign_raw(&w, base.clone())
    };
    w.refused_signed(garbage, Reason::UndecodableEvent);
    let short_key = pb::SignedEvent {
        public_key: vec![1; 31].into(),
        ..sign_raw(&w, base.clone())
    };
    w.refused_signed(short_key, Reason::InvalidKey);
    let short_sig = pb::SignedEvent {
        signature: vec![1; 63].into(),
        ..sign_raw(&w, base)
    };
    w.refused_signed(short_sig, Reason::InvalidKey);
}

#[test]
fn identical_resubmission_is_idempotent_and_a_reused_event_id_is_refused() {
    let mut w = World::standard();
    w.receipt("r1", "fund", "donor-a", 100, None);
    let signed = w.sign("fund", "fund", transfer_body("t1", "redcross", 10, None));
    let seq = w.submit_signed(signed.clone()).unwrap();
    let before = w.state.clone();
    assert_eq!(w.submit_signed(signed.clone()).unwrap(), seq);
    assert!(w.state == before, "a duplicate changed the state");
    // Same event id, different content: refused.
    let mut event = pb::Event::decode(signed.event.clone()).unwrap();
    event.body = Some(transfer_body("t2", "redcross", 10, None));
    let other = sign_event(&w.keys["fund"], ORIGIN, event.encode_to_vec());
    let r = w.refused_signed(other, Reason::EventIdExists);
    assert_eq!(r.code(), Code::AlreadyExists);
}

#[test]
fn entity_ids_share_one_namespace() {
    let mut w = World::standard();
    w.receipt("x1", "fund", "donor-a", 100, None);
    w.refused(
        "fund",
        "fund",
        transfer_body("x1", "redcross", 10, None),
        Reason::IdExists,
    );
    w.refused(
        "donor-a",
        "donor-a",
        pledge_body("x1", "donor-a", "fund", 10, None),
        Reason::IdExists,
    );
}

#[test]
fn an_unknown_key_reusing_an_event_id_learns_nothing_about_it() {
    let mut w = World::standard();
    // Entry 1 exists; a stranger resubmits its event id with other content.
    let mut event = pb::Event::decode(
        w.event_bytes("fund", transfer_body("t1", "redcross", 1, None))
            .as_slice(),
    )
    .unwrap();
    event.event_id = uuid(2);
    w.keys.insert("stranger", SecretKey::generate());
    let signed = sign_event(&w.keys["stranger"], ORIGIN, event.encode_to_vec());
    w.refused_signed(signed, Reason::UnknownKey);
}
