//! How the body reads once rendered: emphasis CommonMark leaves literal, raw HTML the
//! sanitiser removes, images without alt text, skipped heading levels, and link text that
//! says nothing.

use pulldown_cmark::{Event, Tag, TagEnd};

use super::links::Kind;
use super::{At, Found, Subject, Words};
use crate::render::removed_by_sanitiser;

/// A run of `**` or `__` left in the text, as the reader sees it.
struct Run {
    offset: usize,
    marker: &'static str,
    /// The characters before and after the run, in the same text.
    before: Option<char>,
    after: Option<char>,
}

pub(super) fn literal_emphasis(s: &Subject<'_>, out: &mut Vec<Found>) {
    let mut in_code_block = false;
    // The runs of the current block (paragraph, heading, item, cell), paired in order.
    let mut runs: Vec<Run> = Vec::new();
    // Adjacent text events, joined: the parser may cut text at the markers.
    let mut text = String::new();
    let mut text_range = 0..0;
    for (event, range) in &s.events {
        match event {
            Event::Text(t) if !in_code_block => {
                if text.is_empty() || range.start != text_range.end {
                    scan(s, &text, text_range.clone(), &mut runs);
                    text.clear();
                    text_range = range.start..range.start;
                }
                text.push_str(t);
                text_range.end = range.end;
                continue;
            }
            Event::Start(Tag::CodeBlock(_)) => in_code_block = true,
            Event::End(TagEnd::CodeBlock) => in_code_block = false,
            _ => {}
        }
        scan(s, &text, text_range.clone(), &mut runs);
        text.clear();
        if let Event::End(
            TagEnd::Paragraph
            | TagEnd::Heading(_)
            | TagEnd::Item
            | TagEnd::TableCell
            | TagEnd::BlockQuote(_),
        ) = event
        {
            flush(&s.issue.body, &mut runs, out);
        }
    }
    scan(s, &text, text_range, &mut runs);
    flush(&s.issue.body, &mut runs, out);
}

fn flush(body: &str, runs: &mut Vec<Run>, out: &mut Vec<Found>) {
    for pair in runs.chunks(2) {
        out.push(emphasis_finding(body, pair));
    }
    runs.clear();
}

/// Adds the literal runs of `text` (the body's text at `range`) to `runs`.
fn scan(s: &Subject<'_>, text: &str, range: std::ops::Range<usize>, runs: &mut Vec<Run>) {
    if text.is_empty() {
        return;
    }
    let exact = s.body_text(range.clone()) == text;
    for (i, marker) in literal_runs(text) {
        // Neighbours from the source when the text is the source as written.
        let (context, at) = if exact {
            (s.issue.body.as_str(), range.start + i)
        } else {
            (text, i)
        };
        runs.push(Run {
            offset: if exact { at } else { range.start },
            marker,
            before: context[..at].chars().next_back(),
            after: context[at + 2..].chars().next(),
        });
    }
}

/// `**` and `__` runs left as text. `__` between two letters or digits (`snake__case`) is
/// what the writer meant, and is left alone.
fn literal_runs(text: &str) -> Vec<(usize, &'static str)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        let marker = match &bytes[i..i + 2] {
            b"**" => "**",
            b"__" => "__",
            _ => {
                i += 1;
                continue;
            }
        };
        let mut end = i + 2;
        while end < bytes.len() && bytes[end] == bytes[i] {
            end += 1;
        }
        let before = text[..i].chars().next_back();
        let after = text[end..].chars().next();
        let intraword = marker == "__"
            && before.is_some_and(char::is_alphanumeric)
            && after.is_some_and(char::is_alphanumeric);
        if !intraword {
            out.push((i, marker));
        }
        i = end;
    }
    out
}

fn emphasis_finding(body: &str, pair: &[Run]) -> Found {
    let open = &pair[0];
    let marker = open.marker;
    let punct = |c: char| c.is_ascii_punctuation() || is_wide_punctuation(c);
    let wordy = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    // The pair as written and as it should be, when it is short enough to quote.
    let quoted = pair.get(1).and_then(|close| {
        let written = body.get(open.offset..close.offset + 2)?;
        (written.chars().count() <= 80 && written.starts_with(marker) && written.ends_with(marker))
            .then_some(written)
    });
    let (message, hint) = match pair.get(1) {
        Some(close)
            if close.before.is_some_and(char::is_whitespace)
                || open.after.is_some_and(char::is_whitespace) =>
        {
            let hint = match quoted {
                Some(written) => {
                    let inner = &written[2..written.len() - 2];
                    let before = if inner.starts_with(char::is_whitespace) {
                        " "
                    } else {
                        ""
                    };
                    let after = if inner.ends_with(char::is_whitespace) {
                        " "
                    } else {
                        ""
                    };
                    Words::new("check-literal-emphasis-space-quoted-hint")
                        .with(
                            "fixed",
                            format!("{before}{marker}{}{marker}{after}", inner.trim()),
                        )
                        .with("written", written)
                }
                None => Words::new("check-literal-emphasis-space-hint").with("marker", marker),
            };
            let message = if open.after.is_some_and(char::is_whitespace) {
                Words::new("check-literal-emphasis-space-after-opening")
            } else {
                Words::new("check-literal-emphasis-space-before-closing")
            };
            (message.with("marker", marker), hint)
        }
        Some(close)
            if (wordy(open.before) && open.after.is_some_and(punct))
                || (close.before.is_some_and(punct) && wordy(close.after)) =>
        {
            (
                Words::new("check-literal-emphasis-flanking").with("marker", marker),
                Words::new("check-literal-emphasis-flanking-hint").with("marker", marker),
            )
        }
        Some(_) => (
            Words::new("check-literal-emphasis-pair").with("marker", marker),
            Words::new("check-literal-emphasis-pair-hint"),
        ),
        None => (
            Words::new("check-literal-emphasis-alone").with("marker", marker),
            Words::new("check-literal-emphasis-alone-hint")
                .with("marker", marker)
                .with("char", &marker[..1]),
        ),
    };
    Found::new(At::Body(open.offset), message, hint)
}

/// Full-width punctuation (CJK), which CommonMark counts as punctuation too.
fn is_wide_punctuation(c: char) -> bool {
    matches!(c, '\u{3000}'..='\u{303F}' | '\u{FF00}'..='\u{FF0F}' | '\u{FF1A}'..='\u{FF20}' | '\u{2010}'..='\u{2027}')
}

pub(super) fn html_removed(s: &Subject<'_>, out: &mut Vec<Found>) {
    for (event, range) in &s.events {
        if let Event::Html(raw) | Event::InlineHtml(raw) = event {
            let removed = removed_by_sanitiser(raw);
            if !removed.is_empty() {
                out.push(Found::new(
                    At::Body(range.start),
                    Words::new("check-html-removed").with("removed", removed.join(", ")),
                    Words::new("check-html-removed-hint"),
                ));
            }
        }
    }
}

pub(super) fn image_alt(s: &Subject<'_>, out: &mut Vec<Found>) {
    for r in &s.references {
        if matches!(r.kind, Kind::Image | Kind::RawImage)
            && r.text.as_deref().is_none_or(|t| t.trim().is_empty())
        {
            out.push(Found::new(
                r.at,
                Words::new("check-image-alt").with("target", &r.target),
                Words::new("check-image-alt-hint"),
            ));
        }
    }
}

pub(super) fn heading_skip(s: &Subject<'_>, out: &mut Vec<Found>) {
    let mut previous = 1usize;
    for (event, range) in &s.events {
        if let Event::Start(Tag::Heading { level, .. }) = event {
            let level = *level as usize;
            if level > previous + 1 {
                out.push(Found::new(
                    At::Body(range.start),
                    Words::new("check-heading-skip")
                        .number("level", level)
                        .number("previous", previous),
                    Words::new("check-heading-skip-hint").with("marks", "#".repeat(previous + 1)),
                ));
            }
            previous = level;
        }
    }
}

/// Link text that says nothing out of context, lowercase, without trailing punctuation.
const VAGUE_LINK_TEXT: &[&str] = &[
    "click here",
    "click",
    "here",
    "this",
    "this link",
    "link",
    "more",
    "read more",
    "learn more",
    "more info",
    "go",
    "点击这里",
    "点击",
    "这里",
    "此处",
    "点此",
    "链接",
];

pub(super) fn link_text(s: &Subject<'_>, out: &mut Vec<Found>) {
    for r in s.references.iter().filter(|r| r.kind == Kind::Link) {
        let Some(text) = &r.text else { continue };
        let plain = text
            .trim()
            .trim_end_matches(['.', ':', '!', '。', '：', '！', '»', '→'])
            .trim()
            .to_lowercase();
        if VAGUE_LINK_TEXT.contains(&plain.as_str()) {
            out.push(Found::new(
                r.at,
                Words::new("check-link-text").with("text", format!("{:?}", text.trim())),
                Words::new("check-link-text-hint"),
            ));
        }
    }
}

pub(super) fn bare_url(s: &Subject<'_>, out: &mut Vec<Found>) {
    for r in &s.references {
        let Some(text) = &r.text else { continue };
        let text = text.trim();
        let looks_like_url = ["http://", "https://", "www."]
            .iter()
            .any(|p| text.to_ascii_lowercase().starts_with(p));
        let is_link = matches!(r.kind, Kind::Link | Kind::Autolink | Kind::Bare);
        if is_link && looks_like_url {
            out.push(Found::new(
                r.at,
                Words::new("check-link-bare-url").with("text", text),
                Words::new("check-link-bare-url-hint"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_runs_skip_intraword_underscores() {
        assert_eq!(
            literal_runs("**a ** and __b__"),
            [(0, "**"), (4, "**"), (11, "__"), (14, "__")]
        );
        assert!(literal_runs("snake__case and a*b").is_empty());
        assert_eq!(literal_runs("***x"), [(0, "**")]);
    }
}
