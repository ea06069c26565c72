//! The web pages: server-rendered HTML in Vietnamese (at `/`) and English
//! (at `/en`), readable on a phone, usable without JavaScript. The one
//! script (`/static/verify.js`) verifies a receipt's proof in the browser.
//! A bank reference is looked up by a form POST (SPEC §9.3): it travels in
//! the request body only, never in a URL.

use std::sync::Arc;

use aidledger_ledger::Category;
use aidledger_projector::read::QueryError;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::views::{self, AmountView, CommuneRef, OrgRef};
use crate::{EXCESS_PERCENT, Feed, Lang};

const STYLE: &str = include_str!("../static/style.css");
const VERIFY_JS: &str = include_str!("../static/verify.js");

type AppState = Arc<Feed>;

/// The pages in both languages, and their static files.
pub fn router(feed: Arc<Feed>) -> Router {
    fn pages() -> Router<AppState> {
        Router::new()
            .route("/", get(overview))
            .route("/communes", get(communes))
            .route("/communes/{code}", get(commune))
            .route("/donors", get(donors))
            .route("/donors/{org_id}", get(donor))
            .route("/pledges", get(pledges))
            .route("/balances", get(balances))
            .route("/overlaps", get(overlaps))
            .route("/overlaps/{finding}", get(overlap_finding))
            .route("/commendations", get(commendations))
            .route("/log", get(log))
            .route(
                "/verify",
                get(verify)
                    .post(verify_reference)
                    .layer(DefaultBodyLimit::max(crate::api::LOOKUP_BODY_BYTES_MAX)),
            )
            .route("/receipts/{receipt_id}", get(receipt))
    }
    Router::new()
        .merge(pages().layer(Extension(Lang::Vi)))
        .nest("/en", pages().layer(Extension(Lang::En)))
        .route(
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/static/verify.js",
            get(|| async { asset("text/javascript; charset=utf-8", VERIFY_JS) }),
        )
        .with_state(feed)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A page, or a page saying why there is none.
type PageResult = Result<Markup, Response>;

fn error_page(lang: Lang, status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => lang.t("Không tìm thấy", "Not found"),
        StatusCode::BAD_REQUEST => lang.t("Yêu cầu không hợp lệ", "Bad request"),
        _ => lang.t("Lỗi", "Error"),
    };
    let body = layout(
        lang,
        "/",
        title,
        html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            p { a href=(lang.href("/")) { (lang.t("Về trang tổng quan", "Back to the overview")) } }
        },
    );
    (status, body).into_response()
}

fn query_error(lang: Lang, error: QueryError) -> Response {
    match error {
        QueryError::NotFound(m) => error_page(lang, StatusCode::NOT_FOUND, &m),
        QueryError::InvalidArgument(m) => error_page(lang, StatusCode::BAD_REQUEST, &m),
    }
}

/// The frame of every page. `here` is the page's path without the language
/// prefix, for the language switch.
fn layout(lang: Lang, here: &str, title: &str, main: Markup) -> Markup {
    let nav = [
        ("/", lang.t("Tổng quan", "Overview")),
        ("/communes", lang.t("Các xã", "Communes")),
        ("/donors", lang.t("Nhà tài trợ", "Donors")),
        ("/pledges", lang.t("Cam kết", "Pledges")),
        ("/balances", lang.t("Số dư", "Balances")),
        ("/overlaps", lang.t("Trùng lặp", "Overlaps")),
        ("/commendations", lang.t("Khen thưởng", "Commendations")),
        ("/log", lang.t("Sổ cái", "The log")),
        (
            "/verify",
            lang.t("Kiểm chứng khoản góp", "Verify my donation"),
        ),
    ];
    let other = lang.other();
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · aidledger" }
                link rel="stylesheet" href="/static/style.css";
                // No favicon request.
                link rel="icon" href="data:,";
                link rel="alternate" type="application/atom+xml"
                    title=(lang.t("Sự kiện mới", "New events")) href="/feed.atom";
                link rel="alternate" hreflang=(other.tag()) href=(other.href(here));
            }
            body {
                a.skip href="#main" { (lang.t("Bỏ qua, đến nội dung", "Skip to content")) }
                header {
                    p.brand {
                        a href=(lang.href("/")) {
                            (lang.t("Minh bạch nguồn lực vì trẻ em", "Aid for children, in the open"))
                        }
                    }
                    nav aria-label=(lang.t("Trang", "Pages")) {
                        ul {
                            @for (path, label) in nav {
                                li {
                                    a href=(lang.href(path))
                                        aria-current=[(path == here).then_some("page")] { (label) }
                                }
                            }
                        }
                    }
                    p.lang-switch {
                        a href=(other.href(here)) hreflang=(other.tag()) lang=(other.tag()) {
                            (other.t("Tiếng Việt", "English"))
                        }
                    }
                }
                main #main { (main) }
                footer {
                    p {
                        (lang.t("Dữ liệu mở", "Open data")) ": "
                        a href="/api/v1/openapi.json" { "API (OpenAPI)" } " · "
                        a href="/exports/receipts.csv" { "CSV" } " · "
                        a href="/feed.atom" { "Atom" } " · "
                        a href="/exports/iati-activities.xml" { "IATI 2.03" } " · "
                        a href="/checkpoint" { "checkpoint" }
                    }
                    p {
                        (lang.t(
                            "Thông tin cá nhân của trẻ em không bao giờ được ghi vào sổ cái.",
                            "Children's personal data never enters the ledger."
                        ))
                    }
                }
            }
        }
    }
}

fn as_of_line(lang: Lang, as_of: &views::AsOf) -> Markup {
    html! {
        p.as-of {
            (lang.t("Số liệu tính đến sự kiện thứ", "Figures as of event"))
            " " (lang.int(as_of.size)) " (" (as_of.date) ")"
            @if let Some(size) = as_of.checkpoint_size {
                ", " (lang.t("đã đối chiếu với điểm kiểm tra có chữ ký, kích thước", "checked against the signed checkpoint of size"))
                " " a href=(lang.href("/log")) { (lang.int(size)) }
            }
            "."
        }
    }
}

fn org(lang: Lang, org: &OrgRef) -> Markup {
    let is_donor = org.kind.is_some_and(aidledger_ledger::OrgKind::is_donor);
    html! {
        @match (&org.name, is_donor) {
            (None, _) if org.anonymous => span.anonymous { (lang.anonymous()) },
            (Some(name), true) => a href=(lang.href(&format!("/donors/{}", org.org_id))) { (name) },
            (Some(name), false) => span { (name) },
            (None, _) => span { (org.org_id) },
        }
    }
}

fn anonymous_donor_link(lang: Lang, donor: &OrgRef) -> Markup {
    // Anonymous donors keep a page (their gifts are public, their name is
    // not), linked by their opaque id.
    html! {
        @if donor.anonymous {
            a.anonymous href=(lang.href(&format!("/donors/{}", donor.org_id))) { (lang.anonymous()) }
        } @else {
            (org(lang, donor))
        }
    }
}

fn commune_link(lang: Lang, commune: &CommuneRef) -> Markup {
    html! {
        a href=(lang.href(&format!("/communes/{}", commune.commune_code))) {
            (commune.name.as_deref().unwrap_or(&commune.commune_code))
        }
    }
}

fn category_name(lang: Lang, category: Option<Category>) -> &'static str {
    category.map_or(
        lang.t("Chung (không chỉ định)", "General (not earmarked)"),
        |c| lang.category(c),
    )
}

fn amount(lang: Lang, a: &AmountView) -> Markup {
    html! {
        @if a.asset_id == "VND" {
            (lang.vnd(a.quantity))
        } @else {
            (lang.int(a.quantity)) " " (a.unit) " " (a.asset_name)
            " (" (lang.vnd(a.value_vnd)) ")"
        }
    }
}

/// A horizontal bar chart as inline SVG, with its numbers in a table next
/// to it for screen readers and for copying.
fn bar_chart(label: &str, series: &[(&str, &str)], rows: &[(String, Vec<u64>)]) -> Markup {
    const ROW: u64 = 16;
    const LABEL: u64 = 0;
    let max = rows
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let bars_per_row = series.len() as u64;
    let group = ROW * bars_per_row + 18;
    let height = group * rows.len() as u64 + 4;
    html! {
        svg.chart role="img" aria-label=(label) viewBox=(format!("0 0 400 {height}"))
            preserveAspectRatio="xMinYMin meet" {
            title { (label) }
            @for (i, (name, values)) in rows.iter().enumerate() {
                @let top = i as u64 * group;
                text x="0" y=(top + 12) class="chart-label" { (name) }
                @for (j, value) in values.iter().enumerate() {
                    // u128: values are saturated u64 sums of đồng.
                    @let width = (u128::from(*value) * 380 / u128::from(max)).max(1);
                    rect x=(LABEL) y=(top + 16 + j as u64 * ROW) width=(width) height=(ROW - 3)
                        class=(series[j].1) {}
                }
            }
        }
        p.legend aria-hidden="true" {
            @for (name, class) in series {
                span class=(format!("swatch {class}")) {} " " (name) " "
            }
        }
    }
}

/// A table that scrolls sideways on its own on a narrow screen (focusable,
/// so it can be scrolled from the keyboard), with one header row.
fn data_table(headers: &[&str], rows: Markup) -> Markup {
    html! {
        div.table-scroll tabindex="0" {
            table {
                thead { tr { @for header in headers { th scope="col" { (header) } } } }
                tbody { (rows) }
            }
        }
    }
}

// ------------------------------------------------------------------ pages

async fn overview(State(feed): State<AppState>, Extension(lang): Extension<Lang>) -> Markup {
    let overview = feed.overview();
    let t = &overview.totals;
    let years = overview.years();
    let per_year: Vec<(String, Vec<u64>)> = years
        .iter()
        .map(|year| {
            let cells = overview
                .by_year_and_category
                .iter()
                .filter(|c| c.year == *year);
            let (raised, delivered) = cells.fold((0u64, 0u64), |(r, d), c| {
                (
                    r.saturating_add(c.raised_vnd),
                    d.saturating_add(c.delivered_vnd),
                )
            });
            (year.to_string(), vec![raised, delivered])
        })
        .collect();
    let per_category: Vec<(String, Vec<u64>)> = Category::ALL
        .iter()
        .map(|category| {
            let cells = overview
                .by_year_and_category
                .iter()
                .filter(|c| c.category == Some(*category));
            let (raised, delivered) = cells.fold((0u64, 0u64), |(r, d), c| {
                (
                    r.saturating_add(c.raised_vnd),
                    d.saturating_add(c.delivered_vnd),
                )
            });
            (lang.category(*category).to_owned(), vec![raised, delivered])
        })
        .filter(|(_, v)| v.iter().any(|x| *x > 0))
        .collect();
    let series = [
        (lang.t("Đã tiếp nhận", "Raised"), "raised"),
        (lang.t("Đã trao", "Delivered"), "delivered"),
    ];
    layout(
        lang,
        "/",
        lang.t("Tổng quan", "Overview"),
        html! {
            h1 { (lang.t("Nguồn lực vì trẻ em vùng khó khăn", "Aid for children in the poorest communes")) }
            p.lead {
                (lang.t(
                    "Mọi khoản tiền và hàng được tiếp nhận, chuyển và trao đều được ghi vào một sổ cái có chữ ký, ai cũng kiểm chứng được.",
                    "Every gift of money or goods received, transferred and delivered is recorded in a signed ledger that anyone can verify."
                ))
            }
            (as_of_line(lang, &overview.as_of))
            dl.totals {
                div { dt { (lang.t("Đã tiếp nhận", "Raised")) } dd { (lang.vnd(t.received_vnd)) } }
                div { dt { (lang.t("Đã trao tận nơi", "Delivered")) } dd { (lang.vnd(t.delivered_vnd)) } }
                div { dt { (lang.t("Đang chuyển", "In transit")) } dd { (lang.vnd(t.in_transit_vnd)) } }
                div { dt { (lang.t("Đang giữ", "Held by agencies")) } dd { (lang.vnd(t.held_vnd)) } }
                div { dt { (lang.t("Hao hụt", "Lost in transit")) } dd { (lang.vnd(t.lost_vnd)) } }
                div { dt { (lang.t("Lượt trẻ em được hỗ trợ", "Children reached")) } dd { (lang.int(t.children_reached)) } }
                div { dt { (lang.t("Số xã", "Communes")) } dd { (lang.int(t.communes)) } }
                div { dt { (lang.t("Nhà tài trợ", "Donors")) } dd { (lang.int(t.donors)) } }
            }
            section {
                h2 { (lang.t("Theo năm", "By year")) }
                (bar_chart(lang.t("Tiếp nhận và trao theo năm, đồng", "Raised and delivered by year, in đồng"), &series, &per_year))
                (data_table(
                    &[lang.t("Năm", "Year"), lang.t("Đã tiếp nhận", "Raised"), lang.t("Đã trao", "Delivered")],
                    html! {
                        @for (year, values) in &per_year {
                            tr { th scope="row" { (year) } td.num { (lang.vnd(values[0])) } td.num { (lang.vnd(values[1])) } }
                        }
                    },
                ))
            }
            section {
                h2 { (lang.t("Theo lĩnh vực", "By category")) }
                p.note { (lang.t(
                    "Tiền tiếp nhận được tính theo lĩnh vực khi nhà tài trợ chỉ định; phần còn lại là quỹ chung.",
                    "Money raised counts toward a category when the donor earmarked it; the rest is general funds."
                )) }
                (bar_chart(lang.t("Tiếp nhận và trao theo lĩnh vực, đồng", "Raised and delivered by category, in đồng"), &series, &per_category))
                (data_table(
                    &[lang.t("Năm", "Year"), lang.t("Lĩnh vực", "Category"), lang.t("Đã tiếp nhận", "Raised"), lang.t("Đã trao", "Delivered"), lang.t("Lượt trẻ em", "Children reached")],
                    html! {
                        @for cell in &overview.by_year_and_category {
                            tr {
                                td { (cell.year) }
                                td { (category_name(lang, cell.category)) }
                                td.num { (lang.vnd(cell.raised_vnd)) }
                                td.num { (lang.vnd(cell.delivered_vnd)) }
                                td.num { (lang.int(cell.children_reached)) }
                            }
                        }
                    },
                ))
            }
        },
    )
}

#[derive(Debug, Deserialize)]
struct YearQuery {
    #[serde(default)]
    year: u32,
}

async fn communes(
    State(feed): State<AppState>,
    Extension(lang): Extension<Lang>,
    Query(query): Query<YearQuery>,
) -> PageResult {
    let (rows, as_of) = {
        let model = feed.model();
        let rows = views::communes(&model, query.year);
        (rows, views::AsOf::of(&model))
    };
    Ok(layout(
        lang,
        "/communes",
        lang.t("Các xã", "Communes"),
        html! {
            h1 { (lang.t("Các xã", "Communes")) }
            (as_of_line(lang, &as_of))
            p { a href="/exports/communes.csv" download { (lang.t("Tải về CSV", "Download CSV")) } }
            (data_table(
                &[lang.t("Xã", "Commune"), lang.t("Huyện", "District"), lang.t("Số trẻ em", "Children"), lang.t("Nhu cầu", "Needed"), lang.t("Đã trao", "Delivered"), lang.t("Lượt trẻ em được hỗ trợ", "Children reached")],
                html! {
                    @for c in &rows {
                        tr {
                            th scope="row" {
                                a href=(lang.href(&format!("/communes/{}", c.commune_code))) { (c.name) }
                            }
                            td { (c.district) }
                            td.num { (lang.int(c.children_count.into())) }
                            td.num { (lang.vnd(c.needed_vnd)) }
                            td.num { (lang.vnd(c.delivered_vnd)) }
                            td.num { (lang.int(c.children_reached.into())) }
                        }
                    }
                },
            ))
        },
    ))
}

async fn commune(
    State(feed): State<AppState>,
    Extension(lang): Extension<Lang>,
    Path(code): Path<String>,
    Query(query): Query<YearQuery>,
) -> PageResult {
    let detail =
        views::commune(&feed.model(), &code, query.year).map_err(|e| query_error(lang, e))?;
    let c = &detail.commune;
    let series = [
        (lang.t("Nhu cầu", "Needed"), "needed"),
        (lang.t("Đã trao", "Delivered"), "delivered"),
    ];
    let chart_rows: Vec<(String, Vec<u64>)> = detail
        .categories
        .iter()
        .map(|n| {
            (
                category_name(lang, n.category).to_owned(),
                vec![n.needed_vnd, n.delivered_vnd],
            )
        })
        .collect();
    Ok(layout(
        lang,
        &format!("/communes/{code}"),
        &c.name,
        html! {
            h1 { (c.name) }
            p.lead { (c.district) ", " (c.province) " · "
                (lang.int(c.children_count.into())) " " (lang.t("trẻ em", "children")) }
            (as_of_line(lang, &detail.as_of))
            dl.totals {
                div { dt { (lang.t("Nhu cầu đã công bố", "Published needs")) } dd { (lang.vnd(c.needed_vnd)) } }
                div { dt { (lang.t("Đã trao", "Delivered")) } dd { (lang.vnd(c.delivered_vnd)) } }
                div { dt { (lang.t("Lượt trẻ em được hỗ trợ", "Children reached")) } dd { (lang.int(c.children_reached.into())) } }
                div { dt { (lang.t("Số lần trao", "Deliveries")) } dd { (lang.int(c.deliveries.into())) } }
            }
            section {
                h2 { (lang.t("Nhu cầu và đã trao, theo lĩnh vực", "Needs against deliveries, by category")) }
                (bar_chart(lang.t("Nhu cầu và đã trao theo lĩnh vực, đồng", "Needed and delivered by category, in đồng"), &series, &chart_rows))
                (data_table(
                    &[lang.t("Lĩnh vực", "Category"), lang.t("Nhu cầu", "Needed"), lang.t("Đã trao", "Delivered"), lang.t("Trẻ em cần hỗ trợ", "Children targeted"), lang.t("Lượt đã hỗ trợ", "Children reached")],
                    html! {
                        @for n in &detail.categories {
                            tr {
                                th scope="row" { (category_name(lang, n.category)) }
                                td.num { (lang.vnd(n.needed_vnd)) }
                                td.num { (lang.vnd(n.delivered_vnd)) }
                                td.num { (lang.int(n.children_targeted.into())) }
                                td.num { (lang.int(n.children_reached.into())) }
                            }
                        }
                    },
                ))
            }
            @if !detail.funds_held.is_empty() || !detail.funds_in_transit.is_empty() {
                section {
                    h2 { (lang.t("Quỹ dành riêng cho xã", "Funds earmarked for this commune")) }
                    ul {
                        @for a in &detail.funds_held { li { (lang.t("Đang giữ: ", "Held: ")) (amount(lang, a)) } }
                        @for a in &detail.funds_in_transit { li { (lang.t("Đang chuyển: ", "In transit: ")) (amount(lang, a)) } }
                    }
                }
            }
            section {
                h2 { (lang.t("Nhà tài trợ", "Donors")) }
                p.note { (lang.t(
                    "Theo nguyên tắc nhập trước, xuất trước: phần quà trao cho xã được tính vào khoản góp đến sớm nhất.",
                    "First in, first out: what reached the commune is counted against the earliest gifts."
                )) }
                (data_table(
                    &[lang.t("Nhà tài trợ", "Donor"), lang.t("Giá trị đã trao", "Value delivered")],
                    html! {
                        @for d in &detail.donors {
                            tr { td { (anonymous_donor_link(lang, &d.donor)) } td.num { (lang.vnd(d.value_vnd)) } }
                        }
                    },
                ))
            }
            section {
                h2 { (lang.t("Nhu cầu đã công bố", "Published needs")) }
                (data_table(
                    &[lang.t("Năm", "Year"), lang.t("Lĩnh vực", "Category"), lang.t("Nội dung", "Description"), lang.t("Nhu cầu", "Needed"), lang.t("Còn thiếu", "Uncovered")],
                    html! {
                        @for n in &detail.needs {
                            tr {
                                td { (n.year) }
                                td { (category_name(lang, n.category)) }
                                td { (n.description) }
                                td.num { (amount(lang, &n.amount)) }
                                td.num { (lang.vnd(n.uncovered_vnd)) }
                            }
                        }
                    },
                ))
            }
            section {
                h2 { (lang.t("Các lần trao gần đây", "Recent deliveries")) }
                ol.timeline reversed {
                    @for d in detail.recent_deliveries.iter().rev() {
                        li {
                            time datetime=(d.date) { (d.date) } " · "
                            (category_name(lang, d.category)) ": " (amount(lang, &d.amount))
                            " · " (org(lang, &d.deliverer))
                            " · " (lang.int(d.children_reached.into())) " " (lang.t("lượt trẻ em", "children reached"))
                            @if d.reversed { " · " strong { (lang.t("đã huỷ", "reversed")) } }
                        }
                    }
                }
            }
        },
    ))
}

async fn donors(
    State(feed): State<AppState>,
    Extension(lang): Extension<Lang>,
    Query(query): Query<YearQuery>,
) -> PageResult {
    let (rows, as_of) = {
        let model = feed.model();
        (views::donors(&model, query.year), views::AsOf::of(&model))
    };
    Ok(layout(
        lang,
        "/donors",
        lang.t("Nhà tài trợ", "Donors"),
        html! {
            h1 { (lang.t("Nhà tài trợ", "Donors")) }
            (as_of_line(lang, &as_of))
            p.note { (lang.t(
                "Cá nhân đề nghị không nêu tên được ghi là “Nhà hảo tâm ẩn danh”.",
                "Individuals who asked not to be named are shown as “Anonymous donor”."
            )) }
            (data_table(
                &["#", lang.t("Nhà tài trợ", "Donor"), lang.t("Tiền mặt", "Cash"), lang.t("Hiện vật (quy đổi)", "In kind (value)"), lang.t("Đã đến tay trẻ em", "Delivered"), lang.t("Số khoản", "Gifts")],
                html! {
                    @for r in &rows {
                        tr {
                            td.num { (r.rank) }
                            td { (anonymous_donor_link(lang, &r.donor)) }
                            td.num { (lang.vnd(r.cash_vnd)) }
                            td.num { (lang.vnd(r.in_kind_vnd)) }
                            td.num { (lang.percent(r.delivered_share_bp)) }
                            td.num { (r.receipts) }
                        }
                    }
                },
            ))
        },
    ))
}

/// `?after=<seq>`: the page of a donor's gifts after that entry.
#[derive(Debug, Deserialize)]
struct AfterQuery {
    after: Option<u64>,
}

/// The page that says `?after=` is not a seq.
fn not_a_seq(lang: Lang) -> Response {
    error_page(
        lang,
        StatusCode::BAD_REQUEST,
        lang.t(
            "Tham số after phải là số thứ tự của một mục trong sổ cái.",
            "The after parameter must be the seq of a log entry.",
        ),
    )
}

async fn donor(
    State(feed): State<AppState>,
    Extension(lang): Extension<Lang>,
    Path(org_id): Path<String>,
    query: Result<Query<AfterQuery>, axum::extract::rejection::QueryRejection>,
) -> PageResult {
    let Ok(Query(query)) = query else {
        return Err(not_a_seq(lang));
    };
    let detail =
        views::donor(&feed.model(), &org_id, query.after).map_err(|e| query_error(lang, e))?;
    let name = detail
        .donor
        .name
        .clone()
        .unwrap_or_else(|| lang.anonymous().to_owned());
    Ok(layout(
        lang,
        &format!("/donors/{org_id}"),
        &name,
        html! {
            h1 { (name) }
            @if let Some(kind) = detail.donor.kind { p.lead { (lang.org_kind(kind)) } }
            (as_of_line(lang, &detail.as_of))
            @if let Some(s) = &detail.standing {
                dl.totals {
                    div { dt { (lang.t("Tổng giá trị đã góp", "Total given")) } dd { (lang.vnd(s.total_vnd)) } }
                    div { dt { (lang.t("Đã đến tay trẻ em", "Delivered")) } dd { (lang.vnd(s.delivered_vnd)) " (" (lang.percent(s.delivered_share_bp)) ")" } }
                    div { dt { (lang.t("Xếp hạng", "Rank")) } dd { (s.rank) } }
                }
                @if !s.commendations.is_empty() {
                    h2 { (lang.t("Khen thưởng", "Commendations")) }
                    ul { @for c in &s.commendations { li { (c.year) @if !c.reason.is_empty() { ": " (c.reason) " (" (c.decision_ref) ")" } } } }
                }
            }
            h2 { (lang.t("Các khoản góp", "Gifts")) }
            @if detail.receipts_total as usize > detail.receipts.len() {
                p {
                    (lang.t("Tổng số khoản góp: ", "Gifts in all: ")) (lang.int(detail.receipts_total))
                    @if query.after.is_some() {
                        " · " a href=(lang.href(&format!("/donors/{}", url_segment(&org_id)))) { (lang.t("Từ khoản đầu tiên", "From the first")) }
                    }
                }
            }
            (receipts_table(lang, &detail.receipts))
            @if let Some(next) = detail.next_after {
                p { a rel="next" href=(lang.href(&format!("/donors/{}?after={next}", url_segment(&org_id)))) { (lang.t("Các khoản góp tiếp theo", "Later gifts")) } }
            }
            h2 { (lang.t("Cam kết", "Pledges")) }
            (pledges_table(lang, &detail.pledges))
        },
    ))
}

fn receipts_table(lang: Lang, rows: &[views::ReceiptRow]) -> Markup {
    data_table(
        &[
            lang.t("Ngày", "Date"),
            lang.t("Mã biên nhận", "Receipt"),
            lang.t("Đơn vị tiếp nhận", "Received by"),
            lang.t("Giá trị", "Amount"),
        ],
        html! {
            @for r in rows {
                tr {
                    td { (r.date) }
                    td { a href=(lang.href(&format!("/receipts/{}", r.receipt_id))) { (r.receipt_id) }
                         @if r.reversed { " " strong { (lang.t("(đã huỷ)", "(reversed)")) } } }
                    td { (org(lang, &r.recipient)) }
                    td.num { (amount(lang, &r.amount)) }
                }
            }
        },
    )
}

fn pledge_status(lang: Lang, status: &str) -> &'static str {
    match status {
        "open" => lang.t("Chưa nhận", "Open"),
        "partly_received" => lang.t("Đã nhận một phần", "Partly received"),
        "fulfilled" => lang.t("Đã hoàn thành", "Fulfilled"),
        "cancelled" => lang.t("Đã huỷ", "Cancelled"),
        "overdue" => lang.t("Quá hạn", "Overdue"),
        _ => "?",
    }
}

fn pledges_table(lang: Lang, rows: &[views::PledgeRow]) -> Markup {
    data_table(
        &[
            lang.t("Nhà tài trợ", "Donor"),
            lang.t("Đơn vị nhận", "To"),
            lang.t("Cam kết", "Pledged"),
            lang.t("Đã nhận", "Received"),
            lang.t("Hạn", "Due"),
            lang.t("Tình trạng", "Status"),
        ],
        html! {
            @for p in rows {
                tr {
                    td { (anonymous_donor_link(lang, &p.donor)) }
                    td { (org(lang, &p.recipient)) }
                    td.num { (amount(lang, &p.amount)) }
                    td.num { (lang.int(p.received)) }
                    td { (p.due_date.as_deref().unwrap_or("—")) }
                    td { span class=(format!("status {}", p.status)) { (pledge_status(lang, p.status)) } }
                }
            }
        },
    )
}

async fn pledges(State(feed): State<AppState>, Extension(lang): Extension<Lang>) -> PageResult {
    let (rows, as_of) = {
        let model = feed.model();
        (views::pledges(&model), views::AsOf::of(&model))
    };
    let count = |status: &str| rows.iter().filter(|p| p.status == status).count() as u64;
    Ok(layout(
        lang,
        "/pledges",
        lang.t("Cam kết", "Pledges"),
        html! {
            h1 { (lang.t("Cam kết tài trợ", "Pledges")) }
            (as_of_line(lang, &as_of))
            dl.totals {
                @for status in ["open", "partly_received", "fulfilled", "overdue", "cancelled"] {
                    div { dt { (pledge_status(lang, status)) } dd { (lang.int(count(status))) } }
                }
            }
            (pledges_table(lang, &rows))
        },
    ))
}

async fn balances(State(feed): State<AppState>, Extension(lang): Extension<Lang>) -> PageResult {
    let b = views::balances(&feed.model());
    Ok(layout(
        lang,
        "/balances",
        lang.t("Số dư", "Balances"),
        html! {
            h1 { (lang.t("Số dư của các đơn vị và tiền đang chuyển", "Agencies' balances and money in transit")) }
            (as_of_line(lang, &b.as_of))
            dl.totals {
                div { dt { (lang.t("Đang giữ", "Held")) } dd { (lang.vnd(b.held_vnd)) } }
                div { dt { (lang.t("Đang chuyển", "In transit")) } dd { (lang.vnd(b.in_transit_vnd)) } }
                div { dt { (lang.t("Hao hụt", "Lost")) } dd { (lang.vnd(b.lost_vnd)) } }
            }
            h2 { (lang.t("Theo loại tài sản", "By asset")) }
            (data_table(
                &[lang.t("Tài sản", "Asset"), lang.t("Đã tiếp nhận", "Received"), lang.t("Đang giữ", "Held"), lang.t("Đang chuyển", "In transit"), lang.t("Đã trao", "Delivered"), lang.t("Hao hụt", "Lost")],
                html! {
                    @for t in &b.totals {
                        tr {
                            th scope="row" { (t.asset_name) @if !t.unit.is_empty() { " (" (t.unit) ")" } }
                            td.num { (lang.int(t.received)) }
                            td.num { (lang.int(t.held)) }
                            td.num { (lang.int(t.in_transit)) }
                            td.num { (lang.int(t.delivered)) }
                            td.num { (lang.int(t.lost)) }
                        }
                    }
                },
            ))
            h2 { (lang.t("Số dư theo đơn vị", "Balances by holder")) }
            (data_table(
                &[lang.t("Đơn vị", "Holder"), lang.t("Chỉ định", "Earmark"), lang.t("Số dư", "Held")],
                html! {
                    @for p in &b.pools {
                        tr {
                            td { (org(lang, &p.holder)) }
                            td { (earmark(lang, &p.earmark)) }
                            td.num { (amount(lang, &p.amount)) }
                        }
                    }
                },
            ))
            h2 { (lang.t("Đang chuyển", "In transit")) }
            (data_table(
                &[lang.t("Ngày", "Date"), lang.t("Từ", "From"), lang.t("Đến", "To"), lang.t("Giá trị", "Amount")],
                html! {
                    @for t in &b.in_transit {
                        tr {
                            td { (t.date) }
                            td { (org(lang, &t.from)) }
                            td { (org(lang, &t.to)) }
                            td.num { (amount(lang, &t.amount)) }
                        }
                    }
                },
            ))
        },
    ))
}

fn earmark(lang: Lang, earmark: &views::EarmarkView) -> Markup {
    html! {
        @match (&earmark.commune_code, earmark.category) {
            (None, None) => (lang.t("Chung", "General")),
            (commune, category) => {
                @if let Some(code) = commune {
                    a href=(lang.href(&format!("/communes/{code}"))) { (code) }
                    @if category.is_some() { " · " }
                }
                @if let Some(c) = category { (lang.category(c)) }
            }
        }
    }
}

/// `?after=<finding>`: the page of findings after that one.
#[derive(Debug, Deserialize)]
struct AfterFindingQuery {
    after: Option<String>,
}

async fn overlaps(
    State(feed): State<AppState>,
    Extension(lang): Extension<Lang>,
    Query(query): Query<AfterFindingQuery>,
) -> PageResult {
    let o = views::overlaps(&feed.model(), EXCESS_PERCENT, query.after.as_deref());
    let kind = |k: &str| overlap_kind(lang, k);
    Ok(layout(
        lang,
        "/overlaps",
        lang.t("Trùng lặp", "Overlaps"),
        html! {
            h1 { (lang.t("Các trường hợp có thể trùng lặp", "Possible overlaps between agencies")) }
            (as_of_line(lang, &o.as_of))
            p.note {
                (lang.t("Ngưỡng vượt nhu cầu: ", "Tolerance over a need: ")) (o.excess_percent) " %. "
                (lang.t(
                    "Đây là dấu hiệu cần xem xét, không phải kết luận sai phạm.",
                    "These are signals to look into, not findings of wrongdoing."
                ))
            }
            @if o.findings.is_empty() {
                p { (lang.t("Không có.", "None.")) }
            }
            @if query.after.is_some() {
                p { a href=(lang.href("/overlaps")) { (lang.t("Từ trường hợp đầu tiên", "From the first finding")) } }
            }
            ol.findings {
                @for f in &o.findings {
                    li {
                        strong { (kind(f.kind)) } br;
                        (commune_link(lang, &f.commune)) " · " (category_name(lang, f.category)) " · " (f.year)
                        @if let Some(p) = &f.period { " · " (p) }
                        br;
                        (lang.t("Đơn vị: ", "Agencies: "))
                        @for (i, o) in f.orgs.iter().enumerate() { @if i > 0 { ", " } (org(lang, o)) }
                        @if f.needed_vnd > 0 || f.delivered_vnd > 0 {
                            br; (lang.t("Nhu cầu ", "Needed ")) (lang.vnd(f.needed_vnd))
                            ", " (lang.t("đã trao ", "delivered ")) (lang.vnd(f.delivered_vnd))
                        }
                        br; (lang.t("Sự kiện số: ", "Events: "))
                        @for (i, seq) in f.seqs.iter().enumerate() { @if i > 0 { ", " } (seq) }
                        @if f.events_total > f.seqs.len() as u64 { ", …" }
                        " "
                        a href=(lang.href(&format!("/overlaps/{}", url_segment(&f.finding)))) {
                            "(" (lang.t("cả ", "all ")) (lang.int(f.events_total)) ")"
                        }
                    }
                }
            }
            @if let Some(next) = &o.next_after {
                p { a rel="next" href=(lang.href(&format!("/overlaps?after={}", url_segment(next)))) { (lang.t("Các trường hợp tiếp theo", "More findings")) } }
            }
        },
    ))
}

fn overlap_kind(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "same_beneficiary" => lang.t(
            "Cùng một trẻ được nhiều đơn vị hỗ trợ cùng lĩnh vực trong năm",
            "The same child helped by several agencies in one category and year",
        ),
        "exceeds_need" => lang.t(
            "Đã trao vượt nhu cầu công bố",
            "Deliveries exceed the published need",
        ),
        "same_month" => lang.t(
            "Nhiều đơn vị trao cùng lĩnh vực cho một xã trong cùng tháng",
            "Several agencies delivered the same category to one commune in one month",
        ),
        _ => "?",
    }
}

async fn overlap_finding(
    State(feed): State<AppState>,
    Extension(lang): Extension<Lang>,
    Path(finding): Path<String>,
    query: Result<Query<AfterQuery>, axum::extract::rejection::QueryRejection>,
) -> PageResult {
    let Ok(Query(query)) = query else {
        return Err(not_a_seq(lang));
    };
    let model = feed.model();
    let found =
        views::overlap_events(&model, &finding, query.after).map_err(|e| query_error(lang, e))?;
    drop(model);
    Ok(layout(
        lang,
        &format!("/overlaps/{finding}"),
        lang.t(
            "Sự kiện của một trường hợp trùng lặp",
            "Events behind one overlap finding",
        ),
        html! {
            h1 { (lang.t("Sự kiện của một trường hợp trùng lặp", "Events behind one overlap finding")) }
            (as_of_line(lang, &found.as_of))
            p {
                (lang.t("Tổng số sự kiện: ", "Events in all: ")) (lang.int(found.events_total))
                " · " a href=(lang.href("/overlaps")) { (lang.t("Mọi trường hợp", "All findings")) }
                @if query.after.is_some() {
                    " · " a href=(lang.href(&format!("/overlaps/{}", url_segment(&finding)))) { (lang.t("Từ sự kiện đầu tiên", "From the first event")) }
                }
            }
            (data_table(
                &[
                    lang.t("Số thứ tự", "Seq"),
                    lang.t("Mã sự kiện", "Event"),
                    lang.t("Đơn vị trao", "Delivered by"),
                ],
                html! {
                    @for e in &found.events {
                        tr {
                            td.num { (e.seq) }
                            td { (e.event_id) }
                            td {
                                @match &e.org {
                                    Some(o) => (org(lang, o)),
                                    None => (lang.t("(nhu cầu công bố)", "(published need)")),
                                }
                            }
                        }
                    }
                },
            ))
            @if let Some(next) = found.next_after {
                p { a rel="next" href=(lang.href(&format!("/overlaps/{}?after={next}", url_segment(&finding)))) { (lang.t("Các sự kiện tiếp theo", "Later events")) } }
            }
        },
    ))
}

async fn commendations(
    State(feed): State<AppState>,
    Extension(lang): Extension<Lang>,
) -> PageResult {
    let (rows, as_of) = {
        let model = feed.model();
        (views::donors(&model, 0), views::AsOf::of(&model))
    };
    Ok(layout(
        lang,
        "/commendations",
        lang.t("Khen thưởng", "Commendations"),
        html! {
            h1 { (lang.t("Ghi nhận và khen thưởng", "Recognition and commendations")) }
            (as_of_line(lang, &as_of))
            ul.commendations {
                @for r in rows.iter().filter(|r| !r.commendations.is_empty()) {
                    @for c in &r.commendations {
                        li {
                            strong { (anonymous_donor_link(lang, &r.donor)) } " · " (c.year)
                            @if !c.reason.is_empty() {
                                br;
                                (c.reason) " (" (lang.t("Quyết định ", "Decision ")) (c.decision_ref) ")"
                            }
                        }
                    }
                }
            }
        },
    ))
}

async fn log(State(feed): State<AppState>, Extension(lang): Extension<Lang>) -> PageResult {
    let store = Arc::clone(&feed);
    let note = tokio::task::spawn_blocking(move || crate::tiles::latest_note(store.store()))
        .await
        .map_err(|e| error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?
        .map_err(|e| error_page(lang, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()))?;
    let checkpoint = crate::api::parse_note(&note, feed.vkey())
        .map_err(|e| error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, &e))?;
    Ok(layout(
        lang,
        "/log",
        lang.t("Sổ cái", "The log"),
        html! {
            h1 { (lang.t("Điểm kiểm tra mới nhất của sổ cái", "The ledger's latest checkpoint")) }
            p.lead { (lang.t(
                "Sổ cái là một chuỗi sự kiện được băm nối tiếp và một cây Merkle. Mỗi điểm kiểm tra được ký bằng khoá của sổ cái; các nhân chứng độc lập ký xác nhận rằng họ đã thấy cùng một sổ cái.",
                "The ledger is a hash-chained sequence of events and a Merkle tree. Each checkpoint is signed with the ledger's key; independent witnesses cosign that they saw the same ledger."
            )) }
            dl.facts {
                dt { (lang.t("Nguồn gốc", "Origin")) } dd { code { (checkpoint.origin) } }
                dt { (lang.t("Số sự kiện", "Tree size")) } dd { (lang.int(checkpoint.size)) }
                dt { (lang.t("Gốc Merkle", "Root hash")) } dd { code.hash { (checkpoint.root) } }
                dt { (lang.t("Khoá xác minh của sổ cái", "The ledger's verifier key")) } dd { code.hash { (feed.vkey()) } }
            }
            h2 { (lang.t("Chữ ký", "Signatures")) }
            ul {
                @for s in &checkpoint.signatures {
                    li {
                        code { (s.name) } " · " (lang.t("mã khoá", "key id")) " " code { (s.key_id) } " · "
                        @if s.is_ledger { (lang.t("chữ ký của sổ cái", "the ledger's signature")) }
                        @else { (lang.t("chữ ký xác nhận của nhân chứng", "a witness cosignature")) }
                    }
                }
            }
            h2 { (lang.t("Văn bản đã ký", "The signed note")) }
            pre.note-text { (note) }
            p {
                (lang.t(
                    "Ai cũng có thể tải toàn bộ sổ cái dưới dạng C2SP tlog-tiles và tự kiểm chứng: ",
                    "Anyone can fetch the whole log as C2SP tlog-tiles and verify it: "
                ))
                a href="/checkpoint" { "/checkpoint" } ", " code { "/tile/<L>/<N>" } ", " code { "/tile/entries/<N>" } ". "
                code { "aidctl audit verify --tiles <URL> --vkey <vkey>" }
            }
            (privacy_note(lang))
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
struct VerifyQuery {
    #[serde(default)]
    receipt: String,
}

/// The donor's entry point: a receipt id (GET: ids are public), or a bank
/// reference (POST, [`verify_reference`]).
async fn verify(
    State(feed): State<AppState>,
    Extension(lang): Extension<Lang>,
    Query(query): Query<VerifyQuery>,
) -> Response {
    let receipt = query.receipt.trim();
    if receipt.is_empty() {
        return verify_page(&feed, lang, None, &[], StatusCode::OK).into_response();
    }
    if feed.model().receipts.contains(receipt) {
        return Redirect::to(&lang.href(&format!("/receipts/{}", url_segment(receipt))))
            .into_response();
    }
    let message = lang.t(
        "Không có biên nhận nào mang mã này.",
        "No receipt has this id.",
    );
    verify_page(&feed, lang, Some(message), &[], StatusCode::NOT_FOUND).into_response()
}

#[derive(Deserialize)]
struct ReferenceForm {
    #[serde(default)]
    reference: String,
}

/// SPEC §9.3 from the page: the reference arrives in the form body, is
/// hashed with `K_ref` and dropped; the answer is never cached, and the
/// page it renders does not repeat the reference.
async fn verify_reference(
    State(feed): State<AppState>,
    Extension(lang): Extension<Lang>,
    form: Result<Form<ReferenceForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(ReferenceForm { reference })) = form else {
        let message = lang.t(
            "Không đọc được biểu mẫu: mã giao dịch dài tối đa vài trăm ký tự.",
            "The form could not be read: a transfer reference is at most a few hundred characters.",
        );
        return no_store(
            verify_page(&feed, lang, Some(message), &[], StatusCode::BAD_REQUEST).into_response(),
        );
    };
    if reference.trim().is_empty() {
        let message = lang.t("Hãy nhập mã giao dịch.", "Enter the transfer reference.");
        return no_store(
            verify_page(&feed, lang, Some(message), &[], StatusCode::BAD_REQUEST).into_response(),
        );
    }
    let model = feed.model();
    let found = feed.lookup_reference(&model, &reference);
    // The count only: the reference is never logged (SPEC §9.3).
    tracing::debug!(
        found = found.as_ref().map(Vec::len),
        "receipt look-up by reference"
    );
    let (message, matches, status) = match found {
        None => (
            Some(lang.t(
                "Trang này không tra cứu được theo mã giao dịch. Hãy tìm bằng mã biên nhận.",
                "This feed does not look up transfer references. Look up the receipt id instead.",
            )),
            Vec::new(),
            StatusCode::NOT_FOUND,
        ),
        Some(found) if found.is_empty() => (
            Some(lang.t(
                "Chưa có biên nhận nào mang mã giao dịch này. Nếu bạn vừa chuyển khoản, đơn vị tiếp nhận có thể chưa ghi sổ.",
                "No receipt carries this transfer reference yet. If you have just given, the receiving agency may not have recorded it yet.",
            )),
            Vec::new(),
            StatusCode::NOT_FOUND,
        ),
        Some(found) => (None, found, StatusCode::OK),
    };
    drop(model);
    no_store(match matches.as_slice() {
        // 303: the browser follows with a GET, and the receipt id in the
        // new URL is public.
        [only] => Redirect::to(&lang.href(&format!("/receipts/{}", url_segment(&only.receipt_id))))
            .into_response(),
        _ => verify_page(&feed, lang, message, &matches, status).into_response(),
    })
}

/// SPEC §9.3: an answer to a look-up by reference is never cached.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

fn verify_page(
    feed: &Feed,
    lang: Lang,
    message: Option<&str>,
    matches: &[views::ReceiptRow],
    status: StatusCode,
) -> (StatusCode, Markup) {
    let page = layout(
        lang,
        "/verify",
        lang.t("Kiểm chứng khoản góp", "Verify my donation"),
        html! {
            h1 { (lang.t("Kiểm chứng khoản góp của bạn", "Verify your donation")) }
            p.lead { (lang.t(
                "Nhập mã biên nhận, hoặc mã giao dịch chuyển khoản của bạn.",
                "Enter your receipt id, or your bank transfer reference."
            )) }
            @if let Some(m) = message { p.error role="alert" { (m) } }
            @if matches.len() > 1 {
                h2 { (lang.t("Các biên nhận mang mã giao dịch này", "Receipts carrying this reference")) }
                (receipts_table(lang, matches))
            }
            form #receipt-form method="get" action=(lang.href("/verify")) {
                p {
                    label for="receipt" { (lang.t("Mã biên nhận", "Receipt id")) }
                    input #receipt name="receipt" type="text" autocomplete="off" spellcheck="false";
                }
                p { button type="submit" { (lang.t("Tìm theo mã biên nhận", "Look up the receipt")) } }
            }
            @if feed.offers_reference_lookup() {
                form #reference-form method="post" action=(lang.href("/verify")) {
                    p {
                        label for="bank-ref" { (lang.t("Mã giao dịch chuyển khoản", "Bank transfer reference")) }
                        input #bank-ref name="reference" type="text" autocomplete="off" spellcheck="false"
                            maxlength="200" aria-describedby="bank-ref-help";
                        small #bank-ref-help { (lang.t(
                            "Mã được gửi trong nội dung yêu cầu (không nằm trong địa chỉ trang), chỉ dùng để tính giá trị băm có khóa rồi bỏ đi; không được ghi lại hay lưu trữ.",
                            "The reference is sent in the request body (never in the address), used only to compute its keyed hash, then dropped: it is not logged or kept."
                        )) }
                    }
                    p { button type="submit" { (lang.t("Tìm theo mã giao dịch", "Look up the reference")) } }
                }
            } @else {
                p #no-reference-lookup { (lang.t(
                    "Trang này không giữ khóa tra cứu nên không tìm được theo mã giao dịch; hãy dùng mã biên nhận mà đơn vị tiếp nhận đã gửi bạn.",
                    "This feed holds no look-up key, so it cannot find a gift by its transfer reference; use the receipt id the receiving agency gave you."
                )) }
            }
            (privacy_note(lang))
        },
    );
    (status, page)
}

/// What the log and this feed publish about people, and what they never do
/// (SPEC §7.5), in the reader's language.
pub(crate) fn privacy_note(lang: Lang) -> Markup {
    html! {
        section #privacy aria-labelledby="privacy-title" {
            h2 #privacy-title { (lang.t("Điều gì được công khai", "What is public")) }
            ul {
                li { (lang.t(
                    "Sổ cái là công khai và vĩnh viễn: ai cũng tải được từng bản ghi đã ký để kiểm chứng.",
                    "The log is public and permanent: anyone can fetch every signed entry and verify it."
                )) }
                li { (lang.t(
                    "Nhà hảo tâm không muốn công khai tên không có tên trong sổ cái: chỉ có một mã ngẫu nhiên và một giá trị cam kết; tên và \"salt\" nằm trên giấy xác nhận trao cho họ.",
                    "Donors who asked not to be named have no name in the log: only a random id and a commitment; the name and its salt are on the acknowledgement they were given."
                )) }
                li { (lang.t(
                    "Mã giao dịch ngân hàng không có trong sổ cái, chỉ có giá trị băm có khóa; không có khóa thì không thể đoán ra.",
                    "Bank references are not in the log, only their keyed hash, which cannot be guessed without the key."
                )) }
                li { (lang.t(
                    "Về trẻ em, sổ cái chỉ có số lượng và mã ẩn danh có khóa: không tên, ngày sinh, địa chỉ hay ảnh.",
                    "About children, the log holds only counts and keyed tokens: no names, birth dates, addresses or photos."
                )) }
            }
        }
    }
}

/// An id as one path segment: ids are printable text, but may hold `/`,
/// `?`, `#`, `%` or spaces.
pub(crate) fn url_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A receipt: what it was, where it went, a QR code to print on an
/// acknowledgement, and the in-browser verification of its proof.
async fn receipt(
    State(feed): State<AppState>,
    Extension(lang): Extension<Lang>,
    Path(receipt_id): Path<String>,
    headers: HeaderMap,
) -> PageResult {
    let trace = views::trace(&feed.model(), &receipt_id).map_err(|e| query_error(lang, e))?;
    let r = &trace.receipt;
    let here = format!("/receipts/{}", url_segment(&receipt_id));
    let base = match feed.public_url() {
        Some(base) => base.to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    let url = format!("{base}{}", lang.href(&here));
    let qr = qrcode::QrCode::new(url.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(160, 160)
                .build()
        })
        .unwrap_or_default();
    let total = r.amount.quantity.max(1);
    let share = |q: u64| (q * 100 / total).to_string();
    Ok(layout(
        lang,
        &here,
        &format!("{} {}", lang.t("Biên nhận", "Receipt"), r.receipt_id),
        html! {
            h1 { (lang.t("Biên nhận", "Receipt")) " " code { (r.receipt_id) } }
            (as_of_line(lang, &trace.as_of))
            div.receipt-head {
                dl.facts {
                    dt { (lang.t("Ngày", "Date")) } dd { (r.date) }
                    dt { (lang.t("Nhà tài trợ", "Donor")) } dd { (anonymous_donor_link(lang, &r.donor)) }
                    dt { (lang.t("Đơn vị tiếp nhận", "Received by")) } dd { (org(lang, &r.recipient)) }
                    dt { (lang.t("Giá trị", "Amount")) } dd { (amount(lang, &r.amount)) }
                    dt { (lang.t("Chỉ định", "Earmark")) } dd { (earmark(lang, &r.earmark)) }
                    @if let Some(p) = &r.pledge_id { dt { (lang.t("Theo cam kết", "Pledge")) } dd { (p) } }
                    dt { (lang.t("Sự kiện số", "Event number")) } dd { (r.seq) }
                    @if r.reversed { dt { (lang.t("Tình trạng", "Status")) } dd { strong { (lang.t("Đã huỷ", "Reversed")) } } }
                }
                figure.qr {
                    // The renderer's output starts with an XML declaration, which
                    // has no place inside HTML.
                    (PreEscaped(qr.find("<svg").map_or("", |at| &qr[at..])))
                    figcaption { (lang.t("Mã QR dẫn tới trang này", "QR code linking to this page")) }
                }
            }
            section {
                h2 { (lang.t("Khoản góp đã đi đến đâu", "Where it went")) }
                dl.totals {
                    div { dt { (lang.t("Đã trao", "Delivered")) } dd { (lang.int(trace.delivered)) " (" (share(trace.delivered)) " %)" } }
                    div { dt { (lang.t("Đang chuyển", "In transit")) } dd { (lang.int(trace.in_transit)) } }
                    div { dt { (lang.t("Đang giữ", "Held")) } dd { (lang.int(trace.held)) } }
                    div { dt { (lang.t("Hao hụt", "Lost")) } dd { (lang.int(trace.lost)) } }
                    @if trace.withdrawn > 0 { div { dt { (lang.t("Đã rút", "Withdrawn")) } dd { (lang.int(trace.withdrawn)) } } }
                }
                ol.trace {
                    @for f in &trace.flows {
                        li class=(format!("hop-{}", f.hop.min(3))) {
                            @match f.kind {
                                "transfer" => {
                                    (lang.t("Chuyển ", "Transferred ")) (lang.int(f.quantity))
                                    (lang.t(" từ ", " from ")) (org(lang, &f.from))
                                    (lang.t(" đến ", " to ")) @if let Some(to) = &f.to_org { (org(lang, to)) }
                                    @if f.in_transit { " · " (lang.t("đang chuyển", "in transit")) }
                                    @else if f.arrived < f.quantity { " · " (lang.t("đến nơi ", "arrived ")) (lang.int(f.arrived)) }
                                },
                                "delivery" => {
                                    (lang.t("Trao ", "Delivered ")) (lang.int(f.quantity))
                                    (lang.t(" tại xã ", " in ")) @if let Some(c) = &f.to_commune { (commune_link(lang, c)) }
                                    " · " (category_name(lang, f.category))
                                    @if let Some(p) = &f.period { " · " (p) }
                                    (lang.t(" bởi ", " by ")) (org(lang, &f.from))
                                },
                                _ => {
                                    (lang.t("Rút ", "Withdrawn ")) (lang.int(f.quantity))
                                },
                            }
                            @if f.reversed { " · " strong { (lang.t("đã huỷ", "reversed")) } }
                            " " small { "(#" (f.seq) ")" }
                        }
                    }
                }
            }
            section #verify
                data-receipt=(r.receipt_id)
                data-seq=(r.seq)
                data-vkey=(feed.vkey())
                data-lang=(lang.tag())
            {
                h2 { (lang.t("Tự kiểm chứng trên trình duyệt", "Verify it in this browser")) }
                p { (lang.t(
                    "Trình duyệt của bạn tự kiểm tra rằng biên nhận này nằm trong sổ cái và sổ cái được ký bằng khoá công bố dưới đây, không cần tin vào trang web này.",
                    "Your browser checks for itself that this receipt is in the ledger, and that the ledger is signed by the key published below, without trusting this website."
                )) }
                p { (lang.t("Khoá xác minh của sổ cái: ", "The ledger's verifier key: ")) code.hash { (feed.vkey()) } }
                p.note { (lang.t(
                    "Hãy so khoá này với khoá do Ủy ban nhân dân tỉnh công bố chính thức (trên cổng thông tin, công báo): nếu khác, đừng tin kết quả.",
                    "Compare this key with the one the provincial People's Committee publishes officially (its portal, the gazette): if they differ, do not trust the result."
                )) }
                noscript { p.error { (lang.t("Cần bật JavaScript để kiểm chứng.", "JavaScript is needed to verify.")) } }
                button #verify-button type="button" { (lang.t("Kiểm chứng", "Verify")) }
                ol #verify-steps aria-live="polite" {}
                p #verify-result role="status" {}
            }
            script src="/static/verify.js" defer {}
        },
    ))
}
