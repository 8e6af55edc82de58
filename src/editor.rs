//! What an editor does through the HTTP API and the dashboard, as library calls both share:
//! issue status with progress, the issue's report, "send now" under an idempotency key,
//! "retry failed", a test copy, the preview, and the subscriber list (search, add, erase,
//! import, export).
//!
//! The web handlers only translate HTTP to these calls and [`EditorError`] to statuses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::dispatch::pacing::ThrottledGroup;
use crate::dispatch::unix_now;
use crate::domain::{
    EmailAddress, ErasureKey, IssueSlug, SubscriberName, SubscriberStatus, TokenKey,
};
use crate::issue::{self, IssueError};
use crate::mail::SendOutcome;
use crate::preview::{self, PreviewError};
use crate::schedule::{load_issues, upcoming_sends, IssueFiles, Schedule};
use crate::startup::{App, Drafts, StartupError};
use crate::store::{
    AddOutcome, BounceCounts, BounceRow, DeliveryCounts, IssueRow, NewSubscriber, NodeRow,
    Reactivation, SentByNode, Store, StoreError, StoredAnswer, Subscriber, SubscriberPage,
};
use crate::subscribers::{
    export_csv, import_csv, ExportError, ImportError, ImportEvent, ImportOptions, ImportSummary,
};

/// The `source` recorded for what the API does.
pub const SOURCE_API: &str = "api";
/// The `source` recorded for what the dashboard does.
pub const SOURCE_DASHBOARD: &str = "dashboard";
/// The most subscribers one search page returns.
pub const MAX_PER_PAGE: u32 = 500;
/// The highest page number of a subscriber search (as the API's document says).
pub const MAX_PAGE: u64 = 1_000_000_000;

/// Why an editor's request failed.
#[derive(Debug, thiserror::Error)]
pub enum EditorError {
    /// No such issue (no file in `issues_dir` and nothing in the ledger), or subscriber.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (an address that does not parse, a bad slug, ...).
    #[error("{0}")]
    BadInput(String),
    /// The subscriber is already on the list.
    #[error("{0}")]
    Conflict(String),
    /// The idempotency key was first used for another request.
    #[error("this Idempotency-Key was used for another request ({0})")]
    KeyReused(String),
    /// The issue is marked `draft: true` and the send was not forced.
    #[error("{0}")]
    Draft(String),
    /// `herald check` finds an error in the issue. `reason` names the first error, as
    /// `FILE:LINE:COLUMN: rule: message`, in English; `first` is that finding.
    #[error("{reason}")]
    Refused {
        reason: String,
        first: Option<Box<crate::check::Finding>>,
    },
    /// The relay did not accept a test copy.
    #[error("the relay did not accept the message: {0}")]
    Relay(String),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Preview(#[from] PreviewError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Schedule(#[from] crate::schedule::ScheduleError),
    #[error(transparent)]
    Render(#[from] crate::render::pool::PoolError),
}

impl EditorError {
    /// The one-line message when the request failed because of an issue file's content (too
    /// large, nested too deeply, a bad field): the editor's to fix, not a server fault.
    pub fn issue_file_problem(&self) -> Option<String> {
        match self {
            Self::Issue(e)
            | Self::Startup(StartupError::Issue(e))
            | Self::Preview(PreviewError::Issue(e)) => Some(e.to_string()),
            _ => None,
        }
    }
}

/// How far a send has come.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Progress {
    /// Deliveries that are finished: sent, failed or skipped.
    pub done: u64,
    /// Deliveries in the ledger.
    pub total: u64,
    /// `done / total` in whole percent, rounded down (100 only when everything is done).
    pub percent: u64,
}

impl Progress {
    fn of(counts: &DeliveryCounts, status: &str) -> Self {
        let total = counts.total();
        let done = counts.sent + counts.failed + counts.skipped;
        let percent = match total {
            0 if status == "sent" => 100,
            0 => 0,
            t => done * 100 / t,
        };
        Self {
            done,
            total,
            percent,
        }
    }
}

/// An issue file merged with its ledger state.
#[derive(Debug, Clone, Serialize)]
pub struct IssueStatus {
    pub slug: String,
    pub title: String,
    /// The front matter `description`, if any.
    pub description: Option<String>,
    /// The issue's date from its front matter (RFC 3339).
    pub date: Option<String>,
    /// `draft` (marked `draft: true` and never sent), `scheduled` (the scheduler will send
    /// it by itself, at `scheduled_for`), `unsent` (never enqueued, and the scheduler will
    /// not send it: no date, older than the last one sent, or the schedule is off),
    /// `sending`, `sent` (or `cancelled`).
    pub status: String,
    /// The file says `draft: true`.
    pub draft: bool,
    /// When the scheduler will send it, if nothing else is sent meanwhile (RFC 3339).
    pub scheduled_for: Option<String>,
    /// Deliveries by status.
    pub counts: DeliveryCounts,
    /// Copies that later bounced (hard, soft) or drew a complaint.
    pub bounces: BounceCounts,
    pub progress: Progress,
    /// When the send started and finished (RFC 3339).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// False when the ledger knows the issue but its file is gone from `issues_dir`.
    pub has_file: bool,
    /// How many rows each node sent, most first (none before anything was sent).
    pub sent_by: Vec<SentByNode>,
    /// While it is sending: the destination groups this process has slowed down because
    /// they throttled it (the same for every issue the process sends), slowest first.
    /// Empty otherwise, and from `herald status`, which sends nothing itself.
    pub throttled: Vec<ThrottledGroup>,
}

impl IssueStatus {
    /// Whether it was ever enqueued (it has a ledger).
    pub fn was_queued(&self) -> bool {
        !matches!(self.status.as_str(), "draft" | "scheduled" | "unsent")
    }

    /// Whether "send now" can do anything: there is a file, it is not a draft, and it is not
    /// finished (a `sending` issue may take subscribers who became active since).
    pub fn can_send(&self) -> bool {
        self.has_file && !self.draft && self.status != "sent"
    }

    /// The time it is listed by: its date, else when its send started.
    fn listed_at(&self) -> Option<&str> {
        self.date.as_deref().or(self.started_at.as_deref())
    }
}

fn rfc3339(seconds: Option<i64>) -> Option<String> {
    seconds
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

async fn status_of(
    store: &Store,
    slug: &str,
    file: Option<&issue::Issue>,
    row: Option<&IssueRow>,
    scheduled_for: Option<DateTime<Utc>>,
) -> Result<IssueStatus, EditorError> {
    let (counts, bounces, sent_by) = match row {
        Some(row) => (
            store.delivery_counts(row.id).await?,
            store.bounce_counts(row.id).await?,
            store.sent_by_node(row.id).await?,
        ),
        None => (
            DeliveryCounts::default(),
            BounceCounts::default(),
            Vec::new(),
        ),
    };
    let draft = file.is_some_and(|f| f.draft);
    let status = match row {
        Some(row) => row.status.clone(),
        None if draft => "draft".into(),
        None if scheduled_for.is_some() => "scheduled".into(),
        None => "unsent".into(),
    };
    // As the file writes it (with its offset), else as it was when enqueued.
    let date = match file.and_then(|f| f.date) {
        Some(d) => Some(d.to_rfc3339()),
        None => rfc3339(row.and_then(|r| r.issue_date)),
    };
    Ok(IssueStatus {
        slug: slug.to_string(),
        title: file
            .map(|f| f.title.clone())
            .or_else(|| row.map(|r| r.title.clone()))
            .unwrap_or_default(),
        description: file.and_then(|f| f.description.clone()),
        date,
        progress: Progress::of(&counts, &status),
        status,
        draft,
        scheduled_for: rfc3339(scheduled_for.map(|t| t.timestamp())),
        counts,
        bounces,
        started_at: rfc3339(row.and_then(|r| r.started_at)),
        finished_at: rfc3339(row.and_then(|r| r.finished_at)),
        has_file: file.is_some(),
        sent_by,
        throttled: Vec::new(),
    })
}

/// The live nodes (heartbeat within [`crate::nodes::LIVE_WITHIN`]), by id, each with how
/// many rows it sent.
pub async fn live_nodes(store: &Store) -> Result<Vec<NodeRow>, EditorError> {
    Ok(store
        .nodes_seen_since(crate::nodes::live_since(unix_now()))
        .await?)
}

/// Every issue, and the issue files that could not be read.
#[derive(Debug)]
pub struct Overview {
    /// Newest first by issue date (an issue without a date by when its send started);
    /// issues with neither come first.
    pub issues: Vec<IssueStatus>,
    pub broken: Vec<IssueError>,
}

/// Every issue file in `issues_dir` and every issue the ledger knows, with its state, and
/// when the scheduler would send each unsent one (see [`crate::schedule::upcoming_sends`]).
pub async fn overview(store: &Store, settings: &Settings) -> Result<Overview, EditorError> {
    let files = issue_files(settings).await?;
    let rows = store.list_issues().await?;
    let scheduled = scheduled_sends(store, settings, &files.issues).await?;
    let mut by_slug: HashMap<&str, &IssueRow> = rows.iter().map(|r| (r.slug.as_str(), r)).collect();
    let mut issues = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for file in &files.issues {
        if !seen.insert(file.slug.as_str()) {
            continue;
        }
        let row = by_slug.remove(file.slug.as_str());
        let when = scheduled.get(file.slug.as_str()).copied();
        issues.push(status_of(store, file.slug.as_str(), Some(file), row, when).await?);
    }
    for row in rows
        .iter()
        .filter(|r| by_slug.contains_key(r.slug.as_str()))
    {
        issues.push(status_of(store, &row.slug, None, Some(row), None).await?);
    }
    issues.sort_by(|a, b| match (a.listed_at(), b.listed_at()) {
        (None, None) => a.slug.cmp(&b.slug),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => parse_time(y)
            .cmp(&parse_time(x))
            .then_with(|| a.slug.cmp(&b.slug)),
    });
    Ok(Overview {
        issues,
        broken: files.broken,
    })
}

/// The issue files of `issues_dir`, read off the async workers; none when there is no such
/// folder (yet).
async fn issue_files(settings: &Settings) -> Result<IssueFiles, EditorError> {
    let dir = &settings.newsletter.issues_dir;
    if !dir.exists() {
        return Ok(IssueFiles::default());
    }
    Ok(load_issues(dir, settings.newsletter.issue_limits()).await?)
}

fn parse_time(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// When the scheduler will send each of `issues` by itself, by slug (empty when it is off).
async fn scheduled_sends(
    store: &Store,
    settings: &Settings,
    issues: &[issue::Issue],
) -> Result<HashMap<String, DateTime<Utc>>, EditorError> {
    let schedule = Schedule::from_settings(&settings.schedule)?;
    if !schedule.is_enabled() {
        return Ok(HashMap::new());
    }
    let enqueued = store.enqueued_issue_dates().await?;
    Ok(upcoming_sends(&schedule, issues, &enqueued, Utc::now())
        .into_iter()
        .collect())
}

/// Every issue ([`overview`]); files that do not parse are logged and left out.
pub async fn list_issues(app: &App) -> Result<Vec<IssueStatus>, EditorError> {
    let overview = overview(&app.store, &app.settings).await?;
    for e in &overview.broken {
        tracing::warn!(error = %e, "an issue file does not parse");
    }
    Ok(overview.issues)
}

/// Parses a slug from a request.
pub fn parse_slug(slug: &str) -> Result<IssueSlug, EditorError> {
    IssueSlug::parse(slug).map_err(|_| EditorError::NotFound(format!("no issue {slug:?}")))
}

/// One issue's status, counts and progress.
pub async fn issue_status(app: &App, slug: &IssueSlug) -> Result<IssueStatus, EditorError> {
    let mut status = issue_status_in(&app.store, &app.settings, slug).await?;
    if status.status == "sending" {
        status.throttled = app.pacer.throttled_groups();
    }
    Ok(status)
}

/// The report of issue `slug`: deliveries, bounces, complaints, unsubscribes, and (when
/// tracking is on) clicks, links and opens, with its first 72 hours hour by hour. An issue
/// never sent has an empty report.
pub async fn issue_report(
    app: &App,
    slug: &IssueSlug,
) -> Result<crate::tracking::IssueReport, EditorError> {
    let status = issue_status_in(&app.store, &app.settings, slug).await?;
    let row = app.store.find_issue(slug.as_str()).await?;
    let input = crate::tracking::report::ReportInput {
        slug: slug.as_str(),
        title: &status.title,
        issue_id: row.as_ref().map(|r| r.id),
        started_at: row.as_ref().and_then(|r| r.started_at),
        counts: status.counts,
        bounces: status.bounces,
        tracking: &app.settings.tracking,
    };
    Ok(crate::tracking::issue_report(&app.store, input).await?)
}

/// As [`issue_status`], over a store and settings (for `herald status`).
pub async fn issue_status_in(
    store: &Store,
    settings: &Settings,
    slug: &IssueSlug,
) -> Result<IssueStatus, EditorError> {
    let file = find(settings, slug).await?;
    let row = store.find_issue(slug.as_str()).await?;
    if file.is_none() && row.is_none() {
        return Err(not_found(slug));
    }
    // Only an issue never enqueued can be waiting for the scheduler.
    let scheduled = match (&file, &row) {
        (Some(f), None) if !f.draft => {
            let files = issue_files(settings).await?;
            scheduled_sends(store, settings, &files.issues)
                .await?
                .get(slug.as_str())
                .copied()
        }
        _ => None,
    };
    status_of(store, slug.as_str(), file.as_ref(), row.as_ref(), scheduled).await
}

fn not_found(slug: &IssueSlug) -> EditorError {
    EditorError::NotFound(format!("no issue {:?}", slug.as_str()))
}

/// Enqueues the issue and wakes the dispatcher ([`App::send_now_as`]); an unknown slug is
/// [`EditorError::NotFound`], a draft (unless `drafts` says to send it)
/// [`EditorError::Draft`], an issue in which `herald check` finds an error
/// [`EditorError::Refused`] (never overridden here: that is `herald send --force`'s).
pub async fn send_now(
    app: &App,
    slug: &IssueSlug,
    source: &str,
    drafts: Drafts,
) -> Result<IssueStatus, EditorError> {
    match app.send_now_as(slug, source, drafts.into()).await {
        Ok(enqueued) => {
            tracing::info!(slug = slug.as_str(), added = enqueued.added, %source, "send requested");
            issue_status(app, slug).await
        }
        Err(StartupError::UnknownIssue { .. }) => Err(not_found(slug)),
        Err(e @ StartupError::Draft { .. }) => Err(EditorError::Draft(e.to_string())),
        Err(StartupError::Refused { errors, .. }) => {
            let reason = crate::startup::refusal_reason(&errors);
            tracing::warn!(slug = slug.as_str(), %source, %reason, "send refused: the issue has errors");
            Err(EditorError::Refused {
                reason,
                first: errors.into_iter().next().map(Box::new),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// `herald check`'s findings for the issue file of `slug` (empty when only the ledger
/// knows the issue: its file is gone).
pub async fn issue_findings(
    app: &App,
    slug: &IssueSlug,
) -> Result<Vec<crate::check::Finding>, EditorError> {
    match find(&app.settings, slug).await? {
        Some(file) => Ok(app.check_path(&file.path).await?),
        None => Ok(Vec::new()),
    }
}

/// "Retry failed": puts the issue's non-permanent failures back in the queue (see
/// [`crate::store::Store::requeue_failed_deliveries`]: attempts start again from 0) and
/// wakes the dispatcher. Returns how many deliveries were requeued.
pub async fn retry_failed(app: &App, slug: &IssueSlug) -> Result<u64, EditorError> {
    let Some(row) = app.store.find_issue(slug.as_str()).await? else {
        if find(&app.settings, slug).await?.is_some() {
            return Ok(0);
        }
        return Err(not_found(slug));
    };
    let moved = app
        .store
        .requeue_failed_deliveries(row.id, unix_now())
        .await?;
    if moved > 0 {
        app.dispatch_wake.notify_one();
    }
    tracing::info!(slug = slug.as_str(), moved, "failed deliveries requeued");
    Ok(moved)
}

/// What the relay said to a test copy it accepted.
#[derive(Debug, Clone, Serialize)]
pub struct TestSent {
    /// The address, masked as in the logs.
    pub to: String,
    /// The relay's reply.
    pub reply: String,
}

/// Sends one test copy of the issue to `to`; nothing is recorded in the ledger.
pub async fn send_test(app: &App, slug: &IssueSlug, to: &str) -> Result<TestSent, EditorError> {
    let to = EmailAddress::parse(to.trim())
        .map_err(|e| EditorError::BadInput(format!("the address is not valid: {e}")))?;
    let prepared = match app.prepare_slug(slug).await {
        Ok(p) => p,
        Err(StartupError::UnknownIssue { .. }) => return Err(not_found(slug)),
        Err(e) => return Err(e.into()),
    };
    match app.send_test(&prepared, &to).await? {
        SendOutcome::Accepted { reply } => {
            tracing::info!(slug = slug.as_str(), to = %to.masked(), "test copy sent");
            Ok(TestSent {
                to: to.masked(),
                reply,
            })
        }
        SendOutcome::Transient { reply, .. } | SendOutcome::Permanent { reply, .. } => {
            Err(EditorError::Relay(reply))
        }
        SendOutcome::RelayDown { reason } => Err(EditorError::Relay(reason)),
    }
}

/// The issue's HTML as the sample recipient gets it (what `herald preview` shows), rendered
/// on the render pool.
pub async fn preview_html(app: &App, slug: &IssueSlug) -> Result<String, EditorError> {
    let file = find(&app.settings, slug)
        .await?
        .ok_or_else(|| not_found(slug))?;
    let settings = app.settings.clone();
    let preview = app
        .off_the_workers(move || preview::sample(&settings, &file.path))
        .await??;
    Ok(preview.html)
}

/// The issue file with this slug ([`issue::find`]), read on a blocking thread, never on the
/// async workers.
async fn find(settings: &Settings, slug: &IssueSlug) -> Result<Option<issue::Issue>, EditorError> {
    let dir = settings.newsletter.issues_dir.clone();
    let limits = settings.newsletter.issue_limits();
    let slug = slug.clone();
    tokio::task::spawn_blocking(move || issue::find(&dir, &slug, &limits))
        .await
        .map_err(|e| crate::render::pool::PoolError::Panicked(e.to_string()))?
        .map_err(EditorError::from)
}

/// How many subscribers have each status, every status listed (zeros included).
pub async fn subscriber_counts(app: &App) -> Result<Vec<(SubscriberStatus, i64)>, EditorError> {
    let held = app.store.count_subscribers_by_status().await?;
    Ok(SubscriberStatus::ALL
        .iter()
        .map(|s| (*s, held.iter().find(|(h, _)| h == s).map_or(0, |(_, n)| *n)))
        .collect())
}

/// A subscriber search: `page` counts from 1.
pub async fn search_subscribers(
    app: &App,
    query: &str,
    status: Option<&str>,
    page: u64,
    per_page: u32,
) -> Result<SubscriberPage, EditorError> {
    // An empty `status=` is no filter, as when it is left out.
    let status = parse_status(status.filter(|s| !s.is_empty()))?;
    if page == 0 || page > MAX_PAGE || per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(EditorError::BadInput(format!(
            "page is 1 to {MAX_PAGE}, and per_page is 1 to {MAX_PER_PAGE}"
        )));
    }
    let offset = (page - 1).saturating_mul(u64::from(per_page));
    Ok(app
        .store
        .search_subscribers(query, status, per_page, offset)
        .await?)
}

/// A status as the API spells it: one of the stored names exactly (as its document says).
fn parse_status(status: Option<&str>) -> Result<Option<SubscriberStatus>, EditorError> {
    match status {
        None => Ok(None),
        Some(s) => SubscriberStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .map(Some)
            .ok_or_else(|| {
                EditorError::BadInput(format!(
                    "unknown status {s:?}: use pending, active, unsubscribed, bounced or \
                     complained"
                ))
            }),
    }
}

fn erasure_key(app: &App) -> Result<ErasureKey, EditorError> {
    let secret = app.settings.secret_key().map_err(StartupError::from)?;
    Ok(ErasureKey::new(&secret))
}

/// Adds one subscriber (default status `active`). Returns the new id; an address already
/// on the list, or erased at its owner's request, is [`EditorError::Conflict`].
pub async fn add_subscriber(
    app: &App,
    email: &str,
    name: Option<&str>,
    status: Option<&str>,
    source: &str,
) -> Result<i64, EditorError> {
    let email = EmailAddress::parse(email.trim())
        .map_err(|e| EditorError::BadInput(format!("the address is not valid: {e}")))?;
    let name = match name {
        Some(n) => SubscriberName::parse(n)
            .map_err(|e| EditorError::BadInput(format!("the name is not valid: {e}")))?,
        None => None,
    };
    let status = parse_status(status)?.unwrap_or(SubscriberStatus::Active);
    let hash = erasure_key(app)?.hash(&email);
    let new = NewSubscriber {
        email,
        name,
        status,
        attributes: serde_json::Map::new(),
    };
    match app.store.add_subscriber(&new, &hash, source).await? {
        AddOutcome::Added { id } => Ok(id),
        AddOutcome::AlreadyPresent { status } => Err(EditorError::Conflict(format!(
            "that address is already on the list (status {status})"
        ))),
        // The request is well formed; the list's state refuses it, as for an address on it.
        AddOutcome::Erased => Err(EditorError::Conflict(
            "that address was erased at its owner's request and is not added back".into(),
        )),
    }
}

/// Erases a subscriber, as `herald subscribers remove` does. Returns whether one was held
/// (the keyed hash that blocks re-imports is recorded either way).
pub async fn remove_subscriber(app: &App, email: &str, source: &str) -> Result<bool, EditorError> {
    let email = EmailAddress::parse(email.trim())
        .map_err(|e| EditorError::BadInput(format!("the address is not valid: {e}")))?;
    let hash = erasure_key(app)?.hash(&email);
    Ok(app.store.erase_subscriber(&email, &hash, source).await?)
}

/// The outcome of an import, with each rejected row's line and reason.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub imported: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub rejections: Vec<ImportRejection>,
}

/// One row that was not imported.
#[derive(Debug, Clone, Serialize)]
pub struct ImportRejection {
    pub line: u64,
    pub reason: String,
}

/// Imports a CSV document with the same importer as `herald subscribers import` (rows
/// without a `status` become `active`).
pub async fn import_subscribers(app: &App, csv: &[u8]) -> Result<ImportReport, EditorError> {
    let key = erasure_key(app)?;
    let mut rejections = Vec::new();
    let summary: ImportSummary =
        import_csv(&app.store, &key, csv, &ImportOptions::default(), |event| {
            if let ImportEvent::Rejected(r) = event {
                rejections.push(ImportRejection {
                    line: r.line,
                    reason: r.reason,
                });
            }
        })
        .await
        .map_err(|e| match e {
            ImportError::Store(e) => EditorError::Store(e),
            other => EditorError::BadInput(other.to_string()),
        })?;
    tracing::info!(%summary, "subscribers imported");
    Ok(ImportReport {
        imported: summary.imported,
        duplicates: summary.duplicates,
        rejected: summary.rejected,
        rejections,
    })
}

/// Every subscriber as CSV, with the columns of `herald subscribers export` (the same
/// writer), in an unnamed temporary file rewound to its start, so a long list is streamed to
/// the editor rather than held in memory. Returns the file and how many subscribers it holds.
pub async fn export_subscribers(app: &App) -> Result<(std::fs::File, u64), EditorError> {
    use std::io::{Seek, Write};
    let mut file = tempfile::tempfile().map_err(ExportError::Io)?;
    let mut writer = std::io::BufWriter::with_capacity(256 * 1024, &mut file);
    let n = export_csv(&app.store, &mut writer).await?;
    writer.flush().map_err(ExportError::Io)?;
    drop(writer);
    file.rewind().map_err(ExportError::Io)?;
    tracing::info!(subscribers = n, "subscribers exported");
    Ok((file, n))
}

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// "Send now" under an idempotency key: the first request with a key acts and its answer
/// is stored in the database; every later request with the key gets the stored answer
/// (also after a restart). Requests with the same key are served one at a time in this
/// process, so two concurrent ones enqueue once. Failures are not stored: a request that
/// failed may be retried with the same key.
#[derive(Default)]
pub struct IdempotentSends {
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl IdempotentSends {
    /// Answers `POST /api/issues/{slug}/send` with `key`: the stored answer for the key, or
    /// the status after enqueueing (status 202).
    pub async fn send(
        &self,
        app: &App,
        key: &str,
        slug: &str,
        drafts: Drafts,
    ) -> Result<StoredAnswer, EditorError> {
        if key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY
            || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(EditorError::BadInput(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            )));
        }
        let fingerprint = format!("POST /api/issues/{slug}/send");
        let lock = {
            let mut map = self
                .in_flight
                .lock()
                .expect("the lock map is never poisoned");
            map.entry(key.to_string()).or_default().clone()
        };
        let result = {
            let _turn = lock.lock().await;
            self.send_once(app, key, slug, fingerprint, drafts).await
        };
        drop(lock);
        let mut map = self
            .in_flight
            .lock()
            .expect("the lock map is never poisoned");
        if map.get(key).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(key);
        }
        result
    }

    async fn send_once(
        &self,
        app: &App,
        key: &str,
        slug: &str,
        fingerprint: String,
        drafts: Drafts,
    ) -> Result<StoredAnswer, EditorError> {
        if let Some(stored) = app.store.find_idempotent_answer(key).await? {
            return if stored.fingerprint == fingerprint {
                Ok(stored)
            } else {
                Err(EditorError::KeyReused(stored.fingerprint))
            };
        }
        let slug = parse_slug(slug)?;
        let status = send_now(app, &slug, SOURCE_API, drafts).await?;
        let answer = StoredAnswer {
            fingerprint,
            status: 202,
            body: serde_json::to_string(&status).expect("a status serialises"),
        };
        let stored = app
            .store
            .store_idempotent_answer(key, &answer, unix_now())
            .await?;
        if stored.fingerprint != answer.fingerprint {
            return Err(EditorError::KeyReused(stored.fingerprint));
        }
        Ok(stored)
    }
}

/// The dashboard's session and CSRF tokens: signed with a key derived from both the
/// instance secret and the admin token, so changing the admin token ends every session.
#[derive(Clone, Debug)]
pub struct SessionKey(TokenKey);

/// How long a dashboard session lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;

impl SessionKey {
    /// Derives the key from `web.secret_key` and the admin token.
    pub fn new(app: &App) -> Result<Self, StartupError> {
        use secrecy::ExposeSecret;
        let secret = app.settings.secret_key().map_err(StartupError::from)?;
        let (token, _) = app.settings.admin_token().map_err(StartupError::from)?;
        let material = format!(
            "herald-admin-session-v1\0{}\0{}",
            secret.expose_secret(),
            token.expose_secret()
        );
        Ok(Self(TokenKey::new(&material.into())))
    }

    /// A new session valid for [`SESSION_SECONDS`] from `now`: the cookie value.
    pub fn new_session(&self, now: i64) -> String {
        use rand::Rng;
        let id: i64 = rand::rngs::OsRng.gen_range(1..i64::MAX);
        self.0
            .sign(
                crate::domain::Purpose::AdminSession,
                id,
                Some(now + SESSION_SECONDS),
            )
            .to_string()
    }

    /// The session id of a validly signed, unexpired session cookie (see
    /// [`session_is_live`] for logouts).
    pub fn verify_session(&self, cookie: &str, now: i64) -> Option<i64> {
        self.0
            .verify(crate::domain::Purpose::AdminSession, cookie, now)
            .ok()
    }

    /// The CSRF token of session `id`, for every form of that session.
    pub fn csrf_token(&self, session_id: i64) -> String {
        self.0
            .sign(crate::domain::Purpose::AdminCsrf, session_id, None)
            .to_string()
    }

    /// Whether `token` is the CSRF token of session `id` (the signature is checked in
    /// constant time).
    pub fn verify_csrf(&self, session_id: i64, token: &str) -> bool {
        self.0
            .verify(crate::domain::Purpose::AdminCsrf, token, 0)
            .is_ok_and(|id| id == session_id)
    }
}

/// Whether session `id` has not been ended by logging out.
pub async fn session_is_live(app: &App, id: i64) -> Result<bool, EditorError> {
    Ok(!app.store.is_admin_session_ended(id).await?)
}

/// Ends session `id` (logout): its cookie stops working even where a copy was kept.
pub async fn end_session(app: &App, id: i64) -> Result<(), EditorError> {
    let now = unix_now();
    app.store
        .end_admin_session(id, now + SESSION_SECONDS, now)
        .await?;
    Ok(())
}

/// The scheduler's next run, as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NextRun {
    /// Readable, in the schedule's timezone: `Fri 27 Nov 2026, 09:00 CET`.
    pub at: String,
    /// Exact (RFC 3339).
    pub at_exact: String,
    /// The schedule's timezone (an IANA name), for showing `at_exact` in it.
    pub tz: String,
    /// The slug and title of the issue it would send now, if any.
    pub slug: Option<String>,
    pub title: Option<String>,
}

/// When the scheduler runs next and what it would send, or `None` when it is off.
pub async fn next_scheduled_run(app: &App) -> Result<Option<NextRun>, EditorError> {
    let schedule = Schedule::from_settings(&app.settings.schedule)?;
    let ticks = schedule.upcoming(Utc::now(), 1);
    let Some(&tick) = ticks.first() else {
        return Ok(None);
    };
    let newsletter = &app.settings.newsletter;
    let forecast = crate::schedule::forecast(
        &app.store,
        &newsletter.issues_dir,
        newsletter.issue_limits(),
        &ticks,
    )
    .await?;
    let chosen = forecast.plans.into_iter().next().and_then(|p| p.send);
    Ok(Some(NextRun {
        at: crate::words::readable_time(tick, schedule.tz),
        at_exact: tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tz: schedule.tz.name().to_string(),
        slug: chosen.as_ref().map(|c| c.slug.clone()),
        title: chosen.map(|c| c.title),
    }))
}

/// Wrong admin tokens per client address. After `web.admin_failures_per_minute` (default
/// [`AuthThrottle::MAX_FAILURES`]) wrong tokens within a minute, that address is refused
/// (without its token being looked at) until the minute is over, so the API and the login
/// form cannot be used to guess the token.
#[derive(Debug)]
pub struct AuthThrottle {
    /// Address → (start of its current one-minute window, wrong tokens in it).
    failures: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (i64, u32)>>,
    /// Wrong tokens allowed per address per minute; 0 means no lockout.
    max_failures: u32,
}

impl Default for AuthThrottle {
    fn default() -> Self {
        Self::new(Self::MAX_FAILURES)
    }
}

impl AuthThrottle {
    /// Wrong tokens allowed per address per minute, by default.
    pub const MAX_FAILURES: u32 = 10;
    const WINDOW_SECONDS: i64 = 60;
    /// Addresses remembered before old windows are swept.
    const SWEEP_AT: usize = 10_000;

    /// A throttle that locks an address out after `max_failures` wrong tokens in a minute
    /// (never, with 0).
    pub fn new(max_failures: u32) -> Self {
        Self {
            failures: Default::default(),
            max_failures,
        }
    }

    /// `Some(seconds)` to wait when `ip` used up its wrong tokens for this minute.
    pub fn blocked(&self, ip: std::net::IpAddr, now: i64) -> Option<i64> {
        if self.max_failures == 0 {
            return None;
        }
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let &(start, count) = failures.get(&ip)?;
        let ends = start + Self::WINDOW_SECONDS;
        (count >= self.max_failures && now < ends).then_some(ends - now)
    }

    /// Counts a wrong token from `ip`.
    pub fn failed(&self, ip: std::net::IpAddr, now: i64) {
        if self.max_failures == 0 {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= Self::SWEEP_AT {
            failures.retain(|_, (start, _)| now < *start + Self::WINDOW_SECONDS);
        }
        let entry = failures.entry(ip).or_insert((now, 0));
        if now >= entry.0 + Self::WINDOW_SECONDS {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

/// Whether `offered` is the admin token, compared in constant time (both sides are hashed
/// first, so not even the length leaks).
pub fn is_admin_token(expected: &secrecy::SecretString, offered: &str) -> bool {
    use secrecy::ExposeSecret;
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let a = Sha256::digest(expected.expose_secret().as_bytes());
    let b = Sha256::digest(offered.as_bytes());
    a.ct_eq(&b).into()
}

/// The latest returned-mail reports (bounces, delays, complaints, auto-replies), newest
/// first; `limit` is 1 to [`MAX_PER_PAGE`].
pub async fn recent_bounces(app: &App, limit: u32) -> Result<Vec<BounceRow>, EditorError> {
    if limit == 0 || limit > MAX_PER_PAGE {
        return Err(EditorError::BadInput(format!(
            "limit is 1 to {MAX_PER_PAGE}"
        )));
    }
    Ok(app.store.recent_bounces(limit).await?)
}

/// One subscriber's returned-mail history, newest first.
pub async fn subscriber_bounces(
    app: &App,
    email: &str,
) -> Result<(Subscriber, Vec<BounceRow>), EditorError> {
    let subscriber = find_subscriber(app, email).await?;
    let history = app
        .store
        .subscriber_bounces(subscriber.id, MAX_PER_PAGE)
        .await?;
    Ok((subscriber, history))
}

async fn find_subscriber(app: &App, email: &str) -> Result<Subscriber, EditorError> {
    let email = EmailAddress::parse(email.trim())
        .map_err(|e| EditorError::BadInput(format!("the address is not valid: {e}")))?;
    app.store
        .find_subscriber_by_email(&email)
        .await?
        .ok_or_else(|| EditorError::NotFound("no subscriber has that address".into()))
}

/// Makes a bounced subscriber active again, as `herald subscribers reactivate` does. A
/// complained subscriber is refused: only their own new double opt-in brings them back.
pub async fn reactivate_subscriber(
    app: &App,
    email: &str,
    source: &str,
) -> Result<(), EditorError> {
    let subscriber = find_subscriber(app, email).await?;
    match app
        .store
        .reactivate_subscriber(subscriber.id, source, crate::dispatch::unix_now())
        .await?
    {
        Reactivation::Reactivated => Ok(()),
        Reactivation::NotBounced(SubscriberStatus::Complained) => Err(EditorError::Conflict(
            "this subscriber complained (marked the newsletter as spam); only their own new sign-up with double opt-in can bring them back".into(),
        )),
        Reactivation::NotBounced(status) => Err(EditorError::Conflict(format!(
            "this subscriber is {status}, not bounced"
        ))),
        Reactivation::NotFound => Err(EditorError::NotFound("no subscriber has that address".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reaches_100_only_when_everything_is_done() {
        let mut c = DeliveryCounts {
            sent: 2,
            queued: 1,
            ..Default::default()
        };
        assert_eq!(Progress::of(&c, "sending").percent, 66);
        c.queued = 0;
        c.failed = 1;
        let p = Progress::of(&c, "sent");
        assert_eq!((p.done, p.total, p.percent), (3, 3, 100));
        assert_eq!(Progress::of(&DeliveryCounts::default(), "draft").percent, 0);
    }

    #[test]
    fn wrong_tokens_block_an_address_for_the_rest_of_its_minute() {
        let throttle = AuthThrottle::default();
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let other: std::net::IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..AuthThrottle::MAX_FAILURES - 1 {
            throttle.failed(ip, 1_000);
        }
        assert_eq!(throttle.blocked(ip, 1_000), None);
        throttle.failed(ip, 1_010);
        assert_eq!(throttle.blocked(ip, 1_010), Some(50));
        assert_eq!(throttle.blocked(other, 1_010), None);
        assert_eq!(throttle.blocked(ip, 1_060), None, "the window is over");
        throttle.failed(ip, 1_060);
        assert_eq!(
            throttle.blocked(ip, 1_061),
            None,
            "a new window starts from one"
        );
    }

    #[test]
    fn a_throttle_of_zero_never_locks_out() {
        let throttle = AuthThrottle::new(0);
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..1_000 {
            throttle.failed(ip, 1_000);
        }
        assert_eq!(throttle.blocked(ip, 1_000), None);
        let strict = AuthThrottle::new(2);
        strict.failed(ip, 1_000);
        assert_eq!(strict.blocked(ip, 1_000), None);
        strict.failed(ip, 1_000);
        assert_eq!(strict.blocked(ip, 1_000), Some(60));
    }

    #[test]
    fn admin_token_comparison() {
        let token = secrecy::SecretString::from("a-long-enough-admin-token-0123".to_string());
        assert!(is_admin_token(&token, "a-long-enough-admin-token-0123"));
        assert!(!is_admin_token(&token, "a-long-enough-admin-token-0124"));
        assert!(!is_admin_token(&token, ""));
    }
}
