//! Where the collector starts reading a partition its consumer group has no committed offset for:
//! `--start-at earliest | latest | DURATION | TIME` ([`StartAt`]).
//!
//! # The rules
//! - **Committed offsets always win.** A partition the group has committed an offset for resumes
//!   there, whatever `--start-at` says: `--start-at` only places partitions the group has never
//!   committed for (a first `collect`, a new topic, a new partition).
//! - Every start position is fixed when the collector starts ([`StartAt::resolve`]): `earliest`
//!   is each partition's first retained record; `latest` its end when the collector first gets it;
//!   a `DURATION` such as `1h` is that long before the collector started; a `TIME` is itself.
//!   A `DURATION` or `TIME` is looked up with Kafka's offsets-for-times: a partition starts at its
//!   first record whose timestamp is at or after that time, at its end when it has none.
//! - A partition the collector gets *after* its first assignment with still no committed offset
//!   (a topic or partition created since, or one taken over from another member of the group
//!   before anything was committed for it) follows the same time: with `latest`, that is the
//!   moment the collector started, so a topic created while it runs is read from its first record
//!   rather than from wherever its end is when the subscription catches up with it.
//! - `earliest`, the default, is today's behaviour and needs no look-up: librdkafka's
//!   `auto.offset.reset=earliest`. The others set `auto.offset.reset=latest`, which only applies
//!   when a look-up fails (the partition then starts at its end, with a warning) or a committed
//!   offset is out of range.
//!
//! The placement happens in the consumer's rebalance callback ([`StartPositions::rebalance`]), for
//! the partitions being assigned, before they are fetched: eager assignors (librdkafka's default
//! `range,roundrobin`) assign the whole new assignment, the cooperative one (`cooperative-sticky`,
//! through `--kafka partition.assignment.strategy=…`) only the partitions added; both are
//! handled.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

/// How long one look-up (committed offsets, offsets for a time) may take before it is tried again.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of each look-up before the partitions are left to `auto.offset.reset`.
const LOOKUP_TRIES: u32 = 3;

/// Where a partition with no committed offset starts (`--start-at`); see the [module](self)
/// docs for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// Its first retained record (the default).
    #[default]
    Earliest,
    /// Its end when the collector first gets it: only records written from then on.
    Latest,
    /// Its first record written at most this long before the collector started.
    Ago(Duration),
    /// Its first record written at or after this time.
    At(DateTime<Utc>),
}

/// A `--start-at` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartAtError {
    /// Neither keyword, duration nor time.
    #[error("`{0}` is not earliest, latest, a duration such as 1h or 30m, or an RFC 3339 time such as 2026-05-01T08:00:00Z")]
    Unrecognised(String),
    /// A time after now: nothing would be read until then.
    #[error("`{0}` is in the future")]
    Future(String),
}

impl FromStr for StartAt {
    type Err = StartAtError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        match trimmed.to_ascii_lowercase().as_str() {
            "earliest" => return Ok(Self::Earliest),
            "latest" => return Ok(Self::Latest),
            _ => {}
        }
        if let Ok(ago) = humantime_serde::re::humantime::parse_duration(trimmed) {
            return Ok(Self::Ago(ago));
        }
        let at = DateTime::parse_from_rfc3339(trimmed)
            .map_err(|_| StartAtError::Unrecognised(s.to_owned()))?
            .with_timezone(&Utc);
        if at > Utc::now() {
            return Err(StartAtError::Future(s.to_owned()));
        }
        Ok(Self::At(at))
    }
}

impl std::fmt::Display for StartAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Earliest => f.write_str("earliest"),
            Self::Latest => f.write_str("latest"),
            Self::Ago(d) => write!(f, "{}", humantime_serde::re::humantime::format_duration(*d)),
            Self::At(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

impl StartAt {
    /// The `auto.offset.reset` that goes with it: `earliest` for [`StartAt::Earliest`] (the only
    /// placement it needs), `latest` otherwise (applied only when a look-up fails or a committed
    /// offset is out of range: never a backfill the user did not ask for).
    pub fn offset_reset(&self) -> &'static str {
        match self {
            Self::Earliest => "earliest",
            _ => "latest",
        }
    }

    /// The start position fixed for a collector that started at `started_ms` (milliseconds since
    /// the Unix epoch): a `DURATION` is counted back from then.
    pub fn resolve(&self, started_ms: i64) -> StartPoint {
        match *self {
            Self::Earliest => StartPoint::Beginning,
            Self::Latest => StartPoint::End {
                since_ms: started_ms,
            },
            Self::Ago(ago) => StartPoint::Time(
                started_ms.saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX)),
            ),
            Self::At(at) => StartPoint::Time(at.timestamp_millis()),
        }
    }
}

/// A start position fixed at the collector's start ([`StartAt::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPoint {
    /// The first retained record.
    Beginning,
    /// The end, for partitions of the first assignment; the first record at or after `since_ms`
    /// (the collector's start) for partitions first assigned later.
    End {
        /// When the collector started, in milliseconds since the Unix epoch.
        since_ms: i64,
    },
    /// The first record whose timestamp is at or after this many milliseconds since the Unix
    /// epoch; the end when there is none.
    Time(i64),
}

impl StartPoint {
    /// What a partition without a committed offset is placed at, by the assignment it comes in:
    /// `None` to look up the offset for that time, otherwise the offset itself.
    fn placement(&self, first_assignment: bool) -> Placement {
        match *self {
            Self::Beginning => Placement::Offset(Offset::Beginning),
            Self::End { .. } if first_assignment => Placement::Offset(Offset::End),
            Self::End { since_ms } => Placement::Time(since_ms),
            Self::Time(ms) => Placement::Time(ms),
        }
    }
}

/// Where one assignment's partitions without a committed offset go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// This offset.
    Offset(Offset),
    /// The offset for this time (ms), looked up.
    Time(i64),
}

/// Places the partitions of each assignment that have no committed offset (see the [module](self)
/// docs); owned by the consumer's context.
#[derive(Debug)]
pub struct StartPositions {
    point: StartPoint,
    /// Whether an assignment has been placed already.
    assigned_once: AtomicBool,
}

impl StartPositions {
    /// Places partitions at `point`.
    pub fn new(point: StartPoint) -> Self {
        Self {
            point,
            assigned_once: AtomicBool::new(false),
        }
    }

    /// The consumer context's rebalance callback: places the partitions of an assignment, then
    /// does what librdkafka's default does — `assign`/`unassign` under an eager assignor,
    /// `incremental_assign`/`incremental_unassign` under the cooperative one.
    pub fn rebalance<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.place(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed; dropping the assignment");
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot apply the group's assignment");
        }
    }

    /// Sets, in `tpl`, the start offset of each partition without a committed offset; leaves the
    /// others unset, so they resume at their committed offsets.
    fn place<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, tpl: &mut TopicPartitionList) {
        let first = !self.assigned_once.swap(true, Ordering::Relaxed);
        if self.point == StartPoint::Beginning || tpl.count() == 0 {
            // auto.offset.reset=earliest does exactly this, without a look-up.
            return;
        }
        let committed = match retry("committed offsets", || {
            consumer.committed_offsets(tpl.clone(), LOOKUP_TIMEOUT)
        }) {
            Ok(committed) => committed,
            Err(e) => {
                tracing::warn!(error = %e, partitions = tpl.count(),
                    "cannot read the group's committed offsets; partitions without one start at their end (auto.offset.reset=latest)");
                return;
            }
        };
        let fresh: Vec<(String, i32)> = committed
            .elements()
            .iter()
            .filter(|e| !matches!(e.offset(), Offset::Offset(n) if n >= 0))
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let resuming = tpl.count() - fresh.len();
        if fresh.is_empty() {
            tracing::info!(
                partitions = resuming,
                "assigned partitions resume at their committed offsets"
            );
            return;
        }
        let placed = match self.point.placement(first) {
            Placement::Offset(offset) => fresh.iter().map(|tp| (tp.clone(), offset)).collect(),
            Placement::Time(ms) => match offsets_for_time(consumer, &fresh, ms) {
                Ok(placed) => placed,
                Err(e) => {
                    tracing::warn!(error = %e, partitions = fresh.len(),
                        "cannot look up offsets for the start time; those partitions start at their end (auto.offset.reset=latest)");
                    return;
                }
            },
        };
        for ((topic, partition), offset) in &placed {
            if let Err(e) = tpl.set_partition_offset(topic, *partition, *offset) {
                tracing::warn!(topic, partition, error = %e, "cannot set a start offset");
            }
        }
        tracing::info!(
            resuming,
            starting = fresh.len(),
            start_at = %self.describe(first),
            starts = ?summary(&placed),
            "partitions without a committed offset start at --start-at; the others resume at their committed offsets"
        );
    }

    /// What this assignment's fresh partitions start at, in words.
    fn describe(&self, first_assignment: bool) -> String {
        match self.point.placement(first_assignment) {
            Placement::Offset(Offset::End) => "their end".to_owned(),
            Placement::Offset(o) => format!("{o:?}"),
            Placement::Time(ms) => format!(
                "their first record since {}",
                DateTime::from_timestamp_millis(ms)
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .unwrap_or_else(|| ms.to_string())
            ),
        }
    }
}

/// Tries `lookup` up to [`LOOKUP_TRIES`] times.
fn retry<T>(what: &str, mut lookup: impl FnMut() -> KafkaResult<T>) -> KafkaResult<T> {
    let mut tries = 1;
    loop {
        match lookup() {
            Ok(v) => return Ok(v),
            Err(e) if tries < LOOKUP_TRIES => {
                tracing::debug!(error = %e, tries, "looking up {what} failed; trying again");
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The offset of each partition's first record at or after `ms`, by Kafka's offsets-for-times;
/// its end where there is none (Kafka answers -1).
fn offsets_for_time<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[(String, i32)],
    ms: i64,
) -> KafkaResult<Vec<((String, i32), Offset)>> {
    let mut query = TopicPartitionList::new();
    for (topic, partition) in partitions {
        query.add_partition_offset(topic, *partition, Offset::Offset(ms))?;
    }
    let answer = retry("offsets for a time", || {
        consumer.offsets_for_times(query.clone(), LOOKUP_TIMEOUT)
    })?;
    Ok(answer
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(n) if n >= 0 => Offset::Offset(n),
                _ => Offset::End,
            };
            ((e.topic().to_owned(), e.partition()), offset)
        })
        .collect())
}

/// Per topic, the start offset of each partition placed, for the log.
fn summary(placed: &[((String, i32), Offset)]) -> BTreeMap<&str, BTreeMap<i32, String>> {
    let mut topics: BTreeMap<&str, BTreeMap<i32, String>> = BTreeMap::new();
    for ((topic, partition), offset) in placed {
        let at = match offset {
            Offset::Offset(n) => n.to_string(),
            Offset::End => "end".to_owned(),
            Offset::Beginning => "beginning".to_owned(),
            other => format!("{other:?}"),
        };
        topics.entry(topic).or_default().insert(*partition, at);
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<StartAt, String> {
        s.parse::<StartAt>().map_err(|e| e.to_string())
    }

    #[test]
    fn keywords_parse_whatever_their_case() {
        assert_eq!(parse("earliest"), Ok(StartAt::Earliest));
        assert_eq!(parse("LATEST"), Ok(StartAt::Latest));
        assert_eq!(parse(" latest "), Ok(StartAt::Latest));
    }

    #[test]
    fn a_duration_is_a_time_ago() {
        assert_eq!(parse("1h"), Ok(StartAt::Ago(Duration::from_secs(3600))));
        assert_eq!(parse("1h30m"), Ok(StartAt::Ago(Duration::from_secs(5400))));
        assert_eq!(
            parse("2d"),
            Ok(StartAt::Ago(Duration::from_secs(2 * 86400)))
        );
    }

    #[test]
    fn an_rfc_3339_time_is_taken_in_its_offset() {
        let at = parse("2026-05-01T10:00:00+02:00").unwrap();
        assert_eq!(
            at,
            StartAt::At(
                DateTime::parse_from_rfc3339("2026-05-01T08:00:00Z")
                    .unwrap()
                    .into()
            )
        );
        assert_eq!(at.to_string(), "2026-05-01T08:00:00Z");
    }

    #[test]
    fn bad_input_gets_a_one_line_error_naming_every_accepted_form() {
        for bad in ["", "yesterday", "1 fortnight", "2026-05-01", "-1h", "12"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(
                e,
                format!("`{bad}` is not earliest, latest, a duration such as 1h or 30m, or an RFC 3339 time such as 2026-05-01T08:00:00Z")
            );
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn a_time_in_the_future_is_refused() {
        let later = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        assert_eq!(parse(&later), Err(format!("`{later}` is in the future")));
    }

    #[test]
    fn a_duration_counts_back_from_the_collectors_start() {
        let started = 1_800_000_000_000;
        assert_eq!(
            StartAt::Ago(Duration::from_secs(3600)).resolve(started),
            StartPoint::Time(started - 3_600_000)
        );
        assert_eq!(
            StartAt::At(DateTime::from_timestamp_millis(1_700_000_000_000).unwrap())
                .resolve(started),
            StartPoint::Time(1_700_000_000_000)
        );
        assert_eq!(StartAt::Earliest.resolve(started), StartPoint::Beginning);
    }

    #[test]
    fn latest_is_the_end_at_the_first_assignment_and_the_start_time_later() {
        let point = StartAt::Latest.resolve(42);
        assert_eq!(point.placement(true), Placement::Offset(Offset::End));
        assert_eq!(point.placement(false), Placement::Time(42));
    }

    #[test]
    fn only_earliest_lets_librdkafka_reset_to_the_beginning() {
        assert_eq!(StartAt::Earliest.offset_reset(), "earliest");
        for other in [
            StartAt::Latest,
            StartAt::Ago(Duration::from_secs(60)),
            StartAt::At(Utc::now()),
        ] {
            assert_eq!(other.offset_reset(), "latest");
        }
    }

    #[test]
    fn the_default_is_earliest() {
        assert_eq!(StartAt::default(), StartAt::Earliest);
    }
}
