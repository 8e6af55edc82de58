//! `herald subscribers export`: everything held about each subscriber, as CSV.
//!
//! Columns: `id, email, name, status, created_at, confirmed_at, unsubscribed_at,
//! consent_ip, consent_user_agent, source, attributes, events`. Times are RFC 3339 (UTC);
//! `attributes` is the JSON object of extra import columns; `events` is the JSON array of the
//! subscriber's event trail (the consent record). Rows stream from the database, so memory
//! stays flat.
//!
//! A cell that a spreadsheet would read as a formula (it starts with `=`, `+`, `-`, `@`, a
//! tab or a carriage return) is written with a `'` in front, the OWASP rule against CSV
//! injection: a reader's name `=HYPERLINK(…)` or a browser's User-Agent cannot run when an
//! editor opens the export. The `'` is part of the exported text.

use std::io::Write;

use futures::StreamExt;

use crate::store::{Store, StoreError};

/// Errors while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write the CSV: {0}")]
    Write(#[from] csv::Error),
    #[error("cannot write the CSV: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The header row of an export.
pub const HEADER: [&str; 12] = [
    "id",
    "email",
    "name",
    "status",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "consent_ip",
    "consent_user_agent",
    "source",
    "attributes",
    "events",
];

/// Writes every subscriber to `output`; returns how many.
#[tracing::instrument(skip_all)]
pub async fn export_csv<W: Write>(store: &Store, output: W) -> Result<u64, ExportError> {
    let mut writer = csv::Writer::from_writer(output);
    writer.write_record(HEADER)?;
    let mut records = std::pin::pin!(store.export_subscriber_records());
    let mut n = 0;
    while let Some(record) = records.next().await {
        let record = record?;
        let s = &record.subscriber;
        // One statement, so the temporary cells live until the record is written.
        writer.write_record(
            [
                s.id.to_string().as_str(),
                &s.email,
                s.name.as_deref().unwrap_or(""),
                s.status.as_str(),
                &rfc3339(Some(s.created_at)),
                &rfc3339(s.confirmed_at),
                &rfc3339(s.unsubscribed_at),
                s.consent_ip.as_deref().unwrap_or(""),
                s.consent_user_agent.as_deref().unwrap_or(""),
                &s.source,
                &s.attributes,
                &record.events,
            ]
            .map(spreadsheet_safe)
            .iter()
            .map(|c| c.as_bytes()),
        )?;
        n += 1;
    }
    writer.flush()?;
    Ok(n)
}

/// `cell`, with a `'` in front when a spreadsheet would otherwise read it as a formula.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Unix seconds as RFC 3339 UTC; empty for none.
pub fn rfc3339(seconds: Option<i64>) -> String {
    seconds
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_quote_and_others_stay_as_they_are() {
        for formula in [
            "=HYPERLINK(\"http://evil.example\")",
            "@SUM(1+1)*cmd|' /C calc'!A0",
            "+1",
            "-2+3",
            "\tx",
            "\rx",
            "=cmd|'/Ccalc'!A0@example.org",
        ] {
            assert_eq!(spreadsheet_safe(formula), format!("'{formula}"));
        }
        for plain in [
            "Jane Doe",
            "jane@example.org",
            "",
            "2026-12-01T09:00:00Z",
            "{\"a\":1}",
        ] {
            assert_eq!(spreadsheet_safe(plain), plain);
        }
    }
}
