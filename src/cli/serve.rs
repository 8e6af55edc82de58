//! `herald serve`: the web server on `web.bind`, the dispatcher and the other background
//! tasks, until SIGINT or SIGTERM, then a graceful stop.

use std::sync::Arc;

use anyhow::Context;

use crate::config::{AdminTokenSource, Settings};
use crate::startup::App;

/// Builds the app, binds `web.bind` and serves until a stop signal.
pub fn run(settings: Settings) -> anyhow::Result<()> {
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
