//! Returned mail: bounces, delays, complaints, auto-replies and success notices.
//!
//! A returned mail travels: a channel (the inbound SMTP listener in `herald serve`, the IMAP
//! poller, a webhook, `herald bounces import`) → [`read`] (pure: bytes in, a [`Report`]
//! out, no I/O) → the delivery it refers to (a return-path token, else our Message-ID in
//! the returned headers, else the recipient address and the issue) → the store applies the
//! policy in one transaction.
//!
//! # Layout
//!
//! - [`read`]: one message into a [`Report`]: its [`Kind`] and, per recipient, the address,
//!   the enhanced status code, the SMTP reply code, the diagnostic, hard or soft, and a
//!   [`Reason`]. [`read_mailbox`] splits an mbox file first.
//! - [`rules`]: the classification rule table, each rule with the replies that motivated it.
//! - `fields`: RFC 3464 delivery-status and RFC 5965 feedback-report fields.
//! - `prose`: recipients and diagnostics of plain-text bounces.
//! - `ses`: Amazon SES notifications (also read by the SES webhook).
//! - [`Inbox`]: what every channel hands a returned mail to; [`Processor`] is the one
//!   that reads it, finds its delivery and has the store apply the policy.
//! - [`listener`]: the inbound SMTP listener of `herald serve`.
//! - [`imap`]: the IMAP poller.
//! - [`webhooks`]: signature checks and payloads of the sending services' webhooks.
//! - [`status`]: enhanced status codes and SMTP reply codes, and finding them in text.

mod fields;
pub mod imap;
mod inbox;
pub mod listener;
mod process;
mod prose;
mod read;
pub mod rules;
pub mod ses;
pub mod status;
pub mod webhooks;

use std::sync::LazyLock;

use regex::Regex;

pub use inbox::{Accepted, Channel, Inbox, Refusal};
pub use process::{Located, Processor};
pub use read::{read, read_mailbox, MailboxError};
pub use rules::{classify, classify_reply, Evidence, Reason, Stage, Verdict};
pub use status::{ReplyCode, Status};

/// What a returned mail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Delivery failed (RFC 3464 `Action: failed`, or a plain-text bounce).
    Bounce,
    /// Delivery is late; the sending server is still trying.
    Delay,
    /// A feedback-loop report (RFC 5965 ARF): the reader marked the mail as spam.
    Complaint,
    /// An RFC 3834 automatic reply, such as a vacation notice.
    AutoReply,
    /// A success notice (`Action: delivered`, `relayed` or `expanded`).
    Delivered,
    /// None of these: an ordinary message.
    None,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bounce => "bounce",
            Kind::Delay => "delay",
            Kind::Complaint => "complaint",
            Kind::AutoReply => "auto-reply",
            Kind::Delivered => "delivered",
            Kind::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Kind::Bounce,
            Kind::Delay,
            Kind::Complaint,
            Kind::AutoReply,
            Kind::Delivered,
            Kind::None,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What a report says about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientReport {
    /// The recipient's address as the report gives it, when it gives one.
    pub address: Option<String>,
    /// The RFC 3463 enhanced status code, when the mail shows one.
    pub status: Option<Status>,
    /// The SMTP reply code, when the mail shows one.
    pub reply: Option<ReplyCode>,
    /// The remote server's words (or the reporting server's), on one line.
    pub diagnostic: String,
    /// True when the address itself will never accept mail.
    pub hard: bool,
    pub reason: Reason,
}

impl RecipientReport {
    /// A recipient with no codes and no diagnostic (complaints, auto-replies, successes).
    pub fn plain(address: Option<String>, reason: Reason) -> Self {
        Self {
            address,
            status: None,
            reply: None,
            diagnostic: String::new(),
            hard: false,
            reason,
        }
    }
}

/// Everything a report offers to find the delivery it is about. Each list keeps its first
/// few distinct entries in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Candidate return-path tokens: the `TOKEN` of every `local+TOKEN@domain` address in
    /// the envelope headers, the returned headers and the report fields. Unverified.
    pub tokens: Vec<String>,
    /// Message-IDs of the returned original (angle brackets included).
    pub message_ids: Vec<String>,
    /// `Feedback-ID` values of the returned original.
    pub feedback_ids: Vec<String>,
}

const MAX_REFERENCES: usize = 8;

/// `local+TOKEN@domain`: a token is 16 to 64 characters of lowercase base32.
static TOKEN_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[a-z0-9._=-]+\+([a-z2-7]{16,64})@[a-z0-9.-]+").expect("regex")
});

impl References {
    /// Takes every return-path token candidate out of `text` (an address or a header value).
    pub fn add_return_address(&mut self, text: &str) {
        for caps in TOKEN_ADDRESS.captures_iter(text) {
            push_unique(&mut self.tokens, caps[1].to_ascii_lowercase());
        }
    }

    /// Records a Message-ID, normalised to `<id>`.
    pub fn add_message_id(&mut self, id: &str) {
        let id = id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if id.is_empty() || id.len() > 250 || id.contains(char::is_whitespace) {
            return;
        }
        push_unique(&mut self.message_ids, format!("<{id}>"));
    }

    pub fn add_feedback_id(&mut self, id: &str) {
        let id = id.trim();
        if !id.is_empty() && id.len() <= 250 {
            push_unique(&mut self.feedback_ids, id.to_string());
        }
    }
}

/// SHA-256 of what came in, in hex: the key that makes a report received twice count once.
pub fn report_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if list.len() < MAX_REFERENCES && !list.contains(&value) {
        list.push(value);
    }
}

/// One returned mail, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: Kind,
    /// The ARF `Feedback-Type` of a complaint (`abuse`, `opt-out`, `auth-failure`, ...).
    pub feedback_type: Option<String>,
    pub recipients: Vec<RecipientReport>,
    pub references: References,
}

impl Report {
    /// A message that is none of the kinds herald acts on.
    pub fn none() -> Self {
        Self {
            kind: Kind::None,
            feedback_type: None,
            recipients: Vec::new(),
            references: References::default(),
        }
    }
}

/// The delivery a report was matched to, as `herald bounces parse --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryName {
    pub issue: String,
    pub subscriber: i64,
}

/// One line of `herald bounces parse --json` (JSON Lines; the key order is the contract's).
#[derive(Debug, serde::Serialize)]
pub struct ReportLine<'a> {
    pub file: &'a str,
    pub kind: &'static str,
    pub feedback_type: Option<&'a str>,
    pub recipients: Vec<RecipientLine<'a>>,
    pub delivery: Option<&'a DeliveryName>,
}

/// One recipient of a [`ReportLine`].
#[derive(Debug, serde::Serialize)]
pub struct RecipientLine<'a> {
    pub address: Option<&'a str>,
    pub status: Option<String>,
    pub reply: Option<String>,
    pub hard: bool,
    pub reason: &'static str,
}

impl Report {
    /// The report as one `herald bounces parse --json` line.
    pub fn line<'a>(&'a self, file: &'a str, delivery: Option<&'a DeliveryName>) -> ReportLine<'a> {
        ReportLine {
            file,
            kind: self.kind.as_str(),
            feedback_type: self.feedback_type.as_deref(),
            recipients: self
                .recipients
                .iter()
                .map(|r| RecipientLine {
                    address: r.address.as_deref(),
                    status: r.status.map(|s| s.to_string()),
                    reply: r.reply.map(|c| c.to_string()),
                    hard: r.hard,
                    reason: r.reason.as_str(),
                })
                .collect(),
            delivery,
        }
    }
}

#[cfg(test)]
mod tests;
