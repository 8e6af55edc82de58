//! `herald preview` as a user runs it: the real binary, a config file in a scratch folder,
//! and the example issue. The eml snapshot is the exact message a subscriber would get, with
//! Message-ID, Date and MIME boundaries blanked.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::snapshot::{assert_snapshot, blank_volatile};

const EXAMPLE: &str = "tests/fixtures/issues/2026-11-27-welcome-to-herald.md";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch folder with a config.toml that points at the project's templates.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[newsletter]
name = "Herald Weekly"
from = "Herald Weekly <newsletter@news.herald.example>"
reply_to = "editors@news.herald.example"
base_url = "https://news.herald.example/"
postal_address = "Herald Weekly, 1 Example Street, 10115 Berlin, Germany"
templates_dir = "{templates}"

[web]
secret_key = "preview-test-secret-key-0123456789"
"#,
        templates = root().join("templates").display()
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

#[test]
fn eml_of_the_example_issue_matches_snapshot() {
    let dir = workspace();
    let example = root().join(EXAMPLE);
    let out = herald(
        dir.path(),
        &["preview", example.to_str().unwrap(), "--format", "eml"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eml = blank_volatile(&out.stdout);
    assert!(
        eml.contains("\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n"),
        "{eml}"
    );
    assert!(
        eml.contains("Content-Type: multipart/alternative;"),
        "{eml}"
    );
    assert_snapshot("welcome-to-herald.eml", &eml);
}

#[test]
fn formats_and_output_file() {
    let dir = workspace();
    let example = root().join(EXAMPLE);
    let example = example.to_str().unwrap();
    let html = herald(dir.path(), &["preview", example]);
    assert!(html.status.success());
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(
        html.starts_with("<!doctype html>") || html.starts_with("<!DOCTYPE html>"),
        "{}",
        &html[..80]
    );
    assert!(html.contains("https://news.herald.example/unsubscribe/"));

    let text = herald(dir.path(), &["preview", example, "--format", "text"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("Unsubscribe: https://news.herald.example/unsubscribe/"),
        "{text}"
    );
    assert!(!text.contains('<'), "the text part holds no markup");

    let out = herald(
        dir.path(),
        &[
            "preview", example, "--format", "eml", "--output", "copy.eml",
        ],
    );
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let written = std::fs::read(dir.path().join("copy.eml")).unwrap();
    assert!(written.starts_with(b"From: ") || written.windows(6).any(|w| w == b"\r\nFrom"));
    assert!(
        !dir.path().join("herald.secret").exists(),
        "a configured key is used as is"
    );
}

/// Every kind of bad issue ends with one line naming the file (and line), and exit 1.
#[test]
fn bad_issues_get_one_line_errors() {
    let dir = workspace();
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "no-title.md",
            b"---\ndate: 2026-11-27\n---\nBody\n",
            "no-title.md:1: front matter has no `title`",
        ),
        (
            "bad-date.md",
            b"---\ntitle: T\ndate: next friday\n---\nBody\n",
            "bad-date.md:3: cannot read date",
        ),
        (
            "unclosed.md",
            b"---\ntitle: T\nBody\n",
            "unclosed.md:1: front matter opened with `---` is never closed",
        ),
        (
            "latin1.md",
            b"---\ntitle: Caf\xe9\n---\nBody\n",
            "latin1.md:2: not valid UTF-8",
        ),
        (
            "empty.md",
            b"---\ntitle: T\n---\n\n",
            "empty.md:4: the body is empty",
        ),
        ("yaml.md", b"---\ntitle: [unclosed\n---\nBody\n", "yaml.md:"),
    ];
    for (name, contents, expected) in cases {
        std::fs::write(dir.path().join(name), contents).unwrap();
        let out = herald(dir.path(), &["preview", name]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.starts_with("herald: "), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected {expected:?} in {stderr}"
        );
        assert!(out.stdout.is_empty(), "{name}: nothing is printed on error");
    }
    let out = herald(dir.path(), &["preview", "missing.md"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.md: cannot read"));
}

#[test]
fn bad_config_names_the_file_and_key() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[smtp]\npool_size = \"many\"\n",
    )
    .unwrap();
    let example = root().join(EXAMPLE);
    let out = herald(
        dir.path(),
        &["--config", "bad.toml", "preview", example.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.toml") && stderr.contains("smtp.pool_size"),
        "{stderr}"
    );
    let out = herald(dir.path(), &["--config", "nowhere.toml", "preview", "x.md"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere.toml: cannot read"));
}
