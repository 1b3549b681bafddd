//! The span reads both databases run, written once (like `shared_sql`): `shared_span_reads!`
//! expands inside each backend's `impl SpanStore`, whose `pool` field it uses.

use std::collections::{BTreeSet, HashSet};

/// Pairs per lookup by `(trace id, span id)`.
pub(super) const PAIR_CHUNK: usize = 250;

/// Spans deleted per transaction when pruning.
pub(super) const PRUNE_CHUNK: i64 = 10_000;

/// Positions per lookup of consumer spans.
pub(super) const POSITION_CHUNK: usize = 100;

/// One chunk of a lookup by pairs: distinct values for two `IN` lists, and the exact pairs kept
/// afterwards (see `shared_sql::SpanChunk` for why).
pub(super) struct Pairs<'a> {
    /// Distinct first values.
    pub first: BTreeSet<&'a str>,
    /// Distinct second values.
    pub second: BTreeSet<&'a str>,
    wanted: HashSet<(&'a str, &'a str)>,
}

impl<'a> Pairs<'a> {
    pub(super) fn new(chunk: &'a [(String, String)]) -> Self {
        Self {
            first: chunk.iter().map(|(a, _)| a.as_str()).collect(),
            second: chunk.iter().map(|(_, b)| b.as_str()).collect(),
            wanted: chunk
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect(),
        }
    }

    /// Whether `(a, b)` was asked for.
    pub(super) fn keeps(&self, a: &str, b: &str) -> bool {
        self.wanted.contains(&(a, b))
    }
}

/// `(x IN (…) AND y IN (…))` for a chunk of pairs.
macro_rules! push_pairs {
    ($qb:ident, $x:literal, $y:literal, $pairs:ident) => {{
        $qb.push(concat!($x, " IN ("));
        let mut list = $qb.separated(", ");
        for v in &$pairs.first {
            list.push_bind(*v);
        }
        $qb.push(concat!(") AND ", $y, " IN ("));
        let mut list = $qb.separated(", ");
        for v in &$pairs.second {
            list.push_bind(*v);
        }
        $qb.push(")");
    }};
}

/// `links_where`: the links of the spans `pairs` (`to` false) or to them (`to` true), in the
/// backend's own `impl` block (the trait's methods call it).
macro_rules! links_where {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn links_where(
                &self,
                pairs: &[(String, String)],
                to: bool,
            ) -> Result<Vec<LinkRow>, StoreError> {
                let mut out = Vec::new();
                for chunk in pairs.chunks(PAIR_CHUNK) {
                    let pairs = Pairs::new(chunk);
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT trace_id, span_id, linked_trace_id, linked_span_id FROM span_links WHERE ",
                    );
                    if to {
                        push_pairs!(qb, "linked_trace_id", "linked_span_id", pairs);
                    } else {
                        push_pairs!(qb, "trace_id", "span_id", pairs);
                    }
                    let rows: Vec<LinkRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                    out.extend(rows.into_iter().filter(|l| {
                        if to {
                            pairs.keeps(&l.linked_trace_id, &l.linked_span_id)
                        } else {
                            pairs.keeps(&l.trace_id, &l.span_id)
                        }
                    }));
                }
                Ok(out)
            }
        }
    };
}

macro_rules! shared_span_reads {
    ($db:ty) => {
        async fn has_spans(&self) -> Result<bool, StoreError> {
            let row: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM spans LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.is_some())
        }

        async fn spans(&self, ids: &[(String, String)]) -> Result<Vec<SpanRow>, StoreError> {
            let mut out = Vec::new();
            for chunk in ids.chunks(PAIR_CHUNK) {
                let pairs = Pairs::new(chunk);
                let mut qb =
                    QueryBuilder::<$db>::new(format!("SELECT {SPAN_COLUMNS} FROM spans s WHERE "));
                push_pairs!(qb, "s.trace_id", "s.span_id", pairs);
                let rows: Vec<SpanRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                out.extend(rows.into_iter().filter(|s| pairs.keeps(&s.trace_id, &s.span_id)));
            }
            Ok(out)
        }

        async fn span_children(
            &self,
            parents: &[(String, String)],
        ) -> Result<Vec<SpanRow>, StoreError> {
            let mut out = Vec::new();
            for chunk in parents.chunks(PAIR_CHUNK) {
                let pairs = Pairs::new(chunk);
                let mut qb =
                    QueryBuilder::<$db>::new(format!("SELECT {SPAN_COLUMNS} FROM spans s WHERE "));
                push_pairs!(qb, "s.trace_id", "s.parent_span_id", pairs);
                let rows: Vec<SpanRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                out.extend(rows.into_iter().filter(|s| {
                    s.parent_span_id
                        .as_deref()
                        .is_some_and(|p| pairs.keeps(&s.trace_id, p))
                }));
            }
            Ok(out)
        }

        async fn links_from(&self, ids: &[(String, String)]) -> Result<Vec<LinkRow>, StoreError> {
            self.links_where(ids, false).await
        }

        async fn links_to(
            &self,
            targets: &[(String, String)],
        ) -> Result<Vec<LinkRow>, StoreError> {
            self.links_where(targets, true).await
        }

        async fn consumer_spans_at(
            &self,
            positions: &[(String, i32, i64)],
        ) -> Result<Vec<SpanRow>, StoreError> {
            let mut out = Vec::new();
            for chunk in positions.chunks(POSITION_CHUNK) {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {SPAN_COLUMNS} FROM spans s WHERE "
                ));
                // The partial index's condition in every arm: SQLite then searches the index per
                // arm instead of scanning it.
                for (i, (topic, partition, offset)) in chunk.iter().enumerate() {
                    if i > 0 {
                        qb.push(" OR ");
                    }
                    qb.push("(s.kind = 5 AND s.kafka_offset IS NOT NULL AND s.destination = ");
                    qb.push_bind(topic.as_str());
                    qb.push(" AND s.kafka_partition = ");
                    qb.push_bind(*partition);
                    qb.push(" AND s.kafka_offset = ");
                    qb.push_bind(*offset);
                    qb.push(")");
                }
                out.extend(qb.build_query_as::<SpanRow>().fetch_all(&self.pool).await?);
            }
            Ok(out)
        }

        async fn failed_spans_since(
            &self,
            received_from_us: i64,
            limit: i64,
        ) -> Result<Vec<SpanRow>, StoreError> {
            let mut qb = QueryBuilder::<$db>::new(format!(
                "SELECT {SPAN_COLUMNS} FROM spans s WHERE s.failed AND s.received_us >= "
            ));
            qb.push_bind(received_from_us);
            qb.push(" ORDER BY s.received_us LIMIT ");
            qb.push_bind(limit);
            Ok(qb.build_query_as().fetch_all(&self.pool).await?)
        }

        async fn span_services(&self, from_us: i64) -> Result<Vec<SpanServiceRow>, StoreError> {
            let mut qb = QueryBuilder::<$db>::new(
                "SELECT COALESCE(s.service, '') AS service, COUNT(*) AS received, \
                 SUM(CASE WHEN s.kind = 5 THEN 1 ELSE 0 END) AS consumer, \
                 SUM(CASE WHEN s.kind = 4 THEN 1 ELSE 0 END) AS producer, \
                 SUM(CASE WHEN s.failed THEN 1 ELSE 0 END) AS failed, \
                 MAX(s.start_us) AS last_us \
                 FROM spans s WHERE s.start_us >= ",
            );
            qb.push_bind(from_us);
            qb.push(" GROUP BY COALESCE(s.service, '') ORDER BY 1");
            Ok(qb.build_query_as().fetch_all(&self.pool).await?)
        }

        async fn coverage(
            &self,
            from_us: i64,
            to_us: i64,
            sample: i64,
        ) -> Result<Vec<CoverageRow>, StoreError> {
            let mut qb = QueryBuilder::<$db>::new(
                "SELECT COALESCE(e.source, s.service, '') AS service, COUNT(*) AS events, \
                 SUM(CASE WHEN e.id_source <> 'derived' THEN 1 ELSE 0 END) AS with_ce_id, \
                 SUM(CASE WHEN e.causation_id IS NOT NULL THEN 1 ELSE 0 END) AS with_causation, \
                 SUM(CASE WHEN e.correlation_id IS NOT NULL THEN 1 ELSE 0 END) AS with_correlation, \
                 SUM(CASE WHEN e.trace_id IS NOT NULL THEN 1 ELSE 0 END) AS with_traceparent, \
                 SUM(CASE WHEN e.headers LIKE '%[\"baggage\",%' THEN 1 ELSE 0 END) AS with_baggage \
                 FROM (SELECT source, id_source, causation_id, correlation_id, trace_id, span_id, headers \
                       FROM events WHERE time_us >= ",
            );
            qb.push_bind(from_us);
            qb.push(" AND time_us < ");
            qb.push_bind(to_us);
            qb.push(" ORDER BY time_us DESC LIMIT ");
            qb.push_bind(sample);
            qb.push(
                ") e LEFT JOIN spans s ON s.trace_id = e.trace_id AND s.span_id = e.span_id \
                 GROUP BY COALESCE(e.source, s.service, '') ORDER BY 1",
            );
            Ok(qb.build_query_as().fetch_all(&self.pool).await?)
        }

        async fn baggage_of(
            &self,
            service: &str,
            from_us: i64,
            to_us: i64,
            sample: i64,
        ) -> Result<Vec<String>, StoreError> {
            // The service as `coverage` names it: `ce_source`, else the producing span's.
            let mut qb = QueryBuilder::<$db>::new(
                "SELECT e.headers FROM events e LEFT JOIN spans s \
                 ON s.trace_id = e.trace_id AND s.span_id = e.span_id \
                 WHERE COALESCE(e.source, s.service) = ",
            );
            qb.push_bind(service);
            qb.push(" AND e.time_us >= ");
            qb.push_bind(from_us);
            qb.push(" AND e.time_us < ");
            qb.push_bind(to_us);
            qb.push(" AND e.headers LIKE '%[\"baggage\",%' ORDER BY e.time_us DESC LIMIT ");
            qb.push_bind(sample);
            let rows: Vec<(String,)> = qb.build_query_as().fetch_all(&self.pool).await?;
            Ok(rows.into_iter().map(|(h,)| h).collect())
        }

        async fn consumer_span_counts(
            &self,
            from_us: i64,
            to_us: i64,
        ) -> Result<Vec<ConsumeRow>, StoreError> {
            let mut qb = QueryBuilder::<$db>::new(
                "SELECT s.destination AS topic, s.service, COUNT(*) AS handlings FROM spans s \
                 WHERE s.kind = 5 AND s.destination IS NOT NULL AND s.start_us >= ",
            );
            qb.push_bind(from_us);
            qb.push(" AND s.start_us < ");
            qb.push_bind(to_us);
            qb.push(" GROUP BY s.destination, s.service ORDER BY 1, 2");
            Ok(qb.build_query_as().fetch_all(&self.pool).await?)
        }

        async fn prune_spans(&self, before_us: i64) -> Result<u64, StoreError> {
            // In chunks, each its own transaction: a backlog never holds the write lock long.
            let mut deleted = 0;
            loop {
                let mut tx = self.pool.begin().await?;
                // The links first, then the spans: the same chunk of spans, chosen in the same
                // order by both statements.
                let mut n = 0;
                for table in ["span_links", "spans"] {
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "DELETE FROM {table} WHERE (trace_id, span_id) IN \
                         (SELECT trace_id, span_id FROM spans WHERE start_us < "
                    ));
                    qb.push_bind(before_us);
                    qb.push(" ORDER BY trace_id, span_id LIMIT ");
                    qb.push_bind(PRUNE_CHUNK);
                    qb.push(")");
                    n = qb.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                deleted += n;
                if n < PRUNE_CHUNK as u64 {
                    return Ok(deleted);
                }
            }
        }
    };
}

pub(super) use {links_where, push_pairs, shared_span_reads};
