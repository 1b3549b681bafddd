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
//! - [`limits`]: request body size (413) and per-client rate (429) limits.
//! - [`admission`]: connection, stream and query caps, shedding with 503/429.
//! - [`server`]: plain HTTP or HTTPS with certificate reload, the ops-only listener.

pub mod admission;
pub mod api;
pub mod error;
pub mod extract;
pub mod limits;
pub mod live;
pub mod params;
mod security_headers;
pub mod server;
mod state;
pub mod web;

pub use admission::Caps;
pub use limits::Limits;
pub use security_headers::{SECURITY_HEADERS, VIEWER_CSP};
pub use server::{serve_ops, serve_with, ServerSettings, Tls, TlsError};
pub use state::AppState;

use crate::access::Access;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// Serves [`app_with_access`] on `listener` over plain HTTP with the default [`Limits`] until
/// `cancel` fires, then finishes the requests in flight ([`serve_with`] chooses TLS and limits).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    access: Arc<Access>,
    cancel: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, state, access, ServerSettings::default(), cancel).await
}

/// The router without a login ([`Access::open`]), without a socket (tests call it with
/// `oneshot`).
pub fn app(state: AppState) -> Router {
    app_with_access(state, Arc::new(Access::open()))
}

/// The router with the default [`Limits`], every request through the access guard
/// ([`crate::access::guard`]).
pub fn app_with_access(state: AppState, access: Arc<Access>) -> Router {
    app_with(state, access, Limits::default())
}

/// The router: every request within `limits` ([`limits`]), then through the access guard
/// ([`crate::access::guard`]).
pub fn app_with(state: AppState, access: Arc<Access>, limits: Limits) -> Router {
    let admission = admission::Admission::new(admission::Caps::default(), state.metrics.clone());
    router(state, access, limits, admission)
}

/// [`app_with`] counting streams and queries under `admission` (shared with the acceptor that
/// counts connections).
fn router(
    state: AppState,
    access: Arc<Access>,
    limits: Limits,
    admission: Arc<admission::Admission>,
) -> Router {
    ops_routes()
        .merge(api::routes())
        .fallback(get(web::serve))
        .with_state(state)
        .merge(crate::access::guard::routes(access.clone()))
        .layer(axum::middleware::from_fn_with_state(
            admission,
            admission::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            access,
            crate::access::guard::guard,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            limits.max_request_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            limits::Limiter::new(limits),
            limits::limit,
        ))
        .layer(axum::middleware::map_response(
            security_headers::add_security_headers,
        ))
}

/// `/metrics` and `/healthz` alone, without a login, for `--ops-listen`.
pub fn ops_app(state: AppState) -> Router {
    ops_routes()
        .with_state(state)
        .layer(axum::middleware::map_response(
            security_headers::add_security_headers,
        ))
}

fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
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

/// 200 `ok` while the store answers and ingest writes; 503 with one line saying why otherwise (the
/// store unreachable, or consumption held back because writes fail — a full disk, say — though
/// queries may still answer from what is stored).
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if let Err(e) = state.store.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store unavailable: {e}"),
        );
    }
    match state.progress.held_back().get() {
        Some(held) => (StatusCode::SERVICE_UNAVAILABLE, held.describe()),
        None => (StatusCode::OK, "ok".to_owned()),
    }
}
