//! The parameters of the API's operations, as the OpenAPI document declares them, and what they
//! turn into for [`crate::query`].
//!
//! The document states exactly what the server accepts: each parameter's schema is the set of
//! values the handler takes (patterns, bounds, enums), so a value inside it is never refused with
//! 400. What a schema cannot say — `from` not after `to`, at least one thing to follow on the live
//! feed — is said in the descriptions and answered 422.

use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::health::FlowStatus;
use crate::lineage::Direction;
use crate::query::{
    decode_cursor, parse_time, QueryError, CURSOR_PATTERN, TIME_PATTERN, TRACE_ID_PATTERN,
};
use crate::store::SearchFilter;

/// A string schema with a pattern and a description.
fn pattern(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

/// The schema of a time parameter: exactly what [`parse_time`] reads ([`TIME_PATTERN`]).
#[derive(Debug)]
pub struct Time;

impl PartialSchema for Time {
    fn schema() -> RefOr<Schema> {
        pattern(
            TIME_PATTERN,
            "Epoch milliseconds (at most 15 digits), or an RFC 3339 date-time (a real calendar \
             date, no leap second, at most 9 fractional digits, an offset within ±23:59).",
        )
    }
}

impl ToSchema for Time {}

/// The schema of a search cursor: exactly what [`decode_cursor`] reads ([`CURSOR_PATTERN`]).
#[derive(Debug)]
pub struct Cursor;

impl PartialSchema for Cursor {
    fn schema() -> RefOr<Schema> {
        pattern(
            CURSOR_PATTERN,
            "`TIME_US:ID` of the last event of the page before, as `next_cursor` gives it.",
        )
    }
}

impl ToSchema for Cursor {}

/// The schema of a trace id ([`TRACE_ID_PATTERN`]).
#[derive(Debug)]
pub struct TraceId;

impl PartialSchema for TraceId {
    fn schema() -> RefOr<Schema> {
        pattern(
            TRACE_ID_PATTERN,
            "W3C trace id: 32 lower-case hex digits. The all-zero id has this shape but is \
             invalid under W3C; no event carries it, so it is never found (404).",
        )
    }
}

impl ToSchema for TraceId {}

/// The schema of a business key followed by the live feed: `NAME=VALUE`, the name not empty.
#[derive(Debug)]
pub struct LiveKey;

impl PartialSchema for LiveKey {
    fn schema() -> RefOr<Schema> {
        pattern(
            "^[^=]+=",
            "`NAME=VALUE` of a business key; the name is not empty.",
        )
    }
}

impl ToSchema for LiveKey {}

/// The event of `/events/{id}` and `/events/{id}/lineage`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EventPath {
    /// Event id.
    pub id: String,
}

/// The business key of `/keys/{name}/{value}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// Key name, e.g. `order.id`.
    pub name: String,
    /// Key value, e.g. `o-1001`.
    pub value: String,
}

/// The trace of `/traces/{trace_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TracePath {
    /// W3C trace id: 32 lower-case hex digits (another shape: 422; the all-zero id, invalid
    /// under W3C and never stored: 404).
    #[param(value_type = TraceId)]
    pub trace_id: String,
}

/// The correlation of `/correlations/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CorrelationPath {
    /// Correlation id.
    pub id: String,
}

/// Lineage parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LineageParams {
    /// `up` (causes), `down` (reactions) or `both` (default).
    #[param(inline)]
    pub direction: Option<Direction>,
    /// Hops each way (default 10). Walks go at most 100 deep: a deeper one is cut there and
    /// `truncated` says so.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64, default = 10)]
    pub depth: Option<u32>,
}

/// `/keys` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyNamesParams {
    /// Only the names under which this value is a key of some event.
    pub value: Option<String>,
}

/// Search parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Events at or after: RFC 3339, or epoch milliseconds (at most 15 digits). After `to`: 422.
    #[param(value_type = Option<Time>)]
    pub from: Option<String>,
    /// Events before: RFC 3339, or epoch milliseconds (at most 15 digits).
    #[param(value_type = Option<Time>)]
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
    /// Page size, at least 1 (default 50). Pages hold at most 500 events: a larger size is cut
    /// to 500, and the answer's `limit` says so.
    #[param(minimum = 1, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (`TIME_US:ID`).
    #[param(value_type = Option<Cursor>)]
    pub cursor: Option<String>,
}

impl SearchParams {
    /// The store filter these parameters ask for.
    pub fn to_filter(&self) -> Result<SearchFilter, QueryError> {
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
            before: self.cursor.as_deref().map(decode_cursor).transpose()?,
            limit: self.limit.unwrap_or(50),
        })
    }
}

/// Topology parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopologyParams {
    /// Start: RFC 3339, or epoch milliseconds (at most 15 digits); default: 24 hours before
    /// `to`. After `to` (or, without `to`, after now): 422.
    #[param(value_type = Option<Time>)]
    pub from: Option<String>,
    /// End: RFC 3339, or epoch milliseconds (at most 15 digits); default: now.
    #[param(value_type = Option<Time>)]
    pub to: Option<String>,
}

/// `/services` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServicesParams {
    /// How far back from now to look: a number and a unit (`s`, `m`, `h`, `d`) such as `1h`,
    /// `24h` or `7d`; longer than 30 days reads 30 days; default 24h. Anything else: 400.
    #[param(value_type = Option<Window>)]
    pub window: Option<String>,
}

/// What a `window` parameter reads.
pub const WINDOW_PATTERN: &str = "^[1-9][0-9]{0,5}[smhd]$";

/// The schema of a look-back window ([`WINDOW_PATTERN`]).
#[derive(Debug)]
pub struct Window;

impl PartialSchema for Window {
    fn schema() -> RefOr<Schema> {
        pattern(
            WINDOW_PATTERN,
            "A number (1 to 6 digits, no leading zero) and a unit: s, m, h or d, e.g. 24h.",
        )
    }
}

impl ToSchema for Window {}

impl ServicesParams {
    /// The window in µs (see [`crate::query::services::parse_window`]): default 24 hours.
    pub fn window_us(&self) -> Result<i64, QueryError> {
        crate::query::services::parse_window(self.window.as_deref().unwrap_or("24h"))
    }
}

/// The live feed's parameters, as the document declares them. The handler reads the raw query
/// string ([`super::live::parse_filter`]): each parameter repeats. At least one value of one of
/// them is required, at most 200 in all; otherwise 422.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveParams {
    /// Business keys to follow, each `NAME=VALUE` (repeatable).
    #[param(value_type = Option<Vec<LiveKey>>, style = Form, explode, max_items = 200)]
    pub key: Option<Vec<String>>,
    /// Correlation ids to follow (repeatable).
    #[param(style = Form, explode, max_items = 200)]
    pub correlation: Option<Vec<String>>,
    /// Trace ids to follow (repeatable).
    #[param(style = Form, explode, max_items = 200)]
    pub trace: Option<Vec<String>>,
}

/// `/flows` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlowsParams {
    /// Only flows with this status (every status when absent).
    #[param(inline)]
    pub status: Option<FlowStatus>,
    /// Page size, at least 1 (default 50). Pages hold at most 500 flows: a larger size is cut
    /// to 500, and the answer's `limit` says so.
    #[param(minimum = 1, default = 50)]
    pub limit: Option<i64>,
}
