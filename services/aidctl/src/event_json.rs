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
use std::sync::OnceLock;

use aidledger_client::VerifiedEntry;
use aidledger_ledger::privacy::RefKey;
use aidledger_wire::Message as _;
use aidledger_wire::Timestamp;
use aidledger_wire::pb;
use aidledger_wire::pb::event::Body;
use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    ReflectMessage as _, Value as ReflectValue,
};
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

/// The descriptors of our protos, from the descriptor set `aidledger-wire`
/// builds: the one source of every field name, type and order here.
fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(aidledger_wire::FILE_DESCRIPTOR_SET)
            .expect("aidledger-wire's descriptor set decodes")
    })
}

fn message_descriptor(name: &str) -> MessageDescriptor {
    pool()
        .get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} is in aidledger-wire's descriptor set"))
}

fn event_descriptor() -> MessageDescriptor {
    message_descriptor("aidledger.v1.Event")
}

/// `Event`'s `body` oneof: every event kind, in `.proto` order.
fn body_oneof() -> prost_reflect::OneofDescriptor {
    event_descriptor()
        .oneofs()
        .find(|oneof| oneof.name() == "body")
        .expect("Event has a body oneof")
}

/// The message type of the body field `kind` of `Event`.
fn body_descriptor(kind: &str) -> MessageDescriptor {
    let field = event_descriptor()
        .get_field_by_name(kind)
        .unwrap_or_else(|| panic!("{kind} is a field of Event"));
    match field.kind() {
        Kind::Message(message) => message,
        other => panic!("Event.{kind} is {other:?}, not a message"),
    }
}

/// The message `kind` from its JSON object; `pb::Body` of it through its
/// encoding, so the generated types stay the ones the rest of the code
/// uses.
fn body_from_json(kind: &str, value: Value, ref_key: Option<&RefKey>) -> Result<Body, JsonError> {
    let body = message_from_json(&body_descriptor(kind), kind, value, ref_key)?;
    let mut event = DynamicMessage::new(event_descriptor());
    event.set_field_by_name(kind, ReflectValue::Message(body));
    let event = pb::Event::decode(event.encode_to_vec().as_slice())
        .expect("a message built from the descriptors decodes as its generated type");
    Ok(event.body.expect("the body was set"))
}

/// One message from its JSON object, field by field in `.proto` order:
/// every field is read by its type, so a field added to the protos is read
/// without code here.
fn message_from_json(
    descriptor: &MessageDescriptor,
    path: &str,
    value: Value,
    ref_key: Option<&RefKey>,
) -> Result<DynamicMessage, JsonError> {
    let mut f = Fields::new(path, value)?;
    let mut message = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        if let Some(value) = field_from_json(&mut f, &field, ref_key)? {
            message.set_field(&field, value);
        }
        // SPEC 7.5: a receipt may give the plain reference instead, to be
        // hashed here with K_ref; it is read beside the hash it becomes.
        if descriptor.full_name() == "aidledger.v1.Receipt" && field.name() == "external_ref_hash" {
            let given = message
                .get_field(&field)
                .as_bytes()
                .cloned()
                .unwrap_or_default();
            let hash = external_ref_hash(&mut f, given.to_vec(), ref_key)?;
            message.set_field(&field, ReflectValue::Bytes(hash.into()));
        }
    }
    f.finish()?;
    Ok(message)
}

/// One field's value, `None` when the JSON leaves it out.
fn field_from_json(
    f: &mut Fields,
    field: &FieldDescriptor,
    ref_key: Option<&RefKey>,
) -> Result<Option<ReflectValue>, JsonError> {
    let name = field.name();
    if field.is_list() {
        let items = f.list(name)?;
        if items.is_empty() {
            return Ok(None);
        }
        let kind = field.kind();
        let values = items
            .into_iter()
            .map(|(path, value)| item_from_json(&kind, &path, value, ref_key))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Some(ReflectValue::List(values)));
    }
    let path = f.path_of(name);
    let Some(value) = f.take(name) else {
        return Ok(None);
    };
    item_from_json(&field.kind(), &path, value, ref_key).map(Some)
}

/// A value of protobuf type `kind` from JSON.
fn item_from_json(
    kind: &Kind,
    path: &str,
    value: Value,
    ref_key: Option<&RefKey>,
) -> Result<ReflectValue, JsonError> {
    Ok(match kind {
        Kind::String => match value {
            Value::String(text) => ReflectValue::String(text),
            other => {
                return Err(JsonError::at(
                    path,
                    format!("expected a string, found {}", describe(&other)),
                ));
            }
        },
        Kind::Bytes => ReflectValue::Bytes(parse_hex(path, &value)?.into()),
        Kind::Uint64 => ReflectValue::U64(parse_u64(path, &value)?),
        Kind::Uint32 => {
            let number = parse_u64(path, &value)?;
            ReflectValue::U32(u32::try_from(number).map_err(|_| {
                JsonError::at(
                    path,
                    format!("expected an integer up to {}, found {number}", u32::MAX),
                )
            })?)
        }
        Kind::Bool => match value {
            Value::Bool(b) => ReflectValue::Bool(b),
            other => {
                return Err(JsonError::at(
                    path,
                    format!("expected true or false, found {}", describe(&other)),
                ));
            }
        },
        Kind::Enum(descriptor) => {
            let kind = EnumKind(descriptor.clone());
            match value {
                Value::String(text) => ReflectValue::EnumNumber(kind.parse(path, &text)?),
                other => {
                    return Err(JsonError::at(
                        path,
                        format!(
                            "expected a {} name, found {}",
                            kind.what(),
                            describe(&other)
                        ),
                    ));
                }
            }
        }
        Kind::Message(descriptor) => {
            ReflectValue::Message(message_from_json(descriptor, path, value, ref_key)?)
        }
        other => {
            return Err(JsonError::at(
                path,
                format!("fields of type {other:?} have no JSON form here yet"),
            ));
        }
    })
}

/// `external_ref_hash` as hex, or `external_ref` as text to hash with
/// `K_ref` (SPEC §7.5: HMAC-SHA256 of the normalised reference); not both.
fn external_ref_hash(
    f: &mut Fields,
    hash: Vec<u8>,
    ref_key: Option<&RefKey>,
) -> Result<Vec<u8>, JsonError> {
    let path = f.path_of("external_ref");
    let reference = match f.take("external_ref") {
        None => String::new(),
        Some(Value::String(text)) => text,
        Some(other) => {
            return Err(JsonError::at(
                path,
                format!("expected a string, found {}", describe(&other)),
            ));
        }
    };
    match (hash.is_empty(), reference.is_empty(), ref_key) {
        (_, true, _) => Ok(hash),
        (true, false, Some(key)) => Ok(key.external_ref_hash(&reference).to_vec()),
        (true, false, None) => Err(JsonError::at(
            path,
            "hashing a reference needs the ledger's reference key: pass --ref-key FILE \
             (or set AIDLEDGER_REF_KEY); an unkeyed hash could be guessed by anyone (SPEC 7.5)",
        )),
        (false, false, _) => Err(JsonError::at(
            path,
            "give external_ref or external_ref_hash, not both",
        )),
    }
}

/// An enum of the protos, read and written by its value names without the
/// type's prefix (`NUTRITION` for `CATEGORY_NUTRITION`).
struct EnumKind(EnumDescriptor);

impl EnumKind {
    /// `CATEGORY_` for `Category`, `ORG_KIND_` for `OrgKind`: the protobuf
    /// style guide's prefix of every value name.
    fn prefix(&self) -> String {
        let mut prefix = String::new();
        for (i, c) in self.0.name().chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                prefix.push('_');
            }
            prefix.push(c.to_ascii_uppercase());
        }
        prefix.push('_');
        prefix
    }

    /// What it is called in messages: `category`, `org kind`.
    fn what(&self) -> String {
        self.prefix()
            .trim_end_matches('_')
            .replace('_', " ")
            .to_lowercase()
    }

    /// The short names of the specified values, for error messages.
    fn names(&self) -> Vec<String> {
        let prefix = self.prefix();
        self.0
            .values()
            .filter(|value| value.number() != 0)
            .map(|value| {
                value
                    .name()
                    .strip_prefix(&prefix)
                    .unwrap_or(value.name())
                    .to_owned()
            })
            .collect()
    }

    fn parse(&self, path: &str, text: &str) -> Result<i32, JsonError> {
        let prefix = self.prefix();
        let upper = text.trim().to_ascii_uppercase();
        let full = if upper.starts_with(&prefix) {
            upper
        } else {
            format!("{prefix}{upper}")
        };
        self.0
            .get_value_by_name(&full)
            .map(|value| value.number())
            .ok_or_else(|| {
                JsonError::at(
                    path,
                    format!(
                        "expected a {} ({}), found {text:?}",
                        self.what(),
                        self.names().join(", ")
                    ),
                )
            })
    }

    /// The short name, or the number for a value this build does not know.
    fn write(&self, number: i32) -> Out {
        match self.0.get_value(number) {
            Some(value) => Out::Str(
                value
                    .name()
                    .strip_prefix(&self.prefix())
                    .unwrap_or(value.name())
                    .to_owned(),
            ),
            None => Out::I64(i64::from(number)),
        }
    }
}

/// Parses a category name (`NUTRITION` or `CATEGORY_NUTRITION`).
pub fn parse_category(text: &str) -> Result<i32, String> {
    let category = pool()
        .get_enum_by_name("aidledger.v1.Category")
        .expect("Category is in the descriptor set");
    EnumKind(category)
        .parse("", text)
        .map_err(|error| error.message)
}

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
    known: Vec<String>,
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
    fn take(&mut self, name: &str) -> Option<Value> {
        self.known.push(name.to_owned());
        self.map.remove(name).filter(|value| !value.is_null())
    }

    fn string(&mut self, name: &str) -> Result<String, JsonError> {
        match self.take(name) {
            None => Ok(String::new()),
            Some(Value::String(text)) => Ok(text),
            Some(other) => Err(JsonError::at(
                self.path_of(name),
                format!("expected a string, found {}", describe(&other)),
            )),
        }
    }

    /// The items of an array field with their paths (`name[3]`).
    fn list(&mut self, name: &str) -> Result<Vec<(String, Value)>, JsonError> {
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
    Object(Vec<(String, Out)>),
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
struct Obj(Vec<(String, Out)>);

impl Obj {
    fn str(mut self, name: &str, value: &str) -> Self {
        if !value.is_empty() {
            self.0.push((name.to_owned(), Out::Str(value.to_owned())));
        }
        self
    }

    fn u64(mut self, name: &str, value: u64) -> Self {
        self.0.push((name.to_owned(), Out::U64(value)));
        self
    }

    fn hex(mut self, name: &str, value: &[u8]) -> Self {
        if !value.is_empty() {
            self.0.push((name.to_owned(), Out::Str(hex::encode(value))));
        }
        self
    }

    fn out(mut self, name: &str, value: Out) -> Self {
        self.0.push((name.to_owned(), value));
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
        let only_body = pb::Event {
            body: Some(body.clone()),
            ..Default::default()
        };
        let message =
            DynamicMessage::decode(event_descriptor(), only_body.encode_to_vec().as_slice())
                .expect("an encoded event decodes with its own descriptor");
        // The one body field that is set, found in the descriptor's oneof,
        // so a kind added to the protos is printed too.
        let set = body_oneof()
            .fields()
            .find(|field| message.has_field(field))
            .map(|field| (field.name().to_owned(), message.get_field(&field)));
        if let Some((kind, body)) = set
            && let Some(body) = body.as_message()
        {
            obj = obj.out(&kind, message_to_json(body));
        }
    }
    obj.done()
}

/// One message as JSON, fields in `.proto` order. Strings, bytes, lists and
/// unspecified enums are left out when empty (they read back as the same
/// default); numbers and booleans are always written; a message field is
/// written whenever it is set, even empty (`Some(default)` and `None`
/// encode differently).
fn message_to_json(message: &DynamicMessage) -> Out {
    let mut obj = Obj::default();
    for field in message.descriptor().fields() {
        let value = message.get_field(&field);
        let name = field.name();
        if field.is_list() {
            let items = value.as_list().unwrap_or_default();
            if !items.is_empty() {
                let kind = field.kind();
                obj = obj.out(
                    name,
                    Out::List(
                        items
                            .iter()
                            .map(|item| value_to_json(&kind, item))
                            .collect(),
                    ),
                );
            }
            continue;
        }
        match (field.kind(), value.as_ref()) {
            (Kind::String, ReflectValue::String(text)) => obj = obj.str(name, text),
            (Kind::Bytes, ReflectValue::Bytes(bytes)) => obj = obj.hex(name, bytes),
            (Kind::Enum(_), ReflectValue::EnumNumber(0)) => {}
            (Kind::Message(_), _) if !message.has_field(&field) => {}
            (kind, value) => obj = obj.out(name, value_to_json(&kind, value)),
        }
    }
    obj.done()
}

fn value_to_json(kind: &Kind, value: &ReflectValue) -> Out {
    match (kind, value) {
        (_, ReflectValue::String(text)) => Out::Str(text.clone()),
        (_, ReflectValue::Bytes(bytes)) => Out::Str(hex::encode(bytes)),
        (_, ReflectValue::U64(n)) => Out::U64(*n),
        (_, ReflectValue::U32(n)) => Out::U64(u64::from(*n)),
        (_, ReflectValue::I64(n)) => Out::I64(*n),
        (_, ReflectValue::I32(n)) => Out::I64(i64::from(*n)),
        (_, ReflectValue::Bool(b)) => Out::Bool(*b),
        (Kind::Enum(descriptor), ReflectValue::EnumNumber(number)) => {
            EnumKind(descriptor.clone()).write(*number)
        }
        (_, ReflectValue::EnumNumber(number)) => Out::I64(i64::from(*number)),
        (_, ReflectValue::Message(message)) => message_to_json(message),
        (kind, ReflectValue::List(items)) => {
            Out::List(items.iter().map(|item| value_to_json(kind, item)).collect())
        }
        (_, other) => Out::Str(format!("{other:?}")),
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

    /// A JSON value for every field of `descriptor`, from the descriptor
    /// alone: what a newcomer's new field would get.
    fn every_field(descriptor: &MessageDescriptor) -> Value {
        let mut object = Map::new();
        for field in descriptor.fields() {
            let one = match field.kind() {
                Kind::String => json!(format!("{}-text", field.name())),
                Kind::Bytes => json!("ab".repeat(32)),
                Kind::Uint64 | Kind::Uint32 => json!(7),
                Kind::Bool => json!(true),
                Kind::Enum(e) => {
                    let kind = EnumKind(e);
                    json!(kind.names().last().cloned().unwrap())
                }
                Kind::Message(m) => every_field(&m),
                other => panic!("{}: a field of type {other:?}", field.full_name()),
            };
            let value = if field.is_list() { json!([one]) } else { one };
            object.insert(field.name().to_owned(), value);
        }
        Value::Object(object)
    }

    #[test]
    fn every_field_of_every_kind_round_trips_from_the_descriptors_alone() {
        for kind in KINDS {
            let body = every_field(&body_descriptor(kind));
            let input = json!({
                "event_id": "3b0f1a52-7c1e-4d7a-9f0e-2a6c5d4e8b10",
                "org_id": "agency.red-cross",
                "occurred_at": "2024-03-01T02:30:00Z",
                kind: body,
            });
            let event = read(input.clone()).unwrap_or_else(|e| panic!("{kind}: {e}"));
            // Every field reached the generated type, set.
            let message =
                DynamicMessage::decode(event_descriptor(), event.encode_to_vec().as_slice())
                    .unwrap();
            let body = message.get_field_by_name(kind).unwrap();
            let body = body.as_message().unwrap();
            for field in body.descriptor().fields() {
                assert!(body.has_field(&field), "{kind}.{} was lost", field.name());
            }
            let written = serde_json::to_value(event_to_json(&event)).unwrap();
            assert_eq!(written, input, "{kind} prints as it was read");
        }
    }

    #[test]
    fn the_kinds_read_are_every_kind_of_the_protos() {
        let in_protos: Vec<String> = body_oneof()
            .fields()
            .map(|field| field.name().to_owned())
            .collect();
        assert_eq!(in_protos, KINDS);
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
