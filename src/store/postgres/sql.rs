//! The statements only PostgreSQL says this way. Each has a SQLite twin of the same name in
//! `sqlite/sql.rs`; the shared queries use them by name.
//!
//! Addresses compare case-insensitively through `lower(email)`, which the unique index
//! `subscribers_by_email` covers, and the "for update" reads lock their rows until the
//! transaction ends.

/// The status of the subscriber with address `$1` (any letter case).
pub(super) const STATUS_BY_EMAIL: &str =
    "SELECT status FROM subscribers WHERE lower(email) = lower($1)";

/// Every column of the subscriber with address `$1` (any letter case).
pub(super) const SUBSCRIBER_BY_EMAIL: &str =
    "SELECT id, email, name, status, attributes, created_at, confirmed_at, unsubscribed_at, \
     consent_ip, consent_user_agent, source FROM subscribers WHERE lower(email) = lower($1)";

/// Id and status of the subscriber with address `$1`, held until the transaction ends.
pub(super) const ID_AND_STATUS_BY_EMAIL_FOR_UPDATE: &str =
    "SELECT id, status FROM subscribers WHERE lower(email) = lower($1) FOR UPDATE";

/// The status of subscriber `$1`, held until the transaction ends.
pub(super) const STATUS_BY_ID_FOR_UPDATE: &str =
    "SELECT status FROM subscribers WHERE id = $1 FOR UPDATE";

/// The status of issue `$1`, held until the transaction ends.
pub(super) const ISSUE_STATUS_FOR_UPDATE: &str =
    "SELECT status FROM issues WHERE id = $1 FOR UPDATE";

/// Rows of any issue whose lease ended before `$1` go back to `retry`, due at `$1`. A row
/// another transaction holds is left alone: the run that holds it is marking it sent or
/// renewing its lease, or another node is taking it back; waiting for it could deadlock
/// with a group commit that locks the same rows in another order.
pub(super) const RECLAIM_EXPIRED_DELIVERIES: &str =
    "UPDATE deliveries SET status = 'retry', next_attempt_at = $1, \
         lease_until = NULL, lease_token = NULL \
     WHERE (issue_id, subscriber_id) IN \
         (SELECT issue_id, subscriber_id FROM deliveries \
          WHERE status = 'sending' AND lease_until < $1 FOR UPDATE SKIP LOCKED)";

/// Statements that keep other writers from adding issues until the transaction ends: the
/// scheduler reads the newest issue date, then enqueues, and two nodes must not both do so.
pub(super) const LOCK_ISSUES_FOR_SCHEDULER: &[&str] =
    &["LOCK TABLE issues IN SHARE ROW EXCLUSIVE MODE"];

/// Subscribers whose address or name contains the LIKE pattern `$1` in any letter case,
/// with status `$2` unless it is NULL.
pub(super) const SUBSCRIBER_SEARCH: &str =
    "(email ILIKE $1 ESCAPE '\\' OR name ILIKE $1 ESCAPE '\\') \
     AND ($2::text IS NULL OR status = $2::text)";

/// Every subscriber with their event trail as a JSON array (`events`, as text), oldest first.
pub(super) const EXPORT_SUBSCRIBER_RECORDS: &str =
    "SELECT s.id, s.email, s.name, s.status, s.attributes, s.created_at, s.confirmed_at, \
            s.unsubscribed_at, s.consent_ip, s.consent_user_agent, s.source, \
            COALESCE((SELECT json_agg(json_build_object( \
                 'at', to_char(to_timestamp(e.occurred_at) AT TIME ZONE 'UTC', \
                               'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                 'kind', e.kind, 'source', e.source, \
                 'ip', e.ip, 'user_agent', e.user_agent, 'detail', e.detail) ORDER BY e.id) \
             FROM events e WHERE e.subscriber_id = s.id), '[]'::json)::text AS events \
     FROM subscribers s ORDER BY s.id";

/// `n` numbered placeholders for a list of bound values that starts at parameter `first`.
pub(super) fn placeholders(first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('$');
        s.push_str(&(first + i).to_string());
    }
    s
}

/// `n` copies of `row` (a parenthesised tuple whose bound values are written `?`), separated
/// by commas, each `?` numbered in turn from `$1`: the VALUES list of a multi-row INSERT.
pub(super) fn values(row: &str, n: usize) -> String {
    let mut s = String::with_capacity(n * (row.len() + 16));
    let mut next = 1;
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        for c in row.chars() {
            if c == '?' {
                s.push('$');
                s.push_str(&next.to_string());
                next += 1;
            } else {
                s.push(c);
            }
        }
    }
    s
}

/// `lower(email) IN (lower($first), …)`: a match for any of `n` addresses (any letter case),
/// through the index on `lower(email)`.
pub(super) fn email_in(first: usize, n: usize) -> String {
    let list: Vec<String> = (first..first + n).map(|i| format!("lower(${i})")).collect();
    format!("lower(email) IN ({})", list.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_values_are_numbered_in_order() {
        assert_eq!(placeholders(3, 3), "$3,$4,$5");
        assert_eq!(values("(?, 'x', ?)", 2), "($1, 'x', $2),($3, 'x', $4)");
    }
}
