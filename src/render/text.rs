//! The plain-text alternative, written from the Markdown events (not by stripping HTML).
//!
//! Headings are underlined (`=` and `-`) or prefixed (`###`), quotes prefixed with `> `,
//! lists bulleted, code blocks kept verbatim (indented four spaces), tables laid out as rows,
//! and links numbered (`text [1]`) with the URLs listed at the end. Lines wrap at
//! [`WIDTH`] display columns, with Unicode line breaking so CJK text without spaces wraps.

use pulldown_cmark::{Event, HeadingLevel, Tag, TagEnd};
use textwrap::{Options, WordSeparator};
use unicode_width::UnicodeWidthStr;

use super::raw::{self, Token};
use super::urls::Resolver;

/// The wrap width in display columns.
pub const WIDTH: usize = 76;

/// Wraps `text` to [`WIDTH`] with the given first-line and later-line prefixes. Words longer
/// than a line (URLs) are kept whole rather than split.
pub fn wrap(text: &str, first: &str, rest: &str) -> String {
    let options = Options::new(WIDTH)
        .initial_indent(first)
        .subsequent_indent(rest)
        .word_separator(WordSeparator::UnicodeBreakProperties)
        .break_words(false);
    let lines = textwrap::wrap(text, options);
    let mut out = String::with_capacity(text.len() + lines.len() * (rest.len() + 1));
    for line in lines {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A line under a heading, as wide as the heading's widest line.
pub fn underline(heading: &str, ch: char) -> String {
    let width = heading
        .lines()
        .map(UnicodeWidthStr::width)
        .max()
        .unwrap_or(0);
    ch.to_string().repeat(width.clamp(3, WIDTH))
}

/// The words the plain text writes itself, from the issue's catalog.
#[derive(Debug, Clone)]
pub struct Words {
    /// The heading above the numbered list of link targets.
    links: String,
    /// An image without alt text.
    image: String,
    /// An image with alt text: the message with a marker where `$alt` goes (`None` when a
    /// catalog's message leaves `$alt` out).
    image_alt: Option<String>,
}

/// Where an image's alt text goes in [`Words::image_alt`].
const ALT_MARKER: &str = "x-herald-alt-x";

impl Words {
    /// The words of `catalog`'s locale.
    pub fn of(catalog: &crate::i18n::Catalog) -> Self {
        // Formatted once with a marker, so each image costs a replacement.
        let alt = catalog.t_with(
            "mail-text-image-alt",
            &crate::i18n::args(&[("alt", ALT_MARKER.into())]),
        );
        Self {
            links: catalog.t("mail-text-links"),
            image: catalog.t("mail-text-image"),
            image_alt: alt.contains(ALT_MARKER).then_some(alt),
        }
    }

    fn image_with_alt(&self, alt: &str) -> String {
        match &self.image_alt {
            Some(pattern) => pattern.replacen(ALT_MARKER, alt, 1),
            None => format!("{} {alt}", self.image),
        }
    }
}

#[cfg(test)]
impl Words {
    /// English, as the built-in catalog has it.
    pub fn english() -> Self {
        Self::of(crate::i18n::Catalogs::built_in().default_catalog())
    }
}

/// Writes the body's plain text, followed by the numbered list of link targets under its
/// heading.
pub fn body(events: &[Event<'_>], resolver: &Resolver, words: &Words) -> String {
    let mut writer = Writer::new(resolver, words);
    for event in events {
        writer.event(event);
    }
    writer.finish()
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    header_rows: usize,
}

struct Writer<'r> {
    resolver: &'r Resolver,
    words: &'r Words,
    out: String,
    /// Prefix of every line in the current block (quote markers and list indents).
    prefixes: Vec<String>,
    /// Prefix of the next block's first line only (a list bullet or footnote label).
    first_prefix: Option<String>,
    /// Ordered lists carry their next number.
    lists: Vec<Option<u64>>,
    inline: String,
    soft_break: bool,
    blank_pending: bool,
    /// Numbered link targets, in order of first use.
    references: Vec<String>,
    /// Open links: target and where their text starts in `inline`.
    links: Vec<(Option<String>, usize)>,
    /// An open image: its target and alt text.
    image: Option<(String, String)>,
    code: Option<String>,
    table: Option<Table>,
    /// Raw HTML element whose content is not text (script, style) being skipped.
    skipping: Option<String>,
}

impl<'r> Writer<'r> {
    fn new(resolver: &'r Resolver, words: &'r Words) -> Self {
        Self {
            resolver,
            words,
            out: String::new(),
            prefixes: vec![String::new()],
            first_prefix: None,
            lists: Vec::new(),
            inline: String::new(),
            soft_break: false,
            blank_pending: false,
            references: Vec::new(),
            links: Vec::new(),
            image: None,
            code: None,
            table: None,
            skipping: None,
        }
    }

    fn prefix(&self) -> &str {
        self.prefixes.last().map_or("", String::as_str)
    }

    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(*tag),
            Event::Text(text) => self.text(text),
            Event::Code(code) => {
                self.text("`");
                self.text(code);
                self.text("`");
            }
            Event::SoftBreak => self.soft_break = true,
            Event::HardBreak => self.inline.push('\n'),
            Event::Rule => {
                self.flush();
                self.write_block("* * *\n");
            }
            Event::FootnoteReference(n) => self.text(&format!("[^{n}]")),
            Event::TaskListMarker(done) => self.text(if *done { "[x] " } else { "[ ] " }),
            Event::Html(html) | Event::InlineHtml(html) => self.raw_html(html),
            Event::InlineMath(m) | Event::DisplayMath(m) => self.text(m),
        }
    }

    fn start(&mut self, tag: &Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::Heading { .. } => self.flush(),
            Tag::BlockQuote(_) => {
                self.flush();
                self.write_block("");
                let prefix = format!("{}> ", self.take_first_prefix());
                self.prefixes.push(prefix);
            }
            Tag::List(start) => {
                self.flush();
                self.lists.push(*start);
            }
            Tag::Item => {
                self.flush();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "- ".to_string(),
                };
                let indent = format!("{}{}", self.prefix(), " ".repeat(marker.width()));
                self.first_prefix = Some(format!("{}{marker}", self.prefix()));
                self.prefixes.push(indent);
            }
            Tag::FootnoteDefinition(n) => {
                self.flush();
                let label = format!("[^{n}] ");
                let indent = format!("{}{}", self.prefix(), " ".repeat(label.width()));
                self.first_prefix = Some(format!("{}{label}", self.prefix()));
                self.prefixes.push(indent);
            }
            Tag::CodeBlock(_) => {
                self.flush();
                self.code = Some(String::new());
            }
            Tag::Table(_) => {
                self.flush();
                self.table = Some(Table::default());
            }
            Tag::TableHead | Tag::TableRow => {
                if let Some(table) = &mut self.table {
                    table.rows.push(Vec::new());
                }
            }
            Tag::TableCell => self.inline.clear(),
            Tag::Link { dest_url, .. } => {
                self.links
                    .push((Some(dest_url.to_string()), self.inline.len()));
            }
            Tag::Image { dest_url, .. } => self.image = Some((dest_url.to_string(), String::new())),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock => {
                self.flush();
                self.blank_pending = true;
            }
            TagEnd::Heading(level) => self.heading(level),
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.prefixes.pop();
                self.blank_pending = true;
            }
            TagEnd::Item | TagEnd::FootnoteDefinition => {
                self.flush();
                self.first_prefix = None;
                self.prefixes.pop();
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
                self.blank_pending = true;
            }
            TagEnd::CodeBlock => self.code_block(),
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.inline).replace('\n', " ");
                if let Some(row) = self.table.as_mut().and_then(|t| t.rows.last_mut()) {
                    row.push(cell.trim().to_string());
                }
            }
            TagEnd::TableHead => {
                if let Some(table) = &mut self.table {
                    table.header_rows = table.rows.len();
                }
            }
            TagEnd::Table => self.table(),
            TagEnd::Link => self.end_link(),
            TagEnd::Image => self.end_image(),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if let Some((_, alt)) = &mut self.image {
            alt.push_str(text);
            return;
        }
        if let Some(code) = &mut self.code {
            code.push_str(text);
            return;
        }
        if std::mem::take(&mut self.soft_break) {
            let joins_cjk = is_wide_end(&self.inline) && text.chars().next().is_some_and(is_wide);
            if !joins_cjk && !self.inline.is_empty() {
                self.inline.push(' ');
            }
        }
        self.inline.push_str(text);
    }

    fn reference(&mut self, url: &str) -> usize {
        match self.references.iter().position(|r| r == url) {
            Some(i) => i + 1,
            None => {
                self.references.push(url.to_string());
                self.references.len()
            }
        }
    }

    fn end_link(&mut self) {
        let Some((target, start)) = self.links.pop() else {
            return;
        };
        let Some(url) = target else { return };
        let text = self.inline.get(start..).unwrap_or("").trim();
        if !shows_url(text, &url) {
            let n = self.reference(&url);
            self.inline.push_str(&format!(" [{n}]"));
        }
    }

    fn end_image(&mut self) {
        let Some((url, alt)) = self.image.take() else {
            return;
        };
        let n = self.reference(&url);
        let alt = alt.trim();
        let label = if alt.is_empty() {
            self.words.image.clone()
        } else {
            self.words.image_with_alt(alt)
        };
        self.text(&format!("{label} [{n}]"));
    }

    fn take_first_prefix(&mut self) -> String {
        self.first_prefix
            .take()
            .unwrap_or_else(|| self.prefix().to_string())
    }

    /// Writes a finished block, after a blank line when one is due.
    fn write_block(&mut self, block: &str) {
        if self.blank_pending && !self.out.is_empty() {
            let blank = self.prefix().trim_end().to_string();
            self.out.push_str(&blank);
            self.out.push('\n');
        }
        self.blank_pending = false;
        self.out.push_str(block);
    }

    /// Wraps and writes the pending inline text as one block.
    fn flush(&mut self) {
        let text = std::mem::take(&mut self.inline);
        self.soft_break = false;
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let first = self.take_first_prefix();
        let wrapped = wrap(text, &first, self.prefix());
        self.write_block(&wrapped);
    }

    fn heading(&mut self, level: HeadingLevel) {
        let text = std::mem::take(&mut self.inline).trim().replace('\n', " ");
        if text.is_empty() {
            return;
        }
        let prefix = self.prefix().to_string();
        let block = match level {
            HeadingLevel::H1 | HeadingLevel::H2 => {
                let ch = if level == HeadingLevel::H1 { '=' } else { '-' };
                let wrapped = wrap(&text, &prefix, &prefix);
                let widest = wrapped
                    .lines()
                    .map(|l| l.get(prefix.len()..).unwrap_or("").to_string());
                let line = underline(&widest.collect::<Vec<_>>().join("\n"), ch);
                format!("{wrapped}{prefix}{line}\n")
            }
            _ => {
                let marks = "#".repeat(level as usize);
                wrap(&text, &format!("{prefix}{marks} "), &prefix)
            }
        };
        self.blank_pending = true;
        self.write_block(&block);
        self.blank_pending = true;
    }

    fn code_block(&mut self) {
        let code = self.code.take().unwrap_or_default();
        let prefix = format!("{}    ", self.take_first_prefix());
        let mut block = String::with_capacity(code.len() + 64);
        for line in code.trim_end_matches('\n').lines() {
            let line = format!("{prefix}{line}");
            block.push_str(line.trim_end());
            block.push('\n');
        }
        self.write_block(&block);
        self.blank_pending = true;
    }

    fn table(&mut self) {
        let Some(table) = self.table.take() else {
            return;
        };
        let block = layout_table(&table, self.prefix());
        self.write_block(&block);
        self.blank_pending = true;
    }

    fn raw_html(&mut self, html: &str) {
        for token in raw::tokens(html) {
            if let Some(skipped) = &self.skipping {
                if matches!(&token, Token::Tag(t) if t.closing && &t.name == skipped) {
                    self.skipping = None;
                }
                continue;
            }
            match token {
                Token::Text(t) => {
                    let decoded = html_escape::decode_html_entities(t);
                    let collapsed = decoded.replace('\n', " ");
                    if !collapsed.trim().is_empty() || !self.inline.is_empty() {
                        self.text(&collapsed);
                    }
                }
                Token::NotATag(t) => self.text(t),
                Token::Comment(_) => {}
                Token::Tag(tag) => self.raw_tag(&tag),
            }
        }
    }

    fn raw_tag(&mut self, tag: &raw::Tag<'_>) {
        match (tag.name.as_str(), tag.closing) {
            ("br", _) => self.inline.push('\n'),
            ("img", false) => {
                let url = tag.attribute("src").and_then(|s| self.resolver.resolve(&s));
                if let Some(url) = url {
                    self.image = Some((url, tag.attribute("alt").unwrap_or_default()));
                    self.end_image();
                }
            }
            ("a", false) => {
                let url = tag
                    .attribute("href")
                    .and_then(|h| self.resolver.resolve(&h));
                self.links.push((url, self.inline.len()));
            }
            ("a", true) => self.end_link(),
            ("script" | "style" | "template" | "title", false) => {
                self.skipping = Some(tag.name.clone());
            }
            ("p" | "div" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "li" | "tr", _) => {
                self.flush();
                self.blank_pending = true;
            }
            _ => {}
        }
    }

    fn finish(mut self) -> String {
        self.flush();
        if !self.references.is_empty() {
            self.blank_pending = true;
            self.prefixes.truncate(1);
            let heading = format!("{}\n", self.words.links);
            self.write_block(&heading);
            let list: String = self
                .references
                .iter()
                .enumerate()
                .map(|(i, url)| format!("[{}] {url}\n", i + 1))
                .collect();
            self.prefixes.truncate(1);
            self.write_block(&list);
        }
        self.out
    }
}

/// Whether a link's text already shows its target, so a reference number would only repeat.
fn shows_url(text: &str, url: &str) -> bool {
    let bare = |s: &str| {
        s.trim_start_matches("mailto:")
            .trim_end_matches('/')
            .to_ascii_lowercase()
    };
    !text.is_empty() && (text == url || bare(text) == bare(url))
}

fn is_wide(c: char) -> bool {
    unicode_width::UnicodeWidthChar::width(c) == Some(2)
}

fn is_wide_end(s: &str) -> bool {
    s.chars().next_back().is_some_and(is_wide)
}

/// Lays a table out as aligned columns when it fits the width, else one `a | b` line per row.
fn layout_table(table: &Table, prefix: &str) -> String {
    let columns = table.rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.width());
        }
    }
    let total = prefix.width() + widths.iter().sum::<usize>() + 3 * columns.saturating_sub(1);
    let aligned = total <= WIDTH;
    let mut out = String::new();
    for (r, row) in table.rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = if aligned && i + 1 < row.len() {
                    widths[i] - cell.width()
                } else {
                    0
                };
                format!("{cell}{}", " ".repeat(pad))
            })
            .collect();
        let line = cells.join(" | ");
        if aligned {
            out.push_str(&format!("{prefix}{}\n", line.trim_end()));
        } else {
            out.push_str(&wrap(&line, prefix, &format!("{prefix}  ")));
        }
        if r + 1 == table.header_rows {
            let rule_width = if aligned { total - prefix.width() } else { 3 };
            out.push_str(&format!("{prefix}{}\n", "-".repeat(rule_width)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::markdown;
    use url::Url;

    fn text(md: &str) -> String {
        let resolver = Resolver::new(
            Url::parse("https://news.example.org/").unwrap(),
            "https://news.example.org/archive/one".into(),
        );
        body(
            &markdown::events(md, &resolver),
            &resolver,
            &Words::english(),
        )
    }

    #[test]
    fn links_become_numbered_references_listed_at_the_end() {
        let out = text("Read [the post](/blog/x/) and [docs](https://docs.rs/) and [again](/blog/x/).\n\nBare: https://x.org/a.");
        assert_eq!(
            out,
            "Read the post [1] and docs [2] and again [1].\n\nBare: https://x.org/a.\n\nLinks\n\
             [1] https://news.example.org/blog/x/\n[2] https://docs.rs/\n"
        );
    }

    #[test]
    fn images_show_alt_text_and_a_reference() {
        let out = text("![A chart](img/c.png)\n\n<img src=\"/d.png\" alt=\"Diagram\">\n");
        assert!(
            out.starts_with("[image: A chart] [1]\n\n[image: Diagram] [2]\n"),
            "{out}"
        );
        assert!(out.contains("[2] https://news.example.org/d.png"), "{out}");
    }

    #[test]
    fn long_lines_wrap_at_76_columns_by_display_width() {
        let para = "word ".repeat(40);
        let out = text(&para);
        assert!(out.lines().count() > 2);
        assert!(out.lines().all(|l| l.width() <= WIDTH), "{out}");
    }

    #[test]
    fn cjk_without_spaces_wraps_without_splitting_characters() {
        let para = "这是一个没有空格的中文段落，用来检查换行是否正确。".repeat(6);
        let out = text(&para);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1, "{out}");
        assert!(lines.iter().all(|l| l.width() <= WIDTH), "{out}");
        assert_eq!(lines.concat(), para);
    }

    #[test]
    fn structure_is_marked_in_text() {
        let md = "# Big\n\n## Small\n\n### Third\n\n> quoted line\n\n- one\n- two\n  1. nested\n\n```\nfn main() {}\n```\n";
        let out = text(md);
        assert_eq!(
            out,
            "Big\n===\n\nSmall\n-----\n\n### Third\n\n> quoted line\n\n- one\n- two\n  1. nested\n\n    fn main() {}\n"
        );
    }

    #[test]
    fn odd_input_renders_without_panicking() {
        let out =
            text("> ##\n>\n> #\n\n- \n\n|a|\n|-|\n||\n\n[](/x) ![](javascript:x) www. http://");
        assert!(!out.contains("> -") && !out.contains("> ="), "{out}");
        assert!(out.lines().any(|l| l == "a"), "{out}");
        let long_cjk = "中文https://x.org/路径".repeat(2000);
        assert!(
            text(&long_cjk).contains("[1] https://x.org/")
                || text(&long_cjk).contains("https://x.org/")
        );
    }

    #[test]
    fn tables_become_aligned_rows() {
        let out = text("| Name | Count |\n|---|---|\n| herald | 1 |\n| 新闻 | 22 |\n");
        assert_eq!(
            out,
            "Name   | Count\n--------------\nherald | 1\n新闻   | 22\n"
        );
    }

    #[test]
    fn quotes_wrap_with_their_prefix_and_footnotes_are_labelled() {
        let md = format!(
            "> {}\n\nClaim[^a].\n\n[^a]: The source.\n",
            "long ".repeat(30)
        );
        let out = text(&md);
        assert!(out.lines().take(2).all(|l| l.starts_with("> ")), "{out}");
        assert!(out.contains("Claim[^1]."), "{out}");
        assert!(out.contains("[^1] The source."), "{out}");
    }
}
