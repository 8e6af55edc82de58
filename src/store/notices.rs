//! `notices`: the durable queue of confirmation and welcome mails. The queries are in
//! `shared/notices.rs`, the claim in each backend's `claims.rs`.
//!
//! Rows move like delivery rows: `queued`/`retry` rows that are due are claimed into
//! `sending` under a lease and a lease token, and each outcome is written back in one
//! transaction per group. A `sending` row whose lease expired (a crash) goes back to
//! `retry`, due at once.

use super::deliveries::OutcomeKind;
use super::{delegate, Store, StoreError};
use crate::domain::SubscriberStatus;

/// One claimed notice, with what the mail needs of its subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeClaim {
    pub id: i64,
    /// `confirm` or `welcome`.
    pub kind: String,
    /// Attempts before this one.
    pub attempts: u32,
    pub queued_at: i64,
    pub subscriber_id: i64,
    pub email: String,
    pub name: Option<String>,
    pub status: SubscriberStatus,
}

/// What became of one claimed notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeOutcome {
    pub id: i64,
    pub kind: OutcomeKind,
}

/// One notice row (for tests and status displays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRow {
    pub id: i64,
    pub subscriber_id: i64,
    pub kind: String,
    pub status: String,
    pub attempts: u32,
    pub queued_at: i64,
    pub last_reply: Option<String>,
}

delegate! {
    /// Claims up to `limit` due notices (oldest due first) into `sending` under
    /// `lease_token` until `lease_until`, after taking back rows whose lease expired. Two
    /// workers (on any nodes) never claim the same notice.
    #[tracing::instrument(skip_all)]
    pub async fn claim_notices(
        &self,
        lease_token: i64,
        lease_until: i64,
        limit: u32,
        now: i64,
    ) -> Result<Vec<NoticeClaim>, StoreError>;

    /// Writes the outcomes of notices claimed under `lease_token`, in one transaction.
    /// Rows no longer held under that token (taken back after an expired lease) are left
    /// alone.
    #[tracing::instrument(skip_all, fields(outcomes = outcomes.len()))]
    pub async fn record_notice_outcomes(
        &self,
        lease_token: i64,
        outcomes: &[NoticeOutcome],
    ) -> Result<(), StoreError>;

    /// When the next `queued` or `retry` notice is due, if any (a `sending` row counts as
    /// due when its lease ends).
    pub async fn next_notice_due_at(&self) -> Result<Option<i64>, StoreError>;

    /// Every notice of subscriber `id`, oldest first.
    pub async fn notices_of(&self, subscriber_id: i64) -> Result<Vec<NoticeRow>, StoreError>;

    /// How many notices have each status (statuses with none are left out).
    pub async fn count_notices_by_status(&self) -> Result<Vec<(String, i64)>, StoreError>;
}
