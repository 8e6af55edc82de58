//! Checking the fields of a cron expression before the `cron` crate reads it, so that a value
//! out of range gets a message naming the field and its real range (the crate says "Hours
//! must be less than 23" of 25, and lets `0 0 25 * * Fri` through in some spellings).

/// One field of the expression: what it is called and what it takes.
struct Field {
    /// Singular, for messages: "hour".
    name: &'static str,
    /// Plural, for messages: "hours".
    plural: &'static str,
    min: u32,
    max: u32,
    /// Names for the values from `min` on (`Jan` is 1), compared ignoring case.
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The fields in order, seconds first, as the `cron` crate reads them (Sunday is 1).
const FIELDS: [Field; 7] = [
    Field {
        name: "second",
        plural: "seconds",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "minute",
        plural: "minutes",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        plural: "hours",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of the month",
        plural: "days of the month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        plural: "months",
        min: 1,
        max: 12,
        names: MONTHS,
    },
    Field {
        name: "day of the week",
        plural: "days of the week",
        min: 1,
        max: 7,
        names: WEEKDAYS,
    },
    Field {
        name: "year",
        plural: "years",
        min: 1970,
        max: 2100,
        names: &[],
    },
];

/// Checks every field of a six- or seven-field expression; the message says which field is
/// wrong and what it takes.
pub fn check(expression: &str) -> Result<(), String> {
    for (field, text) in FIELDS.iter().zip(expression.split_whitespace()) {
        for item in text.split(',') {
            check_item(field, item)
                .map_err(|problem| format!("{} field {text:?}: {problem}", field.name))?;
        }
    }
    Ok(())
}

/// One comma-separated part: `*`, `?`, a value, a range `a-b`, each optionally `/step`.
fn check_item(field: &Field, item: &str) -> Result<(), String> {
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(step)),
        None => (item, None),
    };
    match base {
        "*" | "?" => {}
        "" => return Err(format!("{item:?} is missing a value")),
        _ => match base.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (value(field, from)?, value(field, to)?);
                if from > to {
                    return Err(format!(
                        "the range {base} runs backwards; write the smaller {} first",
                        field.name
                    ));
                }
            }
            None => {
                value(field, base)?;
            }
        },
    }
    if let Some(step) = step {
        let n: u32 = step
            .parse()
            .map_err(|_| format!("the step {step:?} after / is not a whole number"))?;
        if n == 0 || n > field.max {
            return Err(format!("the step /{step} must be from 1 to {}", field.max));
        }
    }
    Ok(())
}

/// A number in range or a name, as its number.
fn value(field: &Field, text: &str) -> Result<u32, String> {
    let range = || {
        let names = match (field.names.first(), field.names.last()) {
            (Some(first), Some(last)) => {
                format!(", or the names {} to {}", title(first), title(last))
            }
            _ => String::new(),
        };
        format!(
            "{} run from {} to {}{names}",
            field.plural, field.min, field.max
        )
    };
    if let Ok(n) = text.parse::<u32>() {
        if n < field.min || n > field.max {
            return Err(format!("{} {n} is out of range: {}", field.name, range()));
        }
        return Ok(n);
    }
    let lower = text.to_ascii_lowercase();
    // The crate takes whole names too (Friday), by their first three letters.
    let known = field.names.iter().position(|name| is_name_of(&lower, name));
    match known {
        Some(i) => Ok(field.min + i as u32),
        None => Err(format!("{text:?} is not a {}: {}", field.name, range())),
    }
}

/// Whether `text` (lower case) is the abbreviation `name` or a full name starting with it.
fn is_name_of(text: &str, name: &str) -> bool {
    const FULL: &[&str] = &[
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    text == name
        || FULL
            .iter()
            .any(|full| *full == text && full.starts_with(name))
}

/// `fri` → `Fri`.
fn title(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn values_out_of_range_name_the_field_and_its_range() {
        assert_eq!(
            check("0 0 25 * * Fri").unwrap_err(),
            "hour field \"25\": hour 25 is out of range: hours run from 0 to 23"
        );
        assert_eq!(
            check("0 60 9 * * Fri").unwrap_err(),
            "minute field \"60\": minute 60 is out of range: minutes run from 0 to 59"
        );
        assert_eq!(
            check("0 0 9 * * 0").unwrap_err(),
            "day of the week field \"0\": day of the week 0 is out of range: days of the week \
             run from 1 to 7, or the names Sun to Sat"
        );
        assert_eq!(
            check("0 0 9 32 * *").unwrap_err(),
            "day of the month field \"32\": day of the month 32 is out of range: days of the \
             month run from 1 to 31"
        );
        assert!(check("0 0 9 * 13 *")
            .unwrap_err()
            .contains("months run from 1 to 12, or the names Jan to Dec"));
        assert!(check("0 0 9 * * Fri 1969")
            .unwrap_err()
            .contains("years run from 1970 to 2100"));
    }

    #[test]
    fn lists_ranges_steps_and_names_are_checked_item_by_item() {
        assert!(check("0 0 9,23 * * Mon-Fri").is_ok());
        assert!(check("0 */15 * * * *").is_ok());
        assert!(check("0 0 9 1-7 Jan,Jul Friday").is_ok());
        assert!(check("0 0 9 ? * 2-6 2030").is_ok());
        assert!(check("0 0 9,24 * * *")
            .unwrap_err()
            .contains("hour 24 is out of range"));
        assert!(check("0 0 9 * * Fri-Mon")
            .unwrap_err()
            .contains("runs backwards"));
        assert!(check("0 */0 * * * *")
            .unwrap_err()
            .contains("the step /0 must be from 1 to 59"));
        assert!(check("0 0 9 * * Fryday")
            .unwrap_err()
            .contains("\"Fryday\" is not a day of the week"));
    }
}
