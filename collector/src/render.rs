//! Terminal rendering of API answers for `choreoscope query`: each flow as an indented causal
//! tree with services, types, times and hop latencies.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::health::Reaction;
use crate::lineage::Flag;
use crate::query::health::{status_name, FlowHealthView, FlowsPage};
use crate::query::model::{EventSummary, FlowAnswer, Graph, KeyAnswer};
use crate::query::model::{FailureView, MissingView};

/// A duration in ms, the way a person reads it.
pub fn human_ms(ms: f64) -> String {
    let a = ms.abs();
    let sign = if ms < 0.0 { "-" } else { "" };
    if a < 1.0 {
        format!("{sign}{:.0} µs", a * 1000.0)
    } else if a < 1000.0 {
        format!("{sign}{a:.0} ms")
    } else if a < 60_000.0 {
        format!("{sign}{:.1} s", a / 1000.0)
    } else if a < 3_600_000.0 {
        format!("{sign}{:.1} min", a / 60_000.0)
    } else {
        format!("{sign}{:.1} h", a / 3_600_000.0)
    }
}

fn clock(time: &str) -> &str {
    // 2026-11-29T05:00:00.123456Z → 05:00:00.123
    time.get(11..23).unwrap_or(time)
}

fn line(e: &EventSummary) -> String {
    let mut s = format!(
        "{}  {}  [{}]  {}",
        e.event_type.as_deref().unwrap_or("(no type)"),
        e.source.as_deref().unwrap_or("(unknown service)"),
        e.topic,
        clock(&e.time)
    );
    let marks: Vec<&str> = e
        .flags
        .iter()
        .filter(|f| **f != Flag::Root)
        .map(|f| f.as_str())
        .collect();
    if !marks.is_empty() {
        let _ = write!(s, "  ‹{}›", marks.join(", "));
    }
    s
}

/// The graph as indented trees from its roots (events with no cause in the graph). An event
/// reached twice (fan-in) is printed once and referred to afterwards; cycle edges are not
/// followed.
pub fn tree(graph: &Graph) -> String {
    let by_id: HashMap<&str, &EventSummary> =
        graph.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut children: HashMap<&str, Vec<(&str, f64)>> = HashMap::new();
    let mut has_parent: HashSet<&str> = HashSet::new();
    for e in graph.edges.iter().filter(|e| !e.cycle) {
        if by_id.contains_key(e.from.as_str()) && by_id.contains_key(e.to.as_str()) {
            children
                .entry(e.from.as_str())
                .or_default()
                .push((e.to.as_str(), e.latency_ms));
            has_parent.insert(e.to.as_str());
        }
    }
    let mut out = String::new();
    let mut printed: HashSet<&str> = HashSet::new();
    let roots: Vec<&EventSummary> = graph
        .nodes
        .iter()
        .filter(|n| !has_parent.contains(n.id.as_str()))
        .collect();
    for root in roots {
        let _ = writeln!(out, "● {}", line(root));
        printed.insert(root.id.as_str());
        walk(
            root.id.as_str(),
            "",
            &by_id,
            &children,
            &mut printed,
            &mut out,
        );
    }
    // Events only reachable through a cycle.
    for n in &graph.nodes {
        if !printed.contains(n.id.as_str()) {
            let _ = writeln!(out, "● {}  (on a cycle)", line(n));
            printed.insert(n.id.as_str());
        }
    }
    out
}

fn walk<'a>(
    id: &'a str,
    prefix: &str,
    by_id: &HashMap<&'a str, &'a EventSummary>,
    children: &HashMap<&'a str, Vec<(&'a str, f64)>>,
    printed: &mut HashSet<&'a str>,
    out: &mut String,
) {
    let Some(kids) = children.get(id) else { return };
    for (i, (child, latency)) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        let (branch, next) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        let e = by_id[child];
        if !printed.insert(child) {
            let _ = writeln!(
                out,
                "{prefix}{branch}↪ {} (+{}, shown above)",
                e.event_type.as_deref().unwrap_or(child),
                human_ms(*latency)
            );
            continue;
        }
        let _ = writeln!(out, "{prefix}{branch}{}  +{}", line(e), human_ms(*latency));
        walk(
            child,
            &format!("{prefix}{next}"),
            by_id,
            children,
            printed,
            out,
        );
    }
}

/// A key answer: a header, then each flow with its tree and where it ends.
pub fn key_answer(a: &KeyAnswer) -> String {
    let mut out = format!(
        "{} = {}: {} event(s) in {} flow(s); services: {}\n",
        a.key.name,
        a.key.value,
        a.matched_events,
        a.flows.len(),
        a.services.join(", ")
    );
    if let Some(t) = &a.graph.truncated {
        let _ = writeln!(out, "(cut: {t})");
    }
    for flow in &a.flows {
        let ids: HashSet<&str> = flow.events.iter().map(String::as_str).collect();
        let sub = Graph {
            nodes: a
                .graph
                .nodes
                .iter()
                .filter(|n| ids.contains(n.id.as_str()))
                .cloned()
                .collect(),
            edges: a
                .graph
                .edges
                .iter()
                .filter(|e| ids.contains(e.from.as_str()) && ids.contains(e.to.as_str()))
                .cloned()
                .collect(),
            truncated: None,
        };
        out.push('\n');
        out.push_str(&flow_section(flow.correlation_id.as_deref(), flow, &sub));
    }
    out
}

fn flow_section(id: Option<&str>, flow: &crate::query::model::Flow, graph: &Graph) -> String {
    let mut out = format!(
        "flow {}: {} events, {} → {} ({})\n",
        id.unwrap_or("(uncorrelated)"),
        flow.events.len(),
        flow.started,
        clock(&flow.last_activity),
        human_ms(flow.duration_ms)
    );
    out.push_str(&tree(graph));
    let h = &flow.health;
    let _ = write!(out, "  status: {}", status_name(h.status));
    if !h.tracked {
        out.push_str(" (assessed now against the learned model)");
    }
    if !h.learning.is_empty() {
        let steps: Vec<String> = h.learning.iter().map(|s| s.to_string()).collect();
        let _ = write!(
            out,
            "; as far as learned: too few occurrences of {} yet to know what follows",
            steps.join(", ")
        );
    }
    out.push('\n');
    out.push_str(&health_lines(&h.missing, &h.failures));
    for end in &flow.ends {
        let _ = writeln!(
            out,
            "  ends at {} ({}) on {}, idle for {}",
            end.event_type.as_deref().unwrap_or(&end.id),
            end.source.as_deref().unwrap_or("(unknown service)"),
            end.topic,
            human_ms(end.idle_ms)
        );
    }
    out
}

/// A trace or correlation answer.
pub fn flow_answer(a: &FlowAnswer) -> String {
    let mut out = flow_section(Some(&a.id), &a.flow, &a.graph);
    if let Some(t) = &a.graph.truncated {
        let _ = writeln!(out, "(cut: {t})");
    }
    out
}

/// An event's lineage graph.
pub fn lineage(start: &str, g: &Graph) -> String {
    let mut out = format!(
        "lineage of {start}: {} events, {} edges\n",
        g.nodes.len(),
        g.edges.len()
    );
    out.push_str(&tree(g));
    if let Some(t) = &g.truncated {
        let _ = writeln!(out, "(cut: {t})");
    }
    out
}

/// What a missing reaction waits for, the way a person reads it.
fn waiting_for(r: &Reaction) -> String {
    match r {
        Reaction::Specific {
            service,
            event_type,
        } => format!("{event_type} from {service}"),
        Reaction::ByService { service } => format!("a reaction from {service}"),
        Reaction::Any => "any reaction".to_owned(),
    }
}

/// Each missing reaction with its deadline and how sure the model is, and each failure, a line
/// each.
fn health_lines(missing: &[MissingView], failures: &[FailureView]) -> String {
    let mut s = String::new();
    for m in missing {
        let when = match m.overdue_ms {
            Some(late) => format!("due {}, {} overdue", clock(&m.deadline), human_ms(late)),
            None => format!("due {}", clock(&m.deadline)),
        };
        let _ = writeln!(
            s,
            "  waiting for {} after {} ({}, event {}): {} — {:.0} % of {} {}, {}",
            waiting_for(&m.expected),
            m.after.event_type,
            m.after.service,
            m.after_event,
            when,
            m.support * 100.0,
            m.samples,
            if m.samples == 1 {
                "occurrence"
            } else {
                "occurrences"
            },
            match m.origin {
                crate::health::Origin::Learned => "learned",
                crate::health::Origin::Declared => "declared",
            },
        );
        if let Some(d) = &m.diagnosis {
            let _ = writeln!(s, "    why: {}", d.text);
        }
    }
    for failure in failures {
        let _ = write!(s, "  failed at event {}: {}", failure.event, failure.reason);
        if let Some(topic) = &failure.dead_letter_topic {
            let _ = write!(s, " (dead-lettered to {topic})");
        }
        s.push('\n');
    }
    s
}

/// One flow's health: its status, where it started, and each missing reaction with its deadline.
pub fn flow_health(f: &FlowHealthView) -> String {
    let keys: Vec<String> = f
        .keys
        .iter()
        .map(|k| format!("{}={}", k.name, k.value))
        .collect();
    let mut s = format!(
        "flow {}{} — {}, started {} with {} ({}), {} event(s), last {}\n",
        f.flow,
        if keys.is_empty() {
            String::new()
        } else {
            format!(" [{}]", keys.join(", "))
        },
        f.status_name(),
        clock(&f.root.time),
        f.root.event_type.as_deref().unwrap_or("(no type)"),
        f.root.service.as_deref().unwrap_or("unknown service"),
        f.events,
        clock(&f.last_activity),
    );
    s.push_str(&health_lines(&f.missing, &f.failures));
    s
}

/// Each service's instrumentation, a block each: shares, spans, lineage and what to add.
pub fn services(a: &crate::query::services::ServicesAnswer) -> String {
    let mut out = format!("{} → {}: {} events read\n", a.from, a.to, a.sampled_events);
    let pct = |n: i64, of: i64| if of == 0 { 0 } else { (n * 100 + of / 2) / of };
    for s in &a.services {
        let spans = match &s.spans {
            Some(sp) => format!("{} spans ({} failed)", sp.received, sp.failed),
            None => "no spans".to_owned(),
        };
        out.push_str(&format!(
            "\n{}  {} events · ce_id {}% · causation {}% · correlation {}% · traceparent {}% · {spans}\n  lineage: {}\n",
            s.service,
            s.events,
            pct(s.with_ce_id, s.events),
            pct(s.with_causation, s.events),
            pct(s.with_correlation, s.events),
            pct(s.with_traceparent, s.events),
            s.lineage_note
        ));
        if !s.baggage_keys.is_empty() {
            out.push_str(&format!("  baggage: {}\n", s.baggage_keys.join(", ")));
        }
        for advice in &s.advice {
            out.push_str(&format!("  → {advice}\n"));
        }
    }
    out
}

/// A page of flows with their health, and the counts per status.
pub fn flows_page(p: &FlowsPage) -> String {
    let c = &p.counts;
    let mut s = format!(
        "{} flow(s) shown of {} tracked (an event in the last hour): {} complete, {} in progress, {} stalled, {} failed\n",
        p.flows.len(),
        c.complete + c.in_progress + c.stalled + c.failed,
        c.complete,
        c.in_progress,
        c.stalled,
        c.failed,
    );
    for f in &p.flows {
        s.push('\n');
        s.push_str(&flow_health(f));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::model::GraphEdge;

    fn node(id: &str, t: &str, flags: &[Flag]) -> EventSummary {
        EventSummary {
            id: id.into(),
            event_type: Some(t.into()),
            source: Some(format!("{}-svc", id)),
            topic: "orders".into(),
            partition: 0,
            offset: 0,
            time: "2026-11-29T05:00:00.123456Z".into(),
            time_us: 0,
            subject: None,
            causation_id: None,
            correlation_id: None,
            trace_id: None,
            span_id: None,
            depth: None,
            flags: flags.to_vec(),
            problem_count: 0,
            delivery_count: 1,
            opaque: false,
        }
    }

    fn edge(from: &str, to: &str, ms: f64) -> GraphEdge {
        GraphEdge {
            from: from.into(),
            to: to.into(),
            latency_ms: ms,
            inferred: false,
            rule: crate::lineage::Rule::Causation,
            cycle: false,
        }
    }

    #[test]
    fn a_fan_out_then_fan_in_prints_as_a_tree_with_latencies_and_one_back_reference() {
        let g = Graph {
            nodes: vec![
                node("a", "OrderCreated", &[Flag::Root]),
                node("b", "PaymentCaptured", &[]),
                node("c", "StockReserved", &[]),
                node("d", "OrderShipped", &[Flag::End]),
            ],
            edges: vec![
                edge("a", "b", 12.0),
                edge("a", "c", 1500.0),
                edge("b", "d", 3.0),
                edge("c", "d", 4.0),
            ],
            truncated: None,
        };
        let text = tree(&g);
        let expected = "\
● OrderCreated  a-svc  [orders]  05:00:00.123
├─ PaymentCaptured  b-svc  [orders]  05:00:00.123  +12 ms
│  └─ OrderShipped  d-svc  [orders]  05:00:00.123  ‹end›  +3 ms
└─ StockReserved  c-svc  [orders]  05:00:00.123  +1.5 s
   └─ ↪ OrderShipped (+4 ms, shown above)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_ms(0.25), "250 µs");
        assert_eq!(human_ms(42.0), "42 ms");
        assert_eq!(human_ms(90_000.0), "1.5 min");
        assert_eq!(human_ms(-3.0), "-3 ms");
    }

    #[test]
    fn a_stalled_flow_reads_as_what_it_waits_for_after_which_event_and_how_late() {
        use crate::health::{FlowStatus, Origin, Reaction, Step};
        use crate::query::health::{FlowHealthView, FlowRoot};
        use crate::query::model::KeyValue;
        use crate::query::model::MissingView;
        let flow = FlowHealthView {
            flow: "c-1".into(),
            status: FlowStatus::Stalled,
            root: FlowRoot {
                id: "e-1".into(),
                event_type: Some("CartCheckedOut".into()),
                service: Some("shop".into()),
                time: "2026-12-01T17:32:10.391000Z".into(),
            },
            last_activity: "2026-12-01T17:32:10.944000Z".into(),
            events: 3,
            keys: vec![KeyValue {
                name: "order.id".into(),
                value: "o-1007".into(),
            }],
            missing: vec![MissingView {
                after_event: "e-3".into(),
                after: Step::new("payment", "PaymentCreated"),
                expected: Reaction::ByService {
                    service: "bank".into(),
                },
                support: 0.98,
                samples: 42,
                origin: Origin::Learned,
                deadline: "2026-12-01T17:32:20.944000Z".into(),
                overdue_ms: Some(37_000.0),
                diagnosis: None,
            }],
            failures: vec![],
            next_deadline: None,
            learning: vec![],
        };
        assert_eq!(
            flow_health(&flow),
            "flow c-1 [order.id=o-1007] — stalled, started 17:32:10.391 with CartCheckedOut (shop), 3 event(s), last 17:32:10.944\n  \
             waiting for a reaction from bank after PaymentCreated (payment, event e-3): due 17:32:20.944, 37.0 s overdue — 98 % of 42 occurrences, learned\n"
        );
    }
}
