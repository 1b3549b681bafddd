//! The live feed: what the collector has just made durable, for clients watching a flow
//! (`GET /api/v1/live`, server-sent events).
//!
//! The ingest loop publishes each committed batch's events — id, correlation, trace and business
//! keys, nothing more — on a bounded broadcast channel; nothing is built when nobody listens. A
//! watcher states what it follows ([`LiveFilter`]) and is told the ids of matching events as they
//! become durable; it then asks the query API for the new state. A watcher that falls behind the
//! channel is told so (`lagged`) and should reload rather than trust its view.
//!
//! A server without an ingest loop (`choreoscope serve`) feeds the channel from the store instead
//! ([`follow_store`]): what a collector in another process has stored, in storage order.

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::record::EventRecord;
pub use crate::store::StoredEvent;

/// Batches a slow watcher may fall behind by before it is told it lagged.
const CAPACITY: usize = 256;

/// At most this many things followed by one watcher.
pub const MAX_FILTERS: usize = 200;

/// The events of one durable batch.
pub type StoredBatch = Arc<[StoredEvent]>;

/// The publishing side, shared by the ingest loop and the HTTP server.
#[derive(Debug, Clone)]
pub struct LiveFeed {
    tx: broadcast::Sender<StoredBatch>,
    closed: CancellationToken,
}

impl Default for LiveFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveFeed {
    /// A feed nobody listens to yet.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self {
            tx,
            closed: CancellationToken::new(),
        }
    }

    /// Ends every watcher's stream (the server is shutting down: open streams would keep it
    /// waiting forever).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Resolves once [`close`](Self::close) was called.
    pub async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// Announces that `records` are durable. Costs nothing when nobody watches.
    pub fn publish(&self, records: &[EventRecord]) {
        if self.tx.receiver_count() == 0 || records.is_empty() {
            return;
        }
        // A dead-letter copy travels too, marked (`dead_letter_of`): its original's flow failed.
        let batch: StoredBatch = records.iter().map(StoredEvent::from).collect();
        // An error only means every watcher left meanwhile.
        let _ = self.tx.send(batch);
    }

    /// Announces `events`, already stored (by another process: see [`follow_store`]).
    pub fn publish_stored(&self, events: Vec<StoredEvent>) {
        if self.tx.receiver_count() == 0 || events.is_empty() {
            return;
        }
        let _ = self.tx.send(events.into());
    }

    /// A new watcher, told of batches published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StoredBatch> {
        self.tx.subscribe()
    }

    /// Watchers connected now.
    pub fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// Why a filter cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// A parameter this feed does not know.
    #[error("unknown parameter `{0}`: use key=NAME=VALUE, correlation=ID or trace=ID")]
    UnknownParameter(String),
    /// `key` without `NAME=VALUE`.
    #[error("`key` must be NAME=VALUE, not `{0}`")]
    BadKey(String),
    /// Nothing to follow.
    #[error("say what to follow: key=NAME=VALUE, correlation=ID or trace=ID (repeatable)")]
    Empty,
    /// More than [`MAX_FILTERS`] things.
    #[error("at most {MAX_FILTERS} things can be followed at once, not {0}")]
    TooMany(usize),
}

/// What one watcher follows: an event matches when it carries any of the keys, correlations or
/// traces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveFilter {
    /// Business keys `(name, value)`.
    pub keys: Vec<(String, String)>,
    /// Correlation ids.
    pub correlations: Vec<String>,
    /// Trace ids.
    pub traces: Vec<String>,
}

impl LiveFilter {
    /// Reads `key=NAME=VALUE`, `correlation=ID` and `trace=ID` pairs (each repeatable).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, FilterError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut filter = Self::default();
        for (name, value) in pairs {
            let value = value.into();
            match name.as_ref() {
                "key" => {
                    let (k, v) = value
                        .split_once('=')
                        .filter(|(k, _)| !k.is_empty())
                        .ok_or_else(|| FilterError::BadKey(value.clone()))?;
                    filter.keys.push((k.to_owned(), v.to_owned()));
                }
                "correlation" => filter.correlations.push(value),
                "trace" => filter.traces.push(value),
                other => return Err(FilterError::UnknownParameter(other.to_owned())),
            }
        }
        let n = filter.keys.len() + filter.correlations.len() + filter.traces.len();
        match n {
            0 => Err(FilterError::Empty),
            n if n > MAX_FILTERS => Err(FilterError::TooMany(n)),
            _ => Ok(filter),
        }
    }

    /// Whether `event` belongs to what this filter follows.
    pub fn matches(&self, event: &StoredEvent) -> bool {
        let in_list = |list: &[String], v: &Option<String>| {
            v.as_ref().is_some_and(|v| list.iter().any(|x| x == v))
        };
        in_list(&self.correlations, &event.correlation_id)
            || in_list(&self.traces, &event.trace_id)
            || event.keys.iter().any(|k| self.keys.contains(k))
    }

    /// The ids of `batch`'s events this filter follows.
    pub fn matching_ids(&self, batch: &[StoredEvent]) -> Vec<String> {
        batch
            .iter()
            .filter(|e| self.matches(e))
            .map(|e| e.id.clone())
            .collect()
    }
}

/// Events read from the store per call while following it (SQLite; PostgreSQL reads whole
/// transactions).
const FOLLOW_CHUNK: i64 = 10_000;

/// Feeds `feed` from what `store` takes in, for a server without an ingest loop of its own
/// (`choreoscope serve` beside a collector in another process): every `every`, the events stored
/// since the last look are published, in the order they were stored ([`crate::store::Store::stored_after`]).
/// While nobody watches, it only moves its position to the end. Store errors are logged and tried
/// again at the next tick. Ends when `cancel` fires.
pub async fn follow_store(
    store: crate::store::Store,
    feed: LiveFeed,
    every: std::time::Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut position = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let result = match position {
            Some(from) if feed.watchers() > 0 => follow_once(&store, &feed, from).await,
            _ => store.feed_position().await,
        };
        match result {
            Ok(next) => position = Some(next),
            Err(e) => tracing::warn!(error = %e, "following the store for the live feed failed"),
        }
    }
}

/// Publishes everything stored after `from`; returns the position after it.
async fn follow_once(
    store: &crate::store::Store,
    feed: &LiveFeed,
    mut from: crate::store::FeedPosition,
) -> Result<crate::store::FeedPosition, crate::store::StoreError> {
    loop {
        let (events, next) = store.stored_after(from, FOLLOW_CHUNK).await?;
        let full = events.len() as i64 >= FOLLOW_CHUNK;
        feed.publish_stored(events);
        if !full || next == from {
            return Ok(next);
        }
        from = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Interpreter, RawRecord};
    use crate::rules::Rules;

    fn event(
        id: &str,
        corr: Option<&str>,
        trace: Option<&str>,
        keys: &[(&str, &str)],
    ) -> StoredEvent {
        StoredEvent {
            id: id.into(),
            correlation_id: corr.map(Into::into),
            trace_id: trace.map(Into::into),
            keys: keys
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            source: None,
            event_type: None,
            causation_id: None,
            time_us: 0,
            dead_letter_of: None,
        }
    }

    #[test]
    fn a_filter_matches_events_by_key_correlation_or_trace() {
        let f = LiveFilter::from_pairs([
            ("key", "order.id=o-1"),
            ("correlation", "c-9"),
            ("trace", "t-3"),
        ])
        .unwrap();
        let batch = [
            event("a", None, None, &[("order.id", "o-1")]),
            event("b", Some("c-9"), None, &[]),
            event("c", None, Some("t-3"), &[]),
            event(
                "d",
                Some("c-1"),
                Some("t-1"),
                &[("order.id", "o-2"), ("customer.id", "o-1")],
            ),
        ];
        assert_eq!(f.matching_ids(&batch), ["a", "b", "c"]);
    }

    #[test]
    fn a_key_value_may_itself_contain_equals_signs() {
        let f = LiveFilter::from_pairs([("key", "query=a=b")]).unwrap();
        assert_eq!(f.keys, [("query".to_owned(), "a=b".to_owned())]);
    }

    #[test]
    fn unusable_filters_are_refused_with_the_reason() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(LiveFilter::from_pairs(none), Err(FilterError::Empty));
        assert_eq!(
            LiveFilter::from_pairs([("key", "o-1")]),
            Err(FilterError::BadKey("o-1".into()))
        );
        assert_eq!(
            LiveFilter::from_pairs([("key", "=o-1")]),
            Err(FilterError::BadKey("=o-1".into()))
        );
        assert_eq!(
            LiveFilter::from_pairs([("topic", "orders")]),
            Err(FilterError::UnknownParameter("topic".into()))
        );
        let many = (0..=MAX_FILTERS).map(|i| ("trace", i.to_string()));
        assert_eq!(
            LiveFilter::from_pairs(many),
            Err(FilterError::TooMany(MAX_FILTERS + 1))
        );
    }

    #[tokio::test]
    async fn watchers_receive_batches_published_after_they_subscribe() {
        let feed = LiveFeed::new();
        feed.publish(&[]); // nobody listens: nothing to do, no error
        let mut rx = feed.subscribe();
        assert_eq!(feed.watchers(), 1);
        let mut headers = choreoscope_sdk::RecordHeaders::new();
        headers.set("ce_id", "e-1");
        headers.set("ce_correlationid", "c-1");
        headers.set("baggage", "order.id=o-1");
        let interpreter = Interpreter::new(Rules::default(), 1024);
        let record = interpreter.interpret(
            RawRecord {
                topic: "orders",
                partition: 0,
                offset: 7,
                key: None,
                payload: None,
                headers: &headers,
                timestamp_ms: None,
            },
            1,
        );
        feed.publish(std::slice::from_ref(&record));
        let batch = rx.recv().await.unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(
            batch[0],
            StoredEvent {
                time_us: record.time_us,
                ..event("e-1", Some("c-1"), None, &[("order.id", "o-1")])
            }
        );
    }
}
