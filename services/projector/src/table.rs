//! A read-model table: a hash map in memory that remembers which keys
//! changed since the last commit, so a commit writes only those.
//!
//! Hash maps (with a fixed, seedless hasher), not ordered maps: the fold
//! does several lookups per event and ordered maps of string keys cost it
//! half its speed. Iteration order is therefore arbitrary, and named so
//! ([`Table::iter_any_order`]); answers and the digest that need an order
//! sort ([`Table::sorted`]).

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;

use rustc_hash::{FxHashMap, FxHashSet};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// A changed row, ready to write: key bytes and the new value bytes, or
/// `None` when the row was removed.
pub(crate) type RowWrite = (Vec<u8>, Option<Vec<u8>>);

/// A table with change tracking.
pub struct Table<K, V> {
    name: &'static str,
    rows: FxHashMap<K, Row<V>>,
    /// Keys changed since the last commit, each once: a row's key is
    /// cloned here when it first changes, not at every change.
    changed: Vec<K>,
    /// Removed keys whose removal is not yet committed.
    removed: FxHashSet<K>,
}

struct Row<V> {
    value: V,
    /// Changed since the last commit (its key is in `changed`).
    dirty: bool,
}

impl<K: fmt::Debug, V> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("rows", &self.rows.len())
            .field("changed", &self.changed.len())
            .finish()
    }
}

impl<K: Ord + Hash + Clone, V> Table<K, V> {
    pub(crate) fn new(name: &'static str) -> Self {
        Table {
            name,
            rows: FxHashMap::default(),
            changed: Vec::new(),
            removed: FxHashSet::default(),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.rows.get(key).map(|row| &row.value)
    }

    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.rows.get_key_value(key).map(|(k, row)| (k, &row.value))
    }

    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.rows.contains_key(key)
    }

    /// The row for `key`, marked changed.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let row = self.rows.get_mut(key)?;
        if !row.dirty {
            row.dirty = true;
            self.changed.push(key.to_owned());
        }
        Some(&mut row.value)
    }

    /// The row for `key`, created with `default` if missing, marked changed.
    pub(crate) fn entry<Q>(&mut self, key: &Q, default: impl FnOnce() -> V) -> &mut V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if !self.rows.contains_key(key) {
            self.insert(key.to_owned(), default());
        }
        self.get_mut(key).expect("present: inserted above")
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        let was_dirty = self.rows.get(&key).is_some_and(|row| row.dirty);
        if !was_dirty {
            self.changed.push(key.clone());
        }
        self.rows.insert(key, Row { value, dirty: true });
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let row = self.rows.remove(key)?;
        self.removed.insert(key.clone());
        Some(row.value)
    }

    /// Every row, in no particular order: for sums, and for results sorted
    /// afterwards.
    pub fn iter_any_order(&self) -> impl Iterator<Item = (&K, &V)> {
        self.rows.iter().map(|(k, row)| (k, &row.value))
    }

    /// Every value, in no particular order.
    pub fn values_any_order(&self) -> impl Iterator<Item = &V> {
        self.rows.values().map(|row| &row.value)
    }

    /// Every row, in key order.
    pub fn sorted(&self) -> Vec<(&K, &V)> {
        let mut rows: Vec<(&K, &V)> = self.iter_any_order().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        rows
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// What the store and the digest need of every table, whatever its types.
pub(crate) trait StoredTable {
    fn name(&self) -> &'static str;
    /// Serializes the changed rows and forgets that they changed.
    fn take_changes(&mut self) -> Vec<RowWrite>;
    /// Loads one stored row (at open).
    fn load_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), postcard::Error>;
    /// Feeds every row, in key order, to `hasher`.
    fn digest_into(&self, hasher: &mut Sha256);
    fn pending_changes(&self) -> usize;
}

impl<K, V> StoredTable for Table<K, V>
where
    K: Ord + Hash + Clone + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn take_changes(&mut self) -> Vec<RowWrite> {
        let mut writes = Vec::with_capacity(self.changed.len() + self.removed.len());
        for key in std::mem::take(&mut self.removed) {
            // Removed, and not written again since.
            if !self.rows.contains_key(&key) {
                writes.push((encode(&key), None));
            }
        }
        for key in std::mem::take(&mut self.changed) {
            // A row changed, then removed, is gone (and written as removed
            // above); one changed twice is listed once.
            if let Some(row) = self.rows.get_mut(&key)
                && row.dirty
            {
                row.dirty = false;
                writes.push((encode(&key), Some(encode(&row.value))));
            }
        }
        writes
    }

    fn load_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), postcard::Error> {
        let key: K = postcard::from_bytes(key)?;
        let value: V = postcard::from_bytes(value)?;
        self.rows.insert(
            key,
            Row {
                value,
                dirty: false,
            },
        );
        Ok(())
    }

    fn digest_into(&self, hasher: &mut Sha256) {
        hasher.update(self.name.as_bytes());
        hasher.update((self.rows.len() as u64).to_be_bytes());
        for (key, value) in self.sorted() {
            for bytes in [encode(key), encode(value)] {
                hasher.update((bytes.len() as u64).to_be_bytes());
                hasher.update(&bytes);
            }
        }
    }

    fn pending_changes(&self) -> usize {
        self.changed.len() + self.removed.len()
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // postcard fails only on types serde cannot describe (maps with unknown
    // length and the like), which the model does not contain.
    postcard::to_allocvec(value).expect("read-model rows are plain serde data")
}
