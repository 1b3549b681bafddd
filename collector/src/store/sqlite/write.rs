//! The SQLite write path: one dedicated connection, prepared single-row statements, on a blocking
//! thread. A new event is one `INSERT` (and one for its keys); only a known id (a re-delivery or a
//! duplicate publish) looks further.
//!
//! Through sqlx, a batch was a few multi-row `INSERT`s of up to 25 000 bound values, built and
//! bound on the async side and sent to sqlx's worker thread: half the CPU went to building and
//! binding them. Here each row is one step of a cached prepared statement on the connection's
//! own thread, which is what SQLite is fastest at (`cargo bench -p choreoscope --bench ingest`,
//! figures in docs/benchmarks.md). The rules are those of the PostgreSQL path, row by row, and
//! the store suite runs the same behaviours against both.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection};

use super::statement::{Param, StaticStatement};
use crate::record::{DeadLetterMark, EventRecord};
use crate::store::contract::{StoreError, TopicOutcome, WriteOutcome};
use crate::store::known_names::KnownNames;

/// The store's single writing connection.
#[derive(Debug, Clone)]
pub struct SqliteWriter {
    pub(super) connection: Arc<Mutex<Connection>>,
    names: Arc<KnownNames>,
}

// `OR IGNORE`, not `ON CONFLICT DO …`: with a NOT NULL column, an `ON CONFLICT` statement may
// abort half-way, so SQLite copies every page it touches into a statement journal first — a third
// of the write path's instructions (callgrind, docs/benchmarks.md). `OR IGNORE` cannot abort.
const INSERT_EVENT: &str = "INSERT OR IGNORE INTO events (event_id, id_source, topic, kafka_partition, \
     kafka_offset, record_key, broker_time_us, event_time_us, time_us, event_type, source, subject, \
     content_type, trace_id, span_id, causation_id, correlation_id, headers, payload, payload_size, \
     payload_truncated, problems, problem_count, delivery_count, ingested_at_us, keys, generation, \
     redactions) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, \
     ?23, 1, ?24, ?25, ?26, ?27)";

const FIRST_POSITION: &str =
    "SELECT topic, kafka_partition, kafka_offset FROM events WHERE event_id = ?1";

const INSERT_EXTRA_DELIVERY: &str =
    "INSERT OR IGNORE INTO deliveries (topic, kafka_partition, kafka_offset, event_id, broker_time_us) \
     VALUES (?1, ?2, ?3, ?4, ?5)";

const EVENT_KEYS: &str = "SELECT keys FROM events WHERE event_id = ?1";

const SET_EVENT_KEYS: &str = "UPDATE events SET keys = ?2 WHERE event_id = ?1";

const COUNT_DELIVERY: &str =
    "UPDATE events SET delivery_count = delivery_count + 1 WHERE event_id = ?1";

/// Keys per `INSERT` into `event_keys`: an event's keys (usually 2–4) go in one statement.
const KEYS_PER_INSERT: usize = 4;

/// The key `INSERT` for `n` rows (1 ≤ n ≤ [`KEYS_PER_INSERT`]).
fn insert_keys(n: usize) -> String {
    let rows = vec!["(?, ?, ?)"; n].join(", ");
    format!("INSERT OR IGNORE INTO event_keys (name, value, event_id) VALUES {rows}")
}

const INSERT_DEAD_LETTER: &str = "INSERT OR IGNORE INTO dead_letters (topic, kafka_partition, \
     kafka_offset, event_id, original_id, original_topic, original_partition, original_offset, \
     recognised_by, reason, consumer_group, record_key, broker_time_us, time_us, headers, payload, \
     payload_size, problems, ingested_at_us) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

const INSERT_KEY_NAME: &str = "INSERT OR IGNORE INTO key_names (name) VALUES (?1)";

const INSERT_PROBLEM: &str =
    "INSERT OR IGNORE INTO event_problems (kind, event_id) VALUES (?1, ?2)";

impl SqliteWriter {
    /// Opens the writing connection on an existing, migrated database file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        // The same durability as the pool's connections (see `Store::connect`); checkpoints are
        // the background checkpointer's job, never a commit's.
        connection.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -16384;",
        )?;
        connection.set_prepared_statement_cache_capacity(16);
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            names: Arc::default(),
        })
    }

    /// Writes `batch` in one transaction, off the async workers.
    ///
    /// On a multi-threaded runtime the write borrows the batch where it is (`block_in_place`:
    /// this worker becomes the blocking thread and hands its other tasks on), so the records are
    /// neither copied nor freed on another thread — both showed in the writer's profile. A
    /// current-thread runtime (tests) cannot do that, and writes a copy on a blocking thread.
    pub async fn write_batch(&self, batch: &[EventRecord]) -> Result<WriteOutcome, StoreError> {
        match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| write_locked(&self.connection, &self.names, batch))
            }
            _ => {
                let (connection, names) = (self.connection.clone(), self.names.clone());
                let batch = batch.to_vec();
                tokio::task::spawn_blocking(move || write_locked(&connection, &names, &batch))
                    .await
                    .map_err(|e| StoreError::Thread(e.to_string()))?
            }
        }
    }
}

/// [`write()`] on the writing connection (a panic in an earlier write does not poison it: each
/// write is its own transaction, rolled back when it failed).
fn write_locked(
    connection: &Mutex<Connection>,
    names: &KnownNames,
    batch: &[EventRecord],
) -> Result<WriteOutcome, StoreError> {
    let mut connection = connection
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    write(&mut connection, names, batch)
}

/// The write itself: row by row, the rules of the module docs of [`crate::store`].
fn write(
    connection: &mut Connection,
    names: &KnownNames,
    batch: &[EventRecord],
) -> Result<WriteOutcome, StoreError> {
    let mut outcome = WriteOutcome {
        records: batch.len(),
        ..WriteOutcome::default()
    };
    // Immediate: the write lock first (waiting for it as the busy timeout allows). A deferred
    // transaction would begin with the read below and then fail at once, without waiting, if a
    // `TRUNCATE` checkpoint held the lock when it turned into a write.
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let generation =
        super::trace_index::generation(
            tx.query_row(super::trace_index::MAX_ROWID, [], |row| row.get(0))?,
        );
    {
        // The two statements of every event bind in place (`sqlite_static`); the rare ones below
        // go through rusqlite.
        let mut event = StaticStatement::prepare(&tx, INSERT_EVENT)?;
        // key_inserts[n - 1] inserts n keys; prepared once per batch, not looked up per event.
        let mut key_inserts = (1..=KEYS_PER_INSERT)
            .map(|n| StaticStatement::prepare(&tx, &insert_keys(n)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut key_params: Vec<Param<'_>> = Vec::with_capacity(3 * KEYS_PER_INSERT);
        let mut problem = tx.prepare_cached(INSERT_PROBLEM)?;
        let mut topic_outcome: Option<(&str, TopicOutcome)> = None;
        for e in batch {
            // 0. A dead-letter copy is kept apart, as its original's failure.
            if let Some(dl) = &e.dead_letter {
                if dead_letter(&tx, e, dl)? {
                    outcome.dead_letters += 1;
                } else {
                    outcome.redelivered += 1;
                }
                continue;
            }
            // 1. The first delivery of an id creates the event (one statement: the usual case).
            let problems = if e.problems.is_empty() {
                Cow::Borrowed("[]")
            } else {
                Cow::Owned(serde_json::to_string(&e.problems).unwrap_or_else(|_| "[]".into()))
            };
            let keys = crate::record::keys_to_json(&e.keys);
            let redactions = e.redactions.as_ref().and_then(|r| r.to_json());
            let created = event.execute(&[
                Param::Text(&e.event_id),
                Param::Text(&e.id_source),
                Param::Text(&e.topic),
                Param::Int(i64::from(e.partition)),
                Param::Int(e.offset),
                e.record_key.as_deref().into(),
                e.broker_time_us.into(),
                e.event_time_us.into(),
                Param::Int(e.time_us),
                e.event_type.as_deref().into(),
                e.source.as_deref().into(),
                e.subject.as_deref().into(),
                e.content_type.as_deref().into(),
                e.trace_id.as_deref().into(),
                e.span_id.as_deref().into(),
                e.causation_id.as_deref().into(),
                e.correlation_id.as_deref().into(),
                Param::Text(&e.headers_json),
                e.payload.as_deref().into(),
                Param::Int(e.payload_size),
                Param::Int(i64::from(e.payload_truncated)),
                Param::Text(&problems),
                Param::Int(e.problems.len() as i64),
                Param::Int(e.ingested_at_us),
                Param::Text(&keys),
                Param::Int(generation),
                redactions.as_deref().into(),
            ])? == 1;
            // 2. A known id: this record is a delivery seen before (its first one, or an extra
            //    one), or a new extra delivery — a duplicate publish.
            let duplicate = !created;
            if duplicate && !extra_delivery(&tx, e)? {
                outcome.redelivered += 1;
                continue;
            }
            outcome.new_deliveries += 1;
            if duplicate {
                outcome.duplicate_publishes += 1;
                problem.execute(params!["duplicate_publish", e.event_id])?;
                add_keys(&tx, e)?;
            } else {
                outcome.new_events += 1;
            }
            // 3. Keys and problem kinds, for lookups.
            for keys in e.keys.chunks(KEYS_PER_INSERT) {
                key_params.clear();
                key_params.extend(keys.iter().flat_map(|(name, value)| {
                    [
                        Param::Text(name),
                        Param::Text(value),
                        Param::Text(&e.event_id),
                    ]
                }));
                key_inserts[keys.len() - 1].execute(&key_params)?;
            }
            for p in &e.problems {
                problem.execute(params![p.kind, e.event_id])?;
            }
            // Consecutive records are mostly of one topic: count them without a map lookup each.
            match &mut topic_outcome {
                Some((topic, counts)) if *topic == e.topic => {
                    counts.new_deliveries += 1;
                    counts.duplicate_publishes += usize::from(duplicate);
                }
                _ => {
                    if let Some((topic, counts)) = topic_outcome.take() {
                        add_topic(&mut outcome, topic, counts);
                    }
                    topic_outcome = Some((
                        &e.topic,
                        TopicOutcome {
                            new_deliveries: 1,
                            duplicate_publishes: usize::from(duplicate),
                        },
                    ));
                }
            }
        }
        if let Some((topic, counts)) = topic_outcome {
            add_topic(&mut outcome, topic, counts);
        }
    }
    // 4. The key names this batch brings first, for listing.
    // A dead-letter copy's keys are not stored: its names are not listed either (as PostgreSQL).
    let new_names = names.unknown(batch.iter().filter(|e| e.dead_letter.is_none()));
    for name in &new_names {
        tx.prepare_cached(INSERT_KEY_NAME)?.execute([name])?;
    }
    tx.commit()?;
    names.learn(&new_names);
    Ok(outcome)
}

/// Stores `e`, a dead-letter copy; `false` when its position is stored already (a re-delivery).
fn dead_letter(
    tx: &rusqlite::Transaction<'_>,
    e: &EventRecord,
    dl: &DeadLetterMark,
) -> Result<bool, StoreError> {
    let (original_topic, original_partition, original_offset) = match &dl.original {
        Some((t, p, o)) => (Some(t.as_str()), Some(*p), Some(*o)),
        None => (None, None, None),
    };
    Ok(tx.prepare_cached(INSERT_DEAD_LETTER)?.execute(params![
        e.topic,
        e.partition,
        e.offset,
        e.event_id,
        dl.original_id,
        original_topic,
        original_partition,
        original_offset,
        dl.recognised_by,
        dl.reason,
        dl.consumer_group,
        e.record_key,
        e.broker_time_us,
        e.dead_lettered_at_us(),
        e.headers_json,
        e.payload,
        e.payload_size,
        serde_json::to_string(&e.problems).unwrap_or_else(|_| "[]".into()),
        e.ingested_at_us,
    ])? == 1)
}

/// Records `e`, whose id is already stored, as an extra delivery of that event; `false` when its
/// position is already known (the event's first position or an extra one: a re-delivery).
fn extra_delivery(tx: &rusqlite::Transaction<'_>, e: &EventRecord) -> Result<bool, StoreError> {
    let first: (String, i32, i64) = tx
        .prepare_cached(FIRST_POSITION)?
        .query_row([&e.event_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    if (first.0.as_str(), first.1, first.2) == (e.topic.as_str(), e.partition, e.offset) {
        return Ok(false);
    }
    let inserted = tx.prepare_cached(INSERT_EXTRA_DELIVERY)?.execute(params![
        e.topic,
        e.partition,
        e.offset,
        e.event_id,
        e.broker_time_us
    ])? == 1;
    if inserted {
        tx.prepare_cached(COUNT_DELIVERY)?.execute([&e.event_id])?;
    }
    Ok(inserted)
}

/// Adds the keys of `e`, a duplicate publish, to those on its event's row (the union of every
/// publish's keys, as the `event_keys` rows have).
fn add_keys(tx: &rusqlite::Transaction<'_>, e: &EventRecord) -> Result<(), StoreError> {
    if e.keys.is_empty() {
        return Ok(());
    }
    let stored: String = tx
        .prepare_cached(EVENT_KEYS)?
        .query_row([&e.event_id], |row| row.get(0))?;
    let mut keys: BTreeSet<(String, String)> = serde_json::from_str(&stored)
        .map_err(|err| StoreError::Corrupt(format!("keys of event {}: {err}", e.event_id)))?;
    let before = keys.len();
    keys.extend(e.keys.iter().cloned());
    if keys.len() > before {
        tx.prepare_cached(SET_EVENT_KEYS)?
            .execute(params![e.event_id, crate::record::keys_to_json(&keys)])?;
    }
    Ok(())
}

fn add_topic(outcome: &mut WriteOutcome, topic: &str, counts: TopicOutcome) {
    let total = outcome.per_topic.entry(topic.to_owned()).or_default();
    total.new_deliveries += counts.new_deliveries;
    total.duplicate_publishes += counts.duplicate_publishes;
}
