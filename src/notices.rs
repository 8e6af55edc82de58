//! The notice worker of `herald serve`: it sends the confirmation and welcome mails queued
//! in the `notices` table by sign-ups and confirmations.
//!
//! Nothing is fire-and-forget. A sign-up commits its notice row with the subscriber; the
//! worker claims due rows under a lease, composes each mail (rendered once, see
//! [`render::notice`]), hands it to the app's [`Transport`](crate::mail::Transport), and
//! records what happened with the delivery ledger's rules ([`policy::decide`]): a 2xx reply
//! is `sent`; a 4xx, a timeout or a lost connection is retried with backoff (a throttling
//! reply waits a few seconds without counting an attempt); a 5xx is
//! `failed`; a relay that cannot be reached hands the rows back without counting an attempt
//! and the worker waits (1 s, doubling up to 30 s) before trying again. A crash leaves rows
//! `sending` under a lease that expires, and they are taken back. The worker wakes when a
//! commit queues a notice ([`App::notice_wake`]), so a confirmation goes out at once.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use tokio::sync::watch;

use crate::config::NewsletterSettings;
use crate::dispatch::policy::{decide, Decision};
use crate::dispatch::unix_now;
use crate::domain::SubscriberStatus;
use crate::links::Links;
use crate::mail::{MailRecipient, SendOutcome};
use crate::render::{self, NoticeKind, RenderError, RenderedNotice, Templates};
use crate::startup::App;
use crate::store::{NoticeClaim, NoticeOutcome, OutcomeKind};

/// Notices claimed at once.
const BATCH: u32 = 64;
/// The longest sleep when nothing is due, so expired leases are noticed.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// The first wait after the relay could not be reached; it doubles up to [`RELAY_PAUSE_MAX`].
const RELAY_PAUSE_MIN: Duration = Duration::from_secs(1);
const RELAY_PAUSE_MAX: Duration = Duration::from_secs(30);
/// How long a notice waits after a throttling reply (421, "rate limited"), without counting
/// an attempt.
const THROTTLED_NOTICE_WAIT_SECONDS: i64 = 15;

/// The notice mails, rendered once at start-up.
#[derive(Debug, Clone)]
pub struct Notices {
    pub confirm: Arc<RenderedNotice>,
    /// `None` when no `welcome.mjml` is in the templates folder: no welcome mail is sent.
    pub welcome: Option<Arc<RenderedNotice>>,
}

impl Notices {
    /// Renders both notices from the templates; a broken template fails here, at start-up.
    pub fn render(
        templates: &Templates,
        newsletter: &NewsletterSettings,
        links: &Links,
    ) -> Result<Self, RenderError> {
        let confirm = render::notice::notice(NoticeKind::Confirm, templates, newsletter, links)?
            .expect("the confirmation mail always has a template");
        let welcome = render::notice::notice(NoticeKind::Welcome, templates, newsletter, links)?;
        Ok(Self {
            confirm: Arc::new(confirm),
            welcome: welcome.map(Arc::new),
        })
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Nothing was due.
    Idle,
    /// This many notices were handled.
    Handled(usize),
    /// The relay could not be reached; the rows were handed back.
    RelayDown,
}

/// Runs until `shutdown` turns true; the batch in flight finishes first.
pub async fn run(app: &App, mut shutdown: watch::Receiver<bool>) {
    let token: i64 = rand::thread_rng().gen_range(1..i64::MAX);
    let mut relay_pause = RELAY_PAUSE_MIN;
    tracing::info!("notice worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let wait = match pass(app, token, &shutdown).await {
            Ok(Pass::Handled(_)) => {
                relay_pause = RELAY_PAUSE_MIN;
                continue;
            }
            Ok(Pass::Idle) => match app.store.next_notice_due_at().await {
                Ok(Some(due)) => {
                    Duration::from_secs(u64::try_from(due - unix_now()).unwrap_or(0).max(1))
                        .min(MAX_IDLE)
                }
                Ok(None) => MAX_IDLE,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the notice queue");
                    RELAY_PAUSE_MAX
                }
            },
            Ok(Pass::RelayDown) => {
                let wait = relay_pause;
                relay_pause = (relay_pause * 2).min(RELAY_PAUSE_MAX);
                wait
            }
            Err(e) => {
                tracing::error!(error = %e, "the notice queue failed");
                RELAY_PAUSE_MAX
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = app.notice_wake.notified() => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::info!("notice worker stopped");
}

/// Claims what is due, sends it (at most the transport's connection count at once) and
/// records every outcome in one transaction.
pub async fn pass(
    app: &App,
    token: i64,
    shutdown: &watch::Receiver<bool>,
) -> Result<Pass, crate::store::StoreError> {
    let now = unix_now();
    let lease = i64::try_from(app.settings.sending.lease_seconds.max(2)).unwrap_or(60);
    let claims = app
        .store
        .claim_notices(token, now + lease, BATCH, now)
        .await?;
    if claims.is_empty() {
        return Ok(Pass::Idle);
    }
    let in_flight = app
        .transport
        .max_in_flight()
        .unwrap_or(app.settings.sending.concurrency)
        .max(1) as usize;
    let handled = claims.len();
    let results: Vec<(NoticeOutcome, bool)> = futures::stream::iter(claims)
        .map(|claim| attempt(app, claim, shutdown))
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let relay_down = results.iter().any(|(_, down)| *down);
    let outcomes: Vec<NoticeOutcome> = results.into_iter().map(|(o, _)| o).collect();
    app.store.record_notice_outcomes(token, &outcomes).await?;
    Ok(if relay_down {
        Pass::RelayDown
    } else {
        Pass::Handled(handled)
    })
}

/// One notice: check it is still wanted, compose, send, decide. The flag is set when the
/// relay could not be reached.
async fn attempt(
    app: &App,
    claim: NoticeClaim,
    shutdown: &watch::Receiver<bool>,
) -> (NoticeOutcome, bool) {
    let id = claim.id;
    let record = |kind| NoticeOutcome { id, kind };
    if *shutdown.borrow() {
        return (record(OutcomeKind::Release), false);
    }
    let notice = match (NoticeKind::parse(&claim.kind), claim.status) {
        // A bounced or complained subscriber who signed up again gets the confirmation too:
        // following it is their own new opt-in.
        (
            Some(NoticeKind::Confirm),
            SubscriberStatus::Pending | SubscriberStatus::Bounced | SubscriberStatus::Complained,
        ) => app.notices.confirm.clone(),
        (Some(NoticeKind::Welcome), SubscriberStatus::Active) => match &app.notices.welcome {
            Some(welcome) => welcome.clone(),
            None => return (record(OutcomeKind::Skipped), false),
        },
        // Confirmed, unsubscribed or bounced since it was queued: no longer wanted.
        _ => return (record(OutcomeKind::Skipped), false),
    };
    let recipient = match MailRecipient::from_stored(
        claim.subscriber_id,
        &claim.email,
        claim.name.as_deref(),
    ) {
        Ok(r) => r,
        Err(reply) => {
            let failed = OutcomeKind::Failed {
                reply,
                permanent: true,
                bounce: false,
            };
            return (record(failed), false);
        }
    };
    let now = unix_now();
    let mail = match app.composer.compose_notice(&notice, &recipient, now) {
        Ok(mail) => mail,
        Err(e) => {
            let failed = OutcomeKind::Failed {
                reply: format!("herald could not build the message: {e}"),
                permanent: false,
                bounce: false,
            };
            return (record(failed), false);
        }
    };
    let outcome = app.transport.send(&mail).await;
    match &outcome {
        SendOutcome::Accepted { .. } => tracing::info!(
            to = %recipient.email.masked(),
            kind = claim.kind,
            message_id = mail.message_id(),
            "notice sent"
        ),
        other => tracing::info!(
            to = %recipient.email.masked(),
            kind = claim.kind,
            outcome = %other.summary(),
            "notice not sent"
        ),
    }
    match decide(
        outcome,
        mail.message_id(),
        claim.attempts,
        claim.queued_at,
        unix_now(),
        &app.settings.sending,
    ) {
        Decision::Record(kind) => (record(kind), false),
        // A notice is one message, not a stream: it waits a little and costs no attempt.
        Decision::Throttle { reply } => (
            record(OutcomeKind::Defer {
                reply: Some(reply),
                next_attempt_at: unix_now() + THROTTLED_NOTICE_WAIT_SECONDS,
            }),
            false,
        ),
        Decision::Pause { reason } => {
            tracing::warn!(%reason, "the relay is unusable; notices wait");
            (record(OutcomeKind::Release), true)
        }
    }
}
