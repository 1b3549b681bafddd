//! The answers: events, lineage graphs, key, trace and correlation flows, search pages and the
//! choreography map, each computed from the store within [`Limits`].

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use base64::Engine as _;

use super::model::{
    ms, rfc3339, EventDetail, EventSummary, Flow, FlowAnswer, FlowEnd, Graph, Hop, KeyAnswer,
    KeyValue, MapEdge, MapNode, SearchPage, Topology,
};
use super::Limits;
use super::QueryError;
use crate::flow::graph_of;
use crate::lineage::{lineage, Direction, Flag, Lineage};
use crate::store::{SearchFilter, Store, SummaryRow};

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Everything about event `id`.
pub async fn event_detail(store: &Store, id: &str) -> Result<EventDetail, QueryError> {
    let Some(event) = store.event(id).await? else {
        return Err(QueryError::NotFound(format!("no event with id `{id}`")));
    };
    let ids = [id.to_owned()];
    let keys = store.keys_of(&ids).await?;
    let deliveries = store.deliveries(id).await?;
    let mut reactions: Vec<SummaryRow> = store.children(&ids).await?;
    reactions.sort_by(|a, b| (a.time_us, &a.event_id).cmp(&(b.time_us, &b.event_id)));
    let cause_stored = match &event.causation_id {
        Some(cause) => !store
            .summaries(std::slice::from_ref(cause))
            .await?
            .is_empty(),
        None => false,
    };
    Ok(EventDetail::new(
        event,
        keys,
        deliveries,
        reactions.into_iter().map(|r| r.event_id).collect(),
        cause_stored,
    ))
}

/// The lineage graph around event `id`.
pub async fn lineage_graph(
    store: &Store,
    id: &str,
    direction: Direction,
    depth: u32,
    limits: &Limits,
) -> Result<Graph, QueryError> {
    let mut cut = None;
    let depth = if depth > limits.max_depth {
        cut = Some(format!("depth limited to {}", limits.max_depth));
        limits.max_depth
    } else {
        depth
    };
    let Some(mut graph) = lineage(store, id, direction, depth, limits.max_nodes).await? else {
        return Err(QueryError::NotFound(format!("no event with id `{id}`")));
    };
    if graph.truncated.is_none() {
        graph.truncated = cut;
    }
    Ok(Graph::from_lineage(graph, true))
}

/// The flow key of an event: its correlation, else itself (it starts its own conversation).
fn flow_key(e: &SummaryRow) -> &str {
    e.correlation_id.as_deref().unwrap_or(&e.event_id)
}

/// The graph of `events` with causes outside the set looked up in the store.
async fn graph_with_causes(store: &Store, events: Vec<SummaryRow>) -> Result<Lineage, QueryError> {
    let inside: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let outside: Vec<String> = events
        .iter()
        .filter_map(|e| e.causation_id.clone())
        .filter(|c| !inside.contains(c.as_str()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let stored: HashSet<String> = store
        .summaries(&outside)
        .await?
        .into_iter()
        .map(|s| s.event_id)
        .collect();
    Ok(graph_of(events, &stored))
}

/// The [`Flow`] made of the nodes `members` (indexes into `graph.nodes`).
fn flow_of(graph: &Lineage, members: &[usize], correlation_id: Option<String>, now: i64) -> Flow {
    let position: HashMap<&str, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.event.event_id.as_str(), i))
        .collect();
    let member: HashSet<usize> = members.iter().copied().collect();
    let mut incoming: HashMap<usize, usize> = members.iter().map(|&i| (i, 0)).collect();
    let mut out: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut hops = Vec::new();
    for e in &graph.edges {
        let (Some(&f), Some(&t)) = (position.get(e.from.as_str()), position.get(e.to.as_str()))
        else {
            continue;
        };
        if !(member.contains(&f) && member.contains(&t)) {
            continue;
        }
        let (from, to) = (&graph.nodes[f].event, &graph.nodes[t].event);
        hops.push(Hop {
            from: e.from.clone(),
            to: e.to.clone(),
            from_service: from.source.clone(),
            to_service: to.source.clone(),
            from_type: from.event_type.clone(),
            to_type: to.event_type.clone(),
            latency_ms: ms(e.latency_us),
        });
        if !e.cycle {
            *incoming.entry(t).or_default() += 1;
            out.entry(f).or_default().push(t);
        }
    }
    let roots: Vec<usize> = {
        let mut r: Vec<usize> = members
            .iter()
            .copied()
            .filter(|i| incoming[i] == 0)
            .collect();
        r.sort_unstable();
        r
    };
    // Kahn's order, earliest ready event first (nodes are in time order, so index order is time order).
    let mut ready: BinaryHeap<std::cmp::Reverse<usize>> =
        roots.iter().map(|&i| std::cmp::Reverse(i)).collect();
    let mut order = Vec::with_capacity(members.len());
    let mut placed = HashSet::new();
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        if !placed.insert(i) {
            continue;
        }
        order.push(i);
        for &t in out.get(&i).map(Vec::as_slice).unwrap_or_default() {
            let left = incoming.get_mut(&t).expect("member");
            *left -= 1;
            if *left == 0 {
                ready.push(std::cmp::Reverse(t));
            }
        }
    }
    let mut rest: Vec<usize> = members
        .iter()
        .copied()
        .filter(|i| !placed.contains(i))
        .collect();
    rest.sort_unstable();
    order.extend(rest);

    let mut by_time: Vec<usize> = members.to_vec();
    by_time.sort_unstable();
    let services = services_in(by_time.iter().map(|&i| &graph.nodes[i].event));
    let first = by_time.first().map_or(0, |&i| graph.nodes[i].event.time_us);
    let last = by_time
        .iter()
        .map(|&i| graph.nodes[i].event.time_us)
        .max()
        .unwrap_or(first);
    let ends = by_time
        .iter()
        .filter(|&&i| graph.nodes[i].flags.contains(&Flag::End))
        .map(|&i| {
            let e = &graph.nodes[i].event;
            FlowEnd {
                id: e.event_id.clone(),
                event_type: e.event_type.clone(),
                source: e.source.clone(),
                topic: e.topic.clone(),
                time: rfc3339(e.time_us),
                idle_ms: ms((now - e.time_us).max(0)),
            }
        })
        .collect();
    Flow {
        correlation_id,
        roots: roots
            .iter()
            .map(|&i| graph.nodes[i].event.event_id.clone())
            .collect(),
        events: order
            .iter()
            .map(|&i| graph.nodes[i].event.event_id.clone())
            .collect(),
        services,
        started: rfc3339(first),
        last_activity: rfc3339(last),
        duration_ms: ms(last - first),
        ends,
        hops,
    }
}

/// Services of `events`, in order of first appearance.
fn services_in<'a>(events: impl Iterator<Item = &'a SummaryRow>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for source in events.filter_map(|e| e.source.as_ref()) {
        if !out.contains(source) {
            out.push(source.clone());
        }
    }
    out
}

/// "What happened to `name = value`?": every flow that touched it.
pub async fn key_answer(
    store: &Store,
    name: &str,
    value: &str,
    limits: &Limits,
) -> Result<KeyAnswer, QueryError> {
    let matched = store
        .by_key(name, value, limits.max_nodes as i64 + 1)
        .await?;
    if matched.is_empty() {
        return Err(QueryError::NotFound(format!(
            "no event carries the key {name} = {value}"
        )));
    }
    let mut truncated = None;
    let mut flow_ids: Vec<String> = Vec::new();
    for e in &matched {
        let key = flow_key(e);
        if !flow_ids.iter().any(|f| f == key) {
            flow_ids.push(key.to_owned());
        }
    }
    if flow_ids.len() > limits.max_flows {
        truncated = Some(format!(
            "only the first {} of {} flows",
            limits.max_flows,
            flow_ids.len()
        ));
        flow_ids.truncate(limits.max_flows);
    }
    let mut events: Vec<SummaryRow> = Vec::new();
    for id in &flow_ids {
        let budget = (limits.max_nodes.saturating_sub(events.len())) as i64;
        if budget == 0 {
            truncated = Some(format!("node limit of {} reached", limits.max_nodes));
            break;
        }
        let flow = store.by_correlation(id, budget + 1).await?;
        if flow.len() as i64 > budget {
            truncated = Some(format!("node limit of {} reached", limits.max_nodes));
        }
        events.extend(flow.into_iter().take(budget as usize));
    }
    let graph = graph_with_causes(store, events).await?;
    let now = now_us();
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        members.entry(flow_key(&n.event)).or_default().push(i);
    }
    let mut flows: Vec<Flow> = flow_ids
        .iter()
        .filter_map(|id| {
            let m = members.get(id.as_str())?;
            let correlated = graph.nodes[m[0]].event.correlation_id.clone();
            Some(flow_of(&graph, m, correlated, now))
        })
        .collect();
    flows.sort_by(|a, b| a.started.cmp(&b.started));
    let services = services_in(graph.nodes.iter().map(|n| &n.event));
    let mut graph = Graph::from_lineage(graph, false);
    graph.truncated = truncated;
    Ok(KeyAnswer {
        key: KeyValue {
            name: name.to_owned(),
            value: value.to_owned(),
        },
        matched_events: matched.len().min(limits.max_nodes),
        flows,
        services,
        graph,
    })
}

/// Checks a W3C trace id: 32 lower-case hex digits, not all zero.
pub fn check_trace_id(id: &str) -> Result<(), QueryError> {
    let ok = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok || id.bytes().all(|b| b == b'0') {
        return Err(QueryError::Unusable(format!(
            "`{id}` is not a W3C trace id (32 lower-case hex digits, not all zero)"
        )));
    }
    Ok(())
}

async fn flow_answer(
    store: &Store,
    id: &str,
    events: Vec<SummaryRow>,
    limits: &Limits,
    what: &str,
) -> Result<FlowAnswer, QueryError> {
    if events.is_empty() {
        return Err(QueryError::NotFound(format!("no event of {what} `{id}`")));
    }
    let truncated = (events.len() > limits.max_nodes)
        .then(|| format!("node limit of {} reached", limits.max_nodes));
    let events: Vec<SummaryRow> = events.into_iter().take(limits.max_nodes).collect();
    let graph = graph_with_causes(store, events).await?;
    let members: Vec<usize> = (0..graph.nodes.len()).collect();
    let correlation = graph
        .nodes
        .first()
        .and_then(|n| n.event.correlation_id.clone());
    let flow = flow_of(&graph, &members, correlation, now_us());
    let mut graph = Graph::from_lineage(graph, false);
    graph.truncated = truncated;
    Ok(FlowAnswer {
        id: id.to_owned(),
        flow,
        graph,
    })
}

/// Every event of trace `trace_id`.
pub async fn trace_answer(
    store: &Store,
    trace_id: &str,
    limits: &Limits,
) -> Result<FlowAnswer, QueryError> {
    check_trace_id(trace_id)?;
    let events = store
        .by_trace(trace_id, limits.max_nodes as i64 + 1)
        .await?;
    flow_answer(store, trace_id, events, limits, "trace").await
}

/// Every event of correlation `id` (its root included).
pub async fn correlation_answer(
    store: &Store,
    id: &str,
    limits: &Limits,
) -> Result<FlowAnswer, QueryError> {
    let events = store
        .by_correlation(id, limits.max_nodes as i64 + 1)
        .await?;
    flow_answer(store, id, events, limits, "correlation").await
}

/// Encodes a keyset cursor.
pub fn encode_cursor(time_us: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{time_us}:{id}"))
}

/// Decodes a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<(i64, String), QueryError> {
    let bad =
        || QueryError::BadParameter(format!("`{cursor}` is not a cursor returned by this API"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (time, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((time.parse().map_err(|_| bad())?, id.to_owned()))
}

/// One page of events matching `filter` (whose `limit` is bounded here).
pub async fn search(
    store: &Store,
    mut filter: SearchFilter,
    limits: &Limits,
) -> Result<SearchPage, QueryError> {
    if filter.limit < 1 {
        return Err(QueryError::Unusable(format!(
            "limit must be at least 1, not {}",
            filter.limit
        )));
    }
    if let (Some(from), Some(to)) = (filter.from_us, filter.to_us) {
        if from > to {
            return Err(QueryError::Unusable("`from` is after `to`".into()));
        }
    }
    filter.limit = filter.limit.min(limits.max_page);
    let limit = filter.limit;
    filter.limit += 1;
    let mut rows = store.search(&filter).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|e| encode_cursor(e.time_us, &e.event_id))
    } else {
        None
    };
    Ok(SearchPage {
        events: rows.into_iter().map(EventSummary::from_row).collect(),
        next_cursor,
        limit,
    })
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(ms(sorted[rank - 1]))
}

/// The service name shown for events without `ce_source`.
pub const UNKNOWN_SERVICE: &str = "(unknown)";

/// The choreography between `from_us` and `to_us`.
pub async fn topology(
    store: &Store,
    from_us: i64,
    to_us: i64,
    limits: &Limits,
) -> Result<Topology, QueryError> {
    if from_us > to_us {
        return Err(QueryError::Unusable("`from` is after `to`".into()));
    }
    let produced = store.produce_counts(from_us, to_us).await?;
    let hops = store.hops(from_us, to_us, limits.max_hops + 1).await?;
    let truncated = (hops.len() as i64 > limits.max_hops).then(|| {
        format!(
            "latencies from the {} most recent reactions",
            limits.max_hops
        )
    });
    let mut nodes: BTreeMap<String, MapNode> = BTreeMap::new();
    let mut node = |kind: &str, name: &str| {
        let id = format!("{kind}:{name}");
        nodes.entry(id.clone()).or_insert_with(|| MapNode {
            id: id.clone(),
            kind: kind.into(),
            name: name.into(),
        });
        id
    };
    let mut edges = Vec::new();
    for p in &produced {
        let service = node("service", p.source.as_deref().unwrap_or(UNKNOWN_SERVICE));
        let topic = node("topic", &p.topic);
        edges.push(MapEdge {
            from: service,
            to: topic,
            kind: "produce".into(),
            count: p.events,
            latency_p50_ms: None,
            latency_p95_ms: None,
        });
    }
    let mut consumed: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for h in hops.into_iter().take(limits.max_hops as usize) {
        consumed
            .entry((
                h.cause_topic,
                h.source.unwrap_or_else(|| UNKNOWN_SERVICE.to_owned()),
            ))
            .or_default()
            .push(h.latency_us);
    }
    for ((topic, service), mut latencies) in consumed {
        latencies.sort_unstable();
        let from = node("topic", &topic);
        let to = node("service", &service);
        edges.push(MapEdge {
            from,
            to,
            kind: "consume".into(),
            count: latencies.len() as i64,
            latency_p50_ms: percentile(&latencies, 0.50),
            latency_p95_ms: percentile(&latencies, 0.95),
        });
    }
    Ok(Topology {
        from: rfc3339(from_us),
        to: rfc3339(to_us),
        nodes: nodes.into_values().collect(),
        edges,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_a_bad_parameter() {
        let c = encode_cursor(1_700_000_000_000_123, "0190-abc:def");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (1_700_000_000_000_123, "0190-abc:def".to_owned())
        );
        assert!(matches!(
            decode_cursor("%%%"),
            Err(QueryError::BadParameter(_))
        ));
        let no_separator = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("12345");
        assert!(matches!(
            decode_cursor(&no_separator),
            Err(QueryError::BadParameter(_))
        ));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.95), Some(95.0));
        assert_eq!(percentile(&[7000], 0.95), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn trace_ids_must_be_w3c() {
        assert!(check_trace_id("4bf92f3577b34da6a3ce929d0e0e4736").is_ok());
        for bad in [
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            "abc",
            "00000000000000000000000000000000",
        ] {
            assert!(
                matches!(check_trace_id(bad), Err(QueryError::Unusable(_))),
                "{bad}"
            );
        }
    }
}
