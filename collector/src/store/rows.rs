//! The rows the store answers with, and the filter of a search: what every backend returns, so
//! the layers above never see a database type.

/// Sorts events by (time, id), the order of every list the store returns.
pub(crate) fn in_time_order(events: &mut [SummaryRow]) {
    events.sort_by(|a, b| (a.time_us, &a.event_id).cmp(&(b.time_us, &b.event_id)));
}

/// Sorts business keys by (event, name, value), the order of every key list the store returns.
pub(crate) fn in_key_order(keys: &mut [KeyRow]) {
    keys.sort_by(|a, b| (&a.event_id, &a.name, &a.value).cmp(&(&b.event_id, &b.name, &b.value)));
}

/// Sorts dead letters by (time, position), the order of every dead-letter list the store returns.
pub(crate) fn in_dead_letter_order(rows: &mut [DeadLetterRow]) {
    rows.sort_by(|a, b| {
        (a.time_us, &a.topic, a.kafka_partition, a.kafka_offset).cmp(&(
            b.time_us,
            &b.topic,
            b.kafka_partition,
            b.kafka_offset,
        ))
    });
}

/// What lineage and list queries need of an event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SummaryRow {
    /// Event id.
    pub event_id: String,
    /// `ce_type`.
    pub event_type: Option<String>,
    /// `ce_source`.
    pub source: Option<String>,
    /// Topic of first delivery.
    pub topic: String,
    /// Partition of first delivery.
    pub kafka_partition: i32,
    /// Offset of first delivery.
    pub kafka_offset: i64,
    /// Best-known time, µs since the epoch.
    pub time_us: i64,
    /// Cause's id.
    pub causation_id: Option<String>,
    /// Conversation id.
    pub correlation_id: Option<String>,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Producing span id.
    pub span_id: Option<String>,
    /// `ce_subject`.
    pub subject: Option<String>,
    /// Number of problems found when reading it.
    pub problem_count: i64,
    /// Number of distinct deliveries (more than one: duplicate publish).
    pub delivery_count: i64,
}

/// Everything stored about an event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    /// Event id.
    pub event_id: String,
    /// Header that supplied the id, or `derived`.
    pub id_source: String,
    /// Topic of first delivery.
    pub topic: String,
    /// Partition of first delivery.
    pub kafka_partition: i32,
    /// Offset of first delivery.
    pub kafka_offset: i64,
    /// Record key.
    pub record_key: Option<Vec<u8>>,
    /// Broker time, µs.
    pub broker_time_us: Option<i64>,
    /// `ce_time`, µs.
    pub event_time_us: Option<i64>,
    /// Best-known time, µs.
    pub time_us: i64,
    /// `ce_type`.
    pub event_type: Option<String>,
    /// `ce_source`.
    pub source: Option<String>,
    /// `ce_subject`.
    pub subject: Option<String>,
    /// `content-type`.
    pub content_type: Option<String>,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Producing span id.
    pub span_id: Option<String>,
    /// Cause's id.
    pub causation_id: Option<String>,
    /// Conversation id.
    pub correlation_id: Option<String>,
    /// Headers as binary-safe JSON.
    pub headers: String,
    /// Payload (possibly cut).
    pub payload: Option<Vec<u8>>,
    /// Payload size before cutting.
    pub payload_size: i64,
    /// Whether the payload was cut.
    pub payload_truncated: bool,
    /// Problems as JSON.
    pub problems: String,
    /// Number of problems.
    pub problem_count: i64,
    /// Number of distinct deliveries.
    pub delivery_count: i64,
    /// When it was first ingested, µs.
    pub ingested_at_us: i64,
    /// What redaction at ingest removed, as JSON; `None` when nothing.
    pub redactions: Option<String>,
}

/// One delivery of an event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub kafka_partition: i32,
    /// Offset.
    pub kafka_offset: i64,
    /// Broker time, µs.
    pub broker_time_us: Option<i64>,
}

/// A business key of an event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRow {
    /// Event id.
    pub event_id: String,
    /// Key name.
    pub name: String,
    /// Key value.
    pub value: String,
}

/// `SearchFilter::problem` value that matches events with any problem.
pub const ANY_PROBLEM: &str = "any";

/// What [`super::Store::search`] filters on; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    /// Events at or after this time, µs.
    pub from_us: Option<i64>,
    /// Events before this time, µs.
    pub to_us: Option<i64>,
    /// `ce_type`.
    pub event_type: Option<String>,
    /// `ce_source` (the producing service).
    pub source: Option<String>,
    /// Topic of first delivery.
    pub topic: Option<String>,
    /// A business key: (name, value), or any name when `None`.
    pub key: Option<(Option<String>, String)>,
    /// Events with a problem of this kind ([`ANY_PROBLEM`]: of any kind).
    pub problem: Option<String>,
    /// Keyset cursor: only events strictly before this (time µs, id) in (time, id) order.
    pub before: Option<(i64, String)>,
    /// Page size.
    pub limit: i64,
}

/// Events a service produced to a topic.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProduceRow {
    /// Producing service (`ce_source`), if known.
    pub source: Option<String>,
    /// Topic.
    pub topic: String,
    /// Number of events.
    pub events: i64,
}

/// One reaction: a service produced an event caused by an event of `cause_topic`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HopRow {
    /// Topic of the cause.
    pub cause_topic: String,
    /// Reacting service (`ce_source`), if known.
    pub source: Option<String>,
    /// Reaction time minus cause time, µs.
    pub latency_us: i64,
}

/// What the followers of durable events need of one: a watcher of the live feed, to decide
/// whether it belongs to its flow (see [`crate::live`]), and flow health, to place it in its
/// flow (see [`crate::health`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Event id.
    pub id: String,
    /// Correlation id, if any.
    pub correlation_id: Option<String>,
    /// Trace id, if any.
    pub trace_id: Option<String>,
    /// Business keys `(name, value)`.
    pub keys: Vec<(String, String)>,
    /// Producing service (`ce_source`), if known.
    pub source: Option<String>,
    /// Event type (`ce_type`), if known.
    pub event_type: Option<String>,
    /// Its cause's id, if it names one.
    pub causation_id: Option<String>,
    /// Best-known time, µs since the epoch.
    pub time_us: i64,
    /// Set when the record is a dead-letter copy, not an event: the failed event's id and why it
    /// failed (flow health fails that event's flow).
    pub dead_letter_of: Option<(String, String)>,
}

impl From<&crate::record::EventRecord> for StoredEvent {
    fn from(r: &crate::record::EventRecord) -> Self {
        Self {
            id: r.event_id.clone(),
            correlation_id: r.correlation_id.clone(),
            trace_id: r.trace_id.clone(),
            keys: r.keys.clone(),
            source: r.source.clone(),
            event_type: r.event_type.clone(),
            causation_id: r.causation_id.clone(),
            time_us: r.time_us,
            dead_letter_of: r
                .dead_letter
                .as_ref()
                .map(|d| (d.original_id.clone(), d.reason.clone())),
        }
    }
}

/// A dead-letter copy as the answers and flow health read it: which event failed, where it was
/// dead-lettered and why.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeadLetterRow {
    /// The dead-letter topic.
    pub topic: String,
    /// Its partition.
    pub kafka_partition: i32,
    /// Its offset.
    pub kafka_offset: i64,
    /// The failed event's id.
    pub original_id: String,
    /// What recognised it: `spring`, `connect` or `topic_name`.
    pub recognised_by: String,
    /// Who failed it and why, one line.
    pub reason: String,
    /// The consumer group that gave up on it, when known.
    pub consumer_group: Option<String>,
    /// When it was dead-lettered (the copy's broker time, else when it was read), µs.
    pub time_us: i64,
    /// When the collector stored it, µs.
    pub ingested_at_us: i64,
}
