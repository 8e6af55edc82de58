//! The dashboard under `/admin`.

use axum::Router;

use super::AppState;

/// The dashboard router, to be nested at `/admin`.
pub fn router(_state: AppState) -> Router<AppState> {
    Router::new()
}
