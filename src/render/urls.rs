//! URLs inside an issue: resolving relative links against the site, and finding bare URLs
//! in text (GFM's "extended autolinks", which pulldown-cmark leaves as text).

use url::Url;

/// Turns the URLs an issue contains into absolute ones a mail client can follow.
#[derive(Debug, Clone)]
pub struct Resolver {
    base: Url,
    archive: String,
}

/// Schemes that may appear in a link or image in the mail.
const ALLOWED_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

impl Resolver {
    /// `base` is the site's base URL; `archive` is this web copy, which fragment-only
    /// links (`#section`) point into, since anchors inside a mail are not reliable.
    pub fn new(base: Url, archive: String) -> Self {
        Self { base, archive }
    }

    /// The absolute form of `raw`, or `None` when it cannot be made safe (an unknown scheme
    /// such as `javascript:`, or something that is not a URL).
    pub fn resolve(&self, raw: &str) -> Option<String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        if let Some(fragment) = raw.strip_prefix('#') {
            return Some(format!("{}#{fragment}", self.archive));
        }
        let url = match Url::parse(raw) {
            Ok(url) => url,
            Err(url::ParseError::RelativeUrlWithoutBase) => self.base.join(raw).ok()?,
            Err(_) => return None,
        };
        ALLOWED_SCHEMES
            .contains(&url.scheme())
            .then(|| String::from(url))
    }
}

/// A piece of text after looking for bare URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// A bare URL: the text as written and the URL to link to.
    Url {
        text: &'a str,
        href: String,
    },
}

/// Splits `text` into plain runs and bare `http://`, `https://` and `www.` URLs.
///
/// A URL starts after a character that is not an ASCII letter or digit, runs until
/// whitespace, `<`, `>`, a quote or a non-ASCII character (CJK punctuation often follows a
/// URL with no space), and loses trailing punctuation and an unbalanced closing parenthesis.
pub fn linkify(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut plain_from = 0;
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let starts_after_boundary = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        let found = starts_after_boundary.then(|| url_at(rest)).flatten();
        match found {
            Some((len, href)) => {
                if plain_from < at {
                    pieces.push(Piece::Text(&text[plain_from..at]));
                }
                pieces.push(Piece::Url {
                    text: &text[at..at + len],
                    href,
                });
                at += len;
                plain_from = at;
            }
            None => at += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    if plain_from < text.len() {
        pieces.push(Piece::Text(&text[plain_from..]));
    }
    pieces
}

/// The byte length and target of a bare URL at the start of `s`, if there is one.
fn url_at(s: &str) -> Option<(usize, String)> {
    let (scheme_len, prefix) = if starts_with_ignore_case(s, "https://") {
        (8, "")
    } else if starts_with_ignore_case(s, "http://") {
        (7, "")
    } else if starts_with_ignore_case(s, "www.") {
        (0, "http://")
    } else {
        return None;
    };
    let end = s
        .char_indices()
        .find(|&(_, c)| !c.is_ascii_graphic() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
        .map_or(s.len(), |(i, _)| i);
    let len = trim_trailing(&s[..end]);
    let candidate = &s[..len];
    let host = candidate
        .get(scheme_len..)
        .unwrap_or("")
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '@'))
        && (host.contains('.') || host.starts_with("localhost"));
    if !host_ok || (scheme_len == 0 && !host.get(4..).is_some_and(|h| h.contains('.'))) {
        return None;
    }
    let href = format!("{prefix}{candidate}");
    Url::parse(&href).ok().map(|_| (len, href))
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// The length of `url` without the punctuation that usually ends a sentence after it.
fn trim_trailing(url: &str) -> usize {
    let mut end = url.len();
    loop {
        let Some(last) = url[..end].chars().next_back() else {
            return end;
        };
        let unbalanced_paren = last == ')' && {
            let s = &url[..end];
            s.matches(')').count() > s.matches('(').count()
        };
        if matches!(last, '.' | ',' | ':' | ';' | '!' | '?' | '*' | '_' | '~') || unbalanced_paren {
            end -= 1;
        } else {
            return end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Resolver {
        Resolver::new(
            Url::parse("https://news.example.org/herald/").unwrap(),
            "https://news.example.org/herald/archive/issue-1".into(),
        )
    }

    #[test]
    fn relative_links_resolve_against_the_base_url() {
        let r = resolver();
        assert_eq!(
            r.resolve("/blog/x/").as_deref(),
            Some("https://news.example.org/blog/x/")
        );
        assert_eq!(
            r.resolve("img/a.png").as_deref(),
            Some("https://news.example.org/herald/img/a.png")
        );
        assert_eq!(
            r.resolve("//cdn.example.net/a.png").as_deref(),
            Some("https://cdn.example.net/a.png")
        );
        assert_eq!(
            r.resolve("#setup").as_deref(),
            Some("https://news.example.org/herald/archive/issue-1#setup")
        );
        assert_eq!(
            r.resolve("mailto:editor@example.org").as_deref(),
            Some("mailto:editor@example.org")
        );
    }

    #[test]
    fn unsafe_schemes_do_not_resolve() {
        let r = resolver();
        assert_eq!(r.resolve("javascript:alert(1)"), None);
        assert_eq!(r.resolve(" JavaScript:alert(1)"), None);
        assert_eq!(r.resolve("data:text/html,<b>x</b>"), None);
        assert_eq!(r.resolve(""), None);
    }

    fn urls(text: &str) -> Vec<(String, String)> {
        linkify(text)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Url { text, href } => Some((text.to_string(), href)),
                Piece::Text(_) => None,
            })
            .collect()
    }

    #[test]
    fn linkify_finds_bare_urls_and_drops_trailing_punctuation() {
        assert_eq!(
            urls("see https://x.org/a. Or (www.example.com/b), http://y.org/p_(q)!"),
            vec![
                ("https://x.org/a".into(), "https://x.org/a".into()),
                (
                    "www.example.com/b".into(),
                    "http://www.example.com/b".into()
                ),
                ("http://y.org/p_(q)".into(), "http://y.org/p_(q)".into()),
            ]
        );
    }

    #[test]
    fn linkify_stops_at_cjk_text_and_keeps_the_rest_verbatim() {
        let text = "仓库：https://github.com/example/herald，欢迎试用";
        let pieces = linkify(text);
        assert_eq!(
            pieces,
            vec![
                Piece::Text("仓库："),
                Piece::Url {
                    text: "https://github.com/example/herald",
                    href: "https://github.com/example/herald".into()
                },
                Piece::Text("，欢迎试用"),
            ]
        );
    }

    #[test]
    fn linkify_ignores_words_that_only_look_like_urls() {
        assert!(urls("xhttps://x.org and http:// and www.x and https://").is_empty());
        assert_eq!(linkify("no links here"), vec![Piece::Text("no links here")]);
    }
}
