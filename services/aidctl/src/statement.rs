//! Bank statement exports to Receipt events (`aidctl import-statement`).
//!
//! Input: a CSV file with a header row naming at least the columns `date`,
//! `amount` and `reference` (any order, any case; a `description` column and
//! any others, such as account numbers, are ignored: they are never read into
//! memory past the CSV reader). Separator `,`, `;` or tab, detected from the
//! header. Amounts as `1.500.000`, `1,500,000`, `1 500 000` or `1500000`,
//! optionally with zero decimals (`1.500.000,00`) and a `VND`/`đ`/`₫`
//! suffix; negative amounts are debits and skipped. Dates `DD/MM/YYYY`
//! (or `D/M/YYYY`) or `YYYY-MM-DD`.
//!
//! **Determinism, for idempotent re-imports:** everything in the event comes
//! from the line and the command's options, never from the clock or
//! randomness. `event_id` and `receipt_id` are derived from the importing
//! organisation and the reference; `occurred_at` is the line's date at
//! midnight in Vietnam (UTC+07:00). Re-importing a line therefore produces
//! identical event bytes and, with the same key (Ed25519 signatures are
//! deterministic), an identical submission, which the ledger answers as a
//! duplicate (SPEC §6).
//!
//! **Privacy:** the ledger gets the reference only as its keyed hash
//! (`external_ref_hash`, HMAC with the ledger's reference key `K_ref`, SPEC
//! §7.5), so a donor holding the reference can find the receipt through a
//! publisher that holds the key, while nobody holding only the log can test
//! a guessed reference. The derived ids are hashes of that keyed hash, so
//! they give nothing more away. No description, account number or name is
//! kept, not even in `note`.

use std::collections::HashMap;
use std::fmt;

use aidledger_ledger::calendar;
use aidledger_ledger::privacy::{RefKey, normalize_reference};
use aidledger_wire::Timestamp;
use aidledger_wire::pb;
use sha2::{Digest, Sha256};

/// Domain separators of the derived ids, so they can never equal another
/// hash of the same reference (such as `external_ref_hash`).
const EVENT_ID_DOMAIN: &[u8] = b"aidledger/v1/aidctl/statement/event_id\n";
const RECEIPT_ID_DOMAIN: &[u8] = b"aidledger/v1/aidctl/statement/receipt_id\n";

/// `receipt_id` is this prefix and 32 hex digits (128 bits of hash), well
/// within the 64-character id limit of SPEC §7.
const RECEIPT_ID_PREFIX: &str = "stmt-";

/// One credit line of a statement, holding only what reaches the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementLine {
    /// Its line number in the file (the header is line 1).
    pub line: u64,
    /// The date at midnight, Vietnam time.
    pub occurred_at: Timestamp,
    /// The amount in đồng.
    pub amount: u64,
    /// The bank's transaction reference, trimmed. Hashed before it leaves.
    pub reference: String,
}

/// A line that is not imported, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedLine {
    /// Its line number.
    pub line: u64,
    /// Why it is skipped.
    pub why: String,
}

/// A line that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// Its line number.
    pub line: u64,
    /// What is wrong, naming the column.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A parsed statement: credits to import, lines skipped, lines in error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statement {
    /// Credit lines, in file order.
    pub lines: Vec<StatementLine>,
    /// Debits, and exact repeats of an earlier line.
    pub skipped: Vec<SkippedLine>,
    /// Lines that could not be read.
    pub errors: Vec<LineError>,
}

/// Why the file as a whole cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementError(pub String);

impl fmt::Display for StatementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StatementError {}

/// Parses a statement export. Every line is read; per-line problems are
/// collected in [`Statement::errors`] so all of them can be shown at once.
pub fn parse_statement(text: &str) -> Result<Statement, StatementError> {
    // Spreadsheet programs often write a UTF-8 byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header_line = text.lines().next().unwrap_or("");
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&d| header_line.bytes().filter(|&b| b == d).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|error| StatementError(format!("header row: {error}")))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|header| header.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                StatementError(format!(
                    "the header row has no {name:?} column (found: {})",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ))
            })
    };
    let (date_col, amount_col, reference_col) =
        (column("date")?, column("amount")?, column("reference")?);

    let mut statement = Statement::default();
    // reference -> (line, date, amount) of its first occurrence.
    let mut seen: HashMap<String, (u64, Timestamp, u64)> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                statement.errors.push(LineError {
                    line,
                    message: format!("unreadable CSV: {error}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        let field = |col: usize| record.get(col).unwrap_or("").trim();
        let fail = |message: String| LineError { line, message };
        let date = match parse_date(field(date_col)) {
            Ok(date) => date,
            Err(message) => {
                statement.errors.push(fail(format!("date: {message}")));
                continue;
            }
        };
        let amount = match parse_amount(field(amount_col)) {
            Ok(Amount::Credit(amount)) => amount,
            Ok(Amount::Debit) => {
                statement.skipped.push(SkippedLine {
                    line,
                    why: format!("a debit ({}), not a receipt", field(amount_col)),
                });
                continue;
            }
            Err(message) => {
                statement.errors.push(fail(format!("amount: {message}")));
                continue;
            }
        };
        let reference = field(reference_col);
        if reference.is_empty() {
            statement
                .errors
                .push(fail("reference: empty; it identifies the receipt".into()));
            continue;
        }
        // SPEC §7.5 hashes the normalised reference: `FT 24061` and
        // `ft24061` are one transfer, and one receipt.
        let normalized = normalize_reference(reference);
        match seen.get(&normalized) {
            Some(&(first, first_date, first_amount))
                if first_date == date && first_amount == amount =>
            {
                statement.skipped.push(SkippedLine {
                    line,
                    why: format!("repeats line {first}"),
                });
                continue;
            }
            Some(&(first, _, _)) => {
                statement.errors.push(fail(format!(
                    "reference: also on line {first} with another date or amount"
                )));
                continue;
            }
            None => {
                seen.insert(normalized, (line, date, amount));
            }
        }
        statement.lines.push(StatementLine {
            line,
            occurred_at: date,
            amount,
            reference: reference.to_owned(),
        });
    }
    Ok(statement)
}

/// A statement amount: money in, or money out (not a receipt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    /// Đồng received.
    Credit(u64),
    /// Money out.
    Debit,
}

/// Parses `1.500.000`, `1,500,000`, `1 500 000`, `1500000`,
/// `1.500.000,00`, `1,500,000.00`, with an optional sign, parentheses for
/// negatives and a `VND`, `đ` or `₫` suffix. Đồng have no minor unit, so
/// decimals must be zero.
pub fn parse_amount(text: &str) -> Result<Amount, String> {
    let original = text;
    let mut text = text.trim();
    for suffix in ["VND", "vnd", "đ", "₫"] {
        if let Some(rest) = text.strip_suffix(suffix) {
            text = rest.trim_end();
            break;
        }
    }
    let mut negative = false;
    if let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        negative = true;
        text = inner.trim();
    }
    if let Some(rest) = text.strip_prefix('-') {
        negative = true;
        text = rest.trim_start();
    } else if let Some(rest) = text.strip_prefix('+') {
        text = rest.trim_start();
    }
    if text.is_empty() {
        return Err(format!("{original:?} has no digits"));
    }
    let bad = || format!("{original:?} is not an amount such as 1.500.000 or 1500000");
    if !text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | ' ' | '\u{a0}'))
    {
        return Err(bad());
    }
    // The decimal separator, if any: the last '.' or ',' when both appear, or
    // a single one not followed by exactly three digits (a group).
    let last_dot = text.rfind('.');
    let last_comma = text.rfind(',');
    let decimal_at = match (last_dot, last_comma) {
        (Some(dot), Some(comma)) => Some(dot.max(comma)),
        (Some(at), None) | (None, Some(at)) => {
            let sep = text.as_bytes()[at];
            let count = text.bytes().filter(|&b| b == sep).count();
            let after = &text[at + 1..];
            (count == 1 && after.len() != 3).then_some(at)
        }
        (None, None) => None,
    };
    let (integer, decimals) = match decimal_at {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, ""),
    };
    if decimal_at.is_some()
        && (decimals.is_empty()
            || decimals.len() > 2
            || !decimals.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    if decimals.bytes().any(|b| b != b'0') {
        return Err(format!(
            "{original:?} has a fraction of a đồng; amounts are whole đồng"
        ));
    }
    // Groups: the first of 1 to 3 digits, the others of exactly 3, all
    // separated by the same character.
    let separators: Vec<char> = integer.chars().filter(|c| !c.is_ascii_digit()).collect();
    if let Some(&first) = separators.first() {
        if separators.iter().any(|&s| s != first) {
            return Err(bad());
        }
        let groups: Vec<&str> = integer.split(first).collect();
        let well_grouped =
            (1..=3).contains(&groups[0].len()) && groups[1..].iter().all(|g| g.len() == 3);
        if !well_grouped {
            return Err(bad());
        }
    }
    let digits: String = integer.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Err(bad());
    }
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("{original:?} is too large"))?;
    if amount == 0 {
        return Err(format!("{original:?} is zero"));
    }
    Ok(if negative {
        Amount::Debit
    } else {
        Amount::Credit(amount)
    })
}

/// Parses `DD/MM/YYYY` (day and month may have one digit) or `YYYY-MM-DD`
/// into midnight of that day in Vietnam.
pub fn parse_date(text: &str) -> Result<Timestamp, String> {
    let expected = || format!("{text:?} is not a date DD/MM/YYYY or YYYY-MM-DD");
    let number = |part: &str, digits: std::ops::RangeInclusive<usize>| -> Result<i64, String> {
        if digits.contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().map_err(|_| expected())
        } else {
            Err(expected())
        }
    };
    let parts: Vec<&str>;
    let (year, month, day) = if text.contains('/') {
        parts = text.split('/').collect();
        let [day, month, year] = parts.as_slice() else {
            return Err(expected());
        };
        (
            number(year, 4..=4)?,
            number(month, 1..=2)?,
            number(day, 1..=2)?,
        )
    } else {
        parts = text.split('-').collect();
        let [year, month, day] = parts.as_slice() else {
            return Err(expected());
        };
        (
            number(year, 4..=4)?,
            number(month, 2..=2)?,
            number(day, 2..=2)?,
        )
    };
    let (Ok(year), Ok(month), Ok(day)) = (
        i32::try_from(year),
        u32::try_from(month),
        u32::try_from(day),
    ) else {
        return Err(expected());
    };
    // A statement date means that day in Vietnam. Midnight there is 17:00
    // UTC the day before, so a line dated today is never "in the future"
    // for a ledger in Vietnam (SPEC §6 allows 5 minutes).
    let date = calendar::date(year, month, day)
        .ok_or_else(|| format!("{text:?} is not a calendar date"))?;
    Ok(Timestamp {
        seconds: calendar::vn_midnight(date),
        nanos: 0,
    })
}

/// What the command line says about every receipt of an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptParams {
    /// The importing (receiving) organisation.
    pub org_id: String,
    /// The donor.
    pub donor_org_id: String,
    /// The asset, `VND` for money.
    pub asset_id: String,
    /// An earmark for every line, if any.
    pub earmark: Option<pb::Earmark>,
    /// SPEC §7.5 `K_ref`, the ledger's reference key.
    pub ref_key: RefKey,
}

/// Ids derive from the keyed reference hash, never from the reference: an
/// id hashed from the plain reference could be brute-forced like an
/// unkeyed `external_ref_hash`.
fn derived_hash(domain: &[u8], org_id: &str, ref_hash: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(org_id.as_bytes());
    hasher.update(b"\n");
    hasher.update(ref_hash);
    hasher.finalize().into()
}

/// The event id of a statement line: a UUID (version 8, "custom", RFC 9562)
/// made of the first 16 bytes of a hash of the organisation and the keyed
/// reference hash.
pub fn derived_event_id(org_id: &str, ref_hash: &[u8; 32]) -> String {
    let hash = derived_hash(EVENT_ID_DOMAIN, org_id, ref_hash);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The receipt id of a statement line: a hash of the organisation and the
/// keyed reference hash, so it reveals neither.
pub fn derived_receipt_id(org_id: &str, ref_hash: &[u8; 32]) -> String {
    let hash = derived_hash(RECEIPT_ID_DOMAIN, org_id, ref_hash);
    format!("{RECEIPT_ID_PREFIX}{}", hex::encode(&hash[..16]))
}

/// The Receipt event of one statement line. Deterministic: the same line
/// and parameters always give the same event, and the same bytes.
pub fn receipt_event(params: &ReceiptParams, line: &StatementLine) -> pb::Event {
    // SPEC §7.5: HMAC-SHA256(K_ref, "aidledger/v1/ref\n" || normalize(reference)).
    let ref_hash = params.ref_key.external_ref_hash(&line.reference);
    pb::Event {
        event_id: derived_event_id(&params.org_id, &ref_hash),
        org_id: params.org_id.clone(),
        occurred_at: Some(line.occurred_at),
        body: Some(pb::event::Body::Receipt(pb::Receipt {
            receipt_id: derived_receipt_id(&params.org_id, &ref_hash),
            donor_org_id: params.donor_org_id.clone(),
            pledge_id: String::new(),
            asset_id: params.asset_id.clone(),
            quantity: line.amount,
            earmark: params.earmark.clone(),
            external_ref_hash: ref_hash.to_vec().into(),
            // Nothing from the statement: descriptions carry names and
            // account numbers.
            note: String::new(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use aidledger_ledger::decode::{decode_event, is_valid_id, is_valid_uuid};
    use aidledger_wire::Message as _;

    use super::*;

    fn params() -> ReceiptParams {
        ReceiptParams {
            org_id: "agency.red-cross".into(),
            donor_org_id: "donor.acme".into(),
            asset_id: "VND".into(),
            earmark: None,
            ref_key: ref_key(),
        }
    }

    fn ref_key() -> RefKey {
        RefKey(aidledger_ledger::privacy::SecretKey32::from_bytes(
            [0x42; 32],
        ))
    }

    const STATEMENT: &str = "\
date,amount,reference,description,account
01/03/2024,1.500.000,FT24061BX9Q2,CK tu NGUYEN VAN AN ung ho tre em,0071000123456
2024-03-02,2500000,FT24062QQ001,ACME CORP DONATION INV 2024-17,0071000999888
03/03/2024,-200.000,FT24063OUT01,PHI DICH VU,0071000123456
";

    #[test]
    fn a_statement_parses_both_number_and_date_formats() {
        let statement = parse_statement(STATEMENT).unwrap();
        assert_eq!(statement.errors, []);
        assert_eq!(statement.lines.len(), 2);
        let first = &statement.lines[0];
        assert_eq!(first.line, 2);
        assert_eq!(first.amount, 1_500_000);
        assert_eq!(first.reference, "FT24061BX9Q2");
        // Midnight on 1 March 2024 in Vietnam.
        assert_eq!(first.occurred_at.to_string(), "2024-02-29T17:00:00Z");
        assert_eq!(statement.lines[1].amount, 2_500_000);
        assert_eq!(
            statement.lines[1].occurred_at.to_string(),
            "2024-03-01T17:00:00Z"
        );
        assert_eq!(statement.skipped.len(), 1);
        assert_eq!(statement.skipped[0].line, 4);
        assert!(statement.skipped[0].why.contains("debit"));
    }

    #[test]
    fn amounts_in_every_accepted_format() {
        let credit = |text: &str| parse_amount(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        for text in [
            "1.500.000",
            "1,500,000",
            "1 500 000",
            "1\u{a0}500\u{a0}000",
            "1500000",
            "1.500.000,00",
            "1,500,000.00",
            "1500000.00",
            "1500000,0",
            "+1.500.000",
            "1.500.000 VND",
            "1.500.000đ",
            "1.500.000 ₫",
            " 1500000 ",
        ] {
            assert_eq!(credit(text), Amount::Credit(1_500_000), "{text}");
        }
        assert_eq!(credit("1.500"), Amount::Credit(1_500));
        assert_eq!(credit("7"), Amount::Credit(7));
        assert_eq!(credit("-1.500.000"), Amount::Debit);
        assert_eq!(credit("(1.500.000)"), Amount::Debit);
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for (text, why) in [
            ("", "no digits"),
            ("abc", "not an amount"),
            ("1.50", "fraction"),
            ("1.500,50", "fraction"),
            ("1.5000.000", "not an amount"),
            ("1.500,000", "not an amount"),
            ("15.00.000", "not an amount"),
            ("1,500.000,00", "not an amount"),
            ("0", "zero"),
            ("0,00", "zero"),
            ("99999999999999999999", "too large"),
            ("1e6", "not an amount"),
        ] {
            let error = parse_amount(text).unwrap_err();
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }

    #[test]
    fn dates_in_both_formats_and_bad_ones() {
        assert_eq!(
            parse_date("5/3/2024").unwrap(),
            parse_date("2024-03-05").unwrap()
        );
        assert_eq!(
            parse_date("29/02/2024").unwrap().to_string(),
            "2024-02-28T17:00:00Z"
        );
        for bad in [
            "30/02/2024",
            "2023-02-29",
            "2024-13-01",
            "03/2024",
            "2024/03/01",
            "24-03-01",
            "2024-3-1",
            "",
            "01/03/24",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn line_errors_name_the_line_and_column() {
        let text = "Date;Amount;Reference\n01/03/2024;1.500.000;A1\n31/04/2024;5;A2\n01/05/2024;1,5;A3\n01/05/2024;1000;\n";
        let statement = parse_statement(text).unwrap();
        let errors: Vec<String> = statement.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "line 3: date: \"31/04/2024\" is not a calendar date",
                "line 4: amount: \"1,5\" has a fraction of a đồng; amounts are whole đồng",
                "line 5: reference: empty; it identifies the receipt",
            ]
        );
        assert_eq!(statement.lines.len(), 1);
    }

    #[test]
    fn a_missing_column_is_an_error_for_the_file() {
        let error = parse_statement("date,amount,description\n01/03/2024,5,x\n").unwrap_err();
        assert!(error.0.contains("no \"reference\" column"), "{error}");
    }

    #[test]
    fn repeated_references_are_skipped_or_refused() {
        let text =
            "\u{feff}date,amount,reference\n01/03/2024,5,R1\n01/03/2024,5,r 1\n02/03/2024,5,R1\n";
        let statement = parse_statement(text).unwrap();
        assert_eq!(statement.lines.len(), 1);
        assert_eq!(statement.skipped[0].why, "repeats line 2");
        assert_eq!(statement.errors[0].line, 4);
    }

    #[test]
    fn ids_are_deterministic_valid_and_distinct() {
        let q2 = ref_key().external_ref_hash("FT24061BX9Q2");
        let q3 = ref_key().external_ref_hash("FT24061BX9Q3");
        let a = derived_event_id("agency.red-cross", &q2);
        assert_eq!(a, derived_event_id("agency.red-cross", &q2));
        assert!(is_valid_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "8", "version 8");
        assert_ne!(a, derived_event_id("agency.other", &q2));
        assert_ne!(a, derived_event_id("agency.red-cross", &q3));
        let r = derived_receipt_id("agency.red-cross", &q2);
        assert!(is_valid_id(&r), "{r}");
        assert_ne!(r, derived_receipt_id("agency.other", &q2));
        // Another key, other ids: nobody without K_ref can compute them.
        let other = RefKey(aidledger_ledger::privacy::SecretKey32::from_bytes([1; 32]));
        assert_ne!(
            r,
            derived_receipt_id("agency.red-cross", &other.external_ref_hash("FT24061BX9Q2"))
        );
    }

    #[test]
    fn reimporting_gives_identical_bytes() {
        let first: Vec<Vec<u8>> = parse_statement(STATEMENT)
            .unwrap()
            .lines
            .iter()
            .map(|line| receipt_event(&params(), line).encode_to_vec())
            .collect();
        let second: Vec<Vec<u8>> = parse_statement(STATEMENT)
            .unwrap()
            .lines
            .iter()
            .map(|line| receipt_event(&params(), line).encode_to_vec())
            .collect();
        assert_eq!(first, second);
    }

    #[test]
    fn receipts_pass_the_ledgers_field_rules() {
        for line in parse_statement(STATEMENT).unwrap().lines {
            let bytes = receipt_event(&params(), &line).encode_to_vec();
            decode_event(&bytes[..]).unwrap_or_else(|r| panic!("line {}: {r}", line.line));
        }
    }

    #[test]
    fn descriptions_accounts_and_references_never_reach_the_event_bytes() {
        let statement = parse_statement(STATEMENT).unwrap();
        for line in &statement.lines {
            let event = receipt_event(&params(), line);
            let bytes = event.encode_to_vec();
            for secret in [
                "NGUYEN VAN AN",
                "ACME CORP",
                "0071000123456",
                "0071000999888",
                "CK tu",
                "INV 2024-17",
                line.reference.as_str(),
            ] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "line {}: {secret:?} is in the event bytes",
                    line.line
                );
            }
            let Some(pb::event::Body::Receipt(receipt)) = event.body else {
                panic!("a receipt")
            };
            assert_eq!(
                receipt.external_ref_hash,
                ref_key().external_ref_hash(&line.reference).to_vec()
            );
            // Neither the unkeyed hash of the reference nor anything the
            // reference alone determines is in the bytes.
            let unkeyed = Sha256::digest(line.reference.as_bytes());
            assert!(!bytes.windows(32).any(|w| w == unkeyed.as_slice()));
            assert_eq!(receipt.note, "");
        }
    }
}
