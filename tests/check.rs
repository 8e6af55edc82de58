//! `herald check`: every rule on a fixture that triggers it and on one that does not, the
//! JSON Lines output, the two ways to allow a rule, and the exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use herald::check::{self, Surroundings, RENDER_FAILED, RULES};
use herald::config::Settings;
use herald::links::Links;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/check")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// A scratch site on a public host: the project's templates, the fixtures as its issues
/// folder, and an assets folder holding `img/cover.png`.
fn site(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("static/img")).unwrap();
    std::fs::write(dir.path().join("static/img/cover.png"), b"\x89PNG\r\n").unwrap();
    let config = format!(
        r#"[newsletter]
base_url = "https://news.sofastack.tech/"
postal_address = "SOFAStack, 1 Example Road, Hangzhou"
templates_dir = "{templates}"
issues_dir = "{issues}"
assets_dir = "static"

[web]
secret_key = "check-test-secret-key-0123456789"
{extra}
"#,
        templates = root().join("templates").display(),
        issues = fixtures().display(),
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    dir
}

fn herald(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .current_dir(dir)
        .env_remove("HERALD_LOG")
        .env_remove("RUST_LOG")
        .output()
        .expect("herald runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_rule_has_a_fixture_that_triggers_it_and_a_clean_one_that_does_not() {
    let dir = site("");
    let settings = Settings::load(&dir.path().join("config.toml"), true).unwrap();
    let templates = herald::startup::load_templates_quietly(&settings).unwrap();
    let links = Links::new(&settings.newsletter.base_url).unwrap();
    let around = Surroundings::gather(&settings.newsletter, &[]);
    let mut problems = Vec::new();
    for rule in RULES {
        // An issue cannot make rendering fail: the issue limits refuse it first
        // (issue-invalid); a broken template is a settings error before any check.
        if rule.id == RENDER_FAILED {
            continue;
        }
        let bad = fixtures().join(format!("{}.bad.md", rule.id));
        let good = fixtures().join(format!("{}.good.md", rule.id));
        let found = check::check_file(&bad, &settings, &templates, &links, &around);
        if !found.iter().any(|f| f.rule == rule.id) {
            problems.push(format!(
                "{} is not found in {}: {found:#?}",
                rule.id,
                bad.display()
            ));
        }
        let clean = check::check_file(&good, &settings, &templates, &links, &around);
        if !clean.is_empty() {
            problems.push(format!("{} is not clean: {clean:#?}", good.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn json_lines_carry_every_field_and_an_error_exits_non_zero() {
    let dir = site("");
    let out = herald(
        dir.path(),
        &[
            "check",
            "--json",
            &fixture("literal-emphasis.bad.md"),
            &fixture("link-local.bad.md"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for line in &lines {
        for key in [
            "file", "line", "column", "rule", "severity", "message", "hint",
        ] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
    }
    let emphasis = lines
        .iter()
        .find(|l| l["rule"] == "literal-emphasis")
        .expect("the literal asterisks are found");
    assert_eq!(emphasis["severity"], "warning");
    assert_eq!(
        (emphasis["line"].as_u64(), emphasis["column"].as_u64()),
        (Some(7), Some(1))
    );
    assert!(emphasis["file"]
        .as_str()
        .unwrap()
        .ends_with("literal-emphasis.bad.md"));
    assert!(
        emphasis["hint"]
            .as_str()
            .unwrap()
            .contains("`**SOFAStack 官网:** `"),
        "{emphasis}"
    );
    let local = lines.iter().find(|l| l["rule"] == "link-local").unwrap();
    assert_eq!(local["severity"], "error");
    assert_eq!(local["line"], 9);
}

#[test]
fn warnings_alone_exit_zero_and_read_as_file_line_column() {
    let dir = site("");
    let out = herald(dir.path(), &["check", &fixture("literal-emphasis.bad.md")]);
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("literal-emphasis.bad.md:7:1: warning[literal-emphasis]: `**` shows as literal characters"),
        "{text}"
    );
    assert!(text.contains("\n  hint: "), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 errors, 1 warning in 1 file"));
    let clean = herald(dir.path(), &["check", &fixture("link-local.good.md")]);
    assert!(clean.status.success());
    assert_eq!(stdout(&clean), "");
}

#[test]
fn config_allow_turns_a_rule_off_even_an_error() {
    let dir = site("[check]\nallow = [\"link-local\", \"literal-emphasis\"]\n");
    let out = herald(
        dir.path(),
        &[
            "check",
            &fixture("link-local.bad.md"),
            &fixture("literal-emphasis.bad.md"),
        ],
    );
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
}

#[test]
fn an_unknown_rule_in_allow_is_a_settings_error() {
    let dir = site("[check]\nallow = [\"link-locale\"]\n");
    let out = herald(dir.path(), &["check", &fixture("link-local.bad.md")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("check.allow") && err.contains("link-locale"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn an_allow_comment_turns_a_rule_off_for_its_line_only() {
    let dir = site("");
    let issue = dir.path().join("allowed.md");
    std::fs::write(
        &issue,
        "---\ntitle: \"Local links\"\ndescription: \"Two links.\"\ndate: 2026-01-09\n---\n\n\
         <!-- herald:allow link-local -->\n\
         Try [the admin page](http://localhost:8080/admin) on your machine.\n\n\
         And [the other page](http://127.0.0.1/x) too.\n",
    )
    .unwrap();
    let out = herald(dir.path(), &["check", "--json", issue.to_str().unwrap()]);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let local: Vec<_> = lines.iter().filter(|l| l["rule"] == "link-local").collect();
    assert_eq!(local.len(), 1, "{lines:#?}");
    assert_eq!(local[0]["line"], 10);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_file_that_cannot_be_read_is_an_error_finding() {
    let dir = site("");
    let out = herald(dir.path(), &["check", "--json", "no-such-issue.md"]);
    assert_eq!(out.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(line["rule"], "issue-invalid");
    assert!(
        line["message"].as_str().unwrap().contains("cannot read"),
        "{line}"
    );
}

#[test]
fn the_slug_of_another_file_is_an_error_naming_that_file() {
    let dir = site("");
    let out = herald(dir.path(), &["check", &fixture("slug-duplicate.bad.md")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("error[slug-duplicate]") && text.contains("welcome.md"),
        "{text}"
    );
}

#[test]
fn the_readme_lists_every_rule_with_its_severity() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for rule in RULES {
        let row = format!("| `{}` | {} |", rule.id, rule.severity);
        assert!(readme.contains(&row), "README has no row {row}");
    }
}
