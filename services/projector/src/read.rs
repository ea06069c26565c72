//! The projector's read API in domain terms: what [`crate::queries`]
//! answers and what its callers (the gRPC service, the public feed) read.
//!
//! Enums where the wire has integers, `Option` where it has empty strings
//! and zeros, amounts valued in đồng, and key-based cursors: a page starts
//! after the last row of the one before, by that row's place in the
//! answer's total order, so rows added or removed between two calls never
//! make a page skip or repeat a row that stayed. Every answer carries the
//! [`AsOf`] it reflects. The wire mapping is `crate::wire`, the only code
//! that knows `pb`.

use aidledger_ledger::{Category, Earmark, OrgKind, Timestamp};

pub use crate::model::{FlowKind, VerifiedCheckpoint};

/// Default page size.
pub const PAGE_SIZE_DEFAULT: usize = 100;
/// Largest page a remote caller may ask for (the gRPC service holds the
/// model's read lock while it answers); a reader in the same process may
/// take a whole list at once.
pub const PAGE_SIZE_MAX: usize = 1000;
/// Deliveries shown on a commune view; the rest through `deliveries`.
pub const RECENT_DELIVERIES: usize = 20;

/// Why a query has no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
}

/// The log prefix an answer reflects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsOf {
    /// Entries applied: the answer reflects entries `0..size`.
    pub size: u64,
    /// Leaf hash of entry `size - 1`.
    pub head_leaf_hash: [u8; 32],
    /// Recorded time of entry `size - 1`: "today" for due dates.
    pub recorded_at: Timestamp,
    /// The latest checkpoint proven to be a prefix of the applied entries.
    pub checkpoint: Option<VerifiedCheckpoint>,
}

/// Where a page starts: after the row whose sort key this is. Opaque to
/// callers; the wire carries it as the page token.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor(pub(crate) String);

impl Cursor {
    /// A cursor from a page token this API gave out.
    pub fn from_token(token: &str) -> Cursor {
        Cursor(token.to_owned())
    }

    /// The page token of this cursor.
    pub fn token(&self) -> &str {
        &self.0
    }

    /// The cursor after the row of entry `seq`, in a list in log order
    /// (receipts, transfers, deliveries, pledges).
    pub fn after_seq(seq: u64) -> Cursor {
        Cursor(crate::queries::key_number(seq))
    }
}

/// Which page of a list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows per page: `None` for [`PAGE_SIZE_DEFAULT`].
    pub size: Option<usize>,
    /// Start after this row; `None` for the first page.
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// Every row after `after` in one page: for a reader in this process
    /// that needs a whole list (a page of the feed, an export), so the
    /// list is sorted once.
    pub fn rest(after: Option<Cursor>) -> PageRequest {
        PageRequest {
            size: Some(usize::MAX),
            after,
        }
    }
}

/// One page of a list, and where the next one starts (`None` at the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<Cursor>,
}

/// A quantity of an asset and its worth in đồng at the asset's unit value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Amount {
    pub asset_id: String,
    pub quantity: u64,
    pub value_vnd: u64,
}

/// How far the projector is, and whether it still follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub as_of: AsOf,
    /// The ledger's latest checkpoint size seen.
    pub ledger_size: u64,
    pub origin: String,
    /// Why following stopped (a verification or projection failure).
    pub halted_reason: Option<String>,
}

// ---------------------------------------------------------------- balances

/// Filters of [`crate::queries::balances`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BalancesQuery {
    pub page: PageRequest,
    pub org_id: Option<String>,
    pub asset_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balance {
    pub org_id: String,
    pub asset_id: String,
    pub earmark: Earmark,
    pub held: u64,
    pub held_value_vnd: u64,
}

/// One asset's totals over the whole ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetTotal {
    pub asset_id: String,
    pub in_kind: bool,
    pub held: u64,
    /// Sent and not yet confirmed.
    pub in_transit: u64,
    /// Sent minus received, over confirmed transfers.
    pub lost: u64,
    pub delivered: u64,
    pub received_from_donors: u64,
    pub held_value_vnd: u64,
    pub in_transit_value_vnd: u64,
    pub lost_value_vnd: u64,
    pub delivered_value_vnd: u64,
    pub received_value_vnd: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balances {
    pub as_of: AsOf,
    pub page: Page<Balance>,
    /// Over the whole ledger (not the page, not the filters).
    pub totals: Vec<AssetTotal>,
    pub held_value_vnd: u64,
    pub in_transit_value_vnd: u64,
    pub lost_value_vnd: u64,
}

// --------------------------------------------------------------- transfers

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferState {
    InTransit,
    Received,
    Reversed,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransfersQuery {
    pub page: PageRequest,
    /// Sender or recipient.
    pub org_id: Option<String>,
    pub state: Option<TransferState>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferView {
    pub transfer_id: String,
    pub event_id: String,
    pub seq: u64,
    pub from_org_id: String,
    pub to_org_id: String,
    pub asset_id: String,
    pub earmark: Earmark,
    pub quantity: u64,
    /// 0 until confirmed.
    pub received: u64,
    pub lost: u64,
    pub state: TransferState,
    pub occurred_at: Timestamp,
    pub value_vnd: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfers {
    pub as_of: AsOf,
    pub page: Page<TransferView>,
}

// ----------------------------------------------------------------- pledges

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PledgeStatus {
    Open,
    PartlyReceived,
    Fulfilled,
    Cancelled,
    /// Open or partly received, and past its due date.
    Overdue,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PledgesQuery {
    pub page: PageRequest,
    pub donor_org_id: Option<String>,
    pub recipient_org_id: Option<String>,
    pub status: Option<PledgeStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PledgeView {
    pub pledge_id: String,
    pub event_id: String,
    pub seq: u64,
    pub donor_org_id: String,
    /// `None` for a donor who asked not to be named.
    pub donor_name: Option<String>,
    pub recipient_org_id: String,
    pub asset_id: String,
    pub earmark: Earmark,
    pub quantity: u64,
    pub received: u64,
    /// `YYYY-MM-DD`.
    pub due_date: Option<String>,
    pub status: PledgeStatus,
    pub value_vnd: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PledgeSummary {
    pub org_id: String,
    pub pledges: u32,
    pub pledged_value_vnd: u64,
    pub received_value_vnd: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pledges {
    pub as_of: AsOf,
    pub page: Page<PledgeView>,
    /// Per donor and per recipient, over the whole ledger, cancelled
    /// pledges left out.
    pub by_donor: Vec<PledgeSummary>,
    pub by_recipient: Vec<PledgeSummary>,
}

// ----------------------------------------------------------- organisations

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrganizationsQuery {
    pub page: PageRequest,
    pub kind: Option<OrgKind>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationView {
    pub org_id: String,
    /// `None` when the organisation asked not to be named.
    pub name: Option<String>,
    pub anonymous: bool,
    pub kind: OrgKind,
    pub parent_org_id: Option<String>,
    pub commune_code: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organizations {
    pub as_of: AsOf,
    pub page: Page<OrganizationView>,
}

// ---------------------------------------------------------------- communes

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommuneSummary {
    pub commune_code: String,
    pub name: String,
    pub district: String,
    pub province: String,
    pub children_count: u32,
    pub needed_value_vnd: u64,
    pub delivered_value_vnd: u64,
    pub children_targeted: u32,
    pub children_reached: u32,
    pub deliveries: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Communes {
    pub as_of: AsOf,
    pub page: Page<CommuneSummary>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryProgress {
    pub category: Category,
    pub needed: Vec<Amount>,
    pub delivered: Vec<Amount>,
    pub needed_value_vnd: u64,
    pub delivered_value_vnd: u64,
    pub children_targeted: u32,
    pub children_reached: u32,
}

/// A donor whose receipts funded deliveries in a commune (FIFO trace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contributor {
    pub org_id: String,
    /// `None` when anonymous.
    pub name: Option<String>,
    pub anonymous: bool,
    pub value_vnd: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedView {
    pub need_id: String,
    pub event_id: String,
    pub seq: u64,
    pub category: Category,
    pub year: u32,
    pub amount: Amount,
    pub children_targeted: u32,
    pub description: String,
    /// What deliveries in the need's commune, category and year have not
    /// covered yet, in đồng.
    pub uncovered_value_vnd: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryView {
    pub delivery_id: String,
    pub event_id: String,
    pub seq: u64,
    pub org_id: String,
    pub commune_code: String,
    pub category: Category,
    pub amount: Amount,
    pub earmark: Earmark,
    pub children_reached: u32,
    /// `YYYY-MM`.
    pub period: String,
    pub note: String,
    pub reversed: bool,
    pub occurred_at: Timestamp,
    pub beneficiary_count: u32,
    pub evidence_count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommuneView {
    pub as_of: AsOf,
    pub summary: CommuneSummary,
    pub categories: Vec<CategoryProgress>,
    /// Earmarked for this commune: held by organisations, and in transit.
    pub funds_held: Vec<Amount>,
    pub funds_in_transit: Vec<Amount>,
    /// By value, largest first.
    pub donors: Vec<Contributor>,
    /// Published needs not yet covered by deliveries.
    pub uncovered_needs: Vec<NeedView>,
    pub needs: Vec<NeedView>,
    /// The latest [`RECENT_DELIVERIES`], newest first.
    pub recent_deliveries: Vec<DeliveryView>,
}

// -------------------------------------------------------------- deliveries

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveriesQuery {
    pub page: PageRequest,
    pub commune_code: Option<String>,
    pub org_id: Option<String>,
    pub year: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deliveries {
    pub as_of: AsOf,
    pub page: Page<DeliveryView>,
}

// -------------------------------------------------------------------- plan

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRow {
    pub category: Category,
    /// `None`: a province-wide target.
    pub commune_code: Option<String>,
    pub asset_id: String,
    pub target_quantity: u64,
    pub delivered_quantity: u64,
    pub children_targeted: u32,
    pub children_reached: u32,
    /// delivered / target, in basis points (10000 = 100%).
    pub progress_bp: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanProgress {
    pub as_of: AsOf,
    pub year: u32,
    /// The plan in force: the latest one published for the year and not
    /// withdrawn; `None` when there is none.
    pub plan_event_id: Option<String>,
    pub page: Page<PlanRow>,
}

// ---------------------------------------------------------------- overlaps

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OverlapKind {
    /// One beneficiary token, one category, one year, several
    /// organisations.
    SameBeneficiary,
    /// Deliveries to a commune and category exceed its published need by
    /// more than the allowed share.
    ExceedsNeed,
    /// Several organisations deliver one category to one commune in one
    /// month.
    SameMonth,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverlapsQuery {
    pub page: PageRequest,
    pub year: Option<u32>,
    /// Tolerated share over a need, in percent; `None` for the projector's
    /// configured default.
    pub excess_percent: Option<u32>,
}

/// Events a finding carries in a list of findings; [`OverlapEventsQuery`]
/// lists them all.
pub const FINDING_EVENTS_SHOWN: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlapFinding {
    /// Names the finding's scope (its kind, year, commune or a one-way tag
    /// of the beneficiary token, category and month): the cursor of the list, and what
    /// [`OverlapEventsQuery`] takes.
    pub finding_id: String,
    pub kind: OverlapKind,
    pub commune_code: String,
    pub category: Category,
    pub year: u32,
    /// `YYYY-MM`, for [`OverlapKind::SameMonth`].
    pub period: Option<String>,
    pub org_ids: Vec<String>,
    /// The first [`FINDING_EVENTS_SHOWN`] events behind the finding
    /// (deliveries, and needs for [`OverlapKind::ExceedsNeed`]), in log
    /// order: a month's deliveries to a commune can be thousands.
    pub event_ids: Vec<String>,
    pub seqs: Vec<u64>,
    /// How many events are behind the finding.
    pub events_total: u64,
    /// For [`OverlapKind::ExceedsNeed`]: the values compared.
    pub needed_value_vnd: u64,
    pub delivered_value_vnd: u64,
    /// For [`OverlapKind::SameBeneficiary`]: a short label of the token
    /// (4 bytes of its SHA-256, hex), enough to group, not to identify.
    pub beneficiary_label: Option<String>,
}

/// Every event behind one finding, by seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlapEventsQuery {
    /// An [`OverlapFinding::finding_id`].
    pub finding_id: String,
    pub page: PageRequest,
}

/// One event behind a finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlapEvent {
    pub seq: u64,
    pub event_id: String,
    /// The delivering organisation; `None` for a need.
    pub org_id: Option<String>,
}

/// The events of the scope a finding id names, in log order. A need's or a
/// month's scope answers whether or not it is a finding at this position
/// (a reversal may have resolved it); a beneficiary's only while flagged,
/// since only the flagged groups lead from a finding's tag to a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlapEvents {
    pub as_of: AsOf,
    pub finding_id: String,
    pub events_total: u64,
    pub page: Page<OverlapEvent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlaps {
    pub as_of: AsOf,
    pub page: Page<OverlapFinding>,
    /// The tolerance applied.
    pub excess_percent: u32,
}

// ------------------------------------------------------------- recognition

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commended {
    pub event_id: String,
    pub year: u32,
    pub decision_ref: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecognitionRow {
    /// Competition ranking by total value: equal totals share a rank.
    pub rank: u32,
    pub org_id: String,
    /// `None` when anonymous.
    pub name: Option<String>,
    pub anonymous: bool,
    pub kind: Option<OrgKind>,
    pub cash_vnd: u64,
    pub in_kind_value_vnd: u64,
    pub total_value_vnd: u64,
    /// Value of this donor's receipts that reached children (FIFO trace).
    pub delivered_value_vnd: u64,
    pub delivered_share_bp: u32,
    pub receipts: u32,
    pub commendations: Vec<Commended>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recognition {
    pub as_of: AsOf,
    /// `None`: all years together.
    pub year: Option<u32>,
    pub page: Page<RecognitionRow>,
}

// ------------------------------------------------------------------ traces

/// How a receipt is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiptKey {
    Id(String),
    /// SPEC §7.5 `external_ref_hash`, keyed by the caller.
    RefHash([u8; 32]),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InspectionView {
    pub event_id: String,
    pub seq: u64,
    pub org_id: String,
    pub passed: bool,
    pub standard: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptView {
    pub receipt_id: String,
    pub event_id: String,
    pub seq: u64,
    pub recipient_org_id: String,
    pub donor_org_id: String,
    /// `None` when anonymous.
    pub donor_name: Option<String>,
    pub donor_anonymous: bool,
    pub pledge_id: Option<String>,
    pub amount: Amount,
    pub earmark: Earmark,
    pub reversed: bool,
    pub occurred_at: Timestamp,
    pub note: String,
    pub inspections: Vec<InspectionView>,
}

/// Filters of [`crate::queries::receipts`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiptsQuery {
    pub page: PageRequest,
    pub donor_org_id: Option<String>,
    pub recipient_org_id: Option<String>,
}

/// Receipts in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipts {
    pub as_of: AsOf,
    pub page: Page<ReceiptView>,
}

/// A part of a receipt that left an organisation's pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub kind: FlowKind,
    /// transfer_id, delivery_id, or the reversed receipt's id (withdrawn).
    pub id: String,
    pub event_id: String,
    pub seq: u64,
    pub from_org_id: String,
    /// Recipient organisation (transfers), commune code (deliveries), or
    /// the reversed receipt (withdrawn).
    pub to: String,
    pub quantity: u64,
    /// Transfers: how much of this part arrived; 0 while in transit.
    pub arrived: u64,
    pub in_transit: bool,
    pub reversed: bool,
    /// Deliveries only.
    pub category: Option<Category>,
    pub period: Option<String>,
    /// How many transfers the part went through before this one.
    pub hop: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptTrace {
    pub as_of: AsOf,
    pub receipt: ReceiptView,
    pub flows: Vec<Flow>,
    pub delivered: u64,
    pub in_transit: u64,
    pub lost: u64,
    /// Still in some organisation's pool.
    pub held: u64,
    /// Taken by reversals of other receipts; for a reversed receipt, its
    /// units removed by the reversal.
    pub withdrawn: u64,
    /// Where the undelivered rest is held.
    pub held_by: Vec<Balance>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Funding {
    pub receipt: ReceiptView,
    pub quantity: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryTrace {
    pub as_of: AsOf,
    pub delivery: DeliveryView,
    pub funded_by: Vec<Funding>,
}
