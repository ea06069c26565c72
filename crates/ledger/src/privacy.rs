//! SPEC §7.5, what the log may hold about people, as functions: the
//! commitment to a hidden donor's name, the keyed hash of a bank or
//! delivery-note reference, the keyed token of a child, and the warning
//! tools give when free text looks personal.
//!
//! The keys are inputs: this crate draws no randomness. Tools generate salts
//! and keys with the operating system's generator and pass them in.

use std::fmt;

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use unicode_normalization::UnicodeNormalization as _;

type HmacSha256 = Hmac<Sha256>;

/// SPEC §7.5: the salt of a name commitment is 32 random bytes.
pub const NAME_SALT_BYTES: usize = 32;

/// SPEC §7.5: `K_ref` and `K_ben` are 32 random bytes.
pub const SECRET_KEY_BYTES: usize = 32;

/// SPEC §7.5: "tools SHOULD warn when it looks like ... a number of 9 or
/// more digits" (an identity card, phone or account number).
pub const DIGIT_RUN_WARN_MIN: usize = 9;

/// SPEC §7.5:
/// `name_commitment = SHA-256("aidledger/v1/name" || 0x0A || salt || 0x0A || NFC(name))`.
pub fn name_commitment(salt: &[u8; NAME_SALT_BYTES], name: &str) -> [u8; 32] {
    let name: String = name.nfc().collect();
    let mut hasher = Sha256::new();
    hasher.update(b"aidledger/v1/name\n");
    hasher.update(salt);
    hasher.update(b"\n");
    hasher.update(name.as_bytes());
    hasher.finalize().into()
}

/// SPEC §7.5 `normalize`: "Unicode NFC, whitespace removed everywhere, ASCII
/// letters upper-cased", so `ft25 123 456` on a phone and `FT25123456` on a
/// statement find the same receipt.
pub fn normalize_reference(reference: &str) -> String {
    reference
        .nfc()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A 32-byte secret key of SPEC §7.5 (`K_ref` or `K_ben`). Its `Debug`
/// never shows the bytes, so a key cannot reach a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey32([u8; SECRET_KEY_BYTES]);

impl SecretKey32 {
    /// The key with these bytes.
    pub fn from_bytes(bytes: [u8; SECRET_KEY_BYTES]) -> Self {
        SecretKey32(bytes)
    }

    /// Reads a key file's text: 64 hexadecimal characters, surrounding
    /// whitespace ignored.
    ///
    /// # Errors
    ///
    /// The text is not exactly 32 bytes in hex; the message never repeats
    /// the text.
    pub fn from_hex(text: &str) -> Result<Self, KeyFormatError> {
        let text = text.trim();
        if text.len() != 2 * SECRET_KEY_BYTES {
            return Err(KeyFormatError {
                chars: text.chars().count(),
            });
        }
        let mut bytes = [0u8; SECRET_KEY_BYTES];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte =
                u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| KeyFormatError {
                    chars: text.chars().count(),
                })?;
        }
        Ok(SecretKey32(bytes))
    }

    /// The key as a key file holds it: 64 lowercase hexadecimal characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn mac(&self, domain: &[u8], message: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(domain);
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for SecretKey32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey32(..)")
    }
}

/// A key file that is not 32 bytes in hex.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a key file holds 64 hexadecimal characters (32 bytes); this one has {chars} characters")]
pub struct KeyFormatError {
    chars: usize,
}

/// `K_ref`, the ledger's reference key (SPEC §7.5): held by the operator, the
/// organisations that record receipts and the publishers that offer a
/// look-up by reference; never published, never in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefKey(pub SecretKey32);

impl RefKey {
    /// SPEC §7.5:
    /// `external_ref_hash = HMAC-SHA256(K_ref, "aidledger/v1/ref" || 0x0A || normalize(reference))`.
    pub fn external_ref_hash(&self, reference: &str) -> [u8; 32] {
        self.0.mac(
            b"aidledger/v1/ref\n",
            normalize_reference(reference).as_bytes(),
        )
    }
}

/// `K_ben`, the province's beneficiary key (SPEC §7.5): held by its
/// children's office and the delivering organisations, never published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeneficiaryKey(pub SecretKey32);

impl BeneficiaryKey {
    /// SPEC §7.5: `HMAC-SHA256(K_ben, "aidledger/v1/beneficiary" || 0x0A ||
    /// record id)`, the same token for the same child whoever delivers.
    pub fn token(&self, record_id: &str) -> [u8; 32] {
        self.0
            .mac(b"aidledger/v1/beneficiary\n", record_id.as_bytes())
    }
}

/// Why a free-text field may hold personal data (SPEC §7.5 "Free text").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextWarning {
    /// A run of this many digits: an identity, phone or account number?
    LongNumber { digits: usize },
    /// Words that read like a Vietnamese personal name: a common family
    /// name followed by one to three more capitalised words.
    LooksLikeName { words: String },
}

impl fmt::Display for TextWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextWarning::LongNumber { digits } => write!(
                f,
                "holds a run of {digits} digits (an identity, phone or account number?)"
            ),
            TextWarning::LooksLikeName { words } => {
                write!(f, "{words:?} looks like a personal name")
            }
        }
    }
}

/// The most common Vietnamese family names (together about nine in ten
/// people): one of them followed by more capitalised words is how a
/// personal name looks in a note. Family names that also begin common place
/// names (Hà Nội, Lâm Đồng, Cao Bằng, Thái Nguyên, Hồ Chí Minh) are left
/// out, or every address would warn.
const FAMILY_NAMES: &[&str] = &[
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Ngô", "Dương", "Lý", "Đinh", "Đoàn", "Trịnh", "Trương", "Lương", "Tạ", "Đào", "Kiều", "Quách",
];

/// SPEC §7.5: "the organisations' tools SHOULD warn when it looks like a
/// name or a number of 9 or more digits". Advice for the person typing, not
/// a rule: the ledger accepts the text either way.
pub fn text_warnings(text: &str) -> Vec<TextWarning> {
    let mut warnings = Vec::new();
    let mut run = 0usize;
    let mut longest = 0usize;
    for c in text.chars() {
        if c.is_ascii_digit() {
            run += 1;
            longest = longest.max(run);
        } else if !(run > 0 && matches!(c, ' ' | '.' | '-')) {
            // Digits grouped with spaces, dots or dashes are one number.
            run = 0;
        }
    }
    if longest >= DIGIT_RUN_WARN_MIN {
        warnings.push(TextWarning::LongNumber { digits: longest });
    }
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let capitalised = |w: &str| w.chars().next().is_some_and(char::is_uppercase);
    for (i, word) in words.iter().enumerate() {
        if !FAMILY_NAMES.contains(word) {
            continue;
        }
        let following = words[i + 1..]
            .iter()
            .take(3)
            .take_while(|w| capitalised(w))
            .count();
        if following >= 1 {
            warnings.push(TextWarning::LooksLikeName {
                words: words[i..=i + following].join(" "),
            });
            break;
        }
    }
    warnings
}

/// The free-text fields of an event (SPEC §7.5 "Free text": `note`,
/// `description`, `reason`, `label`, `standard`), named as in the proto, for
/// tools that warn before signing.
pub fn free_text(body: &crate::Body) -> Vec<(&'static str, &str)> {
    use crate::Body;
    match body {
        Body::RegisterKey(k) => vec![("register_key.label", &k.label)],
        Body::RevokeKey(k) => vec![("revoke_key.reason", &k.reason)],
        Body::PublishNeed(n) => vec![("publish_need.description", &n.description)],
        Body::CancelPledge(c) => vec![("cancel_pledge.reason", &c.reason)],
        Body::Receipt(r) => vec![("receipt.note", &r.note)],
        Body::Transfer(t) => vec![("transfer.note", &t.note)],
        Body::TransferReceived(t) => vec![("transfer_received.note", &t.note)],
        Body::Delivery(d) => vec![("delivery.note", &d.note)],
        Body::Inspection(i) => vec![
            ("inspection.standard", &i.standard),
            ("inspection.note", &i.note),
        ],
        Body::Reversal(r) => vec![("reversal.reason", &r.reason)],
        Body::Commendation(c) => vec![("commendation.reason", &c.reason)],
        Body::Genesis(_)
        | Body::RegisterOrg(_)
        | Body::RegisterCommune(_)
        | Body::RegisterAsset(_)
        | Body::PublishPlan(_)
        | Body::Pledge(_) => Vec::new(),
    }
    .into_iter()
    .map(|(field, text)| (field, text.as_str()))
    .filter(|(_, text)| !text.is_empty())
    .collect()
}
