//! Spreadsheet import: a template per event kind to fill in (XLSX or CSV),
//! an upload checked row by row against the ledger's field rules and what
//! the ledger holds now (communes, organisations, the agency's balances,
//! rows recorded before) before anything is signed, a report of every row
//! to correct (which row, which column, the SPEC 6.2 reason, in the clerk's
//! language; also as a spreadsheet), and only for a file without problems,
//! signing and submitting in batches.
//!
//! A row becomes the same event as the form would make (`forms::body`),
//! its columns mapped to the form's fields. Its event id is derived from
//! the agency, the kind and the row's own id, and its time from the row's
//! date, so the same row always signs the same bytes: uploading a file
//! again records nothing twice.

use std::collections::{BTreeMap, HashMap, HashSet};

use aidledger_client::EntryKey;
use aidledger_wire::Message as _;
use aidledger_wire::pb;
use sha2::{Digest, Sha256};

use crate::forms::{self, Kind};
use crate::picklists::PickLists;
use crate::{Desk, Lang};

/// A column of a template: its name in the sheet, what it means, and the
/// form field it fills.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    pub vi: &'static str,
    pub en: &'static str,
    pub required: bool,
    /// The form field (`forms::Kind::fields`); `date` is the event's day.
    pub field: &'static str,
    /// Written as a category name (`nutrition`), read as the form's value.
    pub category: bool,
}

const fn column(name: &'static str, vi: &'static str, en: &'static str, required: bool) -> Column {
    Column {
        name,
        vi,
        en,
        required,
        field: name,
        category: false,
    }
}

const CATEGORY_HELP: (&str, &str) = (
    "health, nutrition, culture_recreation, scholarship, books_supplies, clothing, other",
    "health, nutrition, culture_recreation, scholarship, books_supplies, clothing, other",
);

const DATE: Column = column("date", "Ngày (YYYY-MM-DD)", "Date (YYYY-MM-DD)", true);
const ASSET: Column = column(
    "asset_id",
    "Mã tài sản (ví dụ VND)",
    "Asset id (e.g. VND)",
    true,
);
const QUANTITY: Column = column(
    "quantity",
    "Số lượng (đơn vị nhỏ nhất)",
    "Quantity (smallest unit)",
    true,
);
const NOTE: Column = column(
    "note",
    "Ghi chú (công bố; không ghi tên trẻ, số tài khoản)",
    "Note (published; no child's name, no account number)",
    false,
);
const EARMARK_COMMUNE: Column = Column {
    field: "commune_code",
    ..column(
        "earmark_commune",
        "Dành riêng cho xã (để trống: chung)",
        "Earmarked for commune (empty: general)",
        false,
    )
};
const EARMARK_CATEGORY: Column = Column {
    field: "category",
    category: true,
    ..column(
        "earmark_category",
        "Dành riêng cho lĩnh vực (để trống: chung)",
        "Earmarked for category (empty: general)",
        false,
    )
};

/// The pool a transfer or a delivery draws from: the earmark columns,
/// described as such.
const POOL_COMMUNE: Column = Column {
    vi: "Lấy từ nguồn dành riêng cho xã (để trống: chung)",
    en: "Drawn from funds earmarked for commune (empty: general)",
    ..EARMARK_COMMUNE
};
const POOL_CATEGORY: Column = Column {
    vi: "Lấy từ nguồn dành riêng cho lĩnh vực (để trống: chung)",
    en: "Drawn from funds earmarked for category (empty: general)",
    ..EARMARK_CATEGORY
};

/// A template: the kind of event each row is, and its columns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sheet {
    pub kind: Kind,
    pub columns: &'static [Column],
}

pub(crate) const SHEETS: [Sheet; 5] = [
    Sheet {
        kind: Kind::Receipt,
        columns: &RECEIPT_COLUMNS,
    },
    Sheet {
        kind: Kind::Pledge,
        columns: &PLEDGE_COLUMNS,
    },
    Sheet {
        kind: Kind::Transfer,
        columns: &TRANSFER_COLUMNS,
    },
    Sheet {
        kind: Kind::Delivery,
        columns: &DELIVERY_COLUMNS,
    },
    Sheet {
        kind: Kind::Plan,
        columns: &PLAN_COLUMNS,
    },
];

/// The annual plan: every row a target, all of one year; the file is one
/// event.
const PLAN_COLUMNS: [Column; 7] = [
    column("year", "Năm của kế hoạch", "The plan's year", true),
    column(
        "date",
        "Ngày quyết định (YYYY-MM-DD)",
        "Date of the decision (YYYY-MM-DD)",
        true,
    ),
    Column {
        category: true,
        ..column("category", "Lĩnh vực", "Category", true)
    },
    column(
        "commune_code",
        "Mã xã (để trống: toàn tỉnh)",
        "Commune code (empty: the whole province)",
        false,
    ),
    ASSET,
    QUANTITY,
    column(
        "children_targeted",
        "Số trẻ mục tiêu",
        "Children targeted",
        true,
    ),
];

impl Sheet {
    pub fn of_segment(segment: &str) -> Option<Sheet> {
        SHEETS.into_iter().find(|s| s.kind.segment() == segment)
    }
}

const RECEIPT_COLUMNS: [Column; 10] = [
    column(
        "receipt_id",
        "Mã khoản tiếp nhận (do đơn vị đặt, không trùng)",
        "Receipt id (the agency's own, unique)",
        true,
    ),
    DATE,
    column("donor_org_id", "Mã nhà tài trợ", "Donor id", true),
    column(
        "pledge_id",
        "Theo cam kết (mã, không bắt buộc)",
        "Against a pledge (its id, optional)",
        false,
    ),
    ASSET,
    QUANTITY,
    column(
        "reference",
        "Mã tham chiếu ngân hàng hoặc phiếu nhập (không công bố: chỉ mã băm có khoá)",
        "Bank or goods-note reference (not published: only its keyed hash)",
        false,
    ),
    EARMARK_COMMUNE,
    EARMARK_CATEGORY,
    NOTE,
];

const PLEDGE_COLUMNS: [Column; 9] = [
    column(
        "pledge_id",
        "Mã cam kết (do đơn vị đặt, không trùng)",
        "Pledge id (the agency's own, unique)",
        true,
    ),
    DATE,
    column("donor_org_id", "Mã nhà tài trợ", "Donor id", true),
    column("recipient_org_id", "Mã đơn vị nhận", "Recipient id", true),
    ASSET,
    QUANTITY,
    column(
        "due_date",
        "Hạn (YYYY-MM-DD, không bắt buộc)",
        "Due (YYYY-MM-DD, optional)",
        false,
    ),
    EARMARK_COMMUNE,
    EARMARK_CATEGORY,
];

const TRANSFER_COLUMNS: [Column; 8] = [
    column(
        "transfer_id",
        "Mã lần chuyển (do đơn vị đặt, không trùng)",
        "Transfer id (the agency's own, unique)",
        true,
    ),
    DATE,
    column("to_org_id", "Mã đơn vị nhận", "To organisation id", true),
    ASSET,
    QUANTITY,
    POOL_COMMUNE,
    POOL_CATEGORY,
    NOTE,
];

pub(crate) const DELIVERY_COLUMNS: [Column; 11] = [
    column(
        "delivery_id",
        "Mã lần trao (do đơn vị đặt, không trùng)",
        "Delivery id (the agency's own, unique)",
        true,
    ),
    DATE,
    Column {
        field: "delivery_commune",
        ..column("commune_code", "Mã xã nhận", "Commune code", true)
    },
    Column {
        field: "delivery_category",
        category: true,
        ..column("category", "Lĩnh vực", "Category", true)
    },
    ASSET,
    QUANTITY,
    column("period", "Kỳ (YYYY-MM)", "Period (YYYY-MM)", true),
    column(
        "children_reached",
        "Số trẻ được nhận",
        "Children reached",
        true,
    ),
    POOL_COMMUNE,
    POOL_CATEGORY,
    NOTE,
];

const CATEGORY_NAMES: [(&str, pb::Category); 7] = [
    ("health", pb::Category::Health),
    ("nutrition", pb::Category::Nutrition),
    ("culture_recreation", pb::Category::CultureRecreation),
    ("scholarship", pb::Category::Scholarship),
    ("books_supplies", pb::Category::BooksSupplies),
    ("clothing", pb::Category::Clothing),
    ("other", pb::Category::Other),
];

/// Rows of a sheet past its header, numbered as the spreadsheet numbers
/// them (the header is row 1).
#[derive(Debug)]
pub(crate) struct Row {
    pub number: usize,
    pub cells: HashMap<&'static str, String>,
}

impl Row {
    fn cell(&self, column: &str) -> &str {
        self.cells.get(column).map_or("", |c| c.trim())
    }
}

/// A row to correct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub row: usize,
    pub column: &'static str,
    /// The SPEC 6.2 reason.
    pub reason: &'static str,
    pub message: String,
}

/// An upload, checked.
#[derive(Debug)]
pub(crate) struct Checked {
    /// SHA-256 of the file, hex: names the upload in the desk's links.
    pub id: String,
    /// What its rows record.
    pub kind: Kind,
    pub file_name: String,
    pub rows: usize,
    /// Rows to sign, in file order.
    pub events: Vec<(usize, pb::Event)>,
    /// Rows the ledger holds already, with their seq.
    pub recorded: Vec<(usize, u64)>,
    pub problems: Vec<Problem>,
}

/// Why a file could not be read at all.
#[derive(Debug)]
pub(crate) struct Unreadable(pub String);

/// The rows of an uploaded XLSX (its first sheet) or CSV (UTF-8) file.
/// Rows a sheet may have: a few thousand deliveries are a big upload;
/// beyond this, split the file.
const ROWS_MAX: u32 = 10_000;
/// Columns a sheet may use: the template has eleven.
const COLUMNS_MAX: u32 = 32;

/// A sheet's lines with the number the spreadsheet shows for each (1 for
/// the first), empty lines left out.
type Lines = Vec<(usize, Vec<String>)>;

pub(crate) fn read_rows(lang: Lang, sheet: Sheet, bytes: &[u8]) -> Result<Vec<Row>, Unreadable> {
    let table: Lines = if bytes.starts_with(b"PK\x03\x04") {
        read_xlsx(lang, bytes)?
    } else {
        read_csv(lang, bytes)?
    };
    let mut lines = table
        .into_iter()
        .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()));
    let Some((_, header)) = lines.next() else {
        return Err(Unreadable(
            lang.t("Tệp trống.", "The file is empty.").to_owned(),
        ));
    };
    let mut columns: Vec<Option<&'static str>> = Vec::new();
    for title in &header {
        let title = title.trim().to_ascii_lowercase();
        if title.is_empty() {
            columns.push(None);
            continue;
        }
        match sheet.columns.iter().find(|c| c.name == title) {
            Some(column) => columns.push(Some(column.name)),
            None => {
                return Err(Unreadable(format!(
                    "{}{title:?}",
                    lang.t(
                        "Cột không có trong mẫu: ",
                        "A column that is not in the template: "
                    )
                )));
            }
        }
    }
    for column in sheet.columns.iter().filter(|c| c.required) {
        if !columns.contains(&Some(column.name)) {
            return Err(Unreadable(format!(
                "{}{}",
                lang.t("Thiếu cột bắt buộc: ", "A required column is missing: "),
                column.name
            )));
        }
    }
    Ok(lines
        .map(|(number, cells)| Row {
            number,
            cells: columns
                .iter()
                .zip(cells)
                .filter_map(|(column, cell)| column.map(|c| (c, cell)))
                .collect(),
        })
        .collect())
}

fn too_big(lang: Lang) -> Unreadable {
    Unreadable(format!(
        "{} {ROWS_MAX} {} {COLUMNS_MAX} {}",
        lang.t("Tệp quá lớn: tối đa", "The file is too big: at most"),
        lang.t("dòng và", "rows and"),
        lang.t("cột; hãy chia nhỏ tệp.", "columns; split it."),
    ))
}

/// CSV lines, numbered as a spreadsheet shows them (a quoted cell may
/// span lines; a blank line is still a line).
fn read_csv(lang: Lang, bytes: &[u8]) -> Result<Lines, Unreadable> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut lines = Lines::new();
    // Lines are counted from the records' byte offsets: an offset may
    // point at the line break before its record, or at blank lines.
    let (mut counted_to, mut line) = (0usize, 1usize);
    for record in reader.records() {
        let record = record.map_err(|e| {
            Unreadable(format!(
                "{}{e}",
                lang.t(
                    "Không đọc được tệp CSV (cần UTF-8): ",
                    "Not a readable CSV file (UTF-8 is needed): "
                )
            ))
        })?;
        if lines.len() as u32 > ROWS_MAX || record.len() as u32 > COLUMNS_MAX {
            return Err(too_big(lang));
        }
        let mut offset = record.position().map_or(counted_to, |p| {
            usize::try_from(p.byte()).unwrap_or(counted_to)
        });
        line += bytes[counted_to..offset.max(counted_to)]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        while let Some(b'\r' | b'\n') = bytes.get(offset) {
            line += usize::from(bytes[offset] == b'\n');
            offset += 1;
        }
        counted_to = offset.max(counted_to);
        lines.push((line, record.iter().map(str::to_owned).collect()));
    }
    Ok(lines)
}

/// The first sheet's cells, read one by one so that a sheet claiming a
/// huge area costs nothing before it is refused.
fn read_xlsx(lang: Lang, bytes: &[u8]) -> Result<Lines, Unreadable> {
    use calamine::{DataRef, Reader as _, Xlsx};
    let unreadable = |e: String| {
        Unreadable(format!(
            "{}{e}",
            lang.t("Không đọc được tệp XLSX: ", "Not a readable XLSX file: ")
        ))
    };
    let mut workbook: Xlsx<_> =
        Xlsx::new(std::io::Cursor::new(bytes.to_vec())).map_err(|e| unreadable(e.to_string()))?;
    let first = workbook
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| unreadable("no sheet".to_owned()))?;
    let mut cells = workbook
        .worksheet_cells_reader(&first)
        .map_err(|e| unreadable(e.to_string()))?;
    let mut rows: std::collections::BTreeMap<u32, Vec<String>> = std::collections::BTreeMap::new();
    while let Some(cell) = cells.next_cell().map_err(|e| unreadable(e.to_string()))? {
        let (row, column) = cell.get_position();
        if row > ROWS_MAX || column >= COLUMNS_MAX {
            return Err(too_big(lang));
        }
        let text = match cell.get_value() {
            DataRef::String(s) | DataRef::DurationIso(s) => s.clone(),
            DataRef::SharedString(s) => (*s).to_owned(),
            // An ISO date-time: its day.
            DataRef::DateTimeIso(s) => s.chars().take(10).collect(),
            // Whole numbers as typed, not "1.0"; others as they are, which
            // the checks then refuse.
            DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
            DataRef::Float(f) => f.to_string(),
            DataRef::Int(i) => i.to_string(),
            DataRef::Bool(b) => b.to_string(),
            // A date typed as a date (either of Excel's calendars): its day.
            DataRef::DateTime(d) => {
                let (year, month, day, ..) = d.to_ymd_hms_milli();
                format!("{year:04}-{month:02}-{day:02}")
            }
            DataRef::Error(e) => format!("#{e:?}"),
            DataRef::Empty => String::new(),
        };
        let line = rows.entry(row).or_default();
        if line.len() <= column as usize {
            line.resize(column as usize + 1, String::new());
        }
        line[column as usize] = text;
    }
    Ok(rows
        .into_iter()
        .map(|(row, cells)| (row as usize + 1, cells))
        .collect())
}

/// An Excel day number (days since 1899-12-30) as YYYY-MM-DD.
fn excel_day(serial: f64) -> String {
    // Days since 1970-01-01, then the civil date (Howard Hinnant's
    // algorithm).
    let days = serial.floor() as i64 - 25_569;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Seconds of the start of `date` (YYYY-MM-DD, a year from 2000 to 2100)
/// in Vietnam (UTC+7).
fn start_in_vietnam(date: &str) -> Option<i64> {
    let mut parts = date.split('-');
    let (year, month, day) = (
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<i64>().ok()?,
    );
    if parts.next().is_some()
        || !(2000..=2100).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
    {
        return None;
    }
    // Days from civil (the inverse of `excel_day`'s algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // Round trip: 2025-02-30 is not a day.
    (excel_day((days + 25_569) as f64) == format!("{year:04}-{month:02}-{day:02}"))
        .then_some(days * 86_400 - 7 * 3_600)
}

/// The event id of the `kind` row whose own id is `id`, for `org_id`: the
/// same row always has the same id.
fn row_event_id(org_id: &str, kind: Kind, id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"aidledger/desk/import/")
        .chain_update(kind.segment().as_bytes())
        .chain_update(b"\n")
        .chain_update(org_id.as_bytes())
        .chain_update(b"\n")
        .chain_update(id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn problem(
    row: &Row,
    column: &'static str,
    reason: &'static str,
    message: impl Into<String>,
) -> Problem {
    Problem {
        row: row.number,
        column,
        reason,
        message: message.into(),
    }
}

/// The sheet's column that fills form field `field`.
fn column_of(sheet: Sheet, field: &str) -> &'static str {
    sheet
        .columns
        .iter()
        .find(|c| c.field == field)
        .map_or("", |c| c.name)
}

/// The event of `row`, as the form would make it, or the first problem.
fn row_event(desk: &Desk, lang: Lang, sheet: Sheet, row: &Row) -> Result<pb::Event, Problem> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for column in sheet.columns {
        let cell = row.cell(column.name);
        let value = if column.category && !cell.is_empty() {
            let name = cell.to_ascii_lowercase();
            let category = CATEGORY_NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| {
                    problem(
                        row,
                        column.name,
                        "INVALID_ENUM",
                        format!(
                            "{}{name:?}",
                            lang.t(
                                "Không phải một lĩnh vực của mẫu: ",
                                "Not one of the template's categories: "
                            )
                        ),
                    )
                })?;
            (category.1 as i32).to_string()
        } else {
            cell.to_owned()
        };
        values.insert(column.field.to_owned(), value);
    }
    let occurred_at = start_in_vietnam(row.cell("date")).ok_or_else(|| {
        problem(
            row,
            "date",
            "INVALID_DATE",
            lang.t(
                "Ngày phải có dạng YYYY-MM-DD, có thật, từ năm 2000 đến 2100.",
                "The date must be a real day from 2000 to 2100, written YYYY-MM-DD.",
            ),
        )
    })?;
    // The ledger refuses an event more than 5 minutes ahead of its clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if occurred_at > now + 300 {
        return Err(problem(
            row,
            "date",
            "OCCURRED_IN_FUTURE",
            crate::reason_text(lang, "OCCURRED_IN_FUTURE"),
        ));
    }
    let body = forms::body(sheet.kind, desk, lang, &values).map_err(|error| Problem {
        row: row.number,
        column: column_of(sheet, error.field),
        reason: forms::reason_for_field(error.field),
        message: error.message,
    })?;
    let id = forms::value(&values, sheet.kind.id_field()).to_owned();
    let event = pb::Event {
        event_id: row_event_id(&desk.config.org_id, sheet.kind, &id),
        org_id: desk.config.org_id.clone(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: occurred_at,
            nanos: 0,
        }),
        body: Some(body),
    };
    aidledger_ledger::decode::event_from_pb(event.clone()).map_err(|rejection| Problem {
        row: row.number,
        column: column_of(sheet, forms::field_of(sheet.kind, &rejection.detail)),
        reason: rejection.reason.as_str(),
        message: format!(
            "{} ({})",
            crate::reason_text(lang, rejection.reason.as_str()),
            rejection.detail
        ),
    })?;
    Ok(event)
}

/// What a row of any kind names: its own id, the communes and
/// organisations it refers to, and, for what draws on a balance, the pool
/// and the quantity.
struct Names<'e> {
    id: &'e str,
    communes: Vec<(&'static str, &'e str)>,
    donors: Vec<(&'static str, &'e str)>,
    recipients: Vec<(&'static str, &'e str)>,
    draws: Option<((String, String, i32), u64)>,
    earmark_mismatch: Option<&'static str>,
}

/// An earmark's commune, as the row's `earmark_commune` column names it.
fn earmark_commune(earmark: &Option<pb::Earmark>) -> Option<(&'static str, &str)> {
    earmark
        .as_ref()
        .map(|e| ("earmark_commune", e.commune_code.as_str()))
}

fn names(body: &pb::event::Body) -> Names<'_> {
    let pool = |asset: &str, earmark: &Option<pb::Earmark>| {
        let earmark = earmark.clone().unwrap_or_default();
        (asset.to_owned(), earmark.commune_code, earmark.category)
    };
    match body {
        pb::event::Body::Receipt(r) => Names {
            id: &r.receipt_id,
            communes: earmark_commune(&r.earmark).into_iter().collect(),
            donors: vec![("donor_org_id", &r.donor_org_id)],
            recipients: Vec::new(),
            draws: None,
            earmark_mismatch: None,
        },
        pb::event::Body::Pledge(p) => Names {
            id: &p.pledge_id,
            communes: earmark_commune(&p.earmark).into_iter().collect(),
            donors: vec![("donor_org_id", &p.donor_org_id)],
            recipients: vec![("recipient_org_id", &p.recipient_org_id)],
            draws: None,
            earmark_mismatch: None,
        },
        pb::event::Body::Transfer(t) => Names {
            id: &t.transfer_id,
            communes: earmark_commune(&t.earmark).into_iter().collect(),
            donors: Vec::new(),
            recipients: vec![("to_org_id", &t.to_org_id)],
            draws: Some((pool(&t.asset_id, &t.earmark), t.quantity)),
            earmark_mismatch: None,
        },
        pb::event::Body::Delivery(d) => {
            let earmark = d.earmark.clone().unwrap_or_default();
            Names {
                id: &d.delivery_id,
                communes: vec![("commune_code", d.commune_code.as_str())]
                    .into_iter()
                    .chain(earmark_commune(&d.earmark))
                    .collect(),
                donors: Vec::new(),
                recipients: Vec::new(),
                draws: Some((pool(&d.asset_id, &d.earmark), d.quantity)),
                earmark_mismatch: if !earmark.commune_code.is_empty()
                    && earmark.commune_code != d.commune_code
                {
                    Some("earmark_commune")
                } else if earmark.category != 0 && earmark.category != d.category {
                    Some("earmark_category")
                } else {
                    None
                },
            }
        }
        _ => Names {
            id: "",
            communes: Vec::new(),
            donors: Vec::new(),
            recipients: Vec::new(),
            draws: None,
            earmark_mismatch: None,
        },
    }
}

/// Checks every row: the ledger's field rules, then against what the
/// ledger holds now (communes, organisations, earmarks, the agency's
/// balances, rows recorded before), in file order, as the ledger would
/// judge them.
pub(crate) async fn check(
    desk: &Desk,
    lang: Lang,
    sheet: Sheet,
    file_name: &str,
    bytes: &[u8],
    lists: &PickLists,
) -> Result<Checked, Unreadable> {
    let rows = read_rows(lang, sheet, bytes)?;
    if sheet.kind == Kind::Plan {
        return check_plan(desk, lang, sheet, file_name, bytes, rows, lists).await;
    }
    let communes: HashSet<&str> = lists.communes.iter().map(|c| c.code.as_str()).collect();
    let donors: HashSet<&str> = lists.donors.iter().map(|d| d.org_id.as_str()).collect();
    let recipients: HashSet<&str> = lists
        .recipients
        .iter()
        .map(|r| r.org_id.as_str())
        .chain([lists.own_org_id.as_str()])
        .collect();
    let mut balances: HashMap<(String, String, i32), u64> = HashMap::new();
    for holding in &lists.holdings {
        *balances
            .entry((
                holding.asset_id.clone(),
                holding.commune_code.clone().unwrap_or_default(),
                holding.category.unwrap_or(0),
            ))
            .or_default() += holding.quantity;
    }
    let mut checked = Checked {
        id: hex::encode(Sha256::digest(bytes)),
        kind: sheet.kind,
        file_name: file_name.to_owned(),
        rows: rows.len(),
        events: Vec::new(),
        recorded: Vec::new(),
        problems: Vec::new(),
    };
    let id_column = column_of(sheet, sheet.kind.id_field());
    let mut ids_seen: HashSet<String> = HashSet::new();
    for row in &rows {
        let event = match row_event(desk, lang, sheet, row) {
            Ok(event) => event,
            Err(problem) => {
                checked.problems.push(problem);
                continue;
            }
        };
        let named = names(event.body.as_ref().expect("a row builds a body"));
        if !ids_seen.insert(named.id.to_owned()) {
            checked.problems.push(problem(
                row,
                id_column,
                "ID_EXISTS",
                lang.t(
                    "Mã này đã dùng ở một dòng trên của tệp.",
                    "This id is used on an earlier row of the file.",
                ),
            ));
            continue;
        }
        // Recorded before: the same row again is not recorded twice; a
        // different row under the same id is a mistake.
        match desk
            .config
            .ledger
            .get_entry(EntryKey::EventId(event.event_id.clone()))
            .await
        {
            Ok(Some(entry)) => {
                if entry.signed_event.event == event.encode_to_vec() {
                    checked.recorded.push((row.number, entry.seq));
                } else {
                    checked.problems.push(problem(
                        row,
                        id_column,
                        "EVENT_ID_EXISTS",
                        crate::reason_text(lang, "EVENT_ID_EXISTS"),
                    ));
                }
                continue;
            }
            Ok(None) => {}
            Err(error) => {
                return Err(Unreadable(format!(
                    "{}{error}",
                    lang.t("Không hỏi được sổ cái: ", "The ledger could not be asked: ")
                )));
            }
        }
        let unknown_commune = named
            .communes
            .iter()
            .find(|(_, code)| !code.is_empty() && !communes.contains(code));
        let unknown_donor = named.donors.iter().find(|(_, id)| !donors.contains(id));
        let unknown_recipient = named
            .recipients
            .iter()
            .find(|(_, id)| !recipients.contains(id));
        if let Some((column, _)) = unknown_commune {
            checked.problems.push(problem(
                row,
                column,
                "UNKNOWN_COMMUNE",
                crate::reason_text(lang, "UNKNOWN_COMMUNE"),
            ));
            continue;
        }
        if let Some((column, _)) = unknown_donor.or(unknown_recipient) {
            checked.problems.push(problem(
                row,
                column,
                "UNKNOWN_ORGANIZATION",
                lang.t(
                    "Không có đơn vị hay nhà tài trợ này trong sổ cái.",
                    "No such organisation or donor in the ledger.",
                ),
            ));
            continue;
        }
        if let Some(column) = named.earmark_mismatch {
            checked.problems.push(problem(
                row,
                column,
                "EARMARK_MISMATCH",
                crate::reason_text(lang, "EARMARK_MISMATCH"),
            ));
            continue;
        }
        if let Some((pool, quantity)) = named.draws {
            let available = balances.get(&pool).copied().unwrap_or(0);
            if quantity > available {
                checked.problems.push(problem(
                    row,
                    "quantity",
                    "INSUFFICIENT_BALANCE",
                    format!(
                        "{} {}{available}.",
                        crate::reason_text(lang, "INSUFFICIENT_BALANCE"),
                        lang.t("Còn lại: ", "Left: ")
                    ),
                ));
                continue;
            }
            balances.insert(pool, available - quantity);
        }
        checked.events.push((row.number, event));
    }
    Ok(checked)
}

/// Checks an annual plan: each row a target, judged alone, then the
/// whole as one event. Its id comes from the agency and the file's bytes,
/// so the same file is recorded once.
async fn check_plan(
    desk: &Desk,
    lang: Lang,
    sheet: Sheet,
    file_name: &str,
    bytes: &[u8],
    rows: Vec<Row>,
    lists: &PickLists,
) -> Result<Checked, Unreadable> {
    let communes: HashSet<&str> = lists.communes.iter().map(|c| c.code.as_str()).collect();
    let file_hash = hex::encode(Sha256::digest(bytes));
    let mut checked = Checked {
        id: file_hash.clone(),
        kind: sheet.kind,
        file_name: file_name.to_owned(),
        rows: rows.len(),
        events: Vec::new(),
        recorded: Vec::new(),
        problems: Vec::new(),
    };
    let (Some(first), year, date) = (
        rows.first(),
        rows.first().map_or("", |r| r.cell("year")).to_owned(),
        rows.first().map_or("", |r| r.cell("date")).to_owned(),
    ) else {
        return Err(Unreadable(
            lang.t("Kế hoạch không có chỉ tiêu nào.", "The plan has no target.")
                .to_owned(),
        ));
    };
    let mut targets = Vec::new();
    for row in &rows {
        let problem_here = |column, reason, message: &str| problem(row, column, reason, message);
        // Dates compared as days, so 2025-3-1 and 2025-03-01 agree.
        let same_date = start_in_vietnam(row.cell("date")) == start_in_vietnam(&date);
        if row.cell("year") != year || !same_date {
            checked.problems.push(problem_here(
                if same_date { "year" } else { "date" },
                "INVALID_DATE",
                lang.t(
                    "Mọi dòng của kế hoạch cùng một năm và một ngày.",
                    "Every row of a plan has the same year and date.",
                ),
            ));
            continue;
        }
        let name = row.cell("category").to_ascii_lowercase();
        let Some((_, category)) = CATEGORY_NAMES.iter().find(|(n, _)| *n == name) else {
            checked.problems.push(problem_here(
                "category",
                "INVALID_ENUM",
                lang.t(
                    "Không phải một lĩnh vực của mẫu.",
                    "Not one of the template's categories.",
                ),
            ));
            continue;
        };
        let commune = row.cell("commune_code");
        if !commune.is_empty() && !communes.contains(commune) {
            checked.problems.push(problem_here(
                "commune_code",
                "UNKNOWN_COMMUNE",
                crate::reason_text(lang, "UNKNOWN_COMMUNE"),
            ));
            continue;
        }
        let (Some(quantity), Some(children)) = (
            forms::parse_whole(row.cell("quantity")),
            forms::parse_whole(row.cell("children_targeted")).and_then(|c| u32::try_from(c).ok()),
        ) else {
            let column = if forms::parse_whole(row.cell("quantity")).is_none() {
                "quantity"
            } else {
                "children_targeted"
            };
            checked.problems.push(problem_here(
                column,
                "INVALID_QUANTITY",
                lang.t(
                    "Cần một số nguyên không âm.",
                    "A whole number, not negative, is needed.",
                ),
            ));
            continue;
        };
        targets.push(pb::PlanTarget {
            category: *category as i32,
            commune_code: commune.to_owned(),
            asset_id: row.cell("asset_id").to_owned(),
            quantity,
            children_targeted: children,
        });
    }
    if !checked.problems.is_empty() {
        return Ok(checked);
    }
    let Ok(year) = year.parse::<u32>() else {
        checked.problems.push(problem(
            first,
            "year",
            "INVALID_DATE",
            crate::reason_text(lang, "INVALID_DATE"),
        ));
        return Ok(checked);
    };
    let Some(occurred_at) = start_in_vietnam(&date) else {
        checked.problems.push(problem(
            first,
            "date",
            "INVALID_DATE",
            crate::reason_text(lang, "INVALID_DATE"),
        ));
        return Ok(checked);
    };
    // The ledger refuses an event more than 5 minutes ahead of its clock:
    // a plan is published on or after its decision's day.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if occurred_at > now + 300 {
        checked.problems.push(problem(
            first,
            "date",
            "OCCURRED_IN_FUTURE",
            crate::reason_text(lang, "OCCURRED_IN_FUTURE"),
        ));
        return Ok(checked);
    }
    let plan = pb::PublishAnnualPlan { year, targets };
    // The id follows the plan itself, not the file's bytes: the same plan
    // saved again is the same event.
    let plan_digest = hex::encode(Sha256::digest(plan.encode_to_vec()));
    let event = pb::Event {
        event_id: row_event_id(
            &desk.config.org_id,
            sheet.kind,
            &format!("{occurred_at}/{plan_digest}"),
        ),
        org_id: desk.config.org_id.clone(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: occurred_at,
            nanos: 0,
        }),
        body: Some(pb::event::Body::PublishPlan(plan)),
    };
    if let Err(rejection) = aidledger_ledger::decode::event_from_pb(event.clone()) {
        checked.problems.push(problem(
            first,
            "",
            rejection.reason.as_str(),
            format!(
                "{} ({})",
                crate::reason_text(lang, rejection.reason.as_str()),
                rejection.detail
            ),
        ));
        return Ok(checked);
    }
    match desk
        .config
        .ledger
        .get_entry(EntryKey::EventId(event.event_id.clone()))
        .await
    {
        Ok(Some(entry)) => checked.recorded.push((first.number, entry.seq)),
        Ok(None) => checked.events.push((first.number, event)),
        Err(error) => {
            return Err(Unreadable(format!(
                "{}{error}",
                lang.t("Không hỏi được sổ cái: ", "The ledger could not be asked: ")
            )));
        }
    }
    Ok(checked)
}

/// A template: the columns in the order the desk reads them, typed as
/// text so that a spreadsheet does not turn ids, dates and periods into
/// numbers or dates, and a second sheet describing each, in both languages.
pub(crate) fn template_xlsx(sheet: Sheet) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let text = Format::new().set_num_format("@");
    let rows = workbook.add_worksheet();
    rows.set_name(sheet.kind.segment())?;
    for (index, column) in sheet.columns.iter().enumerate() {
        let index = u16::try_from(index).expect("a dozen columns");
        rows.write_string_with_format(0, index, column.name, &bold)?;
        rows.set_column_width(index, 18)?;
        rows.set_column_format(index, &text)?;
    }
    let help = workbook.add_worksheet();
    help.set_name("huong-dan (help)")?;
    for (index, title) in ["column", "Tiếng Việt", "English", "required"]
        .iter()
        .enumerate()
    {
        help.write_string_with_format(0, index as u16, *title, &bold)?;
    }
    for (row, column) in sheet.columns.iter().enumerate() {
        let row = row as u32 + 1;
        let (vi, en) = if column.category {
            (
                format!("{}: {}", column.vi, CATEGORY_HELP.0),
                format!("{}: {}", column.en, CATEGORY_HELP.1),
            )
        } else {
            (column.vi.to_owned(), column.en.to_owned())
        };
        help.write_string(row, 0, column.name)?;
        help.write_string(row, 1, vi)?;
        help.write_string(row, 2, en)?;
        help.write_string(row, 3, if column.required { "yes" } else { "" })?;
    }
    help.set_column_width(1, 60)?;
    help.set_column_width(2, 60)?;
    workbook.save_to_buffer()
}

/// A template as CSV: the header row, UTF-8 with a BOM so that Excel
/// opens Vietnamese text as such.
pub(crate) fn template_csv(sheet: Sheet) -> String {
    let names: Vec<&str> = sheet.columns.iter().map(|c| c.name).collect();
    format!("\u{FEFF}{}\r\n", names.join(","))
}

/// The problems of a checked upload as a spreadsheet, in the clerk's
/// language.
pub(crate) fn report_xlsx(
    lang: Lang,
    checked: &Checked,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet();
    sheet.set_name(lang.t("can-sua", "to-correct"))?;
    for (index, title) in [
        lang.t("Dòng", "Row"),
        lang.t("Cột", "Column"),
        lang.t("Lý do (SPEC 6.2)", "Reason (SPEC 6.2)"),
        lang.t("Giải thích", "Explanation"),
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string_with_format(0, index as u16, *title, &bold)?;
    }
    for (index, problem) in checked.problems.iter().enumerate() {
        let row = index as u32 + 1;
        sheet.write_number(row, 0, problem.row as f64)?;
        sheet.write_string(row, 1, problem.column)?;
        sheet.write_string(row, 2, problem.reason)?;
        sheet.write_string(row, 3, &problem.message)?;
    }
    sheet.set_column_width(3, 80)?;
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELIVERIES: Sheet = SHEETS[3];

    #[test]
    fn days_round_trip_and_impossible_days_are_refused() {
        assert_eq!(excel_day(45_658.0), "2025-01-01");
        assert_eq!(excel_day(25_569.0), "1970-01-01");
        // Midnight in Vietnam is 17:00 UTC the day before.
        assert_eq!(
            start_in_vietnam("2025-03-01"),
            Some(20_148 * 86_400 - 7 * 3_600)
        );
        assert_eq!(start_in_vietnam("2025-02-29"), None);
        assert!(start_in_vietnam("2024-02-29").is_some());
        assert_eq!(start_in_vietnam("2025-13-01"), None);
        assert!(start_in_vietnam("2025-3-1").is_some());
        assert_eq!(start_in_vietnam("1 March"), None);
        // Years outside the ledger's range, however long, are refused
        // before any arithmetic.
        assert_eq!(start_in_vietnam("1999-12-31"), None);
        assert_eq!(start_in_vietnam("99999999999999999-01-01"), None);
    }

    fn numbers_and(rows: &[Row], column: &str) -> Vec<(usize, String)> {
        rows.iter()
            .map(|r| (r.number, r.cell(column).to_owned()))
            .collect()
    }

    #[test]
    fn csv_rows_are_numbered_as_a_spreadsheet_shows_them() {
        let header = DELIVERY_COLUMNS.map(|c| c.name).join(",");
        let csv = format!(
            "\u{FEFF}{header}\r\nd-1,2025-12-01\r\n\r\nd-2,2025-12-02,,,,,,,,,\"two\r\nlines\"\r\nd-3,2025-12-03\r\n"
        );
        let rows = read_rows(Lang::En, DELIVERIES, csv.as_bytes()).unwrap();
        assert_eq!(
            numbers_and(&rows, "delivery_id"),
            [(2, "d-1".into()), (4, "d-2".into()), (6, "d-3".into())]
        );
    }

    #[test]
    fn xlsx_rows_keep_their_numbers_and_dates_their_day() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        // The header on row 3, a data row on 5, a date typed as a date.
        for (c, column) in DELIVERY_COLUMNS.iter().enumerate() {
            sheet.write_string(2, c as u16, column.name).unwrap();
        }
        sheet.write_string(4, 0, "d-1").unwrap();
        let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2025, 12, 15).unwrap();
        let format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        sheet
            .write_datetime_with_format(4, 1, &date, &format)
            .unwrap();
        sheet.write_number(4, 5, 2_500_000.0).unwrap();
        let bytes = workbook.save_to_buffer().unwrap();
        let rows = read_rows(Lang::En, DELIVERIES, &bytes).unwrap();
        assert_eq!(numbers_and(&rows, "date"), [(5, "2025-12-15".into())]);
        assert_eq!(rows[0].cell("quantity"), "2500000");
    }

    #[test]
    fn a_sheet_beyond_the_limits_is_refused_before_it_is_read_whole() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "delivery_id").unwrap();
        // One far cell: a dense read would allocate the whole rectangle.
        sheet.write_string(1_000_000, 16_000, "far").unwrap();
        let bytes = workbook.save_to_buffer().unwrap();
        let Err(Unreadable(why)) = read_rows(Lang::En, DELIVERIES, &bytes) else {
            panic!("a sheet beyond the limits was read");
        };
        assert!(why.contains("too big"), "{why}");
    }

    #[test]
    fn a_row_always_has_the_same_event_id_and_another_row_another() {
        let id = row_event_id("fund", Kind::Delivery, "d-1");
        assert_eq!(id, row_event_id("fund", Kind::Delivery, "d-1"));
        assert_ne!(id, row_event_id("fund", Kind::Delivery, "d-2"));
        assert_ne!(id, row_event_id("other-fund", Kind::Delivery, "d-1"));
        assert_ne!(id, row_event_id("fund", Kind::Transfer, "d-1"));
        assert!(uuid::Uuid::parse_str(&id).is_ok());
    }
}
