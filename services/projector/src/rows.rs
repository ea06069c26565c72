//! The rows of a read-model table: a hash map in insertion order whose
//! records never move when it grows.
//!
//! The fold's biggest tables (receipts, transfers, deliveries, a
//! receipt's flows) gain a row with most events. Kept in one vector, as
//! `IndexMap` keeps them, every doubling of that vector copied each record
//! into fresh memory: in a profile of a 1M-entry rebuild that copy and the
//! page faults of its fresh memory took a fifth of the fold thread's time,
//! and pre-sizing the tables (which a fold cannot know how to do) made the
//! rebuild 15-25% faster. Here the records sit in chunks of a fixed number
//! of rows; growing adds a chunk. Only the index of positions is rebuilt
//! when it grows, from the hashes it keeps beside them (8 bytes a slot), so
//! no key is hashed twice and no record is read.
//!
//! Removal swaps the last row into the removed one's place, as
//! `IndexMap::swap_remove` does: the order is insertion order until the
//! first removal.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Rows per chunk, as a power of two: a chunk of the biggest records is a
/// few hundred KiB, the first chunk grows like a vector until it is full,
/// so a table of a few rows stays a few rows.
const CHUNK_BITS: u32 = 12;
const CHUNK_ROWS: usize = 1 << CHUNK_BITS;

struct Slot<K, V> {
    key: K,
    value: V,
}

/// A row's position in the index, with its key's hash: growing the index
/// places every row again from these alone, where reading each row's
/// hash beside its record was a cache miss per row (3.6% of the bare fold
/// at 1M).
#[derive(Clone, Copy)]
struct Indexed {
    position: u32,
    hash: u32,
}

/// The key's hash as the index keeps it: bits 31 to 62 of FxHash's
/// product, its best-mixed ones (FxHash's final rotation by 26 moves them
/// down; 7 more bring bit 31 to the bottom).
fn hash_of<Q: Hash + ?Sized>(key: &Q) -> u32 {
    FxBuildHasher.hash_one(key).rotate_left(7) as u32
}

/// The 64 bits hashbrown places a row by, split as FxHash's own were: the
/// bucket from the low bits (the product's bits 38 up), the 7-bit tag from
/// the top ones (its bits 31 to 37), so a tag still tells rows of one
/// probe group apart in a table of millions.
fn spread(hash: u32) -> u64 {
    u64::from(hash >> 7) | u64::from(hash) << 57
}

pub(crate) struct Rows<K, V> {
    /// Positions of rows, each with its key's hash, by that hash.
    index: HashTable<Indexed>,
    /// Every chunk but the last holds exactly [`CHUNK_ROWS`] rows.
    chunks: Vec<Vec<Slot<K, V>>>,
    len: usize,
}

impl<K, V> Default for Rows<K, V> {
    fn default() -> Self {
        Rows {
            index: HashTable::new(),
            chunks: Vec::new(),
            len: 0,
        }
    }
}

fn slot_at<K, V>(chunks: &[Vec<Slot<K, V>>], position: usize) -> &Slot<K, V> {
    &chunks[position >> CHUNK_BITS][position & (CHUNK_ROWS - 1)]
}

impl<K, V> Rows<K, V> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot_mut(&mut self, position: usize) -> &mut Slot<K, V> {
        &mut self.chunks[position >> CHUNK_BITS][position & (CHUNK_ROWS - 1)]
    }

    /// Every row, in insertion order (as changed by removals).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.chunks
            .iter()
            .flatten()
            .map(|slot| (&slot.key, &slot.value))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.chunks.iter().flatten().map(|slot| &slot.value)
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.chunks.iter_mut().flatten().map(|slot| &mut slot.value)
    }

    /// The rows from position `start` on, in order.
    pub(crate) fn iter_from(&self, start: usize) -> impl Iterator<Item = (&K, &V)> {
        let (first_chunk, offset) = (start >> CHUNK_BITS, start & (CHUNK_ROWS - 1));
        self.chunks
            .get(first_chunk..)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .flat_map(move |(nth, chunk)| {
                let skip = if nth == 0 { offset.min(chunk.len()) } else { 0 };
                chunk[skip..].iter()
            })
            .map(|slot| (&slot.key, &slot.value))
    }

    /// The position of the first row for which `before` is false, by
    /// bisection: `before` must hold for a prefix of the rows.
    pub(crate) fn partition_point(&self, mut before: impl FnMut(&K, &V) -> bool) -> usize {
        let (mut low, mut high) = (0, self.len);
        while low < high {
            let middle = low + (high - low) / 2;
            let slot = slot_at(&self.chunks, middle);
            if before(&slot.key, &slot.value) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }
}

impl<K: Hash + Eq, V> Rows<K, V> {
    /// The position of the row for `key`, for [`Rows::at_mut`].
    pub(crate) fn position<Q>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.position_hashed(hash_of(key), key)
    }

    fn position_hashed<Q>(&self, hash: u32, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let chunks = &self.chunks;
        self.index
            .find(spread(hash), |row| {
                row.hash == hash && slot_at(chunks, row.position as usize).key.borrow() == key
            })
            .map(|row| row.position as usize)
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let position = self.position(key)?;
        Some(&slot_at(&self.chunks, position).value)
    }

    pub(crate) fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = slot_at(&self.chunks, self.position(key)?);
        Some((&slot.key, &slot.value))
    }

    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.position(key).is_some()
    }

    /// Inserts or replaces; a replaced row keeps its position. Returns the
    /// value replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.insert_full(key, value).1
    }

    /// Inserts or replaces, hashing the key once (the fold inserts a row
    /// for most events). Returns the row's position and the value
    /// replaced.
    pub(crate) fn insert_full(&mut self, key: K, value: V) -> (usize, Option<V>) {
        let hash = hash_of(&key);
        if let Some(position) = self.position_hashed(hash, &key) {
            let replaced = std::mem::replace(&mut self.slot_mut(position).value, value);
            return (position, Some(replaced));
        }
        self.push(hash, Slot { key, value });
        (self.len - 1, None)
    }

    /// The stored key and the value at `position`, which must hold a row.
    pub(crate) fn at(&self, position: usize) -> (&K, &V) {
        let slot = slot_at(&self.chunks, position);
        (&slot.key, &slot.value)
    }

    /// The stored key and the value at `position`, which must hold a row.
    pub(crate) fn at_mut(&mut self, position: usize) -> (&K, &mut V) {
        let slot = self.slot_mut(position);
        (&slot.key, &mut slot.value)
    }

    /// The value for `key`, inserted with `default` if missing.
    pub(crate) fn get_or_insert_with(&mut self, key: K, default: impl FnOnce() -> V) -> &mut V {
        let position = match self.position(&key) {
            Some(position) => position,
            None => {
                let hash = hash_of(&key);
                self.push(
                    hash,
                    Slot {
                        key,
                        value: default(),
                    },
                );
                self.len - 1
            }
        };
        &mut self.slot_mut(position).value
    }

    /// Appends a row whose key is not in the table.
    fn push(&mut self, hash: u32, slot: Slot<K, V>) {
        let position = u32::try_from(self.len).expect("a table holds fewer than 2^32 rows");
        let row = Indexed { position, hash };
        self.index
            .insert_unique(spread(hash), row, |row| spread(row.hash));
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK_ROWS => last.push(slot),
            _ => {
                // The first chunk grows as a vector does; the others are
                // allocated full size once.
                let mut chunk = if self.chunks.is_empty() {
                    Vec::new()
                } else {
                    Vec::with_capacity(CHUNK_ROWS)
                };
                chunk.push(slot);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    /// Removes the row for `key`; the last row takes its place.
    pub(crate) fn swap_remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.swap_remove_full(key).map(|(value, _)| value)
    }

    /// [`Rows::swap_remove`], also telling where the last row went when it
    /// moved: `Some(position)` of the removed row, which it now holds.
    pub(crate) fn swap_remove_full<Q>(&mut self, key: &Q) -> Option<(V, Option<usize>)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = hash_of(key);
        let chunks = &self.chunks;
        let entry = self
            .index
            .find_entry(spread(hash), |row| {
                row.hash == hash && slot_at(chunks, row.position as usize).key.borrow() == key
            })
            .ok()?;
        let position = entry.remove().0.position as usize;
        let last_position = self.len - 1;
        let last_chunk = self.chunks.last_mut().expect("a row was found");
        let last = last_chunk.pop().expect("chunks are never empty");
        if last_chunk.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        if position == last_position {
            return Some((last.value, None));
        }
        let moved = self
            .index
            .find_mut(spread(hash_of(&last.key)), |row| {
                row.position as usize == last_position
            })
            .expect("every row is indexed");
        moved.position = position as u32;
        let removed = std::mem::replace(self.slot_mut(position), last).value;
        Some((removed, Some(position)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Inserts, replacements and removals across many chunks give the same
    /// rows as a plain map, in the order a vector with swap removal would
    /// keep them.
    #[test]
    fn rows_agree_with_a_map_and_a_vector_across_chunks() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut rows: Rows<String, u64> = Rows::default();
        let mut map: HashMap<String, u64> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for step in 0..(8 * CHUNK_ROWS as u64) {
            let key = format!("k{}", rng.random_range(0..(3 * CHUNK_ROWS as u64)));
            if rng.random_range(0..4) == 0 {
                let removed = rows.swap_remove(key.as_str());
                assert_eq!(removed, map.remove(&key), "step {step}");
                if let Some(at) = order.iter().position(|k| *k == key) {
                    order.swap_remove(at);
                }
            } else {
                let replaced = rows.insert(key.clone(), step);
                assert_eq!(replaced, map.insert(key.clone(), step), "step {step}");
                if replaced.is_none() {
                    order.push(key);
                }
            }
        }
        assert!(rows.len() > 2 * CHUNK_ROWS, "the test spans chunks");
        assert_eq!(rows.len(), map.len());
        let keys: Vec<&String> = rows.iter().map(|(key, _)| key).collect();
        assert_eq!(keys, order.iter().collect::<Vec<_>>());
        for (key, value) in &map {
            assert_eq!(rows.get(key.as_str()), Some(value));
        }
        let from = CHUNK_ROWS + 17;
        let tail: Vec<&String> = rows.iter_from(from).map(|(key, _)| key).collect();
        assert_eq!(tail, order[from..].iter().collect::<Vec<_>>());
        assert_eq!(rows.iter_from(rows.len()).count(), 0);
    }

    #[test]
    fn bisection_finds_the_split_across_chunks() {
        let mut rows: Rows<u64, u64> = Rows::default();
        for n in 0..(2 * CHUNK_ROWS as u64 + 3) {
            rows.insert(n, n * 10);
        }
        assert_eq!(rows.get(&77), Some(&770));
        assert_eq!(rows.partition_point(|_, value| *value < 5_000), 500);
        assert_eq!(rows.swap_remove(&0), Some(0));
        assert_eq!(
            rows.get(&(2 * CHUNK_ROWS as u64 + 2)),
            Some(&((2 * CHUNK_ROWS as u64 + 2) * 10))
        );
    }
}
