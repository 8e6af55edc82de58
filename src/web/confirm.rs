//! `GET` and `POST /confirm/{token}`: the second step of double opt-in.
//!
//! `GET` changes nothing: it shows one button, a plain form that posts back to the same URL
//! (no JavaScript). Mail security scanners fetch every link in a mail (and some follow
//! them), so a link that confirmed on `GET` would confirm addresses nobody confirmed. Only
//! the `POST` confirms: the reader pressed the button.
//!
//! The token is signed for [`Purpose::Confirm`] and one subscriber, and expires seven days
//! after the mail was composed; it is verified in constant time. A valid `POST` makes a
//! `pending` subscriber `active` (with a `confirm` event carrying the IP and user agent) and
//! queues the welcome mail when one is configured. Posting again shows the same page and
//! changes nothing. A changed link gets a friendly 400, an expired one a 410 that offers
//! to sign up again, and a link for a subscriber who has been erased a 410.

use axum::extract::{Path, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::{pages, AppState, Visitor, WebError};
use crate::dispatch::unix_now;
use crate::domain::{Purpose, TokenError};
use crate::render::notice::CONFIRM_DAYS;
use crate::store::ConfirmOutcome;

/// A page that must not be cached anywhere: its URL carries a token.
fn private(status: StatusCode, html: Html<String>) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        html,
    )
        .into_response()
}

/// The link's subscriber id, or the page to answer when the link has expired (410); 400
/// for a link that does not verify.
fn verify(state: &AppState, token: &str) -> Result<Result<i64, Response>, WebError> {
    match state.0.key.verify(Purpose::Confirm, token, unix_now()) {
        Ok(id) => Ok(Ok(id)),
        Err(TokenError::Expired) => {
            let signup_url = state.app().links.base().to_string();
            let heading = state.t("confirm-expired-heading");
            let body = state
                .catalog()
                .count("confirm-expired-body", "days", CONFIRM_DAYS);
            let again = state.t("link-sign-up-again");
            let page = state.message_with_link(
                &heading,
                &[body.as_str()],
                None,
                Some((&signup_url, &again)),
            )?;
            Ok(Err(private(StatusCode::GONE, page)))
        }
        Err(e) => {
            tracing::info!(reason = %e, "confirmation link rejected");
            Err(WebError::BadLink)
        }
    }
}

/// `GET /confirm/{token}`: the one-button page. Changes nothing.
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let id = match verify(&state, &token)? {
        Ok(id) => id,
        Err(expired) => return Ok(expired),
    };
    let subscriber = state
        .app()
        .store
        .find_subscriber_by_id(id)
        .await
        .map_err(WebError::internal)?;
    if subscriber.is_none() {
        let signup_url = state.app().links.base().to_string();
        return Ok(private(
            StatusCode::GONE,
            super::unsubscribe::subscription_gone(&state, &signup_url)?,
        ));
    }
    let page = state.page(
        pages::CONFIRM,
        minijinja::context! {
            newsletter_name => &state.app().settings.newsletter.name,
        },
    )?;
    Ok(private(StatusCode::OK, page))
}

/// `POST /confirm/{token}`: the reader pressed the button.
#[tracing::instrument(skip_all)]
pub async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response, WebError> {
    let id = match verify(&state, &token)? {
        Ok(id) => id,
        Err(expired) => return Ok(expired),
    };
    let signup_url = state.app().links.base().to_string();
    let Visitor { ip, user_agent } = Visitor::of(&headers, &extensions);
    let app = state.app();
    let welcome = app.notices.welcome.is_some();
    let outcome = app
        .store
        .confirm_subscriber(
            id,
            ip.as_deref(),
            user_agent.as_deref(),
            welcome,
            unix_now(),
        )
        .await
        .map_err(WebError::internal)?;
    match outcome {
        ConfirmOutcome::Confirmed | ConfirmOutcome::AlreadyActive => {
            if outcome == ConfirmOutcome::Confirmed {
                tracing::info!(subscriber_id = id, "subscription confirmed");
                if welcome {
                    app.notice_wake.notify_one();
                }
            }
            let line = state.t_newsletter("confirmed-body");
            let archive = format!("{}archive", app.links.base());
            let (heading, hint) = (state.t("confirmed-heading"), state.t("confirmed-hint"));
            let read = state.t("confirmed-archive-link");
            let page = state.message_with_link(
                &heading,
                &[line.as_str()],
                Some(&hint),
                Some((&archive, &read)),
            )?;
            Ok(private(StatusCode::OK, page))
        }
        ConfirmOutcome::NotPending(status) => {
            tracing::info!(subscriber_id = id, status = %status, "confirmation of an opted-out subscriber ignored");
            let (heading, body) = (
                state.t("confirm-not-pending-heading"),
                state.t("confirm-not-pending-body"),
            );
            let again = state.t("link-sign-up-again");
            let page = state.message_with_link(
                &heading,
                &[body.as_str()],
                None,
                Some((&signup_url, &again)),
            )?;
            Ok(private(StatusCode::CONFLICT, page))
        }
        ConfirmOutcome::NotFound => Ok(private(
            StatusCode::GONE,
            super::unsubscribe::subscription_gone(&state, &signup_url)?,
        )),
    }
}
