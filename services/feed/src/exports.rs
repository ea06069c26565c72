//! Downloads: CSV exports, the Atom feed of new events, and the IATI 2.03
//! activity file. All are rendered from [`views`], under the same privacy
//! rules as the pages.

use std::sync::Arc;

use aidledger_ledger::Category;
use aidledger_ledger::calendar::{rfc3339_utc, vn_date_string};
use aidledger_projector::model::Model;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::views::{self, AmountView, OrgRef};
use crate::{Feed, Lang};

type AppState = Arc<Feed>;

/// Entries in the Atom feed.
pub const ATOM_ENTRIES: u64 = 50;

pub fn router(feed: Arc<Feed>) -> Router {
    Router::new()
        .route("/exports/receipts.csv", get(receipts_csv))
        .route("/exports/transfers.csv", get(transfers_csv))
        .route("/exports/deliveries.csv", get(deliveries_csv))
        .route("/exports/communes.csv", get(communes_csv))
        .route("/exports/iati-activities.xml", get(iati))
        .route("/feed.atom", get(atom))
        .with_state(feed)
}

fn failure(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "rendering an export");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the export failed: {error}"),
    )
        .into_response()
}

// -------------------------------------------------------------------- CSV

/// A CSV file: UTF-8 with a byte-order mark, which Excel needs to read
/// Vietnamese as UTF-8 rather than the system code page.
/// A cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`,
/// tab, CR at its start) is prefixed with `'`: names and units are agency
/// text, and these files are meant for Excel.
fn spreadsheet_safe(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn csv_response(name: &str, header_row: &[&str], rows: Vec<Vec<String>>) -> Response {
    let mut writer = csv::Writer::from_writer(Vec::from("\u{FEFF}".as_bytes()));
    let written = std::iter::once(header_row.iter().map(|s| (*s).to_owned()).collect())
        .chain(rows)
        .try_for_each(|row: Vec<String>| {
            writer.write_record(row.into_iter().map(spreadsheet_safe))
        });
    let body = match written
        .map_err(|e| e.to_string())
        .and_then(|()| writer.into_inner().map_err(|e| e.to_string()))
    {
        Ok(body) => body,
        Err(e) => return failure(e),
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The public name of an organisation for exports: empty and anonymous for
/// hidden donors.
fn org_cells(org: &OrgRef) -> [String; 3] {
    [
        org.org_id.clone(),
        org.name.clone().unwrap_or_default(),
        org.anonymous.to_string(),
    ]
}

fn category_slug(category: Option<Category>) -> String {
    category.map_or_else(String::new, |c| format!("{c:?}"))
}

fn amount_cells(a: &AmountView) -> [String; 4] {
    [
        a.asset_id.clone(),
        a.quantity.to_string(),
        a.unit.clone(),
        a.value_vnd.to_string(),
    ]
}

async fn receipts_csv(State(feed): State<AppState>) -> Response {
    let rows = views::receipts(&feed.model())
        .into_iter()
        .map(|r| {
            let mut row = vec![r.seq.to_string(), r.receipt_id, r.date];
            row.extend(org_cells(&r.donor));
            row.extend(org_cells(&r.recipient));
            row.push(r.pledge_id.unwrap_or_default());
            row.extend(amount_cells(&r.amount));
            row.push(r.earmark.commune_code.unwrap_or_default());
            row.push(category_slug(r.earmark.category));
            row.push(r.reversed.to_string());
            row
        })
        .collect();
    csv_response(
        "receipts.csv",
        &[
            "seq",
            "receipt_id",
            "date",
            "donor_org_id",
            "donor_name",
            "donor_anonymous",
            "recipient_org_id",
            "recipient_name",
            "recipient_anonymous",
            "pledge_id",
            "asset_id",
            "quantity",
            "unit",
            "value_vnd",
            "earmark_commune",
            "earmark_category",
            "reversed",
        ],
        rows,
    )
}

async fn transfers_csv(State(feed): State<AppState>) -> Response {
    let transfers = views::transfers(&feed.model(), false);
    let rows = transfers
        .into_iter()
        .map(|t| {
            let mut row = vec![t.seq.to_string(), t.transfer_id, t.date];
            row.extend(org_cells(&t.from));
            row.extend(org_cells(&t.to));
            row.extend(amount_cells(&t.amount));
            row.extend([
                t.received.to_string(),
                t.lost.to_string(),
                t.state.to_owned(),
            ]);
            row.push(t.earmark.commune_code.unwrap_or_default());
            row.push(category_slug(t.earmark.category));
            row
        })
        .collect();
    csv_response(
        "transfers.csv",
        &[
            "seq",
            "transfer_id",
            "date",
            "from_org_id",
            "from_name",
            "from_anonymous",
            "to_org_id",
            "to_name",
            "to_anonymous",
            "asset_id",
            "quantity",
            "unit",
            "value_vnd",
            "received",
            "lost",
            "state",
            "earmark_commune",
            "earmark_category",
        ],
        rows,
    )
}

async fn deliveries_csv(State(feed): State<AppState>) -> Response {
    let rows = views::deliveries(&feed.model())
        .into_iter()
        .map(|d| {
            let mut row = vec![d.seq.to_string(), d.delivery_id, d.date, d.period];
            row.extend(org_cells(&d.deliverer));
            row.push(d.commune.commune_code);
            row.push(d.commune.name.unwrap_or_default());
            row.push(category_slug(d.category));
            row.extend(amount_cells(&d.amount));
            row.push(d.children_reached.to_string());
            row.push(d.reversed.to_string());
            row
        })
        .collect();
    csv_response(
        "deliveries.csv",
        &[
            "seq",
            "delivery_id",
            "date",
            "period",
            "org_id",
            "org_name",
            "org_anonymous",
            "commune_code",
            "commune_name",
            "category",
            "asset_id",
            "quantity",
            "unit",
            "value_vnd",
            "children_reached",
            "reversed",
        ],
        rows,
    )
}

async fn communes_csv(State(feed): State<AppState>) -> Response {
    let communes = views::communes(&feed.model(), 0);
    let rows = communes
        .into_iter()
        .map(|c| {
            vec![
                c.commune_code,
                c.name,
                c.district,
                c.province,
                c.children_count.to_string(),
                c.needed_vnd.to_string(),
                c.delivered_vnd.to_string(),
                c.children_targeted.to_string(),
                c.children_reached.to_string(),
                c.deliveries.to_string(),
            ]
        })
        .collect();
    csv_response(
        "communes.csv",
        &[
            "commune_code",
            "name",
            "district",
            "province",
            "children_count",
            "needed_vnd",
            "delivered_vnd",
            "children_targeted",
            "children_reached",
            "deliveries",
        ],
        rows,
    )
}

// -------------------------------------------------------------------- XML

/// An XML document written through `quick_xml`'s writer, which escapes
/// every text and attribute value it is given: escaping cannot be
/// forgotten.
type Xml = quick_xml::Writer<Vec<u8>>;

fn xml_document(write: impl FnOnce(&mut Xml) -> std::io::Result<()>) -> anyhow::Result<String> {
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 1);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    write(&mut writer)?;
    let mut bytes = writer.into_inner();
    bytes.push(b'\n');
    Ok(String::from_utf8(bytes)?)
}

/// `<tag>text</tag>`.
fn text_element(w: &mut Xml, tag: &str, text: &str) -> std::io::Result<()> {
    w.create_element(tag)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// `<tag><narrative>text</narrative></tag>`, IATI's form of free text.
fn narrative(w: &mut Xml, tag: &str, text: &str) -> std::io::Result<()> {
    w.create_element(tag)
        .write_inner_content(|w| text_element(w, "narrative", text))?;
    Ok(())
}

fn xml_response(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        body,
    )
        .into_response()
}

// ------------------------------------------------------------------- Atom

async fn atom(State(feed): State<AppState>) -> Response {
    let feed2 = Arc::clone(&feed);
    match tokio::task::spawn_blocking(move || render_atom(&feed2)).await {
        Ok(Ok(body)) => xml_response("application/atom+xml; charset=utf-8", body),
        Ok(Err(e)) => failure(e),
        Err(e) => failure(e),
    }
}

/// The latest events the projection has applied, newest first.
fn render_atom(feed: &Feed) -> anyhow::Result<String> {
    let model = feed.model();
    let size = model.position.size;
    let first = size.saturating_sub(ATOM_ENTRIES);
    let count = usize::try_from(size - first)?;
    let entries = feed.store().entries(first, count)?;
    let origin = &model.position.origin;
    let updated = rfc3339_utc(model.position.recorded_at.seconds);
    // RFC 4151 tag ids: the origin's host, and the year of the genesis.
    let genesis_year = match feed.store().entries(0, 1)?.pop() {
        Some((_, bytes)) => {
            let recorded = aidledger_ledger::read_logged_event(&bytes)?.recorded_at;
            rfc3339_utc(recorded.seconds)[..4].to_owned()
        }
        None => "1970".to_owned(),
    };
    let (host, path) = origin.split_once('/').unwrap_or((origin, ""));
    let tag = format!("tag:{host},{genesis_year}:{path}");
    let events = views::log_events(&model, &entries)?;
    xml_document(|w| {
        w.create_element("feed")
            .with_attributes([("xmlns", "http://www.w3.org/2005/Atom"), ("xml:lang", "en")])
            .write_inner_content(|w| {
                text_element(w, "id", &tag)?;
                text_element(w, "title", &format!("aidledger: {origin}"))?;
                text_element(
                    w,
                    "subtitle",
                    "New events in the signed ledger of aid to children",
                )?;
                text_element(w, "updated", &updated)?;
                w.create_element("link")
                    .with_attributes([("rel", "self"), ("href", "/feed.atom")])
                    .write_empty()?;
                w.create_element("link")
                    .with_attributes([("rel", "alternate"), ("type", "text/html"), ("href", "/en")])
                    .write_empty()?;
                w.create_element("author")
                    .write_inner_content(|w| text_element(w, "name", origin))?;
                for logged in events.into_iter().rev() {
                    let seq = logged.seq;
                    w.create_element("entry").write_inner_content(|w| {
                        text_element(w, "id", &format!("{tag}/{seq}"))?;
                        text_element(w, "title", &format!("#{seq} {}", logged.title))?;
                        text_element(w, "updated", &rfc3339_utc(logged.recorded_at_seconds))?;
                        w.create_element("link")
                            .with_attribute(("href", logged.link.as_str()))
                            .write_empty()?;
                        text_element(w, "summary", &logged.summary)
                    })?;
                }
                Ok(())
            })?;
        Ok(())
    })
}

// ------------------------------------------------------------------- IATI

/// The OECD DAC 5-digit sector of a category.
///
/// Clothing has no education or health code; it is basic social
/// protection (16010). Other is "sectors not specified" (99810).
pub fn dac_sector(category: Category) -> u32 {
    match category {
        Category::Health => 12220,
        Category::Nutrition => 11250,
        Category::CultureRecreation => 11240,
        Category::Scholarship | Category::BooksSupplies => 11220,
        Category::Clothing => 16010,
        Category::Other => 99810,
    }
}

async fn iati(State(feed): State<AppState>) -> Response {
    let feed2 = Arc::clone(&feed);
    let rendered = tokio::task::spawn_blocking(move || {
        // The store reads happen outside the model's lock, which the
        // projector needs to write.
        let seqs: Vec<u64> = feed2
            .model()
            .pledges
            .values_any_order()
            .map(|p| p.seq)
            .collect();
        let pledge_dates = recorded_dates(feed2.store(), seqs.into_iter())?;
        render_iati(&feed2.model(), &pledge_dates)
    })
    .await;
    match rendered {
        Ok(Ok(body)) => xml_response("application/xml; charset=utf-8", body),
        Ok(Err(e)) => failure(e),
        Err(e) => failure(e),
    }
}

/// The Vietnamese date on which each of `seqs` was recorded.
fn recorded_dates(
    store: &dyn aidledger_store::LogStore,
    seqs: impl Iterator<Item = u64>,
) -> anyhow::Result<std::collections::HashMap<u64, String>> {
    let mut dates = std::collections::HashMap::new();
    for seq in seqs {
        let (_, bytes) = store
            .entries(seq, 1)?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("entry {seq} is missing from the store"))?;
        let entry = aidledger_ledger::read_logged_event(&bytes)?;
        dates.insert(seq, vn_date_string(entry.recorded_at.seconds));
    }
    Ok(dates)
}

/// The programme as one IATI 2.03 activity: pledges (13), receipts (1),
/// transfers (3) and deliveries (4) as transactions in đồng, sectors
/// weighted by what was delivered in each category.
/// `pledge_dates` holds the date each pledge was recorded, by seq (the
/// model keeps no time for pledges).
pub fn render_iati(
    model: &Model,
    pledge_dates: &std::collections::HashMap<u64, String>,
) -> anyhow::Result<String> {
    let authority = model
        .orgs
        .sorted()
        .into_iter()
        .find(|(_, o)| o.kind == aidledger_ledger::OrgKind::Authority);
    let (authority_id, authority_name) = authority
        .map(|(id, o)| (id.clone(), o.name.clone()))
        .unwrap_or_default();
    // No IATI organisation identifier is registered for the authority: use
    // the IATI "XI-" private prefix with the ledger's own id.
    let reporting_ref = format!("XI-AIDLEDGER-{authority_id}");
    let identifier = format!(
        "{reporting_ref}-{}",
        model.position.origin.replace('/', "-")
    );
    let generated = rfc3339_utc(model.position.recorded_at.seconds);
    let receipts = views::receipts(model);
    let pledges = views::pledges(model);
    let transfers = views::transfers(model, false);
    let deliveries = views::deliveries(model);
    let start = receipts.first().map_or_else(
        || vn_date_string(model.position.recorded_at.seconds),
        |r| r.date.clone(),
    );

    let origin = &model.position.origin;
    let party_name = |org: &OrgRef| -> String {
        match (&org.name, org.anonymous) {
            (Some(name), _) => name.clone(),
            (None, true) => Lang::Vi.anonymous().to_owned(),
            (None, false) => org.org_id.clone(),
        }
    };
    // One IATI transaction: its type code, reference, date, value in đồng,
    // description, provider and receiver names.
    struct Transaction {
        kind: u8,
        reference: String,
        date: String,
        value_vnd: u64,
        description: String,
        provider: String,
        receiver: String,
    }
    let mut transactions = Vec::new();
    for p in &pledges {
        if p.status == "cancelled" {
            continue;
        }
        // A pledge applied after the dates were read waits for the next
        // export.
        let Some(date) = pledge_dates.get(&p.seq) else {
            continue;
        };
        transactions.push(Transaction {
            kind: 13,
            reference: p.pledge_id.clone(),
            date: date.clone(),
            value_vnd: p.amount.value_vnd,
            description: format!("Cam kết {}", p.pledge_id),
            provider: party_name(&p.donor),
            receiver: party_name(&p.recipient),
        });
    }
    for r in receipts.iter().filter(|r| !r.reversed) {
        transactions.push(Transaction {
            kind: 1,
            reference: r.receipt_id.clone(),
            date: r.date.clone(),
            value_vnd: r.amount.value_vnd,
            description: format!("Biên nhận {}", r.receipt_id),
            provider: party_name(&r.donor),
            receiver: party_name(&r.recipient),
        });
    }
    for t in transfers.iter().filter(|t| t.state != "reversed") {
        transactions.push(Transaction {
            kind: 3,
            reference: t.transfer_id.clone(),
            date: t.date.clone(),
            value_vnd: t.amount.value_vnd,
            description: format!("Chuyển {}", t.transfer_id),
            provider: party_name(&t.from),
            receiver: party_name(&t.to),
        });
    }
    for d in deliveries.iter().filter(|d| !d.reversed) {
        let commune = d
            .commune
            .name
            .clone()
            .unwrap_or_else(|| d.commune.commune_code.clone());
        transactions.push(Transaction {
            kind: 4,
            reference: d.delivery_id.clone(),
            date: d.date.clone(),
            value_vnd: d.amount.value_vnd,
            description: format!("Trao tại xã {commune}, {} lượt trẻ em", d.children_reached),
            provider: party_name(&d.deliverer),
            receiver: format!("UBND xã {commune}"),
        });
    }
    let agencies: Vec<(String, String)> = model
        .orgs
        .sorted()
        .into_iter()
        .filter(|(_, org)| org.kind == aidledger_ledger::OrgKind::Agency)
        .map(|(id, org)| (id.clone(), org.name.clone()))
        .collect();

    xml_document(|w| {
        w.create_element("iati-activities")
            .with_attributes([("version", "2.03"), ("generated-datetime", generated.as_str())])
            .write_inner_content(|w| {
                w.create_element("iati-activity")
                    .with_attributes([
                        ("last-updated-datetime", generated.as_str()),
                        ("xml:lang", "vi"),
                        ("default-currency", "VND"),
                    ])
                    .write_inner_content(|w| {
                        text_element(w, "iati-identifier", &identifier)?;
                        w.create_element("reporting-org")
                            .with_attributes([("ref", reporting_ref.as_str()), ("type", "10")])
                            .write_inner_content(|w| text_element(w, "narrative", &authority_name))?;
                        w.create_element("title").write_inner_content(|w| {
                            text_element(w, "narrative", "Huy động nguồn lực vì trẻ em vùng khó khăn")?;
                            w.create_element("narrative")
                                .with_attribute(("xml:lang", "en"))
                                .write_text_content(BytesText::new(
                                    "Mobilising aid for children in the poorest communes",
                                ))?;
                            Ok(())
                        })?;
                        w.create_element("description")
                            .with_attribute(("type", "1"))
                            .write_inner_content(|w| {
                                text_element(
                                    w,
                                    "narrative",
                                    &format!(
                                        "Tiền và hàng cho trẻ em ở các xã đặc biệt khó khăn: khám chữa bệnh, bữa ăn học đường, văn hoá vui chơi, học bổng, sách vở, quần áo. Ghi trong sổ cái có chữ ký {origin}."
                                    ),
                                )?;
                                w.create_element("narrative")
                                    .with_attribute(("xml:lang", "en"))
                                    .write_text_content(BytesText::new(&format!(
                                        "Money and goods for children in the poorest communes: health care, school meals, culture and play, scholarships, books and clothes. Recorded in the signed ledger {origin}."
                                    )))?;
                                Ok(())
                            })?;
                        w.create_element("participating-org")
                            .with_attributes([
                                ("ref", reporting_ref.as_str()),
                                ("role", "2"),
                                ("type", "10"),
                            ])
                            .write_inner_content(|w| text_element(w, "narrative", &authority_name))?;
                        for (id, name) in &agencies {
                            w.create_element("participating-org")
                                .with_attributes([
                                    ("role", "4"),
                                    ("type", "10"),
                                    ("ref", format!("XI-AIDLEDGER-{id}").as_str()),
                                ])
                                .write_inner_content(|w| text_element(w, "narrative", name))?;
                        }
                        w.create_element("activity-status")
                            .with_attribute(("code", "2"))
                            .write_empty()?;
                        w.create_element("activity-date")
                            .with_attributes([("type", "2"), ("iso-date", start.as_str())])
                            .write_empty()?;
                        w.create_element("recipient-country")
                            .with_attribute(("code", "VN"))
                            .write_empty()?;
                        for (code, percentage) in sector_shares(&deliveries) {
                            w.create_element("sector")
                                .with_attributes([
                                    ("vocabulary", "1"),
                                    ("code", code.to_string().as_str()),
                                    ("percentage", percentage.to_string().as_str()),
                                ])
                                .write_empty()?;
                        }
                        for t in &transactions {
                            w.create_element("transaction")
                                .with_attribute(("ref", t.reference.as_str()))
                                .write_inner_content(|w| {
                                    w.create_element("transaction-type")
                                        .with_attribute(("code", t.kind.to_string().as_str()))
                                        .write_empty()?;
                                    w.create_element("transaction-date")
                                        .with_attribute(("iso-date", t.date.as_str()))
                                        .write_empty()?;
                                    w.create_element("value")
                                        .with_attributes([
                                            ("currency", "VND"),
                                            ("value-date", t.date.as_str()),
                                        ])
                                        .write_text_content(BytesText::new(
                                            &t.value_vnd.to_string(),
                                        ))?;
                                    narrative(w, "description", &t.description)?;
                                    narrative(w, "provider-org", &t.provider)?;
                                    narrative(w, "receiver-org", &t.receiver)
                                })?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    })
}

/// DAC sectors and their percentages of delivered value, summing to 100
/// (the remainder of rounding goes to the largest).
fn sector_shares(deliveries: &[views::DeliveryRow]) -> Vec<(u32, u64)> {
    use std::collections::BTreeMap;
    let mut by_sector: BTreeMap<u32, u128> = BTreeMap::new();
    for d in deliveries.iter().filter(|d| !d.reversed) {
        if let Some(category) = d.category {
            *by_sector.entry(dac_sector(category)).or_default() += u128::from(d.amount.value_vnd);
        }
    }
    let total: u128 = by_sector.values().sum();
    if total == 0 {
        return Vec::new();
    }
    let mut shares: Vec<(u32, u64)> = by_sector
        .iter()
        .map(|(code, v)| (*code, u64::try_from(v * 100 / total).unwrap_or(100)))
        .collect();
    let sum: u64 = shares.iter().map(|(_, p)| p).sum();
    if let Some(largest) = shares.iter_mut().max_by_key(|(_, p)| *p) {
        largest.1 += 100 - sum;
    }
    shares.retain(|(_, p)| *p > 0);
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xml_writer_escapes_text_and_attributes() {
        let document = xml_document(|w| {
            w.create_element("a")
                .with_attribute(("href", r#"x"<&"#))
                .write_text_content(BytesText::new("<b>&</b>"))?;
            Ok(())
        })
        .unwrap();
        assert!(
            document.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#),
            "{document}"
        );
        assert!(
            document.contains(r#"href="x&quot;&lt;&amp;""#),
            "{document}"
        );
        assert!(document.contains("&lt;b&gt;&amp;&lt;/b&gt;"), "{document}");
    }

    #[test]
    fn cells_a_spreadsheet_would_run_are_quoted() {
        assert_eq!(
            spreadsheet_safe("=HYPERLINK(\"x\")".into()),
            "'=HYPERLINK(\"x\")"
        );
        assert_eq!(spreadsheet_safe("@SUM(A1)".into()), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("-1+2".into()), "'-1+2");
        assert_eq!(spreadsheet_safe("Xã Phước Hòa".into()), "Xã Phước Hòa");
        assert_eq!(spreadsheet_safe("12345".into()), "12345");
    }
}
