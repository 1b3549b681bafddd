//! The SQL both databases run, written once: `shared_lookups!` expands inside each backend's
//! `impl LineageStore` (its `pool` field and `push_trace_is`/`push_key_filter` are the backend's
//! own), so SQLite and PostgreSQL cannot drift apart. Placeholders come from
//! `QueryBuilder::push_bind`, which writes each database's own syntax. The exceptions are the
//! writes (each store's fastest way) and the business keys, which PostgreSQL keeps on the event
//! row and SQLite in `event_keys`; the store suite holds both to the same answers.

use std::collections::{BTreeSet, HashSet};

use super::rows::SummaryRow;

/// Ids per `IN (…)` list.
pub(super) const IN_CHUNK: usize = 500;

/// Columns of [`SummaryRow`], in order.
pub(super) const SUMMARY_COLUMNS: &str =
    "e.event_id, e.event_type, e.source, e.topic, e.kafka_partition, \
    e.kafka_offset, e.time_us, e.causation_id, e.correlation_id, e.trace_id, e.span_id, e.subject, \
    e.problem_count, e.delivery_count";

/// Columns of [`super::rows::DeadLetterRow`], in order.
pub(super) const DEAD_LETTER_COLUMNS: &str =
    "topic, kafka_partition, kafka_offset, original_id, recognised_by, reason, consumer_group, \
    time_us, ingested_at_us";

/// Spans per span lookup (lists of at most this many values each: trace ids and span ids, and on
/// SQLite the trace ids' suffixes).
pub(super) const SPAN_CHUNK: usize = IN_CHUNK / 2;

/// One chunk of a lookup by `(trace_id, span_id)` pairs: the columns are constrained by `IN` lists
/// of *distinct* values (a database probes an index once per combination of list entries, so
/// repeating the trace id per span cost 250 × 250 probes; PostgreSQL seeks its
/// `(trace_id, span_id)` index, SQLite its index of trace id suffixes, [`trace_suffix`](super::sqlite::trace_index::trace_suffix)), and the
/// rows of exactly the asked pairs are kept afterwards.
pub(super) struct SpanChunk<'a> {
    /// Distinct trace ids to bind.
    pub traces: BTreeSet<&'a String>,
    /// Distinct span ids to bind.
    pub spans: BTreeSet<&'a String>,
    wanted: HashSet<(&'a str, &'a str)>,
}

impl<'a> SpanChunk<'a> {
    pub(super) fn new(chunk: &'a [(String, String)]) -> Self {
        Self {
            traces: chunk.iter().map(|(t, _)| t).collect(),
            spans: chunk.iter().map(|(_, s)| s).collect(),
            wanted: chunk
                .iter()
                .map(|(t, s)| (t.as_str(), s.as_str()))
                .collect(),
        }
    }

    /// Whether `e` is of one of the asked pairs.
    pub(super) fn keeps(&self, e: &SummaryRow) -> bool {
        matches!((&e.trace_id, &e.span_id), (Some(t), Some(s)) if self.wanted.contains(&(t.as_str(), s.as_str())))
    }
}

macro_rules! shared_lookups {
    ($db:ty) => {
            /// The full event `id`.
            async fn event(&self, id: &str) -> Result<Option<EventRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new("SELECT * FROM events WHERE event_id = ");
                qb.push_bind(id);
                Ok(qb.build_query_as().fetch_optional(&self.pool).await?)
            }

            /// Every delivery of event `id`.
            async fn deliveries(&self, id: &str) -> Result<Vec<DeliveryRow>, StoreError> {
                // The first delivery is the event's own position; `deliveries` holds the others.
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT topic, kafka_partition, kafka_offset, broker_time_us FROM events WHERE event_id = ",
                );
                qb.push_bind(id);
                qb.push(" UNION ALL SELECT topic, kafka_partition, kafka_offset, broker_time_us FROM deliveries WHERE event_id = ");
                qb.push_bind(id);
                qb.push(" ORDER BY 1, 2, 3");
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Every event produced in span `(trace_id, span_id)`, in time order.
            async fn same_span(&self, trace_id: &str, span_id: &str) -> Result<Vec<SummaryRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {SUMMARY_COLUMNS} FROM events e WHERE "
                ));
                push_trace_is(&mut qb, trace_id);
                qb.push(" AND e.span_id = ");
                qb.push_bind(span_id);
                qb.push(" ORDER BY e.time_us, e.event_id");
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Events of a correlation, root included, in time order.
            async fn by_correlation(&self, id: &str, limit: i64) -> Result<Vec<SummaryRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT * FROM (SELECT {SUMMARY_COLUMNS} FROM events e WHERE e.correlation_id = "
                ));
                qb.push_bind(id);
                qb.push(format!(" UNION SELECT {SUMMARY_COLUMNS} FROM events e WHERE e.event_id = "));
                qb.push_bind(id);
                qb.push(") u ORDER BY time_us, event_id LIMIT ");
                qb.push_bind(limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Events of a trace, in time order.
            async fn by_trace(&self, trace_id: &str, limit: i64) -> Result<Vec<SummaryRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {SUMMARY_COLUMNS} FROM events e WHERE "
                ));
                push_trace_is(&mut qb, trace_id);
                qb.push(" ORDER BY e.time_us, e.event_id LIMIT ");
                qb.push_bind(limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// A page of events matching `filter`, newest first, starting after `filter.before`.
            async fn search(&self, filter: &SearchFilter) -> Result<Vec<SummaryRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {SUMMARY_COLUMNS} FROM events e WHERE 1 = 1"));
                if let Some(from) = filter.from_us {
                    qb.push(" AND e.time_us >= ").push_bind(from);
                }
                if let Some(to) = filter.to_us {
                    qb.push(" AND e.time_us < ").push_bind(to);
                }
                if let Some(t) = &filter.event_type {
                    qb.push(" AND e.event_type = ").push_bind(t.clone());
                }
                if let Some(source) = &filter.source {
                    qb.push(" AND e.source = ").push_bind(source.clone());
                }
                if let Some(topic) = &filter.topic {
                    qb.push(" AND e.topic = ").push_bind(topic.clone());
                }
                if let Some((name, value)) = &filter.key {
                    // A value under any name: probe (name, value) once per name seen, rather
                    // than scan every key for the value.
                    let names = match name {
                        Some(name) => vec![name.clone()],
                        None => self.key_names().await?,
                    };
                    if names.is_empty() {
                        qb.push(" AND 1 = 0");
                    } else {
                        Self::push_key_filter(&mut qb, &names, value);
                    }
                }
                if filter.problem.as_deref() == Some(ANY_PROBLEM) {
                    qb.push(" AND e.problem_count > 0");
                } else if let Some(kind) = &filter.problem {
                    qb.push(" AND e.event_id IN (SELECT p.event_id FROM event_problems p WHERE p.kind = ")
                        .push_bind(kind.clone())
                        .push(")");
                }
                if let Some((time, id)) = &filter.before {
                    qb.push(" AND (e.time_us < ").push_bind(*time);
                    qb.push(" OR (e.time_us = ").push_bind(*time);
                    qb.push(" AND e.event_id < ").push_bind(id.clone()).push("))");
                }
                qb.push(" ORDER BY e.time_us DESC, e.event_id DESC LIMIT ").push_bind(filter.limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Distinct business-key names, in order (the `key_names` table the writers fill).
            async fn key_names(&self) -> Result<Vec<String>, StoreError> {
                let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM key_names ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(|(n,)| n).collect())
            }

            /// Events per (source, topic) in the time range: the produce edges of the topology.
            async fn produce_counts(&self, from_us: i64, to_us: i64) -> Result<Vec<ProduceRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(
                    // A record without `ce_source` is its producing span's service's, when known.
                    "SELECT COALESCE(e.source, s.service) AS source, e.topic, COUNT(*) AS events \
                     FROM events e LEFT JOIN spans s ON s.trace_id = e.trace_id AND s.span_id = e.span_id \
                     WHERE e.time_us >= ",
                );
                qb.push_bind(from_us).push(" AND e.time_us < ").push_bind(to_us);
                qb.push(" GROUP BY COALESCE(e.source, s.service), e.topic ORDER BY 1, 2");
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// Reactions in the time range with their cause's topic and the hop time: the consume
            /// edges of the topology. At most `limit` rows, most recent first.
            async fn hops(&self, from_us: i64, to_us: i64, limit: i64) -> Result<Vec<HopRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT c.topic AS cause_topic, e.source AS source, e.time_us - c.time_us AS latency_us \
                     FROM events e JOIN events c ON c.event_id = e.causation_id WHERE e.time_us >= ",
                );
                qb.push_bind(from_us).push(" AND e.time_us < ").push_bind(to_us);
                qb.push(" ORDER BY e.time_us DESC LIMIT ").push_bind(limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// The dead letters of the events `ids` (by the failed event's id), oldest first.
            async fn dead_letters_of(&self, ids: &[String]) -> Result<Vec<DeadLetterRow>, StoreError> {
                let mut out: Vec<DeadLetterRow> = Vec::new();
                for chunk in ids.chunks(IN_CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE original_id IN ("
                    ));
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id);
                    }
                    qb.push(")");
                    out.extend(qb.build_query_as::<DeadLetterRow>().fetch_all(&self.pool).await?);
                }
                crate::store::rows::in_dead_letter_order(&mut out);
                Ok(out)
            }

            /// Dead letters stored at or after `ingested_from_us`, in the order stored, at most
            /// `limit`.
            async fn dead_letters_since(&self, ingested_from_us: i64, limit: i64) -> Result<Vec<DeadLetterRow>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE ingested_at_us >= "
                ));
                qb.push_bind(ingested_from_us);
                qb.push(" ORDER BY ingested_at_us, topic, kafka_partition, kafka_offset LIMIT ");
                qb.push_bind(limit);
                Ok(qb.build_query_as().fetch_all(&self.pool).await?)
            }

            /// How many events and deliveries are stored.
            async fn counts(&self) -> Result<StoreCounts, StoreError> {
                let (events, deliveries): (i64, i64) = sqlx::query_as(
                    // Every event is one delivery; `deliveries` holds the extra ones.
                    "SELECT e.n, e.n + d.n FROM (SELECT COUNT(*) AS n FROM events) e, \
                     (SELECT COUNT(*) AS n FROM deliveries) d",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(StoreCounts { events, deliveries })
            }

            /// A cheap round trip.
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
    };
}

pub(super) use shared_lookups;
