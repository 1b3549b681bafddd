//! The lineage store: SQLite by default, PostgreSQL at scale, one behaviour.
//!
//! Writes are idempotent. A delivery is identified by `(topic, partition, offset)`: a re-delivered
//! record (a restart or a rebalance) inserts nothing. An event is identified by its id: the same id
//! arriving at a second offset is a second *delivery* of one event, counted in `delivery_count` and
//! flagged `duplicate_publish`. Causation edges are never materialised: they are resolved when
//! queried, so the order in which causes and reactions arrive does not matter.
//!
//! Both databases run the same SQL (generated once by `sql_store!`; SQLite's batch writes and the
//! lookups of lineage walks go through rusqlite connections of their own, `sqlite_write` and
//! `sqlite_read`, with the same statements); each has its own migrations
//! under `migrations/sqlite` and `migrations/postgres`.

mod feed;
mod known_names;
mod pg_keys;
mod sql;
mod sqlite_memory;
mod sqlite_read;
mod sqlite_static;
mod sqlite_write;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::ConnectOptions;

use crate::record::EventRecord;

pub use feed::FeedPosition;
pub use sql::{
    DeliveryRow, EventRow, HopRow, KeyRow, PgStore, ProduceRow, SearchFilter, SqliteStore,
    SummaryRow,
};
pub use sqlite_memory::{allocate_with_mimalloc, disable_memory_statistics};
pub use sqlite_read::SqliteReader;
pub use sqlite_write::{SqliteWriteError, SqliteWriter};

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
    /// The SQLite writing connection failed.
    #[error(transparent)]
    SqliteWrite(#[from] SqliteWriteError),
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
    /// The same, per topic.
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

/// WAL frames after which the checkpointer also resets the log: 256 MiB with the store's 16 KiB
/// pages (the figure was chosen at 4 KiB pages, 64 MiB; kept when the pages grew, since a reset
/// briefly waits for the writer).
const WAL_RESET_FRAMES: i64 = 16_384;

/// Copies the SQLite write-ahead log into the database every second, off the writer's path.
/// Passive checkpoints never catch up with a writer that never stops, so once the log passes
/// [`WAL_RESET_FRAMES`] a `TRUNCATE` checkpoint (which briefly waits for the writer) resets it:
/// the log stays bounded. Ends when the pool closes.
async fn checkpoint_wal(pool: sqlx::SqlitePool) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let passive: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await;
        let result = match passive {
            Ok((_, frames, _)) if frames > WAL_RESET_FRAMES => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&pool)
                    .await
                    .map(|_| ())
            }
            other => other.map(|_| ()),
        };
        if let Err(e) = result {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "wal checkpoint failed");
        }
    }
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

/// A lineage store.
#[derive(Debug, Clone)]
pub enum Store {
    /// SQLite (WAL), the default.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
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
            // Several processes may open one new file at once (collector and `serve`): switching
            // it to WAL can meet "database is locked" before the busy timeout applies, and
            // SQLite's migrator takes no lock, so the loser of that race fails on an existing
            // table. Opening again succeeds: the migration is then recorded and skipped.
            let mut attempt = 0;
            loop {
                match Self::open_sqlite(url).await {
                    Ok(store) => return Ok(store),
                    Err(e) if attempt < 10 && !matches!(e, StoreError::UnsupportedUrl(_)) => {
                        attempt += 1;
                        tracing::debug!(error = %e, attempt, "opening sqlite store failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
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
            Ok(Self::Postgres(PgStore::new(pool)))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    async fn open_sqlite(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        if options.get_filename() == std::path::Path::new(":memory:") {
            // The writer's own connection would open a second, empty database.
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL: in WAL mode a committed batch survives a crash of the process, and offsets
            // are committed to Kafka only after it. (FULL would also survive power loss, at about
            // 90 ms of fsync per batch on these machines.)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            // 8 MiB of page cache per connection (4 connections at most): a larger cache measured
            // no faster, and the collector's whole budget is 256 MiB.
            .pragma("cache_size", "-8192")
            .pragma("temp_store", "memory")
            // Checkpoints run in the background (below), not on the writer's commits.
            .pragma("wal_autocheckpoint", "0")
            // 16 KiB pages (for new files; a file keeps the size it was created with): 8 % fewer
            // instructions per written event than 4 KiB (fewer page splits and WAL frames), and
            // key and lineage lookups over a million events no slower (docs/benchmarks.md).
            .page_size(16384)
            .log_statements(log::LevelFilter::Off)
            // sqlx would log each slow statement with its whole text (thousands of placeholders);
            // batch latency is in `choreoscope_batch_write_seconds` instead.
            .log_slow_statements(log::LevelFilter::Off, Duration::from_secs(1));
        let path = options.get_filename().to_owned();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let writer = SqliteWriter::open(&path)?;
        tokio::spawn(checkpoint_wal(pool.clone()));
        let reader = SqliteReader::new(&path);
        Ok(Self::Sqlite(SqliteStore::new(pool, writer, reader)))
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

    /// Events without a causation id whose `traceparent` names the span `(trace, span)`: their
    /// producer propagated the cause's context unchanged (see docs/lineage.md).
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

    /// How many events and deliveries the store holds.
    pub async fn counts(&self) -> Result<StoreCounts, StoreError> {
        dispatch!(self.counts())
    }

    /// Flushes and closes the store: for SQLite, the write-ahead log is folded into the database
    /// and truncated, so a stopped collector leaves one self-contained file.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => {
                // The background checkpointer may be running a checkpoint of its own: this one then
                // fails with SQLITE_BUSY, or reports `busy` without truncating. Try again for a while
                // (a stop right after a burst once left a 400 MB log behind).
                let mut last = None;
                for _ in 0..50 {
                    let result: Result<(i64, i64, i64), _> =
                        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                            .fetch_one(s.pool())
                            .await;
                    match result {
                        Ok((0, _, _)) => {
                            last = None;
                            break;
                        }
                        Ok(_) => last = Some("the log is in use".to_owned()),
                        Err(e) => last = Some(e.to_string()),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if let Some(error) = last {
                    tracing::warn!(%error, "final wal checkpoint failed; the log stays beside the database");
                }
                s.pool().close().await;
            }
            Store::Postgres(s) => s.pool().close().await,
        }
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
    ) -> Result<(Vec<crate::live::StoredEvent>, FeedPosition), StoreError> {
        dispatch!(self.stored_after(from, limit))
    }
}
