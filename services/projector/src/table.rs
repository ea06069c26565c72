//! A read-model table: a hash map in memory that remembers which rows
//! changed since the last commit, so a commit writes only those.
//!
//! Hash maps (with a fixed, seedless hasher), not ordered maps: the fold
//! does several lookups per event and ordered maps of string keys cost it
//! half its speed. Iteration order is insertion order, which a removal
//! changes (the last row takes the removed one's place), so it is named
//! as no order ([`Table::iter_any_order`]); answers and the digest that
//! need an order sort ([`Table::sorted`]), or read a table that is never
//! removed from in its insertion order ([`Table::in_order_from`]).
//!
//! The rows live in chunks behind a hash index of positions ([`Rows`]),
//! which keeps each key's hash: when a table of a million records grows,
//! the index is rebuilt from the kept hashes and no record moves, where a
//! plain hash map would hash every key again and move every record.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt;
use std::hash::Hash;

use rustc_hash::FxHashSet;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use crate::positions::position_u32;
use crate::rows::Rows;

/// A changed row, ready to write: key bytes and the new value bytes, or
/// `None` when the row was removed.
pub(crate) type RowWrite = (Vec<u8>, Option<Vec<u8>>);

/// A table with change tracking.
pub struct Table<K, V> {
    name: &'static str,
    rows: Rows<K, Row<V>>,
    /// Positions of the rows changed since the last commit. Positions, not
    /// keys: a commit encodes each row without looking its key up again,
    /// and listing a row touches no shared id's reference count (likely
    /// out of cache). Each changed row's position is here; removals, which
    /// move the last row, can leave a position twice or past the end
    /// ([`Table::remove`]).
    changed: Vec<u32>,
    /// Removed keys whose removal is not yet committed.
    removed: FxHashSet<K>,
    /// Set for a table of records in log order, stored by position in
    /// chunks ([`Table::in_log_order`]). The seq is read only to check, in
    /// debug builds, that each new record comes after the others.
    log_seq: Option<fn(&V) -> u64>,
    /// Counts commits: a row whose `listed` equals it has its position in
    /// `changed`. Settling a commit bumps it, which forgets every row's
    /// mark at once, without visiting the rows.
    generation: u64,
}

struct Row<V> {
    value: V,
    /// The generation in which its position was last put in `changed`.
    listed: u64,
}

/// What settling a table's encoded changes needs to know of them: for a
/// list table, where each changed list stands now.
#[derive(Debug)]
pub(crate) struct Settle {
    /// The table's generation and number of changes (rows listed as
    /// changed, and removals) when encoded: settling a table that changed
    /// since, or with another table's settle, would mark changes taken that
    /// were never written.
    generation: u64,
    changed: usize,
    lists: Vec<ListSettle>,
    emptied: usize,
}

impl Settle {
    fn check(&self, generation: u64, changed: usize, name: &str) {
        assert!(
            self.generation == generation && self.changed == changed,
            "table {name} changed between encoding a commit and settling it"
        );
    }
}

#[derive(Debug)]
struct ListSettle {
    /// The list's position in the table's rows (nothing moves between
    /// encoding and settling).
    position: usize,
    /// The chunks the store holds once the commit is written.
    stored: std::ops::Range<u64>,
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
            rows: Rows::default(),
            changed: Vec::new(),
            removed: FxHashSet::default(),
            log_seq: None,
            generation: 1,
        }
    }

    /// A table of records each made by one entry (`seq` tells which),
    /// stored by position rather than by key: each stored row holds
    /// [`RECORDS_PER_ROW`] records, the rows at positions `n *
    /// RECORDS_PER_ROW` on, under the key `n`. The fold makes records in
    /// log order, so a commit appends rows at the end of the table's B-tree,
    /// and one stored row per record would make the store's inserts most
    /// of a commit's cost (at 1M entries, two thirds of its rows were
    /// records). At load the rows come back in their order. The records
    /// stay in log order in memory only while each new one comes after the
    /// others and none is removed or replaced, as the fold does
    /// ([`Table::in_order_from`] relies on it; a debug build checks it).
    pub(crate) fn in_log_order(name: &'static str, seq: fn(&V) -> u64) -> Self {
        Table {
            log_seq: Some(seq),
            ..Table::new(name)
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
        Q: Hash + Eq + ?Sized,
    {
        let position = self.rows.position(key)?;
        Some(self.changed_at(position))
    }

    /// The row at `position`, marked changed.
    fn changed_at(&mut self, position: usize) -> &mut V {
        let (_, row) = self.rows.at_mut(position);
        if row.listed != self.generation {
            row.listed = self.generation;
            self.changed.push(position_u32(position));
        }
        &mut row.value
    }

    /// The row for `key`, created with `default` if missing, marked changed.
    pub(crate) fn entry<Q>(&mut self, key: &Q, default: impl FnOnce() -> V) -> &mut V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // One lookup for a row that exists; a new one is looked up again
        // as it is inserted.
        let position = match self.rows.position(key) {
            Some(position) => position,
            None => self.insert_at(key.to_owned(), default()),
        };
        self.changed_at(position)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.insert_at(key, value);
    }

    /// The row at `position` (as [`Table::insert_at`] returned it, or an
    /// index of the model holds it). A table never removed from keeps each
    /// row there.
    ///
    /// # Panics
    ///
    /// When no row is at `position`.
    pub fn at(&self, position: usize) -> (&K, &V) {
        let (key, row) = self.rows.at(position);
        (key, &row.value)
    }

    /// Every row with its position, in the order of positions.
    pub(crate) fn iter_positions(&self) -> impl Iterator<Item = (usize, &K, &V)> {
        self.rows
            .iter()
            .enumerate()
            .map(|(position, (key, row))| (position, key, &row.value))
    }

    /// Inserts or replaces the row, marked changed, with one lookup of
    /// its key; returns its position.
    pub(crate) fn insert_at(&mut self, key: K, value: V) -> usize {
        let generation = self.generation;
        let (position, replaced) = self.rows.insert_full(
            key,
            Row {
                value,
                listed: generation,
            },
        );
        let was_listed = replaced
            .as_ref()
            .is_some_and(|row| row.listed == generation);
        if cfg!(debug_assertions)
            && let Some(seq) = self.log_seq
            && replaced.is_none()
        {
            let new = seq(&self.rows.at(position).1.value);
            debug_assert!(
                position == 0 || seq(&self.rows.at(position - 1).1.value) < new,
                "table {}: a row of seq {new} after a later one",
                self.name
            );
        }
        if !was_listed {
            self.changed.push(position_u32(position));
        }
        position
    }

    /// Removes the row. The last row moves into its place: if that one is
    /// listed as changed, its new position is listed too. Positions listed
    /// before stay: the one it left is past the end, or holds a row
    /// inserted since (listed at it anyway); the one it took may be listed
    /// twice, or, when only the removed row was listed, name the moved row
    /// though it did not change. A commit skips positions past the end and
    /// writes each row still there once ([`StoredTable::encode_changes`]):
    /// at worst an unchanged row is written again, as it is. A table in log
    /// order lists both positions whatever their marks: each names a chunk
    /// to write again, or, past the end, to delete.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let (row, moved_to) = self.rows.swap_remove_full(key)?;
        if self.log_seq.is_some() {
            // Stored by position: the chunk the last row left, and the one
            // it moved into, are written again (or, emptied, deleted).
            self.changed.push(position_u32(self.rows.len()));
            if let Some(position) = moved_to {
                self.changed.push(position_u32(position));
            }
            return Some(row.value);
        }
        self.removed.insert(key.clone());
        if let Some(position) = moved_to
            && self.rows.at(position).1.listed == self.generation
        {
            self.changed.push(position_u32(position));
        }
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

    /// The rows in the order they were inserted, from the first for which
    /// `before` is false, found by bisection. `before` must hold for a
    /// prefix of that order: a table kept in log order, searched by seq.
    pub fn in_order_from(
        &self,
        mut before: impl FnMut(&V) -> bool,
    ) -> impl Iterator<Item = (&K, &V)> {
        let start = self.rows.partition_point(|_, row| before(&row.value));
        self.rows
            .iter_from(start)
            .map(|(key, row)| (key, &row.value))
    }

    /// Every row, in key order.
    pub fn sorted(&self) -> Vec<(&K, &V)> {
        let mut rows: Vec<(&K, &V)> = self.iter_any_order().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        rows
    }

    /// Every value, to change in place without marking it changed: for
    /// changes the store cannot see (which copy of an id a row points to).
    pub(crate) fn values_mut_unchanged(&mut self) -> impl Iterator<Item = &mut V> {
        self.rows.values_mut().map(|row| &mut row.value)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Changes since the last settled commit: rows listed, and removals.
    /// Each change makes it grow, so a commit can tell whether the table
    /// changed after it was encoded.
    fn changes(&self) -> usize {
        self.changed.len() + self.removed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// What a settled commit leaves to drop: the keys of the rows it removed.
/// The caller drops it after releasing the model's lock: for shared ids
/// that is a reference count to touch per key, likely out of cache.
pub(crate) type Spent = Box<dyn std::any::Any + Send>;

/// What the store and the digest need of every table, whatever its types.
pub(crate) trait StoredTable: Send + Sync {
    fn name(&self) -> &'static str;
    /// Serializes the rows changed since the last settled commit, and
    /// changes nothing: it runs while readers read the model.
    fn encode_changes(&self) -> (Vec<RowWrite>, Settle);
    /// Forgets the changes [`StoredTable::encode_changes`] encoded, once
    /// their commit is taken. The table must not have changed in between.
    fn settle(&mut self, settle: Settle) -> Spent;
    /// Serializes the changed rows and forgets that they changed.
    #[cfg(test)]
    fn take_changes(&mut self) -> Vec<RowWrite> {
        let (writes, settle) = self.encode_changes();
        drop(self.settle(settle));
        writes
    }
    /// Loads one stored row (at open).
    fn load_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), postcard::Error>;
    /// Feeds every row, in key order, to `hasher`.
    fn digest_into(&self, hasher: &mut Sha256);
    /// Rows listed as changed since the last commit: none when nothing
    /// changed (a removal can list a row twice, so not an exact count).
    fn pending_changes(&self) -> usize;
}

impl<K, V> StoredTable for Table<K, V>
where
    K: Ord + Hash + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn encode_changes(&self) -> (Vec<RowWrite>, Settle) {
        let settle = Settle {
            generation: self.generation,
            changed: self.changes(),
            lists: Vec::new(),
            emptied: 0,
        };
        if self.log_seq.is_some() {
            return (self.encode_changed_chunks(), settle);
        }
        let mut writes = Vec::with_capacity(self.changed.len() + self.removed.len());
        for key in &self.removed {
            // Removed, and not written again since.
            if !self.rows.contains_key(key) {
                writes.push((encode(key), None));
            }
        }
        let write_row = |writes: &mut Vec<RowWrite>, position: u32| {
            let (key, row) = self.rows.at(position as usize);
            writes.push((encode(key), Some(encode(&row.value))));
        };
        if self.removed.is_empty() {
            // Nothing moved: each position is listed once, and holds a row.
            for &position in &self.changed {
                write_row(&mut writes, position);
            }
        } else {
            // Removals can list a position twice, or past the end (see
            // `Table::remove`): each row still there is written once.
            let mut positions = self.changed.clone();
            positions.sort_unstable();
            positions.dedup();
            for position in positions {
                if (position as usize) < self.rows.len() {
                    write_row(&mut writes, position);
                }
            }
        }
        (writes, settle)
    }

    fn settle(&mut self, settle: Settle) -> Spent {
        settle.check(self.generation, self.changes(), self.name);
        self.generation += 1;
        self.changed.clear();
        Box::new(std::mem::take(&mut self.removed))
    }

    fn load_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), postcard::Error> {
        if self.log_seq.is_some() {
            return self.load_chunk(key, value);
        }
        let (key, value): (K, V) = (postcard::from_bytes(key)?, postcard::from_bytes(value)?);
        // Listed in no generation: as stored.
        self.rows.insert(key, Row { value, listed: 0 });
        Ok(())
    }

    fn digest_into(&self, hasher: &mut Sha256) {
        digest_rows(hasher, self.name, self.sorted());
    }

    fn pending_changes(&self) -> usize {
        self.changed.len()
    }
}

/// Records a table in log order keeps in each stored row
/// ([`Table::in_log_order`]): the last row of a growing table is written
/// again at each commit until it is full, so a quiet log's commit writes a
/// few kilobytes, while a catch-up's writes a sixty-fourth of the rows.
/// The same as a list's [`CHUNK_ITEMS`], for the same trade, though
/// nothing ties the two.
pub(crate) const RECORDS_PER_ROW: usize = 64;

impl<K, V> Table<K, V>
where
    K: Ord + Hash + Clone + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// A table in log order's changed chunks: each whole, as it stands, or
    /// deleted when removals emptied it.
    fn encode_changed_chunks(&self) -> Vec<RowWrite> {
        let mut chunks: Vec<usize> = self
            .changed
            .iter()
            .map(|&position| position as usize / RECORDS_PER_ROW)
            .collect();
        // Mostly listed in order (records are made in log order; changes to
        // older ones and removals come between): the first pass leaves the
        // sort a sixty-fourth of a catch-up's positions.
        chunks.dedup();
        chunks.sort_unstable();
        chunks.dedup();
        chunks
            .into_iter()
            .map(|chunk| {
                let key = (chunk as u64).to_be_bytes().to_vec();
                let start = chunk * RECORDS_PER_ROW;
                if start >= self.rows.len() {
                    return (key, None);
                }
                let end = (start + RECORDS_PER_ROW).min(self.rows.len());
                let records: Vec<(&K, &V)> = (start..end)
                    .map(|position| {
                        let (key, row) = self.rows.at(position);
                        (key, &row.value)
                    })
                    .collect();
                (key, Some(encode(&records)))
            })
            .collect()
    }

    /// Loads a stored chunk of a table in log order. The chunks come in
    /// key order, each full but the last: a chunk filed at a position not
    /// its own is a damaged store.
    fn load_chunk(&mut self, key: &[u8], value: &[u8]) -> Result<(), postcard::Error> {
        let records: Vec<(K, V)> = postcard::from_bytes(value)?;
        let expected = (self.rows.len() / RECORDS_PER_ROW) as u64;
        if !self.rows.len().is_multiple_of(RECORDS_PER_ROW)
            || key != expected.to_be_bytes()
            || records.is_empty()
            || records.len() > RECORDS_PER_ROW
        {
            return Err(postcard::Error::DeserializeBadEncoding);
        }
        for (key, value) in records {
            // Listed in no generation: as stored. A key stored twice would
            // leave fewer records than the chunks hold: a damaged store.
            let (_, replaced) = self.rows.insert_full(key, Row { value, listed: 0 });
            if replaced.is_some() {
                return Err(postcard::Error::DeserializeBadEncoding);
            }
        }
        Ok(())
    }
}

/// Feeds a table's rows, in key order, to the model's digest.
pub(crate) fn digest_rows<K: Serialize, V: Serialize>(
    hasher: &mut Sha256,
    name: &str,
    sorted: Vec<(K, V)>,
) {
    hasher.update(name.as_bytes());
    hasher.update((sorted.len() as u64).to_be_bytes());
    for (key, value) in sorted {
        for bytes in [encode(&key), encode(&value)] {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(&bytes);
        }
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    // Encoded into one buffer per thread kept between rows, then copied
    // out at its exact size: a commit encodes hundreds of thousands of
    // rows while the fold waits for it, and encoding each into a vector of
    // its own grew it five or six times a row (a tenth of the fold
    // thread's time when it encoded alone).
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        // postcard fails only on types serde cannot describe (maps with
        // unknown length and the like), which the model does not contain.
        postcard::serialize_with_flavor(value, Scratch(scratch))
            .expect("read-model rows are plain serde data");
        scratch.as_slice().to_vec()
    })
}

/// postcard's output into a borrowed vector, a string or a hash copied in
/// one piece: its own `to_extend` copies byte by byte through an iterator,
/// 4% of the fold thread's time in a rebuild when it encoded commits alone.
struct Scratch<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Scratch<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Items in one stored chunk of a [`ListTable`] list.
pub(crate) const CHUNK_ITEMS: u64 = 64;

/// The absolute index a new list starts at: lists grow at the front (a
/// reversal puts lots back before the oldest) as well as at the back, and
/// an index must never wrap.
const FIRST_INDEX: u64 = 1 << 40;

/// A table of lists that grow with the log (a pool's lots, a commune's
/// deliveries, a receipt's flows), stored as fixed-size chunks so that a
/// commit writes only the chunks that changed: appending to a list of a
/// million items writes one chunk, not the million.
///
/// In memory each list is one deque, so readers iterate it directly. Items
/// have absolute indices (the first item's index moves when items are
/// taken from or put back at the front), and chunk `c` holds the items
/// whose index divided by [`CHUNK_ITEMS`] is `c`. A stored row is keyed by
/// the list's key followed by the chunk number in big-endian, so a list's
/// chunks are adjacent and in order in the file.
pub struct ListTable<K, T> {
    name: &'static str,
    lists: Rows<K, List<T>>,
    /// Positions of the lists changed since the last commit, each once
    /// (lists leave only when a commit is settled, so none moves in
    /// between). A list emptied is forgotten at the next commit, which
    /// deletes its chunks.
    changed: Vec<u32>,
    /// An index rebuilt from other tables at load, never stored: its
    /// changes are not tracked.
    derived: bool,
}

struct List<T> {
    items: VecDeque<T>,
    /// The absolute index of `items[0]`.
    first: u64,
    /// The chunks the last commit left in the store.
    stored: std::ops::Range<u64>,
    /// Chunks changed since the last commit, unsorted, possibly repeated.
    /// Mostly one (the chunk at the back), inline: every push reads the
    /// last one marked, and a `Vec`'s was a pointer away, out of cache in
    /// a table of many lists. (Two inline take a `Vec`'s size.)
    dirty: SmallVec<[u64; 2]>,
    /// Every chunk changed (items moved within the list).
    all_dirty: bool,
    /// The list's position is in `changed`.
    listed: bool,
}

impl<T> List<T> {
    fn new() -> Self {
        List {
            items: VecDeque::new(),
            first: FIRST_INDEX,
            stored: 0..0,
            dirty: SmallVec::new(),
            all_dirty: false,
            listed: false,
        }
    }

    /// The chunks the list's items fall in now.
    fn chunks(&self) -> std::ops::Range<u64> {
        if self.items.is_empty() {
            return 0..0;
        }
        let last = self.first + self.items.len() as u64 - 1;
        self.first / CHUNK_ITEMS..last / CHUNK_ITEMS + 1
    }

    fn mark(&mut self, index: u64) {
        if self.all_dirty {
            return;
        }
        let chunk = index / CHUNK_ITEMS;
        if self.dirty.last() != Some(&chunk) {
            self.dirty.push(chunk);
        }
    }
}

impl<K: fmt::Debug, T> fmt::Debug for ListTable<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListTable")
            .field("name", &self.name)
            .field("lists", &self.lists.len())
            .field("changed", &self.changed.len())
            .finish()
    }
}

impl<K: Ord + Hash + Clone, T> ListTable<K, T> {
    pub(crate) fn new(name: &'static str) -> Self {
        ListTable {
            name,
            lists: Rows::default(),
            changed: Vec::new(),
            derived: false,
        }
    }

    /// A table rebuilt from the stored ones at load, not stored itself.
    pub(crate) fn derived(name: &'static str) -> Self {
        ListTable {
            derived: true,
            ..ListTable::new(name)
        }
    }

    /// The list for `key`, oldest first; `None` when it is empty.
    pub fn get<Q>(&self, key: &Q) -> Option<&VecDeque<T>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lists
            .get(key)
            .map(|list| &list.items)
            .filter(|items| !items.is_empty())
    }

    /// Every non-empty list, in no particular order.
    pub fn iter_any_order(&self) -> impl Iterator<Item = (&K, &VecDeque<T>)> {
        self.lists
            .iter()
            .filter(|(_, list)| !list.items.is_empty())
            .map(|(key, list)| (key, &list.items))
    }

    /// Every item, to change in place without marking it changed: for
    /// changes the store cannot see (which copy of an id an item points
    /// to).
    pub(crate) fn items_mut_unchanged(&mut self) -> impl Iterator<Item = &mut T> {
        self.lists
            .values_mut()
            .flat_map(|list| list.items.iter_mut())
    }

    /// Items in all lists.
    pub fn total_items(&self) -> usize {
        self.lists.values().map(|list| list.items.len()).sum()
    }

    fn list_mut<Q>(&mut self, key: &Q) -> &mut List<T>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // One lookup for a list that exists (most pushes), two for a new one.
        let position = match self.lists.position(key) {
            Some(position) => position,
            None => self.lists.insert_full(key.to_owned(), List::new()).0,
        };
        self.listed_at(position)
    }

    /// The list at `position`, listed as changed.
    fn listed_at(&mut self, position: usize) -> &mut List<T> {
        let (_, list) = self.lists.at_mut(position);
        if !list.listed {
            list.listed = true;
            if self.derived {
                // Never listed, and every chunk counts as changed, so no
                // change is recorded for it from now on.
                list.all_dirty = true;
            } else {
                self.changed.push(position_u32(position));
            }
        }
        list
    }

    /// Appends at the back of the list for `key`.
    pub(crate) fn push_back<Q>(&mut self, key: &Q, item: T)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let list = self.list_mut(key);
        list.items.push_back(item);
        let index = list.first + list.items.len() as u64 - 1;
        list.mark(index);
    }

    /// Puts an item back before the first.
    pub(crate) fn push_front<Q>(&mut self, key: &Q, item: T)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let list = self.list_mut(key);
        list.items.push_front(item);
        list.first -= 1;
        let index = list.first;
        list.mark(index);
    }

    /// The list for `key`, to take items from its front, found once for
    /// all of them (a FIFO debit takes one or more lots from a pool);
    /// `None` when it is empty.
    pub(crate) fn front_taker<Q>(&mut self, key: &Q) -> Option<FrontTaker<'_, T>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let position = self.lists.position(key)?;
        if self.lists.at(position).1.items.is_empty() {
            return None;
        }
        Some(FrontTaker(self.listed_at(position)))
    }

    /// The whole list, to change anywhere (every chunk is rewritten: for
    /// rare events such as a receipt's reversal).
    pub(crate) fn whole_mut<Q>(&mut self, key: &Q) -> &mut VecDeque<T>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let list = self.list_mut(key);
        list.all_dirty = true;
        &mut list.items
    }
}

/// One list's front, from [`ListTable::front_taker`]: the chunk of an
/// item changed or taken there is marked for the next commit.
pub(crate) struct FrontTaker<'t, T>(&'t mut List<T>);

impl<T> FrontTaker<'_, T> {
    /// The first item, to change in place.
    pub(crate) fn front_mut(&mut self) -> Option<&mut T> {
        let list = &mut *self.0;
        if !list.items.is_empty() {
            list.mark(list.first);
        }
        list.items.front_mut()
    }

    /// Takes the first item.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let list = &mut *self.0;
        let item = list.items.pop_front()?;
        list.mark(list.first);
        list.first += 1;
        Some(item)
    }
}

impl<K, T> StoredTable for ListTable<K, T>
where
    K: Ord + Hash + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    T: Serialize + DeserializeOwned + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn encode_changes(&self) -> (Vec<RowWrite>, Settle) {
        let chunk_key = |key: &[u8], chunk: u64| [key, &chunk.to_be_bytes()].concat();
        // Most changed lists write one chunk.
        let mut writes = Vec::with_capacity(self.changed.len());
        // Lists have no generation: each changed one is settled by itself.
        let mut settle = Settle {
            generation: 0,
            changed: self.changed.len(),
            lists: Vec::with_capacity(self.changed.len()),
            emptied: 0,
        };
        for &position in &self.changed {
            let position = position as usize;
            let (key, list) = self.lists.at(position);
            let encoded = encode(key);
            let now = list.chunks();
            // The stored chunks outside the list's range now: those before
            // it (taken from the front) and after it (a list cut short),
            // visited without walking the ones still in use.
            let (before, after) = if now.is_empty() {
                (list.stored.clone(), 0..0)
            } else {
                (
                    list.stored.start..list.stored.end.min(now.start),
                    list.stored.start.max(now.end)..list.stored.end,
                )
            };
            for chunk in before.chain(after) {
                writes.push((chunk_key(&encoded, chunk), None));
            }
            let mut dirty: Vec<u64> = if list.all_dirty {
                now.clone().collect()
            } else {
                list.dirty.to_vec()
            };
            dirty.sort_unstable();
            dirty.dedup();
            for chunk in dirty.into_iter().filter(|chunk| now.contains(chunk)) {
                let start = (chunk * CHUNK_ITEMS).max(list.first);
                let end = ((chunk + 1) * CHUNK_ITEMS).min(list.first + list.items.len() as u64);
                let items: Vec<&T> = list
                    .items
                    .range((start - list.first) as usize..(end - list.first) as usize)
                    .collect();
                writes.push((chunk_key(&encoded, chunk), Some(encode(&(start, items)))));
            }
            settle.emptied += usize::from(list.items.is_empty());
            settle.lists.push(ListSettle {
                position,
                stored: now,
            });
        }
        (writes, settle)
    }

    fn settle(&mut self, settle: Settle) -> Spent {
        settle.check(0, self.changed.len(), self.name);
        let mut emptied = Vec::with_capacity(settle.emptied);
        for ListSettle { position, stored } in settle.lists {
            let (_, list) = self.lists.at_mut(position);
            list.stored = stored;
            // Freed, not cleared: a list changed once keeps no buffer for
            // the commits it sits out (most of a receipt's flows are written
            // once), which across a million lists is megabytes.
            list.dirty = SmallVec::new();
            list.all_dirty = false;
            list.listed = false;
            if list.items.is_empty() {
                emptied.push(position);
            }
        }
        // Nothing is stored for an emptied list any more: it is forgotten,
        // as a model loaded from the store would not have it. Last first,
        // so that the row each removal moves into the gap (the last one)
        // is never one still to remove.
        emptied.sort_unstable_by(|a, b| b.cmp(a));
        for position in emptied {
            let key = self.lists.at(position).0.clone();
            self.lists.swap_remove(&key);
        }
        self.changed.clear();
        Box::new(())
    }

    fn load_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), postcard::Error> {
        let (key, chunk) = key
            .split_last_chunk::<8>()
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        let chunk = u64::from_be_bytes(*chunk);
        let key: K = postcard::from_bytes(key)?;
        let (start, items): (u64, Vec<T>) = postcard::from_bytes(value)?;
        let list = self.lists.get_or_insert_with(key, List::new);
        // Chunks are stored in order and without gaps: the first one sets
        // where the list starts, each next one must continue it.
        let expected = if list.items.is_empty() {
            list.first = start;
            list.stored = chunk..chunk;
            start
        } else {
            list.first + list.items.len() as u64
        };
        if start != expected || start / CHUNK_ITEMS != chunk || list.stored.end != chunk {
            return Err(postcard::Error::DeserializeBadEncoding);
        }
        list.items.extend(items);
        list.stored.end = chunk + 1;
        Ok(())
    }

    fn digest_into(&self, hasher: &mut Sha256) {
        let mut lists: Vec<(&K, &VecDeque<T>)> = self.iter_any_order().collect();
        lists.sort_unstable_by(|a, b| a.0.cmp(b.0));
        hasher.update(self.name.as_bytes());
        hasher.update((lists.len() as u64).to_be_bytes());
        for (key, items) in lists {
            let key = encode(key);
            hasher.update((key.len() as u64).to_be_bytes());
            hasher.update(&key);
            hasher.update((items.len() as u64).to_be_bytes());
            for item in items {
                let item = encode(item);
                hasher.update((item.len() as u64).to_be_bytes());
                hasher.update(&item);
            }
        }
    }

    fn pending_changes(&self) -> usize {
        self.changed.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Applies a commit's writes to a stand-in for the store's table.
    fn write(stored: &mut BTreeMap<Vec<u8>, Vec<u8>>, writes: Vec<RowWrite>) {
        for (key, value) in writes {
            match value {
                Some(value) => stored.insert(key, value),
                None => stored.remove(&key),
            };
        }
    }

    /// A commit names each stored key at most once.
    fn assert_each_key_once(writes: &[RowWrite], context: &str) {
        let mut keys: Vec<&Vec<u8>> = writes.iter().map(|(key, _)| key).collect();
        keys.sort_unstable();
        let named = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), named, "{context}");
    }

    /// What the store should hold for `table`: its rows, encoded.
    fn stored_form<K, V>(table: &Table<K, V>) -> BTreeMap<Vec<u8>, Vec<u8>>
    where
        K: Ord + Hash + Clone + Serialize,
        V: Serialize,
    {
        table
            .iter_any_order()
            .map(|(key, value)| (encode(key), encode(value)))
            .collect()
    }

    fn load(stored: &BTreeMap<Vec<u8>, Vec<u8>>) -> ListTable<u8, u32> {
        let mut table = ListTable::new("lists");
        for (key, value) in stored {
            table.load_row(key, value).unwrap();
        }
        table
    }

    fn contents(table: &ListTable<u8, u32>) -> BTreeMap<u8, Vec<u32>> {
        table
            .iter_any_order()
            .map(|(key, items)| (*key, items.iter().copied().collect()))
            .collect()
    }

    /// Whatever is done to the lists between commits (appends, takes from
    /// the front, puts back at the front, rewrites), the chunks the commits
    /// leave load back into the same lists, and a commit writes chunks
    /// only where something changed.
    #[test]
    fn committed_chunks_load_back_into_the_same_lists() {
        let mut rng = StdRng::seed_from_u64(16);
        let mut table: ListTable<u8, u32> = ListTable::new("lists");
        let mut stored = BTreeMap::new();
        let mut next = 0u32;
        for round in 0..400 {
            for _ in 0..rng.random_range(0..300) {
                let key = rng.random_range(0..6u8);
                match rng.random_range(0..10) {
                    0..5 => {
                        table.push_back(&key, next);
                        next += 1;
                    }
                    5..7 => {
                        // One lookup, one or more items taken.
                        if let Some(mut front) = table.front_taker(&key) {
                            for _ in 0..rng.random_range(1..4) {
                                front.pop_front();
                            }
                        }
                    }
                    7 => {
                        table.push_front(&key, next);
                        next += 1;
                    }
                    8 => {
                        if let Some(mut front) = table.front_taker(&key)
                            && let Some(item) = front.front_mut()
                        {
                            *item += 1_000_000;
                        }
                    }
                    _ => {
                        if rng.random_range(0..20) == 0 {
                            table.whole_mut(&key).retain(|item| item % 3 != 0);
                        }
                    }
                }
            }
            let (writes, settle) = table.encode_changes();
            assert_eq!(
                table.encode_changes().0,
                writes,
                "round {round}: encoding changes nothing"
            );
            drop(table.settle(settle));
            for (key, value) in &writes {
                if let Some(value) = value {
                    let (_, items): (u64, Vec<u32>) = postcard::from_bytes(value).unwrap();
                    assert!(items.len() as u64 <= CHUNK_ITEMS, "round {round}: {key:?}");
                }
            }
            write(&mut stored, writes);
            assert_eq!(contents(&load(&stored)), contents(&table), "round {round}");
            assert!(table.take_changes().is_empty(), "nothing changed since");
        }
    }

    /// Encoding changes nothing, and settling forgets exactly what was
    /// encoded: a row changed twice is written once, a row changed again
    /// after a settled commit is written by the next, a row removed and
    /// inserted again is written once, and one removed is deleted.
    #[test]
    fn a_table_writes_each_changed_row_once_per_commit_and_again_after_it() {
        let mut table: Table<u32, String> = Table::new("rows");
        let mut stored = BTreeMap::new();
        for key in 0..100 {
            table.insert(key, format!("v{key}"));
        }
        let (first, settle) = table.encode_changes();
        assert_eq!(table.encode_changes().0, first, "encoding changes nothing");
        assert_eq!(first.len(), 100);
        drop(table.settle(settle));
        write(&mut stored, first);
        assert_eq!(table.pending_changes(), 0);
        assert!(table.encode_changes().0.is_empty());

        *table.get_mut(&7).unwrap() = "seven".into();
        *table.get_mut(&7).unwrap() = "sept".into();
        table.remove(&8);
        table.remove(&9);
        table.insert(9, "nine".into());
        table.entry(&200, || "new".into());
        let writes = table.take_changes();
        let mut keys: Vec<(u32, bool)> = writes
            .iter()
            .map(|(key, value)| (postcard::from_bytes(key).unwrap(), value.is_some()))
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, [(7, true), (8, false), (9, true), (200, true)]);
        write(&mut stored, writes);

        *table.get_mut(&7).unwrap() = "seven again".into();
        let writes = table.take_changes();
        assert_eq!(writes.len(), 1, "7, changed after the commit");
        write(&mut stored, writes);
        assert_eq!(stored, stored_form(&table), "the store holds the table");
    }

    /// Whatever mix of inserts, changes and removals (each moving the last
    /// row) comes between commits, each commit names a key at most once,
    /// and the commits leave the store holding exactly the table.
    #[test]
    fn commits_between_random_changes_and_removals_leave_the_table_stored() {
        let mut rng = StdRng::seed_from_u64(17);
        let mut table: Table<u16, u32> = Table::new("rows");
        let mut stored = BTreeMap::new();
        let mut removals = 0;
        for round in 0..300 {
            for step in 0..rng.random_range(0..200u32) {
                let key = rng.random_range(0..80u16);
                match rng.random_range(0..8) {
                    0..3 => table.insert(key, round * 1000 + step),
                    3..5 => {
                        if let Some(value) = table.get_mut(&key) {
                            *value += 1;
                        }
                    }
                    5 => *table.entry(&key, || 7) += 2,
                    _ => removals += usize::from(table.remove(&key).is_some()),
                }
            }
            let (writes, settle) = table.encode_changes();
            assert_eq!(table.encode_changes().0, writes, "round {round}");
            drop(table.settle(settle));
            assert_each_key_once(&writes, &format!("round {round}: a key written twice"));
            write(&mut stored, writes);
            assert_eq!(stored, stored_form(&table), "round {round}");
            assert!(table.take_changes().is_empty(), "round {round}");
        }
        assert!(removals > 1000, "the test removes rows: {removals}");
    }

    /// A table in log order is stored in chunks of its rows by position,
    /// through insertions, replacements, changes in place and removals
    /// (which move its last row): what is stored after each commit is the
    /// table as it stands, and loads as the same rows in the same order.
    #[test]
    fn a_log_order_table_is_stored_in_chunks_by_position_and_loads_as_it_was() {
        type Record = (u64, u32);
        let in_log_order = || Table::<u16, Record>::in_log_order("records", |r| r.0);
        let mut rng = StdRng::seed_from_u64(18);
        let mut table = in_log_order();
        let mut stored = BTreeMap::new();
        let (mut seq, mut replaced, mut removed) = (0u64, 0, 0);
        for round in 0..200 {
            for _ in 0..rng.random_range(0..150u32) {
                let key = rng.random_range(0..200u16);
                match rng.random_range(0..8) {
                    0..3 => {
                        seq += rng.random_range(1..4);
                        replaced += usize::from(table.contains(&key));
                        table.insert(key, (seq, round));
                    }
                    3..6 => {
                        if let Some(record) = table.get_mut(&key) {
                            record.1 += 1;
                        }
                    }
                    _ => removed += usize::from(table.remove(&key).is_some()),
                }
            }
            let (writes, settle) = table.encode_changes();
            drop(table.settle(settle));
            assert_each_key_once(&writes, &format!("round {round}: a chunk written twice"));
            write(&mut stored, writes);
            let rows: Vec<(&u16, &Record)> = table.iter_any_order().collect();
            let expected: BTreeMap<Vec<u8>, Vec<u8>> = rows
                .chunks(RECORDS_PER_ROW)
                .enumerate()
                .map(|(chunk, rows)| ((chunk as u64).to_be_bytes().to_vec(), encode(rows)))
                .collect();
            assert_eq!(stored, expected, "round {round}");

            let mut loaded = in_log_order();
            for (key, value) in &stored {
                loaded.load_row(key, value).unwrap();
            }
            let loaded_rows: Vec<(&u16, &Record)> = loaded.iter_any_order().collect();
            assert_eq!(loaded_rows, rows, "round {round}: loaded as it was");
        }
        assert!(replaced > 500 && removed > 500, "{replaced} {removed}");
        assert!(stored.len() > 1, "more than one chunk: {}", stored.len());

        // A chunk filed at a position not its own is a damaged store: the
        // first chunk under the second's key, or the second chunk first.
        let mut chunks = stored.iter();
        let (first_key, first) = chunks.next().unwrap();
        let (second_key, second) = chunks.next().unwrap();
        assert!(in_log_order().load_row(second_key, first).is_err());
        assert!(in_log_order().load_row(second_key, second).is_err());
        let mut loaded = in_log_order();
        loaded.load_row(first_key, first).unwrap();
        assert!(loaded.load_row(first_key, second).is_err());
        // A key stored twice.
        let twice = encode(&vec![(1u16, (1u64, 0u32)), (1u16, (2u64, 0u32))]);
        assert!(in_log_order().load_row(first_key, &twice).is_err());
    }

    /// Lists emptied together in one commit (the table's first, a middle
    /// and its last row) are forgotten, the others kept whole, and a later
    /// commit to one of those writes it.
    #[test]
    fn lists_emptied_in_one_commit_are_forgotten_and_the_others_kept() {
        let mut table: ListTable<u8, u32> = ListTable::new("lists");
        let mut stored = BTreeMap::new();
        for key in 0..6u8 {
            for item in 0..3 {
                table.push_back(&key, u32::from(key) * 10 + item);
            }
        }
        write(&mut stored, table.take_changes());
        for key in [0u8, 2, 5] {
            let mut front = table.front_taker(&key).unwrap();
            while front.pop_front().is_some() {}
        }
        write(&mut stored, table.take_changes());
        assert_eq!(table.lists.len(), 3, "the emptied lists are forgotten");
        let expected: BTreeMap<u8, Vec<u32>> = [1u8, 3, 4]
            .into_iter()
            .map(|key| (key, (0..3).map(|item| u32::from(key) * 10 + item).collect()))
            .collect();
        assert_eq!(contents(&table), expected);
        assert_eq!(contents(&load(&stored)), expected);
        table.push_back(&4, 99);
        write(&mut stored, table.take_changes());
        assert_eq!(contents(&load(&stored))[&4], [40, 41, 42, 99]);
    }

    /// A settle from before a change, or from another table, is refused:
    /// it would mark changes taken that were never written.
    #[test]
    #[should_panic(expected = "changed between encoding a commit and settling it")]
    fn a_table_changed_after_encoding_refuses_the_settle() {
        let mut table: Table<u32, String> = Table::new("rows");
        table.insert(1, "one".into());
        let (_, settle) = table.encode_changes();
        table.insert(2, "two".into());
        drop(table.settle(settle));
    }

    /// Appending one item to a long list writes one chunk.
    #[test]
    fn appending_to_a_long_list_writes_its_last_chunk_only() {
        let mut table: ListTable<u8, u32> = ListTable::new("lists");
        for item in 0..10_000 {
            table.push_back(&1, item);
        }
        let mut stored = BTreeMap::new();
        write(&mut stored, table.take_changes());
        table.push_back(&1, 10_000);
        let writes = table.take_changes();
        assert_eq!(writes.len(), 1);
        let (_, items): (u64, Vec<u32>) =
            postcard::from_bytes(writes[0].1.as_ref().unwrap()).unwrap();
        assert_eq!(items.last(), Some(&10_000));
        assert!(items.len() as u64 <= CHUNK_ITEMS);
        write(&mut stored, writes);
        assert_eq!(load(&stored).get(&1).map(VecDeque::len), Some(10_001));
    }
}
