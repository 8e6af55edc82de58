//! [`IssueSlug`]: the key that names an issue in the database, URLs and the archive.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("slug is empty")]
    Empty,
    #[error("slug is longer than 100 characters")]
    TooLong,
    #[error(
        "slug {0:?} may hold only letters, digits, '-', '_' and '.', and may not start with '.'"
    )]
    BadCharacter(String),
}

/// Lower-case ASCII letters, digits, `-`, `_` and `.`; never `..`-style paths.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssueSlug(String);

impl IssueSlug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(SlugError::Empty);
        }
        if s.len() > 100 {
            return Err(SlugError::TooLong);
        }
        if s.starts_with('.')
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(SlugError::BadCharacter(s.to_string()));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IssueSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_stems_and_rejects_paths() {
        assert_eq!(
            IssueSlug::parse("Weekly-2024.01").unwrap().as_str(),
            "weekly-2024.01"
        );
        assert!(IssueSlug::parse("../etc/passwd").is_err());
        assert!(IssueSlug::parse("a/b").is_err());
        assert!(IssueSlug::parse(".hidden").is_err());
        assert!(IssueSlug::parse("周报").is_err());
        assert!(IssueSlug::parse("").is_err());
    }
}
