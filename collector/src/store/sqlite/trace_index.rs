//! SQLite's index of trace ids (migrations `0005` and `0006`): the last 8 characters of each
//! trace id, split into generations of stored events so that inserts stay in the newest part
//! whatever the store's size, and lookups seek each generation.

use sqlx::{QueryBuilder, Sqlite};

/// What SQLite's trace index holds of a trace id (migration `0005`): its last 8 characters, as
/// `substr(trace_id, -8)` gives them.
pub(crate) fn trace_suffix(trace_id: &str) -> &str {
    trace_id
        .char_indices()
        .rev()
        .nth(7)
        .map_or(trace_id, |(start, _)| &trace_id[start..])
}

/// A generation of the SQLite trace index (migration `0006`) is a run of `2^GENERATION_BITS`
/// stored events: a batch's rows get the row id before it shifted right by this many bits, so
/// inserts land in the newest generation's part of the index whatever the store's size.
pub(crate) const GENERATION_BITS: u32 = 16;

/// The greatest row id of the SQLite events (0 when empty): what the writer's batch takes its
/// [`generation`] from, lookups their newest generation, and the store's live feed its position.
pub(crate) const MAX_ROWID: &str = "SELECT coalesce(max(rowid), 0) FROM events";

/// The generation of the rows of a batch written into a table whose greatest row id is
/// `max_rowid` (0 when empty).
pub(crate) fn generation(max_rowid: i64) -> i64 {
    max_rowid >> GENERATION_BITS
}

/// `e.generation IN (0 … the newest)`, for a seek of each generation's part of the trace index.
/// The newest is computed as the writer computes it ([`generation`] of [`MAX_ROWID`]), so a
/// row's generation is never above it.
pub(crate) fn every_generation() -> String {
    format!(
        "e.generation IN (WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g \
         WHERE n < ({MAX_ROWID}) >> {GENERATION_BITS}) SELECT n FROM g)"
    )
}

/// `e.trace_id = trace_id`, through the index of trace id suffixes by generation (one seek per
/// generation, [`every_generation`]). The `+` keeps an older SQLite (3.40 seen) from substituting
/// the bound id into `substr(…)` (constant propagation), which then no longer matches the indexed
/// expression and scans the whole index; the bundled one does not, and the plan is tested.
pub(crate) fn push_trace_is<'a>(qb: &mut QueryBuilder<'a, Sqlite>, trace_id: &'a str) {
    qb.push(every_generation())
        .push(" AND substr(e.trace_id, -8) = ")
        .push_bind(trace_suffix(trace_id))
        .push(" AND +e.trace_id = ")
        .push_bind(trace_id);
}

/// Asserts a query plan's details (`EXPLAIN QUERY PLAN`) find events by seeking the trace index
/// by generation and suffix, and never scan them.
#[cfg(test)]
pub(crate) fn assert_seeks_each_generation(details: &[impl AsRef<str> + std::fmt::Debug]) {
    assert_eq!(
        details.first().map(|d| d.as_ref()),
        Some("SEARCH e USING INDEX events_by_generation_trace (generation=? AND <expr>=?)"),
        "a seek by generation and suffix, not a scan: {details:?}"
    );
    assert!(
        !details.iter().any(|d| d.as_ref().starts_with("SCAN e")),
        "no scan of the events: {details:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_suffix_is_what_sqlite_substr_gives() {
        assert_eq!(trace_suffix("4bf92f3577b34da6a3ce929d0e0e4736"), "0e0e4736");
        assert_eq!(trace_suffix("0e0e4736"), "0e0e4736");
        assert_eq!(trace_suffix("short"), "short");
        assert_eq!(
            trace_suffix("äöüßäöüßä"),
            "öüßäöüßä",
            "characters, not bytes"
        );
    }

    #[tokio::test]
    async fn a_trace_lookup_seeks_each_generation_of_the_trace_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = super::super::SqliteStore::open(&url).await.unwrap();
        let mut qb =
            QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN SELECT * FROM events e WHERE ");
        push_trace_is(&mut qb, "4bf92f3577b34da6a3ce929d0e0e4736");
        let plan: Vec<(i64, i64, i64, String)> =
            qb.build_query_as().fetch_all(store.pool()).await.unwrap();
        let details: Vec<&str> = plan.iter().map(|(_, _, _, d)| d.as_str()).collect();
        assert_seeks_each_generation(&details);
    }
}
