//! herald's most verbose log level shows herald's own work, never a secret: a send that
//! authenticates to its relay, logged at `trace`, writes neither the password (plain or in
//! the base64 of `AUTH PLAIN`), nor a full address, nor a live unsubscribe token. Other
//! crates' logs (lettre logs the whole SMTP session) appear only when named outright.

mod support;

use base64::Engine;
use support::herald_site::{HeraldSite, SendingConfig, ISSUE};
use support::smtp_server::{Faults, Offer, SmtpServer};

const USER: &str = "relay-user";
const PASSWORD: &str = "relay-password-7f3a9c";

/// Runs `herald send` against a relay that asks for AUTH, with `var=level`, and returns the
/// relay and herald's stderr.
async fn send_logged(var: &str, level: &str) -> (SmtpServer, String, Vec<String>) {
    let server = SmtpServer::start_offering(Offer::default().with_auth(), Faults::new());
    let site = HeraldSite::new(&server.url(), &SendingConfig::default());
    let emails = site.import_generated(3).await;
    let output = site
        .command(&["send", ISSUE, "--yes"])
        .env(var, level)
        .env("HERALD__SMTP__USERNAME", USER)
        .env("HERALD__SMTP__PASSWORD", PASSWORD)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "herald send failed: {stderr}");
    assert_eq!(server.received_count(), 3, "{stderr}");
    assert!(
        server
            .transcript()
            .iter()
            .any(|line| line.contains(" C: AUTH PLAIN ")),
        "herald authenticated: {:?}",
        server.transcript()
    );
    (server, stderr, emails)
}

/// The unsubscribe tokens in the messages the relay accepted.
fn tokens(server: &SmtpServer) -> Vec<String> {
    let mut out = Vec::new();
    for received in server.received() {
        let text = received.text();
        for (at, _) in text.match_indices("/unsubscribe/") {
            let token: String = text[at + "/unsubscribe/".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
            if token.len() >= 16 {
                out.push(token);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn assert_no_secret(stderr: &str, server: &SmtpServer, emails: &[String]) {
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    assert!(
        !stderr.contains(PASSWORD),
        "the password is logged:\n{stderr}"
    );
    assert!(!stderr.contains(&plain), "AUTH PLAIN is logged:\n{stderr}");
    for email in emails {
        assert!(
            !stderr.contains(email.as_str()),
            "{email} is logged:\n{stderr}"
        );
    }
    let tokens = tokens(server);
    assert!(!tokens.is_empty(), "the messages carry unsubscribe tokens");
    for token in &tokens {
        assert!(
            !stderr.contains(token.as_str()),
            "a token is logged:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn herald_log_trace_shows_herald_s_work_and_no_password_address_or_token() {
    let (server, stderr, emails) = send_logged("HERALD_LOG", "trace").await;
    assert!(
        stderr.contains("DEBUG") || stderr.contains("TRACE"),
        "herald's own verbose lines are shown:\n{stderr}"
    );
    assert!(
        !stderr.contains("lettre"),
        "lettre's lines need to be asked for by name:\n{stderr}"
    );
    assert_no_secret(&stderr, &server, &emails);
}

#[tokio::test]
async fn rust_log_is_read_as_herald_log_is() {
    let (server, stderr, emails) = send_logged("RUST_LOG", "trace").await;
    assert!(
        stderr.contains("DEBUG") || stderr.contains("TRACE"),
        "RUST_LOG is honoured:\n{stderr}"
    );
    assert!(!stderr.contains("lettre"), "{stderr}");
    assert_no_secret(&stderr, &server, &emails);
}
