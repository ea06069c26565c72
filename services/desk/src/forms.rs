//! The event forms: one description per event kind (its fields, how they
//! become an event, what its preview shows), one way to render, preview,
//! sign and submit them all.

use std::collections::BTreeMap;

use aidledger_wire::pb;

use crate::picklists::PickLists;
use crate::{Desk, Lang};

/// The kinds of event the desk has a form for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Receipt,
    Pledge,
    Transfer,
    TransferReceived,
    Delivery,
    Need,
    CancelPledge,
    Inspection,
    Reversal,
    RegisterOrganization,
    RegisterKey,
    RevokeKey,
    RegisterCommune,
    RegisterAsset,
    Commendation,
    /// The annual plan: a list of targets, so a spreadsheet's rows, not a
    /// form ([`Kind::ALL`] leaves it out).
    Plan,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::Receipt,
        Kind::Pledge,
        Kind::CancelPledge,
        Kind::Transfer,
        Kind::TransferReceived,
        Kind::Delivery,
        Kind::Need,
        Kind::Inspection,
        Kind::Reversal,
        Kind::RegisterOrganization,
        Kind::RegisterKey,
        Kind::RevokeKey,
        Kind::RegisterCommune,
        Kind::RegisterAsset,
        Kind::Commendation,
    ];

    /// Its path segment: `/receipts/new`.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Receipt => "receipts",
            Kind::Pledge => "pledges",
            Kind::Transfer => "transfers",
            Kind::TransferReceived => "arrivals",
            Kind::Delivery => "deliveries",
            Kind::Need => "needs",
            Kind::CancelPledge => "cancellations",
            Kind::Inspection => "inspections",
            Kind::Reversal => "reversals",
            Kind::RegisterOrganization => "organisations",
            Kind::RegisterKey => "keys",
            Kind::RevokeKey => "key-revocations",
            Kind::RegisterCommune => "communes",
            Kind::RegisterAsset => "assets",
            Kind::Commendation => "commendations",
            Kind::Plan => "plans",
        }
    }

    pub fn of_segment(segment: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.segment() == segment)
    }

    /// The roles that allow an event of this kind, any one of them, as
    /// the ledger's rules have them (SPEC 7): a pledge by its donor's
    /// PLEDGE or its recipient's RECEIVE, an arrival by TRANSFER or
    /// RECEIVE, a need by PUBLISH_NEED or the authority.
    pub fn roles(self) -> &'static [pb::Role] {
        match self {
            Kind::Receipt => &[pb::Role::Receive],
            Kind::Pledge => &[pb::Role::Pledge, pb::Role::Receive],
            Kind::Transfer => &[pb::Role::Transfer],
            Kind::TransferReceived => &[pb::Role::Transfer, pb::Role::Receive],
            Kind::Delivery => &[pb::Role::Deliver],
            Kind::Need => &[pb::Role::PublishNeed, pb::Role::Authority],
            Kind::CancelPledge => &[pb::Role::Pledge, pb::Role::Receive],
            Kind::Inspection => &[pb::Role::Inspect],
            Kind::RegisterOrganization
            | Kind::RegisterKey
            | Kind::RegisterCommune
            | Kind::RegisterAsset
            | Kind::Commendation
            | Kind::Plan => &[pb::Role::Authority],
            // SPEC 7: the organisation that signed the target, or whose
            // key it is, whatever its roles (or the authority): every
            // registered key.
            Kind::Reversal | Kind::RevokeKey => &[
                pb::Role::Authority,
                pb::Role::Receive,
                pb::Role::Transfer,
                pb::Role::Deliver,
                pb::Role::Pledge,
                pb::Role::PublishNeed,
                pb::Role::Inspect,
            ],
        }
    }

    pub fn title(self, lang: Lang) -> &'static str {
        match self {
            Kind::Receipt => lang.t("Ghi nhận một khoản tiếp nhận", "Record a receipt"),
            Kind::Pledge => lang.t("Ghi nhận một cam kết tài trợ", "Record a pledge"),
            Kind::CancelPledge => lang.t("Huỷ một cam kết", "Cancel a pledge"),
            Kind::RegisterOrganization => lang.t("Đăng ký một đơn vị", "Register an organisation"),
            Kind::RegisterKey => lang.t(
                "Đăng ký khoá ký của một đơn vị",
                "Register an organisation's signing key",
            ),
            Kind::RevokeKey => lang.t("Thu hồi một khoá ký", "Revoke a signing key"),
            Kind::RegisterCommune => lang.t("Đăng ký một xã", "Register a commune"),
            Kind::RegisterAsset => lang.t("Đăng ký một loại tài sản", "Register an asset"),
            Kind::Commendation => lang.t("Ghi nhận khen thưởng", "Record a commendation"),
            Kind::Plan => lang.t(
                "Công bố kế hoạch năm (mỗi dòng một chỉ tiêu)",
                "Publish the annual plan (one target per row)",
            ),
            Kind::Inspection => {
                lang.t("Ghi kết quả kiểm tra hàng hoá", "Record a goods inspection")
            }
            Kind::Reversal => lang.t(
                "Huỷ một mục đã ghi nhầm",
                "Reverse an entry recorded by mistake",
            ),
            Kind::Need => lang.t("Công bố nhu cầu của một xã", "Publish a commune's need"),
            Kind::TransferReceived => lang.t(
                "Xác nhận đã nhận một lần chuyển",
                "Confirm a transfer arrived",
            ),
            Kind::Transfer => lang.t(
                "Chuyển cho một đơn vị khác",
                "Transfer to another organisation",
            ),
            Kind::Delivery => lang.t(
                "Ghi nhận một lần trao cho xã",
                "Record a delivery to a commune",
            ),
        }
    }

    /// The id field the ledger keys the record by.
    pub fn id_field(self) -> &'static str {
        match self {
            Kind::Receipt => "receipt_id",
            Kind::Pledge => "pledge_id",
            Kind::Transfer | Kind::TransferReceived => "transfer_id",
            Kind::Need => "need_id",
            Kind::CancelPledge => "pledge_id",
            Kind::Inspection => "subject_id",
            Kind::RegisterOrganization => "new_org_id",
            Kind::RegisterKey | Kind::RevokeKey => "public_key",
            Kind::RegisterCommune => "new_commune_code",
            Kind::RegisterAsset => "new_asset_id",
            Kind::Commendation => "decision_ref",
            Kind::Plan => "year",
            Kind::Reversal => "target_event_id",
            Kind::Delivery => "delivery_id",
        }
    }

    pub fn fields(self) -> &'static [Field] {
        match self {
            Kind::Receipt => &RECEIPT,
            Kind::Pledge => &PLEDGE,
            Kind::Transfer => &TRANSFER,
            Kind::TransferReceived => &ARRIVAL,
            Kind::Need => &NEED,
            Kind::CancelPledge => &CANCELLATION,
            Kind::Inspection => &INSPECTION,
            Kind::RegisterOrganization => &ORGANIZATION,
            Kind::RegisterKey => &KEY,
            Kind::RevokeKey => &KEY_REVOCATION,
            Kind::RegisterCommune => &COMMUNE,
            Kind::RegisterAsset => &ASSET,
            Kind::Commendation => &COMMENDATION,
            Kind::Plan => &[],
            Kind::Reversal => &REVERSAL,
            Kind::Delivery => &DELIVERY,
        }
    }
}

/// How a field is filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Input {
    Text,
    Number,
    /// `YYYY-MM`.
    Month,
    Donors,
    /// Organisations a transfer can go to: not the agency itself.
    Recipients,
    /// A pledge's recipient: the agency itself or another.
    PledgeRecipients,
    /// Transfers to the agency still in transit.
    InTransit,
    /// Pledges to the agency not yet fulfilled or cancelled: what a
    /// receipt can be against.
    OpenPledges,
    /// Pledges to or by the agency still open: what it may cancel.
    CancellablePledges,
    /// Yes or no.
    YesNo,
    /// The agency's own recent events that can be reversed, or an event
    /// id typed in.
    OwnEvents,
    /// The kinds of organisation the authority registers (donors have their
    /// own form).
    OrgKinds,
    /// Any organisation: agencies, communes, schools, clinics, donors.
    AnyOrg,
    /// The roles of a key, one checkbox each.
    Roles,
    /// `YYYY-MM-DD`.
    Date,
    Assets,
    /// A commune; optional ones offer "general".
    Communes,
    Categories,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub vi: &'static str,
    pub en: &'static str,
    pub input: Input,
    pub required: bool,
    /// Shown under the field, and named by it (`aria-describedby`).
    pub help: Option<(&'static str, &'static str)>,
}

const fn field(
    name: &'static str,
    vi: &'static str,
    en: &'static str,
    input: Input,
    required: bool,
) -> Field {
    Field {
        name,
        vi,
        en,
        input,
        required,
        help: None,
    }
}

const QUANTITY: Field = field(
    "quantity",
    "Số lượng (đơn vị nhỏ nhất, ví dụ đồng)",
    "Quantity (smallest unit, e.g. đồng)",
    Input::Number,
    true,
);
const NOTE: Field = field(
    "note",
    "Ghi chú (công bố cùng sổ cái)",
    "Note (published with the log)",
    Input::Text,
    false,
);
const EARMARK_COMMUNE: Field = field(
    "commune_code",
    "Dành riêng cho xã (không bắt buộc)",
    "Earmarked for commune (optional)",
    Input::Communes,
    false,
);
const EARMARK_CATEGORY: Field = field(
    "category",
    "Dành riêng cho lĩnh vực (không bắt buộc)",
    "Earmarked for category (optional)",
    Input::Categories,
    false,
);
const POOL_COMMUNE: Field = Field {
    help: Some((
        "Chọn nguồn để lấy: nguồn chung, hay nguồn dành riêng cho một xã, một lĩnh vực.",
        "The pool to draw from: general funds, or funds earmarked for a commune or a category.",
    )),
    ..field(
        "commune_code",
        "Lấy từ nguồn dành riêng cho xã",
        "Drawn from funds earmarked for commune",
        Input::Communes,
        false,
    )
};
const POOL_CATEGORY: Field = field(
    "category",
    "Lấy từ nguồn dành riêng cho lĩnh vực",
    "Drawn from funds earmarked for category",
    Input::Categories,
    false,
);

static RECEIPT: [Field; 9] = [
    field(
        "receipt_id",
        "Mã khoản tiếp nhận (do đơn vị đặt, không trùng)",
        "Receipt id (the agency's own, unique)",
        Input::Text,
        true,
    ),
    field("donor_org_id", "Nhà tài trợ", "Donor", Input::Donors, true),
    field(
        "pledge_id",
        "Theo cam kết (không bắt buộc)",
        "Against a pledge (optional)",
        Input::OpenPledges,
        false,
    ),
    field("asset_id", "Tài sản", "Asset", Input::Assets, true),
    QUANTITY,
    Field {
        help: Some((
            "Chỉ mã băm có khoá được ghi vào sổ, để nhà tài trợ tra cứu (SPEC 7.5).",
            "Only a keyed hash goes into the log, so the donor can look the gift up (SPEC 7.5).",
        )),
        ..field(
            "reference",
            "Mã tham chiếu ngân hàng hoặc phiếu nhập (không công bố)",
            "Bank or goods-note reference (not published)",
            Input::Text,
            false,
        )
    },
    EARMARK_COMMUNE,
    EARMARK_CATEGORY,
    NOTE,
];

static PLEDGE: [Field; 8] = [
    field(
        "pledge_id",
        "Mã cam kết (do đơn vị đặt, không trùng)",
        "Pledge id (the agency's own, unique)",
        Input::Text,
        true,
    ),
    field("donor_org_id", "Nhà tài trợ", "Donor", Input::Donors, true),
    field(
        "recipient_org_id",
        "Đơn vị nhận",
        "Recipient",
        Input::PledgeRecipients,
        true,
    ),
    field("asset_id", "Tài sản", "Asset", Input::Assets, true),
    QUANTITY,
    field(
        "due_date",
        "Hạn (YYYY-MM-DD, không bắt buộc)",
        "Due (YYYY-MM-DD, optional)",
        Input::Date,
        false,
    ),
    EARMARK_COMMUNE,
    EARMARK_CATEGORY,
];

static NEED: [Field; 8] = [
    field(
        "need_id",
        "Mã nhu cầu (do đơn vị đặt, không trùng)",
        "Need id (the agency's own, unique)",
        Input::Text,
        true,
    ),
    field("need_commune", "Xã", "Commune", Input::Communes, true),
    field(
        "need_category",
        "Lĩnh vực",
        "Category",
        Input::Categories,
        true,
    ),
    field("year", "Năm", "Year", Input::Number, true),
    field("asset_id", "Tài sản", "Asset", Input::Assets, true),
    QUANTITY,
    field(
        "children_targeted",
        "Số trẻ cần hỗ trợ",
        "Children to reach",
        Input::Number,
        true,
    ),
    field(
        "description",
        "Mô tả (công bố; không ghi tên trẻ)",
        "Description (published; no child's name)",
        Input::Text,
        true,
    ),
];

static CANCELLATION: [Field; 2] = [
    field(
        "pledge_id",
        "Cam kết",
        "Pledge",
        Input::CancellablePledges,
        true,
    ),
    field(
        "reason",
        "Lý do (công bố)",
        "Reason (published)",
        Input::Text,
        true,
    ),
];

static INSPECTION: [Field; 4] = [
    field(
        "subject_id",
        "Mã khoản tiếp nhận hoặc lần chuyển (hàng hoá)",
        "Receipt or transfer id (goods)",
        Input::Text,
        true,
    ),
    field("passed", "Đạt?", "Passed?", Input::YesNo, true),
    field(
        "standard",
        "Tiêu chuẩn đối chiếu",
        "Standard checked against",
        Input::Text,
        true,
    ),
    NOTE,
];

static REVERSAL: [Field; 2] = [
    Field {
        help: Some((
            "Chọn trong các mục gần đây của đơn vị, hoặc dán mã sự kiện (trên trang kết quả hay trang công khai).",
            "Pick one of the agency's recent entries, or paste an event id (from the result page or the public page).",
        )),
        ..field(
            "target_event_id",
            "Mục cần huỷ (mã sự kiện)",
            "The entry to reverse (its event id)",
            Input::OwnEvents,
            true,
        )
    },
    field(
        "reason",
        "Lý do (công bố)",
        "Reason (published)",
        Input::Text,
        true,
    ),
];

static ORGANIZATION: [Field; 5] = [
    field(
        "new_org_id",
        "Mã đơn vị",
        "Organisation id",
        Input::Text,
        true,
    ),
    field("name", "Tên", "Name", Input::Text, true),
    field("org_kind", "Loại", "Kind", Input::OrgKinds, true),
    field(
        "parent_org_id",
        "Đơn vị cấp trên (không bắt buộc)",
        "Parent organisation (optional)",
        Input::AnyOrg,
        false,
    ),
    field(
        "org_commune",
        "Xã (không bắt buộc)",
        "Commune (optional)",
        Input::Communes,
        false,
    ),
];

static KEY: [Field; 4] = [
    field("key_org_id", "Đơn vị", "Organisation", Input::AnyOrg, true),
    Field {
        help: Some((
            "64 ký tự hex, như lệnh aidctl keygen hay aidctl pubkey in ra.",
            "64 hex characters, as aidctl keygen or aidctl pubkey prints them.",
        )),
        ..field(
            "public_key",
            "Khoá công khai",
            "Public key",
            Input::Text,
            true,
        )
    },
    field("roles", "Quyền", "Roles", Input::Roles, true),
    field(
        "label",
        "Nhãn (công bố)",
        "Label (published)",
        Input::Text,
        false,
    ),
];

static KEY_REVOCATION: [Field; 2] = [
    field(
        "public_key",
        "Khoá công khai",
        "Public key",
        Input::Text,
        true,
    ),
    field(
        "reason",
        "Lý do (công bố)",
        "Reason (published)",
        Input::Text,
        true,
    ),
];

static COMMUNE: [Field; 5] = [
    field(
        "new_commune_code",
        "Mã xã (mã hành chính chính thức)",
        "Commune code (the official administrative code)",
        Input::Text,
        true,
    ),
    field("name", "Tên xã", "Name", Input::Text, true),
    field("district", "Huyện", "District", Input::Text, true),
    field("province", "Tỉnh", "Province", Input::Text, true),
    field(
        "children_count",
        "Số trẻ em",
        "Children",
        Input::Number,
        true,
    ),
];

static ASSET: [Field; 5] = [
    field("new_asset_id", "Mã tài sản", "Asset id", Input::Text, true),
    field("name", "Tên", "Name", Input::Text, true),
    field("unit", "Đơn vị tính", "Unit", Input::Text, true),
    field(
        "unit_value_vnd",
        "Giá trị một đơn vị (đồng)",
        "Value of one unit (đồng)",
        Input::Number,
        true,
    ),
    field(
        "in_kind",
        "Là hàng hoá (không phải tiền)?",
        "Goods (not money)?",
        Input::YesNo,
        true,
    ),
];

static COMMENDATION: [Field; 4] = [
    field(
        "honoree_org_id",
        "Đơn vị hoặc nhà tài trợ được khen",
        "Organisation or donor commended",
        Input::AnyOrg,
        true,
    ),
    field("year", "Năm", "Year", Input::Number, true),
    field(
        "decision_ref",
        "Số quyết định",
        "Decision number",
        Input::Text,
        true,
    ),
    field(
        "reason",
        "Lý do (công bố)",
        "Reason (published)",
        Input::Text,
        false,
    ),
];

/// The roles a key may be given, with their names.
pub(crate) const ROLES: [(pb::Role, &str, &str); 7] = [
    (pb::Role::Authority, "Cơ quan chủ trì", "Authority"),
    (pb::Role::Receive, "Tiếp nhận", "Receive"),
    (pb::Role::Transfer, "Chuyển", "Transfer"),
    (pb::Role::Deliver, "Trao cho xã", "Deliver"),
    (
        pb::Role::Pledge,
        "Cam kết (nhà tài trợ)",
        "Pledge (a donor's own)",
    ),
    (pb::Role::PublishNeed, "Công bố nhu cầu", "Publish needs"),
    (pb::Role::Inspect, "Kiểm tra hàng hoá", "Inspect goods"),
];

/// The organisation kinds the authority's form offers.
pub(crate) const ORG_KINDS: [(pb::OrgKind, &str, &str); 4] = [
    (pb::OrgKind::Agency, "Cơ quan, quỹ", "Agency or fund"),
    (pb::OrgKind::Commune, "Uỷ ban xã", "Commune committee"),
    (pb::OrgKind::School, "Trường học", "School"),
    (pb::OrgKind::Clinic, "Trạm y tế", "Clinic"),
];

fn yes_no(values: &Values, name: &'static str, lang: Lang) -> Result<bool, FieldError> {
    match value(values, name) {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(FieldError {
            field: name,
            message: lang.t("Chọn có hay không.", "Choose yes or no.").to_owned(),
        }),
    }
}

fn public_key(values: &Values, lang: Lang) -> Result<Vec<u8>, FieldError> {
    hex::decode(value(values, "public_key"))
        .ok()
        .filter(|key| key.len() == 32)
        .ok_or_else(|| FieldError {
            field: "public_key",
            message: lang
                .t(
                    "Khoá công khai là 64 ký tự hex.",
                    "A public key is 64 hex characters.",
                )
                .to_owned(),
        })
}

fn small(values: &Values, name: &'static str, lang: Lang) -> Result<u32, FieldError> {
    u32::try_from(number(values, name, lang)?).map_err(|_| FieldError {
        field: name,
        message: lang.t("Số quá lớn.", "Too large a number.").to_owned(),
    })
}

static ARRIVAL: [Field; 3] = [
    field(
        "transfer_id",
        "Lần chuyển đến đơn vị",
        "Transfer to the agency",
        Input::InTransit,
        true,
    ),
    field(
        "quantity_received",
        "Số lượng thực nhận",
        "Quantity that arrived",
        Input::Number,
        true,
    ),
    NOTE,
];

static TRANSFER: [Field; 7] = [
    field(
        "transfer_id",
        "Mã lần chuyển (do đơn vị đặt, không trùng)",
        "Transfer id (the agency's own, unique)",
        Input::Text,
        true,
    ),
    field(
        "to_org_id",
        "Chuyển cho đơn vị",
        "To organisation",
        Input::Recipients,
        true,
    ),
    field("asset_id", "Tài sản", "Asset", Input::Assets, true),
    QUANTITY,
    POOL_COMMUNE,
    POOL_CATEGORY,
    NOTE,
];

static DELIVERY: [Field; 10] = [
    field(
        "delivery_id",
        "Mã lần trao (do đơn vị đặt, không trùng)",
        "Delivery id (the agency's own, unique)",
        Input::Text,
        true,
    ),
    field(
        "delivery_commune",
        "Xã nhận",
        "Commune delivered to",
        Input::Communes,
        true,
    ),
    field(
        "delivery_category",
        "Lĩnh vực",
        "Category",
        Input::Categories,
        true,
    ),
    field("asset_id", "Tài sản", "Asset", Input::Assets, true),
    QUANTITY,
    field(
        "children_reached",
        "Số trẻ được nhận",
        "Children reached",
        Input::Number,
        true,
    ),
    field(
        "period",
        "Kỳ (YYYY-MM)",
        "Period (YYYY-MM)",
        Input::Month,
        true,
    ),
    POOL_COMMUNE,
    POOL_CATEGORY,
    NOTE,
];

/// A form as the browser sends it, by field name.
pub(crate) type Values = BTreeMap<String, String>;

/// The SPEC 6.2 reason closest to a desk's own refusal of `field` (the
/// ledger's field rules give their own).
pub(crate) fn reason_for_field(field: &str) -> &'static str {
    match field {
        "quantity" | "quantity_received" | "children_reached" | "children_targeted"
        | "children_count" | "unit_value_vnd" => "INVALID_QUANTITY",
        "category" | "delivery_category" | "need_category" | "org_kind" | "passed" | "in_kind"
        | "kind" => "INVALID_ENUM",
        "year" => "INVALID_DATE",
        "public_key" => "INVALID_KEY",
        _ => "INVALID_TEXT",
    }
}

/// A form field the clerk must correct, and why.
#[derive(Debug)]
pub(crate) struct FieldError {
    pub field: &'static str,
    pub message: String,
}

pub(crate) fn value<'v>(values: &'v Values, name: &str) -> &'v str {
    values.get(name).map_or("", |v| v.trim())
}

/// A whole number as a clerk writes one: digits, optionally grouped in
/// threes by one kind of separator (`2.500.000`, `2,500,000`,
/// `2 500 000`). Anything else, a decimal `2,5` included, is not one.
pub(crate) fn parse_whole(text: &str) -> Option<u64> {
    let text = text.trim();
    let separator = text
        .chars()
        .find(|c| matches!(c, '.' | ',' | ' ' | '\u{a0}'));
    let Some(separator) = separator else {
        return text
            .parse()
            .ok()
            .filter(|_| text.bytes().all(|b| b.is_ascii_digit()));
    };
    let groups: Vec<&str> = text.split(separator).collect();
    let well_grouped = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3);
    well_grouped.then(|| groups.concat().parse().ok()).flatten()
}

/// A text field as published: one line, Unicode NFC (SPEC 7 refuses
/// control characters and text in other forms).
pub(crate) fn public_text(values: &Values, name: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    values
        .get(name)
        .map(|v| {
            v.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .nfc()
                .collect()
        })
        .unwrap_or_default()
}

fn number(values: &Values, name: &'static str, lang: Lang) -> Result<u64, FieldError> {
    parse_whole(value(values, name)).ok_or_else(|| FieldError {
        field: name,
        message: lang
            .t(
                "Cần một số nguyên không âm (số lượng tính theo đơn vị nhỏ nhất, ví dụ đồng).",
                "A whole number, not negative, is needed (quantities in the smallest unit, e.g. đồng).",
            )
            .to_owned(),
    })
}

fn category(values: &Values, name: &'static str, lang: Lang) -> Result<i32, FieldError> {
    match value(values, name) {
        "" => Ok(pb::Category::Unspecified as i32),
        other => other.parse().map_err(|_| FieldError {
            field: name,
            message: lang
                .t("Lĩnh vực không hợp lệ.", "Not a category.")
                .to_owned(),
        }),
    }
}

fn earmark(values: &Values, lang: Lang) -> Result<pb::Earmark, FieldError> {
    Ok(pb::Earmark {
        commune_code: value(values, "commune_code").to_owned(),
        category: category(values, "category", lang)?,
    })
}

/// The body of the event `values` describe, for the desk's agency.
pub(crate) fn body(
    kind: Kind,
    desk: &Desk,
    lang: Lang,
    values: &Values,
) -> Result<pb::event::Body, FieldError> {
    let text = |name: &str| value(values, name).to_owned();
    Ok(match kind {
        Kind::Receipt => {
            let external_ref_hash = match (value(values, "reference"), &desk.config.ref_key) {
                ("", _) => Vec::new(),
                (reference, Some(key)) => key.external_ref_hash(reference).to_vec(),
                (_, None) => {
                    return Err(FieldError {
                        field: "reference",
                        message: lang
                            .t(
                                "Bàn làm việc này chưa có khoá tham chiếu (--ref-key), nên không ghi được mã tham chiếu ngân hàng.",
                                "This desk has no reference key (--ref-key), so it cannot record a bank reference.",
                            )
                            .to_owned(),
                    });
                }
            };
            // SPEC 7.5: the reference is never public. A clerk may well type
            // the bank's transaction number as the receipt id, or in the note.
            let reference =
                aidledger_ledger::privacy::normalize_reference(value(values, "reference"));
            if reference.chars().count() >= 4 {
                for field in ["receipt_id", "note"] {
                    if aidledger_ledger::privacy::normalize_reference(value(values, field))
                        .contains(&reference)
                    {
                        return Err(FieldError {
                            field,
                            message: lang
                                .t(
                                    "Mã tham chiếu ngân hàng không được xuất hiện trong mã khoản hay ghi chú: những ô này được công bố (SPEC 7.5).",
                                    "The bank reference must not appear in the receipt id or the note: they are published (SPEC 7.5).",
                                )
                                .to_owned(),
                        });
                    }
                }
            }
            pb::event::Body::Receipt(pb::Receipt {
                receipt_id: text("receipt_id"),
                donor_org_id: text("donor_org_id"),
                pledge_id: text("pledge_id"),
                asset_id: text("asset_id"),
                quantity: number(values, "quantity", lang)?,
                earmark: Some(earmark(values, lang)?),
                external_ref_hash: external_ref_hash.into(),
                note: public_text(values, "note"),
            })
        }
        Kind::Pledge => pb::event::Body::Pledge(pb::Pledge {
            pledge_id: text("pledge_id"),
            donor_org_id: text("donor_org_id"),
            recipient_org_id: text("recipient_org_id"),
            asset_id: text("asset_id"),
            quantity: number(values, "quantity", lang)?,
            earmark: Some(earmark(values, lang)?),
            due_date: text("due_date"),
        }),
        Kind::TransferReceived => pb::event::Body::TransferReceived(pb::TransferReceived {
            transfer_id: text("transfer_id"),
            quantity_received: number(values, "quantity_received", lang)?,
            note: public_text(values, "note"),
        }),
        Kind::Need => pb::event::Body::PublishNeed(pb::PublishNeed {
            need_id: text("need_id"),
            commune_code: text("need_commune"),
            category: category(values, "need_category", lang)?,
            year: u32::try_from(number(values, "year", lang)?).map_err(|_| FieldError {
                field: "year",
                message: lang.t("Năm không hợp lệ.", "Not a year.").to_owned(),
            })?,
            asset_id: text("asset_id"),
            quantity: number(values, "quantity", lang)?,
            children_targeted: u32::try_from(number(values, "children_targeted", lang)?).map_err(
                |_| FieldError {
                    field: "children_targeted",
                    message: lang.t("Số quá lớn.", "Too large a number.").to_owned(),
                },
            )?,
            description: public_text(values, "description"),
        }),
        Kind::RegisterOrganization => pb::event::Body::RegisterOrg(pb::RegisterOrganization {
            org_id: text("new_org_id"),
            name: public_text(values, "name"),
            kind: value(values, "org_kind").parse().map_err(|_| FieldError {
                field: "org_kind",
                message: lang.t("Chọn loại đơn vị.", "Choose a kind.").to_owned(),
            })?,
            parent_org_id: text("parent_org_id"),
            commune_code: text("org_commune"),
            public_name: true,
            name_commitment: Default::default(),
        }),
        Kind::RegisterKey => pb::event::Body::RegisterKey(pb::RegisterKey {
            org_id: text("key_org_id"),
            public_key: public_key(values, lang)?.into(),
            roles: ROLES
                .iter()
                .filter(|(role, _, _)| value(values, &format!("role_{}", *role as i32)) == "on")
                .map(|(role, _, _)| *role as i32)
                .collect(),
            label: public_text(values, "label"),
        }),
        Kind::RevokeKey => pb::event::Body::RevokeKey(pb::RevokeKey {
            public_key: public_key(values, lang)?.into(),
            reason: public_text(values, "reason"),
        }),
        Kind::RegisterCommune => pb::event::Body::RegisterCommune(pb::RegisterCommune {
            commune_code: text("new_commune_code"),
            name: public_text(values, "name"),
            district: public_text(values, "district"),
            province: public_text(values, "province"),
            children_count: small(values, "children_count", lang)?,
        }),
        Kind::RegisterAsset => pb::event::Body::RegisterAsset(pb::RegisterAsset {
            asset_id: text("new_asset_id"),
            name: public_text(values, "name"),
            unit: public_text(values, "unit"),
            unit_value_vnd: number(values, "unit_value_vnd", lang)?,
            in_kind: yes_no(values, "in_kind", lang)?,
        }),
        Kind::Commendation => pb::event::Body::Commendation(pb::Commendation {
            honoree_org_id: text("honoree_org_id"),
            year: small(values, "year", lang)?,
            decision_ref: public_text(values, "decision_ref"),
            reason: public_text(values, "reason"),
        }),
        Kind::Plan => {
            return Err(FieldError {
                field: "",
                message: lang
                    .t(
                        "Kế hoạch năm được nhập từ bảng tính, mỗi dòng một chỉ tiêu.",
                        "The annual plan is imported from a spreadsheet, one target per row.",
                    )
                    .to_owned(),
            });
        }
        Kind::Inspection => pb::event::Body::Inspection(pb::GoodsInspection {
            subject_id: text("subject_id"),
            passed: match value(values, "passed") {
                "yes" => true,
                "no" => false,
                _ => {
                    return Err(FieldError {
                        field: "passed",
                        message: lang
                            .t("Chọn đạt hay không đạt.", "Choose passed or not.")
                            .to_owned(),
                    });
                }
            },
            standard: public_text(values, "standard"),
            note: public_text(values, "note"),
        }),
        Kind::Reversal => pb::event::Body::Reversal(pb::Reversal {
            target_event_id: text("target_event_id"),
            reason: public_text(values, "reason"),
        }),
        Kind::CancelPledge => pb::event::Body::CancelPledge(pb::CancelPledge {
            pledge_id: text("pledge_id"),
            reason: public_text(values, "reason"),
        }),
        Kind::Transfer => pb::event::Body::Transfer(pb::Transfer {
            transfer_id: text("transfer_id"),
            to_org_id: text("to_org_id"),
            asset_id: text("asset_id"),
            quantity: number(values, "quantity", lang)?,
            earmark: Some(earmark(values, lang)?),
            note: public_text(values, "note"),
        }),
        Kind::Delivery => pb::event::Body::Delivery(pb::Delivery {
            delivery_id: text("delivery_id"),
            commune_code: text("delivery_commune"),
            category: category(values, "delivery_category", lang)?,
            asset_id: text("asset_id"),
            quantity: number(values, "quantity", lang)?,
            earmark: Some(earmark(values, lang)?),
            children_reached: u32::try_from(number(values, "children_reached", lang)?).map_err(
                |_| FieldError {
                    field: "children_reached",
                    message: lang.t("Số quá lớn.", "Too large a number.").to_owned(),
                },
            )?,
            beneficiary_tokens: Vec::new(),
            evidence_hashes: Vec::new(),
            period: text("period"),
            note: public_text(values, "note"),
        }),
    })
}

/// The form field a ledger refusal's detail names (it names the event's
/// field, e.g. `receipt.quantity`, `delivery.earmark.category`).
pub(crate) fn field_of(kind: Kind, detail: &str) -> &'static str {
    let mapped: &[(&str, &'static str)] = match kind {
        Kind::Receipt => &[
            ("receipt.earmark.commune_code", "commune_code"),
            ("receipt.earmark.category", "category"),
        ],
        Kind::Pledge => &[
            ("pledge.earmark.commune_code", "commune_code"),
            ("pledge.earmark.category", "category"),
        ],
        Kind::RegisterOrganization => &[
            ("register_org.org_id", "new_org_id"),
            ("register_org.commune_code", "org_commune"),
            ("register_org.kind", "org_kind"),
        ],
        Kind::RegisterKey => &[
            ("register_key.org_id", "key_org_id"),
            ("register_key.roles", "roles"),
        ],
        Kind::RegisterCommune => &[("register_commune.commune_code", "new_commune_code")],
        Kind::RegisterAsset => &[("register_asset.asset_id", "new_asset_id")],
        Kind::TransferReceived
        | Kind::CancelPledge
        | Kind::Inspection
        | Kind::Reversal
        | Kind::RevokeKey
        | Kind::Commendation
        | Kind::Plan => &[],
        Kind::Need => &[
            ("publish_need.commune_code", "need_commune"),
            ("publish_need.category", "need_category"),
        ],
        Kind::Transfer => &[
            ("transfer.earmark.commune_code", "commune_code"),
            ("transfer.earmark.category", "category"),
        ],
        Kind::Delivery => &[
            ("delivery.earmark.commune_code", "commune_code"),
            ("delivery.earmark.category", "category"),
            ("delivery.commune_code", "delivery_commune"),
            ("delivery.category", "delivery_category"),
        ],
    };
    if let Some((_, field)) = mapped.iter().find(|(path, _)| detail.contains(path)) {
        return field;
    }
    kind.fields()
        .iter()
        .map(|f| f.name)
        .find(|name| names_field(detail, name))
        .unwrap_or("")
}

/// Whether `detail` names the event field `.name` itself, not a longer
/// field it begins (`.unit` in `.unit_value_vnd`).
fn names_field(detail: &str, name: &str) -> bool {
    let needle = format!(".{name}");
    detail.match_indices(&needle).any(|(at, _)| {
        detail[at + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// What the preview shows of `body`: every published field, by label.
pub(crate) fn preview_rows(
    lang: Lang,
    body: &pb::event::Body,
    lists: Option<&PickLists>,
) -> Vec<(&'static str, String)> {
    let earmark_text = |earmark: &Option<pb::Earmark>| {
        let earmark = earmark.clone().unwrap_or_default();
        match (earmark.commune_code.is_empty(), earmark.category) {
            (true, 0) => lang.t("Chung", "General").to_owned(),
            _ => format!(
                "{} {}",
                earmark.commune_code,
                if earmark.category == 0 {
                    ""
                } else {
                    crate::category_name(lang, earmark.category)
                }
            )
            .trim()
            .to_owned(),
        }
    };
    let org_text = |org_id: &str| {
        let named = lists
            .and_then(|l| l.donors.iter().find(|d| d.org_id == org_id))
            .and_then(|d| d.name.clone());
        match named {
            Some(name) => format!("{name} ({org_id})"),
            None => org_id.to_owned(),
        }
    };
    match body {
        pb::event::Body::Receipt(r) => vec![
            (
                lang.t("Mã khoản tiếp nhận", "Receipt id"),
                r.receipt_id.clone(),
            ),
            (lang.t("Nhà tài trợ", "Donor"), org_text(&r.donor_org_id)),
            (
                lang.t("Tài sản, số lượng", "Asset, quantity"),
                format!("{} {}", r.asset_id, r.quantity),
            ),
            (
                lang.t("Dành riêng cho", "Earmarked for"),
                earmark_text(&r.earmark),
            ),
            (
                lang.t("Mã tham chiếu", "Reference"),
                if r.external_ref_hash.is_empty() {
                    lang.t("Không có", "None").to_owned()
                } else {
                    lang.t(
                        "Chỉ mã băm có khoá (mã gốc không công bố)",
                        "Only its keyed hash (the reference itself is not published)",
                    )
                    .to_owned()
                },
            ),
            (lang.t("Ghi chú", "Note"), r.note.clone()),
        ],
        pb::event::Body::Transfer(t) => vec![
            (
                lang.t("Mã lần chuyển", "Transfer id"),
                t.transfer_id.clone(),
            ),
            (lang.t("Chuyển cho", "To"), t.to_org_id.clone()),
            (
                lang.t("Tài sản, số lượng", "Asset, quantity"),
                format!("{} {}", t.asset_id, t.quantity),
            ),
            (
                lang.t("Lấy từ nguồn", "Drawn from"),
                earmark_text(&t.earmark),
            ),
            (lang.t("Ghi chú", "Note"), t.note.clone()),
        ],
        pb::event::Body::Pledge(p) => vec![
            (lang.t("Mã cam kết", "Pledge id"), p.pledge_id.clone()),
            (lang.t("Nhà tài trợ", "Donor"), org_text(&p.donor_org_id)),
            (
                lang.t("Đơn vị nhận", "Recipient"),
                p.recipient_org_id.clone(),
            ),
            (
                lang.t("Tài sản, số lượng", "Asset, quantity"),
                format!("{} {}", p.asset_id, p.quantity),
            ),
            (lang.t("Hạn", "Due"), p.due_date.clone()),
            (
                lang.t("Dành riêng cho", "Earmarked for"),
                earmark_text(&p.earmark),
            ),
        ],
        pb::event::Body::PublishNeed(n) => vec![
            (lang.t("Mã nhu cầu", "Need id"), n.need_id.clone()),
            (
                lang.t("Xã, lĩnh vực, năm", "Commune, category, year"),
                format!(
                    "{} {} {}",
                    n.commune_code,
                    crate::category_name(lang, n.category),
                    n.year
                ),
            ),
            (
                lang.t("Tài sản, số lượng", "Asset, quantity"),
                format!("{} {}", n.asset_id, n.quantity),
            ),
            (
                lang.t("Số trẻ cần hỗ trợ", "Children to reach"),
                n.children_targeted.to_string(),
            ),
            (lang.t("Mô tả", "Description"), n.description.clone()),
        ],
        pb::event::Body::RegisterOrg(o) => vec![
            (lang.t("Mã đơn vị", "Organisation id"), o.org_id.clone()),
            (lang.t("Tên", "Name"), o.name.clone()),
            (
                lang.t("Loại", "Kind"),
                ORG_KINDS
                    .iter()
                    .find(|(k, _, _)| *k as i32 == o.kind)
                    .map_or(String::new(), |(_, vi, en)| lang.t(vi, en).to_owned()),
            ),
            (lang.t("Đơn vị cấp trên", "Parent"), o.parent_org_id.clone()),
            (lang.t("Xã", "Commune"), o.commune_code.clone()),
        ],
        pb::event::Body::RegisterKey(k) => vec![
            (lang.t("Đơn vị", "Organisation"), k.org_id.clone()),
            (
                lang.t("Khoá công khai", "Public key"),
                hex::encode(&k.public_key),
            ),
            (
                lang.t("Quyền", "Roles"),
                k.roles
                    .iter()
                    .filter_map(|r| ROLES.iter().find(|(role, _, _)| *role as i32 == *r))
                    .map(|(_, vi, en)| lang.t(vi, en))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (lang.t("Nhãn", "Label"), k.label.clone()),
        ],
        pb::event::Body::RevokeKey(k) => vec![
            (
                lang.t("Khoá công khai", "Public key"),
                hex::encode(&k.public_key),
            ),
            (lang.t("Lý do", "Reason"), k.reason.clone()),
        ],
        pb::event::Body::RegisterCommune(c) => vec![
            (lang.t("Mã xã", "Commune code"), c.commune_code.clone()),
            (
                lang.t("Tên, huyện, tỉnh", "Name, district, province"),
                format!("{}, {}, {}", c.name, c.district, c.province),
            ),
            (
                lang.t("Số trẻ em", "Children"),
                c.children_count.to_string(),
            ),
        ],
        pb::event::Body::RegisterAsset(a) => vec![
            (lang.t("Mã tài sản", "Asset id"), a.asset_id.clone()),
            (
                lang.t("Tên, đơn vị tính", "Name, unit"),
                format!("{} ({})", a.name, a.unit),
            ),
            (
                lang.t("Giá trị một đơn vị (đồng)", "Value of one unit (đồng)"),
                a.unit_value_vnd.to_string(),
            ),
            (
                lang.t("Hàng hoá?", "Goods?"),
                if a.in_kind {
                    lang.t("Có", "Yes")
                } else {
                    lang.t("Không", "No")
                }
                .to_owned(),
            ),
        ],
        pb::event::Body::Commendation(c) => vec![
            (lang.t("Được khen", "Commended"), c.honoree_org_id.clone()),
            (lang.t("Năm", "Year"), c.year.to_string()),
            (lang.t("Số quyết định", "Decision"), c.decision_ref.clone()),
            (lang.t("Lý do", "Reason"), c.reason.clone()),
        ],
        pb::event::Body::Inspection(i) => vec![
            (lang.t("Hàng hoá của", "Goods of"), i.subject_id.clone()),
            (
                lang.t("Kết quả", "Result"),
                if i.passed {
                    lang.t("Đạt", "Passed")
                } else {
                    lang.t("Không đạt", "Failed")
                }
                .to_owned(),
            ),
            (lang.t("Tiêu chuẩn", "Standard"), i.standard.clone()),
            (lang.t("Ghi chú", "Note"), i.note.clone()),
        ],
        pb::event::Body::Reversal(r) => vec![
            (lang.t("Huỷ mục", "Reverses"), r.target_event_id.clone()),
            (lang.t("Lý do", "Reason"), r.reason.clone()),
        ],
        pb::event::Body::CancelPledge(c) => vec![
            (lang.t("Cam kết", "Pledge"), c.pledge_id.clone()),
            (lang.t("Lý do", "Reason"), c.reason.clone()),
        ],
        pb::event::Body::TransferReceived(r) => vec![
            (lang.t("Lần chuyển", "Transfer"), r.transfer_id.clone()),
            (
                lang.t("Số lượng thực nhận", "Quantity that arrived"),
                r.quantity_received.to_string(),
            ),
            (lang.t("Ghi chú", "Note"), r.note.clone()),
        ],
        pb::event::Body::Delivery(d) => vec![
            (lang.t("Mã lần trao", "Delivery id"), d.delivery_id.clone()),
            (
                lang.t("Xã nhận, lĩnh vực", "Commune, category"),
                format!(
                    "{} {}",
                    d.commune_code,
                    crate::category_name(lang, d.category)
                ),
            ),
            (
                lang.t("Tài sản, số lượng", "Asset, quantity"),
                format!("{} {}", d.asset_id, d.quantity),
            ),
            (
                lang.t("Số trẻ được nhận", "Children reached"),
                d.children_reached.to_string(),
            ),
            (lang.t("Kỳ", "Period"), d.period.clone()),
            (
                lang.t("Lấy từ nguồn", "Drawn from"),
                earmark_text(&d.earmark),
            ),
            (lang.t("Ghi chú", "Note"), d.note.clone()),
        ],
        _ => Vec::new(),
    }
}

/// The note of a body, for SPEC 7.5's warnings.
pub(crate) fn note(body: &pb::event::Body) -> &str {
    match body {
        pb::event::Body::Receipt(r) => &r.note,
        pb::event::Body::Transfer(t) => &t.note,
        pb::event::Body::TransferReceived(r) => &r.note,
        pb::event::Body::PublishNeed(n) => &n.description,
        pb::event::Body::CancelPledge(c) => &c.reason,
        pb::event::Body::Inspection(i) => &i.note,
        pb::event::Body::Reversal(r) => &r.reason,
        pb::event::Body::RegisterKey(k) => &k.label,
        pb::event::Body::RevokeKey(k) => &k.reason,
        pb::event::Body::Commendation(c) => &c.reason,
        pb::event::Body::Delivery(d) => &d.note,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_field_itself_not_one_it_begins() {
        let detail = "register_asset.unit_value_vnd 10000000000000000 is over 10^15";
        assert_eq!(field_of(Kind::RegisterAsset, detail), "unit_value_vnd");
        assert_eq!(
            field_of(Kind::RegisterAsset, "register_asset.unit is required"),
            "unit"
        );
        assert_eq!(
            field_of(
                Kind::Delivery,
                "delivery.earmark.category 9 is not a Category"
            ),
            "category"
        );
        assert_eq!(
            field_of(Kind::Delivery, "delivery.category 9 is not a Category"),
            "delivery_category"
        );
    }

    #[test]
    fn whole_numbers_as_clerks_write_them_and_nothing_else() {
        for (text, number) in [
            ("2500000", Some(2_500_000)),
            ("2.500.000", Some(2_500_000)),
            ("2,500,000", Some(2_500_000)),
            ("2 500 000", Some(2_500_000)),
            ("12", Some(12)),
            ("2,5", None),
            ("2.5", None),
            ("2.500,000", None),
            ("25.00", None),
            ("-3", None),
            ("", None),
            ("1e3", None),
        ] {
            assert_eq!(parse_whole(text), number, "{text:?}");
        }
    }
}
