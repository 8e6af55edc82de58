//! Several relays: routes by recipient domain and by kind, failover when a relay is down,
//! and several issues sent at once by `herald serve`'s dispatcher, each getting its share.
//! Real SMTP over TCP to the fault-injecting server (one server per relay).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use herald::config::{RelaySettings, RouteSettings, Settings};
use herald::dispatch::{self, RunEnd};
use herald::domain::{EmailAddress, SubscriberName};
use herald::mail::{MailRecipient, SendOutcome};
use herald::startup::App;
use support::app::{add_subscribers, db_url, enqueue, header, run_app, settings, ISSUE};
use support::smtp_server::{Faults, Received, SmtpServer};
use tokio::sync::watch;

fn relay(name: &str, server: &SmtpServer) -> RelaySettings {
    RelaySettings {
        name: name.into(),
        url: server.url(),
        pool_size: 2,
        ..RelaySettings::default()
    }
}

fn domains_of(received: &[Received]) -> Vec<String> {
    let mut domains: Vec<String> = received
        .iter()
        .flat_map(|m| &m.rcpt_to)
        .map(|to| to.rsplit_once('@').unwrap().1.to_string())
        .collect();
    domains.sort();
    domains.dedup();
    domains
}

/// Composes a sign-up confirmation to `email` and hands it to the app's transport.
async fn send_confirmation(app: &App, email: &str) -> SendOutcome {
    let reader = MailRecipient {
        subscriber_id: 99,
        email: EmailAddress::parse(email).unwrap(),
        name: SubscriberName::parse("New Reader").unwrap(),
    };
    let mail = app
        .composer
        .compose_notice(&app.notices.confirm, &reader, dispatch::unix_now())
        .unwrap();
    app.transport.send(&mail).await
}

async fn app_with(dir: &Path, default: &SmtpServer, tweak: impl FnOnce(&mut Settings)) -> App {
    let mut s = settings(&db_url(dir), &default.url());
    tweak(&mut s);
    App::build(s).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_send_each_domain_and_kind_through_its_relay() {
    let dir = tempfile::tempdir().unwrap();
    let (default, cn, notices) = (
        SmtpServer::start(Faults::new()),
        SmtpServer::start(Faults::new()),
        SmtpServer::start(Faults::new()),
    );
    let app = app_with(dir.path(), &default, |s| {
        s.smtp.relays = vec![relay("cn", &cn), relay("notices", &notices)];
        s.smtp.routes = vec![
            RouteSettings {
                kind: Some("notice".into()),
                relay: Some("notices".into()),
                ..RouteSettings::default()
            },
            RouteSettings {
                domains: vec!["qq.example".into(), "163.example".into()],
                relay: Some("cn".into()),
                ..RouteSettings::default()
            },
        ];
    })
    .await;
    let emails: Vec<String> = (0..4)
        .flat_map(|i| {
            [
                format!("a{i}@qq.example"),
                format!("b{i}@163.example"),
                format!("c{i}@other.example"),
            ]
        })
        .collect();
    add_subscribers(&app.store, &emails).await;
    let (job, _) = enqueue(&app).await;

    assert_eq!(run_app(&app, &job, true).await, RunEnd::Finished);

    assert_eq!(domains_of(&cn.received()), ["163.example", "qq.example"]);
    assert_eq!(cn.received_count(), 8);
    assert_eq!(domains_of(&default.received()), ["other.example"]);
    assert_eq!(default.received_count(), 4);
    assert_eq!(notices.received_count(), 0);

    // A sign-up notice, to a domain the cn route names, goes through the notice route.
    let outcome = send_confirmation(&app, "new@qq.example").await;
    assert!(
        matches!(outcome, SendOutcome::Accepted { .. }),
        "{outcome:?}"
    );
    assert_eq!(notices.received_count(), 1);
    assert_eq!(notices.received()[0].rcpt_to, ["new@qq.example"]);
    assert_eq!(cn.received_count(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_is_down_fails_over_to_the_next_in_its_route() {
    let dir = tempfile::tempdir().unwrap();
    let (default, primary, backup) = (
        SmtpServer::start(Faults::new()),
        SmtpServer::start(Faults::new()),
        SmtpServer::start(Faults::new()),
    );
    primary.close_listener().await;
    let app = app_with(dir.path(), &default, |s| {
        s.smtp.relays = vec![relay("primary", &primary), relay("backup", &backup)];
        s.smtp.routes = vec![RouteSettings {
            relays: vec!["primary".into(), "backup".into()],
            ..RouteSettings::default()
        }];
        s.sending.max_attempts = 1;
    })
    .await;
    let emails: Vec<String> = (0..12).map(|i| format!("r{i}@example.net")).collect();
    add_subscribers(&app.store, &emails).await;
    let (job, issue_id) = enqueue(&app).await;

    assert_eq!(run_app(&app, &job, true).await, RunEnd::Finished);

    assert_eq!(backup.received_count(), 12, "{:?}", backup.transcript());
    assert_eq!(default.received_count(), 0);
    let counts = app.store.delivery_counts(issue_id).await.unwrap();
    assert_eq!((counts.sent, counts.failed), (12, 0));
    for email in &emails {
        let id = app
            .store
            .find_subscriber_by_email(&EmailAddress::parse(email).unwrap())
            .await
            .unwrap()
            .unwrap()
            .id;
        let row = app
            .store
            .find_delivery(issue_id, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.attempts, 0, "failing over costs no attempt: {row:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_whose_every_relay_is_down_pauses_the_send_without_counting_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let (default, primary, backup) = (
        SmtpServer::start(Faults::new()),
        SmtpServer::start(Faults::new()),
        SmtpServer::start(Faults::new()),
    );
    primary.close_listener().await;
    backup.close_listener().await;
    let app = app_with(dir.path(), &default, |s| {
        s.smtp.relays = vec![relay("primary", &primary), relay("backup", &backup)];
        s.smtp.routes = vec![RouteSettings {
            domains: vec!["example.net".into()],
            relays: vec!["primary".into(), "backup".into()],
            ..RouteSettings::default()
        }];
    })
    .await;
    let emails: Vec<String> = (0..4).map(|i| format!("r{i}@example.net")).collect();
    add_subscribers(&app.store, &emails).await;
    let (job, issue_id) = enqueue(&app).await;

    match run_app(&app, &job, true).await {
        RunEnd::Paused { reason } => {
            // Every relay of the route, in route order, whichever a send tried first.
            let (primary_at, backup_at) = (
                reason.find("relay primary: cannot connect"),
                reason.find("relay backup: cannot connect"),
            );
            assert!(
                matches!((primary_at, backup_at), (Some(p), Some(b)) if p < b),
                "{reason}"
            );
        }
        other => panic!("expected a pause, got {other:?}"),
    }
    let counts = app.store.delivery_counts(issue_id).await.unwrap();
    assert_eq!((counts.sent, counts.failed, counts.sending), (0, 0, 0));
    assert_eq!(
        default.received_count(),
        0,
        "the default relay is not in the route"
    );

    // Back up: the same send resumes and finishes through the first relay of the route.
    backup.reopen_listener().unwrap();
    assert_eq!(run_app(&app, &job, true).await, RunEnd::Finished);
    assert_eq!(backup.received_count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_issues_sent_at_once_both_progress() {
    let dir = tempfile::tempdir().unwrap();
    let issues = dir.path().join("issues");
    std::fs::create_dir(&issues).unwrap();
    let text = std::fs::read_to_string(ISSUE).unwrap();
    std::fs::write(issues.join("2026-12-04-first.md"), &text).unwrap();
    std::fs::write(issues.join("2026-12-11-second.md"), &text).unwrap();
    let server = SmtpServer::start(Faults::new());
    let app = Arc::new(
        app_with(dir.path(), &server, |s| {
            s.newsletter.issues_dir = issues.clone();
            // Slow enough to watch: 40 messages a second through the relay.
            s.smtp.rate_per_second = 40.0;
            s.sending.batch_size = 10;
        })
        .await,
    );
    let emails: Vec<String> = (0..40).map(|i| format!("r{i}@example.net")).collect();
    add_subscribers(&app.store, &emails).await;
    for slug in ["2026-12-04-first", "2026-12-11-second"] {
        let slug = herald::domain::IssueSlug::parse(slug).unwrap();
        app.send_now(&slug, "test").await.unwrap();
    }

    let (stop, shutdown) = watch::channel(false);
    let service = tokio::spawn({
        let app = app.clone();
        async move { dispatch::service::run(&app, shutdown).await }
    });
    let of = |issue: &str| {
        server
            .received()
            .iter()
            .filter(|m| header(&m.text(), "Message-ID").is_some_and(|id| id.contains(issue)))
            .count()
    };
    // When the first of the two is done, the other is well under way.
    let mut seen = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let (first, second) = (of("first"), of("second"));
            seen.push((first, second));
            if first == 40 || second == 40 {
                return (first, second);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("one issue finished in time");
    let behind = done.0.min(done.1);
    assert!(
        behind >= 15,
        "one issue waited for the other: {done:?} when the first was done ({seen:?})"
    );
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        while server.received_count() < 80 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(finished.is_ok(), "{} of 80", server.received_count());
    let _ = stop.send(true);
    service.await.unwrap();
    for issue in app.store.list_issues().await.unwrap() {
        let counts = app.store.delivery_counts(issue.id).await.unwrap();
        assert_eq!(counts.sent, 40, "{}", issue.slug);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_notice_does_not_wait_behind_an_issue_holding_every_connection() {
    use support::smtp_server::{Fault, Stage};
    let dir = tempfile::tempdir().unwrap();
    // The issue's recipients keep their connection busy for seconds at RCPT.
    let server = SmtpServer::start(Faults::new().with(
        Fault::delay(Stage::Rcpt, Duration::from_secs(4)).for_addresses_containing("@example.net"),
    ));
    let app = Arc::new(
        app_with(dir.path(), &server, |s| {
            s.smtp.pool_size = 1;
            s.sending.concurrency = 1;
        })
        .await,
    );
    let emails: Vec<String> = (0..2).map(|i| format!("r{i}@example.net")).collect();
    add_subscribers(&app.store, &emails).await;
    let (job, _) = enqueue(&app).await;
    let send = tokio::spawn({
        let app = app.clone();
        async move { run_app(&app, &job, true).await }
    });
    // The issue's only connection is waiting for its RCPT reply.
    assert!(
        support::app::eventually(Duration::from_secs(30), || async {
            server
                .transcript()
                .iter()
                .any(|line| line.contains("RCPT TO:<r0@example.net>"))
        })
        .await,
        "{:?}",
        server.transcript()
    );

    let outcome = send_confirmation(&app, "new@example.org").await;
    assert!(
        matches!(outcome, SendOutcome::Accepted { .. }),
        "{outcome:?}"
    );
    // The notice is in while the issue's first copy is still held at RCPT.
    let received: Vec<Vec<String>> = server.received().into_iter().map(|m| m.rcpt_to).collect();
    assert_eq!(received, [vec!["new@example.org".to_string()]]);

    assert_eq!(send.await.unwrap(), RunEnd::Finished);
    assert_eq!(server.received_count(), 3);
}
