//! `herald bounces ...`: read returned mail (`parse`), or apply it (`import`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use crate::bounces::{self, Channel, Processor, Report};
use crate::config::Settings;
use crate::domain::{ReturnPath, TokenKey};

/// `herald bounces ...`
#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// Read returned mails (single messages or mbox files) and print what each says.
    /// Changes nothing.
    Parse {
        /// Mail files: one message each (.eml), or mbox.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// One JSON object per message, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Apply returned mails (single messages or mbox files): record each report and update
    /// the subscribers it concerns, as the inbound listener would. Importing a file twice
    /// changes nothing the second time.
    Import {
        /// Mail files: one message each (.eml), or mbox.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(settings: &Settings, command: BouncesCommand) -> anyhow::Result<ExitCode> {
    match command {
        BouncesCommand::Parse { files, json } => parse(settings, &files, json),
        BouncesCommand::Import { files } => import(settings, &files),
    }
}

/// The processor `parse` uses to name deliveries, when there is a database and a key to
/// look them up with; neither is created.
async fn lookup(settings: &Settings) -> anyhow::Result<Option<Processor>> {
    let url = &settings.database.url;
    if let Some(path) = sqlite_path(url) {
        if !path.exists() {
            return Ok(None);
        }
    }
    let has_key = settings.web.secret_key.is_some() || settings.web.secret_key_file.exists();
    if !has_key {
        return Ok(None);
    }
    let key = TokenKey::new(&settings.secret_key()?);
    let store = crate::store::connect(url).await?;
    let return_path = settings
        .bounces
        .return_path
        .as_deref()
        .and_then(|rp| ReturnPath::parse(rp).ok());
    Ok(Some(Processor::new(
        store,
        key,
        return_path,
        settings.bounces.soft_limit,
    )))
}

/// The file of a `sqlite://` URL.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn read_file(path: &Path) -> Result<(Vec<u8>, Vec<Report>), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let reports = bounces::read_mailbox(&bytes).map_err(|e| e.to_string())?;
    Ok((bytes, reports))
}

fn parse(settings: &Settings, files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async {
        let processor = lookup(settings).await?;
        let mut failed = false;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for path in files {
            let name = path.display().to_string();
            let reports = match read_file(path) {
                Ok((_, reports)) => reports,
                Err(e) => {
                    eprintln!("herald: {name}: {e}");
                    failed = true;
                    continue;
                }
            };
            for report in &reports {
                let delivery = match &processor {
                    Some(p) => p.delivery_name(report, &[]).await?,
                    None => None,
                };
                if json {
                    serde_json::to_writer(&mut out, &report.line(&name, delivery.as_ref()))?;
                    writeln!(out)?;
                } else {
                    print_human(&mut out, &name, report, delivery.as_ref())?;
                }
            }
        }
        out.flush()?;
        if let Some(p) = processor {
            p.store().clone().close().await;
        }
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn import(settings: &Settings, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async {
        let store = super::open_store(settings).await?;
        let key = TokenKey::new(&settings.secret_key()?);
        let return_path = settings
            .bounces
            .return_path
            .as_deref()
            .map(ReturnPath::parse)
            .transpose()
            .context("bounces.return_path")?;
        let processor = Arc::new(Processor::new(
            store.clone(),
            key,
            return_path,
            settings.bounces.soft_limit,
        ));
        let now = crate::dispatch::unix_now();
        let (mut applied, mut duplicates, mut unmatched) = (0u64, 0u64, 0u64);
        let mut effects: std::collections::BTreeMap<&'static str, u64> = Default::default();
        let mut failed = false;
        for path in files {
            let name = path.display().to_string();
            let (bytes, reports) = match read_file(path) {
                Ok(read) => read,
                Err(e) => {
                    eprintln!("herald: {name}: {e}");
                    failed = true;
                    continue;
                }
            };
            for (i, report) in reports.iter().enumerate() {
                let mut identity = bytes.clone();
                if reports.len() > 1 {
                    identity.extend_from_slice(format!("\n#{i}").as_bytes());
                }
                let result = processor
                    .apply(report, &identity, Channel::Import, &[], now)
                    .await
                    .with_context(|| format!("{name}: cannot store the report"))?;
                if result.duplicate {
                    duplicates += 1;
                    continue;
                }
                applied += 1;
                for effect in &result.effects {
                    *effects.entry(effect.as_str()).or_default() += 1;
                }
                if processor
                    .locate(report, &[])
                    .await?
                    .iter()
                    .all(Option::is_none)
                {
                    unmatched += 1;
                }
            }
        }
        store.close().await;
        let effects: Vec<String> = effects.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!(
            "imported {applied} reports ({}), {duplicates} already imported, {unmatched} matched no subscriber",
            if effects.is_empty() {
                "no changes".to_string()
            } else {
                effects.join(", ")
            }
        );
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn print_human(
    out: &mut impl Write,
    name: &str,
    report: &Report,
    delivery: Option<&bounces::DeliveryName>,
) -> std::io::Result<()> {
    let mut head = format!("{name}: {}", report.kind.as_str());
    if let Some(feedback) = &report.feedback_type {
        head.push_str(&format!(" ({feedback})"));
    }
    if let Some(d) = delivery {
        head.push_str(&format!(", issue {} subscriber {}", d.issue, d.subscriber));
    }
    writeln!(out, "{head}")?;
    for r in &report.recipients {
        let codes = [
            r.status.map(|s| s.to_string()),
            r.reply.map(|c| c.to_string()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        writeln!(
            out,
            "  {} {}{} {}{}{}",
            r.address.as_deref().unwrap_or("(no address)"),
            if codes.is_empty() {
                String::new()
            } else {
                format!("{codes} ")
            },
            if r.hard { "hard" } else { "soft" },
            r.reason.as_str(),
            if r.diagnostic.is_empty() { "" } else { ": " },
            r.diagnostic
        )?;
    }
    Ok(())
}
