//! The API's handlers: each parses its request, calls one [`crate::editor`] function and
//! shapes the answer as JSON.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState, OPENAPI};
use crate::editor::{self, SOURCE_API};
use crate::startup::Drafts;

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v)
        .map_err(|r| ApiError::Status(bad_request_or(r.status()), r.body_text()))
}

/// Extractor rejections keep 413 and 415; anything else about the body is a 400.
fn bad_request_or(status: StatusCode) -> StatusCode {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => status,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `GET /api/openapi.json`.
pub async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

/// `GET /api/issues`.
pub async fn list_issues(State(state): State<AppState>) -> Result<Response, ApiError> {
    let issues = editor::list_issues(state.app()).await?;
    Ok(Json(json!({ "issues": issues })).into_response())
}

/// `GET /api/issues/{slug}`.
pub async fn issue_status(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let slug = editor::parse_slug(&slug)?;
    Ok(Json(editor::issue_status(state.app(), &slug).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// `json` (the default) or `csv`.
    format: Option<String>,
}

/// `GET /api/issues/{slug}/report[?format=json|csv]`: the issue's report, with every hit
/// answered before the request counted. CSV also when the client accepts only `text/csv`.
pub async fn issue_report(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    params: Result<Query<ReportParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let slug = editor::parse_slug(&slug)?;
    let csv = match params.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format must be json or csv, not {other:?}"
            )))
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| {
                accept.contains("text/csv") && !accept.contains("application/json")
            }),
    };
    let report = state.issue_report(&slug).await?;
    if csv {
        return Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            )],
            report.to_csv(),
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendParams {
    /// Send even if the issue is marked `draft: true`.
    #[serde(default)]
    force: bool,
}

/// `POST /api/issues/{slug}/send[?force=true]` with an `Idempotency-Key` header.
pub async fn send(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    params: Result<Query<SendParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let drafts = if params.force {
        Drafts::Send
    } else {
        Drafts::Refuse
    };
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| {
            ApiError::BadRequest("an Idempotency-Key header is required to send".into())
        })?
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?;
    let answer = state
        .0
        .editor
        .sends
        .send(state.app(), key, &slug, drafts)
        .await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::ACCEPTED);
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        answer.body,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    to: String,
}

/// `POST /api/issues/{slug}/test` with `{"to": ADDRESS}`.
pub async fn send_test(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    body: Result<Json<TestRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = json_body(body)?;
    let slug = editor::parse_slug(&slug)?;
    let sent = editor::send_test(state.app(), &slug, &request.to).await?;
    Ok(Json(sent).into_response())
}

/// `POST /api/issues/{slug}/retry-failed`.
pub async fn retry_failed(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let slug = editor::parse_slug(&slug)?;
    let requeued = editor::retry_failed(state.app(), &slug).await?;
    let status = editor::issue_status(state.app(), &slug).await?;
    Ok(Json(json!({ "requeued": requeued, "issue": status })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    q: Option<String>,
    status: Option<String>,
    page: Option<u64>,
    per_page: Option<u32>,
}

/// `GET /api/subscribers?q=&status=&page=&per_page=`.
pub async fn search_subscribers(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|r| ApiError::BadRequest(r.body_text()))?;
    let page = params.page.unwrap_or(1);
    let per_page = params.per_page.unwrap_or(50);
    let found = editor::search_subscribers(
        state.app(),
        params.q.as_deref().unwrap_or(""),
        params.status.as_deref(),
        page,
        per_page,
    )
    .await?;
    let subscribers: Vec<_> = found
        .subscribers
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "email": s.email,
                "name": s.name,
                "status": s.status.as_str(),
                "source": s.source,
                "created_at": chrono::DateTime::from_timestamp(s.created_at, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            })
        })
        .collect();
    Ok(Json(json!({
        "subscribers": subscribers,
        "total": found.total,
        "page": page,
        "per_page": per_page,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscriberRequest {
    email: String,
    name: Option<String>,
    status: Option<String>,
}

/// `POST /api/subscribers` with `{email, name?, status?}`.
pub async fn add_subscriber(
    State(state): State<AppState>,
    body: Result<Json<NewSubscriberRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = json_body(body)?;
    let id = editor::add_subscriber(
        state.app(),
        &request.email,
        request.name.as_deref(),
        request.status.as_deref(),
        SOURCE_API,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// `DELETE /api/subscribers/{email}`: erasure. 204 when a subscriber was held, 404 when not
/// (the keyed hash that blocks a later import is recorded in both cases).
pub async fn remove_subscriber(
    State(state): State<AppState>,
    Path(email): Path<String>,
) -> Result<Response, ApiError> {
    if editor::remove_subscriber(state.app(), &email, SOURCE_API).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(
            "no subscriber held that address; it is blocked from later imports".into(),
        ))
    }
}

/// `POST /api/subscribers/import` with a `text/csv` body.
pub async fn import_subscribers(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/csv"));
    if !is_csv {
        return Err(ApiError::UnsupportedMediaType(
            "send the CSV file with Content-Type: text/csv".into(),
        ));
    }
    let body = body.map_err(|r| ApiError::Status(bad_request_or(r.status()), r.body_text()))?;
    let report = editor::import_subscribers(state.app(), &body).await?;
    Ok(Json(report).into_response())
}

#[derive(Debug, Deserialize)]
pub struct BouncesQuery {
    limit: Option<u32>,
}

/// `GET /api/bounces?limit=N`: the latest returned-mail reports.
pub async fn recent_bounces(
    State(state): State<AppState>,
    query: Result<Query<BouncesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|r| ApiError::Status(StatusCode::BAD_REQUEST, r.body_text()))?;
    let bounces = editor::recent_bounces(state.app(), query.limit.unwrap_or(50)).await?;
    Ok(Json(json!({ "bounces": bounces })).into_response())
}

/// `GET /api/subscribers/{email}/bounces`: one subscriber's returned-mail history.
pub async fn subscriber_bounces(
    State(state): State<AppState>,
    Path(email): Path<String>,
) -> Result<Response, ApiError> {
    let (subscriber, bounces) = editor::subscriber_bounces(state.app(), &email).await?;
    Ok(Json(json!({
        "email": subscriber.email,
        "status": subscriber.status.as_str(),
        "bounces": bounces,
    }))
    .into_response())
}

/// `POST /api/subscribers/{email}/reactivate`: a bounced subscriber becomes active again.
pub async fn reactivate_subscriber(
    State(state): State<AppState>,
    Path(email): Path<String>,
) -> Result<Response, ApiError> {
    editor::reactivate_subscriber(state.app(), &email, SOURCE_API).await?;
    Ok(Json(json!({ "email": email.trim(), "status": "active" })).into_response())
}
