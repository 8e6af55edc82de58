//! Queries on `issues` and `deliveries`: the durable per-recipient delivery ledger. The
//! claim itself is the backends' own (`claims.rs` beside each backend).
//!
//! Compiled once per backend (see `store/mod.rs`): `Backend`, `Connection`, `Row` and `sql`
//! are that backend's.

use std::collections::HashMap;

use sqlx::types::Json;
use sqlx::Row as _;

use super::{sql, Backend, Connection, Row};
use crate::store::{
    to_u32, Claim, ClaimCheck, DeliveryCounts, DeliveryRow, Enqueued, IssueRow, NewIssue, Outcome,
    OutcomeKind, SentRow, StoreError,
};

/// Claims checked per statement: far under both backends' limits on bound values.
const CHECK_CHUNK: usize = 1000;

const ISSUE_COLUMNS: &str = "id, slug, title, subject, source_hash, status, created_at, \
     started_at, finished_at, issue_date";

impl Backend {
    pub(crate) async fn enqueue_dated_issue(
        &self,
        issue: &NewIssue<'_>,
        issue_date: Option<i64>,
        source: &str,
        now: i64,
    ) -> Result<Enqueued, StoreError> {
        let mut tx = self.begin_write().await?;
        let enqueued = enqueue_in(&mut tx, issue, issue_date, source, now).await?;
        tx.commit().await?;
        super::bulk::after_enqueue(&self.pool, enqueued.added).await;
        Ok(enqueued)
    }

    pub(crate) async fn find_issue(&self, slug: &str) -> Result<Option<IssueRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE slug = $1"
        ))
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(issue_from_row).transpose()
    }

    pub(crate) async fn list_issues(&self) -> Result<Vec<IssueRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ISSUE_COLUMNS} FROM issues ORDER BY created_at DESC, id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(issue_from_row).collect()
    }

    pub(crate) async fn issues_in_progress(&self) -> Result<Vec<IssueRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE status = 'sending' \
             ORDER BY started_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(issue_from_row).collect()
    }

    pub(crate) async fn check_claims(
        &self,
        issue_id: i64,
        claims: &[(i64, i64)],
        now: i64,
    ) -> Result<Vec<ClaimCheck>, StoreError> {
        let mut found: HashMap<i64, (Option<i64>, bool)> = HashMap::with_capacity(claims.len());
        for chunk in claims.chunks(CHECK_CHUNK) {
            let sql = format!(
                "SELECT d.subscriber_id, \
                        CASE WHEN d.status = 'sending' AND d.lease_until > {} \
                             THEN d.lease_token END, \
                        s.status = 'active' \
                 FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
                 WHERE d.issue_id = {} AND d.subscriber_id IN ({})",
                sql::placeholders(1, 1),
                sql::placeholders(2, 1),
                sql::placeholders(3, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (i64, Option<i64>, bool)>(&sql)
                .bind(now)
                .bind(issue_id);
            for (subscriber_id, _) in chunk {
                query = query.bind(*subscriber_id);
            }
            for (subscriber_id, token, active) in query.fetch_all(&self.pool).await? {
                found.insert(subscriber_id, (token, active));
            }
        }
        Ok(claims
            .iter()
            .map(
                |(subscriber_id, lease_token)| match found.get(subscriber_id) {
                    Some((Some(held), true)) if held == lease_token => ClaimCheck::Held,
                    Some((Some(held), false)) if held == lease_token => ClaimCheck::SubscriberLeft,
                    _ => ClaimCheck::Lost,
                },
            )
            .collect())
    }

    pub(crate) async fn renew_leases(
        &self,
        issue_id: i64,
        lease_tokens: std::ops::RangeInclusive<i64>,
        lease_until: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE deliveries SET lease_until = $1 \
             WHERE issue_id = $2 AND status = 'sending' AND lease_token BETWEEN $3 AND $4",
        )
        .bind(lease_until)
        .bind(issue_id)
        .bind(*lease_tokens.start())
        .bind(*lease_tokens.end())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    pub(crate) async fn record_outcomes_at(
        &self,
        issue_id: i64,
        outcomes: &[Outcome],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        // Each statement text is a compile-time constant, so no row allocates its SQL, and
        // sqlx prepares each statement once per connection and reuses it for every row.
        macro_rules! leased_update {
            ($set:literal) => {
                concat!(
                    "UPDATE deliveries SET ",
                    $set,
                    " WHERE issue_id = $1 AND subscriber_id = $2 AND status = 'sending' \
                     AND lease_token = $3"
                )
            };
        }
        let mut tx = self.begin_write().await?;
        // Accepted messages, most of every group, are written together (see `bulk.rs`).
        let sent: Vec<SentRow<'_>> = outcomes
            .iter()
            .filter_map(|o| match &o.kind {
                OutcomeKind::Sent {
                    message_id,
                    reply,
                    at,
                } => Some(SentRow {
                    subscriber_id: o.subscriber_id,
                    lease_token: o.lease_token,
                    message_id,
                    reply,
                    at: *at,
                }),
                _ => None,
            })
            .collect();
        let sent = super::bulk::record_sent(&mut tx, issue_id, self.node.as_deref(), &sent).await?;
        let mut applied = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let sid = outcome.subscriber_id;
            let lease_token = outcome.lease_token;
            let query = match &outcome.kind {
                OutcomeKind::Sent { .. } => {
                    applied.push(sent.contains(&sid));
                    continue;
                }
                OutcomeKind::Retry {
                    reply,
                    next_attempt_at,
                } => sqlx::query(leased_update!(
                    "status = 'retry', attempts = attempts + 1, \
                     next_attempt_at = $4, last_reply = $5, lease_until = NULL, \
                     lease_token = NULL"
                ))
                .bind(issue_id)
                .bind(sid)
                .bind(lease_token)
                .bind(next_attempt_at)
                .bind(reply),
                OutcomeKind::Failed {
                    reply, permanent, ..
                } => sqlx::query(leased_update!(
                    "status = 'failed', attempts = attempts + 1, \
                     permanent = $4, last_reply = $5, lease_until = NULL, \
                     lease_token = NULL"
                ))
                .bind(issue_id)
                .bind(sid)
                .bind(lease_token)
                .bind(permanent)
                .bind(reply),
                OutcomeKind::Skipped => sqlx::query(leased_update!(
                    "status = 'skipped', lease_until = NULL, lease_token = NULL"
                ))
                .bind(issue_id)
                .bind(sid)
                .bind(lease_token),
                OutcomeKind::Release => sqlx::query(leased_update!(
                    "status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'retry' END, \
                     lease_until = NULL, lease_token = NULL"
                ))
                .bind(issue_id)
                .bind(sid)
                .bind(lease_token),
                OutcomeKind::Defer {
                    reply,
                    next_attempt_at,
                } => sqlx::query(leased_update!(
                    "status = CASE WHEN attempts = 0 AND $5 IS NULL THEN 'queued' \
                         ELSE 'retry' END, \
                     next_attempt_at = $4, last_reply = COALESCE($5, last_reply), \
                     lease_until = NULL, lease_token = NULL"
                ))
                .bind(issue_id)
                .bind(sid)
                .bind(lease_token)
                .bind(next_attempt_at)
                .bind(reply),
            };
            let n = query.execute(&mut *tx).await?.rows_affected();
            if let OutcomeKind::Failed {
                reply,
                permanent: true,
                bounce,
            } = &outcome.kind
            {
                if n > 0 {
                    super::bounces::record_session_refusal(
                        &mut tx, issue_id, sid, reply, *bounce, now,
                    )
                    .await?;
                }
            }
            applied.push(n > 0);
        }
        tx.commit().await?;
        Ok(applied)
    }

    pub(crate) async fn reclaim_expired_leases(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(sql::RECLAIM_EXPIRED_DELIVERIES)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    pub(crate) async fn delivery_counts(
        &self,
        issue_id: i64,
    ) -> Result<DeliveryCounts, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM deliveries WHERE issue_id = $1 GROUP BY status",
        )
        .bind(issue_id)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = DeliveryCounts::default();
        for (status, n) in rows {
            let n = n as u64;
            match status.as_str() {
                "queued" => counts.queued = n,
                "sending" => counts.sending = n,
                "sent" => counts.sent = n,
                "retry" => counts.retry = n,
                "failed" => counts.failed = n,
                "skipped" => counts.skipped = n,
                other => {
                    return Err(StoreError::BadValue(format!(
                        "unknown delivery status {other:?}"
                    )))
                }
            }
        }
        Ok(counts)
    }

    pub(crate) async fn next_due_at(&self, issue_id: i64) -> Result<Option<i64>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(t) FROM ( \
                 SELECT MIN(next_attempt_at) AS t FROM deliveries \
                     WHERE issue_id = $1 AND status = 'queued' \
                 UNION ALL \
                 SELECT MIN(next_attempt_at) FROM deliveries \
                     WHERE issue_id = $1 AND status = 'retry' \
                 UNION ALL \
                 SELECT MIN(lease_until) FROM deliveries \
                     WHERE issue_id = $1 AND status = 'sending') AS due",
        )
        .bind(issue_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(at)
    }

    pub(crate) async fn finish_issue_if_done(
        &self,
        issue_id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // Locked first, so an enqueue or a requeue of this issue (which update the issue row
        // in their transactions) is either wholly before the check below or wholly after.
        let status: Option<String> = sqlx::query_scalar(sql::ISSUE_STATUS_FOR_UPDATE)
            .bind(issue_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(status) = status else {
            return Ok(false);
        };
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM deliveries \
                 WHERE issue_id = $1 AND status IN ('queued', 'sending', 'retry'))",
        )
        .bind(issue_id)
        .fetch_one(&mut *tx)
        .await?;
        if pending {
            return Ok(false);
        }
        if status == "sending" {
            sqlx::query("UPDATE issues SET status = 'sent', finished_at = $1 WHERE id = $2")
                .bind(now)
                .bind(issue_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(true);
        }
        Ok(status == "sent")
    }

    pub(crate) async fn find_delivery(
        &self,
        issue_id: i64,
        subscriber_id: i64,
    ) -> Result<Option<DeliveryRow>, StoreError> {
        let row = sqlx::query(
            "SELECT issue_id, subscriber_id, status, attempts, queued_at, next_attempt_at, \
                    lease_until, lease_token, permanent, last_reply, message_id, sent_at, \
                    sent_by \
             FROM deliveries WHERE issue_id = $1 AND subscriber_id = $2",
        )
        .bind(issue_id)
        .bind(subscriber_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }
}

/// The body of `enqueue_dated_issue`, inside a write transaction the caller holds (the
/// scheduler adds its own checks to the same transaction).
pub(super) async fn enqueue_in(
    conn: &mut Connection,
    issue: &NewIssue<'_>,
    issue_date: Option<i64>,
    source: &str,
    now: i64,
) -> Result<Enqueued, StoreError> {
    let old_hash: Option<String> =
        sqlx::query_scalar("SELECT source_hash FROM issues WHERE slug = $1")
            .bind(issue.slug)
            .fetch_optional(&mut *conn)
            .await?;
    // The upsert locks the issue row until commit, so two enqueues of one issue (from two
    // nodes) take turns, and the second adds only what the first did not.
    let issue_id: i64 = sqlx::query_scalar(
        "INSERT INTO issues \
         (slug, title, subject, source_hash, status, created_at, started_at, issue_date) \
         VALUES ($1, $2, $3, $4, 'sending', $5, $5, $6) \
         ON CONFLICT (slug) DO UPDATE SET title = excluded.title, \
         subject = excluded.subject, source_hash = excluded.source_hash, \
         status = 'sending', started_at = COALESCE(issues.started_at, excluded.started_at), \
         finished_at = NULL, issue_date = COALESCE(excluded.issue_date, issues.issue_date) \
         RETURNING id",
    )
    .bind(issue.slug)
    .bind(issue.title)
    .bind(issue.subject)
    .bind(issue.source_hash)
    .bind(now)
    .bind(issue_date)
    .fetch_one(&mut *conn)
    .await?;
    // Only subscribers without a row yet: when every node of a cluster runs `herald send`,
    // or an editor sends again, the later enqueues find most rows there, and an anti-join
    // is several times cheaper than a conflicting insert per row. ON CONFLICT stays as a
    // guard; the WHERE clause also keeps SQLite from reading it as part of a join.
    let added = sqlx::query(
        "INSERT INTO deliveries \
         (issue_id, subscriber_id, status, attempts, queued_at, next_attempt_at) \
         SELECT $1, s.id, 'queued', 0, $2, $2 FROM subscribers s \
         WHERE s.status = 'active' AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.issue_id = $1 AND d.subscriber_id = s.id) \
         ON CONFLICT DO NOTHING",
    )
    .bind(issue_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE issue_id = $1")
        .bind(issue_id)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO events (occurred_at, kind, issue_id, source, detail) \
         VALUES ($1, 'send_request', $2, $3, $4)",
    )
    .bind(now)
    .bind(issue_id)
    .bind(source)
    .bind(Json(
        serde_json::json!({ "slug": issue.slug, "added": added }),
    ))
    .execute(&mut *conn)
    .await?;
    Ok(Enqueued {
        issue_id,
        added,
        total: total as u64,
        source_changed: old_hash.is_some_and(|h| h != issue.source_hash),
    })
}

fn issue_from_row(row: &Row) -> Result<IssueRow, StoreError> {
    Ok(IssueRow {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        title: row.try_get("title")?,
        subject: row.try_get("subject")?,
        source_hash: row.try_get("source_hash")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        issue_date: row.try_get("issue_date")?,
    })
}

fn delivery_from_row(row: &Row) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        issue_id: row.try_get("issue_id")?,
        subscriber_id: row.try_get("subscriber_id")?,
        status: row.try_get("status")?,
        attempts: to_u32(row.try_get("attempts")?)?,
        queued_at: row.try_get("queued_at")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        lease_until: row.try_get("lease_until")?,
        lease_token: row.try_get("lease_token")?,
        permanent: row.try_get("permanent")?,
        last_reply: row.try_get("last_reply")?,
        message_id: row.try_get("message_id")?,
        sent_at: row.try_get("sent_at")?,
        sent_by: row.try_get("sent_by")?,
    })
}

impl Backend {
    /// Claims up to `limit` due rows of the issue: each one whose subscriber is active moves
    /// to `sending` under the lease, each other one to `skipped`. How the due rows are read
    /// and locked is the backend's own (`claims.rs`).
    pub(crate) async fn claim_deliveries(
        &self,
        issue_id: i64,
        lease_token: i64,
        lease_until: i64,
        limit: u32,
        now: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let limit = limit as usize;
        let mut tx = self.begin_write().await?;
        let mut claimed: Vec<Claim> = Vec::new();
        while claimed.len() < limit {
            let want = limit - claimed.len();
            let due = super::claims::select_due_deliveries(&mut tx, issue_id, now, want).await?;
            let found = due.len();
            let mut skipped = Vec::new();
            let mut taken = Vec::new();
            for (claim, active) in due {
                if active {
                    taken.push(claim.subscriber_id);
                    claimed.push(claim);
                } else {
                    skipped.push(claim.subscriber_id);
                }
            }
            super::claims::mark_sending(&mut tx, issue_id, &taken, lease_until, lease_token)
                .await?;
            super::claims::mark_skipped(&mut tx, issue_id, &skipped).await?;
            if found < want || skipped.is_empty() {
                break;
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }
}
