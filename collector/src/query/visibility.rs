//! What one asker may see of an answer ([`Sight`]): payloads and header values or not, and which
//! topics' events in full. An event of a topic outside the asker's patterns stays in graphs as
//! an opaque node (its id, time, position and flags, no type, service, topic or subject), so a
//! flow that crosses another team's topics stays connected; its detail is refused.
//!
//! The answers are computed whole and then veiled here, so every interface that applies a
//! [`Sight`] hides the same fields.

use super::model::{EventDetail, EventSummary, Flow, FlowAnswer, Graph, KeyAnswer, SearchPage};
use super::model::{MapEdge, MapNode, MapNodeKind, Topology};
use std::collections::{HashMap, HashSet};

/// The topic an opaque event shows instead of its own.
pub const HIDDEN_TOPIC: &str = "";

/// Topic patterns: names with `*` matching any run of characters (`orders.*`, `*-dlq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPatterns(Vec<String>);

impl TopicPatterns {
    /// Patterns as written in the config.
    pub fn new(patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(patterns.into_iter().map(Into::into).collect())
    }

    /// The patterns as written.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether `topic` matches one of the patterns.
    pub fn matches(&self, topic: &str) -> bool {
        self.0
            .iter()
            .any(|p| glob_matches(p.as_bytes(), topic.as_bytes()))
    }
}

/// `*` matches any run of bytes; everything else matches itself.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob_matches(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob_matches(rest, &text[1..]),
    }
}

/// What one asker may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sight {
    /// Payloads, header values and record keys are shown.
    pub payloads: bool,
    /// Only these topics' events are shown in full; `None`: every topic.
    pub topics: Option<TopicPatterns>,
}

/// Why an answer is refused to this asker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event `{0}` is in a topic your role does not cover")]
pub struct Hidden(pub String);

impl Sight {
    /// Sees everything (no login, or an admin).
    pub fn everything() -> Self {
        Self {
            payloads: true,
            topics: None,
        }
    }

    /// Whether events of `topic` are shown in full.
    pub fn sees_topic(&self, topic: &str) -> bool {
        self.topics.as_ref().is_none_or(|p| p.matches(topic))
    }

    /// Hides what this asker may not see of one event's detail; refuses an event of a topic
    /// outside the asker's patterns.
    pub fn event_detail(&self, detail: &mut EventDetail) -> Result<(), Hidden> {
        if !self.sees_topic(&detail.topic) {
            return Err(Hidden(detail.id.clone()));
        }
        if !self.payloads {
            let mut withheld = Vec::new();
            if detail.payload.take().is_some() {
                withheld.push("payload");
            }
            if detail.key.take().is_some() {
                withheld.push("record key");
            }
            let mut headers = false;
            for header in &mut detail.headers {
                headers |= header.value.take().is_some();
            }
            if headers {
                withheld.push("header values");
            }
            if !withheld.is_empty() {
                detail.withheld = Some(format!(
                    "{} not shown to your role (viewer)",
                    withheld.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Makes an event summary opaque when its topic is not covered.
    pub fn summary(&self, event: &mut EventSummary) -> bool {
        if self.sees_topic(&event.topic) {
            return false;
        }
        event.event_type = None;
        event.source = None;
        event.subject = None;
        event.topic = HIDDEN_TOPIC.to_owned();
        event.partition = 0;
        event.offset = 0;
        event.opaque = true;
        true
    }

    /// Veils the graph's nodes; returns the ids made opaque.
    pub fn graph(&self, graph: &mut Graph) -> HashSet<String> {
        let mut hidden = HashSet::new();
        for node in &mut graph.nodes {
            if self.summary(node) {
                hidden.insert(node.id.clone());
            }
        }
        hidden
    }

    /// The services of the events this asker sees in full, read before [`Sight::graph`].
    fn services_seen(&self, graph: &Graph) -> HashSet<String> {
        graph
            .nodes
            .iter()
            .filter(|n| self.sees_topic(&n.topic))
            .filter_map(|n| n.source.clone())
            .collect()
    }

    /// Veils a flow's ends and hops that touch `hidden` events, and keeps only the services
    /// `seen` in its events.
    fn flow(hidden: &HashSet<String>, seen: &HashSet<String>, flow: &mut Flow) {
        flow.services.retain(|s| seen.contains(s));
        for end in &mut flow.ends {
            if hidden.contains(&end.id) {
                end.event_type = None;
                end.source = None;
                end.topic = HIDDEN_TOPIC.to_owned();
            }
        }
        for hop in &mut flow.hops {
            if hidden.contains(&hop.from) {
                hop.from_type = None;
                hop.from_service = None;
            }
            if hidden.contains(&hop.to) {
                hop.to_type = None;
                hop.to_service = None;
            }
        }
    }

    /// Veils a key's answer: its graph and its flows.
    pub fn key_answer(&self, answer: &mut KeyAnswer) {
        if self.topics.is_none() {
            return;
        }
        let seen = self.services_seen(&answer.graph);
        let hidden = self.graph(&mut answer.graph);
        answer.services.retain(|s| seen.contains(s));
        for flow in &mut answer.flows {
            Self::flow(&hidden, &seen, flow);
        }
    }

    /// Veils a trace's or a correlation's answer.
    pub fn flow_answer(&self, answer: &mut FlowAnswer) {
        if self.topics.is_none() {
            return;
        }
        let seen = self.services_seen(&answer.graph);
        let hidden = self.graph(&mut answer.graph);
        Self::flow(&hidden, &seen, &mut answer.flow);
    }

    /// Veils a search page (opaque rows keep their place, so cursors still work).
    pub fn search_page(&self, page: &mut SearchPage) {
        for event in &mut page.events {
            self.summary(event);
        }
    }

    /// Merges the topics outside the asker's patterns into one `topic:(other topics)` node.
    pub fn topology(&self, map: &mut Topology) {
        if self.topics.is_none() {
            return;
        }
        let other = MapNode {
            id: "topic:(other topics)".to_owned(),
            kind: MapNodeKind::Topic,
            name: "(other topics)".to_owned(),
        };
        let mut renamed: HashMap<String, String> = HashMap::new();
        map.nodes.retain(|node| {
            let hide = node.kind == MapNodeKind::Topic && !self.sees_topic(&node.name);
            if hide {
                renamed.insert(node.id.clone(), other.id.clone());
            }
            !hide
        });
        if renamed.is_empty() {
            return;
        }
        map.nodes.push(other);
        let mut merged: Vec<MapEdge> = Vec::with_capacity(map.edges.len());
        for mut edge in std::mem::take(&mut map.edges) {
            for end in [&mut edge.from, &mut edge.to] {
                if let Some(to) = renamed.get(end.as_str()) {
                    end.clone_from(to);
                }
            }
            match merged
                .iter_mut()
                .find(|e| e.from == edge.from && e.to == edge.to && e.kind == edge.kind)
            {
                Some(same) => {
                    same.count += edge.count;
                    same.stalled += edge.stalled;
                    same.failed += edge.failed;
                    // Latencies of merged edges are no single edge's: drop them.
                    same.latency_p50_ms = None;
                    same.latency_p95_ms = None;
                }
                None => merged.push(edge),
            }
        }
        map.edges = merged;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_matches_any_run_of_characters() {
        let p = TopicPatterns::new(["orders.*", "*-dlq", "payments"]);
        assert!(p.matches("orders.created"));
        assert!(p.matches("orders."));
        assert!(p.matches("shipping-dlq"));
        assert!(p.matches("payments"));
        assert!(!p.matches("payments.v2"));
        assert!(!p.matches("order.created"));
    }

    #[test]
    fn no_patterns_sees_every_topic() {
        assert!(Sight::everything().sees_topic("anything"));
        let none = Sight {
            payloads: true,
            topics: Some(TopicPatterns::new(Vec::<String>::new())),
        };
        assert!(!none.sees_topic("anything"));
    }
}
