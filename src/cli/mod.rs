//! The `herald` command line. Each command is a few lines over the library; the modules
//! beside this one hold one command group each.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

mod preview;
mod schedule;
mod send;
mod serve;
mod subscribers;

pub use subscribers::SubscribersCommand;

/// A self-hosted newsletter dispatcher.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
pub struct Cli {
    /// Settings file [default: ./config.toml; all defaults when it does not exist]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render an issue for a sample recipient (HTML, text, or the whole message).
    Preview(preview::PreviewArgs),
    /// Send an issue to every active subscriber (resumes an earlier send of the same issue).
    Send(send::SendArgs),
    /// Delivery counts by status, for one issue or all.
    Status(send::StatusArgs),
    /// Create the database, or bring its schema up to date (also done on every start).
    Migrate,
    /// Run the web server (unsubscribe links, the archive and its feed) on `web.bind`,
    /// with the dispatcher and the scheduler.
    Serve,
    /// Show the cron schedule, its next three runs, and what each would send.
    Schedule,
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
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = load_settings(&cli)?;
    match cli.command {
        Command::Preview(args) => preview::run(&settings, args)?,
        Command::Send(args) => return send::send(settings, args),
        Command::Status(args) => return send::status(settings, args),
        Command::Migrate => subscribers::migrate(&settings)?,
        Command::Serve => serve::run(settings, &config_name(&cli.config))?,
        Command::Schedule => schedule::run(&settings, &config_name(&cli.config))?,
        Command::Subscribers { command } => subscribers::run(&settings, command)?,
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

/// The settings file as named in error messages.
fn config_name(config: &Option<PathBuf>) -> String {
    config
        .as_deref()
        .unwrap_or(std::path::Path::new("config.toml"))
        .display()
        .to_string()
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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
