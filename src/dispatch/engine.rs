//! The send loop: claim a batch under a lease, send each row under the concurrency and rate
//! limits, and write outcomes back in group commits.
//!
//! Four tasks cooperate during [`Dispatcher::run`]:
//! - the claim loop (this task): takes up to `batch_size` due rows and gives each its turn
//!   from the [`Pacer`] (its destination group's and its relay's pace): a row whose turn is
//!   now gets a send task as a concurrency permit frees up, a row whose turn is a moment
//!   away waits for it in a task of its own, and a row whose turn is further off goes back
//!   to the ledger, due then, without counting an attempt. Once half of a full batch is
//!   under way, the next batch is claimed in the background, so the connections never wait
//!   for a claim (a run holds at most two batches). When nothing is due, it decides whether
//!   to wait, stop, or finish;
//! - the writer: gathers outcomes for a few milliseconds, until about [`GROUP_TARGET`] have
//!   come (or up to [`GROUP_MAX`]), and commits them in one transaction, so the ledger costs
//!   one fsync per group, not per message;
//! - the [`Checker`]: answers each send task's last question (is the lease still ours, is
//!   the subscriber still active?) from reads that cover the rows about to go out;
//! - the heartbeat: renews this run's leases while rows are in flight, so a slow relay does
//!   not let another dispatcher take them, while a crashed run's rows come back within
//!   `sending.lease_seconds`.
//!
//! The concurrency permits belong to the [`Dispatcher`], not to a run: several issues sent
//! at once (as `herald serve` does) take turns at them, first come first served, so each
//! gets a fair share of the connections.
//!
//! # When the database misbehaves
//!
//! - Every claim has a lease token of its own ([`LeaseTokens`]); a run renews all of its
//!   tokens at once, and takes back expired leases ([`Store::reclaim_expired_leases`]) only
//!   while it holds no row itself, so it never takes back, and sends again, a row it still
//!   has in flight.
//! - Just before sending, each row is checked (by the run's [`Checker`], from a reading at
//!   most [`FRESH`](super::checker::FRESH) old that covered the rows about to go out): a
//!   row whose lease ran out (a write lock held elsewhere kept the heartbeat from renewing
//!   it) is handed back, not sent, and whoever claims it next sends it once. A row whose
//!   subscriber left meanwhile is skipped.
//! - A send task reserves its place in the writer's queue before it sends: when the writer
//!   has stopped (outcomes cannot be written), nothing more goes out, and the run ends with
//!   the writer's error. What can go out unrecorded is bounded by what was in flight.
//! - When the heartbeat cannot renew the leases, the run stops claiming, lets what is in
//!   flight finish, and ends with an error unless a renewal then succeeds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

use super::checker::Checker;
use super::pacing::{Pacer, ThrottledGroup, Turn, HORIZON};
use super::policy::{decide, Decision};
use super::{unix_now, DispatchError};
use crate::config::SendingSettings;
use crate::mail::{Composer, IssueMail, MailKind, MailRecipient, SendOutcome, Transport};
use crate::rate::RateLimit;
use crate::store::{Claim, ClaimCheck, DeliveryCounts, Outcome, OutcomeKind, Store};

/// The most outcomes committed in one transaction.
pub const GROUP_MAX: usize = 1000;
/// How many outcomes the writer gathers into a group when they come in fast enough: a
/// group's cost (a round trip, a transaction, an fsync) is shared by about as many
/// messages however fast this node sends, so a node that sends a third of an issue, beside
/// two others, pays no more per message than one that sends all of it.
const GROUP_TARGET: usize = 100;
/// How long the writer gathers a group once it has one outcome: at least the shorter time,
/// then until the group reaches [`GROUP_TARGET`], for at most the longer one.
const GROUP_WINDOW: (Duration, Duration) = (Duration::from_millis(25), Duration::from_millis(150));
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Rows in the ledger for this issue.
    pub total: u64,
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Destination groups slowed down by throttling replies, slowest first.
    pub throttled: Vec<ThrottledGroup>,
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
            throttled: Vec::new(),
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

/// Sends issues: owns the transport, the composer and the pacing. One dispatcher can run
/// several issues at once; they share its concurrency permits.
pub struct Dispatcher {
    store: Store,
    transport: Arc<Transport>,
    composer: Arc<Composer>,
    pacer: Arc<Pacer>,
    settings: SendingSettings,
    limiter: Option<Arc<RateLimit>>,
    /// Messages in flight, across every run of this dispatcher.
    permits: Arc<Semaphore>,
    in_flight_limit: u32,
}

/// State shared by the send tasks of one run.
struct RunShared {
    job: Job,
    transport: Arc<Transport>,
    composer: Arc<Composer>,
    pacer: Arc<Pacer>,
    settings: SendingSettings,
    limiter: Option<Arc<RateLimit>>,
    /// Set by the first send that finds the relay down; later sends hand their rows back.
    pause: Mutex<Option<String>>,
    paused: AtomicBool,
    shutdown: watch::Receiver<bool>,
    outcomes: mpsc::Sender<WriterMessage>,
    /// Checks each row just before it goes out.
    checker: Checker,
}

/// Why the heartbeat could not renew the leases, while it cannot.
type LeaseTrouble = Arc<Mutex<Option<String>>>;

/// The lease tokens of one run: a random base with room for 2^32 claims, so every claim
/// gets a token of its own and the heartbeat renews them all with one range.
#[derive(Debug)]
pub struct LeaseTokens {
    base: i64,
    next: i64,
}

impl LeaseTokens {
    const CLAIMS: i64 = 1 << 32;

    /// A fresh range, chosen at random (two runs share one with odds of 1 in 2^30).
    pub fn new() -> Self {
        let base = rand::thread_rng().gen_range(1..(1i64 << 30)) * Self::CLAIMS;
        Self { base, next: 0 }
    }

    /// The token for the next claim. After 2^32 claims the range starts over.
    pub fn next_token(&mut self) -> i64 {
        let token = self.base + self.next;
        self.next = (self.next + 1) % Self::CLAIMS;
        token
    }

    /// Every token this run can hand out.
    pub fn range(&self) -> std::ops::RangeInclusive<i64> {
        self.base..=self.base + (Self::CLAIMS - 1)
    }
}

impl Default for LeaseTokens {
    fn default() -> Self {
        Self::new()
    }
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
        pacer: Arc<Pacer>,
        settings: SendingSettings,
    ) -> Self {
        let limiter = std::num::NonZeroU32::new(settings.rate_per_second)
            .map(|rate| Arc::new(RateLimit::per_second(rate)));
        let in_flight_limit = match transport.max_in_flight() {
            Some(cap) => settings.concurrency.min(cap),
            None => settings.concurrency,
        }
        .max(1);
        Self {
            store,
            transport,
            composer,
            pacer,
            settings,
            limiter,
            permits: Arc::new(Semaphore::new(in_flight_limit as usize)),
            in_flight_limit,
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
        let mut tokens = LeaseTokens::new();
        let lease = i64::try_from(self.settings.lease_seconds.max(2)).unwrap_or(60);
        let start = Progress::from_counts(&self.store.delivery_counts(issue_id).await?);
        progress.send_replace(start.clone());

        let in_flight_limit = self.in_flight_limit;
        // A small queue to the writer. A send task reserves its place in it before sending,
        // so a message goes out only while its outcome can be handed to the writer, and the
        // outcomes accepted but not yet committed stay within this queue (twice the
        // in-flight limit: the rows in flight and as many waiting) and the group being
        // committed (the duplicates a crash can cause).
        let (tx, rx) = mpsc::channel(2 * in_flight_limit as usize);
        // The writer and the heartbeat take turns at this run's rows: on PostgreSQL a group
        // commit and a renewal that lock the same rows in different orders deadlock, and
        // the server then stalls both for a second before failing one.
        let own_rows = Arc::new(tokio::sync::Mutex::new(()));
        let mut writer = tokio::spawn(write_outcomes(
            self.store.clone(),
            self.pacer.clone(),
            issue_id,
            rx,
            progress,
            start,
            own_rows.clone(),
        ));
        // Reads a few times the rows in flight ahead of their turn (see `checker`).
        let checker = Checker::start(self.store.clone(), issue_id, 4 * in_flight_limit as usize);
        let shared = Arc::new(RunShared {
            job,
            transport: self.transport.clone(),
            composer: self.composer.clone(),
            pacer: self.pacer.clone(),
            settings: self.settings.clone(),
            limiter: self.limiter.clone(),
            pause: Mutex::new(None),
            paused: AtomicBool::new(false),
            shutdown: shutdown.clone(),
            outcomes: tx.clone(),
            checker,
        });
        let lease_trouble = LeaseTrouble::default();
        let heartbeat = tokio::spawn(renew_leases(
            self.store.clone(),
            lease_trouble.clone(),
            issue_id,
            tokens.range(),
            lease,
            own_rows,
        ));
        let permits = self.permits.clone();
        // Rows waiting in memory for a turn a moment away.
        let waiting_capacity = self.settings.batch_size.max(in_flight_limit);
        let waiting = Arc::new(Semaphore::new(waiting_capacity as usize));
        let mut in_flight = JoinSet::new();
        // Smaller while the run is held back by pacing, so it does not claim rows only to
        // send them back (see below).
        let mut claim_size = self.settings.batch_size;
        // The next batch, when it is claimed while the current one goes out.
        let mut prefetched: Option<tokio::task::JoinHandle<ClaimedBatch>> = None;

        let result = async {
            // Rows a run that stopped mid-send left behind. Taken back only here and while
            // this run holds nothing, so it never takes back a row it still has in flight.
            self.reclaim(unix_now()).await?;
            let end = loop {
                if *shutdown.borrow() {
                    break RunEnd::Interrupted;
                }
                if let Some(reason) = shared.pause.lock().expect("pause lock").clone() {
                    break RunEnd::Paused { reason };
                }
                if tx.is_closed() {
                    // The writer stopped: its error ends the run below.
                    break RunEnd::Interrupted;
                }
                let trouble = lease_trouble.lock().expect("lease lock").clone();
                if let Some(reason) = trouble {
                    // Claim nothing more; let what is in flight finish (rows whose lease
                    // ran out are handed back unsent), then renew once more or stop.
                    while in_flight.join_next().await.is_some() {}
                    flush(&tx).await;
                    let renewed = self
                        .store
                        .renew_leases(issue_id, tokens.range(), unix_now() + lease)
                        .await;
                    if renewed.is_err() {
                        return Err(DispatchError::Leases(reason));
                    }
                    *lease_trouble.lock().expect("lease lock") = None;
                }
                let (token, claims) = match prefetched.take() {
                    Some(next) => next.await.map_err(|e| DispatchError::Claimer(e.to_string()))??,
                    None => claim_batch(&self.store, issue_id, tokens.next_token(), lease, claim_size)
                        .await?,
                };
                if claims.is_empty() {
                    // Everything claimed so far must be on disk before deciding what is left.
                    while in_flight.join_next().await.is_some() {}
                    flush(&tx).await;
                    if shared.paused.load(Ordering::SeqCst) || tx.is_closed() {
                        continue;
                    }
                    if self.reclaim(unix_now()).await? > 0 {
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
                shared
                    .checker
                    .claimed(token, claims.iter().map(|c| c.subscriber_id))
                    .await;
                let claimed = claims.len() as u32;
                let (mut now_rows, mut deferred) = (0u32, 0u32);
                // Once half of a full batch is under way, and it is not held back by pacing,
                // the next batch is claimed while the rest goes out: the connections do not
                // wait for the claim.
                let prefetch_at = (claimed == claim_size).then_some(claimed / 2);
                let mut claims = claims.into_iter().enumerate();
                while let Some((index, claim)) = claims.next() {
                    if prefetch_at == Some(index as u32)
                        && deferred * 2 <= index as u32
                        && !shared.paused.load(Ordering::SeqCst)
                    {
                        let (store, token) = (self.store.clone(), tokens.next_token());
                        prefetched = Some(tokio::spawn(async move {
                            claim_batch(&store, issue_id, token, lease, claim_size).await
                        }));
                    }
                    let domain = claim
                        .email
                        .rsplit_once('@')
                        .map_or(String::new(), |(_, d)| d.to_ascii_lowercase());
                    let group = self.pacer.group_of(&domain);
                    let relay = self.transport.relay_for(&domain, MailKind::Issue);
                    let epoch = self.pacer.epoch(&group);
                    let at = match self.pacer.reserve(&group, relay, Instant::now()) {
                        Turn::At(at) => at,
                        Turn::Defer(wait) => {
                            deferred += 1;
                            // Too far off: back to the ledger, due at its turn.
                            let _ = tx.send(deferred_until_turn(&claim, token, wait)).await;
                            continue;
                        }
                    };
                    // Finished tasks stay in the set until joined: reap them as we go, so
                    // memory stays flat however many rows a run sends.
                    while in_flight.try_join_next().is_some() {}
                    let shared = shared.clone();
                    if at <= Instant::now() {
                        now_rows += 1;
                        let permit = tokio::select! {
                            permit = permits.clone().acquire_owned() => permit.expect("semaphore open"),
                            _ = stopped(&mut shutdown) => {
                                // Hand back this row and the rest of the batch.
                                release(&tx, token, std::iter::once(claim).chain(claims.by_ref().map(|(_, c)| c))).await;
                                break;
                            }
                        };
                        in_flight.spawn(send_one(shared, token, claim, group, permit));
                        continue;
                    }
                    let hold = tokio::select! {
                        hold = waiting.clone().acquire_owned() => hold.expect("semaphore open"),
                        _ = stopped(&mut shutdown) => {
                            release(&tx, token, std::iter::once(claim).chain(claims.by_ref().map(|(_, c)| c))).await;
                            break;
                        }
                    };
                    let permits = permits.clone();
                    in_flight.spawn(async move {
                        let mut shutdown = shared.shutdown.clone();
                        let turn = wait_for_turn(&shared, &group, relay, epoch, at);
                        let turn = tokio::select! {
                            turn = turn => turn,
                            _ = stopped(&mut shutdown) => {
                                release(&shared.outcomes, token, std::iter::once(claim)).await;
                                return;
                            }
                        };
                        if let Some(wait) = turn {
                            // Slowed down meanwhile, and the new turn is too far off.
                            let message = deferred_until_turn(&claim, token, wait);
                            let _ = shared.outcomes.send(message).await;
                            return;
                        }
                        let permit = tokio::select! {
                            permit = permits.acquire_owned() => permit.expect("semaphore open"),
                            _ = stopped(&mut shutdown) => {
                                release(&shared.outcomes, token, std::iter::once(claim)).await;
                                return;
                            }
                        };
                        drop(hold);
                        send_one(shared, token, claim, group, permit).await;
                    });
                }
                // A run held back by pacing (most of the batch sent back, too few rows to go
                // now to fill the connections) claims what its turns can take, and only once
                // the rows it kept have had them: otherwise it would claim and send back the
                // whole list over and over.
                let paced = deferred * 2 > claimed && now_rows < in_flight_limit;
                if paced {
                    let kept = claimed - deferred;
                    claim_size = (kept * 2).clamp(16, self.settings.batch_size.max(16));
                    let all = waiting_capacity;
                    tokio::select! {
                        _ = async {
                            if kept == 0 {
                                tokio::time::sleep(HORIZON).await;
                            }
                            let _ = waiting.clone().acquire_many_owned(all).await;
                        } => {}
                        _ = stopped(&mut shutdown) => {}
                    }
                } else {
                    claim_size = self.settings.batch_size;
                }
            };
            Ok(end)
        }
        .await;

        // A batch claimed ahead but never started goes back to the ledger as it was.
        if let Some(next) = prefetched.take() {
            if let Ok(Ok((token, claims))) = next.await {
                release(&tx, token, claims.into_iter()).await;
            }
        }
        while in_flight.join_next().await.is_some() {}
        drop(shared);
        drop(tx);
        heartbeat.abort();
        // The writer's error explains a run that ended because it stopped.
        let written = (&mut writer)
            .await
            .map_err(|e| DispatchError::Writer(e.to_string()))
            .and_then(|r| r);
        match (result, written) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(end), Ok(())) => Ok(end),
        }
    }

    /// Takes back rows whose lease expired (see [`Store::reclaim_expired_leases`]).
    async fn reclaim(&self, now: i64) -> Result<u64, DispatchError> {
        let reclaimed = self.store.reclaim_expired_leases(now).await?;
        if reclaimed > 0 {
            tracing::warn!(
                reclaimed,
                "took back rows whose lease expired (a run stopped mid-send)"
            );
        }
        Ok(reclaimed)
    }
}

/// A claimed batch: its lease token and its rows.
type ClaimedBatch = Result<(i64, Vec<Claim>), DispatchError>;

/// Claims up to `size` due rows of the issue under a new lease of `lease` seconds, as
/// `token`'s.
async fn claim_batch(
    store: &Store,
    issue_id: i64,
    token: i64,
    lease: i64,
    size: u32,
) -> ClaimedBatch {
    let now = unix_now();
    let claims = store
        .claim_deliveries(issue_id, token, now + lease, size, now)
        .await?;
    Ok((token, claims))
}

/// Sends one row whose turn has come, holding a concurrency permit, and hands its outcome
/// to the writer.
async fn send_one(
    shared: Arc<RunShared>,
    token: i64,
    claim: Claim,
    group: String,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    // No place for the outcome means the writer has stopped: send nothing.
    if let Ok(slot) = shared.outcomes.reserve().await {
        let outcome = attempt(&shared, token, claim, &group).await;
        slot.send(WriterMessage::Outcome(outcome));
    }
    drop(permit);
}

/// Sleeps until the row's turn. When its group was slowed down meanwhile (the turn was
/// given at the old pace), takes a new turn and waits for that one. `Some(wait)`: the new
/// turn is too far off, and the row goes back to the ledger for that long.
async fn wait_for_turn(
    shared: &RunShared,
    group: &str,
    relay: usize,
    mut epoch: u64,
    mut at: Instant,
) -> Option<Duration> {
    loop {
        tokio::time::sleep_until(at.into()).await;
        let now_epoch = shared.pacer.epoch(group);
        if now_epoch == epoch {
            return None;
        }
        epoch = now_epoch;
        match shared.pacer.reserve(group, relay, Instant::now()) {
            Turn::At(next) => at = next,
            Turn::Defer(wait) => return Some(wait),
        }
    }
}

/// A row whose turn is `wait` away, handed back to the ledger due then, without an attempt.
fn deferred_until_turn(claim: &Claim, lease_token: i64, wait: Duration) -> WriterMessage {
    WriterMessage::Outcome(Outcome {
        subscriber_id: claim.subscriber_id,
        lease_token,
        kind: OutcomeKind::Defer {
            reply: None,
            next_attempt_at: unix_now() + whole_seconds(wait),
        },
    })
}

/// Whole seconds, at least one: the ledger keeps due times in seconds. Rounded down, so a
/// row comes back a little before its turn and waits the rest in memory.
fn whole_seconds(wait: Duration) -> i64 {
    i64::try_from(wait.as_secs()).unwrap_or(i64::MAX).max(1)
}

/// One row: compose, pace, check it is still ours, send, decide.
async fn attempt(shared: &RunShared, lease_token: i64, claim: Claim, group: &str) -> Outcome {
    let subscriber_id = claim.subscriber_id;
    let record = |kind| Outcome {
        subscriber_id,
        lease_token,
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
    // a bounce) that came in meanwhile, and send nothing whose lease ran out (another run
    // may hold it now).
    let check = shared.checker.check(subscriber_id, lease_token).await;
    match check {
        Ok(ClaimCheck::Held) => {}
        Ok(ClaimCheck::SubscriberLeft) => return record(OutcomeKind::Skipped),
        Ok(ClaimCheck::Lost) => {
            tracing::warn!("a claimed row's lease ran out before it was sent; handing it back");
            return record(OutcomeKind::Release);
        }
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
        Decision::Throttle { reply } => {
            let wait = shared.pacer.throttled(group, Instant::now());
            record(OutcomeKind::Defer {
                reply: Some(reply),
                next_attempt_at: unix_now() + whole_seconds(wait),
            })
        }
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

async fn release(
    tx: &mpsc::Sender<WriterMessage>,
    lease_token: i64,
    claims: impl Iterator<Item = Claim>,
) {
    for claim in claims {
        let outcome = Outcome {
            subscriber_id: claim.subscriber_id,
            lease_token,
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
    pacer: Arc<Pacer>,
    issue_id: i64,
    mut rx: mpsc::Receiver<WriterMessage>,
    progress: watch::Sender<Progress>,
    mut tally: Progress,
    own_rows: Arc<tokio::sync::Mutex<()>>,
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
        let opened = tokio::time::Instant::now();
        let (shortest, longest) = (opened + GROUP_WINDOW.0, opened + GROUP_WINDOW.1);
        while group.len() < GROUP_MAX && waiting.is_empty() {
            let deadline = if group.len() < GROUP_TARGET {
                longest
            } else {
                shortest
            };
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(message)) => take(message, &mut group, &mut waiting),
                _ => break,
            }
        }
        if !group.is_empty() {
            let applied = {
                let _turn = own_rows.lock().await;
                commit(&store, issue_id, &group).await?
            };
            // Only outcomes that changed their row count: one that found its row taken back
            // by another run is that run's to count.
            for (outcome, _) in group.iter().zip(applied).filter(|(_, applied)| *applied) {
                match outcome.kind {
                    OutcomeKind::Sent { .. } => tally.sent += 1,
                    OutcomeKind::Failed { .. } => tally.failed += 1,
                    OutcomeKind::Skipped => tally.skipped += 1,
                    OutcomeKind::Retry { .. }
                    | OutcomeKind::Release
                    | OutcomeKind::Defer { .. } => {}
                }
            }
            tally.throttled = pacer.throttled_groups();
            progress.send_replace(tally.clone());
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
    group: &[Outcome],
) -> Result<Vec<bool>, DispatchError> {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=5 {
        match store.record_outcomes_at(issue_id, group, unix_now()).await {
            Ok(applied) => return Ok(applied),
            Err(e) if attempt < 5 => {
                tracing::warn!(error = %e, attempt, "cannot record outcomes yet; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(source) => {
                return Err(DispatchError::Record {
                    count: group.len(),
                    source,
                })
            }
        }
    }
    unreachable!("the loop returns on its last attempt")
}

/// Extends this run's leases every third of the lease time. A failure is noted in
/// `trouble` (the claim loop stops claiming), a later success clears it.
async fn renew_leases(
    store: Store,
    trouble: LeaseTrouble,
    issue_id: i64,
    tokens: std::ops::RangeInclusive<i64>,
    lease: i64,
    own_rows: Arc<tokio::sync::Mutex<()>>,
) {
    let every = Duration::from_secs(u64::try_from(lease / 3).unwrap_or(1).max(1));
    loop {
        tokio::time::sleep(every).await;
        let renewed = {
            let _turn = own_rows.lock().await;
            store
                .renew_leases(issue_id, tokens.clone(), unix_now() + lease)
                .await
        };
        let mut trouble = trouble.lock().expect("lease lock");
        match renewed {
            Ok(_) => *trouble = None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew leases; claiming nothing more");
                *trouble = Some(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LeaseTokens;

    #[test]
    fn every_claim_of_a_run_gets_a_token_of_its_own_inside_the_run_s_range() {
        let mut tokens = LeaseTokens::new();
        let range = tokens.range();
        let drawn: Vec<i64> = (0..1000).map(|_| tokens.next_token()).collect();
        let distinct: std::collections::HashSet<_> = drawn.iter().collect();
        assert_eq!(distinct.len(), drawn.len());
        assert!(drawn.iter().all(|t| range.contains(t) && *t > 0));
        let other = LeaseTokens::new().range();
        assert!(
            other.end() < range.start() || other.start() > range.end() || other == range,
            "two runs' ranges never overlap in part"
        );
    }
}
