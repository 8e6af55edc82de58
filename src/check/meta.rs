//! The front matter and the issue's place among the others: a slug another file has, the
//! subject and inbox preview lengths, whether the scheduler will ever send it, drafts.

use unicode_width::UnicodeWidthStr;

use super::{At, Found, Subject, Words};

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
            Words::new("check-slug-duplicate")
                .with("slug", &issue.slug)
                .with("others", others.join(", ")),
            Words::new("check-slug-duplicate-hint"),
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
            Words::new("check-subject-long")
                .number("width", width)
                .number("limit", SUBJECT_COLUMNS),
            Words::new("check-subject-long-hint"),
        ));
    }
}

pub(super) fn description_missing(s: &Subject<'_>, out: &mut Vec<Found>) {
    if s.issue.preheader.is_none() {
        out.push(Found::new(
            At::File,
            Words::new("check-description-missing"),
            Words::new("check-description-missing-hint"),
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
            Words::new("check-description-long")
                .with("field", field)
                .number("width", width)
                .number("limit", PREVIEW_COLUMNS),
            Words::new("check-description-long-hint"),
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
            Words::new("check-not-scheduled-undated"),
            Words::new("check-not-scheduled-undated-hint"),
        )),
        (Some(date), Some((last, last_date))) if date.to_utc() <= *last_date => {
            out.push(Found::new(
                At::Field("date"),
                Words::new("check-not-scheduled-early")
                    .with("date", date.format("%Y-%m-%d"))
                    .with("last", last)
                    .with("last_date", last_date.format("%Y-%m-%d")),
                Words::new("check-not-scheduled-early-hint"),
            ));
        }
        _ => {}
    }
}

pub(super) fn draft(s: &Subject<'_>, out: &mut Vec<Found>) {
    if s.issue.draft {
        out.push(Found::new(
            At::Field("draft"),
            Words::new("check-draft"),
            Words::new("check-draft-hint"),
        ));
    }
}
