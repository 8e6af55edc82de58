//! The sign-up flow's writes: recording sign-ups (pending subscriber, consent event and
//! confirmation notice together) and confirming. A reader resubscribing from an unsubscribe
//! link is a sign-up too. The queries are in `shared/signup.rs`.

use super::{delegate, Store, StoreError};
use crate::domain::{EmailAddress, SubscriberName, SubscriberStatus};

/// How long after a confirmation mail was queued for an address no other one is queued.
pub const CONFIRM_RESEND_SECONDS: i64 = 10 * 60;

/// One sign-up from the web form or the JSON API, parsed.
#[derive(Debug, Clone)]
pub struct NewSignup {
    pub email: EmailAddress,
    pub name: Option<SubscriberName>,
    /// The consent wording the reader saw (`newsletter.consent`).
    pub consent: String,
    /// The client's IP and user agent: the consent record.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `form` or `json`.
    pub via: &'static str,
}

/// What [`Store::record_signups`] did with one sign-up. Never shown to the client: the
/// answer is the same whatever happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupOutcome {
    /// A new or re-consenting subscriber, now `pending`, with a confirmation mail queued.
    Queued { subscriber_id: i64 },
    /// Still `pending` and a confirmation mail was queued less than ten minutes ago: the
    /// consent is recorded, no other mail is queued.
    Throttled { subscriber_id: i64 },
    /// Already `active`: the request is recorded (a `subscribe` event and a `skipped`
    /// notice: the same writes and commit as any other sign-up, so its timing tells
    /// nothing); the subscriber is left as it is and no mail is sent.
    Ignored,
}

/// What [`Store::confirm_subscriber`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// `pending` became `active` (and the welcome mail was queued when asked).
    Confirmed,
    /// Already `active`: nothing changed.
    AlreadyActive,
    /// Not pending (unsubscribed, bounced or complained since): nothing changed.
    NotPending(SubscriberStatus),
    /// No such subscriber (erased).
    NotFound,
}

delegate! {
    /// Records a group of sign-ups in ONE transaction (one fsync for the group): for each,
    /// the subscriber (new ones `pending`), a `subscribe` event with the IP, user agent and
    /// form values (the consent record), and a queued confirmation notice, unless one was
    /// queued for that address in the last [`CONFIRM_RESEND_SECONDS`] (on any node).
    ///
    /// - a new address becomes `pending`, with a confirmation mail;
    /// - a `pending` one gets the consent event, and a mail unless one is recent;
    /// - an `unsubscribed` one goes back to `pending` (a new opt-in that must be confirmed
    ///   again before any issue is sent), with a mail unless one is recent;
    /// - a `bounced` or `complained` one keeps that status, gets the consent event and a
    ///   confirmation mail: only confirming it (their own new double opt-in) brings them back;
    /// - an `active` one gets the event (with its status unchanged) and nothing else.
    ///
    /// A sign-up that queues no mail (active, or a mail queued recently) records a
    /// `skipped` notice row instead, which is never sent.
    ///
    /// Every path writes and commits, so how long a sign-up takes does not tell whether the
    /// address was already known.
    #[tracing::instrument(skip_all, fields(signups = signups.len()))]
    pub async fn record_signups(
        &self,
        signups: &[NewSignup],
        now: i64,
    ) -> Result<Vec<SignupOutcome>, StoreError>;

    /// Confirms subscriber `id` (double opt-in): `pending` becomes `active` (and so does a
    /// `bounced` or `complained` one that signed up again since it left), with a
    /// `confirm` event carrying the request's IP and user agent, and, when `welcome` is set,
    /// a queued welcome notice, all in one transaction. Any other status is left alone.
    #[tracing::instrument(skip_all, fields(subscriber_id = id))]
    pub async fn confirm_subscriber(
        &self,
        id: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
        welcome: bool,
        now: i64,
    ) -> Result<ConfirmOutcome, StoreError>;

}
