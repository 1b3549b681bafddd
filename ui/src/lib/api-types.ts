// Generated from src/lib/openapi.json by `npm run api-types` (scripts/api-types.mjs): do not edit.
// Choreoscope query API 0.1.0

/** Bytes as text when they are UTF-8, else base64. */
export interface Bytes {
  /** The bytes in that encoding. */
  data: string;
  /** `utf8` or `base64`. */
  encoding: Encoding;
}

/** `TIME_US:ID` of the last event of the page before, as `next_cursor` gives it. */
export type Cursor = string;

/** A dead-letter copy of an event: where it went, who gave up on it and why. */
export interface DeadLetterView {
  /** The consumer group that gave up on it, when known. */
  group: string | null;
  /** Its offset. */
  offset: number;
  /** Its partition. */
  partition: number;
  /** Who failed the event and why. */
  reason: string;
  /**
   * What recognised the copy: `spring` (Spring Kafka's headers), `connect` (Kafka Connect's) or
   * `topic_name` (a same-id copy on a dead-letter-named topic).
   */
  recognised_by: string;
  /** When it was dead-lettered (RFC 3339). */
  time: string;
  /** The dead-letter topic. */
  topic: string;
}

/** Where the event was delivered. */
export interface Delivery {
  /** Broker time (RFC 3339), if the record had one. */
  broker_time: string | null;
  /** Offset. */
  offset: number;
  /** Partition. */
  partition: number;
  /** Topic. */
  topic: string;
}

/** Why an expected reaction to an event is missing, from consumer-group positions. */
export interface Diagnosis {
  /**
   * The positions it is drawn from: the expected service's groups, or every group reading the
   * topic when the service is not known or none of its groups is.
   */
  groups: GroupPosition[];
  /** What kind of cause. */
  kind: DiagnosisKind;
  /**
   * One sentence for a person, e.g. "bank's group `bank` consumed PaymentCreated
   * (payments/2@1234) 40 s ago and produced nothing".
   */
  text: string;
}

/** What consumer-group positions say about a missing reaction. */
export type DiagnosisKind = "consumed_no_reaction" | "lagging" | "inactive" | "no_group" | "unknown";

/** Which way to walk from the start event (`up`, `down` or `both` in the API). */
export type Direction = "up" | "down" | "both";

/** How [`Bytes`] are written. */
export type Encoding = "utf8" | "base64";

/** The body of every error response. */
export interface ErrorBody {
  /** What was wrong, for a human. */
  detail: string;
  error: "bad_parameter" | "not_found" | "unusable_value" | "store_unavailable" | "unauthenticated" | "forbidden" | "payload_too_large" | "rate_limited" | "busy" | "too_many_from_client" | "query_over_budget";
}

/** Everything known about one event. */
export interface EventDetail {
  /** Broker timestamp of the first delivery. */
  broker_time: string | null;
  /** The cause's id. */
  causation_id: string | null;
  /** Whether the cause named by `causation_id` is stored. */
  cause_stored: boolean;
  /**
   * Every consumer group reading its topic, against its first delivery: consumed (and when),
   * pending (and how far behind) or inactive. Empty while the collector has not polled
   * consumer groups.
   */
  consumer_groups: GroupPosition[];
  /** The conversation's id. */
  correlation_id: string | null;
  /** Its dead-letter copies: who gave up on it and why (none when it was handled). */
  dead_letters: DeadLetterView[];
  /** Every delivery (more than one: a duplicate publish). */
  deliveries: Delivery[];
  /** `ce_time`, if given. */
  event_time: string | null;
  /**
   * Marks of the event's node in the graph of its flow (`/correlations/{correlation_id}`, or
   * its own tree when it has no correlation): the same flags a graph shows for it.
   */
  flags: Flag[];
  /**
   * Every processing of it known from OpenTelemetry consumer spans, oldest first: which
   * service, when, how long, whether it failed, and what it produced. Empty when no consumer
   * span names it (not handled yet, or by services that send no spans).
   */
  handlings: HandlingView[];
  /** Every header, in order. */
  headers: Header[];
  /** Event id. */
  id: string;
  /** Where the id came from: a header name, or `derived` (topic/partition/offset). */
  id_source: string;
  /** When the collector stored it. */
  ingested_at: string;
  /** Record key. */
  key: null | Bytes;
  /** Business keys. */
  keys: KeyValue[];
  /** Offset of first delivery. */
  offset: number;
  /** Partition of first delivery. */
  partition: number;
  /** The payload. */
  payload: null | Payload;
  /** Problems found while reading it. */
  problems: ProblemView[];
  /** Ids of the events caused by this one. */
  reactions: string[];
  /** What redaction at ingest removed from it; `null` when nothing. */
  redactions: null | RedactionView;
  /** The producing service. */
  source: string | null;
  /** Producing span id. */
  span_id: string | null;
  /** `ce_subject`. */
  subject: string | null;
  /** Best-known time (RFC 3339): `ce_time`, else the broker's. */
  time: string;
  /** Topic of first delivery. */
  topic: string;
  /** W3C trace id. */
  trace_id: string | null;
  /** `ce_type`. */
  type: string | null;
  /**
   * What the asker's role is not shown of it (payload, record key, header values); `null`
   * when nothing is withheld.
   */
  withheld: string | null;
}

/** An event as a node of a graph or a line of a list. */
export interface EventSummary {
  /** The cause's id. */
  causation_id: string | null;
  /** The conversation's id. */
  correlation_id: string | null;
  /** Deliveries (more than one: published twice). */
  delivery_count: number;
  /** Hops from the start event in a lineage walk (negative: ancestors); absent elsewhere. */
  depth?: number | null;
  /** Marks of the node in its graph (none in a search page). */
  flags: Flag[];
  /** Event id. */
  id: string;
  /** Offset of first delivery. */
  offset: number;
  /**
   * In a topic the asker's role does not cover: shown without type, service, topic or
   * subject, so the graph stays connected.
   */
  opaque: boolean;
  /** Partition of first delivery. */
  partition: number;
  /** Problems found when reading it. */
  problem_count: number;
  /** The producing service (`ce_source`). */
  source: string | null;
  /** Producing span id. */
  span_id: string | null;
  /** `ce_subject`. */
  subject: string | null;
  /** Best-known time of the event (RFC 3339). */
  time: string;
  /** The same, µs since the epoch. */
  time_us: number;
  /** Topic of first delivery. */
  topic: string;
  /** W3C trace id. */
  trace_id: string | null;
  /** `ce_type`. */
  type: string | null;
}

/** An exception a handler raised. */
export interface ExceptionView {
  /** `exception.message` (or the span's status message). */
  message: string | null;
  /** `exception.type` (or `error.type`). */
  type: string | null;
}

/** A reaction a step is expected to get, and within how long. */
export interface Expectation {
  /** The step it follows. */
  after: Step;
  /** Its latency distribution (none when declared and never seen). */
  latency: null | LatencySummary;
  /** Learned or declared. */
  origin: Origin;
  /** The expected reaction. */
  reaction: Reaction;
  /** Settled occurrences of the step seen. */
  samples: number;
  /** Share of the step's recent occurrences followed by it (1 when declared). */
  support: number;
  /** How long after the step's event the reaction is due (`within_ms` in JSON, ms). */
  within_ms: number;
}

/** An event of a flow that failed: dead-lettered, or its handler raised. */
export interface FailureView {
  /** The dead-letter topic it was copied to, when known. */
  dead_letter_topic: string | null;
  /** Event id. */
  event: string;
  /** The exception the handler raised, when its spans recorded one. */
  exception: null | ExceptionView;
  /** The consumer group that gave up on it, when known. */
  group: string | null;
  /** Who failed it and why, one line. */
  reason: string;
  /** The service whose handler failed, when known from its spans. */
  service: string | null;
}

/**
 * A mark on a node: `cause_missing`, `duplicate_publish`, `problems`, `cycle`, `root`,
 * `duplicate_reaction`, `end`, `dead_lettered` or `handler_failed` in the API (docs/api.md, "Graph shape").
 */
export type Flag = "cause_missing" | "duplicate_publish" | "problems" | "cycle" | "root" | "duplicate_reaction" | "end" | "dead_lettered" | "handler_failed";

/** One flow (a correlation, or one event's own tree when it has none). */
export interface Flow {
  /** The correlation id, when the events carry one. */
  correlation_id: string | null;
  /** From first to last event, ms. */
  duration_ms: number;
  /** Where it currently ends. */
  ends: FlowEnd[];
  /** Its events in causal order (causes before reactions, then time). */
  events: string[];
  /** Its health: complete, in progress, stalled or failed, and why. */
  health: FlowHealthBrief;
  /** Every hop with its duration. */
  hops: Hop[];
  /** Last event's time. */
  last_activity: string;
  /** The event(s) that start it. */
  roots: string[];
  /** Services involved, in order of first appearance. */
  services: string[];
  /** First event's time. */
  started: string;
}

/** A trace or a correlation: one flow and its graph. */
export interface FlowAnswer {
  /** The flow. */
  flow: Flow;
  /** Its causal graph. */
  graph: Graph;
  /** The trace or correlation id. */
  id: string;
}

/** Where a flow currently ends: an event nothing has reacted to. */
export interface FlowEnd {
  /** The event. */
  id: string;
  /** How long ago, ms, as of the answer (how long the flow has been waiting there). */
  idle_ms: number;
  /** Its service. */
  source: string | null;
  /** Its time. */
  time: string;
  /** Its topic. */
  topic: string;
  /** Its type. */
  type: string | null;
}

/** A flow's health, as every flow of the key, trace and correlation answers carries it. */
export interface FlowHealthBrief {
  /** Its events that failed. */
  failures: FailureView[];
  /**
   * Steps where it ends that flow health has not learned yet (too few occurrences, nothing
   * declared): a `complete` flow is then complete only as far as learned.
   */
  learning: Step[];
  /** What it is missing, by deadline (only the most specific reaction of each). */
  missing: MissingView[];
  /** When it turns stalled if nothing arrives (RFC 3339; `null` when nothing is pending). */
  next_deadline: string | null;
  /** Its status. */
  status: FlowStatus;
  /**
   * From the collector's tracker (`true`), or assessed when asked against the learned model
   * (`false`: a flow older than the tracker keeps, or a process that tracks nothing).
   */
  tracked: boolean;
}

/** One flow and its health. */
export interface FlowHealthView {
  /** How many events it has. */
  events: number;
  /** Its events that failed. */
  failures: FailureView[];
  /** The flow: its correlation id, or its only event's id. */
  flow: string;
  /** The business keys its events carry (at most 20). */
  keys: KeyValue[];
  /** Its last event's time (RFC 3339). */
  last_activity: string;
  /** Steps where it ends that flow health has not learned yet (see `FlowHealthBrief`). */
  learning: Step[];
  /** What it is missing, by deadline (only the most specific reaction of each). */
  missing: MissingView[];
  /** When it turns stalled if nothing arrives (RFC 3339; `null` when nothing is pending). */
  next_deadline: string | null;
  /** The event it started with. */
  root: FlowRoot;
  /** Its status. */
  status: FlowStatus;
}

/** The event a flow started with. */
export interface FlowRoot {
  /** Its type. */
  event_type: string | null;
  /** Event id. */
  id: string;
  /** Its producing service. */
  service: string | null;
  /** When it happened (RFC 3339). */
  time: string;
}

/** A flow's status (see the module docs), worst first. */
export type FlowStatus = "failed" | "stalled" | "in_progress" | "complete";

/** A page of tracked flows, oldest first. */
export interface FlowsPage {
  /** How many tracked flows have each status. */
  counts: StatusCounts;
  /** The flows. */
  flows: FlowHealthView[];
  /** The page size used (the request's, cut to the largest page). */
  limit: number;
}

/** How many flows are in each state, and where the stuck ones stopped. */
export interface FlowsSummary {
  /** Tracked flows per status. */
  counts: StatusCounts;
  /**
   * Batches of durable events flow health fell behind on since the collector started (its
   * events count again after a restart).
   */
  lagged_batches: number;
  /** Stalled and failed flows grouped by where they stopped, largest group first. */
  stopped: StoppedGroupView[];
}

/** A causal graph. */
export interface Graph {
  /** Edges between them. */
  edges: GraphEdge[];
  /** Events (the start event first in a lineage walk; time order in a flow). */
  nodes: EventSummary[];
  /** Why the graph is incomplete, when a limit cut it. */
  truncated: string | null;
}

/** A cause → reaction edge. */
export interface GraphEdge {
  /** This edge closes a causation cycle. */
  cycle: boolean;
  /** The cause's id. */
  from: string;
  /** Found by a rule, not declared (every rule but `causation`; docs/lineage.md). */
  inferred: boolean;
  /** Reaction time minus cause time, ms (negative under clock skew). */
  latency_ms: number;
  /**
   * How it was found: `causation` (declared), `same_span`, `span_message`, `span_link` or
   * `span_parent` (docs/lineage.md).
   */
  rule: Rule;
  /** The reaction's id. */
  to: string;
}

/** One consumer group's position against one event's record. */
export interface GroupPosition {
  /**
   * The group's committed offset on that partition (the next offset it will read), when it
   * committed one.
   */
  committed_offset: number | null;
  /**
   * Consumed only: when the collector first saw the group's committed offset past the record
   * (µs; RFC 3339 `consumed_at` in JSON); `None` when it was already past at the oldest
   * position remembered.
   */
  consumed_at: string | null;
  /** The consumer group. */
  group: string;
  /**
   * Pending only: records of the partition the group still has to read up to and including
   * this one (`offset + 1 - committed_offset`).
   */
  lag_records: number | null;
  /**
   * Pending only: seconds until the group reaches the record at its recent commit rate on the
   * partition; `None` when it has not moved lately or its rate is not known yet.
   */
  lag_seconds: number | null;
  /** The record's offset. */
  offset: number;
  /** The record's partition. */
  partition: number;
  /** The service whose reactions this group produces, when known. */
  service: string | null;
  /** Consumed, pending or inactive. */
  state: GroupState;
  /** The record's topic. */
  topic: string;
}

/** Where a consumer group stands against one record. */
export type GroupState = "consumed" | "pending" | "inactive";

/**
 * A service's processing of an event, from its OpenTelemetry consumer span and the spans under
 * it.
 */
export interface HandlingView {
  /** Its consumer group, when the span names it. */
  consumer_group: string | null;
  /** How long the consumer span lasted, ms. */
  duration_ms: number;
  /** The exception, for a failed handling whose spans recorded one. */
  exception: null | ExceptionView;
  /** Whether it failed. */
  outcome: Outcome;
  /** Ids of the events produced while handling it (none: handled, produced nothing). */
  produced: string[];
  /**
   * How its consumer span was tied to the event: `span_message`, `span_link` or
   * `span_parent`.
   */
  rule: Rule;
  /** The service (`service.name`). */
  service: string | null;
  /** The consumer span's id. */
  span_id: string;
  /** The consumer span's name. */
  span_name: string;
  /** When the handling started (RFC 3339). */
  started: string;
  /** The consumer span's trace id. */
  trace_id: string;
}

/** One record header, exactly as it arrived. */
export interface Header {
  /** Header name. */
  name: string;
  /** Value; `null` for a null header. */
  value: null | Bytes;
}

/** Why and since when consumption is held back. */
export interface HeldBack {
  /** The store's last error, one line. */
  error: string;
  /** Writes failed since (each batch is retried with backoff until it is durable). */
  failed_writes: number;
  /** What the store's last failure was: `disk_full`, `read_only`, `unavailable` or `other`. */
  reason: string;
  /** When the first failed write of this stretch failed. */
  since: string;
}

/** One cause → reaction hop of a flow, with who and what on each side. */
export interface Hop {
  /** The cause's id. */
  from: string;
  /** The cause's service. */
  from_service: string | null;
  /** The cause's type. */
  from_type: string | null;
  /** How long the hop took, ms. */
  latency_ms: number;
  /** The reaction's id. */
  to: string;
  /** The reacting service. */
  to_service: string | null;
  /** The reaction's type. */
  to_type: string | null;
}

/** How far behind the collector's consumption is (`GET /api/v1/ingest/progress`). */
export interface IngestProgress {
  /** When the client's statistics last reported (every 5 s); none before the first report. */
  as_of: string | null;
  /**
   * How fast records behind fall, per second, over the last minute (consumption minus
   * production; negative while producers outpace it); none before two reports.
   */
  catch_up_rate: number | null;
  /**
   * Whether it is catching up: more than 1000 records and more than 5 s of its consumption
   * rate behind.
   */
  catching_up: boolean;
  /** Records consumed per second over the last minute; none before two reports. */
  consume_rate: number | null;
  /** Whether this process consumes a cluster (`collect`); `serve` does not, and answers zeros. */
  consuming: boolean;
  /**
   * Catching up only: seconds until it has caught up at the catch-up rate; none while the
   * rate is not positive or not known yet.
   */
  eta_seconds: number | null;
  /**
   * Set while consumption is held back because the store refuses writes (a full disk, a
   * database out of reach): why, since when, how many writes failed.
   */
  held_back: null | HeldBack;
  /** Records behind over every partition assigned to it. */
  records_behind: number;
  /** Records behind per topic, most behind first (topics with none left out). */
  topics: TopicBehind[];
}

/** "What happened to this business entity?" */
export interface KeyAnswer {
  /** The flows those events belong to, oldest first. */
  flows: Flow[];
  /** The causal graph of all those flows. */
  graph: Graph;
  /** The key asked about. */
  key: KeyValue;
  /** Events carrying the key. */
  matched_events: number;
  /** Every service involved. */
  services: string[];
}

/** Business-key names seen, for search suggestions. */
export interface KeyNames {
  /** Names, in order. */
  names: string[];
}

/** A business key. */
export interface KeyValue {
  /** Key name, e.g. `order.id`. */
  name: string;
  /** Key value, e.g. `o-1001`. */
  value: string;
}

/** A latency distribution (over the last `model::LATENCY_WINDOW` samples of a reaction). */
export interface LatencySummary {
  /** Largest, ms. */
  max_ms: number;
  /** Median, ms. */
  p50_ms: number;
  /** 95th percentile, ms. */
  p95_ms: number;
  /** 99th percentile, ms. */
  p99_ms: number;
}

/** The best lineage a service's events allow. */
export type LineageLevel = "declared" | "spans" | "same_span" | "none";

/** One server-sent event of the live feed (the document describes each event of the stream). */
export interface LiveEvent {
  /** Its data, JSON text. */
  data: string;
  /** What happened. */
  event: LiveEventKind;
}

/** The kind of a server-sent event of the live feed. */
export type LiveEventKind = "ready" | "stored" | "lagged";

/** `NAME=VALUE` of a business key; the name is not empty. */
export type LiveKey = string;

/** An edge of the choreography map. */
export interface MapEdge {
  /** Events produced, or reactions to events of the topic. */
  count: number;
  /**
   * Failed flows tracked now whose dead-lettered event is on this edge (the consume edge to the
   * service whose group gave up on it, else the event's produce edge).
   */
  failed: number;
  /** Source node id. */
  from: string;
  /** `produce` (service → topic) or `consume` (topic → service, known from reactions). */
  kind: MapEdgeKind;
  /** Median hop time (cause → reaction), ms; consume edges only. */
  latency_p50_ms: number | null;
  /** 95th percentile hop time, ms; consume edges only. */
  latency_p95_ms: number | null;
  /**
   * Stalled flows tracked now that wait on this edge (a consume edge to the service whose
   * reaction is overdue), their stopping event in the range.
   */
  stalled: number;
  /** Target node id. */
  to: string;
}

/** What an edge of the choreography map is. */
export type MapEdgeKind = "produce" | "consume";

/** A node of the choreography map. */
export interface MapNode {
  /** `service:NAME` or `topic:NAME`. */
  id: string;
  /** `service` or `topic`. */
  kind: MapNodeKind;
  /** The name. */
  name: string;
}

/** What a node of the choreography map is. */
export type MapNodeKind = "service" | "topic";

/** Who a request is made by, as the collector authenticated it. */
export interface Me {
  /** The user's or token's name (`anonymous` without login). */
  name: string;
  /** Whether payloads, header values and record keys are shown to them. */
  payloads: boolean;
  /** `viewer`, `reader` or `admin`. */
  role: string;
  /** The topic patterns whose events they see in full; `null`: every topic. */
  topics: string[] | null;
  /** How they were authenticated: `none`, `token` or `proxy`. */
  via: string;
}

/** An expected reaction a flow is missing, and since when. */
export interface MissingView {
  /** That event's step. */
  after: Step;
  /** The event after which it is missing. */
  after_event: string;
  /** When it was due (RFC 3339). */
  deadline: string;
  /**
   * Why it is missing, from the consumer groups' positions against the event it follows
   * (`null` while the collector has not polled consumer groups).
   */
  diagnosis: null | Diagnosis;
  /** The reaction expected. */
  expected: Reaction;
  /** Learned, or declared in the config file. */
  origin: Origin;
  /** How long past due, ms (`null` while not yet due). */
  overdue_ms: number | null;
  /** Occurrences of the step the model has learned from. */
  samples: number;
  /** Share of the step's recent occurrences followed by it. */
  support: number;
}

/** The learned choreography. */
export interface ModelAnswer {
  /** Settled occurrences of a step before anything is expected after it. */
  min_samples: number;
  /** Share of a step's occurrences a reaction must follow to be expected. */
  min_support: number;
  /** Every step seen or declared, with what it is expected to get and every reaction seen. */
  steps: StepView[];
}

/** Whether an expectation was learned or declared in the config file. */
export type Origin = "learned" | "declared";

/** Whether a handling succeeded. */
export type Outcome = "ok" | "failed";

/** The payload as stored. */
export interface Payload {
  /** The kept bytes. */
  body: Bytes;
  /** Declared content type. */
  content_type: string | null;
  /** Size before cutting, bytes. */
  size: number;
  /** Whether it was cut at the collector's `--max-payload`. */
  truncated: boolean;
}

/** A problem found while reading the record. */
export interface ProblemView {
  /** Explanation. */
  detail: string;
  /** Stable kind, e.g. `invalid_traceparent`. */
  kind: string;
}

/** What may follow a step. */
export type Reaction = {
  /** The reaction's event type. */
  event_type: string;
  kind: "specific";
  /** The reacting service. */
  service: string;
} | {
  kind: "by_service";
  /** The reacting service. */
  service: string;
} | {
  kind: "any";
};

/** What redaction at ingest removed from the event before it was stored (docs/security.md). */
export interface RedactionView {
  /** JSON pointers whose values were removed. */
  dropped?: string[];
  /** JSON pointers whose values were hashed (`"hmac:…"`). */
  hashed?: string[];
  /** Headers whose values were dropped. */
  headers?: string[];
  /** Business keys whose values are stored hashed. */
  keys?: string[];
  /** JSON pointers whose values were masked (`"[redacted]"`). */
  masked?: string[];
  /**
   * What became of the payload when not all of it was kept: `none`, `truncated`, or
   * `withheld: …` with why.
   */
  payload: string | null;
  /** What became of the record key: `hashed` or `dropped`. */
  record_key: string | null;
}

/** How an edge was found (`rule` in the API; docs/lineage.md). */
export type Rule = "causation" | "same_span" | "span_message" | "span_link" | "span_parent";

/** A page of search results. */
export interface SearchPage {
  /** Matching events, newest first. */
  events: EventSummary[];
  /** The page size used (after the bound). */
  limit: number;
  /** Pass as `cursor` for the next page; absent on the last one. */
  next_cursor: string | null;
}

/** One service's instrumentation. */
export interface ServiceCoverage {
  /** What to add, each a sentence. */
  advice: string[];
  /** Names of the `baggage` entries its recent events carry. */
  baggage_keys: string[];
  /** Events it produced in the window (of the newest read). */
  events: number;
  /** The best lineage its events allow. */
  lineage: LineageLevel;
  /** That, in a sentence. */
  lineage_note: string;
  /** The service: `ce_source`, else the `service.name` of the span that produced the record. */
  service: string;
  /** Spans received from it (`null`: none). */
  spans: null | SpanCoverage;
  /** With a causation id. */
  with_causation: number;
  /** Of those, with an id header (`ce_id` or an alias). */
  with_ce_id: number;
  /** With a correlation id. */
  with_correlation: number;
  /** With a `traceparent`. */
  with_traceparent: number;
}

/** The services answer. */
export interface ServicesAnswer {
  /** Start of the window (RFC 3339). */
  from: string;
  /** Events read: the newest of the window, at most [`SAMPLE`]. */
  sampled_events: number;
  /** One entry per service, by name. */
  services: ServiceCoverage[];
  /** End of the window (RFC 3339). */
  to: string;
}

/** Spans received from a service. */
export interface SpanCoverage {
  /** Consumer spans. */
  consumer: number;
  /** Failed spans. */
  failed: number;
  /** When its newest span started (RFC 3339). */
  last_seen: string;
  /** Producer spans. */
  producer: number;
  /** Spans stored. */
  received: number;
}

/** How many flows have each status. */
export interface StatusCounts {
  /** Nothing expected is missing. */
  complete: number;
  /** An event of the flow failed. */
  failed: number;
  /** An expected reaction is missing, not yet due. */
  in_progress: number;
  /** An expected reaction is overdue. */
  stalled: number;
}

/** A step of the choreography: a service producing an event type. */
export interface Step {
  /** The event type (`ce_type`). */
  event_type: string;
  /** The producing service (`ce_source`). */
  service: string;
}

/** Everything the model knows of one step, expected or not (what `GET /api/v1/model` shows). */
export interface StepView {
  /** What it is expected to get (declared ones replace the learned). */
  expectations: Expectation[];
  /** Settled occurrences seen. */
  samples: number;
  /** Every reaction seen after it, expected or not, with its support. */
  seen: Expectation[];
  /** The step. */
  step: Step;
  /** Whether nothing is expected after it. */
  terminal: boolean;
}

/** Stalled or failed flows that stopped at the same place. */
export interface StoppedGroupView {
  /** The step after which a reaction is missing (stalled), or that failed (failed). */
  after: null | Step;
  /** How many flows. */
  flows: number;
  /** The oldest of them, first (at most 10). */
  oldest: string[];
  /** `stalled` or `failed`. */
  status: FlowStatus;
  /** The reaction waited for (stalled). */
  waiting_for: null | Reaction;
}

/** Epoch milliseconds (at most 15 digits), or an RFC 3339 date-time (a real calendar date, no leap second, at most 9 fractional digits, an offset within ±23:59). */
export type Time = string;

/** Records behind on one topic. */
export interface TopicBehind {
  /**
   * Records between the collector's positions and the ends of the topic's partitions assigned
   * to it.
   */
  records_behind: number;
  /** The topic. */
  topic: string;
}

/** The choreography as it really runs in a time range. */
export interface Topology {
  /** Produce and consume edges. */
  edges: MapEdge[];
  /** Start of the range (RFC 3339). */
  from: string;
  /** Services and topics. */
  nodes: MapNode[];
  /** End of the range (RFC 3339). */
  to: string;
  /** Set when the hop sample was cut at its limit (latencies then come from the most recent hops). */
  truncated: string | null;
}

/** W3C trace id: 32 lower-case hex digits. The all-zero id has this shape but is invalid under W3C; no event carries it, so it is never found (404). */
export type TraceId = string;

/** A number (1 to 6 digits, no leading zero) and a unit: s, m, h or d, e.g. 24h. */
export type Window = string;
