//! The statements only SQLite says this way. Each has a PostgreSQL twin of the same name in
//! `postgres/sql.rs`; the shared queries use them by name.
//!
//! Addresses compare case-insensitively through the column's `COLLATE NOCASE`, and writers
//! take turns (`BEGIN IMMEDIATE`), so the "for update" reads need no locking clause.

/// The status of the subscriber with address `$1` (any letter case).
pub(super) const STATUS_BY_EMAIL: &str = "SELECT status FROM subscribers WHERE email = $1";

/// Every column of the subscriber with address `$1` (any letter case).
pub(super) const SUBSCRIBER_BY_EMAIL: &str =
    "SELECT id, email, name, status, attributes, created_at, confirmed_at, unsubscribed_at, \
     consent_ip, consent_user_agent, source FROM subscribers WHERE email = $1";

/// Id and status of the subscriber with address `$1`, held until the transaction ends.
pub(super) const ID_AND_STATUS_BY_EMAIL_FOR_UPDATE: &str =
    "SELECT id, status FROM subscribers WHERE email = $1";

/// The status of subscriber `$1`, held until the transaction ends.
pub(super) const STATUS_BY_ID_FOR_UPDATE: &str = "SELECT status FROM subscribers WHERE id = $1";

/// The status of issue `$1`, held until the transaction ends.
pub(super) const ISSUE_STATUS_FOR_UPDATE: &str = "SELECT status FROM issues WHERE id = $1";

/// Rows of any issue whose lease ended before `$1` go back to `retry`, due at `$1`. The
/// write transaction holds the database, so no other writer holds a row.
pub(super) const RECLAIM_EXPIRED_DELIVERIES: &str =
    "UPDATE deliveries SET status = 'retry', next_attempt_at = $1, \
         lease_until = NULL, lease_token = NULL \
     WHERE status = 'sending' AND lease_until < $1";

/// Statements that keep other writers from adding issues until the transaction ends.
pub(super) const LOCK_ISSUES_FOR_SCHEDULER: &[&str] = &[];

/// Subscribers whose address or name contains the LIKE pattern `$1` in any letter case
/// (SQLite's LIKE folds ASCII), with status `$2` unless it is NULL.
pub(super) const SUBSCRIBER_SEARCH: &str =
    "(email LIKE $1 ESCAPE '\\' OR name LIKE $1 ESCAPE '\\') AND ($2 IS NULL OR status = $2)";

/// Every subscriber with their event trail as a JSON array (`events`), oldest first.
pub(super) const EXPORT_SUBSCRIBER_RECORDS: &str =
    "SELECT s.id, s.email, s.name, s.status, s.attributes, s.created_at, s.confirmed_at, \
            s.unsubscribed_at, s.consent_ip, s.consent_user_agent, s.source, \
            (SELECT json_group_array(json_object( \
                 'at', strftime('%Y-%m-%dT%H:%M:%SZ', e.occurred_at, 'unixepoch'), \
                 'kind', e.kind, 'source', e.source, \
                 'ip', e.ip, 'user_agent', e.user_agent, 'detail', json(e.detail))) \
             FROM (SELECT * FROM events WHERE subscriber_id = s.id ORDER BY id) e) AS events \
     FROM subscribers s ORDER BY s.id";

/// `n` placeholders for a list of bound values that starts at parameter `first`. SQLite's are
/// anonymous (`?`): sqlx looks up each numbered parameter's name, which SQLite finds by a
/// linear scan, and that made statements with thousands of values quadratic.
pub(super) fn placeholders(_first: usize, n: usize) -> String {
    let mut s = "?,".repeat(n);
    s.pop();
    s
}

/// `n` copies of `row` (a parenthesised tuple whose bound values are written `?`), separated
/// by commas: the VALUES list of a multi-row INSERT.
pub(super) fn values(row: &str, n: usize) -> String {
    let mut s = String::with_capacity(n * (row.len() + 1));
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str(row);
    }
    s
}

/// `email IN ($first, …)`: a match for any of `n` addresses (any letter case, through the
/// column's collation).
pub(super) fn email_in(first: usize, n: usize) -> String {
    format!("email IN ({})", placeholders(first, n))
}
