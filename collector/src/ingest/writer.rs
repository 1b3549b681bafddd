//! The writer task: makes batches durable in order, retrying a failing store with backoff, and
//! commits each batch's offsets once it is.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use tokio_util::sync::CancellationToken;

use super::batch::Batch;
use super::consumer::{offset_list, LagContext};
use super::held_back::HeldBackState;
use crate::clock::now_us;
use crate::live::LiveFeed;
use crate::metrics::{Metrics, ReasonLabel, TopicLabel};
use crate::record::EventRecord;
use crate::store::{Store, WriteOutcome};

/// Writes batches in order and stores their offsets once durable.
pub(super) struct Writer {
    pub(super) store: Store,
    pub(super) consumer: Arc<StreamConsumer<LagContext>>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) live: Option<LiveFeed>,
    /// Why consumption is held back, while it is (read by `/healthz` and the progress answer).
    pub(super) held_back: HeldBackState,
    /// Writes currently retrying against a failing store.
    pub(super) retrying: std::sync::atomic::AtomicI64,
    /// Where written records go to be freed: back to the ingest loop.
    pub(super) spent: std::sync::mpsc::Sender<Vec<EventRecord>>,
}

impl Writer {
    /// Writes batches until the channel closes or `cancel` interrupts a retry; returns, per
    /// partition, the next offset after the last durable record (what may be committed).
    ///
    /// Up to the store's [`write_concurrency`](crate::store::StoreProfile::write_concurrency) batches are written at once, each in its own
    /// transaction; they are *finished* — counted, announced, offsets committed — strictly in
    /// order, so a committed offset never passes a batch that is not yet durable.
    pub(super) async fn run(
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
            .buffered(self.store.profile().write_concurrency.max(1));
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
                    let kind = e.kind();
                    self.metrics
                        .store_errors
                        .get_or_create(&ReasonLabel {
                            reason: kind.as_str().to_owned(),
                        })
                        .inc();
                    self.held_back.failed(kind, &e.to_string(), now_us());
                    let delay = backoff.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(error = %e, reason = %kind, records = batch.records.len(), retry_in = ?delay,
                        "store write failed ({kind}); consumption held back until it succeeds");
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
    /// while any write retries, and the held-back state is cleared once none does.
    fn held_back(&self, change: i64) {
        let now = self
            .retrying
            .fetch_add(change, std::sync::atomic::Ordering::SeqCst)
            + change;
        self.metrics.paused.set(i64::from(now > 0));
        if now == 0 {
            self.held_back.resumed();
        }
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
            dead_letters = outcome.dead_letters,
            "batch committed"
        );
        next
    }

    fn record_outcome(&self, outcome: &WriteOutcome) {
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
        self.metrics
            .dead_letters
            .inc_by(outcome.dead_letters as u64);
    }
}
