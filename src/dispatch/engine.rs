//! The send loop: claim a batch under a lease, send each row under the concurrency and rate
//! limits, and write outcomes back in group commits.
//!
//! Three tasks cooperate during [`Dispatcher::run`]:
//! - the claim loop (this task): takes up to `batch_size` due rows, spawns one send task per
//!   row as a concurrency permit frees up, and when nothing is due decides whether to wait,
//!   stop, or finish;
//! - the writer: gathers outcomes for a few milliseconds (or up to [`GROUP_MAX`]) and commits
//!   them in one transaction, so the ledger costs one fsync per group, not per message;
//! - the heartbeat: renews this run's leases while rows are in flight, so a slow relay does
//!   not let another dispatcher take them, while a crashed run's rows come back within
//!   `sending.lease_seconds`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

use super::policy::{decide, Decision};
use super::{unix_now, DispatchError};
use crate::config::SendingSettings;
use crate::mail::{Composer, IssueMail, MailRecipient, SendOutcome, Transport};
use crate::store::{Claim, DeliveryCounts, Outcome, OutcomeKind, Store};

/// The most outcomes committed in one transaction.
pub const GROUP_MAX: usize = 1000;
/// How long the writer waits to fill a group once it has one outcome.
const GROUP_WINDOW: Duration = Duration::from_millis(25);
/// How often a waiting run looks for rows that became due (retries, expired leases).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// What one run is sending.
#[derive(Debug, Clone)]
pub struct Job {
    pub issue_id: i64,
    /// Rendered and encoded once; every recipient's copy is cut from it.
    pub mail: Arc<IssueMail>,
}

/// Counts for a progress display, updated after every group commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Rows in the ledger for this issue.
    pub total: u64,
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl Progress {
    /// Rows that need nothing more: sent, failed or skipped.
    pub fn done(&self) -> u64 {
        self.sent + self.failed + self.skipped
    }

    fn from_counts(c: &DeliveryCounts) -> Self {
        Progress {
            total: c.queued + c.sending + c.sent + c.retry + c.failed + c.skipped,
            sent: c.sent,
            failed: c.failed,
            skipped: c.skipped,
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Every row is sent, failed or skipped.
    Finished,
    /// Nothing is due now, but retries are scheduled (only without `wait`).
    Waiting { next_due_at: i64 },
    /// The relay is unusable; rows were handed back without counting an attempt.
    Paused { reason: String },
    /// Shutdown was requested; in-flight messages finished and unsent rows were handed back.
    Interrupted,
}

/// Sends issues: owns the transport, the composer and the pacing.
pub struct Dispatcher {
    store: Store,
    transport: Arc<Transport>,
    composer: Arc<Composer>,
    settings: SendingSettings,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

/// State shared by the send tasks of one run.
struct RunShared {
    job: Job,
    store: Store,
    transport: Arc<Transport>,
    composer: Arc<Composer>,
    settings: SendingSettings,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// Set by the first send that finds the relay down; later sends hand their rows back.
    pause: Mutex<Option<String>>,
    paused: AtomicBool,
    shutdown: watch::Receiver<bool>,
    outcomes: mpsc::Sender<WriterMessage>,
}

enum WriterMessage {
    Outcome(Outcome),
    /// Commit what is buffered, then answer.
    Flush(oneshot::Sender<()>),
}

impl Dispatcher {
    pub fn new(
        store: Store,
        transport: Arc<Transport>,
        composer: Arc<Composer>,
        settings: SendingSettings,
    ) -> Self {
        let limiter = std::num::NonZeroU32::new(settings.rate_per_second)
            .map(|rate| Arc::new(RateLimiter::direct(Quota::per_second(rate))));
        Self {
            store,
            transport,
            composer,
            settings,
            limiter,
        }
    }

    /// Sends every due row of `job.issue_id` until none is left (`wait`: including scheduled
    /// retries), the relay goes down, or `shutdown` turns true. Progress goes to `progress`.
    #[tracing::instrument(skip_all, fields(issue_id = job.issue_id))]
    pub async fn run(
        &self,
        job: Job,
        wait: bool,
        progress: watch::Sender<Progress>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<RunEnd, DispatchError> {
        let issue_id = job.issue_id;
        let token: i64 = rand::thread_rng().gen_range(1..i64::MAX);
        let lease = i64::try_from(self.settings.lease_seconds.max(2)).unwrap_or(60);
        let start = Progress::from_counts(&self.store.delivery_counts(issue_id).await?);
        progress.send_replace(start);

        let in_flight_limit = match self.transport.max_in_flight() {
            Some(cap) => self.settings.concurrency.min(cap),
            None => self.settings.concurrency,
        }
        .max(1);
        // A small queue to the writer: a send task that finds it full waits, holding its
        // permit, so outcomes that are accepted but not yet committed stay within what is in
        // flight, this queue, and the group being committed (the duplicates a crash can cause).
        let (tx, rx) = mpsc::channel(in_flight_limit as usize);
        let writer = tokio::spawn(write_outcomes(
            self.store.clone(),
            issue_id,
            token,
            rx,
            progress,
            start,
        ));
        let heartbeat = tokio::spawn(renew_leases(self.store.clone(), issue_id, token, lease));
        let shared = Arc::new(RunShared {
            job,
            store: self.store.clone(),
            transport: self.transport.clone(),
            composer: self.composer.clone(),
            settings: self.settings.clone(),
            limiter: self.limiter.clone(),
            pause: Mutex::new(None),
            paused: AtomicBool::new(false),
            shutdown: shutdown.clone(),
            outcomes: tx.clone(),
        });
        let permits = Arc::new(Semaphore::new(in_flight_limit as usize));
        let mut in_flight = JoinSet::new();

        let end = loop {
            if *shutdown.borrow() {
                break RunEnd::Interrupted;
            }
            if let Some(reason) = shared.pause.lock().expect("pause lock").clone() {
                break RunEnd::Paused { reason };
            }
            let now = unix_now();
            let reclaimed = self.store.reclaim_expired_leases(now).await?;
            if reclaimed > 0 {
                tracing::warn!(
                    reclaimed,
                    "took back rows whose lease expired (an earlier run stopped mid-send)"
                );
            }
            let claims = self
                .store
                .claim_deliveries(issue_id, token, now + lease, self.settings.batch_size, now)
                .await?;
            if claims.is_empty() {
                // Everything claimed so far must be on disk before deciding what is left.
                while in_flight.join_next().await.is_some() {}
                flush(&tx).await;
                if shared.paused.load(Ordering::SeqCst) {
                    continue;
                }
                match self.store.next_due_at(issue_id).await? {
                    None => {
                        self.store
                            .finish_issue_if_done(issue_id, unix_now())
                            .await?;
                        break RunEnd::Finished;
                    }
                    Some(due) if due <= unix_now() => continue,
                    Some(due) if !wait => break RunEnd::Waiting { next_due_at: due },
                    Some(due) => {
                        let wait_for =
                            Duration::from_secs(u64::try_from(due - unix_now()).unwrap_or(0))
                                .clamp(Duration::from_millis(50), IDLE_POLL);
                        tokio::select! {
                            _ = tokio::time::sleep(wait_for) => {}
                            _ = stopped(&mut shutdown) => {}
                        }
                        continue;
                    }
                }
            }
            let mut claims = claims.into_iter();
            while let Some(claim) = claims.next() {
                let permit = tokio::select! {
                    permit = permits.clone().acquire_owned() => permit.expect("semaphore open"),
                    _ = stopped(&mut shutdown) => {
                        // Hand back this row and the rest of the batch.
                        release(&tx, std::iter::once(claim).chain(claims.by_ref())).await;
                        break;
                    }
                };
                // Finished tasks stay in the set until joined: reap them as we go, so memory
                // stays flat however many rows a run sends.
                while in_flight.try_join_next().is_some() {}
                let shared = shared.clone();
                in_flight.spawn(async move {
                    let outcome = attempt(&shared, claim).await;
                    let _ = shared.outcomes.send(WriterMessage::Outcome(outcome)).await;
                    drop(permit);
                });
            }
        };

        while in_flight.join_next().await.is_some() {}
        drop(shared);
        drop(tx);
        heartbeat.abort();
        writer
            .await
            .map_err(|e| DispatchError::Writer(e.to_string()))??;
        Ok(end)
    }
}

/// One row: compose, pace, send, decide.
async fn attempt(shared: &RunShared, claim: Claim) -> Outcome {
    let subscriber_id = claim.subscriber_id;
    let record = |kind| Outcome {
        subscriber_id,
        kind,
    };
    if shared.paused.load(Ordering::SeqCst) || *shared.shutdown.borrow() {
        return record(OutcomeKind::Release);
    }
    let recipient = match MailRecipient::from_stored(
        claim.subscriber_id,
        &claim.email,
        claim.name.as_deref(),
    ) {
        Ok(r) => r,
        Err(reason) => {
            return record(OutcomeKind::Failed {
                reply: reason,
                permanent: true,
                bounce: false,
            })
        }
    };
    let mail = match shared
        .composer
        .compose_pooled(&shared.job.mail, &recipient)
        .await
    {
        Ok(mail) => mail,
        Err(e) => {
            return record(OutcomeKind::Failed {
                reply: format!("herald could not build the message: {e}"),
                permanent: false,
                bounce: false,
            })
        }
    };
    if let Some(limiter) = &shared.limiter {
        let mut shutdown = shared.shutdown.clone();
        tokio::select! {
            _ = limiter.until_ready() => {}
            _ = stopped(&mut shutdown) => return record(OutcomeKind::Release),
        }
    }
    // The row may have waited for a permit since it was claimed: honour an unsubscribe (or
    // a bounce) that came in meanwhile.
    match shared.store.is_subscriber_active(subscriber_id).await {
        Ok(true) => {}
        Ok(false) => return record(OutcomeKind::Skipped),
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the subscriber; handing the row back");
            return record(OutcomeKind::Release);
        }
    }
    let outcome = shared.transport.send(&mail).await;
    match &outcome {
        SendOutcome::Accepted { .. } => {
            tracing::debug!(to = %recipient.email.masked(), message_id = mail.message_id(), "sent")
        }
        other => {
            tracing::info!(to = %recipient.email.masked(), outcome = %other.summary(), "not sent")
        }
    }
    match decide(
        outcome,
        mail.message_id(),
        claim.attempts,
        claim.queued_at,
        unix_now(),
        &shared.settings,
    ) {
        Decision::Record(kind) => record(kind),
        Decision::Pause { reason } => {
            let mut pause = shared.pause.lock().expect("pause lock");
            if pause.is_none() {
                tracing::error!(%reason, "the relay is unusable; pausing the send");
                *pause = Some(reason);
            }
            shared.paused.store(true, Ordering::SeqCst);
            record(OutcomeKind::Release)
        }
    }
}

/// Resolves once shutdown is requested; never, if nobody can request it any more.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn release(tx: &mpsc::Sender<WriterMessage>, claims: impl Iterator<Item = Claim>) {
    for claim in claims {
        let outcome = Outcome {
            subscriber_id: claim.subscriber_id,
            kind: OutcomeKind::Release,
        };
        let _ = tx.send(WriterMessage::Outcome(outcome)).await;
    }
}

async fn flush(tx: &mpsc::Sender<WriterMessage>) {
    let (done, wait) = oneshot::channel();
    if tx.send(WriterMessage::Flush(done)).await.is_ok() {
        let _ = wait.await;
    }
}

/// The group-commit writer. Ends when every sender is gone and the buffer is written.
async fn write_outcomes(
    store: Store,
    issue_id: i64,
    token: i64,
    mut rx: mpsc::Receiver<WriterMessage>,
    progress: watch::Sender<Progress>,
    mut tally: Progress,
) -> Result<(), DispatchError> {
    let mut group: Vec<Outcome> = Vec::with_capacity(GROUP_MAX);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let take = |message: WriterMessage,
                    group: &mut Vec<Outcome>,
                    waiting: &mut Vec<oneshot::Sender<()>>| match message {
            WriterMessage::Outcome(o) => group.push(o),
            WriterMessage::Flush(done) => waiting.push(done),
        };
        take(first, &mut group, &mut waiting);
        let deadline = tokio::time::Instant::now() + GROUP_WINDOW;
        while group.len() < GROUP_MAX && waiting.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(message)) => take(message, &mut group, &mut waiting),
                _ => break,
            }
        }
        if !group.is_empty() {
            commit(&store, issue_id, token, &group).await?;
            for outcome in &group {
                match outcome.kind {
                    OutcomeKind::Sent { .. } => tally.sent += 1,
                    OutcomeKind::Failed { .. } => tally.failed += 1,
                    OutcomeKind::Skipped => tally.skipped += 1,
                    OutcomeKind::Retry { .. } | OutcomeKind::Release => {}
                }
            }
            progress.send_replace(tally);
            group.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
    Ok(())
}

/// Commits one group, retrying a few times: the outcomes are facts about mail already handed
/// to the relay, and losing them would mean sending it again.
async fn commit(
    store: &Store,
    issue_id: i64,
    token: i64,
    group: &[Outcome],
) -> Result<(), DispatchError> {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=5 {
        match store
            .record_outcomes_at(issue_id, token, group, unix_now())
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 5 => {
                tracing::warn!(error = %e, attempt, "cannot record outcomes yet; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns on its last attempt")
}

/// Extends this run's leases every third of the lease time.
async fn renew_leases(store: Store, issue_id: i64, token: i64, lease: i64) {
    let every = Duration::from_secs(u64::try_from(lease / 3).unwrap_or(1).max(1));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = store
            .renew_leases(issue_id, token, unix_now() + lease)
            .await
        {
            tracing::warn!(error = %e, "cannot renew leases");
        }
    }
}
