//! The readable JSON form of events and entries, both ways.
//!
//! An event is one object: `event_id` (optional: a random UUID when absent),
//! `org_id` (optional with `--org`), `occurred_at` (optional RFC 3339 time:
//! now when absent), and exactly one body field named as in SPEC §7
//! (`receipt`, `transfer`, `delivery`, ...) holding that message's fields.
//! Enums are names, with or without their prefix (`"NUTRITION"` or
//! `"CATEGORY_NUTRITION"`); bytes are hex; quantities are integers (or
//! decimal strings, for tools that lose precision above 2^53). A receipt may
//! give `external_ref` (the plain bank or delivery-note reference) instead of
//! `external_ref_hash`: it is hashed here with the ledger's reference key
//! `K_ref` (SPEC §7.5) and never sent.
//!
//! Reading is strict: an unknown field, a wrong type or a second body is an
//! error naming the field path (`receipt.quantity: expected a non-negative
//! integer, found -5`). Missing fields take the protobuf default; whether
//! that is acceptable is for the ledger's field rules, which `aidctl` runs
//! locally before signing.
//!
//! Writing gives the same form (short enum names, fields in `.proto`
//! order, empty strings and bytes left out), so what `aidctl get` prints can
//! be read back.

use std::fmt;

use aidledger_client::VerifiedEntry;
use aidledger_ledger::privacy::RefKey;
use aidledger_wire::Timestamp;
use aidledger_wire::pb;
use aidledger_wire::pb::event::Body;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

/// The body field names of SPEC §7, in `.proto` order.
pub use aidledger_ledger::event::KIND_NAMES as KINDS;

/// A malformed JSON event: the field path and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// `receipt.quantity`, `delivery.evidence_hashes[2]`; empty for the
    /// event itself.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

impl JsonError {
    fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        JsonError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for JsonError {}

/// What an event that leaves a field out gets.
#[derive(Clone, Debug)]
pub struct EventDefaults {
    /// The acting organisation when `org_id` is absent; when both are given
    /// they must agree.
    pub org_id: Option<String>,
    /// `occurred_at` when absent.
    pub now: Timestamp,
    /// SPEC §7.5 `K_ref`, to hash an `external_ref`; without it a plain
    /// reference is refused rather than hashed unkeyed.
    pub ref_key: Option<RefKey>,
}

/// Reads one event from its JSON form. `new_event_id` is called only when
/// the event names no `event_id`.
pub fn event_from_json(
    value: Value,
    defaults: &EventDefaults,
    new_event_id: impl FnOnce() -> String,
) -> Result<pb::Event, JsonError> {
    let mut fields = Fields::new("", value)?;
    let event_id = match fields.string("event_id")? {
        id if id.is_empty() => new_event_id(),
        id => id,
    };
    let org_id = match (fields.string("org_id")?, &defaults.org_id) {
        (given, None) => given,
        (given, Some(default)) if given.is_empty() => default.clone(),
        (given, Some(default)) if given == *default => given,
        (given, Some(default)) => {
            return Err(JsonError::at(
                "org_id",
                format!("{given:?} differs from --org {default:?}"),
            ));
        }
    };
    let occurred_at = match fields.take("occurred_at") {
        None => defaults.now,
        Some(value) => timestamp(&fields.path_of("occurred_at"), value)?,
    };
    let present: Vec<&'static str> = KINDS
        .iter()
        .copied()
        .filter(|kind| fields.map.contains_key(*kind))
        .collect();
    let kind = match present.as_slice() {
        [kind] => *kind,
        [] => {
            return Err(JsonError::at(
                "",
                format!("no event body: expected one of {}", KINDS.join(", ")),
            ));
        }
        several => {
            return Err(JsonError::at(
                "",
                format!("one event has one body, found {}", several.join(" and ")),
            ));
        }
    };
    let body_value = fields.take(kind).unwrap_or(Value::Null);
    let body = body_from_json(kind, body_value, defaults.ref_key.as_ref())?;
    fields.finish()?;
    Ok(pb::Event {
        event_id,
        org_id,
        occurred_at: Some(occurred_at),
        body: Some(body),
    })
}

/// One event read from a file: where it was, and the event.
#[derive(Clone, Debug, PartialEq)]
pub struct LocatedEvent {
    /// `line 3`, or `line 1, item 4` inside a JSON array.
    pub location: String,
    /// The event, well-formed by the ledger's field rules.
    pub event: pb::Event,
}

/// Reads every event of a file: one JSON object, a JSON array of objects,
/// or JSON lines (any sequence of objects separated by whitespace). Each
/// event is also checked against the ledger's field rules
/// (`aidledger_ledger::decode`), so ids, text, quantities and enums are
/// refused here, before anything is signed.
///
/// Returns the events and, separately, every error with its location; a
/// JSON syntax error stops the reading.
pub fn read_event_file(
    text: &str,
    defaults: &EventDefaults,
    mut new_event_id: impl FnMut() -> String,
) -> (Vec<LocatedEvent>, Vec<String>) {
    let mut events: Vec<LocatedEvent> = Vec::new();
    let mut errors = Vec::new();
    let mut first_location: std::collections::HashMap<String, String> =
        std::collections::HashMap::new();
    let mut accept = |location: String, value: Value| {
        let event = match event_from_json(value, defaults, &mut new_event_id) {
            Ok(event) => event,
            Err(error) => return errors.push(format!("{location}: {error}")),
        };
        if let Err(rejection) = aidledger_ledger::decode::event_from_pb(event.clone()) {
            return errors.push(format!("{location}: {rejection}"));
        }
        if let Some(first) = first_location.get(&event.event_id) {
            return errors.push(format!(
                "{location}: event_id {} is also the id of the event at {first}",
                event.event_id
            ));
        }
        first_location.insert(event.event_id.clone(), location.clone());
        events.push(LocatedEvent { location, event });
    };
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let offset = stream.byte_offset();
        let rest = &text[offset..];
        let start = offset + (rest.len() - rest.trim_start().len());
        let line = 1 + text[..start].matches('\n').count();
        match stream.next() {
            None => break,
            Some(Err(error)) => {
                errors.push(format!("invalid JSON: {error}"));
                break;
            }
            Some(Ok(Value::Array(items))) => {
                for (i, item) in items.into_iter().enumerate() {
                    accept(format!("line {line}, item {i}"), item);
                }
            }
            Some(Ok(value)) => accept(format!("line {line}"), value),
        }
    }
    (events, errors)
}

/// Parses a category name (`NUTRITION` or `CATEGORY_NUTRITION`).
pub fn parse_category(text: &str) -> Result<i32, String> {
    CATEGORY.parse("", text).map_err(|error| error.message)
}

fn timestamp(path: &str, value: Value) -> Result<Timestamp, JsonError> {
    let expected = "expected an RFC 3339 time such as \"2024-03-01T09:30:00+07:00\"";
    match value {
        Value::String(text) => text
            .parse::<Timestamp>()
            .map_err(|_| JsonError::at(path, format!("{expected}, found {text:?}"))),
        other => Err(JsonError::at(
            path,
            format!("{expected}, found {}", describe(&other)),
        )),
    }
}

fn body_from_json(
    kind: &'static str,
    value: Value,
    ref_key: Option<&RefKey>,
) -> Result<Body, JsonError> {
    let mut f = Fields::new(kind, value)?;
    let body = match kind {
        "genesis" => Body::Genesis(pb::Genesis {
            origin: f.string("origin")?,
            authority_org_id: f.string("authority_org_id")?,
            authority_name: f.string("authority_name")?,
            authority_public_key: f.hex("authority_public_key")?,
            log_vkey: f.string("log_vkey")?,
        }),
        "register_org" => Body::RegisterOrg(pb::RegisterOrganization {
            org_id: f.string("org_id")?,
            name: f.string("name")?,
            kind: f.enumeration("kind", &ORG_KIND)?,
            parent_org_id: f.string("parent_org_id")?,
            commune_code: f.string("commune_code")?,
            public_name: f.bool("public_name")?,
            name_commitment: f.hex("name_commitment")?,
        }),
        "register_key" => Body::RegisterKey(pb::RegisterKey {
            org_id: f.string("org_id")?,
            public_key: f.hex("public_key")?,
            roles: f.enumeration_list("roles", &ROLE)?,
            label: f.string("label")?,
        }),
        "revoke_key" => Body::RevokeKey(pb::RevokeKey {
            public_key: f.hex("public_key")?,
            reason: f.string("reason")?,
        }),
        "register_commune" => Body::RegisterCommune(pb::RegisterCommune {
            commune_code: f.string("commune_code")?,
            name: f.string("name")?,
            district: f.string("district")?,
            province: f.string("province")?,
            children_count: f.u32("children_count")?,
        }),
        "register_asset" => Body::RegisterAsset(pb::RegisterAsset {
            asset_id: f.string("asset_id")?,
            name: f.string("name")?,
            unit: f.string("unit")?,
            unit_value_vnd: f.u64("unit_value_vnd")?,
            in_kind: f.bool("in_kind")?,
        }),
        "publish_need" => Body::PublishNeed(pb::PublishNeed {
            need_id: f.string("need_id")?,
            commune_code: f.string("commune_code")?,
            category: f.enumeration("category", &CATEGORY)?,
            year: f.u32("year")?,
            asset_id: f.string("asset_id")?,
            quantity: f.u64("quantity")?,
            children_targeted: f.u32("children_targeted")?,
            description: f.string("description")?,
        }),
        "publish_plan" => Body::PublishPlan(pb::PublishAnnualPlan {
            year: f.u32("year")?,
            targets: f
                .list("targets")?
                .into_iter()
                .map(|(path, value)| plan_target(&path, value))
                .collect::<Result<_, _>>()?,
        }),
        "pledge" => Body::Pledge(pb::Pledge {
            pledge_id: f.string("pledge_id")?,
            donor_org_id: f.string("donor_org_id")?,
            recipient_org_id: f.string("recipient_org_id")?,
            asset_id: f.string("asset_id")?,
            quantity: f.u64("quantity")?,
            earmark: f.earmark("earmark")?,
            due_date: f.string("due_date")?,
        }),
        "cancel_pledge" => Body::CancelPledge(pb::CancelPledge {
            pledge_id: f.string("pledge_id")?,
            reason: f.string("reason")?,
        }),
        "receipt" => Body::Receipt(pb::Receipt {
            receipt_id: f.string("receipt_id")?,
            donor_org_id: f.string("donor_org_id")?,
            pledge_id: f.string("pledge_id")?,
            asset_id: f.string("asset_id")?,
            quantity: f.u64("quantity")?,
            earmark: f.earmark("earmark")?,
            external_ref_hash: external_ref_hash(&mut f, ref_key)?,
            note: f.string("note")?,
        }),
        "transfer" => Body::Transfer(pb::Transfer {
            transfer_id: f.string("transfer_id")?,
            to_org_id: f.string("to_org_id")?,
            asset_id: f.string("asset_id")?,
            quantity: f.u64("quantity")?,
            earmark: f.earmark("earmark")?,
            note: f.string("note")?,
        }),
        "transfer_received" => Body::TransferReceived(pb::TransferReceived {
            transfer_id: f.string("transfer_id")?,
            quantity_received: f.u64("quantity_received")?,
            note: f.string("note")?,
        }),
        "delivery" => Body::Delivery(pb::Delivery {
            delivery_id: f.string("delivery_id")?,
            commune_code: f.string("commune_code")?,
            category: f.enumeration("category", &CATEGORY)?,
            asset_id: f.string("asset_id")?,
            quantity: f.u64("quantity")?,
            earmark: f.earmark("earmark")?,
            children_reached: f.u32("children_reached")?,
            beneficiary_tokens: f.hex_list("beneficiary_tokens")?,
            evidence_hashes: f.hex_list("evidence_hashes")?,
            period: f.string("period")?,
            note: f.string("note")?,
        }),
        "inspection" => Body::Inspection(pb::GoodsInspection {
            subject_id: f.string("subject_id")?,
            passed: f.bool("passed")?,
            standard: f.string("standard")?,
            note: f.string("note")?,
        }),
        "reversal" => Body::Reversal(pb::Reversal {
            target_event_id: f.string("target_event_id")?,
            reason: f.string("reason")?,
        }),
        "commendation" => Body::Commendation(pb::Commendation {
            honoree_org_id: f.string("honoree_org_id")?,
            year: f.u32("year")?,
            decision_ref: f.string("decision_ref")?,
            reason: f.string("reason")?,
        }),
        other => unreachable!("{other} is not in KINDS"),
    };
    f.finish()?;
    Ok(body)
}

fn plan_target(path: &str, value: Value) -> Result<pb::PlanTarget, JsonError> {
    let mut f = Fields::new(path, value)?;
    let target = pb::PlanTarget {
        category: f.enumeration("category", &CATEGORY)?,
        commune_code: f.string("commune_code")?,
        asset_id: f.string("asset_id")?,
        quantity: f.u64("quantity")?,
        children_targeted: f.u32("children_targeted")?,
    };
    f.finish()?;
    Ok(target)
}

/// `external_ref_hash` as hex, or `external_ref` as text to hash with
/// `K_ref` (SPEC §7.5: HMAC-SHA256 of the normalised reference); not both.
fn external_ref_hash(f: &mut Fields, ref_key: Option<&RefKey>) -> Result<Vec<u8>, JsonError> {
    let hash = f.hex("external_ref_hash")?;
    let reference = f.string("external_ref")?;
    match (hash.is_empty(), reference.is_empty(), ref_key) {
        (_, true, _) => Ok(hash),
        (true, false, Some(key)) => Ok(key.external_ref_hash(&reference).to_vec()),
        (true, false, None) => Err(JsonError::at(
            f.path_of("external_ref"),
            "hashing a reference needs the ledger's reference key: pass --ref-key FILE \
             (or set AIDLEDGER_REF_KEY); an unkeyed hash could be guessed by anyone (SPEC 7.5)",
        )),
        (false, false, _) => Err(JsonError::at(
            f.path_of("external_ref"),
            "give external_ref or external_ref_hash, not both",
        )),
    }
}

/// An enum of the protos: its name prefix and its name lookups.
struct EnumKind {
    /// What it is called in messages.
    what: &'static str,
    /// `CATEGORY_`.
    prefix: &'static str,
    from_name: fn(&str) -> Option<i32>,
    name_of: fn(i32) -> Option<&'static str>,
}

impl EnumKind {
    /// The short names of the specified values, for error messages.
    fn names(&self) -> Vec<&'static str> {
        (1..)
            .map_while(|value| (self.name_of)(value))
            .map(|name| name.strip_prefix(self.prefix).unwrap_or(name))
            .collect()
    }

    fn parse(&self, path: &str, text: &str) -> Result<i32, JsonError> {
        let upper = text.trim().to_ascii_uppercase();
        let full = if upper.starts_with(self.prefix) {
            upper
        } else {
            format!("{}{upper}", self.prefix)
        };
        (self.from_name)(&full).ok_or_else(|| {
            JsonError::at(
                path,
                format!(
                    "expected a {} ({}), found {text:?}",
                    self.what,
                    self.names().join(", ")
                ),
            )
        })
    }

    /// The short name, or the number for a value this build does not know.
    fn write(&self, value: i32) -> Out {
        match (self.name_of)(value) {
            Some(name) => Out::Str(name.strip_prefix(self.prefix).unwrap_or(name).to_owned()),
            None => Out::I64(i64::from(value)),
        }
    }
}

const CATEGORY: EnumKind = EnumKind {
    what: "category",
    prefix: "CATEGORY_",
    from_name: |name| pb::Category::from_str_name(name).map(|v| v as i32),
    name_of: |value| pb::Category::try_from(value).ok().map(|v| v.as_str_name()),
};

const ROLE: EnumKind = EnumKind {
    what: "role",
    prefix: "ROLE_",
    from_name: |name| pb::Role::from_str_name(name).map(|v| v as i32),
    name_of: |value| pb::Role::try_from(value).ok().map(|v| v.as_str_name()),
};

const ORG_KIND: EnumKind = EnumKind {
    what: "organisation kind",
    prefix: "ORG_KIND_",
    from_name: |name| pb::OrgKind::from_str_name(name).map(|v| v as i32),
    name_of: |value| pb::OrgKind::try_from(value).ok().map(|v| v.as_str_name()),
};

/// `"a string"`, `"the number -5"`: what a JSON value is, for messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("{n}"),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The fields of one JSON object, taken one by one; [`Fields::finish`]
/// refuses any left over.
struct Fields {
    path: String,
    map: Map<String, Value>,
    known: Vec<&'static str>,
}

impl Fields {
    fn new(path: &str, value: Value) -> Result<Self, JsonError> {
        match value {
            Value::Object(map) => Ok(Fields {
                path: path.to_owned(),
                map,
                known: Vec::new(),
            }),
            other => Err(JsonError::at(
                path,
                format!("expected an object, found {}", describe(&other)),
            )),
        }
    }

    fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The value of `name`; `null` counts as absent.
    fn take(&mut self, name: &'static str) -> Option<Value> {
        self.known.push(name);
        self.map.remove(name).filter(|value| !value.is_null())
    }

    fn string(&mut self, name: &'static str) -> Result<String, JsonError> {
        match self.take(name) {
            None => Ok(String::new()),
            Some(Value::String(text)) => Ok(text),
            Some(other) => Err(JsonError::at(
                self.path_of(name),
                format!("expected a string, found {}", describe(&other)),
            )),
        }
    }

    fn u64(&mut self, name: &'static str) -> Result<u64, JsonError> {
        let path = self.path_of(name);
        match self.take(name) {
            None => Ok(0),
            Some(value) => parse_u64(&path, &value),
        }
    }

    fn u32(&mut self, name: &'static str) -> Result<u32, JsonError> {
        let path = self.path_of(name);
        let value = self.u64(name)?;
        u32::try_from(value).map_err(|_| {
            JsonError::at(
                path,
                format!("expected an integer up to {}, found {value}", u32::MAX),
            )
        })
    }

    fn bool(&mut self, name: &'static str) -> Result<bool, JsonError> {
        match self.take(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(other) => Err(JsonError::at(
                self.path_of(name),
                format!("expected true or false, found {}", describe(&other)),
            )),
        }
    }

    fn hex(&mut self, name: &'static str) -> Result<Vec<u8>, JsonError> {
        let path = self.path_of(name);
        match self.take(name) {
            None => Ok(Vec::new()),
            Some(value) => parse_hex(&path, &value),
        }
    }

    fn hex_list(&mut self, name: &'static str) -> Result<Vec<Vec<u8>>, JsonError> {
        self.list(name)?
            .into_iter()
            .map(|(path, value)| parse_hex(&path, &value))
            .collect()
    }

    /// The items of an array field with their paths (`name[3]`).
    fn list(&mut self, name: &'static str) -> Result<Vec<(String, Value)>, JsonError> {
        let path = self.path_of(name);
        match self.take(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, item)| (format!("{path}[{i}]"), item))
                .collect()),
            Some(other) => Err(JsonError::at(
                path,
                format!("expected an array, found {}", describe(&other)),
            )),
        }
    }

    fn enumeration(&mut self, name: &'static str, kind: &EnumKind) -> Result<i32, JsonError> {
        let path = self.path_of(name);
        match self.take(name) {
            None => Ok(0),
            Some(Value::String(text)) => kind.parse(&path, &text),
            Some(other) => Err(JsonError::at(
                path,
                format!(
                    "expected a {} name ({}), found {}",
                    kind.what,
                    kind.names().join(", "),
                    describe(&other)
                ),
            )),
        }
    }

    fn enumeration_list(
        &mut self,
        name: &'static str,
        kind: &EnumKind,
    ) -> Result<Vec<i32>, JsonError> {
        self.list(name)?
            .into_iter()
            .map(|(path, value)| match value {
                Value::String(text) => kind.parse(&path, &text),
                other => Err(JsonError::at(
                    path,
                    format!("expected a {} name, found {}", kind.what, describe(&other)),
                )),
            })
            .collect()
    }

    fn earmark(&mut self, name: &'static str) -> Result<Option<pb::Earmark>, JsonError> {
        let path = self.path_of(name);
        let Some(value) = self.take(name) else {
            return Ok(None);
        };
        let mut f = Fields::new(&path, value)?;
        let earmark = pb::Earmark {
            commune_code: f.string("commune_code")?,
            category: f.enumeration("category", &CATEGORY)?,
        };
        f.finish()?;
        Ok(Some(earmark))
    }

    /// Refuses fields nobody asked for: a misspelt field is an error, not a
    /// silently missing value.
    fn finish(self) -> Result<(), JsonError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(JsonError::at(
                self.path_of(unknown),
                format!("unknown field (expected {})", self.known.join(", ")),
            )),
        }
    }
}

fn parse_u64(path: &str, value: &Value) -> Result<u64, JsonError> {
    let expected = "expected a non-negative integer";
    match value {
        Value::Number(number) => number
            .as_u64()
            .ok_or_else(|| JsonError::at(path, format!("{expected}, found {number}"))),
        // Decimal digits only: no sign, no exponent, no separators.
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text
            .parse()
            .map_err(|_| JsonError::at(path, format!("{text:?} is larger than {}", u64::MAX))),
        other => Err(JsonError::at(
            path,
            format!("{expected}, found {}", describe(other)),
        )),
    }
}

fn parse_hex(path: &str, value: &Value) -> Result<Vec<u8>, JsonError> {
    match value {
        Value::String(text) => hex::decode(text)
            .map_err(|error| JsonError::at(path, format!("expected hex bytes: {error}"))),
        other => Err(JsonError::at(
            path,
            format!("expected hex bytes, found {}", describe(other)),
        )),
    }
}

/// JSON to print, with its fields in a chosen order (`serde_json::Value`
/// sorts them).
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    Str(String),
    U64(u64),
    I64(i64),
    Bool(bool),
    List(Vec<Out>),
    Object(Vec<(&'static str, Out)>),
}

impl Serialize for Out {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Str(text) => serializer.serialize_str(text),
            Out::U64(n) => serializer.serialize_u64(*n),
            Out::I64(n) => serializer.serialize_i64(*n),
            Out::Bool(b) => serializer.serialize_bool(*b),
            Out::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Out::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
    }
}

/// Builds an [`Out::Object`], leaving out empty strings, bytes and lists
/// (they read back as the same protobuf default).
#[derive(Default)]
struct Obj(Vec<(&'static str, Out)>);

impl Obj {
    fn str(mut self, name: &'static str, value: &str) -> Self {
        if !value.is_empty() {
            self.0.push((name, Out::Str(value.to_owned())));
        }
        self
    }

    fn u64(mut self, name: &'static str, value: u64) -> Self {
        self.0.push((name, Out::U64(value)));
        self
    }

    fn bool(mut self, name: &'static str, value: bool) -> Self {
        self.0.push((name, Out::Bool(value)));
        self
    }

    fn hex(mut self, name: &'static str, value: &[u8]) -> Self {
        if !value.is_empty() {
            self.0.push((name, Out::Str(hex::encode(value))));
        }
        self
    }

    fn hex_list(mut self, name: &'static str, values: &[Vec<u8>]) -> Self {
        if !values.is_empty() {
            let items = values.iter().map(|v| Out::Str(hex::encode(v))).collect();
            self.0.push((name, Out::List(items)));
        }
        self
    }

    fn enumeration(mut self, name: &'static str, kind: &EnumKind, value: i32) -> Self {
        if value != 0 {
            self.0.push((name, kind.write(value)));
        }
        self
    }

    fn earmark(mut self, name: &'static str, earmark: Option<&pb::Earmark>) -> Self {
        // Kept even when empty: `Some(default)` and `None` encode differently.
        if let Some(earmark) = earmark {
            let value = Obj::default()
                .str("commune_code", &earmark.commune_code)
                .enumeration("category", &CATEGORY, earmark.category)
                .done();
            self.0.push((name, value));
        }
        self
    }

    fn out(mut self, name: &'static str, value: Out) -> Self {
        self.0.push((name, value));
        self
    }

    fn done(self) -> Out {
        Out::Object(self.0)
    }
}

/// RFC 3339 in UTC, as prost writes it.
pub fn format_timestamp(timestamp: &Timestamp) -> String {
    timestamp.to_string()
}

/// The JSON form of an event; [`event_from_json`] reads it back.
pub fn event_to_json(event: &pb::Event) -> Out {
    let mut obj = Obj::default()
        .str("event_id", &event.event_id)
        .str("org_id", &event.org_id);
    if let Some(occurred_at) = &event.occurred_at {
        obj = obj.out("occurred_at", Out::Str(format_timestamp(occurred_at)));
    }
    if let Some(body) = &event.body {
        let (kind, value) = body_to_json(body);
        obj = obj.out(kind, value);
    }
    obj.done()
}

fn body_to_json(body: &Body) -> (&'static str, Out) {
    let o = Obj::default();
    match body {
        Body::Genesis(g) => (
            "genesis",
            o.str("origin", &g.origin)
                .str("authority_org_id", &g.authority_org_id)
                .str("authority_name", &g.authority_name)
                .hex("authority_public_key", &g.authority_public_key)
                .str("log_vkey", &g.log_vkey)
                .done(),
        ),
        Body::RegisterOrg(r) => (
            "register_org",
            o.str("org_id", &r.org_id)
                .str("name", &r.name)
                .enumeration("kind", &ORG_KIND, r.kind)
                .str("parent_org_id", &r.parent_org_id)
                .str("commune_code", &r.commune_code)
                .bool("public_name", r.public_name)
                .hex("name_commitment", &r.name_commitment)
                .done(),
        ),
        Body::RegisterKey(r) => {
            let roles = r.roles.iter().map(|&role| ROLE.write(role)).collect();
            (
                "register_key",
                o.str("org_id", &r.org_id)
                    .hex("public_key", &r.public_key)
                    .out("roles", Out::List(roles))
                    .str("label", &r.label)
                    .done(),
            )
        }
        Body::RevokeKey(r) => (
            "revoke_key",
            o.hex("public_key", &r.public_key)
                .str("reason", &r.reason)
                .done(),
        ),
        Body::RegisterCommune(c) => (
            "register_commune",
            o.str("commune_code", &c.commune_code)
                .str("name", &c.name)
                .str("district", &c.district)
                .str("province", &c.province)
                .u64("children_count", c.children_count.into())
                .done(),
        ),
        Body::RegisterAsset(a) => (
            "register_asset",
            o.str("asset_id", &a.asset_id)
                .str("name", &a.name)
                .str("unit", &a.unit)
                .u64("unit_value_vnd", a.unit_value_vnd)
                .bool("in_kind", a.in_kind)
                .done(),
        ),
        Body::PublishNeed(n) => (
            "publish_need",
            o.str("need_id", &n.need_id)
                .str("commune_code", &n.commune_code)
                .enumeration("category", &CATEGORY, n.category)
                .u64("year", n.year.into())
                .str("asset_id", &n.asset_id)
                .u64("quantity", n.quantity)
                .u64("children_targeted", n.children_targeted.into())
                .str("description", &n.description)
                .done(),
        ),
        Body::PublishPlan(p) => {
            let targets = p
                .targets
                .iter()
                .map(|t| {
                    Obj::default()
                        .enumeration("category", &CATEGORY, t.category)
                        .str("commune_code", &t.commune_code)
                        .str("asset_id", &t.asset_id)
                        .u64("quantity", t.quantity)
                        .u64("children_targeted", t.children_targeted.into())
                        .done()
                })
                .collect();
            (
                "publish_plan",
                o.u64("year", p.year.into())
                    .out("targets", Out::List(targets))
                    .done(),
            )
        }
        Body::Pledge(p) => (
            "pledge",
            o.str("pledge_id", &p.pledge_id)
                .str("donor_org_id", &p.donor_org_id)
                .str("recipient_org_id", &p.recipient_org_id)
                .str("asset_id", &p.asset_id)
                .u64("quantity", p.quantity)
                .earmark("earmark", p.earmark.as_ref())
                .str("due_date", &p.due_date)
                .done(),
        ),
        Body::CancelPledge(c) => (
            "cancel_pledge",
            o.str("pledge_id", &c.pledge_id)
                .str("reason", &c.reason)
                .done(),
        ),
        Body::Receipt(r) => (
            "receipt",
            o.str("receipt_id", &r.receipt_id)
                .str("donor_org_id", &r.donor_org_id)
                .str("pledge_id", &r.pledge_id)
                .str("asset_id", &r.asset_id)
                .u64("quantity", r.quantity)
                .earmark("earmark", r.earmark.as_ref())
                .hex("external_ref_hash", &r.external_ref_hash)
                .str("note", &r.note)
                .done(),
        ),
        Body::Transfer(t) => (
            "transfer",
            o.str("transfer_id", &t.transfer_id)
                .str("to_org_id", &t.to_org_id)
                .str("asset_id", &t.asset_id)
                .u64("quantity", t.quantity)
                .earmark("earmark", t.earmark.as_ref())
                .str("note", &t.note)
                .done(),
        ),
        Body::TransferReceived(t) => (
            "transfer_received",
            o.str("transfer_id", &t.transfer_id)
                .u64("quantity_received", t.quantity_received)
                .str("note", &t.note)
                .done(),
        ),
        Body::Delivery(d) => (
            "delivery",
            o.str("delivery_id", &d.delivery_id)
                .str("commune_code", &d.commune_code)
                .enumeration("category", &CATEGORY, d.category)
                .str("asset_id", &d.asset_id)
                .u64("quantity", d.quantity)
                .earmark("earmark", d.earmark.as_ref())
                .u64("children_reached", d.children_reached.into())
                .hex_list("beneficiary_tokens", &d.beneficiary_tokens)
                .hex_list("evidence_hashes", &d.evidence_hashes)
                .str("period", &d.period)
                .str("note", &d.note)
                .done(),
        ),
        Body::Inspection(i) => (
            "inspection",
            o.str("subject_id", &i.subject_id)
                .bool("passed", i.passed)
                .str("standard", &i.standard)
                .str("note", &i.note)
                .done(),
        ),
        Body::Reversal(r) => (
            "reversal",
            o.str("target_event_id", &r.target_event_id)
                .str("reason", &r.reason)
                .done(),
        ),
        Body::Commendation(c) => (
            "commendation",
            o.str("honoree_org_id", &c.honoree_org_id)
                .u64("year", c.year.into())
                .str("decision_ref", &c.decision_ref)
                .str("reason", &c.reason)
                .done(),
        ),
    }
}

/// The JSON form of a checked ledger entry: its position and hashes, the
/// signer and signature, and the event.
pub fn entry_to_json(entry: &VerifiedEntry) -> Out {
    let recorded_at = Timestamp {
        seconds: entry.recorded_at.seconds,
        nanos: i32::try_from(entry.recorded_at.nanos).unwrap_or(i32::MAX),
    };
    Obj::default()
        .u64("seq", entry.seq)
        .out("recorded_at", Out::Str(format_timestamp(&recorded_at)))
        .hex("leaf_hash", &entry.leaf_hash)
        .hex("prev_hash", &entry.prev_hash)
        .hex("signer", &entry.signed_event.public_key)
        .hex("signature", &entry.signed_event.signature)
        .out("event", event_to_json(&entry.event))
        .done()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn defaults() -> EventDefaults {
        EventDefaults {
            org_id: None,
            now: Timestamp {
                seconds: 1_709_251_200,
                nanos: 0,
            },
            ref_key: Some(test_ref_key()),
        }
    }

    fn test_ref_key() -> RefKey {
        RefKey(aidledger_ledger::privacy::SecretKey32::from_bytes(
            [0x33; 32],
        ))
    }

    fn read(value: Value) -> Result<pb::Event, JsonError> {
        event_from_json(value, &defaults(), || {
            "00000000-0000-4000-8000-000000000001".to_owned()
        })
    }

    fn error(value: Value) -> String {
        read(value).unwrap_err().to_string()
    }

    /// One example of every kind, as documented in the report and README.
    fn examples() -> Vec<Value> {
        let event = |body: Value| {
            let mut object = json!({
                "event_id": "3b0f1a52-7c1e-4d7a-9f0e-2a6c5d4e8b10",
                "org_id": "ninhthuan.dolisa",
                "occurred_at": "2024-03-01T02:30:00Z",
            });
            object
                .as_object_mut()
                .unwrap()
                .extend(body.as_object().unwrap().clone());
            object
        };
        let hash = "ab".repeat(32);
        vec![
            event(json!({"genesis": {
                "origin": "aid.ninhthuan.example/children-2019-2025",
                "authority_org_id": "ninhthuan.dolisa",
                "authority_name": "Sở Lao động - Thương binh và Xã hội Ninh Thuận",
                "authority_public_key": "11".repeat(32),
                "log_vkey": "aid.ninhthuan.example/children-2019-2025+0a1b2c3d+AQ=="}})),
            event(json!({"register_org": {
                "org_id": "donor.acme", "name": "ACME Vietnam", "kind": "DONOR_BUSINESS",
                "commune_code": "22813", "public_name": true}})),
            event(json!({"register_key": {
                "org_id": "agency.red-cross", "public_key": "22".repeat(32),
                "roles": ["RECEIVE", "TRANSFER"], "label": "finance desk"}})),
            event(json!({"revoke_key": {"public_key": "22".repeat(32), "reason": "laptop lost"}})),
            event(json!({"register_commune": {
                "commune_code": "22813", "name": "Phước Hà", "district": "Thuận Nam",
                "province": "Ninh Thuận", "children_count": 1240}})),
            event(json!({"register_asset": {
                "asset_id": "RICE-KG", "name": "Rice", "unit": "kg",
                "unit_value_vnd": 18000, "in_kind": true}})),
            event(json!({"publish_need": {
                "need_id": "need-2024-001", "commune_code": "22813", "category": "NUTRITION",
                "year": 2024, "asset_id": "VND", "quantity": 150000000,
                "children_targeted": 300, "description": "School lunches, spring term"}})),
            event(json!({"publish_plan": {"year": 2024, "targets": [
                {"category": "HEALTH", "commune_code": "22813", "asset_id": "VND",
                 "quantity": 50000000, "children_targeted": 1240}]}})),
            event(json!({"pledge": {
                "pledge_id": "pledge-acme-1", "donor_org_id": "donor.acme",
                "recipient_org_id": "agency.red-cross", "asset_id": "VND", "quantity": 200000000,
                "earmark": {"commune_code": "22813", "category": "SCHOLARSHIP"},
                "due_date": "2024-06-30"}})),
            event(
                json!({"cancel_pledge": {"pledge_id": "pledge-acme-1", "reason": "donor withdrew"}}),
            ),
            event(json!({"receipt": {
                "receipt_id": "rcpt-0001", "donor_org_id": "donor.acme",
                "pledge_id": "pledge-acme-1", "asset_id": "VND", "quantity": 1500000,
                "earmark": {"category": "NUTRITION"}, "external_ref_hash": hash,
                "note": "first instalment"}})),
            event(json!({"transfer": {
                "transfer_id": "tr-0001", "to_org_id": "commune.phuoc-ha", "asset_id": "VND",
                "quantity": 1000000, "earmark": {}, "note": "March lunches"}})),
            event(json!({"transfer_received": {
                "transfer_id": "tr-0001", "quantity_received": 1000000}})),
            event(json!({"delivery": {
                "delivery_id": "dlv-0001", "commune_code": "22813", "category": "NUTRITION",
                "asset_id": "VND", "quantity": 900000, "children_reached": 45,
                "beneficiary_tokens": ["33".repeat(32), "44".repeat(32)],
                "evidence_hashes": [hash], "period": "2024-03"}})),
            event(json!({"inspection": {
                "subject_id": "rcpt-0001", "passed": false, "standard": "TCVN 11888:2017",
                "note": "moisture above limit"}})),
            event(json!({"reversal": {
                "target_event_id": "3b0f1a52-7c1e-4d7a-9f0e-2a6c5d4e8b10",
                "reason": "entered twice"}})),
            event(json!({"commendation": {
                "honoree_org_id": "donor.acme", "year": 2024,
                "decision_ref": "123/QĐ-UBND", "reason": "three years of school lunches"}})),
        ]
    }

    #[test]
    fn every_kind_has_an_example_and_round_trips() {
        let examples = examples();
        assert_eq!(examples.len(), KINDS.len());
        for (example, kind) in examples.into_iter().zip(KINDS) {
            let event = read(example.clone()).unwrap_or_else(|e| panic!("{kind}: {e}"));
            let written = serde_json::to_value(event_to_json(&event)).unwrap();
            assert_eq!(written, example, "{kind} prints as it was written");
            let again = read(written).unwrap();
            assert_eq!(again, event, "{kind} reads back to the same event");
        }
    }

    #[test]
    fn written_fields_keep_proto_order() {
        let event = read(examples().swap_remove(10)).unwrap();
        let text = serde_json::to_string(&event_to_json(&event)).unwrap();
        let order = [
            "\"event_id\"",
            "\"org_id\"",
            "\"occurred_at\"",
            "\"receipt\"",
            "\"receipt_id\"",
            "\"quantity\"",
            "\"note\"",
        ];
        let positions: Vec<usize> = order.iter().map(|key| text.find(key).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn defaults_fill_event_id_org_and_time() {
        let mut defaults = defaults();
        defaults.org_id = Some("agency.red-cross".into());
        let event = event_from_json(
            json!({"reversal": {"target_event_id": "x", "reason": "y"}}),
            &defaults,
            || "00000000-0000-4000-8000-00000000000a".into(),
        )
        .unwrap();
        assert_eq!(event.event_id, "00000000-0000-4000-8000-00000000000a");
        assert_eq!(event.org_id, "agency.red-cross");
        assert_eq!(event.occurred_at, Some(defaults.now));
        let conflict = event_from_json(
            json!({"org_id": "other", "reversal": {}}),
            &defaults,
            String::new,
        )
        .unwrap_err();
        assert_eq!(
            conflict.to_string(),
            "org_id: \"other\" differs from --org \"agency.red-cross\""
        );
    }

    #[test]
    fn enums_take_short_or_prefixed_names_in_any_case() {
        for name in ["NUTRITION", "CATEGORY_NUTRITION", "nutrition"] {
            let event = read(json!({"delivery": {"category": name}})).unwrap();
            let Some(Body::Delivery(delivery)) = event.body else {
                panic!("a delivery")
            };
            assert_eq!(delivery.category, pb::Category::Nutrition as i32);
        }
    }

    #[test]
    fn times_take_offsets() {
        let event =
            read(json!({"occurred_at": "2024-03-01T09:30:00+07:00", "reversal": {}})).unwrap();
        assert_eq!(
            event.occurred_at.unwrap().to_string(),
            "2024-03-01T02:30:00Z"
        );
    }

    #[test]
    fn external_ref_is_hashed_and_not_kept() {
        let event = read(json!({"receipt": {"external_ref": "FT24061BX9Q2"}})).unwrap();
        let Some(Body::Receipt(receipt)) = &event.body else {
            panic!("a receipt")
        };
        assert_eq!(
            receipt.external_ref_hash,
            test_ref_key().external_ref_hash("FT24061BX9Q2").to_vec()
        );
        let text = serde_json::to_string(&event_to_json(&event)).unwrap();
        assert!(!text.contains("FT24061BX9Q2"));
        assert_eq!(
            error(json!({"receipt": {"external_ref": "a", "external_ref_hash": "00"}})),
            "receipt.external_ref: give external_ref or external_ref_hash, not both"
        );
        // Without K_ref a reference is refused, never hashed unkeyed.
        let unkeyed = EventDefaults {
            ref_key: None,
            ..defaults()
        };
        let error = event_from_json(
            json!({"receipt": {"external_ref": "FT24061BX9Q2"}}),
            &unkeyed,
            || "00000000-0000-4000-8000-000000000001".to_owned(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("--ref-key"), "{error}");
        assert!(!error.contains("FT24061BX9Q2"), "{error}");
    }

    #[test]
    fn errors_name_the_field_and_what_was_found() {
        let cases = [
            (
                json!({"receipt": {"quantity": -5}}),
                "receipt.quantity: expected a non-negative integer, found -5",
            ),
            (
                json!({"receipt": {"quantity": 1.5}}),
                "receipt.quantity: expected a non-negative integer, found 1.5",
            ),
            (
                json!({"receipt": {"quantity": "1.500.000"}}),
                "receipt.quantity: expected a non-negative integer, found \"1.500.000\"",
            ),
            (
                json!({"receipt": {"quantty": 5}}),
                "receipt.quantty: unknown field (expected receipt_id, donor_org_id, pledge_id, asset_id, quantity, earmark, external_ref_hash, external_ref, note)",
            ),
            (
                json!({"receipt": {"earmark": {"category": "FOOD"}}}),
                "receipt.earmark.category: expected a category (HEALTH, NUTRITION, CULTURE_RECREATION, SCHOLARSHIP, BOOKS_SUPPLIES, CLOTHING, OTHER), found \"FOOD\"",
            ),
            (
                json!({"delivery": {"evidence_hashes": ["00", "zz"]}}),
                "delivery.evidence_hashes[1]: expected hex bytes: Invalid character 'z' at position 0",
            ),
            (
                json!({"register_key": {"roles": ["RECEIVE", 3]}}),
                "register_key.roles[1]: expected a role name, found 3",
            ),
            (
                json!({"commendation": {"year": 4294967296_u64}}),
                "commendation.year: expected an integer up to 4294967295, found 4294967296",
            ),
            (
                json!({"occurred_at": "yesterday", "reversal": {}}),
                "occurred_at: expected an RFC 3339 time such as \"2024-03-01T09:30:00+07:00\", found \"yesterday\"",
            ),
            (
                json!({"receipt": 5}),
                "receipt: expected an object, found 5",
            ),
            (
                json!({"org_id": 7, "reversal": {}}),
                "org_id: expected a string, found 7",
            ),
            (
                json!({"reversal": {}, "receipt": {}}),
                "one event has one body, found receipt and reversal",
            ),
            (
                json!({"reversal": {}, "colour": "red"}),
                "colour: unknown field (expected event_id, org_id, occurred_at, reversal)",
            ),
            (json!([1]), "expected an object, found an array"),
        ];
        for (input, expected) in cases {
            assert_eq!(error(input.clone()), expected, "input {input}");
        }
        assert!(
            error(json!({})).starts_with("no event body: expected one of genesis, register_org")
        );
    }

    #[test]
    fn quantities_may_be_decimal_strings() {
        let event = read(json!({"receipt": {"quantity": "1000000000000000"}})).unwrap();
        let Some(Body::Receipt(receipt)) = event.body else {
            panic!("a receipt")
        };
        assert_eq!(receipt.quantity, 1_000_000_000_000_000);
    }

    fn ids() -> impl FnMut() -> String {
        let mut next = 0;
        move || {
            next += 1;
            format!("00000000-0000-4000-8000-{next:012x}")
        }
    }

    #[test]
    fn files_may_be_one_object_an_array_or_json_lines() {
        let receipt = r#"{"org_id": "agency.red-cross", "receipt": {"receipt_id": "r1", "donor_org_id": "donor.acme", "asset_id": "VND", "quantity": 5}}"#;
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(receipt).unwrap()).unwrap();
        let (events, errors) = read_event_file(&pretty, &defaults(), ids());
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].location, "line 1");

        let lines = format!("{receipt}\n\n{}\n", receipt.replace("r1", "r2"));
        let (events, errors) = read_event_file(&lines, &defaults(), ids());
        assert_eq!(errors, Vec::<String>::new());
        let locations: Vec<&str> = events.iter().map(|e| e.location.as_str()).collect();
        assert_eq!(locations, ["line 1", "line 3"]);
        assert_ne!(events[0].event.event_id, events[1].event.event_id);

        let array = format!("\n[{receipt},\n {receipt}]");
        let (events, _) = read_event_file(&array, &defaults(), ids());
        let locations: Vec<&str> = events.iter().map(|e| e.location.as_str()).collect();
        assert_eq!(locations, ["line 2, item 0", "line 2, item 1"]);
    }

    #[test]
    fn file_errors_carry_the_line_and_the_ledgers_rule() {
        let text = concat!(
            r#"{"org_id": "a", "receipt": {"receipt_id": "r1", "donor_org_id": "d", "asset_id": "VND", "quantity": 5}}"#,
            "\n",
            r#"{"org_id": "a", "receipt": {"receipt_id": "r2", "donor_org_id": "d", "asset_id": "VND", "quantity": 0}}"#,
            "\n",
            r#"{"org_id": "a", "receipt": {"quantity": -1}}"#,
            "\n",
            r#"{"event_id": "00000000-0000-4000-8000-000000000001", "org_id": "a", "cancel_pledge": {"pledge_id": "p1", "reason": "r"}}"#,
            "\n",
            r#"{"org_id": "a", "#,
            "\n",
        );
        let (events, errors) = read_event_file(text, &defaults(), ids());
        assert_eq!(events.len(), 1);
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert_eq!(errors[0], "line 2: INVALID_QUANTITY: receipt.quantity is 0");
        assert_eq!(
            errors[1],
            "line 3: receipt.quantity: expected a non-negative integer, found -1"
        );
        assert_eq!(
            errors[2],
            "line 4: event_id 00000000-0000-4000-8000-000000000001 is also the id of the event at line 1"
        );
        assert!(errors[3].starts_with("invalid JSON: "), "{}", errors[3]);
    }

    #[test]
    fn category_names() {
        assert_eq!(parse_category("health"), Ok(pb::Category::Health as i32));
        assert!(parse_category("FOOD").unwrap_err().contains("NUTRITION"));
    }

    #[test]
    fn unknown_enum_values_print_as_numbers() {
        let event = pb::Event {
            body: Some(Body::Delivery(pb::Delivery {
                category: 42,
                ..Default::default()
            })),
            ..Default::default()
        };
        let written = serde_json::to_value(event_to_json(&event)).unwrap();
        assert_eq!(written["delivery"]["category"], json!(42));
    }
}
