//! Retention on SQLite: deletions go through the store's single writing connection, one short
//! transaction a call, so they queue behind (and ahead of) ingest batches rather than competing
//! with them for the database's write lock. Each event is deleted row by row by its keys, as it
//! was written: its deliveries (by the `deliveries_by_event` index), its business keys and problem
//! rows (by their primary keys, rebuilt from the event's `keys` and `problems` columns), then the
//! event. Freed pages go to SQLite's free list and are reused by later writes; the file does not
//! shrink (docs/security.md, "Retention").

use std::sync::Mutex;

use rusqlite::{params, Connection};

use super::SqliteStore;
use crate::store::contract::{RetentionStore, StoreError};
use crate::store::problem_kinds;

const DOOMED: &str = "SELECT event_id, keys, problems FROM events WHERE time_us < ?1 \
     ORDER BY time_us LIMIT ?2";
const DELETE_DELIVERIES: &str = "DELETE FROM deliveries WHERE event_id = ?1";
const DELETE_KEY: &str = "DELETE FROM event_keys WHERE value = ?1 AND name = ?2 AND event_id = ?3";
const DELETE_PROBLEM: &str = "DELETE FROM event_problems WHERE kind = ?1 AND event_id = ?2";
const DELETE_EVENT: &str = "DELETE FROM events WHERE event_id = ?1";
const DELETE_DEAD_LETTERS: &str = "DELETE FROM dead_letters WHERE rowid IN \
     (SELECT rowid FROM dead_letters WHERE ingested_at_us < ?1 ORDER BY ingested_at_us LIMIT ?2)";

fn delete_events(
    connection: &Mutex<Connection>,
    before_us: i64,
    limit: i64,
) -> Result<u64, StoreError> {
    let mut connection = connection
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let doomed: Vec<(String, String, String)> = tx
        .prepare_cached(DOOMED)?
        .query_map(params![before_us, limit], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    {
        let mut deliveries = tx.prepare_cached(DELETE_DELIVERIES)?;
        let mut key = tx.prepare_cached(DELETE_KEY)?;
        let mut problem = tx.prepare_cached(DELETE_PROBLEM)?;
        let mut event = tx.prepare_cached(DELETE_EVENT)?;
        for (id, keys, problems) in &doomed {
            deliveries.execute([id])?;
            let keys: Vec<(String, String)> = serde_json::from_str(keys)
                .map_err(|e| StoreError::Corrupt(format!("keys of event {id}: {e}")))?;
            for (name, value) in &keys {
                key.execute(params![value, name, id])?;
            }
            for kind in problem_kinds(problems) {
                problem.execute(params![kind, id])?;
            }
            event.execute([id])?;
        }
    }
    tx.commit()?;
    Ok(doomed.len() as u64)
}

fn delete_dead_letters(
    connection: &Mutex<Connection>,
    before_us: i64,
    limit: i64,
) -> Result<u64, StoreError> {
    let connection = connection
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let deleted = connection
        .prepare_cached(DELETE_DEAD_LETTERS)?
        .execute(params![before_us, limit])?;
    Ok(deleted as u64)
}

impl SqliteStore {
    /// Runs `work` on the writing connection, off the async workers (as `write::SqliteWriter`).
    async fn on_writer<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Mutex<Connection>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.writer.connection.clone();
        match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| work(&connection))
            }
            _ => tokio::task::spawn_blocking(move || work(&connection))
                .await
                .map_err(|e| StoreError::Thread(e.to_string()))?,
        }
    }
}

impl RetentionStore for SqliteStore {
    async fn delete_events_before(&self, before_us: i64, limit: i64) -> Result<u64, StoreError> {
        self.on_writer(move |c| delete_events(c, before_us, limit))
            .await
    }

    async fn delete_dead_letters_before(
        &self,
        before_us: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        self.on_writer(move |c| delete_dead_letters(c, before_us, limit))
            .await
    }

    /// `page_count × page_size` less the free list: what the data takes, free pages (reused by
    /// later writes) not counted.
    async fn size_bytes(&self) -> Result<u64, StoreError> {
        let (bytes,): (i64,) = sqlx::query_as(
            "SELECT (p.page_count - f.freelist_count) * s.page_size \
             FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    async fn oldest_event_us(&self) -> Result<Option<i64>, StoreError> {
        let (oldest,): (Option<i64>,) = sqlx::query_as("SELECT min(time_us) FROM events")
            .fetch_one(self.pool())
            .await?;
        Ok(oldest)
    }
}
