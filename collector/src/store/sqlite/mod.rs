//! The SQLite store (WAL), the default: reads through a sqlx pool and, for lineage walks, a few
//! read-only rusqlite connections (`read`); writes through one dedicated rusqlite connection
//! (`write`); the write-ahead log checkpointed in the background.
//!
//! # Layout
//! - `keys`: business keys (JSON on the event row, rows of `event_keys`).
//! - `trace_index`: the index of trace id suffixes by generation, and its lookups.
//! - `read`, `write`, `statement`: the rusqlite read and write paths and their prepared statements.
//! - `memory`: SQLite's process-wide memory settings.
//! - `feed`: what was stored since a position, for `serve`'s live feed.
//! - `retention`: deletions of old events through the writing connection, and the store's size.

mod feed;
mod keys;
pub(crate) mod memory;
mod read;
mod retention;
mod spans;
mod statement;
pub(crate) mod trace_index;
mod write;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, QueryBuilder, Sqlite, SqlitePool};

use super::contract::{LineageStore, StoreCounts, StoreError, WriteOutcome};
use super::rows::{
    DeadLetterRow, DeliveryRow, EventRow, HopRow, ProduceRow, SearchFilter, SummaryRow, ANY_PROBLEM,
};
use super::shared_sql::{shared_lookups, DEAD_LETTER_COLUMNS, IN_CHUNK, SUMMARY_COLUMNS};
use crate::record::EventRecord;
use read::SqliteReader;
use trace_index::push_trace_is;
use write::SqliteWriter;

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

/// The SQLite store: reads through a pool, writes through one dedicated connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqliteWriter,
    reader: SqliteReader,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the SQLite store at `url` (`sqlite://PATH`).
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        // Several processes may open one new file at once (collector and `serve`): switching
        // it to WAL can meet "database is locked" before the busy timeout applies, and
        // SQLite's migrator takes no lock, so the loser of that race fails on an existing
        // table. Opening again succeeds: the migration is then recorded and skipped.
        let mut attempt = 0;
        loop {
            match Self::open_once(url).await {
                Ok(store) => return Ok(store),
                Err(e) if attempt < 10 && !matches!(e, StoreError::UnsupportedUrl(_)) => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "opening sqlite store failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn open_once(url: &str) -> Result<Self, StoreError> {
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
        Ok(Self::new(pool, writer, reader))
    }

    /// The connection pool (reads, migrations and checkpoints).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

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
}

impl LineageStore for SqliteStore {
    shared_lookups!(Sqlite);

    /// Summaries of the given events (through the read-only connections).
    async fn summaries(&self, ids: &[String]) -> Result<Vec<SummaryRow>, StoreError> {
        self.reader.summaries_where_in("event_id", ids).await
    }

    /// Events caused by one of `ids`.
    async fn children(&self, ids: &[String]) -> Result<Vec<SummaryRow>, StoreError> {
        self.reader.summaries_where_in("causation_id", ids).await
    }

    /// Events of any of the spans `(trace_id, span_id)`, in time order.
    async fn same_spans(&self, spans: &[(String, String)]) -> Result<Vec<SummaryRow>, StoreError> {
        self.reader.same_spans(spans).await
    }

    /// Writes a batch in one transaction, idempotently (on the writer's blocking thread).
    async fn write_batch(&self, batch: &[EventRecord]) -> Result<WriteOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        self.writer.write_batch(batch).await
    }

    /// Folds the write-ahead log into the database and truncates it, so a stopped collector
    /// leaves one self-contained file.
    async fn close(&self) {
        // The background checkpointer may be running a checkpoint of its own: this one then
        // fails with SQLITE_BUSY, or reports `busy` without truncating. Try again for a while
        // (a stop right after a burst once left a 400 MB log behind).
        let mut last = None;
        for _ in 0..50 {
            let result: Result<(i64, i64, i64), _> =
                sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(self.pool())
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
        self.pool().close().await;
    }
}
