//! `aidledger.v1.Projections` on the wire: requests read into the typed
//! queries of [`crate::read`], answers written back as `pb` messages. The
//! only code of the projector that maps its answers to `pb`; each function
//! here is one RPC, so the service is a thin shell around them.

use aidledger_ledger::{Category, Earmark, OrgKind};
use aidledger_wire::pb;

use crate::follower::FollowStatus;
use crate::model::Model;
use crate::queries;
use crate::read::*;

type QueryResult<T> = Result<T, QueryError>;

/// A page token is the cursor's key behind this prefix, so a token this
/// service never gave out is refused rather than read as a position.
const TOKEN_PREFIX: &str = "after:";

fn page_request(page: Option<&pb::Page>) -> QueryResult<PageRequest> {
    let Some(page) = page else {
        return Ok(PageRequest::default());
    };
    let after = match page.page_token.as_str() {
        "" => None,
        token => {
            let key = token
                .strip_prefix(TOKEN_PREFIX)
                .filter(|key| {
                    !key.is_empty()
                        && key.bytes().all(|b| {
                            b.is_ascii_alphanumeric()
                                || matches!(b, b'.' | b'_' | b':' | b'-' | b',' | b'~')
                        })
                })
                .ok_or_else(|| {
                    QueryError::InvalidArgument(format!(
                        "page_token {token:?} is not a token this service gave out"
                    ))
                })?;
            Some(Cursor::from_token(key))
        }
    };
    Ok(PageRequest {
        size: Some((page.page_size as usize).min(PAGE_SIZE_MAX)).filter(|size| *size != 0),
        after,
    })
}

fn next_page_token(next: Option<&Cursor>) -> String {
    next.map_or_else(String::new, |cursor| {
        format!("{TOKEN_PREFIX}{}", cursor.token())
    })
}

/// An empty string is "no filter".
fn filter(value: &str) -> Option<String> {
    Some(value).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// 0 is "all years".
fn year(value: u32) -> Option<u32> {
    Some(value).filter(|y| *y != 0)
}

fn org_kind_from_pb(value: i32) -> QueryResult<Option<OrgKind>> {
    use pb::OrgKind as K;
    let kind = K::try_from(value)
        .map_err(|_| QueryError::InvalidArgument(format!("kind {value} is not an OrgKind")))?;
    Ok(Some(match kind {
        K::Unspecified => return Ok(None),
        K::Authority => OrgKind::Authority,
        K::Agency => OrgKind::Agency,
        K::Commune => OrgKind::Commune,
        K::School => OrgKind::School,
        K::Clinic => OrgKind::Clinic,
        K::DonorBusiness => OrgKind::DonorBusiness,
        K::DonorOrganization => OrgKind::DonorOrganization,
        K::DonorIndividual => OrgKind::DonorIndividual,
    }))
}

fn category_pb(category: Option<Category>) -> i32 {
    category.map_or(pb::Category::Unspecified as i32, Category::to_pb)
}

fn as_of(as_of: AsOf) -> pb::AsOf {
    pb::AsOf {
        size: as_of.size,
        head_leaf_hash: as_of.head_leaf_hash.to_vec().into(),
        recorded_at_seconds: as_of.recorded_at.seconds,
        checkpoint: as_of.checkpoint.map(|c| pb::Checkpoint {
            note: c.note,
            size: c.size,
            root_hash: c.root.to_vec().into(),
        }),
    }
}

fn earmark(earmark: Earmark) -> Option<pb::Earmark> {
    Some(pb::Earmark {
        commune_code: earmark.commune_code.unwrap_or_default(),
        category: category_pb(earmark.category),
    })
}

fn amount(amount: Amount) -> Option<pb::Amount> {
    Some(pb::Amount {
        asset_id: amount.asset_id,
        quantity: amount.quantity,
        value_vnd: amount.value_vnd,
    })
}

fn amounts(list: Vec<Amount>) -> Vec<pb::Amount> {
    list.into_iter().filter_map(amount).collect()
}

fn balance(b: Balance) -> pb::Balance {
    pb::Balance {
        org_id: b.org_id,
        asset_id: b.asset_id,
        earmark: earmark(b.earmark),
        held: b.held,
        held_value_vnd: b.held_value_vnd,
    }
}

pub fn status(model: &Model, follow: &FollowStatus) -> pb::ProjectionStatus {
    let status = queries::status(model, follow);
    pb::ProjectionStatus {
        as_of: Some(as_of(status.as_of)),
        ledger_size: status.ledger_size,
        origin: status.origin,
        halted_reason: status.halted_reason.unwrap_or_default(),
    }
}

pub fn list_balances(
    model: &Model,
    request: &pb::ListBalancesRequest,
) -> QueryResult<pb::ListBalancesResponse> {
    let answer = queries::balances(
        model,
        &BalancesQuery {
            page: page_request(request.page.as_ref())?,
            org_id: filter(&request.org_id),
            asset_id: filter(&request.asset_id),
        },
    );
    Ok(pb::ListBalancesResponse {
        as_of: Some(as_of(answer.as_of)),
        next_page_token: next_page_token(answer.page.next.as_ref()),
        balances: answer.page.rows.into_iter().map(balance).collect(),
        totals: answer
            .totals
            .into_iter()
            .map(|t| pb::AssetTotal {
                asset_id: t.asset_id,
                in_kind: t.in_kind,
                held: t.held,
                in_transit: t.in_transit,
                lost: t.lost,
                delivered: t.delivered,
                received_from_donors: t.received_from_donors,
                held_value_vnd: t.held_value_vnd,
                in_transit_value_vnd: t.in_transit_value_vnd,
                lost_value_vnd: t.lost_value_vnd,
                delivered_value_vnd: t.delivered_value_vnd,
                received_value_vnd: t.received_value_vnd,
            })
            .collect(),
        held_value_vnd: answer.held_value_vnd,
        in_transit_value_vnd: answer.in_transit_value_vnd,
        lost_value_vnd: answer.lost_value_vnd,
    })
}

pub(crate) fn transfer_state_pb(state: TransferState) -> pb::TransferState {
    match state {
        TransferState::InTransit => pb::TransferState::InTransit,
        TransferState::Received => pb::TransferState::Received,
        TransferState::Reversed => pb::TransferState::Reversed,
    }
}

pub fn list_transfers(
    model: &Model,
    request: &pb::ListTransfersRequest,
) -> QueryResult<pb::ListTransfersResponse> {
    let state = match pb::TransferState::try_from(request.state) {
        Ok(pb::TransferState::Unspecified) => None,
        Ok(pb::TransferState::InTransit) => Some(TransferState::InTransit),
        Ok(pb::TransferState::Received) => Some(TransferState::Received),
        Ok(pb::TransferState::Reversed) => Some(TransferState::Reversed),
        Err(_) => {
            return Err(QueryError::InvalidArgument(format!(
                "state {} is not a TransferState",
                request.state
            )));
        }
    };
    let answer = queries::transfers(
        model,
        &TransfersQuery {
            page: page_request(request.page.as_ref())?,
            org_id: filter(&request.org_id),
            state,
        },
    );
    Ok(pb::ListTransfersResponse {
        as_of: Some(as_of(answer.as_of)),
        next_page_token: next_page_token(answer.page.next.as_ref()),
        transfers: answer
            .page
            .rows
            .into_iter()
            .map(|t| pb::TransferView {
                transfer_id: t.transfer_id,
                event_id: t.event_id,
                seq: t.seq,
                from_org_id: t.from_org_id,
                to_org_id: t.to_org_id,
                asset_id: t.asset_id,
                earmark: earmark(t.earmark),
                quantity: t.quantity,
                received: t.received,
                lost: t.lost,
                state: transfer_state_pb(t.state) as i32,
                occurred_at_seconds: t.occurred_at.seconds,
                value_vnd: t.value_vnd,
            })
            .collect(),
    })
}

pub(crate) fn pledge_status_pb(status: PledgeStatus) -> pb::PledgeStatus {
    match status {
        PledgeStatus::Open => pb::PledgeStatus::Open,
        PledgeStatus::PartlyReceived => pb::PledgeStatus::PartlyReceived,
        PledgeStatus::Fulfilled => pb::PledgeStatus::Fulfilled,
        PledgeStatus::Cancelled => pb::PledgeStatus::Cancelled,
        PledgeStatus::Overdue => pb::PledgeStatus::Overdue,
    }
}

fn pledge_summary(s: PledgeSummary) -> pb::PledgeSummary {
    pb::PledgeSummary {
        org_id: s.org_id,
        pledges: s.pledges,
        pledged_value_vnd: s.pledged_value_vnd,
        received_value_vnd: s.received_value_vnd,
    }
}

pub fn list_pledges(
    model: &Model,
    request: &pb::ListPledgesRequest,
) -> QueryResult<pb::ListPledgesResponse> {
    let status = match pb::PledgeStatus::try_from(request.status) {
        Ok(pb::PledgeStatus::Unspecified) => None,
        Ok(pb::PledgeStatus::Open) => Some(PledgeStatus::Open),
        Ok(pb::PledgeStatus::PartlyReceived) => Some(PledgeStatus::PartlyReceived),
        Ok(pb::PledgeStatus::Fulfilled) => Some(PledgeStatus::Fulfilled),
        Ok(pb::PledgeStatus::Cancelled) => Some(PledgeStatus::Cancelled),
        Ok(pb::PledgeStatus::Overdue) => Some(PledgeStatus::Overdue),
        Err(_) => {
            return Err(QueryError::InvalidArgument(format!(
                "status {} is not a PledgeStatus",
                request.status
            )));
        }
    };
    let answer = queries::pledges(
        model,
        &PledgesQuery {
            page: page_request(request.page.as_ref())?,
            donor_org_id: filter(&request.donor_org_id),
            recipient_org_id: filter(&request.recipient_org_id),
            status,
        },
    );
    Ok(pb::ListPledgesResponse {
        as_of: Some(as_of(answer.as_of)),
        next_page_token: next_page_token(answer.page.next.as_ref()),
        pledges: answer
            .page
            .rows
            .into_iter()
            .map(|p| pb::PledgeView {
                pledge_id: p.pledge_id,
                event_id: p.event_id,
                seq: p.seq,
                donor_org_id: p.donor_org_id,
                donor_name: p.donor_name.unwrap_or_default(),
                recipient_org_id: p.recipient_org_id,
                asset_id: p.asset_id,
                earmark: earmark(p.earmark),
                quantity: p.quantity,
                received: p.received,
                due_date: p.due_date.unwrap_or_default(),
                status: pledge_status_pb(p.status) as i32,
                value_vnd: p.value_vnd,
            })
            .collect(),
        by_donor: answer.by_donor.into_iter().map(pledge_summary).collect(),
        by_recipient: answer
            .by_recipient
            .into_iter()
            .map(pledge_summary)
            .collect(),
    })
}

pub fn list_organizations(
    model: &Model,
    request: &pb::ListOrganizationsRequest,
) -> QueryResult<pb::ListOrganizationsResponse> {
    let answer = queries::organizations(
        model,
        &OrganizationsQuery {
            page: page_request(request.page.as_ref())?,
            kind: org_kind_from_pb(request.kind)?,
        },
    );
    Ok(pb::ListOrganizationsResponse {
        as_of: Some(as_of(answer.as_of)),
        next_page_token: next_page_token(answer.page.next.as_ref()),
        organizations: answer
            .page
            .rows
            .into_iter()
            .map(|o| pb::OrganizationView {
                org_id: o.org_id,
                name: o.name.unwrap_or_default(),
                anonymous: o.anonymous,
                kind: o.kind.to_pb(),
                parent_org_id: o.parent_org_id.unwrap_or_default(),
                commune_code: o.commune_code.unwrap_or_default(),
            })
            .collect(),
    })
}

fn commune_summary(s: CommuneSummary) -> pb::CommuneSummary {
    pb::CommuneSummary {
        commune_code: s.commune_code,
        name: s.name,
        district: s.district,
        province: s.province,
        children_count: s.children_count,
        needed_value_vnd: s.needed_value_vnd,
        delivered_value_vnd: s.delivered_value_vnd,
        children_targeted: s.children_targeted,
        children_reached: s.children_reached,
        deliveries: s.deliveries,
    }
}

pub fn list_communes(
    model: &Model,
    request: &pb::ListCommunesRequest,
) -> QueryResult<pb::ListCommunesResponse> {
    let answer = queries::communes(
        model,
        year(request.year),
        &page_request(request.page.as_ref())?,
    );
    Ok(pb::ListCommunesResponse {
        as_of: Some(as_of(answer.as_of)),
        next_page_token: next_page_token(answer.page.next.as_ref()),
        communes: answer.page.rows.into_iter().map(commune_summary).collect(),
    })
}

fn delivery(d: DeliveryView) -> pb::DeliveryView {
    pb::DeliveryView {
        delivery_id: d.delivery_id,
        event_id: d.event_id,
        seq: d.seq,
        org_id: d.org_id,
        commune_code: d.commune_code,
        category: d.category.to_pb(),
        amount: amount(d.amount),
        earmark: earmark(d.earmark),
        children_reached: d.children_reached,
        period: d.period,
        note: d.note,
        reversed: d.reversed,
        occurred_at_seconds: d.occurred_at.seconds,
        beneficiary_count: d.beneficiary_count,
        evidence_count: d.evidence_count,
    }
}

fn need(n: NeedView) -> pb::NeedView {
    pb::NeedView {
        need_id: n.need_id,
        event_id: n.event_id,
        seq: n.seq,
        category: n.category.to_pb(),
        year: n.year,
        amount: amount(n.amount),
        children_targeted: n.children_targeted,
        description: n.description,
        uncovered_value_vnd: n.uncovered_value_vnd,
    }
}

pub fn get_commune(model: &Model, request: &pb::GetCommuneRequest) -> QueryResult<pb::CommuneView> {
    let view = queries::commune(model, &request.commune_code, year(request.year))?;
    Ok(pb::CommuneView {
        as_of: Some(as_of(view.as_of)),
        summary: Some(commune_summary(view.summary)),
        categories: view
            .categories
            .into_iter()
            .map(|c| pb::CategoryProgress {
                category: c.category.to_pb(),
                needed: amounts(c.needed),
                delivered: amounts(c.delivered),
                needed_value_vnd: c.needed_value_vnd,
                delivered_value_vnd: c.delivered_value_vnd,
                children_targeted: c.children_targeted,
                children_reached: c.children_reached,
            })
            .collect(),
        funds_held: amounts(view.funds_held),
        funds_in_transit: amounts(view.funds_in_transit),
        donors: view
            .donors
            .into_iter()
            .map(|d| pb::Contributor {
                org_id: d.org_id,
                name: d.name.unwrap_or_default(),
                anonymous: d.anonymous,
                value_vnd: d.value_vnd,
            })
            .collect(),
        uncovered_needs: view.uncovered_needs.into_iter().map(need).collect(),
        needs: view.needs.into_iter().map(need).collect(),
        recent_deliveries: view.recent_deliveries.into_iter().map(delivery).collect(),
    })
}

pub fn list_deliveries(
    model: &Model,
    request: &pb::ListDeliveriesRequest,
) -> QueryResult<pb::ListDeliveriesResponse> {
    let answer = queries::deliveries(
        model,
        &DeliveriesQuery {
            page: page_request(request.page.as_ref())?,
            commune_code: filter(&request.commune_code),
            org_id: filter(&request.org_id),
            year: year(request.year),
        },
    );
    Ok(pb::ListDeliveriesResponse {
        as_of: Some(as_of(answer.as_of)),
        next_page_token: next_page_token(answer.page.next.as_ref()),
        deliveries: answer.page.rows.into_iter().map(delivery).collect(),
    })
}

pub fn plan_progress(
    model: &Model,
    request: &pb::GetPlanProgressRequest,
) -> QueryResult<pb::PlanProgress> {
    if request.year == 0 {
        return Err(QueryError::InvalidArgument("year is required".into()));
    }
    let answer = queries::plan_progress(model, request.year, &page_request(request.page.as_ref())?);
    Ok(pb::PlanProgress {
        as_of: Some(as_of(answer.as_of)),
        year: answer.year,
        plan_event_id: answer.plan_event_id.unwrap_or_default(),
        next_page_token: next_page_token(answer.page.next.as_ref()),
        rows: answer
            .page
            .rows
            .into_iter()
            .map(|r| pb::PlanRow {
                category: r.category.to_pb(),
                commune_code: r.commune_code.unwrap_or_default(),
                asset_id: r.asset_id,
                target_quantity: r.target_quantity,
                delivered_quantity: r.delivered_quantity,
                children_targeted: r.children_targeted,
                children_reached: r.children_reached,
                progress_bp: r.progress_bp,
            })
            .collect(),
    })
}

pub fn list_overlaps(
    model: &Model,
    request: &pb::ListOverlapsRequest,
    default_excess_percent: u32,
) -> QueryResult<pb::ListOverlapsResponse> {
    let answer = queries::overlaps(
        model,
        &OverlapsQuery {
            page: page_request(request.page.as_ref())?,
            year: year(request.year),
            excess_percent: Some(request.excess_percent).filter(|p| *p != 0),
        },
        default_excess_percent,
    );
    Ok(pb::ListOverlapsResponse {
        as_of: Some(as_of(answer.as_of)),
        next_page_token: next_page_token(answer.page.next.as_ref()),
        excess_percent: answer.excess_percent,
        findings: answer
            .page
            .rows
            .into_iter()
            .map(|f| pb::OverlapFinding {
                finding_id: f.finding_id,
                events_total: f.events_total,
                kind: match f.kind {
                    OverlapKind::SameBeneficiary => pb::OverlapKind::SameBeneficiary,
                    OverlapKind::ExceedsNeed => pb::OverlapKind::ExceedsNeed,
                    OverlapKind::SameMonth => pb::OverlapKind::SameMonth,
                } as i32,
                commune_code: f.commune_code,
                category: f.category.to_pb(),
                year: f.year,
                period: f.period.unwrap_or_default(),
                org_ids: f.org_ids,
                event_ids: f.event_ids,
                seqs: f.seqs,
                needed_value_vnd: f.needed_value_vnd,
                delivered_value_vnd: f.delivered_value_vnd,
                beneficiary_label: f.beneficiary_label.unwrap_or_default(),
            })
            .collect(),
    })
}

pub fn list_overlap_events(
    model: &Model,
    request: &pb::ListOverlapEventsRequest,
) -> QueryResult<pb::ListOverlapEventsResponse> {
    let answer = queries::overlap_events(
        model,
        &OverlapEventsQuery {
            finding_id: request.finding_id.clone(),
            page: page_request(request.page.as_ref())?,
        },
    )?;
    Ok(pb::ListOverlapEventsResponse {
        as_of: Some(as_of(answer.as_of)),
        finding_id: answer.finding_id,
        events_total: answer.events_total,
        next_page_token: next_page_token(answer.page.next.as_ref()),
        events: answer
            .page
            .rows
            .into_iter()
            .map(|e| pb::OverlapEvent {
                seq: e.seq,
                event_id: e.event_id,
                org_id: e.org_id.unwrap_or_default(),
            })
            .collect(),
    })
}

pub fn recognition(
    model: &Model,
    request: &pb::GetRecognitionRequest,
) -> QueryResult<pb::Recognition> {
    let answer = queries::recognition(
        model,
        year(request.year),
        &page_request(request.page.as_ref())?,
    );
    Ok(pb::Recognition {
        as_of: Some(as_of(answer.as_of)),
        year: answer.year.unwrap_or(0),
        next_page_token: next_page_token(answer.page.next.as_ref()),
        rows: answer
            .page
            .rows
            .into_iter()
            .map(|r| pb::RecognitionRow {
                rank: r.rank,
                org_id: r.org_id,
                name: r.name.unwrap_or_default(),
                anonymous: r.anonymous,
                kind: r
                    .kind
                    .map_or(pb::OrgKind::Unspecified as i32, OrgKind::to_pb),
                cash_vnd: r.cash_vnd,
                in_kind_value_vnd: r.in_kind_value_vnd,
                total_value_vnd: r.total_value_vnd,
                delivered_value_vnd: r.delivered_value_vnd,
                delivered_share_bp: r.delivered_share_bp,
                receipts: r.receipts,
                commendations: r
                    .commendations
                    .into_iter()
                    .map(|c| pb::Commended {
                        event_id: c.event_id,
                        year: c.year,
                        decision_ref: c.decision_ref,
                        reason: c.reason,
                    })
                    .collect(),
            })
            .collect(),
    })
}

fn receipt(r: ReceiptView) -> pb::ReceiptView {
    pb::ReceiptView {
        receipt_id: r.receipt_id,
        event_id: r.event_id,
        seq: r.seq,
        recipient_org_id: r.recipient_org_id,
        donor_org_id: r.donor_org_id,
        donor_name: r.donor_name.unwrap_or_default(),
        donor_anonymous: r.donor_anonymous,
        pledge_id: r.pledge_id.unwrap_or_default(),
        amount: amount(r.amount),
        earmark: earmark(r.earmark),
        reversed: r.reversed,
        occurred_at_seconds: r.occurred_at.seconds,
        note: r.note,
        inspections: r
            .inspections
            .into_iter()
            .map(|i| pb::InspectionView {
                event_id: i.event_id,
                seq: i.seq,
                org_id: i.org_id,
                passed: i.passed,
                standard: i.standard,
            })
            .collect(),
    }
}

pub fn trace_receipt(
    model: &Model,
    request: &pb::TraceReceiptRequest,
) -> QueryResult<pb::ReceiptTrace> {
    use pb::trace_receipt_request::Key;
    let key = match &request.key {
        Some(Key::ReceiptId(id)) => ReceiptKey::Id(id.clone()),
        Some(Key::ExternalRefHash(hash)) => {
            ReceiptKey::RefHash(hash[..].try_into().map_err(|_| {
                QueryError::InvalidArgument(format!(
                    "external_ref_hash is {} bytes; a SHA-256 is 32",
                    hash.len()
                ))
            })?)
        }
        None => {
            return Err(QueryError::InvalidArgument(
                "give a receipt_id or an external_ref_hash".into(),
            ));
        }
    };
    let trace = queries::trace_receipt(model, &key)?;
    Ok(pb::ReceiptTrace {
        as_of: Some(as_of(trace.as_of)),
        receipt: Some(receipt(trace.receipt)),
        flows: trace
            .flows
            .into_iter()
            .map(|f| pb::Flow {
                kind: match f.kind {
                    FlowKind::Transfer => pb::FlowKind::Transfer,
                    FlowKind::Delivery => pb::FlowKind::Delivery,
                    FlowKind::Withdrawn => pb::FlowKind::Withdrawn,
                } as i32,
                id: f.id,
                event_id: f.event_id,
                seq: f.seq,
                from_org_id: f.from_org_id,
                to: f.to,
                quantity: f.quantity,
                arrived: f.arrived,
                in_transit: f.in_transit,
                reversed: f.reversed,
                category: category_pb(f.category),
                period: f.period.unwrap_or_default(),
                hop: f.hop,
            })
            .collect(),
        delivered: trace.delivered,
        in_transit: trace.in_transit,
        lost: trace.lost,
        held: trace.held,
        withdrawn: trace.withdrawn,
        held_by: trace.held_by.into_iter().map(balance).collect(),
    })
}

pub fn trace_delivery(
    model: &Model,
    request: &pb::TraceDeliveryRequest,
) -> QueryResult<pb::DeliveryTrace> {
    let trace = queries::trace_delivery(model, &request.delivery_id)?;
    Ok(pb::DeliveryTrace {
        as_of: Some(as_of(trace.as_of)),
        delivery: Some(delivery(trace.delivery)),
        funded_by: trace
            .funded_by
            .into_iter()
            .map(|f| pb::Funding {
                receipt: Some(receipt(f.receipt)),
                quantity: f.quantity,
            })
            .collect(),
    })
}
