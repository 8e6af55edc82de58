//! The `herald` command line. Each command is a few lines over the library; the modules
//! beside this one hold one command group each.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Settings;

mod bounces;
mod check;
mod db;
mod locales;
mod preview;
mod schedule;
mod send;
mod serve;
mod subscribers;

pub use bounces::BouncesCommand;
pub use subscribers::SubscribersCommand;

/// A self-hosted newsletter dispatcher.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
pub struct Cli {
    /// Settings file [default: ./config.toml; all defaults when it does not exist]. Relative
    /// paths in it are relative to its folder
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render an issue for a sample recipient (HTML, text, or the whole message).
    Preview(preview::PreviewArgs),
    /// Check issue files as a send would: errors that stop a send, and warnings (literal
    /// emphasis, alt text, link text, subject length, spam heuristics, ...). Exits 1 when
    /// any finding is an error.
    Check(check::CheckArgs),
    /// Send an issue to every active subscriber (resumes an earlier send of the same issue).
    Send(send::SendArgs),
    /// Every issue file and every queued issue, newest first, with its state (draft,
    /// scheduled, unsent, sending, sent) and delivery counts; with a slug, that one issue.
    Status(send::StatusArgs),
    /// Create the database, or bring its schema up to date (also done on every start).
    Migrate,
    /// Move an install between databases (`db copy --from sqlite://herald.db --to
    /// postgres://...`).
    Db {
        #[command(subcommand)]
        command: db::DbCommand,
    },
    /// Run herald until Ctrl-C or SIGTERM: the web server on `web.bind`, the dispatcher and
    /// the scheduler.
    ///
    /// The web server answers the sign-up form with double opt-in (`/`), the confirmation,
    /// unsubscribe and resubscribe links, the archive and its Atom feed (`/archive`,
    /// `/feed.xml`), the issues' images (`newsletter.assets_dir`), the editor API (`/api/`),
    /// the dashboard (`/admin`), the sending services' bounce and complaint webhooks
    /// (`/webhooks/`) and `/health`. The dispatcher sends whatever is queued, with retries,
    /// and resumes a send cut short; the scheduler sends the next dated issue at each tick
    /// of `schedule.cron` (never a draft). With `bounces.smtp_bind` or `bounces.imap_url`
    /// set, it also reads returned mail. At start it prints the settings file, the
    /// database, where mail goes and where the admin token is kept.
    ///
    /// With `--role web` it runs the web server only; with `--role worker` the dispatcher,
    /// the scheduler, the notice worker and the readers of returned mail, with only `/health`
    /// on `web.bind`. Several nodes can share one PostgreSQL database.
    Serve(serve::ServeArgs),
    /// Show the cron schedule, its next three runs, and what each would send.
    Schedule,
    /// Read returned mail: bounces, delays, complaints, auto-replies.
    Bounces {
        #[command(subcommand)]
        command: BouncesCommand,
    },
    /// Check the message catalogs: missing and unused messages per locale.
    Locales {
        #[command(subcommand)]
        command: locales::LocalesCommand,
    },
    /// Manage the subscriber list.
    Subscribers {
        #[command(subcommand)]
        command: SubscribersCommand,
    },
}

/// Parses the command line, runs the command, and turns any error into one line on stderr
/// and a non-zero exit.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: {}", one_line(&e));
            if let Some(excerpt) = e
                .downcast_ref::<crate::config::ConfigError>()
                .and_then(crate::config::ConfigError::excerpt)
            {
                eprintln!("{excerpt}");
            }
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = load_settings(&cli)?;
    match cli.command {
        Command::Preview(args) => preview::run(&settings, args)?,
        Command::Check(args) => return check::run(&settings, args),
        Command::Send(args) => return send::send(settings, args),
        Command::Status(args) => return send::status(settings, args),
        Command::Migrate => subscribers::migrate(&settings)?,
        Command::Db { command } => db::run(command)?,
        Command::Serve(args) => serve::run(settings, args, &config_name(&cli.config))?,
        Command::Schedule => schedule::run(&settings, &config_name(&cli.config))?,
        Command::Bounces { command } => return bounces::run(&settings, command),
        Command::Subscribers { command } => return subscribers::run(&settings, command),
        Command::Locales { command } => return locales::run(&settings, command),
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads settings from `--config`, or from `./config.toml` when it exists.
pub fn load_settings(cli: &Cli) -> anyhow::Result<Settings> {
    let (path, must_exist) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    Ok(Settings::load(&path, must_exist)?)
}

/// When no settings file was found, says so on stderr, once per run, before a command
/// first uses the files the defaults name (the database, the secret, the outbox), so that
/// a command run in the wrong folder is noticed before it leaves files there.
pub(crate) fn note_defaults(settings: &Settings) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if settings.file.is_some() {
        return;
    }
    ONCE.call_once(|| {
        let here = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| ".".into());
        eprintln!(
            "herald: no config.toml in {here}: using the built-in defaults, with their files \
             in this folder (--config FILE names a settings file)"
        );
    });
}

/// Opens the database, saying where when this creates it.
pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<crate::store::Store> {
    note_defaults(settings);
    let store = crate::store::connect(&settings.database.url)
        .await
        .with_context(|| format!("database {}", settings.database.url))?;
    report_new_database(&store);
    Ok(store)
}

/// Says where a new database file was created, so a command run in the wrong folder is
/// noticed at once.
pub(crate) fn report_new_database(store: &crate::store::Store) {
    if let Some(file) = store.created_file() {
        eprintln!("herald: created a new database {}", file.display());
    }
}

/// The settings file as named in error messages.
fn config_name(config: &Option<PathBuf>) -> String {
    config
        .as_deref()
        .unwrap_or(std::path::Path::new("config.toml"))
        .display()
        .to_string()
}

fn init_tracing() {
    use std::io::IsTerminal;
    let asked = std::env::var("HERALD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let filter =
        tracing_subscriber::EnvFilter::try_new(log_directives(&asked)).unwrap_or_else(|e| {
            eprintln!("herald: ignoring HERALD_LOG/RUST_LOG ({e}); logging warnings only");
            tracing_subscriber::EnvFilter::new("warn")
        });
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// The tracing filter for what the user asked for in `HERALD_LOG` (or, when that is unset,
/// `RUST_LOG`). A bare level (`debug`, `trace`) applies to herald alone, and to its request
/// log (tower-http's events, inside herald's request span, which names the route and never
/// the path): other crates stay at `warn`, because some of them log secrets at their verbose
/// levels (lettre logs the whole SMTP session, `AUTH PLAIN` credentials and message bodies
/// with live tokens included). A crate named outright (`lettre=debug`) gets the level asked
/// for: that is a deliberate choice.
fn log_directives(asked: &str) -> String {
    let mut directives = vec!["warn".to_string()];
    for directive in asked.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match directive.parse::<tracing_subscriber::filter::LevelFilter>() {
            Ok(level) => {
                let level = level.to_string().to_lowercase();
                directives.push(format!("herald={level},tower_http={level}"));
            }
            Err(_) => directives.push(directive.to_string()),
        }
    }
    directives.join(",")
}

/// Log lines are coloured only on a terminal, and never when `NO_COLOR` is set to anything
/// but the empty string (<https://no-color.org>).
fn use_colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// An error chain as one line: `outer: inner: root`.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string().replace(['\r', '\n'], " ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// Writes `bytes` to `path` through a temporary file in the same folder, so a reader never
/// sees half a file and a failure leaves any previous file intact.
pub(crate) fn write_file_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The multi-threaded runtime the async commands run on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bare_log_level_applies_to_herald_only_and_a_named_crate_gets_what_it_asks() {
        use super::log_directives;
        assert_eq!(log_directives(""), "warn");
        assert_eq!(
            log_directives("trace"),
            "warn,herald=trace,tower_http=trace"
        );
        assert_eq!(
            log_directives(" DEBUG , lettre=info"),
            "warn,herald=debug,tower_http=debug,lettre=info"
        );
        assert_eq!(
            log_directives("herald::dispatch=trace"),
            "warn,herald::dispatch=trace"
        );
    }

    use super::*;
    use clap::CommandFactory;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    /// Every argument and option of every command explains itself in `--help`.
    #[test]
    fn every_help_line_has_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "herald", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}
