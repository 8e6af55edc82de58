//! `GET` and `POST /unsubscribe/{token}`.
//!
//! `GET` shows one button, a plain form that posts back to the same URL (no JavaScript).
//! `POST` is RFC 8058 one-click: no cookie, no CSRF token, no redirect; the signed token is
//! the whole authority, and the unsubscribe takes effect before the 200 is sent. The body
//! (`List-Unsubscribe=One-Click` from mail clients, the same from the page's form) is not
//! required, since some clients post an empty or multipart body.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

use super::{pages, AppState, WebError};
use crate::dispatch::unix_now;
use crate::domain::{Purpose, TokenError};
use crate::store::StatusChange;

/// The subscriber id of the test and preview copies (no such row).
const TEST_RECIPIENT: i64 = 0;
/// Longest user agent kept on the event.
const USER_AGENT_MAX: usize = 512;

/// The link's subscriber id, or 400 for a link that does not verify.
fn verify(state: &AppState, token: &str) -> Result<i64, WebError> {
    state
        .0
        .key
        .verify(Purpose::Unsubscribe, token, unix_now())
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
    state
        .message(
            "This was a test copy",
            &[
                "The link came from a test or preview copy of the newsletter, which is not \
               sent to anyone on the list, so there is nothing to unsubscribe from.",
            ],
            None,
        )
        .map(private)
}

fn done(state: &AppState) -> Result<Response, WebError> {
    let name = &state.app().settings.newsletter.name;
    let line = format!("You will not receive {name} any more.");
    state
        .message(
            "You are unsubscribed",
            &[line.as_str()],
            Some(
                "Changed your mind? You can sign up again from the newsletter's home page; \
                 you will be asked to confirm your address.",
            ),
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
    state
        .message(
            "Unsubscribe",
            &[
                "To unsubscribe, use the unsubscribe link at the bottom of any issue you \
               received by email: it is personal to your address.",
            ],
            None,
        )
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
    if subscriber.as_ref().is_some_and(|s| s.status.is_opted_out()) {
        return done(&state);
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
    let id = verify(&state, &token)?;
    if id == TEST_RECIPIENT {
        return test_copy(&state);
    }
    let ip = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(USER_AGENT_MAX).collect::<String>());
    let change = state
        .app()
        .store
        .unsubscribe_subscriber_by_id(id, "web", ip.as_deref(), user_agent.as_deref())
        .await
        .map_err(WebError::internal)?;
    match change {
        StatusChange::Changed { from } => {
            tracing::info!(subscriber_id = id, from = %from, "unsubscribed")
        }
        StatusChange::Unchanged | StatusChange::NotFound => {}
    }
    done(&state)
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_all_but_the_first_letter_of_the_local_part() {
        assert_eq!(mask("jane.doe@example.org"), "j***@example.org");
    }
}
