//! Claiming due work on PostgreSQL: due rows are read `FOR UPDATE SKIP LOCKED` and moved to
//! `sending` in the same transaction, so concurrent claimers (in any process, on any node)
//! each take rows nobody else holds, without waiting for one another.

use super::notices::notice_claim_from_row;
use super::Backend;
use crate::store::deliveries::DueRow;
use crate::store::{Claim, NoticeClaim, StoreError};

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
            "UPDATE notices SET status = 'retry', next_attempt_at = $1, \
                 lease_until = NULL, lease_token = NULL \
             WHERE id IN (SELECT id FROM notices WHERE status = 'sending' AND lease_until < $1 \
                          FOR UPDATE SKIP LOCKED)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if reclaimed > 0 {
            tracing::warn!(reclaimed, "took back notices whose lease expired");
        }
        let rows = sqlx::query(
            "WITH taken AS ( \
                 UPDATE notices SET status = 'sending', lease_until = $1, lease_token = $2 \
                 WHERE id IN (SELECT id FROM notices \
                              WHERE status IN ('queued', 'retry') AND next_attempt_at <= $3 \
                              ORDER BY next_attempt_at, id LIMIT $4 \
                              FOR UPDATE SKIP LOCKED) \
                 RETURNING id, kind, attempts, queued_at, subscriber_id) \
             SELECT n.id, n.kind, n.attempts, n.queued_at, s.id AS subscriber_id, s.email, \
                    s.name, s.status \
             FROM taken n JOIN subscribers s ON s.id = n.subscriber_id ORDER BY n.id",
        )
        .bind(lease_until)
        .bind(lease_token)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(notice_claim_from_row).collect()
    }
}

/// Moves the claimed rows of subscribers `ids` to `sending` under the lease.
pub(super) async fn mark_sending(
    conn: &mut sqlx::PgConnection,
    issue_id: i64,
    ids: &[i64],
    lease_until: i64,
    lease_token: i64,
) -> Result<(), StoreError> {
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE deliveries SET status = 'sending', lease_until = $1, lease_token = $2 \
             WHERE issue_id = $3 AND subscriber_id = ANY($4)",
        )
        .bind(lease_until)
        .bind(lease_token)
        .bind(issue_id)
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Moves the claimed rows of subscribers `ids` (no longer active) to `skipped`.
pub(super) async fn mark_skipped(
    conn: &mut sqlx::PgConnection,
    issue_id: i64,
    ids: &[i64],
) -> Result<(), StoreError> {
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped' \
             WHERE issue_id = $1 AND subscriber_id = ANY($2)",
        )
        .bind(issue_id)
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The claim's read: `$1` issue, `$2` now, `$3` limit. It reads the due index
/// (`deliveries_due`) in claim order and stops at its batch; `tests/ledger.rs` checks the
/// plan, with and without statistics.
pub const SELECT_DUE: &str = "SELECT d.subscriber_id, d.attempts, d.queued_at, s.email, s.name, \
            s.status = 'active' AS active \
     FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
     WHERE d.issue_id = $1 AND d.status IN ('queued', 'retry') AND d.next_attempt_at <= $2 \
     ORDER BY d.next_attempt_at, d.subscriber_id LIMIT $3 \
     FOR UPDATE OF d SKIP LOCKED";

/// Up to `limit` due rows of the issue that no other transaction holds, oldest due first,
/// each with whether its subscriber is still active. The rows stay locked until the caller's
/// transaction ends.
pub(super) async fn select_due_deliveries(
    conn: &mut sqlx::PgConnection,
    issue_id: i64,
    now: i64,
    limit: usize,
) -> Result<Vec<(Claim, bool)>, StoreError> {
    let limit = limit as i64;
    let rows = sqlx::query_as::<_, DueRow>(SELECT_DUE)
        .bind(issue_id)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(DueRow::into_claim).collect()
}
