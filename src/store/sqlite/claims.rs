//! Claiming due work on SQLite: one `BEGIN IMMEDIATE` transaction holds the database's write
//! lock, so no other claimer (in any process) runs between the read of due rows and their
//! move to `sending`.

use super::notices::notice_claim_from_row;
use super::{sql, Backend};
use crate::store::deliveries::DueRow;
use crate::store::{Claim, NoticeClaim, StoreError};

/// Subscriber ids per `IN (...)` list when moving claimed rows.
const CLAIM_CHUNK: usize = 500;

impl Backend {
    pub(crate) async fn claim_notices(
        &self,
        lease_token: i64,
        lease_until: i64,
        limit: u32,
        now: i64,
    ) -> Result<Vec<NoticeClaim>, StoreError> {
        let mut tx = self.begin_write().await?;
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
        rows.iter().map(notice_claim_from_row).collect()
    }
}

/// Moves the claimed rows of subscribers `ids` to `sending` under the lease.
pub(super) async fn mark_sending(
    conn: &mut sqlx::SqliteConnection,
    issue_id: i64,
    ids: &[i64],
    lease_until: i64,
    lease_token: i64,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(CLAIM_CHUNK) {
        let sql = format!(
            "UPDATE deliveries SET status = 'sending', lease_until = ?, lease_token = ? \
             WHERE issue_id = ? AND subscriber_id IN ({})",
            sql::placeholders(4, chunk.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(lease_until)
            .bind(lease_token)
            .bind(issue_id);
        for id in chunk {
            query = query.bind(id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Moves the claimed rows of subscribers `ids` (no longer active) to `skipped`.
pub(super) async fn mark_skipped(
    conn: &mut sqlx::SqliteConnection,
    issue_id: i64,
    ids: &[i64],
) -> Result<(), StoreError> {
    for chunk in ids.chunks(CLAIM_CHUNK) {
        let sql = format!(
            "UPDATE deliveries SET status = 'skipped' \
             WHERE issue_id = ? AND subscriber_id IN ({})",
            sql::placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(issue_id);
        for id in chunk {
            query = query.bind(id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Up to `limit` due rows of the issue, oldest due first, each with whether its subscriber
/// is still active. One index range scan per status (an `IN ('queued', 'retry')` would make
/// SQLite sort every due row before applying the limit).
pub(super) async fn select_due_deliveries(
    conn: &mut sqlx::SqliteConnection,
    issue_id: i64,
    now: i64,
    limit: usize,
) -> Result<Vec<(Claim, bool)>, StoreError> {
    let limit = limit as i64;
    let rows = sqlx::query_as::<_, DueRow>(
        "SELECT due.subscriber_id, due.attempts, due.queued_at, s.email, s.name, \
                s.status = 'active' AS active \
         FROM ( \
             SELECT * FROM ( \
                 SELECT subscriber_id, next_attempt_at, attempts, queued_at FROM deliveries \
                 WHERE issue_id = ?1 AND status = 'queued' AND next_attempt_at <= ?2 \
                 ORDER BY next_attempt_at, subscriber_id LIMIT ?3) \
             UNION ALL \
             SELECT * FROM ( \
                 SELECT subscriber_id, next_attempt_at, attempts, queued_at FROM deliveries \
                 WHERE issue_id = ?1 AND status = 'retry' AND next_attempt_at <= ?2 \
                 ORDER BY next_attempt_at, subscriber_id LIMIT ?3) \
             ORDER BY next_attempt_at, subscriber_id LIMIT ?3) AS due \
         JOIN subscribers s ON s.id = due.subscriber_id \
         ORDER BY due.next_attempt_at, due.subscriber_id",
    )
    .bind(issue_id)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(DueRow::into_claim).collect()
}
