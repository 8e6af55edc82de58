//! The sending services' bounce and complaint webhooks over real HTTP: each service's
//! documented payloads for a bounce and a complaint, signed right (applied), signed wrong
//! (401), and replayed (401); on SQLite and on PostgreSQL.
//!
//! SNS signing certificates come from AWS in production; here [`LocalSns`] serves a
//! certificate generated for these tests (`tests/fixtures/webhooks/`), behind the same URL
//! rules and cache as the real fetch.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use herald::bounces::webhooks::sns::SnsHttp;
use herald::domain::{DeliveryToken, IssueSlug, SubscriberStatus, TokenKey};
use hmac::Mac;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::app::{add_subscribers, address, addresses, eventually, SLUG};
use support::postgres::Backend;
use support::server::{Relay, TestServer};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:herald-bounces";
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem";
const MAILGUN_KEY: &str = "mailgun-signing-key-0123456789";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/webhooks")
            .join(name),
    )
    .unwrap()
}

/// Serves the test certificate for SNS URLs and records every fetch.
#[derive(Default)]
struct LocalSns {
    fetched: Mutex<Vec<String>>,
}

impl SnsHttp for LocalSns {
    fn get<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>> {
        Box::pin(async move {
            self.fetched.lock().unwrap().push(url.to_string());
            if url == CERT_URL {
                Ok(fixture("sns-signing.pem").into_bytes())
            } else {
                Ok(b"<ConfirmSubscriptionResponse/>".to_vec())
            }
        })
    }
}

struct Setup {
    server: TestServer,
    sns: Arc<LocalSns>,
    readers: Vec<String>,
}

impl Setup {
    /// `herald serve` with every webhook configured, three subscribers and the issue sent.
    async fn start(backend: Backend) -> Setup {
        let sns = Arc::new(LocalSns::default());
        let fetcher = sns.clone();
        let server = TestServer::start_with_on(
            backend,
            Relay::Outbox,
            |s| {
                s.bounces.return_path = Some("bounces@news.example.org".into());
                s.webhooks.ses_topic_arns = vec![TOPIC.into()];
                s.webhooks.postmark_username = Some("postmark".into());
                s.webhooks.postmark_password = Some("postmark-password-0123".to_string().into());
                s.webhooks.mailgun_signing_key = Some(MAILGUN_KEY.to_string().into());
                s.webhooks.sendgrid_public_key = Some(fixture("sendgrid.pub.b64"));
            },
            move |app| app.sns_http = fetcher,
        )
        .await;
        let readers = addresses("hook", 3);
        add_subscribers(&server.app.store, &readers).await;
        server
            .app
            .send_now(&IssueSlug::parse(SLUG).unwrap(), "test")
            .await
            .unwrap();
        let store = server.app.store.clone();
        assert!(
            eventually(Duration::from_secs(60), || {
                let store = store.clone();
                async move {
                    store
                        .find_issue(SLUG)
                        .await
                        .unwrap()
                        .is_some_and(|i| i.status == "sent")
                }
            })
            .await
        );
        Setup {
            server,
            sns,
            readers,
        }
    }

    async fn ids(&self, email: &str) -> (i64, i64) {
        let issue = self
            .server
            .app
            .store
            .find_issue(SLUG)
            .await
            .unwrap()
            .unwrap();
        let sub = self
            .server
            .app
            .store
            .find_subscriber_by_email(&address(email))
            .await
            .unwrap()
            .unwrap();
        (issue.id, sub.id)
    }

    /// Our Message-ID of the copy for `email`.
    async fn message_id(&self, email: &str) -> String {
        let (issue, sub) = self.ids(email).await;
        self.server
            .app
            .store
            .find_delivery(issue, sub)
            .await
            .unwrap()
            .unwrap()
            .message_id
            .unwrap()
    }

    /// The return-path token of the copy for `email`.
    async fn token(&self, email: &str) -> String {
        let (issue_id, subscriber_id) = self.ids(email).await;
        TokenKey::new(&"dispatch-test-secret-0123456789".to_string().into()).sign_delivery(
            DeliveryToken {
                issue_id,
                subscriber_id,
            },
        )
    }

    async fn status(&self, email: &str) -> SubscriberStatus {
        self.server
            .app
            .store
            .find_subscriber_by_email(&address(email))
            .await
            .unwrap()
            .unwrap()
            .status
    }

    async fn post(&self, path: &str, body: String, headers: &[(&str, String)]) -> StatusCode {
        let mut request = reqwest::Client::new()
            .post(self.server.url(path))
            .header("Content-Type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap().status()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

// ---- Amazon SES through SNS -------------------------------------------------------------

/// An SNS message of `kind` carrying `message`, signed with the test key (SignatureVersion 1,
/// SHA1withRSA over the canonical string AWS documents).
fn sns(kind: &str, message: &str, timestamp: i64, subscribe_url: Option<&str>) -> Value {
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let timestamp = rfc3339(timestamp);
    let message_id = format!("msg-{}", rand::random::<u64>());
    let mut fields = vec![
        ("Message", message.to_string()),
        ("MessageId", message_id.clone()),
    ];
    if let Some(url) = subscribe_url {
        fields.push(("SubscribeURL", url.to_string()));
        fields.push(("Timestamp", timestamp.clone()));
        fields.push(("Token", "confirm-token".into()));
    } else {
        fields.push(("Timestamp", timestamp.clone()));
    }
    fields.push(("TopicArn", TOPIC.into()));
    fields.push(("Type", kind.into()));
    let canonical: String = fields.iter().map(|(k, v)| format!("{k}\n{v}\n")).collect();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&fixture("sns-signing.key")).unwrap();
    let signature = SigningKey::<sha1::Sha1>::new(key).sign(canonical.as_bytes());
    let mut body = json!({
        "Type": kind,
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": "1",
        "Signature": STANDARD.encode(signature.to_bytes()),
        "SigningCertURL": CERT_URL,
    });
    if let Some(url) = subscribe_url {
        body["SubscribeURL"] = json!(url);
        body["Token"] = json!("confirm-token");
    }
    body
}

fn ses_mail(source: &str, message_id: &str, to: &str) -> Value {
    json!({
        "timestamp": rfc3339(now() - 60),
        "messageId": "0100018c-0000-0000-0000-000000000000-000000",
        "source": source,
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/news.example.org",
        "sendingAccountId": "123456789012",
        "destination": [to],
        "headersTruncated": false,
        "headers": [
            {"name": "From", "value": "Herald Weekly <newsletter@example.org>"},
            {"name": "To", "value": to},
            {"name": "Message-ID", "value": message_id}
        ],
        "commonHeaders": {"from": ["newsletter@example.org"], "to": [to], "messageId": message_id}
    })
}

on_both_backends! {
    async fn ses_through_sns_is_verified_confirmed_and_applied(backend: Backend) {
        let s = Setup::start(backend).await;
        let post = |body: Value| s.post("/webhooks/ses", body.to_string(), &[]);

        // The subscription handshake: verified, then confirmed by fetching SubscribeURL.
        let subscribe = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=confirm-token";
        let status = post(sns(
            "SubscriptionConfirmation",
            "You have chosen to subscribe",
            now(),
            Some(subscribe),
        ))
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(s.sns.fetched.lock().unwrap().iter().any(|u| u == subscribe));

        // A permanent bounce, found by the envelope sender (our return-path token).
        let reader = &s.readers[0];
        let source = format!("bounces+{}@news.example.org", s.token(reader).await);
        let bounce = json!({
            "notificationType": "Bounce",
            "bounce": {
                "feedbackId": "0100018c-feed-0000",
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [{
                    "emailAddress": reader,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                }],
                "timestamp": rfc3339(now()),
                "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com"
            },
            "mail": ses_mail(&source, "<none-of-ours@example.org>", reader)
        });
        let signed = sns("Notification", &bounce.to_string(), now(), None);

        // Tampered: the signature no longer matches.
        let mut tampered = signed.clone();
        tampered["Message"] = json!(bounce.to_string().replace("Permanent", "Transient"));
        assert_eq!(post(tampered).await, StatusCode::UNAUTHORIZED);
        // A certificate from anywhere but SNS is never fetched.
        let mut elsewhere = signed.clone();
        elsewhere["SigningCertURL"] = json!("https://attacker.example/SimpleNotificationService.pem");
        assert_eq!(post(elsewhere).await, StatusCode::UNAUTHORIZED);
        assert!(s
            .sns
            .fetched
            .lock()
            .unwrap()
            .iter()
            .all(|u| !u.contains("attacker")));
        // A topic we did not subscribe to.
        let mut other_topic = signed.clone();
        other_topic["TopicArn"] = json!("arn:aws:sns:us-east-1:999999999999:other");
        assert_eq!(post(other_topic).await, StatusCode::UNAUTHORIZED);
        assert_eq!(s.status(reader).await, SubscriberStatus::Active);

        assert_eq!(post(signed.clone()).await, StatusCode::OK);
        assert_eq!(s.status(reader).await, SubscriberStatus::Bounced);
        // SNS retries deliver the same message: it counts once.
        assert_eq!(post(signed).await, StatusCode::OK);
        let (_, id) = s.ids(reader).await;
        assert_eq!(
            s.server
                .app
                .store
                .subscriber_bounces(id, 10)
                .await
                .unwrap()
                .len(),
            1
        );

        // A replay of an old, validly signed message.
        let old = sns("Notification", &bounce.to_string(), now() - 3600, None);
        assert_eq!(post(old).await, StatusCode::UNAUTHORIZED);

        // A complaint, found by our Message-ID.
        let complainer = &s.readers[1];
        let complaint = json!({
            "notificationType": "Complaint",
            "complaint": {
                "feedbackId": "0100018c-feed-0001",
                "complainedRecipients": [{"emailAddress": complainer}],
                "timestamp": rfc3339(now()),
                "userAgent": "ExampleFBL/1.0",
                "complaintFeedbackType": "abuse"
            },
            "mail": ses_mail("newsletter@example.org", &s.message_id(complainer).await, complainer)
        });
        assert_eq!(
            post(sns("Notification", &complaint.to_string(), now(), None)).await,
            StatusCode::OK
        );
        assert_eq!(s.status(complainer).await, SubscriberStatus::Complained);

        // The certificate was fetched once and kept.
        let fetches = s
            .sns
            .fetched
            .lock()
            .unwrap()
            .iter()
            .filter(|u| *u == CERT_URL)
            .count();
        assert_eq!(fetches, 1);
    }
}

// ---- Postmark ---------------------------------------------------------------------------

on_both_backends! {
    async fn postmark_needs_its_basic_auth_and_a_recent_event(backend: Backend) {
        let s = Setup::start(backend).await;
        let reader = &s.readers[0];
        let auth = format!(
            "Basic {}",
            STANDARD.encode("postmark:postmark-password-0123")
        );
        let bounce = |bounced_at: i64, token: &str| {
            json!({
                "RecordType": "Bounce",
                "MessageStream": "outbound",
                "ID": 4323372036854775807u64,
                "Type": "HardBounce",
                "TypeCode": 1,
                "Name": "Hard bounce",
                "Tag": "",
                "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
                "Metadata": {"herald": token},
                "ServerID": 23,
                "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
                "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
                "Email": reader,
                "From": "newsletter@example.org",
                "BouncedAt": rfc3339(bounced_at),
                "DumpAvailable": true,
                "Inactive": true,
                "CanActivate": true,
                "Subject": "Herald Weekly"
            })
            .to_string()
        };
        let token = s.token(reader).await;
        let wrong = format!("Basic {}", STANDARD.encode("postmark:wrong"));
        assert_eq!(
            s.post(
                "/webhooks/postmark",
                bounce(now(), &token),
                &[("Authorization", wrong)]
            )
            .await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            s.post("/webhooks/postmark", bounce(now(), &token), &[])
                .await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            s.post(
                "/webhooks/postmark",
                bounce(now() - 10 * 24 * 3600, &token),
                &[("Authorization", auth.clone())]
            )
            .await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(s.status(reader).await, SubscriberStatus::Active);
        assert_eq!(
            s.post(
                "/webhooks/postmark",
                bounce(now(), &token),
                &[("Authorization", auth.clone())]
            )
            .await,
            StatusCode::OK
        );
        assert_eq!(s.status(reader).await, SubscriberStatus::Bounced);

        let complainer = &s.readers[1];
        let complaint = json!({
            "RecordType": "SpamComplaint",
            "MessageStream": "outbound",
            "ID": 42,
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "Name": "Spam complaint",
            "MessageID": "00000000-0000-0000-0000-000000000000",
            "Metadata": {"herald": s.token(complainer).await},
            "Description": "The subscriber explicitly marked this message as spam.",
            "Details": "",
            "Email": complainer,
            "From": "newsletter@example.org",
            "BouncedAt": rfc3339(now()),
            "Subject": "Herald Weekly"
        });
        assert_eq!(
            s.post(
                "/webhooks/postmark",
                complaint.to_string(),
                &[("Authorization", auth)]
            )
            .await,
            StatusCode::OK
        );
        assert_eq!(s.status(complainer).await, SubscriberStatus::Complained);
    }
}

// ---- Mailgun ----------------------------------------------------------------------------

fn mailgun_signature(timestamp: i64, token: &str) -> Value {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(MAILGUN_KEY.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({"timestamp": timestamp.to_string(), "token": token, "signature": hex})
}

on_both_backends! {
    async fn mailgun_needs_its_hmac_and_takes_each_token_once(backend: Backend) {
        let s = Setup::start(backend).await;
        let reader = &s.readers[0];
        let message_id = s.message_id(reader).await;
        let event = json!({
            "event": "failed",
            "id": "G9Bn5sl1TC6nu79C8C0bwg",
            "timestamp": now() as f64,
            "log-level": "error",
            "severity": "permanent",
            "reason": "bounce",
            "recipient": reader,
            "message": {"headers": {"message-id": message_id.trim_matches(['<', '>']), "from": "newsletter@example.org", "to": reader}},
            "delivery-status": {
                "attempt-no": 1,
                "code": 550,
                "enhanced-code": "5.1.1",
                "message": "5.1.1 The email account that you tried to reach does not exist.",
                "description": ""
            }
        });
        let body = |signature: Value| json!({"signature": signature, "event-data": event}).to_string();

        let mut forged = mailgun_signature(now(), "token-forged-0001");
        forged["signature"] = json!("0".repeat(64));
        assert_eq!(
            s.post("/webhooks/mailgun", body(forged), &[]).await,
            StatusCode::UNAUTHORIZED
        );
        let stale = mailgun_signature(now() - 3600, "token-stale-0001");
        assert_eq!(
            s.post("/webhooks/mailgun", body(stale), &[]).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(s.status(reader).await, SubscriberStatus::Active);

        let good = mailgun_signature(now(), "token-good-0001");
        assert_eq!(
            s.post("/webhooks/mailgun", body(good.clone()), &[]).await,
            StatusCode::OK
        );
        assert_eq!(s.status(reader).await, SubscriberStatus::Bounced);
        // The same signed request again is a replay.
        assert_eq!(
            s.post("/webhooks/mailgun", body(good), &[]).await,
            StatusCode::UNAUTHORIZED
        );

        let complainer = &s.readers[1];
        let complaint = json!({
            "signature": mailgun_signature(now(), "token-complaint-0001"),
            "event-data": {
                "event": "complained",
                "id": "ncV2XwymRUKbPek_MIM-Gw",
                "timestamp": now() as f64,
                "recipient": complainer,
                "message": {"headers": {"message-id": s.message_id(complainer).await.trim_matches(['<', '>'])}}
            }
        });
        assert_eq!(
            s.post("/webhooks/mailgun", complaint.to_string(), &[])
                .await,
            StatusCode::OK
        );
        assert_eq!(s.status(complainer).await, SubscriberStatus::Complained);
    }
}

// ---- SendGrid ---------------------------------------------------------------------------

fn sendgrid_headers(body: &str, timestamp: i64) -> Vec<(&'static str, String)> {
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::DecodePrivateKey;
    let pem = fixture("sendgrid.key");
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key = p256::ecdsa::SigningKey::from_pkcs8_der(&STANDARD.decode(der).unwrap()).unwrap();
    let signed = format!("{timestamp}{body}");
    let signature: p256::ecdsa::DerSignature = key.sign(signed.as_bytes());
    vec![
        (
            "X-Twilio-Email-Event-Webhook-Signature",
            STANDARD.encode(signature.as_bytes()),
        ),
        (
            "X-Twilio-Email-Event-Webhook-Timestamp",
            timestamp.to_string(),
        ),
    ]
}

on_both_backends! {
    async fn sendgrid_needs_its_signature_over_timestamp_and_body(backend: Backend) {
        let s = Setup::start(backend).await;
        let (reader, complainer) = (&s.readers[0], &s.readers[1]);
        let events = json!([
            {
                "email": reader,
                "timestamp": now(),
                "smtp-id": s.message_id(reader).await,
                "event": "bounce",
                "category": ["newsletter"],
                "sg_event_id": "sg-event-0001",
                "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
                "reason": "500 unknown recipient",
                "status": "5.0.0",
                "type": "bounce",
                "bounce_classification": "Invalid Address"
            },
            {
                "email": complainer,
                "timestamp": now(),
                "smtp-id": s.message_id(complainer).await,
                "event": "spamreport",
                "sg_event_id": "sg-event-0002",
                "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.1"
            }
        ])
        .to_string();

        let signed = sendgrid_headers(&events, now());
        let tampered = events.replace("bounce_classification", "bounce_classificatioN");
        assert_eq!(
            s.post("/webhooks/sendgrid", tampered, &signed).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            s.post(
                "/webhooks/sendgrid",
                events.clone(),
                &sendgrid_headers(&events, now() - 3600)
            )
            .await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            s.post("/webhooks/sendgrid", events.clone(), &[]).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(s.status(reader).await, SubscriberStatus::Active);

        assert_eq!(
            s.post("/webhooks/sendgrid", events, &signed).await,
            StatusCode::OK
        );
        assert_eq!(s.status(reader).await, SubscriberStatus::Bounced);
        assert_eq!(s.status(complainer).await, SubscriberStatus::Complained);
    }
}

on_both_backends! {
    async fn an_unconfigured_webhook_is_not_found(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        for path in [
            "/webhooks/ses",
            "/webhooks/postmark",
            "/webhooks/mailgun",
            "/webhooks/sendgrid",
        ] {
            let status = reqwest::Client::new()
                .post(server.url(path))
                .body("{}")
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
    }
}
