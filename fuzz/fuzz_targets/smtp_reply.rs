//! The SMTP reply judge (`mail::judge_reply`) on arbitrary text: a relay's reply is outside
//! input, so judging one must never panic, and a reply is judged by its class (2xx accepted,
//! 4xx never permanent, 5xx never transient).
//!
//! Run: `cargo +nightly fuzz run smtp_reply -- -max_total_time=600`

#![no_main]

use herald::mail::{judge_reply, SendOutcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(outcome) = judge_reply(text, "news@example.org", "reader@example.org") else {
        return;
    };
    match text.as_bytes().first() {
        Some(b'2') => assert!(
            matches!(outcome, SendOutcome::Accepted { .. }),
            "{outcome:?}"
        ),
        Some(b'4') => assert!(
            !matches!(outcome, SendOutcome::Permanent { .. }),
            "{outcome:?}"
        ),
        Some(b'5') => assert!(
            !matches!(outcome, SendOutcome::Transient { .. }),
            "{outcome:?}"
        ),
        _ => {}
    }
});
