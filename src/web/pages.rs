//! The web pages: minijinja templates read from `{templates_dir}/web/` at start-up, with
//! built-in copies of any file that is missing. Values are HTML-escaped.

use std::path::Path;

use minijinja::{AutoEscape, Environment, Value};

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
];

/// The compiled page templates.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
    /// The folder below `templates_dir` the set is read from, for error messages.
    folder: &'static str,
}

impl Pages {
    /// Reads the pages from `templates_dir/web/`, falling back to the built-in copy of each
    /// missing file, and compiles them.
    pub fn load(templates_dir: &Path) -> Result<Self, RenderError> {
        Self::load_set(templates_dir, "web", BUILT_IN)
    }

    /// Reads the set of templates `built_in` names from `templates_dir/{folder}/`, falling
    /// back to the built-in copy of each missing file, and compiles them. The dashboard's
    /// templates are such a set of their own, with their own layout.
    pub fn load_set(
        templates_dir: &Path,
        folder: &'static str,
        built_in: &[(&'static str, &'static str)],
    ) -> Result<Self, RenderError> {
        let dir = templates_dir.join(folder);
        let mut env = environment();
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
        Ok(Self { env, folder })
    }

    /// Renders page `name` with `context`.
    pub fn render(&self, name: &str, context: Value) -> Result<String, RenderError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(context))
            .map_err(|source| RenderError::Template {
                name: format!("{}/{name}", self.folder),
                source,
            })
    }
}

/// An environment that HTML-escapes every value in `.html` templates.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(crate::render::templates::escape_formatter);
    crate::words::register(&mut env);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_pages_compile_and_escape() {
        let pages = Pages::load(Path::new("/nonexistent/herald-templates")).unwrap();
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
        let pages = Pages::load(dir.path()).unwrap();
        let out = pages
            .render(MESSAGE, minijinja::context! { heading => "<h>" })
            .unwrap();
        assert_eq!(out, "custom &lt;h&gt;");
    }
}
