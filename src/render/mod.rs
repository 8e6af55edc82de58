//! Rendering an issue, once: Markdown to a safe HTML fragment and plain text, the MJML
//! layout via mrml, and the result pre-split for per-recipient personalisation.
//!
//! Only this module knows mrml.

pub mod personalise;

pub use personalise::{Escape, Recipient, Slot, Split};

use crate::domain::IssueSlug;

/// An issue rendered for sending: everything but the per-recipient values.
#[derive(Debug, Clone)]
pub struct RenderedIssue {
    pub slug: IssueSlug,
    /// One line, UTF-8; mail/ encodes it.
    pub subject: String,
    /// The full HTML document, from mrml.
    pub html: Split,
    /// The plain-text alternative.
    pub text: Split,
}
