//! Click and open tracking, applied to a rendered issue once: every http(s) link of the
//! HTML and text parts becomes a [`Slot::Link`], and the end of the HTML body gets a
//! [`Slot::OpenImage`]. Personalising a copy stays a concatenation.
//!
//! What is never rewritten: the unsubscribe link (a slot of its own, and anything under
//! `{base_url}unsubscribe`), the archive ("view in browser") links under
//! `{base_url}archive`, herald's own `/l/` and `/o/` paths, `mailto:` links, and the
//! List-Unsubscribe header (not part of the body). Only `href` of `<a>` elements is read in
//! the HTML (stylesheets and images are left alone), and bare `http://` and `https://` URLs
//! in the text.
//!
//! This is pure: it is given the base URL and which kinds are on, and does no I/O. The link
//! table it produces ([`TrackedLinks`]) is recorded by the caller so `/l/` can answer.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::personalise::{Slot, TrackedLink, TrackedLinks};
use super::urls::{linkify, Piece};
use super::RenderedIssue;
use crate::links::Links;

/// The most links one issue tracks (a link slot's number is a `u16`); any beyond are left
/// as written.
pub const MAX_LINKS: usize = 1000;

/// Which kinds of tracking to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackingPlan {
    pub clicks: bool,
    pub opens: bool,
}

/// A link's id within its issue: 8 characters of lowercase base32 of its URL's SHA-256, so
/// the same URL keeps its id when the issue is rendered again.
pub fn link_id(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    data_encoding::BASE32_NOPAD
        .encode(&digest[..5])
        .to_ascii_lowercase()
}

/// Rewrites `rendered` for `plan`. With nothing on, it is left exactly as it was.
pub fn track(rendered: &mut RenderedIssue, plan: TrackingPlan, links: &Links) {
    if !plan.clicks && !plan.opens {
        return;
    }
    let base = links.base().as_str().to_string();
    let mut table = Table {
        links: Vec::new(),
        by_url: HashMap::new(),
        ids: HashMap::new(),
        skip: [
            format!("{base}archive"),
            format!("{base}unsubscribe"),
            format!("{base}resubscribe"),
            format!("{base}l/"),
            format!("{base}o/"),
        ],
    };
    if plan.clicks {
        rendered.html.cut_literals(|text| table.html_links(text));
        rendered.text.cut_literals(|text| table.text_links(text));
    }
    if plan.opens {
        let mut placed = false;
        let last_body_end = last_literal_with(&rendered.html, "</body>");
        let mut seen = 0;
        rendered.html.cut_literals(|text| {
            if !text.contains("</body>") {
                return Vec::new();
            }
            seen += 1;
            if placed || Some(seen) != last_body_end {
                return Vec::new();
            }
            placed = true;
            let at = text.rfind("</body>").unwrap_or(text.len());
            vec![(at..at, Slot::OpenImage)]
        });
    }
    let tracked = Arc::new(TrackedLinks {
        click_base: format!("{base}l/"),
        open_base: format!("{base}o/"),
        links: table.links,
    });
    rendered.html.set_tracked(tracked.clone());
    rendered.text.set_tracked(tracked);
}

/// Which literal piece (counting from 1, among those containing `needle`) is the last.
fn last_literal_with(split: &super::Split, needle: &str) -> Option<usize> {
    let n = split
        .pieces()
        .filter(|p| matches!(p, super::SplitPiece::Literal(t) if t.contains(needle)))
        .count();
    (n > 0).then_some(n)
}

struct Table {
    links: Vec<TrackedLink>,
    by_url: HashMap<String, u16>,
    /// id -> URL, to refuse a second URL whose id collides.
    ids: HashMap<String, String>,
    skip: [String; 5],
}

impl Table {
    /// The slot for `url`, or `None` when it is not tracked.
    fn slot(&mut self, url: &str) -> Option<Slot> {
        let lower = url
            .get(..8)
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return None;
        }
        if self
            .skip
            .iter()
            .any(|prefix| url.starts_with(prefix.as_str()))
        {
            return None;
        }
        if url.len() > 8192 {
            return None;
        }
        if let Some(&n) = self.by_url.get(url) {
            return Some(Slot::Link(n));
        }
        if self.links.len() >= MAX_LINKS {
            return None;
        }
        let id = link_id(url);
        if let Some(other) = self.ids.get(&id) {
            if other != url {
                return None;
            }
        }
        let n = u16::try_from(self.links.len()).ok()?;
        self.ids.insert(id.clone(), url.to_string());
        self.by_url.insert(url.to_string(), n);
        self.links.push(TrackedLink {
            id,
            url: url.to_string(),
        });
        Some(Slot::Link(n))
    }

    /// The `href` values of `<a>` elements in a piece of HTML.
    fn html_links(&mut self, html: &str) -> Vec<(Range<usize>, Slot)> {
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(found) = html[from..].find("href=\"") {
            let start = from + found + "href=\"".len();
            let Some(len) = html[start..].find('"') else {
                break;
            };
            let end = start + len;
            from = end;
            if !inside_anchor(html, start) {
                continue;
            }
            let value = &html[start..end];
            let url = html_escape::decode_html_entities(value);
            if let Some(slot) = self.slot(url.trim()) {
                out.push((start..end, slot));
            }
        }
        out
    }

    /// The bare http(s) URLs in a piece of plain text.
    fn text_links(&mut self, text: &str) -> Vec<(Range<usize>, Slot)> {
        let mut out = Vec::new();
        let mut at = 0;
        for piece in linkify(text) {
            match piece {
                Piece::Text(t) => at += t.len(),
                Piece::Url {
                    text: written,
                    href,
                } => {
                    let range = at..at + written.len();
                    at += written.len();
                    if written == href {
                        if let Some(slot) = self.slot(&href) {
                            out.push((range, slot));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Whether the attribute value starting at `at` belongs to an `<a` element's tag.
fn inside_anchor(html: &str, at: usize) -> bool {
    let Some(open) = html[..at].rfind('<') else {
        return false;
    };
    if html[open..at].contains('>') {
        return false;
    }
    let tag = &html[open + 1..at];
    let mut name = tag.split(|c: char| c.is_ascii_whitespace());
    name.next().is_some_and(|n| n.eq_ignore_ascii_case("a"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_anchor_hrefs_are_links() {
        let html = r#"<link href="https://fonts.example/x.css"><a class="b" href="https://x.org/?a=1&amp;b=2">x</a>"#;
        let mut table = Table {
            links: Vec::new(),
            by_url: HashMap::new(),
            ids: HashMap::new(),
            skip: Default::default(),
        };
        table.skip = [
            "https://n.example/archive".into(),
            "https://n.example/unsubscribe".into(),
            "https://n.example/resubscribe".into(),
            "https://n.example/l/".into(),
            "https://n.example/o/".into(),
        ];
        let cuts = table.html_links(html);
        assert_eq!(cuts.len(), 1);
        assert_eq!(&html[cuts[0].0.clone()], "https://x.org/?a=1&amp;b=2");
        assert_eq!(table.links[0].url, "https://x.org/?a=1&b=2");
        let again = table.html_links(
            r#"<a href="https://n.example/archive/x">w</a><a href="https://x.org/?a=1&amp;b=2">"#,
        );
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1, Slot::Link(0));
    }

    #[test]
    fn a_link_id_is_short_and_stable() {
        let id = link_id("https://example.org/a");
        assert_eq!(id.len(), 8);
        assert_eq!(id, link_id("https://example.org/a"));
        assert_ne!(id, link_id("https://example.org/b"));
        assert!(id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
