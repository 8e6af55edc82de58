//! Queries for the scheduler: the `schedule_runs` record of cron ticks, the dates of the
//! issues already enqueued, and the conditional enqueue a tick makes.
//!
//! Compiled once per backend (see `store/mod.rs`).

use sqlx::Row as _;

use super::deliveries::enqueue_in;
use super::{sql, Backend, Row};
use crate::store::{EnqueuedIssueDate, NewIssue, ScheduleRun, ScheduledEnqueue, StoreError};

const RUN_COLUMNS: &str = "tick_at, ran_at, outcome, slug, detail";

impl Backend {
    pub(crate) async fn schedule_start(&self, now: i64) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO schedule_start (id, started_at) VALUES (1, $1) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        let started: i64 = sqlx::query_scalar("SELECT started_at FROM schedule_start WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(started)
    }

    pub(crate) async fn claim_schedule_tick(
        &self,
        tick_at: i64,
        outcome: &str,
        detail: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO schedule_runs (tick_at, ran_at, outcome, detail) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tick_at) DO NOTHING",
        )
        .bind(tick_at)
        .bind(now)
        .bind(outcome)
        .bind(detail)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(crate) async fn finish_schedule_tick(
        &self,
        tick_at: i64,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE schedule_runs SET outcome = $1, detail = $2 WHERE tick_at = $3")
            .bind(outcome)
            .bind(detail)
            .bind(tick_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn find_schedule_run(
        &self,
        tick_at: i64,
    ) -> Result<Option<ScheduleRun>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE tick_at = $1"
        ))
        .bind(tick_at)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    pub(crate) async fn list_schedule_runs(&self) -> Result<Vec<ScheduleRun>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM schedule_runs ORDER BY tick_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    pub(crate) async fn enqueued_issue_dates(&self) -> Result<Vec<EnqueuedIssueDate>, StoreError> {
        let rows = sqlx::query("SELECT slug, issue_date FROM issues ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(EnqueuedIssueDate {
                    slug: row.try_get("slug")?,
                    issue_date: row.try_get("issue_date")?,
                })
            })
            .collect()
    }

    pub(crate) async fn enqueue_scheduled_issue(
        &self,
        issue: &NewIssue<'_>,
        issue_date: i64,
        tick_at: i64,
        now: i64,
    ) -> Result<ScheduledEnqueue, StoreError> {
        let mut tx = self.begin_write().await?;
        // Nothing may add an issue between the checks below and the enqueue.
        for statement in sql::LOCK_ISSUES_FOR_SCHEDULER {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        let known: Option<i64> = sqlx::query_scalar("SELECT id FROM issues WHERE slug = $1")
            .bind(issue.slug)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_some() {
            return Ok(ScheduledEnqueue::AlreadyEnqueued);
        }
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(issue_date) FROM issues")
            .fetch_one(&mut *tx)
            .await?;
        if let Some(newest) = newest.filter(|&n| n >= issue_date) {
            return Ok(ScheduledEnqueue::NotNewest { newest });
        }
        let enqueued = enqueue_in(&mut tx, issue, Some(issue_date), "scheduler", now).await?;
        sqlx::query(
            "UPDATE schedule_runs SET outcome = 'enqueued', slug = $1, detail = NULL \
             WHERE tick_at = $2",
        )
        .bind(issue.slug)
        .bind(tick_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        super::bulk::after_enqueue(&self.pool, enqueued.added).await;
        Ok(ScheduledEnqueue::Enqueued(enqueued))
    }
}

fn run_from_row(row: &Row) -> Result<ScheduleRun, StoreError> {
    Ok(ScheduleRun {
        tick_at: row.try_get("tick_at")?,
        ran_at: row.try_get("ran_at")?,
        outcome: row.try_get("outcome")?,
        slug: row.try_get("slug")?,
        detail: row.try_get("detail")?,
    })
}
