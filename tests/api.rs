//! The editor API over a real socket: the whole `herald serve` on port 0, spoken to with
//! reqwest. Authorisation, idempotent sends (also concurrent), test copies, progress,
//! retrying failures, the subscriber endpoints, the error shape and the OpenAPI document;
//! on SQLite and on PostgreSQL.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::app::{add_subscribers, addresses, SLUG};
use support::postgres::Backend;
use support::server::{Relay, TestServer};
use support::smtp_server::{Fault, Faults, Stage};

const TOKEN: &str = "test-admin-token-0123456789abcdef";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn api(server: &TestServer, method: Method, path: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, server.url(&format!("/api{path}")))
        .bearer_auth(TOKEN)
}

async fn get_json(server: &TestServer, path: &str) -> (StatusCode, Value) {
    let response = api(server, Method::GET, path).await.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Asserts the API's one error shape and returns the code.
fn error_code(body: &Value) -> String {
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not the error shape: {body}"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
    code.to_string()
}

async fn count(server: &TestServer, sql: &str) -> i64 {
    server.raw().await.scalar(sql, &[]).await
}

async fn send_requests(server: &TestServer) -> i64 {
    count(
        server,
        "SELECT COUNT(*) FROM events WHERE kind = 'send_request'",
    )
    .await
}

async fn send(server: &TestServer, slug: &str, key: &str) -> (StatusCode, String) {
    let response = api(server, Method::POST, &format!("/issues/{slug}/send"))
        .await
        .header("Idempotency-Key", key)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Waits until the issue's status is `sent`; returns it.
async fn wait_until_sent(server: &TestServer, slug: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (status, body) = get_json(server, &format!("/issues/{slug}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] == "sent" {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the issue was not sent in time: {last}");
}

on_both_backends! {
    async fn requests_without_the_bearer_token_are_refused_with_401(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let url = server.url("/api/issues");
        let attempts = [
            client().get(&url),
            client()
                .get(&url)
                .bearer_auth("wrong-token-0123456789abcdef0123"),
            client().get(&url).bearer_auth(&TOKEN[..TOKEN.len() - 1]),
            client().get(&url).basic_auth("admin", Some(TOKEN)),
            client().get(format!("{url}?token={TOKEN}")),
            client().get(format!("{url}?access_token={TOKEN}")),
            client()
                .post(server.url(&format!("/api/issues/{SLUG}/send")))
                .header("Idempotency-Key", "k"),
        ];
        for request in attempts {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await.unwrap();
            assert_eq!(error_code(&body), "unauthorized");
        }
        // Nothing was sent by the refused POST.
        assert_eq!(send_requests(&server).await, 0);
        let (status, _) = get_json(&server, "/issues").await;
        assert_eq!(status, StatusCode::OK);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn too_many_wrong_tokens_lock_the_address_out_for_a_minute(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let url = server.url("/api/issues");
        for attempt in 0..10 {
            let guess = format!("guess-{attempt:02}-0123456789abcdef0123");
            let response = client().get(&url).bearer_auth(guess).send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "attempt {attempt}"
            );
        }
        // The eleventh is refused without being looked at, even with the right token.
        for token in ["guess-10-0123456789abcdef0123", TOKEN] {
            let response = client().get(&url).bearer_auth(token).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            let wait: i64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(error_code(&body), "too_many_attempts");
        }
        // The dashboard's login form shares the count.
        let login = client()
            .post(server.url("/admin/login"))
            .form(&[("token", TOKEN)])
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(login
            .text()
            .await
            .unwrap()
            .contains("Too many wrong tokens"));
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn the_same_idempotency_key_gets_the_same_answer_and_enqueues_once(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Smtp(Faults::new()), |_| {}).await;
        add_subscribers(&server.app.store, &addresses("idem", 5)).await;

        let first = send(&server, SLUG, "key-one").await;
        assert_eq!(first.0, StatusCode::ACCEPTED, "{}", first.1);
        let body: Value = serde_json::from_str(&first.1).unwrap();
        assert_eq!(body["slug"], SLUG);
        // The dispatcher may finish before the answer is written; both are right.
        assert!(
            ["sending", "sent"].contains(&body["status"].as_str().unwrap()),
            "{body}"
        );
        assert_eq!(body["progress"]["total"], 5);
        let second = send(&server, SLUG, "key-one").await;
        assert_eq!(
            second, first,
            "a repeated key answers exactly as the first time"
        );
        assert_eq!(send_requests(&server).await, 1);

        wait_until_sent(&server, SLUG).await;
        let smtp = server.smtp.as_ref().unwrap();
        assert_eq!(smtp.received().len(), 5);
        // Still the first answer after the send finished.
        assert_eq!(send(&server, SLUG, "key-one").await, first);
        assert_eq!(send_requests(&server).await, 1);

        // Another key asks again: the ledger is idempotent, so nothing is sent twice.
        let other = send(&server, SLUG, "key-two").await;
        assert_eq!(other.0, StatusCode::ACCEPTED);
        assert_eq!(send_requests(&server).await, 2);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(smtp.received().len(), 5);
        assert_eq!(
            count(&server, "SELECT COUNT(*) FROM deliveries").await,
            5,
            "delivery rows were written once"
        );

        // The same key for another issue is refused.
        std::fs::copy(
            server.issues_dir().join(format!("{SLUG}.md")),
            server.issues_dir().join("2026-12-04-second.md"),
        )
        .unwrap();
        let (status, text) = send(&server, "2026-12-04-second", "key-one").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error_code(&body), "idempotency_key_reused");
        assert_eq!(send_requests(&server).await, 2);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn concurrent_requests_with_one_key_enqueue_once(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        add_subscribers(&server.app.store, &addresses("race", 20)).await;
        let requests = (0..4).map(|_| send(&server, SLUG, "same-key"));
        let answers = futures::future::join_all(requests).await;
        assert_eq!(answers[0].0, StatusCode::ACCEPTED, "{}", answers[0].1);
        for answer in &answers[1..] {
            assert_eq!(answer, &answers[0]);
        }
        assert_eq!(send_requests(&server).await, 1);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn an_idempotency_key_survives_a_restart(backend: Backend) {
        let keep = tempfile::tempdir().unwrap();
        let db = backend.database_url(keep.path()).await;
        let first_db = db.clone();
        let first = TestServer::start_on(backend, Relay::Outbox, |s| s.database.url = first_db).await;
        let answer = send(&first, SLUG, "restart-key").await;
        assert_eq!(answer.0, StatusCode::ACCEPTED);
        first.stop().await.unwrap();

        let second = TestServer::start_on(backend, Relay::Outbox, |s| s.database.url = db).await;
        assert_eq!(send(&second, SLUG, "restart-key").await, answer);
        assert_eq!(send_requests(&second).await, 1);
        second.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn send_needs_a_key_and_a_known_issue(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let response = api(&server, Method::POST, &format!("/issues/{SLUG}/send"))
            .await
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "bad_request");
        let (status, text) = send(&server, "no-such-issue", "k404").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            error_code(&serde_json::from_str(&text).unwrap()),
            "not_found"
        );
        assert_eq!(send_requests(&server).await, 0);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn a_draft_is_refused_unless_forced_and_shown_as_a_draft(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        add_subscribers(&server.app.store, &addresses("reader", 2)).await;
        std::fs::write(
            server.issues_dir().join("demo.md"),
            "---\ntitle: Demo\ndate: 2026-01-02\ndraft: true\n---\n\nNot yet.\n",
        )
        .unwrap();
        let (_, issue) = get_json(&server, "/issues/demo").await;
        assert_eq!(issue["status"], "draft");
        assert_eq!(issue["draft"], true);

        let (status, text) = send(&server, "demo", "draft-1").await;
        assert_eq!(status, StatusCode::CONFLICT, "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error_code(&body), "draft");
        assert_eq!(
            body["error"]["message"],
            "demo is a draft (draft: true in its front matter): remove that line to send it, \
             or add ?force=true to send it anyway"
        );
        assert_eq!(send_requests(&server).await, 0);

        let forced = api(&server, Method::POST, "/issues/demo/send?force=true")
            .await
            .header("Idempotency-Key", "draft-2")
            .send()
            .await
            .unwrap();
        assert_eq!(forced.status(), StatusCode::ACCEPTED);
        let body: Value = forced.json().await.unwrap();
        assert_eq!(
            body["counts"]["queued"].as_u64().unwrap()
                + body["counts"]["sent"].as_u64().unwrap()
                + body["counts"]["sending"].as_u64().unwrap(),
            2,
            "{body}"
        );
        assert_eq!(body["draft"], true);
        assert_eq!(send_requests(&server).await, 1);

        let bad = api(&server, Method::POST, "/issues/demo/send?force=maybe")
            .await
            .header("Idempotency-Key", "draft-3")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        server.stop().await.unwrap();
    }
}

/// An issue whose picture is not in `assets_dir`: `herald check` finds an error in it.
const BROKEN_ISSUE: &str =
    "---\ntitle: Broken\ndate: 2026-01-02\ndescription: One picture too few.\n---\n\n\
     Words first.\n\n![The chart of the week](img/missing-chart.png)\n";

on_both_backends! {
    async fn an_issue_with_a_check_error_is_refused_with_422_naming_the_finding(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        add_subscribers(&server.app.store, &addresses("reader", 2)).await;
        std::fs::write(server.issues_dir().join("broken.md"), BROKEN_ISSUE).unwrap();

        for (key, query) in [("broken-1", ""), ("broken-2", "?force=true")] {
            let response = api(&server, Method::POST, &format!("/issues/broken/send{query}"))
                .await
                .header("Idempotency-Key", key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let body: Value = response.json().await.unwrap();
            assert_eq!(error_code(&body), "check_failed", "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("broken.md:9:1: asset-missing:")
                    && message.contains("img/missing-chart.png"),
                "{message}"
            );
        }
        assert_eq!(send_requests(&server).await, 0);
        assert_eq!(count(&server, "SELECT COUNT(*) FROM deliveries").await, 0);

        // Once the picture is there, the same request sends it.
        let images = server.assets_dir().join("img");
        std::fs::create_dir_all(&images).unwrap();
        std::fs::write(images.join("missing-chart.png"), b"\x89PNG\r\n").unwrap();
        let (status, text) = send(&server, "broken", "broken-3").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{text}");
        assert_eq!(send_requests(&server).await, 1);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn a_test_copy_reaches_the_relay_and_records_nothing(backend: Backend) {
        let faults = Faults::new().with(
            Fault::reply(Stage::Rcpt, 550, "5.7.1 refused by policy")
                .for_addresses_containing("refuse"),
        );
        let server = TestServer::start_on(backend, Relay::Smtp(faults), |_| {}).await;
        add_subscribers(&server.app.store, &addresses("listed", 3)).await;
        let response = api(&server, Method::POST, &format!("/issues/{SLUG}/test"))
            .await
            .json(&json!({ "to": "editor@example.net" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert!(body["reply"].as_str().unwrap().starts_with("250"), "{body}");
        assert_eq!(body["to"], "e***@example.net");

        let smtp = server.smtp.as_ref().unwrap();
        assert!(smtp.wait_for(1, Duration::from_secs(10)).await);
        let received = smtp.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].rcpt_to, vec!["editor@example.net".to_string()]);
        assert_eq!(count(&server, "SELECT COUNT(*) FROM deliveries").await, 0);
        assert_eq!(count(&server, "SELECT COUNT(*) FROM issues").await, 0);
        let (_, status) = get_json(&server, &format!("/issues/{SLUG}")).await;
        assert_eq!(status["status"], "unsent");

        let bad = api(&server, Method::POST, &format!("/issues/{SLUG}/test"))
            .await
            .json(&json!({ "to": "not an address" }))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(&bad.json().await.unwrap()), "bad_request");

        let refused = api(&server, Method::POST, &format!("/issues/{SLUG}/test"))
            .await
            .json(&json!({ "to": "refuse@example.net" }))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(error_code(&body), "bad_gateway");
        assert!(body["error"]["message"].as_str().unwrap().contains("550"));
        assert_eq!(smtp.received().len(), 1);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn issue_status_shows_progress_up_to_100_percent(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Smtp(Faults::new()), |_| {}).await;
        add_subscribers(&server.app.store, &addresses("progress", 30)).await;

        let (status, list) = get_json(&server, "/issues").await;
        assert_eq!(status, StatusCode::OK);
        let issues = list["issues"].as_array().unwrap();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0]["slug"], SLUG);
        assert_eq!(issues[0]["status"], "unsent");
        assert_eq!(
            issues[0]["title"],
            "Welcome to herald: one binary, every Friday"
        );
        assert_eq!(issues[0]["date"], "2026-11-27T09:00:00+01:00");
        assert_eq!(issues[0]["progress"]["percent"], 0);

        assert_eq!(
            send(&server, SLUG, "progress").await.0,
            StatusCode::ACCEPTED
        );
        let done = wait_until_sent(&server, SLUG).await;
        assert_eq!(
            done["progress"],
            json!({ "done": 30, "total": 30, "percent": 100 })
        );
        assert_eq!(done["counts"]["sent"], 30);
        assert_eq!(done["counts"]["failed"], 0);
        let started = done["started_at"].as_str().unwrap();
        let finished = done["finished_at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(started).is_ok());
        assert!(chrono::DateTime::parse_from_rfc3339(finished).is_ok());
        assert!(started <= finished);

        let (_, list) = get_json(&server, "/issues").await;
        assert_eq!(list["issues"][0]["status"], "sent");
        let (status, body) = get_json(&server, "/issues/no-such-issue").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error_code(&body), "not_found");
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn retry_failed_requeues_only_the_failures_that_were_not_permanent(backend: Backend) {
        // "soft" recipients get 4xx until they run out of attempts; "hard" ones get a 5xx.
        let faults = Faults::new()
            .with(
                Fault::reply(Stage::Rcpt, 451, "4.3.0 try again later")
                    .for_addresses_containing("soft"),
            )
            .with(
                Fault::reply(Stage::Rcpt, 554, "5.7.1 rejected by policy")
                    .for_addresses_containing("hard"),
            );
        let server = TestServer::start_on(backend, Relay::Smtp(faults), |s| {
            s.sending.max_attempts = 2;
        })
        .await;
        let store = &server.app.store;
        add_subscribers(store, &addresses("ok", 4)).await;
        add_subscribers(store, &addresses("soft", 3)).await;
        add_subscribers(store, &addresses("hard", 2)).await;

        assert_eq!(send(&server, SLUG, "retry").await.0, StatusCode::ACCEPTED);
        let done = wait_until_sent(&server, SLUG).await;
        assert_eq!(done["counts"]["sent"], 4, "{done}");
        assert_eq!(done["counts"]["failed"], 5, "{done}");
        assert_eq!(
            count(
                &server,
                "SELECT COUNT(*) FROM deliveries WHERE permanent"
            )
            .await,
            2
        );

        // The relay recovers; retrying requeues the three soft failures only.
        server.smtp.as_ref().unwrap().clear_faults();
        let response = api(
            &server,
            Method::POST,
            &format!("/issues/{SLUG}/retry-failed"),
        )
        .await
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["requeued"], 3, "{body}");
        let done = wait_until_sent(&server, SLUG).await;
        assert_eq!(done["counts"]["sent"], 7, "{done}");
        assert_eq!(done["counts"]["failed"], 2, "{done}");
        let smtp = server.smtp.as_ref().unwrap();
        for soft in addresses("soft", 3) {
            assert_eq!(support::app::copies_in(&smtp.received(), &soft).len(), 1);
        }
        for hard in addresses("hard", 2) {
            assert!(support::app::copies_in(&smtp.received(), &hard).is_empty());
        }

        // Nothing is left to retry.
        let again = api(
            &server,
            Method::POST,
            &format!("/issues/{SLUG}/retry-failed"),
        )
        .await
        .send()
        .await
        .unwrap();
        let body: Value = again.json().await.unwrap();
        assert_eq!(body["requeued"], 0);
        assert_eq!(body["issue"]["status"], "sent");
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn subscribers_can_be_searched_paged_added_erased_and_imported(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        add_subscribers(&server.app.store, &addresses("page", 25)).await;

        let (status, page) = get_json(&server, "/subscribers?per_page=10&page=3").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total"], 25);
        let rows = page["subscribers"].as_array().unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0]["email"], "page20@example.com");

        let added = api(&server, Method::POST, "/subscribers")
            .await
            .json(&json!({ "email": "Ada@Example.org", "name": "Ada Lovelace" }))
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), StatusCode::CREATED);
        let duplicate = api(&server, Method::POST, "/subscribers")
            .await
            .json(&json!({ "email": "ada@example.org" }))
            .send()
            .await
            .unwrap();
        assert_eq!(duplicate.status(), StatusCode::CONFLICT);
        assert_eq!(error_code(&duplicate.json().await.unwrap()), "conflict");
        for bad in [
            json!({ "email": "nope" }),
            json!({ "email": "a@b.org", "status": "vip" }),
        ] {
            let response = api(&server, Method::POST, "/subscribers")
                .await
                .json(&bad)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        }

        // Search by name and by address, any letter case; wildcards are literal.
        let (_, found) = get_json(&server, "/subscribers?q=lovelace").await;
        assert_eq!(found["total"], 1);
        assert_eq!(found["subscribers"][0]["email"], "Ada@example.org");
        assert_eq!(found["subscribers"][0]["name"], "Ada Lovelace");
        let (_, found) = get_json(&server, "/subscribers?q=PAGE1").await;
        assert_eq!(found["total"], 11);
        let (_, found) = get_json(&server, "/subscribers?q=%25").await;
        assert_eq!(found["total"], 0);
        let (_, found) = get_json(&server, "/subscribers?status=pending").await;
        assert_eq!(found["total"], 0);
        let (status, _) = get_json(&server, "/subscribers?status=vip").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Erasure, then the address cannot come back.
        let erased = api(&server, Method::DELETE, "/subscribers/ada@example.org")
            .await
            .send()
            .await
            .unwrap();
        assert_eq!(erased.status(), StatusCode::NO_CONTENT);
        let (_, found) = get_json(&server, "/subscribers?q=lovelace").await;
        assert_eq!(found["total"], 0);
        let again = api(&server, Method::DELETE, "/subscribers/ada@example.org")
            .await
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_FOUND);

        // Import: far over the 16 KiB JSON limit, with rejected lines reported.
        let mut csv = String::from("email,name,city\n");
        for i in 0..5_000 {
            csv.push_str(&format!("bulk{i}@example.net,Reader {i},Lyon\n"));
        }
        csv.push_str("not-an-address,Broken,Paris\n");
        csv.push_str("ada@example.org,Ada again,London\n");
        csv.push_str("page0@example.com,Dup,Rome\n");
        let response = api(&server, Method::POST, "/subscribers/import")
            .await
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let report: Value = response.json().await.unwrap();
        assert_eq!(report["imported"], 5_000, "{report}");
        assert_eq!(report["duplicates"], 1, "{report}");
        assert_eq!(report["rejected"], 2, "{report}");
        let lines: Vec<u64> = report["rejections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, vec![5_002, 5_003]);
        let (_, all) = get_json(&server, "/subscribers?per_page=1").await;
        assert_eq!(all["total"], 5_025);

        let wrong_type = api(&server, Method::POST, "/subscribers/import")
            .await
            .json(&json!({ "email": "x@example.org" }))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn every_api_error_has_the_same_json_shape(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
            (
                api(&server, Method::POST, "/subscribers")
                    .await
                    .header("content-type", "application/json")
                    .body("{\"email\": "),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                api(&server, Method::POST, "/subscribers")
                    .await
                    .json(&json!({ "email": "a@b.org", "unknown": 1 })),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                client().get(server.url("/api/issues")),
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            ),
            (
                api(&server, Method::GET, "/no/such/route").await,
                StatusCode::NOT_FOUND,
                "no_route",
            ),
            (
                api(&server, Method::GET, "/issues/missing").await,
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                api(&server, Method::DELETE, "/issues").await,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            ),
            (
                api(&server, Method::POST, "/subscribers")
                    .await
                    .header("content-type", "application/json")
                    .body(format!("{{\"email\": \"{}\"}}", "a".repeat(20_000))),
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
        ];
        for (request, status, code) in cases {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), status, "{code}");
            assert!(response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"));
            let body: Value = response.json().await.unwrap();
            assert_eq!(error_code(&body), code, "{body}");
        }
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    /// Every route the API router serves is in the OpenAPI document, and every operation of the
    /// document is served: paths come from the table that builds the router, methods are probed.
    async fn the_openapi_document_describes_exactly_the_served_routes(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let (status, doc) = get_json(&server, "/openapi.json").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert_eq!(doc["security"][0]["bearer"], json!([]));

        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(|m| (m.to_uppercase(), path.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let documented_paths: BTreeSet<String> = documented.iter().map(|(_, p)| p.clone()).collect();
        let served_paths: BTreeSet<String> = herald::web::api::route_paths()
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(served_paths, documented_paths);

        let mut served = BTreeSet::new();
        for path in &served_paths {
            let concrete = path
                .replace("{slug}", "probe-issue")
                .replace("{email}", "probe@example.invalid");
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let response = api(
                    &server,
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &concrete,
                )
                .await
                .send()
                .await
                .unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    assert_eq!(error_code(&body), "method_not_allowed");
                    continue;
                }
                assert_ne!(body["error"]["code"], "no_route", "{method} {path}");
                served.insert((method.to_string(), path.clone()));
            }
        }
        assert_eq!(served, documented);
        for (_, item) in doc["paths"].as_object().unwrap() {
            for (_, operation) in item.as_object().unwrap() {
                assert!(operation["responses"].as_object().unwrap().len() >= 2);
                assert!(operation["operationId"].is_string());
            }
        }
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    /// The document states the server's bounds and answers, so a client that keeps to the
    /// document is never refused for it: the highest page, the statuses of a body that is not
    /// JSON, and an import file without an `email` column.
    async fn the_openapi_document_states_the_servers_bounds_and_answers(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let (_, doc) = get_json(&server, "/openapi.json").await;
        let search = &doc["paths"]["/subscribers"]["get"]["parameters"];
        let bound = |name: &str, key: &str| {
            search
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .and_then(|p| p["schema"][key].as_u64())
                .unwrap_or_else(|| panic!("no {key} for {name}"))
        };
        assert_eq!(bound("page", "maximum"), herald::editor::MAX_PAGE);
        assert_eq!(
            bound("per_page", "maximum"),
            u64::from(herald::editor::MAX_PER_PAGE)
        );
        let max = herald::editor::MAX_PAGE;
        let (status, body) = get_json(&server, &format!("/subscribers?page={max}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["subscribers"], json!([]));
        for page in [max + 1, u64::MAX] {
            let (status, body) = get_json(&server, &format!("/subscribers?page={page}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(error_code(&body), "bad_request");
        }

        // A body that is not JSON: 415, and the document says so.
        let response = api(&server, Method::POST, "/subscribers")
            .await
            .body("email=a@example.org")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        for (path, method) in [("/subscribers", "post"), ("/issues/{slug}/test", "post")] {
            let responses = &doc["paths"][path][method]["responses"];
            for status in ["400", "413", "415"] {
                assert!(
                    responses[status].is_object(),
                    "{method} {path} lacks {status}"
                );
            }
        }

        // An empty file, or one without an email column, is refused whole; the document's pattern
        // refuses both too.
        let pattern = doc["paths"]["/subscribers/import"]["post"]["requestBody"]["content"]["text/csv"]
            ["schema"]["pattern"]
            .as_str()
            .unwrap();
        let pattern = regex::Regex::new(pattern).unwrap();
        for csv in ["", "name,city\nAda,London\n"] {
            assert!(!pattern.is_match(csv), "{csv:?}");
            let response = api(&server, Method::POST, "/subscribers/import")
                .await
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{csv:?}");
        }
        let csv = "Name,EMAIL\nAda,ada@example.org\n";
        assert!(pattern.is_match(csv));
        let response = api(&server, Method::POST, "/subscribers/import")
            .await
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        server.stop().await.unwrap();
    }
}

/// Kills the `herald serve` child when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SQLite only: herald on its defaults, which are a SQLite file in the working directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_serve_on_the_defaults_creates_an_admin_token_file_and_names_it() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("issues")).unwrap();
    std::fs::copy(
        support::app::ISSUE,
        dir.path().join("issues").join(format!("{SLUG}.md")),
    )
    .unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .arg("serve")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (var, _) in std::env::vars().filter(|(v, _)| v.starts_with("HERALD__")) {
        command.env_remove(var);
    }
    command.env("HERALD__WEB__BIND", "127.0.0.1:0");
    // Debug logging on, to show that even then no token or address reaches the log.
    command.env("HERALD_LOG", "debug");
    let mut child = Child(command.spawn().unwrap());
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let base = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("herald serve did not start: {lines:?}"));
        lines.push(line.clone());
        if let Some(url) = line.strip_prefix("herald: serving on ") {
            break url.to_string();
        }
    };
    let token_file = dir.path().join("herald.admin-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(token.trim().len() >= 24);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("admin token") && l.contains("herald.admin-token")),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains(token.trim())),
        "the token itself is never printed: {lines:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let response = client()
        .get(format!("{base}/api/issues"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issues"][0]["slug"], SLUG);
    let refused = client()
        .get(format!("{base}/api/issues"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // Paths carry addresses and tokens; the request log names routes instead.
    let address = "logged.reader@example.net";
    let added = client()
        .post(format!("{base}/api/subscribers"))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({ "email": address }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let erased = client()
        .delete(format!("{base}/api/subscribers/{address}"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    let secret_looking = "NotARealTokenButSecretLooking123";
    let _ = client()
        .get(format!("{base}/unsubscribe/{secret_looking}"))
        .send()
        .await
        .unwrap();

    // SIGTERM: a graceful stop with exit status 0.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "herald serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "herald serve exited with {status}");
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        lines.push(line);
    }
    let log = lines.join("\n");
    assert!(log.contains("/api/subscribers/{email}"), "{log}");
    assert!(log.contains("/unsubscribe/{token}"), "{log}");
    for secret in [address, secret_looking, token.trim()] {
        assert!(!log.contains(secret), "{secret} reached the log:\n{log}");
    }
}
