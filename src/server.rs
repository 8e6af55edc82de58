//! `herald serve` as a library call: the web server, the long-running dispatcher, the notice
//! worker (confirmation and welcome mails) and the other background tasks in one process,
//! stopped together.
//!
//! [`run`] starts every task over one [`App`], waits for the shutdown future, then tells
//! each task to stop through a `watch` channel and waits for all of them: the web server
//! lets requests in flight finish, and the dispatcher finishes the messages in flight and
//! hands unsent rows back to the ledger (as in mini-redis's shutdown), and the scheduler
//! finishes the tick it is running. A bad `[schedule]` fails [`run`] before anything starts.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::schedule::{Clock, Schedule, ScheduleError, Scheduler};
use crate::startup::{App, StartupError};
use crate::web::{self, AppState};
use crate::{dispatch, notices};

/// What can stop `herald serve`.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("the web server failed: {0}")]
    Web(std::io::Error),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("a background task failed: {0}")]
    Task(String),
}

/// Serves on `listener` and runs the background tasks until `shutdown` resolves, then
/// stops them all gracefully.
pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let schedule = Schedule::from_settings(&app.settings.schedule)?;
    let state = AppState::new(app.clone())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks: JoinSet<Result<(), ServerError>> = JoinSet::new();

    let mut web_stop = stop_rx.clone();
    tasks.spawn(async move {
        let stopped = async move {
            let _ = web_stop.wait_for(|stop| *stop).await;
        };
        web::serve(listener, state, stopped)
            .await
            .map_err(ServerError::Web)
    });

    let dispatch_app = app.clone();
    let dispatch_stop = stop_rx.clone();
    tasks.spawn(async move {
        dispatch::service::run(&dispatch_app, dispatch_stop).await;
        Ok(())
    });

    let schedule_app = app.clone();
    let schedule_stop = stop_rx.clone();
    tasks.spawn(async move {
        Scheduler::new(schedule, Clock::system())
            .run(&schedule_app, schedule_stop)
            .await;
        Ok(())
    });

    let notice_app = app.clone();
    let notice_stop = stop_rx.clone();
    tasks.spawn(async move {
        notices::run(&notice_app, notice_stop).await;
        Ok(())
    });

    // Stop everything on the signal, or as soon as one task ends on its own (a failure).
    let mut first: Option<Result<(), ServerError>> = None;
    tokio::select! {
        () = shutdown => tracing::info!("stopping: finishing requests and messages in flight"),
        joined = tasks.join_next() => {
            first = joined.map(flatten);
            tracing::error!("a task ended early; stopping the others");
        }
    }
    let _ = stop_tx.send(true);
    let mut result = first.unwrap_or(Ok(()));
    while let Some(joined) = tasks.join_next().await {
        let r = flatten(joined);
        if result.is_ok() {
            result = r;
        }
    }
    app.transport.close().await;
    result
}

fn flatten(
    joined: Result<Result<(), ServerError>, tokio::task::JoinError>,
) -> Result<(), ServerError> {
    joined.map_err(|e| ServerError::Task(e.to_string()))?
}
