//! The notice mails of the sign-up flow: the confirmation mail (double opt-in) and the
//! optional welcome mail.
//!
//! Each is rendered once, from `confirm.mjml` + `confirm.txt` or `welcome.mjml` +
//! `welcome.txt`, in two variants (with and without the recipient's name, so a template can
//! say "Hello Ada," or just "Hello,"), with markers where the per-recipient values go. A copy
//! is then a walk over pre-cut pieces, never an MJML render: a burst of sign-ups costs
//! string joins.

use minijinja::context;

use super::templates::{self, Templates};
use super::{mjml_to_html, RenderError};
use crate::config::NewsletterSettings;
use crate::links::Links;

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// "Please confirm your subscription", with the confirmation link.
    Confirm,
    /// "Welcome", sent once on confirmation, with the unsubscribe link.
    Welcome,
}

impl NoticeKind {
    /// The stored form (`notices.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Welcome => "welcome",
        }
    }

    /// The stored form back; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confirm" => Some(Self::Confirm),
            "welcome" => Some(Self::Welcome),
            _ => None,
        }
    }
}

/// Marker for the recipient's name in rendered output.
const NAME_MARKER: &str = "x-herald-notice-name-x";
/// Marker for the notice's link: the confirmation URL, or the welcome mail's unsubscribe URL.
const LINK_MARKER: &str = "x-herald-notice-link-x";

/// How many days a confirmation link works (the token's expiry).
pub const CONFIRM_DAYS: i64 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Name,
    Link,
}

/// Output cut at the markers.
#[derive(Debug, Clone)]
struct Cut {
    pieces: Vec<Piece>,
    html: bool,
}

impl Cut {
    fn new(rendered: &str, html: bool) -> Self {
        let mut pieces = Vec::new();
        let mut rest = rendered;
        loop {
            let next = [(NAME_MARKER, Piece::Name), (LINK_MARKER, Piece::Link)]
                .into_iter()
                .filter_map(|(marker, piece)| rest.find(marker).map(|at| (at, marker, piece)))
                .min_by_key(|(at, _, _)| *at);
            match next {
                Some((at, marker, piece)) => {
                    if at > 0 {
                        pieces.push(Piece::Literal(rest[..at].to_string()));
                    }
                    pieces.push(piece);
                    rest = &rest[at + marker.len()..];
                }
                None => {
                    if !rest.is_empty() {
                        pieces.push(Piece::Literal(rest.to_string()));
                    }
                    break;
                }
            }
        }
        Self { pieces, html }
    }

    fn fill(&self, name: &str, link: &str) -> String {
        let mut out = String::with_capacity(4096);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Name => self.push_value(&mut out, name),
                Piece::Link => self.push_value(&mut out, link),
            }
        }
        out
    }

    fn push_value(&self, out: &mut String, value: &str) {
        if self.html {
            // As the templates' formatter: escape & < > " ', keep slashes readable.
            out.push_str(&html_escape::encode_safe(value).replace("&#x2F;", "/"));
        } else {
            out.push_str(value);
        }
    }
}

/// One rendering of a notice's HTML and text parts.
#[derive(Debug, Clone)]
struct Variant {
    html: Cut,
    text: Cut,
}

/// A notice rendered once, ready to personalise.
#[derive(Debug, Clone)]
pub struct RenderedNotice {
    pub kind: NoticeKind,
    subject: String,
    named: Variant,
    anonymous: Variant,
}

/// One recipient's notice: subject, HTML and plain text, complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeCopy {
    pub subject: String,
    pub html: String,
    pub text: String,
}

impl RenderedNotice {
    /// The copy for a recipient with `name` (if any), whose link is `link` (the confirmation
    /// URL, or the unsubscribe URL of the welcome mail). Values are HTML-escaped in the HTML.
    pub fn personalise(&self, name: Option<&str>, link: &str) -> NoticeCopy {
        let (variant, name) = match name.filter(|n| !n.trim().is_empty()) {
            Some(n) => (&self.named, n),
            None => (&self.anonymous, ""),
        };
        NoticeCopy {
            subject: self.subject.clone(),
            html: variant.html.fill(name, link),
            text: variant.text.fill(name, link),
        }
    }
}

/// Renders notice `kind` once. `Ok(None)` for the welcome mail when it is not configured
/// (no `welcome.mjml` in the templates folder).
pub fn notice(
    kind: NoticeKind,
    templates: &Templates,
    newsletter: &NewsletterSettings,
    links: &Links,
) -> Result<Option<RenderedNotice>, RenderError> {
    let catalog = templates.catalogs().default_catalog();
    let (mjml_name, text_name, subject_id) = match kind {
        NoticeKind::Confirm => (
            templates::CONFIRM,
            templates::CONFIRM_TEXT,
            "confirm-subject",
        ),
        NoticeKind::Welcome if templates.has_welcome() => (
            templates::WELCOME,
            templates::WELCOME_TEXT,
            "welcome-subject",
        ),
        NoticeKind::Welcome => return Ok(None),
    };
    let subject = catalog.t_with(
        subject_id,
        &crate::i18n::args(&[("newsletter", newsletter.name.clone().into())]),
    );
    let variant = |name: Option<&str>| -> Result<Variant, RenderError> {
        let context = context! {
            newsletter_name => &newsletter.name,
            recipient_name => name,
            confirm_url => LINK_MARKER,
            confirm_days => CONFIRM_DAYS,
            unsubscribe_url => LINK_MARKER,
            archive_url => format!("{}archive", links.base()),
            base_url => links.base().as_str(),
            postal_address => &newsletter.postal_address,
        };
        let mjml = templates.render_in(mjml_name, catalog, context.clone())?;
        let html = mjml_to_html(&mjml, mjml_name)?;
        let text = templates.render_in(text_name, catalog, context)?;
        Ok(Variant {
            html: Cut::new(&html, true),
            text: Cut::new(&text, false),
        })
    };
    Ok(Some(RenderedNotice {
        kind,
        subject: one_line(&subject),
        named: variant(Some(NAME_MARKER))?,
        anonymous: variant(None)?,
    }))
}

fn one_line(s: &str) -> String {
    s.split(char::is_control)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(kind: NoticeKind) -> Option<RenderedNotice> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let templates = Templates::load(&dir, crate::i18n::Catalogs::built_in()).unwrap();
        let newsletter = NewsletterSettings::default();
        let links = Links::new("https://news.example.org/").unwrap();
        notice(kind, &templates, &newsletter, &links).unwrap()
    }

    #[test]
    fn confirm_mail_carries_the_link_and_escapes_the_name() {
        let notice = rendered(NoticeKind::Confirm).unwrap();
        let link = "https://news.example.org/confirm/abc_-123";
        let copy = notice.personalise(Some("<script>alert(1)</script> & co"), link);
        assert!(
            copy.html.contains(&format!("href=\"{link}\"")),
            "{}",
            copy.html
        );
        assert!(copy
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(!copy.html.contains("<script>"));
        assert!(copy.text.contains(link));
        assert!(
            copy.text.contains("Hello <script>alert(1)</script> & co,"),
            "{}",
            copy.text
        );
        assert!(!copy.html.contains("x-herald-notice"), "a marker survived");
        assert!(copy.subject.starts_with("Confirm your subscription"));
    }

    #[test]
    fn without_a_name_the_greeting_has_none() {
        let notice = rendered(NoticeKind::Confirm).unwrap();
        let copy = notice.personalise(None, "https://x.example/confirm/t");
        assert!(copy.text.contains("Hello,\n\nThank you"), "{}", copy.text);
        assert!(!copy.text.contains("x-herald-notice"));
    }

    #[test]
    fn welcome_is_off_without_its_template() {
        let templates = Templates::built_in();
        let links = Links::new("https://news.example.org/").unwrap();
        let none = notice(
            NoticeKind::Welcome,
            &templates,
            &NewsletterSettings::default(),
            &links,
        )
        .unwrap();
        assert!(none.is_none());
        assert!(rendered(NoticeKind::Welcome).is_some());
    }
}
