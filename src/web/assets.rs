//! The files of `newsletter.assets_dir` (the images issues link to), served at the site's
//! root: `static/img/cover.png` answers `GET /img/cover.png`, which is where a relative
//! `img/cover.png` in an issue resolves against `newsletter.base_url`.
//!
//! Only `GET` and `HEAD`, only regular files: a folder is a 404 (no listing, no index
//! page), and so is any path with a part starting with a dot (`.git`, `.env`), so a
//! careless copy into the folder does not publish hidden files. tower-http's `ServeDir`
//! does the rest: no way out of the folder, the content type from the extension,
//! `Last-Modified` and `304 Not Modified`, ranges. Every file may be cached for a day.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use super::{AppState, WebError};

/// How long browsers, mail clients' image proxies and caches may keep a file.
const CACHE_CONTROL: &str = "public, max-age=86400";

/// The fallback route: a file from `newsletter.assets_dir`, or the 404 page.
pub async fn serve(State(state): State<AppState>, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) || is_hidden(request.uri().path()) {
        return WebError::NotFound.into_response();
    }
    let dir = &state.app().settings.newsletter.assets_dir;
    let files = ServeDir::new(dir).append_index_html_on_directories(false);
    let response = match files.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    match response.status() {
        StatusCode::NOT_FOUND => WebError::NotFound.into_response(),
        status if status.is_server_error() => {
            tracing::error!(%status, "an asset could not be read");
            WebError::NotFound.into_response()
        }
        _ => {
            let mut response = response;
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            );
            response
        }
    }
}

/// Whether any part of the (still percent-encoded) path starts with a dot.
fn is_hidden(path: &str) -> bool {
    path.split('/')
        .any(|part| part.starts_with('.') || part.to_ascii_lowercase().starts_with("%2e"))
}

#[cfg(test)]
mod tests {
    use super::is_hidden;

    #[test]
    fn dot_parts_are_hidden_however_they_are_spelled() {
        assert!(is_hidden("/.git/config"));
        assert!(is_hidden("/img/.env"));
        assert!(is_hidden("/%2egit/HEAD"));
        assert!(is_hidden("/img/../secret"));
        assert!(!is_hidden("/img/cover.png"));
        assert!(!is_hidden("/img/file.name.png"));
    }
}
