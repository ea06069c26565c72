//! The domain model of events: what a decoded, well-formed event says.
//!
//! These types are built only by [`crate::decode`], which checks every field
//! rule of SPEC §7 that does not depend on the ledger's state, so code that
//! holds an [`Event`] never re-checks formats.

use std::fmt;

/// A point in time, as the protobuf `Timestamp` carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second, below 10^9.
    pub nanos: u32,
}

impl Timestamp {
    /// A timestamp at whole seconds.
    pub fn from_seconds(seconds: i64) -> Self {
        Timestamp { seconds, nanos: 0 }
    }

    /// This time plus `seconds`, saturating.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Timestamp {
            seconds: self.seconds.saturating_add(seconds),
            nanos: self.nanos,
        }
    }
}

/// A 32-byte Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// What aid is for (SPEC §7 `Category`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Category {
    /// Medical examinations and care.
    Health,
    /// Meals for preschool and primary pupils.
    Nutrition,
    /// Culture and play.
    CultureRecreation,
    /// Scholarships.
    Scholarship,
    /// Books and school supplies.
    BooksSupplies,
    /// Clothing.
    Clothing,
    /// Anything else.
    Other,
}

/// What a key may sign (SPEC §7 roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Role {
    /// Registrations, plans, commendations, any reversal.
    Authority,
    /// Receipts, donor registrations, pledges recorded for donors.
    Receive,
    /// Transfers and their confirmations.
    Transfer,
    /// Deliveries to communes.
    Deliver,
    /// A donor's own pledges.
    Pledge,
    /// Published needs.
    PublishNeed,
    /// Goods inspections.
    Inspect,
}

/// The kind of an organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OrgKind {
    /// The provincial authority running the programme.
    Authority,
    /// An agency or fund.
    Agency,
    /// A commune's people's committee.
    Commune,
    /// A school.
    School,
    /// A clinic.
    Clinic,
    /// A business donor.
    DonorBusiness,
    /// An organisation donor.
    DonorOrganization,
    /// An individual donor.
    DonorIndividual,
}

impl Category {
    /// Every category, in `.proto` order.
    pub const ALL: [Category; 7] = [
        Category::Health,
        Category::Nutrition,
        Category::CultureRecreation,
        Category::Scholarship,
        Category::BooksSupplies,
        Category::Clothing,
        Category::Other,
    ];

    /// The six kinds of aid the provincial plans name, without `Other`.
    pub const AID: [Category; 6] = [
        Category::Health,
        Category::Nutrition,
        Category::CultureRecreation,
        Category::Scholarship,
        Category::BooksSupplies,
        Category::Clothing,
    ];

    /// The wire value (`aidledger.v1.Category`), for writing events and
    /// answers.
    pub fn to_pb(self) -> i32 {
        use aidledger_wire::pb::Category as C;
        (match self {
            Category::Health => C::Health,
            Category::Nutrition => C::Nutrition,
            Category::CultureRecreation => C::CultureRecreation,
            Category::Scholarship => C::Scholarship,
            Category::BooksSupplies => C::BooksSupplies,
            Category::Clothing => C::Clothing,
            Category::Other => C::Other,
        }) as i32
    }
}

impl OrgKind {
    /// The wire value (`aidledger.v1.OrgKind`).
    pub fn to_pb(self) -> i32 {
        use aidledger_wire::pb::OrgKind as K;
        (match self {
            OrgKind::Authority => K::Authority,
            OrgKind::Agency => K::Agency,
            OrgKind::Commune => K::Commune,
            OrgKind::School => K::School,
            OrgKind::Clinic => K::Clinic,
            OrgKind::DonorBusiness => K::DonorBusiness,
            OrgKind::DonorOrganization => K::DonorOrganization,
            OrgKind::DonorIndividual => K::DonorIndividual,
        }) as i32
    }

    /// Donors may be registered by a key with the `RECEIVE` role.
    pub fn is_donor(self) -> bool {
        matches!(
            self,
            OrgKind::DonorBusiness | OrgKind::DonorOrganization | OrgKind::DonorIndividual
        )
    }
}

/// Restricts how funds may be used; `None` means unrestricted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Earmark {
    /// Only for this commune.
    pub commune_code: Option<String>,
    /// Only for this category.
    pub category: Option<Category>,
}

/// A decoded, well-formed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Lowercase hyphenated UUID, unique in the ledger.
    pub event_id: String,
    /// The acting organisation; must own the signing key.
    pub org_id: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// What happened.
    pub body: Body,
}

/// One message per event kind of SPEC §7.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "each variant is the SPEC §7 event of the same name"
)]
pub enum Body {
    Genesis(Genesis),
    RegisterOrg(RegisterOrganization),
    RegisterKey(RegisterKey),
    RevokeKey(RevokeKey),
    RegisterCommune(RegisterCommune),
    RegisterAsset(RegisterAsset),
    PublishNeed(PublishNeed),
    PublishPlan(PublishAnnualPlan),
    Pledge(Pledge),
    CancelPledge(CancelPledge),
    Receipt(Receipt),
    Transfer(Transfer),
    TransferReceived(TransferReceived),
    Delivery(Delivery),
    Inspection(GoodsInspection),
    Reversal(Reversal),
    Commendation(Commendation),
}

/// The `body` field names of SPEC §7, in `.proto` order: the vocabulary of
/// every tool that names event kinds.
pub const KIND_NAMES: [&str; 17] = [
    "genesis",
    "register_org",
    "register_key",
    "revoke_key",
    "register_commune",
    "register_asset",
    "publish_need",
    "publish_plan",
    "pledge",
    "cancel_pledge",
    "receipt",
    "transfer",
    "transfer_received",
    "delivery",
    "inspection",
    "reversal",
    "commendation",
];

impl Body {
    /// The `body` field name of SPEC §7 (one of [`KIND_NAMES`]), for
    /// messages and logs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Body::Genesis(_) => "genesis",
            Body::RegisterOrg(_) => "register_org",
            Body::RegisterKey(_) => "register_key",
            Body::RevokeKey(_) => "revoke_key",
            Body::RegisterCommune(_) => "register_commune",
            Body::RegisterAsset(_) => "register_asset",
            Body::PublishNeed(_) => "publish_need",
            Body::PublishPlan(_) => "publish_plan",
            Body::Pledge(_) => "pledge",
            Body::CancelPledge(_) => "cancel_pledge",
            Body::Receipt(_) => "receipt",
            Body::Transfer(_) => "transfer",
            Body::TransferReceived(_) => "transfer_received",
            Body::Delivery(_) => "delivery",
            Body::Inspection(_) => "inspection",
            Body::Reversal(_) => "reversal",
            Body::Commendation(_) => "commendation",
        }
    }
}

#[allow(missing_docs, reason = "fields are those of SPEC §7, documented there")]
mod bodies {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Genesis {
        pub origin: String,
        pub authority_org_id: String,
        pub authority_name: String,
        pub authority_public_key: PublicKey,
        pub log_vkey: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct RegisterOrganization {
        pub org_id: String,
        pub name: OrgName,
        pub kind: OrgKind,
        pub parent_org_id: Option<String>,
        pub commune_code: Option<String>,
    }

    /// SPEC §7.5: an organisation's name as the log holds it. A hidden
    /// donor's name is not in the log at all, only a salted commitment to
    /// it, so nothing that reads the log can publish it by mistake.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum OrgName {
        /// `public_name = true`: the name, published.
        Public(String),
        /// `public_name = false` (donor kinds only): no name;
        /// `SHA-256("aidledger/v1/name" || 0x0A || salt || 0x0A || NFC(name))`.
        Hidden { commitment: [u8; 32] },
    }

    impl OrgName {
        /// The name to publish, if the organisation agreed to it.
        pub fn public(&self) -> Option<&str> {
            match self {
                OrgName::Public(name) => Some(name),
                OrgName::Hidden { .. } => None,
            }
        }

        /// Whether the name may be published.
        pub fn is_public(&self) -> bool {
            matches!(self, OrgName::Public(_))
        }
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct RegisterKey {
        pub org_id: String,
        pub public_key: PublicKey,
        pub roles: Vec<Role>,
        pub label: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct RevokeKey {
        pub public_key: PublicKey,
        pub reason: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct RegisterCommune {
        pub commune_code: String,
        pub name: String,
        pub district: String,
        pub province: String,
        pub children_count: u32,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct RegisterAsset {
        pub asset_id: String,
        pub name: String,
        pub unit: String,
        pub unit_value_vnd: u64,
        pub in_kind: bool,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct PublishNeed {
        pub need_id: String,
        pub commune_code: String,
        pub category: Category,
        pub year: u32,
        pub asset_id: String,
        pub quantity: u64,
        pub children_targeted: u32,
        pub description: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct PlanTarget {
        pub category: Category,
        /// `None` for a province-wide target.
        pub commune_code: Option<String>,
        pub asset_id: String,
        pub quantity: u64,
        pub children_targeted: u32,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct PublishAnnualPlan {
        pub year: u32,
        pub targets: Vec<PlanTarget>,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Pledge {
        pub pledge_id: String,
        pub donor_org_id: String,
        pub recipient_org_id: String,
        pub asset_id: String,
        pub quantity: u64,
        pub earmark: Earmark,
        /// `YYYY-MM-DD`.
        pub due_date: Option<String>,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct CancelPledge {
        pub pledge_id: String,
        pub reason: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Receipt {
        pub receipt_id: String,
        pub donor_org_id: String,
        pub pledge_id: Option<String>,
        pub asset_id: String,
        pub quantity: u64,
        pub earmark: Earmark,
        pub external_ref_hash: Option<[u8; 32]>,
        pub note: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Transfer {
        pub transfer_id: String,
        pub to_org_id: String,
        pub asset_id: String,
        pub quantity: u64,
        pub earmark: Earmark,
        pub note: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct TransferReceived {
        pub transfer_id: String,
        /// May be 0: everything was lost on the way.
        pub quantity_received: u64,
        pub note: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Delivery {
        pub delivery_id: String,
        pub commune_code: String,
        pub category: Category,
        pub asset_id: String,
        pub quantity: u64,
        pub earmark: Earmark,
        pub children_reached: u32,
        pub beneficiary_tokens: Vec<[u8; 32]>,
        pub evidence_hashes: Vec<[u8; 32]>,
        /// `YYYY-MM`.
        pub period: String,
        pub note: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct GoodsInspection {
        pub subject_id: String,
        pub passed: bool,
        pub standard: String,
        pub note: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Reversal {
        pub target_event_id: String,
        pub reason: String,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Commendation {
        pub honoree_org_id: String,
        pub year: u32,
        pub decision_ref: String,
        pub reason: String,
    }
}

pub use bodies::*;
