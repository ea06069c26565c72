//! Tests of the store crate. The oracle is independent of both stores: every
//! entry, event id and hash is a pure function of its seq or index, so any
//! store state can be checked against what it must hold at a given size.

mod contract;
#[cfg(unix)]
mod crash;
mod faults;
mod redb_file;

use crate::{AppendBatch, ENTRIES_PAGE_MAX, Hash, LogStore, NewEntry, READ_HASHES_MAX};

/// SplitMix64: a tiny seeded generator, so randomized tests are reproducible
/// from their printed seed without a dependency.
#[derive(Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `[low, high)`.
    pub(crate) fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low)
    }
}

/// The bytes of the entry at `seq`: 16 to 315 bytes, seeded by `seq`.
pub(crate) fn entry_bytes(seq: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seq);
    let len = 16 + (rng.next_u64() % 300) as usize;
    let mut bytes = format!("entry {seq}:").into_bytes();
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// The event id of the entry at `seq`.
pub(crate) fn event_id(seq: u64) -> String {
    format!("event-{seq:08}")
}

/// The stored hash at `index`.
pub(crate) fn hash_at(index: u64) -> Hash {
    let mut rng = SplitMix64::new(!index);
    let mut hash = [0u8; 32];
    for chunk in hash.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    hash
}

/// Stored hashes of a tree of `size` leaves in the tlog layout. The store
/// does no Merkle math; tests use the real count so batches look real.
pub(crate) fn stored_hash_count(size: u64) -> u64 {
    2 * size - u64::from(size.count_ones())
}

/// The batch of `len` entries starting at `first_seq`, with its hashes.
pub(crate) fn batch(first_seq: u64, len: u64) -> AppendBatch {
    let first_hash_index = stored_hash_count(first_seq);
    let end_hash_index = stored_hash_count(first_seq + len);
    AppendBatch {
        first_seq,
        entries: (first_seq..first_seq + len)
            .map(|seq| NewEntry {
                bytes: entry_bytes(seq),
                event_id: event_id(seq),
            })
            .collect(),
        first_hash_index,
        hashes: (first_hash_index..end_hash_index).map(hash_at).collect(),
    }
}

/// Everything a store holds, read through the trait.
#[derive(PartialEq, Eq)]
pub(crate) struct Snapshot {
    size: u64,
    hash_count: u64,
    entries: Vec<(u64, Vec<u8>)>,
    hashes: Vec<Hash>,
    /// `seq_of_event` for the ids of seqs `0..size + probe`.
    event_seqs: Vec<Option<u64>>,
    latest_checkpoint: Option<(u64, String)>,
}

/// A summary, so a failed comparison prints a screenful, not the log.
impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entry_bytes: usize = self.entries.iter().map(|(_, bytes)| bytes.len()).sum();
        let indexed: Vec<usize> = (0..self.event_seqs.len())
            .filter(|&i| self.event_seqs[i].is_some())
            .collect();
        let hash_sum: u64 = self.hashes.iter().flatten().map(|&b| u64::from(b)).sum();
        f.debug_struct("Snapshot")
            .field("size", &self.size)
            .field("hash_count", &self.hash_count)
            .field("entries_listed", &self.entries.len())
            .field("entry_bytes", &entry_bytes)
            .field("hashes_read", &self.hashes.len())
            .field("hash_byte_sum", &hash_sum)
            .field("event_ids_indexed", &indexed.len())
            .field("last_event_id_indexed", &indexed.last())
            .field("latest_checkpoint", &self.latest_checkpoint)
            .finish()
    }
}

/// Reads the whole store; `probe` extra event ids past the size are looked
/// up too, so an index row left behind by a failed batch shows.
pub(crate) fn snapshot(store: &dyn LogStore, probe: u64) -> Snapshot {
    let size = store.size().expect("size");
    let hash_count = store.hash_count().expect("hash count");
    let mut entries = Vec::new();
    loop {
        let page = store
            .entries(entries.len() as u64, ENTRIES_PAGE_MAX)
            .expect("entries page");
        if page.is_empty() {
            break;
        }
        entries.extend(page);
    }
    let indexes: Vec<u64> = (0..hash_count).collect();
    let mut hashes = Vec::new();
    for chunk in indexes.chunks(READ_HASHES_MAX) {
        hashes.extend(store.read_hashes(chunk).expect("read hashes"));
    }
    let event_seqs = (0..size + probe)
        .map(|seq| store.seq_of_event(&event_id(seq)).expect("seq of event"))
        .collect();
    Snapshot {
        size,
        hash_count,
        entries,
        hashes,
        event_seqs,
        latest_checkpoint: store.latest_checkpoint().expect("latest checkpoint"),
    }
}

/// Asserts the store holds exactly the generated log of `size` entries:
/// every entry byte-identical, every event id indexed, every hash in place,
/// and nothing past the end.
pub(crate) fn assert_log_is(store: &dyn LogStore, size: u64) {
    assert_eq!(store.size().unwrap(), size, "size");
    assert_eq!(
        store.hash_count().unwrap(),
        stored_hash_count(size),
        "hash count at size {size}"
    );
    let snapshot = snapshot(store, 1);
    assert_eq!(snapshot.entries.len() as u64, size, "entries listed");
    for (seq, bytes) in &snapshot.entries {
        assert_eq!(bytes, &entry_bytes(*seq), "entry {seq}");
    }
    for (seq, found) in (0..).zip(&snapshot.entries) {
        assert_eq!(found.0, seq, "entries are contiguous");
    }
    for (index, hash) in (0..).zip(&snapshot.hashes) {
        assert_eq!(hash, &hash_at(index), "hash {index}");
    }
    for (seq, found) in (0..).zip(&snapshot.event_seqs) {
        let expected = (seq < size).then_some(seq);
        assert_eq!(*found, expected, "seq of event {seq}");
    }
    assert_eq!(store.entry(size).unwrap(), None, "entry past the end");
}
