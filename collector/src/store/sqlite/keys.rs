//! The SQLite store's business keys: JSON on each event row (what an event has), and rows of
//! `event_keys` (which events have a key; PostgreSQL's are in `postgres::keys`).

use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::store::contract::{BusinessKeys, StoreError};
use crate::store::rows::{in_key_order, KeyRow, SummaryRow};
use crate::store::shared_sql::{IN_CHUNK, SUMMARY_COLUMNS};

impl SqliteStore {
    /// For `search`: events carrying `value` under one of `names` (rows of `event_keys`).
    pub(super) fn push_key_filter(
        qb: &mut QueryBuilder<'_, Sqlite>,
        names: &[String],
        value: &str,
    ) {
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

impl BusinessKeys for SqliteStore {
    /// Business keys of the given events.
    async fn keys_of(&self, ids: &[String]) -> Result<Vec<KeyRow>, StoreError> {
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
        in_key_order(&mut out);
        Ok(out)
    }

    /// Events carrying business key `name = value`, in time order.
    async fn by_key(
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

    /// Whether some event carries business key `name = value` (one index probe).
    async fn has_key(&self, name: &str, value: &str) -> Result<bool, StoreError> {
        let found: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM event_keys WHERE name = ? AND value = ? LIMIT 1")
                .bind(name)
                .bind(value)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }
}
