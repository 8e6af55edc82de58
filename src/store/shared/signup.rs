//! Queries of the sign-up flow: recording sign-ups (pending subscriber, consent event and
//! confirmation notice together) and confirming.
//!
//! Compiled once per backend (see `store/mod.rs`).

use std::collections::{HashMap, HashSet};

use sqlx::types::Json;

use super::subscribers::{apply_status_change, lock_status, Request};
use super::{sql, Backend, Connection};
use crate::domain::{SubscriberName, SubscriberStatus};
use crate::store::{
    parse_status, ConfirmOutcome, NewSignup, SignupOutcome, StoreError, CONFIRM_RESEND_SECONDS,
};

/// Sign-ups per multi-row statement: 8 bound values a row stay far under both backends'
/// limits on bound values (SQLite 32,766, PostgreSQL 65,535).
const GROUP_CHUNK: usize = 500;

impl Backend {
    pub(crate) async fn record_signups(
        &self,
        signups: &[NewSignup],
        now: i64,
    ) -> Result<Vec<SignupOutcome>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(signups.len());
        for chunk in signups.chunks(GROUP_CHUNK) {
            outcomes.extend(record_group(&mut tx, chunk, now).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    pub(crate) async fn confirm_subscriber(
        &self,
        id: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
        welcome: bool,
        now: i64,
    ) -> Result<ConfirmOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(status) = lock_status(&mut tx, id).await? else {
            return Ok(ConfirmOutcome::NotFound);
        };
        // A bounced or complained subscriber comes back only through their own new opt-in:
        // a sign-up made after they left, confirmed from their mailbox.
        let opted_in_again = match status {
            SubscriberStatus::Bounced | SubscriberStatus::Complained => {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM events e JOIN subscribers s ON s.id = e.subscriber_id                      WHERE e.subscriber_id = $1 AND e.kind = 'subscribe'                        AND e.occurred_at >= COALESCE(s.unsubscribed_at, 0))",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
            }
            _ => false,
        };
        let outcome = match status {
            SubscriberStatus::Pending
            | SubscriberStatus::Bounced
            | SubscriberStatus::Complained
                if status == SubscriberStatus::Pending || opted_in_again =>
            {
                let request = Request {
                    source: "web",
                    ip,
                    user_agent,
                };
                apply_status_change(&mut tx, id, status, SubscriberStatus::Active, &request)
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
}

/// The consent record of one sign-up: what the `subscribe` event's detail holds. `status`
/// is the subscriber's status after it (`pending`, or the unchanged `active` of a reader who
/// signed up again).
fn consent_detail(
    signup: &NewSignup,
    from: Option<SubscriberStatus>,
    status: SubscriberStatus,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": status.as_str(),
        "from": from.map(SubscriberStatus::as_str),
        "via": signup.via,
        "email": signup.email.as_str(),
        "name": signup.name.as_ref().map(SubscriberName::as_str),
        "consent": signup.consent,
    }))
}

/// Records a group with one multi-row statement per table for the new addresses (the
/// common case, and the one a burst of sign-ups is made of), and the statement-per-row path
/// of [`record_one`] for addresses already held. A group naming one address twice takes the
/// per-row path throughout, so the second sign-up sees the first.
async fn record_group(
    tx: &mut Connection,
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

    // In address order: two groups (on two nodes) inserting some of the same addresses then
    // wait for each other in one order, never in a cycle.
    let mut order: Vec<usize> = (0..signups.len()).collect();
    order.sort_by(|&a, &b| folded[a].cmp(&folded[b]));
    let sql = format!(
        "INSERT INTO subscribers \
         (email, name, status, attributes, created_at, consent_ip, consent_user_agent, source) \
         VALUES {} ON CONFLICT DO NOTHING RETURNING id, email",
        sql::values("(?, ?, 'pending', '{}', ?, ?, ?, 'web')", signups.len())
    );
    let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
    for &i in &order {
        let s = &signups[i];
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

    let sql = format!(
        "INSERT INTO events (occurred_at, kind, subscriber_id, ip, user_agent, source, detail) \
         VALUES {}",
        sql::values("(?, 'subscribe', ?, ?, ?, 'web', ?)", new.len())
    );
    let mut query = sqlx::query(&sql);
    for (s, id) in &new {
        query = query
            .bind(now)
            .bind(*id)
            .bind(s.ip.as_deref())
            .bind(s.user_agent.as_deref())
            .bind(consent_detail(s, None, SubscriberStatus::Pending));
    }
    query.execute(&mut *tx).await?;

    let sql = format!(
        "INSERT INTO notices (subscriber_id, kind, queued_at, next_attempt_at) VALUES {}",
        sql::values("(?, 'confirm', ?, ?)", new.len())
    );
    let mut query = sqlx::query(&sql);
    for (_, id) in &new {
        query = query.bind(*id).bind(now).bind(now);
    }
    query.execute(&mut *tx).await?;
    Ok(outcomes)
}

async fn record_one(
    tx: &mut Connection,
    signup: &NewSignup,
    now: i64,
) -> Result<SignupOutcome, StoreError> {
    let name = signup.name.as_ref().map(SubscriberName::as_str);
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO subscribers \
             (email, name, status, attributes, created_at, consent_ip, consent_user_agent, source) \
         VALUES ($1, $2, 'pending', '{}', $3, $4, $5, 'web') \
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
            // The row is written whatever its status (as a new address's is), and so
            // locked: a sign-up for the same address on another node waits for this one
            // and then sees its confirmation mail, so the ten-minute limit holds across
            // nodes. A pending, active, bounced or complained address keeps its status (a
            // bounced or complained one comes back only by confirming, its own new double
            // opt-in).
            let (id, status): (i64, String) = sqlx::query_as(
                "UPDATE subscribers SET status = status WHERE email = $1 RETURNING id, status",
            )
            .bind(signup.email.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let status = parse_status(&status)?;
            if status == SubscriberStatus::Unsubscribed {
                sqlx::query(
                    "UPDATE subscribers SET status = 'pending', unsubscribed_at = NULL, \
                         name = COALESCE(name, $2), consent_ip = $3, consent_user_agent = $4 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(name)
                .bind(signup.ip.as_deref())
                .bind(signup.user_agent.as_deref())
                .execute(&mut *tx)
                .await?;
            }
            (id, Some(status))
        }
    };
    // Every path from here writes the same rows (the consent event and a notice row) in the
    // same commit, so the answer takes as long whatever was known about the address: its
    // timing does not tell who is on the list.
    let active = from == Some(SubscriberStatus::Active);
    let after = if active {
        SubscriberStatus::Active
    } else {
        SubscriberStatus::Pending
    };
    record_consent(tx, id, signup, from, after, now).await?;
    let recent: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM notices \
         WHERE subscriber_id = $1 AND kind = 'confirm' \
           AND status IN ('queued', 'sending', 'sent', 'retry', 'failed') AND queued_at > $2)",
    )
    .bind(id)
    .bind(now - CONFIRM_RESEND_SECONDS)
    .fetch_one(&mut *tx)
    .await?;
    if active || recent {
        // A confirmation not sent (the address is subscribed, or was sent one a moment
        // ago): recorded as `skipped`, never claimed by the notice worker.
        insert_notice(tx, id, "confirm", "skipped", now).await?;
        return Ok(if active {
            SignupOutcome::Ignored
        } else {
            SignupOutcome::Throttled { subscriber_id: id }
        });
    }
    insert_notice(tx, id, "confirm", "queued", now).await?;
    Ok(SignupOutcome::Queued { subscriber_id: id })
}

/// Appends the `subscribe` event of one sign-up: the consent record, with the request's IP
/// and user agent, the status it found (`from`) and the status it leaves (`status`).
async fn record_consent(
    tx: &mut Connection,
    id: i64,
    signup: &NewSignup,
    from: Option<SubscriberStatus>,
    status: SubscriberStatus,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (occurred_at, kind, subscriber_id, ip, user_agent, source, detail) \
         VALUES ($1, 'subscribe', $2, $3, $4, 'web', $5)",
    )
    .bind(now)
    .bind(id)
    .bind(signup.ip.as_deref())
    .bind(signup.user_agent.as_deref())
    .bind(consent_detail(signup, from, status))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Queues a notice of `kind` for subscriber `id`, due at once.
async fn queue_notice(
    tx: &mut Connection,
    id: i64,
    kind: &str,
    now: i64,
) -> Result<(), StoreError> {
    insert_notice(tx, id, kind, "queued", now).await
}

/// Inserts a notice row of `kind` for subscriber `id` with `status` (`queued`: due at once;
/// `skipped`: a record of a mail not sent).
async fn insert_notice(
    tx: &mut Connection,
    id: i64,
    kind: &str,
    status: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notices (subscriber_id, kind, status, queued_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id)
    .bind(kind)
    .bind(status)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
