//! `GET /archive`, `GET /archive/{slug}` and `GET /feed.xml`: the issues that were sent
//! (status `sent`, or `sending` once a send has started), newest first by the issue's own
//! date (its front matter's), which is the date they show. Feed entries carry that date and
//! the issue's `description` as their summary.
//!
//! An issue's web version is rendered from its file in `newsletter.issues_dir`, for a
//! neutral reader (no name, no address, a generic unsubscribe page), and kept in memory
//! keyed by slug and the file's hash.

use std::path::Path as FsPath;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

use super::{pages, AppState, WebError};
use crate::domain::IssueSlug;
use crate::issue::{self, Issue, IssueLimits};
use crate::render::{self, Recipient};
use crate::store::IssueRow;

/// One sent issue as the archive and the feed list it.
struct Entry {
    slug: IssueSlug,
    row: IssueRow,
    /// The issue's date: its file's, else the one recorded when it was enqueued, else when
    /// it went out.
    date: DateTime<FixedOffset>,
    /// Its file's `description` and `lang`, when the file is still in `issues_dir`.
    description: Option<String>,
    lang: Option<String>,
}

/// The sent issues, newest first by issue date.
async fn sent_issues(state: &AppState) -> Result<Vec<Entry>, WebError> {
    let app = state.app();
    let rows = app.store.list_issues().await.map_err(WebError::internal)?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(is_public)
        .filter_map(|row| Some((IssueSlug::parse(&row.slug).ok()?, row)))
        .collect();
    let files = issue_files(state, rows.is_empty()).await;
    let mut entries: Vec<Entry> = rows
        .into_iter()
        .map(|(slug, row)| {
            let file = files.iter().find(|f| f.slug == slug);
            let date = file
                .and_then(|f| f.date)
                .or_else(|| {
                    row.issue_date
                        .and_then(|t| DateTime::from_timestamp(t, 0))
                        .map(|t| t.fixed_offset())
                })
                .unwrap_or_else(|| issue_time(&row).fixed_offset());
            Entry {
                description: file.and_then(|f| f.description.clone()),
                lang: file.and_then(|f| f.lang.clone()),
                slug,
                row,
                date,
            }
        })
        .collect();
    entries.sort_by(|a, b| {
        b.date
            .cmp(&a.date)
            .then_with(|| a.slug.as_str().cmp(b.slug.as_str()))
    });
    Ok(entries)
}

/// The issue files of `issues_dir`, read off the async workers (none when `skip`, or when
/// the folder cannot be read: the archive still lists what the ledger knows).
async fn issue_files(state: &AppState, skip: bool) -> Vec<Issue> {
    let newsletter = &state.app().settings.newsletter;
    if skip || !newsletter.issues_dir.exists() {
        return Vec::new();
    }
    match crate::schedule::load_issues(&newsletter.issues_dir, newsletter.issue_limits()).await {
        Ok(files) => files.issues,
        Err(e) => {
            tracing::warn!(error = %e, "the archive could not read the issues folder");
            Vec::new()
        }
    }
}

fn is_public(row: &IssueRow) -> bool {
    matches!(row.status.as_str(), "sent" | "sending")
}

/// When the issue went out: finished, else started, else queued (Unix seconds).
fn issue_time(row: &IssueRow) -> DateTime<Utc> {
    let at = row.finished_at.or(row.started_at).unwrap_or(row.created_at);
    DateTime::from_timestamp(at, 0).unwrap_or_default()
}

/// `GET /archive`.
pub async fn list(State(state): State<AppState>) -> Result<Response, WebError> {
    let links = &state.app().links;
    let catalog = state.catalog();
    let issues: Vec<minijinja::Value> = sent_issues(&state)
        .await?
        .iter()
        .map(|e| {
            minijinja::context! {
                title => &e.row.title,
                date => catalog.date_short(&e.date),
                date_exact => e.date.to_rfc3339_opts(SecondsFormat::Secs, true),
                description => &e.description,
                lang => &e.lang,
                url => links.archive(&e.slug),
            }
        })
        .collect();
    let feed_url = format!("{}feed.xml", links.base());
    state
        .page(
            pages::ARCHIVE,
            minijinja::context! {
                newsletter_name => &state.app().settings.newsletter.name,
                issues,
                feed_url,
                signup_url => links.base().as_str(),
            },
        )
        .map(IntoResponse::into_response)
}

/// `GET /archive/{slug}`: the issue's web version, or 404 when there is no such sent issue.
#[tracing::instrument(skip_all, fields(slug = %raw_slug))]
pub async fn issue(
    State(state): State<AppState>,
    Path(raw_slug): Path<String>,
) -> Result<Response, WebError> {
    let slug = IssueSlug::parse(&raw_slug).map_err(|_| WebError::NotFound)?;
    let row = state
        .app()
        .store
        .find_issue(slug.as_str())
        .await
        .map_err(WebError::internal)?;
    if !row.as_ref().is_some_and(is_public) {
        return Err(WebError::NotFound);
    }
    let app = state.0.app.clone();
    let html = app
        .off_the_workers(move || web_version(&state, &slug))
        .await
        .map_err(WebError::internal)??;
    Ok(Html(html.to_string()).into_response())
}

/// Loads the issue file and renders it, or takes the cached copy of the same file.
fn web_version(state: &AppState, slug: &IssueSlug) -> Result<Arc<str>, WebError> {
    let app = state.app();
    let limits = app.settings.newsletter.issue_limits();
    let Some(issue) = find_issue_file(&app.settings.newsletter.issues_dir, slug, &limits) else {
        tracing::warn!("a sent issue has no file in issues_dir");
        return Err(WebError::NotFound);
    };
    let cache = &state.0.archive_cache;
    if let Some((hash, html)) = cache.lock().expect("cache lock").get(slug.as_str()) {
        if *hash == issue.source_hash {
            return Ok(html.clone());
        }
    }
    let rendered = render::issue(&issue, &app.templates, &app.settings.newsletter, &app.links)
        .map_err(WebError::internal)?;
    let unsubscribe_url = format!("{}unsubscribe", app.links.base());
    let html: Arc<str> = rendered
        .html
        .personalise(&Recipient {
            email: "",
            name: None,
            unsubscribe_url: &unsubscribe_url,
            tracking: None,
        })
        .into();
    cache.lock().expect("cache lock").insert(
        slug.as_str().to_string(),
        (issue.source_hash.clone(), html.clone()),
    );
    Ok(html)
}

/// The issue file whose slug is `slug`: `{slug}.md` when its slug matches, else the first
/// `*.md` in the folder that has it. Files that do not load are passed over.
fn find_issue_file(dir: &FsPath, slug: &IssueSlug, limits: &IssueLimits) -> Option<Issue> {
    let matches = |issue: &Issue| issue.slug == *slug;
    if let Ok(issue) = issue::load(&dir.join(format!("{slug}.md")), limits) {
        if matches(&issue) {
            return Some(issue);
        }
    }
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "md"))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| issue::load(p, limits).ok())
        .find(matches)
}

/// `GET /feed.xml`: an Atom feed of the archive.
pub async fn feed(State(state): State<AppState>) -> Result<Response, WebError> {
    let issues = sent_issues(&state).await?;
    let app = state.app();
    let base = app.links.base().as_str();
    let name = &app.settings.newsletter.name;
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let updated = issues
        .iter()
        .map(|e| issue_time(&e.row).max(e.date.to_utc()))
        .max()
        .unwrap_or_else(Utc::now);

    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    xml.push_str(&format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">\n",
        escape_xml(state.catalog().tag())
    ));
    xml.push_str(&format!("  <title>{}</title>\n", escape_xml(name)));
    xml.push_str(&format!(
        "  <subtitle>{}</subtitle>\n",
        escape_xml(&state.t_newsletter("feed-subtitle"))
    ));
    xml.push_str(&format!("  <id>{}</id>\n", escape_xml(base)));
    xml.push_str(&format!("  <updated>{}</updated>\n", stamp(updated)));
    xml.push_str(&format!(
        "  <link rel=\"self\" href=\"{}\"/>\n",
        escape_xml(&format!("{base}feed.xml"))
    ));
    xml.push_str(&format!(
        "  <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
        escape_xml(&format!("{base}archive"))
    ));
    xml.push_str(&format!(
        "  <author><name>{}</name></author>\n",
        escape_xml(name)
    ));
    for entry in &issues {
        let url = escape_xml(&app.links.archive(&entry.slug));
        let date = entry.date.to_rfc3339_opts(SecondsFormat::Secs, true);
        xml.push_str("  <entry>\n");
        xml.push_str(&format!("    <id>{url}</id>\n"));
        xml.push_str(&format!(
            "    <title>{}</title>\n",
            escape_xml(&entry.row.title)
        ));
        xml.push_str(&format!("    <published>{date}</published>\n"));
        xml.push_str(&format!("    <updated>{date}</updated>\n"));
        if let Some(summary) = &entry.description {
            xml.push_str(&format!("    <summary>{}</summary>\n", escape_xml(summary)));
        }
        xml.push_str(&format!(
            "    <link rel=\"alternate\" type=\"text/html\" href=\"{url}\"/>\n"
        ));
        xml.push_str("  </entry>\n");
    }
    xml.push_str("</feed>\n");
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/atom+xml; charset=utf-8"),
        )],
        xml,
    )
        .into_response())
}

/// Escapes text for XML content and attributes, dropping characters XML 1.0 forbids.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_xml;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(
            escape_xml("Q&A <b>\"x\" 'y'\u{1}"),
            "Q&amp;A &lt;b&gt;&quot;x&quot; &apos;y&apos;"
        );
    }
}
