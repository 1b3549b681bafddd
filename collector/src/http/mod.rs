//! The collector's HTTP server: the web viewer at `/` ([`web`]), the query API under `/api/v1`
//! ([`api`], answering through [`crate::query`]), the live feed's event streams ([`live`]),
//! `/metrics` (Prometheus text) and `/healthz`.
//!
//! # Layout
//! - [`api`]: the routes of `/api/v1`, their handlers and the OpenAPI document.
//! - [`params`]: the operations' query parameters.
//! - [`extract`]: extractors that answer a malformed request with an [`error::ApiError`].
//! - [`error`]: the JSON error body and the status of each error.
//! - [`live`]: `GET /api/v1/live`, server-sent events.
//! - [`web`]: the embedded viewer.
//! - `state`: [`AppState`], what every handler shares.
//! - `security_headers`: the headers every answer carries (CSP, nosniff, no framing, no
//!   referrer).

pub mod api;
pub mod error;
pub mod extract;
pub mod live;
pub mod params;
mod security_headers;
mod state;
pub mod web;

pub use security_headers::{SECURITY_HEADERS, VIEWER_CSP};
pub use state::AppState;

use crate::access::Access;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// Serves [`app_with_access`] on `listener` until `cancel` fires, then finishes the requests in
/// flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    access: Arc<Access>,
    cancel: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let live = state.live.clone();
    let app = app_with_access(state, access);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        cancel.cancelled().await;
        // Open event streams would hold the shutdown forever.
        live.close();
    })
    .await
}

/// The router without a login ([`Access::open`]), without a socket (tests call it with
/// `oneshot`).
pub fn app(state: AppState) -> Router {
    app_with_access(state, Arc::new(Access::open()))
}

/// The router, every request through the access guard ([`crate::access::guard`]).
pub fn app_with_access(state: AppState, access: Arc<Access>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .merge(api::routes())
        .fallback(get(web::serve))
        .with_state(state)
        .merge(crate::access::guard::routes(access.clone()))
        .layer(axum::middleware::from_fn_with_state(
            access,
            crate::access::guard::guard,
        ))
        .layer(axum::middleware::map_response(
            security_headers::add_security_headers,
        ))
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
