//! Formatting by locale: grouped numbers (num-format's CLDR data), chrono's month and
//! weekday names, and font stacks by script.

use fluent_bundle::FluentValue;
use intl_memoizer::concurrent::IntlLangMemoizer;
use intl_memoizer::Memoizable;
use unic_langid::LanguageIdentifier;

/// num-format's locale for `lang`: the full tag, else its language, else English.
fn number_locale(lang: &LanguageIdentifier) -> num_format::Locale {
    let full = lang.to_string();
    num_format::Locale::from_name(full.as_str())
        .or_else(|_| num_format::Locale::from_name(lang.language.as_str()))
        .unwrap_or(num_format::Locale::en)
}

/// `n` grouped as `lang` groups digits: `12,345` in English and Chinese, `12.345` in German.
pub(super) fn group(lang: &LanguageIdentifier, n: i64) -> String {
    let mut buffer = num_format::Buffer::new();
    buffer.write_formatted(&n, &number_locale(lang));
    buffer.as_str().to_string()
}

/// A locale's digit grouping, built once per bundle by Fluent's memoizer.
struct Grouper(num_format::Locale);

impl Memoizable for Grouper {
    type Args = ();
    type Error = std::convert::Infallible;

    fn construct(lang: LanguageIdentifier, _: ()) -> Result<Self, Self::Error> {
        Ok(Self(number_locale(&lang)))
    }
}

/// Fluent's hook for placeables: whole numbers come out grouped by the bundle's locale
/// (`{ $count }` with 12345 is `12,345`); everything else is left to Fluent.
pub(super) fn number_formatter(
    value: &FluentValue<'_>,
    memoizer: &IntlLangMemoizer,
) -> Option<String> {
    let FluentValue::Number(number) = value else {
        return None;
    };
    let n = number.value;
    if n.fract() != 0.0 || n.abs() >= 9.0e15 || number.options.minimum_fraction_digits.is_some() {
        return None;
    }
    let n = n as i64;
    memoizer
        .with_try_get::<Grouper, _, _>((), |g| {
            let mut buffer = num_format::Buffer::new();
            buffer.write_formatted(&n, &g.0);
            buffer.as_str().to_string()
        })
        .ok()
}

/// chrono's locale (POSIX names: `zh_CN`) for month and weekday names: the tag with its
/// region, else the language's most common region, else POSIX English.
pub(super) fn chrono_locale(lang: &LanguageIdentifier) -> chrono::Locale {
    let language = lang.language.as_str();
    let mut candidates = Vec::new();
    if let Some(region) = lang.region {
        candidates.push(format!("{language}_{}", region.as_str()));
    }
    let usual = match language {
        "en" => "en_US",
        "zh" => "zh_CN",
        "ar" => "ar_SA",
        "he" => "he_IL",
        "fa" => "fa_IR",
        "ur" => "ur_PK",
        "ja" => "ja_JP",
        "ko" => "ko_KR",
        "pt" => "pt_PT",
        "sv" => "sv_SE",
        "da" => "da_DK",
        "el" => "el_GR",
        "uk" => "uk_UA",
        "cs" => "cs_CZ",
        "hi" => "hi_IN",
        "vi" => "vi_VN",
        "nb" => "nb_NO",
        _ => "",
    };
    if !usual.is_empty() {
        candidates.push(usual.to_string());
    }
    candidates.push(format!("{language}_{}", language.to_ascii_uppercase()));
    candidates
        .iter()
        .find_map(|name| chrono::Locale::try_from(name.as_str()).ok())
        .unwrap_or(chrono::Locale::POSIX)
}

/// The CSS font stack for `lang`'s script: the system fonts of each platform that have the
/// script's glyphs first, then a generic family. Latin and other scripts get the system UI
/// stack.
pub fn font_family(lang: &LanguageIdentifier) -> &'static str {
    let script = lang.script.map(|s| s.as_str().to_string());
    match (lang.language.as_str(), script.as_deref(), lang.region.map(|r| r.as_str().to_string()).as_deref()) {
        ("zh", Some("Hant"), _) | ("zh", None, Some("TW" | "HK" | "MO")) => {
            "'PingFang TC', 'Hiragino Sans CNS', 'Microsoft JhengHei', 'Noto Sans CJK TC', sans-serif"
        }
        ("zh", _, _) => {
            "'PingFang SC', 'Hiragino Sans GB', 'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif"
        }
        ("ja", _, _) => {
            "'Hiragino Sans', 'Hiragino Kaku Gothic ProN', 'Yu Gothic', Meiryo, 'Noto Sans CJK JP', sans-serif"
        }
        ("ko", _, _) => "'Apple SD Gothic Neo', 'Malgun Gothic', 'Noto Sans CJK KR', sans-serif",
        ("ar" | "fa" | "ur", _, _) => {
            "'Geeza Pro', Tahoma, 'Segoe UI', 'Noto Sans Arabic', sans-serif"
        }
        ("he", _, _) => "Arial, 'Segoe UI', 'Noto Sans Hebrew', sans-serif",
        // No web font names mrml would import (Roboto, Open Sans...): a mail loads no fonts.
        _ => "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif",
    }
}
