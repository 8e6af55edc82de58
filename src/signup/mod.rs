//! The library side of the public sign-up (double opt-in): parsing what a form or JSON body
//! holds into domain types, the per-IP rate limit, and the group-commit writer that makes a
//! sign-up durable before it is acknowledged.
//!
//! # Group commit
//!
//! With `synchronous=FULL`, every SQLite commit waits for the disk. One transaction per
//! sign-up would cap sign-ups at the disk's fsync rate, so [`SignupQueue`] hands every
//! sign-up to one writer task over a channel. The writer takes whatever is waiting (up to
//! [`GROUP_MAX`]), records it in one transaction ([`Store::record_signups`]: subscriber,
//! consent event and confirmation notice), and only after the commit answers each request
//! through its oneshot. While one group is being committed the next one gathers, so the
//! group size follows the load and an idle server answers after a single commit. "Accepted"
//! therefore always means "on disk, with its confirmation mail queued".

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{mpsc, oneshot};

use crate::nodes::Wake;

use crate::dispatch::unix_now;
use crate::domain::{EmailAddress, EmailError, NameError, SubscriberName};
use crate::store::{NewSignup, SignupOutcome, Store};

/// The most sign-ups committed in one transaction.
pub const GROUP_MAX: usize = 512;
/// Sign-ups waiting for the writer before a handler waits for room.
const QUEUE_DEPTH: usize = 4096;
/// How often the WAL is checkpointed while sign-ups stream in.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// How long after a group's answers the notice worker is woken for its confirmation mails.
/// Woken at once, it composed and sent a new address's mail on the same cores while that
/// address's answer was still being written out, which made new addresses answer slower
/// than known ones (measured by tests/signup_timing.rs).
const NOTICE_WAKE_DELAY: Duration = Duration::from_millis(10);
/// Longest user agent kept in the consent record.
const USER_AGENT_MAX: usize = 512;

/// What a sign-up form or JSON body holds, before parsing. Unknown fields are ignored.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct SignupFields {
    pub email: Option<String>,
    pub name: Option<String>,
    /// The honeypot: a field people never see, so only robots fill it in.
    pub website: Option<String>,
}

/// Why a sign-up is refused. Each has a stable `code` for JSON clients and names the field
/// at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignupError {
    #[error("Please enter your email address.")]
    MissingEmail,
    #[error("This does not look like an email address: {0}.")]
    InvalidEmail(EmailError),
    #[error("The name cannot be used: {0}.")]
    InvalidName(NameError),
    #[error("Sign-ups cannot be recorded right now.")]
    Unavailable(String),
}

impl SignupError {
    /// The machine-readable code (`invalid_email`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingEmail | Self::InvalidEmail(_) => "invalid_email",
            Self::InvalidName(_) => "invalid_name",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// The form field the error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingEmail | Self::InvalidEmail(_) => Some("email"),
            Self::InvalidName(_) => Some("name"),
            Self::Unavailable(_) => None,
        }
    }
}

/// Who sent the request: the consent record's IP and user agent, and how (`form`/`json`).
#[derive(Debug, Clone)]
pub struct Requester {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub via: &'static str,
}

/// A parsed sign-up, or a robot's.
#[derive(Debug, Clone)]
pub enum Parsed {
    Signup(NewSignup),
    /// The honeypot was filled in: answer as usual, store nothing.
    Honeypot,
}

/// Parses `fields` into a sign-up carrying `consent` (the wording shown) and the
/// requester's details.
pub fn parse(
    fields: &SignupFields,
    consent: &str,
    requester: &Requester,
) -> Result<Parsed, SignupError> {
    if fields.website.as_deref().is_some_and(|v| !v.is_empty()) {
        return Ok(Parsed::Honeypot);
    }
    let email = match fields.email.as_deref() {
        None => return Err(SignupError::MissingEmail),
        Some(raw) if raw.trim().is_empty() => return Err(SignupError::MissingEmail),
        Some(raw) => EmailAddress::parse(raw).map_err(SignupError::InvalidEmail)?,
    };
    let name = match fields.name.as_deref() {
        Some(raw) => SubscriberName::parse(raw).map_err(SignupError::InvalidName)?,
        None => None,
    };
    Ok(Parsed::Signup(NewSignup {
        email,
        name,
        consent: consent.to_string(),
        ip: requester.ip.map(|ip| ip.to_string()),
        user_agent: requester.user_agent.as_deref().map(|ua| {
            ua.chars()
                .filter(|c| !c.is_control())
                .take(USER_AGENT_MAX)
                .collect()
        }),
        via: requester.via,
    }))
}

/// A keyed rate limit on sign-ups per client IP (`web.signup_per_ip_per_minute`).
pub struct IpLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl IpLimiter {
    /// `per_minute` sign-ups per IP, as a burst that refills evenly; 0 means no limit.
    pub fn new(per_minute: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n).allow_burst(n))),
        }
    }

    /// `Ok` when `ip` may sign up now; otherwise how long until it may.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        // Forget idle clients now and then, so memory stays bounded under a scan.
        if limiter.len() > 100_000 {
            limiter.retain_recent();
        }
        limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

type Reply = oneshot::Sender<Result<SignupOutcome, String>>;

/// The handle handlers submit sign-ups through. Cheap to clone; the writer task stops
/// once every handle is gone and what was submitted is committed.
#[derive(Clone)]
pub struct SignupQueue {
    tx: mpsc::Sender<(NewSignup, Reply)>,
}

impl SignupQueue {
    /// Spawns the writer over `store`; `wake` is notified shortly after each commit that queued a
    /// confirmation mail (the notice worker listens).
    pub fn start(store: Store, wake: Wake) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let wrote = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(write_signups(store.clone(), rx, wake, wrote.clone()));
        tokio::spawn(checkpoint_while_writing(
            store,
            wrote,
            writer.abort_handle(),
        ));
        (Self { tx }, writer)
    }

    /// Records `signup` durably (with its confirmation mail queued) and returns what was
    /// done. Returns once the group holding it is committed.
    pub async fn submit(&self, signup: NewSignup) -> Result<SignupOutcome, SignupError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((signup, reply))
            .await
            .map_err(|_| SignupError::Unavailable("the sign-up writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| SignupError::Unavailable("the sign-up writer has stopped".into()))?
            .map_err(SignupError::Unavailable)
    }
}

/// The group-commit writer: takes what is waiting, commits it, answers, repeats.
async fn write_signups(
    store: Store,
    mut rx: mpsc::Receiver<(NewSignup, Reply)>,
    wake: Wake,
    wrote: Arc<AtomicBool>,
) {
    let mut group: Vec<NewSignup> = Vec::with_capacity(GROUP_MAX);
    let mut replies: Vec<Reply> = Vec::with_capacity(GROUP_MAX);
    while let Some((first, reply)) = rx.recv().await {
        group.push(first);
        replies.push(reply);
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok((signup, reply)) => {
                    group.push(signup);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let result = commit(&store, &group).await;
        wrote.store(true, Ordering::Relaxed);
        match result {
            Ok(outcomes) => {
                let queued = outcomes
                    .iter()
                    .any(|o| matches!(o, SignupOutcome::Queued { .. }));
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                // A moment after the answers are on their way: the confirmation mail is
                // composed and sent while no answer is being written, so a new address is
                // not answered later than a known one.
                if queued {
                    let wake = wake.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(NOTICE_WAKE_DELAY).await;
                        wake.notify_one();
                    });
                }
            }
            Err(e) => {
                tracing::error!(error = %e, signups = group.len(), "cannot record sign-ups");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        group.clear();
    }
}

/// Checkpoints the WAL every [`CHECKPOINT_EVERY`] while sign-ups are being written (see
/// [`Store::checkpoint_passive`]), so a burst of sign-ups is not stalled now and then by a
/// checkpoint inside its commit. Ends with the writer.
async fn checkpoint_while_writing(
    store: Store,
    wrote: Arc<AtomicBool>,
    writer: tokio::task::AbortHandle,
) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !writer.is_finished() {
        tick.tick().await;
        if wrote.swap(false, Ordering::Relaxed) {
            if let Err(e) = store.checkpoint_passive().await {
                tracing::warn!(error = %e, "cannot checkpoint the WAL");
            }
        }
    }
}

/// Commits one group, retrying a few times on a transient database error.
async fn commit(store: &Store, group: &[NewSignup]) -> Result<Vec<SignupOutcome>, String> {
    let mut delay = Duration::from_millis(20);
    for attempt in 1..=3 {
        match store.record_signups(group, unix_now()).await {
            Ok(outcomes) => return Ok(outcomes),
            Err(e) if attempt < 3 => {
                tracing::warn!(error = %e, attempt, "cannot record sign-ups yet; retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    unreachable!("the loop returns on its last attempt")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requester() -> Requester {
        Requester {
            ip: Some("192.0.2.1".parse().unwrap()),
            user_agent: Some("UA\r\nX".into()),
            via: "form",
        }
    }

    fn fields(email: &str, name: &str) -> SignupFields {
        SignupFields {
            email: Some(email.into()),
            name: Some(name.into()),
            website: None,
        }
    }

    #[test]
    fn parses_into_domain_types_and_strips_control_characters_from_the_user_agent() {
        let Parsed::Signup(s) =
            parse(&fields(" Ada@Example.ORG ", " Ada "), "c", &requester()).unwrap()
        else {
            panic!("not a sign-up")
        };
        assert_eq!(s.email.as_str(), "Ada@example.org");
        assert_eq!(s.name.unwrap().as_str(), "Ada");
        assert_eq!(s.user_agent.as_deref(), Some("UAX"));
        assert_eq!(s.ip.as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn refuses_bad_addresses_and_names_with_line_breaks() {
        let e = parse(&fields("not-an-address", ""), "c", &requester()).unwrap_err();
        assert_eq!((e.code(), e.field()), ("invalid_email", Some("email")));
        let e = parse(&fields("", ""), "c", &requester()).unwrap_err();
        assert_eq!(e, SignupError::MissingEmail);
        for bad in ["Eve\r\nBcc: x@y.org", "a\0b", "line\nbreak"] {
            let e = parse(&fields("a@example.org", bad), "c", &requester()).unwrap_err();
            assert_eq!((e.code(), e.field()), ("invalid_name", Some("name")));
        }
    }

    #[test]
    fn a_filled_honeypot_is_recognised_before_anything_else() {
        let mut f = fields("not an address", "x");
        f.website = Some("http://spam.example".into());
        assert!(matches!(
            parse(&f, "c", &requester()).unwrap(),
            Parsed::Honeypot
        ));
    }

    #[test]
    fn the_ip_limit_allows_a_burst_then_says_how_long_to_wait() {
        let limiter = IpLimiter::new(2);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(limiter.check(ip).is_ok());
        assert!(limiter.check(ip).is_ok());
        let wait = limiter.check(ip).unwrap_err();
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(30));
        assert!(limiter.check("192.0.2.8".parse().unwrap()).is_ok());
        let none = IpLimiter::new(0);
        for _ in 0..1000 {
            assert!(none.check(ip).is_ok());
        }
    }
}
