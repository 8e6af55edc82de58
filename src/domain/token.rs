//! Tokens for links in mail: unforgeable, bound to one purpose and one subscriber.
//!
//! A token is `base64url(payload ‖ tag)` where the payload is the purpose (1 byte), the
//! subscriber id (8 bytes, big-endian) and the expiry in Unix seconds (8 bytes, big-endian;
//! `i64::MAX` for "never"), and the tag is the first 16 bytes of
//! HMAC-SHA256(key, "herald-token-v1" ‖ payload). Verification recomputes the tag and
//! compares it in constant time, so a token for one purpose never passes for another, and a
//! changed subscriber id or expiry breaks the tag.
//!
//! # Return-path tokens
//!
//! A [`DeliveryToken`] names one delivery (issue and subscriber) in the envelope sender of
//! its copy, `bounces+TOKEN@domain` (VERP), so a returned mail finds its delivery. It must
//! be short and safe in a local part that servers may fold to one case, so it is lowercase
//! base32 (RFC 4648 alphabet, no padding; read case-insensitively) of `varint(issue id) ‖
//! varint(subscriber id) ‖ tag`, where the tag is the first 10 bytes (80 bits) of
//! HMAC-SHA256(key, "herald-token-v1" ‖ purpose ‖ ids). It does not expire: a bounce may
//! come days later. 20 to 26 characters for realistic ids.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::LazyLock;
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
    /// A return-path (VERP) token naming one delivery; see [`DeliveryToken`].
    ReturnPath,
}

impl Purpose {
    fn byte(self) -> u8 {
        match self {
            Purpose::Unsubscribe => 1,
            Purpose::Confirm => 2,
            Purpose::AdminSession => 3,
            Purpose::AdminCsrf => 4,
            Purpose::ReturnPath => 5,
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

/// Length of a return-path token's tag: 80 bits, out of reach of guessing over SMTP.
const DELIVERY_TAG_LEN: usize = 10;

static BASE32_LOWER: LazyLock<data_encoding::Encoding> = LazyLock::new(|| {
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    spec.translate.from.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    spec.translate.to.push_str("abcdefghijklmnopqrstuvwxyz");
    spec.encoding().expect("a valid base32 specification")
});

/// The delivery a return-path token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryToken {
    pub issue_id: i64,
    pub subscriber_id: i64,
}

impl TokenKey {
    fn delivery_tag(&self, ids: &[u8]) -> [u8; DELIVERY_TAG_LEN] {
        let mut mac = self.0.clone();
        mac.update(DOMAIN);
        mac.update(&[Purpose::ReturnPath.byte()]);
        mac.update(ids);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; DELIVERY_TAG_LEN];
        tag.copy_from_slice(&full[..DELIVERY_TAG_LEN]);
        tag
    }

    /// The return-path token for one delivery: lowercase base32, safe in a local part.
    /// Ids are row ids, never negative.
    pub fn sign_delivery(&self, delivery: DeliveryToken) -> String {
        let mut bytes = Vec::with_capacity(2 * 10 + DELIVERY_TAG_LEN);
        put_varint(&mut bytes, delivery.issue_id.max(0) as u64);
        put_varint(&mut bytes, delivery.subscriber_id.max(0) as u64);
        let tag = self.delivery_tag(&bytes);
        bytes.extend_from_slice(&tag);
        BASE32_LOWER.encode(&bytes)
    }

    /// Checks a return-path token (in either case) and returns the delivery it names.
    pub fn verify_delivery(&self, token: &str) -> Result<DeliveryToken, TokenError> {
        if token.len() > 64 {
            return Err(TokenError::Malformed);
        }
        let bytes = BASE32_LOWER
            .decode(token.as_bytes())
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() < 2 + DELIVERY_TAG_LEN {
            return Err(TokenError::Malformed);
        }
        let (ids, tag) = bytes.split_at(bytes.len() - DELIVERY_TAG_LEN);
        if !bool::from(self.delivery_tag(ids).ct_eq(tag)) {
            return Err(TokenError::BadSignature);
        }
        let (issue_id, rest) = take_varint(ids).ok_or(TokenError::Malformed)?;
        let (subscriber_id, rest) = take_varint(rest).ok_or(TokenError::Malformed)?;
        if !rest.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(DeliveryToken {
            issue_id: i64::try_from(issue_id).map_err(|_| TokenError::Malformed)?,
            subscriber_id: i64::try_from(subscriber_id).map_err(|_| TokenError::Malformed)?,
        })
    }
}

/// LEB128: seven bits a byte, low bits first.
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn take_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut n: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            // The shortest form only, so one delivery has one token.
            if i > 0 && b == 0 {
                return None;
            }
            return Some((n, &bytes[i + 1..]));
        }
    }
    None
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
    fn a_return_path_token_is_short_lowercase_and_names_its_delivery() {
        let k = key("0123456789abcdef0123456789abcdef");
        for (issue_id, subscriber_id) in [(1, 1), (3, 42), (900, 1_000_000), (i64::MAX, i64::MAX)] {
            let d = DeliveryToken {
                issue_id,
                subscriber_id,
            };
            let t = k.sign_delivery(d);
            assert!(
                t.chars()
                    .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)),
                "{t}"
            );
            assert_eq!(k.verify_delivery(&t), Ok(d));
            // Servers may fold a local part to upper case.
            assert_eq!(k.verify_delivery(&t.to_ascii_uppercase()), Ok(d));
        }
        let t = k.sign_delivery(DeliveryToken {
            issue_id: 12,
            subscriber_id: 34_567,
        });
        assert!(t.len() <= 26, "{t}");
    }

    #[test]
    fn a_return_path_token_cannot_be_forged_or_reused_for_another_purpose() {
        let k = key("0123456789abcdef0123456789abcdef");
        let d = DeliveryToken {
            issue_id: 3,
            subscriber_id: 42,
        };
        let t = k.sign_delivery(d);
        assert_eq!(
            key("another-key-another-key").verify_delivery(&t),
            Err(TokenError::BadSignature)
        );
        // Another subscriber's id under the same tag.
        let mut raw = BASE32_LOWER.decode(t.as_bytes()).unwrap();
        raw[1] ^= 1;
        assert_eq!(
            k.verify_delivery(&BASE32_LOWER.encode(&raw)),
            Err(TokenError::BadSignature)
        );
        for junk in ["", "abc", "not-base32!", &"a".repeat(80)] {
            assert!(k.verify_delivery(junk).is_err(), "{junk}");
        }
        // An unsubscribe token's bytes never verify as a return-path token.
        let other = k.sign(Purpose::Unsubscribe, 42, None);
        let raw = URL_SAFE_NO_PAD.decode(other.as_str()).unwrap();
        assert!(k.verify_delivery(&BASE32_LOWER.encode(&raw)).is_err());
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
