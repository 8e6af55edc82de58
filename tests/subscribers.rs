//! The subscriber list end to end: the real `herald` binary and the library against a
//! throwaway database, a SQLite file and a PostgreSQL database in turn.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use futures::StreamExt;
use herald::domain::{EmailAddress, ErasureKey, SubscriberStatus};
use herald::store::{self, StatusChange, Store};
use herald::subscribers::{import_csv, ImportEvent, ImportOptions, ImportSummary};
use secrecy::SecretString;
use sqlx::Connection as _;
use support::postgres::{Arg, Backend, RawDb};

const SECRET: &str = "test-secret-key-0123456789abcdef";

/// A temporary directory holding one database, and the environment to point herald at it.
struct Site {
    dir: tempfile::TempDir,
    backend: Backend,
    url: String,
}

impl Site {
    /// A folder with a settings file and a migrated database of `backend`, so that commands
    /// print nothing but their own output; `None` when that backend cannot be had here.
    async fn open(backend: Backend) -> Option<Self> {
        let backend = Backend::open(backend).await?;
        let dir = tempfile::tempdir().unwrap();
        let url = backend.database_url(dir.path()).await;
        let site = Self { dir, backend, url };
        std::fs::write(
            site.dir.path().join("config.toml"),
            "# The database and the secret come from the environment.\n",
        )
        .unwrap();
        let out = site.herald(&["migrate"]);
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let expected = match backend {
            Backend::Sqlite => format!(
                "herald: created a new database {}\n",
                site.dir.path().join("herald.db").display()
            ),
            // The server's database exists before herald first opens it.
            Backend::Postgres => String::new(),
        };
        assert_eq!(
            stderr, expected,
            "a command that creates the database says where"
        );
        Some(site)
    }

    fn db_url(&self) -> String {
        self.url.clone()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(herald_binary());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("HERALD__DATABASE__URL", self.db_url())
            .env("HERALD__WEB__SECRET_KEY", SECRET)
            .env_remove("HERALD_LOG")
            .env_remove("RUST_LOG");
        cmd
    }

    fn herald(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs herald, asserts success, and returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.herald(args);
        assert!(
            out.status.success(),
            "herald {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Imports `csv` and returns (stdout, stderr). The exit status must be 0 when no row
    /// was rejected and 65 when some were.
    fn import(&self, csv: &[u8], extra: &[&str]) -> (String, String) {
        let path = self.write("import.csv", csv);
        let mut args = vec!["subscribers", "import", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = self.herald(&args);
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let expected = if stdout.trim_end().ends_with(", rejected 0") {
            0
        } else {
            65
        };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "import exit status: {stdout}{stderr}"
        );
        (stdout, stderr)
    }

    /// `email -> status` from `list`.
    fn statuses(&self) -> Vec<(String, String)> {
        self.ok(&["subscribers", "list"])
            .lines()
            .map(|l| {
                let mut f = l.split('\t');
                (f.next().unwrap().to_string(), f.next().unwrap().to_string())
            })
            .collect()
    }

    async fn store(&self) -> Store {
        store::connect(&self.db_url()).await.unwrap()
    }
}

/// The binary under test. `HERALD_TEST_BIN` overrides Cargo's path, for checkouts that
/// share one target directory (where another checkout's build can replace
/// `target/debug/herald` while these tests run).
fn herald_binary() -> PathBuf {
    std::env::var_os("HERALD_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_herald")))
}

fn key() -> ErasureKey {
    ErasureKey::new(&SecretString::from(SECRET.to_string()))
}

fn count_lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

on_both_backends! {
    async fn bad_rows_of_every_kind_are_reported_with_their_line_and_never_stop_the_import(site: Site) {
        let long_local = format!("{}@example.org", "a".repeat(300));
        let mut csv = Vec::new();
        csv.extend_from_slice(b"\xEF\xBB\xBF"); // BOM before the header
        csv.extend_from_slice(b"email,name,company\n"); // line 1
        csv.extend_from_slice(b"good1@example.org,Ann,\n"); // 2
        csv.extend_from_slice(b",Empty Email,\n"); // 3
        csv.extend_from_slice(b"has space@example.org,,\n"); // 4
        csv.extend_from_slice(b"\"cr\rinjected@example.org\",,\n"); // 5
        csv.extend_from_slice(b"\"lf\nBcc: x@evil.org\",,\n"); // 6-7
        csv.extend_from_slice(format!("{long_local},,\n").as_bytes()); // 8
        csv.extend_from_slice(b"bad@domain_with_underscore.org,,\n"); // 9
        csv.extend_from_slice(b"nodot@localhost,,\n"); // 10
        csv.extend_from_slice(b"\"quoted@example.org\",\"Doe, Jane\",\"Acme, Inc.\nBranch 2\"\n"); // 11-12
        csv.extend_from_slice(b"newline-name@example.org,\"Eve\r\nBcc: x@evil.org\",\n"); // 13-14
        csv.extend_from_slice(b"bad-utf8@example.org,\xff\xfe,\n"); // 15
        csv.extend_from_slice(b"good2@example.org,Bob,,extra-field\n"); // 16
        csv.extend_from_slice(b"good3@example.org\n"); // 17: short row, missing cells are empty
        let (stdout, stderr) = site.import(&csv, &[]);

        assert_eq!(
            stdout.trim(),
            "imported 3, duplicates 0, rejected 10",
            "{stderr}"
        );
        for line in [3, 4, 5, 6, 8, 9, 10, 13, 15, 16] {
            assert_eq!(
                count_lines_with(&stderr, &format!("line {line}: ")),
                1,
                "line {line} not reported once:\n{stderr}"
            );
        }
        assert!(
            stderr.ends_with("herald: 10 rows were rejected (see above); the others were imported\n"),
            "{stderr}"
        );
        assert!(stderr.contains("empty"), "{stderr}");
        assert!(stderr.contains("longer than 64"), "{stderr}");
        assert!(stderr.contains("domain"), "{stderr}");
        assert!(
            !stderr.contains("evil.org"),
            "rejections must not echo the row: {stderr}"
        );

        let list = site.ok(&["subscribers", "list", "--json"]);
        let rows: serde_json::Value = serde_json::from_str(&list).unwrap();
        let rows = rows.as_array().unwrap();
        let emails: Vec<&str> = rows.iter().map(|r| r["email"].as_str().unwrap()).collect();
        assert_eq!(
            emails,
            [
                "good1@example.org",
                "quoted@example.org",
                "good3@example.org"
            ]
        );
        assert_eq!(rows[1]["name"], "Doe, Jane");
        assert_eq!(rows[1]["attributes"]["company"], "Acme, Inc.\nBranch 2");
        assert_eq!(rows[0]["attributes"], serde_json::json!({}));
    }
}

on_both_backends! {
    /// Every line of `--help` under Arguments and Options carries text, for every subscribers
    /// command, as the real binary prints it.
    async fn every_subscribers_command_explains_each_argument_in_help(site: Site) {
        for command in [
            "add",
            "list",
            "import",
            "export",
            "remove",
            "unsubscribe",
            "count",
        ] {
            let out = site.herald(&["subscribers", command, "--help"]);
            assert!(out.status.success());
            let help = String::from_utf8(out.stdout).unwrap();
            let mut in_list = false;
            for line in help.lines() {
                if line == "Arguments:" || line == "Options:" {
                    in_list = true;
                    continue;
                }
                if line.is_empty() {
                    in_list = false;
                    continue;
                }
                // An entry is `  <EMAIL>  text` or `      --name <NAME>  text`; a line indented
                // further continues the text above.
                if in_list && line.starts_with("  ") && !line.starts_with("          ") {
                    let entry = line.trim_start();
                    let text = entry.split_once("  ").map(|(_, t)| t.trim());
                    assert!(
                        text.is_some_and(|t| !t.is_empty()),
                        "`herald subscribers {command} --help`: no text for {entry:?}\n{help}"
                    );
                }
            }
            assert!(help.contains("Options:"), "{help}");
        }
        let add = String::from_utf8(site.herald(&["subscribers", "add", "--help"]).stdout).unwrap();
        assert!(
            add.contains("<EMAIL>  The subscriber's email address"),
            "{add}"
        );
        assert!(add.contains("--status <STATUS>  pending, active"), "{add}");
    }
}

on_both_backends! {
    async fn a_file_without_an_email_column_is_a_one_line_error(site: Site) {
        let path = site.write("x.csv", b"mail,name\na@example.org,A\n");
        let out = site.herald(&["subscribers", "import", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("herald: ") && stderr.contains("email"),
            "{stderr}"
        );
    }
}

on_both_backends! {
    async fn bad_input_on_the_command_line_is_a_one_line_error(site: Site) {
        for args in [
            &["subscribers", "add", "not-an-address"][..],
            &[
                "subscribers",
                "add",
                "a@example.org",
                "--name",
                "Eve\nBcc: x@y.org",
            ],
            &["subscribers", "unsubscribe", "nobody@example.org"],
        ] {
            let out = site.herald(args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(stderr.starts_with("herald: "), "{stderr}");
        }
    }
}

on_both_backends! {
    async fn duplicates_are_caught_case_insensitively_in_the_file_and_against_the_list(site: Site) {
        site.ok(&["subscribers", "add", "Jane@Example.org"]);
        // The same address in another case is the same subscriber: adding it again is a no-op.
        let out = site.herald(&["subscribers", "add", "JANE@example.ORG"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stdout).contains("already on the list (active)"));
        // Asking for another status is a conflict, reported and left alone.
        let out = site.herald(&[
            "subscribers",
            "add",
            "jane@example.org",
            "--status",
            "pending",
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("already on the list with status active"));

        let (stdout, _) = site.import(
            b"email\njane@example.org\nbob@example.org\nBOB@EXAMPLE.ORG\nBob@example.org\nalice@example.org\n",
            &[],
        );
        assert_eq!(stdout.trim(), "imported 2, duplicates 3, rejected 0");
        let emails: Vec<String> = site.statuses().into_iter().map(|(e, _)| e).collect();
        assert_eq!(
            emails,
            ["Jane@example.org", "bob@example.org", "alice@example.org"]
        );
    }
}

on_both_backends! {
    async fn unsubscribed_bounced_complained_and_erased_addresses_stay_out_after_a_reimport(site: Site) {
        site.import(
            b"email,status\nunsub@example.org,\nbounce@example.org,bounced\ncomplain@example.org,Complained\nerase@example.org,\nkeep@example.org,\n",
            &[],
        );
        site.ok(&["subscribers", "unsubscribe", "UNSUB@example.org"]);
        site.ok(&["subscribers", "remove", "erase@example.org"]);

        let again = b"email,status\nunsub@example.org,active\nBounce@example.org,\ncomplain@example.org,active\nErase@Example.org,active\nkeep@example.org,\n";
        let (stdout, stderr) = site.import(again, &[]);
        assert_eq!(
            stdout.trim(),
            "imported 0, duplicates 4, rejected 1",
            "{stderr}"
        );
        assert!(
            stderr.contains("line 5: ") && stderr.contains("erased"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("erase@"),
            "never print an erased address: {stderr}"
        );
        assert_eq!(
            site.statuses(),
            [
                ("unsub@example.org".into(), "unsubscribed".into()),
                ("bounce@example.org".into(), "bounced".into()),
                ("complain@example.org".into(), "complained".into()),
                ("keep@example.org".into(), "active".into()),
            ]
        );

        // Nor may `add` bring an erased address back.
        let out = site.herald(&["subscribers", "add", "erase@example.org"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("erased"));
    }
}

on_both_backends! {
    async fn import_status_option_applies_to_rows_without_a_status(site: Site) {
        let (stdout, _) = site.import(
            b"email,status\na@example.org,\nb@example.org,active\n",
            &["--status", "pending"],
        );
        assert_eq!(stdout.trim(), "imported 2, duplicates 0, rejected 0");
        assert_eq!(
            site.ok(&["subscribers", "list", "--status", "pending"]),
            "a@example.org\tpending\t\n"
        );
        let count = site.ok(&["subscribers", "count"]);
        assert!(count.contains("pending      1"), "{count}");
        assert!(count.contains("active       1"), "{count}");
        assert!(count.contains("total        2"), "{count}");
    }
}

on_both_backends! {
    async fn sql_metacharacters_are_stored_verbatim(site: Site) {
        site.ok(&[
            "subscribers",
            "add",
            "o'brien@example.org",
            "--name",
            "'; drop table subscribers; --",
        ]);
        let (stdout, stderr) = site.import(
            b"email,name,note\n\"x'); DROP TABLE subscribers;--@example.org\",\"Robert'); DROP TABLE events;--\",\"'; drop table\"\n\"'; drop table\",,\n",
            &[],
        );
        // `x');` is not a dot-atom local part (parentheses and `;` are not atext), and
        // `'; drop table` is no address at all; both are rejected as rows, nothing else happens.
        assert_eq!(
            stdout.trim(),
            "imported 0, duplicates 0, rejected 2",
            "{stderr}"
        );
        site.import(
            b"email,name,note\nd'arcy@example.org,\"Robert'); DROP TABLE events;--\",\"'; drop table\"\n",
            &[],
        );
        let rows: serde_json::Value =
            serde_json::from_str(&site.ok(&["subscribers", "list", "--json"])).unwrap();
        assert_eq!(rows[0]["email"], "o'brien@example.org");
        assert_eq!(rows[0]["name"], "'; drop table subscribers; --");
        assert_eq!(rows[1]["email"], "d'arcy@example.org");
        assert_eq!(rows[1]["name"], "Robert'); DROP TABLE events;--");
        assert_eq!(rows[1]["attributes"]["note"], "'; drop table");
        site.ok(&["subscribers", "unsubscribe", "O'Brien@example.org"]);
        assert_eq!(
            site.statuses()[0],
            ("o'brien@example.org".into(), "unsubscribed".into())
        );
    }
}

on_both_backends! {
    async fn two_processes_importing_at_once_both_finish_without_lock_errors(site: Site) {
        // Overlapping files: rows 0..30000 and 15000..45000, on a database neither has created.
        let write = |name: &str, range: std::ops::Range<u32>| {
            let mut csv = String::from("email,name,plan\n");
            for i in range {
                csv.push_str(&format!("user{i}@example.org,User {i},free\n"));
            }
            site.write(name, csv.as_bytes())
        };
        let a = write("a.csv", 0..30_000);
        let b = write("b.csv", 15_000..45_000);
        let first = site
            .command(&["subscribers", "import", a.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let second = site
            .command(&["subscribers", "import", b.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut imported = 0;
        let mut duplicates = 0;
        for child in [first, second] {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            assert!(!stderr.contains("locked"), "{stderr}");
            let summary = String::from_utf8(out.stdout).unwrap();
            let numbers: Vec<u64> = summary
                .trim()
                .split(", ")
                .map(|part| part.rsplit(' ').next().unwrap().parse().unwrap())
                .collect();
            imported += numbers[0];
            duplicates += numbers[1];
            assert_eq!(numbers[2], 0);
        }
        assert_eq!(imported, 45_000);
        assert_eq!(duplicates, 15_000);
        let count = site.ok(&["subscribers", "count"]);
        assert!(count.contains("total        45000"), "{count}");
    }
}

on_both_backends! {
    async fn remove_erases_personal_data_and_keeps_only_a_hash(site: Site) {
        site.import(
            b"email,name,city\nforget.me@example.org,Forget Me,Lyon\nstay@example.org,Stay,Oslo\n",
            &[],
        );
        site.ok(&["subscribers", "unsubscribe", "forget.me@example.org"]);
        let said = site.ok(&["subscribers", "remove", "Forget.Me@example.org"]);
        assert!(said.starts_with("erased"), "{said}");

        let export = site.ok(&["subscribers", "export"]);
        assert!(!export.contains("forget.me"), "{export}");
        assert!(
            !export.contains("Forget Me") && !export.contains("Lyon"),
            "{export}"
        );
        assert!(export.contains("stay@example.org"));

        // No table holds the address any more.
        let mut raw = RawDb::connect(&site.db_url()).await;
        let held = raw
            .scalar(
                "SELECT (SELECT COUNT(*) FROM subscribers WHERE email LIKE $1) + \
                        (SELECT COUNT(*) FROM events WHERE CAST(detail AS TEXT) LIKE $1)",
                &[Arg::Text("%forget%")],
            )
            .await;
        assert_eq!(held, 0);
        let hashes = raw
            .scalar("SELECT COUNT(*) FROM erased_addresses", &[])
            .await;
        assert_eq!(hashes, 1);
        // The trail keeps that an erasure happened, naming no one.
        let erase_events = raw
            .scalar(
                "SELECT COUNT(*) FROM events WHERE kind = 'erase' AND subscriber_id IS NULL",
                &[],
            )
            .await;
        assert_eq!(erase_events, 1);
    }
}

on_both_backends! {
    async fn export_writes_everything_held_including_attributes_and_consent_trail(site: Site) {
        site.import(
            b"email,name,city,plan\nann@example.org,\"Ann, Jr.\",Paris,pro\n",
            &[],
        );
        site.ok(&["subscribers", "unsubscribe", "ann@example.org"]);
        let path = site.dir.path().join("out.csv");
        site.ok(&["subscribers", "export", "--output", path.to_str().unwrap()]);
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        for column in [
            "email",
            "name",
            "status",
            "created_at",
            "confirmed_at",
            "unsubscribed_at",
            "consent_ip",
            "consent_user_agent",
            "source",
            "attributes",
            "events",
        ] {
            assert!(header.iter().any(|h| h == column), "missing {column}");
        }
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        let get = |name: &str| rows[0][header.iter().position(|h| h == name).unwrap()].to_string();
        assert_eq!(get("email"), "ann@example.org");
        assert_eq!(get("name"), "Ann, Jr.");
        assert_eq!(get("status"), "unsubscribed");
        assert_eq!(get("source"), "import");
        assert!(get("unsubscribed_at").ends_with('Z'));
        let attributes: serde_json::Value = serde_json::from_str(&get("attributes")).unwrap();
        assert_eq!(
            attributes,
            serde_json::json!({"city": "Paris", "plan": "pro"})
        );
        let events: serde_json::Value = serde_json::from_str(&get("events")).unwrap();
        let kinds: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["subscribe", "unsubscribe"]);
        assert_eq!(events[1]["source"], "cli");
        assert_eq!(events[1]["detail"]["from"], "active");
    }
}

on_both_backends! {
    async fn migrate_creates_the_schema_and_is_idempotent(site: Site) {
        let folder = match site.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let migrations = std::fs::read_dir(format!(
            "{}/migrations/{folder}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "sql")
            })
            .count();
        let expected = format!("database is up to date ({migrations} migrations applied)");
        assert_eq!(site.ok(&["migrate"]).trim(), expected);
        assert_eq!(site.ok(&["migrate"]).trim(), expected);
    }
}

/// What databases created by earlier releases recorded for each SQLite migration. sqlx
/// refuses to open a database whose recorded checksum differs from the embedded file, so an
/// edit to a released migration (rather than a new one) would lock every existing install out.
const RELEASED_SQLITE_MIGRATIONS: [(i64, &str); 4] = [
    (20261123000001, "9cd341fe234e9f0b94a2ba5f93aa68ad4ad1123cd6b430c94c0de046890ddf57904a6d11452e6fd3a7ae7b8ebda5bd40"),
    (20261124000001, "cfafe887d017d71940377d70cd5d21620a7817645fee2b5abdcf22172ab6ebf4f88926e58349b15d23a9a58024dac68a"),
    (20261124000002, "52ff80274c93bc00e8fe882be26dbec1a6a6af2adab957b9b9d37a4d812f9daeaba2a2a222aad766943aa56580f653c2"),
    (20261124000003, "a2262cd0eb786d94f6f019b3a4dacfca05023d90c0fb03fedc434bdc7cb2ae5e107e0b87bda94ac5295d3a2615be129f"),
];

/// SQLite only: what SQLite databases of earlier releases recorded.
#[test]
fn released_sqlite_migrations_are_unchanged_so_existing_databases_still_open() {
    let embedded: std::collections::HashMap<i64, String> = herald::store::sqlite::MIGRATOR
        .iter()
        .map(|m| {
            let hex: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
            (m.version, hex)
        })
        .collect();
    for (version, checksum) in RELEASED_SQLITE_MIGRATIONS {
        assert_eq!(
            embedded.get(&version).map(String::as_str),
            Some(checksum),
            "migration {version} changed; add a new migration instead"
        );
    }
}

/// SQLite only: the SQLite file's journal mode and SQLite's own schema table.
#[tokio::test]
async fn the_database_runs_with_wal_foreign_keys_and_a_strict_schema() {
    let site = Site::open(Backend::Sqlite).await.unwrap();
    site.store().await.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&site.db_url())
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    for table in [
        "subscribers",
        "issues",
        "deliveries",
        "events",
        "erased_addresses",
    ] {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        )
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(n, 1, "{table}");
    }
    // CHECK constraints keep statuses to the known values.
    let bad = sqlx::query(
        "INSERT INTO subscribers (email, status, created_at, source) VALUES ('a@b.org', 'gone', 0, 't')",
    )
    .execute(&mut conn)
    .await;
    assert!(bad.is_err());
    // Events are append-only.
    sqlx::query("INSERT INTO events (occurred_at, kind, source) VALUES (0, 'import', 't')")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(sqlx::query("DELETE FROM events")
        .execute(&mut conn)
        .await
        .is_err());
    assert!(sqlx::query("UPDATE events SET kind = 'erase'")
        .execute(&mut conn)
        .await
        .is_err());
}

on_both_backends! {
    async fn every_status_change_appends_an_event_with_its_source(site: Site) {
        let store = site.store().await;
        let jane = EmailAddress::parse("jane@example.org").unwrap();
        let outcome = store
            .add_subscriber(
                &herald::store::NewSubscriber {
                    email: jane.clone(),
                    name: None,
                    status: SubscriberStatus::Pending,
                    attributes: Default::default(),
                },
                &key().hash(&jane),
                "web",
            )
            .await
            .unwrap();
        assert!(matches!(outcome, herald::store::AddOutcome::Added { .. }));
        for (to, from) in [
            (SubscriberStatus::Active, SubscriberStatus::Pending),
            (SubscriberStatus::Bounced, SubscriberStatus::Active),
        ] {
            assert_eq!(
                store
                    .change_subscriber_status(&jane, to, "dispatcher")
                    .await
                    .unwrap(),
                StatusChange::Changed { from }
            );
        }
        assert_eq!(
            store
                .change_subscriber_status(&jane, SubscriberStatus::Bounced, "dispatcher")
                .await
                .unwrap(),
            StatusChange::Unchanged
        );
        let records: Vec<_> = store.export_subscriber_records().collect().await;
        let record = records.into_iter().next().unwrap().unwrap();
        let events: serde_json::Value = serde_json::from_str(&record.events).unwrap();
        let trail: Vec<(String, String)> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["source"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            trail,
            [
                ("subscribe".to_string(), "web".to_string()),
                ("confirm".to_string(), "dispatcher".to_string()),
                ("bounce".to_string(), "dispatcher".to_string()),
            ]
        );
        let subscriber = store
            .find_subscriber_by_email(&jane)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(subscriber.status, SubscriberStatus::Bounced);
        assert!(subscriber.confirmed_at.is_some() && subscriber.unsubscribed_at.is_some());
        store.close().await;
    }
}

on_both_backends! {
    async fn library_import_counts_duplicates_across_batches_and_reports_rejections(site: Site) {
        let store = site.store().await;
        let mut csv = String::from("email,name\n");
        for i in 0..50 {
            csv.push_str(&format!("p{}@example.org,P\n", i % 20));
        }
        csv.push_str("broken,\n");
        let mut rejected_lines = Vec::new();
        let options = ImportOptions {
            default_status: SubscriberStatus::Active,
            batch_rows: 7,
        };
        let summary = import_csv(&store, &key(), csv.as_bytes(), &options, |e| {
            if let ImportEvent::Rejected(r) = e {
                rejected_lines.push(r.line);
            }
        })
        .await
        .unwrap();
        assert_eq!(
            summary,
            ImportSummary {
                imported: 20,
                duplicates: 30,
                rejected: 1
            }
        );
        assert_eq!(
            summary.to_string(),
            "imported 20, duplicates 30, rejected 1"
        );
        assert_eq!(rejected_lines, [52]);
        let active: Vec<_> = store
            .list_subscribers(Some(SubscriberStatus::Active))
            .collect()
            .await;
        assert_eq!(active.len(), 20);
        store.close().await;
    }
}

on_both_backends! {
    async fn erasure_is_recorded_even_for_an_address_never_held(site: Site) {
        let store = site.store().await;
        let ghost = EmailAddress::parse("Ghost@example.org").unwrap();
        let hash = key().hash(&ghost);
        assert!(!store.erase_subscriber(&ghost, &hash, "cli").await.unwrap());
        let lower = EmailAddress::parse("ghost@example.org").unwrap();
        assert!(store.is_address_erased(&key().hash(&lower)).await.unwrap());
        store.close().await;
    }
}

on_both_backends! {
    async fn export_neutralises_cells_a_spreadsheet_would_run_as_formulas(site: Site) {
        site.import(
            b"email,name,note\n\
              \"=cmd|'/Ccalc'!A0@example.org\",\"@SUM(1+1)*cmd|' /C calc'!A0\",+1\n\
              plain@example.org,Jane Doe,-2\n",
            &[],
        );
        let path = site.dir.path().join("out.csv");
        site.ok(&["subscribers", "export", "--output", path.to_str().unwrap()]);
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let row = rows
            .iter()
            .find(|r| r[col("email")].contains("cmd"))
            .expect("the formula address is exported");
        assert_eq!(&row[col("email")], "'=cmd|'/Ccalc'!A0@example.org");
        assert_eq!(&row[col("name")], "'@SUM(1+1)*cmd|' /C calc'!A0");
        for cell in row.iter().chain(rows.iter().flat_map(|r| r.iter())) {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell a spreadsheet would run: {cell:?}"
            );
        }
        let plain = rows
            .iter()
            .find(|r| &r[col("email")] == "plain@example.org")
            .unwrap();
        assert_eq!(&plain[col("name")], "Jane Doe");
    }
}

on_both_backends! {
    async fn rows_of_a_crlf_file_are_reported_at_their_true_line(site: Site) {
        let (stdout, stderr) = site.import(
            b"email,name\r\ngood@example.org,Ann\r\nnot an address,Bob\r\n,Empty\r\nok@example.org,Eve\r\n",
            &[],
        );
        assert_eq!(
            stdout.trim(),
            "imported 2, duplicates 0, rejected 2",
            "{stderr}"
        );
        assert_eq!(count_lines_with(&stderr, "line 3: "), 1, "{stderr}");
        assert_eq!(count_lines_with(&stderr, "line 4: "), 1, "{stderr}");
    }
}

on_both_backends! {
    async fn names_with_direction_overrides_or_zero_width_spaces_are_refused(site: Site) {
        let (stdout, stderr) = site.import(
            "email,name\nspoof@example.org,Alice\u{202E}nimda\nzero@example.org,Ca\u{200B}rol\nfine@example.org,مهر\u{200C}آسا\n"
                .as_bytes(),
            &[],
        );
        assert_eq!(
            stdout.trim(),
            "imported 1, duplicates 0, rejected 2",
            "{stderr}"
        );
        assert!(
            stderr.contains("line 2: ") && stderr.contains("U+202E"),
            "{stderr}"
        );
        assert!(
            stderr.contains("line 3: ") && stderr.contains("U+200B"),
            "{stderr}"
        );
        let out = site.herald(&[
            "subscribers",
            "add",
            "x@example.org",
            "--name",
            "Bob\u{2066}",
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("U+2066"), "{stderr}");
    }
}
