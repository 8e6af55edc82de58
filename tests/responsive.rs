//! The rendered email in a real browser: it fits a phone without horizontal scrolling, and
//! shows a centred 600 px column on wider screens. Screenshots are kept under the test
//! target directory (`screenshots/`) for people to look at.

mod support;

use std::path::{Path, PathBuf};

use support::browser::Browser;

const MEASURE: &str = r#"
const d = document.documentElement;
const columns = [...document.querySelectorAll('div')]
  .filter(e => /max-width:\s*600px/.test(e.getAttribute('style') || ''));
const r = columns.length ? columns[0].getBoundingClientRect() : { width: -1, left: -1 };
return { scroll: d.scrollWidth, client: d.clientWidth, width: r.width, left: r.left, columns: columns.length };
"#;

/// The fixture issue (never the shipped `issues/` folder, which editors change).
fn example_issue() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/issues/2026-11-27-welcome-to-herald.md")
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn email_fits_a_phone_and_centres_a_600px_column_on_wider_screens() {
    let mut settings = herald::config::Settings::default();
    settings.web.secret_key = Some("responsive-test-secret-key-0123456789".to_string().into());
    settings.newsletter.templates_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let preview = herald::preview::sample(&settings, &example_issue()).expect("example renders");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("email.html");
    std::fs::write(&page, &preview.html).unwrap();
    let url = format!("file://{}", page.display());

    for (width, height) in [(375u32, 812u32), (600, 900), (1280, 900)] {
        let Some(browser) = Browser::start(width, height).await else {
            return;
        };
        support::browser::goto(&browser.client, &url).await;
        let m = browser
            .client
            .execute(MEASURE, vec![])
            .await
            .expect("measurement script runs");
        let png = browser.client.screenshot().await.expect("screenshot");
        let shot = screenshot_dir().join(format!("email-{width}.png"));
        std::fs::write(&shot, &png).unwrap();
        browser.close().await;

        let num = |k: &str| m[k].as_f64().unwrap_or_else(|| panic!("{k} in {m}"));
        let (scroll, client, column, left) =
            (num("scroll"), num("client"), num("width"), num("left"));
        eprintln!("{width}px: {m} ({})", shot.display());
        assert!(num("columns") >= 1.0, "no 600px column found at {width}px");
        assert!(
            scroll <= client,
            "horizontal scroll at {width}px: content {scroll}px in a {client}px viewport"
        );
        if width >= 600 {
            assert!(
                (column - 600.0).abs() <= 1.0,
                "column is {column}px at {width}px"
            );
            let expected_left = (client - 600.0) / 2.0;
            assert!(
                (left - expected_left).abs() <= 1.0,
                "column not centred at {width}px: left {left}, expected {expected_left}"
            );
        } else {
            assert!(column <= client, "column {column}px wider than {client}px");
        }
    }
}
