//! The two codes a returned mail may carry for a recipient: the RFC 3463 enhanced status
//! code (`5.1.1`) and the RFC 5321 reply code (`550`), and how to find them in free text.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// An RFC 3463 enhanced status code, `class.subject.detail`, with class 2, 4 or 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl Status {
    /// Parses `5.1.1` (surrounding spaces and a trailing dot or comment are ignored).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let mut parts = s[..end].trim_end_matches('.').split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some()
            || class.len() != 1
            || subject.len() != 1
            || !(1..=3).contains(&detail.len())
        {
            return None;
        }
        let class: u8 = class.parse().ok()?;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        let subject: u16 = subject.parse().ok()?;
        if subject > 7 {
            return None;
        }
        Some(Self {
            class,
            subject,
            detail: detail.parse().ok()?,
        })
    }

    /// True for `class.subject.*` written as `"subject"` or `class.subject.detail` written
    /// as `"subject.detail"`: the class is left out so one rule serves 4.x.x and 5.x.x.
    pub fn matches(&self, pattern: &str) -> bool {
        let mut parts = pattern.split('.');
        let subject = parts.next().and_then(|s| s.parse::<u16>().ok());
        let detail = parts.next().and_then(|s| s.parse::<u16>().ok());
        match (subject, detail) {
            (Some(s), None) => s == self.subject,
            (Some(s), Some(d)) => s == self.subject && d == self.detail,
            _ => false,
        }
    }

    /// A code that says nothing beyond its class (`5.0.0`).
    pub fn is_generic(&self) -> bool {
        self.subject == 0 && self.detail == 0
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// An RFC 5321 reply code, 200 to 599.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyCode(u16);

impl ReplyCode {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.len() != 3 {
            return None;
        }
        let n: u16 = s.parse().ok()?;
        let second = (n / 10) % 10;
        ((200..600).contains(&n) && second <= 5).then_some(Self(n))
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// 2, 4 or 5.
    pub fn class(self) -> u8 {
        (self.0 / 100) as u8
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An enhanced code as it appears in prose: `5.1.1`, `(#5.1.1)`, `550-5.1.1`, `4.4.7;`.
/// Not inside a longer dotted number (an IP address or a version).
static STATUS_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\d.])([245]\.[0-7]\.\d{1,3})(?:$|[^\d.]|\.(?:$|[^\d]))").expect("regex")
});

/// A reply code where a server's reply starts: at a line start, after `said:`, `>>>`/`<<<`,
/// a colon or an opening bracket, followed by a space, a dash (multi-line reply), a closing
/// bracket (`permanent error (550):`) or the end.
static REPLY_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)(?:^|[\s:(\[<>;#=])([245][0-5]\d)(?:[ \-)]|$)").expect("regex")
});

/// An enhanced code right after a reply code: the remote server's own (`550-'5.2.2`,
/// `421 4.7.0`), which beats a code the reporting server put in front of it.
static STATUS_AFTER_REPLY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r##"(?:^|[^\d.])[245]\d\d[ -]['"#]?([245]\.[0-7]\.\d{1,3})(?:$|[^\d.]|\.(?:$|[^\d]))"##,
    )
    .expect("regex")
});

/// The enhanced status code of `text`: the first one right after a reply code, else the
/// first one, skipping `X.0.0` when a more specific one follows (`550 5.0.0 ... 5.1.1`
/// says 5.1.1).
pub fn find_status(text: &str) -> Option<Status> {
    let after_reply = STATUS_AFTER_REPLY
        .captures_iter(text)
        .filter_map(|caps| Status::parse(&caps[1]))
        .find(|s| s.class != 2 && !s.is_generic());
    if after_reply.is_some() {
        return after_reply;
    }
    let mut first: Option<Status> = None;
    for caps in STATUS_IN_TEXT.captures_iter(text) {
        let Some(status) = Status::parse(&caps[1]) else {
            continue;
        };
        if status.class == 2 {
            continue;
        }
        if !status.is_generic() {
            return Some(status);
        }
        first.get_or_insert(status);
    }
    first
}

/// The first SMTP reply code (4xx or 5xx) in `text`.
pub fn find_reply(text: &str) -> Option<ReplyCode> {
    REPLY_IN_TEXT
        .captures_iter(text)
        .filter_map(|caps| ReplyCode::parse(&caps[1]))
        .find(|code| code.class() != 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_enhanced_codes_and_refuses_lookalikes() {
        assert_eq!(Status::parse("5.1.1").unwrap().to_string(), "5.1.1");
        assert_eq!(Status::parse(" 4.7.0 (x)").unwrap().to_string(), "4.7.0");
        assert_eq!(Status::parse("5.7.606").unwrap().detail, 606);
        for bad in [
            "", "5.1", "6.1.1", "5.1.1.1", "a.b.c", "55.1.1", "5.1234.1", "4.86.2", "5.8.1",
        ] {
            assert_eq!(Status::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn finds_codes_in_prose_but_not_in_addresses_or_versions() {
        let s = |t: &str| find_status(t).map(|s| s.to_string());
        assert_eq!(
            s("550-5.1.1 The email account that you tried to reach does not exist"),
            Some("5.1.1".into())
        );
        assert_eq!(s("over quota temporarily (#5.1.1)"), Some("5.1.1".into()));
        assert_eq!(s("host 192.0.2.153 said: no"), None);
        assert_eq!(s("Exim 4.86.2 here"), None);
        assert_eq!(s("550 5.0.0 see 5.7.1."), Some("5.7.1".into()));
        assert_eq!(s("Status: 5.0.0"), Some("5.0.0".into()));
        assert_eq!(
            s("5.1.0 - Unknown address error 550-'5.2.2 <ada@example.org>... Mailbox Full'"),
            Some("5.2.2".into())
        );
    }

    #[test]
    fn finds_reply_codes_where_replies_start() {
        let r = |t: &str| find_reply(t).map(|c| c.get());
        assert_eq!(
            r("Remote host said: 552 Error: disk quota exceeded"),
            Some(552)
        );
        assert_eq!(r("<<< 550-5.1.1 no such user"), Some(550));
        assert_eq!(r("[192.0.2.153]: 550 5.7.1 blocked"), Some(550));
        assert_eq!(r("failed after 432000 seconds"), None);
        assert_eq!(r("at 23:34:45 from 192.0.2.225"), None);
        assert_eq!(r("250 ok"), None);
    }
}
