//! The per-issue report: did it arrive, did people read it, which links mattered, who left.
//!
//! [`IssueReport`] is what `GET /api/issues/{slug}/report` answers as JSON (its shape is
//! part of the API's contract) and, flattened by [`IssueReport::to_csv`], as CSV; the
//! dashboard shows the same figures with [`super::chart`]'s drawing of `hourly`.

use serde::Serialize;

use super::chart::HOURS;
use crate::config::TrackingSettings;
use crate::store::{AgentFigures, BounceCounts, DeliveryCounts, IssueActivity, Store, StoreError};

/// Bounced copies of the issue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bounced {
    pub hard: u64,
    pub soft: u64,
}

/// Clicks, when click tracking is on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Clicks {
    /// Every counted click.
    pub total: u64,
    /// Readers who clicked at least once.
    pub unique: u64,
    /// `unique / sent` (0 to 1, four decimals).
    pub rate: f64,
}

/// Opens, when open tracking is on. Machine opens (privacy proxies, scanners, fetches
/// within seconds of sending) are apart: `total` and `unique` count only the others.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Opens {
    pub total: u64,
    pub unique: u64,
    pub machine: u64,
    /// `unique / sent` (0 to 1, four decimals).
    pub rate: f64,
}

/// One link's clicks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkLine {
    pub url: String,
    pub total: u64,
    pub unique: u64,
}

/// One hour of activity after the send started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hourly {
    /// The start of the hour, RFC 3339 UTC (`2026-11-27T09:00:00Z`).
    pub hour: String,
    pub clicks: u64,
    pub unsubscribes: u64,
    pub bounces: u64,
    pub opens: u64,
    pub machine_opens: u64,
}

/// Which tracking was on when the report was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrackingModes {
    pub clicks: &'static str,
    pub opens: &'static str,
}

/// The report of one issue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueReport {
    /// The issue's slug.
    pub issue: String,
    pub title: String,
    /// When the send started (RFC 3339), if it did.
    pub started_at: Option<String>,
    /// Copies delivered to the receiving server.
    pub sent: u64,
    /// Copies refused for good, or given up on.
    pub failed: u64,
    pub bounced: Bounced,
    pub complaints: u64,
    /// Readers who unsubscribed with this issue's link.
    pub unsubscribes: u64,
    /// `null` while click tracking is off.
    pub clicks: Option<Clicks>,
    /// `null` while open tracking is off.
    pub opens: Option<Opens>,
    /// The tracked links, most clicked first (empty while click tracking is off).
    pub links: Vec<LinkLine>,
    /// The first 72 hours after the send started, hour by hour (empty before it started).
    pub hourly: Vec<Hourly>,
    pub tracking: TrackingModes,
    /// Counted hits by coarse agent class (`mail_client`, `browser`, `scanner`, `unknown`).
    pub agents: Vec<AgentFigures>,
}

/// What the report is made from, besides the store's activity figures.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub issue_id: Option<i64>,
    pub started_at: Option<i64>,
    pub counts: DeliveryCounts,
    pub bounces: BounceCounts,
    pub tracking: &'a TrackingSettings,
}

fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
}

/// Builds the report of one issue from its counts and the store's activity figures.
pub async fn issue_report(
    store: &Store,
    input: ReportInput<'_>,
) -> Result<IssueReport, StoreError> {
    let start = input.started_at.map(|s| s.div_euclid(3600) * 3600);
    let activity = match input.issue_id {
        Some(id) => {
            let from = start.unwrap_or(0);
            store
                .issue_activity(id, from, from + HOURS as i64 * 3600)
                .await?
        }
        None => IssueActivity::default(),
    };
    Ok(assemble(input, start, activity))
}

/// The report from figures already read (pure).
pub fn assemble(
    input: ReportInput<'_>,
    start: Option<i64>,
    activity: IssueActivity,
) -> IssueReport {
    let sent = input.counts.sent;
    let clicks_on = input.tracking.clicks.is_on();
    let opens_on = input.tracking.opens.is_on();
    let hourly = match start {
        Some(start) => (0..HOURS as i64)
            .map(|i| {
                let hour = start + i * 3600;
                let found = activity.hours.iter().find(|h| h.hour == hour);
                Hourly {
                    hour: rfc3339(hour),
                    clicks: found.map_or(0, |h| h.clicks),
                    unsubscribes: found.map_or(0, |h| h.unsubscribes),
                    bounces: found.map_or(0, |h| h.bounces),
                    opens: found.map_or(0, |h| h.opens),
                    machine_opens: found.map_or(0, |h| h.machine_opens),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    IssueReport {
        issue: input.slug.to_string(),
        title: input.title.to_string(),
        started_at: input.started_at.map(rfc3339),
        sent,
        failed: input.counts.failed,
        bounced: Bounced {
            hard: input.bounces.hard,
            soft: input.bounces.soft,
        },
        complaints: input.bounces.complaints,
        unsubscribes: activity.unsubscribes,
        clicks: clicks_on.then(|| Clicks {
            total: activity.clicks,
            unique: activity.unique_clickers,
            rate: rate(activity.unique_clickers, sent),
        }),
        opens: opens_on.then(|| Opens {
            total: activity.opens,
            unique: activity.unique_openers,
            machine: activity.machine_opens,
            rate: rate(activity.unique_openers, sent),
        }),
        links: if clicks_on {
            activity
                .links
                .into_iter()
                .map(|l| LinkLine {
                    url: l.url,
                    total: l.total,
                    unique: l.unique,
                })
                .collect()
        } else {
            Vec::new()
        },
        hourly,
        tracking: TrackingModes {
            clicks: input.tracking.clicks.as_str(),
            opens: input.tracking.opens.as_str(),
        },
        agents: activity.agents,
    }
}

impl IssueReport {
    /// The report as CSV, one figure per row: `metric,url,hour,value`. Totals leave `url`
    /// and `hour` empty; `link_total` and `link_unique` name their link's URL; `hourly_*`
    /// rows name their hour. A figure whose tracking is off is left out.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut row = |metric: &str, url: &str, hour: &str, value: String| {
            let _ = w.write_record([metric, url, hour, value.as_str()]);
        };
        row("metric", "url", "hour", "value".into());
        row("issue", "", "", self.issue.clone());
        for (metric, value) in [
            ("sent", self.sent),
            ("failed", self.failed),
            ("bounced_hard", self.bounced.hard),
            ("bounced_soft", self.bounced.soft),
            ("complaints", self.complaints),
            ("unsubscribes", self.unsubscribes),
        ] {
            row(metric, "", "", value.to_string());
        }
        if let Some(c) = &self.clicks {
            row("clicks_total", "", "", c.total.to_string());
            row("clicks_unique", "", "", c.unique.to_string());
            row("click_rate", "", "", c.rate.to_string());
        }
        if let Some(o) = &self.opens {
            row("opens_total", "", "", o.total.to_string());
            row("opens_unique", "", "", o.unique.to_string());
            row("opens_machine", "", "", o.machine.to_string());
            row("open_rate", "", "", o.rate.to_string());
        }
        for l in &self.links {
            row("link_total", &l.url, "", l.total.to_string());
            row("link_unique", &l.url, "", l.unique.to_string());
        }
        for h in &self.hourly {
            if self.clicks.is_some() {
                row("hourly_clicks", "", &h.hour, h.clicks.to_string());
            }
            if self.opens.is_some() {
                row("hourly_opens", "", &h.hour, h.opens.to_string());
                row(
                    "hourly_machine_opens",
                    "",
                    &h.hour,
                    h.machine_opens.to_string(),
                );
            }
            row(
                "hourly_unsubscribes",
                "",
                &h.hour,
                h.unsubscribes.to_string(),
            );
            row("hourly_bounces", "", &h.hour, h.bounces.to_string());
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrackingMode;
    use crate::store::HourFigures;

    #[test]
    fn tracking_off_reports_null_clicks_and_opens_and_72_hours_from_the_start() {
        let settings = TrackingSettings::default();
        let input = ReportInput {
            slug: "issue-1",
            title: "One",
            issue_id: Some(1),
            started_at: Some(1_795_770_000 + 125),
            counts: DeliveryCounts {
                sent: 10,
                failed: 1,
                ..Default::default()
            },
            bounces: BounceCounts::default(),
            tracking: &settings,
        };
        let start = Some(1_795_770_000);
        let activity = IssueActivity {
            unsubscribes: 2,
            hours: vec![HourFigures {
                hour: 1_795_770_000 + 3600,
                unsubscribes: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        let report = assemble(input.clone(), start, activity);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["clicks"].is_null() && json["opens"].is_null());
        assert_eq!(json["hourly"].as_array().unwrap().len(), 72);
        assert_eq!(json["hourly"][0]["hour"], "2026-11-27T09:00:00Z");
        assert_eq!(json["hourly"][1]["unsubscribes"], 2);
        assert_eq!(json["bounced"]["hard"], 0);
        let csv = report.to_csv();
        assert!(csv.starts_with("metric,url,hour,value\n"));
        assert!(csv.contains("\nunsubscribes,,,2\n"));
        assert!(!csv.contains("clicks_total"));

        let on = TrackingSettings {
            clicks: TrackingMode::Aggregate,
            ..Default::default()
        };
        let report = assemble(
            ReportInput {
                tracking: &on,
                ..input
            },
            start,
            IssueActivity {
                clicks: 7,
                unique_clickers: 4,
                ..Default::default()
            },
        );
        let clicks = report.clicks.unwrap();
        assert_eq!((clicks.total, clicks.unique, clicks.rate), (7, 4, 0.4));
    }
}
