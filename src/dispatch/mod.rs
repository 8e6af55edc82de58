//! Sending an issue: enqueue it into the per-recipient ledger, then send every due row with
//! leases, pacing, retries and group commits.
//!
//! - [`enqueue`] freezes the recipient set of an issue in one idempotent transaction.
//! - [`Dispatcher::run`] claims due rows under a lease, sends them through the
//!   [`Transport`](crate::mail::Transport), and records each outcome. See [`engine`] for the
//!   moving parts and [`policy`] for what each SMTP outcome means for a row.
//!
//! # Guarantees
//!
//! A row that is `sent` is never sent again. A crash (even `kill -9`) loses nothing: rows
//! that were in flight are `sending` under an expired lease, and the next run takes them
//! back within `sending.lease_seconds`. The only duplicates possible are messages whose 2xx
//! reply arrived but whose group commit had not happened yet: at most what was in flight and
//! the outcomes queued for the writer (every send reserves its place in that queue before it
//! goes out, and the queue holds twice the in-flight limit), and one commit group
//! ([`engine::GROUP_MAX`]). A run never sends a row whose lease it lost, nor anything once
//! its outcomes can no longer be written.

pub mod checker;
pub mod engine;
pub mod pacing;
pub mod policy;
pub mod service;

pub use engine::{Dispatcher, Job, LeaseTokens, Progress, RunEnd};

use crate::issue::Issue;
use crate::store::{Enqueued, NewIssue, Store, StoreError};

/// Everything that can stop a send.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the outcome writer stopped: {0}")]
    Writer(String),
    #[error("claiming the next rows stopped: {0}")]
    Claimer(String),
    #[error(
        "cannot write the outcome of {count} messages to the ledger ({source}); sending \
             stopped. Copies the relay accepted but that are not recorded may be sent again \
             when the send resumes"
    )]
    Record {
        count: usize,
        #[source]
        source: StoreError,
    },
    #[error(
        "the database did not take lease renewals ({0}); stopped claiming rows, and the \
             rows in flight were finished or handed back"
    )]
    Leases(String),
}

/// Adds `issue` to the ledger with one `queued` row per active subscriber. Running it again
/// adds only subscribers who became active since; it never touches existing rows. The
/// issue's `date` is recorded, so the scheduler knows how recent the last issue sent is.
pub async fn enqueue(
    store: &Store,
    issue: &Issue,
    source: &str,
) -> Result<Enqueued, DispatchError> {
    let new = NewIssue {
        slug: issue.slug.as_str(),
        title: &issue.title,
        subject: &issue.subject,
        source_hash: &issue.source_hash,
    };
    let date = issue.date.map(|d| d.timestamp());
    Ok(store
        .enqueue_dated_issue(&new, date, source, unix_now())
        .await?)
}

/// The current time as Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
