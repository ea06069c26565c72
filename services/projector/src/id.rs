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
