//! `GET` and `POST /unsubscribe/{token}`, and `POST /resubscribe/{token}`.
//!
//! `GET` shows one button, a plain form that posts back to the same URL (no JavaScript).
//! `POST` is RFC 8058 one-click: no cookie, no CSRF token, no redirect; the signed token is
//! the whole authority, and the unsubscribe takes effect before the 200 is sent. The body
//! (`List-Unsubscribe=One-Click` from mail clients, the same from the page's form) is not
//! required, since some clients post an empty or multipart body.
//!
//! The page shown after unsubscribing offers a way back: a "Resubscribe" button, a plain
//! form posting the same signed token to `/resubscribe/{token}`. That token never expires and
//! travels in every issue, forwarded ones too, so holding it does not prove the reader wants
//! the newsletter again: resubscribing is a new double opt-in. It records the request and
//! queues a confirmation mail, as a sign-up through the form would, and the reader is back
//! on the list once they confirm from that mail.

use axum::extract::{Path, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::{pages, AppState, Visitor, WebError};
use crate::domain::{EmailAddress, SubscriberStatus, TokenError, UnsubscribeToken};
use crate::store::{NewSignup, StatusChange};

/// The subscriber id of the test and preview copies (no such row).
const TEST_RECIPIENT: i64 = 0;

/// The link's subscriber id, or 400 for a link that does not verify.
fn verify(state: &AppState, token: &str) -> Result<i64, WebError> {
    verify_with_issue(state, token).map(|t| t.subscriber_id)
}

/// The link's subscriber id and the issue it came in (links of older copies name none).
fn verify_with_issue(state: &AppState, token: &str) -> Result<UnsubscribeToken, WebError> {
    state
        .0
        .key
        .verify_unsubscribe(token)
        .map_err(|e: TokenError| {
            tracing::info!(reason = %e, "unsubscribe link rejected");
            WebError::BadLink
        })
}

/// A page that must not be cached anywhere: its URL carries a token.
fn private(html: Html<String>) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        html,
    )
        .into_response()
}

fn test_copy(state: &AppState) -> Result<Response, WebError> {
    let (heading, body) = (state.t("test-copy-heading"), state.t("test-copy-body"));
    state.message(&heading, &[body.as_str()], None).map(private)
}

/// The page for a link whose subscriber was erased, with a link to sign up again.
pub(super) fn subscription_gone(
    state: &AppState,
    signup_url: &str,
) -> Result<Html<String>, WebError> {
    let heading = state.t("subscription-gone-heading");
    let body = state.t("subscription-gone-body");
    let again = state.t("link-sign-up-again");
    state.message_with_link(&heading, &[body.as_str()], None, Some((signup_url, &again)))
}

/// The page after unsubscribing; with `resubscribe` (the token) it offers a button to
/// come back.
fn done(state: &AppState, resubscribe: Option<&str>) -> Result<Response, WebError> {
    let resubscribe_url =
        resubscribe.map(|token| format!("{}resubscribe/{token}", state.app().links.base()));
    state
        .page(
            pages::UNSUBSCRIBED,
            minijinja::context! {
                newsletter_name => &state.app().settings.newsletter.name,
                resubscribe_url,
                signup_url => state.app().links.base().as_str(),
            },
        )
        .map(private)
}

/// `j***@example.org`: enough for the reader to recognise, too little to harvest.
fn mask(email: &str) -> String {
    let (local, domain) = email.rsplit_once('@').unwrap_or(("", ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

/// `GET /unsubscribe`: the generic target of the web version's unsubscribe link.
pub async fn without_token(State(state): State<AppState>) -> Result<Response, WebError> {
    let heading = state.t("unsubscribe-generic-heading");
    let body = state.t("unsubscribe-generic-body");
    state
        .message(&heading, &[body.as_str()], None)
        .map(IntoResponse::into_response)
}

/// `GET /unsubscribe/{token}`: the one-button confirmation page.
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let id = verify(&state, &token)?;
    if id == TEST_RECIPIENT {
        return test_copy(&state);
    }
    let subscriber = state
        .app()
        .store
        .find_subscriber_by_id(id)
        .await
        .map_err(WebError::internal)?;
    if let Some(s) = subscriber.as_ref().filter(|s| s.status.is_opted_out()) {
        let offer = (s.status == SubscriberStatus::Unsubscribed).then_some(token.as_str());
        return done(&state, offer);
    }
    // An erased subscriber gets the same form with no address: nothing tells whether one
    // was ever held.
    let masked_email = subscriber.map(|s| mask(&s.email));
    state
        .page(
            pages::UNSUBSCRIBE,
            minijinja::context! {
                newsletter_name => &state.app().settings.newsletter.name,
                masked_email,
            },
        )
        .map(private)
}

/// `POST /unsubscribe/{token}`: RFC 8058 one-click. 200 on success, on a repeat and for an
/// unknown subscriber alike; 400 for a link that does not verify.
#[tracing::instrument(skip_all)]
pub async fn one_click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response, WebError> {
    let UnsubscribeToken {
        subscriber_id: id,
        issue_id,
    } = verify_with_issue(&state, &token)?;
    if id == TEST_RECIPIENT {
        return test_copy(&state);
    }
    let Visitor { ip, user_agent } = Visitor::of(&headers, &extensions);
    let change = state
        .app()
        .store
        .unsubscribe_subscriber_by_id(id, issue_id, "web", ip.as_deref(), user_agent.as_deref())
        .await
        .map_err(WebError::internal)?;
    let offer = match change {
        StatusChange::Changed { from } => {
            tracing::info!(subscriber_id = id, from = %from, "unsubscribed");
            true
        }
        StatusChange::Unchanged => state
            .app()
            .store
            .find_subscriber_by_id(id)
            .await
            .map_err(WebError::internal)?
            .is_some_and(|s| s.status == SubscriberStatus::Unsubscribed),
        StatusChange::NotFound => false,
    };
    done(&state, offer.then_some(token.as_str()))
}

/// `POST /resubscribe/{token}` (the unsubscribe link's token): an `unsubscribed` (or still
/// `pending`) reader is sent a new confirmation mail, through the same sign-up writer as the
/// form; they are back on the list once they confirm from that mail. An `active` reader is
/// told so, a `bounced` or `complained` one is pointed to the form. Repeating it is
/// harmless (one confirmation mail per ten minutes).
#[tracing::instrument(skip_all)]
pub async fn resubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response, WebError> {
    let id = verify(&state, &token)?;
    if id == TEST_RECIPIENT {
        return test_copy(&state);
    }
    let subscriber = state
        .app()
        .store
        .find_subscriber_by_id(id)
        .await
        .map_err(WebError::internal)?;
    let signup_url = state.app().links.base().to_string();
    let (code, page) = match subscriber {
        Some(s)
            if matches!(
                s.status,
                SubscriberStatus::Unsubscribed | SubscriberStatus::Pending
            ) =>
        {
            let Visitor { ip, user_agent } = Visitor::of(&headers, &extensions);
            let signup = NewSignup {
                email: EmailAddress::parse(&s.email).map_err(WebError::internal)?,
                name: None,
                consent: state.0.consent.clone(),
                ip,
                user_agent,
                via: "resubscribe",
            };
            let outcome = state
                .0
                .signups
                .submit(signup)
                .await
                .map_err(WebError::internal)?;
            tracing::info!(subscriber_id = id, outcome = ?outcome, "resubscribe asked; confirmation mail queued");
            let heading = state.t("resubscribe-sent-heading");
            let line = state.t_newsletter("resubscribe-sent-body");
            (
                StatusCode::OK,
                state.message(&heading, &[line.as_str()], None)?,
            )
        }
        Some(s) if s.status == SubscriberStatus::Active => {
            let heading = state.t("confirmed-heading");
            let line = state.t_newsletter("confirmed-body");
            (
                StatusCode::OK,
                state.message(&heading, &[line.as_str()], None)?,
            )
        }
        Some(_) => {
            let heading = state.t("resubscribe-refused-heading");
            let body = state.t("resubscribe-refused-body");
            let sign_up = state.t("link-sign-up");
            let page = state.message_with_link(
                &heading,
                &[body.as_str()],
                None,
                Some((&signup_url, &sign_up)),
            )?;
            (StatusCode::CONFLICT, page)
        }
        None => (StatusCode::GONE, subscription_gone(&state, &signup_url)?),
    };
    let mut response = private(page);
    *response.status_mut() = code;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_all_but_the_first_letter_of_the_local_part() {
        assert_eq!(mask("jane.doe@example.org"), "j***@example.org");
    }
}
