//! What the feed publishes, in one language-neutral shape that the web
//! pages, the JSON API and the CSV exports all render: privacy is decided
//! here, once.
//!
//! The rules (issue 6, SPEC §7): a donor who registered with
//! `public_name = false` has no name anywhere (`name` is `None`,
//! `anonymous` is true); beneficiary tokens, evidence hashes and reference
//! hashes are never part of a view; free-text notes are left out, since an
//! agency may have written a donor's name or a child's into one.

use aidledger_ledger::calendar::vn_date_string;
use aidledger_ledger::{Body, Category, Earmark, Event, OrgKind};
use aidledger_projector::model::Model;
use aidledger_projector::queries;
use aidledger_projector::read::{
    self, Cursor, FlowKind, OverlapKind, Page, PageRequest, PledgeStatus, QueryError, TransferState,
};
use serde::Serialize;

/// The log prefix an answer reflects.
#[derive(Clone, Debug, Serialize)]
pub struct AsOf {
    /// Entries applied.
    pub size: u64,
    /// Hex leaf hash of the last applied entry.
    pub head_leaf_hash: String,
    /// Vietnamese date of the last applied entry.
    pub date: String,
    /// The latest signed checkpoint proven to be a prefix of the applied
    /// entries.
    pub checkpoint_size: Option<u64>,
    pub checkpoint_root: Option<String>,
}

impl AsOf {
    pub fn of(model: &Model) -> Self {
        let position = &model.position;
        AsOf {
            size: position.size,
            head_leaf_hash: hex::encode(position.head),
            date: vn_date_string(position.recorded_at.seconds),
            checkpoint_size: position.checkpoint.as_ref().map(|c| c.size),
            checkpoint_root: position.checkpoint.as_ref().map(|c| hex::encode(c.root)),
        }
    }

    /// The position a projector answer reflects.
    pub fn answer(as_of: &read::AsOf) -> Self {
        AsOf {
            size: as_of.size,
            head_leaf_hash: hex::encode(as_of.head_leaf_hash),
            date: vn_date_string(as_of.recorded_at.seconds),
            checkpoint_size: as_of.checkpoint.as_ref().map(|c| c.size),
            checkpoint_root: as_of.checkpoint.as_ref().map(|c| hex::encode(c.root)),
        }
    }
}

/// An organisation as the public sees it.
#[derive(Clone, Debug, Serialize)]
pub struct OrgRef {
    pub org_id: String,
    /// `None` for a donor who asked not to be named.
    pub name: Option<String>,
    pub anonymous: bool,
    pub kind: Option<OrgKind>,
}

impl OrgRef {
    pub fn of(model: &Model, org_id: &str) -> Self {
        let org = model.orgs.get(org_id);
        let name = model.public_name(org_id).map(str::to_owned);
        OrgRef {
            org_id: org_id.to_owned(),
            anonymous: org.is_some() && name.is_none(),
            name,
            kind: org.map(|o| o.kind),
        }
    }
}

/// A commune as the public sees it.
#[derive(Clone, Debug, Serialize)]
pub struct CommuneRef {
    pub commune_code: String,
    pub name: Option<String>,
}

impl CommuneRef {
    pub fn of(model: &Model, code: &str) -> Self {
        CommuneRef {
            commune_code: code.to_owned(),
            name: model.communes.get(code).map(|c| c.name.clone()),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AmountView {
    pub asset_id: String,
    pub asset_name: String,
    pub unit: String,
    pub quantity: u64,
    pub value_vnd: u64,
}

impl AmountView {
    pub fn of(model: &Model, asset_id: &str, quantity: u64) -> Self {
        let asset = model.assets.get(asset_id);
        AmountView {
            asset_id: asset_id.to_owned(),
            asset_name: asset.map_or_else(|| asset_id.to_owned(), |a| a.name.clone()),
            unit: asset.map_or_else(String::new, |a| a.unit.clone()),
            quantity,
            value_vnd: model.value_vnd(asset_id, quantity),
        }
    }

    fn from_read(model: &Model, amount: &read::Amount) -> Self {
        Self::of(model, &amount.asset_id, amount.quantity)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EarmarkView {
    pub commune_code: Option<String>,
    pub category: Option<Category>,
}

impl EarmarkView {
    fn of(earmark: &Earmark) -> Self {
        EarmarkView {
            commune_code: earmark.commune_code.clone(),
            category: earmark.category,
        }
    }
}

// ---------------------------------------------------------------- overview

#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub received_vnd: u64,
    pub delivered_vnd: u64,
    pub in_transit_vnd: u64,
    pub held_vnd: u64,
    pub lost_vnd: u64,
    pub children_reached: u64,
    pub communes: u64,
    pub donors: u64,
    pub receipts: u64,
    pub deliveries: u64,
}

/// Raised and delivered in one year and category. Raised money without a
/// category earmark has `category: None`.
#[derive(Clone, Debug, Serialize)]
pub struct YearCategory {
    pub year: i32,
    pub category: Option<Category>,
    pub raised_vnd: u64,
    pub delivered_vnd: u64,
    pub children_reached: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    pub as_of: AsOf,
    pub totals: Totals,
    /// Ordered by year, then category (uncategorised first).
    pub by_year_and_category: Vec<YearCategory>,
}

impl Overview {
    /// Raised per year per earmarked category, delivered per year per
    /// category: from the projector's running totals, not the records.
    pub fn of(model: &Model) -> Self {
        use std::collections::BTreeMap;
        let mut cells: BTreeMap<(i32, Option<Category>), YearCategory> = BTreeMap::new();
        fn cell(
            cells: &mut BTreeMap<(i32, Option<Category>), YearCategory>,
            year: i32,
            category: Option<Category>,
        ) -> &mut YearCategory {
            cells
                .entry((year, category))
                .or_insert_with(|| YearCategory {
                    year,
                    category,
                    raised_vnd: 0,
                    delivered_vnd: 0,
                    children_reached: 0,
                })
        }
        let aggregates = &model.aggregates;
        let mut totals = Totals::default();
        for ((year, category), raised) in &aggregates.raised {
            let row = cell(&mut cells, *year, *category);
            row.raised_vnd = row
                .raised_vnd
                .saturating_add(model.value_of(&raised.received));
            totals.receipts += raised.receipts;
        }
        for commune_cells in aggregates.communes.values() {
            for ((year, category), delivered) in commune_cells {
                let year = i32::try_from(*year).unwrap_or(0);
                let row = cell(&mut cells, year, Some(*category));
                row.delivered_vnd = row
                    .delivered_vnd
                    .saturating_add(model.value_of(&delivered.delivered));
                row.children_reached += delivered.children_reached;
                totals.deliveries += delivered.deliveries;
                totals.children_reached += delivered.children_reached;
            }
        }
        for (asset_id, t) in model.asset_totals.iter_any_order() {
            let value = |q: u128| model.value_vnd(asset_id, u64::try_from(q).unwrap_or(u64::MAX));
            totals.received_vnd = totals.received_vnd.saturating_add(value(t.received));
            totals.delivered_vnd = totals.delivered_vnd.saturating_add(value(t.delivered));
            totals.in_transit_vnd = totals.in_transit_vnd.saturating_add(value(t.in_transit));
            totals.held_vnd = totals.held_vnd.saturating_add(value(t.held));
            totals.lost_vnd = totals.lost_vnd.saturating_add(value(t.lost));
        }
        totals.communes = model.communes.len() as u64;
        // A donor is kept while it has a receipt not reversed.
        totals.donors = aggregates.donors.len() as u64;
        Overview {
            as_of: AsOf::of(model),
            totals,
            by_year_and_category: cells.into_values().collect(),
        }
    }

    /// The years, oldest first.
    pub fn years(&self) -> Vec<i32> {
        let mut years: Vec<i32> = self.by_year_and_category.iter().map(|c| c.year).collect();
        years.dedup();
        years
    }
}

/// Every row of a paginated projection query, in order: `query` answers
/// the rest of the list after the cursor it is given (one page, unless a
/// page is ever bounded in the projector).
fn all_pages<T, U>(
    mut query: impl FnMut(PageRequest) -> Page<T>,
    mut show: impl FnMut(T) -> U,
) -> Vec<U> {
    let mut rows = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = query(PageRequest::rest(after));
        rows.extend(page.rows.into_iter().map(&mut show));
        match page.next {
            Some(next) => after = Some(next),
            None => return rows,
        }
    }
}

/// A year filter of the feed's routes: 0 is all years.
fn year_filter(year: u32) -> Option<u32> {
    Some(year).filter(|y| *y != 0)
}

// ---------------------------------------------------------------- communes

#[derive(Clone, Debug, Serialize)]
pub struct CommuneRow {
    pub commune_code: String,
    pub name: String,
    pub district: String,
    pub province: String,
    pub children_count: u32,
    pub needed_vnd: u64,
    pub delivered_vnd: u64,
    pub children_targeted: u32,
    pub children_reached: u32,
    pub deliveries: u32,
}

impl CommuneRow {
    fn of(s: read::CommuneSummary) -> Self {
        CommuneRow {
            commune_code: s.commune_code,
            name: s.name,
            district: s.district,
            province: s.province,
            children_count: s.children_count,
            needed_vnd: s.needed_value_vnd,
            delivered_vnd: s.delivered_value_vnd,
            children_targeted: s.children_targeted,
            children_reached: s.children_reached,
            deliveries: s.deliveries,
        }
    }
}

/// Every commune (a province has at most a few hundred), for `year`
/// (0: all years).
pub fn communes(model: &Model, year: u32) -> Vec<CommuneRow> {
    all_pages(
        |page| queries::communes(model, year_filter(year), &page).page,
        CommuneRow::of,
    )
}

#[derive(Clone, Debug, Serialize)]
pub struct CategoryNeed {
    pub category: Option<Category>,
    pub needed_vnd: u64,
    pub delivered_vnd: u64,
    pub children_targeted: u32,
    pub children_reached: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct NeedRow {
    pub need_id: String,
    pub seq: u64,
    pub category: Option<Category>,
    pub year: u32,
    pub amount: AmountView,
    pub children_targeted: u32,
    pub description: String,
    pub uncovered_vnd: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Contribution {
    pub donor: OrgRef,
    pub value_vnd: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CommuneDetail {
    pub as_of: AsOf,
    pub commune: CommuneRow,
    pub year: Option<u32>,
    pub categories: Vec<CategoryNeed>,
    pub funds_held: Vec<AmountView>,
    pub funds_in_transit: Vec<AmountView>,
    pub donors: Vec<Contribution>,
    pub needs: Vec<NeedRow>,
    pub recent_deliveries: Vec<DeliveryRow>,
}

pub fn commune(model: &Model, code: &str, year: u32) -> Result<CommuneDetail, QueryError> {
    let view = queries::commune(model, code, year_filter(year))?;
    Ok(CommuneDetail {
        as_of: AsOf::answer(&view.as_of),
        commune: CommuneRow::of(view.summary),
        year: year_filter(year),
        categories: view
            .categories
            .iter()
            .map(|c| CategoryNeed {
                category: Some(c.category),
                needed_vnd: c.needed_value_vnd,
                delivered_vnd: c.delivered_value_vnd,
                children_targeted: c.children_targeted,
                children_reached: c.children_reached,
            })
            .collect(),
        funds_held: view
            .funds_held
            .iter()
            .map(|a| AmountView::from_read(model, a))
            .collect(),
        funds_in_transit: view
            .funds_in_transit
            .iter()
            .map(|a| AmountView::from_read(model, a))
            .collect(),
        donors: view
            .donors
            .iter()
            .map(|d| Contribution {
                donor: OrgRef::of(model, &d.org_id),
                value_vnd: d.value_vnd,
            })
            .collect(),
        needs: view
            .needs
            .iter()
            .map(|n| NeedRow {
                need_id: n.need_id.clone(),
                seq: n.seq,
                category: Some(n.category),
                year: n.year,
                amount: AmountView::from_read(model, &n.amount),
                children_targeted: n.children_targeted,
                description: n.description.clone(),
                uncovered_vnd: n.uncovered_value_vnd,
            })
            .collect(),
        recent_deliveries: view
            .recent_deliveries
            .iter()
            .map(|d| DeliveryRow::of(model, d))
            .collect(),
    })
}

// -------------------------------------------------------------- deliveries

#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRow {
    pub delivery_id: String,
    pub seq: u64,
    pub date: String,
    pub period: String,
    pub deliverer: OrgRef,
    pub commune: CommuneRef,
    pub category: Option<Category>,
    pub amount: AmountView,
    pub children_reached: u32,
    pub reversed: bool,
}

impl DeliveryRow {
    fn of(model: &Model, d: &read::DeliveryView) -> Self {
        DeliveryRow {
            delivery_id: d.delivery_id.clone(),
            seq: d.seq,
            date: vn_date_string(d.occurred_at.seconds),
            period: d.period.clone(),
            deliverer: OrgRef::of(model, &d.org_id),
            commune: CommuneRef::of(model, &d.commune_code),
            category: Some(d.category),
            amount: AmountView::from_read(model, &d.amount),
            children_reached: d.children_reached,
            reversed: d.reversed,
        }
    }
}

/// One page of every delivery, in log order.
fn deliveries_query(model: &Model, page: PageRequest) -> Page<read::DeliveryView> {
    queries::deliveries(
        model,
        &read::DeliveriesQuery {
            page,
            ..Default::default()
        },
    )
    .page
}

/// Every delivery in log order.
pub fn deliveries(model: &Model) -> Vec<DeliveryRow> {
    all_pages(
        |page| deliveries_query(model, page),
        |d| DeliveryRow::of(model, &d),
    )
}

// ---------------------------------------------------------------- receipts

#[derive(Clone, Debug, Serialize)]
pub struct ReceiptRow {
    pub receipt_id: String,
    pub seq: u64,
    pub date: String,
    pub donor: OrgRef,
    pub recipient: OrgRef,
    pub pledge_id: Option<String>,
    pub amount: AmountView,
    pub earmark: EarmarkView,
    pub reversed: bool,
}

impl ReceiptRow {
    fn from_read(model: &Model, r: &read::ReceiptView) -> Self {
        ReceiptRow {
            receipt_id: r.receipt_id.clone(),
            seq: r.seq,
            date: vn_date_string(r.occurred_at.seconds),
            donor: OrgRef::of(model, &r.donor_org_id),
            recipient: OrgRef::of(model, &r.recipient_org_id),
            pledge_id: r.pledge_id.clone(),
            amount: AmountView::from_read(model, &r.amount),
            earmark: EarmarkView::of(&r.earmark),
            reversed: r.reversed,
        }
    }

    fn of(model: &Model, id: &str, r: &aidledger_projector::model::ReceiptRecord) -> Self {
        ReceiptRow {
            receipt_id: id.to_owned(),
            seq: r.seq,
            date: vn_date_string(r.occurred_at.seconds),
            donor: OrgRef::of(model, &r.donor_org_id),
            recipient: OrgRef::of(model, &r.recipient_org_id),
            pledge_id: r.pledge_id.clone(),
            amount: AmountView::of(model, &r.asset_id, r.quantity),
            earmark: EarmarkView::of(&r.earmark),
            reversed: r.reversed,
        }
    }
}

/// Every receipt in log order.
pub fn receipts(model: &Model) -> Vec<ReceiptRow> {
    let mut rows: Vec<_> = model.receipts.iter_any_order().collect();
    rows.sort_by_key(|(_, r)| r.seq);
    rows.into_iter()
        .map(|(id, r)| ReceiptRow::of(model, id, r))
        .collect()
}

/// The receipts that carry a reference hash.
pub fn receipts_by_ref(model: &Model, hash: &[u8; 32]) -> Vec<ReceiptRow> {
    model
        .receipts_by_ref
        .get(&model.receipts, hash)
        .into_iter()
        .map(|(id, r)| ReceiptRow::of(model, id, r))
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct FlowRow {
    pub kind: &'static str,
    pub id: String,
    pub seq: u64,
    pub hop: u32,
    pub from: OrgRef,
    /// The receiving organisation of a transfer.
    pub to_org: Option<OrgRef>,
    /// The commune of a delivery.
    pub to_commune: Option<CommuneRef>,
    pub quantity: u64,
    pub arrived: u64,
    pub in_transit: bool,
    pub reversed: bool,
    pub category: Option<Category>,
    pub period: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HeldBy {
    pub org: OrgRef,
    pub quantity: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReceiptTrace {
    pub as_of: AsOf,
    pub receipt: ReceiptRow,
    pub delivered: u64,
    pub in_transit: u64,
    pub lost: u64,
    pub held: u64,
    pub withdrawn: u64,
    pub flows: Vec<FlowRow>,
    pub held_by: Vec<HeldBy>,
}

pub fn trace(model: &Model, receipt_id: &str) -> Result<ReceiptTrace, QueryError> {
    let trace = queries::trace_receipt(model, &read::ReceiptKey::Id(receipt_id.to_owned()))?;
    Ok(ReceiptTrace {
        as_of: AsOf::answer(&trace.as_of),
        receipt: ReceiptRow::from_read(model, &trace.receipt),
        delivered: trace.delivered,
        in_transit: trace.in_transit,
        lost: trace.lost,
        held: trace.held,
        withdrawn: trace.withdrawn,
        flows: trace
            .flows
            .iter()
            .map(|f| FlowRow {
                kind: match f.kind {
                    FlowKind::Transfer => "transfer",
                    FlowKind::Delivery => "delivery",
                    FlowKind::Withdrawn => "withdrawn",
                },
                id: f.id.clone(),
                seq: f.seq,
                hop: f.hop,
                from: OrgRef::of(model, &f.from_org_id),
                to_org: (f.kind == FlowKind::Transfer).then(|| OrgRef::of(model, &f.to)),
                to_commune: (f.kind == FlowKind::Delivery).then(|| CommuneRef::of(model, &f.to)),
                quantity: f.quantity,
                arrived: f.arrived,
                in_transit: f.in_transit,
                reversed: f.reversed,
                category: f.category,
                period: f.period.clone(),
            })
            .collect(),
        held_by: trace
            .held_by
            .iter()
            .map(|b| HeldBy {
                org: OrgRef::of(model, &b.org_id),
                quantity: b.held,
            })
            .collect(),
    })
}

// ------------------------------------------------------------------ donors

#[derive(Clone, Debug, Serialize)]
pub struct Commendation {
    pub year: u32,
    pub decision_ref: String,
    pub reason: String,
    pub seq: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DonorRow {
    pub rank: u32,
    pub donor: OrgRef,
    pub cash_vnd: u64,
    pub in_kind_vnd: u64,
    pub total_vnd: u64,
    pub delivered_vnd: u64,
    pub delivered_share_bp: u32,
    pub receipts: u32,
    pub commendations: Vec<Commendation>,
}

/// Donors ranked by what they gave in `year` (0: all years), with the
/// commendations they received.
pub fn donors(model: &Model, year: u32) -> Vec<DonorRow> {
    all_pages(
        |page| queries::recognition(model, year_filter(year), &page).page,
        |r| {
            let donor = OrgRef::of(model, &r.org_id);
            // A commendation's reason and decision name the person: for a
            // donor who asked not to be named, only the year is published.
            let hide = |text: &str| {
                if donor.anonymous {
                    String::new()
                } else {
                    text.to_owned()
                }
            };
            DonorRow {
                rank: r.rank,
                cash_vnd: r.cash_vnd,
                in_kind_vnd: r.in_kind_value_vnd,
                total_vnd: r.total_value_vnd,
                delivered_vnd: r.delivered_value_vnd,
                delivered_share_bp: r.delivered_share_bp,
                receipts: r.receipts,
                commendations: r
                    .commendations
                    .iter()
                    .map(|c| Commendation {
                        year: c.year,
                        decision_ref: hide(&c.decision_ref),
                        reason: hide(&c.reason),
                        seq: model
                            .commendations
                            .get(c.event_id.as_str())
                            .map_or(0, |c| c.seq),
                    })
                    .collect(),
                donor,
            }
        },
    )
}

/// A donor page shows this many gifts at a time: a donor who gives every
/// month for years has thousands.
pub const DONOR_GIFTS_PER_PAGE: usize = 100;

#[derive(Clone, Debug, Serialize)]
pub struct DonorDetail {
    pub as_of: AsOf,
    pub donor: OrgRef,
    pub standing: Option<DonorRow>,
    pub pledges: Vec<PledgeRow>,
    /// One page of the donor's gifts, in log order, after the seq asked.
    pub receipts: Vec<ReceiptRow>,
    /// All the donor's gifts, reversed ones included.
    pub receipts_total: u64,
    /// The `after` of the next page, if there is one.
    pub next_after: Option<u64>,
}

/// One donor, with the page of its gifts whose seq is above `after`.
pub fn donor(model: &Model, org_id: &str, after: Option<u64>) -> Result<DonorDetail, QueryError> {
    if !model.orgs.get(org_id).is_some_and(|o| o.kind.is_donor()) {
        return Err(QueryError::NotFound(format!(
            "no donor has the id {org_id:?}"
        )));
    }
    let receipt_at = |position: u32| model.receipts.at(position as usize);
    let positions: &[u32] = model
        .aggregates
        .receipts_by_donor
        .get(org_id)
        .map_or(&[], Vec::as_slice);
    // The list is in log order: the page starts at the first seq above
    // `after`, found by bisection, not by reading the gifts before it.
    let start = after.map_or(0, |after| {
        positions.partition_point(|&position| receipt_at(position).1.seq <= after)
    });
    let page: Vec<ReceiptRow> = positions[start..]
        .iter()
        .take(DONOR_GIFTS_PER_PAGE)
        .map(|&position| {
            let (id, r) = receipt_at(position);
            ReceiptRow::of(model, id, r)
        })
        .collect();
    let next_after = (start + page.len() < positions.len())
        .then(|| page.last().map(|r| r.seq))
        .flatten();
    let today = vn_date_string(model.position.recorded_at.seconds);
    let pledges = model
        .aggregates
        .pledges_by_donor
        .get(org_id)
        .into_iter()
        .flatten()
        .filter_map(|id| model.pledges.get(id.as_str()).map(|p| (id, p)))
        .map(|(id, p)| PledgeRow::of(model, id, p, &today))
        .collect();
    Ok(DonorDetail {
        as_of: AsOf::of(model),
        donor: OrgRef::of(model, org_id),
        standing: donors(model, 0)
            .into_iter()
            .find(|row| row.donor.org_id == org_id),
        pledges,
        receipts: page,
        receipts_total: positions.len() as u64,
        next_after,
    })
}

// ----------------------------------------------------------------- pledges

#[derive(Clone, Debug, Serialize)]
pub struct PledgeRow {
    pub pledge_id: String,
    pub seq: u64,
    pub donor: OrgRef,
    pub recipient: OrgRef,
    pub amount: AmountView,
    pub received: u64,
    pub due_date: Option<String>,
    pub status: &'static str,
    pub earmark: EarmarkView,
}

impl PledgeRow {
    fn of(
        model: &Model,
        id: &str,
        p: &aidledger_projector::model::PledgeRecord,
        today: &str,
    ) -> Self {
        PledgeRow {
            pledge_id: id.to_owned(),
            seq: p.seq,
            donor: OrgRef::of(model, &p.donor_org_id),
            recipient: OrgRef::of(model, &p.recipient_org_id),
            amount: AmountView::of(model, &p.asset_id, p.quantity),
            received: p.received,
            due_date: p.due_date.clone(),
            status: pledge_status_name(queries::pledge_status(p, today)),
            earmark: EarmarkView::of(&p.earmark),
        }
    }
}

/// The published name of a pledge status (API, CSV, page classes).
pub fn pledge_status_name(status: PledgeStatus) -> &'static str {
    match status {
        PledgeStatus::Open => "open",
        PledgeStatus::PartlyReceived => "partly_received",
        PledgeStatus::Fulfilled => "fulfilled",
        PledgeStatus::Cancelled => "cancelled",
        PledgeStatus::Overdue => "overdue",
    }
}

/// Every pledge in log order.
pub fn pledges(model: &Model) -> Vec<PledgeRow> {
    let today = vn_date_string(model.position.recorded_at.seconds);
    let mut rows: Vec<_> = model.pledges.iter_any_order().collect();
    rows.sort_by_key(|(_, p)| p.seq);
    rows.into_iter()
        .map(|(id, p)| PledgeRow::of(model, id, p, &today))
        .collect()
}

// ---------------------------------------------------------------- balances

#[derive(Clone, Debug, Serialize)]
pub struct BalanceRow {
    pub holder: OrgRef,
    pub amount: AmountView,
    pub earmark: EarmarkView,
}

#[derive(Clone, Debug, Serialize)]
pub struct AssetTotalRow {
    pub asset_id: String,
    pub asset_name: String,
    pub unit: String,
    pub in_kind: bool,
    pub received: u64,
    pub held: u64,
    pub in_transit: u64,
    pub delivered: u64,
    pub lost: u64,
    pub received_vnd: u64,
    pub held_vnd: u64,
    pub in_transit_vnd: u64,
    pub delivered_vnd: u64,
    pub lost_vnd: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TransferRow {
    pub transfer_id: String,
    pub seq: u64,
    pub date: String,
    pub from: OrgRef,
    pub to: OrgRef,
    pub amount: AmountView,
    pub received: u64,
    pub lost: u64,
    pub state: &'static str,
    pub earmark: EarmarkView,
}

impl TransferRow {
    fn of(model: &Model, t: read::TransferView) -> Self {
        TransferRow {
            transfer_id: t.transfer_id,
            seq: t.seq,
            date: vn_date_string(t.occurred_at.seconds),
            from: OrgRef::of(model, &t.from_org_id),
            to: OrgRef::of(model, &t.to_org_id),
            amount: AmountView::of(model, &t.asset_id, t.quantity),
            received: t.received,
            lost: t.lost,
            state: match t.state {
                TransferState::InTransit => "in_transit",
                TransferState::Received => "received",
                TransferState::Reversed => "reversed",
            },
            earmark: EarmarkView::of(&t.earmark),
        }
    }
}

/// Rows of transfers or deliveries in a page of the API.
pub const LIST_ROWS_PER_PAGE: usize = 1_000;

/// One page of a list in log order, and where the next one starts.
#[derive(Clone, Debug, Serialize)]
pub struct ListPage<T> {
    pub as_of: AsOf,
    pub items: Vec<T>,
    /// The `after` of the next page (the seq of this page's last row),
    /// if there is one.
    pub next_after: Option<u64>,
}

/// The page of [`LIST_ROWS_PER_PAGE`] rows after entry `after`.
fn list_page<T, U>(
    model: &Model,
    after: Option<u64>,
    query: impl FnOnce(PageRequest) -> Page<T>,
    seq: impl Fn(&T) -> u64,
    show: impl FnMut(T) -> U,
) -> ListPage<U> {
    let page = query(PageRequest {
        size: Some(LIST_ROWS_PER_PAGE),
        after: after.map(Cursor::after_seq),
    });
    let next_after = page.next.as_ref().and(page.rows.last()).map(seq);
    ListPage {
        as_of: AsOf::of(model),
        next_after,
        items: page.rows.into_iter().map(show).collect(),
    }
}

/// The transfers after entry `after`, a page at a time, in log order.
pub fn transfers_page(model: &Model, after: Option<u64>) -> ListPage<TransferRow> {
    list_page(
        model,
        after,
        |page| transfers_query(model, page, false),
        |t| t.seq,
        |t| TransferRow::of(model, t),
    )
}

/// The deliveries after entry `after`, a page at a time, in log order.
pub fn deliveries_page(model: &Model, after: Option<u64>) -> ListPage<DeliveryRow> {
    list_page(
        model,
        after,
        |page| deliveries_query(model, page),
        |d| d.seq,
        |d| DeliveryRow::of(model, &d),
    )
}

/// One page of the transfers in log order; only those in transit with
/// `in_transit`.
fn transfers_query(model: &Model, page: PageRequest, in_transit: bool) -> Page<read::TransferView> {
    queries::transfers(
        model,
        &read::TransfersQuery {
            page,
            state: in_transit.then_some(TransferState::InTransit),
            ..Default::default()
        },
    )
    .page
}

/// Every transfer in log order; only those in transit with `in_transit`.
pub fn transfers(model: &Model, in_transit: bool) -> Vec<TransferRow> {
    all_pages(
        |page| transfers_query(model, page, in_transit),
        |t| TransferRow::of(model, t),
    )
}

#[derive(Clone, Debug, Serialize)]
pub struct Balances {
    pub as_of: AsOf,
    pub held_vnd: u64,
    pub in_transit_vnd: u64,
    pub lost_vnd: u64,
    pub totals: Vec<AssetTotalRow>,
    pub pools: Vec<BalanceRow>,
    pub in_transit: Vec<TransferRow>,
}

pub fn balances(model: &Model) -> Balances {
    // Every page carries the totals; keep the last.
    let mut last = None;
    let pools = all_pages(
        |page| {
            let answer = queries::balances(
                model,
                &read::BalancesQuery {
                    page,
                    ..Default::default()
                },
            );
            let page = answer.page.clone();
            last = Some(answer);
            page
        },
        |b| BalanceRow {
            holder: OrgRef::of(model, &b.org_id),
            amount: AmountView::of(model, &b.asset_id, b.held),
            earmark: EarmarkView::of(&b.earmark),
        },
    );
    let answer = last.expect("all_pages asks for at least one page");
    Balances {
        as_of: AsOf::answer(&answer.as_of),
        held_vnd: answer.held_value_vnd,
        in_transit_vnd: answer.in_transit_value_vnd,
        lost_vnd: answer.lost_value_vnd,
        totals: answer
            .totals
            .into_iter()
            .map(|t| {
                let asset = AmountView::of(model, &t.asset_id, 0);
                AssetTotalRow {
                    asset_id: t.asset_id,
                    asset_name: asset.asset_name,
                    unit: asset.unit,
                    in_kind: t.in_kind,
                    received: t.received_from_donors,
                    held: t.held,
                    in_transit: t.in_transit,
                    delivered: t.delivered,
                    lost: t.lost,
                    received_vnd: t.received_value_vnd,
                    held_vnd: t.held_value_vnd,
                    in_transit_vnd: t.in_transit_value_vnd,
                    delivered_vnd: t.delivered_value_vnd,
                    lost_vnd: t.lost_value_vnd,
                }
            })
            .collect(),
        pools,
        in_transit: transfers(model, true),
    }
}

// ---------------------------------------------------------------- overlaps

/// Findings per page of the overlaps page and API.
pub const OVERLAPS_PER_PAGE: usize = 100;
/// Events per page of one finding.
pub const OVERLAP_EVENTS_PER_PAGE: usize = 500;

#[derive(Clone, Debug, Serialize)]
pub struct OverlapRow {
    /// Names the finding: `/overlaps/{finding}` lists its events.
    pub finding: String,
    pub kind: &'static str,
    pub commune: CommuneRef,
    pub category: Option<Category>,
    pub year: u32,
    pub period: Option<String>,
    pub orgs: Vec<OrgRef>,
    /// The first events behind the finding, in log order.
    pub seqs: Vec<u64>,
    /// How many events are behind it.
    pub events_total: u64,
    pub needed_vnd: u64,
    pub delivered_vnd: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Overlaps {
    pub as_of: AsOf,
    pub excess_percent: u32,
    pub findings: Vec<OverlapRow>,
    /// The `after` of the next page, if there is one.
    pub next_after: Option<String>,
}

fn overlap_kind(kind: OverlapKind) -> &'static str {
    match kind {
        OverlapKind::SameBeneficiary => "same_beneficiary",
        OverlapKind::ExceedsNeed => "exceeds_need",
        OverlapKind::SameMonth => "same_month",
    }
}

/// The page of overlap findings after finding `after`; `excess_percent` is
/// the tolerance over a need.
pub fn overlaps(model: &Model, excess_percent: u32, after: Option<&str>) -> Overlaps {
    let answer = queries::overlaps(
        model,
        &read::OverlapsQuery {
            page: PageRequest {
                size: Some(OVERLAPS_PER_PAGE),
                after: after.map(Cursor::from_token),
            },
            year: None,
            excess_percent: Some(excess_percent),
        },
        excess_percent,
    );
    // The beneficiary label is left out: it is derived from a token.
    let findings = answer
        .page
        .rows
        .into_iter()
        .map(|f| OverlapRow {
            finding: f.finding_id,
            kind: overlap_kind(f.kind),
            commune: CommuneRef::of(model, &f.commune_code),
            category: Some(f.category),
            year: f.year,
            period: f.period,
            orgs: f.org_ids.iter().map(|o| OrgRef::of(model, o)).collect(),
            seqs: f.seqs,
            events_total: f.events_total,
            needed_vnd: f.needed_value_vnd,
            delivered_vnd: f.delivered_value_vnd,
        })
        .collect();
    Overlaps {
        as_of: AsOf::of(model),
        excess_percent,
        findings,
        next_after: answer.page.next.map(|c| c.token().to_owned()),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct OverlapEventRow {
    pub seq: u64,
    pub event_id: String,
    /// The delivering organisation; `None` for a need.
    pub org: Option<OrgRef>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OverlapEvents {
    pub as_of: AsOf,
    pub finding: String,
    pub events_total: u64,
    pub events: Vec<OverlapEventRow>,
    /// The `after` of the next page, if there is one.
    pub next_after: Option<u64>,
}

/// The events behind one finding with a seq above `after`.
///
/// # Errors
///
/// The finding id is malformed, or names nothing in the model.
pub fn overlap_events(
    model: &Model,
    finding: &str,
    after: Option<u64>,
) -> Result<OverlapEvents, QueryError> {
    let answer = queries::overlap_events(
        model,
        &read::OverlapEventsQuery {
            finding_id: finding.to_owned(),
            page: PageRequest {
                size: Some(OVERLAP_EVENTS_PER_PAGE),
                after: after.map(|seq| Cursor::from_token(&seq.to_string())),
            },
        },
    )?;
    Ok(OverlapEvents {
        as_of: AsOf::answer(&answer.as_of),
        finding: answer.finding_id,
        events_total: answer.events_total,
        events: answer
            .page
            .rows
            .into_iter()
            .map(|e| OverlapEventRow {
                seq: e.seq,
                event_id: e.event_id,
                org: e.org_id.map(|o| OrgRef::of(model, &o)),
            })
            .collect(),
        next_after: answer.page.next.and_then(|c| c.token().parse().ok()),
    })
}

// --------------------------------------------------------------------- log

/// One entry of the log as the Atom feed announces it: a title, a line and
/// a link, in English (the pages are where Vietnamese readers go). Names go
/// through [`OrgRef`], so a hidden donor is "Anonymous donor"; notes and
/// hashes are never part of it.
#[derive(Clone, Debug, Serialize)]
pub struct LogEvent {
    pub seq: u64,
    pub recorded_at_seconds: i64,
    pub title: String,
    pub summary: String,
    /// The English page about it.
    pub link: String,
}

/// `entries` (seq and bytes from the feed's verified copy) as log events.
///
/// # Errors
///
/// An entry cannot be read, which a verified copy never holds.
pub fn log_events(
    model: &Model,
    entries: &[(u64, Vec<u8>)],
) -> Result<Vec<LogEvent>, aidledger_ledger::EntryReadError> {
    entries
        .iter()
        .map(|(_, bytes)| {
            let logged = aidledger_ledger::read_logged_event(bytes)?;
            let (title, summary) = describe(model, &logged.event);
            let link = match &logged.event.body {
                Body::Receipt(r) => {
                    format!("/en/receipts/{}", crate::pages::url_segment(&r.receipt_id))
                }
                Body::Delivery(d) => {
                    format!(
                        "/en/communes/{}",
                        crate::pages::url_segment(&d.commune_code)
                    )
                }
                _ => "/en/log".to_owned(),
            };
            Ok(LogEvent {
                seq: logged.seq,
                recorded_at_seconds: logged.recorded_at.seconds,
                title,
                summary,
                link,
            })
        })
        .collect()
}

/// A title and one line about an event.
fn describe(model: &Model, event: &Event) -> (String, String) {
    let name = |org_id: &str| {
        let org = OrgRef::of(model, org_id);
        match org.name {
            Some(name) => name,
            None if org.anonymous => crate::Lang::En.anonymous().to_owned(),
            None => org_id.to_owned(),
        }
    };
    let amount = |asset_id: &str, quantity: u64| {
        let a = AmountView::of(model, asset_id, quantity);
        if a.asset_id == "VND" {
            format!("{} VND", crate::Lang::En.int(a.quantity))
        } else {
            format!(
                "{} {} {}",
                crate::Lang::En.int(a.quantity),
                a.unit,
                a.asset_name
            )
        }
    };
    let commune = |code: &str| {
        model
            .communes
            .get(code)
            .map_or_else(|| code.to_owned(), |c| c.name.clone())
    };
    match &event.body {
        Body::Receipt(r) => (
            format!(
                "Receipt {}: {}",
                r.receipt_id,
                amount(&r.asset_id, r.quantity)
            ),
            format!(
                "{} received {} from {}.",
                name(&event.org_id),
                amount(&r.asset_id, r.quantity),
                name(&r.donor_org_id)
            ),
        ),
        Body::Transfer(t) => (
            format!(
                "Transfer {}: {}",
                t.transfer_id,
                amount(&t.asset_id, t.quantity)
            ),
            format!(
                "{} sent {} to {}.",
                name(&event.org_id),
                amount(&t.asset_id, t.quantity),
                name(&t.to_org_id)
            ),
        ),
        Body::TransferReceived(t) => (
            format!("Transfer {} received", t.transfer_id),
            format!(
                "{} confirmed {} units arrived.",
                name(&event.org_id),
                t.quantity_received
            ),
        ),
        Body::Delivery(d) => (
            format!("Delivery {} in {}", d.delivery_id, commune(&d.commune_code)),
            format!(
                "{} delivered {} in {}, reaching {} children.",
                name(&event.org_id),
                amount(&d.asset_id, d.quantity),
                commune(&d.commune_code),
                d.children_reached
            ),
        ),
        Body::Pledge(p) => (
            format!(
                "Pledge {}: {}",
                p.pledge_id,
                amount(&p.asset_id, p.quantity)
            ),
            format!(
                "{} pledged {} to {}.",
                name(&p.donor_org_id),
                amount(&p.asset_id, p.quantity),
                name(&p.recipient_org_id)
            ),
        ),
        Body::PublishNeed(n) => (
            format!("Need published in {}", commune(&n.commune_code)),
            format!(
                "{} published a need for {}.",
                name(&event.org_id),
                commune(&n.commune_code)
            ),
        ),
        Body::RegisterOrg(o) => (
            "Organisation registered".to_owned(),
            format!("Registered {}.", name(&o.org_id)),
        ),
        other => {
            // "register_key" reads "Register key".
            let words = other.kind_name().replace('_', " ");
            let mut kind = words[..1].to_uppercase();
            kind.push_str(&words[1..]);
            let summary = format!("{kind} by {}.", name(&event.org_id));
            (kind, summary)
        }
    }
}
