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

/// Everything that can go wrong while reading settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: `{key}`: {message}")]
    Key {
        file: String,
        key: String,
        message: String,
    },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("{0}")]
    Secret(String),
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
    /// The List-Id header's identifier, e.g. `weekly.example.org`. Defaults to one derived
    /// from the From domain.
    pub list_id: Option<String>,
    /// Address for `mailto:` unsubscribe requests in List-Unsubscribe. Optional.
    pub unsubscribe_mailto: Option<String>,
    /// The consent wording shown above the sign-up button and stored with every sign-up
    /// (the consent record).
    pub consent: String,
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
            list_id: None,
            unsubscribe_mailto: None,
            consent: DEFAULT_CONSENT.into(),
        }
    }
}

/// The default `newsletter.consent`.
pub const DEFAULT_CONSENT: &str = "I would like to receive this newsletter by email. I can \
     unsubscribe at any time with the link at the bottom of every issue.";

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

/// `[smtp]`: the relay, or a folder of `.eml` files.
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
    pub dkim_selector: Option<String>,
    pub dkim_domain: Option<String>,
    pub dkim_key_file: Option<PathBuf>,
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
            dkim_selector: None,
            dkim_domain: None,
            dkim_key_file: None,
        }
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
    /// Addresses of reverse proxies in front of herald. A request from one of them is taken
    /// to come from the address its `X-Forwarded-For` names (the rightmost entry that is not
    /// itself a trusted proxy); from anywhere else the header is ignored.
    pub trusted_proxies: Vec<String>,
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
            trusted_proxies: Vec::new(),
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
    pub fn load_with_env(
        path: &Path,
        must_exist: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => String::new(),
            Err(source) => return Err(ConfigError::Read { file, source }),
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            file: file.clone(),
            message: one_line(&e.to_string()),
        })?;
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let [section, key] = parts.as_slice() else {
                return Err(ConfigError::Env {
                    var,
                    message: "expected HERALD__SECTION__KEY".into(),
                });
            };
            let section = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section) = section else {
                return Err(ConfigError::Env {
                    var,
                    message: "that section is not a table in the file".into(),
                });
            };
            section.insert(key.clone(), env_value(&value));
        }
        let settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError::Key {
                file: file.clone(),
                key: e.path().to_string(),
                message: one_line(&e.inner().to_string()),
            })?;
        settings.check(&file)?;
        Ok(settings)
    }

    /// Checks that need more than a type: URLs that must parse, numbers that must be positive.
    fn check(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Key {
            file: file.to_string(),
            key: key.to_string(),
            message,
        };
        let base = url::Url::parse(&self.newsletter.base_url)
            .map_err(|e| bad("newsletter.base_url", format!("not an absolute URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad(
                "newsletter.base_url",
                "must be an http:// or https:// URL".into(),
            ));
        }
        if self.newsletter.consent.trim().is_empty() {
            return Err(bad("newsletter.consent", "must not be empty".into()));
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
        if self.smtp.pool_size == 0 {
            return Err(bad("smtp.pool_size", "must be at least 1".into()));
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
        let s = load("", &[]).unwrap();
        assert_eq!(s.database.url, "sqlite://herald.db");
        assert_eq!(s.smtp.url, "file://outbox");
        assert_eq!(s.newsletter.base_url, "http://127.0.0.1:8080");
        assert_eq!(s.schedule.cron, "0 0 9 * * Fri");
        assert_eq!(s.sending.concurrency, 8);
        assert_eq!(s.web.bind, "127.0.0.1:8080");
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
