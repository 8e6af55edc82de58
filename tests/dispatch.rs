//! The dispatcher against the fault-injecting SMTP server over TCP and a real database, each
//! test once on SQLite and once on PostgreSQL: one test per fault. Each checks the ledger (status, attempts, reply, retry time, message id,
//! subscriber status) and what the relay actually received.
//!
//! Ledger convention: `attempts` counts attempts that did NOT deliver (each `retry` or
//! `failed` outcome adds one; `sent` adds none), so a row sent on its second try has
//! `attempts == 1`, and a row that ran out of tries has `attempts == max_attempts`.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use herald::dispatch::{unix_now, RunEnd};
use herald::domain::SubscriberStatus;
use support::app::{addresses, header, run_app, run_with_shutdown, Harness};
use support::postgres::Backend;
use support::smtp_server::{Fault, Faults, Stage};
use tokio::sync::watch;

/// Every subscriber row is `sent` with a message id and a 250 reply, and the relay holds
/// exactly one copy for each, carrying that message id.
async fn assert_all_sent_once(h: &Harness, emails: &[String]) {
    for email in emails {
        let row = h.row(email).await;
        assert_eq!(row.status, "sent", "{email}: {row:?}\n{}", h.transcript());
        assert!(
            row.last_reply
                .as_deref()
                .is_some_and(|r| r.starts_with("250")),
            "{email}: {row:?}"
        );
        assert_eq!((row.lease_until, row.lease_token), (None, None), "{email}");
        assert!(row.sent_at.is_some(), "{email}");
        let copies = h.copies_for(email);
        assert_eq!(copies.len(), 1, "{email} got {} copies", copies.len());
        let message_id = row.message_id.expect("a sent row has a message id");
        let text = copies[0].text();
        assert_eq!(
            header(&text, "Message-ID").as_deref(),
            Some(message_id.as_str()),
            "{email}: the ledger names the copy that arrived"
        );
        assert_eq!(copies[0].rcpt_to, vec![email.clone()]);
        let to = header(&text, "To").unwrap_or_default();
        assert!(to.contains(email.as_str()), "{email}: To is {to:?}");
    }
}

on_both_backends! {
    async fn clean_send_delivers_one_personal_copy_to_every_subscriber(backend: Backend) {
        let emails = addresses("reader", 50);
        let h = Harness::start_on(backend, Faults::new(), &emails, |_| {}).await;

        assert_eq!(h.run(true).await, RunEnd::Finished);

        assert_all_sent_once(&h, &emails).await;
        assert_eq!(h.server.received_count(), 50);
        let mut unsubscribe_urls = HashSet::new();
        for email in &emails {
            let row = h.row(email).await;
            assert_eq!(row.attempts, 0, "{email}");
            let text = h.copies_for(email)[0].text();
            let list_unsubscribe = header(&text, "List-Unsubscribe").expect("List-Unsubscribe");
            let url = list_unsubscribe
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string();
            assert!(url.contains("/unsubscribe/"), "{list_unsubscribe}");
            assert!(
                unsubscribe_urls.insert(url),
                "{email} shares an unsubscribe URL"
            );
            assert_eq!(
                header(&text, "List-Unsubscribe-Post").as_deref(),
                Some("List-Unsubscribe=One-Click")
            );
        }
        assert_eq!(h.issue_status().await, "sent");
        assert_eq!(h.rows_with_status("sent").await, 50);
    }
}

/// A 451 at `stage` for one recipient, once: the first run (long backoff, no wait) leaves the
/// row in `retry` with a future due time and nothing delivered to them; once due, the next
/// run sends it exactly once.
async fn first_time_4xx_is_retried_then_sent_once(backend: Backend, stage: Stage) {
    let mut emails = addresses("calm", 4);
    emails.push("again-1@example.com".into());
    let fault = Fault::reply(stage, 451, "4.3.0 Try again later").times(1);
    // The filter at MAIL sees the sender, so there the fault hits whichever transaction comes
    // first; with one connection that is the first row claimed.
    let (fault, flaky) = match stage {
        Stage::Mail => (fault, emails[0].clone()),
        _ => (
            fault.for_addresses_containing("again-"),
            "again-1@example.com".to_string(),
        ),
    };
    let h = Harness::start_on(backend, Faults::new().with(fault), &emails, |s| {
        s.sending.concurrency = 1;
        s.sending.retry_base_seconds = 600;
        s.sending.retry_max_seconds = 600;
    })
    .await;

    let before = unix_now();
    let end = h.run(false).await;
    let row = h.row(&flaky).await;
    match end {
        RunEnd::Waiting { next_due_at } => assert_eq!(next_due_at, row.next_attempt_at),
        other => panic!("expected Waiting, got {other:?}\n{}", h.transcript()),
    }
    assert_eq!(row.status, "retry", "{row:?}\n{}", h.transcript());
    assert_eq!(row.attempts, 1);
    assert!(row.next_attempt_at >= before + 600, "{row:?}");
    assert!(
        row.last_reply.as_deref().is_some_and(|r| r.contains("451")),
        "{row:?}"
    );
    assert_eq!((row.lease_until, row.lease_token), (None, None));
    assert!(row.message_id.is_none());
    assert!(h.copies_for(&flaky).is_empty());
    for email in emails.iter().filter(|e| **e != flaky) {
        let row = h.row(email).await;
        assert_eq!((row.status.as_str(), row.attempts), ("sent", 0), "{email}");
    }
    assert_eq!(h.issue_status().await, "sending");

    h.make_retries_due().await;
    assert_eq!(h.run(false).await, RunEnd::Finished);
    assert_all_sent_once(&h, &emails).await;
    assert_eq!(h.row(&flaky).await.attempts, 1, "one failed try, then sent");
    assert_eq!(h.issue_status().await, "sent");
}

on_both_backends! {
    async fn transient_reply_to_mail_from_is_retried_then_sent_once(backend: Backend) {
        first_time_4xx_is_retried_then_sent_once(backend, Stage::Mail).await;
    }
}

on_both_backends! {
    async fn transient_reply_to_rcpt_to_is_retried_then_sent_once(backend: Backend) {
        first_time_4xx_is_retried_then_sent_once(backend, Stage::Rcpt).await;
    }
}

on_both_backends! {
    async fn transient_reply_to_data_is_retried_then_sent_once(backend: Backend) {
        first_time_4xx_is_retried_then_sent_once(backend, Stage::Data).await;
    }
}

on_both_backends! {
    async fn transient_reply_after_the_final_dot_is_retried_then_sent_once(backend: Backend) {
        first_time_4xx_is_retried_then_sent_once(backend, Stage::DataEnd).await;
    }
}

on_both_backends! {
    async fn unknown_user_at_rcpt_fails_permanently_and_bounces_the_subscriber(backend: Backend) {
        let mut emails = addresses("fine", 3);
        emails.push("bad-1@example.com".into());
        let bad = "bad-1@example.com";
        let faults = Faults::new().with(
            Fault::reply(Stage::Rcpt, 550, "5.1.1 User unknown").for_addresses_containing("bad-"),
        );
        let h = Harness::start_on(backend, faults, &emails, |_| {}).await;

        assert_eq!(h.run(true).await, RunEnd::Finished);

        let row = h.row(bad).await;
        assert_eq!(row.status, "failed", "{row:?}");
        assert!(row.permanent);
        assert_eq!(row.attempts, 1);
        assert!(row.message_id.is_none());
        let reply = row.last_reply.unwrap_or_default();
        assert!(reply.contains("550") && reply.contains("5.1.1"), "{reply}");
        assert_eq!(h.subscriber_status(bad).await, SubscriberStatus::Bounced);
        assert_eq!(h.events("bounce", bad).await, 1);
        assert_eq!(
            h.rcpt_commands_for(bad),
            1,
            "never retried\n{}",
            h.transcript()
        );
        assert!(h.copies_for(bad).is_empty());

        assert_all_sent_once(&h, &emails[..3]).await;
        for email in &emails[..3] {
            assert_eq!(h.subscriber_status(email).await, SubscriberStatus::Active);
            assert_eq!(h.events("bounce", email).await, 0);
        }
        assert_eq!(h.issue_status().await, "sent");
    }
}

on_both_backends! {
    async fn spam_rejection_after_the_final_dot_fails_permanently_but_keeps_the_subscriber(backend: Backend) {
        let mut emails = addresses("fine", 3);
        emails.push("spammy-1@example.com".into());
        let spammy = "spammy-1@example.com";
        let faults = Faults::new().with(
            Fault::reply(Stage::DataEnd, 550, "5.7.1 Message rejected as spam")
                .for_addresses_containing("spammy-"),
        );
        let h = Harness::start_on(backend, faults, &emails, |_| {}).await;

        assert_eq!(h.run(true).await, RunEnd::Finished);

        let row = h.row(spammy).await;
        assert_eq!(row.status, "failed", "{row:?}");
        assert!(row.permanent);
        assert_eq!(row.attempts, 1);
        let reply = row.last_reply.unwrap_or_default();
        assert!(reply.contains("5.7.1"), "{reply}");
        assert_eq!(h.subscriber_status(spammy).await, SubscriberStatus::Active);
        assert_eq!(h.events("bounce", spammy).await, 0);
        assert_eq!(
            h.rcpt_commands_for(spammy),
            1,
            "never retried\n{}",
            h.transcript()
        );
        assert!(h.copies_for(spammy).is_empty());
        assert_all_sent_once(&h, &emails[..3]).await;
        assert_eq!(h.issue_status().await, "sent");
    }
}

on_both_backends! {
    /// A 421 is a throttle (the relay or provider wants herald to slow down): the row comes back
    /// shortly, without counting an attempt.
    async fn service_closing_421_and_disconnect_is_deferred_without_an_attempt_then_sent(backend: Backend) {
        let mut emails = addresses("fine", 4);
        emails.push("closed-1@example.com".into());
        let closed = "closed-1@example.com";
        let faults = Faults::new().with(
            Fault::close(Stage::Rcpt)
                .for_addresses_containing("closed-")
                .times(1),
        );
        let h = Harness::start_on(backend, faults, &emails, |_| {}).await;

        assert_eq!(h.run(true).await, RunEnd::Finished);

        assert_all_sent_once(&h, &emails).await;
        let row = h.row(closed).await;
        assert_eq!(row.attempts, 0, "{row:?}");
        assert_eq!(h.rcpt_commands_for(closed), 2);
        for email in &emails[..4] {
            assert_eq!(
                h.row(email).await.attempts,
                0,
                "{email}\n{}",
                h.transcript()
            );
        }
        assert_eq!(h.issue_status().await, "sent");
    }
}

on_both_backends! {
    async fn silent_drop_after_the_final_dot_is_retried_and_is_the_documented_duplicate(backend: Backend) {
        let mut emails = addresses("fine", 4);
        emails.push("lost-1@example.com".into());
        let lost = "lost-1@example.com";
        let faults = Faults::new().with(
            Fault::drop(Stage::DataEnd)
                .for_addresses_containing("lost-")
                .times(1),
        );
        let h = Harness::start_on(backend, faults, &emails, |s| {
            s.sending.retry_base_seconds = 600;
            s.sending.retry_max_seconds = 600;
        })
        .await;

        // The outcome is unknown: the row waits for a retry.
        let before = unix_now();
        assert!(matches!(h.run(false).await, RunEnd::Waiting { .. }));
        let row = h.row(lost).await;
        assert_eq!((row.status.as_str(), row.attempts), ("retry", 1), "{row:?}");
        assert!(row.next_attempt_at >= before + 600);
        assert!(row.message_id.is_none());
        assert_eq!(h.dropped_for(lost).len(), 1);
        assert!(h.copies_for(lost).is_empty());

        h.make_retries_due().await;
        assert_eq!(h.run(true).await, RunEnd::Finished);
        assert_all_sent_once(&h, &emails).await;
        assert_eq!(h.row(lost).await.attempts, 1);
        // The relay holds the dropped copy and the retried one: the duplicate DESIGN.md allows.
        assert_eq!(h.dropped_for(lost).len(), 1);
        assert_eq!(h.copies_for(lost).len(), 1);
        assert!(h.server.dropped_after_data().len() == 1);
    }
}

on_both_backends! {
    async fn reply_slower_than_the_timeout_goes_to_retry_and_is_sent_later(backend: Backend) {
        // One connection, so the connection whose reply never came in time is the one the next
        // messages would reuse.
        let mut emails = vec!["slow-1@example.com".to_string()];
        emails.extend(addresses("after", 4));
        let slow = "slow-1@example.com";
        let faults = Faults::new().with(
            Fault::delay(Stage::Rcpt, Duration::from_secs(2))
                .for_addresses_containing("slow-")
                .times(1),
        );
        let h = Harness::start_on(backend, faults, &emails, |s| {
            s.smtp.timeout_seconds = 1;
            s.smtp.pool_size = 1;
            s.sending.concurrency = 1;
            s.sending.retry_base_seconds = 600;
            s.sending.retry_max_seconds = 600;
        })
        .await;

        assert!(
            matches!(h.run(false).await, RunEnd::Waiting { .. }),
            "{}",
            h.transcript()
        );
        let row = h.row(slow).await;
        assert_eq!((row.status.as_str(), row.attempts), ("retry", 1), "{row:?}");
        assert!(
            row.last_reply
                .as_deref()
                .is_some_and(|r| r.contains("no reply within 1 s")),
            "{row:?}"
        );
        assert_eq!(h.rows_with_status("sending").await, 0);
        assert_all_sent_once(&h, &emails[1..]).await;

        h.make_retries_due().await;
        assert_eq!(h.run(true).await, RunEnd::Finished);
        assert_all_sent_once(&h, &emails).await;
        assert_eq!(
            h.server.received_count(),
            emails.len(),
            "{}",
            h.transcript()
        );
    }
}

on_both_backends! {
    async fn a_recipient_that_always_gets_451_fails_after_max_attempts(backend: Backend) {
        let mut emails = addresses("fine", 2);
        emails.push("doomed-1@example.com".into());
        let doomed = "doomed-1@example.com";
        let faults = Faults::new().with(
            Fault::reply(Stage::Rcpt, 451, "4.2.1 Mailbox busy").for_addresses_containing("doomed-"),
        );
        let h = Harness::start_on(backend, faults, &emails, |s| s.sending.max_attempts = 3).await;

        assert_eq!(h.run(true).await, RunEnd::Finished);

        let row = h.row(doomed).await;
        assert_eq!(row.status, "failed", "{row:?}");
        assert!(!row.permanent);
        assert_eq!(row.attempts, 3);
        assert!(
            row.last_reply.as_deref().is_some_and(|r| r.contains("451")),
            "{row:?}"
        );
        assert_eq!(h.rcpt_commands_for(doomed), 3, "{}", h.transcript());
        assert!(h.copies_for(doomed).is_empty());
        assert_eq!(h.subscriber_status(doomed).await, SubscriberStatus::Active);
        assert_all_sent_once(&h, &emails[..2]).await;
        assert_eq!(h.issue_status().await, "sent");
    }
}

on_both_backends! {
    async fn relay_down_pauses_without_counting_attempts_and_resumes_when_it_is_back(backend: Backend) {
        let emails = addresses("patient", 6);
        let h = Harness::start_on(backend, Faults::new(), &emails, |_| {}).await;
        h.server.close_listener().await;

        match h.run(true).await {
            RunEnd::Paused { reason } => assert!(!reason.is_empty()),
            other => panic!("expected Paused, got {other:?}"),
        }
        for email in &emails {
            let row = h.row(email).await;
            assert_eq!(
                (row.status.as_str(), row.attempts),
                ("queued", 0),
                "{row:?}"
            );
            assert_eq!((row.lease_until, row.lease_token), (None, None));
        }
        assert_eq!(h.server.received_count(), 0);
        assert_eq!(h.issue_status().await, "sending");

        h.server.reopen_listener().unwrap();
        assert_eq!(h.run(true).await, RunEnd::Finished);
        assert_all_sent_once(&h, &emails).await;
        for email in &emails {
            assert_eq!(h.row(email).await.attempts, 0, "{email}");
        }
        assert_eq!(h.issue_status().await, "sent");
    }
}

on_both_backends! {
    async fn unsubscribing_during_a_send_skips_the_row_and_sends_nothing(backend: Backend) {
        let emails = addresses("member", 8);
        let leaver = emails[6].clone();
        let faults = Faults::new().with_reply_delay(Duration::from_millis(40));
        let h = Harness::start_on(backend, faults, &emails, |s| {
            s.smtp.pool_size = 1;
            s.sending.concurrency = 1;
        })
        .await;

        let unsubscribe = async {
            assert!(h.server.wait_for(1, Duration::from_secs(30)).await);
            let change = h
                .app
                .store
                .change_subscriber_status(
                    &support::app::address(&leaver),
                    SubscriberStatus::Unsubscribed,
                    "web",
                )
                .await
                .unwrap();
            assert!(matches!(
                change,
                herald::store::StatusChange::Changed { .. }
            ));
            h.server.received_count()
        };
        let (end, received_at_unsubscribe) = tokio::join!(h.run(true), unsubscribe);
        assert_eq!(end, RunEnd::Finished);
        assert!(
            received_at_unsubscribe < 6,
            "the unsubscribe came too late to mean anything ({received_at_unsubscribe} sent)"
        );

        let row = h.row(&leaver).await;
        assert_eq!(
            (row.status.as_str(), row.attempts),
            ("skipped", 0),
            "{row:?}"
        );
        assert!(row.message_id.is_none());
        assert!(h.copies_for(&leaver).is_empty(), "{}", h.transcript());
        assert_eq!(h.rcpt_commands_for(&leaver), 0);
        let rest: Vec<String> = emails.iter().filter(|e| **e != leaver).cloned().collect();
        assert_all_sent_once(&h, &rest).await;
        assert_eq!(h.issue_status().await, "sent");
    }
}

on_both_backends! {
    async fn two_dispatchers_on_one_issue_send_each_copy_once(backend: Backend) {
        let emails = addresses("shared", 40);
        let faults = Faults::new().with_reply_delay(Duration::from_millis(2));
        let h = Harness::start_on(backend, faults, &emails, |s| s.sending.batch_size = 5).await;
        let other = h.second_app(|_| {}).await;
        let (other_job, other_issue) = support::app::enqueue(&other).await;
        assert_eq!(other_issue, h.issue_id, "the same issue, by slug");

        let (a, b) = tokio::join!(h.run(true), run_app(&other, &other_job, true));
        assert_eq!((a, b), (RunEnd::Finished, RunEnd::Finished));

        assert_all_sent_once(&h, &emails).await;
        assert_eq!(h.server.received_count(), emails.len());
        assert_eq!(h.issue_status().await, "sent");
    }
}

on_both_backends! {
    async fn shutdown_mid_send_hands_rows_back_and_a_second_run_finishes_them(backend: Backend) {
        let emails = addresses("steady", 12);
        let faults = Faults::new().with_reply_delay(Duration::from_millis(20));
        let h = Harness::start_on(backend, faults, &emails, |s| {
            s.smtp.pool_size = 2;
            s.sending.concurrency = 2;
        })
        .await;

        let (stop, shutdown) = watch::channel(false);
        let trigger = async {
            assert!(h.server.wait_for(3, Duration::from_secs(30)).await);
            stop.send_replace(true);
        };
        let (end, ()) = tokio::join!(run_with_shutdown(&h.app, &h.job, true, shutdown), trigger);
        assert_eq!(end, RunEnd::Interrupted);

        assert_eq!(
            h.rows_with_status("sending").await,
            0,
            "every lease handed back"
        );
        let sent_first = h.rows_with_status("sent").await as usize;
        assert!(
            sent_first >= 3 && sent_first < emails.len(),
            "{sent_first} sent"
        );
        assert_eq!(h.server.received_count(), sent_first, "{}", h.transcript());
        assert_eq!(
            h.rows_with_status("queued").await as usize,
            emails.len() - sent_first
        );
        for email in &emails {
            let row = h.row(email).await;
            assert_eq!(row.attempts, 0, "{row:?}");
            assert_eq!((row.lease_until, row.lease_token), (None, None));
        }
        assert_eq!(h.issue_status().await, "sending");

        assert_eq!(h.run(true).await, RunEnd::Finished);
        assert_all_sent_once(&h, &emails).await;
        assert_eq!(h.server.received_count(), emails.len());
        assert_eq!(h.issue_status().await, "sent");
    }
}

on_both_backends! {
    async fn sender_rejected_at_mail_from_pauses_and_bounces_no_subscriber(backend: Backend) {
        // Postfix's wording for an unlisted sender: a 5.1.x about OUR address, which every
        // message would get. It is the relay's setup at fault, not the list's.
        let emails = addresses("innocent", 3);
        let faults = Faults::new().with(Fault::reply(
            Stage::Mail,
            550,
            "5.1.0 <newsletter@example.org>: Sender address rejected: User unknown",
        ));
        let h = Harness::start_on(backend, faults, &emails, |_| {}).await;

        match h.run(true).await {
            RunEnd::Paused { reason } => assert!(reason.contains("Sender address rejected")),
            other => panic!("expected Paused, got {other:?}"),
        }
        for email in &emails {
            assert_eq!(h.subscriber_status(email).await, SubscriberStatus::Active);
            assert_eq!(h.events("bounce", email).await, 0);
            let row = h.row(email).await;
            assert_eq!(
                (row.status.as_str(), row.attempts),
                ("queued", 0),
                "{row:?}"
            );
            assert!(!row.permanent);
        }
        assert_eq!(h.server.received_count(), 0);

        // The operator fixes the relay; the same issue resumes.
        h.server.clear_faults();
        assert_eq!(h.run(true).await, RunEnd::Finished);
        assert_all_sent_once(&h, &emails).await;
    }
}

on_both_backends! {
    /// `sending.rate_per_second` is a token bucket: a burst of up to the rate, then the rate.
    /// 25 messages at 10 per second cannot all go out in less than 1.5 s (10 at once, then 15
    /// at 100 ms intervals, less one interval for timing slack). Only a lower bound is checked,
    /// so a slow machine cannot make this fail.
    async fn rate_limit_paces_sending(backend: Backend) {
        let emails = addresses("paced", 25);
        let h = Harness::start_on(backend, Faults::new(), &emails, |s| {
            s.sending.rate_per_second = 10;
            s.sending.concurrency = 8;
        })
        .await;
        let started = std::time::Instant::now();
        assert_eq!(h.run(true).await, RunEnd::Finished);
        let elapsed = started.elapsed();
        assert_all_sent_once(&h, &emails).await;
        assert!(
            elapsed >= Duration::from_millis(1400),
            "25 messages at 10/s took only {elapsed:?}"
        );
    }
}
