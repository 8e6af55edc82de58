//! [`Inbox`]: what every channel hands a returned mail to, and what it hears back.

use std::future::Future;

use super::Kind;

/// Where a returned mail came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The inbound SMTP listener of `herald serve`.
    Smtp,
    /// The IMAP poller.
    Imap,
    /// `herald bounces import`.
    Import,
    /// A refusal during herald's own SMTP session (the synchronous path).
    Session,
    /// Amazon SES, through SNS.
    Ses,
    Postmark,
    Mailgun,
    Sendgrid,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Smtp => "smtp",
            Channel::Imap => "imap",
            Channel::Import => "import",
            Channel::Session => "session",
            Channel::Ses => "ses",
            Channel::Postmark => "postmark",
            Channel::Mailgun => "mailgun",
            Channel::Sendgrid => "sendgrid",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Channel::Smtp,
            Channel::Imap,
            Channel::Import,
            Channel::Session,
            Channel::Ses,
            Channel::Postmark,
            Channel::Mailgun,
            Channel::Sendgrid,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A mail taken in: what it was, and whether it had been taken in before (the same bytes
/// received twice count once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub kind: Kind,
    pub duplicate: bool,
}

/// Why a mail was not taken in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The bytes are not a mail message at all; trying again will not help.
    #[error("not a mail message: {0}")]
    NotMail(String),
    /// The report could not be stored now (the database is unreachable); try again later.
    #[error("cannot store the report now: {0}")]
    Unavailable(String),
}

/// Where a channel hands each returned mail.
pub trait Inbox: Send + Sync + 'static {
    /// Reads and stores one returned mail that came in over `channel`, sent to `recipients`
    /// (the envelope recipients, when the channel knows them). Returns once the report is
    /// stored durably.
    fn deliver(
        &self,
        mail: Vec<u8>,
        recipients: Vec<String>,
        channel: Channel,
    ) -> impl Future<Output = Result<Accepted, Refusal>> + Send;
}
