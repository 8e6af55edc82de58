//! What an SMTP failure means: [`classify`] turns lettre's error for one message into a
//! [`SendOutcome`], from lettre's predicates (`is_transient`, `is_permanent`, `is_timeout`,
//! `is_tls`, `status`) and the I/O error kinds in the error's source chain, and looks at the
//! reply's words only where the code alone cannot tell: whether a 5xx is about the recipient
//! or about our sender, and whether a 4xx asks herald to slow down ([`THROTTLE_RULES`]).

use std::io::ErrorKind;

use lettre::transport::smtp::response::{Category, Code, Response, Severity};

use super::transport::SendOutcome;

/// A reply that means "you are sending too fast", as opposed to a problem with one message:
/// the dispatcher slows the destination down and puts the message back without counting an
/// attempt. Each rule names the replies it matches; the examples are real replies, tested.
pub(crate) struct ThrottleRule {
    /// Reply codes the rule applies to; empty means every 4xx.
    pub codes: &'static [u16],
    /// An enhanced status code prefix the reply must carry (`4.7.`), if any.
    pub enhanced: Option<&'static str>,
    /// Words, one of which the reply must contain (case-insensitive), if any.
    pub words: &'static [&'static str],
    /// Replies this rule exists for (each one is checked by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub examples: &'static [&'static str],
}

/// The throttling replies, in one place. A 4xx that matches none is an ordinary transient
/// failure, retried with backoff and counted as an attempt.
pub(crate) const THROTTLE_RULES: &[ThrottleRule] = &[
    // 421 closes the connection; from a mailbox provider mid-session it is nearly always
    // about the sender's volume or reputation.
    ThrottleRule {
        codes: &[421],
        enhanced: None,
        words: &[],
        examples: &[
            "421-4.7.0 [203.0.113.5] Our system has detected an unusual rate of unsolicited \
             mail originating from your IP address. To protect our users from spam, mail \
             sent from your IP address has been temporarily rate limited.",
            "421 4.7.0 [TSS04] Messages from 203.0.113.5 temporarily deferred due to \
             unexpected volume or user complaints - 4.16.55.1",
            "421 4.7.66 Too many connections from your IP",
        ],
    },
    // 4.7.x is "security or policy status": rate, reputation and connection limits.
    ThrottleRule {
        codes: &[450, 451, 452],
        enhanced: Some("4.7."),
        words: &[],
        examples: &[
            "451 4.7.650 The mail server [203.0.113.5] has been temporarily rate limited due \
             to IP reputation.",
            "450 4.7.1 Client host rejected: too many connections, slow down",
            "451 4.7.500 Server busy. Please try again later from [203.0.113.5].",
        ],
    },
    // Relays and providers that say it only in words.
    ThrottleRule {
        codes: &[],
        enhanced: None,
        words: &[
            "rate limit",
            "ratelimit",
            "rate-limit",
            "throttl",
            "too many messages",
            "too many connections",
            "sending rate",
            "unusual rate",
            "slow down",
            "temporarily deferred",
        ],
        examples: &[
            "454 Throttling failure: Maximum sending rate exceeded.",
            "450 Too many messages from this sender, try again later",
            "452 Rate limit exceeded for this account",
        ],
    },
];

impl ThrottleRule {
    fn matches(&self, code: u16, text: &str) -> bool {
        let code_ok = if self.codes.is_empty() {
            (400..500).contains(&code)
        } else {
            self.codes.contains(&code)
        };
        let enhanced_ok = self
            .enhanced
            .is_none_or(|prefix| enhanced_status(text).is_some_and(|s| s.starts_with(prefix)));
        let words_ok = self.words.is_empty() || {
            let lower = text.to_ascii_lowercase();
            self.words.iter().any(|word| lower.contains(word))
        };
        code_ok && enhanced_ok && words_ok
    }
}

/// Whether a reply with this code and text (the text after the code) is a throttle.
pub(crate) fn is_throttle(code: u16, text: &str) -> bool {
    THROTTLE_RULES.iter().any(|rule| rule.matches(code, text))
}

/// The first RFC 3463 enhanced status code (`class.subject.detail`) among the reply's words.
fn enhanced_status(text: &str) -> Option<&str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ':' | '(' | ')' | '-' | '[' | ']'))
        .find(|word| {
            let mut parts = word.split('.');
            matches!(
                (parts.next(), parts.next(), parts.next(), parts.next()),
                (Some(class), Some(subject), Some(detail), None)
                    if class.len() == 1
                        && class.chars().all(|c| c.is_ascii_digit())
                        && !subject.is_empty() && subject.chars().all(|c| c.is_ascii_digit())
                        && !detail.is_empty() && detail.chars().all(|c| c.is_ascii_digit())
            )
        })
}

/// `CODE line line…`, as the ledger records a reply.
pub(crate) fn reply_text<'a>(code: &str, lines: impl Iterator<Item = &'a str>) -> String {
    let text: Vec<&str> = lines.collect();
    if text.is_empty() {
        code.to_string()
    } else {
        format!("{code} {}", text.join(" "))
    }
}

/// The I/O error kind in `e`'s source chain, if any.
pub(crate) fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = err.source();
    }
    None
}

/// Decides the outcome from lettre's predicates and the reply code.
pub(crate) fn classify(
    e: &lettre::transport::smtp::Error,
    sender: &str,
    recipient: &str,
) -> SendOutcome {
    let reply = e.to_string();
    if e.is_tls() {
        return SendOutcome::RelayDown { reason: reply };
    }
    if let Some(code) = e.status() {
        return outcome_of_code(code, reply, sender, recipient);
    }
    let transient = SendOutcome::Transient {
        reply: reply.clone(),
        throttled: false,
    };
    if e.is_timeout() {
        return transient;
    }
    match io_kind(e) {
        Some(
            ErrorKind::ConnectionRefused
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::AddrNotAvailable
            | ErrorKind::PermissionDenied,
        ) => SendOutcome::RelayDown { reason: reply },
        // A connection that died mid-transaction, a reply that does not parse, a pool that
        // could not connect for another reason: the outcome is unknown, so try again.
        _ => transient,
    }
}

/// The outcome of a negative reply with this code; `reply` is the whole reply as the
/// ledger keeps it.
fn outcome_of_code(code: Code, reply: String, sender: &str, recipient: &str) -> SendOutcome {
    // x3x replies come only from AUTH (RFC 4954: 530, 534, 535, 538): the relay's setup
    // refuses us, not this recipient.
    if code.category == Category::Unspecified3 {
        return SendOutcome::RelayDown { reason: reply };
    }
    match code.severity {
        Severity::TransientNegativeCompletion => {
            let number = code.to_string().parse().unwrap_or(0);
            let throttled = is_throttle(number, &reply);
            SendOutcome::Transient { reply, throttled }
        }
        _ if refuses_sender(&reply, sender, recipient) => SendOutcome::RelayDown { reason: reply },
        _ => SendOutcome::Permanent { reply },
    }
}

/// What the dispatcher makes of a relay's reply to the end of a message, given as the relay
/// sent it (`250 OK`, or several `550-…` lines), read with lettre's reply parser. `None` when
/// the text is no complete SMTP reply. A 2xx is accepted; 4xx and 5xx go through the same
/// rules as a reply lettre reports as an error (throttles, refused senders, AUTH).
pub fn judge_reply(raw: &str, sender: &str, recipient: &str) -> Option<SendOutcome> {
    let response: Response = raw.parse().ok()?;
    let code = response.code();
    let lines = response.message();
    match code.severity {
        Severity::TransientNegativeCompletion | Severity::PermanentNegativeCompletion => {
            let kind = if code.severity == Severity::TransientNegativeCompletion {
                "transient"
            } else {
                "permanent"
            };
            let text: Vec<&str> = lines.collect();
            let reply = format!("{kind} error ({code}): {}", text.join(" "));
            Some(outcome_of_code(code, reply, sender, recipient))
        }
        _ => Some(SendOutcome::Accepted {
            reply: reply_text(&code.to_string(), lines),
        }),
    }
}

/// A 5xx that is about our envelope sender, not this recipient: enhanced status 5.1.7 or
/// 5.1.8 (bad sender address), or a reply that names the sender and not the recipient (as in
/// Postfix's `550 5.1.0 <sender>: Sender address rejected`). Every message would get it, so
/// it must neither fail nor bounce anyone.
pub(crate) fn refuses_sender(reply: &str, sender: &str, recipient: &str) -> bool {
    let reply = reply.to_ascii_lowercase();
    let names =
        |address: &str| !address.is_empty() && reply.contains(&address.to_ascii_lowercase());
    if names(recipient) {
        return false;
    }
    names(sender)
        || reply
            .split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
            .any(|word| word == "5.1.7" || word == "5.1.8")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `421 text` → (421, "421 text").
    fn split(example: &str) -> (u16, &str) {
        (example[..3].parse().unwrap(), example)
    }

    #[test]
    fn every_throttle_rule_matches_its_examples() {
        for (i, rule) in THROTTLE_RULES.iter().enumerate() {
            for example in rule.examples {
                let (code, text) = split(example);
                assert!(rule.matches(code, text), "rule {i} misses {example:?}");
            }
        }
    }

    #[test]
    fn ordinary_transient_failures_are_not_throttles() {
        for example in [
            "451 4.3.0 Error: queue file write error",
            "450 4.2.1 The user you are trying to contact is receiving mail at a rate that \
             prevents additional messages from being delivered.",
            "452 4.2.2 Mailbox full",
            "451 4.4.1 No answer from host",
            "450 4.1.8 Sender address rejected: Domain not found",
        ] {
            let (code, text) = split(example);
            assert!(!is_throttle(code, text), "{example:?}");
        }
        // A 5xx is never a throttle, whatever its words.
        assert!(!is_throttle(554, "554 5.7.1 rate limit exceeded"));
    }

    #[test]
    fn a_refused_sender_is_not_the_recipient_s_fault() {
        let (from, to) = ("news@example.org", "a@b.org");
        assert!(refuses_sender(
            "permanent error (550): 5.1.0 <news@example.org>: Sender address rejected",
            from,
            to
        ));
        assert!(refuses_sender(
            "permanent error (553): 5.1.8 Domain of sender does not exist",
            from,
            to
        ));
        assert!(!refuses_sender(
            "permanent error (550): 5.1.1 <a@b.org>: user unknown",
            from,
            to
        ));
        assert!(!refuses_sender(
            "permanent error (550): <a@b.org> does not accept mail from news@example.org",
            from,
            to
        ));
    }
}
