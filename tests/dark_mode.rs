//! The newsletter in a real browser, light and dark (chromium with `--force-dark-mode`, so
//! the page sees `prefers-color-scheme: dark`): the dark version has a dark page and light
//! text, every piece of text and every link keeps a contrast of at least 4.5:1 against what
//! lies behind it in both schemes, and pictures keep a light backing. Phone screenshots of
//! both are kept under the test target directory (`screenshots/`) for people to look at.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::browser::Browser;

/// Every rendered element with text of its own: what it is, its colour, and the first
/// opaque background behind it (the page's, when nothing is painted).
const COLOURS: &str = r#"
const opaque = c => { const m = c.match(/[\d.]+/g); return m && (m.length < 4 || +m[3] > 0); };
const behind = e => {
  for (let n = e; n; n = n.parentElement) {
    const bg = getComputedStyle(n).backgroundColor;
    if (opaque(bg)) return bg;
  }
  return 'rgb(255, 255, 255)';
};
const out = [];
for (const e of document.querySelectorAll('body *')) {
  if (!e.getClientRects().length || getComputedStyle(e).visibility === 'hidden') continue;
  const own = [...e.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
  if (!own) continue;
  out.push({ what: e.tagName.toLowerCase() + ': ' + own.slice(0, 40), color: getComputedStyle(e).color, background: behind(e) });
}
const img = document.querySelector('.herald-body img');
return {
  body: getComputedStyle(document.body).backgroundColor,
  text: getComputedStyle(document.querySelector('.herald-body p')).color,
  link: getComputedStyle(document.querySelector('.herald-body a')).color,
  image: img ? getComputedStyle(img).backgroundColor : null,
  dark: matchMedia('(prefers-color-scheme: dark)').matches,
  elements: out,
};
"#;

/// `rgb(r, g, b)` or `rgba(…)` as three channels 0–255.
fn channels(css: &str) -> [f64; 3] {
    let n: Vec<f64> = css
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .split(|c: char| c == ',' || c == ')' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or_else(|_| panic!("a colour: {css}")))
        .collect();
    [n[0], n[1], n[2]]
}

/// WCAG 2 relative luminance.
fn luminance(css: &str) -> f64 {
    let lin = |c: f64| {
        let c = c / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = channels(css);
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

/// WCAG 2 contrast ratio of two colours.
fn contrast(a: &str, b: &str) -> f64 {
    let (a, b) = (luminance(a), luminance(b));
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

/// The fixture issue, rendered for a sample reader, with its pictures loaded from the
/// repository's `static/` (the mail points at the site, which is not running here).
fn rendered_page(dir: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut settings = herald::config::Settings::default();
    settings.web.secret_key = Some("dark-mode-test-secret-key-0123456789".to_string().into());
    settings.newsletter.templates_dir = root.join("templates");
    let issue = root.join("tests/fixtures/issues/2026-11-27-welcome-to-herald.md");
    let preview = herald::preview::sample(&settings, &issue).expect("the fixture renders");
    let html = preview.html.replace(
        "src=\"http://127.0.0.1:8080/img/",
        &format!("src=\"file://{}/static/img/", root.display()),
    );
    let page = dir.join("email.html");
    std::fs::write(&page, html).unwrap();
    format!("file://{}", page.display())
}

fn screenshot(name: &str, png: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    path
}

/// Opens the page on a phone in `scheme`, screenshots it (the whole mail) and measures it.
async fn look(url: &str, dark: bool) -> Option<Value> {
    let switches: &[&str] = if dark { &["--force-dark-mode"] } else { &[] };
    let browser = Browser::start_with(375, 812, switches).await?;
    support::browser::goto(&browser.client, url).await;
    let m = browser
        .client
        .execute(COLOURS, vec![])
        .await
        .expect("the script runs");
    let png = browser.client.screenshot().await.expect("screenshot");
    let name = if dark {
        "email-375-dark.png"
    } else {
        "email-375-light.png"
    };
    eprintln!("{}", screenshot(name, &png).display());
    browser.close().await;
    Some(m)
}

/// Every element's text against its background, at least 4.5:1; returns the lowest.
fn assert_readable(m: &Value, scheme: &str) -> f64 {
    let elements = m["elements"].as_array().unwrap();
    assert!(elements.len() > 20, "{scheme}: too little text found: {m}");
    let mut lowest = f64::MAX;
    let mut problems = Vec::new();
    for e in elements {
        let (color, background) = (
            e["color"].as_str().unwrap(),
            e["background"].as_str().unwrap(),
        );
        let ratio = contrast(color, background);
        lowest = lowest.min(ratio);
        if ratio < 4.5 {
            problems.push(format!(
                "{} — {color} on {background}: {ratio:.2}",
                e["what"]
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{scheme}: contrast under 4.5:1:\n{}",
        problems.join("\n")
    );
    lowest
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dark_version_is_dark_with_light_text_and_both_schemes_keep_contrast() {
    let dir = tempfile::tempdir().unwrap();
    let url = rendered_page(dir.path());
    let Some(light) = look(&url, false).await else {
        return;
    };
    let Some(dark) = look(&url, true).await else {
        return;
    };
    assert_eq!(light["dark"], false);
    assert_eq!(
        dark["dark"], true,
        "chromium did not report a dark preference"
    );

    // Light: the page as it always was; dark: a dark page with light text.
    let s = |m: &Value, k: &str| m[k].as_str().unwrap().to_string();
    assert!(luminance(&s(&light, "body")) > 0.8, "{}", s(&light, "body"));
    assert!(
        luminance(&s(&light, "text")) < 0.05,
        "{}",
        s(&light, "text")
    );
    assert!(
        luminance(&s(&dark, "body")) < 0.02,
        "dark page: {}",
        s(&dark, "body")
    );
    assert!(
        luminance(&s(&dark, "text")) > 0.7,
        "light text: {}",
        s(&dark, "text")
    );
    assert_ne!(
        s(&light, "link"),
        s(&dark, "link"),
        "links change colour in the dark"
    );
    // Pictures sit on a light backing in the dark, so dark lines on transparency stay visible.
    assert!(luminance(&s(&dark, "image")) > 0.8, "{}", s(&dark, "image"));

    let lowest_light = assert_readable(&light, "light");
    let lowest_dark = assert_readable(&dark, "dark");
    eprintln!("lowest contrast: light {lowest_light:.2}:1, dark {lowest_dark:.2}:1");
}

#[test]
fn the_contrast_arithmetic_is_wcags() {
    assert!((contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") - 21.0).abs() < 1e-9);
    assert!((contrast("rgb(119, 119, 119)", "rgb(255, 255, 255)") - 4.48).abs() < 0.01);
    assert!((contrast("rgba(10, 20, 30, 1)", "rgba(10, 20, 30, 1)") - 1.0).abs() < 1e-9);
}
