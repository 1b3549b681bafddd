//! The query API under `/api/v1`: events, lineage, "what happened to this key", traces,
//! correlations, search, the choreography map, and its own OpenAPI document (generated from
//! these handlers by `utoipa`). The answers are [`crate::query`]'s; this module only maps
//! requests onto them.
//!
//! Every error is JSON `{ "error", "detail" }`: 400 for a parameter that does not parse, 404 for
//! an unknown id, 422 for a value that parses but cannot be used, 503 when the store fails. No
//! input produces a 500. Limits (depth, page size, graph size) are stated in the answer when
//! they cut it.
//!
//! The document is the contract (docs/api.md): every parameter's schema is what the handler
//! accepts, every status a handler can answer is listed with its body, and `scripts/contract`
//! holds the running server to it with schemathesis. The viewer's types are generated from the
//! committed copy, `ui/src/lib/openapi.json`, which a test keeps equal to [`ApiDoc`].

use axum::extract::State;
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use utoipa::OpenApi;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use super::live;
use super::params::{
    CorrelationPath, Cursor, EventPath, FlowsParams, KeyNamesParams, KeyPath, LineageParams,
    LiveKey, SearchParams, ServicesParams, Time, TopologyParams, TraceId, TracePath, Window,
};
use super::state::AppState;
use crate::access::Principal;
use crate::groups::{Diagnosis, DiagnosisKind, GroupPosition, GroupState};
use crate::health::model::{Expectation, LatencySummary, StepView};
use crate::health::{FlowStatus, Origin, Reaction, Step};
use crate::ingest::progress::{IngestProgress, TopicBehind};
use crate::lineage::{Direction, Flag, Rule};
use crate::query::health::{
    FlowHealthView, FlowRoot, FlowsPage, FlowsSummary, ModelAnswer, StatusCounts, StoppedGroupView,
};
use crate::query::model::*;
use crate::query::services::{LineageLevel, ServiceCoverage, ServicesAnswer, SpanCoverage};
use crate::query::{self, parse_time, Limits, QueryError};

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
        .route("/api/v1/flows", get(flows))
        .route("/api/v1/flows/summary", get(flows_summary))
        .route("/api/v1/model", get(model))
        .route("/api/v1/services", get(services))
        .route("/api/v1/ingest/progress", get(ingest_progress))
        .route("/api/v1/live", get(live::live))
        .route("/api/v1/me", get(me))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api", any(not_found))
        .route("/api/", any(not_found))
        .route("/api/{*rest}", any(not_found))
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Choreoscope query API",
        description = "What happened to a business entity across the services of a Kafka choreography. \
Every error answer is an `ErrorBody`; no input is answered with a 5xx other than 503 (the store failed)."
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
        flows,
        flows_summary,
        model,
        services,
        ingest_progress,
        me,
        live::live
    ),
    modifiers(&Guarded),
    components(schemas(
        ErrorBody,
        Flag,
        Direction,
        Encoding,
        MapNodeKind,
        MapEdgeKind,
        EventSummary,
        GraphEdge,
        Graph,
        KeyValue,
        Bytes,
        Header,
        Payload,
        ProblemView,
        RedactionView,
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
        KeyNames,
        live::LiveEvent,
        live::LiveEventKind,
        Time,
        Window,
        Cursor,
        Rule,
        ExceptionView,
        Outcome,
        HandlingView,
        LineageLevel,
        SpanCoverage,
        ServiceCoverage,
        ServicesAnswer,
        TraceId,
        LiveKey,
        FlowStatus,
        Step,
        Reaction,
        Origin,
        LatencySummary,
        Expectation,
        StepView,
        StatusCounts,
        FlowRoot,
        MissingView,
        FailureView,
        FlowHealthBrief,
        GroupPosition,
        Diagnosis,
        GroupState,
        DiagnosisKind,
        DeadLetterView,
        FlowHealthView,
        FlowsPage,
        StoppedGroupView,
        FlowsSummary,
        ModelAnswer,
        IngestProgress,
        TopicBehind,
        Me
    ))
)]
pub struct ApiDoc;

/// Declares what the access guard ([`crate::access`]) may answer to any operation: 401 without
/// a usable credential, 403 when the role does not cover it; and the bearer scheme.
struct Guarded;

impl utoipa::Modify for Guarded {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let refused = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses.entry("401".to_owned()).or_insert_with(|| {
                    refused("No credential, or one that is not valid (under `--auth tokens` or `proxy`)")
                        .into()
                });
                responses
                    .entry("403".to_owned())
                    .or_insert_with(|| refused("The credential's role does not cover this").into());
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (`--auth tokens`)"))
                    .build(),
            ),
        );
    }
}

/// Who a request is made by, as the collector authenticated it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The user's or token's name (`anonymous` without login).
    pub name: String,
    /// `viewer`, `reader` or `admin`.
    pub role: String,
    /// How they were authenticated: `none`, `token` or `proxy`.
    pub via: String,
    /// Whether payloads, header values and record keys are shown to them.
    pub payloads: bool,
    /// The topic patterns whose events they see in full; `null`: every topic.
    #[schema(required)]
    pub topics: Option<Vec<String>>,
}

/// Who you are to the collector: your name, role and the topics you see.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me)))]
async fn me(Extension(asker): Extension<Principal>) -> Json<Me> {
    let sight = asker.sight();
    Json(Me {
        name: asker.name,
        role: asker.role.as_str().to_owned(),
        via: asker.via.to_owned(),
        payloads: sight.payloads,
        topics: sight.topics.map(|t| t.as_slice().to_vec()),
    })
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError(QueryError::NotFound(format!(
        "no such resource: {}",
        uri.path()
    )))
}

fn limits() -> Limits {
    Limits::default()
}

/// The event with this id, with the flags of its node in the graph of its flow.
#[utoipa::path(get, path = "/api/v1/events/{id}", params(EventPath),
    responses(
        (status = 200, body = EventDetail),
        (status = 400, description = "A path segment that is not UTF-8", body = ErrorBody),
        (status = 404, description = "No event with this id", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody)))]
async fn event(
    State(state): State<AppState>,
    Extension(asker): Extension<Principal>,
    ApiPath(path): ApiPath<EventPath>,
) -> Result<Json<EventDetail>, ApiError> {
    let mut detail = query::event_detail(&state.store, &state.groups, &path.id, &limits()).await?;
    asker
        .sight()
        .event_detail(&mut detail)
        .map_err(|hidden| QueryError::Forbidden(hidden.to_string()))?;
    Ok(Json(detail))
}

/// The causes and reactions of an event.
#[utoipa::path(get, path = "/api/v1/events/{id}/lineage", params(EventPath, LineageParams),
    responses(
        (status = 200, body = Graph),
        (status = 400, description = "A parameter that does not parse", body = ErrorBody),
        (status = 404, description = "No event with this id", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody)))]
async fn event_lineage(
    State(state): State<AppState>,
    Extension(asker): Extension<Principal>,
    ApiPath(path): ApiPath<EventPath>,
    ApiQuery(params): ApiQuery<LineageParams>,
) -> Result<Json<Graph>, ApiError> {
    let direction = params.direction.unwrap_or(Direction::Both);
    let depth = params.depth.unwrap_or(10);
    let mut graph =
        query::lineage_graph(&state.store, &path.id, direction, depth, &limits()).await?;
    asker.sight().graph(&mut graph);
    Ok(Json(graph))
}

/// Business-key names seen (search suggestions); with `value`, the names holding that value (what
/// a search for a bare value like `o-1001` means). One index probe per name seen.
#[utoipa::path(get, path = "/api/v1/keys", params(KeyNamesParams),
    responses(
        (status = 200, body = KeyNames),
        (status = 400, description = "A query string that does not parse (a parameter twice)", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody)))]
async fn key_names(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<KeyNamesParams>,
) -> Result<Json<KeyNames>, ApiError> {
    let mut names = state.store.key_names().await?;
    if let Some(value) = &params.value {
        names = state.store.names_with_value(&names, value).await?;
    }
    Ok(Json(KeyNames { names }))
}

/// What happened to a business entity: every flow that carried the key.
#[utoipa::path(get, path = "/api/v1/keys/{name}/{value}", params(KeyPath),
    responses(
        (status = 200, body = KeyAnswer),
        (status = 400, description = "A path segment that is not UTF-8", body = ErrorBody),
        (status = 404, description = "No event carries the key", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody)))]
async fn key(
    State(state): State<AppState>,
    Extension(asker): Extension<Principal>,
    ApiPath(path): ApiPath<KeyPath>,
) -> Result<Json<KeyAnswer>, ApiError> {
    let mut answer = query::key_answer(
        &state.store,
        &state.health,
        &state.groups,
        &path.name,
        &path.value,
        state.redaction.hash(&path.value).as_deref(),
        &limits(),
    )
    .await?;
    asker.sight().key_answer(&mut answer);
    Ok(Json(answer))
}

/// Every event of a trace.
#[utoipa::path(get, path = "/api/v1/traces/{trace_id}", params(TracePath),
    responses(
        (status = 200, body = FlowAnswer),
        (status = 400, description = "A path segment that is not UTF-8", body = ErrorBody),
        (status = 404, description = "No event of this trace (never any for the all-zero id, invalid under W3C)", body = ErrorBody),
        (status = 422, description = "Not 32 lower-case hex digits", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody)))]
async fn trace(
    State(state): State<AppState>,
    Extension(asker): Extension<Principal>,
    ApiPath(path): ApiPath<TracePath>,
) -> Result<Json<FlowAnswer>, ApiError> {
    let mut answer = query::trace_answer(
        &state.store,
        &state.health,
        &state.groups,
        &path.trace_id,
        &limits(),
    )
    .await?;
    asker.sight().flow_answer(&mut answer);
    Ok(Json(answer))
}

/// Every event of a correlation (conversation).
#[utoipa::path(get, path = "/api/v1/correlations/{id}", params(CorrelationPath),
    responses(
        (status = 200, body = FlowAnswer),
        (status = 400, description = "A path segment that is not UTF-8", body = ErrorBody),
        (status = 404, description = "No event of this correlation", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody)))]
async fn correlation(
    State(state): State<AppState>,
    Extension(asker): Extension<Principal>,
    ApiPath(path): ApiPath<CorrelationPath>,
) -> Result<Json<FlowAnswer>, ApiError> {
    let mut answer = query::correlation_answer(
        &state.store,
        &state.health,
        &state.groups,
        &path.id,
        &limits(),
    )
    .await?;
    asker.sight().flow_answer(&mut answer);
    Ok(Json(answer))
}

/// Events by time, type, service, topic, key or problem; newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/search", params(SearchParams),
    responses(
        (status = 200, body = SearchPage),
        (status = 400, description = "A parameter that does not parse", body = ErrorBody),
        (status = 422, description = "`from` after `to`, or `limit` below 1", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    Extension(asker): Extension<Principal>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchPage>, ApiError> {
    let mut page = query::search(&state.store, params.to_filter()?, &limits()).await?;
    asker.sight().search_page(&mut page);
    Ok(Json(page))
}

/// Per producing service: how its recent events arrive (ids, causation, correlation, trace
/// context, baggage), whether it sends spans, the lineage that allows, and what to add.
#[utoipa::path(get, path = "/api/v1/services", params(ServicesParams),
    responses(
        (status = 200, body = ServicesAnswer),
        (status = 400, description = "A `window` that does not parse", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody)))]
async fn services(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ServicesParams>,
) -> Result<Json<ServicesAnswer>, ApiError> {
    let window = params.window_us()?;
    let to = chrono::Utc::now().timestamp_micros() + 1;
    Ok(Json(
        query::services::services(&state.store, to - window, to).await?,
    ))
}

/// The choreography as it really runs: services, topics, produce and consume edges.
#[utoipa::path(get, path = "/api/v1/topology", params(TopologyParams),
    responses(
        (status = 200, body = Topology),
        (status = 400, description = "A parameter that does not parse", body = ErrorBody),
        (status = 422, description = "`from` after `to` (or after now, without `to`)", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody)))]
async fn topology(
    State(state): State<AppState>,
    Extension(asker): Extension<Principal>,
    ApiQuery(params): ApiQuery<TopologyParams>,
) -> Result<Json<Topology>, ApiError> {
    let to = match &params.to {
        Some(v) => parse_time("to", v)?,
        None => chrono::Utc::now().timestamp_micros() + 1,
    };
    let from = match &params.from {
        Some(v) => parse_time("from", v)?,
        None => to.saturating_sub(24 * 3600 * 1_000_000),
    };
    let mut map = query::topology(
        &state.store,
        &state.health,
        &state.groups,
        from,
        to,
        &limits(),
    )
    .await?;
    asker.sight().topology(&mut map);
    Ok(Json(map))
}

/// Flows with an event in the last hour, oldest first, with their status (`complete`,
/// `in_progress`, `stalled`, `failed`) and, for stuck ones, what is missing after which event and
/// since when.
#[utoipa::path(get, path = "/api/v1/flows", params(FlowsParams),
    responses(
        (status = 200, body = FlowsPage),
        (status = 400, description = "A parameter that does not parse", body = ErrorBody),
        (status = 422, description = "`limit` below 1", body = ErrorBody)))]
async fn flows(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<FlowsParams>,
) -> Result<Json<FlowsPage>, ApiError> {
    Ok(Json(
        query::health::flows(
            &state.health,
            &state.groups,
            &state.store,
            params.status,
            params.limit.unwrap_or(50),
            &limits(),
        )
        .await?,
    ))
}

/// How many flows are complete, in progress, stalled and failed, and the stalled and failed ones
/// grouped by where they stopped ("37 flows stalled after payment/PaymentCreated, waiting for
/// bank").
#[utoipa::path(get, path = "/api/v1/flows/summary", responses((status = 200, body = FlowsSummary)))]
async fn flows_summary(State(state): State<AppState>) -> Json<FlowsSummary> {
    Json(query::health::summary(&state.health))
}

/// The learned choreography: per step, the reactions expected after it (support, samples,
/// latency, deadline) and every reaction seen.
#[utoipa::path(get, path = "/api/v1/model", responses((status = 200, body = ModelAnswer)))]
async fn model(State(state): State<AppState>) -> Json<ModelAnswer> {
    Json(query::health::model(&state.health))
}

/// How far behind the ends of its partitions the collector's consumption is: records behind per
/// topic, whether it is catching up on a backlog, and when it will have caught up at its recent
/// pace. Measured from the Kafka client's statistics every 5 s; `consuming` is false in `serve`.
#[utoipa::path(get, path = "/api/v1/ingest/progress", responses((status = 200, body = IngestProgress)))]
async fn ingest_progress(State(state): State<AppState>) -> Json<IngestProgress> {
    Json(state.progress.progress())
}
