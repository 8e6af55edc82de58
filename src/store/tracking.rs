//! Click and open tracking, and the per-issue figures of the report. The queries are in
//! `shared/tracking.rs`.
//!
//! - `tracked_links`: the links of an issue that go through `/l/`, with their counts.
//! - `tracking_readers`: unique readers as keyed hashes, per issue and scope.
//! - `tracking_hours`, `tracking_agents`: counted hits per hour, per coarse agent class.
//! - `tracking_subscribers`: who clicked or opened, only in "individual" mode.
//!
//! Hits arrive in batches from the hit writer ([`crate::tracking`]); one batch is one
//! transaction.

use super::{delegate, Store, StoreError};

/// One link of an issue that goes through `/l/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrackedLink {
    /// Its id within the issue.
    pub link: String,
    pub url: String,
    /// Its order of first appearance.
    pub position: i64,
}

/// What one hit was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HitKind {
    /// A click on link `link` (its id).
    Click { link: String },
    /// A fetch of the open image; `machine` when a proxy or scanner made it.
    Open { machine: bool },
}

/// One counted click or open, ready to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub issue_id: i64,
    pub kind: HitKind,
    /// The reader's keyed hash for this issue (see `TokenKey::reader_hash`).
    pub reader: [u8; 16],
    /// Only in "individual" mode: the subscriber.
    pub subscriber_id: Option<i64>,
    /// `mail_client`, `browser`, `scanner` or `unknown`.
    pub agent: &'static str,
    /// Unix seconds.
    pub at: i64,
}

/// One tracked link's figures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinkFigures {
    pub link: String,
    pub url: String,
    pub total: u64,
    pub unique: u64,
}

/// One hour of an issue's activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourFigures {
    /// Unix seconds at the start of the hour.
    pub hour: i64,
    pub clicks: u64,
    pub opens: u64,
    pub machine_opens: u64,
    pub unsubscribes: u64,
    pub bounces: u64,
}

/// Counted hits by coarse agent class.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentFigures {
    /// `click` or `open`.
    pub kind: String,
    pub agent: String,
    pub hits: u64,
}

/// What the store knows of an issue's engagement (the delivery and bounce counts come from
/// their own queries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueActivity {
    /// Unsubscribes through this issue's links.
    pub unsubscribes: u64,
    pub clicks: u64,
    pub unique_clickers: u64,
    /// Opens by people (machine opens apart).
    pub opens: u64,
    pub unique_openers: u64,
    pub machine_opens: u64,
    /// Most clicked first.
    pub links: Vec<LinkFigures>,
    /// Hours with any activity inside the window asked for, in order.
    pub hours: Vec<HourFigures>,
    pub agents: Vec<AgentFigures>,
}

delegate! {
    /// Records the links of an issue that go through `/l/`; a link already recorded keeps
    /// its row (its id is derived from its URL).
    #[tracing::instrument(skip_all, fields(issue_id = issue_id, links = links.len()))]
    pub async fn record_tracked_links(
        &self,
        issue_id: i64,
        links: &[NewTrackedLink],
    ) -> Result<(), StoreError>;

    /// The links of an issue that go through `/l/`: `(id, url)`.
    pub async fn tracked_links(&self, issue_id: i64) -> Result<Vec<(String, String)>, StoreError>;

    /// Records a batch of hits in one transaction: the counts per link, hour and agent
    /// class, unique readers, and (for hits that carry one) the subscriber. Hits of an issue
    /// that no longer exists are dropped. Returns how many were recorded.
    #[tracing::instrument(skip_all, fields(hits = hits.len()))]
    pub async fn record_hits(&self, hits: &[Hit]) -> Result<u64, StoreError>;

    /// An issue's engagement figures; `hours` covers `[from, to)` (Unix seconds).
    pub async fn issue_activity(
        &self,
        issue_id: i64,
        from: i64,
        to: i64,
    ) -> Result<IssueActivity, StoreError>;
}
