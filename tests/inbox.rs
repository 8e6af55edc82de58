//! Inbox placement basics: the example issue, rendered as a send renders it, scored by
//! SpamAssassin's own rules offline (`spamassassin -L -t`, no network tests). The preheader
//! that inboxes show must not read as hidden text (`HTML_FONT_LOW_CONTRAST`), and the mail
//! stays well under the spam threshold.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use support::require_tool;

/// `spamassassin -L -t` over `mail`: its report.
fn score(spamassassin: &Path, mail: &[u8]) -> String {
    let mut child = Command::new(spamassassin)
        .args(["-L", "-t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spamassassin starts");
    child.stdin.take().unwrap().write_all(mail).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_example_issue_trips_no_hidden_text_rule_and_scores_well_under_five() {
    let Some(spamassassin) = require_tool(
        "spamassassin",
        &["/usr/bin/spamassassin"],
        "apt-get install spamassassin",
    ) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut settings = herald::config::Settings::default();
    settings.web.secret_key = Some("inbox-test-secret-key-0123456789".to_string().into());
    settings.newsletter.templates_dir = root.join("templates");
    settings.newsletter.from = "Herald Weekly <newsletter@herald.example>".into();
    let issue = root.join("tests/fixtures/issues/2026-11-27-welcome-to-herald.md");
    let preview = herald::preview::sample(&settings, &issue).expect("the fixture renders");
    // The preheader is there for inboxes to show.
    let preheader = preview
        .rendered
        .preheader
        .clone()
        .expect("the fixture has a description");
    assert!(
        preview.html.contains(&preheader),
        "no preheader in the HTML"
    );

    let report = score(&spamassassin, &preview.eml);
    let status = report
        .lines()
        .find(|l| l.starts_with("X-Spam-Status:"))
        .unwrap_or_else(|| panic!("no X-Spam-Status in\n{report}"));
    let points: f64 = regex::Regex::new(r"score=(-?[\d.]+)")
        .unwrap()
        .captures(status)
        .unwrap_or_else(|| panic!("no score in {status}"))[1]
        .parse()
        .unwrap();
    let analysis = report
        .split("Content analysis details:")
        .nth(1)
        .unwrap_or_else(|| panic!("no analysis in\n{report}"));
    eprintln!("SpamAssassin: {points} points{analysis}");
    assert!(
        !analysis.contains("HTML_FONT_LOW_CONTRAST"),
        "the preheader reads as hidden text:{analysis}"
    );
    assert!(points < 5.0, "{points} points:{analysis}");
}
