//! `herald subscribers import`: a CSV file streamed into the store in large batches.
//!
//! The header row names the columns (case-insensitively). `email` is required; `name` and
//! `status` are optional; every other column becomes a string attribute in the subscriber's
//! JSON `attributes` (empty cells are left out). A UTF-8 byte order mark is ignored.
//!
//! Memory stays flat: the reader holds one record, and at most one batch
//! ([`ImportOptions::batch_rows`]) of parsed rows waits for the database. Duplicates are
//! found by the database's case-insensitive unique index, not by a set in memory, so they
//! are caught within the file and against the list alike. A bad row never stops the import:
//! it is reported as an [`ImportEvent::Rejected`] with its line number, and counted. Files
//! with Windows line ends (CRLF) are read as if they had `\n` alone, so line numbers count
//! the same for both.

use std::fmt;
use std::io::Read;

use crate::domain::{EmailAddress, ErasureKey, SubscriberName, SubscriberStatus};
use crate::store::{NewSubscriber, Store, StoreError};

/// The `source` recorded on imported subscribers and their events.
pub const SOURCE: &str = "import";
/// Attributes of one row may take at most this many bytes of JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

/// Errors that stop an import. Bad rows do not: they become [`Rejection`]s.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the header row has no `email` column")]
    NoEmailColumn,
    #[error("the file is empty: it needs a header row naming an `email` column")]
    Empty,
    #[error("cannot read the CSV file: {0}")]
    Read(#[from] csv::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Status of rows without a `status` value.
    pub default_status: SubscriberStatus,
    /// Rows per database transaction.
    pub batch_rows: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            default_status: SubscriberStatus::Active,
            batch_rows: 10_000,
        }
    }
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 1-based line of the file where the row starts.
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What the import reports while it runs.
#[derive(Debug, Clone)]
pub enum ImportEvent {
    Rejected(Rejection),
    /// Bytes of the file read so far.
    Progress {
        bytes: u64,
    },
}

/// The outcome of an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub imported: u64,
    /// Rows whose address was already on the list or earlier in the file (any letter case).
    pub duplicates: u64,
    pub rejected: u64,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {}, duplicates {}, rejected {}",
            self.imported, self.duplicates, self.rejected
        )
    }
}

/// Where each known column sits in a record.
struct Columns {
    email: usize,
    name: Option<usize>,
    status: Option<usize>,
    attributes: Vec<(usize, String)>,
    width: usize,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, ImportError> {
        let mut email = None;
        let mut name = None;
        let mut status = None;
        let mut attributes = Vec::new();
        for (i, raw) in header.iter().enumerate() {
            let label = raw.trim_start_matches('\u{feff}').trim();
            match label.to_ascii_lowercase().as_str() {
                "email" if email.is_none() => email = Some(i),
                "name" if name.is_none() => name = Some(i),
                "status" if status.is_none() => status = Some(i),
                "" => {}
                _ => attributes.push((i, label.to_string())),
            }
        }
        Ok(Self {
            email: email.ok_or(ImportError::NoEmailColumn)?,
            name,
            status,
            attributes,
            width: header.len(),
        })
    }

    /// Parses one record into a subscriber, or says why it cannot be one.
    fn parse(
        &self,
        record: &csv::StringRecord,
        default_status: SubscriberStatus,
    ) -> Result<NewSubscriber, String> {
        if record.len() > self.width {
            return Err(format!(
                "the row has {} fields but the header names {}",
                record.len(),
                self.width
            ));
        }
        let field = |i: usize| record.get(i).unwrap_or("");
        let email = EmailAddress::parse(field(self.email)).map_err(|e| e.to_string())?;
        let name = match self.name {
            Some(i) => SubscriberName::parse(field(i)).map_err(|e| e.to_string())?,
            None => None,
        };
        let status = match self.status.map(field).map(str::trim) {
            Some(s) if !s.is_empty() => s
                .parse()
                .map_err(|e: crate::domain::StatusError| e.to_string())?,
            _ => default_status,
        };
        let mut attributes = serde_json::Map::new();
        let mut size = 0;
        for (i, key) in &self.attributes {
            let value = field(*i);
            if value.is_empty() {
                continue;
            }
            size += key.len() + value.len() + 6;
            attributes.insert(key.clone(), serde_json::Value::String(value.to_string()));
        }
        if size > MAX_ATTRIBUTES_BYTES {
            return Err(format!(
                "the attribute columns hold more than {MAX_ATTRIBUTES_BYTES} bytes"
            ));
        }
        Ok(NewSubscriber {
            email,
            name,
            status,
            attributes,
        })
    }
}

/// One data row of an import file: the line it starts on, and the subscriber it holds or
/// why it holds none.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based line of the file where the row starts.
    pub line: u64,
    pub parsed: Result<NewSubscriber, String>,
}

/// An import file read row by row, without a database: what [`import_csv`] stores, and
/// what it rejects with the reason. The reader holds one record at a time.
pub struct Rows<R: Read> {
    reader: csv::Reader<LfLineEnds<R>>,
    columns: Columns,
    default_status: SubscriberStatus,
    record: csv::StringRecord,
}

impl<R: Read> Rows<R> {
    /// Reads the header row. Fails when there is none or it names no `email` column.
    pub fn new(input: R, default_status: SubscriberStatus) -> Result<Self, ImportError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(LfLineEnds::new(input));
        let header = reader.headers()?.clone();
        if header.is_empty() {
            return Err(ImportError::Empty);
        }
        let columns = Columns::from_header(&header)?;
        Ok(Self {
            reader,
            columns,
            default_status,
            record: csv::StringRecord::new(),
        })
    }

    /// The next row, `None` at the end of the file. A row that is not UTF-8 is a rejected
    /// row; only a file the CSV reader cannot read on is an error.
    pub fn next_row(&mut self) -> Result<Option<Row>, ImportError> {
        let line = self.reader.position().line();
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some(Row {
                line: self.record.position().map_or(line, csv::Position::line),
                parsed: self.columns.parse(&self.record, self.default_status),
            })),
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => Ok(Some(Row {
                line: e.position().map_or(line, csv::Position::line),
                parsed: Err("the row is not valid UTF-8".into()),
            })),
            Err(e) => Err(e.into()),
        }
    }

    /// Bytes of the file read so far.
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }
}

/// Imports the CSV read from `input`, calling `report` for each rejected row and now and
/// then with the progress. Returns the counts, which are also recorded as an `import`
/// event.
#[tracing::instrument(skip_all)]
pub async fn import_csv<R: Read>(
    store: &Store,
    erasure: &ErasureKey,
    input: R,
    options: &ImportOptions,
    mut report: impl FnMut(ImportEvent),
) -> Result<ImportSummary, ImportError> {
    let mut rows = Rows::new(input, options.default_status)?;
    let batch_rows = options.batch_rows.max(1);
    let mut summary = ImportSummary::default();
    let mut batch: Vec<NewSubscriber> = Vec::with_capacity(batch_rows);
    let mut lines: Vec<u64> = Vec::with_capacity(batch_rows);
    let mut seen: u64 = 0;
    while let Some(row) = rows.next_row()? {
        match row.parsed {
            Ok(subscriber) => {
                batch.push(subscriber);
                lines.push(row.line);
            }
            Err(reason) => {
                summary.rejected += 1;
                report(ImportEvent::Rejected(Rejection {
                    line: row.line,
                    reason,
                }));
            }
        }
        seen += 1;
        if batch.len() >= batch_rows {
            flush(
                store,
                erasure,
                &mut batch,
                &mut lines,
                &mut summary,
                &mut report,
            )
            .await?;
        }
        if seen % 4096 == 0 {
            report(ImportEvent::Progress {
                bytes: rows.bytes_read(),
            });
        }
    }
    flush(
        store,
        erasure,
        &mut batch,
        &mut lines,
        &mut summary,
        &mut report,
    )
    .await?;
    report(ImportEvent::Progress {
        bytes: rows.bytes_read(),
    });
    store
        .record_import_run(
            summary.imported,
            summary.duplicates,
            summary.rejected,
            SOURCE,
        )
        .await?;
    Ok(summary)
}

async fn flush(
    store: &Store,
    erasure: &ErasureKey,
    batch: &mut Vec<NewSubscriber>,
    lines: &mut Vec<u64>,
    summary: &mut ImportSummary,
    report: &mut impl FnMut(ImportEvent),
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcome = store
        .import_subscriber_batch(batch, erasure, SOURCE)
        .await?;
    for &i in &outcome.erased {
        report(ImportEvent::Rejected(Rejection {
            line: lines[i],
            reason: "the address was erased at its owner's request and is not added back".into(),
        }));
    }
    let erased = outcome.erased.len() as u64;
    summary.imported += outcome.inserted;
    summary.rejected += erased;
    summary.duplicates += batch.len() as u64 - outcome.inserted - erased;
    batch.clear();
    lines.clear();
    Ok(())
}

/// Reads a stream with each CRLF turned into LF. The csv crate counts a line when it reads
/// `\n`, which after a `\r` belongs to the next record: without this, every row of a CRLF
/// file would be reported one line too low.
struct LfLineEnds<R> {
    inner: std::io::BufReader<R>,
}

impl<R: Read> LfLineEnds<R> {
    fn new(inner: R) -> Self {
        Self {
            inner: std::io::BufReader::new(inner),
        }
    }
}

impl<R: Read> Read for LfLineEnds<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let mut len = 0;
        while len < out.len() {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            if buf[0] == b'\r' {
                self.inner.consume(1);
                if self.inner.fill_buf()?.first() != Some(&b'\n') {
                    out[len] = b'\r';
                    len += 1;
                }
                continue;
            }
            let run = buf
                .iter()
                .position(|&b| b == b'\r')
                .unwrap_or(buf.len())
                .min(out.len() - len);
            out[len..len + run].copy_from_slice(&buf[..run]);
            self.inner.consume(run);
            len += run;
            // Give back what there is rather than wait for more input.
            if len > 0 && self.inner.buffer().is_empty() {
                break;
            }
        }
        Ok(len)
    }
}

#[cfg(test)]
mod line_end_tests {
    use std::io::Read;

    use super::LfLineEnds;

    /// Reads everything through the adapter, `chunk` bytes at a time from the source.
    fn through(input: &[u8], chunk: usize) -> Vec<u8> {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        LfLineEnds::new(Chunks(input, chunk))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn crlf_becomes_lf_across_any_read_boundary_and_lone_crs_stay() {
        let input = b"email,name\r\na@x.org,A\r\nb@x.org,\"B\rC\"\r\nlast\r";
        for chunk in 1..=input.len() {
            assert_eq!(
                through(input, chunk),
                b"email,name\na@x.org,A\nb@x.org,\"B\rC\"\nlast\r",
                "chunk {chunk}"
            );
        }
    }
}
