//! [`SmtpPool`]: the connections to one relay.
//!
//! herald keeps its own pool of lettre [`AsyncSmtpConnection`]s rather than lettre's pooled
//! transport. It connects its sockets with `TCP_NODELAY` (a message's last write must not
//! wait for the relay's delayed ACK, about 40 ms on Linux, behind Nagle's algorithm), and
//! lettre then speaks SMTP, STARTTLS and AUTH over them as usual; `smtps://` (TLS before the
//! greeting) is connected by lettre itself. Each connection learns the relay's extensions
//! once and sends with PIPELINING and CHUNKING when offered (see `mail::wire`).
//!
//! At most `pool_size` connections carry issues at once; one more is kept for sign-up
//! notices and test copies, so a reader who just signed up never waits for an issue's
//! messages to go first. A connection carries at most `max_per_connection` messages (when
//! set), then says QUIT and a new one is opened.

use std::io::ErrorKind;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::reply::{classify, reply_text};
use super::transport::SendOutcome;
use super::wire::{self, Session};
use super::OutgoingMail;

/// How a relay connection is secured.
pub(crate) enum Security {
    None,
    /// STARTTLS when the relay offers it (loopback only).
    Opportunistic(TlsParameters),
    /// STARTTLS, or no connection.
    Required(TlsParameters),
    /// TLS from the first byte (`smtps://`).
    Wrapper(TlsParameters),
}

/// What a pool is built from (checked by the caller).
pub(crate) struct PoolConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<Credentials>,
    pub timeout: Duration,
    pub size: u32,
    pub max_per_connection: u32,
}

/// At most `size` SMTP connections for issues (plus one for notices), reused across messages.
pub(crate) struct SmtpPool {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// Bounds connecting and each whole transaction: lettre's async client times out the
    /// connect only, never a slow reply.
    timeout: Duration,
    size: u32,
    max_per_connection: u32,
    /// One permit per connection an issue may use.
    slots: Semaphore,
    /// The connection kept for notices and test copies when every slot is taken.
    reserve: Semaphore,
    idle: Mutex<Vec<(Session, Instant)>>,
}

/// A connection idle longer than this is checked with NOOP before it carries a message.
const STALE_AFTER: Duration = Duration::from_secs(10);

impl SmtpPool {
    pub(crate) fn new(config: PoolConfig) -> Self {
        let size = config.size.max(1);
        Self {
            host: config.host,
            port: config.port,
            security: config.security,
            credentials: config.credentials,
            hello: ClientId::default(),
            timeout: config.timeout,
            size,
            max_per_connection: config.max_per_connection,
            slots: Semaphore::new(size as usize),
            reserve: Semaphore::new(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Connections issues may use at once.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// Sends one message. `priority` (notices, test copies) may use the reserved connection
    /// when every other one is busy.
    pub(crate) async fn send(&self, mail: &OutgoingMail, priority: bool) -> SendOutcome {
        let _slot = self.slot(priority).await;
        let mut session = match tokio::time::timeout(self.timeout, self.checkout()).await {
            Ok(Ok(session)) => session,
            Ok(Err(failure)) => return failure,
            Err(_) => {
                return SendOutcome::Transient {
                    reply: format!("could not connect within {} s", self.timeout.as_secs()),
                    throttled: false,
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
                throttled: false,
            },
        }
    }

    async fn slot(&self, priority: bool) -> Option<SemaphorePermit<'_>> {
        if priority {
            if let Ok(slot) = self.slots.try_acquire() {
                return Some(slot);
            }
            return self.reserve.acquire().await.ok();
        }
        self.slots.acquire().await.ok()
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

    fn checkin(&self, mut session: Session) {
        if !session.is_usable() {
            return;
        }
        if self.max_per_connection > 0 && session.transactions >= self.max_per_connection {
            // Said in the background: the message's outcome is known already.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), session.conn.quit()).await;
            });
            return;
        }
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() <= self.size as usize {
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
        tracing::debug!(host = %self.host, port = self.port, path = path.describe(), "connected");
        Ok(Session::new(conn, path))
    }

    /// Says QUIT on every idle connection.
    pub(crate) async fn close(&self) {
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
/// relay (4xx greeting) is worth a retry; anything else (refused, TLS, AUTH, 5xx) makes the
/// relay unusable.
fn connect_failure(e: ConnectError) -> SendOutcome {
    match e {
        ConnectError::Io(e) if e.kind() == ErrorKind::TimedOut => SendOutcome::Transient {
            reply: format!("cannot connect: {e}"),
            throttled: false,
        },
        ConnectError::Io(e) => SendOutcome::RelayDown {
            reason: format!("cannot connect: {e}"),
        },
        ConnectError::Smtp(e) if e.is_transient() => SendOutcome::Transient {
            reply: e.to_string(),
            throttled: false,
        },
        ConnectError::Smtp(e) => SendOutcome::RelayDown {
            reason: e.to_string(),
        },
    }
}
