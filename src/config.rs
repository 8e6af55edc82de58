//! Typed settings: `config.toml`, then `HERALD__SECTION__KEY` environment overrides.
//!
//! Every key has a default, so herald runs with no file at all (SQLite file `./herald.db`,
//! mail written to `./outbox`). A key that is present but wrong is an error that names the
//! file and the key, and so is a key herald does not know (a typo would otherwise be ignored
//! silently). Secrets are held in [`SecretString`], whose `Debug` never shows the value.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Prefix of environment overrides: `HERALD__SMTP__PASSWORD=…` sets `smtp.password`.
pub const ENV_PREFIX: &str = "HERALD__";

/// Where `section.key` was set, for an error about its value: its environment override
/// (`HERALD__SECTION__KEY`) when the process has one, else `config_file`.
pub fn origin_of(section: &str, key: &str, config_file: &str) -> String {
    let var = format!(
        "{ENV_PREFIX}{}__{}",
        section.to_ascii_uppercase(),
        key.to_ascii_uppercase()
    );
    if std::env::var_os(&var).is_some() {
        var
    } else {
        config_file.to_string()
    }
}

/// Everything that can go wrong while reading settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// A TOML syntax error. Displays as `FILE:LINE:COLUMN: problem`; [`ConfigError::excerpt`]
    /// shows the offending line with a caret under the column.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
        /// The offending line as written.
        source_line: String,
    },
    #[error("{file}: `{key}`: {message}")]
    Key {
        file: String,
        key: String,
        message: String,
    },
    /// An environment override that herald cannot use, named by its variable.
    #[error("{var}: {message}")]
    Env { var: String, message: String },
    #[error("{0}")]
    Secret(String),
}

impl ConfigError {
    /// For a syntax error, the offending line and a caret under the column, to print below
    /// the one-line message:
    ///
    /// ```text
    ///    3 | url = sqlite://herald.db
    ///      |       ^
    /// ```
    pub fn excerpt(&self) -> Option<String> {
        let ConfigError::Syntax {
            line,
            column,
            source_line,
            ..
        } = self
        else {
            return None;
        };
        let number = line.to_string();
        let pad = " ".repeat(number.len());
        let before: String = source_line
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        Some(format!(
            "{number} | {source_line}\n{pad} | {before}^",
            source_line = source_line.trim_end()
        ))
    }
}

/// All of herald's settings, one field per `config.toml` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub newsletter: NewsletterSettings,
    pub database: DatabaseSettings,
    pub smtp: SmtpSettings,
    pub sending: SendingSettings,
    pub schedule: ScheduleSettings,
    pub web: WebSettings,
    pub bounces: BouncesSettings,
    pub webhooks: WebhookSettings,
    pub check: CheckSettings,
    pub node: NodeSettings,
    pub tracking: TrackingSettings,
    /// The settings file that was read; `None` when there was none and every value is an
    /// embedded default (or an environment override).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// `[newsletter]`: who sends, from where, and where issues and templates live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewsletterSettings {
    /// Shown in the header of every mail and page.
    pub name: String,
    /// The From header: `Name <address>` or a bare address.
    pub from: String,
    /// Optional Reply-To header.
    pub reply_to: Option<String>,
    /// Absolute URL of the public site; relative links in issues resolve against it, and
    /// unsubscribe/archive links are built from it.
    pub base_url: String,
    /// Postal address shown in every footer (required by CAN-SPAM and friends).
    pub postal_address: String,
    pub issues_dir: PathBuf,
    pub templates_dir: PathBuf,
    /// Files `herald serve` serves at the site's root: the images issues link to
    /// (`static/img/cover.png` is `{base_url}img/cover.png`).
    pub assets_dir: PathBuf,
    /// The largest issue file herald reads, in bytes; a larger one is refused with an error
    /// naming the file (see `issue::limits` for the bounds that are not settings).
    pub max_issue_bytes: u64,
    /// The List-Id header's identifier, e.g. `weekly.example.org`. Defaults to one derived
    /// from the From domain.
    pub list_id: Option<String>,
    /// Address for `mailto:` unsubscribe requests in List-Unsubscribe. Optional.
    pub unsubscribe_mailto: Option<String>,
    /// The consent wording shown above the sign-up button and stored with every sign-up
    /// (the consent record). Unset: the locale's own wording (`signup-consent`).
    pub consent: Option<String>,
    /// The BCP 47 tag of the language herald speaks to readers and editors in (`en`,
    /// `zh-CN`, or a locale under `locales_dir`). An issue's `lang:` overrides it.
    pub locale: String,
    /// Message catalogs (`<tag>/*.ftl`) over the built-in ones: a file here overrides the
    /// built-in messages it defines, and a new folder adds a language.
    pub locales_dir: PathBuf,
}

impl Default for NewsletterSettings {
    fn default() -> Self {
        Self {
            name: "Herald Weekly".into(),
            from: "Herald Weekly <newsletter@example.org>".into(),
            reply_to: None,
            base_url: "http://127.0.0.1:8080".into(),
            postal_address: "Set newsletter.postal_address in config.toml".into(),
            issues_dir: "issues".into(),
            templates_dir: "templates".into(),
            assets_dir: "static".into(),
            max_issue_bytes: crate::issue::IssueLimits::DEFAULT_MAX_BYTES,
            list_id: None,
            unsubscribe_mailto: None,
            consent: None,
            locale: "en".into(),
            locales_dir: "locales".into(),
        }
    }
}

impl NewsletterSettings {
    /// The bounds issue files are read under.
    pub fn issue_limits(&self) -> crate::issue::IssueLimits {
        crate::issue::IssueLimits {
            max_bytes: self.max_issue_bytes,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://herald.db".into(),
        }
    }
}

/// `[smtp]`: the default relay (or a folder of `.eml` files), DKIM, and any further relays
/// with the routes that choose between them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// `file://DIR`, `smtp://host:port`, `smtp+starttls://host:port` or `smtps://host:port`.
    pub url: String,
    pub username: Option<String>,
    /// Best given through `HERALD__SMTP__PASSWORD`.
    pub password: Option<SecretString>,
    /// `"none"` allows plain text to a non-loopback relay; otherwise leave unset.
    pub tls: Option<String>,
    pub pool_size: u32,
    pub timeout_seconds: u64,
    /// The most messages per second this relay takes (a relay's own limit, such as Amazon
    /// SES's); 0 means no limit.
    pub rate_per_second: f64,
    /// Messages sent over one connection before it is closed and a new one opened; 0 means
    /// no limit.
    pub max_per_connection: u32,
    pub dkim_selector: Option<String>,
    pub dkim_domain: Option<String>,
    pub dkim_key_file: Option<PathBuf>,
    /// Further relays (`[[smtp.relays]]`). `[smtp]` itself is the relay named `default`.
    pub relays: Vec<RelaySettings>,
    /// Which relays carry which mail (`[[smtp.routes]]`), the first match winning; mail no
    /// route matches goes through `default`.
    pub routes: Vec<RouteSettings>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            url: "file://outbox".into(),
            username: None,
            password: None,
            tls: None,
            pool_size: 8,
            timeout_seconds: 30,
            rate_per_second: 0.0,
            max_per_connection: 0,
            dkim_selector: None,
            dkim_domain: None,
            dkim_key_file: None,
            relays: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// The name of the relay `[smtp]` describes.
pub const DEFAULT_RELAY: &str = "default";

/// One `[[smtp.relays]]` entry: a relay besides `[smtp]`, with its own pool and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySettings {
    /// What routes call it: letters, digits, `-` and `_`.
    pub name: String,
    /// As `smtp.url`.
    pub url: String,
    pub username: Option<String>,
    /// The password itself; better kept out of the file with `password_env`.
    pub password: Option<SecretString>,
    /// The name of an environment variable holding the password.
    pub password_env: Option<String>,
    pub tls: Option<String>,
    pub pool_size: u32,
    /// Per SMTP command; `smtp.timeout_seconds` when left out.
    pub timeout_seconds: Option<u64>,
    pub rate_per_second: f64,
    pub max_per_connection: u32,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            name: String::new(),
            url: String::new(),
            username: None,
            password: None,
            password_env: None,
            tls: None,
            pool_size: 8,
            timeout_seconds: None,
            rate_per_second: 0.0,
            max_per_connection: 0,
        }
    }
}

/// One `[[smtp.routes]]` entry: mail to these domains, of this kind, goes through these
/// relays, the first that is up.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteSettings {
    /// Recipient domains (a subdomain does not match its parent); empty matches any.
    pub domains: Vec<String>,
    /// `"issue"` or `"notice"` (sign-up confirmation and welcome mails); unset matches both.
    pub kind: Option<String>,
    /// The relay, for a route with one.
    pub relay: Option<String>,
    /// The relays in order of preference, for a route that fails over.
    pub relays: Vec<String>,
}

impl RouteSettings {
    /// The relays this route names, in order.
    pub fn relay_names(&self) -> Vec<&str> {
        self.relay
            .iter()
            .chain(&self.relays)
            .map(String::as_str)
            .collect()
    }
}

/// `[sending]`: pacing and retry policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendingSettings {
    pub concurrency: u32,
    /// Messages per second; 0 means no limit.
    pub rate_per_second: u32,
    pub batch_size: u32,
    pub max_attempts: u32,
    pub retry_base_seconds: u64,
    pub retry_max_seconds: u64,
    pub give_up_after_hours: u64,
    /// How long a claimed row stays reserved without a heartbeat: after a crash, the next
    /// run takes the row back after this many seconds.
    pub lease_seconds: u64,
    /// The most messages per second to one mailbox provider (see `providers`), or to one
    /// domain that belongs to none, unless the provider's own entry says otherwise; 0 means
    /// no limit. A provider that throttles herald is slowed down whatever this says.
    pub provider_rate_per_second: f64,
    /// Mailbox providers beyond (or added to) the built-in ones (`[[sending.providers]]`).
    pub providers: Vec<ProviderSettings>,
}

/// One `[[sending.providers]]` entry: domains whose mail one provider receives, paced as
/// one group. An entry named like a built-in provider (`google`, `microsoft`, `yahoo`,
/// `apple`, `tencent`, `netease`) adds its domains to it and may set its rate.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderSettings {
    pub name: String,
    /// `example.com`, or `example.*` for the name under any top-level domain.
    pub domains: Vec<String>,
    /// Messages per second to this provider; `sending.provider_rate_per_second` when unset.
    pub rate_per_second: Option<f64>,
}

impl Default for SendingSettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            rate_per_second: 0,
            batch_size: 500,
            max_attempts: 8,
            retry_base_seconds: 60,
            retry_max_seconds: 3600,
            give_up_after_hours: 48,
            lease_seconds: 20,
            provider_rate_per_second: 0.0,
            providers: Vec::new(),
        }
    }
}

/// `[schedule]`: when the next issue goes out on its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSettings {
    /// Seconds first, as the `cron` crate reads it. Use day names: the crate counts Sunday as 1.
    pub cron: String,
    pub timezone: String,
    pub max_lateness_minutes: u64,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            cron: "0 0 9 * * Fri".into(),
            timezone: "UTC".into(),
            max_lateness_minutes: 120,
        }
    }
}

/// `[web]`: the HTTP server and its secrets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSettings {
    pub bind: String,
    /// Bearer token for `/api/` and the dashboard. Best given through `HERALD__WEB__ADMIN_TOKEN`;
    /// when unset, a random token is created in `admin_token_file`.
    pub admin_token: Option<SecretString>,
    /// Where the admin token is kept when `admin_token` is unset (created with mode 0600).
    pub admin_token_file: PathBuf,
    /// Key for unsubscribe and confirmation tokens. Best given through
    /// `HERALD__WEB__SECRET_KEY`; when unset, a random key is created in `secret_key_file`.
    pub secret_key: Option<SecretString>,
    pub secret_key_file: PathBuf,
    /// Sign-ups accepted per client IP per minute (`POST /subscribe`); 0 means no limit.
    pub signup_per_ip_per_minute: u32,
    /// Wrong admin tokens (API or dashboard login) per client IP per minute before that IP
    /// is locked out for the rest of the minute; 0 means no lockout.
    pub admin_failures_per_minute: u32,
    /// Addresses of reverse proxies in front of herald. A request from one of them is taken
    /// to come from the address its `X-Forwarded-For` names (the rightmost entry that is not
    /// itself a trusted proxy); from anywhere else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Time a client has to send a request's whole header, counted from its first byte (or
    /// from connecting); a slower client is disconnected.
    pub header_timeout_seconds: u64,
    /// Time a client has to send a request's whole body once the header has arrived; a
    /// slower one gets 408 and is disconnected.
    pub body_timeout_seconds: u64,
    /// How long a kept-alive connection may wait idle for its next request.
    pub keep_alive_seconds: u64,
    /// Connections served at once; more wait in the kernel's backlog until one closes.
    pub max_connections: u32,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            admin_token: None,
            admin_token_file: "herald.admin-token".into(),
            secret_key: None,
            secret_key_file: "herald.secret".into(),
            signup_per_ip_per_minute: 10,
            admin_failures_per_minute: crate::editor::AuthThrottle::MAX_FAILURES,
            trusted_proxies: Vec::new(),
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            keep_alive_seconds: 15,
            max_connections: 256,
        }
    }
}

/// `[bounces]`: the return path, the policy, and where returned mail comes in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BouncesSettings {
    /// The envelope sender of every copy, `bounces@news.example.org`; each copy carries
    /// `bounces+TOKEN@news.example.org`, naming its delivery. Unset: the From address, as
    /// before, and returned mail cannot be matched by token.
    pub return_path: Option<String>,
    /// Soft bounces on this many consecutive issues (none delivered in between) mark a
    /// subscriber bounced.
    pub soft_limit: u32,
    /// Where `herald serve` listens for returned mail over SMTP (`0.0.0.0:2525`); point the
    /// return-path domain's MX at it. Unset: no listener.
    pub smtp_bind: Option<String>,
    /// The name the listener greets with (EHLO); the machine's host name when unset.
    pub smtp_hostname: Option<String>,
    /// PEM certificate chain and key: the listener offers STARTTLS when both are set.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Largest returned mail accepted, in bytes (larger gets 552).
    pub max_message_bytes: usize,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: u32,
    /// Idle time allowed per SMTP command or data chunk before the listener hangs up.
    pub timeout_seconds: u64,
    /// `imaps://user@host/INBOX` (or `imap://` on loopback): a mailbox polled for returned
    /// mail. Unset: no poller.
    pub imap_url: Option<String>,
    /// Best given through `HERALD__BOUNCES__IMAP_PASSWORD`.
    pub imap_password: Option<SecretString>,
    pub imap_poll_seconds: u64,
}

impl Default for BouncesSettings {
    fn default() -> Self {
        Self {
            return_path: None,
            soft_limit: 3,
            smtp_bind: None,
            smtp_hostname: None,
            tls_cert: None,
            tls_key: None,
            max_message_bytes: 10 * 1024 * 1024,
            max_connections: 64,
            timeout_seconds: 60,
            imap_url: None,
            imap_password: None,
            imap_poll_seconds: 60,
        }
    }
}

/// `[check]`: what `herald check` and every send leave out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckSettings {
    /// Rule ids turned off for every issue (`herald check` lists the rules in its README
    /// section); an error rule turned off no longer stops a send.
    pub allow: Vec<String>,
}

/// What one kind of tracking records (see the README's "What each tracking mode stores").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackingMode {
    /// Nothing: links stay as written, no image is added, and nothing is recorded.
    #[default]
    Off,
    /// Counts per issue (and link), and unique readers as a per-issue keyed hash that the
    /// database alone cannot join back to a subscriber.
    Aggregate,
    /// As `aggregate`, and which subscriber clicked or opened, for list cleaning.
    Individual,
}

impl TrackingMode {
    /// Whether anything is tracked.
    pub fn is_on(self) -> bool {
        self != Self::Off
    }

    /// `off`, `aggregate` or `individual`, as the settings write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Aggregate => "aggregate",
            Self::Individual => "individual",
        }
    }
}

/// `[tracking]`: click and open tracking, both off unless the editor turns them on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingSettings {
    /// Links in issues rewritten to `{base_url}/l/{link}/{token}`.
    pub clicks: TrackingMode,
    /// A 1x1 image at `{base_url}/o/{token}.gif` in the HTML part.
    pub opens: TrackingMode,
    /// The sentence added to the sign-up form's consent text while tracking is on. Unset:
    /// the locale's own (`signup-consent-tracking`).
    pub notice: Option<String>,
}

impl TrackingSettings {
    /// Whether clicks or opens are tracked.
    pub fn any(&self) -> bool {
        self.clicks.is_on() || self.opens.is_on()
    }
}

/// `[node]`: this process as one node of several sharing a database.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSettings {
    /// The node's id in `herald status`, the dashboard and each delivery row it sends:
    /// letters, digits, `.`, `-` and `_`. When unset, the host name plus a short random
    /// suffix, new at every start.
    pub id: Option<String>,
}

impl Settings {
    /// This process's node id: `node.id`, or a new one (see [`crate::nodes::NodeId`]).
    pub fn node_id(&self) -> crate::nodes::NodeId {
        self.node
            .id
            .as_deref()
            .and_then(|id| crate::nodes::NodeId::parse(id).ok())
            .unwrap_or_else(crate::nodes::NodeId::generate)
    }
}

/// `[webhooks]`: returned-mail notifications from sending services, at `/webhooks/...`.
/// Each endpoint answers 404 until its secret is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// SNS topic ARNs whose messages `/webhooks/ses` accepts (SES through SNS).
    pub ses_topic_arns: Vec<String>,
    /// Basic-auth credentials Postmark must send to `/webhooks/postmark`.
    pub postmark_username: Option<String>,
    pub postmark_password: Option<SecretString>,
    /// Mailgun's HTTP webhook signing key, for `/webhooks/mailgun`.
    pub mailgun_signing_key: Option<SecretString>,
    /// SendGrid's signed event webhook verification key (base64 of the ECDSA public key),
    /// for `/webhooks/sendgrid`.
    pub sendgrid_public_key: Option<String>,
    /// Signed notifications older (or newer) than this are refused as replays.
    pub max_age_seconds: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            ses_topic_arns: Vec::new(),
            postmark_username: None,
            postmark_password: None,
            mailgun_signing_key: None,
            sendgrid_public_key: None,
            max_age_seconds: 300,
        }
    }
}

impl Settings {
    /// Reads `path` (a missing file at the default location means "all defaults"), then
    /// applies `HERALD__SECTION__KEY` overrides from the process environment.
    pub fn load(path: &Path, must_exist: bool) -> Result<Self, ConfigError> {
        Self::load_with_env(path, must_exist, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given explicitly (for tests).
    ///
    /// Relative paths written in the file (and the defaults of the keys it leaves out) are
    /// relative to the file's folder, so `herald --config /srv/news/config.toml` finds
    /// `/srv/news/herald.db` from any working directory. Relative paths from environment
    /// overrides, and every path when there is no file, are relative to the working
    /// directory.
    pub fn load_with_env(
        path: &Path,
        must_exist: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let (text, found) = match std::fs::read_to_string(path) {
            Ok(text) => (text, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                (String::new(), false)
            }
            Err(source) => return Err(ConfigError::Read { file, source }),
        };
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| syntax_error(&file, &text, &e))?;
        // `section.key` → the variable that set it.
        let mut from_env: Vec<(String, String)> = Vec::new();
        let env: Vec<(String, String)> = env.into_iter().collect();
        for (var, value) in env.iter().cloned() {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let [section, key] = parts.as_slice() else {
                return Err(ConfigError::Env {
                    var,
                    message: "not a setting: overrides are named HERALD__SECTION__KEY, \
                              as in HERALD__SMTP__URL"
                        .into(),
                });
            };
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(entry) = entry else {
                return Err(ConfigError::Env {
                    var,
                    message: format!("[{section}] in {file} is not a table"),
                });
            };
            entry.insert(key.clone(), env_value(&value));
            from_env.push((format!("{section}.{key}"), var));
        }
        let env_var = |key: &str| {
            from_env
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, var)| var.clone())
        };
        let mut settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let message = plain_message(&e.inner().to_string());
                let key = e.path().to_string();
                // An unknown key is reported at its section: name it in full.
                let unknown = unknown_field(&message).map(|field| match key.as_str() {
                    "" | "." => field.to_string(),
                    path if path == field || path.ends_with(&format!(".{field}")) => {
                        path.to_string()
                    }
                    section => format!("{section}.{field}"),
                });
                let from_env = unknown
                    .as_deref()
                    .and_then(|k| {
                        // An unknown section: any variable naming it.
                        env_var(k).or_else(|| {
                            from_env
                                .iter()
                                .find(|(env_key, _)| env_key.split('.').next() == Some(k))
                                .map(|(_, var)| var.clone())
                        })
                    })
                    .or_else(|| env_var(&key));
                match (from_env, unknown) {
                    (Some(var), Some(unknown)) => ConfigError::Env {
                        var,
                        message: format!("herald has no setting {unknown}"),
                    },
                    (Some(var), None) => ConfigError::Env { var, message },
                    (None, Some(unknown)) => ConfigError::Key {
                        file: file.clone(),
                        key: unknown,
                        message: "herald has no such setting".into(),
                    },
                    (None, None) => ConfigError::Key {
                        file: file.clone(),
                        key,
                        message,
                    },
                }
            })?;
        for (i, relay) in settings.smtp.relays.iter_mut().enumerate() {
            let Some(var) = &relay.password_env else {
                continue;
            };
            match env.iter().find(|(name, _)| name == var) {
                Some((_, value)) => relay.password = Some(SecretString::from(value.clone())),
                None => {
                    return Err(ConfigError::Key {
                        file: file.clone(),
                        key: format!("smtp.relays[{i}].password_env"),
                        message: format!("the environment variable {var} is not set"),
                    })
                }
            }
        }
        settings.check(&file, &env_var)?;
        if found {
            settings.file = Some(path.to_path_buf());
            let base = path.parent().unwrap_or(Path::new(""));
            settings.resolve_paths(base, &|key| env_var(key).is_some());
        }
        Ok(settings)
    }

    /// Makes the relative paths of the keys `from_env` does not claim relative to `base`.
    fn resolve_paths(&mut self, base: &Path, from_env: &dyn Fn(&str) -> bool) {
        if base.as_os_str().is_empty() || base == Path::new(".") {
            return;
        }
        let join = |key: &str, path: &mut PathBuf| {
            if !from_env(key) && path.is_relative() && !path.as_os_str().is_empty() {
                *path = base.join(&*path);
            }
        };
        join("newsletter.issues_dir", &mut self.newsletter.issues_dir);
        join(
            "newsletter.templates_dir",
            &mut self.newsletter.templates_dir,
        );
        join("newsletter.assets_dir", &mut self.newsletter.assets_dir);
        join("newsletter.locales_dir", &mut self.newsletter.locales_dir);
        join("web.admin_token_file", &mut self.web.admin_token_file);
        join("web.secret_key_file", &mut self.web.secret_key_file);
        if let Some(key_file) = &mut self.smtp.dkim_key_file {
            join("smtp.dkim_key_file", key_file);
        }
        if !from_env("database.url") {
            if let Some(url) = resolve_sqlite_url(&self.database.url, base) {
                self.database.url = url;
            }
        }
        if !from_env("smtp.url") {
            if let Some(dir) = self.smtp.url.strip_prefix("file://") {
                let dir = Path::new(dir);
                if dir.is_relative() && !dir.as_os_str().is_empty() {
                    self.smtp.url = format!("file://{}", base.join(dir).display());
                }
            }
        }
    }

    /// The SQLite database file `database.url` names (`None` for an in-memory database or
    /// another kind of URL), for messages.
    pub fn database_file(&self) -> Option<PathBuf> {
        let (path, _) = sqlite_path(&self.database.url)?;
        (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
    }

    /// Checks that need more than a type: URLs that must parse, numbers that must be positive.
    /// A value set by an environment override is reported under its variable's name.
    fn check(
        &self,
        file: &str,
        env_var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| match env_var(key) {
            Some(var) => ConfigError::Env { var, message },
            None => ConfigError::Key {
                file: file.to_string(),
                key: key.to_string(),
                message,
            },
        };
        if let Some(id) = &self.node.id {
            crate::nodes::NodeId::parse(id).map_err(|e| bad("node.id", e.to_string()))?;
        }
        let base = url::Url::parse(&self.newsletter.base_url)
            .map_err(|e| bad("newsletter.base_url", format!("not an absolute URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad(
                "newsletter.base_url",
                "must be an http:// or https:// URL".into(),
            ));
        }
        if self
            .newsletter
            .consent
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err(bad(
                "newsletter.consent",
                "must not be empty (leave it out for the locale's wording)".into(),
            ));
        }
        if self
            .newsletter
            .locale
            .parse::<unic_langid::LanguageIdentifier>()
            .is_err()
        {
            return Err(bad(
                "newsletter.locale",
                format!(
                    "{:?} is not a BCP 47 language tag (like en, zh-CN or pt-BR)",
                    self.newsletter.locale
                ),
            ));
        }
        let unknown = crate::check::unknown_rules(&self.check.allow);
        if !unknown.is_empty() {
            return Err(bad(
                "check.allow",
                format!(
                    "no rule is called {} (herald check's rules are listed in the README)",
                    unknown.join(", ")
                ),
            ));
        }
        if self.newsletter.name.trim().is_empty() || self.newsletter.name.contains(['\r', '\n']) {
            return Err(bad("newsletter.name", "must be one non-empty line".into()));
        }
        if self.sending.concurrency == 0 {
            return Err(bad("sending.concurrency", "must be at least 1".into()));
        }
        if self.sending.batch_size == 0 {
            return Err(bad("sending.batch_size", "must be at least 1".into()));
        }
        if self.sending.max_attempts == 0 {
            return Err(bad("sending.max_attempts", "must be at least 1".into()));
        }
        if let Some(problem) = smtp_url_problem(&self.smtp.url) {
            return Err(bad(
                "smtp.url",
                format!(
                    "{:?} {problem}: use file://DIR (a folder of .eml files), \
                     smtp://host[:port], smtp+starttls://host[:port] or smtps://host[:port]",
                    self.smtp.url
                ),
            ));
        }
        self.check_providers(file)?;
        if self.smtp.pool_size == 0 {
            return Err(bad("smtp.pool_size", "must be at least 1".into()));
        }
        self.check_relays(file)?;
        if self.bounces.soft_limit == 0 {
            return Err(bad("bounces.soft_limit", "must be at least 1".into()));
        }
        for (key, value) in [
            (
                "web.header_timeout_seconds",
                self.web.header_timeout_seconds,
            ),
            ("web.body_timeout_seconds", self.web.body_timeout_seconds),
            ("web.keep_alive_seconds", self.web.keep_alive_seconds),
            ("web.max_connections", u64::from(self.web.max_connections)),
        ] {
            if value == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if self.bounces.max_connections == 0 {
            return Err(bad("bounces.max_connections", "must be at least 1".into()));
        }
        if self.bounces.max_message_bytes < 1024 {
            return Err(bad(
                "bounces.max_message_bytes",
                "must be at least 1024".into(),
            ));
        }
        if self.bounces.tls_cert.is_some() != self.bounces.tls_key.is_some() {
            return Err(bad(
                "bounces.tls_cert",
                "STARTTLS needs both tls_cert and tls_key".into(),
            ));
        }
        if let Some(rp) = &self.bounces.return_path {
            crate::domain::ReturnPath::parse(rp)
                .map_err(|e| bad("bounces.return_path", e.to_string()))?;
        }
        let dkim = [
            self.smtp.dkim_selector.is_some(),
            self.smtp.dkim_domain.is_some(),
            self.smtp.dkim_key_file.is_some(),
        ];
        if dkim.contains(&true) && dkim.contains(&false) {
            return Err(bad(
                "smtp.dkim_selector",
                "DKIM needs all three of dkim_selector, dkim_domain and dkim_key_file".into(),
            ));
        }
        Ok(())
    }

    /// `[[sending.providers]]`: names, domains and rates that make sense.
    fn check_providers(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: String, message: String| ConfigError::Key {
            file: file.to_string(),
            key,
            message,
        };
        let rate_ok = |rate: f64| rate.is_finite() && rate >= 0.0;
        if !rate_ok(self.sending.provider_rate_per_second) {
            return Err(bad(
                "sending.provider_rate_per_second".into(),
                "must be 0 (no limit) or a positive number".into(),
            ));
        }
        for (i, provider) in self.sending.providers.iter().enumerate() {
            let key = |field: &str| format!("sending.providers[{i}].{field}");
            if provider.name.trim().is_empty() {
                return Err(bad(key("name"), "is required".into()));
            }
            if let Some(domain) = provider.domains.iter().find(|d| {
                let d = d.trim();
                d.is_empty()
                    || d.contains(['@', ' '])
                    || (d.contains('*') && !(d.ends_with(".*") && d.matches('*').count() == 1))
            }) {
                return Err(bad(
                    key("domains"),
                    format!("{domain:?} is not a domain like example.com or example.*"),
                ));
            }
            if provider.rate_per_second.is_some_and(|r| !rate_ok(r)) {
                return Err(bad(
                    key("rate_per_second"),
                    "must be 0 (no limit) or a positive number".into(),
                ));
            }
        }
        Ok(())
    }

    /// `[[smtp.relays]]` and `[[smtp.routes]]`: names that are unique and known, numbers in
    /// range. URLs and credentials are checked where the relays are built (`mail`).
    fn check_relays(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: String, message: String| ConfigError::Key {
            file: file.to_string(),
            key,
            message,
        };
        let rate_ok = |rate: f64| rate.is_finite() && rate >= 0.0;
        if !rate_ok(self.smtp.rate_per_second) {
            return Err(bad(
                "smtp.rate_per_second".into(),
                "must be 0 (no limit) or a positive number".into(),
            ));
        }
        let mut names = vec![DEFAULT_RELAY];
        for (i, relay) in self.smtp.relays.iter().enumerate() {
            let key = |field: &str| format!("smtp.relays[{i}].{field}");
            let name_ok = !relay.name.is_empty()
                && relay
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if !name_ok {
                return Err(bad(
                    key("name"),
                    format!(
                        "{:?} is not a relay name (letters, digits, '-' and '_')",
                        relay.name
                    ),
                ));
            }
            if names.contains(&relay.name.as_str()) {
                let message = if relay.name == DEFAULT_RELAY {
                    "\"default\" is the relay [smtp] describes; pick another name".to_string()
                } else {
                    format!("another relay is already called {:?}", relay.name)
                };
                return Err(bad(key("name"), message));
            }
            names.push(&relay.name);
            if relay.url.trim().is_empty() {
                return Err(bad(key("url"), "is required".into()));
            }
            if relay.pool_size == 0 {
                return Err(bad(key("pool_size"), "must be at least 1".into()));
            }
            if !rate_ok(relay.rate_per_second) {
                return Err(bad(
                    key("rate_per_second"),
                    "must be 0 (no limit) or a positive number".into(),
                ));
            }
        }
        for (i, route) in self.smtp.routes.iter().enumerate() {
            let key = |field: &str| format!("smtp.routes[{i}].{field}");
            let relays = route.relay_names();
            if relays.is_empty() {
                return Err(bad(
                    key("relay"),
                    "a route needs `relay = \"name\"` or `relays = [\"first\", \"fallback\"]`"
                        .into(),
                ));
            }
            if let Some(unknown) = relays.iter().find(|name| !names.contains(name)) {
                return Err(bad(
                    key("relays"),
                    format!(
                        "no relay is called {unknown:?} (known: {})",
                        names.join(", ")
                    ),
                ));
            }
            if let Some(kind) = &route.kind {
                if !matches!(kind.as_str(), "issue" | "notice") {
                    return Err(bad(
                        key("kind"),
                        format!("{kind:?} is not \"issue\" or \"notice\""),
                    ));
                }
            }
            if let Some(domain) = route
                .domains
                .iter()
                .find(|d| d.trim().is_empty() || d.contains(['@', ' ', '*']))
            {
                return Err(bad(
                    key("domains"),
                    format!("{domain:?} is not a domain like example.org"),
                ));
            }
        }
        Ok(())
    }

    /// The key that signs unsubscribe and confirmation tokens: `web.secret_key` if set,
    /// otherwise the contents of `web.secret_key_file`, created with a random key (mode 0600)
    /// on first use.
    pub fn secret_key(&self) -> Result<SecretString, ConfigError> {
        if let Some(key) = &self.web.secret_key {
            if key.expose_secret().len() < 16 {
                return Err(ConfigError::Secret(
                    "web.secret_key must be at least 16 characters".into(),
                ));
            }
            return Ok(key.clone());
        }
        read_or_create_secret(&self.web.secret_key_file, 16, "key")
    }

    /// The bearer token of the editor API and the dashboard: `web.admin_token` if set (at
    /// least [`ADMIN_TOKEN_MIN_LEN`] characters), otherwise the contents of
    /// `web.admin_token_file`, created with a random token (mode 0600) on first use, so
    /// `herald serve` on the defaults has an editor login. The source says which, so
    /// `herald serve` can tell the editor where the file is (never the token itself).
    pub fn admin_token(&self) -> Result<(SecretString, AdminTokenSource), ConfigError> {
        if let Some(token) = &self.web.admin_token {
            if token.expose_secret().trim().len() < ADMIN_TOKEN_MIN_LEN {
                return Err(ConfigError::Secret(format!(
                    "web.admin_token must be at least {ADMIN_TOKEN_MIN_LEN} characters"
                )));
            }
            let token = SecretString::from(token.expose_secret().trim().to_string());
            return Ok((token, AdminTokenSource::Configured));
        }
        let path = &self.web.admin_token_file;
        let token = read_or_create_secret(path, ADMIN_TOKEN_MIN_LEN, "admin token")?;
        Ok((token, AdminTokenSource::File(path.clone())))
    }
}

/// The shortest admin token herald accepts.
pub const ADMIN_TOKEN_MIN_LEN: usize = 24;

/// Where the admin token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminTokenSource {
    /// `web.admin_token` (the environment or `config.toml`).
    Configured,
    /// The file `web.admin_token_file`, created on first use when missing.
    File(PathBuf),
}

/// The trimmed contents of the secret file at `path` (at least `min_len` characters), or a
/// new random secret of 64 hex digits written there with mode 0600 when the file is missing.
fn read_or_create_secret(
    path: &Path,
    min_len: usize,
    what: &str,
) -> Result<SecretString, ConfigError> {
    let fail = |e: std::io::Error| {
        ConfigError::Secret(format!("{}: cannot use {what} file: {e}", path.display()))
    };
    match std::fs::read_to_string(path) {
        Ok(key) if key.trim().len() >= min_len => Ok(SecretString::from(key.trim().to_string())),
        Ok(_) => Err(ConfigError::Secret(format!(
            "{}: {what} file holds fewer than {min_len} characters",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand::RngCore;
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            match write_private(path, &key) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), "created a new {what}");
                    Ok(SecretString::from(key))
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    read_or_create_secret(path, min_len, what)
                }
                Err(e) => Err(fail(e)),
            }
        }
        Err(e) => Err(fail(e)),
    }
}

/// Writes `contents` to a new file readable only by its owner. The file appears whole or
/// not at all (written beside it, then linked into place without replacing anything), so
/// two processes creating it at once never see a half-written secret: the loser gets
/// `AlreadyExists` and reads the winner's.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // tempfile creates the file with mode 0600 on Unix.
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(contents.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist_noclobber(path).map_err(|e| e.error)?;
    Ok(())
}

/// An environment value is read as a TOML value when it is one (`8`, `true`, `"x"`),
/// and as a plain string otherwise.
fn env_value(raw: &str) -> toml::Value {
    let parsed: Result<toml::Table, _> = toml::from_str(&format!("v = {raw}"));
    match parsed.ok().and_then(|mut t| t.remove("v")) {
        Some(
            value @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_)),
        ) => value,
        _ => toml::Value::String(raw.to_string()),
    }
}

/// A TOML syntax error with its line, column and the offending line.
fn syntax_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e.span().map_or(0, |span| span.start).min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    ConfigError::Syntax {
        file: file.to_string(),
        line: text[..at].matches('\n').count() + 1,
        column: text[line_start..at].chars().count() + 1,
        message: syntax_message(e.message()),
        source_line: text[line_start..line_end].to_string(),
    }
}

/// A deserialiser's message in the words of the file: `expected an integer` rather than
/// `expected u32`, without the key the error already names.
fn plain_message(message: &str) -> String {
    let mut message = one_line(message);
    if let Some(i) = message.rfind(" in `") {
        if message.ends_with('`') {
            message.truncate(i);
        }
    }
    for int in ["u16", "u32", "u64", "i32", "i64", "usize"] {
        if let Some(head) = message.strip_suffix(&format!("expected {int}")) {
            message = format!("{head}expected an integer");
        }
    }
    message
}

/// toml's message on one line, with a hint for the commonest slip: a value without quotes.
fn syntax_message(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let text = lines.join("; ");
    if text.starts_with("invalid string") {
        format!("{text} (text values need quotes: key = \"value\")")
    } else {
        text
    }
}

/// The field serde names in "unknown field `x`, expected ...".
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// The path part of a `sqlite:` URL and what follows it (`?mode=rwc`).
fn sqlite_path(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(match rest.find('?') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    })
}

/// `sqlite://herald.db` with a relative file made relative to `base`; `None` when there is
/// nothing to change (another scheme, an absolute path, an in-memory database).
fn resolve_sqlite_url(url: &str, base: &Path) -> Option<String> {
    let (path, query) = sqlite_path(url)?;
    if path.is_empty() || path.starts_with(':') || Path::new(path).is_absolute() {
        return None;
    }
    Some(format!("sqlite://{}{query}", base.join(path).display()))
}

/// What is wrong with `smtp.url`, if anything (the transport checks the rest).
fn smtp_url_problem(raw: &str) -> Option<&'static str> {
    if let Some(dir) = raw.strip_prefix("file://") {
        return dir.is_empty().then_some("names no folder");
    }
    let Ok(url) = url::Url::parse(raw) else {
        return Some("is not a URL");
    };
    if !matches!(url.scheme(), "smtp" | "smtp+starttls" | "smtps") {
        return Some("has a scheme herald does not speak");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Some("names no host");
    }
    None
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::load_with_env(file.path(), true, env)
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let d = Settings::default();
        assert_eq!(d.database.url, "sqlite://herald.db");
        assert_eq!(d.smtp.url, "file://outbox");
        assert_eq!(d.newsletter.assets_dir, Path::new("static"));
        let s = load("", &[]).unwrap();
        assert_eq!(s.newsletter.base_url, "http://127.0.0.1:8080");
        assert_eq!(s.schedule.cron, "0 0 9 * * Fri");
        assert_eq!(s.sending.concurrency, 8);
        assert_eq!(s.web.bind, "127.0.0.1:8080");
    }

    /// A file in `dir` named config.toml holding `text`.
    fn load_in(dir: &Path, text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::load_with_env(&path, true, env)
    }

    #[test]
    fn relative_paths_in_a_file_are_relative_to_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let s = load_in(
            d,
            "[newsletter]\nissues_dir = \"letters\"\n[database]\nurl = \"sqlite://data/h.db?mode=rwc\"\n\
             [smtp]\nurl = \"file://mail\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.file.as_deref(), Some(d.join("config.toml").as_path()));
        assert_eq!(s.newsletter.issues_dir, d.join("letters"));
        assert_eq!(
            s.database.url,
            format!("sqlite://{}?mode=rwc", d.join("data/h.db").display())
        );
        assert_eq!(s.database_file(), Some(d.join("data/h.db")));
        assert_eq!(s.smtp.url, format!("file://{}", d.join("mail").display()));
        // Defaults of keys the file leaves out live beside it too.
        assert_eq!(s.newsletter.templates_dir, d.join("templates"));
        assert_eq!(s.newsletter.assets_dir, d.join("static"));
        assert_eq!(s.web.secret_key_file, d.join("herald.secret"));
        assert_eq!(s.web.admin_token_file, d.join("herald.admin-token"));
        // Absolute paths, and values from the environment, are left as they are.
        let s = load_in(
            d,
            "[newsletter]\nissues_dir = \"/srv/issues\"\n",
            &[("HERALD__DATABASE__URL", "sqlite://here.db")],
        )
        .unwrap();
        assert_eq!(s.newsletter.issues_dir, Path::new("/srv/issues"));
        assert_eq!(s.database.url, "sqlite://here.db");
    }

    #[test]
    fn a_bad_override_names_its_variable() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_in(dir.path(), "", &[("HERALD__SMTP__POOL_SIZE", "abc")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "HERALD__SMTP__POOL_SIZE: invalid type: string \"abc\", expected an integer"
        );
        let err = load_in(dir.path(), "", &[("HERALD__SMTP__POLL_SIZE", "4")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "HERALD__SMTP__POLL_SIZE: herald has no setting smtp.poll_size"
        );
        let err = load_in(dir.path(), "", &[("HERALD__SMPT__URL", "x")])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "HERALD__SMPT__URL: herald has no setting smpt");
        let err = load_in(dir.path(), "", &[("HERALD__SMTP__URL", "smtp//x")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HERALD__SMTP__URL: \"smtp//x\" is not a URL: use file://DIR"),
            "{err}"
        );
        assert!(err.contains("smtp://host[:port]"), "{err}");
        // The same mistakes in the file name the file and the key.
        let err = load_in(dir.path(), "[smtp]\nurl = \"smtp//x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml: `smtp.url`: \"smtp//x\" is not a URL"),
            "{err}"
        );
    }

    #[test]
    fn a_syntax_error_shows_line_column_and_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_in(
            dir.path(),
            "[newsletter]\nname = \"N\"\n[database]\nurl = sqlite://herald.db\n",
            &[],
        )
        .unwrap_err();
        let line = err.to_string();
        assert!(
            line.ends_with(
                "config.toml:4:7: invalid string; expected `\"`, `'` \
                 (text values need quotes: key = \"value\")"
            ),
            "{line}"
        );
        assert_eq!(
            err.excerpt().unwrap(),
            "4 | url = sqlite://herald.db\n  |       ^"
        );
    }

    #[test]
    fn env_overrides_file_and_parses_numbers() {
        let s = load(
            "[sending]\nconcurrency = 2\n",
            &[
                ("HERALD__SENDING__CONCURRENCY", "16"),
                ("HERALD__SMTP__URL", "smtp://127.0.0.1:2525"),
            ],
        )
        .unwrap();
        assert_eq!(s.sending.concurrency, 16);
        assert_eq!(s.smtp.url, "smtp://127.0.0.1:2525");
    }

    #[test]
    fn wrong_type_names_file_and_key() {
        let err = load("[smtp]\npool_size = \"lots\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("smtp.pool_size"), "{err}");
        assert!(err.contains(".tmp") || err.contains("tmp"), "{err}");
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let err = load("[newsletter]\nnmae = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nmae"), "{err}");
    }

    #[test]
    fn relative_base_url_is_rejected() {
        let err = load("[newsletter]\nbase_url = \"/blog\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("newsletter.base_url"), "{err}");
    }

    const RELAYS: &str = r#"
[smtp]
url = "smtp://127.0.0.1:2525"
routes = [
    { domains = ["qq.com", "163.com"], relays = ["cn", "default"] },
    { kind = "notice", relay = "ses" },
]

[[smtp.relays]]
name = "cn"
url = "smtp://127.0.0.1:2526"
rate_per_second = 2
max_per_connection = 100

[[smtp.relays]]
name = "ses"
url = "smtp+starttls://email-smtp.example.com"
username = "AKIA"
password_env = "SES_SMTP_PASSWORD"
rate_per_second = 14.5
"#;

    #[test]
    fn relays_and_routes_are_read_with_passwords_from_the_environment() {
        let s = load(RELAYS, &[("SES_SMTP_PASSWORD", "ses-secret-value")]).unwrap();
        assert_eq!(s.smtp.relays.len(), 2);
        assert_eq!(s.smtp.relays[0].name, "cn");
        assert_eq!(s.smtp.relays[0].rate_per_second, 2.0);
        assert_eq!(s.smtp.relays[0].max_per_connection, 100);
        assert_eq!(s.smtp.relays[0].pool_size, 8);
        assert_eq!(
            s.smtp.relays[1].password.as_ref().unwrap().expose_secret(),
            "ses-secret-value"
        );
        assert!(!format!("{s:?}").contains("ses-secret-value"));
        assert_eq!(s.smtp.routes[0].relay_names(), ["cn", "default"]);
        assert_eq!(s.smtp.routes[1].relay_names(), ["ses"]);
    }

    #[test]
    fn a_relay_or_route_that_cannot_work_is_an_error_naming_it() {
        let err = |text: &str, env: &[(&str, &str)]| load(text, env).unwrap_err().to_string();
        let e = err(RELAYS, &[]);
        assert!(e.contains("smtp.relays[1].password_env"), "{e}");
        assert!(e.contains("SES_SMTP_PASSWORD"), "{e}");
        let env = [("SES_SMTP_PASSWORD", "x")];
        let e = err(
            &RELAYS.replace("\"cn\", \"default\"", "\"cn\", \"hk\""),
            &env,
        );
        assert!(e.contains("smtp.routes[0]") && e.contains("\"hk\""), "{e}");
        let e = err(&RELAYS.replace("name = \"ses\"", "name = \"cn\""), &env);
        assert!(e.contains("smtp.relays[1].name"), "{e}");
        let e = err(
            &RELAYS.replace("kind = \"notice\"", "kind = \"welcome\""),
            &env,
        );
        assert!(e.contains("smtp.routes[1].kind"), "{e}");
        let e = err(
            &RELAYS.replace("rate_per_second = 2\n", "rate_per_second = -1\n"),
            &env,
        );
        assert!(e.contains("smtp.relays[0].rate_per_second"), "{e}");
        let e = err(
            "[[sending.providers]]\nname = \"corp\"\ndomains = [\"*.corp\"]\n",
            &[],
        );
        assert!(e.contains("sending.providers[0].domains"), "{e}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = load(
            "",
            &[
                ("HERALD__SMTP__PASSWORD", "hunter2-password"),
                ("HERALD__WEB__ADMIN_TOKEN", "admin-token-value"),
            ],
        )
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2-password"), "{debug}");
        assert!(!debug.contains("admin-token-value"), "{debug}");
        assert_eq!(
            s.smtp.password.as_ref().unwrap().expose_secret(),
            "hunter2-password"
        );
    }

    #[test]
    fn missing_secret_key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::default();
        s.web.secret_key_file = dir.path().join("herald.secret");
        let first = s.secret_key().unwrap();
        let second = s.secret_key().unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert!(first.expose_secret().len() >= 32);
    }

    #[test]
    fn missing_admin_token_is_created_in_its_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::default();
        s.web.admin_token_file = dir.path().join("herald.admin-token");
        let (first, source) = s.admin_token().unwrap();
        assert_eq!(
            source,
            AdminTokenSource::File(s.web.admin_token_file.clone())
        );
        let (second, _) = s.admin_token().unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert!(first.expose_secret().len() >= ADMIN_TOKEN_MIN_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&s.web.admin_token_file)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn processes_creating_the_token_file_at_once_agree_on_one_token() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::default();
        s.web.admin_token_file = dir.path().join("herald.admin-token");
        let tokens: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| s.admin_token().unwrap().0.expose_secret().to_string()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1, "no temporary file is left behind");
    }

    #[test]
    fn a_short_admin_token_is_refused() {
        let mut s = Settings::default();
        s.web.admin_token = Some("short".to_string().into());
        let e = s.admin_token().unwrap_err().to_string();
        assert!(e.contains("at least 24"), "{e}");
        s.web.admin_token = Some("a-long-enough-admin-token-0123".to_string().into());
        assert_eq!(s.admin_token().unwrap().1, AdminTokenSource::Configured);
    }
}
