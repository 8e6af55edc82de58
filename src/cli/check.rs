//! `herald check`: the lint rules over issue files, for editors and their CI.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::check::{self, Finding, Surroundings};
use crate::config::Settings;
use crate::issue;
use crate::links::Links;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The issue files to check.
    #[arg(required = true, value_name = "ISSUE.md")]
    pub issues: Vec<PathBuf>,
    /// Print one JSON object per finding (JSON Lines): file, line, column, rule, severity,
    /// message, hint.
    #[arg(long)]
    pub json: bool,
}

pub fn run(settings: &Settings, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let templates = crate::startup::load_templates_quietly(settings)?;
    let links = Links::new(&settings.newsletter.base_url)?;
    let mut around = Surroundings::gather(&settings.newsletter, &ledger(settings));
    let limits = settings.newsletter.issue_limits();
    for path in &args.issues {
        if let Ok(loaded) = issue::load(path, &limits) {
            around.add(path, loaded.slug);
        }
    }
    let mut findings: Vec<Finding> = Vec::new();
    for path in &args.issues {
        findings.extend(check::check_file(
            path, settings, &templates, &links, &around,
        ));
    }
    for finding in &findings {
        if args.json {
            println!("{}", serde_json::to_string(finding)?);
        } else {
            println!("{}", human(finding));
        }
    }
    let errors = findings.iter().filter(|f| f.is_error()).count();
    let warnings = findings.len() - errors;
    eprintln!(
        "{}, {} in {}",
        crate::words::count(errors as u64, "error", "errors"),
        crate::words::count(warnings as u64, "warning", "warnings"),
        crate::words::count(args.issues.len() as u64, "file", "files"),
    );
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A finding as `herald check` prints it: `FILE:LINE:COLUMN: severity[rule]: message` and
/// a hint line.
pub(super) fn human(finding: &Finding) -> String {
    format!(
        "{}:{}:{}: {}[{}]: {}\n  hint: {}",
        finding.file,
        finding.line,
        finding.column,
        finding.severity,
        finding.rule,
        finding.message,
        finding.hint
    )
}

/// What the ledger says was sent, when there is a database to ask; nothing when the
/// database file does not exist (an editors' repository in CI has none), so checking never
/// creates one.
fn ledger(settings: &Settings) -> Vec<crate::store::EnqueuedIssueDate> {
    if settings.database_file().is_some_and(|f| !f.exists()) {
        return Vec::new();
    }
    let read = async {
        let store = crate::store::connect(&settings.database.url).await?;
        let dates = store.enqueued_issue_dates().await;
        store.close().await;
        dates
    };
    match super::runtime().map(|rt| rt.block_on(read)) {
        Ok(Ok(dates)) => dates,
        Ok(Err(e)) => {
            eprintln!(
                "herald: not reading the ledger ({e}): the schedule rule cannot say what was sent"
            );
            Vec::new()
        }
        Err(e) => {
            eprintln!("herald: {e}");
            Vec::new()
        }
    }
}
