//! The machine-readable blocks of a report: RFC 3464 delivery-status fields and RFC 5965
//! feedback-report fields. Both are header-style `Name: value` lines with folded
//! continuations, grouped by blank lines. They turn up in their own MIME part, but also
//! pasted into the text of a plain-text bounce or a forwarded one (quoted with `> `).

/// One `Name: value` field; the name lower-cased, the value unfolded and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// Splits `text` into groups of fields. A blank line, or a line that is neither a field nor
/// a continuation, ends a group.
pub fn groups(text: &str) -> Vec<Vec<Field>> {
    let mut groups: Vec<Vec<Field>> = Vec::new();
    let mut current: Vec<Field> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = current.last_mut() {
                if last.value.len() < 4096 {
                    last.value.push(' ');
                    last.value.push_str(line.trim());
                }
                continue;
            }
        }
        match split_field(line) {
            Some((name, value)) => current.push(Field {
                name: name.to_ascii_lowercase(),
                value: value.trim().to_string(),
            }),
            None => {
                if !current.is_empty() {
                    groups.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

fn split_field(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok.then_some((name, value))
}

/// One recipient's block of a delivery-status report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsnRecipient {
    pub final_recipient: Option<String>,
    pub original_recipient: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
}

impl DsnRecipient {
    /// The address the report is about: the final recipient, else the original one.
    pub fn address(&self) -> Option<&str> {
        self.final_recipient
            .as_deref()
            .or(self.original_recipient.as_deref())
    }
}

/// The per-recipient blocks in `text`. A field that the current recipient already has
/// starts the next recipient, so blocks that lost their blank lines still come apart
/// whatever order their fields are in.
pub fn dsn_recipients(text: &str) -> Vec<DsnRecipient> {
    let mut out = Vec::new();
    for group in groups(text) {
        let mut current = DsnRecipient::default();
        for field in group {
            let slot = match field.name.as_str() {
                "final-recipient" => &mut current.final_recipient,
                "original-recipient" => &mut current.original_recipient,
                "action" => &mut current.action,
                "status" => &mut current.status,
                "diagnostic-code" => &mut current.diagnostic,
                _ => continue,
            };
            let repeated = slot.is_some();
            let value = match field.name.as_str() {
                "final-recipient" | "original-recipient" => address_of(&field.value),
                "action" => Some(field.value.to_ascii_lowercase()),
                "diagnostic-code" => Some(strip_type(&field.value).to_string()),
                _ => Some(field.value),
            };
            if repeated {
                push(&mut out, std::mem::take(&mut current));
            }
            match field.name.as_str() {
                "final-recipient" => current.final_recipient = value,
                "original-recipient" => current.original_recipient = value,
                "action" => current.action = value,
                "status" => current.status = value,
                _ => current.diagnostic = value,
            }
        }
        push(&mut out, current);
    }
    out
}

fn push(out: &mut Vec<DsnRecipient>, r: DsnRecipient) {
    if r.address().is_some() && (r.action.is_some() || r.status.is_some()) {
        out.push(r);
    }
}

/// `rfc822; <ada@example.org>` → `ada@example.org`.
fn address_of(value: &str) -> Option<String> {
    let bare = strip_type(value)
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (bare.contains('@') && !bare.contains(char::is_whitespace)).then(|| bare.to_string())
}

/// Drops an RFC 3464 type prefix: `smtp; 550 ...` → `550 ...`, `rfc822;a@b` → `a@b`.
fn strip_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest))
            if !kind.is_empty()
                && kind.len() <= 12
                && kind
                    .trim()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            rest.trim()
        }
        _ => value.trim(),
    }
}

/// The fields of an RFC 5965 feedback report that herald uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedbackReport {
    pub feedback_type: Option<String>,
    pub original_rcpt_to: Vec<String>,
    pub original_mail_from: Option<String>,
    pub removal_recipient: Vec<String>,
}

/// Reads a `message/feedback-report` body (or the same fields found elsewhere).
pub fn feedback_report(text: &str) -> FeedbackReport {
    let mut report = FeedbackReport::default();
    for field in groups(text).into_iter().flatten() {
        match field.name.as_str() {
            "feedback-type" => {
                report.feedback_type.get_or_insert_with(|| {
                    field
                        .value
                        .split(|c: char| c.is_whitespace() || c == ';')
                        .next()
                        .unwrap_or_default()
                        .to_ascii_lowercase()
                });
            }
            "original-rcpt-to" => report.original_rcpt_to.extend(address_of(&field.value)),
            "removal-recipient" => report.removal_recipient.extend(address_of(&field.value)),
            "original-mail-from" => report.original_mail_from = address_of(&field.value),
            _ => {}
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_recipient_blocks_with_folded_diagnostics() {
        let text = "Reporting-MTA: dns; mx.example.org\n\n\
            Final-Recipient: rfc822; ada@example.org\n\
            Original-Recipient: rfc822;ada@example.org\n\
            Action: failed\nStatus: 5.1.1\n\
            Diagnostic-Code: smtp; 550 5.1.1 <ada@example.org>:\n    user unknown\n\n\
            Final-Recipient: rfc822; bob@example.org\nAction: delayed\nStatus: 4.4.1\n";
        let r = dsn_recipients(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].address(), Some("ada@example.org"));
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("550 5.1.1 <ada@example.org>: user unknown")
        );
        assert_eq!(r[1].action.as_deref(), Some("delayed"));
    }

    #[test]
    fn blocks_without_blank_lines_still_come_apart() {
        let text = "Action: failed\nFinal-Recipient: rfc822; a@example.org\nStatus: 5.1.1\n\
            Final-Recipient: rfc822; b@example.org\nAction: failed\nStatus: 5.2.2\n";
        let r = dsn_recipients(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].status.as_deref(), Some("5.2.2"));
    }

    #[test]
    fn reads_feedback_fields() {
        let f = feedback_report(
            "Feedback-Type: abuse\nUser-Agent: x/1\nVersion: 1\n\
             Original-Rcpt-To: <a@example.org>\nOriginal-Rcpt-To: b@example.org\n\
             Original-Mail-From: bounces+abc@news.example.org\n",
        );
        assert_eq!(f.feedback_type.as_deref(), Some("abuse"));
        assert_eq!(f.original_rcpt_to, ["a@example.org", "b@example.org"]);
        assert_eq!(
            f.original_mail_from.as_deref(),
            Some("bounces+abc@news.example.org")
        );
    }
}
