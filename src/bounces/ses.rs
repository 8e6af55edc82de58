//! Amazon SES notifications (bounce, complaint, delivery, delay), as SES publishes them to
//! SNS: delivered by the SNS webhook, or as the body of a mail when the SNS topic has an
//! email subscription. Both the `notificationType` (SES notifications) and the `eventType`
//! (SES event publishing) shapes are read.

use serde_json::Value;

use super::rules::Reason;
use super::webhooks::{without_diagnostic_type, Failure};
use super::{Kind, RecipientReport, References, Report};

/// Reads an SES notification, bare or inside an SNS `Notification` envelope. `None` when the
/// JSON is not one.
pub fn report(json: &Value) -> Option<Report> {
    if json.get("Type").and_then(Value::as_str) == Some("Notification") {
        let inner: Value = serde_json::from_str(json.get("Message")?.as_str()?).ok()?;
        return report(&inner);
    }
    let kind = json
        .get("notificationType")
        .or_else(|| json.get("eventType"))?
        .as_str()?;
    let mut references = References::default();
    if let Some(mail) = json.get("mail") {
        collect_references(mail, &mut references);
    }
    let report = match kind {
        "Bounce" => {
            let bounce = json.get("bounce")?;
            let bounce_type = str_of(bounce, "bounceType");
            let sub_type = str_of(bounce, "bounceSubType");
            let recipients = list(bounce, "bouncedRecipients")
                .map(|r| {
                    bounced_recipient(r, bounce_type, sub_type, bounce_type != "Permanent", false)
                })
                .collect();
            Report {
                kind: Kind::Bounce,
                feedback_type: None,
                recipients,
                references,
            }
        }
        "DeliveryDelay" => {
            let delay = json.get("deliveryDelay")?;
            let delay_type = str_of(delay, "delayType");
            let recipients = list(delay, "delayedRecipients")
                .map(|r| bounced_recipient(r, "Transient", delay_type, true, true))
                .collect();
            Report {
                kind: Kind::Delay,
                feedback_type: None,
                recipients,
                references,
            }
        }
        "Complaint" => {
            let complaint = json.get("complaint")?;
            let feedback = complaint
                .get("complaintFeedbackType")
                .and_then(Value::as_str)
                .unwrap_or("abuse")
                .to_ascii_lowercase();
            let recipients = list(complaint, "complainedRecipients")
                .map(|r| RecipientReport::plain(address(r), Reason::Complaint))
                .collect();
            Report {
                kind: Kind::Complaint,
                feedback_type: Some(feedback),
                recipients,
                references,
            }
        }
        "Delivery" => {
            let delivery = json.get("delivery")?;
            let recipients = delivery
                .get("recipients")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|a| RecipientReport::plain(Some(a.to_string()), Reason::Delivered))
                .collect();
            Report {
                kind: Kind::Delivered,
                feedback_type: None,
                recipients,
                references,
            }
        }
        _ => return None,
    };
    Some(report)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn list<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn address(r: &Value) -> Option<String> {
    r.get("emailAddress")
        .and_then(Value::as_str)
        .map(|a| {
            // SES may give `"Name" <a@b>`.
            match (a.rfind('<'), a.rfind('>')) {
                (Some(start), Some(end)) if start < end => a[start + 1..end].to_string(),
                _ => a.trim().to_string(),
            }
        })
        .filter(|a| a.contains('@'))
}

fn bounced_recipient(
    r: &Value,
    bounce_type: &str,
    sub_type: &str,
    temporary: bool,
    delay: bool,
) -> RecipientReport {
    let failure = Failure {
        address: address(r),
        diagnostic: without_diagnostic_type(str_of(r, "diagnosticCode")).to_string(),
        status: r.get("status").and_then(Value::as_str),
        reply: None,
        temporary,
    };
    failure.recipient(|verdict| {
        if bounce_type == "Permanent" && sub_type == "NoEmail" {
            // SES's own finding: the address does not exist.
            verdict.reason = Reason::UnknownUser;
            verdict.hard = true;
        } else if verdict.reason == Reason::Other {
            // SES's own words when the remote server gave none.
            verdict.reason = match sub_type {
                "NoEmail" => Reason::UnknownUser,
                "Suppressed" => Reason::UnknownUser,
                "MailboxFull" => Reason::MailboxFull,
                "MessageTooLarge" => Reason::TooLarge,
                "ContentRejected" | "AttachmentRejected" => Reason::Content,
                "InternalFailure" | "General" if delay => Reason::System,
                "MailboxUnavailable" => Reason::Disabled,
                "SpamDetected" => Reason::Blocked,
                "RecipientServerError" => Reason::System,
                "IPFailure" | "TransientCommunicationFailure" => Reason::Network,
                _ => Reason::Other,
            };
            verdict.hard = verdict.reason.is_hard() && bounce_type == "Permanent" && !temporary;
        }
    })
}

fn collect_references(mail: &Value, references: &mut References) {
    if let Some(source) = mail.get("source").and_then(Value::as_str) {
        references.add_return_address(source);
    }
    let headers = mail
        .get("headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for header in headers {
        let name = str_of(header, "name");
        let value = str_of(header, "value");
        if name.eq_ignore_ascii_case("message-id") {
            references.add_message_id(value);
        } else if name.eq_ignore_ascii_case("feedback-id") {
            references.add_feedback_id(value);
        } else if name.eq_ignore_ascii_case("return-path") {
            references.add_return_address(value);
        }
    }
    if let Some(id) = mail
        .get("commonHeaders")
        .and_then(|h| h.get("messageId"))
        .and_then(Value::as_str)
    {
        references.add_message_id(id);
    }
}
