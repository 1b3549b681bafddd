//! The SQL both databases run, generated once for each pool type by `sql_store!` so that SQLite
//! and PostgreSQL cannot drift apart. Placeholders come from `QueryBuilder::push_bind`, which
//! writes each database's own syntax. The exceptions are the writes (each store's fastest way) and
//! the business keys, which PostgreSQL keeps on the event row (`pg_keys`) and SQLite in
//! `event_keys` (below); the store suite holds both to the same answers.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::{PgPool, Postgres, QueryBuilder, Sqlite, SqlitePool};

use super::known_names::KnownNames;
use super::pg_keys;
use super::sqlite_read::SqliteReader;
use super::sqlite_write::SqliteWriter;
use super::{StoreCounts, StoreError, WriteOutcome};
use crate::record::EventRecord;

/// Rows per multi-row INSERT: under SQLite's 32 766 and PostgreSQL's 65 535 bind limits.
const EVENT_CHUNK: usize = 1000;
const SMALL_CHUNK: usize = 2000;
/// Ids per `IN (…)` list.
pub(super) const IN_CHUNK: usize = 500;

/// Columns of [`SummaryRow`], in order.
pub(super) const SUMMARY_COLUMNS: &str =
    "e.event_id, e.event_type, e.source, e.topic, e.kafka_partition, \
    e.kafka_offset, e.time_us, e.causation_id, e.correlation_id, e.trace_id, e.span_id, e.subject, \
    e.problem_count, e.delivery_count";

/// What SQLite's trace index holds of a trace id (migration `0005`): its last 8 characters, as
/// `substr(trace_id, -8)` gives them.
pub(super) fn trace_suffix(trace_id: &str) -> &str {
    trace_id
        .char_indices()
        .rev()
        .nth(7)
        .map_or(trace_id, |(start, _)| &trace_id[start..])
}

/// A generation of the SQLite trace index (migration `0006`) is a run of `2^GENERATION_BITS`
/// stored events: a batch's rows get the row id before it shifted right by this many bits, so
/// inserts land in the newest generation's part of the index whatever the store's size.
pub(super) const GENERATION_BITS: u32 = 16;

/// The greatest row id of the SQLite events (0 when empty): what the writer's batch takes its
/// [`generation`] from, lookups their newest generation, and the store's live feed its position.
pub(super) const MAX_ROWID: &str = "SELECT coalesce(max(rowid), 0) FROM events";

/// The generation of the rows of a batch written into a table whose greatest row id is
/// `max_rowid` (0 when empty).
pub(super) fn generation(max_rowid: i64) -> i64 {
    max_rowid >> GENERATION_BITS
}

/// `e.generation IN (0 … the newest)`, for a seek of each generation's part of the trace index.
/// The newest is computed as the writer computes it ([`generation`] of [`MAX_ROWID`]), so a
/// row's generation is never above it.
pub(super) fn every_generation() -> String {
    format!(
        "e.generation IN (WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g \
         WHERE n < ({MAX_ROWID}) >> {GENERATION_BITS}) SELECT n FROM g)"
    )
}

/// Spans per span lookup (lists of at most this many values each: trace ids and span ids, and on
/// SQLite the trace ids' suffixes).
pub(super) const SPAN_CHUNK: usize = IN_CHUNK / 2;

/// One chunk of a lookup by `(trace_id, span_id)` pairs: the columns are constrained by `IN` lists
/// of *distinct* values (a database probes an index once per combination of list entries, so
/// repeating the trace id per span cost 250 × 250 probes; PostgreSQL seeks its
/// `(trace_id, span_id)` index, SQLite its index of trace id suffixes, [`trace_suffix`]), and the
/// rows of exactly the asked pairs are kept afterwards.
pub(super) struct SpanChunk<'a> {
    /// Distinct trace ids to bind.
    pub traces: BTreeSet<&'a String>,
    /// Distinct span ids to bind.
    pub spans: BTreeSet<&'a String>,
    wanted: HashSet<(&'a str, &'a str)>,
}

impl<'a> SpanChunk<'a> {
    pub(super) fn new(chunk: &'a [(String, String)]) -> Self {
        Self {
            traces: chunk.iter().map(|(t, _)| t).collect(),
            spans: chunk.iter().map(|(_, s)| s).collect(),
            wanted: chunk
                .iter()
                .map(|(t, s)| (t.as_str(), s.as_str()))
                .collect(),
        }
    }

    /// Whether `e` is of one of the asked pairs.
    pub(super) fn keeps(&self, e: &SummaryRow) -> bool {
        matches!((&e.trace_id, &e.span_id), (Some(t), Some(s)) if self.wanted.contains(&(t.as_str(), s.as_str())))
    }
}

/// Sorts events by (time, id), the order of every list the store returns.
pub(super) fn in_time_order(events: &mut [SummaryRow]) {
    events.sort_by(|a, b| (a.time_us, &a.event_id).cmp(&(b.time_us, &b.event_id)));
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

/// What [`SqliteStore::search`] and [`PgStore::search`] filter on; `None` matches everything.
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

/// The SQLite store: reads through a pool, writes through one dedicated connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqliteWriter,
    reader: SqliteReader,
}

impl SqliteStore {
    /// Wraps a migrated pool and the writing connection on the same file.
    pub fn new(pool: SqlitePool, writer: SqliteWriter, reader: SqliteReader) -> Self {
        Self {
            pool,
            writer,
            reader,
        }
    }

    /// The read-only connections of lineage walks.
    pub fn reader(&self) -> &SqliteReader {
        &self.reader
    }

    /// Summaries of the given events (through the read-only connections).
    pub async fn summaries(&self, ids: &[String]) -> Result<Vec<SummaryRow>, StoreError> {
        Ok(self.reader.summaries_where_in("event_id", ids).await?)
    }

    /// Events caused by one of `ids`.
    pub async fn children(&self, ids: &[String]) -> Result<Vec<SummaryRow>, StoreError> {
        Ok(self.reader.summaries_where_in("causation_id", ids).await?)
    }

    /// Events of any of the spans `(trace_id, span_id)`, in time order.
    pub async fn same_spans(
        &self,
        spans: &[(String, String)],
    ) -> Result<Vec<SummaryRow>, StoreError> {
        Ok(self.reader.same_spans(spans).await?)
    }

    /// Writes a batch in one transaction, idempotently (on the writer's blocking thread).
    pub async fn write_batch(&self, batch: &[EventRecord]) -> Result<WriteOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        Ok(self.writer.write_batch(batch).await?)
    }
}

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    analyze: std::sync::Arc<AnalyzeSchedule>,
    names: std::sync::Arc<KnownNames>,
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
    /// `e.trace_id = trace_id` (its `(trace_id, span_id)` index).
    fn push_trace_is<'a>(qb: &mut QueryBuilder<'a, Postgres>, trace_id: &'a str) {
        qb.push("e.trace_id = ").push_bind(trace_id);
    }

    /// Wraps a migrated pool.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            analyze: Default::default(),
            names: Default::default(),
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

    /// Summaries of the given events.
    pub async fn summaries(&self, ids: &[String]) -> Result<Vec<SummaryRow>, StoreError> {
        self.summaries_where_in("event_id", ids).await
    }

    /// Events caused by one of `ids`.
    pub async fn children(&self, ids: &[String]) -> Result<Vec<SummaryRow>, StoreError> {
        self.summaries_where_in("causation_id", ids).await
    }

    /// Events of any of the spans `(trace_id, span_id)`, in time order (see [`SpanChunk`]).
    pub async fn same_spans(
        &self,
        spans: &[(String, String)],
    ) -> Result<Vec<SummaryRow>, StoreError> {
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

    /// Writes a batch in one transaction, idempotently.
    pub async fn write_batch(&self, batch: &[EventRecord]) -> Result<WriteOutcome, StoreError> {
        let mut outcome = WriteOutcome {
            records: batch.len(),
            ..WriteOutcome::default()
        };
        if batch.is_empty() {
            return Ok(outcome);
        }
        let mut positions = HashSet::new();
        let unique: Vec<&EventRecord> = batch
            .iter()
            .filter(|e| positions.insert((e.topic.as_str(), e.partition, e.offset)))
            .collect();
        let mut tx = self.pool.begin().await?;

        // 1. The first record of each id in the batch creates its event (the usual case: one
        //    statement per 1 000 events, nothing else).
        let mut firsts: Vec<&EventRecord> = Vec::with_capacity(unique.len());
        let mut known: Vec<&EventRecord> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::with_capacity(unique.len());
        for e in unique {
            if seen.insert(e.event_id.as_str()) {
                firsts.push(e);
            } else {
                known.push(e);
            }
        }
        let mut created: HashSet<String> = HashSet::with_capacity(firsts.len());
        for chunk in firsts.chunks(EVENT_CHUNK) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO events (event_id, id_source, topic, kafka_partition, kafka_offset, \
                 record_key, broker_time_us, event_time_us, time_us, event_type, source, subject, \
                 content_type, trace_id, span_id, causation_id, correlation_id, headers, payload, \
                 payload_size, payload_truncated, problems, problem_count, delivery_count, \
                 ingested_at_us, keys) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(&e.event_id)
                    .push_bind(&e.id_source)
                    .push_bind(&e.topic)
                    .push_bind(e.partition)
                    .push_bind(e.offset)
                    .push_bind(e.record_key.as_deref())
                    .push_bind(e.broker_time_us)
                    .push_bind(e.event_time_us)
                    .push_bind(e.time_us)
                    .push_bind(e.event_type.as_deref())
                    .push_bind(e.source.as_deref())
                    .push_bind(e.subject.as_deref())
                    .push_bind(e.content_type.as_deref())
                    .push_bind(e.trace_id.as_deref())
                    .push_bind(e.span_id.as_deref())
                    .push_bind(e.causation_id.as_deref())
                    .push_bind(e.correlation_id.as_deref())
                    .push_bind(&e.headers_json)
                    .push_bind(e.payload.as_deref())
                    .push_bind(e.payload_size)
                    .push_bind(e.payload_truncated)
                    .push_bind(serde_json::to_string(&e.problems).unwrap_or_else(|_| "[]".into()))
                    .push_bind(e.problems.len() as i64)
                    .push_bind(1_i64)
                    .push_bind(e.ingested_at_us)
                    .push_bind(pg_keys::keys_array(e));
            });
            qb.push(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id");
            // A full chunk's statement is prepared once per connection; the other sizes (a
            // batch's last chunk, closed by time) are sent unprepared: each connection's statement
            // cache kept up to 100 of them, a 26 000-placeholder text and its parameter types
            // each, which grew the collector's RSS with every new size (and the server's backends
            // with their plans).
            let rows: Vec<(String,)> = qb
                .build_query_as()
                .persistent(chunk.len() == EVENT_CHUNK)
                .fetch_all(&mut *tx)
                .await?;
            created.extend(rows.into_iter().map(|(id,)| id));
        }
        known.extend(
            firsts
                .iter()
                .filter(|e| !created.contains(e.event_id.as_str())),
        );

        // 2. Records of known ids: a delivery seen before (the event's first position or an extra
        //    one), or a new extra delivery — a duplicate publish.
        let duplicates = extra_deliveries(&mut tx, &known).await?;
        let mut duplicated: Vec<&str> = duplicates.iter().map(|e| e.event_id.as_str()).collect();
        duplicated.sort_unstable();
        duplicated.dedup();
        outcome.new_events = created.len();
        outcome.duplicate_publishes = duplicates.len();
        outcome.new_deliveries = outcome.new_events + outcome.duplicate_publishes;
        outcome.redelivered = batch.len() - outcome.new_deliveries;
        let stored: Vec<&EventRecord> = firsts
            .iter()
            .filter(|e| created.contains(e.event_id.as_str()))
            .chain(duplicates.iter())
            .copied()
            .collect();
        // `stored` is the created events, then the duplicate publishes.
        for (i, e) in stored.iter().enumerate() {
            let topic = outcome.per_topic.entry(e.topic.clone()).or_default();
            topic.new_deliveries += 1;
            topic.duplicate_publishes += usize::from(i >= outcome.new_events);
        }

        // 3. Key names and problem kinds, for lookups (the keys themselves are on the event row).
        let names = self.names.unknown(stored.iter().copied());
        pg_keys::insert_names(&mut tx, &names).await?;
        pg_keys::merge_keys(&mut tx, &duplicates).await?;
        let mut kinds: Vec<(&str, &str)> = stored
            .iter()
            .flat_map(|e| {
                e.problems
                    .iter()
                    .map(|p| (p.kind.as_str(), e.event_id.as_str()))
            })
            .chain(duplicated.iter().map(|id| ("duplicate_publish", *id)))
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        for chunk in kinds.chunks(SMALL_CHUNK) {
            let mut qb =
                QueryBuilder::<Postgres>::new("INSERT INTO event_problems (kind, event_id) ");
            qb.push_values(chunk, |mut b, (kind, id)| {
                b.push_bind(*kind).push_bind(*id);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            // Sizes vary batch to batch: unprepared, like a partial chunk of events above.
            qb.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.names.learn(&names);
        self.maybe_analyze(outcome.new_events as u64).await;
        Ok(outcome)
    }
}

/// Records the records of already stored ids that sit at a position their event does not know
/// yet as extra deliveries (and counts them on the event); returns those, the duplicate
/// publishes. The others are re-deliveries. Usually `known` is empty and nothing is sent.
async fn extra_deliveries<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    known: &[&'a EventRecord],
) -> Result<Vec<&'a EventRecord>, StoreError> {
    if known.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<&str> = known.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let firsts: Vec<(String, String, i32, i64)> = sqlx::query_as(
        "SELECT event_id, topic, kafka_partition, kafka_offset FROM events WHERE event_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let firsts: HashSet<(&str, &str, i32, i64)> = firsts
        .iter()
        .map(|(id, t, p, o)| (id.as_str(), t.as_str(), *p, *o))
        .collect();
    let candidates: Vec<&EventRecord> = known
        .iter()
        .filter(|e| {
            !firsts.contains(&(e.event_id.as_str(), e.topic.as_str(), e.partition, e.offset))
        })
        .copied()
        .collect();
    let mut duplicates = Vec::new();
    for chunk in candidates.chunks(SMALL_CHUNK) {
        let mut qb = QueryBuilder::<Postgres>::new(
            "INSERT INTO deliveries (topic, kafka_partition, kafka_offset, event_id, broker_time_us) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(&e.topic)
                .push_bind(e.partition)
                .push_bind(e.offset)
                .push_bind(&e.event_id)
                .push_bind(e.broker_time_us);
        });
        qb.push(" ON CONFLICT DO NOTHING RETURNING topic, kafka_partition, kafka_offset");
        let inserted: HashSet<(String, i32, i64)> = qb
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        duplicates.extend(
            chunk
                .iter()
                .copied()
                .filter(|e| inserted.contains(&(e.topic.clone(), e.partition, e.offset))),
        );
    }
    let mut per_id: HashMap<&str, i64> = HashMap::new();
    for e in &duplicates {
        *per_id.entry(e.event_id.as_str()).or_default() += 1;
    }
    if !per_id.is_empty() {
        let (ids, counts): (Vec<&str>, Vec<i64>) = per_id.into_iter().unzip();
        sqlx::query(
            "UPDATE events e SET delivery_count = e.delivery_count + n.extra \
             FROM UNNEST($1::text[], $2::bigint[]) AS n(id, extra) WHERE e.event_id = n.id",
        )
        .bind(&ids)
        .bind(&counts)
        .execute(&mut **tx)
        .await?;
    }
    Ok(duplicates)
}

/// The SQLite store's business keys: JSON on each event row (what an event has), and rows of
/// `event_keys` (which events have a key; PostgreSQL's are in `pg_keys`).
impl SqliteStore {
    /// Business keys of the given events.
    pub async fn keys_of(&self, ids: &[String]) -> Result<Vec<KeyRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT event_id, keys FROM events WHERE event_id IN (",
            );
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            qb.push(")");
            let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(&self.pool).await?;
            for (event_id, keys) in rows {
                let keys: Vec<(String, String)> = serde_json::from_str(&keys).map_err(|e| {
                    sqlx::Error::Decode(format!("keys of event {event_id}: {e}").into())
                })?;
                out.extend(keys.into_iter().map(|(name, value)| KeyRow {
                    event_id: event_id.clone(),
                    name,
                    value,
                }));
            }
        }
        out.sort_by(|a, b| (&a.event_id, &a.name, &a.value).cmp(&(&b.event_id, &b.name, &b.value)));
        Ok(out)
    }

    /// Events carrying business key `name = value`, in time order.
    pub async fn by_key(
        &self,
        name: &str,
        value: &str,
        limit: i64,
    ) -> Result<Vec<SummaryRow>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM event_keys k JOIN events e ON e.event_id = k.event_id \
                 WHERE k.name = "
        ));
        qb.push_bind(name);
        qb.push(" AND k.value = ");
        qb.push_bind(value);
        qb.push(" ORDER BY e.time_us, e.event_id LIMIT ");
        qb.push_bind(limit);
        Ok(qb.build_query_as().fetch_all(&self.pool).await?)
    }

    /// Distinct business-key names, in order (the `key_names` table the writer fills).
    pub async fn key_names(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM key_names ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// Whether some event carries business key `name = value` (one index probe).
    pub async fn has_key(&self, name: &str, value: &str) -> Result<bool, StoreError> {
        let found: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM event_keys WHERE name = ? AND value = ? LIMIT 1")
                .bind(name)
                .bind(value)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// `e.trace_id = trace_id`, through the index of trace id suffixes by generation (migrations
    /// `0005` and `0006`: one seek per generation, [`every_generation`]). The `+` keeps an older
    /// SQLite (3.40 seen) from substituting the bound id into `substr(…)` (constant propagation),
    /// which then no longer matches the indexed expression and scans the whole index; the bundled
    /// one does not, and the plan is tested.
    fn push_trace_is<'a>(qb: &mut QueryBuilder<'a, Sqlite>, trace_id: &'a str) {
        qb.push(every_generation())
            .push(" AND substr(e.trace_id, -8) = ")
            .push_bind(trace_suffix(trace_id))
            .push(" AND +e.trace_id = ")
            .push_bind(trace_id);
    }

    /// For `search`: events carrying `value` under one of `names` (rows of `event_keys`).
    fn push_key_filter(qb: &mut QueryBuilder<'_, Sqlite>, names: &[String], value: &str) {
        qb.push(" AND e.event_id IN (SELECT k.event_id FROM event_keys k WHERE k.name IN (");
        let mut list = qb.separated(", ");
        for name in names {
            list.push_bind(name.clone());
        }
        qb.push(") AND k.value = ")
            .push_bind(value.to_owned())
            .push(")");
    }
}

macro_rules! sql_store {
    ($store:ident, $db:ty, $pool:ty) => {
        impl $store {
            /// The connection pool (reads; for SQLite, also migrations and checkpoints).
            pub fn pool(&self) -> &$pool {
                &self.pool
            }

            /// The full event `id`.
            pub async fn event(&self, id: &str) -> Result<Option<EventRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new("SELECT * FROM events WHERE event_id = ");
                qb.push_bind(id);
                Ok(qb.build_query_as().fetch_optional(&self.pool).await?)
            }

            /// Every delivery of event `id`.
            pub async fn deliveries(&self, id: &str) -> Result<Vec<DeliveryRow>, StoreError> {
                // The first delivery is the event's own position; `deliveries` holds the others.
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT topic, kafka_partition, kafka_offset, broker_time_us FROM events WHERE event_id = ",
                );
                qb.push_bind(id);
                qb.push(" UNION ALL SELECT topic, kafka_partition, kafka_offset, broker_time_us FROM deliveries WHERE event_id = ");
                qb.push_bind(id);
                qb.push(" ORDER BY 1, 2, 3");
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Events without a causation id produced in span `(trace_id, span_id)`.
            pub async fn same_span(&self, trace_id: &str, span_id: &str) -> Result<Vec<SummaryRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {SUMMARY_COLUMNS} FROM events e WHERE "
                ));
                Self::push_trace_is(&mut qb, trace_id);
                qb.push(" AND e.span_id = ");
                qb.push_bind(span_id);
                qb.push(" ORDER BY e.time_us, e.event_id");
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Events of a correlation, root included, in time order.
            pub async fn by_correlation(&self, id: &str, limit: i64) -> Result<Vec<SummaryRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT * FROM (SELECT {SUMMARY_COLUMNS} FROM events e WHERE e.correlation_id = "
                ));
                qb.push_bind(id);
                qb.push(format!(" UNION SELECT {SUMMARY_COLUMNS} FROM events e WHERE e.event_id = "));
                qb.push_bind(id);
                qb.push(") u ORDER BY time_us, event_id LIMIT ");
                qb.push_bind(limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Events of a trace, in time order.
            pub async fn by_trace(&self, trace_id: &str, limit: i64) -> Result<Vec<SummaryRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {SUMMARY_COLUMNS} FROM events e WHERE "
                ));
                Self::push_trace_is(&mut qb, trace_id);
                qb.push(" ORDER BY e.time_us, e.event_id LIMIT ");
                qb.push_bind(limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// A page of events matching `filter`, newest first, starting after `filter.before`.
            pub async fn search(&self, filter: &SearchFilter) -> Result<Vec<SummaryRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {SUMMARY_COLUMNS} FROM events e WHERE 1 = 1"));
                if let Some(from) = filter.from_us {
                    qb.push(" AND e.time_us >= ").push_bind(from);
                }
                if let Some(to) = filter.to_us {
                    qb.push(" AND e.time_us < ").push_bind(to);
                }
                if let Some(t) = &filter.event_type {
                    qb.push(" AND e.event_type = ").push_bind(t.clone());
                }
                if let Some(source) = &filter.source {
                    qb.push(" AND e.source = ").push_bind(source.clone());
                }
                if let Some(topic) = &filter.topic {
                    qb.push(" AND e.topic = ").push_bind(topic.clone());
                }
                if let Some((name, value)) = &filter.key {
                    // A value under any name: probe (name, value) once per name seen, rather
                    // than scan every key for the value.
                    let names = match name {
                        Some(name) => vec![name.clone()],
                        None => self.key_names().await?,
                    };
                    if names.is_empty() {
                        qb.push(" AND 1 = 0");
                    } else {
                        Self::push_key_filter(&mut qb, &names, value);
                    }
                }
                if filter.problem.as_deref() == Some(ANY_PROBLEM) {
                    qb.push(" AND e.problem_count > 0");
                } else if let Some(kind) = &filter.problem {
                    qb.push(" AND e.event_id IN (SELECT p.event_id FROM event_problems p WHERE p.kind = ")
                        .push_bind(kind.clone())
                        .push(")");
                }
                if let Some((time, id)) = &filter.before {
                    qb.push(" AND (e.time_us < ").push_bind(*time);
                    qb.push(" OR (e.time_us = ").push_bind(*time);
                    qb.push(" AND e.event_id < ").push_bind(id.clone()).push("))");
                }
                qb.push(" ORDER BY e.time_us DESC, e.event_id DESC LIMIT ").push_bind(filter.limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Events per (source, topic) in the time range: the produce edges of the topology.
            pub async fn produce_counts(&self, from_us: i64, to_us: i64) -> Result<Vec<ProduceRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT e.source, e.topic, COUNT(*) AS events FROM events e WHERE e.time_us >= ",
                );
                qb.push_bind(from_us).push(" AND e.time_us < ").push_bind(to_us);
                qb.push(" GROUP BY e.source, e.topic ORDER BY e.source, e.topic");
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Reactions in the time range with their cause's topic and the hop time: the consume
            /// edges of the topology. At most `limit` rows, most recent first.
            pub async fn hops(&self, from_us: i64, to_us: i64, limit: i64) -> Result<Vec<HopRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT c.topic AS cause_topic, e.source AS source, e.time_us - c.time_us AS latency_us \
                     FROM events e JOIN events c ON c.event_id = e.causation_id WHERE e.time_us >= ",
                );
                qb.push_bind(from_us).push(" AND e.time_us < ").push_bind(to_us);
                qb.push(" ORDER BY e.time_us DESC LIMIT ").push_bind(limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// How many events and deliveries are stored.
            pub async fn counts(&self) -> Result<StoreCounts, StoreError> {
                let (events, deliveries): (i64, i64) = sqlx::query_as(
                    // Every event is one delivery; `deliveries` holds the extra ones.
                    "SELECT e.n, e.n + d.n FROM (SELECT COUNT(*) AS n FROM events) e, \
                     (SELECT COUNT(*) AS n FROM deliveries) d",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(StoreCounts { events, deliveries })
            }

            /// A cheap round trip.
            pub async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}

sql_store!(SqliteStore, Sqlite, SqlitePool);
sql_store!(PgStore, Postgres, PgPool);

/// Asserts a query plan's details (`EXPLAIN QUERY PLAN`) find events by seeking the trace index
/// by generation and suffix, and never scan them.
#[cfg(test)]
pub(super) fn assert_seeks_each_generation(details: &[impl AsRef<str> + std::fmt::Debug]) {
    assert_eq!(
        details.first().map(|d| d.as_ref()),
        Some("SEARCH e USING INDEX events_by_generation_trace (generation=? AND <expr>=?)"),
        "a seek by generation and suffix, not a scan: {details:?}"
    );
    assert!(
        !details.iter().any(|d| d.as_ref().starts_with("SCAN e")),
        "no scan of the events: {details:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_suffix_is_what_sqlite_substr_gives() {
        assert_eq!(trace_suffix("4bf92f3577b34da6a3ce929d0e0e4736"), "0e0e4736");
        assert_eq!(trace_suffix("0e0e4736"), "0e0e4736");
        assert_eq!(trace_suffix("short"), "short");
        assert_eq!(
            trace_suffix("äöüßäöüßä"),
            "öüßäöüßä",
            "characters, not bytes"
        );
    }

    #[tokio::test]
    async fn a_trace_lookup_seeks_each_generation_of_the_trace_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let crate::store::Store::Sqlite(store) = crate::store::Store::connect(&url).await.unwrap()
        else {
            unreachable!("a sqlite url")
        };
        let mut qb =
            QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN SELECT * FROM events e WHERE ");
        SqliteStore::push_trace_is(&mut qb, "4bf92f3577b34da6a3ce929d0e0e4736");
        let plan: Vec<(i64, i64, i64, String)> =
            qb.build_query_as().fetch_all(store.pool()).await.unwrap();
        let details: Vec<&str> = plan.iter().map(|(_, _, _, d)| d.as_str()).collect();
        assert_seeks_each_generation(&details);
    }
}
