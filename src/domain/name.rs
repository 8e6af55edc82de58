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
    #[error(
        "name contains an invisible or text-direction character (U+{:04X}), which could make \
         it display as something else",
        u32::from(*.0)
    )]
    Invisible(char),
}

/// Whether `c` changes how the text around it is displayed without being seen itself:
/// bidirectional embeddings, overrides, isolates and marks (U+202E turns `gpj.exe` around),
/// and zero-width spaces and joiners that make two names look alike. The zero-width joiner and
/// non-joiner (U+200C, U+200D) are allowed: Persian and Indic names and emoji sequences need
/// them.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// A trimmed, non-empty name with no control characters (CR, LF and NUL would let it add a
/// mail header, and lettre panics on them in a display name) and no invisible or
/// text-direction characters (which would let it pass for another name where it is shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberName(String);

impl SubscriberName {
    /// `Ok(None)` for a blank name: a name is optional.
    pub fn parse(input: &str) -> Result<Option<Self>, NameError> {
        if input.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        if let Some(c) = input.chars().find(|&c| is_invisible(c)) {
            return Err(NameError::Invisible(c));
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
    fn direction_overrides_and_zero_width_spaces_are_refused_and_joiners_kept() {
        for spoof in [
            "Alice\u{202E}nimda",
            "Bob\u{2066}x\u{2069}",
            "Ca\u{200B}rol",
            "\u{FEFF}Dave",
            "Eve\u{200F}",
        ] {
            assert!(
                matches!(SubscriberName::parse(spoof), Err(NameError::Invisible(_))),
                "{spoof:?}"
            );
        }
        let e = SubscriberName::parse("x\u{202E}y").unwrap_err().to_string();
        assert!(e.contains("U+202E"), "{e}");
        // Persian uses the zero-width non-joiner inside words.
        assert!(SubscriberName::parse("مهر\u{200C}آسا").unwrap().is_some());
        assert!(SubscriberName::parse("👩\u{200D}💻 Dev").unwrap().is_some());
    }

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
