//! Reading an issue file: front matter (YAML between `---` lines, or TOML between `+++`
//! lines) and a Markdown body.
//!
//! [`load`] turns a path into an [`Issue`] or an [`IssueError`] whose one-line message names
//! the file, the line where there is one, and the problem. It never panics on bad input, and
//! refuses a file that would ask too much of the renderer (see [`limits`]): too large, nested
//! too deeply, or with an absurd subject.

mod front_matter;
pub mod limits;

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use sha2::{Digest, Sha256};

use crate::domain::{IssueSlug, SlugError};

pub use front_matter::parse_date;
pub use limits::IssueLimits;

/// The Markdown dialect of issue bodies: CommonMark with GitHub's tables, strikethrough,
/// task lists and footnotes. The renderer and the limits read bodies with it alike.
pub fn markdown_options() -> pulldown_cmark::Options {
    use pulldown_cmark::Options;
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM
}

/// One newsletter issue, as the editor wrote it.
#[derive(Debug, Clone)]
pub struct Issue {
    /// Where it was read from.
    pub path: PathBuf,
    /// From front matter `slug`, else the file stem.
    pub slug: IssueSlug,
    pub title: String,
    /// From front matter `subject`, else the title. One line.
    pub subject: String,
    /// The inbox preview line: front matter `preheader`, else `description`.
    pub preheader: Option<String>,
    pub description: Option<String>,
    pub date: Option<DateTime<FixedOffset>>,
    pub author: Option<String>,
    pub authorlink: Option<String>,
    /// Hero image URL (may be relative to `newsletter.base_url`).
    pub cover: Option<String>,
    /// The cover's text alternative: front matter `cover_alt`, else the title.
    pub cover_alt: String,
    /// `draft: true` in the front matter: the scheduler never sends it, and `herald send`,
    /// the API and the dashboard refuse to unless forced. Test copies and previews work.
    pub draft: bool,
    /// Front matter `lang:` (a BCP 47 tag, as Hugo names it): the language of this issue's
    /// mail and web version, over `newsletter.locale`.
    pub lang: Option<String>,
    pub tags: Vec<String>,
    pub categories: Vec<String>,
    /// The Markdown body, after the front matter.
    pub body: String,
    /// 1-based line of the file where the body starts.
    pub body_line: usize,
    /// SHA-256 of the file's bytes, hex: tells whether an issue changed after it was queued.
    pub source_hash: String,
}

/// Why an issue file cannot be used. Displays as `FILE[:LINE]: problem`.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct IssueError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub kind: IssueErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueErrorKind {
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("front matter opened with `{0}` is never closed")]
    UnclosedFrontMatter(&'static str),
    #[error("front matter: {0}")]
    FrontMatter(String),
    #[error(
        "is {} KiB; an issue may have at most {} KiB (newsletter.max_issue_bytes)",
        size.div_ceil(1024),
        max / 1024
    )]
    TooLarge { size: u64, max: u64 },
    #[error("front matter is {} KiB; it may have at most {} KiB", size.div_ceil(1024), max / 1024)]
    FrontMatterTooLarge { size: usize, max: usize },
    #[error("front matter nests `[` or `{{` more than {max} levels deep")]
    FrontMatterTooDeep { max: usize },
    #[error(
        "the body nests more than {max} levels deep (lists, quotes and HTML elements together)"
    )]
    BodyTooDeep { max: usize },
    #[error(
        "the body has more than {max} elements (paragraphs, list items, links, table cells, tags)"
    )]
    BodyTooLarge { max: usize },
    #[error("cannot be rendered: {0}")]
    Unrenderable(String),
    #[error("front matter has no `title`, and every issue needs one")]
    MissingTitle,
    #[error("`{field}` {problem}")]
    BadField {
        field: &'static str,
        problem: String,
    },
    #[error(
        "cannot read date {0:?}: use 2024-05-31, 2024-05-31T09:00:00 or RFC 3339 with an offset"
    )]
    BadDate(String),
    #[error("the body is empty: write the issue below the front matter")]
    EmptyBody,
    #[error(
        "holds the control character U+{:04X}, which no mail can carry; remove it",
        u32::from(*.0)
    )]
    ControlCharacter(char),
    #[error("{0}")]
    Slug(#[from] SlugError),
}

/// Reads and parses the issue at `path`, refusing a file larger than `limits.max_bytes`
/// without reading more of it.
pub fn load(path: &Path, limits: &IssueLimits) -> Result<Issue, IssueError> {
    use std::io::Read;
    let err = |line, kind| IssueError {
        path: path.to_path_buf(),
        line,
        kind,
    };
    let read = |e| err(None, IssueErrorKind::Read(e));
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(limits.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > limits.max_bytes {
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(err(
            None,
            IssueErrorKind::TooLarge {
                size,
                max: limits.max_bytes,
            },
        ));
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&bytes, &stem)
        .map_err(|(line, kind)| err(line, kind))
        .map(|mut issue| {
            issue.path = path.to_path_buf();
            issue
        })
}

/// Every `*.md` file directly in `dir`, parsed, in file-name order. A file that does not
/// parse comes back as its error, so one broken file does not hide the others. Fails only
/// when `dir` cannot be listed.
pub fn load_dir(
    dir: &Path,
    limits: &IssueLimits,
) -> Result<Vec<Result<Issue, IssueError>>, IssueError> {
    let listing = std::fs::read_dir(dir).map_err(|e| IssueError {
        path: dir.to_path_buf(),
        line: None,
        kind: IssueErrorKind::Read(e),
    })?;
    let mut paths: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md") && p.is_file())
        .collect();
    paths.sort();
    Ok(paths.iter().map(|p| load(p, limits)).collect())
}

/// The issue in `dir` whose slug is `slug`: `dir/{slug}.md` when that file has this slug,
/// otherwise the first file (by name) whose front matter sets it. `Ok(None)` when no file
/// has it (or there is no `dir` at all); an error when `dir` cannot be listed or
/// `dir/{slug}.md` is broken.
pub fn find(
    dir: &Path,
    slug: &IssueSlug,
    limits: &IssueLimits,
) -> Result<Option<Issue>, IssueError> {
    if !dir.exists() {
        return Ok(None);
    }
    let direct = dir.join(format!("{}.md", slug.as_str()));
    if direct.is_file() {
        let issue = load(&direct, limits)?;
        if issue.slug == *slug {
            return Ok(Some(issue));
        }
    }
    Ok(load_dir(dir, limits)?
        .into_iter()
        .filter_map(Result::ok)
        .find(|issue| issue.slug == *slug))
}

/// Whether `c` may not appear in an issue file: the control characters other than tab and
/// line ends (NUL among them), and the two non-characters U+FFFE and U+FFFF. None of them
/// can be carried by the HTML part (XML, which MJML is, forbids them) or shown by a client.
fn cannot_be_carried(c: char) -> bool {
    (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{7f}'))
        || matches!(c, '\u{fffe}' | '\u{ffff}')
}

/// Parses an issue from bytes; `stem` is the default slug. Errors carry a 1-based line.
/// Applies every bound of [`limits`] but the file size, which [`load`] checks as it reads.
pub fn parse(bytes: &[u8], stem: &str) -> Result<Issue, (Option<usize>, IssueErrorKind)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        (Some(line), IssueErrorKind::NotUtf8)
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| cannot_be_carried(c)) {
        let line = text[..at].matches('\n').count() + 1;
        return Err((Some(line), IssueErrorKind::ControlCharacter(c)));
    }
    let split = front_matter::split(text)?;
    limits::check_front_matter(split.front, split.front_line)?;
    let fm = front_matter::parse(&split)?;

    let title = fm
        .title
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or((Some(1), IssueErrorKind::MissingTitle))?;
    let subject = fm
        .subject
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| title.clone());
    let line_of = |field: &str| split.field_line(field);
    for (field, value) in [("title", &title), ("subject", &subject)] {
        let field = if field == "title" { "title" } else { "subject" };
        if value.chars().any(char::is_control) {
            return Err((
                line_of(field),
                IssueErrorKind::BadField {
                    field,
                    problem: "must be one line, without control characters".into(),
                },
            ));
        }
        limits::check_subject(field, value, line_of(field))?;
    }
    let date = match fm.date {
        None => None,
        Some(raw) => {
            Some(parse_date(&raw).ok_or_else(|| (line_of("date"), IssueErrorKind::BadDate(raw)))?)
        }
    };
    let slug = match fm.slug {
        Some(s) => IssueSlug::parse(&s).map_err(|e| (line_of("slug"), e.into()))?,
        None => IssueSlug::parse(stem).map_err(|e| (None, e.into()))?,
    };
    if split.body.trim().is_empty() {
        return Err((Some(split.body_line), IssueErrorKind::EmptyBody));
    }
    limits::check_body(split.body, split.body_line)?;
    let clean = |s: Option<String>| {
        s.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
    };
    let description = clean(fm.description);
    let lang = match clean(fm.lang) {
        Some(tag) if tag.parse::<unic_langid::LanguageIdentifier>().is_err() => {
            return Err((
                line_of("lang"),
                IssueErrorKind::BadField {
                    field: "lang",
                    problem: format!("is not a language tag (like en or zh-CN): {tag:?}"),
                },
            ));
        }
        tag => tag,
    };
    let cover_alt = clean(fm.cover_alt).unwrap_or_else(|| title.clone());
    Ok(Issue {
        path: PathBuf::new(),
        slug,
        title,
        subject,
        preheader: clean(fm.preheader).or_else(|| description.clone()),
        description,
        date,
        author: clean(fm.author),
        authorlink: clean(fm.authorlink),
        cover: clean(fm.cover),
        cover_alt,
        draft: fm.draft.unwrap_or(false),
        lang,
        tags: fm.tags.into_vec(),
        categories: fm.categories.into_vec(),
        body: split.body.to_string(),
        body_line: split.body_line,
        source_hash: hex(&Sha256::digest(bytes)),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
