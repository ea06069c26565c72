//! Everything the generator draws from its seed besides the random stream:
//! key seeds, event ids, the SPEC §7.5 keys and salts, beneficiary tokens,
//! evidence hashes.
//!
//! Each value is SHA-256 over a domain label, the seed and the value's own
//! label, so adding a key or an event never shifts any other value, and
//! different purposes can never produce the same bytes.

use aidledger_ledger::privacy::{BeneficiaryKey, RefKey, SecretKey32};
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"aidledger-demo/v1";

fn derive(seed: u64, purpose: &str, label: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update([0]);
    hasher.update(purpose.as_bytes());
    hasher.update([0]);
    hasher.update(seed.to_be_bytes());
    hasher.update(label);
    hasher.finalize().into()
}

/// The RFC 8032 seed of the key `label` (e.g. `org/ubnd-xa-phuoc-dai/1`).
pub(crate) fn key_seed(seed: u64, label: &str) -> [u8; 32] {
    derive(seed, "key", label.as_bytes())
}

/// The `counter`-th event id: a lowercase hyphenated UUID with the version 4
/// and RFC 4122 variant bits set, so it looks like any random event id.
pub(crate) fn event_id(seed: u64, counter: u64) -> String {
    let digest = derive(seed, "event-id", &counter.to_be_bytes());
    let mut bytes: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    id
}

/// SPEC §7.5 `K_ben`: the province's beneficiary key, held by its
/// children's office and the delivering organisations, never published.
pub(crate) fn beneficiary_key(seed: u64) -> BeneficiaryKey {
    BeneficiaryKey(SecretKey32::from_bytes(derive(seed, "K_ben", b"")))
}

/// The opaque token of child `child_number` on a commune's register (SPEC
/// §7.5): keyed by the province, so every organisation that reaches the
/// child writes the same token and nobody without `K_ben` can tell who it
/// is.
pub(crate) fn beneficiary_token(
    key: &BeneficiaryKey,
    commune_code: &str,
    child_number: u32,
) -> [u8; 32] {
    key.token(&format!("{commune_code}/{child_number:05}"))
}

/// SPEC §7.5 `K_ref`: the ledger's reference key, shared by the operator
/// and the organisations that record receipts.
pub(crate) fn ref_key(seed: u64) -> RefKey {
    RefKey(SecretKey32::from_bytes(derive(seed, "K_ref", b"")))
}

/// The salt of a hidden donor's name commitment, kept off the log by the
/// registering agency and handed to the donor.
pub(crate) fn name_salt(seed: u64, org_label: &str) -> [u8; 32] {
    derive(seed, "name-salt", org_label.as_bytes())
}

/// A hidden donor's org id: random-looking, derived from nothing about the
/// person (SPEC §7.5), only from the seed and a counter.
pub(crate) fn hidden_org_id(seed: u64, counter: usize) -> String {
    let random = derive(seed, "hidden-org-id", &(counter as u64).to_be_bytes());
    let hex: String = random[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("an-{hex}")
}

/// The hash of an evidence document (handover minutes, signed list, photo)
/// that stays in the commune's files.
pub(crate) fn evidence_hash(seed: u64, document: &str) -> [u8; 32] {
    derive(seed, "evidence", document.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_version_4_uuids_and_distinct() {
        let a = event_id(7, 0);
        let b = event_id(7, 1);
        assert_ne!(a, b);
        assert_ne!(a, event_id(8, 0));
        assert!(aidledger_ledger::decode::is_valid_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "4", "version nibble of {a}");
        assert!(
            matches!(&a[19..20], "8" | "9" | "a" | "b"),
            "variant of {a}"
        );
    }
}
