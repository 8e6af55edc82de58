//! Issue files that would ask too much: nested thousands of levels deep, megabytes large,
//! quadratic to parse, or with an absurd subject. Each is refused with one line naming the
//! file (and the line), in the CLI, the API, the dashboard and the scheduler alike, and no
//! file can take `herald serve` down or stall its other requests.

mod support;

use std::path::Path;
use std::time::Duration;

use herald::issue::{self, IssueErrorKind, IssueLimits};
use support::herald_site::{HeraldSite, SendingConfig};
use support::server::{Relay, TestServer};

const ADMIN_TOKEN: &str = "end-to-end-admin-token-0123456789";

fn issue_file(dir: &Path, stem: &str, front: &str, body: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{stem}.md"));
    std::fs::write(&path, format!("---\n{front}\n---\n\n{body}")).unwrap();
    path
}

fn herald(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .current_dir(dir)
        .env_remove("HERALD_LOG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn herald_preview_refuses_deep_nesting_with_one_line_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (stem, body) in [
        ("lists", format!("Intro.\n\n{}x\n", "- ".repeat(5_000))),
        ("quotes", format!("Intro.\n\n{}x\n", ">".repeat(10_000))),
        (
            "divs",
            format!("Intro.\n\n{}x\n", "<div></span>".repeat(2_000)),
        ),
    ] {
        let path = issue_file(dir.path(), stem, "title: Deep", &body);
        let out = herald(dir.path(), &["preview", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stem}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("herald: no config.toml"))
            .collect();
        assert_eq!(errors.len(), 1, "{stem}: one line: {stderr}");
        assert!(
            stderr.contains(&format!("{stem}.md:7: the body nests more than 64 levels")),
            "{stem}: names the file and line: {stderr}"
        );
    }
}

#[test]
fn oversized_bodies_and_files_are_refused_before_rendering() {
    let dir = tempfile::tempdir().unwrap();
    // 4 MB of nested lists: over the file size bound, refused before it is read whole.
    let big = issue_file(dir.path(), "big", "title: Big", &" - x\n".repeat(800_000));
    let e = issue::load(&big, &IssueLimits::default()).unwrap_err();
    assert!(matches!(e.kind, IssueErrorKind::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("newsletter.max_issue_bytes"), "{e}");
    // The bound is a setting.
    let roomy = IssueLimits {
        max_bytes: 8 * 1024 * 1024,
    };
    assert!(!matches!(
        issue::load(&big, &roomy).unwrap_err().kind,
        IssueErrorKind::TooLarge { .. }
    ));

    // Under 1 MB, but a table of 100,000 cells: too many elements to lay out.
    let table = issue_file(
        dir.path(),
        "table",
        "title: Table",
        &format!("|a|b|\n|-|-|\n{}", "|x|y|\n".repeat(50_000)),
    );
    let e = issue::load(&table, &IssueLimits::default()).unwrap_err();
    assert!(matches!(e.kind, IssueErrorKind::BodyTooLarge { .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("{}:", table.display())));
}

#[test]
fn deeply_nested_front_matter_is_refused_without_parsing_it() {
    // 100,000 nested `[` in an unknown field: quadratic for a YAML parser.
    let huge = format!("---\ntitle: T\nx: {}\n---\nBody\n", "[".repeat(100_000));
    let (line, kind) = issue::parse(huge.as_bytes(), "huge").unwrap_err();
    assert!(
        matches!(kind, IssueErrorKind::FrontMatterTooLarge { .. }),
        "{kind}"
    );
    assert_eq!(line, Some(2));
    // Small enough, but nested too deeply.
    let deep = format!("---\ntitle: T\nx: {}\n---\nBody\n", "{a: [".repeat(100));
    let (line, kind) = issue::parse(deep.as_bytes(), "deep").unwrap_err();
    assert!(
        matches!(kind, IssueErrorKind::FrontMatterTooDeep { .. }),
        "{kind}"
    );
    assert_eq!(line, Some(3));
    // TOML front matter too.
    let toml = format!("+++\ntitle = \"T\"\nx = {}\n+++\nBody\n", "[".repeat(1_000));
    let (_, kind) = issue::parse(toml.as_bytes(), "toml").unwrap_err();
    assert!(
        matches!(kind, IssueErrorKind::FrontMatterTooDeep { .. }),
        "{kind}"
    );
}

#[test]
fn an_absurd_title_is_refused_and_names_the_way_out() {
    let text = format!("---\ntitle: \"{}\"\n---\nBody\n", "x".repeat(10_000));
    let (line, kind) = issue::parse(text.as_bytes(), "long").unwrap_err();
    assert_eq!(line, Some(2));
    let message = kind.to_string();
    assert!(message.contains("at most 500"), "{message}");
    assert!(message.contains("shorter `subject`"), "{message}");
    // With a short subject, the long title is fine... up to the same bound for a title.
    let text = format!(
        "---\ntitle: \"{}\"\nsubject: Short\n---\nBody\n",
        "x".repeat(400)
    );
    assert!(issue::parse(text.as_bytes(), "ok").is_ok());
}

#[test]
fn the_scheduler_skips_a_deep_issue_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    issue_file(
        dir.path(),
        "a-good",
        "title: Good\ndate: 2026-11-20",
        "Fine.\n",
    );
    issue_file(
        dir.path(),
        "b-deep",
        "title: Deep\ndate: 2026-11-27",
        &format!("{}x\n", "- ".repeat(1_000)),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let files = runtime
        .block_on(herald::schedule::load_issues(
            dir.path(),
            IssueLimits::default(),
        ))
        .unwrap();
    let slugs: Vec<&str> = files.issues.iter().map(|i| i.slug.as_str()).collect();
    assert_eq!(slugs, vec!["a-good"], "the deep issue is never scheduled");
    assert_eq!(files.broken.len(), 1);
    let why = files.broken[0].to_string();
    assert!(
        why.contains("b-deep.md:6: the body nests more than 64 levels"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_issue_file_takes_herald_serve_down() {
    let site = HeraldSite::new("file://outbox", &SendingConfig::default());
    let issues = site.path().join("issues");
    // The 2 KB file that overflowed the stack in mrml when the dashboard previewed it.
    issue_file(
        &issues,
        "deep",
        "title: Deep",
        &format!("{}x\n", "- ".repeat(1_000)),
    );
    issue_file(&issues, "fine", "title: Fine", "All good.\n");
    let (child, base) = site.spawn_serve().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let alive = || async {
        let r = client.get(format!("{base}/health")).send().await;
        r.is_ok_and(|r| r.status() == 200)
    };

    // The API: a test copy of the issue needs it rendered.
    let r = client
        .post(format!("{base}/api/issues/deep/test"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "to": "editor@example.org" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("deep.md:5: the body nests more than 64 levels"),
        "{message}"
    );
    assert!(
        alive().await,
        "herald serve is still up after the API request"
    );

    // The dashboard's preview of the same file.
    let login = client
        .post(format!("{base}/admin/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let r = client
        .get(format!("{base}/admin/issues/deep/preview"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("the body nests more than 64 levels"),
        "{page}"
    );
    assert!(alive().await, "herald serve is still up after the preview");

    // The other issue still renders.
    let r = client
        .get(format!("{base}/admin/issues/fine/preview"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(child);
}

/// Parsing a folder of large issue files is work for the render threads: while it runs,
/// the async workers (a single one here) still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn reading_issue_files_does_not_stall_other_requests() {
    let server = TestServer::start(Relay::Outbox, |_| {}).await;
    // Large but within every bound: 19,000 paragraphs of 50 bytes each, in each of 12 files
    // (hundreds of milliseconds of parsing, against the milliseconds /health takes).
    let paragraph = "Some words that make a paragraph of fifty bytes.\n\n";
    for i in 0..12 {
        issue_file(
            &server.issues_dir(),
            &format!("large-{i}"),
            "title: Large",
            &paragraph.repeat(19_000),
        );
    }
    let client = reqwest::Client::new();
    let list = {
        let request = client
            .get(server.url("/api/issues"))
            .bearer_auth(server.admin_token());
        tokio::spawn(async move { request.send().await.unwrap().status() })
    };
    // Let the listing reach its handler, then ask for something that needs no file.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let health = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        !list.is_finished(),
        "/health was answered only after the issue files were read: they were read on the \
         async worker"
    );
    assert_eq!(list.await.unwrap(), 200);
    server.stop().await.unwrap();
}

#[test]
fn a_long_subject_is_folded_onto_lines_rfc_5322_allows() {
    let dir = tempfile::tempdir().unwrap();
    let title = "word ".repeat(90).trim_end().to_string();
    let path = issue_file(
        dir.path(),
        "long",
        &format!("title: \"{title}\""),
        "Body.\n",
    );
    let out = herald(
        dir.path(),
        &["preview", path.to_str().unwrap(), "--format", "eml"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let eml = String::from_utf8_lossy(&out.stdout);
    let head: Vec<&str> = eml
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .take_while(|l| !l.is_empty())
        .collect();
    for line in &head {
        assert!(line.len() <= 998, "a header line over 998 octets: {line}");
    }
    let start = head
        .iter()
        .position(|l| l.starts_with("Subject:"))
        .expect("a Subject header");
    let mut subject = vec![head[start]];
    subject.extend(
        head[start + 1..]
            .iter()
            .take_while(|l| l.starts_with([' ', '\t'])),
    );
    assert!(subject.len() > 1, "the subject is folded: {subject:?}");
    for line in &subject {
        assert!(
            line.len() <= 78,
            "a subject line over 78 characters: {line:?}"
        );
    }
    assert_eq!(subject.concat(), format!("Subject: {title}"));
}
