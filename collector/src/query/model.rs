//! The API's JSON shapes. Times are RFC 3339 strings (UTC, microseconds) with the same instant in
//! `time_us` for sorting; latencies are milliseconds.

use base64::Engine as _;
use serde::Serialize;
use utoipa::ToSchema;

use crate::groups::{Diagnosis, GroupPosition};
use crate::handling::Handling;
use crate::health::{FlowStatus, Origin, Reaction, Step};
use crate::lineage::{Edge, Flag, Lineage, Node, Rule};
use crate::span::Exception;
use crate::store::{DeadLetterRow, DeliveryRow, EventRow, KeyRow, SummaryRow};

pub use crate::clock::{ms, rfc3339};

/// An event as a node of a graph or a line of a list.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventSummary {
    /// Event id.
    pub id: String,
    /// `ce_type`.
    #[serde(rename = "type")]
    #[schema(required)]
    pub event_type: Option<String>,
    /// The producing service (`ce_source`).
    #[schema(required)]
    pub source: Option<String>,
    /// Topic of first delivery.
    pub topic: String,
    /// Partition of first delivery.
    pub partition: i32,
    /// Offset of first delivery.
    pub offset: i64,
    /// Best-known time of the event (RFC 3339).
    pub time: String,
    /// The same, µs since the epoch.
    pub time_us: i64,
    /// `ce_subject`.
    #[schema(required)]
    pub subject: Option<String>,
    /// The cause's id.
    #[schema(required)]
    pub causation_id: Option<String>,
    /// The conversation's id.
    #[schema(required)]
    pub correlation_id: Option<String>,
    /// W3C trace id.
    #[schema(required)]
    pub trace_id: Option<String>,
    /// Producing span id.
    #[schema(required)]
    pub span_id: Option<String>,
    /// Hops from the start event in a lineage walk (negative: ancestors); absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<i32>,
    /// Marks of the node in its graph (none in a search page).
    pub flags: Vec<Flag>,
    /// Problems found when reading it.
    pub problem_count: i64,
    /// Deliveries (more than one: published twice).
    pub delivery_count: i64,
    /// In a topic the asker's role does not cover: shown without type, service, topic or
    /// subject, so the graph stays connected.
    pub opaque: bool,
}

impl EventSummary {
    /// A summary with no flags.
    pub fn from_row(e: SummaryRow) -> Self {
        Self {
            time: rfc3339(e.time_us),
            time_us: e.time_us,
            id: e.event_id,
            event_type: e.event_type,
            source: e.source,
            topic: e.topic,
            partition: e.kafka_partition,
            offset: e.kafka_offset,
            subject: e.subject,
            causation_id: e.causation_id,
            correlation_id: e.correlation_id,
            trace_id: e.trace_id,
            span_id: e.span_id,
            depth: None,
            flags: Vec::new(),
            problem_count: e.problem_count,
            delivery_count: e.delivery_count,
            opaque: false,
        }
    }

    fn from_node(node: Node, with_depth: bool) -> Self {
        let mut s = Self::from_row(node.event);
        s.depth = with_depth.then_some(node.depth);
        s.flags = node.flags.into_iter().collect();
        s
    }
}

/// A cause → reaction edge.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GraphEdge {
    /// The cause's id.
    pub from: String,
    /// The reaction's id.
    pub to: String,
    /// Reaction time minus cause time, ms (negative under clock skew).
    pub latency_ms: f64,
    /// Found by a rule, not declared (every rule but `causation`; docs/lineage.md).
    pub inferred: bool,
    /// How it was found: `causation` (declared), `same_span`, `span_message`, `span_link` or
    /// `span_parent` (docs/lineage.md).
    pub rule: Rule,
    /// This edge closes a causation cycle.
    pub cycle: bool,
}

impl From<Edge> for GraphEdge {
    fn from(e: Edge) -> Self {
        Self {
            from: e.from,
            to: e.to,
            latency_ms: ms(e.latency_us),
            inferred: e.inferred,
            rule: e.rule,
            cycle: e.cycle,
        }
    }
}

/// A causal graph.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Graph {
    /// Events (the start event first in a lineage walk; time order in a flow).
    pub nodes: Vec<EventSummary>,
    /// Edges between them.
    pub edges: Vec<GraphEdge>,
    /// Why the graph is incomplete, when a limit cut it.
    #[schema(required)]
    pub truncated: Option<String>,
}

impl Graph {
    /// The JSON shape of a [`Lineage`]; `with_depth` keeps each node's hop count.
    pub fn from_lineage(l: Lineage, with_depth: bool) -> Self {
        Self {
            nodes: l
                .nodes
                .into_iter()
                .map(|n| EventSummary::from_node(n, with_depth))
                .collect(),
            edges: l.edges.into_iter().map(GraphEdge::from).collect(),
            truncated: l.truncated,
        }
    }
}

/// A business key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KeyValue {
    /// Key name, e.g. `order.id`.
    pub name: String,
    /// Key value, e.g. `o-1001`.
    pub value: String,
}

/// How [`Bytes`] are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 text, as is.
    Utf8,
    /// Standard base64 (with padding).
    Base64,
}

/// Bytes as text when they are UTF-8, else base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Bytes {
    /// `utf8` or `base64`.
    pub encoding: Encoding,
    /// The bytes in that encoding.
    pub data: String,
}

impl Bytes {
    /// Encodes `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self {
                encoding: Encoding::Utf8,
                data: text.to_owned(),
            },
            Err(_) => Self {
                encoding: Encoding::Base64,
                data: base64::engine::general_purpose::STANDARD.encode(bytes),
            },
        }
    }
}

/// One record header, exactly as it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Value; `null` for a null header.
    #[schema(required)]
    pub value: Option<Bytes>,
}

/// The payload as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Payload {
    /// The kept bytes.
    pub body: Bytes,
    /// Size before cutting, bytes.
    pub size: i64,
    /// Whether it was cut at the collector's `--max-payload`.
    pub truncated: bool,
    /// Declared content type.
    #[schema(required)]
    pub content_type: Option<String>,
}

/// An expected reaction a flow is missing, and since when.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MissingView {
    /// The event after which it is missing.
    pub after_event: String,
    /// That event's step.
    pub after: Step,
    /// The reaction expected.
    pub expected: Reaction,
    /// Share of the step's recent occurrences followed by it.
    pub support: f64,
    /// Occurrences of the step the model has learned from.
    pub samples: u64,
    /// Learned, or declared in the config file.
    pub origin: Origin,
    /// When it was due (RFC 3339).
    pub deadline: String,
    /// How long past due, ms (`null` while not yet due).
    #[schema(required)]
    pub overdue_ms: Option<f64>,
    /// Why it is missing, from the consumer groups' positions against the event it follows
    /// (`null` while the collector has not polled consumer groups).
    #[schema(required)]
    pub diagnosis: Option<Diagnosis>,
}

/// An exception a handler raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ExceptionView {
    /// `exception.type` (or `error.type`).
    #[serde(rename = "type")]
    #[schema(required)]
    pub kind: Option<String>,
    /// `exception.message` (or the span's status message).
    #[schema(required)]
    pub message: Option<String>,
}

impl From<Exception> for ExceptionView {
    fn from(e: Exception) -> Self {
        Self {
            kind: e.kind,
            message: e.message,
        }
    }
}

/// An event of a flow that failed: dead-lettered, or its handler raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FailureView {
    /// Event id.
    pub event: String,
    /// Who failed it and why, one line.
    pub reason: String,
    /// The service whose handler failed, when known from its spans.
    #[schema(required)]
    pub service: Option<String>,
    /// The exception the handler raised, when its spans recorded one.
    #[schema(required)]
    pub exception: Option<ExceptionView>,
    /// The dead-letter topic it was copied to, when known.
    #[schema(required)]
    pub dead_letter_topic: Option<String>,
    /// The consumer group that gave up on it, when known.
    #[schema(required)]
    pub group: Option<String>,
}

/// A flow's health, as every flow of the key, trace and correlation answers carries it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlowHealthBrief {
    /// Its status.
    pub status: FlowStatus,
    /// From the collector's tracker (`true`), or assessed when asked against the learned model
    /// (`false`: a flow older than the tracker keeps, or a process that tracks nothing).
    pub tracked: bool,
    /// What it is missing, by deadline (only the most specific reaction of each).
    pub missing: Vec<MissingView>,
    /// Its events that failed.
    pub failures: Vec<FailureView>,
    /// When it turns stalled if nothing arrives (RFC 3339; `null` when nothing is pending).
    #[schema(required)]
    pub next_deadline: Option<String>,
    /// Steps where it ends that flow health has not learned yet (too few occurrences, nothing
    /// declared): a `complete` flow is then complete only as far as learned.
    pub learning: Vec<Step>,
}

/// A dead-letter copy of an event: where it went, who gave up on it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeadLetterView {
    /// The dead-letter topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Who failed the event and why.
    pub reason: String,
    /// The consumer group that gave up on it, when known.
    #[schema(required)]
    pub group: Option<String>,
    /// What recognised the copy: `spring` (Spring Kafka's headers), `connect` (Kafka Connect's) or
    /// `topic_name` (a same-id copy on a dead-letter-named topic).
    pub recognised_by: String,
    /// When it was dead-lettered (RFC 3339).
    pub time: String,
}

impl From<DeadLetterRow> for DeadLetterView {
    fn from(d: DeadLetterRow) -> Self {
        Self {
            topic: d.topic,
            partition: d.kafka_partition,
            offset: d.kafka_offset,
            reason: d.reason,
            group: d.consumer_group,
            recognised_by: d.recognised_by,
            time: rfc3339(d.time_us),
        }
    }
}

/// A problem found while reading the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ProblemView {
    /// Stable kind, e.g. `invalid_traceparent`.
    pub kind: String,
    /// Explanation.
    pub detail: String,
}

/// What redaction at ingest removed from the event before it was stored (docs/security.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct RedactionView {
    /// JSON pointers whose values were masked (`"[redacted]"`).
    #[serde(default)]
    pub masked: Vec<String>,
    /// JSON pointers whose values were hashed (`"hmac:…"`).
    #[serde(default)]
    pub hashed: Vec<String>,
    /// JSON pointers whose values were removed.
    #[serde(default)]
    pub dropped: Vec<String>,
    /// Headers whose values were dropped.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Business keys whose values are stored hashed.
    #[serde(default)]
    pub keys: Vec<String>,
    /// What became of the payload when not all of it was kept: `none`, `truncated`, or
    /// `withheld: …` with why.
    #[serde(default)]
    #[schema(required)]
    pub payload: Option<String>,
    /// What became of the record key: `hashed` or `dropped`.
    #[serde(default)]
    #[schema(required)]
    pub record_key: Option<String>,
}

/// Where the event was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Delivery {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Broker time (RFC 3339), if the record had one.
    #[schema(required)]
    pub broker_time: Option<String>,
}

impl From<DeliveryRow> for Delivery {
    fn from(d: DeliveryRow) -> Self {
        Self {
            topic: d.topic,
            partition: d.kafka_partition,
            offset: d.kafka_offset,
            broker_time: d.broker_time_us.map(rfc3339),
        }
    }
}

/// Whether a handling succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No span of it failed.
    Ok,
    /// Its consumer span or a span under it has status ERROR.
    Failed,
}

/// A service's processing of an event, from its OpenTelemetry consumer span and the spans under
/// it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HandlingView {
    /// The service (`service.name`).
    #[schema(required)]
    pub service: Option<String>,
    /// Its consumer group, when the span names it.
    #[schema(required)]
    pub consumer_group: Option<String>,
    /// The consumer span's name.
    pub span_name: String,
    /// The consumer span's trace id.
    pub trace_id: String,
    /// The consumer span's id.
    pub span_id: String,
    /// When the handling started (RFC 3339).
    pub started: String,
    /// How long the consumer span lasted, ms.
    pub duration_ms: f64,
    /// Whether it failed.
    pub outcome: Outcome,
    /// The exception, for a failed handling whose spans recorded one.
    #[schema(required)]
    pub exception: Option<ExceptionView>,
    /// Ids of the events produced while handling it (none: handled, produced nothing).
    pub produced: Vec<String>,
    /// How its consumer span was tied to the event: `span_message`, `span_link` or
    /// `span_parent`.
    pub rule: Rule,
}

impl From<&Handling> for HandlingView {
    fn from(h: &Handling) -> Self {
        let failed = h.failed();
        Self {
            service: h.consumer.service.clone(),
            consumer_group: h.consumer.consumer_group.clone(),
            span_name: h.consumer.name.clone(),
            trace_id: h.consumer.trace_id.clone(),
            span_id: h.consumer.span_id.clone(),
            started: rfc3339(h.consumer.start_us),
            duration_ms: ms(h.consumer.end_us - h.consumer.start_us),
            outcome: if failed { Outcome::Failed } else { Outcome::Ok },
            exception: if failed {
                h.exception().map(Into::into)
            } else {
                None
            },
            produced: h.produced.iter().map(|r| r.event_id.clone()).collect(),
            rule: h.rule,
        }
    }
}

/// Everything known about one event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventDetail {
    /// Event id.
    pub id: String,
    /// Where the id came from: a header name, or `derived` (topic/partition/offset).
    pub id_source: String,
    /// W3C trace id.
    #[schema(required)]
    pub trace_id: Option<String>,
    /// Producing span id.
    #[schema(required)]
    pub span_id: Option<String>,
    /// The cause's id.
    #[schema(required)]
    pub causation_id: Option<String>,
    /// The conversation's id.
    #[schema(required)]
    pub correlation_id: Option<String>,
    /// Topic of first delivery.
    pub topic: String,
    /// Partition of first delivery.
    pub partition: i32,
    /// Offset of first delivery.
    pub offset: i64,
    /// Record key.
    #[schema(required)]
    pub key: Option<Bytes>,
    /// Best-known time (RFC 3339): `ce_time`, else the broker's.
    pub time: String,
    /// `ce_time`, if given.
    #[schema(required)]
    pub event_time: Option<String>,
    /// Broker timestamp of the first delivery.
    #[schema(required)]
    pub broker_time: Option<String>,
    /// When the collector stored it.
    pub ingested_at: String,
    /// `ce_type`.
    #[serde(rename = "type")]
    #[schema(required)]
    pub event_type: Option<String>,
    /// The producing service.
    #[schema(required)]
    pub source: Option<String>,
    /// `ce_subject`.
    #[schema(required)]
    pub subject: Option<String>,
    /// Business keys.
    pub keys: Vec<KeyValue>,
    /// Every header, in order.
    pub headers: Vec<Header>,
    /// The payload.
    #[schema(required)]
    pub payload: Option<Payload>,
    /// Problems found while reading it.
    pub problems: Vec<ProblemView>,
    /// What redaction at ingest removed from it; `null` when nothing.
    #[schema(required)]
    pub redactions: Option<RedactionView>,
    /// What the asker's role is not shown of it (payload, record key, header values); `null`
    /// when nothing is withheld.
    #[schema(required)]
    pub withheld: Option<String>,
    /// Every delivery (more than one: a duplicate publish).
    pub deliveries: Vec<Delivery>,
    /// Marks of the event's node in the graph of its flow (`/correlations/{correlation_id}`, or
    /// its own tree when it has no correlation): the same flags a graph shows for it.
    pub flags: Vec<Flag>,
    /// Ids of the events caused by this one.
    pub reactions: Vec<String>,
    /// Whether the cause named by `causation_id` is stored.
    pub cause_stored: bool,
    /// Its dead-letter copies: who gave up on it and why (none when it was handled).
    pub dead_letters: Vec<DeadLetterView>,
    /// Every consumer group reading its topic, against its first delivery: consumed (and when),
    /// pending (and how far behind) or inactive. Empty while the collector has not polled
    /// consumer groups.
    pub consumer_groups: Vec<GroupPosition>,
    /// Every processing of it known from OpenTelemetry consumer spans, oldest first: which
    /// service, when, how long, whether it failed, and what it produced. Empty when no consumer
    /// span names it (not handled yet, or by services that send no spans).
    pub handlings: Vec<HandlingView>,
}

/// Parses the stored header JSON (`[[name, value]]`, value text, null or `{"base64": …}`).
pub fn headers_from_json(json: &str) -> Vec<Header> {
    let Ok(serde_json::Value::Array(list)) = serde_json::from_str(json) else {
        return Vec::new();
    };
    list.into_iter()
        .filter_map(|pair| {
            let serde_json::Value::Array(pair) = pair else {
                return None;
            };
            let name = pair.first()?.as_str()?.to_owned();
            let value = match pair.get(1) {
                Some(serde_json::Value::String(text)) => Some(Bytes {
                    encoding: Encoding::Utf8,
                    data: text.clone(),
                }),
                Some(serde_json::Value::Object(o)) => {
                    o.get("base64").and_then(|b| b.as_str()).map(|b| Bytes {
                        encoding: Encoding::Base64,
                        data: b.to_owned(),
                    })
                }
                _ => None,
            };
            Some(Header { name, value })
        })
        .collect()
}

impl EventDetail {
    /// Assembles the detail view.
    pub fn new(
        e: EventRow,
        keys: Vec<KeyRow>,
        deliveries: Vec<DeliveryRow>,
        reactions: Vec<String>,
        cause_stored: bool,
        flags: Vec<Flag>,
        dead_letters: Vec<DeadLetterRow>,
    ) -> Self {
        let problems: Vec<ProblemView> = serde_json::from_str(&e.problems).unwrap_or_default();
        Self {
            headers: headers_from_json(&e.headers),
            payload: e.payload.as_deref().map(|p| Payload {
                body: Bytes::new(p),
                size: e.payload_size,
                truncated: e.payload_truncated,
                content_type: e.content_type.clone(),
            }),
            key: e.record_key.as_deref().map(Bytes::new),
            time: rfc3339(e.time_us),
            event_time: e.event_time_us.map(rfc3339),
            broker_time: e.broker_time_us.map(rfc3339),
            ingested_at: rfc3339(e.ingested_at_us),
            keys: keys
                .into_iter()
                .map(|k| KeyValue {
                    name: k.name,
                    value: k.value,
                })
                .collect(),
            deliveries: deliveries.into_iter().map(Delivery::from).collect(),
            problems,
            reactions,
            cause_stored,
            flags,
            dead_letters: dead_letters.into_iter().map(DeadLetterView::from).collect(),
            consumer_groups: Vec::new(),
            handlings: Vec::new(),
            withheld: None,
            redactions: e
                .redactions
                .as_deref()
                .and_then(|json| serde_json::from_str(json).ok()),
            id: e.event_id,
            id_source: e.id_source,
            trace_id: e.trace_id,
            span_id: e.span_id,
            causation_id: e.causation_id,
            correlation_id: e.correlation_id,
            topic: e.topic,
            partition: e.kafka_partition,
            offset: e.kafka_offset,
            event_type: e.event_type,
            source: e.source,
            subject: e.subject,
        }
    }
}

/// One cause → reaction hop of a flow, with who and what on each side.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Hop {
    /// The cause's id.
    pub from: String,
    /// The reaction's id.
    pub to: String,
    /// The cause's service.
    #[schema(required)]
    pub from_service: Option<String>,
    /// The reacting service.
    #[schema(required)]
    pub to_service: Option<String>,
    /// The cause's type.
    #[schema(required)]
    pub from_type: Option<String>,
    /// The reaction's type.
    #[schema(required)]
    pub to_type: Option<String>,
    /// How long the hop took, ms.
    pub latency_ms: f64,
}

/// Where a flow currently ends: an event nothing has reacted to.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlowEnd {
    /// The event.
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    #[schema(required)]
    pub event_type: Option<String>,
    /// Its service.
    #[schema(required)]
    pub source: Option<String>,
    /// Its topic.
    pub topic: String,
    /// Its time.
    pub time: String,
    /// How long ago, ms, as of the answer (how long the flow has been waiting there).
    pub idle_ms: f64,
}

/// One flow (a correlation, or one event's own tree when it has none).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Flow {
    /// The correlation id, when the events carry one.
    #[schema(required)]
    pub correlation_id: Option<String>,
    /// The event(s) that start it.
    pub roots: Vec<String>,
    /// Its events in causal order (causes before reactions, then time).
    pub events: Vec<String>,
    /// Services involved, in order of first appearance.
    pub services: Vec<String>,
    /// First event's time.
    pub started: String,
    /// Last event's time.
    pub last_activity: String,
    /// From first to last event, ms.
    pub duration_ms: f64,
    /// Where it currently ends.
    pub ends: Vec<FlowEnd>,
    /// Every hop with its duration.
    pub hops: Vec<Hop>,
    /// Its health: complete, in progress, stalled or failed, and why.
    pub health: FlowHealthBrief,
}

/// "What happened to this business entity?"
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KeyAnswer {
    /// The key asked about.
    pub key: KeyValue,
    /// Events carrying the key.
    pub matched_events: usize,
    /// The flows those events belong to, oldest first.
    pub flows: Vec<Flow>,
    /// Every service involved.
    pub services: Vec<String>,
    /// The causal graph of all those flows.
    pub graph: Graph,
}

/// A trace or a correlation: one flow and its graph.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlowAnswer {
    /// The trace or correlation id.
    pub id: String,
    /// The flow.
    pub flow: Flow,
    /// Its causal graph.
    pub graph: Graph,
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SearchPage {
    /// Matching events, newest first.
    pub events: Vec<EventSummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[schema(required)]
    pub next_cursor: Option<String>,
    /// The page size used (after the bound).
    pub limit: i64,
}

/// What a node of the choreography map is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MapNodeKind {
    /// A producing or reacting service.
    Service,
    /// A topic.
    Topic,
}

impl MapNodeKind {
    /// The kind's name in the API, also the prefix of the node's id.
    pub fn as_str(self) -> &'static str {
        match self {
            MapNodeKind::Service => "service",
            MapNodeKind::Topic => "topic",
        }
    }
}

/// What an edge of the choreography map is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MapEdgeKind {
    /// Service → topic: the service produced events to the topic.
    Produce,
    /// Topic → service: the service reacted to events of the topic.
    Consume,
}

/// A node of the choreography map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MapNode {
    /// `service:NAME` or `topic:NAME`.
    pub id: String,
    /// `service` or `topic`.
    pub kind: MapNodeKind,
    /// The name.
    pub name: String,
}

/// An edge of the choreography map.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MapEdge {
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// `produce` (service → topic) or `consume` (topic → service, known from reactions).
    pub kind: MapEdgeKind,
    /// Events produced, or reactions to events of the topic.
    pub count: i64,
    /// Median hop time (cause → reaction), ms; consume edges only.
    #[schema(required)]
    pub latency_p50_ms: Option<f64>,
    /// 95th percentile hop time, ms; consume edges only.
    #[schema(required)]
    pub latency_p95_ms: Option<f64>,
    /// Stalled flows tracked now that wait on this edge (a consume edge to the service whose
    /// reaction is overdue), their stopping event in the range.
    pub stalled: i64,
    /// Failed flows tracked now whose dead-lettered event is on this edge (the consume edge to the
    /// service whose group gave up on it, else the event's produce edge).
    pub failed: i64,
}

/// The choreography as it really runs in a time range.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Topology {
    /// Start of the range (RFC 3339).
    pub from: String,
    /// End of the range (RFC 3339).
    pub to: String,
    /// Services and topics.
    pub nodes: Vec<MapNode>,
    /// Produce and consume edges.
    pub edges: Vec<MapEdge>,
    /// Set when the hop sample was cut at its limit (latencies then come from the most recent hops).
    #[schema(required)]
    pub truncated: Option<String>,
}

/// Business-key names seen, for search suggestions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KeyNames {
    /// Names, in order.
    pub names: Vec<String>,
}
