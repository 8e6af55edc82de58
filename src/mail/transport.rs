//! Where finished messages go: a pooled SMTP relay, or a folder of `.eml` files.
//!
//! [`Transport::from_settings`] reads `smtp.url`:
//!
//! | URL | connection |
//! | --- | --- |
//! | `file://DIR` | one `.eml` file per message in DIR (the default, `file://outbox`) |
//! | `smtp://host[:25]` | STARTTLS when offered; plain text only to a loopback host, or with `smtp.tls = "none"` |
//! | `smtp+starttls://host[:587]` | STARTTLS required |
//! | `smtps://host[:465]` | TLS from the first byte |
//!
//! Certificates are always verified (webpki roots); there is no switch to turn that off.
//! Credentials are never sent over plain text to a host that is not on loopback.
//!
//! [`Transport::send`] reports a [`SendOutcome`] decided from lettre's error predicates
//! (`is_transient`, `is_permanent`, `is_timeout`, `is_tls`, `status`) and the I/O error kinds
//! in the error's source chain, never from message strings. lettre does not implement
//! PIPELINING, so throughput comes from `smtp.pool_size` connections used concurrently.

use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::response::{Category, Severity};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{MailError, OutgoingMail};
use crate::config::SmtpSettings;

/// What became of one message handed to the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The relay accepted it (2xx after the data).
    Accepted { reply: String },
    /// Try again later: a 4xx reply, a timeout, or a connection lost mid-transaction (in which
    /// case the relay may or may not have taken the message).
    Transient { reply: String },
    /// The relay refused it for good (5xx). `bounce` when the reply says the address itself
    /// is bad (enhanced status 5.1.x, or a 550 that names the recipient).
    Permanent { reply: String, bounce: bool },
    /// The relay as a whole is unusable (connection refused, TLS failure, authentication
    /// refused). Not this recipient's fault: the send pauses and no attempt is counted.
    RelayDown { reason: String },
}

/// A message sink chosen by `smtp.url`.
pub enum Transport {
    Smtp {
        inner: AsyncSmtpTransport<Tokio1Executor>,
        description: String,
        /// lettre's async client applies its timeout to connecting only, so herald bounds
        /// the whole transaction itself.
        timeout: Duration,
        /// lettre's pool caps idle connections, not open ones: every concurrent send opens
        /// its own. [`Transport::max_in_flight`] keeps the count at `smtp.pool_size`.
        pool_size: u32,
    },
    File {
        dir: PathBuf,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Transport {
    /// Builds the transport from `[smtp]`. Errors name the key at fault.
    pub fn from_settings(smtp: &SmtpSettings) -> Result<Self, MailError> {
        let bad = |message: String| MailError::Config {
            key: "smtp.url",
            message,
        };
        if let Some(dir) = smtp.url.strip_prefix("file://") {
            if dir.is_empty() {
                return Err(bad("file:// needs a folder, as in file://outbox".into()));
            }
            return Ok(Transport::File {
                dir: PathBuf::from(dir),
            });
        }
        let url = url::Url::parse(&smtp.url).map_err(|e| bad(format!("{:?}: {e}", smtp.url)))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad(format!("{:?} has no host", smtp.url)))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "put credentials in smtp.username and HERALD__SMTP__PASSWORD, not in the URL"
                    .into(),
            ));
        }
        let loopback = is_loopback(&host);
        let tls_none = match smtp.tls.as_deref() {
            None => false,
            Some("none") => true,
            Some(other) => {
                return Err(MailError::Config {
                    key: "smtp.tls",
                    message: format!("{other:?} is not a choice; leave it unset or use \"none\""),
                })
            }
        };
        let parameters = || {
            TlsParameters::new(host.clone()).map_err(|e| MailError::Config {
                key: "smtp.url",
                message: format!("cannot set up TLS for {host}: {e}"),
            })
        };
        let (tls, port, mode) = match url.scheme() {
            "smtp" if tls_none => (Tls::None, 25, "plain text (smtp.tls = \"none\")"),
            "smtp" if loopback => (
                Tls::Opportunistic(parameters()?),
                25,
                "STARTTLS when offered (loopback)",
            ),
            "smtp" => (Tls::Required(parameters()?), 25, "STARTTLS required"),
            "smtp+starttls" => (Tls::Required(parameters()?), 587, "STARTTLS required"),
            "smtps" => (Tls::Wrapper(parameters()?), 465, "TLS"),
            other => {
                return Err(bad(format!(
                    "scheme {other}:// is not supported; use file://, smtp://, smtp+starttls:// or smtps://"
                )))
            }
        };
        let plain = matches!(tls, Tls::None | Tls::Opportunistic(_));
        let port = url.port().unwrap_or(port);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(smtp.timeout_seconds.max(1))))
            .pool_config(
                PoolConfig::new()
                    .max_size(smtp.pool_size)
                    .min_idle(0)
                    .idle_timeout(Duration::from_secs(60)),
            );
        match (&smtp.username, &smtp.password) {
            (Some(user), Some(password)) => {
                if plain && !loopback {
                    return Err(MailError::Config {
                        key: "smtp.username",
                        message: "refusing to send a password over plain text to a host that is not on loopback".into(),
                    });
                }
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_string(),
                ));
            }
            (Some(_), None) => {
                return Err(MailError::Config {
                    key: "smtp.password",
                    message: "smtp.username is set but the password is not (set HERALD__SMTP__PASSWORD)".into(),
                })
            }
            (None, Some(_)) => {
                return Err(MailError::Config {
                    key: "smtp.username",
                    message: "a password is set but no username".into(),
                })
            }
            (None, None) => {}
        }
        Ok(Transport::Smtp {
            inner: builder.build(),
            description: format!("{}://{host}:{port} ({mode})", url.scheme()),
            timeout: Duration::from_secs(smtp.timeout_seconds.max(1)),
            pool_size: smtp.pool_size.max(1),
        })
    }

    /// A description for logs and progress output. Never holds a secret.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp { description, .. } => description.clone(),
            Transport::File { dir } => format!("file://{}", dir.display()),
        }
    }

    /// The most messages this transport should have in flight at once: `smtp.pool_size`
    /// for a relay (one connection each), unbounded for files.
    pub fn max_in_flight(&self) -> Option<u32> {
        match self {
            Transport::Smtp { pool_size, .. } => Some(*pool_size),
            Transport::File { .. } => None,
        }
    }

    /// Hands `mail` to the relay (or writes it to the folder) and classifies what happened.
    pub async fn send(&self, mail: &OutgoingMail) -> SendOutcome {
        match self {
            Transport::Smtp { inner, timeout, .. } => {
                let bytes = mail.formatted();
                let sent = tokio::time::timeout(*timeout, inner.send_raw(mail.envelope(), &bytes));
                match sent.await {
                    Ok(Ok(response)) => SendOutcome::Accepted {
                        reply: reply_text(&response.code().to_string(), response.message()),
                    },
                    Ok(Err(e)) => classify(&e, mail.envelope_to()),
                    // The relay may have taken the message and be slow to say so: unknown.
                    Err(_) => SendOutcome::Transient {
                        reply: format!("no reply within {} s", timeout.as_secs()),
                    },
                }
            }
            Transport::File { dir } => match write_eml(dir, mail).await {
                Ok(path) => SendOutcome::Accepted {
                    reply: format!("written to {}", path.display()),
                },
                Err(e) => SendOutcome::RelayDown {
                    reason: format!("cannot write to {}: {e}", dir.display()),
                },
            },
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn reply_text<'a>(code: &str, lines: impl Iterator<Item = &'a str>) -> String {
    let text: Vec<&str> = lines.collect();
    if text.is_empty() {
        code.to_string()
    } else {
        format!("{code} {}", text.join(" "))
    }
}

/// The I/O error kind in `e`'s source chain, if any.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = err.source();
    }
    None
}

/// Decides the outcome from lettre's predicates and the reply code, never its strings.
fn classify(e: &lettre::transport::smtp::Error, recipient: &str) -> SendOutcome {
    let reply = e.to_string();
    if e.is_tls() {
        return SendOutcome::RelayDown { reason: reply };
    }
    if let Some(code) = e.status() {
        // x3x replies come only from AUTH (RFC 4954: 530, 534, 535, 538): the relay's setup
        // refuses us, not this recipient.
        let auth = code.category == Category::Unspecified3;
        if auth {
            return SendOutcome::RelayDown { reason: reply };
        }
        return match code.severity {
            Severity::TransientNegativeCompletion => SendOutcome::Transient { reply },
            _ => {
                let bounce = names_bad_address(&reply, code.to_string().as_str(), recipient);
                SendOutcome::Permanent { reply, bounce }
            }
        };
    }
    if e.is_timeout() {
        return SendOutcome::Transient { reply };
    }
    match io_kind(e) {
        Some(
            ErrorKind::ConnectionRefused
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::AddrNotAvailable
            | ErrorKind::PermissionDenied,
        ) => SendOutcome::RelayDown { reason: reply },
        // A connection that died mid-transaction, a reply that does not parse, a pool that
        // could not connect for another reason: the outcome is unknown, so try again.
        _ => SendOutcome::Transient { reply },
    }
}

/// RFC 3463 enhanced status 5.1.x (bad destination address), or a 550 whose reply names the
/// recipient (servers that give no enhanced code often say `550 <user@example.org>: ...`).
fn names_bad_address(reply: &str, code: &str, recipient: &str) -> bool {
    let enhanced = reply
        .split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .find(|word| {
            let mut parts = word.split('.');
            matches!(
                (parts.next(), parts.next(), parts.next(), parts.next()),
                (Some(class), Some(subject), Some(detail), None)
                    if class.len() == 1
                        && class.chars().all(|c| c.is_ascii_digit())
                        && subject.chars().all(|c| c.is_ascii_digit()) && !subject.is_empty()
                        && detail.chars().all(|c| c.is_ascii_digit()) && !detail.is_empty()
            )
        });
    match enhanced {
        Some(status) => status.starts_with("5.1."),
        None => {
            code == "550"
                && !recipient.is_empty()
                && reply.to_ascii_lowercase().contains(&recipient.to_ascii_lowercase())
        }
    }
}

/// Writes the message to `DIR/<message-id>.eml` through a temporary file and a rename, synced
/// to disk before it counts as sent.
async fn write_eml(dir: &Path, mail: &OutgoingMail) -> std::io::Result<PathBuf> {
    tokio::fs::create_dir_all(dir).await?;
    let stem: String = mail
        .message_id()
        .trim_matches(['<', '>'])
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || ".-_@".contains(c) { c } else { '_' })
        .collect();
    let path = dir.join(format!("{stem}.eml"));
    let tmp = dir.join(format!(".{stem}.tmp"));
    let bytes = mail.formatted();
    let file_tmp = tmp.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&file_tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()
    })
    .await
    .map_err(std::io::Error::other)??;
    tokio::fs::rename(&tmp, &path).await?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> SmtpSettings {
        SmtpSettings {
            url: url.into(),
            ..SmtpSettings::default()
        }
    }

    // A pooled lettre transport spawns its pool's clean-up on the Tokio runtime when dropped.
    #[tokio::test]
    async fn chooses_tls_by_scheme_and_host() {
        let d = |url: &str| Transport::from_settings(&settings(url)).unwrap().describe();
        assert_eq!(d("file://outbox"), "file://outbox");
        assert!(d("smtp://127.0.0.1:2525").ends_with("(STARTTLS when offered (loopback))"));
        assert!(d("smtp://mail.example.org").contains(":25 (STARTTLS required)"));
        assert!(d("smtp+starttls://mail.example.org").contains(":587 (STARTTLS required)"));
        assert!(d("smtps://mail.example.org").contains(":465 (TLS)"));
        let mut plain = settings("smtp://mail.example.org:2525");
        plain.tls = Some("none".into());
        assert!(Transport::from_settings(&plain).unwrap().describe().contains("plain text"));
    }

    #[test]
    fn refuses_what_would_leak_or_cannot_work() {
        let err = |s: SmtpSettings| Transport::from_settings(&s).unwrap_err().to_string();
        assert!(err(settings("ftp://x.org")).contains("smtp.url"));
        assert!(err(settings("smtp://user:pw@x.org")).contains("not in the URL"));
        assert!(err(settings("file://")).contains("needs a folder"));
        let mut bad_tls = settings("smtp://x.org");
        bad_tls.tls = Some("off".into());
        assert!(err(bad_tls).contains("smtp.tls"));
        let mut cleartext = settings("smtp://mail.example.org");
        cleartext.tls = Some("none".into());
        cleartext.username = Some("u".into());
        cleartext.password = Some("secret-password".to_string().into());
        let message = err(cleartext);
        assert!(message.contains("plain text"), "{message}");
        assert!(!message.contains("secret-password"));
    }

    #[test]
    fn recognises_bad_addresses() {
        assert!(names_bad_address("permanent error (550): 5.1.1 <a@b.org>: user unknown", "550", "a@b.org"));
        assert!(names_bad_address("permanent error (550): 5.1.10 no such domain", "550", "x@y.org"));
        assert!(!names_bad_address("permanent error (554): 5.7.1 rejected as spam", "554", "a@b.org"));
        assert!(names_bad_address("permanent error (550): <a@b.org> no mailbox here", "550", "a@b.org"));
        assert!(!names_bad_address("permanent error (550): mailbox busy", "550", "a@b.org"));
    }
}
