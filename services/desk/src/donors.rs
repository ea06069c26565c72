//! Registering a donor (SPEC 7.5). A donor who asked not to be named gets
//! a random org id, and the log gets only the commitment to the name; the
//! name and the salt go on an acknowledgement the clerk prints or saves and
//! hands to the donor, the same file `aidctl audit verify-donor` checks.
//! A named donor is registered with the name and an id the clerk chooses.
//!
//! The preview fixes the event id, the org id and the salt, so submitting
//! it twice records once. The name is never logged.

use std::collections::BTreeMap;

use aidledger_client::ClientError;
use aidledger_ledger::privacy::{NAME_SALT_BYTES, name_commitment};
use aidledger_wire::pb;
use axum::extract::{Extension, Form, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use rand_core::RngCore as _;

use crate::acknowledgement::{Acknowledgement, random_org_id};
use crate::forms::{FieldError, value};
use crate::{
    AppState, Desk, Lang, layout, page, reason_text, refused_by_ledger, refused_forgery,
    role_warning,
};

type Values = BTreeMap<String, String>;

const KINDS: [(pb::OrgKind, &str, &str); 3] = [
    (pb::OrgKind::DonorIndividual, "Cá nhân", "An individual"),
    (pb::OrgKind::DonorBusiness, "Doanh nghiệp", "A business"),
    (pb::OrgKind::DonorOrganization, "Tổ chức", "An organisation"),
];

fn hidden(values: &Values) -> bool {
    value(values, "public_name") != "yes"
}

/// The registration `values` describe, with the id, salt and event id the
/// preview fixed (drawn here when the form has none yet).
fn registration(
    desk: &Desk,
    lang: Lang,
    values: &Values,
) -> Result<(pb::Event, [u8; NAME_SALT_BYTES]), FieldError> {
    let name = value(values, "name");
    let kind = value(values, "kind")
        .parse::<i32>()
        .ok()
        .filter(|k| KINDS.iter().any(|(kind, _, _)| *kind as i32 == *k))
        .ok_or_else(|| FieldError {
            field: "kind",
            message: lang
                .t("Chọn loại nhà tài trợ.", "Choose what kind of donor.")
                .to_owned(),
        })?;
    let salt: [u8; NAME_SALT_BYTES] = match hex::decode(value(values, "salt"))
        .ok()
        .and_then(|s| s.try_into().ok())
    {
        Some(salt) => salt,
        None => {
            let mut salt = [0u8; NAME_SALT_BYTES];
            rand_core::OsRng.fill_bytes(&mut salt);
            salt
        }
    };
    let hidden = hidden(values);
    let org_id = match (hidden, value(values, "org_id")) {
        (true, "") => random_org_id(),
        (_, id) => id.to_owned(),
    };
    let event = pb::Event {
        event_id: match value(values, "event_id") {
            "" => uuid::Uuid::new_v4().to_string(),
            id => id.to_owned(),
        },
        org_id: desk.config.org_id.clone(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: value(values, "occurred_at").parse().unwrap_or_else(|_| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
            }),
            nanos: 0,
        }),
        body: Some(pb::event::Body::RegisterOrg(pb::RegisterOrganization {
            org_id,
            name: if hidden {
                String::new()
            } else {
                name.to_owned()
            },
            kind,
            public_name: !hidden,
            name_commitment: if hidden {
                name_commitment(&salt, name).to_vec().into()
            } else {
                Default::default()
            },
            ..Default::default()
        })),
    };
    if name.is_empty() {
        return Err(FieldError {
            field: "name",
            message: reason_text(lang, "MISSING_FIELD").to_owned(),
        });
    }
    aidledger_ledger::decode::event_from_pb(event.clone()).map_err(|rejection| FieldError {
        field: if rejection.detail.contains("org_id") {
            "org_id"
        } else {
            "name"
        },
        message: format!(
            "{} ({}: {})",
            reason_text(lang, rejection.reason.as_str()),
            rejection.reason.as_str(),
            rejection.detail
        ),
    })?;
    Ok((event, salt))
}

pub(crate) async fn form(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
) -> Response {
    form_page(&desk, lang, &Values::new(), None)
}

fn form_page(desk: &Desk, lang: Lang, values: &Values, error: Option<&FieldError>) -> Response {
    let invalid = |field: &str| error.is_some_and(|e| e.field == field);
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let markup = layout(
        lang,
        "/donors/new",
        lang.t("Đăng ký nhà tài trợ", "Register a donor"),
        html! {
            h1 { (lang.t("Đăng ký nhà tài trợ", "Register a donor")) }
            (role_warning(lang, &desk.standing(), &[pb::Role::Receive]))
            @if let Some(error) = error {
                p.error role="alert" id="form-error" { (lang.t("Cần sửa: ", "To correct: ")) (error.message) }
            }
            form method="post" action=(lang.href("/donors/preview")) {
                input type="hidden" name="token" value=(desk.form_token);
                label for="name" { (lang.t("Tên nhà tài trợ", "The donor's name")) }
                input id="name" name="name" required value=(value(values, "name")) aria-invalid=(invalid("name")) autocomplete="off";
                label for="kind" { (lang.t("Loại", "Kind")) }
                select id="kind" name="kind" required aria-invalid=(invalid("kind")) {
                    option value="" { (lang.t("— chọn —", "— choose —")) }
                    @for (kind, vi, en) in KINDS {
                        @let v = (kind as i32).to_string();
                        option value=(v) selected[v == value(values, "kind")] { (lang.t(vi, en)) }
                    }
                }
                fieldset {
                    legend { (lang.t("Công khai tên?", "Publish the name?")) }
                    label.choice {
                        input type="radio" name="public_name" value="no" checked[hidden(values)];
                        " " (lang.t("Không: nhà tài trợ không muốn công khai tên (chỉ ghi giá trị cam kết; trao giấy xác nhận cho nhà tài trợ)",
                                    "No: the donor asked not to be named (only a commitment is recorded; the donor gets an acknowledgement)"))
                    }
                    label.choice {
                        input type="radio" name="public_name" value="yes" checked[!hidden(values)];
                        " " (lang.t("Có: tên được công bố", "Yes: the name is published"))
                    }
                }
                label for="org_id" { (lang.t("Mã nhà tài trợ (chỉ khi công khai tên)", "Donor id (for a named donor only)")) }
                input id="org_id" name="org_id" value=(value(values, "org_id")) aria-invalid=(invalid("org_id")) autocomplete="off";
                button type="submit" { (lang.t("Xem trước", "Preview")) }
            }
        },
    );
    (status, page(markup)).into_response()
}

fn hidden_inputs(
    desk: &Desk,
    values: &Values,
    event: &pb::Event,
    salt: &[u8; NAME_SALT_BYTES],
) -> maud::Markup {
    let Some(pb::event::Body::RegisterOrg(org)) = &event.body else {
        unreachable!("a registration");
    };
    html! {
        input type="hidden" name="token" value=(desk.form_token);
        input type="hidden" name="name" value=(value(values, "name"));
        input type="hidden" name="kind" value=(org.kind);
        input type="hidden" name="public_name" value=(if org.public_name { "yes" } else { "no" });
        input type="hidden" name="org_id" value=(org.org_id);
        input type="hidden" name="salt" value=(hex::encode(salt));
        input type="hidden" name="event_id" value=(event.event_id);
        input type="hidden" name="occurred_at" value=(event.occurred_at.as_ref().map_or(0, |t| t.seconds));
    }
}

/// The registration a form describes, judged, with its salt: or the
/// answer that refuses it.
fn judged(
    desk: &Desk,
    lang: Lang,
    values: &Values,
) -> Result<(pb::Event, [u8; NAME_SALT_BYTES]), Box<Response>> {
    if value(values, "token") != desk.form_token {
        return Err(Box::new(refused_forgery(lang)));
    }
    registration(desk, lang, values)
        .map_err(|error| Box::new(form_page(desk, lang, values, Some(&error))))
}

pub(crate) async fn preview(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    Form(values): Form<Values>,
) -> Response {
    let (event, salt) = match judged(&desk, lang, &values) {
        Ok(judged) => judged,
        Err(response) => return *response,
    };
    let Some(pb::event::Body::RegisterOrg(org)) = &event.body else {
        unreachable!("a registration");
    };
    page(layout(
        lang,
        "/donors/new",
        lang.t("Xem trước", "Preview"),
        html! {
            h1 { (lang.t("Xem trước: những gì sẽ được công bố", "Preview: what will become public")) }
            dl.preview {
                div { dt { (lang.t("Đơn vị đăng ký", "Registered by")) } dd { (event.org_id) } }
                div { dt { (lang.t("Mã nhà tài trợ", "Donor id")) } dd { (org.org_id) } }
                div { dt { (lang.t("Loại", "Kind")) } dd { (KINDS.iter().find(|(k, _, _)| *k as i32 == org.kind).map_or("", |(_, vi, en)| lang.t(vi, en))) } }
                div { dt { (lang.t("Tên", "Name")) } dd {
                    @if org.public_name { (org.name) }
                    @else { strong { (lang.t("Không công bố", "Not published")) } " " (lang.t("(sổ cái chỉ ghi một giá trị cam kết)", "(the log holds only a commitment)")) }
                } }
                div { dt { (lang.t("Mã sự kiện", "Event id")) } dd { code { (event.event_id) } } }
            }
            form method="post" action=(lang.href("/donors/submit")) {
                (hidden_inputs(&desk, &values, &event, &salt))
                button type="submit" { (lang.t("Ký và gửi vào sổ cái", "Sign and submit to the ledger")) }
            }
            p { a href=(lang.href("/donors/new")) { (lang.t("Làm lại từ đầu", "Start again")) } }
        },
    ))
}

pub(crate) async fn submit(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    Form(values): Form<Values>,
) -> Response {
    let (event, salt) = match judged(&desk, lang, &values) {
        Ok(judged) => judged,
        Err(response) => return *response,
    };
    let Some(pb::event::Body::RegisterOrg(org)) = &event.body else {
        unreachable!("a registration");
    };
    let signed = desk.config.ledger.sign(&desk.config.key, &event);
    // Waited for: the acknowledgement is handed over once a checkpoint
    // covers the registration, so the donor can verify it at once.
    let appended = match desk.config.ledger.append(signed, true).await {
        Ok(appended) => appended,
        Err(ClientError::Rejected(rejected))
            if rejected.reason == "ID_EXISTS" && !org.public_name =>
        {
            // The random id was taken: a fresh preview draws another.
            let mut fresh = values.clone();
            for drawn in ["org_id", "salt", "event_id", "occurred_at"] {
                fresh.remove(drawn);
            }
            return form_page(
                &desk,
                lang,
                &fresh,
                Some(&FieldError {
                    field: "",
                    message: lang
                        .t(
                            "Mã ngẫu nhiên đã có người dùng; hãy xem trước lại.",
                            "The random id was taken; preview again.",
                        )
                        .to_owned(),
                }),
            );
        }
        Err(error) => return refused_by_ledger(lang, &error, "/donors/new"),
    };
    tracing::info!(
        seq = appended.seq,
        duplicate = appended.duplicate,
        "donor registered"
    );
    let public_page = desk
        .config
        .feed_url
        .as_ref()
        .map(|feed| format!("{}/donors/{}", feed.trim_end_matches('/'), org.org_id));
    if org.public_name {
        return page(layout(
            lang,
            "/",
            lang.t("Đã ghi", "Recorded"),
            html! {
                h1 { (lang.t("Đã đăng ký nhà tài trợ", "Donor registered")) }
                p.done role="status" { (org.org_id) (lang.t(" nằm ở mục số ", " is entry number ")) strong id="seq" { (appended.seq) } "." }
                @if let Some(url) = &public_page { p { a id="public-page" href=(url) { (url) } } }
            },
        ));
    }
    let ack = Acknowledgement {
        origin: desk.config.ledger.origin().to_owned(),
        org_id: org.org_id.clone(),
        name: value(&values, "name").to_owned(),
        salt,
        registered_by: desk.config.org_id.clone(),
        event_id: event.event_id.clone(),
        seq: appended.seq,
        page: public_page.clone().unwrap_or_default(),
    };
    let text = match ack.to_text() {
        Ok(text) => text,
        Err(error) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}")).into_response();
        }
    };
    page(layout(
        lang,
        "/",
        lang.t("Giấy xác nhận", "Acknowledgement"),
        html! {
            h1 { (lang.t("Giấy xác nhận cho nhà tài trợ", "The donor's acknowledgement")) }
            p.done role="status" {
                (lang.t("Đã đăng ký ở mục số ", "Registered as entry number ")) strong id="seq" { (appended.seq) } ". "
                (lang.t("Hãy in hoặc lưu giấy này và trao cho nhà tài trợ; bàn làm việc không giữ lại tên.",
                        "Print or save this and hand it to the donor; the desk keeps no copy of the name."))
            }
            pre id="acknowledgement" tabindex="0" aria-label=(lang.t("Giấy xác nhận", "Acknowledgement")) { (text) }
            form method="post" action=(lang.href("/donors/acknowledgement")) {
                (hidden_inputs(&desk, &values, &event, &salt))
                input type="hidden" name="seq" value=(appended.seq);
                button type="submit" { (lang.t("Tải giấy xác nhận (tệp văn bản)", "Download the acknowledgement (text file)")) }
            }
        },
    ))
}

/// The acknowledgement as a file, from the fields its page carries.
pub(crate) async fn acknowledgement_file(
    State(desk): State<AppState>,
    Extension(lang): Extension<Lang>,
    Form(values): Form<Values>,
) -> Response {
    if value(&values, "token") != desk.form_token {
        return refused_forgery(lang);
    }
    let salt: Option<[u8; NAME_SALT_BYTES]> = hex::decode(value(&values, "salt"))
        .ok()
        .and_then(|s| s.try_into().ok());
    let (Some(salt), Ok(seq)) = (salt, value(&values, "seq").parse::<u64>()) else {
        return (
            StatusCode::BAD_REQUEST,
            lang.t(
                "Thiếu thông tin của giấy xác nhận.",
                "The acknowledgement's fields are missing.",
            ),
        )
            .into_response();
    };
    let org_id = value(&values, "org_id").to_owned();
    let ack = Acknowledgement {
        origin: desk.config.ledger.origin().to_owned(),
        page: desk
            .config
            .feed_url
            .as_ref()
            .map(|feed| format!("{}/donors/{org_id}", feed.trim_end_matches('/')))
            .unwrap_or_default(),
        org_id: org_id.clone(),
        name: value(&values, "name").to_owned(),
        salt,
        registered_by: desk.config.org_id.clone(),
        event_id: value(&values, "event_id").to_owned(),
        seq,
    };
    match ack.to_text() {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{org_id}-acknowledgement.txt\""),
                ),
            ],
            text,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}")).into_response(),
    }
}
