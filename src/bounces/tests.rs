//! [`read`] over the fixtures in `tests/fixtures/bounces/`: one per shape a bounce parser
//! meets in the wild (written for herald; they reproduce the shapes, not anyone's mail).

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/bounces/", $name)).as_slice()
    };
}

/// `(address, status, reply, hard, reason)` of each recipient.
fn summary(report: &Report) -> Vec<(String, String, String, bool, &'static str)> {
    report
        .recipients
        .iter()
        .map(|r| {
            (
                r.address.clone().unwrap_or_default(),
                r.status.map(|s| s.to_string()).unwrap_or_default(),
                r.reply.map(|c| c.to_string()).unwrap_or_default(),
                r.hard,
                r.reason.as_str(),
            )
        })
        .collect()
}

fn row(
    address: &str,
    status: &str,
    reply: &str,
    hard: bool,
    reason: &'static str,
) -> (String, String, String, bool, &'static str) {
    (address.into(), status.into(), reply.into(), hard, reason)
}

#[test]
fn a_multipart_report_gives_each_recipient_its_own_verdict() {
    let report = read(fixture!("postfix-two-recipients.eml"));
    assert_eq!(report.kind, Kind::Bounce);
    assert_eq!(
        summary(&report),
        [
            row("ada@example.net", "5.1.1", "550", true, "unknown user"),
            row("grace@example.net", "5.2.2", "552", false, "mailbox full"),
        ]
    );
    assert!(report.recipients[0]
        .diagnostic
        .contains("User unknown in virtual mailbox table"));
    // The delivery is found three ways: the token of the envelope, our Message-ID in the
    // returned original, and its Feedback-ID.
    assert_eq!(report.references.tokens, ["aaaaaaaaaaaaaaaaaaaa"]);
    assert_eq!(
        report.references.message_ids,
        ["<0f3c1b2a9d8e7f6a5b4c3d2e1f0a9b8c.2026-11-27-welcome@news.example.org>"]
    );
    assert_eq!(
        report.references.feedback_ids,
        ["2026-11-27-welcome:herald-weekly.news.example.org:herald"]
    );
}

#[test]
fn a_plain_text_bounce_is_read_from_its_prose() {
    let report = read(fixture!("exim-rcpt-unknown.eml"));
    assert_eq!(report.kind, Kind::Bounce);
    assert_eq!(
        summary(&report),
        [row("lin@example.com", "5.1.1", "550", true, "unknown user")]
    );
    assert_eq!(
        report.references.message_ids,
        ["<11111111111111111111111111111111.2026-11-27-welcome@news.example.org>"]
    );

    let report = read(fixture!("gmail-spam-block.eml"));
    assert_eq!(
        summary(&report),
        [row("kai@example.org", "5.7.1", "550", false, "blocked")],
        "a spam block is the sender's problem, never the reader's"
    );
}

#[test]
fn several_recipients_in_prose_each_get_their_own_lines() {
    let report = read(fixture!("qmail-two-recipients.eml"));
    assert_eq!(
        summary(&report),
        [
            row("noor@example.com", "", "550", true, "unknown user"),
            row("sam@example.com", "", "552", false, "mailbox full"),
        ]
    );
}

#[test]
fn a_delay_warning_is_a_delay_and_never_hard() {
    let report = read(fixture!("exim-delay.eml"));
    assert_eq!(report.kind, Kind::Delay);
    assert_eq!(report.recipients.len(), 1);
    assert_eq!(
        report.recipients[0].address.as_deref(),
        Some("mo@example.com")
    );
    assert_eq!(
        report.recipients[0]
            .status
            .map(|s| s.to_string())
            .as_deref(),
        Some("4.3.0")
    );
    assert!(!report.recipients[0].hard);
}

#[test]
fn a_feedback_report_is_a_complaint_with_its_type() {
    let report = read(fixture!("arf-abuse.eml"));
    assert_eq!(report.kind, Kind::Complaint);
    assert_eq!(report.feedback_type.as_deref(), Some("abuse"));
    assert_eq!(
        summary(&report),
        [row("pat@example.com", "", "", false, "complaint")]
    );
    assert_eq!(report.references.tokens, ["ffffffffffffffffffff"]);
}

#[test]
fn an_automatic_reply_is_recorded_as_one() {
    let report = read(fixture!("vacation.eml"));
    assert_eq!(report.kind, Kind::AutoReply);
    assert_eq!(
        report.references.message_ids,
        ["<44444444444444444444444444444444.2026-11-27-welcome@news.example.org>"]
    );
}

#[test]
fn ordinary_mail_is_never_a_bounce() {
    for (name, bytes) in [
        ("ordinary-reply", fixture!("ordinary-reply.eml")),
        ("read-receipt", fixture!("read-receipt.eml")),
    ] {
        let report = read(bytes);
        assert_eq!(report.kind, Kind::None, "{name}");
        assert!(report.recipients.is_empty(), "{name}");
    }
}

#[test]
fn a_forwarded_bounce_is_read_through_its_quoting() {
    let report = read(fixture!("forwarded-bounce.eml"));
    assert_eq!(report.kind, Kind::Bounce);
    assert_eq!(
        summary(&report),
        [row("yuki@example.jp", "5.1.1", "550", true, "unknown user")]
    );
}

#[test]
fn a_domain_that_does_not_exist_is_hard() {
    let report = read(fixture!("domain-not-found.eml"));
    assert_eq!(
        summary(&report),
        [row(
            "eli@no-such-domain.example",
            "5.4.4",
            "",
            true,
            "unknown domain"
        )]
    );
}

#[test]
fn a_success_notice_is_delivered() {
    let report = read(fixture!("delivered.eml"));
    assert_eq!(report.kind, Kind::Delivered);
    assert_eq!(
        summary(&report),
        [row("ivy@example.net", "", "", false, "delivered")]
    );
}

#[test]
fn japanese_and_russian_bounces_are_decoded_from_their_charsets() {
    let report = read(fixture!("japanese-iso-2022-jp.eml"));
    assert_eq!(report.kind, Kind::Bounce);
    assert_eq!(
        summary(&report),
        [row("aoi@example.jp", "5.1.1", "550", true, "unknown user")]
    );
    assert!(
        report.recipients[0]
            .diagnostic
            .contains("ユーザーが存在しません"),
        "{}",
        report.recipients[0].diagnostic
    );
    assert_eq!(
        report.references.message_ids,
        ["<77777777777777777777777777777777.2026-11-27-welcome@news.example.org>"]
    );

    let report = read(fixture!("japanese-shift-jis.eml"));
    assert_eq!(
        summary(&report),
        [row("ren@example.ne.jp", "", "552", false, "mailbox full")]
    );

    let report = read(fixture!("russian-koi8-r.eml"));
    assert_eq!(
        summary(&report),
        [row(
            "ivan@example.ru",
            "5.2.2",
            "552",
            false,
            "mailbox full"
        )]
    );
    assert!(report.recipients[0].diagnostic.contains("552 5.2.2"));
}

#[test]
fn line_ends_do_not_change_the_reading() {
    for bytes in [
        fixture!("postfix-two-recipients.eml"),
        fixture!("exim-rcpt-unknown.eml"),
        fixture!("japanese-iso-2022-jp.eml"),
    ] {
        let lf = read(bytes);
        let text = bytes.to_vec();
        let crlf: Vec<u8> = text
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect();
        let cr: Vec<u8> = text
            .iter()
            .map(|&b| if b == b'\n' { b'\r' } else { b })
            .collect();
        assert_eq!(summary(&read(&crlf)), summary(&lf));
        assert_eq!(summary(&read(&cr)), summary(&lf));
        assert_eq!(read(&cr).references, lf.references);
    }
}

#[test]
fn an_mbox_file_holds_many_reports() {
    let mut mbox = Vec::new();
    for bytes in [
        fixture!("postfix-two-recipients.eml"),
        fixture!("arf-abuse.eml"),
        fixture!("vacation.eml"),
    ] {
        mbox.extend_from_slice(b"From MAILER-DAEMON Fri Nov 27 09:12:01 2026\n");
        mbox.extend_from_slice(bytes);
        mbox.extend_from_slice(b"\n>From the archive: a quoted line\n\n");
    }
    let reports = read_mailbox(&mbox).unwrap();
    let kinds: Vec<Kind> = reports.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [Kind::Bounce, Kind::Complaint, Kind::AutoReply]);
    assert_eq!(reports[0].recipients.len(), 2);
}

#[test]
fn a_single_message_file_is_one_report_and_junk_is_refused() {
    assert_eq!(read_mailbox(fixture!("vacation.eml")).unwrap().len(), 1);
    assert_eq!(read_mailbox(b"").unwrap_err(), MailboxError::Empty);
    assert_eq!(read_mailbox(b" \n\n").unwrap_err(), MailboxError::Empty);
    assert_eq!(
        read_mailbox(b"\x89PNG\r\n\x1a\n binary").unwrap_err(),
        MailboxError::NotMail
    );
}

#[test]
fn an_ses_notification_mailed_by_sns_is_read() {
    let message = serde_json::json!({
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{
                "emailAddress": "zoe@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown"
            }]
        },
        "mail": {
            "source": "bounces+nnnnnnnnnnnnnnnnnnnn@news.example.org",
            "headers": [{"name": "Message-ID", "value": "<88888888888888888888888888888888.issue@news.example.org>"}]
        }
    });
    let envelope = serde_json::json!({"Type": "Notification", "Message": message.to_string()});
    let mut body = serde_json::to_string_pretty(&envelope).unwrap();
    // Mail transports fold long lines, inside JSON strings too.
    body.insert_str(200, "\n ");
    let mail = format!(
        "From: AWS Notifications <no-reply@sns.amazonaws.com>\nTo: ops@news.example.org\n\
         Subject: AWS Notification Message\nContent-Type: text/plain; charset=UTF-8\n\n{body}\n"
    );
    let report = read(mail.as_bytes());
    assert_eq!(report.kind, Kind::Bounce);
    assert_eq!(
        summary(&report),
        [row("zoe@example.com", "5.1.1", "550", true, "unknown user")]
    );
    assert_eq!(report.references.tokens, ["nnnnnnnnnnnnnnnnnnnn"]);
}

#[test]
fn the_json_line_has_the_contract_s_shape() {
    let report = read(fixture!("postfix-two-recipients.eml"));
    let delivery = DeliveryName {
        issue: "2026-11-27-welcome".into(),
        subscriber: 42,
    };
    let line = serde_json::to_value(report.line("x.eml", Some(&delivery))).unwrap();
    assert_eq!(
        line,
        serde_json::json!({
            "file": "x.eml",
            "kind": "bounce",
            "feedback_type": null,
            "recipients": [
                {"address": "ada@example.net", "status": "5.1.1", "reply": "550", "hard": true, "reason": "unknown user"},
                {"address": "grace@example.net", "status": "5.2.2", "reply": "552", "hard": false, "reason": "mailbox full"}
            ],
            "delivery": {"issue": "2026-11-27-welcome", "subscriber": 42}
        })
    );
}
