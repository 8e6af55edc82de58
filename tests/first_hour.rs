//! The first hour with herald, through the real binary: drafts are never sent by accident,
//! herald says which settings and database it uses, messages read as sentences (no Debug
//! output, plurals right, no colour codes in a pipe), configuration mistakes name their
//! source, and `herald schedule` and `herald status` report everything in one place.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use chrono::{TimeDelta, Utc};

/// A folder to run herald in.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `config.toml` in `folder` (relative to the directory) with the repository's
    /// templates and a fixed secret, plus `extra`.
    fn config_in(&self, folder: &str, extra: &str) -> PathBuf {
        let dir = self.path().join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[newsletter]\ntemplates_dir = {templates:?}\n{extra}\n\n\
                 [web]\nsecret_key = \"first-hour-test-secret-0123456789\"\n\
                 admin_token = \"first-hour-admin-token-0123456789\"\nbind = \"127.0.0.1:0\"\n",
                templates = concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
            ),
        )
        .unwrap();
        path
    }

    /// Writes `issues/{slug}.md` (in `folder`) dated `days_ago` days before now.
    fn issue(&self, folder: &str, slug: &str, days_ago: i64, draft: bool) {
        let dir = self.path().join(folder).join("issues");
        std::fs::create_dir_all(&dir).unwrap();
        let date = (Utc::now() - TimeDelta::days(days_ago)).format("%Y-%m-%dT%H:%M:%SZ");
        let draft = if draft { "draft: true\n" } else { "" };
        std::fs::write(
            dir.join(format!("{slug}.md")),
            format!("---\ntitle: \"Issue {slug}\"\ndate: {date}\n{draft}---\n\nThis is {slug}.\n"),
        )
        .unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("HERALD_LOG")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        for (var, _) in std::env::vars() {
            if var.starts_with("HERALD__") {
                command.env_remove(var);
            }
        }
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        Run(command.output().unwrap())
    }
}

/// A finished herald.
struct Run(Output);

impl Run {
    fn code(&self) -> Option<i32> {
        self.0.status.code()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    fn ok(&self) -> String {
        assert_eq!(self.code(), Some(0), "{}{}", self.stdout(), self.stderr());
        self.stdout()
    }
    fn all(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }
}

fn outbox_files(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_draft_is_refused_by_send_unless_forced_and_never_scheduled() {
    let site = Dir::new();
    site.config_in(".", "");
    site.issue(".", "demo", 1, true);
    site.issue(".", "ready", 2, false);
    site.run(&["subscribers", "add", "reader@example.org"]).ok();

    let refused = site.run(&["send", "issues/demo.md", "--yes"]);
    assert_eq!(refused.code(), Some(1), "{}", refused.all());
    assert_eq!(
        refused.stderr(),
        "herald: demo is a draft (draft: true in its front matter): remove that line to send \
         it, or add --force to send it anyway (--to ADDRESS sends a test copy)\n"
    );
    assert!(outbox_files(&site.path().join("outbox")).is_empty());

    // The scheduler's plan passes over it: the older, finished issue goes out instead.
    let schedule = site.run(&["schedule"]).ok();
    let first_run = schedule.lines().find(|l| l.starts_with("  ")).unwrap();
    assert!(first_run.ends_with(": ready \"Issue ready\""), "{schedule}");
    assert!(
        schedule.contains("\nnever sent automatically, drafts (draft: true): demo\n"),
        "{schedule}"
    );

    // `herald status` shows it as a draft, beside the issue the scheduler will send.
    let status = site.run(&["status"]).ok();
    let line = |slug: &str| {
        status
            .lines()
            .find(|l| l.starts_with(&format!("{slug} ")))
            .unwrap_or_else(|| panic!("no {slug} in\n{status}"))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(line("demo"), "draft", "{status}");
    assert_eq!(line("ready"), "scheduled", "{status}");
    assert!(status.contains("goes out by itself "), "{status}");

    // A test copy of a draft is fine, and says it is a test.
    site.run(&["send", "issues/demo.md", "--to", "editor@example.org"])
        .ok();
    let copies = outbox_files(&site.path().join("outbox"));
    assert_eq!(copies.len(), 1);
    let eml = std::fs::read_to_string(&copies[0]).unwrap();
    assert!(eml.contains("\r\nSubject: [TEST] Issue demo\r\n"), "{eml}");

    // Forced, it goes out; one recipient is one recipient.
    let forced = site.run(&["send", "issues/demo.md", "--yes", "--force"]);
    assert_eq!(forced.ok().trim_end(), "sent 1, failed 0, pending 0");
    assert!(
        forced
            .stderr()
            .contains("demo: 1 recipient (1 new) via file://"),
        "{}",
        forced.stderr()
    );
    let json: serde_json::Value =
        serde_json::from_str(&site.run(&["status", "demo", "--json"]).ok()).unwrap();
    assert_eq!(json["status"], "sent");
    assert_eq!(json["draft"], true);
    assert_eq!(json["sent"], 1);
}

#[test]
fn send_refuses_an_issue_with_a_check_error_and_force_sends_it_printing_the_findings() {
    let site = Dir::new();
    site.config_in(".", "");
    let issues = site.path().join("issues");
    std::fs::create_dir_all(&issues).unwrap();
    std::fs::write(
        issues.join("broken.md"),
        "---\ntitle: Broken\ndate: 2026-01-02\ndescription: One picture too few.\n---\n\n\
         Words first.\n\n![The chart of the week](img/missing-chart.png)\n",
    )
    .unwrap();
    site.run(&["subscribers", "add", "reader@example.org"]).ok();

    let refused = site.run(&["send", "issues/broken.md", "--yes"]);
    assert_eq!(refused.code(), Some(1), "{}", refused.all());
    let stderr = refused.stderr();
    assert!(
        stderr.starts_with(
            "issues/broken.md:9:1: error[asset-missing]: the image \"img/missing-chart.png\" \
             is not in assets_dir"
        ),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(
            "herald: not sending broken: 1 error; fix the file, allow the rule in [check] allow \
             or with <!-- herald:allow RULE -->, or add --force to send it anyway\n"
        ),
        "{stderr}"
    );
    assert!(outbox_files(&site.path().join("outbox")).is_empty());
    let json: serde_json::Value =
        serde_json::from_str(&site.run(&["status", "broken", "--json"]).ok()).unwrap();
    assert_ne!(json["status"], "sending", "{json}");
    assert_eq!(
        (json["queued"].as_u64(), json["sent"].as_u64()),
        (Some(0), Some(0)),
        "{json}"
    );

    // A test copy is not a send: it goes.
    site.run(&["send", "issues/broken.md", "--to", "editor@example.org"])
        .ok();
    assert_eq!(outbox_files(&site.path().join("outbox")).len(), 1);

    let forced = site.run(&["send", "issues/broken.md", "--yes", "--force"]);
    assert_eq!(forced.ok().trim_end(), "sent 1, failed 0, pending 0");
    let stderr = forced.stderr();
    assert!(
        stderr.contains("issues/broken.md:9:1: error[asset-missing]:")
            && stderr.contains("herald: sending broken despite 1 error (--force)\n"),
        "{stderr}"
    );
    assert_eq!(outbox_files(&site.path().join("outbox")).len(), 2);
}

#[test]
fn status_names_an_unknown_issue_plainly_and_lists_files_and_queued_issues() {
    let site = Dir::new();
    site.config_in(".", "");
    site.issue(".", "old", 30, false);
    site.issue(".", "new", 3, false);
    site.issue(".", "wip", 0, true);
    site.run(&["subscribers", "add", "reader@example.org"]).ok();
    site.run(&["send", "issues/new.md", "--yes"]).ok();

    let nope = site.run(&["status", "nope"]);
    assert_eq!(nope.code(), Some(1));
    assert_eq!(
        nope.stderr(),
        "herald: no issue nope: no file in issues has that slug, and none was queued\n"
    );

    let status = site.run(&["status"]).ok();
    let rows: Vec<(&str, &str)> = status
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap(), f.next().unwrap())
        })
        .collect();
    // Newest first by issue date; a sent issue with its counts.
    assert_eq!(
        rows,
        [("wip", "draft"), ("new", "sent"), ("old", "unsent")],
        "{status}"
    );
    let new_line = status.lines().find(|l| l.starts_with("new ")).unwrap();
    assert_eq!(
        new_line.split_whitespace().collect::<Vec<_>>(),
        // queued, sending, sent, retry, failed, skipped; then hard, soft, complaints.
        ["new", "sent", "0", "0", "1", "0", "0", "0", "0", "0", "0"]
    );
    assert!(
        status.contains("old  ") && status.contains("never queued"),
        "{status}"
    );

    let all: serde_json::Value =
        serde_json::from_str(&site.run(&["status", "--json"]).ok()).unwrap();
    let statuses: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["draft", "sent", "unsent"]);
}

#[test]
fn herald_says_which_settings_and_database_it_uses() {
    let site = Dir::new();
    // No config file here: herald says so, and where the new database is.
    let first = site.run(&["subscribers", "count"]);
    first.ok();
    let here = site.path().display().to_string();
    assert_eq!(
        first.stderr(),
        format!(
            "herald: no config.toml in {here}: using the built-in defaults, with their files \
             in this folder (--config FILE names a settings file)\n\
             herald: created a new database herald.db\n"
        )
    );
    assert!(site.path().join("herald.db").is_file());
    // A second run creates nothing, so it says nothing of a new database.
    let second = site.run(&["subscribers", "count"]);
    second.ok();
    assert!(!second.stderr().contains("created"), "{}", second.stderr());

    // Paths in a settings file elsewhere are relative to that file.
    site.config_in("site", "");
    let elsewhere = site.run(&["--config", "site/config.toml", "subscribers", "count"]);
    elsewhere.ok();
    assert_eq!(
        elsewhere.stderr(),
        "herald: created a new database site/herald.db\n"
    );
    assert!(site.path().join("site/herald.db").is_file());
}

/// `herald serve` prints the settings file, the database, where mail goes and where files
/// are served from, and a new database starts its scheduler without warnings about ticks
/// from before it existed.
#[test]
fn serve_prints_what_it_uses_and_starts_quietly_on_a_new_database() {
    use std::io::BufRead;

    let site = Dir::new();
    site.config_in("site", "");
    // Due long ago: the last Friday tick would have sent it, had herald existed then.
    site.issue("site", "due", 40, false);
    let mut child = site
        .command(&["--config", "site/config.toml", "serve"])
        .env("HERALD_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    // The scheduler logs its next run once it has looked at the past.
    while let Ok(line) = seen.recv_timeout(Duration::from_secs(30)) {
        let done = line.contains("next scheduled run") && line.contains("INFO");
        printed.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = printed.join("\n");
    for expected in [
        "herald: created a new database site/herald.db",
        "herald: settings from site/config.toml",
        "herald: database site/herald.db",
        "herald: mail written to site/outbox (smtp.url)",
        "herald: files served from site/static (newsletter.assets_dir)",
    ] {
        assert!(
            printed.iter().any(|l| l == expected),
            "{expected:?} in\n{text}"
        );
    }
    assert!(text.contains("next scheduled run"), "{text}");
    assert!(!text.contains("WARN"), "{text}");
    assert!(!text.contains("skipped"), "{text}");
    assert!(!text.contains("catching up"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes into a pipe: {text:?}"
    );
}

#[test]
fn a_bad_override_names_its_variable_and_a_syntax_error_shows_the_line() {
    let site = Dir::new();
    site.config_in(".", "");
    let bad = site.run_with(
        &["subscribers", "count"],
        &[("HERALD__SMTP__POOL_SIZE", "abc")],
    );
    assert_eq!(bad.code(), Some(1));
    assert_eq!(
        bad.stderr(),
        "herald: HERALD__SMTP__POOL_SIZE: invalid type: string \"abc\", expected an integer\n"
    );
    let unknown = site.run_with(
        &["subscribers", "count"],
        &[("HERALD__SMTP__POLL_SIZE", "4")],
    );
    assert_eq!(
        unknown.stderr(),
        "herald: HERALD__SMTP__POLL_SIZE: herald has no setting smtp.poll_size\n"
    );
    let url = site.run_with(
        &["subscribers", "count"],
        &[("HERALD__SMTP__URL", "smtp//x")],
    );
    assert_eq!(
        url.stderr(),
        "herald: HERALD__SMTP__URL: \"smtp//x\" is not a URL: use file://DIR (a folder of \
         .eml files), smtp://host[:port], smtp+starttls://host[:port] or smtps://host[:port]\n"
    );

    std::fs::write(
        site.path().join("config.toml"),
        "[newsletter]\nname = \"Weekly\"\n\n[database]\nurl = sqlite://herald.db\n",
    )
    .unwrap();
    let syntax = site.run(&["subscribers", "count"]);
    assert_eq!(syntax.code(), Some(1));
    assert_eq!(
        syntax.stderr(),
        "herald: config.toml:5:7: invalid string; expected `\"`, `'` (text values need \
         quotes: key = \"value\")\n\
         5 | url = sqlite://herald.db\n  |       ^\n"
    );
}

#[test]
fn a_cron_field_out_of_range_names_the_field_and_its_range() {
    let site = Dir::new();
    site.config_in(".", "");
    let out = site.run_with(
        &["schedule"],
        &[("HERALD__SCHEDULE__CRON", "0 0 25 * * Fri")],
    );
    assert_eq!(out.code(), Some(1));
    let stderr = out.stderr();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "cannot read \"0 0 25 * * Fri\": hour field \"25\": hour 25 is out of range: \
             hours run from 0 to 23"
        ),
        "{stderr}"
    );
    // The value came from the environment, so the error names the variable, not the file.
    assert!(
        stderr.starts_with("herald: HERALD__SCHEDULE__CRON: "),
        "{stderr}"
    );
}

#[test]
fn schedule_reports_unreadable_files_inside_the_report_and_utc_once() {
    let site = Dir::new();
    site.config_in(".", "");
    site.issue(".", "fine", 2, false);
    std::fs::write(
        site.path().join("issues/broken.md"),
        "---\ntitle: \"Never closed\"\n",
    )
    .unwrap();
    site.run(&["migrate"]).ok();
    let out = site.run(&["schedule"]);
    let stdout = out.ok();
    assert_eq!(out.stderr(), "", "nothing outside the report");
    assert!(
        stdout.ends_with(
            "never sent automatically, cannot be read: issues/broken.md:1: front matter \
             opened with `---` is never closed\n"
        ),
        "{stdout}"
    );
    let runs: Vec<&str> = stdout.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(runs.len(), 3, "{stdout}");
    let once = regex::Regex::new(r"^  Fri \d{4}-\d\d-\d\d 09:00 UTC: ").unwrap();
    for run in runs {
        assert!(once.is_match(run), "{run}");
    }
}

/// Log lines are coloured on a terminal only, and not at all with `NO_COLOR`. The terminal
/// is a pseudo-terminal from util-linux's `script`. Creating the secret file logs a line.
#[test]
fn log_colour_only_on_a_terminal_and_never_with_no_color() {
    let site = Dir::new();
    std::fs::write(site.path().join("config.toml"), "# all defaults\n").unwrap();
    let piped = site.run_with(
        &["subscribers", "add", "a@example.org"],
        &[
            ("HERALD_LOG", "info"),
            ("HERALD__WEB__SECRET_KEY_FILE", "a.secret"),
        ],
    );
    piped.ok();
    assert!(piped.stderr().contains("INFO"), "{}", piped.stderr());
    assert!(!piped.stderr().contains('\u{1b}'), "{:?}", piped.stderr());

    let Some(script) =
        support::require_tool("script", &["/usr/bin/script"], "apt-get install bsdutils")
    else {
        return;
    };
    let on_terminal = |no_color: Option<&str>, name: &str| {
        let mut command = site.command(&[]);
        let line = format!(
            "{} subscribers add {name}@example.org",
            env!("CARGO_BIN_EXE_herald")
        );
        let mut script = Command::new(&script);
        for (var, value) in command.get_envs() {
            match value {
                Some(value) => script.env(var, value),
                None => script.env_remove(var),
            };
        }
        script
            .env("HERALD_LOG", "info")
            .env("HERALD__WEB__SECRET_KEY_FILE", format!("{name}.secret"));
        if let Some(v) = no_color {
            script.env("NO_COLOR", v);
        }
        let output = script
            .args(["-qec", &line, "/dev/null"])
            .current_dir(site.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        command.arg("--version");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(text.contains("created a new key"), "{text}");
        text
    };
    assert!(on_terminal(None, "b").contains("\u{1b}["));
    assert!(!on_terminal(Some("1"), "c").contains('\u{1b}'));
    // An empty NO_COLOR counts as unset.
    assert!(on_terminal(Some(""), "d").contains("\u{1b}["));
}

/// The images of an issue resolve to `newsletter.base_url`, and `herald serve` serves them
/// from `newsletter.assets_dir` there: with caching headers, without listing folders, and
/// never a hidden file or anything outside the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_images_are_served_from_the_assets_folder() {
    use reqwest::{header, StatusCode};
    use support::server::{Relay, TestServer};

    let server = TestServer::start(Relay::Outbox, |_| {}).await;
    let images = server.assets_dir().join("img/issues");
    std::fs::create_dir_all(&images).unwrap();
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/static/img/issues/pipeline.png"
    ))
    .unwrap();
    std::fs::write(images.join("chart.png"), &png).unwrap();
    std::fs::create_dir_all(server.assets_dir().join(".private")).unwrap();
    std::fs::write(server.assets_dir().join(".private/notes.txt"), "secret").unwrap();
    std::fs::write(server.assets_dir().join(".env"), "KEY=secret").unwrap();
    let issue = server.issues_dir().join("pictures.md");
    std::fs::write(
        &issue,
        "---\ntitle: \"Pictures & words\"\ncover: img/issues/chart.png\n---\n\n\
         ![A chart of the week](img/issues/chart.png)\n",
    )
    .unwrap();

    // Every image of the rendered issue is served, and the cover's alt is the title.
    let preview = herald::preview::sample(&server.app.settings, &issue).unwrap();
    let img = regex::Regex::new(r#"<img [^>]*>"#).unwrap();
    let attr = |tag: &str, name: &str| {
        regex::Regex::new(&format!(r#"\s{name}="([^"]*)""#))
            .unwrap()
            .captures(tag)
            .map(|c| c[1].to_string())
    };
    let tags: Vec<&str> = img.find_iter(&preview.html).map(|m| m.as_str()).collect();
    assert_eq!(tags.len(), 2, "{}", preview.html);
    let alts: Vec<String> = tags.iter().filter_map(|t| attr(t, "alt")).collect();
    assert_eq!(alts, ["Pictures &amp; words", "A chart of the week"]);
    let client = reqwest::Client::new();
    for tag in &tags {
        let src = attr(tag, "src").unwrap();
        assert_eq!(src, server.url("/img/issues/chart.png"));
        let response = client.get(&src).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "image/png");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=86400"
        );
        let modified = response.headers()[header::LAST_MODIFIED].clone();
        assert_eq!(response.bytes().await.unwrap(), png);
        let again = client
            .get(&src)
            .header(header::IF_MODIFIED_SINCE, modified)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
    let head = client
        .head(server.url("/img/issues/chart.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);

    for path in [
        "/img/issues/",
        "/img/issues",
        "/img/issues/missing.png",
        "/.env",
        "/.private/notes.txt",
        "/%2eprivate/notes.txt",
        "/img/../.env",
        "/%2e%2e/Cargo.toml",
    ] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("Page not found"), "{path}: {body}");
        assert!(!body.contains("secret"), "{path}");
    }
    let post = client
        .post(server.url("/img/issues/chart.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    server.stop().await.unwrap();
}
