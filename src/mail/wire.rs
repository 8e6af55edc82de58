//! One SMTP transaction on a connection lettre opened, with as few round trips as the relay
//! allows.
//!
//! lettre connects, speaks STARTTLS and AUTH, and keeps the TLS session; herald asks the
//! relay's extensions with one more EHLO (lettre parses only the ones it uses itself, and
//! PIPELINING and CHUNKING are not among them) and then picks a [`DataPath`]:
//!
//! | relay offers | one message costs |
//! | --- | --- |
//! | PIPELINING and CHUNKING | one write and one round trip: `MAIL`, `RCPT`, `BDAT n LAST` and the message |
//! | PIPELINING | two writes and two round trips: `MAIL`, `RCPT`, `DATA`; then the message and its "." |
//! | CHUNKING | three round trips, one command at a time, the message in the last |
//! | neither | lettre's own `send`: four round trips, the message dot-stuffed byte by byte |
//!
//! Every path but the last goes through lettre's public [`AsyncSmtpConnection::command`],
//! which writes any `Display` in one write and reads one reply, and
//! [`AsyncSmtpConnection::read_response`], which reads the next: a group of pipelined
//! commands, or a message with its terminator, is one such write on lettre's own stream, so
//! TLS and AUTH stay as lettre set them up.
//!
//! The message is sent as it is: a message from [`Composer`](super::Composer) has no line
//! that starts with "." (its body is encoded that way once per issue, see `mail::body`), so
//! DATA needs no dot-stuffing, and BDAT never does. Only a header block that breaks that rule
//! (none of herald's do) makes the whole message go through a stuffing pass.
//!
//! Every command keeps its own reply (RFC 2920 §3.1): the outcome of a transaction is the
//! first reply that refused, so a refused RCPT is that recipient's outcome and nobody
//! else's (herald sends one recipient per transaction: every copy is personal). After a
//! refusal the relay is reset with RSET before the connection carries another message.

use std::fmt;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error;

/// How messages travel on one connection, from the relay's EHLO reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataPath {
    /// lettre's `send`: one command at a time, the message dot-stuffed by lettre.
    Plain,
    /// PIPELINING (RFC 2920): `MAIL`, `RCPT`, `DATA` in one write; the message in another.
    Pipelined,
    /// CHUNKING (RFC 3030) without PIPELINING: `MAIL`, `RCPT`, then `BDAT n LAST` with the
    /// message.
    Chunked,
    /// Both: `MAIL`, `RCPT` and `BDAT n LAST` with the message, in one write.
    PipelinedChunked,
}

impl DataPath {
    /// The path for a relay that advertised these EHLO keywords.
    pub(crate) fn from_keywords<'a>(keywords: impl IntoIterator<Item = &'a str>) -> Self {
        let (mut pipelining, mut chunking) = (false, false);
        for keyword in keywords {
            let word = keyword.split_whitespace().next().unwrap_or_default();
            pipelining |= word.eq_ignore_ascii_case("PIPELINING");
            chunking |= word.eq_ignore_ascii_case("CHUNKING");
        }
        match (pipelining, chunking) {
            (true, true) => DataPath::PipelinedChunked,
            (true, false) => DataPath::Pipelined,
            (false, true) => DataPath::Chunked,
            (false, false) => DataPath::Plain,
        }
    }

    /// For logs: `PIPELINING+CHUNKING`, `PIPELINING`, `CHUNKING` or `plain`.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            DataPath::Plain => "plain",
            DataPath::Pipelined => "PIPELINING",
            DataPath::Chunked => "CHUNKING",
            DataPath::PipelinedChunked => "PIPELINING+CHUNKING",
        }
    }
}

/// Text that lettre writes in one `write_all`: a pipelined group, or a message.
struct Raw<'a>(&'a str);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Asks the relay's extensions with EHLO and picks the data path. Sent before AUTH: some
/// relays forget an authentication when EHLO comes again.
pub(crate) async fn negotiate(
    conn: &mut AsyncSmtpConnection,
    hello: &ClientId,
) -> Result<DataPath, Error> {
    let reply = conn.command(Raw(&format!("EHLO {hello}\r\n"))).await?;
    // The first line names the relay; each further line is one extension.
    Ok(DataPath::from_keywords(reply.message().skip(1)))
}

/// A pooled connection and what it knows about its relay.
pub(crate) struct Session {
    pub(crate) conn: AsyncSmtpConnection,
    pub(crate) path: DataPath,
    /// The relay's state is unknown (a lost connection, a reply out of step, a 421): the
    /// connection must not carry another message.
    broken: bool,
    /// Transactions started on this connection.
    pub(crate) transactions: u32,
}

impl Session {
    pub(crate) fn new(conn: AsyncSmtpConnection, path: DataPath) -> Self {
        Self {
            conn,
            path,
            broken: false,
            transactions: 0,
        }
    }

    /// Whether the connection may carry another message.
    pub(crate) fn is_usable(&self) -> bool {
        !self.broken && !self.conn.has_broken()
    }

    /// Sends `message` to the envelope's recipients. `Ok` is the relay's final reply;
    /// `Err` is the first reply that refused, or the failure that ended the connection.
    pub(crate) async fn send(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Response, Error> {
        self.transactions += 1;
        let text = match std::str::from_utf8(message) {
            // 8-bit content or an SMTPUTF8 address needs MAIL parameters: lettre knows them.
            Ok(text) if text.is_ascii() && envelope_is_ascii(envelope) => text,
            _ => return self.conn.send(envelope, message).await,
        };
        let outcome = match self.path {
            // lettre drops the connection itself after a refusal.
            DataPath::Plain => return self.conn.send(envelope, message).await,
            DataPath::Pipelined => self.pipelined_data(envelope, text).await,
            DataPath::Chunked => self.chunked(envelope, text).await,
            DataPath::PipelinedChunked => self.pipelined_chunked(envelope, text).await,
        };
        if outcome.is_err() && self.is_usable() && self.write_and_read("RSET\r\n").await.is_err() {
            self.broken = true;
        }
        outcome
    }

    /// `MAIL`, `RCPT`…, `DATA` in one write; on 354, the message and "." in another.
    async fn pipelined_data(&mut self, envelope: &Envelope, text: &str) -> Result<Response, Error> {
        let mut group = envelope_commands(envelope);
        group.push_str("DATA\r\n");
        let mut replies = self.group(&group, envelope.to().len() + 2).await;
        if self.broken {
            return Err(first_error(replies));
        }
        let data = replies.pop().expect("a group has replies");
        let refusal = replies.into_iter().find_map(Result::err);
        match (refusal, data) {
            (None, Ok(_)) => self.write_and_read(&with_terminator(text)).await,
            (Some(refusal), Ok(_)) => {
                // The relay took DATA although no recipient was accepted: end the empty
                // message, and keep the first refusal as the outcome.
                let _ = self.write_and_read(".\r\n").await;
                Err(refusal)
            }
            (Some(refusal), Err(_)) => Err(refusal),
            (None, Err(data)) => Err(data),
        }
    }

    /// `MAIL`, `RCPT`…, `BDAT n LAST` and the message, in one write.
    async fn pipelined_chunked(
        &mut self,
        envelope: &Envelope,
        text: &str,
    ) -> Result<Response, Error> {
        let mut group = envelope_commands(envelope);
        group.push_str(&format!("BDAT {} LAST\r\n", text.len()));
        group.push_str(text);
        let replies = self.group(&group, envelope.to().len() + 2).await;
        if self.broken || replies.iter().any(Result::is_err) {
            return Err(first_error(replies));
        }
        replies.into_iter().last().expect("a group has replies")
    }

    /// CHUNKING without PIPELINING: one command at a time, the message with its BDAT.
    async fn chunked(&mut self, envelope: &Envelope, text: &str) -> Result<Response, Error> {
        let from = Mail::new(envelope.from().cloned(), Vec::new()).to_string();
        self.write_and_read(&from).await?;
        for to in envelope.to() {
            let rcpt = Rcpt::new(to.clone(), Vec::new()).to_string();
            self.write_and_read(&rcpt).await?;
        }
        let mut chunk = format!("BDAT {} LAST\r\n", text.len());
        chunk.push_str(text);
        self.write_and_read(&chunk).await
    }

    /// Writes `group` at once, then reads up to `count` replies: fewer when the connection
    /// ends on the way (the last one is then the failure, and the session is broken).
    async fn group(&mut self, group: &str, count: usize) -> Vec<Result<Response, Error>> {
        let mut replies = Vec::with_capacity(count);
        let mut next = self.conn.command(Raw(group)).await;
        loop {
            let ended = matches!(&next, Err(e) if ends_connection(e));
            replies.push(next);
            if ended {
                self.broken = true;
                break;
            }
            if replies.len() == count {
                break;
            }
            next = self.conn.read_response().await;
        }
        replies
    }

    async fn write_and_read(&mut self, text: &str) -> Result<Response, Error> {
        let reply = self.conn.command(Raw(text)).await;
        if matches!(&reply, Err(e) if ends_connection(e)) {
            self.broken = true;
        }
        reply
    }
}

/// The first refusal or failure among `replies`, which hold at least one.
fn first_error(replies: Vec<Result<Response, Error>>) -> Error {
    replies
        .into_iter()
        .find_map(Result::err)
        .expect("the caller saw an error among the replies")
}

/// `MAIL FROM:<…>` and one `RCPT TO:<…>` per recipient, CRLF-terminated.
fn envelope_commands(envelope: &Envelope) -> String {
    let mut commands = Mail::new(envelope.from().cloned(), Vec::new()).to_string();
    for to in envelope.to() {
        commands.push_str(&Rcpt::new(to.clone(), Vec::new()).to_string());
    }
    commands
}

fn envelope_is_ascii(envelope: &Envelope) -> bool {
    let ascii = |a: &Address| AsRef::<str>::as_ref(a).is_ascii();
    envelope.from().is_none_or(ascii) && envelope.to().iter().all(ascii)
}

/// Whether the connection is unusable after `e`: no reply at all (lost, garbled), or a
/// 421, with which the relay closes the connection.
fn ends_connection(e: &Error) -> bool {
    match e.status() {
        None => true,
        Some(code) => code.to_string() == "421",
    }
}

/// The message, then the end-of-data line: "." alone, after the CRLF that ends the last line
/// (added when the message does not end with one).
fn with_terminator(text: &str) -> String {
    let needs_crlf = !text.ends_with("\r\n");
    let mut out = String::with_capacity(text.len() + 5);
    if has_leading_dot(header_block(text)) {
        out.push_str(&dot_stuff(text));
    } else {
        out.push_str(text);
    }
    if needs_crlf {
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// The header block of a message (up to its first empty line).
fn header_block(text: &str) -> &str {
    match text.find("\r\n\r\n") {
        Some(end) => &text[..end + 2],
        None => text,
    }
}

fn has_leading_dot(text: &str) -> bool {
    text.starts_with('.') || text.contains("\n.")
}

/// RFC 5321 §4.5.2 transparency: a "." is added to every line that starts with one.
fn dot_stuff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    if text.starts_with('.') {
        out.push('.');
    }
    let mut rest = text;
    while let Some(at) = rest.find("\n.") {
        out.push_str(&rest[..=at]);
        out.push('.');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_path_from_the_ehlo_keywords() {
        let path = |words: &[&str]| DataPath::from_keywords(words.iter().copied());
        assert_eq!(path(&["SIZE 100", "8BITMIME"]), DataPath::Plain);
        assert_eq!(path(&["pipelining", "SIZE 1"]), DataPath::Pipelined);
        assert_eq!(path(&["CHUNKING"]), DataPath::Chunked);
        assert_eq!(
            path(&["PIPELINING", "CHUNKING", "STARTTLS"]),
            DataPath::PipelinedChunked
        );
        assert_eq!(path(&["XPIPELINING"]), DataPath::Plain);
    }

    #[test]
    fn the_terminator_follows_the_last_crlf_and_stuffing_is_only_for_odd_headers() {
        assert_eq!(
            with_terminator("Subject: x\r\n\r\nbody\r\n"),
            "Subject: x\r\n\r\nbody\r\n.\r\n"
        );
        assert_eq!(
            with_terminator("Subject: x\r\n\r\nbody"),
            "Subject: x\r\n\r\nbody\r\n.\r\n"
        );
        assert_eq!(
            with_terminator("X: a\r\n.b: c\r\n\r\n.d\r\n"),
            "X: a\r\n..b: c\r\n\r\n..d\r\n.\r\n"
        );
        assert_eq!(dot_stuff(".a\r\n..b\r\nc.\r\n"), "..a\r\n...b\r\nc.\r\n");
    }
}
