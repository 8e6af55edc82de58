//! Composing one recipient's message: headers, structure, List-Unsubscribe, Message-ID and
//! DKIM, checked by parsing the produced bytes with an independent parser (mail-parser) and
//! verifying DKIM signatures with a verifier written here from RFC 6376 and RFC 8463.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use herald::config::Settings;
use herald::domain::{
    DeliveryToken, EmailAddress, IssueSlug, Purpose, ReturnAddress, ReturnPath, SubscriberName,
    TokenKey,
};
use herald::mail::{Composer, MailRecipient, OutgoingMail, TEST_SUBSCRIBER_ID};
use herald::render::{Escape, RenderedIssue, Slot, Split};
use mail_parser::{MessageParser, MimeHeaders as _};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

mod support;
use support::snapshot::{assert_snapshot, blank_volatile};

const SECRET: &str = "test-secret-key-0123456789abcdef";
/// A time well after any test run; unsubscribe tokens never expire, so they must verify.
const FAR_FUTURE: i64 = 4_000_000_000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dkim")
        .join(name)
}

fn key() -> TokenKey {
    TokenKey::new(&SecretString::from(SECRET.to_string()))
}

fn settings() -> Settings {
    let mut s = Settings::default();
    s.newsletter.name = "Herald Weekly".into();
    s.newsletter.from = "Herald Weekly <news@example.org>".into();
    s.newsletter.reply_to = Some("The Editor <editor@example.org>".into());
    s.newsletter.base_url = "https://news.example.org".into();
    s.newsletter.unsubscribe_mailto = Some("unsubscribe@example.org".into());
    s
}

fn dkim_settings(key_file: &str) -> Settings {
    let mut s = settings();
    s.smtp.dkim_selector = Some("herald2026".into());
    s.smtp.dkim_domain = Some("example.org".into());
    s.smtp.dkim_key_file = Some(fixture(key_file));
    s
}

fn composer(settings: &Settings) -> Composer {
    Composer::new(settings, key()).expect("test settings are valid")
}

fn issue(subject: &str) -> RenderedIssue {
    let html = format!(
        "<!doctype html><html><body><p>Hello {name}!</p>\
         <p>This week: 新闻 and naïve café notes.</p>\
         <p><a href=\"{unsub}\">Unsubscribe</a> ({email})</p></body></html>",
        name = Slot::Name.marker(),
        unsub = Slot::UnsubscribeUrl.marker(),
        email = Slot::Email.marker(),
    );
    let text = format!(
        "Hello {name}!\n\nThis week: 新闻 and naïve café notes.\n\nUnsubscribe: {unsub}\n",
        name = Slot::Name.marker(),
        unsub = Slot::UnsubscribeUrl.marker(),
    );
    RenderedIssue {
        slug: IssueSlug::parse("weekly-42").unwrap(),
        subject: subject.to_string(),
        html: Split::new(&html, Escape::Html),
        text: Split::new(&text, Escape::None),
        preheader: None,
    }
}

fn jane() -> MailRecipient {
    MailRecipient {
        subscriber_id: 42,
        email: EmailAddress::parse("jane.doe@example.net").unwrap(),
        name: SubscriberName::parse("Jane Doe").unwrap(),
    }
}

fn compose(settings: &Settings, subject: &str, to: &MailRecipient) -> (OutgoingMail, Vec<u8>) {
    let mail = composer(settings).compose(&issue(subject), to).unwrap();
    let bytes = mail.formatted();
    (mail, bytes)
}

/// The header block as (name, full field text with folding kept), and the body.
fn split_message(bytes: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    let text = std::str::from_utf8(bytes).expect("the message is ASCII");
    let end = text
        .find("\r\n\r\n")
        .expect("a blank line ends the headers");
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text[..end].split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = fields
                .last_mut()
                .expect("no continuation before the first field");
            last.1.push_str("\r\n");
            last.1.push_str(line);
        } else {
            let (name, _) = line.split_once(':').expect("every field has a colon");
            fields.push((name.to_string(), line.to_string()));
        }
    }
    (fields, bytes[end + 4..].to_vec())
}

fn header_values<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, field)| field.split_once(':').unwrap().1.trim())
        .collect()
}

fn assert_well_formed_header_block(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap();
    let end = text.find("\r\n\r\n").unwrap();
    for line in text[..end].split("\r\n") {
        assert!(!line.is_empty(), "empty line inside the header block");
        assert!(!line.contains(['\r', '\n']), "bare CR or LF in {line:?}");
        assert!(line.len() <= 998, "line longer than RFC 5322 allows");
        assert!(line.is_ascii(), "non-ASCII header line {line:?}");
        if !line.starts_with([' ', '\t']) {
            let (name, _) = line.split_once(':').expect("field without a colon");
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
                "bad field name {name:?}"
            );
        }
    }
    // CRLF everywhere: no LF without its CR.
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at byte {i}");
        }
    }
}

#[test]
fn subject_with_a_line_break_cannot_add_a_header() {
    let (_, bytes) = compose(&settings(), "Hello\r\nBcc: victim@example.org", &jane());
    assert_well_formed_header_block(&bytes);
    let (fields, _) = split_message(&bytes);
    assert!(
        fields
            .iter()
            .all(|(name, _)| !name.eq_ignore_ascii_case("bcc")),
        "{fields:?}"
    );
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    assert!(parsed.bcc().is_none());
    assert_eq!(parsed.subject(), Some("Hello Bcc: victim@example.org"));
    let to: Vec<_> = parsed.to().unwrap().iter().collect();
    assert_eq!(to.len(), 1);
    assert_eq!(to[0].address(), Some("jane.doe@example.net"));
}

#[test]
fn display_name_cannot_smuggle_a_header_or_a_second_recipient() {
    assert!(SubscriberName::parse("Eve\r\nBcc: victim@example.org").is_err());
    let sneaky = MailRecipient {
        subscriber_id: 7,
        email: EmailAddress::parse("eve@example.net").unwrap(),
        name: SubscriberName::parse("Eve \"<victim@example.org>\", Mallory <m@example.org>")
            .unwrap(),
    };
    let (mail, bytes) = compose(&settings(), "Hi", &sneaky);
    assert_well_formed_header_block(&bytes);
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    let to: Vec<_> = parsed.to().unwrap().iter().collect();
    assert_eq!(to.len(), 1, "{to:?}");
    assert_eq!(to[0].address(), Some("eve@example.net"));
    assert_eq!(
        to[0].name(),
        Some("Eve \"<victim@example.org>\", Mallory <m@example.org>")
    );
    assert_eq!(mail.envelope_to(), "eve@example.net");
    assert!(parsed.bcc().is_none() && parsed.cc().is_none());
}

#[test]
fn body_is_alternative_text_then_html_in_utf8() {
    let (_, bytes) = compose(&settings(), "Weekly", &jane());
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    let root = parsed.root_part();
    let ct = root.content_type().unwrap();
    assert_eq!(ct.ctype(), "multipart");
    assert_eq!(ct.subtype(), Some("alternative"));
    let parts: Vec<_> = root
        .sub_parts()
        .expect("a multipart root")
        .iter()
        .map(|id| parsed.part(*id).unwrap())
        .collect();
    assert_eq!(parts.len(), 2);
    let kinds: Vec<_> = parts
        .iter()
        .map(|p| {
            let ct = p.content_type().unwrap();
            (
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()),
                ct.attribute("charset").map(str::to_ascii_lowercase),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("text/plain".to_string(), Some("utf-8".to_string())),
            ("text/html".to_string(), Some("utf-8".to_string())),
        ]
    );
    assert!(parts[0]
        .text_contents()
        .unwrap()
        .contains("新闻 and naïve café"));
    assert!(parts[1]
        .text_contents()
        .unwrap()
        .contains("新闻 and naïve café"));
    assert!(parts[1]
        .text_contents()
        .unwrap()
        .contains("<p>Hello Jane Doe!</p>"));
    assert_eq!(
        parsed.header_raw("MIME-Version").map(str::trim),
        Some("1.0")
    );
}

#[test]
fn utf8_subject_is_encoded_and_decodes_back() {
    let subject = "本周新闻：Rust 与电子邮件 — issue #42";
    let (_, bytes) = compose(&settings(), subject, &jane());
    assert_well_formed_header_block(&bytes);
    let (fields, _) = split_message(&bytes);
    let raw = header_values(&fields, "Subject");
    assert_eq!(raw.len(), 1);
    assert!(
        raw[0].contains("=?utf-8?"),
        "not RFC 2047 encoded: {}",
        raw[0]
    );
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(parsed.subject(), Some(subject));
}

#[test]
fn list_unsubscribe_holds_a_verifying_one_click_url_and_the_mailto() {
    let (_, bytes) = compose(&settings(), "Weekly", &jane());
    let (fields, _) = split_message(&bytes);
    let unfolded = |name: &str| {
        let values = header_values(&fields, name);
        assert_eq!(values.len(), 1, "{name}: {values:?}");
        values[0].replace("\r\n", "")
    };
    let list_unsubscribe = unfolded("List-Unsubscribe");
    let re = regex::Regex::new(
        r"^<(https://news\.example\.org/unsubscribe/([A-Za-z0-9_-]+))>,\s*<mailto:unsubscribe@example\.org\?subject=unsubscribe>$",
    )
    .unwrap();
    let caps = re
        .captures(&list_unsubscribe)
        .unwrap_or_else(|| panic!("unexpected List-Unsubscribe: {list_unsubscribe}"));
    assert_eq!(
        key().verify(Purpose::Unsubscribe, &caps[2], FAR_FUTURE),
        Ok(42)
    );
    assert_eq!(
        unfolded("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(
        unfolded("List-Id"),
        "Herald Weekly <herald-weekly.example.org>"
    );
}

#[test]
fn list_unsubscribe_has_no_mailto_unless_configured_and_list_id_can_be_set() {
    let mut s = settings();
    s.newsletter.unsubscribe_mailto = None;
    s.newsletter.list_id = Some("weekly.example.org".into());
    let (_, bytes) = compose(&s, "Weekly", &jane());
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    let value = parsed.header_raw("List-Unsubscribe").unwrap().trim();
    assert!(!value.contains("mailto:"), "{value}");
    assert!(value.starts_with("<https://news.example.org/unsubscribe/"));
    assert_eq!(
        parsed.header_raw("List-Id").unwrap().trim(),
        "Herald Weekly <weekly.example.org>"
    );
}

#[test]
fn unsubscribe_url_is_personalised_into_both_parts() {
    let (_, bytes) = compose(&settings(), "Weekly", &jane());
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    let header = parsed
        .header_raw("List-Unsubscribe")
        .unwrap()
        .replace("\r\n", "");
    let url = header
        .trim()
        .split('>')
        .next()
        .unwrap()
        .trim_start_matches('<');
    let text = parsed.body_text(0).unwrap();
    let html = parsed.body_html(0).unwrap();
    let expected_line = format!("Unsubscribe: {url}");
    assert!(text.lines().any(|l| l == expected_line), "{text}");
    assert!(html.contains(&format!("<a href=\"{url}\">")), "{html}");
    for body in [&text, &html] {
        assert!(!body.contains("x-herald-slot"), "unfilled slot in {body}");
    }
    // Another subscriber gets another link.
    let mut other = jane();
    other.subscriber_id = 43;
    let (_, other_bytes) = compose(&settings(), "Weekly", &other);
    let other_parsed = MessageParser::default().parse(&other_bytes).unwrap();
    assert!(!other_parsed.body_text(0).unwrap().contains(url));
}

#[test]
fn message_id_is_on_our_domain_and_unique() {
    let composer = composer(&settings());
    let issue = issue("Weekly");
    let a = composer.compose(&issue, &jane()).unwrap();
    let b = composer.compose(&issue, &jane()).unwrap();
    assert_ne!(a.message_id(), b.message_id());
    let re = regex::Regex::new(r"^<[0-9a-f]{32}\.weekly-42@example\.org>$").unwrap();
    for mail in [&a, &b] {
        assert!(re.is_match(mail.message_id()), "{}", mail.message_id());
        let parsed = MessageParser::default()
            .parse(&mail.formatted())
            .unwrap()
            .into_owned();
        assert_eq!(
            parsed.message_id(),
            Some(mail.message_id().trim_matches(['<', '>']))
        );
    }
}

#[test]
fn envelope_and_reply_to_come_from_settings() {
    let (mail, bytes) = compose(&settings(), "Weekly", &jane());
    assert_eq!(mail.envelope_from(), "news@example.org");
    assert_eq!(mail.envelope_to(), "jane.doe@example.net");
    assert_eq!(mail.subscriber_id(), 42);
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Herald Weekly"), Some("news@example.org"))
    );
    let reply_to = parsed.reply_to().unwrap().first().unwrap();
    assert_eq!(reply_to.address(), Some("editor@example.org"));
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Jane Doe"));
    assert!(parsed.date().is_some());
}

#[test]
fn with_a_return_path_each_copy_s_envelope_sender_names_its_delivery() {
    let mut s = settings();
    s.bounces.return_path = Some("bounces@news.example.org".into());
    let composer = composer(&s);
    let prepared = composer.prepare(&issue("Weekly"), Some(7));
    let mail = composer.compose_prepared(&prepared, &jane()).unwrap();
    let rp = ReturnPath::parse("bounces@news.example.org").unwrap();
    let ReturnAddress::Tagged(token) = rp.recognise(mail.envelope_from()) else {
        panic!("{} is not a tagged return path", mail.envelope_from());
    };
    assert!(mail.envelope_from().len() <= 64, "{}", mail.envelope_from());
    assert_eq!(
        key().verify_delivery(token),
        Ok(DeliveryToken {
            issue_id: 7,
            subscriber_id: 42
        })
    );
    // Another subscriber's copy carries another token.
    let mut other = jane();
    other.subscriber_id = 43;
    let other = composer.compose_prepared(&prepared, &other).unwrap();
    assert_ne!(other.envelope_from(), mail.envelope_from());
    // The From header is unchanged, and Feedback-ID names issue, list and sender.
    let bytes = mail.formatted();
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("news@example.org")
    );
    assert_eq!(
        parsed.header_raw("Feedback-ID").map(str::trim),
        Some("weekly-42:herald-weekly.example.org:example.org")
    );
    // A test copy is no delivery: the bare return path.
    let test = composer
        .compose_test(&issue("Weekly"), &jane().email)
        .unwrap();
    assert_eq!(test.envelope_from(), "bounces@news.example.org");
}

#[test]
fn test_copy_goes_to_the_given_address_with_a_harmless_token() {
    let composer = composer(&settings());
    let to = EmailAddress::parse("editor@example.com").unwrap();
    let mail = composer.compose_test(&issue("Weekly"), &to).unwrap();
    assert_eq!(mail.envelope_to(), "editor@example.com");
    assert_eq!(mail.subscriber_id(), TEST_SUBSCRIBER_ID);
    let bytes = mail.formatted();
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("[TEST] Weekly"),
        "a test copy says so in its subject"
    );
    let header = parsed
        .header_raw("List-Unsubscribe")
        .unwrap()
        .replace("\r\n", "");
    let token = header
        .split("/unsubscribe/")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap();
    assert_eq!(
        key().verify(Purpose::Unsubscribe, token, FAR_FUTURE),
        Ok(TEST_SUBSCRIBER_ID)
    );
    assert!(parsed.body_text(0).unwrap().starts_with("Hello !"));
}

#[test]
fn bad_settings_are_errors_naming_the_key() {
    /// A change that breaks one setting.
    type Change = fn(&mut Settings);
    let cases: [(&str, Change); 7] = [
        ("newsletter.from", |s: &mut Settings| {
            s.newsletter.from = "not an address".into()
        }),
        ("newsletter.reply_to", |s: &mut Settings| {
            s.newsletter.reply_to = Some("a@".into())
        }),
        ("newsletter.list_id", |s: &mut Settings| {
            s.newsletter.list_id = Some("no dots".into())
        }),
        ("newsletter.unsubscribe_mailto", |s: &mut Settings| {
            s.newsletter.unsubscribe_mailto = Some("x".into())
        }),
        (
            "smtp.dkim_key_file",
            (|s: &mut Settings| {
                *s = dkim_settings("rsa2048.dns.txt");
            }),
        ),
        (
            "smtp.dkim_key_file",
            (|s: &mut Settings| {
                *s = dkim_settings("does-not-exist.pem");
            }),
        ),
        (
            "smtp.dkim_selector",
            (|s: &mut Settings| {
                *s = dkim_settings("rsa2048.pem");
                s.smtp.dkim_domain = None;
            }),
        ),
    ];
    for (key_name, change) in cases {
        let mut s = settings();
        change(&mut s);
        let err = Composer::new(&s, key()).unwrap_err().to_string();
        assert!(err.contains(key_name), "{key_name}: {err}");
    }
}

// ---------------------------------------------------------------------------------------
// DKIM: an independent verifier (RFC 6376 relaxed/relaxed, RFC 8463 Ed25519), fed with the
// public key as it would be published in DNS (tests/fixtures/dkim/*.dns.txt, made with
// `openssl pkey -pubout`).

fn tags(value: &str) -> Vec<(String, String)> {
    value
        .split(';')
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let (k, v) = t.split_once('=').expect("tag=value");
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            (k.trim().to_string(), v)
        })
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> &'a str {
    &tags
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name}= tag"))
        .1
}

/// RFC 6376 §3.4.2: lower-case name, unfold, runs of white space to one space, trim.
fn relaxed_header(field: &str) -> String {
    let (name, value) = field.split_once(':').unwrap();
    let unfolded = value.replace("\r\n", "");
    let value = unfolded
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    format!("{}:{}", name.trim().to_ascii_lowercase(), value)
}

/// RFC 6376 §3.4.4: per line, runs of white space to one space and none at the end; no
/// empty lines at the end of the body.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(body).unwrap();
    let mut lines: Vec<String> = text
        .split("\r\n")
        .map(|line| {
            let mut out = String::new();
            let mut in_space = false;
            for c in line.chars() {
                if c == ' ' || c == '\t' {
                    in_space = true;
                } else {
                    if in_space {
                        out.push(' ');
                    }
                    in_space = false;
                    out.push(c);
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    let mut out = lines.join("\r\n").into_bytes();
    if !out.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The DKIM-Signature field with the value of its `b=` tag removed.
fn without_signature(field: &str) -> String {
    let re = regex::Regex::new(r"(^|[;\s:])b=[^;]*").unwrap();
    re.replace(field, "${1}b=").into_owned()
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Pass,
    BodyHashMismatch,
    BadSignature,
}

/// Verifies the message's one DKIM-Signature against `dns_record` (`v=DKIM1; k=…; p=…`).
fn verify_dkim(bytes: &[u8], dns_record: &str) -> (Verdict, Vec<(String, String)>) {
    let (fields, body) = split_message(bytes);
    let signatures: Vec<&(String, String)> = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("DKIM-Signature"))
        .collect();
    assert_eq!(signatures.len(), 1, "expected one DKIM-Signature");
    let sig_field = &signatures[0].1;
    let sig_tags = tags(sig_field.split_once(':').unwrap().1);
    assert_eq!(tag(&sig_tags, "v"), "1");
    assert_eq!(tag(&sig_tags, "c"), "relaxed/relaxed");

    let body_hash = STANDARD.encode(Sha256::digest(relaxed_body(&body)));
    if body_hash != tag(&sig_tags, "bh") {
        return (Verdict::BodyHashMismatch, sig_tags);
    }

    // Headers named in h=, each taken from the bottom up (RFC 6376 §5.4.2).
    let mut used = vec![false; fields.len()];
    let mut data = String::new();
    for name in tag(&sig_tags, "h").split(':') {
        let found = (0..fields.len()).rev().find(|&i| {
            !used[i]
                && fields[i].0.eq_ignore_ascii_case(name)
                && !fields[i].0.eq_ignore_ascii_case("DKIM-Signature")
        });
        if let Some(i) = found {
            used[i] = true;
            data.push_str(&relaxed_header(&fields[i].1));
            data.push_str("\r\n");
        }
    }
    data.push_str(&relaxed_header(&without_signature(sig_field)));
    let hash = Sha256::digest(data.as_bytes());

    let record = tags(dns_record);
    let public = STANDARD.decode(tag(&record, "p")).unwrap();
    let signature = STANDARD.decode(tag(&sig_tags, "b")).unwrap();
    let ok = match (tag(&record, "k"), tag(&sig_tags, "a")) {
        ("rsa", "rsa-sha256") => {
            use rsa::pkcs8::DecodePublicKey as _;
            let key = rsa::RsaPublicKey::from_public_key_der(&public).unwrap();
            key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &hash, &signature)
                .is_ok()
        }
        ("ed25519", "ed25519-sha256") => {
            use ed25519_dalek::Verifier as _;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
            let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
            key.verify(&hash, &signature).is_ok()
        }
        (k, a) => panic!("key type {k} does not match algorithm {a}"),
    };
    let verdict = if ok {
        Verdict::Pass
    } else {
        Verdict::BadSignature
    };
    (verdict, sig_tags)
}

fn dns_record(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn assert_signs_and_verifies(key_file: &str, record_file: &str, algorithm: &str) {
    let (_, bytes) = compose(&dkim_settings(key_file), "本周新闻 — DKIM", &jane());
    assert_well_formed_header_block(&bytes);
    let record = dns_record(record_file);
    let (verdict, sig_tags) = verify_dkim(&bytes, &record);
    assert_eq!(verdict, Verdict::Pass, "{key_file}");
    assert_eq!(tag(&sig_tags, "a"), algorithm);
    assert_eq!(tag(&sig_tags, "d"), "example.org");
    assert_eq!(tag(&sig_tags, "s"), "herald2026");
    let signed: Vec<&str> = tag(&sig_tags, "h").split(':').collect();
    for name in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "mime-version",
        "content-type",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "feedback-id",
    ] {
        assert!(signed.contains(&name), "{name} not in h={signed:?}");
    }

    // Any change to a signed header or to the body breaks the signature.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let token_start = text.find("/unsubscribe/").unwrap() + "/unsubscribe/".len();
    let mut tampered = text.clone().into_bytes();
    tampered[token_start] = if tampered[token_start] == b'A' {
        b'B'
    } else {
        b'A'
    };
    assert_eq!(verify_dkim(&tampered, &record).0, Verdict::BadSignature);
    let body_tampered = text.replacen("--\r\n", "--\r\nextra\r\n", 1).into_bytes();
    assert_eq!(
        verify_dkim(&body_tampered, &record).0,
        Verdict::BodyHashMismatch
    );
}

#[test]
fn dkim_rsa_pkcs8_signature_verifies_and_covers_list_headers() {
    assert_signs_and_verifies("rsa2048.pem", "rsa2048.dns.txt", "rsa-sha256");
}

#[test]
fn dkim_rsa_pkcs1_signature_verifies() {
    assert_signs_and_verifies("rsa2048-pkcs1.pem", "rsa2048.dns.txt", "rsa-sha256");
}

#[test]
fn dkim_ed25519_signature_verifies_and_covers_list_headers() {
    assert_signs_and_verifies("ed25519.pem", "ed25519.dns.txt", "ed25519-sha256");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_signed_on_the_signing_pool_verify_and_each_goes_to_its_own_reader() {
    let composer = std::sync::Arc::new(composer(&dkim_settings("rsa2048.pem")));
    let prepared = std::sync::Arc::new(composer.prepare(&issue("Weekly"), None));
    let readers: Vec<MailRecipient> = (0..24)
        .map(|i| MailRecipient {
            subscriber_id: 100 + i,
            email: EmailAddress::parse(&format!("reader{i}@example.net")).unwrap(),
            name: SubscriberName::parse(&format!("Reader {i}")).unwrap(),
        })
        .collect();
    let copies = futures::future::join_all(
        readers
            .iter()
            .map(|to| composer.compose_pooled(&prepared, to)),
    )
    .await;
    let record = dns_record("rsa2048.dns.txt");
    for (to, copy) in readers.iter().zip(copies) {
        let copy = copy.unwrap();
        assert_eq!(copy.subscriber_id(), to.subscriber_id);
        assert_eq!(copy.envelope_to(), to.email.as_str());
        let bytes = copy.formatted();
        assert_eq!(
            verify_dkim(&bytes, &record).0,
            Verdict::Pass,
            "{}",
            to.email
        );
        let (fields, _) = split_message(&bytes);
        assert!(header_values(&fields, "To")[0].contains(to.email.as_str()));
    }
}

#[test]
fn dkim_signature_fails_against_another_key() {
    let (_, bytes) = compose(&dkim_settings("ed25519.pem"), "Weekly", &jane());
    let other = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    assert_eq!(verify_dkim(&bytes, other).0, Verdict::BadSignature);
}

#[test]
fn without_dkim_settings_nothing_is_signed() {
    let composer = composer(&settings());
    assert!(!composer.signs_dkim());
    let bytes = composer
        .compose(&issue("Weekly"), &jane())
        .unwrap()
        .formatted();
    let (fields, _) = split_message(&bytes);
    assert!(header_values(&fields, "DKIM-Signature").is_empty());
}

// ---------------------------------------------------------------------------------------
// Snapshot: tests/snapshots/mail-composed.eml, with Message-ID, Date and MIME boundaries
// blanked. HERALD_UPDATE_SNAPSHOTS=1 rewrites it; a missing file is written.

#[test]
fn composed_message_matches_snapshot() {
    let (_, bytes) = compose(&settings(), "Herald Weekly #42: 新闻 & notes", &jane());
    let actual = blank_volatile(&bytes);
    assert!(actual.contains("Message-ID: <[message-id]>"), "{actual}");
    assert!(actual.contains("Date: [date]"), "{actual}");
    assert_snapshot("mail-composed.eml", &actual);
}
