//! The PostgreSQL write path: a batch in one transaction, a few multi-row statements, the same
//! rules as SQLite's row-by-row writer (the store suite holds both to the same outcomes).

use std::collections::{HashMap, HashSet};

use sqlx::{Postgres, QueryBuilder};

use super::{keys, PgStore};
use crate::record::EventRecord;
use crate::store::contract::{StoreError, WriteOutcome};

/// Rows per multi-row INSERT: under SQLite's 32 766 and PostgreSQL's 65 535 bind limits.
const EVENT_CHUNK: usize = 1000;
const SMALL_CHUNK: usize = 2000;

impl PgStore {
    /// Writes a batch in one transaction, idempotently.
    pub(super) async fn write_batch(
        &self,
        batch: &[EventRecord],
    ) -> Result<WriteOutcome, StoreError> {
        let mut outcome = WriteOutcome {
            records: batch.len(),
            ..WriteOutcome::default()
        };
        if batch.is_empty() {
            return Ok(outcome);
        }
        let mut positions = HashSet::new();
        let (dead, unique): (Vec<&EventRecord>, Vec<&EventRecord>) = batch
            .iter()
            .filter(|e| positions.insert((e.topic.as_str(), e.partition, e.offset)))
            .partition(|e| e.dead_letter.is_some());
        let mut tx = self.pool.begin().await?;
        // 0. Dead-letter copies are kept apart, as their originals' failures.
        outcome.dead_letters = dead_letters(&mut tx, &dead).await?;

        // 1. The first record of each id in the batch creates its event (the usual case: one
        //    statement per 1 000 events, nothing else).
        let mut firsts: Vec<&EventRecord> = Vec::with_capacity(unique.len());
        let mut known: Vec<&EventRecord> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::with_capacity(unique.len());
        for e in unique {
            if seen.insert(e.event_id.as_str()) {
                firsts.push(e);
            } else {
                known.push(e);
            }
        }
        let mut created: HashSet<String> = HashSet::with_capacity(firsts.len());
        for chunk in firsts.chunks(EVENT_CHUNK) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO events (event_id, id_source, topic, kafka_partition, kafka_offset, \
                 record_key, broker_time_us, event_time_us, time_us, event_type, source, subject, \
                 content_type, trace_id, span_id, causation_id, correlation_id, headers, payload, \
                 payload_size, payload_truncated, problems, problem_count, delivery_count, \
                 ingested_at_us, keys) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(&e.event_id)
                    .push_bind(&e.id_source)
                    .push_bind(&e.topic)
                    .push_bind(e.partition)
                    .push_bind(e.offset)
                    .push_bind(e.record_key.as_deref())
                    .push_bind(e.broker_time_us)
                    .push_bind(e.event_time_us)
                    .push_bind(e.time_us)
                    .push_bind(e.event_type.as_deref())
                    .push_bind(e.source.as_deref())
                    .push_bind(e.subject.as_deref())
                    .push_bind(e.content_type.as_deref())
                    .push_bind(e.trace_id.as_deref())
                    .push_bind(e.span_id.as_deref())
                    .push_bind(e.causation_id.as_deref())
                    .push_bind(e.correlation_id.as_deref())
                    .push_bind(&e.headers_json)
                    .push_bind(e.payload.as_deref())
                    .push_bind(e.payload_size)
                    .push_bind(e.payload_truncated)
                    .push_bind(serde_json::to_string(&e.problems).unwrap_or_else(|_| "[]".into()))
                    .push_bind(e.problems.len() as i64)
                    .push_bind(1_i64)
                    .push_bind(e.ingested_at_us)
                    .push_bind(keys::keys_array(e));
            });
            qb.push(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id");
            // A full chunk's statement is prepared once per connection; the other sizes (a
            // batch's last chunk, closed by time) are sent unprepared: each connection's statement
            // cache kept up to 100 of them, a 26 000-placeholder text and its parameter types
            // each, which grew the collector's RSS with every new size (and the server's backends
            // with their plans).
            let rows: Vec<(String,)> = qb
                .build_query_as()
                .persistent(chunk.len() == EVENT_CHUNK)
                .fetch_all(&mut *tx)
                .await?;
            created.extend(rows.into_iter().map(|(id,)| id));
        }
        known.extend(
            firsts
                .iter()
                .filter(|e| !created.contains(e.event_id.as_str())),
        );

        // 2. Records of known ids: a delivery seen before (the event's first position or an extra
        //    one), or a new extra delivery — a duplicate publish.
        let duplicates = extra_deliveries(&mut tx, &known).await?;
        let mut duplicated: Vec<&str> = duplicates.iter().map(|e| e.event_id.as_str()).collect();
        duplicated.sort_unstable();
        duplicated.dedup();
        outcome.new_events = created.len();
        outcome.duplicate_publishes = duplicates.len();
        outcome.new_deliveries = outcome.new_events + outcome.duplicate_publishes;
        outcome.redelivered = batch.len() - outcome.new_deliveries - outcome.dead_letters;
        let stored: Vec<&EventRecord> = firsts
            .iter()
            .filter(|e| created.contains(e.event_id.as_str()))
            .chain(duplicates.iter())
            .copied()
            .collect();
        // `stored` is the created events, then the duplicate publishes.
        for (i, e) in stored.iter().enumerate() {
            let topic = outcome.per_topic.entry(e.topic.clone()).or_default();
            topic.new_deliveries += 1;
            topic.duplicate_publishes += usize::from(i >= outcome.new_events);
        }

        // 3. Key names and problem kinds, for lookups (the keys themselves are on the event row).
        let names = self.names.unknown(stored.iter().copied());
        keys::insert_names(&mut tx, &names).await?;
        keys::merge_keys(&mut tx, &duplicates).await?;
        let mut kinds: Vec<(&str, &str)> = stored
            .iter()
            .flat_map(|e| {
                e.problems
                    .iter()
                    .map(|p| (p.kind.as_str(), e.event_id.as_str()))
            })
            .chain(duplicated.iter().map(|id| ("duplicate_publish", *id)))
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        for chunk in kinds.chunks(SMALL_CHUNK) {
            let mut qb =
                QueryBuilder::<Postgres>::new("INSERT INTO event_problems (kind, event_id) ");
            qb.push_values(chunk, |mut b, (kind, id)| {
                b.push_bind(*kind).push_bind(*id);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            // Sizes vary batch to batch: unprepared, like a partial chunk of events above.
            qb.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.names.learn(&names);
        self.maybe_analyze(outcome.new_events as u64).await;
        Ok(outcome)
    }
}

/// Stores the dead-letter copies `dead`; returns how many were new (the others are re-deliveries).
async fn dead_letters(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    dead: &[&EventRecord],
) -> Result<usize, StoreError> {
    let mut stored = 0;
    for chunk in dead.chunks(SMALL_CHUNK / 10) {
        let mut qb = QueryBuilder::<Postgres>::new(
            "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, event_id, original_id, \
             original_topic, original_partition, original_offset, recognised_by, reason, \
             consumer_group, record_key, broker_time_us, time_us, headers, payload, payload_size, \
             problems, ingested_at_us) ",
        );
        qb.push_values(chunk, |mut b, e| {
            let dl = e.dead_letter.as_ref().expect("only dead letters");
            let original = dl.original.as_ref();
            b.push_bind(&e.topic)
                .push_bind(e.partition)
                .push_bind(e.offset)
                .push_bind(&e.event_id)
                .push_bind(&dl.original_id)
                .push_bind(original.map(|(t, _, _)| t.as_str()))
                .push_bind(original.map(|(_, p, _)| *p))
                .push_bind(original.map(|(_, _, o)| *o))
                .push_bind(dl.recognised_by)
                .push_bind(&dl.reason)
                .push_bind(dl.consumer_group.as_deref())
                .push_bind(e.record_key.as_deref())
                .push_bind(e.broker_time_us)
                .push_bind(e.dead_lettered_at_us())
                .push_bind(&e.headers_json)
                .push_bind(e.payload.as_deref())
                .push_bind(e.payload_size)
                .push_bind(serde_json::to_string(&e.problems).unwrap_or_else(|_| "[]".into()))
                .push_bind(e.ingested_at_us);
        });
        qb.push(" ON CONFLICT DO NOTHING");
        stored += qb
            .build()
            .persistent(false)
            .execute(&mut **tx)
            .await?
            .rows_affected() as usize;
    }
    Ok(stored)
}

/// Records the records of already stored ids that sit at a position their event does not know
/// yet as extra deliveries (and counts them on the event); returns those, the duplicate
/// publishes. The others are re-deliveries. Usually `known` is empty and nothing is sent.
async fn extra_deliveries<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    known: &[&'a EventRecord],
) -> Result<Vec<&'a EventRecord>, StoreError> {
    if known.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<&str> = known.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let firsts: Vec<(String, String, i32, i64)> = sqlx::query_as(
        "SELECT event_id, topic, kafka_partition, kafka_offset FROM events WHERE event_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let firsts: HashSet<(&str, &str, i32, i64)> = firsts
        .iter()
        .map(|(id, t, p, o)| (id.as_str(), t.as_str(), *p, *o))
        .collect();
    let candidates: Vec<&EventRecord> = known
        .iter()
        .filter(|e| {
            !firsts.contains(&(e.event_id.as_str(), e.topic.as_str(), e.partition, e.offset))
        })
        .copied()
        .collect();
    let mut duplicates = Vec::new();
    for chunk in candidates.chunks(SMALL_CHUNK) {
        let mut qb = QueryBuilder::<Postgres>::new(
            "INSERT INTO deliveries (topic, kafka_partition, kafka_offset, event_id, broker_time_us) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(&e.topic)
                .push_bind(e.partition)
                .push_bind(e.offset)
                .push_bind(&e.event_id)
                .push_bind(e.broker_time_us);
        });
        qb.push(" ON CONFLICT DO NOTHING RETURNING topic, kafka_partition, kafka_offset");
        let inserted: HashSet<(String, i32, i64)> = qb
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        duplicates.extend(
            chunk
                .iter()
                .copied()
                .filter(|e| inserted.contains(&(e.topic.clone(), e.partition, e.offset))),
        );
    }
    let mut per_id: HashMap<&str, i64> = HashMap::new();
    for e in &duplicates {
        *per_id.entry(e.event_id.as_str()).or_default() += 1;
    }
    if !per_id.is_empty() {
        let (ids, counts): (Vec<&str>, Vec<i64>) = per_id.into_iter().unzip();
        sqlx::query(
            "UPDATE events e SET delivery_count = e.delivery_count + n.extra \
             FROM UNNEST($1::text[], $2::bigint[]) AS n(id, extra) WHERE e.event_id = n.id",
        )
        .bind(&ids)
        .bind(&counts)
        .execute(&mut **tx)
        .await?;
    }
    Ok(duplicates)
}
