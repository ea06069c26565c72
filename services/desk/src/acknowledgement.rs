//! The acknowledgement a donor who asked not to be named is given (SPEC
//! §7.5): written by the desk and by `aidctl register-donor`, read by
//! `aidctl audit verify-donor`. The log gets a random org id and the name
//! commitment; the name and the salt are only on this paper.

use std::fmt::Write as _;

use aidledger_ledger::privacy::{NAME_SALT_BYTES, name_commitment};
use anyhow::{Context as _, Result, bail};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use rand_core::RngCore as _;

/// The first line of an acknowledgement file.
const ACK_MAGIC: &str = "aidledger hidden donor acknowledgement v1";

/// Random bytes in a hidden donor's org id: 48 bits, so ids do not collide
/// in any programme's lifetime (and a collision is refused and retried).
pub const ORG_ID_RANDOM_BYTES: usize = 6;

/// Tries with a fresh random id when one is taken.
pub const ORG_ID_ATTEMPTS_MAX: usize = 3;

/// What a hidden donor is given: enough to find the registration in the
/// log and open its commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acknowledgement {
    pub origin: String,
    pub org_id: String,
    pub name: String,
    pub salt: [u8; NAME_SALT_BYTES],
    pub registered_by: String,
    pub event_id: String,
    pub seq: u64,
    pub page: String,
}

impl Acknowledgement {
    /// The file's text: fields a program reads back, the donor's page as a
    /// QR code, and what it all means, in Vietnamese and English.
    pub fn to_text(&self) -> Result<String> {
        let commitment = name_commitment(&self.salt, &self.name);
        let qr = QrCode::new(self.page.as_bytes())
            .context("the page address is too long for a QR code")?
            // Dark modules as blocks: the acknowledgement is printed on paper.
            .render::<Dense1x2>()
            .quiet_zone(true)
            .build();
        let mut text = String::new();
        let _ = writeln!(text, "{ACK_MAGIC}");
        let _ = writeln!(
            text,
            "# Giấy xác nhận cho nhà hảo tâm không muốn công khai tên / Acknowledgement for a donor who asked not to be named"
        );
        let _ = writeln!(text, "ledger: {}", self.origin);
        let _ = writeln!(text, "org_id: {}", self.org_id);
        let _ = writeln!(text, "name: {}", self.name);
        let _ = writeln!(text, "salt: {}", hex::encode(self.salt));
        let _ = writeln!(text, "name_commitment: {}", hex::encode(commitment));
        let _ = writeln!(text, "registered_by: {}", self.registered_by);
        let _ = writeln!(text, "event_id: {}", self.event_id);
        let _ = writeln!(text, "seq: {}", self.seq);
        let _ = writeln!(text, "page: {}", self.page);
        let _ = writeln!(text);
        let _ = writeln!(text, "{qr}");
        let _ = writeln!(
            text,
            "# Sổ cái công khai chỉ ghi mã {} và một giá trị cam kết; tên và \"salt\" chỉ có trên giấy này.",
            self.org_id
        );
        let _ = writeln!(
            text,
            "# Giữ giấy này cẩn thận. Khi cần chứng minh khoản đóng góp là của bạn, đưa giấy cho người bạn chọn;"
        );
        let _ = writeln!(
            text,
            "# họ kiểm tra bằng: aidctl --vkey <khóa của sổ cái> audit verify-donor <tệp này>"
        );
        let _ = writeln!(
            text,
            "# The public log holds only the id {} and a commitment; the name and the salt are only on this paper.",
            self.org_id
        );
        let _ = writeln!(
            text,
            "# Keep it safe. To prove the gifts are yours, show it to whomever you choose; they check it with:"
        );
        let _ = writeln!(
            text,
            "#   aidctl --vkey <the ledger's vkey> audit verify-donor <this file>"
        );
        Ok(text)
    }

    /// Reads a file [`Acknowledgement::to_text`] wrote (comments, the QR code
    /// and blank lines are skipped).
    pub fn parse(text: &str) -> Result<Self> {
        let mut lines = text.lines();
        if lines.next().map(str::trim_end) != Some(ACK_MAGIC) {
            bail!("not an aidledger donor acknowledgement (its first line is not {ACK_MAGIC:?})");
        }
        let mut fields = std::collections::HashMap::new();
        for line in lines {
            if let Some((key, value)) = line.split_once(": ")
                && !key.starts_with('#')
                && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                fields.insert(key, value.trim_end());
            }
        }
        let field = |key: &str| -> Result<String> {
            fields
                .get(key)
                .map(|value| (*value).to_owned())
                .with_context(|| format!("the acknowledgement has no {key:?} line"))
        };
        let salt = hex::decode(field("salt")?)
            .ok()
            .and_then(|bytes| <[u8; NAME_SALT_BYTES]>::try_from(bytes).ok())
            .context("the acknowledgement's salt is not 32 bytes in hex")?;
        Ok(Acknowledgement {
            origin: field("ledger")?,
            org_id: field("org_id")?,
            name: field("name")?,
            salt,
            registered_by: field("registered_by")?,
            event_id: field("event_id")?,
            seq: field("seq")?
                .parse()
                .context("the acknowledgement's seq is not a number")?,
            page: field("page")?,
        })
    }
}

/// A hidden donor's org id: `an-` and 48 random bits.
pub fn random_org_id() -> String {
    let mut bytes = [0u8; ORG_ID_RANDOM_BYTES];
    rand_core::OsRng.fill_bytes(&mut bytes);
    format!("an-{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack() -> Acknowledgement {
        Acknowledgement {
            origin: "aid.test.example/log".into(),
            org_id: "an-0a1b2c3d4e5f".into(),
            name: "Nguyễn Thị Lan".into(),
            salt: [0x5c; 32],
            registered_by: "fund".into(),
            event_id: "00000000-0000-4000-8000-000000000007".into(),
            seq: 42,
            page: "https://minhbach.example.vn/donors/an-0a1b2c3d4e5f".into(),
        }
    }

    #[test]
    fn an_acknowledgement_reads_back_as_written() {
        let text = ack().to_text().unwrap();
        assert_eq!(Acknowledgement::parse(&text).unwrap(), ack());
        assert!(text.contains(&hex::encode(name_commitment(&[0x5c; 32], "Nguyễn Thị Lan"))));
        // The QR code is there, as block characters.
        assert!(text.contains('▀') || text.contains('▄'), "{text}");
    }

    #[test]
    fn a_damaged_acknowledgement_is_refused_with_the_reason() {
        let text = ack().to_text().unwrap();
        let error = Acknowledgement::parse("hello\n").unwrap_err().to_string();
        assert!(
            error.contains("not an aidledger donor acknowledgement"),
            "{error}"
        );
        let no_salt = text.replace("salt: ", "pepper: ");
        let error = Acknowledgement::parse(&no_salt).unwrap_err().to_string();
        assert!(error.contains("\"salt\""), "{error}");
        let short_salt = text.replace(&hex::encode([0x5c; 32]), "5c5c");
        let error = Acknowledgement::parse(&short_salt).unwrap_err().to_string();
        assert!(error.contains("not 32 bytes"), "{error}");
    }

    #[test]
    fn random_org_ids_are_valid_and_distinct() {
        let a = random_org_id();
        assert!(aidledger_ledger::decode::is_valid_id(&a), "{a}");
        assert_ne!(a, random_org_id());
    }
}
