//! Self-tests of the SMTP test servers (`support::smtp_server` and `support::smtp_sink`),
//! driven by lettre's pooled `AsyncSmtpTransport`, the client the dispatcher uses. Each fault
//! test also prints what lettre reports (`cargo test --test smtp_server -- --nocapture`),
//! since the dispatcher's retry policy is built on those predicates.
//!
//! What lettre 0.11 reports, as these tests pin down:
//! - 4xx at any stage (421-and-close included): `is_transient`, `status` = the code.
//! - 5xx at any stage (554 greeting included): `is_permanent`, `status` = the code.
//! - A refused RCPT ends the whole transaction: lettre sends no further RCPT and no DATA.
//! - Connection closed without a reply (before the greeting, or after "."): "response error:
//!   incomplete response", neither transient, permanent nor timeout, no status.
//! - Nothing listening: "Connection error: Connection refused", likewise unclassified.
//! - A slow reply: the async transport applies its `timeout` to connecting only and waits
//!   forever for replies, so the caller needs its own `tokio::time::timeout`; the blocking
//!   transport's read timeout surfaces as "network error: Resource temporarily unavailable"
//!   with `is_timeout() == false`.
//! - The pool's `max_size` bounds idle connections, not concurrent ones.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

mod support;
use support::smtp_server::{Fault, Faults, Received, SmtpServer, Stage};
use support::smtp_sink::SmtpSink;

const FROM: &str = "news@herald.test";
/// Sent raw, so the bytes on the wire are known; lettre dot-stuffs the leading dots.
const DATA: &[u8] = b"Subject: hello\r\n\r\nline one\r\n.starts with a dot\r\n..two dots";

type Transport = AsyncSmtpTransport<Tokio1Executor>;

fn transport(port: u16, timeout: Duration) -> Transport {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(timeout))
        .build()
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope::new(
        Some(FROM.parse().expect("sender")),
        to.iter().map(|a| a.parse().expect("recipient")).collect(),
    )
    .expect("envelope")
}

async fn send(transport: &Transport, to: &[&str]) -> Result<Response, SmtpError> {
    transport.send_raw(&envelope(to), DATA).await
}

/// lettre appends "\r\n.\r\n", so the server sees the data plus the CRLF ending its last line.
fn data_as_received() -> Vec<u8> {
    [DATA, b"\r\n"].concat()
}

/// Prints and returns lettre's view of an error, in the form the report quotes.
fn describe(label: &str, error: &SmtpError) -> String {
    let text = format!(
        "{label}: transient={} permanent={} timeout={} status={:?} display=\"{error}\"",
        error.is_transient(),
        error.is_permanent(),
        error.is_timeout(),
        error.status().map(|code| code.to_string()),
    );
    println!("{text}");
    text
}

fn status(error: &SmtpError) -> Option<String> {
    error.status().map(|code| code.to_string())
}

#[tokio::test]
async fn clean_send_is_recorded_with_exact_data() {
    let server = SmtpServer::start(Faults::new());
    let transport = transport(server.port(), Duration::from_secs(5));

    let response = send(&transport, &["a@example.org", "b@example.org"])
        .await
        .expect("clean send");

    assert_eq!(response.code().to_string(), "250");
    assert_eq!(
        server.received(),
        vec![Received {
            mail_from: FROM.to_owned(),
            rcpt_to: vec!["a@example.org".to_owned(), "b@example.org".to_owned()],
            data: data_as_received(),
        }]
    );
    assert_eq!(server.connections(), 1);
    assert_eq!(server.transactions(), 1);
    assert!(server.url().starts_with("smtp://127.0.0.1:"));
}

#[tokio::test]
async fn pooled_connection_carries_several_transactions() {
    let server = SmtpServer::start(Faults::new());
    let transport = transport(server.port(), Duration::from_secs(5));

    for n in 0..3 {
        send(&transport, &[&format!("r{n}@example.org")])
            .await
            .expect("send");
        // lettre hands a connection back to its pool from a spawned task: give it a moment,
        // or the next send opens a second connection.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(server.received_count(), 3);
    assert_eq!(server.connections(), 1, "{:#?}", server.transcript());
    assert_eq!(server.transactions(), 3);
}

#[tokio::test]
async fn reply_faults_give_transient_or_permanent_errors_and_record_nothing() {
    let server = SmtpServer::start(Faults::new());
    let transport = transport(server.port(), Duration::from_secs(5));
    let cases = [
        (Stage::Mail, 451, "4.3.0 Try again later", true),
        (Stage::Rcpt, 452, "4.5.3 Too many recipients", true),
        (Stage::Rcpt, 550, "5.1.1 User unknown", false),
        (Stage::Data, 554, "5.7.1 Rejected", false),
        (Stage::DataEnd, 451, "4.3.0 Queue trouble", true),
        (Stage::DataEnd, 554, "5.7.1 Spam", false),
    ];

    for (stage, code, text, transient) in cases {
        server.set_faults(Faults::new().with(Fault::reply(stage, code, text)));
        let error = send(&transport, &["a@example.org"])
            .await
            .expect_err("fault must fail the send");
        describe(&format!("{stage:?} {code}"), &error);
        assert_eq!(error.is_transient(), transient, "{stage:?} {code}");
        assert_eq!(error.is_permanent(), !transient, "{stage:?} {code}");
        assert!(!error.is_timeout());
        assert_eq!(status(&error), Some(code.to_string()));
        assert!(error.to_string().contains(text), "{error}");
    }

    assert_eq!(server.received_count(), 0);
    server.clear_faults();
    send(&transport, &["a@example.org"])
        .await
        .expect("the pool recovers once the faults are gone");
    assert_eq!(server.received_count(), 1);
}

#[tokio::test]
async fn close_with_421_is_transient_and_the_next_send_reconnects() {
    for stage in [Stage::Ehlo, Stage::Mail, Stage::Rcpt, Stage::DataEnd] {
        let server = SmtpServer::start(Faults::new().with(Fault::close(stage).times(1)));
        let transport = transport(server.port(), Duration::from_secs(5));

        let error = send(&transport, &["a@example.org"])
            .await
            .expect_err("421 fails the send");
        describe(&format!("421 and close at {stage:?}"), &error);
        assert!(error.is_transient());
        assert_eq!(status(&error), Some("421".to_owned()));

        send(&transport, &["a@example.org"])
            .await
            .expect("a new connection succeeds");
        assert_eq!(server.received_count(), 1);
        assert_eq!(server.connections(), 2);
    }
}

#[tokio::test]
async fn silent_drop_after_data_leaves_the_outcome_unknown() {
    let server = SmtpServer::start(Faults::new().with(Fault::drop(Stage::DataEnd)));
    let transport = transport(server.port(), Duration::from_secs(5));

    let error = send(&transport, &["a@example.org"])
        .await
        .expect_err("no reply is an error");
    describe("silent drop after \".\"", &error);

    assert!(!error.is_transient() && !error.is_permanent() && !error.is_timeout());
    assert_eq!(error.status(), None);
    assert_eq!(server.received_count(), 0);
    let dropped = server.dropped_after_data();
    assert_eq!(dropped.len(), 1, "the server did get the data");
    assert_eq!(dropped[0].data, data_as_received());
}

#[tokio::test]
async fn async_lettre_does_not_time_out_a_slow_reply_so_the_caller_must() {
    // lettre's async transport applies `timeout` to connecting only: a slow reply is awaited.
    let delay = Duration::from_millis(800);
    let server = SmtpServer::start(Faults::new().with(Fault::delay(Stage::DataEnd, delay)));
    let transport = transport(server.port(), Duration::from_millis(100));

    let started = std::time::Instant::now();
    send(&transport, &["a@example.org"])
        .await
        .expect("lettre waits past its timeout");
    assert!(started.elapsed() >= delay);

    // So the dispatcher wraps each send in its own timeout. The server still accepts the
    // message after its delay: a duplicate if the client retries.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        send(&transport, &["b@example.org"]),
    )
    .await;
    assert!(gave_up.is_err(), "tokio's timeout fires first");
    assert!(server.wait_for(2, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_lettre_read_timeout_is_a_network_error_not_is_timeout() {
    let server = SmtpServer::start(
        Faults::new().with(Fault::delay(Stage::DataEnd, Duration::from_millis(1500))),
    );
    let port = server.port();

    let error = tokio::task::spawn_blocking(move || {
        use lettre::Transport as _;
        let transport = lettre::SmtpTransport::builder_dangerous("127.0.0.1")
            .port(port)
            .timeout(Some(Duration::from_millis(300)))
            .build();
        transport.send_raw(&envelope(&["a@example.org"]), DATA)
    })
    .await
    .expect("blocking client")
    .expect_err("the reply comes too late");
    describe("blocking client, slow reply to \".\"", &error);

    // On Linux a socket read timeout is EAGAIN (`WouldBlock`), and `is_timeout` only knows
    // `TimedOut`: the error is neither transient, permanent nor a timeout. Outcome unknown.
    assert!(!error.is_timeout() && !error.is_transient() && !error.is_permanent());
    assert_eq!(error.status(), None);
    assert!(server.wait_for(1, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn reply_delay_slows_every_reply() {
    let server = SmtpServer::start(Faults::new().with_reply_delay(Duration::from_millis(50)));
    let transport = transport(server.port(), Duration::from_secs(5));

    let started = std::time::Instant::now();
    send(&transport, &["a@example.org"]).await.expect("send");

    // Greeting, EHLO, MAIL, RCPT, DATA and "." each wait 50 ms.
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(server.received_count(), 1);
}

#[tokio::test]
async fn recipient_filtered_fault_fails_only_matching_recipients() {
    let server = SmtpServer::start(Faults::new().with(
        Fault::reply(Stage::Rcpt, 550, "5.1.1 User unknown").for_addresses_containing("fail-"),
    ));
    let transport = transport(server.port(), Duration::from_secs(5));

    send(&transport, &["ok-1@example.org"]).await.expect("ok-1");
    let error = send(&transport, &["fail-2@example.org"])
        .await
        .expect_err("fail-2");
    describe("RCPT 550 for fail-", &error);
    assert!(error.is_permanent());
    send(&transport, &["ok-3@example.org"]).await.expect("ok-3");

    let recipients: Vec<Vec<String>> = server.received().into_iter().map(|m| m.rcpt_to).collect();
    assert_eq!(
        recipients,
        vec![
            vec!["ok-1@example.org".to_owned()],
            vec!["ok-3@example.org".to_owned()]
        ]
    );
}

#[tokio::test]
async fn first_n_fault_fails_then_retries_succeed() {
    let server = SmtpServer::start(
        Faults::new().with(Fault::reply(Stage::DataEnd, 451, "4.3.0 Try again").times(2)),
    );
    let transport = transport(server.port(), Duration::from_secs(5));

    for attempt in 1..=2 {
        let error = send(&transport, &["a@example.org"])
            .await
            .expect_err("first two attempts fail");
        assert!(error.is_transient(), "attempt {attempt}");
    }
    send(&transport, &["a@example.org"])
        .await
        .expect("third attempt succeeds");

    assert_eq!(server.received_count(), 1);
    assert_eq!(server.transactions(), 3);
}

#[tokio::test]
async fn refused_connections_look_like_a_relay_that_is_down() {
    // Closed without a greeting.
    let server = SmtpServer::start(Faults::new().with(Fault::drop(Stage::Connect)));
    let error = send(
        &transport(server.port(), Duration::from_secs(5)),
        &["a@example.org"],
    )
    .await
    .expect_err("no greeting");
    describe("closed before greeting", &error);
    assert!(!error.is_transient() && !error.is_permanent());

    // 554 greeting.
    server.set_faults(Faults::new().with(Fault::reply(
        Stage::Connect,
        554,
        "5.3.2 No service here",
    )));
    let error = send(
        &transport(server.port(), Duration::from_secs(5)),
        &["a@example.org"],
    )
    .await
    .expect_err("554 greeting");
    describe("554 greeting", &error);
    assert!(error.is_permanent());
    assert_eq!(status(&error), Some("554".to_owned()));

    // Nothing listening.
    server.clear_faults();
    server.close_listener().await;
    let error = send(
        &transport(server.port(), Duration::from_secs(5)),
        &["a@example.org"],
    )
    .await
    .expect_err("connection refused");
    describe("listener closed", &error);
    assert!(!error.is_transient() && !error.is_permanent() && !error.is_timeout());

    server.reopen_listener().expect("same port again");
    send(
        &transport(server.port(), Duration::from_secs(5)),
        &["a@example.org"],
    )
    .await
    .expect("relay is back");
    assert_eq!(server.received_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_are_all_recorded() {
    let server = SmtpServer::start(Faults::new());
    let transport = transport(server.port(), Duration::from_secs(10));

    let sends = (0..50).map(|n| {
        let transport = transport.clone();
        async move {
            let to = format!("r{n}@example.org");
            send(&transport, &[&to]).await
        }
    });
    for result in futures::future::join_all(sends).await {
        result.expect("send");
    }

    assert!(server.wait_for(50, Duration::from_secs(5)).await);
    let recipients: HashSet<String> = server
        .received()
        .into_iter()
        .flat_map(|m| m.rcpt_to)
        .collect();
    assert_eq!(recipients.len(), 50);
    // lettre's pool keeps at most 10 idle connections, but opens more under load.
    println!(
        "50 concurrent sends used {} connections",
        server.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_client_gets_errors_and_the_server_keeps_serving() {
    let server = SmtpServer::start(Faults::new());
    let addr = server.addr();
    let replies = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut replies = Vec::new();
        let mut line = String::new();
        let mut read_reply = |reader: &mut BufReader<TcpStream>| {
            line.clear();
            reader.read_line(&mut line).expect("reply");
            line.get(..3).unwrap_or("").to_owned()
        };
        replies.push(read_reply(&mut reader));
        for command in [
            &b"WHAT\r\n"[..],
            b"\xff\xfe\r\n",
            b"DATA\r\n",
            b"RCPT TO:<a@example.org>\r\n",
            b"MAIL FROM:garbage\r\n",
            b"NOOP\r\n",
            b"RSET\r\n",
            b"HELO\r\n",
            b"QUIT\r\n",
        ] {
            stream.write_all(command).expect("write");
            replies.push(read_reply(&mut reader));
        }
        replies
    })
    .await
    .expect("raw client");

    assert_eq!(
        replies,
        ["220", "502", "502", "503", "503", "250", "250", "250", "501", "221"]
    );

    // An over-long line closes that connection only.
    let long = vec![b'A'; 10_000];
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let _ = stream.write_all(&long);
    })
    .await
    .expect("long line client");
    send(
        &transport(server.port(), Duration::from_secs(5)),
        &["a@example.org"],
    )
    .await
    .expect("server still serves");
}

// --- Postfix smtp-sink -------------------------------------------------------------------

#[tokio::test]
async fn smtp_sink_counts_and_dumps_a_clean_send() {
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    let transport = transport(sink.port(), Duration::from_secs(5));

    send(&transport, &["a@example.org", "b@example.org"])
        .await
        .expect("clean send");

    assert!(sink.wait_for(1, Duration::from_secs(5)).await);
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{}", sink.stderr_text());
    assert_eq!(messages[0].mail_from, FROM);
    assert_eq!(messages[0].rcpt_to, ["a@example.org", "b@example.org"]);
    // The dump has LF line ends and no dot-stuffing.
    assert_eq!(
        messages[0].data,
        "Subject: hello\n\nline one\n.starts with a dot\n..two dots\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_sink_dumps_two_hundred_messages_in_the_same_second_without_overwriting() {
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    let transport = transport(sink.port(), Duration::from_secs(30));

    let sends = (0..200).map(|n| {
        let transport = transport.clone();
        async move {
            let to = format!("r{n}@example.org");
            send(&transport, &[&to]).await
        }
    });
    for result in futures::future::join_all(sends).await {
        result.expect("send");
    }

    assert!(sink.wait_for(200, Duration::from_secs(5)).await);
    let messages = sink.messages();
    assert_eq!(sink.dump_files().len(), 200);
    let recipients: HashSet<&str> = messages.iter().map(|m| m.rcpt_to[0].as_str()).collect();
    assert_eq!(recipients.len(), 200);
    let ids: HashSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), 200);
}

#[tokio::test]
async fn smtp_sink_soft_rejects_rcpt_with_r() {
    let Some(sink) = SmtpSink::start(&["-r", "RCPT"]) else {
        return;
    };
    let error = send(
        &transport(sink.port(), Duration::from_secs(5)),
        &["a@example.org"],
    )
    .await
    .expect_err("450 at RCPT");
    describe("smtp-sink -r RCPT", &error);
    assert!(error.is_transient());
    assert_eq!(status(&error), Some("450".to_owned()));
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn smtp_sink_hard_rejects_the_final_dot_with_f() {
    let Some(sink) = SmtpSink::start(&["-f", "."]) else {
        return;
    };
    let error = send(
        &transport(sink.port(), Duration::from_secs(5)),
        &["a@example.org"],
    )
    .await
    .expect_err("500 at \".\"");
    describe("smtp-sink -f .", &error);
    assert!(error.is_permanent());
    assert_eq!(status(&error), Some("500".to_owned()));
    assert!(
        sink.wait_for(1, Duration::from_secs(5)).await,
        "counted although rejected"
    );
    assert_eq!(sink.messages().len(), 1, "dumped although rejected");
}

#[tokio::test]
async fn smtp_sink_replies_421_and_disconnects_with_upper_q() {
    let Some(sink) = SmtpSink::start(&["-Q", "MAIL"]) else {
        return;
    };
    let error = send(
        &transport(sink.port(), Duration::from_secs(5)),
        &["a@example.org"],
    )
    .await
    .expect_err("421 at MAIL");
    describe("smtp-sink -Q MAIL", &error);
    assert!(error.is_transient());
    assert_eq!(status(&error), Some("421".to_owned()));
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn smtp_sink_drops_silently_after_the_data_with_q() {
    let Some(sink) = SmtpSink::start(&["-q", "."]) else {
        return;
    };
    let error = send(
        &transport(sink.port(), Duration::from_secs(5)),
        &["a@example.org"],
    )
    .await
    .expect_err("no reply to \".\"");
    describe("smtp-sink -q .", &error);
    assert!(!error.is_transient() && !error.is_permanent() && !error.is_timeout());
    assert_eq!(error.status(), None);
    assert!(
        sink.wait_for(1, Duration::from_secs(5)).await,
        "the server got the data"
    );
    assert_eq!(sink.messages().len(), 1, "and dumped it");
}
