//! [`Processor`]: a report's way from bytes to the store, shared by every channel. It reads
//! the mail ([`read`](super::read)), finds the delivery it is about, and has the store
//! apply the policy in one transaction.
//!
//! Finding the delivery, strongest evidence first:
//!
//! 1. a return-path token: in the envelope recipient (the listener knows it), else in the
//!    report's own headers and fields (`Delivered-To`, `X-Original-To`, the returned
//!    original's `Return-Path`, an ARF report's `Original-Mail-From`, a webhook's custom
//!    argument). Only a token that verifies counts.
//! 2. our Message-ID, quoted in the returned headers (the ledger keeps each copy's).
//! 3. the issue named by our `Feedback-ID`, with the recipient's address.
//! 4. the recipient's address alone: their latest issue.
//!
//! The delivery found by 1 to 3 belongs to the report's recipient (a copy of ours has one);
//! in a report about several recipients, each other one is looked up by address.

use super::inbox::{Accepted, Channel, Inbox, Refusal};
use super::{read_mailbox, report_hash, DeliveryName, Report};
use crate::domain::{EmailAddress, ReturnAddress, ReturnPath, TokenKey};
use crate::store::{AppliedReport, NewBounce, NewReport, Store, StoreError};

/// Reads, locates and applies returned mail.
#[derive(Clone)]
pub struct Processor {
    store: Store,
    key: TokenKey,
    return_path: Option<ReturnPath>,
    soft_limit: u32,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("soft_limit", &self.soft_limit)
            .finish_non_exhaustive()
    }
}

/// The delivery a report refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    pub issue_id: Option<i64>,
    pub subscriber_id: i64,
}

impl Processor {
    pub fn new(
        store: Store,
        key: TokenKey,
        return_path: Option<ReturnPath>,
        soft_limit: u32,
    ) -> Self {
        Self {
            store,
            key,
            return_path,
            soft_limit,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Finds the delivery of each recipient of `report` (in order; `None` where nothing
    /// matches). `envelope` are the envelope recipients, when the channel knows them.
    pub async fn locate(
        &self,
        report: &Report,
        envelope: &[String],
    ) -> Result<Vec<Option<Located>>, StoreError> {
        let found = self.locate_copy(report, envelope).await?;
        let mut out = Vec::with_capacity(report.recipients.len().max(1));
        let single = report.recipients.len() <= 1;
        let copy_email = match found {
            Some(located) => self
                .store
                .find_subscriber_by_id(located.subscriber_id)
                .await?
                .map(|s| s.email.to_ascii_lowercase()),
            None => None,
        };
        for recipient in &report.recipients {
            let address = recipient.address.as_deref().map(str::to_ascii_lowercase);
            let matches_copy =
                found.is_some() && (single || address.is_some() && address == copy_email);
            if matches_copy {
                out.push(found);
                continue;
            }
            out.push(match &address {
                Some(address) => self.locate_by_address(address, None).await?,
                None => None,
            });
        }
        if report.recipients.is_empty() {
            out.push(found);
        }
        Ok(out)
    }

    /// The delivery the returned copy itself names (steps 1 to 3).
    async fn locate_copy(
        &self,
        report: &Report,
        envelope: &[String],
    ) -> Result<Option<Located>, StoreError> {
        let mut tokens: Vec<String> = Vec::new();
        if let Some(rp) = &self.return_path {
            for address in envelope {
                if let ReturnAddress::Tagged(token) = rp.recognise(address) {
                    tokens.push(token.to_ascii_lowercase());
                }
            }
        }
        tokens.extend(report.references.tokens.iter().cloned());
        for token in &tokens {
            if let Ok(d) = self.key.verify_delivery(token) {
                if self
                    .store
                    .delivery_exists(d.issue_id, d.subscriber_id)
                    .await?
                {
                    return Ok(Some(Located {
                        issue_id: Some(d.issue_id),
                        subscriber_id: d.subscriber_id,
                    }));
                }
            }
        }
        for id in &report.references.message_ids {
            if let Some((issue_id, subscriber_id)) =
                self.store.find_delivery_by_message_id(id).await?
            {
                return Ok(Some(Located {
                    issue_id: Some(issue_id),
                    subscriber_id,
                }));
            }
        }
        let address = report
            .recipients
            .first()
            .and_then(|r| r.address.as_deref())
            .map(str::to_ascii_lowercase);
        if let Some(address) = &address {
            for feedback_id in &report.references.feedback_ids {
                let slug = feedback_id.split(':').next().unwrap_or_default();
                if let Some(issue) = self.store.find_issue(slug).await? {
                    if let Some(found) = self.locate_by_address(address, Some(issue.id)).await? {
                        return Ok(Some(found));
                    }
                }
            }
        }
        Ok(None)
    }

    /// A subscriber by address, with `issue_id` when their delivery of it exists, else
    /// their latest issue.
    async fn locate_by_address(
        &self,
        address: &str,
        issue_id: Option<i64>,
    ) -> Result<Option<Located>, StoreError> {
        let Ok(email) = EmailAddress::parse(address) else {
            return Ok(None);
        };
        let Some(subscriber) = self.store.find_subscriber_by_email(&email).await? else {
            return Ok(None);
        };
        let issue_id = match issue_id {
            Some(id) if self.store.delivery_exists(id, subscriber.id).await? => Some(id),
            Some(_) => return Ok(None),
            None => self.store.latest_delivered_issue(subscriber.id).await?,
        };
        Ok(Some(Located {
            issue_id,
            subscriber_id: subscriber.id,
        }))
    }

    /// The delivery as `herald bounces parse --json` names it: the first recipient's.
    pub async fn delivery_name(
        &self,
        report: &Report,
        envelope: &[String],
    ) -> Result<Option<DeliveryName>, StoreError> {
        let located = self.locate(report, envelope).await?;
        let Some(Some(found)) = located.into_iter().next() else {
            return Ok(None);
        };
        let Some(issue_id) = found.issue_id else {
            return Ok(None);
        };
        Ok(self
            .store
            .issue_slug(issue_id)
            .await?
            .map(|issue| DeliveryName {
                issue,
                subscriber: found.subscriber_id,
            }))
    }

    /// Applies one report. `identity` is what makes it the same report when it comes again
    /// (the raw mail, or the webhook event); `now` is Unix seconds.
    pub async fn apply(
        &self,
        report: &Report,
        identity: &[u8],
        channel: Channel,
        envelope: &[String],
        now: i64,
    ) -> Result<AppliedReport, StoreError> {
        let located = self.locate(report, envelope).await?;
        let mut recipients: Vec<NewBounce> = report
            .recipients
            .iter()
            .zip(&located)
            .map(|(r, found)| NewBounce {
                issue_id: found.and_then(|f| f.issue_id),
                subscriber_id: found.map(|f| f.subscriber_id),
                status: r.status.map(|s| s.to_string()),
                reply: r.reply.map(|c| c.get()),
                diagnostic: r.diagnostic.clone(),
                hard: r.hard,
                reason: r.reason.as_str().to_string(),
            })
            .collect();
        if recipients.is_empty() {
            // A report naming no recipient is still kept, tied to its delivery if found.
            let found = located.first().copied().flatten();
            recipients.push(NewBounce {
                issue_id: found.and_then(|f| f.issue_id),
                subscriber_id: found.map(|f| f.subscriber_id),
                status: None,
                reply: None,
                diagnostic: String::new(),
                hard: false,
                reason: report.kind.as_str().to_string(),
            });
        }
        let mut keyed = channel.as_str().as_bytes().to_vec();
        keyed.push(0);
        keyed.extend_from_slice(identity);
        let new = NewReport {
            report_hash: report_hash(&keyed),
            channel: channel.as_str(),
            kind: report.kind.as_str(),
            feedback_type: report.feedback_type.clone(),
            received_at: now,
            soft_limit: self.soft_limit,
            recipients,
        };
        self.store.apply_report(&new).await
    }
}

impl Inbox for Processor {
    async fn deliver(
        &self,
        mail: Vec<u8>,
        recipients: Vec<String>,
        channel: Channel,
    ) -> Result<Accepted, Refusal> {
        let reports = match read_mailbox(&mail) {
            Ok(reports) => reports,
            Err(e) => return Err(Refusal::NotMail(e.to_string())),
        };
        let now = chrono::Utc::now().timestamp();
        let mut accepted = Accepted {
            kind: super::Kind::None,
            duplicate: true,
        };
        for (i, report) in reports.iter().enumerate() {
            // One mail is one report; an mbox file holds several, each its own identity.
            let mut identity = mail.clone();
            if reports.len() > 1 {
                identity.extend_from_slice(format!("\n#{i}").as_bytes());
            }
            let applied = self
                .apply(report, &identity, channel, &recipients, now)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot store a returned-mail report");
                    Refusal::Unavailable(e.to_string())
                })?;
            if i == 0 || report.kind != super::Kind::None {
                accepted.kind = report.kind;
            }
            accepted.duplicate &= applied.duplicate;
            tracing::info!(
                kind = report.kind.as_str(),
                channel = channel.as_str(),
                duplicate = applied.duplicate,
                effects = ?applied.effects,
                "returned mail"
            );
        }
        Ok(accepted)
    }
}
