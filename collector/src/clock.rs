//! Times and durations as the API writes them: RFC 3339 text (UTC, microseconds) and
//! milliseconds; and the [`Clock`] background tasks read, which tests set.

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

/// Where a background task reads the time: the system's, or one a test sets (each manual clock
/// is its own value, so tests running at once never share a time).
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock ([`now_us`]).
    #[default]
    System,
    /// A time moved only by [`Clock::set_us`] and [`Clock::advance`].
    Manual(std::sync::Arc<std::sync::atomic::AtomicI64>),
}

impl Clock {
    /// A manual clock standing at `us` µs since the epoch.
    pub fn manual(us: i64) -> Self {
        Self::Manual(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(us)))
    }

    /// Now, µs since the epoch, by this clock.
    pub fn now_us(&self) -> i64 {
        match self {
            Self::System => now_us(),
            Self::Manual(at) => at.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Sets a manual clock to `us` (the system clock is left alone).
    pub fn set_us(&self, us: i64) {
        if let Self::Manual(at) = self {
            at.store(us, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Moves a manual clock on by `by` (the system clock is left alone).
    pub fn advance(&self, by: std::time::Duration) {
        if let Self::Manual(at) = self {
            let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
            at.fetch_add(by, std::sync::atomic::Ordering::SeqCst);
        }
    }
}
