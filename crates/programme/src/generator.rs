//! The generator's core: the organisations and their keys, the programme
//! clock, and one method per kind of event that writes the event and keeps
//! the books.
//!
//! The programme year (`year.rs`) and the steady state (`steady.rs`) decide
//! what happens; this module decides how it is written down, and keeps every
//! spend inside a balance the ledger will agree exists.

use std::collections::VecDeque;

use aidledger_ledger::Category;
use aidledger_ledger::privacy::{RefKey, name_commitment};
use aidledger_tlog::ed25519::SecretKey;
use aidledger_wire::{Timestamp as PbTimestamp, pb};
use pb::Role;
use pb::event::Body as B;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::books::{Books, Mark};
use crate::calendar::{Date, NANOS_PER_SECOND};
use crate::catalogue::*;
use crate::derive;
use crate::{DemoConfig, SampleReference};

pub(crate) type OrgIx = usize;

/// A handover is one session at one school or clinic: at most this many
/// children, each with a 32-byte token. Also keeps every delivery far below
/// the ledger's 1,500-token limit and SPEC §4's 65,535-byte entries.
pub(crate) const DELIVERY_CHILDREN_MAX: u32 = 600;

const AGENCY_ROLES: &[Role] = &[
    Role::Receive,
    Role::Transfer,
    Role::PublishNeed,
    Role::Inspect,
];
const DISTRICT_OFFICE_ROLES: &[Role] = &[Role::Receive, Role::Transfer];
const COMMITTEE_ROLES: &[Role] = &[
    Role::Receive,
    Role::Transfer,
    Role::Deliver,
    Role::PublishNeed,
    Role::Inspect,
];
const SCHOOL_ROLES: &[Role] = &[Role::Receive, Role::Deliver];
const CLINIC_ROLES: &[Role] = &[Role::Receive, Role::Deliver];
const PLEDGE_ROLES: &[Role] = &[Role::Pledge];

/// One organisation of the programme, registered or still to be.
#[derive(Debug)]
pub(crate) struct Org {
    pub id: String,
    pub name: String,
    pub kind: pb::OrgKind,
    pub parent: Option<OrgIx>,
    pub commune: Option<usize>,
    pub public_name: bool,
    /// Index into [`Generator::keys`] of the key it signs with now; donors
    /// without a key are registered by the agency that receives their gift.
    pub key: Option<usize>,
    pub roles: &'static [Role],
    pub registered: bool,
}

/// An event waiting to be signed by `keys[key]`.
#[derive(Debug)]
pub(crate) struct Unsigned {
    pub key: usize,
    pub event: pb::Event,
}

/// A transfer sent and not yet confirmed.
#[derive(Clone, Debug)]
pub(crate) struct Flight {
    pub transfer_id: String,
    pub event_id: String,
    pub from: OrgIx,
    pub to: OrgIx,
    pub asset: Asset,
    pub mark: Mark,
    pub quantity: u64,
    /// The commune the money or goods are on their way to.
    pub commune: usize,
    /// The first day (since the epoch) the recipient can confirm it.
    pub arrives_on: i64,
}

/// Received money or goods that their holder passes on down the chain.
#[derive(Debug)]
pub(crate) struct Onward {
    pub holder: OrgIx,
    pub to: OrgIx,
    pub asset: Asset,
    pub mark: Mark,
    pub quantity: u64,
    pub commune: usize,
}

/// How the clock moves between events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pace {
    /// The programme year: a few minutes between entries, days opened by the
    /// calendar; communes pass goods on to their schools and clinics.
    Office,
    /// The steady state: evenly spread over a fixed window; communes deliver
    /// everything themselves.
    Even { step_nanos: i64 },
}

/// The organisations with a fixed part, by index into [`Generator::orgs`].
#[derive(Debug, Default)]
pub(crate) struct Cast {
    pub authority: OrgIx,
    pub agencies: Vec<OrgIx>,
    pub district_offices: Vec<OrgIx>,
    pub committees: Vec<OrgIx>,
    pub schools: Vec<OrgIx>,
    pub clinics: Vec<OrgIx>,
    pub institutions: Vec<OrgIx>,
}

/// A gift as the receiving agency records it.
#[derive(Clone, Debug)]
pub(crate) struct Gift {
    pub agency: OrgIx,
    pub donor: OrgIx,
    pub asset: Asset,
    pub quantity: u64,
    pub mark: Mark,
    pub pledge_id: Option<String>,
    /// The bank or delivery-note reference; only its hash enters the ledger.
    pub reference: String,
    pub note: String,
}

/// What a written receipt is known by.
#[derive(Debug)]
pub(crate) struct Receipted {
    pub receipt_id: String,
    pub event_id: String,
}

/// A delivery decided but not yet written.
#[derive(Clone, Debug)]
pub(crate) struct DeliveryPlan {
    pub holder: OrgIx,
    pub commune: usize,
    pub asset: Asset,
    pub mark: Mark,
    pub category: Category,
    pub quantity: u64,
    pub children: u32,
    /// Where in the commune's register this handover's children start.
    pub register_start: usize,
}

/// A pledge as recorded.
#[derive(Debug)]
pub(crate) struct PledgeTerms {
    pub recorded_by: OrgIx,
    pub donor: OrgIx,
    pub recipient: OrgIx,
    pub asset: Asset,
    pub quantity: u64,
    pub mark: Mark,
    pub due: Date,
}

/// A reference kept for the demo's "find your donation" step.
#[derive(Debug)]
pub(crate) struct ReferenceRecord {
    pub sample: SampleReference,
    pub individual: bool,
    pub against_pledge: bool,
    pub entered_twice: bool,
}

#[derive(Debug)]
pub(crate) struct Generator {
    pub seed: u64,
    pub origin: String,
    pub log_vkey: String,
    pub rng: StdRng,
    pub keys: Vec<SecretKey>,
    pub orgs: Vec<Org>,
    pub cast: Cast,
    pub books: Books,
    /// Nanoseconds since the epoch of the last event written.
    pub clock: i64,
    pub pace: Pace,
    pub out: Vec<Unsigned>,
    pub flights: VecDeque<Flight>,
    pub onward: VecDeque<Onward>,
    /// Registered individual donors, for returning gifts.
    pub individuals: Vec<OrgIx>,
    /// Individual donors created with a public name: they are numbered
    /// `cn-00001`, `cn-00002`, ... (hidden donors get random ids).
    named_individuals: usize,
    /// Value given per organisation, in đồng (goods at unit value).
    pub given_vnd: Vec<u64>,
    /// Children reached per commune (handovers, not distinct children).
    pub reached_per_commune: [u64; 15],
    /// Opaque tokens of each commune's children (SPEC §7.5).
    registers: Vec<Vec<[u8; 32]>>,
    /// SPEC §7.5 `K_ref`: receipts carry the reference keyed with it.
    pub ref_key: RefKey,
    pub references: Vec<ReferenceRecord>,
    /// Every bank and goods-note reference of the programme year.
    pub every_reference: Vec<String>,
    /// Set by the programme's stories, consumed by the next matching event.
    pub misroute_pending: bool,
    pub delivery_correction_pending: bool,
    pub shortfall_shown: bool,
    events_written: u64,
    receipts_written: u64,
    transfers_written: u64,
    deliveries_written: u64,
    pledges_written: u64,
    goods_notes_written: u64,
}

impl Generator {
    pub(crate) fn new(config: &DemoConfig) -> Self {
        let mut generator = Generator {
            seed: config.seed,
            origin: config.origin.clone(),
            log_vkey: config.log_vkey.clone(),
            rng: StdRng::seed_from_u64(config.seed),
            keys: Vec::new(),
            orgs: Vec::new(),
            cast: Cast::default(),
            books: Books::default(),
            clock: Date::new(2025, 1, 2).at_local(7, 30),
            pace: Pace::Office,
            out: Vec::new(),
            flights: VecDeque::new(),
            onward: VecDeque::new(),
            individuals: Vec::new(),
            named_individuals: 0,
            given_vnd: Vec::new(),
            reached_per_commune: [0; 15],
            registers: COMMUNES
                .iter()
                .map(|commune| {
                    let key = derive::beneficiary_key(config.seed);
                    (0..commune.children)
                        .map(|child| derive::beneficiary_token(&key, commune.code, child))
                        .collect()
                })
                .collect(),
            ref_key: derive::ref_key(config.seed),
            references: Vec::new(),
            every_reference: Vec::new(),
            misroute_pending: false,
            delivery_correction_pending: false,
            shortfall_shown: false,
            events_written: 0,
            receipts_written: 0,
            transfers_written: 0,
            deliveries_written: 0,
            pledges_written: 0,
            goods_notes_written: 0,
        };
        generator.cast_organisations();
        generator
    }

    fn cast_organisations(&mut self) {
        use pb::OrgKind as K;
        self.cast.authority = self.add_org(NewOrg {
            id: AUTHORITY_ORG_ID.into(),
            name: AUTHORITY_NAME.into(),
            kind: K::Authority,
            roles: &[Role::Authority],
            ..NewOrg::default()
        });
        for agency in &AGENCIES {
            let org = self.add_org(NewOrg {
                id: agency.org_id.into(),
                name: agency.name.into(),
                kind: K::Agency,
                roles: AGENCY_ROLES,
                ..NewOrg::default()
            });
            self.cast.agencies.push(org);
        }
        for district in &DISTRICTS {
            let org = self.add_org(NewOrg {
                id: format!("phong-ldtbxh-{}", district.slug),
                name: format!(
                    "Phòng Lao động - Thương binh và Xã hội huyện {}",
                    district.name
                ),
                kind: K::Agency,
                roles: DISTRICT_OFFICE_ROLES,
                ..NewOrg::default()
            });
            self.cast.district_offices.push(org);
        }
        for (index, commune) in COMMUNES.iter().enumerate() {
            let committee = self.add_org(NewOrg {
                id: format!("ubnd-xa-{}", commune.slug),
                name: format!("Ủy ban nhân dân xã {}", commune.name),
                kind: K::Commune,
                commune: Some(index),
                roles: COMMITTEE_ROLES,
                ..NewOrg::default()
            });
            let school = self.add_org(NewOrg {
                id: format!("truong-{}", commune.slug),
                name: format!("Trường PTDTBT Tiểu học và THCS {}", commune.name),
                kind: K::School,
                parent: Some(committee),
                commune: Some(index),
                roles: SCHOOL_ROLES,
                ..NewOrg::default()
            });
            let clinic = self.add_org(NewOrg {
                id: format!("tram-y-te-{}", commune.slug),
                name: format!("Trạm Y tế xã {}", commune.name),
                kind: K::Clinic,
                parent: Some(committee),
                commune: Some(index),
                roles: CLINIC_ROLES,
                ..NewOrg::default()
            });
            self.cast.committees.push(committee);
            self.cast.schools.push(school);
            self.cast.clinics.push(clinic);
        }
        for institution in &INSTITUTIONS {
            let org = self.add_org(NewOrg {
                id: institution.org_id.into(),
                name: institution.name.into(),
                kind: match institution.kind {
                    DonorKind::Business | DonorKind::Bank => K::DonorBusiness,
                    DonorKind::Organization => K::DonorOrganization,
                },
                roles: if institution.signs_own_pledges {
                    PLEDGE_ROLES
                } else {
                    &[]
                },
                ..NewOrg::default()
            });
            self.cast.institutions.push(org);
        }
    }

    fn add_org(&mut self, new: NewOrg) -> OrgIx {
        let key = (!new.roles.is_empty()).then(|| self.add_key(&format!("org/{}/0", new.id)));
        self.orgs.push(Org {
            id: new.id,
            name: new.name,
            kind: new.kind,
            parent: new.parent,
            commune: new.commune,
            public_name: new.public_name,
            key,
            roles: new.roles,
            registered: false,
        });
        self.given_vnd.push(0);
        self.orgs.len() - 1
    }

    /// A key derived from the seed and `label`, which no other key shares.
    fn add_key(&mut self, label: &str) -> usize {
        let seed = derive::key_seed(self.seed, label);
        self.keys.push(SecretKey::from_seed(&seed));
        self.keys.len() - 1
    }

    pub(crate) fn authority_key(&self) -> &SecretKey {
        let key = self.orgs[self.cast.authority]
            .key
            .expect("the authority has a key");
        &self.keys[key]
    }

    pub(crate) fn org_by_id(&self, org_id: &str) -> Option<OrgIx> {
        self.orgs.iter().position(|org| org.id == org_id)
    }

    /// A new individual donor, not yet registered.
    pub(crate) fn new_individual(&mut self, public_name: bool) -> OrgIx {
        let female = self.rng.random_bool(0.55);
        let family = self.pick_weighted(&FAMILY_NAMES);
        let (middles, givens) = if female {
            (&MIDDLE_NAMES_FEMALE, &GIVEN_NAMES_FEMALE)
        } else {
            (&MIDDLE_NAMES_MALE, &GIVEN_NAMES_MALE)
        };
        let middle = middles[self.rng.random_range(0..middles.len())];
        let given = givens[self.rng.random_range(0..givens.len())];
        // SPEC §7.5: a hidden donor's id says nothing about the person, not
        // even the order they came in.
        let id = if public_name {
            self.named_individuals += 1;
            format!("cn-{:05}", self.named_individuals)
        } else {
            derive::hidden_org_id(self.seed, self.individuals.len() + 1)
        };
        self.add_org(NewOrg {
            id,
            name: format!("{family} {middle} {given}"),
            kind: pb::OrgKind::DonorIndividual,
            public_name,
            ..NewOrg::default()
        })
    }

    pub(crate) fn pick_weighted<T: Copy>(&mut self, table: &[(T, u32)]) -> T {
        let total: u32 = table.iter().map(|(_, weight)| weight).sum();
        let mut roll = self.rng.random_range(0..total);
        for &(item, weight) in table {
            if roll < weight {
                return item;
            }
            roll -= weight;
        }
        unreachable!("roll below the total weight")
    }

    /// A commune, more likely the more children it has.
    pub(crate) fn pick_commune(&mut self) -> usize {
        let total: u32 = COMMUNES.iter().map(|c| c.children).sum();
        let mut roll = self.rng.random_range(0..total);
        for (index, commune) in COMMUNES.iter().enumerate() {
            if roll < commune.children {
                return index;
            }
            roll -= commune.children;
        }
        unreachable!("roll below the total")
    }

    /// An individual gift in đồng: the campaign table, and one gift in seven
    /// an odd amount near a round one, as bank transfers are.
    pub(crate) fn individual_gift_amount(&mut self) -> u64 {
        let round = self.pick_weighted(&INDIVIDUAL_GIFTS);
        if self.rng.random_range(0..7) == 0 {
            round * self.rng.random_range(80..=130u64) / 100 / 1_000 * 1_000
        } else {
            round
        }
    }

    /// A bank transfer reference, as on a statement: `FT`, year, day of the
    /// year, ten digits.
    pub(crate) fn bank_reference(&mut self) -> String {
        let date = Date::of_instant(self.clock);
        let day_of_year =
            date.days_since_epoch() - Date::new(date.year, 1, 1).days_since_epoch() + 1;
        let digits = self.rng.random_range(0..10_000_000_000u64);
        format!("FT{:02}{day_of_year:03}{digits:010}", date.year % 100)
    }

    /// A goods received note of the receiving agency.
    pub(crate) fn goods_note_reference(&mut self, agency: OrgIx) -> String {
        self.goods_notes_written += 1;
        let date = Date::of_instant(self.clock);
        format!(
            "PNK-{}-{:05}/{}",
            self.orgs[agency].id, self.goods_notes_written, date.year
        )
    }

    // ----- the clock -----

    /// Opens an office day: the clock moves to the morning of `date` unless
    /// the previous day's work ran past it.
    pub(crate) fn open_day(&mut self, date: Date) {
        let morning = date.at_local(7, 30) + self.rng.random_range(0..45 * 60) * NANOS_PER_SECOND;
        self.clock = self.clock.max(morning);
    }

    pub(crate) fn today(&self) -> Date {
        Date::of_instant(self.clock)
    }

    fn advance(&mut self) -> i64 {
        let step = match self.pace {
            Pace::Office => self.rng.random_range(30..=240) * NANOS_PER_SECOND,
            Pace::Even { step_nanos } => step_nanos,
        };
        self.clock += step;
        self.clock
    }

    fn push(&mut self, org: OrgIx, at: i64, body: B) -> String {
        let event_id = derive::event_id(self.seed, self.events_written);
        self.events_written += 1;
        let key = self.orgs[org]
            .key
            .unwrap_or_else(|| panic!("{} signs with a registered key", self.orgs[org].id));
        self.out.push(Unsigned {
            key,
            event: pb::Event {
                event_id: event_id.clone(),
                org_id: self.orgs[org].id.clone(),
                occurred_at: Some(PbTimestamp {
                    seconds: at.div_euclid(NANOS_PER_SECOND),
                    nanos: i32::try_from(at.rem_euclid(NANOS_PER_SECOND)).expect("below 10^9"),
                }),
                body: Some(body),
            },
        });
        event_id
    }

    fn earmark_pb(mark: Mark) -> Option<pb::Earmark> {
        if mark == Mark::default() {
            return None;
        }
        Some(pb::Earmark {
            commune_code: mark
                .commune
                .map(|c| COMMUNES[c].code.to_owned())
                .unwrap_or_default(),
            category: mark.category.map_or(0, category_pb),
        })
    }

    // ----- registrations -----

    pub(crate) fn genesis(&mut self) {
        let at = self.advance();
        let authority = self.cast.authority;
        let body = B::Genesis(pb::Genesis {
            origin: self.origin.clone(),
            authority_org_id: AUTHORITY_ORG_ID.into(),
            authority_name: AUTHORITY_NAME.into(),
            authority_public_key: self.authority_key().public_key().to_vec().into(),
            log_vkey: self.log_vkey.clone(),
        });
        self.push(authority, at, body);
        self.orgs[authority].registered = true;
    }

    pub(crate) fn register_asset(&mut self, asset: Asset) {
        let at = self.advance();
        let body = B::RegisterAsset(pb::RegisterAsset {
            asset_id: asset.id().into(),
            name: asset.name().into(),
            unit: asset.unit().into(),
            unit_value_vnd: asset.unit_value_vnd(),
            in_kind: true,
        });
        self.push(self.cast.authority, at, body);
    }

    pub(crate) fn register_commune(&mut self, commune: usize) {
        let at = self.advance();
        let c = &COMMUNES[commune];
        let body = B::RegisterCommune(pb::RegisterCommune {
            commune_code: c.code.into(),
            name: format!("Xã {}", c.name),
            district: format!("Huyện {}", DISTRICTS[c.district].name),
            province: PROVINCE_NAME.into(),
            children_count: c.children,
        });
        self.push(self.cast.authority, at, body);
    }

    /// SPEC §7 register_org: the authority registers anyone; an agency's
    /// `RECEIVE` key registers donors.
    pub(crate) fn register_org(&mut self, registrar: OrgIx, org: OrgIx) {
        assert!(
            !self.orgs[org].registered,
            "{} registered once",
            self.orgs[org].id
        );
        let at = self.advance();
        let o = &self.orgs[org];
        // SPEC §7.5: a hidden donor's name stays with the agency; the log
        // gets a salted commitment the donor can later open.
        let name_commitment = if o.public_name {
            Vec::new()
        } else {
            name_commitment(&derive::name_salt(self.seed, &o.id), &o.name).to_vec()
        };
        let body = B::RegisterOrg(pb::RegisterOrganization {
            org_id: o.id.clone(),
            name: if o.public_name {
                o.name.clone()
            } else {
                String::new()
            },
            kind: o.kind as i32,
            parent_org_id: o
                .parent
                .map(|parent| self.orgs[parent].id.clone())
                .unwrap_or_default(),
            commune_code: o
                .commune
                .map(|c| COMMUNES[c].code.to_owned())
                .unwrap_or_default(),
            public_name: o.public_name,
            name_commitment: name_commitment.into(),
        });
        self.push(registrar, at, body);
        self.orgs[org].registered = true;
        if self.orgs[org].kind == pb::OrgKind::DonorIndividual {
            self.individuals.push(org);
        }
    }

    pub(crate) fn ensure_registered(&mut self, org: OrgIx, registrar: OrgIx) {
        if !self.orgs[org].registered {
            self.register_org(registrar, org);
        }
    }

    /// The authority registers the key `org` signs with now.
    pub(crate) fn register_key(&mut self, org: OrgIx, label: String) {
        let at = self.advance();
        let o = &self.orgs[org];
        let key = o.key.expect("organisations with roles have keys");
        let body = B::RegisterKey(pb::RegisterKey {
            org_id: o.id.clone(),
            public_key: self.keys[key].public_key().to_vec().into(),
            roles: o.roles.iter().map(|role| *role as i32).collect(),
            label,
        });
        self.push(self.cast.authority, at, body);
    }

    /// A staff change: the authority registers a new key for `org`, which
    /// then revokes its old one itself, signing with the new key.
    pub(crate) fn rotate_key(&mut self, org: OrgIx, label: String, reason: String) {
        let old = self.orgs[org].key.expect("the organisation has a key");
        let derivation = format!("org/{}/after-key-{}", self.orgs[org].id, self.keys.len());
        let new = self.add_key(&derivation);
        self.orgs[org].key = Some(new);
        self.register_key(org, label);
        let at = self.advance();
        let body = B::RevokeKey(pb::RevokeKey {
            public_key: self.keys[old].public_key().to_vec().into(),
            reason,
        });
        self.push(org, at, body);
    }

    // ----- needs, plans, pledges -----

    pub(crate) fn publish_need(&mut self, org: OrgIx, need: pb::PublishNeed) {
        let at = self.advance();
        self.push(org, at, B::PublishNeed(need));
    }

    pub(crate) fn publish_plan(&mut self, plan: pb::PublishAnnualPlan) {
        let at = self.advance();
        self.push(self.cast.authority, at, B::PublishPlan(plan));
    }

    pub(crate) fn pledge(&mut self, terms: &PledgeTerms) -> String {
        self.pledges_written += 1;
        let pledge_id = format!("ck-{PROGRAMME_YEAR}-{:03}", self.pledges_written);
        let at = self.advance();
        let body = B::Pledge(pb::Pledge {
            pledge_id: pledge_id.clone(),
            donor_org_id: self.orgs[terms.donor].id.clone(),
            recipient_org_id: self.orgs[terms.recipient].id.clone(),
            asset_id: terms.asset.id().into(),
            quantity: terms.quantity,
            earmark: Self::earmark_pb(terms.mark),
            due_date: terms.due.to_string(),
        });
        self.push(terms.recorded_by, at, body);
        pledge_id
    }

    pub(crate) fn cancel_pledge(&mut self, recorded_by: OrgIx, pledge_id: &str, reason: &str) {
        let at = self.advance();
        let body = B::CancelPledge(pb::CancelPledge {
            pledge_id: pledge_id.into(),
            reason: reason.into(),
        });
        self.push(recorded_by, at, body);
    }

    // ----- money and goods -----

    /// Writes the receipt (registering the donor first if needed) and
    /// credits the agency's pool.
    pub(crate) fn receipt(&mut self, gift: &Gift) -> Receipted {
        self.ensure_registered(gift.donor, gift.agency);
        self.receipts_written += 1;
        let agency_short = AGENCIES
            .iter()
            .zip(&self.cast.agencies)
            .find(|(_, org)| **org == gift.agency)
            .map_or("ag", |(agency, _)| agency.short);
        let receipt_id = format!("pt-{agency_short}-{:07}", self.receipts_written);
        let at = self.advance();
        self.books
            .credit(gift.agency, gift.asset, gift.mark, gift.quantity);
        self.given_vnd[gift.donor] += gift.quantity * gift.asset.unit_value_vnd();
        let body = B::Receipt(pb::Receipt {
            receipt_id: receipt_id.clone(),
            donor_org_id: self.orgs[gift.donor].id.clone(),
            pledge_id: gift.pledge_id.clone().unwrap_or_default(),
            asset_id: gift.asset.id().into(),
            quantity: gift.quantity,
            earmark: Self::earmark_pb(gift.mark),
            external_ref_hash: self
                .ref_key
                .external_ref_hash(&gift.reference)
                .to_vec()
                .into(),
            note: gift.note.clone(),
        });
        let event_id = self.push(gift.agency, at, body);
        if self.pace == Pace::Office {
            self.every_reference.push(gift.reference.clone());
        }
        if self.pace == Pace::Office && gift.asset == Asset::Vnd {
            let donor = &self.orgs[gift.donor];
            self.references.push(ReferenceRecord {
                sample: SampleReference {
                    receipt_id: receipt_id.clone(),
                    reference: gift.reference.clone(),
                    donor_org_id: donor.id.clone(),
                    donor_name: donor.name.clone(),
                    public_name: donor.public_name,
                    recipient_org_id: self.orgs[gift.agency].id.clone(),
                    amount_vnd: gift.quantity,
                },
                individual: donor.kind == pb::OrgKind::DonorIndividual,
                against_pledge: gift.pledge_id.is_some(),
                entered_twice: false,
            });
        }
        Receipted {
            receipt_id,
            event_id,
        }
    }

    /// Reverses a receipt whose amount is still in the agency's pool.
    pub(crate) fn reverse_receipt(&mut self, gift: &Gift, receipted: &Receipted, reason: &str) {
        self.books
            .debit(gift.agency, gift.asset, gift.mark, gift.quantity);
        self.given_vnd[gift.donor] -= gift.quantity * gift.asset.unit_value_vnd();
        self.reversal(gift.agency, &receipted.event_id, reason);
    }

    /// Writes a transfer and debits the sender; the caller decides whether
    /// the flight goes on its way ([`Generator::flights`]) or is reversed.
    pub(crate) fn transfer(&mut self, onward: &Onward, transit_days: i64, note: String) -> Flight {
        self.transfers_written += 1;
        let transfer_id = format!("dc-{:07}", self.transfers_written);
        let at = self.advance();
        self.books
            .debit(onward.holder, onward.asset, onward.mark, onward.quantity);
        let body = B::Transfer(pb::Transfer {
            transfer_id: transfer_id.clone(),
            to_org_id: self.orgs[onward.to].id.clone(),
            asset_id: onward.asset.id().into(),
            quantity: onward.quantity,
            earmark: Self::earmark_pb(onward.mark),
            note,
        });
        let event_id = self.push(onward.holder, at, body);
        Flight {
            transfer_id,
            event_id,
            from: onward.holder,
            to: onward.to,
            asset: onward.asset,
            mark: onward.mark,
            quantity: onward.quantity,
            commune: onward.commune,
            arrives_on: self.today().days_since_epoch() + transit_days,
        }
    }

    /// SPEC §7 reversal: a transfer can be reversed only before it is
    /// received; the sender gets its balance back.
    pub(crate) fn reverse_transfer(&mut self, flight: &Flight, reason: &str) {
        self.books
            .credit(flight.from, flight.asset, flight.mark, flight.quantity);
        self.reversal(flight.from, &flight.event_id, reason);
    }

    /// The recipient confirms a transfer, perhaps a little short, and queues
    /// what it passes on.
    pub(crate) fn confirm(&mut self, flight: Flight) {
        let shortfall = self.shortfall(&flight);
        let received = flight.quantity - shortfall;
        let at = self.advance();
        self.books
            .credit(flight.to, flight.asset, flight.mark, received);
        let note = if shortfall == 0 {
            "Đã nhận đủ theo biên bản giao nhận".to_owned()
        } else {
            format!(
                "Nhận thiếu {shortfall} {}: hao hụt trong vận chuyển, có biên bản kèm theo",
                flight.asset.unit()
            )
        };
        let body = B::TransferReceived(pb::TransferReceived {
            transfer_id: flight.transfer_id.clone(),
            quantity_received: received,
            note,
        });
        self.push(flight.to, at, body);
        let to_committee = self.cast.committees.contains(&flight.to);
        if self.pace == Pace::Office
            && to_committee
            && flight.asset.can_arrive_short()
            && self.rng.random_bool(0.5)
        {
            self.inspection(
                flight.to,
                &flight.transfer_id,
                true,
                "Kiểm tra cảm quan, bao bì và hạn sử dụng khi nhận hàng",
                "Đạt: hàng khô, bao bì nguyên vẹn, còn hạn sử dụng",
            );
        }
        if received > 0
            && let Some(next) =
                self.next_holder(flight.to, flight.asset, flight.mark, flight.commune)
        {
            self.onward.push_back(Onward {
                holder: flight.to,
                to: next,
                asset: flight.asset,
                mark: flight.mark,
                quantity: received,
                commune: flight.commune,
            });
        }
    }

    /// Rice and milk sometimes arrive a little short (torn bags, crushed
    /// cartons); the first such shipment of the year always does, so the
    /// demo shows a recorded loss.
    fn shortfall(&mut self, flight: &Flight) -> u64 {
        if !flight.asset.can_arrive_short() || flight.quantity < 100 {
            return 0;
        }
        let short = !self.shortfall_shown || self.rng.random_bool(0.08);
        if !short {
            return 0;
        }
        self.shortfall_shown = true;
        (flight.quantity * self.rng.random_range(2..=15) / 1_000).max(1)
    }

    /// Who a holder passes money or goods on to: district offices to the
    /// commune committee; in the programme year, committees to their school
    /// or clinic for what those deliver.
    fn next_holder(
        &self,
        holder: OrgIx,
        asset: Asset,
        mark: Mark,
        commune: usize,
    ) -> Option<OrgIx> {
        if self.cast.district_offices.contains(&holder) {
            return Some(self.cast.committees[commune]);
        }
        if self.pace == Pace::Office && self.cast.committees[commune] == holder {
            let deliverer = self.deliverer(asset, mark, commune);
            return (deliverer != holder).then_some(deliverer);
        }
        None
    }

    /// Schools hand out food, books and scholarships, clinics run health
    /// checks, the committee itself everything else.
    pub(crate) fn deliverer(&self, asset: Asset, mark: Mark, commune: usize) -> OrgIx {
        let category = mark.category.or(asset.delivered_as());
        match category {
            Some(Category::Health) => self.cast.clinics[commune],
            Some(Category::Nutrition | Category::Scholarship | Category::BooksSupplies) => {
                self.cast.schools[commune]
            }
            _ => self.cast.committees[commune],
        }
    }

    /// Passes received money or goods on; false if nothing is left to pass.
    pub(crate) fn forward(&mut self, mut onward: Onward, transit_days: i64) -> bool {
        onward.quantity =
            onward
                .quantity
                .min(self.books.balance(onward.holder, onward.asset, onward.mark));
        if onward.quantity == 0 {
            return false;
        }
        let recipient = &self.orgs[onward.to].name;
        let note = if self.cast.committees.contains(&onward.to) {
            format!("Chuyển tiếp cho {recipient} theo kế hoạch phân bổ của tỉnh")
        } else {
            format!("Giao cho {recipient} để cấp phát trực tiếp cho trẻ em")
        };
        let flight = self.transfer(&onward, transit_days, note);
        self.flights.push_back(flight);
        true
    }

    /// Decides a handover from a pool of `holder`: up to `children_max`
    /// children, or the whole pool if little would be left. `None` if the
    /// pool is too small to give one child a share.
    pub(crate) fn plan_delivery(
        &mut self,
        holder: OrgIx,
        (asset, mark, balance): (Asset, Mark, u64),
        children_max: u32,
    ) -> Option<DeliveryPlan> {
        let commune = self.orgs[holder]
            .commune
            .expect("deliverers belong to a commune");
        let month = self.today().month;
        let category = mark
            .category
            .or(asset.delivered_as())
            .unwrap_or(MONTHLY_THEME[month as usize - 1]);
        let per_child = asset.per_child(category);
        if balance < per_child.div_ceil(2) {
            return None;
        }
        let cap = children_max.min(COMMUNES[commune].children).max(1);
        let planned = self.rng.random_range(cap.div_ceil(4)..=cap);
        let (quantity, children) = if u64::from(planned) * per_child * 3 / 2 >= balance {
            let children = (balance / per_child).clamp(1, u64::from(cap));
            (balance, u32::try_from(children).expect("capped"))
        } else {
            (u64::from(planned) * per_child, planned)
        };
        let register_start = self.rng.random_range(0..self.registers[commune].len());
        Some(DeliveryPlan {
            holder,
            commune,
            asset,
            mark,
            category,
            quantity,
            children,
            register_start,
        })
    }

    /// Writes a planned delivery in `period` and debits the deliverer.
    pub(crate) fn deliver(&mut self, plan: &DeliveryPlan, period: String) -> String {
        self.deliveries_written += 1;
        let delivery_id = format!("cp-{:07}", self.deliveries_written);
        let at = self.advance();
        self.books
            .debit(plan.holder, plan.asset, plan.mark, plan.quantity);
        self.reached_per_commune[plan.commune] += u64::from(plan.children);
        let register = &self.registers[plan.commune];
        let beneficiary_tokens = (0..plan.children as usize)
            .map(|i| {
                register[(plan.register_start + i) % register.len()]
                    .to_vec()
                    .into()
            })
            .collect();
        let documents = self.rng.random_range(1..=3);
        let evidence_hashes = [
            "bien-ban-ban-giao.pdf",
            "danh-sach-ky-nhan.pdf",
            "anh-buoi-trao.jpg",
        ][..documents]
            .iter()
            .map(|document| {
                derive::evidence_hash(self.seed, &format!("{delivery_id}/{document}"))
                    .to_vec()
                    .into()
            })
            .collect();
        let body = B::Delivery(pb::Delivery {
            delivery_id,
            commune_code: COMMUNES[plan.commune].code.into(),
            category: category_pb(plan.category),
            asset_id: plan.asset.id().into(),
            quantity: plan.quantity,
            earmark: Self::earmark_pb(plan.mark),
            children_reached: plan.children,
            beneficiary_tokens,
            evidence_hashes,
            period,
            note: delivery_note(plan),
        });
        self.push(plan.holder, at, body)
    }

    /// Reverses a delivery; the deliverer gets the quantity back.
    pub(crate) fn reverse_delivery(&mut self, plan: &DeliveryPlan, event_id: &str, reason: &str) {
        self.books
            .credit(plan.holder, plan.asset, plan.mark, plan.quantity);
        self.reached_per_commune[plan.commune] -= u64::from(plan.children);
        self.reversal(plan.holder, event_id, reason);
    }

    pub(crate) fn inspection(
        &mut self,
        org: OrgIx,
        subject_id: &str,
        passed: bool,
        standard: &str,
        note: &str,
    ) {
        let at = self.advance();
        let body = B::Inspection(pb::GoodsInspection {
            subject_id: subject_id.into(),
            passed,
            standard: standard.into(),
            note: note.into(),
        });
        self.push(org, at, body);
    }

    fn reversal(&mut self, org: OrgIx, target_event_id: &str, reason: &str) {
        let at = self.advance();
        let body = B::Reversal(pb::Reversal {
            target_event_id: target_event_id.into(),
            reason: reason.into(),
        });
        self.push(org, at, body);
    }

    pub(crate) fn commendation(&mut self, honoree: OrgIx, decision_ref: &str, reason: String) {
        let at = self.advance();
        let body = B::Commendation(pb::Commendation {
            honoree_org_id: self.orgs[honoree].id.clone(),
            year: PROGRAMME_YEAR,
            decision_ref: decision_ref.into(),
            reason,
        });
        self.push(self.cast.authority, at, body);
    }
}

/// The fields of a new organisation; the rest have defaults.
#[derive(Debug)]
struct NewOrg {
    id: String,
    name: String,
    kind: pb::OrgKind,
    parent: Option<OrgIx>,
    commune: Option<usize>,
    public_name: bool,
    roles: &'static [Role],
}

impl Default for NewOrg {
    fn default() -> Self {
        NewOrg {
            id: String::new(),
            name: String::new(),
            kind: pb::OrgKind::Unspecified,
            parent: None,
            commune: None,
            public_name: true,
            roles: &[],
        }
    }
}

pub(crate) fn category_pb(category: Category) -> i32 {
    category.to_pb()
}

/// What the handover was, as the deliverer writes it in the note.
fn delivery_note(plan: &DeliveryPlan) -> String {
    let commune = COMMUNES[plan.commune].name;
    let children = plan.children;
    match (plan.category, plan.asset) {
        (Category::Health, _) => format!(
            "Khám sức khỏe định kỳ, tẩy giun và cấp thuốc cho {children} trẻ em xã {commune}"
        ),
        (Category::Nutrition, Asset::Rice) => {
            format!("Cấp gạo cho bếp ăn bán trú, {children} học sinh xã {commune}")
        }
        (Category::Nutrition, Asset::Milk) => {
            format!("Sữa học đường cho {children} trẻ mầm non và tiểu học xã {commune}")
        }
        (Category::Nutrition, _) => {
            format!("Hỗ trợ bữa ăn bán trú cho {children} học sinh xã {commune}")
        }
        (Category::CultureRecreation, _) => {
            format!("Quà vui chơi, Tết Thiếu nhi và Trung thu cho {children} em xã {commune}")
        }
        (Category::Scholarship, Asset::Bicycle) => {
            format!("Trao xe đạp cho {children} học sinh nhà xa trường, xã {commune}")
        }
        (Category::Scholarship, _) => {
            format!("Trao học bổng cho {children} học sinh nghèo vượt khó xã {commune}")
        }
        (Category::BooksSupplies, Asset::SchoolBag) => {
            format!("Tặng cặp sách cho {children} học sinh lớp 1 và lớp 6 xã {commune}")
        }
        (Category::BooksSupplies, _) => {
            format!("Cấp vở và đồ dùng học tập cho {children} học sinh xã {commune}")
        }
        (Category::Clothing, _) => {
            format!("Tặng quần áo ấm cho {children} trẻ em xã {commune}")
        }
        (Category::Other, _) => format!("Hỗ trợ {children} trẻ em xã {commune}"),
    }
}

/// Đồng with dots between thousands, as Vietnamese documents write them.
pub(crate) fn format_vnd(amount: u64) -> String {
    let digits = amount.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(digit);
    }
    out
}
