//! `herald migrate` and `herald subscribers ...`: thin shells over [`crate::store`] and
//! [`crate::subscribers`].

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Settings;
use crate::domain::{EmailAddress, ErasureKey, SubscriberName, SubscriberStatus};
use crate::store::{AddOutcome, NewSubscriber, Reactivation, StatusChange, Store};
use crate::subscribers::{self as list, ImportEvent, ImportOptions};
use crate::words::count;

/// The `source` recorded for changes made from the command line.
const SOURCE: &str = "cli";

/// `herald subscribers ...`
#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Add one subscriber (active unless --status says otherwise).
    Add {
        /// The subscriber's email address.
        email: String,
        /// The subscriber's name, as mail greets them.
        #[arg(long)]
        name: Option<String>,
        /// pending, active, unsubscribed, bounced or complained.
        #[arg(long, default_value = "active")]
        status: SubscriberStatus,
    },
    /// List subscribers, oldest first.
    List {
        /// Only those with this status (pending, active, unsubscribed, bounced, complained).
        #[arg(long)]
        status: Option<SubscriberStatus>,
        /// A JSON array instead of tab-separated lines.
        #[arg(long)]
        json: bool,
    },
    /// Import a CSV file whose header names an `email` column (`name`, `status` and any
    /// other columns are optional; others become attributes). The good rows are imported
    /// even when some are rejected; the exit status is then 65, so scripts notice.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Status of rows without a `status` value.
        #[arg(long, default_value = "active")]
        status: SubscriberStatus,
    },
    /// Write everything held about every subscriber as CSV.
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Erase a subscriber: delete their data, keep only a keyed hash of the address so that
    /// no import adds it back.
    Remove {
        /// The address to erase.
        email: String,
    },
    /// Mark a subscriber unsubscribed.
    Unsubscribe {
        /// The subscriber's email address.
        email: String,
    },
    /// Make a bounced subscriber active again (recorded as an event). A complained
    /// subscriber cannot be reactivated: only their own new double opt-in can.
    Reactivate {
        /// The subscriber's email address.
        email: String,
    },
    /// Count subscribers by status.
    Count,
}

/// Exit status of an import that rejected rows (EX_DATAERR): the good rows are in.
pub const EXIT_ROWS_REJECTED: u8 = 65;

/// `herald migrate`: create the database or bring its schema up to date.
pub fn migrate(settings: &Settings) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let store = super::open_store(settings).await?;
        let n = store.count_applied_migrations().await?;
        store.close().await;
        println!(
            "database is up to date ({} applied)",
            count(n.unsigned_abs(), "migration", "migrations")
        );
        Ok(())
    })
}

/// Runs one `herald subscribers` command.
pub fn run(settings: &Settings, command: SubscribersCommand) -> anyhow::Result<ExitCode> {
    check_arguments(&command)?;
    runtime()?.block_on(async {
        let store = super::open_store(settings).await?;
        let result = dispatch(settings, &store, command).await;
        store.close().await;
        result
    })
}

/// Bad input on the command line is refused before the database is opened (or created).
fn check_arguments(command: &SubscribersCommand) -> anyhow::Result<()> {
    match command {
        SubscribersCommand::Add { email, name, .. } => {
            parse_email(email)?;
            if let Some(n) = name {
                SubscriberName::parse(n).context("--name")?;
            }
        }
        SubscribersCommand::Remove { email }
        | SubscribersCommand::Unsubscribe { email }
        | SubscribersCommand::Reactivate { email } => {
            parse_email(email)?;
        }
        SubscribersCommand::Import { file, .. } => {
            File::open(file).with_context(|| format!("{}", file.display()))?;
        }
        SubscribersCommand::List { .. }
        | SubscribersCommand::Export { .. }
        | SubscribersCommand::Count => {}
    }
    Ok(())
}

async fn dispatch(
    settings: &Settings,
    store: &Store,
    command: SubscribersCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        SubscribersCommand::Add {
            email,
            name,
            status,
        } => {
            let email = parse_email(&email)?;
            let name = match name {
                Some(n) => SubscriberName::parse(&n).context("--name")?,
                None => None,
            };
            let hash = erasure_key(settings)?.hash(&email);
            let new = NewSubscriber {
                email,
                name,
                status,
                attributes: serde_json::Map::new(),
            };
            match store.add_subscriber(&new, &hash, SOURCE).await? {
                AddOutcome::Added { id } => println!("added subscriber {id} ({status})"),
                // Adding what is already there is a no-op, so scripts can re-run `add`; a
                // different status is a conflict this command never resolves silently.
                AddOutcome::AlreadyPresent { status: present } if present == status => {
                    println!("already on the list ({present})")
                }
                AddOutcome::AlreadyPresent { status: present } => {
                    bail!("that address is already on the list with status {present}; it is left as it is")
                }
                AddOutcome::Erased => {
                    bail!("that address was erased at its owner's request and is not added back")
                }
            }
        }
        SubscribersCommand::List { status, json } => {
            write_list(store, status, json)
                .await
                .or_else(ignore_broken_pipe)?;
        }
        SubscribersCommand::Import { file, status } => {
            let key = erasure_key(settings)?;
            let handle = File::open(&file).with_context(|| format!("{}", file.display()))?;
            let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = progress_bar(size);
            let options = ImportOptions {
                default_status: status,
                ..ImportOptions::default()
            };
            let summary = list::import_csv(
                store,
                &key,
                BufReader::with_capacity(256 * 1024, handle),
                &options,
                |event| match event {
                    ImportEvent::Rejected(r) => {
                        bar.suspend(|| eprintln!("{}: {r}", file.display()))
                    }
                    ImportEvent::Progress { bytes } => bar.set_position(bytes),
                },
            )
            .await
            .with_context(|| format!("{}", file.display()))?;
            bar.finish_and_clear();
            println!("{summary}");
            if summary.rejected > 0 {
                eprintln!(
                    "herald: {} rejected (see above); the others were imported",
                    count(summary.rejected, "row was", "rows were")
                );
                return Ok(ExitCode::from(EXIT_ROWS_REJECTED));
            }
        }
        SubscribersCommand::Export { output } => match output {
            Some(path) => {
                let file = File::create(&path).with_context(|| format!("{}", path.display()))?;
                let n = list::export_csv(store, BufWriter::with_capacity(256 * 1024, file))
                    .await
                    .with_context(|| format!("{}", path.display()))?;
                eprintln!(
                    "exported {} to {}",
                    count(n, "subscriber", "subscribers"),
                    path.display()
                );
            }
            None => {
                let stdout = io::stdout().lock();
                match list::export_csv(store, BufWriter::new(stdout)).await {
                    Err(list::ExportError::Io(e)) => ignore_broken_pipe(e.into())?,
                    other => {
                        other?;
                    }
                }
            }
        },
        SubscribersCommand::Remove { email } => {
            let email = parse_email(&email)?;
            let hash = erasure_key(settings)?.hash(&email);
            if store.erase_subscriber(&email, &hash, SOURCE).await? {
                println!("erased; only a keyed hash of the address is kept, to block re-imports");
            } else {
                println!(
                    "no subscriber held that address; a keyed hash of it is kept to block imports"
                );
            }
        }
        SubscribersCommand::Unsubscribe { email } => {
            let email = parse_email(&email)?;
            match store
                .change_subscriber_status(&email, SubscriberStatus::Unsubscribed, SOURCE)
                .await?
            {
                StatusChange::NotFound => bail!("no subscriber has that address"),
                StatusChange::Unchanged => println!("already unsubscribed"),
                StatusChange::Changed { from } => println!("unsubscribed (was {from})"),
            }
        }
        SubscribersCommand::Reactivate { email } => {
            let email = parse_email(&email)?;
            let Some(subscriber) = store.find_subscriber_by_email(&email).await? else {
                bail!("no subscriber has that address");
            };
            match store
                .reactivate_subscriber(subscriber.id, SOURCE, crate::dispatch::unix_now())
                .await?
            {
                Reactivation::Reactivated => println!("reactivated (was bounced)"),
                Reactivation::NotBounced(SubscriberStatus::Complained) => bail!(
                    "this subscriber complained (marked the newsletter as spam); only their own new sign-up with double opt-in can bring them back"
                ),
                Reactivation::NotBounced(status) => {
                    bail!("this subscriber is {status}, not bounced; nothing to reactivate")
                }
                Reactivation::NotFound => bail!("no subscriber has that address"),
            }
        }
        SubscribersCommand::Count => {
            let counts = store.count_subscribers_by_status().await?;
            let mut total = 0;
            for status in SubscriberStatus::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or(0, |(_, n)| *n);
                total += n;
                println!("{:<13}{n}", status.as_str());
            }
            println!("{:<13}{total}", "total");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn write_list(
    store: &Store,
    status: Option<SubscriberStatus>,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    let mut rows = std::pin::pin!(store.list_subscribers(status));
    let mut first = true;
    if json {
        out.write_all(b"[")?;
    }
    while let Some(s) = rows.next().await {
        let s = s?;
        if json {
            let attributes: serde_json::Value =
                serde_json::from_str(&s.attributes).unwrap_or_default();
            let value = serde_json::json!({
                "id": s.id,
                "email": s.email,
                "name": s.name,
                "status": s.status.as_str(),
                "attributes": attributes,
                "created_at": list::export::rfc3339(Some(s.created_at)),
                "confirmed_at": s.confirmed_at.map(|t| list::export::rfc3339(Some(t))),
                "unsubscribed_at": s.unsubscribed_at.map(|t| list::export::rfc3339(Some(t))),
                "source": s.source,
            });
            out.write_all(if first { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut out, &value)?;
        } else {
            writeln!(
                out,
                "{}\t{}\t{}",
                s.email,
                s.status,
                s.name.as_deref().unwrap_or("")
            )?;
        }
        first = false;
    }
    if json {
        out.write_all(b"\n]\n")?;
    }
    out.flush()?;
    Ok(())
}

/// A reader of `herald ... | head` closing the pipe is not an error.
fn ignore_broken_pipe(e: anyhow::Error) -> anyhow::Result<()> {
    match e.downcast_ref::<io::Error>() {
        Some(io) if io.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(e),
    }
}

fn parse_email(input: &str) -> anyhow::Result<EmailAddress> {
    Ok(EmailAddress::parse(input)?)
}

fn erasure_key(settings: &Settings) -> anyhow::Result<ErasureKey> {
    Ok(ErasureKey::new(&settings.secret_key()?))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A byte-position bar on a terminal; hidden otherwise.
fn progress_bar(len: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {percent:>3}% {bytes}/{total_bytes} {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
