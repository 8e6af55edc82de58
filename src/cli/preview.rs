//! `herald preview`: one issue, rendered for a sample recipient; with `--serve`, a live
//! preview that follows every save.

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
    /// Serve a live preview (phone and desktop, light and dark, the text part and the
    /// check's findings) that reloads on every save of the file.
    #[arg(long, conflicts_with_all = ["format", "output"])]
    pub serve: bool,
    /// Where the live preview listens: a loopback address.
    #[arg(long, value_name = "ADDR", requires = "serve", default_value = preview::live::DEFAULT_BIND)]
    pub bind: std::net::SocketAddr,
}

pub fn run(settings: &Settings, args: PreviewArgs) -> anyhow::Result<()> {
    super::note_defaults(settings);
    if args.serve {
        return serve(settings, args);
    }
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

fn serve(settings: &Settings, args: PreviewArgs) -> anyhow::Result<()> {
    if !preview::live::is_loopback(&args.bind) {
        anyhow::bail!(
            "--bind {}: the live preview listens on a loopback address only (127.0.0.1 or ::1)",
            args.bind
        );
    }
    if !args.issue.is_file() {
        anyhow::bail!("{}: no such file", args.issue.display());
    }
    let settings = settings.clone();
    super::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let addr = listener.local_addr()?;
        println!(
            "previewing {} at http://{addr}/ (it reloads on every save; Ctrl-C stops)",
            args.issue.display()
        );
        preview::live::serve(settings, args.issue, listener, super::stop_signal()).await?;
        Ok(())
    })
}
