//! Indexes that hold where a record is, not a copy of its key.
//!
//! The model's derived indexes (reversal targets by event id, deliveries
//! by seq, receipts by reference hash) each gain an entry with most events.
//! Kept as tables, each entry was a hash slot with its key, the row's
//! bookkeeping and a shared id: 50 to 200 bytes an entry, over 120 MiB of
//! a 1M-entry model. The records they point to are in tables never removed
//! from (the ledger refuses a second record with an id already used), so a
//! record's position names it for good.
//! A [`PositionIndex`] holds only such positions (with what says which
//! table, when there are several) and finds an entry by the key the
//! record itself holds: the caller says how to read it, `key_of`, and
//! the index compares it on lookup and hashes it again when it grows.
//! Entries may instead carry enough of their hash to give it again
//! ([`PositionIndex::insert_hashed`]), so that growing reads no record;
//! an index is then used through the `_hashed` methods only, whose hashes
//! are the caller's, not [`PositionIndex::get`]'s.
//!
//! Each key names one entry: entries with equal keys would share one probe
//! sequence, and a client that sent many of them would make every insert
//! and lookup walk them all ([`crate::by_ref::ReceiptsByRef`] keeps the
//! repeats of a key apart for that reason).

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
    /// Adds `entry`, whose record's key is `key`, which no entry has yet.
    pub(crate) fn insert<K: Hash>(&mut self, key: &K, entry: V, key_of: impl Fn(V) -> K) {
        self.entries
            .insert_unique(hash_of(key), entry, |&other| hash_of(&key_of(other)));
    }

    /// The entry whose record's key is `key`.
    pub(crate) fn get<K: Hash + Eq>(&self, key: &K, key_of: impl Fn(V) -> K) -> Option<V> {
        self.entries
            .find(hash_of(key), |&entry| key_of(entry) == *key)
            .copied()
    }

    /// [`PositionIndex::insert`] for entries that carry enough of their
    /// key's hash to give it again, `hash_of`: growing then reads no
    /// record (each a likely cache miss, for every entry at every growth).
    pub(crate) fn insert_hashed(&mut self, hash: u64, entry: V, hash_of: impl Fn(V) -> u64) {
        self.entries
            .insert_unique(hash, entry, |&other| hash_of(other));
    }

    /// Removes and returns the entry of hash `hash` whose record's key
    /// `is_key` accepts, among entries inserted with
    /// [`PositionIndex::insert_hashed`].
    pub(crate) fn remove_hashed(&mut self, hash: u64, is_key: impl Fn(V) -> bool) -> Option<V> {
        let entry = self.entries.find_entry(hash, |&entry| is_key(entry)).ok()?;
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
    /// share a hash slot are told apart, and every entry is found again
    /// after the index has grown many times.
    #[test]
    fn an_index_finds_entries_by_the_key_their_record_holds() {
        // Records' keys, far apart and out of order; position 0 holds the
        // largest.
        let keys: Vec<u64> = (0..20_000u64)
            .map(|n| (20_000 - n).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let mut index: PositionIndex<u32> = PositionIndex::default();
        let key_of = |position: u32| keys[position as usize];
        for (position, key) in keys.iter().enumerate() {
            assert_eq!(index.get(key, key_of), None, "not there before");
            index.insert(key, position_u32(position), key_of);
        }
        assert_eq!(index.len(), keys.len());
        for position in [0, 1, 4_095, 4_096, 19_999] {
            assert_eq!(
                index.get(&keys[position], key_of),
                Some(position_u32(position))
            );
        }
        assert_eq!(index.get(&1, key_of), None, "a key no record holds");
        assert_eq!(index.len(), keys.len());
    }

    /// Entries that carry a few bits of their hash are found, and removed,
    /// after the index has grown many times without reading a record; two
    /// keys with the same bits are told apart by the record's key.
    #[test]
    fn an_index_of_entries_carrying_their_hash_grows_without_reading_records() {
        let keys: Vec<u64> = (0..20_000u64)
            .map(|n| (20_000 - n).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        // Eight bits: many keys share them.
        let bits = |key: u64| (key >> 56) as u32;
        let hash = |bits: u32| u64::from(bits).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut index: PositionIndex<(u32, u32)> = PositionIndex::default();
        for (position, &key) in keys.iter().enumerate() {
            let entry = (bits(key), position_u32(position));
            index.insert_hashed(hash(entry.0), entry, |(bits, _)| hash(bits));
        }
        assert_eq!(index.len(), keys.len());
        let records = &keys;
        let take = |index: &mut PositionIndex<(u32, u32)>, key: u64| {
            index
                .remove_hashed(hash(bits(key)), |(_, position)| {
                    records[position as usize] == key
                })
                .map(|(_, position)| position)
        };
        assert_eq!(take(&mut index, keys[77]), Some(77));
        assert_eq!(take(&mut index, keys[77]), None, "taken already");
        assert_eq!(take(&mut index, 1), None, "a key no record holds");
        for position in [0, 1, 4_095, 4_096, 19_999] {
            assert_eq!(
                take(&mut index, keys[position]),
                Some(position_u32(position))
            );
        }
        assert_eq!(index.len(), keys.len() - 6);
        let mut all: Vec<u32> = index.iter().map(|(_, position)| position).collect();
        all.sort_unstable();
        assert_eq!(all.len(), keys.len() - 6);
        assert!(!all.contains(&77) && !all.contains(&4_096));
    }
}
