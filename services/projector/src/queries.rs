//! The answers of `aidledger.v1.Projections`, computed from the model.
//!
//! Each function reads the model (under the caller's read lock) and builds
//! the wire answer, stamped with the position the model reflects. Orders
//! are total (ties broken by id), so equal models give equal answers, page
//! by page.

use std::collections::{BTreeMap, BTreeSet};

use aidledger_ledger::{Category, Earmark, OrgKind};
use aidledger_wire::pb;
use sha2::{Digest, Sha256};

use crate::follower::FollowStatus;
use crate::model::{
    DeliveryRecord, FlowKind, Model, PledgeRecord, ReceiptRecord, TransferRecord, vn_date,
    vn_date_string,
};

/// Default page size.
pub const PAGE_SIZE_DEFAULT: usize = 100;
/// Largest page.
pub const PAGE_SIZE_MAX: usize = 1000;
/// Deliveries shown on a commune view; the rest through `ListDeliveries`.
pub const RECENT_DELIVERIES: usize = 20;

/// Why a query has no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
}

type QueryResult<T> = Result<T, QueryError>;

/// The position an answer reflects.
pub fn as_of(model: &Model) -> pb::AsOf {
    let position = &model.position;
    pb::AsOf {
        size: position.size,
        head_leaf_hash: position.head.to_vec(),
        recorded_at_seconds: position.recorded_at.seconds,
        checkpoint: position.checkpoint.as_ref().map(|c| pb::Checkpoint {
            note: c.note.clone(),
            size: c.size,
            root_hash: c.root.to_vec(),
        }),
    }
}

/// One page of `items`, mapped by `show` (only the page is mapped), and
/// the token of the next page (empty at the end).
///
/// A token is an offset into the answer's order: paging a set that changes
/// between calls can skip or repeat rows; `AsOf` says which log prefix each
/// page reflects.
fn paginate<T, U>(
    items: impl IntoIterator<Item = T>,
    page: Option<&pb::Page>,
    show: impl FnMut(T) -> U,
) -> QueryResult<(Vec<U>, String)> {
    let (size, token) = match page {
        Some(page) => (page.page_size as usize, page.page_token.as_str()),
        None => (0, ""),
    };
    let size = match size {
        0 => PAGE_SIZE_DEFAULT,
        n => n.min(PAGE_SIZE_MAX),
    };
    let offset: usize = if token.is_empty() {
        0
    } else {
        token.parse().map_err(|_| {
            QueryError::InvalidArgument(format!(
                "page_token {token:?} is not a token this service gave out"
            ))
        })?
    };
    let mut rest = items.into_iter().skip(offset);
    let page: Vec<U> = rest.by_ref().take(size).map(show).collect();
    let next = if rest.next().is_some() {
        (offset + page.len()).to_string()
    } else {
        String::new()
    };
    Ok((page, next))
}

/// A u128 total on the wire, saturated to u64.
fn wire(total: u128) -> u64 {
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// The wire value of a category.
pub fn category_pb(category: Category) -> i32 {
    category.to_pb()
}

/// The wire value of an organisation kind.
pub fn org_kind_pb(kind: OrgKind) -> i32 {
    kind.to_pb()
}

fn earmark_pb(earmark: &Earmark) -> pb::Earmark {
    pb::Earmark {
        commune_code: earmark.commune_code.clone().unwrap_or_default(),
        category: earmark.category.map_or(0, category_pb),
    }
}

fn amount(model: &Model, asset_id: &str, quantity: u64) -> pb::Amount {
    pb::Amount {
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

fn amounts(model: &Model, map: &BTreeMap<String, u64>) -> Vec<pb::Amount> {
    map.iter().map(|(a, q)| amount(model, a, *q)).collect()
}

fn year_matches(filter: u32, year: u32) -> bool {
    filter == 0 || filter == year
}

/// `quantity` of `total`, in basis points, capped at `u32::MAX`.
fn basis_points(part: u64, total: u64) -> u32 {
    if total == 0 {
        return 0;
    }
    let bp = u128::from(part) * 10_000 / u128::from(total);
    u32::try_from(bp).unwrap_or(u32::MAX)
}

/// Organisation name for public answers: empty and `true` when hidden.
fn shown_name(model: &Model, org_id: &str) -> (String, bool) {
    match model.public_name(org_id) {
        Some(name) => (name.to_owned(), false),
        None => (String::new(), model.orgs.contains(org_id)),
    }
}

pub fn status(model: &Model, follow: &FollowStatus) -> pb::ProjectionStatus {
    pb::ProjectionStatus {
        as_of: Some(as_of(model)),
        ledger_size: follow.ledger_size,
        origin: model.position.origin.clone(),
        halted_reason: follow.halted.clone().unwrap_or_default(),
    }
}

pub fn list_balances(
    model: &Model,
    request: &pb::ListBalancesRequest,
) -> QueryResult<pb::ListBalancesResponse> {
    let rows = model
        .pools
        .sorted()
        .into_iter()
        .filter(|(key, _)| request.org_id.is_empty() || key.org_id == request.org_id)
        .filter(|(key, _)| request.asset_id.is_empty() || key.asset_id == request.asset_id);
    let (balances, next_page_token) =
        paginate(rows, request.page.as_ref(), |(key, pool)| pb::Balance {
            org_id: key.org_id.clone(),
            asset_id: key.asset_id.clone(),
            earmark: Some(earmark_pb(&key.earmark)),
            held: pool.balance,
            held_value_vnd: model.value_vnd(&key.asset_id, pool.balance),
        })?;
    let mut response = pb::ListBalancesResponse {
        as_of: Some(as_of(model)),
        balances,
        next_page_token,
        ..Default::default()
    };
    for (asset_id, totals) in model.asset_totals.sorted() {
        let in_kind = model.assets.get(asset_id).is_some_and(|a| a.in_kind);
        let value = |q: u128| model.value_vnd(asset_id, wire(q));
        let total = pb::AssetTotal {
            asset_id: asset_id.clone(),
            in_kind,
            held: wire(totals.held),
            in_transit: wire(totals.in_transit),
            lost: wire(totals.lost),
            delivered: wire(totals.delivered),
            received_from_donors: wire(totals.received),
            held_value_vnd: value(totals.held),
            in_transit_value_vnd: value(totals.in_transit),
            lost_value_vnd: value(totals.lost),
            delivered_value_vnd: value(totals.delivered),
            received_value_vnd: value(totals.received),
        };
        response.held_value_vnd = response.held_value_vnd.saturating_add(total.held_value_vnd);
        response.in_transit_value_vnd = response
            .in_transit_value_vnd
            .saturating_add(total.in_transit_value_vnd);
        response.lost_value_vnd = response.lost_value_vnd.saturating_add(total.lost_value_vnd);
        response.totals.push(total);
    }
    Ok(response)
}

fn transfer_state(transfer: &TransferRecord) -> pb::TransferState {
    if transfer.reversed {
        pb::TransferState::Reversed
    } else if transfer.received.is_some() {
        pb::TransferState::Received
    } else {
        pb::TransferState::InTransit
    }
}

fn transfer_view(model: &Model, id: &str, transfer: &TransferRecord) -> pb::TransferView {
    pb::TransferView {
        transfer_id: id.to_owned(),
        event_id: transfer.event_id.clone(),
        seq: transfer.seq,
        from_org_id: transfer.from_org_id.clone(),
        to_org_id: transfer.to_org_id.clone(),
        asset_id: transfer.asset_id.clone(),
        earmark: Some(earmark_pb(&transfer.earmark)),
        quantity: transfer.quantity,
        received: transfer.received.unwrap_or(0),
        lost: transfer.lost(),
        state: transfer_state(transfer) as i32,
        occurred_at_seconds: transfer.occurred_at.seconds,
        value_vnd: model.value_vnd(&transfer.asset_id, transfer.quantity),
    }
}

pub fn list_transfers(
    model: &Model,
    request: &pb::ListTransfersRequest,
) -> QueryResult<pb::ListTransfersResponse> {
    let mut rows: Vec<(&String, &TransferRecord)> = model
        .transfers
        .iter_any_order()
        .filter(|(_, t)| {
            request.org_id.is_empty()
                || t.from_org_id == request.org_id
                || t.to_org_id == request.org_id
        })
        .filter(|(_, t)| request.state == 0 || transfer_state(t) as i32 == request.state)
        .collect();
    rows.sort_by_key(|(_, t)| t.seq);
    let (transfers, next_page_token) = paginate(rows, request.page.as_ref(), |(id, t)| {
        transfer_view(model, id, t)
    })?;
    Ok(pb::ListTransfersResponse {
        as_of: Some(as_of(model)),
        transfers,
        next_page_token,
    })
}

/// A pledge's status on the Vietnamese date of the latest entry.
pub fn pledge_status(pledge: &PledgeRecord, today: &str) -> pb::PledgeStatus {
    if pledge.cancelled {
        return pb::PledgeStatus::Cancelled;
    }
    if pledge.received >= pledge.quantity {
        return pb::PledgeStatus::Fulfilled;
    }
    if pledge.due_date.as_deref().is_some_and(|due| due < today) {
        return pb::PledgeStatus::Overdue;
    }
    if pledge.received > 0 {
        pb::PledgeStatus::PartlyReceived
    } else {
        pb::PledgeStatus::Open
    }
}

pub fn list_pledges(
    model: &Model,
    request: &pb::ListPledgesRequest,
) -> QueryResult<pb::ListPledgesResponse> {
    let today = vn_date_string(model.position.recorded_at.seconds);
    let mut by_donor: BTreeMap<&str, pb::PledgeSummary> = BTreeMap::new();
    let mut by_recipient: BTreeMap<&str, pb::PledgeSummary> = BTreeMap::new();
    for pledge in model.pledges.values_any_order().filter(|p| !p.cancelled) {
        let pledged = model.value_vnd(&pledge.asset_id, pledge.quantity);
        let received = model.value_vnd(&pledge.asset_id, pledge.received);
        for (map, org) in [
            (&mut by_donor, pledge.donor_org_id.as_str()),
            (&mut by_recipient, pledge.recipient_org_id.as_str()),
        ] {
            let summary = map.entry(org).or_insert_with(|| pb::PledgeSummary {
                org_id: org.to_owned(),
                ..Default::default()
            });
            summary.pledges += 1;
            summary.pledged_value_vnd = summary.pledged_value_vnd.saturating_add(pledged);
            summary.received_value_vnd = summary.received_value_vnd.saturating_add(received);
        }
    }
    let mut rows: Vec<(&String, &PledgeRecord)> = model
        .pledges
        .iter_any_order()
        .filter(|(_, p)| request.donor_org_id.is_empty() || p.donor_org_id == request.donor_org_id)
        .filter(|(_, p)| {
            request.recipient_org_id.is_empty() || p.recipient_org_id == request.recipient_org_id
        })
        .filter(|(_, p)| request.status == 0 || pledge_status(p, &today) as i32 == request.status)
        .collect();
    rows.sort_by_key(|(_, p)| p.seq);
    let (pledges, next_page_token) =
        paginate(rows, request.page.as_ref(), |(id, p)| pb::PledgeView {
            pledge_id: id.clone(),
            event_id: p.event_id.clone(),
            seq: p.seq,
            donor_org_id: p.donor_org_id.clone(),
            donor_name: shown_name(model, &p.donor_org_id).0,
            recipient_org_id: p.recipient_org_id.clone(),
            asset_id: p.asset_id.clone(),
            earmark: Some(earmark_pb(&p.earmark)),
            quantity: p.quantity,
            received: p.received,
            due_date: p.due_date.clone().unwrap_or_default(),
            status: pledge_status(p, &today) as i32,
            value_vnd: model.value_vnd(&p.asset_id, p.quantity),
        })?;
    Ok(pb::ListPledgesResponse {
        as_of: Some(as_of(model)),
        pledges,
        next_page_token,
        by_donor: by_donor.into_values().collect(),
        by_recipient: by_recipient.into_values().collect(),
    })
}

pub fn list_organizations(
    model: &Model,
    request: &pb::ListOrganizationsRequest,
) -> QueryResult<pb::ListOrganizationsResponse> {
    let rows = model
        .orgs
        .sorted()
        .into_iter()
        .filter(|(_, org)| request.kind == 0 || org_kind_pb(org.kind) == request.kind);
    let (organizations, next_page_token) = paginate(rows, request.page.as_ref(), |(id, org)| {
        let (name, anonymous) = shown_name(model, id);
        pb::OrganizationView {
            org_id: id.clone(),
            name,
            anonymous,
            kind: org_kind_pb(org.kind),
            parent_org_id: org.parent_org_id.clone().unwrap_or_default(),
            commune_code: org.commune_code.clone().unwrap_or_default(),
        }
    })?;
    Ok(pb::ListOrganizationsResponse {
        as_of: Some(as_of(model)),
        organizations,
        next_page_token,
    })
}

/// The live deliveries of a commune in a year (0: all), in log order.
fn commune_deliveries<'m>(
    model: &'m Model,
    commune_code: &str,
    year: u32,
) -> Vec<(&'m String, &'m DeliveryRecord)> {
    model
        .deliveries_by_commune
        .get(commune_code)
        .into_iter()
        .flatten()
        .filter_map(|id| model.deliveries.get_key_value(id))
        .filter(|(_, d)| !d.reversed && year_matches(year, d.year()))
        .collect()
}

fn commune_summary(model: &Model, code: &str, year: u32) -> pb::CommuneSummary {
    let commune = model.communes.get(code);
    let mut summary = pb::CommuneSummary {
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
    for (_, delivery) in commune_deliveries(model, code, year) {
        summary.delivered_value_vnd = summary
            .delivered_value_vnd
            .saturating_add(model.value_vnd(&delivery.asset_id, delivery.quantity));
        summary.children_reached = summary
            .children_reached
            .saturating_add(delivery.children_reached);
        summary.deliveries += 1;
    }
    summary
}

pub fn list_communes(
    model: &Model,
    request: &pb::ListCommunesRequest,
) -> QueryResult<pb::ListCommunesResponse> {
    let (communes, next_page_token) = paginate(
        model.communes.sorted(),
        request.page.as_ref(),
        |(code, _)| commune_summary(model, code, request.year),
    )?;
    Ok(pb::ListCommunesResponse {
        as_of: Some(as_of(model)),
        communes,
        next_page_token,
    })
}

pub fn delivery_view(model: &Model, id: &str, d: &DeliveryRecord) -> pb::DeliveryView {
    pb::DeliveryView {
        delivery_id: id.to_owned(),
        event_id: d.event_id.clone(),
        seq: d.seq,
        org_id: d.org_id.clone(),
        commune_code: d.commune_code.clone(),
        category: category_pb(d.category),
        amount: Some(amount(model, &d.asset_id, d.quantity)),
        earmark: Some(earmark_pb(&d.earmark)),
        children_reached: d.children_reached,
        period: d.period.clone(),
        note: d.note.clone(),
        reversed: d.reversed,
        occurred_at_seconds: d.occurred_at.seconds,
        beneficiary_count: d.beneficiary_count,
        evidence_count: d.evidence_count,
    }
}

pub fn get_commune(model: &Model, request: &pb::GetCommuneRequest) -> QueryResult<pb::CommuneView> {
    let code = request.commune_code.as_str();
    if !model.communes.contains(code) {
        return Err(QueryError::NotFound(format!(
            "commune {code:?} is not registered"
        )));
    }
    let year = request.year;
    let deliveries = commune_deliveries(model, code, year);

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
    let mut donors: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, delivery) in &deliveries {
        let progress = categories.entry(delivery.category).or_default();
        add(
            &mut progress.delivered,
            &delivery.asset_id,
            delivery.quantity,
        );
        progress.reached = progress.reached.saturating_add(delivery.children_reached);
        let value = model.value_vnd(&delivery.asset_id, delivery.quantity);
        let slot = delivered_value
            .entry((delivery.category, delivery.year()))
            .or_default();
        *slot = slot.saturating_add(value);
        for lot in &delivery.funding {
            if let Some(receipt) = model.receipts.get(lot.receipt_id.as_str()) {
                let slot = donors.entry(receipt.donor_org_id.as_str()).or_default();
                *slot = slot.saturating_add(model.value_vnd(&delivery.asset_id, lot.quantity));
            }
        }
    }
    let categories = categories
        .into_iter()
        .map(|(category, p)| pb::CategoryProgress {
            category: category_pb(category),
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

    let need_views: Vec<pb::NeedView> = needs
        .iter()
        .map(|(id, need)| {
            let value = model.value_vnd(&need.asset_id, need.quantity);
            let available = delivered_value
                .entry((need.category, need.year))
                .or_default();
            let covered = value.min(*available);
            *available -= covered;
            pb::NeedView {
                need_id: (*id).clone(),
                event_id: need.event_id.clone(),
                seq: need.seq,
                category: category_pb(need.category),
                year: need.year,
                amount: Some(amount(model, &need.asset_id, need.quantity)),
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
    for transfer in model.transfers.values_any_order() {
        if transfer.earmark.commune_code.as_deref() == Some(code)
            && transfer.received.is_none()
            && !transfer.reversed
        {
            add(&mut in_transit, &transfer.asset_id, transfer.quantity);
        }
    }
    let mut donors: Vec<pb::Contributor> = donors
        .into_iter()
        .map(|(org_id, value_vnd)| {
            let (name, anonymous) = shown_name(model, org_id);
            pb::Contributor {
                org_id: org_id.to_owned(),
                name,
                anonymous,
                value_vnd,
            }
        })
        .collect();
    donors.sort_by(|a, b| b.value_vnd.cmp(&a.value_vnd).then(a.org_id.cmp(&b.org_id)));
    let recent_deliveries = deliveries
        .iter()
        .rev()
        .take(RECENT_DELIVERIES)
        .map(|(id, d)| delivery_view(model, id, d))
        .collect();
    Ok(pb::CommuneView {
        as_of: Some(as_of(model)),
        summary: Some(commune_summary(model, code, year)),
        categories,
        funds_held: amounts(model, &held),
        funds_in_transit: amounts(model, &in_transit),
        donors,
        uncovered_needs,
        needs: need_views,
        recent_deliveries,
    })
}

pub fn list_deliveries(
    model: &Model,
    request: &pb::ListDeliveriesRequest,
) -> QueryResult<pb::ListDeliveriesResponse> {
    let mut rows: Vec<(&String, &DeliveryRecord)> = model
        .deliveries
        .iter_any_order()
        .filter(|(_, d)| request.commune_code.is_empty() || d.commune_code == request.commune_code)
        .filter(|(_, d)| request.org_id.is_empty() || d.org_id == request.org_id)
        .filter(|(_, d)| year_matches(request.year, d.year()))
        .collect();
    rows.sort_by_key(|(_, d)| d.seq);
    let (deliveries, next_page_token) = paginate(rows, request.page.as_ref(), |(id, d)| {
        delivery_view(model, id, d)
    })?;
    Ok(pb::ListDeliveriesResponse {
        as_of: Some(as_of(model)),
        deliveries,
        next_page_token,
    })
}

pub fn plan_progress(
    model: &Model,
    request: &pb::GetPlanProgressRequest,
) -> QueryResult<pb::PlanProgress> {
    if request.year == 0 {
        return Err(QueryError::InvalidArgument("year is required".into()));
    }
    let plan = model
        .plans
        .iter_any_order()
        .filter(|(_, p)| p.year == request.year && !p.withdrawn)
        .max_by_key(|(_, p)| p.seq);
    let mut response = pb::PlanProgress {
        as_of: Some(as_of(model)),
        year: request.year,
        ..Default::default()
    };
    let Some((event_id, plan)) = plan else {
        return Ok(response);
    };
    // One pass over the deliveries: totals per (category, asset, commune),
    // and per (category, asset) for province-wide targets.
    let mut by_commune: BTreeMap<(Category, &str, &str), (u64, u32)> = BTreeMap::new();
    let mut by_province: BTreeMap<(Category, &str), (u64, u32)> = BTreeMap::new();
    for d in model
        .deliveries
        .values_any_order()
        .filter(|d| !d.reversed && d.year() == plan.year)
    {
        for slot in [
            by_commune
                .entry((d.category, d.asset_id.as_str(), d.commune_code.as_str()))
                .or_default(),
            by_province
                .entry((d.category, d.asset_id.as_str()))
                .or_default(),
        ] {
            slot.0 = slot.0.saturating_add(d.quantity);
            slot.1 = slot.1.saturating_add(d.children_reached);
        }
    }
    let (rows, next_page_token) = paginate(&plan.targets, request.page.as_ref(), |target| {
        let asset = target.asset_id.as_str();
        let (delivered, reached) = match target.commune_code.as_deref() {
            Some(commune) => by_commune.get(&(target.category, asset, commune)),
            None => by_province.get(&(target.category, asset)),
        }
        .copied()
        .unwrap_or_default();
        pb::PlanRow {
            category: category_pb(target.category),
            commune_code: target.commune_code.clone().unwrap_or_default(),
            asset_id: target.asset_id.clone(),
            target_quantity: target.quantity,
            delivered_quantity: delivered,
            children_targeted: target.children_targeted,
            children_reached: reached,
            progress_bp: basis_points(delivered, target.quantity),
        }
    })?;
    response.plan_event_id = event_id.clone();
    response.rows = rows;
    response.next_page_token = next_page_token;
    Ok(response)
}

/// A short label of a beneficiary token: enough to group findings, not to
/// recover the token.
fn beneficiary_label(token: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(token)[..4])
}

pub fn list_overlaps(
    model: &Model,
    request: &pb::ListOverlapsRequest,
    default_excess_percent: u32,
) -> QueryResult<pb::ListOverlapsResponse> {
    let excess_percent = match request.excess_percent {
        0 => default_excess_percent,
        n => n,
    };
    let year = request.year;
    let mut findings = Vec::new();

    // Same beneficiary, category and year from several organisations.
    for (token, ids) in model.deliveries_by_token.iter_any_order() {
        let mut groups: BTreeMap<(u32, Category), Vec<&DeliveryRecord>> = BTreeMap::new();
        for delivery in ids
            .iter()
            .filter_map(|id| model.deliveries.get(id.as_str()))
        {
            if !delivery.reversed && year_matches(year, delivery.year()) {
                groups
                    .entry((delivery.year(), delivery.category))
                    .or_default()
                    .push(delivery);
            }
        }
        for ((group_year, category), deliveries) in groups {
            let orgs: BTreeSet<&str> = deliveries.iter().map(|d| d.org_id.as_str()).collect();
            if orgs.len() < 2 {
                continue;
            }
            findings.push(pb::OverlapFinding {
                kind: pb::OverlapKind::SameBeneficiary as i32,
                commune_code: deliveries[0].commune_code.clone(),
                category: category_pb(category),
                year: group_year,
                org_ids: orgs.into_iter().map(str::to_owned).collect(),
                event_ids: deliveries.iter().map(|d| d.event_id.clone()).collect(),
                seqs: deliveries.iter().map(|d| d.seq).collect(),
                beneficiary_label: beneficiary_label(token),
                ..Default::default()
            });
        }
    }

    // Deliveries over the published need, per commune, category and year.
    #[derive(Default)]
    struct Coverage<'m> {
        needed: u64,
        delivered: u64,
        events: Vec<(u64, &'m str)>,
        orgs: BTreeSet<&'m str>,
    }
    let mut coverage: BTreeMap<(&str, Category, u32), Coverage> = BTreeMap::new();
    for need in model
        .needs
        .values_any_order()
        .filter(|n| !n.withdrawn && year_matches(year, n.year))
    {
        let c = coverage
            .entry((need.commune_code.as_str(), need.category, need.year))
            .or_default();
        c.needed = c
            .needed
            .saturating_add(model.value_vnd(&need.asset_id, need.quantity));
        c.events.push((need.seq, need.event_id.as_str()));
    }
    // Same commune, category and month from several organisations.
    let mut months: BTreeMap<(&str, Category, &str), Vec<&DeliveryRecord>> = BTreeMap::new();
    for delivery in model
        .deliveries
        .values_any_order()
        .filter(|d| !d.reversed && year_matches(year, d.year()))
    {
        if let Some(c) = coverage.get_mut(&(
            delivery.commune_code.as_str(),
            delivery.category,
            delivery.year(),
        )) {
            c.delivered = c
                .delivered
                .saturating_add(model.value_vnd(&delivery.asset_id, delivery.quantity));
            c.events.push((delivery.seq, delivery.event_id.as_str()));
            c.orgs.insert(delivery.org_id.as_str());
        }
        months
            .entry((
                delivery.commune_code.as_str(),
                delivery.category,
                delivery.period.as_str(),
            ))
            .or_default()
            .push(delivery);
    }
    for ((commune, category, need_year), mut c) in coverage {
        let allowed = u128::from(c.needed) * (100 + u128::from(excess_percent));
        if c.needed == 0 || u128::from(c.delivered) * 100 <= allowed {
            continue;
        }
        c.events.sort();
        findings.push(pb::OverlapFinding {
            kind: pb::OverlapKind::ExceedsNeed as i32,
            commune_code: commune.to_owned(),
            category: category_pb(category),
            year: need_year,
            org_ids: c.orgs.into_iter().map(str::to_owned).collect(),
            event_ids: c.events.iter().map(|(_, e)| (*e).to_owned()).collect(),
            seqs: c.events.iter().map(|(s, _)| *s).collect(),
            needed_value_vnd: c.needed,
            delivered_value_vnd: c.delivered,
            ..Default::default()
        });
    }
    for ((commune, category, period), mut deliveries) in months {
        let orgs: BTreeSet<&str> = deliveries.iter().map(|d| d.org_id.as_str()).collect();
        if orgs.len() < 2 {
            continue;
        }
        deliveries.sort_by_key(|d| d.seq);
        findings.push(pb::OverlapFinding {
            kind: pb::OverlapKind::SameMonth as i32,
            commune_code: commune.to_owned(),
            category: category_pb(category),
            year: deliveries[0].year(),
            period: period.to_owned(),
            org_ids: orgs.into_iter().map(str::to_owned).collect(),
            event_ids: deliveries.iter().map(|d| d.event_id.clone()).collect(),
            seqs: deliveries.iter().map(|d| d.seq).collect(),
            ..Default::default()
        });
    }
    // Tokens come out of the index in no particular order: sort on
    // everything a finding shows, down to its events.
    findings.sort_by(|a, b| {
        let key = |f: &pb::OverlapFinding| {
            (
                f.kind,
                f.year,
                f.commune_code.clone(),
                f.category,
                f.period.clone(),
            )
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| a.beneficiary_label.cmp(&b.beneficiary_label))
            .then_with(|| a.seqs.cmp(&b.seqs))
    });
    let (findings, next_page_token) = paginate(findings, request.page.as_ref(), |f| f)?;
    Ok(pb::ListOverlapsResponse {
        as_of: Some(as_of(model)),
        findings,
        next_page_token,
        excess_percent,
    })
}

/// The Vietnamese calendar year of a receipt.
fn receipt_year(receipt: &ReceiptRecord) -> u32 {
    u32::try_from(vn_date(receipt.occurred_at.seconds).0).unwrap_or(0)
}

pub fn recognition(
    model: &Model,
    request: &pb::GetRecognitionRequest,
) -> QueryResult<pb::Recognition> {
    let year = request.year;
    let mut rows: BTreeMap<&str, pb::RecognitionRow> = BTreeMap::new();
    for receipt in model
        .receipts
        .values_any_order()
        .filter(|r| !r.reversed && year_matches(year, receipt_year(r)))
    {
        let row = rows
            .entry(receipt.donor_org_id.as_str())
            .or_insert_with(|| pb::RecognitionRow {
                org_id: receipt.donor_org_id.clone(),
                ..Default::default()
            });
        let value = model.value_vnd(&receipt.asset_id, receipt.quantity);
        if model
            .assets
            .get(receipt.asset_id.as_str())
            .is_some_and(|a| a.in_kind)
        {
            row.in_kind_value_vnd = row.in_kind_value_vnd.saturating_add(value);
        } else {
            row.cash_vnd = row.cash_vnd.saturating_add(value);
        }
        row.total_value_vnd = row.total_value_vnd.saturating_add(value);
        row.receipts += 1;
        let delivered: u64 = receipt
            .flows
            .iter()
            .filter(|f| f.kind == FlowKind::Delivery)
            .filter(|f| {
                model
                    .deliveries
                    .get(f.id.as_str())
                    .is_some_and(|d| !d.reversed)
            })
            .map(|f| f.quantity)
            .fold(0, u64::saturating_add);
        row.delivered_value_vnd = row
            .delivered_value_vnd
            .saturating_add(model.value_vnd(&receipt.asset_id, delivered));
    }
    let mut commendations: BTreeMap<&str, Vec<(u64, pb::Commended)>> = BTreeMap::new();
    for (event_id, c) in model.commendations.iter_any_order() {
        if !c.withdrawn && year_matches(year, c.year) {
            commendations
                .entry(c.honoree_org_id.as_str())
                .or_default()
                .push((
                    c.seq,
                    pb::Commended {
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
        rows.entry(org_id).or_insert_with(|| pb::RecognitionRow {
            org_id: (*org_id).to_owned(),
            ..Default::default()
        });
    }
    let mut rows: Vec<pb::RecognitionRow> = rows
        .into_values()
        .map(|mut row| {
            let (name, anonymous) = shown_name(model, &row.org_id);
            row.name = name;
            row.anonymous = anonymous;
            row.kind = model
                .orgs
                .get(row.org_id.as_str())
                .map_or(0, |o| org_kind_pb(o.kind));
            row.delivered_share_bp = basis_points(row.delivered_value_vnd, row.total_value_vnd);
            if let Some(mut list) = commendations.remove(row.org_id.as_str()) {
                list.sort_by_key(|(seq, _)| *seq);
                row.commendations = list.into_iter().map(|(_, c)| c).collect();
            }
            row
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
    let (rows, next_page_token) = paginate(rows, request.page.as_ref(), |row| row)?;
    Ok(pb::Recognition {
        as_of: Some(as_of(model)),
        year,
        rows,
        next_page_token,
    })
}

fn receipt_view(model: &Model, id: &str, r: &ReceiptRecord) -> pb::ReceiptView {
    let (donor_name, donor_anonymous) = shown_name(model, &r.donor_org_id);
    let mut inspections: Vec<pb::InspectionView> = model
        .inspections
        .iter_any_order()
        .filter(|(_, i)| i.subject_id == id && !i.withdrawn)
        .map(|(event_id, i)| pb::InspectionView {
            event_id: event_id.clone(),
            seq: i.seq,
            org_id: i.org_id.clone(),
            passed: i.passed,
            standard: i.standard.clone(),
        })
        .collect();
    inspections.sort_by_key(|i| i.seq);
    pb::ReceiptView {
        receipt_id: id.to_owned(),
        event_id: r.event_id.clone(),
        seq: r.seq,
        recipient_org_id: r.recipient_org_id.clone(),
        donor_org_id: r.donor_org_id.clone(),
        donor_name,
        donor_anonymous,
        pledge_id: r.pledge_id.clone().unwrap_or_default(),
        amount: Some(amount(model, &r.asset_id, r.quantity)),
        earmark: Some(earmark_pb(&r.earmark)),
        reversed: r.reversed,
        occurred_at_seconds: r.occurred_at.seconds,
        note: r.note.clone(),
        inspections,
    }
}

pub fn trace_receipt(
    model: &Model,
    request: &pb::TraceReceiptRequest,
) -> QueryResult<pb::ReceiptTrace> {
    use pb::trace_receipt_request::Key;
    let receipt_id = match &request.key {
        Some(Key::ReceiptId(id)) => id.clone(),
        Some(Key::ExternalRefHash(hash)) => {
            let hash: [u8; 32] = hash.as_slice().try_into().map_err(|_| {
                QueryError::InvalidArgument(format!(
                    "external_ref_hash is {} bytes; a SHA-256 is 32",
                    hash.len()
                ))
            })?;
            let ids = model.receipts_by_ref.get(&hash).ok_or_else(|| {
                QueryError::NotFound("no receipt carries that reference hash".into())
            })?;
            // A reference corrected by reversal and re-entry leads to the
            // latest receipt still standing (else the latest one).
            ids.iter()
                .rev()
                .find(|id| model.receipts.get(id.as_str()).is_some_and(|r| !r.reversed))
                .or(ids.last())
                .cloned()
                .unwrap_or_default()
        }
        None => {
            return Err(QueryError::InvalidArgument(
                "give a receipt_id or an external_ref_hash".into(),
            ));
        }
    };
    let receipt = model
        .receipts
        .get(receipt_id.as_str())
        .ok_or_else(|| QueryError::NotFound(format!("receipt {receipt_id:?} does not exist")))?;
    let mut trace = pb::ReceiptTrace {
        as_of: Some(as_of(model)),
        receipt: Some(receipt_view(model, &receipt_id, receipt)),
        ..Default::default()
    };
    for flow in &receipt.flows {
        let mut view = pb::Flow {
            id: flow.id.clone(),
            quantity: flow.quantity,
            hop: flow.hop,
            ..Default::default()
        };
        match flow.kind {
            FlowKind::Transfer => {
                let Some(t) = model.transfers.get(flow.id.as_str()) else {
                    continue;
                };
                view.kind = pb::FlowKind::Transfer as i32;
                view.event_id = t.event_id.clone();
                view.seq = t.seq;
                view.from_org_id = t.from_org_id.clone();
                view.to = t.to_org_id.clone();
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
                view.kind = pb::FlowKind::Delivery as i32;
                view.event_id = d.event_id.clone();
                view.seq = d.seq;
                view.from_org_id = d.org_id.clone();
                view.to = d.commune_code.clone();
                view.reversed = d.reversed;
                view.category = category_pb(d.category);
                view.period = d.period.clone();
                if !d.reversed {
                    trace.delivered += flow.quantity;
                }
            }
            FlowKind::Withdrawn => {
                let reversed = model.receipts.get(flow.id.as_str());
                view.kind = pb::FlowKind::Withdrawn as i32;
                view.event_id = reversed.map(|r| r.event_id.clone()).unwrap_or_default();
                view.seq = reversed.map_or(0, |r| r.seq);
                view.from_org_id = reversed
                    .map(|r| r.recipient_org_id.clone())
                    .unwrap_or_default();
                view.to = flow.id.clone();
                trace.withdrawn += flow.quantity;
            }
        }
        trace.flows.push(view);
    }
    for (key, pool) in model.pools.sorted() {
        let held: u64 = pool
            .lots
            .iter()
            .filter(|lot| lot.receipt_id == receipt_id)
            .map(|lot| lot.quantity)
            .sum();
        if held > 0 {
            trace.held += held;
            trace.held_by.push(pb::Balance {
                org_id: key.org_id.clone(),
                asset_id: key.asset_id.clone(),
                earmark: Some(earmark_pb(&key.earmark)),
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

pub fn trace_delivery(
    model: &Model,
    request: &pb::TraceDeliveryRequest,
) -> QueryResult<pb::DeliveryTrace> {
    let id = request.delivery_id.as_str();
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
                funded.push((lot.receipt_id.clone(), lot.quantity));
            }
        }
    }
    let funded_by = funded
        .into_iter()
        .filter_map(|(receipt_id, quantity)| {
            let receipt = model.receipts.get(receipt_id.as_str())?;
            Some(pb::Funding {
                receipt: Some(receipt_view(model, &receipt_id, receipt)),
                quantity,
            })
        })
        .collect();
    Ok(pb::DeliveryTrace {
        as_of: Some(as_of(model)),
        delivery: Some(delivery_view(model, id, delivery)),
        funded_by,
    })
}
