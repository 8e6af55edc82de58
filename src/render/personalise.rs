//! Output that is rendered once per issue and personalised per recipient by concatenation.
//!
//! The layout is rendered with marker strings where per-recipient values belong; [`Split`]
//! cuts the result at those markers once. Personalising a copy is then a walk over the
//! literal pieces and the slots, with no parsing, templating or MJML work per recipient.
//!
//! With click or open tracking on, [`crate::render::track`] cuts the links and the end of
//! the body into slots of their own ([`Slot::Link`], [`Slot::OpenImage`]) once per issue, so
//! a tracked copy is a concatenation too: each link slot is written as
//! `{base_url}l/{link}/{token}` for a recipient with a [`TrackingStamp`], and as the
//! original URL for anyone else (test copies, previews).

use std::ops::Range;
use std::sync::Arc;

use crate::domain::{ClickToken, OpenToken, TokenKey};

/// A value that differs per recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The recipient's one-click unsubscribe URL.
    UnsubscribeUrl,
    /// The recipient's name, or the empty string when there is none.
    Name,
    /// The recipient's address.
    Email,
    /// Tracked link number `n` of [`TrackedLinks`]: not cut at a marker, but by
    /// [`crate::render::track`].
    Link(u16),
    /// The open image (an `<img>` element), or nothing for a copy without a stamp.
    OpenImage,
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
            // Never searched for: these slots are cut by position, not at markers.
            Slot::Link(_) | Slot::OpenImage => "x-herald-slot-tracked-x",
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
    /// For a delivery of the ledger: what its click and open tokens are signed for. `None`
    /// writes tracked links as their original URLs and no open image.
    pub tracking: Option<TrackingStamp<'a>>,
}

/// What one copy's click and open tokens name.
#[derive(Debug, Clone, Copy)]
pub struct TrackingStamp<'a> {
    pub key: &'a TokenKey,
    pub issue_id: i64,
    pub subscriber_id: i64,
    /// When the copy was made (Unix seconds): an open soon after is a machine's.
    pub sent_at: i64,
}

/// One link of an issue that goes through `/l/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedLink {
    /// Its id within the issue (short, URL-safe; the same URL always has the same id).
    pub id: String,
    /// The URL as the issue wrote it (absolute, http or https).
    pub url: String,
}

/// The tracked links of one issue and where `/l/` and `/o/` live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackedLinks {
    /// `{base_url}l/`.
    pub click_base: String,
    /// `{base_url}o/`.
    pub open_base: String,
    /// In order of first appearance; [`Slot::Link`] indexes this.
    pub links: Vec<TrackedLink>,
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
    /// What [`Slot::Link`] and [`Slot::OpenImage`] write; empty unless tracking is on.
    tracked: Arc<TrackedLinks>,
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
        let literal_len = literal_len(&pieces);
        Self {
            pieces,
            escape,
            literal_len,
            tracked: Arc::default(),
        }
    }

    /// Cuts the literal pieces again: `cut` names, for one literal, the byte ranges that
    /// become slots (in order, not overlapping). Used once per issue by the tracking rewrite.
    pub(crate) fn cut_literals(&mut self, mut cut: impl FnMut(&str) -> Vec<(Range<usize>, Slot)>) {
        let mut pieces = Vec::with_capacity(self.pieces.len());
        for piece in std::mem::take(&mut self.pieces) {
            let Piece::Literal(text) = piece else {
                pieces.push(piece);
                continue;
            };
            let mut from = 0;
            for (range, slot) in cut(&text) {
                if range.start < from || range.end > text.len() {
                    continue;
                }
                if range.start > from {
                    pieces.push(Piece::Literal(text[from..range.start].to_string()));
                }
                pieces.push(Piece::Slot(slot));
                from = range.end;
            }
            if from < text.len() {
                pieces.push(Piece::Literal(text[from..].to_string()));
            }
        }
        self.literal_len = literal_len(&pieces);
        self.pieces = pieces;
    }

    /// Sets what the tracking slots write.
    pub(crate) fn set_tracked(&mut self, tracked: Arc<TrackedLinks>) {
        self.tracked = tracked;
    }

    /// The tracked links (none unless click tracking is on).
    pub fn tracked(&self) -> &TrackedLinks {
        &self.tracked
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
        let tracked_url;
        let value = match slot {
            Slot::UnsubscribeUrl => recipient.unsubscribe_url,
            Slot::Name => recipient.name.unwrap_or(""),
            Slot::Email => recipient.email,
            Slot::Link(n) => {
                let Some(link) = self.tracked.links.get(usize::from(n)) else {
                    return;
                };
                match &recipient.tracking {
                    Some(stamp) => {
                        let token = stamp.key.sign_click(
                            ClickToken {
                                issue_id: stamp.issue_id,
                                subscriber_id: stamp.subscriber_id,
                            },
                            &link.id,
                        );
                        tracked_url = format!("{}{}/{token}", self.tracked.click_base, link.id);
                        &tracked_url
                    }
                    None => &link.url,
                }
            }
            Slot::OpenImage => {
                // Markup, written as it is: the token is URL-safe base64.
                if let Some(stamp) = &recipient.tracking {
                    let token = stamp.key.sign_open(OpenToken {
                        issue_id: stamp.issue_id,
                        subscriber_id: stamp.subscriber_id,
                        sent_at: stamp.sent_at,
                    });
                    out.push_str("<img src=\"");
                    html_escape::encode_double_quoted_attribute_to_string(
                        &self.tracked.open_base,
                        out,
                    );
                    out.push_str(&token);
                    out.push_str(
                        ".gif\" width=\"1\" height=\"1\" alt=\"\" border=\"0\" \
                         style=\"display:block;width:1px;height:1px;border:0\">",
                    );
                }
                return;
            }
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

fn literal_len(pieces: &[Piece]) -> usize {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Literal(s) => s.len(),
            Piece::Slot(_) => 0,
        })
        .sum()
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
            tracking: None,
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
            tracking: None,
        };
        assert_eq!(split.personalise(&r), "plain");
        let named = Split::new(Slot::Name.marker(), Escape::None);
        assert_eq!(named.personalise(&r), "");
    }
}
