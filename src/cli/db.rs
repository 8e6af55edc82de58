//! `herald db ...`: moving an install between databases, a thin shell over
//! [`crate::store::copy`].

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use crate::store::copy::{self, Progress};
use crate::store::{redact_url, Store};

/// `herald db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every row of one herald database into another, empty one (SQLite to
    /// PostgreSQL, or back), in one transaction, and check the row counts of every table.
    ///
    /// Both databases are first brought up to this version's schema. The target must hold
    /// no rows at all; a target that is not empty is refused before anything is written,
    /// and any failure rolls the whole copy back. Stop herald on the source first: rows
    /// written to it after the copy starts are not copied.
    Copy {
        /// The database to copy from, e.g. `sqlite://herald.db`.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty database to copy into, e.g. `postgres://herald@db.example.org/herald`
        /// (the password may come from the `PGPASSWORD` variable instead of the URL).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

pub fn run(command: DbCommand) -> anyhow::Result<()> {
    match command {
        DbCommand::Copy { from, to } => super::runtime()?.block_on(copy_command(&from, &to)),
    }
}

async fn copy_command(from: &str, to: &str) -> anyhow::Result<()> {
    if from == to {
        bail!("--from and --to name the same database");
    }
    let source = open_source(from).await?;
    let target = crate::store::connect(to)
        .await
        .with_context(|| format!("target database {}", redact_url(to)))?;
    super::report_new_database(&target);

    let mut shown = Shown::new();
    let copied = copy::copy(&source, &target, &mut |p| shown.update(p)).await;
    shown.finish();
    source.close().await;
    target.close().await;
    let report = copied.with_context(|| format!("copy to {}", redact_url(to)))?;

    let width = report
        .tables
        .iter()
        .map(|(t, _)| t.len())
        .max()
        .unwrap_or(0);
    for (table, rows) in &report.tables {
        println!("{table:<width$}  {rows}");
    }
    println!(
        "copied {} rows in {} tables from {} to {}; every table holds as many rows on both",
        report.total_rows(),
        report.tables.len(),
        redact_url(from),
        redact_url(to)
    );
    Ok(())
}

/// Opens the source, refusing a SQLite file that does not exist (opening would create an
/// empty one).
async fn open_source(from: &str) -> anyhow::Result<Store> {
    let source = crate::store::connect(from)
        .await
        .with_context(|| format!("source database {}", redact_url(from)))?;
    if let Some(file) = source.created_file().map(std::path::Path::to_path_buf) {
        source.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = file.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
        bail!("there is no database at {}", redact_url(from));
    }
    Ok(source)
}

/// A bar on a terminal; otherwise a line per table and one every few seconds.
struct Shown {
    bar: Option<ProgressBar>,
    done: u64,
    total: u64,
    last_line: Instant,
}

impl Shown {
    fn new() -> Self {
        Shown {
            bar: None,
            done: 0,
            total: 0,
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, progress: Progress) {
        match progress {
            Progress::Counted { tables, rows } => {
                self.total = rows;
                if std::io::stderr().is_terminal() {
                    let bar = ProgressBar::new(rows);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{bar:40} {pos}/{len} rows {msg} {per_sec} eta {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    self.bar = Some(bar);
                } else {
                    eprintln!("copying {rows} rows in {tables} tables");
                }
            }
            Progress::Table { table, rows } => match &self.bar {
                Some(bar) => bar.set_message(table),
                None => eprintln!("copying {table} ({rows} rows)"),
            },
            Progress::Rows(n) => {
                self.done += n;
                match &self.bar {
                    Some(bar) => bar.set_position(self.done),
                    None if self.last_line.elapsed() >= Duration::from_secs(5) => {
                        self.last_line = Instant::now();
                        eprintln!("progress: {}/{} rows", self.done, self.total);
                    }
                    None => {}
                }
            }
            Progress::Checking => match &self.bar {
                Some(bar) => bar.set_message("checking the counts"),
                None => eprintln!("checking the counts of every table"),
            },
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
