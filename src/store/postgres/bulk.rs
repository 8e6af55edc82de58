//! Multi-row writes on PostgreSQL: one statement per chunk inserts the subscribers and, from
//! what it returns, their `subscribe` events, inside the caller's transaction.

use sqlx::types::Json;

use super::sql;
use crate::domain::SubscriberName;
use crate::store::{status_times, NewSubscriber, StoreError};

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
