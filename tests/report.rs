//! What each issue did: click and open tracking end to end (rewritten links in the sent
//! mail, `/l/` and `/o/`), unsubscribes, bounces and complaints counted per issue, and the
//! report (`GET /api/issues/{slug}/report`, JSON and CSV, and the dashboard's page). Every
//! store-backed test runs on SQLite and on PostgreSQL.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use herald::config::{Settings, TrackingMode};
use herald::domain::{IssueSlug, OpenToken, TokenKey};
use herald::render::{self, Recipient, TrackingPlan};
use herald::store::{NewBounce, NewReport};
use reqwest::header::{LOCATION, USER_AGENT};
use reqwest::StatusCode;
use serde_json::Value;
use support::app::{add_subscribers, eventually, ISSUE, SLUG};
use support::dashboard::Dashboard;
use support::postgres::{Arg, Backend};
use support::server::{Relay, TestServer};

/// One copy as it landed in the outbox.
#[derive(Debug, Clone)]
struct Copy {
    html: String,
    text: String,
    list_unsubscribe: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn key(server: &TestServer) -> TokenKey {
    TokenKey::new(&server.app.settings.secret_key().unwrap())
}

/// Starts a server with `tweak`, adds `readers`, sends the fixture issue and returns the
/// copies from the outbox, by address.
async fn send_to(
    backend: Backend,
    readers: &[&str],
    tweak: impl FnOnce(&mut Settings),
) -> (TestServer, BTreeMap<String, Copy>) {
    let server = TestServer::start_on(backend, Relay::Outbox, tweak).await;
    let readers: Vec<String> = readers.iter().map(|r| r.to_string()).collect();
    add_subscribers(&server.app.store, &readers).await;
    let slug = IssueSlug::parse(SLUG).unwrap();
    server.app.send_now(&slug, "test").await.unwrap();
    let sent = eventually(Duration::from_secs(60), || async {
        server
            .app
            .store
            .find_issue(SLUG)
            .await
            .unwrap()
            .is_some_and(|row| row.status == "sent")
    })
    .await;
    assert!(sent, "the issue went out");
    let mut copies = BTreeMap::new();
    for entry in std::fs::read_dir(server.dir.path().join("outbox")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let message = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let to = message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap()
            .to_string();
        let list_unsubscribe = message
            .header_raw("List-Unsubscribe")
            .unwrap()
            .replace("\r\n", "")
            .trim()
            .to_string();
        copies.insert(
            to,
            Copy {
                html: message.body_html(0).unwrap().to_string(),
                text: message.body_text(0).unwrap().to_string(),
                list_unsubscribe,
            },
        );
    }
    assert_eq!(copies.len(), readers.len(), "one copy per reader");
    (server, copies)
}

/// Every `href` of an `<a>` element (entities decoded).
fn anchor_hrefs(html: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"<a\s[^>]*?href="([^"]*)""#).unwrap();
    re.captures_iter(html)
        .map(|c| html_escape::decode_html_entities(&c[1]).into_owned())
        .collect()
}

/// Every bare http(s) URL of a text.
fn text_urls(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"https?://[^\s<>"')\]]+"#).unwrap();
    re.find_iter(text)
        .map(|m| {
            m.as_str()
                .trim_end_matches(['.', ',', ';', ':'])
                .to_string()
        })
        .collect()
}

fn tracked(server: &TestServer, urls: &[String]) -> Vec<String> {
    let prefix = server.url("/l/");
    urls.iter()
        .filter(|u| u.starts_with(&prefix))
        .cloned()
        .collect()
}

async fn follow(url: &str) -> (StatusCode, String) {
    let response = client()
        .get(url)
        .header(
            USER_AGENT,
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .send()
        .await
        .unwrap();
    let location = response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status(), location)
}

async fn report(server: &TestServer, query: &str) -> reqwest::Response {
    client()
        .get(server.url(&format!("/api/issues/{SLUG}/report{query}")))
        .bearer_auth(server.admin_token())
        .send()
        .await
        .unwrap()
}

async fn report_json(server: &TestServer) -> Value {
    let response = report(server, "").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn issue_id(server: &TestServer) -> i64 {
    server.app.store.find_issue(SLUG).await.unwrap().unwrap().id
}

/// A returned mail about `email`'s copy, applied as if it came in.
async fn returned(server: &TestServer, email: &str, kind: &'static str, hard: bool, n: u8) {
    let issue = issue_id(server).await;
    let subscriber = server
        .app
        .store
        .find_subscriber_by_email(&support::app::address(email))
        .await
        .unwrap()
        .unwrap()
        .id;
    server
        .app
        .store
        .apply_report(&NewReport {
            report_hash: format!("{n:064x}"),
            channel: "import",
            kind,
            feedback_type: (kind == "complaint").then(|| "abuse".to_string()),
            received_at: chrono::Utc::now().timestamp(),
            soft_limit: 3,
            recipients: vec![NewBounce {
                issue_id: Some(issue),
                subscriber_id: Some(subscriber),
                status: hard.then(|| "5.1.1".to_string()),
                reply: hard.then_some(550),
                diagnostic: String::new(),
                hard,
                reason: "test".into(),
            }],
        })
        .await
        .unwrap();
}

fn settings_limits() -> herald::issue::IssueLimits {
    Settings::default().newsletter.issue_limits()
}

fn clicks_on(mode: TrackingMode) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| s.tracking.clicks = mode
}

/// The URLs of the issue that tracking may rewrite, from a copy rendered without tracking.
async fn original_links(server: &TestServer) -> BTreeSet<String> {
    let issue = herald::issue::load(Path::new(ISSUE), &settings_limits()).unwrap();
    let rendered = render::issue(
        &issue,
        &server.app.templates,
        &server.app.settings.newsletter,
        &server.app.links,
    )
    .unwrap();
    let recipient = Recipient {
        email: "a@example.org",
        name: None,
        unsubscribe_url: "x",
        tracking: None,
    };
    let base = server.app.links.base().to_string();
    let html = rendered.html.personalise(&recipient);
    let text = rendered.text.personalise(&recipient);
    anchor_hrefs(&html)
        .into_iter()
        .chain(text_urls(&text))
        .filter(|u| u.starts_with("http"))
        .filter(|u| {
            !u.starts_with(&format!("{base}archive"))
                && !u.starts_with(&format!("{base}unsubscribe"))
        })
        .collect()
}

on_both_backends! {
    async fn every_link_is_rewritten_and_leads_to_its_url_while_unsubscribe_and_archive_stay(backend: Backend) {
        let (server, copies) =
            send_to(backend, &["ada@example.org"], clicks_on(TrackingMode::Aggregate)).await;
        let copy = &copies["ada@example.org"];
        let base = server.app.links.base().to_string();
        let hrefs = anchor_hrefs(&copy.html);
        let texts = text_urls(&copy.text);
        for url in hrefs.iter().chain(&texts).filter(|u| u.starts_with("http")) {
            assert!(
                url.starts_with(&format!("{base}l/"))
                    || url.starts_with(&format!("{base}archive"))
                    || url.starts_with(&format!("{base}unsubscribe/")),
                "not rewritten: {url}"
            );
        }
        assert!(hrefs.iter().any(|u| u.starts_with(&format!("{base}unsubscribe/"))));
        assert!(hrefs.iter().any(|u| u.starts_with(&format!("{base}archive/{SLUG}"))));
        assert!(texts.iter().any(|u| u.starts_with(&format!("{base}unsubscribe/"))));
        assert!(copy.list_unsubscribe.contains(&format!("{base}unsubscribe/")));
        assert!(!copy.list_unsubscribe.contains("/l/"));

        // Every tracked link of both parts leads to one of the issue's own URLs, and every
        // one of those is reachable.
        let originals = original_links(&server).await;
        assert!(originals.len() >= 2, "{originals:?}");
        let mut reached = BTreeSet::new();
        let links: BTreeSet<String> = tracked(&server, &hrefs)
            .into_iter()
            .chain(tracked(&server, &texts))
            .collect();
        assert!(!tracked(&server, &texts).is_empty(), "the text part is rewritten too");
        for link in &links {
            let (status, location) = follow(link).await;
            assert_eq!(status, StatusCode::FOUND, "{link}");
            assert!(originals.contains(&location), "{link} -> {location}");
            reached.insert(location);
        }
        assert_eq!(reached, originals);
    }

    async fn the_report_counts_clicks_unsubscribes_bounces_and_complaints(backend: Backend) {
        let readers = ["ada@example.org", "bob@example.org", "cy@example.org", "dee@example.org", "eve@example.org"];
        let (server, copies) = send_to(backend, &readers, clicks_on(TrackingMode::Aggregate)).await;
        let first = |email: &str| tracked(&server, &anchor_hrefs(&copies[email].html));
        let ada = first("ada@example.org");
        let bob = first("bob@example.org");
        assert!(ada.len() >= 2);
        // Ada follows the first link twice and the second once; Bob the first once.
        for link in [&ada[0], &ada[0], &ada[1], &bob[0]] {
            assert_eq!(follow(link).await.0, StatusCode::FOUND);
        }
        // Cy leaves with the List-Unsubscribe link (RFC 8058 one-click).
        let unsubscribe = copies["cy@example.org"]
            .list_unsubscribe
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_string();
        let response = client()
            .post(&unsubscribe)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        returned(&server, "dee@example.org", "bounce", true, 1).await;
        returned(&server, "eve@example.org", "complaint", false, 2).await;

        let r = report_json(&server).await;
        assert_eq!(r["issue"], SLUG);
        assert_eq!(r["sent"], 5);
        assert_eq!(r["failed"], 0);
        assert_eq!(r["bounced"]["hard"], 1);
        assert_eq!(r["bounced"]["soft"], 0);
        assert_eq!(r["complaints"], 1);
        assert_eq!(r["unsubscribes"], 1);
        assert_eq!(r["clicks"]["total"], 4);
        assert_eq!(r["clicks"]["unique"], 2);
        assert_eq!(r["clicks"]["rate"], 0.4);
        assert!(r["opens"].is_null(), "open tracking is off: {r}");
        let (_, first_url) = follow(&ada[0]).await;
        let top = &r["links"][0];
        assert_eq!(top["url"], first_url.as_str());
        assert_eq!((top["total"].as_u64(), top["unique"].as_u64()), (Some(3), Some(2)));
        let hourly = r["hourly"].as_array().unwrap();
        assert_eq!(hourly.len(), 72);
        assert!(hourly[0]["hour"].as_str().unwrap().ends_with(":00:00Z"));
        let sum = |field: &str| hourly.iter().map(|h| h[field].as_u64().unwrap()).sum::<u64>();
        assert_eq!((sum("clicks"), sum("unsubscribes"), sum("bounces")), (4, 1, 1));

        let csv = report(&server, "?format=csv").await;
        assert_eq!(csv.status(), StatusCode::OK);
        assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = csv.text().await.unwrap();
        assert!(csv.starts_with("metric,url,hour,value\n"), "{csv}");
        // The follow that read the first link's URL counted too.
        assert!(csv.contains("\nsent,,,5\n") && csv.contains("\nclicks_total,,,5\n"), "{csv}");
        assert!(csv.contains(&format!("\nlink_total,{first_url},,4\n")), "{csv}");
        assert_eq!(report(&server, "?format=xml").await.status(), StatusCode::BAD_REQUEST);

        // The dashboard's issue page shows the same figures and the chart.
        let dashboard = Dashboard::log_in(&server).await;
        let page = dashboard.get(&format!("/admin/issues/{SLUG}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("data-figure=\"unsubscribes\">1<"), "{}", page.body);
        assert!(page.body.contains("<svg") && page.body.contains("data-series=\"0\" data-total=\"5\""));
        let home = dashboard.get("/admin").await;
        assert!(home.body.contains(&format!("class=\"issue-report\" data-issue=\"{SLUG}\"")));
        let download = dashboard.get(&format!("/admin/issues/{SLUG}/report.csv")).await;
        assert_eq!(download.status, StatusCode::OK);
        assert!(download.body.contains("\nunsubscribes,,,1\n"));
    }

    async fn a_link_never_leads_outside_the_issue_and_a_bad_token_is_not_counted(backend: Backend) {
        let (server, copies) =
            send_to(backend, &["ada@example.org"], clicks_on(TrackingMode::Aggregate)).await;
        let links = tracked(&server, &anchor_hrefs(&copies["ada@example.org"].html));
        let archive = format!("{}archive/{SLUG}", server.app.links.base());
        let (link, token) = links[0]
            .trim_start_matches(&server.url("/l/"))
            .split_once('/')
            .unwrap();
        let other_link = links
            .iter()
            .map(|l| l.trim_start_matches(&server.url("/l/")).split('/').next().unwrap())
            .find(|l| *l != link)
            .unwrap();
        let mut tampered = token.to_string();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        let cases = [
            // A changed token, a cut one, another link's token.
            format!("/l/{link}/{tampered}"),
            format!("/l/{link}/{}", &token[..token.len() - 3]),
            format!("/l/{other_link}/{token}"),
            // A link id the issue does not have, and junk.
            format!("/l/zzzzzzzz/{token}"),
            "/l/x/https%3A%2F%2Fevil.example".to_string(),
            "/l/https%3A%2F%2Fevil.example/x".to_string(),
        ];
        for path in &cases {
            let (status, location) = follow(&server.url(path)).await;
            assert_eq!(status, StatusCode::FOUND, "{path}");
            assert!(
                location == archive || location == format!("{}archive", server.app.links.base()),
                "{path} -> {location}"
            );
        }
        let r = report_json(&server).await;
        assert_eq!(r["clicks"]["total"], 0, "{r}");
        assert_eq!(r["clicks"]["unique"], 0);
    }

    async fn aggregate_mode_stores_nothing_that_names_a_subscriber(backend: Backend) {
        let (server, copies) = send_to(
            backend,
            &["ada@example.org", "bob@example.org"],
            |s: &mut Settings| {
                s.tracking.clicks = TrackingMode::Aggregate;
                s.tracking.opens = TrackingMode::Aggregate;
            },
        )
        .await;
        let pixel = regex::Regex::new(r#"src="([^"]*/o/[^"]*\.gif)""#).unwrap();
        for copy in copies.values() {
            for link in tracked(&server, &anchor_hrefs(&copy.html)) {
                follow(&link).await;
            }
            let src = pixel.captures(&copy.html).expect("an open image")[1].to_string();
            let response = client().get(&src).send().await.unwrap();
            assert_eq!(response.headers()["content-type"], "image/gif");
        }
        let r = report_json(&server).await;
        assert_eq!(r["clicks"]["unique"], 2, "{r}");
        // Fetched right after sending: machine opens, apart.
        assert_eq!((r["opens"]["machine"].as_u64(), r["opens"]["total"].as_u64()), (Some(2), Some(0)));
        let mut raw = server.raw().await;
        assert_eq!(raw.scalar("SELECT COUNT(*) FROM tracking_subscribers", &[]).await, 0);
        let ids = raw.integers("SELECT id FROM subscribers", &[]).await;
        assert_eq!(ids.len(), 2);
        // The hashes are 16 bytes that are not a subscriber id in any plain form.
        assert_eq!(
            raw.scalar("SELECT COUNT(*) FROM tracking_readers WHERE length(reader) <> 16", &[]).await,
            0
        );
        assert!(raw.scalar("SELECT COUNT(*) FROM tracking_readers", &[]).await >= 2);
    }

    async fn individual_mode_records_who_clicked_and_opens_are_told_apart(backend: Backend) {
        let (server, copies) = send_to(
            backend,
            &["ada@example.org"],
            |s: &mut Settings| {
                s.tracking.clicks = TrackingMode::Individual;
                s.tracking.opens = TrackingMode::Individual;
            },
        )
        .await;
        let links = tracked(&server, &anchor_hrefs(&copies["ada@example.org"].html));
        follow(&links[0]).await;
        let id = server
            .app
            .store
            .find_subscriber_by_email(&support::app::address("ada@example.org"))
            .await
            .unwrap()
            .unwrap()
            .id;
        let issue = issue_id(&server).await;
        // An open an hour after the copy was made, by a mail client: a person's. And one from
        // a scanner: a machine's.
        let token = key(&server).sign_open(OpenToken {
            issue_id: issue,
            subscriber_id: id,
            sent_at: chrono::Utc::now().timestamp() - 3600,
        });
        for agent in ["Mozilla/5.0 (Windows NT 10.0; rv:115.0) Gecko/20100101 Thunderbird/115.3.1", "Barracuda Sentinel"] {
            let response = client()
                .get(server.url(&format!("/o/{token}.gif")))
                .header(USER_AGENT, agent)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.bytes().await.unwrap().len(), herald::tracking::PIXEL_GIF.len());
        }
        let r = report_json(&server).await;
        assert_eq!((r["opens"]["total"].as_u64(), r["opens"]["unique"].as_u64(), r["opens"]["machine"].as_u64()), (Some(1), Some(1), Some(1)), "{r}");
        let mut raw = server.raw().await;
        let rows = raw
            .integers(
                "SELECT subscriber_id FROM tracking_subscribers WHERE issue_id = $1 ORDER BY kind",
                &[Arg::Int(issue)],
            )
            .await;
        assert_eq!(rows, vec![id, id], "one click row and one open row");
    }

    async fn the_sign_up_form_says_so_while_tracking_is_on(backend: Backend) {
        let sentence = "Issues count which links readers follow";
        let off = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let form = client().get(off.url("/")).send().await.unwrap().text().await.unwrap();
        assert!(form.contains("I would like to receive") && !form.contains(sentence));
        let on = TestServer::start_on(backend, Relay::Outbox, |s: &mut Settings| {
            s.tracking.opens = TrackingMode::Aggregate;
        })
        .await;
        let form = client().get(on.url("/")).send().await.unwrap().text().await.unwrap();
        assert!(form.contains(sentence), "{form}");
        let own = TestServer::start_on(backend, Relay::Outbox, |s: &mut Settings| {
            s.tracking.clicks = TrackingMode::Individual;
            s.tracking.notice = Some("We count clicks per reader.".into());
        })
        .await;
        let form = client().get(own.url("/")).send().await.unwrap().text().await.unwrap();
        assert!(form.contains("We count clicks per reader.") && !form.contains(sentence));
    }

    async fn tracking_off_reports_null_and_counts_unsubscribes_by_issue(backend: Backend) {
        let (server, copies) = send_to(backend, &["ada@example.org"], |_: &mut Settings| {}).await;
        let copy = &copies["ada@example.org"];
        assert!(tracked(&server, &anchor_hrefs(&copy.html)).is_empty());
        assert!(!copy.html.contains("/o/"));
        let unsubscribe = anchor_hrefs(&copy.html)
            .into_iter()
            .find(|u| u.contains("/unsubscribe/"))
            .unwrap();
        let response = client().post(&unsubscribe).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let r = report_json(&server).await;
        assert!(r["clicks"].is_null() && r["opens"].is_null(), "{r}");
        assert_eq!(r["links"], serde_json::json!([]));
        assert_eq!(r["unsubscribes"], 1);
        let mut raw = server.raw().await;
        let issue = issue_id(&server).await;
        assert_eq!(
            raw.scalar(
                "SELECT COUNT(*) FROM events WHERE kind = 'unsubscribe' AND issue_id = $1",
                &[Arg::Int(issue)],
            )
            .await,
            1
        );
    }
}

#[tokio::test]
async fn with_tracking_off_the_mail_is_byte_identical() {
    let mut settings = support::app::settings("sqlite::memory:", "file:///nonexistent");
    settings.newsletter.base_url = "https://news.example.org/".into();
    let templates = herald::startup::load_templates_quietly(&settings).unwrap();
    let links = herald::links::Links::new(&settings.newsletter.base_url).unwrap();
    let issue = herald::issue::load(Path::new(ISSUE), &settings_limits()).unwrap();
    let plain = render::issue(&issue, &templates, &settings.newsletter, &links).unwrap();
    let mut off = plain.clone();
    render::track(
        &mut off,
        TrackingPlan {
            clicks: false,
            opens: false,
        },
        &links,
    );
    let key = TokenKey::new(&settings.secret_key().unwrap());
    let stamped = Recipient {
        email: "ada@example.org",
        name: Some("Ada"),
        unsubscribe_url: "https://news.example.org/unsubscribe/t",
        tracking: Some(herald::render::TrackingStamp {
            key: &key,
            issue_id: 3,
            subscriber_id: 4,
            sent_at: 1_800_000_000,
        }),
    };
    let unstamped = Recipient {
        tracking: None,
        ..stamped
    };
    assert_eq!(off.html, plain.html);
    assert_eq!(off.text, plain.text);
    assert_eq!(
        off.html.personalise(&stamped),
        plain.html.personalise(&unstamped)
    );
    assert_eq!(
        off.text.personalise(&stamped),
        plain.text.personalise(&unstamped)
    );

    // With clicks on, the same copy without a stamp (a test copy) has the original links.
    let mut on = plain.clone();
    render::track(
        &mut on,
        TrackingPlan {
            clicks: true,
            opens: true,
        },
        &links,
    );
    assert!(!on.tracked_links().is_empty());
    assert_eq!(
        on.text.personalise(&unstamped),
        plain.text.personalise(&unstamped)
    );
    assert!(on
        .html
        .personalise(&stamped)
        .contains("https://news.example.org/l/"));
    assert!(on
        .html
        .personalise(&stamped)
        .contains("https://news.example.org/o/"));
}
