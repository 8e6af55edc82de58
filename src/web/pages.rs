//! The web pages: minijinja templates read from `{templates_dir}/web/` at start-up, with
//! built-in copies of any file that is missing. Values are HTML-escaped. Their words come
//! from the message catalogs through `t()`, in `newsletter.locale` (or a page's own `lang`).

use std::path::Path;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, Value};

use crate::i18n::{self, Catalog, Catalogs};
use crate::render::RenderError;

/// The page every other page extends.
pub const LAYOUT: &str = "layout.html";
/// A heading, paragraphs and a hint: results and errors.
pub const MESSAGE: &str = "message.html";
/// The one-button unsubscribe form.
pub const UNSUBSCRIBE: &str = "unsubscribe.html";
/// The list of sent issues.
pub const ARCHIVE: &str = "archive.html";
/// The sign-up form.
pub const SIGNUP: &str = "signup.html";
/// After an unsubscribe: the result, with a resubscribe button.
pub const UNSUBSCRIBED: &str = "unsubscribed.html";
/// The one-button page of a confirmation link.
pub const CONFIRM: &str = "confirm.html";

const BUILT_IN: &[(&str, &str)] = &[
    (LAYOUT, include_str!("../../templates/web/layout.html")),
    (MESSAGE, include_str!("../../templates/web/message.html")),
    (
        UNSUBSCRIBE,
        include_str!("../../templates/web/unsubscribe.html"),
    ),
    (ARCHIVE, include_str!("../../templates/web/archive.html")),
    (SIGNUP, include_str!("../../templates/web/signup.html")),
    (
        UNSUBSCRIBED,
        include_str!("../../templates/web/unsubscribed.html"),
    ),
    (CONFIRM, include_str!("../../templates/web/confirm.html")),
];

/// The compiled page templates.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
    /// The folder below `templates_dir` the set is read from, for error messages.
    folder: &'static str,
    catalogs: Arc<Catalogs>,
}

impl Pages {
    /// Reads the pages from `templates_dir/web/`, falling back to the built-in copy of each
    /// missing file, and compiles them.
    pub fn load(templates_dir: &Path, catalogs: Arc<Catalogs>) -> Result<Self, RenderError> {
        Self::load_set(templates_dir, "web", BUILT_IN, catalogs)
    }

    /// Reads the set of templates `built_in` names from `templates_dir/{folder}/`, falling
    /// back to the built-in copy of each missing file, and compiles them. The dashboard's
    /// templates are such a set of their own, with their own layout.
    pub fn load_set(
        templates_dir: &Path,
        folder: &'static str,
        built_in: &[(&'static str, &'static str)],
        catalogs: Arc<Catalogs>,
    ) -> Result<Self, RenderError> {
        let dir = templates_dir.join(folder);
        let mut env = environment(catalogs.clone());
        for (name, built_in) in built_in {
            let path = dir.join(name);
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => built_in.to_string(),
                Err(source) => return Err(RenderError::TemplateIo { path, source }),
            };
            env.add_template_owned(*name, source)
                .map_err(|source| RenderError::Template {
                    name: format!("{folder}/{name}"),
                    source,
                })?;
        }
        Ok(Self {
            env,
            folder,
            catalogs,
        })
    }

    /// The catalog pages speak in: `newsletter.locale`'s.
    pub fn catalog(&self) -> &Arc<Catalog> {
        self.catalogs.default_catalog()
    }

    /// The catalogs (for a page in an issue's own language).
    pub fn catalogs(&self) -> &Arc<Catalogs> {
        &self.catalogs
    }

    /// The sources of the pages, by name, for `herald locales check`.
    pub fn sources(&self) -> Vec<(String, String)> {
        self.env
            .templates()
            .map(|(name, t)| (format!("{}/{name}", self.folder), t.source().to_string()))
            .collect()
    }

    /// Renders page `name` with `context`, in the context's `lang` when it names one, else
    /// in `newsletter.locale`.
    pub fn render(&self, name: &str, context: Value) -> Result<String, RenderError> {
        let catalog = context
            .get_attr("lang")
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .and_then(|tag| self.catalogs.get(&tag).ok().cloned())
            .unwrap_or_else(|| self.catalog().clone());
        let context =
            minijinja::context! { ..context, ..i18n::templates::locale_context(&catalog) };
        self.env
            .get_template(name)
            .and_then(|t| t.render(context))
            .map_err(|source| RenderError::Template {
                name: format!("{}/{name}", self.folder),
                source,
            })
    }
}

/// An environment that HTML-escapes every value in `.html` templates, with `t()`.
fn environment(catalogs: Arc<Catalogs>) -> Environment<'static> {
    let mut env = Environment::new();
    i18n::templates::register(&mut env, catalogs);
    crate::words::register(&mut env);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(crate::render::templates::escape_formatter);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_pages_compile_and_escape() {
        let pages = Pages::load(
            Path::new("/nonexistent/herald-templates"),
            Catalogs::built_in(),
        )
        .unwrap();
        let out = pages
            .render(
                MESSAGE,
                minijinja::context! {
                    newsletter_name => "N",
                    heading => "<script>x</script>",
                    paragraphs => vec!["a & b"],
                },
            )
            .unwrap();
        assert!(out.contains("&lt;script&gt;x&lt;/script&gt;"), "{out}");
        assert!(out.contains("a &amp; b"), "{out}");
    }

    #[test]
    fn a_page_in_the_folder_replaces_the_built_in() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("web")).unwrap();
        std::fs::write(dir.path().join("web").join(MESSAGE), "custom {{ heading }}").unwrap();
        let pages = Pages::load(dir.path(), Catalogs::built_in()).unwrap();
        let out = pages
            .render(MESSAGE, minijinja::context! { heading => "<h>" })
            .unwrap();
        assert_eq!(out, "custom &lt;h&gt;");
    }
}
