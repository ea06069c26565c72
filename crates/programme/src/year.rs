//! The programme year 2025, day by day: a calendar of stories (the set-up,
//! needs and the annual plan, pledges and institutional gifts, the mistakes
//! and their corrections, the year-end commendations) over a daily routine
//! of individual gifts, transfers down the chain, confirmations and
//! handovers to children.
//!
//! Every day's work is written in an order the ledger accepts: a pool is
//! only spent after the events that fill it.

use aidledger_ledger::Category;
use aidledger_wire::pb;
use rand::Rng;

use crate::books::Mark;
use crate::calendar::Date;
use crate::catalogue::*;
use crate::generator::{
    DELIVERY_CHILDREN_MAX, Generator, Gift, Onward, OrgIx, PledgeTerms, format_vnd,
};

const YEAR_START: Date = Date::new(2025, 1, 2);
const YEAR_END: Date = Date::new(2025, 12, 31);

/// An agency splits an unrestricted pool over at most this many communes per
/// round, so each allocation is large enough to matter.
const ALLOCATION_COMMUNES_MAX: u64 = 4;

/// Out of 100: the chance a holder hands out part of a pool on a given day.
const DELIVERY_DAILY_PERCENT: u32 = 30;

/// Individual gifts per working day in an average month.
const INDIVIDUAL_GIFTS_PER_DAY: f64 = 2.8;

/// Draws for the daily number of individual gifts (a binomial count).
const INDIVIDUAL_GIFT_DRAWS: u32 = 12;

/// Out of 100: how many gifts come from someone who gave before.
const RETURNING_DONOR_PERCENT: u32 = 30;

/// Roughly two in five individuals ask that their name not be published.
const HIDDEN_NAME_PROBABILITY: f64 = 0.4;

const DECISION_REF: &str = "Quyết định số 3127/QĐ-UBND ngày 26/12/2025 của Chủ tịch UBND tỉnh";

/// What an agency checks when goods arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inspection {
    None,
    Passed,
    /// The lot fails; the agency records it and reverses the receipt.
    Failed,
}

/// One pledge and what became of it.
#[derive(Debug)]
struct PledgePlan {
    made_on: Date,
    donor: &'static str,
    recipient: usize,
    asset: Asset,
    quantity: u64,
    commune: Option<&'static str>,
    category: Option<Category>,
    due: Date,
    /// Signed with the donor's own `PLEDGE` key, else recorded by the
    /// recipient for the donor.
    signed_by_donor: bool,
    receipts: &'static [(Date, u64, Inspection)],
    cancelled: Option<(Date, &'static str)>,
}

const fn d(month: u32, day: u32) -> Date {
    Date::new(2025, month, day)
}

const PLEDGES: [PledgePlan; 12] = [
    PledgePlan {
        made_on: d(1, 8),
        donor: "luong-thuc-phan-rang",
        recipient: RED_CROSS,
        asset: Asset::Rice,
        quantity: 6_000,
        commune: None,
        category: Some(Category::Nutrition),
        due: d(3, 31),
        signed_by_donor: true,
        // The first lot fails inspection and goes back; the replacement passes.
        receipts: &[
            (d(2, 17), 6_000, Inspection::Failed),
            (d(3, 4), 6_000, Inspection::Passed),
        ],
        cancelled: None,
    },
    PledgePlan {
        made_on: d(1, 9),
        donor: "nang-luong-nang-gio",
        recipient: FUND,
        asset: Asset::Vnd,
        quantity: 1_200_000_000,
        commune: None,
        category: None,
        due: d(12, 31),
        signed_by_donor: true,
        receipts: &[
            (d(4, 8), 500_000_000, Inspection::None),
            (d(9, 23), 700_000_000, Inspection::None),
        ],
        cancelled: None,
    },
    PledgePlan {
        made_on: d(1, 10),
        donor: "ngan-hang-phuong-nam",
        recipient: FUND,
        asset: Asset::Vnd,
        quantity: 600_000_000,
        commune: None,
        category: Some(Category::Scholarship),
        due: d(9, 5),
        signed_by_donor: true,
        receipts: &[
            (d(5, 13), 250_000_000, Inspection::None),
            (d(8, 19), 350_000_000, Inspection::None),
        ],
        cancelled: None,
    },
    PledgePlan {
        made_on: d(3, 3),
        donor: "sua-dong-xanh",
        recipient: FUND,
        asset: Asset::Milk,
        quantity: 80_000,
        commune: None,
        category: Some(Category::Nutrition),
        due: d(9, 30),
        signed_by_donor: false,
        receipts: &[
            (d(4, 1), 40_000, Inspection::Passed),
            (d(9, 9), 40_000, Inspection::Passed),
        ],
        cancelled: None,
    },
    PledgePlan {
        made_on: d(4, 2),
        donor: "du-lich-bien-ca-na",
        recipient: FUND,
        asset: Asset::Vnd,
        quantity: 150_000_000,
        commune: None,
        category: None,
        due: d(9, 30),
        signed_by_donor: false,
        receipts: &[(d(5, 20), 50_000_000, Inspection::None)],
        cancelled: Some((
            d(10, 15),
            "Doanh nghiệp đề nghị dừng phần cam kết còn lại (100.000.000 đồng) do doanh thu du lịch giảm",
        )),
    },
    PledgePlan {
        made_on: d(5, 5),
        donor: "quy-nang-mai",
        recipient: YOUTH_UNION,
        asset: Asset::Vnd,
        quantity: 400_000_000,
        commune: None,
        category: Some(Category::CultureRecreation),
        due: d(10, 1),
        signed_by_donor: true,
        receipts: &[(d(9, 16), 400_000_000, Inspection::None)],
        cancelled: None,
    },
    PledgePlan {
        made_on: d(7, 1),
        donor: "giay-vo-sao-mai",
        recipient: YOUTH_UNION,
        asset: Asset::Notebook,
        quantity: 50_000,
        commune: None,
        category: Some(Category::BooksSupplies),
        due: d(8, 25),
        signed_by_donor: false,
        receipts: &[(d(8, 12), 50_000, Inspection::Passed)],
        cancelled: None,
    },
    PledgePlan {
        made_on: d(7, 10),
        donor: "ngan-hang-dai-duong",
        recipient: WOMENS_UNION,
        asset: Asset::SchoolBag,
        quantity: 3_000,
        commune: None,
        category: Some(Category::BooksSupplies),
        due: d(8, 20),
        signed_by_donor: false,
        receipts: &[(d(8, 14), 3_000, Inspection::None)],
        cancelled: None,
    },
    PledgePlan {
        made_on: d(7, 15),
        donor: "ngan-hang-song-dinh",
        recipient: FUND,
        asset: Asset::Bicycle,
        quantity: 250,
        commune: None,
        category: Some(Category::Scholarship),
        due: d(8, 31),
        signed_by_donor: false,
        receipts: &[(d(8, 21), 250, Inspection::Passed)],
        cancelled: None,
    },
    PledgePlan {
        made_on: d(8, 1),
        donor: "hoi-dong-huong",
        recipient: FUND,
        asset: Asset::Vnd,
        quantity: 200_000_000,
        commune: Some("22828"),
        category: Some(Category::Scholarship),
        due: d(8, 31),
        signed_by_donor: false,
        receipts: &[(d(8, 26), 200_000_000, Inspection::None)],
        cancelled: None,
    },
    PledgePlan {
        made_on: d(10, 1),
        donor: "quy-ao-am",
        recipient: RED_CROSS,
        asset: Asset::WarmClothes,
        quantity: 6_000,
        commune: None,
        category: Some(Category::Clothing),
        due: d(11, 30),
        signed_by_donor: false,
        receipts: &[
            (d(11, 10), 4_000, Inspection::None),
            (d(12, 1), 2_000, Inspection::None),
        ],
        cancelled: None,
    },
    PledgePlan {
        made_on: d(11, 3),
        donor: "xay-dung-thap-cham",
        recipient: FUND,
        asset: Asset::Vnd,
        quantity: 300_000_000,
        commune: None,
        category: None,
        // Still open, partly received, at the end of the year.
        due: Date::new(2026, 1, 31),
        signed_by_donor: false,
        receipts: &[(d(12, 10), 100_000_000, Inspection::None)],
        cancelled: None,
    },
];

/// An institutional gift without a pledge.
#[derive(Debug)]
struct GiftPlan {
    on: Date,
    donor: &'static str,
    agency: usize,
    asset: Asset,
    quantity: u64,
    commune: Option<&'static str>,
    category: Option<Category>,
}

const fn gift(
    on: Date,
    donor: &'static str,
    agency: usize,
    asset: Asset,
    quantity: u64,
    category: Option<Category>,
) -> GiftPlan {
    GiftPlan {
        on,
        donor,
        agency,
        asset,
        quantity,
        commune: None,
        category,
    }
}

const GIFTS: [GiftPlan; 16] = [
    gift(
        d(1, 13),
        "ngan-hang-nong-thon",
        FUND,
        Asset::Vnd,
        150_000_000,
        Some(Category::Clothing),
    ),
    gift(
        d(1, 14),
        "thuong-mai-song-pha",
        WOMENS_UNION,
        Asset::Vnd,
        80_000_000,
        None,
    ),
    gift(
        d(1, 20),
        "hoi-dong-huong",
        FUND,
        Asset::Vnd,
        120_000_000,
        None,
    ),
    gift(
        d(2, 10),
        "thuy-san-vinh-xanh",
        RED_CROSS,
        Asset::Vnd,
        60_000_000,
        Some(Category::Nutrition),
    ),
    gift(
        d(3, 11),
        "to-chuc-hy-vong",
        RED_CROSS,
        Asset::Vnd,
        180_000_000,
        Some(Category::Health),
    ),
    GiftPlan {
        on: d(3, 18),
        donor: "clb-thien-nguyen",
        agency: YOUTH_UNION,
        asset: Asset::Vnd,
        quantity: 45_000_000,
        commune: Some("22843"),
        category: Some(Category::Health),
    },
    gift(
        d(5, 27),
        "van-tai-dong-hai",
        YOUTH_UNION,
        Asset::Vnd,
        70_000_000,
        Some(Category::CultureRecreation),
    ),
    gift(
        d(5, 28),
        "vang-nho-dong-cat",
        WOMENS_UNION,
        Asset::Vnd,
        50_000_000,
        Some(Category::CultureRecreation),
    ),
    gift(
        d(6, 3),
        "nang-luong-nang-gio",
        YOUTH_UNION,
        Asset::Vnd,
        100_000_000,
        Some(Category::CultureRecreation),
    ),
    gift(
        d(8, 5),
        "quy-hoc-bong-anh-sao",
        FUND,
        Asset::Vnd,
        240_000_000,
        Some(Category::Scholarship),
    ),
    gift(
        d(8, 7),
        "xay-dung-thap-cham",
        WOMENS_UNION,
        Asset::Vnd,
        90_000_000,
        Some(Category::BooksSupplies),
    ),
    gift(
        d(10, 2),
        "thuong-mai-song-pha",
        YOUTH_UNION,
        Asset::Vnd,
        60_000_000,
        Some(Category::CultureRecreation),
    ),
    gift(
        d(10, 20),
        "to-chuc-hy-vong",
        RED_CROSS,
        Asset::Vnd,
        150_000_000,
        Some(Category::Health),
    ),
    gift(
        d(11, 18),
        "ngan-hang-nong-thon",
        RED_CROSS,
        Asset::Vnd,
        200_000_000,
        Some(Category::Clothing),
    ),
    gift(
        d(12, 8),
        "thuy-san-vinh-xanh",
        FUND,
        Asset::Vnd,
        80_000_000,
        Some(Category::Nutrition),
    ),
    gift(
        d(12, 16),
        "luong-thuc-phan-rang",
        RED_CROSS,
        Asset::Rice,
        4_000,
        Some(Category::Nutrition),
    ),
];

/// A few people give very large sums; two of the three publish their name.
const MAJOR_INDIVIDUAL_GIFTS: [(Date, u64, bool); 3] = [
    (d(1, 21), 100_000_000, true),
    (d(6, 2), 250_000_000, false),
    (d(12, 15), 300_000_000, true),
];

/// What a commune asks for, per 1,000 of its children.
#[derive(Debug)]
struct NeedPlan {
    category: Category,
    asset: Asset,
    children_per_thousand: u32,
    per_child: u64,
    description: &'static str,
}

const NEEDS: [NeedPlan; 9] = [
    NeedPlan {
        category: Category::Health,
        asset: Asset::Vnd,
        children_per_thousand: 600,
        per_child: 150_000,
        description: "Khám sức khỏe định kỳ, tẩy giun và cấp thuốc thiết yếu cho trẻ em",
    },
    NeedPlan {
        category: Category::Nutrition,
        asset: Asset::Rice,
        children_per_thousand: 350,
        per_child: 25,
        description: "Gạo cho bếp ăn bán trú của học sinh trong năm học",
    },
    NeedPlan {
        category: Category::Nutrition,
        asset: Asset::Milk,
        children_per_thousand: 400,
        per_child: 70,
        description: "Sữa học đường cho trẻ mầm non và học sinh tiểu học",
    },
    NeedPlan {
        category: Category::CultureRecreation,
        asset: Asset::Vnd,
        children_per_thousand: 1_000,
        per_child: 100_000,
        description: "Quà Ngày Quốc tế Thiếu nhi 1/6 và Tết Trung thu",
    },
    NeedPlan {
        category: Category::Scholarship,
        asset: Asset::Vnd,
        children_per_thousand: 60,
        per_child: 1_500_000,
        description: "Học bổng cho học sinh nghèo vượt khó",
    },
    NeedPlan {
        category: Category::Scholarship,
        asset: Asset::Bicycle,
        children_per_thousand: 20,
        per_child: 1,
        description: "Xe đạp cho học sinh nhà xa trường",
    },
    NeedPlan {
        category: Category::BooksSupplies,
        asset: Asset::Notebook,
        children_per_thousand: 500,
        per_child: 10,
        description: "Vở viết cho học sinh tiểu học và trung học cơ sở",
    },
    NeedPlan {
        category: Category::BooksSupplies,
        asset: Asset::SchoolBag,
        children_per_thousand: 150,
        per_child: 1,
        description: "Cặp sách cho học sinh vào lớp 1 và lớp 6",
    },
    NeedPlan {
        category: Category::Clothing,
        asset: Asset::WarmClothes,
        children_per_thousand: 300,
        per_child: 1,
        description: "Quần áo ấm mùa đông cho trẻ em vùng cao",
    },
];

/// The events of the calendar, in the order they are told on their day.
#[derive(Clone, Copy, Debug)]
enum Story {
    SetUp,
    PublishNeeds,
    PublishPlan,
    Pledge(usize),
    PledgeReceipt(usize, usize),
    CancelPledge(usize),
    Gift(usize),
    MajorIndividualGift(usize),
    MisrouteNextAllocation,
    DuplicateReceipt,
    KeyRotation,
    DeliveryCorrection,
    Commendations,
}

fn stories() -> Vec<(Date, Story)> {
    let mut stories = vec![
        (d(1, 2), Story::SetUp),
        (d(1, 6), Story::PublishNeeds),
        (d(1, 15), Story::PublishPlan),
        (d(4, 1), Story::MisrouteNextAllocation),
        (d(6, 10), Story::DuplicateReceipt),
        (d(7, 7), Story::KeyRotation),
        (d(9, 15), Story::DeliveryCorrection),
        (d(12, 26), Story::Commendations),
    ];
    for (index, pledge) in PLEDGES.iter().enumerate() {
        stories.push((pledge.made_on, Story::Pledge(index)));
        for (receipt, (on, _, _)) in pledge.receipts.iter().enumerate() {
            stories.push((*on, Story::PledgeReceipt(index, receipt)));
        }
        if let Some((on, _)) = pledge.cancelled {
            stories.push((on, Story::CancelPledge(index)));
        }
    }
    for (index, gift) in GIFTS.iter().enumerate() {
        stories.push((gift.on, Story::Gift(index)));
    }
    for (index, (on, _, _)) in MAJOR_INDIVIDUAL_GIFTS.iter().enumerate() {
        stories.push((*on, Story::MajorIndividualGift(index)));
    }
    // Stable: stories of one day keep the order above.
    stories.sort_by_key(|(on, _)| *on);
    stories
}

/// Agencies allocate on every other Tuesday.
fn is_allocation_day(date: Date) -> bool {
    date.weekday() == 1 && (date.days_since_epoch() / 7) % 2 == 0
}

impl Generator {
    /// Days a transfer takes between two offices.
    fn transit_days(&mut self) -> i64 {
        self.rng.random_range(1..=3)
    }

    /// Writes the whole programme year into [`Generator::out`].
    pub(crate) fn write_year(&mut self) {
        let mut stories = stories().into_iter().peekable();
        let mut pledge_ids: Vec<Option<String>> = vec![None; PLEDGES.len()];
        let mut allocation_round = 0;
        let mut date = YEAR_START;
        while date <= YEAR_END {
            if date.is_working_day() {
                self.open_day(date);
                while let Some((_, story)) = stories.next_if(|(on, _)| *on <= date) {
                    self.tell(story, &mut pledge_ids);
                }
                self.individual_gifts(date);
                self.confirm_arrivals(date);
                while let Some(onward) = self.onward.pop_front() {
                    let transit_days = self.transit_days();
                    self.forward(onward, transit_days);
                }
                if is_allocation_day(date) {
                    allocation_round += 1;
                    for agency in self.cast.agencies.clone() {
                        self.allocate(agency, allocation_round);
                    }
                }
                self.hand_out();
            }
            date = date.next();
        }
        assert!(
            stories.next().is_none(),
            "every story is told within the year"
        );
    }

    fn tell(&mut self, story: Story, pledge_ids: &mut [Option<String>]) {
        match story {
            Story::SetUp => self.set_up(),
            Story::PublishNeeds => self.publish_needs(),
            Story::PublishPlan => self.publish_annual_plan(),
            Story::Pledge(index) => {
                pledge_ids[index] = Some(self.make_pledge(&PLEDGES[index]));
            }
            Story::PledgeReceipt(index, receipt) => {
                let pledge_id = pledge_ids[index].clone().expect("pledged before received");
                self.receive_against_pledge(&PLEDGES[index], &pledge_id, receipt);
            }
            Story::CancelPledge(index) => {
                let plan = &PLEDGES[index];
                let pledge_id = pledge_ids[index]
                    .as_deref()
                    .expect("pledged before cancelled");
                let (_, reason) = plan.cancelled.expect("a cancellation story has a reason");
                let recorded_by = self.pledge_recorder(plan);
                self.cancel_pledge(recorded_by, pledge_id, reason);
            }
            Story::Gift(index) => self.institutional_gift(&GIFTS[index]),
            Story::MajorIndividualGift(index) => {
                let (_, amount, public_name) = MAJOR_INDIVIDUAL_GIFTS[index];
                let donor = self.new_individual(public_name);
                let agency = self.cast.agencies[FUND];
                let gift = Gift {
                    agency,
                    donor,
                    asset: Asset::Vnd,
                    quantity: amount,
                    mark: Mark::default(),
                    pledge_id: None,
                    reference: self.bank_reference(),
                    note: "Ủng hộ Chương trình chăm lo trẻ em vùng đặc biệt khó khăn".into(),
                };
                self.receipt(&gift);
            }
            Story::MisrouteNextAllocation => self.misroute_pending = true,
            Story::DuplicateReceipt => self.duplicate_receipt(),
            Story::KeyRotation => {
                let committee = self.cast.committees[commune_index("22801")];
                self.rotate_key(
                    committee,
                    "UBND xã Phước Đại – kế toán ngân sách (từ tháng 7/2025)".into(),
                    "Thay đổi cán bộ kế toán; khóa của cán bộ cũ ngừng sử dụng".into(),
                );
            }
            Story::DeliveryCorrection => self.delivery_correction_pending = true,
            Story::Commendations => self.commendations(),
        }
    }

    /// The authority's first day: genesis, the goods, the communes, and
    /// every organisation with a key, each key right after its organisation.
    fn set_up(&mut self) {
        self.genesis();
        for asset in Asset::IN_KIND {
            self.register_asset(asset);
        }
        for commune in 0..COMMUNES.len() {
            self.register_commune(commune);
        }
        let authority = self.cast.authority;
        let mut keyed: Vec<OrgIx> = Vec::new();
        keyed.extend(&self.cast.agencies);
        keyed.extend(&self.cast.district_offices);
        for commune in 0..COMMUNES.len() {
            keyed.push(self.cast.committees[commune]);
            keyed.push(self.cast.schools[commune]);
            keyed.push(self.cast.clinics[commune]);
        }
        for (index, institution) in INSTITUTIONS.iter().enumerate() {
            if institution.signs_own_pledges {
                keyed.push(self.cast.institutions[index]);
            }
        }
        for org in keyed {
            self.register_org(authority, org);
            let label = format!("{} – khóa ký năm {PROGRAMME_YEAR}", self.orgs[org].name);
            self.register_key(org, label);
        }
    }

    fn publish_needs(&mut self) {
        for (commune_ix, commune) in COMMUNES.iter().enumerate() {
            let committee = self.cast.committees[commune_ix];
            for (number, need) in NEEDS.iter().enumerate() {
                let children_targeted = commune.children * need.children_per_thousand / 1_000;
                self.publish_need(
                    committee,
                    pb::PublishNeed {
                        need_id: format!("nc-{PROGRAMME_YEAR}-{}-{:02}", commune.code, number + 1),
                        commune_code: commune.code.into(),
                        category: crate::generator::category_pb(need.category),
                        year: PROGRAMME_YEAR,
                        asset_id: need.asset.id().into(),
                        quantity: u64::from(children_targeted) * need.per_child,
                        children_targeted,
                        description: need.description.into(),
                    },
                );
            }
        }
    }

    /// The province commits to four fifths of what the communes asked for.
    fn publish_annual_plan(&mut self) {
        let mut targets = Vec::new();
        for commune in &COMMUNES {
            for need in &NEEDS {
                let children_targeted =
                    commune.children * need.children_per_thousand / 1_000 * 4 / 5;
                let mut quantity = u64::from(children_targeted) * need.per_child;
                if need.asset == Asset::Vnd {
                    quantity = quantity / 1_000_000 * 1_000_000;
                }
                targets.push(pb::PlanTarget {
                    category: crate::generator::category_pb(need.category),
                    commune_code: commune.code.into(),
                    asset_id: need.asset.id().into(),
                    quantity: quantity.max(1),
                    children_targeted,
                });
            }
        }
        self.publish_plan(pb::PublishAnnualPlan {
            year: PROGRAMME_YEAR,
            targets,
        });
    }

    fn pledge_recorder(&self, plan: &PledgePlan) -> OrgIx {
        if plan.signed_by_donor {
            self.cast.institutions[institution_index(plan.donor)]
        } else {
            self.cast.agencies[plan.recipient]
        }
    }

    fn make_pledge(&mut self, plan: &PledgePlan) -> String {
        let donor = self.cast.institutions[institution_index(plan.donor)];
        let recipient = self.cast.agencies[plan.recipient];
        // A pledge recorded by the recipient names a donor it registers now.
        self.ensure_registered(donor, recipient);
        let terms = PledgeTerms {
            recorded_by: self.pledge_recorder(plan),
            donor,
            recipient,
            asset: plan.asset,
            quantity: plan.quantity,
            mark: Mark {
                commune: plan.commune.map(commune_index),
                category: plan.category,
            },
            due: plan.due,
        };
        self.pledge(&terms)
    }

    fn receive_against_pledge(&mut self, plan: &PledgePlan, pledge_id: &str, receipt: usize) {
        let (_, quantity, inspection) = plan.receipts[receipt];
        let agency = self.cast.agencies[plan.recipient];
        let reference = if plan.asset == Asset::Vnd {
            self.bank_reference()
        } else {
            self.goods_note_reference(agency)
        };
        let gift = Gift {
            agency,
            donor: self.cast.institutions[institution_index(plan.donor)],
            asset: plan.asset,
            quantity,
            mark: Mark {
                commune: plan.commune.map(commune_index),
                category: plan.category,
            },
            pledge_id: Some(pledge_id.to_owned()),
            reference,
            note: format!("Thực hiện cam kết {pledge_id}, đợt {}", receipt + 1),
        };
        let receipted = self.receipt(&gift);
        match inspection {
            Inspection::None => {}
            Inspection::Passed => self.inspection(
                agency,
                &receipted.receipt_id,
                true,
                goods_standard(plan.asset),
                "Đạt: kiểm tra ngẫu nhiên theo lô khi nhập kho",
            ),
            Inspection::Failed => {
                // Written in one go: the failed lot is never in the pool
                // long enough for an allocation to spend it.
                self.inspection(
                    agency,
                    &receipted.receipt_id,
                    false,
                    goods_standard(plan.asset),
                    "Không đạt: gạo ẩm, có mọt ở 14/120 bao lấy mẫu; đề nghị nhà tài trợ đổi lô khác",
                );
                self.reverse_receipt(
                    &gift,
                    &receipted,
                    "Trả lại lô gạo không đạt kiểm tra chất lượng; nhà tài trợ sẽ giao lô thay thế",
                );
            }
        }
    }

    fn institutional_gift(&mut self, plan: &GiftPlan) {
        let agency = self.cast.agencies[plan.agency];
        let reference = if plan.asset == Asset::Vnd {
            self.bank_reference()
        } else {
            self.goods_note_reference(agency)
        };
        let gift = Gift {
            agency,
            donor: self.cast.institutions[institution_index(plan.donor)],
            asset: plan.asset,
            quantity: plan.quantity,
            mark: Mark {
                commune: plan.commune.map(commune_index),
                category: plan.category,
            },
            pledge_id: None,
            reference,
            note: "Ủng hộ Chương trình chăm lo trẻ em vùng đặc biệt khó khăn".into(),
        };
        let receipted = self.receipt(&gift);
        if plan.asset != Asset::Vnd {
            self.inspection(
                agency,
                &receipted.receipt_id,
                true,
                goods_standard(plan.asset),
                "Đạt: kiểm tra ngẫu nhiên theo lô khi nhập kho",
            );
        }
    }

    /// A gift entered twice by mistake, and the duplicate reversed.
    fn duplicate_receipt(&mut self) {
        let public_name = !self.rng.random_bool(HIDDEN_NAME_PROBABILITY);
        let donor = self.new_individual(public_name);
        let gift = Gift {
            agency: self.cast.agencies[WOMENS_UNION],
            donor,
            asset: Asset::Vnd,
            quantity: 500_000,
            mark: Mark::default(),
            pledge_id: None,
            reference: self.bank_reference(),
            note: "Ủng hộ Tháng hành động vì trẻ em".into(),
        };
        self.receipt(&gift);
        let duplicate = self.receipt(&gift);
        let reason = format!(
            "Nhập trùng chứng từ ngân hàng; hủy phiếu thu {} (trùng phiếu thu trước)",
            duplicate.receipt_id
        );
        self.reverse_receipt(&gift, &duplicate, &reason);
        let kept = self.references.len() - 2;
        self.references[kept].entered_twice = true;
        // The reversed duplicate is not a reference a donor should look up.
        self.references.pop();
    }

    /// The day's gifts from individuals: a binomial count around the month's
    /// average, three in ten from someone who gave before.
    fn individual_gifts(&mut self, date: Date) {
        let per_day = INDIVIDUAL_GIFTS_PER_DAY
            * f64::from(MONTHLY_GIVING_TENTHS[date.month as usize - 1])
            / 10.0;
        let probability = per_day / f64::from(INDIVIDUAL_GIFT_DRAWS);
        let count = (0..INDIVIDUAL_GIFT_DRAWS)
            .filter(|_| self.rng.random_bool(probability))
            .count();
        let theme = MONTHLY_THEME[date.month as usize - 1];
        for _ in 0..count {
            let returning = !self.individuals.is_empty()
                && self.rng.random_range(0..100) < RETURNING_DONOR_PERCENT;
            let donor = if returning {
                self.individuals[self.rng.random_range(0..self.individuals.len())]
            } else {
                let public_name = !self.rng.random_bool(HIDDEN_NAME_PROBABILITY);
                self.new_individual(public_name)
            };
            let gift = self.individual_gift(donor, theme);
            self.receipt(&gift);
        }
    }

    /// A bank transfer from an individual: most unrestricted, some for the
    /// month's campaign, a few for one commune.
    pub(crate) fn individual_gift(&mut self, donor: OrgIx, theme: Category) -> Gift {
        let agency_roll = self.rng.random_range(0..100);
        let mut threshold = 0;
        let mut agency = self.cast.agencies[FUND];
        for (index, candidate) in AGENCIES.iter().enumerate() {
            threshold += candidate.individual_gifts_percent;
            if agency_roll < threshold {
                agency = self.cast.agencies[index];
                break;
            }
        }
        let quantity = self.individual_gift_amount();
        let (mark, note) = match self.rng.random_range(0..10) {
            0..7 => (
                Mark::default(),
                "Chuyển khoản ủng hộ trẻ em vùng đặc biệt khó khăn".to_owned(),
            ),
            7..9 => (
                Mark {
                    commune: None,
                    category: Some(theme),
                },
                format!("Ủng hộ {}", campaign_name(theme)),
            ),
            _ => {
                let commune = self.pick_commune();
                (
                    Mark {
                        commune: Some(commune),
                        category: Some(theme),
                    },
                    format!(
                        "Ủng hộ {} cho trẻ em xã {}",
                        campaign_name(theme),
                        COMMUNES[commune].name
                    ),
                )
            }
        };
        let reference = self.bank_reference();
        Gift {
            agency,
            donor,
            asset: Asset::Vnd,
            quantity,
            mark,
            pledge_id: None,
            reference,
            note,
        }
    }

    fn confirm_arrivals(&mut self, date: Date) {
        let today = date.days_since_epoch();
        let (due, waiting): (Vec<_>, Vec<_>) = self
            .flights
            .drain(..)
            .partition(|flight| flight.arrives_on <= today);
        self.flights.extend(waiting);
        for flight in due {
            self.confirm(flight);
        }
    }

    /// An agency sends its pools down: earmarked ones to their commune,
    /// unrestricted ones split over a few communes, through the district
    /// office.
    fn allocate(&mut self, agency: OrgIx, round: u32) {
        for (asset, mark, balance) in self.books.pools(agency) {
            match mark.commune {
                Some(commune) => {
                    if balance >= commune_allocation_min(asset) {
                        self.send_down(agency, commune, asset, mark, balance, round);
                    }
                }
                None => {
                    let part_min = allocation_part_min(asset);
                    if balance < part_min {
                        continue;
                    }
                    let parts = (balance / part_min).clamp(1, ALLOCATION_COMMUNES_MAX);
                    let mut part = balance / parts;
                    if asset == Asset::Vnd {
                        part = part / 1_000 * 1_000;
                    }
                    let mut communes: Vec<usize> = Vec::new();
                    while communes.len() < parts as usize {
                        let commune = self.pick_commune();
                        if !communes.contains(&commune) {
                            communes.push(commune);
                        }
                    }
                    for commune in communes {
                        self.send_down(agency, commune, asset, mark, part, round);
                    }
                }
            }
        }
    }

    fn send_down(
        &mut self,
        agency: OrgIx,
        commune: usize,
        asset: Asset,
        mark: Mark,
        quantity: u64,
        round: u32,
    ) {
        let district = COMMUNES[commune].district;
        let note = format!(
            "Phân bổ đợt {round} năm {PROGRAMME_YEAR} cho xã {}, huyện {}",
            COMMUNES[commune].name, DISTRICTS[district].name
        );
        if self.misroute_pending && agency == self.cast.agencies[FUND] {
            // Sent to the wrong district office, caught the same morning and
            // reversed before the office could confirm it.
            self.misroute_pending = false;
            let wrong = (district + 1) % DISTRICTS.len();
            let onward = Onward {
                holder: agency,
                to: self.cast.district_offices[wrong],
                asset,
                mark,
                quantity,
                commune,
            };
            let flight = self.transfer(&onward, 1, note.clone());
            let reason = format!(
                "Chuyển nhầm Phòng LĐ-TB&XH huyện {}; thu hồi để chuyển đúng huyện {}",
                DISTRICTS[wrong].name, DISTRICTS[district].name
            );
            self.reverse_transfer(&flight, &reason);
        }
        let onward = Onward {
            holder: agency,
            to: self.cast.district_offices[district],
            asset,
            mark,
            quantity,
            commune,
        };
        let transit_days = self.transit_days();
        let flight = self.transfer(&onward, transit_days, note);
        self.flights.push_back(flight);
    }

    /// Schools, clinics and committees hand out part of what they hold.
    fn hand_out(&mut self) {
        let mut holders = Vec::with_capacity(3 * COMMUNES.len());
        for commune in 0..COMMUNES.len() {
            holders.push(self.cast.committees[commune]);
            holders.push(self.cast.schools[commune]);
            holders.push(self.cast.clinics[commune]);
        }
        for holder in holders {
            let commune = self.orgs[holder]
                .commune
                .expect("holders belong to a commune");
            for pool in self.books.pools(holder) {
                let (asset, mark, _) = pool;
                if self.deliverer(asset, mark, commune) != holder
                    || self.rng.random_range(0..100) >= DELIVERY_DAILY_PERCENT
                {
                    continue;
                }
                let Some(plan) = self.plan_delivery(holder, pool, DELIVERY_CHILDREN_MAX) else {
                    continue;
                };
                let period = self.today().period();
                if self.delivery_correction_pending && self.cast.schools.contains(&holder) {
                    // Entered under last month's period by mistake, reversed
                    // and entered again.
                    self.delivery_correction_pending = false;
                    let first_of_month = Date::new(self.today().year, self.today().month, 1);
                    let wrong =
                        Date::from_days_since_epoch(first_of_month.days_since_epoch() - 1).period();
                    let mistaken = self.deliver(&plan, wrong.clone());
                    let reason = format!("Ghi sai kỳ báo cáo ({wrong}); ghi lại vào kỳ {period}");
                    self.reverse_delivery(&plan, &mistaken, &reason);
                }
                self.deliver(&plan, period);
            }
        }
    }

    /// At year end the authority commends the most generous donors who
    /// publish their names and those who carried the programme.
    fn commendations(&mut self) {
        let mut honorees: Vec<(OrgIx, String)> = Vec::new();
        let top = |generator: &Generator, kinds: &[DonorKind], count: usize| {
            let mut candidates: Vec<OrgIx> = INSTITUTIONS
                .iter()
                .enumerate()
                .filter(|(_, institution)| kinds.contains(&institution.kind))
                .map(|(index, _)| generator.cast.institutions[index])
                .filter(|org| generator.given_vnd[*org] > 0)
                .collect();
            candidates.sort_by_key(|org| (std::cmp::Reverse(generator.given_vnd[*org]), *org));
            candidates.truncate(count);
            candidates
        };
        let mut donors = top(self, &[DonorKind::Business], 2);
        donors.extend(top(self, &[DonorKind::Bank], 1));
        donors.extend(top(self, &[DonorKind::Organization], 1));
        let mut individuals: Vec<OrgIx> = self
            .individuals
            .iter()
            .copied()
            .filter(|org| self.orgs[*org].public_name)
            .collect();
        individuals.sort_by_key(|org| (std::cmp::Reverse(self.given_vnd[*org]), *org));
        donors.extend(individuals.into_iter().take(2));
        for donor in donors {
            let reason = format!(
                "Đã có nhiều đóng góp cho Chương trình chăm lo trẻ em vùng đặc biệt khó khăn năm {PROGRAMME_YEAR} (tổng giá trị {} đồng)",
                format_vnd(self.given_vnd[donor])
            );
            honorees.push((donor, reason));
        }
        let best_commune = (0..COMMUNES.len())
            .max_by_key(|commune| {
                (
                    self.reached_per_commune[*commune],
                    std::cmp::Reverse(*commune),
                )
            })
            .expect("fifteen communes");
        honorees.push((
            self.cast.committees[best_commune],
            format!(
                "Tổ chức cấp phát kịp thời, công khai, đến tận tay {} lượt trẻ em",
                format_vnd(self.reached_per_commune[best_commune])
            ),
        ));
        honorees.push((
            self.cast.agencies[YOUTH_UNION],
            "Vận động và tổ chức Tết Trung thu cho thiếu nhi vùng đặc biệt khó khăn".into(),
        ));
        for (honoree, reason) in honorees {
            self.commendation(honoree, DECISION_REF, reason);
        }
    }
}

/// What goods are inspected against.
fn goods_standard(asset: Asset) -> &'static str {
    match asset {
        Asset::Rice => "TCVN 11888:2017 Gạo trắng",
        Asset::Milk => "QCVN 5-1:2010/BYT Sản phẩm sữa dạng lỏng",
        _ => "Kiểm tra số lượng, quy cách và chất lượng theo hợp đồng tài trợ",
    }
}

fn campaign_name(theme: Category) -> &'static str {
    match theme {
        Category::Health => "chương trình khám sức khỏe cho trẻ em",
        Category::Nutrition => "bữa ăn bán trú cho học sinh",
        Category::CultureRecreation => "quà Tết Thiếu nhi và Trung thu",
        Category::Scholarship => "học bổng cho học sinh nghèo",
        Category::BooksSupplies => "sách vở cho học sinh",
        Category::Clothing => "áo ấm cho trẻ em vùng cao",
        Category::Other => "trẻ em vùng đặc biệt khó khăn",
    }
}

/// Below this an earmarked pool waits for the next round.
fn commune_allocation_min(asset: Asset) -> u64 {
    match asset {
        Asset::Vnd => 500_000,
        _ => 1,
    }
}

/// The smallest share of an unrestricted pool one commune is sent.
fn allocation_part_min(asset: Asset) -> u64 {
    match asset {
        Asset::Vnd => 10_000_000,
        Asset::Rice => 300,
        Asset::Milk | Asset::Notebook => 2_000,
        Asset::SchoolBag | Asset::WarmClothes => 100,
        Asset::Bicycle => 10,
    }
}
