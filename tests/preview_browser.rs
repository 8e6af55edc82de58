//! The live preview (`herald preview ISSUE.md --serve`) in headless Chromium: the page shows
//! the issue on a phone and a desktop, light and dark, with the text part and the findings;
//! it follows each save of the file, shows a save that does not render as an error, and
//! recovers on the next good save. Waits poll the page; nothing sleeps a fixed time.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::Value;
use support::browser::Browser;

/// How long a save may take to reach the page here (the machine may be busy).
const FOLLOW: Duration = Duration::from_secs(15);

fn issue(title: &str) -> String {
    format!(
        "---\ntitle: \"{title}\"\ndescription: \"What the live preview shows.\"\ndate: 2026-01-02\n---\n\n\
         Words for the preview, with [a link](https://herald.example/notes).\n\n> A quote.\n"
    )
}

/// `herald preview issue.md --serve` in `dir`, and the URL it prints.
fn start(dir: &Path) -> (Child, String) {
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[newsletter]\ntemplates_dir = {:?}\n\n[web]\nsecret_key = \"live-preview-test-secret-0123456789\"\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["preview", "issue.md", "--serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("HERALD_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("herald starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = regex::Regex::new(r"http://127\.0\.0\.1:\d+/")
        .unwrap()
        .find(&line)
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .as_str()
        .to_string();
    (child, url)
}

/// Runs `script` until it returns true.
async fn until(client: &Client, what: &str, script: &str) -> Duration {
    let started = Instant::now();
    loop {
        let v = client.execute(script, vec![]).await.expect(what);
        if v == Value::Bool(true) {
            return started.elapsed();
        }
        assert!(started.elapsed() < FOLLOW, "{what}: not within {FOLLOW:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const TITLE_IS: &str = "return document.getElementById('title')?.textContent === arguments[0];";

async fn title_becomes(client: &Client, title: &str) -> Duration {
    let script = TITLE_IS.replace("arguments[0]", &serde_json::to_string(title).unwrap());
    until(client, &format!("the title {title:?}"), &script).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_preview_shows_both_widths_and_follows_each_save_through_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("issue.md");
    std::fs::write(&file, issue("The first title")).unwrap();
    let Some(browser) = Browser::start(1600, 1000).await else {
        return;
    };
    let (mut herald, url) = start(dir.path());
    let client = &browser.client;
    support::browser::goto(client, &url).await;

    title_becomes(client, "The first title").await;
    let frames = client
        .execute(
            "return [...document.querySelectorAll('iframe')].map(f => \
             [f.dataset.device, f.dataset.scheme, f.getBoundingClientRect().width]);",
            vec![],
        )
        .await
        .unwrap();
    let frames: Vec<(String, String, f64)> = serde_json::from_value(frames).unwrap();
    let width = |device: &str, scheme: &str| {
        frames
            .iter()
            .find(|(d, s, _)| d == device && s == scheme)
            .unwrap_or_else(|| panic!("no {device} {scheme} frame in {frames:?}"))
            .2
    };
    for scheme in ["light", "dark"] {
        assert_eq!(width("phone", scheme), 375.0, "{frames:?}");
        assert!(width("desktop", scheme) >= 600.0, "{frames:?}");
    }
    // The dark frames apply the mail's dark styles; the text part and the findings are there.
    let dark = client
        .execute(
            "const r = await fetch('/frame/dark'); return (await r.text()).includes('@media all');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(dark, Value::Bool(true));
    let panel = client
        .execute(
            "return document.getElementById('panel').textContent;",
            vec![],
        )
        .await
        .unwrap();
    let panel = panel.as_str().unwrap();
    assert!(
        panel.contains("Words for the preview") && panel.contains("Plain text"),
        "{panel}"
    );
    assert!(panel.contains("0 errors"), "{panel}");

    // A save: the new title arrives, and the frames are asked for again.
    std::fs::write(&file, issue("A second title, saved")).unwrap();
    let took = title_becomes(client, "A second title, saved").await;
    eprintln!("the save reached the page in {took:?}");
    until(
        client,
        "the frames follow",
        "return [...document.querySelectorAll('iframe')].every(f => f.src.endsWith('?v=' + document.getElementById('state').dataset.version));",
    )
    .await;

    // A broken save shows its error; the last good rendering stays.
    std::fs::write(&file, "---\ntitle: [not closed\n---\n\nBroken.\n").unwrap();
    until(
        client,
        "the error",
        "const e = document.getElementById('error'); return !!e && e.textContent.includes('front matter');",
    )
    .await;
    assert_eq!(
        client
            .execute(TITLE_IS, vec![Value::from("A second title, saved")])
            .await
            .unwrap(),
        Value::Bool(true)
    );

    // The next good save recovers.
    std::fs::write(&file, issue("A third title, fixed")).unwrap();
    title_becomes(client, "A third title, fixed").await;
    let error = client
        .execute("return document.getElementById('error') === null;", vec![])
        .await
        .unwrap();
    assert_eq!(
        error,
        Value::Bool(true),
        "the error stays after a good save"
    );

    browser.close().await;
    let _ = herald.kill();
    let _ = herald.wait();
}
