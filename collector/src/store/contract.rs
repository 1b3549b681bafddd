//! What every backend of the lineage store promises: the [`LineageStore`] trait, its error, what
//! a batch write changed, the live feed's position, and the [`StoreProfile`] the collector tunes
//! itself by. Below the backends, which implement it, and the [`super::Store`] that dispatches
//! to them.

use std::future::Future;

use super::rows::{
    DeadLetterRow, DeliveryRow, EventRow, HopRow, KeyRow, ProduceRow, SearchFilter, StoredEvent,
    SummaryRow,
};
use super::span_rows::{ConsumeRow, CoverageRow, LinkRow, SpanRow, SpanServiceRow};
use crate::record::EventRecord;
use crate::span::SpanRecord;

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names no supported database.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The database refused or failed a call.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// SQLite refused or failed a call of the store's own connections (its writer, the
    /// lineage reader).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A value the store wrote earlier could not be read back.
    #[error("stored value unreadable: {0}")]
    Corrupt(String),
    /// A thread of the store's own connections panicked or was cancelled.
    #[error("sqlite connection thread: {0}")]
    Thread(String),
}

/// What a batch write changed on one topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicOutcome {
    /// Deliveries seen for the first time.
    pub new_deliveries: usize,
    /// Of those, deliveries of an event id stored before (duplicate publishes).
    pub duplicate_publishes: usize,
}

/// What a batch write changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Records in the batch.
    pub records: usize,
    /// Deliveries seen for the first time.
    pub new_deliveries: usize,
    /// Deliveries already stored (re-delivered records): nothing written for them.
    pub redelivered: usize,
    /// Events seen for the first time.
    pub new_events: usize,
    /// Deliveries of an event id already stored at another offset (duplicate publishes).
    pub duplicate_publishes: usize,
    /// Dead-letter copies stored for the first time (kept apart from the events; re-delivered
    /// ones count in `redelivered`).
    pub dead_letters: usize,
    /// New deliveries and duplicate publishes, per topic (dead letters are not counted there).
    pub per_topic: std::collections::BTreeMap<String, TopicOutcome>,
}

/// Counts of what the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Distinct events.
    pub events: i64,
    /// Distinct deliveries.
    pub deliveries: i64,
}

/// Where a follower of the store stands (opaque: a row id on SQLite, a transaction id horizon on
/// PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedPosition(pub(crate) i64);

/// What every backend of the lineage store answers (see the module docs for the rules they share).
/// [`super::Store`] dispatches each call to the backend it holds. Its business keys and its feed
/// are traits of their own, each implemented in the backend's `keys` and `feed` modules.
pub trait LineageStore: BusinessKeys + StoreFeed + SpanStore {
    /// Writes a batch in one transaction, idempotently (see the module docs).
    fn write_batch(
        &self,
        batch: &[EventRecord],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// The full event `id`.
    fn event(&self, id: &str) -> impl Future<Output = Result<Option<EventRow>, StoreError>> + Send;

    /// Every delivery of event `id`, in offset order.
    fn deliveries(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<DeliveryRow>, StoreError>> + Send;

    /// Summaries of the given events (those that exist).
    fn summaries(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<SummaryRow>, StoreError>> + Send;

    /// Events whose causation id is one of `ids`.
    fn children(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<SummaryRow>, StoreError>> + Send;

    /// Every event produced in span `(trace, span)`, in time order, the span's first event
    /// included: the span rule takes that first event as the cause of the others that name none
    /// (their producer propagated the cause's context unchanged; see docs/lineage.md).
    fn same_span(
        &self,
        trace_id: &str,
        span_id: &str,
    ) -> impl Future<Output = Result<Vec<SummaryRow>, StoreError>> + Send;

    /// Events of any of the given `(trace, span)` pairs, in time order.
    fn same_spans(
        &self,
        spans: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<SummaryRow>, StoreError>> + Send;

    /// Events of a correlation (including its root, whose id it is), in time order.
    fn by_correlation(
        &self,
        id: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<SummaryRow>, StoreError>> + Send;

    /// Events of a trace, in time order.
    fn by_trace(
        &self,
        trace_id: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<SummaryRow>, StoreError>> + Send;

    /// A page of events matching `filter`, newest first.
    fn search(
        &self,
        filter: &SearchFilter,
    ) -> impl Future<Output = Result<Vec<SummaryRow>, StoreError>> + Send;

    /// Every business-key name seen, in order.
    fn key_names(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Events per (service, topic) produced in `[from_us, to_us)`.
    fn produce_counts(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> impl Future<Output = Result<Vec<ProduceRow>, StoreError>> + Send;

    /// Reactions in `[from_us, to_us)` with their cause's topic and hop time, at most `limit`.
    fn hops(
        &self,
        from_us: i64,
        to_us: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<HopRow>, StoreError>> + Send;

    /// The dead letters of the events `ids` (by the failed event's id), oldest first.
    fn dead_letters_of(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<DeadLetterRow>, StoreError>> + Send;

    /// Dead letters stored at or after `ingested_from_us`, in the order stored, at most `limit`.
    fn dead_letters_since(
        &self,
        ingested_from_us: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<DeadLetterRow>, StoreError>> + Send;

    /// How many events and deliveries the store holds.
    fn counts(&self) -> impl Future<Output = Result<StoreCounts, StoreError>> + Send;

    /// A cheap round trip, for readiness checks.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Flushes and closes the store.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// How a backend keeps business keys (each its own way: SQLite a table, PostgreSQL an array).
pub trait BusinessKeys {
    /// The business keys of the given events.
    fn keys_of(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<KeyRow>, StoreError>> + Send;

    /// Events carrying business key `name = value`, in time order.
    fn by_key(
        &self,
        name: &str,
        value: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<SummaryRow>, StoreError>> + Send;

    /// Whether some event carries business key `name = value` (one index probe).
    fn has_key(
        &self,
        name: &str,
        value: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// How a backend keeps OpenTelemetry spans (`collector/src/span`): the reads are shared SQL
/// (`shared_spans`), the write each store's own.
pub trait SpanStore {
    /// Writes spans and their links in one transaction; a span already stored (a retried export)
    /// is left as it is. Returns how many were new.
    fn write_spans(
        &self,
        spans: &[SpanRecord],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Whether any span is stored (one index probe): answers over a store without spans skip
    /// the span rules.
    fn has_spans(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The spans `(trace id, span id)` (those stored).
    fn spans(
        &self,
        ids: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<SpanRow>, StoreError>> + Send;

    /// The spans whose parent is one of `parents`.
    fn span_children(
        &self,
        parents: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<SpanRow>, StoreError>> + Send;

    /// The links of the spans `ids`.
    fn links_from(
        &self,
        ids: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<LinkRow>, StoreError>> + Send;

    /// The links that point at one of the spans `targets`.
    fn links_to(
        &self,
        targets: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<LinkRow>, StoreError>> + Send;

    /// Consumer spans that name one of the record positions `(topic, partition, offset)`.
    fn consumer_spans_at(
        &self,
        positions: &[(String, i32, i64)],
    ) -> impl Future<Output = Result<Vec<SpanRow>, StoreError>> + Send;

    /// Failed spans stored at or after `received_from_us`, oldest first, at most `limit`.
    fn failed_spans_since(
        &self,
        received_from_us: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<SpanRow>, StoreError>> + Send;

    /// Spans per service that started at or after `from_us`.
    fn span_services(
        &self,
        from_us: i64,
    ) -> impl Future<Output = Result<Vec<SpanServiceRow>, StoreError>> + Send;

    /// How the newest `sample` events in `[from_us, to_us)` arrive, per producing service.
    fn coverage(
        &self,
        from_us: i64,
        to_us: i64,
        sample: i64,
    ) -> impl Future<Output = Result<Vec<CoverageRow>, StoreError>> + Send;

    /// The names of the `baggage` entries on the newest `sample` events of `service` (by
    /// `ce_source`) in `[from_us, to_us)`, raw header values.
    fn baggage_of(
        &self,
        service: &str,
        from_us: i64,
        to_us: i64,
        sample: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Consumer spans that started in `[from_us, to_us)` per topic they name and service: the
    /// consume edges of the map known from spans.
    fn consumer_span_counts(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> impl Future<Output = Result<Vec<ConsumeRow>, StoreError>> + Send;

    /// Deletes spans (and their links) that started before `before_us`; returns how many.
    fn prune_spans(&self, before_us: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// What a backend has stored since a position, for a live feed that follows the store.
pub trait StoreFeed {
    /// The position after everything stored so far (a follower starting now begins here; see
    /// [`FeedPosition`]).
    fn feed_position(&self) -> impl Future<Output = Result<FeedPosition, StoreError>> + Send;

    /// Events stored after `from`, in the order they were stored, and the position after them:
    /// each event once however often this is called. SQLite returns at most `limit` at a time
    /// (call again for the rest); PostgreSQL every event of the transactions that ended since.
    fn stored_after(
        &self,
        from: FeedPosition,
        limit: i64,
    ) -> impl Future<Output = Result<(Vec<StoredEvent>, FeedPosition), StoreError>> + Send;
}

/// What the collector outside the store tunes by database, so that nothing there matches on
/// the backend. The figures behind each value are in docs/benchmarks.md (runs 11–14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreProfile {
    /// Which database: `sqlite` or `postgres`.
    pub kind: &'static str,
    /// How much librdkafka may fetch ahead of the ingest loop (`queued.max.messages.kbytes`):
    /// enough to keep the loop fed at the store's pace, and no more. SQLite takes 100 000+
    /// records/s here and a 4 MiB queue starved it; PostgreSQL takes ~40 000/s, which 4 MiB feeds
    /// as well as 16, with 30–40 MiB less peak RSS.
    pub fetch_queue_kbytes: u32,
    /// mimalloc's purge delay while collecting into this store (ms), when it differs from the
    /// collector's default ([`crate::memory::PURGE_DELAY_MS`]): PostgreSQL ingest is bound by the
    /// server, not the collector's CPU, and holds two batches in flight, so freed memory is
    /// returned at once there (14–24 MiB less peak RSS at the same rate).
    pub purge_delay_ms: Option<i64>,
    /// How many batch writes are worth running at once: one for SQLite (a single writing
    /// connection), two for PostgreSQL, whose server works on one batch while the other is on
    /// the wire or waiting for its commit. Concurrent writes of one id are safe: the store's rules
    /// are per statement.
    pub write_concurrency: usize,
}

impl StoreProfile {
    /// The SQLite store's profile.
    pub const SQLITE: Self = Self {
        kind: "sqlite",
        fetch_queue_kbytes: 16 * 1024,
        purge_delay_ms: None,
        write_concurrency: 1,
    };
    /// The PostgreSQL store's profile.
    pub const POSTGRES: Self = Self {
        kind: "postgres",
        fetch_queue_kbytes: 4 * 1024,
        purge_delay_ms: Some(0),
        write_concurrency: 2,
    };
}

/// What retention ([`crate::retention`]) asks of a backend: deletions in short transactions,
/// each bounded by `limit` rows, and what the store weighs and holds.
pub trait RetentionStore {
    /// Deletes, in one transaction, at most `limit` of the oldest events whose time is before
    /// `before_us`, with every row hanging off them (deliveries, business keys, problem rows);
    /// returns how many events went. Picked through the index on `time_us`, so a call costs the
    /// same however large the store.
    fn delete_events_before(
        &self,
        before_us: i64,
        limit: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes, in one transaction, at most `limit` dead-letter copies stored before
    /// `before_us`; returns how many went.
    fn delete_dead_letters_before(
        &self,
        before_us: i64,
        limit: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Bytes the store takes: SQLite, the database's pages less its free list; PostgreSQL, the
    /// total relation size (indexes and TOAST included) of the store's tables.
    fn size_bytes(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The time of the oldest event kept (µs since the epoch), none when the store is empty.
    fn oldest_event_us(&self) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
}
