//! The editor API under `/api/`: JSON over HTTP, authorised by
//! `Authorization: Bearer <admin token>` (compared in constant time; never from the query
//! string). Every failure, including unknown routes, wrong methods, bad JSON and oversized
//! bodies, answers with one shape: `{"error": {"code": "...", "message": "..."}}`.
//!
//! The handlers are thin: each calls one function of [`crate::editor`]. The routes are one
//! table ([`routes`]), which builds the router and which the OpenAPI test walks, so the
//! document (`openapi.json`) cannot drift from what is served.

mod error;
mod handlers;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use secrecy::SecretString;

pub use error::ApiError;

use super::AppState;
use crate::editor::{IdempotentSends, SessionKey};
use crate::startup::{App, StartupError};

/// The OpenAPI 3.1 description of every route.
pub const OPENAPI: &str = include_str!("openapi.json");
/// The largest JSON body accepted.
pub const BODY_LIMIT: usize = super::BODY_LIMIT;
/// The largest CSV upload accepted by `POST /api/subscribers/import`.
pub const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

/// What the API and the dashboard share: the admin token, the session key, the
/// in-process serialisation of idempotent sends, and the dashboard's templates.
pub struct Editor {
    pub(super) token: SecretString,
    pub(super) sessions: SessionKey,
    pub(super) sends: IdempotentSends,
    pub(super) pages: super::admin::AdminPages,
    /// Wrong tokens per client address, for the API and the login form.
    pub(super) throttle: crate::editor::AuthThrottle,
}

impl Editor {
    /// Reads (or creates) the admin token and derives the session key.
    pub fn new(app: &App) -> Result<Self, StartupError> {
        let (token, _) = app.settings.admin_token().map_err(StartupError::from)?;
        Ok(Self {
            token,
            sessions: SessionKey::new(app)?,
            sends: IdempotentSends::default(),
            pages: super::admin::AdminPages::load(
                &app.settings.newsletter.templates_dir,
                app.templates.catalogs().clone(),
            )?,
            throttle: crate::editor::AuthThrottle::new(app.settings.web.admin_failures_per_minute),
        })
    }
}

/// Every API route (paths relative to `/api`) and its handlers.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    let small = || DefaultBodyLimit::max(BODY_LIMIT);
    vec![
        ("/openapi.json", get(handlers::openapi)),
        ("/issues", get(handlers::list_issues)),
        ("/issues/{slug}", get(handlers::issue_status)),
        ("/issues/{slug}/report", get(handlers::issue_report)),
        ("/issues/{slug}/send", post(handlers::send).layer(small())),
        (
            "/issues/{slug}/test",
            post(handlers::send_test).layer(small()),
        ),
        (
            "/issues/{slug}/retry-failed",
            post(handlers::retry_failed).layer(small()),
        ),
        (
            "/subscribers",
            get(handlers::search_subscribers)
                .post(handlers::add_subscriber)
                .layer(small()),
        ),
        (
            "/subscribers/import",
            post(handlers::import_subscribers).layer(DefaultBodyLimit::max(IMPORT_LIMIT)),
        ),
        (
            "/subscribers/{email}",
            delete(handlers::remove_subscriber).layer(small()),
        ),
        (
            "/subscribers/{email}/bounces",
            get(handlers::subscriber_bounces),
        ),
        (
            "/subscribers/{email}/reactivate",
            post(handlers::reactivate_subscriber).layer(small()),
        ),
        ("/bounces", get(handlers::recent_bounces)),
    ]
}

/// The paths of [`routes`], for the OpenAPI completeness test.
pub fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

/// The API router, to be nested at `/api`.
pub fn router(state: AppState) -> Router<AppState> {
    let mut router = Router::new();
    for (path, methods) in routes() {
        router = router.route(path, methods);
    }
    router
        .fallback(|| async { ApiError::NoRoute })
        .layer(middleware::from_fn_with_state(state, require_bearer))
        .layer(middleware::map_response(error::json_errors))
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// Lets a request through only with `Authorization: Bearer <admin token>`. An address that
/// offered too many wrong tokens gets a 429 until its minute is over.
async fn require_bearer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = super::client_ip(request.extensions());
    let now = crate::dispatch::unix_now();
    let throttle = &state.0.editor.throttle;
    if let Some(wait) = throttle.blocked(ip, now) {
        return ApiError::TooManyAttempts(wait).into_response();
    }
    let offered = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match offered {
        Some(token) if crate::editor::is_admin_token(&state.0.editor.token, token) => {
            next.run(request).await
        }
        Some(_) => {
            tracing::warn!("API request with a wrong bearer token");
            throttle.failed(ip, now);
            ApiError::Unauthorized.into_response()
        }
        None => {
            tracing::info!("API request without a bearer token");
            ApiError::Unauthorized.into_response()
        }
    }
}
