//! The collector's HTTP server: the web viewer at `/` (see [`crate::web`]), the query API under
//! `/api/v1` (see [`crate::api`]), `/metrics` (Prometheus text) and `/healthz`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::live::LiveFeed;
use crate::metrics::Metrics;
use crate::store::Store;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The lineage store.
    pub store: Store,
    /// The collector's metrics.
    pub metrics: Arc<Metrics>,
    /// Durable events as they come, for watchers of a flow (nobody publishes in `serve`).
    pub live: LiveFeed,
}

/// Serves [`app`] on `listener` until `cancel` fires, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    cancel: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let live = state.live.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            cancel.cancelled().await;
            // Open event streams would hold the shutdown forever.
            live.close();
        })
        .await
}

/// The router, without a socket (tests call it with `oneshot`).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .merge(crate::api::routes())
        .fallback(get(crate::web::serve))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store unavailable: {e}"),
        ),
    }
}
