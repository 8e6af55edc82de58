//! Nodes as real processes: node ids and heartbeats, `herald serve --role`, and several
//! nodes sharing one database.
//!
//! Every node is the binary cargo built (`herald serve --role ...`, `herald send`), over a
//! throwaway installation ([`HeraldSite`]) whose database is a SQLite file or a fresh
//! PostgreSQL database. The tests wait for what they check by polling the database, never
//! for a fixed time.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::herald_site::{HeraldSite, SendingConfig, ISSUE, SLUG};
use support::postgres::{Arg, Backend, RawDb};
use support::smtp_server::{Faults, SmtpServer};
use tokio::io::AsyncBufReadExt;

const ADMIN_TOKEN: &str = "nodes-test-admin-token-0123456789";

/// A site on a database of `backend` (a SQLite file in the site, or a new PostgreSQL
/// database), with the fixture issue in its `issues/` folder.
struct Cluster {
    site: HeraldSite,
    db_url: String,
}

/// One running `herald serve`.
struct Node {
    child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl Cluster {
    async fn new(backend: Backend, smtp_url: &str, sending: &SendingConfig) -> Cluster {
        let site = HeraldSite::new(smtp_url, sending);
        let db_url = backend.database_url(site.path()).await;
        let issues = site.path().join("issues");
        std::fs::create_dir_all(&issues).unwrap();
        std::fs::copy(ISSUE, issues.join(format!("{SLUG}.md"))).unwrap();
        Cluster { site, db_url }
    }

    /// `herald ARGS` on this cluster's database, as node `node`.
    fn command(&self, node: &str, args: &[&str]) -> tokio::process::Command {
        let mut command = self.site.command(args);
        command
            .env("HERALD__DATABASE__URL", &self.db_url)
            .env("HERALD__NODE__ID", node)
            .env("HERALD__WEB__ADMIN_TOKEN", ADMIN_TOKEN);
        command
    }

    /// Runs `herald ARGS` to the end; returns stdout, failing the test on a non-zero exit.
    async fn run(&self, args: &[&str]) -> String {
        let out = self.command("cli", args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "herald {args:?}: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Adds `n` active subscribers (`reader-00000@example.com`, ...).
    async fn add_subscribers(&self, n: usize) {
        let mut csv = String::from("email,name\n");
        for i in 0..n {
            csv.push_str(&format!("reader-{i:05}@example.com,Reader {i}\n"));
        }
        let path = self.site.path().join("subscribers.csv");
        std::fs::write(&path, csv).unwrap();
        let path = path.display().to_string();
        self.run(&["subscribers", "import", &path, "--status", "active"])
            .await;
    }

    /// Starts `herald serve --role ROLE` as node `node` on a free loopback port, and returns
    /// it once it listens.
    async fn spawn(&self, node: &str, role: &str, tweak: &[(&str, &str)]) -> Node {
        let mut command = self.command(node, &["serve", "--role", role]);
        command
            .env("HERALD__WEB__BIND", "127.0.0.1:0")
            .env("HERALD__SCHEDULE__CRON", "off")
            .env("HERALD__WEB__SIGNUP_PER_IP_PER_MINUTE", "0")
            .stdout(Stdio::null());
        for (var, value) in tweak {
            command.env(var, value);
        }
        let mut child = command.spawn().expect("start herald serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read stderr") {
                for prefix in ["herald: serving on ", "herald: health check on "] {
                    if let Some(url) = line.strip_prefix(prefix) {
                        return url.trim().trim_end_matches("/health").to_string();
                    }
                }
                if line.contains("herald: ") && line.contains("error") {
                    eprintln!("{node}: {line}");
                }
            }
            panic!("herald serve --role {role} ({node}) ended before it listened")
        })
        .await
        .expect("herald serve listens within a minute");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Node { child, base }
    }

    async fn db(&self) -> RawDb {
        RawDb::connect(&self.db_url).await
    }

    /// Waits (up to `limit`) until `sql` answers `want`.
    async fn wait_for(&self, sql: &str, args: &[Arg<'_>], want: i64, limit: Duration) {
        let mut db = self.db().await;
        let started = Instant::now();
        loop {
            let got = db.scalar(sql, args).await;
            if got == want {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{sql} is {got}, not {want}, after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Node {
    /// Asks the node to stop (SIGTERM) and waits for it to exit.
    async fn stop(mut self) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("a node stops within a minute of SIGTERM")
            .unwrap();
        assert!(exit.success(), "the node exited with {exit:?}");
    }
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// `POST /api/issues/SLUG/send` on a node: the editor's "send now".
async fn send_now(node: &Node, key: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/issues/{SLUG}/send", node.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("Idempotency-Key", key)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "send now: {status} {body}");
}

on_both_backends! {
    /// `herald send` is a node too: every row it sends names it, `herald status SLUG` says
    /// how many each node sent, and once it exits it is no longer listed as live.
    async fn a_send_records_its_node_in_every_row_and_status_names_it(backend: Backend) {
        let relay = SmtpServer::start(Faults::default());
        let cluster = Cluster::new(backend, &relay.url(), &SendingConfig::default()).await;
        cluster.add_subscribers(25).await;
        let out = cluster
            .command("sender-1", &["send", ISSUE, "--yes"])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        let mut db = cluster.db().await;
        let by_sender = db
            .scalar(
                "SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND sent_by = $1",
                &[Arg::Text("sender-1")],
            )
            .await;
        assert_eq!(by_sender, 25);
        assert_eq!(db.scalar("SELECT COUNT(*) FROM nodes", &[]).await, 0);

        let text = cluster.run(&["status", SLUG]).await;
        assert!(text.contains("sent by: sender-1 25"), "{text}");
        assert!(!text.contains("live node"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&cluster.run(&["status", SLUG, "--json"]).await).unwrap();
        assert_eq!(
            json["sent_by"],
            serde_json::json!([{ "node": "sender-1", "sent": 25 }])
        );
    }

    /// A web node answers readers and editors and sends nothing; a worker node sends and
    /// answers only `/health` over HTTP. Both keep a heartbeat row while they run, listed by
    /// `herald status`, and remove it when they stop.
    async fn a_web_node_only_serves_and_a_worker_only_sends(backend: Backend) {
        let relay = SmtpServer::start(Faults::default());
        let cluster = Cluster::new(backend, &relay.url(), &SendingConfig::default()).await;
        cluster.add_subscribers(40).await;
        let web = cluster.spawn("web-1", "web", &[]).await;
        assert_eq!(get(&format!("{}/health", web.base)).await.0, 200);
        assert_eq!(get(&format!("{}/", web.base)).await.0, 200);

        // The web node enqueues, but nothing is sent until a worker runs.
        send_now(&web, "nodes-roles-1").await;
        let worker = cluster.spawn("worker-1", "worker", &[]).await;
        let (status, body) = get(&format!("{}/health", worker.base)).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
        assert_eq!(get(&format!("{}/", worker.base)).await.0, 404);
        assert_eq!(get(&format!("{}/api/issues", worker.base)).await.0, 404);

        cluster
            .wait_for(
                "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
                &[],
                40,
                Duration::from_secs(60),
            )
            .await;
        let mut db = cluster.db().await;
        let by_worker = db
            .scalar(
                "SELECT COUNT(*) FROM deliveries WHERE sent_by = $1",
                &[Arg::Text("worker-1")],
            )
            .await;
        assert_eq!(by_worker, 40, "every copy was sent by the worker");
        assert_eq!(relay.received().len(), 40);

        let text = cluster.run(&["status"]).await;
        assert!(text.contains("2 live nodes"), "{text}");
        let line = |id: &str| text.lines().find(|l| l.starts_with(id)).map(str::to_string);
        let web_line = line("web-1").unwrap_or_else(|| panic!("{text}"));
        let worker_line = line("worker-1").unwrap_or_else(|| panic!("{text}"));
        assert!(web_line.contains(" web ") && web_line.ends_with(" 0"), "{web_line}");
        assert!(
            worker_line.contains(" worker ") && worker_line.ends_with(" 40"),
            "{worker_line}"
        );

        worker.stop().await;
        let rows = db
            .scalar("SELECT COUNT(*) FROM nodes WHERE id = $1", &[Arg::Text("worker-1")])
            .await;
        assert_eq!(rows, 0, "a node that stops cleanly removes its heartbeat row");
        web.stop().await;
        assert_eq!(db.scalar("SELECT COUNT(*) FROM nodes", &[]).await, 0);
    }
}

#[test]
fn an_unknown_role_is_refused_in_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--role", "mailer"])
        .env_remove("HERALD_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("web, worker or all"), "{stderr}");
}

#[test]
fn a_node_id_with_a_space_is_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["status"])
        .current_dir(dir.path())
        .env("HERALD__NODE__ID", "mail 1")
        .env_remove("HERALD_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HERALD__NODE__ID"), "{stderr}");
    assert!(stderr.lines().count() <= 2, "{stderr}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}
