//! Indexes that hold where a record is, not a copy of its key.
//!
//! The model's derived indexes (reversal targets by event id, deliveries
//! by seq, receipts by reference hash) each gain an entry with most events.
//! Kept as tables, each entry was a hash slot with its key, the row's
//! bookkeeping and a shared id: 50 to 200 bytes an entry, over 120 MiB of
//! a 1M-entry model. The records they point to are in tables that are in
//! log order and never removed from (the ledger refuses a second record
//! with an id already used), so a record's position names it for good.
//! A [`PositionIndex`] holds only such positions (with what says which
//! table, when there are several) and finds an entry by the key the
//! record itself holds: the caller says how to read it, `key_of`, and
//! the index compares it on lookup and hashes it again when it grows.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Entries `V` (a position, or a position and its table) found by a key
/// their record holds.
pub(crate) struct PositionIndex<V> {
    entries: HashTable<V>,
}

impl<V> Default for PositionIndex<V> {
    fn default() -> Self {
        PositionIndex {
            entries: HashTable::new(),
        }
    }
}

impl<V> std::fmt::Debug for PositionIndex<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PositionIndex")
            .field("entries", &self.entries.len())
            .finish()
    }
}

fn hash_of<K: Hash + ?Sized>(key: &K) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl<V: Copy> PositionIndex<V> {
    /// Adds `entry`, whose record's key is `key`; an entry with an equal
    /// key stays (a reference hash names every receipt that carries it).
    pub(crate) fn insert<K: Hash>(&mut self, key: &K, entry: V, key_of: impl Fn(V) -> K) {
        self.entries
            .insert_unique(hash_of(key), entry, |&other| hash_of(&key_of(other)));
    }

    /// The entries whose record's key is `key`, in no particular order.
    pub(crate) fn get_all<'a, K: Hash + Eq + 'a>(
        &'a self,
        key: &'a K,
        key_of: impl Fn(V) -> K + 'a,
    ) -> impl Iterator<Item = V> + 'a {
        self.entries
            .iter_hash(hash_of(key))
            .copied()
            .filter(move |&entry| key_of(entry) == *key)
    }

    /// An entry whose record's key is `key`.
    pub(crate) fn get<K: Hash + Eq>(&self, key: &K, key_of: impl Fn(V) -> K) -> Option<V> {
        self.entries
            .find(hash_of(key), |&entry| key_of(entry) == *key)
            .copied()
    }

    /// Removes an entry whose record's key is `key`, and returns it.
    pub(crate) fn remove<K: Hash + Eq>(&mut self, key: &K, key_of: impl Fn(V) -> K) -> Option<V> {
        let entry = self
            .entries
            .find_entry(hash_of(key), |&entry| key_of(entry) == *key)
            .ok()?;
        Some(entry.remove().0)
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = V> + '_ {
        self.entries.iter().copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A position as an index holds it: four bytes.
pub(crate) fn position_u32(position: usize) -> u32 {
    u32::try_from(position).expect("a table holds fewer than 2^32 rows")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lookups compare the key each record holds, so entries whose keys
    /// share a hash slot, or are equal, are told apart; the index finds
    /// them all again after growing many times.
    #[test]
    fn an_index_finds_entries_by_the_key_their_record_holds() {
        // Records' keys: many repeated, so some keys name several entries.
        let keys: Vec<u64> = (0..20_000u64).map(|n| n * 7 % 13_001).collect();
        let mut index: PositionIndex<u32> = PositionIndex::default();
        let key_of = |position: u32| keys[position as usize];
        for (position, key) in keys.iter().enumerate() {
            index.insert(key, position_u32(position), key_of);
        }
        assert_eq!(index.len(), keys.len());
        for probe in [0u64, 7, 13_000, 12_999] {
            let mut found: Vec<u32> = index.get_all(&probe, key_of).collect();
            found.sort_unstable();
            let expected: Vec<u32> = (0..keys.len())
                .filter(|&position| keys[position] == probe)
                .map(position_u32)
                .collect();
            assert_eq!(found, expected, "key {probe}");
        }
        assert_eq!(index.get(&13_001, key_of), None, "a key no record holds");
        let removed = index.remove(&7, key_of).unwrap();
        assert_eq!(keys[removed as usize], 7);
        assert_eq!(index.len(), keys.len() - 1);
        let left: Vec<u32> = index.get_all(&7, key_of).collect();
        assert!(!left.contains(&removed) && left.len() == 1, "{left:?}");
    }
}
