//! What a finding says, in any locale: a message of the `check.ftl` catalogs and its values.
//!
//! A rule names its message and hint by id ([`Words::new`], [`Words::with`]). `herald check`,
//! its JSON, the API and `herald preview --serve` give them in English, from the built-in
//! catalog; the dashboard puts the same words into `newsletter.locale`'s catalog.

use std::sync::{Arc, LazyLock};

use fluent_bundle::FluentValue;

use crate::i18n::{self, Catalog, Catalogs};

/// A message id of `check.ftl` and the values it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    id: &'static str,
    values: Vec<(&'static str, Value)>,
}

/// One named value of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    /// Quoted words, a URL, a path: shown as they are.
    Text(String),
    /// A count or size: selects plural forms and is grouped the locale's way.
    Number(i64),
}

impl Words {
    /// Message `id`, which names no value.
    pub fn new(id: &'static str) -> Self {
        Self {
            id,
            values: Vec::new(),
        }
    }

    /// Adds the value `name`, shown as written.
    pub fn with(mut self, name: &'static str, value: impl std::fmt::Display) -> Self {
        self.values.push((name, Value::Text(value.to_string())));
        self
    }

    /// Adds the number `name`.
    pub fn number(mut self, name: &'static str, n: usize) -> Self {
        self.values
            .push((name, Value::Number(i64::try_from(n).unwrap_or(i64::MAX))));
        self
    }

    /// The message id.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The words in `catalog`'s language (English where it lacks the message).
    pub fn in_locale(&self, catalog: &Catalog) -> String {
        let values: Vec<(&str, FluentValue<'_>)> = self
            .values
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::Text(text) => FluentValue::from(text.as_str()),
                    Value::Number(n) => FluentValue::from(*n),
                };
                (*name, value)
            })
            .collect();
        catalog.t_with(self.id, &i18n::args(&values))
    }

    /// The words in English, as the built-in catalog has them.
    pub fn in_english(&self) -> String {
        self.in_locale(english())
    }
}

/// The built-in English catalog, loaded once.
fn english() -> &'static Catalog {
    static BUILT_IN: LazyLock<Arc<Catalogs>> = LazyLock::new(Catalogs::built_in);
    BUILT_IN
        .get(i18n::FALLBACK)
        .expect("English is always loaded")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message id a rule names, read from the rules' sources.
    fn ids_in_sources() -> Vec<String> {
        let sources = [
            include_str!("mod.rs"),
            include_str!("body.rs"),
            include_str!("links.rs"),
            include_str!("meta.rs"),
            include_str!("size.rs"),
            include_str!("spam.rs"),
        ];
        let mut ids = Vec::new();
        for source in sources {
            for (i, _) in source.match_indices("Words::new(\"") {
                let rest = &source[i + "Words::new(\"".len()..];
                ids.push(rest[..rest.find('"').unwrap()].to_string());
            }
        }
        ids
    }

    #[test]
    fn every_message_a_rule_names_is_in_english_and_chinese() {
        let catalogs = Catalogs::built_in();
        let ids = ids_in_sources();
        assert!(ids.len() >= 30, "found only {ids:?}");
        for tag in ["en", "zh-CN"] {
            let catalog = catalogs.get(tag).unwrap();
            for id in &ids {
                assert!(catalog.ids().contains(id), "{tag} has no message {id}");
            }
        }
    }

    #[test]
    fn values_are_put_into_each_language_with_its_number_grouping() {
        let catalogs = Catalogs::built_in();
        let words = Words::new("check-images-over-text")
            .number("images", 3)
            .number("characters", 1200);
        assert_eq!(
            words.in_english(),
            "3 images and 1,200 characters of text: most of this mail is in images, which readers with images off do not see and spam filters distrust"
        );
        let chinese = words.in_locale(catalogs.get("zh-CN").unwrap());
        assert!(
            chinese.contains('3') && chinese.contains("1,200"),
            "{chinese}"
        );
        assert!(chinese.contains("图片"), "{chinese}");
    }
}
