//! Queries on small hand-made ledgers whose right answers are worked out by
//! hand in the comments.

use aidledger_ledger::*;
use aidledger_wire::pb;

use crate::model::Model;
use crate::read::QueryError;
use crate::wire::*;

/// 2025-06-01T00:00:00Z.
const JUNE_2025: i64 = 1_748_736_000;

/// Applies events in order, as the follower does, with made-up ids.
struct Script {
    model: Model,
    counter: u64,
}

impl Script {
    fn new() -> Self {
        let mut script = Script {
            model: Model::new(),
            counter: 0,
        };
        script.apply(
            "ubnd",
            Body::Genesis(Genesis {
                origin: "test.example/log".into(),
                authority_org_id: "ubnd".into(),
                authority_name: "UBND tỉnh".into(),
                authority_public_key: PublicKey([1; 32]),
                log_vkey: "test.example/log+00000000+AQ".into(),
            }),
        );
        script.apply(
            "ubnd",
            Body::RegisterAsset(RegisterAsset {
                asset_id: "rice-kg".into(),
                name: "Gạo".into(),
                unit: "kg".into(),
                unit_value_vnd: 20_000,
                in_kind: true,
            }),
        );
        for commune in ["22783", "22786"] {
            script.apply(
                "ubnd",
                Body::RegisterCommune(RegisterCommune {
                    commune_code: commune.into(),
                    name: format!("Xã {commune}"),
                    district: "Bác Ái".into(),
                    province: "Ninh Thuận".into(),
                    children_count: 400,
                }),
            );
        }
        for (org, kind, public_name) in [
            ("fund-a", OrgKind::Agency, true),
            ("office-b", OrgKind::Agency, true),
            ("school-c", OrgKind::School, true),
            ("donor-1", OrgKind::DonorBusiness, true),
            ("donor-2", OrgKind::DonorIndividual, false),
        ] {
            script.apply(
                "ubnd",
                Body::RegisterOrg(RegisterOrganization {
                    org_id: org.into(),
                    name: if public_name {
                        OrgName::Public(format!("Name of {org}"))
                    } else {
                        OrgName::Hidden {
                            commitment: [7; 32],
                        }
                    },
                    kind,
                    parent_org_id: None,
                    commune_code: None,
                }),
            );
        }
        script
    }

    fn apply(&mut self, org: &str, body: Body) -> String {
        self.apply_at(org, JUNE_2025, body)
    }

    fn apply_at(&mut self, org: &str, seconds: i64, body: Body) -> String {
        self.counter += 1;
        let event_id = format!("00000000-0000-4000-8000-{:012}", self.counter);
        let seq = self.model.position.size;
        let event = Event {
            event_id: event_id.clone(),
            org_id: org.into(),
            occurred_at: Timestamp::from_seconds(seconds),
            body,
        };
        self.model
            .apply(seq, Timestamp::from_seconds(seconds), event)
            .unwrap_or_else(|e| panic!("{e}"));
        event_id
    }

    fn receipt(&mut self, recipient: &str, id: &str, donor: &str, quantity: u64) -> String {
        self.apply(
            recipient,
            Body::Receipt(Receipt {
                receipt_id: id.into(),
                donor_org_id: donor.into(),
                pledge_id: None,
                asset_id: "VND".into(),
                quantity,
                earmark: Earmark::default(),
                external_ref_hash: Some([id.len() as u8; 32]),
                note: String::new(),
            }),
        )
    }

    fn transfer(&mut self, from: &str, id: &str, to: &str, quantity: u64) -> String {
        self.apply(
            from,
            Body::Transfer(Transfer {
                transfer_id: id.into(),
                to_org_id: to.into(),
                asset_id: "VND".into(),
                quantity,
                earmark: Earmark::default(),
                note: String::new(),
            }),
        )
    }

    fn received(&mut self, by: &str, id: &str, quantity: u64) -> String {
        self.apply(
            by,
            Body::TransferReceived(TransferReceived {
                transfer_id: id.into(),
                quantity_received: quantity,
                note: String::new(),
            }),
        )
    }

    fn deliver(&mut self, by: &str, id: &str, commune: &str, quantity: u64) -> String {
        self.deliver_with(
            by,
            id,
            commune,
            Category::Nutrition,
            "2025-06",
            quantity,
            &[],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver_with(
        &mut self,
        by: &str,
        id: &str,
        commune: &str,
        category: Category,
        period: &str,
        quantity: u64,
        tokens: &[[u8; 32]],
    ) -> String {
        self.apply(
            by,
            Body::Delivery(Delivery {
                delivery_id: id.into(),
                commune_code: commune.into(),
                category,
                asset_id: "VND".into(),
                quantity,
                earmark: Earmark::default(),
                children_reached: 10,
                beneficiary_tokens: tokens.to_vec(),
                evidence_hashes: vec![],
                period: period.into(),
                note: String::new(),
            }),
        )
    }

    fn need(&mut self, id: &str, commune: &str, quantity: u64) -> String {
        self.apply(
            "ubnd",
            Body::PublishNeed(PublishNeed {
                need_id: id.into(),
                commune_code: commune.into(),
                category: Category::Nutrition,
                year: 2025,
                asset_id: "VND".into(),
                quantity,
                children_targeted: 50,
                description: "Bữa ăn bán trú".into(),
            }),
        )
    }

    fn reverse(&mut self, by: &str, target_event_id: &str) -> String {
        self.apply(
            by,
            Body::Reversal(Reversal {
                target_event_id: target_event_id.into(),
                reason: "entered twice".into(),
            }),
        )
    }
}

fn balance(model: &Model, org: &str) -> u64 {
    model
        .pools
        .iter_any_order()
        .filter(|(k, _)| k.org_id == org)
        .map(|(key, pool)| {
            let lots: u64 = model
                .lots
                .get(key)
                .into_iter()
                .flatten()
                .map(|lot| lot.quantity)
                .sum();
            assert_eq!(lots, pool.balance, "a pool's lots make up its balance");
            pool.balance
        })
        .sum()
}

fn trace(model: &Model, receipt_id: &str) -> pb::ReceiptTrace {
    trace_receipt(
        model,
        &pb::TraceReceiptRequest {
            key: Some(pb::trace_receipt_request::Key::ReceiptId(receipt_id.into())),
        },
    )
    .unwrap()
}

/// Flows of a trace as (kind, id, quantity, arrived, hop).
fn flows(trace: &pb::ReceiptTrace) -> Vec<(i32, &str, u64, u64, u32)> {
    trace
        .flows
        .iter()
        .map(|f| (f.kind, f.id.as_str(), f.quantity, f.arrived, f.hop))
        .collect()
}

const TRANSFER: i32 = pb::FlowKind::Transfer as i32;
const DELIVERY: i32 = pb::FlowKind::Delivery as i32;

#[test]
fn balances_transit_and_losses() {
    let mut s = Script::new();
    s.receipt("fund-a", "r1", "donor-1", 1_000);
    s.transfer("fund-a", "t1", "office-b", 600);
    // In transit: A holds 400, nothing at B yet.
    let answer = list_balances(&s.model, &pb::ListBalancesRequest::default()).unwrap();
    let vnd = answer.totals.iter().find(|t| t.asset_id == "VND").unwrap();
    assert_eq!((vnd.held, vnd.in_transit, vnd.lost), (400, 600, 0));
    s.received("office-b", "t1", 550);
    s.deliver("office-b", "d1", "22783", 300);
    assert_eq!(balance(&s.model, "fund-a"), 400);
    assert_eq!(balance(&s.model, "office-b"), 250);
    let answer = list_balances(&s.model, &pb::ListBalancesRequest::default()).unwrap();
    let vnd = answer.totals.iter().find(|t| t.asset_id == "VND").unwrap();
    assert_eq!(
        (
            vnd.received_from_donors,
            vnd.held,
            vnd.in_transit,
            vnd.lost,
            vnd.delivered
        ),
        (1_000, 650, 0, 50, 300)
    );
    assert_eq!(answer.held_value_vnd, 650);
    assert_eq!(answer.lost_value_vnd, 50);
    // Filtered by organisation, one row per pool.
    let b = list_balances(
        &s.model,
        &pb::ListBalancesRequest {
            org_id: "office-b".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(b.balances.len(), 1);
    assert_eq!(b.balances[0].held, 250);
    let transfers = list_transfers(&s.model, &pb::ListTransfersRequest::default()).unwrap();
    assert_eq!(transfers.transfers[0].lost, 50);
    assert_eq!(
        transfers.transfers[0].state,
        pb::TransferState::Received as i32
    );
    assert_eq!(answer.as_of.unwrap().size, s.model.position.size);
}

#[test]
fn in_kind_goods_are_valued_at_their_unit_value() {
    let mut s = Script::new();
    s.apply(
        "fund-a",
        Body::Receipt(Receipt {
            receipt_id: "rice".into(),
            donor_org_id: "donor-1".into(),
            pledge_id: None,
            asset_id: "rice-kg".into(),
            quantity: 500,
            earmark: Earmark::default(),
            external_ref_hash: None,
            note: String::new(),
        }),
    );
    let answer = list_balances(&s.model, &pb::ListBalancesRequest::default()).unwrap();
    let rice = answer
        .totals
        .iter()
        .find(|t| t.asset_id == "rice-kg")
        .unwrap();
    assert!(rice.in_kind);
    assert_eq!(rice.held_value_vnd, 500 * 20_000);
    assert_eq!(answer.held_value_vnd, 10_000_000);
    let ranking = recognition(&s.model, &pb::GetRecognitionRequest::default()).unwrap();
    assert_eq!(ranking.rows[0].in_kind_value_vnd, 10_000_000);
    assert_eq!(ranking.rows[0].cash_vnd, 0);
}

#[test]
fn pledge_statuses_follow_receipts_cancellations_and_due_dates() {
    let mut s = Script::new();
    let pledge = |id: &str, due: &str| {
        Body::Pledge(Pledge {
            pledge_id: id.into(),
            donor_org_id: "donor-1".into(),
            recipient_org_id: "fund-a".into(),
            asset_id: "VND".into(),
            quantity: 1_000,
            earmark: Earmark::default(),
            due_date: Some(due.into()),
        })
    };
    for (id, due) in [
        ("p-open", "2099-01-01"),
        ("p-partly", "2099-01-01"),
        ("p-full", "2025-01-01"),
        ("p-cancelled", "2099-01-01"),
        ("p-late", "2025-05-31"),
    ] {
        s.apply("fund-a", pledge(id, due));
    }
    let receipt = |id: &str, pledge: &str, quantity| {
        Body::Receipt(Receipt {
            receipt_id: id.into(),
            donor_org_id: "donor-1".into(),
            pledge_id: Some(pledge.into()),
            asset_id: "VND".into(),
            quantity,
            earmark: Earmark::default(),
            external_ref_hash: None,
            note: String::new(),
        })
    };
    s.apply("fund-a", receipt("r1", "p-partly", 400));
    s.apply("fund-a", receipt("r2", "p-full", 1_000));
    s.apply("fund-a", receipt("r3", "p-late", 100));
    s.apply(
        "fund-a",
        Body::CancelPledge(CancelPledge {
            pledge_id: "p-cancelled".into(),
            reason: "company closed".into(),
        }),
    );
    // "Today" is the Vietnamese date of the latest entry: 2025-06-01.
    let answer = list_pledges(&s.model, &pb::ListPledgesRequest::default()).unwrap();
    let status: Vec<(&str, i32, u64)> = answer
        .pledges
        .iter()
        .map(|p| (p.pledge_id.as_str(), p.status, p.received))
        .collect();
    use pb::PledgeStatus as P;
    assert_eq!(
        status,
        vec![
            ("p-open", P::Open as i32, 0),
            ("p-partly", P::PartlyReceived as i32, 400),
            ("p-full", P::Fulfilled as i32, 1_000),
            ("p-cancelled", P::Cancelled as i32, 0),
            ("p-late", P::Overdue as i32, 100),
        ]
    );
    let overdue = list_pledges(
        &s.model,
        &pb::ListPledgesRequest {
            status: P::Overdue as i32,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(overdue.pledges.len(), 1);
    // Per donor: four live pledges of 1,000, of which 1,500 received.
    let donor = &answer.by_donor[0];
    assert_eq!(
        (
            donor.pledges,
            donor.pledged_value_vnd,
            donor.received_value_vnd
        ),
        (4, 4_000, 1_500)
    );
    // Reversing a receipt takes it off its pledge again.
    let r2 = s.model.receipts.get("r2").unwrap().event_id.to_string();
    s.reverse("fund-a", &r2);
    let again = list_pledges(&s.model, &pb::ListPledgesRequest::default()).unwrap();
    assert_eq!(again.pledges[2].status, P::Overdue as i32);
}

#[test]
fn trace_follows_two_transfer_hops_with_partial_deliveries() {
    let mut s = Script::new();
    s.receipt("fund-a", "r1", "donor-1", 500);
    s.receipt("fund-a", "r2", "donor-2", 500);
    // FIFO: t1 takes all of r1, then 200 of r2.
    s.transfer("fund-a", "t1", "office-b", 700);
    s.received("office-b", "t1", 700);
    // B's pool: r1 500, r2 200. t2 takes 400 of r1.
    s.transfer("office-b", "t2", "school-c", 400);
    // 50 lost on the way: the loss falls on the last part (r1's only part).
    s.received("school-c", "t2", 350);
    s.deliver("school-c", "d-school", "22783", 200);
    // B's pool now: r1 100, r2 200. A 250 delivery takes r1 100, r2 150.
    s.deliver("office-b", "d-office", "22786", 250);

    let r1 = trace(&s.model, "r1");
    assert_eq!(
        flows(&r1),
        vec![
            (TRANSFER, "t1", 500, 500, 0),
            (TRANSFER, "t2", 400, 350, 1),
            (DELIVERY, "d-school", 200, 0, 2),
            (DELIVERY, "d-office", 100, 0, 1),
        ]
    );
    assert_eq!(
        (r1.delivered, r1.lost, r1.in_transit, r1.held),
        (300, 50, 0, 150)
    );
    assert_eq!(r1.held_by.len(), 1);
    assert_eq!(
        (r1.held_by[0].org_id.as_str(), r1.held_by[0].held),
        ("school-c", 150)
    );

    let r2 = trace(&s.model, "r2");
    assert_eq!(
        flows(&r2),
        vec![
            (TRANSFER, "t1", 200, 200, 0),
            (DELIVERY, "d-office", 150, 0, 1)
        ]
    );
    assert_eq!((r2.delivered, r2.held), (150, 350));
    let held: Vec<(&str, u64)> = r2
        .held_by
        .iter()
        .map(|b| (b.org_id.as_str(), b.held))
        .collect();
    assert_eq!(held, vec![("fund-a", 300), ("office-b", 50)]);
    // The anonymous donor's name is not given out.
    let receipt = r2.receipt.unwrap();
    assert!(receipt.donor_anonymous);
    assert_eq!(receipt.donor_name, "");

    let funded = trace_delivery(
        &s.model,
        &pb::TraceDeliveryRequest {
            delivery_id: "d-office".into(),
        },
    )
    .unwrap();
    let funded: Vec<(&str, u64)> = funded
        .funded_by
        .iter()
        .map(|f| (f.receipt.as_ref().unwrap().receipt_id.as_str(), f.quantity))
        .collect();
    assert_eq!(funded, vec![("r1", 100), ("r2", 150)]);

    // By bank reference hash: r1 and r2 have the same made-up hash (as
    // when a receipt is re-entered under the same reference): the latest
    // receipt still standing answers.
    let by_ref = |model: &Model| {
        trace_receipt(
            model,
            &pb::TraceReceiptRequest {
                key: Some(pb::trace_receipt_request::Key::ExternalRefHash(
                    vec![2; 32].into(),
                )),
            },
        )
        .unwrap()
        .receipt
        .unwrap()
        .receipt_id
    };
    assert_eq!(by_ref(&s.model), "r2");
    s.receipt("fund-a", "r-topup", "donor-2", 350);
    let r2_event = s.model.receipts.get("r2").unwrap().event_id.to_string();
    s.reverse("fund-a", &r2_event);
    assert_eq!(by_ref(&s.model), "r1");
}

#[test]
fn reversals_put_units_back_in_fifo_order_and_withdraw_spent_receipts() {
    let mut s = Script::new();
    s.receipt("fund-a", "r1", "donor-1", 100);
    s.receipt("fund-a", "r2", "donor-1", 100);
    let d1 = s.deliver("fund-a", "d1", "22783", 150);
    // The reversed delivery's units go back to the front: r1 100, r2 50,
    // then r2's remaining 50.
    s.reverse("fund-a", &d1);
    assert_eq!(balance(&s.model, "fund-a"), 200);
    assert_eq!(trace(&s.model, "r1").delivered, 0);
    s.deliver("fund-a", "d2", "22783", 120);
    assert_eq!(trace(&s.model, "r1").delivered, 100);
    assert_eq!(trace(&s.model, "r2").delivered, 20);
    // Pool: r2 80, then r3 100. Reversing r1, all spent: its 100 are
    // withdrawn from the newest units in the pool: 100 of r3.
    s.receipt("fund-a", "r3", "donor-2", 100);
    let r1_event = s.model.receipts.get("r1").unwrap().event_id.to_string();
    s.reverse("fund-a", &r1_event);
    assert_eq!(balance(&s.model, "fund-a"), 80);
    let r3 = trace(&s.model, "r3");
    assert_eq!((r3.delivered, r3.withdrawn, r3.held), (0, 100, 0));
    assert_eq!(r3.flows[0].kind, pb::FlowKind::Withdrawn as i32);
    assert_eq!(r3.flows[0].to, "r1");
    let r2 = trace(&s.model, "r2");
    assert_eq!((r2.delivered, r2.withdrawn, r2.held), (20, 0, 80));
    let r1 = trace(&s.model, "r1");
    assert!(r1.receipt.unwrap().reversed);
    assert_eq!((r1.delivered, r1.held, r1.withdrawn), (100, 0, 0));
    // Reversing r3, whose units were all withdrawn already: its own trace
    // still adds up to its quantity, nothing counted twice.
    s.receipt("fund-a", "r4", "donor-2", 100);
    let r3_event = s.model.receipts.get("r3").unwrap().event_id.to_string();
    s.reverse("fund-a", &r3_event);
    let r3 = trace(&s.model, "r3");
    assert_eq!((r3.delivered, r3.held, r3.withdrawn), (0, 0, 100));
    for id in ["r1", "r2", "r3", "r4"] {
        let t = trace(&s.model, id);
        let quantity = t
            .receipt
            .as_ref()
            .unwrap()
            .amount
            .as_ref()
            .unwrap()
            .quantity;
        assert_eq!(
            t.delivered + t.in_transit + t.lost + t.held + t.withdrawn,
            quantity,
            "{id}: {t:?}"
        );
    }
}

#[test]
fn commune_view_sets_needs_against_deliveries() {
    let mut s = Script::new();
    s.need("n1", "22783", 1_000);
    s.need("n2", "22783", 500);
    s.receipt("fund-a", "r1", "donor-1", 800);
    s.receipt("fund-a", "r2", "donor-2", 800);
    s.deliver("fund-a", "d1", "22783", 600);
    s.deliver("fund-a", "d2", "22783", 600);
    s.transfer("fund-a", "t-out", "office-b", 100);
    let view = get_commune(
        &s.model,
        &pb::GetCommuneRequest {
            commune_code: "22783".into(),
            year: 2025,
        },
    )
    .unwrap();
    let summary = view.summary.unwrap();
    assert_eq!(summary.needed_value_vnd, 1_500);
    assert_eq!(summary.delivered_value_vnd, 1_200);
    assert_eq!(
        (summary.children_targeted, summary.children_reached),
        (100, 20)
    );
    assert_eq!(view.categories.len(), 1);
    assert_eq!(view.categories[0].category, pb::Category::Nutrition as i32);
    // 1,200 delivered covers n1 (1,000) then 200 of n2.
    let uncovered: Vec<(&str, u64)> = view
        .needs
        .iter()
        .map(|n| (n.need_id.as_str(), n.uncovered_value_vnd))
        .collect();
    assert_eq!(uncovered, vec![("n1", 0), ("n2", 300)]);
    assert_eq!(view.uncovered_needs.len(), 1);
    // FIFO: d1 is r1's 600, d2 is r1's 200 and r2's 400.
    let donors: Vec<(&str, u64, bool)> = view
        .donors
        .iter()
        .map(|d| (d.org_id.as_str(), d.value_vnd, d.anonymous))
        .collect();
    assert_eq!(
        donors,
        vec![("donor-1", 800, false), ("donor-2", 400, true)]
    );
    assert_eq!(view.recent_deliveries[0].delivery_id, "d2");
    // Another year shows nothing delivered.
    let other = get_commune(
        &s.model,
        &pb::GetCommuneRequest {
            commune_code: "22783".into(),
            year: 2024,
        },
    )
    .unwrap();
    assert_eq!(other.summary.unwrap().deliveries, 0);
    assert!(matches!(
        get_commune(
            &s.model,
            &pb::GetCommuneRequest {
                commune_code: "99999".into(),
                year: 0
            }
        ),
        Err(QueryError::NotFound(_))
    ));
}

#[test]
fn commune_funds_held_and_in_transit_follow_the_earmark() {
    let mut s = Script::new();
    let earmark = Earmark {
        commune_code: Some("22786".into()),
        category: None,
    };
    s.apply(
        "fund-a",
        Body::Receipt(Receipt {
            receipt_id: "r-earmarked".into(),
            donor_org_id: "donor-1".into(),
            pledge_id: None,
            asset_id: "VND".into(),
            quantity: 900,
            earmark: earmark.clone(),
            external_ref_hash: None,
            note: String::new(),
        }),
    );
    s.apply(
        "fund-a",
        Body::Transfer(Transfer {
            transfer_id: "t".into(),
            to_org_id: "office-b".into(),
            asset_id: "VND".into(),
            quantity: 400,
            earmark,
            note: String::new(),
        }),
    );
    let view = get_commune(
        &s.model,
        &pb::GetCommuneRequest {
            commune_code: "22786".into(),
            year: 0,
        },
    )
    .unwrap();
    assert_eq!(view.funds_held[0].quantity, 500);
    assert_eq!(view.funds_in_transit[0].quantity, 400);
}

#[test]
fn plan_progress_counts_matching_deliveries_of_the_plan_in_force() {
    let mut s = Script::new();
    let target = |commune: Option<&str>, quantity| PlanTarget {
        category: Category::Nutrition,
        commune_code: commune.map(Into::into),
        asset_id: "VND".into(),
        quantity,
        children_targeted: 100,
    };
    let old = s.apply(
        "ubnd",
        Body::PublishPlan(PublishAnnualPlan {
            year: 2025,
            targets: vec![target(Some("22783"), 5)],
        }),
    );
    let plan = s.apply(
        "ubnd",
        Body::PublishPlan(PublishAnnualPlan {
            year: 2025,
            targets: vec![target(Some("22783"), 1_000), target(None, 2_000)],
        }),
    );
    s.receipt("fund-a", "r1", "donor-1", 5_000);
    s.deliver("fund-a", "d1", "22783", 300);
    s.deliver("fund-a", "d2", "22786", 200);
    s.deliver_with(
        "fund-a",
        "d3",
        "22783",
        Category::Health,
        "2025-07",
        999,
        &[],
    );
    s.deliver_with(
        "fund-a",
        "d4",
        "22783",
        Category::Nutrition,
        "2024-12",
        999,
        &[],
    );
    // Reversed: counted in no target.
    let reversed = s.deliver("fund-a", "d5", "22783", 77);
    s.reverse("fund-a", &reversed);
    let progress = plan_progress(
        &s.model,
        &pb::GetPlanProgressRequest {
            year: 2025,
            page: None,
        },
    )
    .unwrap();
    assert_eq!(progress.plan_event_id, plan);
    let rows: Vec<(&str, u64, u64, u32, u32)> = progress
        .rows
        .iter()
        .map(|r| {
            (
                r.commune_code.as_str(),
                r.target_quantity,
                r.delivered_quantity,
                r.children_reached,
                r.progress_bp,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("22783", 1_000, 300, 10, 3_000),
            ("", 2_000, 500, 20, 2_500)
        ]
    );
    assert_aggregates_rebuild_alike(&mut s.model);
    // Withdrawing the plan in force puts the previous one back in force:
    // it is now the latest plan not withdrawn.
    s.reverse("ubnd", &plan);
    let progress = plan_progress(
        &s.model,
        &pb::GetPlanProgressRequest {
            year: 2025,
            page: None,
        },
    )
    .unwrap();
    assert_eq!(progress.plan_event_id, old);
}

#[test]
fn overlap_findings_of_each_kind_name_their_events() {
    let mut s = Script::new();
    s.receipt("fund-a", "r1", "donor-1", 10_000);
    s.receipt("office-b", "r2", "donor-1", 10_000);
    s.need("n1", "22783", 1_000);
    let token = [7; 32];
    let d1 = s.deliver_with(
        "fund-a",
        "d1",
        "22783",
        Category::Nutrition,
        "2025-03",
        600,
        &[token],
    );
    let d2 = s.deliver_with(
        "office-b",
        "d2",
        "22783",
        Category::Nutrition,
        "2025-03",
        600,
        &[token],
    );
    // Same token, other category: no beneficiary finding for it.
    s.deliver_with(
        "office-b",
        "d3",
        "22786",
        Category::Health,
        "2025-04",
        10,
        &[token],
    );
    // Same organisation twice in one month: not an overlap between agencies.
    s.deliver_with(
        "fund-a",
        "d4",
        "22786",
        Category::Health,
        "2025-05",
        10,
        &[],
    );
    s.deliver_with(
        "fund-a",
        "d5",
        "22786",
        Category::Health,
        "2025-05",
        10,
        &[],
    );

    let answer = list_overlaps(&s.model, &pb::ListOverlapsRequest::default(), 10).unwrap();
    let kinds: Vec<i32> = answer.findings.iter().map(|f| f.kind).collect();
    use pb::OverlapKind as K;
    assert_eq!(
        kinds,
        vec![
            K::SameBeneficiary as i32,
            K::ExceedsNeed as i32,
            K::SameMonth as i32
        ]
    );
    let same = &answer.findings[0];
    assert_eq!(same.org_ids, vec!["fund-a", "office-b"]);
    assert_eq!(same.event_ids, vec![d1.clone(), d2.clone()]);
    assert_eq!(same.beneficiary_label.len(), 8);
    let exceeds = &answer.findings[1];
    assert_eq!(
        (exceeds.needed_value_vnd, exceeds.delivered_value_vnd),
        (1_000, 1_200)
    );
    assert_eq!(exceeds.event_ids.len(), 3, "the need and both deliveries");
    let month = &answer.findings[2];
    assert_eq!(month.period, "2025-03");
    assert_eq!(month.event_ids, vec![d1, d2]);
    // 1,200 is within a 25% tolerance of 1,000.
    let tolerant = list_overlaps(
        &s.model,
        &pb::ListOverlapsRequest {
            excess_percent: 25,
            ..Default::default()
        },
        10,
    )
    .unwrap();
    assert!(
        tolerant
            .findings
            .iter()
            .all(|f| f.kind != K::ExceedsNeed as i32)
    );
}

/// Every event behind a finding, read through the events query `size` at
/// a time.
fn every_overlap_event(model: &Model, finding_id: &str, size: u32) -> (Vec<u64>, u64) {
    let mut seqs = Vec::new();
    let mut token = String::new();
    loop {
        let page = list_overlap_events(
            model,
            &pb::ListOverlapEventsRequest {
                finding_id: finding_id.to_owned(),
                page: Some(pb::Page {
                    page_size: size,
                    page_token: token.clone(),
                }),
            },
        )
        .unwrap();
        assert!(page.events.len() <= size as usize);
        seqs.extend(page.events.iter().map(|e| e.seq));
        if page.next_page_token.is_empty() {
            return (seqs, page.events_total);
        }
        token = page.next_page_token;
    }
}

#[test]
fn overlap_findings_come_in_pages_and_list_every_event_on_demand() {
    use pb::OverlapKind as K;
    let mut s = Script::new();
    s.receipt("fund-a", "r1", "donor-1", 1_000_000);
    s.receipt("office-b", "r2", "donor-1", 1_000_000);
    let need_event = s.need("n1", "22783", 100);
    let tokens = [[1; 32], [2; 32], [3; 32]];
    let mut delivered: Vec<(String, u64)> = Vec::new();
    for i in 0..30 {
        let by = if i % 2 == 0 { "fund-a" } else { "office-b" };
        let id = format!("d{i}");
        let event = s.deliver_with(
            by,
            &id,
            "22783",
            Category::Nutrition,
            "2025-03",
            10,
            &[tokens[i % 3]],
        );
        delivered.push((event, s.model.deliveries.get(id.as_str()).unwrap().seq));
        // The first child, in another category too, by one organisation:
        // in the child's list between the finding's events, in no finding.
        if i % 5 == 0 {
            s.deliver_with(
                "fund-a",
                &format!("h{i}"),
                "22783",
                Category::Health,
                "2025-03",
                10,
                &[tokens[0]],
            );
        }
    }
    // A second month with both organisations: a second month finding.
    s.deliver_with(
        "fund-a",
        "e1",
        "22786",
        Category::Health,
        "2025-04",
        10,
        &[],
    );
    s.deliver_with(
        "office-b",
        "e2",
        "22786",
        Category::Health,
        "2025-04",
        10,
        &[],
    );
    let all_seqs: Vec<u64> = delivered.iter().map(|(_, seq)| *seq).collect();

    let whole = list_overlaps(
        &s.model,
        &pb::ListOverlapsRequest {
            page: Some(pb::Page {
                page_size: 1000,
                page_token: String::new(),
            }),
            ..Default::default()
        },
        0,
    )
    .unwrap();
    let kinds: Vec<i32> = whole.findings.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            K::SameBeneficiary,
            K::SameBeneficiary,
            K::SameBeneficiary,
            K::ExceedsNeed,
            K::SameMonth,
            K::SameMonth
        ]
        .map(|k| k as i32)
    );
    let ids: Vec<&str> = whole
        .findings
        .iter()
        .map(|f| f.finding_id.as_str())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");

    // Paged one finding at a time, the list is the same.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = list_overlaps(
            &s.model,
            &pb::ListOverlapsRequest {
                page: Some(pb::Page {
                    page_size: 1,
                    page_token: token.clone(),
                }),
                ..Default::default()
            },
            0,
        )
        .unwrap();
        paged.extend(page.findings);
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(
            page.next_page_token
                .ends_with(&paged.last().unwrap().finding_id),
            "the cursor is the last finding's id"
        );
        token = page.next_page_token;
    }
    assert_eq!(paged, whole.findings);

    // A finding carries its first events and their number; the events
    // query lists them all, in log order, whatever the page size.
    let need_seq = s
        .model
        .needs
        .values_any_order()
        .find(|n| n.event_id.to_string() == need_event)
        .unwrap()
        .seq;
    let by_token = |t: usize| -> Vec<u64> {
        all_seqs
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == t)
            .map(|(_, seq)| *seq)
            .collect()
    };
    // Beneficiary findings come in the order of their tokens' tags.
    let mut by_tag = [0, 1, 2];
    by_tag.sort_by_key(|t| crate::aggregates::finding_tag(2025, Category::Nutrition, &tokens[*t]));
    let expected: Vec<Vec<u64>> = vec![
        by_token(by_tag[0]),
        by_token(by_tag[1]),
        by_token(by_tag[2]),
        std::iter::once(need_seq)
            .chain(all_seqs.iter().copied())
            .collect(),
        all_seqs.clone(),
    ];
    for (finding, expected) in whole.findings.iter().zip(&expected) {
        assert_eq!(
            finding.events_total,
            expected.len() as u64,
            "{}",
            finding.finding_id
        );
        let shown = expected.len().min(crate::read::FINDING_EVENTS_SHOWN);
        assert_eq!(finding.seqs, expected[..shown], "{}", finding.finding_id);
        assert_eq!(finding.event_ids.len(), shown);
        for size in [1, 7, 1000] {
            let (listed, total) = every_overlap_event(&s.model, &finding.finding_id, size);
            assert_eq!(&listed, expected, "{} by {size}", finding.finding_id);
            assert_eq!(total, expected.len() as u64);
        }
    }
    let month = &whole.findings[4];
    assert_eq!(month.period, "2025-03");
    assert_eq!(month.org_ids, vec!["fund-a", "office-b"]);
    assert_eq!(
        month.event_ids[..2],
        [delivered[0].0.clone(), delivered[1].0.clone()]
    );

    // A reversed delivery leaves the counts and the lists.
    s.reverse("fund-a", &delivered[4].0);
    let (listed, total) = every_overlap_event(&s.model, &month.finding_id, 7);
    assert_eq!(total, 29);
    assert!(!listed.contains(&delivered[4].1));
    assert_eq!(listed.len(), 29);
    let after = list_overlaps(&s.model, &pb::ListOverlapsRequest::default(), 0).unwrap();
    assert_eq!(after.findings[4].events_total, 29);
    let child = after
        .findings
        .iter()
        .position(|f| {
            f.finding_id == whole.findings[by_tag.iter().position(|t| *t == 1).unwrap()].finding_id
        })
        .expect("the second child's finding stays");
    let expected_child: Vec<u64> = by_token(1)
        .into_iter()
        .filter(|seq| *seq != delivered[4].1)
        .collect();
    assert_eq!(after.findings[child].events_total, 9);
    for size in [1, 4, 1000] {
        let (listed, total) =
            every_overlap_event(&s.model, &after.findings[child].finding_id, size);
        assert_eq!(listed, expected_child, "by {size}");
        assert_eq!(total, 9);
    }
    assert_eq!(
        after.findings[3].events_total, 30,
        "the need and 29 deliveries"
    );

    // Ids that are not findings' are refused, each with its reason.
    for bad in [
        "",
        "x",
        "3,2025,22783,01,2025-03",
        "1,0000002025,zz,01",
        "3,0000002025,22783,99,2025-03",
        "3,0000002024,22783,01,2025-03",
    ] {
        let refused = list_overlap_events(
            &s.model,
            &pb::ListOverlapEventsRequest {
                finding_id: bad.to_owned(),
                page: None,
            },
        );
        assert!(
            matches!(refused, Err(QueryError::InvalidArgument(_))),
            "{bad:?}: {refused:?}"
        );
    }
    for absent in [
        "3,0000002025,99999,01,2025-03",
        "3,0000002025,22783,01,2025-09",
        "1,0000002025,09090909090909090909090909090909,01",
    ] {
        let refused = list_overlap_events(
            &s.model,
            &pb::ListOverlapEventsRequest {
                finding_id: absent.to_owned(),
                page: None,
            },
        );
        assert!(
            matches!(refused, Err(QueryError::NotFound(_))),
            "{absent:?}: {refused:?}"
        );
    }
    // One spelling per finding: others are refused, not echoed back.
    let beneficiary = &whole.findings[0].finding_id;
    for other in [
        beneficiary.to_uppercase(),
        beneficiary.replacen("0000002025", "+000002025", 1),
        month.finding_id.replacen(",01,", ",1,", 1),
    ] {
        let refused = list_overlap_events(
            &s.model,
            &pb::ListOverlapEventsRequest {
                finding_id: other.clone(),
                page: None,
            },
        );
        assert!(
            matches!(refused, Err(QueryError::InvalidArgument(_))),
            "{other:?}: {refused:?}"
        );
    }
    // A year filter and a cursor past the beneficiary findings.
    let year = |year: u32, page_token: String| {
        list_overlaps(
            &s.model,
            &pb::ListOverlapsRequest {
                year,
                page: Some(pb::Page {
                    page_size: 1000,
                    page_token,
                }),
                ..Default::default()
            },
            0,
        )
        .unwrap()
    };
    assert!(year(2024, String::new()).findings.is_empty());
    assert_eq!(
        year(2025, String::new()).findings.len(),
        after.findings.len()
    );
    let first_page = list_overlaps(
        &s.model,
        &pb::ListOverlapsRequest {
            page: Some(pb::Page {
                page_size: 4,
                page_token: String::new(),
            }),
            ..Default::default()
        },
        0,
    )
    .unwrap();
    assert_eq!(first_page.findings[3].kind, K::ExceedsNeed as i32);
    let rest = year(2025, first_page.next_page_token);
    assert_eq!(rest.findings, after.findings[4..]);
    let bad_token = list_overlap_events(
        &s.model,
        &pb::ListOverlapEventsRequest {
            finding_id: month.finding_id.clone(),
            page: Some(pb::Page {
                page_size: 5,
                page_token: "soon".into(),
            }),
        },
    );
    assert!(matches!(bad_token, Err(QueryError::InvalidArgument(_))));
    // Reversing the first and the last of a child's group moves the
    // stretch its events are read from, in the fold as in a rebuild.
    s.reverse("office-b", &delivered[1].0);
    s.reverse("fund-a", &delivered[28].0);
    let expected_child: Vec<u64> = expected_child
        .into_iter()
        .filter(|seq| *seq != delivered[1].1 && *seq != delivered[28].1)
        .collect();
    let groups: Vec<_> = (s.model.aggregates.tokens.iter())
        .filter(|((token, _, _), _)| *token == tokens[1])
        .map(|(_, group)| group)
        .collect();
    let [group] = groups[..] else {
        panic!("the child has one group: {groups:?}")
    };
    assert_eq!(
        (group.live, group.first_seq, group.last_seq),
        (7, delivered[7].1, delivered[25].1)
    );
    for size in [1, 3, 1000] {
        let (listed, total) =
            every_overlap_event(&s.model, &after.findings[child].finding_id, size);
        assert_eq!(listed, expected_child, "by {size}");
        assert_eq!(total, 7);
    }
    assert_aggregates_rebuild_alike(&mut s.model);
}

#[test]
fn recognition_ranks_donors_and_counts_what_reached_children() {
    let mut s = Script::new();
    s.receipt("fund-a", "r1", "donor-1", 1_000);
    s.receipt("fund-a", "r2", "donor-2", 3_000);
    s.deliver("fund-a", "d1", "22783", 1_500);
    s.apply(
        "ubnd",
        Body::Commendation(Commendation {
            honoree_org_id: "donor-1".into(),
            year: 2025,
            decision_ref: "QĐ 123/QĐ-UBND".into(),
            reason: "Đóng góp bữa ăn".into(),
        }),
    );
    let answer = recognition(
        &s.model,
        &pb::GetRecognitionRequest {
            year: 2025,
            page: None,
        },
    )
    .unwrap();
    let rows: Vec<(u32, &str, u64, u64, u32)> = answer
        .rows
        .iter()
        .map(|r| {
            (
                r.rank,
                r.org_id.as_str(),
                r.total_value_vnd,
                r.delivered_value_vnd,
                r.delivered_share_bp,
            )
        })
        .collect();
    // FIFO: the delivery took r1's 1,000 then 500 of r2.
    assert_eq!(
        rows,
        vec![
            (1, "donor-2", 3_000, 500, 1_666),
            (2, "donor-1", 1_000, 1_000, 10_000)
        ]
    );
    assert!(answer.rows[0].anonymous);
    assert_eq!(
        answer.rows[1].commendations[0].decision_ref,
        "QĐ 123/QĐ-UBND"
    );
    let other_year = recognition(
        &s.model,
        &pb::GetRecognitionRequest {
            year: 2024,
            page: None,
        },
    )
    .unwrap();
    assert!(other_year.rows.is_empty());
}

#[test]
fn pages_cover_every_row_once_and_bad_tokens_are_refused() {
    let mut s = Script::new();
    for i in 0..25 {
        s.receipt("fund-a", &format!("r{i:02}"), "donor-1", 10);
        s.deliver("fund-a", &format!("d{i:02}"), "22783", 10);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list_deliveries(
            &s.model,
            &pb::ListDeliveriesRequest {
                page: Some(pb::Page {
                    page_size: 10,
                    page_token: token.clone(),
                }),
                ..Default::default()
            },
        )
        .unwrap();
        seen.extend(page.deliveries.into_iter().map(|d| d.delivery_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = (0..25).map(|i| format!("d{i:02}")).collect();
    assert_eq!(seen, expected);
    let bad = list_deliveries(
        &s.model,
        &pb::ListDeliveriesRequest {
            page: Some(pb::Page {
                page_size: 10,
                page_token: "x".into(),
            }),
            ..Default::default()
        },
    );
    assert!(matches!(bad, Err(QueryError::InvalidArgument(_))));
}

#[test]
fn a_cursor_resumes_after_its_row_when_rows_are_added_before_it() {
    use crate::read::{OrganizationsQuery, PageRequest};
    let mut s = Script::new();
    let page = |model: &Model, after| {
        crate::queries::organizations(
            model,
            &OrganizationsQuery {
                page: PageRequest {
                    size: Some(2),
                    after,
                },
                kind: None,
            },
        )
        .page
    };
    let first = page(&s.model, None);
    let mut seen: Vec<String> = first.rows.into_iter().map(|o| o.org_id).collect();
    assert_eq!(seen, ["donor-1", "donor-2"]);
    // Between two calls, one organisation sorts before the cursor and one
    // after: an offset would repeat "donor-2"; the cursor does not.
    for org in ["a-first", "zz-last"] {
        s.apply(
            "ubnd",
            Body::RegisterOrg(RegisterOrganization {
                org_id: org.into(),
                name: OrgName::Public(org.into()),
                kind: OrgKind::Agency,
                parent_org_id: None,
                commune_code: None,
            }),
        );
    }
    let mut after = first.next;
    while let Some(cursor) = after {
        let next = page(&s.model, Some(cursor));
        seen.extend(next.rows.into_iter().map(|o| o.org_id));
        after = next.next;
    }
    assert_eq!(
        seen,
        [
            "donor-1", "donor-2", "fund-a", "office-b", "school-c", "ubnd", "zz-last"
        ]
    );
}

#[test]
fn an_event_the_model_cannot_take_is_an_error_naming_its_seq() {
    let mut s = Script::new();
    let seq = s.model.position.size;
    let event = Event {
        event_id: "00000000-0000-4000-8000-999999999999".into(),
        org_id: "fund-a".into(),
        occurred_at: Timestamp::from_seconds(JUNE_2025),
        body: Body::Transfer(Transfer {
            transfer_id: "t".into(),
            to_org_id: "office-b".into(),
            asset_id: "VND".into(),
            quantity: 1,
            earmark: Earmark::default(),
            note: String::new(),
        }),
    };
    let error = s
        .model
        .apply(seq, Timestamp::from_seconds(JUNE_2025), event)
        .unwrap_err();
    assert_eq!(error.seq, seq);
    assert!(error.detail.contains("holds 0"), "{error}");
}

/// The list of receipts (for exports and the analytics copy) shows each
/// receipt exactly as its trace does, inspections included, in log order.
#[test]
fn the_receipt_list_agrees_with_each_receipts_trace() {
    use crate::queries;
    use crate::read::{PageRequest, ReceiptKey, ReceiptsQuery};
    let mut s = Script::new();
    s.receipt("fund-a", "r-1", "donor-1", 500);
    s.receipt("fund-a", "r-2", "donor-2", 300);
    s.receipt("office-b", "r-3", "donor-1", 200);
    for (subject, passed) in [("r-1", true), ("r-3", false), ("r-1", false)] {
        s.apply(
            "office-b",
            Body::Inspection(GoodsInspection {
                subject_id: subject.into(),
                passed,
                standard: "TCVN".into(),
                note: String::new(),
            }),
        );
    }
    let all = queries::receipts(
        &s.model,
        &ReceiptsQuery {
            page: PageRequest::rest(None),
            ..Default::default()
        },
    );
    let ids: Vec<&str> = all
        .page
        .rows
        .iter()
        .map(|r| r.receipt_id.as_str())
        .collect();
    assert_eq!(ids, ["r-1", "r-2", "r-3"]);
    for row in &all.page.rows {
        let traced = queries::trace_receipt(&s.model, &ReceiptKey::Id(row.receipt_id.clone()))
            .unwrap()
            .receipt;
        assert_eq!(*row, traced);
    }
    assert_eq!(all.page.rows[0].inspections.len(), 2);
    assert_eq!(all.page.rows[1].donor_name, None, "donor-2 is hidden");
    let by_donor = queries::receipts(
        &s.model,
        &ReceiptsQuery {
            page: PageRequest::rest(None),
            donor_org_id: Some("donor-1".into()),
            recipient_org_id: None,
        },
    );
    let ids: Vec<&str> = by_donor
        .page
        .rows
        .iter()
        .map(|r| r.receipt_id.as_str())
        .collect();
    assert_eq!(ids, ["r-1", "r-3"]);
}

/// The cited checkpoint only moves forward, whichever thread verifies
/// first; the same size again takes the newer note.
#[test]
fn the_cited_checkpoint_only_moves_forward() {
    use crate::model::{Position, VerifiedCheckpoint};
    let checkpoint = |size: u64, note: &str| VerifiedCheckpoint {
        note: note.into(),
        size,
        root: [size as u8; 32],
    };
    let mut position = Position::default();
    position.cite(checkpoint(10, "ten"));
    position.cite(checkpoint(4, "four"));
    assert_eq!(position.checkpoint.as_ref().map(|c| c.size), Some(10));
    position.cite(checkpoint(10, "ten, cosigned"));
    assert_eq!(
        position.checkpoint.as_ref().map(|c| c.note.as_str()),
        Some("ten, cosigned")
    );
    position.cite(checkpoint(12, "twelve"));
    assert_eq!(position.checkpoint.map(|c| c.size), Some(12));
}

/// The regression guard for commits: a commit after N more events writes
/// bytes in proportion to N, not to the log. The same number of events,
/// applied after a log nine times longer, must cost a commit about the same;
/// a row that grows with the log (a commune's deliveries, a pool's lots, a
/// receipt's flows), rewritten whole, would make it grow with the log.
#[test]
fn a_commit_after_n_events_writes_bytes_in_n_not_in_the_log_size() {
    use std::collections::BTreeMap;

    use aidledger_ledger::decode::decode_event;
    use aidledger_programme::{DemoConfig, Programme};

    use crate::store::ProjectionStore;

    const WINDOW: usize = 200;
    let mut programme = Programme::new(DemoConfig {
        seed: 16,
        origin: "test.example/log".into(),
        log_vkey: "test.example/log+00000000+AQ".into(),
        extra_events: 100_000,
    });
    let mut model = Model::new();
    let mut events = programme.events();
    let mut apply = |model: &mut Model, count: usize| {
        for signed in events.by_ref().take(count) {
            let event = decode_event(signed.event.clone()).unwrap();
            let seq = model.position.size;
            model.apply(seq, event.occurred_at, event).unwrap();
        }
    };
    // The bytes of each table in a commit of the WINDOW events after
    // `before` more.
    let mut commit_after_window = |model: &mut Model, before: usize| {
        apply(model, before);
        ProjectionStore::take_commit(model);
        apply(model, WINDOW);
        let commit = ProjectionStore::take_commit(model);
        let tables: BTreeMap<&str, usize> = commit.bytes_by_table().into_iter().collect();
        (commit.bytes(), tables, model.position.size)
    };
    let (early, early_tables, early_size) = commit_after_window(&mut model, 10_000);
    let (late, late_tables, late_size) = commit_after_window(&mut model, 90_000);
    assert!(late_size >= 9 * early_size, "{early_size} then {late_size}");
    eprintln!(
        "a commit of {WINDOW} events: {early} bytes after {early_size} entries, {late} after {late_size}"
    );
    let grew_most = late_tables
        .iter()
        .map(|(name, bytes)| {
            (
                bytes - early_tables.get(name).unwrap_or(&0).min(bytes),
                name,
            )
        })
        .max();
    assert!(
        late as f64 <= early as f64 * 1.25,
        "a commit of {WINDOW} events wrote {early} bytes after {early_size} entries but \
         {late} after {late_size}; grown most (bytes, table): {grew_most:?}"
    );
}

/// A stored row that does not decode fails the load with an error naming
/// its table, whichever of the loading threads meets it.
#[test]
fn a_store_with_an_undecodable_row_is_refused_naming_its_table() {
    use aidledger_ledger::decode::decode_event;
    use aidledger_programme::{DemoConfig, Programme};

    use crate::store::ProjectionStore;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("projections.redb");
    let (store, mut model) = ProjectionStore::open(&path).unwrap();
    let mut programme = Programme::new(DemoConfig {
        seed: 16,
        origin: "test.example/log".into(),
        log_vkey: "test.example/log+00000000+AQ".into(),
        extra_events: 0,
    });
    for (seq, signed) in programme.events().take(2_000).enumerate() {
        let event = decode_event(signed.event.clone()).unwrap();
        model.apply(seq as u64, event.occurred_at, event).unwrap();
    }
    assert!(!model.receipts.is_empty() && !model.deliveries.is_empty());
    store
        .write(ProjectionStore::take_commit(&mut model))
        .unwrap();
    drop(store);
    assert!(
        ProjectionStore::open(&path).is_ok(),
        "as committed, it loads"
    );
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&[u8], &[u8]>::new("receipts"))
            .unwrap()
            // Under a chunk's key, as receipts are stored; the chunk does
            // not decode.
            .insert(7u64.to_be_bytes().as_slice(), b"\xff\xff".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let error = ProjectionStore::open(&path).unwrap_err().to_string();
    assert!(
        error.contains("decoding a row of table receipts"),
        "{error}"
    );
}

/// The indexes that are not stored (reversal targets, receipts by
/// reference, deliveries by seq and by commune) come back from the records
/// at load exactly as the fold built them: a model committed and loaded
/// again has the digest of the model that was never stored, at several
/// points of a programme year with its reversals and withdrawals.
#[test]
fn a_stored_and_loaded_model_equals_the_folded_one_indexes_included() {
    use aidledger_ledger::decode::decode_event;
    use aidledger_programme::{DemoConfig, Programme};

    use crate::store::ProjectionStore;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("projections.redb");
    let mut programme = Programme::new(DemoConfig {
        seed: 16,
        origin: "test.example/log".into(),
        log_vkey: "test.example/log+00000000+AQ".into(),
        extra_events: 6_000,
    });
    let (store, mut model) = ProjectionStore::open(&path).unwrap();
    let mut reversals = 0;
    for (seq, signed) in programme.events().enumerate() {
        let event = decode_event(signed.event.clone()).unwrap();
        reversals += usize::from(matches!(event.body, Body::Reversal(_)));
        model.apply(seq as u64, event.occurred_at, event).unwrap();
        if seq % 2_500 == 0 {
            store
                .write(ProjectionStore::take_commit(&mut model))
                .unwrap();
        }
    }
    store
        .write(ProjectionStore::take_commit(&mut model))
        .unwrap();
    drop(store);
    assert!(reversals > 0, "the stream reverses events");
    assert!(model.targets.len() > 1_000 && model.deliveries_by_commune.total_items() > 100);
    assert!(
        model.receipts_by_ref.len() > 100,
        "receipts carry references"
    );
    let (_, loaded) = ProjectionStore::open(&path).unwrap();
    assert_eq!(loaded.position, model.position);
    assert_eq!(loaded.targets.len(), model.targets.len());
    assert_eq!(loaded.digest(), model.digest());
    // The aggregates the pages read are rebuilt at load too, and the
    // programme gives them every kind of content.
    let aggregates = &model.aggregates;
    assert!(!aggregates.overlapping.is_empty() && !aggregates.donors.is_empty());
    assert!(!aggregates.in_transit_by_commune.is_empty());
    assert!(
        aggregates
            .months
            .values()
            .flat_map(|periods| periods.values())
            .flat_map(|categories| categories.values())
            .any(|scope| scope.orgs.len() > 1)
    );
    assert!(
        loaded.aggregates == model.aggregates,
        "aggregates differ after a load"
    );
    assert_ids_shared(&loaded);
    assert_ids_shared(&model);
    assert_lists_page_in_log_order(&loaded);
    assert_lists_page_in_log_order(&model);
}

/// Lists of receipts, transfers, deliveries and pledges, read page by page
/// from their log-ordered tables (a loaded one ordered at load), give every
/// row once, by seq, as sorting them all would.
fn assert_lists_page_in_log_order(model: &Model) {
    use crate::queries;
    use crate::read::{
        Cursor, DeliveriesQuery, PageRequest, PledgesQuery, ReceiptsQuery, TransfersQuery,
    };

    fn walk(mut page_at: impl FnMut(PageRequest) -> (Vec<u64>, Option<Cursor>)) -> Vec<u64> {
        let mut seqs = Vec::new();
        let mut after = None;
        loop {
            let (rows, next) = page_at(PageRequest {
                size: Some(37),
                after: after.take(),
            });
            assert!(rows.len() <= 37);
            seqs.extend(rows);
            match next {
                Some(cursor) => after = Some(cursor),
                None => return seqs,
            }
        }
    }
    fn all<V>(rows: impl Iterator<Item = V>, seq: impl Fn(V) -> u64) -> Vec<u64> {
        let mut seqs: Vec<u64> = rows.map(seq).collect();
        seqs.sort_unstable();
        seqs
    }
    let receipts = walk(|page| {
        let got = queries::receipts(
            model,
            &ReceiptsQuery {
                page,
                ..Default::default()
            },
        )
        .page;
        (got.rows.iter().map(|r| r.seq).collect(), got.next)
    });
    assert_eq!(receipts, all(model.receipts.values_any_order(), |r| r.seq));
    let transfers = walk(|page| {
        let got = queries::transfers(
            model,
            &TransfersQuery {
                page,
                ..Default::default()
            },
        )
        .page;
        (got.rows.iter().map(|t| t.seq).collect(), got.next)
    });
    assert_eq!(
        transfers,
        all(model.transfers.values_any_order(), |t| t.seq)
    );
    let deliveries = walk(|page| {
        let got = queries::deliveries(
            model,
            &DeliveriesQuery {
                page,
                ..Default::default()
            },
        )
        .page;
        (got.rows.iter().map(|d| d.seq).collect(), got.next)
    });
    assert_eq!(
        deliveries,
        all(model.deliveries.values_any_order(), |d| d.seq)
    );
    let pledges = walk(|page| {
        let got = queries::pledges(
            model,
            &PledgesQuery {
                page,
                ..Default::default()
            },
        )
        .page;
        (got.rows.iter().map(|p| p.seq).collect(), got.next)
    });
    assert_eq!(pledges, all(model.pledges.values_any_order(), |p| p.seq));
    assert!(receipts.len() > 1_000 && transfers.len() > 100 && deliveries.len() > 100);
}

/// Every lot, transfer part, delivery's funding and flow points to the one
/// copy of its receipt's (or transfer's, delivery's) id that keys its row,
/// and records and the asset totals' keys name organisations, assets,
/// communes and periods by one copy each: as the fold leaves them, and as
/// a load must.
fn assert_ids_shared(model: &Model) {
    use crate::id::Id;
    use crate::model::FlowKind;
    use std::collections::HashMap;

    let receipt_key = |id: &Id| model.receipts.get_key_value(id.as_str()).unwrap().0;
    let mut lots = 0;
    for (_, pool) in model.lots.iter_any_order() {
        for lot in pool {
            assert!(lot.receipt_id.is_same_copy(receipt_key(&lot.receipt_id)));
            lots += 1;
        }
    }
    for transfer in model.transfers.values_any_order() {
        for part in &transfer.parts {
            assert!(part.receipt_id.is_same_copy(receipt_key(&part.receipt_id)));
        }
    }
    let mut copies: HashMap<String, Id> = HashMap::new();
    let mut one_copy = |id: &Id| {
        let first = copies.entry(id.to_string()).or_insert_with(|| id.clone());
        assert!(id.is_same_copy(first), "{id} is copied");
    };
    for delivery in model.deliveries.values_any_order() {
        for part in &delivery.funding {
            assert!(part.receipt_id.is_same_copy(receipt_key(&part.receipt_id)));
        }
        for id in [
            &delivery.org_id,
            &delivery.commune_code,
            &delivery.asset_id,
            &delivery.period,
        ] {
            one_copy(id);
        }
    }
    for receipt in model.receipts.values_any_order() {
        for id in [
            &receipt.recipient_org_id,
            &receipt.donor_org_id,
            &receipt.asset_id,
        ] {
            one_copy(id);
        }
    }
    // The totals' keys too, which the fold finds by the records' copies.
    for (_, asset_id, _) in model.asset_totals.iter_positions() {
        one_copy(asset_id);
    }
    let mut flows = 0;
    for (_, list) in model.flows.iter_any_order() {
        for flow in list {
            let key = match flow.kind {
                FlowKind::Transfer => model.transfers.get_key_value(flow.id.as_str()).unwrap().0,
                FlowKind::Delivery => model.deliveries.get_key_value(flow.id.as_str()).unwrap().0,
                FlowKind::Withdrawn => receipt_key(&flow.id),
            };
            assert!(flow.id.is_same_copy(key));
            flows += 1;
        }
    }
    assert!(lots > 0 && flows > 0);
}

/// Rebuilds the aggregates from the records, as a load does, and checks
/// they equal the ones the fold kept.
fn assert_aggregates_rebuild_alike(model: &mut Model) {
    let folded = std::mem::take(&mut model.aggregates);
    model.rebuild_aggregates();
    assert_eq!(model.aggregates, folded);
}

/// The aggregates the pages read (overlap groups, donor standings, commune
/// totals) follow reversals of deliveries and of receipts whose units were
/// already delivered, and equal a rebuild from the records at every step.
/// Reversing a delivery regroups only its year and category: a child's
/// other overlapping group, and that group's finding, stay as they were.
#[test]
fn a_reversal_leaves_a_childs_other_groups_alone() {
    let mut s = Script::new();
    s.receipt("fund-a", "r1", "donor-1", 10_000);
    s.receipt("office-b", "r2", "donor-2", 10_000);
    let child = [7; 32];
    let mut delivered = Vec::new();
    for (by, id, category, period) in [
        ("fund-a", "d1", Category::Nutrition, "2025-03"),
        ("office-b", "d2", Category::Nutrition, "2025-03"),
        ("fund-a", "d3", Category::Health, "2024-11"),
        ("office-b", "d4", Category::Health, "2024-11"),
    ] {
        delivered.push(s.deliver_with(by, id, "22783", category, period, 100, &[child]));
    }
    let findings = |model: &Model| -> Vec<(u32, Category)> {
        let overlapping = model.aggregates.overlapping.keys();
        overlapping
            .map(|(year, _, category)| (*year, *category))
            .collect()
    };
    assert_eq!(
        findings(&s.model),
        [(2024, Category::Health), (2025, Category::Nutrition)]
    );

    s.reverse("office-b", &delivered[3]);
    assert_eq!(findings(&s.model), [(2025, Category::Nutrition)]);
    let groups = &s.model.aggregates.tokens;
    let nutrition = &groups[&(child, 2025, Category::Nutrition)];
    assert_eq!((nutrition.orgs.len(), nutrition.live), (2, 2));
    let health = &groups[&(child, 2024, Category::Health)];
    assert_eq!((health.orgs.len(), health.live), (1, 1));
    assert_aggregates_rebuild_alike(&mut s.model);

    // The last of a group reversed: the group goes, the other stays.
    s.reverse("fund-a", &delivered[2]);
    assert!(
        !s.model
            .aggregates
            .tokens
            .contains_key(&(child, 2024, Category::Health))
    );
    assert_eq!(findings(&s.model), [(2025, Category::Nutrition)]);
    assert_aggregates_rebuild_alike(&mut s.model);
}

#[test]
fn findings_and_standings_follow_reversals_as_a_rebuild_would() {
    use pb::OverlapKind as K;
    let kinds = |model: &Model| -> Vec<i32> {
        list_overlaps(model, &pb::ListOverlapsRequest::default(), 10)
            .unwrap()
            .findings
            .iter()
            .map(|f| f.kind)
            .collect()
    };
    let standings = |model: &Model| -> Vec<(String, u64, u64, u32)> {
        recognition(model, &pb::GetRecognitionRequest::default())
            .unwrap()
            .rows
            .iter()
            .map(|r| {
                (
                    r.org_id.clone(),
                    r.total_value_vnd,
                    r.delivered_value_vnd,
                    r.receipts,
                )
            })
            .collect()
    };
    let mut s = Script::new();
    let r1 = s.receipt("fund-a", "r1", "donor-1", 10_000);
    s.receipt("office-b", "r2", "donor-2", 10_000);
    s.need("n1", "22783", 1_000);
    let token = [7; 32];
    s.deliver_with(
        "fund-a",
        "d1",
        "22783",
        Category::Nutrition,
        "2025-03",
        600,
        &[token],
    );
    let d2 = s.deliver_with(
        "office-b",
        "d2",
        "22783",
        Category::Nutrition,
        "2025-03",
        600,
        &[token, [8; 32]],
    );
    assert_eq!(
        kinds(&s.model),
        vec![
            K::SameBeneficiary as i32,
            K::ExceedsNeed as i32,
            K::SameMonth as i32
        ]
    );
    assert_eq!(
        standings(&s.model),
        vec![
            ("donor-1".to_owned(), 10_000, 600, 1),
            ("donor-2".to_owned(), 10_000, 600, 1)
        ]
    );
    assert_aggregates_rebuild_alike(&mut s.model);

    // Without d2: one organisation per group, 600 within the need of 1,000.
    s.reverse("office-b", &d2);
    assert_eq!(kinds(&s.model), Vec::<i32>::new());
    assert!(s.model.aggregates.overlapping.is_empty());
    assert_eq!(
        standings(&s.model),
        vec![
            ("donor-1".to_owned(), 10_000, 600, 1),
            ("donor-2".to_owned(), 10_000, 0, 1)
        ]
    );
    let commune = get_commune(
        &s.model,
        &pb::GetCommuneRequest {
            commune_code: "22783".into(),
            year: 0,
        },
    )
    .unwrap();
    let summary = commune.summary.unwrap();
    assert_eq!((summary.deliveries, summary.delivered_value_vnd), (1, 600));
    assert_eq!(commune.donors.len(), 1, "d1 drew on donor-1's r1 alone");
    assert_aggregates_rebuild_alike(&mut s.model);

    // r1 reversed after d1 spent 600 of it: its 9,400 left and 600 of r4,
    // the newest lot, leave fund-a's pool; donor-1 no longer stands.
    s.receipt("fund-a", "r4", "donor-2", 5_000);
    s.reverse("fund-a", &r1);
    assert_eq!(
        standings(&s.model),
        vec![("donor-2".to_owned(), 15_000, 0, 2)]
    );
    assert_aggregates_rebuild_alike(&mut s.model);

    // A second organisation in the same month and token again.
    s.deliver_with(
        "office-b",
        "d5",
        "22783",
        Category::Nutrition,
        "2025-03",
        100,
        &[token],
    );
    assert_eq!(
        kinds(&s.model),
        vec![K::SameBeneficiary as i32, K::SameMonth as i32]
    );
    assert_eq!(s.model.aggregates.overlapping.len(), 1);
    assert_aggregates_rebuild_alike(&mut s.model);

    // The only delivery in 22786 and the only gift earmarked for health,
    // each reversed: no empty total of theirs is left behind.
    let d6 = s.deliver_with(
        "fund-a",
        "d6",
        "22786",
        Category::Health,
        "2025-04",
        50,
        &[[9; 32]],
    );
    s.reverse("fund-a", &d6);
    let r7 = s.apply(
        "office-b",
        Body::Receipt(Receipt {
            receipt_id: "r7".into(),
            donor_org_id: "donor-1".into(),
            pledge_id: None,
            asset_id: "VND".into(),
            quantity: 300,
            earmark: Earmark {
                commune_code: None,
                category: Some(Category::Health),
            },
            external_ref_hash: None,
            note: String::new(),
        }),
    );
    s.reverse("office-b", &r7);
    let aggregates = &s.model.aggregates;
    assert!(!aggregates.communes.contains_key("22786"));
    assert!(!aggregates.commune_donors.contains_key("22786"));
    assert!(
        aggregates
            .raised
            .keys()
            .all(|(_, category)| *category != Some(Category::Health))
    );
    assert_aggregates_rebuild_alike(&mut s.model);

    // Units earmarked for 22783 in transit: one transfer reversed, one
    // received, each leaving transit.
    let for_22783 = Earmark {
        commune_code: Some("22783".into()),
        category: None,
    };
    s.apply(
        "fund-a",
        Body::Receipt(Receipt {
            receipt_id: "r8".into(),
            donor_org_id: "donor-2".into(),
            pledge_id: None,
            asset_id: "VND".into(),
            quantity: 1_000,
            earmark: for_22783.clone(),
            external_ref_hash: None,
            note: String::new(),
        }),
    );
    let send = |s: &mut Script, id: &str, quantity: u64| {
        s.apply(
            "fund-a",
            Body::Transfer(Transfer {
                transfer_id: id.into(),
                to_org_id: "office-b".into(),
                asset_id: "VND".into(),
                quantity,
                earmark: for_22783.clone(),
                note: String::new(),
            }),
        )
    };
    let in_transit = |s: &Script| {
        s.model
            .aggregates
            .in_transit_by_commune
            .get("22783")
            .and_then(|units| units.get("VND").copied())
    };
    let t1 = send(&mut s, "t1", 300);
    send(&mut s, "t2", 200);
    assert_eq!(in_transit(&s), Some(500));
    assert_aggregates_rebuild_alike(&mut s.model);
    s.reverse("fund-a", &t1);
    s.received("office-b", "t2", 200);
    assert_eq!(in_transit(&s), None);
    assert!(
        !s.model
            .aggregates
            .in_transit_by_commune
            .contains_key("22783"),
        "an emptied commune's row goes"
    );
    assert_aggregates_rebuild_alike(&mut s.model);
}

/// A reversal names its target by event id; the fold keys targets by the
/// number the UUID writes, which must be the same for the same id, differ
/// for different ones, and refuse anything but SPEC §7's form.
#[test]
fn event_keys_are_the_numbers_the_uuids_write() {
    use crate::model::event_key;
    let id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    assert_eq!(
        event_key(id),
        Ok(0x0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0_u128)
    );
    assert_ne!(
        event_key(id),
        event_key("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f1")
    );
    for not_canonical in [
        "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0",
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "{0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0}",
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg",
        "",
    ] {
        assert!(event_key(not_canonical).is_err(), "{not_canonical}");
    }
}
