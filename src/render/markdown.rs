//! Parsing an issue's Markdown into the event stream both outputs are built from.
//!
//! The stream is CommonMark with GFM tables, strikethrough, task lists and footnotes. It is
//! rewritten once here so the HTML and plain-text writers agree: link and image targets are
//! absolute (or dropped when unsafe), bare URLs in text become links, and footnotes are
//! labelled by their number.

use std::collections::HashMap;

use pulldown_cmark::{CowStr, Event, LinkType, Parser, Tag, TagEnd, TextMergeStream};

use super::urls::{linkify, Piece, Resolver};

/// Parses `body` and rewrites its events as described in the module docs.
pub fn events<'a>(body: &'a str, resolver: &Resolver) -> Vec<Event<'a>> {
    let parsed: Vec<Event<'a>> =
        TextMergeStream::new(Parser::new_ext(body, crate::issue::markdown_options())).collect();
    let numbers = footnote_numbers(&parsed);
    let mut rewriter = Rewriter {
        resolver,
        numbers,
        out: Vec::with_capacity(parsed.len() + 16),
        links: Vec::new(),
        skipped_image_depth: 0,
        in_code_block: false,
        raw_anchor_depth: 0,
    };
    for event in parsed {
        rewriter.push(event);
    }
    rewriter.out
}

/// Footnote numbers: by first reference, then any definitions never referenced.
fn footnote_numbers(events: &[Event<'_>]) -> HashMap<String, usize> {
    let mut numbers = HashMap::new();
    let references = events.iter().filter_map(|e| match e {
        Event::FootnoteReference(label) => Some(label),
        _ => None,
    });
    let definitions = events.iter().filter_map(|e| match e {
        Event::Start(Tag::FootnoteDefinition(label)) => Some(label),
        _ => None,
    });
    for label in references.chain(definitions) {
        let next = numbers.len() + 1;
        numbers.entry(label.to_string()).or_insert(next);
    }
    numbers
}

/// What the rewriter did with a link's start, so it can do the same with its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenLink {
    Kept,
    /// The target was unsafe: the text stays, unlinked.
    Dropped,
    /// An autolink with a scheme herald does not link (`<SOFA:ArkLab/>` in prose): it is
    /// shown as the text it was, angle brackets included.
    Literal,
}

struct Rewriter<'r, 'a> {
    resolver: &'r Resolver,
    numbers: HashMap<String, usize>,
    out: Vec<Event<'a>>,
    /// For each open Markdown link, what became of its start.
    links: Vec<OpenLink>,
    /// Nesting depth inside an image whose source was unsafe (its alt text is dropped too).
    skipped_image_depth: usize,
    in_code_block: bool,
    /// Nesting depth inside raw `<a ...>` tags, whose text must not be linkified again.
    raw_anchor_depth: usize,
}

impl<'a> Rewriter<'_, 'a> {
    fn push(&mut self, event: Event<'a>) {
        if self.skipped_image_depth > 0 {
            match event {
                Event::Start(Tag::Image { .. }) => self.skipped_image_depth += 1,
                Event::End(TagEnd::Image) => self.skipped_image_depth -= 1,
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let open = match self.resolver.resolve(&dest_url) {
                    Some(url) => {
                        self.out.push(Event::Start(Tag::Link {
                            link_type,
                            dest_url: url.into(),
                            title,
                            id,
                        }));
                        OpenLink::Kept
                    }
                    None if link_type == LinkType::Autolink => {
                        self.out.push(Event::Text("<".into()));
                        OpenLink::Literal
                    }
                    None => OpenLink::Dropped,
                };
                self.links.push(open);
            }
            Event::End(TagEnd::Link) => match self.links.pop() {
                Some(OpenLink::Kept) => self.out.push(Event::End(TagEnd::Link)),
                Some(OpenLink::Literal) => self.out.push(Event::Text(">".into())),
                Some(OpenLink::Dropped) | None => {}
            },
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => match self.resolver.resolve(&dest_url) {
                Some(url) => self.out.push(Event::Start(Tag::Image {
                    link_type,
                    dest_url: url.into(),
                    title,
                    id,
                })),
                None => self.skipped_image_depth = 1,
            },
            Event::Start(Tag::CodeBlock(kind)) => {
                self.in_code_block = true;
                self.out.push(Event::Start(Tag::CodeBlock(kind)));
            }
            Event::End(TagEnd::CodeBlock) => {
                self.in_code_block = false;
                self.out.push(Event::End(TagEnd::CodeBlock));
            }
            Event::InlineHtml(html) => {
                self.track_raw_anchor(&html);
                self.out.push(Event::InlineHtml(html));
            }
            Event::Text(text) if self.may_linkify() => self.push_linkified(text),
            Event::FootnoteReference(label) => {
                let number = self.number(&label);
                self.out.push(Event::FootnoteReference(number));
            }
            Event::Start(Tag::FootnoteDefinition(label)) => {
                let number = self.number(&label);
                self.out.push(Event::Start(Tag::FootnoteDefinition(number)));
            }
            other => self.out.push(other),
        }
    }

    fn may_linkify(&self) -> bool {
        self.links.is_empty() && !self.in_code_block && self.raw_anchor_depth == 0
    }

    fn number(&self, label: &str) -> CowStr<'a> {
        self.numbers
            .get(label)
            .map_or_else(|| CowStr::from(label.to_string()), |n| n.to_string().into())
    }

    fn track_raw_anchor(&mut self, html: &str) {
        let lower = html.trim_start().to_ascii_lowercase();
        if lower.starts_with("</a>") || lower.starts_with("</a ") {
            self.raw_anchor_depth = self.raw_anchor_depth.saturating_sub(1);
        } else if lower.starts_with("<a ") || lower.starts_with("<a>") {
            self.raw_anchor_depth += 1;
        }
    }

    fn push_linkified(&mut self, text: CowStr<'a>) {
        let pieces = linkify(&text);
        if !pieces.iter().any(|p| matches!(p, Piece::Url { .. })) {
            self.out.push(Event::Text(text));
            return;
        }
        for piece in pieces {
            match piece {
                Piece::Text(t) => self.out.push(Event::Text(t.to_string().into())),
                Piece::Url { text, href } => {
                    self.out.push(Event::Start(Tag::Link {
                        link_type: LinkType::Autolink,
                        dest_url: href.into(),
                        title: CowStr::Borrowed(""),
                        id: CowStr::Borrowed(""),
                    }));
                    self.out.push(Event::Text(text.to_string().into()));
                    self.out.push(Event::End(TagEnd::Link));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    fn resolver() -> Resolver {
        Resolver::new(
            Url::parse("https://news.example.org/").unwrap(),
            "https://news.example.org/archive/one".into(),
        )
    }

    fn link_targets(events: &[Event<'_>]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                    Some(dest_url.to_string())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn links_and_images_become_absolute_and_bare_urls_become_links() {
        let md = "[post](/blog/x/) ![a](img/a.png) see https://x.org/a.\n\n`https://not.me/` \
                  and [https://keep.org](https://keep.org)";
        let events = events(md, &resolver());
        assert_eq!(
            link_targets(&events),
            vec![
                "https://news.example.org/blog/x/",
                "https://news.example.org/img/a.png",
                "https://x.org/a",
                "https://keep.org/",
            ]
        );
    }

    #[test]
    fn unsafe_link_keeps_its_text_and_unsafe_image_disappears() {
        let md = "[click](javascript:alert(1)) ![evil](javascript:alert(2)) after";
        let events = events(md, &resolver());
        assert!(link_targets(&events).is_empty());
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                Event::Text(t) => Some(t.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "click  after");
    }

    #[test]
    fn autolink_lookalikes_in_prose_stay_visible() {
        let events = events("Run <SOFA:ArkLab/> now", &resolver());
        assert!(link_targets(&events).is_empty());
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                Event::Text(t) => Some(t.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "Run <SOFA:ArkLab/> now");
    }

    #[test]
    fn footnotes_are_numbered_by_first_reference() {
        let md = "b[^b] a[^a] b again[^b]\n\n[^a]: A.\n[^b]: B.\n";
        let events = events(md, &resolver());
        let refs: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::FootnoteReference(n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(refs, vec!["1", "2", "1"]);
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::Start(Tag::FootnoteDefinition(n)) if n.as_ref() == "2")));
    }
}
