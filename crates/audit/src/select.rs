//! Finding the entry a donor or auditor asks about: by event id, by
//! receipt id, or by the bank reference the donor holds, which the ledger
//! knows only as its keyed hash (`external_ref_hash`, SPEC §7.5).

use aidledger_ledger::privacy::RefKey;
use aidledger_ledger::{Body, Event};

/// Which event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventSelector {
    /// By `event_id`.
    EventId(String),
    /// The receipt with this `receipt_id`.
    ReceiptId(String),
    /// The receipt whose `external_ref_hash` is this hash.
    ExternalRefHash([u8; 32]),
}

impl EventSelector {
    /// The receipt of a bank (or delivery-note) reference, hashed here with
    /// the ledger's reference key as SPEC §7.5 says (normalised, then
    /// HMAC-SHA256), so the reference itself never leaves this machine.
    pub fn bank_reference(reference: &str, key: &RefKey) -> Self {
        EventSelector::ExternalRefHash(key.external_ref_hash(reference))
    }

    /// Whether `event` is the one asked for.
    pub fn matches(&self, event: &Event) -> bool {
        match (self, &event.body) {
            (EventSelector::EventId(id), _) => event.event_id == *id,
            (EventSelector::ReceiptId(id), Body::Receipt(receipt)) => receipt.receipt_id == *id,
            (EventSelector::ExternalRefHash(hash), Body::Receipt(receipt)) => {
                receipt.external_ref_hash.as_ref() == Some(hash)
            }
            _ => false,
        }
    }
}
