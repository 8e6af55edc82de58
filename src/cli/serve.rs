//! `herald serve`: the web server on `web.bind`, the dispatcher and the scheduler (or the
//! part `--role` names), until SIGINT or SIGTERM, then a graceful stop.

use std::sync::Arc;

use anyhow::Context;

use crate::config::{AdminTokenSource, Settings};
use crate::nodes::Role;
use crate::schedule::{forecast, Plan, Schedule};
use crate::startup::App;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// What this node runs: `web` (readers and editors), `worker` (sending, the scheduler,
    /// notices, returned mail; only /health over HTTP) or `all`.
    #[arg(long, value_name = "ROLE", default_value = "all")]
    pub role: Role,
}

/// Checks `[schedule]`, builds the app, binds `web.bind` and serves until a stop signal.
/// `config_file` names the settings file in errors.
pub fn run(settings: Settings, args: ServeArgs, config_file: &str) -> anyhow::Result<()> {
    let role = args.role;
    let schedule = super::schedule::read_schedule(&settings, config_file)?;
    super::note_defaults(&settings);
    super::runtime()?.block_on(async move {
        let bind = settings.web.bind.clone();
        // Creates the token file on first use; says where it is, never what it holds.
        if let (_, AdminTokenSource::File(path)) = settings.admin_token()? {
            eprintln!(
                "herald: the admin token for /api and /admin is in {}",
                path.display()
            );
        }
        let app = Arc::new(App::build(settings).await?);
        super::report_new_database(&app.store);
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| format!("cannot listen on {bind} (web.bind)"))?;
        let address = listener.local_addr().context("the bound address")?;
        tracing::info!(%address, "serving");
        for line in what_it_uses(&app) {
            eprintln!("herald: {line}");
        }
        eprintln!("herald: node {} ({role})", app.node);
        if role.serves_web() {
            eprintln!("herald: serving on http://{address}");
        } else {
            eprintln!("herald: health check on http://{address}/health");
        }
        if role.works() {
            eprintln!("herald: {}", next_run(&app, &schedule).await);
        }
        crate::server::run_as(app, role, listener, super::stop_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// The files and the relay `herald serve` works with, one line each, so an editor sees at
/// once which installation this is.
fn what_it_uses(app: &App) -> Vec<String> {
    let settings = &app.settings;
    let config = match &settings.file {
        Some(file) => format!("settings from {}", file.display()),
        None => "settings: the built-in defaults (no config file)".into(),
    };
    let database = match settings.database_file() {
        Some(file) => format!("database {}", file.display()),
        None => format!("database {}", settings.database.url),
    };
    let mail = match app.transport.describe() {
        outbox if outbox.starts_with("file://") => {
            format!("mail written to {} (smtp.url)", &outbox["file://".len()..])
        }
        relay => format!("mail sent through {relay}"),
    };
    let assets = format!(
        "files served from {} (newsletter.assets_dir)",
        settings.newsletter.assets_dir.display()
    );
    vec![config, database, mail, assets]
}

/// One line on the scheduler: off, or its next run and what that would send now.
async fn next_run(app: &App, schedule: &Schedule) -> String {
    if !schedule.is_enabled() {
        return "scheduler off (schedule.cron)".into();
    }
    let Some(next) = schedule.next_after(chrono::Utc::now()) else {
        return "the schedule has no further runs".into();
    };
    let when = next
        .with_timezone(&schedule.tz)
        .format("%a %Y-%m-%d %H:%M %Z");
    let dir = &app.settings.newsletter.issues_dir;
    let limits = app.settings.newsletter.issue_limits();
    match forecast(&app.store, dir, limits, &[next]).await {
        Ok(forecast) => match forecast.plans.first().and_then(|p| p.send.as_ref()) {
            Some(issue) => format!("next scheduled run {when}: would send {}", issue.slug),
            None => format!("next scheduled run {when}: {}", Plan::NOTHING),
        },
        Err(e) => format!("next scheduled run {when} (cannot tell what it would send: {e})"),
    }
}
