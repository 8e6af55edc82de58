//! `GET /health`: `200 ok` while the database takes writes, `503` with the reason when it
//! does not (a full disk, a file gone read-only, a write lock held elsewhere), so a monitor
//! sees the fault and not only the requests that fail.
//!
//! The check is a real write ([`Store::probe_write`]), made at most once per [`FRESH`]:
//! requests in between get the last result. A probe that takes longer than [`DEADLINE`]
//! (another process holds the write lock) is reported as a failure while it keeps waiting
//! in the background, and no second probe is started beside it, so a stalled database
//! never ties up more than one pooled connection here.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::AppState;
use crate::dispatch::unix_now;
use crate::store::{Store, StoreError};

/// How long a probe's result answers `/health` before the next probe.
const FRESH: Duration = Duration::from_secs(5);
/// How long a request waits for a probe before reporting the database as stalled.
const DEADLINE: Duration = Duration::from_secs(2);

/// The last probe and the one still running, if any.
#[derive(Default)]
pub(super) struct HealthProbe {
    state: Mutex<ProbeState>,
}

#[derive(Default)]
struct ProbeState {
    last: Option<(Instant, Result<(), String>)>,
    running: Option<JoinHandle<Result<(), StoreError>>>,
}

impl HealthProbe {
    /// `Ok` when the database took a write within the last [`FRESH`], or takes one now.
    async fn check(&self, store: &Store) -> Result<(), String> {
        let mut state = self.state.lock().await;
        if let Some((at, result)) = &state.last {
            if at.elapsed() < FRESH {
                return result.clone();
            }
        }
        let mut probe = match state.running.take() {
            Some(probe) => probe,
            None => {
                let store = store.clone();
                tokio::spawn(async move { store.probe_write(unix_now()).await })
            }
        };
        let result = match tokio::time::timeout(DEADLINE, &mut probe).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(format!("database: cannot write: {e}")),
            Ok(Err(e)) => Err(format!("database: the write probe failed: {e}")),
            Err(_) => {
                state.running = Some(probe);
                Err(format!(
                    "database: a write did not complete within {} seconds (locked or stalled)",
                    DEADLINE.as_secs()
                ))
            }
        };
        if let Err(reason) = &result {
            tracing::warn!(%reason, "health check failed");
        }
        state.last = Some((Instant::now(), result.clone()));
        result
    }
}

/// `GET /health`.
pub(super) async fn health(State(state): State<AppState>) -> Response {
    answer(&state.0.health, &state.app().store).await
}

/// `/health` over `probe` and `store`: `200 ok`, or `503` with the reason.
async fn answer(probe: &HealthProbe, store: &Store) -> Response {
    let result = probe.check(store).await;
    let (status, body) = match result {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    };
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        body,
    )
        .into_response()
}

/// The router of a worker node: `GET /health` and nothing else (404).
pub(super) fn health_only(store: Store) -> axum::Router {
    let shared = std::sync::Arc::new((HealthProbe::default(), store));
    axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let shared = shared.clone();
            async move { answer(&shared.0, &shared.1).await }
        }),
    )
}
