//! SendGrid's signed event webhook: a JSON array of events, signed with ECDSA P-256 over the
//! timestamp header and the raw body.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p256::ecdsa::{signature::Verifier, DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;

use super::{fresh, single, Failure, WebhookError};
use crate::bounces::rules::Reason;
use crate::bounces::{Kind, References, Report};

/// The custom argument herald sets on each copy (`X-SMTPAPI` unique_args): the return-path
/// token of the delivery. SendGrid puts it on every event as a field of its own.
pub const ARGUMENT: &str = "herald";

/// The verification key from `webhooks.sendgrid_public_key` (base64 DER, as SendGrid's
/// settings page shows it).
pub fn key(base64_der: &str) -> Result<VerifyingKey, String> {
    let der = STANDARD
        .decode(base64_der.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    VerifyingKey::from_public_key_der(&der).map_err(|e| format!("not an ECDSA P-256 key: {e}"))
}

/// Checks the signature header (base64 DER ECDSA) over `timestamp ‖ body`, and that the
/// timestamp header is within `max_age` of `now`.
pub fn verify(
    key: &VerifyingKey,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
    max_age: u64,
) -> Result<(), WebhookError> {
    let refused = || WebhookError::Unauthorized("the SendGrid signature does not verify".into());
    let (signature, timestamp) = signature.zip(timestamp).ok_or_else(refused)?;
    let signature = STANDARD
        .decode(signature.trim())
        .ok()
        .and_then(|der| DerSignature::try_from(der.as_slice()).ok())
        .ok_or_else(refused)?;
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    key.verify(&signed, &signature).map_err(|_| refused())?;
    let at: i64 = timestamp.trim().parse().map_err(|_| refused())?;
    if !fresh(at, now, max_age) {
        return Err(WebhookError::Replay("the signature is too old".into()));
    }
    Ok(())
}

/// One report per event of a verified body, with each event's own JSON (its identity).
pub fn reports(body: &[u8]) -> Result<Vec<(Report, Vec<u8>)>, WebhookError> {
    let events: Vec<Value> = serde_json::from_slice(body)
        .map_err(|e| WebhookError::BadPayload(format!("not a JSON array of events: {e}")))?;
    Ok(events
        .into_iter()
        .map(|event| {
            let identity = serde_json::to_vec(&event).unwrap_or_default();
            (report(&event), identity)
        })
        .collect())
}

fn report(event: &Value) -> Report {
    let text = |k: &str| {
        event
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let email = event
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut references = References::default();
    if let Some(id) = event.get("smtp-id").and_then(Value::as_str) {
        references.add_message_id(id);
    }
    if let Some(token) = event.get(ARGUMENT).and_then(Value::as_str) {
        references.add_return_address(&format!("x+{token}@x"));
    }
    match text("event").as_str() {
        "spamreport" => single(Kind::Complaint, email, references),
        "delivered" => single(Kind::Delivered, email, references),
        event_name @ ("bounce" | "deferred" | "dropped") => {
            let diagnostic = text("reason");
            let diagnostic = if diagnostic.is_empty() {
                text("response")
            } else {
                diagnostic
            };
            let temporary = event_name == "deferred";
            let dropped_as_bounced =
                event_name == "dropped" && diagnostic.eq_ignore_ascii_case("Bounced Address");
            let invalid_address = text("bounce_classification") == "Invalid Address";
            let failure = Failure {
                address: email,
                diagnostic,
                status: event.get("status").and_then(Value::as_str),
                reply: None,
                temporary,
            };
            failure.report(references, |verdict| {
                if dropped_as_bounced {
                    verdict.reason = Reason::UnknownUser;
                    verdict.hard = true;
                }
                if invalid_address && verdict.reason == Reason::UnknownUser && !temporary {
                    // SendGrid's own finding confirms the words.
                    verdict.hard = true;
                }
            })
        }
        _ => Report {
            references,
            ..Report::none()
        },
    }
}
