//! The layout templates: minijinja files read from `newsletter.templates_dir` at run time,
//! so a newsletter can be restyled without recompiling, with built-in copies for any file
//! that is missing. Their words come from the message catalogs ([`crate::i18n`]) through
//! `t()`; every render is in one locale, whose `lang`, `dir`, `text_align` and
//! `font_family` join the context.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, Output, State, Value};

use super::RenderError;
use crate::i18n::{self, Catalog, Catalogs};

/// The issue layout: MJML that mrml turns into the HTML part.
pub const NEWSLETTER: &str = "newsletter.mjml";

/// The confirmation mail of a sign-up (double opt-in): MJML, and its plain-text part.
pub const CONFIRM: &str = "confirm.mjml";
pub const CONFIRM_TEXT: &str = "confirm.txt";
/// The welcome mail, sent on confirmation only when `welcome.mjml` is in the folder (it has
/// no built-in copy, so deleting the file turns the welcome mail off). Its text part falls
/// back to the built-in `welcome.txt`.
pub const WELCOME: &str = "welcome.mjml";
pub const WELCOME_TEXT: &str = "welcome.txt";

/// Templates compiled into the binary, used when the folder lacks them.
const BUILT_IN: &[(&str, &str)] = &[
    (NEWSLETTER, include_str!("../../templates/newsletter.mjml")),
    (CONFIRM, include_str!("../../templates/confirm.mjml")),
    (CONFIRM_TEXT, include_str!("../../templates/confirm.txt")),
    (WELCOME_TEXT, include_str!("../../templates/welcome.txt")),
];

/// The compiled templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// Whether the folder holds `welcome.mjml`, which turns the welcome mail on.
    has_welcome: bool,
    /// The message catalogs `t()` reads.
    catalogs: Arc<Catalogs>,
}

impl Templates {
    /// Reads the templates from `dir`, falling back to the built-in copy of each file that
    /// is missing (or of all of them when `dir` does not exist), and compiles them.
    pub fn load(dir: &Path, catalogs: Arc<Catalogs>) -> Result<Self, RenderError> {
        let mut env = environment(catalogs.clone());
        for (name, built_in) in BUILT_IN {
            let source = read_optional(&dir.join(name))?.unwrap_or_else(|| built_in.to_string());
            env.add_template_owned(*name, source)
                .map_err(|source| RenderError::Template {
                    name: (*name).to_string(),
                    source,
                })?;
        }
        let has_welcome = match read_optional(&dir.join(WELCOME))? {
            Some(source) => {
                env.add_template_owned(WELCOME, source).map_err(|source| {
                    RenderError::Template {
                        name: WELCOME.to_string(),
                        source,
                    }
                })?;
                true
            }
            None => false,
        };
        let partials = dir.to_path_buf();
        env.set_loader(move |name| load_partial(&partials, name));
        Ok(Self {
            env,
            has_welcome,
            catalogs,
        })
    }

    /// Whether a welcome mail is configured (`welcome.mjml` in the templates folder).
    pub fn has_welcome(&self) -> bool {
        self.has_welcome
    }

    /// Only the built-in templates and catalogs (for tests and previews without a folder).
    pub fn built_in() -> Self {
        let catalogs = Catalogs::built_in();
        let mut env = environment(catalogs.clone());
        for (name, source) in BUILT_IN {
            env.add_template(name, source)
                .expect("built-in templates are checked by the test suite");
        }
        Self {
            env,
            has_welcome: false,
            catalogs,
        }
    }

    /// The message catalogs the templates speak from.
    pub fn catalogs(&self) -> &Arc<Catalogs> {
        &self.catalogs
    }

    /// The sources of the templates, by name, for `herald locales check`.
    pub fn sources(&self) -> Vec<(String, String)> {
        self.env
            .templates()
            .map(|(name, t)| (name.to_string(), t.source().to_string()))
            .collect()
    }

    /// Renders template `name` with `context`, in `catalog`'s locale.
    pub fn render_in(
        &self,
        name: &str,
        catalog: &Catalog,
        context: Value,
    ) -> Result<String, RenderError> {
        let context = minijinja::context! { ..context, ..i18n::templates::locale_context(catalog) };
        self.render(name, context)
    }

    /// Renders template `name` with `context`, in the context's `lang` (or the default
    /// locale when it has none).
    pub fn render(&self, name: &str, context: Value) -> Result<String, RenderError> {
        let context = minijinja::context! {
            ..context,
            ..i18n::templates::locale_context(self.catalogs.default_catalog())
        };
        let error = |source| RenderError::Template {
            name: name.to_string(),
            source,
        };
        self.env
            .get_template(name)
            .and_then(|t| t.render(context))
            .map_err(error)
    }
}

/// An environment that HTML-escapes values in `.mjml` and `.html` templates, with `t()`
/// and the plain-text filters `wrap` (to the text width) and `underline`.
fn environment(catalogs: Arc<Catalogs>) -> Environment<'static> {
    let mut env = Environment::new();
    i18n::templates::register(&mut env, catalogs);
    env.add_filter("wrap", |text: String| {
        super::text::wrap(&text, "", "").trim_end().to_string()
    });
    env.add_filter("underline", |text: String| {
        super::text::underline(&text, '=')
    });
    env.set_auto_escape_callback(|name| {
        if [".mjml", ".html", ".htm"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(escape_formatter);
    env
}

/// Like minijinja's default formatter, but escapes only `& < > " '`: minijinja's own HTML
/// escaping also turns `/` into `&#x2f;`, which makes every URL in the mail unreadable.
/// The web pages use it too, so mail and pages escape alike.
pub fn escape_formatter(
    out: &mut Output<'_>,
    state: &State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if state.auto_escape() == AutoEscape::None || value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    if value.is_undefined() || value.is_none() {
        return Ok(());
    }
    let text = value.to_string();
    let escaped = html_escape::encode_safe(&text);
    let escaped = escaped.replace("&#x2F;", "/");
    out.write_str(&escaped).map_err(minijinja::Error::from)
}

/// The file's contents, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, RenderError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RenderError::TemplateIo {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Loads an included template from the folder; names may not leave it.
fn load_partial(dir: &Path, name: &str) -> Result<Option<String>, minijinja::Error> {
    let relative = PathBuf::from(name);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Ok(None);
    }
    read_optional(&dir.join(relative))
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_folder_uses_the_built_in_layout() {
        let templates = Templates::load(
            Path::new("/nonexistent/herald-templates"),
            Catalogs::built_in(),
        )
        .unwrap();
        let out = templates
            .render(NEWSLETTER, minijinja::context! { title => "T", body => "" })
            .unwrap();
        assert!(out.contains("<mjml"));
    }

    #[test]
    fn a_file_in_the_folder_replaces_the_built_in_and_is_escaped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NEWSLETTER), "<p>{{ title }} {{ url }}</p>").unwrap();
        let templates = Templates::load(dir.path(), Catalogs::built_in()).unwrap();
        let out = templates
            .render(
                NEWSLETTER,
                minijinja::context! { title => "<b>'Q&A'</b>", url => "https://x.org/a/b" },
            )
            .unwrap();
        assert_eq!(
            out,
            "<p>&lt;b&gt;&#x27;Q&amp;A&#x27;&lt;/b&gt; https://x.org/a/b</p>"
        );
    }

    #[test]
    fn a_broken_template_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NEWSLETTER), "{% if %}").unwrap();
        let err = Templates::load(dir.path(), Catalogs::built_in())
            .unwrap_err()
            .to_string();
        assert!(err.contains(NEWSLETTER), "{err}");
    }
}
