//! Sign-up with double opt-in over a real socket: the whole `herald serve` (web server,
//! dispatcher, notice worker) on port 0, the fault-injecting SMTP server capturing mail, and
//! reqwest as the client.

mod support;

use std::time::Duration;

use herald::domain::{EmailAddress, IssueSlug, Purpose, SubscriberStatus, TokenKey};
use support::app::{add_subscribers, copies_in, eventually, header, SLUG};
use support::postgres::{Arg, Backend};
use support::server::{Relay, TestServer};
use support::smtp_server::{Fault, Faults, Received, Stage};

/// How long any mail may take to arrive.
const MAIL_WAIT: Duration = Duration::from_secs(20);

async fn start(backend: Backend) -> TestServer {
    start_with(backend, |_| {}).await
}

async fn start_with(
    backend: Backend,
    tweak: impl FnOnce(&mut herald::config::Settings),
) -> TestServer {
    TestServer::start_on(backend, Relay::Smtp(Faults::new()), |s| {
        s.web.signup_per_ip_per_minute = 10_000;
        tweak(s);
    })
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("SignupTest/1.0")
        .build()
        .unwrap()
}

/// One answer, reduced to what a client can observe.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    cache_control: Option<String>,
    retry_after: Option<String>,
    body: String,
}

async fn answer(response: reqwest::Response) -> Answer {
    let h = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (content_type, cache_control, retry_after) =
        (h("content-type"), h("cache-control"), h("retry-after"));
    Answer {
        status: response.status().as_u16(),
        content_type,
        cache_control,
        retry_after,
        body: response.text().await.unwrap(),
    }
}

async fn post_form(server: &TestServer, fields: &[(&str, &str)]) -> Answer {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let response = client()
        .post(server.url("/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

async fn post_json(server: &TestServer, value: serde_json::Value) -> Answer {
    let response = client()
        .post(server.url("/subscribe"))
        .json(&value)
        .send()
        .await
        .unwrap();
    answer(response).await
}

async fn get(url: &str) -> Answer {
    answer(client().get(url).send().await.unwrap()).await
}

/// A bodiless POST, as the confirmation page's button sends it.
async fn post(url: &str) -> Answer {
    answer(client().post(url).send().await.unwrap()).await
}

async fn subscriber(server: &TestServer, email: &str) -> Option<herald::store::Subscriber> {
    server
        .app
        .store
        .find_subscriber_by_email(&EmailAddress::parse(email).unwrap())
        .await
        .unwrap()
}

async fn status(server: &TestServer, email: &str) -> SubscriberStatus {
    subscriber(server, email).await.expect("subscriber").status
}

async fn count(server: &TestServer, sql: &str) -> i64 {
    server.raw().await.scalar(sql, &[]).await
}

/// The one text (or NULL) that `sql` answers.
async fn text(server: &TestServer, sql: &str, args: &[Arg<'_>]) -> Option<String> {
    let mut texts = server.raw().await.texts(sql, args).await;
    assert_eq!(texts.len(), 1, "{sql} answered {} rows", texts.len());
    texts.pop().unwrap()
}

fn relay(server: &TestServer) -> &support::smtp_server::SmtpServer {
    server.smtp.as_ref().expect("started with a relay")
}

fn mails_to(server: &TestServer, email: &str) -> Vec<Received> {
    copies_in(&relay(server).received(), email)
}

/// Waits until `email` has received `n` mails; returns them.
async fn wait_for_mails(server: &TestServer, email: &str, n: usize) -> Vec<Received> {
    let arrived = eventually(MAIL_WAIT, || async { mails_to(server, email).len() >= n }).await;
    assert!(
        arrived,
        "{email} got {} mails, expected {n}; relay transcript:\n{}",
        mails_to(server, email).len(),
        relay(server).transcript().join("\n")
    );
    mails_to(server, email)
}

/// The decoded plain-text and HTML parts of a captured mail.
fn parts(mail: &Received) -> (String, String) {
    let message = mail_parser::MessageParser::default()
        .parse(&mail.data)
        .expect("a parseable message");
    let text = message.body_text(0).expect("a text part").into_owned();
    let html = message.body_html(0).expect("an HTML part").into_owned();
    (text, html)
}

fn subject(mail: &Received) -> String {
    let message = mail_parser::MessageParser::default()
        .parse(&mail.data)
        .unwrap();
    message.subject().unwrap_or_default().to_string()
}

/// The first `{base}/{route}/TOKEN` link in `text`.
fn link(text: &str, server: &TestServer, route: &str) -> String {
    let pattern = format!("{}/{route}/[A-Za-z0-9_-]+", regex::escape(&server.base));
    regex::Regex::new(&pattern)
        .unwrap()
        .find(text)
        .unwrap_or_else(|| panic!("no {route} link in:\n{text}"))
        .as_str()
        .to_string()
}

fn key(server: &TestServer) -> TokenKey {
    TokenKey::new(&server.app.settings.secret_key().unwrap())
}

on_both_backends! {
    async fn reader_signs_up_confirms_receives_an_issue_unsubscribes_in_one_click_and_gets_nothing_more(backend: Backend) {
        let server = start(backend).await;
        let reader = "ada.reader@example.org";
        let control = ["control@example.org".to_string()];
        add_subscribers(&server.app.store, &control).await;

        let thanks = post_form(&server, &[("email", reader), ("name", "Ada")]).await;
        assert_eq!(thanks.status, 200, "{}", thanks.body);
        assert!(thanks.body.contains("check your inbox"), "{}", thanks.body);
        assert_eq!(status(&server, reader).await, SubscriberStatus::Pending);
        let of_reader = |column: &str| {
            format!(
                "SELECT CAST(e.{column} AS TEXT) FROM events e \
                 JOIN subscribers s ON s.id = e.subscriber_id WHERE s.email = $1"
            )
        };
        let consent = |column: &'static str| {
            let sql = of_reader(column);
            let server = &server;
            async move { text(server, &sql, &[Arg::Text(reader)]).await }
        };
        assert_eq!(consent("kind").await.as_deref(), Some("subscribe"));
        assert_eq!(consent("ip").await.as_deref(), Some("127.0.0.1"));
        assert_eq!(consent("user_agent").await.as_deref(), Some("SignupTest/1.0"));
        let detail: serde_json::Value =
            serde_json::from_str(&consent("detail").await.unwrap()).unwrap();
        assert_eq!(
            detail["consent"],
            herald::config::NewsletterSettings::default()
                .consent
                .unwrap_or_else(|| herald::i18n::Catalogs::built_in()
                    .default_catalog()
                    .t("signup-consent"))
        );
        assert_eq!(detail["name"], "Ada");
        assert_eq!(detail["via"], "form");

        // The confirmation mail: no List-Unsubscribe (the reader is not on the list yet).
        let mails = wait_for_mails(&server, reader, 1).await;
        let confirmation = &mails[0];
        assert!(subject(confirmation).starts_with("Confirm your subscription"));
        assert_eq!(header(&confirmation.text(), "List-Unsubscribe"), None);
        let (text, html) = parts(confirmation);
        let confirm_url = link(&text, &server, "confirm");
        assert!(
            html.contains(&confirm_url),
            "the HTML part has the same link"
        );
        assert!(text.contains("Hello Ada,"), "{text}");

        // Opening the link shows the button; pressing it confirms.
        let shown = get(&confirm_url).await;
        assert_eq!(shown.status, 200, "{}", shown.body);
        assert!(
            shown.body.contains("<form method=\"post\">"),
            "{}",
            shown.body
        );
        assert_eq!(status(&server, reader).await, SubscriberStatus::Pending);
        let confirmed = post(&confirm_url).await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.body);
        assert!(confirmed.body.contains("You are subscribed"));
        assert_eq!(status(&server, reader).await, SubscriberStatus::Active);
        // A welcome mail follows (templates/welcome.mjml exists), from the list.
        let mails = wait_for_mails(&server, reader, 2).await;
        assert!(subject(&mails[1]).starts_with("Welcome to"));
        assert!(header(&mails[1].text(), "List-Unsubscribe").is_some());

        // The next issue reaches the reader.
        let slug = IssueSlug::parse(SLUG).unwrap();
        server.app.send_now(&slug, "test").await.unwrap();
        let mails = wait_for_mails(&server, reader, 3).await;
        let issue = &mails[2];
        let list_unsubscribe = header(&issue.text(), "List-Unsubscribe").expect("List-Unsubscribe");
        let unsubscribe_url = link(&list_unsubscribe, &server, "unsubscribe");

        // RFC 8058 one-click, as a mail client does it.
        let one_click = client()
            .post(&unsubscribe_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(one_click.status(), 200);
        assert_eq!(
            status(&server, reader).await,
            SubscriberStatus::Unsubscribed
        );

        // Another issue: the control subscriber gets it, the reader does not.
        std::fs::write(
            server.issues_dir().join("second-issue.md"),
            "---\ntitle: \"Second issue\"\n---\n\nMore news.\n",
        )
        .unwrap();
        let second = IssueSlug::parse("second-issue").unwrap();
        server.app.send_now(&second, "test").await.unwrap();
        let control_mails = wait_for_mails(&server, &control[0], 2).await;
        assert!(subject(&control_mails[1]).contains("Second issue"));
        let finished = eventually(MAIL_WAIT, || async {
            server
                .app
                .store
                .find_issue("second-issue")
                .await
                .unwrap()
                .is_some_and(|i| i.status == "sent")
        })
        .await;
        assert!(finished, "the second issue finished sending");
        assert_eq!(
            mails_to(&server, reader).len(),
            3,
            "nothing more after unsubscribing"
        );
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn answers_are_identical_for_new_pending_active_and_unsubscribed_addresses(backend: Backend) {
        let server = start(backend).await;
        let pending = "pending@example.org";
        let active = "active@example.org";
        let unsubscribed = "gone@example.org";
        add_subscribers(
            &server.app.store,
            &[active.to_string(), unsubscribed.to_string()],
        )
        .await;
        server
            .app
            .store
            .change_subscriber_status(
                &EmailAddress::parse(unsubscribed).unwrap(),
                SubscriberStatus::Unsubscribed,
                "test",
            )
            .await
            .unwrap();
        assert_eq!(post_form(&server, &[("email", pending)]).await.status, 200);
        assert_eq!(status(&server, pending).await, SubscriberStatus::Pending);

        for (i, format) in ["form", "json"].into_iter().enumerate() {
            let new = format!("new{i}@example.org");
            let mut answers = Vec::new();
            for email in [new.as_str(), pending, active, unsubscribed] {
                let a = match format {
                    "form" => post_form(&server, &[("email", email), ("name", "Same Name")]).await,
                    _ => {
                        post_json(
                            &server,
                            serde_json::json!({"email": email, "name": "Same Name"}),
                        )
                        .await
                    }
                };
                assert_eq!(a.status, 200, "{format} {email}: {}", a.body);
                answers.push((email, a));
            }
            let (first_email, first) = &answers[0];
            for (email, a) in &answers[1..] {
                assert_eq!(
                    a, first,
                    "{format}: the answer for {email} differs from the one for {first_email}"
                );
            }
            assert_eq!(first.cache_control.as_deref(), Some("no-store"));
            if format == "json" {
                let v: serde_json::Value = serde_json::from_str(&first.body).unwrap();
                assert_eq!(v["status"], "ok");
            }
        }
        // What happened behind the identical answers.
        assert_eq!(status(&server, active).await, SubscriberStatus::Active);
        assert_eq!(
            status(&server, unsubscribed).await,
            SubscriberStatus::Pending,
            "re-consent: back to pending, to be confirmed again"
        );
        assert_eq!(
            status(&server, "new1@example.org").await,
            SubscriberStatus::Pending
        );
        // The active subscriber got no mail at all.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(mails_to(&server, active).is_empty());
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn too_many_sign_ups_from_one_ip_get_429_with_retry_after(backend: Backend) {
        let server = start_with(backend, |s| s.web.signup_per_ip_per_minute = 3).await;
        for i in 0..3 {
            let a = post_form(&server, &[("email", &format!("r{i}@example.org"))]).await;
            assert_eq!(a.status, 200, "{}", a.body);
        }
        let limited = post_form(&server, &[("email", "r3@example.org")]).await;
        assert_eq!(limited.status, 429);
        let retry_after: u64 = limited.retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert!(
            limited.body.contains("Too many sign-ups"),
            "{}",
            limited.body
        );
        let json = post_json(&server, serde_json::json!({"email": "r4@example.org"})).await;
        assert_eq!(json.status, 429);
        assert!(json.retry_after.is_some());
        let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        assert_eq!(v["error"]["code"], "rate_limited");
        assert!(subscriber(&server, "r3@example.org").await.is_none());
        assert!(subscriber(&server, "r4@example.org").await.is_none());
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn one_confirmation_mail_per_address_per_ten_minutes(backend: Backend) {
        let server = start(backend).await;
        let email = "twice@example.org";
        for _ in 0..3 {
            assert_eq!(post_form(&server, &[("email", email)]).await.status, 200);
        }
        wait_for_mails(&server, email, 1).await;
        let id = subscriber(&server, email).await.unwrap().id;
        let notices = server.app.store.notices_of(id).await.unwrap();
        let sent: Vec<_> = notices.iter().filter(|n| n.status != "skipped").collect();
        assert_eq!(sent.len(), 1, "{notices:?}");
        // The other two are recorded as skipped, never sent.
        assert_eq!(notices.len(), 3, "{notices:?}");
        // Three consent events were recorded all the same.
        assert_eq!(
            count(
                &server,
                &format!(
                    "SELECT COUNT(*) FROM events WHERE kind = 'subscribe' AND subscriber_id = {id}"
                )
            )
            .await,
            3
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(mails_to(&server, email).len(), 1);

        // Ten minutes later (the queue row made older), a new sign-up sends a new link.
        server
            .raw()
            .await
            .execute(
                "UPDATE notices SET queued_at = queued_at - 601 WHERE subscriber_id = $1",
                &[Arg::Int(id)],
            )
            .await;
        assert_eq!(post_form(&server, &[("email", email)]).await.status, 200);
        wait_for_mails(&server, email, 2).await;
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn a_filled_honeypot_is_thanked_but_nothing_is_stored_or_sent(backend: Backend) {
        let server = start(backend).await;
        let human = post_form(&server, &[("email", "human@example.org"), ("website", "")]).await;
        let robot = post_form(
            &server,
            &[
                ("email", "robot@example.org"),
                ("website", "http://spam.example"),
            ],
        )
        .await;
        assert_eq!(robot, human, "a robot cannot tell it was caught");
        let json = post_json(
            &server,
            serde_json::json!({"email": "robot2@example.org", "website": "x"}),
        )
        .await;
        assert_eq!(json.status, 200);
        wait_for_mails(&server, "human@example.org", 1).await;
        assert!(subscriber(&server, "robot@example.org").await.is_none());
        assert!(subscriber(&server, "robot2@example.org").await.is_none());
        assert!(mails_to(&server, "robot@example.org").is_empty());
        assert_eq!(count(&server, "SELECT COUNT(*) FROM notices").await, 1);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn a_relay_outage_delays_the_confirmation_and_loses_nothing(backend: Backend) {
        let server = start(backend).await;
        let smtp = relay(&server);
        smtp.set_faults(Faults::new().with(Fault::reply(
            Stage::Connect,
            554,
            "5.3.2 not accepting mail now",
        )));
        let email = "patient@example.org";
        let a = post_json(&server, serde_json::json!({"email": email})).await;
        assert_eq!(
            a.status, 200,
            "accepted while the relay is down: {}",
            a.body
        );
        let tried = eventually(MAIL_WAIT, || async { smtp.connections() >= 2 }).await;
        assert!(tried, "the worker tried the relay");
        let id = subscriber(&server, email).await.unwrap().id;
        let notice = &server.app.store.notices_of(id).await.unwrap()[0];
        assert_eq!(
            notice.attempts, 0,
            "a relay outage does not count: {notice:?}"
        );
        assert!(
            ["queued", "sending"].contains(&notice.status.as_str()),
            "{notice:?}"
        );
        assert!(mails_to(&server, email).is_empty());

        smtp.clear_faults();
        let mails = wait_for_mails(&server, email, 1).await;
        assert_eq!(mails.len(), 1);
        let sent = eventually(MAIL_WAIT, || async {
            server.app.store.notices_of(id).await.unwrap()[0].status == "sent"
        })
        .await;
        assert!(sent, "the notice is marked sent");
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn a_busy_relay_gets_the_confirmation_on_retry(backend: Backend) {
        let server = start(backend).await;
        relay(&server).set_faults(
            Faults::new().with(Fault::reply(Stage::DataEnd, 451, "4.3.0 try later").times(1)),
        );
        let email = "retry@example.org";
        assert_eq!(post_form(&server, &[("email", email)]).await.status, 200);
        wait_for_mails(&server, email, 1).await;
        let id = subscriber(&server, email).await.unwrap().id;
        let done = eventually(MAIL_WAIT, || async {
            let n = &server.app.store.notices_of(id).await.unwrap()[0];
            n.status == "sent" && n.attempts == 2
        })
        .await;
        assert!(done, "{:?}", server.app.store.notices_of(id).await.unwrap());
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn changed_expired_and_wrong_purpose_links_are_refused_kindly(backend: Backend) {
        let server = start(backend).await;
        let email = "links@example.org";
        assert_eq!(post_form(&server, &[("email", email)]).await.status, 200);
        let mails = wait_for_mails(&server, email, 1).await;
        let (text, _) = parts(&mails[0]);
        let confirm_url = link(&text, &server, "confirm");
        let id = subscriber(&server, email).await.unwrap().id;

        // One character changed.
        let mut chars: Vec<char> = confirm_url.chars().collect();
        let i = chars.len() - 3;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        let a = get(&tampered).await;
        assert_eq!(a.status, 400);
        assert!(a.body.contains("This link does not work"), "{}", a.body);

        // Expired a minute ago, signed with the server's own key.
        let past = chrono::Utc::now().timestamp() - 60;
        let expired = key(&server).sign(Purpose::Confirm, id, Some(past));
        let a = get(&server.url(&format!("/confirm/{expired}"))).await;
        assert_eq!(a.status, 410);
        assert!(a.body.contains("expired"), "{}", a.body);
        assert!(a.body.contains("Sign up again"), "{}", a.body);

        // An unsubscribe token is not a confirmation token.
        let unsubscribe = key(&server).sign(Purpose::Unsubscribe, id, None);
        assert_eq!(
            get(&server.url(&format!("/confirm/{unsubscribe}")))
                .await
                .status,
            400
        );
        assert_eq!(status(&server, email).await, SubscriberStatus::Pending);

        // The same refusals when the button is pressed.
        assert_eq!(post(&tampered).await.status, 400);
        assert_eq!(
            post(&server.url(&format!("/confirm/{expired}")))
                .await
                .status,
            410
        );
        assert_eq!(status(&server, email).await, SubscriberStatus::Pending);

        // The real link works, twice, and the second time changes nothing.
        assert_eq!(post(&confirm_url).await.status, 200);
        let again = post(&confirm_url).await;
        assert_eq!(again.status, 200);
        assert!(again.body.contains("You are subscribed"));
        assert_eq!(
            count(
                &server,
                &format!("SELECT COUNT(*) FROM events WHERE kind = 'confirm' AND subscriber_id = {id}")
            )
            .await,
            1
        );
        assert_eq!(
            count(
                &server,
                &format!(
                    "SELECT COUNT(*) FROM notices WHERE kind = 'welcome' AND subscriber_id = {id}"
                )
            )
            .await,
            1,
            "one welcome mail"
        );

        // After erasure, the link leads to a 410.
        let erasure = herald::domain::ErasureKey::new(&server.app.settings.secret_key().unwrap());
        let address = EmailAddress::parse(email).unwrap();
        server
            .app
            .store
            .erase_subscriber(&address, &erasure.hash(&address), "test")
            .await
            .unwrap();
        for gone in [get(&confirm_url).await, post(&confirm_url).await] {
            assert_eq!(gone.status, 410);
            assert!(gone.body.contains("no longer exists"), "{}", gone.body);
        }
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn names_with_line_breaks_are_refused_and_markup_is_escaped_everywhere(backend: Backend) {
        let server = start(backend).await;
        for name in ["Eve\r\nBcc: victim@example.org", "Eve\nX", "Eve\0"] {
            let a = post_form(&server, &[("email", "eve@example.org"), ("name", name)]).await;
            assert_eq!(a.status, 400, "{name:?}");
            assert!(a.body.contains("The name cannot be used"), "{}", a.body);
            assert!(a.body.contains("aria-describedby=\"name-error\""));
            let j = post_json(
                &server,
                serde_json::json!({"email": "eve@example.org", "name": name}),
            )
            .await;
            assert_eq!(j.status, 400);
            let v: serde_json::Value = serde_json::from_str(&j.body).unwrap();
            assert_eq!(v["error"]["code"], "invalid_name");
        }
        assert!(subscriber(&server, "eve@example.org").await.is_none());

        // A bad address is shown back escaped, with the error tied to the field.
        let a = post_form(&server, &[("email", "<script>alert(1)</script>")]).await;
        assert_eq!(a.status, 400);
        assert!(!a.body.contains("<script>alert(1)"), "{}", a.body);
        assert!(a.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(a.body.contains("aria-describedby=\"email-error\""));
        let j = post_json(&server, serde_json::json!({"email": "nope"})).await;
        assert_eq!(j.status, 400);
        let v: serde_json::Value = serde_json::from_str(&j.body).unwrap();
        assert_eq!(v["error"]["code"], "invalid_email");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email address"));

        // Markup in a name is data: accepted, and escaped in the mail.
        let name = "<script>alert(\"x\")</script> O'Brien & Co";
        let email = "markup@example.org";
        assert_eq!(
            post_form(&server, &[("email", email), ("name", name)])
                .await
                .status,
            200
        );
        let mails = wait_for_mails(&server, email, 1).await;
        let message = mail_parser::MessageParser::default()
            .parse(&mails[0].data)
            .unwrap();
        let to = message.to().unwrap().first().unwrap();
        assert_eq!(to.name(), Some(name), "the display name survives intact");
        assert_eq!(to.address(), Some(email));
        let (text, html) = parts(&mails[0]);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; O&#x27;Brien &amp; Co")
        );
        assert!(text.contains(&format!("Hello {name},")), "{text}");
        // The raw header block has exactly one To and no smuggled Bcc.
        let head = mails[0].text();
        let head = head.split("\r\n\r\n").next().unwrap();
        assert_eq!(
            head.matches("\r\nTo:").count() + usize::from(head.starts_with("To:")),
            1
        );
        assert!(!head.contains("Bcc"));
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn the_unsubscribe_page_offers_to_resubscribe(backend: Backend) {
        let server = start(backend).await;
        let email = "back@example.org";
        add_subscribers(&server.app.store, &[email.to_string()]).await;
        let id = subscriber(&server, email).await.unwrap().id;
        let token = key(&server).sign(Purpose::Unsubscribe, id, None);
        let one_click = client()
            .post(server.url(&format!("/unsubscribe/{token}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(one_click.status(), 200);
        let page = one_click.text().await.unwrap();
        let action = format!("{}/resubscribe/{token}", server.base);
        assert!(page.contains(&format!("action=\"{action}\"")), "{page}");
        assert_eq!(status(&server, email).await, SubscriberStatus::Unsubscribed);
        // The GET page of an unsubscribed reader offers the same.
        let shown = get(&server.url(&format!("/unsubscribe/{token}"))).await;
        assert!(shown.body.contains(&action));

        // Resubscribing is a new double opt-in: a confirmation mail, and nothing sent to the
        // reader until it is confirmed.
        let back = post(&action).await;
        assert_eq!(back.status, 200, "{}", back.body);
        assert!(
            back.body.contains("Please check your inbox"),
            "{}",
            back.body
        );
        assert_ne!(status(&server, email).await, SubscriberStatus::Active);
        let last = |column: &str| {
            format!(
                "SELECT CAST({column} AS TEXT) FROM events WHERE subscriber_id = $1 \
                 ORDER BY id DESC LIMIT 1"
            )
        };
        let ip = text(&server, &last("ip"), &[Arg::Int(id)]).await;
        assert_eq!(ip.as_deref(), Some("127.0.0.1"));
        let detail = text(&server, &last("detail"), &[Arg::Int(id)]).await.unwrap();
        assert!(detail.contains("resubscribe"), "{detail}");
        let mails = wait_for_mails(&server, email, 1).await;
        assert!(subject(&mails[0]).starts_with("Confirm your subscription"));
        let (text, _) = parts(&mails[0]);
        let confirm_url = link(&text, &server, "confirm");
        // Again: harmless, and no second mail within ten minutes.
        assert_eq!(post(&action).await.status, 200);
        assert_ne!(status(&server, email).await, SubscriberStatus::Active);
        // Confirming from the mail brings the reader back.
        assert_eq!(post(&confirm_url).await.status, 200);
        assert_eq!(status(&server, email).await, SubscriberStatus::Active);
        assert_eq!(
            count(
                &server,
                &format!(
                    "SELECT COUNT(*) FROM notices WHERE kind = 'confirm' AND subscriber_id = {id} \
                     AND status <> 'skipped'"
                )
            )
            .await,
            1,
            "one confirmation mail"
        );
        let forged = format!("{}/resubscribe/{}x", server.base, &token.as_str()[1..]);
        assert_eq!(post(&forged).await.status, 400);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn a_link_scanner_opening_the_confirmation_link_confirms_nothing(backend: Backend) {
        let server = start(backend).await;
        let email = "scanned@example.org";
        assert_eq!(post_form(&server, &[("email", email)]).await.status, 200);
        let mails = wait_for_mails(&server, email, 1).await;
        let (text, _) = parts(&mails[0]);
        let confirm_url = link(&text, &server, "confirm");
        let id = subscriber(&server, email).await.unwrap().id;

        // A scanner fetches the link, again and again, and follows nothing it is not shown.
        for _ in 0..3 {
            let page = get(&confirm_url).await;
            assert_eq!(page.status, 200, "{}", page.body);
            assert_eq!(page.cache_control.as_deref(), Some("no-store"));
            // One button posting back to the same URL, and no script to press it.
            assert_eq!(page.body.matches("<form").count(), 1, "{}", page.body);
            assert!(
                page.body.contains("<form method=\"post\">"),
                "{}",
                page.body
            );
            assert!(page
                .body
                .contains("<button type=\"submit\">Confirm my subscription</button>"));
            assert!(!page.body.contains("<script"), "{}", page.body);
        }
        let head = client().head(&confirm_url).send().await.unwrap();
        assert!(head.status().is_success(), "{}", head.status());
        assert_eq!(status(&server, email).await, SubscriberStatus::Pending);
        let confirms =
            format!("SELECT COUNT(*) FROM events WHERE kind = 'confirm' AND subscriber_id = {id}");
        assert_eq!(count(&server, &confirms).await, 0);
        assert_eq!(
            count(
                &server,
                "SELECT COUNT(*) FROM notices WHERE kind = 'welcome'"
            )
            .await,
            0
        );

        // The reader presses the button.
        let done = post(&confirm_url).await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert!(done.body.contains("You are subscribed"), "{}", done.body);
        assert_eq!(status(&server, email).await, SubscriberStatus::Active);
        assert_eq!(count(&server, &confirms).await, 1);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn the_form_page_is_accessible_and_carries_the_consent_wording(backend: Backend) {
        let server = start_with(backend, |s| {
            s.newsletter.consent = Some("Yes, send me <b>Herald</b> & nothing else.".into());
        })
        .await;
        let page = get(&server.url("/")).await;
        assert_eq!(page.status, 200);
        let body = &page.body;
        assert!(body.contains("<label for=\"email\">"));
        assert!(body.contains("<label for=\"name\">"));
        assert!(body.contains("Yes, send me &lt;b&gt;Herald&lt;/b&gt; &amp; nothing else."));
        // The honeypot: hidden from people and screen readers, skipped by the keyboard.
        let honeypot = regex::Regex::new(
            r#"<div class="hp" aria-hidden="true">\s*<label for="website">[^<]*</label>\s*<input id="website" name="website" type="text" tabindex="-1" autocomplete="off">"#,
        )
        .unwrap();
        assert!(honeypot.is_match(body), "{body}");
        assert!(!body.contains("<script"));
        // Unsupported bodies get a 415, not a guess.
        let odd = answer(
            client()
                .post(server.url("/subscribe"))
                .header("content-type", "text/plain")
                .body("email=a@example.org")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(odd.status, 415);
        server.stop().await.unwrap();
    }
}

fn new_signup(email: &str) -> herald::store::NewSignup {
    herald::store::NewSignup {
        email: EmailAddress::parse(email).unwrap(),
        name: None,
        consent: "consent".into(),
        ip: Some("192.0.2.9".into()),
        user_agent: None,
        via: "json",
    }
}

on_both_backends! {
    async fn a_group_of_sign_ups_follows_the_same_rules_as_single_ones(backend: Backend) {
        use herald::store::SignupOutcome;
        let server = start(backend).await;
        let store = &server.app.store;
        add_subscribers(store, &["active@example.org".to_string()]).await;
        let now = chrono::Utc::now().timestamp();
        let first = store
            .record_signups(&[new_signup("pending@example.org")], now)
            .await
            .unwrap();
        assert!(matches!(first[0], SignupOutcome::Queued { .. }));

        // New, pending (mail queued a moment ago), new, active: in one group.
        let group: Vec<_> = [
            "a@example.org",
            "Pending@Example.org",
            "b@example.org",
            "active@example.org",
        ]
        .iter()
        .map(|e| new_signup(e))
        .collect();
        let outcomes = store.record_signups(&group, now).await.unwrap();
        assert!(matches!(outcomes[0], SignupOutcome::Queued { .. }));
        assert!(matches!(outcomes[1], SignupOutcome::Throttled { .. }));
        assert!(matches!(outcomes[2], SignupOutcome::Queued { .. }));
        assert_eq!(outcomes[3], SignupOutcome::Ignored);
        let SignupOutcome::Queued { subscriber_id: a } = outcomes[0] else {
            unreachable!()
        };
        assert_eq!(store.notices_of(a).await.unwrap().len(), 1);
        let subscribe = |column: &str| {
            format!(
                "SELECT CAST({column} AS TEXT) FROM events \
                 WHERE subscriber_id = $1 AND kind = 'subscribe'"
            )
        };
        let detail = text(&server, &subscribe("detail"), &[Arg::Int(a)]).await.unwrap();
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(detail["email"], "a@example.org", "{detail}");
        let ip = text(&server, &subscribe("ip"), &[Arg::Int(a)]).await;
        assert_eq!(ip.as_deref(), Some("192.0.2.9"));

        // The same new address twice in one group: one subscriber, one mail.
        let twice = [new_signup("c@example.org"), new_signup("C@example.org")];
        let outcomes = store.record_signups(&twice, now).await.unwrap();
        assert!(matches!(outcomes[0], SignupOutcome::Queued { .. }));
        assert!(matches!(outcomes[1], SignupOutcome::Throttled { .. }));
        assert_eq!(
            count(
                &server,
                "SELECT COUNT(*) FROM subscribers WHERE email = 'c@example.org'"
            )
            .await,
            1
        );
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn a_notice_left_sending_by_a_crashed_worker_is_sent_once_its_lease_ends(backend: Backend) {
        let server = start(backend).await;
        let smtp = relay(&server);
        smtp.set_faults(Faults::new().with(Fault::reply(Stage::Connect, 554, "5.3.2 down")));
        let email = "crash@example.org";
        assert_eq!(post_form(&server, &[("email", email)]).await.status, 200);
        let id = subscriber(&server, email).await.unwrap().id;
        // As if another herald process had claimed the row and died holding it.
        server
            .raw()
            .await
            .execute(
                "UPDATE notices SET status = 'sending', lease_token = 42, lease_until = $1 \
                 WHERE subscriber_id = $2",
                &[Arg::Int(chrono::Utc::now().timestamp() - 1), Arg::Int(id)],
            )
            .await;
        smtp.clear_faults();
        let mails = wait_for_mails(&server, email, 1).await;
        assert!(subject(&mails[0]).starts_with("Confirm your subscription"));
        let sent = eventually(MAIL_WAIT, || async {
            server.app.store.notices_of(id).await.unwrap()[0].status == "sent"
        })
        .await;
        assert!(sent);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn without_welcome_mjml_a_confirmation_sends_no_welcome_mail(backend: Backend) {
        let templates = tempfile::tempdir().unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for name in ["newsletter.mjml", "confirm.mjml", "confirm.txt"] {
            std::fs::copy(source.join(name), templates.path().join(name)).unwrap();
        }
        let dir = templates.path().to_path_buf();
        let server = start_with(backend, move |s| s.newsletter.templates_dir = dir).await;
        assert!(server.app.notices.welcome.is_none());
        let email = "nowelcome@example.org";
        assert_eq!(post_form(&server, &[("email", email)]).await.status, 200);
        let mails = wait_for_mails(&server, email, 1).await;
        let (text, _) = parts(&mails[0]);
        assert_eq!(post(&link(&text, &server, "confirm")).await.status, 200);
        assert_eq!(status(&server, email).await, SubscriberStatus::Active);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(mails_to(&server, email).len(), 1, "no welcome mail");
        assert_eq!(count(&server, "SELECT COUNT(*) FROM notices").await, 1);
        server.stop().await.unwrap();
    }
}

/// Posts a form sign-up with an `X-Forwarded-For` header.
async fn post_form_forwarded(server: &TestServer, email: &str, forwarded_for: &str) -> Answer {
    let response = client()
        .post(server.url("/subscribe"))
        .header("x-forwarded-for", forwarded_for)
        .form(&[("email", email)])
        .send()
        .await
        .unwrap();
    answer(response).await
}

on_both_backends! {
    async fn behind_a_trusted_proxy_each_reader_has_their_own_limit_and_consent_ip(backend: Backend) {
        let server = start_with(backend, |s| {
            s.web.signup_per_ip_per_minute = 2;
            s.web.trusted_proxies = vec!["127.0.0.1".into()];
        })
        .await;
        for i in 0..2 {
            let a = post_form_forwarded(&server, &format!("p{i}@example.org"), "203.0.113.1").await;
            assert_eq!(a.status, 200, "{}", a.body);
        }
        let limited = post_form_forwarded(&server, "p2@example.org", "203.0.113.1").await;
        assert_eq!(limited.status, 429);
        // Another reader behind the same proxy is not held back by the first one.
        let other = post_form_forwarded(&server, "q@example.org", "198.51.100.2, 203.0.113.2").await;
        assert_eq!(other.status, 200, "{}", other.body);
        let id = subscriber(&server, "q@example.org").await.unwrap().id;
        let ip = text(
            &server,
            "SELECT ip FROM events WHERE subscriber_id = $1 AND kind = 'subscribe'",
            &[Arg::Int(id)],
        )
        .await;
        assert_eq!(
            ip.as_deref(),
            Some("203.0.113.2"),
            "the rightmost address the proxy added, not what the client wrote"
        );
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn forwarded_for_from_an_untrusted_peer_is_ignored(backend: Backend) {
        let server = start_with(backend, |s| s.web.signup_per_ip_per_minute = 2).await;
        for i in 0..2 {
            let a = post_form_forwarded(
                &server,
                &format!("f{i}@example.org"),
                &format!("203.0.113.{i}"),
            )
            .await;
            assert_eq!(a.status, 200, "{}", a.body);
        }
        // A forged header does not buy a fresh limit.
        let limited = post_form_forwarded(&server, "f9@example.org", "203.0.113.99").await;
        assert_eq!(limited.status, 429);
        let id = subscriber(&server, "f0@example.org").await.unwrap().id;
        let ip = text(
            &server,
            "SELECT ip FROM events WHERE subscriber_id = $1 AND kind = 'subscribe'",
            &[Arg::Int(id)],
        )
        .await;
        assert_eq!(ip.as_deref(), Some("127.0.0.1"));
        server.stop().await.unwrap();
    }
}
