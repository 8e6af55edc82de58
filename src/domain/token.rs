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
//!
//! # Unsubscribe tokens that name their issue
//!
//! The unsubscribe link of an issue's copy is signed for [`Purpose::UnsubscribeFromIssue`]:
//! the same layout as above, with the issue id where the expiry goes (it never expires), so
//! the report can say which issue a reader left from. Links signed before (purpose
//! [`Purpose::Unsubscribe`], no issue) stay valid: [`TokenKey::verify_unsubscribe`] takes both.
//!
//! # Click and open tokens
//!
//! A tracked link is `/l/{link}/{token}` and the open image `/o/{token}.gif`. Their tokens
//! are base64url of `varint(issue id) ‖ varint(subscriber id) [‖ varint(sent at)] ‖ tag`,
//! with a 10-byte tag over the purpose, the ids and (for a click) the link's id, so a token
//! is good for one link of one issue's copy only. About 20 characters.

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
    /// An issue's unsubscribe link: the subscriber and the issue it came in.
    UnsubscribeFromIssue,
    /// A tracked link of one issue's copy: see [`ClickToken`].
    Click,
    /// The open image of one issue's copy: see [`OpenToken`].
    Open,
    /// Not a token: the keyed hash that tells unique readers of an issue apart.
    Reader,
}

impl Purpose {
    fn byte(self) -> u8 {
        match self {
            Purpose::Unsubscribe => 1,
            Purpose::Confirm => 2,
            Purpose::AdminSession => 3,
            Purpose::AdminCsrf => 4,
            Purpose::ReturnPath => 5,
            Purpose::UnsubscribeFromIssue => 6,
            Purpose::Click => 7,
            Purpose::Open => 8,
            Purpose::Reader => 9,
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
        let (id, expires) = self.verify_with_field(purpose, token)?;
        if now > expires {
            return Err(TokenError::Expired);
        }
        Ok(id)
    }

    /// Checks `token`'s signature and purpose; returns the subscriber id and the 8-byte field
    /// after it (the expiry, or the issue of an issue's unsubscribe link).
    fn verify_with_field(&self, purpose: Purpose, token: &str) -> Result<(i64, i64), TokenError> {
        let (signed_for, id, field) = self.open(token)?;
        if signed_for != purpose.byte() {
            return Err(TokenError::WrongPurpose);
        }
        Ok((id, field))
    }

    /// Decodes `token` and checks its signature: the purpose byte, the subscriber id and the
    /// 8-byte field after it.
    fn open(&self, token: &str) -> Result<(u8, i64, i64), TokenError> {
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
        let id = i64::from_be_bytes(payload[1..9].try_into().expect("8 bytes"));
        let field = i64::from_be_bytes(payload[9..17].try_into().expect("8 bytes"));
        Ok((payload[0], id, field))
    }
}

/// Who an unsubscribe link is for, and the issue it came in (none for links signed before
/// issues were named, and for the welcome mail's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsubscribeToken {
    pub subscriber_id: i64,
    pub issue_id: Option<i64>,
}

impl TokenKey {
    /// The unsubscribe token for `subscriber_id`, naming `issue_id` when the link travels in
    /// an issue's copy. Never expires.
    pub fn sign_unsubscribe(&self, subscriber_id: i64, issue_id: Option<i64>) -> Token {
        match issue_id {
            None => self.sign(Purpose::Unsubscribe, subscriber_id, None),
            Some(issue) => self.sign(Purpose::UnsubscribeFromIssue, subscriber_id, Some(issue)),
        }
    }

    /// Checks an unsubscribe token of either kind (with or without its issue).
    pub fn verify_unsubscribe(&self, token: &str) -> Result<UnsubscribeToken, TokenError> {
        let (signed_for, subscriber_id, field) = self.open(token)?;
        match signed_for {
            b if b == Purpose::Unsubscribe.byte() => Ok(UnsubscribeToken {
                subscriber_id,
                issue_id: None,
            }),
            // The issue id sits where other tokens carry their expiry.
            b if b == Purpose::UnsubscribeFromIssue.byte() => Ok(UnsubscribeToken {
                subscriber_id,
                issue_id: Some(field),
            }),
            _ => Err(TokenError::WrongPurpose),
        }
    }
}

/// Length of a click or open token's tag: 80 bits.
const HIT_TAG_LEN: usize = 10;

/// The copy a click token was made for: its issue and subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickToken {
    pub issue_id: i64,
    pub subscriber_id: i64,
}

/// The copy an open token was made for, and when that copy was made (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenToken {
    pub issue_id: i64,
    pub subscriber_id: i64,
    pub sent_at: i64,
}

impl TokenKey {
    fn hit_tag(&self, purpose: Purpose, ids: &[u8], extra: &[u8]) -> [u8; HIT_TAG_LEN] {
        let mut mac = self.0.clone();
        mac.update(DOMAIN);
        mac.update(&[purpose.byte()]);
        mac.update(&(ids.len() as u8).to_be_bytes());
        mac.update(ids);
        mac.update(extra);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; HIT_TAG_LEN];
        tag.copy_from_slice(&full[..HIT_TAG_LEN]);
        tag
    }

    fn sign_hit(&self, purpose: Purpose, numbers: &[i64], extra: &[u8]) -> String {
        let mut bytes = Vec::with_capacity(3 * 10 + HIT_TAG_LEN);
        for n in numbers {
            put_varint(&mut bytes, (*n).max(0) as u64);
        }
        let tag = self.hit_tag(purpose, &bytes, extra);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The `N` numbers a click or open token carries, once its tag checks out.
    fn verify_hit<const N: usize>(
        &self,
        purpose: Purpose,
        token: &str,
        extra: &[u8],
    ) -> Result<[i64; N], TokenError> {
        let bytes = decode_hit(token)?;
        let (ids, tag) = bytes.split_at(bytes.len() - HIT_TAG_LEN);
        if !bool::from(self.hit_tag(purpose, ids, extra).ct_eq(tag)) {
            return Err(TokenError::BadSignature);
        }
        let mut out = [0i64; N];
        let mut rest = ids;
        for slot in &mut out {
            let (n, after) = take_varint(rest).ok_or(TokenError::Malformed)?;
            *slot = i64::try_from(n).map_err(|_| TokenError::Malformed)?;
            rest = after;
        }
        if !rest.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(out)
    }

    /// The token of one tracked link (`link`, its id within the issue) in one copy.
    pub fn sign_click(&self, click: ClickToken, link: &str) -> String {
        self.sign_hit(
            Purpose::Click,
            &[click.issue_id, click.subscriber_id],
            link.as_bytes(),
        )
    }

    /// Checks a click token for link `link` and returns the copy it was made for.
    pub fn verify_click(&self, link: &str, token: &str) -> Result<ClickToken, TokenError> {
        let [issue_id, subscriber_id] = self.verify_hit(Purpose::Click, token, link.as_bytes())?;
        Ok(ClickToken {
            issue_id,
            subscriber_id,
        })
    }

    /// The token of one copy's open image.
    pub fn sign_open(&self, open: OpenToken) -> String {
        self.sign_hit(
            Purpose::Open,
            &[open.issue_id, open.subscriber_id, open.sent_at],
            b"",
        )
    }

    /// Checks an open token and returns the copy it was made for.
    pub fn verify_open(&self, token: &str) -> Result<OpenToken, TokenError> {
        let [issue_id, subscriber_id, sent_at] = self.verify_hit(Purpose::Open, token, b"")?;
        Ok(OpenToken {
            issue_id,
            subscriber_id,
            sent_at,
        })
    }

    /// The keyed hash that stands for one subscriber among one issue's readers: the same
    /// for every hit of theirs on that issue, different for every issue, and impossible to
    /// join back to a subscriber without the secret key.
    pub fn reader_hash(&self, issue_id: i64, subscriber_id: i64) -> [u8; 16] {
        let mut mac = self.0.clone();
        mac.update(DOMAIN);
        mac.update(&[Purpose::Reader.byte()]);
        mac.update(&issue_id.to_be_bytes());
        mac.update(&subscriber_id.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }
}

/// The issue id a click or open token claims, without checking its signature: only for
/// choosing where a link that does not verify leads (always a page of herald's own).
pub fn claimed_issue(token: &str) -> Option<i64> {
    let bytes = decode_hit(token).ok()?;
    let (issue, _) = take_varint(&bytes[..bytes.len() - HIT_TAG_LEN])?;
    i64::try_from(issue).ok()
}

fn decode_hit(token: &str) -> Result<Vec<u8>, TokenError> {
    if token.len() > 64 {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() < 2 + HIT_TAG_LEN {
        return Err(TokenError::Malformed);
    }
    Ok(bytes)
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
    fn an_unsubscribe_token_names_its_issue_and_old_ones_stay_valid() {
        let k = key("0123456789abcdef0123456789abcdef");
        let with_issue = k.sign_unsubscribe(42, Some(7));
        assert_eq!(
            k.verify_unsubscribe(with_issue.as_str()),
            Ok(UnsubscribeToken {
                subscriber_id: 42,
                issue_id: Some(7)
            })
        );
        let old = k.sign(Purpose::Unsubscribe, 42, None);
        assert_eq!(k.sign_unsubscribe(42, None), old);
        assert_eq!(
            k.verify_unsubscribe(old.as_str()),
            Ok(UnsubscribeToken {
                subscriber_id: 42,
                issue_id: None
            })
        );
        // A confirmation token is no unsubscribe token.
        let confirm = k.sign(Purpose::Confirm, 42, None);
        assert_eq!(
            k.verify_unsubscribe(confirm.as_str()),
            Err(TokenError::WrongPurpose)
        );
        // Another issue under the same tag.
        let mut raw = URL_SAFE_NO_PAD.decode(with_issue.as_str()).unwrap();
        raw[16] ^= 1;
        assert_eq!(
            k.verify_unsubscribe(&URL_SAFE_NO_PAD.encode(raw)),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_click_token_is_short_and_good_for_one_link_of_one_copy() {
        let k = key("0123456789abcdef0123456789abcdef");
        let copy = ClickToken {
            issue_id: 12,
            subscriber_id: 34_567,
        };
        let t = k.sign_click(copy, "abcdefgh");
        assert!(t.len() <= 24, "{t}");
        assert_eq!(k.verify_click("abcdefgh", &t), Ok(copy));
        assert_eq!(
            k.verify_click("abcdefgx", &t),
            Err(TokenError::BadSignature)
        );
        assert_eq!(claimed_issue(&t), Some(12));
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[2] ^= 1;
        assert!(k
            .verify_click("abcdefgh", &URL_SAFE_NO_PAD.encode(raw))
            .is_err());
        // An open token of the same copy is no click token.
        let open = k.sign_open(OpenToken {
            issue_id: 12,
            subscriber_id: 34_567,
            sent_at: 1_800_000_000,
        });
        assert!(k.verify_click("abcdefgh", &open).is_err());
        assert_eq!(k.verify_open(&open).unwrap().sent_at, 1_800_000_000);
        for junk in ["", "abc", "!!!", &"a".repeat(80)] {
            assert!(k.verify_click("abcdefgh", junk).is_err());
            assert!(k.verify_open(junk).is_err());
        }
    }

    #[test]
    fn a_reader_hash_differs_per_issue_and_per_key() {
        let k = key("0123456789abcdef0123456789abcdef");
        assert_eq!(k.reader_hash(1, 2), k.reader_hash(1, 2));
        assert_ne!(k.reader_hash(1, 2), k.reader_hash(2, 2));
        assert_ne!(
            k.reader_hash(1, 2),
            key("another-key-another-key").reader_hash(1, 2)
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
