//! [`EmailAddress`]: parsed once at the edge, trusted everywhere after.

use std::fmt;

/// Why a string is not an acceptable subscriber address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email address is empty")]
    Empty,
    #[error("email address is longer than 254 characters")]
    TooLong,
    #[error("email address contains a space, control character or line break")]
    ForbiddenCharacter,
    #[error("email address needs exactly one @ between a local part and a domain")]
    MissingAt,
    #[error("the part before @ is longer than 64 characters")]
    LocalTooLong,
    #[error("the part before @ is not a valid mailbox name")]
    BadLocal,
    #[error("the domain is not valid: {0}")]
    BadDomain(&'static str),
}

/// A syntactically valid address (RFC 5321 limits, dot-atom local part), with its domain
/// lower-cased and IDN domains converted to punycode. Comparison is on the normalised form;
/// the store compares case-insensitively on top.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and normalises `input` (surrounding white space is trimmed).
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = input.trim_matches(|c: char| c == ' ' || c == '\t');
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::ForbiddenCharacter);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::MissingAt)?;
        if local.is_empty() || local.contains('@') {
            return Err(EmailError::MissingAt);
        }
        if local.len() > 64 {
            return Err(EmailError::LocalTooLong);
        }
        if !is_dot_atom(local) {
            return Err(EmailError::BadLocal);
        }
        let domain = normalise_domain(domain)?;
        let address = format!("{local}@{domain}");
        if address.len() > 254 {
            return Err(EmailError::TooLong);
        }
        Ok(Self(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address folded to lower case: the key for case-insensitive comparison.
    ///
    /// Every address [`EmailAddress::parse`] accepts is ASCII (a dot-atom local part and a
    /// punycode domain; SMTPUTF8 local parts are refused), so ASCII case folding is complete
    /// and agrees with SQLite's `NOCASE` collation that the store's unique index uses. RFC 5321
    /// lets a server treat `Jane` and `jane` as different mailboxes; no real one does, and
    /// treating them as one person is what keeps a list free of duplicates.
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The part after `@` (already normalised).
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }

    /// A form safe for logs: `j***@example.org`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or(("", ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// RFC 5322 dot-atom: atext runs separated by single dots.
fn is_dot_atom(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c))
    })
}

fn normalise_domain(domain: &str) -> Result<String, EmailError> {
    if domain.is_empty() {
        return Err(EmailError::BadDomain("it is empty"));
    }
    let ascii = idna::domain_to_ascii(domain)
        .map_err(|_| EmailError::BadDomain("not a valid internationalised name"))?;
    let ascii = ascii.trim_end_matches('.').to_ascii_lowercase();
    if ascii.len() > 253 {
        return Err(EmailError::BadDomain("longer than 253 characters"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(EmailError::BadDomain("it needs a dot, as in example.org"));
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(EmailError::BadDomain(
                "a label is empty or longer than 63 characters",
            ));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(EmailError::BadDomain(
                "only letters, digits and hyphens may appear",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(EmailError::BadDomain(
                "a label starts or ends with a hyphen",
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(EmailError::BadDomain("the top-level domain is numeric"));
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_domain_case_and_idn() {
        let a = EmailAddress::parse(" Jane.Doe@EXAMPLE.org ").unwrap();
        assert_eq!(a.as_str(), "Jane.Doe@example.org");
        let b = EmailAddress::parse("user@bücher.example").unwrap();
        assert_eq!(b.as_str(), "user@xn--bcher-kva.example");
    }

    #[test]
    fn keeps_sql_metacharacters_verbatim() {
        assert_eq!(
            EmailAddress::parse("o'brien@example.org").unwrap().as_str(),
            "o'brien@example.org"
        );
    }

    #[test]
    fn rejects_what_cannot_be_a_mailbox() {
        for bad in [
            "",
            "plain",
            "a b@example.org",
            "a@exa mple.org",
            "a\r\nBcc: x@evil.org@example.org",
            "a\0@example.org",
            "@example.org",
            "a@",
            "a@localhost",
            "a..b@example.org",
            ".a@example.org",
            "a@-example.org",
            "a@example..org",
            "a@b@example.org",
            "<a@example.org>",
            "'; drop table subscribers; --",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "accepted {bad:?}");
        }
        let long_local = format!("{}@example.org", "a".repeat(300));
        assert_eq!(
            EmailAddress::parse(&long_local),
            Err(EmailError::LocalTooLong)
        );
        let long_domain = format!("a@{}.org", vec!["b".repeat(60); 5].join("."));
        assert!(EmailAddress::parse(&long_domain).is_err());
    }

    #[test]
    fn only_ascii_addresses_exist_so_folding_is_ascii() {
        assert!(EmailAddress::parse("jürgen@example.org").is_err());
        assert_eq!(
            EmailAddress::parse("O'Brien@Example.ORG").unwrap().folded(),
            "o'brien@example.org"
        );
    }

    #[test]
    fn masks_for_logs() {
        assert_eq!(
            EmailAddress::parse("jane@example.org").unwrap().masked(),
            "j***@example.org"
        );
    }
}
