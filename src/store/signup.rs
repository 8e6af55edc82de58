//! Queries of the sign-up flow: recording sign-ups (pending subscriber, consent event and
//! confirmation notice together), confirming, and resubscribing from an unsubscribe link.

use std::collections::{HashMap, HashSet};

use sqlx::{Connection, SqliteConnection};

use super::subscribers::{apply_status_change, parse_status, Request};
use super::{Store, StoreError};
use crate::domain::{EmailAddress, SubscriberName, SubscriberStatus};

/// How long after a confirmation mail was queued for an address no other one is queued.
pub const CONFIRM_RESEND_SECONDS: i64 = 10 * 60;

/// Sign-ups per multi-row statement: 9 bound values a row stay far under SQLite's limit of
/// 32,766 bound variables.
const GROUP_CHUNK: usize = 500;

/// One sign-up from the web form or the JSON API, parsed.
#[derive(Debug, Clone)]
pub struct NewSignup {
    pub email: EmailAddress,
    pub name: Option<SubscriberName>,
    /// The consent wording the reader saw (`newsletter.consent`).
    pub consent: String,
    /// The client's IP and user agent: the consent record.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `form` or `json`.
    pub via: &'static str,
}

/// What [`Store::record_signups`] did with one sign-up. Never shown to the client: the
/// answer is the same whatever happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupOutcome {
    /// A new or re-consenting subscriber, now `pending`, with a confirmation mail queued.
    Queued { subscriber_id: i64 },
    /// Still `pending` and a confirmation mail was queued less than ten minutes ago: the
    /// consent is recorded, no other mail is queued.
    Throttled { subscriber_id: i64 },
    /// Already `active`, or `bounced` or `complained`: nothing is stored.
    Ignored,
}

/// What [`Store::confirm_subscriber`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// `pending` became `active` (and the welcome mail was queued when asked).
    Confirmed,
    /// Already `active`: nothing changed.
    AlreadyActive,
    /// Not pending (unsubscribed, bounced or complained since): nothing changed.
    NotPending(SubscriberStatus),
    /// No such subscriber (erased).
    NotFound,
}

impl Store {
    /// Records a group of sign-ups in ONE transaction (one fsync for the group): for each,
    /// the subscriber (new ones `pending`), a `subscribe` event with the IP, user agent and
    /// form values (the consent record), and a queued confirmation notice, unless one was
    /// queued for that address in the last [`CONFIRM_RESEND_SECONDS`].
    ///
    /// - a new address becomes `pending`, with a confirmation mail;
    /// - a `pending` one gets the consent event, and a mail unless one is recent;
    /// - an `unsubscribed` one goes back to `pending` (a new opt-in that must be confirmed
    ///   again before any issue is sent), with a mail unless one is recent;
    /// - an `active`, `bounced` or `complained` one is left exactly as it is.
    #[tracing::instrument(skip_all, fields(signups = signups.len()))]
    pub async fn record_signups(
        &self,
        signups: &[NewSignup],
        now: i64,
    ) -> Result<Vec<SignupOutcome>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut outcomes = Vec::with_capacity(signups.len());
        for chunk in signups.chunks(GROUP_CHUNK) {
            outcomes.extend(record_group(&mut tx, chunk, now).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Confirms subscriber `id` (double opt-in): `pending` becomes `active`, with a
    /// `confirm` event carrying the request's IP and user agent, and, when `welcome` is set,
    /// a queued welcome notice, all in one transaction. Any other status is left alone.
    #[tracing::instrument(skip_all, fields(subscriber_id = id))]
    pub async fn confirm_subscriber(
        &self,
        id: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
        welcome: bool,
        now: i64,
    ) -> Result<ConfirmOutcome, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM subscribers WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(status) = status else {
            return Ok(ConfirmOutcome::NotFound);
        };
        let outcome = match parse_status(&status)? {
            SubscriberStatus::Pending => {
                let request = Request {
                    source: "web",
                    ip,
                    user_agent,
                };
                apply_status_change(
                    &mut tx,
                    id,
                    SubscriberStatus::Pending,
                    SubscriberStatus::Active,
                    &request,
                )
                .await?;
                if welcome {
                    queue_notice(&mut tx, id, "welcome", now).await?;
                }
                ConfirmOutcome::Confirmed
            }
            SubscriberStatus::Active => ConfirmOutcome::AlreadyActive,
            other => ConfirmOutcome::NotPending(other),
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// The reader's own request, from the page after unsubscribing, to receive the
    /// newsletter again: `unsubscribed` becomes `active` (the signed link proves the address
    /// is theirs, and they had confirmed it before), with a `subscribe` event carrying the
    /// IP and user agent. Any other status is left alone and reported as it is.
    #[tracing::instrument(skip_all, fields(subscriber_id = id))]
    pub async fn resubscribe_subscriber(
        &self,
        id: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
        now: i64,
    ) -> Result<Option<SubscriberStatus>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM subscribers WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(status) = status else {
            return Ok(None);
        };
        let status = parse_status(&status)?;
        if status != SubscriberStatus::Unsubscribed {
            return Ok(Some(status));
        }
        sqlx::query(
            "UPDATE subscribers SET status = 'active', unsubscribed_at = NULL, \
                 confirmed_at = COALESCE(confirmed_at, ?2) \
             WHERE id = ?1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO events (occurred_at, kind, subscriber_id, ip, user_agent, source, detail) \
             VALUES (?1, 'subscribe', ?2, ?3, ?4, 'web', \
                     json_object('from', 'unsubscribed', 'status', 'active', 'via', 'resubscribe'))",
        )
        .bind(now)
        .bind(id)
        .bind(ip)
        .bind(user_agent)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(SubscriberStatus::Active))
    }
}

/// Records a group with one multi-row statement per table for the new addresses (the
/// common case, and the one a burst of sign-ups is made of), and the statement-per-row path
/// of [`record_one`] for addresses already held. A group naming one address twice takes the
/// per-row path throughout, so the second sign-up sees the first.
async fn record_group(
    tx: &mut SqliteConnection,
    signups: &[NewSignup],
    now: i64,
) -> Result<Vec<SignupOutcome>, StoreError> {
    let folded: Vec<String> = signups.iter().map(|s| s.email.folded()).collect();
    let distinct: HashSet<&str> = folded.iter().map(String::as_str).collect();
    if distinct.len() < signups.len() {
        let mut outcomes = Vec::with_capacity(signups.len());
        for signup in signups {
            outcomes.push(record_one(tx, signup, now).await?);
        }
        return Ok(outcomes);
    }

    // Anonymous `?` placeholders: see `insert_subscriber_rows` in subscribers.rs.
    let mut sql = String::from(
        "INSERT INTO subscribers \
         (email, name, status, attributes, created_at, consent_ip, consent_user_agent, source) \
         VALUES ",
    );
    push_rows(
        &mut sql,
        "(?, ?, 'pending', '{}', ?, ?, ?, 'web')",
        signups.len(),
    );
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING id, email");
    let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
    for s in signups {
        query = query
            .bind(s.email.as_str())
            .bind(s.name.as_ref().map(SubscriberName::as_str))
            .bind(now)
            .bind(s.ip.as_deref())
            .bind(s.user_agent.as_deref());
    }
    let inserted: HashMap<String, i64> = query
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(id, email)| (email.to_ascii_lowercase(), id))
        .collect();

    let mut outcomes = Vec::with_capacity(signups.len());
    let mut new: Vec<(&NewSignup, i64)> = Vec::with_capacity(inserted.len());
    for (signup, key) in signups.iter().zip(&folded) {
        match inserted.get(key) {
            Some(&id) => {
                new.push((signup, id));
                outcomes.push(SignupOutcome::Queued { subscriber_id: id });
            }
            None => outcomes.push(record_one(tx, signup, now).await?),
        }
    }
    if new.is_empty() {
        return Ok(outcomes);
    }

    let mut sql = String::from(
        "INSERT INTO events (occurred_at, kind, subscriber_id, ip, user_agent, source, detail) \
         VALUES ",
    );
    push_rows(
        &mut sql,
        "(?, 'subscribe', ?, ?, ?, 'web', json_object('status', 'pending', 'from', NULL, \
         'via', ?, 'email', ?, 'name', ?, 'consent', ?))",
        new.len(),
    );
    let mut query = sqlx::query(&sql);
    for (s, id) in &new {
        query = query
            .bind(now)
            .bind(*id)
            .bind(s.ip.as_deref())
            .bind(s.user_agent.as_deref())
            .bind(s.via)
            .bind(s.email.as_str())
            .bind(s.name.as_ref().map(SubscriberName::as_str))
            .bind(&s.consent);
    }
    query.execute(&mut *tx).await?;

    let mut sql = String::from(
        "INSERT INTO notices (subscriber_id, kind, queued_at, next_attempt_at) VALUES ",
    );
    push_rows(&mut sql, "(?, 'confirm', ?, ?)", new.len());
    let mut query = sqlx::query(&sql);
    for (_, id) in &new {
        query = query.bind(*id).bind(now).bind(now);
    }
    query.execute(&mut *tx).await?;
    Ok(outcomes)
}

/// Appends `row` `n` times, separated by commas.
fn push_rows(sql: &mut String, row: &str, n: usize) {
    sql.reserve(n * (row.len() + 1));
    for i in 0..n {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(row);
    }
}

async fn record_one(
    tx: &mut SqliteConnection,
    signup: &NewSignup,
    now: i64,
) -> Result<SignupOutcome, StoreError> {
    let name = signup.name.as_ref().map(SubscriberName::as_str);
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO subscribers \
             (email, name, status, attributes, created_at, consent_ip, consent_user_agent, source) \
         VALUES (?1, ?2, 'pending', '{}', ?3, ?4, ?5, 'web') \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(signup.email.as_str())
    .bind(name)
    .bind(now)
    .bind(signup.ip.as_deref())
    .bind(signup.user_agent.as_deref())
    .fetch_optional(&mut *tx)
    .await?;
    let (id, from) = match inserted {
        Some(id) => (id, None),
        None => {
            let (id, status): (i64, String) =
                sqlx::query_as("SELECT id, status FROM subscribers WHERE email = ?1")
                    .bind(signup.email.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            match parse_status(&status)? {
                SubscriberStatus::Pending => (id, Some(SubscriberStatus::Pending)),
                SubscriberStatus::Unsubscribed => {
                    sqlx::query(
                        "UPDATE subscribers SET status = 'pending', unsubscribed_at = NULL, \
                             name = COALESCE(name, ?2), consent_ip = ?3, consent_user_agent = ?4 \
                         WHERE id = ?1",
                    )
                    .bind(id)
                    .bind(name)
                    .bind(signup.ip.as_deref())
                    .bind(signup.user_agent.as_deref())
                    .execute(&mut *tx)
                    .await?;
                    (id, Some(SubscriberStatus::Unsubscribed))
                }
                _ => return Ok(SignupOutcome::Ignored),
            }
        }
    };
    sqlx::query(
        "INSERT INTO events (occurred_at, kind, subscriber_id, ip, user_agent, source, detail) \
         VALUES (?1, 'subscribe', ?2, ?3, ?4, 'web', json_object('status', 'pending', \
                 'from', ?5, 'via', ?6, 'email', ?7, 'name', ?8, 'consent', ?9))",
    )
    .bind(now)
    .bind(id)
    .bind(signup.ip.as_deref())
    .bind(signup.user_agent.as_deref())
    .bind(from.map(SubscriberStatus::as_str))
    .bind(signup.via)
    .bind(signup.email.as_str())
    .bind(name)
    .bind(&signup.consent)
    .execute(&mut *tx)
    .await?;
    if from.is_some() {
        let recent: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM notices \
             WHERE subscriber_id = ?1 AND kind = 'confirm' AND queued_at > ?2)",
        )
        .bind(id)
        .bind(now - CONFIRM_RESEND_SECONDS)
        .fetch_one(&mut *tx)
        .await?;
        if recent {
            return Ok(SignupOutcome::Throttled { subscriber_id: id });
        }
    }
    queue_notice(tx, id, "confirm", now).await?;
    Ok(SignupOutcome::Queued { subscriber_id: id })
}

/// Queues a notice of `kind` for subscriber `id`, due at once.
async fn queue_notice(
    tx: &mut SqliteConnection,
    id: i64,
    kind: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notices (subscriber_id, kind, queued_at, next_attempt_at) \
         VALUES (?1, ?2, ?3, ?3)",
    )
    .bind(id)
    .bind(kind)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
