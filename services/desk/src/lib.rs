//! The agency desk: a local web application in which an agency's clerks
//! record aid by form, in Vietnamese or English.
//!
//! The agency's key stays in this process: the browser sees forms and
//! answers, never the key. The desk listens on a loopback address unless
//! told otherwise, checks the `Host` of every request on it (so a web page
//! elsewhere cannot reach it by DNS rebinding) and a per-process token in
//! every form it signs from (so a page elsewhere cannot make it sign).
//!
//! A form goes through a preview that shows exactly what will become
//! public, with the ledger crate's own field rules applied and SPEC 7.5's
//! warnings on free text; the event's id and time are fixed at the
//! preview, so submitting the same preview twice signs the same bytes and
//! the ledger records it once.

pub mod acknowledgement;
mod donors;
mod forms;
mod import;
pub mod picklists;
pub mod standing;

use std::net::SocketAddr;
use std::sync::Arc;

use aidledger_client::{Client, ClientError};
use aidledger_ledger::privacy::{RefKey, text_warnings};
use aidledger_tlog::ed25519::SecretKey;
use aidledger_wire::pb;
use axum::Router;
use axum::extract::{Extension, Form, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use rand_core::RngCore as _;
use serde::Deserialize;

use crate::forms::{FieldError, Input, Kind, Values};
use crate::picklists::PickLists;

/// What a desk works with: one agency, its key, the ledger it signs for.
pub struct DeskConfig {
    /// The agency the desk records for: the `org_id` of every event.
    pub org_id: String,
    pub key: SecretKey,
    pub ledger: Client,
    /// A projector's gRPC endpoint, for the pick lists.
    pub projector_url: String,
    /// The public feed's base URL, for links to what was recorded.
    pub feed_url: Option<String>,
    /// The ledger's reference key (SPEC 7.5 `K_ref`), to hash bank
    /// references; without it a receipt is recorded without one.
    pub ref_key: Option<RefKey>,
}

impl std::fmt::Debug for DeskConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeskConfig")
            .field("org_id", &self.org_id)
            .field("key", &self.key)
            .field("projector_url", &self.projector_url)
            .field("feed_url", &self.feed_url)
            .finish_non_exhaustive()
    }
}

/// A running desk's state.
#[derive(Debug)]
pub struct Desk {
    config: DeskConfig,
    /// Where it listens: requests must name it as their `Host`.
    listen: SocketAddr,
    /// Other names this desk answers to (`--host`), besides loopback and
    /// its listen address.
    hosts: Vec<String>,
    /// The secret of the address `aidctl desk` prints: opening it sets the
    /// session cookie every request needs, so another program or user on
    /// the same computer, which can reach the port but not the terminal,
    /// cannot sign.
    session: String,
    /// Proves a form came from a page this desk served.
    form_token: String,
    /// The last uploads checked, newest last: what "sign and submit"
    /// signs, and what a report is downloaded from.
    uploads: std::sync::Mutex<Vec<Arc<import::Checked>>>,
    /// The key's organisation and roles, read from the log.
    standing: std::sync::RwLock<standing::Standing>,
    /// Submissions of uploads, by upload id: their progress.
    submissions:
        std::sync::Mutex<std::collections::HashMap<String, Arc<std::sync::Mutex<Progress>>>>,
}

/// Uploads kept between their check and their submission.
const UPLOADS_KEPT: usize = 8;
/// The largest spreadsheet taken.
const UPLOAD_BYTES_MAX: usize = 8 << 20;
/// Events per `AppendBatch` of an import.
const IMPORT_BATCH: usize = 100;

pub(crate) type AppState = Arc<Desk>;

/// The page language: Vietnamese at `/`, English under `/en`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    pub(crate) fn t(self, vi: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }

    fn href(self, path: &str) -> String {
        match self {
            Lang::Vi => path.to_owned(),
            Lang::En if path == "/" => "/en".to_owned(),
            Lang::En => format!("/en{path}"),
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
}

/// The categories of aid, as pb numbers with their names.
const CATEGORIES: [(pb::Category, &str, &str); 7] = [
    (pb::Category::Health, "Khám chữa bệnh", "Health care"),
    (pb::Category::Nutrition, "Bữa ăn bán trú", "School meals"),
    (
        pb::Category::CultureRecreation,
        "Văn hoá, vui chơi",
        "Culture and play",
    ),
    (pb::Category::Scholarship, "Học bổng", "Scholarships"),
    (
        pb::Category::BooksSupplies,
        "Sách vở, đồ dùng học tập",
        "Books and school supplies",
    ),
    (pb::Category::Clothing, "Quần áo", "Clothing"),
    (pb::Category::Other, "Khác", "Other"),
];

impl Desk {
    /// A desk for `config`, answering at `listen`.
    /// A desk for `config`, answering at `listen` and to the names in
    /// `hosts` (`name` or `name:port`).
    pub fn new(config: DeskConfig, listen: SocketAddr, hosts: Vec<String>) -> Arc<Desk> {
        let random = || {
            let mut bytes = [0u8; 32];
            rand_core::OsRng.fill_bytes(&mut bytes);
            hex::encode(bytes)
        };
        Arc::new(Desk {
            config,
            listen,
            hosts,
            session: random(),
            form_token: random(),
            uploads: std::sync::Mutex::new(Vec::new()),
            standing: std::sync::RwLock::new(standing::Standing::Reading),
            submissions: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The key's standing as last read from the log.
    pub fn standing(&self) -> standing::Standing {
        self.standing.read().expect("standing lock").clone()
    }

    fn set_standing(&self, standing: standing::Standing) {
        let mut current = self.standing.write().expect("standing lock");
        if *current != standing {
            tracing::info!(?standing, "the desk's key");
            *current = standing;
        }
    }

    /// The address to open: it carries the session's secret.
    pub fn launch_url(&self) -> String {
        let host = if self.listen.ip().is_unspecified() {
            format!("127.0.0.1:{}", self.listen.port())
        } else {
            self.listen.to_string()
        };
        format!("http://{host}/?session={}", self.session)
    }

    /// Whether `host` (a request's `Host` header) names this desk: a
    /// loopback name, its listen address, or a name given with `--host`,
    /// with its port. Any other name is a page elsewhere reaching it by DNS
    /// rebinding.
    fn serves_host(&self, host: Option<&str>) -> bool {
        let port = self.listen.port();
        let mut allowed = vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ];
        if !self.listen.ip().is_unspecified() {
            allowed.push(self.listen.to_string());
        }
        for name in &self.hosts {
            allowed.push(if name.contains(':') {
                name.clone()
            } else {
                format!("{name}:{port}")
            });
        }
        host.is_some_and(|host| allowed.iter().any(|a| a.eq_ignore_ascii_case(host)))
    }

    /// The session cookie's name: with the port, since cookies are kept
    /// per host, not per port, and two desks may run on one computer.
    fn session_cookie(&self) -> String {
        format!("aidledger_desk_{}", self.listen.port())
    }

    /// Whether the request carries this session's cookie.
    fn in_session(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix(&self.session_cookie()))
            .filter_map(|rest| rest.strip_prefix('='))
            .any(|value| same_secret(value, &self.session))
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn same_secret(given: &str, secret: &str) -> bool {
    given.len() == secret.len()
        && given
            .bytes()
            .zip(secret.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// The desk's routes, in both languages.
pub fn router(desk: AppState) -> Router {
    let pages: Router<AppState> = Router::new()
        .route("/", get(home))
        .route("/donors/new", get(donors::form))
        .route("/donors/preview", post(donors::preview))
        .route("/donors/submit", post(donors::submit))
        .route(
            "/donors/acknowledgement",
            post(donors::acknowledgement_file),
        )
        .route("/{kind}/new", get(form_new))
        .route("/{kind}/preview", post(form_preview))
        .route("/{kind}/check", post(form_check))
        .route("/{kind}/submit", post(form_submit))
        .route("/import", get(import_page))
        .route(
            "/import/check",
            post(import_check).layer(axum::extract::DefaultBodyLimit::max(UPLOAD_BYTES_MAX)),
        )
        .route("/import/submit", post(import_submit))
        .route("/import/{upload}/progress", get(import_progress))
        .route("/import/{upload}/progress.json", get(import_progress_json))
        .route("/import/{upload}/report.xlsx", get(import_report));
    Router::new()
        .merge(pages.clone().layer(Extension(Lang::Vi)))
        .nest("/en", pages.layer(Extension(Lang::En)))
        .route("/static/desk.css", get(stylesheet))
        .route("/static/desk.js", get(script))
        .route("/templates/{file}", get(template))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&desk),
            guard_host,
        ))
        .with_state(desk)
}

/// Serves the desk on `listener` until `shutdown`.
///
/// # Errors
///
/// The server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    desk: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let follower = tokio::spawn(standing::follow(Arc::clone(&desk)));
    let served = axum::serve(listener, router(desk))
        .with_graceful_shutdown(shutdown)
        .await;
    follower.abort();
    served?;
    Ok(())
}

async fn guard_host(State(desk): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if !desk.serves_host(host) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this desk answers only at its own address",
        )
            .into_response();
    }
    // The printed address opens the session: its secret becomes a cookie
    // only this browser holds, and leaves the address bar.
    let opened = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("session="))
            .filter(|secret| same_secret(secret, &desk.session))
    });
    if opened.is_some() {
        return (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, request.uri().path().to_owned()),
                (
                    header::SET_COOKIE,
                    format!(
                        "{}={}; HttpOnly; SameSite=Strict; Path=/",
                        desk.session_cookie(),
                        desk.session
                    ),
                ),
            ],
        )
            .into_response();
    }
    let static_file = matches!(request.uri().path(), "/static/desk.css" | "/static/desk.js");
    if !static_file && !desk.in_session(request.headers()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Mở địa chỉ mà lệnh aidctl desk đã in ra (có mã phiên). / Open the address aidctl desk printed (it carries this session's key).",
        )
            .into_response();
    }
    if request.method() == axum::http::Method::POST && !same_origin(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            "a form posted from another site is not taken",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // Nothing from elsewhere, no framing, no scripts: the desk's pages are
    // plain forms.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    // Not `no-referrer`: with it, browsers send `Origin: null` on the
    // desk's own forms, which the Origin check must then refuse.
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// The one script: the forms' checks as the clerk types. The forms work
/// without it.
async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("desk.js"),
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("desk.css"),
    )
}

pub(crate) fn layout(lang: Lang, here: &str, title: &str, main: Markup) -> Markup {
    let other = match lang {
        Lang::Vi => (Lang::En.href(here), "English", "en"),
        Lang::En => (here.to_owned(), "Tiếng Việt", "vi"),
    };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (lang.t("Bàn làm việc", "Agency desk")) }
                link rel="stylesheet" href="/static/desk.css";
                script src="/static/desk.js" defer {}
                // No favicon request, and no 404 for it.
                link rel="icon" href="data:,";
            }
            body {
                header {
                    p.brand { a href=(lang.href("/")) { (lang.t("Bàn làm việc của đơn vị", "Agency desk")) } }
                    p.lang-switch { a href=(other.0) hreflang=(other.2) lang=(other.2) { (other.1) } }
                }
                main id="main" { (main) }
            }
        }
    }
}

pub(crate) fn page(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

async fn home(State(desk): State<AppState>, Extension(lang): Extension<Lang>) -> Response {
    let lists = picklists::read(&desk.config.projector_url, &desk.config.org_id, false).await;
    let standing = desk.standing();
    page(layout(
        lang,
        "/",
        lang.t("Trang chính", "Home"),
        html! {
            h1 { (lang.t("Bàn làm việc của đơn vị ", "Agency desk of ")) (desk.config.org_id) }
            p {
                (lang.t("Khoá ký của đơn vị: ", "The agency's signing key: "))
                code { (hex::encode(desk.config.key.public_key())) }
                (lang.t(" (khoá bí mật ở lại trong chương trình này, trình duyệt không thấy).",
                        " (the private key stays in this program; the browser never sees it)."))
            }
            (standing_line(lang, &standing))
            ul.actions {
                @for kind in Kind::ALL.into_iter().filter(|k| k.roles().iter().any(|r| standing.allows(*r))) {
                    li { a href=(lang.href(&format!("/{}/new", kind.segment()))) { (kind.title(lang)) } }
                }
                @if standing.allows(pb::Role::Receive) {
                    li { a href=(lang.href("/donors/new")) { (lang.t("Đăng ký nhà tài trợ", "Register a donor")) } }
                }
                @if import::SHEETS.iter().any(|sheet| sheet.kind.roles().iter().any(|r| standing.allows(*r))) {
                    li { a href=(lang.href("/import")) { (lang.t("Nhập từ bảng tính", "Import from a spreadsheet")) } }
                }
            }
            h2 { (lang.t("Số dư hiện có", "What the agency holds now")) }
            @match &lists {
                Ok(lists) => (holdings(lang, lists)),
                Err(error) => p.error role="alert" { (lang.t("Chưa đọc được số liệu tổng hợp: ", "The projections could not be read: ")) (format!("{error:#}")) },
            }
        },
    ))
}

/// The key's organisation and roles, or why it may sign nothing.
fn standing_line(lang: Lang, standing: &standing::Standing) -> Markup {
    use standing::Standing;
    html! {
        @match standing {
            Standing::Reading => p id="standing" { (lang.t("Đang đọc quyền của khoá từ sổ cái…", "Reading the key's roles from the log…")) },
            Standing::Registered { org_id, roles } => p id="standing" {
                (lang.t("Khoá thuộc đơn vị ", "The key belongs to ")) strong { (org_id) }
                (lang.t(", với quyền: ", ", with the roles: "))
                @for (i, role) in roles.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (role.as_str_name().trim_start_matches("ROLE_")) }
                }
                "."
            },
            Standing::OtherOrganization { org_id } => p.error id="standing" role="alert" {
                (reason_text(lang, "KEY_ORG_MISMATCH")) " (" (org_id) ")"
            },
            Standing::Revoked { .. } => p.error id="standing" role="alert" {
                (lang.t("Khoá này đã bị thu hồi: bàn làm việc không ký được gì nữa.", "This key was revoked: the desk can sign nothing."))
            },
            Standing::NotRegistered => p.error id="standing" role="alert" {
                (reason_text(lang, "UNKNOWN_KEY"))
            },
        }
    }
}

/// A warning on a form the key's roles do not allow.
pub(crate) fn role_warning(
    lang: Lang,
    standing: &standing::Standing,
    roles: &[pb::Role],
) -> Markup {
    html! {
        @if !roles.iter().any(|role| standing.allows(*role)) {
            p.error role="alert" id="role-missing" {
                (reason_text(lang, "ROLE_NOT_ALLOWED"))
            }
        }
    }
}

fn holdings(lang: Lang, lists: &PickLists) -> Markup {
    html! {
        @if lists.holdings.is_empty() {
            p { (lang.t("Đơn vị chưa giữ tài sản nào.", "The agency holds nothing yet.")) }
        } @else {
            div.table-scroll tabindex="0" role="region" aria-label=(lang.t("Bảng", "Table")) {
                table {
                thead { tr {
                    th scope="col" { (lang.t("Tài sản", "Asset")) }
                    th scope="col" { (lang.t("Dành cho", "Earmarked for")) }
                    th scope="col" { (lang.t("Số lượng", "Quantity")) }
                } }
                tbody {
                    @for h in &lists.holdings {
                        tr {
                            td { (h.asset_id) }
                            td {
                                @match (&h.commune_code, h.category) {
                                    (None, None) => { (lang.t("Chung", "General")) }
                                    (commune, category) => {
                                        @if let Some(c) = commune { (c) " " }
                                        @if let Some(c) = category { (category_name(lang, c)) }
                                    }
                                }
                            }
                            td.num { (h.quantity) }
                        }
                    }
                }
            }
            }
            p.note { (lang.t("Theo số liệu đến mục ", "As of log entry ")) (lists.as_of_size) "." }
        }
    }
}

pub(crate) fn category_name(lang: Lang, category: i32) -> &'static str {
    CATEGORIES
        .iter()
        .find(|(c, _, _)| *c as i32 == category)
        .map_or("?", |(_, vi, en)| lang.t(vi, en))
}

// ------------------------------------------------------------------- forms

/// The event a form describes, checked with the ledger's own field rules
/// (SPEC 7), or the field to correct. Its id and time come from the
/// preview when the form carries them.
fn form_event(
    desk: &Desk,
    lang: Lang,
    kind: Kind,
    values: &Values,
) -> Result<pb::Event, FieldError> {
    let body = forms::body(kind, desk, lang, values)?;
    let occurred_at = match forms::value(values, "occurred_at").parse::<i64>() {
        Ok(seconds) => seconds,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let event_id = match forms::value(values, "event_id") {
        "" => uuid::Uuid::new_v4().to_string(),
        id => id.to_owned(),
    };
    let event = pb::Event {
        event_id,
        org_id: desk.config.org_id.clone(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: occurred_at,
            nanos: 0,
        }),
        body: Some(body),
    };
    aidledger_ledger::decode::event_from_pb(event.clone()).map_err(|rejection| FieldError {
        field: forms::field_of(kind, &rejection.detail),
        message: format!(
            "{} ({}: {})",
            reason_text(lang, rejection.reason.as_str()),
            rejection.reason.as_str(),
            rejection.detail
        ),
    })?;
    Ok(event)
}

fn no_such_form(lang: Lang) -> Response {
    (
        StatusCode::NOT_FOUND,
        page(layout(
            lang,
            "/",
            lang.t("Không có", "Not found"),
            html! { h1 { (lang.t("Không có biểu mẫu này", "No such form")) } },
        )),
    )
        .into_response()
}

async fn form_new(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    axum::extract::Path(segment): axum::extract::Path<String>,
) -> Response {
    match Kind::of_segment(&segment) {
        Some(kind) => form_page(&desk, lang, kind, &Values::new(), None).await,
        None => no_such_form(lang),
    }
}

fn input(
    lang: Lang,
    field: &forms::Field,
    values: &Values,
    lists: &PickLists,
    invalid: bool,
) -> Markup {
    let current = forms::value(values, field.name);
    // The help under the field, and the error above the form when it is
    // about this field.
    let described: Option<String> = {
        let ids: Vec<String> = field
            .help
            .map(|_| format!("{}-help", field.name))
            .into_iter()
            .chain(invalid.then(|| "form-error".to_owned()))
            .collect();
        (!ids.is_empty()).then(|| ids.join(" "))
    };
    let empty_choice = if field.required {
        lang.t("— chọn —", "— choose —")
    } else {
        lang.t("— chung —", "— general —")
    };
    html! {
        @match field.input {
            Input::Text | Input::Number | Input::Month | Input::Date => {
                input id=(field.name) name=(field.name) value=(current) required[field.required]
                    inputmode=[matches!(field.input, Input::Number).then_some("numeric")]
                    placeholder=[match field.input {
                        Input::Month => Some("2025-03"),
                        Input::Date => Some("2025-03-31"),
                        _ => None,
                    }]
                    aria-invalid=(invalid) aria-describedby=[described.as_deref()] autocomplete="off";
            }
            Input::InTransit => {
                select id=(field.name) name=(field.name) required[field.required] aria-invalid=(invalid) {
                    option value="" { (empty_choice) }
                    @for t in &lists.in_transit {
                        option value=(t.transfer_id) selected[t.transfer_id == current] {
                            (t.transfer_id) " · " (t.from_org_id) " · " (t.asset_id) " " (t.quantity)
                        }
                    }
                }
            }
            Input::OrgKinds => {
                select id=(field.name) name=(field.name) required[field.required] aria-invalid=(invalid) {
                    option value="" { (empty_choice) }
                    @for (kind, vi, en) in forms::ORG_KINDS {
                        @let v = (kind as i32).to_string();
                        option value=(v) selected[v == current] { (lang.t(vi, en)) }
                    }
                }
            }
            Input::AnyOrg => {
                select id=(field.name) name=(field.name) required[field.required] aria-invalid=(invalid) {
                    option value="" { (empty_choice) }
                    option value=(lists.own_org_id) selected[lists.own_org_id == current] { (lists.own_org_id) }
                    @for org in lists.recipients.iter().chain(&lists.donors) {
                        option value=(org.org_id) selected[org.org_id == current] {
                            @match &org.name {
                                Some(name) => { (name) " (" (org.org_id) ")" }
                                None => { (lang.t("Nhà hảo tâm ẩn danh", "Anonymous donor")) " (" (org.org_id) ")" }
                            }
                        }
                    }
                }
            }
            Input::Roles => {
                fieldset id=(field.name) aria-invalid=(invalid) {
                    legend { (lang.t(field.vi, field.en)) }
                    @for (role, vi, en) in forms::ROLES {
                        @let name = format!("role_{}", role as i32);
                        label.choice {
                            input type="checkbox" name=(name) checked[forms::value(values, &name) == "on"];
                            " " (lang.t(vi, en))
                        }
                    }
                }
            }
            Input::YesNo => {
                select id=(field.name) name=(field.name) required[field.required] aria-invalid=(invalid) {
                    option value="" { (empty_choice) }
                    option value="yes" selected[current == "yes"] { (lang.t("Có", "Yes")) }
                    option value="no" selected[current == "no"] { (lang.t("Không", "No")) }
                }
            }
            Input::OwnEvents => {
                input id=(field.name) name=(field.name) value=(current) required[field.required]
                    list="own-events" aria-invalid=(invalid) aria-describedby=[described.as_deref()] autocomplete="off";
                datalist id="own-events" {
                    @for e in &lists.own_events {
                        option value=(e.event_id) { (e.label) " (" (lang.t("mục", "entry")) " " (e.seq) ")" }
                    }
                }
            }
            Input::OpenPledges | Input::CancellablePledges => {
                select id=(field.name) name=(field.name) required[field.required] aria-invalid=(invalid) {
                    option value="" { (empty_choice) }
                    @for p in lists.open_pledges.iter().filter(|p| p.to_agency || field.input == Input::CancellablePledges) {
                        option value=(p.pledge_id) selected[p.pledge_id == current] {
                            (p.pledge_id) " · " (p.donor_org_id) " · " (p.asset_id) " " (p.received) "/" (p.quantity)
                        }
                    }
                }
            }
            Input::Donors | Input::Recipients | Input::PledgeRecipients => {
                select id=(field.name) name=(field.name) required[field.required] aria-invalid=(invalid) {
                    option value="" { (empty_choice) }
                    @if field.input == Input::PledgeRecipients {
                        option value=(lists.own_org_id) selected[lists.own_org_id == current] {
                            (lang.t("Đơn vị này", "This agency")) " (" (lists.own_org_id) ")"
                        }
                    }
                    @for org in if field.input == Input::Donors { &lists.donors } else { &lists.recipients } {
                        option value=(org.org_id) selected[org.org_id == current] {
                            @match &org.name {
                                Some(name) => { (name) " (" (org.org_id) ")" }
                                None => { (lang.t("Nhà hảo tâm ẩn danh", "Anonymous donor")) " (" (org.org_id) ")" }
                            }
                        }
                    }
                }
            }
            Input::Assets => {
                select id=(field.name) name=(field.name) required[field.required] aria-invalid=(invalid) {
                    @for asset in &lists.assets {
                        option value=(asset) selected[asset == current] { (asset) }
                    }
                }
            }
            Input::Communes => {
                select id=(field.name) name=(field.name) required[field.required] aria-invalid=(invalid) aria-describedby=[described.as_deref()] {
                    option value="" { (empty_choice) }
                    @for commune in &lists.communes {
                        option value=(commune.code) selected[commune.code == current] { (commune.name) " (" (commune.code) ")" }
                    }
                }
            }
            Input::Categories => {
                select id=(field.name) name=(field.name) required[field.required] aria-invalid=(invalid) {
                    option value="" { (empty_choice) }
                    @for (category, vi, en) in CATEGORIES {
                        @let value = (category as i32).to_string();
                        option value=(value) selected[value == current] { (lang.t(vi, en)) }
                    }
                }
            }
        }
        @if let Some((vi, en)) = field.help {
            p.help id=(format!("{}-help", field.name)) { (lang.t(vi, en)) }
        }
    }
}

async fn form_page(
    desk: &Desk,
    lang: Lang,
    kind: Kind,
    values: &Values,
    error: Option<&FieldError>,
) -> Response {
    let lists = match picklists::read(
        &desk.config.projector_url,
        &desk.config.org_id,
        kind == Kind::Reversal,
    )
    .await
    {
        Ok(lists) => lists,
        Err(error) => return unavailable(lang, &error),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let here = format!("/{}/new", kind.segment());
    let markup = layout(
        lang,
        &here,
        kind.title(lang),
        html! {
            h1 { (kind.title(lang)) }
            (role_warning(lang, &desk.standing(), kind.roles()))
            @if let Some(error) = error {
                p.error role="alert" id="form-error" { (lang.t("Cần sửa: ", "To correct: ")) (error.message) }
            }
            @if kind != Kind::Receipt {
                details {
                    summary { (lang.t("Số dư hiện có của đơn vị", "What the agency holds now")) }
                    (holdings(lang, &lists))
                }
            }
            p.live id="live-check" aria-live="polite" {}
            form method="post" action=(lang.href(&format!("/{}/preview", kind.segment())))
                data-check=(lang.href(&format!("/{}/check", kind.segment()))) {
                input type="hidden" name="token" value=(desk.form_token);
                @for field in kind.fields() {
                    @if field.input != Input::Roles {
                        label for=(field.name) { (lang.t(field.vi, field.en)) }
                    }
                    (input(lang, field, values, &lists, error.is_some_and(|e| e.field == field.name)))
                }
                button type="submit" { (lang.t("Xem trước", "Preview")) }
            }
        },
    );
    (status, page(markup)).into_response()
}

/// Whether a form lacks this desk's token: posted from a page elsewhere.
fn forged(desk: &Desk, values: &Values) -> bool {
    forms::value(values, "token") != desk.form_token
}

pub(crate) fn refused_forgery(lang: Lang) -> Response {
    (
        StatusCode::FORBIDDEN,
        page(layout(
            lang,
            "/",
            lang.t("Không nhận", "Refused"),
            html! {
                h1 { (lang.t("Biểu mẫu không đến từ bàn làm việc này", "This form did not come from this desk")) }
                p { a href=(lang.href("/")) { (lang.t("Về trang chính", "Back to the desk")) } }
            },
        )),
    )
        .into_response()
}

fn unavailable(lang: Lang, error: &anyhow::Error) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        page(layout(
            lang,
            "/",
            lang.t("Tạm thời không dùng được", "Unavailable"),
            html! {
                h1 { (lang.t("Chưa đọc được số liệu tổng hợp", "The projections could not be read")) }
                p.error role="alert" { (format!("{error:#}")) }
            },
        )),
    )
        .into_response()
}

/// Hidden copies of the form's fields, to carry a preview to its
/// submission unchanged, with the event id and time it fixed.
fn hidden_fields(desk: &Desk, values: &Values, event: &pb::Event) -> Markup {
    let seconds = event.occurred_at.as_ref().map_or(0, |t| t.seconds);
    html! {
        input type="hidden" name="token" value=(desk.form_token);
        @for (name, value) in values.iter().filter(|(name, _)| !matches!(name.as_str(), "token" | "event_id" | "occurred_at")) {
            input type="hidden" name=(name) value=(value);
        }
        input type="hidden" name="event_id" value=(event.event_id);
        input type="hidden" name="occurred_at" value=(seconds);
    }
}

/// The form's kind and event, judged: or the answer that refuses it (no
/// such form, a form from elsewhere, or the field to correct).
async fn judged(
    desk: &Desk,
    lang: Lang,
    segment: &str,
    values: &Values,
) -> Result<(Kind, pb::Event), Box<Response>> {
    let Some(kind) = Kind::of_segment(segment) else {
        return Err(Box::new(no_such_form(lang)));
    };
    if forged(desk, values) {
        return Err(Box::new(refused_forgery(lang)));
    }
    match form_event(desk, lang, kind, values) {
        Ok(event) => Ok((kind, event)),
        Err(error) => Err(Box::new(
            form_page(desk, lang, kind, values, Some(&error)).await,
        )),
    }
}

async fn form_preview(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    axum::extract::Path(segment): axum::extract::Path<String>,
    Form(values): Form<Values>,
) -> Response {
    let (kind, event) = match judged(&desk, lang, &segment, &values).await {
        Ok(judged) => judged,
        Err(response) => return *response,
    };
    let body = event.body.as_ref().expect("a form builds a body");
    let lists = picklists::read(&desk.config.projector_url, &desk.config.org_id, false)
        .await
        .ok();
    let warnings = text_warnings(forms::note(body));
    page(layout(
        lang,
        &format!("/{}/new", kind.segment()),
        lang.t("Xem trước", "Preview"),
        html! {
            h1 { (lang.t("Xem trước: những gì sẽ được công bố", "Preview: what will become public")) }
            p { (lang.t("Sau khi ký, các thông tin dưới đây được ghi vĩnh viễn vào sổ cái công khai.",
                        "Once signed, what follows is in the public log for good.")) }
            dl.preview {
                div { dt { (lang.t("Đơn vị", "Organisation")) } dd { (event.org_id) } }
                @for (label, value) in forms::preview_rows(lang, body, lists.as_ref()) {
                    div { dt { (label) } dd { (value) } }
                }
                div { dt { (lang.t("Mã sự kiện", "Event id")) } dd { code { (event.event_id) } } }
            }
            @if !warnings.is_empty() {
                div.warning role="alert" {
                    p { strong { (lang.t("Lưu ý về ghi chú (SPEC 7.5):", "About the note (SPEC 7.5):")) } }
                    ul { @for warning in &warnings { li { (warning.to_string()) } } }
                    p { (lang.t("Ghi chú được công bố mãi mãi: không ghi tên, số định danh, số điện thoại hay số tài khoản của trẻ em hoặc nhà hảo tâm ẩn danh.",
                                "The note is public forever: no name, identity, phone or account number of a child or a hidden donor.")) }
                }
            }
            form method="post" action=(lang.href(&format!("/{}/submit", kind.segment()))) {
                (hidden_fields(&desk, &values, &event))
                button type="submit" { (lang.t("Ký và gửi vào sổ cái", "Sign and submit to the ledger")) }
            }
            p { a href=(lang.href(&format!("/{}/new", kind.segment()))) { (lang.t("Làm lại từ đầu", "Start again")) } }
        },
    ))
}

/// The answer of a check as the clerk types: the field to correct and
/// why, or nothing.
#[derive(Debug, serde::Serialize)]
struct LiveCheck {
    field: Option<&'static str>,
    message: Option<String>,
}

/// Judges a form as it is being filled in, with the same rules as the
/// preview; empty required fields are not yet mistakes.
async fn form_check(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    axum::extract::Path(segment): axum::extract::Path<String>,
    Form(values): Form<Values>,
) -> Response {
    let Some(kind) = Kind::of_segment(&segment) else {
        return no_such_form(lang);
    };
    if forged(&desk, &values) {
        return refused_forgery(lang);
    }
    // Roles are checkboxes named `role_N`: filled when one is ticked.
    let filled = |f: &forms::Field| match f.input {
        Input::Roles => values.keys().any(|k| k.starts_with("role_")),
        _ => !forms::value(&values, f.name).is_empty(),
    };
    let unfilled = kind.fields().iter().any(|f| f.required && !filled(f));
    let answer = match form_event(&desk, lang, kind, &values) {
        Err(error) if !(unfilled && forms::value(&values, error.field).is_empty()) => LiveCheck {
            field: Some(error.field),
            message: Some(error.message),
        },
        _ => LiveCheck {
            field: None,
            message: None,
        },
    };
    axum::Json(answer).into_response()
}

/// Where the public feed shows what `body` recorded.
fn public_path(body: &pb::event::Body) -> String {
    match body {
        pb::event::Body::Receipt(r) => format!("/receipts/{}", r.receipt_id),
        pb::event::Body::Delivery(d) => format!("/communes/{}", d.commune_code),
        pb::event::Body::PublishNeed(n) => format!("/communes/{}", n.commune_code),
        pb::event::Body::RegisterCommune(c) => format!("/communes/{}", c.commune_code),
        pb::event::Body::CancelPledge(_) => "/pledges".to_owned(),
        _ => "/log".to_owned(),
    }
}

async fn form_submit(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    axum::extract::Path(segment): axum::extract::Path<String>,
    Form(values): Form<Values>,
) -> Response {
    let (kind, event) = match judged(&desk, lang, &segment, &values).await {
        Ok(judged) => judged,
        Err(response) => return *response,
    };
    let record_id = forms::value(&values, kind.id_field()).to_owned();
    let public_path = public_path(event.body.as_ref().expect("a form builds a body"));
    let signed = desk.config.ledger.sign(&desk.config.key, &event);
    match desk.config.ledger.append(signed, false).await {
        Ok(appended) => {
            tracing::info!(
                seq = appended.seq,
                duplicate = appended.duplicate,
                kind = kind.segment(),
                "recorded"
            );
            let public_page = desk
                .config
                .feed_url
                .as_ref()
                .map(|feed| format!("{}{public_path}", feed.trim_end_matches('/')));
            page(layout(
                lang,
                "/",
                lang.t("Đã ghi", "Recorded"),
                html! {
                    h1 { (lang.t("Đã ghi vào sổ cái", "Recorded in the ledger")) }
                    p.done role="status" {
                        strong { (record_id) }
                        (lang.t(" nằm ở mục số ", " is entry number "))
                        strong id="seq" { (appended.seq) }
                        (lang.t(" của sổ cái.", " of the log."))
                        @if appended.duplicate {
                            " " (lang.t("(Đã được ghi từ trước; không ghi lại lần nữa.)", "(It was recorded before; nothing was recorded twice.)"))
                        }
                    }
                    @if let Some(url) = &public_page {
                        p { (lang.t("Trang công khai: ", "Public page: ")) a id="public-page" href=(url) { (url) } }
                        div.qr { (qr_svg(url)) }
                        p.note { (lang.t("In trang này (Ctrl+P) để làm biên nhận.", "Print this page (Ctrl+P) as a receipt.")) }
                    }
                    p { a href=(lang.href(&format!("/{}/new", kind.segment()))) { (lang.t("Ghi khoản tiếp theo", "Record another")) } }
                },
            ))
        }
        Err(error) => refused_by_ledger(lang, &error, &format!("/{}/new", kind.segment())),
    }
}

fn qr_svg(url: &str) -> Markup {
    match qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(180, 180)
                .quiet_zone(true)
                .build();
            // The renderer's XML declaration does not belong inside HTML.
            let svg = svg
                .find("<svg")
                .map_or(svg.as_str(), |start| &svg[start..])
                .replacen(
                    "<svg",
                    "<svg role=\"img\" aria-label=\"QR code of the public page / Mã QR của trang công khai\"",
                    1,
                );
            html! { (PreEscaped(svg)) }
        }
        Err(_) => html! {},
    }
}

/// A refusal in the clerk's words for the ones a clerk can act on, with
/// the ledger's reason (SPEC 6.2) and detail beside it.
pub(crate) fn refused_by_ledger(lang: Lang, error: &ClientError, back: &str) -> Response {
    let (status, lead, reason, detail) = match error {
        ClientError::Rejected(rejected) => {
            let lead = reason_text(lang, &rejected.reason);
            (StatusCode::UNPROCESSABLE_ENTITY, lead, rejected.reason.clone(), rejected.message.clone())
        }
        other => (
            StatusCode::BAD_GATEWAY,
            lang.t(
                "Chưa gửi được tới sổ cái. Gửi lại cùng bản xem trước là an toàn: sổ cái chỉ ghi một lần.",
                "The ledger could not be reached. Submitting the same preview again is safe: the ledger records it once.",
            ),
            String::new(),
            other.to_string(),
        ),
    };
    (
        status,
        page(layout(
            lang,
            "/",
            lang.t("Không ghi được", "Not recorded"),
            html! {
                h1 { (lang.t("Chưa ghi được", "Not recorded")) }
                p.error role="alert" id="refusal" { (lead) }
                @if !reason.is_empty() { p { (lang.t("Lý do (SPEC 6.2): ", "Reason (SPEC 6.2): ")) code { (reason) } } }
                p.detail { (detail) }
                p { a href=(lang.href(back)) { (lang.t("Quay lại", "Back")) } }
            },
        )),
    )
        .into_response()
}

/// What a refusal (SPEC 6.2) means for a clerk, in the clerk's language,
/// for the reasons a clerk can act on; the reason code is shown beside it.
pub(crate) fn reason_text(lang: Lang, reason: &str) -> &'static str {
    match reason {
        "ROLE_NOT_ALLOWED" => lang.t(
            "Khoá của bàn làm việc này không có quyền ghi loại sự kiện này (ví dụ ghi khoản tiếp nhận cần quyền RECEIVE, ghi lần trao cần quyền DELIVER). Hãy đề nghị cơ quan chủ trì cấp quyền cho khoá.",
            "This desk's key has no role that allows this kind of event (recording a receipt needs RECEIVE, a delivery DELIVER). Ask the authority to give the key that role.",
        ),
        "UNKNOWN_KEY" => lang.t(
            "Khoá của bàn làm việc này chưa được đăng ký trong sổ cái. Hãy gửi khoá công khai (trang chính) cho cơ quan chủ trì để đăng ký.",
            "This desk's key is not registered in the ledger. Send its public key (on the home page) to the authority to register.",
        ),
        "KEY_REVOKED" => lang.t("Khoá này đã bị thu hồi.", "This key was revoked."),
        "KEY_ORG_MISMATCH" => lang.t(
            "Khoá này thuộc một đơn vị khác với đơn vị của bàn làm việc (--org).",
            "This key belongs to another organisation than the desk's (--org).",
        ),
        "ID_EXISTS" => lang.t(
            "Mã này đã được dùng cho một khoản khác; hãy chọn mã khác.",
            "This id is already used by another record; choose another.",
        ),
        "UNKNOWN_COMMUNE" => lang.t("Không có xã này trong sổ cái.", "No such commune in the ledger."),
        "UNKNOWN_ORGANIZATION" | "UNKNOWN_ASSET" | "UNKNOWN_PLEDGE" => lang.t(
            "Một mục được chọn không có trong sổ cái.",
            "Something chosen is not in the ledger.",
        ),
        "EARMARK_MISMATCH" => lang.t(
            "Nguồn dành riêng cho một xã hay lĩnh vực chỉ trao được cho đúng xã, đúng lĩnh vực đó.",
            "Funds earmarked for a commune or category can only be delivered to that commune, in that category.",
        ),
        "INSUFFICIENT_BALANCE" => lang.t(
            "Số dư của đơn vị trong nguồn này (tài sản, dành riêng) không đủ.",
            "The agency's balance in this pool (asset, earmark) does not cover it.",
        ),
        "OCCURRED_IN_FUTURE" => lang.t(
            "Ngày này ở tương lai: chỉ ghi được những gì đã xảy ra.",
            "This date is in the future: only what has happened can be recorded.",
        ),
        "RATE_LIMITED" => lang.t(
            "Khoá này đã gửi quá nhiều trong thời gian ngắn; hãy thử lại sau ít phút.",
            "This key sent too much too fast; try again in a few minutes.",
        ),
        "EVENT_ID_EXISTS" => lang.t(
            "Sự kiện này đã được ghi với nội dung khác; một mục đã ghi không sửa được, chỉ huỷ được.",
            "This event was recorded with other values; a recorded entry cannot be edited, only reversed.",
        ),
        "SELF_TRANSFER" => lang.t(
            "Không chuyển cho chính đơn vị mình.",
            "A transfer cannot go to the agency itself.",
        ),
        "BATCH_TOO_LARGE" => lang.t(
            "Sổ cái nhận ít sự kiện hơn trong một lần gửi; hãy báo người quản trị.",
            "The ledger takes fewer events per request; tell its operator.",
        ),
        "INVALID_ID" => lang.t(
            "Mã chỉ gồm chữ không dấu, số và . _ : - (tối đa 64 ký tự).",
            "An id is letters without accents, digits and . _ : - (64 at most).",
        ),
        "INVALID_QUANTITY" => lang.t("Số lượng không hợp lệ.", "Not a valid quantity."),
        "INVALID_DATE" => lang.t("Ngày hoặc kỳ không hợp lệ.", "Not a valid date or period."),
        "INVALID_ENUM" => lang.t("Giá trị không có trong danh sách.", "Not one of the allowed values."),
        "MISSING_FIELD" => lang.t("Ô này bắt buộc.", "This cell is required."),
        "INVALID_TEXT" => lang.t("Văn bản không hợp lệ (ký tự điều khiển hoặc quá dài).", "Not valid text (control characters, or too long)."),
        _ => lang.t("Sổ cái không nhận sự kiện này.", "The ledger refused this event."),
    }
}

/// Whether a request's `Origin`, if it has one, is this desk's own.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => host.is_some_and(|host| origin == format!("http://{host}")),
    }
}

// ------------------------------------------------------------------ import

/// `/templates/{kind}.xlsx` or `.csv`.
async fn template(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (segment, extension) = file.rsplit_once('.').unwrap_or((&file, ""));
    let Some(sheet) = import::Sheet::of_segment(segment) else {
        return (StatusCode::NOT_FOUND, "no such template").into_response();
    };
    let name = format!("mau-template-{segment}.{extension}");
    match extension {
        "xlsx" => match import::template_xlsx(sheet) {
            Ok(bytes) => spreadsheet(&name, bytes),
            Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
        },
        "csv" => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            import::template_csv(sheet),
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "no such template").into_response(),
    }
}

fn spreadsheet(file_name: &str, bytes: Vec<u8>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

async fn import_page(State(desk): State<AppState>, Extension(lang): Extension<Lang>) -> Response {
    page(import_layout(&desk, lang, None))
}

fn import_layout(desk: &Desk, lang: Lang, error: Option<&str>) -> Markup {
    layout(
        lang,
        "/import",
        lang.t("Nhập từ bảng tính", "Import a spreadsheet"),
        html! {
            h1 { (lang.t("Nhập từ bảng tính", "Import from a spreadsheet")) }
            ol {
                li {
                    (lang.t("Tải mẫu (trang thứ hai của tệp XLSX giải thích từng cột):",
                            "Download a template (the XLSX file's second sheet explains each column):"))
                    ul {
                        @for sheet in import::SHEETS {
                            li {
                                (sheet.kind.title(lang)) ": "
                                a href=(format!("/templates/{}.xlsx", sheet.kind.segment())) { "XLSX" } " · "
                                a href=(format!("/templates/{}.csv", sheet.kind.segment())) { "CSV" }
                            }
                        }
                    }
                }
                li { (lang.t("Điền mỗi sự kiện vào một dòng.", "Fill in one event per row.")) }
                li { (lang.t("Tải tệp lên: bàn làm việc kiểm tra từng dòng trước khi ký bất cứ điều gì.",
                             "Upload it: the desk checks every row before anything is signed.")) }
            }
            @if let Some(error) = error {
                p.error role="alert" id="upload-error" { (error) }
            }
            form method="post" action=(lang.href("/import/check")) enctype="multipart/form-data" {
                input type="hidden" name="token" value=(desk.form_token);
                label for="kind" { (lang.t("Tệp ghi gì", "What the file records")) }
                select id="kind" name="kind" required {
                    @for sheet in import::SHEETS.into_iter().filter(|s| s.kind.roles().iter().any(|r| desk.standing().allows(*r))) {
                        option value=(sheet.kind.segment()) { (sheet.kind.title(lang)) }
                    }
                }
                label for="file" { (lang.t("Tệp XLSX hoặc CSV", "An XLSX or CSV file")) }
                input id="file" name="file" type="file" required accept=".xlsx,.csv,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
                button type="submit" { (lang.t("Kiểm tra", "Check")) }
            }
        },
    )
}

async fn import_check(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    mut multipart: axum::extract::Multipart,
) -> Response {
    let mut token = String::new();
    let mut kind = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let file_name = field.file_name().unwrap_or("upload").to_owned();
                match field.bytes().await {
                    Ok(bytes) if name == "token" => {
                        token = String::from_utf8_lossy(&bytes).into_owned();
                    }
                    Ok(bytes) if name == "file" => file = Some((file_name, bytes.to_vec())),
                    Ok(bytes) if name == "kind" => {
                        kind = String::from_utf8_lossy(&bytes).into_owned()
                    }
                    Ok(_) => {}
                    Err(error) => return bad_upload(&desk, lang, &error.to_string()),
                }
            }
            Ok(None) => break,
            Err(error) => return bad_upload(&desk, lang, &error.to_string()),
        }
    }
    if token != desk.form_token {
        return refused_forgery(lang);
    }
    let Some((file_name, bytes)) = file.filter(|(_, bytes)| !bytes.is_empty()) else {
        return bad_upload(&desk, lang, lang.t("Chưa chọn tệp.", "No file was chosen."));
    };
    let lists = match picklists::read(&desk.config.projector_url, &desk.config.org_id, false).await
    {
        Ok(lists) => lists,
        Err(error) => return unavailable(lang, &error),
    };
    let Some(sheet) = import::Sheet::of_segment(&kind) else {
        return bad_upload(
            &desk,
            lang,
            lang.t(
                "Chọn loại sự kiện của tệp.",
                "Choose what the file records.",
            ),
        );
    };
    let checked = match import::check(&desk, lang, sheet, &file_name, &bytes, &lists).await {
        Ok(checked) => Arc::new(checked),
        Err(import::Unreadable(why)) => return bad_upload(&desk, lang, &why),
    };
    {
        let mut uploads = desk.uploads.lock().expect("uploads lock");
        uploads.retain(|u| u.id != checked.id);
        uploads.push(Arc::clone(&checked));
        if uploads.len() > UPLOADS_KEPT {
            uploads.remove(0);
        }
    }
    let status = if checked.problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let markup = layout(
        lang,
        "/import",
        lang.t("Kết quả kiểm tra", "Check results"),
        html! {
            h1 { (lang.t("Kết quả kiểm tra ", "Check results for ")) (checked.file_name) }
            p { (lang.t("Mỗi dòng: ", "Each row: ")) (checked.kind.title(lang)) }
            p id="summary" {
                (checked.rows) (lang.t(" dòng: ", " rows: "))
                span id="to-record" { (checked.events.len()) } (lang.t(" sẽ được ghi, ", " to record, "))
                span id="already" { (checked.recorded.len()) } (lang.t(" đã có trong sổ cái, ", " already in the ledger, "))
                span id="problems" { (checked.problems.len()) } (lang.t(" cần sửa.", " to correct."))
            }
            @if checked.problems.is_empty() {
                @if checked.events.is_empty() {
                    p { (lang.t("Không có gì mới để ghi: mọi dòng đã có trong sổ cái.", "Nothing new to record: every row is in the ledger already.")) }
                } @else {
                    form method="post" action=(lang.href("/import/submit")) {
                        input type="hidden" name="token" value=(desk.form_token);
                        input type="hidden" name="upload" value=(checked.id);
                        button type="submit" { (lang.t("Ký và gửi ", "Sign and submit ")) (checked.events.len()) (lang.t(" dòng", " rows")) }
                    }
                }
            } @else {
                p.error role="alert" { (lang.t("Chưa ký dòng nào. Hãy sửa các dòng dưới đây trong tệp rồi tải lên lại.",
                                                "Nothing was signed. Correct the rows below in the file and upload it again.")) }
                p { a href=(lang.href(&format!("/import/{}/report.xlsx", checked.id))) { (lang.t("Tải báo cáo (XLSX)", "Download the report (XLSX)")) } }
                div.table-scroll tabindex="0" role="region" aria-label=(lang.t("Bảng", "Table")) {
                    table id="report" {
                    thead { tr {
                        th scope="col" { (lang.t("Dòng", "Row")) }
                        th scope="col" { (lang.t("Cột", "Column")) }
                        th scope="col" { (lang.t("Lý do (SPEC 6.2)", "Reason (SPEC 6.2)")) }
                        th scope="col" { (lang.t("Giải thích", "Explanation")) }
                    } }
                    tbody {
                        @for problem in &checked.problems {
                            tr {
                                td.num { (problem.row) }
                                td { (problem.column) }
                                td { code { (problem.reason) } }
                                td { (problem.message) }
                            }
                        }
                    }
                }
                }
            }
            p { a href=(lang.href("/import")) { (lang.t("Tải lên tệp khác", "Upload another file")) } }
        },
    );
    (status, page(markup)).into_response()
}

fn bad_upload(desk: &Desk, lang: Lang, why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        page(import_layout(desk, lang, Some(why))),
    )
        .into_response()
}

fn checked_upload(desk: &Desk, id: &str) -> Option<Arc<import::Checked>> {
    desk.uploads
        .lock()
        .expect("uploads lock")
        .iter()
        .find(|u| u.id == id)
        .cloned()
}

async fn import_report(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Some(checked) = checked_upload(&desk, &id) else {
        return (StatusCode::NOT_FOUND, "no such upload").into_response();
    };
    match import::report_xlsx(lang, &checked) {
        Ok(bytes) => spreadsheet(
            &format!("{}-report.xlsx", lang.t("bao-cao", "report")),
            bytes,
        ),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SubmitUpload {
    token: String,
    upload: String,
}

/// How a submission of an upload goes: what the progress page shows.
#[derive(Debug, Default)]
struct Progress {
    total: usize,
    sent: usize,
    recorded: usize,
    duplicates: usize,
    refused: Vec<(usize, String, String)>,
    /// The ledger stopped answering: why.
    failed: Option<String>,
    done: bool,
}

async fn import_submit(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    Form(form): Form<SubmitUpload>,
) -> Response {
    if form.token != desk.form_token {
        return refused_forgery(lang);
    }
    let Some(checked) = checked_upload(&desk, &form.upload).filter(|c| c.problems.is_empty())
    else {
        return bad_upload(
            &desk,
            lang,
            lang.t(
                "Tệp này chưa được kiểm tra (hoặc còn dòng cần sửa); hãy tải lên lại.",
                "This file has not been checked (or has rows to correct); upload it again.",
            ),
        );
    };
    // One submission per upload at a time: a second click follows the
    // first one's progress (and a finished one may run again: the ledger
    // records each row once).
    let progress = {
        let mut submissions = desk.submissions.lock().expect("submissions lock");
        let running = submissions
            .get(&checked.id)
            .is_some_and(|p| !p.lock().expect("progress lock").done);
        if running {
            None
        } else {
            let progress = Arc::new(std::sync::Mutex::new(Progress {
                total: checked.events.len(),
                ..Progress::default()
            }));
            // Kept as long as their upload is.
            let kept: Vec<String> = desk
                .uploads
                .lock()
                .expect("uploads lock")
                .iter()
                .map(|u| u.id.clone())
                .collect();
            submissions.retain(|id, _| kept.contains(id));
            submissions.insert(checked.id.clone(), Arc::clone(&progress));
            Some(progress)
        }
    };
    if let Some(progress) = progress {
        tokio::spawn(submit_upload(
            Arc::clone(&desk),
            Arc::clone(&checked),
            progress,
        ));
    }
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            lang.href(&format!("/import/{}/progress", checked.id)),
        )],
    )
        .into_response()
}

/// Signs and submits a checked upload in batches, keeping `progress`.
async fn submit_upload(
    desk: Arc<Desk>,
    checked: Arc<import::Checked>,
    progress: Arc<std::sync::Mutex<Progress>>,
) {
    for batch in checked.events.chunks(IMPORT_BATCH) {
        let signed = batch
            .iter()
            .map(|(_, event)| desk.config.ledger.sign(&desk.config.key, event))
            .collect();
        let answer = desk.config.ledger.append_batch(signed).await;
        let mut p = progress.lock().expect("progress lock");
        match answer {
            Ok(results) => {
                for ((row, _), result) in batch.iter().zip(results) {
                    match result {
                        Ok(appended) if appended.duplicate => p.duplicates += 1,
                        Ok(_) => p.recorded += 1,
                        Err(rejected) => p.refused.push((*row, rejected.reason, rejected.message)),
                    }
                }
                p.sent += batch.len();
                tracing::info!(sent = p.sent, total = p.total, "import batch submitted");
            }
            Err(error) => {
                tracing::warn!(sent = p.sent, %error, "import interrupted");
                p.failed = Some(error.to_string());
                break;
            }
        }
    }
    progress.lock().expect("progress lock").done = true;
}

fn progress_of(desk: &Desk, id: &str) -> Option<Arc<std::sync::Mutex<Progress>>> {
    desk.submissions
        .lock()
        .expect("submissions lock")
        .get(id)
        .cloned()
}

/// The progress as JSON, for the page's script.
async fn import_progress_json(
    State(desk): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Some(progress) = progress_of(&desk, &id) else {
        return (StatusCode::NOT_FOUND, "no such submission").into_response();
    };
    #[derive(serde::Serialize)]
    struct Sent {
        sent: usize,
        total: usize,
        done: bool,
    }
    let p = progress.lock().expect("progress lock");
    axum::Json(Sent {
        sent: p.sent,
        total: p.total,
        done: p.done,
    })
    .into_response()
}

async fn import_progress(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Some(progress) = progress_of(&desk, &id) else {
        return bad_upload(
            &desk,
            lang,
            lang.t("Không có lần gửi này.", "No such submission."),
        );
    };
    let p = progress.lock().expect("progress lock");
    let here = format!("/import/{id}/progress");
    if !p.done {
        return page(layout(
            lang,
            &here,
            lang.t("Đang gửi", "Submitting"),
            html! {
                h1 { (lang.t("Đang ký và gửi", "Signing and submitting")) }
                p id="import-progress" role="status" aria-live="polite"
                    data-poll=(lang.href(&format!("/import/{id}/progress.json"))) {
                    span id="sent" { (p.sent) } (lang.t(" / ", " of ")) (p.total) (lang.t(" dòng đã gửi.", " rows sent."))
                }
                progress max=(p.total) value=(p.sent) aria-label=(lang.t("Tiến độ", "Progress")) {}
                p { a href=(lang.href(&here)) { (lang.t("Xem lại tiến độ", "See the progress again")) } }
            },
        ));
    }
    if let Some(failed) = &p.failed {
        return (
            StatusCode::BAD_GATEWAY,
            page(layout(
                lang,
                &here,
                lang.t("Chưa gửi hết", "Not all submitted"),
                html! {
                    h1 { (lang.t("Chưa gửi hết", "Not all submitted")) }
                    p.error role="alert" id="refusal" {
                        (lang.t("Sổ cái ngừng trả lời giữa chừng. Đã ghi: ", "The ledger stopped answering midway. Recorded: "))
                        (p.recorded) ". "
                        (lang.t("Tải lại cùng tệp lên là an toàn: những dòng đã ghi sẽ hiện là đã có, phần còn lại được ghi.",
                                "Uploading the same file again is safe: the rows recorded show as already there, and the rest get recorded."))
                    }
                    p.detail { (failed) }
                    p { a href=(lang.href("/import")) { (lang.t("Tải tệp lên lại", "Upload the file again")) } }
                },
            )),
        )
            .into_response();
    }
    page(layout(
        lang,
        &here,
        lang.t("Đã gửi", "Submitted"),
        html! {
            h1 { (lang.t("Đã gửi vào sổ cái", "Submitted to the ledger")) }
            p.done role="status" {
                span id="recorded" { (p.recorded) } (lang.t(" dòng đã được ghi; ", " rows recorded; "))
                span id="duplicates" { (p.duplicates) } (lang.t(" đã có từ trước; ", " were there already; "))
                span id="refused" { (p.refused.len()) } (lang.t(" bị từ chối.", " refused."))
            }
            @if !p.refused.is_empty() {
                div.table-scroll tabindex="0" role="region" aria-label=(lang.t("Bảng", "Table")) {
                    table {
                        thead { tr {
                            th scope="col" { (lang.t("Dòng", "Row")) }
                            th scope="col" { (lang.t("Lý do (SPEC 6.2)", "Reason (SPEC 6.2)")) }
                            th scope="col" { (lang.t("Giải thích", "Explanation")) }
                        } }
                        tbody {
                            @for (row, reason, message) in &p.refused {
                                tr { td.num { (row) } td { code { (reason) } } td { (reason_text(lang, reason)) " (" (message) ")" } }
                            }
                        }
                    }
                }
            }
            p { a href=(lang.href("/import")) { (lang.t("Nhập tệp khác", "Import another file")) } }
        },
    ))
}
