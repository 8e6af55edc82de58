//! The issue report's chart in a real headless Chromium on a phone (390×844): it is drawn by
//! the server (no script draws it), fits the screen without sideways scrolling, and shows
//! its three series. A screenshot of the report goes to `HERALD_REPORT_SCREENSHOT` (default:
//! `report-chart.png` in the test target's temporary directory).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};
use herald::config::TrackingMode;
use herald::domain::IssueSlug;
use support::app::{add_subscribers, addresses, eventually, SLUG};
use support::browser::{click_and_wait, goto, wait_for, Browser};
use support::postgres::Arg;
use support::server::{Relay, TestServer};

const TOKEN: &str = "test-admin-token-0123456789abcdef";

async fn js(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_chart_reads_on_a_phone() {
    let server = TestServer::start(Relay::Outbox, |s| {
        s.tracking.clicks = TrackingMode::Aggregate;
    })
    .await;
    add_subscribers(&server.app.store, &addresses("reader", 20)).await;
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
    assert!(sent);
    // Readers follow links of their copies now: counted clicks and unique readers.
    let tracked = regex::Regex::new(r#"href="([^"]*/l/[^"]*)""#).unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut files: Vec<_> = std::fs::read_dir(server.dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for (n, file) in files.iter().enumerate() {
        let bytes = std::fs::read(file).unwrap();
        let message = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let html = message.body_html(0).unwrap().to_string();
        let links: Vec<String> = tracked
            .captures_iter(&html)
            .map(|c| html_escape::decode_html_entities(&c[1]).into_owned())
            .collect();
        for link in links.iter().take(1 + n % 3) {
            let response = client.get(link).send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::FOUND);
        }
    }
    // The report waits for the hit writer: every click above is recorded once it answers.
    let report = client
        .get(server.url(&format!("/api/issues/{SLUG}/report")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), reqwest::StatusCode::OK);
    // Three days of activity, as the tables hold it after the readers' clicks,
    // unsubscribes and bounces: written beneath the store, since a test cannot wait 72 hours.
    let row = server.app.store.find_issue(SLUG).await.unwrap().unwrap();
    let start = row.started_at.unwrap().div_euclid(3600) * 3600;
    let mut raw = server.raw().await;
    for hour in 1..72i64 {
        let clicks =
            (40.0 * (-(hour as f64) / 8.0).exp()).round() as i64 + (hour % 24 == 9) as i64 * 6;
        if clicks > 0 {
            raw.execute(
                "INSERT INTO tracking_hours (issue_id, hour, clicks) VALUES ($1, $2, $3)",
                &[
                    Arg::Int(row.id),
                    Arg::Int(start + hour * 3600),
                    Arg::Int(clicks),
                ],
            )
            .await;
        }
    }
    // The later clicks went to the issue's first link.
    let later = raw
        .scalar(
            "SELECT CAST(COALESCE(SUM(clicks), 0) AS BIGINT) FROM tracking_hours \
             WHERE issue_id = $1 AND hour > $2",
            &[Arg::Int(row.id), Arg::Int(start)],
        )
        .await;
    raw.execute(
        "UPDATE tracked_links SET clicks = clicks + $2 WHERE issue_id = $1 AND position = 0",
        &[Arg::Int(row.id), Arg::Int(later)],
    )
    .await;
    let ids = raw
        .integers("SELECT id FROM subscribers ORDER BY id LIMIT 5", &[])
        .await;
    for (i, id) in ids.iter().enumerate() {
        let at = start + [0i64, 1, 1, 5, 30][i] * 3600 + 120;
        let kind = if i < 3 { "unsubscribe" } else { "report" };
        raw.execute(
            "INSERT INTO events (occurred_at, kind, subscriber_id, issue_id, source) \
             VALUES ($1, $2, $3, $4, 'test')",
            &[
                Arg::Int(at),
                Arg::Text(kind),
                Arg::Int(*id),
                Arg::Int(row.id),
            ],
        )
        .await;
        if i >= 3 {
            raw.execute(
                "INSERT INTO bounces (report_hash, recipient_index, received_at, channel, kind, \
                 issue_id, subscriber_id, hard, reason, effect) \
                 VALUES ($1, 0, $2, 'import', 'bounce', $3, $4, 1, 'test', 'recorded')",
                &[
                    Arg::Text(&format!("{i:064x}")),
                    Arg::Int(at),
                    Arg::Int(row.id),
                    Arg::Int(*id),
                ],
            )
            .await;
        }
    }

    let Some(browser) = Browser::start(390, 844).await else {
        return;
    };
    let client = &browser.client;
    goto(client, &server.url("/admin")).await;
    wait_for(client, Locator::Css("#token"))
        .await
        .send_keys(TOKEN)
        .await
        .unwrap();
    click_and_wait(client, Locator::Css("form button[type=submit]")).await;
    goto(client, &server.url(&format!("/admin/issues/{SLUG}"))).await;
    let chart = wait_for(client, Locator::Css("figure.chart svg")).await;
    let box_ = js(
        client,
        "const r = document.querySelector('figure.chart svg').getBoundingClientRect(); \
         const d = document.documentElement; \
         return [r.left, r.right, r.height, window.innerWidth, d.scrollWidth > d.clientWidth, \
                 document.querySelectorAll('figure.chart rect').length, document.scripts.length];",
    )
    .await;
    let b = box_.as_array().unwrap();
    let f = |i: usize| b[i].as_f64().unwrap();
    assert!(
        f(0) >= 0.0 && f(1) <= f(3),
        "the chart fits the screen: {box_}"
    );
    assert!(f(2) > 150.0, "tall enough to read: {box_}");
    assert_eq!(
        b[4],
        serde_json::Value::Bool(false),
        "no sideways scrolling"
    );
    assert!(
        b[5].as_u64().unwrap() > 30,
        "bars for the busy hours: {box_}"
    );
    let text = chart.text().await.unwrap();
    for word in ["Clicks", "Unsubscribes", "Bounces", "72h"] {
        assert!(text.contains(word), "{word} in {text}");
    }
    // The report section, figures and chart, as the editor sees it.
    let section = client.find(Locator::Css("section.report")).await.unwrap();
    js(
        client,
        "document.querySelector('section.report').scrollIntoView();",
    )
    .await;
    let png = section.screenshot().await.expect("screenshot");
    let path = std::env::var_os("HERALD_REPORT_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-chart.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    browser.close().await;
}
