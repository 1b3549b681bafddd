//! The causal graph of a *set* of events — a correlation, a trace, everything about a business
//! key — with the same edge rules as [`crate::lineage`]:
//! 1. **declared**: an event's causation id names another event of the set;
//! 2. **through spans** ([`crate::handling`], resolved by the caller and passed in): an event
//!    with no causation id produced under a consumer span is a reaction to the record that span
//!    processed (one edge per record, for a batch);
//! 3. **same span**: an event with no causation id and no cause through spans shares its
//!    `(trace, span)` with an earlier event of the set, the earliest of which is taken as its
//!    cause.
//!
//! On top of the edges it marks what a reader of a flow looks for: causes never seen, duplicate
//! publishes, reactions processed twice, problems, edges that close a cycle (Tarjan's strongly
//! connected components from `petgraph`), and the flow's current ends — events nothing has
//! reacted to (yet).

use std::collections::{BTreeSet, HashMap, HashSet};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::handling::SpanCause;
use crate::lineage::{base_flags, Edge, Flag, Lineage, Node, Rule};
use crate::store::SummaryRow;

/// Builds the graph of `events` (any order, duplicates ignored). `stored_causes` are the ids,
/// among the causes named but not in the set, that the store does hold: the others are marked
/// [`Flag::CauseMissing`]. `span_causes` are the edges found through spans
/// ([`crate::handling::causes`]); those between events of the set are drawn.
pub fn graph_of(
    mut events: Vec<SummaryRow>,
    stored_causes: &HashSet<String>,
    span_causes: &[SpanCause],
) -> Lineage {
    events.sort_by(|a, b| (a.time_us, &a.event_id).cmp(&(b.time_us, &b.event_id)));
    events.dedup_by(|a, b| a.event_id == b.event_id);
    let index: HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_id.as_str(), i))
        .collect();

    // (cause, reaction, rule)
    let mut links: Vec<(usize, usize, Rule)> = Vec::new();
    // Reactions with a cause through spans (in the set or not): the same-span rule is not theirs.
    let mut caused_through_spans: HashSet<&str> = HashSet::new();
    for c in span_causes {
        caused_through_spans.insert(c.reaction.as_str());
        if let (Some(&from), Some(&to)) =
            (index.get(c.cause.as_str()), index.get(c.reaction.as_str()))
        {
            if from != to {
                links.push((from, to, c.rule));
            }
        }
    }
    let mut missing: HashSet<usize> = HashSet::new();
    let mut first_of_span: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if let (Some(trace), Some(span)) = (e.trace_id.as_deref(), e.span_id.as_deref()) {
            // Events are in time order: the first seen is the earliest of its span.
            let first = *first_of_span.entry((trace, span)).or_insert(i);
            if first != i
                && e.causation_id.is_none()
                && !caused_through_spans.contains(e.event_id.as_str())
            {
                links.push((first, i, Rule::SameSpan));
            }
        }
        if let Some(cause) = e.causation_id.as_deref() {
            match index.get(cause) {
                Some(&c) => links.push((c, i, Rule::Causation)),
                None if stored_causes.contains(cause) => {}
                None => {
                    missing.insert(i);
                }
            }
        }
    }

    let mut graph = DiGraph::<usize, ()>::with_capacity(events.len(), links.len());
    let nodes: Vec<NodeIndex> = (0..events.len()).map(|i| graph.add_node(i)).collect();
    for &(from, to, _) in &links {
        graph.add_edge(nodes[from], nodes[to], ());
    }
    let mut component = vec![usize::MAX; events.len()];
    let mut cyclic = HashSet::new();
    for (c, scc) in petgraph::algo::tarjan_scc(&graph).into_iter().enumerate() {
        for n in &scc {
            component[graph[*n]] = c;
        }
        let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
        if scc.len() > 1 || self_loop {
            cyclic.insert(c);
        }
    }

    let mut has_reaction = vec![false; events.len()];
    let mut edges = Vec::with_capacity(links.len());
    let mut seen = HashSet::new();
    for &(from, to, rule) in &links {
        if !seen.insert((from, to)) {
            continue;
        }
        has_reaction[from] = true;
        // Inside a cycle, the edge that goes back in (time, id) order is the one that closes it.
        let cycle =
            component[from] == component[to] && cyclic.contains(&component[from]) && to <= from;
        edges.push(Edge {
            from: events[from].event_id.clone(),
            to: events[to].event_id.clone(),
            latency_us: events[to].time_us - events[from].time_us,
            inferred: rule.inferred(),
            rule,
            cycle,
        });
    }

    // Reactions of one service to one cause with one type, beyond the first (time order).
    let mut reactions_seen: HashSet<(usize, Option<&str>, Option<&str>)> = HashSet::new();
    let mut duplicate_reaction: HashSet<usize> = HashSet::new();
    let mut declared: Vec<(usize, usize)> = links
        .iter()
        .filter(|l| l.2 == Rule::Causation)
        .map(|l| (l.0, l.1))
        .collect();
    declared.sort_unstable_by_key(|&(_, to)| to);
    for (from, to) in declared {
        let e = &events[to];
        if !reactions_seen.insert((from, e.event_type.as_deref(), e.source.as_deref())) {
            duplicate_reaction.insert(to);
        }
    }

    let nodes = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let mut flags: BTreeSet<Flag> = base_flags(&event);
            if missing.contains(&i) {
                flags.insert(Flag::CauseMissing);
            }
            if cyclic.contains(&component[i]) {
                flags.insert(Flag::Cycle);
            }
            if !has_reaction[i] {
                flags.insert(Flag::End);
            }
            if duplicate_reaction.contains(&i) {
                flags.insert(Flag::DuplicateReaction);
            }
            Node {
                event,
                depth: 0,
                flags,
            }
        })
        .collect();
    Lineage {
        nodes,
        edges,
        truncated: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, t: i64, cause: Option<&str>) -> SummaryRow {
        SummaryRow {
            event_id: id.into(),
            event_type: Some(format!("{id}Happened")),
            source: Some("svc".into()),
            topic: "t".into(),
            kafka_partition: 0,
            kafka_offset: t,
            time_us: t,
            causation_id: cause.map(Into::into),
            correlation_id: Some("a".into()),
            trace_id: None,
            span_id: None,
            subject: None,
            problem_count: 0,
            delivery_count: 1,
        }
    }

    fn flags(g: &Lineage, id: &str) -> Vec<Flag> {
        g.nodes
            .iter()
            .find(|n| n.event.event_id == id)
            .unwrap()
            .flags
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn fan_out_and_fan_in_link_every_declared_cause_whatever_the_input_order() {
        let g = graph_of(
            vec![
                event("d", 4, Some("b")),
                event("b", 2, Some("a")),
                event("a", 1, None),
                event("c", 3, Some("a")),
            ],
            &HashSet::new(),
            &[],
        );
        let ids: Vec<&str> = g.nodes.iter().map(|n| n.event.event_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"], "time order");
        let edges: Vec<(&str, &str, i64)> = g
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.latency_us))
            .collect();
        assert_eq!(edges, [("a", "b", 1), ("a", "c", 2), ("b", "d", 2)]);
        assert_eq!(flags(&g, "a"), [Flag::Root]);
        assert_eq!(flags(&g, "c"), [Flag::End]);
        assert_eq!(flags(&g, "d"), [Flag::End]);
    }

    #[test]
    fn a_second_reaction_of_one_service_to_one_cause_is_flagged() {
        let mut first = event("r1", 2, Some("c"));
        let mut again = event("r2", 3, Some("c"));
        let mut other = event("r3", 4, Some("c"));
        first.event_type = Some("StockReserved".into());
        again.event_type = Some("StockReserved".into());
        other.event_type = Some("EmailSent".into());
        let g = graph_of(
            vec![event("c", 1, None), again, first, other],
            &HashSet::new(),
            &[],
        );
        assert!(!flags(&g, "r1").contains(&Flag::DuplicateReaction));
        assert!(flags(&g, "r2").contains(&Flag::DuplicateReaction));
        assert!(!flags(&g, "r3").contains(&Flag::DuplicateReaction));
    }

    #[test]
    fn a_cause_outside_the_set_is_missing_only_when_the_store_lacks_it() {
        let stored: HashSet<String> = ["elsewhere".to_owned()].into();
        let g = graph_of(
            vec![
                event("x", 1, Some("elsewhere")),
                event("y", 2, Some("never")),
            ],
            &stored,
            &[],
        );
        assert_eq!(flags(&g, "x"), [Flag::End]);
        assert_eq!(flags(&g, "y"), [Flag::CauseMissing, Flag::End]);
        assert!(g.edges.is_empty());
    }

    #[test]
    fn a_cycle_is_marked_and_the_edge_back_in_time_closes_it() {
        let g = graph_of(
            vec![event("p", 1, Some("q")), event("q", 2, Some("p"))],
            &HashSet::new(),
            &[],
        );
        assert_eq!(g.edges.len(), 2);
        let closing: Vec<(&str, &str)> = g
            .edges
            .iter()
            .filter(|e| e.cycle)
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        assert_eq!(closing, [("q", "p")]);
        assert!(flags(&g, "p").contains(&Flag::Cycle) && flags(&g, "q").contains(&Flag::Cycle));
    }

    #[test]
    fn a_copied_traceparent_without_causation_links_to_the_earliest_event_of_its_span() {
        let mut cause = event("cause", 1, None);
        let mut legacy = event("legacy", 5, None);
        for e in [&mut cause, &mut legacy] {
            e.trace_id = Some("t1".into());
            e.span_id = Some("s1".into());
        }
        let g = graph_of(vec![legacy, cause], &HashSet::new(), &[]);
        assert_eq!(g.edges.len(), 1);
        assert!(g.edges[0].inferred && g.edges[0].from == "cause" && g.edges[0].to == "legacy");
    }
}
