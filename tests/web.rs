//! The web server over a real socket: herald's router on `127.0.0.1:0` with a throwaway
//! SQLite file, spoken to in raw HTTP/1.1. Unsubscribe links (RFC 8058 one-click), the
//! archive, the feed, and the headers every response carries.

mod support;

use std::path::Path;
use std::sync::Arc;

use herald::domain::{Purpose, SubscriberStatus, TokenKey};
use herald::startup::App;
use herald::web::{self, AppState};
use sqlx::Connection;
use support::app::{add_subscribers, address, db_url, run_app, settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// A running server over a fresh database, outbox and issues folder.
struct Site {
    dir: tempfile::TempDir,
    app: Arc<App>,
    addr: std::net::SocketAddr,
    key: TokenKey,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// One HTTP answer.
struct Answer {
    status: u16,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

const CSP: &str = "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; \
                   script-src 'none'; frame-ancestors 'none'";

impl Site {
    async fn start(subscribers: &[&str]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let issues = dir.path().join("issues");
        std::fs::create_dir_all(&outbox).unwrap();
        std::fs::create_dir_all(&issues).unwrap();
        let mut s = settings(&db_url(dir.path()), &format!("file://{}", outbox.display()));
        s.newsletter.issues_dir = issues;
        s.newsletter.name = "Herald Weekly".into();
        s.newsletter.base_url = "http://127.0.0.1:1/".into();
        let key = TokenKey::new(&s.secret_key().unwrap());
        let app = Arc::new(App::build(s).await.unwrap());
        let emails: Vec<String> = subscribers.iter().map(|e| e.to_string()).collect();
        add_subscribers(&app.store, &emails).await;
        let state = AppState::new(app.clone()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(web::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Site {
            dir,
            app,
            addr,
            key,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Sends one request (`Connection: close`) and reads the whole answer.
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "POST" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        assert!(
            !headers
                .iter()
                .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")),
            "this client reads only fixed-length bodies"
        );
        Answer {
            status,
            headers,
            body: body.to_string(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[], "").await
    }

    /// The RFC 8058 one-click POST, as a mail client sends it.
    async fn one_click(&self, path: &str) -> Answer {
        self.request(
            "POST",
            path,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("User-Agent", "OneClickBot/1.0"),
            ],
            "List-Unsubscribe=One-Click",
        )
        .await
    }

    async fn subscriber_id(&self, email: &str) -> i64 {
        self.app
            .store
            .find_subscriber_by_email(&address(email))
            .await
            .unwrap()
            .unwrap()
            .id
    }

    async fn status(&self, email: &str) -> SubscriberStatus {
        self.app
            .store
            .find_subscriber_by_email(&address(email))
            .await
            .unwrap()
            .unwrap()
            .status
    }

    async fn unsubscribe_path(&self, email: &str) -> String {
        let id = self.subscriber_id(email).await;
        format!(
            "/unsubscribe/{}",
            self.key.sign(Purpose::Unsubscribe, id, None)
        )
    }

    async fn db(&self) -> sqlx::SqliteConnection {
        sqlx::SqliteConnection::connect(&self.app.settings.database.url)
            .await
            .unwrap()
    }

    /// (source, ip, user agent) of each `unsubscribe` event of `email`.
    async fn unsubscribe_events(
        &self,
        email: &str,
    ) -> Vec<(String, Option<String>, Option<String>)> {
        let id = self.subscriber_id(email).await;
        sqlx::query_as(
            "SELECT source, ip, user_agent FROM events WHERE kind = 'unsubscribe' \
             AND subscriber_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut self.db().await)
        .await
        .unwrap()
    }

    /// Writes an issue file and enqueues it; `sent` marks it as sent.
    async fn issue(&self, slug: &str, title: &str, sent: bool) {
        let path = self
            .app
            .settings
            .newsletter
            .issues_dir
            .join(format!("{slug}.md"));
        let quoted = serde_json::to_string(title).unwrap();
        std::fs::write(
            &path,
            format!("---\ntitle: {quoted}\n---\n\nBody of **{slug}**, with a [link](/about).\n"),
        )
        .unwrap();
        let prepared = self.app.prepare(&path).await.unwrap();
        self.app.enqueue(&prepared, "test").await.unwrap();
        let status = if sent { "sent" } else { "draft" };
        sqlx::query("UPDATE issues SET status = ?, finished_at = ? WHERE slug = ?")
            .bind(status)
            .bind(sent.then_some(1_790_000_000_i64))
            .bind(slug)
            .execute(&mut self.db().await)
            .await
            .unwrap();
    }

    /// Stops the server gracefully and waits for it.
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.server.take().unwrap().await.unwrap().unwrap();
    }
}

fn assert_security_headers(answer: &Answer, what: &str) {
    assert_eq!(
        answer.header("content-security-policy"),
        Some(CSP),
        "{what}"
    );
    assert_eq!(
        answer.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        answer.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
}

/// The token with one character changed.
fn tampered(path: &str) -> String {
    let mut chars: Vec<char> = path.chars().collect();
    let i = chars.len() - 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn one_click_post_unsubscribes_at_once_without_redirect_and_is_idempotent() {
    let site = Site::start(&["jane.doe@example.org", "other@example.org"]).await;
    let path = site.unsubscribe_path("jane.doe@example.org").await;

    let first = site.one_click(&path).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("location"), None);
    assert_eq!(first.header("set-cookie"), None);
    assert!(
        first.body.contains("You are unsubscribed"),
        "{}",
        first.body
    );
    assert!(
        first
            .body
            .contains(r#"<a href="http://127.0.0.1:1/">Sign up again</a>"#),
        "a link to sign up again: {}",
        first.body
    );
    assert_eq!(
        site.status("jane.doe@example.org").await,
        SubscriberStatus::Unsubscribed
    );
    let jane = site
        .app
        .store
        .find_subscriber_by_email(&address("jane.doe@example.org"))
        .await
        .unwrap()
        .unwrap();
    assert!(jane.unsubscribed_at.is_some());
    assert_eq!(
        site.unsubscribe_events("jane.doe@example.org").await,
        vec![(
            "web".to_string(),
            Some("127.0.0.1".to_string()),
            Some("OneClickBot/1.0".to_string())
        )]
    );

    let second = site.one_click(&path).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("location"), None);
    assert_eq!(
        site.unsubscribe_events("jane.doe@example.org").await.len(),
        1
    );
    assert_eq!(
        site.status("other@example.org").await,
        SubscriberStatus::Active
    );

    // A client that posts an empty body is served the same way.
    let other = site.unsubscribe_path("other@example.org").await;
    let empty = site.request("POST", &other, &[], "").await;
    assert_eq!(empty.status, 200);
    assert_eq!(
        site.status("other@example.org").await,
        SubscriberStatus::Unsubscribed
    );
    site.stop().await;
}

#[tokio::test]
async fn get_shows_a_one_button_form_with_the_masked_address_only() {
    let site = Site::start(&["jane.doe@example.org"]).await;
    let path = site.unsubscribe_path("jane.doe@example.org").await;
    let page = site.get(&path).await;
    assert_eq!(page.status, 200);
    assert_security_headers(&page, "GET unsubscribe");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(
        page.body.contains("<form method=\"post\">"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("name=\"List-Unsubscribe\" value=\"One-Click\""));
    assert_eq!(page.body.matches("<button").count(), 1);
    assert!(!page.body.contains("<script"));
    assert!(page.body.contains("Herald Weekly"));
    assert!(page.body.contains("j***@example.org"), "{}", page.body);
    assert!(!page.body.contains("jane.doe"), "the full address leaked");
    // Showing the page changes nothing.
    assert_eq!(
        site.status("jane.doe@example.org").await,
        SubscriberStatus::Active
    );
    site.stop().await;
}

#[tokio::test]
async fn tampered_or_wrong_purpose_tokens_are_rejected_and_change_nothing() {
    let site = Site::start(&["jane@example.org"]).await;
    let id = site.subscriber_id("jane@example.org").await;
    let good = site.unsubscribe_path("jane@example.org").await;
    let confirm = format!("/unsubscribe/{}", site.key.sign(Purpose::Confirm, id, None));
    for path in [tampered(&good), confirm, "/unsubscribe/not-a-token".into()] {
        let post = site.one_click(&path).await;
        assert_eq!(post.status, 400, "POST {path}");
        assert!(
            post.body.contains("This link does not work"),
            "{}",
            post.body
        );
        assert_security_headers(&post, "400");
        let get = site.get(&path).await;
        assert_eq!(get.status, 400, "GET {path}");
    }
    assert_eq!(
        site.status("jane@example.org").await,
        SubscriberStatus::Active
    );
    assert!(site.unsubscribe_events("jane@example.org").await.is_empty());
    site.stop().await;
}

#[tokio::test]
async fn test_copy_and_erased_subscriber_links_answer_without_leaking() {
    let site = Site::start(&[]).await;
    let test_copy = format!(
        "/unsubscribe/{}",
        site.key.sign(Purpose::Unsubscribe, 0, None)
    );
    let page = site.get(&test_copy).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("test copy"), "{}", page.body);
    assert_eq!(site.one_click(&test_copy).await.status, 200);

    let gone = format!(
        "/unsubscribe/{}",
        site.key.sign(Purpose::Unsubscribe, 4242, None)
    );
    let page = site.get(&gone).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<form method=\"post\">"));
    assert!(!page.body.contains("***@"));
    let post = site.one_click(&gone).await;
    assert_eq!(post.status, 200);
    assert!(post.body.contains("You are unsubscribed"));
    site.stop().await;
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let site = Site::start(&[]).await;
    site.issue("one", "One", true).await;
    for path in [
        "/health",
        "/archive",
        "/archive/one",
        "/feed.xml",
        "/nope",
        "/unsubscribe/x",
    ] {
        let answer = site.get(path).await;
        assert_security_headers(&answer, path);
    }
    let health = site.get("/health").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let big = "x".repeat(32 * 1024);
    let too_big = site.request("POST", "/unsubscribe/x", &[], &big).await;
    assert_eq!(too_big.status, 413);
    assert_security_headers(&too_big, "413");
    site.stop().await;
}

#[tokio::test]
async fn archive_lists_only_sent_issues_escaped_and_renders_each_web_version() {
    let site = Site::start(&["reader@example.org"]).await;
    site.issue("first", "Q&A <tips>", true).await;
    site.issue("second", "<script>alert(1)</script>", true)
        .await;
    site.issue("draft", "Not yet", false).await;

    let list = site.get("/archive").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("Q&amp;A &lt;tips&gt;"), "{}", list.body);
    assert!(list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!list.body.contains("<script>"));
    assert!(list.body.contains("/archive/first"));
    assert!(list.body.contains("/archive/second"));
    assert!(!list.body.contains("Not yet"));
    assert!(!list.body.contains("/archive/draft"));

    let page = site.get("/archive/first").await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(
        page.body.contains("Body of <strong>first</strong>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("x-herald-slot"), "slot markers left");
    assert!(!page.body.contains("reader@example.org"));
    // Served again from the cache, unchanged.
    assert_eq!(site.get("/archive/first").await.body, page.body);

    for path in [
        "/archive/draft",
        "/archive/missing",
        "/archive/../etc",
        "/archive/..",
        "/archive/%2e%2e%2fetc",
    ] {
        let answer = site.get(path).await;
        assert_eq!(answer.status, 404, "{path}");
        assert!(answer.body.contains("Page not found"), "{path}");
    }
    site.stop().await;
}

#[tokio::test]
async fn feed_is_atom_with_one_escaped_entry_per_sent_issue() {
    let site = Site::start(&[]).await;
    site.issue("first", "Q&A <tips>", true).await;
    site.issue("second", "Second", true).await;
    site.issue("draft", "Not yet", false).await;
    let feed = site.get("/feed.xml").await;
    assert_eq!(feed.status, 200);
    assert_eq!(
        feed.header("content-type"),
        Some("application/atom+xml; charset=utf-8")
    );
    assert!(feed.body.starts_with("<?xml"));
    assert!(feed
        .body
        .contains("<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\">"));
    assert!(feed.body.trim_end().ends_with("</feed>"));
    assert_eq!(feed.body.matches("<entry>").count(), 2);
    assert_eq!(feed.body.matches("</entry>").count(), 2);
    assert!(
        feed.body.contains("<title>Q&amp;A &lt;tips&gt;</title>"),
        "{}",
        feed.body
    );
    assert!(feed
        .body
        .contains("<id>http://127.0.0.1:1/archive/first</id>"));
    assert!(feed.body.contains("<updated>2026-09-21T"), "{}", feed.body);
    assert!(!feed.body.contains("Not yet"));
    site.stop().await;
}

#[tokio::test]
async fn unsubscribing_over_http_mid_send_means_that_subscriber_gets_nothing() {
    let site = Site::start(&["leaving@example.org", "staying@example.org"]).await;
    let prepared = site
        .app
        .prepare(Path::new(support::app::ISSUE))
        .await
        .unwrap();
    let (_, job) = site.app.enqueue(&prepared, "test").await.unwrap();

    let path = site.unsubscribe_path("leaving@example.org").await;
    assert_eq!(site.one_click(&path).await.status, 200);
    let end = run_app(&site.app, &job, true).await;

    let outbox = site.dir.path().join("outbox");
    let copies: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(copies.len(), 1, "{end:?}");
    assert!(copies[0].contains("staying@example.org"));
    assert!(copies.iter().all(|c| !c.contains("leaving@example.org")));
    let id = site.subscriber_id("leaving@example.org").await;
    let row = site
        .app
        .store
        .find_delivery(job.issue_id, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "skipped");
    site.stop().await;
}
