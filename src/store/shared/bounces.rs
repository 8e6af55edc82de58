//! Queries on `bounces`, and the bounce policy's status changes (see `store/bounces.rs`).
//!
//! Compiled once per backend (see `store/mod.rs`): `Backend`, `Connection`, `Row` and `sql`
//! are that backend's.

use sqlx::types::Json;
use sqlx::Row as _;

use super::subscribers::lock_status;
use super::{Backend, Connection, Row};
use crate::domain::SubscriberStatus;
use crate::store::{
    AppliedReport, BounceCounts, BounceRow, Effect, NewBounce, NewReport, Reactivation, StoreError,
};

const BOUNCE_COLUMNS: &str = "b.id, b.received_at, b.channel, b.kind, i.slug AS issue_slug, \
     b.subscriber_id, s.email, b.status, b.reply, b.diagnostic, b.hard, b.reason, \
     b.feedback_type, b.effect";

impl Backend {
    pub(crate) async fn apply_report(
        &self,
        report: &NewReport,
    ) -> Result<AppliedReport, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut effects = Vec::with_capacity(report.recipients.len());
        let mut duplicate = false;
        for (index, recipient) in report.recipients.iter().enumerate() {
            let inserted = sqlx::query(
                "INSERT INTO bounces (report_hash, recipient_index, received_at, channel, kind, \
                     issue_id, subscriber_id, status, reply, diagnostic, hard, reason, \
                     feedback_type, effect) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'recorded') \
                 ON CONFLICT (report_hash, recipient_index) DO NOTHING",
            )
            .bind(&report.report_hash)
            .bind(index as i64)
            .bind(report.received_at)
            .bind(report.channel)
            .bind(report.kind)
            .bind(recipient.issue_id)
            .bind(recipient.subscriber_id)
            .bind(recipient.status.as_deref())
            .bind(recipient.reply.map(i64::from))
            .bind(truncate(&recipient.diagnostic, 1000))
            .bind(i64::from(recipient.hard))
            .bind(&recipient.reason)
            .bind(report.feedback_type.as_deref())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                duplicate = true;
                effects.push(Effect::Recorded);
                continue;
            }
            let effect = match recipient.subscriber_id {
                Some(sid) => {
                    apply_policy(
                        &mut tx,
                        sid,
                        report.kind,
                        recipient.hard,
                        report.soft_limit,
                        report.received_at,
                        report.channel,
                        recipient,
                    )
                    .await?
                }
                None => Effect::Recorded,
            };
            if effect != Effect::Recorded {
                sqlx::query(
                    "UPDATE bounces SET effect = $1 WHERE report_hash = $2 AND recipient_index = $3",
                )
                .bind(effect.as_str())
                .bind(&report.report_hash)
                .bind(index as i64)
                .execute(&mut *tx)
                .await?;
            }
            let detail = serde_json::json!({
                "report": report.kind,
                "channel": report.channel,
                "status": recipient.status,
                "reply": recipient.reply,
                "hard": recipient.hard,
                "reason": recipient.reason,
                "feedback_type": report.feedback_type,
                "effect": effect.as_str(),
            });
            sqlx::query(
                "INSERT INTO events (occurred_at, kind, subscriber_id, issue_id, source, detail) \
                 VALUES ($1, 'report', $2, $3, $4, $5)",
            )
            .bind(report.received_at)
            .bind(recipient.subscriber_id)
            .bind(recipient.issue_id)
            .bind(report.channel)
            .bind(Json(detail))
            .execute(&mut *tx)
            .await?;
            effects.push(effect);
        }
        tx.commit().await?;
        Ok(AppliedReport { duplicate, effects })
    }

    pub(crate) async fn find_delivery_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT issue_id, subscriber_id FROM deliveries WHERE message_id = $1 LIMIT 1",
        )
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub(crate) async fn delivery_exists(
        &self,
        issue_id: i64,
        subscriber_id: i64,
    ) -> Result<bool, StoreError> {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE issue_id = $1 AND subscriber_id = $2)",
        )
        .bind(issue_id)
        .bind(subscriber_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(found)
    }

    pub(crate) async fn latest_delivered_issue(
        &self,
        subscriber_id: i64,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT issue_id FROM deliveries \
             WHERE subscriber_id = $1 AND status IN ('sent', 'failed') \
             ORDER BY issue_id DESC LIMIT 1",
        )
        .bind(subscriber_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub(crate) async fn issue_slug(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT slug FROM issues WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub(crate) async fn bounce_counts(&self, issue_id: i64) -> Result<BounceCounts, StoreError> {
        let row = sqlx::query(
            "SELECT \
               COUNT(DISTINCT CASE WHEN kind = 'bounce' AND hard = 1 THEN subscriber_id END) AS hard, \
               COUNT(DISTINCT CASE WHEN kind = 'bounce' THEN subscriber_id END) AS any_bounce, \
               COUNT(DISTINCT CASE WHEN kind = 'complaint' THEN subscriber_id END) AS complaints, \
               COUNT(DISTINCT CASE WHEN kind = 'delay' THEN subscriber_id END) AS delays, \
               COUNT(DISTINCT CASE WHEN kind = 'auto-reply' THEN subscriber_id END) AS auto_replies \
             FROM bounces WHERE issue_id = $1",
        )
        .bind(issue_id)
        .fetch_one(&self.pool)
        .await?;
        let get = |name: &str| -> Result<u64, StoreError> {
            let n: i64 = row.try_get(name)?;
            Ok(n.max(0) as u64)
        };
        let hard = get("hard")?;
        Ok(BounceCounts {
            hard,
            soft: get("any_bounce")?.saturating_sub(hard),
            complaints: get("complaints")?,
            delays: get("delays")?,
            auto_replies: get("auto_replies")?,
        })
    }

    pub(crate) async fn subscriber_bounces(
        &self,
        subscriber_id: i64,
        limit: u32,
    ) -> Result<Vec<BounceRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {BOUNCE_COLUMNS} FROM bounces b \
             LEFT JOIN issues i ON i.id = b.issue_id \
             LEFT JOIN subscribers s ON s.id = b.subscriber_id \
             WHERE b.subscriber_id = $1 ORDER BY b.received_at DESC, b.id DESC LIMIT $2"
        ))
        .bind(subscriber_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(bounce_from_row).collect()
    }

    pub(crate) async fn recent_bounces(&self, limit: u32) -> Result<Vec<BounceRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {BOUNCE_COLUMNS} FROM bounces b \
             LEFT JOIN issues i ON i.id = b.issue_id \
             LEFT JOIN subscribers s ON s.id = b.subscriber_id \
             WHERE b.kind <> 'none' ORDER BY b.received_at DESC, b.id DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(bounce_from_row).collect()
    }

    pub(crate) async fn apply_soft_limit(
        &self,
        issue_id: i64,
        soft_limit: u32,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let candidates: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT b.subscriber_id FROM bounces b \
             JOIN subscribers s ON s.id = b.subscriber_id \
             WHERE b.issue_id = $1 AND b.kind = 'bounce' AND b.effect = 'counted' \
               AND s.status IN ('active', 'pending')",
        )
        .bind(issue_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut bounced = 0;
        for sid in candidates {
            if soft_streak_reached(&mut tx, sid, soft_limit).await? {
                let detail = serde_json::json!({
                    "reason": format!("soft bounces on {soft_limit} consecutive issues"),
                });
                if set_status(
                    &mut tx,
                    sid,
                    SubscriberStatus::Bounced,
                    Some(issue_id),
                    "session",
                    detail,
                    now,
                )
                .await?
                {
                    bounced += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(bounced)
    }

    pub(crate) async fn reactivate_subscriber(
        &self,
        id: i64,
        source: &str,
        now: i64,
    ) -> Result<Reactivation, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(from) = lock_status(&mut tx, id).await? else {
            return Ok(Reactivation::NotFound);
        };
        if from != SubscriberStatus::Bounced {
            return Ok(Reactivation::NotBounced(from));
        }
        sqlx::query(
            "UPDATE subscribers SET status = 'active', unsubscribed_at = NULL WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO events (occurred_at, kind, subscriber_id, source, detail) \
             VALUES ($1, 'status_change', $2, $3, $4)",
        )
        .bind(now)
        .bind(id)
        .bind(source)
        .bind(Json(serde_json::json!({
            "from": "bounced",
            "status": "active",
            "reason": "reactivated by an editor",
        })))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Reactivation::Reactivated)
    }
}

/// The policy for one recipient whose subscriber is known.
#[allow(clippy::too_many_arguments)]
async fn apply_policy(
    conn: &mut Connection,
    subscriber_id: i64,
    kind: &str,
    hard: bool,
    soft_limit: u32,
    now: i64,
    channel: &str,
    recipient: &NewBounce,
) -> Result<Effect, StoreError> {
    let detail = serde_json::json!({
        "reason": recipient.reason,
        "status": recipient.status,
        "reply": recipient.reply,
        "channel": channel,
    });
    match kind {
        "complaint" => {
            let changed = set_status(
                conn,
                subscriber_id,
                SubscriberStatus::Complained,
                recipient.issue_id,
                channel,
                detail,
                now,
            )
            .await?;
            Ok(if changed {
                Effect::Complained
            } else {
                Effect::Recorded
            })
        }
        "bounce" if hard => {
            let changed = set_status(
                conn,
                subscriber_id,
                SubscriberStatus::Bounced,
                recipient.issue_id,
                channel,
                detail,
                now,
            )
            .await?;
            Ok(if changed {
                Effect::Bounced
            } else {
                Effect::Recorded
            })
        }
        "bounce" => {
            let Some(status) = lock_status(conn, subscriber_id).await? else {
                return Ok(Effect::Recorded);
            };
            if !matches!(status, SubscriberStatus::Active | SubscriberStatus::Pending) {
                return Ok(Effect::Recorded);
            }
            // The row just inserted is part of the streak the check reads.
            if soft_streak_reached(conn, subscriber_id, soft_limit).await? {
                let detail = serde_json::json!({
                    "reason": format!("soft bounces on {soft_limit} consecutive issues"),
                    "last": recipient.reason,
                    "channel": channel,
                });
                if set_status(
                    conn,
                    subscriber_id,
                    SubscriberStatus::Bounced,
                    recipient.issue_id,
                    channel,
                    detail,
                    now,
                )
                .await?
                {
                    return Ok(Effect::Bounced);
                }
            }
            Ok(Effect::Counted)
        }
        _ => Ok(Effect::Recorded),
    }
}

/// Whether each of the last `limit` issues sent to (or refused for good for) the subscriber
/// drew a bounce: soft bounces on consecutive issues, with none delivered in between.
async fn soft_streak_reached(
    conn: &mut Connection,
    subscriber_id: i64,
    limit: u32,
) -> Result<bool, StoreError> {
    let limit = limit.max(1);
    let bounced: Vec<i64> = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM bounces b \
                 WHERE b.issue_id = d.issue_id AND b.subscriber_id = d.subscriber_id \
                   AND b.kind = 'bounce') AS n \
         FROM deliveries d \
         WHERE d.subscriber_id = $1 AND d.status IN ('sent', 'failed') \
         ORDER BY d.issue_id DESC LIMIT $2",
    )
    .bind(subscriber_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    Ok(bounced.len() == limit as usize && bounced.iter().all(|&n| n > 0))
}

/// Moves a subscriber to `bounced` (from `active` or `pending`) or `complained` (from any
/// other status), with a `bounce` or `complain` event. Returns whether it changed.
async fn set_status(
    conn: &mut Connection,
    subscriber_id: i64,
    to: SubscriberStatus,
    issue_id: Option<i64>,
    source: &str,
    mut detail: serde_json::Value,
    now: i64,
) -> Result<bool, StoreError> {
    let Some(from) = lock_status(conn, subscriber_id).await? else {
        return Ok(false);
    };
    let allowed = match to {
        SubscriberStatus::Complained => from != SubscriberStatus::Complained,
        _ => matches!(from, SubscriberStatus::Active | SubscriberStatus::Pending),
    };
    if !allowed {
        return Ok(false);
    }
    sqlx::query("UPDATE subscribers SET status = $1, unsubscribed_at = $2 WHERE id = $3")
        .bind(to.as_str())
        .bind(now)
        .bind(subscriber_id)
        .execute(&mut *conn)
        .await?;
    let slug: Option<String> = match issue_id {
        Some(id) => {
            sqlx::query_scalar("SELECT slug FROM issues WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        }
        None => None,
    };
    if let Some(map) = detail.as_object_mut() {
        map.insert("from".into(), from.as_str().into());
        map.insert("to".into(), to.as_str().into());
        map.insert("issue".into(), slug.into());
    }
    let kind = if to == SubscriberStatus::Complained {
        "complain"
    } else {
        "bounce"
    };
    sqlx::query(
        "INSERT INTO events (occurred_at, kind, subscriber_id, issue_id, source, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now)
    .bind(kind)
    .bind(subscriber_id)
    .bind(issue_id)
    .bind(source)
    .bind(Json(detail))
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn bounce_from_row(row: &Row) -> Result<BounceRow, StoreError> {
    // 0 or 1 on both backends (an INTEGER column, as `deliveries.permanent`).
    let hard: i64 = row.try_get("hard")?;
    let effect: String = row.try_get("effect")?;
    Ok(BounceRow {
        id: row.try_get("id")?,
        received_at: row.try_get("received_at")?,
        channel: row.try_get("channel")?,
        kind: row.try_get("kind")?,
        issue_slug: row.try_get("issue_slug")?,
        subscriber_id: row.try_get("subscriber_id")?,
        email: row.try_get("email")?,
        status: row.try_get("status")?,
        reply: row.try_get("reply")?,
        diagnostic: row.try_get("diagnostic")?,
        hard: hard != 0,
        reason: row.try_get("reason")?,
        feedback_type: row.try_get("feedback_type")?,
        effect: Effect::parse(&effect)?,
    })
}

/// Records a refusal during herald's own session (the dispatcher's permanent failures) as a
/// report of channel `session`, inside the outcome transaction. A hard one makes the
/// subscriber `bounced` at once; a soft one is counted ([`Backend::apply_soft_limit`] checks
/// the streak once the run's outcomes are written).
pub(super) async fn record_session_refusal(
    conn: &mut Connection,
    issue_id: i64,
    subscriber_id: i64,
    reply: &str,
    hard: bool,
    now: i64,
) -> Result<(), StoreError> {
    let mut verdict = crate::bounces::classify_reply(reply);
    verdict.hard = hard;
    let status = crate::bounces::status::find_status(reply).map(|s| s.to_string());
    let code = crate::bounces::status::find_reply(reply).map(|c| c.get());
    let hash =
        crate::bounces::report_hash(format!("session:{issue_id}:{subscriber_id}").as_bytes());
    let inserted = sqlx::query(
        "INSERT INTO bounces (report_hash, recipient_index, received_at, channel, kind, \
             issue_id, subscriber_id, status, reply, diagnostic, hard, reason, effect) \
         VALUES ($1, 0, $2, 'session', 'bounce', $3, $4, $5, $6, $7, $8, $9, 'recorded') \
         ON CONFLICT (report_hash, recipient_index) DO NOTHING",
    )
    .bind(&hash)
    .bind(now)
    .bind(issue_id)
    .bind(subscriber_id)
    .bind(status.as_deref())
    .bind(code.map(i64::from))
    .bind(truncate(reply, 1000))
    .bind(i64::from(verdict.hard))
    .bind(verdict.reason.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(());
    }
    let effect = if verdict.hard {
        let detail = serde_json::json!({
            "reason": verdict.reason.as_str(),
            "status": status,
            "reply": reply,
            "channel": "session",
        });
        if set_status(
            conn,
            subscriber_id,
            SubscriberStatus::Bounced,
            Some(issue_id),
            "dispatcher",
            detail,
            now,
        )
        .await?
        {
            Effect::Bounced
        } else {
            Effect::Recorded
        }
    } else {
        Effect::Counted
    };
    sqlx::query("UPDATE bounces SET effect = $1 WHERE report_hash = $2 AND recipient_index = 0")
        .bind(effect.as_str())
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
