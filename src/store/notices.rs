//! Queries on `notices`: the durable queue of confirmation and welcome mails.
//!
//! Rows move like delivery rows: `queued`/`retry` rows that are due are claimed into
//! `sending` under a lease and a lease token, and each outcome is written back in one
//! transaction per group. A `sending` row whose lease expired (a crash) goes back to
//! `retry`, due at once.

use sqlx::{Connection, Row};

use super::deliveries::OutcomeKind;
use super::subscribers::parse_status;
use super::{Store, StoreError};
use crate::domain::SubscriberStatus;

/// One claimed notice, with what the mail needs of its subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeClaim {
    pub id: i64,
    /// `confirm` or `welcome`.
    pub kind: String,
    /// Attempts before this one.
    pub attempts: u32,
    pub queued_at: i64,
    pub subscriber_id: i64,
    pub email: String,
    pub name: Option<String>,
    pub status: SubscriberStatus,
}

/// What became of one claimed notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeOutcome {
    pub id: i64,
    pub kind: OutcomeKind,
}

/// One notice row (for tests and status displays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRow {
    pub id: i64,
    pub subscriber_id: i64,
    pub kind: String,
    pub status: String,
    pub attempts: u32,
    pub queued_at: i64,
    pub last_reply: Option<String>,
}

impl Store {
    /// Claims up to `limit` due notices (oldest due first) into `sending` under
    /// `lease_token` until `lease_until`, after taking back rows whose lease expired.
    #[tracing::instrument(skip_all)]
    pub async fn claim_notices(
        &self,
        lease_token: i64,
        lease_until: i64,
        limit: u32,
        now: i64,
    ) -> Result<Vec<NoticeClaim>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let reclaimed = sqlx::query(
            "UPDATE notices SET status = 'retry', next_attempt_at = ?1, \
                 lease_until = NULL, lease_token = NULL \
             WHERE status = 'sending' AND lease_until < ?1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if reclaimed > 0 {
            tracing::warn!(reclaimed, "took back notices whose lease expired");
        }
        sqlx::query(
            "UPDATE notices SET status = 'sending', lease_until = ?1, lease_token = ?2 \
             WHERE id IN (SELECT id FROM notices \
                          WHERE status IN ('queued', 'retry') AND next_attempt_at <= ?3 \
                          ORDER BY next_attempt_at, id LIMIT ?4)",
        )
        .bind(lease_until)
        .bind(lease_token)
        .bind(now)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT n.id, n.kind, n.attempts, n.queued_at, s.id AS subscriber_id, s.email, \
                    s.name, s.status \
             FROM notices n JOIN subscribers s ON s.id = n.subscriber_id \
             WHERE n.status = 'sending' AND n.lease_token = ?1 ORDER BY n.id",
        )
        .bind(lease_token)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                Ok(NoticeClaim {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                    queued_at: row.try_get("queued_at")?,
                    subscriber_id: row.try_get("subscriber_id")?,
                    email: row.try_get("email")?,
                    name: row.try_get("name")?,
                    status: parse_status(row.try_get("status")?)?,
                })
            })
            .collect()
    }

    /// Writes the outcomes of notices claimed under `lease_token`, in one transaction.
    /// Rows no longer held under that token (taken back after an expired lease) are left
    /// alone.
    #[tracing::instrument(skip_all, fields(outcomes = outcomes.len()))]
    pub async fn record_notice_outcomes(
        &self,
        lease_token: i64,
        outcomes: &[NoticeOutcome],
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        for outcome in outcomes {
            let query = match &outcome.kind {
                OutcomeKind::Sent {
                    message_id,
                    reply,
                    at,
                } => sqlx::query(
                    "UPDATE notices SET status = 'sent', attempts = attempts + 1, \
                         message_id = ?3, last_reply = ?4, sent_at = ?5, lease_until = NULL, \
                         lease_token = NULL \
                     WHERE id = ?1 AND status = 'sending' AND lease_token = ?2",
                )
                .bind(outcome.id)
                .bind(lease_token)
                .bind(message_id)
                .bind(reply)
                .bind(at),
                OutcomeKind::Retry {
                    reply,
                    next_attempt_at,
                } => sqlx::query(
                    "UPDATE notices SET status = 'retry', attempts = attempts + 1, \
                         last_reply = ?3, next_attempt_at = ?4, lease_until = NULL, \
                         lease_token = NULL \
                     WHERE id = ?1 AND status = 'sending' AND lease_token = ?2",
                )
                .bind(outcome.id)
                .bind(lease_token)
                .bind(reply)
                .bind(next_attempt_at),
                OutcomeKind::Failed { reply, .. } => sqlx::query(
                    "UPDATE notices SET status = 'failed', attempts = attempts + 1, \
                         last_reply = ?3, lease_until = NULL, lease_token = NULL \
                     WHERE id = ?1 AND status = 'sending' AND lease_token = ?2",
                )
                .bind(outcome.id)
                .bind(lease_token)
                .bind(reply),
                OutcomeKind::Skipped => sqlx::query(
                    "UPDATE notices SET status = 'skipped', lease_until = NULL, \
                         lease_token = NULL \
                     WHERE id = ?1 AND status = 'sending' AND lease_token = ?2",
                )
                .bind(outcome.id)
                .bind(lease_token),
                OutcomeKind::Release => sqlx::query(
                    "UPDATE notices SET status = CASE WHEN attempts = 0 THEN 'queued' \
                         ELSE 'retry' END, lease_until = NULL, lease_token = NULL \
                     WHERE id = ?1 AND status = 'sending' AND lease_token = ?2",
                )
                .bind(outcome.id)
                .bind(lease_token),
            };
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// When the next `queued` or `retry` notice is due, if any (a `sending` row counts as
    /// due when its lease ends).
    pub async fn next_notice_due_at(&self) -> Result<Option<i64>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(due) FROM ( \
                 SELECT MIN(next_attempt_at) AS due FROM notices \
                     WHERE status IN ('queued', 'retry') \
                 UNION ALL \
                 SELECT MIN(lease_until) FROM notices WHERE status = 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(due)
    }

    /// Every notice of subscriber `id`, oldest first.
    pub async fn notices_of(&self, subscriber_id: i64) -> Result<Vec<NoticeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, subscriber_id, kind, status, attempts, queued_at, last_reply \
             FROM notices WHERE subscriber_id = ?1 ORDER BY id",
        )
        .bind(subscriber_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(NoticeRow {
                    id: row.try_get("id")?,
                    subscriber_id: row.try_get("subscriber_id")?,
                    kind: row.try_get("kind")?,
                    status: row.try_get("status")?,
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                    queued_at: row.try_get("queued_at")?,
                    last_reply: row.try_get("last_reply")?,
                })
            })
            .collect()
    }

    /// How many notices have each status (statuses with none are left out).
    pub async fn count_notices_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM notices GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows)
    }
}
