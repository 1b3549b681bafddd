//! Causal graph walks over the store.
//!
//! Edges are resolved at query time from each event's causation id, so arrival order never
//! matters. Rules, in priority order (documented in `docs/lineage.md`):
//! 1. **Declared**: `ce_causationid` (or an alias) names the cause.
//! 2. **Inferred**: an event with no causation id whose `traceparent` names the same span as an
//!    earlier event was produced by a service that propagated that event's context unchanged; the
//!    earliest event of that span is taken as its cause, and the edge is marked `inferred`.
//!
//! 3. **Through spans** ([`crate::handling`]): an event with no causation id produced under a
//!    consumer span is a reaction to the record that span processed (`span_message`,
//!    `span_link`, `span_parent`); these come before the span rule of 2.
//!
//! Walks are breadth-first with a visited set, so a causation cycle terminates; the edge that
//! closes a cycle is marked `cycle`.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{Store, StoreError, SummaryRow};

/// Which way to walk from the start event (`up`, `down` or `both` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Causes, their causes, …
    Up,
    /// Reactions, their reactions, …
    Down,
    /// Both.
    Both,
}

pub use crate::edge_rule::Rule;

/// A mark on a node: `cause_missing`, `duplicate_publish`, `problems`, `cycle`, `root`,
/// `duplicate_reaction`, `end`, `dead_lettered` or `handler_failed` in the API (docs/api.md, "Graph shape").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The event names a cause that is not in the store (not seen, or not yet).
    CauseMissing,
    /// The same event id was published at more than one offset.
    DuplicatePublish,
    /// Something in the record could not be interpreted.
    Problems,
    /// The event is on a causation cycle.
    Cycle,
    /// The event names no cause: it starts a flow.
    Root,
    /// The same service reacted to the same cause more than once with the same type: the
    /// earliest such reaction is normal, the later ones are flagged (a consumer that processed a
    /// message twice). Set on flow graphs.
    DuplicateReaction,
    /// Nothing has reacted to the event (yet): where its flow currently ends. Set on flow graphs
    /// (key, trace, correlation), not on depth-limited lineage walks.
    End,
    /// The event was copied to a dead-letter topic: a consumer gave up on it, and its flow
    /// failed. Set on flow graphs and the event answer.
    DeadLettered,
    /// A service's handling of the event failed (its OpenTelemetry spans say so, and no later
    /// handling by that service succeeded): its flow failed. Set on flow graphs and the event
    /// answer.
    HandlerFailed,
}

impl Flag {
    /// The flag's name in the API (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::CauseMissing => "cause_missing",
            Flag::DuplicatePublish => "duplicate_publish",
            Flag::Problems => "problems",
            Flag::Cycle => "cycle",
            Flag::Root => "root",
            Flag::DuplicateReaction => "duplicate_reaction",
            Flag::End => "end",
            Flag::DeadLettered => "dead_lettered",
            Flag::HandlerFailed => "handler_failed",
        }
    }
}

/// An event in a lineage graph.
#[derive(Debug, Clone)]
pub struct Node {
    /// The event.
    pub event: SummaryRow,
    /// Hops from the start event (negative: ancestors).
    pub depth: i32,
    /// Marks.
    pub flags: BTreeSet<Flag>,
}

/// A cause → reaction edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The cause's id.
    pub from: String,
    /// The reaction's id.
    pub to: String,
    /// Reaction time minus cause time, µs (negative under clock skew).
    pub latency_us: i64,
    /// Found by a rule rather than declared.
    pub inferred: bool,
    /// The rule that found it.
    pub rule: Rule,
    /// This edge closes a cycle.
    pub cycle: bool,
}

/// A lineage graph around one event.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    /// Nodes, start event first.
    pub nodes: Vec<Node>,
    /// Edges.
    pub edges: Vec<Edge>,
    /// Why the walk stopped early, if it did (node limit).
    pub truncated: Option<String>,
}

/// The flags an event carries on its own, wherever it appears.
pub(crate) fn base_flags(e: &SummaryRow) -> BTreeSet<Flag> {
    let mut flags = BTreeSet::new();
    if e.delivery_count > 1 {
        flags.insert(Flag::DuplicatePublish);
    }
    if e.problem_count > 0 {
        flags.insert(Flag::Problems);
    }
    if e.causation_id.is_none() {
        flags.insert(Flag::Root);
    }
    flags
}

struct Walk<'s> {
    store: &'s Store,
    max_nodes: usize,
    index: HashMap<String, usize>,
    graph: Lineage,
    edges: HashSet<(String, String)>,
}

impl Walk<'_> {
    fn add_node(&mut self, event: SummaryRow, depth: i32) -> bool {
        if self.index.contains_key(&event.event_id) {
            return false;
        }
        if self.graph.nodes.len() >= self.max_nodes {
            self.graph.truncated = Some(format!("node limit of {} reached", self.max_nodes));
            return false;
        }
        self.index
            .insert(event.event_id.clone(), self.graph.nodes.len());
        let flags = base_flags(&event);
        self.graph.nodes.push(Node {
            event,
            depth,
            flags,
        });
        true
    }

    fn time(&self, id: &str) -> i64 {
        self.index
            .get(id)
            .map_or(0, |&i| self.graph.nodes[i].event.time_us)
    }

    /// Adds `from → to`, both already nodes; `closes_cycle` marks the edge that closes a cycle.
    fn add_edge(&mut self, from: &str, to: &str, rule: Rule, closes_cycle: bool) {
        if !self.edges.insert((from.to_owned(), to.to_owned())) {
            return;
        }
        if closes_cycle {
            for id in [from, to] {
                if let Some(&i) = self.index.get(id) {
                    self.graph.nodes[i].flags.insert(Flag::Cycle);
                }
            }
        }
        self.graph.edges.push(Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            latency_us: self.time(to) - self.time(from),
            inferred: rule.inferred(),
            rule,
            cycle: closes_cycle,
        });
    }

    /// The earliest other event of `e`'s span, when `e` names no cause: its inferred cause.
    async fn inferred_parent(&self, e: &SummaryRow) -> Result<Option<SummaryRow>, StoreError> {
        let (None, Some(trace), Some(span)) = (&e.causation_id, &e.trace_id, &e.span_id) else {
            return Ok(None);
        };
        let same = self.store.same_span(trace, span).await?;
        Ok(same
            .into_iter()
            .next()
            .filter(|first| first.event_id != e.event_id && first.time_us <= e.time_us))
    }

    async fn up(&mut self, depth: u32) -> Result<(), StoreError> {
        let mut frontier = vec![0usize];
        for level in 1..=depth as i32 {
            let mut next = Vec::new();
            let wanted: Vec<String> = frontier
                .iter()
                .filter_map(|&i| self.graph.nodes[i].event.causation_id.clone())
                .filter(|c| !self.index.contains_key(c))
                .collect();
            let found: HashMap<String, SummaryRow> = self
                .store
                .summaries(&wanted)
                .await?
                .into_iter()
                .map(|s| (s.event_id.clone(), s))
                .collect();
            // Causes through spans of the frontier's events that name none: one walk per level.
            let nameless: Vec<SummaryRow> = frontier
                .iter()
                .map(|&i| self.graph.nodes[i].event.clone())
                .filter(|e| e.causation_id.is_none())
                .collect();
            let span_causes = crate::handling::causes(self.store, &nameless).await?;
            let cause_ids: Vec<String> = span_causes
                .iter()
                .map(|c| c.cause.clone())
                .filter(|c| !self.index.contains_key(c))
                .collect();
            let span_found: HashMap<String, SummaryRow> = self
                .store
                .summaries(&cause_ids)
                .await?
                .into_iter()
                .map(|s| (s.event_id.clone(), s))
                .collect();
            for &i in &frontier {
                let child = self.graph.nodes[i].event.clone();
                let known = |id: &str| {
                    found
                        .get(id)
                        .or_else(|| span_found.get(id))
                        .cloned()
                        .or_else(|| {
                            self.index
                                .get(id)
                                .map(|&j| self.graph.nodes[j].event.clone())
                        })
                };
                let parents: Vec<(SummaryRow, Rule)> = match &child.causation_id {
                    Some(cause) => match known(cause) {
                        Some(p) => vec![(p, Rule::Causation)],
                        None => {
                            self.graph.nodes[i].flags.insert(Flag::CauseMissing);
                            continue;
                        }
                    },
                    None => {
                        let through_spans: Vec<(SummaryRow, Rule)> = span_causes
                            .iter()
                            .filter(|c| c.reaction == child.event_id)
                            .filter_map(|c| Some((known(&c.cause)?, c.rule)))
                            .collect();
                        if through_spans.is_empty() {
                            match self.inferred_parent(&child).await? {
                                Some(p) => vec![(p, Rule::SameSpan)],
                                None => continue,
                            }
                        } else {
                            through_spans
                        }
                    }
                };
                for (parent, rule) in parents {
                    let parent_id = parent.event_id.clone();
                    let fresh = self.add_node(parent, -level);
                    if fresh {
                        next.push(self.index[&parent_id]);
                    }
                    if self.index.contains_key(&parent_id) {
                        self.add_edge(&parent_id, &child.event_id, rule, !fresh);
                    }
                }
            }
            if next.is_empty() || self.graph.truncated.is_some() {
                break;
            }
            frontier = next;
        }
        Ok(())
    }

    async fn down(&mut self, depth: u32) -> Result<(), StoreError> {
        let mut frontier = vec![0usize];
        for level in 1..=depth as i32 {
            let ids: Vec<String> = frontier
                .iter()
                .map(|&i| self.graph.nodes[i].event.event_id.clone())
                .collect();
            let mut reactions: Vec<(SummaryRow, String, Rule)> = self
                .store
                .children(&ids)
                .await?
                .into_iter()
                .map(|c| {
                    let cause = c.causation_id.clone().unwrap_or_default();
                    (c, cause, Rule::Causation)
                })
                .collect();
            // Reactions through spans: what the frontier's handlings produced.
            let frontier_events: Vec<SummaryRow> = frontier
                .iter()
                .map(|&i| self.graph.nodes[i].event.clone())
                .collect();
            // Events of the frontier caused through spans: the same-span rule is not theirs (nor
            // their span's other events', which have the same cause).
            let caused: HashSet<String> = crate::handling::causes(self.store, &frontier_events)
                .await?
                .into_iter()
                .map(|c| c.reaction)
                .collect();
            let mut through_spans: HashSet<String> = HashSet::new();
            for (edge, reaction) in crate::handling::reactions(self.store, &frontier_events).await?
            {
                through_spans.insert(reaction.event_id.clone());
                reactions.push((reaction, edge.cause, edge.rule));
            }
            // Events without a causation id sharing a frontier event's span: one query per level.
            let spans: Vec<(String, String)> = frontier
                .iter()
                .filter_map(|&i| {
                    let e = &self.graph.nodes[i].event;
                    Some((e.trace_id.clone()?, e.span_id.clone()?))
                })
                .collect();
            let mut by_span: HashMap<(String, String), Vec<SummaryRow>> = HashMap::new();
            for s in self.store.same_spans(&spans).await? {
                if let (Some(t), Some(sp)) = (s.trace_id.clone(), s.span_id.clone()) {
                    by_span.entry((t, sp)).or_default().push(s);
                }
            }
            for &i in &frontier {
                let e = &self.graph.nodes[i].event;
                let (Some(trace), Some(span)) = (&e.trace_id, &e.span_id) else {
                    continue;
                };
                let Some(same) = by_span.get(&(trace.clone(), span.clone())) else {
                    continue;
                };
                if same
                    .first()
                    .is_some_and(|first| first.event_id == e.event_id)
                    && !caused.contains(&e.event_id)
                {
                    let cause = e.event_id.clone();
                    reactions.extend(
                        same.iter()
                            .skip(1)
                            .filter(|s| s.causation_id.is_none())
                            .filter(|s| !through_spans.contains(&s.event_id))
                            .map(|s| (s.clone(), cause.clone(), Rule::SameSpan)),
                    );
                }
            }
            reactions
                .sort_by(|a, b| (a.0.time_us, &a.0.event_id).cmp(&(b.0.time_us, &b.0.event_id)));
            let mut next = Vec::new();
            for (reaction, cause, rule) in reactions {
                let id = reaction.event_id.clone();
                let fresh = self.add_node(reaction, level);
                if fresh {
                    next.push(self.index[&id]);
                }
                if self.index.contains_key(&id) {
                    let closes = !fresh
                        && self.graph.nodes[self.index[&id]].depth
                            <= self.graph.nodes[self.index[&cause]].depth;
                    self.add_edge(&cause, &id, rule, closes);
                }
            }
            if next.is_empty() || self.graph.truncated.is_some() {
                break;
            }
            frontier = next;
        }
        Ok(())
    }
}

/// The lineage of event `id` up to `depth` hops each way and at most `max_nodes` nodes, or `None`
/// when the event is not stored.
pub async fn lineage(
    store: &Store,
    id: &str,
    direction: Direction,
    depth: u32,
    max_nodes: usize,
) -> Result<Option<Lineage>, StoreError> {
    let Some(start) = store.summaries(&[id.to_owned()]).await?.into_iter().next() else {
        return Ok(None);
    };
    let mut walk = Walk {
        store,
        max_nodes: max_nodes.max(1),
        index: HashMap::new(),
        graph: Lineage::default(),
        edges: HashSet::new(),
    };
    walk.add_node(start, 0);
    if matches!(direction, Direction::Up | Direction::Both) {
        walk.up(depth).await?;
    }
    if matches!(direction, Direction::Down | Direction::Both) {
        walk.down(depth).await?;
    }
    Ok(Some(walk.graph))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_is_named_as_serde_writes_it() {
        for flag in [
            Flag::CauseMissing,
            Flag::DuplicatePublish,
            Flag::Problems,
            Flag::Cycle,
            Flag::Root,
            Flag::DuplicateReaction,
            Flag::End,
            Flag::DeadLettered,
            Flag::HandlerFailed,
        ] {
            assert_eq!(
                serde_json::to_value(flag).unwrap(),
                serde_json::Value::from(flag.as_str())
            );
        }
    }

    #[test]
    fn directions_are_read_in_lower_case_only() {
        let read = |s: &str| serde_json::from_value::<Direction>(serde_json::Value::from(s)).ok();
        assert_eq!(read("up"), Some(Direction::Up));
        assert_eq!(read("down"), Some(Direction::Down));
        assert_eq!(read("both"), Some(Direction::Both));
        assert_eq!(read("Up"), None);
        assert_eq!(read(""), None);
    }
}
