//! The store under database faults: a write that fails (a disk that is full or gone
//! read-only, an I/O error, a file locked by another process) fails that one request, and
//! the next one succeeds once the fault is gone; `/health` tells when the database cannot
//! be written.

mod support;

use std::time::Duration;

use herald::domain::{EmailAddress, Purpose, TokenKey};
use herald::store::{self, NewSignup};
use secrecy::SecretString;
use sqlx::{Connection, SqliteConnection};
use support::app::db_url;
use support::herald_site::{HeraldSite, SendingConfig};
use support::server::{Relay, TestServer};

fn signup(email: &str) -> NewSignup {
    NewSignup {
        email: EmailAddress::parse(email).unwrap(),
        name: None,
        consent: "yes".into(),
        ip: None,
        user_agent: None,
        via: "form",
    }
}

/// A trigger that makes SQLite end the whole transaction on its own, as it does after an
/// I/O error or a full disk during a commit (`RAISE(ROLLBACK)` rolls back and fails the
/// statement, like `SQLITE_IOERR` does).
const FAULT: &str = "CREATE TRIGGER injected_fault BEFORE INSERT ON events \
                     BEGIN SELECT RAISE(ROLLBACK, 'injected fault'); END";

#[tokio::test]
async fn a_transaction_sqlite_ended_by_itself_leaves_no_connection_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(dir.path());
    let store = store::connect(&url).await.unwrap();
    let mut side = SqliteConnection::connect(&url).await.unwrap();

    sqlx::query(FAULT).execute(&mut side).await.unwrap();
    // More failures than the pool has connections: each could leave one behind.
    for i in 0..12 {
        let result = store
            .record_signups(&[signup(&format!("during{i}@example.org"))], 1)
            .await;
        assert!(result.is_err(), "the injected fault made write {i} fail");
    }
    sqlx::query("DROP TRIGGER injected_fault")
        .execute(&mut side)
        .await
        .unwrap();

    for i in 0..12 {
        store
            .record_signups(&[signup(&format!("after{i}@example.org"))], 1)
            .await
            .unwrap_or_else(|e| panic!("write {i} after the fault is gone failed: {e}"));
    }
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscribers")
        .fetch_one(&mut side)
        .await
        .unwrap();
    assert_eq!(held, 12, "only the writes after the fault are stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_a_database_that_cannot_be_written_and_recovers() {
    let server = TestServer::start(Relay::Outbox, |_| {}).await;
    let client = reqwest::Client::new();
    let health = || async {
        let r = client.get(server.url("/health")).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(health().await, (200, "ok".to_string()));

    // Another process holds the write lock: nothing herald writes can commit.
    let mut side = SqliteConnection::connect(&server.app.settings.database.url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut side)
        .await
        .unwrap();
    // The last probe's result may be kept for a few seconds: within ten, /health says so.
    let started = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = health().await;
        if status != 200 || started.elapsed() > Duration::from_secs(10) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        status, 503,
        "a database that takes no writes is not healthy: {body}"
    );
    assert!(
        body.contains("database"),
        "the reason names the database: {body}"
    );

    sqlx::query("ROLLBACK").execute(&mut side).await.unwrap();
    let started = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = health().await;
        if status == 200 || started.elapsed() > Duration::from_secs(70) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (status, body.as_str()),
        (200, "ok"),
        "healthy again once writes work"
    );
    server.stop().await.unwrap();
}

/// Sets the soft file-size limit (`RLIMIT_FSIZE`) of process `pid` to `limit`.
fn set_file_size_limit(prlimit: &std::path::Path, pid: u32, limit: &str) {
    let status = std::process::Command::new(prlimit)
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}:")])
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit --fsize={limit} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_recovers_from_failed_commits_once_the_disk_takes_writes_again() {
    let Some(prlimit) = support::require_tool("prlimit", &[], "apt-get install util-linux") else {
        return;
    };
    let site = HeraldSite::new("file://outbox", &SendingConfig::default());
    // Two readers on the list before the fault: one to confirm, one to unsubscribe.
    let emails = site.import_generated(2).await;
    let db = format!("sqlite://{}", site.path().join("herald.db").display());
    let mut side = SqliteConnection::connect(&db).await.unwrap();
    sqlx::query("UPDATE subscribers SET status = 'pending' WHERE email = ?")
        .bind(&emails[0])
        .execute(&mut side)
        .await
        .unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM subscribers ORDER BY email")
        .fetch_all(&mut side)
        .await
        .unwrap();
    drop(side);

    let (child, base) = site.spawn_serve().await;
    let pid = child.id().expect("serve runs");
    let client = reqwest::Client::new();
    let subscribe = |email: String| {
        let client = client.clone();
        let url = format!("{base}/subscribe");
        async move {
            client
                .post(url)
                .json(&serde_json::json!({ "email": email }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let health = || async {
        let r = client.get(format!("{base}/health")).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(subscribe("before@example.org".into()).await, 200);

    // The disk refuses every write past the first byte of a file: each commit fails with an
    // I/O error, and SQLite ends the transaction by itself.
    set_file_size_limit(&prlimit, pid, "1");
    for i in 0..6 {
        let status = subscribe(format!("during{i}@example.org")).await;
        assert!(
            status >= 500,
            "a sign-up that cannot be stored is refused ({status})"
        );
    }
    let started = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = health().await;
        if status != 200 || started.elapsed() > Duration::from_secs(10) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, 503, "/health sees the failing disk: {body}");

    set_file_size_limit(&prlimit, pid, "unlimited");
    for i in 0..6 {
        let status = subscribe(format!("after{i}@example.org")).await;
        assert_eq!(status, 200, "sign-up {i} after the fault is gone");
    }
    let key = TokenKey::new(&SecretString::from(site.secret().to_string()));
    let confirm = key.sign(Purpose::Confirm, ids[0], Some(i64::MAX / 2));
    let r = client
        .post(format!("{base}/confirm/{}", confirm.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the confirmation link works again");
    let unsubscribe = key.sign(Purpose::Unsubscribe, ids[1], None);
    let r = client
        .post(format!("{base}/unsubscribe/{}", unsubscribe.as_str()))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "one-click unsubscribe works again");
    let started = std::time::Instant::now();
    let health_after = loop {
        let h = health().await;
        if h.0 == 200 || started.elapsed() > Duration::from_secs(15) {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(health_after, (200, "ok".to_string()));
    drop(child);
}
