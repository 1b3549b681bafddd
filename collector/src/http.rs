//! The collector's HTTP server: the query API under `/api/v1` (see [`crate::api`]), `/metrics`
//! (Prometheus text) and `/healthz`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::store::Store;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The lineage store.
    pub store: Store,
    /// The collector's metrics.
    pub metrics: Arc<Metrics>,
}

/// Serves [`app`] on `listener` until `cancel` fires, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    cancel: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

/// The router, without a socket (tests call it with `oneshot`).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/", get(index))
        .merge(crate::api::routes())
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

/// Until the web UI is embedded (ui/), `/` says where the answers are.
async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Choreoscope\n\n\
         The web lineage viewer is not part of this build yet (ui/). The query API answers here:\n\
         \n  GET /api/v1/keys/{name}/{value}        what happened to a business entity, e.g. /api/v1/keys/order.id/o-1007\n\
         \x20 GET /api/v1/events/{id}                one event; /api/v1/events/{id}/lineage for its causes and reactions\n\
         \x20 GET /api/v1/traces/{trace_id}          a trace; /api/v1/correlations/{id} a conversation\n\
         \x20 GET /api/v1/search?key=o-1007          search by time, type, source, topic, key, problem\n\
         \x20 GET /api/v1/topology                   the choreography as it runs\n\
         \x20 GET /api/v1/openapi.json               the OpenAPI document\n\
         \x20 GET /metrics                           Prometheus metrics\n",
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
