//! The live preview (`herald preview ISSUE.md --serve`): a local page showing the issue as a
//! phone (375 px) and a desktop (a 600 px column) see it, each light and dark, with the
//! plain-text part and `herald check`'s findings beside them. The issue file is watched
//! (notify); every save renders it again, and the page, told over server-sent events,
//! reloads what changed within a second. A save that does not render shows its error above
//! the last good rendering, until the next good save.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use crate::check::{self, Finding, Surroundings};
use crate::config::Settings;
use crate::links::Links;

/// Why the live preview could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
    #[error("the preview server stopped: {0}")]
    Serve(std::io::Error),
}

/// Waiting this long after a change lets an editor's save (write, rename, touch) settle
/// into one rendering.
const SETTLE: Duration = Duration::from_millis(60);

/// What the page shows: the latest rendering, or why the latest save did not render.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    /// Counts up with every rendering; the page asks for frames by it.
    pub version: u64,
    pub title: String,
    /// The HTML part of the last good rendering.
    pub html: String,
    /// The text part of the last good rendering.
    pub text: String,
    /// `herald check`'s findings for the file as saved.
    pub findings: Vec<Finding>,
    /// Why the latest save does not render (the frames show the last good one).
    pub error: Option<String>,
}

/// Renders the issue at `path` as [`super::sample`] does and checks it, over `previous`.
pub fn render(settings: &Settings, path: &Path, previous: &Shown) -> Shown {
    let mut shown = Shown {
        version: previous.version + 1,
        ..previous.clone()
    };
    let templates = crate::startup::load_templates_quietly(settings);
    let links = Links::new(&settings.newsletter.base_url);
    shown.findings = match (&templates, &links) {
        (Ok(templates), Ok(links)) => {
            let mut around = Surroundings::gather(&settings.newsletter, &[]);
            if let Ok(issue) = crate::issue::load(path, &settings.newsletter.issue_limits()) {
                around.add(path, issue.slug);
            }
            check::check_file(path, settings, templates, links, &around)
        }
        _ => Vec::new(),
    };
    match super::sample(settings, path) {
        Ok(preview) => {
            shown.title = preview.issue.title.clone();
            shown.html = preview.html;
            shown.text = preview.text;
            shown.error = None;
        }
        Err(e) => shown.error = Some(e.to_string()),
    }
    shown
}

struct Live {
    path: PathBuf,
    shown: watch::Receiver<Shown>,
}

/// Serves the live preview of `path` on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: Settings,
    path: PathBuf,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), LiveError> {
    let first = {
        let (settings, path) = (settings.clone(), path.clone());
        tokio::task::spawn_blocking(move || render(&settings, &path, &Shown::default()))
            .await
            .unwrap_or_default()
    };
    let (tx, rx) = watch::channel(first);

    // Editors save by writing a new file and renaming it over the old one, so the folder
    // is watched, and any event naming the file is a save.
    let (changed_tx, mut changed) = mpsc::unbounded_channel::<()>();
    let name = path.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            // Reading the file (as each rendering does) is no change.
            let writes = matches!(
                event.kind,
                EventKind::Create(_)
                    | EventKind::Modify(_)
                    | EventKind::Remove(_)
                    | EventKind::Access(AccessKind::Close(AccessMode::Write))
            );
            if writes && event.paths.iter().any(|p| p.file_name() == name.as_deref()) {
                let _ = changed_tx.send(());
            }
        }
    })
    .map_err(|source| LiveError::Watch {
        path: path.clone(),
        source,
    })?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    watcher
        .watch(&folder, RecursiveMode::NonRecursive)
        .map_err(|source| LiveError::Watch {
            path: folder.clone(),
            source,
        })?;

    let renderer = {
        let path = path.clone();
        tokio::spawn(async move {
            while changed.recv().await.is_some() {
                tokio::time::sleep(SETTLE).await;
                while changed.try_recv().is_ok() {}
                let previous = tx.borrow().clone();
                let (settings, path) = (settings.clone(), path.clone());
                let next =
                    tokio::task::spawn_blocking(move || render(&settings, &path, &previous)).await;
                if let Ok(next) = next {
                    match &next.error {
                        Some(e) => tracing::warn!(error = %e, "the saved issue does not render"),
                        None => tracing::info!(version = next.version, "preview rendered again"),
                    }
                    tx.send_replace(next);
                }
            }
        })
    };

    let state = Arc::new(Live { path, shown: rx });
    let app = Router::new()
        .route("/", get(page))
        .route("/panel", get(panel))
        .route("/frame/light", get(frame_light))
        .route("/frame/dark", get(frame_dark))
        .route("/events", get(events))
        .with_state(state);
    // Stopping the renderer drops the sender, which ends every open event stream: a
    // graceful shutdown waits for open connections, and those never end on their own.
    let stop_renderer = renderer.abort_handle();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop_renderer.abort();
        })
        .await
        .map_err(LiveError::Serve);
    renderer.abort();
    drop(watcher);
    served
}

type LiveState = State<Arc<Live>>;

/// `GET /`: the page.
async fn page(State(live): LiveState) -> Response {
    let shown = live.shown.borrow().clone();
    let file = escape(&live.path.display().to_string());
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>herald preview: {file}</title>
<style>{STYLE}</style></head>
<body>
<header><strong>herald preview</strong> <code>{file}</code> <span class="muted" id="state" data-version="{version}">rendering {version}</span></header>
<main>
<section class="frames">
{frames}
</section>
<aside id="panel">{panel}</aside>
</main>
<script>{SCRIPT}</script>
</body></html>"#,
        version = shown.version,
        frames = frames(shown.version),
        panel = panel_html(&shown),
    );
    with_policy(Html(body).into_response(), PAGE_CSP)
}

/// The four frames: phone and desktop, light and dark.
fn frames(version: u64) -> String {
    let mut out = String::new();
    for (device, width) in [("phone", 375), ("desktop", 680)] {
        for scheme in ["light", "dark"] {
            out.push_str(&format!(
                r#"<figure class="frame {device} {scheme}"><figcaption>{device} · {scheme}</figcaption><iframe data-device="{device}" data-scheme="{scheme}" width="{width}" height="760" sandbox="" title="the issue on a {device}, {scheme}" src="/frame/{scheme}?v={version}"></iframe></figure>
"#
            ));
        }
    }
    out
}

/// `GET /panel`: the title, the error of the latest save, the findings and the text part.
async fn panel(State(live): LiveState) -> Response {
    let shown = live.shown.borrow().clone();
    let mut response = Html(panel_html(&shown)).into_response();
    response
        .headers_mut()
        .insert("x-preview-version", HeaderValue::from(shown.version));
    response
}

fn panel_html(shown: &Shown) -> String {
    let mut out = format!(
        r#"<h1 id="title" data-version="{}">{}</h1>"#,
        shown.version,
        escape(&shown.title)
    );
    if let Some(error) = &shown.error {
        out.push_str(&format!(
            r#"<p class="error" id="error"><strong>The last save does not render:</strong> {}<br><span class="muted">The frames show the last version that did; the next good save replaces them.</span></p>"#,
            escape(error)
        ));
    }
    let errors = shown.findings.iter().filter(|f| f.is_error()).count();
    out.push_str(&format!(
        r#"<h2>Check</h2><p class="muted" id="summary">{}, {}</p><ul id="findings">"#,
        crate::words::count(errors as u64, "error", "errors"),
        crate::words::count(
            (shown.findings.len() - errors) as u64,
            "warning",
            "warnings"
        ),
    ));
    for f in &shown.findings {
        out.push_str(&format!(
            r#"<li class="{severity}" data-rule="{rule}"><code>{line}:{column}</code> <strong>{severity}[{rule}]</strong> {message}<br><span class="muted">{hint}</span></li>"#,
            severity = f.severity,
            rule = f.rule,
            line = f.line,
            column = f.column,
            message = escape(&f.message),
            hint = escape(&f.hint),
        ));
    }
    out.push_str(&format!(
        r#"</ul><h2>Plain text</h2><pre id="text">{}</pre>"#,
        escape(&shown.text)
    ));
    out
}

/// `GET /frame/light`: the HTML part as sent.
async fn frame_light(State(live): LiveState) -> Response {
    let html = live.shown.borrow().html.clone();
    with_policy(Html(html).into_response(), FRAME_CSP)
}

/// `GET /frame/dark`: the HTML part with its dark styles in force, as a client that prefers
/// dark shows it.
async fn frame_dark(State(live): LiveState) -> Response {
    let html = force_dark(&live.shown.borrow().html);
    with_policy(Html(html).into_response(), FRAME_CSP)
}

/// The mail with `@media (prefers-color-scheme: dark)` rules applying always.
pub fn force_dark(html: &str) -> String {
    html.replace("@media (prefers-color-scheme: dark)", "@media all")
        .replace(
            "<head>",
            "<head><style>:root { color-scheme: dark; }</style>",
        )
}

/// `GET /events`: `version` events, one per rendering (the current one first).
async fn events(State(live): LiveState) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = live.shown.clone();
    let stream = futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let version = rx.borrow_and_update().version;
        Some((
            Ok(Event::default().event("version").data(version.to_string())),
            (rx, false),
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

const PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                        frame-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'";
/// The mail's pictures come from the site; it runs no script.
const FRAME_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; font-src *";

fn with_policy(mut response: Response, policy: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{margin:0;font:14px/1.5 system-ui,sans-serif;background:#eef1f4;color:#1f2328}\
header{padding:10px 16px;background:#fff;border-bottom:1px solid #d0d7de}\
main{display:flex;gap:16px;padding:16px;align-items:flex-start}\
.frames{display:flex;flex-wrap:wrap;gap:16px;flex:1 1 auto}\
figure{margin:0;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px}\
figure.dark{background:#161b22;color:#e6edf3}\
figcaption{font-size:12px;margin-bottom:6px}\
iframe{border:0;display:block;background:#fff}\
figure.dark iframe{background:#0d1117;color-scheme:dark}\
aside{flex:0 0 360px;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px;max-height:calc(100vh - 90px);overflow:auto}\
aside h1{font-size:18px;margin:0 0 8px}aside h2{font-size:15px;margin:16px 0 6px}\
ul{padding-left:18px}li.error strong{color:#a40e26}li.warning strong{color:#7d4e00}\
.error{background:#fdecec;border:1px solid #f1a7a7;color:#8a1c1c;border-radius:6px;padding:8px 10px}\
.muted{color:#57606a}pre{white-space:pre-wrap;font-size:12px;background:#f6f8fa;padding:8px;border-radius:6px}";

/// Follows `/events`; on a new version, fetches the panel and reloads the frames.
const SCRIPT: &str = r#"
const state = document.getElementById('state');
let shown = Number(state.dataset.version);
async function update(version) {
  if (version === shown) return;
  const r = await fetch('/panel', { cache: 'no-store' });
  document.getElementById('panel').innerHTML = await r.text();
  for (const f of document.querySelectorAll('iframe')) {
    f.src = '/frame/' + f.dataset.scheme + '?v=' + version;
  }
  shown = version;
  state.dataset.version = String(version);
  state.textContent = 'rendering ' + version;
}
const events = new EventSource('/events');
events.addEventListener('version', e => { update(Number(e.data)); });
"#;

/// A loopback address to serve on when none is given.
pub const DEFAULT_BIND: &str = "127.0.0.1:4000";

/// Whether `addr` is a loopback address: the live preview is for the editor's own machine.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_frames_apply_the_dark_rules_always() {
        let html = "<html><head><style>@media (prefers-color-scheme: dark) { a { color: #fff } }</style></head></html>";
        let dark = force_dark(html);
        assert!(dark.contains("@media all { a"), "{dark}");
        assert!(dark.contains(":root { color-scheme: dark; }"), "{dark}");
    }

    #[test]
    fn the_panel_escapes_what_the_file_holds() {
        let shown = Shown {
            title: "<script>x</script>".into(),
            error: Some("bad <b>".into()),
            text: "a & b".into(),
            ..Shown::default()
        };
        let html = panel_html(&shown);
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("a &amp; b"), "{html}");
    }
}
