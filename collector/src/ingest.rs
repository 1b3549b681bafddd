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
//! time into SQLite, two at once into PostgreSQL ([`Store::write_concurrency`]), finished in order.
//! A batch closes at `batch_size` records or `batch_timeout` after its first record. While a write
//! fails, the writer retries it with exponential backoff and the loop stops reading once the next
//! batch is full (at most twice `batch_size`): consumption is held back, and memory is bounded by
//! the batches in flight, one queued, the one being filled, and the client's fetch queue
//! (`queued.max.messages.kbytes`, sized by store: [`prefetch_kbytes`]).
//!
//! Partitions are deliberately *not* paused: librdkafka drops records fetched around a pause and
//! may resume past them (the store-outage test caught a gap that way). Not polling is safe
//! instead: should an outage outlast `max.poll.interval.ms`, the group reassigns the partitions
//! and Kafka redelivers everything after the last committed offset, which the idempotent store
//! absorbs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use choreoscope_sdk::RecordHeaders;
use futures::{FutureExt, StreamExt};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use tokio_util::sync::CancellationToken;

use crate::live::LiveFeed;
use crate::metrics::{KindLabel, Metrics, PartitionLabel, TopicLabel};
use crate::record::{EventRecord, Interpreter, RawRecord};
use crate::store::{Store, WriteOutcome};
use crate::subscription::{TopicFilter, ALL_TOPICS};

/// How the collector consumes.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Bootstrap servers.
    pub brokers: String,
    /// Consumer group.
    pub group: String,
    /// Which topics are stored (`--include`/`--exclude`); a filter narrows the subscription.
    pub topics: TopicFilter,
    /// Records per transaction, at most.
    pub batch_size: usize,
    /// Time a batch may stay open after its first record.
    pub batch_timeout: Duration,
    /// How often new topics are looked for.
    pub metadata_refresh: Duration,
    /// Extra librdkafka properties (`key=value`).
    pub kafka_properties: Vec<(String, String)>,
}

/// Why ingestion stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The consumer could not be created or subscribed.
    #[error("kafka consumer: {0}")]
    Kafka(#[from] KafkaError),
}

/// Forwards the client's statistics into the lag gauges.
pub struct LagContext {
    metrics: Arc<Metrics>,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                if partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&PartitionLabel {
                            topic: topic.clone(),
                            partition: partition.to_string(),
                        })
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {}

/// A topic-partition list committing `next` offsets.
fn offset_list(next: &HashMap<(String, i32), i64>) -> rdkafka::TopicPartitionList {
    let mut list = rdkafka::TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        // Only fails for an invalid offset, which `offset + 1` of a consumed record is not.
        let _ = list.add_partition_offset(topic, *partition, rdkafka::Offset::Offset(*offset));
    }
    list
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The collector's `fetch.wait.max.ms` (librdkafka's default is 500; `--kafka` overrides it).
///
/// A Kafka broker answers a fetch as soon as `fetch.min.bytes` (1) is there, whatever the wait;
/// not every Kafka-protocol broker does. tansu, the test broker, holds every fetch for the whole
/// wait and answers ~5 MB: 500 ms held the collector at 40 000 records/s, 100 ms near 80 000,
/// 20 ms lets it reach 90 000–100 000 (docs/benchmarks.md, runs 11–12). Idle, it costs 50 small
/// fetch requests per second per broker instead of 2.
pub const FETCH_WAIT_MAX_MS: &str = "20";

/// How much librdkafka may fetch ahead of the loop (`queued.max.messages.kbytes`), by store: what
/// keeps the loop fed at the store's pace and no more. SQLite takes 100 000+ records/s here, and a
/// 4 MiB queue held it to 76 000 (8 and 16 MiB: 109 000–110 000). PostgreSQL takes ~40 000/s,
/// which 4 MiB feeds as well as 16 (34 500–39 000 records/s either way), and its peak RSS over a
/// million events fell from 212–228 MiB to 183–191 (docs/benchmarks.md, run 14).
fn prefetch_kbytes(store: &Store) -> &'static str {
    match store {
        Store::Sqlite(_) => "16384",
        Store::Postgres(_) => "4096",
    }
}

/// Records taken from the client per turn of the loop's `select!`, at most.
const DRAIN_AT_ONCE: usize = 256;

/// A closed batch on its way to the writer, with the offsets to store once it is durable.
struct Batch {
    records: Vec<EventRecord>,
    offsets: HashMap<(String, i32), i64>,
    /// Records read into this batch, stored or excluded.
    positions: usize,
}

impl Batch {
    fn with_capacity(records: usize) -> Self {
        Self {
            records: Vec::with_capacity(records),
            offsets: HashMap::new(),
            positions: 0,
        }
    }
}

/// The consumer loop. Returns when `cancel` fires, after a final flush and commit.
pub struct Ingestor {
    config: IngestConfig,
    interpreter: Interpreter,
    store: Store,
    metrics: Arc<Metrics>,
    consumer: Arc<StreamConsumer<LagContext>>,
    batch: Batch,
    /// Told of each durable batch, when someone may watch.
    live: Option<LiveFeed>,
    /// Per topic seen: its filter verdict, counters and positions (looked up by `&str`, so a
    /// record costs no allocation here).
    topics: HashMap<String, TopicState>,
    /// Written batches' records, handed back by the writer to be freed here, on the thread that
    /// allocated them (see [`Writer::finish`]).
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
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group)
            // librdkafka never commits on its own (not on a timer, not on a rebalance): the writer
            // commits explicit offsets once their records are durable.
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set(
                "topic.metadata.refresh.interval.ms",
                config.metadata_refresh.as_millis().to_string(),
            )
            .set("statistics.interval.ms", "5000")
            // Bound the client's prefetch: memory stays small whatever the backlog.
            .set("queued.max.messages.kbytes", prefetch_kbytes(&store))
            .set("fetch.max.bytes", "16777216")
            .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS);
        for (k, v) in &config.kafka_properties {
            client.set(k, v);
        }
        let consumer: StreamConsumer<LagContext> = client.create_with_context(LagContext {
            metrics: metrics.clone(),
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
        self.batch.records.push(record);
    }

    /// Takes one result of the consumer: a record into the batch, an error into the metrics.
    fn receive(&mut self, received: rdkafka::error::KafkaResult<BorrowedMessage<'_>>) {
        match received {
            Ok(message) => self.accept(&message),
            Err(e) => {
                self.metrics.kafka_errors.inc();
                tracing::warn!(error = %e, "kafka consumer error");
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
        tracing::info!(brokers = %self.config.brokers, group = %self.config.group, store = self.store.kind(),
            "collecting from {}", if everything { "every topic" } else { "the topics --include/--exclude let through" });
        let following = CancellationToken::new();
        let subscription = (!everything).then(|| {
            tokio::spawn(crate::subscription::follow(
                self.consumer.clone(),
                self.config.topics.clone(),
                self.config.metadata_refresh,
                self.metrics.clone(),
                following.clone(),
            ))
        });
        let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(1);
        let (spent_tx, spent_rx) = std::sync::mpsc::channel();
        self.spent = Some(spent_rx);
        let writer = tokio::spawn(
            Writer {
                store: self.store.clone(),
                consumer: self.consumer.clone(),
                metrics: self.metrics.clone(),
                live: self.live.clone(),
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

/// Writes batches in order and stores their offsets once durable.
struct Writer {
    store: Store,
    consumer: Arc<StreamConsumer<LagContext>>,
    metrics: Arc<Metrics>,
    live: Option<LiveFeed>,
    /// Writes currently retrying against a failing store.
    retrying: std::sync::atomic::AtomicI64,
    /// Where written records go to be freed: back to the ingest loop.
    spent: std::sync::mpsc::Sender<Vec<EventRecord>>,
}

impl Writer {
    /// Writes batches until the channel closes or `cancel` interrupts a retry; returns, per
    /// partition, the next offset after the last durable record (what may be committed).
    ///
    /// Up to [`Store::write_concurrency`] batches are written at once, each in its own
    /// transaction; they are *finished* — counted, announced, offsets committed — strictly in
    /// order, so a committed offset never passes a batch that is not yet durable.
    async fn run(
        self,
        rx: tokio::sync::mpsc::Receiver<Batch>,
        cancel: CancellationToken,
    ) -> HashMap<(String, i32), i64> {
        let mut durable = HashMap::new();
        let batches = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        });
        let written = batches
            .map(|batch| self.store_durably(batch, &cancel))
            .buffered(self.store.write_concurrency().max(1));
        let mut written = std::pin::pin!(written);
        while let Some((batch, outcome, started)) = written.next().await {
            match outcome {
                Some(outcome) => durable.extend(self.finish(batch, &outcome, started)),
                None => {
                    tracing::warn!(records = batch.records.len(),
                        "stopping with an unwritten batch; its offsets are not committed and it will be delivered again");
                    break;
                }
            }
        }
        durable
    }

    /// Writes `batch`, retrying with backoff until it is durable. Returns `None` for the outcome
    /// when it gave up because `cancel` fired.
    async fn store_durably(
        &self,
        batch: Batch,
        cancel: &CancellationToken,
    ) -> (Batch, Option<WriteOutcome>, Instant) {
        let started = Instant::now();
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build();
        let mut held_back = false;
        let outcome = loop {
            match self.store.write_batch(&batch.records).await {
                Ok(outcome) => break Some(outcome),
                Err(e) => {
                    self.metrics.store_errors.inc();
                    let delay = backoff.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(error = %e, records = batch.records.len(), retry_in = ?delay,
                        "store write failed; consumption held back until it succeeds");
                    if !held_back {
                        self.held_back(1);
                        held_back = true;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => break None,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        if held_back {
            self.held_back(-1);
            if outcome.is_some() {
                tracing::info!("store is back; consumption resumed");
            }
        }
        (batch, outcome, started)
    }

    /// Counts a write entering (`1`) or leaving (`-1`) its retries; `choreoscope_paused` is 1
    /// while any write retries.
    fn held_back(&self, change: i64) {
        let now = self
            .retrying
            .fetch_add(change, std::sync::atomic::Ordering::SeqCst)
            + change;
        self.metrics.paused.set(i64::from(now > 0));
    }

    /// After `batch` is durable, in batch order: counts it, announces it, and commits its offsets
    /// (asynchronously); returns them.
    fn finish(
        &self,
        mut batch: Batch,
        outcome: &WriteOutcome,
        started: Instant,
    ) -> HashMap<(String, i32), i64> {
        self.record_outcome(outcome);
        if let Some(live) = &self.live {
            live.publish(&batch.records);
        }
        self.metrics.batch_size.observe(batch.records.len() as f64);
        // Freed by the loop that allocated them, when it next closes a batch: mimalloc frees
        // another thread's memory slowly, and this thread is the busiest (it writes SQLite). Only
        // the batches written since then wait there; once the loop has stopped, they are freed
        // here.
        let _ = self.spent.send(std::mem::take(&mut batch.records));
        self.metrics
            .batch_write_seconds
            .observe(started.elapsed().as_secs_f64());
        let next: HashMap<(String, i32), i64> = batch
            .offsets
            .into_iter()
            .map(|(tp, offset)| (tp, offset + 1))
            .collect();
        if let Err(e) = self.consumer.commit(&offset_list(&next), CommitMode::Async) {
            // A partition revoked meanwhile, or a transient error: its next owner (or our next
            // commit) starts from the last commit, and the store ignores what it has already.
            tracing::debug!(error = %e, "offset commit not sent");
        }
        tracing::debug!(
            records = outcome.records,
            new_events = outcome.new_events,
            redelivered = outcome.redelivered,
            duplicates = outcome.duplicate_publishes,
            "batch committed"
        );
        next
    }

    fn record_outcome(&self, outcome: &crate::store::WriteOutcome) {
        for (topic, counts) in &outcome.per_topic {
            let label = TopicLabel {
                topic: topic.clone(),
            };
            self.metrics
                .events_ingested
                .get_or_create(&label)
                .inc_by(counts.new_deliveries as u64);
            if counts.duplicate_publishes > 0 {
                self.metrics
                    .duplicate_publishes
                    .get_or_create(&label)
                    .inc_by(counts.duplicate_publishes as u64);
            }
        }
        self.metrics.redelivered.inc_by(outcome.redelivered as u64);
    }
}
