//! The subscriber list: `subscribers`, `erased_addresses` and the subscriber events in
//! `events`. The queries are in `shared/subscribers.rs`.

use super::{delegate, Store, StoreError};
use crate::domain::{AddressHash, EmailAddress, ErasureKey, SubscriberName, SubscriberStatus};

/// A subscriber about to be stored.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub email: EmailAddress,
    pub name: Option<SubscriberName>,
    pub status: SubscriberStatus,
    /// Free-form attributes (from extra CSV columns), stored as a JSON object.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A stored subscriber: every column of `subscribers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub id: i64,
    /// As stored (see `EmailAddress`); case-insensitively unique.
    pub email: String,
    pub name: Option<String>,
    pub status: SubscriberStatus,
    /// A JSON object, as compact text with its keys in order (the same on both backends).
    pub attributes: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub unsubscribed_at: Option<i64>,
    pub consent_ip: Option<String>,
    pub consent_user_agent: Option<String>,
    /// Where the subscriber came from: `cli`, `import`, `web`, ...
    pub source: String,
}

/// Everything held about one subscriber: the row and their event trail.
#[derive(Debug, Clone)]
pub struct SubscriberRecord {
    pub subscriber: Subscriber,
    /// A JSON array of `{at, kind, source, ip, user_agent, detail}`, oldest first.
    pub events: String,
}

/// What [`Store::add_subscriber`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added {
        id: i64,
    },
    /// The address (in any letter case) is already on the list; nothing changed.
    AlreadyPresent {
        status: SubscriberStatus,
    },
    /// The address was erased at its owner's request and is not added back.
    Erased,
}

/// What [`Store::import_subscriber_batch`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows inserted. The others were duplicates or erased.
    pub inserted: u64,
    /// Indices (into the batch) of rows whose address is on the erasure list.
    pub erased: Vec<usize>,
}

/// What [`Store::change_subscriber_status`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    NotFound,
    Unchanged,
    Changed { from: SubscriberStatus },
}

delegate! {
    /// Adds one subscriber, unless the address is already held (in any case) or was erased.
    /// A new subscriber gets a `subscribe` event.
    #[tracing::instrument(skip_all, fields(email = %new.email.masked()))]
    pub async fn add_subscriber(
        &self,
        new: &NewSubscriber,
        erased_hash: &AddressHash,
        source: &str,
    ) -> Result<AddOutcome, StoreError>;

    /// Inserts a batch of imported subscribers in one transaction, with multi-row `INSERT`s.
    ///
    /// Rows whose address is already held (in any letter case, including earlier rows of the
    /// same batch) are skipped, and existing subscribers are never modified, so an address
    /// that unsubscribed, bounced or complained stays that way. Rows on the erasure list are
    /// skipped and reported. Each inserted subscriber gets a `subscribe` event.
    #[tracing::instrument(skip_all, fields(rows = rows.len()))]
    pub async fn import_subscriber_batch(
        &self,
        rows: &[NewSubscriber],
        erasure: &ErasureKey,
        source: &str,
    ) -> Result<BatchOutcome, StoreError>;

    /// Appends the summary event of a finished import run.
    pub async fn record_import_run(
        &self,
        imported: u64,
        duplicates: u64,
        rejected: u64,
        source: &str,
    ) -> Result<(), StoreError>;

    /// The subscriber with this address, compared case-insensitively.
    pub async fn find_subscriber_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Subscriber>, StoreError>;

    /// How many subscribers have each status (statuses with none are left out).
    pub async fn count_subscribers_by_status(
        &self,
    ) -> Result<Vec<(SubscriberStatus, i64)>, StoreError>;

    /// Moves a subscriber to status `to` and appends the matching event (`unsubscribe`,
    /// `bounce`, `complain`, `confirm` or `status_change`) with the previous status.
    #[tracing::instrument(skip_all, fields(email = %email.masked(), to = %to))]
    pub async fn change_subscriber_status(
        &self,
        email: &EmailAddress,
        to: SubscriberStatus,
        source: &str,
    ) -> Result<StatusChange, StoreError>;

    /// The subscriber with this id.
    pub async fn find_subscriber_by_id(&self, id: i64) -> Result<Option<Subscriber>, StoreError>;

    /// The subscriber's own request to stop (a web unsubscribe link): moves subscriber `id`
    /// to `unsubscribed` and appends an `unsubscribe` event carrying the request's IP and
    /// user agent, and the issue whose link it was (`issue_id`, when the link names one), so
    /// unsubscribes are counted per issue. A subscriber already opted out (unsubscribed,
    /// bounced or complained) is left as is, so a repeat is a no-op.
    #[tracing::instrument(skip_all, fields(subscriber_id = id))]
    pub async fn unsubscribe_subscriber_by_id(
        &self,
        id: i64,
        issue_id: Option<i64>,
        source: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<StatusChange, StoreError>;

    /// Erases a subscriber: deletes their row and deliveries, strips the IP, user agent and
    /// detail from their events (which stay, unlinked, as a count of what happened), records
    /// the keyed hash of the address so no import adds it back, and appends an `erase`
    /// event that names no one. Returns whether a subscriber was held; the hash is recorded
    /// either way.
    #[tracing::instrument(skip_all, fields(email = %email.masked()))]
    pub async fn erase_subscriber(
        &self,
        email: &EmailAddress,
        hash: &AddressHash,
        source: &str,
    ) -> Result<bool, StoreError>;

    /// Whether this address hash is on the erasure list.
    pub async fn is_address_erased(&self, hash: &AddressHash) -> Result<bool, StoreError>;
}
