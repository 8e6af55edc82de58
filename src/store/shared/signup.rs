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
                    issue_id: None,
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

/// Records a group of sign-ups. A group naming one address twice is recorded one sign-up
/// at a time, in order, so the second sees the first.
async fn record_group(
    tx: &mut Connection,
    signups: &[NewSignup],
    now: i64,
) -> Result<Vec<SignupOutcome>, StoreError> {
    let distinct: HashSet<String> = signups.iter().map(|s| s.email.folded()).collect();
    if distinct.len() == signups.len() {
        return record_distinct(tx, signups, now).await;
    }
    let mut outcomes = Vec::with_capacity(signups.len());
    for signup in signups {
        outcomes.extend(record_distinct(tx, std::slice::from_ref(signup), now).await?);
    }
    Ok(outcomes)
}

/// Records sign-ups of distinct addresses with the same statements, one multi-row statement
/// each, whatever the list already holds: a new address and a known one (pending, active,
/// unsubscribed, bounced or complained) cost the same writes and the same commit, so the
/// answer's timing does not tell who is on the list. Only an unsubscribed reader's return to
/// `pending` adds a statement of its own, and it leads to a confirmation mail, as a new
/// address's sign-up does.
async fn record_distinct(
    tx: &mut Connection,
    signups: &[NewSignup],
    now: i64,
) -> Result<Vec<SignupOutcome>, StoreError> {
    let folded: Vec<String> = signups.iter().map(|s| s.email.folded()).collect();
    // In address order: two groups (on two nodes) inserting some of the same addresses then
    // wait for each other in one order, never in a cycle.
    let mut order: Vec<usize> = (0..signups.len()).collect();
    order.sort_by(|&a, &b| folded[a].cmp(&folded[b]));

    let sql = format!(
        "INSERT INTO subscribers \
         (email, name, status, attributes, created_at, consent_ip, consent_user_agent, source) \
         VALUES {} ON CONFLICT DO NOTHING RETURNING email",
        sql::values("(?, ?, 'pending', '{}', ?, ?, ?, 'web')", signups.len())
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for &i in &order {
        let s = &signups[i];
        query = query
            .bind(s.email.as_str())
            .bind(s.name.as_ref().map(SubscriberName::as_str))
            .bind(now)
            .bind(s.ip.as_deref())
            .bind(s.user_agent.as_deref());
    }
    let inserted: HashSet<String> = query
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|email| email.to_ascii_lowercase())
        .collect();

    // Every row of the group, new or known, is written (and so locked: a sign-up for the
    // same address on another node waits for this one and then sees its confirmation mail,
    // so the ten-minute limit holds across nodes) and read back with its status.
    let sql = format!(
        "UPDATE subscribers SET status = status WHERE {} RETURNING id, email, status",
        sql::email_in(1, signups.len())
    );
    let mut query = sqlx::query_as::<_, (i64, String, String)>(&sql);
    for &i in &order {
        query = query.bind(signups[i].email.as_str());
    }
    let mut held: HashMap<String, (i64, SubscriberStatus)> = HashMap::new();
    for (id, email, status) in query.fetch_all(&mut *tx).await? {
        held.insert(email.to_ascii_lowercase(), (id, parse_status(&status)?));
    }

    // Who each sign-up is, and what it found.
    let mut rows: Vec<(i64, Option<SubscriberStatus>)> = Vec::with_capacity(signups.len());
    for (signup, key) in signups.iter().zip(&folded) {
        let &(id, status) = held.get(key).ok_or_else(|| {
            StoreError::BadValue(format!("the sign-up of {key} left no subscriber row"))
        })?;
        let from = (!inserted.contains(key)).then_some(status);
        if from == Some(SubscriberStatus::Unsubscribed) {
            sqlx::query(
                "UPDATE subscribers SET status = 'pending', unsubscribed_at = NULL, \
                     name = COALESCE(name, $2), consent_ip = $3, consent_user_agent = $4 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(signup.name.as_ref().map(SubscriberName::as_str))
            .bind(signup.ip.as_deref())
            .bind(signup.user_agent.as_deref())
            .execute(&mut *tx)
            .await?;
        }
        rows.push((id, from));
    }

    // The ten-minute limit: subscribers of the group sent a confirmation a moment ago.
    let sql = format!(
        "SELECT DISTINCT subscriber_id FROM notices \
         WHERE subscriber_id IN ({}) AND kind = 'confirm' \
           AND status IN ('queued', 'sending', 'sent', 'retry', 'failed') AND queued_at > {}",
        sql::placeholders(1, rows.len()),
        sql::placeholders(rows.len() + 1, 1)
    );
    let mut query = sqlx::query_scalar::<_, i64>(&sql);
    for (id, _) in &rows {
        query = query.bind(*id);
    }
    let query = query.bind(now - CONFIRM_RESEND_SECONDS);
    let recent: HashSet<i64> = query.fetch_all(&mut *tx).await?.into_iter().collect();

    let sql = format!(
        "INSERT INTO events (occurred_at, kind, subscriber_id, ip, user_agent, source, detail) \
         VALUES {}",
        sql::values("(?, 'subscribe', ?, ?, ?, 'web', ?)", rows.len())
    );
    let mut events = sqlx::query(&sql);
    let sql = format!(
        "INSERT INTO notices (subscriber_id, kind, status, queued_at, next_attempt_at) VALUES {}",
        sql::values("(?, 'confirm', ?, ?, ?)", rows.len())
    );
    let mut notices = sqlx::query(&sql);
    let mut outcomes = Vec::with_capacity(rows.len());
    for (signup, &(id, from)) in signups.iter().zip(&rows) {
        let active = from == Some(SubscriberStatus::Active);
        let (after, outcome) = if active {
            (SubscriberStatus::Active, SignupOutcome::Ignored)
        } else if recent.contains(&id) {
            (
                SubscriberStatus::Pending,
                SignupOutcome::Throttled { subscriber_id: id },
            )
        } else {
            (
                SubscriberStatus::Pending,
                SignupOutcome::Queued { subscriber_id: id },
            )
        };
        // A confirmation not sent (the address is subscribed, or was sent one a moment ago)
        // is recorded as `skipped`, never claimed by the notice worker.
        let notice = match outcome {
            SignupOutcome::Queued { .. } => "queued",
            _ => "skipped",
        };
        events = events
            .bind(now)
            .bind(id)
            .bind(signup.ip.as_deref())
            .bind(signup.user_agent.as_deref())
            .bind(consent_detail(signup, from, after));
        notices = notices.bind(id).bind(notice).bind(now).bind(now);
        outcomes.push(outcome);
    }
    events.execute(&mut *tx).await?;
    notices.execute(&mut *tx).await?;
    Ok(outcomes)
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
