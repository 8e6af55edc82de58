//! Words and numbers as readers and editors see them: a count with the right plural form,
//! and readable dates and times. Kept in one place so that message catalogs can take them
//! over; templates reach them through the `count` filter that [`register`] adds.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// `1 subscriber`, `2 subscribers`, `0 subscribers`.
pub fn count(n: u64, one: &str, other: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { other })
}

/// A time as an editor reads it, in `tz`: `Fri 27 Nov 2026, 09:00 UTC`,
/// `Fri 27 Nov 2026, 10:00 CET`.
pub fn readable_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%a %-d %b %Y, %H:%M %Z")
        .to_string()
}

/// A date as a reader reads it: `27 Nov 2026`.
pub fn readable_date<Z: chrono::TimeZone>(t: &DateTime<Z>) -> String
where
    Z::Offset: std::fmt::Display,
{
    t.format("%-d %b %Y").to_string()
}

/// Adds the `count` filter to a template environment:
/// `{{ n | count("subscriber", "subscribers") }}` renders `1 subscriber`.
pub fn register(env: &mut minijinja::Environment<'_>) {
    env.add_filter("count", |n: i64, one: String, other: String| {
        count(n.unsigned_abs(), &one, &other)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_everything_else_plural() {
        assert_eq!(count(0, "subscriber", "subscribers"), "0 subscribers");
        assert_eq!(count(1, "subscriber", "subscribers"), "1 subscriber");
        assert_eq!(count(2, "row", "rows"), "2 rows");
    }

    #[test]
    fn times_read_as_weekday_day_month_year_and_zone() {
        let t = DateTime::parse_from_rfc3339("2026-11-27T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(readable_time(t, Tz::UTC), "Fri 27 Nov 2026, 09:00 UTC");
        assert_eq!(
            readable_time(t, Tz::Europe__Berlin),
            "Fri 27 Nov 2026, 10:00 CET"
        );
        assert_eq!(readable_date(&t), "27 Nov 2026");
    }

    #[test]
    fn the_template_filter_counts() {
        let mut env = minijinja::Environment::new();
        register(&mut env);
        let out = env
            .render_str(
                "{{ n | count('copy', 'copies') }}",
                minijinja::context! { n => 1 },
            )
            .unwrap();
        assert_eq!(out, "1 copy");
    }
}
