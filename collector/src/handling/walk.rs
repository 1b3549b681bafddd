//! The store walks behind the span rules: from a record's span up to the consumer span it was
//! produced under, from a consumer span to the record it processed, and from a record down to
//! the consumer spans that processed it and everything they did.

use std::collections::{HashMap, HashSet};

use crate::edge_rule::Rule;
use crate::record::derived_id;
use crate::span::SpanKind;
use crate::store::{SpanRow, Store, StoreError, SummaryRow};

/// Parent hops followed from a record's span to its consumer span, and child hops down from a
/// consumer span (handler spans nest a few deep; a chain longer than this is not followed).
pub const MAX_HOPS: usize = 16;

/// `(trace id, span id)`.
pub type SpanKey = (String, String);

/// The consumer span each of `starts` (a record's producing span) was produced under: the
/// nearest CONSUMER span up its parents, the span itself included.
pub async fn consumer_above(
    store: &Store,
    starts: &[SpanKey],
) -> Result<HashMap<SpanKey, SpanRow>, StoreError> {
    let mut found = HashMap::new();
    // (start, where the walk is now)
    let mut frontier: Vec<(SpanKey, SpanKey)> =
        starts.iter().map(|k| (k.clone(), k.clone())).collect();
    // The span itself, then up to MAX_HOPS parents (as deep as `spans_under` goes down).
    for _ in 0..=MAX_HOPS {
        if frontier.is_empty() {
            break;
        }
        let mut wanted: Vec<SpanKey> = frontier.iter().map(|(_, at)| at.clone()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let spans: HashMap<SpanKey, SpanRow> = store
            .spans(&wanted)
            .await?
            .into_iter()
            .map(|s| (s.key(), s))
            .collect();
        let mut next = Vec::new();
        for (start, at) in frontier {
            let Some(span) = spans.get(&at) else { continue };
            if span.span_kind() == SpanKind::Consumer {
                found.insert(start, span.clone());
            } else if let Some(parent) = &span.parent_span_id {
                next.push((start, (span.trace_id.clone(), parent.clone())));
            }
        }
        frontier = next;
    }
    Ok(found)
}

/// The records each of `consumers` processed, with the rule that found them, by priority: the
/// record at the span's message position (a record without an id of its own, whose id is its
/// position), else the records of the spans it links to (one each: a batch consumer links many),
/// else the records of its parent span (a consumer span started as the producer's child). Under
/// the last two, a span that names a position (or a topic) takes only the records there.
pub async fn processed(
    store: &Store,
    consumers: &[SpanRow],
) -> Result<HashMap<SpanKey, Vec<(SummaryRow, Rule)>>, StoreError> {
    let mut out: HashMap<SpanKey, Vec<(SummaryRow, Rule)>> = HashMap::new();
    // 1. The message position: the record's derived id, when it carries no id of its own.
    let mut by_id: HashMap<String, Vec<SpanKey>> = HashMap::new();
    for c in consumers {
        if let Some((topic, partition, offset)) = c.position() {
            by_id
                .entry(derived_id(&topic, partition, offset))
                .or_default()
                .push(c.key());
        }
    }
    let by_key: HashMap<SpanKey, &SpanRow> = consumers.iter().map(|c| (c.key(), c)).collect();
    // Under rules 2 and 3, a consumer span that names where its record was takes only that.
    let fits = |consumer: &SpanKey, record: &SummaryRow| {
        let Some(c) = by_key.get(consumer) else {
            return true;
        };
        c.destination.as_deref().is_none_or(|t| t == record.topic)
            && c.kafka_partition
                .is_none_or(|p| p == record.kafka_partition)
            && c.kafka_offset.is_none_or(|o| o == record.kafka_offset)
    };
    let ids: Vec<String> = by_id.keys().cloned().collect();
    for record in store.summaries(&ids).await? {
        for key in &by_id[&record.event_id] {
            let entry = out.entry(key.clone()).or_default();
            if !entry.iter().any(|(r, _)| r.event_id == record.event_id) {
                entry.push((record.clone(), Rule::SpanMessage));
            }
        }
    }
    // 2. Links, for the consumers not settled by 1.
    let rest: Vec<SpanKey> = consumers
        .iter()
        .map(SpanRow::key)
        .filter(|k| !out.contains_key(k))
        .collect();
    let links = store.links_from(&rest).await?;
    let targets: Vec<SpanKey> = links
        .iter()
        .map(|l| (l.linked_trace_id.clone(), l.linked_span_id.clone()))
        .collect();
    let records = records_of_spans(store, &targets).await?;
    for l in &links {
        let target = (l.linked_trace_id.clone(), l.linked_span_id.clone());
        let consumer = (l.trace_id.clone(), l.span_id.clone());
        for record in records.get(&target).into_iter().flatten() {
            if fits(&consumer, record) {
                out.entry(consumer.clone())
                    .or_default()
                    .push((record.clone(), Rule::SpanLink));
            }
        }
    }
    // 3. The parent, for the consumers still unsettled.
    let parents: Vec<(SpanKey, SpanKey)> = consumers
        .iter()
        .filter(|c| !out.contains_key(&c.key()))
        .filter_map(|c| Some((c.key(), (c.trace_id.clone(), c.parent_span_id.clone()?))))
        .collect();
    let wanted: Vec<SpanKey> = parents.iter().map(|(_, p)| p.clone()).collect();
    let records = records_of_spans(store, &wanted).await?;
    for (consumer, parent) in parents {
        for record in records.get(&parent).into_iter().flatten() {
            if fits(&consumer, record) {
                out.entry(consumer.clone())
                    .or_default()
                    .push((record.clone(), Rule::SpanParent));
            }
        }
    }
    Ok(out)
}

/// Records produced in each of `spans` (their `traceparent` names it).
async fn records_of_spans(
    store: &Store,
    spans: &[SpanKey],
) -> Result<HashMap<SpanKey, Vec<SummaryRow>>, StoreError> {
    let mut out: HashMap<SpanKey, Vec<SummaryRow>> = HashMap::new();
    if spans.is_empty() {
        return Ok(out);
    }
    let mut wanted = spans.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    for r in store.same_spans(&wanted).await? {
        if let (Some(t), Some(s)) = (r.trace_id.clone(), r.span_id.clone()) {
            out.entry((t, s)).or_default().push(r);
        }
    }
    Ok(out)
}

/// The consumer spans that processed each of `events`: candidates by message position, by a
/// link to the event's span and as children of it, kept when [`processed`] (the rule the other
/// way) gives the event back.
pub async fn consumers_of(
    store: &Store,
    events: &[SummaryRow],
) -> Result<HashMap<String, Vec<(SpanRow, Rule)>>, StoreError> {
    let mut out: HashMap<String, Vec<(SpanRow, Rule)>> = HashMap::new();
    if events.is_empty() {
        return Ok(out);
    }
    let positions: Vec<(String, i32, i64)> = events
        .iter()
        .map(|e| (e.topic.clone(), e.kafka_partition, e.kafka_offset))
        .collect();
    let producing: Vec<SpanKey> = events
        .iter()
        .filter_map(|e| Some((e.trace_id.clone()?, e.span_id.clone()?)))
        .collect();
    let mut candidates: HashMap<SpanKey, SpanRow> = HashMap::new();
    for c in store.consumer_spans_at(&positions).await? {
        candidates.insert(c.key(), c);
    }
    if !producing.is_empty() {
        let linking: Vec<SpanKey> = store
            .links_to(&producing)
            .await?
            .into_iter()
            .map(|l| (l.trace_id, l.span_id))
            .filter(|k| !candidates.contains_key(k))
            .collect();
        for s in store.spans(&linking).await? {
            candidates.insert(s.key(), s);
        }
        for s in store.span_children(&producing).await? {
            candidates.insert(s.key(), s);
        }
    }
    let candidates: Vec<SpanRow> = candidates
        .into_values()
        .filter(|s| s.span_kind() == SpanKind::Consumer)
        .collect();
    let wanted: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let processed = processed(store, &candidates).await?;
    for c in candidates {
        for (record, rule) in processed.get(&c.key()).into_iter().flatten() {
            if wanted.contains(record.event_id.as_str()) {
                out.entry(record.event_id.clone())
                    .or_default()
                    .push((c.clone(), *rule));
            }
        }
    }
    for list in out.values_mut() {
        // A consumer span with another of the event's consumer spans under it (a `receive` span
        // and its `process` child) is not a handling of its own: the inner one is.
        let parents: HashSet<SpanKey> = list
            .iter()
            .filter_map(|(c, _)| Some((c.trace_id.clone(), c.parent_span_id.clone()?)))
            .collect();
        list.retain(|(c, _)| !parents.contains(&c.key()));
        list.sort_by(|a, b| (a.0.start_us, &a.0.span_id).cmp(&(b.0.start_us, &b.0.span_id)));
    }
    Ok(out)
}

/// Every span under each of `consumers` (children, their children, …), stopping at nested
/// consumer spans, which are handlings of their own.
pub async fn spans_under(
    store: &Store,
    consumers: &[SpanRow],
) -> Result<HashMap<SpanKey, Vec<SpanRow>>, StoreError> {
    let mut out: HashMap<SpanKey, Vec<SpanRow>> = HashMap::new();
    // (root consumer, span whose children are wanted)
    let mut frontier: Vec<(SpanKey, SpanKey)> =
        consumers.iter().map(|c| (c.key(), c.key())).collect();
    let mut seen: HashSet<SpanKey> = frontier.iter().map(|(_, k)| k.clone()).collect();
    for _ in 0..MAX_HOPS {
        if frontier.is_empty() {
            break;
        }
        let parents: Vec<SpanKey> = frontier.iter().map(|(_, k)| k.clone()).collect();
        let root_of: HashMap<SpanKey, SpanKey> =
            frontier.into_iter().map(|(root, k)| (k, root)).collect();
        let mut next = Vec::new();
        for child in store.span_children(&parents).await? {
            let Some(parent) = child.parent_span_id.clone() else {
                continue;
            };
            let Some(root) = root_of.get(&(child.trace_id.clone(), parent)) else {
                continue;
            };
            if child.span_kind() == SpanKind::Consumer || !seen.insert(child.key()) {
                continue;
            }
            next.push((root.clone(), child.key()));
            out.entry(root.clone()).or_default().push(child);
        }
        frontier = next;
    }
    Ok(out)
}
