//! `bounces::read` and `bounces::read_mailbox` on arbitrary bytes: returned mail comes from
//! anyone on the internet, so reading it must never panic, whatever the bytes.
//!
//! Run: `cargo +nightly fuzz run bounces_read -- -max_total_time=600`
//! (seed the corpus from `tests/fixtures/bounces/` for a head start).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
