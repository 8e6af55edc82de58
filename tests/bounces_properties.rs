//! Properties of `bounces::read` over generated input, bounded so `cargo test` stays quick
//! (the fuzz target in `fuzz/` runs the same code without bounds):
//!
//! - it never panics, on arbitrary bytes or on real report shapes cut, spliced and
//!   corrupted;
//! - line ends never change the reading (LF, CRLF, CR alone);
//! - what it says holds together: a hard recipient has a hard reason, a delay or a
//!   complaint is never hard, a status is a valid class.

use herald::bounces::{read, read_mailbox, Kind};
use proptest::prelude::*;

const FIXTURES: &[&[u8]] = &[
    include_bytes!("fixtures/bounces/postfix-two-recipients.eml"),
    include_bytes!("fixtures/bounces/exim-rcpt-unknown.eml"),
    include_bytes!("fixtures/bounces/exim-delay.eml"),
    include_bytes!("fixtures/bounces/qmail-two-recipients.eml"),
    include_bytes!("fixtures/bounces/arf-abuse.eml"),
    include_bytes!("fixtures/bounces/vacation.eml"),
    include_bytes!("fixtures/bounces/japanese-iso-2022-jp.eml"),
    include_bytes!("fixtures/bounces/russian-koi8-r.eml"),
    include_bytes!("fixtures/bounces/forwarded-bounce.eml"),
];

/// Fragments that steer a mutation towards the parser's decisions.
const TOKENS: &[&str] = &[
    "\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n",
    "\n--b\n",
    "\nFinal-Recipient: rfc822; x@example.org\n",
    "\nAction: failed\n",
    "\nStatus: 5.1.1\n",
    "\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n",
    "\nFeedback-Type: abuse\n",
    "\nAuto-Submitted: auto-replied\n",
    "\nContent-Transfer-Encoding: base64\n",
    "=?iso-2022-jp?b?GyRC?=",
    "\u{1b}$B",
    "\r",
    "\n\n",
    ">>> DATA\n<<< 550 ",
    "From ",
    "bounces+abcdefghijklmnopqrstuv@news.example.org",
];

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edit = prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| (0u8, i, b, 0usize)),
        (any::<prop::sample::Index>(), 0..TOKENS.len()).prop_map(|(i, t)| (1u8, i, 0, t)),
        any::<prop::sample::Index>().prop_map(|i| (2u8, i, 0, 0)),
    ];
    (0..FIXTURES.len(), prop::collection::vec(edit, 0..12)).prop_map(|(which, edits)| {
        let mut bytes = FIXTURES[which].to_vec();
        for (op, at, byte, token) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => {
                    let t = TOKENS[token].as_bytes();
                    bytes.splice(i..i, t.iter().copied());
                }
                _ => bytes.truncate(i),
            }
        }
        bytes
    })
}

fn check(bytes: &[u8]) {
    let report = read(bytes);
    for r in &report.recipients {
        if r.hard {
            assert!(r.reason.is_hard(), "{r:?}");
            assert_eq!(report.kind, Kind::Bounce, "{report:?}");
        }
        if let Some(status) = r.status {
            assert!(matches!(status.class, 2 | 4 | 5));
            assert!(status.subject <= 7);
        }
    }
    let _ = read_mailbox(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes);
    }

    #[test]
    fn damaged_reports_never_panic(bytes in mutated()) {
        check(&bytes);
    }

    #[test]
    fn line_ends_do_not_change_the_reading(which in 0..FIXTURES.len()) {
        let lf = FIXTURES[which].to_vec();
        let crlf: Vec<u8> = lf.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
        let cr: Vec<u8> = lf.iter().map(|&b| if b == b'\n' { b'\r' } else { b }).collect();
        let base = read(&lf);
        for other in [read(&crlf), read(&cr)] {
            prop_assert_eq!(other.kind, base.kind);
            prop_assert_eq!(&other.recipients, &base.recipients);
            prop_assert_eq!(&other.references, &base.references);
        }
    }
}

/// A returned mail whose nested multipart trips a `debug_assert!` inside mail-parser (found
/// by the `bounces_read` fuzz target): this debug build reads it without a panic, in one mail
/// and in an mbox file.
#[test]
fn a_malformed_nested_multipart_is_read_without_a_panic() {
    let bytes = include_bytes!("fixtures/malformed/nested-multipart.eml");
    check(bytes);
    let mut mbox = b"From MAILER-DAEMON Fri Nov 27 09:12:01 2026\n".to_vec();
    mbox.extend_from_slice(bytes);
    check(&mbox);
}
