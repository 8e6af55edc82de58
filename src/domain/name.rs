//! [`SubscriberName`]: a display name that is safe in a header and a page.

use std::fmt;

/// The longest name kept, in characters.
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name contains a line break, NUL or other control character")]
    ControlCharacter,
    #[error("name is longer than {MAX_NAME_CHARS} characters")]
    TooLong,
}

/// A trimmed, non-empty name with no control characters (CR, LF and NUL would let it add a
/// mail header, and lettre panics on them in a display name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberName(String);

impl SubscriberName {
    /// `Ok(None)` for a blank name: a name is optional.
    pub fn parse(input: &str) -> Result<Option<Self>, NameError> {
        if input.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::TooLong);
        }
        Ok(Some(Self(trimmed.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_no_name() {
        assert_eq!(SubscriberName::parse("   ").unwrap(), None);
    }

    #[test]
    fn rejects_header_smuggling_and_length() {
        assert_eq!(
            SubscriberName::parse("Eve\r\nBcc: x@y.z"),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(
            SubscriberName::parse("a\0b"),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(
            SubscriberName::parse(&"x".repeat(101)),
            Err(NameError::TooLong)
        );
        assert_eq!(
            SubscriberName::parse(" 王小明 ").unwrap().unwrap().as_str(),
            "王小明"
        );
    }
}
