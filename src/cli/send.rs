//! `herald send` and `herald status`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::watch;

use crate::config::Settings;
use crate::dispatch::{Progress, RunEnd};
use crate::domain::{EmailAddress, IssueSlug};
use crate::mail::SendOutcome;
use crate::startup::App;
use crate::store::DeliveryCounts;

/// Exit code when the relay is down and the send paused (EX_TEMPFAIL).
const EXIT_PAUSED: u8 = 75;
/// Exit code after SIGINT/SIGTERM (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The issue's Markdown file.
    pub issue: PathBuf,
    /// Confirm sending to every active subscriber.
    #[arg(long)]
    pub yes: bool,
    /// Exit as soon as nothing is due now, instead of waiting for scheduled retries.
    #[arg(long)]
    pub no_wait: bool,
    /// Send one test copy to this address only; nothing is recorded.
    #[arg(long, value_name = "ADDRESS")]
    pub to: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The issue's slug; all issues when left out.
    pub slug: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn send(settings: Settings, args: SendArgs) -> anyhow::Result<ExitCode> {
    let test_address = match &args.to {
        Some(to) => Some(EmailAddress::parse(to).with_context(|| format!("--to {to:?}"))?),
        None => None,
    };
    if test_address.is_none() && !args.yes {
        bail!(
            "this sends {} to every active subscriber; add --yes to confirm, or --to ADDRESS for a test copy",
            args.issue.display()
        );
    }
    super::runtime()?.block_on(async move {
        let app = App::build(settings).await?;
        let prepared = app.prepare(&args.issue)?;
        if let Some(to) = test_address {
            return match app.send_test(&prepared, &to).await? {
                SendOutcome::Accepted { reply } => {
                    println!("test copy of {} sent to {to}: {reply}", prepared.issue.slug);
                    Ok(ExitCode::SUCCESS)
                }
                other => bail!("test copy to {to} not sent: {}", describe(&other)),
            };
        }
        let (enqueued, job) = app.enqueue(&prepared, "cli").await?;
        eprintln!(
            "{}: {} recipients ({} new) via {}",
            prepared.issue.slug,
            enqueued.total,
            enqueued.added,
            app.transport.describe()
        );
        if enqueued.source_changed {
            eprintln!(
                "note: {} changed since this issue was first queued; recipients not yet sent get the new version",
                args.issue.display()
            );
        }

        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            super::stop_signal().await;
            eprintln!("stopping: finishing the messages in flight (send again to resume)");
            let _ = stop_tx.send(true);
        });
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let display = tokio::spawn(show_progress(progress_rx));
        let end = app
            .dispatcher()
            .run(job.clone(), !args.no_wait, progress_tx, stop_rx)
            .await?;
        let _ = display.await;
        app.transport.close().await;

        let counts = app.store.delivery_counts(job.issue_id).await?;
        let code = match &end {
            RunEnd::Finished => ExitCode::SUCCESS,
            RunEnd::Waiting { next_due_at } => {
                eprintln!(
                    "retries are scheduled; the next is due at {}: run the same command again to continue",
                    format_time(*next_due_at)
                );
                ExitCode::SUCCESS
            }
            RunEnd::Paused { reason } => {
                eprintln!("herald: send paused, the relay is unusable: {reason}");
                eprintln!("no attempts were counted for the rows not sent; fix the relay and run the same command to resume");
                ExitCode::from(EXIT_PAUSED)
            }
            RunEnd::Interrupted => ExitCode::from(EXIT_INTERRUPTED),
        };
        println!("{}", summary(&counts));
        Ok(code)
    })
}

pub fn status(settings: Settings, args: StatusArgs) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async move {
        let store = crate::store::connect(&settings.database.url).await?;
        let issues = match &args.slug {
            Some(slug) => {
                let slug = IssueSlug::parse(slug)?;
                match store.find_issue(slug.as_str()).await? {
                    Some(issue) => vec![issue],
                    None => bail!("no issue with slug {slug:?} has been queued"),
                }
            }
            None => store.list_issues().await?,
        };
        let mut rows = Vec::with_capacity(issues.len());
        for issue in issues {
            let counts = store.delivery_counts(issue.id).await?;
            rows.push((issue, counts));
        }
        if args.json {
            let json: Vec<serde_json::Value> = rows
                .iter()
                .map(|(issue, c)| {
                    serde_json::json!({
                        "slug": issue.slug, "status": issue.status,
                        "queued": c.queued, "sending": c.sending, "sent": c.sent,
                        "retry": c.retry, "failed": c.failed, "skipped": c.skipped,
                    })
                })
                .collect();
            let out = match (&args.slug, json.as_slice()) {
                (Some(_), [one]) => serde_json::to_string_pretty(one)?,
                _ => serde_json::to_string_pretty(&json)?,
            };
            println!("{out}");
        } else if rows.is_empty() {
            println!("no issue has been queued yet");
        } else {
            println!(
                "{:<40} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "slug", "status", "queued", "sending", "sent", "retry", "failed", "skipped"
            );
            for (issue, c) in rows {
                println!(
                    "{:<40} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    issue.slug,
                    issue.status,
                    c.queued,
                    c.sending,
                    c.sent,
                    c.retry,
                    c.failed,
                    c.skipped
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The contract's last line: `sent N, failed N, pending N`.
fn summary(c: &DeliveryCounts) -> String {
    format!(
        "sent {}, failed {}, pending {}",
        c.sent,
        c.failed,
        c.queued + c.sending + c.retry
    )
}

fn describe(outcome: &SendOutcome) -> String {
    match outcome {
        SendOutcome::Accepted { reply } => reply.clone(),
        SendOutcome::Transient { reply } => format!("temporary failure: {reply}"),
        SendOutcome::Permanent { reply, .. } => format!("refused: {reply}"),
        SendOutcome::RelayDown { reason } => format!("relay unusable: {reason}"),
    }
}

fn format_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// A bar with rate and ETA on a terminal; otherwise a line every few seconds.
async fn show_progress(mut rx: watch::Receiver<Progress>) {
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} {msg} {per_sec} eta {eta}",
            )
            .expect("a valid template"),
        );
        bar
    });
    let started = Instant::now();
    let mut last_line = Instant::now();
    let mut first = None;
    while rx.changed().await.is_ok() {
        let p = *rx.borrow_and_update();
        let first_done = *first.get_or_insert(p.done());
        match &bar {
            Some(bar) => {
                bar.set_length(p.total);
                bar.set_position(p.done());
                bar.set_message(format!("sent {} failed {}", p.sent, p.failed));
            }
            None if last_line.elapsed() >= Duration::from_secs(5) => {
                last_line = Instant::now();
                let rate =
                    (p.done() - first_done) as f64 / started.elapsed().as_secs_f64().max(0.001);
                eprintln!(
                    "progress: {}/{} done (sent {}, failed {}, skipped {}), {rate:.0} msg/s",
                    p.done(),
                    p.total,
                    p.sent,
                    p.failed,
                    p.skipped
                );
            }
            None => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
