//! The answers: events, lineage graphs, key, trace and correlation flows, search pages and the
//! choreography map, each computed from the store within [`Limits`].

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use super::health::{
    dead_letters_of, flow_health, handler_failure, handler_failures, latest, DeadLetters,
    EventsById, HandlerFailures, Judge,
};
use super::model::{
    ms, rfc3339, EventDetail, EventSummary, Flow, FlowAnswer, FlowEnd, Graph, HandlingView, Hop,
    KeyAnswer, KeyValue, MapEdge, MapEdgeKind, MapNode, MapNodeKind, SearchPage, Topology,
};
use super::Limits;
use super::QueryError;
use crate::clock::now_us;
use crate::flow::graph_of;
use crate::groups::book::named_after;
use crate::groups::GroupsHandle;
use crate::health::{FlowEvent, FlowFacts, FlowStatus, HealthHandle};
use crate::lineage::{lineage, Direction, Flag, Lineage};
use crate::store::{SearchFilter, Store, SummaryRow};

/// Everything about event `id`, with the flags of its node in the graph of its flow
/// ([`flags_in_flow`]).
pub async fn event_detail(
    store: &Store,
    groups: &GroupsHandle,
    id: &str,
    limits: &Limits,
) -> Result<EventDetail, QueryError> {
    let Some(event) = store.event(id).await? else {
        return Err(QueryError::NotFound(format!("no event with id `{id}`")));
    };
    let ids = [id.to_owned()];
    let dead_letters = store.dead_letters_of(&ids).await?;
    let summary = store.summaries(&ids).await?;
    let handlings = crate::handling::handlings(store, &summary)
        .await?
        .remove(id)
        .unwrap_or_default();
    let produced: Vec<SummaryRow> = handlings
        .iter()
        .flat_map(|h| h.produced.iter().cloned())
        .collect();
    let flags = match summary.into_iter().next() {
        Some(summary) => {
            flags_in_flow(
                store,
                summary,
                !dead_letters.is_empty(),
                produced.clone(),
                limits,
            )
            .await?
        }
        // Gone between the two reads: nothing to mark.
        None => Vec::new(),
    };
    let keys = store.keys_of(&ids).await?;
    let deliveries = store.deliveries(id).await?;
    let mut reactions: Vec<SummaryRow> = store.children(&ids).await?;
    for r in produced {
        if !reactions.iter().any(|x| x.event_id == r.event_id) {
            reactions.push(r);
        }
    }
    reactions.sort_by(|a, b| (a.time_us, &a.event_id).cmp(&(b.time_us, &b.event_id)));
    let cause_stored = match &event.causation_id {
        Some(cause) => !store
            .summaries(std::slice::from_ref(cause))
            .await?
            .is_empty(),
        None => false,
    };
    let at = (
        event.topic.clone(),
        event.kafka_partition,
        event.kafka_offset,
    );
    let source_from_span = match (&event.source, &event.trace_id, &event.span_id) {
        (None, Some(t), Some(s)) => store
            .spans(&[(t.clone(), s.clone())])
            .await?
            .into_iter()
            .next()
            .and_then(|span| span.service),
        _ => None,
    };
    let failed_handling = handler_failure(id, &handlings).is_some();
    let mut detail = EventDetail::new(
        event,
        keys,
        deliveries,
        reactions.into_iter().map(|r| r.event_id).collect(),
        cause_stored,
        flags,
        dead_letters,
    );
    detail.consumer_groups = groups.positions(&at.0, at.1, at.2);
    detail.handlings = handlings.iter().map(HandlingView::from).collect();
    if detail.source.is_none() {
        detail.source = source_from_span;
    }
    if failed_handling && !detail.flags.contains(&Flag::HandlerFailed) {
        detail.flags.push(Flag::HandlerFailed);
        detail.flags.sort_unstable();
    }
    Ok(detail)
}

/// The flags of `event`'s node in the graph of its flow — the events of its correlation (or of
/// the flow it starts), built by the same code (`graph_with_causes`) as the trace, correlation
/// and key answers. A flow beyond the node limit is cut as those answers cut it, `event` kept in.
/// `produced` are the events its handlings produced (from its spans), its reactions beside those
/// that name it.
pub async fn flags_in_flow(
    store: &Store,
    event: SummaryRow,
    dead_lettered: bool,
    produced: Vec<SummaryRow>,
    limits: &Limits,
) -> Result<Vec<Flag>, QueryError> {
    let id = event.event_id.clone();
    let mut events = store
        .by_correlation(flow_key(&event), limits.max_nodes as i64)
        .await?;
    // Its neighbours through spans (uncorrelated events of OpenTelemetry-only services).
    let me = [event.clone()];
    let causes = crate::handling::causes(store, &me).await?;
    let cause_ids: Vec<String> = causes.into_iter().map(|c| c.cause).collect();
    events.extend(store.summaries(&cause_ids).await?);
    events.extend(produced);
    if !events.iter().any(|e| e.event_id == id) {
        events.push(event);
    }
    let graph = graph_with_causes(store, events).await?;
    let mut flags: Vec<Flag> = graph
        .nodes
        .into_iter()
        .find(|n| n.event.event_id == id)
        .map(|n| n.flags.into_iter().collect())
        .unwrap_or_default();
    if dead_lettered {
        flags.push(Flag::DeadLettered);
        flags.sort_unstable();
    }
    Ok(flags)
}

/// The dead letters of every event of `graph`, by event.
async fn dead_letters_in(store: &Store, graph: &Lineage) -> Result<DeadLetters, QueryError> {
    let ids: Vec<String> = graph
        .nodes
        .iter()
        .map(|n| n.event.event_id.clone())
        .collect();
    dead_letters_of(store, &ids).await
}

/// Flags the nodes of `graph` that were dead-lettered.
fn mark_dead_lettered(graph: &mut Lineage, dead_letters: &DeadLetters) {
    for node in &mut graph.nodes {
        if dead_letters.contains_key(&node.event.event_id) {
            node.flags.insert(Flag::DeadLettered);
        }
    }
}

/// What flow health needs of the flow made of `members` of `graph`: their steps and times, and
/// the causal edges between them (cycle-closing edges left out).
fn facts_of(graph: &Lineage, members: &[usize]) -> FlowFacts {
    let index: HashMap<&str, usize> = members
        .iter()
        .enumerate()
        .map(|(k, &i)| (graph.nodes[i].event.event_id.as_str(), k))
        .collect();
    FlowFacts {
        events: members
            .iter()
            .map(|&i| {
                let e = &graph.nodes[i].event;
                FlowEvent {
                    id: e.event_id.clone(),
                    service: e.source.clone(),
                    event_type: e.event_type.clone(),
                    time_us: e.time_us,
                    failure: None,
                }
            })
            .collect(),
        edges: graph
            .edges
            .iter()
            .filter(|e| !e.cycle)
            .filter_map(|e| Some((*index.get(e.from.as_str())?, *index.get(e.to.as_str())?)))
            .collect(),
    }
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
    let dead_letters = dead_letters_in(store, &graph).await?;
    mark_dead_lettered(&mut graph, &dead_letters);
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
    let span_causes = crate::handling::causes(store, &events).await?;
    let events = with_services_from_spans(store, events).await?;
    Ok(graph_of(events, &stored, &span_causes))
}

/// `events` with the service of each that names none (no `ce_source`) taken from the span that
/// produced it (`service.name`).
async fn with_services_from_spans(
    store: &Store,
    mut events: Vec<SummaryRow>,
) -> Result<Vec<SummaryRow>, QueryError> {
    let wanted: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.source.is_none())
        .filter_map(|e| Some((e.trace_id.clone()?, e.span_id.clone()?)))
        .collect();
    if wanted.is_empty() {
        return Ok(events);
    }
    let services: HashMap<(String, String), String> = store
        .spans(&wanted)
        .await?
        .into_iter()
        .filter_map(|s| Some((s.key(), s.service?)))
        .collect();
    for e in events.iter_mut().filter(|e| e.source.is_none()) {
        if let (Some(t), Some(s)) = (&e.trace_id, &e.span_id) {
            e.source = services.get(&(t.clone(), s.clone())).cloned();
        }
    }
    Ok(events)
}

/// What an answer judges its flows by, beyond flow health: the dead letters and the failed
/// handlings of `graph`'s events, with the nodes they fail flagged.
async fn failures_in(
    store: &Store,
    graph: &mut Lineage,
) -> Result<(DeadLetters, HandlerFailures), QueryError> {
    let dead_letters = dead_letters_in(store, graph).await?;
    mark_dead_lettered(graph, &dead_letters);
    let events: Vec<SummaryRow> = graph.nodes.iter().map(|n| n.event.clone()).collect();
    let failures = handler_failures(&crate::handling::handlings(store, &events).await?);
    for node in &mut graph.nodes {
        if failures.contains_key(&node.event.event_id) {
            node.flags.insert(Flag::HandlerFailed);
        }
    }
    Ok((dead_letters, failures))
}

/// The [`Flow`] made of the nodes `members` (indexes into `graph.nodes`, in time order), with its
/// health.
fn flow_of(
    graph: &Lineage,
    members: &[usize],
    correlation_id: Option<String>,
    judge: Judge<'_>,
    now: i64,
) -> Flow {
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
    // The tracker keys a flow by its correlation, else by the event that starts it.
    let key = correlation_id
        .clone()
        .or_else(|| {
            roots
                .first()
                .map(|&i| graph.nodes[i].event.event_id.clone())
        })
        .unwrap_or_default();
    let events: EventsById<'_> = by_time
        .iter()
        .map(|&i| {
            (
                graph.nodes[i].event.event_id.as_str(),
                &graph.nodes[i].event,
            )
        })
        .collect();
    let health = flow_health(judge, &key, || facts_of(graph, &by_time), &events, now);
    Flow {
        health,
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

/// The flows of `graph`: its events grouped by correlation (else the event that starts a
/// conversation) and joined along its edges (an OpenTelemetry-only service's events carry no
/// correlation: their edges through spans make them one flow). Members in time order.
fn flows_in(graph: &Lineage) -> Vec<Vec<usize>> {
    let n = graph.nodes.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let union = |parent: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    };
    let index: HashMap<&str, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.event.event_id.as_str(), i))
        .collect();
    let mut first_of_key: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let first = *first_of_key.entry(flow_key(&node.event)).or_insert(i);
        union(&mut parent, first, i);
    }
    for e in &graph.edges {
        if let (Some(&a), Some(&b)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
            union(&mut parent, a, b);
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    groups.into_values().collect()
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
    health: &HealthHandle,
    groups: &GroupsHandle,
    name: &str,
    value: &str,
    hashed: Option<&str>,
    limits: &Limits,
) -> Result<KeyAnswer, QueryError> {
    let mut matched = store
        .by_key(name, value, limits.max_nodes as i64 + 1)
        .await?;
    // A value stored hashed at ingest (docs/security.md) is found by its hash.
    if let (true, Some(hashed)) = (matched.is_empty(), hashed) {
        matched = store
            .by_key(name, hashed, limits.max_nodes as i64 + 1)
            .await?;
    }
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
    let mut graph = graph_with_causes(store, events).await?;
    let (dead_letters, handler_failures) = failures_in(store, &mut graph).await?;
    let judge = Judge {
        health,
        groups,
        dead_letters: &dead_letters,
        handler_failures: &handler_failures,
    };
    let now = now_us();
    let mut flows: Vec<Flow> = flows_in(&graph)
        .into_iter()
        .map(|m| {
            let correlated = m
                .iter()
                .find_map(|&i| graph.nodes[i].event.correlation_id.clone());
            flow_of(&graph, &m, correlated, judge, now)
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

/// The pattern of a trace id in the API: 32 lower-case hex digits.
pub const TRACE_ID_PATTERN: &str = "^[0-9a-f]{32}$";

/// Checks the shape of a W3C trace id: 32 lower-case hex digits ([`TRACE_ID_PATTERN`]). The
/// all-zero id has that shape; W3C makes it invalid, so no stored event carries it and
/// [`trace_answer`] finds nothing for it (not found, like any other trace not seen).
pub fn check_trace_id(id: &str) -> Result<(), QueryError> {
    let ok = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok {
        return Err(QueryError::Unusable(format!(
            "`{id}` is not a W3C trace id (32 lower-case hex digits)"
        )));
    }
    Ok(())
}

/// Whether `id` is the all-zero trace id, which W3C reserves as invalid.
fn is_invalid_trace_id(id: &str) -> bool {
    id.bytes().all(|b| b == b'0')
}

async fn flow_answer(
    store: &Store,
    health: &HealthHandle,
    groups: &GroupsHandle,
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
    let mut graph = graph_with_causes(store, events).await?;
    let (dead_letters, handler_failures) = failures_in(store, &mut graph).await?;
    let members: Vec<usize> = (0..graph.nodes.len()).collect();
    let correlation = graph
        .nodes
        .first()
        .and_then(|n| n.event.correlation_id.clone());
    let judge = Judge {
        health,
        groups,
        dead_letters: &dead_letters,
        handler_failures: &handler_failures,
    };
    let flow = flow_of(&graph, &members, correlation, judge, now_us());
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
    health: &HealthHandle,
    groups: &GroupsHandle,
    trace_id: &str,
    limits: &Limits,
) -> Result<FlowAnswer, QueryError> {
    check_trace_id(trace_id)?;
    if is_invalid_trace_id(trace_id) {
        return Err(QueryError::NotFound(format!(
            "no event of trace `{trace_id}`: the all-zero trace id is invalid (W3C), none is stored"
        )));
    }
    let events = store
        .by_trace(trace_id, limits.max_nodes as i64 + 1)
        .await?;
    flow_answer(store, health, groups, trace_id, events, limits, "trace").await
}

/// Every event of correlation `id` (its root included).
pub async fn correlation_answer(
    store: &Store,
    health: &HealthHandle,
    groups: &GroupsHandle,
    id: &str,
    limits: &Limits,
) -> Result<FlowAnswer, QueryError> {
    let events = store
        .by_correlation(id, limits.max_nodes as i64 + 1)
        .await?;
    flow_answer(store, health, groups, id, events, limits, "correlation").await
}

/// Stalled and failed flows tracked now whose stopping event is in `[from_us, to_us)`, per map
/// edge `(from, to)`: a stalled flow on the consume edge from the topic of the event after which
/// a reaction is missing to the service expected to react (on the produce edge of that event
/// when any reaction would do); a failed flow on the consume edge from its dead-lettered event's
/// topic to the service that gave up on it (its dead letter's consumer group's service, as the
/// consumer-group positions know it or by name — `bank`, `bank-…` — else the one service whose
/// reaction to it is missing), else on that event's produce edge. A failed flow does not count as
/// stalled too.
async fn stopped_on_edges(
    store: &Store,
    health: &HealthHandle,
    groups: &GroupsHandle,
    from_us: i64,
    to_us: i64,
) -> Result<BTreeMap<(String, String), (i64, i64)>, QueryError> {
    let stopped: Vec<_> = {
        let tracker = health.tracker();
        let mut flows = tracker.flows(Some(FlowStatus::Stalled), usize::MAX);
        flows.extend(tracker.flows(Some(FlowStatus::Failed), usize::MAX));
        flows
    };
    let mut ids: Vec<String> = Vec::new();
    for f in &stopped {
        ids.extend(
            f.health
                .missing
                .iter()
                .filter(|m| m.overdue_ms.is_some())
                .map(|m| m.after_event.clone()),
        );
        ids.extend(f.health.failures.iter().map(|x| x.event.clone()));
    }
    ids.sort_unstable();
    ids.dedup();
    let events: HashMap<String, SummaryRow> = store
        .summaries(&ids)
        .await?
        .into_iter()
        .filter(|e| e.time_us >= from_us && e.time_us < to_us)
        .map(|e| (e.event_id.clone(), e))
        .collect();
    let failed: Vec<String> = stopped
        .iter()
        .flat_map(|f| f.health.failures.iter().map(|x| x.event.clone()))
        .collect();
    let dead_letters = dead_letters_of(store, &failed).await?;
    let book = groups.book();
    let service_node = |s: Option<&str>| format!("service:{}", s.unwrap_or(UNKNOWN_SERVICE));
    let mut out: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for f in &stopped {
        let mut edges: HashSet<((String, String), bool)> = HashSet::new();
        // A failed flow counts as failed only, not also as stalled on what it misses.
        let stalled = f.health.status == FlowStatus::Stalled;
        for m in f
            .health
            .missing
            .iter()
            .filter(|m| stalled && m.overdue_ms.is_some())
        {
            let Some(e) = events.get(&m.after_event) else {
                continue;
            };
            let topic = format!("topic:{}", e.topic);
            edges.insert(match m.expected.service() {
                Some(s) => ((topic, service_node(Some(s))), true),
                None => ((service_node(e.source.as_deref()), topic), true),
            });
        }
        for failure in &f.health.failures {
            let Some(e) = events.get(&failure.event) else {
                continue;
            };
            let topic = format!("topic:{}", e.topic);
            let group =
                latest(&dead_letters, &failure.event).and_then(|d| d.consumer_group.clone());
            // The service that gave up: its group's (as consumer-group positions know it, else
            // by name), else the one whose reaction to the event is missing.
            let reacting = group
                .as_deref()
                .and_then(|g| {
                    book.service_of(g).or_else(|| {
                        named_after(
                            g,
                            f.health.missing.iter().filter_map(|m| m.expected.service()),
                        )
                        .map(str::to_owned)
                    })
                })
                .or_else(|| {
                    let mut after = f
                        .health
                        .missing
                        .iter()
                        .filter(|m| m.after_event == failure.event)
                        .filter_map(|m| m.expected.service());
                    match (after.next(), after.next()) {
                        (Some(only), None) => Some(only.to_owned()),
                        _ => None,
                    }
                });
            edges.insert(match reacting {
                Some(s) => ((topic, service_node(Some(&s))), false),
                None => ((service_node(e.source.as_deref()), topic), false),
            });
        }
        // A flow counts once per edge.
        for (edge, stalled) in edges {
            let counts = out.entry(edge).or_default();
            if stalled {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }
    Ok(out)
}

/// The pattern of a search cursor in the API: `TIME_US:ID`, the time and id of the last event of
/// the page before.
pub const CURSOR_PATTERN: &str = "^-?[0-9]{1,19}:";

/// Encodes a keyset cursor: `TIME_US:ID` ([`CURSOR_PATTERN`]).
pub fn encode_cursor(time_us: i64, id: &str) -> String {
    format!("{time_us}:{id}")
}

/// Decodes a cursor made by [`encode_cursor`]: every string of [`CURSOR_PATTERN`] is one (a time
/// beyond the range of µs since the epoch is taken as the end of that range).
pub fn decode_cursor(cursor: &str) -> Result<(i64, String), QueryError> {
    let bad =
        || QueryError::BadParameter(format!("`{cursor}` is not a cursor returned by this API"));
    let (time, id) = cursor.split_once(':').ok_or_else(bad)?;
    let digits = time.strip_prefix('-').unwrap_or(time);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let time = time.parse::<i64>().unwrap_or(if time.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    });
    Ok((time, id.to_owned()))
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
    health: &HealthHandle,
    groups: &GroupsHandle,
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
    let mut node = |kind: MapNodeKind, name: &str| {
        let id = format!("{}:{name}", kind.as_str());
        nodes.entry(id.clone()).or_insert_with(|| MapNode {
            id: id.clone(),
            kind,
            name: name.into(),
        });
        id
    };
    let mut edges = Vec::new();
    for p in &produced {
        let service = node(
            MapNodeKind::Service,
            p.source.as_deref().unwrap_or(UNKNOWN_SERVICE),
        );
        let topic = node(MapNodeKind::Topic, &p.topic);
        edges.push(MapEdge {
            from: service,
            to: topic,
            kind: MapEdgeKind::Produce,
            count: p.events,
            latency_p50_ms: None,
            latency_p95_ms: None,
            stalled: 0,
            failed: 0,
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
        let from = node(MapNodeKind::Topic, &topic);
        let to = node(MapNodeKind::Service, &service);
        edges.push(MapEdge {
            from,
            to,
            kind: MapEdgeKind::Consume,
            count: latencies.len() as i64,
            latency_p50_ms: percentile(&latencies, 0.50),
            latency_p95_ms: percentile(&latencies, 0.95),
            stalled: 0,
            failed: 0,
        });
    }
    // Consume edges known only from consumer spans (services that declare no causation): their
    // handlings counted, without hop times.
    for c in store.consumer_span_counts(from_us, to_us).await? {
        let service = c.service.unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
        let (from, to) = (
            node(MapNodeKind::Topic, &c.topic),
            node(MapNodeKind::Service, &service),
        );
        if edges
            .iter()
            .any(|e| e.kind == MapEdgeKind::Consume && e.from == from && e.to == to)
        {
            continue;
        }
        edges.push(MapEdge {
            from,
            to,
            kind: MapEdgeKind::Consume,
            count: c.handlings,
            latency_p50_ms: None,
            latency_p95_ms: None,
            stalled: 0,
            failed: 0,
        });
    }
    for (edge, (stalled, failed)) in stopped_on_edges(store, health, groups, from_us, to_us).await?
    {
        let at = match edges
            .iter()
            .position(|e| (e.from.as_str(), e.to.as_str()) == (edge.0.as_str(), edge.1.as_str()))
        {
            Some(at) => at,
            None => {
                // A reaction expected but never seen in the range: the edge it should take.
                for id in [&edge.0, &edge.1] {
                    let (kind, name) = id.split_once(':').unwrap_or(("service", id));
                    let kind = if kind == "topic" {
                        MapNodeKind::Topic
                    } else {
                        MapNodeKind::Service
                    };
                    node(kind, name);
                }
                edges.push(MapEdge {
                    from: edge.0.clone(),
                    to: edge.1.clone(),
                    kind: MapEdgeKind::Consume,
                    count: 0,
                    latency_p50_ms: None,
                    latency_p95_ms: None,
                    stalled: 0,
                    failed: 0,
                });
                edges.len() - 1
            }
        };
        edges[at].stalled += stalled;
        edges[at].failed += failed;
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
    fn a_cursor_round_trips() {
        let c = encode_cursor(1_700_000_000_000_123, "0190-abc:def");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (1_700_000_000_000_123, "0190-abc:def".to_owned())
        );
    }

    #[test]
    fn a_cursor_outside_its_pattern_is_a_bad_parameter() {
        for bad in [
            "garbage!",
            "12345",
            ":id",
            "-:id",
            "+5:id",
            "1a:id",
            "12345678901234567890:id",
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(QueryError::BadParameter(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_cursor_of_the_pattern_is_read_and_huge_times_saturate() {
        let pattern = regex::Regex::new(CURSOR_PATTERN).unwrap();
        for (cursor, time) in [
            ("9999999999999999999:x", i64::MAX),
            ("-9999999999999999999:", i64::MIN),
            ("0:", 0),
        ] {
            assert!(pattern.is_match(cursor), "{cursor}");
            assert_eq!(decode_cursor(cursor).unwrap().0, time, "{cursor}");
        }
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
    fn trace_ids_must_have_the_w3c_shape() {
        let pattern = regex::Regex::new(TRACE_ID_PATTERN).unwrap();
        for good in [
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00000000000000000000000000000000",
        ] {
            assert!(check_trace_id(good).is_ok(), "{good}");
            assert!(pattern.is_match(good), "{good}");
        }
        for bad in [
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            "abc",
            "4bf92f3577b34da6a3ce929d0e0e47360",
        ] {
            assert!(
                matches!(check_trace_id(bad), Err(QueryError::Unusable(_))),
                "{bad}"
            );
            assert!(!pattern.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn only_the_all_zero_trace_id_is_invalid() {
        assert!(is_invalid_trace_id("00000000000000000000000000000000"));
        assert!(!is_invalid_trace_id("00000000000000000000000000000001"));
    }

    mod event_flags {
        use super::*;
        use crate::record::{EventRecord, Interpreter, RawRecord};
        use crate::rules::Rules;
        use choreoscope_sdk::RecordHeaders;

        /// An event of flow `f` from `source`, at `offset` of topic `t` (and that many ms).
        fn record(id: &str, cause: Option<&str>, source: &str, offset: i64) -> EventRecord {
            let mut h = RecordHeaders::new();
            h.set("ce_id", id);
            h.set("ce_type", "Happened");
            h.set("ce_source", source);
            h.set("ce_correlationid", "f");
            if let Some(c) = cause {
                h.set("ce_causationid", c);
            }
            Interpreter::new(Rules::default(), 1024).interpret(
                RawRecord {
                    topic: "t",
                    partition: 0,
                    offset,
                    key: None,
                    payload: Some(b"{}"),
                    headers: &h,
                    timestamp_ms: Some(1_000 + offset),
                },
                0,
            )
        }

        async fn store_of(records: &[EventRecord]) -> (Store, tempfile::TempDir) {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("flags.db").display());
            let store = Store::connect(&url).await.unwrap();
            store.write_batch(records).await.unwrap();
            (store, dir)
        }

        async fn flags(store: &Store, id: &str) -> Vec<Flag> {
            event_detail(store, &GroupsHandle::default(), id, &Limits::default())
                .await
                .unwrap()
                .flags
        }

        #[tokio::test]
        async fn a_republished_event_is_flagged_duplicate_publish() {
            let (store, _dir) = store_of(&[
                record("f", None, "shop", 0),
                record("b", Some("f"), "order", 1),
                record("b", Some("f"), "order", 2),
            ])
            .await;
            let detail = event_detail(&store, &GroupsHandle::default(), "b", &Limits::default())
                .await
                .unwrap();
            assert_eq!(detail.deliveries.len(), 2);
            assert_eq!(detail.flags, [Flag::DuplicatePublish, Flag::End]);
        }

        #[tokio::test]
        async fn an_event_naming_no_cause_is_flagged_root() {
            let (store, _dir) = store_of(&[
                record("f", None, "shop", 0),
                record("b", Some("f"), "order", 1),
            ])
            .await;
            assert_eq!(flags(&store, "f").await, [Flag::Root]);
        }

        #[tokio::test]
        async fn an_event_whose_cause_is_not_stored_is_flagged_cause_missing() {
            let (store, _dir) = store_of(&[
                record("f", None, "shop", 0),
                record("c", Some("ghost"), "order", 1),
            ])
            .await;
            assert_eq!(flags(&store, "c").await, [Flag::CauseMissing, Flag::End]);
        }

        #[tokio::test]
        async fn each_event_carries_the_flags_of_its_node_in_its_flow_graph() {
            let (store, _dir) = store_of(&[
                record("f", None, "shop", 0),
                record("p", Some("f"), "payment", 1),
                record("i1", Some("p"), "inventory", 2),
                record("i2", Some("p"), "inventory", 3),
                record("e", Some("p"), "mail", 4),
                record("e", Some("p"), "mail", 5),
            ])
            .await;
            let flow = correlation_answer(
                &store,
                &HealthHandle::default(),
                &GroupsHandle::default(),
                "f",
                &Limits::default(),
            )
            .await
            .unwrap();
            assert_eq!(flow.graph.nodes.len(), 5);
            for node in &flow.graph.nodes {
                assert_eq!(flags(&store, &node.id).await, node.flags, "{}", node.id);
            }
            let i2 = flow.graph.nodes.iter().find(|n| n.id == "i2").unwrap();
            assert!(i2.flags.contains(&Flag::DuplicateReaction));
        }
    }
}
