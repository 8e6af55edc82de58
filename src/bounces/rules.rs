//! Why a recipient failed, and whether that is hard: the rule table.
//!
//! **Hard** means the address itself will never accept mail: no such user, no such domain or
//! host, the mailbox has moved, a domain that accepts no mail. Everything else is soft: a
//! full mailbox, a spam, content or policy block, an authentication (SPF/DKIM/DMARC) failure,
//! missing reverse DNS, an expired queue, a network or system error, a suspended account,
//! rate limiting. A soft failure is the sender's or the moment's problem, not the reader's,
//! so it never drops a reader on its own.
//!
//! The decision reads the diagnostic text and the status code together, in two passes:
//!
//! 1. [`TEXT_RULES`], in order: the first whose pattern matches the diagnostic decides. The
//!    soft rules come first because servers often put a wrong "address" code on a soft
//!    failure (`550 5.1.1 ... has sent to too many recipients this hour`, `552 ... over
//!    quota (#5.1.1)`). A hard rule is skipped when the enhanced code says the refusal is
//!    a matter of policy (class `X.7.*`): `550 5.7.1 User unknown` is a filter speaking.
//! 2. [`CODE_RULES`], when no text rule matched: the enhanced status code alone, because the
//!    same code means different things at different providers only when text says so.
//!
//! Each rule lists the real-world replies that motivated it; a test checks that every
//! example is classified by its own rule. Adding a case is one line.

use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

use super::status::{ReplyCode, Status};

/// Why a recipient failed (or what else the report says about them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // Hard: the address will never accept mail.
    UnknownUser,
    UnknownDomain,
    Moved,
    NoMailAccepted,
    // Soft.
    MailboxFull,
    Disabled,
    RateLimited,
    ReverseDns,
    Authentication,
    Virus,
    TooLarge,
    Relaying,
    SenderRejected,
    Blocked,
    Content,
    Expired,
    Network,
    System,
    Syntax,
    Other,
    // Not failures.
    Complaint,
    AutoReply,
    Delivered,
}

impl Reason {
    /// The reason as reports and the JSON output name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownUser => "unknown user",
            Reason::UnknownDomain => "unknown domain",
            Reason::Moved => "mailbox moved",
            Reason::NoMailAccepted => "domain accepts no mail",
            Reason::MailboxFull => "mailbox full",
            Reason::Disabled => "mailbox disabled",
            Reason::RateLimited => "rate limited",
            Reason::ReverseDns => "no reverse dns",
            Reason::Authentication => "authentication failed",
            Reason::Virus => "virus detected",
            Reason::TooLarge => "message too large",
            Reason::Relaying => "relaying denied",
            Reason::SenderRejected => "sender rejected",
            Reason::Blocked => "blocked",
            Reason::Content => "content or policy",
            Reason::Expired => "expired",
            Reason::Network => "network error",
            Reason::System => "system error",
            Reason::Syntax => "protocol error",
            Reason::Other => "other",
            Reason::Complaint => "complaint",
            Reason::AutoReply => "auto-reply",
            Reason::Delivered => "delivered",
        }
    }

    /// Reads back what [`Reason::as_str`] wrote.
    pub fn parse(s: &str) -> Option<Self> {
        ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// Whether this reason means the address itself will never accept mail.
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            Reason::UnknownUser | Reason::UnknownDomain | Reason::Moved | Reason::NoMailAccepted
        )
    }
}

const ALL: [Reason; 23] = [
    Reason::UnknownUser,
    Reason::UnknownDomain,
    Reason::Moved,
    Reason::NoMailAccepted,
    Reason::MailboxFull,
    Reason::Disabled,
    Reason::RateLimited,
    Reason::ReverseDns,
    Reason::Authentication,
    Reason::Virus,
    Reason::TooLarge,
    Reason::Relaying,
    Reason::SenderRejected,
    Reason::Blocked,
    Reason::Content,
    Reason::Expired,
    Reason::Network,
    Reason::System,
    Reason::Syntax,
    Reason::Other,
    Reason::Complaint,
    Reason::AutoReply,
    Reason::Delivered,
];

/// One line of the table: a case-insensitive pattern over the diagnostic text.
pub struct TextRule {
    pub reason: Reason,
    pub pattern: &'static str,
    /// Replies seen in the wild that this rule is for.
    pub examples: &'static [&'static str],
}

/// One line of the fallback table: enhanced status codes, class left out (`"1.1"` is 4.1.1
/// and 5.1.1; `"7"` is every 4.7.x and 5.7.x).
pub struct CodeRule {
    pub reason: Reason,
    pub codes: &'static [&'static str],
    pub examples: &'static [&'static str],
}

/// The text rules, soft before hard, most specific first.
pub static TEXT_RULES: &[TextRule] = &[
    TextRule {
        reason: Reason::MailboxFull,
        pattern: r"mailbox (is )?full|box is full|full mailbox|over ?quota|quota (exceeded|exceed|full)|exceeded (the |his |her |their )?(storage|quota|mailbox)|disk quota|(not enough|insufficient|no) (free )?(disk |storage )?space|mailbox size limit|storage (space )?(is )?full|out of storage|mail ?folder is full|user has exceeded|mailbox (has )?exceeded|容量を?超過|容量オーバー|いっぱいです|переполнен|postfach (ist )?voll|boîte (aux lettres )?pleine",
        examples: &[
            "552 5.2.2 <ada@example.org>: Recipient address rejected: Mailbox full",
            "552 sorry, mailbox ada@example.org is over quota temporarily (#5.1.1)",
            "552 Error: disk quota exceeded",
            "Your message to <ada> was automatically rejected: Not enough disk space",
            "452 4.2.2 The email account that you tried to reach is over quota",
            "メールボックスの容量を超過しています",
            "Почтовый ящик получателя переполнен",
        ],
    },
    TextRule {
        reason: Reason::RateLimited,
        pattern: r"at a rate that|rate limit|too many (messages|recipients|mails|e-?mails|connections|concurrent)|(connection|sending|message) frequency|frequency limit|(sent|sending) too (many|fast|much)|has sent to too many|(message|connection|recipient|sending) (rate|limit) (exceeded|reached)|exceeded .{0,30}(rate|limit)|throttl|slow down|try again later, closing connection",
        examples: &[
            "550-5.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered",
            "550 5.1.1 <ada@example.org> - 203.0.113.9 has sent to too many recipients this hour",
            "550 Connection frequency limited. Blocked IP 192.0.2.22",
            "421 4.7.0 Our system has detected an unusual rate of unsolicited mail; rate limit exceeded",
        ],
    },
    TextRule {
        reason: Reason::ReverseDns,
        pattern: r"reverse (dns|lookup|name|dns validation)|\brdns\b|\bptr\b|no (host ?name|dns name) for|cannot find your (host ?name|reverse)|unknown client host|client host rejected: cannot find|unverif[iy]able (sending )?ip|ip address .{0,60}(does not|doesn't) (have|match) .{0,20}(name|hostname|ptr)|hostname (does not|doesn't) match",
        examples: &[
            "550 5.7.25 <ada@example.org>: Recipient address rejected: Reverse DNS validation failed",
            "550-5.7.25 The IP address sending this message does not have a PTR record setup",
            "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]",
            "450 service permits 2 unverifyable sending IPs",
        ],
    },
    TextRule {
        reason: Reason::Authentication,
        pattern: r"\bspf\b|\bdkim\b|\bdmarc\b|domainkeys|unauthenticated (e-?mail|mail|sender)|sender policy framework|(authentication|auth) (check )?(failed|failure)|not authori[sz]ed to send|sender is not authenticated",
        examples: &[
            "550-5.7.26 Unauthenticated email from example.org is not accepted due to domain's DMARC policy",
            "554 5.7.1 SPF check failed: example.org does not designate 192.0.2.1 as permitted sender",
            "550 5.7.1 Email rejected per DMARC policy",
            "550 authentication failure: DKIM signature did not verify",
        ],
    },
    TextRule {
        reason: Reason::Virus,
        pattern: r"virus|malware|infected|trojan|worm detected",
        examples: &[
            "554 5.7.0 message rejected: the message contains a virus (Eicar-Test-Signature)",
            "550 Malware detected in the message",
        ],
    },
    TextRule {
        reason: Reason::TooLarge,
        pattern: r"(message|mail|size) (size )?(is )?too (big|large)|exceeds? (the )?(maximum|max|allowed|size|message size)|message length exceeds|size limit exceeded|message size exceeds",
        examples: &[
            "552 5.3.4 Message size exceeds fixed maximum message size",
            "552 5.2.3 Message too large",
        ],
    },
    TextRule {
        reason: Reason::Relaying,
        pattern: r"relay(ing)? (access )?(denied|not permitted|prohibited|not allowed|refused)|(not permitted|not allowed|unable|will not|we do not|cannot) (to )?relay|insecure mail relay|no relaying|not an open relay|relay not permitted",
        examples: &[
            "550 5.7.1 <ada@example.org>: Relay access denied",
            "554 5.7.1 Relaying denied",
            "550 Insecure Mail Relay",
            "550 we do not relay for example.org",
        ],
    },
    TextRule {
        reason: Reason::SenderRejected,
        pattern: r"sender (address )?(rejected|refused|denied|invalid|verify failed|not allowed)|(from|sender) address (is )?(invalid|not valid)|domain of sender address .{0,60}(does not|doesn't) exist|sender domain (must|does not) (resolve|exist)|bad sender",
        examples: &[
            "501 5.1.8 Sender address rejected [MAIL_FROM]",
            "553 5.1.8 <news@example.org>: Sender address rejected: Domain not found",
        ],
    },
    TextRule {
        reason: Reason::Expired,
        pattern: r"(retry|delivery) (time ?out|timeout|period) (exceeded|expired)|could not deliver for the last|(message|delivery time) expired|expired after|too long (in|on) (the )?queue|delivery failed \d+ attempts|(was )?aborted after \d|queue (time|lifetime) (exceeded|expired)|no longer trying|retry timeout|giving up on (this|the) message|maximum (time|delivery time|retry)|has not been delivered for|could not be delivered within|delivery (attempts|period) (has )?(expired|ended)",
        examples: &[
            "Reason: delivery retry timeout exceeded",
            "Could not deliver for the last 432000 seconds. Giving up.",
            "Delivery failed 20 attempts: ada@example.org",
            "Delivery to the following recipients was aborted after 5.0 hour(s)",
            "Message expired after 5 days in queue",
        ],
    },
    TextRule {
        reason: Reason::Blocked,
        pattern: r"\bspam|blacklist|blocklist|black list|block list|\bdnsbl\b|\brbl\b|spamhaus|spamcop|barracuda|sorbs|reputation|\bjunk\b|blocked|block(ed)? for|access denied|banned|listed (at|on|in|by)|(your ip|ip address|client host|sending host|sender ip) (is )?(not allowed|prohibited|refused|rejected)|not (allowed|permitted) to send|bulk (mail|e-?mail|sender)|unsolicited|suspicious|abuse|complaints|denied by (policy|the recipient)",
        examples: &[
            "550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
            "550 Access denied...7d39d5299584f4be",
            "550 Error - Blocked for abuse. See http://example.net/policy",
            "550 5.7.606 Access denied, banned sending IP [192.0.2.1]",
            "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to user complaints",
        ],
    },
    TextRule {
        reason: Reason::Network,
        pattern: r"connection (timed out|refused|reset|lost|closed|dropped)|timed out|time-?out (while|during|on)|network (error|unreachable|is unreachable)|no route to host|host (is )?unreachable|(could|can)(not|'t) (connect|establish)|unable to connect|socket error|lost connection|connect to .{1,80}:\d+|did not accept our requests to connect|(tls|ssl) (handshake|negotiation|error|failed|required)|starttls|certificate (verify|verification|error)|temporary (lookup|dns|name)( resolution)? (failure|error)|dns (timeout|servfail)|service (not available|unavailable|temporarily unavailable)|remote protocol error|could not find a gateway|routing loop|mail loop|too many hops",
        examples: &[
            "connect to mx.example.org[192.0.2.79]:25: Connection timed out",
            "The recipient server did not accept our requests to connect. [example.org: socket error]",
            "ada@example.org: Network error on destination MXs",
            "554 <ada@example.org>... Remote protocol error",
            "421 4.3.2 Service not available, closing transmission channel",
        ],
    },
    TextRule {
        reason: Reason::Content,
        pattern: r"content|polic(y|ies)|header (error|is|too|syntax|not)|(message|mail) (was )?filtered|\bfiltered\b|filter|rfc ?(5322|2822|822)|not (rfc|compliant)|non-?compliant|malformed|bad (header|message)|invalid (header|message)|phish|\burls?\b|attachment|prohibited|not accepted here|rejected for policy",
        examples: &[
            "554 5.7.0 Header error",
            "550 5.0.0 <ada@example.org>: Message rejected: Policy violation",
            "550 5.2.0 Message Filtered",
            "550 5.7.1 Message is not RFC 5322 compliant",
        ],
    },
    TextRule {
        reason: Reason::Disabled,
        pattern: r"suspended|disabled|inactive|deactivated|account (is |has been )?(locked|frozen|blocked|on hold)|mailbox (is )?(locked|frozen|temporarily)|temporarily (disabled|unavailable|not available)|not (currently )?(active|enabled)|over the limit of inactive",
        examples: &[
            "554 delivery error: dd This user doesn't have a yahoo.com account (disabled)",
            "550 5.2.1 The email account that you tried to reach is disabled",
            "550 Mailbox temporarily suspended",
        ],
    },
    TextRule {
        reason: Reason::System,
        pattern: r"system (error|failure|not available|full)|(internal|server|local|temporary|configuration) (server )?(error|failure|problem)|mailer error|pipe to |failed to (read|write|execute|open)|i/o error|out of memory|insufficient system|resources? (temporarily )?unavailable|not enough (system )?(storage|resources)|transaction failed|try again later|please retry|deferred",
        examples: &[
            "554 5.3.0 system error, message could not be processed",
            "pipe to |/usr/local/bin/deliver: Failed to read response template",
            "452 4.3.1 Insufficient system storage",
        ],
    },
    // Hard rules from here on.
    TextRule {
        reason: Reason::Moved,
        pattern: r"has moved|(mailbox|address|user|recipient) (has )?moved|moved (to|permanently)|no longer (uses|at|with|works|accepts mail at)|new (e-?mail )?address is|forwarding address|changed (his|her|their) (e-?mail )?address",
        examples: &[
            "550 5.1.6 Recipient has moved to <ada@example.net>",
            "551 User not local; the mailbox has moved",
        ],
    },
    TextRule {
        reason: Reason::NoMailAccepted,
        pattern: r"(does not|doesn't|do not|will not) (accept|receive) (any )?(e-?mail|mail|messages)|accepts no (e-?mail|mail)|null mx|no mail (service|accepted|is accepted)|not accepting (any )?(e-?mail|mail)",
        examples: &[
            "556 5.1.10 Recipient address has null MX",
            "550 5.7.27 example.org does not accept mail (null MX)",
        ],
    },
    TextRule {
        reason: Reason::UnknownDomain,
        pattern: r"host (or domain name )?not found|(host|domain) (name )?(is )?unknown|unknown (host|domain)|no such (domain|host)|domain (does not|doesn't) exist|domain (name )?not found|unrou?t(e)?able|unable to route|no (mx|mail exchanger|valid mx|mx or a) (record|host)?|nxdomain|name or service not known|non-?existent (domain|host)|invalid domain|bad destination system|domain (is )?not (valid|configured|hosted)|cannot resolve|could not be resolved|host lookup failed|hostname lookup failed|dns error.{0,40}(not exist|nxdomain)",
        examples: &[
            "Host or domain name not found. Name service error for name=example.jp type=A: Host not found",
            "Unrouteable address",
            "550 5.1.2 Host unknown (Name server: example.org: host not found)",
            "DNS Error: Domain name not found",
        ],
    },
    TextRule {
        reason: Reason::UnknownUser,
        pattern: r"user ?unknown|unknown (user|recipient|mailbox|address|local ?part|e-?mail address|account)|no such (user|mailbox|recipient|address|account|person|local user|e-?mail)|(user|mailbox|recipient|address|account|e-?mail account|addressee)( name)? (does not|doesn't|doesnt|did not|does no longer) exist|(user|mailbox|recipient|address|account|addressee) (is )?(not found|unknown|invalid|not known|not valid)|(recipient|user|account|mailbox) not (found|available|listed)|invalid (recipient|mailbox|user|address|account|e-?mail address)|not (a )?(valid|known) (recipient|mailbox|user|address|e-?mail)|illegal alias|unknown or illegal|no mailbox (here|found|by that name)|mailbox (does not|doesn't) exist|(doesn't|does not) have an? .{1,60} account|bad destination mailbox|addressee unknown|not listed in (the )?(domino )?directory|not in (the )?directory|(is|was) not a valid mailbox|email account that you tried to reach does not exist|recipient rejected|no longer (valid|available|exists?)|account (has been )?(deleted|removed|closed|terminated)|ディレクトリのリストにありません|存在しません|宛先不明|не существует|нет такого|unbekannt|existiert nicht|n'existe pas|inexistant|no existe",
        examples: &[
            "550 5.1.1 <ada@example.org>... User Unknown",
            "550-5.1.1 The email account that you tried to reach does not exist",
            "550 5.1.1 unknown or illegal alias: ada@example.org",
            "550 <ada@example.org>: Recipient address rejected: User unknown in local recipient table",
            "550 ada@example.org... No such user",
            "Recipient Not Found",
            "This user doesn't have a example.org account (ada@example.org) [-9]",
            "ディレクトリのリストにありません",
            "550 5.1.1 Mailbox does not exist",
        ],
    },
];

/// The fallback table: the enhanced code alone, when no text rule matched.
pub static CODE_RULES: &[CodeRule] = &[
    CodeRule {
        reason: Reason::UnknownUser,
        codes: &["1.1", "1.3", "1.0"],
        examples: &["5.1.1", "550 5.1.3 Bad recipient address syntax"],
    },
    CodeRule {
        reason: Reason::UnknownDomain,
        codes: &["1.2", "4.4"],
        examples: &["5.1.2", "5.4.4"],
    },
    CodeRule {
        reason: Reason::Moved,
        codes: &["1.6"],
        examples: &["5.1.6"],
    },
    CodeRule {
        reason: Reason::NoMailAccepted,
        codes: &["1.10", "7.27"],
        examples: &["5.1.10", "5.7.27"],
    },
    CodeRule {
        reason: Reason::SenderRejected,
        codes: &["1.7", "1.8"],
        examples: &["5.1.8"],
    },
    CodeRule {
        reason: Reason::Disabled,
        codes: &["2.1"],
        examples: &["5.2.1"],
    },
    CodeRule {
        reason: Reason::MailboxFull,
        codes: &["2.2"],
        examples: &["5.2.2", "4.2.2"],
    },
    CodeRule {
        reason: Reason::TooLarge,
        codes: &["2.3", "3.4"],
        examples: &["5.3.4"],
    },
    CodeRule {
        reason: Reason::Expired,
        codes: &["4.7"],
        examples: &["4.4.7", "5.4.7"],
    },
    CodeRule {
        reason: Reason::Network,
        codes: &["4"],
        examples: &["4.4.1", "5.4.6"],
    },
    CodeRule {
        reason: Reason::System,
        codes: &["3", "2.4"],
        examples: &["4.3.0", "5.3.2"],
    },
    CodeRule {
        reason: Reason::Syntax,
        codes: &["5"],
        examples: &["5.5.0", "5.5.2"],
    },
    CodeRule {
        reason: Reason::Content,
        codes: &["6", "2.0"],
        examples: &["5.6.0", "5.2.0"],
    },
    CodeRule {
        reason: Reason::ReverseDns,
        codes: &["7.25"],
        examples: &["5.7.25"],
    },
    CodeRule {
        reason: Reason::Authentication,
        codes: &["7.23", "7.24", "7.26", "7.20", "7.21", "7.22"],
        examples: &["5.7.26"],
    },
    CodeRule {
        reason: Reason::Relaying,
        codes: &["7.1"],
        examples: &["5.7.1"],
    },
    CodeRule {
        reason: Reason::Blocked,
        codes: &["7"],
        examples: &["5.7.0", "5.7.606"],
    },
];

static COMPILED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    TEXT_RULES
        .iter()
        .map(|rule| {
            RegexBuilder::new(rule.pattern)
                .case_insensitive(true)
                .build()
                .expect("every rule pattern compiles")
        })
        .collect()
});

/// Addresses and URLs are masked before the rules read a text: `filtered@example.org` or
/// `https://example.org/reason/#blocked` say nothing about why delivery failed.
static NOISE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z]+://\S+|[a-z0-9!#$%&'*+=?^_`{}~.-]+@[a-z0-9.-]+").expect("regex")
});

/// Where in the SMTP conversation the remote server refused, as far as the report shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// In reply to `RCPT TO`, where servers check addresses.
    Recipient,
    /// In reply to `DATA` or the end of the data: the address was accepted at `RCPT TO`.
    Data,
    /// The report does not say.
    Unknown,
}

static DATA_STAGE: LazyLock<Regex> = LazyLock::new(|| {
    RegexBuilder::new(r"end of data|after data|in reply to data|failed after i sent the message|\(data\)|\[data\]|smtp command\W{0,12}data\b|did not like our data")
        .case_insensitive(true)
        .build()
        .expect("regex")
});

static RECIPIENT_STAGE: LazyLock<Regex> = LazyLock::new(|| {
    RegexBuilder::new(r"in reply to rcpt|after rcpt to|rcpt to command|does not like recipient|\[rcpt_to\]|did not like our rcpt|has rejected address|rejected the address")
        .case_insensitive(true)
        .build()
        .expect("regex")
});

/// Reads the stage from a session transcript (`>>> DATA` then `<<< 550 ...`: the command
/// right before the first refusal), else from the report's words.
pub fn stage_of(text: &str) -> Stage {
    let mut command: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix(">>>") {
            command = rest
                .split_whitespace()
                .next()
                .map(|w| w.to_ascii_uppercase());
        } else if let Some(rest) = line.strip_prefix("<<<") {
            let rest = rest.trim_start();
            if rest.starts_with('4') || rest.starts_with('5') {
                match command.as_deref() {
                    Some("DATA") => return Stage::Data,
                    Some("RCPT") => return Stage::Recipient,
                    _ => break,
                }
            }
        }
    }
    match (DATA_STAGE.is_match(text), RECIPIENT_STAGE.is_match(text)) {
        (true, false) => Stage::Data,
        (false, true) => Stage::Recipient,
        _ => Stage::Unknown,
    }
}

/// What a report shows about one failed recipient.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub status: Option<Status>,
    pub reply: Option<ReplyCode>,
    /// The diagnostic: the remote server's words, or the lines of the report about this
    /// recipient.
    pub text: &'a str,
    pub stage: Stage,
    /// A delay: the sender is still trying. Never hard.
    pub temporary: bool,
}

/// The verdict on one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub reason: Reason,
    pub hard: bool,
}

/// Classifies a failure from its enhanced status code, SMTP reply code and diagnostic text.
///
/// An unknown user is hard only with something beyond the words: an address status code
/// (`X.1.x`), or a refusal of `RCPT TO` itself. "User unknown" in reply to `DATA` means the
/// server accepted the address and a filter refused the sender (Japanese carriers answer
/// domain-filtered mail so), and words of unknown provenance are not enough to drop a
/// reader; such a bounce counts as soft, and `bounces.soft_limit` still catches a dead
/// address after a few issues.
pub fn classify(evidence: &Evidence<'_>) -> Verdict {
    let Evidence {
        status,
        reply,
        text,
        stage,
        temporary,
    } = *evidence;
    let text = NOISE.replace_all(text, " ");
    let policy_code = status.is_some_and(|s| s.subject == 7 && s.detail != 27);
    let by_text = TEXT_RULES
        .iter()
        .zip(COMPILED.iter())
        .find(|(rule, regex)| !(rule.reason.is_hard() && policy_code) && regex.is_match(&text))
        .map(|(rule, _)| rule.reason);
    let by_code = || {
        status.filter(|s| !s.is_generic()).and_then(|s| {
            CODE_RULES
                .iter()
                .find(|rule| rule.codes.iter().any(|c| s.matches(c)))
                .map(|rule| rule.reason)
        })
    };
    let reason = by_text.or_else(by_code).unwrap_or(Reason::Other);
    // A 4xx reply or 4.x.x code is temporary whatever the text says.
    let permanent = match (status, reply) {
        (Some(s), _) if s.class != 5 => false,
        (None, Some(r)) if r.class() != 5 => false,
        _ => true,
    };
    let confirmed = match reason {
        Reason::UnknownUser => {
            status.is_some_and(|s| s.subject == 1) || (stage == Stage::Recipient && !policy_code)
        }
        _ => true,
    };
    Verdict {
        reason,
        hard: reason.is_hard() && permanent && confirmed && !temporary,
    }
}

/// [`classify`] for one line of text, reading the codes and the stage from it: what the
/// synchronous path has (a 5xx reply during the SMTP session).
pub fn classify_reply(reply_text: &str) -> Verdict {
    classify(&Evidence {
        status: super::status::find_status(reply_text),
        reply: super::status::find_reply(reply_text),
        text: reply_text,
        stage: stage_of(reply_text),
        temporary: false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::status::{find_reply, find_status};
    use super::*;

    fn verdict(text: &str) -> Verdict {
        classify_reply(text)
    }

    #[test]
    fn every_text_rule_example_is_read_by_its_own_rule() {
        for rule in TEXT_RULES {
            for example in rule.examples {
                assert_eq!(verdict(example).reason, rule.reason, "{example:?}");
            }
        }
    }

    #[test]
    fn every_code_rule_example_is_read_by_its_own_rule() {
        for rule in CODE_RULES {
            for example in rule.examples {
                assert_eq!(verdict(example).reason, rule.reason, "{example:?}");
            }
        }
    }

    #[test]
    fn reasons_round_trip_through_their_names() {
        for reason in ALL {
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
        }
    }

    #[test]
    fn soft_text_beats_a_hard_looking_code() {
        let v = verdict("552 sorry, mailbox ada@example.org is over quota temporarily (#5.1.1)");
        assert_eq!((v.reason, v.hard), (Reason::MailboxFull, false));
        let v = verdict(
            "550 5.1.1 <ada@example.org> - 192.0.2.1 has sent to too many recipients this hour",
        );
        assert!(!v.hard);
    }

    #[test]
    fn a_policy_code_keeps_user_unknown_soft() {
        let v = verdict("550 5.7.1 550 User Unknown: ada@example.org");
        assert!(!v.hard, "{v:?}");
    }

    #[test]
    fn never_every_5xx_is_hard() {
        for text in [
            "550 5.7.1 Message rejected as spam",
            "554 5.7.1 Service unavailable; Client host blocked using zen.spamhaus.org",
            "550 5.0.0 Access denied",
            "550 Requested action not taken",
            "554 5.0.0 Transaction failed",
        ] {
            assert!(!verdict(text).hard, "{text}");
        }
    }

    #[test]
    fn temporary_failures_are_never_hard() {
        assert!(
            !verdict("450 4.1.1 <ada@example.org>: Recipient address rejected: User unknown").hard
        );
        let text = "550 5.1.1 User unknown";
        assert!(
            !classify(&Evidence {
                status: find_status(text),
                reply: find_reply(text),
                text,
                stage: Stage::Recipient,
                temporary: true,
            })
            .hard
        );
    }

    #[test]
    fn the_same_code_means_what_the_text_says() {
        // 5.2.1: "no such user" at one provider, "mailbox disabled" at another.
        assert!(
            verdict("550 5.2.1 <ada@example.org>... User Unknown (in reply to RCPT TO command)")
                .hard
        );
        assert!(!verdict("550 5.2.1 The email account that you tried to reach is disabled").hard);
        // A bare code decides only when the text says nothing.
        assert!(verdict("550 5.1.1").hard);
        assert!(!verdict("550 5.0.0").hard);
    }

    #[test]
    fn user_unknown_needs_an_address_code_or_a_refused_rcpt_to() {
        assert!(verdict("550 5.1.1 <ada@example.org>... User unknown").hard);
        assert!(
            verdict(">>> RCPT TO:<ada@example.org>\n<<< 550 <ada@example.org>: User unknown").hard
        );
        // After DATA the address was accepted: a filter speaking.
        assert!(!verdict(">>> DATA\n<<< 550 5.0.0 <ada@example.org>... User unknown").hard);
        assert!(!verdict("550 : User unknown (in reply to end of DATA command)").hard);
        // Words alone.
        assert!(!verdict("550 user unknown").hard);
        assert_eq!(verdict("550 user unknown").reason, Reason::UnknownUser);
    }

    #[test]
    fn addresses_and_urls_are_not_evidence() {
        let v = verdict("550 5.2.1 <filtered@example.org>... User Unknown [RCPT_TO]");
        assert_eq!((v.reason, v.hard), (Reason::UnknownUser, true));
        let v = verdict("550 5.1.1 User unknown. See https://example.org/reason/#blocked");
        assert_eq!(v.reason, Reason::UnknownUser);
    }
}
