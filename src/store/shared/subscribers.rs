//! Queries on `subscribers`, `erased_addresses` and the subscriber events in `events`.
//!
//! Compiled once per backend (see `store/mod.rs`): `Backend`, `Connection`, `Row` and `sql`
//! are that backend's.

use futures::{Stream, StreamExt};
use sqlx::types::Json;
use sqlx::Row as _;

use super::{sql, Backend, Connection, Row};
use crate::domain::{AddressHash, EmailAddress, ErasureKey, SubscriberName, SubscriberStatus};
use crate::store::{
    now, parse_status, status_times, AddOutcome, BatchOutcome, NewSubscriber, StatusChange,
    StoreError, Subscriber, SubscriberRecord,
};

impl Backend {
    pub(crate) async fn add_subscriber(
        &self,
        new: &NewSubscriber,
        erased_hash: &AddressHash,
        source: &str,
    ) -> Result<AddOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        if is_erased(&mut tx, erased_hash).await? {
            return Ok(AddOutcome::Erased);
        }
        let at = now();
        let (confirmed_at, unsubscribed_at) = status_times(new.status, at);
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO subscribers \
                 (email, name, status, attributes, created_at, confirmed_at, unsubscribed_at, source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(new.email.as_str())
        .bind(new.name.as_ref().map(SubscriberName::as_str))
        .bind(new.status.as_str())
        .bind(Json(&new.attributes))
        .bind(at)
        .bind(confirmed_at)
        .bind(unsubscribed_at)
        .bind(source)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            let status: String = sqlx::query_scalar(sql::STATUS_BY_EMAIL)
                .bind(new.email.as_str())
                .fetch_one(&mut *tx)
                .await?;
            return Ok(AddOutcome::AlreadyPresent {
                status: parse_status(&status)?,
            });
        };
        sqlx::query(
            "INSERT INTO events (occurred_at, kind, subscriber_id, source, detail) \
             VALUES ($1, 'subscribe', $2, $3, $4)",
        )
        .bind(at)
        .bind(id)
        .bind(source)
        .bind(Json(serde_json::json!({ "status": new.status.as_str() })))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(AddOutcome::Added { id })
    }

    pub(crate) async fn import_subscriber_batch(
        &self,
        rows: &[NewSubscriber],
        erasure: &ErasureKey,
        source: &str,
    ) -> Result<BatchOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let erased = find_erased_rows(&mut tx, rows, erasure).await?;
        let keep: Vec<&NewSubscriber> = if erased.is_empty() {
            rows.iter().collect()
        } else {
            let skip: std::collections::HashSet<usize> = erased.iter().copied().collect();
            rows.iter()
                .enumerate()
                .filter(|(i, _)| !skip.contains(i))
                .map(|(_, row)| row)
                .collect()
        };
        let inserted = super::bulk::insert_subscribers(&mut tx, &keep, now(), source).await?;
        tx.commit().await?;
        Ok(BatchOutcome { inserted, erased })
    }

    pub(crate) async fn record_import_run(
        &self,
        imported: u64,
        duplicates: u64,
        rejected: u64,
        source: &str,
    ) -> Result<(), StoreError> {
        let detail = serde_json::json!({
            "imported": imported,
            "duplicates": duplicates,
            "rejected": rejected,
        });
        sqlx::query(
            "INSERT INTO events (occurred_at, kind, source, detail) \
             VALUES ($1, 'import', $2, $3)",
        )
        .bind(now())
        .bind(source)
        .bind(Json(detail))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn find_subscriber_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Subscriber>, StoreError> {
        let row = sqlx::query(sql::SUBSCRIBER_BY_EMAIL)
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subscriber_from_row).transpose()
    }

    pub(crate) fn list_subscribers(
        &self,
        status: Option<SubscriberStatus>,
    ) -> impl Stream<Item = Result<Subscriber, StoreError>> + Send + '_ {
        let query = match status {
            Some(status) => sqlx::query(
                "SELECT id, email, name, status, attributes, created_at, confirmed_at, \
                 unsubscribed_at, consent_ip, consent_user_agent, source \
                 FROM subscribers WHERE status = $1 ORDER BY id",
            )
            .bind(status.as_str()),
            None => sqlx::query(
                "SELECT id, email, name, status, attributes, created_at, confirmed_at, \
                 unsubscribed_at, consent_ip, consent_user_agent, source \
                 FROM subscribers ORDER BY id",
            ),
        };
        query
            .fetch(&self.pool)
            .map(|row| subscriber_from_row(&row?))
    }

    pub(crate) fn export_subscriber_records(
        &self,
    ) -> impl Stream<Item = Result<SubscriberRecord, StoreError>> + Send + '_ {
        sqlx::query(sql::EXPORT_SUBSCRIBER_RECORDS)
            .fetch(&self.pool)
            .map(|row| {
                let row = row?;
                // Both backends' JSON printers differ in spacing and key order: one form.
                let events: String = row.try_get("events")?;
                let events: serde_json::Value = serde_json::from_str(&events)
                    .map_err(|e| StoreError::BadValue(format!("an event trail: {e}")))?;
                Ok(SubscriberRecord {
                    subscriber: subscriber_from_row(&row)?,
                    events: events.to_string(),
                })
            })
    }

    pub(crate) async fn count_subscribers_by_status(
        &self,
    ) -> Result<Vec<(SubscriberStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM subscribers GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let mut counts = rows
            .into_iter()
            .map(|(status, n)| Ok((parse_status(&status)?, n)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        counts.sort();
        Ok(counts)
    }

    pub(crate) async fn change_subscriber_status(
        &self,
        email: &EmailAddress,
        to: SubscriberStatus,
        source: &str,
    ) -> Result<StatusChange, StoreError> {
        let mut tx = self.begin_write().await?;
        let current: Option<(i64, String)> = sqlx::query_as(sql::ID_AND_STATUS_BY_EMAIL_FOR_UPDATE)
            .bind(email.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some((id, from)) = current else {
            return Ok(StatusChange::NotFound);
        };
        let from = parse_status(&from)?;
        if from == to {
            return Ok(StatusChange::Unchanged);
        }
        let request = Request {
            source,
            ip: None,
            user_agent: None,
            issue_id: None,
        };
        apply_status_change(&mut tx, id, from, to, &request).await?;
        tx.commit().await?;
        Ok(StatusChange::Changed { from })
    }

    pub(crate) async fn find_subscriber_by_id(
        &self,
        id: i64,
    ) -> Result<Option<Subscriber>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email, name, status, attributes, created_at, confirmed_at, \
             unsubscribed_at, consent_ip, consent_user_agent, source \
             FROM subscribers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(subscriber_from_row).transpose()
    }

    pub(crate) async fn unsubscribe_subscriber_by_id(
        &self,
        id: i64,
        issue_id: Option<i64>,
        source: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<StatusChange, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(from) = lock_status(&mut tx, id).await? else {
            return Ok(StatusChange::NotFound);
        };
        if from.is_opted_out() {
            return Ok(StatusChange::Unchanged);
        }
        let request = Request {
            source,
            ip,
            user_agent,
            issue_id,
        };
        apply_status_change(&mut tx, id, from, SubscriberStatus::Unsubscribed, &request).await?;
        tx.commit().await?;
        Ok(StatusChange::Changed { from })
    }

    pub(crate) async fn erase_subscriber(
        &self,
        email: &EmailAddress,
        hash: &AddressHash,
        source: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: Option<(i64, String)> = sqlx::query_as(sql::ID_AND_STATUS_BY_EMAIL_FOR_UPDATE)
            .bind(email.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let id = id.map(|(id, _)| id);
        let at = now();
        if let Some(id) = id {
            sqlx::query(
                "UPDATE events SET ip = NULL, user_agent = NULL, detail = $2 \
                 WHERE subscriber_id = $1",
            )
            .bind(id)
            .bind(Json(serde_json::json!({})))
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM subscribers WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO erased_addresses (address_hash, erased_at) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&hash[..])
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO events (occurred_at, kind, source) VALUES ($1, 'erase', $2)")
            .bind(at)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id.is_some())
    }

    pub(crate) async fn is_address_erased(&self, hash: &AddressHash) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        is_erased(&mut conn, hash).await
    }
}

async fn is_erased(conn: &mut Connection, hash: &AddressHash) -> Result<bool, StoreError> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM erased_addresses WHERE address_hash = $1)",
    )
    .bind(&hash[..])
    .fetch_one(conn)
    .await?;
    Ok(found)
}

/// Hashes per lookup of the erasure list.
const ERASED_LOOKUP_CHUNK: usize = 1_000;

/// Indices of `rows` whose address is on the erasure list. Skips the hashing entirely while
/// the list is empty.
async fn find_erased_rows(
    conn: &mut Connection,
    rows: &[NewSubscriber],
    erasure: &ErasureKey,
) -> Result<Vec<usize>, StoreError> {
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM erased_addresses)")
        .fetch_one(&mut *conn)
        .await?;
    if !any {
        return Ok(Vec::new());
    }
    let hashes: Vec<AddressHash> = rows.iter().map(|r| erasure.hash(&r.email)).collect();
    let mut found: std::collections::HashSet<AddressHash> = std::collections::HashSet::new();
    for chunk in hashes.chunks(ERASED_LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT address_hash FROM erased_addresses WHERE address_hash IN ({})",
            sql::placeholders(1, chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, Vec<u8>>(&sql);
        for hash in chunk {
            query = query.bind(&hash[..]);
        }
        for hash in query.fetch_all(&mut *conn).await? {
            if let Ok(hash) = AddressHash::try_from(hash.as_slice()) {
                found.insert(hash);
            }
        }
    }
    Ok(hashes
        .iter()
        .enumerate()
        .filter(|(_, h)| found.contains(*h))
        .map(|(i, _)| i)
        .collect())
}

/// The status of subscriber `id`, locking the row for the rest of the transaction (on
/// SQLite the write lock already serialises writers). `None` for an unknown subscriber.
pub(super) async fn lock_status(
    conn: &mut Connection,
    id: i64,
) -> Result<Option<SubscriberStatus>, StoreError> {
    let status: Option<String> = sqlx::query_scalar(sql::STATUS_BY_ID_FOR_UPDATE)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    status.as_deref().map(parse_status).transpose()
}

pub(super) fn subscriber_from_row(row: &Row) -> Result<Subscriber, StoreError> {
    let attributes: Json<serde_json::Map<String, serde_json::Value>> = row.try_get("attributes")?;
    Ok(Subscriber {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        status: parse_status(row.try_get("status")?)?,
        attributes: serde_json::Value::Object(attributes.0).to_string(),
        created_at: row.try_get("created_at")?,
        confirmed_at: row.try_get("confirmed_at")?,
        unsubscribed_at: row.try_get("unsubscribed_at")?,
        consent_ip: row.try_get("consent_ip")?,
        consent_user_agent: row.try_get("consent_user_agent")?,
        source: row.try_get("source")?,
    })
}

/// Who asked for a status change: the source, and for web requests the client's IP and
/// user agent (the consent record).
pub(super) struct Request<'a> {
    pub(super) source: &'a str,
    pub(super) ip: Option<&'a str>,
    pub(super) user_agent: Option<&'a str>,
    /// The issue the request came from (an issue's unsubscribe link).
    pub(super) issue_id: Option<i64>,
}

/// Moves subscriber `id` from `from` to `to` inside `tx`, with the matching time columns, and
/// appends the event (`unsubscribe`, `bounce`, `complain`, `confirm` or `status_change`).
pub(super) async fn apply_status_change(
    tx: &mut Connection,
    id: i64,
    from: SubscriberStatus,
    to: SubscriberStatus,
    request: &Request<'_>,
) -> Result<(), StoreError> {
    let at = now();
    let (confirmed_at, unsubscribed_at) = status_times(to, at);
    sqlx::query(
        "UPDATE subscribers SET status = $2, \
             confirmed_at = COALESCE($3, confirmed_at), \
             unsubscribed_at = CASE WHEN $2 IN ('unsubscribed', 'bounced', 'complained') \
                                    THEN $4 ELSE NULL END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(confirmed_at)
    .bind(unsubscribed_at)
    .execute(&mut *tx)
    .await?;
    let kind = match to {
        SubscriberStatus::Unsubscribed => "unsubscribe",
        SubscriberStatus::Bounced => "bounce",
        SubscriberStatus::Complained => "complain",
        SubscriberStatus::Active => "confirm",
        SubscriberStatus::Pending => "status_change",
    };
    sqlx::query(
        "INSERT INTO events (occurred_at, kind, subscriber_id, issue_id, ip, user_agent, source, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(at)
    .bind(kind)
    .bind(id)
    .bind(request.issue_id)
    .bind(request.ip)
    .bind(request.user_agent)
    .bind(request.source)
    .bind(Json(
        serde_json::json!({ "from": from.as_str(), "status": to.as_str() }),
    ))
    .execute(&mut *tx)
    .await?;
    Ok(())
}
