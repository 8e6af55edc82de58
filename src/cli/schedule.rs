//! `herald schedule`: the cron schedule, its next three runs, and what each would send.

use std::fmt::Write as _;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Settings;
use crate::schedule::{forecast, Forecast, Plan, Schedule};
use crate::words::count;

/// How many upcoming runs are shown.
const RUNS_SHOWN: usize = 3;

/// The validated `[schedule]`; an error names where the faulty key was set (the
/// environment variable, or `config_file`).
pub(super) fn read_schedule(settings: &Settings, config_file: &str) -> anyhow::Result<Schedule> {
    Schedule::from_settings(&settings.schedule).map_err(|e| {
        let origin = e.setting().map_or_else(
            || config_file.to_string(),
            |key| crate::config::origin_of("schedule", key, config_file),
        );
        anyhow!("{origin}: {e}")
    })
}

/// Prints the schedule and its forecast. `config_file` names the settings file in errors.
pub fn run(settings: &Settings, config_file: &str) -> anyhow::Result<()> {
    let schedule = read_schedule(settings, config_file)?;
    if !schedule.is_enabled() {
        println!(
            "schedule: off (schedule.cron = {:?}): no issue is sent automatically",
            settings.schedule.cron
        );
        return Ok(());
    }
    let now = Utc::now();
    let ticks = schedule.upcoming(now, RUNS_SHOWN);
    let dir = settings.newsletter.issues_dir.clone();
    let limits = settings.newsletter.issue_limits();
    let (forecast, last_run) = super::runtime()?.block_on(async {
        let store = super::open_store(settings).await?;
        let forecast = forecast(&store, &dir, limits, &ticks).await?;
        let last_run = store.list_schedule_runs().await?.pop();
        store.close().await;
        anyhow::Ok((forecast, last_run))
    })?;
    print!("{}", report(&schedule, &forecast, last_run.as_ref()));
    Ok(())
}

fn report(
    schedule: &Schedule,
    forecast: &Forecast,
    last_run: Option<&crate::store::ScheduleRun>,
) -> String {
    let tz = schedule.tz;
    let plans = &forecast.plans;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "schedule: {} (timezone {}, max lateness {})",
        schedule.expression,
        tz,
        count(
            schedule.max_lateness.num_minutes().unsigned_abs(),
            "minute",
            "minutes"
        )
    );
    if let Some(warning) = schedule.weekday_warning() {
        let _ = writeln!(out, "note: {warning}");
    }
    if let Some(run) = last_run {
        let at = DateTime::from_timestamp(run.tick_at, 0).unwrap_or_default();
        let what = match (&run.outcome[..], &run.slug) {
            ("enqueued", Some(slug)) => format!("sent {slug}"),
            (outcome, _) => match &run.detail {
                Some(detail) => format!("{outcome}: {detail}"),
                None => outcome.to_string(),
            },
        };
        let _ = writeln!(out, "last run: {}: {what}", both(at, tz));
    }
    let first = plans.first();
    match first.and_then(|p| p.last_sent.as_ref()) {
        Some((slug, date)) => {
            let _ = writeln!(out, "last issue sent: {slug} (dated {})", utc(*date));
        }
        None => {
            let _ = writeln!(out, "last issue sent: none");
        }
    }
    if plans.is_empty() {
        let _ = writeln!(out, "next runs: none (the expression never fires again)");
    } else {
        let _ = writeln!(out, "next runs (if nothing else is sent meanwhile):");
    }
    for plan in plans {
        let what = match &plan.send {
            Some(c) => format!("{} \"{}\"", c.slug, c.title),
            None => Plan::NOTHING.to_string(),
        };
        let _ = writeln!(out, "  {}: {what}", both(plan.at, tz));
    }
    if let Some(plan) = first {
        if let Some((_, last)) = &plan.last_sent {
            let older: Vec<String> = plan
                .older_than_last
                .iter()
                .chain(&plan.not_yet_due)
                .filter(|c| c.date <= *last)
                .map(|c| format!("{} (dated {})", c.slug, utc(c.date)))
                .collect();
            if !older.is_empty() {
                let _ = writeln!(
                    out,
                    "never sent automatically, older than the last one sent: {}",
                    older.join(", ")
                );
            }
        }
        if !plan.undated.is_empty() {
            let _ = writeln!(
                out,
                "never sent automatically, no date: {}",
                plan.undated.join(", ")
            );
        }
        if !plan.drafts.is_empty() {
            let _ = writeln!(
                out,
                "never sent automatically, drafts (draft: true): {}",
                plan.drafts.join(", ")
            );
        }
    }
    for broken in &forecast.broken {
        let _ = writeln!(out, "never sent automatically, cannot be read: {broken}");
    }
    out
}

/// `Fri 2026-11-27 09:00 CET (2026-11-27 08:00 UTC)`; the time once when the zone is UTC.
fn both(t: DateTime<Utc>, tz: Tz) -> String {
    if tz == Tz::UTC || tz == Tz::Etc__UTC {
        return t.format("%a %Y-%m-%d %H:%M UTC").to_string();
    }
    format!(
        "{} ({})",
        t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M %Z"),
        utc(t)
    )
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}
