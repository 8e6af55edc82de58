//! herald's SMTP data path against the fault-injecting server, on each path a relay can
//! offer: PIPELINING, PIPELINING with CHUNKING, CHUNKING alone, and neither (lettre's own
//! one-command-at-a-time send). Every row must end with its own outcome whatever shares its
//! connection, and every copy must arrive byte for byte as composed.

mod support;

use std::path::Path;

use herald::dispatch::RunEnd;
use herald::domain::{EmailAddress, SubscriberName, SubscriberStatus};
use herald::mail::{MailRecipient, SendOutcome};
use herald::startup::App;
use support::app::{addresses, db_url, header, settings, Harness};
use support::smtp_server::{Fault, Faults, Offer, SmtpServer, Stage};

/// Accepted, refused, throttled and dropped recipients sent together through `offer`'s path:
/// each row ends as its own replies say.
async fn every_row_gets_its_own_outcome(offer: Offer) {
    let fine = addresses("fine", 8);
    let mut emails = fine.clone();
    let (unknown, busy, dropped, late) = (
        ["unknown-1@example.com", "unknown-2@example.com"],
        "busy-1@example.com",
        "drop-1@example.com",
        "late-1@example.com",
    );
    emails.extend(unknown.iter().map(|e| e.to_string()));
    emails.extend([busy, dropped, late].map(String::from));
    let faults = Faults::new()
        .with(
            Fault::reply(Stage::Rcpt, 550, "5.1.1 User unknown")
                .for_addresses_containing("unknown-"),
        )
        .with(
            Fault::reply(Stage::Data, 451, "4.3.0 Busy, try again")
                .for_addresses_containing("busy-")
                .times(1),
        )
        .with(
            Fault::drop(Stage::Rcpt)
                .for_addresses_containing("drop-")
                .times(1),
        )
        .with(
            Fault::reply(Stage::DataEnd, 451, "4.3.0 Queue full")
                .for_addresses_containing("late-")
                .times(1),
        );
    let h = Harness::start_offering(offer, faults, &emails, |_| {}).await;

    assert_eq!(h.run(true).await, RunEnd::Finished, "{}", h.transcript());

    for email in &fine {
        let row = h.row(email).await;
        assert_eq!(row.status, "sent", "{email}: {row:?}\n{}", h.transcript());
        assert_eq!(row.attempts, 0, "{email}: {row:?}");
        assert!(
            row.last_reply
                .as_deref()
                .is_some_and(|r| r.starts_with("250")),
            "{email}: {row:?}"
        );
        assert_eq!(h.copies_for(email).len(), 1, "{email}");
        assert_eq!(h.subscriber_status(email).await, SubscriberStatus::Active);
    }
    for email in unknown {
        let row = h.row(email).await;
        assert_eq!(row.status, "failed", "{email}: {row:?}\n{}", h.transcript());
        assert!(row.permanent, "{email}");
        let reply = row.last_reply.unwrap_or_default();
        assert!(reply.contains("5.1.1"), "{email}: {reply}");
        assert!(h.copies_for(email).is_empty(), "{email}");
        assert_eq!(h.subscriber_status(email).await, SubscriberStatus::Bounced);
    }
    for email in [busy, dropped, late] {
        let row = h.row(email).await;
        assert_eq!(row.status, "sent", "{email}: {row:?}\n{}", h.transcript());
        assert_eq!(
            row.attempts, 1,
            "{email}: one failed try, then sent: {row:?}"
        );
        assert_eq!(h.copies_for(email).len(), 1, "{email}");
        let text = h.copies_for(email)[0].text();
        assert_eq!(header(&text, "Message-ID"), row.message_id, "{email}");
    }
    assert_eq!(h.server.received_count(), fine.len() + 3);

    if offer.pipelining {
        assert!(
            h.server.pipelined_commands() > 0,
            "PIPELINING was offered and not used\n{}",
            h.transcript()
        );
    } else {
        assert_eq!(
            h.server.pipelined_commands(),
            0,
            "a relay without PIPELINING got pipelined commands\n{}",
            h.transcript()
        );
    }
    if offer.chunking {
        assert!(
            h.server.bdat_commands() > 0,
            "CHUNKING was offered and not used"
        );
        assert!(
            !h.transcript().contains("C: DATA"),
            "DATA was used beside CHUNKING\n{}",
            h.transcript()
        );
    } else {
        assert_eq!(h.server.bdat_commands(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_groups_give_every_row_its_own_outcome() {
    every_row_gets_its_own_outcome(Offer::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_bdat_groups_give_every_row_its_own_outcome() {
    every_row_gets_its_own_outcome(Offer::everything()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunking_without_pipelining_sends_one_command_at_a_time() {
    every_row_gets_its_own_outcome(Offer::chunking_only()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_without_pipelining_gets_the_plain_path() {
    every_row_gets_its_own_outcome(Offer::plain()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_rcpt_leaves_the_connection_usable_for_the_next_message() {
    let mut emails = vec!["unknown-1@example.com".to_string()];
    emails.extend(addresses("fine", 3));
    let faults = Faults::new().with(
        Fault::reply(Stage::Rcpt, 550, "5.1.1 User unknown").for_addresses_containing("unknown-"),
    );
    let h = Harness::start(faults, &emails, |s| {
        s.sending.concurrency = 1;
        s.smtp.pool_size = 1;
    })
    .await;

    assert_eq!(h.run(true).await, RunEnd::Finished);

    assert_eq!(h.server.received_count(), 3);
    assert_eq!(
        h.server.connections(),
        1,
        "the refusal was followed by RSET, and the connection carried on\n{}",
        h.transcript()
    );
    assert!(h.transcript().contains("C: RSET"), "{}", h.transcript());
}

/// An issue whose text and HTML have lines that start with "." (a code block, a paragraph,
/// and the CSS mrml writes), sent to a reader whose name starts with "." too.
const DOTS: &str = r#"---
title: "Dots at the start of lines"
date: 2026-11-27
---

Lines that start with a dot:

```
.hidden
..double
.
```

.NET and .io are names that may start a line.
"#;

async fn bodies_with_leading_dots_arrive_byte_exact(offer: Offer) {
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start_offering(offer, Faults::new());
    // The layout with the reader's name in it, so a personalised value starts with a dot.
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    let layout = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/newsletter.mjml"
    ))
    .unwrap();
    let title = "{{ title }}</h1></mj-text>";
    assert!(
        layout.contains(title),
        "the layout changed; update this test"
    );
    let layout = layout.replace(
        title,
        &format!("{title}\n<mj-text>{{{{ recipient_name }}}}</mj-text>"),
    );
    std::fs::write(templates.join("newsletter.mjml"), layout).unwrap();
    let mut s = settings(&db_url(dir.path()), &server.url());
    s.newsletter.templates_dir = templates;
    let app = App::build(s).await.unwrap();
    let issue = dir.path().join("dots.md");
    std::fs::write(&issue, DOTS).unwrap();
    let prepared = app.prepare(Path::new(&issue)).await.unwrap();
    let to = MailRecipient {
        subscriber_id: 7,
        email: EmailAddress::parse("dot.reader@example.com").unwrap(),
        name: SubscriberName::parse(".Dot Reader").unwrap(),
    };
    let mail = app.composer.compose(&prepared.rendered, &to).unwrap();
    let composed = mail.formatted();
    let raw = String::from_utf8_lossy(&composed);
    assert!(
        raw.contains("\r\n=2ENET and .io"),
        "a fixed piece has a line that starts with a dot"
    );
    assert!(
        raw.contains("\r\n=2EDot Reader"),
        "a personalised value starts a line with a dot"
    );

    let outcome = app.transport.send(&mail).await;
    assert!(
        matches!(outcome, SendOutcome::Accepted { .. }),
        "{outcome:?}\n{}",
        server.transcript().join("\n")
    );

    let received = server.received();
    assert_eq!(received.len(), 1);
    // lettre, on the plain path, ends the data with "\r\n.\r\n" even after the message's
    // own last CRLF, so the relay sees one more empty line there.
    let expected = if offer == Offer::plain() {
        [composed.as_slice(), b"\r\n"].concat()
    } else {
        composed.clone()
    };
    assert!(
        received[0].data == expected,
        "the relay got other bytes than were composed:\n--- composed\n{}\n--- received\n{}",
        String::from_utf8_lossy(&composed),
        received[0].text()
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&received[0].data)
        .unwrap();
    let text = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    for line in [
        "    .hidden\n",
        "    ..double\n",
        "    .\n",
        "\n.NET and .io are names",
    ] {
        assert!(text.contains(line), "{line:?} is missing from:\n{text}");
    }
    assert!(
        parsed.body_html(0).unwrap().contains(".Dot Reader"),
        "the personalised name arrived with its dot"
    );
    app.transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leading_dots_arrive_byte_exact_over_pipelined_data() {
    bodies_with_leading_dots_arrive_byte_exact(Offer::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leading_dots_arrive_byte_exact_over_pipelined_bdat() {
    bodies_with_leading_dots_arrive_byte_exact(Offer::everything()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leading_dots_arrive_byte_exact_over_bdat_without_pipelining() {
    bodies_with_leading_dots_arrive_byte_exact(Offer::chunking_only()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leading_dots_arrive_intact_over_the_plain_path() {
    bodies_with_leading_dots_arrive_byte_exact(Offer::plain()).await;
}
