//! Properties of the readers of outside input, over generated input, bounded so `cargo test`
//! stays quick (the fuzz targets in `fuzz/` run the same entry points without bounds; the
//! bounce reader has its own in `bounces_properties.rs`):
//!
//! - the issue reader (front matter and body) never panics, and what it accepts renders:
//!   parse-then-render gives a mail, or a content error for the editor, never a panic or a
//!   template failure; the subject stays one line;
//! - the CSV import reader never panics, and every row it rejects has a line and a reason;
//! - the SMTP reply judge never panics, and a well-formed reply is judged by its class: 2xx
//!   accepted, 4xx never permanent, 5xx never transient.

use std::sync::OnceLock;

use herald::config::Settings;
use herald::domain::{EmailAddress, SubscriberStatus, TokenKey};
use herald::issue;
use herald::links::Links;
use herald::mail::{judge_reply, Composer, MailRecipient, SendOutcome};
use herald::render::{self, Templates};
use herald::subscribers::Rows;
use proptest::prelude::*;
use secrecy::SecretString;

/// Pieces of issue files: fences, fields, Markdown and HTML that steer generation towards
/// the readers' decisions.
const ISSUE_TOKENS: &[&str] = &[
    "---\n",
    "+++\n",
    "...\n",
    "title: A title\n",
    "title = \"A title\"\n",
    "subject: ",
    "date: 2026-11-27\n",
    "date: yesterday\n",
    "slug: a-slug\n",
    "slug: ../../etc\n",
    "lang: zh-CN\n",
    "lang: 12\n",
    "draft: true\n",
    "tags: [a, [b, {c: d}]]\n",
    "cover: img/x.png\n",
    "description: |\n  two\n  lines\n",
    "\n",
    "# Heading\n",
    "- item\n",
    "  - nested\n",
    "> quote\n",
    "1. one\n",
    "| a | b |\n|---|---|\n| 1 | 2 |\n",
    "```\ncode\n```\n",
    "[link](https://example.org/a?b=c&d)",
    "[rel](../x)",
    "![img](img/x.png \"t\")",
    "<div><p>raw</p></div>",
    "<mj-section>",
    "<script>alert(1)</script>",
    "{{ name }}",
    "{% raw %}",
    "[^1]\n\n[^1]: note\n",
    "**bold** _em_ ~~del~~",
    "- [ ] task\n",
    "\u{202e}\u{200b}é中",
    "\r\n",
    "\t",
    "\0",
    "\u{1}\u{c}",
];

fn issue_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(ISSUE_TOKENS).prop_map(str::to_string),
        1 => "[ -~]{0,12}",
        1 => any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// An issue file that opens with front matter holding a title, so that most cases reach the
/// body's limits and the renderer.
fn titled_issue() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("---\n"), Just("+++\n")],
        "[ -~]{1,40}",
        issue_text(),
        issue_text(),
    )
        .prop_map(|(fence, title, front, body)| {
            let title = if fence == "---\n" {
                format!("title: {title:?}\n")
            } else {
                format!("title = {title:?}\n")
            };
            format!("{fence}{title}{front}{fence}{body}\nsome text\n")
        })
}

struct Renderer {
    templates: Templates,
    settings: Settings,
    links: Links,
    composer: Composer,
}

fn renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(|| {
        let mut settings = Settings::default();
        settings.newsletter.base_url = "https://news.example.org/".into();
        let key = TokenKey::new(&SecretString::from(
            "property-test-secret-0123456789".to_string(),
        ));
        Renderer {
            templates: Templates::built_in(),
            links: Links::new(&settings.newsletter.base_url).unwrap(),
            composer: Composer::new(&settings, key).unwrap(),
            settings,
        }
    })
}

/// Reads `bytes` as an issue file; what it accepts is rendered and composed for one reader.
fn parse_and_render(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(issue) = issue::parse(bytes, "generated") else {
        return Ok(());
    };
    prop_assert!(!issue.title.is_empty());
    prop_assert!(!issue.subject.chars().any(char::is_control));
    prop_assert!(issue.subject.chars().count() <= issue::limits::MAX_SUBJECT_CHARS);
    let r = renderer();
    match render::issue(&issue, &r.templates, &r.settings.newsletter, &r.links) {
        Ok(rendered) => {
            prop_assert_eq!(&rendered.subject, &issue.subject);
            let to = MailRecipient::test_copy(EmailAddress::parse("reader@example.org").unwrap());
            let mail = r.composer.compose(&rendered, &to);
            prop_assert!(mail.is_ok(), "{:?}", mail.err());
        }
        Err(e) => prop_assert!(e.is_content(), "not the issue's fault: {e}"),
    }
    Ok(())
}

/// Reads `bytes` as an import file, checking every row.
fn read_rows(bytes: &[u8]) -> Result<usize, TestCaseError> {
    let Ok(mut rows) = Rows::new(bytes, SubscriberStatus::Active) else {
        return Ok(0);
    };
    let mut last_line = 1;
    let mut count = 0;
    while let Ok(Some(row)) = rows.next_row() {
        prop_assert!(
            row.line >= last_line,
            "line {} after {}",
            row.line,
            last_line
        );
        last_line = row.line;
        if let Err(reason) = &row.parsed {
            prop_assert!(
                !reason.trim().is_empty(),
                "line {} rejected without a reason",
                row.line
            );
        }
        count += 1;
    }
    Ok(count)
}

const CSV_CELLS: &[&str] = &[
    "a@example.org",
    "A@Example.ORG",
    "not an address",
    "\"quoted, with comma\"",
    "\"unclosed",
    "=cmd|'/C calc'!A0",
    "active",
    "unsubscribed",
    "bogus-status",
    "Ada Lovelace",
    "\u{202e}evil",
    "",
    " ",
    "\u{feff}email",
];

fn csv_text() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        4 => prop::sample::select(CSV_CELLS).prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ];
    let sep = prop::sample::select(&[",", ",", "\n", "\r\n", "\r", "\""][..]);
    let header = prop::sample::select(
        &[
            "email\n",
            "email,name,status\n",
            "Name,EMAIL,city\r\n",
            "\u{feff}email,status\n",
            "name\n",
            "",
        ][..],
    );
    (header, prop::collection::vec((cell, sep), 0..30)).prop_map(|(header, cells)| {
        let mut out = header.as_bytes().to_vec();
        for (cell, sep) in cells {
            out.extend_from_slice(&cell);
            out.extend_from_slice(sep.as_bytes());
        }
        out
    })
}

fn reply_text() -> impl Strategy<Value = String> {
    let words = prop::collection::vec(
        prop_oneof![
            prop::sample::select(
                &[
                    "5.1.1",
                    "4.7.0",
                    "5.7.1",
                    "5.1.8",
                    "rate limited",
                    "user unknown",
                    "<news@example.org>",
                    "<reader@example.org>",
                    "Sender address rejected",
                    "mailbox full",
                ][..]
            )
            .prop_map(str::to_string),
            "[ -~]{0,10}",
        ],
        0..6,
    )
    .prop_map(|w| w.join(" "));
    // lettre reads the class 2 to 5 and the category 0 to 5.
    let code = (2u16..6, 0u16..6, 0u16..10)
        .prop_map(|(class, category, detail)| class * 100 + category * 10 + detail);
    (code, prop::collection::vec(words, 1..4)).prop_map(|(code, lines)| {
        let last = lines.len() - 1;
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let sep = if i == last { ' ' } else { '-' };
                format!("{code}{sep}{line}\r\n")
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_issue_reader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_and_render(&bytes)?;
    }

    #[test]
    fn the_issue_reader_never_panics_on_issue_like_text(text in issue_text()) {
        parse_and_render(text.as_bytes())?;
    }

    #[test]
    fn the_csv_reader_gives_every_rejection_a_line_and_a_reason(bytes in csv_text()) {
        read_rows(&bytes)?;
    }

    #[test]
    fn the_csv_reader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        read_rows(&bytes)?;
    }

    #[test]
    fn any_text_as_a_reply_never_panics(text in any::<String>()) {
        let _ = judge_reply(&text, "news@example.org", "reader@example.org");
        let _ = herald::bounces::classify_reply(&text);
    }

    #[test]
    fn a_well_formed_reply_is_judged_by_its_class(reply in reply_text()) {
        let code: u16 = reply[..3].parse().unwrap();
        let outcome = judge_reply(&reply, "news@example.org", "reader@example.org");
        let outcome = outcome.unwrap_or_else(|| panic!("{reply:?} is a reply"));
        match (code / 100, &outcome) {
            (2 | 3, SendOutcome::Accepted { .. }) => {}
            (4, SendOutcome::Transient { .. } | SendOutcome::RelayDown { .. }) => {}
            (5, SendOutcome::Permanent { .. } | SendOutcome::RelayDown { .. }) => {}
            _ => prop_assert!(false, "{reply:?} judged {outcome:?}"),
        }
        let _ = herald::bounces::classify_reply(&reply);
    }
}

proptest! {
    // Rendering with mrml takes milliseconds per case.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn what_the_issue_reader_accepts_renders_into_a_mail(text in titled_issue()) {
        parse_and_render(text.as_bytes())?;
    }
}

/// The generators reach the interesting cases: issues that parse and render, and CSV files
/// with accepted and rejected rows (otherwise the properties above would check little).
#[test]
fn the_generated_inputs_reach_past_the_first_checks() {
    let issue = "---\ntitle: Hello\n---\n# Hi\n\n- a\n  - b\n\n[x](https://example.org)\n";
    let parsed = issue::parse(issue.as_bytes(), "hello").unwrap();
    let r = renderer();
    let rendered = render::issue(&parsed, &r.templates, &r.settings.newsletter, &r.links).unwrap();
    assert_eq!(rendered.subject, "Hello");

    let csv = b"email,name\na@example.org,Ada\nnot an address,Bob\n";
    let mut rows = Rows::new(&csv[..], SubscriberStatus::Active).unwrap();
    let first = rows.next_row().unwrap().unwrap();
    assert_eq!(first.line, 2);
    assert!(first.parsed.is_ok());
    let second = rows.next_row().unwrap().unwrap();
    assert_eq!(second.line, 3);
    assert!(second.parsed.unwrap_err().contains("address"));
    assert!(rows.next_row().unwrap().is_none());

    assert!(matches!(
        judge_reply("250 2.0.0 Ok: queued\r\n", "n@example.org", "r@example.org"),
        Some(SendOutcome::Accepted { .. })
    ));
    assert!(matches!(
        judge_reply(
            "450-4.7.1 slow down\r\n450 4.7.1 rate limited\r\n",
            "n@example.org",
            "r@example.org"
        ),
        Some(SendOutcome::Transient {
            throttled: true,
            ..
        })
    ));
    assert!(matches!(
        judge_reply(
            "550 5.1.1 user unknown\r\n",
            "n@example.org",
            "r@example.org"
        ),
        Some(SendOutcome::Permanent { .. })
    ));
    assert!(matches!(
        judge_reply(
            "535 5.7.8 bad credentials\r\n",
            "n@example.org",
            "r@example.org"
        ),
        Some(SendOutcome::RelayDown { .. })
    ));
    assert!(judge_reply("hello", "n@example.org", "r@example.org").is_none());
}

/// A pattern of the API's OpenAPI document, by JSON pointer.
fn document_pattern(pointer: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(herald::web::api::OPENAPI).unwrap();
    doc.pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("no pattern at {pointer}"))
        .to_string()
}

/// Strings that match a document pattern (`^…$`, anchored whole, as every one of them is).
fn from_document(pointer: &str) -> impl Strategy<Value = String> {
    let pattern = document_pattern(pointer);
    let whole = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .unwrap_or_else(|| panic!("{pointer} is not anchored at both ends: {pattern}"));
    proptest::string::string_regex(whole).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// What the API document allows, the server accepts: an address that matches the
    /// document's pattern is one herald parses.
    #[test]
    fn every_address_the_api_document_allows_is_accepted(
        address in from_document("/components/schemas/EmailAddress/pattern")
    ) {
        prop_assume!(address.len() <= 254);
        prop_assert!(EmailAddress::parse(&address).is_ok(), "{address:?}");
    }

    #[test]
    fn every_name_the_api_document_allows_is_accepted(
        name in from_document("/components/schemas/SubscriberName/pattern")
    ) {
        prop_assume!(name.chars().count() <= 100);
        let parsed = herald::domain::SubscriberName::parse(&name);
        prop_assert!(parsed.is_ok(), "{name:?}: {parsed:?}");
    }

    #[test]
    fn every_csv_file_the_api_document_allows_has_an_email_column(
        csv in from_document(
            "/paths/~1subscribers~1import/post/requestBody/content/text~1csv/schema/pattern"
        )
    ) {
        let rows = Rows::new(csv.as_bytes(), SubscriberStatus::Active);
        prop_assert!(rows.is_ok(), "{csv:?}: {:?}", rows.err());
        read_rows(csv.as_bytes())?;
    }
}
