//! Ids the fold repeats, shared instead of copied.
//!
//! A receipt's id is named by every lot of it in a pool, every part of a
//! transfer that carried it, every delivery it funded and every flow out
//! of it; an organisation's, asset's or commune's id by every record that
//! involves it. As `String`s each of those names was an allocation and a
//! copy; an [`Id`] is a pointer to one shared copy, and cloning it counts
//! a reference. [`Interner`] hands out the one copy of a recurring id.
//!
//! Stored and serialized exactly as a string, so the store's bytes do not
//! change.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An id (of a receipt, an organisation, an asset...), shared.
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct Id(Arc<str>);

// By the string, as `str` hashes: lookups by `&str` find the same rows.
impl std::hash::Hash for Id {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        // The fold looks up the shared copy it holds: equal pointers answer
        // without reading the string, which is likely not in cache.
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Id {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both are the same shared copy, not only equal.
    pub fn is_same_copy(&self, other: &Id) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for Id {
    fn default() -> Self {
        Id::from("")
    }
}

impl Deref for Id {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Id {
    fn from(id: &str) -> Self {
        Id(Arc::from(id))
    }
}

impl From<String> for Id {
    fn from(id: String) -> Self {
        Id(Arc::from(id))
    }
}

impl From<&Id> for String {
    fn from(id: &Id) -> Self {
        id.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Id {
    fn eq(&self, other: &String) -> bool {
        &*self.0 == other.as_str()
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Id::from)
    }
}

/// An event's id: a SPEC §7 UUID, held as the number it writes (sixteen
/// bytes, nothing allocated) rather than as its 36 characters, in every
/// receipt, transfer, delivery, need and pledge record. Shown, serialized
/// and stored as its lowercase hyphenated text, the only form the ledger
/// accepts, so the text read back is the text the log holds and the
/// store's bytes do not change. Ordered as that text is.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(u128);

impl EventId {
    /// The id written as `text`, which must be a lowercase hyphenated UUID.
    pub fn parse(text: &str) -> Result<EventId, String> {
        aidledger_ledger::decode::uuid_value(text)
            .map(EventId)
            .ok_or_else(|| format!("event id {text:?} is not a lowercase hyphenated UUID"))
    }

    /// The number the id writes: the key reversals find their target by.
    pub fn key(self) -> u128 {
        self.0
    }

    fn write_text(self, text: &mut [u8; 36]) -> &str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digit = 0;
        for (at, byte) in text.iter_mut().enumerate() {
            if matches!(at, 8 | 13 | 18 | 23) {
                *byte = b'-';
            } else {
                let nibble = (self.0 >> (124 - 4 * digit)) & 0xf;
                *byte = HEX[nibble as usize];
                digit += 1;
            }
        }
        std::str::from_utf8(text).expect("hex digits and hyphens are ASCII")
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.write_text(&mut [0; 36]))
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.write_text(&mut [0; 36]), f)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.write_text(&mut [0; 36]))
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        EventId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The one shared copy of each recurring id: organisations, assets,
/// communes, periods. A few thousand of them name millions of records.
#[derive(Debug, Default)]
pub struct Interner {
    ids: FxHashSet<Id>,
}

impl Interner {
    /// The shared copy of `id`, made on its first use.
    pub fn id(&mut self, id: &str) -> Id {
        if let Some(shared) = self.ids.get(id) {
            return shared.clone();
        }
        let shared = Id::from(id);
        self.ids.insert(shared.clone());
        shared
    }

    /// Makes `id` the shared copy of its string, unless one is already:
    /// for a loaded table's key, so that the ids the fold interns from then
    /// on are that key's copy and find its row by pointer.
    pub fn adopt(&mut self, id: &Id) {
        if !self.ids.contains(id.as_str()) {
            self.ids.insert(id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_stored_as_its_string() {
        let id = Id::from("rcpt-2026-0001");
        let as_id = postcard::to_allocvec(&id).unwrap();
        assert_eq!(as_id, postcard::to_allocvec("rcpt-2026-0001").unwrap());
        let back: Id = postcard::from_bytes(&as_id).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn an_event_id_is_shown_and_stored_as_the_text_it_was_read_from() {
        let text = "0193a8f2-7c41-7d2e-9b3a-5f0e6c1d2a4b";
        let id = EventId::parse(text).unwrap();
        assert_eq!(id.to_string(), text);
        assert_eq!(format!("{id:?}"), format!("{text:?}"));
        let stored = postcard::to_allocvec(&id).unwrap();
        assert_eq!(stored, postcard::to_allocvec(text).unwrap());
        assert_eq!(postcard::from_bytes::<EventId>(&stored).unwrap(), id);
        // Ordered as the text is.
        let later = EventId::parse("0193a8f2-7c41-7d2e-9b3a-5f0e6c1d2a4c").unwrap();
        assert!(id < later);
        for refused in ["0193A8F2-7C41-7D2E-9B3A-5F0E6C1D2A4B", "not-a-uuid", ""] {
            assert!(EventId::parse(refused).is_err(), "{refused}");
            let stored = postcard::to_allocvec(refused).unwrap();
            assert!(
                postcard::from_bytes::<EventId>(&stored).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_interner_hands_out_one_copy_per_id() {
        let mut interner = Interner::default();
        let first = interner.id("org-a");
        let again = interner.id("org-a");
        let other = interner.id("org-b");
        assert!(Arc::ptr_eq(&first.0, &again.0));
        assert!(!Arc::ptr_eq(&first.0, &other.0));
        assert_eq!(again, "org-a");
    }
}
