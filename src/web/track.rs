//! `GET /l/{link}/{token}` (a tracked link) and `GET /o/{token}.gif` (the open image), thin
//! over [`crate::tracking::Tracker`]. Both answer from memory; hits are recorded by the
//! batched writer. Neither response may be cached: each URL is one reader's.

use axum::extract::{Path, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{client_ip, AppState, WebError};
use crate::dispatch::unix_now;
use crate::tracking::PIXEL_GIF;

fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

/// `GET /l/{link}/{token}`: 302 to the link's URL (counted), or to the page in the
/// archive when the token does not check out (not counted).
pub async fn click(
    State(state): State<AppState>,
    Path((link, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let redirect = state
        .0
        .tracker
        .click(&link, &token, user_agent(&headers), unix_now())
        .await
        .map_err(WebError::internal)?;
    let location = HeaderValue::from_str(&redirect.to).map_err(WebError::internal)?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// `GET /o/{token}.gif`: the 1x1 image, always; the open is counted when the token checks
/// out and open tracking is on.
pub async fn open(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    if let Some(token) = file.strip_suffix(".gif") {
        let ip = client_ip(&extensions);
        let ip = (!ip.is_unspecified()).then_some(ip);
        state
            .0
            .tracker
            .open(token, ip, user_agent(&headers), unix_now())
            .await;
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/gif")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, private"),
            ),
        ],
        PIXEL_GIF,
    )
        .into_response()
}
