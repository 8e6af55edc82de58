//! Where finished messages go: one or more relays, chosen per message by routes.
//!
//! [`Transport::from_settings`] builds the relay named `default` from `[smtp]` and one relay
//! per `[[smtp.relays]]` entry. Each relay's URL is one of:
//!
//! | URL | connection |
//! | --- | --- |
//! | `file://DIR` | one `.eml` file per message in DIR (the default, `file://outbox`) |
//! | `smtp://host[:25]` | STARTTLS when offered; plain text only to a loopback host, or with `tls = "none"` |
//! | `smtp+starttls://host[:587]` | STARTTLS required |
//! | `smtps://host[:465]` | TLS from the first byte |
//!
//! Certificates are always verified (webpki roots); there is no switch to turn that off.
//! Credentials are never sent over plain text to a host that is not on loopback.
//!
//! # Routes and failover
//!
//! `[[smtp.routes]]` send mail by recipient domain and by kind ([`MailKind`]: issues, or
//! sign-up notices) through a list of relays; the first route that matches wins, and mail
//! no route matches goes through `default`. When a relay is unusable (refused connection,
//! TLS or AUTH failure, a refused sender) the message goes to the next relay of its route,
//! and the relay is passed over for [`DOWN_FOR`] before it is tried again. When every relay
//! of the route is down, the outcome is [`SendOutcome::RelayDown`] and the send pauses.
//!
//! Each relay has its own pool (see `mail::pool`) and may have its own pace
//! (`rate_per_second`, a relay's own limit such as Amazon SES's), which every message
//! through it waits for. The dispatcher paces issues by relay and by destination before a
//! message gets here ([`Transport::relays`], [`Transport::relay_for`]), so this wait is short;
//! it also holds notices and test copies to the relay's pace.
//!
//! [`Transport::send`] reports a [`SendOutcome`] decided in `mail::reply`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::TlsParameters;
use secrecy::{ExposeSecret, SecretString};

use super::pool::{PoolConfig, Security, SmtpPool};
use super::{MailError, MailKind, OutgoingMail};
use crate::config::{SmtpSettings, DEFAULT_RELAY};
use crate::rate::RateLimit;

/// How long a relay found unusable is passed over when its route has another.
pub const DOWN_FOR: Duration = Duration::from_secs(30);

/// What became of one message handed to the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The relay accepted it (2xx after the data).
    Accepted { reply: String },
    /// Try again later: a 4xx reply, a timeout, or a connection lost mid-transaction (in which
    /// case the relay may or may not have taken the message). `throttled` when the reply asks
    /// herald to slow down (421, a 4.7.x policy deferral, "rate limited" and the like; see
    /// `mail::reply`) rather than saying something about this message.
    Transient { reply: String, throttled: bool },
    /// The relay refused it for good (5xx). Whether the address itself is bad is for the
    /// bounce rules to say ([`crate::bounces::classify_reply`]), as for returned mail.
    Permanent { reply: String },
    /// The relay as a whole is unusable (connection refused, TLS failure, authentication
    /// refused). Not this recipient's fault: the send pauses and no attempt is counted.
    RelayDown { reason: String },
}

impl SendOutcome {
    /// The outcome for a log line: its kind and the reply's codes (`transient 451 4.7.1`),
    /// never the reply's text, which may quote the recipient's address.
    pub fn summary(&self) -> String {
        let (kind, reply) = match self {
            Self::Accepted { reply } => ("accepted", reply.as_str()),
            Self::Transient {
                reply,
                throttled: false,
            } => ("transient", reply.as_str()),
            Self::Transient {
                reply,
                throttled: true,
            } => ("throttled", reply.as_str()),
            Self::Permanent { reply, .. } => ("permanent", reply.as_str()),
            Self::RelayDown { .. } => return "relay down".into(),
        };
        let codes: Vec<&str> = reply
            .split_whitespace()
            .take(2)
            .take_while(|word| {
                !word.is_empty() && word.chars().all(|c| c.is_ascii_digit() || c == '.')
            })
            .collect();
        if codes.is_empty() {
            kind.to_string()
        } else {
            format!("{kind} {}", codes.join(" "))
        }
    }
}

/// One relay as the dispatcher sees it, for pacing.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayInfo {
    pub name: String,
    /// Its `rate_per_second`, when it has one.
    pub rate_per_second: Option<f64>,
    /// How many messages it carries at once (its `pool_size`); `None` for a folder.
    pub in_flight: Option<u32>,
}

/// The relays and the routes between them.
pub struct Transport {
    relays: Vec<Relay>,
    routes: Vec<Route>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

struct Relay {
    name: String,
    sink: Sink,
    description: String,
    rate: Option<f64>,
    limiter: Option<RateLimit>,
    /// Until when the relay is passed over, after it was found unusable.
    down_until: Mutex<Option<Instant>>,
}

enum Sink {
    Smtp(Box<SmtpPool>),
    File { dir: PathBuf },
}

struct Route {
    /// Lower-case; empty matches every domain.
    domains: Vec<String>,
    kind: Option<MailKind>,
    /// Indexes into `Transport::relays`, in order of preference.
    relays: Vec<usize>,
}

impl Route {
    fn matches(&self, domain: &str, kind: MailKind) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && (self.domains.is_empty() || self.domains.iter().any(|d| d == domain))
    }
}

/// The settings one relay is built from, with the config keys to name in errors.
struct RelayInput<'a> {
    /// `smtp` or `smtp.relays[N]`.
    key: String,
    name: &'a str,
    url: &'a str,
    username: Option<&'a String>,
    password: Option<&'a SecretString>,
    tls: Option<&'a str>,
    pool_size: u32,
    timeout_seconds: u64,
    rate_per_second: f64,
    max_per_connection: u32,
}

impl Transport {
    /// Builds every relay and route from `[smtp]`. Errors name the key at fault.
    pub fn from_settings(smtp: &SmtpSettings) -> Result<Self, MailError> {
        let mut inputs = vec![RelayInput {
            key: "smtp".into(),
            name: DEFAULT_RELAY,
            url: &smtp.url,
            username: smtp.username.as_ref(),
            password: smtp.password.as_ref(),
            tls: smtp.tls.as_deref(),
            pool_size: smtp.pool_size,
            timeout_seconds: smtp.timeout_seconds,
            rate_per_second: smtp.rate_per_second,
            max_per_connection: smtp.max_per_connection,
        }];
        for (i, relay) in smtp.relays.iter().enumerate() {
            inputs.push(RelayInput {
                key: format!("smtp.relays[{i}]"),
                name: &relay.name,
                url: &relay.url,
                username: relay.username.as_ref(),
                password: relay.password.as_ref(),
                tls: relay.tls.as_deref(),
                pool_size: relay.pool_size,
                timeout_seconds: relay.timeout_seconds.unwrap_or(smtp.timeout_seconds),
                rate_per_second: relay.rate_per_second,
                max_per_connection: relay.max_per_connection,
            });
        }
        let relays = inputs
            .iter()
            .map(Relay::build)
            .collect::<Result<Vec<_>, _>>()?;
        let index = |name: &str, key: String| {
            relays
                .iter()
                .position(|r| r.name == name)
                .ok_or_else(|| MailError::Config {
                    key,
                    message: format!("no relay is called {name:?}"),
                })
        };
        let mut routes = Vec::new();
        for (i, route) in smtp.routes.iter().enumerate() {
            let key = format!("smtp.routes[{i}]");
            let kind = match route.kind.as_deref() {
                None => None,
                Some(kind) => Some(MailKind::parse(kind).ok_or_else(|| MailError::Config {
                    key: format!("{key}.kind"),
                    message: format!("{kind:?} is not \"issue\" or \"notice\""),
                })?),
            };
            let relays = route
                .relay_names()
                .into_iter()
                .map(|name| index(name, format!("{key}.relays")))
                .collect::<Result<Vec<_>, _>>()?;
            if relays.is_empty() {
                return Err(MailError::Config {
                    key: format!("{key}.relay"),
                    message: "a route needs at least one relay".into(),
                });
            }
            routes.push(Route {
                domains: route
                    .domains
                    .iter()
                    .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
                    .collect(),
                kind,
                relays,
            });
        }
        Ok(Self { relays, routes })
    }

    /// A description for logs and progress output. Never holds a secret.
    pub fn describe(&self) -> String {
        match self.relays.as_slice() {
            [only] => only.description.clone(),
            all => all
                .iter()
                .map(|r| format!("{} {}", r.name, r.description))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The most messages this transport should have in flight at once: the relays' pool
    /// sizes together, or `None` (unbounded) when a relay writes files.
    pub fn max_in_flight(&self) -> Option<u32> {
        self.relays
            .iter()
            .map(|r| match &r.sink {
                Sink::Smtp(pool) => Some(pool.size()),
                Sink::File { .. } => None,
            })
            .sum()
    }

    /// Every relay, in the order [`Transport::relay_for`] numbers them.
    pub fn relays(&self) -> Vec<RelayInfo> {
        self.relays
            .iter()
            .map(|r| RelayInfo {
                name: r.name.clone(),
                rate_per_second: r.rate,
                in_flight: match &r.sink {
                    Sink::Smtp(pool) => Some(pool.size()),
                    Sink::File { .. } => None,
                },
            })
            .collect()
    }

    /// The relay a message of `kind` to `domain` would go through now: the first of its
    /// route not passed over as down (or the first, when all are).
    pub fn relay_for(&self, domain: &str, kind: MailKind) -> usize {
        let route = self.route(domain, kind);
        let now = Instant::now();
        route
            .iter()
            .copied()
            .find(|&i| !self.relays[i].is_down(now))
            .unwrap_or(route[0])
    }

    /// Closes idle relay connections politely (QUIT). Sending again reconnects.
    pub async fn close(&self) {
        for relay in &self.relays {
            if let Sink::Smtp(pool) = &relay.sink {
                pool.close().await;
            }
        }
    }

    /// Hands `mail` to the relays of its route, in order, until one is usable, and
    /// classifies what happened.
    pub async fn send(&self, mail: &OutgoingMail) -> SendOutcome {
        let domain = mail
            .envelope_to()
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        let route = self.route(&domain, mail.kind());
        let now = Instant::now();
        // Relays up first, in route order; relays passed over as down after them.
        let (up, down): (Vec<usize>, Vec<usize>) =
            route.iter().partition(|&&i| !self.relays[i].is_down(now));
        // Why each relay tried was unusable, by its place in the route.
        let mut reasons: Vec<(usize, String)> = Vec::new();
        for i in up.into_iter().chain(down) {
            let relay = &self.relays[i];
            match relay.send(mail).await {
                SendOutcome::RelayDown { reason } => {
                    if route.len() > 1 {
                        tracing::warn!(relay = %relay.name, %reason, "relay unusable; trying the next one of the route");
                    }
                    relay.mark_down();
                    let place = route.iter().position(|&r| r == i).unwrap_or(i);
                    reasons.push((place, reason));
                }
                other => {
                    relay.mark_up();
                    return other;
                }
            }
        }
        // Every relay of the route, in route order, whichever was tried first.
        reasons.sort_by_key(|(place, _)| *place);
        let reason = match reasons.as_slice() {
            [] => "no relay".to_string(),
            [(_, only)] if route.len() == 1 => only.clone(),
            _ => reasons
                .iter()
                .map(|(place, reason)| {
                    format!("relay {}: {reason}", self.relays[route[*place]].name)
                })
                .collect::<Vec<_>>()
                .join("; "),
        };
        SendOutcome::RelayDown { reason }
    }

    fn route(&self, domain: &str, kind: MailKind) -> &[usize] {
        const DEFAULT: &[usize] = &[0];
        self.routes
            .iter()
            .find(|route| route.matches(domain, kind))
            .map_or(DEFAULT, |route| route.relays.as_slice())
    }
}

impl Relay {
    fn build(input: &RelayInput<'_>) -> Result<Self, MailError> {
        let key = |field: &str| format!("{}.{field}", input.key);
        let bad = |message: String| MailError::Config {
            key: key("url"),
            message,
        };
        let rate = (input.rate_per_second > 0.0).then_some(input.rate_per_second);
        let limiter = rate.map(|rate| {
            let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1));
            RateLimit::new(period, 1)
        });
        let relay = |sink, description| Relay {
            name: input.name.to_string(),
            sink,
            description,
            rate,
            limiter,
            down_until: Mutex::new(None),
        };
        if let Some(dir) = input.url.strip_prefix("file://") {
            if dir.is_empty() {
                return Err(bad("file:// needs a folder, as in file://outbox".into()));
            }
            let dir = PathBuf::from(dir);
            let description = format!("file://{}", dir.display());
            return Ok(relay(Sink::File { dir }, description));
        }
        let url = url::Url::parse(input.url).map_err(|e| bad(format!("{:?}: {e}", input.url)))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad(format!("{:?} has no host", input.url)))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(format!(
                "put credentials in {} and {}, not in the URL",
                key("username"),
                if input.key == "smtp" {
                    "HERALD__SMTP__PASSWORD".to_string()
                } else {
                    key("password_env")
                }
            )));
        }
        let loopback = is_loopback(&host);
        let tls_none = match input.tls {
            None => false,
            Some("none") => true,
            Some(other) => {
                return Err(MailError::Config {
                    key: key("tls"),
                    message: format!("{other:?} is not a choice; leave it unset or use \"none\""),
                })
            }
        };
        let parameters = || {
            TlsParameters::new(host.clone()).map_err(|e| MailError::Config {
                key: key("url"),
                message: format!("cannot set up TLS for {host}: {e}"),
            })
        };
        let (security, port, mode) = match url.scheme() {
            "smtp" if tls_none => (Security::None, 25, "plain text (tls = \"none\")"),
            "smtp" if loopback => (
                Security::Opportunistic(parameters()?),
                25,
                "STARTTLS when offered (loopback)",
            ),
            "smtp" => (Security::Required(parameters()?), 25, "STARTTLS required"),
            "smtp+starttls" => (Security::Required(parameters()?), 587, "STARTTLS required"),
            "smtps" => (Security::Wrapper(parameters()?), 465, "TLS"),
            other => {
                return Err(bad(format!(
                    "scheme {other}:// is not supported; use file://, smtp://, smtp+starttls:// or smtps://"
                )))
            }
        };
        let plain = matches!(security, Security::None | Security::Opportunistic(_));
        let port = url.port().unwrap_or(port);
        let credentials = match (input.username, input.password) {
            (Some(user), Some(password)) => {
                if plain && !loopback {
                    return Err(MailError::Config {
                        key: key("username"),
                        message: "refusing to send a password over plain text to a host that is not on loopback".into(),
                    });
                }
                Some(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_string(),
                ))
            }
            (Some(_), None) => {
                return Err(MailError::Config {
                    key: key("password"),
                    message: format!(
                        "{} is set but the password is not (set {})",
                        key("username"),
                        if input.key == "smtp" {
                            "HERALD__SMTP__PASSWORD".to_string()
                        } else {
                            key("password_env")
                        }
                    ),
                })
            }
            (None, Some(_)) => {
                return Err(MailError::Config {
                    key: key("username"),
                    message: "a password is set but no username".into(),
                })
            }
            (None, None) => None,
        };
        let description = format!("{}://{host}:{port} ({mode})", url.scheme());
        let pool = SmtpPool::new(PoolConfig {
            host,
            port,
            security,
            credentials,
            timeout: Duration::from_secs(input.timeout_seconds.max(1)),
            size: input.pool_size,
            max_per_connection: input.max_per_connection,
        });
        Ok(relay(Sink::Smtp(Box::new(pool)), description))
    }

    fn is_down(&self, now: Instant) -> bool {
        self.down_until
            .lock()
            .expect("relay lock")
            .is_some_and(|until| now < until)
    }

    fn mark_down(&self) {
        *self.down_until.lock().expect("relay lock") = Some(Instant::now() + DOWN_FOR);
    }

    fn mark_up(&self) {
        let mut down = self.down_until.lock().expect("relay lock");
        if down.is_some() {
            tracing::info!(relay = %self.name, "relay usable again");
            *down = None;
        }
    }

    async fn send(&self, mail: &OutgoingMail) -> SendOutcome {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        match &self.sink {
            Sink::Smtp(pool) => pool.send(mail, mail.kind() == MailKind::Notice).await,
            Sink::File { dir } => match write_eml(dir, mail).await {
                Ok(path) => SendOutcome::Accepted {
                    reply: format!("written to {}", path.display()),
                },
                Err(e) => SendOutcome::RelayDown {
                    reason: format!("cannot write to {}: {e}", dir.display()),
                },
            },
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Writes the message to `DIR/<message-id>.eml` through a temporary file and a rename, synced
/// to disk before it counts as sent.
async fn write_eml(dir: &Path, mail: &OutgoingMail) -> std::io::Result<PathBuf> {
    tokio::fs::create_dir_all(dir).await?;
    let stem: String = mail
        .message_id()
        .trim_matches(['<', '>'])
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{stem}.eml"));
    let tmp = dir.join(format!(".{stem}.tmp"));
    let bytes = mail.formatted();
    let file_tmp = tmp.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&file_tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()
    })
    .await
    .map_err(std::io::Error::other)??;
    tokio::fs::rename(&tmp, &path).await?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RelaySettings, RouteSettings};

    #[test]
    fn an_outcome_summary_keeps_the_codes_and_drops_the_text() {
        let refused = SendOutcome::Permanent {
            reply: "550 5.1.1 <ada@example.org>: user unknown".into(),
        };
        assert_eq!(refused.summary(), "permanent 550 5.1.1");
        let busy = SendOutcome::Transient {
            reply: "451 try again later".into(),
            throttled: false,
        };
        assert_eq!(busy.summary(), "transient 451");
        let slow = SendOutcome::Transient {
            reply: "421 4.7.0 slow down".into(),
            throttled: true,
        };
        assert_eq!(slow.summary(), "throttled 421 4.7.0");
        let lost = SendOutcome::Transient {
            reply: "connection lost: ada@example.org".into(),
            throttled: false,
        };
        assert_eq!(lost.summary(), "transient");
    }

    fn settings(url: &str) -> SmtpSettings {
        SmtpSettings {
            url: url.into(),
            ..SmtpSettings::default()
        }
    }

    fn relay(name: &str, url: &str) -> RelaySettings {
        RelaySettings {
            name: name.into(),
            url: url.into(),
            ..RelaySettings::default()
        }
    }

    #[tokio::test]
    async fn chooses_tls_by_scheme_and_host() {
        let d = |url: &str| Transport::from_settings(&settings(url)).unwrap().describe();
        assert_eq!(d("file://outbox"), "file://outbox");
        assert!(d("smtp://127.0.0.1:2525").ends_with("(STARTTLS when offered (loopback))"));
        assert!(d("smtp://mail.example.org").contains(":25 (STARTTLS required)"));
        assert!(d("smtp+starttls://mail.example.org").contains(":587 (STARTTLS required)"));
        assert!(d("smtps://mail.example.org").contains(":465 (TLS)"));
        let mut plain = settings("smtp://mail.example.org:2525");
        plain.tls = Some("none".into());
        assert!(Transport::from_settings(&plain)
            .unwrap()
            .describe()
            .contains("plain text"));
    }

    #[test]
    fn refuses_what_would_leak_or_cannot_work() {
        let err = |s: SmtpSettings| Transport::from_settings(&s).unwrap_err().to_string();
        assert!(err(settings("ftp://x.org")).contains("smtp.url"));
        assert!(err(settings("smtp://user:pw@x.org")).contains("not in the URL"));
        assert!(err(settings("file://")).contains("needs a folder"));
        let mut bad_tls = settings("smtp://x.org");
        bad_tls.tls = Some("off".into());
        assert!(err(bad_tls).contains("smtp.tls"));
        let mut cleartext = settings("smtp://mail.example.org");
        cleartext.tls = Some("none".into());
        cleartext.username = Some("u".into());
        cleartext.password = Some("secret-password".to_string().into());
        let message = err(cleartext);
        assert!(message.contains("plain text"), "{message}");
        assert!(!message.contains("secret-password"));
        let mut relay_url = settings("file://outbox");
        relay_url.relays.push(relay("cn", "gopher://x.org"));
        assert!(err(relay_url).contains("smtp.relays[0].url"));
    }

    #[tokio::test]
    async fn routes_choose_relays_by_domain_and_kind_and_default_takes_the_rest() {
        let mut s = settings("file://outbox");
        s.relays = vec![
            relay("cn", "smtp://127.0.0.1:2601"),
            relay("ses", "smtp://127.0.0.1:2602"),
            relay("notices", "file://notices"),
        ];
        s.routes = vec![
            RouteSettings {
                kind: Some("notice".into()),
                relay: Some("notices".into()),
                ..RouteSettings::default()
            },
            RouteSettings {
                domains: vec!["QQ.com".into(), "163.com".into()],
                relays: vec!["cn".into(), "ses".into()],
                ..RouteSettings::default()
            },
            RouteSettings {
                domains: vec!["gmail.com".into()],
                relay: Some("ses".into()),
                ..RouteSettings::default()
            },
        ];
        let t = Transport::from_settings(&s).unwrap();
        let names: Vec<String> = t.relays().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["default", "cn", "ses", "notices"]);
        let name = |domain: &str, kind| names[t.relay_for(domain, kind)].as_str();
        assert_eq!(name("qq.com", MailKind::Issue), "cn");
        assert_eq!(name("163.com", MailKind::Issue), "cn");
        assert_eq!(name("gmail.com", MailKind::Issue), "ses");
        assert_eq!(name("example.org", MailKind::Issue), "default");
        assert_eq!(name("qq.com", MailKind::Notice), "notices");
        assert_eq!(name("mail.qq.com", MailKind::Issue), "default");

        t.relays[1].mark_down();
        assert_eq!(name("qq.com", MailKind::Issue), "ses", "fails over");
        t.relays[1].mark_up();
        assert_eq!(name("qq.com", MailKind::Issue), "cn");
    }
}
