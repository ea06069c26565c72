//! The answers of the read API ([`crate::read`]), computed from the model.
//!
//! Each function reads the model (under the caller's read lock) and builds
//! a domain answer, stamped with the position the model reflects. Orders
//! are total (every list is sorted by a unique key, which is also its
//! cursor), so equal models give equal answers, page by page.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use aidledger_ledger::calendar::vn_date_string;
use aidledger_ledger::{Category, Earmark};
use sha2::{Digest, Sha256};

use crate::aggregates::{CommuneCell, FindingTag, MonthKey, MonthScope, TokenGroup};
use crate::follower::FollowStatus;
use crate::id::Id;
use crate::model::{
    DeliveryRecord, Inspection, Model, PledgeRecord, ReceiptRecord, TransferRecord,
};
use crate::read::*;

type QueryResult<T> = Result<T, QueryError>;

/// The position an answer reflects.
pub fn as_of(model: &Model) -> AsOf {
    let position = &model.position;
    AsOf {
        size: position.size,
        head_leaf_hash: position.head,
        recorded_at: position.recorded_at,
        checkpoint: position.checkpoint.clone(),
    }
}

/// One page of `rows` in the order of `key` (unique per row), starting
/// after `page.after`, mapped by `show` (only the page is mapped).
///
/// A cursor is the last row's key, so rows added or removed before it
/// between two calls shift nothing: the next page starts where the last
/// one ended. `AsOf` says which log prefix each page reflects.
fn paginate<T, U>(
    rows: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> String,
    page: &PageRequest,
    show: impl FnMut(T) -> U,
) -> Page<U> {
    let size = page_size(page);
    let mut keyed: Vec<(String, T)> = rows
        .into_iter()
        .map(|row| (key(&row), row))
        .filter(|(key, _)| {
            page.after
                .as_ref()
                .is_none_or(|after| key.as_str() > after.token())
        })
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let more = keyed.len() > size;
    keyed.truncate(size);
    let next = more.then(|| Cursor(keyed.last().map(|(key, _)| key.clone()).unwrap_or_default()));
    Page {
        rows: keyed.into_iter().map(|(_, row)| row).map(show).collect(),
        next,
    }
}

/// A page of rows already in log order, keyed by seq as [`paginate`]
/// would key them, and with the same answer: the rows after the cursor are
/// read until the page is full, none sorted. `rows` may start anywhere
/// before the cursor ([`before_cursor`] finds where in a table).
fn page_in_log_order<T, U>(
    rows: impl IntoIterator<Item = T>,
    seq: impl Fn(&T) -> u64,
    page: &PageRequest,
    show: impl FnMut(T) -> U,
) -> Page<U> {
    let size = page_size(page);
    let before = before_cursor(page);
    let mut rows: Vec<T> = rows
        .into_iter()
        .skip_while(|row| before(seq(row)))
        .take(size.saturating_add(1))
        .collect();
    let more = rows.len() > size;
    rows.truncate(size);
    let next = more.then(|| {
        Cursor(
            rows.last()
                .map(|row| key_number(seq(row)))
                .unwrap_or_default(),
        )
    });
    Page {
        rows: rows.into_iter().map(show).collect(),
        next,
    }
}

/// Whether a row of this seq comes at or before the page's cursor, in the
/// cursors' order ([`key_number`]).
fn before_cursor(page: &PageRequest) -> impl Fn(u64) -> bool + '_ {
    move |seq| {
        page.after
            .as_ref()
            .is_some_and(|after| key_number(seq).as_str() <= after.token())
    }
}

/// Rows in a page of `page`.
fn page_size(page: &PageRequest) -> usize {
    match page.size {
        None | Some(0) => PAGE_SIZE_DEFAULT,
        Some(n) => n,
    }
}

/// Sort-key pieces: fields joined by `,`, which sorts below every
/// character of an id (SPEC 7: `[A-Za-z0-9._:-]`), so a shorter id comes
/// first as it would alone; numbers padded to sort as numbers.
pub(crate) fn key_number(n: u64) -> String {
    format!("{n:020}")
}

fn key_earmark(earmark: &Earmark) -> String {
    format!(
        "{},{}",
        earmark
            .commune_code
            .as_deref()
            .map_or_else(String::new, |c| format!("~{c}")),
        earmark
            .category
            .map_or_else(String::new, |c| format!("{:02}", c as u8))
    )
}

/// A u128 total, saturated to u64.
fn saturated(total: u128) -> u64 {
    u64::try_from(total).unwrap_or(u64::MAX)
}

fn amount(model: &Model, asset_id: &str, quantity: u64) -> Amount {
    Amount {
        asset_id: asset_id.to_owned(),
        quantity,
        value_vnd: model.value_vnd(asset_id, quantity),
    }
}

/// Adds into a per-asset map, saturating.
fn add(map: &mut BTreeMap<String, u64>, asset_id: &str, quantity: u64) {
    let slot = map.entry(asset_id.to_owned()).or_default();
    *slot = slot.saturating_add(quantity);
}

fn amounts(model: &Model, map: &BTreeMap<String, u64>) -> Vec<Amount> {
    map.iter().map(|(a, q)| amount(model, a, *q)).collect()
}

fn year_matches(filter: Option<u32>, year: u32) -> bool {
    filter.is_none_or(|filter| filter == year)
}

/// Whether an optional filter lets `value` through.
fn matches(filter: Option<&String>, value: &str) -> bool {
    filter.is_none_or(|filter| filter == value)
}

/// `quantity` of `total`, in basis points, capped at `u32::MAX`.
fn basis_points(part: u64, total: u64) -> u32 {
    if total == 0 {
        return 0;
    }
    let bp = u128::from(part) * 10_000 / u128::from(total);
    u32::try_from(bp).unwrap_or(u32::MAX)
}

/// Organisation name for public answers: `None` and `true` when hidden.
fn shown_name(model: &Model, org_id: &str) -> (Option<String>, bool) {
    match model.public_name(org_id) {
        Some(name) => (Some(name.to_owned()), false),
        None => (None, model.orgs.contains(org_id)),
    }
}

pub fn status(model: &Model, follow: &FollowStatus) -> Status {
    Status {
        as_of: as_of(model),
        ledger_size: follow.ledger_size,
        origin: model.position.origin.clone(),
        halted_reason: follow.halted.clone(),
    }
}

pub fn balances(model: &Model, query: &BalancesQuery) -> Balances {
    let rows = model
        .pools
        .iter_any_order()
        .filter(|(key, _)| matches(query.org_id.as_ref(), &key.org_id))
        .filter(|(key, _)| matches(query.asset_id.as_ref(), &key.asset_id));
    let page = paginate(
        rows,
        |(key, _)| {
            format!(
                "{},{},{}",
                key.org_id,
                key.asset_id,
                key_earmark(&key.earmark)
            )
        },
        &query.page,
        |(key, pool)| Balance {
            org_id: key.org_id.to_string(),
            asset_id: key.asset_id.to_string(),
            earmark: key.earmark.clone(),
            held: pool.balance,
            held_value_vnd: model.value_vnd(&key.asset_id, pool.balance),
        },
    );
    let mut answer = Balances {
        as_of: as_of(model),
        page,
        totals: Vec::new(),
        held_value_vnd: 0,
        in_transit_value_vnd: 0,
        lost_value_vnd: 0,
    };
    for (asset_id, totals) in model.asset_totals.sorted() {
        let in_kind = model
            .assets
            .get(asset_id.as_str())
            .is_some_and(|a| a.in_kind);
        let value = |q: u128| model.value_vnd(asset_id, saturated(q));
        let total = AssetTotal {
            asset_id: asset_id.to_string(),
            in_kind,
            held: saturated(totals.held),
            in_transit: saturated(totals.in_transit),
            lost: saturated(totals.lost),
            delivered: saturated(totals.delivered),
            received_from_donors: saturated(totals.received),
            held_value_vnd: value(totals.held),
            in_transit_value_vnd: value(totals.in_transit),
            lost_value_vnd: value(totals.lost),
            delivered_value_vnd: value(totals.delivered),
            received_value_vnd: value(totals.received),
        };
        answer.held_value_vnd = answer.held_value_vnd.saturating_add(total.held_value_vnd);
        answer.in_transit_value_vnd = answer
            .in_transit_value_vnd
            .saturating_add(total.in_transit_value_vnd);
        answer.lost_value_vnd = answer.lost_value_vnd.saturating_add(total.lost_value_vnd);
        answer.totals.push(total);
    }
    answer
}

fn transfer_state(transfer: &TransferRecord) -> TransferState {
    if transfer.reversed {
        TransferState::Reversed
    } else if transfer.received.is_some() {
        TransferState::Received
    } else {
        TransferState::InTransit
    }
}

fn transfer_view(model: &Model, id: &str, transfer: &TransferRecord) -> TransferView {
    TransferView {
        transfer_id: id.to_owned(),
        event_id: transfer.event_id.to_string(),
        seq: transfer.seq,
        from_org_id: transfer.from_org_id.to_string(),
        to_org_id: transfer.to_org_id.to_string(),
        asset_id: transfer.asset_id.to_string(),
        earmark: transfer.earmark.clone(),
        quantity: transfer.quantity,
        received: transfer.received.unwrap_or(0),
        lost: transfer.lost(),
        state: transfer_state(transfer),
        occurred_at: transfer.occurred_at,
        value_vnd: model.value_vnd(&transfer.asset_id, transfer.quantity),
    }
}

pub fn transfers(model: &Model, query: &TransfersQuery) -> Transfers {
    let before = before_cursor(&query.page);
    let rows = model
        .transfers
        .in_order_from(|t| before(t.seq))
        .filter(|(_, t)| {
            query
                .org_id
                .as_ref()
                .is_none_or(|org| &t.from_org_id == org || &t.to_org_id == org)
        })
        .filter(|(_, t)| query.state.is_none_or(|state| transfer_state(t) == state));
    Transfers {
        as_of: as_of(model),
        page: page_in_log_order(
            rows,
            |(_, t)| t.seq,
            &query.page,
            |(id, t)| transfer_view(model, id, t),
        ),
    }
}

/// A pledge's status on the Vietnamese date of the latest entry.
pub fn pledge_status(pledge: &PledgeRecord, today: &str) -> PledgeStatus {
    if pledge.cancelled {
        return PledgeStatus::Cancelled;
    }
    if pledge.received >= pledge.quantity {
        return PledgeStatus::Fulfilled;
    }
    if pledge.due_date.as_deref().is_some_and(|due| due < today) {
        return PledgeStatus::Overdue;
    }
    if pledge.received > 0 {
        PledgeStatus::PartlyReceived
    } else {
        PledgeStatus::Open
    }
}

pub fn pledges(model: &Model, query: &PledgesQuery) -> Pledges {
    let today = vn_date_string(model.position.recorded_at.seconds);
    let mut by_donor: BTreeMap<&str, PledgeSummary> = BTreeMap::new();
    let mut by_recipient: BTreeMap<&str, PledgeSummary> = BTreeMap::new();
    for pledge in model.pledges.values_any_order().filter(|p| !p.cancelled) {
        let pledged = model.value_vnd(&pledge.asset_id, pledge.quantity);
        let received = model.value_vnd(&pledge.asset_id, pledge.received);
        for (map, org) in [
            (&mut by_donor, pledge.donor_org_id.as_str()),
            (&mut by_recipient, pledge.recipient_org_id.as_str()),
        ] {
            let summary = map.entry(org).or_insert_with(|| PledgeSummary {
                org_id: org.to_owned(),
                ..Default::default()
            });
            summary.pledges += 1;
            summary.pledged_value_vnd = summary.pledged_value_vnd.saturating_add(pledged);
            summary.received_value_vnd = summary.received_value_vnd.saturating_add(received);
        }
    }
    let before = before_cursor(&query.page);
    let rows = model
        .pledges
        .in_order_from(|p| before(p.seq))
        .filter(|(_, p)| matches(query.donor_org_id.as_ref(), &p.donor_org_id))
        .filter(|(_, p)| matches(query.recipient_org_id.as_ref(), &p.recipient_org_id))
        .filter(|(_, p)| {
            query
                .status
                .is_none_or(|status| pledge_status(p, &today) == status)
        });
    let page = page_in_log_order(
        rows,
        |(_, p)| p.seq,
        &query.page,
        |(id, p)| PledgeView {
            pledge_id: id.clone(),
            event_id: p.event_id.to_string(),
            seq: p.seq,
            donor_org_id: p.donor_org_id.clone(),
            donor_name: shown_name(model, &p.donor_org_id).0,
            recipient_org_id: p.recipient_org_id.clone(),
            asset_id: p.asset_id.clone(),
            earmark: p.earmark.clone(),
            quantity: p.quantity,
            received: p.received,
            due_date: p.due_date.clone(),
            status: pledge_status(p, &today),
            value_vnd: model.value_vnd(&p.asset_id, p.quantity),
        },
    );
    Pledges {
        as_of: as_of(model),
        page,
        by_donor: by_donor.into_values().collect(),
        by_recipient: by_recipient.into_values().collect(),
    }
}

pub fn organizations(model: &Model, query: &OrganizationsQuery) -> Organizations {
    let rows = model
        .orgs
        .iter_any_order()
        .filter(|(_, org)| query.kind.is_none_or(|kind| org.kind == kind));
    let page = paginate(
        rows,
        |(id, _)| (*id).clone(),
        &query.page,
        |(id, org)| {
            let (name, anonymous) = shown_name(model, id);
            OrganizationView {
                org_id: id.clone(),
                name,
                anonymous,
                kind: org.kind,
                parent_org_id: org.parent_org_id.clone(),
                commune_code: org.commune_code.clone(),
            }
        },
    );
    Organizations {
        as_of: as_of(model),
        page,
    }
}

/// The live deliveries of a commune in a year (`None`: all), newest
/// first, read lazily from the end of its list.
fn commune_deliveries_newest_first<'m>(
    model: &'m Model,
    commune_code: &str,
    year: Option<u32>,
) -> impl Iterator<Item = (&'m Id, &'m DeliveryRecord)> {
    model
        .deliveries_by_commune
        .get(commune_code)
        .into_iter()
        .flat_map(|seqs| seqs.iter().rev())
        .filter_map(|seq| model.delivery_at(*seq))
        .filter(move |(_, d)| !d.reversed && year_matches(year, d.year()))
}

/// A commune's delivery totals per (year, category) in `year` (`None`:
/// all years), from the aggregates.
fn commune_cells<'m>(
    model: &'m Model,
    code: &str,
    year: Option<u32>,
) -> impl Iterator<Item = (&'m (u32, Category), &'m CommuneCell)> {
    model
        .aggregates
        .communes
        .get(code)
        .into_iter()
        .flatten()
        .filter(move |((cell_year, _), _)| year_matches(year, *cell_year))
}

fn commune_summary(model: &Model, code: &str, year: Option<u32>) -> CommuneSummary {
    let commune = model.communes.get(code);
    let mut summary = CommuneSummary {
        commune_code: code.to_owned(),
        name: commune.map(|c| c.name.clone()).unwrap_or_default(),
        district: commune.map(|c| c.district.clone()).unwrap_or_default(),
        province: commune.map(|c| c.province.clone()).unwrap_or_default(),
        children_count: commune.map_or(0, |c| c.children_count),
        ..Default::default()
    };
    for need in model
        .needs
        .values_any_order()
        .filter(|n| n.commune_code == code && !n.withdrawn && year_matches(year, n.year))
    {
        summary.needed_value_vnd = summary
            .needed_value_vnd
            .saturating_add(model.value_vnd(&need.asset_id, need.quantity));
        summary.children_targeted = summary
            .children_targeted
            .saturating_add(need.children_targeted);
    }
    for (_, cell) in commune_cells(model, code, year) {
        summary.delivered_value_vnd = summary
            .delivered_value_vnd
            .saturating_add(model.value_of(&cell.delivered));
        summary.children_reached = summary
            .children_reached
            .saturating_add(u32::try_from(cell.children_reached).unwrap_or(u32::MAX));
        summary.deliveries = summary
            .deliveries
            .saturating_add(u32::try_from(cell.deliveries).unwrap_or(u32::MAX));
    }
    summary
}

/// Every commune, summed over `year` (`None`: all years).
pub fn communes(model: &Model, year: Option<u32>, page: &PageRequest) -> Communes {
    Communes {
        as_of: as_of(model),
        page: paginate(
            model.communes.iter_any_order(),
            |(code, _)| (*code).clone(),
            page,
            |(code, _)| commune_summary(model, code, year),
        ),
    }
}

pub fn delivery_view(model: &Model, id: &str, d: &DeliveryRecord) -> DeliveryView {
    DeliveryView {
        delivery_id: id.to_owned(),
        event_id: d.event_id.to_string(),
        seq: d.seq,
        org_id: d.org_id.to_string(),
        commune_code: d.commune_code.to_string(),
        category: d.category,
        amount: amount(model, &d.asset_id, d.quantity),
        earmark: d.earmark.clone(),
        children_reached: d.children_reached,
        period: d.period.to_string(),
        note: d.note.clone(),
        reversed: d.reversed,
        occurred_at: d.occurred_at,
        beneficiary_count: d.beneficiary_count,
        evidence_count: d.evidence_count,
    }
}

/// A commune's needs, deliveries, funds and donors in `year` (`None`: all
/// years).
pub fn commune(model: &Model, code: &str, year: Option<u32>) -> QueryResult<CommuneView> {
    if !model.communes.contains(code) {
        return Err(QueryError::NotFound(format!(
            "commune {code:?} is not registered"
        )));
    }
    #[derive(Default)]
    struct Progress {
        needed: BTreeMap<String, u64>,
        delivered: BTreeMap<String, u64>,
        targeted: u32,
        reached: u32,
    }
    let mut categories: BTreeMap<Category, Progress> = BTreeMap::new();
    let mut needs: Vec<(&String, &crate::model::Need)> = model
        .needs
        .iter_any_order()
        .filter(|(_, n)| n.commune_code == code && !n.withdrawn && year_matches(year, n.year))
        .collect();
    needs.sort_by_key(|(_, n)| n.seq);
    for (_, need) in &needs {
        let progress = categories.entry(need.category).or_default();
        add(&mut progress.needed, &need.asset_id, need.quantity);
        progress.targeted = progress.targeted.saturating_add(need.children_targeted);
    }
    // Delivered value per (category, year), to cover needs in log order.
    let mut delivered_value: BTreeMap<(Category, u32), u64> = BTreeMap::new();
    for ((cell_year, category), cell) in commune_cells(model, code, year) {
        let progress = categories.entry(*category).or_default();
        for (asset_id, quantity) in &cell.delivered {
            add(&mut progress.delivered, asset_id, saturated(*quantity));
        }
        progress.reached = progress
            .reached
            .saturating_add(u32::try_from(cell.children_reached).unwrap_or(u32::MAX));
        let slot = delivered_value.entry((*category, *cell_year)).or_default();
        *slot = slot.saturating_add(model.value_of(&cell.delivered));
    }
    let mut donors: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, by_donor) in model
        .aggregates
        .commune_donors
        .get(code)
        .into_iter()
        .flatten()
        .filter(|(donor_year, _)| year_matches(year, **donor_year))
    {
        for (donor, units) in by_donor {
            let slot = donors.entry(donor.as_str()).or_default();
            *slot = slot.saturating_add(model.value_of(units));
        }
    }
    let categories = categories
        .into_iter()
        .map(|(category, p)| CategoryProgress {
            category,
            needed_value_vnd: p
                .needed
                .iter()
                .map(|(a, q)| model.value_vnd(a, *q))
                .fold(0, u64::saturating_add),
            delivered_value_vnd: p
                .delivered
                .iter()
                .map(|(a, q)| model.value_vnd(a, *q))
                .fold(0, u64::saturating_add),
            needed: amounts(model, &p.needed),
            delivered: amounts(model, &p.delivered),
            children_targeted: p.targeted,
            children_reached: p.reached,
        })
        .collect();

    let need_views: Vec<NeedView> = needs
        .iter()
        .map(|(id, need)| {
            let value = model.value_vnd(&need.asset_id, need.quantity);
            let available = delivered_value
                .entry((need.category, need.year))
                .or_default();
            let covered = value.min(*available);
            *available -= covered;
            NeedView {
                need_id: (*id).clone(),
                event_id: need.event_id.to_string(),
                seq: need.seq,
                category: need.category,
                year: need.year,
                amount: amount(model, &need.asset_id, need.quantity),
                children_targeted: need.children_targeted,
                description: need.description.clone(),
                uncovered_value_vnd: value - covered,
            }
        })
        .collect();
    let uncovered_needs = need_views
        .iter()
        .filter(|n| n.uncovered_value_vnd > 0)
        .cloned()
        .collect();

    let mut held = BTreeMap::new();
    for (key, pool) in model.pools.iter_any_order() {
        if key.earmark.commune_code.as_deref() == Some(code) {
            add(&mut held, &key.asset_id, pool.balance);
        }
    }
    let mut in_transit = BTreeMap::new();
    for (asset_id, quantity) in model
        .aggregates
        .in_transit_by_commune
        .get(code)
        .into_iter()
        .flatten()
    {
        add(&mut in_transit, asset_id, saturated(*quantity));
    }
    let mut donors: Vec<Contributor> = donors
        .into_iter()
        .map(|(org_id, value_vnd)| {
            let (name, anonymous) = shown_name(model, org_id);
            Contributor {
                org_id: org_id.to_owned(),
                name,
                anonymous,
                value_vnd,
            }
        })
        .collect();
    donors.sort_by(|a, b| b.value_vnd.cmp(&a.value_vnd).then(a.org_id.cmp(&b.org_id)));
    let recent_deliveries = commune_deliveries_newest_first(model, code, year)
        .take(RECENT_DELIVERIES)
        .map(|(id, d)| delivery_view(model, id, d))
        .collect();
    Ok(CommuneView {
        as_of: as_of(model),
        summary: commune_summary(model, code, year),
        categories,
        funds_held: amounts(model, &held),
        funds_in_transit: amounts(model, &in_transit),
        donors,
        uncovered_needs,
        needs: need_views,
        recent_deliveries,
    })
}

pub fn deliveries(model: &Model, query: &DeliveriesQuery) -> Deliveries {
    let before = before_cursor(&query.page);
    let rows = model
        .deliveries
        .in_order_from(|d| before(d.seq))
        .filter(|(_, d)| matches(query.commune_code.as_ref(), &d.commune_code))
        .filter(|(_, d)| matches(query.org_id.as_ref(), &d.org_id))
        .filter(|(_, d)| year_matches(query.year, d.year()));
    Deliveries {
        as_of: as_of(model),
        page: page_in_log_order(
            rows,
            |(_, d)| d.seq,
            &query.page,
            |(id, d)| delivery_view(model, id, d),
        ),
    }
}

/// The annual plan in force for `year` against what was delivered.
pub fn plan_progress(model: &Model, year: u32, page: &PageRequest) -> PlanProgress {
    let plan = model
        .plans
        .iter_any_order()
        .filter(|(_, p)| p.year == year && !p.withdrawn)
        .max_by_key(|(_, p)| p.seq);
    let Some((event_id, plan)) = plan else {
        return PlanProgress {
            as_of: as_of(model),
            year,
            plan_event_id: None,
            page: Page {
                rows: Vec::new(),
                next: None,
            },
        };
    };
    // From the fold's commune totals, which do not grow with the log:
    // per (category, asset, commune), and per (category, asset) for
    // province-wide targets.
    let mut by_commune: BTreeMap<(Category, &str, &str), (u64, u32)> = BTreeMap::new();
    let mut by_province: BTreeMap<(Category, &str), (u64, u32)> = BTreeMap::new();
    for (commune, cells) in &model.aggregates.communes {
        for ((_, category), cell) in cells
            .range((plan.year, Category::ALL[0])..)
            .take_while(|((cell_year, _), _)| *cell_year == plan.year)
        {
            for (asset, units) in &cell.delivered {
                let delivered = u64::try_from(*units).unwrap_or(u64::MAX);
                let reached = cell
                    .children_by_asset
                    .get(asset)
                    .map_or(0, |n| u32::try_from(*n).unwrap_or(u32::MAX));
                for slot in [
                    by_commune
                        .entry((*category, asset.as_str(), commune.as_str()))
                        .or_default(),
                    by_province.entry((*category, asset.as_str())).or_default(),
                ] {
                    slot.0 = slot.0.saturating_add(delivered);
                    slot.1 = slot.1.saturating_add(reached);
                }
            }
        }
    }
    // A plan's targets are fixed once published: their place in it is
    // their key.
    let page = paginate(
        plan.targets.iter().enumerate(),
        |(index, _)| key_number(*index as u64),
        page,
        |(_, target)| {
            let asset = target.asset_id.as_str();
            let (delivered, reached) = match target.commune_code.as_deref() {
                Some(commune) => by_commune.get(&(target.category, asset, commune)),
                None => by_province.get(&(target.category, asset)),
            }
            .copied()
            .unwrap_or_default();
            PlanRow {
                category: target.category,
                commune_code: target.commune_code.clone(),
                asset_id: target.asset_id.clone(),
                target_quantity: target.quantity,
                delivered_quantity: delivered,
                children_targeted: target.children_targeted,
                children_reached: reached,
                progress_bp: basis_points(delivered, target.quantity),
            }
        },
    );
    PlanProgress {
        as_of: as_of(model),
        year,
        plan_event_id: Some(event_id.clone()),
        page,
    }
}

/// A short label of a beneficiary token: enough to group findings, not to
/// recover the token.
fn beneficiary_label(token: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(token)[..4])
}

/// What one overlap finding is about, found from the aggregates without
/// reading its events.
enum OverlapScope<'m> {
    /// One beneficiary token, year and category, from the fold's flagged
    /// groups.
    Beneficiary {
        year: u32,
        tag: FindingTag,
        token: [u8; 32],
        category: Category,
    },
    /// Deliveries to a commune, category and year against its needs.
    Need {
        commune: &'m str,
        category: Category,
        year: u32,
    },
    /// Deliveries to a commune, category and month.
    Month {
        commune: &'m str,
        category: Category,
        period: &'m str,
        scope: &'m MonthScope,
    },
}

impl OverlapScope<'_> {
    /// The finding id, also the list's sort key: kinds in their order, then
    /// fixed-width fields, so comparing ids compares scopes field by field
    /// (the flagged beneficiary groups are read in this order straight from
    /// their set).
    fn finding_id(&self) -> String {
        match self {
            OverlapScope::Beneficiary {
                year,
                tag,
                category,
                ..
            } => beneficiary_finding_id((*year, *tag, *category)),
            OverlapScope::Need {
                commune,
                category,
                year,
            } => format!("2,{year:010},{commune},{:02}", *category as u8),
            OverlapScope::Month {
                commune,
                category,
                period,
                scope: _,
            } => format!(
                "3,{:010},{commune},{:02},{period}",
                period_year(period),
                *category as u8
            ),
        }
    }
}

fn period_year(period: &str) -> u32 {
    period.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0)
}

fn category_of_key(field: &str) -> Option<Category> {
    let index: usize = field.parse().ok()?;
    Category::ALL.iter().copied().find(|c| *c as usize == index)
}

/// The (year, tag, category) of a beneficiary finding's id, written as the
/// service writes it.
fn beneficiary_group(finding_id: &str) -> Option<(u32, FindingTag, Category)> {
    let group = match finding_id.split(',').collect::<Vec<_>>().as_slice() {
        ["1", year, tag, category] => (
            year.parse().ok()?,
            hex::decode(tag).ok()?.try_into().ok()?,
            category_of_key(category)?,
        ),
        _ => return None,
    };
    (beneficiary_finding_id(group) == finding_id).then_some(group)
}

fn beneficiary_finding_id((year, tag, category): (u32, FindingTag, Category)) -> String {
    format!("1,{year:010},{},{:02}", hex::encode(tag), category as u8)
}

/// The (year, commune, category, period) of a month finding's id,
/// written as the service writes it.
fn month_group(finding_id: &str) -> Option<MonthKey> {
    let group = match finding_id.split(',').collect::<Vec<_>>().as_slice() {
        ["3", year, commune, category, period] => (
            year.parse().ok()?,
            Id::from(*commune),
            category_of_key(category)?,
            Id::from(*period),
        ),
        _ => return None,
    };
    let id = format!(
        "3,{:010},{},{:02},{}",
        group.0, group.1, group.2 as u8, group.3
    );
    (id == finding_id).then_some(group)
}

/// The scope a finding id names, if the model has one.
fn overlap_scope<'m>(model: &'m Model, finding_id: &str) -> QueryResult<Option<OverlapScope<'m>>> {
    let invalid =
        || QueryError::InvalidArgument(format!("{finding_id:?} is not an overlap finding id"));
    let fields: Vec<&str> = finding_id.split(',').collect();
    let year: u32 = fields
        .get(1)
        .filter(|y| y.len() == 10)
        .and_then(|y| y.parse().ok())
        .ok_or_else(invalid)?;
    let scope = match fields.as_slice() {
        ["1", ..] => {
            let (year, tag, category) = beneficiary_group(finding_id).ok_or_else(invalid)?;
            // Only a flagged group's tag leads back to its token.
            model
                .aggregates
                .overlapping
                .get(&(year, tag, category))
                .map(|token| OverlapScope::Beneficiary {
                    year,
                    tag,
                    token: *token,
                    category,
                })
        }
        ["2", _, commune, category] => {
            let category = category_of_key(category).ok_or_else(invalid)?;
            model
                .communes
                .get_key_value(*commune)
                .map(|(commune, _)| OverlapScope::Need {
                    commune: commune.as_str(),
                    category,
                    year,
                })
        }
        ["3", _, commune, category, period] => {
            let category = category_of_key(category).ok_or_else(invalid)?;
            if period_year(period) != year {
                return Err(invalid());
            }
            model
                .aggregates
                .months
                .get_key_value(*commune)
                .and_then(|(commune, periods)| {
                    let (period, categories) = periods.get_key_value(*period)?;
                    Some(OverlapScope::Month {
                        commune: commune.as_str(),
                        category,
                        period: period.as_str(),
                        scope: categories.get(&category)?,
                    })
                })
        }
        _ => return Err(invalid()),
    };
    // One spelling per finding: the one the service gives out.
    if scope
        .as_ref()
        .is_some_and(|scope| scope.finding_id() != finding_id)
    {
        return Err(invalid());
    }
    Ok(scope)
}

/// Up to `limit` live deliveries among `seqs` (log order) after seq
/// `after`.
fn live_deliveries<'m>(
    model: &'m Model,
    seqs: &[u64],
    after: Option<u64>,
    limit: usize,
) -> impl Iterator<Item = &'m DeliveryRecord> {
    let start = after.map_or(0, |after| seqs.partition_point(|seq| *seq <= after));
    seqs[start..]
        .iter()
        .filter_map(|seq| model.delivery_at(*seq))
        .map(|(_, d)| d)
        .filter(|d| !d.reversed)
        .take(limit)
}

fn delivery_event(d: &DeliveryRecord) -> OverlapEvent {
    OverlapEvent {
        seq: d.seq,
        event_id: d.event_id.to_string(),
        org_id: Some(d.org_id.to_string()),
    }
}

/// The live needs of a commune, category and year.
fn needs_of<'m>(
    model: &'m Model,
    commune: &'m str,
    category: Category,
    year: u32,
) -> impl Iterator<Item = &'m crate::model::Need> {
    model.needs.values_any_order().filter(move |n| {
        !n.withdrawn && n.commune_code == commune && n.category == category && n.year == year
    })
}

/// The month scopes of a commune, category and year.
fn months_of<'m>(
    model: &'m Model,
    commune: &str,
    category: Category,
    year: u32,
) -> impl Iterator<Item = &'m MonthScope> {
    let year_prefix = format!("{year:04}-");
    model
        .aggregates
        .months
        .get(commune)
        .into_iter()
        .flat_map(move |periods| {
            let year_prefix = year_prefix.clone();
            periods
                .iter()
                .filter(move |(period, _)| period.starts_with(&year_prefix))
                .filter_map(move |(_, categories)| categories.get(&category))
        })
}

/// The fold's group of live deliveries to `token` in `year` and `category`.
fn token_group<'m>(
    model: &'m Model,
    token: &[u8; 32],
    year: u32,
    category: Category,
) -> Option<&'m TokenGroup> {
    model.aggregates.tokens.get(&(*token, year, category))
}

/// The events behind `scope` after seq `after`, at most `limit` of them in
/// log order, and how many there are in all. Reads from the cursor up to
/// what it returns (a child's list only between the group's first and last
/// deliveries, and a need scope's needs), not the whole scope.
fn scope_events(
    model: &Model,
    scope: &OverlapScope,
    after: Option<u64>,
    limit: usize,
) -> (Vec<OverlapEvent>, u64) {
    let after_seq = |seq: u64| after.is_none_or(|after| seq > after);
    match scope {
        OverlapScope::Beneficiary {
            year,
            token,
            category,
            ..
        } => {
            // A child's list grows with the log, every year and category in
            // it: read only the stretch between the group's first and last
            // deliveries, from the cursor by bisection, up to the page.
            let Some(group) = token_group(model, token, *year, *category) else {
                return (Vec::new(), 0);
            };
            let from = after.map_or(group.first_seq, |after| {
                group.first_seq.max(after.saturating_add(1))
            });
            let events = model
                .deliveries_by_token
                .get(token)
                .into_iter()
                .flat_map(|seqs| seqs.range(seqs.partition_point(|seq| *seq < from)..))
                .take_while(|seq| **seq <= group.last_seq)
                .filter_map(|seq| model.delivery_at(*seq))
                .map(|(_, d)| d)
                .filter(|d| !d.reversed && d.year() == *year && d.category == *category)
                .take(limit)
                .map(delivery_event)
                .collect();
            (events, group.live)
        }
        OverlapScope::Month { scope, .. } => (
            live_deliveries(model, &scope.seqs, after, limit)
                .map(delivery_event)
                .collect(),
            scope.live,
        ),
        OverlapScope::Need {
            commune,
            category,
            year,
        } => {
            let mut total = 0;
            let mut events: Vec<OverlapEvent> = Vec::new();
            for need in needs_of(model, commune, *category, *year) {
                total += 1;
                if after_seq(need.seq) {
                    events.push(OverlapEvent {
                        seq: need.seq,
                        event_id: need.event_id.to_string(),
                        org_id: None,
                    });
                }
            }
            for month in months_of(model, commune, *category, *year) {
                total += month.live;
                events
                    .extend(live_deliveries(model, &month.seqs, after, limit).map(delivery_event));
            }
            events.sort_unstable_by_key(|e| e.seq);
            events.truncate(limit);
            (events, total)
        }
    }
}

/// The finding `scope` makes, with its first events.
fn overlap_finding(
    model: &Model,
    scope: &OverlapScope,
    needed_value_vnd: u64,
    delivered_value_vnd: u64,
) -> OverlapFinding {
    let (events, events_total) = scope_events(model, scope, None, FINDING_EVENTS_SHOWN);
    let (kind, commune_code, category, year, period, org_ids, beneficiary_label) = match scope {
        OverlapScope::Beneficiary {
            year,
            token,
            category,
            ..
        } => {
            let orgs = token_group(model, token, *year, *category)
                .map(|g| g.orgs.iter().map(Id::to_string).collect())
                .unwrap_or_default();
            // The commune of the first delivery: a child is delivered to
            // where the child lives.
            let commune = events
                .first()
                .and_then(|e| model.delivery_at(e.seq))
                .map(|(_, d)| d.commune_code.to_string())
                .unwrap_or_default();
            (
                OverlapKind::SameBeneficiary,
                commune,
                *category,
                *year,
                None,
                orgs,
                Some(beneficiary_label(token)),
            )
        }
        OverlapScope::Need {
            commune,
            category,
            year,
        } => {
            let orgs: BTreeSet<&Id> = months_of(model, commune, *category, *year)
                .flat_map(|month| &month.orgs)
                .collect();
            (
                OverlapKind::ExceedsNeed,
                (*commune).to_owned(),
                *category,
                *year,
                None,
                orgs.into_iter().map(Id::to_string).collect(),
                None,
            )
        }
        OverlapScope::Month {
            commune,
            category,
            period,
            scope,
        } => (
            OverlapKind::SameMonth,
            (*commune).to_owned(),
            *category,
            period_year(period),
            Some((*period).to_owned()),
            scope.orgs.iter().map(Id::to_string).collect(),
            None,
        ),
    };
    OverlapFinding {
        finding_id: scope.finding_id(),
        kind,
        commune_code,
        category,
        year,
        period,
        org_ids,
        event_ids: events.iter().map(|e| e.event_id.clone()).collect(),
        seqs: events.iter().map(|e| e.seq).collect(),
        events_total,
        needed_value_vnd,
        delivered_value_vnd,
        beneficiary_label,
    }
}

/// Possible double funding, with `query.excess_percent` (or
/// `default_excess_percent`) tolerated over a need.
///
/// A page costs the findings it shows: the flagged beneficiary groups are
/// read in order from the fold's set, starting at the cursor; needs (a few
/// per commune and year) and month scopes are keyed and sorted without
/// reading their deliveries; only the findings of the page read events,
/// their first [`FINDING_EVENTS_SHOWN`].
pub fn overlaps(model: &Model, query: &OverlapsQuery, default_excess_percent: u32) -> Overlaps {
    let excess_percent = query.excess_percent.unwrap_or(default_excess_percent);
    let year = query.year;
    let size = page_size(&query.page);
    let after = query.page.after.as_ref().map(Cursor::token);
    let is_after = |id: &str| after.is_none_or(|after| id > after);
    // (id, scope, needed, delivered), in id order, one more than a page.
    let mut rows: Vec<(String, OverlapScope, u64, u64)> = Vec::new();

    // Same beneficiary, category and year from several organisations, read
    // from the flagged set in id order: from the cursor if it is among them
    // (every beneficiary id starts "1,", so a cursor from "2" on is past
    // them all), within the year asked.
    let past_beneficiaries = after.is_some_and(|after| after >= "2");
    let year_start = year.map(|year| (year, [0; 16], Category::ALL[0]));
    let start = match (after.and_then(beneficiary_group), year_start) {
        (Some(cursor), Some(year_start)) if cursor < year_start => Bound::Included(year_start),
        (Some(cursor), _) => Bound::Excluded(cursor),
        (None, Some(year_start)) => Bound::Included(year_start),
        (None, None) => Bound::Unbounded,
    };
    for ((group_year, tag, category), token) in model
        .aggregates
        .overlapping
        .range((start, Bound::Unbounded))
        .take_while(|((group_year, _, _), _)| {
            !past_beneficiaries && year_matches(year, *group_year)
        })
    {
        let scope = OverlapScope::Beneficiary {
            year: *group_year,
            tag: *tag,
            token: *token,
            category: *category,
        };
        let id = scope.finding_id();
        if is_after(&id) {
            rows.push((id, scope, 0, 0));
            if rows.len() > size {
                break;
            }
        }
    }

    if rows.len() <= size {
        let mut others: Vec<(String, OverlapScope, u64, u64)> = Vec::new();
        // Deliveries over the published need, per commune, category and
        // year: needs summed here, deliveries from the commune totals.
        let mut needed: BTreeMap<(&str, Category, u32), u64> = BTreeMap::new();
        for need in model
            .needs
            .values_any_order()
            .filter(|n| !n.withdrawn && year_matches(year, n.year))
        {
            let value = needed
                .entry((need.commune_code.as_str(), need.category, need.year))
                .or_default();
            *value = value.saturating_add(model.value_vnd(&need.asset_id, need.quantity));
        }
        for ((commune, category, need_year), needed_value) in needed {
            let delivered = model
                .aggregates
                .communes
                .get(commune)
                .and_then(|cells| cells.get(&(need_year, category)))
                .map_or(0, |cell| model.value_of(&cell.delivered));
            let allowed = u128::from(needed_value) * (100 + u128::from(excess_percent));
            if needed_value == 0 || u128::from(delivered) * 100 <= allowed {
                continue;
            }
            let scope = OverlapScope::Need {
                commune,
                category,
                year: need_year,
            };
            let id = scope.finding_id();
            if is_after(&id) {
                others.push((id, scope, needed_value, delivered));
            }
        }
        others.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        rows.extend(others.into_iter().take(size.saturating_add(1) - rows.len()));
    }

    // Same commune, category and month from several organisations, read
    // in id order from the fold's flagged scopes, from the cursor on.
    if rows.len() <= size {
        let start = match (after.and_then(month_group), year) {
            (Some(cursor), Some(year)) if cursor.0 < year => {
                Bound::Included((year, Id::default(), Category::ALL[0], Id::default()))
            }
            (Some(cursor), _) => Bound::Excluded(cursor),
            (None, Some(year)) => {
                Bound::Included((year, Id::default(), Category::ALL[0], Id::default()))
            }
            (None, None) => Bound::Unbounded,
        };
        let past_months = after.is_some_and(|after| after >= "4");
        for (month_year, commune, category, period) in model
            .aggregates
            .flagged_months
            .range((start, Bound::Unbounded))
            .take_while(|(month_year, ..)| !past_months && year_matches(year, *month_year))
        {
            let Some((commune, scope)) = model
                .aggregates
                .months
                .get_key_value(commune.as_str())
                .and_then(|(commune, periods)| {
                    let scope = periods.get(period.as_str())?.get(category)?;
                    Some((commune.as_str(), scope))
                })
            else {
                continue;
            };
            let scope = OverlapScope::Month {
                commune,
                category: *category,
                period,
                scope,
            };
            let id = scope.finding_id();
            debug_assert_eq!(period_year(period), *month_year);
            if is_after(&id) {
                rows.push((id, scope, 0, 0));
                if rows.len() > size {
                    break;
                }
            }
        }
    }

    let more = rows.len() > size;
    rows.truncate(size);
    let next = more.then(|| Cursor(rows.last().map(|(id, ..)| id.clone()).unwrap_or_default()));
    let rows = rows
        .into_iter()
        .map(|(_, scope, needed, delivered)| overlap_finding(model, &scope, needed, delivered))
        .collect();
    Overlaps {
        as_of: as_of(model),
        page: Page { rows, next },
        excess_percent,
    }
}

/// Every event behind one finding, by seq: what a finding in the list
/// shows only the first of.
///
/// # Errors
///
/// `InvalidArgument` for a malformed finding id or cursor, `NotFound` when
/// the model holds no such scope.
pub fn overlap_events(model: &Model, query: &OverlapEventsQuery) -> QueryResult<OverlapEvents> {
    let scope = overlap_scope(model, &query.finding_id)?.ok_or_else(|| {
        QueryError::NotFound(format!("no overlap finding {:?}", query.finding_id))
    })?;
    let after = match &query.page.after {
        None => None,
        Some(cursor) => Some(cursor.token().parse::<u64>().map_err(|_| {
            QueryError::InvalidArgument(format!(
                "{:?} is not a page token of this list",
                cursor.token()
            ))
        })?),
    };
    let size = page_size(&query.page);
    let (mut events, events_total) = scope_events(model, &scope, after, size.saturating_add(1));
    if events_total == 0 {
        return Err(QueryError::NotFound(format!(
            "no overlap finding {:?}",
            query.finding_id
        )));
    }
    let more = events.len() > size;
    events.truncate(size);
    let next = more.then(|| Cursor(events.last().map(|e| e.seq.to_string()).unwrap_or_default()));
    Ok(OverlapEvents {
        as_of: as_of(model),
        finding_id: query.finding_id.clone(),
        events_total,
        page: Page { rows: events, next },
    })
}

/// Donors by what they gave in `year` (`None`: all years), with the
/// commendations they received.
pub fn recognition(model: &Model, year: Option<u32>, page: &PageRequest) -> Recognition {
    #[derive(Default)]
    struct Totals {
        cash_vnd: u64,
        in_kind_value_vnd: u64,
        total_value_vnd: u64,
        receipts: u32,
        delivered_value_vnd: u64,
    }
    let mut rows: BTreeMap<&str, Totals> = BTreeMap::new();
    for (donor, years) in &model.aggregates.donors {
        for given in years
            .iter()
            .filter(|(given_year, _)| year_matches(year, **given_year))
            .map(|(_, given)| given)
            .filter(|given| given.receipts > 0)
        {
            let row = rows.entry(donor.as_str()).or_default();
            for (asset_id, quantity) in &given.received {
                let value = model.value_vnd(asset_id, saturated(*quantity));
                if model
                    .assets
                    .get(asset_id.as_str())
                    .is_some_and(|a| a.in_kind)
                {
                    row.in_kind_value_vnd = row.in_kind_value_vnd.saturating_add(value);
                } else {
                    row.cash_vnd = row.cash_vnd.saturating_add(value);
                }
                row.total_value_vnd = row.total_value_vnd.saturating_add(value);
            }
            row.receipts = row
                .receipts
                .saturating_add(u32::try_from(given.receipts).unwrap_or(u32::MAX));
            row.delivered_value_vnd = row
                .delivered_value_vnd
                .saturating_add(model.value_of(&given.delivered));
        }
    }
    let mut commendations: BTreeMap<&str, Vec<(u64, Commended)>> = BTreeMap::new();
    for (event_id, c) in model.commendations.iter_any_order() {
        if !c.withdrawn && year_matches(year, c.year) {
            commendations
                .entry(c.honoree_org_id.as_str())
                .or_default()
                .push((
                    c.seq,
                    Commended {
                        event_id: event_id.clone(),
                        year: c.year,
                        decision_ref: c.decision_ref.clone(),
                        reason: c.reason.clone(),
                    },
                ));
        }
    }
    // Honoured organisations with no receipt in the year are recognised too.
    for org_id in commendations.keys() {
        rows.entry(org_id).or_default();
    }
    let mut rows: Vec<RecognitionRow> = rows
        .into_iter()
        .map(|(org_id, totals)| {
            let (name, anonymous) = shown_name(model, org_id);
            let mut commended = commendations.remove(org_id).unwrap_or_default();
            commended.sort_by_key(|(seq, _)| *seq);
            RecognitionRow {
                rank: 0,
                org_id: org_id.to_owned(),
                name,
                anonymous,
                kind: model.orgs.get(org_id).map(|o| o.kind),
                cash_vnd: totals.cash_vnd,
                in_kind_value_vnd: totals.in_kind_value_vnd,
                total_value_vnd: totals.total_value_vnd,
                delivered_value_vnd: totals.delivered_value_vnd,
                delivered_share_bp: basis_points(
                    totals.delivered_value_vnd,
                    totals.total_value_vnd,
                ),
                receipts: totals.receipts,
                commendations: commended.into_iter().map(|(_, c)| c).collect(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.total_value_vnd
            .cmp(&a.total_value_vnd)
            .then(a.org_id.cmp(&b.org_id))
    });
    // Competition ranking: equal totals share a rank.
    let mut previous: Option<(u64, u32)> = None;
    for (index, row) in rows.iter_mut().enumerate() {
        let rank = match previous {
            Some((total, rank)) if total == row.total_value_vnd => rank,
            _ => index as u32 + 1,
        };
        row.rank = rank;
        previous = Some((row.total_value_vnd, rank));
    }
    // Largest total first: the key counts down from the top.
    let page = paginate(
        rows,
        |row| {
            format!(
                "{},{}",
                key_number(u64::MAX - row.total_value_vnd),
                row.org_id
            )
        },
        page,
        |row| row,
    );
    Recognition {
        as_of: as_of(model),
        year,
        page,
    }
}

/// Receipts in log order, each with its inspections.
pub fn receipts(model: &Model, query: &ReceiptsQuery) -> Receipts {
    // Inspections grouped once, not searched once per receipt.
    let mut inspections: HashMap<&str, Vec<InspectionView>> = HashMap::new();
    for (event_id, i) in model.inspections.iter_any_order() {
        if !i.withdrawn {
            inspections
                .entry(i.subject_id.as_str())
                .or_default()
                .push(inspection_view(event_id, i));
        }
    }
    // A donor's receipts come from its own list, not a scan of everyone's;
    // both are in log order.
    let before = before_cursor(&query.page);
    let rows: Box<dyn Iterator<Item = (&Id, &ReceiptRecord)>> = match &query.donor_org_id {
        Some(donor) => {
            let positions = model
                .aggregates
                .receipts_by_donor
                .get(donor.as_str())
                .map_or(&[][..], Vec::as_slice);
            let receipt_at = |position: u32| model.receipts.at(position as usize);
            let start = positions.partition_point(|&position| before(receipt_at(position).1.seq));
            Box::new(
                positions[start..]
                    .iter()
                    .map(move |&position| receipt_at(position)),
            )
        }
        None => Box::new(model.receipts.in_order_from(|r| before(r.seq))),
    };
    let rows = rows.filter(|(_, r)| matches(query.recipient_org_id.as_ref(), &r.recipient_org_id));
    Receipts {
        as_of: as_of(model),
        page: page_in_log_order(
            rows,
            |(_, r)| r.seq,
            &query.page,
            |(id, r)| {
                let found = inspections.remove(id.as_str()).unwrap_or_default();
                receipt_view_with(model, id, r, found)
            },
        ),
    }
}

fn inspection_view(event_id: &str, i: &Inspection) -> InspectionView {
    InspectionView {
        event_id: event_id.to_owned(),
        seq: i.seq,
        org_id: i.org_id.clone(),
        passed: i.passed,
        standard: i.standard.clone(),
    }
}

fn receipt_view(model: &Model, id: &str, r: &ReceiptRecord) -> ReceiptView {
    let inspections: Vec<InspectionView> = model
        .inspections
        .iter_any_order()
        .filter(|(_, i)| i.subject_id == id && !i.withdrawn)
        .map(|(event_id, i)| inspection_view(event_id, i))
        .collect();
    receipt_view_with(model, id, r, inspections)
}

fn receipt_view_with(
    model: &Model,
    id: &str,
    r: &ReceiptRecord,
    mut inspections: Vec<InspectionView>,
) -> ReceiptView {
    let (donor_name, donor_anonymous) = shown_name(model, &r.donor_org_id);
    inspections.sort_by_key(|i| i.seq);
    ReceiptView {
        receipt_id: id.to_owned(),
        event_id: r.event_id.to_string(),
        seq: r.seq,
        recipient_org_id: r.recipient_org_id.to_string(),
        donor_org_id: r.donor_org_id.to_string(),
        donor_name,
        donor_anonymous,
        pledge_id: r.pledge_id.clone(),
        amount: amount(model, &r.asset_id, r.quantity),
        earmark: r.earmark.clone(),
        reversed: r.reversed,
        occurred_at: r.occurred_at,
        note: r.note.clone(),
        inspections,
    }
}

/// Where a receipt's units went: transfers, deliveries, what is held.
pub fn trace_receipt(model: &Model, key: &ReceiptKey) -> QueryResult<ReceiptTrace> {
    let receipt_id = match key {
        ReceiptKey::Id(id) => Id::from(id.as_str()),
        ReceiptKey::RefHash(hash) => {
            let receipts = model.receipts_by_ref.get(&model.receipts, hash);
            // A reference corrected by reversal and re-entry leads to the
            // latest receipt still standing (else the latest one).
            let (id, _) = receipts
                .iter()
                .rev()
                .find(|(_, receipt)| !receipt.reversed)
                .or(receipts.last())
                .ok_or_else(|| {
                    QueryError::NotFound("no receipt carries that reference hash".into())
                })?;
            (*id).clone()
        }
    };
    let receipt = model
        .receipts
        .get(receipt_id.as_str())
        .ok_or_else(|| QueryError::NotFound(format!("receipt {receipt_id:?} does not exist")))?;
    let mut trace = ReceiptTrace {
        as_of: as_of(model),
        receipt: receipt_view(model, &receipt_id, receipt),
        flows: Vec::new(),
        delivered: 0,
        in_transit: 0,
        lost: 0,
        held: 0,
        withdrawn: 0,
        held_by: Vec::new(),
    };
    for flow in model.flows.get(receipt_id.as_str()).into_iter().flatten() {
        let mut view = Flow {
            kind: flow.kind,
            id: flow.id.to_string(),
            event_id: String::new(),
            seq: 0,
            from_org_id: String::new(),
            to: String::new(),
            quantity: flow.quantity,
            arrived: 0,
            in_transit: false,
            reversed: false,
            category: None,
            period: None,
            hop: flow.hop,
        };
        match flow.kind {
            FlowKind::Transfer => {
                let Some(t) = model.transfers.get(flow.id.as_str()) else {
                    continue;
                };
                view.event_id = t.event_id.to_string();
                view.seq = t.seq;
                view.from_org_id = t.from_org_id.to_string();
                view.to = t.to_org_id.to_string();
                view.reversed = t.reversed;
                view.in_transit = t.received.is_none() && !t.reversed;
                if t.received.is_some() {
                    view.arrived = t.arrived_of_part(flow.part as usize);
                    trace.lost += flow.quantity - view.arrived;
                }
                if view.in_transit {
                    trace.in_transit += flow.quantity;
                }
            }
            FlowKind::Delivery => {
                let Some(d) = model.deliveries.get(flow.id.as_str()) else {
                    continue;
                };
                view.event_id = d.event_id.to_string();
                view.seq = d.seq;
                view.from_org_id = d.org_id.to_string();
                view.to = d.commune_code.to_string();
                view.reversed = d.reversed;
                view.category = Some(d.category);
                view.period = Some(d.period.to_string());
                if !d.reversed {
                    trace.delivered += flow.quantity;
                }
            }
            FlowKind::Withdrawn => {
                let reversed = model.receipts.get(flow.id.as_str());
                view.event_id = reversed.map(|r| r.event_id.to_string()).unwrap_or_default();
                view.seq = reversed.map_or(0, |r| r.seq);
                view.from_org_id = reversed
                    .map(|r| r.recipient_org_id.to_string())
                    .unwrap_or_default();
                view.to = flow.id.to_string();
                trace.withdrawn += flow.quantity;
            }
        }
        trace.flows.push(view);
    }
    for (key, _) in model.pools.sorted() {
        let held: u64 = model
            .lots
            .get(key)
            .into_iter()
            .flatten()
            .filter(|lot| lot.receipt_id == receipt_id)
            .map(|lot| lot.quantity)
            .sum();
        if held > 0 {
            trace.held += held;
            trace.held_by.push(Balance {
                org_id: key.org_id.to_string(),
                asset_id: key.asset_id.to_string(),
                earmark: key.earmark.clone(),
                held,
                held_value_vnd: model.value_vnd(&key.asset_id, held),
            });
        }
    }
    if receipt.reversed {
        // What the reversal removed: everything not already gone elsewhere
        // (including units withdrawn earlier by other reversals).
        trace.withdrawn += receipt.quantity.saturating_sub(
            trace.delivered + trace.in_transit + trace.lost + trace.held + trace.withdrawn,
        );
    }
    Ok(trace)
}

/// Which receipts funded a delivery.
pub fn trace_delivery(model: &Model, id: &str) -> QueryResult<DeliveryTrace> {
    let delivery = model
        .deliveries
        .get(id)
        .ok_or_else(|| QueryError::NotFound(format!("delivery {id:?} does not exist")))?;
    // Parts of the same receipt are merged, in the order first taken.
    let mut funded: Vec<(String, u64)> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for lot in &delivery.funding {
        match index.get(lot.receipt_id.as_str()) {
            Some(&at) => funded[at].1 += lot.quantity,
            None => {
                index.insert(lot.receipt_id.as_str(), funded.len());
                funded.push((lot.receipt_id.to_string(), lot.quantity));
            }
        }
    }
    let funded_by = funded
        .into_iter()
        .filter_map(|(receipt_id, quantity)| {
            let receipt = model.receipts.get(receipt_id.as_str())?;
            Some(Funding {
                receipt: receipt_view(model, &receipt_id, receipt),
                quantity,
            })
        })
        .collect();
    Ok(DeliveryTrace {
        as_of: as_of(model),
        delivery: delivery_view(model, id, delivery),
        funded_by,
    })
}
