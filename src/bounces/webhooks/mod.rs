//! Returned-mail notifications from sending services, each verified the service's way before
//! a byte of it is believed. `web/` answers the HTTP side (`/webhooks/...`); this module
//! checks signatures and secrets, refuses replays, and turns each payload into [`Report`]s
//! for the same policy as every other channel.
//!
//! | service | path | proof | replay window |
//! | --- | --- | --- | --- |
//! | Amazon SES through SNS | `/webhooks/ses` | the SNS message signature (RSA, SHA1 or SHA256), the certificate fetched only from `https://sns.<region>.amazonaws.com/*.pem` and cached; the topic ARN on `webhooks.ses_topic_arns` | the message's `Timestamp` |
//! | Postmark | `/webhooks/postmark` | HTTP basic auth (`webhooks.postmark_username`/`_password`) | the event's `BouncedAt` (Postmark signs no time; 3 days covers its retries) |
//! | Mailgun | `/webhooks/mailgun` | HMAC-SHA256 of timestamp and token with `webhooks.mailgun_signing_key`; each token once | the signed timestamp |
//! | SendGrid | `/webhooks/sendgrid` | the signed event webhook: ECDSA P-256 over timestamp and body, with `webhooks.sendgrid_public_key` | the signed timestamp |
//!
//! Within the window, a payload sent again counts once: the store keys every report by a
//! hash of what came in.
//!
//! [`Report`]: super::Report

pub mod mailgun;
pub mod postmark;
pub mod sendgrid;
pub mod sns;

use super::rules::{classify, stage_of, Evidence, Reason, Verdict};
use super::status::{find_reply, find_status, ReplyCode, Status};
use super::{Kind, RecipientReport, References, Report};

/// Why a webhook request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Missing or wrong signature or credentials (HTTP 401).
    #[error("{0}")]
    Unauthorized(String),
    /// Signed, but outside the replay window or seen before (HTTP 401 too: it proves nothing now).
    #[error("{0}")]
    Replay(String),
    /// The payload is not what the service sends (HTTP 400).
    #[error("{0}")]
    BadPayload(String),
    /// A fetch the verification needs failed (HTTP 503: the service will retry).
    #[error("{0}")]
    Unavailable(String),
}

/// A report about one recipient that needs no diagnosis: a complaint (`abuse`), a
/// delivery, or an auto-reply.
pub(crate) fn single(kind: Kind, address: Option<String>, references: References) -> Report {
    let (reason, feedback_type) = match kind {
        Kind::Complaint => (Reason::Complaint, Some("abuse".to_string())),
        Kind::AutoReply => (Reason::AutoReply, None),
        _ => (Reason::Delivered, None),
    };
    Report {
        kind,
        feedback_type,
        recipients: vec![RecipientReport::plain(address, reason)],
        references,
    }
}

/// What a service says about one failed delivery.
pub(crate) struct Failure<'a> {
    pub address: Option<String>,
    /// The remote server's words, as the service passes them on.
    pub diagnostic: String,
    /// The service's own enhanced status code or reply code, when it gives them apart from
    /// the words; otherwise they are looked for in the words.
    pub status: Option<&'a str>,
    pub reply: Option<u64>,
    /// The service is still trying: a delay, never hard.
    pub temporary: bool,
}

impl Failure<'_> {
    /// The recipient's report: classified from the remote server's words like a bounce
    /// mail, then `adjust`ed by the service's own finding where the words are not enough.
    pub(crate) fn recipient(self, adjust: impl FnOnce(&mut Verdict)) -> RecipientReport {
        let status = self
            .status
            .and_then(Status::parse)
            .or_else(|| find_status(&self.diagnostic));
        let reply = self
            .reply
            .and_then(|c| ReplyCode::parse(&c.to_string()))
            .or_else(|| find_reply(&self.diagnostic));
        let mut verdict = classify(&Evidence {
            status,
            reply,
            text: &self.diagnostic,
            stage: stage_of(&self.diagnostic),
            temporary: self.temporary,
        });
        adjust(&mut verdict);
        RecipientReport {
            address: self.address,
            status,
            reply,
            diagnostic: self.diagnostic,
            hard: verdict.hard,
            reason: verdict.reason,
        }
    }

    /// The whole report of one failed delivery: a bounce, or a delay while the service is
    /// still trying.
    pub(crate) fn report(
        self,
        references: References,
        adjust: impl FnOnce(&mut Verdict),
    ) -> Report {
        let kind = if self.temporary {
            Kind::Delay
        } else {
            Kind::Bounce
        };
        Report {
            kind,
            feedback_type: None,
            recipients: vec![self.recipient(adjust)],
            references,
        }
    }
}

/// A diagnostic without its type prefix: `smtp; 550 5.1.1 ...` becomes `550 5.1.1 ...`.
pub(crate) fn without_diagnostic_type(text: &str) -> &str {
    text.split_once(';')
        .filter(|(kind, _)| kind.len() <= 8)
        .map(|(_, rest)| rest.trim())
        .unwrap_or(text.trim())
}

/// Whether `at` (Unix seconds) is within `max_age` seconds of `now`, either side.
pub(crate) fn fresh(at: i64, now: i64, max_age: u64) -> bool {
    now.abs_diff(at) <= max_age
}

/// Parses an RFC 3339 time (`2026-11-27T09:00:00.123Z`) into Unix seconds.
pub(crate) fn rfc3339(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp())
}

/// A small set of recently seen one-time values (Mailgun tokens), forgotten after the
/// replay window.
#[derive(Debug, Default)]
pub struct SeenTokens {
    seen: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl SeenTokens {
    /// Records `token` at `now`; false when it was seen within `max_age`.
    pub fn first_time(&self, token: &str, now: i64, max_age: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 10_000 {
            seen.retain(|_, at| fresh(*at, now, max_age));
        }
        match seen.get(token) {
            Some(at) if fresh(*at, now, max_age) => false,
            _ => {
                seen.insert(token.to_string(), now);
                true
            }
        }
    }
}
