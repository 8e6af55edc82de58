//! `herald serve` as a library call: the web server, the long-running dispatcher, the notice
//! worker (confirmation and welcome mails) and the other background tasks in one process,
//! stopped together.
//!
//! [`run`] starts every task over one [`App`], waits for the shutdown future, then tells
//! each task to stop through a `watch` channel and waits for all of them: the web server
//! lets requests in flight finish, and the dispatcher finishes the messages in flight and
//! hands unsent rows back to the ledger (as in mini-redis's shutdown), and the scheduler
//! finishes the tick it is running. A bad `[schedule]` fails [`run`] before anything starts.
//!
//! With `bounces.smtp_bind` set, the inbound SMTP listener for returned mail runs too, and
//! with `bounces.imap_url` the IMAP poller (see [`crate::bounces`]); a bad setting of either
//! fails [`run`] before anything starts.
//!
//! [`run_as`] runs one [`Role`]: `web` runs the web server alone (the sign-up writer is
//! part of it; the notices it queues are sent by a worker), `worker` runs everything else
//! and answers only `/health` on its listener, `all` runs both. Every role keeps the node's
//! heartbeat row fresh ([`nodes::heartbeat`]).

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::bounces::imap::{self, ImapConfig, ImapError};
use crate::bounces::listener::{self, ListenerConfig, ListenerError};
use crate::domain::TokenKey;
use crate::nodes::{self, Role};
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
    #[error(transparent)]
    Listener(#[from] ListenerError),
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(
        "`bounces.smtp_bind` needs `bounces.return_path`: the listener takes mail for it only"
    )]
    NoReturnPath,
}

/// Serves on `listener` and runs the background tasks until `shutdown` resolves, then
/// stops them all gracefully. The inbound SMTP listener binds `bounces.smtp_bind`.
pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_as(app, Role::All, listener, shutdown).await
}

/// As [`run`], running only what `role` says: a web node serves readers and editors and
/// sends nothing; a worker node sends, schedules and reads returned mail, and answers only
/// `/health` on `listener`.
pub async fn run_as(
    app: Arc<App>,
    role: Role,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let bounces = match &app.settings.bounces.smtp_bind {
        Some(bind) if role.works() => Some(listener::bind(bind).await?),
        _ => None,
    };
    run_role(app, role, listener, bounces, shutdown).await
}

/// As [`run`], with the inbound SMTP listener's socket bound by the caller (a test binds
/// port 0 and needs to know the port).
pub async fn run_with(
    app: Arc<App>,
    listener: TcpListener,
    bounce_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_role(app, Role::All, listener, bounce_listener, shutdown).await
}

async fn run_role(
    app: Arc<App>,
    role: Role,
    listener: TcpListener,
    bounce_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let schedule = Schedule::from_settings(&app.settings.schedule)?;
    let state = match role.serves_web() {
        true => Some(AppState::new(app.clone())?),
        false => None,
    };
    let inbound = match bounce_listener {
        Some(socket) if role.works() => Some((socket, listener_config(&app)?)),
        _ => None,
    };
    let imap = match role.works() {
        true => ImapConfig::from_settings(&app.settings.bounces)?,
        false => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks: JoinSet<Result<(), ServerError>> = JoinSet::new();
    tracing::info!(node = %app.node, role = %role, "node starting");

    let beat = (app.store.clone(), app.node.clone(), stop_rx.clone());
    tasks.spawn(async move {
        nodes::heartbeat(beat.0, beat.1, role.as_str(), beat.2).await;
        Ok(())
    });

    let mut web_stop = stop_rx.clone();
    let web_app = app.clone();
    tasks.spawn(async move {
        let stopped = async move {
            let _ = web_stop.wait_for(|stop| *stop).await;
        };
        match state {
            Some(state) => {
                let served = web::serve(listener, state.clone(), stopped).await;
                // Every click and open answered before the stop is recorded before the end.
                state.flush_tracking().await;
                served
            }
            None => web::serve_health(listener, web_app, stopped).await,
        }
        .map_err(ServerError::Web)
    });

    if !role.works() {
        return wait(app, tasks, stop_tx, shutdown).await;
    }

    let wakes = vec![app.dispatch_wake.clone(), app.notice_wake.clone()];
    let (listen_store, listen_stop) = (app.store.clone(), stop_rx.clone());
    tasks.spawn(async move {
        nodes::listen(listen_store, wakes, listen_stop).await;
        Ok(())
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

    if let Some((socket, config)) = inbound {
        if let Ok(addr) = socket.local_addr() {
            tracing::info!(%addr, "listening for returned mail over SMTP");
        }
        let inbox = app.bounces.clone();
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            listener::serve(socket, config, inbox, stop).await;
            Ok(())
        });
    }

    if let Some(config) = imap {
        let inbox = app.bounces.clone();
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            imap::run(config, inbox, stop).await;
            Ok(())
        });
    }

    wait(app, tasks, stop_tx, shutdown).await
}

/// Waits for `shutdown` (or for a task to end early, a failure), tells every task to stop,
/// and waits for them all.
async fn wait(
    app: Arc<App>,
    mut tasks: JoinSet<Result<(), ServerError>>,
    stop_tx: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
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

/// The inbound listener's settings from `[bounces]`.
fn listener_config(app: &App) -> Result<ListenerConfig, ServerError> {
    let bounces = &app.settings.bounces;
    let return_path = app
        .composer
        .return_path()
        .cloned()
        .ok_or(ServerError::NoReturnPath)?;
    let tls = match (&bounces.tls_cert, &bounces.tls_key) {
        (Some(cert), Some(key)) => Some(listener::tls_acceptor(cert, key)?),
        _ => None,
    };
    let hostname = bounces
        .smtp_hostname
        .clone()
        .or_else(|| hostname_of_machine().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".into());
    Ok(ListenerConfig {
        hostname,
        return_path,
        key: TokenKey::new(&app.settings.secret_key().map_err(StartupError::from)?),
        max_message_bytes: bounces.max_message_bytes,
        max_connections: bounces.max_connections as usize,
        timeout: std::time::Duration::from_secs(bounces.timeout_seconds.max(1)),
        tls,
    })
}

fn hostname_of_machine() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
}
