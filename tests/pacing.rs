//! Per-destination pacing against the fault-injecting SMTP server: one domain throttles
//! herald with `421 4.7.0`, and the test watches how many messages each domain has received
//! over time. Margins are generous: what is checked is who slows down and who does not,
//! never how fast this machine is.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald::dispatch::{Progress, RunEnd};
use support::app::{addresses, Harness, RUN_LIMIT};
use support::smtp_server::{Action, Fault, Faults, Reply, SmtpServer, Stage};
use tokio::sync::watch;
use tokio::time::Instant;

/// `(seconds since start, messages to fast.example, messages to slow.example)`, every 50 ms.
type Samples = Arc<Mutex<Vec<(f64, usize, usize)>>>;

fn count(server: &SmtpServer, domain: &str) -> usize {
    server
        .received()
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|to| to.ends_with(domain)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_domain_slows_alone_recovers_and_nothing_fails() {
    let mut emails = addresses("fast", 60);
    for email in emails.iter_mut() {
        *email = email.replace("@example.com", "@fast.example");
    }
    let slow: Vec<String> = (0..60).map(|i| format!("slow{i}@slow.example")).collect();
    emails.extend(slow.iter().cloned());
    // slow.example throttles its first eight deliveries, closing the connection each time,
    // as a mailbox provider does.
    let throttle = Fault::new(
        Stage::Rcpt,
        Action::ReplyAndClose(Reply::new(
            421,
            "4.7.0 Try again later, closing connection. (rate limited)",
        )),
    )
    .for_addresses_containing("@slow.example")
    .times(8);
    let h = Harness::start(Faults::new().with(throttle), &emails, |s| {
        // Every domain gets 20 messages a second at most: a pace the test can watch.
        s.sending.provider_rate_per_second = 20.0;
        s.sending.max_attempts = 1;
    })
    .await;

    let samples: Samples = Arc::default();
    let sampler = {
        let samples = samples.clone();
        let server = &h.server;
        let start = Instant::now();
        async move {
            loop {
                let (fast, slow) = (
                    count(server, "@fast.example"),
                    count(server, "@slow.example"),
                );
                samples
                    .lock()
                    .unwrap()
                    .push((start.elapsed().as_secs_f64(), fast, slow));
                if fast + slow == 120 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (progress_tx, mut progress_rx) = watch::channel(Progress::default());
    let throttled_seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let watcher = {
        let seen = throttled_seen.clone();
        tokio::spawn(async move {
            while progress_rx.changed().await.is_ok() {
                let p = progress_rx.borrow_and_update().clone();
                seen.lock()
                    .unwrap()
                    .extend(p.throttled.into_iter().map(|g| g.name));
            }
        })
    };
    let (_stop, shutdown) = watch::channel(false);
    let dispatcher = h.app.dispatcher();
    let run = dispatcher.run(h.job.clone(), true, progress_tx, shutdown);
    let (end, ()) = tokio::time::timeout(RUN_LIMIT, async { tokio::join!(run, sampler) })
        .await
        .expect("the send ended in time");
    assert_eq!(end.unwrap(), RunEnd::Finished, "{}", h.transcript());
    watcher.await.unwrap();

    // Nothing failed, and throttling cost no attempt (max_attempts is 1: a counted attempt
    // would have failed the row).
    assert_eq!(h.rows_with_status("sent").await, 120);
    for email in &emails {
        let row = h.row(email).await;
        assert_eq!((row.status.as_str(), row.attempts), ("sent", 0), "{email}");
    }
    assert_eq!(h.copies_for(&slow[0]).len(), 1);

    let samples = samples.lock().unwrap().clone();
    let time_when = |pred: &dyn Fn(&(f64, usize, usize)) -> bool| {
        samples.iter().find(|s| pred(s)).map(|s| s.0).unwrap()
    };
    let fast_done = time_when(&|s| s.1 == 60);
    let slow_done = time_when(&|s| s.2 == 60);
    let slow_when_fast_done = samples.iter().find(|s| s.1 == 60).unwrap().2;
    // The fast domain kept its pace: 60 messages at 20 a second is three seconds, and its
    // pace is a ceiling (not faster than about 2.5 s). Generous: a loaded machine may be slow.
    assert!(
        fast_done > 2.0,
        "fast.example went faster than its rate: {samples:?}"
    );
    assert!(
        fast_done < 20.0,
        "fast.example was held back by slow.example: {samples:?}"
    );
    // The throttled domain slowed down: it was well behind when the fast one was done, and
    // finished later.
    assert!(
        slow_when_fast_done <= 45,
        "slow.example did not slow down: {slow_when_fast_done} of 60 when fast.example was done\n{samples:?}"
    );
    assert!(slow_done > fast_done, "{samples:?}");

    // The progress line named the throttled group, and only that one.
    let seen = throttled_seen.lock().unwrap().clone();
    assert!(seen.iter().any(|g| g == "slow.example"), "{seen:?}");
    assert!(seen.iter().all(|g| g == "slow.example"), "{seen:?}");

    // It recovers: the group is no longer throttled once it has grown back to its pace.
    let recovered = tokio::time::timeout(Duration::from_secs(60), async {
        while !h.app.pacer.throttled_groups().is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        recovered.is_ok(),
        "still throttled: {:?}",
        h.app.pacer.throttled_groups()
    );
}
