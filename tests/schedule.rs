//! The recurring scheduler: which issue each Friday tick sends, the lateness guard and
//! catch-up at start, never sending twice across restarts and manual sends, and the
//! `herald schedule` command; on SQLite and on PostgreSQL.
//!
//! # Time
//!
//! The scheduler reads a [`Clock`] anchored at a chosen wall time that moves with tokio's
//! clock. The tests pause tokio's clock and move it only with `tokio::time::advance`. While
//! paused, tokio would also *auto-advance* to the next timer whenever the runtime is idle,
//! and it is idle whenever it waits for the database: sqlx runs each SQLite connection on its
//! own thread, outside the runtime, and a PostgreSQL query waits on its socket. The clock
//! would then jump to the scheduler's next tick (or fire sqlx's pool timeouts) in the middle
//! of a query. [`FrozenTime`] prevents that: tokio does not auto-advance while a
//! `spawn_blocking` task runs, so one blocking task parked for the length of the test keeps
//! time still except when the test advances it.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald::config::Settings;
use herald::domain::IssueSlug;
use herald::schedule::{Clock, Schedule, Scheduler, SchedulerStatus, TickOutcome};
use herald::startup::App;
use herald::store::ScheduleRun;
use tokio::sync::watch;

use support::app::{add_subscribers, addresses, copies_in, eventually, run_app, settings};
use support::postgres::{Backend, RawDb};
use support::server::{Relay, TestServer};
use support::smtp_server::{Faults, SmtpServer};

/// Keeps tokio's paused clock from auto-advancing until dropped (see the module docs).
struct FrozenTime {
    release: Option<std::sync::mpsc::Sender<()>>,
}

impl FrozenTime {
    fn new() -> Self {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = wait.recv();
        });
        FrozenTime {
            release: Some(release),
        }
    }
}

impl Drop for FrozenTime {
    fn drop(&mut self) {
        self.release.take();
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// An app over a fresh database, an empty issues folder and an outbox.
struct Bench {
    dir: tempfile::TempDir,
    app: Arc<App>,
}

impl Bench {
    async fn start(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        std::fs::create_dir_all(&outbox).unwrap();
        std::fs::create_dir_all(dir.path().join("issues")).unwrap();
        let mut s = settings(
            &backend.database_url(dir.path()).await,
            &format!("file://{}", outbox.display()),
        );
        s.newsletter.issues_dir = dir.path().join("issues");
        tweak(&mut s);
        let app = Arc::new(App::build(s).await.unwrap());
        Bench { dir, app }
    }

    /// Another app on the same files: a restarted herald.
    async fn restart(&self) -> Arc<App> {
        Arc::new(App::build(self.app.settings.clone()).await.unwrap())
    }

    fn issues_dir(&self) -> PathBuf {
        self.dir.path().join("issues")
    }

    fn write_issue(&self, slug: &str, date: Option<&str>) {
        write_issue(&self.issues_dir(), slug, date);
    }

    /// Slugs in the `issues` table, in id order.
    async fn enqueued(&self) -> Vec<String> {
        RawDb::connect(&self.app.settings.database.url)
            .await
            .texts("SELECT slug FROM issues ORDER BY id", &[])
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn runs(&self) -> Vec<ScheduleRun> {
        self.app.store.list_schedule_runs().await.unwrap()
    }
}

fn write_issue(dir: &Path, slug: &str, date: Option<&str>) {
    let date_line = date.map(|d| format!("date: {d}\n")).unwrap_or_default();
    std::fs::write(
        dir.join(format!("{slug}.md")),
        format!("---\ntitle: \"Issue {slug}\"\n{date_line}---\n\nThis is {slug}.\n"),
    )
    .unwrap();
}

/// A scheduler task started at `wall`, with a handle to stop it.
struct Running {
    clock: Clock,
    status: watch::Receiver<SchedulerStatus>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start_scheduler(app: &Arc<App>, wall: DateTime<Utc>) -> Running {
    let schedule = Schedule::from_settings(&app.settings.schedule).unwrap();
    let clock = Clock::starting_at(wall);
    let scheduler = Scheduler::new(schedule, clock);
    let status = scheduler.status();
    let (stop, stopped) = watch::channel(false);
    let app = app.clone();
    let task = tokio::spawn(async move { scheduler.run(&app, stopped).await });
    Running {
        clock,
        status,
        stop,
        task,
    }
}

impl Running {
    /// Waits until the scheduler sleeps until `next`.
    async fn asleep_until(&mut self, next: &str) {
        let next = utc(next);
        self.status
            .wait_for(|s| s.sleeping_until == Some(next))
            .await
            .unwrap();
    }

    /// Moves time to `t` (the scheduler must be asleep), then waits for the tick it makes
    /// there, the `n`th since start, and returns its outcome.
    async fn tick_at(&mut self, t: &str, n: u64) -> TickOutcome {
        self.asleep_until(t).await;
        let gap = (utc(t) - self.clock.now()).to_std().unwrap();
        tokio::time::advance(gap).await;
        let status = self
            .status
            .wait_for(|s| s.ticks >= n)
            .await
            .unwrap()
            .clone();
        assert_eq!(status.ticks, n, "one tick per advance");
        let last = status.last.unwrap();
        assert_eq!(last.tick_at, utc(t));
        last.outcome
    }

    async fn stop(self) -> SchedulerStatus {
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
        let status = self.status.borrow().clone();
        assert!(status.stopped);
        status
    }
}

/// Records that herald's scheduler first ran on the bench's database at `t`, as if it had
/// been running since and was down over the ticks the test looks at.
async fn ran_since(bench: &Bench, t: &str) {
    let at = utc(t).timestamp();
    assert_eq!(bench.app.store.schedule_start(at).await.unwrap(), at);
}

fn enqueued(slug: &str) -> impl Fn(&TickOutcome) -> bool + '_ {
    move |o| matches!(o, TickOutcome::Enqueued { slug: s, .. } if s == slug)
}

fn is_nothing(o: &TickOutcome) -> bool {
    matches!(o, TickOutcome::Nothing { .. })
}

on_both_backends! {
    #![tokio::test(start_paused = true)]
    async fn an_issue_with_a_check_error_is_skipped_with_the_finding_recorded_until_fixed(backend: Backend) {
        let _frozen = FrozenTime::new();
        let bench = Bench::start(backend, |_| {}).await;
        add_subscribers(&bench.app.store, &addresses("reader", 2)).await;
        let broken = bench.issues_dir().join("broken.md");
        let with_picture = "---\ntitle: Broken\ndate: 2026-11-20T08:00:00Z\n---\n\n\
                            Words first.\n\n![The chart of the week](img/missing-chart.png)\n";
        std::fs::write(&broken, with_picture).unwrap();

        let mut s = start_scheduler(&bench.app, utc("2026-11-19T12:00:00Z"));
        let o = s.tick_at("2026-11-20T09:00:00Z", 1).await;
        let TickOutcome::Refused { slug, reason } = &o else {
            panic!("refused expected: {o:?}");
        };
        assert_eq!(slug, "broken");
        assert!(
            reason.contains("broken.md:8:1: asset-missing:") && reason.contains("img/missing-chart.png"),
            "{reason}"
        );
        assert!(bench.enqueued().await.is_empty());
        let run = bench.runs().await.pop().unwrap();
        assert_eq!(run.outcome, "nothing");
        let detail = run.detail.unwrap();
        assert!(
            detail.starts_with("broken not sent: herald check finds an error in it: ")
                && detail.ends_with(reason.as_str()),
            "{detail}"
        );

        // Fixed before the next Friday: that tick sends it.
        std::fs::write(&broken, with_picture.replace("![The chart of the week](img/missing-chart.png)", "No chart this week.")).unwrap();
        let o = s.tick_at("2026-11-27T09:00:00Z", 2).await;
        assert!(enqueued("broken")(&o), "{o:?}");
        s.stop().await;
    }
}

on_both_backends! {
    #![tokio::test(start_paused = true)]
    async fn each_friday_sends_the_newest_due_issue_once_and_future_issues_wait_for_their_date(backend: Backend) {
        let _frozen = FrozenTime::new();
        let bench = Bench::start(backend, |_| {}).await;
        add_subscribers(&bench.app.store, &addresses("reader", 3)).await;
        bench.write_issue("a-nov-06", Some("2026-11-06T09:00:00Z"));
        bench.write_issue("b-nov-13", Some("2026-11-13T09:00:00Z"));
        bench.write_issue("c-nov-20", Some("2026-11-20T08:00:00Z"));
        // Dated an hour after the Friday 27 November tick: not due until the next one.
        bench.write_issue("d-nov-27", Some("2026-11-27T10:00:00Z"));
        bench.write_issue("undated", None);

        // Thursday noon on a new database: the last tick (13 November) came before herald ever
        // ran here, so it is neither run nor recorded.
        let mut s = start_scheduler(&bench.app, utc("2026-11-19T12:00:00Z"));
        s.asleep_until("2026-11-20T09:00:00Z").await;
        assert_eq!(s.status.borrow().ticks, 0);
        assert!(bench.enqueued().await.is_empty(), "nothing before Friday");

        let o = s.tick_at("2026-11-20T09:00:00Z", 1).await;
        assert!(enqueued("c-nov-20")(&o), "{o:?}");
        assert!(matches!(o, TickOutcome::Enqueued { added: 3, .. }));

        let o = s.tick_at("2026-11-27T09:00:00Z", 2).await;
        assert!(is_nothing(&o), "d is dated after this tick: {o:?}");
        assert_eq!(bench.enqueued().await, ["c-nov-20"]);

        let o = s.tick_at("2026-12-04T09:00:00Z", 3).await;
        assert!(enqueued("d-nov-27")(&o), "{o:?}");

        let o = s.tick_at("2026-12-11T09:00:00Z", 4).await;
        assert!(is_nothing(&o), "{o:?}");
        s.asleep_until("2026-12-18T09:00:00Z").await;
        s.stop().await;

        // The older ones and the undated one were never sent; each sent issue once.
        assert_eq!(bench.enqueued().await, ["c-nov-20", "d-nov-27"]);
        let runs: Vec<(i64, String, Option<String>)> = bench
            .runs()
            .await
            .into_iter()
            .map(|r| (r.tick_at, r.outcome, r.slug))
            .collect();
        let at = |s: &str| utc(s).timestamp();
        assert_eq!(
            runs,
            vec![
                (
                    at("2026-11-20T09:00:00Z"),
                    "enqueued".into(),
                    Some("c-nov-20".into())
                ),
                (at("2026-11-27T09:00:00Z"), "nothing".into(), None),
                (
                    at("2026-12-04T09:00:00Z"),
                    "enqueued".into(),
                    Some("d-nov-27".into())
                ),
                (at("2026-12-11T09:00:00Z"), "nothing".into(), None),
            ]
        );
        // The issue date was stored with the enqueue.
        let dates = bench.app.store.enqueued_issue_dates().await.unwrap();
        assert_eq!(dates[0].issue_date, Some(at("2026-11-20T08:00:00Z")));
    }
}

on_both_backends! {
    #![tokio::test(start_paused = true)]
    async fn a_tick_missed_by_less_than_max_lateness_runs_once_at_start(backend: Backend) {
        let _frozen = FrozenTime::new();
        let bench = Bench::start(backend, |_| {}).await;
        bench.write_issue("due", Some("2026-11-20T08:00:00Z"));
        // herald first ran on this database on Monday, then was down over the Friday tick.
        ran_since(&bench, "2026-11-16T12:00:00Z").await;
        // 90 minutes after the Friday tick; the default allows 120.
        let s = start_scheduler(&bench.app, utc("2026-11-20T10:30:00Z"));
        let mut status = s.status.clone();
        let st = status.wait_for(|s| s.ticks == 1).await.unwrap().clone();
        assert_eq!(
            st.last.as_ref().unwrap().tick_at,
            utc("2026-11-20T09:00:00Z")
        );
        assert!(enqueued("due")(&st.last.unwrap().outcome));
        let mut s = s;
        s.asleep_until("2026-11-27T09:00:00Z").await;
        assert_eq!(s.stop().await.ticks, 1, "the missed tick ran once");
        assert_eq!(bench.enqueued().await, ["due"]);
    }
}

/// Collects formatted log lines of the current thread.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

on_both_backends! {
    #![tokio::test(start_paused = true)]
    async fn a_tick_missed_by_more_than_max_lateness_is_skipped_and_logged(backend: Backend) {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        // The runtime has one thread, so the scheduler task logs into this subscriber too.
        let _log = tracing::subscriber::set_default(subscriber);
        let _frozen = FrozenTime::new();
        let bench = Bench::start(backend, |s| s.schedule.max_lateness_minutes = 60).await;
        bench.write_issue("due", Some("2026-11-20T08:00:00Z"));
        ran_since(&bench, "2026-11-16T12:00:00Z").await;
        // 61 minutes late with a 60-minute allowance.
        let mut s = start_scheduler(&bench.app, utc("2026-11-20T10:01:00Z"));
        s.asleep_until("2026-11-27T09:00:00Z").await;
        let last = s.status.borrow().last.clone().unwrap();
        assert_eq!(last.tick_at, utc("2026-11-20T09:00:00Z"));
        assert_eq!(last.outcome, TickOutcome::Skipped { late_minutes: 61 });
        assert!(bench.enqueued().await.is_empty());
        let run = &bench.runs().await[0];
        assert_eq!(run.outcome, "skipped");
        let text = logs.text();
        assert!(
            text.contains("WARN") && text.contains("later than schedule.max_lateness_minutes"),
            "{text}"
        );
        assert!(text.contains("late_minutes=61"), "{text}");
        assert!(text.contains("would_have_sent=due"), "{text}");

        // The issue is not lost: the next Friday sends it.
        let o = s.tick_at("2026-11-27T09:00:00Z", 2).await;
        assert!(enqueued("due")(&o), "{o:?}");
        s.stop().await;
    }
}

on_both_backends! {
    #![tokio::test(start_paused = true)]
    async fn a_new_database_is_silent_about_ticks_from_before_it_existed(backend: Backend) {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _log = tracing::subscriber::set_default(subscriber);
        let _frozen = FrozenTime::new();
        let bench = Bench::start(backend, |_| {}).await;
        bench.write_issue("due", Some("2026-11-01T08:00:00Z"));
        // First start on a Wednesday, five days after the last Friday tick.
        let mut s = start_scheduler(&bench.app, utc("2026-11-25T12:00:00Z"));
        s.asleep_until("2026-11-27T09:00:00Z").await;
        assert_eq!(s.status.borrow().ticks, 0, "the old tick is not dealt with");
        assert!(bench.runs().await.is_empty(), "nor recorded");
        let text = logs.text();
        assert!(!text.contains("WARN"), "{text}");
        assert!(!text.contains("skipped"), "{text}");
        // The start point is kept: a later start counts from the first one.
        assert_eq!(
            bench.app.store.schedule_start(0).await.unwrap(),
            utc("2026-11-25T12:00:00Z").timestamp()
        );
        let o = s.tick_at("2026-11-27T09:00:00Z", 1).await;
        assert!(enqueued("due")(&o), "{o:?}");
        s.stop().await;

        // Down over the next Friday, back on Monday: that tick was missed, and is reported.
        let app = bench.restart().await;
        bench.write_issue("next", Some("2026-12-03T08:00:00Z"));
        let mut again = start_scheduler(&app, utc("2026-12-07T08:00:00Z"));
        again.asleep_until("2026-12-11T09:00:00Z").await;
        let last = again.status.borrow().last.clone().unwrap();
        assert_eq!(last.tick_at, utc("2026-12-04T09:00:00Z"));
        assert!(matches!(last.outcome, TickOutcome::Skipped { .. }));
        assert!(
            logs.text().contains("would_have_sent=next"),
            "{}",
            logs.text()
        );
        again.stop().await;
    }
}

on_both_backends! {
    #![tokio::test(start_paused = true)]
    async fn a_restart_does_not_run_a_tick_that_already_ran(backend: Backend) {
        let _frozen = FrozenTime::new();
        let bench = Bench::start(backend, |_| {}).await;
        bench.write_issue("c-nov-20", Some("2026-11-20T08:00:00Z"));
        let mut first = start_scheduler(&bench.app, utc("2026-11-20T08:30:00Z"));
        let o = first.tick_at("2026-11-20T09:00:00Z", 1).await;
        assert!(enqueued("c-nov-20")(&o));
        first.stop().await;

        // A newer issue appears that the 20 November tick would pick if it ran again.
        bench.write_issue("g-late-edit", Some("2026-11-20T08:30:00Z"));
        let app = bench.restart().await;
        let mut second = start_scheduler(&app, utc("2026-11-20T09:30:00Z"));
        second.asleep_until("2026-11-27T09:00:00Z").await;
        assert_eq!(
            second.status.borrow().ticks,
            0,
            "the 09:00 tick is not run again"
        );
        assert_eq!(bench.enqueued().await, ["c-nov-20"]);
        // Asking for it outright is refused too (another process holding the same database).
        let again = Scheduler::new(
            Schedule::from_settings(&app.settings.schedule).unwrap(),
            Clock::starting_at(utc("2026-11-20T09:40:00Z")),
        )
        .tick(&app, utc("2026-11-20T09:00:00Z"))
        .await;
        assert_eq!(again.outcome, TickOutcome::AlreadyRan);

        let o = second.tick_at("2026-11-27T09:00:00Z", 1).await;
        assert!(enqueued("g-late-edit")(&o), "{o:?}");
        second.stop().await;
        assert_eq!(bench.enqueued().await, ["c-nov-20", "g-late-edit"]);
    }
}

on_both_backends! {
    #![tokio::test(start_paused = true)]
    async fn an_issue_older_than_the_last_one_sent_is_never_sent_automatically(backend: Backend) {
        let _frozen = FrozenTime::new();
        let bench = Bench::start(backend, |_| {}).await;
        bench.write_issue("older", Some("2026-11-18T09:00:00Z"));
        bench.write_issue("manual", Some("2026-11-19T09:00:00Z"));
        // The editor sends the newer issue by hand before Friday.
        bench
            .app
            .send_now(&IssueSlug::parse("manual").unwrap(), "api")
            .await
            .unwrap();

        let mut s = start_scheduler(&bench.app, utc("2026-11-19T12:00:00Z"));
        let o = s.tick_at("2026-11-20T09:00:00Z", 1).await;
        assert!(is_nothing(&o), "{o:?}");
        // An even older issue written later is not sent either.
        bench.write_issue("oldest", Some("2026-11-01T09:00:00Z"));
        let o = s.tick_at("2026-11-27T09:00:00Z", 2).await;
        assert!(is_nothing(&o), "{o:?}");
        s.stop().await;
        assert_eq!(bench.enqueued().await, ["manual"]);
    }
}

on_both_backends! {
    #![tokio::test(start_paused = true)]
    async fn a_broken_issue_file_is_skipped_and_the_others_still_go_out(backend: Backend) {
        let _frozen = FrozenTime::new();
        let bench = Bench::start(backend, |_| {}).await;
        bench.write_issue("good", Some("2026-11-19T09:00:00Z"));
        std::fs::write(
            bench.issues_dir().join("broken.md"),
            "---\ntitle: \"Broken\"\ndate: 2026-11-20T08:00:00Z\n",
        )
        .unwrap();
        let mut s = start_scheduler(&bench.app, utc("2026-11-19T12:00:00Z"));
        let o = s.tick_at("2026-11-20T09:00:00Z", 1).await;
        assert!(enqueued("good")(&o), "{o:?}");
        s.stop().await;
    }
}

on_both_backends! {
    #![tokio::test(start_paused = true)]
    async fn an_off_schedule_never_sends_and_stops_when_asked(backend: Backend) {
        let _frozen = FrozenTime::new();
        let bench = Bench::start(backend, |s| s.schedule.cron = "off".into()).await;
        bench.write_issue("due", Some("2026-11-20T08:00:00Z"));
        let s = start_scheduler(&bench.app, utc("2026-11-20T09:30:00Z"));
        tokio::time::advance(Duration::from_secs(30 * 24 * 3600)).await;
        tokio::task::yield_now().await;
        let status = s.stop().await;
        assert_eq!(status.ticks, 0);
        assert!(bench.enqueued().await.is_empty());
        assert!(bench.runs().await.is_empty());
    }
}

on_both_backends! {
    /// The scheduler's tick and an editor's send of the same issue, at the same moment, real
    /// time and threads: the issue is enqueued once and every subscriber gets one copy.
    async fn a_tick_racing_a_manual_send_of_the_same_issue_sends_each_subscriber_one_copy(backend: Backend) {
        let smtp = SmtpServer::start(Faults::new());
        let dir = tempfile::tempdir().unwrap();
        let issues = dir.path().join("issues");
        std::fs::create_dir_all(&issues).unwrap();
        let mut s = settings(&backend.database_url(dir.path()).await, &smtp.url());
        s.newsletter.issues_dir = issues.clone();
        let app = Arc::new(App::build(s).await.unwrap());
        let emails = addresses("racer", 6);
        add_subscribers(&app.store, &emails).await;
        let schedule = Schedule::from_settings(&app.settings.schedule).unwrap();

        let rounds = [
            "2026-11-20T09:00:00Z",
            "2026-11-27T09:00:00Z",
            "2026-12-04T09:00:00Z",
            "2026-12-11T09:00:00Z",
        ];
        for (round, tick) in rounds.iter().enumerate() {
            let slug = format!("race-{round}");
            write_issue(&issues, &slug, Some(tick));
            let tick = utc(tick);
            let scheduler = Scheduler::new(schedule.clone(), Clock::starting_at(tick));
            let issue_slug = IssueSlug::parse(&slug).unwrap();
            // Both on their own task, so they really run side by side on the two workers.
            let by_scheduler = {
                let app = app.clone();
                tokio::spawn(async move { scheduler.tick(&app, tick).await })
            };
            let by_editor = {
                let app = app.clone();
                let issue_slug = issue_slug.clone();
                tokio::spawn(async move { app.send_now(&issue_slug, "api").await })
            };
            let report = by_scheduler.await.unwrap();
            let manual = by_editor.await.unwrap().unwrap();
            let by_tick = match &report.outcome {
                TickOutcome::Enqueued { slug: s, added } => {
                    assert_eq!(s, &slug);
                    *added
                }
                TickOutcome::Nothing { .. } => 0,
                other => panic!("unexpected tick outcome {other:?}"),
            };
            assert_eq!(
                by_tick + manual.added,
                6,
                "round {round}: rows added by the tick ({by_tick}) and the send ({}) make one per subscriber",
                manual.added
            );
            assert_eq!(manual.total, 6);

            let prepared = app.prepare_slug(&issue_slug).await.unwrap();
            let job = herald::dispatch::Job {
                issue_id: manual.issue_id,
                mail: Arc::new(
                    app.composer
                        .prepare(&prepared.rendered, Some(manual.issue_id)),
                ),
            };
            run_app(&app, &job, false).await;
        }
        let mut raw = RawDb::connect(&app.settings.database.url).await;
        let issues_rows = raw.scalar("SELECT COUNT(*) FROM issues", &[]).await;
        assert_eq!(issues_rows, 4);
        let per_pair = raw
            .integers(
                "SELECT COUNT(*) FROM deliveries GROUP BY issue_id, subscriber_id",
                &[],
            )
            .await;
        assert_eq!(per_pair.len(), 24);
            let received = smtp.received();
        for email in &emails {
            assert_eq!(
                copies_in(&received, email).len(),
                4,
                "{email} got one copy of each of the four issues"
            );
        }
    }
}

on_both_backends! {
    /// The whole of `herald serve`, on the real clock: a schedule firing every second, and an
    /// issue dated three seconds ahead. The scheduler enqueues it at the first tick at or after
    /// its date, the dispatcher sends it, and later ticks send nothing more.
    async fn herald_serve_runs_the_scheduler_and_the_dispatcher_sends_what_it_enqueues(backend: Backend) {
        let date = (Utc::now() + chrono::TimeDelta::seconds(3))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let server = TestServer::start_on(backend, Relay::Smtp(Faults::new()), |s| {
            s.schedule.cron = "* * * * * *".into();
            // Only this test's issue: nothing else in the folder can be due on the real clock.
            s.newsletter.issues_dir = s.newsletter.issues_dir.with_file_name("scheduled-issues");
            std::fs::create_dir_all(&s.newsletter.issues_dir).unwrap();
            write_issue(&s.newsletter.issues_dir, "soon", Some(&date));
        })
        .await;
        let emails = addresses("friday", 4);
        add_subscribers(&server.app.store, &emails).await;
        let smtp = server.smtp.as_ref().unwrap();
        assert!(
            eventually(Duration::from_secs(30), || async {
                smtp.received().len() == 4
            })
            .await,
            "sent {} of 4",
            smtp.received().len()
        );
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let received = smtp.received();
        for email in &emails {
            assert_eq!(copies_in(&received, email).len(), 1, "{email}");
        }
        let runs = server.app.store.list_schedule_runs().await.unwrap();
        let enqueued: Vec<_> = runs.iter().filter(|r| r.outcome == "enqueued").collect();
        assert_eq!(enqueued.len(), 1, "{runs:?}");
        assert_eq!(enqueued[0].slug.as_deref(), Some("soon"));
        assert!(runs
            .iter()
            .all(|r| r.outcome == "enqueued" || r.outcome == "nothing"));
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn serve_with_a_bad_schedule_stops_before_serving(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |s| {
            s.schedule.timezone = "Europe/Nowhere".into();
        })
        .await;
        let err = server.stop().await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`schedule.timezone`: unknown time zone"),
            "{err}"
        );
    }
}

/// Runs the real `herald` binary in `dir`.
fn herald(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .current_dir(dir)
        .env_remove("HERALD_LOG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Writes `config.toml` in `dir`, on the database `url`.
fn write_config_on(dir: &Path, url: &str, schedule: &str) {
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[newsletter]\nissues_dir = \"issues\"\ntemplates_dir = {templates:?}\n\n\
             [database]\nurl = {url:?}\n\n[schedule]\n{schedule}\n",
            templates = concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
        ),
    )
    .unwrap();
}

/// Writes `config.toml` in `dir`, on `herald.db` there.
fn write_config(dir: &Path, schedule: &str) {
    write_config_on(dir, "sqlite://herald.db", schedule);
}

on_both_backends! {
    async fn herald_schedule_prints_the_next_three_runs_and_what_each_would_send(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let issues = dir.path().join("issues");
        std::fs::create_dir_all(&issues).unwrap();
        write_config_on(
            dir.path(),
            &backend.database_url(dir.path()).await,
            "cron = \"0 0 9 * * Fri\"\ntimezone = \"Europe/Berlin\"\nmax_lateness_minutes = 90",
        );
        let now = Utc::now();
        let day = chrono::TimeDelta::days(1);
        let date = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut settings = Settings::default();
        settings.schedule.timezone = "Europe/Berlin".into();
        let ticks = Schedule::from_settings(&settings.schedule)
            .unwrap()
            .upcoming(now, 3);
        // One issue due already, one older still, and one dated an hour after the second run:
        // the first run sends the due one, the second nothing, the third the later one.
        write_issue(&issues, "due-now", Some(&date(now - day * 3)));
        write_issue(&issues, "older", Some(&date(now - day * 10)));
        let later = ticks[1] + chrono::TimeDelta::hours(1);
        write_issue(&issues, "later", Some(&date(later)));
        write_issue(&issues, "undated", None);

        let out = herald(dir.path(), &["schedule"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines[0],
            "schedule: 0 0 9 * * Fri (timezone Europe/Berlin, max lateness 90 minutes)"
        );
        assert_eq!(lines[1], "last issue sent: none");
        assert_eq!(lines[2], "next runs (if nothing else is sent meanwhile):");
        let runs = &lines[3..6];
        let re =
            regex::Regex::new(r"^  Fri \d{4}-\d\d-\d\d 09:00 CES?T \(\d{4}-\d\d-\d\d 0[78]:00 UTC\): ")
                .unwrap();
        for run in runs {
            assert!(re.is_match(run), "{run}");
        }
        assert!(
            runs[0].ends_with(": due-now \"Issue due-now\""),
            "{}",
            runs[0]
        );
        assert!(
            runs[1].ends_with(
                ": nothing: no unsent issue dated on or before then newer than the last one sent"
            ),
            "{}",
            runs[1]
        );
        assert!(runs[2].ends_with(": later \"Issue later\""), "{}", runs[2]);
        assert_eq!(lines[6], "never sent automatically, no date: undated");
        assert_eq!(lines.len(), 7, "{stdout}");

        // Once `due-now` was sent, `older` is reported as never to be sent.
        let out = herald(dir.path(), &["send", "issues/due-now.md", "--yes"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = herald(dir.path(), &["schedule"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("last issue sent: due-now (dated "),
            "{stdout}"
        );
        assert!(
            stdout.contains("never sent automatically, older than the last one sent: older (dated "),
            "{stdout}"
        );
    }
}

on_both_backends! {
    async fn herald_serve_prints_its_next_run_and_what_it_would_send(backend: Backend) {
        use std::io::BufRead;

        let dir = tempfile::tempdir().unwrap();
        let issues = dir.path().join("issues");
        std::fs::create_dir_all(&issues).unwrap();
        write_issue(&issues, "ready", Some("2026-01-02T09:00:00Z"));
        write_config_on(
            dir.path(),
            &backend.database_url(dir.path()).await,
            "cron = \"0 30 7 * * Mon\"\ntimezone = \"America/New_York\"\n\n[web]\nbind = \"127.0.0.1:0\"",
        );
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("serve")
            .current_dir(dir.path())
            .env_remove("HERALD_LOG")
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (lines, seen) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut found = None;
        while let Ok(line) = seen.recv_timeout(Duration::from_secs(30)) {
            if line.contains("next scheduled run") {
                found = Some(line);
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let line = found.expect("herald serve printed its next run");
        let re = regex::Regex::new(
            r"^herald: next scheduled run Mon \d{4}-\d\d-\d\d 07:30 E[SD]T: would send ready$",
        )
        .unwrap();
        assert!(re.is_match(&line), "{line}");
    }
}

/// SQLite only: a bad schedule is refused before any database is opened, which the test
/// sees as no database file.
#[test]
fn herald_schedule_and_serve_refuse_a_bad_schedule_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("issues")).unwrap();
    write_config(dir.path(), "cron = \"0 0 9 * * Fryday\"");
    for command in ["schedule", "serve"] {
        let out = herald(dir.path(), &[command]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(
                "herald: config.toml: `schedule.cron`: cannot read \"0 0 9 * * Fryday\""
            ),
            "{command}: {stderr}"
        );
    }
    write_config(dir.path(), "timezone = \"Mars/Olympus\"");
    let out = herald(dir.path(), &["schedule"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "herald: config.toml: `schedule.timezone`: unknown time zone \"Mars/Olympus\""
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("herald.db").exists(), "nothing started");

    write_config(dir.path(), "cron = \"off\"");
    let out = herald(dir.path(), &["schedule"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "schedule: off (schedule.cron = \"off\"): no issue is sent automatically\n"
    );
}
