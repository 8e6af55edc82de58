//! `herald send` and `herald status`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tokio::sync::watch;

use crate::config::Settings;
use crate::dispatch::{Progress, RunEnd};
use crate::domain::{EmailAddress, IssueSlug};
use crate::editor::{self, EditorError, IssueStatus};
use crate::mail::SendOutcome;
use crate::startup::{App, Overrides, StartupError};
use crate::store::{DeliveryCounts, NodeRow};
use crate::words::count;

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
    /// Send the issue even though its front matter says `draft: true`, or `herald check`
    /// finds an error in it (the errors are printed).
    #[arg(long)]
    pub force: bool,
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
    super::note_defaults(&settings);
    super::runtime()?.block_on(async move {
        let app = App::build(settings).await?;
        super::report_new_database(&app.store);
        let prepared = app.prepare(&args.issue).await?;
        if let Some(to) = test_address {
            return match app.send_test(&prepared, &to).await? {
                SendOutcome::Accepted { reply } => {
                    println!("test copy of {} sent to {to}: {reply}", prepared.issue.slug);
                    Ok(ExitCode::SUCCESS)
                }
                other => bail!("test copy to {to} not sent: {}", describe(&other)),
            };
        }
        let overrides = if args.force {
            Overrides::ALL
        } else {
            Overrides::default()
        };
        let queued = match app.enqueue_as(&prepared, "cli", overrides).await {
            Err(e @ StartupError::Draft { .. }) => {
                bail!("{e}, or add --force to send it anyway (--to ADDRESS sends a test copy)")
            }
            Err(StartupError::Refused { slug, errors }) => {
                print_findings(&errors);
                bail!(
                    "not sending {slug}: {}; fix the file, allow the rule in [check] allow or with <!-- herald:allow RULE -->, or add --force to send it anyway",
                    crate::words::count(errors.len() as u64, "error", "errors")
                )
            }
            other => other?,
        };
        if !queued.overridden.is_empty() {
            print_findings(&queued.overridden);
            eprintln!(
                "herald: sending {} despite {} (--force)",
                prepared.issue.slug,
                count(queued.overridden.len() as u64, "error", "errors")
            );
        }
        let (enqueued, job) = (queued.enqueued, queued.job);
        eprintln!(
            "{}: {} ({} new) via {}",
            prepared.issue.slug,
            count(enqueued.total, "recipient", "recipients"),
            enqueued.added,
            app.transport.describe()
        );
        if enqueued.added > 0 {
            // Other nodes' dispatchers (PostgreSQL) take their share of the new rows now
            // rather than at their next poll.
            app.dispatch_wake.notify_one();
        }
        if enqueued.source_changed {
            eprintln!(
                "note: {} changed since this issue was first queued; recipients not yet sent get the new version",
                args.issue.display()
            );
        }

        let (stop_tx, stop_rx) = watch::channel(false);
        let (beat_stop, beat_rx) = watch::channel(false);
        let beat = tokio::spawn(crate::nodes::heartbeat(
            app.store.clone(),
            app.node.clone(),
            "send",
            beat_rx,
        ));
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
        let _ = beat_stop.send(true);
        let _ = beat.await;
        app.transport.close().await;
        // Refusals during the session count towards the soft-bounce limit like returned mail.
        app.store
            .apply_soft_limit(
                job.issue_id,
                app.settings.bounces.soft_limit,
                crate::dispatch::unix_now(),
            )
            .await?;

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

/// Each finding as `herald check` prints it, on standard error.
fn print_findings(findings: &[crate::check::Finding]) {
    for f in findings {
        eprintln!("{}", super::check::human(f));
    }
}

pub fn status(settings: Settings, args: StatusArgs) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async move {
        let store = super::open_store(&settings).await?;
        let (issues, broken) = match &args.slug {
            Some(raw) => {
                let slug = IssueSlug::parse(raw).map_err(|e| anyhow!("{raw:?}: {e}"))?;
                match editor::issue_status_in(&store, &settings, &slug).await {
                    Ok(issue) => (vec![issue], Vec::new()),
                    Err(EditorError::NotFound(_)) => bail!(
                        "no issue {slug}: no file in {} has that slug, and none was queued",
                        settings.newsletter.issues_dir.display()
                    ),
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                let overview = editor::overview(&store, &settings).await?;
                (overview.issues, overview.broken)
            }
        };
        let nodes = editor::live_nodes(&store).await?;
        store.close().await;
        if args.json {
            let json: Vec<serde_json::Value> = issues.iter().map(status_json).collect();
            let out = match (&args.slug, json.as_slice()) {
                (Some(_), [one]) => serde_json::to_string_pretty(one)?,
                _ => serde_json::to_string_pretty(&json)?,
            };
            println!("{out}");
        } else if issues.is_empty() {
            println!(
                "no issues: {} holds no issue file and none was ever queued",
                settings.newsletter.issues_dir.display()
            );
        } else {
            print!("{}", status_table(&issues, &settings));
            if let (Some(_), [issue]) = (&args.slug, issues.as_slice()) {
                print!("{}", sent_by_lines(issue));
            }
        }
        if !args.json {
            print!("{}", nodes_table(&nodes));
        }
        for e in &broken {
            eprintln!("herald: cannot read {e}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// One issue in `herald status --json`: the counts at the top level, as before, with the
/// issue's state beside them.
fn status_json(issue: &IssueStatus) -> serde_json::Value {
    let c = &issue.counts;
    serde_json::json!({
        "slug": issue.slug, "title": issue.title, "status": issue.status,
        "draft": issue.draft, "date": issue.date, "scheduled_for": issue.scheduled_for,
        "queued": c.queued, "sending": c.sending, "sent": c.sent,
        "retry": c.retry, "failed": c.failed, "skipped": c.skipped,
        "bounced_hard": issue.bounces.hard, "bounced_soft": issue.bounces.soft,
        "complaints": issue.bounces.complaints, "sent_by": issue.sent_by,
    })
}

/// The table of `herald status`: one line per issue, newest first, with the delivery counts
/// of those that were queued and when the scheduler sends those it will.
fn status_table(issues: &[IssueStatus], settings: &Settings) -> String {
    use std::fmt::Write as _;
    let tz = crate::schedule::Schedule::from_settings(&settings.schedule)
        .map_or(chrono_tz::Tz::UTC, |s| s.tz);
    let width = issues
        .iter()
        .map(|i| i.slug.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>10}",
        "slug",
        "status",
        "queued",
        "sending",
        "sent",
        "retry",
        "failed",
        "skipped",
        "hard",
        "soft",
        "complaints"
    );
    for issue in issues {
        if issue.was_queued() {
            let (c, b) = (&issue.counts, &issue.bounces);
            let _ = writeln!(
                out,
                "{:<width$}  {:<9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>10}",
                issue.slug,
                issue.status,
                c.queued,
                c.sending,
                c.sent,
                c.retry,
                c.failed,
                c.skipped,
                b.hard,
                b.soft,
                b.complaints
            );
            continue;
        }
        let note = match (&issue.status[..], issue.scheduled_for.as_deref()) {
            ("scheduled", Some(at)) => {
                let at = chrono::DateTime::parse_from_rfc3339(at)
                    .map(|t| crate::words::readable_time(t.with_timezone(&chrono::Utc), tz))
                    .unwrap_or_else(|_| at.to_string());
                format!("goes out by itself {at}")
            }
            ("draft", _) => "draft: true; never sent until that line is removed".into(),
            _ => "never queued; not sent automatically (see herald schedule)".into(),
        };
        let _ = writeln!(out, "{:<width$}  {:<9} {note}", issue.slug, issue.status);
    }
    out
}

/// How many copies of one issue each node sent: `sent by: mail1-3fa9c2 6,712, ...`.
fn sent_by_lines(issue: &IssueStatus) -> String {
    if issue.sent_by.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = issue
        .sent_by
        .iter()
        .map(|s| {
            let node = s.node.as_deref().unwrap_or("(no node id)");
            format!("{node} {}", s.sent)
        })
        .collect();
    format!("sent by: {}\n", parts.join(", "))
}

/// The live nodes: id, role, when each started, its last heartbeat and how many copies it
/// sent in all; nothing when none is live.
fn nodes_table(nodes: &[NodeRow]) -> String {
    use std::fmt::Write as _;
    let live = crate::nodes::LIVE_WITHIN.as_secs();
    if nodes.is_empty() {
        return String::new();
    }
    let now = crate::dispatch::unix_now();
    let width = nodes
        .iter()
        .map(|n| n.id.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "\n{} (heartbeat in the last {live} s):\n",
        count(nodes.len() as u64, "live node", "live nodes")
    );
    let _ = writeln!(
        out,
        "{:<width$}  {:<6}  {:<23}  {:>9}  {:>10}",
        "node", "role", "started", "last seen", "sent"
    );
    for n in nodes {
        let _ = writeln!(
            out,
            "{:<width$}  {:<6}  {:<23}  {:>9}  {:>10}",
            n.id,
            n.role,
            format_time(n.started_at),
            format!("{} s ago", (now - n.last_seen_at).max(0)),
            n.sent
        );
    }
    out
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
        SendOutcome::Transient { reply, .. } => format!("temporary failure: {reply}"),
        SendOutcome::Permanent { reply, .. } => format!("refused: {reply}"),
        SendOutcome::RelayDown { reason } => format!("relay unusable: {reason}"),
    }
}

fn format_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// `; throttled: google 12/s, example.org 0.5/s` when destinations are slowed down.
fn throttled_note(p: &Progress) -> String {
    if p.throttled.is_empty() {
        return String::new();
    }
    let groups: Vec<String> = p
        .throttled
        .iter()
        .map(|g| {
            let rate = g.rate_per_second;
            if rate >= 10.0 {
                format!("{} {rate:.0}/s", g.name)
            } else {
                format!("{} {rate:.1}/s", g.name)
            }
        })
        .collect();
    format!("; throttled: {}", groups.join(", "))
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
        let p = rx.borrow_and_update().clone();
        let first_done = *first.get_or_insert(p.done());
        let throttled = throttled_note(&p);
        match &bar {
            Some(bar) => {
                bar.set_length(p.total);
                bar.set_position(p.done());
                bar.set_message(format!("sent {} failed {}{throttled}", p.sent, p.failed));
            }
            None if last_line.elapsed() >= Duration::from_secs(5) => {
                last_line = Instant::now();
                let rate =
                    (p.done() - first_done) as f64 / started.elapsed().as_secs_f64().max(0.001);
                eprintln!(
                    "progress: {}/{} done (sent {}, failed {}, skipped {}), {rate:.0} msg/s{throttled}",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::pacing::ThrottledGroup;

    #[test]
    fn the_progress_line_names_the_throttled_groups_with_their_pace() {
        let mut p = Progress::default();
        assert_eq!(throttled_note(&p), "");
        p.throttled = vec![
            ThrottledGroup {
                name: "example.org".into(),
                rate_per_second: 0.5,
                throttles: 3,
            },
            ThrottledGroup {
                name: "google".into(),
                rate_per_second: 12.4,
                throttles: 1,
            },
        ];
        assert_eq!(
            throttled_note(&p),
            "; throttled: example.org 0.5/s, google 12/s"
        );
    }
}
