//! Business keys on PostgreSQL: an array on the event row under a GIN index, and a table of the
//! key names (migration `0003`).
//!
//! A key in the array is `<bytes of the name>:<name><value>` (`8:order.ido-1`), which no name or
//! value can make ambiguous. Looking a key up is `keys @> ARRAY[…]`; a value under any of several
//! names is `keys && ARRAY[…]`. SQLite keeps its `event_keys` table (see `store::sqlite::write`): a GIN
//! index has no SQLite counterpart, and there the table costs less than on PostgreSQL. Both
//! stores list key names from a `key_names` table (`store::known_names`).

use std::collections::BTreeSet;

use sqlx::{Postgres, QueryBuilder};

use super::PgStore;
use crate::record::EventRecord;
use crate::store::contract::{BusinessKeys, StoreError};
use crate::store::rows::{in_key_order, KeyRow, SummaryRow};
use crate::store::shared_sql::{IN_CHUNK, SUMMARY_COLUMNS};

/// Key `name = value` as an element of `events.keys`.
pub(crate) fn encode(name: &str, value: &str) -> String {
    format!("{}:{name}{value}", name.len())
}

/// The `(name, value)` of an element of `events.keys`; `None` for anything [`encode`] cannot have
/// written.
pub(crate) fn decode(element: &str) -> Option<(&str, &str)> {
    let (len, rest) = element.split_once(':')?;
    let len: usize = len.parse().ok()?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// The `events.keys` array of `e`: its keys encoded, sorted, without repeats.
pub(crate) fn keys_array(e: &EventRecord) -> Vec<String> {
    let set: BTreeSet<String> = e.keys.iter().map(|(n, v)| encode(n, v)).collect();
    set.into_iter().collect()
}

/// Inserts the key names of a batch that `key_names` may not hold yet.
pub(crate) async fn insert_names(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    names: &[&str],
) -> Result<(), StoreError> {
    if !names.is_empty() {
        sqlx::query(
            "INSERT INTO key_names (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(names)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Adds the keys of duplicate publishes to their events' arrays (a second publish of an id may
/// carry other keys, e.g. other baggage; the store keeps the union, as SQLite's `event_keys` does).
/// One statement for the whole batch: a producer replaying a topic makes every record a duplicate.
pub(crate) async fn merge_keys(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    duplicates: &[&EventRecord],
) -> Result<(), StoreError> {
    let (ids, keys): (Vec<&str>, Vec<String>) = duplicates
        .iter()
        .flat_map(|e| keys_array(e).into_iter().map(|k| (e.event_id.as_str(), k)))
        .unzip();
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE events e SET keys = ARRAY(SELECT DISTINCT k FROM unnest(e.keys || m.keys) k ORDER BY k) \
         FROM (SELECT id, array_agg(key) AS keys FROM unnest($1::text[], $2::text[]) AS p(id, key) \
               GROUP BY id) m \
         WHERE e.event_id = m.id AND NOT e.keys @> m.keys",
    )
    .bind(&ids)
    .bind(&keys)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl PgStore {
    /// For `search`: events carrying `value` under one of `names` (the key array).
    pub(super) fn push_key_filter(
        qb: &mut QueryBuilder<'_, Postgres>,
        names: &[String],
        value: &str,
    ) {
        let wanted: Vec<String> = names.iter().map(|n| encode(n, value)).collect();
        qb.push(" AND e.keys && ").push_bind(wanted);
    }
}

impl BusinessKeys for PgStore {
    /// Business keys of the given events.
    async fn keys_of(&self, ids: &[String]) -> Result<Vec<KeyRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let rows: Vec<(String, Vec<String>)> =
                sqlx::query_as("SELECT event_id, keys FROM events WHERE event_id = ANY($1)")
                    .bind(chunk)
                    .fetch_all(self.pool())
                    .await?;
            for (event_id, keys) in rows {
                for element in &keys {
                    if let Some((name, value)) = decode(element) {
                        out.push(KeyRow {
                            event_id: event_id.clone(),
                            name: name.to_owned(),
                            value: value.to_owned(),
                        });
                    }
                }
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
        Ok(sqlx::query_as(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM events e WHERE e.keys @> $1 \
             ORDER BY e.time_us, e.event_id LIMIT $2"
        ))
        .bind(vec![encode(name, value)])
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Whether some event carries business key `name = value` (one GIN probe).
    async fn has_key(&self, name: &str, value: &str) -> Result<bool, StoreError> {
        let found: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM events WHERE keys @> $1 LIMIT 1")
            .bind(vec![encode(name, value)])
            .fetch_optional(self.pool())
            .await?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_gives_back_its_name_and_value_whatever_they_hold() {
        for (name, value) in [
            ("order.id", "o-1"),
            ("a:b", ":c:"),
            ("", "v"),
            ("n", ""),
            ("ü名", "10:x"),
        ] {
            let element = encode(name, value);
            assert_eq!(decode(&element), Some((name, value)), "{element}");
        }
        assert_eq!(encode("order.id", "o-1"), "8:order.ido-1");
    }

    #[test]
    fn what_encode_cannot_write_is_not_read_as_a_key() {
        for bad in ["", "x", "3:ab", "-1:a", "1:üx"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
