//! Retention: events older than `--retention` (by event time), and the oldest events while the
//! store takes more than `--max-store-size`, are deleted in the background.
//!
//! Deletion never holds the store for long: a pass deletes at most [`RetentionSettings::batch`]
//! events a transaction, pausing [`RetentionSettings::pause`] between transactions, so ingest
//! batches interleave with it (on SQLite both go through the store's single writing connection,
//! see `store::sqlite::retention`; on PostgreSQL each batch is its own short transaction on the
//! indexed time column). What a deletion takes away from a flow, and how flow health follows, is
//! in docs/security.md, "Retention".
//!
//! # Layout
//! - [`RetentionSettings`]: what to keep, from the flags, their variables and the config file's
//!   `[retention]` table ([`RetentionTable`]); [`ByteSize`] parses `500MB`, `10GiB`.
//! - [`pass`]: one round of deletions and measurements; [`run`]: a pass every
//!   [`RetentionSettings::every`] until the collector's token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Events deleted per transaction by default: a few milliseconds of the writer's time.
pub const DEFAULT_BATCH: i64 = 2_000;
/// Pause between two deleting transactions by default: ingest batches go in between.
pub const DEFAULT_PAUSE: Duration = Duration::from_millis(20);
/// Time between two passes by default.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(60);

/// A size in bytes, written `123`, `500MB`, `1.5GB` (powers of 1000) or `10GiB` (powers of
/// 1024); units are case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// Why a retention setting cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetentionError {
    /// A size that is not a number with an optional unit.
    #[error("`{0}` is not a size: write e.g. 500MB, 10GiB or a number of bytes")]
    Size(String),
    /// The `[retention]` table of the config file.
    #[error("[retention]: {0}")]
    Table(String),
}

impl std::str::FromStr for ByteSize {
    type Err = RetentionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| RetentionError::Size(s.to_owned()))?;
        let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" | "k" => 1_000,
            "mb" | "m" => 1_000_000,
            "gb" | "g" => 1_000_000_000,
            "tb" | "t" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => return Err(RetentionError::Size(s.to_owned())),
        };
        let bytes = number * scale as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(RetentionError::Size(s.to_owned()));
        }
        Ok(Self(bytes.round() as u64))
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Text {
            Number(u64),
            Text(String),
        }
        match Text::deserialize(d)? {
            Text::Number(n) => Ok(Self(n)),
            Text::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The config file's `[retention]` table (under the flags):
///
/// ```toml
/// [retention]
/// max_age = "7d"
/// max_size = "10GiB"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionTable {
    /// Events older than this (by event time) are deleted.
    #[serde(default, with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// The oldest events are deleted while the store takes more than this.
    #[serde(default)]
    pub max_size: Option<ByteSize>,
}

impl RetentionTable {
    /// Reads the table's TOML value.
    pub fn from_table(table: toml::Table) -> Result<Self, RetentionError> {
        table
            .try_into()
            .map_err(|e: toml::de::Error| RetentionError::Table(e.message().to_owned()))
    }
}

/// What retention keeps, and how it deletes the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Events whose time is older than this are deleted (none: kept however old).
    pub max_age: Option<Duration>,
    /// The oldest events are deleted while the store takes more bytes than this (none: no bound).
    pub max_size: Option<u64>,
    /// Time between two passes.
    pub every: Duration,
    /// Most events deleted in one transaction.
    pub batch: i64,
    /// Pause between two deleting transactions of a pass.
    pub pause: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            max_age: None,
            max_size: None,
            every: DEFAULT_EVERY,
            batch: DEFAULT_BATCH,
            pause: DEFAULT_PAUSE,
        }
    }
}

impl RetentionSettings {
    /// The settings of `max_age` and `max_size` (the flags), each over the file's `table` value.
    pub fn over(max_age: Option<Duration>, max_size: Option<u64>, table: &RetentionTable) -> Self {
        Self {
            max_age: max_age.or(table.max_age),
            max_size: max_size.or(table.max_size.map(|s| s.0)),
            ..Self::default()
        }
    }

    /// Whether anything is ever deleted.
    pub fn is_on(&self) -> bool {
        self.max_age.is_some() || self.max_size.is_some()
    }
}

/// What one [`pass`] did and measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Events deleted for being older than the retention.
    pub by_age: u64,
    /// Events deleted, oldest first, for the store being over its size.
    pub by_size: u64,
    /// Dead-letter copies deleted for being older than the retention.
    pub dead_letters: u64,
    /// Bytes the store took at the end of the pass.
    pub size_bytes: u64,
    /// Time of the oldest event kept at the end of the pass.
    pub oldest_event_us: Option<i64>,
}

/// Sleeps `pause`; `false` when `stop` was cancelled meanwhile.
async fn paused(pause: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => !stop.is_cancelled(),
        () = stop.cancelled() => false,
    }
}

/// Deletes events older than `before_us` a batch at a time, until none is left or `stop`.
async fn delete_before(
    store: &Store,
    settings: &RetentionSettings,
    metrics: &Metrics,
    before_us: i64,
    stop: &CancellationToken,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let n = store
            .delete_events_before(before_us, settings.batch)
            .await?;
        deleted += n;
        metrics.retention_deleted_events.inc_by(n);
        if n < settings.batch as u64 || !paused(settings.pause, stop).await {
            return Ok(deleted);
        }
    }
}

/// One round: deletes what is older than the retention (events, then dead-letter copies), then,
/// while the store is over its size, the oldest events; sets the store's gauges. Stops between
/// two transactions when `stop` is cancelled.
///
/// The size bound deletes at most the share of events by which the store is over its size (the
/// store's events × excess / size), re-measuring after each batch: on SQLite freed pages leave the
/// measure at once and the pass stops as soon as the store is under its size; on PostgreSQL the
/// space of deleted rows is reused, not returned, so the estimate is what bounds the pass, and
/// the next one deletes again only if the store has grown past its size since.
pub async fn pass(
    store: &Store,
    settings: &RetentionSettings,
    clock: &Clock,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Result<Pass, StoreError> {
    let mut done = Pass::default();
    if let Some(max_age) = settings.max_age {
        let before_us = clock
            .now_us()
            .saturating_sub(i64::try_from(max_age.as_micros()).unwrap_or(i64::MAX));
        done.by_age = delete_before(store, settings, metrics, before_us, stop).await?;
        while !stop.is_cancelled() {
            let n = store
                .delete_dead_letters_before(before_us, settings.batch)
                .await?;
            done.dead_letters += n;
            if n < settings.batch as u64 || !paused(settings.pause, stop).await {
                break;
            }
        }
    }
    let mut size = store.size_bytes().await?;
    if let Some(max_size) = settings.max_size.filter(|max| size > *max) {
        let started_at = size;
        let events = u64::try_from(store.counts().await?.events).unwrap_or(0);
        let target = u128::from(events) * u128::from(size - max_size) / u128::from(size.max(1));
        let target = u64::try_from(target).unwrap_or(u64::MAX).max(1);
        while size > max_size && !stop.is_cancelled() {
            let shrinks = size < started_at;
            if done.by_size >= target && !shrinks {
                break;
            }
            let most = if shrinks {
                settings.batch as u64
            } else {
                (target - done.by_size).min(settings.batch as u64)
            };
            let n = store
                .delete_events_before(i64::MAX, i64::try_from(most).unwrap_or(i64::MAX))
                .await?;
            metrics.retention_deleted_events.inc_by(n);
            done.by_size += n;
            size = store.size_bytes().await?;
            if n == 0 || !paused(settings.pause, stop).await {
                break;
            }
        }
    }
    done.size_bytes = size;
    done.oldest_event_us = store.oldest_event_us().await?;
    metrics
        .store_size_bytes
        .set(i64::try_from(size).unwrap_or(i64::MAX));
    metrics.oldest_event_seconds.set(
        done.oldest_event_us
            .map_or(0, |us| us.div_euclid(1_000_000)),
    );
    Ok(done)
}

/// Runs a [`pass`] at once and then every [`RetentionSettings::every`], until `stop`; a failed
/// pass is logged and tried again at the next.
pub async fn run(
    store: Store,
    settings: RetentionSettings,
    clock: Clock,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        match pass(&store, &settings, &clock, &metrics, &stop).await {
            Ok(done) if done.by_age + done.by_size + done.dead_letters > 0 => tracing::info!(
                by_age = done.by_age,
                by_size = done.by_size,
                dead_letters = done.dead_letters,
                size_bytes = done.size_bytes,
                "retention deleted old events"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pass failed; trying again later"),
        }
        tokio::select! {
            () = tokio::time::sleep(settings.every) => {}
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_in_decimal_and_binary_units() {
        let size = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(size("500MB"), Ok(500_000_000));
        assert_eq!(size("10GiB"), Ok(10 << 30));
        assert_eq!(size("1.5 gb"), Ok(1_500_000_000));
        assert_eq!(size("4096"), Ok(4096));
        assert!(size("ten MB").is_err());
        assert!(size("5 parsecs").is_err());
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let table = RetentionTable::from_table(
            toml::from_str("max_age = \"30d\"\nmax_size = \"1GiB\"").unwrap(),
        )
        .unwrap();
        let settings = RetentionSettings::over(Some(Duration::from_secs(3600)), None, &table);
        assert_eq!(settings.max_age, Some(Duration::from_secs(3600)));
        assert_eq!(settings.max_size, Some(1 << 30));
        assert!(RetentionTable::from_table(toml::from_str("keep = 1").unwrap()).is_err());
    }
}
