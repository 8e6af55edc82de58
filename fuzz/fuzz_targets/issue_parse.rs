//! `issue::parse` on arbitrary bytes: issue files come from editors' repositories and the
//! API, so reading one must never panic, and what it accepts must hold together.
//!
//! Run: `cargo +nightly fuzz run issue_parse -- -max_total_time=600`
//! (seed the corpus from `issues/` and `tests/fixtures/check/`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(issue) = herald::issue::parse(data, "fuzzed") {
        assert!(!issue.title.is_empty());
        assert!(!issue.subject.chars().any(char::is_control));
        assert!(issue.subject.chars().count() <= herald::issue::limits::MAX_SUBJECT_CHARS);
        assert!(herald::domain::IssueSlug::parse(issue.slug.as_str()).is_ok());
    }
});
