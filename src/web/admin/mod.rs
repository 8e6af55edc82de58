//! The dashboard under `/admin`: server-rendered pages over the same [`crate::editor`] calls
//! as the API.
//!
//! # Sessions and CSRF
//!
//! `/admin/login` takes the admin token (compared in constant time) and sets the cookie
//! `herald_admin`: a session token signed by [`crate::editor::SessionKey`] (a random session
//! id and an expiry 12 hours ahead, never the admin token itself), `HttpOnly`,
//! `SameSite=Strict`, `Path=/admin`, and `Secure` when `newsletter.base_url` is https.
//! Every form carries the session's CSRF token (the session id signed for another purpose);
//! a POST whose token is missing or belongs to another session gets a 403 page and does
//! nothing. Logging out clears the cookie and records the session as ended in the database,
//! so a copy of the cookie stops working too.
//!
//! # Headers
//!
//! Pages carry their own Content-Security-Policy (scripts and frames from herald only); the
//! email preview, shown in a sandboxed iframe, has a policy of its own that allows being
//! framed by the dashboard and nothing else. Both override the public pages' policy, which
//! the outer router only sets when a response has none.

mod handlers;
pub mod pages;
mod subscribers;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use fluent_bundle::FluentValue;
use tower_http::set_header::SetResponseHeaderLayer;

pub use pages::AdminPages;

use super::AppState;
use crate::i18n::Catalog;

/// The dashboard's policy: its own script and stylesheet, and frames from herald (the
/// preview).
pub const ADMIN_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; \
     base-uri 'none'; object-src 'none'";
/// The preview's policy: email HTML with inline styles and remote images, no scripts (the
/// iframe is sandboxed too), framed only by the dashboard.
pub const PREVIEW_CSP: &str = "default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; \
     font-src *; frame-ancestors 'self'; sandbox";
/// The session cookie's name.
pub const COOKIE: &str = "herald_admin";

/// The dashboard router, to be nested at `/admin`.
pub fn router(_state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(handlers::home))
        .route("/login", get(handlers::login_form).post(handlers::login))
        .route("/logout", post(handlers::logout))
        .route("/issues/{slug}", get(handlers::issue))
        .route("/issues/{slug}/preview", get(handlers::preview))
        .route("/issues/{slug}/report.csv", get(handlers::report_csv))
        .route("/issues/{slug}/report.json", get(handlers::report_json))
        .route("/issues/{slug}/progress", get(handlers::progress))
        .route("/issues/{slug}/test", post(handlers::send_test))
        .route(
            "/issues/{slug}/send",
            get(handlers::confirm_send).post(handlers::send_now),
        )
        .route("/issues/{slug}/retry-failed", post(handlers::retry_failed))
        .route(
            "/subscribers",
            get(subscribers::list).post(subscribers::add),
        )
        .route(
            "/subscribers/erase",
            get(subscribers::confirm_erase).post(subscribers::erase),
        )
        .route(
            "/subscribers/import",
            post(subscribers::import).layer(DefaultBodyLimit::max(super::api::IMPORT_LIMIT)),
        )
        .route("/subscribers/export", get(subscribers::export))
        .route("/bounces", get(handlers::bounces))
        .route("/bounces/reactivate", post(handlers::reactivate))
        .route("/static/admin.js", get(handlers::script))
        .route("/static/admin.css", get(handlers::stylesheet))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(super::BODY_LIMIT))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(ADMIN_CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// Why a dashboard request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No valid session: go to the login page.
    #[error("login required")]
    LoginRequired,
    /// A form without the session's CSRF token.
    #[error("the form has expired or did not come from this dashboard")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// A refusal in the dashboard's own words: a message of its catalog
    /// (`locales/<tag>/dashboard.ftl`) and the message's variables.
    #[error("{0}")]
    Refused(&'static str, Vec<(&'static str, String)>),
    /// A refusal in the library's words.
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl From<crate::editor::EditorError> for AdminError {
    fn from(e: crate::editor::EditorError) -> Self {
        use crate::editor::EditorError;
        if let Some(problem) = e.issue_file_problem() {
            return Self::Refused("dashboard-error-issue-file", vec![("problem", problem)]);
        }
        match e {
            EditorError::NotFound(_) => Self::NotFound,
            EditorError::Relay(reply) => {
                Self::Refused("dashboard-error-relay", vec![("reply", reply)])
            }
            EditorError::BadInput(m)
            | EditorError::Conflict(m)
            | EditorError::Draft(m)
            | EditorError::Refused { reason: m, .. } => Self::BadRequest(m),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<crate::render::RenderError> for AdminError {
    fn from(e: crate::render::RenderError) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl AdminError {
    /// The status, heading and explanation of the error page, in `catalog`'s words.
    fn page(&self, catalog: &Catalog) -> (StatusCode, String, String) {
        let t = |id: &str| catalog.t(id);
        match self {
            Self::LoginRequired => (
                StatusCode::UNAUTHORIZED,
                t("dashboard-error-login"),
                String::new(),
            ),
            Self::Forbidden => (
                StatusCode::FORBIDDEN,
                t("dashboard-error-forbidden"),
                t("dashboard-error-forbidden-body"),
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                t("dashboard-error-not-found"),
                t("dashboard-error-not-found-body"),
            ),
            Self::Refused(id, values) => {
                let args = crate::i18n::args(
                    &values
                        .iter()
                        .map(|(name, value)| (*name, FluentValue::from(value.as_str())))
                        .collect::<Vec<_>>(),
                );
                (
                    StatusCode::BAD_REQUEST,
                    t("dashboard-error-bad-request"),
                    catalog.t_with(id, &args),
                )
            }
            Self::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                t("dashboard-error-bad-request"),
                m.clone(),
            ),
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "dashboard request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    t("dashboard-error-internal"),
                    t("dashboard-error-internal-body"),
                )
            }
        }
    }

    /// The error as a page rendered with the dashboard's templates.
    fn render(self, state: &AppState) -> Response {
        if matches!(self, Self::LoginRequired) {
            return Redirect::to("/admin/login").into_response();
        }
        let pages = &state.0.editor.pages;
        let (status, heading, message) = self.page(pages.catalog());
        let html = pages.render(
            pages::MESSAGE,
            minijinja::context! {
                newsletter_name => &state.app().settings.newsletter.name,
                heading,
                message,
            },
        );
        match html {
            Ok(html) => (status, axum::response::Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "the dashboard's error page did not render");
                (status, format!("{heading}. {message}")).into_response()
            }
        }
    }
}

impl IntoResponse for AdminError {
    /// Without the state: a plain page in English. Handlers use [`AdminError::render`].
    fn into_response(self) -> Response {
        let catalogs = crate::i18n::Catalogs::built_in();
        let (status, heading, message) = self.page(catalogs.default_catalog());
        (status, format!("{heading}. {message}")).into_response()
    }
}
