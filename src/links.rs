//! The public URLs herald puts in mail and pages, built from `newsletter.base_url`.
//!
//! One place decides the shape of every link, so the web routes, the mail headers and the
//! templates cannot drift apart.

use url::Url;

use crate::domain::{IssueSlug, Token};

/// Builds absolute links under the site's base URL.
#[derive(Debug, Clone)]
pub struct Links {
    base: Url,
}

impl Links {
    /// `base_url` must be absolute (the settings check guarantees it).
    pub fn new(base_url: &str) -> Result<Self, url::ParseError> {
        let mut base = Url::parse(base_url)?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self { base })
    }

    /// The base URL, always ending in `/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    fn join(&self, path: &str) -> String {
        self.base
            .join(path)
            .map(String::from)
            .unwrap_or_else(|_| format!("{}{path}", self.base))
    }

    /// `GET`/`POST /unsubscribe/{token}` (RFC 8058 one-click on POST).
    pub fn unsubscribe(&self, token: &Token) -> String {
        self.join(&format!("unsubscribe/{token}"))
    }

    /// `GET /confirm/{token}`.
    pub fn confirm(&self, token: &Token) -> String {
        self.join(&format!("confirm/{token}"))
    }

    /// `GET /archive/{slug}`: the "view in browser" target.
    pub fn archive(&self, slug: &IssueSlug) -> String {
        self.join(&format!("archive/{slug}"))
    }

    /// The site's host, used for Message-IDs and a default List-Id.
    pub fn host(&self) -> &str {
        self.base.host_str().unwrap_or("localhost")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_under_a_base_path() {
        let links = Links::new("https://example.org/news").unwrap();
        let slug = IssueSlug::parse("issue-1").unwrap();
        assert_eq!(
            links.archive(&slug),
            "https://example.org/news/archive/issue-1"
        );
        assert_eq!(links.host(), "example.org");
    }
}
