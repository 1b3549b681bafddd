//! Spans on SQLite: written on the store's writing connection (one prepared `INSERT OR IGNORE`
//! a span and a link, in one transaction), read through the shared SQL.

use std::sync::Mutex;

use rusqlite::{params, Connection};
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::span::SpanRecord;
use crate::store::contract::{SpanStore, StoreError};
use crate::store::shared_spans::{
    links_where, push_pairs, shared_span_reads, Pairs, PAIR_CHUNK, POSITION_CHUNK, PRUNE_CHUNK,
};
use crate::store::span_rows::{
    ConsumeRow, CoverageRow, LinkRow, SpanRow, SpanServiceRow, SPAN_COLUMNS,
};

const INSERT_SPAN: &str = "INSERT OR IGNORE INTO spans (trace_id, span_id, parent_span_id, kind, \
     name, service, start_us, end_us, failed, status_message, exception_type, exception_message, \
     messaging_system, destination, kafka_partition, kafka_offset, consumer_group, message_id, \
     operation, received_us) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";

const INSERT_LINK: &str = "INSERT OR IGNORE INTO span_links (trace_id, span_id, linked_trace_id, \
     linked_span_id) VALUES (?1, ?2, ?3, ?4)";

fn write(connection: &Mutex<Connection>, spans: &[SpanRecord]) -> Result<usize, StoreError> {
    let mut connection = connection
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let received_us = crate::clock::now_us();
    let mut new = 0;
    {
        let mut span = tx.prepare_cached(INSERT_SPAN)?;
        let mut link = tx.prepare_cached(INSERT_LINK)?;
        for s in spans {
            let exception = s.exception.as_ref();
            let m = &s.messaging;
            let inserted = span.execute(params![
                s.trace_id,
                s.span_id,
                s.parent_span_id,
                s.kind.number(),
                s.name,
                s.service,
                s.start_us,
                s.end_us,
                s.failed,
                s.status_message,
                exception.and_then(|e| e.kind.as_deref()),
                exception.and_then(|e| e.message.as_deref()),
                m.system,
                m.destination,
                m.partition,
                m.offset,
                m.consumer_group,
                m.message_id,
                m.operation,
                received_us,
            ])?;
            if inserted == 0 {
                continue;
            }
            new += 1;
            for (trace, linked) in &s.links {
                link.execute(params![s.trace_id, s.span_id, trace, linked])?;
            }
        }
    }
    tx.commit()?;
    Ok(new)
}

links_where!(SqliteStore, Sqlite);

impl SpanStore for SqliteStore {
    shared_span_reads!(Sqlite);

    /// Writes on the writing connection, off the async workers (see `write::SqliteWriter`).
    async fn write_spans(&self, spans: &[SpanRecord]) -> Result<usize, StoreError> {
        if spans.is_empty() {
            return Ok(0);
        }
        let connection = self.writer.connection.clone();
        match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| write(&connection, spans))
            }
            _ => {
                let spans = spans.to_vec();
                tokio::task::spawn_blocking(move || write(&connection, &spans))
                    .await
                    .map_err(|e| StoreError::Thread(e.to_string()))?
            }
        }
    }
}
