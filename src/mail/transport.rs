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
//! in the error's source chain, never from message strings. A failure while connecting
//! (refused, TLS, AUTH, a 5xx greeting) is the relay's, never the recipient's.
//!
//! # The connection pool
//!
//! herald keeps its own pool of lettre [`AsyncSmtpConnection`]s rather than lettre's pooled
//! transport. It connects its sockets with `TCP_NODELAY` (a message's last write must not
//! wait for the relay's delayed ACK, about 40 ms on Linux, behind Nagle's algorithm), and
//! lettre then speaks SMTP, STARTTLS and AUTH over them as usual; `smtps://` (TLS before the
//! greeting) is connected by lettre itself. lettre's pool caps idle connections but not open
//! ones, while herald holds at most `smtp.pool_size`. Each connection learns the relay's
//! extensions once and sends with PIPELINING and CHUNKING when offered (see `mail::wire`).

use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Mutex;
use std::time::Instant;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::{Category, Severity};
use secrecy::ExposeSecret;

use super::wire::{self, Session};
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

impl SendOutcome {
    /// The outcome for a log line: its kind and the reply's codes (`transient 451 4.7.1`),
    /// never the reply's text, which may quote the recipient's address.
    pub fn summary(&self) -> String {
        let (kind, reply) = match self {
            Self::Accepted { reply } => ("accepted", reply.as_str()),
            Self::Transient { reply } => ("transient", reply.as_str()),
            Self::Permanent { reply, .. } => ("permanent", reply.as_str()),
            Self::RelayDown { .. } => return "relay down".into(),
        };
        let codes: Vec<&str> = reply
            .split_whitespace()
            .take(2)
            .take_while(|word| {
                !word.is_empty() && word.chars().all(|c| c.is_ascii_digit() || c == '.')
            })
            .collect();
        if codes.is_empty() {
            kind.to_string()
        } else {
            format!("{kind} {}", codes.join(" "))
        }
    }
}

/// A message sink chosen by `smtp.url`.
pub enum Transport {
    Smtp(SmtpPool),
    File { dir: PathBuf },
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
            "smtp" if tls_none => (Security::None, 25, "plain text (smtp.tls = \"none\")"),
            "smtp" if loopback => (
                Security::Opportunistic(parameters()?),
                25,
                "STARTTLS when offered (loopback)",
            ),
            "smtp" => (Security::Required(parameters()?), 25, "STARTTLS required"),
            "smtp+starttls" => (Security::Required(parameters()?), 587, "STARTTLS required"),
            "smtps" => (Security::Wrapper(parameters()?), 465, "TLS"),
            other => {
                return Err(bad(format!(
                    "scheme {other}:// is not supported; use file://, smtp://, smtp+starttls:// or smtps://"
                )))
            }
        };
        let plain = matches!(tls, Security::None | Security::Opportunistic(_));
        let port = url.port().unwrap_or(port);
        let mut credentials = None;
        match (&smtp.username, &smtp.password) {
            (Some(user), Some(password)) => {
                if plain && !loopback {
                    return Err(MailError::Config {
                        key: "smtp.username",
                        message: "refusing to send a password over plain text to a host that is not on loopback".into(),
                    });
                }
                credentials = Some(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_string(),
                ));
            }
            (Some(_), None) => {
                return Err(MailError::Config {
                    key: "smtp.password",
                    message:
                        "smtp.username is set but the password is not (set HERALD__SMTP__PASSWORD)"
                            .into(),
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
        Ok(Transport::Smtp(SmtpPool {
            description: format!("{}://{host}:{port} ({mode})", url.scheme()),
            host,
            port,
            security: tls,
            credentials,
            hello: ClientId::default(),
            timeout: Duration::from_secs(smtp.timeout_seconds.max(1)),
            size: smtp.pool_size.max(1),
            idle: Mutex::new(Vec::new()),
        }))
    }

    /// A description for logs and progress output. Never holds a secret.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp(pool) => pool.description.clone(),
            Transport::File { dir } => format!("file://{}", dir.display()),
        }
    }

    /// The most messages this transport should have in flight at once: `smtp.pool_size`
    /// for a relay (one connection each), unbounded for files.
    pub fn max_in_flight(&self) -> Option<u32> {
        match self {
            Transport::Smtp(pool) => Some(pool.size),
            Transport::File { .. } => None,
        }
    }

    /// Closes idle relay connections politely (QUIT). Sending again reconnects.
    pub async fn close(&self) {
        if let Transport::Smtp(pool) = self {
            pool.close().await;
        }
    }

    /// Hands `mail` to the relay (or writes it to the folder) and classifies what happened.
    pub async fn send(&self, mail: &OutgoingMail) -> SendOutcome {
        match self {
            Transport::Smtp(pool) => pool.send(mail).await,
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
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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

/// How a relay connection is secured.
enum Security {
    None,
    /// STARTTLS when the relay offers it (loopback only).
    Opportunistic(TlsParameters),
    /// STARTTLS, or no connection.
    Required(TlsParameters),
    /// TLS from the first byte (`smtps://`).
    Wrapper(TlsParameters),
}

/// At most `size` SMTP connections, reused across messages.
pub struct SmtpPool {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// Bounds connecting and each whole transaction: lettre's async client times out the
    /// connect only, never a slow reply.
    timeout: Duration,
    size: u32,
    idle: Mutex<Vec<(Session, Instant)>>,
    description: String,
}

/// A connection idle longer than this is checked with NOOP before it carries a message.
const STALE_AFTER: Duration = Duration::from_secs(10);

impl SmtpPool {
    async fn send(&self, mail: &OutgoingMail) -> SendOutcome {
        let mut session = match tokio::time::timeout(self.timeout, self.checkout()).await {
            Ok(Ok(session)) => session,
            Ok(Err(failure)) => return failure,
            Err(_) => {
                return SendOutcome::Transient {
                    reply: format!("could not connect within {} s", self.timeout.as_secs()),
                }
            }
        };
        let bytes = mail.formatted();
        let sent = tokio::time::timeout(self.timeout, session.send(mail.envelope(), &bytes)).await;
        match sent {
            Ok(result) => {
                let outcome = match &result {
                    Ok(response) => SendOutcome::Accepted {
                        reply: reply_text(&response.code().to_string(), response.message()),
                    },
                    Err(e) => classify(e, mail.envelope_from(), mail.envelope_to()),
                };
                self.checkin(session);
                outcome
            }
            // The relay may have taken the message and be slow to say so: unknown. The
            // connection is out of step and is dropped.
            Err(_) => SendOutcome::Transient {
                reply: format!("no reply within {} s", self.timeout.as_secs()),
            },
        }
    }

    /// An idle connection that still answers, or a new one.
    async fn checkout(&self) -> Result<Session, SendOutcome> {
        loop {
            let idle = self.idle.lock().expect("pool lock").pop();
            match idle {
                Some((mut session, since)) => {
                    if since.elapsed() < STALE_AFTER || session.conn.test_connected().await {
                        return Ok(session);
                    }
                    session.conn.abort().await;
                }
                None => return self.connect().await.map_err(connect_failure),
            }
        }
    }

    fn checkin(&self, session: Session) {
        if !session.is_usable() {
            return;
        }
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < self.size as usize {
            idle.push((session, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<Session, ConnectError> {
        let mut conn = match &self.security {
            Security::Wrapper(tls) => {
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    Some(tls.clone()),
                    None,
                )
                .await?
            }
            _ => {
                let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                    .await
                    .map_err(ConnectError::Io)?;
                tcp.set_nodelay(true).map_err(ConnectError::Io)?;
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?
            }
        };
        match &self.security {
            Security::Required(tls) => conn.starttls(tls.clone(), &self.hello).await?,
            Security::Opportunistic(tls) if conn.can_starttls() => {
                conn.starttls(tls.clone(), &self.hello).await?
            }
            _ => {}
        }
        let path = wire::negotiate(&mut conn, &self.hello).await?;
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        tracing::debug!(relay = %self.description, path = path.describe(), "connected");
        Ok(Session::new(conn, path))
    }

    /// Says QUIT on every idle connection.
    async fn close(&self) {
        let idle: Vec<_> = std::mem::take(&mut *self.idle.lock().expect("pool lock"));
        for (mut session, _) in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.conn.quit()).await;
        }
    }
}

#[derive(Debug)]
enum ConnectError {
    Io(std::io::Error),
    Smtp(lettre::transport::smtp::Error),
}

impl From<lettre::transport::smtp::Error> for ConnectError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        ConnectError::Smtp(e)
    }
}

/// A failure before any message was offered concerns the relay, not a recipient: a busy
/// relay (4xx greeting) is worth a retry; anything else (refused, TLS, AUTH, 5xx) pauses.
fn connect_failure(e: ConnectError) -> SendOutcome {
    match e {
        ConnectError::Io(e) if e.kind() == ErrorKind::TimedOut => SendOutcome::Transient {
            reply: format!("cannot connect: {e}"),
        },
        ConnectError::Io(e) => SendOutcome::RelayDown {
            reason: format!("cannot connect: {e}"),
        },
        ConnectError::Smtp(e) if e.is_transient() => SendOutcome::Transient {
            reply: e.to_string(),
        },
        ConnectError::Smtp(e) => SendOutcome::RelayDown {
            reason: e.to_string(),
        },
    }
}

/// Decides the outcome from lettre's predicates and the reply code, never its strings.
fn classify(e: &lettre::transport::smtp::Error, sender: &str, recipient: &str) -> SendOutcome {
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
            _ if refuses_sender(&reply, sender, recipient) => {
                SendOutcome::RelayDown { reason: reply }
            }
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

/// A 5xx that is about our envelope sender, not this recipient: enhanced status 5.1.7 or
/// 5.1.8 (bad sender address), or a reply that names the sender and not the recipient (as in
/// Postfix's `550 5.1.0 <sender>: Sender address rejected`). Every message would get it, so
/// it must neither fail nor bounce anyone.
fn refuses_sender(reply: &str, sender: &str, recipient: &str) -> bool {
    let reply = reply.to_ascii_lowercase();
    let names =
        |address: &str| !address.is_empty() && reply.contains(&address.to_ascii_lowercase());
    if names(recipient) {
        return false;
    }
    names(sender)
        || reply
            .split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
            .any(|word| word == "5.1.7" || word == "5.1.8")
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
                && reply
                    .to_ascii_lowercase()
                    .contains(&recipient.to_ascii_lowercase())
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
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_@".contains(c) {
                c
            } else {
                '_'
            }
        })
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
    #[test]
    fn an_outcome_summary_keeps_the_codes_and_drops_the_text() {
        use super::SendOutcome;
        let refused = SendOutcome::Permanent {
            reply: "550 5.1.1 <ada@example.org>: user unknown".into(),
            bounce: true,
        };
        assert_eq!(refused.summary(), "permanent 550 5.1.1");
        let busy = SendOutcome::Transient {
            reply: "451 try again later".into(),
        };
        assert_eq!(busy.summary(), "transient 451");
        let lost = SendOutcome::Transient {
            reply: "connection lost: ada@example.org".into(),
        };
        assert_eq!(lost.summary(), "transient");
    }

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
        assert!(Transport::from_settings(&plain)
            .unwrap()
            .describe()
            .contains("plain text"));
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
    fn a_refused_sender_is_not_the_recipient_s_fault() {
        let (from, to) = ("news@example.org", "a@b.org");
        assert!(refuses_sender(
            "permanent error (550): 5.1.0 <news@example.org>: Sender address rejected",
            from,
            to
        ));
        assert!(refuses_sender(
            "permanent error (553): 5.1.8 Domain of sender does not exist",
            from,
            to
        ));
        assert!(!refuses_sender(
            "permanent error (550): 5.1.1 <a@b.org>: user unknown",
            from,
            to
        ));
        assert!(!refuses_sender(
            "permanent error (550): <a@b.org> does not accept mail from news@example.org",
            from,
            to
        ));
    }

    #[test]
    fn recognises_bad_addresses() {
        assert!(names_bad_address(
            "permanent error (550): 5.1.1 <a@b.org>: user unknown",
            "550",
            "a@b.org"
        ));
        assert!(names_bad_address(
            "permanent error (550): 5.1.10 no such domain",
            "550",
            "x@y.org"
        ));
        assert!(!names_bad_address(
            "permanent error (554): 5.7.1 rejected as spam",
            "554",
            "a@b.org"
        ));
        assert!(names_bad_address(
            "permanent error (550): <a@b.org> no mailbox here",
            "550",
            "a@b.org"
        ));
        assert!(!names_bad_address(
            "permanent error (550): mailbox busy",
            "550",
            "a@b.org"
        ));
    }
}
