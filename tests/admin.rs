//! The dashboard over a real socket, without a browser: login and its cookie, CSRF
//! protection of every form, and the security headers of the pages and the preview; on
//! SQLite and on PostgreSQL.

mod support;

use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use support::app::{add_subscribers, addresses, SLUG};
use support::postgres::Backend;
use support::server::{Relay, TestServer};
use support::smtp_server::Faults;

const TOKEN: &str = "test-admin-token-0123456789abcdef";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in and returns the `Set-Cookie` header and the `name=value` pair to send back.
async fn login(server: &TestServer) -> (String, String) {
    let response = client()
        .post(server.url("/admin/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/admin");
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let pair = set_cookie.split(';').next().unwrap().trim().to_string();
    (set_cookie, pair)
}

async fn get(server: &TestServer, path: &str, cookie: &str) -> (StatusCode, HeaderMap, String) {
    let response = client()
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

async fn post(
    server: &TestServer,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = client()
        .post(server.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The CSRF token in a page's forms.
fn csrf_in(html: &str) -> String {
    let re = regex::Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap();
    re.captures(html).expect("a form with a CSRF token")[1].to_string()
}

async fn send_requests(server: &TestServer) -> i64 {
    server
        .raw()
        .await
        .scalar(
            "SELECT COUNT(*) FROM events WHERE kind = 'send_request'",
            &[],
        )
        .await
}

on_both_backends! {
    async fn login_sets_a_signed_http_only_strict_cookie(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        add_subscribers(&server.app.store, &addresses("home", 3)).await;

        let (status, headers, _) = get(&server, "/admin", "").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[LOCATION], "/admin/login");
        let (status, _, page) = get(&server, "/admin/login", "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(r#"name="token""#));

        let (set_cookie, pair) = login(&server).await;
        let attributes: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
        assert!(attributes.contains(&"HttpOnly"), "{set_cookie}");
        assert!(attributes.contains(&"SameSite=Strict"), "{set_cookie}");
        assert!(attributes.contains(&"Path=/admin"), "{set_cookie}");
        assert!(!attributes.contains(&"Secure"), "plain http: {set_cookie}");
        assert!(pair.starts_with("herald_admin="));
        assert!(
            !set_cookie.contains(TOKEN),
            "the cookie is not the admin token"
        );

        let (status, _, home) = get(&server, "/admin", &pair).await;
        assert_eq!(status, StatusCode::OK);
        assert!(home.contains("Subscribers"));
        assert!(home.contains("<strong>3</strong> active"), "{home}");
        assert!(home.contains(&format!("/admin/issues/{SLUG}")));

        // Logging out clears the cookie.
        let csrf = csrf_in(&home);
        let response = client()
            .post(server.url("/admin/logout"))
            .header("cookie", &pair)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(response.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
        // A copy of the old cookie no longer works, and its forms are refused.
        let (status, headers, _) = get(&server, "/admin", &pair).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[LOCATION], "/admin/login");
        let (status, _) = post(
            &server,
            &format!("/admin/issues/{SLUG}/send"),
            &pair,
            &[("csrf", csrf.as_str()), ("confirm", "yes")],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(send_requests(&server).await, 0);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn the_cookie_is_secure_when_the_site_is_https(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |s| {
            s.newsletter.base_url = "https://news.example.org/".into();
        })
        .await;
        let (set_cookie, _) = login(&server).await;
        assert!(
            set_cookie.split(';').map(str::trim).any(|a| a == "Secure"),
            "{set_cookie}"
        );
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn a_wrong_token_or_a_forged_cookie_does_not_log_in(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let response = client()
            .post(server.url("/admin/login"))
            .form(&[("token", "wrong-token-0123456789abcdef0123")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get(SET_COOKIE).is_none());
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("That is not the admin token"));

        for forged in [
            format!("herald_admin={TOKEN}"),
            "herald_admin=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        ] {
            let (status, headers, _) = get(&server, "/admin", &forged).await;
            assert_eq!(status, StatusCode::SEE_OTHER);
            assert_eq!(headers[LOCATION], "/admin/login");
        }
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn forms_without_this_sessions_csrf_token_are_refused_and_do_nothing(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Smtp(Faults::new()), |_| {}).await;
        add_subscribers(&server.app.store, &addresses("csrf", 4)).await;
        let (_, mine) = login(&server).await;
        let (_, theirs) = login(&server).await;
        let issue_path = format!("/admin/issues/{SLUG}");
        let my_csrf = csrf_in(&get(&server, &issue_path, &mine).await.2);
        let their_csrf = csrf_in(&get(&server, &issue_path, &theirs).await.2);
        assert_ne!(my_csrf, their_csrf);

        let send = format!("{issue_path}/send");
        let test = format!("{issue_path}/test");
        let (send, test, mine, my_csrf, their_csrf) = (
            send.as_str(),
            test.as_str(),
            mine.as_str(),
            my_csrf.as_str(),
            their_csrf.as_str(),
        );
        // (path, cookie, form fields)
        type Attempt<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
        let refused: Vec<Attempt> = vec![
            (send, mine, vec![("confirm", "yes")]),
            (send, mine, vec![("confirm", "yes"), ("csrf", their_csrf)]),
            (send, mine, vec![("confirm", "yes"), ("csrf", "")]),
            (send, "", vec![("confirm", "yes"), ("csrf", my_csrf)]),
            (test, mine, vec![("to", "editor@example.net")]),
            (
                test,
                mine,
                vec![("to", "editor@example.net"), ("csrf", their_csrf)],
            ),
        ];
        for (path, cookie, form) in refused {
            let (status, page) = post(&server, path, cookie, &form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} {form:?}");
            assert!(page.contains("nothing was done"), "{page}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let smtp = server.smtp.as_ref().unwrap();
        assert_eq!(smtp.received().len(), 0);
        assert_eq!(send_requests(&server).await, 0);

        // Without the confirmation box: nothing is sent either.
        let (status, _) = post(&server, send, mine, &[("csrf", my_csrf)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(send_requests(&server).await, 0);

        // With this session's token and the box ticked, it is sent.
        let (status, _) = post(
            &server,
            send,
            mine,
            &[("csrf", my_csrf), ("confirm", "yes")],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(send_requests(&server).await, 1);
        assert!(smtp.wait_for(4, Duration::from_secs(30)).await);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn dashboard_pages_and_the_preview_carry_their_own_security_headers(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let (_, cookie) = login(&server).await;

        let (status, headers, page) = get(&server, &format!("/admin/issues/{SLUG}"), &cookie).await;
        assert_eq!(status, StatusCode::OK);
        let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("script-src 'none'"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(
            page.contains(&format!(
                r#"<iframe src="/admin/issues/{SLUG}/preview" sandbox="""#
            )),
            "{page}"
        );
        assert!(page.contains(r#"<script src="/admin/static/admin.js" defer></script>"#));
        assert!(!page.contains("<script>"), "no inline script");

        let (status, headers, preview) =
            get(&server, &format!("/admin/issues/{SLUG}/preview"), &cookie).await;
        assert_eq!(status, StatusCode::OK);
        let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
        assert!(csp.contains("sandbox"), "{csp}");
        assert!(!csp.contains("script-src"), "{csp}");
        assert!(preview.contains("Welcome to herald"));
        // Without a session there is no preview.
        let (status, _, _) = get(&server, &format!("/admin/issues/{SLUG}/preview"), "").await;
        assert_eq!(status, StatusCode::SEE_OTHER);

        let (status, headers, script) = get(&server, "/admin/static/admin.js", "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        assert!(script.contains("data-progress-url"));

        // The public pages keep the router-wide policy.
        let (_, headers, _) = get(&server, "/archive", "").await;
        assert_eq!(
            headers[CONTENT_SECURITY_POLICY],
            "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; \
             script-src 'none'; frame-ancestors 'none'"
        );

        // Progress as JSON for the poller, only with a session.
        let (status, _, body) = get(&server, &format!("/admin/issues/{SLUG}/progress"), &cookie).await;
        assert_eq!(status, StatusCode::OK);
        let progress: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(progress["status"], "unsent");
        let (status, _, _) = get(&server, &format!("/admin/issues/{SLUG}/progress"), "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn the_retry_failed_button_requeues_soft_failures(backend: Backend) {
        use support::smtp_server::{Fault, Stage};
        let faults = Faults::new().with(
            Fault::reply(Stage::Rcpt, 451, "4.3.0 try again later").for_addresses_containing("soft"),
        );
        let server = TestServer::start_on(backend, Relay::Smtp(faults), |s| s.sending.max_attempts = 1).await;
        add_subscribers(&server.app.store, &addresses("soft", 3)).await;
        add_subscribers(&server.app.store, &addresses("fine", 2)).await;
        let slug = herald::domain::IssueSlug::parse(SLUG).unwrap();
        server.app.send_now(&slug, "test").await.unwrap();
        let store = server.app.store.clone();
        assert!(
            support::app::eventually(Duration::from_secs(30), || async {
                store.find_issue(SLUG).await.unwrap().unwrap().status == "sent"
            })
            .await
        );
        let (_, cookie) = login(&server).await;
        let issue_path = format!("/admin/issues/{SLUG}");
        let (_, _, page) = get(&server, &issue_path, &cookie).await;
        assert!(page.contains("Retry failed"), "{page}");
        assert!(page.contains(r#"<td data-count="failed">3</td>"#), "{page}");
        let csrf = csrf_in(&page);

        server.smtp.as_ref().unwrap().clear_faults();
        let response = client()
            .post(server.url(&format!("{issue_path}/retry-failed")))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()[LOCATION],
            format!("{issue_path}?notice=requeued").as_str()
        );
        let smtp = server.smtp.as_ref().unwrap();
        assert!(smtp.wait_for(5, Duration::from_secs(30)).await);
        let (_, _, page) = get(&server, &format!("{issue_path}?notice=requeued"), &cookie).await;
        assert!(page.contains("put back in the queue"), "{page}");
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn the_home_page_shows_the_next_scheduled_run_and_what_it_would_send(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |s| {
            s.schedule.cron = "0 0 9 * * Fri".into();
            s.schedule.timezone = "Europe/Berlin".into();
            // No catch-up of last Friday's tick, whatever day the test runs.
            s.schedule.max_lateness_minutes = 0;
            // An issue of this test's own, dated yesterday: due at any coming Friday.
            s.newsletter.issues_dir = s.newsletter.issues_dir.with_file_name("scheduled-issues");
            std::fs::create_dir_all(&s.newsletter.issues_dir).unwrap();
            let yesterday = chrono::Utc::now() - chrono::TimeDelta::days(1);
            std::fs::write(
                s.newsletter.issues_dir.join("ready.md"),
                format!(
                    "---\ntitle: Ready\ndate: {}\n---\n\nReady to go.\n",
                    yesterday.format("%Y-%m-%dT%H:%M:%SZ")
                ),
            )
            .unwrap();
        })
        .await;
        let (cookie, _) = login(&server).await;
        let (status, _, html) = get(&server, "/admin", &cookie).await;
        assert_eq!(status, StatusCode::OK);
        let next = regex::Regex::new(
            r#"Next automatic send: <strong><time datetime="\d{4}-\d\d-\d\dT0[78]:00:00Z" title="[^"]+">Fri \d{1,2} [A-Z][a-z]{2} \d{4}, 09:00 CES?T</time></strong>"#,
        )
        .unwrap();
        assert!(next.is_match(&html), "{html}");
        // The issue has never been sent and its date comes before any coming Friday.
        assert!(
            html.contains("It would send <a href=\"/admin/issues/ready\">"),
            "{html}"
        );
        server.stop().await.unwrap();

        let off = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let (cookie, _) = login(&off).await;
        let (_, _, html) = get(&off, "/admin", &cookie).await;
        assert!(html.contains("The schedule is off"), "{html}");
        off.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn the_dashboard_address_with_a_trailing_slash_leads_to_it(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let response = client().get(server.url("/admin/")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()[LOCATION], "/admin");
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn the_issue_page_names_the_destinations_slowed_down_by_throttling(backend: Backend) {
        use support::smtp_server::{Action, Fault, Reply, Stage};
        // slow.example throttles every delivery; fast.example takes them.
        let faults = Faults::new().with(
            Fault::new(
                Stage::Rcpt,
                Action::Reply(Reply::new(421, "4.7.0 Try again later (rate limited)")),
            )
            .for_addresses_containing("@slow.example"),
        );
        let server = TestServer::start_on(backend, Relay::Smtp(faults), |_| {}).await;
        let emails: Vec<String> = (0..3)
            .flat_map(|i| [format!("r{i}@slow.example"), format!("r{i}@fast.example")])
            .collect();
        add_subscribers(&server.app.store, &emails).await;
        let (_, cookie) = login(&server).await;
        let slug = herald::domain::IssueSlug::parse(SLUG).unwrap();
        server.app.send_now(&slug, "test").await.unwrap();

        // The poller's JSON names the throttled group while the issue is sending.
        let progress_path = format!("/admin/issues/{SLUG}/progress");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(serde_json::Value::Null));
        let named = support::app::eventually(Duration::from_secs(30), || {
            let (server, cookie, path, seen) = (&server, &cookie, &progress_path, seen.clone());
            async move {
                let (_, _, body) = get(server, path, cookie).await;
                let progress: serde_json::Value = serde_json::from_str(&body).unwrap();
                let found = progress["status"] == "sending"
                    && progress["throttled"]
                        .as_array()
                        .is_some_and(|groups| groups.iter().any(|g| g["name"] == "slow.example"));
                *seen.lock().unwrap() = progress;
                found
            }
        })
        .await;
        let last = seen.lock().unwrap().clone();
        assert!(named, "{last}");
        let groups = last["throttled"].as_array().unwrap();
        assert!(
            groups.iter().all(|g| g["name"] == "slow.example"),
            "only the throttling destination is slowed down: {last}"
        );
        assert!(
            groups[0]["rate_per_second"].as_f64().unwrap() > 0.0,
            "{last}"
        );

        // So does the page itself, for a reader without the poller.
        let (_, _, page) = get(&server, &format!("/admin/issues/{SLUG}"), &cookie).await;
        let line = page
            .lines()
            .find(|l| l.contains("data-throttled"))
            .expect("the throttled line");
        assert!(!line.contains(" hidden"), "{line}");
        assert!(line.contains("slow.example"), "{line}");
        assert!(!line.contains("fast.example"), "{line}");

        // And the editor API's status of the issue.
        let status: serde_json::Value = client()
            .get(server.url(&format!("/api/issues/{SLUG}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["status"], "sending", "{status}");
        assert_eq!(status["throttled"][0]["name"], "slow.example", "{status}");
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn the_issue_page_shows_its_findings_and_a_send_with_an_error_is_refused(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        add_subscribers(&server.app.store, &addresses("reader", 2)).await;
        std::fs::write(
            server.issues_dir().join("broken.md"),
            "---\ntitle: Broken\ndate: 2026-01-02\n---\n\nWords first.\n\n\
             ![The chart of the week](img/missing-chart.png)\n",
        )
        .unwrap();
        let (_, cookie) = login(&server).await;

        let (status, _, page) = get(&server, "/admin/issues/broken", &cookie).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(r#"data-check="refused""#), "{page}");
        for rule in ["asset-missing", "description-missing"] {
            assert!(page.contains(&format!(r#"data-rule="{rule}""#)), "{rule}: {page}");
        }
        assert!(page.contains(r#"data-severity="error""#) && page.contains("img/missing-chart.png"));

        let csrf = csrf_in(&page);
        let (status, refused) = post(
            &server,
            "/admin/issues/broken/send",
            &cookie,
            &[("csrf", csrf.as_str()), ("confirm", "yes")],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert!(
            refused.contains("broken was not sent: herald check finds an error in it.")
                && refused.contains("broken.md:8:1: asset-missing:"),
            "{refused}"
        );
        assert_eq!(send_requests(&server).await, 0);

        // The fixture issue is clean of errors: its page says so, and it sends.
        let (_, _, clean) = get(&server, &format!("/admin/issues/{SLUG}"), &cookie).await;
        assert!(!clean.contains(r#"data-check="refused""#), "{clean}");
        assert!(!clean.contains(r#"data-severity="error""#), "{clean}");
        let (status, _) = post(
            &server,
            &format!("/admin/issues/{SLUG}/send"),
            &cookie,
            &[("csrf", csrf.as_str()), ("confirm", "yes")],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(send_requests(&server).await, 1);
        server.stop().await.unwrap();
    }
}
