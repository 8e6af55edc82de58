//! `GET /` (the sign-up form) and `POST /subscribe` (form or JSON).
//!
//! The handlers are thin: [`crate::signup`] parses and rate-limits, and its writer makes the
//! sign-up durable (subscriber, consent event, confirmation mail queued) before the answer
//! is sent. The answer to an accepted sign-up never depends on what was already known about
//! the address (new, pending, active or unsubscribed), nor on the honeypot: it is the same
//! bytes every time, so the form cannot be used to learn who is on the list.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::{pages, AppState, Pages, WebError};
use crate::render::RenderError;
use crate::signup::{self, Parsed, Requester, SignupError, SignupFields};

/// The honeypot field's name: a field robots fill in and people never see.
const HONEYPOT: &str = "website";

/// The thank-you page, rendered once (it is the same for everyone).
pub(super) fn thanks_page(pages: &Pages, newsletter_name: &str) -> Result<String, RenderError> {
    let catalog = pages.catalog();
    pages.render(
        pages::MESSAGE,
        minijinja::context! {
            newsletter_name,
            heading => catalog.t("thanks-heading"),
            paragraphs => vec![catalog.t("thanks-body"), catalog.t("thanks-spam")],
            hint => catalog.t("thanks-hint"),
        },
    )
}

/// The message of a refused sign-up, in the reader's words: one sentence per problem.
fn error_message(state: &AppState, error: &SignupError) -> String {
    use crate::domain::{EmailError, NameError};
    let catalog = state.catalog();
    let id = match error {
        SignupError::MissingEmail | SignupError::InvalidEmail(EmailError::Empty) => {
            "signup-error-email-empty"
        }
        SignupError::InvalidEmail(EmailError::TooLong) => "signup-error-email-too-long",
        SignupError::InvalidEmail(EmailError::ForbiddenCharacter) => "signup-error-email-character",
        SignupError::InvalidEmail(EmailError::MissingAt) => "signup-error-email-at",
        SignupError::InvalidEmail(EmailError::LocalTooLong) => "signup-error-email-local-too-long",
        SignupError::InvalidEmail(EmailError::BadLocal) => "signup-error-email-local",
        SignupError::InvalidEmail(EmailError::BadDomain(_)) => "signup-error-email-domain",
        SignupError::InvalidName(NameError::ControlCharacter) => "signup-error-name-character",
        SignupError::InvalidName(NameError::Invisible(_)) => "signup-error-name-invisible",
        SignupError::InvalidName(NameError::TooLong) => {
            return catalog.t_with(
                "signup-error-name-too-long",
                &crate::i18n::args(&[("max", (crate::domain::MAX_NAME_CHARS as i64).into())]),
            )
        }
        SignupError::Unavailable(_) => "signup-unavailable",
    };
    catalog.t(id)
}

/// Responses here depend on the request body: no shared cache may keep them.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /`: the empty sign-up form.
pub async fn form(State(state): State<AppState>) -> Result<Response, WebError> {
    render_form(&state, &SignupFields::default(), None).map(IntoResponse::into_response)
}

fn render_form(
    state: &AppState,
    fields: &SignupFields,
    error: Option<&SignupError>,
) -> Result<Html<String>, WebError> {
    let settings = &state.app().settings;
    let errors = error.and_then(|e| e.field().map(|field| (field, error_message(state, e))));
    let errors: std::collections::BTreeMap<&str, String> = errors.into_iter().collect();
    state.page(
        pages::SIGNUP,
        minijinja::context! {
            newsletter_name => &settings.newsletter.name,
            consent => &state.0.consent,
            email => fields.email.as_deref().unwrap_or_default(),
            name => fields.name.as_deref().unwrap_or_default(),
            errors => if errors.is_empty() { None } else { Some(errors) },
            honeypot => HONEYPOT,
            archive_url => format!("{}archive", state.app().links.base()),
        },
    )
}

/// How the client speaks: decides the body it gets back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Form,
    Json,
}

fn format_of(headers: &HeaderMap) -> Option<Format> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => Some(Format::Form),
        "application/json" => Some(Format::Json),
        _ => None,
    }
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    no_store((status, axum::Json(body)).into_response())
}

/// `POST /subscribe`.
#[tracing::instrument(skip_all)]
pub async fn subscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some(format) = format_of(&headers) else {
        return Ok(json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            &state.t("signup-json-unsupported"),
        ));
    };
    let ip = extensions.get::<super::ClientIp>().map(|c| c.0);
    if let Some(ip) = ip {
        if let Err(wait) = state.0.signup_limiter.check(ip) {
            return too_many(&state, format, wait);
        }
    }
    let fields = match format {
        Format::Json => match serde_json::from_slice::<SignupFields>(&body) {
            Ok(fields) => fields,
            Err(_) => {
                return Ok(json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    &state.t("signup-json-invalid"),
                ))
            }
        },
        Format::Form => form_fields(&body),
    };
    let requester = Requester {
        ip,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        via: match format {
            Format::Form => "form",
            Format::Json => "json",
        },
    };
    let parsed = signup::parse(&fields, &state.0.consent, &requester);
    let result = match parsed {
        Ok(Parsed::Honeypot) => {
            tracing::info!("honeypot filled in; nothing stored");
            Ok(())
        }
        Ok(Parsed::Signup(new)) => {
            let masked = new.email.masked();
            state.0.signups.submit(new).await.map(|outcome| {
                tracing::debug!(email = %masked, outcome = ?outcome, "sign-up recorded");
            })
        }
        Err(e) => Err(e),
    };
    match (result, format) {
        (Ok(()), Format::Form) => Ok(no_store(Html(state.0.thanks.to_string()).into_response())),
        (Ok(()), Format::Json) => {
            let body = serde_json::json!({ "status": "ok", "message": state.t("thanks-json") });
            Ok(no_store(axum::Json(body).into_response()))
        }
        (Err(SignupError::Unavailable(cause)), Format::Json) => {
            tracing::error!(%cause, "sign-up not recorded");
            Ok(json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &state.t("signup-unavailable"),
            ))
        }
        (Err(SignupError::Unavailable(cause)), Format::Form) => Err(WebError::internal(
            std::io::Error::other(format!("sign-up not recorded: {cause}")),
        )),
        (Err(e), Format::Json) => Ok(json_error(
            StatusCode::BAD_REQUEST,
            e.code(),
            &error_message(&state, &e),
        )),
        (Err(e), Format::Form) => {
            let page = render_form(&state, &fields, Some(&e))?;
            Ok(no_store((StatusCode::BAD_REQUEST, page).into_response()))
        }
    }
}

/// The fields of a form body. The first value of a repeated field counts.
fn form_fields(body: &[u8]) -> SignupFields {
    let mut fields = SignupFields::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        let slot = match key.as_ref() {
            "email" => &mut fields.email,
            "name" => &mut fields.name,
            HONEYPOT => &mut fields.website,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }
    fields
}

/// 429 with Retry-After (whole seconds, rounded up).
fn too_many(state: &AppState, format: Format, wait: Duration) -> Result<Response, WebError> {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let message = state.catalog().t_with(
        "rate-limit-body",
        &crate::i18n::args(&[("seconds", (seconds as i64).into())]),
    );
    let mut response = match format {
        Format::Json => json_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", &message),
        Format::Form => {
            let heading = state.t("rate-limit-heading");
            let page = state.message(&heading, &[message.as_str()], None)?;
            no_store((StatusCode::TOO_MANY_REQUESTS, page).into_response())
        }
    };
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&seconds.to_string()).expect("digits are a valid header value"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_decoded_and_the_first_value_wins() {
        let f = form_fields(b"email=a%40example.org&name=Ada+L%0D%0Ax&email=b%40x.org&website=");
        assert_eq!(f.email.as_deref(), Some("a@example.org"));
        assert_eq!(f.name.as_deref(), Some("Ada L\r\nx"));
        assert_eq!(f.website.as_deref(), Some(""));
    }

    #[test]
    fn content_types_choose_the_answer_format() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(format_of(&h), Some(Format::Json));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded"),
        );
        assert_eq!(format_of(&h), Some(Format::Form));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(format_of(&h), None);
    }
}
