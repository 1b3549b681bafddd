//! The answers to every question the collector is asked, shared by the HTTP API
//! ([`crate::http`]) and `choreoscope query` ([`crate::render`]): what happened to a business
//! key, an event's lineage, the events of a trace or a correlation, search, the choreography map.
//! Inputs are parsed here ([`parse_time`], [`parse_direction`], [`check_trace_id`], cursors), so
//! every interface refuses the same values with the same [`QueryError`].

pub mod answers;
pub mod model;

pub use answers::{
    check_trace_id, correlation_answer, decode_cursor, encode_cursor, event_detail, key_answer,
    lineage_graph, search, topology, trace_answer,
};

use crate::lineage::Direction;
use crate::store::StoreError;

/// Why a question got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A parameter could not be parsed.
    #[error("{0}")]
    BadParameter(String),
    /// No such event, trace, correlation or key.
    #[error("{0}")]
    NotFound(String),
    /// A parameter parsed but cannot be used, e.g. `from` after `to`.
    #[error("{0}")]
    Unusable(String),
    /// The store failed: the question may be answered later.
    #[error("store unavailable: {0}")]
    Store(#[from] StoreError),
}

/// Bounds on what one answer may cost; stated in the answer when they cut it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest lineage walk.
    pub max_depth: u32,
    /// Most nodes in one graph.
    pub max_nodes: usize,
    /// Most flows (correlations) in one key answer.
    pub max_flows: usize,
    /// Largest search page.
    pub max_page: i64,
    /// Most reactions sampled for topology latencies.
    pub max_hops: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 100,
            max_nodes: 5000,
            max_flows: 100,
            max_page: 500,
            max_hops: 200_000,
        }
    }
}

/// Parses a time parameter: RFC 3339, or milliseconds since the epoch.
pub fn parse_time(name: &str, value: &str) -> Result<i64, QueryError> {
    if let Ok(ms) = value.parse::<i64>() {
        return ms
            .checked_mul(1000)
            .ok_or_else(|| QueryError::Unusable(format!("`{name}` = {value} ms is out of range")));
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_micros())
        .map_err(|e| {
            QueryError::BadParameter(format!(
                "`{name}` must be RFC 3339 or epoch milliseconds: {e}"
            ))
        })
}

/// Parses a lineage direction.
pub fn parse_direction(value: Option<&str>) -> Result<Direction, QueryError> {
    match value.unwrap_or("both") {
        "up" => Ok(Direction::Up),
        "down" => Ok(Direction::Down),
        "both" => Ok(Direction::Both),
        other => Err(QueryError::BadParameter(format!(
            "direction must be up, down or both, not `{other}`"
        ))),
    }
}
