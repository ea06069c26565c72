//! A read-model table: an ordered map in memory that remembers which keys
//! changed since the last commit, so a commit writes only those.
//!
//! Ordered maps, not hash maps: iteration order is part of every answer and
//! of the model digest, and must not depend on a hasher's seed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// A changed row, ready to write: key bytes and the new value bytes, or
/// `None` when the row was removed.
pub(crate) type RowWrite = (Vec<u8>, Option<Vec<u8>>);

/// An ordered table with change tracking.
pub struct Table<K, V> {
    name: &'static str,
    rows: BTreeMap<K, V>,
    dirty: BTreeSet<K>,
}

impl<K: fmt::Debug, V> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("rows", &self.rows.len())
            .field("dirty", &self.dirty.len())
            .finish()
    }
}

impl<K: Ord + Clone, V> Table<K, V> {
    pub(crate) fn new(name: &'static str) -> Self {
        Table {
            name,
            rows: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.rows.get(key)
    }

    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.rows.get_key_value(key)
    }

    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.rows.contains_key(key)
    }

    /// The row for `key`, marked changed.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        let row = self.rows.get_mut(key)?;
        if !self.dirty.contains(key) {
            self.dirty.insert(key.to_owned());
        }
        Some(row)
    }

    /// The row for `key`, created with `default` if missing, marked changed.
    pub(crate) fn entry(&mut self, key: K, default: impl FnOnce() -> V) -> &mut V {
        if !self.dirty.contains(&key) {
            self.dirty.insert(key.clone());
        }
        self.rows.entry(key).or_insert_with(default)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.dirty.insert(key.clone());
        self.rows.insert(key, value);
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let removed = self.rows.remove(key);
        if removed.is_some() {
            self.dirty.insert(key.clone());
        }
        removed
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.rows.iter()
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.rows.values()
    }

    pub fn range<R>(&self, range: R) -> impl DoubleEndedIterator<Item = (&K, &V)>
    where
        R: std::ops::RangeBounds<K>,
    {
        self.rows.range(range)
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
    K: Ord + Clone + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn take_changes(&mut self) -> Vec<RowWrite> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|key| {
                let value = self.rows.get(&key).map(encode);
                (encode(&key), value)
            })
            .collect()
    }

    fn load_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), postcard::Error> {
        let key: K = postcard::from_bytes(key)?;
        let value: V = postcard::from_bytes(value)?;
        self.rows.insert(key, value);
        Ok(())
    }

    fn digest_into(&self, hasher: &mut Sha256) {
        hasher.update(self.name.as_bytes());
        hasher.update((self.rows.len() as u64).to_be_bytes());
        for (key, value) in &self.rows {
            for bytes in [encode(key), encode(value)] {
                hasher.update((bytes.len() as u64).to_be_bytes());
                hasher.update(&bytes);
            }
        }
    }

    fn pending_changes(&self) -> usize {
        self.dirty.len()
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // postcard fails only on types serde cannot describe (maps with unknown
    // length and the like), which the model does not contain.
    postcard::to_allocvec(value).expect("read-model rows are plain serde data")
}
