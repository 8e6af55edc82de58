//! What the editor API and the dashboard keep: stored answers to idempotent requests,
//! putting failed deliveries back in the queue, searching the subscriber list, and the
//! dashboard sessions ended by logging out. The queries are in `shared/editor.rs`.

use super::{delegate, Store, StoreError};
use crate::domain::SubscriberStatus;

/// The answer first given to a request with an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The request the key was first used for (method and path).
    pub fingerprint: String,
    /// HTTP status.
    pub status: u16,
    /// The response body, exactly as sent.
    pub body: String,
}

/// One page of a subscriber search.
#[derive(Debug, Clone)]
pub struct SubscriberPage {
    pub subscribers: Vec<super::Subscriber>,
    /// Matches in all pages.
    pub total: u64,
}

delegate! {
    /// The answer stored for idempotency key `key`.
    pub async fn find_idempotent_answer(
        &self,
        key: &str,
    ) -> Result<Option<StoredAnswer>, StoreError>;

    /// Stores the answer for `key`, unless one is stored already (another process got there
    /// first). Returns the answer that is stored now: `answer`, or the earlier one.
    pub async fn store_idempotent_answer(
        &self,
        key: &str,
        answer: &StoredAnswer,
        now: i64,
    ) -> Result<StoredAnswer, StoreError>;

    /// "Retry failed": the issue's `failed` rows that did not fail permanently (no 5xx reply:
    /// they ran out of attempts or of retry lifetime on 4xx replies, timeouts or lost
    /// connections) go back to `queued`, due at `now`, with their attempts reset to 0 and
    /// `queued_at = now`, so they get a full retry budget and lifetime again. The issue
    /// becomes `sending` again (`finished_at` cleared) when any row moved. Returns how many
    /// rows moved. Permanent failures (5xx) stay `failed`.
    #[tracing::instrument(skip_all, fields(issue_id = issue_id))]
    pub async fn requeue_failed_deliveries(
        &self,
        issue_id: i64,
        now: i64,
    ) -> Result<u64, StoreError>;

    /// Records that dashboard session `session_id` was ended (logout), and forgets ended
    /// sessions that have expired by `now`.
    pub async fn end_admin_session(
        &self,
        session_id: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Whether dashboard session `session_id` was ended by logging out.
    pub async fn is_admin_session_ended(&self, session_id: i64) -> Result<bool, StoreError>;

    /// Subscribers whose address or name contains `query` (any letter case; empty matches
    /// all), optionally with one status, oldest first: `limit` of them from `offset`, and
    /// the number of matches in all.
    pub async fn search_subscribers(
        &self,
        query: &str,
        status: Option<SubscriberStatus>,
        limit: u32,
        offset: u64,
    ) -> Result<SubscriberPage, StoreError>;
}
