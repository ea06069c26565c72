//! A seeded generator of valid signed ledgers: a province programme with
//! agencies, communes and donors, then a stream of receipts, transfers,
//! confirmations and deliveries that the rules accept in order.
//!
//! It keeps its own deliberately simple model of the balances, so tests can
//! compare the ledger's state against an oracle that shares no code with the
//! rules.

use std::collections::{BTreeMap, VecDeque};

use aidledger_ledger::privacy::{BeneficiaryKey, RefKey, SecretKey32, name_commitment};
use aidledger_ledger::{Category, Earmark, sign_event};
use aidledger_tlog::ed25519::SecretKey;
use aidledger_wire::{Message, Timestamp as PbTimestamp, pb};
use pb::event::Body as B;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::ORIGIN;

/// Communes the generated programme serves: the official codes and names of
/// Ninh Thuận's zone III communes.
pub const COMMUNES: [(&str, &str, &str); 15] = [
    ("22801", "Phước Đại", "Bác Ái"),
    ("22798", "Phước Thành", "Bác Ái"),
    ("22804", "Phước Chính", "Bác Ái"),
    ("22807", "Phước Trung", "Bác Ái"),
    ("22789", "Phước Tân", "Bác Ái"),
    ("22792", "Phước Tiến", "Bác Ái"),
    ("22795", "Phước Thắng", "Bác Ái"),
    ("22786", "Phước Hòa", "Bác Ái"),
    ("22783", "Phước Bình", "Bác Ái"),
    ("22822", "Mỹ Sơn", "Ninh Sơn"),
    ("22828", "Ma Nới", "Ninh Sơn"),
    ("22885", "Phước Hà", "Thuận Nam"),
    ("22853", "Bắc Sơn", "Thuận Bắc"),
    ("22837", "Phước Chiến", "Thuận Bắc"),
    ("22843", "Phước Kháng", "Thuận Bắc"),
];

const AGENCIES: [(&str, &str); 4] = [
    ("quy-bao-tro-tre-em", "Quỹ Bảo trợ trẻ em tỉnh Ninh Thuận"),
    ("hoi-chu-thap-do", "Hội Chữ thập đỏ tỉnh Ninh Thuận"),
    ("hoi-lhpn", "Hội Liên hiệp Phụ nữ tỉnh Ninh Thuận"),
    ("tinh-doan", "Tỉnh đoàn Ninh Thuận"),
];

const CATEGORIES: [Category; 6] = Category::AID;

/// Donors registered up front; receipts pick among them.
pub const DONORS: usize = 200;

/// Children on each commune's register; deliveries draw tokens from them,
/// so one child is reached by several organisations (overlaps).
const CHILDREN_PER_COMMUNE: u32 = 400;

type Pool = (String, String, Earmark);

/// Generates a valid ledger, event by event.
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
    seed: u64,
    next_event: u64,
    next_entity: u64,
    occurred_at: i64,
    authority: SecretKey,
    keys: BTreeMap<String, SecretKey>,
    /// The oracle: balance per (organisation, asset, earmark).
    balances: BTreeMap<Pool, u64>,
    in_transit: VecDeque<(String, String, u64)>,
    transit_earmarks: BTreeMap<String, Earmark>,
}

fn earmark_pb(earmark: &Earmark) -> Option<pb::Earmark> {
    if earmark.commune_code.is_none() && earmark.category.is_none() {
        return None;
    }
    Some(pb::Earmark {
        commune_code: earmark.commune_code.clone().unwrap_or_default(),
        category: earmark.category.map(Category::to_pb).unwrap_or(0),
    })
}

/// Derives key seeds without pulling a hash crate into the test kit: a
/// SplitMix-style mix of the seed and the label's bytes, expanded to 32 bytes.
fn key_seed(seed: u64, label: &str) -> [u8; 32] {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    for byte in label.bytes() {
        state = (state ^ u64::from(byte)).wrapping_mul(0x1000_0000_01b3);
    }
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes());
    }
    out
}

impl Generator {
    /// A generator whose whole output is a function of `seed`.
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: StdRng::seed_from_u64(seed),
            seed,
            next_event: 0,
            next_entity: 0,
            occurred_at: 1_735_689_600 - 86_400,
            authority: SecretKey::from_seed(&key_seed(seed, "authority")),
            keys: BTreeMap::new(),
            balances: BTreeMap::new(),
            in_transit: VecDeque::new(),
            transit_earmarks: BTreeMap::new(),
        }
    }

    /// SPEC §7.5 `K_ref` of the generated programme: every receipt's
    /// `external_ref_hash` is keyed with it.
    pub fn ref_key(&self) -> RefKey {
        RefKey(SecretKey32::from_bytes(key_seed(self.seed, "K_ref")))
    }

    /// SPEC §7.5 `K_ben` of the generated province.
    pub fn beneficiary_key(&self) -> BeneficiaryKey {
        BeneficiaryKey(SecretKey32::from_bytes(key_seed(self.seed, "K_ben")))
    }

    /// Whether donor `n` asked not to be named: roughly two in five
    /// individuals.
    fn donor_hidden(n: usize) -> bool {
        !n.is_multiple_of(3) && n % 5 < 2
    }

    /// The org id of donor `n`. SPEC §7.5: a hidden donor's id is random,
    /// never derived from the person (here: from the seed).
    pub fn donor_id(&self, n: usize) -> String {
        if Self::donor_hidden(n) {
            let random = key_seed(self.seed, &format!("donor-id/{n}"));
            format!("an-{}", hex::encode(&random[..8]))
        } else {
            format!("donor-{n}")
        }
    }

    /// The name of donor `n` as the agency knows it, published or not.
    pub fn donor_name(n: usize) -> String {
        format!("Nhà hảo tâm {n}")
    }

    /// The names of the donors who asked not to be named, which no byte the
    /// system serves may contain.
    pub fn hidden_donor_names() -> Vec<String> {
        (0..DONORS)
            .filter(|n| Self::donor_hidden(*n))
            .map(Self::donor_name)
            .collect()
    }

    /// The bank reference of receipt number `n`, as the donor holds it.
    pub fn bank_reference(&self, n: u64) -> String {
        format!("FT25{:03}{:07}", self.seed % 1000, n)
    }

    /// The authority key that signs the Genesis.
    pub fn authority(&self) -> &SecretKey {
        &self.authority
    }

    /// The oracle's balances, non-zero only.
    pub fn balances(&self) -> impl Iterator<Item = (&Pool, u64)> {
        self.balances
            .iter()
            .filter(|(_, amount)| **amount > 0)
            .map(|(pool, amount)| (pool, *amount))
    }

    /// Signs an event with the key of organisation `org` (or "authority").
    pub fn sign_as(&self, org: &str, event: pb::Event) -> pb::SignedEvent {
        self.sign_bytes_as(org, event.encode_to_vec())
    }

    /// Signs raw event bytes with the key of organisation `org`.
    pub fn sign_bytes_as(&self, org: &str, bytes: Vec<u8>) -> pb::SignedEvent {
        let key = if org == "authority" || org == "ubnd-tinh" {
            &self.authority
        } else {
            &self.keys[org]
        };
        sign_event(key, ORIGIN, bytes)
    }

    /// `count` receipts all recorded by agency number `agency`.
    pub fn receipts_by(&mut self, agency: usize, count: usize) -> Vec<pb::SignedEvent> {
        (0..count)
            .map(|_| self.receipt_for(AGENCIES[agency].0))
            .collect()
    }

    fn sign(&mut self, signer: &str, org: &str, body: B) -> pb::SignedEvent {
        self.next_event += 1;
        let event = pb::Event {
            event_id: format!(
                "{:08x}-0000-4000-8000-{:012x}",
                self.seed as u32, self.next_event
            ),
            org_id: org.into(),
            occurred_at: Some(PbTimestamp {
                seconds: self.occurred_at,
                nanos: 0,
            }),
            body: Some(body),
        };
        let key = if signer == "authority" {
            &self.authority
        } else {
            &self.keys[signer]
        };
        sign_event(key, ORIGIN, event.encode_to_vec())
    }

    fn entity_id(&mut self, prefix: &str) -> String {
        self.next_entity += 1;
        format!("{prefix}-{}", self.next_entity)
    }

    /// The Genesis and the programme's registrations: communes, assets,
    /// agencies, commune committees, donors and their keys.
    pub fn setup(&mut self, log_vkey: &str) -> Vec<pb::SignedEvent> {
        let mut events = Vec::new();
        let genesis = B::Genesis(pb::Genesis {
            origin: ORIGIN.into(),
            authority_org_id: "ubnd-tinh".into(),
            authority_name: "Ủy ban nhân dân tỉnh Ninh Thuận".into(),
            authority_public_key: self.authority.public_key().to_vec().into(),
            log_vkey: log_vkey.into(),
        });
        events.push(self.sign("authority", "ubnd-tinh", genesis));
        for (code, name, district) in COMMUNES {
            let body = B::RegisterCommune(pb::RegisterCommune {
                commune_code: code.into(),
                name: format!("Xã {name}"),
                district: format!("Huyện {district}"),
                province: "Ninh Thuận".into(),
                children_count: 800,
            });
            events.push(self.sign("authority", "ubnd-tinh", body));
        }
        for (asset, name, unit, value, in_kind) in [
            ("RICE", "Gạo", "kg", 18_000, true),
            ("MILK", "Sữa hộp 180 ml", "hộp", 8_000, true),
            ("NOTEBOOK", "Vở học sinh", "quyển", 12_000, true),
        ] {
            let body = B::RegisterAsset(pb::RegisterAsset {
                asset_id: asset.into(),
                name: name.into(),
                unit: unit.into(),
                unit_value_vnd: value,
                in_kind,
            });
            events.push(self.sign("authority", "ubnd-tinh", body));
        }
        use pb::Role::*;
        let agency_roles = [Receive, Transfer, Deliver, PublishNeed];
        let commune_roles = [Receive, Deliver, Inspect];
        let mut orgs: Vec<(String, String, pb::OrgKind, &[pb::Role])> = AGENCIES
            .iter()
            .map(|(id, name)| {
                (
                    id.to_string(),
                    name.to_string(),
                    pb::OrgKind::Agency,
                    &agency_roles[..],
                )
            })
            .collect();
        for (code, name, _) in COMMUNES {
            orgs.push((
                format!("ubnd-{code}"),
                format!("UBND xã {name}"),
                pb::OrgKind::Commune,
                &commune_roles[..],
            ));
        }
        for (org_id, name, kind, roles) in orgs {
            let body = B::RegisterOrg(pb::RegisterOrganization {
                org_id: org_id.clone(),
                name,
                kind: kind as i32,
                parent_org_id: String::new(),
                commune_code: org_id.strip_prefix("ubnd-").unwrap_or_default().into(),
                public_name: true,
                name_commitment: Default::default(),
            });
            events.push(self.sign("authority", "ubnd-tinh", body));
            let key = SecretKey::from_seed(&key_seed(self.seed, &org_id));
            let body = B::RegisterKey(pb::RegisterKey {
                org_id: org_id.clone(),
                public_key: key.public_key().to_vec().into(),
                roles: roles.iter().map(|r| *r as i32).collect(),
                label: format!("{org_id} 2025"),
            });
            self.keys.insert(org_id, key);
            events.push(self.sign("authority", "ubnd-tinh", body));
        }
        for donor in 0..DONORS {
            let individual = donor % 3 != 0;
            let hidden = Self::donor_hidden(donor);
            let name = Self::donor_name(donor);
            let salt = key_seed(self.seed, &format!("donor-salt/{donor}"));
            let body = B::RegisterOrg(pb::RegisterOrganization {
                org_id: self.donor_id(donor),
                name: if hidden { String::new() } else { name.clone() },
                kind: if individual {
                    pb::OrgKind::DonorIndividual
                } else {
                    pb::OrgKind::DonorBusiness
                } as i32,
                parent_org_id: String::new(),
                commune_code: String::new(),
                public_name: !hidden,
                name_commitment: if hidden {
                    name_commitment(&salt, &name).to_vec().into()
                } else {
                    Default::default()
                },
            });
            events.push(self.sign(AGENCIES[0].0, AGENCIES[0].0, body));
        }
        events
    }

    /// `count` more events, each valid after the ones before.
    pub fn events(&mut self, count: usize) -> Vec<pb::SignedEvent> {
        (0..count).map(|_| self.next()).collect()
    }

    fn random_earmark(&mut self) -> Earmark {
        match self.rng.random_range(0..4) {
            0 => Earmark::default(),
            1 => Earmark {
                commune_code: None,
                category: Some(CATEGORIES[self.rng.random_range(0..CATEGORIES.len())]),
            },
            _ => Earmark {
                commune_code: Some(COMMUNES[self.rng.random_range(0..COMMUNES.len())].0.into()),
                category: Some(CATEGORIES[self.rng.random_range(0..CATEGORIES.len())]),
            },
        }
    }

    /// A gift in đồng: median around 200,000 with a long tail.
    fn gift_amount(&mut self) -> u64 {
        let tier: f64 = self.rng.random();
        let base = if tier < 0.5 {
            self.rng.random_range(50_000..=200_000)
        } else if tier < 0.9 {
            self.rng.random_range(200_000..=2_000_000)
        } else if tier < 0.99 {
            self.rng.random_range(2_000_000..=50_000_000)
        } else {
            self.rng.random_range(50_000_000..=2_000_000_000)
        };
        base / 1_000 * 1_000
    }

    fn next(&mut self) -> pb::SignedEvent {
        let roll = self.rng.random_range(0..100);
        if roll < 15 && !self.in_transit.is_empty() {
            return self.confirm_transfer();
        }
        if roll < 40
            && let Some(event) = self.transfer()
        {
            return event;
        }
        if roll < 60
            && let Some(event) = self.delivery()
        {
            return event;
        }
        self.receipt()
    }

    /// `count` receipts: each valid whatever order they are appended in, for
    /// tests that append concurrently.
    pub fn receipts(&mut self, count: usize) -> Vec<pb::SignedEvent> {
        (0..count).map(|_| self.receipt()).collect()
    }

    fn receipt(&mut self) -> pb::SignedEvent {
        let agency = AGENCIES[self.rng.random_range(0..AGENCIES.len())].0;
        self.receipt_for(agency)
    }

    fn receipt_for(&mut self, agency: &str) -> pb::SignedEvent {
        let donor = self.rng.random_range(0..DONORS);
        let donor = self.donor_id(donor);
        let earmark = self.random_earmark();
        let quantity = self.gift_amount().max(1_000);
        let receipt_id = self.entity_id("r");
        let reference = self
            .ref_key()
            .external_ref_hash(&self.bank_reference(self.next_entity));
        *self
            .balances
            .entry((agency.into(), "VND".into(), earmark.clone()))
            .or_default() += quantity;
        let body = B::Receipt(pb::Receipt {
            receipt_id,
            donor_org_id: donor,
            pledge_id: String::new(),
            asset_id: "VND".into(),
            quantity,
            earmark: earmark_pb(&earmark),
            external_ref_hash: reference.to_vec().into(),
            note: "Ủng hộ chương trình".into(),
        });
        self.sign(agency, agency, body)
    }

    /// A pool of an agency with money in it.
    fn agency_pool(&mut self) -> Option<(Pool, u64)> {
        let agency = AGENCIES[self.rng.random_range(0..AGENCIES.len())].0;
        let pools: Vec<(Pool, u64)> = self
            .balances
            .iter()
            .filter(|((org, _, _), amount)| org == agency && **amount >= 1_000)
            .map(|(pool, amount)| (pool.clone(), *amount))
            .collect();
        if pools.is_empty() {
            return None;
        }
        Some(pools[self.rng.random_range(0..pools.len())].clone())
    }

    fn transfer(&mut self) -> Option<pb::SignedEvent> {
        let ((agency, asset, earmark), amount) = self.agency_pool()?;
        let commune = earmark
            .commune_code
            .clone()
            .unwrap_or_else(|| COMMUNES[self.rng.random_range(0..COMMUNES.len())].0.into());
        let to = format!("ubnd-{commune}");
        let quantity = self.rng.random_range(1..=amount);
        let transfer_id = self.entity_id("t");
        *self
            .balances
            .get_mut(&(agency.clone(), asset.clone(), earmark.clone()))
            .expect("chosen pool") -= quantity;
        self.in_transit
            .push_back((transfer_id.clone(), to.clone(), quantity));
        // Remember the earmark of what is in transit through the pool key.
        self.transit_earmarks
            .insert(transfer_id.clone(), earmark.clone());
        let body = B::Transfer(pb::Transfer {
            transfer_id,
            to_org_id: to,
            asset_id: asset,
            quantity,
            earmark: earmark_pb(&earmark),
            note: String::new(),
        });
        Some(self.sign(&agency.clone(), &agency, body))
    }

    fn confirm_transfer(&mut self) -> pb::SignedEvent {
        let (transfer_id, to, quantity) = self.in_transit.pop_front().expect("non-empty");
        let earmark = self
            .transit_earmarks
            .remove(&transfer_id)
            .expect("every transfer in transit has an earmark");
        // One in ten arrives short: a recorded loss.
        let received = if self.rng.random_range(0..10) == 0 {
            quantity - quantity / 100
        } else {
            quantity
        };
        *self
            .balances
            .entry((to.clone(), "VND".into(), earmark))
            .or_default() += received;
        let body = B::TransferReceived(pb::TransferReceived {
            transfer_id,
            quantity_received: received,
            note: String::new(),
        });
        self.sign(&to.clone(), &to, body)
    }

    fn delivery(&mut self) -> Option<pb::SignedEvent> {
        // Deliveries come from commune committees' pools.
        let pools: Vec<(Pool, u64)> = self
            .balances
            .iter()
            .filter(|((org, _, _), amount)| org.starts_with("ubnd-") && **amount >= 1_000)
            .map(|(pool, amount)| (pool.clone(), *amount))
            .collect();
        if pools.is_empty() {
            return None;
        }
        let ((org, asset, earmark), amount) = pools[self.rng.random_range(0..pools.len())].clone();
        let commune = org.strip_prefix("ubnd-").expect("commune org").to_owned();
        let category = earmark
            .category
            .unwrap_or(CATEGORIES[self.rng.random_range(0..CATEGORIES.len())]);
        let quantity = self.rng.random_range(1..=amount);
        *self
            .balances
            .get_mut(&(org.clone(), asset.clone(), earmark.clone()))
            .expect("chosen pool") -= quantity;
        let delivery_id = self.entity_id("d");
        let children = self.rng.random_range(1..=60u32);
        let ben = self.beneficiary_key();
        let first = self.rng.random_range(0..CHILDREN_PER_COMMUNE);
        let tokens = (0..children.min(20))
            .map(|i| {
                let child = (first + i) % CHILDREN_PER_COMMUNE;
                ben.token(&format!("{commune}/{child:05}")).to_vec().into()
            })
            .collect();
        let body = B::Delivery(pb::Delivery {
            delivery_id,
            commune_code: commune,
            category: category.to_pb(),
            asset_id: asset,
            quantity,
            earmark: earmark_pb(&earmark),
            children_reached: children,
            beneficiary_tokens: tokens,
            evidence_hashes: vec![vec![0xe7; 32].into()],
            period: "2025-03".into(),
            note: "Cấp phát tại điểm trường".into(),
        });
        Some(self.sign(&org.clone(), &org, body))
    }
}
