//! The catalogs in minijinja templates.
//!
//! - `{{ t("footer-unsubscribe") }}`, `{{ t("signup-heading", newsletter=newsletter_name) }}`:
//!   a message, with named variables (numbers select plural forms and come out grouped).
//! - `{{ n | number }}`: a number grouped by the locale (`12,345`).
//!
//! The locale is the template context's `lang` (a tag the catalogs know), else the
//! default. The renderers put `lang`, `dir`, `text_align` and `font_family` in every
//! context (see [`locale_context`]), so a layout can write
//! `<html lang="{{ lang }}" dir="{{ dir }}">`.

use std::sync::Arc;

use fluent_bundle::{FluentArgs, FluentValue};
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, State, Value};

use super::{Catalog, Catalogs};

/// The catalog a template renders in: its context's `lang`, else the default.
fn catalog_of<'a>(catalogs: &'a Catalogs, state: &State<'_, '_>) -> &'a Arc<Catalog> {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().map(str::to_owned))
        .and_then(|tag| catalogs.get(&tag).ok())
        .unwrap_or_else(|| catalogs.default_catalog())
}

/// Adds `t` and the `number` filter to `env`.
pub fn register(env: &mut Environment<'_>, catalogs: Arc<Catalogs>) {
    let for_t = catalogs.clone();
    env.add_function(
        "t",
        move |state: &State<'_, '_>,
              id: &str,
              kwargs: Kwargs|
              -> Result<String, minijinja::Error> {
            let catalog = catalog_of(&for_t, state);
            let mut args = FluentArgs::new();
            for name in kwargs.args() {
                let value: Value = kwargs.get(name)?;
                args.set(name.to_string(), fluent_value(&value));
            }
            Ok(catalog.t_with(id, &args))
        },
    );
    env.add_filter("number", move |state: &State<'_, '_>, n: i64| -> String {
        catalog_of(&catalogs, state).number(n)
    });
}

fn fluent_value(value: &Value) -> FluentValue<'static> {
    match value.kind() {
        ValueKind::Number => match i64::try_from(value.clone()) {
            Ok(n) => FluentValue::from(n),
            Err(_) => FluentValue::from(f64::try_from(value.clone()).unwrap_or_default()),
        },
        ValueKind::Undefined | ValueKind::None => FluentValue::from(""),
        _ => FluentValue::from(value.to_string()),
    }
}

/// The locale values every template context gets: `lang`, `dir`, `text_align` (where lines
/// start) and `font_family`.
pub fn locale_context(catalog: &Catalog) -> Value {
    minijinja::context! {
        lang => catalog.tag(),
        dir => catalog.direction().as_str(),
        text_align => catalog.direction().start(),
        font_family => catalog.font_family(),
    }
}

/// The message ids a template asks for: each `t("id"` or `t('id'` in its source.
pub fn ids_used(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("t(") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + 2..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        let trimmed = rest.trim_start();
        let Some(quote) = trimmed.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let body = &trimmed[1..];
        if let Some(end) = body.find(quote) {
            let id = &body[..end];
            if !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                out.push(id.to_string());
            }
        }
    }
    out
}
