//! The scheduler task of `herald serve`: catch up on a missed tick at start, then sleep
//! until each tick and enqueue the issue [`plan`](super::plan()) picks, until told to stop.

use std::path::Path;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{plan, Clock, Plan, Schedule, ScheduleError};
use crate::issue::{self, Issue, IssueError, IssueLimits};
use crate::startup::{App, Overrides, StartupError};
use crate::store::{NewIssue, ScheduledEnqueue, Store};

/// How one tick ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// This issue was enqueued; `added` delivery rows.
    Enqueued { slug: String, added: u64 },
    /// Nothing qualified, and why.
    Nothing { reason: String },
    /// The planned issue was not sent: `herald check` finds an error in it (the first
    /// error is the reason). The tick is recorded as `nothing`, with this reason; a later
    /// tick sends the issue once it is fixed.
    Refused { slug: String, reason: String },
    /// The tick has a row in `schedule_runs` already (a restart, or another process).
    AlreadyRan,
    /// Found later than `schedule.max_lateness_minutes`: recorded and not run.
    Skipped { late_minutes: i64 },
    /// The tick could not complete (the error is logged and stored).
    Failed { error: String },
}

/// One tick the scheduler dealt with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub tick_at: DateTime<Utc>,
    pub outcome: TickOutcome,
}

/// What the scheduler is doing, published on a `watch` channel (tests wait on it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerStatus {
    /// The tick it sleeps until, while it sleeps.
    pub sleeping_until: Option<DateTime<Utc>>,
    /// Ticks dealt with since it started (run, skipped or found already run).
    pub ticks: u64,
    /// The latest of them.
    pub last: Option<TickReport>,
    /// It has returned.
    pub stopped: bool,
}

/// The recurring scheduler over one [`Schedule`] and [`Clock`].
#[derive(Debug)]
pub struct Scheduler {
    schedule: Schedule,
    clock: Clock,
    status: watch::Sender<SchedulerStatus>,
}

impl Scheduler {
    pub fn new(schedule: Schedule, clock: Clock) -> Self {
        Self {
            schedule,
            clock,
            status: watch::Sender::new(SchedulerStatus::default()),
        }
    }

    /// Follows what the scheduler does.
    pub fn status(&self) -> watch::Receiver<SchedulerStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` turns true (or its sender goes away). A tick under way is
    /// finished first. When the schedule is off, it only waits for the stop.
    pub async fn run(&self, app: &App, mut shutdown: watch::Receiver<bool>) {
        if !self.schedule.is_enabled() {
            tracing::info!("scheduler off (schedule.cron): no issue is sent automatically");
            let _ = shutdown.wait_for(|stop| *stop).await;
            self.status.send_modify(|s| s.stopped = true);
            return;
        }
        let started = self.clock.now();
        tracing::info!(
            cron = %self.schedule.expression,
            timezone = %self.schedule.tz,
            "scheduler started"
        );
        if let Some(warning) = self.schedule.weekday_warning() {
            tracing::warn!("{warning}");
        }
        // Ticks from before the scheduler first ran on this database were never missed: a
        // new installation neither runs nor warns about them.
        let first_start = match app.store.schedule_start(started.timestamp()).await {
            Ok(at) => at,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the schedule record");
                started.timestamp()
            }
        };
        let missed = self
            .schedule
            .latest_at_or_before(started)
            .filter(|tick| tick.timestamp() >= first_start);
        if let Some(missed) = missed {
            match app.store.find_schedule_run(missed.timestamp()).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    tracing::info!(tick = %self.local(missed), "catching up on a run missed while herald was down");
                    self.tick(app, missed).await;
                }
                Err(e) => tracing::error!(error = %e, "cannot read the schedule record"),
            }
        }
        let mut cursor = started;
        let mut first = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let Some(next) = self.schedule.next_after(cursor) else {
                tracing::info!(cron = %self.schedule.expression, "the schedule has no further runs");
                let _ = shutdown.wait_for(|stop| *stop).await;
                break;
            };
            if first {
                self.log_next(app, next).await;
                first = false;
            } else {
                tracing::info!(next = %self.local(next), "next scheduled run");
            }
            self.status.send_modify(|s| s.sleeping_until = Some(next));
            tokio::select! {
                () = self.clock.sleep_until(next) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            self.status.send_modify(|s| s.sleeping_until = None);
            // After a long sleep (a suspended machine), several ticks may have passed: only
            // the latest counts, as at start.
            let now = self.clock.now();
            let tick = self.schedule.latest_in(cursor, now).unwrap_or(next);
            self.tick(app, tick).await;
            cursor = tick;
        }
        self.status.send_modify(|s| {
            s.sleeping_until = None;
            s.stopped = true;
        });
        tracing::info!("scheduler stopped");
    }

    /// Deals with the tick at `tick_at` once: skips it when it is too late, claims it in the
    /// store (nothing happens if it was claimed before), then enqueues the issue the plan
    /// picks, if any. Every outcome is logged, stored and published.
    #[tracing::instrument(skip_all, fields(tick = %tick_at))]
    pub async fn tick(&self, app: &App, tick_at: DateTime<Utc>) -> TickReport {
        let outcome = self.tick_outcome(app, tick_at).await;
        let report = TickReport { tick_at, outcome };
        self.status.send_modify(|s| {
            s.ticks += 1;
            s.last = Some(report.clone());
        });
        report
    }

    async fn tick_outcome(&self, app: &App, tick_at: DateTime<Utc>) -> TickOutcome {
        let now = self.clock.now();
        let store = &app.store;
        let at = tick_at.timestamp();
        let local = self.local(tick_at);
        if !self.schedule.on_time(tick_at, now) {
            let late_minutes = (now - tick_at).num_minutes();
            let detail = format!(
                "{} late",
                crate::words::count(late_minutes.unsigned_abs(), "minute", "minutes")
            );
            return match store
                .claim_schedule_tick(at, "skipped", Some(&detail), now.timestamp())
                .await
            {
                Ok(true) => {
                    self.log_skipped(app, tick_at, late_minutes).await;
                    TickOutcome::Skipped { late_minutes }
                }
                Ok(false) => TickOutcome::AlreadyRan,
                Err(e) => failed(&local, &e.to_string()),
            };
        }
        match store
            .claim_schedule_tick(at, "running", None, now.timestamp())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(tick = %local, "scheduled run already done; not running it again");
                return TickOutcome::AlreadyRan;
            }
            Err(e) => return failed(&local, &e.to_string()),
        }
        let outcome = match self.enqueue_planned(app, tick_at).await {
            Ok(outcome) => outcome,
            Err(e) => failed(&local, &e.to_string()),
        };
        let refused;
        let finish = match &outcome {
            TickOutcome::Nothing { reason } => Some(("nothing", reason.as_str())),
            TickOutcome::Refused { slug, reason } => {
                refused = format!("{slug} not sent: herald check finds an error in it: {reason}");
                Some(("nothing", refused.as_str()))
            }
            TickOutcome::Failed { error } => Some(("failed", error.as_str())),
            _ => None,
        };
        if let Some((kind, detail)) = finish {
            if let Err(e) = store.finish_schedule_tick(at, kind, Some(detail)).await {
                tracing::error!(tick = %local, error = %e, "cannot record the scheduled run");
            }
        }
        outcome
    }

    async fn enqueue_planned(
        &self,
        app: &App,
        tick_at: DateTime<Utc>,
    ) -> Result<TickOutcome, ScheduleError> {
        let local = self.local(tick_at);
        let files = load_issues(
            &app.settings.newsletter.issues_dir,
            app.settings.newsletter.issue_limits(),
        )
        .await?;
        warn_broken(&files.broken);
        let plan = plan(
            &files.issues,
            &app.store.enqueued_issue_dates().await?,
            tick_at,
        );
        if !plan.older_than_last.is_empty() {
            tracing::info!(
                tick = %local,
                count = plan.older_than_last.len(),
                "unsent issues older than the last one sent are not sent automatically"
            );
        }
        let Some(chosen) = plan.send else {
            tracing::info!(tick = %local, "scheduled run: {}", Plan::NOTHING);
            return Ok(TickOutcome::Nothing {
                reason: Plan::NOTHING.to_string(),
            });
        };
        let prepared = app
            .prepare(&chosen.path)
            .await
            .map_err(|e| ScheduleError::Prepare(e.to_string()))?;
        match app.admit(&prepared, Overrides::default()).await {
            Ok(_) => {}
            Err(StartupError::Refused { slug, errors }) => {
                let reason = errors.first().map(ToString::to_string).unwrap_or_default();
                tracing::warn!(
                    tick = %local,
                    %slug,
                    errors = errors.len(),
                    %reason,
                    "scheduled run: issue not sent: herald check finds an error in it"
                );
                return Ok(TickOutcome::Refused { slug, reason });
            }
            Err(e) => return Err(ScheduleError::Prepare(e.to_string())),
        }
        let issue = &prepared.issue;
        let new = NewIssue {
            slug: issue.slug.as_str(),
            title: &issue.title,
            subject: &issue.subject,
            source_hash: &issue.source_hash,
        };
        // The ledger rows are dated by the system clock the dispatcher reads, not by this
        // scheduler's clock (which a test may have set elsewhere), so they are due at once.
        let done = app
            .store
            .enqueue_scheduled_issue(
                &new,
                chosen.date.timestamp(),
                tick_at.timestamp(),
                crate::dispatch::unix_now(),
            )
            .await?;
        Ok(match done {
            ScheduledEnqueue::Enqueued(enqueued) => {
                app.dispatch_wake.notify_one();
                tracing::info!(
                    tick = %local,
                    slug = %chosen.slug,
                    recipients = enqueued.added,
                    "scheduled run: issue enqueued"
                );
                TickOutcome::Enqueued {
                    slug: chosen.slug,
                    added: enqueued.added,
                }
            }
            ScheduledEnqueue::AlreadyEnqueued => nothing_after_race(
                &local,
                format!("{} was enqueued meanwhile by another sender", chosen.slug),
            ),
            ScheduledEnqueue::NotNewest { .. } => nothing_after_race(
                &local,
                format!(
                    "an issue dated on or after {} was enqueued meanwhile",
                    chosen.slug
                ),
            ),
        })
    }

    /// Logs a tick skipped as too late: a warning naming the issue it would have sent (which
    /// now waits for the next tick), or an info line when it would have sent nothing.
    async fn log_skipped(&self, app: &App, tick_at: DateTime<Utc>, late_minutes: i64) {
        let local = self.local(tick_at);
        let max = self.schedule.max_lateness.num_minutes();
        let dir = &app.settings.newsletter.issues_dir;
        let limits = app.settings.newsletter.issue_limits();
        let would = match forecast(&app.store, dir, limits, &[tick_at]).await {
            Ok(f) => f.plans.into_iter().next().and_then(|p| p.send),
            Err(_) => None,
        };
        match would {
            Some(issue) => tracing::warn!(
                tick = %local,
                late_minutes,
                max_lateness_minutes = max,
                would_have_sent = %issue.slug,
                "scheduled run skipped: later than schedule.max_lateness_minutes; \
                 the issue waits for the next run"
            ),
            None => tracing::info!(
                tick = %local,
                late_minutes,
                max_lateness_minutes = max,
                "scheduled run skipped: later than schedule.max_lateness_minutes \
                 (it had nothing to send)"
            ),
        }
    }

    /// Logs when the next run is and what it would send if it ran now.
    async fn log_next(&self, app: &App, next: DateTime<Utc>) {
        let dir = &app.settings.newsletter.issues_dir;
        let limits = app.settings.newsletter.issue_limits();
        match forecast(&app.store, dir, limits, &[next]).await {
            Ok(f) => {
                warn_broken(&f.broken);
                let would = f
                    .plans
                    .first()
                    .and_then(|p| p.send.as_ref())
                    .map_or_else(|| Plan::NOTHING.to_string(), |c| c.slug.clone());
                tracing::info!(next = %self.local(next), would_send = %would, "next scheduled run");
            }
            Err(e) => tracing::warn!(next = %self.local(next), error = %e, "next scheduled run"),
        }
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.schedule.tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }
}

/// A manual send got in between the plan and the enqueue.
fn nothing_after_race(local: &str, reason: String) -> TickOutcome {
    tracing::info!(tick = %local, "scheduled run: nothing: {reason}");
    TickOutcome::Nothing { reason }
}

fn failed(local: &str, error: &str) -> TickOutcome {
    tracing::error!(tick = %local, %error, "scheduled run failed");
    TickOutcome::Failed {
        error: error.to_string(),
    }
}

/// The issue files of a folder: those that parse, and why each of the others does not.
#[derive(Debug, Default)]
pub struct IssueFiles {
    pub issues: Vec<Issue>,
    /// Files that do not parse: never sent automatically until fixed.
    pub broken: Vec<IssueError>,
}

/// Every `*.md` file in `dir`, parsed under `limits`; a broken file is kept apart with its
/// error, so one bad file never hides the others.
pub fn read_issue_files(dir: &Path, limits: &IssueLimits) -> Result<IssueFiles, ScheduleError> {
    let mut files = IssueFiles::default();
    for loaded in issue::load_dir(dir, limits).map_err(ScheduleError::Issues)? {
        match loaded {
            Ok(issue) => files.issues.push(issue),
            Err(e) => files.broken.push(e),
        }
    }
    Ok(files)
}

/// [`read_issue_files`] on a blocking thread: parsing a folder of issues is CPU work that
/// must never stall the async workers.
pub async fn load_issues(dir: &Path, limits: IssueLimits) -> Result<IssueFiles, ScheduleError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || read_issue_files(&dir, &limits))
        .await
        .map_err(|e| ScheduleError::Prepare(e.to_string()))?
}

fn warn_broken(broken: &[IssueError]) {
    for e in broken {
        tracing::warn!(error = %e, "issue file skipped by the scheduler");
    }
}

/// What the next ticks would send ([`forecast`]), and the issue files that could not be read.
#[derive(Debug)]
pub struct Forecast {
    /// One plan per tick asked about, in order.
    pub plans: Vec<Plan>,
    pub broken: Vec<IssueError>,
}

/// What each of the ticks `at` (in order) would send if nothing else were sent meanwhile:
/// each plan counts the issues the earlier ones pick as sent.
pub async fn forecast(
    store: &Store,
    issues_dir: &Path,
    limits: IssueLimits,
    at: &[DateTime<Utc>],
) -> Result<Forecast, ScheduleError> {
    let files = load_issues(issues_dir, limits).await?;
    let mut enqueued = store.enqueued_issue_dates().await?;
    let mut plans = Vec::with_capacity(at.len());
    for &tick in at {
        let p = plan(&files.issues, &enqueued, tick);
        if let Some(chosen) = &p.send {
            enqueued.push(crate::store::EnqueuedIssueDate {
                slug: chosen.slug.clone(),
                issue_date: Some(chosen.date.timestamp()),
            });
        }
        plans.push(p);
    }
    Ok(Forecast {
        plans,
        broken: files.broken,
    })
}

/// The most ticks [`upcoming_sends`] looks at.
const MAX_FORESEEN_SENDS: usize = 520;

/// Every issue the scheduler will send by itself, each with the tick that sends it, if
/// nothing else is sent meanwhile. Between sends, the walk jumps straight to the first tick
/// at or after the next issue's date, so a far-off date costs one step, not a step per tick.
pub fn upcoming_sends(
    schedule: &Schedule,
    issues: &[Issue],
    enqueued: &[crate::store::EnqueuedIssueDate],
    now: DateTime<Utc>,
) -> Vec<(String, DateTime<Utc>)> {
    let mut enqueued = enqueued.to_vec();
    let mut out = Vec::new();
    let mut cursor = now;
    while out.len() < MAX_FORESEEN_SENDS {
        let Some(tick) = schedule.next_after(cursor) else {
            break;
        };
        let p = plan(issues, &enqueued, tick);
        match p.send {
            Some(chosen) => {
                enqueued.push(crate::store::EnqueuedIssueDate {
                    slug: chosen.slug.clone(),
                    issue_date: Some(chosen.date.timestamp()),
                });
                out.push((chosen.slug, tick));
                cursor = tick;
            }
            None => match p.not_yet_due.first() {
                // The first tick at or after the next date is the first that can send it.
                Some(next) => cursor = (next.date - chrono::TimeDelta::seconds(1)).max(tick),
                None => break,
            },
        }
    }
    out
}
