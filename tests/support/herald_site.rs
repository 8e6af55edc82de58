//! A throwaway herald installation for end-to-end tests of the real binary: a temporary
//! directory with a `config.toml`, a SQLite database, generated subscribers, and helpers to
//! run `herald subscribers import`, `herald send` and `herald status --json`.
//!
//! ```ignore
//! let site = HeraldSite::new(&server.url(), &SendingConfig { lease_seconds: 2, ..Default::default() });
//! let emails = site.import_generated(3000);
//! let run = site.send(&["--yes"]).await;
//! assert_eq!(run.summary(), Some(Summary { sent: 3000, failed: 0, pending: 0 }));
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

/// The issue every end-to-end send uses.
pub const ISSUE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/issues/2026-11-27-welcome-to-herald.md"
);
/// Its slug (the file stem).
pub const SLUG: &str = "2026-11-27-welcome-to-herald";
const SECRET: &str = "end-to-end-test-secret-0123456789";

/// The `[smtp]` and `[sending]` values a test chooses.
#[derive(Clone, Debug)]
pub struct SendingConfig {
    pub concurrency: u32,
    pub pool_size: u32,
    pub batch_size: u32,
    pub lease_seconds: u64,
    pub retry_base_seconds: u64,
    pub max_attempts: u32,
    pub timeout_seconds: u64,
}

impl Default for SendingConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            pool_size: 8,
            batch_size: 500,
            lease_seconds: 20,
            retry_base_seconds: 60,
            max_attempts: 8,
            timeout_seconds: 10,
        }
    }
}

/// `herald status SLUG --json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub retry: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// The contract's last line of `herald send`: `sent N, failed N, pending N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub sent: u64,
    pub failed: u64,
    pub pending: u64,
}

impl Summary {
    /// Parses `sent N, failed N, pending N`.
    pub fn parse(line: &str) -> Option<Summary> {
        let mut numbers = line.trim().split(", ").map(|part| {
            let (name, value) = part.split_once(' ')?;
            Some((name, value.parse::<u64>().ok()?))
        });
        match (numbers.next()??, numbers.next()??, numbers.next()??) {
            (("sent", sent), ("failed", failed), ("pending", pending))
                if numbers.next().is_none() =>
            {
                Some(Summary {
                    sent,
                    failed,
                    pending,
                })
            }
            _ => None,
        }
    }
}

/// What a finished `herald` process left.
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// The exit code (`None` when a signal ended the process).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The last non-empty stdout line.
    pub fn last_line(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("")
    }

    /// The last line parsed as the send summary.
    pub fn summary(&self) -> Option<Summary> {
        Summary::parse(self.last_line())
    }

    /// Everything, for an assertion message.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr (last 3000 bytes) ---\n{}",
            self.status,
            self.stdout,
            tail(&self.stderr, 3000)
        )
    }
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A temporary directory holding `config.toml` and `herald.db`.
pub struct HeraldSite {
    dir: tempfile::TempDir,
}

impl HeraldSite {
    /// Writes a `config.toml` pointing at `smtp_url` with `sending`'s values.
    pub fn new(smtp_url: &str, sending: &SendingConfig) -> HeraldSite {
        let dir = tempfile::tempdir().expect("temporary directory");
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let config = format!(
            r#"[newsletter]
name = "Herald Test"
from = "Herald Test <newsletter@example.org>"
base_url = "http://127.0.0.1:8080"
postal_address = "Herald Test, 1 Example Street, 00000 Example City"
templates_dir = "{templates}"
# The fixture issue's pictures.
assets_dir = "{assets}"

# Its link to `/docs/design/` shows how relative links resolve; no page is there.
[check]
allow = ["link-unresolvable"]

[database]
url = "sqlite://{db}"

[smtp]
url = "{smtp_url}"
pool_size = {pool_size}
timeout_seconds = {timeout}

[sending]
concurrency = {concurrency}
batch_size = {batch_size}
lease_seconds = {lease}
retry_base_seconds = {retry_base}
max_attempts = {max_attempts}

[web]
secret_key = "{SECRET}"
"#,
            templates = templates.display(),
            assets = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("static")
                .display(),
            db = dir.path().join("herald.db").display(),
            pool_size = sending.pool_size,
            timeout = sending.timeout_seconds,
            concurrency = sending.concurrency,
            batch_size = sending.batch_size,
            lease = sending.lease_seconds,
            retry_base = sending.retry_base_seconds,
            max_attempts = sending.max_attempts,
        );
        std::fs::write(dir.path().join("config.toml"), config).expect("write config.toml");
        HeraldSite { dir }
    }

    /// The site's directory (the working directory of every herald it runs).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `herald ARGS` command in the site's directory, its output piped.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("HERALD_LOG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `herald ARGS` to the end.
    pub async fn run(&self, args: &[&str]) -> RunOutput {
        let output = self
            .command(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run herald {args:?}: {e}"));
        RunOutput {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts `herald send ISSUE EXTRA` without waiting for it.
    pub fn spawn_send(&self, extra: &[&str]) -> tokio::process::Child {
        let mut args = vec!["send", ISSUE];
        args.extend_from_slice(extra);
        self.command(&args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start herald {args:?}: {e}"))
    }

    /// Starts `herald serve` on a free loopback port, with `SIGXFSZ` ignored (so a file-size
    /// limit set on it later makes writes fail with an error instead of killing it), and
    /// returns it with its base URL (`http://127.0.0.1:PORT`) once it listens.
    pub async fn spawn_serve(&self) -> (tokio::process::Child, String) {
        use tokio::io::AsyncBufReadExt;
        let mut command = tokio::process::Command::new("sh");
        command
            .args([
                "-c",
                "trap '' XFSZ; exec \"$0\" serve",
                env!("CARGO_BIN_EXE_herald"),
            ])
            .current_dir(self.dir.path())
            .env_remove("HERALD_LOG")
            .env_remove("RUST_LOG")
            .env("HERALD__WEB__BIND", "127.0.0.1:0")
            .env("HERALD__SCHEDULE__CRON", "off")
            .env("HERALD__WEB__SIGNUP_PER_IP_PER_MINUTE", "0")
            .env(
                "HERALD__WEB__ADMIN_TOKEN",
                "end-to-end-admin-token-0123456789",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start herald serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read stderr") {
                if let Some(url) = line.strip_prefix("herald: serving on ") {
                    return url.trim().to_string();
                }
            }
            panic!("herald serve ended before it listened")
        })
        .await
        .expect("herald serve listens within a minute");
        // Keep draining stderr, so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, base)
    }

    /// The secret the site's tokens are signed with.
    pub fn secret(&self) -> &'static str {
        SECRET
    }

    /// Runs `herald send ISSUE EXTRA` to the end.
    pub async fn send(&self, extra: &[&str]) -> RunOutput {
        let mut args = vec!["send", ISSUE];
        args.extend_from_slice(extra);
        self.run(&args).await
    }

    /// Writes `subscribers.csv` with `n` generated subscribers, imports it, and returns the
    /// addresses in order (`reader-00000@example.com`, ...).
    pub async fn import_generated(&self, n: usize) -> Vec<String> {
        let emails: Vec<String> = (0..n)
            .map(|i| format!("reader-{i:05}@example.com"))
            .collect();
        let mut csv = String::from("email,name\n");
        for (i, email) in emails.iter().enumerate() {
            csv.push_str(&format!("{email},Reader {i}\n"));
        }
        let path: PathBuf = self.dir.path().join("subscribers.csv");
        std::fs::write(&path, csv).expect("write subscribers.csv");
        let out = self
            .run(&["subscribers", "import", path.to_str().expect("UTF-8 path")])
            .await;
        assert_eq!(out.code(), Some(0), "import failed: {}", out.describe());
        emails
    }

    /// `herald status SLUG --json`, parsed.
    pub async fn status(&self) -> Status {
        self.status_if_queued()
            .await
            .unwrap_or_else(|| panic!("{SLUG} was never queued"))
    }

    /// `herald status SLUG --json`, parsed; `None` while the issue was never queued (a send
    /// killed before its enqueue committed leaves no row, and the issue file lies outside
    /// the site's issues folder).
    pub async fn status_if_queued(&self) -> Option<Status> {
        let out = self.run(&["status", SLUG, "--json"]).await;
        if out.code() == Some(1) && out.stderr.contains("none was queued") {
            return None;
        }
        assert_eq!(out.code(), Some(0), "status failed: {}", out.describe());
        let json: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", out.stdout));
        let field = |name: &str| {
            json[name]
                .as_u64()
                .unwrap_or_else(|| panic!("status --json has no number {name:?}: {json}"))
        };
        Some(Status {
            queued: field("queued"),
            sending: field("sending"),
            sent: field("sent"),
            retry: field("retry"),
            failed: field("failed"),
            skipped: field("skipped"),
        })
    }
}

/// How many times each address occurs in `recipients`.
pub fn tally<'a>(recipients: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for address in recipients {
        *counts.entry(address.to_ascii_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// Polls `condition` every 10 ms until it holds; false if `timeout` passed first.
pub async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
