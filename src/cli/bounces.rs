//! `herald bounces ...`: read returned mail (`parse`), or apply it (`import`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::bounces::{self, Report};
use crate::config::Settings;

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
}

pub fn run(_settings: &Settings, command: BouncesCommand) -> anyhow::Result<ExitCode> {
    match command {
        BouncesCommand::Parse { files, json } => parse(&files, json),
    }
}

fn parse(files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in files {
        let name = path.display().to_string();
        let reports = match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| bounces::read_mailbox(&bytes).map_err(|e| e.to_string()))
        {
            Ok(reports) => reports,
            Err(e) => {
                eprintln!("herald: {name}: {e}");
                failed = true;
                continue;
            }
        };
        for report in &reports {
            if json {
                serde_json::to_writer(&mut out, &report.line(&name, None))?;
                writeln!(out)?;
            } else {
                print_human(&mut out, &name, report)?;
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_human(out: &mut impl Write, name: &str, report: &Report) -> std::io::Result<()> {
    match &report.feedback_type {
        Some(feedback) => writeln!(out, "{name}: {} ({feedback})", report.kind.as_str())?,
        None => writeln!(out, "{name}: {}", report.kind.as_str())?,
    }
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
