//! The front matter and the issue's place among the others: a slug another file has, the
//! subject and inbox preview lengths, whether the scheduler will ever send it, drafts.

use unicode_width::UnicodeWidthStr;

use super::{At, Found, Subject};

/// Inboxes show about this many columns of a subject (a CJK character takes two).
pub const SUBJECT_COLUMNS: usize = 60;
/// Inboxes show about this many columns of the preview line after the subject.
pub const PREVIEW_COLUMNS: usize = 110;

pub(super) fn slug_duplicate(s: &Subject<'_>, out: &mut Vec<Found>) {
    let issue = s.issue;
    let others: Vec<String> = s
        .around
        .slugs
        .iter()
        .filter(|(path, slug)| *slug == issue.slug && !super::same_file(path, &issue.path))
        .map(|(path, _)| path.display().to_string())
        .collect();
    if !others.is_empty() {
        let at = if super::field_line(s.source, "slug").is_some() {
            At::Field("slug")
        } else {
            At::File
        };
        out.push(Found::new(
            at,
            format!(
                "the slug {} is also the slug of {}: the ledger, the archive and the API would mix them up",
                issue.slug,
                others.join(", ")
            ),
            "give each issue its own slug (front matter `slug:`, else the file name)",
        ));
    }
}

pub(super) fn subject_long(s: &Subject<'_>, out: &mut Vec<Found>) {
    let width = s.issue.subject.width();
    if width > SUBJECT_COLUMNS {
        let at = if super::field_line(s.source, "subject").is_some() {
            At::Field("subject")
        } else {
            At::Field("title")
        };
        out.push(Found::new(
            at,
            format!(
                "the subject is {width} columns long; inboxes show about {SUBJECT_COLUMNS} (a CJK character takes two)"
            ),
            "put the point first, or set a shorter `subject:` in the front matter",
        ));
    }
}

pub(super) fn description_missing(s: &Subject<'_>, out: &mut Vec<Found>) {
    if s.issue.preheader.is_none() {
        out.push(Found::new(
            At::File,
            "no description: the inbox preview shows whatever text the mail starts with",
            "add `description:` (or `preheader:`) to the front matter: one sentence that makes readers open it",
        ));
    }
}

pub(super) fn description_long(s: &Subject<'_>, out: &mut Vec<Found>) {
    let Some(preview) = &s.issue.preheader else {
        return;
    };
    let width = preview.width();
    if width > PREVIEW_COLUMNS {
        let field = if super::field_line(s.source, "preheader").is_some() {
            "preheader"
        } else {
            "description"
        };
        out.push(Found::new(
            At::Field(field),
            format!("the inbox preview ({field}) is {width} columns long; inboxes show about {PREVIEW_COLUMNS}"),
            "shorten it to one sentence, or set a short `preheader:` beside the description",
        ));
    }
}

pub(super) fn not_scheduled(s: &Subject<'_>, out: &mut Vec<Found>) {
    let issue = s.issue;
    if issue.draft || s.around.enqueued.contains(issue.slug.as_str()) {
        return;
    }
    match (issue.date, &s.around.last_sent) {
        (None, _) => out.push(Found::new(
            At::File,
            "the issue has no date, so the scheduler will never send it on its own",
            "add `date:` to the front matter, or send it by hand (herald send, the API or the dashboard)",
        )),
        (Some(date), Some((last, last_date))) if date.to_utc() <= *last_date => {
            out.push(Found::new(
                At::Field("date"),
                format!(
                    "dated {}, not after {last} ({}), the last issue sent: the scheduler will never send it on its own",
                    date.format("%Y-%m-%d"),
                    last_date.format("%Y-%m-%d")
                ),
                "date it after the last issue sent, or send it by hand",
            ));
        }
        _ => {}
    }
}

pub(super) fn draft(s: &Subject<'_>, out: &mut Vec<Found>) {
    if s.issue.draft {
        out.push(Found::new(
            At::Field("draft"),
            "the issue is a draft: no send takes it, and the scheduler skips it",
            "remove `draft: true` when it is ready",
        ));
    }
}
