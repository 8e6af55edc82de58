//! `issues` and `deliveries`: the durable per-recipient delivery ledger.
//!
//! # The life of a delivery row
//!
//! [`Store::enqueue_issue`] inserts one `queued` row per active subscriber, due at once. The
//! dispatcher claims due rows with [`Store::claim_deliveries`], which moves them to `sending`
//! under a lease (`lease_until`, `lease_token`), sends them, and writes the outcomes back in
//! one transaction per batch with [`Store::record_outcomes`]. Every claim has a token of its
//! own, never reused. An outcome applies only while the row is still `sending` under the
//! token it was claimed with, so a dispatcher whose lease expired and whose rows were
//! re-claimed cannot overwrite the newer state. Just before sending, the dispatcher checks
//! with [`Store::check_claims`] that the row is still its own, with time left on the lease.
//! After a crash, [`Store::reclaim_expired_leases`] turns `sending` rows with an expired lease
//! back into `retry`. A `sent` row never leaves `sent`.
//!
//! Every function takes the current time from the caller, so tests control the clock.
//! The queries are in `shared/deliveries.rs`, the claim in each backend's `claims.rs`.

use super::{delegate, now, Store, StoreError};

/// A due row as both backends' claim reads return it.
#[derive(sqlx::FromRow)]
pub(crate) struct DueRow {
    subscriber_id: i64,
    email: String,
    name: Option<String>,
    attempts: i64,
    queued_at: i64,
    active: bool,
}

impl DueRow {
    /// The claim, and whether its subscriber is still active.
    pub(crate) fn into_claim(self) -> Result<(Claim, bool), StoreError> {
        let claim = Claim {
            subscriber_id: self.subscriber_id,
            email: self.email,
            name: self.name,
            attempts: super::to_u32(self.attempts)?,
            queued_at: self.queued_at,
        };
        Ok((claim, self.active))
    }
}

/// An issue about to be enqueued.
#[derive(Debug, Clone, Copy)]
pub struct NewIssue<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub subject: &'a str,
    /// Hash of the issue file, to notice edits after a send started.
    pub source_hash: &'a str,
}

/// A stored issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRow {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub subject: String,
    pub source_hash: String,
    /// `draft`, `scheduled`, `sending`, `sent` or `cancelled`.
    pub status: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The date the issue file carried when it was last enqueued (Unix seconds).
    pub issue_date: Option<i64>,
}

/// What [`Store::enqueue_issue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub issue_id: i64,
    /// Delivery rows added by this call (subscribers active now and not enqueued before).
    pub added: u64,
    /// Delivery rows of the issue in all.
    pub total: u64,
    /// The issue was enqueued before from a file with a different hash.
    pub source_changed: bool,
}

/// One delivery handed to a dispatcher by [`Store::claim_deliveries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub subscriber_id: i64,
    pub email: String,
    pub name: Option<String>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the row was enqueued: the start of its retry lifetime.
    pub queued_at: i64,
}

/// How many delivery rows of one issue have each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryCounts {
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub retry: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl DeliveryCounts {
    /// Rows that still need work: queued, sending or retry.
    pub fn pending(&self) -> u64 {
        self.queued + self.sending + self.retry
    }

    /// Every row.
    pub fn total(&self) -> u64 {
        self.pending() + self.sent + self.failed + self.skipped
    }
}

/// The result of one claimed delivery, written back by [`Store::record_outcomes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub subscriber_id: i64,
    /// The token the row was claimed under: the outcome applies only while it still holds.
    pub lease_token: i64,
    pub kind: OutcomeKind,
}

/// An accepted message as [`Store::record_outcomes_at`] writes it, all of a group's at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SentRow<'a> {
    pub subscriber_id: i64,
    pub lease_token: i64,
    pub message_id: &'a str,
    pub reply: &'a str,
    pub at: i64,
}

/// What [`Store::check_claims`] found just before a claimed row is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimCheck {
    /// Still `sending` under this claim's token with time left on the lease, and the
    /// subscriber is active: send it.
    Held,
    /// Still held, but the subscriber is no longer active: skip it.
    SubscriberLeft,
    /// The lease ran out or the row was taken back (by this process or another): do not
    /// send it. Whoever holds it now sends it.
    Lost,
}

/// What happened to one claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeKind {
    /// Accepted (2xx): the row becomes `sent`.
    Sent {
        message_id: String,
        reply: String,
        at: i64,
    },
    /// A transient failure: the row becomes `retry`, due at `next_attempt_at`; attempts + 1.
    Retry { reply: String, next_attempt_at: i64 },
    /// Given up: the row becomes `failed`; attempts + 1. `permanent` marks a 5xx reply.
    /// `bounce` also marks the subscriber `bounced` (when active or pending) and appends a
    /// `bounce` event.
    Failed {
        reply: String,
        permanent: bool,
        bounce: bool,
    },
    /// The subscriber is no longer active: the row becomes `skipped`.
    Skipped,
    /// Handed back unsent without burning an attempt: `queued` (no attempts yet) or `retry`,
    /// due at once (its due time is left as it was when claimed, which had passed).
    Release,
    /// Handed back without burning an attempt, due again at `next_attempt_at`: the
    /// destination asked herald to slow down (a throttling reply, kept as `last_reply`
    /// when there is one) or cannot take the row this soon. With a reply the row is `retry`
    /// (it was tried; `attempts` is unchanged); without, `queued` or `retry` as for
    /// [`OutcomeKind::Release`].
    Defer {
        reply: Option<String>,
        next_attempt_at: i64,
    },
}

/// One delivery row (for status displays and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub issue_id: i64,
    pub subscriber_id: i64,
    pub status: String,
    pub attempts: u32,
    pub queued_at: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub lease_token: Option<i64>,
    pub permanent: bool,
    pub last_reply: Option<String>,
    pub message_id: Option<String>,
    pub sent_at: Option<i64>,
    /// The node that sent it (see [`crate::nodes`]).
    pub sent_by: Option<String>,
}

delegate! {
    /// As [`Store::enqueue_issue`], also recording the date the issue carries
    /// (`issues.issue_date`, Unix seconds), which the scheduler compares against. A `None`
    /// keeps a date stored before.
    #[tracing::instrument(skip_all, fields(slug = issue.slug))]
    pub async fn enqueue_dated_issue(
        &self,
        issue: &NewIssue<'_>,
        issue_date: Option<i64>,
        source: &str,
        now: i64,
    ) -> Result<Enqueued, StoreError>;

    /// The issue with this slug.
    pub async fn find_issue(&self, slug: &str) -> Result<Option<IssueRow>, StoreError>;

    /// Every issue, newest first.
    pub async fn list_issues(&self) -> Result<Vec<IssueRow>, StoreError>;

    /// Issues whose send is under way (`sending`), oldest first: what a long-running
    /// dispatcher resumes.
    pub async fn issues_in_progress(&self) -> Result<Vec<IssueRow>, StoreError>;

    /// Claims up to `limit` due rows of `issue_id` (`queued` or `retry` with
    /// `next_attempt_at <= now`, oldest due first) in one short write transaction: they
    /// become `sending` under `lease_token` until `lease_until`, and are returned with their
    /// subscriber's address and name.
    ///
    /// Rows whose subscriber is no longer `active` become `skipped` and are not returned;
    /// the claim then looks further, so an empty result means nothing of this issue is due.
    /// Two dispatchers (in any processes, on any nodes) never claim the same row: SQLite
    /// holds its write lock for the whole claim, PostgreSQL locks the rows it takes and
    /// skips rows another claimer holds (`FOR UPDATE SKIP LOCKED`).
    #[tracing::instrument(skip_all, fields(issue_id, lease_token, limit))]
    pub async fn claim_deliveries(
        &self,
        issue_id: i64,
        lease_token: i64,
        lease_until: i64,
        limit: u32,
        now: i64,
    ) -> Result<Vec<Claim>, StoreError>;

    /// Checked just before messages go out, since a claimed row can wait a while for its
    /// turn: for each `(subscriber_id, lease_token)` of `claims`, whether its row of
    /// `issue_id` is still `sending` under that token with its lease ending after `now`, and
    /// whether its subscriber is still `active`. One read for all of them; the answers
    /// follow the order of `claims`.
    pub async fn check_claims(
        &self,
        issue_id: i64,
        claims: &[(i64, i64)],
        now: i64,
    ) -> Result<Vec<ClaimCheck>, StoreError>;

    /// Extends `lease_until` of every `sending` row of this issue held under a token in
    /// `lease_tokens` (a heartbeat while batches are in flight; one run's claims take their
    /// tokens from one range). Returns how many rows it extended.
    pub async fn renew_leases(
        &self,
        issue_id: i64,
        lease_tokens: std::ops::RangeInclusive<i64>,
        lease_until: i64,
    ) -> Result<u64, StoreError>;

    /// Writes a batch of outcomes back in ONE transaction (group commit). Each applies only
    /// where the row is still `sending` under its outcome's `lease_token`; a late write after
    /// the lease expired and the row was re-claimed changes nothing. Every outcome clears the
    /// lease. `now` dates a bounce. Returns, for each outcome, whether it changed its row.
    #[tracing::instrument(skip_all, fields(issue_id, outcomes = outcomes.len()))]
    pub async fn record_outcomes_at(
        &self,
        issue_id: i64,
        outcomes: &[Outcome],
        now: i64,
    ) -> Result<Vec<bool>, StoreError>;

    /// Crash recovery: every `sending` row (of any issue) whose lease ended before `now`
    /// goes back to `retry`, due at `now`, with its attempts unchanged (whether the message
    /// went out is unknown). Returns how many rows it moved. On PostgreSQL a row another
    /// transaction holds at that moment (its run marking it sent or renewing its lease,
    /// another node taking it back) is left to that transaction, without waiting for it.
    #[tracing::instrument(skip_all)]
    pub async fn reclaim_expired_leases(&self, now: i64) -> Result<u64, StoreError>;

    /// How many rows of the issue have each status.
    pub async fn delivery_counts(&self, issue_id: i64) -> Result<DeliveryCounts, StoreError>;

    /// The earliest time anything of the issue could need work: the earliest due time of a
    /// `queued` or `retry` row, or the earliest lease end of a `sending` row. `None` when
    /// every row is `sent`, `failed` or `skipped`.
    pub async fn next_due_at(&self, issue_id: i64) -> Result<Option<i64>, StoreError>;

    /// When no row of the issue is `queued`, `sending` or `retry`, marks a `sending` issue
    /// `sent` with `finished_at = now`. Returns whether the issue is finished (also when it
    /// already was); false for an unknown issue.
    pub async fn finish_issue_if_done(&self, issue_id: i64, now: i64) -> Result<bool, StoreError>;

    /// One delivery row.
    pub async fn find_delivery(
        &self,
        issue_id: i64,
        subscriber_id: i64,
    ) -> Result<Option<DeliveryRow>, StoreError>;
}

impl Store {
    /// Upserts the issue by slug and, in the same transaction, inserts one `queued` delivery
    /// row per subscriber who is `active` now, freezing the recipient set.
    ///
    /// The issue keeps its id; it becomes `sending` (`started_at` set once, `finished_at`
    /// cleared), and takes the new title, subject and source hash (`source_changed` reports
    /// a different stored hash). Idempotent: enqueueing again adds only subscribers who
    /// became active since. Appends a `send_request` event.
    pub async fn enqueue_issue(
        &self,
        issue: &NewIssue<'_>,
        source: &str,
        now: i64,
    ) -> Result<Enqueued, StoreError> {
        self.enqueue_dated_issue(issue, None, source, now).await
    }

    /// [`Store::record_outcomes_at`] at the current time. The clock is read only for a
    /// bounce (the subscriber's `unsubscribed_at` and the `bounce` event's time).
    pub async fn record_outcomes(
        &self,
        issue_id: i64,
        outcomes: &[Outcome],
    ) -> Result<Vec<bool>, StoreError> {
        self.record_outcomes_at(issue_id, outcomes, now()).await
    }
}
