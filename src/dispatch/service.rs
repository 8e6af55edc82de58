//! The long-running dispatcher of `herald serve`: it sends every issue whose send is under
//! way, whoever enqueued it (the scheduler, the editor API, the dashboard, or a `herald send`
//! that was interrupted), and sleeps until the next retry is due or [`App::send_now`]
//! wakes it.
//!
//! Every issue that is due is sent at once, each by a run of its own over one shared
//! [`Dispatcher`](super::Dispatcher): the runs take turns at its concurrency permits, so a
//! second issue starts at once and gets its share instead of waiting for the first to
//! finish. (Sign-up notices have a worker of their own, see [`crate::notices`], and never
//! wait behind an issue.)
//!
//! Each run renders the issue again from its file in `newsletter.issues_dir` (a send
//! resumed after a restart needs the rendered mail, and the ledger keeps only the slug).
//! An issue whose file has gone is logged and left in the ledger until the file comes back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{unix_now, Dispatcher, Progress, RunEnd};
use crate::domain::IssueSlug;
use crate::startup::App;
use crate::store::IssueRow;

/// The longest sleep between passes, so a row whose lease expired (another process
/// crashed) is picked up even when nobody wakes the service.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// How long to wait after the relay refused service, or a run failed, before trying again.
const AFTER_TROUBLE: Duration = Duration::from_secs(30);

/// Runs until `shutdown` turns true: in-flight messages finish and unsent rows are handed
/// back to the ledger, where the next start resumes them.
pub async fn run(app: &Arc<App>, shutdown: watch::Receiver<bool>) {
    let dispatcher = Arc::new(app.dispatcher());
    let mut runs: JoinSet<(i64, Option<Duration>)> = JoinSet::new();
    let mut running: HashMap<i64, String> = HashMap::new();
    // Issues not to start again before this time (retries not due, trouble).
    let mut not_before: HashMap<i64, Instant> = HashMap::new();
    let mut wake_shutdown = shutdown.clone();
    tracing::info!("dispatcher started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let mut pass_trouble = false;
        match app.store.issues_in_progress().await {
            Ok(issues) => {
                let now = Instant::now();
                // Issues finished elsewhere (another process) need no more waiting for.
                not_before.retain(|id, _| issues.iter().any(|row| row.id == *id));
                for row in issues {
                    if running.contains_key(&row.id)
                        || not_before.get(&row.id).is_some_and(|t| *t > now)
                    {
                        continue;
                    }
                    not_before.remove(&row.id);
                    running.insert(row.id, row.slug.clone());
                    let (app, dispatcher, stop) =
                        (app.clone(), dispatcher.clone(), shutdown.clone());
                    runs.spawn(async move {
                        let again = send_issue(&app, &dispatcher, &row, stop).await;
                        (row.id, again)
                    });
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot list the issues being sent");
                pass_trouble = true;
            }
        }
        let next_start = not_before.values().min().copied();
        let sleep = match (pass_trouble, next_start) {
            (true, _) => AFTER_TROUBLE,
            (false, Some(t)) => t.saturating_duration_since(Instant::now()).min(MAX_IDLE),
            (false, None) => MAX_IDLE,
        };
        tokio::select! {
            Some(joined) = runs.join_next(), if !runs.is_empty() => {
                if let Ok((issue_id, again)) = joined {
                    running.remove(&issue_id);
                    if let Some(after) = again {
                        not_before.insert(issue_id, Instant::now() + after);
                    }
                }
            }
            _ = tokio::time::sleep(sleep) => {}
            _ = app.dispatch_wake.notified() => {
                // Something was enqueued: an issue waiting for a retry may have new rows.
                not_before.clear();
            }
            _ = wake_shutdown.changed() => {}
        }
    }
    // Every run sees the same shutdown: it finishes what is in flight and hands the rest back.
    while runs.join_next().await.is_some() {}
    tracing::info!("dispatcher stopped");
}

/// Sends what is due of one issue. `None`: the issue is finished (or shutdown came); `Some(d)`:
/// look again after `d` (retries scheduled, or trouble, already logged).
async fn send_issue(
    app: &App,
    dispatcher: &Dispatcher,
    row: &IssueRow,
    shutdown: watch::Receiver<bool>,
) -> Option<Duration> {
    let slug = match IssueSlug::parse(&row.slug) {
        Ok(slug) => slug,
        Err(e) => {
            tracing::error!(slug = %row.slug, error = %e, "a queued issue has an unusable slug");
            return Some(AFTER_TROUBLE);
        }
    };
    let prepared = match app.prepare_slug(&slug).await {
        Ok(prepared) => prepared,
        Err(e) => {
            tracing::error!(slug = %row.slug, error = %e, "cannot render a queued issue; its send waits");
            return Some(AFTER_TROUBLE);
        }
    };
    if let Err(e) = crate::tracking::record_links(&app.store, row.id, &prepared.rendered).await {
        tracing::error!(slug = %row.slug, error = %e, "cannot record the issue's tracked links; its send waits");
        return Some(AFTER_TROUBLE);
    }
    let job = super::Job {
        issue_id: row.id,
        mail: Arc::new(app.composer.prepare(&prepared.rendered, Some(row.id))),
    };
    let (progress, _) = watch::channel(Progress::default());
    let end = dispatcher.run(job, false, progress, shutdown).await;
    // Refusals during the session count towards the soft-bounce limit like returned mail.
    if let Err(e) = app
        .store
        .apply_soft_limit(row.id, app.settings.bounces.soft_limit, unix_now())
        .await
    {
        tracing::warn!(error = %e, "cannot apply the soft-bounce limit");
    }
    match end {
        Ok(RunEnd::Finished) => {
            tracing::info!(slug = %row.slug, "issue sent");
            None
        }
        Ok(RunEnd::Waiting { next_due_at }) => {
            let secs = (next_due_at - unix_now()).clamp(1, MAX_IDLE.as_secs() as i64);
            Some(Duration::from_secs(secs as u64))
        }
        Ok(RunEnd::Paused { reason }) => {
            tracing::warn!(slug = %row.slug, %reason, "relay unusable; the send is paused");
            Some(AFTER_TROUBLE)
        }
        Ok(RunEnd::Interrupted) => None,
        Err(e) => {
            tracing::error!(slug = %row.slug, error = %e, "the send stopped");
            Some(AFTER_TROUBLE)
        }
    }
}
