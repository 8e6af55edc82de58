//! Queries behind the editor API and the dashboard: stored answers to idempotent requests,
//! putting failed deliveries back in the queue, searching the subscriber list, and the
//! dashboard sessions ended by logging out.
//!
//! Compiled once per backend (see `store/mod.rs`).

use super::subscribers::subscriber_from_row;
use super::{sql, Backend};
use crate::domain::SubscriberStatus;
use crate::store::{escape_like, StoreError, StoredAnswer, SubscriberPage};

impl Backend {
    pub(crate) async fn find_idempotent_answer(
        &self,
        key: &str,
    ) -> Result<Option<StoredAnswer>, StoreError> {
        let row: Option<(String, i64, String)> = sqlx::query_as(
            "SELECT fingerprint, status, body FROM api_idempotency_keys \
             WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(fingerprint, status, body)| StoredAnswer {
            fingerprint,
            status: status as u16,
            body,
        }))
    }

    pub(crate) async fn store_idempotent_answer(
        &self,
        key: &str,
        answer: &StoredAnswer,
        now: i64,
    ) -> Result<StoredAnswer, StoreError> {
        sqlx::query(
            "INSERT INTO api_idempotency_keys \
                 (idempotency_key, fingerprint, status, body, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(&answer.fingerprint)
        .bind(i64::from(answer.status))
        .bind(&answer.body)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(self
            .find_idempotent_answer(key)
            .await?
            .unwrap_or_else(|| answer.clone()))
    }

    pub(crate) async fn requeue_failed_deliveries(
        &self,
        issue_id: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        // The issue row first, as every writer of an issue's state takes it (see
        // finish_issue_if_done), so a concurrent finish sees these rows or runs before them.
        sqlx::query_scalar::<_, String>(sql::ISSUE_STATUS_FOR_UPDATE)
            .bind(issue_id)
            .fetch_optional(&mut *tx)
            .await?;
        let moved = sqlx::query(
            "UPDATE deliveries SET status = 'queued', attempts = 0, queued_at = $1, \
                 next_attempt_at = $1 \
             WHERE issue_id = $2 AND status = 'failed' AND permanent = FALSE",
        )
        .bind(now)
        .bind(issue_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved > 0 {
            sqlx::query("UPDATE issues SET status = 'sending', finished_at = NULL WHERE id = $1")
                .bind(issue_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    pub(crate) async fn end_admin_session(
        &self,
        session_id: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM admin_sessions_ended WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO admin_sessions_ended (session_id, expires_at) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(session_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn is_admin_session_ended(&self, session_id: i64) -> Result<bool, StoreError> {
        let ended: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM admin_sessions_ended WHERE session_id = $1)",
        )
        .bind(session_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(ended)
    }

    pub(crate) async fn search_subscribers(
        &self,
        query: &str,
        status: Option<SubscriberStatus>,
        limit: u32,
        offset: u64,
    ) -> Result<SubscriberPage, StoreError> {
        let pattern = format!("%{}%", escape_like(query));
        let status = status.map(|s| s.as_str());
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM subscribers WHERE {}",
            sql::SUBSCRIBER_SEARCH
        ))
        .bind(&pattern)
        .bind(status)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT id, email, name, status, attributes, created_at, confirmed_at, \
                 unsubscribed_at, consent_ip, consent_user_agent, source \
             FROM subscribers WHERE {} ORDER BY id LIMIT $3 OFFSET $4",
            sql::SUBSCRIBER_SEARCH
        ))
        .bind(&pattern)
        .bind(status)
        .bind(i64::from(limit))
        .bind(offset.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await?;
        let subscribers = rows
            .iter()
            .map(subscriber_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SubscriberPage {
            subscribers,
            total: total as u64,
        })
    }
}
