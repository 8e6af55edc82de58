//! Queries behind the editor API and the dashboard: stored answers to idempotent requests,
//! putting failed deliveries back in the queue, searching the subscriber list, and the
//! dashboard sessions ended by logging out.

use sqlx::Connection;

use super::subscribers::subscriber_from_row;
use super::{Store, StoreError};
use crate::domain::SubscriberStatus;

/// The answer first given to a request with an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The request the key was first used for (method and path).
    pub fingerprint: String,
    /// HTTP status.
    pub status: u16,
    /// The response body, exactly as sent.
    pub body: String,
}

/// One page of a subscriber search.
#[derive(Debug, Clone)]
pub struct SubscriberPage {
    pub subscribers: Vec<super::Subscriber>,
    /// Matches in all pages.
    pub total: u64,
}

impl Store {
    /// The answer stored for idempotency key `key`.
    pub async fn find_idempotent_answer(
        &self,
        key: &str,
    ) -> Result<Option<StoredAnswer>, StoreError> {
        let row: Option<(String, i64, String)> = sqlx::query_as(
            "SELECT fingerprint, status, body FROM api_idempotency_keys \
             WHERE idempotency_key = ?1",
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

    /// Stores the answer for `key`, unless one is stored already (another process got there
    /// first). Returns the answer that is stored now: `answer`, or the earlier one.
    pub async fn store_idempotent_answer(
        &self,
        key: &str,
        answer: &StoredAnswer,
        now: i64,
    ) -> Result<StoredAnswer, StoreError> {
        sqlx::query(
            "INSERT INTO api_idempotency_keys \
                 (idempotency_key, fingerprint, status, body, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
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

    /// "Retry failed": the issue's `failed` rows that did not fail permanently (no 5xx reply:
    /// they ran out of attempts or of retry lifetime on 4xx replies, timeouts or lost
    /// connections) go back to `queued`, due at `now`, with their attempts reset to 0 and
    /// `queued_at = now`, so they get a full retry budget and lifetime again. The issue
    /// becomes `sending` again (`finished_at` cleared) when any row moved. Returns how many
    /// rows moved. Permanent failures (5xx) stay `failed`.
    #[tracing::instrument(skip_all, fields(issue_id = issue_id))]
    pub async fn requeue_failed_deliveries(
        &self,
        issue_id: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let moved = sqlx::query(
            "UPDATE deliveries SET status = 'queued', attempts = 0, queued_at = ?1, \
                 next_attempt_at = ?1 \
             WHERE issue_id = ?2 AND status = 'failed' AND permanent = 0",
        )
        .bind(now)
        .bind(issue_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved > 0 {
            sqlx::query("UPDATE issues SET status = 'sending', finished_at = NULL WHERE id = ?1")
                .bind(issue_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Records that dashboard session `session_id` was ended (logout), and forgets ended
    /// sessions that have expired by `now`.
    pub async fn end_admin_session(
        &self,
        session_id: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM admin_sessions_ended WHERE expires_at < ?1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO admin_sessions_ended (session_id, expires_at) VALUES (?1, ?2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(session_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether dashboard session `session_id` was ended by logging out.
    pub async fn is_admin_session_ended(&self, session_id: i64) -> Result<bool, StoreError> {
        let ended: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM admin_sessions_ended WHERE session_id = ?1)",
        )
        .bind(session_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(ended)
    }

    /// Subscribers whose address or name contains `query` (any letter case; empty matches
    /// all), optionally with one status, oldest first: `limit` of them from `offset`, and
    /// the number of matches in all.
    pub async fn search_subscribers(
        &self,
        query: &str,
        status: Option<SubscriberStatus>,
        limit: u32,
        offset: u64,
    ) -> Result<SubscriberPage, StoreError> {
        let pattern = format!("%{}%", escape_like(query));
        let status = status.map(|s| s.as_str());
        const FILTER: &str = "(email LIKE ?1 ESCAPE '\\' OR name LIKE ?1 ESCAPE '\\') \
             AND (?2 IS NULL OR status = ?2)";
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM subscribers WHERE {FILTER}"))
                .bind(&pattern)
                .bind(status)
                .fetch_one(&self.pool)
                .await?;
        let rows = sqlx::query(&format!(
            "SELECT id, email, name, status, attributes, created_at, confirmed_at, \
                 unsubscribed_at, consent_ip, consent_user_agent, source \
             FROM subscribers WHERE {FILTER} ORDER BY id LIMIT ?3 OFFSET ?4"
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

/// `text` with LIKE's wildcards (`%`, `_`) and the escape character taken literally.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(super::escape_like("a%b_c\\d"), "a\\%b\\_c\\\\d");
    }
}
