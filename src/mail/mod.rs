//! Building one recipient's email: headers, `multipart/alternative` body, List-* headers and
//! DKIM. Only this module knows lettre; nothing lettre-typed leaves it.
//!
//! - [`Composer`] is built once from [`Settings`](crate::config::Settings): it parses the
//!   From and Reply-To addresses, the List-Id, the Message-ID domain and the DKIM key, so a
//!   bad setting fails at start-up with an error that names its config key.
//! - [`Composer::compose`] turns a [`RenderedIssue`](crate::render::RenderedIssue) and a
//!   [`MailRecipient`] into an [`OutgoingMail`]: it signs the recipient's unsubscribe token,
//!   personalises the HTML and text (a concatenation), sets `List-Unsubscribe` (RFC 2369,
//!   with RFC 8058 one-click), `List-Id` (RFC 2919) and a Message-ID of our own, and DKIM-signs
//!   the result when `smtp.dkim_*` is configured.
//! - [`Composer::compose_notice`] builds the sign-up flow's confirmation mail (with a
//!   confirmation link that expires after seven days, and no List-* headers) and welcome mail
//!   (with List-Unsubscribe, like an issue) from a [`RenderedNotice`](crate::render::RenderedNotice).
//! - [`OutgoingMail`] holds the finished message: its Message-ID (for logs and the delivery
//!   ledger), its exact bytes, and its envelope.
//!
//! # DKIM keys
//!
//! `smtp.dkim_key_file` may hold any of:
//! - an RSA key as PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), what lettre reads natively;
//! - an RSA key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey` writes);
//! - an Ed25519 key as PKCS#8 PEM (`openssl genpkey -algorithm ED25519`);
//! - an Ed25519 key as the base64 of its raw 32-byte seed, lettre's native Ed25519 form.
//!
//! lettre's `DkimSigningKey::new` accepts only the first and the last, so herald converts
//! PKCS#8 keys into those forms when it loads them. Encrypted keys, and RSA keys shorter than
//! 1024 bits (RFC 8301), are refused.
//!
//! Signatures use relaxed/relaxed canonicalisation over an explicit header list that
//! includes List-Id, List-Unsubscribe and List-Unsubscribe-Post. The `multipart/alternative`
//! Content-Type is written as a message header (not left with the MIME part, where lettre
//! keeps it by default), so the signature really covers it.

mod body;
mod compose;
mod dkim;
mod headers;
mod pool;
mod reply;
mod signing;
mod transport;
mod wire;

pub use compose::{
    Composer, IssueMail, MailKind, MailRecipient, OutgoingMail, TEST_SUBJECT_PREFIX,
    TEST_SUBSCRIBER_ID,
};
pub use reply::judge_reply;
pub use transport::{RelayInfo, SendOutcome, Transport, DOWN_FOR};

/// Everything that can go wrong while setting up the composer or building a message.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A mail setting is present but unusable; `key` is its config.toml name.
    #[error("`{key}`: {message}")]
    Config { key: String, message: String },
    /// The DKIM key file cannot be read or holds no usable key.
    #[error("`smtp.dkim_key_file` ({file}): {message}")]
    DkimKey { file: String, message: String },
    /// The recipient address is not one lettre can put in a header.
    #[error("recipient {masked}: {message}")]
    Recipient { masked: String, message: String },
    /// lettre refused to build the message (a bug in herald if it ever happens).
    #[error("cannot build the message: {0}")]
    Build(String),
}
