//! The dashboard's subscriber page in a real headless Chromium, on a laptop (1280×900) and a
//! phone (390×844): search and filter through the form, add a subscriber, erase one through
//! the confirmation page, import a CSV file through the file field and read the report, and
//! the list on a phone as stacked rows without sideways scrolling. Also the archive on a
//! phone, whose dates never break across lines. Screenshots go to `HERALD_SCREENSHOT_DIR`
//! (default: `admin-screenshots/` in the test target's temporary directory, under `target/`).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};
use herald::startup::Drafts;
use support::app::{add_subscribers, addresses, eventually, SLUG};
use support::browser::{click_and_wait, goto, wait_for, Browser};
use support::server::{Relay, TestServer};

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
    goto(client, &server.url("/admin/login")).await;
    wait_for(client, Locator::Css("#token"))
        .await
        .send_keys(server.admin_token())
        .await
        .unwrap();
    click_and_wait(client, Locator::Css("form button[type=submit]")).await;
}

async fn path_and_query(client: &Client) -> String {
    let url = client.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

async fn js(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.unwrap()
}

async fn scrolls_sideways(client: &Client) -> bool {
    js(
        client,
        "const d = document.documentElement; return d.scrollWidth > d.clientWidth;",
    )
    .await
    .as_bool()
    .unwrap()
}

/// The addresses in the list's rows, in order.
async fn listed(client: &Client) -> Vec<String> {
    let v = js(
        client,
        "return [...document.querySelectorAll('tr[data-email]')].map(r => r.dataset.email);",
    )
    .await;
    serde_json::from_value(v).unwrap()
}

async fn type_into(client: &Client, css: &str, text: &str) {
    let field = wait_for(client, Locator::Css(css)).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn notice(client: &Client) -> String {
    wait_for(client, Locator::Css(".notice"))
        .await
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_manages_subscribers_on_a_laptop_and_a_phone() {
    let server = TestServer::start(Relay::Outbox, |_| {}).await;
    add_subscribers(&server.app.store, &addresses("reader", 72)).await;
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    let client = &browser.client;
    log_in(client, &server).await;
    // From the home page, through the header's link.
    click_and_wait(client, Locator::Css("a.nav[href='/admin/subscribers']")).await;
    assert_eq!(path_and_query(client).await, "/admin/subscribers");
    assert_eq!(listed(client).await.len(), 50);
    assert!(!scrolls_sideways(client).await);
    screenshot(client, "subscribers-laptop-list").await;

    // Add one, with a name.
    type_into(client, "#add input[name=email]", "ada@example.net").await;
    type_into(client, "#add input[name=name]", "Ada Lovelace").await;
    click_and_wait(client, Locator::Css("#add button[type=submit]")).await;
    assert!(notice(client).await.contains("added"));
    assert_eq!(listed(client).await, vec!["ada@example.net"]);

    // Search by name through the form, with a status filter.
    type_into(client, "input[name=q]", "lovelace").await;
    client
        .find(Locator::Css(
            ".search select[name=status] option[value=active]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_and_wait(client, Locator::Css(".search button[type=submit]")).await;
    assert_eq!(
        path_and_query(client).await,
        "/admin/subscribers?q=lovelace&status=active"
    );
    assert_eq!(listed(client).await, vec!["ada@example.net"]);
    // The count links filter by status.
    click_and_wait(
        client,
        Locator::Css(".filters a[href='/admin/subscribers?q=lovelace&status=pending']"),
    )
    .await;
    assert!(listed(client).await.is_empty());

    // Paging.
    goto(client, &server.url("/admin/subscribers")).await;
    click_and_wait(client, Locator::Css("a[rel=next]")).await;
    assert_eq!(path_and_query(client).await, "/admin/subscribers?page=2");
    assert_eq!(listed(client).await.len(), 23);
    let range = wait_for(client, Locator::Css("[data-range]")).await;
    assert_eq!(range.text().await.unwrap(), "51–73 of 73");

    // Import a file through the file field, and read the report.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("readers.csv");
    std::fs::write(
        &file,
        "email,name\nnew@example.net,New Reader\nbroken-address,Nobody\nreader1@example.com,Dup\n",
    )
    .unwrap();
    goto(client, &server.url("/admin/subscribers")).await;
    client
        .find(Locator::Css("#import input[type=file]"))
        .await
        .unwrap()
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    click_and_wait(client, Locator::Css("#import button[type=submit]")).await;
    assert_eq!(path_and_query(client).await, "/admin/subscribers/import");
    let count = |name: &'static str| async move {
        wait_for(client, Locator::Css(&format!("[data-count={name}]")))
            .await
            .text()
            .await
            .unwrap()
    };
    assert_eq!(count("imported").await, "1");
    assert_eq!(count("duplicates").await, "1");
    assert_eq!(count("rejected").await, "1");
    let rejection = wait_for(client, Locator::Css("table.rejections tbody tr"))
        .await
        .text()
        .await
        .unwrap();
    assert!(rejection.starts_with('3'), "{rejection}");
    screenshot(client, "subscribers-laptop-import").await;

    // Erase one, through the confirmation page.
    goto(
        client,
        &server.url("/admin/subscribers?q=new%40example.net"),
    )
    .await;
    click_and_wait(client, Locator::Css("a.erase")).await;
    assert_eq!(
        path_and_query(client).await,
        "/admin/subscribers/erase?email=new%40example.net"
    );
    screenshot(client, "subscribers-laptop-erase").await;
    // The box must be ticked: the browser does not submit without it.
    client
        .find(Locator::Css("button.danger"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        path_and_query(client).await,
        "/admin/subscribers/erase?email=new%40example.net"
    );
    client
        .find(Locator::Css("input[name=confirm]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_and_wait(client, Locator::Css("button.danger")).await;
    assert!(notice(client).await.contains("erased"));
    let gone = server
        .app
        .store
        .search_subscribers("new@example.net", None, 10, 0)
        .await
        .unwrap();
    assert_eq!(gone.total, 0);
    browser.close().await;

    // On a phone: the list is a stack of rows, nothing scrolls sideways.
    let Some(phone) = Browser::start(390, 844).await else {
        return;
    };
    let client = &phone.client;
    log_in(client, &server).await;
    goto(client, &server.url("/admin/subscribers?q=ada")).await;
    assert!(!scrolls_sideways(client).await, "the list scrolls sideways");
    let stacked = js(
        client,
        "const td = document.querySelector('tr[data-email] td.email'); \
         return getComputedStyle(td).display;",
    )
    .await;
    assert_eq!(stacked, "flex", "rows are stacked on a phone");
    screenshot(client, "subscribers-phone-search").await;
    goto(client, &server.url("/admin/subscribers")).await;
    assert!(!scrolls_sideways(client).await);
    screenshot(client, "subscribers-phone-list").await;
    client
        .execute("document.querySelector('#add').scrollIntoView();", vec![])
        .await
        .unwrap();
    screenshot(client, "subscribers-phone-forms").await;
    goto(
        client,
        &server.url("/admin/subscribers/erase?email=ada%40example.net"),
    )
    .await;
    assert!(!scrolls_sideways(client).await);
    screenshot(client, "subscribers-phone-erase").await;
    phone.close().await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_dates_stay_on_one_line_on_a_phone() {
    let server = TestServer::start(Relay::Outbox, |_| {}).await;
    add_subscribers(&server.app.store, &addresses("reader", 2)).await;
    let slug = herald::editor::parse_slug(SLUG).unwrap();
    herald::editor::send_now(&server.app, &slug, "test", Drafts::Refuse)
        .await
        .unwrap();
    let sent = eventually(Duration::from_secs(30), || async {
        let row = server.app.store.find_issue(SLUG).await.unwrap();
        row.is_some_and(|r| r.status == "sent")
    })
    .await;
    assert!(sent);
    let Some(phone) = Browser::start(320, 640).await else {
        return;
    };
    let client = &phone.client;
    goto(client, &server.url("/archive")).await;
    let styles = js(
        client,
        "return [...document.querySelectorAll('ul.issues time')].map(t => \
         [getComputedStyle(t).whiteSpace, t.getClientRects().length]);",
    )
    .await;
    assert_eq!(styles, serde_json::json!([["nowrap", 1]]));
    assert!(!scrolls_sideways(client).await);
    screenshot(client, "archive-phone").await;
    // The archive leads to the sign-up form, which leads back.
    click_and_wait(client, Locator::LinkText("Sign up")).await;
    assert_eq!(path_and_query(client).await, "/");
    click_and_wait(client, Locator::LinkText("Read past issues in the archive")).await;
    assert_eq!(path_and_query(client).await, "/archive");
    phone.close().await;
    server.stop().await.unwrap();
}
