//! Splitting a file into front matter and body, and reading the front matter's fields.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use super::IssueErrorKind;

type Failure = (Option<usize>, IssueErrorKind);

pub(super) enum Format {
    Yaml,
    Toml,
    None,
}

/// The file cut into its parts.
pub(super) struct Split<'a> {
    pub format: Format,
    pub front: &'a str,
    /// 1-based file line of the front matter's first line.
    pub front_line: usize,
    pub body: &'a str,
    pub body_line: usize,
}

impl Split<'_> {
    /// The file line on which `field:` / `field =` appears, for error messages.
    pub fn field_line(&self, field: &str) -> Option<usize> {
        self.front
            .lines()
            .position(|l| {
                let l = l.trim_start();
                l.strip_prefix(field)
                    .is_some_and(|rest| rest.trim_start().starts_with([':', '=']))
            })
            .map(|i| i + self.front_line)
    }
}

pub(super) fn split(text: &str) -> Result<Split<'_>, Failure> {
    let first_len = text.find('\n').map(|i| i + 1).unwrap_or(text.len());
    let (fence, format) = match text[..first_len].trim_end() {
        "---" => ("---", Format::Yaml),
        "+++" => ("+++", Format::Toml),
        _ => {
            return Ok(Split {
                format: Format::None,
                front: "",
                front_line: 1,
                body: text,
                body_line: 1,
            });
        }
    };
    let mut offset = first_len;
    let mut line = 2;
    while offset < text.len() {
        let end = text[offset..]
            .find('\n')
            .map(|i| offset + i + 1)
            .unwrap_or(text.len());
        let current = text[offset..end].trim_end();
        // YAML also allows `...` as the end of a document.
        if current == fence || (fence == "---" && current == "...") {
            return Ok(Split {
                format,
                front: &text[first_len..offset],
                front_line: 2,
                body: &text[end..],
                body_line: line + 1,
            });
        }
        offset = end;
        line += 1;
    }
    Err((Some(1), IssueErrorKind::UnclosedFrontMatter(fence)))
}

/// A field that editors write either as one string or as a list.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => vec![],
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The fields herald reads; unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct FrontMatter {
    pub title: Option<String>,
    pub subject: Option<String>,
    pub preheader: Option<String>,
    pub description: Option<String>,
    #[serde(deserialize_with = "scalar_string")]
    pub date: Option<String>,
    pub author: Option<String>,
    pub authorlink: Option<String>,
    pub cover: Option<String>,
    pub cover_alt: Option<String>,
    pub slug: Option<String>,
    pub draft: Option<bool>,
    /// The issue's language (Hugo's name for it), a BCP 47 tag.
    pub lang: Option<String>,
    pub tags: OneOrMany,
    pub categories: OneOrMany,
}

/// Accepts a string, a number or a TOML datetime (already turned into a string).
fn scalar_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        F(f64),
    }
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| match s {
        Scalar::S(s) => s,
        Scalar::I(i) => i.to_string(),
        Scalar::F(f) => f.to_string(),
    }))
}

pub(super) fn parse(split: &Split<'_>) -> Result<FrontMatter, Failure> {
    match split.format {
        Format::None => Ok(FrontMatter::default()),
        Format::Yaml => {
            if split.front.trim().is_empty() {
                return Ok(FrontMatter::default());
            }
            serde_yaml::from_str::<FrontMatter>(split.front).map_err(|e| {
                let line = e.location().map(|l| l.line() + split.front_line - 1);
                (
                    line,
                    IssueErrorKind::FrontMatter(strip_location(&e.to_string())),
                )
            })
        }
        Format::Toml => {
            let mut table: toml::Table = toml::from_str(split.front).map_err(|e| {
                let line = e
                    .span()
                    .map(|s| split.front[..s.start].matches('\n').count() + split.front_line);
                (line, IssueErrorKind::FrontMatter(e.message().to_string()))
            })?;
            for (_, value) in table.iter_mut() {
                if let toml::Value::Datetime(dt) = value {
                    *value = toml::Value::String(dt.to_string());
                }
            }
            toml::Value::Table(table)
                .try_into::<FrontMatter>()
                .map_err(|e| {
                    (
                        Some(split.front_line),
                        IssueErrorKind::FrontMatter(e.message().to_string()),
                    )
                })
        }
    }
}

fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Reads the date forms editors use: RFC 3339 (`2024-05-31T09:00:00+02:00`), a date-time
/// without offset (taken as UTC, `T` or space), or a bare date (midnight UTC).
pub fn parse_date(raw: &str) -> Option<DateTime<FixedOffset>> {
    let s = raw.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt);
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%:z",
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%dT%H:%M%:z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, format) {
            return Some(dt);
        }
    }
    let utc = FixedOffset::east_opt(0)?;
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
            return Some(Utc.from_utc_datetime(&naive).with_timezone(&utc));
        }
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(
        Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?)
            .with_timezone(&utc),
    )
}
