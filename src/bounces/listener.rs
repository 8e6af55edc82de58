//! The inbound SMTP listener of `herald serve` (`bounces.smtp_bind`): point the return-path
//! domain's MX at it and returned mail comes straight in, with no mailbox in between.
//!
//! It is never a relay. It accepts mail only for the return path and its `+TOKEN` forms, and
//! a token must verify; anything else gets `550`. Commands are parsed by Stalwart's
//! `smtp-proto` (the request parser and the dot-unstuffing DATA receiver), the rest is here:
//!
//! | situation | reply |
//! | --- | --- |
//! | `RCPT TO` another domain or local part | `550 5.7.1` not a relay |
//! | `RCPT TO` the return path with a forged or damaged token | `550 5.1.1` no such return path |
//! | `MAIL FROM ... SIZE=n` over `bounces.max_message_bytes`, or DATA that grows past it | `552 5.3.4` |
//! | a command or data chunk slower than `bounces.timeout_seconds` | `421 4.4.2`, then close |
//! | more than `bounces.max_connections` at once | `421 4.3.2` at the greeting, then close |
//! | the report stored durably | `250 2.0.0` |
//! | the report could not be stored (database down) | `451 4.3.0`: the sender keeps it and tries again |
//!
//! `STARTTLS` is offered when `bounces.tls_cert` and `bounces.tls_key` are set (RFC 3207: the
//! session starts over after the handshake). `PIPELINING` is offered: replies to a batch of
//! commands go out together.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver, RequestReceiver};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::inbox::{Channel, Inbox, Refusal};
use crate::domain::{ReturnAddress, ReturnPath, TokenKey};

/// At most this many recipients per transaction.
const MAX_RECIPIENTS: usize = 100;
/// After this many bad commands in one session, the listener hangs up.
const MAX_ERRORS: usize = 10;

/// Why the listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("`bounces.smtp_bind` {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
    #[error("`bounces.tls_cert`/`bounces.tls_key`: {0}")]
    Tls(String),
}

/// The listener's settings, read once.
#[derive(Clone)]
pub struct ListenerConfig {
    pub hostname: String,
    pub return_path: ReturnPath,
    pub key: TokenKey,
    pub max_message_bytes: usize,
    pub max_connections: usize,
    pub timeout: Duration,
    pub tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for ListenerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerConfig")
            .field("hostname", &self.hostname)
            .field("return_path", &self.return_path.to_string())
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_connections", &self.max_connections)
            .field("timeout", &self.timeout)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A TLS acceptor from PEM files: a certificate chain and its private key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ListenerError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ListenerError::Tls(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ListenerError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ListenerError::Tls(format!(
            "{}: no certificate in the file",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ListenerError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ListenerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ListenerError::Tls(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds `bind` (a `host:port`; port 0 picks a free one).
pub async fn bind(bind: &str) -> Result<TcpListener, ListenerError> {
    TcpListener::bind(bind)
        .await
        .map_err(|source| ListenerError::Bind {
            bind: bind.to_string(),
            source,
        })
}

/// Serves connections until `shutdown` turns true, then waits for the sessions in progress
/// (each ends at its next read, or after its current mail is stored).
pub async fn serve<I: Inbox>(
    listener: TcpListener,
    config: ListenerConfig,
    inbox: Arc<I>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut sessions = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut shutdown) => break,
        };
        while sessions.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "inbound SMTP: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let permit = permits.clone().try_acquire_owned().ok();
        let (config, inbox, shutdown) = (config.clone(), inbox.clone(), shutdown.clone());
        sessions.spawn(async move {
            let Some(_permit) = permit else {
                let mut stream = stream;
                let _ = stream
                    .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                    .await;
                let _ = stream.shutdown().await;
                return;
            };
            run_connection(stream, peer, &config, &*inbox, shutdown).await;
        });
    }
    while sessions.join_next().await.is_some() {}
}

async fn run_connection<I: Inbox>(
    stream: TcpStream,
    peer: SocketAddr,
    config: &ListenerConfig,
    inbox: &I,
    shutdown: watch::Receiver<bool>,
) {
    let mut session = Session::new(config, peer);
    match session.run(stream, inbox, shutdown.clone(), true).await {
        Ok(Some(stream)) => {
            let Some(acceptor) = &config.tls else { return };
            match tokio::time::timeout(config.timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let mut session = Session::new(config, peer);
                    session.tls = true;
                    if let Err(e) = session.run(tls, inbox, shutdown, false).await {
                        tracing::debug!(error = %e, "inbound SMTP session ended");
                    }
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "inbound SMTP: TLS handshake failed"),
                Err(_) => tracing::debug!("inbound SMTP: TLS handshake timed out"),
            }
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "inbound SMTP session ended"),
    }
}

/// One SMTP session's state.
struct Session<'a> {
    config: &'a ListenerConfig,
    peer: SocketAddr,
    tls: bool,
    greeted: bool,
    mail_from: Option<String>,
    recipients: Vec<String>,
    errors: usize,
}

/// What a command asks the connection loop to do next.
enum Next {
    Continue,
    Data,
    StartTls,
    Quit,
}

impl<'a> Session<'a> {
    fn new(config: &'a ListenerConfig, peer: SocketAddr) -> Self {
        Self {
            config,
            peer,
            tls: false,
            greeted: false,
            mail_from: None,
            recipients: Vec::new(),
            errors: 0,
        }
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.recipients.clear();
    }

    /// Runs the session over `stream`. Returns the stream back when the client asked for
    /// STARTTLS (the caller wraps it and starts a fresh session).
    async fn run<S, I>(
        &mut self,
        mut stream: S,
        inbox: &I,
        mut shutdown: watch::Receiver<bool>,
        greet: bool,
    ) -> std::io::Result<Option<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        I: Inbox,
    {
        if greet {
            let banner = format!(
                "220 {} ESMTP herald (returned mail only)\r\n",
                self.config.hostname
            );
            stream.write_all(banner.as_bytes()).await?;
        }
        let mut receiver = RequestReceiver::default();
        let mut buf = vec![0u8; 8192];
        let mut pending: Vec<u8> = Vec::new();
        let mut out: Vec<u8> = Vec::new();
        loop {
            if pending.is_empty() {
                if !out.is_empty() {
                    stream.write_all(&out).await?;
                    out.clear();
                }
                let read = tokio::select! {
                    read = tokio::time::timeout(self.config.timeout, stream.read(&mut buf)) => read,
                    _ = stopped(&mut shutdown) => {
                        stream.write_all(b"421 4.3.2 Service shutting down\r\n").await?;
                        return Ok(None);
                    }
                };
                match read {
                    Err(_) => {
                        stream
                            .write_all(b"421 4.4.2 Idle too long, closing connection\r\n")
                            .await?;
                        return Ok(None);
                    }
                    Ok(Ok(0)) => return Ok(None),
                    Ok(Ok(n)) => pending.extend_from_slice(&buf[..n]),
                    Ok(Err(e)) => return Err(e),
                }
            }
            let mut iter = pending.iter();
            let parsed = receiver.ingest(&mut iter);
            let consumed = pending.len() - iter.as_slice().len();
            let request = match parsed {
                Ok(request) => Some(request.into_owned()),
                Err(ProtoError::NeedsMoreData { .. }) => None,
                Err(e) => {
                    self.errors += 1;
                    out.extend_from_slice(error_reply(&e).as_bytes());
                    None
                }
            };
            pending.drain(..consumed);
            if self.errors >= MAX_ERRORS {
                out.extend_from_slice(b"421 4.7.0 Too many errors, closing connection\r\n");
                stream.write_all(&out).await?;
                return Ok(None);
            }
            let Some(request) = request else { continue };
            match self.command(request, &mut out) {
                Next::Continue => {}
                Next::Quit => {
                    stream.write_all(&out).await?;
                    return Ok(None);
                }
                Next::StartTls => {
                    stream.write_all(&out).await?;
                    // Anything pipelined after STARTTLS is discarded (RFC 3207 §4.2).
                    return Ok(Some(stream));
                }
                Next::Data => {
                    stream.write_all(&out).await?;
                    out.clear();
                    let reply = self
                        .receive_data(&mut stream, &mut pending, &mut buf, inbox)
                        .await?;
                    match reply {
                        Some(reply) => out.extend_from_slice(reply.as_bytes()),
                        None => return Ok(None),
                    }
                    self.reset();
                }
            }
        }
    }

    fn command(&mut self, request: Request<String>, out: &mut Vec<u8>) -> Next {
        let mut reply = |text: &str| {
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        match request {
            Request::Ehlo { host: _ } => {
                self.greeted = true;
                self.reset();
                let mut lines = vec![
                    format!("250-{} Hello", self.config.hostname),
                    "250-PIPELINING".to_string(),
                    "250-8BITMIME".to_string(),
                    "250-ENHANCEDSTATUSCODES".to_string(),
                    format!("250-SIZE {}", self.config.max_message_bytes),
                ];
                if self.config.tls.is_some() && !self.tls {
                    lines.push("250-STARTTLS".to_string());
                }
                lines.push("250 SMTPUTF8".to_string());
                for line in lines {
                    reply(&line);
                }
            }
            Request::Helo { host: _ } | Request::Lhlo { host: _ } => {
                self.greeted = true;
                self.reset();
                reply(&format!("250 {}", self.config.hostname));
            }
            Request::StartTls => {
                if self.config.tls.is_none() || self.tls {
                    self.errors += 1;
                    reply("502 5.5.1 STARTTLS not available");
                } else {
                    reply("220 2.0.0 Ready to start TLS");
                    return Next::StartTls;
                }
            }
            Request::Mail { from } => {
                if !self.greeted {
                    self.errors += 1;
                    reply("503 5.5.1 Say EHLO first");
                } else if self.mail_from.is_some() {
                    self.errors += 1;
                    reply("503 5.5.1 Nested MAIL command");
                } else if from.size > self.config.max_message_bytes {
                    reply(&format!(
                        "552 5.3.4 Message size exceeds the limit of {} bytes",
                        self.config.max_message_bytes
                    ));
                } else {
                    self.mail_from = Some(from.address);
                    reply("250 2.1.0 OK");
                }
            }
            Request::Rcpt { to } => {
                if self.mail_from.is_none() {
                    self.errors += 1;
                    reply("503 5.5.1 Need MAIL before RCPT");
                } else if self.recipients.len() >= MAX_RECIPIENTS {
                    reply("452 4.5.3 Too many recipients");
                } else {
                    match self.config.return_path.recognise(&to.address) {
                        ReturnAddress::Foreign => {
                            tracing::debug!(peer = %self.peer, "inbound SMTP: refused a recipient that is no return path");
                            reply("550 5.7.1 Relaying denied: this server takes returned mail for its own return path only");
                        }
                        ReturnAddress::Tagged(token)
                            if self.config.key.verify_delivery(token).is_err() =>
                        {
                            tracing::info!(peer = %self.peer, "inbound SMTP: refused a return-path token that does not verify");
                            reply("550 5.1.1 No such return path here");
                        }
                        _ => {
                            self.recipients.push(to.address);
                            reply("250 2.1.5 OK");
                        }
                    }
                }
            }
            Request::Data => {
                if self.recipients.is_empty() {
                    self.errors += 1;
                    reply("503 5.5.1 Need RCPT before DATA");
                } else {
                    reply("354 Start mail input; end with <CRLF>.<CRLF>");
                    return Next::Data;
                }
            }
            Request::Bdat { .. } => {
                self.errors += 1;
                reply("502 5.5.1 CHUNKING is not offered");
            }
            Request::Rset => {
                self.reset();
                reply("250 2.0.0 OK");
            }
            Request::Noop { .. } => reply("250 2.0.0 OK"),
            Request::Vrfy { .. } | Request::Expn { .. } => {
                reply("252 2.5.2 Cannot verify, but will take returned mail")
            }
            Request::Help { .. } => reply("214 2.0.0 This server takes returned mail only"),
            Request::Quit => {
                reply("221 2.0.0 Bye");
                return Next::Quit;
            }
            Request::Auth { .. } => {
                self.errors += 1;
                reply("502 5.5.1 No authentication here");
            }
            _ => {
                self.errors += 1;
                reply("502 5.5.1 Command not implemented");
            }
        }
        Next::Continue
    }

    /// Reads the message after `354`. `pending` may already hold its first bytes (a client
    /// that pipelines DATA with the message). Returns the final reply, or `None` when the
    /// connection must close.
    async fn receive_data<S, I>(
        &mut self,
        stream: &mut S,
        pending: &mut Vec<u8>,
        buf: &mut [u8],
        inbox: &I,
    ) -> std::io::Result<Option<String>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        I: Inbox,
    {
        let max = self.config.max_message_bytes;
        let mut data = DataReceiver::new();
        let mut discard: Option<DummyDataReceiver> = None;
        let mut message: Vec<u8> = Vec::with_capacity(16 * 1024);
        loop {
            if !pending.is_empty() {
                let mut iter = pending.iter();
                let done = match &mut discard {
                    Some(d) => d.ingest(&mut iter),
                    None => data.ingest(&mut iter, &mut message),
                };
                let consumed = pending.len() - iter.as_slice().len();
                pending.drain(..consumed);
                if discard.is_none() && message.len() > max {
                    message = Vec::new();
                    discard = Some(DummyDataReceiver::new_data(&data));
                }
                if done {
                    break;
                }
                continue;
            }
            match tokio::time::timeout(self.config.timeout, stream.read(buf)).await {
                Err(_) => {
                    stream
                        .write_all(b"421 4.4.2 Timeout during DATA, closing connection\r\n")
                        .await?;
                    return Ok(None);
                }
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(n)) => pending.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => return Err(e),
            }
        }
        if discard.is_some() {
            return Ok(Some(format!(
                "552 5.3.4 Message exceeds the limit of {max} bytes\r\n"
            )));
        }
        let recipients = std::mem::take(&mut self.recipients);
        Ok(Some(
            match inbox.deliver(message, recipients, Channel::Smtp).await {
                Ok(_) => "250 2.0.0 Report stored\r\n".to_string(),
                Err(Refusal::NotMail(_)) => "554 5.6.0 Not a mail message\r\n".to_string(),
                Err(Refusal::Unavailable(_)) => {
                    "451 4.3.0 Cannot store the report now, try again later\r\n".to_string()
                }
            },
        ))
    }
}

fn error_reply(e: &ProtoError) -> String {
    match e {
        ProtoError::UnknownCommand => "500 5.5.2 Command unrecognised\r\n".into(),
        ProtoError::InvalidSenderAddress => "501 5.1.7 Bad sender address syntax\r\n".into(),
        ProtoError::InvalidRecipientAddress => "501 5.1.3 Bad recipient address syntax\r\n".into(),
        ProtoError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}\r\n"),
        ProtoError::InvalidParameter { param } => {
            format!("501 5.5.4 Invalid parameter {param}\r\n")
        }
        ProtoError::UnsupportedParameter { param } => {
            let param: String = param
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(40)
                .collect();
            format!("504 5.5.4 Unsupported parameter {param}\r\n")
        }
        ProtoError::ResponseTooLong => "500 5.5.2 Line too long\r\n".into(),
        _ => "500 5.5.2 Syntax error\r\n".into(),
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounces::inbox::Accepted;
    use crate::domain::DeliveryToken;
    use secrecy::SecretString;
    use std::sync::Mutex;
    use tokio::io::{AsyncBufReadExt, BufReader};

    /// Keeps what it is given; `fail` makes it refuse like a database that is down.
    #[derive(Default)]
    struct Collect {
        mails: Mutex<Vec<(Vec<u8>, Vec<String>)>>,
        fail: bool,
    }

    impl Inbox for Collect {
        async fn deliver(
            &self,
            mail: Vec<u8>,
            recipients: Vec<String>,
            channel: Channel,
        ) -> Result<Accepted, Refusal> {
            assert_eq!(channel, Channel::Smtp);
            if self.fail {
                return Err(Refusal::Unavailable("database is down".into()));
            }
            self.mails.lock().unwrap().push((mail, recipients));
            Ok(Accepted {
                kind: crate::bounces::Kind::None,
                duplicate: false,
            })
        }
    }

    fn key() -> TokenKey {
        TokenKey::new(&SecretString::from(
            "listener-test-key-0123456789".to_string(),
        ))
    }

    fn config() -> ListenerConfig {
        ListenerConfig {
            hostname: "bounces.news.example.org".into(),
            return_path: ReturnPath::parse("bounces@news.example.org").unwrap(),
            key: key(),
            max_message_bytes: 4096,
            max_connections: 4,
            timeout: Duration::from_secs(5),
            tls: None,
        }
    }

    struct Server {
        addr: SocketAddr,
        inbox: Arc<Collect>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn start(config: ListenerConfig, inbox: Collect) -> Server {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inbox = Arc::new(inbox);
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, config, inbox.clone(), rx));
        Server {
            addr,
            inbox,
            stop,
            task,
        }
    }

    impl Server {
        async fn stop(self) -> Arc<Collect> {
            self.stop.send(true).unwrap();
            self.task.await.unwrap();
            self.inbox
        }
    }

    struct Client<S> {
        stream: BufReader<S>,
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
        /// The next whole reply (all lines of a multi-line one), as one string.
        async fn reply(&mut self) -> String {
            let mut all = String::new();
            loop {
                let mut line = String::new();
                if self.stream.read_line(&mut line).await.unwrap() == 0 {
                    return all;
                }
                all.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return all;
                }
            }
        }

        async fn send(&mut self, text: &str) {
            self.stream
                .get_mut()
                .write_all(text.as_bytes())
                .await
                .unwrap();
        }

        async fn command(&mut self, line: &str) -> String {
            self.send(&format!("{line}\r\n")).await;
            self.reply().await
        }
    }

    async fn connect(addr: SocketAddr) -> Client<TcpStream> {
        let mut client = Client {
            stream: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        };
        assert!(client.reply().await.starts_with("220 "));
        client
    }

    fn token(issue_id: i64, subscriber_id: i64) -> String {
        key().sign_delivery(DeliveryToken {
            issue_id,
            subscriber_id,
        })
    }

    #[tokio::test]
    async fn takes_returned_mail_for_its_return_path_only() {
        let server = start(config(), Collect::default()).await;
        let mut c = connect(server.addr).await;
        let ehlo = c.command("EHLO mx.example.net").await;
        assert!(
            ehlo.contains("250-PIPELINING") && ehlo.contains("SIZE 4096"),
            "{ehlo}"
        );
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        assert!(c.command("MAIL FROM:<>").await.starts_with("250 "));
        let refused = c.command("RCPT TO:<ada@other.example>").await;
        assert!(refused.starts_with("550 5.7.1"), "{refused}");
        let refused = c.command("RCPT TO:<postmaster@news.example.org>").await;
        assert!(refused.starts_with("550 5.7.1"), "{refused}");
        let forged = c
            .command("RCPT TO:<bounces+aaaaaaaaaaaaaaaaaaaaaa@news.example.org>")
            .await;
        assert!(forged.starts_with("550 5.1.1"), "{forged}");
        let good = format!("RCPT TO:<bounces+{}@news.example.org>", token(3, 42));
        assert!(c.command(&good).await.starts_with("250 2.1.5"));
        assert!(c.command("DATA").await.starts_with("354"));
        c.send("Subject: returned\r\n\r\n..a dot-stuffed line\r\nend\r\n.\r\n")
            .await;
        assert!(c.reply().await.starts_with("250 2.0.0"));
        assert!(c.command("QUIT").await.starts_with("221"));
        let inbox = server.stop().await;
        let mails = inbox.mails.lock().unwrap();
        assert_eq!(mails.len(), 1);
        assert_eq!(
            String::from_utf8_lossy(&mails[0].0),
            "Subject: returned\r\n\r\n.a dot-stuffed line\r\nend\r\n"
        );
        assert_eq!(
            mails[0].1,
            [format!("bounces+{}@news.example.org", token(3, 42))]
        );
    }

    #[tokio::test]
    async fn pipelined_commands_get_their_replies_in_order() {
        let server = start(config(), Collect::default()).await;
        let mut c = connect(server.addr).await;
        c.send(
            "EHLO mx.example.net\r\nMAIL FROM:<>\r\nRCPT TO:<bounces@news.example.org>\r\nDATA\r\n",
        )
        .await;
        assert!(c.reply().await.starts_with("250-"));
        assert!(c.reply().await.starts_with("250 2.1.0"));
        assert!(c.reply().await.starts_with("250 2.1.5"));
        assert!(c.reply().await.starts_with("354"));
        c.send("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n").await;
        assert!(c.reply().await.starts_with("250 2.0.0"));
        assert!(c.reply().await.starts_with("221"));
        assert_eq!(server.stop().await.mails.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn oversized_mail_gets_552_and_is_not_kept() {
        let server = start(config(), Collect::default()).await;
        let mut c = connect(server.addr).await;
        c.command("EHLO mx.example.net").await;
        let declared = c.command("MAIL FROM:<> SIZE=999999").await;
        assert!(declared.starts_with("552 5.3.4"), "{declared}");
        assert!(c.command("MAIL FROM:<>").await.starts_with("250"));
        c.command("RCPT TO:<bounces@news.example.org>").await;
        assert!(c.command("DATA").await.starts_with("354"));
        let line = "x".repeat(70) + "\r\n";
        for _ in 0..100 {
            c.send(&line).await;
        }
        c.send(".\r\n").await;
        let reply = c.reply().await;
        assert!(reply.starts_with("552 5.3.4"), "{reply}");
        // The session goes on.
        assert!(c.command("NOOP").await.starts_with("250"));
        assert!(server.stop().await.mails.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_store_failure_is_451_so_the_sender_retries() {
        let inbox = Collect {
            fail: true,
            ..Collect::default()
        };
        let server = start(config(), inbox).await;
        let mut c = connect(server.addr).await;
        c.command("HELO mx.example.net").await;
        c.command("MAIL FROM:<>").await;
        c.command("RCPT TO:<bounces@news.example.org>").await;
        c.command("DATA").await;
        c.send("Subject: x\r\n\r\nbody\r\n.\r\n").await;
        let reply = c.reply().await;
        assert!(reply.starts_with("451 4.3.0"), "{reply}");
        server.stop().await;
    }

    #[tokio::test]
    async fn an_idle_client_is_cut_off() {
        let mut config = config();
        config.timeout = Duration::from_millis(200);
        let server = start(config, Collect::default()).await;
        let mut c = connect(server.addr).await;
        c.command("EHLO mx.example.net").await;
        let reply = c.reply().await;
        assert!(reply.starts_with("421 4.4.2"), "{reply}");
        assert_eq!(c.reply().await, "", "the connection is closed");
        server.stop().await;
    }

    #[tokio::test]
    async fn connections_past_the_cap_are_turned_away() {
        let mut config = config();
        config.max_connections = 2;
        let server = start(config, Collect::default()).await;
        let _a = connect(server.addr).await;
        let _b = connect(server.addr).await;
        let mut third = Client {
            stream: BufReader::new(TcpStream::connect(server.addr).await.unwrap()),
        };
        let reply = third.reply().await;
        assert!(reply.starts_with("421 4.3.2"), "{reply}");
        drop(_a);
        drop(_b);
        server.stop().await;
    }

    #[tokio::test]
    async fn commands_out_of_order_are_refused_and_abuse_ends_the_session() {
        let server = start(config(), Collect::default()).await;
        let mut c = connect(server.addr).await;
        assert!(c.command("MAIL FROM:<>").await.starts_with("503"));
        c.command("EHLO mx.example.net").await;
        assert!(c.command("DATA").await.starts_with("503"));
        assert!(c.command("AUTH PLAIN AAAA").await.starts_with("502"));
        let mut last = String::new();
        for _ in 0..12 {
            last = c.command("FROBNICATE").await;
            if last.starts_with("421") {
                break;
            }
        }
        assert!(last.contains("421 4.7.0"), "{last}");
        server.stop().await;
    }

    #[tokio::test]
    async fn starttls_is_offered_with_a_certificate_and_the_session_starts_over() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
        let mut config = config();
        config.tls =
            Some(tls_acceptor(&fixtures.join("server.pem"), &fixtures.join("server.key")).unwrap());
        let server = start(config, Collect::default()).await;
        let mut c = connect(server.addr).await;
        assert!(c
            .command("EHLO mx.example.net")
            .await
            .contains("250-STARTTLS"));
        assert!(c.command("STARTTLS").await.starts_with("220 2.0.0"));

        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            rustls_pki_types::CertificateDer::pem_file_iter(fixtures.join("ca.pem")).unwrap()
        {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
        let tcp = c.stream.into_inner();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let mut c = Client {
            stream: BufReader::new(tls),
        };
        // No second greeting; EHLO again, and no STARTTLS on offer any more.
        let ehlo = c.command("EHLO mx.example.net").await;
        assert!(
            ehlo.starts_with("250-") && !ehlo.contains("STARTTLS"),
            "{ehlo}"
        );
        assert!(c.command("MAIL FROM:<>").await.starts_with("250"));
        assert!(c
            .command("RCPT TO:<bounces@news.example.org>")
            .await
            .starts_with("250"));
        assert!(c.command("DATA").await.starts_with("354"));
        c.send("Subject: over tls\r\n\r\nbody\r\n.\r\n").await;
        assert!(c.reply().await.starts_with("250 2.0.0"));
        let inbox = server.stop().await;
        assert_eq!(inbox.mails.lock().unwrap().len(), 1);
    }
}
