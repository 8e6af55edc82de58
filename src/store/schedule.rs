//! The scheduler's tables: the `schedule_runs` record of cron ticks, the dates of the
//! issues already enqueued, and the conditional enqueue a tick makes. The queries are in
//! `shared/schedule.rs`.
//!
//! A tick is claimed by inserting its row before anything is sent
//! ([`Store::claim_schedule_tick`]); the primary key on `tick_at` makes the claim succeed
//! once, across restarts, processes and nodes. [`Store::enqueue_scheduled_issue`] then
//! checks, in the same write transaction as the enqueue, that the slug was never enqueued
//! and that no issue with the same or a later date was, so a manual send racing the tick
//! cannot make the scheduler enqueue anything twice.

use super::{delegate, Enqueued, NewIssue, Store, StoreError};

/// One row of `schedule_runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRun {
    /// The cron tick, Unix seconds.
    pub tick_at: i64,
    /// When the scheduler dealt with it.
    pub ran_at: i64,
    /// `running`, `enqueued`, `nothing`, `skipped` or `failed`.
    pub outcome: String,
    pub slug: Option<String>,
    pub detail: Option<String>,
}

/// An issue already in the ledger, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueuedIssueDate {
    pub slug: String,
    /// The date the issue carried when enqueued (Unix seconds), if it had one.
    pub issue_date: Option<i64>,
}

/// What [`Store::enqueue_scheduled_issue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledEnqueue {
    /// Enqueued now.
    Enqueued(Enqueued),
    /// The slug is already in `issues` (a manual send got there first): nothing changed.
    AlreadyEnqueued,
    /// An issue dated at or after this one was enqueued meanwhile: nothing changed.
    NotNewest { newest: i64 },
}

delegate! {
    /// Inserts the row for `tick_at` with `outcome` (`running` to claim a tick about to run,
    /// `skipped` for one found too late). False when the tick already has a row: it ran, or
    /// another process is running it.
    pub async fn claim_schedule_tick(
        &self,
        tick_at: i64,
        outcome: &str,
        detail: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Records how a claimed tick ended (`nothing` or `failed`, with why).
    pub async fn finish_schedule_tick(
        &self,
        tick_at: i64,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError>;

    /// The row of `tick_at`, if that tick was dealt with.
    pub async fn find_schedule_run(&self, tick_at: i64) -> Result<Option<ScheduleRun>, StoreError>;

    /// Every tick dealt with, oldest first.
    pub async fn list_schedule_runs(&self) -> Result<Vec<ScheduleRun>, StoreError>;

    /// When the scheduler first started on this database (Unix seconds): the stored time,
    /// or `now`, stored by this call when none was. Ticks before it were never missed.
    pub async fn schedule_start(&self, now: i64) -> Result<i64, StoreError>;

    /// The slug and stored date of every issue in the ledger.
    pub async fn enqueued_issue_dates(&self) -> Result<Vec<EnqueuedIssueDate>, StoreError>;

    /// The scheduler's enqueue for the tick `tick_at`, in ONE write transaction: when the slug
    /// is not in `issues` and no issue dated `issue_date` or later is, enqueues it as
    /// [`Store::enqueue_dated_issue`] does and marks the tick `enqueued` with the slug.
    /// Otherwise changes nothing and says why.
    #[tracing::instrument(skip_all, fields(slug = issue.slug, tick_at))]
    pub async fn enqueue_scheduled_issue(
        &self,
        issue: &NewIssue<'_>,
        issue_date: i64,
        tick_at: i64,
        now: i64,
    ) -> Result<ScheduledEnqueue, StoreError>;
}
