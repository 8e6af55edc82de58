//! The dashboard's subscriber page, `/admin/subscribers`: the list with search (address or
//! name), a status filter, paging and counts; adding one subscriber; erasing one after a
//! confirmation step; importing a CSV file with the per-row report; exporting everything as
//! CSV. Each handler calls the same [`crate::editor`] function as the API's subscriber
//! endpoints (and, for import and export, the CLI's importer and exporter).

use axum::body::Body;
use axum::extract::{Multipart, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use serde::Deserialize;

use super::handlers::{newsletter_name, page, require_csrf_token, require_session, respond};
use super::pages;
use super::{AdminError, AppState};
use crate::domain::SubscriberStatus;
use crate::editor::{self, EditorError, SOURCE_DASHBOARD};
use crate::i18n::Catalog;

type Result<T, E = AdminError> = std::result::Result<T, E>;

/// Subscribers on one page of the list.
pub const PER_PAGE: u32 = 50;

/// What the list page is asked for. Every field is text, so a hand-edited address bar gets
/// the first page rather than an error.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    page: Option<String>,
    notice: Option<String>,
}

/// The add form (and the values it shows again after a refusal).
#[derive(Deserialize, Default)]
pub struct AddForm {
    csrf: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    status: String,
}

/// The erase form.
#[derive(Deserialize, Default)]
pub struct EraseForm {
    csrf: Option<String>,
    #[serde(default)]
    email: String,
    confirm: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct EraseQuery {
    #[serde(default)]
    email: String,
}

/// `/admin/subscribers?…` with these filters (empty ones left out).
fn list_url(q: &str, status: &str, page: u64, notice: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        query.append_pair("q", q);
    }
    if !status.is_empty() {
        query.append_pair("status", status);
    }
    if page > 1 {
        query.append_pair("page", &page.to_string());
    }
    if let Some(notice) = notice {
        query.append_pair("notice", notice);
    }
    let query = query.finish();
    if query.is_empty() {
        "/admin/subscribers".into()
    } else {
        format!("/admin/subscribers?{query}")
    }
}

/// The notices a redirect to the list may ask for.
fn notice(catalog: &Catalog, code: Option<&str>) -> Option<String> {
    let id = match code? {
        "added" => "subscribers-notice-added",
        "erased" => "subscribers-notice-erased",
        "erased-not-held" => "subscribers-notice-erased-not-held",
        _ => return None,
    };
    Some(catalog.t(id))
}

/// A Unix time as the list shows it (`27 Nov 2026`) and exactly (RFC 3339, for `title`).
fn day(catalog: &Catalog, seconds: i64) -> (String, String) {
    match chrono::DateTime::from_timestamp(seconds, 0) {
        Some(t) => (
            catalog.date_short(&t),
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        None => (String::new(), String::new()),
    }
}

/// What the list page shows besides its own query: an error and the add form's values after
/// a refused add.
#[derive(Default)]
struct Refusal {
    error: Option<String>,
    form: AddForm,
}

/// Renders the list page for `query`.
async fn list_page(
    state: &AppState,
    session: i64,
    query: &ListQuery,
    refusal: Refusal,
) -> Result<Response> {
    let catalog = state.0.editor.pages.catalog();
    let q = query.q.trim();
    // An unknown status in the address bar lists everyone rather than failing.
    let status = query
        .status
        .parse::<SubscriberStatus>()
        .map(|s| s.as_str())
        .unwrap_or("");
    let wanted = query
        .page
        .as_deref()
        .and_then(|p| p.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, u64::from(u32::MAX));
    let counts = editor::subscriber_counts(state.app()).await?;
    let everyone: i64 = counts.iter().map(|(_, n)| n).sum();
    let mut found = editor::search_subscribers(
        state.app(),
        q,
        Some(status).filter(|s| !s.is_empty()),
        wanted,
        PER_PAGE,
    )
    .await?;
    let pages = found.total.div_ceil(u64::from(PER_PAGE)).max(1);
    let mut current = wanted;
    if wanted > pages {
        // Past the end (the list shrank): the last page.
        current = pages;
        found = editor::search_subscribers(
            state.app(),
            q,
            Some(status).filter(|s| !s.is_empty()),
            current,
            PER_PAGE,
        )
        .await?;
    }
    let first = (current - 1) * u64::from(PER_PAGE);
    let rows: Vec<_> = found
        .subscribers
        .iter()
        .map(|s| {
            let (joined, joined_exact) = day(catalog, s.created_at);
            let erase: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("email", &s.email)
                .finish();
            context! {
                email => &s.email,
                name => &s.name,
                status => s.status.as_str(),
                source => &s.source,
                joined,
                joined_exact,
                erase_url => format!("/admin/subscribers/erase?{erase}"),
            }
        })
        .collect();
    let counts: Vec<_> = counts
        .iter()
        .map(|(s, n)| {
            context! {
                status => s.as_str(),
                count => n,
                url => list_url(q, s.as_str(), 1, None),
                current => status == s.as_str(),
            }
        })
        .collect();
    let statuses: Vec<&str> = SubscriberStatus::ALL.iter().map(|s| s.as_str()).collect();
    let add_status = Some(refusal.form.status.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("active");
    let status_code = if refusal.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let html = page(
        state,
        pages::SUBSCRIBERS,
        context! {
            newsletter_name => newsletter_name(state),
            csrf => state.0.editor.sessions.csrf_token(session),
            notice => notice(catalog, query.notice.as_deref()),
            error => refusal.error,
            counts,
            everyone,
            all_url => list_url(q, "", 1, None),
            q,
            status,
            statuses,
            subscribers => rows,
            total => found.total,
            from => if found.total == 0 { 0 } else { first + 1 },
            to => first + found.subscribers.len() as u64,
            page => current,
            pages,
            previous_url => (current > 1).then(|| list_url(q, status, current - 1, None)),
            next_url => (current < pages).then(|| list_url(q, status, current + 1, None)),
            add_email => refusal.form.email,
            add_name => refusal.form.name,
            add_status,
        },
    )?;
    Ok((status_code, html).into_response())
}

/// `GET /admin/subscribers`.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let r = async {
        let session = require_session(&state, &headers).await?;
        list_page(&state, session, &query, Refusal::default()).await
    }
    .await;
    respond(&state, r)
}

/// `POST /admin/subscribers`: adds one subscriber; a refusal shows the list again with the
/// reason and the form as it was filled in.
pub async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AddForm>,
) -> Response {
    let r = async {
        let session = require_csrf_token(&state, &headers, form.csrf.as_deref()).await?;
        let name = Some(form.name.trim()).filter(|n| !n.is_empty());
        let status = Some(form.status.trim()).filter(|s| !s.is_empty());
        match editor::add_subscriber(state.app(), &form.email, name, status, SOURCE_DASHBOARD).await
        {
            Ok(_) => {
                let to = list_url(form.email.trim(), "", 1, Some("added"));
                Ok(Redirect::to(&to).into_response())
            }
            Err(EditorError::BadInput(m) | EditorError::Conflict(m)) => {
                list_page(
                    &state,
                    session,
                    &ListQuery::default(),
                    Refusal {
                        error: Some(m),
                        form,
                    },
                )
                .await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    respond(&state, r)
}

/// `GET /admin/subscribers/erase?email=…`: the confirmation step before an erasure.
pub async fn confirm_erase(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<EraseQuery>,
) -> Response {
    let r = async {
        let session = require_session(&state, &headers).await?;
        let email = query.email.trim();
        if email.is_empty() {
            return Ok(Redirect::to("/admin/subscribers").into_response());
        }
        // The subscriber as held, if an address matches exactly (case aside).
        let held = editor::search_subscribers(state.app(), email, None, 1, 10)
            .await?
            .subscribers
            .into_iter()
            .find(|s| s.email.eq_ignore_ascii_case(email));
        let catalog = state.0.editor.pages.catalog();
        let subscriber = held.map(|s| {
            let (joined, joined_exact) = day(catalog, s.created_at);
            context! {
                email => s.email,
                name => s.name,
                status => s.status.as_str(),
                joined,
                joined_exact,
            }
        });
        page(
            &state,
            pages::ERASE,
            context! {
                newsletter_name => newsletter_name(&state),
                csrf => state.0.editor.sessions.csrf_token(session),
                email,
                subscriber,
            },
        )
    }
    .await;
    respond(&state, r)
}

/// `POST /admin/subscribers/erase`: erases once the confirmation box is ticked.
pub async fn erase(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<EraseForm>,
) -> Response {
    let r = async {
        require_csrf_token(&state, &headers, form.csrf.as_deref()).await?;
        if form.confirm.as_deref() != Some("yes") {
            return Err(AdminError::BadRequest(
                state.0.editor.pages.catalog().t("subscribers-erase-tick"),
            ));
        }
        let held = editor::remove_subscriber(state.app(), &form.email, SOURCE_DASHBOARD).await?;
        let code = if held { "erased" } else { "erased-not-held" };
        Ok(Redirect::to(&list_url("", "", 1, Some(code))).into_response())
    }
    .await;
    respond(&state, r)
}

/// `POST /admin/subscribers/import`: a `multipart/form-data` form with the CSRF token and
/// the file; answers with the import report.
pub async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: std::result::Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let r = async {
        let catalog = state.0.editor.pages.catalog();
        let mut multipart = multipart.map_err(|r| AdminError::BadRequest(r.body_text()))?;
        let (mut csrf, mut csv, mut file_name) = (None, None, None);
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| AdminError::BadRequest(e.body_text()))?
        {
            let name = field.name().map(str::to_owned);
            match name.as_deref() {
                Some("csrf") => {
                    csrf = Some(
                        field
                            .text()
                            .await
                            .map_err(|e| AdminError::BadRequest(e.body_text()))?,
                    )
                }
                Some("file") => {
                    file_name = field.file_name().map(str::to_owned);
                    csv = Some(
                        field
                            .bytes()
                            .await
                            .map_err(|e| AdminError::BadRequest(e.body_text()))?,
                    )
                }
                _ => {}
            }
        }
        // The token is checked before anything in the file is looked at.
        let session = require_csrf_token(&state, &headers, csrf.as_deref()).await?;
        let csv = csv
            .filter(|c| !c.is_empty())
            .ok_or_else(|| AdminError::BadRequest(catalog.t("subscribers-import-no-file")))?;
        let (report, error) = match editor::import_subscribers(state.app(), &csv).await {
            Ok(report) => (Some(report), None),
            Err(EditorError::BadInput(m)) => (None, Some(m)),
            Err(e) => return Err(e.into()),
        };
        let status = if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        let html = page(
            &state,
            pages::IMPORT,
            context! {
                newsletter_name => newsletter_name(&state),
                csrf => state.0.editor.sessions.csrf_token(session),
                file_name,
                report,
                error,
            },
        )?;
        Ok((status, html).into_response())
    }
    .await;
    respond(&state, r)
}

/// `GET /admin/subscribers/export`: every subscriber as CSV, as a download.
pub async fn export(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let r = async {
        require_session(&state, &headers).await?;
        let (file, _) = editor::export_subscribers(state.app()).await?;
        let file = tokio::fs::File::from_std(file);
        let chunks = futures::stream::try_unfold(file, |mut file| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0; 64 * 1024];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            buf.truncate(n);
            Ok(Some((buf, file)))
        });
        let name = format!(
            "attachment; filename=\"subscribers-{}.csv\"",
            chrono::Utc::now().format("%Y-%m-%d")
        );
        let mut response = Body::from_stream(chunks).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&name) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(response)
    }
    .await;
    respond(&state, r)
}
