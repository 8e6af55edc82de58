//! `herald locales check`: every catalog against English, and the templates against the
//! catalogs.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::i18n;

#[derive(Debug, Subcommand)]
pub enum LocalesCommand {
    /// List, for every locale (built in and in newsletter.locales_dir), the messages it
    /// lacks (shown in English) and the ones herald never asks for; and every message a
    /// template asks for that no catalog has. Exits 1 when anything is found.
    Check,
}

/// Runs a `herald locales` command.
pub fn run(settings: &Settings, command: LocalesCommand) -> anyhow::Result<ExitCode> {
    match command {
        LocalesCommand::Check => check(settings),
    }
}

fn check(settings: &Settings) -> anyhow::Result<ExitCode> {
    let templates = crate::startup::load_templates_quietly(settings)?;
    let catalogs = templates.catalogs().clone();
    let mut sources = templates.sources();
    let dir = &settings.newsletter.templates_dir;
    sources.extend(crate::web::Pages::load(dir, catalogs.clone())?.sources());
    sources.extend(crate::web::admin_sources(dir, catalogs.clone())?);
    let (reports, unknown) = i18n::check(&catalogs, &sources);
    let mut clean = true;
    for report in &reports {
        let total = report.missing.len() + report.unused.len();
        if total == 0 {
            println!("{}: complete", report.tag);
            continue;
        }
        clean = false;
        println!(
            "{}: {} missing, {} unused",
            report.tag,
            report.missing.len(),
            report.unused.len()
        );
        for id in &report.missing {
            println!("  missing {id} (shown in English)");
        }
        for id in &report.unused {
            println!("  unused  {id}");
        }
    }
    for (template, id) in &unknown {
        clean = false;
        println!("template {template}: asks for {id}, which no catalog has");
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
