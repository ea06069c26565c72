//! From event bytes to a well-formed [`Event`]: every rule of SPEC §7 that
//! does not depend on the ledger's state (ids, text, quantities, enums,
//! dates, hash lengths). A failure here is always `INVALID_ARGUMENT`.

use std::fmt::Display;

use aidledger_wire::{Message, pb};
use bytes::{Buf, Bytes};
use unicode_normalization::is_nfc;

use crate::event::*;
use crate::rejection::{Reason, Rejection, reject};

/// SPEC §7: ids are 1 to 64 characters.
pub const ID_LEN_MAX: usize = 64;
/// SPEC §7: names are at most 200 characters.
pub const NAME_CHARS_MAX: usize = 200;
/// SPEC §7: notes are at most 2,000 characters.
pub const NOTE_CHARS_MAX: usize = 2_000;
/// SPEC §7: quantities are 1 to 10^15 base units.
pub const QUANTITY_MAX: u64 = 1_000_000_000_000_000;
/// Programme years outside this range are typing mistakes, not plans.
pub const YEAR_MIN: u32 = 2000;
/// See [`YEAR_MIN`].
pub const YEAR_MAX: u32 = 2100;
/// Bounded so one delivery stays well inside one entry (65,535 bytes).
pub const BENEFICIARY_TOKENS_MAX: usize = 1_500;
/// Evidence documents per delivery.
pub const EVIDENCE_HASHES_MAX: usize = 64;
/// Targets in one annual plan.
pub const PLAN_TARGETS_MAX: usize = 1_000;

/// Decodes and checks the format of a serialized `aidledger.v1.Event`.
/// From [`bytes::Bytes`], its byte fields are shared rather than copied.
pub fn decode_event(bytes: impl Buf) -> Result<Event, Rejection> {
    let event = pb::Event::decode(bytes)
        .map_err(|e| Rejection::new(Reason::UndecodableEvent, format!("event: {e}")))?;
    event_from_pb(event)
}

/// Checks the format of an already decoded event.
pub fn event_from_pb(event: pb::Event) -> Result<Event, Rejection> {
    let event_id = uuid_field("event_id", event.event_id)?;
    let org_id = id_field("org_id", event.org_id)?;
    let occurred_at = match event.occurred_at {
        Some(ts) => timestamp_field("occurred_at", ts)?,
        None => return reject(Reason::MissingField, "occurred_at is required"),
    };
    let Some(body) = event.body else {
        return reject(Reason::MissingField, "the event has no body");
    };
    let body = body_from_pb(body)?;
    Ok(Event {
        event_id,
        org_id,
        occurred_at,
        body,
    })
}

fn body_from_pb(body: pb::event::Body) -> Result<Body, Rejection> {
    use pb::event::Body as B;
    Ok(match body {
        B::Genesis(g) => Body::Genesis(Genesis {
            origin: required_text("genesis.origin", g.origin, NAME_CHARS_MAX)?,
            authority_org_id: id_field("genesis.authority_org_id", g.authority_org_id)?,
            authority_name: required_text(
                "genesis.authority_name",
                g.authority_name,
                NAME_CHARS_MAX,
            )?,
            authority_public_key: public_key_field(
                "genesis.authority_public_key",
                &g.authority_public_key,
            )?,
            log_vkey: required_text("genesis.log_vkey", g.log_vkey, NOTE_CHARS_MAX)?,
        }),
        B::RegisterOrg(o) => {
            let org_id = id_field("register_org.org_id", o.org_id)?;
            let kind = org_kind_field("register_org.kind", o.kind)?;
            let name = org_name_field(kind, o.name, o.public_name, &o.name_commitment)?;
            Body::RegisterOrg(RegisterOrganization {
                org_id,
                name,
                kind,
                parent_org_id: optional_id("register_org.parent_org_id", o.parent_org_id)?,
                commune_code: optional_id("register_org.commune_code", o.commune_code)?,
            })
        }
        B::RegisterKey(k) => Body::RegisterKey(RegisterKey {
            org_id: id_field("register_key.org_id", k.org_id)?,
            public_key: public_key_field("register_key.public_key", &k.public_key)?,
            roles: roles_field("register_key.roles", &k.roles)?,
            label: text("register_key.label", k.label, NAME_CHARS_MAX)?,
        }),
        B::RevokeKey(k) => Body::RevokeKey(RevokeKey {
            public_key: public_key_bytes("revoke_key.public_key", &k.public_key)?,
            reason: text("revoke_key.reason", k.reason, NOTE_CHARS_MAX)?,
        }),
        B::RegisterCommune(c) => Body::RegisterCommune(RegisterCommune {
            commune_code: id_field("register_commune.commune_code", c.commune_code)?,
            name: required_text("register_commune.name", c.name, NAME_CHARS_MAX)?,
            district: text("register_commune.district", c.district, NAME_CHARS_MAX)?,
            province: text("register_commune.province", c.province, NAME_CHARS_MAX)?,
            children_count: c.children_count,
        }),
        B::RegisterAsset(a) => Body::RegisterAsset(RegisterAsset {
            asset_id: id_field("register_asset.asset_id", a.asset_id)?,
            name: required_text("register_asset.name", a.name, NAME_CHARS_MAX)?,
            unit: required_text("register_asset.unit", a.unit, NAME_CHARS_MAX)?,
            unit_value_vnd: bounded("register_asset.unit_value_vnd", a.unit_value_vnd)?,
            in_kind: a.in_kind,
        }),
        B::PublishNeed(n) => Body::PublishNeed(PublishNeed {
            need_id: id_field("publish_need.need_id", n.need_id)?,
            commune_code: id_field("publish_need.commune_code", n.commune_code)?,
            category: category_field("publish_need.category", n.category)?,
            year: year_field("publish_need.year", n.year)?,
            asset_id: id_field("publish_need.asset_id", n.asset_id)?,
            quantity: quantity_field("publish_need.quantity", n.quantity)?,
            children_targeted: n.children_targeted,
            description: text("publish_need.description", n.description, NOTE_CHARS_MAX)?,
        }),
        B::PublishPlan(p) => {
            if p.targets.is_empty() {
                return reject(Reason::MissingField, "publish_plan.targets is empty");
            }
            if p.targets.len() > PLAN_TARGETS_MAX {
                return reject(
                    Reason::TooManyItems,
                    format!(
                        "publish_plan.targets has {} targets, at most {PLAN_TARGETS_MAX}",
                        p.targets.len()
                    ),
                );
            }
            let mut targets = Vec::with_capacity(p.targets.len());
            for (i, t) in p.targets.into_iter().enumerate() {
                targets.push(PlanTarget {
                    category: category_field(
                        format_args!("publish_plan.targets[{i}].category"),
                        t.category,
                    )?,
                    commune_code: optional_id(
                        format_args!("publish_plan.targets[{i}].commune_code"),
                        t.commune_code,
                    )?,
                    asset_id: id_field(
                        format_args!("publish_plan.targets[{i}].asset_id"),
                        t.asset_id,
                    )?,
                    quantity: quantity_field(
                        format_args!("publish_plan.targets[{i}].quantity"),
                        t.quantity,
                    )?,
                    children_targeted: t.children_targeted,
                });
            }
            Body::PublishPlan(PublishAnnualPlan {
                year: year_field("publish_plan.year", p.year)?,
                targets,
            })
        }
        B::Pledge(p) => Body::Pledge(Pledge {
            pledge_id: id_field("pledge.pledge_id", p.pledge_id)?,
            donor_org_id: id_field("pledge.donor_org_id", p.donor_org_id)?,
            recipient_org_id: id_field("pledge.recipient_org_id", p.recipient_org_id)?,
            asset_id: id_field("pledge.asset_id", p.asset_id)?,
            quantity: quantity_field("pledge.quantity", p.quantity)?,
            earmark: earmark_field("pledge.earmark", p.earmark)?,
            due_date: if p.due_date.is_empty() {
                None
            } else {
                Some(date_field("pledge.due_date", p.due_date)?)
            },
        }),
        B::CancelPledge(c) => Body::CancelPledge(CancelPledge {
            pledge_id: id_field("cancel_pledge.pledge_id", c.pledge_id)?,
            reason: required_text("cancel_pledge.reason", c.reason, NOTE_CHARS_MAX)?,
        }),
        B::Receipt(r) => Body::Receipt(Receipt {
            receipt_id: id_field("receipt.receipt_id", r.receipt_id)?,
            donor_org_id: id_field("receipt.donor_org_id", r.donor_org_id)?,
            pledge_id: optional_id("receipt.pledge_id", r.pledge_id)?,
            asset_id: id_field("receipt.asset_id", r.asset_id)?,
            quantity: quantity_field("receipt.quantity", r.quantity)?,
            earmark: earmark_field("receipt.earmark", r.earmark)?,
            external_ref_hash: if r.external_ref_hash.is_empty() {
                None
            } else {
                Some(hash_field(
                    "receipt.external_ref_hash",
                    &r.external_ref_hash,
                )?)
            },
            note: text("receipt.note", r.note, NOTE_CHARS_MAX)?,
        }),
        B::Transfer(t) => Body::Transfer(Transfer {
            transfer_id: id_field("transfer.transfer_id", t.transfer_id)?,
            to_org_id: id_field("transfer.to_org_id", t.to_org_id)?,
            asset_id: id_field("transfer.asset_id", t.asset_id)?,
            quantity: quantity_field("transfer.quantity", t.quantity)?,
            earmark: earmark_field("transfer.earmark", t.earmark)?,
            note: text("transfer.note", t.note, NOTE_CHARS_MAX)?,
        }),
        B::TransferReceived(t) => Body::TransferReceived(TransferReceived {
            transfer_id: id_field("transfer_received.transfer_id", t.transfer_id)?,
            quantity_received: bounded("transfer_received.quantity_received", t.quantity_received)?,
            note: text("transfer_received.note", t.note, NOTE_CHARS_MAX)?,
        }),
        B::Delivery(d) => Body::Delivery(Delivery {
            delivery_id: id_field("delivery.delivery_id", d.delivery_id)?,
            commune_code: id_field("delivery.commune_code", d.commune_code)?,
            category: category_field("delivery.category", d.category)?,
            asset_id: id_field("delivery.asset_id", d.asset_id)?,
            quantity: quantity_field("delivery.quantity", d.quantity)?,
            earmark: earmark_field("delivery.earmark", d.earmark)?,
            children_reached: d.children_reached,
            beneficiary_tokens: hash_list(
                "delivery.beneficiary_tokens",
                &d.beneficiary_tokens,
                BENEFICIARY_TOKENS_MAX,
            )?,
            evidence_hashes: hash_list(
                "delivery.evidence_hashes",
                &d.evidence_hashes,
                EVIDENCE_HASHES_MAX,
            )?,
            period: period_field("delivery.period", d.period)?,
            note: text("delivery.note", d.note, NOTE_CHARS_MAX)?,
        }),
        B::Inspection(i) => Body::Inspection(GoodsInspection {
            subject_id: id_field("inspection.subject_id", i.subject_id)?,
            passed: i.passed,
            standard: text("inspection.standard", i.standard, NAME_CHARS_MAX)?,
            note: text("inspection.note", i.note, NOTE_CHARS_MAX)?,
        }),
        B::Reversal(r) => Body::Reversal(Reversal {
            target_event_id: uuid_field("reversal.target_event_id", r.target_event_id)?,
            reason: required_text("reversal.reason", r.reason, NOTE_CHARS_MAX)?,
        }),
        B::Commendation(c) => Body::Commendation(Commendation {
            honoree_org_id: id_field("commendation.honoree_org_id", c.honoree_org_id)?,
            year: year_field("commendation.year", c.year)?,
            decision_ref: required_text(
                "commendation.decision_ref",
                c.decision_ref,
                NAME_CHARS_MAX,
            )?,
            reason: text("commendation.reason", c.reason, NOTE_CHARS_MAX)?,
        }),
    })
}

/// SPEC §7: 1 to 64 characters of `[A-Za-z0-9._:-]`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ID_LEN_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// SPEC §7: a UUID, lowercase, hyphenated (8-4-4-4-12).
pub fn is_valid_uuid(id: &str) -> bool {
    uuid_value(id).is_some()
}

/// The 128-bit number a SPEC §7 UUID writes; `None` for anything else.
/// Events are kept by it (sixteen bytes to hash and compare) rather than by
/// a copy of their 36-character id.
///
/// Every event's id, and every reference to an event, is read here, on the
/// ledger's ingest and on a projector's fold alike: the 32 digits are
/// gathered and read by table, without a branch per character.
pub fn uuid_value(id: &str) -> Option<u128> {
    let bytes: &[u8; 36] = id.as_bytes().try_into().ok()?;
    if [bytes[8], bytes[13], bytes[18], bytes[23]] != [b'-'; 4] {
        return None;
    }
    let mut digits = [0u8; 32];
    digits[..8].copy_from_slice(&bytes[..8]);
    digits[8..12].copy_from_slice(&bytes[9..13]);
    digits[12..16].copy_from_slice(&bytes[14..18]);
    digits[16..20].copy_from_slice(&bytes[19..23]);
    digits[20..].copy_from_slice(&bytes[24..]);
    let mut value = 0u128;
    let mut not_digits = 0u8;
    for digit in digits {
        let nibble = LOWERCASE_HEX[usize::from(digit)];
        not_digits |= nibble;
        value = value << 4 | u128::from(nibble & 0xf);
    }
    (not_digits & NOT_HEX == 0).then_some(value)
}

/// Marks a byte that is not a lowercase hexadecimal digit in
/// [`LOWERCASE_HEX`], apart from any digit's value.
const NOT_HEX: u8 = 0x10;

/// Each byte's value as a lowercase hexadecimal digit, or [`NOT_HEX`].
const LOWERCASE_HEX: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = match byte as u8 {
            digit @ b'0'..=b'9' => digit - b'0',
            letter @ b'a'..=b'f' => letter - b'a' + 10,
            _ => NOT_HEX,
        };
        byte += 1;
    }
    table
};

fn id_field(field: impl Display + Copy, value: String) -> Result<String, Rejection> {
    if value.is_empty() {
        return reject(Reason::MissingField, format!("{field} is required"));
    }
    if !is_valid_id(&value) {
        return reject(
            Reason::InvalidId,
            format!("{field} {value:?} is not 1 to {ID_LEN_MAX} characters of [A-Za-z0-9._:-]"),
        );
    }
    Ok(value)
}

fn optional_id(field: impl Display + Copy, value: String) -> Result<Option<String>, Rejection> {
    if value.is_empty() {
        Ok(None)
    } else {
        id_field(field, value).map(Some)
    }
}

fn uuid_field(field: impl Display + Copy, value: String) -> Result<String, Rejection> {
    if value.is_empty() {
        return reject(Reason::MissingField, format!("{field} is required"));
    }
    if !is_valid_uuid(&value) {
        return reject(
            Reason::InvalidId,
            format!("{field} {value:?} is not a lowercase hyphenated UUID"),
        );
    }
    Ok(value)
}

/// SPEC §7: valid UTF-8 (prost has checked it), NFC, no control characters,
/// at most `chars_max` characters.
///
/// Read as bytes ([`scan_text`]): text whose characters are all in U+0000
/// to U+02FF or U+1E00 to U+1EFF (ASCII, and most Vietnamese) is NFC
/// without looking its characters up; only other text is looked up.
fn text(field: impl Display + Copy, value: String, chars_max: usize) -> Result<String, Rejection> {
    let scan = scan_text(&value);
    let control = scan
        .control
        .then(|| value.chars().find(|c| c.is_control()))
        .flatten();
    if let Some(control) = control {
        return reject(
            Reason::InvalidText,
            format!(
                "{field} contains the control character U+{:04X}",
                u32::from(control)
            ),
        );
    }
    if !scan.surely_nfc && !is_nfc(&value) {
        return reject(
            Reason::InvalidText,
            format!("{field} is not in Unicode normalization form C (NFC)"),
        );
    }
    if scan.chars > chars_max {
        return reject(
            Reason::InvalidText,
            format!("{field} has {} characters, at most {chars_max}", scan.chars),
        );
    }
    Ok(value)
}

/// What one pass over a text's bytes tells.
struct TextScan {
    /// How many characters it has.
    chars: usize,
    /// Whether it has a control character (Unicode's Cc: U+0000 to U+001F
    /// and U+007F to U+009F).
    control: bool,
    /// Whether every character is in U+0000 to U+02FF or U+1E00 to U+1EFF
    /// (Latin, and Vietnamese's precomposed letters): each of those is a
    /// starter (combining class 0) that NFC keeps as it is, so a text of
    /// them alone is NFC. A test checks each against the Unicode tables.
    surely_nfc: bool,
}

/// Reads valid UTF-8 byte by byte. A character's first byte is any but a
/// continuation byte (`10xxxxxx`); U+0080 to U+009F are `C2 80` to `C2 9F`;
/// U+0000 to U+02FF begin with a byte below `CC`, and U+1E00 to U+1EFF are
/// `E1 B8 80` to `E1 BB BF`.
fn scan_text(text: &str) -> TextScan {
    let bytes = text.as_bytes();
    let mut scan = TextScan {
        chars: 0,
        control: false,
        surely_nfc: true,
    };
    for (at, &byte) in bytes.iter().enumerate() {
        if byte & 0xc0 == 0x80 {
            continue;
        }
        scan.chars += 1;
        let next = bytes.get(at + 1).copied().unwrap_or(0);
        scan.control |= byte < 0x20 || byte == 0x7f || (byte == 0xc2 && next < 0xa0);
        scan.surely_nfc &= byte < 0xcc || (byte == 0xe1 && (0xb8..=0xbb).contains(&next));
    }
    scan
}

fn required_text(
    field: impl Display + Copy,
    value: String,
    chars_max: usize,
) -> Result<String, Rejection> {
    if value.is_empty() {
        return reject(Reason::MissingField, format!("{field} is required"));
    }
    text(field, value, chars_max)
}

fn quantity_field(field: impl Display + Copy, value: u64) -> Result<u64, Rejection> {
    if value == 0 {
        return reject(Reason::InvalidQuantity, format!("{field} is 0"));
    }
    bounded(field, value)
}

fn bounded(field: impl Display + Copy, value: u64) -> Result<u64, Rejection> {
    if value > QUANTITY_MAX {
        return reject(
            Reason::InvalidQuantity,
            format!("{field} is {value}, over the limit of 10^15"),
        );
    }
    Ok(value)
}

fn year_field(field: impl Display + Copy, year: u32) -> Result<u32, Rejection> {
    if !(YEAR_MIN..=YEAR_MAX).contains(&year) {
        return reject(
            Reason::InvalidDate,
            format!("{field} is {year}, not a year from {YEAR_MIN} to {YEAR_MAX}"),
        );
    }
    Ok(year)
}

fn timestamp_field(
    field: impl Display + Copy,
    ts: aidledger_wire::Timestamp,
) -> Result<Timestamp, Rejection> {
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| {
            Rejection::new(
                Reason::InvalidDate,
                format!("{field} has nanos {} outside 0..10^9", ts.nanos),
            )
        })?;
    if ts.seconds < 0 {
        return reject(Reason::InvalidDate, format!("{field} is before 1970"));
    }
    Ok(Timestamp {
        seconds: ts.seconds,
        nanos,
    })
}

fn parse_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD`, a real calendar date.
fn date_field(field: impl Display + Copy, value: String) -> Result<String, Rejection> {
    let parts: Vec<&str> = value.split('-').collect();
    let valid = match parts.as_slice() {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            match (parse_digits(y), parse_digits(m), parse_digits(d)) {
                (Some(y), Some(m), Some(d)) => {
                    (YEAR_MIN..=YEAR_MAX).contains(&y)
                        && i32::try_from(y).is_ok_and(|y| crate::calendar::date(y, m, d).is_some())
                }
                _ => false,
            }
        }
        _ => false,
    };
    if !valid {
        return reject(
            Reason::InvalidDate,
            format!("{field} {value:?} is not a date YYYY-MM-DD"),
        );
    }
    Ok(value)
}

/// `YYYY-MM`.
fn period_field(field: impl Display + Copy, value: String) -> Result<String, Rejection> {
    if value.is_empty() {
        return reject(Reason::MissingField, format!("{field} is required"));
    }
    let valid = match value.split_once('-') {
        Some((y, m)) if y.len() == 4 && m.len() == 2 => match (parse_digits(y), parse_digits(m)) {
            (Some(y), Some(m)) => (YEAR_MIN..=YEAR_MAX).contains(&y) && (1..=12).contains(&m),
            _ => false,
        },
        _ => false,
    };
    if !valid {
        return reject(
            Reason::InvalidDate,
            format!("{field} {value:?} is not a month YYYY-MM"),
        );
    }
    Ok(value)
}

/// SPEC §7.5: a hidden donor's name never enters the log; a commitment to
/// it does. Checked in this order: who may be hidden, the name, then the
/// commitment.
fn org_name_field(
    kind: OrgKind,
    name: String,
    public_name: bool,
    commitment: &[u8],
) -> Result<OrgName, Rejection> {
    if public_name {
        let name = required_text("register_org.name", name, NAME_CHARS_MAX)?;
        if !commitment.is_empty() {
            // SPEC §7 register_org: "`public_name = true`: ... `name_commitment`
            // empty". The spec names no reason; a hash where none belongs is
            // a malformed hash field.
            return reject(
                Reason::InvalidHash,
                "register_org.name_commitment must be empty when public_name is true",
            );
        }
        return Ok(OrgName::Public(name));
    }
    if !kind.is_donor() {
        return reject(
            Reason::HiddenNameNotAllowed,
            format!(
                "register_org.public_name is false, but only donors may be hidden, not {kind:?}"
            ),
        );
    }
    if !name.is_empty() {
        return reject(
            Reason::HiddenNameInLog,
            "register_org.name must be empty when public_name is false: the log is public, \
             so a hidden donor's name stays off it (give name_commitment instead)",
        );
    }
    if commitment.is_empty() {
        return reject(
            Reason::MissingField,
            "register_org.name_commitment is required when public_name is false",
        );
    }
    Ok(OrgName::Hidden {
        commitment: hash_field("register_org.name_commitment", commitment)?,
    })
}

fn hash_field(field: impl Display + Copy, value: &[u8]) -> Result<[u8; 32], Rejection> {
    <[u8; 32]>::try_from(value).map_err(|_| {
        Rejection::new(
            Reason::InvalidHash,
            format!("{field} is {} bytes, not 32", value.len()),
        )
    })
}

fn hash_list(
    field: impl Display + Copy,
    values: &[Bytes],
    max: usize,
) -> Result<Vec<[u8; 32]>, Rejection> {
    if values.len() > max {
        return reject(
            Reason::TooManyItems,
            format!("{field} has {} items, at most {max}", values.len()),
        );
    }
    // Sorting a copy finds whether any item repeats without hashing each
    // one into a set; only a list with something wrong is walked again, in
    // order, so the first fault is the one reported.
    let hashes: Option<Vec<[u8; 32]>> = values
        .iter()
        .map(|value| <[u8; 32]>::try_from(&value[..]).ok())
        .collect();
    if let Some(hashes) = hashes {
        let mut sorted = hashes.clone();
        sorted.sort_unstable();
        if !sorted.windows(2).any(|pair| pair[0] == pair[1]) {
            return Ok(hashes);
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(values.len());
    let mut hashes = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let hash = hash_field(format_args!("{field}[{i}]"), value)?;
        if !seen.insert(hash) {
            return reject(
                Reason::InvalidHash,
                format!("{field}[{i}] repeats an earlier item"),
            );
        }
        hashes.push(hash);
    }
    Ok(hashes)
}

fn public_key_bytes(field: impl Display + Copy, value: &[u8]) -> Result<PublicKey, Rejection> {
    <[u8; 32]>::try_from(value).map(PublicKey).map_err(|_| {
        Rejection::new(
            Reason::InvalidKey,
            format!(
                "{field} is {} bytes, not a 32-byte Ed25519 key",
                value.len()
            ),
        )
    })
}

/// A key being registered must be one that strict verification can ever
/// accept: a valid point that is not of small order.
fn public_key_field(field: impl Display + Copy, value: &[u8]) -> Result<PublicKey, Rejection> {
    let key = public_key_bytes(field, value)?;
    match ed25519_dalek::VerifyingKey::from_bytes(&key.0) {
        Ok(k) if !k.is_weak() => Ok(key),
        Ok(_) => reject(
            Reason::InvalidKey,
            format!("{field} is a small-order point"),
        ),
        Err(_) => reject(
            Reason::InvalidKey,
            format!("{field} is not a valid Ed25519 point"),
        ),
    }
}

fn category_field(field: impl Display + Copy, value: i32) -> Result<Category, Rejection> {
    use pb::Category as C;
    Ok(match C::try_from(value) {
        Ok(C::Health) => Category::Health,
        Ok(C::Nutrition) => Category::Nutrition,
        Ok(C::CultureRecreation) => Category::CultureRecreation,
        Ok(C::Scholarship) => Category::Scholarship,
        Ok(C::BooksSupplies) => Category::BooksSupplies,
        Ok(C::Clothing) => Category::Clothing,
        Ok(C::Other) => Category::Other,
        Ok(C::Unspecified) => {
            return reject(
                Reason::InvalidEnum,
                format!("{field} is CATEGORY_UNSPECIFIED"),
            );
        }
        Err(_) => {
            return reject(
                Reason::InvalidEnum,
                format!("{field} {value} is not a Category"),
            );
        }
    })
}

fn earmark_field(
    field: impl Display + Copy,
    value: Option<pb::Earmark>,
) -> Result<Earmark, Rejection> {
    let Some(value) = value else {
        return Ok(Earmark::default());
    };
    Ok(Earmark {
        commune_code: optional_id(format_args!("{field}.commune_code"), value.commune_code)?,
        // SPEC §7: an empty earmark field means unrestricted.
        category: if value.category == 0 {
            None
        } else {
            Some(category_field(
                format_args!("{field}.category"),
                value.category,
            )?)
        },
    })
}

fn org_kind_field(field: impl Display + Copy, value: i32) -> Result<OrgKind, Rejection> {
    use pb::OrgKind as K;
    Ok(match K::try_from(value) {
        Ok(K::Authority) => OrgKind::Authority,
        Ok(K::Agency) => OrgKind::Agency,
        Ok(K::Commune) => OrgKind::Commune,
        Ok(K::School) => OrgKind::School,
        Ok(K::Clinic) => OrgKind::Clinic,
        Ok(K::DonorBusiness) => OrgKind::DonorBusiness,
        Ok(K::DonorOrganization) => OrgKind::DonorOrganization,
        Ok(K::DonorIndividual) => OrgKind::DonorIndividual,
        Ok(K::Unspecified) => {
            return reject(
                Reason::InvalidEnum,
                format!("{field} is ORG_KIND_UNSPECIFIED"),
            );
        }
        Err(_) => {
            return reject(
                Reason::InvalidEnum,
                format!("{field} {value} is not an OrgKind"),
            );
        }
    })
}

fn roles_field(field: impl Display + Copy, values: &[i32]) -> Result<Vec<Role>, Rejection> {
    use pb::Role as R;
    if values.is_empty() {
        return reject(Reason::MissingField, format!("{field} is empty"));
    }
    let mut roles = Vec::with_capacity(values.len());
    for &value in values {
        let role = match R::try_from(value) {
            Ok(R::Authority) => Role::Authority,
            Ok(R::Receive) => Role::Receive,
            Ok(R::Transfer) => Role::Transfer,
            Ok(R::Deliver) => Role::Deliver,
            Ok(R::Pledge) => Role::Pledge,
            Ok(R::PublishNeed) => Role::PublishNeed,
            Ok(R::Inspect) => Role::Inspect,
            Ok(R::Unspecified) => {
                return reject(Reason::InvalidEnum, format!("{field} has ROLE_UNSPECIFIED"));
            }
            Err(_) => {
                return reject(
                    Reason::InvalidEnum,
                    format!("{field} has {value}, not a Role"),
                );
            }
        };
        if roles.contains(&role) {
            return reject(Reason::InvalidEnum, format!("{field} repeats {role:?}"));
        }
        roles.push(role);
    }
    Ok(roles)
}

#[cfg(test)]
mod checks {
    use super::*;

    /// The slow, obvious reading of a UUID the one-pass one must agree with.
    fn uuid_by_parts(id: &str) -> Option<u128> {
        let groups: Vec<&str> = id.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        let lowercase_hex = groups
            .iter()
            .all(|g| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        (lengths == [8, 4, 4, 4, 12] && lowercase_hex)
            .then(|| u128::from_str_radix(&groups.concat(), 16).unwrap())
    }

    #[test]
    fn a_uuid_is_read_whole_and_anything_else_is_not_one() {
        let cases = [
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "0123abcd-4567-89ef-fedc-ba9876543210",
            "8f1c2a44-7b0e-4d6f-9a31-0c5e7d2b1f90",
            // Upper case, braces, a hyphen moved, a digit short or over,
            // a non-hex letter, a multibyte character of the right length,
            // and a digit where each hyphen goes.
            "0123ABCD-4567-89ef-fedc-ba9876543210",
            "{123abcd-4567-89ef-fedc-ba987654321}",
            "0123abc-d4567-89ef-fedc-ba9876543210",
            "0123abcd-4567-89ef-fedc-ba987654321",
            "0123abcd-4567-89ef-fedc-ba98765432100",
            "0123abcd-4567-89ef-fedc-ba987654321g",
            "0123abcd-4567-89ef-fedc-ba98765432é",
            "0123abcd04567089ef0fedc0ba9876543210",
            "",
        ];
        for id in cases {
            assert_eq!(uuid_value(id), uuid_by_parts(id), "{id}");
            assert_eq!(is_valid_uuid(id), uuid_by_parts(id).is_some(), "{id}");
        }
        assert_eq!(
            uuid_value("0123abcd-4567-89ef-fedc-ba9876543210"),
            Some(0x0123abcd_4567_89ef_fedc_ba9876543210)
        );
    }

    fn refusal(value: &str, chars_max: usize) -> Option<String> {
        text("note", value.to_owned(), chars_max)
            .err()
            .map(|r| r.to_string())
    }

    #[test]
    fn text_is_checked_alike_in_ascii_and_beyond() {
        // Every control, ASCII (C0 and DEL) or not (C1), in either kind of text.
        for control in ['\0', '\n', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}'] {
            for text in [format!("ab{control}c"), format!("Hòa{control}")] {
                let refused = refusal(&text, 10).expect("a control is refused");
                assert!(
                    refused.contains(&format!("U+{:04X}", u32::from(control))),
                    "{refused}"
                );
            }
        }
        // Length in characters, not bytes: at the limit and one over.
        assert_eq!(refusal(&"a".repeat(5), 5), None);
        assert_eq!(refusal(&"ư".repeat(5), 5), None);
        assert!(
            refusal(&"a".repeat(6), 5)
                .unwrap()
                .contains("has 6 characters")
        );
        assert!(
            refusal(&"ư".repeat(6), 5)
                .unwrap()
                .contains("has 6 characters")
        );
        // NFC: precomposed passes, decomposed does not; a control is named first.
        assert_eq!(refusal("Hòa Bình", 200), None);
        assert!(refusal("Ho\u{300}a", 200).unwrap().contains("NFC"));
        assert!(refusal("Ho\u{300}a\n", 200).unwrap().contains("U+000A"));
    }

    fn surely_nfc_range(c: char) -> bool {
        matches!(u32::from(c), 0..=0x2ff | 0x1e00..=0x1eff)
    }

    /// The premise of the byte scan's shortcut, from the Unicode tables.
    #[test]
    fn the_characters_taken_as_nfc_are_starters_that_nfc_keeps() {
        use unicode_normalization::char::canonical_combining_class;
        use unicode_normalization::{IsNormalized, is_nfc_quick};
        let taken = (0..=0x2ff)
            .chain(0x1e00..=0x1eff)
            .filter_map(char::from_u32);
        for c in taken {
            assert_eq!(canonical_combining_class(c), 0, "U+{:04X}", u32::from(c));
            assert_eq!(
                is_nfc_quick(std::iter::once(c)),
                IsNormalized::Yes,
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    /// The byte scan reads every character as the character checks do.
    #[test]
    fn the_byte_scan_agrees_with_reading_characters() {
        for c in (0..=0x3_0000).filter_map(char::from_u32) {
            for text in [
                format!("{c}"),
                format!("a{c}"),
                format!("{c}ư"),
                format!("ế{c}{c}"),
            ] {
                let scan = scan_text(&text);
                assert_eq!(scan.chars, text.chars().count(), "{text:?}");
                assert_eq!(scan.control, text.chars().any(char::is_control), "{text:?}");
                assert_eq!(
                    scan.surely_nfc,
                    text.chars().all(surely_nfc_range),
                    "{text:?}"
                );
            }
        }
    }
}
