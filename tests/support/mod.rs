//! Helpers shared by the integration tests.
//!
//! External tools (smtp-sink, chromium) may be missing on a developer's machine: a test that
//! needs one skips with a printed reason. CI sets `HERALD_REQUIRE_TOOLS=1`, which turns that
//! skip into a failure, so the tests always run there.

#![allow(dead_code)]

pub mod app;
pub mod browser;
pub mod dashboard;
pub mod dovecot;
pub mod herald_site;
pub mod postgres;
pub mod server;
pub mod smtp_client;
pub mod smtp_server;
pub mod smtp_sink;
pub mod snapshot;

use std::path::PathBuf;

/// Finds `name` on `PATH` or at one of `fallbacks`. When it is missing, returns `None` after
/// printing why the caller skips, or panics if `HERALD_REQUIRE_TOOLS` is set.
pub fn require_tool(name: &str, fallbacks: &[&str], install_hint: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    let found = on_path.or_else(|| {
        fallbacks
            .iter()
            .map(PathBuf::from)
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let reason = format!("`{name}` not found (install it with: {install_hint})");
        if std::env::var_os("HERALD_REQUIRE_TOOLS").is_some_and(|v| !v.is_empty() && v != "0") {
            panic!("{reason}; HERALD_REQUIRE_TOOLS is set, so this test may not skip");
        }
        eprintln!("SKIPPED: {reason}");
    }
    found
}
