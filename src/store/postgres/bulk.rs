//! Multi-row writes on PostgreSQL, inside the caller's transaction: one statement per chunk
//! inserts the subscribers and, from what it returns, their `subscribe` events; one
//! statement marks a group's accepted messages sent. Each statement is a round trip to the
//! server, so rows go in arrays, not a statement each.

use std::collections::HashSet;

use sqlx::types::Json;

use super::sql;
use crate::domain::SubscriberName;
use crate::store::{status_times, NewSubscriber, SentRow, StoreError};

/// Rows per statement: 8 bound values a row stay far under PostgreSQL's limit of 65,535.
const INSERT_CHUNK_ROWS: usize = 1_000;

/// Inserts imported subscribers (skipping addresses already held, in any letter case) and a
/// `subscribe` event for each one inserted. Returns how many were inserted.
pub(super) async fn insert_subscribers(
    tx: &mut sqlx::PgConnection,
    rows: &[&NewSubscriber],
    at: i64,
    source: &str,
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in rows.chunks(INSERT_CHUNK_ROWS) {
        inserted += insert_subscriber_rows(tx, chunk, at, source).await?;
    }
    Ok(inserted)
}

/// One `INSERT ... ON CONFLICT DO NOTHING` of a chunk, and the events of the rows it
/// inserted; returns how many it inserted.
async fn insert_subscriber_rows(
    tx: &mut sqlx::PgConnection,
    rows: &[&NewSubscriber],
    at: i64,
    source: &str,
) -> Result<u64, StoreError> {
    let event_params = rows.len() * 8;
    let sql = format!(
        "WITH inserted AS ( \
             INSERT INTO subscribers \
             (email, name, status, attributes, confirmed_at, unsubscribed_at, created_at, source) \
             VALUES {} ON CONFLICT DO NOTHING RETURNING id, status) \
         INSERT INTO events (occurred_at, kind, subscriber_id, source, detail) \
         SELECT ${}, 'subscribe', id, ${}, jsonb_build_object('status', status) \
         FROM inserted ORDER BY id",
        sql::values("(?,?,?,?,?,?,?,?)", rows.len()),
        event_params + 1,
        event_params + 2,
    );
    let mut query = sqlx::query(&sql);
    for row in rows {
        let (confirmed_at, unsubscribed_at) = status_times(row.status, at);
        query = query
            .bind(row.email.as_str())
            .bind(row.name.as_ref().map(SubscriberName::as_str))
            .bind(row.status.as_str())
            .bind(Json(&row.attributes))
            .bind(confirmed_at)
            .bind(unsubscribed_at)
            .bind(at)
            .bind(source);
    }
    query = query.bind(at).bind(source);
    Ok(query.execute(&mut *tx).await?.rows_affected())
}

/// The statement of [`record_sent`]: `$1` issue, `$2` node, then the rows as arrays of
/// subscriber ids, lease tokens, Message-IDs, times and replies. Each row is found by its
/// key; `tests/ledger.rs` checks the plan, with and without statistics.
pub const MARK_SENT: &str =
    "UPDATE deliveries AS d SET status = 'sent', message_id = v.message_id, \
         sent_at = v.sent_at, last_reply = v.reply, sent_by = $2, \
         lease_until = NULL, lease_token = NULL \
     FROM UNNEST($3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::text[]) \
          AS v(subscriber_id, lease_token, message_id, sent_at, reply) \
     WHERE d.issue_id = $1 AND d.subscriber_id = v.subscriber_id \
       AND d.lease_token = v.lease_token \
     RETURNING d.subscriber_id";

/// Marks accepted messages `sent` (by `node`), each only where its row is still `sending`
/// under its lease token, in one statement whose rows arrive as arrays. Returns the
/// subscribers whose rows it changed.
///
/// "Still `sending` under its lease token" is asked as "holds its lease token": the table's
/// checks allow a token only on a row in `sending`. A condition on the status or on the
/// lease's time would be one the planner estimates from statistics taken when no row was
/// in flight, and it then read every row of the issue for each group rather than each row
/// by its key.
pub(super) async fn record_sent(
    tx: &mut sqlx::PgConnection,
    issue_id: i64,
    node: Option<&str>,
    sent: &[SentRow<'_>],
) -> Result<HashSet<i64>, StoreError> {
    if sent.is_empty() {
        return Ok(HashSet::new());
    }
    let column = |f: fn(&SentRow<'_>) -> i64| sent.iter().map(f).collect::<Vec<i64>>();
    let text =
        |f: for<'r> fn(&'r SentRow<'_>) -> &'r str| sent.iter().map(f).collect::<Vec<&str>>();
    let changed: Vec<i64> = sqlx::query_scalar(MARK_SENT)
        .bind(issue_id)
        .bind(node)
        .bind(column(|r| r.subscriber_id))
        .bind(column(|r| r.lease_token))
        .bind(text(|r| r.message_id))
        .bind(column(|r| r.at))
        .bind(text(|r| r.reply))
        .fetch_all(&mut *tx)
        .await?;
    Ok(changed.into_iter().collect())
}

/// Rows an enqueue adds before the ledger's statistics are refreshed at once.
const ANALYZE_AFTER_ROWS: u64 = 1_000;

/// Refreshes the planner's statistics of `deliveries` once an enqueue added many rows, so
/// the statements of the send that follows are planned for the issue's real size rather than
/// for a table PostgreSQL has not yet sampled (autovacuum would sample it only later). A
/// failure costs only plan quality, so it is logged, not returned.
pub(super) async fn after_enqueue(pool: &sqlx::PgPool, added: u64) {
    if added < ANALYZE_AFTER_ROWS {
        return;
    }
    if let Err(e) = sqlx::query("ANALYZE deliveries").execute(pool).await {
        tracing::warn!(error = %e, "cannot refresh the ledger's statistics after an enqueue");
    }
}
