//! The rendered mail as a whole: Gmail's clipping size, and how much of it is images.

use pulldown_cmark::Event;

use super::links::Kind;
use super::{At, Found, Subject, Words};

/// Gmail shows "[Message clipped]" and hides the rest (the unsubscribe link included) once
/// the HTML reaches 102 KB. Gmail counts the decoded HTML, not the encoded message.
pub const GMAIL_CLIP_BYTES: usize = 102 * 1024;

/// Fewer characters of text than this per image reads, to filters and to readers with
/// images off, as a mail made of pictures.
pub const TEXT_PER_IMAGE: usize = 150;

pub(super) fn gmail_clipping(s: &Subject<'_>, out: &mut Vec<Found>) {
    let size = s.html.len();
    if size >= GMAIL_CLIP_BYTES {
        out.push(Found::new(
            At::File,
            Words::new("check-gmail-clipping").number("kb", size.div_ceil(1024)),
            Words::new("check-gmail-clipping-hint"),
        ));
    }
}

pub(super) fn images_over_text(s: &Subject<'_>, out: &mut Vec<Found>) {
    let images = s
        .references
        .iter()
        .filter(|r| matches!(r.kind, Kind::Image | Kind::RawImage))
        .count();
    if images == 0 {
        return;
    }
    let text: usize = s
        .events
        .iter()
        .map(|(e, _)| match e {
            Event::Text(t) | Event::Code(t) => t.chars().filter(|c| !c.is_whitespace()).count(),
            _ => 0,
        })
        .sum();
    if text < images * TEXT_PER_IMAGE {
        out.push(Found::new(
            At::File,
            Words::new("check-images-over-text")
                .number("images", images)
                .number("characters", text),
            Words::new("check-images-over-text-hint").number("per_image", TEXT_PER_IMAGE),
        ));
    }
}
