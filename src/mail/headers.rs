//! The RFC 2369 / 2919 / 8058 list headers, which lettre has no types for.
//!
//! Each is a small newtype implementing lettre's [`Header`]. Their values go through
//! [`HeaderValue::new`], which RFC 2047-encodes anything outside printable ASCII (CR and LF
//! included) and folds long lines, so a value can never start a header line of its own.

use lettre::message::header::{Header, HeaderName, HeaderValue};

type ParseError = Box<dyn std::error::Error + Send + Sync>;

/// `List-Unsubscribe: <https://…/unsubscribe/TOKEN>, <mailto:…?subject=unsubscribe>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListUnsubscribe(pub(crate) String);

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListUnsubscribePost;

/// `List-Id: Newsletter Name <label.example.org>` (RFC 2919).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListId(pub(crate) String);

/// `Feedback-ID: issue:list:sender`, for the mailbox providers' feedback loops (Gmail's
/// Postmaster Tools reports complaint rates per value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedbackId(pub(crate) String);

/// The delivery's return-path token for a sending service's webhook, in the header that
/// service copies into its events: Postmark's `X-PM-Metadata-herald`, Mailgun's
/// `X-Mailgun-Variables` and SendGrid's `X-SMTPAPI` (each a relay that strips it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PostmarkMetadata(pub(crate) String);
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailgunVariables(pub(crate) String);
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendgridSmtpApi(pub(crate) String);

macro_rules! text_header {
    ($type:ident, $name:literal) => {
        impl Header for $type {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }

            fn parse(s: &str) -> Result<Self, ParseError> {
                Ok(Self(s.to_owned()))
            }

            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(PostmarkMetadata, "X-PM-Metadata-herald");
text_header!(MailgunVariables, "X-Mailgun-Variables");
text_header!(SendgridSmtpApi, "X-SMTPAPI");

/// The only value RFC 8058 allows for `List-Unsubscribe-Post`.
pub(crate) const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, ParseError> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(s: &str) -> Result<Self, ParseError> {
        if s.trim() == ONE_CLICK {
            Ok(Self)
        } else {
            Err(format!("List-Unsubscribe-Post must be {ONE_CLICK:?}").into())
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), ONE_CLICK.to_owned())
    }
}

impl Header for ListId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Id")
    }

    fn parse(s: &str) -> Result<Self, ParseError> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

impl Header for FeedbackId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Feedback-ID")
    }

    fn parse(s: &str) -> Result<Self, ParseError> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The display-name part of `List-Id`: bare when it is plain words, a quoted string when
/// it holds ASCII specials. Non-ASCII words stay bare (lettre encodes them per RFC 2047,
/// which is not allowed inside quotes), with any specials among them turned into spaces.
pub(crate) fn list_id_phrase(name: &str) -> String {
    const SPECIALS: &str = "()<>[]:;@\\,.\"";
    let name: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if !name.chars().any(|c| SPECIALS.contains(c)) {
        return name;
    }
    if name.is_ascii() {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        return format!("\"{escaped}\"");
    }
    let plain: String = name
        .chars()
        .map(|c| if SPECIALS.contains(c) { ' ' } else { c })
        .collect();
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::header::Headers;

    fn rendered<H: Header>(header: H) -> String {
        let mut headers = Headers::new();
        headers.set(header);
        headers.to_string()
    }

    #[test]
    fn list_headers_render_with_their_names() {
        assert_eq!(
            rendered(ListUnsubscribePost),
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        );
        assert_eq!(
            rendered(ListId("Weekly <weekly.example.org>".into())),
            "List-Id: Weekly <weekly.example.org>\r\n"
        );
    }

    #[test]
    fn line_breaks_in_a_value_are_encoded_not_sent() {
        // lettre's own Subject and our header types share the same encoder; neither may let
        // a CR/LF in a value start a new header line.
        let mut headers = Headers::new();
        headers.set(lettre::message::header::Subject::from(
            "Hello\r\nBcc: victim@example.org".to_string(),
        ));
        headers.set(ListId("x\r\nBcc: victim@example.org <a.b>".into()));
        let text = headers.to_string();
        for line in text.split("\r\n") {
            assert!(!line.to_ascii_lowercase().starts_with("bcc:"), "{text}");
            assert!(!line.contains('\n') && !line.contains('\r'), "{text}");
        }
        assert!(text.contains("=?utf-8?"), "{text}");
    }

    #[test]
    fn list_id_phrase_quotes_specials_and_keeps_plain_names_bare() {
        assert_eq!(list_id_phrase("Herald Weekly"), "Herald Weekly");
        assert_eq!(
            list_id_phrase("Dr. Who's \"News\""),
            r#""Dr. Who's \"News\"""#
        );
        assert_eq!(list_id_phrase("周报 <每周>"), "周报 每周");
        assert_eq!(list_id_phrase("a\tb"), "a b");
    }
}
