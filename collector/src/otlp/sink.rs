//! Where accepted spans go: a bounded queue in front of one writer task, which writes whatever
//! has queued up in one transaction (requests sent at once share a commit). A request is answered
//! only once its spans are durable; when the queue is full it is refused at once, and the
//! receiver tells the sender to retry (gRPC `UNAVAILABLE`, HTTP 503 with `Retry-After`), so the
//! collector never queues without bound.
//!
//! Beside it, [`prune`] deletes spans older than the retention.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::span::SpanRecord;
use crate::store::Store;

/// Most spans written in one transaction.
const MAX_WRITE: usize = 20_000;

/// Why spans were not stored.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The queue is full: retry later.
    #[error("the collector is busy writing spans; retry")]
    Busy,
    /// The store failed the write.
    #[error("the span store failed: {0}")]
    Store(String),
}

struct Job {
    spans: Vec<SpanRecord>,
    _permit: OwnedSemaphorePermit,
    done: oneshot::Sender<Result<(), String>>,
}

/// The writer's queue (cheap to clone).
#[derive(Clone)]
pub struct Sink {
    jobs: mpsc::UnboundedSender<Job>,
    room: Arc<Semaphore>,
    capacity: usize,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("capacity", &self.capacity)
            .field("room", &self.room.available_permits())
            .finish()
    }
}

impl Sink {
    /// A queue of at most `capacity` spans in front of a writer into `store`, which runs until
    /// `stop` and the queue is empty.
    pub fn start(
        store: Store,
        metrics: Arc<Metrics>,
        capacity: usize,
        stop: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (jobs, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(store, metrics, rx, stop));
        let capacity = capacity.max(1);
        let sink = Self {
            jobs,
            room: Arc::new(Semaphore::new(capacity)),
            capacity,
        };
        (sink, task)
    }

    /// Stores `spans`; returns once they are durable, or refuses at once when the queue has no
    /// room for them.
    pub async fn store(&self, spans: Vec<SpanRecord>) -> Result<(), Refusal> {
        if spans.is_empty() {
            return Ok(());
        }
        let wanted = u32::try_from(spans.len().min(self.capacity)).unwrap_or(u32::MAX);
        let permit = self
            .room
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| Refusal::Busy)?;
        let (done, written) = oneshot::channel();
        self.jobs
            .send(Job {
                spans,
                _permit: permit,
                done,
            })
            .map_err(|_| Refusal::Busy)?;
        written
            .await
            .map_err(|_| Refusal::Busy)?
            .map_err(Refusal::Store)
    }
}

async fn write_loop(
    store: Store,
    metrics: Arc<Metrics>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            job = rx.recv() => job,
            () = stop.cancelled() => {
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { return };
        let mut jobs = vec![first];
        let mut n = jobs[0].spans.len();
        while n < MAX_WRITE {
            match rx.try_recv() {
                Ok(job) => {
                    n += job.spans.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let spans: Vec<SpanRecord> = jobs
            .iter_mut()
            .flat_map(|j| std::mem::take(&mut j.spans))
            .collect();
        let result = store.write_spans(&spans).await;
        match &result {
            Ok(_) => metrics.count_spans("kept", spans.len()),
            Err(e) => {
                tracing::warn!(error = %e, spans = spans.len(), "writing spans failed; the senders are told to retry")
            }
        }
        let result = result.map(|_| ()).map_err(|e| e.to_string());
        for job in jobs {
            let _ = job.done.send(result.clone());
        }
    }
}

/// Deletes spans that started more than `retention` ago, every `every`, until `stop`.
pub async fn prune(
    store: Store,
    metrics: Arc<Metrics>,
    retention: Duration,
    every: Duration,
    stop: CancellationToken,
) {
    let retention_us = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        let before = crate::clock::now_us().saturating_sub(retention_us);
        match store.prune_spans(before).await {
            Ok(n) => {
                metrics.spans_pruned.inc_by(n);
            }
            Err(e) => tracing::warn!(error = %e, "pruning old spans failed; trying again later"),
        }
    }
}
