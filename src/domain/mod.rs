//! Domain newtypes that parse rather than validate: once you hold one, it is valid.
//!
//! - [`EmailAddress`]: a subscriber's address, normalised (IDN domain as punycode, lower-cased).
//! - [`SubscriberName`]: a display name that cannot smuggle a header line.
//! - [`SubscriberStatus`]: pending, active, unsubscribed, bounced, complained.
//! - [`ErasureKey`]: the keyed hash kept of an erased address.
//! - [`ReturnPath`]: the envelope sender, tagged with a token per copy (VERP).
//! - [`IssueSlug`]: the stable key of an issue, safe in a URL and a file name.
//! - [`token`]: HMAC tokens bound to a purpose and a subscriber (unsubscribe, confirm), and
//!   return-path tokens naming one delivery.

mod email;
mod erasure;
mod name;
mod return_path;
mod slug;
mod status;
pub mod token;

pub use email::{EmailAddress, EmailError};
pub use erasure::{AddressHash, ErasureKey};
pub use name::{NameError, SubscriberName, MAX_NAME_CHARS};
pub use return_path::{ReturnAddress, ReturnPath, ReturnPathError};
pub use slug::{IssueSlug, SlugError};
pub use status::{StatusError, SubscriberStatus};
pub use token::{
    claimed_issue, ClickToken, DeliveryToken, OpenToken, Purpose, Token, TokenError, TokenKey,
    UnsubscribeToken,
};
