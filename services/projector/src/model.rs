//! The read models: a deterministic fold of the ledger's events.
//!
//! [`Model::apply`] takes the events in log order and keeps every table the
//! queries need. It is pure (no I/O, no clock): the same entries always give
//! the same tables, which [`Model::digest`] condenses into one hash.
//!
//! The ledger has already judged every event by the SPEC §7 rules, so the
//! model does not judge again; but an event that contradicts the model (a
//! transfer from an empty pool, a reversal of an unknown event) means the
//! log and this fold disagree, and is an error that stops projection rather
//! than a number silently wrong.
//!
//! ## Tracing: first in, first out
//!
//! Every unit in a pool (organisation, asset, earmark) belongs to a *lot*
//! that names the receipt it came from. A receipt adds a lot at the back of
//! its recipient's pool. A transfer or a delivery takes units from the front
//! of the sender's pool, oldest lot first, and records which receipts it
//! took how much from. When a transfer is received, the parts arrive in the
//! same order at the back of the recipient's pool; if less arrived than was
//! sent, the first parts arrive whole and the loss falls on the last ones.
//! Reversing a transfer (before it arrives) or a delivery puts its parts back
//! at the front of the pool they came from, in their original order.
//! Reversing a receipt removes its own units still in that pool, then any
//! shortfall (units of it already spent) from the newest lots of the pool,
//! which are recorded on those receipts as withdrawn.

use std::hash::BuildHasher as _;

use aidledger_ledger::{Body, Category, Earmark, Event, OrgKind, PlanTarget, Timestamp};
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aggregates::{Aggregates, Sign};
use crate::by_ref::ReceiptsByRef;
use crate::id::{EventId, Id, Interner};
use crate::positions::{PositionIndex, position_u32};
use crate::table::{ListTable, StoredTable, Table, digest_rows};

/// The asset the genesis registers: đồng, one unit worth one đồng.
pub const VND: &str = "VND";

/// Why the model cannot take an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("entry {seq}: {detail}")]
pub struct Inconsistent {
    /// The entry that does not fit.
    pub seq: u64,
    /// What does not fit.
    pub detail: String,
}

/// A pool of one asset held by one organisation under one earmark.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PoolKey {
    pub org_id: Id,
    pub asset_id: Id,
    pub earmark: Earmark,
}

/// What a pool holds. The lots that make it up are in [`Model::lots`]
/// (their quantities always sum to the balance), apart from the pool's row
/// because they grow with the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub balance: u64,
}

/// Units of one receipt in a pool, or in a transfer or delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    pub receipt_id: Id,
    pub quantity: u64,
    /// How many transfers these units have been through.
    pub hop: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub name: String,
    pub kind: OrgKind,
    pub parent_org_id: Option<String>,
    pub commune_code: Option<String>,
    pub public_name: bool,
    pub seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commune {
    pub name: String,
    pub district: String,
    pub province: String,
    pub children_count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub name: String,
    pub unit: String,
    pub unit_value_vnd: u64,
    pub in_kind: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    pub event_id: EventId,
    pub seq: u64,
    pub commune_code: String,
    pub category: Category,
    pub year: u32,
    pub asset_id: String,
    pub quantity: u64,
    pub children_targeted: u32,
    pub description: String,
    pub withdrawn: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub seq: u64,
    pub year: u32,
    pub targets: Vec<PlanTarget>,
    pub withdrawn: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PledgeRecord {
    pub event_id: EventId,
    pub seq: u64,
    pub donor_org_id: String,
    pub recipient_org_id: String,
    pub asset_id: String,
    pub quantity: u64,
    pub earmark: Earmark,
    pub due_date: Option<String>,
    pub received: u64,
    pub cancelled: bool,
}

/// Where part of a receipt went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowKind {
    Transfer,
    Delivery,
    /// Taken from the pool by the reversal of another receipt whose own
    /// units had already been spent.
    Withdrawn,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    pub kind: FlowKind,
    /// The transfer, delivery, or (withdrawn) reversed receipt.
    pub id: Id,
    pub quantity: u64,
    pub hop: u32,
    /// For transfers: which part of the transfer this is, to work out how
    /// much of it arrived.
    pub part: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    pub event_id: EventId,
    pub seq: u64,
    pub recipient_org_id: Id,
    pub donor_org_id: Id,
    pub pledge_id: Option<String>,
    pub asset_id: Id,
    pub quantity: u64,
    pub earmark: Earmark,
    pub external_ref_hash: Option<[u8; 32]>,
    pub note: String,
    pub occurred_at: Timestamp,
    pub reversed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub event_id: EventId,
    pub seq: u64,
    pub from_org_id: Id,
    pub to_org_id: Id,
    pub asset_id: Id,
    pub earmark: Earmark,
    pub quantity: u64,
    pub received: Option<u64>,
    pub reversed: bool,
    pub occurred_at: Timestamp,
    /// The lots it carries, in the order they left the sender's pool.
    pub parts: Vec<Lot>,
}

impl TransferRecord {
    /// How much of part `index` arrived: parts arrive in order until the
    /// received quantity runs out.
    pub fn arrived_of_part(&self, index: usize) -> u64 {
        let Some(received) = self.received else {
            return 0;
        };
        let before: u64 = self.parts[..index].iter().map(|p| p.quantity).sum();
        received
            .saturating_sub(before)
            .min(self.parts[index].quantity)
    }

    pub fn lost(&self) -> u64 {
        self.received.map_or(0, |r| self.quantity - r)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub event_id: EventId,
    pub seq: u64,
    pub org_id: Id,
    pub commune_code: Id,
    pub category: Category,
    pub asset_id: Id,
    pub quantity: u64,
    pub earmark: Earmark,
    pub children_reached: u32,
    pub beneficiary_count: u32,
    pub evidence_count: u32,
    pub period: Id,
    pub note: String,
    pub occurred_at: Timestamp,
    pub reversed: bool,
    /// The receipts it drew on, in the order taken.
    pub funding: Vec<Lot>,
}

impl DeliveryRecord {
    /// `YYYY` of the `YYYY-MM` period.
    pub fn year(&self) -> u32 {
        self.period[..4].parse().unwrap_or(0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspection {
    pub seq: u64,
    pub org_id: String,
    pub subject_id: String,
    pub passed: bool,
    pub standard: String,
    pub withdrawn: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommendationRecord {
    pub seq: u64,
    pub honoree_org_id: String,
    pub year: u32,
    pub decision_ref: String,
    pub reason: String,
    pub withdrawn: bool,
}

/// What a reversal of an event would act on, by the id of its record (or,
/// for plans, inspections and commendations, keyed by event id, nothing
/// more): how the digest has always named it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Target {
    Receipt(Id),
    Transfer(Id),
    Delivery(Id),
    Need(String),
    Plan,
    Inspection,
    Commendation,
}

/// The table a reversible event's record is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TargetTable {
    Receipts,
    Transfers,
    Deliveries,
    Needs,
    Plans,
    Inspections,
    Commendations,
}

/// Where a reversible event's record is: eight bytes where a table row
/// keyed by event id, holding the record's id, took seventy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TargetAt {
    table: TargetTable,
    /// 24 bits of the event id's hash ([`target_hash_bits`]), in what
    /// would be padding: the index grows without reading any record.
    /// Growing read every target's record for its event id, 2-4% of the
    /// fold's time in a profile of a 1M-entry rebuild.
    hash_bits: [u8; 3],
    position: u32,
}

/// The bits of event id `key`'s hash a [`TargetAt`] keeps: the low ones,
/// which FxHash's last rotation fills with the best-mixed bits of its
/// product (those depend on nearly every bit of the id).
fn target_hash_bits(key: u128) -> [u8; 3] {
    let [low @ .., _, _, _, _, _] = FxBuildHasher.hash_one(key).to_le_bytes();
    low
}

/// The hash of a target in the index, from the bits it keeps. Multiplied
/// by an odd constant so that hashbrown, which takes a slot from the low
/// bits and a tag from the top seven, gets the 24 bits spread over both.
/// Targets share a hash by chance, more often as the index grows (about
/// a third of them at eight million); inserts never compare, and only a
/// lookup (a reversal, rare) then reads more records.
fn target_hash(bits: [u8; 3]) -> u64 {
    let [a, b, c] = bits;
    u64::from(u32::from_le_bytes([a, b, c, 0])).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Reversible events not reversed or withdrawn yet, found by event id
/// ([`event_key`]), which their records hold.
#[derive(Debug, Default)]
pub struct ReversalTargets(PositionIndex<TargetAt>);

impl ReversalTargets {
    /// Adds the record at `position` of `table`, whose event id is `key`.
    fn add(&mut self, tables: &TargetTables, key: u128, table: TargetTable, position: usize) {
        let hash_bits = target_hash_bits(key);
        let at = TargetAt {
            table,
            hash_bits,
            position: position_u32(position),
        };
        debug_assert_eq!(tables.event_key(at), key, "a target's record holds its key");
        self.0.insert_hashed(target_hash(hash_bits), at, |other| {
            target_hash(other.hash_bits)
        });
    }

    /// Takes out the target of event id `key`.
    fn take(&mut self, tables: &TargetTables, key: u128) -> Option<TargetAt> {
        self.0
            .remove_hashed(target_hash(target_hash_bits(key)), |other| {
                tables.event_key(other) == key
            })
    }

    /// Every target, in event id order, as the digest names them.
    fn sorted(&self, tables: &TargetTables) -> Vec<(u128, Target)> {
        let mut targets: Vec<(u128, Target)> = self
            .0
            .iter()
            .map(|at| (tables.event_key(at), tables.record(at)))
            .collect();
        targets.sort_unstable_by_key(|(key, _)| *key);
        targets
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The tables reversal targets point into, borrowed apart from the
/// index ([`target_tables!`]): what reads a target's event id and record.
struct TargetTables<'m> {
    receipts: &'m Table<Id, ReceiptRecord>,
    transfers: &'m Table<Id, TransferRecord>,
    deliveries: &'m Table<Id, DeliveryRecord>,
    needs: &'m Table<String, Need>,
    plans: &'m Table<String, Plan>,
    inspections: &'m Table<String, Inspection>,
    commendations: &'m Table<String, CommendationRecord>,
}

/// [`TargetTables`] of a model, borrowed field by field, so that the
/// model's index of targets can change meanwhile.
macro_rules! target_tables {
    ($model:expr) => {
        TargetTables {
            receipts: &$model.receipts,
            transfers: &$model.transfers,
            deliveries: &$model.deliveries,
            needs: &$model.needs,
            plans: &$model.plans,
            inspections: &$model.inspections,
            commendations: &$model.commendations,
        }
    };
}

impl TargetTables<'_> {
    /// The event id of the record `target` points to, as a key.
    fn event_key(&self, target: TargetAt) -> u128 {
        let at = target.position as usize;
        // Plans, inspections and commendations are keyed by their event id,
        // parsed when the target was added.
        let parsed = |event_id: &str| {
            event_key(event_id).expect("a target's event id was checked when it was added")
        };
        match target.table {
            TargetTable::Receipts => self.receipts.at(at).1.event_id.key(),
            TargetTable::Transfers => self.transfers.at(at).1.event_id.key(),
            TargetTable::Deliveries => self.deliveries.at(at).1.event_id.key(),
            TargetTable::Needs => self.needs.at(at).1.event_id.key(),
            TargetTable::Plans => parsed(self.plans.at(at).0),
            TargetTable::Inspections => parsed(self.inspections.at(at).0),
            TargetTable::Commendations => parsed(self.commendations.at(at).0),
        }
    }

    fn record(&self, target: TargetAt) -> Target {
        let at = target.position as usize;
        match target.table {
            TargetTable::Receipts => Target::Receipt(self.receipts.at(at).0.clone()),
            TargetTable::Transfers => Target::Transfer(self.transfers.at(at).0.clone()),
            TargetTable::Deliveries => Target::Delivery(self.deliveries.at(at).0.clone()),
            TargetTable::Needs => Target::Need(self.needs.at(at).0.clone()),
            TargetTable::Plans => Target::Plan,
            TargetTable::Inspections => Target::Inspection,
            TargetTable::Commendations => Target::Commendation,
        }
    }
}

/// Running totals per asset, kept as events arrive so that totals need no
/// scan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetTotals {
    // u128: the rules bound each pool to u64, not the sum over all pools.
    pub received: u128,
    pub held: u128,
    pub in_transit: u128,
    pub lost: u128,
    pub delivered: u128,
}

/// Where the model is in the log: persisted with the tables in the same
/// transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Entries applied.
    pub size: u64,
    /// Leaf hash of entry `size - 1`.
    pub head: [u8; 32],
    pub recorded_at: Timestamp,
    /// The Merkle frontier over the applied entries, to check checkpoints.
    pub frontier: Vec<[u8; 32]>,
    /// The latest checkpoint proven to be a prefix of the applied entries:
    /// its signed note, size and root.
    pub checkpoint: Option<VerifiedCheckpoint>,
    pub origin: String,
    pub log_vkey: String,
}

impl Position {
    /// Cites `checkpoint`, verified against the applied entries, unless a
    /// later one is cited already: checkpoints are verified on the apply
    /// thread and by the follower's checks, in either order, and the cited
    /// one only moves forward. The same size again takes the newer note
    /// (it may carry more witness cosignatures).
    pub fn cite(&mut self, checkpoint: VerifiedCheckpoint) {
        if self
            .checkpoint
            .as_ref()
            .is_none_or(|cited| cited.size <= checkpoint.size)
        {
            self.checkpoint = Some(checkpoint);
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedCheckpoint {
    pub note: String,
    pub size: u64,
    pub root: [u8; 32],
}

/// A reversible event's key in [`Model::targets`]: its SPEC §7 event id,
/// a lowercase hyphenated UUID, as the 128-bit number it writes. Sixteen
/// bytes to hash and compare instead of a 36-character string to allocate,
/// hash and compare.
pub fn event_key(event_id: &str) -> Result<u128, String> {
    EventId::parse(event_id).map(EventId::key)
}

/// An event as the fold takes it: owned, so that its strings move into the
/// records it makes, and with its id already read as a number. The
/// follower makes these where it decodes, ahead of the fold's one thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedEvent {
    event: Event,
    id: EventId,
}

impl ParsedEvent {
    /// # Errors
    ///
    /// When the event's id is not a lowercase hyphenated UUID.
    pub fn new(event: Event) -> Result<ParsedEvent, String> {
        let id = EventId::parse(&event.event_id)?;
        Ok(ParsedEvent { event, id })
    }

    pub fn event(&self) -> &Event {
        &self.event
    }
}

/// Every read model.
#[derive(Debug)]
pub struct Model {
    pub position: Position,
    pub orgs: Table<String, Org>,
    pub communes: Table<String, Commune>,
    pub assets: Table<String, Asset>,
    pub needs: Table<String, Need>,
    /// By event id.
    pub plans: Table<String, Plan>,
    /// Pledges, receipts, transfers and deliveries are in log order (by
    /// seq; the fold removes none, and they are stored and loaded by
    /// position), for [`Table::in_order_from`].
    pub pledges: Table<String, PledgeRecord>,
    pub receipts: Table<Id, ReceiptRecord>,
    pub transfers: Table<Id, TransferRecord>,
    pub deliveries: Table<Id, DeliveryRecord>,
    /// By event id.
    pub inspections: Table<String, Inspection>,
    /// By event id.
    pub commendations: Table<String, CommendationRecord>,
    /// Reversible events not reversed or withdrawn yet.
    pub targets: ReversalTargets,
    /// Non-empty pools.
    pub pools: Table<PoolKey, Pool>,
    /// Each non-empty pool's lots, oldest first.
    pub lots: ListTable<PoolKey, Lot>,
    /// Where each receipt's units went, by receipt id, in log order.
    pub flows: ListTable<Id, FlowRecord>,
    /// Keyed by the shared id, which the fold holds (a load adopts the
    /// keys as the shared copies): found without comparing strings.
    pub asset_totals: Table<Id, AssetTotals>,
    /// Receipts by `external_ref_hash`.
    pub receipts_by_ref: ReceiptsByRef,
    /// Deliveries' positions in [`Model::deliveries`], by the seq of their
    /// entry: the lists below name deliveries by seq, eight bytes, where an
    /// id would cost a string for each of a delivery's many beneficiaries.
    deliveries_by_seq: PositionIndex<u32>,
    /// Deliveries by commune, in log order, by seq.
    pub deliveries_by_commune: ListTable<Id, u64>,
    /// Deliveries by beneficiary token, by seq, for overlap findings.
    pub deliveries_by_token: ListTable<[u8; 32], u64>,
    /// Totals and groups the pages read instead of the whole log; derived.
    pub aggregates: Aggregates,
    /// The shared copy of each organisation's, asset's, commune's and
    /// period's id.
    interner: Interner,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

/// The stored tables in their one order, borrowed as `&` or `&mut`: a
/// commit is encoded from the first list and settled on the second, table
/// by table, so the two must never differ.
macro_rules! stored_tables {
    ($model:ident, $($borrow:tt)+) => {
        [
            $($borrow)+ $model.orgs,
            $($borrow)+ $model.communes,
            $($borrow)+ $model.assets,
            $($borrow)+ $model.needs,
            $($borrow)+ $model.plans,
            $($borrow)+ $model.pledges,
            $($borrow)+ $model.receipts,
            $($borrow)+ $model.transfers,
            $($borrow)+ $model.deliveries,
            $($borrow)+ $model.inspections,
            $($borrow)+ $model.commendations,
            $($borrow)+ $model.pools,
            $($borrow)+ $model.lots,
            $($borrow)+ $model.flows,
            $($borrow)+ $model.asset_totals,
            $($borrow)+ $model.deliveries_by_token,
        ]
    };
}

/// The indexes a load rebuilds, built apart from the model
/// ([`Model::rebuild_indexes`]).
struct Indexes {
    targets: ReversalTargets,
    receipts_by_ref: ReceiptsByRef,
    deliveries_by_seq: PositionIndex<u32>,
    deliveries_by_commune: ListTable<Id, u64>,
}

impl Model {
    pub fn new() -> Self {
        Model {
            position: Position::default(),
            orgs: Table::new("orgs"),
            communes: Table::new("communes"),
            assets: Table::new("assets"),
            needs: Table::new("needs"),
            plans: Table::new("plans"),
            pledges: Table::in_log_order("pledges", |p| p.seq),
            receipts: Table::in_log_order("receipts", |r| r.seq),
            transfers: Table::in_log_order("transfers", |t| t.seq),
            deliveries: Table::in_log_order("deliveries", |d| d.seq),
            inspections: Table::new("inspections"),
            commendations: Table::new("commendations"),
            targets: ReversalTargets::default(),
            pools: Table::new("pools"),
            lots: ListTable::new("lots"),
            flows: ListTable::new("flows"),
            asset_totals: Table::new("asset_totals"),
            receipts_by_ref: ReceiptsByRef::default(),
            deliveries_by_seq: PositionIndex::default(),
            deliveries_by_commune: ListTable::derived("deliveries_by_commune"),
            deliveries_by_token: ListTable::new("deliveries_by_token"),
            aggregates: Aggregates::default(),
            interner: Interner::default(),
        }
    }

    /// The stored tables, in a fixed order: what the store writes and
    /// loads. The indexes over them (reversal targets, receipts by
    /// reference, deliveries by seq and by commune) are not stored but
    /// rebuilt at load ([`Model::rebuild_indexes`]): some are keyed by
    /// random values (event ids, reference hashes), whose inserts would
    /// rewrite pages all over their B-trees at every commit, and all of
    /// them follow from the records.
    pub(crate) fn stored_tables(&self) -> [&dyn StoredTable; 16] {
        stored_tables!(self, &)
    }

    /// [`Model::stored_tables`], to load and to settle commits.
    pub(crate) fn tables_mut(&mut self) -> [&mut dyn StoredTable; 16] {
        stored_tables!(self, &mut)
    }

    /// Rebuilds the indexes that are not stored from the records, after a
    /// load, exactly as the fold built them: a reversible record not
    /// reversed or withdrawn is a reversal target; lists are in log order.
    ///
    /// # Errors
    ///
    /// A stored record whose event id is not a SPEC §7 UUID (a store this
    /// fold did not write).
    pub(crate) fn rebuild_indexes(&mut self) -> Result<(), String> {
        self.share_loaded_ids();
        // The indexes and the aggregates read the records and write apart:
        // built side by side, a restart answers sooner (each is about a
        // quarter of a load).
        let model: &Model = self;
        let (indexes, aggregates) = std::thread::scope(|scope| {
            let aggregates = scope.spawn(|| model.aggregates_from_records());
            let indexes = model.indexes_from_records();
            let aggregates = aggregates
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (indexes, aggregates)
        });
        let Indexes {
            targets,
            receipts_by_ref,
            deliveries_by_seq,
            deliveries_by_commune,
        } = indexes?;
        self.targets = targets;
        self.receipts_by_ref = receipts_by_ref;
        self.deliveries_by_seq = deliveries_by_seq;
        self.deliveries_by_commune = deliveries_by_commune;
        self.aggregates = aggregates;
        Ok(())
    }

    /// The indexes over the records, as the fold keeps them.
    fn indexes_from_records(&self) -> Result<Indexes, String> {
        let mut indexes = Indexes {
            targets: ReversalTargets::default(),
            receipts_by_ref: ReceiptsByRef::default(),
            deliveries_by_seq: PositionIndex::default(),
            deliveries_by_commune: ListTable::derived("deliveries_by_commune"),
        };
        let Indexes {
            targets,
            receipts_by_ref,
            deliveries_by_seq,
            deliveries_by_commune,
        } = &mut indexes;
        let tables = target_tables!(self);
        let mut add_target = |key: u128, table: TargetTable, position: usize| {
            targets.add(&tables, key, table, position);
        };
        // In position order, which for receipts and deliveries is log
        // order (`Table::in_log_order`).
        for (position, _, receipt) in self.receipts.iter_positions() {
            if !receipt.reversed {
                add_target(receipt.event_id.key(), TargetTable::Receipts, position);
            }
            if let Some(hash) = &receipt.external_ref_hash {
                receipts_by_ref.add(&self.receipts, hash, position);
            }
        }
        for (position, _, transfer) in self.transfers.iter_positions() {
            if !transfer.reversed {
                add_target(transfer.event_id.key(), TargetTable::Transfers, position);
            }
        }
        for (position, _, delivery) in self.deliveries.iter_positions() {
            if !delivery.reversed {
                add_target(delivery.event_id.key(), TargetTable::Deliveries, position);
            }
            deliveries_by_seq.insert(&delivery.seq, position_u32(position), |other| {
                self.deliveries.at(other as usize).1.seq
            });
            deliveries_by_commune.push_back(&delivery.commune_code, delivery.seq);
        }
        for (position, _, need) in self.needs.iter_positions() {
            if !need.withdrawn {
                add_target(need.event_id.key(), TargetTable::Needs, position);
            }
        }
        for (position, event_id, plan) in self.plans.iter_positions() {
            if !plan.withdrawn {
                add_target(event_key(event_id)?, TargetTable::Plans, position);
            }
        }
        for (position, event_id, inspection) in self.inspections.iter_positions() {
            if !inspection.withdrawn {
                add_target(event_key(event_id)?, TargetTable::Inspections, position);
            }
        }
        for (position, event_id, commendation) in self.commendations.iter_positions() {
            if !commendation.withdrawn {
                add_target(event_key(event_id)?, TargetTable::Commendations, position);
            }
        }
        Ok(indexes)
    }

    /// Points every id a loaded record names to one shared copy, as the
    /// fold leaves them: the store holds each as a string of its own, and a
    /// model loaded at 10M entries would otherwise hold millions of copies
    /// of the same receipt and organisation ids.
    fn share_loaded_ids(&mut self) {
        let Model {
            receipts,
            transfers,
            deliveries,
            lots,
            flows,
            asset_totals,
            interner,
            ..
        } = self;
        // First, so that the records' asset ids below become the totals'
        // keys, which the fold then finds by pointer.
        for (_, asset_id, _) in asset_totals.iter_positions() {
            interner.adopt(asset_id);
        }
        let receipt_key = |id: &mut Id| {
            if let Some((key, _)) = receipts.get_key_value(id.as_str()) {
                *id = key.clone();
            }
        };
        let shared_lots = |lots: &mut [Lot]| {
            lots.iter_mut()
                .for_each(|lot| receipt_key(&mut lot.receipt_id))
        };
        for transfer in transfers.values_mut_unchanged() {
            shared_lots(&mut transfer.parts);
            for id in [
                &mut transfer.from_org_id,
                &mut transfer.to_org_id,
                &mut transfer.asset_id,
            ] {
                *id = interner.id(id);
            }
        }
        for delivery in deliveries.values_mut_unchanged() {
            shared_lots(&mut delivery.funding);
            for id in [
                &mut delivery.org_id,
                &mut delivery.commune_code,
                &mut delivery.asset_id,
                &mut delivery.period,
            ] {
                *id = interner.id(id);
            }
        }
        for lot in lots.items_mut_unchanged() {
            receipt_key(&mut lot.receipt_id);
        }
        for flow in flows.items_mut_unchanged() {
            let key = match flow.kind {
                FlowKind::Transfer => transfers.get_key_value(flow.id.as_str()).map(|(k, _)| k),
                FlowKind::Delivery => deliveries.get_key_value(flow.id.as_str()).map(|(k, _)| k),
                FlowKind::Withdrawn => receipts.get_key_value(flow.id.as_str()).map(|(k, _)| k),
            };
            if let Some(key) = key {
                flow.id = key.clone();
            }
        }
        for receipt in receipts.values_mut_unchanged() {
            for id in [
                &mut receipt.recipient_org_id,
                &mut receipt.donor_org_id,
                &mut receipt.asset_id,
            ] {
                *id = interner.id(id);
            }
        }
    }

    /// Every table but the indexes of positions, in the digest's order:
    /// those come after `commendations` (the targets) and after
    /// `asset_totals` (receipts by reference, then deliveries by seq).
    fn tables(&self) -> [&dyn StoredTable; 17] {
        [
            &self.orgs,
            &self.communes,
            &self.assets,
            &self.needs,
            &self.plans,
            &self.pledges,
            &self.receipts,
            &self.transfers,
            &self.deliveries,
            &self.inspections,
            &self.commendations,
            &self.pools,
            &self.lots,
            &self.flows,
            &self.asset_totals,
            &self.deliveries_by_commune,
            &self.deliveries_by_token,
        ]
    }

    /// SHA-256 over every table, row by row in key order, and the log
    /// position: equal digests mean equal read models.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.position.size.to_be_bytes());
        hasher.update(self.position.head);
        for table in self.tables() {
            table.digest_into(&mut hasher);
            // Named and fed as when they were tables, so a digest is the
            // same whichever binary takes it.
            if table.name() == "commendations" {
                let targets = self.targets.sorted(&target_tables!(self));
                digest_rows(&mut hasher, "targets", targets);
            }
            if table.name() == "asset_totals" {
                self.receipts_by_ref
                    .digest_into(&self.receipts, &mut hasher);
                let mut by_seq: Vec<(u64, &Id)> = self
                    .deliveries_by_seq
                    .iter()
                    .map(|position| {
                        let (id, delivery) = self.deliveries.at(position as usize);
                        (delivery.seq, id)
                    })
                    .collect();
                by_seq.sort_unstable_by_key(|(seq, _)| *seq);
                digest_rows(&mut hasher, "delivery_ids", by_seq);
            }
        }
        hasher.finalize().into()
    }

    /// Rows listed as changed since the last commit, over all tables: 0
    /// when nothing changed ([`StoredTable::pending_changes`]).
    pub fn pending_changes(&self) -> usize {
        self.tables().iter().map(|t| t.pending_changes()).sum()
    }

    /// Applies the event of entry `seq`, recorded at `recorded_at`: reads
    /// its id ([`ParsedEvent::new`]), then [`Model::apply_parsed`].
    ///
    /// # Errors
    ///
    /// As [`Model::apply_parsed`], and when the event's id is not a UUID.
    pub fn apply(
        &mut self,
        seq: u64,
        recorded_at: Timestamp,
        event: Event,
    ) -> Result<(), Inconsistent> {
        let event = ParsedEvent::new(event).map_err(|detail| Inconsistent { seq, detail })?;
        self.apply_parsed(seq, recorded_at, event)
    }

    /// Applies the event of entry `seq`, recorded at `recorded_at`, taking
    /// its strings into the records it makes rather than copying them.
    ///
    /// # Errors
    ///
    /// [`Inconsistent`] when the event contradicts the model; the model may
    /// then be partly changed and must be discarded (the follower stops and
    /// the last commit stays the durable state).
    pub fn apply_parsed(
        &mut self,
        seq: u64,
        recorded_at: Timestamp,
        event: ParsedEvent,
    ) -> Result<(), Inconsistent> {
        let fail = |detail: String| Inconsistent { seq, detail };
        if seq != self.position.size {
            return Err(fail(format!(
                "expected entry {}, the next one after the model",
                self.position.size
            )));
        }
        let ParsedEvent {
            event:
                Event {
                    event_id: event_id_text,
                    org_id,
                    occurred_at,
                    body,
                },
            id: event_id,
        } = event;
        let key = event_id.key();
        match body {
            Body::Genesis(g) => {
                self.position.origin = g.origin;
                self.position.log_vkey = g.log_vkey;
                self.orgs.insert(
                    g.authority_org_id,
                    Org {
                        name: g.authority_name,
                        kind: OrgKind::Authority,
                        parent_org_id: None,
                        commune_code: None,
                        public_name: true,
                        seq,
                    },
                );
                self.assets.insert(
                    VND.to_owned(),
                    Asset {
                        name: "Việt Nam đồng".to_owned(),
                        unit: "đồng".to_owned(),
                        unit_value_vnd: 1,
                        in_kind: false,
                    },
                );
            }
            Body::RegisterOrg(o) => self.orgs.insert(
                o.org_id,
                Org {
                    // SPEC §7.5: a hidden donor has no name in the log.
                    name: o.name.public().unwrap_or_default().to_owned(),
                    kind: o.kind,
                    parent_org_id: o.parent_org_id,
                    commune_code: o.commune_code,
                    public_name: o.name.is_public(),
                    seq,
                },
            ),
            Body::RegisterKey(_) | Body::RevokeKey(_) => {}
            Body::RegisterCommune(c) => self.communes.insert(
                c.commune_code,
                Commune {
                    name: c.name,
                    district: c.district,
                    province: c.province,
                    children_count: c.children_count,
                },
            ),
            Body::RegisterAsset(a) => self.assets.insert(
                a.asset_id,
                Asset {
                    name: a.name,
                    unit: a.unit,
                    unit_value_vnd: a.unit_value_vnd,
                    in_kind: a.in_kind,
                },
            ),
            Body::PublishNeed(n) => {
                let position = self.needs.insert_at(
                    n.need_id,
                    Need {
                        event_id,
                        seq,
                        commune_code: n.commune_code,
                        category: n.category,
                        year: n.year,
                        asset_id: n.asset_id,
                        quantity: n.quantity,
                        children_targeted: n.children_targeted,
                        description: n.description,
                        withdrawn: false,
                    },
                );
                self.add_target(key, TargetTable::Needs, position);
            }
            Body::PublishPlan(p) => {
                let position = self.plans.insert_at(
                    event_id_text,
                    Plan {
                        seq,
                        year: p.year,
                        targets: p.targets,
                        withdrawn: false,
                    },
                );
                self.add_target(key, TargetTable::Plans, position);
            }
            Body::Pledge(p) => {
                self.aggregates.index_pledge(&p.pledge_id, &p.donor_org_id);
                self.pledges.insert(
                    p.pledge_id,
                    PledgeRecord {
                        event_id,
                        seq,
                        donor_org_id: p.donor_org_id,
                        recipient_org_id: p.recipient_org_id,
                        asset_id: p.asset_id,
                        quantity: p.quantity,
                        earmark: p.earmark,
                        due_date: p.due_date,
                        received: 0,
                        cancelled: false,
                    },
                );
            }
            Body::CancelPledge(c) => {
                let pledge = self
                    .pledges
                    .get_mut(c.pledge_id.as_str())
                    .ok_or_else(|| fail(format!("cancels unknown pledge {}", c.pledge_id)))?;
                pledge.cancelled = true;
            }
            Body::Receipt(r) => {
                let receipt_id = Id::from(r.receipt_id.as_str());
                // The earmark moves into the pool's key, then on into the
                // record: cloned, a commune's code was an allocation per
                // event.
                let pool = PoolKey {
                    org_id: self.interner.id(&org_id),
                    asset_id: self.interner.id(&r.asset_id),
                    earmark: r.earmark,
                };
                if let Some(pledge_id) = &r.pledge_id {
                    let pledge = self
                        .pledges
                        .get_mut(pledge_id.as_str())
                        .ok_or_else(|| fail(format!("receipt for unknown pledge {pledge_id}")))?;
                    pledge.received = pledge.received.saturating_add(r.quantity);
                }
                self.credit(
                    &pool,
                    vec![Lot {
                        receipt_id: receipt_id.clone(),
                        quantity: r.quantity,
                        hop: 0,
                    }],
                )
                .map_err(fail)?;
                let totals = self.asset_totals.entry(&pool.asset_id, Default::default);
                totals.received += u128::from(r.quantity);
                let receipt = ReceiptRecord {
                    event_id,
                    seq,
                    recipient_org_id: pool.org_id,
                    donor_org_id: self.interner.id(&r.donor_org_id),
                    pledge_id: r.pledge_id,
                    asset_id: pool.asset_id,
                    quantity: r.quantity,
                    earmark: pool.earmark,
                    external_ref_hash: r.external_ref_hash,
                    note: r.note,
                    occurred_at,
                    reversed: false,
                };
                self.aggregates.receipt(&receipt, Sign::Add);
                let position = self.receipts.insert_at(receipt_id, receipt);
                self.aggregates
                    .index_receipt(position, self.receipts.at(position).1);
                if let Some(hash) = &r.external_ref_hash {
                    self.receipts_by_ref.add(&self.receipts, hash, position);
                }
                self.add_target(key, TargetTable::Receipts, position);
            }
            Body::Transfer(t) => {
                let transfer_id = Id::from(t.transfer_id.as_str());
                let pool = PoolKey {
                    org_id: self.interner.id(&org_id),
                    asset_id: self.interner.id(&t.asset_id),
                    earmark: t.earmark,
                };
                let parts = self.debit_fifo(&pool, t.quantity).map_err(fail)?;
                for (index, part) in parts.iter().enumerate() {
                    self.record_flow(
                        part,
                        FlowRecord {
                            kind: FlowKind::Transfer,
                            id: transfer_id.clone(),
                            quantity: part.quantity,
                            hop: part.hop,
                            part: index as u32,
                        },
                    );
                }
                let totals = self.asset_totals.entry(&pool.asset_id, Default::default);
                totals.held -= u128::from(t.quantity);
                totals.in_transit += u128::from(t.quantity);
                let transfer = TransferRecord {
                    event_id,
                    seq,
                    from_org_id: pool.org_id,
                    to_org_id: self.interner.id(&t.to_org_id),
                    asset_id: pool.asset_id,
                    earmark: pool.earmark,
                    quantity: t.quantity,
                    received: None,
                    reversed: false,
                    occurred_at,
                    parts,
                };
                self.aggregates.in_transit(&transfer, Sign::Add);
                let position = self.transfers.insert_at(transfer_id, transfer);
                self.add_target(key, TargetTable::Transfers, position);
            }
            Body::TransferReceived(r) => {
                let transfer = self
                    .transfers
                    .get_mut(r.transfer_id.as_str())
                    .ok_or_else(|| fail(format!("confirms unknown transfer {}", r.transfer_id)))?;
                if transfer.received.is_some() || transfer.reversed {
                    return Err(fail(format!(
                        "confirms transfer {} which is not in transit",
                        r.transfer_id
                    )));
                }
                if r.quantity_received > transfer.quantity {
                    return Err(fail(format!(
                        "confirms {} of transfer {} which carried {}",
                        r.quantity_received, r.transfer_id, transfer.quantity
                    )));
                }
                transfer.received = Some(r.quantity_received);
                // Read in place: a copy of the record cost a reference
                // count per part.
                let transfer = &*transfer;
                // Parts arrive in order until the received quantity runs
                // out (one pass: a transfer may carry very many parts).
                let mut left = r.quantity_received;
                let arrived: Vec<Lot> = transfer
                    .parts
                    .iter()
                    .map_while(|part| {
                        let quantity = part.quantity.min(left);
                        left -= quantity;
                        (quantity > 0).then(|| Lot {
                            receipt_id: part.receipt_id.clone(),
                            quantity,
                            hop: part.hop + 1,
                        })
                    })
                    .collect();
                let pool = PoolKey {
                    org_id: transfer.to_org_id.clone(),
                    asset_id: transfer.asset_id.clone(),
                    earmark: transfer.earmark.clone(),
                };
                let (quantity, lost) = (transfer.quantity, transfer.lost());
                self.aggregates.in_transit(transfer, Sign::Remove);
                self.credit(&pool, arrived).map_err(fail)?;
                let totals = self.asset_totals.entry(&pool.asset_id, Default::default);
                totals.in_transit -= u128::from(quantity);
                totals.lost += u128::from(lost);
            }
            Body::Delivery(d) => {
                let delivery_id = Id::from(d.delivery_id.as_str());
                let commune_code = self.interner.id(&d.commune_code);
                let pool = PoolKey {
                    org_id: self.interner.id(&org_id),
                    asset_id: self.interner.id(&d.asset_id),
                    earmark: d.earmark,
                };
                let funding = self.debit_fifo(&pool, d.quantity).map_err(fail)?;
                for part in &funding {
                    self.record_flow(
                        part,
                        FlowRecord {
                            kind: FlowKind::Delivery,
                            id: delivery_id.clone(),
                            quantity: part.quantity,
                            hop: part.hop,
                            part: 0,
                        },
                    );
                }
                let totals = self.asset_totals.entry(&pool.asset_id, Default::default);
                totals.held -= u128::from(d.quantity);
                totals.delivered += u128::from(d.quantity);
                self.deliveries_by_commune.push_back(&commune_code, seq);
                for token in &d.beneficiary_tokens {
                    self.deliveries_by_token.push_back(token, seq);
                }
                let delivery = DeliveryRecord {
                    event_id,
                    seq,
                    org_id: pool.org_id,
                    commune_code,
                    category: d.category,
                    asset_id: pool.asset_id,
                    quantity: d.quantity,
                    earmark: pool.earmark,
                    children_reached: d.children_reached,
                    beneficiary_count: d.beneficiary_tokens.len() as u32,
                    evidence_count: d.evidence_hashes.len() as u32,
                    period: self.interner.id(&d.period),
                    note: d.note,
                    occurred_at,
                    reversed: false,
                    funding,
                };
                self.aggregates
                    .delivery(&self.receipts, &delivery, Sign::Add);
                self.aggregates
                    .index_delivery(&delivery, d.beneficiary_tokens.iter().copied());
                let position = self.deliveries.insert_at(delivery_id, delivery);
                self.deliveries_by_seq
                    .insert(&seq, position_u32(position), |other| {
                        self.deliveries.at(other as usize).1.seq
                    });
                self.add_target(key, TargetTable::Deliveries, position);
            }
            Body::Inspection(i) => {
                let position = self.inspections.insert_at(
                    event_id_text,
                    Inspection {
                        seq,
                        org_id,
                        subject_id: i.subject_id,
                        passed: i.passed,
                        standard: i.standard,
                        withdrawn: false,
                    },
                );
                self.add_target(key, TargetTable::Inspections, position);
            }
            Body::Commendation(c) => {
                let position = self.commendations.insert_at(
                    event_id_text,
                    CommendationRecord {
                        seq,
                        honoree_org_id: c.honoree_org_id,
                        year: c.year,
                        decision_ref: c.decision_ref,
                        reason: c.reason,
                        withdrawn: false,
                    },
                );
                self.add_target(key, TargetTable::Commendations, position);
            }
            Body::Reversal(r) => self.reverse(&r.target_event_id).map_err(fail)?,
        }
        self.position.size = seq + 1;
        self.position.recorded_at = recorded_at;
        Ok(())
    }

    /// Records a new head after [`Model::apply_parsed`]: the entry's leaf hash and
    /// the Merkle frontier including it.
    pub fn set_head(&mut self, head: [u8; 32], frontier: Vec<[u8; 32]>) {
        self.position.head = head;
        self.position.frontier = frontier;
    }

    /// Makes the record at `position` of `table`, of event id `key`, a
    /// reversal target.
    fn add_target(&mut self, key: u128, table: TargetTable, position: usize) {
        self.targets
            .add(&target_tables!(self), key, table, position);
    }

    fn reverse(&mut self, target_event_id: &str) -> Result<(), String> {
        let key = event_key(target_event_id)?;
        let target = self
            .targets
            .take(&target_tables!(self), key)
            .ok_or_else(|| {
                format!(
                    "reverses event {target_event_id}, which is not reversible or already reversed"
                )
            })?;
        match target_tables!(self).record(target) {
            Target::Receipt(receipt_id) => self.reverse_receipt(&receipt_id),
            Target::Transfer(transfer_id) => {
                let transfer = self
                    .transfers
                    .get_mut(transfer_id.as_str())
                    .ok_or_else(|| format!("reverses unknown transfer {transfer_id}"))?;
                if transfer.received.is_some() {
                    return Err(format!(
                        "reverses transfer {transfer_id}, which was received"
                    ));
                }
                transfer.reversed = true;
                let transfer = transfer.clone();
                let pool = PoolKey {
                    org_id: transfer.from_org_id.clone(),
                    asset_id: transfer.asset_id.clone(),
                    earmark: transfer.earmark.clone(),
                };
                self.credit_front(&pool, transfer.parts.clone())?;
                self.aggregates.in_transit(&transfer, Sign::Remove);
                let totals = self
                    .asset_totals
                    .entry(&transfer.asset_id, Default::default);
                totals.in_transit -= u128::from(transfer.quantity);
                Ok(())
            }
            Target::Delivery(delivery_id) => {
                let delivery = self
                    .deliveries
                    .get_mut(delivery_id.as_str())
                    .ok_or_else(|| format!("reverses unknown delivery {delivery_id}"))?;
                delivery.reversed = true;
                let delivery = delivery.clone();
                let pool = PoolKey {
                    org_id: delivery.org_id.clone(),
                    asset_id: delivery.asset_id.clone(),
                    earmark: delivery.earmark.clone(),
                };
                self.credit_front(&pool, delivery.funding.clone())?;
                self.aggregates
                    .delivery(&self.receipts, &delivery, Sign::Remove);
                self.regroup_after_reversal(&delivery);
                let totals = self
                    .asset_totals
                    .entry(&delivery.asset_id, Default::default);
                totals.delivered -= u128::from(delivery.quantity);
                Ok(())
            }
            Target::Need(need_id) => {
                if let Some(need) = self.needs.get_mut(need_id.as_str()) {
                    need.withdrawn = true;
                }
                Ok(())
            }
            Target::Plan => {
                if let Some(plan) = self.plans.get_mut(target_event_id) {
                    plan.withdrawn = true;
                }
                Ok(())
            }
            Target::Inspection => {
                if let Some(inspection) = self.inspections.get_mut(target_event_id) {
                    inspection.withdrawn = true;
                }
                Ok(())
            }
            Target::Commendation => {
                if let Some(commendation) = self.commendations.get_mut(target_event_id) {
                    commendation.withdrawn = true;
                }
                Ok(())
            }
        }
    }

    fn reverse_receipt(&mut self, receipt_id: &Id) -> Result<(), String> {
        let receipt = self
            .receipts
            .get_mut(receipt_id)
            .ok_or_else(|| format!("reverses unknown receipt {receipt_id}"))?;
        receipt.reversed = true;
        let receipt = receipt.clone();
        let delivered = self.delivered_from(receipt_id);
        self.aggregates
            .receipt_delivered(&receipt, delivered, Sign::Remove);
        self.aggregates.receipt(&receipt, Sign::Remove);
        if let Some(pledge_id) = &receipt.pledge_id
            && let Some(pledge) = self.pledges.get_mut(pledge_id.as_str())
        {
            pledge.received = pledge.received.saturating_sub(receipt.quantity);
        }
        let pool = PoolKey {
            org_id: receipt.recipient_org_id.clone(),
            asset_id: receipt.asset_id.clone(),
            earmark: receipt.earmark.clone(),
        };
        let mut remaining = receipt.quantity;
        let mut withdrawn = Vec::new();
        {
            let held = self
                .pools
                .get_mut(&pool)
                .ok_or_else(|| format!("reverses receipt {receipt_id} from an empty pool"))?;
            if held.balance < receipt.quantity {
                return Err(format!(
                    "reverses receipt {receipt_id} of {} but its pool holds {}",
                    receipt.quantity, held.balance
                ));
            }
            held.balance -= receipt.quantity;
            let lots = self.lots.whole_mut(&pool);
            // Its own units first, wherever they sit in the pool.
            for lot in lots.iter_mut() {
                if remaining == 0 {
                    break;
                }
                if lot.receipt_id == *receipt_id {
                    let take = lot.quantity.min(remaining);
                    lot.quantity -= take;
                    remaining -= take;
                }
            }
            // Then the newest units of other receipts.
            for lot in lots.iter_mut().rev() {
                if remaining == 0 {
                    break;
                }
                if lot.quantity > 0 {
                    let take = lot.quantity.min(remaining);
                    lot.quantity -= take;
                    remaining -= take;
                    withdrawn.push(Lot {
                        receipt_id: lot.receipt_id.clone(),
                        quantity: take,
                        hop: lot.hop,
                    });
                }
            }
            lots.retain(|lot| lot.quantity > 0);
            if remaining > 0 {
                return Err(format!(
                    "reverses receipt {receipt_id}: the pool's lots are {remaining} short of its balance"
                ));
            }
        }
        if self.pools.get(&pool).is_some_and(|p| p.balance == 0) {
            self.pools.remove(&pool);
        }
        for lot in &withdrawn {
            self.record_flow(
                lot,
                FlowRecord {
                    kind: FlowKind::Withdrawn,
                    id: receipt_id.clone(),
                    quantity: lot.quantity,
                    hop: lot.hop,
                    part: 0,
                },
            );
        }
        let totals = self.asset_totals.entry(&receipt.asset_id, Default::default);
        totals.received -= u128::from(receipt.quantity);
        totals.held -= u128::from(receipt.quantity);
        Ok(())
    }

    fn record_flow(&mut self, lot: &Lot, flow: FlowRecord) {
        // Lots are made only from receipts, which stay in the table when
        // reversed: a lot naming none is a fault of this fold, not of the
        // log, and checking it cost a lookup per lot.
        debug_assert!(
            self.receipts.contains(lot.receipt_id.as_str()),
            "a lot names unknown receipt {}",
            lot.receipt_id
        );
        self.flows.push_back(&lot.receipt_id, flow);
    }

    /// Adds lots at the back of a pool.
    fn credit(&mut self, pool: &PoolKey, lots: Vec<Lot>) -> Result<(), String> {
        self.credit_at(pool, lots, false)
    }

    /// Puts lots back at the front of a pool, keeping their order.
    fn credit_front(&mut self, pool: &PoolKey, lots: Vec<Lot>) -> Result<(), String> {
        self.credit_at(pool, lots, true)
    }

    fn credit_at(&mut self, pool: &PoolKey, lots: Vec<Lot>, front: bool) -> Result<(), String> {
        let quantity: u64 = lots.iter().map(|l| l.quantity).sum();
        let held = self.pools.entry(pool, Pool::default);
        held.balance = held.balance.checked_add(quantity).ok_or_else(|| {
            format!(
                "balance of {} in {} would leave the u64 range",
                pool.org_id, pool.asset_id
            )
        })?;
        if held.balance == 0 {
            self.pools.remove(pool);
        }
        let lots = lots.into_iter().filter(|l| l.quantity > 0);
        if front {
            for lot in lots.rev() {
                self.lots.push_front(pool, lot);
            }
        } else {
            for lot in lots {
                self.lots.push_back(pool, lot);
            }
        }
        let totals = self.asset_totals.entry(&pool.asset_id, Default::default);
        totals.held += u128::from(quantity);
        Ok(())
    }

    /// Takes `quantity` from the front of a pool, oldest lot first.
    fn debit_fifo(&mut self, pool: &PoolKey, quantity: u64) -> Result<Vec<Lot>, String> {
        let held = self.pools.get_mut(pool).ok_or_else(|| {
            format!(
                "takes {quantity} of {} from {} which holds 0",
                pool.asset_id, pool.org_id
            )
        })?;
        if held.balance < quantity {
            return Err(format!(
                "takes {quantity} of {} from {} which holds {}",
                pool.asset_id, pool.org_id, held.balance
            ));
        }
        held.balance -= quantity;
        if held.balance == 0 {
            self.pools.remove(pool);
        }
        if quantity == 0 {
            return Ok(Vec::new());
        }
        let fewer = || format!("{}'s pool has fewer units than its balance", pool.org_id);
        // The pool's lots, found once for every lot taken.
        let mut lots = self.lots.front_taker(pool).ok_or_else(fewer)?;
        let mut taken = Vec::new();
        let mut remaining = quantity;
        while remaining > 0 {
            let front = lots.front_mut().ok_or_else(fewer)?;
            let take = front.quantity.min(remaining);
            taken.push(Lot {
                receipt_id: front.receipt_id.clone(),
                quantity: take,
                hop: front.hop,
            });
            front.quantity -= take;
            remaining -= take;
            if front.quantity == 0 {
                lots.pop_front();
            }
        }
        Ok(taken)
    }

    /// The delivery recorded by entry `seq`, with its id.
    pub fn delivery_at(&self, seq: u64) -> Option<(&Id, &DeliveryRecord)> {
        let position = self
            .deliveries_by_seq
            .get(&seq, |position| self.deliveries.at(position as usize).1.seq)?;
        Some(self.deliveries.at(position as usize))
    }

    /// The value in đồng of `quantity` of an asset at its registered unit
    /// value (saturating: a total beyond u64 đồng is not a real programme).
    pub fn value_vnd(&self, asset_id: &str, quantity: u64) -> u64 {
        let unit = self.assets.get(asset_id).map_or(0, |a| a.unit_value_vnd);
        quantity.saturating_mul(unit)
    }

    /// The name to show for an organisation: `None` when it asked not to be
    /// named, or is unknown.
    pub fn public_name(&self, org_id: &str) -> Option<&str> {
        self.orgs
            .get(org_id)
            .filter(|o| o.public_name || !o.kind.is_donor())
            .map(|o| o.name.as_str())
    }
}
