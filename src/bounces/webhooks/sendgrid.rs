//! SendGrid's signed event webhook: a JSON array of events, signed with ECDSA P-256 over the
//! timestamp header and the raw body.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p256::ecdsa::{signature::Verifier, DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;

use super::{fresh, WebhookError};
use crate::bounces::rules::{classify, stage_of, Evidence, Reason};
use crate::bounces::status::{find_reply, find_status, Status};
use crate::bounces::{Kind, RecipientReport, References, Report};

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
        "spamreport" => Report {
            kind: Kind::Complaint,
            feedback_type: Some("abuse".into()),
            recipients: vec![RecipientReport::plain(email, Reason::Complaint)],
            references,
        },
        "delivered" => Report {
            kind: Kind::Delivered,
            feedback_type: None,
            recipients: vec![RecipientReport::plain(email, Reason::Delivered)],
            references,
        },
        event_name @ ("bounce" | "deferred" | "dropped") => {
            let diagnostic = text("reason");
            let diagnostic = if diagnostic.is_empty() {
                text("response")
            } else {
                diagnostic
            };
            let status = event
                .get("status")
                .and_then(Value::as_str)
                .and_then(Status::parse)
                .or_else(|| find_status(&diagnostic));
            let reply = find_reply(&diagnostic);
            let temporary = event_name == "deferred";
            let mut verdict = classify(&Evidence {
                status,
                reply,
                text: &diagnostic,
                stage: stage_of(&diagnostic),
                temporary,
            });
            if event_name == "dropped" && diagnostic.eq_ignore_ascii_case("Bounced Address") {
                verdict.reason = Reason::UnknownUser;
                verdict.hard = true;
            }
            if text("bounce_classification") == "Invalid Address"
                && verdict.reason == Reason::UnknownUser
                && !temporary
            {
                // SendGrid's own finding confirms the words.
                verdict.hard = true;
            }
            Report {
                kind: if temporary { Kind::Delay } else { Kind::Bounce },
                feedback_type: None,
                recipients: vec![RecipientReport {
                    address: email,
                    status,
                    reply,
                    diagnostic,
                    hard: verdict.hard,
                    reason: verdict.reason,
                }],
                references,
            }
        }
        _ => Report {
            references,
            ..Report::none()
        },
    }
}
