//! The PostgreSQL write path: a batch in one transaction, the same rules as SQLite's row-by-row
//! writer (the store suite holds both to the same outcomes).
//!
//! A batch's new events go in with one binary `COPY` (`binary_copy`), which inserts them without
//! per-row conflict handling: the usual batch holds only ids the store has never seen. When one of
//! them is stored already (a re-delivery, a duplicate publish, or the same record written by
//! another collector meanwhile), the `COPY` fails on the primary key, its transaction is rolled
//! back, and the batch is written again with multi-row `INSERT … ON CONFLICT DO NOTHING`, which
//! tells the known ids apart; the batches after a conflict take that path first until one meets
//! no known id.
//!
//! Concurrent writers (two batches of one collector, or collectors of one group across a
//! rebalance) may hold the same records. Every statement takes its rows in one order — dead
//! letters and deliveries by position, events by id, then key names and problems — and the
//! events a batch updates are locked in id order before any delivery is inserted, so two batches
//! wait for each other at most one way: never a deadlock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;

use sqlx::{Postgres, QueryBuilder};

use super::binary_copy::BinaryCopy;
use super::{keys, PgStore};
use crate::record::EventRecord;
use crate::store::contract::{StoreError, WriteOutcome};

/// Rows per multi-row INSERT: under SQLite's 32 766 and PostgreSQL's 65 535 bind limits.
const EVENT_CHUNK: usize = 1000;
const SMALL_CHUNK: usize = 2000;

/// The columns a new event fills (`ingest_xid` takes its default, the storing transaction).
const EVENT_COLUMNS: &str = "event_id, id_source, topic, kafka_partition, kafka_offset, \
     record_key, broker_time_us, event_time_us, time_us, event_type, source, subject, \
     content_type, trace_id, span_id, causation_id, correlation_id, headers, payload, \
     payload_size, payload_truncated, problems, problem_count, delivery_count, ingested_at_us, keys, redactions";

/// Bytes of `COPY` data built before they are sent (a batch's whole stream is ~7 MB).
const COPY_PART: usize = 1 << 20;

/// How many values [`EVENT_COLUMNS`] names.
const EVENT_FIELDS: i16 = 27;

/// SQLSTATE `unique_violation`.
const UNIQUE_VIOLATION: &str = "23505";

/// How a batch's new events are inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NewEvents {
    /// One binary `COPY`; fails if an id is stored already.
    Copy,
    /// Multi-row `INSERT … ON CONFLICT DO NOTHING`, telling stored ids apart.
    Insert,
}

/// A batch sorted out before it is written.
struct Sorted<'a> {
    /// Dead-letter copies, by position.
    dead: Vec<&'a EventRecord>,
    /// The first record of each id, by id.
    firsts: Vec<&'a EventRecord>,
    /// Later records of an id already among `firsts`.
    repeats: Vec<&'a EventRecord>,
}

impl<'a> Sorted<'a> {
    fn of(batch: &'a [EventRecord]) -> Self {
        let mut positions = HashSet::with_capacity(batch.len());
        let (mut dead, unique): (Vec<&EventRecord>, Vec<&EventRecord>) = batch
            .iter()
            .filter(|e| positions.insert((e.topic.as_str(), e.partition, e.offset)))
            .partition(|e| e.dead_letter.is_some());
        dead.sort_unstable_by(|a, b| by_position(a).cmp(&by_position(b)));
        let mut firsts: Vec<&EventRecord> = Vec::with_capacity(unique.len());
        let mut repeats: Vec<&EventRecord> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::with_capacity(unique.len());
        for e in unique {
            if seen.insert(e.event_id.as_str()) {
                firsts.push(e);
            } else {
                repeats.push(e);
            }
        }
        firsts.sort_unstable_by(|a, b| a.event_id.cmp(&b.event_id));
        Self {
            dead,
            firsts,
            repeats,
        }
    }
}

/// A record's position, the order its delivery rows are written in.
fn by_position(e: &EventRecord) -> (&str, i32, i64) {
    (e.topic.as_str(), e.partition, e.offset)
}

/// Whether `e` is PostgreSQL refusing a row whose unique key is stored already.
fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(db))
        if db.code().as_deref() == Some(UNIQUE_VIOLATION))
}

impl PgStore {
    /// Writes a batch in one transaction, idempotently (see the module docs).
    pub(super) async fn write_batch(
        &self,
        batch: &[EventRecord],
    ) -> Result<WriteOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(WriteOutcome {
                records: 0,
                ..WriteOutcome::default()
            });
        }
        let sorted = Sorted::of(batch);
        if !self.met_stored_ids.load(Relaxed) {
            match self.write_sorted(batch, &sorted, NewEvents::Copy).await {
                Err(e) if is_unique_violation(&e) => {
                    tracing::debug!("a batch holds stored event ids; writing it again with INSERT");
                    self.met_stored_ids.store(true, Relaxed);
                }
                done => return done,
            }
        }
        let outcome = self.write_sorted(batch, &sorted, NewEvents::Insert).await?;
        let stored_before = sorted.firsts.len() - outcome.new_events;
        self.met_stored_ids.store(stored_before > 0, Relaxed);
        Ok(outcome)
    }

    async fn write_sorted(
        &self,
        batch: &[EventRecord],
        sorted: &Sorted<'_>,
        how: NewEvents,
    ) -> Result<WriteOutcome, StoreError> {
        let mut outcome = WriteOutcome {
            records: batch.len(),
            ..WriteOutcome::default()
        };
        let mut tx = self.pool.begin().await?;
        // 0. Dead-letter copies are kept apart, as their originals' failures.
        outcome.dead_letters = dead_letters(&mut tx, &sorted.dead).await?;

        // 1. The first record of each id in the batch creates its event (the usual case: one
        //    `COPY`, nothing else).
        let created: Vec<&EventRecord> = match how {
            NewEvents::Copy => {
                copy_events(&mut tx, &sorted.firsts).await?;
                sorted.firsts.clone()
            }
            NewEvents::Insert => insert_events(&mut tx, &sorted.firsts).await?,
        };
        let mut known = sorted.repeats.clone();
        if created.len() < sorted.firsts.len() {
            let ids: HashSet<&str> = created.iter().map(|e| e.event_id.as_str()).collect();
            known.extend(
                sorted
                    .firsts
                    .iter()
                    .filter(|e| !ids.contains(e.event_id.as_str())),
            );
        }

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
        let stored: Vec<&EventRecord> = created.iter().chain(duplicates.iter()).copied().collect();
        // `stored` is the created events, then the duplicate publishes.
        for (i, e) in stored.iter().enumerate() {
            let topic = outcome.per_topic.entry(e.topic.clone()).or_default();
            topic.new_deliveries += 1;
            topic.duplicate_publishes += usize::from(i >= outcome.new_events);
        }

        // 3. Key names and problem kinds, for lookups (the keys themselves are on the event row).
        let mut names = self.names.unknown(stored.iter().copied());
        names.sort_unstable();
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
            // Sizes vary batch to batch: unprepared, like a partial chunk of events below.
            qb.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.names.learn(&names);
        self.maybe_analyze(outcome.new_events as u64).await;
        Ok(outcome)
    }
}

/// Inserts the events `firsts` (sorted by id) with one binary `COPY`; fails with a unique
/// violation if one of their ids is stored already.
async fn copy_events(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    firsts: &[&EventRecord],
) -> Result<(), StoreError> {
    if firsts.is_empty() {
        return Ok(());
    }
    let mut sink = tx
        .copy_in_raw(&format!(
            "COPY events ({EVENT_COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let mut copy = BinaryCopy::with_capacity(COPY_PART + 64 * 1024);
    for e in firsts {
        copy.row(EVENT_FIELDS)
            .field(&e.event_id)?
            .field(&e.id_source)?
            .field(&e.topic)?
            .field(e.partition)?
            .field(e.offset)?
            .field(e.record_key.as_deref())?
            .field(e.broker_time_us)?
            .field(e.event_time_us)?
            .field(e.time_us)?
            .field(e.event_type.as_deref())?
            .field(e.source.as_deref())?
            .field(e.subject.as_deref())?
            .field(e.content_type.as_deref())?
            .field(e.trace_id.as_deref())?
            .field(e.span_id.as_deref())?
            .field(e.causation_id.as_deref())?
            .field(e.correlation_id.as_deref())?
            .field(&e.headers_json)?
            .field(e.payload.as_deref())?
            .field(e.payload_size)?
            .field(e.payload_truncated)?
            .field(problems_json(e))?
            .field(e.problems.len() as i64)?
            .field(1_i64)?
            .field(e.ingested_at_us)?
            .field(keys::keys_array(e))?
            .field(redactions_json(e))?;
        if copy.pending().len() >= COPY_PART {
            sink.send(copy.pending()).await?;
            copy.clear();
        }
    }
    copy.end();
    sink.send(copy.pending()).await?;
    sink.finish().await?;
    Ok(())
}

/// Inserts those of the events `firsts` (sorted by id) whose id is not stored yet; returns them.
async fn insert_events<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    firsts: &[&'a EventRecord],
) -> Result<Vec<&'a EventRecord>, StoreError> {
    let mut created = Vec::with_capacity(firsts.len());
    for chunk in firsts.chunks(EVENT_CHUNK) {
        let mut qb =
            QueryBuilder::<Postgres>::new(format!("INSERT INTO events ({EVENT_COLUMNS}) "));
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
                .push_bind(problems_json(e))
                .push_bind(e.problems.len() as i64)
                .push_bind(1_i64)
                .push_bind(e.ingested_at_us)
                .push_bind(keys::keys_array(e))
                .push_bind(redactions_json(e));
        });
        qb.push(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id");
        // Sent unprepared: this path runs only for batches holding stored ids, and each
        // connection's statement cache would otherwise keep a 26 000-placeholder text per size.
        let rows: HashSet<String> = qb
            .build_query_as::<(String,)>()
            .persistent(false)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        created.extend(
            chunk
                .iter()
                .copied()
                .filter(|e| rows.contains(e.event_id.as_str())),
        );
    }
    Ok(created)
}

/// The `problems` column of `e`: its problems as JSON.
/// What redaction removed from `e`, as stored (NULL when nothing).
fn redactions_json(e: &EventRecord) -> Option<String> {
    e.redactions.as_ref().and_then(|r| r.to_json())
}

fn problems_json(e: &EventRecord) -> String {
    serde_json::to_string(&e.problems).unwrap_or_else(|_| "[]".into())
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
                .push_bind(problems_json(e))
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
    // Locked in id order: this batch may update these events (their delivery count, their keys),
    // and another batch holding some of the same ids locks them in the same order.
    let firsts: Vec<(String, String, i32, i64)> = sqlx::query_as(
        "SELECT event_id, topic, kafka_partition, kafka_offset FROM events \
         WHERE event_id = ANY($1) ORDER BY event_id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let firsts: HashSet<(&str, &str, i32, i64)> = firsts
        .iter()
        .map(|(id, t, p, o)| (id.as_str(), t.as_str(), *p, *o))
        .collect();
    let mut candidates: Vec<&EventRecord> = known
        .iter()
        .filter(|e| {
            !firsts.contains(&(e.event_id.as_str(), e.topic.as_str(), e.partition, e.offset))
        })
        .copied()
        .collect();
    candidates.sort_unstable_by(|a, b| by_position(a).cmp(&by_position(b)));
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
        let mut per_id: Vec<(&str, i64)> = per_id.into_iter().collect();
        per_id.sort_unstable();
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
