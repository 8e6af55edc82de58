//! Queries on `notices`: the durable queue of confirmation and welcome mails. The claim is
//! the backends' own (`claims.rs` beside each backend).
//!
//! Compiled once per backend (see `store/mod.rs`).

use sqlx::Row as _;

use super::{Backend, Row};
use crate::store::{
    parse_status, to_u32, NoticeClaim, NoticeOutcome, NoticeRow, OutcomeKind, StoreError,
};

impl Backend {
    pub(crate) async fn record_notice_outcomes(
        &self,
        lease_token: i64,
        outcomes: &[NoticeOutcome],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for outcome in outcomes {
            let query = match &outcome.kind {
                OutcomeKind::Sent {
                    message_id,
                    reply,
                    at,
                } => sqlx::query(
                    "UPDATE notices SET status = 'sent', attempts = attempts + 1, \
                         message_id = $3, last_reply = $4, sent_at = $5, lease_until = NULL, \
                         lease_token = NULL \
                     WHERE id = $1 AND status = 'sending' AND lease_token = $2",
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
                         last_reply = $3, next_attempt_at = $4, lease_until = NULL, \
                         lease_token = NULL \
                     WHERE id = $1 AND status = 'sending' AND lease_token = $2",
                )
                .bind(outcome.id)
                .bind(lease_token)
                .bind(reply)
                .bind(next_attempt_at),
                OutcomeKind::Failed { reply, .. } => sqlx::query(
                    "UPDATE notices SET status = 'failed', attempts = attempts + 1, \
                         last_reply = $3, lease_until = NULL, lease_token = NULL \
                     WHERE id = $1 AND status = 'sending' AND lease_token = $2",
                )
                .bind(outcome.id)
                .bind(lease_token)
                .bind(reply),
                OutcomeKind::Skipped => sqlx::query(
                    "UPDATE notices SET status = 'skipped', lease_until = NULL, \
                         lease_token = NULL \
                     WHERE id = $1 AND status = 'sending' AND lease_token = $2",
                )
                .bind(outcome.id)
                .bind(lease_token),
                OutcomeKind::Release => sqlx::query(
                    "UPDATE notices SET status = CASE WHEN attempts = 0 THEN 'queued' \
                         ELSE 'retry' END, lease_until = NULL, lease_token = NULL \
                     WHERE id = $1 AND status = 'sending' AND lease_token = $2",
                )
                .bind(outcome.id)
                .bind(lease_token),
                OutcomeKind::Defer {
                    reply,
                    next_attempt_at,
                } => sqlx::query(
                    "UPDATE notices SET status = CASE WHEN attempts = 0 AND $4 IS NULL \
                         THEN 'queued' ELSE 'retry' END, next_attempt_at = $3, \
                         last_reply = COALESCE($4, last_reply), lease_until = NULL, \
                         lease_token = NULL \
                     WHERE id = $1 AND status = 'sending' AND lease_token = $2",
                )
                .bind(outcome.id)
                .bind(lease_token)
                .bind(next_attempt_at)
                .bind(reply),
            };
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn next_notice_due_at(&self) -> Result<Option<i64>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(due) FROM ( \
                 SELECT MIN(next_attempt_at) AS due FROM notices \
                     WHERE status IN ('queued', 'retry') \
                 UNION ALL \
                 SELECT MIN(lease_until) FROM notices WHERE status = 'sending') AS due",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(due)
    }

    pub(crate) async fn notices_of(
        &self,
        subscriber_id: i64,
    ) -> Result<Vec<NoticeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, subscriber_id, kind, status, attempts, queued_at, last_reply \
             FROM notices WHERE subscriber_id = $1 ORDER BY id",
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
                    attempts: to_u32(row.try_get("attempts")?)?,
                    queued_at: row.try_get("queued_at")?,
                    last_reply: row.try_get("last_reply")?,
                })
            })
            .collect()
    }

    pub(crate) async fn count_notices_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM notices GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows)
    }
}

/// One claimed notice from a row holding `id, kind, attempts, queued_at, subscriber_id,
/// email, name, status` (the subscriber's).
pub(super) fn notice_claim_from_row(row: &Row) -> Result<NoticeClaim, StoreError> {
    Ok(NoticeClaim {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        attempts: to_u32(row.try_get("attempts")?)?,
        queued_at: row.try_get("queued_at")?,
        subscriber_id: row.try_get("subscriber_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        status: parse_status(row.try_get("status")?)?,
    })
}
