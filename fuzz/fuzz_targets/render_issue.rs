//! The whole way from an issue file to a mail: `issue::parse`, `render::issue` and
//! `Composer::compose` on arbitrary bytes. Whatever the parser accepts renders into a mail
//! or fails with an error that is the issue's own (a content error for the editor); it never
//! panics and never fails inside a template.
//!
//! Run: `cargo +nightly fuzz run render_issue -- -max_total_time=600`

#![no_main]

use std::sync::OnceLock;

use herald::config::Settings;
use herald::domain::{EmailAddress, TokenKey};
use herald::links::Links;
use herald::mail::{Composer, MailRecipient};
use herald::render::{self, Templates};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

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
            "fuzz-secret-0123456789abcdef".to_string(),
        ));
        Renderer {
            templates: Templates::built_in(),
            links: Links::new(&settings.newsletter.base_url).expect("the base URL parses"),
            composer: Composer::new(&settings, key).expect("the default settings compose"),
            settings,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(issue) = herald::issue::parse(data, "fuzzed") else {
        return;
    };
    let r = renderer();
    match render::issue(&issue, &r.templates, &r.settings.newsletter, &r.links) {
        Ok(rendered) => {
            assert_eq!(rendered.subject, issue.subject);
            let to = MailRecipient::test_copy(
                EmailAddress::parse("reader@example.org").expect("a valid address"),
            );
            if let Err(e) = r.composer.compose(&rendered, &to) {
                panic!("a rendered issue does not compose: {e}");
            }
        }
        Err(e) => assert!(e.is_content(), "not the issue's fault: {e}"),
    }
});
