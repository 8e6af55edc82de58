//! The sign-up flow in a real headless Chromium, on a phone and on a desktop: fill in the
//! form, reach the thank-you page, follow the confirmation link from the captured mail, see
//! the confirmed page. Checks the layout on the phone, and saves screenshots of every page
//! to `HERALD_SCREENSHOT_DIR` (default: a temporary folder, printed) for people to look at.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};
use herald::domain::{EmailAddress, SubscriberStatus};
use support::app::{copies_in, eventually};
use support::browser::{click_and_wait, goto, wait_for, Browser};
use support::server::{Relay, TestServer};
use support::smtp_server::Faults;

/// Sizes of the page, the form and the controls a finger must hit.
const MEASURE: &str = r#"
const d = document.documentElement;
const rect = s => { const e = document.querySelector(s); if (!e) return null;
  const r = e.getBoundingClientRect(); return { w: r.width, h: r.height, l: r.left, r: r.right }; };
return { scroll: d.scrollWidth, client: d.clientWidth,
  form: rect('form'), email: rect('#email'), name: rect('#name'), button: rect('button[type=submit]'),
  honeypotLeft: rect('#website') ? rect('#website').l : null };
"#;

fn screenshot_dir() -> PathBuf {
    let dir = match std::env::var_os("HERALD_SCREENSHOT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join("herald-signup-screenshots"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// The loaded page's heading, which must start with `expected`.
async fn heading(client: &Client, expected: &str) -> String {
    let text = wait_for(client, Locator::Css("h1"))
        .await
        .text()
        .await
        .expect("the heading's text");
    assert!(
        text.starts_with(expected),
        "the heading is {text:?}, not {expected:?}"
    );
    text
}

fn num(m: &serde_json::Value, path: &[&str]) -> f64 {
    let mut v = m;
    for k in path {
        v = &v[*k];
    }
    v.as_f64().unwrap_or_else(|| panic!("{path:?} in {m}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_signs_up_and_confirms_in_a_browser_on_a_phone_and_a_desktop() {
    let server = TestServer::start(Relay::Smtp(Faults::new()), |s| {
        s.web.signup_per_ip_per_minute = 1000;
    })
    .await;
    for (width, height) in [(390u32, 844u32), (1280, 800)] {
        let Some(browser) = Browser::start(width, height).await else {
            return;
        };
        let c = &browser.client;
        let email = format!("browser{width}@example.org");

        goto(c, &server.url("/")).await;
        heading(c, "Subscribe to").await;
        let m = c.execute(MEASURE, vec![]).await.unwrap();
        eprintln!("{width}px form: {m}");
        assert!(
            num(&m, &["scroll"]) <= num(&m, &["client"]),
            "horizontal scrolling at {width}px: {m}"
        );
        assert!(num(&m, &["form", "r"]) <= num(&m, &["client"]), "{m}");
        for control in ["email", "name", "button"] {
            assert!(
                num(&m, &[control, "h"]) >= 44.0,
                "{control} is shorter than 44px at {width}px: {m}"
            );
        }
        if width < 500 {
            // On the phone the fields use the width there is.
            assert!(
                num(&m, &["email", "w"]) >= 0.7 * num(&m, &["client"]),
                "{m}"
            );
        }
        assert!(
            num(&m, &["honeypotLeft"]) < -1000.0,
            "the honeypot is off-screen"
        );
        shot(c, &format!("signup-{width}.png")).await;

        // A server-side refusal (the browser accepts "a@localhost"; herald needs a domain
        // with a dot): the form comes back with the error tied to the field.
        c.find(Locator::Id("email"))
            .await
            .unwrap()
            .send_keys("someone@localhost")
            .await
            .unwrap();
        click_and_wait(c, Locator::Css("button[type=submit]")).await;
        heading(c, "Subscribe to").await;
        let field = c.find(Locator::Id("email")).await.unwrap();
        assert_eq!(
            field.attr("aria-describedby").await.unwrap().as_deref(),
            Some("email-error")
        );
        let error = wait_for(c, Locator::Id("email-error")).await;
        assert!(error.text().await.unwrap().contains("email address"));
        shot(c, &format!("signup-error-{width}.png")).await;

        field.clear().await.unwrap();
        field.send_keys(&email).await.unwrap();
        c.find(Locator::Id("name"))
            .await
            .unwrap()
            .send_keys("Grace Browser")
            .await
            .unwrap();
        click_and_wait(c, Locator::Css("button[type=submit]")).await;
        heading(c, "Please check your inbox").await;
        let m = c.execute(MEASURE, vec![]).await.unwrap();
        assert!(num(&m, &["scroll"]) <= num(&m, &["client"]), "{m}");
        shot(c, &format!("thanks-{width}.png")).await;

        let smtp = server.smtp.as_ref().unwrap();
        let arrived = eventually(Duration::from_secs(20), || async {
            !copies_in(&smtp.received(), &email).is_empty()
        })
        .await;
        assert!(arrived, "the confirmation mail arrived");
        let mail = &copies_in(&smtp.received(), &email)[0];
        let message = mail_parser::MessageParser::default()
            .parse(&mail.data)
            .unwrap();
        let text = message.body_text(0).unwrap();
        let pattern = format!("{}/confirm/[A-Za-z0-9_-]+", regex::escape(&server.base));
        let confirm_url = regex::Regex::new(&pattern)
            .unwrap()
            .find(&text)
            .expect("a confirmation link")
            .as_str()
            .to_string();

        // Opening the link shows one button; only pressing it confirms.
        goto(c, &confirm_url).await;
        heading(c, "Confirm your subscription").await;
        let m = c.execute(MEASURE, vec![]).await.unwrap();
        assert!(num(&m, &["scroll"]) <= num(&m, &["client"]), "{m}");
        shot(c, &format!("confirm-{width}.png")).await;
        let pending = server
            .app
            .store
            .find_subscriber_by_email(&EmailAddress::parse(&email).unwrap())
            .await
            .unwrap()
            .unwrap()
            .status;
        assert_eq!(
            pending,
            SubscriberStatus::Pending,
            "opening the link confirms nothing"
        );
        click_and_wait(c, Locator::Css("button[type=submit]")).await;
        heading(c, "You are subscribed").await;
        let m = c.execute(MEASURE, vec![]).await.unwrap();
        assert!(num(&m, &["scroll"]) <= num(&m, &["client"]), "{m}");
        shot(c, &format!("confirmed-{width}.png")).await;
        let status = server
            .app
            .store
            .find_subscriber_by_email(&EmailAddress::parse(&email).unwrap())
            .await
            .unwrap()
            .unwrap()
            .status;
        assert_eq!(status, SubscriberStatus::Active);
        browser.close().await;
    }
    server.stop().await.unwrap();
}
