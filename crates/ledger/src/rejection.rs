//! Why the ledger refused an event: a value, not an operating error.
//!
//! Every refusal carries the gRPC status code of SPEC §6 and a stable,
//! machine-readable reason. The mapping to a wire status happens in one place
//! (the gRPC service); here a refusal is just data.

use std::fmt;

/// The status code of a refusal, numbered as gRPC numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// Undecodable or malformed input, whatever the ledger's state.
    InvalidArgument = 3,
    /// A ledger entity id or event id is already used by a different event.
    AlreadyExists = 6,
    /// The key may not sign this event.
    PermissionDenied = 7,
    /// The entry is over a size limit.
    ResourceExhausted = 8,
    /// A rule of SPEC §7 does not hold in the current state.
    FailedPrecondition = 9,
    /// The signature does not verify, or the key is unknown.
    Unauthenticated = 16,
}

impl Code {
    /// The gRPC code number.
    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

/// The stable reason behind a refusal. The `as_str` names never change once
/// published: clients match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    // INVALID_ARGUMENT
    /// The event bytes are not a valid `aidledger.v1.Event`.
    UndecodableEvent,
    /// A required field is empty or absent.
    MissingField,
    /// An id is not 1 to 64 characters of `[A-Za-z0-9._:-]`, or an event id
    /// is not a lowercase hyphenated UUID.
    InvalidId,
    /// Text is not NFC, has control characters, or is too long.
    InvalidText,
    /// SPEC §7.5: a `register_org` with `public_name = false` and a name.
    HiddenNameInLog,
    /// SPEC §7.5: `public_name = false` on an organisation that is not a
    /// donor.
    HiddenNameNotAllowed,
    /// A quantity is 0 or over 10^15, or a count is out of range.
    InvalidQuantity,
    /// An enum value is unspecified or unknown.
    InvalidEnum,
    /// A date, period or year is malformed.
    InvalidDate,
    /// A hash field is not 32 bytes, or a list of hashes repeats one.
    InvalidHash,
    /// A public key or signature has the wrong length or is not a usable point.
    InvalidKey,
    /// `occurred_at` is more than 5 minutes after the ledger's clock.
    OccurredInFuture,
    /// A list is longer than its limit.
    TooManyItems,

    // UNAUTHENTICATED
    /// The signature does not verify over the event and origin.
    BadSignature,
    /// The signing key was never registered.
    UnknownKey,

    // PERMISSION_DENIED
    /// The signing key was revoked.
    KeyRevoked,
    /// The signing key belongs to another organisation than `org_id`.
    KeyOrgMismatch,
    /// None of the key's roles allows this event kind.
    RoleNotAllowed,
    /// The acting organisation is not the one this event must come from
    /// (the pledge's recorder, the transfer's recipient, the target's signer).
    NotAuthorized,
    /// A Genesis not signed by the key it registers, or by another key than
    /// the one the ledger was configured to expect.
    GenesisSignerMismatch,

    // FAILED_PRECONDITION
    /// The first entry must be a Genesis.
    GenesisRequired,
    /// A Genesis after the first entry.
    GenesisNotFirst,
    /// The Genesis names another ledger or another checkpoint key.
    OriginMismatch,
    /// A referenced organisation does not exist.
    UnknownOrganization,
    /// A referenced commune does not exist.
    UnknownCommune,
    /// A referenced asset does not exist.
    UnknownAsset,
    /// A referenced pledge does not exist.
    UnknownPledge,
    /// A referenced transfer does not exist.
    UnknownTransfer,
    /// A referenced event does not exist.
    UnknownEvent,
    /// An inspection's subject is not a receipt or transfer.
    UnknownSubject,
    /// A key to revoke is not registered.
    KeyNotRegistered,
    /// A key to revoke is already revoked.
    KeyAlreadyRevoked,
    /// Revoking this key would leave no active authority key.
    LastAuthorityKey,
    /// The balance in (organisation, asset, earmark) does not cover it.
    InsufficientBalance,
    /// A balance would exceed what 64 bits hold.
    BalanceOverflow,
    /// The earmark does not match the pledge's, or the delivery's commune or
    /// category.
    EarmarkMismatch,
    /// The receipt's donor, recipient or asset differ from its pledge's.
    PledgeMismatch,
    /// The pledge is cancelled or fulfilled.
    PledgeNotOpen,
    /// The transfer was already confirmed as received.
    TransferAlreadyReceived,
    /// The transfer was reversed.
    TransferReversed,
    /// More received than was sent.
    QuantityExceedsTransfer,
    /// A transfer to the sending organisation itself.
    SelfTransfer,
    /// Inspections are for in-kind goods only.
    SubjectNotInKind,
    /// The target event is already reversed.
    AlreadyReversed,
    /// This kind of event cannot be reversed (registrations, confirmations,
    /// reversals, cancellations).
    NotReversible,

    // ALREADY_EXISTS
    /// Another event has this `event_id`.
    EventIdExists,
    /// The organisation, commune, asset or entity id is already used.
    IdExists,
    /// The public key was registered before.
    KeyAlreadyRegistered,

    // RESOURCE_EXHAUSTED
    /// The ledger entry would be over 65,535 bytes.
    EntryTooLarge,
    /// The signing key sent more events than its rate limit allows.
    RateLimited,
}

impl Reason {
    /// The status code this reason is reported with.
    pub fn code(self) -> Code {
        use Reason::*;
        match self {
            UndecodableEvent | MissingField | InvalidId | InvalidText | HiddenNameInLog
            | HiddenNameNotAllowed | InvalidQuantity | InvalidEnum | InvalidDate | InvalidHash
            | InvalidKey | OccurredInFuture | TooManyItems => Code::InvalidArgument,
            BadSignature | UnknownKey => Code::Unauthenticated,
            KeyRevoked
            | KeyOrgMismatch
            | RoleNotAllowed
            | NotAuthorized
            | GenesisSignerMismatch => Code::PermissionDenied,
            GenesisRequired
            | GenesisNotFirst
            | OriginMismatch
            | UnknownOrganization
            | UnknownCommune
            | UnknownAsset
            | UnknownPledge
            | UnknownTransfer
            | UnknownEvent
            | UnknownSubject
            | KeyNotRegistered
            | KeyAlreadyRevoked
            | LastAuthorityKey
            | InsufficientBalance
            | BalanceOverflow
            | EarmarkMismatch
            | PledgeMismatch
            | PledgeNotOpen
            | TransferAlreadyReceived
            | TransferReversed
            | QuantityExceedsTransfer
            | SelfTransfer
            | SubjectNotInKind
            | AlreadyReversed
            | NotReversible => Code::FailedPrecondition,
            EventIdExists | IdExists | KeyAlreadyRegistered => Code::AlreadyExists,
            EntryTooLarge | RateLimited => Code::ResourceExhausted,
        }
    }

    /// The stable name, in SCREAMING_SNAKE_CASE.
    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            UndecodableEvent => "UNDECODABLE_EVENT",
            MissingField => "MISSING_FIELD",
            InvalidId => "INVALID_ID",
            InvalidText => "INVALID_TEXT",
            HiddenNameInLog => "HIDDEN_NAME_IN_LOG",
            HiddenNameNotAllowed => "HIDDEN_NAME_NOT_ALLOWED",
            InvalidQuantity => "INVALID_QUANTITY",
            InvalidEnum => "INVALID_ENUM",
            InvalidDate => "INVALID_DATE",
            InvalidHash => "INVALID_HASH",
            InvalidKey => "INVALID_KEY",
            OccurredInFuture => "OCCURRED_IN_FUTURE",
            TooManyItems => "TOO_MANY_ITEMS",
            BadSignature => "BAD_SIGNATURE",
            UnknownKey => "UNKNOWN_KEY",
            KeyRevoked => "KEY_REVOKED",
            KeyOrgMismatch => "KEY_ORG_MISMATCH",
            RoleNotAllowed => "ROLE_NOT_ALLOWED",
            NotAuthorized => "NOT_AUTHORIZED",
            GenesisSignerMismatch => "GENESIS_SIGNER_MISMATCH",
            GenesisRequired => "GENESIS_REQUIRED",
            GenesisNotFirst => "GENESIS_NOT_FIRST",
            OriginMismatch => "ORIGIN_MISMATCH",
            UnknownOrganization => "UNKNOWN_ORGANIZATION",
            UnknownCommune => "UNKNOWN_COMMUNE",
            UnknownAsset => "UNKNOWN_ASSET",
            UnknownPledge => "UNKNOWN_PLEDGE",
            UnknownTransfer => "UNKNOWN_TRANSFER",
            UnknownEvent => "UNKNOWN_EVENT",
            UnknownSubject => "UNKNOWN_SUBJECT",
            KeyNotRegistered => "KEY_NOT_REGISTERED",
            KeyAlreadyRevoked => "KEY_ALREADY_REVOKED",
            LastAuthorityKey => "LAST_AUTHORITY_KEY",
            InsufficientBalance => "INSUFFICIENT_BALANCE",
            BalanceOverflow => "BALANCE_OVERFLOW",
            EarmarkMismatch => "EARMARK_MISMATCH",
            PledgeMismatch => "PLEDGE_MISMATCH",
            PledgeNotOpen => "PLEDGE_NOT_OPEN",
            TransferAlreadyReceived => "TRANSFER_ALREADY_RECEIVED",
            TransferReversed => "TRANSFER_REVERSED",
            QuantityExceedsTransfer => "QUANTITY_EXCEEDS_TRANSFER",
            SelfTransfer => "SELF_TRANSFER",
            SubjectNotInKind => "SUBJECT_NOT_IN_KIND",
            AlreadyReversed => "ALREADY_REVERSED",
            NotReversible => "NOT_REVERSIBLE",
            EventIdExists => "EVENT_ID_EXISTS",
            IdExists => "ID_EXISTS",
            KeyAlreadyRegistered => "KEY_ALREADY_REGISTERED",
            EntryTooLarge => "ENTRY_TOO_LARGE",
            RateLimited => "RATE_LIMITED",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused event: the reason and a human-readable detail naming the field
/// or entity at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The stable reason.
    pub reason: Reason,
    /// What exactly was wrong, for a person.
    pub detail: String,
}

impl Rejection {
    /// A refusal for `reason`, explained by `detail`.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }

    /// The status code to report.
    pub fn code(&self) -> Code {
        self.reason.code()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for Rejection {}

/// Shorthand for building a refusal inside rule code.
pub(crate) fn reject<T>(reason: Reason, detail: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason, detail))
}
