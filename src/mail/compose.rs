//! [`Composer`]: one recipient's copy of an issue as a finished RFC 5322 message.

use std::fmt;
use std::sync::{Arc, OnceLock};

use lettre::address::{Address, Envelope};
use lettre::message::dkim::DkimConfig;
use lettre::message::header::{ContentTransferEncoding, ContentType, MIME_VERSION_1_0};
use lettre::message::{Body, Mailbox};
use lettre::Message;
use rand::Rng as _;

use super::body::EncodedBody;
use super::dkim;
use super::headers::{
    list_id_phrase, FeedbackId, ListId, ListUnsubscribe, ListUnsubscribePost, MailgunVariables,
    PostmarkMetadata, SendgridSmtpApi,
};
use super::signing::SigningPool;
use super::MailError;
use crate::config::Settings;
use crate::domain::{DeliveryToken, EmailAddress, Purpose, ReturnPath, SubscriberName, TokenKey};
use crate::links::Links;
use crate::render::notice::CONFIRM_DAYS;
use crate::render::{
    Escape, NoticeKind, Recipient, RenderedIssue, RenderedNotice, Split, TrackingStamp,
};

/// The subscriber id that test copies and previews carry. No stored subscriber has it
/// (SQLite ids start at 1), so their unsubscribe links verify but unsubscribe nobody.
pub const TEST_SUBSCRIBER_ID: i64 = 0;

/// What a message is, for routing: an issue (or a test copy of one), or a sign-up notice
/// (confirmation or welcome mail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    Issue,
    Notice,
}

impl MailKind {
    /// `issue` or `notice`, as `smtp.routes[].kind` names them.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "issue" => Some(Self::Issue),
            "notice" => Some(Self::Notice),
            _ => None,
        }
    }
}

/// Who one copy is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecipient {
    /// The subscriber's row id; the unsubscribe token is signed for it.
    pub subscriber_id: i64,
    /// Where the copy goes (the To header and SMTP `RCPT TO`).
    pub email: EmailAddress,
    /// Shown in the To header when present.
    pub name: Option<SubscriberName>,
}

impl MailRecipient {
    /// A subscriber as the store holds them, parsed again: what the store holds was parsed
    /// on the way in, so an error here means a row was changed behind herald's back.
    pub fn from_stored(
        subscriber_id: i64,
        email: &str,
        name: Option<&str>,
    ) -> Result<Self, String> {
        let email =
            EmailAddress::parse(email).map_err(|e| format!("stored address is not valid: {e}"))?;
        let name = match name {
            Some(n) => {
                SubscriberName::parse(n).map_err(|e| format!("stored name is not valid: {e}"))?
            }
            None => None,
        };
        Ok(Self {
            subscriber_id,
            email,
            name,
        })
    }

    /// A recipient outside the list, for `herald send --to ADDR` and `herald preview`: no
    /// name, and [`TEST_SUBSCRIBER_ID`] as the subscriber id.
    pub fn test_copy(email: EmailAddress) -> Self {
        Self {
            subscriber_id: TEST_SUBSCRIBER_ID,
            email,
            name: None,
        }
    }
}

/// Builds messages for one newsletter. Made once from settings; cheap to share by reference
/// (`compose` takes `&self`).
pub struct Composer {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// The whole `List-Id` value: `Name <label.domain>`.
    list_id: String,
    /// `label.domain` of the List-Id, the middle field of Feedback-ID.
    list_label: String,
    /// `bounces.return_path`: the envelope sender, tagged per delivery.
    return_path: Option<ReturnPath>,
    /// Which sending services' webhooks are configured: each copy then carries its
    /// delivery's token in the header that service copies into its events.
    service_args: ServiceArgs,
    /// Right-hand side of our Message-IDs: the From domain, in ASCII.
    message_id_domain: String,
    /// `, <mailto:…?subject=unsubscribe>`, appended to List-Unsubscribe when configured.
    unsubscribe_mailto: Option<String>,
    links: Links,
    key: TokenKey,
    dkim: Option<DkimConfig>,
    /// Where signed copies are composed; started on first use, only when DKIM is on.
    signing: OnceLock<SigningPool>,
}

impl fmt::Debug for Composer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hand-written so the DKIM key can never reach a log line.
        f.debug_struct("Composer")
            .field("list_id", &self.list_id)
            .field("message_id_domain", &self.message_id_domain)
            .field("dkim", &self.dkim.is_some())
            .finish_non_exhaustive()
    }
}

impl Composer {
    /// Parses the mail settings once. Errors name the config key at fault.
    pub fn new(settings: &Settings, key: TokenKey) -> Result<Self, MailError> {
        let newsletter = &settings.newsletter;
        let (from, from_address) = parse_mailbox("newsletter.from", &newsletter.from)?;
        let reply_to = newsletter
            .reply_to
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_mailbox("newsletter.reply_to", s).map(|(mailbox, _)| mailbox))
            .transpose()?;
        let message_id_domain = from_address.domain().to_owned();

        let label = match newsletter.list_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => parse_list_label(id)?,
            _ => derived_list_label(&newsletter.name, &message_id_domain),
        };
        let phrase = list_id_phrase(&newsletter.name);
        let list_id = if phrase.is_empty() {
            format!("<{label}>")
        } else {
            format!("{phrase} <{label}>")
        };
        let return_path = settings
            .bounces
            .return_path
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|raw| {
                ReturnPath::parse(raw).map_err(|e| MailError::Config {
                    key: "bounces.return_path".into(),
                    message: e.to_string(),
                })
            })
            .transpose()?;

        let unsubscribe_mailto = newsletter
            .unsubscribe_mailto
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|raw| {
                let bare = raw.strip_prefix("mailto:").unwrap_or(raw);
                EmailAddress::parse(bare)
                    .map(|address| format!(", <mailto:{address}?subject=unsubscribe>"))
                    .map_err(|e| MailError::Config {
                        key: "newsletter.unsubscribe_mailto".into(),
                        message: e.to_string(),
                    })
            })
            .transpose()?;

        let links = Links::new(&newsletter.base_url).map_err(|e| MailError::Config {
            key: "newsletter.base_url".into(),
            message: format!("not an absolute URL: {e}"),
        })?;

        let smtp = &settings.smtp;
        let dkim = match (&smtp.dkim_selector, &smtp.dkim_domain, &smtp.dkim_key_file) {
            (None, None, None) => None,
            (Some(selector), Some(domain), Some(file)) => {
                let (config, kind) = dkim::config(selector, domain, file, reply_to.is_some())?;
                let domain = domain.to_ascii_lowercase();
                let aligned = message_id_domain == domain
                    || message_id_domain.ends_with(&format!(".{domain}"));
                if !aligned {
                    tracing::warn!(
                        dkim_domain = %domain,
                        from_domain = %message_id_domain,
                        "smtp.dkim_domain is not the From domain or a parent of it: DMARC will not align"
                    );
                }
                tracing::info!(selector = %selector, domain = %domain, algorithm = ?kind, "DKIM signing enabled");
                Some(config)
            }
            _ => {
                return Err(MailError::Config {
                    key: "smtp.dkim_selector".into(),
                    message: "DKIM needs all three of dkim_selector, dkim_domain and dkim_key_file"
                        .into(),
                })
            }
        };

        let webhooks = &settings.webhooks;
        let service_args = ServiceArgs {
            postmark: webhooks.postmark_username.is_some(),
            mailgun: webhooks.mailgun_signing_key.is_some(),
            sendgrid: webhooks.sendgrid_public_key.is_some(),
        };
        Ok(Self {
            from,
            reply_to,
            list_id,
            list_label: label,
            return_path,
            service_args,
            message_id_domain,
            unsubscribe_mailto,
            links,
            key,
            dkim,
            signing: OnceLock::new(),
        })
    }

    /// Whether messages are DKIM-signed.
    pub fn signs_dkim(&self) -> bool {
        self.dkim.is_some()
    }

    /// The `List-Id` header value, e.g. `Herald Weekly <herald-weekly.example.org>`.
    pub fn list_id(&self) -> &str {
        &self.list_id
    }

    /// Prepares `issue` for many recipients: encodes its body once (see
    /// [`EncodedBody`]). Compose each copy from the result with [`Composer::compose_prepared`].
    /// `issue_id` is the issue's row when copies are deliveries of the ledger: each copy's
    /// envelope sender then names its delivery (with `bounces.return_path` set).
    pub fn prepare(&self, issue: &RenderedIssue, issue_id: Option<i64>) -> IssueMail {
        IssueMail {
            slug: issue.slug.as_str().to_string(),
            issue_id,
            subject: one_line(&issue.subject),
            body: EncodedBody::new(&issue.text, &issue.html),
        }
    }

    /// The envelope sender for a copy: `bounces+TOKEN@…` naming the delivery, the bare
    /// return path for mail that is no delivery (tests, notices), or the From address when
    /// no return path is configured.
    fn envelope_sender(&self, delivery: Option<DeliveryToken>) -> Option<String> {
        let rp = self.return_path.as_ref()?;
        Some(match delivery {
            Some(d) if d.subscriber_id != TEST_SUBSCRIBER_ID => {
                rp.with_token(&self.key.sign_delivery(d))
            }
            _ => rp.to_string(),
        })
    }

    /// The return path, if configured.
    pub fn return_path(&self) -> Option<&ReturnPath> {
        self.return_path.as_ref()
    }

    /// Builds `to`'s copy of `issue`: personalised bodies, every header, DKIM when configured.
    /// For many recipients, [`Composer::prepare`] once and use [`Composer::compose_prepared`].
    pub fn compose(
        &self,
        issue: &RenderedIssue,
        to: &MailRecipient,
    ) -> Result<OutgoingMail, MailError> {
        self.compose_prepared(&self.prepare(issue, None), to)
    }

    /// [`Composer::compose_prepared`] for a dispatcher: when copies are DKIM-signed, the copy
    /// is composed on a pool of one thread per core, in the order asked, so signing (about
    /// 1.5 ms for RSA-2048) uses every core and never stalls the connections served by the
    /// async runtime. Unsigned copies cost microseconds and are composed in place.
    pub async fn compose_pooled(
        self: &Arc<Self>,
        issue: &Arc<IssueMail>,
        to: &MailRecipient,
    ) -> Result<OutgoingMail, MailError> {
        if self.dkim.is_none() {
            return self.compose_prepared(issue, to);
        }
        let pool = self.signing.get_or_init(|| {
            let pool = SigningPool::sized_to_machine();
            tracing::debug!(threads = pool.threads(), "DKIM signing pool started");
            pool
        });
        let (composer, issue, to) = (self.clone(), issue.clone(), to.clone());
        pool.run(move || composer.compose_prepared(&issue, &to))
            .await
            .unwrap_or_else(|| Err(MailError::Build("the signing thread failed".into())))
    }

    /// Builds `to`'s copy of a prepared issue: a concatenation, then headers and DKIM.
    pub fn compose_prepared(
        &self,
        issue: &IssueMail,
        to: &MailRecipient,
    ) -> Result<OutgoingMail, MailError> {
        // The link names the issue it came in, so the report can count who left from it.
        let issue_id = issue
            .issue_id
            .filter(|_| to.subscriber_id != TEST_SUBSCRIBER_ID);
        let token = self.key.sign_unsubscribe(to.subscriber_id, issue_id);
        let unsubscribe_url = self.links.unsubscribe(&token);
        let recipient = Recipient {
            email: to.email.as_str(),
            name: to.name.as_ref().map(SubscriberName::as_str),
            unsubscribe_url: &unsubscribe_url,
            // Only a delivery of the ledger counts; tracked links of a test copy lead
            // straight to their URLs.
            tracking: issue_id.map(|issue_id| TrackingStamp {
                key: &self.key,
                issue_id,
                subscriber_id: to.subscriber_id,
                sent_at: chrono::Utc::now().timestamp(),
            }),
        };
        let body = issue.body.personalise(&recipient);
        let content_type = issue.body.content_type();
        let delivery = issue.issue_id.map(|issue_id| DeliveryToken {
            issue_id,
            subscriber_id: to.subscriber_id,
        });
        let feedback_id = format!(
            "{}:{}:{}",
            issue.slug, self.list_label, self.message_id_domain
        );
        let token = delivery
            .filter(|d| d.subscriber_id != TEST_SUBSCRIBER_ID)
            .filter(|_| self.service_args.any())
            .map(|d| self.key.sign_delivery(d));
        self.build(
            &issue.subject,
            body,
            &content_type,
            to,
            &issue.slug,
            Some(&unsubscribe_url),
            Extra {
                envelope_sender: self.envelope_sender(delivery),
                feedback_id: Some(feedback_id),
                service_token: token,
            },
        )
    }

    /// Builds `to`'s notice (the confirmation or welcome mail of a sign-up). The
    /// confirmation mail carries a confirmation link signed for the subscriber that expires
    /// [`CONFIRM_DAYS`] after `now` (Unix seconds), and no List-* headers: the reader is not
    /// on the list yet. The welcome mail comes from the list and carries List-Unsubscribe
    /// (RFC 8058 one-click), like an issue.
    pub fn compose_notice(
        &self,
        notice: &RenderedNotice,
        to: &MailRecipient,
        now: i64,
    ) -> Result<OutgoingMail, MailError> {
        let (link, unsubscribe_url) = match notice.kind {
            NoticeKind::Confirm => {
                let expires = now.saturating_add(CONFIRM_DAYS * 24 * 3600);
                let token = self
                    .key
                    .sign(Purpose::Confirm, to.subscriber_id, Some(expires));
                (self.links.confirm(&token), None)
            }
            NoticeKind::Welcome => {
                let token = self.key.sign(Purpose::Unsubscribe, to.subscriber_id, None);
                let url = self.links.unsubscribe(&token);
                (url.clone(), Some(url))
            }
        };
        let copy = notice.personalise(to.name.as_ref().map(SubscriberName::as_str), &link);
        let body = EncodedBody::new(
            &Split::new(&copy.text, Escape::None),
            &Split::new(&copy.html, Escape::Html),
        );
        let recipient = Recipient {
            email: to.email.as_str(),
            name: to.name.as_ref().map(SubscriberName::as_str),
            unsubscribe_url: unsubscribe_url.as_deref().unwrap_or_default(),
            tracking: None,
        };
        let bytes = body.personalise(&recipient);
        let mut mail = self.build(
            &one_line(&copy.subject),
            bytes,
            &body.content_type(),
            to,
            notice.kind.as_str(),
            unsubscribe_url.as_deref(),
            Extra {
                envelope_sender: self.envelope_sender(None),
                feedback_id: None,
                service_token: None,
            },
        )?;
        mail.kind = MailKind::Notice;
        Ok(mail)
    }

    /// The message around a finished 7-bit body: every header, then DKIM when configured.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        subject: &str,
        body: Vec<u8>,
        content_type: &str,
        to: &MailRecipient,
        id_tag: &str,
        unsubscribe_url: Option<&str>,
        extra: Extra,
    ) -> Result<OutgoingMail, MailError> {
        debug_assert!(
            is_seven_bit(&body),
            "the encoded body is 7-bit with short lines"
        );
        debug_assert!(
            !super::body::has_leading_dot(&body),
            "no line of the encoded body starts with a dot"
        );

        let address: Address = to
            .email
            .as_str()
            .parse()
            .map_err(|e| MailError::Recipient {
                masked: to.email.masked(),
                message: format!("{e}"),
            })?;
        let envelope = match &extra.envelope_sender {
            Some(sender) => {
                let sender: Address = sender.parse().map_err(|e| MailError::Config {
                    key: "bounces.return_path".into(),
                    message: format!("{e}"),
                })?;
                Some(
                    Envelope::new(Some(sender), vec![address.clone()])
                        .map_err(|e| MailError::Build(e.to_string()))?,
                )
            }
            None => None,
        };
        let to_mailbox = Mailbox::new(to.name.as_ref().map(|n| n.as_str().to_owned()), address);

        let message_id = self.new_message_id(id_tag);
        let content_type =
            ContentType::parse(content_type).map_err(|e| MailError::Build(e.to_string()))?;
        let body = Body::dangerous_pre_encoded(body, ContentTransferEncoding::SevenBit);
        let mut builder = Message::builder().from(self.from.clone());
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let mut builder = builder
            .to(to_mailbox)
            .subject(subject.to_owned())
            .date_now()
            .message_id(Some(message_id.clone()))
            .header(MIME_VERSION_1_0)
            .header(content_type);
        if let Some(feedback_id) = extra.feedback_id {
            builder = builder.header(FeedbackId(feedback_id));
        }
        if let Some(token) = &extra.service_token {
            if self.service_args.postmark {
                builder = builder.header(PostmarkMetadata(token.clone()));
            }
            if self.service_args.mailgun {
                builder = builder.header(MailgunVariables(format!("{{\"herald\": \"{token}\"}}")));
            }
            if self.service_args.sendgrid {
                builder = builder.header(SendgridSmtpApi(format!(
                    "{{\"unique_args\": {{\"herald\": \"{token}\"}}}}"
                )));
            }
        }
        if let Some(envelope) = envelope {
            builder = builder.envelope(envelope);
        }
        if let Some(url) = unsubscribe_url {
            let mut list_unsubscribe = format!("<{url}>");
            if let Some(mailto) = &self.unsubscribe_mailto {
                list_unsubscribe.push_str(mailto);
            }
            builder = builder
                .header(ListId(self.list_id.clone()))
                .header(ListUnsubscribe(list_unsubscribe))
                .header(ListUnsubscribePost);
        }
        let mut message = builder
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }

        let envelope = message.envelope();
        let envelope_from = envelope.from().map(Address::to_string).unwrap_or_default();
        let envelope_to = envelope
            .to()
            .first()
            .map(Address::to_string)
            .unwrap_or_default();
        tracing::trace!(
            subscriber_id = to.subscriber_id,
            to = %to.email.masked(),
            message_id = %message_id,
            "composed"
        );
        Ok(OutgoingMail {
            message,
            message_id,
            subscriber_id: to.subscriber_id,
            envelope_from,
            envelope_to,
            kind: MailKind::Issue,
        })
    }

    /// A test copy for an address outside the list (`herald send --to`, the dashboard's and
    /// the API's "send a test copy"): see [`MailRecipient::test_copy`]. Its subject starts
    /// with [`TEST_SUBJECT_PREFIX`], so nobody mistakes it for the issue itself.
    pub fn compose_test(
        &self,
        issue: &RenderedIssue,
        to: &EmailAddress,
    ) -> Result<OutgoingMail, MailError> {
        let mut prepared = self.prepare(issue, None);
        prepared.subject = format!("{TEST_SUBJECT_PREFIX}{}", prepared.subject);
        self.compose_prepared(&prepared, &MailRecipient::test_copy(to.clone()))
    }

    /// `<128 random bits in hex>.<slug>@<our domain>`: unique, and greppable by issue.
    fn new_message_id(&self, slug: &str) -> String {
        let random: u128 = rand::thread_rng().gen();
        // Slugs may hold dots in places a dot-atom may not ("a..b", "a."); dashes are safe.
        let slug = slug.replace('.', "-");
        format!("<{random:032x}.{slug}@{}>", self.message_id_domain)
    }
}

/// What a test copy's subject starts with.
pub const TEST_SUBJECT_PREFIX: &str = "[TEST] ";

/// What [`Composer::build`] adds beyond the headers every mail has.
struct Extra {
    envelope_sender: Option<String>,
    feedback_id: Option<String>,
    /// The delivery's token for the sending services' custom-argument headers.
    service_token: Option<String>,
}

/// The sending services whose webhooks are configured.
#[derive(Debug, Clone, Copy, Default)]
struct ServiceArgs {
    postmark: bool,
    mailgun: bool,
    sendgrid: bool,
}

impl ServiceArgs {
    fn any(self) -> bool {
        self.postmark || self.mailgun || self.sendgrid
    }
}

/// An issue prepared for composing many copies: its subject and its pre-encoded body.
#[derive(Debug, Clone)]
pub struct IssueMail {
    slug: String,
    issue_id: Option<i64>,
    subject: String,
    body: EncodedBody,
}

/// One recipient's finished message. No line of it starts with "." (see `mail::body`), so
/// it goes on the wire as it is.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    message: Message,
    message_id: String,
    subscriber_id: i64,
    envelope_from: String,
    envelope_to: String,
    kind: MailKind,
}

impl OutgoingMail {
    /// The Message-ID header value, angle brackets included (`<…@domain>`), as it appears in
    /// the message; record it in logs and the delivery ledger.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The subscriber this copy is for ([`TEST_SUBSCRIBER_ID`] for test copies).
    pub fn subscriber_id(&self) -> i64 {
        self.subscriber_id
    }

    /// The exact RFC 5322 bytes that are sent (CRLF line endings), DKIM signature included.
    pub fn formatted(&self) -> Vec<u8> {
        self.message.formatted()
    }

    /// SMTP `MAIL FROM`: the return path (tagged with the delivery's token) when
    /// `bounces.return_path` is set, else the From address.
    pub fn envelope_from(&self) -> &str {
        &self.envelope_from
    }

    /// SMTP `RCPT TO`: the recipient's address. Never log it whole; see
    /// [`EmailAddress::masked`].
    pub fn envelope_to(&self) -> &str {
        &self.envelope_to
    }

    /// An issue's copy or a sign-up notice, for routing.
    pub fn kind(&self) -> MailKind {
        self.kind
    }

    /// The lettre envelope, for transports that send pre-formatted bytes.
    pub(crate) fn envelope(&self) -> &Envelope {
        self.message.envelope()
    }
}

/// RFC 5322/2045 `7bit`: ASCII without NUL, CR only before LF and LF only after CR, and no
/// line longer than 998 octets.
fn is_seven_bit(body: &[u8]) -> bool {
    let mut line_len = 0usize;
    for (i, &b) in body.iter().enumerate() {
        match b {
            0 | 0x80..=0xff => return false,
            b'\r' if body.get(i + 1) != Some(&b'\n') => return false,
            b'\n' if i == 0 || body[i - 1] != b'\r' => return false,
            b'\n' => line_len = 0,
            b'\r' => {}
            _ => {
                line_len += 1;
                if line_len > 998 {
                    return false;
                }
            }
        }
    }
    true
}

/// Parses a From or Reply-To setting: `Name <address>` or a bare address.
fn parse_mailbox(key: &'static str, raw: &str) -> Result<(Mailbox, EmailAddress), MailError> {
    let bad = |message: String| MailError::Config {
        key: key.into(),
        message,
    };
    // lettre panics when it writes a display name holding CR or LF; refuse them here.
    if raw.chars().any(char::is_control) {
        return Err(bad("contains a line break or control character".into()));
    }
    let mailbox: Mailbox = raw.trim().parse().map_err(|e| {
        bad(format!(
            "{raw:?} is not `Name <address>` or an address: {e}"
        ))
    })?;
    let address =
        EmailAddress::parse(mailbox.email.as_ref()).map_err(|e| bad(format!("{raw:?}: {e}")))?;
    Ok((mailbox, address))
}

/// `newsletter.list_id`: `label.domain`, optionally in angle brackets.
fn parse_list_label(raw: &str) -> Result<String, MailError> {
    let label = raw
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(raw)
        .to_ascii_lowercase();
    let ok = label.contains('.')
        && label.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        });
    if ok {
        Ok(label)
    } else {
        Err(MailError::Config {
            key: "newsletter.list_id".into(),
            message: format!(
                "{raw:?} is not a list identifier like weekly.example.org (ASCII letters, digits, '-', '_' and dots)"
            ),
        })
    }
}

/// A List-Id label from the newsletter name and the From domain: `herald-weekly.example.org`.
fn derived_list_label(name: &str, domain: &str) -> String {
    let mut label = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            label.push(c.to_ascii_lowercase());
        } else if !label.is_empty() && !label.ends_with('-') {
            label.push('-');
        }
    }
    let label = label.trim_end_matches('-');
    let label = if label.is_empty() {
        "newsletter"
    } else {
        label
    };
    format!("{label}.{domain}")
}

/// A subject is one line: control characters (CR, LF, tab, …) become single spaces.
fn one_line(subject: &str) -> String {
    subject
        .split(char::is_control)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_label_is_derived_from_name_and_domain() {
        assert_eq!(
            derived_list_label("Herald Weekly!", "example.org"),
            "herald-weekly.example.org"
        );
        assert_eq!(
            derived_list_label("周报", "example.org"),
            "newsletter.example.org"
        );
    }

    #[test]
    fn configured_list_id_is_checked() {
        assert_eq!(
            parse_list_label("<Weekly.Example.org>").unwrap(),
            "weekly.example.org"
        );
        for bad in ["weekly", "a..b", "a b.org", "x>.org\r\nBcc: y"] {
            let err = parse_list_label(bad).unwrap_err().to_string();
            assert!(err.contains("newsletter.list_id"), "{err}");
        }
    }

    #[test]
    fn seven_bit_check_rejects_8bit_bare_newlines_and_long_lines() {
        assert!(is_seven_bit(
            b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"
        ));
        assert!(!is_seven_bit("caf\u{e9}\r\n".as_bytes()));
        assert!(!is_seven_bit(b"a\nb\r\n"));
        assert!(!is_seven_bit(b"a\rb\r\n"));
        assert!(!is_seven_bit(b"a\0b\r\n"));
        assert!(!is_seven_bit(&[b'x'; 999]));
        assert!(is_seven_bit(&[b'x'; 998]));
    }

    #[test]
    fn subject_is_folded_onto_one_line() {
        assert_eq!(
            one_line("Hello\r\nBcc: victim@example.org"),
            "Hello Bcc: victim@example.org"
        );
        assert_eq!(one_line("a\tb\0c"), "a b c");
    }

    #[test]
    fn from_with_a_line_break_is_refused_not_panicked_on() {
        let err = parse_mailbox("newsletter.from", "Eve\r\nBcc: x@y.org <eve@example.org>")
            .unwrap_err()
            .to_string();
        assert!(err.contains("newsletter.from"), "{err}");
        let err = parse_mailbox("newsletter.from", "not an address")
            .unwrap_err()
            .to_string();
        assert!(err.contains("newsletter.from"), "{err}");
    }
}
