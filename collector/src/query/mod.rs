//! The answers to every question the collector is asked, shared by the HTTP API
//! ([`crate::http`]) and `choreoscope query` ([`crate::render`]): what happened to a business
//! key, an event's lineage, the events of a trace or a correlation, search, the choreography map.
//! Inputs are parsed here ([`parse_time`], [`parse_direction`], [`check_trace_id`], cursors), so
//! every interface refuses the same values with the same [`QueryError`].

pub mod answers;
pub mod health;
pub mod model;
pub mod services;
pub mod visibility;

pub use answers::{
    check_trace_id, correlation_answer, decode_cursor, encode_cursor, event_detail, flags_in_flow,
    key_answer, lineage_graph, search, topology, trace_answer, CURSOR_PATTERN, TRACE_ID_PATTERN,
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
    /// The asker's role does not cover it (an event of a topic outside its patterns).
    #[error("{0}")]
    Forbidden(String),
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

/// The pattern of a time parameter in the API ([`parse_time`] reads exactly these): milliseconds
/// since the epoch (at most 15 digits), or an RFC 3339 date-time with a valid calendar date, no
/// leap second, at most 9 fractional digits and an offset within ±23:59.
pub const TIME_PATTERN: &str = concat!(
    "^(?:[+-]?[0-9]{1,15}|",
    // Dates: days of 31, 30 and 28 days in any year, 29 February in leap years.
    "(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)",
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))",
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)",
    "[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?",
    "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))$"
);

/// Parses a time parameter: RFC 3339, or milliseconds since the epoch; anything outside
/// [`TIME_PATTERN`] is a [`QueryError::BadParameter`].
pub fn parse_time(name: &str, value: &str) -> Result<i64, QueryError> {
    static PATTERN: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(TIME_PATTERN).expect("valid pattern"));
    let bad = |why: String| {
        QueryError::BadParameter(format!(
            "`{name}` must be RFC 3339 or epoch milliseconds (at most 15 digits): {why}"
        ))
    };
    if !PATTERN.is_match(value) {
        return Err(bad(format!("not `{value}`")));
    }
    if let Ok(ms) = value.parse::<i64>() {
        // 15 digits: ms * 1000 fits.
        return Ok(ms * 1000);
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_micros())
        .map_err(|e| bad(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_the_pattern_parse() {
        for (value, us) in [
            ("1000", 1_000_000),
            ("-5", -5000),
            ("+999999999999999", 999_999_999_999_999_000),
            ("2026-12-01T16:20:55.966Z", 1_796_142_055_966_000),
            ("2026-12-01t16:20:55z", 1_796_142_055_000_000),
            ("2026-12-01 17:20:55+01:00", 1_796_142_055_000_000),
            ("2024-02-29T00:00:00.123456789-23:59", 1_709_251_140_123_456),
            ("2000-02-29T00:00:00Z", 951_782_400_000_000),
            ("0000-01-01T00:00:00Z", -62_167_219_200_000_000),
            ("9999-12-31T23:59:59.999999Z", 253_402_300_799_999_999),
        ] {
            assert_eq!(parse_time("from", value).unwrap(), us, "{value}");
        }
    }

    #[test]
    fn times_outside_the_pattern_are_bad_parameters() {
        for value in [
            "",
            "yesterday",
            "1000000000000000",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-12-01T16:20:55",
            "2026-12-01T16:20:55+24:00",
            "2026-12-01T16:20:55.Z",
            "2026-12-01",
        ] {
            assert!(
                matches!(parse_time("from", value), Err(QueryError::BadParameter(_))),
                "{value}"
            );
        }
    }
}
