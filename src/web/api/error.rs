//! [`ApiError`]: every API failure as `{"error": {"code", "message"}}` with its status. A 500
//! is logged with its cause and says nothing of it to the client. [`json_errors`] gives the
//! same shape to failures produced outside the handlers (axum's 405, body limits).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::editor::EditorError;

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid `Authorization: Bearer <token>` header is required")]
    Unauthorized,
    #[error("no such API route")]
    NoRoute,
    /// Too many wrong tokens from this address; the seconds to wait.
    #[error("too many wrong tokens from this address; try again in {}", crate::words::count(.0.unsigned_abs(), "second", "seconds"))]
    TooManyAttempts(i64),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The issue is a draft and the send was not forced.
    #[error("{0}, or add ?force=true to send it anyway")]
    Draft(String),
    /// `herald check` finds an error in the issue: the first one.
    #[error("not sent: herald check finds an error in the issue: {0}")]
    CheckFailed(String),
    #[error("{0}")]
    KeyReused(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    BadGateway(String),
    /// Another status with its message (body extractor rejections).
    #[error("{1}")]
    Status(StatusCode, String),
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl From<EditorError> for ApiError {
    fn from(e: EditorError) -> Self {
        if let Some(problem) = e.issue_file_problem() {
            return Self::Status(StatusCode::UNPROCESSABLE_ENTITY, problem);
        }
        match e {
            EditorError::NotFound(m) => Self::NotFound(m),
            EditorError::BadInput(m) => Self::BadRequest(m),
            EditorError::Conflict(m) => Self::Conflict(m),
            EditorError::Draft(m) => Self::Draft(m),
            EditorError::Refused { reason, .. } => Self::CheckFailed(reason),
            e @ EditorError::KeyReused(_) => Self::KeyReused(e.to_string()),
            e @ EditorError::Relay(_) => Self::BadGateway(e.to_string()),
            other => Self::Internal(Box::new(other)),
        }
    }
}

/// The stable machine-readable code of a status.
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "too_many_requests",
        502 => "bad_gateway",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

/// The error body.
pub fn body(status: StatusCode, code: &str, message: &str) -> Response {
    let json = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, Json(json)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NoRoute => (StatusCode::NOT_FOUND, "no_route"),
            Self::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Draft(_) => (StatusCode::CONFLICT, "draft"),
            Self::CheckFailed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "check_failed"),
            Self::KeyReused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::BadGateway(_) => (StatusCode::BAD_GATEWAY, "bad_gateway"),
            Self::Status(status, _) => (*status, code_of(*status)),
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "API request failed");
                return body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the request could not be completed; the cause is in herald's log",
                );
            }
        };
        let mut response = body(status, code, &self.to_string());
        if let Self::TooManyAttempts(wait) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
        }
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Gives any failed response that is not JSON yet (axum's 405, a body over the limit, a
/// rejected extractor) the API's error shape, keeping its status.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = match status.as_u16() {
        405 => "this route does not take that method".to_string(),
        413 => "the request body is too large".to_string(),
        s if s >= 500 => "the request could not be completed".to_string(),
        _ => status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_string(),
    };
    let mut out = body(status, code_of(status), &message);
    if let Some(allow) = response.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}
