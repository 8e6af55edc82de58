//! Tokens for links in mail: unforgeable, bound to one purpose and one subscriber.
//!
//! A token is `base64url(payload ‖ tag)` where the payload is the purpose (1 byte), the
//! subscriber id (8 bytes, big-endian) and the expiry in Unix seconds (8 bytes, big-endian;
//! `i64::MAX` for "never"), and the tag is the first 16 bytes of
//! HMAC-SHA256(key, "herald-token-v1" ‖ payload). Verification recomputes the tag and
//! compares it in constant time, so a token for one purpose never passes for another, and a
//! changed subscriber id or expiry breaks the tag.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const DOMAIN: &[u8] = b"herald-token-v1";
const PAYLOAD_LEN: usize = 17;
const TAG_LEN: usize = 16;

/// What a token allows. Each purpose signs differently, so they cannot be swapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    Confirm,
    /// A dashboard session cookie; the "subscriber id" is a random session id.
    AdminSession,
    /// A dashboard form's CSRF token, bound to the session id of the same value.
    AdminCsrf,
}

impl Purpose {
    fn byte(self) -> u8 {
        match self {
            Purpose::Unsubscribe => 1,
            Purpose::Confirm => 2,
            Purpose::AdminSession => 3,
            Purpose::AdminCsrf => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is not valid (it may have been cut short or changed)")]
    Malformed,
    #[error("the link is not valid (it may have been cut short or changed)")]
    BadSignature,
    #[error("the link is meant for something else")]
    WrongPurpose,
    #[error("the link has expired")]
    Expired,
}

/// The signing key, from `web.secret_key`. Cheap to clone.
#[derive(Clone)]
pub struct TokenKey(Hmac<Sha256>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

impl TokenKey {
    pub fn new(secret: &SecretString) -> Self {
        let mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        Self(mac)
    }

    fn tag(&self, payload: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.0.clone();
        mac.update(DOMAIN);
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// Signs a token for `subscriber_id`. `expires_at` is Unix seconds; `None` never expires.
    pub fn sign(&self, purpose: Purpose, subscriber_id: i64, expires_at: Option<i64>) -> Token {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
        bytes.push(purpose.byte());
        bytes.extend_from_slice(&subscriber_id.to_be_bytes());
        bytes.extend_from_slice(&expires_at.unwrap_or(i64::MAX).to_be_bytes());
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        Token(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Checks `token` for `purpose` at time `now` (Unix seconds) and returns the subscriber id.
    pub fn verify(&self, purpose: Purpose, token: &str, now: i64) -> Result<i64, TokenError> {
        if token.len() > 64 {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() != PAYLOAD_LEN + TAG_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        if !bool::from(self.tag(payload).ct_eq(tag)) {
            return Err(TokenError::BadSignature);
        }
        if payload[0] != purpose.byte() {
            return Err(TokenError::WrongPurpose);
        }
        let id = i64::from_be_bytes(payload[1..9].try_into().expect("8 bytes"));
        let expires = i64::from_be_bytes(payload[9..17].try_into().expect("8 bytes"));
        if now > expires {
            return Err(TokenError::Expired);
        }
        Ok(id)
    }
}

/// A signed token, URL-safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> TokenKey {
        TokenKey::new(&SecretString::from(s.to_string()))
    }

    #[test]
    fn round_trips_and_is_url_safe() {
        let k = key("0123456789abcdef0123456789abcdef");
        let t = k.sign(Purpose::Unsubscribe, 42, None);
        assert!(t
            .as_str()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(
            k.verify(Purpose::Unsubscribe, t.as_str(), 1_900_000_000),
            Ok(42)
        );
    }

    #[test]
    fn is_bound_to_purpose_key_and_subscriber() {
        let k = key("0123456789abcdef0123456789abcdef");
        let t = k.sign(Purpose::Confirm, 7, Some(2_000));
        assert_eq!(
            k.verify(Purpose::Unsubscribe, t.as_str(), 0),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(
            key("another-key-another-key").verify(Purpose::Confirm, t.as_str(), 0),
            Err(TokenError::BadSignature)
        );
        // Flip one bit of the subscriber id.
        let mut raw = URL_SAFE_NO_PAD.decode(t.as_str()).unwrap();
        raw[8] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(
            k.verify(Purpose::Confirm, &forged, 0),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            k.verify(Purpose::Confirm, "not a token", 0),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn expires() {
        let k = key("0123456789abcdef0123456789abcdef");
        let t = k.sign(Purpose::Confirm, 7, Some(2_000));
        assert_eq!(k.verify(Purpose::Confirm, t.as_str(), 2_000), Ok(7));
        assert_eq!(
            k.verify(Purpose::Confirm, t.as_str(), 2_001),
            Err(TokenError::Expired)
        );
    }
}
