//! `herald preview`: one issue, rendered for a sample recipient.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::config::Settings;
use crate::preview;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// The HTML part.
    Html,
    /// The plain-text part.
    Text,
    /// The complete RFC 5322 message, exactly as it would be sent.
    Eml,
}

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The issue's Markdown file.
    pub issue: PathBuf,
    /// What to print: the HTML part, the text part, or the whole message.
    #[arg(long, value_enum, default_value_t = Format::Html)]
    pub format: Format,
    /// Write here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(settings: &Settings, args: PreviewArgs) -> anyhow::Result<()> {
    super::note_defaults(settings);
    let preview = preview::sample(settings, &args.issue)?;
    let bytes = match args.format {
        Format::Html => preview.html.into_bytes(),
        Format::Text => preview.text.into_bytes(),
        Format::Eml => preview.eml,
    };
    match args.output {
        Some(path) => super::write_file_atomically(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
            Ok(())
        }
    }
}
