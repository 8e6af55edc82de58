//! [`read`]: one returned mail into a [`Report`]. Pure: no I/O, no SQL, never panics.
//!
//! The order of questions, strongest evidence first:
//!
//! 1. A feedback report (RFC 5965 `message/feedback-report`, or a Hotmail/Outlook.com JMRP
//!    report) is a complaint.
//! 2. An Amazon SES notification in the body says what it is.
//! 3. RFC 3464 delivery-status fields, in their own part or pasted into the text (plain-text
//!    bounces and forwarded ones do that), give each recipient's action, status and
//!    diagnostic: `failed` is a bounce, `delayed` a delay, `delivered`/`relayed`/`expanded`
//!    a success.
//! 4. A mail from a mailer daemon, or with a bounce's subject, that names a failure is a
//!    plain-text bounce (or delay); its recipients come from `X-Failed-Recipients` or the
//!    prose, and each one's diagnostic from the lines about it.
//! 5. An RFC 3834 automatic reply (`Auto-Submitted: auto-replied`, `X-Autoreply`, a vacation
//!    subject) is an auto-reply.
//! 6. Anything else is none: an ordinary reply is never read as a bounce.

use std::borrow::Cow;
use std::sync::LazyLock;

use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};
use regex::{Regex, RegexBuilder};

use super::fields::{self, DsnRecipient};
use super::prose;
use super::rules::{classify, stage_of, Evidence, Reason, Stage, Verdict};
use super::ses;
use super::status::{find_reply, find_status, ReplyCode, Status};
use super::{Kind, RecipientReport, References, Report};

/// Longest diagnostic kept per recipient, in characters.
const DIAGNOSTIC_MAX: usize = 500;
/// Nested messages deeper than this are not looked into.
const MAX_DEPTH: usize = 8;

/// Why a mailbox file could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    #[error("the file is empty")]
    Empty,
    #[error("not a mail message or an mbox file (it does not start with a header line)")]
    NotMail,
}

/// Reads one returned mail. Line ends may be LF, CRLF or CR alone; a leading mbox `From `
/// line is skipped.
pub fn read(bytes: &[u8]) -> Report {
    let bytes = normalise_line_ends(bytes);
    let bytes = skip_postmark(&bytes);
    match parse_guarded(|| MessageParser::default().parse(bytes)) {
        Some(message) => decide(&Mail::from_message(&message)),
        None => Report::none(),
    }
}

/// Runs one of mail-parser's parsers, reading a panic as "not mail". mail-parser 0.11 has
/// `debug_assert!`s that malformed nested multiparts reach (`message.rs`, "Invalid part ID");
/// they are compiled out of release builds, where the parser goes on and recovers, but a
/// debug build of herald must not fall over on a hostile returned mail either.
fn parse_guarded<T>(parse: impl FnOnce() -> Option<T> + std::panic::UnwindSafe) -> Option<T> {
    std::panic::catch_unwind(parse).ok().flatten()
}

/// Reads a file that holds one message, or many in mbox format (each starting with a
/// `From ` line). Errors only when the bytes are not mail at all.
pub fn read_mailbox(bytes: &[u8]) -> Result<Vec<Report>, MailboxError> {
    let bytes = normalise_line_ends(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(MailboxError::Empty)?;
    let bytes = &bytes[start..];
    if bytes.starts_with(b"From ") {
        let reports = mail_parser::mailbox::mbox::MessageIterator::new(std::io::Cursor::new(bytes))
            .filter_map(Result::ok)
            .map(|message| read(message.contents()))
            .collect::<Vec<_>>();
        return if reports.is_empty() {
            Err(MailboxError::NotMail)
        } else {
            Ok(reports)
        };
    }
    if !starts_with_header(bytes) {
        return Err(MailboxError::NotMail);
    }
    Ok(vec![read(bytes)])
}

fn starts_with_header(bytes: &[u8]) -> bool {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => line[..colon]
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b':'),
        _ => false,
    }
}

/// CR-only and mixed line ends become LF; CRLF-only and LF-only mail is left as it is.
fn normalise_line_ends(bytes: &[u8]) -> Cow<'_, [u8]> {
    let lone_cr = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
    if !lone_cr {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' => {
                out.push(b'\n');
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn skip_postmark(bytes: &[u8]) -> &[u8] {
    if bytes.starts_with(b"From ") {
        match bytes.iter().position(|&b| b == b'\n') {
            Some(end) => &bytes[end + 1..],
            None => &[],
        }
    } else {
        bytes
    }
}

/// The headers herald reads from the returned original.
#[derive(Debug, Default)]
struct Original {
    to: Vec<String>,
    senders: Vec<String>,
    /// Hotmail/Outlook.com's JMRP complaint marker, naming the complainant.
    hotmail_recipient: Option<String>,
}

/// What [`decide`] needs from a parsed message.
#[derive(Debug, Default)]
struct Mail {
    subject: String,
    /// The From header, display name and address together.
    from: String,
    /// Addresses of the bounce's own envelope and headers: never a failed recipient.
    own: Vec<String>,
    auto_reply_header: bool,
    failed_recipients: Vec<String>,
    report_type: String,
    texts: Vec<String>,
    htmls: Vec<String>,
    delivery_status: Vec<String>,
    feedback: Vec<String>,
    original: Option<Original>,
    references: References,
}

/// `Message-ID:`, `Feedback-ID:` and `Return-Path:` lines of a returned original quoted in
/// text, and the address-bearing lines a VERP token may be in.
static QUOTED_MESSAGE_ID: LazyLock<Regex> = LazyLock::new(|| {
    RegexBuilder::new(r"^[>\s]*message-?id:\s*(<[^>\s]{1,250}>)")
        .case_insensitive(true)
        .multi_line(true)
        .build()
        .expect("regex")
});
static QUOTED_FEEDBACK_ID: LazyLock<Regex> = LazyLock::new(|| {
    RegexBuilder::new(r"^[>\s]*feedback-id:\s*([^\s]{1,250})")
        .case_insensitive(true)
        .multi_line(true)
        .build()
        .expect("regex")
});
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").expect("regex"));
static STYLE: LazyLock<Regex> = LazyLock::new(|| {
    RegexBuilder::new(r"(?s)<(style|script)[^>]*>.*?</(style|script)>")
        .case_insensitive(true)
        .build()
        .expect("regex")
});

fn addresses_of(address: Option<&Address<'_>>) -> Vec<String> {
    address
        .into_iter()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address.as_deref())
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| a.contains('@'))
        .collect()
}

fn header_text<'a>(message: &'a Message<'_>, name: &str) -> Vec<&'a str> {
    message
        .headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

impl Original {
    fn from_message(message: &Message<'_>, references: &mut References) -> Self {
        if let Some(id) = message.message_id() {
            references.add_message_id(id);
        }
        for name in ["Return-Path", "Sender", "From", "X-Envelope-From"] {
            for value in header_text(message, name) {
                references.add_return_address(value);
            }
        }
        for value in header_text(message, "Feedback-ID") {
            references.add_feedback_id(value);
        }
        let mut senders = addresses_of(message.from());
        senders.extend(addresses_of(message.sender()));
        senders.extend(addresses_of(message.reply_to()));
        if let Some(rp) = message.return_address() {
            senders.push(rp.trim().to_ascii_lowercase());
        }
        let mut to = addresses_of(message.to());
        to.extend(addresses_of(message.cc()));
        Self {
            to,
            senders,
            hotmail_recipient: header_text(message, "X-HmXmrOriginalRecipient")
                .first()
                .map(|s| s.trim_matches(['<', '>']).to_string())
                .filter(|s| s.contains('@')),
        }
    }

    fn from_headers(text: &str, references: &mut References) -> Option<Self> {
        let text = text.trim_start();
        if text.is_empty() {
            return None;
        }
        let message = parse_guarded(|| MessageParser::default().parse_headers(text.as_bytes()))?;
        if message.headers().is_empty() {
            return None;
        }
        Some(Self::from_message(&message, references))
    }
}

impl Mail {
    fn from_message(message: &Message<'_>) -> Self {
        let mut mail = Mail {
            subject: message.subject().unwrap_or_default().to_string(),
            ..Mail::default()
        };
        if let Some(from) = message.from().and_then(|a| a.first()) {
            mail.from = format!(
                "{} <{}>",
                from.name.as_deref().unwrap_or_default(),
                from.address.as_deref().unwrap_or_default()
            );
        }
        mail.own.extend(addresses_of(message.from()));
        mail.own.extend(addresses_of(message.to()));
        mail.own.extend(addresses_of(message.cc()));
        mail.own.extend(addresses_of(message.reply_to()));
        mail.own.extend(addresses_of(message.sender()));
        for name in [
            "Delivered-To",
            "X-Original-To",
            "Envelope-To",
            "X-Envelope-To",
            "Return-Path",
            "To",
            "X-Failed-Recipients",
        ] {
            for value in header_text(message, name) {
                if name != "X-Failed-Recipients" {
                    mail.references.add_return_address(value);
                    mail.own.push(
                        value
                            .trim()
                            .trim_matches(['<', '>'])
                            .trim()
                            .to_ascii_lowercase(),
                    );
                }
            }
        }
        for value in header_text(message, "X-Failed-Recipients") {
            for address in value.split(',') {
                let address = address.trim().trim_matches(['<', '>']).trim();
                if address.contains('@') && !mail.failed_recipients.iter().any(|a| a == address) {
                    mail.failed_recipients.push(address.to_string());
                }
            }
        }
        for id in message
            .in_reply_to()
            .as_text_list()
            .into_iter()
            .flatten()
            .chain(message.references().as_text_list().into_iter().flatten())
        {
            mail.references.add_message_id(id);
        }
        if let Some(id) = message.in_reply_to().as_text() {
            mail.references.add_message_id(id);
        }
        if let Some(id) = message.references().as_text() {
            mail.references.add_message_id(id);
        }
        mail.auto_reply_header = is_auto_reply(message);
        if let Some(ct) = message.root_part().content_type() {
            if ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            {
                mail.report_type = ct
                    .attribute("report-type")
                    .unwrap_or_default()
                    .to_ascii_lowercase();
            }
        }
        mail.walk(message, 0, 0);
        mail
    }

    fn walk(&mut self, message: &Message<'_>, id: u32, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some(part) = message.part(id) else {
            return;
        };
        let (ctype, subtype) = part
            .content_type()
            .map(|c| {
                (
                    c.ctype().to_ascii_lowercase(),
                    c.subtype().unwrap_or_default().to_ascii_lowercase(),
                )
            })
            .unwrap_or_else(|| ("text".into(), "plain".into()));
        let special = match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => Some(0),
            ("message", "feedback-report") => Some(1),
            ("text" | "message", "rfc822-headers" | "global-headers") => Some(2),
            _ => None,
        };
        match &part.body {
            PartType::Multipart(children) => {
                for child in children.clone() {
                    if child != id {
                        self.walk(message, child, depth + 1);
                    }
                }
            }
            PartType::Message(inner) => {
                if self.original.is_none() {
                    self.original = Some(Original::from_message(inner, &mut self.references));
                }
                // The original's text may quote headers of its own; only IDs are taken.
                for text in inner.text_bodies().filter_map(|p| p.text_contents()) {
                    scan(text, &mut self.references);
                }
            }
            body => {
                let text: Cow<'_, str> = match body {
                    PartType::Text(t) | PartType::Html(t) => Cow::Borrowed(t.as_ref()),
                    PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8_lossy(b),
                    _ => return,
                };
                match special {
                    Some(0) => self.delivery_status.push(text.into_owned()),
                    Some(1) => self.feedback.push(text.into_owned()),
                    Some(_) => {
                        if self.original.is_none() {
                            self.original = Original::from_headers(&text, &mut self.references);
                        }
                    }
                    None => match body {
                        PartType::Text(_) => self.texts.push(text.into_owned()),
                        PartType::Html(_) => self.htmls.push(strip_html(&text)),
                        _ => {}
                    },
                }
            }
        }
    }

    /// The human-readable notice: the text parts (or the HTML ones, tags removed), with a
    /// forward's quoting removed, cut where the original begins; and what follows the cut.
    fn notice(&self) -> (String, String) {
        let parts = if self.texts.iter().any(|t| !t.trim().is_empty()) {
            &self.texts
        } else {
            &self.htmls
        };
        let mut notice = String::new();
        let mut rest = String::new();
        for text in parts {
            let text = prose::unquote(text);
            let (head, tail) = prose::cut_original(&text);
            if rest.is_empty() {
                notice.push_str(head);
                notice.push('\n');
            }
            if !tail.is_empty() && rest.is_empty() {
                rest.push_str(tail);
            }
        }
        (notice, rest)
    }
}

fn strip_html(html: &str) -> String {
    let html = STYLE.replace_all(html, " ");
    let text = TAG.replace_all(&html, "\n");
    html_escape::decode_html_entities(&text).into_owned()
}

fn is_auto_reply(message: &Message<'_>) -> bool {
    let header = |name: &str| {
        header_text(message, name)
            .first()
            .map(|v| v.to_ascii_lowercase())
    };
    if header("Auto-Submitted").is_some_and(|v| v.starts_with("auto-replied")) {
        return true;
    }
    if header("X-Autoreply").is_some_and(|v| v != "no")
        || header("X-Autorespond").is_some()
        || header("X-Autoresponder").is_some()
        || header("Precedence").is_some_and(|v| v.contains("auto_reply"))
        || header("X-Auto-Response-Suppress").is_some_and(|v| v.contains("oof"))
    {
        return true;
    }
    static SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
        RegexBuilder::new(r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|auto:|out of (the )?office|abwesenheit|automatische antwort|réponse automatique|reponse automatique|respuesta automática|risposta automatica|autosvar|vacation|on vacation|away from|自動応答|自動返信|不在)")
            .case_insensitive(true)
            .build()
            .expect("regex")
    });
    SUBJECT.is_match(message.subject().unwrap_or_default())
}

fn decide(mail: &Mail) -> Report {
    let mut references = mail.references.clone();
    let (notice, rest) = mail.notice();
    let mut original = mail.original.as_ref();
    let inline_original;
    if original.is_none() && !rest.is_empty() {
        inline_original = Original::from_headers(&rest, &mut references);
        original = inline_original.as_ref();
    }
    for text in mail.texts.iter().chain(&mail.delivery_status) {
        scan(text, &mut references);
    }

    // 1. Complaints.
    if !mail.feedback.is_empty() || mail.report_type == "feedback-report" {
        let report = fields::feedback_report(&mail.feedback.join("\n"));
        if let Some(from) = &report.original_mail_from {
            references.add_return_address(from);
        }
        let mut addresses = report.original_rcpt_to.clone();
        if addresses.is_empty() {
            addresses = report.removal_recipient.clone();
        }
        if addresses.is_empty() {
            addresses = original.map(|o| o.to.clone()).unwrap_or_default();
            addresses.truncate(1);
        }
        return complaint(
            addresses,
            report.feedback_type.unwrap_or_else(|| "abuse".into()),
            references,
        );
    }
    if let Some(recipient) = original.and_then(|o| o.hotmail_recipient.clone()) {
        return complaint(vec![recipient], "abuse".into(), references);
    }

    // 2. Amazon SES notifications.
    for text in &mail.texts {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            let json = serde_json::from_str::<serde_json::Value>(trimmed)
                .or_else(|_| serde_json::from_str(&unfold_json_strings(trimmed)));
            if let Ok(json) = json {
                if let Some(mut report) = ses::report(&json) {
                    merge(&mut report.references, &references);
                    return report;
                }
            }
        }
    }

    // 3. Delivery-status fields.
    let mut dsn: Vec<DsnRecipient> = mail
        .delivery_status
        .iter()
        .flat_map(|text| fields::dsn_recipients(text))
        .collect();
    if dsn.is_empty() {
        dsn = fields::dsn_recipients(&notice);
    }
    if !dsn.is_empty() {
        return from_delivery_status(mail, dsn, &notice, references);
    }

    // 4. Plain-text bounces.
    let daemon = prose::daemon_sender(&mail.from);
    let subject_says = prose::bounce_subject(&mail.subject) && !is_reply_subject(&mail.subject);
    let failure_words = prose::says_failure(&notice)
        || prose::says_delay(&mail.subject, &notice)
        || find_reply(&notice).is_some()
        || find_status(&notice).is_some();
    // A mailer daemon that names a failure, or sends under a bounce's subject, is
    // bouncing; anyone else (a person forwarding a bounce) only with a bounce's subject and
    // the failure in so many words, and never an automatic reply.
    let bounce = if daemon {
        subject_says || failure_words
    } else {
        subject_says && failure_words && !mail.auto_reply_header
    };
    if bounce {
        return from_prose(mail, original, &notice, references);
    }

    // 5. Automatic replies.
    if mail.auto_reply_header {
        let address = mail
            .own
            .first()
            .cloned()
            .filter(|a| a.contains('@'))
            .into_iter()
            .collect::<Vec<_>>();
        return Report {
            kind: Kind::AutoReply,
            feedback_type: None,
            recipients: address
                .into_iter()
                .map(|a| RecipientReport::plain(Some(a), Reason::AutoReply))
                .collect(),
            references,
        };
    }

    // 6. Anything else.
    Report {
        references,
        ..Report::none()
    }
}

/// Mail transports fold long lines, also inside a JSON string (an SNS notification sent by
/// email): a line break in a string, and the one space of indentation after it, go.
fn unfold_json_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string && (c == '\n' || c == '\r') {
            if chars.peek() == Some(&' ') {
                chars.next();
            }
            continue;
        }
        if in_string && !escaped && c == '"' {
            in_string = false;
        } else if !in_string && c == '"' {
            in_string = true;
        }
        escaped = in_string && !escaped && c == '\\';
        out.push(c);
    }
    out
}

fn is_reply_subject(subject: &str) -> bool {
    let s = subject.trim_start().to_ascii_lowercase();
    s.starts_with("re:") || s.starts_with("aw:") || s.starts_with("sv:")
}

fn scan(text: &str, references: &mut References) {
    for caps in QUOTED_MESSAGE_ID.captures_iter(text) {
        references.add_message_id(&caps[1]);
    }
    for caps in QUOTED_FEEDBACK_ID.captures_iter(text) {
        references.add_feedback_id(&caps[1]);
    }
    for line in text.lines().take(2000) {
        if line.contains('+') {
            references.add_return_address(line);
        }
    }
}

fn merge(into: &mut References, from: &References) {
    for t in &from.tokens {
        into.add_return_address(&format!("x+{t}@x"));
    }
    for id in &from.message_ids {
        into.add_message_id(id);
    }
    for id in &from.feedback_ids {
        into.add_feedback_id(id);
    }
}

fn complaint(addresses: Vec<String>, feedback_type: String, references: References) -> Report {
    let mut recipients: Vec<RecipientReport> = addresses
        .into_iter()
        .map(|a| RecipientReport::plain(Some(a), Reason::Complaint))
        .collect();
    if recipients.is_empty() {
        recipients.push(RecipientReport::plain(None, Reason::Complaint));
    }
    Report {
        kind: Kind::Complaint,
        feedback_type: Some(feedback_type),
        recipients,
        references,
    }
}

fn from_delivery_status(
    mail: &Mail,
    dsn: Vec<DsnRecipient>,
    notice: &str,
    references: References,
) -> Report {
    let success = |r: &DsnRecipient| {
        matches!(
            r.action.as_deref().map(first_word),
            Some("delivered" | "relayed" | "expanded")
        )
    };
    let delayed = |r: &DsnRecipient| r.action.as_deref().map(first_word) == Some("delayed");
    let failed = dsn.iter().any(|r| !success(r) && !delayed(r));
    let kind = if failed {
        // No Action field at all: trust the words of the notice.
        if dsn.iter().all(|r| r.action.is_none())
            && prose::says_delay(&mail.subject, notice)
            && dsn.iter().all(|r| {
                r.status
                    .as_deref()
                    .and_then(Status::parse)
                    .is_none_or(|s| s.class == 4)
            })
        {
            Kind::Delay
        } else {
            Kind::Bounce
        }
    } else if dsn.iter().any(delayed) {
        Kind::Delay
    } else {
        Kind::Delivered
    };
    let single = dsn.iter().filter(|r| !success(r)).count() == 1;
    let recipients = dsn
        .iter()
        .filter(|r| kind == Kind::Delivered || !success(r))
        .map(|r| {
            if kind == Kind::Delivered {
                return RecipientReport::plain(r.address().map(str::to_string), Reason::Delivered);
            }
            let diagnostic = r.diagnostic.clone().unwrap_or_default();
            // The remote server's own code, quoted in the diagnostic, is more precise than
            // the reporting server's summary in the Status field.
            let mut status = find_status(&diagnostic)
                .filter(|s| !s.is_generic())
                .or_else(|| r.status.as_deref().and_then(Status::parse));
            if single && diagnostic.is_empty() && status.is_none_or(|s| s.is_generic()) {
                // No diagnostic and a generic Status field: the notice may quote the remote
                // server's reply.
                if let Some(in_notice) = find_status(notice).filter(|s| !s.is_generic()) {
                    if status.is_none_or(|s| s.class == in_notice.class) {
                        status = Some(in_notice);
                    }
                }
            }
            let reply = find_reply(&diagnostic);
            let temporary = kind == Kind::Delay || delayed(r);
            let stage = stage_of(&format!("{diagnostic}\n{notice}"));
            let texts: &[&str] = if single {
                &[&diagnostic, notice]
            } else {
                &[&diagnostic]
            };
            let verdict = first_verdict(status, reply, texts, stage, temporary);
            RecipientReport {
                address: r.address().map(str::to_string),
                status,
                reply,
                diagnostic: prose::one_line(
                    if diagnostic.is_empty() {
                        notice
                    } else {
                        &diagnostic
                    },
                    DIAGNOSTIC_MAX,
                ),
                hard: verdict.hard,
                reason: verdict.reason,
            }
        })
        .collect();
    Report {
        kind,
        feedback_type: None,
        recipients,
        references,
    }
}

fn first_word(s: &str) -> &str {
    s.split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .next()
        .unwrap_or_default()
}

fn from_prose(
    mail: &Mail,
    original: Option<&Original>,
    notice: &str,
    references: References,
) -> Report {
    let mut exclude = mail.own.clone();
    if let Some(o) = original {
        exclude.extend(o.senders.iter().cloned());
    }
    let mut addresses = mail.failed_recipients.clone();
    if addresses.is_empty() {
        addresses = prose::addresses(notice, &exclude);
    }
    if addresses.is_empty() {
        if let Some(to) = original.and_then(|o| o.to.first()) {
            addresses.push(to.clone());
        }
    }
    if addresses.is_empty() {
        // Some agents copy the failed address into the bounce's own headers
        // (X-Original-To), and a test mail to oneself bounces to the same address.
        addresses = prose::addresses(notice, &[]);
    }
    let kind = if prose::says_delay(&mail.subject, notice) {
        Kind::Delay
    } else {
        Kind::Bounce
    };
    let temporary = kind == Kind::Delay;
    let blocks = prose::blocks(notice, &addresses);
    let single = addresses.len() <= 1;
    let one = |address: Option<String>, block: &str| {
        let block = if block.trim().is_empty() {
            notice
        } else {
            block
        };
        let lines = diagnostic_lines(block);
        let status = find_status(block).or_else(|| single.then(|| find_status(notice)).flatten());
        let reply = find_reply(block);
        let stage = stage_of(block);
        let stage = if stage == Stage::Unknown && single {
            stage_of(notice)
        } else {
            stage
        };
        let texts: Vec<&str> = if single {
            vec![&lines, block, notice]
        } else {
            vec![&lines, block]
        };
        let verdict = first_verdict(status, reply, &texts, stage, temporary);
        RecipientReport {
            address,
            status,
            reply,
            diagnostic: prose::one_line(&lines, DIAGNOSTIC_MAX),
            hard: verdict.hard,
            reason: verdict.reason,
        }
    };
    let recipients = if addresses.is_empty() {
        vec![one(None, notice)]
    } else {
        addresses
            .into_iter()
            .zip(blocks)
            .map(|(address, block)| one(Some(address), &block))
            .collect()
    };
    Report {
        kind,
        feedback_type: None,
        recipients,
        references,
    }
}

/// The verdict of the first text, narrowest first, that says more than [`Reason::Other`].
fn first_verdict(
    status: Option<Status>,
    reply: Option<ReplyCode>,
    texts: &[&str],
    stage: Stage,
    temporary: bool,
) -> Verdict {
    let mut verdict = None;
    for text in texts {
        let v = classify(&Evidence {
            status,
            reply,
            text,
            stage,
            temporary,
        });
        if v.reason != Reason::Other {
            return v;
        }
        verdict.get_or_insert(v);
    }
    verdict.unwrap_or(Verdict {
        reason: Reason::Other,
        hard: false,
    })
}

/// The lines of a block most likely to be the server's words: those holding a reply code
/// or status code, else the whole block.
fn diagnostic_lines(block: &str) -> String {
    let lines: Vec<&str> = block
        .lines()
        .filter(|l| find_reply(l).is_some() || find_status(l).is_some())
        .collect();
    if lines.is_empty() {
        block.to_string()
    } else {
        lines.join(" ")
    }
}
