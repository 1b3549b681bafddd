//! Retention on PostgreSQL: batched deletes on the indexed `time_us` column, each batch its own
//! short transaction. A batch picks the oldest events through `events_by_time` and deletes their
//! deliveries (by `deliveries_by_event`), their problem rows (by the primary key, the kinds read
//! from the events' `problems` column) and the events (their keys live on the row). The cost of a
//! batch is that of its rows, not of the table: the same on a store of a million events as on
//! one of a billion. Time partitions would make a whole day's deletion a `DROP`, at the price of
//! a primary key that includes the time (event ids are looked up without one) — not done; see
//! docs/security.md, "Retention".

use std::collections::BTreeSet;

use super::PgStore;
use crate::store::contract::{RetentionStore, StoreError};

/// The store's tables, whose sizes add up to the store's.
const TABLES: &str = "'events', 'deliveries', 'event_problems', 'key_names', 'dead_letters', \
     'spans', 'span_links'";

impl RetentionStore for PgStore {
    async fn delete_events_before(&self, before_us: i64, limit: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let doomed: Vec<(String, String)> = sqlx::query_as(
            "SELECT event_id, problems FROM events WHERE time_us < $1 ORDER BY time_us LIMIT $2",
        )
        .bind(before_us)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if doomed.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = doomed.iter().map(|(id, _)| id.as_str()).collect();
        let mut kinds = BTreeSet::from(["duplicate_publish".to_owned()]);
        for (_, problems) in &doomed {
            kinds.extend(crate::store::problem_kinds(problems));
        }
        let kinds: Vec<String> = kinds.into_iter().collect();
        sqlx::query("DELETE FROM deliveries WHERE event_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM event_problems WHERE kind = ANY($1) AND event_id = ANY($2)")
            .bind(&kinds)
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM events WHERE event_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn delete_dead_letters_before(
        &self,
        before_us: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM dead_letters WHERE (topic, kafka_partition, kafka_offset) IN \
             (SELECT topic, kafka_partition, kafka_offset FROM dead_letters \
              WHERE ingested_at_us < $1 ORDER BY ingested_at_us LIMIT $2)",
        )
        .bind(before_us)
        .bind(limit)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// The total relation size of the store's tables: space freed by deletions is reused once
    /// (auto)vacuum has passed, not returned, so this falls only by what a vacuum truncates.
    async fn size_bytes(&self) -> Result<u64, StoreError> {
        let (bytes,): (Option<i64>,) = sqlx::query_as(&format!(
            "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c \
             WHERE c.relkind = 'r' AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) \
             AND c.relname IN ({TABLES})"
        ))
        .fetch_one(self.pool())
        .await?;
        Ok(bytes.and_then(|b| u64::try_from(b).ok()).unwrap_or(0))
    }

    async fn oldest_event_us(&self) -> Result<Option<i64>, StoreError> {
        let (oldest,): (Option<i64>,) = sqlx::query_as("SELECT min(time_us) FROM events")
            .fetch_one(self.pool())
            .await?;
        Ok(oldest)
    }
}
