//! What the feed publishes, in one language-neutral shape that the web
//! pages, the JSON API and the CSV exports all render: privacy is decided
//! here, once.
//!
//! The rules (issue 6, SPEC §7): a donor who registered with
//! `public_name = false` has no name anywhere (`name` is `None`,
//! `anonymous` is true); beneficiary tokens, evidence hashes and reference
//! hashes are never part of a view; free-text notes are left out, since an
//! agency may have written a donor's name or a child's into one.

use aidledger_ledger::{Category, OrgKind};
use aidledger_projector::model::{Model, vn_date, vn_date_string};
use aidledger_projector::queries::{self, QueryError};
use aidledger_wire::pb;
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

    fn from_pb(model: &Model, amount: &pb::Amount) -> Self {
        Self::of(model, &amount.asset_id, amount.quantity)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EarmarkView {
    pub commune_code: Option<String>,
    pub category: Option<Category>,
}

impl EarmarkView {
    fn from_pb(earmark: Option<&pb::Earmark>) -> Self {
        let earmark = earmark.cloned().unwrap_or_default();
        EarmarkView {
            commune_code: Some(earmark.commune_code).filter(|c| !c.is_empty()),
            category: category(earmark.category),
        }
    }
}

/// The category of a wire value; `None` for unspecified.
pub fn category(wire: i32) -> Option<Category> {
    ALL_CATEGORIES.into_iter().find(|c| c.to_pb() == wire)
}

pub const ALL_CATEGORIES: [Category; 7] = [
    Category::Health,
    Category::Nutrition,
    Category::CultureRecreation,
    Category::Scholarship,
    Category::BooksSupplies,
    Category::Clothing,
    Category::Other,
];

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
    /// category: one pass over receipts and deliveries.
    pub fn of(model: &Model) -> Self {
        use std::collections::{BTreeMap, HashSet};
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
        let mut totals = Totals::default();
        let mut donors = HashSet::new();
        for receipt in model.receipts.values_any_order().filter(|r| !r.reversed) {
            let (year, _, _) = vn_date(receipt.occurred_at.seconds);
            let value = model.value_vnd(&receipt.asset_id, receipt.quantity);
            let row = cell(&mut cells, year, receipt.earmark.category);
            row.raised_vnd = row.raised_vnd.saturating_add(value);
            totals.receipts += 1;
            donors.insert(receipt.donor_org_id.as_str());
        }
        for delivery in model.deliveries.values_any_order().filter(|d| !d.reversed) {
            let value = model.value_vnd(&delivery.asset_id, delivery.quantity);
            let year = i32::try_from(delivery.year()).unwrap_or(0);
            let row = cell(&mut cells, year, Some(delivery.category));
            row.delivered_vnd = row.delivered_vnd.saturating_add(value);
            row.children_reached += u64::from(delivery.children_reached);
            totals.deliveries += 1;
            totals.children_reached += u64::from(delivery.children_reached);
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
        totals.donors = donors.len() as u64;
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

/// Every page of a paginated projection query, in order: `query` answers
/// one page (of the largest size) and gives the next page's token, empty
/// at the end.
fn all_pages<T>(
    mut query: impl FnMut(pb::Page) -> Result<(Vec<T>, String), QueryError>,
) -> Result<Vec<T>, QueryError> {
    let mut rows = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = query(pb::Page {
            page_size: queries::PAGE_SIZE_MAX as u32,
            page_token: token,
        })?;
        rows.extend(page);
        if next.is_empty() {
            return Ok(rows);
        }
        token = next;
    }
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
    fn from_pb(s: &pb::CommuneSummary) -> Self {
        CommuneRow {
            commune_code: s.commune_code.clone(),
            name: s.name.clone(),
            district: s.district.clone(),
            province: s.province.clone(),
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
pub fn communes(model: &Model, year: u32) -> Result<Vec<CommuneRow>, QueryError> {
    all_pages(|page| {
        let answer = queries::list_communes(
            model,
            &pb::ListCommunesRequest {
                page: Some(page),
                year,
            },
        )?;
        let rows = answer.communes.iter().map(CommuneRow::from_pb).collect();
        Ok((rows, answer.next_page_token))
    })
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
    let view = queries::get_commune(
        model,
        &pb::GetCommuneRequest {
            commune_code: code.to_owned(),
            year,
        },
    )?;
    let summary = view.summary.unwrap_or_default();
    Ok(CommuneDetail {
        as_of: AsOf::of(model),
        commune: CommuneRow::from_pb(&summary),
        year: Some(year).filter(|y| *y != 0),
        categories: view
            .categories
            .iter()
            .map(|c| CategoryNeed {
                category: category(c.category),
                needed_vnd: c.needed_value_vnd,
                delivered_vnd: c.delivered_value_vnd,
                children_targeted: c.children_targeted,
                children_reached: c.children_reached,
            })
            .collect(),
        funds_held: view
            .funds_held
            .iter()
            .map(|a| AmountView::from_pb(model, a))
            .collect(),
        funds_in_transit: view
            .funds_in_transit
            .iter()
            .map(|a| AmountView::from_pb(model, a))
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
                category: category(n.category),
                year: n.year,
                amount: n.amount.as_ref().map_or_else(
                    || AmountView::of(model, "", 0),
                    |a| AmountView::from_pb(model, a),
                ),
                children_targeted: n.children_targeted,
                description: n.description.clone(),
                uncovered_vnd: n.uncovered_value_vnd,
            })
            .collect(),
        recent_deliveries: view
            .recent_deliveries
            .iter()
            .map(|d| DeliveryRow::from_pb(model, d))
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
    fn from_pb(model: &Model, d: &pb::DeliveryView) -> Self {
        DeliveryRow {
            delivery_id: d.delivery_id.clone(),
            seq: d.seq,
            date: vn_date_string(d.occurred_at_seconds),
            period: d.period.clone(),
            deliverer: OrgRef::of(model, &d.org_id),
            commune: CommuneRef::of(model, &d.commune_code),
            category: category(d.category),
            amount: d.amount.as_ref().map_or_else(
                || AmountView::of(model, "", 0),
                |a| AmountView::from_pb(model, a),
            ),
            children_reached: d.children_reached,
            reversed: d.reversed,
        }
    }
}

/// Every delivery in log order.
pub fn deliveries(model: &Model) -> Vec<DeliveryRow> {
    let mut rows: Vec<_> = model.deliveries.iter_any_order().collect();
    rows.sort_by_key(|(_, d)| d.seq);
    rows.into_iter()
        .map(|(id, d)| DeliveryRow::from_pb(model, &queries::delivery_view(model, id, d)))
        .collect()
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
    fn from_pb(model: &Model, r: &pb::ReceiptView) -> Self {
        ReceiptRow {
            receipt_id: r.receipt_id.clone(),
            seq: r.seq,
            date: vn_date_string(r.occurred_at_seconds),
            donor: OrgRef::of(model, &r.donor_org_id),
            recipient: OrgRef::of(model, &r.recipient_org_id),
            pledge_id: Some(r.pledge_id.clone()).filter(|p| !p.is_empty()),
            amount: r.amount.as_ref().map_or_else(
                || AmountView::of(model, "", 0),
                |a| AmountView::from_pb(model, a),
            ),
            earmark: EarmarkView::from_pb(r.earmark.as_ref()),
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
            earmark: EarmarkView {
                commune_code: r.earmark.commune_code.clone(),
                category: r.earmark.category,
            },
            reversed: r.reversed,
        }
    }
}

/// Every receipt in log order, or only `donor`'s.
pub fn receipts(model: &Model, donor: Option<&str>) -> Vec<ReceiptRow> {
    let mut rows: Vec<_> = model
        .receipts
        .iter_any_order()
        .filter(|(_, r)| donor.is_none_or(|d| r.donor_org_id == d))
        .collect();
    rows.sort_by_key(|(_, r)| r.seq);
    rows.into_iter()
        .map(|(id, r)| ReceiptRow::of(model, id, r))
        .collect()
}

/// The receipts that carry a reference hash.
pub fn receipts_by_ref(model: &Model, hash: &[u8; 32]) -> Vec<ReceiptRow> {
    model
        .receipts_by_ref
        .get(hash)
        .into_iter()
        .flatten()
        .filter_map(|id| {
            model
                .receipts
                .get(id.as_str())
                .map(|r| ReceiptRow::of(model, id, r))
        })
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
    let trace = queries::trace_receipt(
        model,
        &pb::TraceReceiptRequest {
            key: Some(pb::trace_receipt_request::Key::ReceiptId(
                receipt_id.to_owned(),
            )),
        },
    )?;
    let receipt = trace.receipt.as_ref().expect("a trace carries its receipt");
    Ok(ReceiptTrace {
        as_of: AsOf::of(model),
        receipt: ReceiptRow::from_pb(model, receipt),
        delivered: trace.delivered,
        in_transit: trace.in_transit,
        lost: trace.lost,
        held: trace.held,
        withdrawn: trace.withdrawn,
        flows: trace
            .flows
            .iter()
            .map(|f| {
                let kind = pb::FlowKind::try_from(f.kind).unwrap_or_default();
                FlowRow {
                    kind: match kind {
                        pb::FlowKind::Transfer => "transfer",
                        pb::FlowKind::Delivery => "delivery",
                        pb::FlowKind::Withdrawn => "withdrawn",
                        pb::FlowKind::Unspecified => "unspecified",
                    },
                    id: f.id.clone(),
                    seq: f.seq,
                    hop: f.hop,
                    from: OrgRef::of(model, &f.from_org_id),
                    to_org: (kind == pb::FlowKind::Transfer).then(|| OrgRef::of(model, &f.to)),
                    to_commune: (kind == pb::FlowKind::Delivery)
                        .then(|| CommuneRef::of(model, &f.to)),
                    quantity: f.quantity,
                    arrived: f.arrived,
                    in_transit: f.in_transit,
                    reversed: f.reversed,
                    category: category(f.category),
                    period: Some(f.period.clone()).filter(|p| !p.is_empty()),
                }
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
pub fn donors(model: &Model, year: u32) -> Result<Vec<DonorRow>, QueryError> {
    all_pages(|page| {
        let answer = queries::recognition(
            model,
            &pb::GetRecognitionRequest {
                year,
                page: Some(page),
            },
        )?;
        let rows = answer
            .rows
            .iter()
            .map(|r| {
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
            })
            .collect();
        Ok((rows, answer.next_page_token))
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct DonorDetail {
    pub as_of: AsOf,
    pub donor: OrgRef,
    pub standing: Option<DonorRow>,
    pub pledges: Vec<PledgeRow>,
    pub receipts: Vec<ReceiptRow>,
}

pub fn donor(model: &Model, org_id: &str) -> Result<DonorDetail, QueryError> {
    if !model.orgs.get(org_id).is_some_and(|o| o.kind.is_donor()) {
        return Err(QueryError::NotFound(format!(
            "no donor has the id {org_id:?}"
        )));
    }
    Ok(DonorDetail {
        as_of: AsOf::of(model),
        donor: OrgRef::of(model, org_id),
        standing: donors(model, 0)?
            .into_iter()
            .find(|row| row.donor.org_id == org_id),
        pledges: pledges(model, Some(org_id))?,
        receipts: receipts(model, Some(org_id)),
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

pub fn pledge_status_name(status: i32) -> &'static str {
    match pb::PledgeStatus::try_from(status).unwrap_or_default() {
        pb::PledgeStatus::Open => "open",
        pb::PledgeStatus::PartlyReceived => "partly_received",
        pb::PledgeStatus::Fulfilled => "fulfilled",
        pb::PledgeStatus::Cancelled => "cancelled",
        pb::PledgeStatus::Overdue => "overdue",
        pb::PledgeStatus::Unspecified => "unspecified",
    }
}

/// Every pledge in log order, or only `donor`'s.
pub fn pledges(model: &Model, donor: Option<&str>) -> Result<Vec<PledgeRow>, QueryError> {
    all_pages(|page| {
        let answer = queries::list_pledges(
            model,
            &pb::ListPledgesRequest {
                page: Some(page),
                donor_org_id: donor.unwrap_or_default().to_owned(),
                ..Default::default()
            },
        )?;
        let rows = answer
            .pledges
            .iter()
            .map(|p| PledgeRow {
                pledge_id: p.pledge_id.clone(),
                seq: p.seq,
                donor: OrgRef::of(model, &p.donor_org_id),
                recipient: OrgRef::of(model, &p.recipient_org_id),
                amount: AmountView::of(model, &p.asset_id, p.quantity),
                received: p.received,
                due_date: Some(p.due_date.clone()).filter(|d| !d.is_empty()),
                status: pledge_status_name(p.status),
                earmark: EarmarkView::from_pb(p.earmark.as_ref()),
            })
            .collect();
        Ok((rows, answer.next_page_token))
    })
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
    fn from_pb(model: &Model, t: &pb::TransferView) -> Self {
        TransferRow {
            transfer_id: t.transfer_id.clone(),
            seq: t.seq,
            date: vn_date_string(t.occurred_at_seconds),
            from: OrgRef::of(model, &t.from_org_id),
            to: OrgRef::of(model, &t.to_org_id),
            amount: AmountView::of(model, &t.asset_id, t.quantity),
            received: t.received,
            lost: t.lost,
            state: match pb::TransferState::try_from(t.state).unwrap_or_default() {
                pb::TransferState::InTransit => "in_transit",
                pb::TransferState::Received => "received",
                pb::TransferState::Reversed => "reversed",
                pb::TransferState::Unspecified => "unspecified",
            },
            earmark: EarmarkView::from_pb(t.earmark.as_ref()),
        }
    }
}

/// Every transfer in log order; only those in transit with `in_transit`.
pub fn transfers(model: &Model, in_transit: bool) -> Result<Vec<TransferRow>, QueryError> {
    let state = if in_transit {
        pb::TransferState::InTransit as i32
    } else {
        0
    };
    all_pages(|page| {
        let answer = queries::list_transfers(
            model,
            &pb::ListTransfersRequest {
                page: Some(page),
                state,
                ..Default::default()
            },
        )?;
        let rows = answer
            .transfers
            .iter()
            .map(|t| TransferRow::from_pb(model, t))
            .collect();
        Ok((rows, answer.next_page_token))
    })
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

pub fn balances(model: &Model) -> Result<Balances, QueryError> {
    // Every page carries the totals; keep the last.
    let mut totals = pb::ListBalancesResponse::default();
    let pools = all_pages(|page| {
        let answer = queries::list_balances(
            model,
            &pb::ListBalancesRequest {
                page: Some(page),
                ..Default::default()
            },
        )?;
        let rows = answer
            .balances
            .iter()
            .map(|b| BalanceRow {
                holder: OrgRef::of(model, &b.org_id),
                amount: AmountView::of(model, &b.asset_id, b.held),
                earmark: EarmarkView::from_pb(b.earmark.as_ref()),
            })
            .collect();
        let next = answer.next_page_token.clone();
        totals = answer;
        Ok((rows, next))
    })?;
    Ok(Balances {
        as_of: AsOf::of(model),
        held_vnd: totals.held_value_vnd,
        in_transit_vnd: totals.in_transit_value_vnd,
        lost_vnd: totals.lost_value_vnd,
        totals: totals
            .totals
            .iter()
            .map(|t| {
                let asset = AmountView::of(model, &t.asset_id, 0);
                AssetTotalRow {
                    asset_id: t.asset_id.clone(),
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
        in_transit: transfers(model, true)?,
    })
}

// ---------------------------------------------------------------- overlaps

#[derive(Clone, Debug, Serialize)]
pub struct OverlapRow {
    pub kind: &'static str,
    pub commune: CommuneRef,
    pub category: Option<Category>,
    pub year: u32,
    pub period: Option<String>,
    pub orgs: Vec<OrgRef>,
    pub seqs: Vec<u64>,
    pub needed_vnd: u64,
    pub delivered_vnd: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Overlaps {
    pub as_of: AsOf,
    pub excess_percent: u32,
    pub findings: Vec<OverlapRow>,
}

/// Overlap findings; `excess_percent` is the tolerance over a need.
pub fn overlaps(model: &Model, excess_percent: u32) -> Result<Overlaps, QueryError> {
    let mut applied_percent = excess_percent;
    let findings = all_pages(|page| {
        let answer = queries::list_overlaps(
            model,
            &pb::ListOverlapsRequest {
                page: Some(page),
                ..Default::default()
            },
            excess_percent,
        )?;
        applied_percent = answer.excess_percent;
        // The beneficiary label is left out: it is derived from a token.
        let rows = answer
            .findings
            .iter()
            .map(|f| OverlapRow {
                kind: match pb::OverlapKind::try_from(f.kind).unwrap_or_default() {
                    pb::OverlapKind::SameBeneficiary => "same_beneficiary",
                    pb::OverlapKind::ExceedsNeed => "exceeds_need",
                    pb::OverlapKind::SameMonth => "same_month",
                    pb::OverlapKind::Unspecified => "unspecified",
                },
                commune: CommuneRef::of(model, &f.commune_code),
                category: category(f.category),
                year: f.year,
                period: Some(f.period.clone()).filter(|p| !p.is_empty()),
                orgs: f.org_ids.iter().map(|o| OrgRef::of(model, o)).collect(),
                seqs: f.seqs.clone(),
                needed_vnd: f.needed_value_vnd,
                delivered_vnd: f.delivered_value_vnd,
            })
            .collect();
        Ok((rows, answer.next_page_token))
    })?;
    Ok(Overlaps {
        as_of: AsOf::of(model),
        excess_percent: applied_percent,
        findings,
    })
}
