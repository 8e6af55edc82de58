use super::*;

fn parse_str(text: &str) -> Result<Issue, (Option<usize>, IssueErrorKind)> {
    parse(text.as_bytes(), "2024-05-31-weekly")
}

#[test]
fn reads_hugo_yaml_front_matter() {
    let issue = parse_str(
        "---\ntitle: \"周报 | Weekly\"\ndescription: A  short\n  summary\ndate: 2019-07-26T15:00:00+08:00\n\
         tags: [\"a\", \"b\"]\ncategories: \"News\"\ncover: /img/c.png\nunknown_field: 3\n---\n\nHello **world**\n",
    )
    .unwrap();
    assert_eq!(issue.title, "周报 | Weekly");
    assert_eq!(issue.subject, issue.title);
    assert_eq!(issue.preheader.as_deref(), Some("A short summary"));
    assert_eq!(issue.slug.as_str(), "2024-05-31-weekly");
    assert_eq!(
        issue.date.unwrap().to_rfc3339(),
        "2019-07-26T15:00:00+08:00"
    );
    assert_eq!(issue.tags, vec!["a", "b"]);
    assert_eq!(issue.categories, vec!["News"]);
    assert_eq!(issue.cover.as_deref(), Some("/img/c.png"));
    assert_eq!(issue.body_line, 11);
    assert!(issue.body.contains("Hello **world**"));
}

#[test]
fn reads_toml_front_matter_with_native_dates() {
    let issue = parse_str(
        "+++\ntitle = \"T\"\nsubject = \"S\"\nslug = \"custom\"\ndate = 2024-05-31T09:00:00Z\n+++\nBody\n",
    )
    .unwrap();
    assert_eq!(issue.subject, "S");
    assert_eq!(issue.slug.as_str(), "custom");
    assert_eq!(
        issue.date.unwrap().to_rfc3339(),
        "2024-05-31T09:00:00+00:00"
    );
}

#[test]
fn accepts_bare_dates_crlf_and_bom() {
    let issue =
        parse_str("\u{feff}---\r\ntitle: T\r\ndate: 2024-05-31\r\n---\r\nBody\r\n").unwrap();
    assert_eq!(
        issue.date.unwrap().to_rfc3339(),
        "2024-05-31T00:00:00+00:00"
    );
}

#[test]
fn missing_title_is_an_error() {
    let (line, kind) = parse_str("---\ndate: 2024-05-31\n---\nBody\n").unwrap_err();
    assert!(matches!(kind, IssueErrorKind::MissingTitle));
    assert_eq!(line, Some(1));
    let (_, kind) = parse_str("Just a body, no front matter\n").unwrap_err();
    assert!(matches!(kind, IssueErrorKind::MissingTitle));
}

#[test]
fn unparseable_date_names_its_line() {
    let (line, kind) = parse_str("---\ntitle: T\ndate: next friday\n---\nBody\n").unwrap_err();
    assert!(matches!(kind, IssueErrorKind::BadDate(ref d) if d == "next friday"));
    assert_eq!(line, Some(3));
}

#[test]
fn unclosed_front_matter_is_an_error() {
    let (line, kind) = parse_str("---\ntitle: T\n\nBody without a closing fence\n").unwrap_err();
    assert!(matches!(kind, IssueErrorKind::UnclosedFrontMatter("---")));
    assert_eq!(line, Some(1));
}

#[test]
fn invalid_utf8_names_its_line() {
    let (line, kind) = parse(b"---\ntitle: T\n---\nok\nbad \xff byte\n", "x").unwrap_err();
    assert!(matches!(kind, IssueErrorKind::NotUtf8));
    assert_eq!(line, Some(5));
}

#[test]
fn empty_body_is_an_error() {
    let (line, kind) = parse_str("---\ntitle: T\n---\n\n   \n").unwrap_err();
    assert!(matches!(kind, IssueErrorKind::EmptyBody));
    assert_eq!(line, Some(4));
}

#[test]
fn yaml_syntax_error_names_a_file_line() {
    let (line, kind) = parse_str("---\ntitle: T\ntags: [unclosed\n---\nBody\n").unwrap_err();
    assert!(matches!(kind, IssueErrorKind::FrontMatter(_)));
    assert!(line.is_some_and(|l| (3..=5).contains(&l)), "{line:?}");
}

#[test]
fn multi_line_title_cannot_reach_a_header() {
    let (line, kind) =
        parse_str("---\ntitle: \"Hello\\r\\nBcc: victim@example.org\"\n---\nBody\n").unwrap_err();
    assert!(matches!(
        kind,
        IssueErrorKind::BadField { field: "title", .. }
    ));
    assert_eq!(line, Some(2));
}

#[test]
fn bad_slug_is_an_error() {
    let (_, kind) = parse_str("---\ntitle: T\nslug: ../../etc\n---\nBody\n").unwrap_err();
    assert!(matches!(kind, IssueErrorKind::Slug(_)));
}

#[test]
fn load_error_message_is_one_line_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.md");
    std::fs::write(&path, "---\ntitle: T\ndate: someday\n---\nBody\n").unwrap();
    let message = load(&path, &IssueLimits::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(&format!("{}:3: ", path.display())),
        "{message}"
    );
    assert!(!message.contains('\n'));
}

#[test]
fn draft_and_cover_alt_come_from_the_front_matter() {
    let issue = parse_str("---\ntitle: T\ncover: c.png\n---\nBody\n").unwrap();
    assert!(!issue.draft, "an issue is not a draft unless it says so");
    assert_eq!(
        issue.cover_alt, "T",
        "the cover's alt text defaults to the title"
    );
    let issue =
        parse_str("---\ntitle: T\ndraft: true\ncover: c.png\ncover_alt: A chart\n---\nBody\n")
            .unwrap();
    assert!(issue.draft);
    assert_eq!(issue.cover_alt, "A chart");
    let issue = parse_str("+++\ntitle = \"T\"\ndraft = true\n+++\nBody\n").unwrap();
    assert!(issue.draft);
    let (line, kind) = parse_str("---\ntitle: T\ndraft: maybe\n---\nBody\n").unwrap_err();
    assert_eq!(line, Some(3), "{kind}");
}

#[test]
fn control_characters_that_no_mail_can_carry_are_refused_with_their_line() {
    for c in [
        '\0', '\u{1}', '\u{8}', '\u{b}', '\u{c}', '\u{1b}', '\u{fffe}', '\u{ffff}',
    ] {
        let text = format!("---\ntitle: T\n---\n\nfirst\nsecond{c}line\n");
        let (line, kind) = parse_str(&text).unwrap_err();
        assert_eq!(line, Some(6), "{c:?}");
        assert!(
            matches!(kind, IssueErrorKind::ControlCharacter(x) if x == c),
            "{kind:?}"
        );
        assert!(kind.to_string().contains("U+"), "{kind}");
    }
    let in_front = "---\ntitle: \"T\u{1}\"\n---\n\nbody\n";
    assert_eq!(parse_str(in_front).unwrap_err().0, Some(2));
    // Tabs and every kind of line end stay welcome.
    assert!(parse_str("---\r\ntitle: T\r\n---\r\n\r\n\tbody\rmore\u{7f}\n").is_ok());
}
