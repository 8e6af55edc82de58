//! `herald serve` as one process: the web server and the long-running dispatcher together.
//! An issue enqueued while it runs is sent without anyone calling `herald send`, an
//! interrupted send resumes, and a stop is graceful.

mod support;

use std::time::Duration;

use herald::domain::IssueSlug;
use support::app::{add_subscribers, addresses, eventually, SLUG};
use support::server::{Relay, TestServer};
use support::smtp_server::Faults;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_enqueued_while_serving_is_sent_by_the_dispatcher() {
    let server = TestServer::start(Relay::Smtp(Faults::new()), |_| {}).await;
    let emails = addresses("reader", 12);
    add_subscribers(&server.app.store, &emails).await;

    let health = reqwest::get(server.url("/health")).await.unwrap();
    assert_eq!(health.status(), 200);

    let slug = IssueSlug::parse(SLUG).unwrap();
    let enqueued = server.app.send_now(&slug, "test").await.unwrap();
    assert_eq!(enqueued.total, 12);

    let smtp = server.smtp.as_ref().unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            smtp.received().len() == 12
        })
        .await,
        "the dispatcher sent {} of 12",
        smtp.received().len()
    );
    let store = server.app.store.clone();
    assert!(
        eventually(Duration::from_secs(10), || async {
            store.find_issue(SLUG).await.unwrap().unwrap().status == "sent"
        })
        .await
    );
    // A second request for the same issue sends nothing more.
    let again = server.app.send_now(&slug, "test").await.unwrap();
    assert_eq!(again.added, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.received().len(), 12);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_left_unfinished_is_resumed_at_start() {
    // A first process enqueues the issue and stops before sending anything.
    let keep = tempfile::tempdir().unwrap();
    let db = support::app::db_url(keep.path());
    let first_db = db.clone();
    let first = TestServer::start(Relay::Smtp(Faults::new()), |s| s.database.url = first_db).await;
    let emails = addresses("resume", 5);
    add_subscribers(&first.app.store, &emails).await;
    let prepared = first
        .app
        .prepare_slug(&IssueSlug::parse(SLUG).unwrap())
        .await
        .unwrap();
    herald::dispatch::enqueue(&first.app.store, &prepared.issue, "test")
        .await
        .unwrap();
    // Without a wake-up, the first server's dispatcher does not look again for a minute;
    // stop it at once.
    first.stop().await.unwrap();

    let second = TestServer::start(Relay::Smtp(Faults::new()), |s| s.database.url = db).await;
    let smtp = second.smtp.as_ref().unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            smtp.received().len() == 5
        })
        .await,
        "the restarted dispatcher sent {} of 5",
        smtp.received().len()
    );
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_missing_from_the_folder_is_an_error_naming_it() {
    let server = TestServer::start(Relay::Outbox, |_| {}).await;
    let err = server
        .app
        .send_now(&IssueSlug::parse("no-such-issue").unwrap(), "test")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no-such-issue"), "{err}");
    server.stop().await.unwrap();
}
