//! Raw HTML written inside Markdown: telling real tags from text that only looks like one.
//!
//! Issues contain `<img src=... width=100%>` and `<br/>`, but also prose such as
//! `<SOFA:ArkLab/>` or `<bean id="x">` that is meant to be read. Only tags naming a known
//! HTML element are kept as markup; anything else becomes escaped, visible text.

/// A lexical piece of a raw HTML snippet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// Text between tags (entities not decoded).
    Text(&'a str),
    /// A tag naming a known HTML element, exactly as written.
    Tag(Tag<'a>),
    /// `<!-- ... -->`.
    Comment(&'a str),
    /// Something starting with `<` that is not a known tag; shown as text.
    NotATag(&'a str),
}

/// A start or end tag of a known HTML element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag<'a> {
    /// Lower-case element name.
    pub name: String,
    pub closing: bool,
    /// The whole tag as written, `<` to `>`.
    pub source: &'a str,
}

impl Tag<'_> {
    /// The value of attribute `name`, entities decoded, if the tag has it.
    pub fn attribute(&self, name: &str) -> Option<String> {
        attributes(self.source)
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| html_escape::decode_html_entities(v).into_owned())
    }
}

/// How a tag of raw HTML changes the nesting of what it sits in (see [`nesting`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nesting {
    /// A start tag of an element that holds content, by its lower-case name (`<div/>` too:
    /// HTML ignores the slash on an element that is not void).
    Open(String),
    /// An end tag, by its lower-case name.
    Close(String),
    /// A void element (`<br>`, `<img …>`): one element, no nesting.
    Void,
}

/// The tags of a raw HTML snippet that the sanitiser keeps (known elements), as they open
/// and close elements: what bounds the nesting of an issue's body (see `issue::limits`).
pub fn nesting(raw: &str) -> impl Iterator<Item = Nesting> + '_ {
    tokens(raw).into_iter().filter_map(|token| match token {
        Token::Tag(tag) if tag.closing => Some(Nesting::Close(tag.name)),
        Token::Tag(tag) if is_void(&tag.name) => Some(Nesting::Void),
        Token::Tag(tag) => Some(Nesting::Open(tag.name)),
        _ => None,
    })
}

/// Elements that never have content or an end tag.
fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
    )
}

/// Splits a raw HTML snippet into tokens.
pub fn tokens(raw: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            out.push(Token::Text(rest));
            break;
        };
        if lt > 0 {
            out.push(Token::Text(&rest[..lt]));
        }
        rest = &rest[lt..];
        let (token, len) = token_at(rest);
        out.push(token);
        rest = &rest[len..];
    }
    out
}

/// The token at `s` (which starts with `<`) and its byte length.
fn token_at(s: &str) -> (Token<'_>, usize) {
    if s.starts_with("<!--") {
        let len = s.find("-->").map_or(s.len(), |i| i + 3);
        return (Token::Comment(&s[..len]), len);
    }
    match tag_at(s) {
        Some(tag) => {
            let len = tag.source.len();
            (Token::Tag(tag), len)
        }
        None => (Token::NotATag(&s[..1]), 1),
    }
}

fn tag_at(s: &str) -> Option<Tag<'_>> {
    let after = &s[1..];
    let (closing, after) = match after.strip_prefix('/') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let name_len = after
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(after.len());
    let name = after[..name_len].to_ascii_lowercase();
    let next = after[name_len..].chars().next()?;
    if !(next.is_ascii_whitespace() || next == '/' || next == '>') || !is_known_element(&name) {
        return None;
    }
    let end = tag_end(s)?;
    Some(Tag {
        name,
        closing,
        source: &s[..end],
    })
}

/// The byte index just past the `>` closing the tag at `s`, skipping quoted values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return Some(i + 1),
            (None, '<') if i > 0 => return None,
            _ => {}
        }
    }
    None
}

/// Attribute names and values (entities decoded) of a tag's source text.
pub fn attribute_pairs(source: &str) -> Vec<(String, String)> {
    attributes(source)
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                html_escape::decode_html_entities(v).into_owned(),
            )
        })
        .collect()
}

/// Attribute names and raw values of a tag's source text.
fn attributes(source: &str) -> Vec<(&str, &str)> {
    let inner = source
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim_end_matches('/');
    let mut rest = inner
        .find(|c: char| c.is_ascii_whitespace())
        .map_or("", |i| &inner[i..]);
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            return out;
        }
        let name_end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = rest[name_end..].trim_start();
        let Some(after_eq) = rest.strip_prefix('=') else {
            out.push((name, ""));
            continue;
        };
        let after_eq = after_eq.trim_start();
        let (value, len) = match after_eq.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let body = &after_eq[1..];
                let end = body.find(q).unwrap_or(body.len());
                (&body[..end], (end + 2).min(after_eq.len()))
            }
            _ => {
                let end = after_eq
                    .find(|c: char| c.is_ascii_whitespace())
                    .unwrap_or(after_eq.len());
                (&after_eq[..end], end)
            }
        };
        out.push((name, value));
        rest = &after_eq[len..];
    }
}

/// Rewrites a raw HTML snippet so that only known tags stay markup: every `<` that does not
/// open one becomes `&lt;`. The result goes on to the sanitiser.
pub fn guard(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 16);
    for token in tokens(raw) {
        match token {
            Token::Text(t) | Token::Comment(t) => out.push_str(t),
            Token::Tag(tag) => out.push_str(tag.source),
            Token::NotATag(t) => out.push_str(&t.replace('<', "&lt;")),
        }
    }
    out
}

/// Whether `name` (lower case) is an HTML element. Dangerous ones are included on purpose,
/// so that the sanitiser sees and removes them rather than showing them as text.
fn is_known_element(name: &str) -> bool {
    const KNOWN: &[&str] = &[
        "a",
        "abbr",
        "address",
        "article",
        "aside",
        "audio",
        "b",
        "base",
        "bdi",
        "bdo",
        "big",
        "blockquote",
        "body",
        "br",
        "button",
        "canvas",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "data",
        "dd",
        "del",
        "details",
        "dfn",
        "dialog",
        "div",
        "dl",
        "dt",
        "em",
        "embed",
        "fieldset",
        "figcaption",
        "figure",
        "font",
        "footer",
        "form",
        "frame",
        "frameset",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hr",
        "html",
        "i",
        "iframe",
        "img",
        "input",
        "ins",
        "kbd",
        "label",
        "legend",
        "li",
        "link",
        "main",
        "map",
        "mark",
        "math",
        "meta",
        "meter",
        "nav",
        "noscript",
        "object",
        "ol",
        "optgroup",
        "option",
        "output",
        "p",
        "param",
        "picture",
        "pre",
        "progress",
        "q",
        "rp",
        "rt",
        "ruby",
        "s",
        "samp",
        "script",
        "section",
        "select",
        "small",
        "source",
        "span",
        "strike",
        "strong",
        "style",
        "sub",
        "summary",
        "sup",
        "svg",
        "table",
        "tbody",
        "td",
        "template",
        "textarea",
        "tfoot",
        "th",
        "thead",
        "time",
        "title",
        "tr",
        "track",
        "tt",
        "u",
        "ul",
        "var",
        "video",
        "wbr",
    ];
    KNOWN.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_tags_stay_and_lookalikes_are_escaped() {
        assert_eq!(guard("<br/>"), "<br/>");
        assert_eq!(
            guard(r#"<img src="a.png" width=100%>"#),
            r#"<img src="a.png" width=100%>"#
        );
        assert_eq!(guard("<SOFA:ArkLab/>"), "&lt;SOFA:ArkLab/>");
        assert_eq!(
            guard(r#"<bean id="x" class="y">"#),
            r#"&lt;bean id="x" class="y">"#
        );
        assert_eq!(
            guard("< RegisterRMRequest{a} >"),
            "&lt; RegisterRMRequest{a} >"
        );
        assert_eq!(guard("a < b <script>"), "a &lt; b <script>");
    }

    #[test]
    fn attributes_are_read_with_or_without_quotes() {
        let tokens = tokens(r#"<img alt='a &amp; b' src="x.png" width=100%>"#);
        let Token::Tag(tag) = &tokens[0] else {
            panic!("expected a tag, got {tokens:?}");
        };
        assert_eq!(tag.name, "img");
        assert_eq!(tag.attribute("alt").as_deref(), Some("a & b"));
        assert_eq!(tag.attribute("SRC").as_deref(), Some("x.png"));
        assert_eq!(tag.attribute("width").as_deref(), Some("100%"));
        assert_eq!(tag.attribute("height"), None);
    }

    #[test]
    fn the_known_list_is_sorted_for_binary_search() {
        assert!(is_known_element("a") && is_known_element("wbr") && is_known_element("img"));
        assert!(!is_known_element("bean") && !is_known_element("sofa"));
    }
}
