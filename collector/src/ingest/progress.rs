//! Backfill progress: how many records the collector is behind the ends of its partitions, per
//! topic, and when it will catch up at its recent pace.
//!
//! Fed by librdkafka's statistics (every 5 s, the same callback as the per-partition
//! `consumer_lag` gauges): for each partition assigned to the collector, *records behind* is the
//! partition's end (its last stable offset, or high watermark) minus the collector's position
//! (the offset after the last record handed to the ingest loop). The *catch-up rate* is how fast
//! the total falls (consumption minus production) over the last minute, and the estimate is the
//! total divided by it.
//!
//! The collector is *catching up* while it is more than [`MIN_BEHIND`] records and more than
//! [`BEHIND_SECONDS`] of its own consumption rate behind: a collector that keeps up is always a
//! fetch or two behind, which is not a backfill.
//!
//! Shown in the log ([`log_line`], every [`LOG_EVERY`] while catching up, and once when caught up),
//! on `/metrics` (`records_behind` per topic, `catching_up`, `catch_up_seconds`) and at
//! `GET /api/v1/ingest/progress` ([`IngestProgress`]), which the viewer's banner reads.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::statistics::Statistics;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::held_back::{HeldBack, HeldBackState};
use crate::metrics::{Metrics, TopicLabel};

/// Below this many records behind, the collector is never said to be catching up.
pub const MIN_BEHIND: i64 = 1000;
/// Nor while it is at most this many seconds of its consumption rate behind.
pub const BEHIND_SECONDS: f64 = 5.0;
/// The window the rates are measured over.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// How often the log says how the catching up goes.
pub const LOG_EVERY: Duration = Duration::from_secs(30);

/// One assigned partition as the client's statistics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPosition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The offset after the last record handed to the ingest loop.
    pub position: i64,
    /// The partition's end: its last stable offset (or high watermark).
    pub end: i64,
}

impl PartitionPosition {
    /// The assigned partitions of a statistics report whose position and end are known.
    pub fn from_statistics(statistics: &Statistics) -> Vec<Self> {
        let mut partitions = Vec::new();
        for (topic, t) in &statistics.topics {
            for (&partition, p) in &t.partitions {
                // Partitions the client merely knows of, or no longer fetches (revoked), are
                // `none` or `stopped`; an assigned one is being placed or fetched.
                if partition < 0 || matches!(p.fetch_state.as_str(), "none" | "stopped") {
                    continue;
                }
                // Before the first record of a partition is handed over, its fetch position.
                let position = [p.app_offset, p.next_offset, p.committed_offset]
                    .into_iter()
                    .find(|&o| o >= 0);
                let end = [p.ls_offset, p.hi_offset].into_iter().find(|&o| o >= 0);
                if let (Some(position), Some(end)) = (position, end) {
                    partitions.push(Self {
                        topic: topic.clone(),
                        partition,
                        position,
                        end,
                    });
                }
            }
        }
        partitions
    }

    /// Records between its position and its end.
    pub fn behind(&self) -> i64 {
        (self.end - self.position).max(0)
    }
}

/// Records behind on one topic.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TopicBehind {
    /// The topic.
    pub topic: String,
    /// Records between the collector's positions and the ends of the topic's partitions assigned
    /// to it.
    pub records_behind: i64,
}

/// How far behind the collector's consumption is (`GET /api/v1/ingest/progress`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IngestProgress {
    /// Whether this process consumes a cluster (`collect`); `serve` does not, and answers zeros.
    pub consuming: bool,
    /// When the client's statistics last reported (every 5 s); none before the first report.
    #[serde(
        rename = "as_of",
        serialize_with = "crate::clock::serialize_rfc3339_opt"
    )]
    #[schema(value_type = Option<String>, required)]
    pub as_of_us: Option<i64>,
    /// Whether it is catching up: more than 1000 records and more than 5 s of its consumption
    /// rate behind.
    pub catching_up: bool,
    /// Records behind over every partition assigned to it.
    pub records_behind: i64,
    /// Records behind per topic, most behind first (topics with none left out).
    pub topics: Vec<TopicBehind>,
    /// Records consumed per second over the last minute; none before two reports.
    #[schema(required)]
    pub consume_rate: Option<f64>,
    /// How fast records behind fall, per second, over the last minute (consumption minus
    /// production; negative while producers outpace it); none before two reports.
    #[schema(required)]
    pub catch_up_rate: Option<f64>,
    /// Catching up only: seconds until it has caught up at the catch-up rate; none while the
    /// rate is not positive or not known yet.
    #[schema(required)]
    pub eta_seconds: Option<f64>,
    /// Set while consumption is held back because the store refuses writes (a full disk, a
    /// database out of reach): why, since when, how many writes failed.
    #[schema(required)]
    pub held_back: Option<HeldBack>,
}

impl IngestProgress {
    /// The answer of a process that consumes no cluster.
    pub fn not_consuming() -> Self {
        Self {
            consuming: false,
            as_of_us: None,
            catching_up: false,
            records_behind: 0,
            topics: Vec::new(),
            consume_rate: None,
            catch_up_rate: None,
            eta_seconds: None,
            held_back: None,
        }
    }
}

/// One statistics report, kept for the rates.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    behind: i64,
    /// Records consumed since the previous report.
    consumed: i64,
}

/// What the tracker knows.
#[derive(Debug, Default)]
struct Tracker {
    /// The latest report's partitions, by topic and partition.
    partitions: BTreeMap<(String, i32), PartitionPosition>,
    samples: VecDeque<Sample>,
    as_of_us: Option<i64>,
}

impl Tracker {
    fn observe(&mut self, at: Instant, wall_us: i64, partitions: Vec<PartitionPosition>) {
        let mut consumed = 0;
        let mut next = BTreeMap::new();
        for p in partitions {
            let key = (p.topic.clone(), p.partition);
            if let Some(before) = self.partitions.get(&key) {
                consumed += (p.position - before.position).max(0);
            }
            next.insert(key, p);
        }
        self.partitions = next;
        let behind = self
            .partitions
            .values()
            .map(PartitionPosition::behind)
            .sum();
        self.samples.push_back(Sample {
            at,
            behind,
            consumed,
        });
        // Keep one sample at or before the window's start, to measure over the whole window.
        while self.samples.len() > 2 && at.duration_since(self.samples[1].at) >= RATE_WINDOW {
            self.samples.pop_front();
        }
        self.as_of_us = Some(wall_us);
    }

    fn progress(&self) -> IngestProgress {
        let mut topics: HashMap<&str, i64> = HashMap::new();
        for p in self.partitions.values() {
            *topics.entry(&p.topic).or_default() += p.behind();
        }
        let mut topics: Vec<TopicBehind> = topics
            .into_iter()
            .filter(|&(_, behind)| behind > 0)
            .map(|(topic, records_behind)| TopicBehind {
                topic: topic.to_owned(),
                records_behind,
            })
            .collect();
        topics.sort_by(|a, b| {
            b.records_behind
                .cmp(&a.records_behind)
                .then_with(|| a.topic.cmp(&b.topic))
        });
        let records_behind = topics.iter().map(|t| t.records_behind).sum();
        let (consume_rate, catch_up_rate) = match (self.samples.front(), self.samples.back()) {
            (Some(first), Some(last)) if last.at > first.at => {
                let seconds = last.at.duration_since(first.at).as_secs_f64();
                let consumed: i64 = self.samples.iter().skip(1).map(|s| s.consumed).sum();
                (
                    Some(consumed as f64 / seconds),
                    Some((first.behind - last.behind) as f64 / seconds),
                )
            }
            _ => (None, None),
        };
        let catching_up = records_behind > MIN_BEHIND
            && consume_rate.is_none_or(|rate| records_behind as f64 > rate * BEHIND_SECONDS);
        let eta_seconds = catch_up_rate
            .filter(|&rate| catching_up && rate > 0.0)
            .map(|rate| records_behind as f64 / rate);
        IngestProgress {
            consuming: true,
            as_of_us: self.as_of_us,
            catching_up,
            records_behind,
            topics,
            consume_rate,
            catch_up_rate,
            eta_seconds,
            held_back: None,
        }
    }
}

/// Shared backfill progress: written by the consumer's statistics callback, read by the log,
/// `/metrics` and the API. The default consumes nothing ([`IngestProgress::not_consuming`]).
#[derive(Debug, Clone, Default)]
pub struct ProgressHandle {
    tracker: Option<Arc<Mutex<Tracker>>>,
    held_back: HeldBackState,
}

impl ProgressHandle {
    /// Progress of a collector that consumes a cluster, nothing reported yet.
    pub fn consuming() -> Self {
        Self {
            tracker: Some(Arc::default()),
            held_back: HeldBackState::default(),
        }
    }

    /// Takes one statistics report's assigned partitions, measured at `at` (`wall_us`: the same
    /// moment in µs since the Unix epoch), and updates the gauges of `metrics`.
    pub fn observe(
        &self,
        at: Instant,
        wall_us: i64,
        partitions: Vec<PartitionPosition>,
        metrics: &Metrics,
    ) {
        let Some(tracker) = &self.tracker else { return };
        let (progress, per_topic, gone) = {
            let mut tracker = tracker.lock().unwrap_or_else(|e| e.into_inner());
            let before: BTreeSet<String> =
                tracker.partitions.keys().map(|(t, _)| t.clone()).collect();
            tracker.observe(at, wall_us, partitions);
            // Every assigned topic, those with nothing behind included.
            let mut per_topic: BTreeMap<String, i64> = BTreeMap::new();
            for p in tracker.partitions.values() {
                *per_topic.entry(p.topic.clone()).or_default() += p.behind();
            }
            let gone: Vec<String> = before
                .into_iter()
                .filter(|t| !per_topic.contains_key(t))
                .collect();
            (tracker.progress(), per_topic, gone)
        };
        for topic in gone {
            metrics.records_behind.remove(&TopicLabel { topic });
        }
        for (topic, behind) in per_topic {
            metrics
                .records_behind
                .get_or_create(&TopicLabel { topic })
                .set(behind);
        }
        metrics.catching_up.set(i64::from(progress.catching_up));
        metrics.catch_up_seconds.set(match progress {
            IngestProgress {
                catching_up: false, ..
            } => 0.0,
            IngestProgress {
                eta_seconds: Some(eta),
                ..
            } => eta,
            _ => f64::INFINITY,
        });
    }

    /// The progress as of the latest report, and whether consumption is held back now.
    pub fn progress(&self) -> IngestProgress {
        let mut progress = match &self.tracker {
            Some(tracker) => tracker.lock().unwrap_or_else(|e| e.into_inner()).progress(),
            None => IngestProgress::not_consuming(),
        };
        progress.held_back = self.held_back.get();
        progress
    }

    /// Whether, and why, the writer holds consumption back (see [`super::held_back`]).
    pub fn held_back(&self) -> &HeldBackState {
        &self.held_back
    }

    /// Logs [`log_line`] every [`LOG_EVERY`] while catching up, and once when caught up, until
    /// `cancel` fires.
    pub async fn log(self, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval(LOG_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        let mut was_catching_up = false;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let progress = self.progress();
            if progress.catching_up {
                tracing::info!(
                    records_behind = progress.records_behind,
                    eta_seconds = progress.eta_seconds,
                    "{}",
                    log_line(&progress)
                );
            } else if was_catching_up {
                tracing::info!(
                    records_behind = progress.records_behind,
                    "caught up: {} behind",
                    count(progress.records_behind)
                );
            }
            was_catching_up = progress.catching_up;
        }
    }
}

/// Topics named in a log line, at most; the rest are counted.
const TOPICS_LOGGED: usize = 5;

/// "catching up: orders 1.2 M behind, payments 30 k behind; ≈ 4 min at 25 k records/s".
pub fn log_line(progress: &IngestProgress) -> String {
    let mut topics: Vec<String> = progress
        .topics
        .iter()
        .take(TOPICS_LOGGED)
        .map(|t| format!("{} {} behind", t.topic, count(t.records_behind)))
        .collect();
    if progress.topics.len() > TOPICS_LOGGED {
        let rest: i64 = progress.topics[TOPICS_LOGGED..]
            .iter()
            .map(|t| t.records_behind)
            .sum();
        topics.push(format!(
            "{} more topics {} behind",
            progress.topics.len() - TOPICS_LOGGED,
            count(rest)
        ));
    }
    let pace = match (progress.eta_seconds, progress.catch_up_rate) {
        (Some(eta), Some(rate)) => format!(
            "≈ {} at {} records/s",
            duration(eta),
            count(rate.round() as i64)
        ),
        (None, Some(rate)) => format!(
            "not gaining: {} records/s net, producers write as fast as it reads",
            count(rate.round() as i64)
        ),
        _ => "pace not known yet".to_owned(),
    };
    format!("catching up: {}; {pace}", topics.join(", "))
}

/// A count in words: 950, 30 k, 1.2 M, 3.4 G.
pub fn count(n: i64) -> String {
    let abs = n.unsigned_abs() as f64;
    let sign = if n < 0 { "-" } else { "" };
    let (value, unit) = if abs >= 1e9 {
        (abs / 1e9, " G")
    } else if abs >= 1e6 {
        (abs / 1e6, " M")
    } else if abs >= 1e3 {
        (abs / 1e3, " k")
    } else {
        return n.to_string();
    };
    if value < 10.0 {
        format!("{sign}{value:.1}{unit}")
    } else {
        format!("{sign}{value:.0}{unit}")
    }
}

/// A duration in words: 45 s, 4 min, 2.5 h, 3 d.
pub fn duration(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{:.0} s", seconds.max(1.0))
    } else if seconds < 90.0 * 60.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 48.0 * 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.0} d", seconds / 86400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(topic: &str, partition: i32, position: i64, end: i64) -> PartitionPosition {
        PartitionPosition {
            topic: topic.into(),
            partition,
            position,
            end,
        }
    }

    #[test]
    fn records_behind_are_summed_per_topic_most_behind_first() {
        let mut t = Tracker::default();
        t.observe(
            Instant::now(),
            1,
            vec![
                at("payments", 0, 0, 30_000),
                at("orders", 0, 100, 600_100),
                at("orders", 1, 0, 600_000),
                at("quiet", 0, 5, 5),
            ],
        );
        let p = t.progress();
        assert_eq!(p.records_behind, 1_230_000);
        assert_eq!(
            p.topics,
            [
                TopicBehind {
                    topic: "orders".into(),
                    records_behind: 1_200_000
                },
                TopicBehind {
                    topic: "payments".into(),
                    records_behind: 30_000
                }
            ]
        );
        assert!(p.catching_up, "far behind, pace unknown yet");
        assert_eq!((p.consume_rate, p.eta_seconds), (None, None));
    }

    #[test]
    fn the_estimate_is_records_behind_over_the_net_catch_up_rate() {
        let start = Instant::now();
        let mut t = Tracker::default();
        t.observe(start, 1, vec![at("orders", 0, 0, 1_000_000)]);
        // 10 s later: 300 k consumed while producers added 50 k.
        t.observe(
            start + Duration::from_secs(10),
            2,
            vec![at("orders", 0, 300_000, 1_050_000)],
        );
        let p = t.progress();
        assert_eq!(p.records_behind, 750_000);
        assert_eq!(p.consume_rate, Some(30_000.0));
        assert_eq!(p.catch_up_rate, Some(25_000.0));
        assert_eq!(p.eta_seconds, Some(30.0));
        assert!(p.catching_up);
    }

    #[test]
    fn a_collector_keeping_up_is_not_catching_up() {
        let start = Instant::now();
        let mut t = Tracker::default();
        t.observe(start, 1, vec![at("orders", 0, 0, 20_000)]);
        // Reading 50 k/s, a fetch (20 k, under 5 s of it) behind.
        t.observe(
            start + Duration::from_secs(5),
            2,
            vec![at("orders", 0, 250_000, 270_000)],
        );
        let p = t.progress();
        assert_eq!(p.records_behind, 20_000);
        assert!(!p.catching_up);
        assert_eq!(p.eta_seconds, None);
        let mut small = Tracker::default();
        small.observe(start, 1, vec![at("orders", 0, 0, MIN_BEHIND)]);
        assert!(!small.progress().catching_up);
    }

    #[test]
    fn falling_further_behind_has_no_estimate() {
        let start = Instant::now();
        let mut t = Tracker::default();
        t.observe(start, 1, vec![at("orders", 0, 0, 100_000)]);
        t.observe(
            start + Duration::from_secs(5),
            2,
            vec![at("orders", 0, 1_000, 200_000)],
        );
        let p = t.progress();
        assert!(p.catching_up);
        assert_eq!(p.catch_up_rate, Some(-19_800.0));
        assert_eq!(p.eta_seconds, None);
        assert!(log_line(&p).contains("not gaining"), "{}", log_line(&p));
    }

    #[test]
    fn rates_are_measured_over_the_last_minute() {
        let start = Instant::now();
        let mut t = Tracker::default();
        // Fast at first, then 1 000 records per 5 s.
        t.observe(start, 1, vec![at("orders", 0, 0, 1_000_000)]);
        t.observe(
            start + Duration::from_secs(5),
            2,
            vec![at("orders", 0, 500_000, 1_000_000)],
        );
        for i in 2..=20 {
            let position = 500_000 + (i - 1) * 1_000;
            t.observe(
                start + Duration::from_secs(5 * i as u64),
                3,
                vec![at("orders", 0, position, 1_000_000)],
            );
        }
        let p = t.progress();
        assert_eq!(p.consume_rate, Some(200.0));
    }

    #[test]
    fn a_partition_no_longer_assigned_no_longer_counts() {
        let mut t = Tracker::default();
        let now = Instant::now();
        t.observe(now, 1, vec![at("a", 0, 0, 5000), at("b", 0, 0, 7000)]);
        t.observe(now + Duration::from_secs(5), 2, vec![at("b", 0, 0, 7000)]);
        assert_eq!(t.progress().records_behind, 7000);
        assert_eq!(t.progress().topics.len(), 1);
    }

    #[test]
    fn the_log_line_names_topics_counts_and_the_estimate() {
        let progress = IngestProgress {
            consuming: true,
            as_of_us: Some(1),
            catching_up: true,
            records_behind: 1_230_000,
            topics: vec![
                TopicBehind {
                    topic: "orders".into(),
                    records_behind: 1_200_000,
                },
                TopicBehind {
                    topic: "payments".into(),
                    records_behind: 30_000,
                },
            ],
            consume_rate: Some(30_000.0),
            catch_up_rate: Some(25_000.0),
            eta_seconds: Some(240.0),
            held_back: None,
        };
        assert_eq!(
            log_line(&progress),
            "catching up: orders 1.2 M behind, payments 30 k behind; ≈ 4 min at 25 k records/s"
        );
    }

    #[test]
    fn counts_and_durations_read_as_words() {
        assert_eq!(count(950), "950");
        assert_eq!(count(30_000), "30 k");
        assert_eq!(count(1_234_567), "1.2 M");
        assert_eq!(count(3_400_000_000), "3.4 G");
        assert_eq!(duration(45.0), "45 s");
        assert_eq!(duration(240.0), "4 min");
        assert_eq!(duration(9000.0), "2.5 h");
        assert_eq!(duration(3.0 * 86400.0), "3 d");
    }

    #[test]
    fn a_process_that_consumes_nothing_answers_zeros() {
        let p = ProgressHandle::default().progress();
        assert_eq!(p, IngestProgress::not_consuming());
        assert!(!p.consuming);
    }
}
