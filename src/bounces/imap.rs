//! The IMAP poller: returned mail that lands in a mailbox (`bounces.imap_url`, for example
//! `imaps://bounces@mail.example.org/INBOX`, the password from
//! `HERALD__BOUNCES__IMAP_PASSWORD`), read every `bounces.imap_poll_seconds`.
//!
//! Each message is fetched without marking it seen (`BODY.PEEK[]`), handed to the
//! [`Inbox`], and moved only after its report is stored: to `herald-processed`, or to
//! `herald-unreadable` when it is not mail at all or not a report herald knows (a person
//! should look at it). Nothing is ever deleted. When the report cannot be stored (the
//! database is down), the message stays where it is for the next poll. A crash between
//! storing and moving leaves the message in place too; the next poll reads it again, and
//! the store counts the same bytes once.
//!
//! `imaps://` is TLS from the first byte (port 993), certificates verified against the web
//! PKI roots; plain `imap://` (port 143) is accepted for a loopback host only.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::rustls;

use super::inbox::{Channel, Inbox, Refusal};
use super::Kind;
use crate::config::BouncesSettings;

/// Where stored reports go.
pub const PROCESSED: &str = "herald-processed";
/// Where mail herald cannot read goes, for a person.
pub const UNREADABLE: &str = "herald-unreadable";
/// At most this many messages are taken per poll; the rest wait for the next.
const BATCH: usize = 500;

/// Everything that can go wrong while polling.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("`bounces.imap_url`: {0}")]
    Config(String),
    #[error("cannot connect to {host}: {message}")]
    Connect { host: String, message: String },
    #[error("the IMAP server refused the login of {user}")]
    Login { user: String },
    #[error("IMAP: {0}")]
    Protocol(String),
}

/// The mailbox to poll, parsed from `bounces.imap_url`.
#[derive(Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub user: String,
    pub password: SecretString,
    pub mailbox: String,
    pub poll: Duration,
    pub timeout: Duration,
}

impl std::fmt::Debug for ImapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}@{}:{}/{}",
            if self.tls { "imaps" } else { "imap" },
            self.user,
            self.host,
            self.port,
            self.mailbox
        )
    }
}

impl ImapConfig {
    /// Reads `bounces.imap_url` and its password. `Ok(None)` when no URL is set.
    pub fn from_settings(settings: &BouncesSettings) -> Result<Option<Self>, ImapError> {
        let Some(raw) = settings
            .imap_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        let bad = |m: String| ImapError::Config(m);
        let url = url::Url::parse(raw).map_err(|e| bad(format!("{raw}: {e}")))?;
        let tls = match url.scheme() {
            "imaps" => true,
            "imap" => false,
            other => {
                return Err(bad(format!(
                    "scheme {other}:// is not supported; use imaps:// (or imap:// on loopback)"
                )))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !tls && !is_loopback(&host) {
            return Err(bad(
                "plain imap:// would send the password in clear text; use imaps://".into(),
            ));
        }
        if url.password().is_some() {
            return Err(bad(
                "put the password in HERALD__BOUNCES__IMAP_PASSWORD, not in the URL".into(),
            ));
        }
        let user = percent_decode(url.username());
        if user.is_empty() {
            return Err(bad("name the user, as in imaps://user@host/INBOX".into()));
        }
        let password = settings
            .imap_password
            .clone()
            .ok_or_else(|| bad("set the password in HERALD__BOUNCES__IMAP_PASSWORD".into()))?;
        let mailbox = percent_decode(url.path().trim_start_matches('/'));
        Ok(Some(Self {
            port: url.port().unwrap_or(if tls { 993 } else { 143 }),
            host,
            tls,
            user,
            password,
            mailbox: if mailbox.is_empty() {
                "INBOX".into()
            } else {
                mailbox
            },
            poll: Duration::from_secs(settings.imap_poll_seconds.max(1)),
            timeout: Duration::from_secs(settings.timeout_seconds.max(1)),
        }))
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollSummary {
    /// Stored and moved to `herald-processed` (duplicates of earlier ones included).
    pub processed: usize,
    /// Moved to `herald-unreadable`.
    pub unreadable: usize,
    /// Left in the mailbox because the store was unavailable.
    pub left: usize,
}

/// Polls every `config.poll` until `shutdown` turns true. Errors are logged and the next
/// poll tries again.
pub async fn run<I: Inbox>(config: ImapConfig, inbox: Arc<I>, mut shutdown: watch::Receiver<bool>) {
    tracing::info!(mailbox = ?config, "IMAP poller started");
    loop {
        match poll_once(&config, &*inbox).await {
            Ok(summary) if summary != PollSummary::default() => {
                tracing::info!(
                    processed = summary.processed,
                    unreadable = summary.unreadable,
                    left = summary.left,
                    "IMAP poll"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "IMAP poll failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.poll) => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    tracing::info!("IMAP poller stopped");
}

/// Connects, takes every message in the mailbox, and logs out.
pub async fn poll_once<I: Inbox>(config: &ImapConfig, inbox: &I) -> Result<PollSummary, ImapError> {
    let connect_error = |message: String| ImapError::Connect {
        host: config.host.clone(),
        message,
    };
    let tcp = tokio::time::timeout(
        config.timeout,
        TcpStream::connect((config.host.as_str(), config.port)),
    )
    .await
    .map_err(|_| connect_error("timed out".into()))?
    .map_err(|e| connect_error(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    if config.tls {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| connect_error(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(config.host.clone())
            .map_err(|e| connect_error(e.to_string()))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls_config))
            .connect(name, tcp)
            .await
            .map_err(|e| connect_error(format!("TLS: {e}")))?;
        session(config, stream, inbox).await
    } else {
        session(config, tcp, inbox).await
    }
}

async fn session<S, I>(config: &ImapConfig, stream: S, inbox: &I) -> Result<PollSummary, ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
    I: Inbox,
{
    let protocol = |e: async_imap::error::Error| ImapError::Protocol(e.to_string());
    let mut client = async_imap::Client::new(stream);
    let greeting = tokio::time::timeout(config.timeout, client.read_response())
        .await
        .map_err(|_| ImapError::Protocol("no greeting".into()))?;
    if !matches!(greeting, Some(Ok(_))) {
        return Err(ImapError::Protocol("no greeting".into()));
    }
    let mut session = client
        .login(&config.user, config.password.expose_secret())
        .await
        .map_err(|_| ImapError::Login {
            user: config.user.clone(),
        })?;
    for folder in [PROCESSED, UNREADABLE] {
        // "Already exists" is the usual answer after the first poll.
        let _ = session.create(folder).await;
    }
    session.select(&config.mailbox).await.map_err(protocol)?;
    let mut uids: Vec<u32> = session
        .uid_search("ALL")
        .await
        .map_err(protocol)?
        .into_iter()
        .collect();
    uids.sort_unstable();
    uids.truncate(BATCH);
    let mut summary = PollSummary::default();
    for uid in uids {
        let body = {
            let mut fetches = session
                .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await
                .map_err(protocol)?;
            let mut body = None;
            while let Some(fetch) = fetches.next().await {
                let fetch = fetch.map_err(protocol)?;
                if let Some(bytes) = fetch.body() {
                    body = Some(bytes.to_vec());
                }
            }
            body
        };
        let Some(body) = body else { continue };
        let target = match inbox.deliver(body, Vec::new(), Channel::Imap).await {
            Ok(accepted) if accepted.kind == Kind::None => UNREADABLE,
            Ok(_) => PROCESSED,
            Err(Refusal::NotMail(_)) => UNREADABLE,
            Err(Refusal::Unavailable(reason)) => {
                tracing::warn!(%reason, "cannot store a report from IMAP; it stays for the next poll");
                summary.left += 1;
                break;
            }
        };
        session
            .uid_mv(uid.to_string(), target)
            .await
            .map_err(protocol)?;
        if target == PROCESSED {
            summary.processed += 1;
        } else {
            summary.unreadable += 1;
        }
    }
    let _ = session.logout().await;
    Ok(summary)
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> BouncesSettings {
        BouncesSettings {
            imap_url: Some(url.into()),
            imap_password: Some(SecretString::from("pw".to_string())),
            ..BouncesSettings::default()
        }
    }

    #[test]
    fn reads_the_url_and_refuses_clear_text_off_loopback() {
        let c = ImapConfig::from_settings(&settings("imaps://bounce%40x@mail.example.org/Bounces"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                c.host.as_str(),
                c.port,
                c.tls,
                c.user.as_str(),
                c.mailbox.as_str()
            ),
            ("mail.example.org", 993, true, "bounce@x", "Bounces")
        );
        let c = ImapConfig::from_settings(&settings("imap://u@127.0.0.1:1143"))
            .unwrap()
            .unwrap();
        assert_eq!((c.port, c.tls, c.mailbox.as_str()), (1143, false, "INBOX"));
        for bad in [
            "imap://u@mail.example.org/INBOX",
            "imaps://u:secret@mail.example.org/INBOX",
            "pop3://u@mail.example.org",
            "imaps://mail.example.org",
        ] {
            let e = ImapConfig::from_settings(&settings(bad))
                .unwrap_err()
                .to_string();
            assert!(e.contains("bounces.imap_url"), "{bad}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
        let mut no_password = settings("imaps://u@mail.example.org");
        no_password.imap_password = None;
        assert!(ImapConfig::from_settings(&no_password).is_err());
        assert!(ImapConfig::from_settings(&BouncesSettings::default())
            .unwrap()
            .is_none());
    }
}
