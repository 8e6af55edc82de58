//! The HTML fragment of an issue's body: Markdown events to HTML, sanitised by ammonia, then
//! re-serialised as well-formed markup with inline styles that mail clients keep.
//!
//! mrml parses the fragment as XML-like markup inside `<mj-text>`, so every element must be
//! closed and void elements self-closed (`<br />`). Gmail drops `<style>` blocks in some
//! views and Outlook ignores most of them, so styling is written into `style` attributes.

use std::borrow::Cow;
use std::collections::HashSet;

use ammonia::{Builder, UrlRelative, UrlRelativeEvaluate};
use pulldown_cmark::{Event, Tag, TagEnd};

use super::raw;
use super::urls::Resolver;
use super::RenderError;

/// The deepest element nesting of a fragment handed to mrml, which parses recursively. Issue
/// files are refused well before this (`issue::limits`); this guards the renderer itself, so
/// no input that reaches it, however it got there, can overflow a stack in mrml.
pub const MAX_FRAGMENT_DEPTH: usize = 256;

/// Renders rewritten Markdown events (see [`super::markdown::events`]) to a safe fragment.
pub fn fragment(events: &[Event<'_>], resolver: &Resolver) -> Result<String, RenderError> {
    let mut unsafe_html = String::with_capacity(events.len() * 16);
    pulldown_cmark::html::push_html(&mut unsafe_html, prepare(events).into_iter());
    let clean = sanitiser(resolver).clean(&unsafe_html).to_string();
    let (html, depth) = well_formed(&clean);
    if depth > MAX_FRAGMENT_DEPTH {
        return Err(RenderError::TooDeep {
            depth,
            max: MAX_FRAGMENT_DEPTH,
        });
    }
    Ok(html)
}

/// Guards raw HTML and turns footnotes into plain numbered markers (fragment links do not
/// work reliably in mail).
fn prepare<'a>(events: &'a [Event<'a>]) -> Vec<Event<'a>> {
    let mut out = Vec::with_capacity(events.len());
    let mut pending_marker = None;
    let mut seen_definition = false;
    for event in events {
        match event {
            Event::Html(html) => out.push(Event::Html(raw::guard(html).into())),
            Event::InlineHtml(html) => out.push(Event::InlineHtml(raw::guard(html).into())),
            Event::FootnoteReference(n) => {
                out.push(Event::InlineHtml(format!("<sup>[{n}]</sup>").into()));
            }
            Event::Start(Tag::FootnoteDefinition(n)) => {
                if !seen_definition {
                    out.push(Event::Html("<hr>".into()));
                    seen_definition = true;
                }
                out.push(Event::Html("<div>".into()));
                pending_marker = Some(n.clone());
            }
            Event::End(TagEnd::FootnoteDefinition) => out.push(Event::Html("</div>".into())),
            Event::Start(Tag::Paragraph) if pending_marker.is_some() => {
                out.push(event.clone());
                if let Some(n) = pending_marker.take() {
                    out.push(Event::InlineHtml(format!("<sup>[{n}]</sup> ").into()));
                }
            }
            other => out.push(other.clone()),
        }
    }
    out
}

/// The ammonia policy: its default safe tag list, plus table alignment, only http(s) and
/// mailto URLs, and relative URLs in raw HTML resolved like Markdown ones.
fn sanitiser(resolver: &Resolver) -> Builder<'static> {
    let resolver = resolver.clone();
    let mut builder = Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(UrlRelative::Custom(Box::new(RelativeUrls(resolver))))
        .link_rel(None)
        .add_tag_attributes("th", ["style"])
        .add_tag_attributes("td", ["style"])
        .filter_style_properties(HashSet::from(["text-align"]));
    builder
}

/// What the sanitiser removes from one raw HTML snippet of an issue, in words: elements
/// (`the <script> element and its content`) and attributes (`the onclick attribute of
/// <a>`). Comments and text that only looks like a tag (shown as text) are not removals.
pub fn removed_by_sanitiser(raw_html: &str) -> Vec<String> {
    let resolver = Resolver::new(
        url::Url::parse("https://herald.invalid/").expect("a fixed URL parses"),
        "https://herald.invalid/archive".into(),
    );
    let cleaner = sanitiser(&resolver);
    let mut removed = Vec::new();
    for token in raw::tokens(raw_html) {
        let raw::Token::Tag(tag) = token else {
            continue;
        };
        if tag.closing {
            continue;
        }
        let probe = format!("{}</{}>", tag.source, tag.name);
        let clean = cleaner.clean(&probe).to_string();
        let kept = raw::tokens(&clean).into_iter().find_map(|t| match t {
            raw::Token::Tag(t) if !t.closing && t.name == tag.name => Some(t),
            _ => None,
        });
        let Some(kept) = kept else {
            let content = if matches!(tag.name.as_str(), "script" | "style") {
                " and its content"
            } else {
                ""
            };
            removed.push(format!("the <{}> element{content}", tag.name));
            continue;
        };
        for (name, value) in raw::attribute_pairs(tag.source) {
            let name = name.to_ascii_lowercase();
            match kept.attribute(&name) {
                None => removed.push(format!("the {name} attribute of <{}>", tag.name)),
                Some(after) if name == "style" && squeeze(&after) != squeeze(&value) => {
                    removed.push(format!("styles other than text-align on <{}>", tag.name))
                }
                Some(_) => {}
            }
        }
    }
    removed.dedup();
    removed
}

/// A style value without whitespace or a trailing `;`, for comparing.
fn squeeze(style: &str) -> String {
    let s: String = style.chars().filter(|c| !c.is_whitespace()).collect();
    s.trim_end_matches(';').to_string()
}

/// Lets ammonia resolve relative URLs in raw HTML exactly like Markdown links.
struct RelativeUrls(Resolver);

impl<'a> UrlRelativeEvaluate<'a> for RelativeUrls {
    fn evaluate<'url>(&self, url: &'url str) -> Option<Cow<'url, str>> {
        self.0.resolve(url).map(Cow::Owned)
    }
}

/// Elements HTML writes without an end tag.
fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area" | "br" | "col" | "hr" | "img" | "wbr" | "source" | "track" | "embed" | "input"
    )
}

/// Rewrites ammonia's HTML5 serialisation so mrml accepts it: void elements self-closed and
/// styles inlined. The input's shape is known: text has `<`, `>` and `&` escaped, and
/// attribute values are double-quoted with `"` and `&` escaped. Also returns the deepest
/// element nesting.
fn well_formed(html: &str) -> (String, usize) {
    let mut out = String::with_capacity(html.len() * 2);
    let mut pre_depth = 0usize;
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        rest = &rest[lt..];
        let end = tag_end(rest);
        let tag = &rest[..end];
        rest = &rest[end..];
        if let Some(name) = tag.strip_prefix("</") {
            if name.trim_end_matches('>').eq_ignore_ascii_case("pre") {
                pre_depth = pre_depth.saturating_sub(1);
            }
            depth = depth.saturating_sub(1);
            out.push_str(tag);
            continue;
        }
        if tag.starts_with("<!") {
            continue;
        }
        let start = StartTag::parse(tag);
        if start.name == "pre" {
            pre_depth += 1;
        }
        if !is_void(&start.name) {
            depth += 1;
            max_depth = max_depth.max(depth);
        }
        start.write(&mut out, style_for(&start.name, pre_depth > 0));
    }
    out.push_str(rest);
    (out, max_depth)
}

/// The byte length of the tag at the start of `s`, honouring double-quoted values.
fn tag_end(s: &str) -> usize {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '>' if !quoted => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// A start tag from ammonia's output.
struct StartTag<'a> {
    name: String,
    /// Names and still-escaped values.
    attributes: Vec<(&'a str, &'a str)>,
}

impl<'a> StartTag<'a> {
    fn parse(tag: &'a str) -> Self {
        let inner = tag
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim_end_matches('/');
        let name_end = inner
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(inner.len());
        let mut attributes = Vec::new();
        let mut rest = &inner[name_end..];
        loop {
            rest = rest.trim_start();
            let Some(eq) = rest.find('=') else {
                if !rest.is_empty() {
                    attributes.push((rest, ""));
                }
                break;
            };
            let name = rest[..eq].trim();
            let after = rest[eq + 1..].trim_start();
            let Some(body) = after.strip_prefix('"') else {
                break;
            };
            let close = body.find('"').unwrap_or(body.len());
            attributes.push((name, &body[..close]));
            rest = body.get(close + 1..).unwrap_or("");
        }
        Self {
            name: inner[..name_end].to_ascii_lowercase(),
            attributes,
        }
    }

    fn write(&self, out: &mut String, style: Option<&str>) {
        out.push('<');
        out.push_str(&self.name);
        let mut own_style = None;
        for (name, value) in &self.attributes {
            if name.eq_ignore_ascii_case("style") {
                own_style = Some(*value);
                continue;
            }
            push_attribute(out, name, value);
        }
        // Every image has a text alternative: one without is decoration to a screen reader.
        if self.name == "img"
            && !self
                .attributes
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("alt"))
        {
            push_attribute(out, "alt", "");
        }
        match (style, own_style) {
            (Some(ours), Some(theirs)) => push_attribute(out, "style", &format!("{ours};{theirs}")),
            (Some(ours), None) => push_attribute(out, "style", ours),
            (None, Some(theirs)) => push_attribute(out, "style", theirs),
            (None, None) => {}
        }
        out.push_str(if is_void(&self.name) { " />" } else { ">" });
    }
}

fn push_attribute(out: &mut String, name: &str, escaped_value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    out.push_str(escaped_value);
    out.push('"');
}

const MONO: &str = "font-family:Menlo,Consolas,'Liberation Mono',monospace";

/// The inline style for an element, tuned for Gmail, Apple Mail and Outlook on a 600px
/// column that shrinks to a phone's width.
fn style_for(name: &str, in_pre: bool) -> Option<&'static str> {
    Some(match name {
        "h1" => "font-size:24px;line-height:1.3;margin:28px 0 12px;font-weight:bold",
        "h2" => "font-size:20px;line-height:1.3;margin:26px 0 10px;font-weight:bold",
        "h3" => "font-size:18px;line-height:1.35;margin:22px 0 8px;font-weight:bold",
        "h4" | "h5" | "h6" => "font-size:16px;line-height:1.4;margin:20px 0 8px;font-weight:bold",
        "p" => "margin:0 0 16px",
        "a" => "color:#1a5fb4;text-decoration:underline;word-break:break-word;overflow-wrap:anywhere",
        "blockquote" => {
            "margin:0 0 16px;padding:8px 16px;border-left:4px solid #c9d1d9;background:#f6f8fa;color:#3d444d"
        }
        "ul" | "ol" => "margin:0 0 16px;padding:0 0 0 24px",
        "li" => "margin:0 0 6px",
        "pre" => {
            "margin:0 0 16px;padding:12px;background:#f6f8fa;border-radius:4px;font-size:13px;\
             line-height:1.45;white-space:pre-wrap;word-wrap:break-word;word-break:break-all;overflow-x:auto;\
             font-family:Menlo,Consolas,'Liberation Mono',monospace"
        }
        "code" if in_pre => MONO,
        "code" => {
            "font-family:Menlo,Consolas,'Liberation Mono',monospace;font-size:90%;background:#f0f2f4;\
             padding:1px 4px;border-radius:3px;word-break:break-word"
        }
        "table" => "border-collapse:collapse;width:100%;margin:0 0 16px;font-size:14px",
        "th" => {
            "border:1px solid #d0d7de;padding:6px 8px;text-align:left;background:#f6f8fa;word-break:break-word"
        }
        "td" => "border:1px solid #d0d7de;padding:6px 8px;text-align:left;word-break:break-word",
        "img" => "max-width:100%;height:auto;border:0",
        "hr" => "border:0;border-top:1px solid #d0d7de;margin:24px 0",
        "sup" => "font-size:75%;line-height:0",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::markdown;
    use url::Url;

    fn render(md: &str) -> String {
        let resolver = Resolver::new(
            Url::parse("https://news.example.org/").unwrap(),
            "https://news.example.org/archive/one".into(),
        );
        fragment(&markdown::events(md, &resolver), &resolver).unwrap()
    }

    /// Parses `fragment` the way the layout does, inside an mj-text.
    fn mrml_accepts(fragment: &str) -> bool {
        let mjml = format!(
            "<mjml><mj-body><mj-column><mj-text>{fragment}</mj-text></mj-column></mj-body></mjml>"
        );
        mrml::parse(mjml).is_ok()
    }

    #[test]
    fn tricky_raw_html_comes_out_well_formed() {
        let md = "Hi <br> there<br/>\n\n<img src=img/x.png width=100%>\n\n<p>open paragraph\n\n\
                  Text with <SOFA:ArkLab/> and < RegisterRMRequest{id} > inside.\n";
        let html = render(md);
        assert!(mrml_accepts(&html), "mrml rejected: {html}");
        assert!(html.contains("<br />"), "{html}");
        assert!(
            html.contains(r#"<img src="https://news.example.org/img/x.png" width="100%" alt="" style="max-width:100%;height:auto;border:0" />"#),
            "{html}"
        );
        assert!(html.contains("&lt;SOFA:ArkLab/&gt;"), "{html}");
        assert!(html.contains("&lt; RegisterRMRequest{id} &gt;"), "{html}");
        let after_open = &html[html.find("open paragraph").unwrap()..];
        assert!(after_open[..after_open.find('<').unwrap()].trim() == "open paragraph");
        assert!(
            after_open[after_open.find('<').unwrap()..].starts_with("</p>"),
            "{html}"
        );
    }

    #[test]
    fn scripts_handlers_and_javascript_urls_are_removed() {
        let md = "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)> \
                  <a href=\"javascript:alert(1)\" onclick=\"x()\">a</a> <style>p{}</style>\n";
        let html = render(md);
        let lower = html.to_ascii_lowercase();
        for bad in [
            "<script",
            "alert(1)",
            "onerror",
            "onclick",
            "javascript:",
            "<style",
        ] {
            assert!(!lower.contains(bad), "{bad} survived in {html}");
        }
        assert!(mrml_accepts(&html));
    }

    #[test]
    fn blocks_get_inline_styles_and_code_stays_in_the_column() {
        let md = "## Title\n\n> a quote\n\n```\nlet x = 1;\n```\n\n`inline` \n\n| a | b |\n|--:|---|\n| 1 | 2 |\n";
        let html = render(md);
        assert!(html.contains("<h2 style=\"font-size:20px"), "{html}");
        assert!(html.contains("<blockquote style=\"margin:0 0 16px;padding:8px 16px;border-left"));
        assert!(html.contains("white-space:pre-wrap"));
        assert!(html.contains("<code style=\"font-family:Menlo"));
        assert!(html.contains("text-align:right"), "{html}");
        assert!(mrml_accepts(&html));
    }

    #[test]
    fn footnotes_become_numbered_markers_without_fragment_links() {
        let html = render("Claim[^n].\n\n[^n]: Source.\n");
        assert!(
            html.contains("<sup style=\"font-size:75%;line-height:0\">[1]</sup>"),
            "{html}"
        );
        assert!(!html.contains("href=\"#"), "{html}");
        assert!(html.contains("Source."));
    }
}
