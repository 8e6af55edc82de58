//! Multi-row writes as SQLite does them best, inside the caller's write transaction: one
//! `INSERT` of up to a thousand rows with anonymous placeholders; and a group's accepted
//! messages marked sent by one prepared statement run for each row (a call into the file,
//! not a round trip, so there is nothing to gain from a larger statement).

use std::collections::HashSet;

use super::sql;
use crate::domain::SubscriberName;
use crate::store::{status_times, NewSubscriber, SentRow, StoreError};

/// Rows per multi-row `INSERT`: 8 bound values a row stay far under SQLite's limit of
/// 32,766 bound variables.
const INSERT_CHUNK_ROWS: usize = 1_000;

/// Inserts imported subscribers (skipping addresses already held, in any letter case) and a
/// `subscribe` event for each one inserted. Returns how many were inserted.
pub(super) async fn insert_subscribers(
    tx: &mut sqlx::SqliteConnection,
    rows: &[&NewSubscriber],
    at: i64,
    source: &str,
) -> Result<u64, StoreError> {
    let max_id_before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM subscribers")
        .fetch_one(&mut *tx)
        .await?;
    let mut inserted = 0;
    for chunk in rows.chunks(INSERT_CHUNK_ROWS) {
        inserted += insert_subscriber_rows(tx, chunk, at, source).await?;
    }
    if inserted > 0 {
        // Within this write transaction (SQLite has one writer), every id above the old
        // maximum is one of ours.
        sqlx::query(
            "INSERT INTO events (occurred_at, kind, subscriber_id, source, detail) \
             SELECT ?1, 'subscribe', id, ?2, json_object('status', status) \
             FROM subscribers WHERE id > ?3",
        )
        .bind(at)
        .bind(source)
        .bind(max_id_before)
        .execute(&mut *tx)
        .await?;
    }
    Ok(inserted)
}

/// One multi-row `INSERT ... ON CONFLICT DO NOTHING`; returns the rows actually inserted.
async fn insert_subscriber_rows(
    tx: &mut sqlx::SqliteConnection,
    rows: &[&NewSubscriber],
    at: i64,
    source: &str,
) -> Result<u64, StoreError> {
    let sql = format!(
        "INSERT INTO subscribers \
         (email, name, status, attributes, confirmed_at, unsubscribed_at, created_at, source) \
         VALUES {} ON CONFLICT DO NOTHING",
        sql::values("(?,?,?,?,?,?,?,?)", rows.len())
    );
    let mut query = sqlx::query(&sql);
    for row in rows {
        let (confirmed_at, unsubscribed_at) = status_times(row.status, at);
        let attributes = if row.attributes.is_empty() {
            "{}".to_string()
        } else {
            serde_json::to_string(&row.attributes).unwrap_or_else(|_| "{}".into())
        };
        query = query
            .bind(row.email.as_str())
            .bind(row.name.as_ref().map(SubscriberName::as_str))
            .bind(row.status.as_str())
            .bind(attributes)
            .bind(confirmed_at)
            .bind(unsubscribed_at)
            .bind(at)
            .bind(source);
    }
    Ok(query.execute(&mut *tx).await?.rows_affected())
}

/// Marks accepted messages `sent` (by `node`), each only where its row is still `sending`
/// under its lease token. Returns the subscribers whose rows it changed.
pub(super) async fn record_sent(
    tx: &mut sqlx::SqliteConnection,
    issue_id: i64,
    node: Option<&str>,
    sent: &[SentRow<'_>],
) -> Result<HashSet<i64>, StoreError> {
    let mut changed = HashSet::with_capacity(sent.len());
    for row in sent {
        let n = sqlx::query(
            "UPDATE deliveries SET status = 'sent', message_id = $4, sent_at = $5, \
                 last_reply = $6, sent_by = $7, lease_until = NULL, lease_token = NULL \
             WHERE issue_id = $1 AND subscriber_id = $2 AND status = 'sending' \
               AND lease_token = $3",
        )
        .bind(issue_id)
        .bind(row.subscriber_id)
        .bind(row.lease_token)
        .bind(row.message_id)
        .bind(row.at)
        .bind(row.reply)
        .bind(node)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            changed.insert(row.subscriber_id);
        }
    }
    Ok(changed)
}

/// Nothing to do after an enqueue: SQLite plans the ledger's statements from its indexes
/// alone (it has no statistics unless `ANALYZE` is run, and herald never runs it).
pub(super) async fn after_enqueue(_pool: &sqlx::SqlitePool, _added: u64) {}
