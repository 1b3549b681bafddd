//! Lineage and handlings through OpenTelemetry spans (docs/lineage.md, "Through spans").
//!
//! A record that names no cause, produced under a span whose parents lead (within its trace) to
//! a CONSUMER span, is a reaction to the record that consumer span processed — found by the
//! consumer span's message position or id (rule `span_message`), else its links to the
//! producer's context (`span_link`; a batch consumer's span links many records and gives an edge
//! from each), else its parent (`span_parent`). The other way, the consumer spans that processed
//! a record are its *handlings*: which service, when, how long, whether it failed (ERROR on the
//! consumer span or any span under it, with the exception) and what it produced.
//!
//! Everything is resolved when asked, so spans and records may arrive in any order.

mod walk;

use std::collections::{HashMap, HashSet};

pub use walk::{SpanKey, MAX_HOPS};

use crate::edge_rule::Rule;
use crate::span::Exception;
use crate::store::{SpanRow, Store, StoreError, SummaryRow};

/// A cause → reaction edge found through spans.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpanCause {
    /// The cause's event id.
    pub cause: String,
    /// The reaction's event id.
    pub reaction: String,
    /// The rule that found it.
    pub rule: Rule,
}

/// One consumer span's processing of a record.
#[derive(Debug, Clone)]
pub struct Handling {
    /// The consumer span.
    pub consumer: SpanRow,
    /// How the consumer span was tied to the record.
    pub rule: Rule,
    /// The spans under it (the handler's own, its producer spans, …).
    pub under: Vec<SpanRow>,
    /// The records produced while handling it, in time order.
    pub produced: Vec<SummaryRow>,
}

impl Handling {
    /// Whether it failed: ERROR on the consumer span or any span under it.
    pub fn failed(&self) -> bool {
        self.consumer.failed || self.under.iter().any(|s| s.failed)
    }

    /// The exception it failed with: that of the failed span that ended first (where the
    /// exception was raised; the spans it escaped through end later), when one recorded it.
    pub fn exception(&self) -> Option<Exception> {
        let mut failed: Vec<&SpanRow> = std::iter::once(&self.consumer)
            .chain(&self.under)
            .filter(|s| s.failed)
            .collect();
        failed.sort_by_key(|s| (s.end_us, s.start_us));
        failed.iter().find_map(|s| s.exception())
    }

    /// The service that handled it.
    pub fn service(&self) -> Option<&str> {
        self.consumer.service.as_deref()
    }
}

/// The handling that fails an event, from its handlings (oldest first): per service and consumer
/// group the latest handling counts — a failure that a retry got through is no failure.
pub fn failed_handling(handlings: &[Handling]) -> Option<&Handling> {
    let mut latest: Vec<&Handling> = Vec::new();
    for h in handlings {
        let who = (h.service(), h.consumer.consumer_group.as_deref());
        match latest
            .iter_mut()
            .find(|l| (l.service(), l.consumer.consumer_group.as_deref()) == who)
        {
            Some(l) if l.consumer.start_us <= h.consumer.start_us => *l = h,
            Some(_) => {}
            None => latest.push(h),
        }
    }
    latest.into_iter().find(|h| h.failed())
}

impl Handling {
    /// Why it failed, one line: `inventory's handler raised OutOfStock: no stock for o-3`.
    pub fn reason(&self) -> String {
        let service = self.service().unwrap_or("a service without service.name");
        match self.exception() {
            Some(e) => format!(
                "{service}'s handler raised {}{}",
                e.kind.as_deref().unwrap_or("an error"),
                e.message.map(|m| format!(": {m}")).unwrap_or_default()
            ),
            None => format!("{service}'s handler failed (span status ERROR)"),
        }
    }
}

/// The events that the failed spans `failed` were handling, each with the reason its handling
/// failed (per [`failed_handling`]: events whose latest handling succeeded are left out).
pub async fn failed_events(
    store: &Store,
    failed: &[SpanRow],
) -> Result<Vec<(String, String)>, StoreError> {
    let keys: Vec<SpanKey> = failed.iter().map(SpanRow::key).collect();
    let above = walk::consumer_above(store, &keys).await?;
    let mut consumers: Vec<SpanRow> = above.into_values().collect();
    consumers.sort_by_key(SpanRow::key);
    consumers.dedup_by(|a, b| a.key() == b.key());
    let mut events: Vec<SummaryRow> = walk::processed(store, &consumers)
        .await?
        .into_values()
        .flatten()
        .map(|(e, _)| e)
        .collect();
    events.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    events.dedup_by(|a, b| a.event_id == b.event_id);
    let handlings = handlings(store, &events).await?;
    let mut out: Vec<(String, String)> = handlings
        .iter()
        .filter_map(|(event, list)| Some((event.clone(), failed_handling(list)?.reason())))
        .collect();
    out.sort();
    Ok(out)
}

/// Causes, found through spans, of those of `events` that name none.
pub async fn causes(store: &Store, events: &[SummaryRow]) -> Result<Vec<SpanCause>, StoreError> {
    let starts: Vec<SpanKey> = events
        .iter()
        .filter(|e| e.causation_id.is_none())
        .filter_map(|e| Some((e.trace_id.clone()?, e.span_id.clone()?)))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if starts.is_empty() || !store.has_spans().await? {
        return Ok(Vec::new());
    }
    let above = walk::consumer_above(store, &starts).await?;
    let mut consumers: Vec<SpanRow> = above.values().cloned().collect();
    consumers.sort_by_key(SpanRow::key);
    consumers.dedup_by(|a, b| a.key() == b.key());
    let processed = walk::processed(store, &consumers).await?;
    let mut out = Vec::new();
    for e in events.iter().filter(|e| e.causation_id.is_none()) {
        let (Some(t), Some(s)) = (&e.trace_id, &e.span_id) else {
            continue;
        };
        let Some(consumer) = above.get(&(t.clone(), s.clone())) else {
            continue;
        };
        for (record, rule) in processed.get(&consumer.key()).into_iter().flatten() {
            if record.event_id != e.event_id {
                out.push(SpanCause {
                    cause: record.event_id.clone(),
                    reaction: e.event_id.clone(),
                    rule: *rule,
                });
            }
        }
    }
    Ok(out)
}

/// The handlings of each of `events` (by event id), oldest first.
pub async fn handlings(
    store: &Store,
    events: &[SummaryRow],
) -> Result<HashMap<String, Vec<Handling>>, StoreError> {
    if events.is_empty() || !store.has_spans().await? {
        return Ok(HashMap::new());
    }
    let consumers = walk::consumers_of(store, events).await?;
    let all: Vec<SpanRow> = consumers
        .values()
        .flatten()
        .map(|(c, _)| c.clone())
        .collect();
    let under = walk::spans_under(store, &all).await?;
    let mut spans: Vec<SpanKey> = all.iter().map(SpanRow::key).collect();
    spans.extend(under.values().flatten().map(SpanRow::key));
    spans.sort_unstable();
    spans.dedup();
    let mut produced_in: HashMap<SpanKey, Vec<SummaryRow>> = HashMap::new();
    if !spans.is_empty() {
        for r in store.same_spans(&spans).await? {
            if r.causation_id.is_some() {
                continue;
            }
            if let (Some(t), Some(s)) = (r.trace_id.clone(), r.span_id.clone()) {
                produced_in.entry((t, s)).or_default().push(r);
            }
        }
    }
    let mut out = HashMap::new();
    for (event, list) in consumers {
        let handlings = list
            .into_iter()
            .map(|(consumer, rule)| {
                let under = under.get(&consumer.key()).cloned().unwrap_or_default();
                let mut produced: Vec<SummaryRow> = std::iter::once(consumer.key())
                    .chain(under.iter().map(SpanRow::key))
                    .flat_map(|k| produced_in.get(&k).cloned().unwrap_or_default())
                    .filter(|r| r.event_id != event)
                    .collect();
                produced.sort_by(|a, b| (a.time_us, &a.event_id).cmp(&(b.time_us, &b.event_id)));
                produced.dedup_by(|a, b| a.event_id == b.event_id);
                Handling {
                    consumer,
                    rule,
                    under,
                    produced,
                }
            })
            .collect();
        out.insert(event, handlings);
    }
    Ok(out)
}

/// Reactions, found through spans, of each of `events`: every record its handlings produced.
pub async fn reactions(
    store: &Store,
    events: &[SummaryRow],
) -> Result<Vec<(SpanCause, SummaryRow)>, StoreError> {
    let mut out = Vec::new();
    for (event, handlings) in handlings(store, events).await? {
        for h in handlings {
            for r in h.produced {
                out.push((
                    SpanCause {
                        cause: event.clone(),
                        reaction: r.event_id.clone(),
                        rule: h.rule,
                    },
                    r,
                ));
            }
        }
    }
    Ok(out)
}
