//! Returned mail end to end, over real sockets: `herald serve` sends issues through the
//! SMTP test server, reports come back to its inbound SMTP listener addressed to the
//! envelope sender each copy carried, and the policy, the counts and the next issue follow.
//! Also `herald bounces parse` and `herald bounces import` as a user runs them. Each test
//! that keeps a database runs on SQLite and on PostgreSQL.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use herald::domain::SubscriberStatus;
use serde_json::Value;
use support::app::{add_subscribers, address, addresses, eventually, header, ISSUE, SLUG};
use support::postgres::Backend;
use support::server::{Relay, TestServer};
use support::smtp_client::SmtpClient;
use support::smtp_server::{Faults, Received};

const RETURN_PATH: &str = "bounces@news.example.org";

fn herald() -> Command {
    Command::new(env!("CARGO_BIN_EXE_herald"))
}

/// The headers of a copy as it was sent: what a report quotes of the original, with the
/// `Return-Path` the receiving server added.
fn original_headers(copy: &Received) -> String {
    format!("Return-Path: <{}>\n{}", copy.mail_from, sent_headers(copy))
}

/// The headers of a copy exactly as herald wrote them (no return path among them).
fn sent_headers(copy: &Received) -> String {
    let text = copy.text();
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    head.replace("\r\n", "\n")
}

/// A multipart/report delivery status notification for `copy`.
fn dsn(copy: &Received, action: &str, status: &str, diagnostic: &str) -> String {
    dsn_to(
        copy,
        &copy.mail_from,
        &original_headers(copy),
        action,
        status,
        diagnostic,
    )
}

fn dsn_to(
    copy: &Received,
    to: &str,
    headers: &str,
    action: &str,
    status: &str,
    diagnostic: &str,
) -> String {
    let rcpt = &copy.rcpt_to[0];
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n\
         To: <{to}>\n\
         Subject: Undelivered Mail Returned to Sender\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\
         \n\
         --b\n\
         Content-Type: text/plain\n\
         \n\
         Your message to <{rcpt}> could not be delivered.\n\
         \n\
         --b\n\
         Content-Type: message/delivery-status\n\
         \n\
         Reporting-MTA: dns; mx.example.net\n\
         \n\
         Final-Recipient: rfc822; {rcpt}\n\
         Action: {action}\n\
         Status: {status}\n\
         Diagnostic-Code: smtp; {diagnostic}\n\
         \n\
         --b\n\
         Content-Type: text/rfc822-headers\n\
         \n\
         {headers}\n\
         --b--\n"
    )
}

fn hard(copy: &Received) -> String {
    dsn(
        copy,
        "failed",
        "5.1.1",
        "550 5.1.1 <user>: Recipient address rejected: User unknown (in reply to RCPT TO command)",
    )
}

fn mailbox_full(copy: &Received) -> String {
    dsn(copy, "failed", "5.2.2", "552 5.2.2 Mailbox full")
}

/// A delay notice that names the copy only by its Message-ID: sent to the bare return path,
/// quoting the headers herald wrote.
fn delay(copy: &Received) -> String {
    dsn_to(
        copy,
        RETURN_PATH,
        &sent_headers(copy),
        "delayed",
        "4.4.1",
        "Connection timed out",
    )
}

fn complaint(copy: &Received) -> String {
    format!(
        "From: Feedback Loop <fbl@isp.example.com>\n\
         To: abuse@news.example.org\n\
         Subject: Abuse report\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\n\
         \n\
         --f\n\
         Content-Type: text/plain\n\
         \n\
         A reader marked this message as spam.\n\
         \n\
         --f\n\
         Content-Type: message/feedback-report\n\
         \n\
         Feedback-Type: abuse\n\
         User-Agent: ExampleFBL/1.0\n\
         Version: 1\n\
         Original-Mail-From: <{from}>\n\
         Original-Rcpt-To: <{rcpt}>\n\
         \n\
         --f\n\
         Content-Type: text/rfc822-headers\n\
         \n\
         {headers}\n\
         --f--\n",
        from = copy.mail_from,
        rcpt = copy.rcpt_to[0],
        headers = original_headers(copy),
    )
}

fn auto_reply(copy: &Received) -> String {
    let message_id = header(&copy.text(), "Message-ID").unwrap();
    format!(
        "From: <{rcpt}>\n\
         To: <{to}>\n\
         Subject: Out of office\n\
         Auto-Submitted: auto-replied\n\
         In-Reply-To: {message_id}\n\
         \n\
         I am away this week.\n",
        rcpt = copy.rcpt_to[0],
        to = copy.mail_from,
    )
}

/// Adds an issue file `slug.md` (the fixture issue under another name) to the server's
/// issues folder.
fn add_issue(server: &TestServer, slug: &str) {
    std::fs::copy(ISSUE, server.issues_dir().join(format!("{slug}.md"))).unwrap();
}

/// Sends `slug` through `herald serve`'s dispatcher and waits until it is sent; returns the
/// copies the relay took for it.
async fn send_issue(server: &TestServer, slug: &str) -> Vec<Received> {
    let relay = server.smtp.as_ref().unwrap();
    let before = relay.received().len();
    let issue_slug = herald::domain::IssueSlug::parse(slug).unwrap();
    server.app.send_now(&issue_slug, "test").await.unwrap();
    let store = server.app.store.clone();
    let sent = eventually(Duration::from_secs(120), || {
        let store = store.clone();
        async move {
            store
                .find_issue(slug)
                .await
                .unwrap()
                .is_some_and(|i| i.status == "sent")
        }
    })
    .await;
    assert!(sent, "{slug} was not sent in time");
    relay.received()[before..].to_vec()
}

fn copy_for<'a>(copies: &'a [Received], email: &str) -> &'a Received {
    copies
        .iter()
        .find(|c| c.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(email)))
        .unwrap_or_else(|| panic!("no copy for {email}"))
}

async fn status(server: &TestServer, email: &str) -> SubscriberStatus {
    server
        .app
        .store
        .find_subscriber_by_email(&address(email))
        .await
        .unwrap()
        .unwrap()
        .status
}

async fn issue_json(server: &TestServer, slug: &str) -> Value {
    reqwest::Client::new()
        .get(server.url(&format!("/api/issues/{slug}")))
        .bearer_auth(server.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Delivers `message` to the listener, addressed to `rcpt`; the listener must take it.
async fn report(addr: SocketAddr, rcpt: &str, message: &str) {
    let (rcpt_reply, data_reply) = SmtpClient::deliver(addr, rcpt, message).await;
    assert!(rcpt_reply.starts_with("250"), "{rcpt_reply}");
    let data_reply = data_reply.unwrap();
    assert!(data_reply.starts_with("250 2.0.0"), "{data_reply}");
}

on_both_backends! {
    async fn returned_mail_over_smtp_drives_the_policy_end_to_end(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Smtp(Faults::new()), |s| {
            s.bounces.return_path = Some(RETURN_PATH.into());
            s.bounces.smtp_bind = Some("127.0.0.1:0".into());
            s.bounces.max_message_bytes = 64 * 1024;
            s.bounces.soft_limit = 3;
        })
        .await;
        let listener = server.bounce_addr.unwrap();
        let readers = addresses("reader", 300);
        add_subscribers(&server.app.store, &readers).await;
        for slug in ["second-issue", "third-issue", "fourth-issue"] {
            add_issue(&server, slug);
        }

        // Issue 1: every copy goes out from its own return-path address.
        let first = send_issue(&server, SLUG).await;
        assert_eq!(first.len(), 300);
        let senders: std::collections::HashSet<&str> =
            first.iter().map(|c| c.mail_from.as_str()).collect();
        assert_eq!(senders.len(), 300, "one return path per copy");
        assert!(
            first
                .iter()
                .all(|c| c.mail_from.starts_with("bounces+")
                    && c.mail_from.ends_with("@news.example.org"))
        );

        let hard_reader = &readers[0];
        let soft_reader = &readers[1];
        let recovering_reader = &readers[2];
        let complainer = &readers[3];
        let away_reader = &readers[4];
        let slow_reader = &readers[5];
        let twice_reader = &readers[6];

        let c = copy_for(&first, hard_reader);
        report(listener, &c.mail_from, &hard(c)).await;
        let c = copy_for(&first, soft_reader);
        report(listener, &c.mail_from, &mailbox_full(c)).await;
        let c = copy_for(&first, recovering_reader);
        report(listener, &c.mail_from, &mailbox_full(c)).await;
        let c = copy_for(&first, complainer);
        report(listener, &c.mail_from, &complaint(c)).await;
        let c = copy_for(&first, away_reader);
        report(listener, &c.mail_from, &auto_reply(c)).await;
        // Sent to the bare return path: found by the Message-ID in the returned headers.
        let c = copy_for(&first, slow_reader);
        report(listener, RETURN_PATH, &delay(c)).await;
        // The same report twice counts once.
        let c = copy_for(&first, twice_reader);
        let twice = hard(c);
        report(listener, &c.mail_from, &twice).await;
        report(listener, &c.mail_from, &twice).await;

        assert_eq!(
            status(&server, hard_reader).await,
            SubscriberStatus::Bounced
        );
        assert_eq!(
            status(&server, twice_reader).await,
            SubscriberStatus::Bounced
        );
        assert_eq!(
            status(&server, complainer).await,
            SubscriberStatus::Complained
        );
        for email in [soft_reader, recovering_reader, away_reader, slow_reader] {
            assert_eq!(
                status(&server, email).await,
                SubscriberStatus::Active,
                "{email}"
            );
        }
        let twice_id = server
            .app
            .store
            .find_subscriber_by_email(&address(twice_reader))
            .await
            .unwrap()
            .unwrap()
            .id;
        assert_eq!(
            server
                .app
                .store
                .subscriber_bounces(twice_id, 10)
                .await
                .unwrap()
                .len(),
            1,
            "a report received twice is stored once"
        );

        let counts = issue_json(&server, SLUG).await["bounces"].clone();
        assert_eq!(
            counts,
            serde_json::json!({"hard": 2, "soft": 2, "complaints": 1, "delays": 1, "auto_replies": 1})
        );

        // What the listener refuses.
        let (other_domain, _) =
            SmtpClient::deliver(listener, "postmaster@elsewhere.example", &hard(c)).await;
        assert!(other_domain.starts_with("550 5.7.1"), "{other_domain}");
        let forged = "bounces+aaaaaaaaaaaaaaaaaaaaaa@news.example.org";
        let (forged_reply, _) = SmtpClient::deliver(listener, forged, &hard(c)).await;
        assert!(forged_reply.starts_with("550 5.1.1"), "{forged_reply}");
        let oversized = format!("{}\n{}", hard(c), "x".repeat(70 * 1024));
        let (_, too_big) = SmtpClient::deliver(listener, RETURN_PATH, &oversized).await;
        assert!(too_big.unwrap().starts_with("552 5.3.4"));

        // Issue 2 skips the bounced and the complained; a soft bounce for it again.
        let second = send_issue(&server, "second-issue").await;
        assert_eq!(second.len(), 297);
        for out in [hard_reader, twice_reader, complainer] {
            assert!(second.iter().all(|c| !c.rcpt_to.contains(out)), "{out}");
        }
        let c = copy_for(&second, soft_reader);
        report(listener, &c.mail_from, &mailbox_full(c)).await;
        assert_eq!(status(&server, soft_reader).await, SubscriberStatus::Active);

        // Issue 3: the third soft bounce in a row bounces the reader; a reader whose issue 2 was
        // delivered starts over.
        let third = send_issue(&server, "third-issue").await;
        assert_eq!(third.len(), 297);
        for email in [soft_reader, recovering_reader] {
            let c = copy_for(&third, email);
            report(listener, &c.mail_from, &mailbox_full(c)).await;
        }
        assert_eq!(
            status(&server, soft_reader).await,
            SubscriberStatus::Bounced
        );
        assert_eq!(
            status(&server, recovering_reader).await,
            SubscriberStatus::Active
        );

        // The next issue skips all three kinds of leaver.
        let fourth = send_issue(&server, "fourth-issue").await;
        assert_eq!(fourth.len(), 296);
        assert!(fourth.iter().all(|c| !c.rcpt_to.contains(soft_reader)));

        // An editor can undo a bounce, never a complaint.
        let client = reqwest::Client::new();
        let reactivate = |email: &str| {
            client
                .post(server.url(&format!("/api/subscribers/{email}/reactivate")))
                .bearer_auth(server.admin_token())
                .send()
        };
        assert_eq!(reactivate(hard_reader).await.unwrap().status(), 200);
        assert_eq!(status(&server, hard_reader).await, SubscriberStatus::Active);
        assert_eq!(reactivate(complainer).await.unwrap().status(), 409);
        assert_eq!(
            status(&server, complainer).await,
            SubscriberStatus::Complained
        );

        let history: Value = client
            .get(server.url(&format!("/api/subscribers/{soft_reader}/bounces")))
            .bearer_auth(server.admin_token())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = history["bounces"].as_array().unwrap();
        assert_eq!(rows.len(), 3, "{history}");
        assert_eq!(rows[0]["effect"], "bounced");
        assert_eq!(rows[0]["reason"], "mailbox full");
        assert!(rows
            .iter()
            .all(|r| r["kind"] == "bounce" && r["hard"] == false));

        server.stop().await.unwrap();
    }
}

#[test]
fn bounces_parse_prints_one_json_line_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces");
    let mbox = dir.path().join("two.mbox");
    let mut bytes = Vec::new();
    for name in ["vacation.eml", "arf-abuse.eml"] {
        bytes.extend_from_slice(b"From MAILER-DAEMON Fri Nov 27 09:00:00 2026\n");
        bytes.extend_from_slice(&std::fs::read(fixtures.join(name)).unwrap());
        bytes.push(b'\n');
    }
    std::fs::write(&mbox, bytes).unwrap();
    let output = herald()
        .current_dir(dir.path())
        .args(["bounces", "parse", "--json"])
        .arg(fixtures.join("postfix-two-recipients.eml"))
        .arg(&mbox)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["kind"], "bounce");
    assert_eq!(lines[0]["recipients"][0]["status"], "5.1.1");
    assert_eq!(lines[0]["recipients"][0]["hard"], true);
    assert_eq!(lines[0]["delivery"], Value::Null);
    assert_eq!(lines[1]["kind"], "auto-reply");
    assert_eq!(lines[2]["kind"], "complaint");
    assert_eq!(lines[2]["feedback_type"], "abuse");
    assert!(lines[2]["file"].as_str().unwrap().ends_with("two.mbox"));
    // Nothing was created where it ran.
    let created: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");

    // A file that is not mail: a one-line error and a non-zero exit, the others still read.
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, [0x89, b'P', b'N', b'G', 0, 1, 2]).unwrap();
    let output = herald()
        .current_dir(dir.path())
        .args(["bounces", "parse", "--json"])
        .arg(&junk)
        .arg(fixtures.join("vacation.eml"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("junk.bin") && stderr.contains("not a mail message"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 1);
}

on_both_backends! {
    async fn bounces_import_applies_once_and_names_deliveries_for_parse(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Smtp(Faults::new()), |s| {
            s.bounces.return_path = Some(RETURN_PATH.into());
        })
        .await;
        let readers = addresses("import", 3);
        add_subscribers(&server.app.store, &readers).await;
        let copies = send_issue(&server, SLUG).await;
        let config = server.dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = {:?}\n[web]\nsecret_key = \"dispatch-test-secret-0123456789\"\nadmin_token = \"test-admin-token-0123456789abcdef\"\n[bounces]\nreturn_path = {RETURN_PATH:?}\n",
                server.app.settings.database.url
            ),
        )
        .unwrap();
        let mail = server.dir.path().join("hard.eml");
        std::fs::write(&mail, hard(copy_for(&copies, &readers[0]))).unwrap();

        // parse names the delivery, and changes nothing.
        let output = herald()
            .arg("--config")
            .arg(&config)
            .args(["bounces", "parse", "--json"])
            .arg(&mail)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let line: Value = serde_json::from_slice(&output.stdout).unwrap();
        let id = server
            .app
            .store
            .find_subscriber_by_email(&address(&readers[0]))
            .await
            .unwrap()
            .unwrap()
            .id;
        assert_eq!(
            line["delivery"],
            serde_json::json!({"issue": SLUG, "subscriber": id})
        );
        assert_eq!(status(&server, &readers[0]).await, SubscriberStatus::Active);

        for round in 0..2 {
            let output = herald()
                .arg("--config")
                .arg(&config)
                .args(["bounces", "import"])
                .arg(&mail)
                .output()
                .unwrap();
            assert!(output.status.success(), "{output:?}");
            let stdout = String::from_utf8(output.stdout).unwrap();
            if round == 0 {
                assert!(
                    stdout.starts_with("imported 1 reports (bounced 1)"),
                    "{stdout}"
                );
            } else {
                assert!(
                    stdout.contains("imported 0 reports") && stdout.contains("1 already imported"),
                    "{stdout}"
                );
            }
        }
        assert_eq!(
            status(&server, &readers[0]).await,
            SubscriberStatus::Bounced
        );
        assert_eq!(issue_json(&server, SLUG).await["bounces"]["hard"], 1);

        // `herald subscribers reactivate` undoes it, with an event.
        let output = herald()
            .arg("--config")
            .arg(&config)
            .args(["subscribers", "reactivate", &readers[0]])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(status(&server, &readers[0]).await, SubscriberStatus::Active);
        server.stop().await.unwrap();
    }
}
