//! The long-running dispatcher of `herald serve`: it sends every issue whose send is under
//! way, whoever enqueued it (the scheduler, the editor API, the dashboard, or a `herald send`
//! that was interrupted), and sleeps until the next retry is due or [`App::send_now`]
//! wakes it.
//!
//! Each pass renders the issue again from its file in `newsletter.issues_dir` (a send
//! resumed after a restart needs the rendered mail, and the ledger keeps only the slug).
//! An issue whose file has gone is logged and left in the ledger until the file comes back.

use std::time::Duration;

use tokio::sync::watch;

use super::{unix_now, Progress, RunEnd};
use crate::domain::IssueSlug;
use crate::startup::App;
use crate::store::IssueRow;

/// The longest sleep between passes, so a row whose lease expired (another process
/// crashed) is picked up even when nobody wakes the service.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// How long to wait after the relay refused service, or a pass failed, before trying again.
const AFTER_TROUBLE: Duration = Duration::from_secs(30);

/// Runs until `shutdown` turns true: in-flight messages finish and unsent rows are handed
/// back to the ledger, where the next start resumes them.
pub async fn run(app: &App, mut shutdown: watch::Receiver<bool>) {
    let dispatcher = app.dispatcher();
    tracing::info!("dispatcher started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let pause = match app.store.issues_in_progress().await {
            Ok(issues) => {
                let mut pause = MAX_IDLE;
                for row in issues {
                    if *shutdown.borrow() {
                        break;
                    }
                    let wait = match send_issue(app, &dispatcher, &row, shutdown.clone()).await {
                        Ok(Some(wait)) => wait,
                        Ok(None) => continue,
                        Err(()) => AFTER_TROUBLE,
                    };
                    pause = pause.min(wait);
                }
                pause
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot list the issues being sent");
                AFTER_TROUBLE
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = app.dispatch_wake.notified() => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::info!("dispatcher stopped");
}

/// Sends what is due of one issue. `Ok(Some(d))`: look again within `d`; `Ok(None)`: the
/// issue is finished; `Err(())`: trouble, already logged.
async fn send_issue(
    app: &App,
    dispatcher: &super::Dispatcher,
    row: &IssueRow,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<Duration>, ()> {
    let slug = IssueSlug::parse(&row.slug).map_err(|e| {
        tracing::error!(slug = %row.slug, error = %e, "a queued issue has an unusable slug");
    })?;
    let prepared = app.prepare_slug(&slug).map_err(|e| {
        tracing::error!(slug = %row.slug, error = %e, "cannot render a queued issue; its send waits");
    })?;
    let job = super::Job {
        issue_id: row.id,
        mail: std::sync::Arc::new(app.composer.prepare(&prepared.rendered)),
    };
    let (progress, _) = watch::channel(Progress::default());
    match dispatcher.run(job, false, progress, shutdown).await {
        Ok(RunEnd::Finished) => {
            tracing::info!(slug = %row.slug, "issue sent");
            Ok(None)
        }
        Ok(RunEnd::Waiting { next_due_at }) => {
            let secs = (next_due_at - unix_now()).clamp(1, MAX_IDLE.as_secs() as i64);
            Ok(Some(Duration::from_secs(secs as u64)))
        }
        Ok(RunEnd::Paused { reason }) => {
            tracing::warn!(slug = %row.slug, %reason, "relay unusable; the send is paused");
            Err(())
        }
        Ok(RunEnd::Interrupted) => Ok(Some(Duration::ZERO)),
        Err(e) => {
            tracing::error!(slug = %row.slug, error = %e, "the send stopped");
            Err(())
        }
    }
}
