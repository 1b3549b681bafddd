//! Times and durations as the API writes them: RFC 3339 text (UTC, microseconds) and
//! milliseconds.

/// RFC 3339 text of a time in µs since the epoch (UTC, microseconds); the number itself when it is
/// beyond chrono's range.
pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| us.to_string())
}

/// Now, µs since the epoch.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Milliseconds, with µs precision, of a duration in µs.
pub fn ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

/// Serializes an optional time in µs as [`rfc3339`] text (for `#[serde(serialize_with)]`).
pub fn serialize_rfc3339_opt<S: serde::Serializer>(
    us: &Option<i64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match us {
        Some(us) => s.serialize_str(&rfc3339(*us)),
        None => s.serialize_none(),
    }
}
