//! Bounds on what one issue file may ask of herald, checked before anything is rendered, so
//! that no file (a mistake, or a hostile one in a shared folder) can take the process down or
//! tie it up: its size, the size and nesting of its front matter, the length of its subject,
//! and the nesting and number of elements of its body.
//!
//! Each bound is far above what a newsletter needs (the largest real weekly issue we know of
//! is 8 KB with a few hundred elements and nesting of 5), and far below what would hurt:
//! mrml parses recursively, so a body nested a few thousand levels deep overflows a thread's
//! stack; YAML parsers take time quadratic in the nesting of flow collections; and a table of
//! a million cells takes gigabytes to sanitise and lay out.

use std::ops::Range;

use pulldown_cmark::{Event, Parser};

use super::IssueErrorKind;
use crate::render::{raw_html_nesting, RawNesting};

/// The size bound, from `newsletter.max_issue_bytes`; the others are fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueLimits {
    /// The largest issue file read, in bytes.
    pub max_bytes: u64,
}

impl IssueLimits {
    /// 1 MiB: a hundred times the largest real issue.
    pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;
}

impl Default for IssueLimits {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// The largest front matter, in bytes.
pub const MAX_FRONT_MATTER_BYTES: usize = 64 * 1024;
/// The deepest nesting of `[` and `{` in front matter.
pub const MAX_FRONT_MATTER_NESTING: usize = 32;
/// The longest title or subject, in characters (a subject is folded onto lines of at most
/// 78 characters when sent; this only refuses what no reader could take in).
pub const MAX_SUBJECT_CHARS: usize = 500;
/// The deepest nesting of the body: lists, quotes and other Markdown blocks, and raw HTML
/// elements, together.
pub const MAX_BODY_NESTING: usize = 64;
/// The most elements (paragraphs, list items, links, table cells, raw HTML tags, ...) in a
/// body.
pub const MAX_BODY_ELEMENTS: usize = 20_000;

type Failure = (Option<usize>, IssueErrorKind);

/// The 1-based line of byte `offset` in `text`, counted from `first_line`.
fn line_at(text: &str, offset: usize, first_line: usize) -> usize {
    first_line + text[..offset.min(text.len())].matches('\n').count()
}

/// Refuses front matter that is too large, or whose flow collections (`[`, `{`) nest too
/// deeply. Brackets inside quoted strings and comments do not count; a bracket in a plain
/// value may, which only ever counts too many, never too few.
pub(super) fn check_front_matter(front: &str, front_line: usize) -> Result<(), Failure> {
    if front.len() > MAX_FRONT_MATTER_BYTES {
        return Err((
            Some(front_line),
            IssueErrorKind::FrontMatterTooLarge {
                size: front.len(),
                max: MAX_FRONT_MATTER_BYTES,
            },
        ));
    }
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    for (i, c) in front.char_indices() {
        if c == '\n' {
            comment = false;
            continue;
        }
        if comment {
            continue;
        }
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '#' => comment = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_FRONT_MATTER_NESTING {
                        return Err((
                            Some(line_at(front, i, front_line)),
                            IssueErrorKind::FrontMatterTooDeep {
                                max: MAX_FRONT_MATTER_NESTING,
                            },
                        ));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    Ok(())
}

/// Refuses a title or subject longer than [`MAX_SUBJECT_CHARS`].
pub(super) fn check_subject(
    field: &'static str,
    value: &str,
    line: Option<usize>,
) -> Result<(), Failure> {
    let chars = value.chars().count();
    if chars > MAX_SUBJECT_CHARS {
        return Err((
            line,
            IssueErrorKind::BadField {
                field,
                problem: format!(
                    "is {chars} characters long; a subject line may have at most \
                     {MAX_SUBJECT_CHARS}{}",
                    if field == "title" {
                        " (or set a shorter `subject`)"
                    } else {
                        ""
                    }
                ),
            },
        ));
    }
    Ok(())
}

/// Refuses a body nested deeper than [`MAX_BODY_NESTING`] or with more than
/// [`MAX_BODY_ELEMENTS`] elements, naming the line where the bound is passed. The body is
/// read as the renderer reads it (the same Markdown dialect), and raw HTML tags count as the
/// browser would nest them: an end tag closes the innermost open element of its name, and
/// an end tag with no open element of its name closes nothing.
pub(super) fn check_body(body: &str, body_line: usize) -> Result<(), Failure> {
    let mut blocks: Vec<usize> = Vec::new();
    let mut html: Vec<String> = Vec::new();
    let mut elements = 0usize;
    let fail = |range: Range<usize>, kind| Err((Some(line_at(body, range.start, body_line)), kind));
    for (event, range) in Parser::new_ext(body, super::markdown_options()).into_offset_iter() {
        match event {
            Event::Start(_) => {
                // The raw HTML opened inside this block ends with it.
                blocks.push(html.len());
                elements += 1;
            }
            Event::End(_) => {
                if let Some(open) = blocks.pop() {
                    html.truncate(open);
                }
            }
            Event::Html(raw) | Event::InlineHtml(raw) => {
                for tag in raw_html_nesting(&raw) {
                    match tag {
                        RawNesting::Open(name) => {
                            html.push(name);
                            elements += 1;
                        }
                        RawNesting::Close(name) => {
                            let floor = blocks.last().copied().unwrap_or(0);
                            if let Some(at) = html[floor..].iter().rposition(|n| *n == name) {
                                html.truncate(floor + at);
                            }
                        }
                        RawNesting::Void => elements += 1,
                    }
                    if blocks.len() + html.len() > MAX_BODY_NESTING {
                        return fail(
                            range,
                            IssueErrorKind::BodyTooDeep {
                                max: MAX_BODY_NESTING,
                            },
                        );
                    }
                }
            }
            _ => {}
        }
        if blocks.len() + html.len() > MAX_BODY_NESTING {
            return fail(
                range,
                IssueErrorKind::BodyTooDeep {
                    max: MAX_BODY_NESTING,
                },
            );
        }
        if elements > MAX_BODY_ELEMENTS {
            return fail(
                range,
                IssueErrorKind::BodyTooLarge {
                    max: MAX_BODY_ELEMENTS,
                },
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_error(body: &str) -> Option<(Option<usize>, String)> {
        check_body(body, 10)
            .err()
            .map(|(line, kind)| (line, kind.to_string()))
    }

    #[test]
    fn ordinary_nesting_passes() {
        let md = "- a\n  - b\n    - c\n\n> quote\n> > nested\n\n<div><p>x</p></div>\n";
        assert_eq!(body_error(md), None);
    }

    #[test]
    fn deep_lists_and_quotes_are_refused_at_their_line() {
        let lists = format!("Intro\n\n{}x\n", "- ".repeat(1000));
        let (line, message) = body_error(&lists).unwrap();
        assert_eq!(line, Some(12));
        assert!(message.contains("64 levels"), "{message}");
        let quotes = format!("{}x\n", ">".repeat(10_000));
        assert_eq!(body_error(&quotes).unwrap().0, Some(10));
    }

    #[test]
    fn raw_html_nests_as_a_browser_would() {
        // An end tag that matches nothing closes nothing: the divs stay open.
        let unclosed = "<div></span>".repeat(100);
        assert!(body_error(&format!("{unclosed}\n")).is_some());
        let closed = "<div>x</div>".repeat(1000);
        assert_eq!(body_error(&format!("{closed}\n")), None);
    }

    #[test]
    fn a_body_of_too_many_elements_is_refused() {
        let table = format!("|a|b|\n|-|-|\n{}", "|x|y|\n".repeat(10_000));
        let (_, message) = body_error(&table).unwrap();
        assert!(message.contains("20000 elements"), "{message}");
    }

    #[test]
    fn front_matter_nesting_is_bounded_outside_quotes_and_comments() {
        assert!(check_front_matter("tags: [\"[[[[\", '{{{{']\n# [[[[[[\n", 2).is_ok());
        let deep = format!("title: x\nother: {}\n", "[".repeat(1_000));
        let (line, kind) = check_front_matter(&deep, 2).unwrap_err();
        assert_eq!(line, Some(3));
        assert!(matches!(kind, IssueErrorKind::FrontMatterTooDeep { .. }));
        let big = format!("title: x\nnotes: \"{}\"\n", "a".repeat(70_000));
        assert!(matches!(
            check_front_matter(&big, 2).unwrap_err().1,
            IssueErrorKind::FrontMatterTooLarge { .. }
        ));
    }

    #[test]
    fn an_absurd_subject_is_refused_and_names_the_way_out() {
        assert!(check_subject("title", &"x".repeat(500), Some(2)).is_ok());
        let (line, kind) = check_subject("title", &"x".repeat(501), Some(2)).unwrap_err();
        assert_eq!(line, Some(2));
        assert!(kind.to_string().contains("shorter `subject`"), "{kind}");
    }
}
