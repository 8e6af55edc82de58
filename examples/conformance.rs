//! Conformance check: renders every issue in a folder exactly as it would be sent, parses the
//! message back with an independent MIME parser, and checks what a subscriber's mail client
//! relies on. Run it as `scripts/conformance.sh DIR`.
//!
//! For each `*.md` file:
//! - the message has a text/plain and a text/html part;
//! - the decoded Subject equals the issue's subject (its title unless `subject` is set);
//! - no `href` or `src` in the HTML is relative;
//! - every http(s), mailto or relative link and image of the Markdown source is in the
//!   HTML, made absolute;
//! - every relative image (and the cover) is a file in `newsletter.assets_dir`, where
//!   `herald serve` publishes it, so no reader sees a broken image;
//! - the HTML part is under 102 KB, where Gmail starts clipping.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use herald::config::Settings;
use mail_parser::MimeHeaders;
use pulldown_cmark::{Event, Options, Parser, Tag};
use regex::Regex;

const GMAIL_CLIP_BYTES: usize = 102 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (config, dir) = match args.as_slice() {
        [dir] => (None, PathBuf::from(dir)),
        [flag, config, dir] if flag == "--config" => {
            (Some(PathBuf::from(config)), PathBuf::from(dir))
        }
        _ => {
            eprintln!("usage: conformance [--config FILE] DIR");
            return ExitCode::from(2);
        }
    };
    let settings = match &config {
        Some(path) => Settings::load(path, true),
        None => Settings::load(Path::new("config.toml"), false),
    };
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect(),
        Err(e) => {
            eprintln!("conformance: {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    files.sort();
    if files.is_empty() {
        eprintln!("conformance: no .md files in {}", dir.display());
        return ExitCode::from(2);
    }
    let (mut ok, mut bad) = (0, 0);
    for file in &files {
        match check(&settings, file) {
            Ok(summary) => {
                ok += 1;
                println!("ok    {}  {summary}", file.display());
            }
            Err(problems) => {
                bad += 1;
                println!("FAIL  {}", file.display());
                for p in problems {
                    println!("      - {p}");
                }
            }
        }
    }
    println!(
        "conformance: {ok} of {} issues conform, {bad} do not",
        files.len()
    );
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn check(settings: &Settings, file: &Path) -> Result<String, Vec<String>> {
    let preview = herald::preview::sample(settings, file).map_err(|e| vec![e.to_string()])?;
    let mut problems = Vec::new();
    let message = mail_parser::MessageParser::default()
        .parse(&preview.eml)
        .ok_or_else(|| vec!["the message does not parse as RFC 5322".to_string()])?;

    let html = message.body_html(0).map(|h| h.into_owned());
    let text = message.body_text(0).map(|t| t.into_owned());
    let is_alternative = message
        .root_part()
        .content_type()
        .is_some_and(|ct| ct.ctype() == "multipart" && ct.subtype() == Some("alternative"));
    if !is_alternative {
        problems.push("top level is not multipart/alternative".into());
    }
    let (Some(html), Some(text)) = (html, text) else {
        problems.push("a text/plain or text/html part is missing".into());
        return Err(problems);
    };
    if message.html_body_count() == 0 || message.text_body_count() == 0 {
        problems.push("text and HTML parts must both be present".into());
    }

    let subject = message.subject().unwrap_or_default();
    if subject != preview.issue.subject {
        problems.push(format!(
            "decoded subject {subject:?} differs from {:?}",
            preview.issue.subject
        ));
    }

    let attribute = Regex::new(r#"(?i)\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')"#).unwrap();
    let urls: Vec<String> = attribute
        .captures_iter(&html)
        .filter_map(|c| c.get(1).or(c.get(2)))
        .map(|m| html_escape::decode_html_entities(m.as_str()).into_owned())
        .collect();
    for url in &urls {
        let lower = url.to_ascii_lowercase();
        if !["http://", "https://", "mailto:"]
            .iter()
            .any(|s| lower.starts_with(s))
        {
            problems.push(format!("relative or unexpected URL in the HTML: {url:?}"));
        }
    }

    let base = url::Url::parse(&settings.newsletter.base_url).expect("checked by settings");
    let mut source_links = markdown_links(&preview.issue.body);
    if let Some(cover) = &preview.issue.cover {
        source_links.push(cover.clone());
    }
    let mut missing = 0;
    for link in &source_links {
        let link = link.trim();
        if link.is_empty() || link.starts_with('#') {
            continue;
        }
        // Only web and mail links may reach a mail; a source "link" with another scheme
        // (`<SOFA:ArkLab/>` reads as an autolink) is shown as text by design.
        if let Ok(parsed) = url::Url::parse(link) {
            if !matches!(parsed.scheme(), "http" | "https" | "mailto") {
                continue;
            }
        }
        let absolute = base.join(link).map(String::from).ok();
        let present = urls
            .iter()
            .any(|u| u == link || Some(u) == absolute.as_ref())
            || urls
                .iter()
                .any(|u| url::Url::parse(u).ok().map(String::from) == absolute);
        if !present {
            missing += 1;
            problems.push(format!("source link missing from the HTML: {link}"));
        }
    }

    let mut images = markdown_images(&preview.issue.body);
    images.extend(preview.issue.cover.clone());
    for image in &images {
        if let Some(problem) = missing_asset(settings, &base, image.trim()) {
            problems.push(problem);
        }
    }

    if html.len() >= GMAIL_CLIP_BYTES {
        problems.push(format!(
            "HTML part is {} bytes, Gmail clips from {GMAIL_CLIP_BYTES}",
            html.len()
        ));
    }
    if problems.is_empty() {
        Ok(format!(
            "html {:.1} KB, text {:.1} KB, {} links checked, {missing} missing",
            html.len() as f64 / 1024.0,
            text.len() as f64 / 1024.0,
            source_links.len()
        ))
    } else {
        Err(problems)
    }
}

/// Why a relative image would not be found where `herald serve` publishes
/// `newsletter.assets_dir`, if it would not.
fn missing_asset(settings: &Settings, base: &url::Url, image: &str) -> Option<String> {
    if image.is_empty() || url::Url::parse(image).is_ok() {
        return None;
    }
    let absolute = base.join(image).ok()?;
    let Some(path) = absolute.path().strip_prefix(base.path()) else {
        return Some(format!(
            "image {image} resolves to {absolute}, outside newsletter.base_url"
        ));
    };
    let path = percent_decode(path);
    let file = settings.newsletter.assets_dir.join(&path);
    (!file.is_file()).then(|| {
        format!(
            "image {image} is served from {}, which does not exist",
            file.display()
        )
    })
}

/// `%20` and friends decoded, for a file name.
fn percent_decode(path: &str) -> String {
    url::form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| path.to_string())
}

/// Every image destination in the Markdown (not raw HTML).
fn markdown_images(body: &str) -> Vec<String> {
    Parser::new_ext(body, Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES)
        .filter_map(|event| match event {
            Event::Start(Tag::Image { dest_url, .. }) => Some(dest_url.to_string()),
            _ => None,
        })
        .collect()
}

/// Every link and image destination in the Markdown, including raw HTML `href`/`src`.
fn markdown_links(body: &str) -> Vec<String> {
    let raw =
        Regex::new(r#"(?i)\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))"#).unwrap();
    let mut links = Vec::new();
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(body, options) {
        match event {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => links.push(dest_url.to_string()),
            Event::Html(html) | Event::InlineHtml(html) => {
                for c in raw.captures_iter(&html) {
                    if let Some(m) = c.get(1).or(c.get(2)).or(c.get(3)) {
                        links.push(m.as_str().to_string());
                    }
                }
            }
            _ => {}
        }
    }
    links
}
