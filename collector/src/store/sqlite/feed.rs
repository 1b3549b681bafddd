//! What the SQLite store has taken in since a position, for a live feed that follows the store
//! instead of an ingest loop (`choreoscope serve`, see [`crate::live::follow_store`]). SQLite has
//! one writer, so row ids grow in commit order: the position is the greatest row id seen.

use super::trace_index::MAX_ROWID;
use super::SqliteStore;
use crate::store::contract::{FeedPosition, StoreError, StoreFeed};
use crate::store::rows::StoredEvent;

/// `rowid, event_id, correlation_id, trace_id, keys` (JSON), `source, event_type, causation_id,
/// time_us` of a SQLite event.
type SqliteFeedRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

impl StoreFeed for SqliteStore {
    async fn feed_position(&self) -> Result<FeedPosition, StoreError> {
        let (max,): (i64,) = sqlx::query_as(MAX_ROWID).fetch_one(self.pool()).await?;
        Ok(FeedPosition(max))
    }

    async fn stored_after(
        &self,
        from: FeedPosition,
        limit: i64,
    ) -> Result<(Vec<StoredEvent>, FeedPosition), StoreError> {
        let rows: Vec<SqliteFeedRow> = sqlx::query_as(
            "SELECT rowid, event_id, correlation_id, trace_id, keys, source, event_type, \
             causation_id, time_us FROM events WHERE rowid > ? ORDER BY rowid LIMIT ?",
        )
        .bind(from.0)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let next = rows.last().map_or(from, |r| FeedPosition(r.0));
        let events = rows
            .into_iter()
            .map(
                |(
                    _,
                    id,
                    correlation_id,
                    trace_id,
                    keys,
                    source,
                    event_type,
                    causation_id,
                    time_us,
                )| {
                    StoredEvent {
                        id,
                        correlation_id,
                        trace_id,
                        // The writer's own JSON (`record::keys_to_json`); unreadable keys match no
                        // filter.
                        keys: serde_json::from_str(&keys).unwrap_or_default(),
                        source,
                        event_type,
                        causation_id,
                        time_us,
                        dead_letter_of: None,
                    }
                },
            )
            .collect();
        Ok((events, next))
    }
}
