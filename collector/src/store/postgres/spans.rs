//! Spans on PostgreSQL: a batch in one transaction, spans and links each one `INSERT … SELECT
//! FROM UNNEST(…)` with `ON CONFLICT DO NOTHING`; reads through the shared SQL.

use sqlx::{Postgres, QueryBuilder};

use super::PgStore;
use crate::span::SpanRecord;
use crate::store::contract::{SpanStore, StoreError};
use crate::store::shared_spans::{
    links_where, push_pairs, shared_span_reads, Pairs, PAIR_CHUNK, POSITION_CHUNK, PRUNE_CHUNK,
};
use crate::store::span_rows::{
    ConsumeRow, CoverageRow, LinkRow, SpanRow, SpanServiceRow, SPAN_COLUMNS,
};

const INSERT_SPANS: &str = "INSERT INTO spans (trace_id, span_id, parent_span_id, kind, name, \
     service, start_us, end_us, failed, status_message, exception_type, exception_message, \
     messaging_system, destination, kafka_partition, kafka_offset, consumer_group, message_id, \
     operation, received_us) \
     SELECT *, $20::bigint FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], \
     $6::text[], $7::bigint[], $8::bigint[], $9::bool[], $10::text[], $11::text[], $12::text[], \
     $13::text[], $14::text[], $15::int[], $16::bigint[], $17::text[], $18::text[], $19::text[]) \
     ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING trace_id, span_id";

const INSERT_LINKS: &str = "INSERT INTO span_links (trace_id, span_id, linked_trace_id, \
     linked_span_id) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
     ON CONFLICT DO NOTHING";

/// Spans per statement.
const SPAN_CHUNK: usize = 2000;

links_where!(PgStore, Postgres);

impl SpanStore for PgStore {
    shared_span_reads!(Postgres);

    async fn write_spans(&self, spans: &[SpanRecord]) -> Result<usize, StoreError> {
        if spans.is_empty() {
            return Ok(0);
        }
        let received_us = crate::clock::now_us();
        let mut tx = self.pool.begin().await?;
        let mut new = 0;
        for chunk in spans.chunks(SPAN_CHUNK) {
            let col =
                |f: fn(&SpanRecord) -> Option<String>| chunk.iter().map(f).collect::<Vec<_>>();
            let inserted: Vec<(String, String)> = sqlx::query_as(INSERT_SPANS)
                .bind(chunk.iter().map(|s| s.trace_id.clone()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|s| s.span_id.clone()).collect::<Vec<_>>())
                .bind(col(|s| s.parent_span_id.clone()))
                .bind(chunk.iter().map(|s| s.kind.number()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
                .bind(col(|s| s.service.clone()))
                .bind(chunk.iter().map(|s| s.start_us).collect::<Vec<_>>())
                .bind(chunk.iter().map(|s| s.end_us).collect::<Vec<_>>())
                .bind(chunk.iter().map(|s| s.failed).collect::<Vec<_>>())
                .bind(col(|s| s.status_message.clone()))
                .bind(col(|s| s.exception.as_ref().and_then(|e| e.kind.clone())))
                .bind(col(|s| {
                    s.exception.as_ref().and_then(|e| e.message.clone())
                }))
                .bind(col(|s| s.messaging.system.clone()))
                .bind(col(|s| s.messaging.destination.clone()))
                .bind(
                    chunk
                        .iter()
                        .map(|s| s.messaging.partition)
                        .collect::<Vec<_>>(),
                )
                .bind(chunk.iter().map(|s| s.messaging.offset).collect::<Vec<_>>())
                .bind(col(|s| s.messaging.consumer_group.clone()))
                .bind(col(|s| s.messaging.message_id.clone()))
                .bind(col(|s| s.messaging.operation.clone()))
                .bind(received_us)
                .fetch_all(&mut *tx)
                .await?;
            new += inserted.len();
            let inserted: std::collections::HashSet<(String, String)> =
                inserted.into_iter().collect();
            let mut links: [Vec<&str>; 4] = Default::default();
            for s in chunk
                .iter()
                .filter(|s| inserted.contains(&(s.trace_id.clone(), s.span_id.clone())))
            {
                for (trace, span) in &s.links {
                    links[0].push(&s.trace_id);
                    links[1].push(&s.span_id);
                    links[2].push(trace);
                    links[3].push(span);
                }
            }
            if !links[0].is_empty() {
                let [a, b, c, d] = links;
                sqlx::query(INSERT_LINKS)
                    .bind(a)
                    .bind(b)
                    .bind(c)
                    .bind(d)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(new)
    }
}
