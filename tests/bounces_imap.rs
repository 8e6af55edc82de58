//! The IMAP poller against a real Dovecot: reports appended over IMAP are applied once and
//! moved to `herald-processed`; what herald cannot read goes to `herald-unreadable`; a
//! crash between storing a report and moving its message does not count it twice. On SQLite
//! and on PostgreSQL.

mod support;

use herald::bounces::imap::{self, ImapConfig, PollSummary, PROCESSED, UNREADABLE};
use herald::bounces::{Channel, Inbox};
use herald::config::BouncesSettings;
use herald::domain::SubscriberStatus;
use secrecy::SecretString;
use support::app::{addresses, Harness};
use support::dovecot::{Dovecot, PASSWORD, USER};
use support::postgres::Backend;
use support::smtp_server::{Faults, Received};
use tokio::net::TcpStream;

type Session = async_imap::Session<TcpStream>;

async fn login(server: &Dovecot) -> Session {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap();
    client
        .login(USER, PASSWORD)
        .await
        .map_err(|(e, _)| e)
        .unwrap()
}

async fn count(session: &mut Session, mailbox: &str) -> u32 {
    session.examine(mailbox).await.unwrap().exists
}

fn config(server: &Dovecot) -> ImapConfig {
    let settings = BouncesSettings {
        imap_url: Some(server.url()),
        imap_password: Some(SecretString::from(PASSWORD.to_string())),
        ..BouncesSettings::default()
    };
    ImapConfig::from_settings(&settings).unwrap().unwrap()
}

fn dsn(copy: &Received, status: &str, diagnostic: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\n\
         To: <{to}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\
         \r\n\
         --b\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.net\r\n\
         \r\n\
         Final-Recipient: rfc822; {rcpt}\r\n\
         Action: failed\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; {diagnostic}\r\n\
         \r\n\
         --b--\r\n",
        to = copy.mail_from,
        rcpt = copy.rcpt_to[0],
    )
}

on_both_backends! {
    async fn reports_in_a_mailbox_are_applied_once_and_moved(backend: Backend) {
        let Some(server) = Dovecot::start().await else {
            return;
        };
        let readers = addresses("imap", 3);
        let h = Harness::start_on(backend, Faults::new(), &readers, |s| {
            s.bounces.return_path = Some("bounces@news.example.org".into());
        })
        .await;
        h.run(false).await;
        let copy = |email: &str| h.copies_for(email).remove(0);

        let mut session = login(&server).await;
        let hard = dsn(&copy(&readers[0]), "5.1.1", "550 5.1.1 user unknown");
        session.append("INBOX", None, None, &hard).await.unwrap();
        session
            .append("INBOX", None, None, "this is not a mail message at all\r\n")
            .await
            .unwrap();
        session
            .append(
                "INBOX",
                None,
                None,
                "From: Tom <tom@example.com>\r\nSubject: thanks!\r\n\r\nLoved this week's issue.\r\n",
            )
            .await
            .unwrap();

        let summary = imap::poll_once(&config(&server), &*h.app.bounces)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
        assert_eq!(
            summary,
            PollSummary {
                processed: 1,
                unreadable: 2,
                left: 0
            }
        );
        assert_eq!(count(&mut session, "INBOX").await, 0);
        assert_eq!(count(&mut session, PROCESSED).await, 1);
        assert_eq!(count(&mut session, UNREADABLE).await, 2);
        assert_eq!(
            h.subscriber_status(&readers[0]).await,
            SubscriberStatus::Bounced
        );

        // Polling again finds nothing new.
        let again = imap::poll_once(&config(&server), &*h.app.bounces)
            .await
            .unwrap();
        assert_eq!(again, PollSummary::default());

        // A poller that stored a report and died before moving its message: the next poll
        // reads the message again, and the report still counts once.
        let soft = dsn(&copy(&readers[1]), "5.2.2", "552 5.2.2 mailbox full");
        session.append("INBOX", None, None, &soft).await.unwrap();
        let stored = h
            .app
            .bounces
            .deliver(soft.clone().into_bytes(), Vec::new(), Channel::Imap)
            .await
            .unwrap();
        assert!(!stored.duplicate);
        let summary = imap::poll_once(&config(&server), &*h.app.bounces)
            .await
            .unwrap();
        assert_eq!(summary.processed, 1);
        assert_eq!(count(&mut session, "INBOX").await, 0);
        assert_eq!(count(&mut session, PROCESSED).await, 2);
        let id = h.subscriber_id(&readers[1]).await;
        let rows = h.app.store.subscriber_bounces(id, 10).await.unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].channel, "imap");
        assert_eq!(
            h.subscriber_status(&readers[1]).await,
            SubscriberStatus::Active
        );
        let _ = session.logout().await;
    }
}

on_both_backends! {
    async fn a_wrong_password_is_an_error_that_names_the_user_not_the_password(backend: Backend) {
        let Some(server) = Dovecot::start().await else {
            return;
        };
        let h = Harness::start_on(backend, Faults::new(), &[], |_| {}).await;
        let mut bad = config(&server);
        bad.password = SecretString::from("wrong-password-value".to_string());
        let e = imap::poll_once(&bad, &*h.app.bounces)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(USER), "{e}");
        assert!(!e.contains("wrong-password-value"), "{e}");
    }
}
