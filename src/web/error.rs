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
}

impl ErrorPage {
    /// Heading and paragraph shown to the reader.
    pub fn text(self) -> (&'static str, &'static str) {
        match self {
            Self::BadLink => (
                "This link does not work",
                "It may have been cut short or changed when it was copied. \
                 Please use the link exactly as it appears in the email.",
            ),
            Self::NotFound => ("Page not found", "There is nothing at this address."),
            Self::Internal => (
                "Something went wrong",
                "We could not complete your request. Please try again in a few minutes.",
            ),
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
