//! `GET /api/v1/live`: server-sent events telling a watcher which events of its flow have just
//! become durable (see [`crate::live`]).

use std::convert::Infallible;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::error::{ApiError, ErrorBody};
use super::params::LiveParams;
use super::state::AppState;
use crate::live::{FilterError, LiveFilter};
use crate::query::QueryError;

/// Reads the filter from the raw query string (parameters repeat, so no struct fits).
pub fn parse_filter(query: Option<&str>) -> Result<LiveFilter, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::bad_parameter(format!("query string: {e}")))?;
    LiveFilter::from_pairs(pairs).map_err(|e| match e {
        FilterError::Empty | FilterError::TooMany(_) => QueryError::Unusable(e.to_string()).into(),
        _ => ApiError::bad_parameter(e.to_string()),
    })
}

/// The kind of a server-sent event of the live feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LiveEventKind {
    /// Subscribed: `data` is `{}`.
    Ready,
    /// A durable batch held events of what is followed: `data` is `{"ids": [...]}`.
    Stored,
    /// The watcher fell behind: `data` is the number of batches missed (reload the flow).
    Lagged,
}

/// One server-sent event of the live feed (the document describes each event of the stream).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LiveEvent {
    /// What happened.
    pub event: LiveEventKind,
    /// Its data, JSON text.
    pub data: String,
}

/// Follow a flow as it happens: `event: ready` once subscribed, then `event: stored` with
/// `{"ids": [...]}` for each durable batch holding events of the flow, and `event: lagged` with
/// the number of batches missed when the watcher fell behind (reload the flow). At least one
/// `key`, `correlation` or `trace` is required (none: 422), at most 200 in all (more: 422).
#[utoipa::path(get, path = "/api/v1/live",
    params(LiveParams),
    responses(
        (status = 200, description = "A never-ending event stream; each event as described",
            content_type = "text/event-stream", body = LiveEvent),
        (status = 400, description = "An unknown parameter, or a `key` without `=`", body = ErrorBody),
        (status = 422, description = "Nothing to follow (none of `key`, `correlation`, `trace`), or more than 200 things", body = ErrorBody)))]
pub async fn live(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = parse_filter(query.as_deref())?;
    let rx = state.live.subscribe();
    let feed = state.live.clone();
    let updates = futures::stream::unfold((rx, filter), |(mut rx, filter)| async move {
        loop {
            match rx.recv().await {
                Ok(batch) => {
                    let ids = filter.matching_ids(&batch);
                    if ids.is_empty() {
                        continue;
                    }
                    let event = Event::default()
                        .event("stored")
                        .data(serde_json::json!({ "ids": ids }).to_string());
                    return Some((Ok(event), (rx, filter)));
                }
                Err(RecvError::Lagged(missed)) => {
                    let event = Event::default().event("lagged").data(missed.to_string());
                    return Some((Ok(event), (rx, filter)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let ready = futures::stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    let stream = ready
        .chain(updates)
        .take_until(async move { feed.closed().await });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
