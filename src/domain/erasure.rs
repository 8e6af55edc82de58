//! [`ErasureKey`]: the keyed hash that is all herald keeps of an erased address.
//!
//! The hash is HMAC-SHA256 under a key derived from the instance secret
//! (`HMAC(secret, "herald-erasure-v1")`, so it never collides with token tags), taken over
//! the address folded to lower case ([`EmailAddress::folded`]). Without the secret the hash
//! cannot be tested against a list of guessed addresses. Changing the secret forgets every
//! erasure.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::EmailAddress;

const DOMAIN: &[u8] = b"herald-erasure-v1";

/// A 32-byte keyed hash of an erased address.
pub type AddressHash = [u8; 32];

/// Hashes addresses for the erasure list. Cheap to clone.
#[derive(Clone)]
pub struct ErasureKey(Hmac<Sha256>);

impl std::fmt::Debug for ErasureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ErasureKey([redacted])")
    }
}

impl ErasureKey {
    /// Derives the erasure key from the instance secret (`Settings::secret_key`).
    pub fn new(secret: &SecretString) -> Self {
        let mut outer = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        outer.update(DOMAIN);
        let derived = outer.finalize().into_bytes();
        Self(Hmac::<Sha256>::new_from_slice(&derived).expect("HMAC accepts keys of any length"))
    }

    /// The hash of `address`, the same for every spelling that differs only in case.
    pub fn hash(&self, address: &EmailAddress) -> AddressHash {
        let mut mac = self.0.clone();
        mac.update(address.folded().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> ErasureKey {
        ErasureKey::new(&SecretString::from(secret.to_string()))
    }

    #[test]
    fn hash_ignores_case_and_depends_on_the_secret() {
        let upper = EmailAddress::parse("Jane.Doe@Example.org").unwrap();
        let lower = EmailAddress::parse("jane.doe@example.org").unwrap();
        let k = key("0123456789abcdef0123456789abcdef");
        assert_eq!(k.hash(&upper), k.hash(&lower));
        assert_ne!(
            k.hash(&lower),
            key("another-secret-of-enough-length").hash(&lower)
        );
    }
}
