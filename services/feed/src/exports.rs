//! Downloads: CSV exports, the Atom feed of new events, and the IATI 2.03
//! activity file. All are rendered from [`views`], under the same privacy
//! rules as the pages.

use std::fmt::Write as _;
use std::sync::Arc;

use aidledger_ledger::Category;
use aidledger_ledger::calendar::{rfc3339_utc, vn_date_string};
use aidledger_projector::model::Model;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

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
    let rows = views::receipts(&feed.model(), None)
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

/// Text escaped for XML content and attribute values.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
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
    let tag = format!("tag:{},{genesis_year}:{}", xml(host), xml(path));
    let mut out = String::new();
    writeln!(out, r#"<?xml version="1.0" encoding="utf-8"?>"#)?;
    writeln!(
        out,
        r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">"#
    )?;
    writeln!(out, "  <id>{tag}</id>")?;
    writeln!(out, "  <title>aidledger: {}</title>", xml(origin))?;
    writeln!(
        out,
        "  <subtitle>New events in the signed ledger of aid to children</subtitle>"
    )?;
    writeln!(out, "  <updated>{updated}</updated>")?;
    writeln!(out, r#"  <link rel="self" href="/feed.atom"/>"#)?;
    writeln!(
        out,
        r#"  <link rel="alternate" type="text/html" href="/en"/>"#
    )?;
    writeln!(out, "  <author><name>{}</name></author>", xml(origin))?;
    for logged in views::log_events(&model, &entries)?.into_iter().rev() {
        let seq = logged.seq;
        let (title, summary, link) = (logged.title, logged.summary, logged.link);
        let recorded = logged.recorded_at_seconds;
        writeln!(out, "  <entry>")?;
        writeln!(out, "    <id>{tag}/{seq}</id>")?;
        writeln!(out, "    <title>#{seq} {}</title>", xml(&title))?;
        writeln!(out, "    <updated>{}</updated>", rfc3339_utc(recorded))?;
        writeln!(out, r#"    <link href="{}"/>"#, xml(&link))?;
        writeln!(out, "    <summary>{}</summary>", xml(&summary))?;
        writeln!(out, "  </entry>")?;
    }
    writeln!(out, "</feed>")?;
    Ok(out)
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
    let receipts = views::receipts(model, None);
    let pledges = views::pledges(model, None);
    let transfers = views::transfers(model, false);
    let deliveries = views::deliveries(model);
    let start = receipts.first().map_or_else(
        || vn_date_string(model.position.recorded_at.seconds),
        |r| r.date.clone(),
    );

    let mut out = String::new();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<iati-activities version="2.03" generated-datetime="{generated}">"#
    )?;
    writeln!(
        out,
        r#" <iati-activity last-updated-datetime="{generated}" xml:lang="vi" default-currency="VND">"#
    )?;
    writeln!(
        out,
        "  <iati-identifier>{}</iati-identifier>",
        xml(&identifier)
    )?;
    writeln!(
        out,
        r#"  <reporting-org ref="{}" type="10">"#,
        xml(&reporting_ref)
    )?;
    writeln!(out, "   <narrative>{}</narrative>", xml(&authority_name))?;
    writeln!(out, "  </reporting-org>")?;
    writeln!(out, "  <title>")?;
    writeln!(
        out,
        "   <narrative>Huy động nguồn lực vì trẻ em vùng khó khăn</narrative>"
    )?;
    writeln!(
        out,
        r#"   <narrative xml:lang="en">Mobilising aid for children in the poorest communes</narrative>"#
    )?;
    writeln!(out, "  </title>")?;
    writeln!(out, r#"  <description type="1">"#)?;
    writeln!(
        out,
        "   <narrative>Tiền và hàng cho trẻ em ở các xã đặc biệt khó khăn: khám chữa bệnh, bữa ăn học đường, văn hoá vui chơi, học bổng, sách vở, quần áo. Ghi trong sổ cái có chữ ký {}.</narrative>",
        xml(&model.position.origin)
    )?;
    writeln!(
        out,
        r#"   <narrative xml:lang="en">Money and goods for children in the poorest communes: health care, school meals, culture and play, scholarships, books and clothes. Recorded in the signed ledger {}.</narrative>"#,
        xml(&model.position.origin)
    )?;
    writeln!(out, "  </description>")?;
    writeln!(
        out,
        r#"  <participating-org ref="{}" role="2" type="10">"#,
        xml(&reporting_ref)
    )?;
    writeln!(out, "   <narrative>{}</narrative>", xml(&authority_name))?;
    writeln!(out, "  </participating-org>")?;
    for (id, org) in model.orgs.sorted() {
        if org.kind == aidledger_ledger::OrgKind::Agency {
            writeln!(
                out,
                r#"  <participating-org role="4" type="10" ref="XI-AIDLEDGER-{}">"#,
                xml(id)
            )?;
            writeln!(out, "   <narrative>{}</narrative>", xml(&org.name))?;
            writeln!(out, "  </participating-org>")?;
        }
    }
    writeln!(out, r#"  <activity-status code="2"/>"#)?;
    writeln!(out, r#"  <activity-date type="2" iso-date="{start}"/>"#)?;
    writeln!(out, r#"  <recipient-country code="VN"/>"#)?;
    for (code, percentage) in sector_shares(&deliveries) {
        writeln!(
            out,
            r#"  <sector vocabulary="1" code="{code}" percentage="{percentage}"/>"#
        )?;
    }
    let party = |tag: &str, org: &OrgRef| -> String {
        let name = match (&org.name, org.anonymous) {
            (Some(name), _) => name.clone(),
            (None, true) => Lang::Vi.anonymous().to_owned(),
            (None, false) => org.org_id.clone(),
        };
        format!("   <{tag}><narrative>{}</narrative></{tag}>\n", xml(&name))
    };
    let mut transaction = |kind: u8,
                           reference: &str,
                           date: &str,
                           value_vnd: u64,
                           description: String,
                           provider: &OrgRef,
                           receiver: String|
     -> std::fmt::Result {
        writeln!(out, r#"  <transaction ref="{}">"#, xml(reference))?;
        writeln!(out, r#"   <transaction-type code="{kind}"/>"#)?;
        writeln!(out, r#"   <transaction-date iso-date="{date}"/>"#)?;
        writeln!(
            out,
            r#"   <value currency="VND" value-date="{date}">{value_vnd}</value>"#
        )?;
        writeln!(
            out,
            "   <description><narrative>{}</narrative></description>",
            xml(&description)
        )?;
        out.push_str(&party("provider-org", provider));
        out.push_str(&receiver);
        writeln!(out, "  </transaction>")
    };
    for p in &pledges {
        if p.status == "cancelled" {
            continue;
        }
        // A pledge applied after the dates were read waits for the next
        // export.
        let Some(date) = pledge_dates.get(&p.seq) else {
            continue;
        };
        transaction(
            13,
            &p.pledge_id,
            date,
            p.amount.value_vnd,
            format!("Cam kết {}", p.pledge_id),
            &p.donor,
            party("receiver-org", &p.recipient),
        )?;
    }
    for r in receipts.iter().filter(|r| !r.reversed) {
        transaction(
            1,
            &r.receipt_id,
            &r.date,
            r.amount.value_vnd,
            format!("Biên nhận {}", r.receipt_id),
            &r.donor,
            party("receiver-org", &r.recipient),
        )?;
    }
    for t in transfers.iter().filter(|t| t.state != "reversed") {
        transaction(
            3,
            &t.transfer_id,
            &t.date,
            t.amount.value_vnd,
            format!("Chuyển {}", t.transfer_id),
            &t.from,
            party("receiver-org", &t.to),
        )?;
    }
    for d in deliveries.iter().filter(|d| !d.reversed) {
        let commune = d
            .commune
            .name
            .clone()
            .unwrap_or_else(|| d.commune.commune_code.clone());
        transaction(
            4,
            &d.delivery_id,
            &d.date,
            d.amount.value_vnd,
            format!("Trao tại xã {commune}, {} lượt trẻ em", d.children_reached),
            &d.deliverer,
            format!(
                "   <receiver-org><narrative>UBND xã {}</narrative></receiver-org>\n",
                xml(&commune)
            ),
        )?;
    }
    writeln!(out, " </iati-activity>")?;
    writeln!(out, "</iati-activities>")?;
    Ok(out)
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
    fn xml_escapes_markup_and_quotes() {
        assert_eq!(
            xml(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
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
