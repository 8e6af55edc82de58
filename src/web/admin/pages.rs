//! The dashboard's minijinja templates, read from `{templates_dir}/web/admin/` at start-up
//! with built-in copies of any missing file, and its static files. Values are HTML-escaped.

use std::path::Path;

use minijinja::{AutoEscape, Environment, Value};

use crate::render::RenderError;

pub const LAYOUT: &str = "layout.html";
pub const LOGIN: &str = "login.html";
pub const HOME: &str = "home.html";
pub const ISSUE: &str = "issue.html";
pub const CONFIRM_SEND: &str = "confirm_send.html";
pub const MESSAGE: &str = "message.html";

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
];

/// The progress poller, served at `/admin/static/admin.js`.
pub const ADMIN_JS: &str = include_str!("admin.js");
/// The stylesheet, served at `/admin/static/admin.css`.
pub const ADMIN_CSS: &str = include_str!("admin.css");

/// The compiled dashboard templates.
#[derive(Debug)]
pub struct AdminPages {
    env: Environment<'static>,
}

impl AdminPages {
    /// Reads the templates from `templates_dir/web/admin/`, falling back to the built-in
    /// copy of each missing file, and compiles them.
    pub fn load(templates_dir: &Path) -> Result<Self, RenderError> {
        let dir = templates_dir.join("web").join("admin");
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(crate::render::templates::escape_formatter);
        for (name, built_in) in BUILT_IN {
            let path = dir.join(name);
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => built_in.to_string(),
                Err(source) => return Err(RenderError::TemplateIo { path, source }),
            };
            env.add_template_owned(*name, source)
                .map_err(|source| RenderError::Template {
                    name: format!("web/admin/{name}"),
                    source,
                })?;
        }
        Ok(Self { env })
    }

    /// Renders template `name` with `context`.
    pub fn render(&self, name: &str, context: Value) -> Result<String, RenderError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(context))
            .map_err(|source| RenderError::Template {
                name: format!("web/admin/{name}"),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_compile_and_escape() {
        let pages = AdminPages::load(Path::new("/nonexistent/herald-templates")).unwrap();
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
