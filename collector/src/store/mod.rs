//! The lineage store: SQLite by default, PostgreSQL at scale, one behaviour.
//!
//! Writes are idempotent. A delivery is identified by `(topic, partition, offset)`: a re-delivered
//! record (a restart or a rebalance) inserts nothing. An event is identified by its id: the same id
//! arriving at a second offset is a second *delivery* of one event, counted in `delivery_count` and
//! flagged `duplicate_publish`. Causation edges are never materialised: they are resolved when
//! queried, so the order in which causes and reactions arrive does not matter.
//!
//! # Layout
//! - `contract`: [`LineageStore`], what every backend answers (the compiler keeps their
//!   signatures equal), with [`StoreError`], [`WriteOutcome`] and [`StoreProfile`]; and
//!   [`RetentionStore`], the deletions and sizes retention needs.
//! - `failure`: [`FailureKind`], why a call failed (a full disk, a read-only database, a server
//!   out of reach), as the log, the metrics and `/healthz` name it.
//! - [`Store`]: the backend chosen by URL, and what the rest of the collector calls.
//! - [`rows`]: the rows answered and the search filter.
//! - `shared_sql`: the SQL both databases run, written once.
//! - [`sqlite`], [`postgres`]: one folder per database, with its own migrations under
//!   `migrations/sqlite` and `migrations/postgres`. Only each store's type is public.

mod contract;
mod failure;
mod known_names;
pub mod postgres;
pub mod rows;
mod shared_spans;
mod shared_sql;
pub mod span_rows;
pub mod sqlite;

use crate::record::EventRecord;

pub use contract::{
    BusinessKeys, FeedPosition, LineageStore, RetentionStore, SpanStore, StoreCounts, StoreError,
    StoreFeed, StoreProfile, TopicOutcome, WriteOutcome,
};
pub use failure::FailureKind;
pub use rows::{
    DeadLetterRow, DeliveryRow, EventRow, HopRow, KeyRow, ProduceRow, SearchFilter, StoredEvent,
    SummaryRow, ANY_PROBLEM,
};
pub use span_rows::{ConsumeRow, CoverageRow, LinkRow, SpanRow, SpanServiceRow};
pub use sqlite::memory::{allocate_with_mimalloc, disable_memory_statistics};

/// The problem kinds an event's `problems` column names, and `duplicate_publish` (recorded as
/// a problem row only).
pub(crate) fn problem_kinds(problems: &str) -> std::collections::BTreeSet<String> {
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: String,
    }
    let mut kinds: std::collections::BTreeSet<String> = serde_json::from_str::<Vec<Kind>>(problems)
        .map(|v| v.into_iter().map(|k| k.kind).collect())
        .unwrap_or_default();
    kinds.insert("duplicate_publish".to_owned());
    kinds
}

/// A lineage store.
#[derive(Debug, Clone)]
pub enum Store {
    /// SQLite (WAL), the default.
    Sqlite(sqlite::SqliteStore),
    /// PostgreSQL.
    Postgres(postgres::PgStore),
}

/// Calls the same method on whichever database backs the store.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Sqlite(s) => s.$method($($arg),*).await,
            Store::Postgres(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`: `sqlite://PATH` or
    /// `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(sqlite::SqliteStore::open(url).await?))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres(postgres::PgStore::connect(url).await?))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Which database backs the store: `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        self.profile().kind
    }

    /// How the rest of the collector runs against this store (see [`StoreProfile`]).
    pub fn profile(&self) -> StoreProfile {
        match self {
            Store::Sqlite(_) => StoreProfile::SQLITE,
            Store::Postgres(_) => StoreProfile::POSTGRES,
        }
    }

    /// Writes a batch in one transaction, idempotently (see the module docs).
    pub async fn write_batch(&self, batch: &[EventRecord]) -> Result<WriteOutcome, StoreError> {
        dispatch!(self.write_batch(batch))
    }

    /// The full event `id`.
    pub async fn event(&self, id: &str) -> Result<Option<EventRow>, StoreError> {
        dispatch!(self.event(id))
    }

    /// Every delivery of event `id`, in offset order.
    pub async fn deliveries(&self, id: &str) -> Result<Vec<DeliveryRow>, StoreError> {
        dispatch!(self.deliveries(id))
    }

    /// The business keys of the given events.
    pub async fn keys_of(&self, ids: &[String]) -> Result<Vec<KeyRow>, StoreError> {
        dispatch!(self.keys_of(ids))
    }

    /// Summaries of the given events (those that exist).
    pub async fn summaries(&self, ids: &[String]) -> Result<Vec<SummaryRow>, StoreError> {
        dispatch!(self.summaries(ids))
    }

    /// Events whose causation id is one of `ids`.
    pub async fn children(&self, ids: &[String]) -> Result<Vec<SummaryRow>, StoreError> {
        dispatch!(self.children(ids))
    }

    /// Every event produced in span `(trace, span)`, in time order, the span's first event
    /// included: the span rule takes that first event as the cause of the others that name none
    /// (their producer propagated the cause's context unchanged; see docs/lineage.md).
    pub async fn same_span(
        &self,
        trace_id: &str,
        span_id: &str,
    ) -> Result<Vec<SummaryRow>, StoreError> {
        dispatch!(self.same_span(trace_id, span_id))
    }

    /// Events of any of the given `(trace, span)` pairs, in time order.
    pub async fn same_spans(
        &self,
        spans: &[(String, String)],
    ) -> Result<Vec<SummaryRow>, StoreError> {
        dispatch!(self.same_spans(spans))
    }

    /// Events of a correlation (including its root, whose id it is), in time order.
    pub async fn by_correlation(
        &self,
        id: &str,
        limit: i64,
    ) -> Result<Vec<SummaryRow>, StoreError> {
        dispatch!(self.by_correlation(id, limit))
    }

    /// Events of a trace, in time order.
    pub async fn by_trace(
        &self,
        trace_id: &str,
        limit: i64,
    ) -> Result<Vec<SummaryRow>, StoreError> {
        dispatch!(self.by_trace(trace_id, limit))
    }

    /// Events carrying business key `name = value`, in time order.
    pub async fn by_key(
        &self,
        name: &str,
        value: &str,
        limit: i64,
    ) -> Result<Vec<SummaryRow>, StoreError> {
        dispatch!(self.by_key(name, value, limit))
    }

    /// A page of events matching `filter`, newest first.
    pub async fn search(&self, filter: &SearchFilter) -> Result<Vec<SummaryRow>, StoreError> {
        dispatch!(self.search(filter))
    }

    /// Every business-key name seen, in order.
    pub async fn key_names(&self) -> Result<Vec<String>, StoreError> {
        dispatch!(self.key_names())
    }

    /// Those of `names` under which `value` is a key of some event: one index probe per name.
    pub async fn names_with_value(
        &self,
        names: &[String],
        value: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for name in names {
            if dispatch!(self.has_key(name, value))? {
                out.push(name.clone());
            }
        }
        Ok(out)
    }

    /// Events per (service, topic) produced in `[from_us, to_us)`.
    pub async fn produce_counts(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<ProduceRow>, StoreError> {
        dispatch!(self.produce_counts(from_us, to_us))
    }

    /// Reactions in `[from_us, to_us)` with their cause's topic and hop time, at most `limit`.
    pub async fn hops(
        &self,
        from_us: i64,
        to_us: i64,
        limit: i64,
    ) -> Result<Vec<HopRow>, StoreError> {
        dispatch!(self.hops(from_us, to_us, limit))
    }

    /// The dead letters of the events `ids` (by the failed event's id), oldest first.
    pub async fn dead_letters_of(&self, ids: &[String]) -> Result<Vec<DeadLetterRow>, StoreError> {
        dispatch!(self.dead_letters_of(ids))
    }

    /// Dead letters stored at or after `ingested_from_us`, in the order stored, at most `limit`.
    pub async fn dead_letters_since(
        &self,
        ingested_from_us: i64,
        limit: i64,
    ) -> Result<Vec<DeadLetterRow>, StoreError> {
        dispatch!(self.dead_letters_since(ingested_from_us, limit))
    }

    /// How many events and deliveries the store holds.
    pub async fn counts(&self) -> Result<StoreCounts, StoreError> {
        dispatch!(self.counts())
    }

    /// Flushes and closes the store: for SQLite, the write-ahead log is folded into the database
    /// and truncated, so a stopped collector leaves one self-contained file.
    pub async fn close(&self) {
        dispatch!(self.close())
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self.ping())
    }

    /// The position after everything stored so far (a follower starting now begins here; see
    /// [`FeedPosition`]).
    pub async fn feed_position(&self) -> Result<FeedPosition, StoreError> {
        dispatch!(self.feed_position())
    }

    /// Events stored after `from`, in the order they were stored, and the position after them:
    /// each event once however often this is called. SQLite returns at most `limit` at a time
    /// (call again for the rest); PostgreSQL every event of the transactions that ended since.
    pub async fn stored_after(
        &self,
        from: FeedPosition,
        limit: i64,
    ) -> Result<(Vec<StoredEvent>, FeedPosition), StoreError> {
        dispatch!(self.stored_after(from, limit))
    }

    /// Writes spans and their links in one transaction; returns how many were new (see
    /// [`SpanStore::write_spans`]).
    pub async fn write_spans(
        &self,
        spans: &[crate::span::SpanRecord],
    ) -> Result<usize, StoreError> {
        dispatch!(self.write_spans(spans))
    }

    /// Whether any span is stored.
    pub async fn has_spans(&self) -> Result<bool, StoreError> {
        dispatch!(self.has_spans())
    }

    /// The spans `(trace id, span id)` that are stored.
    pub async fn spans(&self, ids: &[(String, String)]) -> Result<Vec<SpanRow>, StoreError> {
        dispatch!(self.spans(ids))
    }

    /// The spans whose parent is one of `parents`.
    pub async fn span_children(
        &self,
        parents: &[(String, String)],
    ) -> Result<Vec<SpanRow>, StoreError> {
        dispatch!(self.span_children(parents))
    }

    /// The links of the spans `ids`.
    pub async fn links_from(&self, ids: &[(String, String)]) -> Result<Vec<LinkRow>, StoreError> {
        dispatch!(self.links_from(ids))
    }

    /// The links that point at one of `targets`.
    pub async fn links_to(&self, targets: &[(String, String)]) -> Result<Vec<LinkRow>, StoreError> {
        dispatch!(self.links_to(targets))
    }

    /// Consumer spans that name one of the record positions `(topic, partition, offset)`.
    pub async fn consumer_spans_at(
        &self,
        positions: &[(String, i32, i64)],
    ) -> Result<Vec<SpanRow>, StoreError> {
        dispatch!(self.consumer_spans_at(positions))
    }

    /// Failed spans stored at or after `received_from_us`, oldest first, at most `limit`.
    pub async fn failed_spans_since(
        &self,
        received_from_us: i64,
        limit: i64,
    ) -> Result<Vec<SpanRow>, StoreError> {
        dispatch!(self.failed_spans_since(received_from_us, limit))
    }

    /// Spans per service that started at or after `from_us`.
    pub async fn span_services(&self, from_us: i64) -> Result<Vec<SpanServiceRow>, StoreError> {
        dispatch!(self.span_services(from_us))
    }

    /// How the newest `sample` events in `[from_us, to_us)` arrive, per producing service.
    pub async fn coverage(
        &self,
        from_us: i64,
        to_us: i64,
        sample: i64,
    ) -> Result<Vec<CoverageRow>, StoreError> {
        dispatch!(self.coverage(from_us, to_us, sample))
    }

    /// The headers (as stored, JSON) of the newest `sample` events of `service` in
    /// `[from_us, to_us)` that carry a `baggage` header.
    pub async fn baggage_of(
        &self,
        service: &str,
        from_us: i64,
        to_us: i64,
        sample: i64,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self.baggage_of(service, from_us, to_us, sample))
    }

    /// Consumer spans that started in `[from_us, to_us)` per topic and service.
    pub async fn consumer_span_counts(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<ConsumeRow>, StoreError> {
        dispatch!(self.consumer_span_counts(from_us, to_us))
    }

    /// Deletes the spans that started before `before_us`, with their links.
    pub async fn prune_spans(&self, before_us: i64) -> Result<u64, StoreError> {
        dispatch!(self.prune_spans(before_us))
    }

    /// Deletes at most `limit` of the oldest events before `before_us`, with their rows, in one
    /// transaction (see [`RetentionStore::delete_events_before`]).
    pub async fn delete_events_before(
        &self,
        before_us: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        dispatch!(self.delete_events_before(before_us, limit))
    }

    /// Deletes at most `limit` dead-letter copies stored before `before_us`, in one transaction.
    pub async fn delete_dead_letters_before(
        &self,
        before_us: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        dispatch!(self.delete_dead_letters_before(before_us, limit))
    }

    /// Bytes the store takes (see [`RetentionStore::size_bytes`]).
    pub async fn size_bytes(&self) -> Result<u64, StoreError> {
        dispatch!(self.size_bytes())
    }

    /// The time of the oldest event kept, none when the store is empty.
    pub async fn oldest_event_us(&self) -> Result<Option<i64>, StoreError> {
        dispatch!(self.oldest_event_us())
    }
}

#[cfg(test)]
mod tests {
    use super::problem_kinds;

    #[test]
    fn an_event_s_problem_rows_are_found_from_its_problems_column() {
        let kinds = problem_kinds(r#"[{"kind":"invalid_traceparent","detail":"x"}]"#);
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["duplicate_publish", "invalid_traceparent"]
        );
    }
}
