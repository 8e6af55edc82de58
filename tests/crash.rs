//! Crash safety of `herald send`, end to end: the real binary against the in-process SMTP
//! server, killed with SIGKILL at random moments and restarted, then stopped gracefully with
//! SIGTERM.
//!
//! The kill timings come from a seeded generator. The seed is printed; rerun with
//! `HERALD_CRASH_SEED=N cargo test --test crash` to replay the same timings.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use support::herald_site::{tally, wait_until, HeraldSite, SendingConfig, Status, Summary};
use support::smtp_server::{Faults, SmtpServer};

/// Subscribers in the crash test.
const SUBSCRIBERS: usize = 3000;
/// SIGKILLs before the run that may finish.
const KILLS: usize = 5;
/// `sending.lease_seconds`: a killed run's rows come back this long after its last heartbeat.
const LEASE_SECONDS: u64 = 2;
/// `sending.concurrency` and `smtp.pool_size`: the dispatcher keeps at most
/// min(concurrency, pool_size) messages in flight.
const IN_FLIGHT: u64 = 8;
/// `herald::dispatch::engine::GROUP_MAX`: the most outcomes one group commit writes.
const GROUP_MAX: u64 = 1000;
/// Every reply of the test server waits this long, so a send takes a few seconds and a kill
/// lands mid-send.
const REPLY_DELAY: Duration = Duration::from_millis(1);

fn crash_settings() -> SendingConfig {
    SendingConfig {
        concurrency: IN_FLIGHT as u32,
        pool_size: IN_FLIGHT as u32,
        batch_size: 500,
        lease_seconds: LEASE_SECONDS,
        // A row taken back after a crash is due at once. If it were treated as a failed
        // attempt instead, it would wait a minute and the final run would blow its time limit.
        retry_base_seconds: 60,
        max_attempts: 8,
        timeout_seconds: 10,
    }
}

fn seed() -> u64 {
    match std::env::var("HERALD_CRASH_SEED") {
        Ok(seed) => seed.parse().expect("HERALD_CRASH_SEED is a u64"),
        Err(_) => rand::random(),
    }
}

/// What one killed run left behind.
#[derive(Debug)]
struct Kill {
    after: Duration,
    received_in_run: usize,
    ledger: Status,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_duplicates_stay_bounded() {
    let test_started = Instant::now();
    let seed = seed();
    eprintln!("crash test seed {seed} (replay with HERALD_CRASH_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let server = SmtpServer::start(Faults::new().with_reply_delay(REPLY_DELAY));
    let site = HeraldSite::new(&server.url(), &crash_settings());
    let emails = site.import_generated(SUBSCRIBERS).await;

    let mut kills: Vec<Kill> = Vec::new();
    for round in 1..=KILLS {
        let delay = Duration::from_millis(rng.gen_range(200..=1500));
        let before = server.received_count();
        let started = Instant::now();
        let mut child = site.spawn_send(&["--yes"]);
        let finished = tokio::select! {
            status = child.wait() => Some(status.expect("wait for herald")),
            _ = tokio::time::sleep(delay) => None,
        };
        if let Some(status) = finished {
            // Everything was sent before this kill was due: nothing more to crash.
            eprintln!("round {round}: herald finished ({status}) before the kill at {delay:?}");
            break;
        }
        // SIGKILL, then reap.
        child.kill().await.expect("SIGKILL herald");
        let after = started.elapsed();
        let received_in_run = server.received_count() - before;
        let Some(ledger) = site.status_if_queued().await else {
            // Killed before its enqueue committed: nothing was queued, so nothing went out.
            assert_eq!(
                received_in_run, 0,
                "mail went out for an issue never queued"
            );
            eprintln!("round {round}: SIGKILL after {after:?}, before the issue was queued");
            continue;
        };
        eprintln!(
            "round {round}: SIGKILL after {after:?} (planned {delay:?}); {received_in_run} \
             copies arrived in this run; ledger afterwards: {ledger:?}"
        );
        kills.push(Kill {
            after,
            received_in_run,
            ledger,
        });
    }
    assert!(
        kills
            .iter()
            .any(|k| k.received_in_run > 0 && k.ledger.sending > 0),
        "no kill landed mid-send (messages arriving, rows claimed), so nothing was tested: \
         {kills:#?}"
    );

    // The run that may finish. The rows the last kill left `sending` come back once their
    // lease ends: LEASE_SECONDS after the dead run's last heartbeat, plus up to 1 s because
    // leases are whole Unix seconds, plus the next claim (at most one idle poll, 1 s, when
    // nothing else is due). So the final run may sit idle, waiting for orphans, for at most
    // about LEASE_SECONDS + 2 s. Sample the server while it runs and measure the longest
    // stretch in which no copy arrived: a run that waited for the default 20 s lease, or
    // treated a taken-back row as a failed attempt (retry_base_seconds = 60), would stall far
    // longer.
    let final_started = Instant::now();
    let mut final_run = std::pin::pin!(site.send(&["--yes"]));
    let mut last_count = server.received_count();
    let mut last_change = Instant::now();
    let mut longest_stall = Duration::ZERO;
    let last = loop {
        tokio::select! {
            out = &mut final_run => break out,
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        let count = server.received_count();
        if count != last_count {
            last_count = count;
            last_change = Instant::now();
        }
        longest_stall = longest_stall.max(last_change.elapsed());
        assert!(
            final_started.elapsed() < Duration::from_secs(45),
            "the final run did not finish within 45 s"
        );
    };
    let final_elapsed = final_started.elapsed();
    assert_eq!(last.code(), Some(0), "final run: {}", last.describe());
    assert_eq!(
        last.summary(),
        Some(Summary {
            sent: SUBSCRIBERS as u64,
            failed: 0,
            pending: 0
        }),
        "final run: {}",
        last.describe()
    );
    // The stall includes the start-up before the first copy, so allow one more second.
    let stall_limit = Duration::from_secs(LEASE_SECONDS + 3);
    assert!(
        longest_stall <= stall_limit,
        "the final run waited {longest_stall:?} without sending (limit {stall_limit:?}): \
         orphaned rows were not taken back promptly"
    );

    let ledger = site.status().await;
    assert_eq!(
        ledger,
        Status {
            sent: SUBSCRIBERS as u64,
            ..Status::default()
        },
        "every ledger row is sent"
    );

    let received = server.received();
    let copies = tally(
        received
            .iter()
            .flat_map(|message| message.rcpt_to.iter().map(String::as_str)),
    );
    let subscribers: BTreeSet<String> = emails.iter().map(|e| e.to_ascii_lowercase()).collect();
    let strangers: Vec<&String> = copies
        .keys()
        .filter(|address| !subscribers.contains(*address))
        .collect();
    assert!(
        strangers.is_empty(),
        "copies went to addresses that are not subscribers: {strangers:?}"
    );
    let missing: Vec<&String> = subscribers
        .iter()
        .filter(|address| !copies.contains_key(*address))
        .collect();
    assert!(
        missing.is_empty(),
        "{} subscribers never received the issue (first: {:?})",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );

    // A duplicate is a message whose 250 arrived but whose `sent` mark was not committed when
    // the process died. At a kill, those are at most:
    // - the messages in flight and the outcomes queued for the writer: a send reserves its
    //   place in the writer's queue before it goes out, and the queue holds 2 * IN_FLIGHT
    //   (IN_FLIGHT = min(concurrency, pool_size));
    // - the group the writer is committing: at most GROUP_MAX (1000).
    // Rows merely claimed (up to batch_size) were never sent, so they come back without
    // duplicating anything. Each kill can thus add at most 2 * IN_FLIGHT + GROUP_MAX extra
    // copies. In practice the writer keeps up (a group per 25 ms), so a kill costs about what
    // is in flight.
    let duplicated = copies.values().filter(|&&n| n > 1).count() as u64;
    let extra_copies = copies.values().map(|&n| n as u64 - 1).sum::<u64>();
    let bound = kills.len() as u64 * (2 * IN_FLIGHT + GROUP_MAX);
    eprintln!(
        "crash test (seed {seed}): {} kills at {:?}; {} copies for {SUBSCRIBERS} subscribers; \
         {duplicated} subscribers received the issue more than once ({extra_copies} extra \
         copies; bound {bound}); final run {final_elapsed:?}, longest stall {longest_stall:?}; \
         whole test {:?}",
        kills.len(),
        kills.iter().map(|k| k.after).collect::<Vec<_>>(),
        received.len(),
        test_started.elapsed()
    );
    assert!(
        extra_copies <= bound,
        "{extra_copies} extra copies ({duplicated} subscribers) exceed the bound {bound}"
    );
    assert!(
        test_started.elapsed() < Duration::from_secs(60),
        "the crash test took {:?}",
        test_started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_a_rerun_sends_each_recipient_exactly_once() {
    const N: usize = 2000;
    let server = SmtpServer::start(Faults::new().with_reply_delay(REPLY_DELAY));
    let site = HeraldSite::new(&server.url(), &crash_settings());
    let emails = site.import_generated(N).await;

    let child = site.spawn_send(&["--yes"]);
    let pid = child.id().expect("herald is running");
    // Once messages arrive, herald is past start-up and its signal handler is installed.
    assert!(
        wait_until(Duration::from_secs(30), || server.received_count() >= 200).await,
        "herald did not start sending within 30 s"
    );
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(term.success(), "kill -TERM {pid} failed");
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("herald stops within 20 s of SIGTERM")
        .expect("wait for herald");
    let stopped = support::herald_site::RunOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_eq!(stopped.code(), Some(130), "SIGTERM: {}", stopped.describe());
    let summary = stopped
        .summary()
        .unwrap_or_else(|| panic!("no summary line: {}", stopped.describe()));
    assert!(
        summary.pending > 0 && summary.failed == 0 && summary.sent + summary.pending == N as u64,
        "stopped mid-send, so some rows are pending: {summary:?}"
    );
    let ledger = site.status().await;
    assert_eq!(ledger.sending, 0, "no row is left sending: {ledger:?}");
    assert_eq!(
        ledger.sent, summary.sent,
        "the summary matches the ledger: {ledger:?}"
    );
    // In-flight messages finished and were recorded: what the server accepted is exactly
    // what the ledger calls sent.
    assert_eq!(
        server.received_count() as u64,
        ledger.sent,
        "after a graceful stop the ledger knows every accepted message"
    );
    eprintln!(
        "SIGTERM after {} sent: {summary:?}",
        server.received_count()
    );

    let rerun = site.send(&["--yes"]).await;
    assert_eq!(rerun.code(), Some(0), "rerun: {}", rerun.describe());
    assert_eq!(
        rerun.summary(),
        Some(Summary {
            sent: N as u64,
            failed: 0,
            pending: 0
        }),
        "rerun: {}",
        rerun.describe()
    );
    let received = server.received();
    assert_eq!(received.len(), N, "one copy per subscriber, no duplicates");
    let copies = tally(
        received
            .iter()
            .flat_map(|message| message.rcpt_to.iter().map(String::as_str)),
    );
    let expected = tally(emails.iter().map(String::as_str));
    assert_eq!(copies, expected, "every subscriber exactly once");
}
