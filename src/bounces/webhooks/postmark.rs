//! Postmark's bounce and spam-complaint webhooks: HTTP basic auth, one event per request.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::{fresh, rfc3339, single, without_diagnostic_type, Failure, WebhookError};
use crate::bounces::rules::Reason;
use crate::bounces::{Kind, References, Report};

/// Postmark signs no time; it retries a failed webhook for about a day and a half. Events
/// older than this are refused.
pub const MAX_EVENT_AGE: u64 = 3 * 24 * 3600;

/// The metadata key herald puts on each copy (`X-PM-Metadata-herald`), holding the
/// return-path token of the delivery.
pub const METADATA_KEY: &str = "herald";

/// Checks the `Authorization: Basic ...` header in constant time.
pub fn check_auth(
    header: Option<&str>,
    username: &str,
    password: &str,
) -> Result<(), WebhookError> {
    let refused =
        || WebhookError::Unauthorized("basic auth credentials are missing or wrong".into());
    let given = header
        .and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        })
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .ok_or_else(refused)?;
    let expected = format!("{username}:{password}");
    if bool::from(given.as_slice().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(refused())
    }
}

/// The report one Postmark event makes. `now` is Unix seconds.
pub fn report(body: &[u8], now: i64) -> Result<Report, WebhookError> {
    let event: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::BadPayload(format!("not JSON: {e}")))?;
    let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default();
    let record = text("RecordType");
    let at = ["BouncedAt", "ReceivedAt", "DeliveredAt"]
        .iter()
        .find_map(|k| event.get(*k).and_then(Value::as_str))
        .and_then(rfc3339)
        .ok_or_else(|| WebhookError::BadPayload("no event time".into()))?;
    if !fresh(at, now, MAX_EVENT_AGE) {
        return Err(WebhookError::Replay("the event is too old".into()));
    }
    let email = event
        .get("Email")
        .or_else(|| event.get("Recipient"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut references = References::default();
    if let Some(metadata) = event.get("Metadata").and_then(Value::as_object) {
        if let Some(token) = metadata.get(METADATA_KEY).and_then(Value::as_str) {
            references.add_return_address(&format!("x+{token}@x"));
        }
    }
    let kind_of_bounce = text("Type");
    let report = match (record, kind_of_bounce) {
        ("SpamComplaint", _) | ("Bounce", "SpamComplaint") => {
            single(Kind::Complaint, email, references)
        }
        ("Bounce", "AutoResponder") => single(Kind::AutoReply, email, references),
        ("Delivery", _) => single(Kind::Delivered, email, references),
        ("Bounce", bounce_type) => {
            let details = without_diagnostic_type(text("Details"));
            let diagnostic = if details.is_empty() {
                text("Description").to_string()
            } else {
                details.to_string()
            };
            let failure = Failure {
                address: email,
                diagnostic,
                status: None,
                reply: None,
                temporary: matches!(bounce_type, "Transient" | "SoftBounce" | "DnsError"),
            };
            // Postmark's own findings where the remote server's words are not enough.
            failure.report(references, |verdict| match bounce_type {
                "HardBounce" | "BadEmailAddress" if !verdict.hard => {
                    if matches!(verdict.reason, Reason::Other | Reason::UnknownUser) {
                        verdict.reason = Reason::UnknownUser;
                        verdict.hard = true;
                    }
                }
                "AddressChange" => {
                    verdict.reason = Reason::Moved;
                    verdict.hard = true;
                }
                "SpamNotification" | "Blocked" | "DMARCPolicy"
                    if verdict.reason == Reason::Other =>
                {
                    verdict.reason = Reason::Blocked;
                }
                _ => {}
            })
        }
        _ => Report {
            references,
            ..Report::none()
        },
    };
    Ok(report)
}
