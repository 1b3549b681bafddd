//! The ingest loop: every topic → interpreted records → idempotent batches in the store →
//! offsets stored only after the batch is durable.
//!
//! # Delivery semantics
//! At-least-once from Kafka, made exactly-once in the store by idempotent writes (see
//! [`crate::store`]). Auto-commit is off: after the transaction holding a batch commits, the
//! writer commits that batch's offsets explicitly, and on shutdown a synchronous commit sends
//! exactly the offsets of durable records. librdkafka never commits on its own — the crash test
//! once caught a committed offset ahead of the stored records with auto-commit of stored offsets.
//! A crash loses at most uncommitted work, which Kafka delivers again and the store ignores.
//!
//! # Pipeline and back-pressure
//! The loop reads and interprets records while a writer task writes the previous batches: one at a
//! time into SQLite, two at once into PostgreSQL ([`StoreProfile::write_concurrency`](crate::store::StoreProfile::write_concurrency)), finished in order.
//! A batch closes at `batch_size` records or `batch_timeout` after its first record. While a write
//! fails, the writer retries it with exponential backoff and the loop stops reading once the next
//! batch is full (at most twice `batch_size`): consumption is held back, and memory is bounded by
//! the batches in flight, one queued, the one being filled, and the client's fetch queue
//! (`queued.max.messages.kbytes`, sized by store: [`StoreProfile::fetch_queue_kbytes`](crate::store::StoreProfile::fetch_queue_kbytes)).
//!
//! Partitions are deliberately *not* paused: librdkafka drops records fetched around a pause and
//! may resume past them (the store-outage test caught a gap that way). Not polling is safe
//! instead: should an outage outlast `max.poll.interval.ms`, the group reassigns the partitions
//! and Kafka redelivers everything after the last committed offset, which the idempotent store
//! absorbs.
//!
//! # Layout
//! - [`consumer`]: the consumer's client settings ([`consumer_config`]) and the context that
//!   forwards its statistics into the lag gauges.
//! - [`subscription`]: what the consumer subscribes to, followed as topics come and go.
//! - [`start`]: where partitions without a committed offset start (`--start-at`), placed as
//!   they are assigned.
//! - [`held_back`]: why consumption is held back while the store refuses writes (`/healthz`,
//!   the progress answer).
//! - [`progress`]: records behind per topic and when the collector will catch up, from the
//!   client's statistics (log, `/metrics`, `GET /api/v1/ingest/progress`).
//! - `config`: what the loop is told ([`IngestConfig`]) and why it stops ([`IngestError`]).
//! - `batch`: a closed batch and the offsets it covers.
//! - `writer`: the task that makes batches durable, in order, and commits their offsets.

mod batch;
mod config;
pub mod consumer;
pub mod held_back;
pub mod progress;
pub mod start;
pub mod subscription;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use choreoscope_sdk::RecordHeaders;
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;

use crate::clock::now_us;
use crate::cluster::RefusalLog;
use crate::live::LiveFeed;
use crate::metrics::{KindLabel, Metrics, TopicLabel};
use crate::record::{EventRecord, Interpreter, RawRecord};
use crate::store::Store;
use batch::Batch;
use consumer::{offset_list, LagContext};
use writer::Writer;

pub use config::{is_platform_topic, IngestConfig, IngestError, TopicFilter, PLATFORM_TOPICS};
pub use consumer::{consumer_config, FETCH_WAIT_MAX_MS};
pub use progress::{IngestProgress, ProgressHandle};
pub use start::{StartAt, StartAtError};
pub use subscription::ALL_TOPICS;

/// Records taken from the client per turn of the loop's `select!`, at most.
const DRAIN_AT_ONCE: usize = 256;
/// The consumer loop. Returns when `cancel` fires, after a final flush and commit.
pub struct Ingestor {
    config: IngestConfig,
    interpreter: Interpreter,
    store: Store,
    metrics: Arc<Metrics>,
    consumer: Arc<StreamConsumer<LagContext>>,
    /// The cluster's refusals, one line per kind and minute.
    refusals: RefusalLog,
    /// Records behind, as the consumer's statistics report them.
    progress: ProgressHandle,
    /// Rebalances the consumer has gone through ([`LagContext`]'s count) ...
    rebalances: Arc<AtomicU64>,
    /// ... and the count when the last offsets read were last forgotten.
    rebalances_seen: u64,
    batch: Batch,
    /// Told of each durable batch, when someone may watch.
    live: Option<LiveFeed>,
    /// Per topic seen: its filter verdict, counters and positions (looked up by `&str`, so a
    /// record costs no allocation here).
    topics: HashMap<String, TopicState>,
    /// Written batches' records, handed back by the writer to be freed here, on the thread that
    /// allocated them (see the writer's `finish`).
    spent: Option<std::sync::mpsc::Receiver<Vec<EventRecord>>>,
}

/// What the loop keeps per topic.
struct TopicState {
    wanted: bool,
    consumed: prometheus_client::metrics::counter::Counter,
    excluded: prometheus_client::metrics::counter::Counter,
    /// The last offset read per partition, to see offsets the broker never delivered.
    last_read: HashMap<i32, i64>,
    /// The last offset read per partition since the current batch opened.
    pending: HashMap<i32, i64>,
}

impl Ingestor {
    /// Creates the consumer; without a topic filter, subscribes to every topic (with one, the
    /// subscription follows the cluster's topic list once [`Ingestor::run`] starts).
    pub fn new(
        config: IngestConfig,
        interpreter: Interpreter,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Result<Self, IngestError> {
        let client = consumer_config(&config, &store.profile());
        let refusals = RefusalLog::new(metrics.clone());
        let progress = ProgressHandle::consuming();
        let rebalances = Arc::new(AtomicU64::new(0));
        // Start positions are fixed now: a `--start-at` duration counts back from here.
        let started_ms = now_us() / 1000;
        let consumer: StreamConsumer<LagContext> = client.create_with_context(LagContext {
            metrics: metrics.clone(),
            refusals: refusals.clone(),
            start: start::StartPositions::new(config.start_at.resolve(started_ms)),
            progress: progress.clone(),
            rebalances: rebalances.clone(),
            tokens: config.cluster.tokens.clone(),
        })?;
        // With a filter, `subscription::follow` subscribes once it has read the topic list.
        if config.topics.is_everything() {
            consumer.subscribe(&[ALL_TOPICS])?;
        }
        Ok(Self {
            batch: Batch::with_capacity(config.batch_size),
            config,
            interpreter,
            store,
            metrics,
            consumer: Arc::new(consumer),
            refusals,
            progress,
            rebalances,
            rebalances_seen: 0,
            live: None,
            topics: HashMap::new(),
            spent: None,
        })
    }

    /// Announces every durable batch on `feed` (for `GET /api/v1/live`).
    pub fn with_live_feed(mut self, feed: LiveFeed) -> Self {
        self.live = Some(feed);
        self
    }

    /// Its backfill progress (records behind, catch-up estimate), for the API.
    pub fn progress(&self) -> ProgressHandle {
        self.progress.clone()
    }

    fn topic_state(&mut self, topic: &str) -> &mut TopicState {
        if !self.topics.contains_key(topic) {
            let label = TopicLabel {
                topic: topic.to_owned(),
            };
            let state = TopicState {
                wanted: self.config.topics.wants(topic),
                consumed: self.metrics.records_consumed.get_or_create(&label).clone(),
                excluded: self.metrics.records_excluded.get_or_create(&label).clone(),
                last_read: HashMap::new(),
                pending: HashMap::new(),
            };
            self.topics.insert(topic.to_owned(), state);
        }
        self.topics.get_mut(topic).expect("inserted above")
    }

    fn accept<M: Message>(&mut self, message: &M)
    where
        M::Headers: rdkafka::message::Headers,
    {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let metrics = self.metrics.clone();
        self.batch.positions += 1;
        let state = self.topic_state(topic);
        state.consumed.inc();
        state.pending.insert(partition, offset);
        // Offsets skipped since the previous record of the partition. Going back (a rebalance or
        // a restart delivering again) is normal and counts nothing.
        if let Some(last) = state
            .last_read
            .insert(partition, offset)
            .filter(|&last| offset > last + 1)
        {
            let skipped = offset - last - 1;
            metrics
                .offsets_skipped
                .get_or_create(&TopicLabel {
                    topic: topic.to_owned(),
                })
                .inc_by(skipped as u64);
            tracing::warn!(topic, partition, after = last, next = offset, skipped,
                "offsets skipped by the broker (expected only for transaction markers or compaction)");
        }
        if !state.wanted {
            state.excluded.inc();
            return;
        }
        let headers = message
            .headers()
            .map(RecordHeaders::from_kafka)
            .unwrap_or_default();
        let record = self.interpreter.interpret(
            RawRecord {
                topic,
                partition,
                offset,
                key: message.key(),
                payload: message.payload(),
                headers: &headers,
                timestamp_ms: message.timestamp().to_millis(),
            },
            now_us(),
        );
        for p in &record.problems {
            self.metrics
                .problems
                .get_or_create(&KindLabel {
                    kind: p.kind.clone(),
                })
                .inc();
        }
        if let Some(note) = &record.redactions {
            for (kind, n) in note.counts() {
                self.metrics
                    .redactions
                    .get_or_create(&KindLabel {
                        kind: kind.to_owned(),
                    })
                    .inc_by(n as u64);
            }
        }
        self.batch.records.push(record);
    }

    /// Takes one result of the consumer: a record into the batch, an error into the metrics.
    fn receive(&mut self, received: rdkafka::error::KafkaResult<BorrowedMessage<'_>>) {
        // After a rebalance, a partition given back was read by another member meanwhile: the
        // gap to its last offset read here is no skip.
        let rebalances = self.rebalances.load(Ordering::Relaxed);
        if rebalances != self.rebalances_seen {
            self.rebalances_seen = rebalances;
            for state in self.topics.values_mut() {
                state.last_read.clear();
            }
        }
        match received {
            Ok(message) => self.accept(&message),
            Err(e) => {
                self.metrics.kafka_errors.inc();
                if self.refusals.report(&e, "").is_none() {
                    tracing::warn!(error = %e, "kafka consumer error");
                }
            }
        }
    }

    fn take_batch(&mut self) -> Batch {
        // Free what the writer is done with, and reuse one of those vectors for the next batch.
        let mut next = Batch::with_capacity(0);
        for mut records in self.spent.iter().flat_map(|rx| rx.try_iter()) {
            records.clear();
            next.records = records;
        }
        next.records.reserve(self.config.batch_size);
        let mut batch = std::mem::replace(&mut self.batch, next);
        for (topic, state) in &mut self.topics {
            for (partition, offset) in state.pending.drain() {
                batch.offsets.insert((topic.clone(), partition), offset);
            }
        }
        batch
    }

    /// Runs until `cancel` fires. Records are read and interpreted here while the previous batch
    /// is written by a single writer task, so batches are durable, and their offsets stored, in
    /// order.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), IngestError> {
        let everything = self.config.topics.is_everything();
        tracing::info!(brokers = %self.config.cluster.brokers, security = %self.config.cluster.security.describe(), group = %self.config.group, store = self.store.kind(),
            start_at = %self.config.start_at,
            "collecting from {}", if everything { "every topic" } else { "the topics --include/--exclude let through, platform topics left out unless --keep-platform-topics" });
        let following = CancellationToken::new();
        let subscription = (!everything).then(|| {
            tokio::spawn(subscription::follow(
                self.consumer.clone(),
                self.config.topics.clone(),
                self.config.metadata_refresh,
                self.metrics.clone(),
                following.clone(),
            ))
        });
        let progress_log = tokio::spawn(self.progress.clone().log(following.clone()));
        let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(1);
        let (spent_tx, spent_rx) = std::sync::mpsc::channel();
        self.spent = Some(spent_rx);
        let writer = tokio::spawn(
            Writer {
                store: self.store.clone(),
                consumer: self.consumer.clone(),
                metrics: self.metrics.clone(),
                live: self.live.clone(),
                held_back: self.progress.held_back().clone(),
                retrying: Default::default(),
                spent: spent_tx,
            }
            .run(rx, cancel.clone()),
        );
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut ready = false;
        // A batch may grow past its size while the writer is busy, up to this bound; past it the
        // loop stops reading until the writer takes the batch.
        let cap = self.config.batch_size * 2;
        let consumer = self.consumer.clone();
        // One message stream, cancellation token future and batch timer for the whole run: made
        // per record, each cost a lock to register and another to unregister.
        let mut stream = consumer.stream();
        let cancelled = cancel.cancelled();
        let mut cancelled = std::pin::pin!(cancelled);
        let mut timer = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
        loop {
            tokio::select! {
                biased;
                _ = &mut cancelled => break,
                permit = tx.reserve(), if ready => {
                    let Ok(permit) = permit else { break };
                    permit.send(self.take_batch());
                    ready = false;
                    deadline = None;
                }
                _ = &mut timer, if deadline.is_some() && !ready => {
                    ready = self.batch.positions > 0;
                }
                received = stream.next(), if self.batch.records.len() < cap => {
                    // Then what the client has already fetched, without a turn of `select!` per
                    // record; a few hundred at most, so a closed batch still leaves promptly.
                    let limit = if ready { cap } else { self.config.batch_size };
                    let mut next = received;
                    let mut taken = 0;
                    while let Some(received) = next {
                        self.receive(received);
                        taken += 1;
                        if taken == DRAIN_AT_ONCE || self.batch.records.len() >= limit {
                            break;
                        }
                        next = stream.next().now_or_never().flatten();
                    }
                    if deadline.is_none() && self.batch.positions > 0 {
                        let at = tokio::time::Instant::now() + self.config.batch_timeout;
                        deadline = Some(at);
                        timer.as_mut().reset(at);
                    }
                    if self.batch.records.len() >= self.config.batch_size {
                        ready = true;
                    }
                },
            }
        }
        drop(stream);
        following.cancel();
        if let Some(task) = subscription {
            let _ = task.await;
        }
        let _ = progress_log.await;
        if self.batch.positions > 0 {
            let last = self.take_batch();
            // The writer may be retrying against a store that is down: it gives up on cancel.
            let _ = tx.send(last).await;
        }
        drop(tx);
        match writer.await {
            // Exactly the offsets of durable records: never the consumer's position, which may be
            // ahead of what was written when the writer gave up.
            Ok(durable) if !durable.is_empty() => {
                if let Err(e) = self
                    .consumer
                    .commit(&offset_list(&durable), CommitMode::Sync)
                {
                    tracing::warn!(error = %e, "final offset commit failed; those records will be delivered again");
                }
            }
            Ok(_) => {}
            Err(_) => tracing::error!("writer task panicked"),
        }
        tracing::info!("collector stopped");
        Ok(())
    }
}
