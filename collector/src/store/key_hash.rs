//! The 64-bit hash by which SQLite's `key_hashes` table finds the events carrying a business key.
//!
//! `key_hashes (k, event_id)` replaced rows of `(name, value, event_id)`: an integer compares in
//! one step where two strings took SQLite's slow comparison path, and the rows are a third of the
//! size (docs/benchmarks.md, run 12). Two keys may share a hash, so every lookup also checks the
//! key among the event row's own keys (`events.keys`); a shared hash costs a wasted probe, never a
//! wrong answer.
//!
//! Migration `0004` left the earlier rows in `event_keys`, since SQL has no XXH3:
//! [`hash_old_keys`] moves them when the store is next opened.
//!
//! The hash is stored: it must never change. XXH3-64 (a specified algorithm) of the value, seeded
//! with XXH3-64 of the name, so no (name, value) split of the same bytes is confused by
//! construction before hashing.

use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// The stored hash of business key `name = value` (XXH3-64 bits read as a signed integer, which
/// is what SQLite stores).
pub fn key_hash(name: &str, value: &str) -> i64 {
    xxh3_64_with_seed(value.as_bytes(), xxh3_64(name.as_bytes())) as i64
}

/// Rows of `event_keys` read, hashed and inserted at a time by [`hash_old_keys`] (two values
/// bound per row, well under SQLite's 32 766).
const PAGE: i64 = 5_000;

/// The part of migration `0004` SQL cannot do: hashes the rows of the earlier `event_keys` into
/// `key_hashes` and drops `event_keys`, in one transaction that takes the write lock first (a
/// second process opening the store at the same time then finds the work done), a page of rows
/// in memory at a time. Returns the rows hashed: zero once done, or on a new store.
pub(crate) async fn hash_old_keys(pool: &SqlitePool) -> Result<u64, sqlx::Error> {
    const OLD_TABLE: &str =
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_keys')";
    let (old_table,): (bool,) = sqlx::query_as(OLD_TABLE).fetch_one(pool).await?;
    if !old_table {
        return Ok(0);
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let (old_table,): (bool,) = sqlx::query_as(OLD_TABLE).fetch_one(&mut *tx).await?;
    if !old_table {
        return Ok(0);
    }
    let mut hashed = 0;
    let mut after: Option<(String, String, String)> = None;
    loop {
        let mut page = QueryBuilder::<Sqlite>::new("SELECT name, value, event_id FROM event_keys");
        if let Some((name, value, id)) = &after {
            page.push(" WHERE (name, value, event_id) > (")
                .push_bind(name.clone())
                .push(", ")
                .push_bind(value.clone())
                .push(", ")
                .push_bind(id.clone())
                .push(")");
        }
        page.push(" ORDER BY name, value, event_id LIMIT ")
            .push_bind(PAGE);
        let rows: Vec<(String, String, String)> = page.build_query_as().fetch_all(&mut *tx).await?;
        let Some(last) = rows.last().cloned() else {
            break;
        };
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO key_hashes (k, event_id) ");
        insert.push_values(&rows, |mut row, (name, value, id)| {
            row.push_bind(key_hash(name, value)).push_bind(id.clone());
        });
        insert.build().execute(&mut *tx).await?;
        hashed += rows.len() as u64;
        after = Some(last);
    }
    sqlx::query("DROP TABLE event_keys")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(hashed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_hash_never_changes() {
        // Stores hold these values: a new build must compute the same ones.
        assert_eq!(key_hash("order.id", "o-1"), STORED[0]);
        assert_eq!(key_hash("kafka.key", "o-1"), STORED[1]);
        assert_eq!(key_hash("", ""), STORED[2]);
        assert_eq!(key_hash("größe", "xl"), STORED[3]);
    }

    #[tokio::test]
    async fn old_keys_are_hashed_page_by_page_and_their_table_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("keys.db").display());
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = SqlitePool::connect_with(options.create_if_missing(true))
            .await
            .unwrap();
        // More than two pages of rows, names and values overlapping across events.
        let rows = 2 * PAGE + 7;
        sqlx::raw_sql(&format!(
            "CREATE TABLE event_keys (name TEXT NOT NULL, value TEXT NOT NULL, \
             event_id TEXT NOT NULL, PRIMARY KEY (name, value, event_id)) WITHOUT ROWID; \
             CREATE TABLE key_hashes (k INTEGER NOT NULL, event_id TEXT NOT NULL, \
             PRIMARY KEY (k, event_id)) WITHOUT ROWID; \
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {rows}) \
             INSERT INTO event_keys SELECT 'k' || (i % 3), 'v' || (i / 3), 'e' || i FROM n;"
        ))
        .execute(&pool)
        .await
        .unwrap();

        assert_eq!(hash_old_keys(&pool).await.unwrap(), rows as u64);

        let stored: Vec<(i64, String)> =
            sqlx::query_as("SELECT k, event_id FROM key_hashes ORDER BY event_id")
                .fetch_all(&pool)
                .await
                .unwrap();
        let mut want: Vec<(i64, String)> = (0..rows)
            .map(|i| {
                (
                    key_hash(&format!("k{}", i % 3), &format!("v{}", i / 3)),
                    format!("e{i}"),
                )
            })
            .collect();
        want.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(stored, want);
        let (left,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM sqlite_master WHERE name = 'event_keys'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(left, 0, "event_keys dropped");
        assert_eq!(hash_old_keys(&pool).await.unwrap(), 0, "done once");
    }

    #[test]
    fn the_split_between_name_and_value_counts() {
        assert_ne!(key_hash("ab", "c"), key_hash("a", "bc"));
        assert_ne!(key_hash("order.id", "o-1"), key_hash("o-1", "order.id"));
    }

    /// Computed apart from this code, with the reference XXH3 (Python's `xxhash` package:
    /// `xxh3_64_intdigest(value, seed=xxh3_64_intdigest(name))`, as a signed 64-bit integer).
    const STORED: [i64; 4] = [
        -3_178_053_979_055_032_197,
        -8_100_772_208_750_778_470,
        4_696_993_233_866_070_003,
        -4_629_601_699_993_215_003,
    ];
}
