//! Domain newtypes that parse rather than validate: once you hold one, it is valid.
//!
//! - [`EmailAddress`]: a subscriber's address, normalised (IDN domain as punycode, lower-cased).
//! - [`SubscriberName`]: a display name that cannot smuggle a header line.
//! - [`IssueSlug`]: the stable key of an issue, safe in a URL and a file name.
//! - [`token`]: HMAC tokens bound to a purpose and a subscriber (unsubscribe, confirm).

mod email;
mod name;
mod slug;
pub mod token;

pub use email::{EmailAddress, EmailError};
pub use name::{NameError, SubscriberName};
pub use slug::{IssueSlug, SlugError};
pub use token::{Purpose, Token, TokenError, TokenKey};
