//! `herald send` end to end through Postfix's `smtp-sink`, an SMTP server herald's authors
//! did not write: 10,000 subscribers each get exactly one copy, and smtp-sink's fault options
//! leave the ledger rows where the retry policy says.
//!
//! Skips when smtp-sink is missing, unless `HERALD_REQUIRE_TOOLS=1` (CI), which makes that a
//! failure.

mod support;

use std::time::{Duration, Instant};

use support::herald_site::{tally, HeraldSite, RunOutput, SendingConfig, Status, Summary};
use support::smtp_sink::SmtpSink;

/// Subscribers in the fault tests: enough for several connections, few enough to be quick.
const FEW: usize = 5;

/// Settings for the fault tests: a retry is due only after a minute, so `--no-wait` stops as
/// soon as every row has had its first attempt.
fn fault_settings() -> SendingConfig {
    SendingConfig {
        concurrency: 4,
        pool_size: 4,
        retry_base_seconds: 60,
        timeout_seconds: 10,
        ..SendingConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_subscribers_through_smtp_sink_each_get_exactly_one_copy() {
    const N: usize = 10_000;
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    let started = Instant::now();
    let site = HeraldSite::new(
        &sink.url(),
        // The defaults of a small relay setup: 8 connections, 8 messages in flight.
        &SendingConfig {
            concurrency: 8,
            pool_size: 8,
            batch_size: 1000,
            ..SendingConfig::default()
        },
    );
    let emails = site.import_generated(N).await;
    let imported = started.elapsed();

    let send_started = Instant::now();
    // A guard against a hung send, not a speed check (scripts/bench-send.sh measures speed):
    // a loaded 2-core machine may take several times as long as an idle one.
    let run = tokio::time::timeout(Duration::from_secs(600), site.send(&["--yes"]))
        .await
        .expect("sending 10,000 messages does not hang");
    let send_elapsed = send_started.elapsed();
    assert_eq!(run.code(), Some(0), "send: {}", run.describe());
    assert_eq!(
        run.summary(),
        Some(Summary {
            sent: N as u64,
            failed: 0,
            pending: 0
        }),
        "send: {}",
        run.describe()
    );
    assert_eq!(
        site.status().await,
        Status {
            sent: N as u64,
            ..Status::default()
        }
    );

    // Every reply has arrived, but smtp-sink's counter is read by a thread: wait for it.
    assert!(
        sink.wait_for(N, Duration::from_secs(10)).await,
        "smtp-sink counted {} messages, expected {N}; stderr: {}",
        sink.count(),
        sink.stderr_text()
    );
    assert_eq!(
        sink.count(),
        N,
        "smtp-sink counted exactly one message per row"
    );

    let messages = sink.messages();
    assert_eq!(messages.len(), N, "one dump file per message");
    let copies = tally(
        messages
            .iter()
            .flat_map(|message| message.rcpt_to.iter().map(String::as_str)),
    );
    let expected = tally(emails.iter().map(String::as_str));
    if copies != expected {
        let wrong: Vec<_> = expected
            .iter()
            .filter(|(address, n)| copies.get(*address) != Some(n))
            .take(5)
            .collect();
        panic!(
            "recipients differ from the subscribers ({} distinct received, {} subscribers); \
             first differences (address, expected copies): {wrong:?}",
            copies.len(),
            expected.len()
        );
    }
    assert!(
        messages
            .iter()
            .all(|m| m.mail_from == "newsletter@example.org"),
        "every envelope sender is the newsletter's address"
    );
    eprintln!(
        "smtp-sink: {N} subscribers imported in {imported:?}, sent in {send_elapsed:?} \
         ({:.0} msg/s); whole test {:?}",
        N as f64 / send_elapsed.as_secs_f64(),
        started.elapsed()
    );
}

/// Starts smtp-sink with `fault`, sends to [`FEW`] subscribers with `extra` flags, and
/// returns the run, the ledger and what smtp-sink counted. `None` when smtp-sink is missing.
async fn send_against_fault(fault: &[&str], extra: &[&str]) -> Option<(RunOutput, Status, usize)> {
    let sink = SmtpSink::start(fault)?;
    let site = HeraldSite::new(&sink.url(), &fault_settings());
    site.import_generated(FEW).await;
    let mut args = vec!["--yes"];
    args.extend_from_slice(extra);
    let run = tokio::time::timeout(Duration::from_secs(30), site.send(&args))
        .await
        .unwrap_or_else(|_| panic!("herald send against smtp-sink {fault:?} hung"));
    let ledger = site.status().await;
    // Let the counter thread catch up with whatever smtp-sink received.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Some((run, ledger, sink.count()))
}

fn assert_all_retry(fault: &[&str], run: &RunOutput, ledger: Status) {
    assert_eq!(run.code(), Some(0), "{fault:?}: {}", run.describe());
    assert_eq!(
        run.summary(),
        Some(Summary {
            sent: 0,
            failed: 0,
            pending: FEW as u64
        }),
        "{fault:?}: {}",
        run.describe()
    );
    assert!(
        run.stderr.contains("retries are scheduled"),
        "{fault:?}: --no-wait says when to continue: {}",
        run.describe()
    );
    assert_eq!(
        ledger,
        Status {
            retry: FEW as u64,
            ..Status::default()
        },
        "{fault:?}: every row waits for a retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_reject_of_every_rcpt_leaves_rows_for_retry() {
    let fault = ["-r", "RCPT"];
    let Some((run, ledger, count)) = send_against_fault(&fault, &["--no-wait"]).await else {
        return;
    };
    assert_all_retry(&fault, &run, ledger);
    assert_eq!(count, 0, "no message data reached smtp-sink");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_reject_after_data_fails_rows_permanently() {
    let fault = ["-f", "."];
    let Some((run, ledger, count)) = send_against_fault(&fault, &[]).await else {
        return;
    };
    assert_eq!(run.code(), Some(0), "{fault:?}: {}", run.describe());
    assert_eq!(
        run.summary(),
        Some(Summary {
            sent: 0,
            failed: FEW as u64,
            pending: 0
        }),
        "{fault:?}: {}",
        run.describe()
    );
    assert_eq!(
        ledger,
        Status {
            failed: FEW as u64,
            ..Status::default()
        },
        "{fault:?}: a 500 after the data fails each row for good"
    );
    assert_eq!(
        count, FEW,
        "smtp-sink received each message before refusing it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_closing_at_mail_leaves_rows_for_retry() {
    let fault = ["-Q", "MAIL"];
    let Some((run, ledger, count)) = send_against_fault(&fault, &["--no-wait"]).await else {
        return;
    };
    assert_all_retry(&fault, &run, ledger);
    assert_eq!(count, 0, "no message data reached smtp-sink");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_drop_after_data_leaves_rows_for_retry() {
    let fault = ["-q", "."];
    let Some((run, ledger, count)) = send_against_fault(&fault, &["--no-wait"]).await else {
        return;
    };
    assert_all_retry(&fault, &run, ledger);
    assert_eq!(
        count, FEW,
        "smtp-sink read every message but never answered, so herald cannot know it arrived"
    );
}
