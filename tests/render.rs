//! Rendering real issues end to end with mrml: snapshots of the example issue, an XSS check
//! and link checks. Set `HERALD_UPDATE_SNAPSHOTS=1` to rewrite the golden files.

use std::collections::BTreeSet;
use std::path::PathBuf;

use herald::config::NewsletterSettings;
use herald::issue::{self, Issue};
use herald::links::Links;
use herald::render::{self, Recipient, RenderedIssue, Templates};
use pulldown_cmark::{Event, Options, Parser, Tag};
use regex::Regex;

mod support;
use support::snapshot::assert_snapshot;

const EXAMPLE: &str = "tests/fixtures/issues/2026-11-27-welcome-to-herald.md";
const BASE_URL: &str = "https://news.herald.example/";
const GMAIL_CLIP_BYTES: usize = 102 * 1024;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn settings() -> NewsletterSettings {
    NewsletterSettings {
        name: "Herald Weekly".into(),
        base_url: BASE_URL.into(),
        postal_address: "Herald Weekly, 1 Example Street, 10115 Berlin, Germany".into(),
        ..NewsletterSettings::default()
    }
}

fn sample_recipient() -> Recipient<'static> {
    Recipient {
        email: "reader@example.org",
        name: Some("Ada Reader"),
        unsubscribe_url: "https://news.herald.example/unsubscribe/sample-token",
        tracking: None,
    }
}

fn render(issue: &Issue) -> RenderedIssue {
    let settings = settings();
    let templates = Templates::load(
        &root().join("templates"),
        herald::i18n::Catalogs::built_in(),
    )
    .expect("templates load");
    let links = Links::new(&settings.base_url).expect("base url");
    render::issue(issue, &templates, &settings, &links).expect("issue renders")
}

fn example() -> (Issue, RenderedIssue) {
    let issue =
        issue::load(&root().join(EXAMPLE), &Default::default()).expect("example issue loads");
    let rendered = render(&issue);
    (issue, rendered)
}

/// Every href and src value in `html`, entities decoded.
fn urls_in(html: &str) -> Vec<String> {
    let re = Regex::new(r#"(?i)\s(?:href|src)\s*=\s*"([^"]*)""#).unwrap();
    re.captures_iter(html)
        .map(|c| html_escape::decode_html_entities(&c[1]).into_owned())
        .collect()
}

/// Links and images in the Markdown source, plus bare URLs in its text, made absolute.
fn source_links(markdown: &str) -> BTreeSet<String> {
    let base = url::Url::parse(BASE_URL).unwrap();
    let bare = Regex::new(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+").unwrap();
    let mut links = BTreeSet::new();
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH;
    let mut in_code = false;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                // Only web and mail links are linked; `<SOFA:ArkLab/>`-style prose is not.
                let linkable = |u: &url::Url| matches!(u.scheme(), "http" | "https" | "mailto");
                match base.join(&dest_url) {
                    Ok(url) if linkable(&url) && !dest_url.starts_with('#') => {
                        links.insert(url.to_string());
                    }
                    _ => {}
                }
            }
            Event::Start(Tag::CodeBlock(_)) => in_code = true,
            Event::End(pulldown_cmark::TagEnd::CodeBlock) => in_code = false,
            Event::Text(text) if !in_code => {
                for m in bare.find_iter(&text) {
                    let trimmed = m
                        .as_str()
                        .trim_end_matches(['.', ',', ':', ';', '!', '?', ')']);
                    links.insert(url::Url::parse(trimmed).unwrap().to_string());
                }
            }
            _ => {}
        }
    }
    links
}

#[test]
fn example_issue_html_matches_its_snapshot() {
    let (_, rendered) = example();
    assert_snapshot(
        "welcome-to-herald.html",
        &rendered.html.personalise(&sample_recipient()),
    );
}

#[test]
fn example_issue_text_matches_its_snapshot() {
    let (_, rendered) = example();
    assert_snapshot(
        "welcome-to-herald.txt",
        &rendered.text.personalise(&sample_recipient()),
    );
}

#[test]
fn rendering_is_deterministic_and_keeps_the_subject() {
    let (issue, first) = example();
    let second = render(&issue);
    assert_eq!(first.html, second.html);
    assert_eq!(first.text, second.text);
    assert_eq!(first.subject, issue.subject);
    assert_eq!(first.slug, issue.slug);
}

#[test]
fn every_link_is_absolute_every_source_link_survives_and_gmail_will_not_clip() {
    let (issue, rendered) = example();
    let html = rendered.html.personalise(&sample_recipient());
    let urls = urls_in(&html);
    assert!(urls.len() > 5, "too few links found: {urls:?}");
    for url in &urls {
        assert!(
            url.starts_with("https://") || url.starts_with("http://") || url.starts_with("mailto:"),
            "not absolute: {url}"
        );
    }
    let present: BTreeSet<&str> = urls.iter().map(String::as_str).collect();
    let expected = source_links(&issue.body);
    assert!(expected.len() >= 5, "{expected:?}");
    for link in &expected {
        assert!(
            present.contains(link.as_str()),
            "{link} is missing from the HTML"
        );
    }
    assert!(present.contains("https://news.herald.example/img/issues/welcome-cover.png"));
    assert!(present.contains("https://news.herald.example/archive/2026-11-27-welcome-to-herald"));
    assert!(present.contains(sample_recipient().unsubscribe_url));
    assert!(
        html.len() < GMAIL_CLIP_BYTES,
        "HTML is {} bytes",
        html.len()
    );
}

#[test]
fn html_has_the_layout_parts_and_the_slots() {
    let (_, rendered) = example();
    let slots: Vec<_> = rendered.html.slots().collect();
    assert!(slots.contains(&render::Slot::UnsubscribeUrl));
    let html = rendered.html.personalise(&sample_recipient());
    assert!(html.contains("Welcome to herald: one binary, every Friday"));
    assert!(html.contains("Friday, 27 November 2026"));
    assert!(
        html.contains("What herald is, how an issue travels"),
        "preheader missing"
    );
    assert!(html.contains("10115 Berlin"));
    assert!(html.contains("max-width:600px"), "not a 600px column");
    assert!(html.contains("二进制文件"), "CJK paragraph missing");
}

#[test]
fn text_has_references_cjk_and_the_footer() {
    let (_, rendered) = example();
    assert!(rendered
        .text
        .slots()
        .any(|s| s == render::Slot::UnsubscribeUrl));
    let text = rendered.text.personalise(&sample_recipient());
    assert!(text.contains("design notes [1]"), "{text}");
    assert!(text.contains("[1] https://news.herald.example/docs/design/"));
    assert!(text.contains("[image: A Markdown file becoming an email] [2]"));
    assert!(text.contains("> **Can I keep") || text.contains("> Can I keep"));
    assert!(text.contains("Unsubscribe: https://news.herald.example/unsubscribe/sample-token"));
    assert!(text.contains("10115 Berlin"));
    for line in text.lines() {
        let long_url = line.split_whitespace().any(|w| w.len() > 60);
        assert!(
            long_url || unicode_width::UnicodeWidthStr::width(line) <= 76,
            "line too wide: {line:?}"
        );
    }
}

fn hostile_issue() -> Issue {
    let source = r#"---
title: "<script>alert('t')</script> Hello"
description: "<img src=x onerror=alert('d')>"
author: "<a href=\"javascript:alert('a')\" onclick=\"alert(1)\">Mallory</a>"
authorlink: "javascript:alert('l')"
cover: "javascript:alert(1)"
---

Body <script>alert('b')</script> <img src="x.png" onerror="alert('i')">
<a href="javascript:alert('h')" onmouseover="alert(2)">click</a>
[md](javascript:alert('m')) ![img](javascript:alert('n'))

<iframe src="https://evil.example/"></iframe><style>body{display:none}</style>
"#;
    issue::parse(source.as_bytes(), "hostile").expect("hostile issue parses")
}

/// Start tags of `html` with their attribute text.
fn tags(html: &str) -> Vec<String> {
    Regex::new(r"<[A-Za-z][^>]*>")
        .unwrap()
        .find_iter(html)
        .map(|m| m.as_str().to_ascii_lowercase())
        .collect()
}

#[test]
fn scripts_handlers_and_javascript_urls_are_neutralised_in_body_and_front_matter() {
    let rendered = render(&hostile_issue());
    let html = rendered.html.personalise(&sample_recipient());
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script tag survived");
    assert!(!lower.contains("<iframe"), "an iframe survived");
    assert!(
        !lower.contains("display:none}"),
        "a style block from the body survived"
    );
    let handler = Regex::new(r"\son[a-z]+\s*=").unwrap();
    for tag in tags(&html) {
        assert!(!handler.is_match(&tag), "handler in {tag}");
        assert!(!tag.contains("javascript:"), "javascript URL in {tag}");
    }
    for url in urls_in(&html) {
        assert!(!url.to_ascii_lowercase().contains("javascript"), "{url}");
    }
    // Front matter is shown as text, escaped, not dropped.
    assert!(html.contains("&lt;script&gt;alert("), "title not escaped");
    assert!(html.contains("Mallory"));
    assert!(
        !lower.contains("javascript:alert(1)"),
        "the cover URL survived: {html}"
    );
    let text = rendered.text.personalise(&sample_recipient());
    // Plain text shows the front matter as typed, but never lists a javascript: target.
    assert!(
        text.contains("[1] https://news.herald.example/x.png"),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with('[') && l.contains("] javascript")),
        "{text}"
    );
}
