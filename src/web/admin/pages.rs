//! The dashboard's minijinja templates, read from `{templates_dir}/web/admin/` at start-up
//! with built-in copies of any missing file, and its static files. Values are HTML-escaped.

use std::path::Path;

use minijinja::Value;

use crate::render::RenderError;
use crate::web::pages::Pages;

pub const LAYOUT: &str = "layout.html";
pub const LOGIN: &str = "login.html";
pub const HOME: &str = "home.html";
pub const ISSUE: &str = "issue.html";
pub const CONFIRM_SEND: &str = "confirm_send.html";
pub const MESSAGE: &str = "message.html";
pub const BOUNCES: &str = "bounces.html";
pub const SUBSCRIBERS: &str = "subscribers.html";
pub const ERASE: &str = "erase.html";
pub const IMPORT: &str = "import.html";

const BUILT_IN: &[(&str, &str)] = &[
    (
        LAYOUT,
        include_str!("../../../templates/web/admin/layout.html"),
    ),
    (
        LOGIN,
        include_str!("../../../templates/web/admin/login.html"),
    ),
    (HOME, include_str!("../../../templates/web/admin/home.html")),
    (
        ISSUE,
        include_str!("../../../templates/web/admin/issue.html"),
    ),
    (
        CONFIRM_SEND,
        include_str!("../../../templates/web/admin/confirm_send.html"),
    ),
    (
        MESSAGE,
        include_str!("../../../templates/web/admin/message.html"),
    ),
    (
        BOUNCES,
        include_str!("../../../templates/web/admin/bounces.html"),
    ),
    (
        SUBSCRIBERS,
        include_str!("../../../templates/web/admin/subscribers.html"),
    ),
    (
        ERASE,
        include_str!("../../../templates/web/admin/erase.html"),
    ),
    (
        IMPORT,
        include_str!("../../../templates/web/admin/import.html"),
    ),
];

/// The progress poller, served at `/admin/static/admin.js`.
pub const ADMIN_JS: &str = include_str!("admin.js");
/// The stylesheet, served at `/admin/static/admin.css`.
pub const ADMIN_CSS: &str = include_str!("admin.css");

/// The compiled dashboard templates: a set of its own, with its own layout.
#[derive(Debug)]
pub struct AdminPages(Pages);

impl AdminPages {
    /// Reads the templates from `templates_dir/web/admin/`, falling back to the built-in
    /// copy of each missing file, and compiles them.
    pub fn load(
        templates_dir: &Path,
        catalogs: std::sync::Arc<crate::i18n::Catalogs>,
    ) -> Result<Self, RenderError> {
        Pages::load_set(templates_dir, "web/admin", BUILT_IN, catalogs).map(Self)
    }

    /// The catalog the dashboard speaks in: `newsletter.locale`'s.
    pub fn catalog(&self) -> &std::sync::Arc<crate::i18n::Catalog> {
        self.0.catalog()
    }

    /// The sources of the templates, by name, for `herald locales check`.
    pub fn sources(&self) -> Vec<(String, String)> {
        self.0.sources()
    }

    /// Renders template `name` with `context`.
    pub fn render(&self, name: &str, context: Value) -> Result<String, RenderError> {
        self.0.render(name, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_compile_and_escape() {
        let pages = AdminPages::load(
            Path::new("/nonexistent/herald-templates"),
            crate::i18n::Catalogs::built_in(),
        )
        .unwrap();
        let out = pages
            .render(
                MESSAGE,
                minijinja::context! {
                    newsletter_name => "N",
                    heading => "<b>x</b>",
                    message => "a & b",
                },
            )
            .unwrap();
        assert!(out.contains("&lt;b&gt;x&lt;/b&gt;"), "{out}");
        assert!(out.contains("a &amp; b"), "{out}");
    }
}
