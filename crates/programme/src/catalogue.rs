//! The programme's cast and goods: the province, its districts and fifteen
//! zone III communes, the agencies, the in-kind assets, the institutional
//! donors and the pieces individual donors' names are made of. Facts only.
//!
//! Communes, districts and agencies are real; every donor, business, bank and
//! person is fictional.

use aidledger_ledger::Category;

pub(crate) const PROGRAMME_YEAR: u32 = 2025;
pub(crate) const PROVINCE_NAME: &str = "Tỉnh Ninh Thuận";
pub(crate) const AUTHORITY_ORG_ID: &str = "ubnd-tinh-ninh-thuan";
pub(crate) const AUTHORITY_NAME: &str = "Ủy ban nhân dân tỉnh Ninh Thuận";

#[derive(Debug)]
pub(crate) struct District {
    pub slug: &'static str,
    pub name: &'static str,
}

/// The four districts with zone III communes, each with its Phòng Lao động -
/// Thương binh và Xã hội, through which provincial funds reach communes.
pub(crate) const DISTRICTS: [District; 4] = [
    District {
        slug: "bac-ai",
        name: "Bác Ái",
    },
    District {
        slug: "ninh-son",
        name: "Ninh Sơn",
    },
    District {
        slug: "thuan-nam",
        name: "Thuận Nam",
    },
    District {
        slug: "thuan-bac",
        name: "Thuận Bắc",
    },
];

#[derive(Debug)]
pub(crate) struct Commune {
    /// The official 5-digit administrative code (GSO list in force until the
    /// July 2025 reorganisation).
    pub code: &'static str,
    pub name: &'static str,
    pub slug: &'static str,
    /// Index into [`DISTRICTS`].
    pub district: usize,
    /// Children under 16, the size of the commune's beneficiary register.
    pub children: u32,
}

const fn commune(
    code: &'static str,
    name: &'static str,
    slug: &'static str,
    district: usize,
    children: u32,
) -> Commune {
    Commune {
        code,
        name,
        slug,
        district,
        children,
    }
}

/// The 15 especially difficult (zone III, 2021-2025) communes of Ninh Thuận.
pub(crate) const COMMUNES: [Commune; 15] = [
    commune("22801", "Phước Đại", "phuoc-dai", 0, 1_740),
    commune("22798", "Phước Thành", "phuoc-thanh", 0, 880),
    commune("22804", "Phước Chính", "phuoc-chinh", 0, 960),
    commune("22807", "Phước Trung", "phuoc-trung", 0, 910),
    commune("22789", "Phước Tân", "phuoc-tan", 0, 1_380),
    commune("22792", "Phước Tiến", "phuoc-tien", 0, 1_520),
    commune("22795", "Phước Thắng", "phuoc-thang", 0, 1_260),
    commune("22786", "Phước Hòa", "phuoc-hoa", 0, 1_150),
    commune("22783", "Phước Bình", "phuoc-binh", 0, 1_420),
    commune("22822", "Mỹ Sơn", "my-son", 1, 1_650),
    commune("22828", "Ma Nới", "ma-noi", 1, 1_830),
    commune("22885", "Phước Hà", "phuoc-ha", 2, 1_090),
    commune("22853", "Bắc Sơn", "bac-son", 3, 1_310),
    commune("22837", "Phước Chiến", "phuoc-chien", 3, 1_040),
    commune("22843", "Phước Kháng", "phuoc-khang", 3, 1_120),
];

pub(crate) fn commune_index(code: &str) -> usize {
    COMMUNES
        .iter()
        .position(|c| c.code == code)
        .unwrap_or_else(|| panic!("commune {code} is in the catalogue"))
}

#[derive(Debug)]
pub(crate) struct Agency {
    pub org_id: &'static str,
    pub name: &'static str,
    /// Prefix of its receipt numbers.
    pub short: &'static str,
    /// Out of 100: how many individual gifts it receives.
    pub individual_gifts_percent: u32,
}

pub(crate) const FUND: usize = 0;
pub(crate) const RED_CROSS: usize = 1;
pub(crate) const WOMENS_UNION: usize = 2;
pub(crate) const YOUTH_UNION: usize = 3;

pub(crate) const AGENCIES: [Agency; 4] = [
    Agency {
        org_id: "quy-bao-tro-tre-em",
        name: "Quỹ Bảo trợ trẻ em tỉnh Ninh Thuận",
        short: "qbtte",
        individual_gifts_percent: 60,
    },
    Agency {
        org_id: "hoi-chu-thap-do",
        name: "Hội Chữ thập đỏ tỉnh Ninh Thuận",
        short: "hctd",
        individual_gifts_percent: 20,
    },
    Agency {
        org_id: "hoi-lhpn",
        name: "Hội Liên hiệp Phụ nữ tỉnh Ninh Thuận",
        short: "hlhpn",
        individual_gifts_percent: 12,
    },
    Agency {
        org_id: "tinh-doan",
        name: "Tỉnh đoàn Ninh Thuận",
        short: "td",
        individual_gifts_percent: 8,
    },
];

/// What can be given: money, and the goods the programme hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Asset {
    Vnd,
    Rice,
    Milk,
    Notebook,
    SchoolBag,
    WarmClothes,
    Bicycle,
}

impl Asset {
    pub(crate) const IN_KIND: [Asset; 6] = [
        Asset::Rice,
        Asset::Milk,
        Asset::Notebook,
        Asset::SchoolBag,
        Asset::WarmClothes,
        Asset::Bicycle,
    ];

    pub(crate) fn id(self) -> &'static str {
        match self {
            Asset::Vnd => aidledger_ledger::state::VND_ASSET_ID,
            Asset::Rice => "RICE",
            Asset::Milk => "MILK",
            Asset::Notebook => "NOTEBOOK",
            Asset::SchoolBag => "SCHOOL-BAG",
            Asset::WarmClothes => "WARM-CLOTHES",
            Asset::Bicycle => "BICYCLE",
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Asset::Vnd => "Đồng Việt Nam",
            Asset::Rice => "Gạo tẻ",
            Asset::Milk => "Sữa tươi tiệt trùng hộp 180 ml",
            Asset::Notebook => "Vở học sinh 96 trang",
            Asset::SchoolBag => "Cặp sách học sinh",
            Asset::WarmClothes => "Bộ quần áo ấm trẻ em",
            Asset::Bicycle => "Xe đạp học sinh",
        }
    }

    pub(crate) fn unit(self) -> &'static str {
        match self {
            Asset::Vnd => "đồng",
            Asset::Rice => "kg",
            Asset::Milk => "hộp",
            Asset::Notebook => "quyển",
            Asset::SchoolBag => "cái",
            Asset::WarmClothes => "bộ",
            Asset::Bicycle => "chiếc",
        }
    }

    /// Market value of one unit in 2025, for totals in đồng.
    pub(crate) fn unit_value_vnd(self) -> u64 {
        match self {
            Asset::Vnd => 1,
            Asset::Rice => 18_000,
            Asset::Milk => 8_500,
            Asset::Notebook => 9_000,
            Asset::SchoolBag => 220_000,
            Asset::WarmClothes => 250_000,
            Asset::Bicycle => 1_900_000,
        }
    }

    /// The category goods are always delivered under; money has none.
    pub(crate) fn delivered_as(self) -> Option<Category> {
        match self {
            Asset::Vnd => None,
            Asset::Rice | Asset::Milk => Some(Category::Nutrition),
            Asset::Notebook | Asset::SchoolBag => Some(Category::BooksSupplies),
            Asset::WarmClothes => Some(Category::Clothing),
            // Bicycles for pupils who live far from school are given as an
            // in-kind scholarship.
            Asset::Bicycle => Some(Category::Scholarship),
        }
    }

    /// How much of this asset one child receives in one delivery, so
    /// `children_reached` follows from the quantity.
    pub(crate) fn per_child(self, category: Category) -> u64 {
        match self {
            Asset::Vnd => match category {
                Category::Health => 150_000,
                Category::Nutrition => 250_000,
                Category::CultureRecreation => 120_000,
                Category::Scholarship => 1_500_000,
                Category::BooksSupplies => 200_000,
                Category::Clothing => 300_000,
                Category::Other => 200_000,
            },
            Asset::Rice => 12,
            Asset::Milk => 48,
            Asset::Notebook => 10,
            Asset::SchoolBag | Asset::WarmClothes | Asset::Bicycle => 1,
        }
    }

    /// Goods that can spoil or tear in transit, and so arrive a little short.
    pub(crate) fn can_arrive_short(self) -> bool {
        matches!(self, Asset::Rice | Asset::Milk)
    }
}

/// The six categories the programme delivers in.
pub(crate) const CATEGORIES: [Category; 6] = Category::AID;

/// The campaign of each month: what individual gifts are earmarked for and
/// what communes spend unrestricted money on. Tết clothes in January, health
/// checks in spring, Children's Day (1 June), back to school, Mid-Autumn
/// (6 October 2025), winter clothes.
pub(crate) const MONTHLY_THEME: [Category; 12] = [
    Category::Clothing,
    Category::Nutrition,
    Category::Health,
    Category::Health,
    Category::CultureRecreation,
    Category::CultureRecreation,
    Category::Scholarship,
    Category::Scholarship,
    Category::BooksSupplies,
    Category::CultureRecreation,
    Category::Clothing,
    Category::Clothing,
];

/// How generous each month is, in tenths of an average month: peaks at Tết,
/// Children's Day, back to school, Mid-Autumn and the winter appeal.
pub(crate) const MONTHLY_GIVING_TENTHS: [u32; 12] = [15, 12, 6, 6, 10, 16, 7, 13, 10, 12, 10, 14];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DonorKind {
    Business,
    Bank,
    Organization,
}

#[derive(Debug)]
pub(crate) struct Institution {
    pub org_id: &'static str,
    pub name: &'static str,
    pub kind: DonorKind,
    /// Registered by the authority with a `PLEDGE` key, to sign its own
    /// pledges; the others are registered by the agency of their first gift.
    pub signs_own_pledges: bool,
}

const fn institution(
    org_id: &'static str,
    name: &'static str,
    kind: DonorKind,
    signs_own_pledges: bool,
) -> Institution {
    Institution {
        org_id,
        name,
        kind,
        signs_own_pledges,
    }
}

pub(crate) const INSTITUTIONS: [Institution; 20] = [
    institution(
        "nang-luong-nang-gio",
        "Công ty CP Năng lượng Nắng Gió Phan Rang",
        DonorKind::Business,
        true,
    ),
    institution(
        "luong-thuc-phan-rang",
        "Công ty CP Lương thực Phan Rang",
        DonorKind::Business,
        true,
    ),
    institution(
        "sua-dong-xanh",
        "Công ty CP Sữa Đồng Xanh",
        DonorKind::Business,
        false,
    ),
    institution(
        "giay-vo-sao-mai",
        "Công ty TNHH Giấy vở Sao Mai",
        DonorKind::Business,
        false,
    ),
    institution(
        "du-lich-bien-ca-na",
        "Công ty TNHH Du lịch Biển Cà Ná",
        DonorKind::Business,
        false,
    ),
    institution(
        "xay-dung-thap-cham",
        "Công ty CP Xây dựng Tháp Chàm",
        DonorKind::Business,
        false,
    ),
    institution(
        "thuy-san-vinh-xanh",
        "Công ty TNHH Thủy sản Vịnh Xanh",
        DonorKind::Business,
        false,
    ),
    institution(
        "van-tai-dong-hai",
        "Công ty TNHH Vận tải Đông Hải",
        DonorKind::Business,
        false,
    ),
    institution(
        "thuong-mai-song-pha",
        "Công ty CP Thương mại Sông Pha",
        DonorKind::Business,
        false,
    ),
    institution(
        "vang-nho-dong-cat",
        "Công ty TNHH Vang nho Đồng Cát",
        DonorKind::Business,
        false,
    ),
    institution(
        "ngan-hang-phuong-nam",
        "Ngân hàng TMCP Phương Nam Việt – Chi nhánh Ninh Thuận",
        DonorKind::Bank,
        true,
    ),
    institution(
        "ngan-hang-nong-thon",
        "Ngân hàng TMCP Nông thôn Mới – Chi nhánh Ninh Thuận",
        DonorKind::Bank,
        false,
    ),
    institution(
        "ngan-hang-dai-duong",
        "Ngân hàng TMCP Đại Dương Xanh – Chi nhánh Phan Rang",
        DonorKind::Bank,
        false,
    ),
    institution(
        "ngan-hang-song-dinh",
        "Ngân hàng TMCP Sông Dinh – Chi nhánh Ninh Thuận",
        DonorKind::Bank,
        false,
    ),
    institution(
        "quy-nang-mai",
        "Quỹ Vì trẻ em vùng cao Nắng Mai",
        DonorKind::Organization,
        true,
    ),
    institution(
        "to-chuc-hy-vong",
        "Tổ chức Hy vọng Tuổi thơ",
        DonorKind::Organization,
        false,
    ),
    institution(
        "quy-hoc-bong-anh-sao",
        "Quỹ Học bổng Ánh Sao",
        DonorKind::Organization,
        false,
    ),
    institution(
        "clb-thien-nguyen",
        "Câu lạc bộ Thiện nguyện Phan Rang",
        DonorKind::Organization,
        false,
    ),
    institution(
        "hoi-dong-huong",
        "Hội đồng hương Ninh Thuận tại TP. Hồ Chí Minh",
        DonorKind::Organization,
        false,
    ),
    institution(
        "quy-ao-am",
        "Quỹ Áo ấm mùa đông",
        DonorKind::Organization,
        false,
    ),
];

pub(crate) fn institution_index(org_id: &str) -> usize {
    INSTITUTIONS
        .iter()
        .position(|i| i.org_id == org_id)
        .unwrap_or_else(|| panic!("institution {org_id} is in the catalogue"))
}

/// Family names with weights per thousand, roughly as common as in Vietnam.
pub(crate) const FAMILY_NAMES: [(&str, u32); 16] = [
    ("Nguyễn", 380),
    ("Trần", 110),
    ("Lê", 95),
    ("Phạm", 70),
    ("Huỳnh", 50),
    ("Hoàng", 30),
    ("Phan", 45),
    ("Võ", 40),
    ("Vũ", 20),
    ("Đặng", 25),
    ("Bùi", 25),
    ("Đỗ", 25),
    ("Hồ", 20),
    ("Ngô", 20),
    ("Dương", 15),
    ("Lý", 30),
];

pub(crate) const MIDDLE_NAMES_MALE: [&str; 6] = ["Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh"];
pub(crate) const MIDDLE_NAMES_FEMALE: [&str; 6] = ["Thị", "Ngọc", "Thu", "Thanh", "Mỹ", "Kim"];
pub(crate) const GIVEN_NAMES_MALE: [&str; 18] = [
    "An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Khoa", "Long", "Nam", "Phúc", "Quang", "Sơn",
    "Tâm", "Thắng", "Trung", "Tuấn", "Việt", "Vinh",
];
pub(crate) const GIVEN_NAMES_FEMALE: [&str; 18] = [
    "Anh", "Chi", "Dung", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai", "Ngân", "Nhung",
    "Phương", "Quyên", "Thảo", "Trang", "Tuyết", "Yến",
];

/// An individual gift in đồng, with weights per thousand: the shape of a
/// provincial bank-transfer appeal, where most people send a round 100,000
/// to 500,000 and a few send millions. The median is 200,000 (37% give less,
/// 62% give at most that).
pub(crate) const INDIVIDUAL_GIFTS: [(u64, u32); 13] = [
    (50_000, 70),
    (100_000, 230),
    (150_000, 70),
    (200_000, 250),
    (300_000, 100),
    (500_000, 140),
    (1_000_000, 80),
    (2_000_000, 30),
    (5_000_000, 16),
    (10_000_000, 8),
    (20_000_000, 3),
    (50_000_000, 2),
    (100_000_000, 1),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalogue_is_consistent() {
        let codes: HashSet<_> = COMMUNES.iter().map(|c| c.code).collect();
        assert_eq!(codes.len(), COMMUNES.len(), "commune codes are unique");
        for commune in &COMMUNES {
            assert_eq!(commune.code.len(), 5);
            assert!(commune.code.bytes().all(|b| b.is_ascii_digit()));
            assert!(commune.district < DISTRICTS.len());
        }
        assert_eq!(INDIVIDUAL_GIFTS.iter().map(|(_, w)| w).sum::<u32>(), 1_000);
        assert_eq!(FAMILY_NAMES.iter().map(|(_, w)| w).sum::<u32>(), 1_000);
        assert_eq!(
            AGENCIES
                .iter()
                .map(|a| a.individual_gifts_percent)
                .sum::<u32>(),
            100
        );
        let ids: HashSet<_> = INSTITUTIONS.iter().map(|i| i.org_id).collect();
        assert_eq!(ids.len(), INSTITUTIONS.len());
    }
}
