//! Rendering an issue, once: Markdown to a safe HTML fragment and plain text, the MJML
//! layout via mrml, and the result pre-split for per-recipient personalisation.
//!
//! Only this module knows mrml. The steps, each in its own file:
//! - `markdown`: parse and rewrite the Markdown events (absolute URLs, bare URLs linked,
//!   footnotes numbered), with `urls` for resolving and linking and `raw` for raw HTML;
//! - `html`: the body fragment, sanitised by ammonia and made well-formed with inline styles;
//! - `text`: the plain-text alternative from the same events;
//! - [`templates`]: the minijinja layout, `templates/newsletter.mjml`;
//! - [`personalise`]: cutting the output at per-recipient slots;
//! - [`track`]: click and open tracking, cut into the same slots once per issue;
//! - [`notice`]: the confirmation and welcome mails of the sign-up flow.

mod html;
mod markdown;
pub mod notice;
pub mod personalise;
pub mod pool;
mod raw;
pub mod templates;
mod text;
pub mod track;
mod urls;

use std::path::PathBuf;

use minijinja::{context, Value};

pub use html::removed_by_sanitiser;
pub use notice::{NoticeCopy, NoticeKind, RenderedNotice};
pub use personalise::{
    Escape, Recipient, Slot, Split, SplitPiece, TrackedLink, TrackedLinks, TrackingStamp,
};
pub use raw::{
    nesting as raw_html_nesting, tokens as raw_html_tokens, Nesting as RawNesting, Tag as RawTag,
    Token as RawToken,
};
pub use templates::Templates;
pub use track::{track, TrackingPlan};

use crate::config::NewsletterSettings;
use crate::domain::IssueSlug;
use crate::i18n::{self, Catalog, I18nError};
use crate::issue::Issue;
use crate::links::Links;
use urls::Resolver;

/// An issue rendered for sending: everything but the per-recipient values.
#[derive(Debug, Clone)]
pub struct RenderedIssue {
    pub slug: IssueSlug,
    /// One line, UTF-8; mail/ encodes it.
    pub subject: String,
    /// The full HTML document, from mrml.
    pub html: Split,
    /// The plain-text alternative.
    pub text: Split,
    /// The inbox preview line, if the issue has one.
    pub preheader: Option<String>,
}

impl RenderedIssue {
    /// The links that go through `/l/` (none unless click tracking is on).
    pub fn tracked_links(&self) -> &[TrackedLink] {
        &self.html.tracked().links
    }
}

impl RenderError {
    /// Whether the issue's content is at fault (rather than a template or herald): an issue
    /// error for the editor to fix.
    pub fn is_content(&self) -> bool {
        matches!(self, Self::TooDeep { .. })
    }
}

/// Why an issue could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read template {}: {source}", path.display())]
    TemplateIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template {name}: {source:#}")]
    Template {
        name: String,
        source: minijinja::Error,
    },
    #[error("template {template} is not valid MJML: {message}")]
    Mjml { template: String, message: String },
    #[error("mrml could not render template {template}: {message}")]
    MjmlRender { template: String, message: String },
    #[error("{0}")]
    Locale(#[from] I18nError),
    #[error("the body nests {depth} elements deep once rendered; at most {max} can be laid out")]
    TooDeep { depth: usize, max: usize },
}

/// Renders `issue` for sending: the HTML document and the plain text, both split at the
/// per-recipient slots. Runs once per issue.
pub fn issue(
    issue: &Issue,
    templates: &Templates,
    newsletter: &NewsletterSettings,
    links: &Links,
) -> Result<RenderedIssue, RenderError> {
    let catalog = templates.catalogs().for_lang(issue.lang.as_deref())?;
    let archive_url = links.archive(&issue.slug);
    let resolver = Resolver::new(links.base().clone(), archive_url.clone());
    let events = markdown::events(&issue.body, &resolver);

    let fragment = html::fragment(&events, &resolver)?;
    let mjml = templates.render_in(
        templates::NEWSLETTER,
        catalog,
        layout_context(issue, catalog, newsletter, links, &resolver, fragment),
    )?;
    let document = mjml_to_html(&mjml, templates::NEWSLETTER)?;

    let body_text = text::body(&events, &resolver, &text::Words::of(catalog));
    let plain = text_document(issue, catalog, newsletter, &archive_url, &body_text);

    Ok(RenderedIssue {
        slug: issue.slug.clone(),
        subject: issue.subject.clone(),
        html: Split::new(&document, Escape::Html),
        text: Split::new(&plain, Escape::None),
        preheader: issue.preheader.clone(),
    })
}

/// The issue's date as shown to readers, in its locale: "Friday, 27 November 2026",
/// "2026年11月27日 星期五".
fn display_date(issue: &Issue, catalog: &Catalog) -> Option<String> {
    issue.date.map(|d| catalog.date_long(&d))
}

/// The variables `newsletter.mjml` sees. Everything is escaped by the template except
/// `body`, which is the sanitised fragment.
fn layout_context(
    issue: &Issue,
    catalog: &Catalog,
    newsletter: &NewsletterSettings,
    links: &Links,
    resolver: &Resolver,
    fragment: String,
) -> Value {
    let resolve_http = |raw: &Option<String>| {
        raw.as_deref()
            .and_then(|u| resolver.resolve(u))
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    };
    context! {
        newsletter_name => &newsletter.name,
        title => &issue.title,
        subject => &issue.subject,
        preheader => &issue.preheader,
        description => &issue.description,
        date => display_date(issue, catalog),
        date_iso => issue.date.map(|d| d.to_rfc3339()),
        author => &issue.author,
        authorlink => resolve_http(&issue.authorlink),
        cover => resolve_http(&issue.cover),
        cover_alt => &issue.cover_alt,
        tags => &issue.tags,
        body => Value::from_safe_string(fragment),
        archive_url => links.archive(&issue.slug),
        base_url => links.base().as_str(),
        unsubscribe_url => Slot::UnsubscribeUrl.marker(),
        recipient_name => Slot::Name.marker(),
        recipient_email => Slot::Email.marker(),
        postal_address => &newsletter.postal_address,
    }
}

/// Parses and renders MJML with mrml (also for the notice mails). Includes are disabled: the layout is one file.
pub(crate) fn mjml_to_html(mjml: &str, template: &str) -> Result<String, RenderError> {
    let parsed = mrml::parse(mjml).map_err(|e| RenderError::Mjml {
        template: template.to_string(),
        message: e.to_string(),
    })?;
    parsed
        .element
        .render(&mrml::prelude::render::RenderOptions::default())
        .map_err(|e| RenderError::MjmlRender {
            template: template.to_string(),
            message: e.to_string(),
        })
}

/// The plain-text part: header, body, and the footer with the per-recipient unsubscribe slot.
fn text_document(
    issue: &Issue,
    catalog: &Catalog,
    newsletter: &NewsletterSettings,
    archive_url: &str,
    body: &str,
) -> String {
    let mut out = String::with_capacity(body.len() + 512);
    out.push_str(&text::wrap(&newsletter.name, "", ""));
    out.push('\n');
    let title = text::wrap(&issue.title, "", "");
    out.push_str(&title);
    out.push_str(&text::underline(&title, '='));
    out.push('\n');
    let byline: Vec<String> = [display_date(issue, catalog), issue.author.clone()]
        .into_iter()
        .flatten()
        .collect();
    if !byline.is_empty() {
        out.push_str(&text::wrap(&byline.join(" · "), "", ""));
    }
    out.push('\n');
    out.push_str(body);
    out.push_str("\n-- \n");
    let url = |url: &str| i18n::args(&[("url", url.to_string().into())]);
    out.push_str(&catalog.t_with("mail-text-view-in-browser", &url(archive_url)));
    out.push('\n');
    out.push_str(&catalog.t_with("mail-text-unsubscribe", &url(Slot::UnsubscribeUrl.marker())));
    out.push('\n');
    out.push_str(&text::wrap(
        &format!("{} · {}", newsletter.name, newsletter.postal_address),
        "",
        "",
    ));
    out
}
