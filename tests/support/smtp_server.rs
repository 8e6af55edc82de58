//! An in-process SMTP server for the dispatcher's integration tests, with fault injection.
//!
//! It speaks just enough ESMTP for herald's SMTP client over plain TCP on loopback (no TLS,
//! AUTH only when asked): greeting, EHLO/HELO (advertising `PIPELINING`, `8BITMIME`, `SMTPUTF8` and
//! `SIZE`, and `CHUNKING` when asked), MAIL, RCPT, DATA (with dot-unstuffing), BDAT (RFC 3030,
//! when `CHUNKING` is offered), RSET, NOOP, QUIT; anything else gets `502`. A connection may
//! carry any number of transactions, as herald's pool reuses them.
//!
//! [`Offer`] chooses which of PIPELINING and CHUNKING the EHLO reply advertises. The server
//! answers commands one at a time in any case, as a real relay does, and counts commands
//! that arrived before the reply to the one before them had been sent
//! ([`SmtpServer::pipelined_commands`]): a client that pipelines without PIPELINING on offer
//! shows up there.
//!
//! Every accepted message is recorded as a [`Received`]. Faults are described by [`Faults`]
//! and can be swapped while the server runs ([`SmtpServer::set_faults`]), so a test can let a
//! retry succeed. Each [`Fault`] acts at one [`Stage`], optionally only for matching addresses
//! and only a limited number of times:
//!
//! ```ignore
//! let server = SmtpServer::start(Faults::new()
//!     .with(Fault::reply(Stage::Rcpt, 550, "5.1.1 user unknown").for_addresses_containing("fail-"))
//!     .with(Fault::reply(Stage::DataEnd, 451, "4.3.0 try again").times(1)));
//! ```
//!
//! The server prints nothing. [`SmtpServer::transcript`] returns the conversation (without
//! message bodies) for a failing test to print. Dropping the server stops it: the listener and
//! every connection task are aborted.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};

/// Longest command line accepted (RFC 5321 allows 512; lettre's lines are far shorter).
const MAX_COMMAND_LINE: usize = 4096;
/// Largest message accepted, also advertised as `SIZE`.
const MAX_MESSAGE_SIZE: usize = 50 * 1024 * 1024;
/// Host name used in the greeting and EHLO reply.
const HOSTNAME: &str = "herald-test-smtp";

/// One message the server accepted (or, for [`SmtpServer::dropped_after_data`], read in full
/// without ever answering the final ".").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The reverse path of `MAIL FROM`, without angle brackets (empty for `<>`).
    pub mail_from: String,
    /// The accepted `RCPT TO` addresses, in order, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message as sent between `354` and the final ".", dot-unstuffed, with its CRLFs.
    pub data: Vec<u8>,
}

impl Received {
    /// The data as text (lossy), for assertions on headers and body.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// The point of the SMTP conversation at which a [`Fault`] acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Right after the connection is accepted, in place of the `220` greeting. A reply here is
    /// followed by closing the connection.
    Connect,
    /// The reply to `EHLO` or `HELO`.
    Ehlo,
    /// The reply to `MAIL FROM`. An address filter is matched against the sender.
    Mail,
    /// The reply to `RCPT TO`. An address filter is matched against that recipient.
    Rcpt,
    /// The reply to `DATA` (normally `354`). An address filter matches if any accepted
    /// recipient of the transaction matches. With `BDAT`, which has no `354`, a fault here
    /// answers `BDAT … LAST` in place of the final reply (checked before [`Stage::DataEnd`]).
    Data,
    /// The reply to the final "." after the message data (normally `250`). The data has been
    /// read in full. An address filter matches as for [`Stage::Data`]. Also the reply to
    /// `BDAT … LAST`, once its chunk has been read.
    DataEnd,
}

/// Which optional extensions the EHLO reply advertises. The default offers PIPELINING and
/// not CHUNKING.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// RFC 2920 command pipelining.
    pub pipelining: bool,
    /// RFC 3030 `BDAT`.
    pub chunking: bool,
    /// `AUTH PLAIN`, accepting any credentials (the transcript shows the command).
    pub auth: bool,
}

impl Default for Offer {
    fn default() -> Self {
        Self {
            pipelining: true,
            chunking: false,
            auth: false,
        }
    }
}

impl Offer {
    /// Neither PIPELINING nor CHUNKING: a client must send one command at a time.
    pub fn plain() -> Self {
        Self {
            pipelining: false,
            chunking: false,
            auth: false,
        }
    }

    /// Both PIPELINING and CHUNKING.
    pub fn everything() -> Self {
        Self {
            pipelining: true,
            chunking: true,
            auth: false,
        }
    }

    /// This offer, with `AUTH PLAIN` too.
    pub fn with_auth(self) -> Self {
        Self { auth: true, ..self }
    }

    /// CHUNKING without PIPELINING.
    pub fn chunking_only() -> Self {
        Self {
            pipelining: false,
            chunking: true,
            auth: false,
        }
    }
}

/// An SMTP reply line: code and text (the text normally starts with an enhanced status code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code, such as 451 or 550.
    pub code: u16,
    /// Text after the code, such as "4.3.0 Try again later".
    pub text: String,
}

impl Reply {
    /// A reply with this code and text.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }
}

/// What a [`Fault`] does when it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Answer with this reply instead of the normal one; the session goes on. At
    /// [`Stage::Rcpt`] the recipient is not added; at [`Stage::DataEnd`] the message is not
    /// recorded.
    Reply(Reply),
    /// Answer with this reply (typically `421`), then close the connection.
    ReplyAndClose(Reply),
    /// Close the connection without replying. At [`Stage::DataEnd`] the message, read in full,
    /// goes to [`SmtpServer::dropped_after_data`] instead of [`SmtpServer::received`].
    Drop,
    /// Wait this long, then carry on normally (to exercise client timeouts).
    Delay(Duration),
}

/// Decides whether a fault applies to an address.
type AddressFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// One injected fault: an [`Action`] at a [`Stage`], optionally filtered by address and
/// limited in count. Build with [`Fault::reply`], [`Fault::close`], [`Fault::drop`] or
/// [`Fault::delay`], then refine with [`Fault::for_addresses`] and [`Fault::times`].
#[derive(Clone)]
pub struct Fault {
    stage: Stage,
    action: Action,
    /// `None` matches every address (and transactions without one).
    filter: Option<AddressFilter>,
    /// How many more times the fault may fire; `None` is unlimited.
    remaining: Option<usize>,
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault")
            .field("stage", &self.stage)
            .field("action", &self.action)
            .field("filtered", &self.filter.is_some())
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl Fault {
    /// A fault with any action.
    pub fn new(stage: Stage, action: Action) -> Self {
        Self {
            stage,
            action,
            filter: None,
            remaining: None,
        }
    }

    /// Answer `code text` at `stage` instead of the normal reply.
    pub fn reply(stage: Stage, code: u16, text: impl Into<String>) -> Self {
        Self::new(stage, Action::Reply(Reply::new(code, text)))
    }

    /// Answer `421 4.4.2 ...` at `stage`, then close the connection.
    pub fn close(stage: Stage) -> Self {
        Self::new(
            stage,
            Action::ReplyAndClose(Reply::new(
                421,
                format!("4.4.2 {HOSTNAME} Service not available, closing transmission channel"),
            )),
        )
    }

    /// Close the connection at `stage` without replying. At [`Stage::DataEnd`] this is the
    /// "server got the data, client never heard back" case.
    pub fn drop(stage: Stage) -> Self {
        Self::new(stage, Action::Drop)
    }

    /// Wait `delay` before the normal reply at `stage`.
    pub fn delay(stage: Stage, delay: Duration) -> Self {
        Self::new(stage, Action::Delay(delay))
    }

    /// Fire only for addresses accepted by `filter` (see [`Stage`] for which address).
    pub fn for_addresses(mut self, filter: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Fire only for addresses containing `needle`, such as "fail-".
    pub fn for_addresses_containing(self, needle: impl Into<String>) -> Self {
        let needle = needle.into();
        self.for_addresses(move |address| address.contains(&needle))
    }

    /// Fire only the first `n` times it matches, then behave normally (so a retry succeeds).
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    fn matches(&self, stage: Stage, addresses: &[&str]) -> bool {
        self.stage == stage
            && self.remaining != Some(0)
            && match &self.filter {
                None => true,
                Some(filter) => addresses.iter().any(|address| filter(address)),
            }
    }
}

/// The faults a server injects. The default injects none.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Checked in order at each stage; the first matching fault that has not run out fires.
    pub faults: Vec<Fault>,
    /// A delay before every reply, the greeting included.
    pub reply_delay: Option<Duration>,
}

impl Faults {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a fault, after those already present.
    pub fn with(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Delays every reply by `delay`.
    pub fn with_reply_delay(mut self, delay: Duration) -> Self {
        self.reply_delay = Some(delay);
        self
    }

    /// Finds the fault for this stage, counting it as fired.
    fn fire(&mut self, stage: Stage, addresses: &[&str]) -> Option<Action> {
        let fault = self
            .faults
            .iter_mut()
            .find(|fault| fault.matches(stage, addresses))?;
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
        }
        Some(fault.action.clone())
    }
}

/// State shared by the server handle and its tasks.
#[derive(Default)]
struct Shared {
    offer: Mutex<Offer>,
    faults: Mutex<Faults>,
    received: Mutex<Vec<Received>>,
    dropped_after_data: Mutex<Vec<Received>>,
    transcript: Mutex<Vec<String>>,
    connections: AtomicUsize,
    transactions: AtomicUsize,
    pipelined: AtomicUsize,
    bdat: AtomicUsize,
    /// Woken whenever a message is recorded.
    received_changed: Notify,
    /// Connection tasks, aborted when the server is dropped.
    tasks: Mutex<Vec<AbortHandle>>,
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not hide the state.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running fault-injecting SMTP server on 127.0.0.1. Stops when dropped.
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SmtpServer {
    /// Binds 127.0.0.1 on a free port and serves connections until dropped.
    ///
    /// Must be called inside a tokio runtime (it spawns tasks); with a blocking client, use a
    /// multi-threaded runtime and run the client in `spawn_blocking`.
    pub fn start(faults: Faults) -> SmtpServer {
        Self::start_offering(Offer::default(), faults)
    }

    /// As [`SmtpServer::start`], advertising the extensions `offer` names.
    pub fn start_offering(offer: Offer, faults: Faults) -> SmtpServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of listener");
        let shared = Arc::new(Shared {
            offer: Mutex::new(offer),
            faults: Mutex::new(faults),
            ..Shared::default()
        });
        let handle = spawn_listener(listener, Arc::clone(&shared));
        SmtpServer {
            addr,
            shared,
            listener: Mutex::new(Some(handle)),
        }
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:PORT`, as herald's configuration takes it.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Replaces the faults, for connections and commands from now on (fault counts restart).
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Changes what EHLO advertises, for connections from now on.
    pub fn set_offer(&self, offer: Offer) {
        *lock(&self.shared.offer) = offer;
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.set_faults(Faults::new());
    }

    /// Messages accepted so far, in order of their final "." reply.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    /// How many messages were accepted.
    pub fn received_count(&self) -> usize {
        lock(&self.shared.received).len()
    }

    /// Messages read in full but never answered because of an [`Action::Drop`] at
    /// [`Stage::DataEnd`]: the server has them, the client does not know.
    pub fn dropped_after_data(&self) -> Vec<Received> {
        lock(&self.shared.dropped_after_data).clone()
    }

    /// Waits until at least `n` messages were accepted; false if `timeout` passed first.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.received_changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.received_count() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Connections accepted so far (including ones refused by a [`Stage::Connect`] fault).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// `MAIL FROM` commands received so far, whatever became of them.
    pub fn transactions(&self) -> usize {
        self.shared.transactions.load(Ordering::SeqCst)
    }

    /// Commands that arrived while the reply to an earlier command was still unsent: a
    /// pipelining client sends several; a client that waits for each reply, none.
    pub fn pipelined_commands(&self) -> usize {
        self.shared.pipelined.load(Ordering::SeqCst)
    }

    /// `BDAT` commands received so far.
    pub fn bdat_commands(&self) -> usize {
        self.shared.bdat.load(Ordering::SeqCst)
    }

    /// The conversation so far, one line per command (`C: `) or reply (`S: `), message data
    /// left out. Connections are told apart by a `#n` prefix.
    pub fn transcript(&self) -> Vec<String> {
        lock(&self.shared.transcript).clone()
    }

    /// Stops listening, so new connections are refused at the TCP level ("relay down").
    /// Established connections carry on.
    pub async fn close_listener(&self) {
        let handle = lock(&self.listener).take();
        if let Some(handle) = handle {
            handle.abort();
            // Waiting for the task to end guarantees the socket is closed on return.
            let _ = handle.await;
        }
    }

    /// Listens again on the same port after [`SmtpServer::close_listener`] ("relay back").
    pub fn reopen_listener(&self) -> std::io::Result<()> {
        let mut slot = lock(&self.listener);
        if slot.is_none() {
            let listener = std::net::TcpListener::bind(self.addr)?;
            *slot = Some(spawn_listener(listener, Arc::clone(&self.shared)));
        }
        Ok(())
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(handle) = lock(&self.listener).take() {
            handle.abort();
        }
        for task in lock(&self.shared.tasks).drain(..) {
            task.abort();
        }
    }
}

fn spawn_listener(listener: std::net::TcpListener, shared: Arc<Shared>) -> JoinHandle<()> {
    listener
        .set_nonblocking(true)
        .expect("set listener non-blocking");
    let listener = TcpListener::from_std(listener).expect("register listener with tokio");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors and the like: back off rather than spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let id = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
            let session = Session::new(id, Arc::clone(&shared));
            let task = tokio::spawn(session.run(stream));
            let mut tasks = lock(&shared.tasks);
            tasks.retain(|task| !task.is_finished());
            tasks.push(task.abort_handle());
        }
    })
}

/// Why a session ends early; client misbehaviour only ever ends its own connection.
enum End {
    /// The client closed the connection or the socket failed.
    Disconnected,
    /// The server chose to close (QUIT, a fault, a line too long).
    Closed,
}

type Step = Result<(), End>;

/// One connection's state.
struct Session {
    id: usize,
    shared: Arc<Shared>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    /// Chunks of a `BDAT` transaction so far.
    chunks: Vec<u8>,
}

impl Session {
    fn new(id: usize, shared: Arc<Shared>) -> Self {
        Self {
            id,
            shared,
            mail_from: None,
            rcpt_to: Vec::new(),
            chunks: Vec::new(),
        }
    }

    async fn run(mut self, stream: TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let _ = self.converse(&mut read, &mut write).await;
        let _ = write.shutdown().await;
    }

    fn log(&self, line: String) {
        lock(&self.shared.transcript).push(format!("#{} {line}", self.id));
    }

    fn fire(&self, stage: Stage, addresses: &[&str]) -> Option<Action> {
        lock(&self.shared.faults).fire(stage, addresses)
    }

    async fn reply(&self, write: &mut (impl AsyncWriteExt + Unpin), line: &str) -> Step {
        let delay = lock(&self.shared.faults).reply_delay;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.log(format!("S: {line}"));
        let mut bytes = line.replace('\n', "\r\n").into_bytes();
        bytes.extend_from_slice(b"\r\n");
        write
            .write_all(&bytes)
            .await
            .map_err(|_| End::Disconnected)?;
        write.flush().await.map_err(|_| End::Disconnected)
    }

    /// Answers with the fault for `stage` if one fires, else with `normal`. Returns whether
    /// the normal path should go on.
    async fn answer(
        &self,
        write: &mut (impl AsyncWriteExt + Unpin),
        stage: Stage,
        addresses: &[&str],
        normal: &str,
    ) -> Result<bool, End> {
        let action = self.fire(stage, addresses);
        self.answer_with(write, action, normal).await
    }

    /// Answers as `action` says, or with `normal` when there is no fault.
    async fn answer_with(
        &self,
        write: &mut (impl AsyncWriteExt + Unpin),
        action: Option<Action>,
        normal: &str,
    ) -> Result<bool, End> {
        match action {
            None => {}
            Some(Action::Delay(delay)) => tokio::time::sleep(delay).await,
            Some(Action::Reply(reply)) => {
                self.reply(write, &format!("{} {}", reply.code, reply.text))
                    .await?;
                return Ok(false);
            }
            Some(Action::ReplyAndClose(reply)) => {
                self.reply(write, &format!("{} {}", reply.code, reply.text))
                    .await?;
                return Err(End::Closed);
            }
            Some(Action::Drop) => {
                self.log("S: (drops the connection)".to_owned());
                return Err(End::Closed);
            }
        }
        self.reply(write, normal).await?;
        Ok(true)
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
        self.chunks.clear();
    }

    async fn converse(
        &mut self,
        read: &mut BufReader<impl AsyncRead + Unpin>,
        write: &mut (impl AsyncWriteExt + Unpin),
    ) -> Step {
        let greeting = format!("220 {HOSTNAME} ESMTP ready");
        if !self.answer(write, Stage::Connect, &[], &greeting).await? {
            return Err(End::Closed);
        }
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut *read)
                .take(MAX_COMMAND_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|_| End::Disconnected)?;
            if n == 0 {
                return Err(End::Disconnected);
            }
            if !line.ends_with(b"\n") {
                self.reply(write, "500 5.5.2 Line too long").await?;
                return Err(End::Closed);
            }
            let command = String::from_utf8_lossy(&line).trim_end().to_owned();
            let carries_data = command
                .get(..5)
                .is_some_and(|verb| verb.eq_ignore_ascii_case("BDAT "));
            if !read.buffer().is_empty() && !carries_data {
                // The next command was read with this one, before this one's reply.
                self.shared.pipelined.fetch_add(1, Ordering::SeqCst);
            }
            self.log(format!("C: {command}"));
            self.command(&command, read, write).await?;
        }
    }

    async fn command(
        &mut self,
        command: &str,
        read: &mut BufReader<impl AsyncRead + Unpin>,
        write: &mut (impl AsyncWriteExt + Unpin),
    ) -> Step {
        let (verb, argument) = match command.split_once(' ') {
            Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
            None => (command.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" | "HELO" if argument.is_empty() => {
                self.reply(write, "501 5.5.4 Syntax: EHLO hostname").await
            }
            "EHLO" => {
                self.reset();
                let offer = *lock(&self.shared.offer);
                let mut normal = format!("250-{HOSTNAME}\n");
                if offer.pipelining {
                    normal.push_str("250-PIPELINING\n");
                }
                if offer.chunking {
                    normal.push_str("250-CHUNKING\n");
                }
                if offer.auth {
                    normal.push_str("250-AUTH PLAIN\n");
                }
                normal.push_str(&format!(
                    "250-8BITMIME\n250-SMTPUTF8\n250 SIZE {MAX_MESSAGE_SIZE}"
                ));
                self.answer(write, Stage::Ehlo, &[], &normal).await?;
                Ok(())
            }
            "HELO" => {
                self.reset();
                let normal = format!("250 {HOSTNAME}");
                self.answer(write, Stage::Ehlo, &[], &normal).await?;
                Ok(())
            }
            "MAIL" => self.mail(argument, write).await,
            "RCPT" => self.rcpt(argument, write).await,
            "DATA" => self.data(read, write).await,
            "BDAT" => self.bdat(argument, read, write).await,
            "RSET" => {
                self.reset();
                self.reply(write, "250 2.0.0 Ok").await
            }
            "NOOP" => self.reply(write, "250 2.0.0 Ok").await,
            "AUTH" if lock(&self.shared.offer).auth && argument.len() > 6 => {
                self.reply(write, "235 2.7.0 Authentication successful")
                    .await
            }
            "QUIT" => {
                self.reply(write, "221 2.0.0 Bye").await?;
                Err(End::Closed)
            }
            _ => self.reply(write, "502 5.5.2 Command not implemented").await,
        }
    }

    async fn mail(&mut self, argument: &str, write: &mut (impl AsyncWriteExt + Unpin)) -> Step {
        if self.mail_from.is_some() {
            return self.reply(write, "503 5.5.1 Nested MAIL command").await;
        }
        let Some(from) = parse_path(argument, "FROM:") else {
            return self
                .reply(write, "501 5.5.4 Syntax: MAIL FROM:<address>")
                .await;
        };
        self.shared.transactions.fetch_add(1, Ordering::SeqCst);
        if self
            .answer(write, Stage::Mail, &[&from], "250 2.1.0 Ok")
            .await?
        {
            self.mail_from = Some(from);
        }
        Ok(())
    }

    async fn rcpt(&mut self, argument: &str, write: &mut (impl AsyncWriteExt + Unpin)) -> Step {
        if self.mail_from.is_none() {
            return self.reply(write, "503 5.5.1 Need MAIL command").await;
        }
        let Some(to) = parse_path(argument, "TO:").filter(|to| !to.is_empty()) else {
            return self
                .reply(write, "501 5.5.4 Syntax: RCPT TO:<address>")
                .await;
        };
        if self
            .answer(write, Stage::Rcpt, &[&to], "250 2.1.5 Ok")
            .await?
        {
            self.rcpt_to.push(to);
        }
        Ok(())
    }

    async fn data(
        &mut self,
        read: &mut BufReader<impl AsyncRead + Unpin>,
        write: &mut (impl AsyncWriteExt + Unpin),
    ) -> Step {
        if self.mail_from.is_none() {
            return self.reply(write, "503 5.5.1 Need MAIL command").await;
        }
        if self.rcpt_to.is_empty() {
            return self.reply(write, "554 5.5.1 No valid recipients").await;
        }
        let rcpt_to = self.rcpt_to.clone();
        let addresses: Vec<&str> = rcpt_to.iter().map(String::as_str).collect();
        let go_on = self
            .answer(
                write,
                Stage::Data,
                &addresses,
                "354 End data with <CR><LF>.<CR><LF>",
            )
            .await?;
        if !go_on {
            return Ok(());
        }
        let data = read_data(read).await?;
        self.log(format!("C: ({} bytes of data, then \".\")", data.len()));
        let message = Received {
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: rcpt_to.clone(),
            data,
        };
        self.reset();
        if message.data.len() > MAX_MESSAGE_SIZE {
            return self
                .reply(write, "552 5.3.4 Message size exceeds fixed limit")
                .await;
        }
        let action = self.fire(Stage::DataEnd, &addresses);
        if action == Some(Action::Drop) {
            // Data read in full, no reply: kept aside so tests can tell it from a delivery.
            self.log("S: (drops the connection)".to_owned());
            lock(&self.shared.dropped_after_data).push(message);
            return Err(End::Closed);
        }
        let accepted = self
            .answer_with(write, action, "250 2.0.0 Ok: queued")
            .await;
        if let Ok(true) = accepted {
            // Recorded once the client has been told, as a real server would queue it.
            lock(&self.shared.received).push(message);
            self.shared.received_changed.notify_waiters();
        }
        accepted.map(|_| ())
    }
}

impl Session {
    /// `BDAT size [LAST]`: reads exactly `size` octets (also when the transaction is
    /// refused, to stay in step), and on `LAST` takes the chunks as one message.
    async fn bdat(
        &mut self,
        argument: &str,
        read: &mut BufReader<impl AsyncRead + Unpin>,
        write: &mut (impl AsyncWriteExt + Unpin),
    ) -> Step {
        if !lock(&self.shared.offer).chunking {
            return self.reply(write, "502 5.5.1 BDAT is not offered").await;
        }
        self.shared.bdat.fetch_add(1, Ordering::SeqCst);
        let mut words = argument.split_whitespace();
        let size = words.next().and_then(|n| n.parse::<usize>().ok());
        let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
        let Some(size) = size.filter(|n| *n <= MAX_MESSAGE_SIZE) else {
            self.reply(write, "501 5.5.4 Syntax: BDAT size [LAST]")
                .await?;
            return Err(End::Closed);
        };
        let mut chunk = vec![0; size];
        read.read_exact(&mut chunk)
            .await
            .map_err(|_| End::Disconnected)?;
        self.log(format!("C: ({size} bytes of chunk)"));
        if self.mail_from.is_none() {
            self.reset();
            return self.reply(write, "503 5.5.1 Need MAIL command").await;
        }
        if self.rcpt_to.is_empty() {
            self.reset();
            return self.reply(write, "554 5.5.1 No valid recipients").await;
        }
        self.chunks.extend_from_slice(&chunk);
        if !last {
            return self
                .reply(write, &format!("250 2.0.0 {size} octets received"))
                .await;
        }
        let rcpt_to = self.rcpt_to.clone();
        let addresses: Vec<&str> = rcpt_to.iter().map(String::as_str).collect();
        let message = Received {
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: rcpt_to.clone(),
            data: std::mem::take(&mut self.chunks),
        };
        self.reset();
        let action = match self.fire(Stage::Data, &addresses) {
            Some(action) => Some(action),
            None => self.fire(Stage::DataEnd, &addresses),
        };
        if action == Some(Action::Drop) {
            self.log("S: (drops the connection)".to_owned());
            lock(&self.shared.dropped_after_data).push(message);
            return Err(End::Closed);
        }
        let accepted = self
            .answer_with(write, action, "250 2.0.0 Ok: queued")
            .await;
        if let Ok(true) = accepted {
            lock(&self.shared.received).push(message);
            self.shared.received_changed.notify_waiters();
        }
        accepted.map(|_| ())
    }
}

/// Reads message data up to the terminating ".", undoing dot-stuffing. Bare-LF line ends are
/// tolerated for the terminator.
async fn read_data(read: &mut BufReader<impl AsyncRead + Unpin>) -> Result<Vec<u8>, End> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = read
            .read_until(b'\n', &mut line)
            .await
            .map_err(|_| End::Disconnected)?;
        if n == 0 {
            return Err(End::Disconnected);
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        // Past the size limit, keep reading to the "." but stop storing.
        if data.len() <= MAX_MESSAGE_SIZE {
            data.extend_from_slice(unstuffed);
        }
    }
}

/// Parses `FROM:<a@b> PARAMS` (or `TO:`), case-insensitively, tolerating a space after the
/// colon and a missing pair of angle brackets. Returns the address without brackets.
fn parse_path(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start();
    if let Some(bracketed) = rest.strip_prefix('<') {
        let end = bracketed.find('>')?;
        Some(bracketed[..end].to_owned())
    } else {
        let address = rest.split_whitespace().next()?;
        Some(address.to_owned())
    }
}
