//! The public web server: the sign-up form with double opt-in (`GET /`, `POST /subscribe`,
//! `GET` and `POST /confirm/{token}`), unsubscribe links (RFC 8058 one-click) with a way back
//! (`POST /resubscribe/{token}`, through a new double opt-in), the archive of sent issues and its Atom feed, the files of
//! `newsletter.assets_dir` (the images issues link to) at every other path, and a health
//! check that proves the database takes writes, and the tracked links and open image of
//! click and open tracking (`/l/{link}/{token}`, `/o/{token}.gif`; see `track`).
//!
//! [`router`] builds the routes over an [`AppState`]; [`serve`] runs them on a listener until
//! a shutdown future resolves, letting requests in flight finish. Every response carries
//! the security headers set here, and every failure goes through [`WebError`], which
//! renders a friendly page (a 500 never shows its cause). The editor API lives in [`api`]
//! (under `/api`), the dashboard in `admin` (under `/admin`), and the sending services'
//! bounce and complaint webhooks in `webhooks` (under `/webhooks`); each sets its own body
//! limits and, for the dashboard, its own Content-Security-Policy.

mod admin;
pub mod api;
mod archive;
mod assets;
mod confirm;
pub mod conn;
mod error;
mod health;
pub mod pages;
mod signup;
mod track;
mod unsubscribe;
mod webhooks;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use error::{ErrorPage, WebError};
pub use pages::Pages;

use crate::domain::TokenKey;
use crate::signup::{IpLimiter, SignupQueue};
use crate::startup::{App, StartupError};

/// The largest request body accepted: the one-click body is 26 bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

/// Archive pages are email HTML with inline styles; nothing runs scripts.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src * data:; \
     style-src 'self' 'unsafe-inline'; script-src 'none'; frame-ancestors 'none'";

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    /// The store, links, templates and settings.
    app: Arc<App>,
    /// Verifies the tokens in unsubscribe links.
    key: TokenKey,
    /// The page templates.
    pages: Pages,
    /// The admin token, dashboard session key and idempotent sends.
    editor: api::Editor,
    /// Rendered archive pages by slug, with the source hash they were rendered from, so an
    /// edited issue file is rendered again.
    archive_cache: Mutex<HashMap<String, (String, Arc<str>)>>,
    /// Hands sign-ups to the group-commit writer.
    signups: SignupQueue,
    /// Sign-ups per client IP (`web.signup_per_ip_per_minute`).
    signup_limiter: IpLimiter,
    /// The thank-you page, the same for every accepted sign-up, rendered once.
    thanks: Arc<str>,
    /// The consent wording on the form and in the consent record: `newsletter.consent`, else
    /// the locale's; while tracking is on, followed by `tracking.notice`, else the locale's
    /// sentence saying so.
    consent: String,
    /// `web.trusted_proxies`, parsed.
    trusted_proxies: Vec<IpAddr>,
    /// The database write probe behind `/health`.
    health: health::HealthProbe,
    /// The sending services' webhooks: verifiers and replay guards.
    webhooks: webhooks::Webhooks,
    /// Answers `/l/` and `/o/` and hands hits to the batched writer.
    tracker: crate::tracking::Tracker,
}

impl AppState {
    /// Builds the state over `app`: the token key from `web.secret_key`, the pages from
    /// `{templates_dir}/web/`, and the sign-up writer, spawned here (so this must run inside
    /// a tokio runtime). The writer stops once the state and every clone of it are gone,
    /// after committing what it was given.
    pub fn new(app: Arc<App>) -> Result<Self, StartupError> {
        let key = TokenKey::new(&app.settings.secret_key()?);
        let pages = Pages::load(
            &app.settings.newsletter.templates_dir,
            app.templates.catalogs().clone(),
        )?;
        let editor = api::Editor::new(&app)?;
        let (signups, _writer) = SignupQueue::start(app.store.clone(), app.notice_wake.clone());
        let signup_limiter = IpLimiter::new(app.settings.web.signup_per_ip_per_minute);
        let thanks = signup::thanks_page(&pages, &app.settings.newsletter.name)?;
        let mut consent = app
            .settings
            .newsletter
            .consent
            .clone()
            .unwrap_or_else(|| pages.catalog().t("signup-consent"));
        if app.settings.tracking.any() {
            let notice = app
                .settings
                .tracking
                .notice
                .clone()
                .unwrap_or_else(|| pages.catalog().t("signup-consent-tracking"));
            consent = format!("{consent} {notice}");
        }
        let trusted_proxies = parse_trusted_proxies(&app.settings.web.trusted_proxies)?;
        let webhooks = webhooks::Webhooks::new(&app)?;
        let tracker = crate::tracking::Tracker::start(
            key.clone(),
            app.settings.tracking.clone(),
            app.links.clone(),
            app.store.clone(),
        );
        Ok(Self(Arc::new(Inner {
            tracker,
            webhooks,
            trusted_proxies,
            editor,
            app,
            key,
            pages,
            archive_cache: Mutex::new(HashMap::new()),
            signups,
            signup_limiter,
            thanks: thanks.into(),
            consent,
            health: health::HealthProbe::default(),
        })))
    }

    fn app(&self) -> &App {
        &self.0.app
    }

    /// Returns once every click and open answered so far is recorded.
    pub async fn flush_tracking(&self) {
        self.0.tracker.flush().await;
    }

    /// The report of issue `slug`, counting every click and open answered before the call.
    async fn issue_report(
        &self,
        slug: &crate::domain::IssueSlug,
    ) -> Result<crate::tracking::IssueReport, crate::editor::EditorError> {
        self.flush_tracking().await;
        crate::editor::issue_report(self.app(), slug).await
    }

    /// The catalog of the public pages (`newsletter.locale`).
    fn catalog(&self) -> &crate::i18n::Catalog {
        self.0.pages.catalog()
    }

    /// Message `id` of the pages' catalog.
    fn t(&self, id: &str) -> String {
        self.catalog().t(id)
    }

    /// Message `id` with `$newsletter` set to the newsletter's name.
    fn t_newsletter(&self, id: &str) -> String {
        self.catalog().t_with(
            id,
            &crate::i18n::args(&[(
                "newsletter",
                self.app().settings.newsletter.name.clone().into(),
            )]),
        )
    }

    /// Renders a page, or a 500 if the template fails.
    fn page(&self, name: &str, context: minijinja::Value) -> Result<Html<String>, WebError> {
        self.0
            .pages
            .render(name, context)
            .map(Html)
            .map_err(WebError::internal)
    }

    /// The message page: a heading, paragraphs and an optional hint.
    fn message(
        &self,
        heading: &str,
        paragraphs: &[&str],
        hint: Option<&str>,
    ) -> Result<Html<String>, WebError> {
        self.message_with_link(heading, paragraphs, hint, None)
    }

    /// The message page with a link under the paragraphs: `(url, text)`.
    fn message_with_link(
        &self,
        heading: &str,
        paragraphs: &[&str],
        hint: Option<&str>,
        link: Option<(&str, &str)>,
    ) -> Result<Html<String>, WebError> {
        let link = link.map(|(url, text)| minijinja::context! { url, text });
        self.page(
            pages::MESSAGE,
            minijinja::context! {
                newsletter_name => &self.app().settings.newsletter.name,
                heading,
                paragraphs,
                hint,
                link,
            },
        )
    }
}

/// The dashboard's templates, by name, for `herald locales check`.
pub fn admin_sources(
    templates_dir: &std::path::Path,
    catalogs: Arc<crate::i18n::Catalogs>,
) -> Result<Vec<(String, String)>, crate::render::RenderError> {
    Ok(admin::AdminPages::load(templates_dir, catalogs)?.sources())
}

/// Every route, with the security headers, the body limit and request tracing.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/", get(signup::form))
        .route("/subscribe", post(signup::subscribe))
        .route(
            "/confirm/{token}",
            get(confirm::show).post(confirm::confirm),
        )
        .route("/resubscribe/{token}", post(unsubscribe::resubscribe))
        .route("/unsubscribe", get(unsubscribe::without_token))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe::show).post(unsubscribe::one_click),
        )
        .route("/archive", get(archive::list))
        .route("/archive/{slug}", get(archive::issue))
        .route("/feed.xml", get(archive::feed))
        .route("/l/{link}/{token}", get(track::click))
        .route("/o/{file}", get(track::open))
        .fallback(assets::serve)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // Outside the body limits, so a 413 gets its page too.
        .layer(middleware::map_response_with_state(
            state.clone(),
            error_pages,
        ))
        // Added after the layers above, so they set their own body limits and error shapes.
        .nest("/api", api::router(state.clone()))
        .nest("/webhooks", webhooks::router())
        .nest("/admin", admin::router(state.clone()))
        .route(
            "/admin/",
            get(|| async { axum::response::Redirect::permanent("/admin") }),
        )
        // The dashboard sets its own policy; every other response gets this one.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            identify_client,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// Who made a request, as the consent record and the event trail keep it: the socket's IP
/// (behind a proxy, the proxy's) and the user agent, cut to [`Visitor::USER_AGENT_MAX`]
/// characters.
struct Visitor {
    ip: Option<String>,
    user_agent: Option<String>,
}

impl Visitor {
    const USER_AGENT_MAX: usize = 512;

    fn of(headers: &axum::http::HeaderMap, extensions: &axum::http::Extensions) -> Self {
        let ip = extensions.get::<ClientIp>().map(|c| c.0.to_string());
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(Self::USER_AGENT_MAX).collect());
        Self { ip, user_agent }
    }
}

/// The client's address, as [`identify_client`] found it; the unspecified address when the
/// server was started without connection info.
fn client_ip(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ClientIp>()
        .map_or(Ipv4Addr::UNSPECIFIED.into(), |c| c.0)
}

/// Who sent a request: the socket's peer, or, when the peer is one of `web.trusted_proxies`,
/// the address that proxy reports. Set on every request by [`identify_client`]; the per-IP
/// limits, the admin lock-out and the consent record all use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClientIp(IpAddr);

/// Puts the request's [`ClientIp`] in its extensions.
async fn identify_client(
    State(state): State<AppState>,
    mut request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let ip = forwarded_client(peer, request.headers(), &state.0.trusted_proxies);
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

/// `peer` itself, unless it is a trusted proxy: then the rightmost `X-Forwarded-For` entry
/// that is not a trusted proxy (entries further left are the client's own word and could be
/// forged), or `peer` when there is none.
fn forwarded_client(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in entries.iter().rev() {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip,
            Err(_) => return peer,
        }
    }
    peer
}

/// Parses `web.trusted_proxies`.
fn parse_trusted_proxies(list: &[String]) -> Result<Vec<IpAddr>, StartupError> {
    list.iter()
        .map(|entry| {
            entry.trim().parse::<IpAddr>().map_err(|_| {
                StartupError::Config(crate::config::ConfigError::Key {
                    file: "settings".into(),
                    key: "web.trusted_proxies".into(),
                    message: format!("{entry:?} is not an IP address"),
                })
            })
        })
        .collect()
}

/// The span of one request names the route's pattern (`/unsubscribe/{token}`), never the
/// path as sent: paths carry tokens and addresses, which must not reach the log.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(no route)", axum::extract::MatchedPath::as_str);
    tracing::debug_span!("request", method = %request.method(), route)
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then stops accepting and
/// waits for the requests in flight. Connections are capped and slow clients cut off by
/// `web.max_connections` and the `web.*_timeout_seconds` settings (see [`conn`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = conn::ConnectionLimits::from_settings(&state.app().settings.web);
    conn::serve(listener, router(state), limits, shutdown).await
}

/// Serves `/health` alone on `listener` (a worker node's HTTP), until `shutdown` resolves,
/// under the same connection limits as [`serve`].
pub async fn serve_health(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = conn::ConnectionLimits::from_settings(&app.settings.web);
    let router = health::health_only(app.store.clone()).layer(SetResponseHeaderLayer::overriding(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ));
    conn::serve(listener, router, limits, shutdown).await
}

/// Gives a failed response marked by [`WebError`] its friendly page.
async fn error_pages(State(state): State<AppState>, response: Response) -> Response {
    let status = response.status();
    let page = response.extensions().get::<ErrorPage>().copied();
    let Some(page) = page.or_else(|| ErrorPage::for_status(status)) else {
        return response;
    };
    let (heading, paragraph) = page.text();
    let (heading, paragraph) = (state.t(heading), state.t(paragraph));
    match state.message(&heading, &[paragraph.as_str()], None) {
        Ok(html) => (status, html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the error page did not render");
            (status, format!("{heading}. {paragraph}")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> axum::http::HeaderMap {
        let mut headers = axum::http::HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "192.0.2.9".parse().unwrap();
        let headers = forwarded(&["203.0.113.5"]);
        assert_eq!(forwarded_client(stranger, &headers, &[proxy]), stranger);
        assert_eq!(
            forwarded_client(proxy, &headers, &[proxy]),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(forwarded_client(proxy, &forwarded(&[]), &[proxy]), proxy);
    }

    #[test]
    fn the_rightmost_untrusted_entry_wins_so_a_forged_left_part_is_ignored() {
        let proxies: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let headers = forwarded(&["1.2.3.4, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(
            forwarded_client(proxies[0], &headers, &proxies),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let garbage = forwarded(&["not-an-address"]);
        assert_eq!(forwarded_client(proxies[0], &garbage, &proxies), proxies[0]);
    }
}
