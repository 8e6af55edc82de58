//! What an editor and a reader meet in the first hour, over a real socket: the dashboard's
//! issue list (newest first by issue date, unsent apart from sent, readable times, no empty
//! progress bars, "send now" only where there is something to send, `[TEST]` test copies),
//! the archive and its feed (by issue date, with the issue's date and description), the
//! links between the sign-up form, the archive and the unsubscribed page; and the README and
//! `serve --help` telling the truth about them.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::app::{add_subscribers, eventually, header, SLUG};
use support::dashboard::Dashboard;
use support::server::{Relay, TestServer};

const OLD: &str = "2021-03-01-old-times";
const DRAFT: &str = "2026-12-24-christmas";
const UNDATED: &str = "someday";

/// Three issues beside the fixture (dated 2026-11-27 09:00 +01:00): one from 2021, a draft
/// and one without a date.
fn write_issues(server: &TestServer) {
    let dir = server.issues_dir();
    std::fs::write(
        dir.join(format!("{OLD}.md")),
        "---\ntitle: \"Old times\"\ndescription: \"From the vault & more\"\n\
         date: 2021-03-01T10:00:00Z\n---\n\nAn issue written long ago.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{DRAFT}.md")),
        "---\ntitle: \"Christmas\"\ndate: 2026-12-24T09:00:00Z\ndraft: true\n---\n\nNot yet.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{UNDATED}.md")),
        "---\ntitle: \"Some day\"\n---\n\nWhenever.\n",
    )
    .unwrap();
}

/// Sends `slug` from the dashboard and waits until it is `sent`.
async fn send(dashboard: &Dashboard<'_>, slug: &str) {
    let sent = dashboard
        .post(&format!("/admin/issues/{slug}/send"), &[("confirm", "yes")])
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let app = &dashboard.server.app;
    let done = eventually(Duration::from_secs(30), || async {
        let row = app.store.find_issue(slug).await.unwrap();
        row.is_some_and(|r| r.status == "sent")
    })
    .await;
    assert!(done, "{slug} was not sent");
}

/// Where `needle` is in `haystack` (panics when it is not).
fn at(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {haystack}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issue_list_puts_unsent_apart_newest_first_with_readable_times() {
    let server = TestServer::start(Relay::Outbox, |_| {}).await;
    write_issues(&server);
    add_subscribers(&server.app.store, &["reader@example.net".to_string()]).await;
    let dashboard = Dashboard::log_in(&server).await;

    // Before anything is sent: every issue is "not sent yet", and no bar says 0 / 0.
    let home = dashboard.get("/admin").await.body;
    assert!(!home.contains("0 / 0"), "{home}");
    assert!(!home.contains("<progress"), "{home}");
    assert!(home.contains("Not sent yet"));
    // The readable time, in the schedule's timezone, with the exact one in a title.
    assert!(
        home.contains(
            r#"<time class="muted" datetime="2026-11-27T09:00:00+01:00" title="2026-11-27T09:00:00+01:00">Fri 27 Nov 2026, 08:00 UTC</time>"#
        ),
        "{home}"
    );
    assert!(!home.contains("2026-11-27<"), "no bare ISO date: {home}");
    // The draft says it is one.
    let draft = at(&home, &format!(r#"data-issue="{DRAFT}""#));
    assert!(home[draft..].contains(">draft</span>"), "{home}");

    send(&dashboard, OLD).await;
    send(&dashboard, SLUG).await;
    let home = dashboard.get("/admin").await.body;
    // The issue list (the latest issues' reports come before it).
    let home = &home[at(&home, r#"<ul class="issues unsent">"#)..];
    let (unsent, sent) = home.split_at(at(home, "<h2>Sent</h2>"));
    // Unsent: the undated one first (nothing to order it by), then the draft.
    assert!(at(unsent, UNDATED) < at(unsent, DRAFT), "{unsent}");
    assert!(!unsent.contains(SLUG) && !unsent.contains(OLD), "{unsent}");
    assert!(!unsent.contains("<progress"), "{unsent}");
    // Sent: newest first by issue date, each with its bar at 1 / 1.
    assert!(at(sent, SLUG) < at(sent, OLD), "{sent}");
    assert_eq!(sent.matches("1 / 1 (100%)").count(), 2, "{sent}");
    assert!(sent.contains("Mon 1 Mar 2021, 10:00 UTC"), "{sent}");

    // A sent issue offers no "send now", and its confirmation step refuses.
    let issue = dashboard.get(&format!("/admin/issues/{SLUG}")).await.body;
    assert!(!issue.contains("Send now…"), "{issue}");
    assert!(issue.contains("Send test"));
    let confirm = dashboard
        .get(&format!("/admin/issues/{SLUG}/send"))
        .await
        .body;
    assert!(confirm.contains("has been sent"), "{confirm}");
    assert!(!confirm.contains(r#"name="confirm""#), "{confirm}");
    let again = dashboard
        .post(&format!("/admin/issues/{SLUG}/send"), &[("confirm", "yes")])
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    // A draft neither; an undated issue that was never sent does.
    let draft = dashboard.get(&format!("/admin/issues/{DRAFT}")).await.body;
    assert!(!draft.contains("Send now…"), "{draft}");
    let confirm = dashboard
        .get(&format!("/admin/issues/{DRAFT}/send"))
        .await
        .body;
    assert!(confirm.contains("is a draft"), "{confirm}");
    let undated = dashboard
        .get(&format!("/admin/issues/{UNDATED}"))
        .await
        .body;
    assert!(undated.contains("Send now…"), "{undated}");
    assert!(!undated.contains("0 / 0"), "{undated}");
    // The sent issue's start and finish, readable.
    assert!(
        regex::Regex::new(
            r"Started <time datetime=\S+ title=\S+>\w{3} \d+ \w{3} \d{4}, \d\d:\d\d UTC</time>"
        )
        .unwrap()
        .is_match(&issue),
        "{issue}"
    );

    // A test copy's subject starts with [TEST].
    let test = dashboard
        .post(
            &format!("/admin/issues/{SLUG}/test"),
            &[("to", "editor@example.net")],
        )
        .await;
    assert_eq!(test.status, StatusCode::SEE_OTHER, "{}", test.body);
    let outbox = server.dir.path().join("outbox");
    let copies: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|m| header(m, "To").is_some_and(|to| to.contains("editor@example.net")))
        .collect();
    assert_eq!(copies.len(), 1);
    let subject = header(&copies[0], "Subject").unwrap();
    assert_eq!(
        subject,
        "[TEST] Welcome to herald: one binary, every Friday"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_and_feed_go_by_issue_date_and_link_the_sign_up_form() {
    let server = TestServer::start(Relay::Outbox, |_| {}).await;
    write_issues(&server);
    add_subscribers(&server.app.store, &["reader@example.net".to_string()]).await;
    let dashboard = Dashboard::log_in(&server).await;
    // The 2026 issue goes out first, the 2021 one after it: the archive still lists by the
    // issues' own dates.
    send(&dashboard, SLUG).await;
    send(&dashboard, OLD).await;
    let http = reqwest::Client::new();
    let base = format!("{}/", server.base);

    let archive = http
        .get(server.url("/archive"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        at(&archive, "Welcome to herald") < at(&archive, "Old times"),
        "{archive}"
    );
    assert!(
        archive.contains(
            r#"<time class="muted date" datetime="2021-03-01T10:00:00Z">1 March 2021</time>"#
        ),
        "the issue's own date: {archive}"
    );
    assert!(archive.contains(r#"datetime="2026-11-27T09:00:00+01:00">27 November 2026</time>"#));
    assert!(archive.contains("From the vault &amp; more"), "{archive}");
    assert!(!archive.contains(DRAFT) && !archive.contains(UNDATED));
    // The archive links the sign-up form; the form links the archive.
    assert!(
        archive.contains(&format!(r#"<a href="{base}">Sign up</a>"#)),
        "{archive}"
    );
    assert!(archive.contains("ul.issues .date { white-space: nowrap; }"));
    let signup = http
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        signup.contains(&format!(
            r#"<a href="{base}archive">Read past issues in the archive</a>"#
        )),
        "{signup}"
    );

    let feed = http
        .get(server.url("/feed.xml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let entries: Vec<&str> = feed.split("<entry>").skip(1).collect();
    assert_eq!(entries.len(), 2, "{feed}");
    assert!(entries[0].contains("Welcome to herald"), "{feed}");
    assert!(entries[0].contains("<published>2026-11-27T09:00:00+01:00</published>"));
    assert!(entries[0].contains(
        "<summary>What herald is, how an issue travels from Markdown to your inbox, and what comes next.</summary>"
    ));
    assert!(
        entries[1].contains("<published>2021-03-01T10:00:00Z</published>"),
        "{feed}"
    );
    assert!(
        entries[1].contains("<updated>2021-03-01T10:00:00Z</updated>"),
        "{feed}"
    );
    assert!(
        entries[1].contains("<summary>From the vault &amp; more</summary>"),
        "{feed}"
    );
    server.stop().await.unwrap();
}

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn the_readme_quick_start_says_what_is_needed_and_where_the_binary_is() {
    let readme = readme();
    let quick = &readme[at(&readme, "## Quick start")..at(&readme, "## Status")];
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let version = regex::Regex::new(r#"rust-version = "([0-9.]+)""#)
        .unwrap()
        .captures(&manifest)
        .unwrap()[1]
        .to_string();
    assert!(
        quick.contains(&format!("Rust {version} or newer")),
        "{quick}"
    );
    for needed in [
        "target/release/herald",
        "cargo install --path .",
        "cargo run --release -- serve",
        "cargo test",
        ".ci/run",
        "chromedriver",
        "smtp-sink",
        "HERALD_REQUIRE_TOOLS=1",
    ] {
        assert!(quick.contains(needed), "the quick start lacks {needed}");
    }
}

#[test]
fn the_readme_has_one_retry_formula_and_every_api_error_code() {
    let readme = readme();
    // The formula the policy implements (src/dispatch/policy.rs), wherever it is given.
    assert!(!readme.contains("2^attempts"), "the old retry formula");
    assert!(readme.contains("min(base·2^(n−1), max)"));
    assert!(readme.contains("min(retry_base · 2^(attempts−1), retry_max)"));
    let codes =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/api/error.rs"))
            .unwrap();
    let errors = &readme[at(&readme, "**Errors**")..at(&readme, "**Idempotency.**")];
    let quoted =
        regex::Regex::new(r#"\(StatusCode::[A-Z_]+, "([a-z_]+)"\)|"([a-z_]+)",\s*$"#).unwrap();
    let mut seen = 0;
    for line in codes.lines() {
        if let Some(c) = quoted.captures(line) {
            let code = c.get(1).or(c.get(2)).unwrap().as_str();
            if code == "forbidden" || code == "too_many_requests" {
                continue; // statuses the API never answers with
            }
            seen += 1;
            assert!(
                errors.contains(&format!("`{code}`")),
                "the README's error codes lack {code}"
            );
        }
    }
    assert!(seen >= 12, "found only {seen} codes in error.rs");
}

#[test]
fn serve_help_describes_everything_serve_runs() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for part in [
        "sign-up form",
        "double opt-in",
        "archive",
        "Atom feed",
        "/api/",
        "/admin",
        "/webhooks/",
        "dispatcher",
        "scheduler",
        "schedule.cron",
        "assets_dir",
    ] {
        assert!(help.contains(part), "serve --help lacks {part:?}:\n{help}");
    }
    let short = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--help")
        .output()
        .unwrap();
    let short = String::from_utf8(short.stdout).unwrap();
    assert!(
        short.contains("every queued issue"),
        "status's one line says what it lists:\n{short}"
    );
}
