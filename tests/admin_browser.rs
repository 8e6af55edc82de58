//! The dashboard in a real headless Chromium: log in, open the example issue, send a test
//! copy, send the issue after the confirmation step, and watch the progress bar (updated by
//! `admin.js`, without reloading the page) reach 100 %. Also checks that the pages fit a
//! phone without horizontal scrolling. Screenshots at laptop (1280×800) and phone (390×844)
//! sizes go to `HERALD_SCREENSHOT_DIR` (default: `admin-screenshots/` in the test target's
//! temporary directory).

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use support::app::{add_subscribers, addresses, SLUG};
use support::browser::{click_and_wait, goto, wait_for, Browser};
use support::server::{Relay, TestServer};
use support::smtp_server::Faults;

const TOKEN: &str = "test-admin-token-0123456789abcdef";

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("HERALD_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

async fn log_in(client: &Client, server: &TestServer) {
    goto(client, &server.url("/admin")).await;
    assert_path(client, "/admin/login").await;
    wait_for(client, Locator::Css("#token"))
        .await
        .send_keys(TOKEN)
        .await
        .unwrap();
    click_and_wait(client, Locator::Css("form button[type=submit]")).await;
    assert_path(client, "/admin").await;
}

/// The loaded page is at `path`.
async fn assert_path(client: &Client, path: &str) {
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), path, "at {url}");
}

/// Whether the page scrolls sideways.
async fn scrolls_sideways(client: &Client) -> bool {
    let v = client
        .execute(
            "const d = document.documentElement; return d.scrollWidth > d.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    v.as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_tests_sends_and_watches_an_issue_go_out() {
    let server = TestServer::start(Relay::Smtp(Faults::new()), |s| {
        // Slow enough to watch the bar move: 50 messages take about 2.5 seconds.
        s.sending.rate_per_second = 20;
    })
    .await;
    let readers = addresses("reader", 50);
    add_subscribers(&server.app.store, &readers).await;
    let Some(browser) = Browser::start(1280, 800).await else {
        return;
    };
    let client = &browser.client;
    log_in(client, &server).await;
    let home = client.source().await.unwrap();
    assert!(home.contains("<strong>50</strong> active"), "{home}");
    screenshot(client, "laptop-home-before").await;

    // Open the issue.
    let issue_link = format!("a[href='/admin/issues/{SLUG}']");
    click_and_wait(client, Locator::Css(&issue_link)).await;
    assert_path(client, &format!("/admin/issues/{SLUG}")).await;
    let iframe = client.find(Locator::Css("iframe")).await.unwrap();
    assert_eq!(iframe.attr("sandbox").await.unwrap().as_deref(), Some(""));

    // A test copy.
    client
        .find(Locator::Css("#to"))
        .await
        .unwrap()
        .send_keys("editor@example.net")
        .await
        .unwrap();
    click_and_wait(client, Locator::XPath("//button[text()='Send test']")).await;
    let smtp = server.smtp.as_ref().unwrap();
    assert!(smtp.wait_for(1, Duration::from_secs(15)).await);
    assert_eq!(smtp.received()[0].rcpt_to, vec!["editor@example.net"]);
    let notice = wait_for(client, Locator::Css(".notice")).await;
    assert!(notice.text().await.unwrap().contains("test copy"));
    // The page, its images and the preview frame have loaded (see click_and_wait).
    screenshot(client, "laptop-issue").await;
    client
        .execute("document.querySelector('iframe').scrollIntoView();", vec![])
        .await
        .unwrap();
    screenshot(client, "laptop-preview").await;

    // Send now, through the confirmation step.
    click_and_wait(client, Locator::LinkText("Send now…")).await;
    assert_path(client, &format!("/admin/issues/{SLUG}/send")).await;
    screenshot(client, "laptop-confirm").await;
    client
        .find(Locator::Css("input[name=confirm]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_and_wait(client, Locator::Css("button.danger")).await;
    assert_path(client, &format!("/admin/issues/{SLUG}")).await;

    // The bar moves without a reload, up to 100 %.
    let status = client
        .find(Locator::Css("[data-status-label]"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut shot_midway = false;
    loop {
        let value = client
            .execute(
                "return document.querySelector('.progress progress').value;",
                vec![],
            )
            .await
            .unwrap()
            .as_f64()
            .unwrap();
        if seen.last() != Some(&value) {
            seen.push(value);
        }
        if !shot_midway && value > 0.0 && value < 100.0 {
            screenshot(client, "laptop-sending").await;
            shot_midway = true;
        }
        if value >= 100.0 && status.text().await.unwrap() == "sent" {
            break;
        }
        assert!(Instant::now() < deadline, "the bar stopped at {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.len() >= 2,
        "the bar was only ever at {seen:?}: it did not move"
    );
    let sent_cell = client
        .find(Locator::Css("[data-count=sent]"))
        .await
        .unwrap();
    assert_eq!(sent_cell.text().await.unwrap(), "50");
    assert_eq!(smtp.received().len(), 51);
    screenshot(client, "laptop-issue-sent").await;
    goto(client, &server.url("/admin")).await;
    screenshot(client, "laptop-home-after").await;
    assert!(!scrolls_sideways(client).await);
    browser.close().await;

    // On a phone.
    let Some(phone) = Browser::start(390, 844).await else {
        return;
    };
    let client = &phone.client;
    log_in(client, &server).await;
    assert!(
        !scrolls_sideways(client).await,
        "the home page scrolls sideways"
    );
    screenshot(client, "phone-home").await;
    goto(client, &server.url(&format!("/admin/issues/{SLUG}"))).await;
    assert!(
        !scrolls_sideways(client).await,
        "the issue page scrolls sideways"
    );
    screenshot(client, "phone-issue").await;
    phone.close().await;
    server.stop().await.unwrap();
}
