//! Amazon SNS message verification, for SES notifications delivered over HTTPS.
//!
//! An SNS message is signed by AWS: `Signature` is RSA (SHA1 for `SignatureVersion` 1,
//! SHA256 for 2) over a canonical string of the message's fields, with the key of the
//! certificate at `SigningCertURL`. herald fetches that certificate only from
//! `https://sns.<region>.amazonaws.com/...pem` (`amazonaws.com.cn` in China), over TLS with
//! verified certificates, and keeps the key in a small cache. The topic must be one of
//! `webhooks.ses_topic_arns`. A `SubscriptionConfirmation` that verifies is confirmed by
//! fetching its `SubscribeURL`, which must point at SNS too.
//!
//! The HTTP fetch is a trait ([`SnsHttp`]) so that tests, which cannot reach AWS, give a
//! certificate of their own; the URL rules, the cache and the signature check are the same.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use serde::Deserialize;
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

use super::{fresh, rfc3339, WebhookError};

/// Certificates kept at once. SNS rotates its certificate rarely; regions differ.
const CACHE_SIZE: usize = 16;
/// Largest certificate file accepted.
const MAX_CERT_BYTES: usize = 16 * 1024;

/// An HTTPS GET, as SNS verification needs it (certificates, subscription confirmation).
pub trait SnsHttp: Send + Sync {
    fn get<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>>;
}

/// The real fetch: HTTPS with certificates verified against the web PKI roots, 10 s timeout.
#[derive(Debug, Clone)]
pub struct HttpsFetch {
    client: reqwest::Client,
}

impl HttpsFetch {
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .https_only(true)
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client })
    }
}

impl SnsHttp for HttpsFetch {
    fn get<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>> {
        Box::pin(async move {
            let response = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| e.without_url().to_string())?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status()));
            }
            let bytes = response.bytes().await.map_err(|e| e.to_string())?;
            if bytes.len() > MAX_CERT_BYTES * 4 {
                return Err("response too large".into());
            }
            Ok(bytes.to_vec())
        })
    }
}

/// An SNS message as it is POSTed.
#[derive(Debug, Clone, Deserialize)]
pub struct SnsMessage {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "Token")]
    pub token: Option<String>,
    #[serde(rename = "TopicArn")]
    pub topic_arn: String,
    #[serde(rename = "Subject")]
    pub subject: Option<String>,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    #[serde(rename = "SignatureVersion")]
    pub signature_version: String,
    #[serde(rename = "Signature")]
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
}

impl SnsMessage {
    /// The canonical string SNS signs: `Name\nvalue\n` for each field of this message type,
    /// in a fixed order.
    pub fn string_to_sign(&self) -> String {
        let mut fields: Vec<(&str, &str)> = vec![("Message", &self.message)];
        fields.push(("MessageId", &self.message_id));
        if self.kind == "Notification" {
            if let Some(subject) = &self.subject {
                fields.push(("Subject", subject));
            }
            fields.push(("Timestamp", &self.timestamp));
            fields.push(("TopicArn", &self.topic_arn));
        } else {
            fields.push(("SubscribeURL", self.subscribe_url.as_deref().unwrap_or("")));
            fields.push(("Timestamp", &self.timestamp));
            fields.push(("Token", self.token.as_deref().unwrap_or("")));
            fields.push(("TopicArn", &self.topic_arn));
        }
        fields.push(("Type", &self.kind));
        let mut out = String::new();
        for (name, value) in fields {
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
        out
    }
}

/// Whether `url` is an SNS endpoint: `https://sns.<region>.amazonaws.com[.cn]/...`, default
/// port, no user info.
pub fn is_sns_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let region_ok = |region: &str| {
        !region.is_empty()
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let region = host.strip_prefix("sns.").and_then(|rest| {
        rest.strip_suffix(".amazonaws.com")
            .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
    });
    parsed.scheme() == "https"
        && parsed.port().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && region.is_some_and(region_ok)
}

/// What a verified message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A notification; `message` is its `Message` (for SES, a JSON event).
    Notification { message_id: String, message: String },
    /// A subscription to confirm (already confirmed when this is returned).
    Subscribed { topic_arn: String },
    /// SNS says the endpoint was unsubscribed; nothing to do.
    Unsubscribed,
}

/// Verifies SNS messages for the configured topics.
pub struct SnsVerifier {
    http: Arc<dyn SnsHttp>,
    topics: Vec<String>,
    max_age: u64,
    cache: Mutex<HashMap<String, RsaPublicKey>>,
}

impl std::fmt::Debug for SnsVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsVerifier")
            .field("topics", &self.topics)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl SnsVerifier {
    pub fn new(http: Arc<dyn SnsHttp>, topics: Vec<String>, max_age: u64) -> Self {
        Self {
            http,
            topics,
            max_age,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `body` and, for a subscription, confirms it. `now` is Unix seconds.
    pub async fn verify(&self, body: &[u8], now: i64) -> Result<Verified, WebhookError> {
        let message: SnsMessage = serde_json::from_slice(body)
            .map_err(|e| WebhookError::BadPayload(format!("not an SNS message: {e}")))?;
        if !self.topics.iter().any(|t| t == &message.topic_arn) {
            return Err(WebhookError::Unauthorized(
                "the topic is not one of webhooks.ses_topic_arns".into(),
            ));
        }
        if !is_sns_url(&message.signing_cert_url) || !message.signing_cert_url.ends_with(".pem") {
            return Err(WebhookError::Unauthorized(
                "SigningCertURL is not an SNS certificate URL".into(),
            ));
        }
        let key = self.key(&message.signing_cert_url).await?;
        let signature = STANDARD
            .decode(message.signature.trim())
            .ok()
            .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| WebhookError::Unauthorized("the signature is not base64 RSA".into()))?;
        let text = message.string_to_sign();
        let valid = match message.signature_version.as_str() {
            "1" => VerifyingKey::<sha1::Sha1>::new(key)
                .verify(text.as_bytes(), &signature)
                .is_ok(),
            "2" => VerifyingKey::<sha2::Sha256>::new(key)
                .verify(text.as_bytes(), &signature)
                .is_ok(),
            _ => false,
        };
        if !valid {
            return Err(WebhookError::Unauthorized(
                "the SNS signature does not verify".into(),
            ));
        }
        let at = rfc3339(&message.timestamp)
            .ok_or_else(|| WebhookError::BadPayload("Timestamp is not a time".into()))?;
        if !fresh(at, now, self.max_age) {
            return Err(WebhookError::Replay(
                "the message is older than webhooks.max_age_seconds".into(),
            ));
        }
        match message.kind.as_str() {
            "Notification" => Ok(Verified::Notification {
                message_id: message.message_id,
                message: message.message,
            }),
            "SubscriptionConfirmation" => {
                let url = message
                    .subscribe_url
                    .filter(|u| is_sns_url(u))
                    .ok_or_else(|| {
                        WebhookError::BadPayload("SubscribeURL is not an SNS URL".into())
                    })?;
                self.http
                    .get(&url)
                    .await
                    .map_err(|e| WebhookError::Unavailable(format!("cannot confirm: {e}")))?;
                Ok(Verified::Subscribed {
                    topic_arn: message.topic_arn,
                })
            }
            "UnsubscribeConfirmation" => Ok(Verified::Unsubscribed),
            other => Err(WebhookError::BadPayload(format!(
                "unknown SNS message type {other}"
            ))),
        }
    }

    /// The public key of the certificate at `url`, from the cache or fetched.
    async fn key(&self, url: &str) -> Result<RsaPublicKey, WebhookError> {
        if let Some(key) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(url)
        {
            return Ok(key.clone());
        }
        let pem = self.http.get(url).await.map_err(|e| {
            WebhookError::Unavailable(format!("cannot fetch the SNS certificate: {e}"))
        })?;
        if pem.len() > MAX_CERT_BYTES {
            return Err(WebhookError::Unauthorized(
                "the certificate is too large".into(),
            ));
        }
        let key = public_key(&pem)
            .map_err(|e| WebhookError::Unauthorized(format!("the SNS certificate: {e}")))?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
        cache.insert(url.to_string(), key.clone());
        Ok(key)
    }
}

/// The RSA public key of a PEM certificate.
fn public_key(pem: &[u8]) -> Result<RsaPublicKey, String> {
    let cert = Certificate::from_pem(pem).map_err(|e| e.to_string())?;
    let der = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    RsaPublicKey::from_public_key_der(&der).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_serve_certificates() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        ] {
            assert!(is_sns_url(good), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://s3.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.US-EAST-1.amazonaws.com.evil/x.pem",
            "not a url",
        ] {
            assert!(!is_sns_url(bad), "{bad}");
        }
    }

    #[test]
    fn the_string_to_sign_follows_the_message_type() {
        let m = SnsMessage {
            kind: "Notification".into(),
            message_id: "id".into(),
            token: None,
            topic_arn: "arn".into(),
            subject: None,
            message: "m".into(),
            timestamp: "t".into(),
            signature_version: "1".into(),
            signature: String::new(),
            signing_cert_url: String::new(),
            subscribe_url: None,
        };
        assert_eq!(
            m.string_to_sign(),
            "Message\nm\nMessageId\nid\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
        );
        let s = SnsMessage {
            kind: "SubscriptionConfirmation".into(),
            token: Some("tok".into()),
            subscribe_url: Some("u".into()),
            ..m
        };
        assert_eq!(
            s.string_to_sign(),
            "Message\nm\nMessageId\nid\nSubscribeURL\nu\nTimestamp\nt\nToken\ntok\nTopicArn\narn\nType\nSubscriptionConfirmation\n"
        );
    }
}
