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

use sha2::{Digest, Sha256};

use crate::id::Id;
use crate::model::ReceiptRecord;
use crate::positions::{PositionIndex, position_u32};
use crate::table::Table;

/// Positions in the receipts table, by the receipts' reference hash.
#[derive(Debug, Default)]
pub struct ReceiptsByRef {
    positions: PositionIndex<u32>,
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
        self.positions
            .insert(reference, position_u32(position), |other| {
                reference_at(receipts, other)
            });
    }

    /// The receipts that carry `reference`, in log order.
    pub fn get<'m>(
        &self,
        receipts: &'m Table<Id, ReceiptRecord>,
        reference: &[u8; 32],
    ) -> Vec<(&'m Id, &'m ReceiptRecord)> {
        let mut positions: Vec<u32> = self
            .positions
            .get_all(reference, |position| reference_at(receipts, position))
            .collect();
        positions.sort_unstable();
        positions
            .into_iter()
            .map(|position| receipts.at(position as usize))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feeds the index to `hasher` as the model's digest has always taken
    /// it (when it was a table of lists named `receipts_by_ref`): each
    /// reference in order, with the ids of its receipts in log order.
    pub(crate) fn digest_into(&self, receipts: &Table<Id, ReceiptRecord>, hasher: &mut Sha256) {
        let mut entries: Vec<([u8; 32], u32)> = self
            .positions
            .iter()
            .map(|position| (reference_at(receipts, position), position))
            .collect();
        entries.sort_unstable();
        let references = entries.chunk_by(|a, b| a.0 == b.0).count();
        hasher.update(b"receipts_by_ref");
        hasher.update((references as u64).to_be_bytes());
        for group in entries.chunk_by(|a, b| a.0 == b.0) {
            let reference = postcard_bytes(&group[0].0);
            hasher.update((reference.len() as u64).to_be_bytes());
            hasher.update(&reference);
            hasher.update((group.len() as u64).to_be_bytes());
            for &(_, position) in group {
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
