//! Every accepted event's record, found by event id.
//!
//! One record per entry of the log, so this is the rules state's biggest
//! part. Kept as a `HashMap<u128, EventRecord>`, the records lived in the
//! map's buckets: at 10M entries that is 2^24 buckets of key and record,
//! 1.75 GB, a third of them empty, and twice the memory for a moment each
//! time it doubled. Here the records sit in fixed-size chunks in the order
//! they came (growing adds a chunk, nothing is copied), and the hash index
//! holds only each record's position, eight bytes a bucket; the key is
//! read from the record itself. The index hashes with std's keyed SipHash,
//! as the map did: event ids are chosen by clients, so the ledger must not
//! let them choose collisions.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::state::EventRecord;

/// The most records [`Events::reserve`] takes room for at once: 2^26, an
/// index of about 1.2 GiB, beyond any log this ledger is sized for.
const RESERVE_MAX: usize = 1 << 26;

/// Records per chunk, as a power of two: a chunk is a few hundred KiB.
const CHUNK_BITS: u32 = 12;
const CHUNK_RECORDS: usize = 1 << CHUNK_BITS;

#[derive(Clone, Default)]
pub(crate) struct Events {
    /// Each record with its event's key ([`crate::state::event_key`]), in
    /// the order they were added; every chunk but the last is full.
    chunks: Vec<Vec<(u128, EventRecord)>>,
    len: usize,
    /// Positions in `chunks`, by the hash of their key.
    index: HashTable<u64>,
    hasher: RandomState,
}

impl Events {
    fn at(&self, position: u64) -> &(u128, EventRecord) {
        let position = position as usize;
        &self.chunks[position >> CHUNK_BITS][position & (CHUNK_RECORDS - 1)]
    }

    fn position(&self, key: u128) -> Option<u64> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&position| self.at(position).0 == key)
            .copied()
    }

    pub(crate) fn get(&self, key: u128) -> Option<&EventRecord> {
        self.position(key).map(|position| &self.at(position).1)
    }

    pub(crate) fn get_mut(&mut self, key: u128) -> Option<&mut EventRecord> {
        let position = self.position(key)? as usize;
        Some(&mut self.chunks[position >> CHUNK_BITS][position & (CHUNK_RECORDS - 1)].1)
    }

    pub(crate) fn contains_key(&self, key: u128) -> bool {
        self.position(key).is_some()
    }

    /// Adds the record of a new event; `false`, changing nothing, when
    /// an event of that key is already there.
    pub(crate) fn insert_new(&mut self, key: u128, record: EventRecord) -> bool {
        if self.contains_key(key) {
            return false;
        }
        let position = self.len as u64;
        let Events {
            chunks,
            index,
            hasher,
            ..
        } = self;
        index.insert_unique(hasher.hash_one(key), position, rehash(chunks, hasher));
        match chunks.last_mut() {
            Some(last) if last.len() < CHUNK_RECORDS => last.push((key, record)),
            _ => {
                // The first chunk grows as a vector does, so a small ledger
                // stays small; the others are allocated full size once.
                let mut chunk = if chunks.is_empty() {
                    Vec::new()
                } else {
                    Vec::with_capacity(CHUNK_RECORDS)
                };
                chunk.push((key, record));
                chunks.push(chunk);
            }
        }
        self.len += 1;
        true
    }

    /// Room for `additional` more records without growing the index, as
    /// far as [`RESERVE_MAX`] and memory allow: only a speed-up, so a size
    /// read from a damaged store can neither panic nor abort here (the
    /// replay then refuses the store, naming what is wrong).
    pub(crate) fn reserve(&mut self, additional: usize) {
        let additional = additional.min(RESERVE_MAX);
        let Events {
            chunks,
            index,
            hasher,
            ..
        } = self;
        if index
            .try_reserve(additional, rehash(chunks, hasher))
            .is_ok()
        {
            let _ = chunks.try_reserve(additional.div_ceil(CHUNK_RECORDS));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = &(u128, EventRecord)> {
        self.chunks.iter().flatten()
    }
}

/// The hash of the key of the record at a position, for the index to
/// place its positions anew when it grows.
fn rehash<'a>(
    chunks: &'a [Vec<(u128, EventRecord)>],
    hasher: &'a RandomState,
) -> impl Fn(&u64) -> u64 + 'a {
    move |&position| {
        let position = position as usize;
        hasher.hash_one(chunks[position >> CHUNK_BITS][position & (CHUNK_RECORDS - 1)].0)
    }
}

/// Equal when they hold the same records in the same order (the index
/// follows from them).
impl PartialEq for Events {
    fn eq(&self, other: &Events) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Events {}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Reversible;

    fn record(seq: u64) -> EventRecord {
        EventRecord {
            seq,
            digest: [seq as u8; 32],
            org_id: "org".into(),
            reversible: Reversible::No,
            reversed: false,
        }
    }

    /// Across many chunks and index growths every record is found by its
    /// key, a key is added once, and a change reaches the one record.
    #[test]
    fn records_are_found_by_key_across_chunks_and_added_once() {
        let count = 3 * CHUNK_RECORDS as u64 + 5;
        // Keys far apart and out of order, as UUIDs are.
        let key = |seq: u64| u128::from(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)) << 17 | 1;
        let mut events = Events::default();
        for seq in 0..count {
            assert!(events.insert_new(key(seq), record(seq)));
        }
        assert_eq!(events.len(), count as usize);
        assert!(
            !events.insert_new(key(7), record(99)),
            "a key is added once"
        );
        assert_eq!(events.get(key(7)).map(|r| r.seq), Some(7));
        for seq in [0, 1, CHUNK_RECORDS as u64, count - 1] {
            assert_eq!(events.get(key(seq)), Some(&record(seq)));
        }
        assert!(!events.contains_key(key(count)));
        events
            .get_mut(key(CHUNK_RECORDS as u64 + 1))
            .unwrap()
            .reversed = true;
        let reversed: Vec<u64> = events
            .iter()
            .filter(|(_, r)| r.reversed)
            .map(|(_, r)| r.seq)
            .collect();
        assert_eq!(reversed, [CHUNK_RECORDS as u64 + 1]);
        let copy = events.clone();
        assert_eq!(copy, events);
        events.get_mut(key(0)).unwrap().reversed = true;
        assert_ne!(copy, events, "records are compared");
    }

    /// Room taken ahead, with records already in (placed anew by the index
    /// as it grows), leaves every record found and the index unmoved while
    /// the reserved ones come.
    #[test]
    fn room_taken_ahead_keeps_every_record_found() {
        let key = |seq: u64| u128::from(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)) << 3 | 5;
        let mut events = Events::default();
        for seq in 0..1_000 {
            events.insert_new(key(seq), record(seq));
        }
        let more = 2 * CHUNK_RECORDS as u64;
        events.reserve(more as usize);
        let capacity = events.index.capacity();
        assert!(capacity >= 1_000 + more as usize);
        for seq in 1_000..1_000 + more {
            assert!(events.insert_new(key(seq), record(seq)));
        }
        assert_eq!(
            events.index.capacity(),
            capacity,
            "no growth after the room taken"
        );
        for seq in (0..1_000 + more).step_by(97) {
            assert_eq!(events.get(key(seq)).map(|r| r.seq), Some(seq));
        }
    }

    /// A size from a damaged store (a stray row at a huge seq) asks for
    /// room no machine has: the reserve is capped and fallible, so the
    /// open goes on to refuse the store rather than panic or abort here.
    #[test]
    fn room_for_an_impossible_number_of_records_is_not_fatal() {
        let mut events = Events::default();
        events.reserve(usize::MAX);
        assert!(events.index.capacity() <= 2 * RESERVE_MAX);
        assert!(events.insert_new(1, record(0)));
        assert_eq!(events.get(1).map(|r| r.seq), Some(0));
    }
}
