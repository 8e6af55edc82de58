//! Moving an install: `herald db copy` of a SQLite file that `herald serve` filled (readers of
//! every status, a web sign-up and its notice, an issue sent with one hard bounce, an API
//! idempotency key, an ended dashboard session, a schedule run) into a fresh PostgreSQL
//! database gives the same row counts in every table, and the same answers from
//! `herald status` and the editor API. A target that is not empty is refused, untouched.
//! Copying back from PostgreSQL into a new SQLite file gives the same counts again.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use herald::domain::{EmailAddress, ErasureKey, SubscriberName, SubscriberStatus};
use herald::store::NewSubscriber;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use support::app::{eventually, ISSUE, SLUG};
use support::postgres::{fresh_database, RawDb};
use support::server::{Relay, TestServer};
use support::smtp_server::{Fault, Faults, Stage};

const TOKEN: &str = "test-admin-token-0123456789abcdef";

/// The readers the issue goes to; the one whose address holds "gone" is refused for good.
const READERS: [&str; 4] = [
    "ann@example.com",
    "bob@example.com",
    "cleo@example.com",
    "gone@example.com",
];

fn herald(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// A settings file for `herald status` over `db_url`, with the fixture issue in `issues`.
fn config(dir: &Path, name: &str, db_url: &str, issues: &Path) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[newsletter]\nissues_dir = {:?}\ntemplates_dir = {:?}\n\n[database]\nurl = {:?}\n\n\
             [schedule]\ncron = \"off\"\n",
            issues.display().to_string(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
            db_url
        ),
    )
    .unwrap();
    path
}

/// The tables of the SQLite database at `url`: every table herald's migrations made.
async fn tables(url: &str) -> Vec<String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' \
         AND name NOT LIKE 'sqlite%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// The rows of each of `tables` in the database at `url`.
async fn counts(url: &str, tables: &[String]) -> Vec<(String, i64)> {
    let mut db = RawDb::connect(url).await;
    let mut out = Vec::new();
    for table in tables {
        let n = db
            .scalar(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await;
        out.push((table.clone(), n));
    }
    out
}

async fn get_json(server: &TestServer, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(server.url(&format!("/api{path}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// Fills the SQLite database at `url` through a running `herald serve`.
async fn populate(url: &str) {
    let faults = Faults::new().with(
        Fault::reply(Stage::Rcpt, 550, "5.1.1 no such user here").for_addresses_containing("gone"),
    );
    let owned = url.to_string();
    let server = TestServer::start(Relay::Smtp(faults), move |s| s.database.url = owned).await;
    let store = &server.app.store;
    let erasure = ErasureKey::new(&SecretString::from(
        "copy-test-erasure-0123456789".to_string(),
    ));
    let mut rows: Vec<NewSubscriber> = READERS
        .iter()
        .map(|e| NewSubscriber {
            email: EmailAddress::parse(e).unwrap(),
            name: SubscriberName::parse("Reader Née").unwrap(),
            status: SubscriberStatus::Active,
            attributes: serde_json::json!({"plan": "pro", "seats": 3})
                .as_object()
                .unwrap()
                .clone(),
        })
        .collect();
    for (email, status) in [
        ("waiting@example.com", SubscriberStatus::Pending),
        ("left@example.com", SubscriberStatus::Unsubscribed),
        ("bounced@example.com", SubscriberStatus::Bounced),
        ("angry@example.com", SubscriberStatus::Complained),
    ] {
        rows.push(NewSubscriber {
            email: EmailAddress::parse(email).unwrap(),
            name: None,
            status,
            attributes: Default::default(),
        });
    }
    store
        .import_subscriber_batch(&rows, &erasure, "test")
        .await
        .unwrap();

    // A reader signs up on the web: a pending subscriber, a consent event, a notice.
    let signup = reqwest::Client::new()
        .post(server.url("/subscribe"))
        .form(&[("email", "Signup@Example.com"), ("name", "Sig")])
        .send()
        .await
        .unwrap();
    assert!(signup.status().is_success(), "{}", signup.status());

    // The issue, sent through the API with an idempotency key.
    let sent = reqwest::Client::new()
        .post(server.url(&format!("/api/issues/{SLUG}/send")))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", "copy-test-send-1")
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let done = eventually(Duration::from_secs(60), || async {
        get_json(&server, &format!("/issues/{SLUG}")).await["status"] == "sent"
    })
    .await;
    assert!(done, "the issue was sent");
    let noticed = eventually(Duration::from_secs(30), || async {
        store
            .count_notices_by_status()
            .await
            .unwrap()
            .iter()
            .any(|(status, n)| status == "sent" && *n > 0)
    })
    .await;
    assert!(noticed, "the confirmation was sent");

    // A dashboard session ended by logging out, and a schedule tick that found nothing.
    let now = chrono::Utc::now().timestamp();
    store
        .end_admin_session(4242, now + 3600, now)
        .await
        .unwrap();
    assert!(store
        .claim_schedule_tick(now - 60, "running", None, now)
        .await
        .unwrap());
    store
        .finish_schedule_tick(now - 60, "nothing", Some("no dated issue is due"))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

/// Starts `herald serve` on the database at `url`, delivering nowhere.
async fn serve(url: &str) -> TestServer {
    let owned = url.to_string();
    TestServer::start(Relay::Outbox, move |s| s.database.url = owned).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_install_counts_and_answers_as_the_original() {
    let Some(pg_url) = fresh_database().await else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", home.path().join("herald.db").display());
    let issues = home.path().join("issues");
    std::fs::create_dir_all(&issues).unwrap();
    std::fs::copy(ISSUE, issues.join(Path::new(ISSUE).file_name().unwrap())).unwrap();
    populate(&sqlite_url).await;

    let tables = tables(&sqlite_url).await;
    let before = counts(&sqlite_url, &tables).await;
    for must_hold in [
        "subscribers",
        "issues",
        "deliveries",
        "events",
        "notices",
        "bounces",
        "admin_sessions_ended",
        "api_idempotency_keys",
        "schedule_runs",
    ] {
        let n = before.iter().find(|(t, _)| t == must_hold).map(|(_, n)| *n);
        assert!(
            n.unwrap_or(0) > 0,
            "{must_hold} holds rows before the copy: {before:?}"
        );
    }
    let mut raw = RawDb::connect(&sqlite_url).await;
    for status in ["sent", "failed"] {
        let n = raw
            .scalar(
                "SELECT COUNT(*) FROM deliveries WHERE status = $1",
                &[support::postgres::Arg::Text(status)],
            )
            .await;
        assert!(n > 0, "a {status} delivery before the copy");
    }
    let distinct_statuses = raw
        .scalar("SELECT COUNT(DISTINCT status) FROM subscribers", &[])
        .await;
    assert_eq!(distinct_statuses, 5, "subscribers of every status");
    drop(raw);

    // The copy.
    let sqlite_config = config(home.path(), "sqlite.toml", &sqlite_url, &issues);
    let pg_config = config(home.path(), "pg.toml", &pg_url, &issues);
    let copied = herald(
        &sqlite_config,
        &["db", "copy", "--from", &sqlite_url, "--to", &pg_url],
    );
    let stdout = String::from_utf8_lossy(&copied.stdout);
    assert!(
        copied.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let total: i64 = before.iter().map(|(_, n)| n).sum();
    assert!(
        stdout.contains(&format!("copied {total} rows in {} tables", tables.len())),
        "{stdout}"
    );
    assert_eq!(counts(&pg_url, &tables).await, before);

    // `herald status` says the same on both.
    for args in [
        &["status", SLUG][..],
        &["status", SLUG, "--json"],
        &["status"],
    ] {
        let on_sqlite = herald(&sqlite_config, args);
        let on_pg = herald(&pg_config, args);
        assert!(on_sqlite.status.success() && on_pg.status.success());
        let text = String::from_utf8_lossy(&on_sqlite.stdout).to_string();
        assert!(text.contains(SLUG), "{text}");
        assert_eq!(text, String::from_utf8_lossy(&on_pg.stdout), "{args:?}");
    }
    let json: Value =
        serde_json::from_slice(&herald(&pg_config, &["status", SLUG, "--json"]).stdout).unwrap();
    assert_eq!(json["sent"], READERS.len() as u64 - 1, "{json}");
    assert_eq!(json["failed"], 1, "{json}");
    assert_eq!(json["bounced_hard"], 1, "{json}");

    // The editor API says the same on both.
    let original = serve(&sqlite_url).await;
    let moved = serve(&pg_url).await;
    for path in [
        "/subscribers?per_page=100".to_string(),
        "/subscribers?status=bounced".to_string(),
        format!("/issues/{SLUG}"),
        "/issues".to_string(),
        "/bounces".to_string(),
        "/subscribers/gone%40example.com/bounces".to_string(),
    ] {
        let here = get_json(&original, &path).await;
        let there = get_json(&moved, &path).await;
        assert_eq!(here, there, "{path}");
    }
    let listed = get_json(&moved, "/subscribers?per_page=100").await;
    assert_eq!(
        listed["total"]
            .as_u64()
            .or_else(|| listed["subscribers"].as_array().map(|a| a.len() as u64)),
        Some(READERS.len() as u64 + 5),
        "{listed}"
    );

    // New rows on the copy get ids past the copied ones.
    let max_id = {
        let mut db = RawDb::connect(&pg_url).await;
        db.scalar("SELECT MAX(id) FROM subscribers", &[]).await
    };
    let added = reqwest::Client::new()
        .post(moved.url("/api/subscribers"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"email": "new@example.com"}))
        .send()
        .await
        .unwrap();
    assert!(added.status().is_success(), "{}", added.status());
    let mut db = RawDb::connect(&pg_url).await;
    let new_id = db
        .scalar(
            "SELECT id FROM subscribers WHERE email = $1",
            &[support::postgres::Arg::Text("new@example.com")],
        )
        .await;
    assert!(new_id > max_id, "new id {new_id} after {max_id}");
    original.stop().await.unwrap();
    moved.stop().await.unwrap();

    // A target that is not empty is refused with one line, and left as it was.
    let after_add = counts(&pg_url, &tables).await;
    let again = herald(
        &sqlite_config,
        &["db", "copy", "--from", &sqlite_url, "--to", &pg_url],
    );
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(counts(&pg_url, &tables).await, after_add);

    // And back: PostgreSQL into a new SQLite file.
    let back_url = format!("sqlite://{}", home.path().join("back.db").display());
    let back = herald(
        &pg_config,
        &["db", "copy", "--from", &pg_url, "--to", &back_url],
    );
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(counts(&back_url, &tables).await, after_add);
    let back_config = config(home.path(), "back.toml", &back_url, &issues);
    assert_eq!(
        herald(&back_config, &["status", SLUG]).stdout,
        herald(&pg_config, &["status", SLUG]).stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_source_file_is_refused_and_not_created() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("missing.db");
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .current_dir(home.path())
        .args(["db", "copy", "--from"])
        .arg(format!("sqlite://{}", missing.display()))
        .arg("--to")
        .arg(format!("sqlite://{}", home.path().join("to.db").display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("there is no database at"), "{stderr}");
    assert!(!missing.exists());
    assert!(!home.path().join("to.db").exists());
}
