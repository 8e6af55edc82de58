//! `herald check`: lint rules over an issue file and its rendering. `herald check`, every
//! send path (the CLI, the API, the dashboard, the scheduler) and the dashboard's issue page
//! call it, so a rule is written once.
//!
//! The rules are a table, [`RULES`]: an id, a severity, what it finds, and the function that
//! finds it. Errors stop a send; warnings are advice. Each family lives in its own file:
//! - `meta`: the front matter and the issue's place among the others (slug, subject, inbox
//!   preview, schedule, draft);
//! - `body`: how the Markdown reads once rendered (literal emphasis, removed raw HTML, image
//!   alt text, heading levels, link text);
//! - `links`: where links and images lead (unresolvable, local hosts, missing assets);
//! - `size`: the rendered mail (Gmail's clipping, text in images);
//! - `spam`: the content heuristics spam filters such as SpamAssassin apply, as far as they
//!   can be checked offline.
//!
//! A rule is turned off for every issue with `[check] allow = ["rule-id"]`, or for one
//! line with `<!-- herald:allow rule-id -->` (see `allow`).

mod allow;
mod body;
mod links;
mod meta;
mod size;
mod spam;
mod words;

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use pulldown_cmark::{Event, Parser};
use serde::Serialize;
use url::Url;

use crate::config::{NewsletterSettings, Settings};
use crate::domain::IssueSlug;
use crate::issue::{self, Issue};
use crate::links::Links;
use crate::render::{self, Recipient, RenderedIssue, Templates};

pub use words::Words;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops a send (unless forced).
    Error,
    /// Advice; never stops anything.
    Warning,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// One rule of the table.
pub struct Rule {
    /// The id findings carry and `allow` names, in kebab case.
    pub id: &'static str,
    pub severity: Severity,
    /// What it finds, in one line (the README's rule list says the same).
    pub summary: &'static str,
    find: fn(&Subject<'_>, &mut Vec<Found>),
}

/// Every rule, errors first. Adding a rule is one line here and a function in its family.
pub const RULES: &[Rule] = &[
    rule(ISSUE_INVALID, Severity::Error, "the file cannot be used as an issue: front matter, a required field, a limit (what stops a send)", none),
    rule(RENDER_FAILED, Severity::Error, "the issue cannot be rendered into a mail", none),
    rule("gmail-clipping", Severity::Error, "the HTML part is at or over Gmail's clipping size (102 KB of decoded HTML)", size::gmail_clipping),
    rule("link-unresolvable", Severity::Error, "a link leads nowhere: a scheme mail cannot follow, or a relative link that is neither a page herald serves nor a file in assets_dir", links::unresolvable),
    rule("link-local", Severity::Error, "a link or image on localhost, a loopback address or an example.* host while base_url is a public host", links::local),
    rule("asset-missing", Severity::Error, "a relative cover or image that is not in assets_dir", links::asset_missing),
    rule("slug-duplicate", Severity::Error, "another issue file has the same slug", meta::slug_duplicate),
    rule("literal-emphasis", Severity::Warning, "emphasis that CommonMark leaves as literal asterisks or underscores", body::literal_emphasis),
    rule("html-removed", Severity::Warning, "raw HTML that the sanitiser removes (says what)", body::html_removed),
    rule("image-alt", Severity::Warning, "an image without alt text", body::image_alt),
    rule("heading-skip", Severity::Warning, "a heading that skips a level (the title counts as level 1)", body::heading_skip),
    rule("link-text", Severity::Warning, "link text that says nothing out of context (\"click here\", \"more\")", body::link_text),
    rule("link-bare-url", Severity::Warning, "a bare URL as link text, where words would read better", body::bare_url),
    rule("subject-long", Severity::Warning, "a subject over 60 columns (inboxes cut it)", meta::subject_long),
    rule("description-missing", Severity::Warning, "no description or preheader: the inbox preview shows the first words of the mail", meta::description_missing),
    rule("description-long", Severity::Warning, "an inbox preview (preheader, else description) over 110 columns", meta::description_long),
    rule("not-scheduled", Severity::Warning, "the scheduler will never send it on its own: undated, or dated before the last issue sent", meta::not_scheduled),
    rule("draft", Severity::Warning, "the issue is a draft (draft: true)", meta::draft),
    rule("images-over-text", Severity::Warning, "a large share of the content is in images (under 150 characters of text per image)", size::images_over_text),
    rule("spam-subject-caps", Severity::Warning, "a subject in capitals (SpamAssassin SUBJ_ALL_CAPS)", spam::subject_caps),
    rule("spam-subject-punctuation", Severity::Warning, "a subject with repeated ! or ? or $ (SpamAssassin PLING_QUERY and friends)", spam::subject_punctuation),
    rule("spam-phrase", Severity::Warning, "phrases spam filters score (\"act now\", \"100% free\", \"risk-free\")", spam::phrases),
    rule("spam-shortener", Severity::Warning, "a link through a URL shortener (listed by URI blocklists)", spam::shortener),
    rule("spam-ip-link", Severity::Warning, "a link to a numeric IP address (SpamAssassin NUMERIC_HTTP_ADDR)", spam::ip_link),
    rule("spam-link-mismatch", Severity::Warning, "link text that shows one host while the link goes to another (a phishing sign)", spam::link_mismatch),
];

/// The rule id of an issue file that cannot be loaded.
pub const ISSUE_INVALID: &str = "issue-invalid";
/// The rule id of an issue that cannot be rendered.
pub const RENDER_FAILED: &str = "render-failed";

const fn rule(
    id: &'static str,
    severity: Severity,
    summary: &'static str,
    find: fn(&Subject<'_>, &mut Vec<Found>),
) -> Rule {
    Rule {
        id,
        severity,
        summary,
        find,
    }
}

fn none(_: &Subject<'_>, _: &mut Vec<Found>) {}

/// The rule with this id.
pub fn rule_by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// The ids in `allow` that name no rule (a typo in `[check] allow`).
pub fn unknown_rules(allow: &[String]) -> Vec<String> {
    allow
        .iter()
        .filter(|id| rule_by_id(id).is_none())
        .cloned()
        .collect()
}

/// One thing `herald check` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The issue file, as it was named.
    pub file: String,
    /// 1-based line in the file (front matter included).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    pub rule: &'static str,
    pub severity: Severity,
    /// What was found, in English.
    pub message: String,
    /// How to fix it, in English.
    pub hint: String,
    /// The message and the hint as catalog messages, for any other locale.
    #[serde(skip)]
    pub words: (Words, Words),
}

impl std::fmt::Display for Finding {
    /// `FILE:LINE:COLUMN: rule-id: message`, one line: the reason a send gives when it
    /// refuses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.rule, self.message
        )
    }
}

impl Finding {
    fn new(
        file: String,
        (line, column): (usize, usize),
        rule: &'static Rule,
        found: Found,
    ) -> Self {
        Self {
            file,
            line,
            column,
            rule: rule.id,
            severity: rule.severity,
            message: found.message.in_english(),
            hint: found.hint.in_english(),
            words: (found.message, found.hint),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The message and the hint in `catalog`'s language.
    pub fn in_locale(&self, catalog: &crate::i18n::Catalog) -> (String, String) {
        (
            self.words.0.in_locale(catalog),
            self.words.1.in_locale(catalog),
        )
    }

    /// What `Display` shows, with the message in `catalog`'s language.
    pub fn line_in(&self, catalog: &crate::i18n::Catalog) -> String {
        let message = self.words.0.in_locale(catalog);
        format!(
            "{}:{}:{}: {}: {message}",
            self.file, self.line, self.column, self.rule
        )
    }
}

/// The first error among `findings`: why a send is refused.
pub fn refusal(findings: &[Finding]) -> Option<&Finding> {
    findings.iter().find(|f| f.is_error())
}

/// What a rule found, before it is placed in the file.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub at: At,
    pub message: Words,
    pub hint: Words,
}

impl Found {
    fn new(at: At, message: Words, hint: Words) -> Self {
        Self { at, message, hint }
    }
}

/// Where a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    /// A byte offset into the issue's body.
    Body(usize),
    /// A front matter field's line (the file's first line when the field is absent).
    Field(&'static str),
    /// The issue as a whole: its first line.
    File,
}

/// What lies around an issue: the other issue files and what was sent before.
#[derive(Debug, Clone, Default)]
pub struct Surroundings {
    /// Every other issue file known (the issues folder, the other files checked together),
    /// by path and slug.
    pub slugs: Vec<(PathBuf, IssueSlug)>,
    /// The newest issue already sent or queued, by its date.
    pub last_sent: Option<(String, DateTime<Utc>)>,
    /// The slugs already in the ledger (sent or queued).
    pub enqueued: HashSet<String>,
}

impl Surroundings {
    /// The issue files of `newsletter.issues_dir` (a file that does not load is left out:
    /// it is its own finding when checked), and what the ledger's `enqueued` rows say: the
    /// newest issue sent or queued, by date, and every slug in it.
    pub fn gather(
        newsletter: &NewsletterSettings,
        enqueued: &[crate::store::EnqueuedIssueDate],
    ) -> Self {
        let files: Vec<Issue> = issue::load_dir(&newsletter.issues_dir, &newsletter.issue_limits())
            .map(|all| all.into_iter().flatten().collect())
            .unwrap_or_default();
        let plan = crate::schedule::plan(&files, enqueued, Utc::now());
        Self {
            slugs: files.into_iter().map(|i| (i.path, i.slug)).collect(),
            last_sent: plan.last_sent,
            enqueued: enqueued.iter().map(|e| e.slug.clone()).collect(),
        }
    }

    /// Adds a file to those known.
    pub fn add(&mut self, path: &Path, slug: IssueSlug) {
        if !self.slugs.iter().any(|(p, _)| same_file(p, path)) {
            self.slugs.push((path.to_path_buf(), slug));
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What the rules look at: the issue as loaded, its source, its Markdown events, and the
/// HTML a reader gets.
pub(crate) struct Subject<'a> {
    pub issue: &'a Issue,
    /// The whole file (front matter included).
    pub source: &'a str,
    /// The body's Markdown events, with byte ranges into `issue.body`, parsed as the
    /// renderer parses them.
    pub events: Vec<(Event<'a>, Range<usize>)>,
    /// The HTML part as one reader gets it, decoded (no transfer encoding).
    pub html: &'a str,
    pub newsletter: &'a NewsletterSettings,
    /// `newsletter.base_url`, ending in `/`.
    pub base: &'a Url,
    pub around: &'a Surroundings,
    /// Every link and image, with where it is.
    pub references: Vec<links::Reference>,
}

/// Loads, renders and checks the issue at `path` as a send would, with `settings`' allow
/// list. A file that does not load or render is one error finding.
pub fn check_file(
    path: &Path,
    settings: &Settings,
    templates: &Templates,
    links: &Links,
    around: &Surroundings,
) -> Vec<Finding> {
    let file = path.display().to_string();
    let issue = match issue::load(path, &settings.newsletter.issue_limits()) {
        Ok(issue) => issue,
        Err(e) => {
            let found = Found::new(
                At::File,
                Words::new("check-issue-invalid").with("reason", &e.kind),
                Words::new("check-issue-invalid-hint"),
            );
            let rule = rule_by_id(ISSUE_INVALID).expect("a rule of the table");
            return vec![Finding::new(file, (e.line.unwrap_or(1), 1), rule, found)];
        }
    };
    match render::issue(&issue, templates, &settings.newsletter, links) {
        Ok(rendered) => check_rendered(&issue, &rendered, settings, links, around),
        Err(e) => {
            let hint = if e.is_content() {
                "check-render-failed-content-hint"
            } else {
                "check-render-failed-hint"
            };
            let found = Found::new(
                At::File,
                Words::new("check-render-failed").with("reason", &e),
                Words::new(hint),
            );
            let rule = rule_by_id(RENDER_FAILED).expect("a rule of the table");
            vec![Finding::new(file, (1, 1), rule, found)]
        }
    }
}

/// Checks an issue already loaded and rendered (what a send holds), honouring
/// `[check] allow` and the file's `herald:allow` comments.
pub fn check_rendered(
    issue: &Issue,
    rendered: &RenderedIssue,
    settings: &Settings,
    links: &Links,
    around: &Surroundings,
) -> Vec<Finding> {
    let source = std::fs::read_to_string(&issue.path).unwrap_or_default();
    let unsubscribe = format!("{}unsubscribe/{}", links.base(), "x".repeat(96));
    let html = rendered.html.personalise(&Recipient {
        email: crate::preview::SAMPLE_ADDRESS,
        name: Some(crate::preview::SAMPLE_NAME),
        unsubscribe_url: &unsubscribe,
        tracking: None,
    });
    let events: Vec<_> = Parser::new_ext(&issue.body, issue::markdown_options())
        .into_offset_iter()
        .collect();
    let mut subject = Subject {
        issue,
        source: &source,
        events,
        html: &html,
        newsletter: &settings.newsletter,
        base: links.base(),
        around,
        references: Vec::new(),
    };
    subject.references = links::references(&subject);
    let allowed = allow::Directives::read(&source);
    let file = issue.path.display().to_string();
    let mut findings = Vec::new();
    for rule in RULES {
        if settings.check.allow.iter().any(|id| id == rule.id) {
            continue;
        }
        let mut found = Vec::new();
        (rule.find)(&subject, &mut found);
        for f in found {
            let place = subject.place(f.at);
            if allowed.allows(place.0, rule.id) {
                continue;
            }
            findings.push(Finding::new(file.clone(), place, rule, f));
        }
    }
    findings.sort_by_key(|f| (f.line, f.column));
    findings
}

impl Subject<'_> {
    /// The file line and column of a place.
    fn place(&self, at: At) -> (usize, usize) {
        match at {
            At::Body(offset) => {
                let body = &self.issue.body;
                let offset = offset.min(body.len());
                let before = &body[..offset];
                let line = self.issue.body_line + before.matches('\n').count();
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                (line, before[line_start..].chars().count() + 1)
            }
            At::Field(name) => (field_line(self.source, name).unwrap_or(1), 1),
            At::File => (1, 1),
        }
    }

    /// Text of the body between two byte offsets.
    pub fn body_text(&self, range: Range<usize>) -> &str {
        self.issue.body.get(range).unwrap_or("")
    }
}

/// The line of front matter field `name` (`name:` or `name =`) in `source`.
fn field_line(source: &str, name: &str) -> Option<usize> {
    let mut lines = source.lines().enumerate();
    let (_, first) = lines.next()?;
    let fence = first.trim_end();
    if fence != "---" && fence != "+++" {
        return None;
    }
    for (i, line) in lines {
        let trimmed = line.trim_end();
        if trimmed == fence || (fence == "---" && trimmed == "...") {
            return None;
        }
        if line
            .strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with([':', '=']))
        {
            return Some(i + 1);
        }
    }
    None
}
