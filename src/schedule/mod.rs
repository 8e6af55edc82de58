//! The recurring scheduler: `[schedule]` parsed into a [`Schedule`], the wall [`Clock`] it
//! reads, which issue a tick sends ([`plan`]), and the long-running task of `herald serve`
//! that sleeps until each tick and enqueues that issue ([`Scheduler`]).
//!
//! # What a tick sends
//!
//! The newest issue file in `newsletter.issues_dir` whose `date` is at or before the tick,
//! that was never enqueued (no row in `issues`), and that is dated after the newest issue
//! already enqueued by anyone (scheduler, `herald send`, API). At most one issue per tick.
//! Issues without a `date` are never sent automatically, and issues older than the last one
//! sent never are either. Broken issue files are skipped with a warning.
//!
//! # Never twice
//!
//! Each tick is claimed in `schedule_runs` before anything is enqueued, so a restart or a
//! second process cannot run the same tick again; the enqueue itself re-checks, in its
//! write transaction, that the slug was never enqueued. A process that dies between the
//! claim and the enqueue loses that tick (it stays `running`); the issue goes out at the
//! next tick instead, because it is still the newest due one.
//!
//! # Late ticks
//!
//! At start, the most recent tick before now that was never dealt with runs at once when it
//! is at most `schedule.max_lateness_minutes` late (counted in whole minutes), and is
//! recorded as `skipped` with a warning otherwise. Older missed ticks are not looked at. The
//! same guard applies to a tick the process wakes up for late (after a suspend, say).

mod fields;
mod plan;
mod service;

use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::config::ScheduleSettings;
use crate::issue::IssueError;
use crate::store::StoreError;

pub use plan::{plan, Candidate, Plan};
pub use service::{
    forecast, load_issues, upcoming_sends, Forecast, IssueFiles, Scheduler, SchedulerStatus,
    TickOutcome, TickReport,
};

/// Values of `schedule.cron` that turn the scheduler off (compared trimmed, ignoring case).
pub const OFF_VALUES: [&str; 3] = ["", "off", "none"];

/// The longest single sleep; the clock is read again after each, so a wall-clock change
/// (NTP, a suspended machine) is noticed within this long.
const MAX_NAP: std::time::Duration = std::time::Duration::from_secs(600);

/// A `[schedule]` setting herald cannot use. Displays as ``` `schedule.KEY`: problem ```.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("`schedule.cron`: cannot read {expression:?}: {message} (six or seven fields, seconds first, e.g. \"0 0 9 * * Fri\"; or \"off\")")]
    Cron { expression: String, message: String },
    #[error("`schedule.timezone`: unknown time zone {0:?}: use an IANA name such as \"Europe/Berlin\" or \"UTC\"")]
    Timezone(String),
    #[error("`schedule.max_lateness_minutes`: {0} is too large")]
    Lateness(u64),
    #[error("cannot list the issues: {0}")]
    Issues(IssueError),
    #[error("cannot prepare the scheduled issue: {0}")]
    Prepare(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ScheduleError {
    /// The `[schedule]` key a settings error is about (`cron`, `timezone`, ...), so the
    /// caller can name where that key was set.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::Cron { .. } => Some("cron"),
            Self::Timezone(_) => Some("timezone"),
            Self::Lateness(_) => Some("max_lateness_minutes"),
            _ => None,
        }
    }
}

/// `[schedule]`, validated.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// `None` when the scheduler is off.
    cron: Option<cron::Schedule>,
    /// The expression as written.
    pub expression: String,
    /// Ticks are computed in this zone, so "9:00" stays 9:00 local across DST changes.
    pub tz: Tz,
    /// A tick found later than this is skipped.
    pub max_lateness: TimeDelta,
}

impl Schedule {
    /// Parses and checks `[schedule]`. See [`Schedule::weekday_warning`] for a numeric
    /// day-of-week field: the `cron` crate counts Sunday as 1, so `5` means Thursday.
    pub fn from_settings(settings: &ScheduleSettings) -> Result<Self, ScheduleError> {
        let expression = settings.cron.trim().to_string();
        let tz = Tz::from_str(settings.timezone.trim())
            .map_err(|_| ScheduleError::Timezone(settings.timezone.clone()))?;
        let max_lateness = i64::try_from(settings.max_lateness_minutes)
            .ok()
            .and_then(TimeDelta::try_minutes)
            .ok_or(ScheduleError::Lateness(settings.max_lateness_minutes))?;
        let off = OFF_VALUES
            .iter()
            .any(|v| expression.eq_ignore_ascii_case(v));
        let cron = if off {
            None
        } else {
            let fields = expression.split_whitespace().count();
            if !(6..=7).contains(&fields) {
                return Err(ScheduleError::Cron {
                    expression,
                    message: format!("it has {fields} fields"),
                });
            }
            fields::check(&expression).map_err(|message| ScheduleError::Cron {
                expression: expression.clone(),
                message,
            })?;
            let parsed =
                cron::Schedule::from_str(&expression).map_err(|e| ScheduleError::Cron {
                    expression: expression.clone(),
                    message: one_line(&e.to_string()),
                })?;
            Some(parsed)
        };
        let schedule = Schedule {
            cron,
            expression,
            tz,
            max_lateness,
        };
        Ok(schedule)
    }

    /// False when `schedule.cron` turned the scheduler off.
    pub fn is_enabled(&self) -> bool {
        self.cron.is_some()
    }

    /// A caution when the day-of-week field (the sixth) uses numbers, which the `cron` crate
    /// reads with Sunday = 1. The scheduler logs it at start; `herald schedule` prints it.
    pub fn weekday_warning(&self) -> Option<String> {
        self.cron.as_ref()?;
        let field = self.expression.split_whitespace().nth(5)?;
        field.contains(|c: char| c.is_ascii_digit()).then(|| {
            format!(
                "schedule.cron day-of-week field {field:?} is numeric: the cron crate counts \
                 Sunday as 1 (so 6 is Friday); day names such as Fri are clearer"
            )
        })
    }

    /// The first tick strictly after `t`, or `None` when off or when the expression never
    /// fires again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = self.cron.as_ref()?;
        let local = t.with_timezone(&self.tz);
        cron.after(&local).next().map(|n| n.with_timezone(&Utc))
    }

    /// The next `n` ticks after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = t;
        while out.len() < n {
            match self.next_after(cursor) {
                Some(next) => {
                    out.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        out
    }

    /// The latest tick at or before `t`, looking back at most about 800 days.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.as_ref()?;
        let mut window = TimeDelta::minutes(2);
        let limit = TimeDelta::days(800);
        loop {
            let found = self.latest_in(t - window, t);
            if found.is_some() || window > limit {
                return found;
            }
            window = window * 4;
        }
    }

    /// The latest tick in `(from, to]`.
    pub fn latest_in(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut latest = None;
        let mut cursor = from;
        while let Some(next) = self.next_after(cursor).filter(|n| *n <= to) {
            latest = Some(next);
            cursor = next;
        }
        latest
    }

    /// Whether a tick at `tick` running at `now` is within `max_lateness` (whole minutes).
    pub fn on_time(&self, tick: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let late_minutes = (now - tick).num_minutes();
        late_minutes <= self.max_lateness.num_minutes()
    }
}

/// A cron crate message on one line, without the copy of the expression and the `^` it
/// draws under the problem (the error already quotes the expression), nor the final period.
fn one_line(message: &str) -> String {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let problem = line.rsplit_once(" ^ ").map_or(line.as_str(), |(_, p)| p);
    problem.trim_end_matches('.').to_string()
}

/// The wall clock the scheduler reads.
///
/// [`Clock::system`] reads the system clock. [`Clock::starting_at`] starts at a chosen wall
/// time and moves with tokio's clock (`now = start + elapsed tokio time`), so a test under
/// `tokio::time::pause` walks through days of ticks with `tokio::time::advance`.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    Anchored {
        wall: DateTime<Utc>,
        instant: tokio::time::Instant,
    },
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::System
    }

    /// A clock that reads `wall` now and advances with `tokio::time`.
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Clock::Anchored {
            wall,
            instant: tokio::time::Instant::now(),
        }
    }

    /// The current wall time.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Anchored { wall, instant } => {
                let elapsed = tokio::time::Instant::now().saturating_duration_since(*instant);
                TimeDelta::from_std(elapsed)
                    .ok()
                    .and_then(|d| wall.checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
        }
    }

    /// Sleeps until the wall time `t`, in naps of at most ten minutes, reading the clock
    /// again after each.
    pub async fn sleep_until(&self, t: DateTime<Utc>) {
        loop {
            let left = t - self.now();
            let Ok(left) = left.to_std() else { return };
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(MAX_NAP)).await;
        }
    }
}

#[cfg(test)]
mod tests;
