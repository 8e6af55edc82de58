//! Render benchmark: `cargo bench --bench render -- [DIR]` renders every `*.md` in DIR
//! (default `issues/`) many times and prints the median render time per issue, then the
//! median time to personalise one recipient's copy (HTML and text).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use herald::config::NewsletterSettings;
use herald::issue::{self, Issue};
use herald::links::Links;
use herald::render::{self, Recipient, RenderedIssue, Templates};

const RENDER_RUNS: usize = 40;
const PERSONALISE_RUNS: usize = 5_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map_or_else(|| PathBuf::from("issues"), PathBuf::from);
    let settings = NewsletterSettings {
        base_url: "https://news.herald.example/".into(),
        ..NewsletterSettings::default()
    };
    let links = Links::new(&settings.base_url)?;
    let templates = Templates::load(Path::new("templates"), herald::i18n::Catalogs::built_in())?;

    let mut render_medians = Vec::new();
    let mut personalise_medians = Vec::new();
    for path in issue_files(&dir)? {
        let issue = issue::load(&path, &Default::default())?;
        let (rendered, render_median) = time_render(&issue, &templates, &settings, &links)?;
        let personalise_median = time_personalise(&rendered);
        println!(
            "{:<48} render {:>10.3?}  personalise {:>9.3?}  html {:>6} B",
            path.file_name().unwrap_or_default().to_string_lossy(),
            render_median,
            personalise_median,
            rendered.html.literal_len()
        );
        render_medians.push(render_median);
        personalise_medians.push(personalise_median);
    }
    if render_medians.is_empty() {
        return Err(format!("no *.md files in {}", dir.display()).into());
    }
    println!(
        "\n{} issues: median render {:.3?} per issue, median personalisation {:.3?} per recipient (html + text)",
        render_medians.len(),
        median(&mut render_medians),
        median(&mut personalise_medians)
    );
    Ok(())
}

fn issue_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    Ok(files)
}

fn time_render(
    issue: &Issue,
    templates: &Templates,
    settings: &NewsletterSettings,
    links: &Links,
) -> Result<(RenderedIssue, Duration), render::RenderError> {
    let mut times = Vec::with_capacity(RENDER_RUNS);
    let mut last = render::issue(issue, templates, settings, links)?;
    for _ in 0..RENDER_RUNS {
        let start = Instant::now();
        last = black_box(render::issue(issue, templates, settings, links)?);
        times.push(start.elapsed());
    }
    Ok((last, median(&mut times)))
}

fn time_personalise(rendered: &RenderedIssue) -> Duration {
    let recipient = Recipient {
        email: "reader@example.org",
        name: Some("Ada Reader"),
        unsubscribe_url: "https://news.herald.example/unsubscribe/aGVyYWxkLWJlbmNoLXRva2Vu",
        tracking: None,
    };
    let mut times = Vec::with_capacity(PERSONALISE_RUNS);
    for _ in 0..PERSONALISE_RUNS {
        let start = Instant::now();
        let html = rendered.html.personalise(black_box(&recipient));
        let text = rendered.text.personalise(black_box(&recipient));
        black_box((html, text));
        times.push(start.elapsed());
    }
    median(&mut times)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}
