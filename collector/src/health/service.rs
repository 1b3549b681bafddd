//! Flow health as a part of the running collector: a [`HealthHandle`] shared by the HTTP
//! handlers, and [`follow`], the task that feeds it.
//!
//! The task subscribes to the live feed (every durable batch, from the ingest loop under
//! `collect` and from the store under `serve`), then backfills the tracker from what the store
//! holds of the last `keep_for` (at most [`BACKFILL_MAX`] events, newest first: a restart does not
//! forget the flows in progress), then follows the feed — events join their flows, dead-letter
//! copies fail their originals — and ticks every `every`, sweeping every flow in parts
//! ([`HealthHandle::tick_in_parts`]) and reading the store's dead letters again every
//! [`DEAD_LETTERS_EVERY`]. A batch the task fell behind on is counted ([`HealthHandle::lagged`])
//! and logged, never skipped silently: those events are in the store and the next restart's
//! backfill sees them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use super::config::HealthConfig;
use super::model::ChoreographyModel;
use super::status::{FlowEvent, FlowStatus};
use super::tracker::{TrackedEvent, Tracker, TrackerConfig};
use crate::clock::now_us;
use crate::live::LiveFeed;
use crate::metrics::{Metrics, StatusLabel, StoppedLabel};
use crate::store::{SearchFilter, Store, StoreError, StoredEvent, SummaryRow};

/// Most events the backfill reads from the store at start.
pub const BACKFILL_MAX: usize = 200_000;

/// Events per page of the backfill.
const BACKFILL_PAGE: i64 = 5_000;

/// Flows reassessed at once by a sweep (see [`HealthHandle::tick_in_parts`]): about 3 ms of the
/// tracker's lock for 50-event flows.
pub const SWEEP_PART: usize = 256;

/// The pause between two parts of a sweep.
const SWEEP_PAUSE: Duration = Duration::from_millis(1);

/// Durable batches taken from the live feed at most before their flows are reassessed.
const BATCHES_AT_ONCE: usize = 64;

/// Dead letters read from the store per page.
pub const DEAD_LETTER_PAGE: i64 = 20_000;

/// Pages of dead letters read at most per reading (the newest beyond are read at the next).
pub const DEAD_LETTER_PAGES: usize = 5;

/// How often the dead letters of the last `keep_for` are read again from the store: what another
/// process stored (under `serve`), and any this process's live feed did not bring (a batch the
/// task fell behind on). Failing an event again is a no-op.
pub const DEAD_LETTERS_EVERY: Duration = Duration::from_secs(10);

/// How far back failed spans are read again, µs: the records they handled may arrive after them.
const FAILED_SPANS_AGAIN_US: i64 = 5 * 60 * 1_000_000;

/// The collector's flow health, shared by the task that feeds it and the handlers that read it.
#[derive(Debug, Clone)]
pub struct HealthHandle {
    tracker: Arc<Mutex<Tracker>>,
    lagged: Arc<AtomicU64>,
    keep_for: Duration,
    /// Where the next read of failed spans starts (µs of storing; `None`: not read yet).
    failed_spans_from: Arc<Mutex<Option<i64>>>,
}

impl Default for HealthHandle {
    fn default() -> Self {
        Self::new(HealthConfig::default(), TrackerConfig::default())
    }
}

impl From<&StoredEvent> for TrackedEvent {
    fn from(e: &StoredEvent) -> Self {
        tracked(
            &e.id,
            &e.source,
            &e.event_type,
            e.time_us,
            &e.causation_id,
            &e.correlation_id,
        )
        .with_keys(e.keys.clone())
    }
}

impl From<&SummaryRow> for TrackedEvent {
    /// A summary row has no keys: the backfill reads them with `keys_of`.
    fn from(e: &SummaryRow) -> Self {
        tracked(
            &e.event_id,
            &e.source,
            &e.event_type,
            e.time_us,
            &e.causation_id,
            &e.correlation_id,
        )
    }
}

fn tracked(
    id: &str,
    source: &Option<String>,
    event_type: &Option<String>,
    time_us: i64,
    causation_id: &Option<String>,
    correlation_id: &Option<String>,
) -> TrackedEvent {
    TrackedEvent {
        event: FlowEvent {
            id: id.to_owned(),
            service: source.clone(),
            event_type: event_type.clone(),
            time_us,
            failure: None,
        },
        causation_id: causation_id.clone(),
        correlation_id: correlation_id.clone(),
        keys: Vec::new(),
    }
}

impl TrackedEvent {
    fn with_keys(mut self, keys: Vec<(String, String)>) -> Self {
        self.keys = keys;
        self
    }
}

impl HealthHandle {
    /// An empty tracker with these settings.
    pub fn new(config: HealthConfig, tracker: TrackerConfig) -> Self {
        let keep_for = tracker.keep_for;
        Self {
            tracker: Arc::new(Mutex::new(Tracker::new(
                ChoreographyModel::new(config),
                tracker,
            ))),
            lagged: Arc::default(),
            keep_for,
            failed_spans_from: Arc::default(),
        }
    }

    /// The tracker, for reading (held briefly: the feeding task waits meanwhile).
    pub fn tracker(&self) -> MutexGuard<'_, Tracker> {
        // A panic while holding the lock leaves a tracker that is still consistent enough to read.
        self.tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Batches of the live feed the task fell behind on.
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// Counts `missed` batches the task fell behind on, and says so.
    fn count_lagged(&self, missed: u64, metrics: &Metrics) {
        self.lagged.fetch_add(missed, Ordering::Relaxed);
        metrics.health_lagged_batches.inc_by(missed);
        tracing::warn!(
            batches = missed,
            "flow health fell behind the live feed; those events count again after a restart"
        );
    }

    /// Adds durable events.
    pub fn observe(&self, events: impl IntoIterator<Item = TrackedEvent>, now_us: i64) {
        self.tracker().observe_all(events, now_us);
    }

    /// Takes in what the live feed announced: events are added, dead-letter copies fail the
    /// events they are copies of (after the events, so an original in the same batches counts).
    pub fn take_in<'a>(&self, stored: impl IntoIterator<Item = &'a StoredEvent>, now_us: i64) {
        let mut failures = Vec::new();
        let events = stored.into_iter().filter_map(|e| match &e.dead_letter_of {
            Some(failed) => {
                failures.push(failed);
                None
            }
            None => Some(TrackedEvent::from(e)),
        });
        let mut tracker = self.tracker();
        tracker.observe_all(events.collect::<Vec<_>>(), now_us);
        for (id, reason) in failures {
            tracker.fail(id, reason, now_us);
        }
    }

    /// Moves time on (see [`Tracker::tick`]), holding the tracker throughout.
    pub fn tick(&self, now_us: i64) {
        self.tracker().tick(now_us);
    }

    /// Moves time on as [`HealthHandle::tick`] does, but sweeps every flow [`SWEEP_PART`] flows
    /// at a time, letting go of the tracker for a moment between parts: a request waits for one
    /// part of a sweep, not the whole.
    pub async fn tick_in_parts(&self, now_us: i64) {
        let keys = {
            let mut tracker = self.tracker();
            if !tracker.advance(now_us) {
                return;
            }
            tracker.flow_keys()
        };
        for part in keys.chunks(SWEEP_PART) {
            // Each part at its own time: a flow an event reassessed meanwhile stays as current.
            self.tracker().sweep(part, now_us.max(self::now_us()));
            // The lock is not fair: a pause, not a yield, lets a waiting request have it.
            tokio::time::sleep(SWEEP_PAUSE).await;
        }
        self.tracker().swept(now_us);
    }

    /// Reads what the store holds of the last `keep_for` into the tracker, newest first, at most
    /// `max` events, and fails those its dead letters name; returns how many events.
    pub async fn backfill(&self, store: &Store, max: usize) -> Result<usize, StoreError> {
        let now = now_us();
        let mut filter = SearchFilter {
            from_us: Some(
                now.saturating_sub(i64::try_from(self.keep_for.as_micros()).unwrap_or(i64::MAX)),
            ),
            limit: BACKFILL_PAGE,
            ..SearchFilter::default()
        };
        let mut read = 0;
        while read < max {
            let page = store.search(&filter).await?;
            let Some(last) = page.last() else { break };
            filter.before = Some((last.time_us, last.event_id.clone()));
            read += page.len();
            let full = page.len() as i64 == BACKFILL_PAGE;
            let ids: Vec<String> = page.iter().map(|e| e.event_id.clone()).collect();
            let mut keys: std::collections::HashMap<String, Vec<(String, String)>> =
                Default::default();
            for k in store.keys_of(&ids).await? {
                keys.entry(k.event_id).or_default().push((k.name, k.value));
            }
            self.observe(
                page.iter().map(|e| {
                    TrackedEvent::from(e).with_keys(keys.remove(&e.event_id).unwrap_or_default())
                }),
                now,
            );
            if !full {
                break;
            }
        }
        self.read_dead_letters(store).await?;
        self.tick(now);
        Ok(read)
    }

    /// Fails the events named by the dead letters the store holds of the last `keep_for` (at
    /// most [`DEAD_LETTER_PAGES`] pages, oldest first); returns how many were read.
    pub async fn read_dead_letters(&self, store: &Store) -> Result<usize, StoreError> {
        let mut from = self.dead_letters_from();
        let mut read = 0;
        for _ in 0..DEAD_LETTER_PAGES {
            let rows = store.dead_letters_since(from, DEAD_LETTER_PAGE).await?;
            read += rows.len();
            if !rows.is_empty() {
                let now = now_us();
                let mut tracker = self.tracker();
                for row in &rows {
                    tracker.fail(&row.original_id, &row.reason, now);
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == DEAD_LETTER_PAGE => from = last.ingested_at_us,
                _ => break,
            }
        }
        Ok(read)
    }

    /// Fails the events whose handling failed, from the failed spans stored since the last read
    /// (the first read goes back as far as flows are kept): a handler that raised fails its
    /// flow as a dead letter does. Returns how many failed spans were read.
    pub async fn read_failed_handlings(&self, store: &Store) -> Result<usize, StoreError> {
        let from = {
            let mut from = self
                .failed_spans_from
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *from.get_or_insert_with(|| self.dead_letters_from())
        };
        let rows = store.failed_spans_since(from, DEAD_LETTER_PAGE).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let failed = crate::handling::failed_events(store, &rows).await?;
        let now = now_us();
        {
            let mut tracker = self.tracker();
            for (event, reason) in &failed {
                tracker.fail(event, reason, now);
            }
        }
        // The next read: the rest of a full page, else the last 5 minutes again — a handling
        // whose record arrives after its spans is failed then (re-failing with the same reason
        // changes nothing).
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            let next = if rows.len() as i64 == DEAD_LETTER_PAGE {
                // A page of one storing time cannot move on by it: past it, the rest of that one
                // write's failed spans unread (more than a page in one write).
                if first.received_us == last.received_us {
                    last.received_us + 1
                } else {
                    last.received_us
                }
            } else {
                last.received_us
                    .min(now.saturating_sub(FAILED_SPANS_AGAIN_US))
            };
            *self
                .failed_spans_from
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(next);
        }
        Ok(rows.len())
    }

    /// Where the first read of dead letters starts: as far back as flows are kept.
    fn dead_letters_from(&self) -> i64 {
        now_us().saturating_sub(i64::try_from(self.keep_for.as_micros()).unwrap_or(i64::MAX))
    }
}

impl HealthHandle {
    /// Sets the flow gauges of `metrics` to what is tracked now: flows per status, and stalled and
    /// failed flows per step and reaction waited for (series of groups gone are removed).
    pub fn export(&self, metrics: &Metrics) {
        let tracker = self.tracker();
        let counts = tracker.counts();
        for status in FlowStatus::ALL {
            let n = counts.get(&status).copied().unwrap_or(0);
            metrics
                .flows
                .get_or_create(&StatusLabel {
                    status: status.as_str().to_owned(),
                })
                .set(n as i64);
        }
        let groups = tracker.stopped_groups(0);
        drop(tracker);
        metrics.stopped_flows.clear();
        for g in groups {
            metrics
                .stopped_flows
                .get_or_create(&StoppedLabel {
                    status: g.status.as_str().to_owned(),
                    after: g.after.map(|s| s.to_string()).unwrap_or_default(),
                    waiting_for: g.waiting_for.map(|r| r.to_string()).unwrap_or_default(),
                })
                .set(g.flows as i64);
        }
    }
}

/// Feeds `health` until `cancel` fires (see the module docs), exporting its gauges into `metrics`
/// at every tick.
pub async fn follow(
    health: HealthHandle,
    store: Store,
    live: LiveFeed,
    metrics: std::sync::Arc<Metrics>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut batches = live.subscribe();
    match health.backfill(&store, BACKFILL_MAX).await {
        Ok(read) => tracing::info!(events = read, "flow health backfilled from the store"),
        Err(e) => {
            tracing::warn!(error = %e, "flow health could not read the store's recent events; starting empty")
        }
    }
    let mut dead_letters_read = tokio::time::Instant::now();
    let mut dead_letters_failing = false;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            batch = batches.recv() => match batch {
                Ok(batch) => {
                    // The batches already waiting join this one: a flow they share is reassessed
                    // once, not once per batch (under load the task takes in what piled up).
                    let mut more = Vec::new();
                    while more.len() < BATCHES_AT_ONCE {
                        match batches.try_recv() {
                            Ok(next) => more.push(next),
                            Err(TryRecvError::Lagged(missed)) => health.count_lagged(missed, &metrics),
                            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                        }
                    }
                    health.take_in(std::iter::once(&batch).chain(&more).flat_map(|b| b.iter()), now_us());
                }
                Err(RecvError::Lagged(missed)) => health.count_lagged(missed, &metrics),
                Err(RecvError::Closed) => return,
            },
            _ = ticks.tick() => {
                let read = if dead_letters_read.elapsed() >= DEAD_LETTERS_EVERY {
                    dead_letters_read = tokio::time::Instant::now();
                    match health.read_dead_letters(&store).await {
                        Ok(n) => health.read_failed_handlings(&store).await.map(|m| n + m),
                        Err(e) => Err(e),
                    }
                } else {
                    Ok(0)
                };
                match read {
                    Ok(_) => dead_letters_failing = false,
                    // Said once per outage, not every tick.
                    Err(e) if !dead_letters_failing => {
                        dead_letters_failing = true;
                        tracing::warn!(error = %e, "flow health cannot read the store's dead letters or failed spans; trying again every tick");
                    }
                    Err(e) => tracing::debug!(error = %e, "flow health still cannot read the store's dead letters"),
                }
                health.tick_in_parts(now_us()).await;
                health.export(&metrics);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::FlowStatus;

    fn stored(id: &str, step: &str, cause: Option<&str>, t_us: i64) -> StoredEvent {
        let (source, event_type) = step.split_once('/').unwrap();
        StoredEvent {
            id: id.into(),
            correlation_id: Some("flow".into()),
            trace_id: None,
            keys: vec![],
            source: Some(source.into()),
            event_type: Some(event_type.into()),
            causation_id: cause.map(Into::into),
            time_us: t_us,
            dead_letter_of: None,
        }
    }

    #[test]
    fn the_gauges_show_flows_per_status_and_where_stalled_ones_stopped() {
        let health = HealthHandle::default();
        let t = now_us() - 3600 * 1_000_000 / 2;
        for i in 0..50i64 {
            let (o, p) = (format!("o-{i}"), format!("p-{i}"));
            let mut events = vec![stored(&o, "order/OrderCreated", None, t + i * 1_000_000)];
            if i < 49 {
                events.push(stored(
                    &p,
                    "payment/PaymentCreated",
                    Some(&o),
                    t + i * 1_000_000 + 1000,
                ));
            }
            for e in &mut events {
                e.correlation_id = Some(format!("flow-{i}"));
            }
            health.observe(events.iter().map(TrackedEvent::from), t + i * 1_000_000);
            health.tick(t + i * 1_000_000);
        }
        health.tick(now_us());
        let metrics = Metrics::new();
        health.export(&metrics);
        let text = metrics.encode();
        assert!(
            text.contains("choreoscope_flows{status=\"complete\"} 49"),
            "{text}"
        );
        assert!(
            text.contains("choreoscope_flows{status=\"stalled\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("choreoscope_stopped_flows{status=\"stalled\",after=\"order/OrderCreated\",waiting_for=\"payment/PaymentCreated\"} 1"),
            "{text}"
        );
    }

    /// 600 orders a second apart, the last of each hundred missing its payment, as `health`
    /// took them in (and ticked) as they came.
    fn orders(health: &HealthHandle, t: i64) {
        for i in 0..600i64 {
            let (o, p) = (format!("o-{i}"), format!("p-{i}"));
            let mut events = vec![stored(&o, "order/OrderCreated", None, t + i * 1_000_000)];
            if i % 100 != 99 {
                events.push(stored(
                    &p,
                    "payment/PaymentCreated",
                    Some(&o),
                    t + i * 1_000_000 + 1000,
                ));
            }
            for e in &mut events {
                e.correlation_id = Some(format!("flow-{i}"));
            }
            health.observe(events.iter().map(TrackedEvent::from), t + i * 1_000_000);
        }
    }

    #[tokio::test]
    async fn a_sweep_in_parts_leaves_every_flow_as_a_whole_sweep_does() {
        let t = now_us() - 1800 * 1_000_000;
        let (whole, parts) = (HealthHandle::default(), HealthHandle::default());
        orders(&whole, t);
        orders(&parts, t);
        whole.tick(now_us());
        parts.tick_in_parts(now_us()).await;
        let counts = whole.tracker().counts();
        assert_eq!(counts.get(&FlowStatus::Stalled), Some(&6), "{counts:?}");
        assert_eq!(parts.tracker().counts(), counts);
        const { assert!(600 > SWEEP_PART, "the sweep takes more than one part") };
    }

    #[tokio::test]
    async fn the_task_tracks_every_durable_batch_of_the_live_feed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("h.db").display()))
            .await
            .unwrap();
        let live = LiveFeed::new();
        let health = HealthHandle::default();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(follow(
            health.clone(),
            store.clone(),
            live.clone(),
            std::sync::Arc::new(Metrics::new()),
            Duration::from_millis(10),
            cancel.clone(),
        ));
        // The task subscribes before it backfills: wait until it listens.
        while live.watchers() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let t = now_us();
        live.publish_stored(vec![
            stored("o", "order/OrderCreated", None, t),
            stored("p", "payment/PaymentCreated", Some("o"), t + 1),
        ]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while health.tracker().flows(None, 10).first().map(|f| f.events) != Some(2) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the batch never reached the tracker"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let flows = health.tracker().flows(None, 10);
        assert_eq!(
            (flows[0].flow.as_str(), flows[0].health.status),
            ("flow", FlowStatus::Complete)
        );
        cancel.cancel();
        task.await.unwrap();
        store.close().await;
    }

    #[test]
    fn a_dead_letter_on_the_live_feed_fails_its_original_at_once() {
        let health = HealthHandle::default();
        let t = now_us();
        let (o, p) = (
            stored("o", "order/OrderCreated", None, t),
            stored("p", "payment/PaymentCreated", Some("o"), t + 1),
        );
        let mut copy = stored("p", "payment/PaymentCreated", Some("o"), t + 1);
        copy.dead_letter_of = Some(("p".into(), "bank: boom".into()));
        health.take_in([&copy, &o, &p], t + 2);
        let flows = health.tracker().flows(None, 10);
        assert_eq!(flows.len(), 1, "the copy is no event of the flow");
        assert_eq!(flows[0].events, 2);
        assert_eq!(flows[0].health.status, FlowStatus::Failed);
        assert_eq!(flows[0].health.failures[0].reason, "bank: boom");
    }

    #[tokio::test]
    async fn a_restart_backfills_the_flows_of_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("h.db").display()))
            .await
            .unwrap();
        let rules = crate::rules::Rules::default();
        let interpreter = crate::record::Interpreter::new(rules, 1024);
        let now = now_us();
        let records: Vec<_> = (0..3)
            .map(|i| {
                let id = format!("e-{i}");
                let mut headers = choreoscope_sdk::RecordHeaders::new();
                headers.set("ce_id", id.as_bytes());
                headers.set("ce_source", "order");
                headers.set("ce_type", "OrderCreated");
                headers.set("baggage", format!("order.id=o-{i}").as_bytes());
                interpreter.interpret(
                    crate::record::RawRecord {
                        topic: "orders",
                        partition: 0,
                        offset: i,
                        key: None,
                        payload: None,
                        headers: &headers,
                        timestamp_ms: Some(now / 1000),
                    },
                    now,
                )
            })
            .collect();
        store.write_batch(&records).await.unwrap();
        let health = HealthHandle::default();
        assert_eq!(health.backfill(&store, BACKFILL_MAX).await.unwrap(), 3);
        assert_eq!(
            health.tracker().tracked(),
            3,
            "three events, each its own flow"
        );
        let mut keys: Vec<Vec<(String, String)>> = health
            .tracker()
            .flows(None, 10)
            .into_iter()
            .map(|f| f.keys)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            (0..3)
                .map(|i| vec![("order.id".to_owned(), format!("o-{i}"))])
                .collect::<Vec<_>>(),
            "the keys are read back from the store"
        );
        store.close().await;
    }
}
