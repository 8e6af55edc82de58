//! Postfix's `smtp-sink` as a test SMTP server: an independent, fast implementation to check
//! the dispatcher against, next to our own [`super::smtp_server`].
//!
//! [`SmtpSink::start`] runs `smtp-sink -c -d DIR/%M%S. [extra args] 127.0.0.1:PORT 256` on a
//! free loopback port, waits until the port accepts connections, and kills the process when
//! dropped. It returns `None` (or panics under `HERALD_REQUIRE_TOOLS`) when smtp-sink is not
//! installed (`apt-get install postfix`). As root, smtp-sink insists on `-u`, so the helper
//! adds `-u nobody` and makes the dump directory writable for it.
//!
//! # Counting and content
//!
//! Two sources, both exact:
//! - `-c` prints `\rsess=N quit=N mesg=N` to stdout whenever a session ends, a QUIT is
//!   executed, or a final "." is received. A reader thread keeps the latest values;
//!   [`SmtpSink::count`] is `mesg`. smtp-sink writes it *before* it answers the ".", but the
//!   reader thread parses it a moment later, so a client may see its reply first: wait with
//!   [`SmtpSink::wait_for`] rather than reading [`SmtpSink::count`] right after a send.
//! - `-d DIR/%M%S.` dumps each transaction to its own file, named by the strftime template
//!   plus 8 pseudo-random hex digits (`0512.3f9a07c2`). The file is created with
//!   `O_CREAT|O_EXCL` and a new random suffix is drawn on `EEXIST`, so messages arriving in the
//!   same second never overwrite each other (checked by sending 200 at once). The file is
//!   opened at MAIL, unlinked if the transaction is aborted (RSET, EHLO, disconnect before
//!   the "."), and closed at the final "." before the reply, so once every client has its
//!   reply, [`SmtpSink::dump_files`] is exact at once. [`SmtpSink::messages`] parses the
//!   dumps: smtp-sink's `X-Mail-Args`/`X-Rcpt-Args` give the envelope, then come the message
//!   lines with CRLF turned into LF and dot-stuffing undone.
//!
//! Both count every message whose final "." arrived, **including ones smtp-sink then rejects
//! or drops** (`-f .`, `-r .`, `-q .`, `-Q .`): they measure "the server got the data", not
//! "the client was told it was accepted".
//!
//! # Fault options (verified with Postfix 3.7.11 and lettre 0.11; see `tests/smtp_server.rs`)
//!
//! Each takes a comma-separated list of commands (`CONNECT, HELO, EHLO, MAIL, RCPT, DATA, .,
//! RSET, NOOP, QUIT`, case-insensitive) and applies to *every* occurrence: smtp-sink has no
//! per-recipient or first-N filtering (use [`super::smtp_server`] for that).
//! - `-r CMD`: soft reject, `450 4.3.0 Error: command failed` (reply text set with `-b`).
//!   Implies `-p` (no PIPELINING). `-r RCPT` rejects every recipient, so the DATA that
//!   follows gets `503 5.5.1 Error: need RCPT command` (lettre stops at the 450 first).
//! - `-f CMD`: hard reject, `500 5.3.0 Error: command failed` (text set with `-B`). Implies
//!   `-p`. `-f .` rejects after the whole message was received (and dumped and counted).
//! - `-Q CMD`: reply `421 4.0.0 Server closing connection`, then disconnect.
//! - `-q CMD`: disconnect without replying. `-q .` reads the whole message (dumped and
//!   counted), then closes: the client cannot know whether it was delivered.
//! - `-w SECS` delays the 354 reply to DATA; `-W CMD:SECS` delays the reply to any command, e.g.
//!   `-W .:5` to trip a client timeout at the final dot.
//!
//! smtp-sink announces `AUTH PLAIN LOGIN` (lettre ignores it without credentials; `-a` hides
//! it), not `SMTPUTF8` (lettre refuses non-ASCII addresses with it) and not STARTTLS.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::require_tool;

/// Listen backlog passed to smtp-sink.
const BACKLOG: &str = "256";
/// How long smtp-sink may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One dumped transaction, parsed from a `-d` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkMessage {
    /// smtp-sink's pseudo-random id (the file name suffix).
    pub id: String,
    /// The MAIL FROM address, without angle brackets or parameters.
    pub mail_from: String,
    /// The RCPT TO addresses smtp-sink accepted, in order, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message (headers and body) with LF line ends and dot-stuffing undone.
    pub data: String,
}

/// Counters printed by `smtp-sink -c`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Sessions ended (the helper's readiness probe counts as one).
    pub sessions: usize,
    /// QUIT commands executed.
    pub quits: usize,
    /// Final "." received, whatever the reply.
    pub messages: usize,
}

#[derive(Default)]
struct Counters {
    sessions: AtomicUsize,
    quits: AtomicUsize,
    messages: AtomicUsize,
}

/// A running `smtp-sink` on 127.0.0.1. Killed when dropped.
pub struct SmtpSink {
    child: Child,
    port: u16,
    dump: tempfile::TempDir,
    counters: Arc<Counters>,
    stderr: Arc<Mutex<String>>,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("port", &self.port)
            .field("dump", &self.dump.path())
            .finish_non_exhaustive()
    }
}

impl SmtpSink {
    /// Starts smtp-sink with `extra_args` (fault options such as `["-r", "RCPT"]`) on a free
    /// loopback port and waits until it accepts connections. `None` when smtp-sink is missing
    /// and the test should skip.
    pub fn start(extra_args: &[&str]) -> Option<SmtpSink> {
        let program = require_tool(
            "smtp-sink",
            &["/usr/sbin/smtp-sink"],
            "apt-get install postfix",
        )?;
        // The port is free when probed; another process could take it before smtp-sink binds,
        // so try a few times.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&program, extra_args) {
                Ok(sink) => return Some(sink),
                Err(error) => last_error = error,
            }
        }
        panic!("smtp-sink did not start: {last_error}");
    }

    fn try_start(program: &Path, extra_args: &[&str]) -> Result<SmtpSink, String> {
        let port = free_port();
        let dump = tempfile::tempdir().map_err(|e| format!("dump directory: {e}"))?;
        let mut command = Command::new(program);
        if running_as_root() {
            // smtp-sink refuses to run as root without -u; the user must be able to dump.
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dump.path(), std::fs::Permissions::from_mode(0o777))
                .map_err(|e| format!("chmod dump directory: {e}"))?;
            command.args(["-u", "nobody"]);
        }
        let template = format!("{}/%M%S.", dump.path().display());
        command
            .arg("-c")
            .args(["-d", &template])
            .args(extra_args)
            .arg(format!("127.0.0.1:{port}"))
            .arg(BACKLOG)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("spawn: {e}"))?;
        let counters = Arc::new(Counters::default());
        let stdout = child.stdout.take().expect("piped stdout");
        let reader_counters = Arc::clone(&counters);
        std::thread::spawn(move || read_counters(stdout, &reader_counters));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut child_stderr = child.stderr.take().expect("piped stderr");
        let reader_stderr = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            while let Ok(n @ 1..) = child_stderr.read(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                reader_stderr
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&text);
            }
        });
        let mut sink = SmtpSink {
            child,
            port,
            dump,
            counters,
            stderr,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&sink.addr(), Duration::from_millis(200)).is_ok() {
                return Ok(sink);
            }
            if let Ok(Some(status)) = sink.child.try_wait() {
                return Err(format!("exited with {status}: {}", sink.stderr_text()));
            }
            if Instant::now() > deadline {
                return Err(format!("not listening after {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The directory holding the `-d` dump files.
    pub fn dump_dir(&self) -> &Path {
        self.dump.path()
    }

    /// Messages whose final "." smtp-sink received (accepted, rejected or dropped by a fault).
    pub fn count(&self) -> usize {
        self.counters.messages.load(Ordering::SeqCst)
    }

    /// The latest `-c` counters.
    pub fn counters(&self) -> SinkCounters {
        SinkCounters {
            sessions: self.counters.sessions.load(Ordering::SeqCst),
            quits: self.counters.quits.load(Ordering::SeqCst),
            messages: self.counters.messages.load(Ordering::SeqCst),
        }
    }

    /// Waits until [`SmtpSink::count`] reaches `n`; false if `timeout` passed first.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.count() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Paths of the dump files. A transaction in progress has a (partial) file from MAIL
    /// on, so call this once the clients are done.
    pub fn dump_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dump.path())
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .filter(|path| path.is_file())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// The dumped messages, parsed, ordered by file name (minute, second, then random).
    pub fn messages(&self) -> Vec<SinkMessage> {
        self.dump_files()
            .iter()
            .filter_map(|path| {
                let text = std::fs::read(path).ok()?;
                parse_dump(&String::from_utf8_lossy(&text))
            })
            .collect()
    }

    /// What smtp-sink wrote to stderr (its fatal errors), for a failing test to print.
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

/// Whether the effective user is root (from `/proc/self/status`; false if unreadable).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Follows `-c` output: records separated by `\r`, each `sess=N quit=N mesg=N`.
fn read_counters(mut stdout: impl std::io::Read, counters: &Counters) {
    let mut pending = Vec::new();
    let mut buffer = [0u8; 1024];
    while let Ok(n @ 1..) = stdout.read(&mut buffer) {
        pending.extend_from_slice(&buffer[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\r' || b == b'\n') {
            let record: Vec<u8> = pending.drain(..=end).collect();
            let record = String::from_utf8_lossy(&record);
            for field in record.split_whitespace() {
                let Some((name, value)) = field.split_once('=') else {
                    continue;
                };
                let Ok(value) = value.parse::<usize>() else {
                    continue;
                };
                let counter = match name {
                    "sess" => &counters.sessions,
                    "quit" => &counters.quits,
                    "mesg" => &counters.messages,
                    _ => continue,
                };
                counter.store(value, Ordering::SeqCst);
            }
        }
    }
}

/// Strips angle brackets and ESMTP parameters: `<a@b> BODY=8BITMIME` gives `a@b`.
fn envelope_address(args: &str) -> String {
    let args = args.trim();
    match args.strip_prefix('<').and_then(|rest| rest.split_once('>')) {
        Some((address, _)) => address.to_owned(),
        None => args.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

/// Parses one `-d` dump: smtp-sink's `X-` records, its three-line `Received:` header (which
/// carries the id), the message, then one empty line added by smtp-sink.
fn parse_dump(text: &str) -> Option<SinkMessage> {
    let mut mail_from = None;
    let mut rcpt_to = Vec::new();
    let mut rest = text;
    loop {
        let (line, after) = rest.split_once('\n')?;
        rest = after;
        if let Some(args) = line.strip_prefix("X-Mail-Args: ") {
            mail_from = Some(envelope_address(args));
        } else if let Some(args) = line.strip_prefix("X-Rcpt-Args: ") {
            rcpt_to.push(envelope_address(args));
        } else if line.starts_with("Received: ") {
            break;
        }
    }
    // "\tby HOST (smtp-sink) with PROTO id ID;" then "\tDATE".
    let (by, after) = rest.split_once('\n')?;
    let id = by.split(" id ").nth(1)?.trim_end_matches(';').to_owned();
    let (_date, data) = after.split_once('\n')?;
    let data = data.strip_suffix('\n').unwrap_or(data).to_owned();
    Some(SinkMessage {
        id,
        mail_from: mail_from?,
        rcpt_to,
        data,
    })
}
