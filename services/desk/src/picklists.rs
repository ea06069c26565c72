//! What the forms offer to pick from, read from the projector over gRPC:
//! the wire types end here, the pages see these.

use aidledger_wire::pb;
use aidledger_wire::pb::projections_client::ProjectionsClient;
use anyhow::{Context as _, Result};

/// A donor to pick, with a name only when the donor agreed to be named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Donor {
    pub org_id: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commune {
    pub code: String,
    pub name: String,
}

/// A transfer on its way to the agency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arriving {
    pub transfer_id: String,
    pub from_org_id: String,
    pub asset_id: String,
    pub quantity: u64,
}

/// An entry of the agency's that can be reversed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnEvent {
    pub event_id: String,
    pub seq: u64,
    /// What it recorded, for a person: its kind and id.
    pub label: String,
}

/// A pledge still open, to or by the agency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenPledge {
    pub pledge_id: String,
    /// To the agency (not by it).
    pub to_agency: bool,
    pub donor_org_id: String,
    pub asset_id: String,
    pub quantity: u64,
    pub received: u64,
}

/// What the agency holds of one asset under one earmark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    pub asset_id: String,
    pub commune_code: Option<String>,
    pub category: Option<i32>,
    pub quantity: u64,
}

/// Everything the forms pick from, as of one reading of the projections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PickLists {
    pub donors: Vec<Donor>,
    /// Organisations a transfer can go to: agencies, commune committees,
    /// schools, clinics.
    pub recipients: Vec<Donor>,
    /// The desk's own organisation.
    pub own_org_id: String,
    /// Transfers to the agency not yet confirmed.
    pub in_transit: Vec<Arriving>,
    /// Pledges to or by the agency still open.
    pub open_pledges: Vec<OpenPledge>,
    /// The agency's transfers and deliveries not reversed, newest first:
    /// what it may reverse.
    pub own_events: Vec<OwnEvent>,
    pub communes: Vec<Commune>,
    /// Asset ids seen in the ledger's totals, `VND` always among them.
    pub assets: Vec<String>,
    /// The agency's own holdings: what it can transfer or deliver now.
    pub holdings: Vec<Holding>,
    /// Entries the projections reflect.
    pub as_of_size: u64,
}

/// Every row of a paged list, in the calling async fn: `$fetch` answers
/// the page `$page` asks for with its rows and the next page's token
/// (empty after the last). A macro, not a function taking an async
/// closure, so that the handlers' futures stay `Send`.
macro_rules! every_page {
    (|$page:ident| $fetch:expr) => {{
        let mut rows = Vec::new();
        let mut token = String::new();
        loop {
            let $page = page(&token);
            let (page_rows, next) = $fetch;
            rows.extend(page_rows);
            if next.is_empty() {
                break rows;
            }
            token = next;
        }
    }};
}

/// The largest page the projector gives; a province's donors and communes
/// fit in a few.
const PAGE: u32 = 1000;

/// Reads the pick lists for `org_id` from the projector at `url`; with
/// `own_events`, also the agency's entries a reversal may name, which
/// means reading all of its deliveries.
///
/// # Errors
///
/// The projector cannot be reached or answers with an error.
pub async fn read(url: &str, org_id: &str, own_events: bool) -> Result<PickLists> {
    let mut projections = ProjectionsClient::connect(url.to_owned())
        .await
        .with_context(|| format!("connecting to the projections at {url}"))?;
    let mut lists = PickLists {
        own_org_id: org_id.to_owned(),
        ..PickLists::default()
    };
    let named = |o: pb::OrganizationView| Donor {
        name: (!o.anonymous && !o.name.is_empty()).then_some(o.name),
        org_id: o.org_id,
    };
    for (kinds, donors) in [
        (
            &[
                pb::OrgKind::DonorIndividual,
                pb::OrgKind::DonorBusiness,
                pb::OrgKind::DonorOrganization,
            ][..],
            true,
        ),
        (
            &[
                pb::OrgKind::Agency,
                pb::OrgKind::Commune,
                pb::OrgKind::School,
                pb::OrgKind::Clinic,
            ][..],
            false,
        ),
    ] {
        for kind in kinds {
            let organizations = every_page!(|page| {
                let answer = projections
                    .list_organizations(pb::ListOrganizationsRequest {
                        page: Some(page),
                        kind: *kind as i32,
                    })
                    .await
                    .context("listing organisations")?
                    .into_inner();
                (answer.organizations, answer.next_page_token)
            });
            let organizations = organizations.into_iter().map(named);
            if donors {
                lists.donors.extend(organizations);
            } else {
                lists
                    .recipients
                    .extend(organizations.filter(|o| o.org_id != org_id));
            }
        }
    }
    lists.donors.sort_by(|a, b| {
        (a.name.is_none(), &a.name, &a.org_id).cmp(&(b.name.is_none(), &b.name, &b.org_id))
    });
    lists.communes = every_page!(|page| {
        let answer = projections
            .list_communes(pb::ListCommunesRequest {
                page: Some(page),
                year: 0,
            })
            .await
            .context("listing communes")?
            .into_inner();
        (answer.communes, answer.next_page_token)
    })
    .into_iter()
    .map(|c| Commune {
        code: c.commune_code,
        name: c.name,
    })
    .collect();
    let mut totals: Vec<pb::AssetTotal>;
    let balances = every_page!(|page| {
        let answer = projections
            .list_balances(pb::ListBalancesRequest {
                page: Some(page),
                org_id: org_id.to_owned(),
                asset_id: String::new(),
            })
            .await
            .context("listing the agency's balances")?
            .into_inner();
        lists.as_of_size = answer.as_of.as_ref().map_or(0, |a| a.size);
        totals = answer.totals;
        (answer.balances, answer.next_page_token)
    });
    lists.assets = totals.into_iter().map(|t| t.asset_id).collect();
    lists.holdings = balances
        .into_iter()
        .map(|b| {
            let earmark = b.earmark.unwrap_or_default();
            Holding {
                asset_id: b.asset_id,
                commune_code: Some(earmark.commune_code).filter(|c| !c.is_empty()),
                category: Some(earmark.category).filter(|c| *c != 0),
                quantity: b.held,
            }
        })
        .collect();
    let transfers = every_page!(|page| {
        let answer = projections
            .list_transfers(pb::ListTransfersRequest {
                page: Some(page),
                org_id: org_id.to_owned(),
                state: pb::TransferState::InTransit as i32,
            })
            .await
            .context("listing transfers in transit")?
            .into_inner();
        (answer.transfers, answer.next_page_token)
    });
    for t in transfers {
        if t.to_org_id == org_id {
            lists.in_transit.push(Arriving {
                transfer_id: t.transfer_id,
                from_org_id: t.from_org_id,
                asset_id: t.asset_id,
                quantity: t.quantity,
            });
        } else if t.from_org_id == org_id {
            lists.own_events.push(OwnEvent {
                event_id: t.event_id,
                seq: t.seq,
                label: format!("transfer {}", t.transfer_id),
            });
        }
    }
    for (donor, recipient) in [
        (String::new(), org_id.to_owned()),
        (org_id.to_owned(), String::new()),
    ] {
        let pledges = every_page!(|page| {
            let answer = projections
                .list_pledges(pb::ListPledgesRequest {
                    page: Some(page),
                    donor_org_id: donor.clone(),
                    recipient_org_id: recipient.clone(),
                    status: pb::PledgeStatus::Unspecified as i32,
                })
                .await
                .context("listing pledges")?
                .into_inner();
            (answer.pledges, answer.next_page_token)
        });
        let open = [
            pb::PledgeStatus::Open,
            pb::PledgeStatus::PartlyReceived,
            pb::PledgeStatus::Overdue,
        ]
        .map(|s| s as i32);
        lists.open_pledges.extend(
            pledges
                .into_iter()
                .filter(|p| open.contains(&p.status))
                .map(|p| OpenPledge {
                    to_agency: p.recipient_org_id == org_id,
                    pledge_id: p.pledge_id,
                    donor_org_id: p.donor_org_id,
                    asset_id: p.asset_id,
                    quantity: p.quantity,
                    received: p.received,
                }),
        );
    }
    if own_events {
        let deliveries = every_page!(|page| {
            let answer = projections
                .list_deliveries(pb::ListDeliveriesRequest {
                    page: Some(page),
                    commune_code: String::new(),
                    org_id: org_id.to_owned(),
                    year: 0,
                })
                .await
                .context("listing the agency's deliveries")?
                .into_inner();
            (answer.deliveries, answer.next_page_token)
        });
        lists.own_events.extend(
            deliveries
                .into_iter()
                .filter(|d| !d.reversed)
                .map(|d| OwnEvent {
                    event_id: d.event_id,
                    seq: d.seq,
                    label: format!("delivery {}", d.delivery_id),
                }),
        );
    }
    keep_newest(&mut lists.own_events);
    // Money first: most receipts are in đồng.
    lists.assets.retain(|asset| asset != "VND");
    lists.assets.insert(0, "VND".to_owned());
    Ok(lists)
}

/// The entries a reversal form offers: the newest.
const OWN_EVENTS_SHOWN: usize = 100;

fn keep_newest(events: &mut Vec<OwnEvent>) {
    events.sort_by_key(|e| std::cmp::Reverse(e.seq));
    events.truncate(OWN_EVENTS_SHOWN);
}

fn page(token: &str) -> pb::Page {
    pb::Page {
        page_size: PAGE,
        page_token: token.to_owned(),
    }
}
