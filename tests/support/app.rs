//! A herald [`App`] wired to the fault-injecting [`SmtpServer`] and a fresh database (a SQLite
//! file, or a PostgreSQL database with [`Harness::start_on`]), with the example issue
//! enqueued: what the dispatcher's integration tests start from.

use std::path::Path;
use std::time::Duration;

use herald::config::Settings;
use herald::dispatch::{Job, Progress, RunEnd};
use herald::domain::{EmailAddress, ErasureKey, SubscriberStatus};
use herald::startup::App;
use herald::store::{DeliveryRow, NewSubscriber, Store};
use secrecy::SecretString;
use tokio::sync::watch;

use super::postgres::{Arg, Backend, RawDb};
use super::smtp_server::{Faults, Offer, Received, SmtpServer};

/// The issue every dispatch test sends.
pub const ISSUE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/issues/2026-11-27-welcome-to-herald.md"
);
/// Its slug (the file stem).
pub const SLUG: &str = "2026-11-27-welcome-to-herald";
/// No run in these tests may take longer than this.
pub const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Settings for a test: the given database and relay, the repository's templates, and
/// retries that come back after one second.
pub fn settings(db_url: &str, smtp_url: &str) -> Settings {
    let mut s = Settings::default();
    s.database.url = db_url.to_string();
    s.smtp.url = smtp_url.to_string();
    s.smtp.timeout_seconds = 10;
    s.smtp.pool_size = 4;
    s.sending.concurrency = 4;
    s.sending.max_attempts = 3;
    s.sending.retry_base_seconds = 1;
    s.sending.retry_max_seconds = 1;
    s.sending.lease_seconds = 20;
    s.web.secret_key = Some("dispatch-test-secret-0123456789".to_string().into());
    // Set, so no test creates `herald.admin-token` in the working directory.
    s.web.admin_token = Some("test-admin-token-0123456789abcdef".to_string().into());
    s.newsletter.templates_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates").into();
    s.newsletter.from = "Herald Weekly <newsletter@example.org>".into();
    // The fixture issue is the only file of its folder (the repository's `issues/` has an
    // example with the same slug, which `herald check` would rightly refuse to send), and
    // its images are in the repository's `static/`.
    s.newsletter.issues_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/issues").into();
    s.newsletter.assets_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/static").into();
    // Its link to `/docs/design/` shows how relative links resolve; no page is there.
    s.check.allow = vec!["link-unresolvable".into()];
    s
}

/// A relay, a database with subscribers, and an [`App`] with the issue enqueued.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub server: SmtpServer,
    pub app: App,
    pub job: Job,
    pub issue_id: i64,
}

impl Harness {
    /// Starts the relay with `faults`, adds `subscribers` (active), builds the app with
    /// [`settings`] changed by `tweak`, and enqueues the issue.
    pub async fn start(
        faults: Faults,
        subscribers: &[String],
        tweak: impl FnOnce(&mut Settings),
    ) -> Harness {
        Self::start_offering(Offer::default(), faults, subscribers, tweak).await
    }

    /// As [`Harness::start`], on a new database of `backend`.
    pub async fn start_on(
        backend: Backend,
        faults: Faults,
        subscribers: &[String],
        tweak: impl FnOnce(&mut Settings),
    ) -> Harness {
        Self::start_offering_on(backend, Offer::default(), faults, subscribers, tweak).await
    }

    /// As [`Harness::start`], with a relay that advertises the extensions `offer` names.
    pub async fn start_offering(
        offer: Offer,
        faults: Faults,
        subscribers: &[String],
        tweak: impl FnOnce(&mut Settings),
    ) -> Harness {
        Self::start_offering_on(Backend::Sqlite, offer, faults, subscribers, tweak).await
    }

    /// As [`Harness::start_offering`], on a new database of `backend`.
    pub async fn start_offering_on(
        backend: Backend,
        offer: Offer,
        faults: Faults,
        subscribers: &[String],
        tweak: impl FnOnce(&mut Settings),
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let server = SmtpServer::start_offering(offer, faults);
        let mut s = settings(&backend.database_url(dir.path()).await, &server.url());
        tweak(&mut s);
        let app = App::build(s).await.unwrap();
        add_subscribers(&app.store, subscribers).await;
        let (job, issue_id) = enqueue(&app).await;
        Harness {
            dir,
            server,
            app,
            job,
            issue_id,
        }
    }

    /// Another app on the same database and relay (a second process), with `tweak` applied.
    pub async fn second_app(&self, tweak: impl FnOnce(&mut Settings)) -> App {
        let mut s = self.app.settings.clone();
        tweak(&mut s);
        App::build(s).await.unwrap()
    }

    /// One run of the app's dispatcher, with nobody asking it to stop.
    pub async fn run(&self, wait: bool) -> RunEnd {
        run_app(&self.app, &self.job, wait).await
    }

    pub async fn row(&self, email: &str) -> DeliveryRow {
        let id = self.subscriber_id(email).await;
        self.app
            .store
            .find_delivery(self.issue_id, id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no delivery row for {email}"))
    }

    pub async fn subscriber_id(&self, email: &str) -> i64 {
        self.app
            .store
            .find_subscriber_by_email(&address(email))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no subscriber {email}"))
            .id
    }

    pub async fn subscriber_status(&self, email: &str) -> SubscriberStatus {
        self.app
            .store
            .find_subscriber_by_email(&address(email))
            .await
            .unwrap()
            .unwrap()
            .status
    }

    /// The issue's status (`sending`, `sent`, ...).
    pub async fn issue_status(&self) -> String {
        self.app
            .store
            .find_issue(SLUG)
            .await
            .unwrap()
            .unwrap()
            .status
    }

    /// Copies the relay accepted for `email`.
    pub fn copies_for(&self, email: &str) -> Vec<Received> {
        copies_in(&self.server.received(), email)
    }

    /// Copies the relay read in full but never answered, for `email`.
    pub fn dropped_for(&self, email: &str) -> Vec<Received> {
        copies_in(&self.server.dropped_after_data(), email)
    }

    /// How many times the client named `email` in `RCPT TO`.
    pub fn rcpt_commands_for(&self, email: &str) -> usize {
        let needle = format!("C: RCPT TO:<{email}>").to_ascii_lowercase();
        self.server
            .transcript()
            .iter()
            .filter(|line| line.to_ascii_lowercase().contains(&needle))
            .count()
    }

    /// The relay's conversation, for failure messages.
    pub fn transcript(&self) -> String {
        self.server.transcript().join("\n")
    }

    /// How many events of `kind` name the subscriber `email`.
    pub async fn events(&self, kind: &str, email: &str) -> i64 {
        let id = self.subscriber_id(email).await;
        self.raw()
            .await
            .scalar(
                "SELECT COUNT(*) FROM events WHERE kind = $1 AND subscriber_id = $2",
                &[Arg::Text(kind), Arg::Int(id)],
            )
            .await
    }

    /// A raw connection to the harness's database.
    pub async fn raw(&self) -> RawDb {
        RawDb::connect(&self.app.settings.database.url).await
    }

    /// Rows of the issue with `status`.
    pub async fn rows_with_status(&self, status: &str) -> i64 {
        self.raw()
            .await
            .scalar(
                "SELECT COUNT(*) FROM deliveries WHERE issue_id = $1 AND status = $2",
                &[Arg::Int(self.issue_id), Arg::Text(status)],
            )
            .await
    }

    /// Makes every scheduled retry due now: stands in for waiting out a long backoff.
    pub async fn make_retries_due(&self) {
        self.raw()
            .await
            .execute(
                "UPDATE deliveries SET next_attempt_at = 0 WHERE status = 'retry'",
                &[],
            )
            .await;
    }
}

/// Runs `app`'s dispatcher on `job` once, failing the test if it errs or takes too long.
pub async fn run_app(app: &App, job: &Job, wait: bool) -> RunEnd {
    let (_stop, shutdown) = watch::channel(false);
    run_with_shutdown(app, job, wait, shutdown).await
}

/// As [`run_app`], stopping when `shutdown` turns true.
pub async fn run_with_shutdown(
    app: &App,
    job: &Job,
    wait: bool,
    shutdown: watch::Receiver<bool>,
) -> RunEnd {
    let (progress, _) = watch::channel(Progress::default());
    let dispatcher = app.dispatcher();
    let run = dispatcher.run(job.clone(), wait, progress, shutdown);
    tokio::time::timeout(RUN_LIMIT, run)
        .await
        .expect("the run ended in time")
        .expect("the run succeeded")
}

/// Loads, renders and enqueues the example issue.
pub async fn enqueue(app: &App) -> (Job, i64) {
    let prepared = app.prepare(Path::new(ISSUE)).await.unwrap();
    let (enqueued, job) = app.enqueue(&prepared, "cli").await.unwrap();
    (job, enqueued.issue_id)
}

pub fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("herald.db").display())
}

pub fn address(email: &str) -> EmailAddress {
    EmailAddress::parse(email).unwrap()
}

/// `prefix0@example.com`, `prefix1@example.com`, ...
pub fn addresses(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}@example.com")).collect()
}

pub async fn add_subscribers(store: &Store, emails: &[String]) {
    let rows: Vec<NewSubscriber> = emails
        .iter()
        .map(|e| NewSubscriber {
            email: address(e),
            name: None,
            status: SubscriberStatus::Active,
            attributes: Default::default(),
        })
        .collect();
    let erasure = ErasureKey::new(&SecretString::from(
        "dispatch-test-erasure-0123456789".to_string(),
    ));
    store
        .import_subscriber_batch(&rows, &erasure, "test")
        .await
        .unwrap();
}

/// The messages among `all` addressed to `email`.
pub fn copies_in(all: &[Received], email: &str) -> Vec<Received> {
    all.iter()
        .filter(|r| r.rcpt_to.iter().any(|to| to.eq_ignore_ascii_case(email)))
        .cloned()
        .collect()
}

/// The unfolded value of the first header `name` in the message `text`.
pub fn header(text: &str, name: &str) -> Option<String> {
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((key, rest)) = line.split_once(':') {
            if key.eq_ignore_ascii_case(name) {
                value = Some(rest.trim().to_string());
            }
        }
    }
    value
}

/// Waits until `check` holds, polling every 10 ms; false after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
