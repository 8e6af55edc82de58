//! The dashboard's handlers: check the session (and, for every POST, the CSRF token), call
//! one [`crate::editor`] function, and render a page or redirect.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use minijinja::context;
use serde::Deserialize;

use super::pages::{self, ADMIN_CSS, ADMIN_JS};
use super::{AdminError, AppState, COOKIE, PREVIEW_CSP};
use crate::dispatch::unix_now;
use crate::domain::SubscriberStatus;
use crate::editor::{self, SOURCE_DASHBOARD};
use crate::i18n::Catalog;
use crate::startup::Drafts;

type Result<T, E = AdminError> = std::result::Result<T, E>;

/// Turns a handler's result into its response, rendering errors with the templates.
pub(super) fn respond(state: &AppState, result: Result<Response>) -> Response {
    result.unwrap_or_else(|e| e.render(state))
}

/// The session id from a validly signed, unexpired `herald_admin` cookie.
fn signed_session(state: &AppState, headers: &HeaderMap) -> Option<i64> {
    let now = unix_now();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .find_map(|(_, value)| state.0.editor.sessions.verify_session(value, now))
}

/// The session id from a valid cookie whose session was not ended by logging out.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<i64>> {
    match signed_session(state, headers) {
        Some(id) if editor::session_is_live(state.app(), id).await? => Ok(Some(id)),
        _ => Ok(None),
    }
}

pub(super) async fn require_session(state: &AppState, headers: &HeaderMap) -> Result<i64> {
    session(state, headers)
        .await?
        .ok_or(AdminError::LoginRequired)
}

/// Every dashboard form: the CSRF token and the fields some forms have.
#[derive(Deserialize, Default)]
pub struct AdminForm {
    csrf: Option<String>,
    to: Option<String>,
    confirm: Option<String>,
    token: Option<String>,
}

/// A POST goes ahead only with a session and that session's CSRF token.
async fn require_csrf(state: &AppState, headers: &HeaderMap, form: &AdminForm) -> Result<i64> {
    require_csrf_token(state, headers, form.csrf.as_deref()).await
}

/// As [`require_csrf`], for a form's `csrf` field read by the handler itself.
pub(super) async fn require_csrf_token(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<i64> {
    let Some(session) = session(state, headers).await? else {
        tracing::info!("dashboard form posted without a session");
        return Err(AdminError::Forbidden);
    };
    match csrf {
        Some(token) if state.0.editor.sessions.verify_csrf(session, token) => Ok(session),
        _ => {
            tracing::warn!("dashboard form with a missing or wrong CSRF token refused");
            Err(AdminError::Forbidden)
        }
    }
}

pub(super) fn page(state: &AppState, name: &str, ctx: minijinja::Value) -> Result<Response> {
    let html = state.0.editor.pages.render(name, ctx)?;
    Ok(Html(html).into_response())
}

pub(super) fn newsletter_name(state: &AppState) -> &str {
    &state.app().settings.newsletter.name
}

/// The catalog the dashboard speaks in (`newsletter.locale`).
fn catalog(state: &AppState) -> &Catalog {
    state.0.editor.pages.catalog()
}

/// The fixed notices a redirect may ask a page to show, in the dashboard's words.
fn notice(state: &AppState, code: Option<&str>) -> Option<String> {
    let id = match code? {
        "test-sent" => "notice-test-sent",
        "sending" => "notice-sending",
        "requeued" => "notice-requeued",
        "nothing-to-retry" => "notice-nothing-to-retry",
        "reactivated" => "notice-reactivated",
        _ => return None,
    };
    Some(catalog(state).t(id))
}

/// Anything else under `/admin`: the not-found page.
pub async fn not_found(State(state): State<AppState>) -> Response {
    AdminError::NotFound.render(&state)
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// `GET /admin/login`.
pub async fn login_form(State(state): State<AppState>) -> Response {
    let r = page(
        &state,
        pages::LOGIN,
        context! { newsletter_name => newsletter_name(&state), error => false },
    );
    respond(&state, r)
}

/// `POST /admin/login`: the admin token in exchange for a session cookie.
pub async fn login(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    Form(form): Form<AdminForm>,
) -> Response {
    let now = unix_now();
    let client = crate::web::client_ip(&extensions);
    let throttle = &state.0.editor.throttle;
    let refuse = |status: StatusCode, error: String| {
        let r = page(
            &state,
            pages::LOGIN,
            context! { newsletter_name => newsletter_name(&state), error },
        )
        .map(|p| (status, p).into_response());
        respond(&state, r)
    };
    if let Some(wait) = throttle.blocked(client, now) {
        let mut response = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            catalog(&state).count("login-throttled", "seconds", wait.max(1)),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
        return response;
    }
    let offered = form.token.as_deref().unwrap_or("").trim();
    if !editor::is_admin_token(&state.0.editor.token, offered) {
        tracing::warn!("dashboard login with a wrong token");
        throttle.failed(client, now);
        return refuse(
            StatusCode::UNAUTHORIZED,
            catalog(&state).t("login-wrong-token"),
        );
    }
    let value = state.0.editor.sessions.new_session(unix_now());
    let secure = if state
        .app()
        .settings
        .newsletter
        .base_url
        .starts_with("https:")
    {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        editor::SESSION_SECONDS
    );
    tracing::info!("dashboard login");
    let mut response = Redirect::to("/admin").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /admin/logout`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AdminForm>,
) -> Response {
    let r = async {
        let session = require_csrf(&state, &headers, &form).await?;
        editor::end_session(state.app(), session).await?;
        tracing::info!("dashboard logout");
        let mut response = Redirect::to("/admin/login").into_response();
        response.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static(
                "herald_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0",
            ),
        );
        Ok(response)
    }
    .await;
    respond(&state, r)
}

/// How many of the latest sent issues the home page compares.
const LATEST_SIDE_BY_SIDE: usize = 3;

/// `GET /admin`: subscriber counts, the latest issues' reports side by side, and every
/// issue with its progress.
pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let r = async {
        let session = require_session(&state, &headers).await?;
        let counts = editor::subscriber_counts(state.app()).await?;
        let total: i64 = counts.iter().map(|(_, n)| n).sum();
        let counts: Vec<_> = counts
            .iter()
            .map(|(s, n)| context! { status => s.as_str(), count => n })
            .collect();
        let issues = editor::list_issues(state.app()).await?;
        // Newest first (as listed), the issues still to send apart from the ones that went out.
        let (sent, unsent): (Vec<_>, Vec<_>) = issues.iter().partition(|i| i.was_queued());
        // The latest issues sent, side by side with their reports.
        let mut latest = Vec::new();
        for issue in sent.iter().take(LATEST_SIDE_BY_SIDE) {
            let slug = editor::parse_slug(&issue.slug)?;
            let report = editor::issue_report(state.app(), &slug).await?;
            latest.push(report_view(&report));
        }
        let unsent: Vec<_> = unsent.into_iter().map(|i| issue_view(&state, i)).collect();
        let sent: Vec<_> = sent.into_iter().map(|i| issue_view(&state, i)).collect();
        let next_run = editor::next_scheduled_run(state.app()).await?;
        let nodes = node_views(&state, &editor::live_nodes(&state.app().store).await?);
        page(
            &state,
            pages::HOME,
            context! {
                nodes,
                live_seconds => crate::nodes::LIVE_WITHIN.as_secs(),
                next_run => next_run,
                newsletter_name => newsletter_name(&state),
                csrf => state.0.editor.sessions.csrf_token(session),
                subscriber_counts => counts,
                subscriber_total => total,
                unsent,
                sent,
                latest,
                notice => notice(&state, q.notice.as_deref()),
            },
        )
    }
    .await;
    respond(&state, r)
}

/// The live nodes for the templates: `id`, `role`, `started` (as [`moment`]), `seen_ago`
/// (seconds since its last heartbeat) and `sent`.
fn node_views(state: &AppState, nodes: &[crate::store::NodeRow]) -> Vec<minijinja::Value> {
    let now = crate::dispatch::unix_now();
    nodes
        .iter()
        .map(|n| {
            let started = chrono::DateTime::from_timestamp(n.started_at, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            context! {
                id => n.id,
                role => n.role,
                started => moment(state, started.as_deref()),
                seen_ago => (now - n.last_seen_at).max(0),
                sent => n.sent,
            }
        })
        .collect()
}

/// An RFC 3339 time as an editor reads it, in the schedule's timezone (`Fri 27 Nov 2026,
/// 09:00 UTC`), and exactly, for a `title`.
fn moment(state: &AppState, rfc3339: Option<&str>) -> minijinja::Value {
    let Some(t) = rfc3339.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
        return minijinja::Value::from(());
    };
    let tz: chrono_tz::Tz = state
        .app()
        .settings
        .schedule
        .timezone
        .parse()
        .unwrap_or(chrono_tz::UTC);
    context! {
        readable => state.0.editor.pages.catalog().datetime(&t.with_timezone(&tz)),
        exact => rfc3339,
    }
}

/// An issue for the templates: its status, with its times readable (`date`, `scheduled`,
/// `started`, `finished`: each `readable` and `exact`, or none) and whether "send now" can
/// do anything (`can_send`).
fn issue_view(state: &AppState, issue: &editor::IssueStatus) -> minijinja::Value {
    context! {
        can_send => issue.can_send(),
        was_queued => issue.was_queued(),
        when => context! {
            date => moment(state, issue.date.as_deref()),
            scheduled => moment(state, issue.scheduled_for.as_deref()),
            started => moment(state, issue.started_at.as_deref()),
            finished => moment(state, issue.finished_at.as_deref()),
        },
        ..minijinja::Value::from_serialize(issue)
    }
}

/// The chart of `report`'s first 72 hours, in the dashboard's words.
fn chart(state: &AppState, report: &crate::tracking::IssueReport) -> String {
    let catalog = catalog(state);
    let hours = |h: i64| {
        catalog.t_with(
            "report-chart-hours",
            &crate::i18n::args(&[("hours", h.into())]),
        )
    };
    let peak = |n: u64| {
        catalog.t_with(
            "report-chart-peak",
            &crate::i18n::args(&[("count", (n as i64).into())]),
        )
    };
    let labels = crate::tracking::chart::ChartLabels {
        title: catalog.t("report-chart-title"),
        clicks: catalog.t("report-chart-clicks"),
        unsubscribes: catalog.t("report-chart-unsubscribes"),
        bounces: catalog.t("report-chart-bounces"),
        hours: [hours(0), hours(24), hours(48), hours(72)],
        peak: &peak,
    };
    crate::tracking::chart::svg(&report.hourly, &labels)
}

/// A report for the templates, with its rates in whole percent (one decimal).
fn report_view(report: &crate::tracking::IssueReport) -> minijinja::Value {
    let percent = |rate: f64| (rate * 1000.0).round() / 10.0;
    context! {
        click_percent => report.clicks.map(|c| percent(c.rate)),
        open_percent => report.opens.map(|o| percent(o.rate)),
        top_links => report.links.iter().take(10).collect::<Vec<_>>(),
        ..minijinja::Value::from_serialize(report)
    }
}

/// `GET /admin/issues/{slug}`.
pub async fn issue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let r = async {
        let session = require_session(&state, &headers).await?;
        let slug = editor::parse_slug(&slug)?;
        let status = editor::issue_status(state.app(), &slug).await?;
        let report = state.issue_report(&slug).await?;
        let chart = (!report.hourly.is_empty())
            .then(|| minijinja::Value::from_safe_string(chart(&state, &report)));
        let findings: Vec<_> = editor::issue_findings(state.app(), &slug)
            .await?
            .into_iter()
            .map(|mut f| {
                (f.message, f.hint) = f.in_locale(catalog(&state));
                f
            })
            .collect();
        let errors = findings.iter().filter(|f| f.is_error()).count();
        page(
            &state,
            pages::ISSUE,
            context! {
                newsletter_name => newsletter_name(&state),
                csrf => state.0.editor.sessions.csrf_token(session),
                issue => issue_view(&state, &status),
                report => report_view(&report),
                chart,
                findings => findings,
                errors => errors,
                notice => notice(&state, q.notice.as_deref()),
            },
        )
    }
    .await;
    respond(&state, r)
}

/// `GET /admin/issues/{slug}/report.csv`: the report as the API gives it, as a download.
pub async fn report_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    let r = async {
        require_session(&state, &headers).await?;
        let slug = editor::parse_slug(&slug)?;
        let report = state.issue_report(&slug).await?;
        let disposition = format!("attachment; filename=\"{}-report.csv\"", slug.as_str());
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            report.to_csv(),
        )
            .into_response())
    }
    .await;
    respond(&state, r)
}

/// `GET /admin/issues/{slug}/report.json`: the report as the API gives it.
pub async fn report_json(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    let r = async {
        require_session(&state, &headers).await?;
        let slug = editor::parse_slug(&slug)?;
        let report = state.issue_report(&slug).await?;
        Ok(axum::Json(report).into_response())
    }
    .await;
    respond(&state, r)
}

/// `GET /admin/issues/{slug}/preview`: the issue as the sample recipient gets it, for the
/// sandboxed iframe of the issue page.
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    let r = async {
        require_session(&state, &headers).await?;
        let slug = editor::parse_slug(&slug)?;
        let html = editor::preview_html(&state.0.app, &slug).await?;
        Ok((
            [(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PREVIEW_CSP),
            )],
            Html(html),
        )
            .into_response())
    }
    .await;
    respond(&state, r)
}

/// `GET /admin/issues/{slug}/progress`: what the progress poller reads.
pub async fn progress(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    let r = async {
        if session(&state, &headers).await?.is_none() {
            return Ok((StatusCode::UNAUTHORIZED, "login required").into_response());
        }
        let slug = editor::parse_slug(&slug)?;
        let status = editor::issue_status(state.app(), &slug).await?;
        let words = catalog(&state);
        let p = &status.progress;
        let progress_label = words.t_with(
            "progress",
            &crate::i18n::args(&[
                ("done", p.done.into()),
                ("total", p.total.into()),
                ("percent", p.percent.into()),
            ]),
        );
        let throttled_labels: Vec<String> = status
            .throttled
            .iter()
            .map(|g| {
                words.t_with(
                    "issue-throttled-group",
                    &crate::i18n::args(&[
                        ("group", g.name.as_str().into()),
                        ("rate", ((g.rate_per_second * 10.0).round() / 10.0).into()),
                    ]),
                )
            })
            .collect();
        Ok(Json(serde_json::json!({
            "throttled": status.throttled,
            "throttled_labels": throttled_labels,
            "status": status.status,
            "status_label": words.t_with(
                "issue-status",
                &crate::i18n::args(&[("status", status.status.as_str().into())]),
            ),
            "progress": status.progress,
            "progress_label": progress_label,
            "counts": status.counts,
        }))
        .into_response())
    }
    .await;
    respond(&state, r)
}

/// `POST /admin/issues/{slug}/test`: one test copy to the address in the form.
pub async fn send_test(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(form): Form<AdminForm>,
) -> Response {
    let r = async {
        require_csrf(&state, &headers, &form).await?;
        let slug = editor::parse_slug(&slug)?;
        let to = form.to.as_deref().unwrap_or("");
        match editor::send_test(state.app(), &slug, to).await {
            Ok(_) => Ok(
                Redirect::to(&format!("/admin/issues/{}?notice=test-sent", slug.as_str()))
                    .into_response(),
            ),
            Err(editor::EditorError::BadInput(_)) => {
                Err(AdminError::Refused("dashboard-error-address", Vec::new()))
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    respond(&state, r)
}

/// `GET /admin/issues/{slug}/send`: the confirmation step before a send.
pub async fn confirm_send(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    let r = async {
        let session = require_session(&state, &headers).await?;
        let slug = editor::parse_slug(&slug)?;
        let status = editor::issue_status(state.app(), &slug).await?;
        let active = editor::subscriber_counts(state.app())
            .await?
            .into_iter()
            .find(|(s, _)| *s == SubscriberStatus::Active)
            .map_or(0, |(_, n)| n);
        page(
            &state,
            pages::CONFIRM_SEND,
            context! {
                newsletter_name => newsletter_name(&state),
                csrf => state.0.editor.sessions.csrf_token(session),
                issue => issue_view(&state, &status),
                active => active,
            },
        )
    }
    .await;
    respond(&state, r)
}

/// `POST /admin/issues/{slug}/send`: sends once the confirmation box is ticked.
pub async fn send_now(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(form): Form<AdminForm>,
) -> Response {
    let r = async {
        require_csrf(&state, &headers, &form).await?;
        let slug = editor::parse_slug(&slug)?;
        if form.confirm.as_deref() != Some("yes") {
            return Err(AdminError::Refused("dashboard-error-tick", Vec::new()));
        }
        // Only where there is something to send: not an issue already sent, nor one whose
        // file is gone (a draft is refused by the library, below).
        let status = editor::issue_status(state.app(), &slug).await?;
        if !status.has_file {
            return Err(AdminError::Refused("issue-file-gone", Vec::new()));
        }
        if !status.draft && !status.can_send() {
            return Err(AdminError::Refused("send-refused-sent", Vec::new()));
        }
        editor::send_now(state.app(), &slug, SOURCE_DASHBOARD, Drafts::Refuse)
            .await
            .map_err(|e| match e {
                editor::EditorError::Draft(_) => AdminError::Refused(
                    "dashboard-error-draft",
                    vec![
                        ("slug", slug.as_str().to_string()),
                        ("line", "draft: true".into()),
                    ],
                ),
                editor::EditorError::Refused { reason, first } => AdminError::Refused(
                    "dashboard-error-check",
                    vec![
                        ("slug", slug.as_str().to_string()),
                        (
                            "finding",
                            first.map_or(reason, |f| f.line_in(catalog(&state))),
                        ),
                    ],
                ),
                e => e.into(),
            })?;
        Ok(
            Redirect::to(&format!("/admin/issues/{}?notice=sending", slug.as_str()))
                .into_response(),
        )
    }
    .await;
    respond(&state, r)
}

/// `POST /admin/issues/{slug}/retry-failed`.
pub async fn retry_failed(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(form): Form<AdminForm>,
) -> Response {
    let r = async {
        require_csrf(&state, &headers, &form).await?;
        let slug = editor::parse_slug(&slug)?;
        let moved = editor::retry_failed(state.app(), &slug).await?;
        let code = if moved > 0 {
            "requeued"
        } else {
            "nothing-to-retry"
        };
        Ok(Redirect::to(&format!("/admin/issues/{}?notice={code}", slug.as_str())).into_response())
    }
    .await;
    respond(&state, r)
}

#[derive(Deserialize)]
pub struct BouncesQuery {
    email: Option<String>,
    notice: Option<String>,
}

/// `GET /admin/bounces[?email=…]`: the latest returned mail, and one subscriber's history.
pub async fn bounces(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<BouncesQuery>,
) -> Response {
    let r = async {
        let session = require_session(&state, &headers).await?;
        let recent = editor::recent_bounces(state.app(), 100).await?;
        let lookup = q.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        let (mut subscriber, mut history, mut error) = (None, Vec::new(), None);
        if let Some(email) = lookup {
            match editor::subscriber_bounces(state.app(), email).await {
                Ok((found, rows)) => {
                    subscriber = Some(context! {
                        email => found.email,
                        status => found.status.as_str(),
                    });
                    history = rows;
                }
                Err(editor::EditorError::NotFound(_)) => {
                    error = Some(catalog(&state).t("bounces-not-found"))
                }
                Err(editor::EditorError::BadInput(_)) => {
                    error = Some(catalog(&state).t("dashboard-error-address"))
                }
                Err(e) => return Err(e.into()),
            }
        }
        page(
            &state,
            pages::BOUNCES,
            context! {
                newsletter_name => newsletter_name(&state),
                csrf => state.0.editor.sessions.csrf_token(session),
                bounces => bounce_rows(catalog(&state), &recent),
                lookup => lookup,
                subscriber => subscriber,
                history => bounce_rows(catalog(&state), &history),
                error => error,
                notice => notice(&state, q.notice.as_deref()),
            },
        )
    }
    .await;
    respond(&state, r)
}

/// Report rows for the templates: the time as the locale writes it (`Fri 27 Nov 2026, 09:12
/// UTC`), and the link to the subscriber's history.
fn bounce_rows(catalog: &Catalog, rows: &[crate::store::BounceRow]) -> Vec<minijinja::Value> {
    rows.iter()
        .map(|b| {
            let received = chrono::DateTime::from_timestamp(b.received_at, 0)
                .map(|t| catalog.datetime(&t))
                .unwrap_or_default();
            let history_link = b.email.as_deref().map(|email| {
                let query: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("email", email)
                    .finish();
                format!("/admin/bounces?{query}")
            });
            context! {
                received,
                history_link,
                ..minijinja::Value::from_serialize(b)
            }
        })
        .collect()
}

/// `POST /admin/bounces/reactivate` (the address in the form's `to`).
pub async fn reactivate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<AdminForm>,
) -> Response {
    let r = async {
        require_csrf(&state, &headers, &form).await?;
        let email = form.to.clone().unwrap_or_default();
        match editor::reactivate_subscriber(state.app(), &email, SOURCE_DASHBOARD).await {
            Ok(()) => {}
            Err(editor::EditorError::NotFound(_)) => {
                return Err(AdminError::Refused("bounces-not-found", Vec::new()))
            }
            Err(editor::EditorError::BadInput(_)) => {
                return Err(AdminError::Refused("dashboard-error-address", Vec::new()))
            }
            Err(editor::EditorError::Conflict(_)) => {
                // Not bounced: say what the subscriber is instead.
                let (found, _) = editor::subscriber_bounces(state.app(), &email).await?;
                return Err(match found.status {
                    SubscriberStatus::Complained => {
                        AdminError::Refused("bounces-error-complained", Vec::new())
                    }
                    status => AdminError::Refused(
                        "bounces-error-not-bounced",
                        vec![(
                            "status",
                            catalog(&state).t_with(
                                "subscriber-status",
                                &crate::i18n::args(&[("status", status.as_str().into())]),
                            ),
                        )],
                    ),
                });
            }
            Err(e) => return Err(e.into()),
        }
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("email", email.trim())
            .append_pair("notice", "reactivated")
            .finish();
        Ok(Redirect::to(&format!("/admin/bounces?{query}#history")).into_response())
    }
    .await;
    respond(&state, r)
}

/// `GET /admin/static/admin.js`.
pub async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        ADMIN_JS,
    )
        .into_response()
}

/// `GET /admin/static/admin.css`: the stylesheet, then the font stack of the dashboard's
/// locale (a CJK stack for Chinese, ...), which the pages cannot carry inline under their
/// Content-Security-Policy.
pub async fn stylesheet(State(state): State<AppState>) -> Response {
    let css = format!(
        "{ADMIN_CSS}body {{ font-family: {}; }}\n",
        catalog(&state).font_family()
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        css,
    )
        .into_response()
}
