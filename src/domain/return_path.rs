//! [`ReturnPath`]: the envelope sender of every copy, and the addresses returned mail may
//! come back to.

use std::fmt;

use super::email::{EmailAddress, EmailError};

/// Why `bounces.return_path` is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnPathError {
    #[error("{0}")]
    Address(#[from] EmailError),
    #[error("the part before @ may not hold '+': herald adds +TOKEN to it for each copy")]
    HasPlus,
    #[error("the part before @ leaves no room for a token (at most 30 characters)")]
    TooLong,
}

/// `bounces@news.example.org`. Each copy goes out from `bounces+TOKEN@news.example.org`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPath {
    local: String,
    domain: String,
}

/// What an envelope recipient is, seen from the return path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnAddress<'a> {
    /// The return path itself, with no token.
    Bare,
    /// `local+TOKEN@domain`; the token is not verified yet.
    Tagged(&'a str),
    /// Another address altogether.
    Foreign,
}

impl ReturnPath {
    pub fn parse(input: &str) -> Result<Self, ReturnPathError> {
        let address = EmailAddress::parse(input)?;
        let (local, domain) = address
            .as_str()
            .rsplit_once('@')
            .ok_or(ReturnPathError::Address(EmailError::MissingAt))?;
        if local.contains('+') {
            return Err(ReturnPathError::HasPlus);
        }
        // 64 characters in a local part, less '+' and a token of up to 33.
        if local.len() > 30 {
            return Err(ReturnPathError::TooLong);
        }
        Ok(Self {
            local: local.to_string(),
            domain: domain.to_string(),
        })
    }

    /// `local+token@domain`.
    pub fn with_token(&self, token: &str) -> String {
        format!("{}+{token}@{}", self.local, self.domain)
    }

    /// Classifies an envelope recipient (`<…>` and case do not matter).
    pub fn recognise<'a>(&self, address: &'a str) -> ReturnAddress<'a> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let Some((local, domain)) = address.rsplit_once('@') else {
            return ReturnAddress::Foreign;
        };
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return ReturnAddress::Foreign;
        }
        if local.eq_ignore_ascii_case(&self.local) {
            return ReturnAddress::Bare;
        }
        match local.split_once('+') {
            Some((base, token)) if base.eq_ignore_ascii_case(&self.local) && !token.is_empty() => {
                ReturnAddress::Tagged(token)
            }
            _ => ReturnAddress::Foreign,
        }
    }
}

impl fmt::Display for ReturnPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_recognises_its_own_addresses_only() {
        let rp = ReturnPath::parse("Bounces@News.Example.org").unwrap();
        assert_eq!(rp.to_string(), "Bounces@news.example.org");
        assert_eq!(rp.with_token("abc"), "Bounces+abc@news.example.org");
        assert_eq!(
            rp.recognise("<bounces@NEWS.example.org>"),
            ReturnAddress::Bare
        );
        assert_eq!(
            rp.recognise("BOUNCES+ABC@news.example.org"),
            ReturnAddress::Tagged("ABC")
        );
        for other in [
            "bounces@other.example.org",
            "postmaster@news.example.org",
            "bounces+@news.example.org",
            "bouncesx+abc@news.example.org",
            "not an address",
        ] {
            assert_eq!(rp.recognise(other), ReturnAddress::Foreign, "{other}");
        }
    }

    #[test]
    fn refuses_what_cannot_carry_a_token() {
        assert_eq!(
            ReturnPath::parse("a+b@example.org"),
            Err(ReturnPathError::HasPlus)
        );
        assert!(ReturnPath::parse(&format!("{}@example.org", "a".repeat(31))).is_err());
        assert!(ReturnPath::parse("no-at-sign").is_err());
    }
}
