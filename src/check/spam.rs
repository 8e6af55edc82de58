//! Content heuristics of spam filters (SpamAssassin's rules and the URI blocklists) that can
//! be checked offline, before a send: a shouting subject, spammy phrases, shortened or
//! numeric links, and link text that names another host than the link.

use std::net::IpAddr;

use pulldown_cmark::Event;
use url::Url;

use super::links::Kind;
use super::{At, Found, Subject, Words};

pub(super) fn subject_caps(s: &Subject<'_>, out: &mut Vec<Found>) {
    let subject = &s.issue.subject;
    let letters: Vec<char> = subject
        .chars()
        .filter(|c| c.is_alphabetic() && c.is_ascii())
        .collect();
    if letters.len() >= 8 && letters.iter().all(char::is_ascii_uppercase) {
        out.push(Found::new(
            subject_at(s),
            Words::new("check-spam-subject-caps"),
            Words::new("check-spam-subject-caps-hint"),
        ));
    }
}

pub(super) fn subject_punctuation(s: &Subject<'_>, out: &mut Vec<Found>) {
    let subject = &s.issue.subject;
    let shouts = ["!!", "??", "!?", "?!", "$$", "！！"];
    if let Some(found) = shouts.iter().find(|p| subject.contains(*p)) {
        out.push(Found::new(
            subject_at(s),
            Words::new("check-spam-subject-punctuation").with("found", format!("{found:?}")),
            Words::new("check-spam-subject-punctuation-hint"),
        ));
    }
}

fn subject_at(s: &Subject<'_>) -> At {
    if super::field_line(s.source, "subject").is_some() {
        At::Field("subject")
    } else {
        At::Field("title")
    }
}

/// Phrases that content filters score, lowercase.
const PHRASES: &[&str] = &[
    "act now",
    "100% free",
    "risk-free",
    "risk free",
    "click below",
    "buy now",
    "order now",
    "limited time offer",
    "earn money",
    "make money fast",
    "cash bonus",
    "you have been selected",
    "this is not spam",
    "dear friend",
    "free gift",
    "winner!",
];

pub(super) fn phrases(s: &Subject<'_>, out: &mut Vec<Found>) {
    let subject = s.issue.subject.to_lowercase();
    for phrase in PHRASES.iter().filter(|p| subject.contains(*p)) {
        out.push(Found::new(
            subject_at(s),
            Words::new("check-spam-phrase-subject").with("phrase", format!("{phrase:?}")),
            Words::new("check-spam-phrase-hint"),
        ));
    }
    for (event, range) in &s.events {
        if let Event::Text(text) = event {
            let lower = text.to_lowercase();
            for phrase in PHRASES.iter().filter(|p| lower.contains(*p)) {
                out.push(Found::new(
                    At::Body(range.start),
                    Words::new("check-spam-phrase-text").with("phrase", format!("{phrase:?}")),
                    Words::new("check-spam-phrase-hint"),
                ));
            }
        }
    }
}

/// URL shorteners: their links hide the destination, and blocklists list them.
const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "goo.gl",
    "t.co",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "t.cn",
    "dwz.cn",
    "url.cn",
    "s.id",
];

fn absolute(s: &Subject<'_>, target: &str) -> Option<Url> {
    let target = target.trim();
    if target.to_ascii_lowercase().starts_with("www.") {
        return Url::parse(&format!("http://{target}")).ok();
    }
    Url::parse(target).or_else(|_| s.base.join(target)).ok()
}

pub(super) fn shortener(s: &Subject<'_>, out: &mut Vec<Found>) {
    for r in s.references.iter().filter(|r| !r.kind.is_image()) {
        let Some(host) = absolute(s, &r.target).and_then(|u| u.host_str().map(str::to_lowercase))
        else {
            continue;
        };
        if SHORTENERS.contains(&host.as_str()) {
            out.push(Found::new(
                r.at,
                Words::new("check-spam-shortener").with("host", host),
                Words::new("check-spam-shortener-hint"),
            ));
        }
    }
}

pub(super) fn ip_link(s: &Subject<'_>, out: &mut Vec<Found>) {
    for r in &s.references {
        let Some(url) = absolute(s, &r.target) else {
            continue;
        };
        let Some(host) = url.host_str() else { continue };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<IpAddr>().is_ok() && !super::links::is_local_host(host) {
            out.push(Found::new(
                r.at,
                Words::new("check-spam-ip-link").with("url", url),
                Words::new("check-spam-ip-link-hint"),
            ));
        }
    }
}

pub(super) fn link_mismatch(s: &Subject<'_>, out: &mut Vec<Found>) {
    for r in s.references.iter().filter(|r| r.kind == Kind::Link) {
        let Some(text) = r.text.as_deref().map(str::trim) else {
            continue;
        };
        if text.contains(char::is_whitespace) || !text.contains('.') {
            continue;
        }
        let shown = if text.contains("://") {
            Url::parse(text).ok()
        } else if text.to_ascii_lowercase().starts_with("www.") {
            Url::parse(&format!("http://{text}")).ok()
        } else {
            None
        };
        let (Some(shown), Some(target)) = (shown, absolute(s, &r.target)) else {
            continue;
        };
        let host = |u: &Url| {
            u.host_str()
                .map(|h| h.trim_start_matches("www.").to_ascii_lowercase())
        };
        if host(&shown) != host(&target) {
            out.push(Found::new(
                r.at,
                Words::new("check-spam-link-mismatch")
                    .with("shown", host(&shown).unwrap_or_default())
                    .with("target", host(&target).unwrap_or_default()),
                Words::new("check-spam-link-mismatch-hint"),
            ));
        }
    }
}
