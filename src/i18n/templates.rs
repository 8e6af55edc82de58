//! The catalogs in minijinja templates.
//!
//! - `{{ t("footer-unsubscribe") }}`, `{{ t("signup-heading", newsletter=newsletter_name) }}`:
//!   a message, with named variables (numbers select plural forms and come out grouped).
//!   A variable that is markup (`{% set link %}<a href="…">…</a>{% endset %}`, or a value
//!   marked `safe`) is put into the message as it is, and the message's own text is
//!   escaped: the sentence stays the translator's, the link the template's.
//! - `{{ n | number }}`: a number grouped by the locale (`12,345`).
//! - `{{ "2020-03-20T09:00:00+08:00" | date }}`: a date as the locale writes it
//!   (`20 March 2020`, `2020年3月20日`), in the offset the value was written in.
//! - `{{ started_at | datetime }}`, `{{ at | datetime(tz="Europe/Berlin") }}`: a moment for
//!   editors (`Fri 20 Mar 2020, 09:00 UTC`, `2020年3月20日 周五 09:00 UTC`), in `tz` when
//!   given. Both take RFC 3339 (or a bare `YYYY-MM-DD` for `date`); anything else comes out
//!   as it came in, and a missing value as nothing.
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
        move |state: &State<'_, '_>, id: &str, kwargs: Kwargs| -> Result<Value, minijinja::Error> {
            let catalog = catalog_of(&for_t, state);
            let mut args = FluentArgs::new();
            let mut markup = Vec::new();
            for name in kwargs.args() {
                let value: Value = kwargs.get(name)?;
                if value.is_safe() {
                    args.set(
                        name.to_string(),
                        FluentValue::from(placeholder(markup.len())),
                    );
                    markup.push(value.to_string());
                } else {
                    args.set(name.to_string(), fluent_value(&value));
                }
            }
            let text = catalog.t_with(id, &args);
            if markup.is_empty() {
                return Ok(Value::from(text));
            }
            // The message is text: escape it, then put the markup where its placeholders are.
            let mut html = minijinja::HtmlEscape(&text).to_string();
            for (i, m) in markup.iter().enumerate() {
                html = html.replace(&placeholder(i), m);
            }
            Ok(Value::from_safe_string(html))
        },
    );
    let for_number = catalogs.clone();
    env.add_filter("number", move |state: &State<'_, '_>, n: i64| -> String {
        catalog_of(&for_number, state).number(n)
    });
    let for_date = catalogs.clone();
    env.add_filter(
        "date",
        move |state: &State<'_, '_>, value: Value| -> String {
            let Some(text) = shown(&value) else {
                return String::new();
            };
            let catalog = catalog_of(&for_date, state);
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&text) {
                return catalog.date_short(&t);
            }
            match chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
                Ok(day) => catalog.date_short(&day.and_time(chrono::NaiveTime::MIN).and_utc()),
                Err(_) => text,
            }
        },
    );
    env.add_filter(
        "datetime",
        move |state: &State<'_, '_>,
              value: Value,
              kwargs: Kwargs|
              -> Result<String, minijinja::Error> {
            let tz: Option<String> = kwargs.get("tz")?;
            kwargs.assert_all_used()?;
            let Some(text) = shown(&value) else {
                return Ok(String::new());
            };
            let catalog = catalog_of(&catalogs, state);
            let Ok(t) = chrono::DateTime::parse_from_rfc3339(&text) else {
                return Ok(text);
            };
            Ok(match tz.and_then(|tz| tz.parse::<chrono_tz::Tz>().ok()) {
                Some(tz) => catalog.datetime(&t.with_timezone(&tz)),
                None => catalog.datetime(&t),
            })
        },
    );
}

/// Stands for the `i`th markup variable while Fluent formats the message: private-use
/// characters no catalog or escaping touches.
fn placeholder(i: usize) -> String {
    format!("\u{E000}{i}\u{E001}")
}

/// A filter's input as text, or `None` when it is missing.
fn shown(value: &Value) -> Option<String> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => None,
        _ => Some(
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned),
        ),
    }
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
