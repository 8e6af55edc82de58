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
use support::smtp_sink::SmtpSink;
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
        // The site's copy of the issue: the one its issues folder holds.
        let issue = format!("issues/{SLUG}.md");
        let out = cluster
            .command("sender-1", &["send", &issue, "--yes"])
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

/// The PostgreSQL server processes listening for wake-ups on the cluster's database.
async fn listeners(db: &mut RawDb) -> i64 {
    db.scalar(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        &[],
    )
    .await
}

/// Waits until `n` processes listen for wake-ups on the cluster's database.
async fn wait_for_listeners(cluster: &Cluster, n: i64) {
    cluster
        .wait_for(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            &[],
            n,
            Duration::from_secs(30),
        )
        .await;
}

/// Far less than the dispatcher's and the notice worker's idle poll (a minute): work done
/// within this was woken, not polled for.
const WOKEN_WITHIN: Duration = Duration::from_secs(15);

/// An editor's "send now" on a web node wakes an idle worker on another node at once, and
/// a reader's sign-up on a web node is confirmed by a worker at once: neither waits for a
/// poll. The wake-ups still arrive after the worker's listening connection was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_queued_on_a_web_node_wakes_an_idle_worker_at_once_even_after_its_connection_is_cut() {
    let Some(backend) = Backend::open(Backend::Postgres).await else {
        return;
    };
    let relay = SmtpServer::start(Faults::default());
    let cluster = Cluster::new(backend, &relay.url(), &SendingConfig::default()).await;
    cluster.add_subscribers(30).await;
    let web = cluster.spawn("web-1", "web", &[]).await;
    let worker = cluster.spawn("worker-1", "worker", &[]).await;
    wait_for_listeners(&cluster, 1).await;
    // Let the worker's first passes find nothing, so only a wake-up brings it back soon.
    tokio::time::sleep(Duration::from_millis(500)).await;

    send_now(&web, "nodes-wake-1").await;
    cluster
        .wait_for(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
            &[],
            30,
            WOKEN_WITHIN,
        )
        .await;

    // Cut the worker's listening connection; it listens again on a new one. The cut
    // backend can still be listed for a moment while it exits, so wait for another pid.
    let mut db = cluster.db().await;
    let cut_pid = db
        .scalar(
            "SELECT pid::bigint FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            &[],
        )
        .await;
    let cut = db
        .scalar(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%') AS t",
            &[],
        )
        .await;
    assert_eq!(cut, 1);
    let started = Instant::now();
    loop {
        let listening = db
            .integers(
                "SELECT pid::bigint FROM pg_stat_activity WHERE datname = current_database() \
                 AND query ILIKE 'LISTEN%'",
                &[],
            )
            .await;
        if listening.len() == 1 && listening[0] != cut_pid {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no listener came back (listening: {listening:?}, cut: {cut_pid})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listeners(&mut db).await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let body = "email=new-reader%40example.org&name=New";
    let response = reqwest::Client::new()
        .post(format!("{}/subscribe", web.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    cluster
        .wait_for(
            "SELECT COUNT(*) FROM notices WHERE status = 'sent'",
            &[],
            1,
            WOKEN_WITHIN,
        )
        .await;
    let confirmations = relay
        .received()
        .iter()
        .filter(|m| m.rcpt_to == ["new-reader@example.org"])
        .count();
    assert_eq!(confirmations, 1);
    worker.stop().await;
    web.stop().await;
}

/// `herald send` on one node wakes the idle workers on the others at once, so they take
/// their share of the send instead of finding the rows at their next poll (a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_send_wakes_idle_workers_to_share_its_send() {
    let Some(backend) = Backend::open(Backend::Postgres).await else {
        return;
    };
    const N: i64 = 600;
    let relay = SmtpServer::start(Faults::default());
    let sending = SendingConfig {
        batch_size: 10,
        concurrency: 2,
        pool_size: 2,
        ..SendingConfig::default()
    };
    let cluster = Cluster::new(backend, &relay.url(), &sending).await;
    cluster.add_subscribers(N as usize).await;
    let worker = cluster.spawn("worker-1", "worker", &[]).await;
    wait_for_listeners(&cluster, 1).await;
    // Let the worker's first passes find nothing, so only a wake-up brings it back soon.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The site's copy of the issue: the one its issues folder holds.
    cluster
        .run(&["send", &format!("issues/{SLUG}.md"), "--yes"])
        .await;
    cluster
        .wait_for(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
            &[],
            N,
            WOKEN_WITHIN,
        )
        .await;
    let by_worker = sent_by(&cluster, "worker-1").await;
    let by_sender = sent_by(&cluster, "cli").await;
    assert_eq!(by_worker + by_sender, N);
    assert!(
        by_worker > 0,
        "the worker sent none of {N}: it was not woken"
    );
    let mut copies = std::collections::HashMap::new();
    for mail in relay.received() {
        *copies.entry(mail.rcpt_to.clone()).or_insert(0) += 1;
    }
    assert_eq!(copies.len() as i64, N);
    assert!(
        copies.values().all(|&n| n == 1),
        "a reader got the issue twice"
    );
    worker.stop().await;
}

/// How many copies each node's row says it sent.
async fn sent_by(cluster: &Cluster, node: &str) -> i64 {
    cluster
        .db()
        .await
        .scalar(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND sent_by = $1",
            &[Arg::Text(node)],
        )
        .await
}

const WORKERS: [&str; 3] = ["worker-1", "worker-2", "worker-3"];

/// Three worker nodes, idle and listening, and a web node to press "send now" on.
async fn three_workers(cluster: &Cluster, tweak: &[(&str, &str)]) -> (Node, Vec<Node>) {
    let web = cluster.spawn("web-1", "web", &[]).await;
    let mut workers = Vec::new();
    for id in WORKERS {
        workers.push(cluster.spawn(id, "worker", tweak).await);
    }
    wait_for_listeners(cluster, 3).await;
    (web, workers)
}

/// Three `herald serve --role worker` processes on one PostgreSQL send one issue to 20,000
/// subscribers through smtp-sink: every subscriber gets it exactly once, and every node
/// sends at least 15 % of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_send_20000_copies_each_exactly_once_each_node_a_share() {
    const N: usize = 20_000;
    let Some(backend) = Backend::open(Backend::Postgres).await else {
        return;
    };
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    let sending = SendingConfig {
        batch_size: 100,
        ..SendingConfig::default()
    };
    let cluster = Cluster::new(backend, &sink.url(), &sending).await;
    cluster.add_subscribers(N).await;
    let (web, workers) = three_workers(&cluster, &[]).await;

    let started = Instant::now();
    send_now(&web, "nodes-20000").await;
    cluster
        .wait_for(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
            &[],
            N as i64,
            Duration::from_secs(600),
        )
        .await;
    let took = started.elapsed();
    assert!(sink.wait_for(N, Duration::from_secs(30)).await);
    // Every row is `sent`, so everyone got it at least once; N messages in all means once.
    assert_eq!(sink.count(), N, "copies received");
    let shares: Vec<i64> = shares_of(&cluster).await;
    eprintln!("{N} copies by three workers in {took:?}: {shares:?}");
    assert_eq!(shares.iter().sum::<i64>(), N as i64);
    for (id, share) in WORKERS.iter().zip(&shares) {
        assert!(
            *share * 100 >= 15 * N as i64,
            "{id} sent {share} of {N}: {shares:?}"
        );
    }
    for worker in workers {
        worker.stop().await;
    }
    web.stop().await;
}

async fn shares_of(cluster: &Cluster) -> Vec<i64> {
    let mut shares = Vec::new();
    for id in WORKERS {
        shares.push(sent_by(cluster, id).await);
    }
    shares
}

/// A worker killed with SIGKILL mid-send loses nothing: the others take back its rows once
/// their leases expire and send them. The only copies sent twice are ones the killed node
/// had handed to the relay but not yet recorded: at most its messages in flight, the
/// outcomes queued for its writer (twice that) and one commit group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_send_loses_nothing_and_duplicates_stay_within_its_in_flight_bound() {
    const N: usize = 6_000;
    let Some(backend) = Backend::open(Backend::Postgres).await else {
        return;
    };
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    let sending = SendingConfig {
        batch_size: 100,
        lease_seconds: 3,
        ..SendingConfig::default()
    };
    let cluster = Cluster::new(backend, &sink.url(), &sending).await;
    cluster.add_subscribers(N).await;
    let (web, mut workers) = three_workers(&cluster, &[]).await;

    send_now(&web, "nodes-kill").await;
    // Mid-send: the victim has sent some and holds rows under its lease.
    let started = Instant::now();
    let mut db = cluster.db().await;
    loop {
        let sent = sent_by(&cluster, "worker-2").await;
        let held = db
            .scalar(
                "SELECT COUNT(*) FROM deliveries WHERE status = 'sending'",
                &[],
            )
            .await;
        if sent >= 200 && held > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "worker-2 never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut victim = workers.remove(1);
    victim.child.kill().await.unwrap();
    let sent_before = db
        .scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'", &[])
        .await;
    assert!(sent_before < N as i64, "the send was over before the kill");

    cluster
        .wait_for(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
            &[],
            N as i64,
            Duration::from_secs(300),
        )
        .await;
    assert!(sink.wait_for(N, Duration::from_secs(30)).await);
    let received = sink.count();
    let duplicates = received - N;
    let concurrency = SendingConfig::default().concurrency as usize;
    let bound = concurrency + 2 * concurrency + herald::dispatch::engine::GROUP_MAX;
    eprintln!("killed worker-2 at {sent_before} sent; {duplicates} duplicates (bound {bound})");
    assert!(duplicates <= bound, "{duplicates} duplicates > {bound}");
    let stale = db
        .scalar("SELECT COUNT(*) FROM nodes WHERE id = 'worker-2'", &[])
        .await;
    assert_eq!(stale, 1, "a killed node leaves its heartbeat row to age");
    for worker in workers {
        worker.stop().await;
    }
    web.stop().await;
}

/// Sign-ups spread over two web nodes are all stored, and each confirmation is sent once,
/// by the one worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_across_two_web_nodes_are_all_stored_and_each_confirmed_once() {
    const READERS: usize = 60;
    let Some(backend) = Backend::open(Backend::Postgres).await else {
        return;
    };
    let relay = SmtpServer::start(Faults::default());
    let cluster = Cluster::new(backend, &relay.url(), &SendingConfig::default()).await;
    let webs = [
        cluster.spawn("web-1", "web", &[]).await,
        cluster.spawn("web-2", "web", &[]).await,
    ];
    let worker = cluster.spawn("worker-1", "worker", &[]).await;
    wait_for_listeners(&cluster, 1).await;

    let client = reqwest::Client::new();
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..READERS {
        // Every reader signs up on both nodes at once: one pending subscriber, one mail.
        for web in &webs {
            let (client, base) = (client.clone(), web.base.clone());
            posts.spawn(async move {
                let response = client
                    .post(format!("{base}/subscribe"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("email=reader-{i:03}%40example.org&name=Reader"))
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16()
            });
        }
    }
    while let Some(status) = posts.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    cluster
        .wait_for(
            "SELECT COUNT(*) FROM subscribers WHERE status = 'pending'",
            &[],
            READERS as i64,
            Duration::from_secs(30),
        )
        .await;
    cluster
        .wait_for(
            "SELECT COUNT(*) FROM notices WHERE status = 'sent'",
            &[],
            READERS as i64,
            Duration::from_secs(60),
        )
        .await;
    let mail = relay.received();
    let mut recipients: Vec<String> = mail.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    recipients.sort();
    let before = recipients.len();
    recipients.dedup();
    assert_eq!(recipients.len(), READERS);
    assert_eq!(before, READERS, "a reader got more than one confirmation");
    worker.stop().await;
    for web in webs {
        web.stop().await;
    }
}

/// Three worker nodes, each running the scheduler on a tick every second, over issues
/// dated a few seconds apart: every tick is dealt with by one node, and each issue is
/// enqueued exactly once, at its tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_enqueue_each_ticks_issue_exactly_once() {
    const ISSUES: i64 = 4;
    const APART: i64 = 3;
    let Some(backend) = Backend::open(Backend::Postgres).await else {
        return;
    };
    let relay = SmtpServer::start(Faults::default());
    let cluster = Cluster::new(backend, &relay.url(), &SendingConfig::default()).await;
    cluster.add_subscribers(5).await;
    let issues = cluster.site.path().join("issues");
    std::fs::remove_file(issues.join(format!("{SLUG}.md"))).unwrap();
    // Far enough ahead for the three nodes to start.
    let first = chrono::Utc::now().timestamp() + 10;
    for k in 0..ISSUES {
        let date = chrono::DateTime::from_timestamp(first + k * APART, 0).unwrap();
        std::fs::write(
            issues.join(format!("tick-{k}.md")),
            format!(
                "---\ntitle: \"Tick {k}\"\ndate: {}\n---\n\nIssue {k}.\n",
                date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        )
        .unwrap();
    }
    let every_second = [("HERALD__SCHEDULE__CRON", "* * * * * *")];
    let mut workers = Vec::new();
    for id in WORKERS {
        workers.push(cluster.spawn(id, "worker", &every_second).await);
    }
    cluster
        .wait_for(
            "SELECT COUNT(*) FROM issues",
            &[],
            ISSUES,
            Duration::from_secs(60),
        )
        .await;
    // A few more ticks after the last issue, all of them with nothing to send.
    let last = first + (ISSUES - 1) * APART;
    cluster
        .wait_for(
            "SELECT COUNT(*) FROM schedule_runs WHERE tick_at >= $1",
            &[Arg::Int(last + 3)],
            1,
            Duration::from_secs(30),
        )
        .await;
    let mut db = cluster.db().await;
    for k in 0..ISSUES {
        let slug = format!("tick-{k}");
        let requests = db
            .scalar(
                "SELECT COUNT(*) FROM events e JOIN issues i ON i.id = e.issue_id \
                 WHERE e.kind = 'send_request' AND i.slug = $1",
                &[Arg::Text(&slug)],
            )
            .await;
        assert_eq!(requests, 1, "{slug} was enqueued {requests} times");
        let ticks = db
            .scalar(
                "SELECT COUNT(*) FROM schedule_runs WHERE outcome = 'enqueued' AND slug = $1",
                &[Arg::Text(&slug)],
            )
            .await;
        assert_eq!(ticks, 1, "{slug} was enqueued by {ticks} ticks");
    }
    let ticks = db
        .scalar(
            "SELECT COUNT(*) FROM schedule_runs WHERE tick_at BETWEEN $1 AND $2",
            &[Arg::Int(first), Arg::Int(last + 3)],
        )
        .await;
    // A tick every node found late is passed over; most are dealt with.
    assert!(
        ticks >= (last + 3 - first) / 2,
        "only {ticks} ticks were dealt with"
    );
    for worker in workers {
        worker.stop().await;
    }
}
