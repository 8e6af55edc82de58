//! Output that is rendered once per issue and personalised per recipient by concatenation.
//!
//! The layout is rendered with marker strings where per-recipient values belong; [`Split`]
//! cuts the result at those markers once. Personalising a copy is then a walk over the
//! literal pieces and the slots, with no parsing, templating or MJML work per recipient.

/// A value that differs per recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The recipient's one-click unsubscribe URL.
    UnsubscribeUrl,
    /// The recipient's name, or the empty string when there is none.
    Name,
    /// The recipient's address.
    Email,
}

impl Slot {
    pub const ALL: [Slot; 3] = [Slot::UnsubscribeUrl, Slot::Name, Slot::Email];

    /// The marker text that stands for this slot in rendered output. It is plain ASCII that
    /// survives Markdown, minijinja, mrml and CSS inlining unchanged.
    pub const fn marker(self) -> &'static str {
        match self {
            Slot::UnsubscribeUrl => "x-herald-slot-unsubscribe-url-x",
            Slot::Name => "x-herald-slot-name-x",
            Slot::Email => "x-herald-slot-email-x",
        }
    }
}

/// How slot values are written into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// HTML: values are escaped for text and attribute context.
    Html,
    /// Plain text: values are written as they are.
    None,
}

/// The values for one recipient.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub unsubscribe_url: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Slot(Slot),
}

/// One piece of a [`Split`], as [`Split::pieces`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitPiece<'a> {
    /// Fixed text, the same for every recipient.
    Literal(&'a str),
    /// A per-recipient value; write it with [`Split::write_slot`].
    Slot(Slot),
}

/// Rendered output, pre-split at the per-recipient slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pieces: Vec<Piece>,
    escape: Escape,
    literal_len: usize,
}

impl Split {
    /// Cuts `rendered` at every slot marker.
    pub fn new(rendered: &str, escape: Escape) -> Self {
        let mut pieces = Vec::new();
        let mut rest = rendered;
        loop {
            let next = Slot::ALL
                .iter()
                .filter_map(|slot| rest.find(slot.marker()).map(|at| (at, *slot)))
                .min_by_key(|(at, _)| *at);
            match next {
                Some((at, slot)) => {
                    if at > 0 {
                        pieces.push(Piece::Literal(rest[..at].to_string()));
                    }
                    pieces.push(Piece::Slot(slot));
                    rest = &rest[at + slot.marker().len()..];
                }
                None => {
                    if !rest.is_empty() {
                        pieces.push(Piece::Literal(rest.to_string()));
                    }
                    break;
                }
            }
        }
        let literal_len = pieces
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.len(),
                Piece::Slot(_) => 0,
            })
            .sum();
        Self {
            pieces,
            escape,
            literal_len,
        }
    }

    /// Appends the copy for `recipient` to `out`.
    pub fn personalise_into(&self, recipient: &Recipient<'_>, out: &mut String) {
        out.reserve(self.literal_len + 256);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Slot(slot) => self.write_slot(*slot, recipient, out),
            }
        }
    }

    /// Appends `recipient`'s value for `slot`, escaped as this output requires.
    pub fn write_slot(&self, slot: Slot, recipient: &Recipient<'_>, out: &mut String) {
        let value = match slot {
            Slot::UnsubscribeUrl => recipient.unsubscribe_url,
            Slot::Name => recipient.name.unwrap_or(""),
            Slot::Email => recipient.email,
        };
        match self.escape {
            Escape::Html => {
                html_escape::encode_double_quoted_attribute_to_string(value, out);
            }
            Escape::None => out.push_str(value),
        }
    }

    /// The literal pieces and slots in order, for encoders that prepare the literals once.
    pub fn pieces(&self) -> impl Iterator<Item = SplitPiece<'_>> + '_ {
        self.pieces.iter().map(|p| match p {
            Piece::Literal(s) => SplitPiece::Literal(s),
            Piece::Slot(slot) => SplitPiece::Slot(*slot),
        })
    }

    /// The copy for `recipient`.
    pub fn personalise(&self, recipient: &Recipient<'_>) -> String {
        let mut out = String::new();
        self.personalise_into(recipient, &mut out);
        out
    }

    /// Which slots occur, in order (for tests and checks).
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Slot(s) => Some(*s),
            Piece::Literal(_) => None,
        })
    }

    /// Bytes of fixed text: the size of a copy less its slot values.
    pub fn literal_len(&self) -> usize {
        self.literal_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_fills_every_slot_with_escaping() {
        let rendered = format!(
            "<p>Hi {}</p><a href=\"{}\">unsubscribe</a> ({})",
            Slot::Name.marker(),
            Slot::UnsubscribeUrl.marker(),
            Slot::Email.marker()
        );
        let split = Split::new(&rendered, Escape::Html);
        assert_eq!(
            split.slots().collect::<Vec<_>>(),
            vec![Slot::Name, Slot::UnsubscribeUrl, Slot::Email]
        );
        let r = Recipient {
            email: "o'brien@example.org",
            name: Some("<script>\"Eve\""),
            unsubscribe_url: "https://x.test/unsubscribe/abc?a=1&b=2",
        };
        let out = split.personalise(&r);
        assert_eq!(
            out,
            "<p>Hi &lt;script&gt;&quot;Eve&quot;</p><a href=\"https://x.test/unsubscribe/abc?a=1&amp;b=2\">unsubscribe</a> (o'brien@example.org)"
        );
        let text = Split::new(&rendered, Escape::None).personalise(&r);
        assert!(text.contains("Hi <script>\"Eve\""));
    }

    #[test]
    fn missing_name_is_empty_and_text_without_slots_is_unchanged() {
        let split = Split::new("plain", Escape::None);
        let r = Recipient {
            email: "a@b.org",
            name: None,
            unsubscribe_url: "u",
        };
        assert_eq!(split.personalise(&r), "plain");
        let named = Split::new(Slot::Name.marker(), Escape::None);
        assert_eq!(named.personalise(&r), "");
    }
}
