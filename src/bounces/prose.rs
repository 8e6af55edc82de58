//! Plain-text bounces: many MTAs and providers send no machine-readable part, only prose
//! ("The following address(es) failed: ... SMTP error from remote mail server after RCPT
//! TO: ... 550 5.1.1 ..."). This module finds, in such text, where the notice ends and the
//! returned original begins, which addresses failed, and the lines about each.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

fn ci(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .multi_line(true)
        .build()
        .expect("regex")
}

/// A line that introduces the returned original (or its headers).
static ORIGINAL_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    ci(concat!(
        r"^\s*(?:[-=*_#]{2,}.{0,30}\b(?:original|returned|unsent|copy of|enclosed|header of|headers of|message headers|undelivered message)\b|[-=*_#]{2,}.{0,30}(?:元のメッセージ|原文|исходное сообщение|original-nachricht|message d'origine|mensaje original)",
        r"|[-=*_#]*\s*(?:original message follows|message headers follow|below is a copy of the original|the original message (?:headers )?(?:is|are|was) (?:attached|below|included)|original message headers|undelivered message headers|a copy of the original message|returned message follows|the header of the original message))",
    ))
});

/// Header lines whose addresses are never the failed recipient.
static REFERENCE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    ci(
        r"^\s*(?:message-?id|in-reply-to|references|original-envelope-id|return-path|received|envelope-from|sender|reply-to|dkim-signature|x-[a-z-]+|from|date|subject)\s*:",
    )
});

/// An address, not inside a path or URL.
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[A-Za-z0-9!#$%&'*+=?^_`{}~.-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62}",
    )
    .expect("regex")
});

/// Words of a notice that says delivery is only late.
static DELAY: LazyLock<Regex> = LazyLock::new(|| {
    ci(
        r"has been delayed|is delayed|delivery (?:is |has been )?delayed|delayed for more than|not yet been delivered|has not been delivered yet|will (?:continue|keep) (?:trying|to try|attempting)|will be retried|still (?:trying|retrying|being retried)|warning message only|only a temporary failure|do not need to re-?send|no action is required|this is only a warning|delivery attempts will continue|will retry|will try again",
    )
});

/// Words of a notice that says delivery failed for good.
static PERMANENT: LazyLock<Regex> = LazyLock::new(|| {
    ci(
        r"permanent(?:ly)? (?:error|failure|fatal|failed)|failed permanently|could not be delivered|couldn't be delivered|has been a permanent failure|no further (?:delivery )?attempts|i've given up|giving up\.|have given up|delivery failed|was undeliverable|undeliverable to|could not deliver|unable to deliver|did not reach|returned to sender|rejected your message|has been rejected",
    )
});

/// Subjects of delay warnings.
static DELAY_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    ci(
        r"\(delay\)|\bdelayed\b|^warning:|delivery status notification: warning|delivery delay|not yet delivered|still being retried",
    )
});

/// Subjects of bounces.
static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    ci(
        r"undeliver|undelivered|delivery (?:status notification|failure|failed|has failed|problem|report|error|notification)|returned mail|mail delivery failed|failure notice|non-?delivery|could not be delivered|mail system error|returning message to sender|error sending your mail|message delivery has failed|delivery status|returned to sender|\bbounced?\b|mail failure|delivery unsuccessful|nicht zustellbar|non remis|non recapitat|no se puede entregar|不達|配信エラー|доставлено|недоставлен",
    )
});

/// Senders of bounces: mailer daemons, postmasters, "Mail Delivery System".
static DAEMON_SENDER: LazyLock<Regex> = LazyLock::new(|| {
    ci(
        r"mailer[-_ ]?daemon|mail[-_ ]?daemon|postmaster|mail delivery (?:system|subsystem)|mail administrator|\bmdaemon\b|^<>$|^$|delivery[-_ ]?(?:notification|status)|no[-_]?reply@.*\bsmtp\b",
    )
});

/// Splits a notice from the original that follows it: `(notice, rest)`.
pub fn cut_original(text: &str) -> (&str, &str) {
    match ORIGINAL_MARKER.find(text) {
        Some(m) => (&text[..m.start()], &text[m.end()..]),
        None => (text, ""),
    }
}

/// A forwarded bounce quotes every line with `>`; this removes one level of quoting when
/// most lines carry it.
pub fn unquote(text: &str) -> Cow<'_, str> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let quoted = lines.iter().filter(|l| l.starts_with('>')).count();
    if lines.len() < 4 || quoted * 2 < lines.len() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = match line.strip_prefix('>') {
            Some(rest) => rest.strip_prefix(' ').unwrap_or(rest),
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    Cow::Owned(out)
}

/// The addresses in `notice`, in order of first appearance, without those in `exclude`
/// (compared case-insensitively), in paths or URLs, or on reference header lines.
pub fn addresses(notice: &str, exclude: &[String]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in notice.lines() {
        if REFERENCE_LINE.is_match(line) {
            continue;
        }
        for m in ADDRESS.find_iter(line) {
            let before = line[..m.start()].chars().next_back();
            if matches!(before, Some('/' | '=' | '@' | '.')) {
                continue;
            }
            let address = m.as_str().trim_matches('.').to_string();
            let lower = address.to_ascii_lowercase();
            if exclude.iter().any(|e| e.eq_ignore_ascii_case(&lower))
                || found.iter().any(|f| f.eq_ignore_ascii_case(&lower))
            {
                continue;
            }
            found.push(address);
            if found.len() >= 50 {
                return found;
            }
        }
    }
    found
}

/// For each recipient, the lines about it: every line that names it, and the lines after
/// such a line up to the next line that names another recipient.
pub fn blocks(notice: &str, recipients: &[String]) -> Vec<String> {
    let lower: Vec<String> = recipients.iter().map(|r| r.to_ascii_lowercase()).collect();
    let mut out = vec![String::new(); recipients.len()];
    let mut owner: Option<usize> = None;
    for line in notice.lines() {
        let l = line.to_ascii_lowercase();
        let named: Vec<usize> = lower
            .iter()
            .enumerate()
            .filter(|(_, r)| l.contains(r.as_str()))
            .map(|(i, _)| i)
            .collect();
        if let Some(&first) = named.first() {
            owner = Some(first);
            for &i in &named {
                append(&mut out[i], line);
            }
        } else if let Some(i) = owner {
            append(&mut out[i], line);
        }
    }
    out
}

fn append(block: &mut String, line: &str) {
    if block.len() < 8192 {
        block.push_str(line.trim());
        block.push('\n');
    }
}

/// Whether the notice says delivery is only late (and not that it failed for good).
pub fn says_delay(subject: &str, notice: &str) -> bool {
    (DELAY_SUBJECT.is_match(subject) || DELAY.is_match(notice)) && !PERMANENT.is_match(notice)
}

/// Whether the notice states a failure in so many words.
pub fn says_failure(notice: &str) -> bool {
    PERMANENT.is_match(notice)
}

pub fn bounce_subject(subject: &str) -> bool {
    BOUNCE_SUBJECT.is_match(subject)
}

/// `from` is the From header: display name and address, as one string.
pub fn daemon_sender(from: &str) -> bool {
    DAEMON_SENDER.is_match(from.trim())
}

/// One line: whitespace runs become single spaces, at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for word in text.split_whitespace() {
        if out.len() + word.len() + 1 > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_the_notice_at_the_returned_original() {
        let text = "The following address failed:\n  ada@example.org\n\
                    ------ This is a copy of the message, including all the headers. ------\n\
                    Return-path: <news@example.org>\nTo: ada@example.org\n";
        let (notice, rest) = cut_original(text);
        assert!(notice.contains("ada@example.org"));
        assert!(!notice.contains("Return-path"));
        assert!(rest.contains("Return-path"));
        // A sentence that merely mentions the original message is no marker.
        let text = "The original message was received at Thu, 29 Apr 2011\nfrom example.org\n";
        assert_eq!(cut_original(text).0, text);
    }

    #[test]
    fn finds_failed_addresses_but_not_senders_paths_or_message_ids() {
        let notice = "Message-Id: <123.abc@mx.example.org>\n\
            pipe to |/usr/bin/filter ada@example.org /home/ada/.filter\n\
            Failed to read /home/ada/.filter/ada@example.org: no such file\n\
            >>> MAIL From:<news@example.org>\n\
            <bob@example.net>: 550 5.1.1 unknown\n";
        assert_eq!(
            addresses(notice, &["news@example.org".to_string()]),
            ["ada@example.org", "bob@example.net"]
        );
    }

    #[test]
    fn splits_lines_by_recipient() {
        let notice = "a@example.org\n  550 no such user\nb@example.org\n  552 mailbox full\n";
        let b = blocks(notice, &["a@example.org".into(), "b@example.org".into()]);
        assert!(b[0].contains("no such user") && !b[0].contains("full"));
        assert!(b[1].contains("mailbox full"));
    }

    #[test]
    fn tells_a_delay_from_a_failure() {
        assert!(says_delay(
            "Delivery Status Notification (Delay)",
            "Delivery to the following recipient has been delayed"
        ));
        assert!(says_delay(
            "Warning: message 1abc delayed 24 hours",
            "Delivery attempts will continue for some time"
        ));
        assert!(!says_delay(
            "Mail delivery failed",
            "This is a permanent error. The following address(es) failed"
        ));
    }

    #[test]
    fn unquotes_a_forwarded_bounce() {
        let text = "Forwarded:\n> Final-Recipient: rfc822; a@example.org\n> Action: failed\n> Status: 5.1.1\n> \n";
        assert!(unquote(text).contains("\nFinal-Recipient: rfc822; a@example.org\n"));
    }
}
