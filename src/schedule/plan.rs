//! Which issue a tick sends: a pure function of the issue files, the issues already in the
//! ledger, and the tick time, so `herald serve` and `herald schedule` agree on it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::issue::Issue;
use crate::store::EnqueuedIssueDate;

/// One issue file, as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub slug: String,
    pub title: String,
    /// The front matter `date` (a date without an offset is UTC).
    pub date: DateTime<Utc>,
    pub path: PathBuf,
}

/// What a tick at [`Plan::at`] would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub at: DateTime<Utc>,
    /// The issue to enqueue, if any.
    pub send: Option<Candidate>,
    /// The newest issue already enqueued, by date: only issues dated after it are sent.
    pub last_sent: Option<(String, DateTime<Utc>)>,
    /// Never-enqueued issues dated at or before the tick that are not newer than the last
    /// one sent (or than [`Plan::send`]): these are never sent automatically.
    pub older_than_last: Vec<Candidate>,
    /// Never-enqueued issues dated after the tick.
    pub not_yet_due: Vec<Candidate>,
    /// Never-enqueued issues without a `date`: never sent automatically.
    pub undated: Vec<String>,
    /// Never-enqueued issues marked `draft: true`: never sent automatically.
    pub drafts: Vec<String>,
}

/// The plan for a tick at `at`: the newest issue among `issues` that is not a draft, is
/// dated at or before `at`, was never enqueued, and is dated after the newest issue in
/// `enqueued`. An enqueued issue whose
/// date was not recorded (enqueued before herald stored dates) counts with the date of the
/// issue file of the same slug. Among files sharing a slug, the first one counts.
pub fn plan(issues: &[Issue], enqueued: &[EnqueuedIssueDate], at: DateTime<Utc>) -> Plan {
    let file_dates: HashMap<&str, DateTime<Utc>> = issues
        .iter()
        .rev()
        .filter_map(|i| Some((i.slug.as_str(), i.date?.with_timezone(&Utc))))
        .collect();
    let last_sent = enqueued
        .iter()
        .filter_map(|row| {
            let date = row
                .issue_date
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .or_else(|| file_dates.get(row.slug.as_str()).copied())?;
            Some((row.slug.clone(), date))
        })
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let sent: HashSet<&str> = enqueued.iter().map(|row| row.slug.as_str()).collect();

    let mut seen = HashSet::new();
    let mut plan = Plan {
        at,
        send: None,
        last_sent: last_sent.clone(),
        older_than_last: Vec::new(),
        not_yet_due: Vec::new(),
        undated: Vec::new(),
        drafts: Vec::new(),
    };
    for issue in issues {
        let slug = issue.slug.as_str();
        if !seen.insert(slug) || sent.contains(slug) {
            continue;
        }
        if issue.draft {
            plan.drafts.push(slug.to_string());
            continue;
        }
        let Some(date) = issue.date.map(|d| d.with_timezone(&Utc)) else {
            plan.undated.push(slug.to_string());
            continue;
        };
        let candidate = Candidate {
            slug: slug.to_string(),
            title: issue.title.clone(),
            date,
            path: issue.path.clone(),
        };
        if date > at {
            plan.not_yet_due.push(candidate);
        } else if last_sent.as_ref().is_some_and(|(_, last)| date <= *last) {
            plan.older_than_last.push(candidate);
        } else if plan
            .send
            .as_ref()
            .is_none_or(|best| (date, slug) > (best.date, best.slug.as_str()))
        {
            if let Some(previous) = plan.send.replace(candidate) {
                plan.older_than_last.push(previous);
            }
        } else {
            plan.older_than_last.push(candidate);
        }
    }
    plan.older_than_last.sort_by_key(|c| c.date);
    plan.not_yet_due.sort_by_key(|c| c.date);
    plan
}

impl Plan {
    /// Why nothing would be sent, in the words `herald schedule` and the logs use.
    pub const NOTHING: &'static str =
        "nothing: no unsent issue dated on or before then newer than the last one sent";
}
