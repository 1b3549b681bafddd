//! The collector's Prometheus metrics, served as text on `/metrics`.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label: a topic.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// Topic name.
    pub topic: String,
}

/// Label: a problem kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Problem kind (see `HeaderProblem::kind` and the collector's own kinds).
    pub kind: String,
}

/// Label: a topic partition.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: String,
}

/// Label: a consumer group's topic partition.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupPartitionLabel {
    /// Consumer group.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: String,
}

/// Label: a kind of request to the cluster.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// `metadata`, `watermark`, `list_groups` or `offset_fetch`.
    pub request: String,
}

/// Label: a flow status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// `complete`, `in_progress`, `stalled` or `failed`.
    pub status: String,
}

/// Label: where stalled or failed flows stopped.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoppedLabel {
    /// `stalled` or `failed`.
    pub status: String,
    /// The step after which they stopped, `SERVICE/TYPE`.
    pub after: String,
    /// The reaction waited for (`SERVICE`, `SERVICE/TYPE`; empty for failed flows).
    pub waiting_for: String,
}

/// Label: what became of received spans.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpanOutcomeLabel {
    /// `received`, `kept` (stored), `dropped` (their trace touched no messaging span in time),
    /// `rejected` (malformed ids) or `refused` (the store was busy: the sender was told to retry).
    pub outcome: String,
}

/// Label: an OTLP request's protocol and answer.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OtlpRequestLabel {
    /// `grpc` or `http`.
    pub protocol: String,
    /// `ok`, `partial` (some spans rejected), `invalid` (malformed request), `unavailable`
    /// (busy: retry) or `error` (the store failed).
    pub outcome: String,
}

/// Every metric the collector exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Records read from Kafka, per topic.
    pub records_consumed: Family<TopicLabel, Counter>,
    /// Records of topics `--include`/`--exclude` leave out that were read all the same (only while
    /// the subscription catches up with the topic list), per topic (offsets still advance).
    pub records_excluded: Family<TopicLabel, Counter>,
    /// Deliveries stored for the first time, per topic.
    pub events_ingested: Family<TopicLabel, Counter>,
    /// Records already stored, delivered again (restart, rebalance): nothing written.
    pub redelivered: Counter,
    /// Event ids stored before at another offset, per topic.
    pub duplicate_publishes: Family<TopicLabel, Counter>,
    /// Dead-letter copies stored (each fails the flow of the event it is a copy of).
    pub dead_letters: Counter,
    /// Problems found in records, per kind.
    pub problems: Family<KindLabel, Counter>,
    /// Records per committed batch.
    pub batch_size: Histogram,
    /// Seconds to write a batch, retries included.
    pub batch_write_seconds: Histogram,
    /// Failed store writes (each is retried), by [`crate::store::FailureKind`] (`disk_full`,
    /// `read_only`, `unavailable`, `other`).
    pub store_errors: Family<ReasonLabel, Counter>,
    /// Errors from the Kafka client.
    pub kafka_errors: Counter,
    /// Refusals by the cluster per kind (`credentials`, `untrusted_certificate`, `topic_acl`, …;
    /// [`crate::cluster::RefusalKind::label`]): each is also one log line saying what to check.
    pub kafka_refusals: Family<KindLabel, Counter>,
    /// Redactions at ingest per kind (`masked`, `hashed`, `dropped`: pointers reached;
    /// `header`, `key`: values; `payload`, `record_key`: records), see [`crate::redact`].
    pub redactions: Family<KindLabel, Counter>,
    /// 1 while consumption is held back because the store is failing.
    pub paused: Gauge,
    /// Topics subscribed to because `--include`/`--exclude` let them through (set only with a filter).
    pub topics_subscribed: Gauge,
    /// Topics of the cluster `--include`/`--exclude` leave out, never fetched (set only with a filter).
    pub topics_left_out: Gauge,
    /// Consumer lag per partition, from the client's statistics.
    pub consumer_lag: Family<PartitionLabel, Gauge>,
    /// Records between the collector's positions and the ends of the partitions assigned to it,
    /// per topic (the sum of its partitions' lag; see `ingest::progress`).
    pub records_behind: Family<TopicLabel, Gauge>,
    /// 1 while the collector is catching up (a backfill): more than 1000 records and more than
    /// 5 s of its consumption rate behind.
    pub catching_up: Gauge,
    /// Seconds until it has caught up at its recent net rate: 0 when not catching up, +Inf while
    /// catching up without gaining (or before the rate is known).
    pub catch_up_seconds: Gauge<f64, AtomicU64>,
    /// Offsets never delivered between two consecutive records of a partition, per topic:
    /// transaction markers and compaction explain some; anything else is a broker fault.
    pub offsets_skipped: Family<TopicLabel, Counter>,
    /// Tracked flows per status (flows with an event in the last hour).
    pub flows: Family<StatusLabel, Gauge>,
    /// Stalled and failed flows per step they stopped after and reaction waited for.
    pub stopped_flows: Family<StoppedLabel, Gauge>,
    /// Batches of durable events flow health fell behind on.
    pub health_lagged_batches: Counter,
    /// Records each consumer group has still to read per partition (high watermark minus
    /// committed offset), from the consumer-group polls.
    pub consumer_group_lag: Family<GroupPartitionLabel, Gauge>,
    /// That lag in seconds at the group's recent commit rate (absent while it does not move).
    pub consumer_group_lag_seconds: Family<GroupPartitionLabel, Gauge<f64, AtomicU64>>,
    /// Failed requests of the consumer-group polls, per kind of request.
    pub consumer_group_poll_errors: Family<RequestLabel, Counter>,
    /// OTLP spans by what became of them.
    pub otlp_spans: Family<SpanOutcomeLabel, Counter>,
    /// OTLP export requests by protocol and answer.
    pub otlp_requests: Family<OtlpRequestLabel, Counter>,
    /// Spans held in memory until their trace shows a messaging span (or they expire).
    pub otlp_held_spans: Gauge,
    /// Spans deleted for being older than the span retention.
    pub spans_pruned: Counter,
    /// HTTP connections open.
    pub http_connections: Gauge,
    /// Live-feed streams open.
    pub http_streams: Gauge,
    /// Connections and requests refused or cut at a cap, by reason (see [`ReasonLabel`]).
    pub http_shed: Family<ReasonLabel, Counter>,
    /// Bytes the lineage store takes, as retention last measured it.
    pub store_size_bytes: Gauge,
    /// Time of the oldest event kept, in seconds since the epoch, as retention last read it (0
    /// while the store is empty).
    pub oldest_event_seconds: Gauge,
    /// Events deleted by retention (older than `--retention`, or the oldest past
    /// `--max-store-size`).
    pub retention_deleted_events: Counter,
}

/// Label: why something was refused or failed.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// For the HTTP server: `connections`, `connections_per_client`, `streams`,
    /// `streams_per_client`, `queries` (no turn in time) or `query_budget` (cut); for the store:
    /// a [`crate::store::FailureKind`].
    pub reason: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut m = Self {
            registry: Mutex::new(Registry::with_prefix("choreoscope")),
            records_consumed: Family::default(),
            records_excluded: Family::default(),
            events_ingested: Family::default(),
            redelivered: Counter::default(),
            duplicate_publishes: Family::default(),
            dead_letters: Counter::default(),
            problems: Family::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            batch_write_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            store_errors: Family::default(),
            kafka_errors: Counter::default(),
            kafka_refusals: Family::default(),
            redactions: Family::default(),
            paused: Gauge::default(),
            topics_subscribed: Gauge::default(),
            topics_left_out: Gauge::default(),
            consumer_lag: Family::default(),
            records_behind: Family::default(),
            catching_up: Gauge::default(),
            catch_up_seconds: Gauge::default(),
            offsets_skipped: Family::default(),
            flows: Family::default(),
            stopped_flows: Family::default(),
            health_lagged_batches: Counter::default(),
            consumer_group_lag: Family::default(),
            consumer_group_lag_seconds: Family::default(),
            consumer_group_poll_errors: Family::default(),
            otlp_spans: Family::default(),
            otlp_requests: Family::default(),
            otlp_held_spans: Gauge::default(),
            spans_pruned: Counter::default(),
            http_connections: Gauge::default(),
            http_streams: Gauge::default(),
            http_shed: Family::default(),
            store_size_bytes: Gauge::default(),
            oldest_event_seconds: Gauge::default(),
            retention_deleted_events: Counter::default(),
        };
        let registry = m.registry.get_mut().expect("fresh mutex");
        registry.register(
            "records_consumed",
            "Records read from Kafka",
            m.records_consumed.clone(),
        );
        registry.register(
            "records_excluded",
            "Records of topics left out by --include/--exclude, read while the subscription caught up",
            m.records_excluded.clone(),
        );
        registry.register(
            "events_ingested",
            "Deliveries stored for the first time",
            m.events_ingested.clone(),
        );
        registry.register(
            "redelivered",
            "Records already stored, delivered again",
            m.redelivered.clone(),
        );
        registry.register(
            "duplicate_publishes",
            "Event ids published again at another offset",
            m.duplicate_publishes.clone(),
        );
        registry.register(
            "dead_letters",
            "Dead-letter copies stored, each failing the flow of the event it is a copy of",
            m.dead_letters.clone(),
        );
        registry.register(
            "problems",
            "Problems found while interpreting records",
            m.problems.clone(),
        );
        registry.register(
            "batch_size",
            "Records per committed batch",
            m.batch_size.clone(),
        );
        registry.register(
            "batch_write_seconds",
            "Seconds to write a batch, retries included",
            m.batch_write_seconds.clone(),
        );
        registry.register(
            "store_errors",
            "Failed store writes (retried), by reason: disk_full, read_only, unavailable, other",
            m.store_errors.clone(),
        );
        registry.register(
            "kafka_errors",
            "Errors from the Kafka client",
            m.kafka_errors.clone(),
        );
        registry.register(
            "kafka_refusals",
            "Refusals by the cluster (credentials, certificate, ACL) per kind",
            m.kafka_refusals.clone(),
        );
        registry.register(
            "redactions",
            "Values redacted at ingest per kind (masked, hashed, dropped, header, key, payload, record_key)",
            m.redactions.clone(),
        );
        registry.register(
            "paused",
            "1 while consumption is held back because the store is failing",
            m.paused.clone(),
        );
        registry.register(
            "topics_subscribed",
            "Topics subscribed to because --include/--exclude let them through",
            m.topics_subscribed.clone(),
        );
        registry.register(
            "topics_left_out",
            "Topics of the cluster left out by --include/--exclude, never fetched",
            m.topics_left_out.clone(),
        );
        registry.register(
            "consumer_lag",
            "Consumer lag per partition",
            m.consumer_lag.clone(),
        );
        registry.register(
            "records_behind",
            "Records between the collector's positions and the ends of its assigned partitions, per topic",
            m.records_behind.clone(),
        );
        registry.register(
            "catching_up",
            "1 while the collector is catching up on a backlog (more than 1000 records and 5 s of its consumption behind)",
            m.catching_up.clone(),
        );
        registry.register(
            "catch_up_seconds",
            "Estimated seconds until the collector has caught up (0 when not catching up, +Inf while not gaining)",
            m.catch_up_seconds.clone(),
        );
        registry.register(
            "offsets_skipped",
            "Offsets never delivered between consecutive records of a partition (transaction markers, compaction, or a broker fault)",
            m.offsets_skipped.clone(),
        );
        registry.register(
            "flows",
            "Tracked flows (an event in the last hour) per status",
            m.flows.clone(),
        );
        registry.register(
            "stopped_flows",
            "Stalled and failed flows per step they stopped after and reaction waited for",
            m.stopped_flows.clone(),
        );
        registry.register(
            "health_lagged_batches",
            "Batches of durable events flow health fell behind on",
            m.health_lagged_batches.clone(),
        );
        registry.register(
            "consumer_group_lag",
            "Records a consumer group has still to read per partition (high watermark minus committed offset)",
            m.consumer_group_lag.clone(),
        );
        registry.register(
            "consumer_group_lag_seconds",
            "Consumer group lag in seconds at the group's recent commit rate",
            m.consumer_group_lag_seconds.clone(),
        );
        registry.register(
            "consumer_group_poll_errors",
            "Failed requests of the consumer-group polls",
            m.consumer_group_poll_errors.clone(),
        );
        registry.register(
            "otlp_spans",
            "OTLP spans received, kept, dropped (no messaging span in their trace), rejected (malformed) or refused (busy)",
            m.otlp_spans.clone(),
        );
        registry.register(
            "otlp_requests",
            "OTLP export requests per protocol and answer",
            m.otlp_requests.clone(),
        );
        registry.register(
            "otlp_held_spans",
            "Spans held until their trace shows a messaging span",
            m.otlp_held_spans.clone(),
        );
        registry.register(
            "spans_pruned",
            "Spans deleted for being older than the span retention",
            m.spans_pruned.clone(),
        );
        registry.register(
            "http_connections",
            "HTTP connections open",
            m.http_connections.clone(),
        );
        registry.register(
            "http_streams",
            "Live-feed streams open",
            m.http_streams.clone(),
        );
        registry.register(
            "http_shed",
            "HTTP connections and requests refused or cut at a cap, by reason",
            m.http_shed.clone(),
        );
        registry.register(
            "store_size_bytes",
            "Bytes the lineage store takes (SQLite: pages in use; PostgreSQL: total relation size of its tables), measured by retention",
            m.store_size_bytes.clone(),
        );
        registry.register(
            "oldest_event_seconds",
            "Time of the oldest event kept, seconds since the epoch, read by retention",
            m.oldest_event_seconds.clone(),
        );
        registry.register(
            "retention_deleted_events",
            "Events deleted by retention (--retention, --max-store-size)",
            m.retention_deleted_events.clone(),
        );
        m
    }

    /// Counts one connection or request refused or cut for `reason` (see [`ReasonLabel`]).
    pub fn count_shed(&self, reason: &str) {
        self.http_shed
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts `n` spans under `outcome` (see [`SpanOutcomeLabel`]).
    pub fn count_spans(&self, outcome: &str, n: usize) {
        if n > 0 {
            self.otlp_spans
                .get_or_create(&SpanOutcomeLabel {
                    outcome: outcome.to_owned(),
                })
                .inc_by(n as u64);
        }
    }

    /// Counts one OTLP request (see [`OtlpRequestLabel`]).
    pub fn count_otlp_request(&self, protocol: &str, outcome: &str) {
        self.otlp_requests
            .get_or_create(&OtlpRequestLabel {
                protocol: protocol.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_exposition_names_every_family_with_its_labels() {
        let m = Metrics::new();
        m.events_ingested
            .get_or_create(&TopicLabel {
                topic: "orders".into(),
            })
            .inc_by(3);
        m.problems
            .get_or_create(&KindLabel {
                kind: "invalid_traceparent".into(),
            })
            .inc();
        m.consumer_lag
            .get_or_create(&PartitionLabel {
                topic: "orders".into(),
                partition: "0".into(),
            })
            .set(7);
        let text = m.encode();
        assert!(
            text.contains("choreoscope_events_ingested_total{topic=\"orders\"} 3"),
            "{text}"
        );
        assert!(text.contains("choreoscope_problems_total{kind=\"invalid_traceparent\"} 1"));
        assert!(text.contains("choreoscope_consumer_lag{topic=\"orders\",partition=\"0\"} 7"));
        assert!(text.contains("# TYPE choreoscope_batch_write_seconds histogram"));
    }
}
