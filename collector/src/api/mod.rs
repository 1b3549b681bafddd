//! The query API under `/api/v1`: events, lineage, "what happened to this key", traces,
//! correlations, search, the choreography map, and its own OpenAPI document (generated from
//! these handlers by `utoipa`).
//!
//! Every error is JSON `{ "error", "detail" }`: 400 for a parameter that does not parse, 404 for
//! an unknown id, 422 for a value that parses but cannot be used, 503 when the store fails. No
//! input produces a 500. Limits (depth, page size, graph size) are stated in the answer when
//! they cut it.

pub mod error;
pub mod live;
pub mod model;
pub mod queries;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::http::AppState;
use crate::lineage::Direction;
use crate::store::SearchFilter;
use error::{ApiError, ErrorBody};
use model::*;
use queries::Limits;

/// The API's routes, to merge into the collector's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events/{id}", get(event))
        .route("/api/v1/events/{id}/lineage", get(event_lineage))
        .route("/api/v1/keys", get(key_names))
        .route("/api/v1/keys/{name}/{value}", get(key))
        .route("/api/v1/traces/{trace_id}", get(trace))
        .route("/api/v1/correlations/{id}", get(correlation))
        .route("/api/v1/search", get(search))
        .route("/api/v1/topology", get(topology))
        .route("/api/v1/live", get(live::live))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api", any(not_found))
        .route("/api/{*rest}", any(not_found))
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Choreoscope query API",
        description = "What happened to a business entity across the services of a Kafka choreography."
    ),
    paths(
        event,
        event_lineage,
        key_names,
        key,
        trace,
        correlation,
        search,
        topology,
        live::live
    ),
    components(schemas(
        ErrorBody,
        EventSummary,
        GraphEdge,
        Graph,
        KeyValue,
        Bytes,
        Header,
        Payload,
        ProblemView,
        Delivery,
        EventDetail,
        Hop,
        FlowEnd,
        Flow,
        KeyAnswer,
        FlowAnswer,
        SearchPage,
        MapNode,
        MapEdge,
        Topology,
        KeyNames
    ))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such resource: {}", uri.path()))
}

/// Parses a time parameter: RFC 3339, or milliseconds since the epoch.
pub fn parse_time(name: &str, value: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = value.parse::<i64>() {
        return ms
            .checked_mul(1000)
            .ok_or_else(|| ApiError::Unusable(format!("`{name}` = {value} ms is out of range")));
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_micros())
        .map_err(|e| {
            ApiError::BadParameter(format!(
                "`{name}` must be RFC 3339 or epoch milliseconds: {e}"
            ))
        })
}

fn limits() -> Limits {
    Limits::default()
}

/// The event with this id.
#[utoipa::path(get, path = "/api/v1/events/{id}", params(("id" = String, Path, description = "Event id")),
    responses((status = 200, body = EventDetail), (status = 404, body = ErrorBody)))]
async fn event(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<EventDetail>, ApiError> {
    let Path(id) = path?;
    Ok(Json(queries::event_detail(&state.store, &id).await?))
}

/// Lineage parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LineageParams {
    /// `up` (causes), `down` (reactions) or `both` (default).
    pub direction: Option<String>,
    /// Hops each way (default 10, at most 100).
    pub depth: Option<u32>,
}

/// Parses a lineage direction.
pub fn parse_direction(value: Option<&str>) -> Result<Direction, ApiError> {
    match value.unwrap_or("both") {
        "up" => Ok(Direction::Up),
        "down" => Ok(Direction::Down),
        "both" => Ok(Direction::Both),
        other => Err(ApiError::BadParameter(format!(
            "direction must be up, down or both, not `{other}`"
        ))),
    }
}

/// The causes and reactions of an event.
#[utoipa::path(get, path = "/api/v1/events/{id}/lineage", params(("id" = String, Path, description = "Event id"), LineageParams),
    responses((status = 200, body = Graph), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn event_lineage(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<LineageParams>, QueryRejection>,
) -> Result<Json<Graph>, ApiError> {
    let Path(id) = path?;
    let Query(params) = params?;
    let direction = parse_direction(params.direction.as_deref())?;
    let depth = params.depth.unwrap_or(10);
    Ok(Json(
        queries::lineage_graph(&state.store, &id, direction, depth, &limits()).await?,
    ))
}

/// `/keys` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyNamesParams {
    /// Only the names under which this value is a key of some event.
    pub value: Option<String>,
}

/// Business-key names seen (search suggestions); with `value`, the names holding that value (what
/// a search for a bare value like `o-1001` means). One index probe per name seen.
#[utoipa::path(get, path = "/api/v1/keys", params(KeyNamesParams), responses((status = 200, body = KeyNames)))]
async fn key_names(
    State(state): State<AppState>,
    params: Result<Query<KeyNamesParams>, QueryRejection>,
) -> Result<Json<KeyNames>, ApiError> {
    let Query(params) = params?;
    let mut names = state.store.key_names().await?;
    if let Some(value) = &params.value {
        names = state.store.names_with_value(&names, value).await?;
    }
    Ok(Json(KeyNames { names }))
}

/// What happened to a business entity: every flow that carried the key.
#[utoipa::path(get, path = "/api/v1/keys/{name}/{value}",
    params(("name" = String, Path, description = "Key name, e.g. order.id"), ("value" = String, Path, description = "Key value")),
    responses((status = 200, body = KeyAnswer), (status = 404, body = ErrorBody)))]
async fn key(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<KeyAnswer>, ApiError> {
    let Path((name, value)) = path?;
    Ok(Json(
        queries::key_answer(&state.store, &name, &value, &limits()).await?,
    ))
}

/// Every event of a trace.
#[utoipa::path(get, path = "/api/v1/traces/{trace_id}", params(("trace_id" = String, Path, description = "W3C trace id")),
    responses((status = 200, body = FlowAnswer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn trace(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<FlowAnswer>, ApiError> {
    let Path(id) = path?;
    Ok(Json(
        queries::trace_answer(&state.store, &id, &limits()).await?,
    ))
}

/// Every event of a correlation (conversation).
#[utoipa::path(get, path = "/api/v1/correlations/{id}", params(("id" = String, Path, description = "Correlation id")),
    responses((status = 200, body = FlowAnswer), (status = 404, body = ErrorBody)))]
async fn correlation(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<FlowAnswer>, ApiError> {
    let Path(id) = path?;
    Ok(Json(
        queries::correlation_answer(&state.store, &id, &limits()).await?,
    ))
}

/// Search parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Events at or after (RFC 3339 or epoch ms).
    pub from: Option<String>,
    /// Events before (RFC 3339 or epoch ms).
    pub to: Option<String>,
    /// Event type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Producing service.
    pub source: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Business key: `name=value`, or a value under any name.
    pub key: Option<String>,
    /// Problem kind, e.g. `invalid_traceparent` or `duplicate_publish`; `any` for every kind.
    pub problem: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl SearchParams {
    /// The store filter these parameters ask for.
    pub fn to_filter(&self) -> Result<SearchFilter, ApiError> {
        let key = self.key.as_deref().map(|k| match k.split_once('=') {
            Some((name, value)) => (Some(name.to_owned()), value.to_owned()),
            None => (None, k.to_owned()),
        });
        Ok(SearchFilter {
            from_us: self
                .from
                .as_deref()
                .map(|v| parse_time("from", v))
                .transpose()?,
            to_us: self
                .to
                .as_deref()
                .map(|v| parse_time("to", v))
                .transpose()?,
            event_type: self.event_type.clone(),
            source: self.source.clone(),
            topic: self.topic.clone(),
            key,
            problem: self.problem.clone(),
            before: self
                .cursor
                .as_deref()
                .map(queries::decode_cursor)
                .transpose()?,
            limit: self.limit.unwrap_or(50),
        })
    }
}

/// Events by time, type, service, topic, key or problem; newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/search", params(SearchParams),
    responses((status = 200, body = SearchPage), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchPage>, ApiError> {
    let Query(params) = params?;
    Ok(Json(
        queries::search(&state.store, params.to_filter()?, &limits()).await?,
    ))
}

/// Topology parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopologyParams {
    /// Start (RFC 3339 or epoch ms); default: 24 hours before `to`.
    pub from: Option<String>,
    /// End (RFC 3339 or epoch ms); default: now.
    pub to: Option<String>,
}

/// The choreography as it really runs: services, topics, produce and consume edges.
#[utoipa::path(get, path = "/api/v1/topology", params(TopologyParams),
    responses((status = 200, body = Topology), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn topology(
    State(state): State<AppState>,
    params: Result<Query<TopologyParams>, QueryRejection>,
) -> Result<Json<Topology>, ApiError> {
    let Query(params) = params?;
    let to = match &params.to {
        Some(v) => parse_time("to", v)?,
        None => chrono::Utc::now().timestamp_micros() + 1,
    };
    let from = match &params.from {
        Some(v) => parse_time("from", v)?,
        None => to - 24 * 3600 * 1_000_000,
    };
    Ok(Json(
        queries::topology(&state.store, from, to, &limits()).await?,
    ))
}
