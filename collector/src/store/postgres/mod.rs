//! The PostgreSQL store: a pool of connections, batch writes whose new events go in with one
//! binary `COPY` (`write`), business keys as an array on the event row (`keys`), and its own
//! planner statistics refreshed as it grows.
//!
//! # Layout
//! - `write`: the batch write path.
//! - `binary_copy`: rows in `COPY`'s binary format.
//! - `keys`: business keys (the key array under a GIN index, the key names table).
//! - `feed`: what was stored since a position, for `serve`'s live feed.
//! - `retention`: batched deletions of old events on the indexed time column, and the size.

mod binary_copy;
mod feed;
pub(crate) mod keys;
mod retention;
mod spans;
mod write;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Postgres, QueryBuilder};

use super::contract::{LineageStore, StoreCounts, StoreError, WriteOutcome};
use super::known_names::KnownNames;
use super::rows::{
    in_time_order, DeadLetterRow, DeliveryRow, EventRow, HopRow, ProduceRow, SearchFilter,
    SummaryRow, ANY_PROBLEM,
};
use super::shared_sql::{
    shared_lookups, SpanChunk, DEAD_LETTER_COLUMNS, IN_CHUNK, SPAN_CHUNK, SUMMARY_COLUMNS,
};
use crate::record::EventRecord;

/// `e.trace_id = trace_id` (its `(trace_id, span_id)` index).
fn push_trace_is<'a>(qb: &mut QueryBuilder<'a, Postgres>, trace_id: &'a str) {
    qb.push("e.trace_id = ").push_bind(trace_id);
}

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    analyze: std::sync::Arc<AnalyzeSchedule>,
    names: std::sync::Arc<KnownNames>,
    /// Whether the last batch written held event ids stored before: the next one is then written
    /// with `INSERT … ON CONFLICT` straight away instead of a `COPY` likely to fail (`write`).
    met_stored_ids: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// When the PostgreSQL store refreshes its planner statistics itself.
///
/// The lookups bind hundreds of ids; without statistics the planner expects each to match 0.5 % of
/// the table and scans it (a 1 000-node lineage over a million freshly loaded events: 1.6 s instead
/// of milliseconds). Autovacuum refreshes them — when it is on, and a minute or more after a bulk
/// load. The store therefore runs `ANALYZE` on its tables whenever they have grown by a tenth since
/// the last time (at least 50 000 events), as autovacuum's default scale factor would.
#[derive(Debug, Default)]
struct AnalyzeSchedule {
    total: std::sync::atomic::AtomicU64,
    since: std::sync::atomic::AtomicU64,
}

const ANALYZE_AT_LEAST: u64 = 50_000;

impl PgStore {
    /// Connects to and migrates the PostgreSQL store at `url` (`postgres://…`).
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?
            // Lookups bind hundreds of ids (`IN ($1, …)`): a generic plan, cached after five
            // runs, estimates that many parameters as a large fraction of the table and scans
            // it (a 1 000-node lineage took 1.8 s that way over a million events). Plans made
            // for the actual values use the indexes.
            .options([("plan_cache_mode", "force_custom_plan")])
            .log_statements(log::LevelFilter::Off)
            .log_slow_statements(log::LevelFilter::Off, Duration::from_secs(1));
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self::new(pool))
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Wraps a migrated pool.
    fn new(pool: PgPool) -> Self {
        Self {
            pool,
            analyze: Default::default(),
            names: Default::default(),
            met_stored_ids: Default::default(),
        }
    }

    async fn summaries_where_in(
        &self,
        column: &str,
        ids: &[String],
    ) -> Result<Vec<SummaryRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Postgres>::new(format!(
                "SELECT {SUMMARY_COLUMNS} FROM events e WHERE e.{column} IN ("
            ));
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            qb.push(")");
            out.extend(
                qb.build_query_as::<SummaryRow>()
                    .fetch_all(&self.pool)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Counts `events` new events; analyzes the tables when they have grown enough.
    async fn maybe_analyze(&self, events: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let total = self.analyze.total.fetch_add(events, Relaxed) + events;
        let since = self.analyze.since.fetch_add(events, Relaxed) + events;
        if since < ANALYZE_AT_LEAST.max(total / 10) {
            return;
        }
        self.analyze.since.store(0, Relaxed);
        let started = std::time::Instant::now();
        match sqlx::query("ANALYZE events, deliveries, event_problems, key_names")
            .execute(&self.pool)
            .await
        {
            Ok(_) => {
                tracing::debug!(total, took = ?started.elapsed(), "planner statistics refreshed")
            }
            Err(e) => {
                tracing::warn!(error = %e, "ANALYZE failed; lookups may be slow until autovacuum runs")
            }
        }
    }
}

impl LineageStore for PgStore {
    shared_lookups!(Postgres);

    /// Summaries of the given events.
    async fn summaries(&self, ids: &[String]) -> Result<Vec<SummaryRow>, StoreError> {
        self.summaries_where_in("event_id", ids).await
    }

    /// Events caused by one of `ids`.
    async fn children(&self, ids: &[String]) -> Result<Vec<SummaryRow>, StoreError> {
        self.summaries_where_in("causation_id", ids).await
    }

    /// Events of any of the spans `(trace_id, span_id)`, in time order (see `shared_sql::SpanChunk`).
    async fn same_spans(&self, spans: &[(String, String)]) -> Result<Vec<SummaryRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in spans.chunks(SPAN_CHUNK) {
            let chunk = SpanChunk::new(chunk);
            let mut qb = QueryBuilder::<Postgres>::new(format!(
                "SELECT {SUMMARY_COLUMNS} FROM events e WHERE e.trace_id IN ("
            ));
            let mut list = qb.separated(", ");
            for trace in &chunk.traces {
                list.push_bind(trace.as_str());
            }
            qb.push(") AND e.span_id IN (");
            let mut list = qb.separated(", ");
            for span in &chunk.spans {
                list.push_bind(span.as_str());
            }
            qb.push(")");
            let rows = qb
                .build_query_as::<SummaryRow>()
                .fetch_all(&self.pool)
                .await?;
            out.extend(rows.into_iter().filter(|e| chunk.keeps(e)));
        }
        in_time_order(&mut out);
        Ok(out)
    }

    async fn write_batch(&self, batch: &[EventRecord]) -> Result<WriteOutcome, StoreError> {
        PgStore::write_batch(self, batch).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
