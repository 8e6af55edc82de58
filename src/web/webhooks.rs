//! `/webhooks/...`: returned-mail notifications from sending services (see
//! [`crate::bounces::webhooks`] for what each proves and how). Each endpoint answers 404
//! until its secret is configured, 401 with the reason when a request does not verify or
//! is a replay, 400 for a payload that is not the service's, and 200 once every report in it
//! is stored (a 5xx makes the service try again).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use secrecy::ExposeSecret;

use super::AppState;
use crate::bounces::webhooks::sns::{SnsVerifier, Verified};
use crate::bounces::webhooks::{mailgun, postmark, sendgrid, SeenTokens, WebhookError};
use crate::bounces::{self, Channel, Report};
use crate::config::WebhookSettings;
use crate::startup::{App, StartupError};

/// The largest notification accepted. SendGrid batches events, up to a few hundred KB.
const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// What the webhook endpoints keep between requests.
pub struct Webhooks {
    settings: WebhookSettings,
    sns: Option<SnsVerifier>,
    sendgrid: Option<p256::ecdsa::VerifyingKey>,
    mailgun_seen: SeenTokens,
}

impl Webhooks {
    pub fn new(app: &App) -> Result<Self, StartupError> {
        let settings = app.settings.webhooks.clone();
        let sns = (!settings.ses_topic_arns.is_empty()).then(|| {
            SnsVerifier::new(
                app.sns_http.clone(),
                settings.ses_topic_arns.clone(),
                settings.max_age_seconds,
            )
        });
        let sendgrid = settings
            .sendgrid_public_key
            .as_deref()
            .map(|key| {
                sendgrid::key(key).map_err(|message| {
                    StartupError::Config(crate::config::ConfigError::Key {
                        file: "settings".into(),
                        key: "webhooks.sendgrid_public_key".into(),
                        message,
                    })
                })
            })
            .transpose()?;
        Ok(Self {
            settings,
            sns,
            sendgrid,
            mailgun_seen: SeenTokens::default(),
        })
    }
}

/// The webhook routes, to be nested at `/webhooks`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ses", post(ses))
        .route("/postmark", post(postmark_hook))
        .route("/mailgun", post(mailgun_hook))
        .route("/sendgrid", post(sendgrid_hook))
        .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
}

fn refused(e: WebhookError) -> Response {
    let status = match e {
        WebhookError::Unauthorized(_) | WebhookError::Replay(_) => StatusCode::UNAUTHORIZED,
        WebhookError::BadPayload(_) => StatusCode::BAD_REQUEST,
        WebhookError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    tracing::info!(%status, reason = %e, "webhook refused");
    let mut response = (status, format!("{e}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"herald webhooks\""),
        );
    }
    response
}

fn not_configured() -> Response {
    (StatusCode::NOT_FOUND, "this webhook is not configured\n").into_response()
}

/// Applies each report with its identity; 200 once all are stored.
async fn apply_all(
    state: &AppState,
    channel: Channel,
    reports: Vec<(Report, Vec<u8>)>,
) -> Response {
    let now = crate::dispatch::unix_now();
    let mut stored = 0usize;
    for (report, identity) in &reports {
        if report.kind == bounces::Kind::None {
            continue;
        }
        match state
            .app()
            .bounces
            .apply(report, identity, channel, &[], now)
            .await
        {
            Ok(applied) => {
                stored += 1;
                tracing::info!(
                    channel = channel.as_str(),
                    kind = report.kind.as_str(),
                    duplicate = applied.duplicate,
                    "webhook report"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store a webhook report");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cannot store the report now\n",
                )
                    .into_response();
            }
        }
    }
    (StatusCode::OK, format!("ok, {stored} stored\n")).into_response()
}

async fn ses(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(verifier) = &state.0.webhooks.sns else {
        return not_configured();
    };
    let verified = match verifier.verify(&body, crate::dispatch::unix_now()).await {
        Ok(v) => v,
        Err(e) => return refused(e),
    };
    match verified {
        Verified::Subscribed { topic_arn } => {
            tracing::info!(topic = %topic_arn, "SNS subscription confirmed");
            (StatusCode::OK, "subscribed\n").into_response()
        }
        Verified::Unsubscribed => (StatusCode::OK, "ok\n").into_response(),
        Verified::Notification {
            message_id,
            message,
        } => {
            let report = serde_json::from_str::<serde_json::Value>(&message)
                .ok()
                .and_then(|json| bounces::ses::report(&json));
            match report {
                Some(report) => {
                    apply_all(
                        &state,
                        Channel::Ses,
                        vec![(report, message_id.into_bytes())],
                    )
                    .await
                }
                // Another SES event type (send, open, click...): nothing to do.
                None => (StatusCode::OK, "ignored\n").into_response(),
            }
        }
    }
}

async fn postmark_hook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let settings = &state.0.webhooks.settings;
    let (Some(user), Some(password)) = (&settings.postmark_username, &settings.postmark_password)
    else {
        return not_configured();
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = postmark::check_auth(auth, user, password.expose_secret()) {
        return refused(e);
    }
    match postmark::report(&body, crate::dispatch::unix_now()) {
        Ok(report) => apply_all(&state, Channel::Postmark, vec![(report, body.to_vec())]).await,
        Err(e) => refused(e),
    }
}

async fn mailgun_hook(State(state): State<AppState>, body: Bytes) -> Response {
    let hooks = &state.0.webhooks;
    let Some(key) = &hooks.settings.mailgun_signing_key else {
        return not_configured();
    };
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(json) => json,
        Err(e) => return refused(WebhookError::BadPayload(format!("not JSON: {e}"))),
    };
    if let Err(e) = mailgun::verify(
        &json,
        key.expose_secret().as_bytes(),
        crate::dispatch::unix_now(),
        hooks.settings.max_age_seconds,
        &hooks.mailgun_seen,
    ) {
        return refused(e);
    }
    match mailgun::report(&json) {
        Ok(report) => {
            let identity = serde_json::to_vec(&json["event-data"]).unwrap_or_default();
            apply_all(&state, Channel::Mailgun, vec![(report, identity)]).await
        }
        Err(e) => refused(e),
    }
}

async fn sendgrid_hook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let hooks = &state.0.webhooks;
    let Some(key) = &hooks.sendgrid else {
        return not_configured();
    };
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = sendgrid::verify(
        key,
        header_text("x-twilio-email-event-webhook-signature"),
        header_text("x-twilio-email-event-webhook-timestamp"),
        &body,
        crate::dispatch::unix_now(),
        hooks.settings.max_age_seconds,
    ) {
        return refused(e);
    }
    match sendgrid::reports(&body) {
        Ok(reports) => apply_all(&state, Channel::Sendgrid, reports).await,
        Err(e) => refused(e),
    }
}
