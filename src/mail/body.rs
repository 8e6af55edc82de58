//! The `multipart/alternative` body, quoted-printable encoded once per issue.
//!
//! Every copy of an issue shares all of its bytes but the slot values (unsubscribe URL,
//! name, address). [`EncodedBody::new`] encodes each literal piece of the rendered text and
//! HTML once, ending it with a soft line break (`=` CRLF), which a decoder removes. A copy is
//! then the pieces joined with its own slot values, each encoded the same way: valid
//! quoted-printable (no line over 76 characters, since every piece starts a line), decoding
//! to exactly the personalised text, at the cost of a few extra soft breaks.
//!
//! # No line starts with a dot
//!
//! SMTP's DATA ends at a line holding a lone "." and takes a leading "." off any other line,
//! so a client normally "dot-stuffs" every copy on its way out, one byte at a time. herald
//! does that work once per issue instead: the encoder writes a "." that would start a line as
//! `=2E` (the same octet in quoted-printable). Since every literal piece and every slot value
//! starts a line of its own and is encoded on its own, no line of a finished body starts
//! with ".", and the transport sends the bytes as they are (see `mail::transport`).

use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::render::{Recipient, Split, SplitPiece};

/// One prepared part: its header block and its encoded pieces.
#[derive(Debug, Clone)]
struct Part {
    split: Split,
    /// Encoded literal pieces, `None` where a slot goes.
    pieces: Vec<Option<String>>,
    literal_len: usize,
}

/// A `multipart/alternative` (text, then HTML) body, ready to personalise.
#[derive(Debug, Clone)]
pub(crate) struct EncodedBody {
    boundary: String,
    text: Part,
    html: Part,
}

const SOFT_BREAK: &str = "=\r\n";

impl EncodedBody {
    /// Encodes the literal pieces of both parts, once.
    pub(crate) fn new(text: &Split, html: &Split) -> Self {
        let boundary: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        Self {
            boundary: format!("herald-{boundary}"),
            text: Part::new(text),
            html: Part::new(html),
        }
    }

    /// The Content-Type header value of the whole body.
    pub(crate) fn content_type(&self) -> String {
        format!("multipart/alternative; boundary=\"{}\"", self.boundary)
    }

    /// The body bytes for `recipient`: 7-bit, CRLF line ends.
    pub(crate) fn personalise(&self, recipient: &Recipient<'_>) -> Vec<u8> {
        let mut out = String::with_capacity(self.text.literal_len + self.html.literal_len + 1024);
        for (part, subtype) in [(&self.text, "plain"), (&self.html, "html")] {
            out.push_str("--");
            out.push_str(&self.boundary);
            out.push_str("\r\nContent-Type: text/");
            out.push_str(subtype);
            out.push_str("; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
            part.write(recipient, &mut out);
            out.push_str("\r\n");
        }
        out.push_str("--");
        out.push_str(&self.boundary);
        out.push_str("--\r\n");
        out.into_bytes()
    }
}

impl Part {
    fn new(split: &Split) -> Self {
        let pieces: Vec<Option<String>> = split
            .pieces()
            .map(|piece| match piece {
                SplitPiece::Literal(text) => Some(encode(text)),
                SplitPiece::Slot(_) => None,
            })
            .collect();
        let literal_len = pieces.iter().flatten().map(String::len).sum();
        Self {
            split: split.clone(),
            pieces,
            literal_len,
        }
    }

    fn write(&self, recipient: &Recipient<'_>, out: &mut String) {
        let mut value = String::new();
        let last = self.pieces.len().saturating_sub(1);
        for (i, (encoded, piece)) in self.pieces.iter().zip(self.split.pieces()).enumerate() {
            match (encoded, piece) {
                (Some(encoded), _) => out.push_str(encoded),
                (None, SplitPiece::Slot(slot)) => {
                    value.clear();
                    self.split.write_slot(slot, recipient, &mut value);
                    out.push_str(&encode(&value));
                }
                (None, SplitPiece::Literal(_)) => unreachable!("literals are always encoded"),
            }
            if i != last {
                out.push_str(SOFT_BREAK);
            }
        }
    }
}

/// The longest quoted-printable line (RFC 2045 §6.7), CRLF not counted.
const MAX_LINE: usize = 76;

/// Quoted-printable in text mode, after making every line end CRLF, with no line that
/// starts with "." (see the module docs).
fn encode(text: &str) -> String {
    let crlf = if text.contains('\n') {
        text.replace("\r\n", "\n").replace('\n', "\r\n")
    } else {
        text.to_string()
    };
    escape_leading_dots(quoted_printable::encode_to_str(crlf))
}

/// Rewrites each "." that starts a line of quoted-printable `encoded` as `=2E`. Where that
/// would make the line longer than [`MAX_LINE`], a soft break follows the `=2E`, and the
/// rest of the line (which may start with a dot again) is treated as a line of its own.
fn escape_leading_dots(encoded: String) -> String {
    if !encoded.starts_with('.') && !encoded.contains("\n.") {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + 16);
    let mut lines = encoded.split("\r\n").peekable();
    while let Some(mut line) = lines.next() {
        while let Some(rest) = line.strip_prefix('.') {
            out.push_str("=2E");
            line = rest;
            if line.len() + 3 <= MAX_LINE {
                break;
            }
            out.push_str(SOFT_BREAK);
        }
        out.push_str(line);
        if lines.peek().is_some() {
            out.push_str("\r\n");
        }
    }
    out
}

/// Whether any line of `bytes` starts with "." (what SMTP would take for dot-stuffing).
/// Checked in debug builds and tests only: release builds rely on the encoder.
pub(crate) fn has_leading_dot(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'.') || bytes.windows(2).any(|w| w == b"\n.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Escape, Slot};

    #[test]
    fn decodes_to_the_personalised_text_with_short_lines() {
        let long = "word ".repeat(40);
        let text = format!(
            "Hello {}, café 周报\n{long}\nUnsubscribe: {}\n",
            Slot::Name.marker(),
            Slot::UnsubscribeUrl.marker()
        );
        let html = format!(
            "<p>Hi {}</p><a href=\"{}\">x</a>",
            Slot::Name.marker(),
            Slot::UnsubscribeUrl.marker()
        );
        let body = EncodedBody::new(
            &Split::new(&text, Escape::None),
            &Split::new(&html, Escape::Html),
        );
        let r = Recipient {
            email: "a@example.org",
            name: Some("Zoë <admin>"),
            unsubscribe_url: "https://x.example/unsubscribe/tok?a=1&b=2",
            tracking: None,
        };
        let bytes = body.personalise(&r);
        let raw = String::from_utf8(bytes.clone()).unwrap();
        assert!(raw.is_ascii());
        assert!(raw.split("\r\n").all(|line| line.len() <= 76), "{raw}");
        assert!(!raw.replace("\r\n", "").contains('\n'), "no bare LF");
        let message = format!("Content-Type: {}\r\n\r\n{raw}", body.content_type());
        let parsed = mail_parser::MessageParser::default()
            .parse(message.as_bytes())
            .unwrap();
        let expected_text = Split::new(&text, Escape::None)
            .personalise(&r)
            .replace('\n', "\r\n");
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            expected_text.replace("\r\n", "\n")
        );
        assert_eq!(
            parsed.body_html(0).unwrap(),
            Split::new(&html, Escape::Html).personalise(&r)
        );
    }

    fn decoded(encoded: &str) -> String {
        let bytes = quoted_printable::decode(encoded, quoted_printable::ParseMode::Strict)
            .unwrap_or_else(|e| panic!("{e:?} in {encoded:?}"));
        String::from_utf8(bytes).unwrap()
    }

    fn assert_no_leading_dot_and_short_lines(encoded: &str) {
        assert!(!has_leading_dot(encoded.as_bytes()), "{encoded:?}");
        for line in encoded.split("\r\n") {
            assert!(
                line.len() <= MAX_LINE,
                "{} > {MAX_LINE}: {line:?}",
                line.len()
            );
        }
    }

    #[test]
    fn a_dot_that_would_start_a_line_is_encoded_and_decodes_back() {
        for text in [
            ".",
            ".hidden",
            "..two",
            "line one\n.\nline three",
            "a\n..\n...\n",
            &format!("{}\n.{}", "x".repeat(80), ".".repeat(200)),
            &".".repeat(300),
            &format!(".{}", "y".repeat(75)),
            &format!("..{}=", "z".repeat(74)),
        ] {
            let encoded = encode(text);
            assert_no_leading_dot_and_short_lines(&encoded);
            assert_eq!(decoded(&encoded), text.replace('\n', "\r\n"), "{text:?}");
        }
    }

    #[test]
    fn text_without_leading_dots_is_encoded_as_before() {
        let text = "Hello. A sentence. Another one.\nNext line. ".repeat(20);
        assert_eq!(
            encode(&text),
            quoted_printable::encode_to_str(text.replace('\n', "\r\n"))
        );
    }

    #[test]
    fn a_copy_has_no_line_starting_with_a_dot_whatever_the_pieces_and_values() {
        // A dot at the start of the text, of a line, right after a slot, and in the value.
        let text = format!(
            ".Hello {}\n.{}\n..end\n",
            Slot::Name.marker(),
            Slot::UnsubscribeUrl.marker()
        );
        let html = format!("<p>{}</p>\n.<b>x</b>", Slot::Name.marker());
        let body = EncodedBody::new(
            &Split::new(&text, Escape::None),
            &Split::new(&html, Escape::Html),
        );
        let r = Recipient {
            email: "a@example.org",
            name: Some(".Dot\n.Name"),
            unsubscribe_url: ".https://x.example/u/.tok",
            tracking: None,
        };
        let bytes = body.personalise(&r);
        assert!(!has_leading_dot(&bytes));
        let message = format!(
            "Content-Type: {}\r\n\r\n{}",
            body.content_type(),
            String::from_utf8(bytes).unwrap()
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(message.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            Split::new(&text, Escape::None)
                .personalise(&r)
                .replace("\r\n", "\n")
        );
        assert_eq!(
            parsed.body_html(0).unwrap().replace("\r\n", "\n"),
            Split::new(&html, Escape::Html).personalise(&r)
        );
    }
}
