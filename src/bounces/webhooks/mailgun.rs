//! Mailgun's webhooks (JSON, `event-data` signed with the HTTP webhook signing key).

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{fresh, single, Failure, SeenTokens, WebhookError};
use crate::bounces::rules::Reason;
use crate::bounces::{Kind, References, Report};

/// The custom variable herald sets on each copy (`X-Mailgun-Variables`): the return-path
/// token of the delivery.
pub const VARIABLE: &str = "herald";

/// Checks the `signature` object: HMAC-SHA256(key, timestamp ‖ token) in hex, a timestamp
/// within `max_age` of `now`, and a token not seen before.
pub fn verify(
    body: &Value,
    key: &[u8],
    now: i64,
    max_age: u64,
    seen: &SeenTokens,
) -> Result<(), WebhookError> {
    let signature = body
        .get("signature")
        .ok_or_else(|| WebhookError::Unauthorized("no signature".into()))?;
    let field = |k: &str| signature.get(k).and_then(Value::as_str).unwrap_or_default();
    let (timestamp, token, given) = (field("timestamp"), field("token"), field("signature"));
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    let expected = hex(&mac.finalize().into_bytes());
    if token.is_empty()
        || !bool::from(
            expected
                .as_bytes()
                .ct_eq(given.to_ascii_lowercase().as_bytes()),
        )
    {
        return Err(WebhookError::Unauthorized(
            "the Mailgun signature does not verify".into(),
        ));
    }
    let at: i64 = timestamp
        .parse()
        .map_err(|_| WebhookError::Unauthorized("the timestamp is not a number".into()))?;
    if !fresh(at, now, max_age) {
        return Err(WebhookError::Replay("the signature is too old".into()));
    }
    if !seen.first_time(token, now, max_age) {
        return Err(WebhookError::Replay(
            "this signature was used before".into(),
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The report of a verified event.
pub fn report(body: &Value) -> Result<Report, WebhookError> {
    let event = body
        .get("event-data")
        .ok_or_else(|| WebhookError::BadPayload("no event-data".into()))?;
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let recipient = event
        .get("recipient")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut references = References::default();
    if let Some(id) = event
        .get("message")
        .and_then(|m| m.get("headers"))
        .and_then(|h| h.get("message-id"))
        .and_then(Value::as_str)
    {
        references.add_message_id(id);
    }
    if let Some(token) = event
        .get("user-variables")
        .and_then(|v| v.get(VARIABLE))
        .and_then(Value::as_str)
    {
        references.add_return_address(&format!("x+{token}@x"));
    }
    let report = match text(event, "event").as_str() {
        "complained" => single(Kind::Complaint, recipient, references),
        "delivered" => single(Kind::Delivered, recipient, references),
        "failed" => {
            let status_block = event.get("delivery-status").cloned().unwrap_or(Value::Null);
            let message = text(&status_block, "message");
            let description = text(&status_block, "description");
            let diagnostic = [message.as_str(), description.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let temporary = text(event, "severity") == "temporary";
            let suppressed = text(event, "reason") == "suppress-bounce" && !temporary;
            let failure = Failure {
                address: recipient,
                diagnostic,
                status: status_block.get("enhanced-code").and_then(Value::as_str),
                reply: status_block.get("code").and_then(Value::as_u64),
                temporary,
            };
            failure.report(references, |verdict| {
                if suppressed {
                    // Mailgun refused to send: the address bounced hard before.
                    verdict.reason = Reason::UnknownUser;
                    verdict.hard = true;
                }
            })
        }
        _ => Report {
            references,
            ..Report::none()
        },
    };
    Ok(report)
}
