//! Queries on `issues` and `deliveries`: the durable per-recipient delivery ledger.
//!
//! # The life of a delivery row
//!
//! [`Store::enqueue_issue`] inserts one `queued` row per active subscriber, due at once. The
//! dispatcher claims due rows with [`Store::claim_deliveries`], which moves them to `sending`
//! under a lease (`lease_until`, `lease_token`), sends them, and writes the outcomes back in
//! one transaction per batch with [`Store::record_outcomes`]. An outcome applies only while
//! the row is still `sending` under the same token, so a dispatcher whose lease expired and
//! whose rows were re-claimed cannot overwrite the newer state. After a crash,
//! [`Store::reclaim_expired_leases`] turns `sending` rows with an expired lease back into
//! `retry`. A `sent` row never leaves `sent`.
//!
//! Every function takes the current time from the caller, so tests control the clock.

use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row, SqliteConnection};

use super::{now, Store, StoreError};

/// Subscriber ids per `IN (...)` list when moving claimed rows.
const CLAIM_CHUNK: usize = 500;

/// An issue about to be enqueued.
#[derive(Debug, Clone, Copy)]
pub struct NewIssue<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub subject: &'a str,
    /// Hash of the issue file, to notice edits after a send started.
    pub source_hash: &'a str,
}

/// A stored issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRow {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub subject: String,
    pub source_hash: String,
    /// `draft`, `scheduled`, `sending`, `sent` or `cancelled`.
    pub status: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// What [`Store::enqueue_issue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub issue_id: i64,
    /// Delivery rows added by this call (subscribers active now and not enqueued before).
    pub added: u64,
    /// Delivery rows of the issue in all.
    pub total: u64,
    /// The issue was enqueued before from a file with a different hash.
    pub source_changed: bool,
}

/// One delivery handed to a dispatcher by [`Store::claim_deliveries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub subscriber_id: i64,
    pub email: String,
    pub name: Option<String>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the row was enqueued: the start of its retry lifetime.
    pub queued_at: i64,
}

/// How many delivery rows of one issue have each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryCounts {
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub retry: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl DeliveryCounts {
    /// Rows that still need work: queued, sending or retry.
    pub fn pending(&self) -> u64 {
        self.queued + self.sending + self.retry
    }

    /// Every row.
    pub fn total(&self) -> u64 {
        self.pending() + self.sent + self.failed + self.skipped
    }
}

/// The result of one claimed delivery, written back by [`Store::record_outcomes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub subscriber_id: i64,
    pub kind: OutcomeKind,
}

/// What happened to one claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeKind {
    /// Accepted (2xx): the row becomes `sent`.
    Sent {
        message_id: String,
        reply: String,
        at: i64,
    },
    /// A transient failure: the row becomes `retry`, due at `next_attempt_at`; attempts + 1.
    Retry { reply: String, next_attempt_at: i64 },
    /// Given up: the row becomes `failed`; attempts + 1. `permanent` marks a 5xx reply.
    /// `bounce` also marks the subscriber `bounced` (when active or pending) and appends a
    /// `bounce` event.
    Failed {
        reply: String,
        permanent: bool,
        bounce: bool,
    },
    /// The subscriber is no longer active: the row becomes `skipped`.
    Skipped,
    /// Handed back unsent without burning an attempt: `queued` (no attempts yet) or `retry`,
    /// due at once (its due time is left as it was when claimed, which had passed).
    Release,
}

/// One delivery row (for status displays and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub issue_id: i64,
    pub subscriber_id: i64,
    pub status: String,
    pub attempts: u32,
    pub queued_at: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub lease_token: Option<i64>,
    pub permanent: bool,
    pub last_reply: Option<String>,
    pub message_id: Option<String>,
    pub sent_at: Option<i64>,
}

const ISSUE_COLUMNS: &str =
    "id, slug, title, subject, source_hash, status, created_at, started_at, finished_at";

impl Store {
    /// Upserts the issue by slug and, in the same transaction, inserts one `queued` delivery
    /// row per subscriber who is `active` now, freezing the recipient set.
    ///
    /// The issue keeps its id; it becomes `sending` (`started_at` set once, `finished_at`
    /// cleared), and takes the new title, subject and source hash (`source_changed` reports
    /// a different stored hash). Idempotent: enqueueing again adds only subscribers who
    /// became active since. Appends a `send_request` event.
    pub async fn enqueue_issue(
        &self,
        issue: &NewIssue<'_>,
        source: &str,
        now: i64,
    ) -> Result<Enqueued, StoreError> {
        self.enqueue_dated_issue(issue, None, source, now).await
    }

    /// As [`Store::enqueue_issue`], also recording the date the issue carries
    /// (`issues.issue_date`, Unix seconds), which the scheduler compares against. A `None`
    /// keeps a date stored before.
    #[tracing::instrument(skip_all, fields(slug = issue.slug))]
    pub async fn enqueue_dated_issue(
        &self,
        issue: &NewIssue<'_>,
        issue_date: Option<i64>,
        source: &str,
        now: i64,
    ) -> Result<Enqueued, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let enqueued = enqueue_in(&mut tx, issue, issue_date, source, now).await?;
        tx.commit().await?;
        Ok(enqueued)
    }

    /// The issue with this slug.
    pub async fn find_issue(&self, slug: &str) -> Result<Option<IssueRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE slug = ?"
        ))
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(issue_from_row).transpose()
    }

    /// Every issue, newest first.
    pub async fn list_issues(&self) -> Result<Vec<IssueRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ISSUE_COLUMNS} FROM issues ORDER BY created_at DESC, id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(issue_from_row).collect()
    }

    /// Issues whose send is under way (`sending`), oldest first: what a long-running
    /// dispatcher resumes.
    pub async fn issues_in_progress(&self) -> Result<Vec<IssueRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE status = 'sending' \
             ORDER BY started_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(issue_from_row).collect()
    }

    /// Claims up to `limit` due rows of `issue_id` (`queued` or `retry` with
    /// `next_attempt_at <= now`, oldest due first) in one short write transaction: they
    /// become `sending` under `lease_token` until `lease_until`, and are returned with their
    /// subscriber's address and name.
    ///
    /// Rows whose subscriber is no longer `active` become `skipped` and are not returned;
    /// the claim then looks further, so an empty result means nothing of this issue is due.
    /// The transaction holds SQLite's write lock from its start, so two dispatchers (in any
    /// processes) never claim the same row.
    #[tracing::instrument(skip_all, fields(issue_id, lease_token, limit))]
    pub async fn claim_deliveries(
        &self,
        issue_id: i64,
        lease_token: i64,
        lease_until: i64,
        limit: u32,
        now: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let limit = limit as usize;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut claimed: Vec<Claim> = Vec::new();
        while claimed.len() < limit {
            let want = limit - claimed.len();
            let due = select_due_deliveries(&mut tx, issue_id, now, want).await?;
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
            for chunk in taken.chunks(CLAIM_CHUNK) {
                let sql = format!(
                    "UPDATE deliveries SET status = 'sending', lease_until = ?, lease_token = ? \
                     WHERE issue_id = ? AND subscriber_id IN ({})",
                    placeholders(chunk.len())
                );
                let mut query = sqlx::query(&sql)
                    .bind(lease_until)
                    .bind(lease_token)
                    .bind(issue_id);
                for id in chunk {
                    query = query.bind(id);
                }
                query.execute(&mut *tx).await?;
            }
            for chunk in skipped.chunks(CLAIM_CHUNK) {
                let sql = format!(
                    "UPDATE deliveries SET status = 'skipped' \
                     WHERE issue_id = ? AND subscriber_id IN ({})",
                    placeholders(chunk.len())
                );
                let mut query = sqlx::query(&sql).bind(issue_id);
                for id in chunk {
                    query = query.bind(id);
                }
                query.execute(&mut *tx).await?;
            }
            if found < want || skipped.is_empty() {
                break;
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Whether the subscriber is still `active`: checked just before each message goes out,
    /// since a claimed row can wait a while for its turn (false for an unknown subscriber).
    pub async fn is_subscriber_active(&self, subscriber_id: i64) -> Result<bool, StoreError> {
        let active: Option<bool> =
            sqlx::query_scalar("SELECT status = 'active' FROM subscribers WHERE id = ?")
                .bind(subscriber_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(active.unwrap_or(false))
    }

    /// Extends `lease_until` of every `sending` row of this issue held under `lease_token`
    /// (a heartbeat while a batch is in flight). Returns how many rows it extended.
    pub async fn renew_leases(
        &self,
        issue_id: i64,
        lease_token: i64,
        lease_until: i64,
    ) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query(
            "UPDATE deliveries SET lease_until = ? \
             WHERE issue_id = ? AND status = 'sending' AND lease_token = ?",
        )
        .bind(lease_until)
        .bind(issue_id)
        .bind(lease_token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// [`Store::record_outcomes_at`] at the current time. The clock is read only for a
    /// bounce (the subscriber's `unsubscribed_at` and the `bounce` event's time).
    pub async fn record_outcomes(
        &self,
        issue_id: i64,
        lease_token: i64,
        outcomes: &[Outcome],
    ) -> Result<u64, StoreError> {
        self.record_outcomes_at(issue_id, lease_token, outcomes, now())
            .await
    }

    /// Writes a batch of outcomes back in ONE transaction (group commit). Each applies only
    /// where the row is still `sending` under `lease_token`; a late write after the lease
    /// expired and the row was re-claimed changes nothing. Every outcome clears the lease.
    /// `now` dates a bounce. Returns how many rows changed.
    #[tracing::instrument(skip_all, fields(issue_id, lease_token, outcomes = outcomes.len()))]
    pub async fn record_outcomes_at(
        &self,
        issue_id: i64,
        lease_token: i64,
        outcomes: &[Outcome],
        now: i64,
    ) -> Result<u64, StoreError> {
        // Each statement text is a compile-time constant, so no row allocates its SQL, and
        // sqlx prepares each statement once per connection and reuses it for every row.
        macro_rules! leased_update {
            ($set:literal) => {
                concat!(
                    "UPDATE deliveries SET ",
                    $set,
                    " WHERE issue_id = ? AND subscriber_id = ? AND status = 'sending' \
                     AND lease_token = ?"
                )
            };
        }
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut changed = 0;
        for outcome in outcomes {
            let sid = outcome.subscriber_id;
            let n = match &outcome.kind {
                OutcomeKind::Sent {
                    message_id,
                    reply,
                    at,
                } => sqlx::query(leased_update!(
                    "status = 'sent', message_id = ?, sent_at = ?, \
                         last_reply = ?, lease_until = NULL, lease_token = NULL"
                ))
                .bind(message_id)
                .bind(at)
                .bind(reply)
                .bind(issue_id)
                .bind(sid)
                .bind(lease_token)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                OutcomeKind::Retry {
                    reply,
                    next_attempt_at,
                } => sqlx::query(leased_update!(
                    "status = 'retry', attempts = attempts + 1, \
                         next_attempt_at = ?, last_reply = ?, lease_until = NULL, \
                         lease_token = NULL"
                ))
                .bind(next_attempt_at)
                .bind(reply)
                .bind(issue_id)
                .bind(sid)
                .bind(lease_token)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                OutcomeKind::Failed {
                    reply,
                    permanent,
                    bounce,
                } => {
                    let n = sqlx::query(leased_update!(
                        "status = 'failed', attempts = attempts + 1, \
                             permanent = ?, last_reply = ?, lease_until = NULL, \
                             lease_token = NULL"
                    ))
                    .bind(permanent)
                    .bind(reply)
                    .bind(issue_id)
                    .bind(sid)
                    .bind(lease_token)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n > 0 && *bounce {
                        record_bounce(&mut tx, issue_id, sid, reply, now).await?;
                    }
                    n
                }
                OutcomeKind::Skipped => sqlx::query(leased_update!(
                    "status = 'skipped', lease_until = NULL, \
                         lease_token = NULL"
                ))
                .bind(issue_id)
                .bind(sid)
                .bind(lease_token)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                OutcomeKind::Release => sqlx::query(leased_update!(
                    "\
                         status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'retry' END, \
                         lease_until = NULL, lease_token = NULL"
                ))
                .bind(issue_id)
                .bind(sid)
                .bind(lease_token)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            };
            changed += n;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Crash recovery: every `sending` row (of any issue) whose lease ended before `now`
    /// goes back to `retry`, due at `now`, with its attempts unchanged (whether the message
    /// went out is unknown). Returns how many rows it moved.
    #[tracing::instrument(skip_all)]
    pub async fn reclaim_expired_leases(&self, now: i64) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query(
            "UPDATE deliveries SET status = 'retry', next_attempt_at = ?, \
                 lease_until = NULL, lease_token = NULL \
             WHERE status = 'sending' AND lease_until < ?",
        )
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// How many rows of the issue have each status.
    pub async fn delivery_counts(&self, issue_id: i64) -> Result<DeliveryCounts, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM deliveries WHERE issue_id = ? GROUP BY status",
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

    /// The earliest time anything of the issue could need work: the earliest due time of a
    /// `queued` or `retry` row, or the earliest lease end of a `sending` row. `None` when
    /// every row is `sent`, `failed` or `skipped`.
    pub async fn next_due_at(&self, issue_id: i64) -> Result<Option<i64>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(t) FROM ( \
                 SELECT MIN(next_attempt_at) AS t FROM deliveries \
                     WHERE issue_id = ? AND status = 'queued' \
                 UNION ALL \
                 SELECT MIN(next_attempt_at) FROM deliveries \
                     WHERE issue_id = ? AND status = 'retry' \
                 UNION ALL \
                 SELECT MIN(lease_until) FROM deliveries \
                     WHERE issue_id = ? AND status = 'sending')",
        )
        .bind(issue_id)
        .bind(issue_id)
        .bind(issue_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(at)
    }

    /// When no row of the issue is `queued`, `sending` or `retry`, marks a `sending` issue
    /// `sent` with `finished_at = now`. Returns whether the issue is finished (also when it
    /// already was); false for an unknown issue.
    pub async fn finish_issue_if_done(&self, issue_id: i64, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM deliveries \
                 WHERE issue_id = ? AND status IN ('queued', 'sending', 'retry'))",
        )
        .bind(issue_id)
        .fetch_one(&mut *tx)
        .await?;
        if pending {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE issues SET status = 'sent', finished_at = ? \
             WHERE id = ? AND status = 'sending'",
        )
        .bind(now)
        .bind(issue_id)
        .execute(&mut *tx)
        .await?;
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM issues WHERE id = ?")
            .bind(issue_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(status.as_deref() == Some("sent"))
    }

    /// One delivery row.
    pub async fn find_delivery(
        &self,
        issue_id: i64,
        subscriber_id: i64,
    ) -> Result<Option<DeliveryRow>, StoreError> {
        let row = sqlx::query(
            "SELECT issue_id, subscriber_id, status, attempts, queued_at, next_attempt_at, \
                    lease_until, lease_token, permanent, last_reply, message_id, sent_at \
             FROM deliveries WHERE issue_id = ? AND subscriber_id = ?",
        )
        .bind(issue_id)
        .bind(subscriber_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }
}

/// Up to `limit` due rows of the issue, oldest due first, each with whether its subscriber
/// is still active. One index range scan per status (an `IN ('queued', 'retry')` would make
/// SQLite sort every due row before applying the limit).
async fn select_due_deliveries(
    conn: &mut SqliteConnection,
    issue_id: i64,
    now: i64,
    limit: usize,
) -> Result<Vec<(Claim, bool)>, StoreError> {
    let limit = limit as i64;
    let rows = sqlx::query(
        "SELECT due.subscriber_id, due.attempts, due.queued_at, s.email, s.name, \
                s.status = 'active' AS active \
         FROM ( \
             SELECT * FROM ( \
                 SELECT subscriber_id, next_attempt_at, attempts, queued_at FROM deliveries \
                 WHERE issue_id = ? AND status = 'queued' AND next_attempt_at <= ? \
                 ORDER BY next_attempt_at, subscriber_id LIMIT ?) \
             UNION ALL \
             SELECT * FROM ( \
                 SELECT subscriber_id, next_attempt_at, attempts, queued_at FROM deliveries \
                 WHERE issue_id = ? AND status = 'retry' AND next_attempt_at <= ? \
                 ORDER BY next_attempt_at, subscriber_id LIMIT ?) \
             ORDER BY next_attempt_at, subscriber_id LIMIT ?) AS due \
         JOIN subscribers s ON s.id = due.subscriber_id \
         ORDER BY due.next_attempt_at, due.subscriber_id",
    )
    .bind(issue_id)
    .bind(now)
    .bind(limit)
    .bind(issue_id)
    .bind(now)
    .bind(limit)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let attempts: i64 = row.try_get("attempts")?;
            let claim = Claim {
                subscriber_id: row.try_get("subscriber_id")?,
                email: row.try_get("email")?,
                name: row.try_get("name")?,
                attempts: to_u32(attempts)?,
                queued_at: row.try_get("queued_at")?,
            };
            Ok((claim, row.try_get::<bool, _>("active")?))
        })
        .collect()
}

/// Marks the subscriber `bounced` (only from `active` or `pending`) and appends a `bounce`
/// event naming the issue and the reply.
async fn record_bounce(
    conn: &mut SqliteConnection,
    issue_id: i64,
    subscriber_id: i64,
    reply: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE subscribers SET status = 'bounced', unsubscribed_at = ? \
         WHERE id = ? AND status IN ('active', 'pending')",
    )
    .bind(now)
    .bind(subscriber_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO events (occurred_at, kind, subscriber_id, issue_id, source, detail) \
         VALUES (?, 'bounce', ?, ?, 'dispatcher', json_object( \
             'issue', (SELECT slug FROM issues WHERE id = ?), 'reply', ?))",
    )
    .bind(now)
    .bind(subscriber_id)
    .bind(issue_id)
    .bind(issue_id)
    .bind(reply)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `?,?,...`, `n` of them (anonymous: numbered ones make large statements quadratic).
fn placeholders(n: usize) -> String {
    let mut s = "?,".repeat(n);
    s.pop();
    s
}

fn to_u32(n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::BadValue(format!("attempts {n} out of range")))
}

/// The body of [`Store::enqueue_dated_issue`], inside a write transaction the caller holds
/// (the scheduler adds its own checks to the same transaction).
pub(super) async fn enqueue_in(
    conn: &mut SqliteConnection,
    issue: &NewIssue<'_>,
    issue_date: Option<i64>,
    source: &str,
    now: i64,
) -> Result<Enqueued, StoreError> {
    let old_hash: Option<String> =
        sqlx::query_scalar("SELECT source_hash FROM issues WHERE slug = ?")
            .bind(issue.slug)
            .fetch_optional(&mut *conn)
            .await?;
    let issue_id: i64 = sqlx::query_scalar(
        "INSERT INTO issues \
         (slug, title, subject, source_hash, status, created_at, started_at, issue_date) \
         VALUES (?, ?, ?, ?, 'sending', ?, ?, ?) \
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
    .bind(now)
    .bind(issue_date)
    .fetch_one(&mut *conn)
    .await?;
    // The WHERE clause also keeps SQLite from reading ON CONFLICT as part of a join.
    let added = sqlx::query(
        "INSERT INTO deliveries \
         (issue_id, subscriber_id, status, attempts, queued_at, next_attempt_at) \
         SELECT ?, id, 'queued', 0, ?, ? FROM subscribers WHERE status = 'active' \
         ON CONFLICT DO NOTHING",
    )
    .bind(issue_id)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE issue_id = ?")
        .bind(issue_id)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO events (occurred_at, kind, issue_id, source, detail) \
         VALUES (?, 'send_request', ?, ?, json_object('slug', ?, 'added', ?))",
    )
    .bind(now)
    .bind(issue_id)
    .bind(source)
    .bind(issue.slug)
    .bind(added as i64)
    .execute(&mut *conn)
    .await?;
    Ok(Enqueued {
        issue_id,
        added,
        total: total as u64,
        source_changed: old_hash.is_some_and(|h| h != issue.source_hash),
    })
}

fn issue_from_row(row: &SqliteRow) -> Result<IssueRow, StoreError> {
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
    })
}

fn delivery_from_row(row: &SqliteRow) -> Result<DeliveryRow, StoreError> {
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
    })
}
