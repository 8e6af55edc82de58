//! [`WebError`]: the one error type of every handler. A 4xx becomes a friendly page; a 500
//! is logged with its cause and shows the client nothing of it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A link that does not verify (cut short, changed, or for another purpose).
    #[error("the link is not valid")]
    BadLink,
    /// No such page (or an issue that is not in the archive).
    #[error("not found")]
    NotFound,
    /// Anything on our side; the cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl WebError {
    /// Wraps any error as a 500.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }
}

/// Which friendly page a failed response should carry. [`WebError`] puts it in the
/// response's extensions; the page middleware in [`super`] renders it with the site's
/// templates (a response cannot reach the state by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPage {
    BadLink,
    NotFound,
    Internal,
    /// A body over the limit (413).
    TooLarge,
    /// A method the route does not answer (405).
    Method,
}

impl ErrorPage {
    /// The catalog's message ids of the heading and paragraph shown to the reader.
    pub fn text(self) -> (&'static str, &'static str) {
        match self {
            Self::BadLink => ("error-bad-link-heading", "error-bad-link-body"),
            Self::NotFound => ("error-not-found-heading", "error-not-found-body"),
            Self::Internal => ("error-internal-heading", "error-internal-body"),
            Self::TooLarge => ("error-too-large-heading", "error-too-large-body"),
            Self::Method => ("error-method-heading", "error-method-body"),
        }
    }

    /// The page for a failed response that carries none: bodies too large and methods not
    /// allowed, which the framework answers before any handler runs.
    pub fn for_status(status: StatusCode) -> Option<Self> {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => Some(Self::TooLarge),
            StatusCode::METHOD_NOT_ALLOWED => Some(Self::Method),
            _ => None,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, page) = match &self {
            Self::BadLink => (StatusCode::BAD_REQUEST, ErrorPage::BadLink),
            Self::NotFound => (StatusCode::NOT_FOUND, ErrorPage::NotFound),
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorPage::Internal)
            }
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(page);
        response
    }
}
