//! Returned-mail benchmarks (release build; never a timed test):
//!
//! - `cargo bench --bench bounces -- read DIR [ROUNDS]`: `bounces::read` over every `.eml`
//!   file in DIR on one core, ROUNDS times (default 15); prints the median reports/s.
//! - `cargo bench --bench bounces -- listener [REPORTS] [CONNECTIONS] [ROUNDS]`: a fresh
//!   SQLite database (`synchronous=FULL`) with REPORTS subscribers (default 5,000), an issue
//!   sent to them (to files), then CONNECTIONS concurrent SMTP clients (default 16) return one
//!   soft bounce per copy to `herald serve`'s inbound listener, each addressed to the copy's
//!   return path. Counts the reports stored after the run (every 250 must be durable), and
//!   prints reports/s accepted, median of ROUNDS (default 3).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::config::Settings;
use herald::domain::{
    DeliveryToken, EmailAddress, ErasureKey, IssueSlug, SubscriberStatus, TokenKey,
};
use herald::startup::App;
use herald::store::NewSubscriber;
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args.first().map(String::as_str) {
        Some("read") => {
            let dir = PathBuf::from(args.get(1).ok_or("usage: read DIR [ROUNDS]")?);
            let rounds = args.get(2).map_or(Ok(15), |r| r.parse())?;
            read(&dir, rounds)
        }
        Some("listener") => {
            let reports = args.get(1).map_or(Ok(5_000), |r| r.parse())?;
            let connections = args.get(2).map_or(Ok(16), |r| r.parse())?;
            let rounds = args.get(3).map_or(Ok(3), |r| r.parse())?;
            listener(reports, connections, rounds)
        }
        _ => {
            eprintln!("usage: bounces read DIR [ROUNDS] | bounces listener [REPORTS] [CONNECTIONS] [ROUNDS]");
            Ok(())
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn read(dir: &Path, rounds: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut mails: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "eml") {
            mails.push(std::fs::read(&path)?);
        }
    }
    if mails.is_empty() {
        return Err(format!("no .eml files in {}", dir.display()).into());
    }
    let bytes: usize = mails.iter().map(Vec::len).sum();
    // Warm up: compile the rules' regular expressions.
    for mail in &mails {
        black_box(herald::bounces::read(mail));
    }
    let mut rates = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let mut n = 0usize;
        while started.elapsed() < Duration::from_millis(500) {
            for mail in &mails {
                black_box(herald::bounces::read(black_box(mail)));
                n += 1;
            }
        }
        rates.push(n as f64 / started.elapsed().as_secs_f64());
    }
    println!(
        "read: {} files ({} KB), median {:.0} reports/s on one core (min {:.0}, max {:.0}, {rounds} rounds)",
        mails.len(),
        bytes / 1024,
        median(rates.clone()),
        rates.iter().copied().fold(f64::INFINITY, f64::min),
        rates.iter().copied().fold(0.0, f64::max),
    );
    Ok(())
}

const SECRET: &str = "bench-secret-key-0123456789abcdef";
const RETURN_PATH_DOMAIN: &str = "news.example.org";

fn listener(
    reports: usize,
    connections: usize,
    rounds: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut rates = Vec::new();
        for round in 0..rounds {
            let rate = listener_round(reports, connections).await?;
            println!("  round {}: {rate:.0} reports/s", round + 1);
            rates.push(rate);
        }
        println!(
            "listener: {reports} reports over {connections} connections, stored durably (SQLite, synchronous=FULL): median {:.0} reports/s ({rounds} rounds)",
            median(rates)
        );
        Ok(())
    })
}

async fn listener_round(
    reports: usize,
    connections: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut s = Settings::default();
    s.database.url = format!("sqlite://{}", dir.path().join("herald.db").display());
    s.smtp.url = format!("file://{}", dir.path().join("outbox").display());
    s.web.secret_key = Some(SECRET.to_string().into());
    s.web.admin_token = Some("bench-admin-token-0123456789abcdef".to_string().into());
    s.newsletter.templates_dir = "templates".into();
    s.newsletter.issues_dir = "tests/fixtures/issues".into();
    s.schedule.cron = "off".into();
    s.bounces.return_path = Some(format!("bounces@{RETURN_PATH_DOMAIN}"));
    s.bounces.max_connections = (connections as u32).max(1) * 2;
    let app = App::build(s).await?;

    // Subscribers and an issue sent to them: one delivery (and return-path token) each.
    let erasure = ErasureKey::new(&SecretString::from("bench-erasure-0123456789".to_string()));
    let rows: Vec<NewSubscriber> = (0..reports)
        .map(|i| NewSubscriber {
            email: EmailAddress::parse(&format!("reader{i}@example.com")).unwrap(),
            name: None,
            status: SubscriberStatus::Active,
            attributes: Default::default(),
        })
        .collect();
    for chunk in rows.chunks(1000) {
        app.store
            .import_subscriber_batch(chunk, &erasure, "bench")
            .await?;
    }
    let slug = IssueSlug::parse("2026-11-27-welcome-to-herald")?;
    let prepared = app.prepare_slug(&slug).await?;
    let (enqueued, job) = app.enqueue(&prepared, "bench").await?;
    let (progress, _) = tokio::sync::watch::channel(herald::dispatch::Progress::default());
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    app.dispatcher().run(job, false, progress, stop).await?;
    let key = TokenKey::new(&SecretString::from(SECRET.to_string()));
    let mut targets = Vec::with_capacity(reports);
    for i in 0..reports {
        let email = format!("reader{i}@example.com");
        let sub = app
            .store
            .find_subscriber_by_email(&EmailAddress::parse(&email)?)
            .await?
            .ok_or("no subscriber")?;
        let token = key.sign_delivery(DeliveryToken {
            issue_id: enqueued.issue_id,
            subscriber_id: sub.id,
        });
        targets.push((format!("bounces+{token}@{RETURN_PATH_DOMAIN}"), email));
    }

    // herald serve with the listener on a port of its own.
    let app = Arc::new(app);
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let inbound = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = inbound.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(herald::server::run_with(
        app.clone(),
        web,
        Some(inbound),
        async {
            let _ = stop_rx.await;
        },
    ));

    let targets = Arc::new(targets);
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..connections {
        let targets = targets.clone();
        clients.push(tokio::spawn(async move {
            let mut session = Client::connect(addr).await;
            let mut accepted = 0usize;
            for (rcpt, email) in targets.iter().skip(c).step_by(connections) {
                if session.send(rcpt, &dsn(rcpt, email)).await {
                    accepted += 1;
                }
            }
            session.quit().await;
            accepted
        }));
    }
    let mut accepted = 0;
    for client in clients {
        accepted += client.await?;
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(());
    server.await??;
    let stored = app.store.recent_bounces(500).await?.len();
    let counts = app.store.bounce_counts(enqueued.issue_id).await?;
    if accepted != reports || counts.soft as usize != reports {
        return Err(format!(
            "{accepted} of {reports} accepted, {} stored as soft bounces (recent {stored})",
            counts.soft
        )
        .into());
    }
    Ok(accepted as f64 / elapsed.as_secs_f64())
}

fn dsn(rcpt: &str, email: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\n\
         To: <{rcpt}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\
         \r\n\
         --b\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         <{email}>: host mx.example.com said: 552 5.2.2 Mailbox full\r\n\
         \r\n\
         --b\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.net\r\n\
         \r\n\
         Final-Recipient: rfc822; {email}\r\n\
         Action: failed\r\n\
         Status: 5.2.2\r\n\
         Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n\
         \r\n\
         --b--\r\n"
    )
}

/// One pipelined SMTP session: each message is one write of its commands and data.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut client = Client {
            stream: BufReader::new(stream),
        };
        client.reply().await;
        client
            .stream
            .get_mut()
            .write_all(b"EHLO bench\r\n")
            .await
            .unwrap();
        client.reply().await;
        client
    }

    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await.unwrap() == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// MAIL, RCPT and DATA pipelined, then the message; true when the final reply is 250.
    async fn send(&mut self, rcpt: &str, message: &str) -> bool {
        let commands = format!("MAIL FROM:<>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n");
        self.stream
            .get_mut()
            .write_all(commands.as_bytes())
            .await
            .unwrap();
        let (mail, to, data) = (self.reply().await, self.reply().await, self.reply().await);
        if !(mail.starts_with("250") && to.starts_with("250") && data.starts_with("354")) {
            return false;
        }
        let mut body = message.to_string();
        body.push_str(".\r\n");
        self.stream
            .get_mut()
            .write_all(body.as_bytes())
            .await
            .unwrap();
        self.reply().await.starts_with("250")
    }

    async fn quit(&mut self) {
        let _ = self.stream.get_mut().write_all(b"QUIT\r\n").await;
        let _ = self.reply().await;
    }
}
