//! Unit tests of the schedule: reading `[schedule]`, tick arithmetic across time zones and
//! DST, the lateness rule, the anchored clock, and which issue a plan picks.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc, Weekday};

use super::*;
use crate::issue::Issue;
use crate::store::EnqueuedIssueDate;

fn settings(cron: &str, timezone: &str) -> ScheduleSettings {
    ScheduleSettings {
        cron: cron.into(),
        timezone: timezone.into(),
        max_lateness_minutes: 120,
    }
}

fn schedule(cron: &str, timezone: &str) -> Schedule {
    Schedule::from_settings(&settings(cron, timezone)).unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn the_default_fires_every_friday_at_nine_utc() {
    let s = Schedule::from_settings(&ScheduleSettings::default()).unwrap();
    // 2026-11-24 is a Tuesday.
    let next = s.upcoming(utc("2026-11-24T12:00:00Z"), 3);
    assert_eq!(
        next,
        vec![
            utc("2026-11-27T09:00:00Z"),
            utc("2026-12-04T09:00:00Z"),
            utc("2026-12-11T09:00:00Z"),
        ]
    );
    assert!(s.weekday_warning().is_none());
}

#[test]
fn numeric_day_five_is_thursday_because_the_cron_crate_counts_sunday_as_one() {
    let s = schedule("0 0 9 * * 5", "UTC");
    let next = s.next_after(utc("2026-11-24T12:00:00Z")).unwrap();
    assert_eq!(next.weekday(), Weekday::Thu);
    assert_eq!(next, utc("2026-11-26T09:00:00Z"));
    // Friday is 6 in this numbering, and Sunday is 1.
    let friday = schedule("0 0 9 * * 6", "UTC");
    assert_eq!(
        friday
            .next_after(utc("2026-11-24T12:00:00Z"))
            .unwrap()
            .weekday(),
        Weekday::Fri
    );
    let sunday = schedule("0 0 9 * * 1", "UTC");
    assert_eq!(
        sunday
            .next_after(utc("2026-11-24T12:00:00Z"))
            .unwrap()
            .weekday(),
        Weekday::Sun
    );
    let warning = s
        .weekday_warning()
        .expect("a numeric day-of-week is flagged");
    assert!(warning.contains("Sunday as 1"), "{warning}");
}

#[test]
fn day_names_and_ranges_are_read_as_written() {
    let s = schedule("0 30 7 * * Mon-Wed", "UTC");
    let days: Vec<Weekday> = s
        .upcoming(utc("2026-11-22T00:00:00Z"), 4)
        .iter()
        .map(|t| t.weekday())
        .collect();
    assert_eq!(
        days,
        vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Mon]
    );
    assert!(s.weekday_warning().is_none());
}

#[test]
fn ticks_keep_local_time_across_a_daylight_saving_change() {
    let s = schedule("0 0 9 * * Fri", "Europe/Berlin");
    // Summer time ends on Sunday 2026-10-25 in Berlin.
    let ticks = s.upcoming(utc("2026-10-20T00:00:00Z"), 2);
    assert_eq!(ticks[0], utc("2026-10-23T07:00:00Z")); // 09:00 CEST
    assert_eq!(ticks[1], utc("2026-10-30T08:00:00Z")); // 09:00 CET
    for t in ticks {
        assert_eq!(t.with_timezone(&s.tz).hour(), 9);
    }
}

#[test]
fn a_bad_expression_is_one_line_naming_the_key() {
    let e = Schedule::from_settings(&settings("0 0 9 * * Fryday", "UTC")).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("`schedule.cron`: cannot read \"0 0 9 * * Fryday\""),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.contains("\"Fryday\" is not a day of the week"),
        "{text}"
    );

    // A five-field crontab line (no seconds) is rejected with the field count.
    let e = Schedule::from_settings(&settings("0 9 * * Fri", "UTC")).unwrap_err();
    assert!(e.to_string().contains("it has 5 fields"), "{e}");
    assert!(e.to_string().contains("seconds first"), "{e}");

    let e = Schedule::from_settings(&settings("0 61 9 * * Fri", "UTC")).unwrap_err();
    assert!(e.to_string().starts_with("`schedule.cron`:"), "{e}");

    // Out of range: the field, the value and the real range.
    let e = Schedule::from_settings(&settings("0 0 25 * * Fri", "UTC")).unwrap_err();
    assert!(
        e.to_string()
            .contains("hour 25 is out of range: hours run from 0 to 23"),
        "{e}"
    );
}

#[test]
fn an_unknown_time_zone_is_one_line_naming_the_key() {
    let e = Schedule::from_settings(&settings("0 0 9 * * Fri", "Europe/Atlantis")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`schedule.timezone`: unknown time zone \"Europe/Atlantis\": use an IANA name such as \"Europe/Berlin\" or \"UTC\""
    );
}

#[test]
fn off_and_empty_turn_the_scheduler_off() {
    for value in ["", "off", "OFF", " none "] {
        let s = schedule(value, "UTC");
        assert!(!s.is_enabled(), "{value:?}");
        assert_eq!(s.next_after(utc("2026-11-24T12:00:00Z")), None);
        assert_eq!(s.latest_at_or_before(utc("2026-11-24T12:00:00Z")), None);
    }
    assert!(schedule("0 0 9 * * Fri", "UTC").is_enabled());
}

#[test]
fn the_latest_tick_before_now_is_found_even_weeks_back() {
    let s = schedule("0 0 9 * * Fri", "UTC");
    assert_eq!(
        s.latest_at_or_before(utc("2026-11-24T12:00:00Z")),
        Some(utc("2026-11-20T09:00:00Z"))
    );
    // A tick exactly at `now` counts.
    assert_eq!(
        s.latest_at_or_before(utc("2026-11-27T09:00:00Z")),
        Some(utc("2026-11-27T09:00:00Z"))
    );
    let yearly = schedule("0 0 9 1 Jan *", "UTC");
    assert_eq!(
        yearly.latest_at_or_before(utc("2026-11-24T12:00:00Z")),
        Some(utc("2026-01-01T09:00:00Z"))
    );
}

#[test]
fn lateness_counts_whole_minutes() {
    let mut st = settings("0 0 9 * * Fri", "UTC");
    st.max_lateness_minutes = 0;
    let strict = Schedule::from_settings(&st).unwrap();
    let tick = utc("2026-11-27T09:00:00Z");
    assert!(strict.on_time(tick, utc("2026-11-27T09:00:59Z")));
    assert!(!strict.on_time(tick, utc("2026-11-27T09:01:00Z")));
    let default = schedule("0 0 9 * * Fri", "UTC");
    assert!(default.on_time(tick, utc("2026-11-27T11:00:59Z")));
    assert!(!default.on_time(tick, utc("2026-11-27T11:01:00Z")));
}

#[tokio::test(start_paused = true)]
async fn the_anchored_clock_moves_with_paused_tokio_time() {
    let start = utc("2026-11-27T08:59:00Z");
    let clock = Clock::starting_at(start);
    assert_eq!(clock.now(), start);
    tokio::time::advance(std::time::Duration::from_secs(90)).await;
    assert_eq!(clock.now(), utc("2026-11-27T09:00:30Z"));
    // Sleeping until a wall time a week away takes (paused) naps and ends there.
    let target = utc("2026-12-04T09:00:00Z");
    clock.sleep_until(target).await;
    assert!(clock.now() >= target);
    assert!(clock.now() - target < chrono::TimeDelta::seconds(1));
}

fn issue(slug: &str, date: Option<&str>) -> Issue {
    let date_line = date.map(|d| format!("date: {d}\n")).unwrap_or_default();
    let text = format!("---\ntitle: \"Issue {slug}\"\n{date_line}---\n\nBody of {slug}.\n");
    let mut issue = crate::issue::parse(text.as_bytes(), slug).unwrap();
    issue.path = format!("{slug}.md").into();
    issue
}

fn sent(slug: &str, date: Option<&str>) -> EnqueuedIssueDate {
    EnqueuedIssueDate {
        slug: slug.into(),
        issue_date: date.map(|d| utc(d).timestamp()),
    }
}

#[test]
fn the_plan_picks_the_newest_due_issue_and_skips_the_rest() {
    let issues = vec![
        issue("one", Some("2026-11-06T09:00:00Z")),
        issue("two", Some("2026-11-13T09:00:00Z")),
        issue("three", Some("2026-11-20T09:00:00Z")),
        issue("future", Some("2026-12-01T09:00:00Z")),
        issue("undated", None),
    ];
    let p = plan(&issues, &[], utc("2026-11-20T09:00:00Z"));
    assert_eq!(p.send.as_ref().unwrap().slug, "three");
    let older: Vec<_> = p.older_than_last.iter().map(|c| c.slug.as_str()).collect();
    assert_eq!(older, ["one", "two"]);
    assert_eq!(p.not_yet_due[0].slug, "future");
    assert_eq!(p.undated, ["undated"]);
    // An issue dated exactly at the tick is due.
    let p = plan(&issues, &[], utc("2026-11-13T09:00:00Z"));
    assert_eq!(p.send.unwrap().slug, "two");
}

#[test]
fn the_plan_never_picks_an_issue_older_than_the_last_one_sent() {
    let issues = vec![
        issue("old-unsent", Some("2026-11-06T09:00:00Z")),
        issue("sent", Some("2026-11-13T09:00:00Z")),
    ];
    let p = plan(
        &issues,
        &[sent("sent", Some("2026-11-13T09:00:00Z"))],
        utc("2026-11-27T09:00:00Z"),
    );
    assert_eq!(p.send, None);
    assert_eq!(p.older_than_last[0].slug, "old-unsent");
    assert_eq!(
        p.last_sent,
        Some(("sent".to_string(), utc("2026-11-13T09:00:00Z")))
    );
}

#[test]
fn an_issue_enqueued_without_a_stored_date_counts_with_its_file_date() {
    let issues = vec![
        issue("older", Some("2026-11-06T09:00:00Z")),
        issue("manual", Some("2026-11-13T09:00:00Z")),
    ];
    let p = plan(
        &issues,
        &[sent("manual", None)],
        utc("2026-11-27T09:00:00Z"),
    );
    assert_eq!(p.send, None, "older must not go out after manual");
    assert_eq!(p.last_sent.unwrap().0, "manual");
}

#[test]
fn a_same_day_issue_is_not_newer_than_the_last_one_sent() {
    let issues = vec![
        issue("a", Some("2026-11-13T09:00:00Z")),
        issue("b", Some("2026-11-13T09:00:00Z")),
    ];
    let p = plan(
        &issues,
        &[sent("a", Some("2026-11-13T09:00:00Z"))],
        utc("2026-11-27T09:00:00Z"),
    );
    assert_eq!(p.send, None);
}

#[test]
fn dates_without_an_offset_are_utc() {
    let issues = vec![issue("plain", Some("2026-11-27"))];
    let at = Utc.with_ymd_and_hms(2026, 11, 26, 23, 59, 59).unwrap();
    assert_eq!(plan(&issues, &[], at).send, None);
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap();
    assert_eq!(plan(&issues, &[], at).send.unwrap().slug, "plain");
}

fn draft(slug: &str, date: &str) -> Issue {
    let text = format!("---\ntitle: \"Issue {slug}\"\ndate: {date}\ndraft: true\n---\n\nBody.\n");
    let mut issue = crate::issue::parse(text.as_bytes(), slug).unwrap();
    issue.path = format!("{slug}.md").into();
    issue
}

#[test]
fn a_draft_is_never_planned_even_when_it_is_the_newest_due_issue() {
    let issues = vec![
        issue("ready", Some("2026-11-13T09:00:00Z")),
        draft("demo", "2026-11-20T09:00:00Z"),
    ];
    let p = plan(&issues, &[], utc("2026-11-27T09:00:00Z"));
    assert_eq!(p.send.unwrap().slug, "ready");
    assert_eq!(p.drafts, ["demo"]);
    let only_draft = plan(&issues[1..], &[], utc("2026-11-27T09:00:00Z"));
    assert_eq!(only_draft.send, None);
}
