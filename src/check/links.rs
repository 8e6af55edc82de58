//! Where links and images lead: every reference an issue makes (Markdown links and images,
//! raw `<a href>` and `<img src>`, bare URLs, the cover and the author link), and the rules
//! over them: unresolvable targets, local hosts, images missing from `assets_dir`.

use std::net::IpAddr;

use pulldown_cmark::{Event, LinkType, Tag, TagEnd};
use url::Url;

use super::{At, Found, Subject, Words};
use crate::render::{raw_html_tokens, RawToken};

/// What a reference is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Link,
    /// `<https://…>` in Markdown.
    Autolink,
    /// A URL written in the text, which the renderer links.
    Bare,
    Image,
    /// A link or image written as raw HTML.
    RawLink,
    RawImage,
    Cover,
    AuthorLink,
}

impl Kind {
    pub fn is_image(self) -> bool {
        matches!(self, Kind::Image | Kind::RawImage | Kind::Cover)
    }
}

/// One link or image of the issue.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    pub at: At,
    pub kind: Kind,
    /// The target as written.
    pub target: String,
    /// The link text or the image's alt text, when there is one to read.
    pub text: Option<String>,
}

/// Collects every reference of the issue.
pub(crate) fn references(subject: &Subject<'_>) -> Vec<Reference> {
    let mut out = Vec::new();
    let issue = subject.issue;
    if let Some(cover) = &issue.cover {
        out.push(Reference {
            at: At::Field("cover"),
            kind: Kind::Cover,
            target: cover.clone(),
            text: Some(issue.cover_alt.clone()),
        });
    }
    if let Some(link) = &issue.authorlink {
        out.push(Reference {
            at: At::Field("authorlink"),
            kind: Kind::AuthorLink,
            target: link.clone(),
            text: issue.author.clone(),
        });
    }
    // Open links and images: the index in `out` whose text is being collected.
    let mut open: Vec<usize> = Vec::new();
    let mut in_code_block = false;
    for (event, range) in &subject.events {
        match event {
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            }) => {
                let kind = if matches!(link_type, LinkType::Autolink | LinkType::Email) {
                    Kind::Autolink
                } else {
                    Kind::Link
                };
                open.push(out.len());
                out.push(Reference {
                    at: At::Body(range.start),
                    kind,
                    target: dest_url.to_string(),
                    text: Some(String::new()),
                });
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                open.push(out.len());
                out.push(Reference {
                    at: At::Body(range.start),
                    kind: Kind::Image,
                    target: dest_url.to_string(),
                    text: Some(String::new()),
                });
            }
            Event::End(TagEnd::Link | TagEnd::Image) => {
                open.pop();
            }
            Event::Start(Tag::CodeBlock(_)) => in_code_block = true,
            Event::End(TagEnd::CodeBlock) => in_code_block = false,
            Event::Text(text) | Event::Code(text) => {
                if let Some(&i) = open.last() {
                    if let Some(t) = out[i].text.as_mut() {
                        t.push_str(text);
                    }
                } else if !in_code_block && matches!(event, Event::Text(_)) {
                    for (offset, url) in bare_urls(text) {
                        out.push(Reference {
                            at: At::Body(range.start + source_offset(subject, range, text, offset)),
                            kind: Kind::Bare,
                            target: if url.to_ascii_lowercase().starts_with("www.") {
                                format!("http://{url}")
                            } else {
                                url.to_string()
                            },
                            text: Some(url.to_string()),
                        });
                    }
                }
            }
            Event::Html(raw) | Event::InlineHtml(raw) => {
                raw_references(raw, range.start, &mut out);
            }
            _ => {}
        }
    }
    out
}

/// The byte offset in the source of byte `offset` of an event's text: exact when the text
/// is the source as written, else the event's start.
fn source_offset(
    subject: &Subject<'_>,
    range: &std::ops::Range<usize>,
    text: &str,
    offset: usize,
) -> usize {
    if subject.body_text(range.clone()) == text {
        offset
    } else {
        0
    }
}

/// `<a href>` and `<img src>` in a raw HTML snippet starting at body offset `start`.
fn raw_references(raw: &str, start: usize, out: &mut Vec<Reference>) {
    let mut offset = 0;
    for token in raw_html_tokens(raw) {
        let len = match &token {
            RawToken::Text(t) | RawToken::Comment(t) | RawToken::NotATag(t) => t.len(),
            RawToken::Tag(tag) => tag.source.len(),
        };
        if let RawToken::Tag(tag) = &token {
            let found = match tag.name.as_str() {
                "a" if !tag.closing => tag.attribute("href").map(|h| (Kind::RawLink, h, None)),
                "img" => tag.attribute("src").map(|s| {
                    (
                        Kind::RawImage,
                        s,
                        Some(tag.attribute("alt").unwrap_or_default()),
                    )
                }),
                _ => None,
            };
            if let Some((kind, target, text)) = found {
                out.push(Reference {
                    at: At::Body(start + offset),
                    kind,
                    target,
                    text,
                });
            }
        }
        offset += len;
    }
}

/// Bare `http://`, `https://` and `www.` URLs in text, with their byte offsets, as the
/// renderer links them (up to whitespace, a quote, `<`, `>` or a non-ASCII character, less
/// trailing punctuation).
pub(crate) fn bare_urls(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while from < text.len() {
        let next = ["https://", "http://", "www."]
            .iter()
            .filter_map(|p| lower[from..].find(p).map(|i| from + i))
            .min();
        let Some(start) = next else { break };
        let boundary = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '/' && c != '.');
        let end = text[start..]
            .char_indices()
            .find(|&(_, c)| !c.is_ascii_graphic() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
            .map_or(text.len(), |(i, _)| start + i);
        let url =
            text[start..end].trim_end_matches(['.', ',', ':', ';', '!', '?', '*', '_', '~', ')']);
        if boundary && url.len() > 8 && url.contains('.') {
            out.push((start, url));
        }
        from = end.max(start + 1);
    }
    out
}

/// Why a reference's target cannot be an absolute URL.
enum Unresolvable {
    Empty,
    NotUrl(url::ParseError),
    Scheme(String),
}

impl Unresolvable {
    /// The finding's message about the link to `target`.
    fn words(&self, target: &str) -> Words {
        let target = format!("{target:?}");
        match self {
            Self::Empty => Words::new("check-link-unresolvable-empty").with("target", target),
            Self::NotUrl(e) => Words::new("check-link-unresolvable-not-url")
                .with("target", target)
                .with("error", e),
            Self::Scheme(scheme) => Words::new("check-link-unresolvable-scheme")
                .with("target", target)
                .with("scheme", scheme),
        }
    }
}

/// The absolute URL of a reference's target as the renderer resolves it, or why it cannot
/// be one.
fn resolve(base: &Url, target: &str) -> Result<Url, Unresolvable> {
    let target = target.trim();
    if target.is_empty() {
        return Err(Unresolvable::Empty);
    }
    let url = match Url::parse(target) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            base.join(target).map_err(Unresolvable::NotUrl)?
        }
        Err(e) => return Err(Unresolvable::NotUrl(e)),
    };
    if !matches!(url.scheme(), "http" | "https" | "mailto") {
        return Err(Unresolvable::Scheme(url.scheme().to_string()));
    }
    Ok(url)
}

/// The path of `url` under `base`, when `url` is on herald's site.
fn site_path<'u>(base: &Url, url: &'u Url) -> Option<&'u str> {
    if url.origin() != base.origin() {
        return None;
    }
    url.path().strip_prefix(base.path())
}

/// Pages herald serves under its base URL.
fn is_route(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    matches!(
        path,
        "" | "archive" | "feed.xml" | "subscribe" | "unsubscribe" | "health"
    ) || path.starts_with("archive/")
}

fn is_relative(target: &str) -> bool {
    let t = target.trim();
    !t.starts_with('#') && matches!(Url::parse(t), Err(url::ParseError::RelativeUrlWithoutBase))
}

pub(super) fn unresolvable(s: &Subject<'_>, out: &mut Vec<Found>) {
    for r in &s.references {
        if r.target.trim().starts_with('#') || r.kind == Kind::Bare {
            continue;
        }
        match resolve(s.base, &r.target) {
            Err(why) => out.push(Found::new(
                r.at,
                why.words(&r.target),
                Words::new("check-link-unresolvable-hint"),
            )),
            Ok(url) if !r.kind.is_image() && is_relative(&r.target) => {
                let Some(path) = site_path(s.base, &url) else {
                    continue;
                };
                let decoded = percent_decode(path);
                if is_route(path) || s.newsletter.assets_dir.join(&decoded).is_file() {
                    continue;
                }
                out.push(Found::new(
                    r.at,
                    Words::new("check-link-unresolvable-relative")
                        .with("target", format!("{:?}", r.target))
                        .with("url", &url)
                        .with("file", s.newsletter.assets_dir.join(&decoded).display()),
                    Words::new("check-link-unresolvable-relative-hint"),
                ));
            }
            Ok(_) => {}
        }
    }
}

pub(super) fn asset_missing(s: &Subject<'_>, out: &mut Vec<Found>) {
    for r in s.references.iter().filter(|r| r.kind.is_image()) {
        if !is_relative(&r.target) {
            continue;
        }
        let Ok(url) = resolve(s.base, &r.target) else {
            continue;
        };
        let Some(path) = site_path(s.base, &url) else {
            continue;
        };
        let file = s.newsletter.assets_dir.join(percent_decode(path));
        if !file.is_file() {
            out.push(Found::new(
                r.at,
                Words::new("check-asset-missing")
                    .with("target", format!("{:?}", r.target))
                    .with("file", file.display()),
                Words::new("check-asset-missing-hint"),
            ));
        }
    }
}

pub(super) fn local(s: &Subject<'_>, out: &mut Vec<Found>) {
    if !s.base.host_str().is_some_and(is_public_host) {
        return;
    }
    for r in &s.references {
        let Ok(url) = resolve(s.base, &r.target) else {
            continue;
        };
        let Some(host) = url.host_str() else {
            continue;
        };
        if is_local_host(host) || is_example_host(host) {
            out.push(Found::new(
                r.at,
                Words::new(if r.kind.is_image() {
                    "check-link-local-image"
                } else {
                    "check-link-local-link"
                })
                .with("url", &url)
                .with("host", host),
                Words::new("check-link-local-hint"),
            ));
        }
    }
}

fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `localhost`, a loopback or unspecified address.
pub(crate) fn is_local_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ip.is_loopback() || ip.is_unspecified();
    }
    let host = host.to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// `example.com`, `news.example.org`, `x.example`: names reserved for documentation.
fn is_example_host(host: &str) -> bool {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let n = labels.len();
    labels
        .last()
        .is_some_and(|l| l.eq_ignore_ascii_case("example"))
        || (n >= 2 && labels[n - 2].eq_ignore_ascii_case("example"))
}

/// A host on the public internet: not local, private, reserved for documentation or tests,
/// and with a dot in it.
pub(crate) fn is_public_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return match ip {
            IpAddr::V4(v4) => {
                !(v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified())
            }
            IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unspecified()),
        };
    }
    let lower = host.to_ascii_lowercase();
    let tld = lower.rsplit('.').next().unwrap_or("");
    lower.contains('.')
        && !is_local_host(&lower)
        && !is_example_host(&lower)
        && !matches!(
            tld,
            "test" | "invalid" | "local" | "internal" | "lan" | "home"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_told_apart() {
        assert!(is_public_host("news.sofastack.tech"));
        for host in [
            "localhost",
            "127.0.0.1",
            "news.example.org",
            "x.test",
            "10.0.0.2",
            "intranet",
        ] {
            assert!(!is_public_host(host), "{host}");
        }
        assert!(is_local_host("127.0.0.1") && is_local_host("[::1]") && !is_local_host("10.1.1.1"));
        assert!(is_example_host("example.com") && is_example_host("www.example.org"));
        assert!(!is_example_host("examples.com"));
    }

    #[test]
    fn bare_urls_end_where_the_renderer_ends_them() {
        let found = bare_urls("see https://a.org/x. and www.b.net，中文 or http://c.io/p)");
        let urls: Vec<&str> = found.iter().map(|(_, u)| *u).collect();
        assert_eq!(urls, ["https://a.org/x", "www.b.net", "http://c.io/p"]);
        assert_eq!(found[0].0, 4);
    }
}
