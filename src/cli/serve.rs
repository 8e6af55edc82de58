//! `herald serve`: the web server (unsubscribe links, the archive and its feed) on
//! `web.bind`, until SIGINT or SIGTERM, then a graceful stop that lets requests in flight
//! finish.
//!
//! For now it runs only the web server; the scheduler and the dispatcher join it later.

use std::sync::Arc;

use anyhow::Context;

use crate::config::Settings;
use crate::startup::App;
use crate::web::{self, AppState};

/// Builds the app, binds `web.bind` and serves until a stop signal.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let bind = settings.web.bind.clone();
        let app = Arc::new(App::build(settings).await?);
        let state = AppState::new(app)?;
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| format!("cannot listen on {bind} (web.bind)"))?;
        let address = listener.local_addr().context("the bound address")?;
        tracing::info!(%address, "serving");
        eprintln!("herald: serving on http://{address}");
        web::serve(listener, state, super::stop_signal())
            .await
            .context("the web server stopped")?;
        tracing::info!("stopped");
        Ok(())
    })
}
