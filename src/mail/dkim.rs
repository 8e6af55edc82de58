//! Loading the DKIM key and building lettre's signing configuration.
//!
//! See the module docs of [`crate::mail`] for the key formats accepted.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;

use super::MailError;

/// The headers herald signs, in this order. lettre's default list leaves out the List-*
/// headers, which receivers want covered for one-click unsubscribe (RFC 8058 §4), and
/// Feedback-ID.
/// `Reply-To` is added only when it is configured.
const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    // Gmail counts a Feedback-ID only when the signature covers it.
    "Feedback-ID",
];

/// Which algorithm a loaded key is for (for the start-up log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    Ed25519,
}

/// Builds the signing configuration: relaxed/relaxed canonicalisation and an explicit
/// header list.
pub(crate) fn config(
    selector: &str,
    domain: &str,
    key_file: &Path,
    with_reply_to: bool,
) -> Result<(DkimConfig, KeyKind), MailError> {
    check_label("smtp.dkim_selector", selector)?;
    check_label("smtp.dkim_domain", domain)?;
    let (key, kind) = load_key(key_file)?;
    let mut headers: Vec<HeaderName> = SIGNED_HEADERS
        .iter()
        .map(|name| HeaderName::new_from_ascii_str(name))
        .collect();
    if with_reply_to {
        headers.push(HeaderName::new_from_ascii_str("Reply-To"));
    }
    let canonicalization = DkimCanonicalization {
        header: DkimCanonicalizationType::Relaxed,
        body: DkimCanonicalizationType::Relaxed,
    };
    let config = DkimConfig::new(
        selector.to_owned(),
        domain.to_ascii_lowercase(),
        key,
        headers,
        canonicalization,
    );
    Ok((config, kind))
}

/// A selector or domain goes verbatim into the `DKIM-Signature` header: letters, digits,
/// `-`, `_` and dots only.
fn check_label(key: &'static str, value: &str) -> Result<(), MailError> {
    let ok = !value.is_empty()
        && !value.starts_with('.')
        && !value.ends_with('.')
        && !value.contains("..")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(MailError::Config {
            key: key.into(),
            message: format!(
                "{value:?} is not a DNS label list (letters, digits, '-', '_', separated by dots)"
            ),
        })
    }
}

fn load_key(path: &Path) -> Result<(DkimSigningKey, KeyKind), MailError> {
    let bad = |message: String| MailError::DkimKey {
        file: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    parse_key(&text).map_err(bad)
}

/// Parses a key in any of the accepted forms into lettre's signing key.
fn parse_key(text: &str) -> Result<(DkimSigningKey, KeyKind), String> {
    let text = text.trim();
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(text)
            .map_err(|e| format!("not a valid PKCS#1 RSA key ({e})"))?;
        return rsa_key(&key);
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(
            "encrypted keys are not supported; store the key unencrypted (mode 0600)".into(),
        );
    }
    if text.contains("-----BEGIN PRIVATE KEY-----") {
        return parse_pkcs8(text);
    }
    if text.contains("-----BEGIN") {
        return Err("expected an RSA or Ed25519 private key in PKCS#1 or PKCS#8 PEM".into());
    }
    // lettre's native Ed25519 form: the base64 of the 32-byte seed.
    match STANDARD.decode(text) {
        Ok(seed) if seed.len() == 32 => {
            let key = DkimSigningKey::new(text, DkimSigningAlgorithm::Ed25519)
                .map_err(|e| format!("not a valid Ed25519 seed ({e})"))?;
            Ok((key, KeyKind::Ed25519))
        }
        _ => Err(
            "expected a PEM private key (RSA PKCS#1/PKCS#8, Ed25519 PKCS#8) or a base64 Ed25519 seed"
                .into(),
        ),
    }
}

/// The shortest RSA key accepted: RFC 8301 requires at least 1024 bits (2048 is advised),
/// and far shorter keys would make lettre's signer fail.
const MIN_RSA_BITS: usize = 1024;

/// An RSA key, checked for size and handed to lettre in the PKCS#1 PEM it reads.
fn rsa_key(key: &rsa::RsaPrivateKey) -> Result<(DkimSigningKey, KeyKind), String> {
    use rsa::pkcs1::{EncodeRsaPrivateKey as _, LineEnding};
    use rsa::traits::PublicKeyParts as _;

    let bits = key.size() * 8;
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "the RSA key has {bits} bits; DKIM needs at least {MIN_RSA_BITS} (2048 advised)"
        ));
    }
    let pkcs1 = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| format!("cannot re-encode the RSA key: {e}"))?;
    let key = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
        .map_err(|e| format!("not a valid RSA key ({e})"))?;
    Ok((key, KeyKind::Rsa))
}

/// A PKCS#8 key: RSA is re-encoded as PKCS#1, Ed25519 as its base64 seed, the two forms
/// lettre reads.
fn parse_pkcs8(pem: &str) -> Result<(DkimSigningKey, KeyKind), String> {
    // One trait (pkcs8 0.10) serves both the RSA and the Ed25519 key types.
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;

    if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
        return rsa_key(&key);
    }
    match ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        Ok(ed_key) => {
            let seed = STANDARD.encode(ed_key.to_bytes());
            let key = DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519)
                .map_err(|e| format!("not a valid Ed25519 key ({e})"))?;
            Ok((key, KeyKind::Ed25519))
        }
        Err(_) => Err("a PKCS#8 key that is neither RSA nor Ed25519, or is damaged".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dkim");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap()
    }

    #[test]
    fn reads_rsa_pkcs1_rsa_pkcs8_and_ed25519_pkcs8() {
        assert_eq!(
            parse_key(&fixture("rsa2048-pkcs1.pem")).unwrap().1,
            KeyKind::Rsa
        );
        assert_eq!(parse_key(&fixture("rsa2048.pem")).unwrap().1, KeyKind::Rsa);
        assert_eq!(
            parse_key(&fixture("ed25519.pem")).unwrap().1,
            KeyKind::Ed25519
        );
    }

    #[test]
    fn rejects_an_rsa_key_too_short_for_dkim() {
        use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
        let small = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 512).unwrap();
        let pem = small.to_pkcs8_pem(LineEnding::LF).unwrap();
        let Err(err) = parse_key(&pem) else {
            panic!("a 512-bit key was accepted");
        };
        assert!(err.contains("512 bits"), "{err}");
    }

    #[test]
    fn reads_a_base64_ed25519_seed() {
        let seed = STANDARD.encode([7u8; 32]);
        assert_eq!(parse_key(&seed).unwrap().1, KeyKind::Ed25519);
    }

    #[test]
    fn rejects_garbage_encrypted_and_public_keys() {
        for bad in [
            "",
            "hello",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(parse_key(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn missing_file_names_the_config_key() {
        let err = config(
            "s1",
            "example.org",
            Path::new("/nonexistent/dkim.pem"),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("smtp.dkim_key_file"), "{err}");
        assert!(err.contains("/nonexistent/dkim.pem"), "{err}");
    }

    #[test]
    fn selector_with_a_semicolon_is_rejected() {
        let err = config("s1; x=y", "example.org", Path::new("unused"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("smtp.dkim_selector"), "{err}");
    }
}
