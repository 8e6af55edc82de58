//! `bounces::read` and `bounces::read_mailbox` on arbitrary bytes: returned mail comes from
//! anyone on the internet, so reading it must never panic, whatever the bytes.
//!
//! Run: `cargo +nightly fuzz run bounces_read -- -max_total_time=600`
//! (seed the corpus from `tests/fixtures/bounces/` for a head start).

#![no_main]

use libfuzzer_sys::fuzz_target;

/// Lets a panic from mail-parser's own `debug_assert!`s unwind to the guard in
/// `bounces::read` (which reads it as "not mail", as the release build's parser recovers);
/// every other panic still aborts, as libFuzzer's hook does, and is reported as a crash.
fn allow_mail_parser_debug_asserts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let aborting = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info
                .location()
                .is_some_and(|l| l.file().contains("/mail-parser-"));
            if !in_mail_parser {
                aborting(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    allow_mail_parser_debug_asserts();
    let report = herald::bounces::read(data);
    for recipient in &report.recipients {
        // What herald stores and prints must hold together.
        if recipient.hard {
            assert!(recipient.reason.is_hard());
        }
    }
    let _ = herald::bounces::read_mailbox(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = herald::bounces::classify_reply(text);
    }
});
