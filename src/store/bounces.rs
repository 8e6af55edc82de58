//! Returned mail: the `bounces` table, the policy it feeds, and the per-issue counts. The
//! queries are in `shared/bounces.rs`.
//!
//! # The policy, in one transaction per report
//!
//! - hard bounce: the subscriber becomes `bounced` at once (from `active` or `pending`).
//! - soft bounce: counted; when the last `soft_limit` issues sent to the subscriber each
//!   drew a bounce (so no issue was delivered in between), the subscriber becomes `bounced`.
//! - complaint: the subscriber becomes `complained`, whatever their status; only their own
//!   new double opt-in lifts it.
//! - delay, auto-reply, success, none: recorded, nothing changes.
//!
//! Every report is a row per recipient and a `report` event; a status change is also a
//! `bounce` or `complain` event. The same report received twice (the same hash) is one row,
//! and its second arrival changes nothing.

use super::{delegate, Store, StoreError};

/// What the policy did with one recipient of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The subscriber became `bounced`.
    Bounced,
    /// The subscriber became `complained`.
    Complained,
    /// A soft bounce, counted towards the limit.
    Counted,
    /// Nothing to change (or the subscriber was already out, or unknown).
    Recorded,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Bounced => "bounced",
            Effect::Complained => "complained",
            Effect::Counted => "counted",
            Effect::Recorded => "recorded",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "bounced" => Effect::Bounced,
            "complained" => Effect::Complained,
            "counted" => Effect::Counted,
            "recorded" => Effect::Recorded,
            other => return Err(StoreError::BadValue(format!("bounce effect {other:?}"))),
        })
    }
}

/// One recipient of a report, as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBounce {
    /// The delivery it is about, when found.
    pub issue_id: Option<i64>,
    pub subscriber_id: Option<i64>,
    /// `5.1.1`, when the report shows one.
    pub status: Option<String>,
    pub reply: Option<u16>,
    pub diagnostic: String,
    pub hard: bool,
    /// The reason's name (`unknown user`, `mailbox full`, ...).
    pub reason: String,
}

/// A report about to be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    /// SHA-256 (hex) of what came in: the same hash is the same report.
    pub report_hash: String,
    /// `smtp`, `imap`, `import`, `session`, `ses`, `postmark`, `mailgun`, `sendgrid`.
    pub channel: &'static str,
    /// `bounce`, `delay`, `complaint`, `auto-reply`, `delivered`, `none`.
    pub kind: &'static str,
    pub feedback_type: Option<String>,
    pub received_at: i64,
    /// Soft bounces on this many consecutive issues make a subscriber `bounced`.
    pub soft_limit: u32,
    pub recipients: Vec<NewBounce>,
}

/// What applying a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedReport {
    /// The report had been applied before: nothing changed this time.
    pub duplicate: bool,
    /// Per recipient, in order.
    pub effects: Vec<Effect>,
}

/// One stored report recipient, for history displays.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BounceRow {
    pub id: i64,
    pub received_at: i64,
    pub channel: String,
    pub kind: String,
    pub issue_slug: Option<String>,
    pub subscriber_id: Option<i64>,
    /// The subscriber's address, when the report was matched to one.
    pub email: Option<String>,
    pub status: Option<String>,
    pub reply: Option<i64>,
    pub diagnostic: String,
    pub hard: bool,
    pub reason: String,
    pub feedback_type: Option<String>,
    pub effect: Effect,
}

/// How many copies of one issue later bounced or drew a complaint (each subscriber once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BounceCounts {
    /// Copies that bounced hard.
    pub hard: u64,
    /// Copies that bounced soft only.
    pub soft: u64,
    pub complaints: u64,
    pub delays: u64,
    pub auto_replies: u64,
}

/// What [`Store::reactivate_subscriber`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reactivation {
    /// `bounced` became `active`.
    Reactivated,
    /// Not bounced: nothing changed (the status is given).
    NotBounced(crate::domain::SubscriberStatus),
    NotFound,
}

delegate! {
    /// Applies a report in one transaction: its rows, the policy, the events. Idempotent on
    /// `report_hash`.
    #[tracing::instrument(skip_all, fields(kind = report.kind, channel = report.channel))]
    pub async fn apply_report(&self, report: &NewReport) -> Result<AppliedReport, StoreError>;

    /// The delivery (issue id, subscriber id) whose copy carried this Message-ID.
    pub async fn find_delivery_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<(i64, i64)>, StoreError>;

    /// Whether the delivery (issue id, subscriber id) exists.
    pub async fn delivery_exists(
        &self,
        issue_id: i64,
        subscriber_id: i64,
    ) -> Result<bool, StoreError>;

    /// The latest issue sent (or refused for good) to a subscriber: where a report that names
    /// only an address belongs.
    pub async fn latest_delivered_issue(&self, subscriber_id: i64) -> Result<Option<i64>, StoreError>;

    /// The slug of issue `id`.
    pub async fn issue_slug(&self, id: i64) -> Result<Option<String>, StoreError>;

    /// How many copies of an issue bounced or drew complaints.
    pub async fn bounce_counts(&self, issue_id: i64) -> Result<BounceCounts, StoreError>;

    /// One subscriber's reports, newest first.
    pub async fn subscriber_bounces(
        &self,
        subscriber_id: i64,
        limit: u32,
    ) -> Result<Vec<BounceRow>, StoreError>;

    /// The latest reports of any kind but `none`, newest first.
    pub async fn recent_bounces(&self, limit: u32) -> Result<Vec<BounceRow>, StoreError>;

    /// Applies the soft-bounce limit to the subscribers whose copy of `issue_id` was refused
    /// during the session (those refusals are recorded as the dispatcher writes outcomes).
    /// Returns how many became `bounced`.
    pub async fn apply_soft_limit(
        &self,
        issue_id: i64,
        soft_limit: u32,
        now: i64,
    ) -> Result<u64, StoreError>;

    /// An editor's undo of a bounce: `bounced` becomes `active`, with a `status_change`
    /// event. A complained subscriber is never reactivated this way.
    #[tracing::instrument(skip_all, fields(subscriber_id = id))]
    pub async fn reactivate_subscriber(
        &self,
        id: i64,
        source: &str,
        now: i64,
    ) -> Result<Reactivation, StoreError>;
}
