//! Sending while the database misbehaves: a write lock held elsewhere for longer than the
//! lease, outcomes that cannot be written. A run never sends a row twice that it still
//! holds, never sends what it cannot record, and a fault ends with a clear error and no
//! duplicate beyond what was in flight.

mod support;

use std::time::Duration;

use herald::dispatch::{Progress, RunEnd};
use sqlx::{Connection, SqliteConnection};
use support::app::{addresses, Harness};
use support::herald_site::tally;
use support::smtp_server::Faults;
use tokio::sync::watch;

/// How many copies of each address the relay accepted, for the addresses sent more than once.
fn duplicates(h: &Harness) -> Vec<(String, usize)> {
    let received = h.server.received();
    tally(
        received
            .iter()
            .flat_map(|r| r.rcpt_to.iter().map(String::as_str)),
    )
    .into_iter()
    .filter(|(_, n)| *n > 1)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lock_held_longer_than_the_lease_sends_no_duplicate() {
    let emails = addresses("locked", 240);
    let faults = Faults::new().with_reply_delay(Duration::from_millis(3));
    let h = Harness::start(faults, &emails, |s| {
        s.sending.lease_seconds = 2;
        s.sending.batch_size = 100;
    })
    .await;
    let url = h.app.settings.database.url.clone();

    let (progress_tx, progress_rx) = watch::channel(Progress::default());
    let (_stop, shutdown) = watch::channel(false);
    let dispatcher = h.app.dispatcher();
    let run = dispatcher.run(h.job.clone(), true, progress_tx, shutdown);
    let lock = async {
        assert!(h.server.wait_for(30, Duration::from_secs(30)).await);
        // Another process takes the write lock for twice the lease.
        let mut side = SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut side)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        sqlx::query("COMMIT").execute(&mut side).await.unwrap();
    };
    let (end, ()) = tokio::join!(tokio::time::timeout(Duration::from_secs(120), run), lock);
    let end = end
        .expect("the run ends in time")
        .expect("the run succeeds");
    assert_eq!(end, RunEnd::Finished);

    assert_eq!(duplicates(&h), vec![], "no address got two copies");
    assert_eq!(h.server.received_count(), emails.len());
    assert_eq!(h.rows_with_status("sent").await as usize, emails.len());
    let progress = progress_rx.borrow().clone();
    assert_eq!(
        (progress.sent, progress.total),
        (emails.len() as u64, emails.len() as u64),
        "progress counts each row once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_that_cannot_be_written_stop_the_send_at_once() {
    let emails = addresses("unwritable", 400);
    let faults = Faults::new().with_reply_delay(Duration::from_millis(1));
    let h = Harness::start(faults, &emails, |s| {
        s.sending.batch_size = 400;
    })
    .await;
    let url = h.app.settings.database.url.clone();
    let in_flight = h.app.settings.sending.concurrency as usize;

    // Once a few copies are out, the ledger refuses to record any more of them.
    let mut side = SqliteConnection::connect(&url).await.unwrap();
    let (progress_tx, _progress) = watch::channel(Progress::default());
    let (_stop, shutdown) = watch::channel(false);
    let dispatcher = h.app.dispatcher();
    let run = dispatcher.run(h.job.clone(), true, progress_tx, shutdown);
    let fault = async {
        assert!(h.server.wait_for(20, Duration::from_secs(30)).await);
        sqlx::query(
            "CREATE TRIGGER refuse_outcomes BEFORE UPDATE ON deliveries \
             WHEN NEW.status <> 'sending' BEGIN SELECT RAISE(ABORT, 'disk refuses writes'); END",
        )
        .execute(&mut side)
        .await
        .unwrap();
        h.server.received_count()
    };
    let (end, at_fault) = tokio::join!(tokio::time::timeout(Duration::from_secs(60), run), fault);
    let error = end
        .expect("the run ends in time")
        .expect_err("a ledger that cannot be written ends the run with an error");
    assert!(
        error.to_string().contains("disk refuses writes"),
        "the error says why: {error}"
    );
    let after = h.server.received_count();
    // What can go out unrecorded: the messages in flight, the outcomes queued for the
    // writer (as many again), and the group being committed when the fault came.
    let bound = at_fault + 2 * in_flight + herald::dispatch::engine::GROUP_MAX.min(at_fault);
    assert!(
        after <= bound,
        "{after} copies accepted, {at_fault} when writes began to fail: the run kept sending \
         what it could not record"
    );
    let recorded: Vec<String> = {
        let mut conn = SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_scalar(
            "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE d.status = 'sent'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    };

    // Once the ledger takes writes again, a new run sends the rest. Only copies whose
    // outcome was never written go out twice: never a row recorded as sent, and no more
    // than the documented bound.
    sqlx::query("DROP TRIGGER refuse_outcomes")
        .execute(&mut side)
        .await
        .unwrap();
    sqlx::query("UPDATE deliveries SET lease_until = 0 WHERE status = 'sending'")
        .execute(&mut side)
        .await
        .unwrap();
    assert_eq!(h.run(true).await, RunEnd::Finished);
    let twice = duplicates(&h);
    assert!(
        twice.iter().all(|(email, _)| !recorded.contains(email)),
        "a row recorded as sent went out again: {twice:?}"
    );
    assert!(
        twice.len() <= 2 * in_flight + herald::dispatch::engine::GROUP_MAX,
        "{} duplicates: {twice:?}",
        twice.len()
    );
    assert_eq!(h.rows_with_status("sent").await as usize, emails.len());
}

/// `chattr +i` on a file for as long as it lives (then `chattr -i`), so a test can make a
/// database file refuse writes under a running herald the way a failing disk does.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(path: std::path::PathBuf) -> Immutable {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .expect("run chattr");
        assert!(status.success(), "chattr +i {}", path.display());
        Immutable(path)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// Whether files in `dir` can be made immutable here (root, or CAP_LINUX_IMMUTABLE, and a
/// file system that supports it). When not, says why the caller skips, or fails under
/// `HERALD_REQUIRE_TOOLS`.
fn immutable_files_work(dir: &std::path::Path) -> bool {
    support::require_tool("chattr", &["/usr/bin/chattr"], "apt-get install e2fsprogs").is_some_and(
        |chattr| {
            let probe = dir.join("chattr-probe");
            std::fs::write(&probe, b"x").unwrap();
            let works = std::process::Command::new(&chattr)
                .arg("+i")
                .arg(&probe)
                .status()
                .is_ok_and(|s| s.success());
            let _ = std::process::Command::new(&chattr)
                .arg("-i")
                .arg(&probe)
                .status();
            let _ = std::fs::remove_file(&probe);
            if !works {
                let reason = "`chattr +i` is not permitted here (needs root and a file system \
                              with the immutable flag)";
                if std::env::var_os("HERALD_REQUIRE_TOOLS")
                    .is_some_and(|v| !v.is_empty() && v != "0")
                {
                    panic!("{reason}; HERALD_REQUIRE_TOOLS is set, so this test may not skip");
                }
                eprintln!("SKIPPED: {reason}");
            }
            works
        },
    )
}

/// Sends to 3,000 readers with `herald send`, makes `file` (beside the database) immutable
/// once 300 copies are out, and returns what the interrupted run printed, how many copies
/// had arrived at that moment, and the site and relay for a rerun.
async fn send_until_file_refuses_writes(
    file: &str,
) -> Option<(
    support::herald_site::RunOutput,
    usize,
    support::herald_site::HeraldSite,
    support::smtp_server::SmtpServer,
)> {
    use support::herald_site::{HeraldSite, RunOutput, SendingConfig};
    let server = support::smtp_server::SmtpServer::start(
        Faults::new().with_reply_delay(Duration::from_millis(1)),
    );
    let site = HeraldSite::new(
        &server.url(),
        &SendingConfig {
            lease_seconds: 2,
            ..SendingConfig::default()
        },
    );
    if !immutable_files_work(site.path()) {
        return None;
    }
    site.import_generated(3000).await;
    let child = site.spawn_send(&["--yes"]);
    assert!(server.wait_for(300, Duration::from_secs(60)).await);
    let at_fault = server.received_count();
    let guard = Immutable::set(site.path().join(file));
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("herald stops in time")
        .expect("wait for herald");
    drop(guard);
    let out = RunOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    Some((out, at_fault, site, server))
}

/// After the fault: a rerun sends the rest, and the copies sent twice are at most what the
/// interrupted run had in flight (2 × the in-flight limit of 8) and one commit group.
async fn rerun_sends_the_rest_with_bounded_duplicates(
    site: &support::herald_site::HeraldSite,
    server: &support::smtp_server::SmtpServer,
) {
    let rerun = site.send(&["--yes"]).await;
    assert_eq!(rerun.code(), Some(0), "{}", rerun.describe());
    let received = server.received();
    let copies = tally(
        received
            .iter()
            .flat_map(|r| r.rcpt_to.iter().map(String::as_str)),
    );
    assert_eq!(copies.len(), 3000, "every reader got the issue");
    let extra: usize = copies.values().map(|n| n - 1).sum();
    let bound = 2 * 8 + herald::dispatch::engine::GROUP_MAX;
    assert!(extra <= bound, "{extra} extra copies, more than {bound}");
    eprintln!("{extra} copies sent twice after the fault (bound {bound})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_that_refuses_writes_mid_send_stops_it_with_a_clear_error() {
    let Some((out, at_fault, site, server)) = send_until_file_refuses_writes("herald.db-wal").await
    else {
        return;
    };
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("herald: ") && last.contains("cannot write the outcome"),
        "one clear line: {last}"
    );
    assert!(
        server.received_count() <= at_fault + 2 * 8 + herald::dispatch::engine::GROUP_MAX,
        "the run stopped sending once it could not record"
    );
    rerun_sends_the_rest_with_bounded_duplicates(&site, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_memory_file_that_refuses_writes_mid_send_stops_it_with_a_clear_error() {
    let Some((out, _, site, server)) = send_until_file_refuses_writes("herald.db-shm").await else {
        return;
    };
    // Not a silent death by SIGBUS: a line saying what happened and what to do.
    assert_eq!(out.code(), Some(74), "{}", out.describe());
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("herald: ") && last.contains("-shm") && last.contains("run the same"),
        "one clear line: {last}"
    );
    rerun_sends_the_rest_with_bounded_duplicates(&site, &server).await;
}
