//! Receipts by the hash of their bank reference (SPEC §7.5
//! `external_ref_hash`): how a donor holding a transfer slip finds the
//! receipt it became.
//!
//! A reference names one receipt, or a few when a receipt was reversed and
//! entered again. Kept as a list per reference (the model's other indexes
//! by key), each of those hundreds of thousands of one-item lists cost a
//! hash slot, a list header and an allocation: 65 MiB of a 1M-entry model
//! of 611 MiB. Here the index holds only each receipt's position in
//! [`Model::receipts`], four bytes, found by the reference hash the receipt
//! record itself keeps. That works because the receipts table is in log
//! order and never removed from: a position names one receipt for good.
//!
//! Derived, like the model's other indexes: never stored, rebuilt at load.
//!
//! [`Model::receipts`]: crate::model::Model::receipts

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::id::Id;
use crate::model::ReceiptRecord;
use crate::positions::{PositionIndex, position_u32};
use crate::table::Table;

/// Positions in the receipts table, by the receipts' reference hash.
///
/// The index holds each reference once, with its first receipt: the
/// ledger does not make references unique, and entries with equal keys
/// share one probe sequence in a hash table, so an organisation that
/// sent many receipts under one reference would make each insert and
/// lookup walk all of them. The later receipts of a reference (a receipt
/// reversed and entered again, normally) are listed apart.
#[derive(Debug, Default)]
pub struct ReceiptsByRef {
    first: PositionIndex<u32>,
    /// The later receipts of a reference, in log order, by the position of
    /// its first.
    later: FxHashMap<u32, Vec<u32>>,
}

/// The reference hash of the receipt at `position`, which the index put
/// there because it has one.
fn reference_at(receipts: &Table<Id, ReceiptRecord>, position: u32) -> [u8; 32] {
    receipts
        .at(position as usize)
        .1
        .external_ref_hash
        .expect("only receipts with a reference hash are indexed")
}

impl ReceiptsByRef {
    /// Indexes the receipt at `position` of `receipts`, whose reference
    /// hash is `reference`.
    pub(crate) fn add(
        &mut self,
        receipts: &Table<Id, ReceiptRecord>,
        reference: &[u8; 32],
        position: usize,
    ) {
        let key_of = |other| reference_at(receipts, other);
        let position = position_u32(position);
        match self.first.get(reference, key_of) {
            Some(first) => self.later.entry(first).or_default().push(position),
            None => self.first.insert(reference, position, key_of),
        }
    }

    /// The receipts that carry `reference`, in log order.
    pub fn get<'m>(
        &self,
        receipts: &'m Table<Id, ReceiptRecord>,
        reference: &[u8; 32],
    ) -> Vec<(&'m Id, &'m ReceiptRecord)> {
        let Some(first) = self
            .first
            .get(reference, |position| reference_at(receipts, position))
        else {
            return Vec::new();
        };
        std::iter::once(&first)
            .chain(self.later.get(&first).into_iter().flatten())
            .map(|&position| receipts.at(position as usize))
            .collect()
    }

    /// Receipts indexed.
    pub fn len(&self) -> usize {
        self.first.len() + self.later.values().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feeds the index to `hasher` as the model's digest has always taken
    /// it (when it was a table of lists named `receipts_by_ref`): each
    /// reference in order, with the ids of its receipts in log order.
    pub(crate) fn digest_into(&self, receipts: &Table<Id, ReceiptRecord>, hasher: &mut Sha256) {
        let mut references: Vec<([u8; 32], u32)> = self
            .first
            .iter()
            .map(|first| (reference_at(receipts, first), first))
            .collect();
        references.sort_unstable();
        hasher.update(b"receipts_by_ref");
        hasher.update((references.len() as u64).to_be_bytes());
        for (reference, first) in references {
            let later = self.later.get(&first).map_or(&[][..], Vec::as_slice);
            let reference = postcard_bytes(&reference);
            hasher.update((reference.len() as u64).to_be_bytes());
            hasher.update(&reference);
            hasher.update((1 + later.len() as u64).to_be_bytes());
            for &position in std::iter::once(&first).chain(later) {
                let id = postcard_bytes(receipts.at(position as usize).0);
                hasher.update((id.len() as u64).to_be_bytes());
                hasher.update(&id);
            }
        }
    }
}

fn postcard_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("ids and hashes are plain serde data")
}
