//! `herald serve`: the web server on `web.bind`, the dispatcher and the scheduler, until
//! SIGINT or SIGTERM, then a graceful stop.

use std::sync::Arc;

use anyhow::{anyhow, Context};

use crate::config::Settings;
use crate::schedule::Schedule;
use crate::startup::App;

/// Checks `[schedule]`, builds the app, binds `web.bind` and serves until a stop signal.
/// `config_file` names the settings file in errors.
pub fn run(settings: Settings, config_file: &str) -> anyhow::Result<()> {
    Schedule::from_settings(&settings.schedule).map_err(|e| anyhow!("{config_file}: {e}"))?;
    super::runtime()?.block_on(async move {
        let bind = settings.web.bind.clone();
        let app = Arc::new(App::build(settings).await?);
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| format!("cannot listen on {bind} (web.bind)"))?;
        let address = listener.local_addr().context("the bound address")?;
        tracing::info!(%address, "serving");
        eprintln!("herald: serving on http://{address}");
        crate::server::run(app, listener, super::stop_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}
