//! What the PostgreSQL store has taken in since a position, for a live feed that follows the
//! store instead of an ingest loop (`choreoscope serve`, see [`crate::live::follow_store`]).
//! PostgreSQL is written by several connections at once, so a row inserted earlier may commit
//! later; each event carries the id of the transaction that stored it (migration `0004`), and the
//! position is a horizon below which every transaction has finished: the xmin of the reader's
//! snapshot. Events of transactions between the last horizon and the new one are new; a
//! transaction still running holds the horizon back until it ends, so none is passed over.

use super::{keys, PgStore};
use crate::store::contract::{FeedPosition, StoreError, StoreFeed};
use crate::store::rows::StoredEvent;

/// `event_id, correlation_id, trace_id, keys` (encoded array), `source, event_type,
/// causation_id, time_us` of a PostgreSQL event.
type PgFeedRow = (
    String,
    Option<String>,
    Option<String>,
    Vec<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

impl StoreFeed for PgStore {
    async fn feed_position(&self) -> Result<FeedPosition, StoreError> {
        let (horizon,): (i64,) =
            sqlx::query_as("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
                .fetch_one(self.pool())
                .await?;
        Ok(FeedPosition(horizon))
    }

    async fn stored_after(
        &self,
        from: FeedPosition,
        _limit: i64,
    ) -> Result<(Vec<StoredEvent>, FeedPosition), StoreError> {
        // Every transaction below the new horizon has ended; all of one is taken or none, so no
        // limit applies here (a window holds what was stored since the last call).
        let to = self.feed_position().await?;
        if to.0 <= from.0 {
            return Ok((Vec::new(), from));
        }
        let rows: Vec<PgFeedRow> = sqlx::query_as(
            "SELECT event_id, correlation_id, trace_id, keys, source, event_type, causation_id, \
             time_us FROM events WHERE ingest_xid >= $1::text::xid8 AND ingest_xid < $2::text::xid8 \
             ORDER BY ingest_xid, time_us, event_id",
        )
        .bind(from.0.to_string())
        .bind(to.0.to_string())
        .fetch_all(self.pool())
        .await?;
        let events = rows
            .into_iter()
            .map(
                |(
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
                        keys: keys
                            .iter()
                            .filter_map(|k| keys::decode(k))
                            .map(|(n, v)| (n.to_owned(), v.to_owned()))
                            .collect(),
                        source,
                        event_type,
                        causation_id,
                        time_us,
                        dead_letter_of: None,
                    }
                },
            )
            .collect();
        Ok((events, to))
    }
}
