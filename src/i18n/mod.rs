//! The words herald puts in front of readers and editors, per locale: Project Fluent
//! message catalogs, plural rules, dates, grouped numbers, text direction and font stacks.
//!
//! # Catalogs
//!
//! A locale's catalog is every `*.ftl` file in `locales/<tag>/`. The built-in `en` and
//! `zh-CN` catalogs are compiled into the binary; a folder of the same name under
//! `newsletter.locales_dir` overrides their messages one by one, and a folder with another
//! tag (`ar`, `de`, ...) adds a locale. Every catalog falls back to English for a message it
//! lacks, and [`Catalogs::load`] reports each such gap once, at start: never at send time.
//!
//! # Who asks
//!
//! `render/` and `web/` never hold reader-facing English of their own: templates call
//! `t("key", name=value)` (see [`templates`]), and Rust code asks a [`Catalog`] with
//! [`Catalog::t`] / [`Catalog::t_with`]. A template picks its locale from the `lang` value
//! in its context, which the renderers set from `newsletter.locale` or an issue's `lang:`.

mod format;
pub mod templates;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

pub use format::font_family;

/// The locale every catalog falls back to, and the reference set of message ids.
pub const FALLBACK: &str = "en";

/// The built-in catalogs: `(tag, file name, contents)`.
const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "en",
        "herald.ftl",
        include_str!("../../locales/en/herald.ftl"),
    ),
    (
        "en",
        "dashboard.ftl",
        include_str!("../../locales/en/dashboard.ftl"),
    ),
    (
        "en",
        "check.ftl",
        include_str!("../../locales/en/check.ftl"),
    ),
    (
        "zh-CN",
        "herald.ftl",
        include_str!("../../locales/zh-CN/herald.ftl"),
    ),
    (
        "zh-CN",
        "dashboard.ftl",
        include_str!("../../locales/zh-CN/dashboard.ftl"),
    ),
    (
        "zh-CN",
        "check.ftl",
        include_str!("../../locales/zh-CN/check.ftl"),
    ),
];

/// Why the catalogs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum I18nError {
    #[error("cannot read locale file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{tag:?} is not a BCP 47 language tag (like en, zh-CN or pt-BR)")]
    BadTag { tag: String },
    #[error(
        "newsletter.locale = {tag:?} has no catalog: add locales/{tag}/ to newsletter.locales_dir (known: {known})"
    )]
    UnknownLocale { tag: String, known: String },
}

/// Which way a locale's text runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ltr,
    Rtl,
}

impl Direction {
    /// The `dir` attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ltr => "ltr",
            Self::Rtl => "rtl",
        }
    }

    /// Where lines start: `left`, or `right` for a right-to-left locale.
    pub fn start(self) -> &'static str {
        match self {
            Self::Ltr => "left",
            Self::Rtl => "right",
        }
    }

    /// Scripts written right to left, by their languages' primary subtags.
    fn of(lang: &LanguageIdentifier) -> Self {
        const RTL: &[&str] = &[
            "ar", "arc", "ckb", "dv", "fa", "ha", "he", "khw", "ks", "ps", "sd", "ur", "yi",
        ];
        if lang.script.is_some_and(|s| {
            matches!(
                s.as_str(),
                "Arab" | "Hebr" | "Thaa" | "Syrc" | "Nkoo" | "Adlm" | "Rohg"
            )
        }) || (lang.script.is_none() && RTL.contains(&lang.language.as_str()))
        {
            Self::Rtl
        } else {
            Self::Ltr
        }
    }
}

/// One locale's messages, with English behind them.
pub struct Catalog {
    tag: String,
    langid: LanguageIdentifier,
    direction: Direction,
    bundle: FluentBundle<FluentResource>,
    /// English, for the messages this catalog lacks (`None` for English itself).
    fallback: Option<Arc<Catalog>>,
    /// The message ids this catalog defines itself.
    ids: BTreeSet<String>,
    /// chrono's locale for month and weekday names.
    chrono: chrono::Locale,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("tag", &self.tag)
            .field("messages", &self.ids.len())
            .finish()
    }
}

/// Named values for a message: `args(&[("newsletter", name.into())])`.
pub fn args<'a>(values: &[(&'a str, FluentValue<'a>)]) -> FluentArgs<'a> {
    let mut out = FluentArgs::with_capacity(values.len());
    for (name, value) in values {
        out.set(*name, value.clone());
    }
    out
}

impl Catalog {
    fn new(
        tag: &str,
        sources: &[(String, String)],
        fallback: Option<Arc<Catalog>>,
    ) -> Result<Self, I18nError> {
        let langid: LanguageIdentifier = tag.parse().map_err(|_| I18nError::BadTag {
            tag: tag.to_string(),
        })?;
        let direction = Direction::of(&langid);
        let mut bundle = FluentBundle::new_concurrent(vec![langid.clone()]);
        // Unicode isolation marks around placeables keep an English name or URL from
        // reordering right-to-left text; in left-to-right text they only get in the way of
        // plain-text mail and subjects.
        bundle.set_use_isolating(direction == Direction::Rtl);
        bundle.set_formatter(Some(format::number_formatter));
        let mut ids = BTreeSet::new();
        for (file, source) in sources {
            let resource = FluentResource::try_new(source.clone()).map_err(|(_, errors)| {
                I18nError::Syntax {
                    file: file.clone(),
                    message: errors
                        .first()
                        .map(|e| format!("{e}"))
                        .unwrap_or_else(|| "not valid Fluent".into()),
                }
            })?;
            for entry in resource.entries() {
                if let fluent_syntax::ast::Entry::Message(m) = entry {
                    ids.insert(m.id.name.to_string());
                }
            }
            bundle.add_resource_overriding(resource);
        }
        let chrono = format::chrono_locale(&langid);
        Ok(Self {
            tag: tag.to_string(),
            langid,
            direction,
            bundle,
            fallback,
            ids,
            chrono,
        })
    }

    /// The BCP 47 tag, as the catalog's folder names it (`zh-CN`).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The language identifier.
    pub fn langid(&self) -> &LanguageIdentifier {
        &self.langid
    }

    /// Which way the text runs.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The CSS font stack for this locale's script.
    pub fn font_family(&self) -> &'static str {
        font_family(&self.langid)
    }

    /// Whether this catalog, or English behind it, has message `id`.
    pub fn has(&self, id: &str) -> bool {
        self.bundle.has_message(id) || self.fallback.as_ref().is_some_and(|f| f.has(id))
    }

    /// The message ids this catalog defines itself.
    pub fn ids(&self) -> &BTreeSet<String> {
        &self.ids
    }

    /// Message `id` without variables.
    pub fn t(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// Message `id` with `args`. A message neither this catalog nor English has comes out
    /// as its id (`herald locales check` and the start-up warning name such gaps).
    pub fn t_with(&self, id: &str, args: &FluentArgs<'_>) -> String {
        self.format(id, Some(args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        if let Some(pattern) = self.bundle.get_message(id).and_then(|m| m.value()) {
            let mut errors = Vec::new();
            let out = self.bundle.format_pattern(pattern, args, &mut errors);
            return out.into_owned();
        }
        match &self.fallback {
            Some(fallback) => fallback.format(id, args),
            None => id.to_string(),
        }
    }

    /// `1 subscriber`, `2 subscribers`, `2 位订阅者`: message `id` with the number `n` as
    /// variable `name`, which selects the plural form and is shown grouped.
    pub fn count(&self, id: &str, name: &str, n: i64) -> String {
        self.t_with(id, &args(&[(name, FluentValue::from(n))]))
    }

    /// `12,345`: `n` with the locale's digit grouping.
    pub fn number(&self, n: i64) -> String {
        format::group(&self.langid, n)
    }

    /// A reader's date: `Friday, 20 March 2020`, `2020年3月20日 星期五`. The pattern is the
    /// catalog's `date-long` (chrono's strftime), the names chrono's for the locale.
    pub fn date_long<Tz: chrono::TimeZone>(&self, t: &chrono::DateTime<Tz>) -> String
    where
        Tz::Offset: std::fmt::Display,
    {
        self.strftime("date-long", t)
    }

    /// A short date: `20 March 2020`, `2020年3月20日` (`date-short`).
    pub fn date_short<Tz: chrono::TimeZone>(&self, t: &chrono::DateTime<Tz>) -> String
    where
        Tz::Offset: std::fmt::Display,
    {
        self.strftime("date-short", t)
    }

    /// A moment for editors: `Fri 27 Nov 2026, 09:00 UTC` (`datetime-short`).
    pub fn datetime<Tz: chrono::TimeZone>(&self, t: &chrono::DateTime<Tz>) -> String
    where
        Tz::Offset: std::fmt::Display,
    {
        self.strftime("datetime-short", t)
    }

    fn strftime<Tz: chrono::TimeZone>(&self, id: &str, t: &chrono::DateTime<Tz>) -> String
    where
        Tz::Offset: std::fmt::Display,
    {
        let pattern = self.t(id);
        let items: Vec<chrono::format::Item<'_>> =
            chrono::format::StrftimeItems::new_with_locale(&pattern, self.chrono).collect();
        if items.contains(&chrono::format::Item::Error) {
            // A broken pattern in a user's catalog: the ISO date says the same thing.
            return t.format("%Y-%m-%d").to_string();
        }
        t.format_localized_with_items(items.into_iter(), self.chrono)
            .to_string()
    }
}

/// Every locale herald knows: the built-in catalogs with a user's folders over them.
#[derive(Debug)]
pub struct Catalogs {
    by_tag: BTreeMap<String, Arc<Catalog>>,
    default: Arc<Catalog>,
    warnings: Vec<String>,
}

impl Catalogs {
    /// The built-in catalogs only, with `en` as the default.
    pub fn built_in() -> Arc<Self> {
        Arc::new(
            Self::build(BTreeMap::new(), FALLBACK)
                .expect("the built-in catalogs are checked by the test suite"),
        )
    }

    /// The built-in catalogs, each `locales_dir/<tag>/*.ftl` over them, and `default_tag`
    /// (`newsletter.locale`) as the default. A missing `locales_dir` is no error.
    pub fn load(locales_dir: &Path, default_tag: &str) -> Result<Arc<Self>, I18nError> {
        let user = read_user_catalogs(locales_dir)?;
        Self::build(user, default_tag).map(Arc::new)
    }

    fn build(
        user: BTreeMap<String, Vec<(String, String)>>,
        default_tag: &str,
    ) -> Result<Self, I18nError> {
        let mut sources: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (tag, file, text) in BUILT_IN {
            sources.entry((*tag).to_string()).or_default().push((
                format!("locales/{tag}/{file} (built in)"),
                (*text).to_string(),
            ));
        }
        for (tag, files) in user {
            sources.entry(tag).or_default().extend(files);
        }
        let english = Arc::new(Catalog::new(FALLBACK, &sources[FALLBACK], None)?);
        let mut by_tag = BTreeMap::new();
        let mut warnings = Vec::new();
        for (tag, files) in &sources {
            let catalog = if tag == FALLBACK {
                english.clone()
            } else {
                let catalog = Arc::new(Catalog::new(tag, files, Some(english.clone()))?);
                let missing: Vec<&str> = english
                    .ids
                    .iter()
                    .filter(|id| !catalog.ids.contains(*id))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    warnings.push(format!(
                        "locale {tag}: {} shown in English (missing from its catalog): {}",
                        plural(missing.len(), "message is", "messages are"),
                        missing.join(", ")
                    ));
                }
                catalog
            };
            by_tag.insert(tag.clone(), catalog);
        }
        let default = find(&by_tag, default_tag)?;
        Ok(Self {
            by_tag,
            default,
            warnings,
        })
    }

    /// The catalog of `newsletter.locale`.
    pub fn default_catalog(&self) -> &Arc<Catalog> {
        &self.default
    }

    /// The catalog for `tag` (an issue's `lang:`): the exact tag, else one of the same
    /// language (`zh` finds `zh-CN`), else an error naming the known ones.
    pub fn get(&self, tag: &str) -> Result<&Arc<Catalog>, I18nError> {
        lookup(&self.by_tag, tag).ok_or_else(|| unknown(&self.by_tag, tag))
    }

    /// The catalog for `tag`, or the default when `tag` is `None`.
    pub fn for_lang(&self, tag: Option<&str>) -> Result<&Arc<Catalog>, I18nError> {
        match tag {
            Some(tag) => self.get(tag),
            None => Ok(&self.default),
        }
    }

    /// Every catalog, by tag.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Catalog>> {
        self.by_tag.values()
    }

    /// What was found wrong at load time (messages that fall back to English), one line per
    /// locale. [`Catalogs::log_warnings`] logs them; `herald locales check` prints them.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Logs [`Catalogs::warnings`], once, at start.
    pub fn log_warnings(&self) {
        for warning in &self.warnings {
            tracing::warn!("{warning}");
        }
    }
}

fn plural(n: usize, one: &str, other: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { other })
}

fn lookup<'a>(by_tag: &'a BTreeMap<String, Arc<Catalog>>, tag: &str) -> Option<&'a Arc<Catalog>> {
    if let Some(c) = by_tag.get(tag) {
        return Some(c);
    }
    let wanted: LanguageIdentifier = tag.parse().ok()?;
    if let Some(c) = by_tag.values().find(|c| c.langid == wanted) {
        return Some(c);
    }
    by_tag
        .values()
        .find(|c| c.langid.language == wanted.language)
}

fn unknown(by_tag: &BTreeMap<String, Arc<Catalog>>, tag: &str) -> I18nError {
    if tag.parse::<LanguageIdentifier>().is_err() {
        return I18nError::BadTag {
            tag: tag.to_string(),
        };
    }
    I18nError::UnknownLocale {
        tag: tag.to_string(),
        known: by_tag.keys().cloned().collect::<Vec<_>>().join(", "),
    }
}

fn find(by_tag: &BTreeMap<String, Arc<Catalog>>, tag: &str) -> Result<Arc<Catalog>, I18nError> {
    lookup(by_tag, tag)
        .cloned()
        .ok_or_else(|| unknown(by_tag, tag))
}

/// `locales_dir/<tag>/*.ftl`, by tag, files in name order.
fn read_user_catalogs(dir: &Path) -> Result<BTreeMap<String, Vec<(String, String)>>, I18nError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| I18nError::Io { path, source }
    };
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let Some(tag) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if tag.parse::<LanguageIdentifier>().is_err() {
            return Err(I18nError::BadTag { tag });
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .map_err(io(&path))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ftl"))
            .collect();
        files.sort();
        let mut sources = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(io(&file))?;
            sources.push((file.display().to_string(), text));
        }
        out.insert(tag, sources);
    }
    Ok(out)
}

/// What `herald locales check` found for one locale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocaleReport {
    pub tag: String,
    /// Messages English has and this locale lacks (shown in English).
    pub missing: Vec<String>,
    /// Messages this locale defines that herald never asks for (English lacks them).
    pub unused: Vec<String>,
}

/// Messages the templates ask for (`t("id"`) that no catalog defines: `(template, id)`.
pub type UnknownUse = (String, String);

/// Compares every catalog with English, and the templates in `templates` (file name and
/// source) with the catalogs.
pub fn check(
    catalogs: &Catalogs,
    templates: &[(String, String)],
) -> (Vec<LocaleReport>, Vec<UnknownUse>) {
    let english = catalogs
        .by_tag
        .get(FALLBACK)
        .expect("English is always loaded");
    let reports = catalogs
        .all()
        .map(|c| LocaleReport {
            tag: c.tag.clone(),
            missing: english.ids.difference(&c.ids).cloned().collect(),
            unused: c.ids.difference(&english.ids).cloned().collect(),
        })
        .collect();
    let mut unknown = Vec::new();
    for (name, source) in templates {
        for id in templates::ids_used(source) {
            if !english.ids.contains(&id) {
                unknown.push((name.clone(), id));
            }
        }
    }
    (reports, unknown)
}

#[cfg(test)]
mod tests;
