//! The ledger's state and the rules of SPEC §7.
//!
//! [`State::apply`] decides whether an event may be appended at a given seq
//! and, if so, applies it. It is pure: the sequencer passes the seq and the
//! recorded time in; nothing here reads a clock, a disk or a random source.
//!
//! Every rule is split into a check, which reads the state and returns a
//! [`Change`], and a commit, which only writes. A refusal therefore always
//! leaves the state exactly as it was.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::sync::Arc;

use crate::decode::uuid_value;
use crate::event::*;
use crate::events::Events;
use crate::rejection::{Reason, Rejection, reject};
use crate::signing::CheckedEvent;

/// SPEC §6: `occurred_at` may be at most 5 minutes after the ledger's clock.
pub const OCCURRED_AT_FUTURE_MAX_SECONDS: i64 = 5 * 60;

/// The asset every ledger has from its Genesis (SPEC §7 genesis).
pub const VND_ASSET_ID: &str = "VND";

/// What the ledger is, fixed for its whole life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerParams {
    /// SPEC §2: the ledger's name, bound into every signature.
    pub origin: String,
    /// The checkpoint verifier key the Genesis must name, when known.
    pub log_vkey: Option<String>,
    /// The key the Genesis must be signed by, when configured.
    pub authority_key: Option<PublicKey>,
}

/// An id the state names in many records: one copy, shared by all of
/// them. Organisations and assets are named by every receipt, transfer,
/// delivery and balance; an entity's id by its record, the entity index
/// and its event's reversal. As `String`s those were a copy each, most of
/// the state's memory at ten million events.
pub type SharedId = Arc<str>;

/// Funds of one organisation in one asset under one earmark.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BalanceKey {
    /// The holder.
    pub org_id: SharedId,
    /// The asset.
    pub asset_id: SharedId,
    /// The restriction the funds carry.
    pub earmark: Earmark,
}

/// A registered key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The organisation that owns it.
    pub org_id: String,
    /// What it may sign.
    pub roles: Vec<Role>,
    /// Revoked keys never sign again.
    pub revoked: bool,
}

impl KeyRecord {
    fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// A registered organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgRecord {
    /// Its kind.
    pub kind: OrgKind,
}

/// A registered asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetRecord {
    /// Goods rather than money.
    pub in_kind: bool,
}

/// A pledge and how much of it has been received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PledgeRecord {
    /// The organisation that signed the pledge (donor or recipient).
    pub recorded_by: SharedId,
    /// Who promised.
    pub donor_org_id: SharedId,
    /// Who is to receive.
    pub recipient_org_id: SharedId,
    /// What.
    pub asset_id: SharedId,
    /// How much was promised.
    pub quantity: u64,
    /// The restriction promised.
    pub earmark: Earmark,
    /// Sum of the receipts against it, net of reversals.
    pub received: u64,
    /// Cancelled pledges take no more receipts.
    pub cancelled: bool,
}

impl PledgeRecord {
    /// SPEC §7: open means neither cancelled nor fully received.
    pub fn is_open(&self) -> bool {
        !self.cancelled && self.received < self.quantity
    }
}

/// A receipt, kept for reversals and inspections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRecord {
    /// What it credited.
    pub balance: BalanceKey,
    /// How much.
    pub quantity: u64,
    /// The pledge it counted against.
    pub pledge_id: Option<SharedId>,
}

/// A transfer, in transit until received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    /// The sender's pool it was debited from.
    pub from: BalanceKey,
    /// The receiving organisation.
    pub to_org_id: SharedId,
    /// How much was sent.
    pub quantity: u64,
    /// How much arrived, once confirmed.
    pub received: Option<u64>,
    /// A reversed transfer can no longer be received.
    pub reversed: bool,
}

/// A delivery, kept for reversals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The deliverer's pool it was debited from.
    pub from: BalanceKey,
    /// How much.
    pub quantity: u64,
}

/// What a reversal of an event would undo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reversible {
    /// Debit the receipt's credit again.
    Receipt(SharedId),
    /// Credit the sender back, if not yet received.
    Transfer(SharedId),
    /// Credit the deliverer back.
    Delivery(SharedId),
    /// No balance effect (needs, inspections, commendations); reversal only
    /// marks it withdrawn.
    NoBalanceEffect,
    /// Registrations, revocations, confirmations, cancellations and reversals
    /// are corrected by other events, not reversed.
    No,
}

/// An appended event, as later events refer to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// Where it is in the log.
    pub seq: u64,
    /// The exact submission, for idempotent resubmission.
    pub digest: [u8; 32],
    /// The organisation that signed it.
    pub org_id: SharedId,
    /// What a reversal would undo.
    pub reversible: Reversible,
    /// Whether it has been reversed.
    pub reversed: bool,
}

/// The kinds that share the entity id namespace (SPEC §6 `ALREADY_EXISTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityKind {
    /// A published need.
    Need,
    /// A pledge.
    Pledge,
    /// A receipt.
    Receipt,
    /// A transfer.
    Transfer,
    /// A delivery.
    Delivery,
}

/// An event's key in the state: the number its id writes. Checked events'
/// ids, and reversals' targets, passed SPEC §7's format check
/// ([`crate::signing::check_format`]), which makes them UUIDs.
pub(crate) fn event_key(event_id: &str) -> u128 {
    uuid_value(event_id).expect("checked events name events by SPEC §7 UUIDs")
}

/// Everything the rules need to decide, rebuilt from the log at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    params: LedgerParams,
    next_seq: u64,
    last_recorded_at: Timestamp,
    /// By [`event_key`].
    events: Events,
    keys: HashMap<PublicKey, KeyRecord>,
    active_authority_keys: usize,
    /// Their keys are the copies every record shares ([`State::org_id`]).
    orgs: HashMap<SharedId, OrgRecord>,
    communes: HashSet<String>,
    /// Their keys are the copies every record shares ([`State::asset_id`]).
    assets: HashMap<SharedId, AssetRecord>,
    /// An entity's id is one copy, shared by this index, its record below
    /// and its event's [`Reversible`].
    entities: HashMap<SharedId, EntityKind>,
    pledges: HashMap<SharedId, PledgeRecord>,
    receipts: HashMap<SharedId, ReceiptRecord>,
    transfers: HashMap<SharedId, TransferRecord>,
    deliveries: HashMap<SharedId, DeliveryRecord>,
    balances: HashMap<BalanceKey, u64>,
}

/// The result of a successful [`State::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The seq the event now has.
    pub seq: u64,
}

/// The writes one accepted event makes; built by a check, applied by commit.
#[derive(Debug)]
enum Change {
    Genesis {
        authority_org_id: SharedId,
        key: PublicKey,
    },
    AddOrg {
        org_id: SharedId,
        kind: OrgKind,
    },
    AddKey {
        key: PublicKey,
        record: KeyRecord,
    },
    RevokeKey(PublicKey),
    AddCommune(String),
    AddAsset {
        asset_id: SharedId,
        in_kind: bool,
    },
    AddNeed(SharedId),
    Marker,
    AddPledge {
        pledge_id: SharedId,
        record: PledgeRecord,
    },
    CancelPledge(String),
    Receipt {
        receipt_id: SharedId,
        record: ReceiptRecord,
        new_balance: u64,
        pledge_received: Option<u64>,
    },
    Transfer {
        transfer_id: SharedId,
        record: TransferRecord,
        new_balance: u64,
    },
    TransferReceived {
        transfer_id: String,
        quantity_received: u64,
        to: BalanceKey,
        new_balance: u64,
    },
    Delivery {
        delivery_id: SharedId,
        record: DeliveryRecord,
        new_balance: u64,
    },
    Reversal {
        target_event_id: String,
        undo: Undo,
    },
}

#[derive(Debug)]
enum Undo {
    Nothing,
    SetBalance(BalanceKey, u64),
    Receipt {
        balance: BalanceKey,
        new_balance: u64,
        pledge: Option<(SharedId, u64)>,
    },
    Transfer {
        transfer_id: SharedId,
        balance: BalanceKey,
        new_balance: u64,
    },
}

impl State {
    /// The empty ledger, before its Genesis.
    pub fn new(params: LedgerParams) -> Self {
        State {
            params,
            next_seq: 0,
            last_recorded_at: Timestamp::default(),
            events: Events::default(),
            keys: HashMap::new(),
            active_authority_keys: 0,
            orgs: HashMap::new(),
            communes: HashSet::new(),
            assets: HashMap::new(),
            entities: HashMap::new(),
            pledges: HashMap::new(),
            receipts: HashMap::new(),
            transfers: HashMap::new(),
            deliveries: HashMap::new(),
            balances: HashMap::new(),
        }
    }

    /// Room for `events` more events' records, taken at once: a ledger
    /// replaying its log knows how many, and growing the index as they come
    /// would hash every key already in it again at each doubling (a tenth
    /// of an open's time).
    pub fn reserve_events(&mut self, events: usize) {
        self.events.reserve(events);
    }

    /// The ledger's fixed parameters.
    pub fn params(&self) -> &LedgerParams {
        &self.params
    }

    /// The seq the next accepted event gets: the number of entries so far.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The recorded time of the last entry.
    pub fn last_recorded_at(&self) -> Timestamp {
        self.last_recorded_at
    }

    /// If this exact submission is already in the ledger, its seq (SPEC §6
    /// idempotency). A different submission with the same event id is not a
    /// duplicate: [`State::apply`] refuses it with `ALREADY_EXISTS`.
    pub fn duplicate_of(&self, checked: &CheckedEvent) -> Option<u64> {
        self.events
            .get(event_key(&checked.event.event_id))
            .filter(|record| record.digest == checked.digest)
            .map(|record| record.seq)
    }

    /// The seq of an event id.
    pub fn seq_of_event(&self, event_id: &str) -> Option<u64> {
        self.event(event_id).map(|record| record.seq)
    }

    /// A registered key.
    pub fn key(&self, key: &PublicKey) -> Option<&KeyRecord> {
        self.keys.get(key)
    }

    /// The balance of one pool; 0 if it never held anything.
    pub fn balance(&self, key: &BalanceKey) -> u64 {
        self.balances.get(key).copied().unwrap_or(0)
    }

    /// Every non-zero balance.
    pub fn balances(&self) -> impl Iterator<Item = (&BalanceKey, u64)> {
        self.balances
            .iter()
            .filter(|(_, amount)| **amount > 0)
            .map(|(key, amount)| (key, *amount))
    }

    /// A pledge.
    pub fn pledge(&self, pledge_id: &str) -> Option<&PledgeRecord> {
        self.pledges.get(pledge_id)
    }

    /// A transfer.
    pub fn transfer(&self, transfer_id: &str) -> Option<&TransferRecord> {
        self.transfers.get(transfer_id)
    }

    /// An appended event.
    pub fn event(&self, event_id: &str) -> Option<&EventRecord> {
        // Not a UUID: no event has it.
        self.events.get(uuid_value(event_id)?)
    }

    /// Decides whether `checked` may be appended as entry `seq`, recorded at
    /// `recorded_at`, and applies it if so. On `Err` the state is unchanged.
    ///
    /// The caller must have verified the signature (or be replaying entries
    /// the ledger itself accepted) and must pass `seq == self.next_seq()` and
    /// a `recorded_at` no earlier than [`State::last_recorded_at`].
    pub fn apply(
        &mut self,
        seq: u64,
        recorded_at: Timestamp,
        checked: &CheckedEvent,
    ) -> Result<Applied, Rejection> {
        assert_eq!(seq, self.next_seq, "events are applied in seq order");
        assert!(
            recorded_at >= self.last_recorded_at,
            "recorded time never decreases"
        );
        let change = self.check(seq, recorded_at, checked)?;
        let reversible = reversible_kind(&change, &checked.event.body);
        self.apply_change(change);
        // After the change: a genesis registers its organisation.
        let org_id = self.org_id(&checked.event.org_id);
        let added = self.events.insert_new(
            event_key(&checked.event.event_id),
            EventRecord {
                seq,
                digest: checked.digest,
                org_id,
                reversible,
                reversed: false,
            },
        );
        assert!(added, "check refused reused event ids");
        self.next_seq = seq.checked_add(1).expect("seq below 2^64");
        self.last_recorded_at = recorded_at;
        Ok(Applied { seq })
    }

    fn check(
        &self,
        seq: u64,
        recorded_at: Timestamp,
        checked: &CheckedEvent,
    ) -> Result<Change, Rejection> {
        let event = &checked.event;
        // SPEC §6: occurred_at more than 5 minutes in the future.
        if event.occurred_at > recorded_at.plus_seconds(OCCURRED_AT_FUTURE_MAX_SECONDS) {
            return reject(
                Reason::OccurredInFuture,
                format!(
                    "occurred_at {}s is more than {OCCURRED_AT_FUTURE_MAX_SECONDS}s after the ledger's clock {}s",
                    event.occurred_at.seconds, recorded_at.seconds
                ),
            );
        }
        if seq == 0 {
            return match &event.body {
                Body::Genesis(genesis) => self.check_genesis(seq, checked, genesis),
                other => reject(
                    Reason::GenesisRequired,
                    format!(
                        "the first entry must be a genesis, not {}",
                        other.kind_name()
                    ),
                ),
            };
        }
        // Authenticate before anything else, so an unknown or revoked key
        // learns nothing about which ids exist.
        let key = self.signing_key(checked)?;
        if self.events.contains_key(event_key(&event.event_id)) {
            return reject(
                Reason::EventIdExists,
                format!(
                    "event_id {} is already used by another event",
                    event.event_id
                ),
            );
        }
        if let Body::Genesis(genesis) = &event.body {
            return self.check_genesis(seq, checked, genesis);
        }
        let actor = Actor {
            org_id: &event.org_id,
            key,
        };
        match &event.body {
            Body::Genesis(_) => unreachable!("handled above"),
            Body::RegisterOrg(b) => self.check_register_org(&actor, b),
            Body::RegisterKey(b) => self.check_register_key(&actor, b),
            Body::RevokeKey(b) => self.check_revoke_key(&actor, b),
            Body::RegisterCommune(b) => self.check_register_commune(&actor, b),
            Body::RegisterAsset(b) => self.check_register_asset(&actor, b),
            Body::PublishNeed(b) => self.check_publish_need(&actor, b),
            Body::PublishPlan(b) => self.check_publish_plan(&actor, b),
            Body::Pledge(b) => self.check_pledge(&actor, b),
            Body::CancelPledge(b) => self.check_cancel_pledge(&actor, b),
            Body::Receipt(b) => self.check_receipt(&actor, b),
            Body::Transfer(b) => self.check_transfer(&actor, b),
            Body::TransferReceived(b) => self.check_transfer_received(&actor, b),
            Body::Delivery(b) => self.check_delivery(&actor, b),
            Body::Inspection(b) => self.check_inspection(&actor, b),
            Body::Reversal(b) => self.check_reversal(&actor, b),
            Body::Commendation(b) => self.check_commendation(&actor, b),
        }
    }

    /// SPEC §2: a key signs only after its RegisterKey and never after its
    /// RevokeKey, and only for its own organisation.
    fn signing_key(&self, checked: &CheckedEvent) -> Result<&KeyRecord, Rejection> {
        let Some(key) = self.keys.get(&checked.signer) else {
            return reject(
                Reason::UnknownKey,
                format!("key {} is not registered", checked.signer),
            );
        };
        if key.revoked {
            return reject(
                Reason::KeyRevoked,
                format!("key {} was revoked", checked.signer),
            );
        }
        if key.org_id != checked.event.org_id {
            return reject(
                Reason::KeyOrgMismatch,
                format!(
                    "key {} belongs to {}, not to the acting organisation {}",
                    checked.signer, key.org_id, checked.event.org_id
                ),
            );
        }
        Ok(key)
    }

    // SPEC §7 genesis: only at seq 0; signed by the key it registers; origin
    // equals the ledger's.
    fn check_genesis(
        &self,
        seq: u64,
        checked: &CheckedEvent,
        genesis: &Genesis,
    ) -> Result<Change, Rejection> {
        if seq != 0 {
            return reject(
                Reason::GenesisNotFirst,
                format!("a genesis is only valid at seq 0, not at {seq}"),
            );
        }
        if checked.signer != genesis.authority_public_key {
            return reject(
                Reason::GenesisSignerMismatch,
                "a genesis must be signed by the authority key it registers",
            );
        }
        if let Some(expected) = &self.params.authority_key
            && *expected != genesis.authority_public_key
        {
            return reject(
                Reason::GenesisSignerMismatch,
                format!(
                    "this ledger expects a genesis by authority key {expected}, not {}",
                    genesis.authority_public_key
                ),
            );
        }
        if genesis.origin != self.params.origin {
            return reject(
                Reason::OriginMismatch,
                format!(
                    "genesis.origin {:?} is not this ledger's origin {:?}",
                    genesis.origin, self.params.origin
                ),
            );
        }
        if let Some(vkey) = &self.params.log_vkey
            && *vkey != genesis.log_vkey
        {
            return reject(
                Reason::OriginMismatch,
                format!(
                    "genesis.log_vkey {:?} is not this ledger's checkpoint key {vkey:?}",
                    genesis.log_vkey
                ),
            );
        }
        if checked.event.org_id != genesis.authority_org_id {
            return reject(
                Reason::KeyOrgMismatch,
                format!(
                    "the genesis must be made by the authority {} it registers, not by {}",
                    genesis.authority_org_id, checked.event.org_id
                ),
            );
        }
        Ok(Change::Genesis {
            authority_org_id: genesis.authority_org_id.as_str().into(),
            key: genesis.authority_public_key,
        })
    }

    fn check_register_org(
        &self,
        actor: &Actor<'_>,
        b: &RegisterOrganization,
    ) -> Result<Change, Rejection> {
        // SPEC §7 register_org: AUTHORITY; RECEIVE for donor kinds.
        if !(actor.has(Role::Authority) || (b.kind.is_donor() && actor.has(Role::Receive))) {
            return reject(
                Reason::RoleNotAllowed,
                format!(
                    "registering a {:?} organisation needs AUTHORITY{}",
                    b.kind,
                    if b.kind.is_donor() { " or RECEIVE" } else { "" }
                ),
            );
        }
        self.require_new_org(&b.org_id)?;
        if let Some(parent) = &b.parent_org_id {
            self.require_org(parent, "register_org.parent_org_id")?;
        }
        if let Some(commune) = &b.commune_code {
            self.require_commune(commune, "register_org.commune_code")?;
        }
        Ok(Change::AddOrg {
            org_id: b.org_id.as_str().into(),
            kind: b.kind,
        })
    }

    fn check_register_key(&self, actor: &Actor<'_>, b: &RegisterKey) -> Result<Change, Rejection> {
        actor.require(Role::Authority, "register_key")?;
        self.require_org(&b.org_id, "register_key.org_id")?;
        if self.keys.contains_key(&b.public_key) {
            return reject(
                Reason::KeyAlreadyRegistered,
                format!("key {} was registered before", b.public_key),
            );
        }
        Ok(Change::AddKey {
            key: b.public_key,
            record: KeyRecord {
                org_id: b.org_id.clone(),
                roles: b.roles.clone(),
                revoked: false,
            },
        })
    }

    fn check_revoke_key(&self, actor: &Actor<'_>, b: &RevokeKey) -> Result<Change, Rejection> {
        let Some(target) = self.keys.get(&b.public_key) else {
            return reject(
                Reason::KeyNotRegistered,
                format!("key {} is not registered", b.public_key),
            );
        };
        // SPEC §7 revoke_key: AUTHORITY, or a key of the same organisation.
        if !(actor.has(Role::Authority) || target.org_id == actor.org_id) {
            return reject(
                Reason::NotAuthorized,
                format!(
                    "key {} belongs to {}; only its organisation or the authority may revoke it",
                    b.public_key, target.org_id
                ),
            );
        }
        if target.revoked {
            return reject(
                Reason::KeyAlreadyRevoked,
                format!("key {} is already revoked", b.public_key),
            );
        }
        // Without an active authority key the ledger could never register
        // anything again.
        if target.has(Role::Authority) && self.active_authority_keys <= 1 {
            return reject(
                Reason::LastAuthorityKey,
                format!(
                    "key {} is the last active authority key; register another first",
                    b.public_key
                ),
            );
        }
        Ok(Change::RevokeKey(b.public_key))
    }

    fn check_register_commune(
        &self,
        actor: &Actor<'_>,
        b: &RegisterCommune,
    ) -> Result<Change, Rejection> {
        actor.require(Role::Authority, "register_commune")?;
        if self.communes.contains(&b.commune_code) {
            return reject(
                Reason::IdExists,
                format!("commune {} is already registered", b.commune_code),
            );
        }
        Ok(Change::AddCommune(b.commune_code.clone()))
    }

    fn check_register_asset(
        &self,
        actor: &Actor<'_>,
        b: &RegisterAsset,
    ) -> Result<Change, Rejection> {
        actor.require(Role::Authority, "register_asset")?;
        if self.assets.contains_key(b.asset_id.as_str()) {
            return reject(
                Reason::IdExists,
                format!("asset {} is already registered", b.asset_id),
            );
        }
        Ok(Change::AddAsset {
            asset_id: b.asset_id.as_str().into(),
            in_kind: b.in_kind,
        })
    }

    fn check_publish_need(&self, actor: &Actor<'_>, b: &PublishNeed) -> Result<Change, Rejection> {
        if !(actor.has(Role::PublishNeed) || actor.has(Role::Authority)) {
            return reject(
                Reason::RoleNotAllowed,
                "publish_need needs PUBLISH_NEED or AUTHORITY",
            );
        }
        self.require_new_entity(&b.need_id)?;
        self.require_commune(&b.commune_code, "publish_need.commune_code")?;
        self.require_asset(&b.asset_id, "publish_need.asset_id")?;
        Ok(Change::AddNeed(b.need_id.as_str().into()))
    }

    fn check_publish_plan(
        &self,
        actor: &Actor<'_>,
        b: &PublishAnnualPlan,
    ) -> Result<Change, Rejection> {
        actor.require(Role::Authority, "publish_plan")?;
        for (i, target) in b.targets.iter().enumerate() {
            if let Some(commune) = &target.commune_code {
                self.require_commune(
                    commune,
                    format_args!("publish_plan.targets[{i}].commune_code"),
                )?;
            }
            self.require_asset(
                &target.asset_id,
                format_args!("publish_plan.targets[{i}].asset_id"),
            )?;
        }
        Ok(Change::Marker)
    }

    fn check_pledge(&self, actor: &Actor<'_>, b: &Pledge) -> Result<Change, Rejection> {
        // SPEC §7 pledge: the donor's own PLEDGE key, or RECEIVE of the
        // recipient recording it for the donor.
        let by_donor = actor.has(Role::Pledge) && b.donor_org_id == actor.org_id;
        let by_recipient = actor.has(Role::Receive) && b.recipient_org_id == actor.org_id;
        if !(by_donor || by_recipient) {
            return reject(
                Reason::RoleNotAllowed,
                format!(
                    "a pledge is signed by the donor {} with PLEDGE or by the recipient {} with RECEIVE, not by {}",
                    b.donor_org_id, b.recipient_org_id, actor.org_id
                ),
            );
        }
        self.require_new_entity(&b.pledge_id)?;
        self.require_org(&b.donor_org_id, "pledge.donor_org_id")?;
        self.require_org(&b.recipient_org_id, "pledge.recipient_org_id")?;
        self.require_asset(&b.asset_id, "pledge.asset_id")?;
        self.require_earmark(&b.earmark, "pledge.earmark")?;
        Ok(Change::AddPledge {
            pledge_id: b.pledge_id.as_str().into(),
            record: PledgeRecord {
                recorded_by: self.org_id(actor.org_id),
                donor_org_id: self.org_id(&b.donor_org_id),
                recipient_org_id: self.org_id(&b.recipient_org_id),
                asset_id: self.asset_id(&b.asset_id),
                quantity: b.quantity,
                earmark: b.earmark.clone(),
                received: 0,
                cancelled: false,
            },
        })
    }

    fn check_cancel_pledge(
        &self,
        actor: &Actor<'_>,
        b: &CancelPledge,
    ) -> Result<Change, Rejection> {
        let pledge = self.require_pledge(&b.pledge_id)?;
        // SPEC §7 cancel_pledge: the organisation that recorded it.
        if *pledge.recorded_by != *actor.org_id {
            return reject(
                Reason::NotAuthorized,
                format!(
                    "pledge {} was recorded by {}; only it may cancel the pledge",
                    b.pledge_id, pledge.recorded_by
                ),
            );
        }
        if !pledge.is_open() {
            return reject(
                Reason::PledgeNotOpen,
                format!("pledge {} is {}", b.pledge_id, pledge_status(pledge)),
            );
        }
        Ok(Change::CancelPledge(b.pledge_id.clone()))
    }

    fn check_receipt(&self, actor: &Actor<'_>, b: &Receipt) -> Result<Change, Rejection> {
        actor.require(Role::Receive, "receipt")?;
        self.require_new_entity(&b.receipt_id)?;
        self.require_org(&b.donor_org_id, "receipt.donor_org_id")?;
        self.require_asset(&b.asset_id, "receipt.asset_id")?;
        self.require_earmark(&b.earmark, "receipt.earmark")?;
        let mut pledge_received = None;
        if let Some(pledge_id) = &b.pledge_id {
            let pledge = self.require_pledge(pledge_id)?;
            if !pledge.is_open() {
                return reject(
                    Reason::PledgeNotOpen,
                    format!("pledge {pledge_id} is {}", pledge_status(pledge)),
                );
            }
            if *pledge.donor_org_id != *b.donor_org_id
                || *pledge.recipient_org_id != *actor.org_id
                || *pledge.asset_id != *b.asset_id
            {
                return reject(
                    Reason::PledgeMismatch,
                    format!(
                        "pledge {pledge_id} is {} of {} from {} to {}; the receipt is {} from {} to {}",
                        pledge.quantity,
                        pledge.asset_id,
                        pledge.donor_org_id,
                        pledge.recipient_org_id,
                        b.asset_id,
                        b.donor_org_id,
                        actor.org_id
                    ),
                );
            }
            if pledge.earmark != b.earmark {
                return reject(
                    Reason::EarmarkMismatch,
                    format!("the receipt's earmark differs from pledge {pledge_id}'s"),
                );
            }
            // A donor may give more than promised; the pledge is then simply
            // fulfilled.
            pledge_received = Some(checked_add(pledge.received, b.quantity, "pledge total")?);
        }
        let balance = BalanceKey {
            org_id: self.org_id(actor.org_id),
            asset_id: self.asset_id(&b.asset_id),
            earmark: b.earmark.clone(),
        };
        let new_balance = checked_add(self.balance(&balance), b.quantity, "balance")?;
        let pledge_id = b.pledge_id.as_deref().map(|pledge_id| {
            self.pledges
                .get_key_value(pledge_id)
                .map_or_else(|| pledge_id.into(), |(shared, _)| shared.clone())
        });
        Ok(Change::Receipt {
            receipt_id: b.receipt_id.as_str().into(),
            record: ReceiptRecord {
                balance,
                quantity: b.quantity,
                pledge_id,
            },
            new_balance,
            pledge_received,
        })
    }

    fn check_transfer(&self, actor: &Actor<'_>, b: &Transfer) -> Result<Change, Rejection> {
        actor.require(Role::Transfer, "transfer")?;
        self.require_new_entity(&b.transfer_id)?;
        self.require_org(&b.to_org_id, "transfer.to_org_id")?;
        if b.to_org_id == actor.org_id {
            return reject(
                Reason::SelfTransfer,
                format!("transfer to the sender {} itself", b.to_org_id),
            );
        }
        self.require_asset(&b.asset_id, "transfer.asset_id")?;
        self.require_earmark(&b.earmark, "transfer.earmark")?;
        let from = BalanceKey {
            org_id: self.org_id(actor.org_id),
            asset_id: self.asset_id(&b.asset_id),
            earmark: b.earmark.clone(),
        };
        let new_balance = self.debit(&from, b.quantity)?;
        Ok(Change::Transfer {
            transfer_id: b.transfer_id.as_str().into(),
            record: TransferRecord {
                from,
                to_org_id: self.org_id(&b.to_org_id),
                quantity: b.quantity,
                received: None,
                reversed: false,
            },
            new_balance,
        })
    }

    fn check_transfer_received(
        &self,
        actor: &Actor<'_>,
        b: &TransferReceived,
    ) -> Result<Change, Rejection> {
        if !(actor.has(Role::Transfer) || actor.has(Role::Receive)) {
            return reject(
                Reason::RoleNotAllowed,
                "transfer_received needs TRANSFER or RECEIVE",
            );
        }
        let Some(transfer) = self.transfers.get(b.transfer_id.as_str()) else {
            return reject(
                Reason::UnknownTransfer,
                format!("transfer {} does not exist", b.transfer_id),
            );
        };
        if *transfer.to_org_id != *actor.org_id {
            return reject(
                Reason::NotAuthorized,
                format!(
                    "transfer {} is to {}; only it can confirm receipt",
                    b.transfer_id, transfer.to_org_id
                ),
            );
        }
        if transfer.reversed {
            return reject(
                Reason::TransferReversed,
                format!("transfer {} was reversed", b.transfer_id),
            );
        }
        if let Some(received) = transfer.received {
            return reject(
                Reason::TransferAlreadyReceived,
                format!(
                    "transfer {} was already received ({received})",
                    b.transfer_id
                ),
            );
        }
        if b.quantity_received > transfer.quantity {
            return reject(
                Reason::QuantityExceedsTransfer,
                format!(
                    "{} received but transfer {} sent {}",
                    b.quantity_received, b.transfer_id, transfer.quantity
                ),
            );
        }
        // SPEC §7: credits the recipient in the same earmark.
        let to = BalanceKey {
            org_id: transfer.to_org_id.clone(),
            asset_id: transfer.from.asset_id.clone(),
            earmark: transfer.from.earmark.clone(),
        };
        let new_balance = checked_add(self.balance(&to), b.quantity_received, "balance")?;
        Ok(Change::TransferReceived {
            transfer_id: b.transfer_id.clone(),
            quantity_received: b.quantity_received,
            to,
            new_balance,
        })
    }

    fn check_delivery(&self, actor: &Actor<'_>, b: &Delivery) -> Result<Change, Rejection> {
        actor.require(Role::Deliver, "delivery")?;
        self.require_new_entity(&b.delivery_id)?;
        self.require_commune(&b.commune_code, "delivery.commune_code")?;
        self.require_asset(&b.asset_id, "delivery.asset_id")?;
        // SPEC §7 delivery: an earmarked commune or category must match.
        if let Some(commune) = &b.earmark.commune_code
            && *commune != b.commune_code
        {
            return reject(
                Reason::EarmarkMismatch,
                format!(
                    "funds earmarked for commune {commune} cannot be delivered to {}",
                    b.commune_code
                ),
            );
        }
        if let Some(category) = b.earmark.category
            && category != b.category
        {
            return reject(
                Reason::EarmarkMismatch,
                format!(
                    "funds earmarked for {category:?} cannot be delivered as {:?}",
                    b.category
                ),
            );
        }
        let from = BalanceKey {
            org_id: self.org_id(actor.org_id),
            asset_id: self.asset_id(&b.asset_id),
            earmark: b.earmark.clone(),
        };
        let new_balance = self.debit(&from, b.quantity)?;
        Ok(Change::Delivery {
            delivery_id: b.delivery_id.as_str().into(),
            record: DeliveryRecord {
                from,
                quantity: b.quantity,
            },
            new_balance,
        })
    }

    fn check_inspection(
        &self,
        actor: &Actor<'_>,
        b: &GoodsInspection,
    ) -> Result<Change, Rejection> {
        actor.require(Role::Inspect, "inspection")?;
        let subject_id = b.subject_id.as_str();
        let asset_id = match self.entities.get(subject_id) {
            Some(EntityKind::Receipt) => &self.receipts[subject_id].balance.asset_id,
            Some(EntityKind::Transfer) => &self.transfers[subject_id].from.asset_id,
            _ => {
                return reject(
                    Reason::UnknownSubject,
                    format!("{} is not a receipt or transfer", b.subject_id),
                );
            }
        };
        if !self.assets[asset_id.as_ref()].in_kind {
            return reject(
                Reason::SubjectNotInKind,
                format!("{} is of {asset_id}, not an in-kind asset", b.subject_id),
            );
        }
        Ok(Change::Marker)
    }

    fn check_reversal(&self, actor: &Actor<'_>, b: &Reversal) -> Result<Change, Rejection> {
        let Some(target) = self.events.get(event_key(&b.target_event_id)) else {
            return reject(
                Reason::UnknownEvent,
                format!("event {} does not exist", b.target_event_id),
            );
        };
        // SPEC §7 reversal: the organisation that signed the target, or AUTHORITY.
        if !(*target.org_id == *actor.org_id || actor.has(Role::Authority)) {
            return reject(
                Reason::NotAuthorized,
                format!(
                    "event {} was signed by {}; only it or the authority may reverse it",
                    b.target_event_id, target.org_id
                ),
            );
        }
        if target.reversed {
            return reject(
                Reason::AlreadyReversed,
                format!("event {} is already reversed", b.target_event_id),
            );
        }
        let undo = match &target.reversible {
            Reversible::No => {
                return reject(
                    Reason::NotReversible,
                    format!(
                        "event {} is of a kind that is corrected by other events, not reversed",
                        b.target_event_id
                    ),
                );
            }
            Reversible::NoBalanceEffect => Undo::Nothing,
            Reversible::Receipt(receipt_id) => {
                let receipt = &self.receipts[receipt_id.as_ref()];
                // SPEC §7: a receipt reversal needs the balance to still be there.
                let new_balance = self.debit(&receipt.balance, receipt.quantity)?;
                let pledge = match &receipt.pledge_id {
                    Some(pledge_id) => {
                        let received = self.pledges[pledge_id.as_ref()]
                            .received
                            .checked_sub(receipt.quantity)
                            .expect("a pledge's received total includes each of its receipts");
                        Some((pledge_id.clone(), received))
                    }
                    None => None,
                };
                Undo::Receipt {
                    balance: receipt.balance.clone(),
                    new_balance,
                    pledge,
                }
            }
            Reversible::Transfer(transfer_id) => {
                let transfer = &self.transfers[transfer_id.as_ref()];
                // SPEC §7: a transfer can be reversed only before it is received.
                if transfer.received.is_some() {
                    return reject(
                        Reason::TransferAlreadyReceived,
                        format!("transfer {transfer_id} was already received"),
                    );
                }
                let new_balance =
                    checked_add(self.balance(&transfer.from), transfer.quantity, "balance")?;
                Undo::Transfer {
                    transfer_id: transfer_id.clone(),
                    balance: transfer.from.clone(),
                    new_balance,
                }
            }
            Reversible::Delivery(delivery_id) => {
                let delivery = &self.deliveries[delivery_id.as_ref()];
                let new_balance =
                    checked_add(self.balance(&delivery.from), delivery.quantity, "balance")?;
                Undo::SetBalance(delivery.from.clone(), new_balance)
            }
        };
        Ok(Change::Reversal {
            target_event_id: b.target_event_id.clone(),
            undo,
        })
    }

    fn check_commendation(&self, actor: &Actor<'_>, b: &Commendation) -> Result<Change, Rejection> {
        actor.require(Role::Authority, "commendation")?;
        self.require_org(&b.honoree_org_id, "commendation.honoree_org_id")?;
        Ok(Change::Marker)
    }

    /// Makes a checked change part of the in-memory state. Nothing here is
    /// durable: that is the store's commit, after the sequencer's append.
    fn apply_change(&mut self, change: Change) {
        match change {
            Change::Genesis {
                authority_org_id,
                key,
            } => {
                self.orgs.insert(
                    authority_org_id.clone(),
                    OrgRecord {
                        kind: OrgKind::Authority,
                    },
                );
                self.keys.insert(
                    key,
                    KeyRecord {
                        org_id: authority_org_id.as_ref().to_owned(),
                        roles: vec![Role::Authority],
                        revoked: false,
                    },
                );
                self.active_authority_keys = 1;
                self.assets
                    .insert(VND_ASSET_ID.into(), AssetRecord { in_kind: false });
            }
            Change::AddOrg { org_id, kind } => {
                self.orgs.insert(org_id, OrgRecord { kind });
            }
            Change::AddKey { key, record } => {
                if record.has(Role::Authority) {
                    self.active_authority_keys += 1;
                }
                self.keys.insert(key, record);
            }
            Change::RevokeKey(key) => {
                let record = self.keys.get_mut(&key).expect("checked: key exists");
                record.revoked = true;
                if record.has(Role::Authority) {
                    self.active_authority_keys -= 1;
                }
            }
            Change::AddCommune(code) => {
                self.communes.insert(code);
            }
            Change::AddAsset { asset_id, in_kind } => {
                self.assets.insert(asset_id, AssetRecord { in_kind });
            }
            Change::AddNeed(need_id) => {
                self.entities.insert(need_id, EntityKind::Need);
            }
            Change::Marker => {}
            Change::AddPledge { pledge_id, record } => {
                self.entities.insert(pledge_id.clone(), EntityKind::Pledge);
                self.pledges.insert(pledge_id, record);
            }
            Change::CancelPledge(pledge_id) => {
                self.pledges
                    .get_mut(pledge_id.as_str())
                    .expect("checked: pledge exists")
                    .cancelled = true;
            }
            Change::Receipt {
                receipt_id,
                record,
                new_balance,
                pledge_received,
            } => {
                if let (Some(pledge_id), Some(received)) = (&record.pledge_id, pledge_received) {
                    self.pledges
                        .get_mut(pledge_id)
                        .expect("checked: pledge exists")
                        .received = received;
                }
                self.balances.insert(record.balance.clone(), new_balance);
                self.entities
                    .insert(receipt_id.clone(), EntityKind::Receipt);
                self.receipts.insert(receipt_id, record);
            }
            Change::Transfer {
                transfer_id,
                record,
                new_balance,
            } => {
                self.balances.insert(record.from.clone(), new_balance);
                self.entities
                    .insert(transfer_id.clone(), EntityKind::Transfer);
                self.transfers.insert(transfer_id, record);
            }
            Change::TransferReceived {
                transfer_id,
                quantity_received,
                to,
                new_balance,
            } => {
                self.transfers
                    .get_mut(transfer_id.as_str())
                    .expect("checked: transfer exists")
                    .received = Some(quantity_received);
                self.balances.insert(to, new_balance);
            }
            Change::Delivery {
                delivery_id,
                record,
                new_balance,
            } => {
                self.balances.insert(record.from.clone(), new_balance);
                self.entities
                    .insert(delivery_id.clone(), EntityKind::Delivery);
                self.deliveries.insert(delivery_id, record);
            }
            Change::Reversal {
                target_event_id,
                undo,
            } => {
                match undo {
                    Undo::Nothing => {}
                    Undo::SetBalance(key, amount) => {
                        self.balances.insert(key, amount);
                    }
                    Undo::Receipt {
                        balance,
                        new_balance,
                        pledge,
                    } => {
                        self.balances.insert(balance, new_balance);
                        if let Some((pledge_id, received)) = pledge {
                            self.pledges
                                .get_mut(&pledge_id)
                                .expect("checked: pledge exists")
                                .received = received;
                        }
                    }
                    Undo::Transfer {
                        transfer_id,
                        balance,
                        new_balance,
                    } => {
                        self.balances.insert(balance, new_balance);
                        self.transfers
                            .get_mut(&transfer_id)
                            .expect("checked: transfer exists")
                            .reversed = true;
                    }
                }
                self.events
                    .get_mut(event_key(&target_event_id))
                    .expect("checked: target exists")
                    .reversed = true;
            }
        }
    }

    fn debit(&self, key: &BalanceKey, quantity: u64) -> Result<u64, Rejection> {
        let balance = self.balance(key);
        balance.checked_sub(quantity).ok_or_else(|| {
            Rejection::new(
                Reason::InsufficientBalance,
                format!(
                    "{} holds {balance} of {}{} but {quantity} is needed",
                    key.org_id,
                    key.asset_id,
                    describe_earmark(&key.earmark)
                ),
            )
        })
    }

    fn require_org(&self, org_id: &str, field: &str) -> Result<(), Rejection> {
        if self.orgs.contains_key(org_id) {
            Ok(())
        } else {
            reject(
                Reason::UnknownOrganization,
                format!("{field}: organisation {org_id} is not registered"),
            )
        }
    }

    fn require_new_org(&self, org_id: &str) -> Result<(), Rejection> {
        if self.orgs.contains_key(org_id) {
            reject(
                Reason::IdExists,
                format!("organisation {org_id} is already registered"),
            )
        } else {
            Ok(())
        }
    }

    fn require_commune(&self, code: &str, field: impl Display + Copy) -> Result<(), Rejection> {
        if self.communes.contains(code) {
            Ok(())
        } else {
            reject(
                Reason::UnknownCommune,
                format!("{field}: commune {code} is not registered"),
            )
        }
    }

    fn require_asset(&self, asset_id: &str, field: impl Display + Copy) -> Result<(), Rejection> {
        if self.assets.contains_key(asset_id) {
            Ok(())
        } else {
            reject(
                Reason::UnknownAsset,
                format!("{field}: asset {asset_id} is not registered"),
            )
        }
    }

    fn require_earmark(
        &self,
        earmark: &Earmark,
        field: impl Display + Copy,
    ) -> Result<(), Rejection> {
        match &earmark.commune_code {
            Some(code) => self.require_commune(code, format_args!("{field}.commune_code")),
            None => Ok(()),
        }
    }

    fn require_pledge(&self, pledge_id: &str) -> Result<&PledgeRecord, Rejection> {
        self.pledges.get(pledge_id).ok_or_else(|| {
            Rejection::new(
                Reason::UnknownPledge,
                format!("pledge {pledge_id} does not exist"),
            )
        })
    }

    fn require_new_entity(&self, id: &str) -> Result<(), Rejection> {
        match self.entities.get(id) {
            Some(kind) => reject(
                Reason::IdExists,
                format!("id {id} is already used by a {kind:?}"),
            ),
            None => Ok(()),
        }
    }
}

impl State {
    /// The shared copy of a registered organisation's id. An unregistered
    /// one (which the checks refuse before anything keeps it) gets a copy
    /// of its own.
    fn org_id(&self, org_id: &str) -> SharedId {
        self.orgs
            .get_key_value(org_id)
            .map_or_else(|| org_id.into(), |(shared, _)| shared.clone())
    }

    /// The shared copy of a registered asset's id, as [`State::org_id`].
    fn asset_id(&self, asset_id: &str) -> SharedId {
        self.assets
            .get_key_value(asset_id)
            .map_or_else(|| asset_id.into(), |(shared, _)| shared.clone())
    }
}

/// The organisation acting and the key it signed with.
struct Actor<'a> {
    org_id: &'a str,
    key: &'a KeyRecord,
}

impl Actor<'_> {
    fn has(&self, role: Role) -> bool {
        self.key.has(role)
    }

    fn require(&self, role: Role, kind: &str) -> Result<(), Rejection> {
        if self.has(role) {
            Ok(())
        } else {
            reject(
                Reason::RoleNotAllowed,
                format!("{kind} needs a key with role {role:?}"),
            )
        }
    }
}

/// What a reversal of the event making `change` would undo. The ids come
/// from the change, whose copies the records keep.
fn reversible_kind(change: &Change, body: &Body) -> Reversible {
    match change {
        Change::Receipt { receipt_id, .. } => return Reversible::Receipt(receipt_id.clone()),
        Change::Transfer { transfer_id, .. } => return Reversible::Transfer(transfer_id.clone()),
        Change::Delivery { delivery_id, .. } => return Reversible::Delivery(delivery_id.clone()),
        _ => {}
    }
    match body {
        Body::Receipt(_) | Body::Transfer(_) | Body::Delivery(_) => {
            unreachable!("a receipt's, transfer's or delivery's check makes its change")
        }
        Body::PublishNeed(_)
        | Body::PublishPlan(_)
        | Body::Inspection(_)
        | Body::Commendation(_) => Reversible::NoBalanceEffect,
        Body::Genesis(_)
        | Body::RegisterOrg(_)
        | Body::RegisterKey(_)
        | Body::RevokeKey(_)
        | Body::RegisterCommune(_)
        | Body::RegisterAsset(_)
        | Body::Pledge(_)
        | Body::CancelPledge(_)
        | Body::TransferReceived(_)
        | Body::Reversal(_) => Reversible::No,
    }
}

fn checked_add(a: u64, b: u64, what: &str) -> Result<u64, Rejection> {
    a.checked_add(b).ok_or_else(|| {
        Rejection::new(
            Reason::BalanceOverflow,
            format!("{what} {a} + {b} does not fit in 64 bits"),
        )
    })
}

fn pledge_status(pledge: &PledgeRecord) -> &'static str {
    if pledge.cancelled {
        "cancelled"
    } else if pledge.received >= pledge.quantity {
        "fulfilled"
    } else {
        "open"
    }
}

fn describe_earmark(earmark: &Earmark) -> String {
    match (&earmark.commune_code, earmark.category) {
        (None, None) => String::new(),
        (Some(c), None) => format!(" earmarked for commune {c}"),
        (None, Some(cat)) => format!(" earmarked for {cat:?}"),
        (Some(c), Some(cat)) => format!(" earmarked for {cat:?} in commune {c}"),
    }
}
