//! The SQLite read path of lineage walks: a few read-only rusqlite connections used on a blocking
//! thread, each query answered as one `Vec`.
//!
//! A 1 000-node walk reads about 2 000 summary rows. Through sqlx, each row crossed from its worker
//! thread to the async side on its own (a futex wake-up and a copy of every value per row): half
//! of the walk's CPU, and 84–108 ms p50 over a million events (perf, `benches/query.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::trace_index::{every_generation, trace_suffix};
use crate::store::contract::StoreError;
use crate::store::rows::{in_time_order, SummaryRow};
use crate::store::shared_sql::{SpanChunk, IN_CHUNK, SPAN_CHUNK, SUMMARY_COLUMNS};

/// Idle connections kept for reuse.
const IDLE: usize = 4;

/// Read-only connections for the lineage walk's lookups.
#[derive(Debug, Clone)]
pub struct SqliteReader {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
}

fn summary(row: &rusqlite::Row<'_>) -> rusqlite::Result<SummaryRow> {
    Ok(SummaryRow {
        event_id: row.get(0)?,
        event_type: row.get(1)?,
        source: row.get(2)?,
        topic: row.get(3)?,
        kafka_partition: row.get(4)?,
        kafka_offset: row.get(5)?,
        time_us: row.get(6)?,
        causation_id: row.get(7)?,
        correlation_id: row.get(8)?,
        trace_id: row.get(9)?,
        span_id: row.get(10)?,
        subject: row.get(11)?,
        problem_count: row.get(12)?,
        delivery_count: row.get(13)?,
    })
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The span lookup for `suffixes`, `traces` and `spans` values: a seek by generation and trace id
/// suffix (the index of migrations `0005` and `0006`), then the full ids compared. The `+` keeps
/// an older SQLite (3.40 seen) from substituting the bound trace ids into `substr(…)` (constant
/// propagation), which then no longer matches the indexed expression and scans the whole index.
fn spans_sql(suffixes: usize, traces: usize, spans: usize) -> String {
    format!(
        "SELECT {SUMMARY_COLUMNS} FROM events e WHERE {} AND substr(e.trace_id, -8) IN ({}) \
         AND +e.trace_id IN ({}) AND e.span_id IN ({})",
        every_generation(),
        placeholders(suffixes),
        placeholders(traces),
        placeholders(spans)
    )
}

impl SqliteReader {
    /// Reads the database file at `path` (opened lazily, read-only).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(Duration::from_secs(10))?;
        c.execute_batch("PRAGMA cache_size = -8192;")?;
        Ok(c)
    }

    /// Runs `f` with an idle connection (or a new one) on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.clone();
        tokio::task::spawn_blocking(move || {
            let taken = reader.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let connection = match taken {
                Some(c) => c,
                None => reader.open()?,
            };
            let result = f(&connection);
            let mut idle = reader.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < IDLE {
                idle.push(connection);
            }
            Ok(result?)
        })
        .await
        .map_err(|e| StoreError::Thread(e.to_string()))?
    }

    /// Summaries of the events whose `column` (`event_id` or `causation_id`) is one of `ids`.
    pub async fn summaries_where_in(
        &self,
        column: &'static str,
        ids: &[String],
    ) -> Result<Vec<SummaryRow>, StoreError> {
        let ids = ids.to_vec();
        self.with(move |c| {
            let mut out = Vec::new();
            for chunk in ids.chunks(IN_CHUNK) {
                let sql = format!(
                    "SELECT {SUMMARY_COLUMNS} FROM events e WHERE e.{column} IN ({})",
                    placeholders(chunk.len())
                );
                let mut statement = c.prepare(&sql)?;
                let rows =
                    statement.query_map(rusqlite::params_from_iter(chunk.iter()), summary)?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Events of any of the spans `(trace_id, span_id)`, in time order (see
    /// [`crate::store::Store::same_spans`]).
    pub async fn same_spans(
        &self,
        spans: &[(String, String)],
    ) -> Result<Vec<SummaryRow>, StoreError> {
        let spans = spans.to_vec();
        self.with(move |c| {
            let mut out = Vec::new();
            for chunk in spans.chunks(SPAN_CHUNK) {
                let chunk = SpanChunk::new(chunk);
                let suffixes: BTreeSet<&str> =
                    chunk.traces.iter().map(|t| trace_suffix(t)).collect();
                let sql = spans_sql(suffixes.len(), chunk.traces.len(), chunk.spans.len());
                let mut statement = c.prepare(&sql)?;
                let params = rusqlite::params_from_iter(
                    suffixes
                        .iter()
                        .copied()
                        .chain(chunk.traces.iter().map(|t| t.as_str()))
                        .chain(chunk.spans.iter().map(|s| s.as_str())),
                );
                for row in statement.query_map(params, summary)? {
                    let e = row?;
                    if chunk.keeps(&e) {
                        out.push(e);
                    }
                }
            }
            in_time_order(&mut out);
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn span_lookups_seek_each_generation_of_the_trace_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        crate::store::Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let c = Connection::open(&path).unwrap();
        let plan: Vec<String> = c
            .prepare(&format!("EXPLAIN QUERY PLAN {}", spans_sql(2, 2, 3)))
            .unwrap()
            .query_map(
                rusqlite::params![
                    "1c80319c",
                    "0e0e4736",
                    "0af7651916cd43dd8448eb211c80319c",
                    "4bf92f3577b34da6a3ce929d0e0e4736",
                    "b7ad6b7169203331",
                    "00f067aa0ba902b7",
                    "53995c3f42cd8ad8"
                ],
                |row| row.get::<_, String>(3),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        super::super::trace_index::assert_seeks_each_generation(&plan);
    }
}
