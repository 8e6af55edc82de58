//! Queries on `subscribers`, `erased_addresses` and the subscriber events in `events`.

use std::collections::HashSet;

use futures::{Stream, StreamExt};
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row, SqliteConnection};

use super::{now, Store, StoreError};
use crate::domain::{AddressHash, EmailAddress, ErasureKey, SubscriberName, SubscriberStatus};

/// Rows per multi-row `INSERT`: 8 bound values a row stay far under SQLite's limit of
/// 32,766 bound variables.
const INSERT_CHUNK_ROWS: usize = 1_000;
/// Hashes per `IN (...)` lookup of the erasure list.
const ERASED_LOOKUP_CHUNK: usize = 1_000;

/// A subscriber about to be stored.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub email: EmailAddress,
    pub name: Option<SubscriberName>,
    pub status: SubscriberStatus,
    /// Free-form attributes (from extra CSV columns), stored as a JSON object.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A stored subscriber: every column of `subscribers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub id: i64,
    /// As stored (see `EmailAddress`); case-insensitively unique.
    pub email: String,
    pub name: Option<String>,
    pub status: SubscriberStatus,
    /// A JSON object, as text.
    pub attributes: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub unsubscribed_at: Option<i64>,
    pub consent_ip: Option<String>,
    pub consent_user_agent: Option<String>,
    /// Where the subscriber came from: `cli`, `import`, `web`, ...
    pub source: String,
}

/// Everything held about one subscriber: the row and their event trail.
#[derive(Debug, Clone)]
pub struct SubscriberRecord {
    pub subscriber: Subscriber,
    /// A JSON array of `{at, kind, source, ip, user_agent, detail}`, oldest first.
    pub events: String,
}

/// What [`Store::add_subscriber`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added {
        id: i64,
    },
    /// The address (in any letter case) is already on the list; nothing changed.
    AlreadyPresent {
        status: SubscriberStatus,
    },
    /// The address was erased at its owner's request and is not added back.
    Erased,
}

/// What [`Store::import_subscriber_batch`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows inserted. The others were duplicates or erased.
    pub inserted: u64,
    /// Indices (into the batch) of rows whose address is on the erasure list.
    pub erased: Vec<usize>,
}

/// What [`Store::change_subscriber_status`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    NotFound,
    Unchanged,
    Changed { from: SubscriberStatus },
}

const SUBSCRIBER_COLUMNS: &str = "id, email, name, status, attributes, created_at, confirmed_at, \
     unsubscribed_at, consent_ip, consent_user_agent, source";

impl Store {
    /// Adds one subscriber, unless the address is already held (in any case) or was erased.
    /// A new subscriber gets a `subscribe` event.
    #[tracing::instrument(skip_all, fields(email = %new.email.masked()))]
    pub async fn add_subscriber(
        &self,
        new: &NewSubscriber,
        erased_hash: &AddressHash,
        source: &str,
    ) -> Result<AddOutcome, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        if is_erased(&mut tx, erased_hash).await? {
            return Ok(AddOutcome::Erased);
        }
        let at = now();
        let (confirmed_at, unsubscribed_at) = status_times(new.status, at);
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO subscribers \
                 (email, name, status, attributes, created_at, confirmed_at, unsubscribed_at, source) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(new.email.as_str())
        .bind(new.name.as_ref().map(SubscriberName::as_str))
        .bind(new.status.as_str())
        .bind(serde_json::Value::Object(new.attributes.clone()).to_string())
        .bind(at)
        .bind(confirmed_at)
        .bind(unsubscribed_at)
        .bind(source)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            let status: String =
                sqlx::query_scalar("SELECT status FROM subscribers WHERE email = ?1")
                    .bind(new.email.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            return Ok(AddOutcome::AlreadyPresent {
                status: parse_status(&status)?,
            });
        };
        sqlx::query(
            "INSERT INTO events (occurred_at, kind, subscriber_id, source, detail) \
             VALUES (?1, 'subscribe', ?2, ?3, json_object('status', ?4))",
        )
        .bind(at)
        .bind(id)
        .bind(source)
        .bind(new.status.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(AddOutcome::Added { id })
    }

    /// Inserts a batch of imported subscribers in one transaction, with multi-row `INSERT`s.
    ///
    /// Rows whose address is already held (in any letter case, including earlier rows of the
    /// same batch) are skipped, and existing subscribers are never modified, so an address
    /// that unsubscribed, bounced or complained stays that way. Rows on the erasure list are
    /// skipped and reported. Each inserted subscriber gets a `subscribe` event.
    #[tracing::instrument(skip_all, fields(rows = rows.len()))]
    pub async fn import_subscriber_batch(
        &self,
        rows: &[NewSubscriber],
        erasure: &ErasureKey,
        source: &str,
    ) -> Result<BatchOutcome, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let erased = find_erased_rows(&mut tx, rows, erasure).await?;
        let max_id_before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM subscribers")
            .fetch_one(&mut *tx)
            .await?;
        let at = now();
        let keep: Vec<&NewSubscriber> = if erased.is_empty() {
            rows.iter().collect()
        } else {
            let skip: HashSet<usize> = erased.iter().copied().collect();
            rows.iter()
                .enumerate()
                .filter(|(i, _)| !skip.contains(i))
                .map(|(_, row)| row)
                .collect()
        };
        let mut inserted = 0;
        for chunk in keep.chunks(INSERT_CHUNK_ROWS) {
            inserted += insert_subscriber_rows(&mut tx, chunk, at, source).await?;
        }
        if inserted > 0 {
            // Within this write transaction, every id above the old maximum is one of ours.
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
        tx.commit().await?;
        Ok(BatchOutcome { inserted, erased })
    }

    /// Appends the summary event of a finished import run.
    pub async fn record_import_run(
        &self,
        imported: u64,
        duplicates: u64,
        rejected: u64,
        source: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO events (occurred_at, kind, source, detail) VALUES (?1, 'import', ?2, \
             json_object('imported', ?3, 'duplicates', ?4, 'rejected', ?5))",
        )
        .bind(now())
        .bind(source)
        .bind(imported as i64)
        .bind(duplicates as i64)
        .bind(rejected as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The subscriber with this address, compared case-insensitively.
    pub async fn find_subscriber_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Subscriber>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE email = ?1"
        ))
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(subscriber_from_row).transpose()
    }

    /// Every subscriber, or those with one status, oldest first, as a stream.
    pub fn list_subscribers(
        &self,
        status: Option<SubscriberStatus>,
    ) -> impl Stream<Item = Result<Subscriber, StoreError>> + '_ {
        let query = match status {
            Some(status) => sqlx::query(
                "SELECT id, email, name, status, attributes, created_at, confirmed_at, \
                 unsubscribed_at, consent_ip, consent_user_agent, source \
                 FROM subscribers WHERE status = ?1 ORDER BY id",
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

    /// Everything held about every subscriber (row and event trail), oldest first, as a
    /// stream: what `export` writes.
    pub fn export_subscriber_records(
        &self,
    ) -> impl Stream<Item = Result<SubscriberRecord, StoreError>> + '_ {
        sqlx::query(
            "SELECT s.id, s.email, s.name, s.status, s.attributes, s.created_at, s.confirmed_at, \
                    s.unsubscribed_at, s.consent_ip, s.consent_user_agent, s.source, \
                    (SELECT json_group_array(json_object( \
                         'at', strftime('%Y-%m-%dT%H:%M:%SZ', e.occurred_at, 'unixepoch'), \
                         'kind', e.kind, 'source', e.source, \
                         'ip', e.ip, 'user_agent', e.user_agent, 'detail', json(e.detail))) \
                     FROM events e WHERE e.subscriber_id = s.id) AS events \
             FROM subscribers s ORDER BY s.id",
        )
        .fetch(&self.pool)
        .map(|row| {
            let row = row?;
            Ok(SubscriberRecord {
                subscriber: subscriber_from_row(&row)?,
                events: row.try_get("events")?,
            })
        })
    }

    /// How many subscribers have each status (statuses with none are left out).
    pub async fn count_subscribers_by_status(
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

    /// Moves a subscriber to status `to` and appends the matching event (`unsubscribe`,
    /// `bounce`, `complain`, `confirm` or `status_change`) with the previous status.
    #[tracing::instrument(skip_all, fields(email = %email.masked(), to = %to))]
    pub async fn change_subscriber_status(
        &self,
        email: &EmailAddress,
        to: SubscriberStatus,
        source: &str,
    ) -> Result<StatusChange, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<(i64, String)> =
            sqlx::query_as("SELECT id, status FROM subscribers WHERE email = ?1")
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
        };
        apply_status_change(&mut tx, id, from, to, &request).await?;
        tx.commit().await?;
        Ok(StatusChange::Changed { from })
    }

    /// The subscriber with this id.
    pub async fn find_subscriber_by_id(&self, id: i64) -> Result<Option<Subscriber>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(subscriber_from_row).transpose()
    }

    /// The subscriber's own request to stop (a web unsubscribe link): moves subscriber `id`
    /// to `unsubscribed` and appends an `unsubscribe` event carrying the request's IP and
    /// user agent. A subscriber already opted out (unsubscribed, bounced or complained) is
    /// left as is, so a repeat is a no-op.
    #[tracing::instrument(skip_all, fields(subscriber_id = id))]
    pub async fn unsubscribe_subscriber_by_id(
        &self,
        id: i64,
        source: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<StatusChange, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM subscribers WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(from) = current else {
            return Ok(StatusChange::NotFound);
        };
        let from = parse_status(&from)?;
        if from.is_opted_out() {
            return Ok(StatusChange::Unchanged);
        }
        let request = Request {
            source,
            ip,
            user_agent,
        };
        apply_status_change(&mut tx, id, from, SubscriberStatus::Unsubscribed, &request).await?;
        tx.commit().await?;
        Ok(StatusChange::Changed { from })
    }

    /// Erases a subscriber: deletes their row and deliveries, strips the IP, user agent and
    /// detail from their events (which stay, unlinked, as a count of what happened), records
    /// the keyed hash of the address so no import adds it back, and appends an `erase`
    /// event that names no one. Returns whether a subscriber was held; the hash is recorded
    /// either way.
    #[tracing::instrument(skip_all, fields(email = %email.masked()))]
    pub async fn erase_subscriber(
        &self,
        email: &EmailAddress,
        hash: &AddressHash,
        source: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM subscribers WHERE email = ?1")
            .bind(email.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let at = now();
        if let Some(id) = id {
            sqlx::query(
                "UPDATE events SET ip = NULL, user_agent = NULL, detail = '{}' \
                 WHERE subscriber_id = ?1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM subscribers WHERE id = ?1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO erased_addresses (address_hash, erased_at) VALUES (?1, ?2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&hash[..])
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO events (occurred_at, kind, source) VALUES (?1, 'erase', ?2)")
            .bind(at)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id.is_some())
    }

    /// Whether this address hash is on the erasure list.
    pub async fn is_address_erased(&self, hash: &AddressHash) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        is_erased(&mut conn, hash).await
    }
}

async fn is_erased(conn: &mut SqliteConnection, hash: &AddressHash) -> Result<bool, StoreError> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM erased_addresses WHERE address_hash = ?1)",
    )
    .bind(&hash[..])
    .fetch_one(conn)
    .await?;
    Ok(found)
}

/// Indices of `rows` whose address is on the erasure list. Skips the hashing entirely while
/// the list is empty.
async fn find_erased_rows(
    conn: &mut SqliteConnection,
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
    let mut found: HashSet<AddressHash> = HashSet::new();
    for chunk in hashes.chunks(ERASED_LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT address_hash FROM erased_addresses WHERE address_hash IN ({})",
            placeholders(chunk.len())
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

/// One multi-row `INSERT ... ON CONFLICT DO NOTHING`; returns the rows actually inserted.
async fn insert_subscriber_rows(
    conn: &mut SqliteConnection,
    rows: &[&NewSubscriber],
    at: i64,
    source: &str,
) -> Result<u64, StoreError> {
    // Anonymous `?` placeholders only: sqlx looks up each numbered parameter's name, which
    // SQLite finds by a linear scan, and that made large statements quadratic.
    const ROW: &str = "(?,?,?,?,?,?,?,?)";
    let mut sql = String::with_capacity(180 + rows.len() * (ROW.len() + 1));
    sql.push_str(
        "INSERT INTO subscribers \
         (email, name, status, attributes, confirmed_at, unsubscribed_at, created_at, source) \
         VALUES ",
    );
    for i in 0..rows.len() {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(ROW);
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
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
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

/// `?,?,...`, `n` of them (anonymous, see [`insert_subscriber_rows`]).
fn placeholders(n: usize) -> String {
    let mut s = "?,".repeat(n);
    s.pop();
    s
}

/// `(confirmed_at, unsubscribed_at)` for a subscriber entering `status` at `at`.
fn status_times(status: SubscriberStatus, at: i64) -> (Option<i64>, Option<i64>) {
    match status {
        SubscriberStatus::Active => (Some(at), None),
        SubscriberStatus::Pending => (None, None),
        _ => (None, Some(at)),
    }
}

pub(super) fn parse_status(s: &str) -> Result<SubscriberStatus, StoreError> {
    s.parse()
        .map_err(|e: crate::domain::StatusError| StoreError::BadValue(e.to_string()))
}

pub(super) fn subscriber_from_row(row: &SqliteRow) -> Result<Subscriber, StoreError> {
    Ok(Subscriber {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        status: parse_status(row.try_get("status")?)?,
        attributes: row.try_get("attributes")?,
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
}

/// Moves subscriber `id` from `from` to `to` inside `tx`, with the matching time columns, and
/// appends the event (`unsubscribe`, `bounce`, `complain`, `confirm` or `status_change`).
pub(super) async fn apply_status_change(
    tx: &mut sqlx::SqliteConnection,
    id: i64,
    from: SubscriberStatus,
    to: SubscriberStatus,
    request: &Request<'_>,
) -> Result<(), StoreError> {
    let at = now();
    let (confirmed_at, unsubscribed_at) = status_times(to, at);
    sqlx::query(
        "UPDATE subscribers SET status = ?2, \
             confirmed_at = COALESCE(?3, confirmed_at), \
             unsubscribed_at = CASE WHEN ?2 IN ('unsubscribed', 'bounced', 'complained') \
                                    THEN ?4 ELSE NULL END \
         WHERE id = ?1",
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
        "INSERT INTO events (occurred_at, kind, subscriber_id, ip, user_agent, source, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, json_object('from', ?7, 'status', ?8))",
    )
    .bind(at)
    .bind(kind)
    .bind(id)
    .bind(request.ip)
    .bind(request.user_agent)
    .bind(request.source)
    .bind(from.as_str())
    .bind(to.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
