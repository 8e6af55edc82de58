//! A real headless Chromium, driven over WebDriver (chromedriver + fantoccini).
//!
//! [`Browser::start`] launches `chromedriver` on a free loopback port and opens one headless
//! session with the given viewport (mobile emulation below 500 px, which a plain headless
//! window cannot go under). Dropping the browser ends the session and kills the driver.
//!
//! A page is queried only once it has loaded: a click that navigates goes through
//! [`click_and_wait`], which waits for the new document (a mark set on the old one is gone)
//! to be complete, so no query runs against a page being torn down ("aborted by
//! navigation"); [`goto`] does the same for an address, and [`wait_for`] finds an element
//! that a script or a navigation brings.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use super::require_tool;

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `None` (after printing why) when chromium or chromedriver is missing and tools are not
    /// required; panics when they are required (CI).
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        Self::start_with(width, height, &[]).await
    }

    /// As [`Browser::start`], with more command-line switches for chromium (such as
    /// `--force-dark-mode`, which makes pages see `prefers-color-scheme: dark`).
    pub async fn start_with(width: u32, height: u32, switches: &[&str]) -> Option<Browser> {
        let hint = "apt-get install chromium chromium-driver";
        let chromium = require_tool("chromium", &["/usr/bin/chromium"], hint)?;
        let driver_path = require_tool("chromedriver", &["/usr/bin/chromedriver"], hint)?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(switches.iter().map(|s| s.to_string()));
        let mut options = serde_json::json!({ "binary": chromium });
        if width < 500 {
            options["mobileEmulation"] = serde_json::json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0, "touch": true }
            });
            args.push("--window-size=500,900".into());
        } else {
            args.push(format!("--window-size={width},{height}"));
        }
        options["args"] = serde_json::json!(args);
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        // chromedriver listens on plain-HTTP loopback: no TLS connector is needed.
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = loop {
            match builder.connect(&url).await {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot start a chromium session through chromedriver: {e}"),
            }
        };
        Some(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Ends the session and stops the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// How long a page may take to load, or an element to appear.
const PAGE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the state of a loading page is asked for.
const POLL: Duration = Duration::from_millis(50);

/// Marks the current document, so [`wait_for_new_page`] can tell when it has been replaced.
async fn mark_page(client: &Client) {
    client
        .execute("window.__heraldOldPage = true; return true;", vec![])
        .await
        .expect("mark the current page");
}

/// Waits until the marked document is gone and the new one has loaded completely (its
/// images and frames included). Errors while the browser is between documents are the
/// navigation itself, and are waited out.
async fn wait_for_new_page(client: &Client, what: &str) {
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        let state = client
            .execute(
                "return window.__heraldOldPage === true ? 'old' : document.readyState;",
                vec![],
            )
            .await;
        if matches!(&state, Ok(v) if v == "complete") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no new page loaded within {PAGE_TIMEOUT:?} (last state {state:?})"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Clicks the element `locator` finds and waits for the page the click leads to.
pub async fn click_and_wait(client: &Client, locator: Locator<'_>) {
    let what = format!("click on {locator:?}");
    mark_page(client).await;
    wait_for(client, locator).await.click().await.expect(&what);
    wait_for_new_page(client, &what).await;
}

/// Opens `url` and waits until its page has loaded completely.
pub async fn goto(client: &Client, url: &str) {
    mark_page(client).await;
    client
        .goto(url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    wait_for_new_page(client, url).await;
}

/// The element `locator` finds, once there is one (a script or a navigation may bring it).
pub async fn wait_for(client: &Client, locator: Locator<'_>) -> Element {
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        match client.find(locator).await {
            Ok(element) => return element,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no element {locator:?} within {PAGE_TIMEOUT:?}: {e}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}
