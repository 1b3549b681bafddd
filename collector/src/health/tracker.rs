//! Flow health kept incrementally, as events become durable: the open flows with their status and
//! next deadline, the learned model, and the counts and groups the API and metrics show — so no
//! request re-walks the flows of the store.
//!
//! - [`Tracker::observe`] adds an event to its flow (its correlation, else itself), links it to
//!   its cause and to reactions that arrived before it (declared causation), and reassesses that
//!   flow.
//! - [`Tracker::tick`] moves time on. An event is *settled* once its reactions have had time to
//!   arrive — `settle_after`, or longer when its step's deadlines are longer — and only then does
//!   the model learn from it (what it got, or that it got nothing). Flows whose deadline passed
//!   are reassessed, and so, every `sweep_every`, is every tracked flow, so that what the model
//!   learned meanwhile reaches flows that had no event since: that is the bound on how stale a
//!   status may be.
//! - A complete flow stays tracked for `keep_for` after its last event, any other for
//!   `keep_stopped_for`; at most `max_flows` are kept, complete flows going first, then in
//!   progress, then stalled and failed, the least recently active of each first (counted in
//!   [`Tracker::evicted`]).
//!
//! Edges are declared causation only: the span rule (docs/lineage.md) needs the store's span
//! index and is left to query time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;

use super::model::{ChoreographyModel, Reaction, Step};
use super::status::{FlowEvent, FlowFacts, FlowHealth, FlowStatus};

/// How the tracker keeps flows and time.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// How long after an event its reactions are taken as all there (at least; a step whose
    /// expected reactions are due later settles when they are due).
    pub settle_after: Duration,
    /// How long a complete flow stays tracked after its last event.
    pub keep_for: Duration,
    /// How long a flow that is not complete (in progress, stalled, failed) stays tracked after
    /// its last event: longer, since those are the ones to look at.
    pub keep_stopped_for: Duration,
    /// Most flows tracked at once.
    pub max_flows: usize,
    /// How often every tracked flow is reassessed against what the model has learned.
    pub sweep_every: Duration,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            settle_after: Duration::from_secs(30),
            keep_for: Duration::from_secs(3600),
            keep_stopped_for: Duration::from_secs(24 * 3600),
            max_flows: 100_000,
            sweep_every: Duration::from_secs(10),
        }
    }
}

/// What the tracker needs of a durable event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedEvent {
    /// The event as flow health sees it.
    pub event: FlowEvent,
    /// Its cause's id, if it names one.
    pub causation_id: Option<String>,
    /// Its correlation id, if any (its flow; else it starts its own).
    pub correlation_id: Option<String>,
    /// Its business keys `(name, value)`.
    pub keys: Vec<(String, String)>,
}

/// Business keys kept per flow, at most (the first seen).
pub const MAX_FLOW_KEYS: usize = 20;

/// One tracked flow.
#[derive(Debug, Clone)]
struct TrackedFlow {
    facts: FlowFacts,
    index: HashMap<String, usize>,
    health: FlowHealth,
    last_activity_us: i64,
    /// The first [`MAX_FLOW_KEYS`] distinct keys seen, in arrival order (a few, usually: a
    /// vector, not a tree whose first node alone is larger than a small flow).
    keys: Vec<(String, String)>,
    /// Its reactions stored before their cause: cause id → their indexes.
    waiting: HashMap<String, Vec<usize>>,
}

/// A flow as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowSummary {
    /// The flow's key: its correlation id, or its only event's id.
    pub flow: String,
    /// Its status and what it is missing.
    pub health: FlowHealth,
    /// Its first event's id.
    pub root: String,
    /// Its first event's producing service, when known.
    pub root_service: Option<String>,
    /// Its first event's type, when known.
    pub root_type: Option<String>,
    /// Its first event's time, µs.
    pub started_us: i64,
    /// Its last event's time, µs.
    pub last_event_us: i64,
    /// How many events it has.
    pub events: usize,
    /// The business keys its events carry (at most [`MAX_FLOW_KEYS`], the first seen), sorted.
    pub keys: Vec<(String, String)>,
}

/// Stalled or failed flows grouped by where they stopped (`37 flows stalled after
/// payment/PaymentCreated, waiting for bank`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoppedGroup {
    /// `stalled` or `failed`.
    pub status: FlowStatus,
    /// The step after which a reaction is missing (stalled) or that failed (failed).
    pub after: Option<Step>,
    /// The reaction waited for (stalled).
    pub waiting_for: Option<Reaction>,
    /// How many flows.
    pub flows: usize,
    /// The oldest of them (by start), first.
    pub oldest: Vec<String>,
}

/// Flow health kept incrementally (see the module docs).
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    model: ChoreographyModel,
    flows: HashMap<String, TrackedFlow>,
    flow_of: HashMap<String, String>,
    settle: BinaryHeap<Reverse<(i64, String)>>,
    deadlines: BinaryHeap<Reverse<(i64, String)>>,
    last_sweep_us: i64,
    evicted: u64,
    /// Failures of events not tracked (yet), with when they were heard of: applied when the
    /// event arrives, forgotten after `keep_for`.
    pending_failures: HashMap<String, (String, i64)>,
}

/// Failures of events not tracked yet kept at most (a dead letter read before its original).
pub const MAX_PENDING_FAILURES: usize = 10_000;

impl Tracker {
    /// An empty tracker around `model`.
    pub fn new(model: ChoreographyModel, config: TrackerConfig) -> Self {
        Self {
            config,
            model,
            flows: HashMap::new(),
            flow_of: HashMap::new(),
            settle: BinaryHeap::new(),
            deadlines: BinaryHeap::new(),
            last_sweep_us: i64::MIN,
            evicted: 0,
            pending_failures: HashMap::new(),
        }
    }

    /// The learned model.
    pub fn model(&self) -> &ChoreographyModel {
        &self.model
    }

    /// Flows dropped to stay within `max_flows`.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// How many flows are tracked.
    pub fn tracked(&self) -> usize {
        self.flows.len()
    }

    /// Adds a durable event (an event seen before is ignored) and reassesses its flow.
    pub fn observe(&mut self, tracked: TrackedEvent, now_us: i64) {
        self.observe_all([tracked], now_us);
    }

    /// Adds durable events (those seen before are ignored), then reassesses each flow they
    /// touched once, however many of its events the batch held.
    pub fn observe_all(&mut self, events: impl IntoIterator<Item = TrackedEvent>, now_us: i64) {
        let mut touched: HashSet<String> = HashSet::new();
        for tracked in events {
            if let Some(key) = self.insert(tracked) {
                touched.insert(key);
            }
        }
        for key in &touched {
            self.reassess(key, now_us);
        }
        self.bound();
    }

    /// Fails event `id` (it was dead-lettered) with `reason`, and reassesses its flow; an event
    /// not tracked yet fails when it arrives within `keep_for` (at most [`MAX_PENDING_FAILURES`]
    /// are kept, the newest dropped past that). Failing an event again with the same reason changes nothing.
    pub fn fail(&mut self, id: &str, reason: &str, now_us: i64) {
        let Some(key) = self.flow_of.get(id).cloned() else {
            if self.pending_failures.len() < MAX_PENDING_FAILURES {
                self.pending_failures
                    .entry(id.to_owned())
                    .or_insert_with(|| (reason.to_owned(), now_us));
            }
            return;
        };
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let Some(&i) = flow.index.get(id) else { return };
        let event = &mut flow.facts.events[i];
        if event.failure.as_deref() == Some(reason) {
            return;
        }
        event.failure = Some(reason.to_owned());
        self.reassess(&key, now_us);
    }

    /// Adds one event to its flow; returns the flow's key, or `None` for an event seen before.
    fn insert(&mut self, tracked: TrackedEvent) -> Option<String> {
        let TrackedEvent {
            mut event,
            causation_id,
            correlation_id,
            keys,
        } = tracked;
        let id = event.id.clone();
        if self.flow_of.contains_key(&id) {
            return None;
        }
        if !self.pending_failures.is_empty() {
            if let Some((reason, _)) = self.pending_failures.remove(&id) {
                event.failure = Some(reason);
            }
        }
        let key = correlation_id.unwrap_or_else(|| id.clone());
        let flow = match self.flows.get_mut(&key) {
            Some(flow) => flow,
            None => self
                .flows
                .entry(key.clone())
                .or_insert_with(|| TrackedFlow {
                    facts: FlowFacts::default(),
                    index: HashMap::new(),
                    health: FlowHealth {
                        status: FlowStatus::Complete,
                        missing: Vec::new(),
                        failures: Vec::new(),
                        next_deadline_us: None,
                        learning: Vec::new(),
                    },
                    last_activity_us: event.time_us,
                    keys: Vec::new(),
                    waiting: HashMap::new(),
                }),
        };
        for key in keys {
            if flow.keys.len() >= MAX_FLOW_KEYS {
                break;
            }
            if !flow.keys.contains(&key) {
                flow.keys.push(key);
            }
        }
        let i = flow.facts.events.len();
        let time_us = event.time_us;
        flow.facts.events.push(event);
        flow.index.insert(id.clone(), i);
        flow.last_activity_us = flow.last_activity_us.max(time_us);
        // Causation is followed within the flow; an event naming itself names no cause.
        if let Some(cause) = causation_id.filter(|c| *c != id) {
            match flow.index.get(&cause) {
                Some(&c) => flow.facts.edges.push((c, i)),
                None => flow.waiting.entry(cause).or_default().push(i),
            }
        }
        // Reactions that arrived before it.
        if let Some(early) = flow.waiting.remove(&id) {
            flow.facts.edges.extend(early.into_iter().map(|r| (i, r)));
        }
        self.flow_of.insert(id.clone(), key.clone());
        let settle_at = time_us.saturating_add(micros(self.settle_time(&key, i)));
        self.settle.push(Reverse((settle_at, id)));
        Some(key)
    }

    /// How long event `i` of `flow` waits before the model learns from it.
    fn settle_time(&self, flow: &str, i: usize) -> Duration {
        let step = self.flows[flow].facts.events[i].step();
        let longest = step
            .map(|s| {
                self.model
                    .expectations(&s)
                    .iter()
                    .map(|e| e.within)
                    .max()
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        self.config.settle_after.max(longest)
    }

    /// Moves time to `now_us`: learns from settled events, reassesses flows whose deadline passed
    /// (and every flow each `sweep_every`), and forgets quiet flows.
    pub fn tick(&mut self, now_us: i64) {
        if self.advance(now_us) {
            let keys = self.flow_keys();
            self.sweep(&keys, now_us);
            self.swept(now_us);
        }
    }

    /// [`Tracker::tick`] without its sweep: learns from settled events, reassesses flows whose
    /// deadline passed, forgets quiet flows; returns whether a sweep of every flow is due (the
    /// caller then runs [`Tracker::sweep`] over [`Tracker::flow_keys`], in as many parts as it
    /// likes, and [`Tracker::swept`]).
    pub fn advance(&mut self, now_us: i64) -> bool {
        while let Some(Reverse((at, _))) = self.settle.peek() {
            if *at > now_us {
                break;
            }
            let Reverse((_, id)) = self.settle.pop().expect("peeked");
            let Some(key) = self.flow_of.get(&id) else {
                continue;
            };
            let Some(flow) = self.flows.get(key) else {
                continue;
            };
            let Some(&i) = flow.index.get(&id) else {
                continue;
            };
            if let Some((step, reactions)) = flow.facts.observation(i) {
                self.model.observe(&step, &reactions);
            }
        }
        while let Some(Reverse((at, _))) = self.deadlines.peek() {
            if *at > now_us {
                break;
            }
            let Reverse((at, key)) = self.deadlines.pop().expect("peeked");
            // An entry the flow's later reassessments replaced is stale.
            let current = self.flows.get(&key).and_then(|f| f.health.next_deadline_us);
            if current == Some(at) {
                self.reassess(&key, now_us);
            }
        }
        self.forget_quiet(now_us);
        if !self.pending_failures.is_empty() {
            let heard_after = now_us.saturating_sub(micros(self.config.keep_for));
            self.pending_failures
                .retain(|_, (_, at)| *at >= heard_after);
        }
        now_us.saturating_sub(self.last_sweep_us) >= micros(self.config.sweep_every)
    }

    /// The keys of every tracked flow, for a sweep.
    pub fn flow_keys(&self) -> Vec<String> {
        self.flows.keys().cloned().collect()
    }

    /// Reassesses the flows `keys` (those still tracked) against what the model has learned.
    pub fn sweep(&mut self, keys: &[String], now_us: i64) {
        for key in keys {
            self.reassess(key, now_us);
        }
    }

    /// Ends a sweep begun at `now_us`: the deadline queue is rebuilt from the flows, one entry per
    /// pending deadline (each reassessment queued its flow's again when it changed).
    pub fn swept(&mut self, now_us: i64) {
        self.last_sweep_us = now_us;
        self.deadlines = self
            .flows
            .iter()
            .filter_map(|(k, f)| f.health.next_deadline_us.map(|at| Reverse((at, k.clone()))))
            .collect();
    }

    fn reassess(&mut self, key: &str, now_us: i64) {
        let Some(flow) = self.flows.get_mut(key) else {
            return;
        };
        let before = flow.health.next_deadline_us;
        flow.health = flow.facts.assess(&self.model, now_us);
        // A pending deadline is always after `now_us` (a due one is overdue), so this never
        // re-queues what `tick` is popping; an unchanged one is queued already.
        if let Some(at) = flow.health.next_deadline_us {
            if Some(at) != before && at > now_us {
                self.deadlines.push(Reverse((at, key.to_owned())));
            }
        }
    }

    fn forget_quiet(&mut self, now_us: i64) {
        let complete_before = now_us.saturating_sub(micros(self.config.keep_for));
        let stopped_before = now_us.saturating_sub(micros(self.config.keep_stopped_for));
        let quiet: Vec<String> = self
            .flows
            .iter()
            .filter(|(_, f)| {
                let before = if f.health.status == FlowStatus::Complete {
                    complete_before
                } else {
                    stopped_before
                };
                f.last_activity_us < before
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in quiet {
            self.drop_flow(&key);
        }
    }

    /// Keeps at most `max_flows`: past it, drops a hundredth of them at once (so a full tracker
    /// sorts its flows once per hundredth, not once per event), complete flows first, then in
    /// progress, then stalled and failed, the least recently active of each first.
    fn bound(&mut self) {
        if self.flows.len() <= self.config.max_flows {
            return;
        }
        let target = self.config.max_flows - self.config.max_flows / 100;
        let rank = |s: FlowStatus| match s {
            FlowStatus::Complete => 0,
            FlowStatus::InProgress => 1,
            FlowStatus::Stalled | FlowStatus::Failed => 2,
        };
        let mut order: Vec<(u8, i64, &String)> = self
            .flows
            .iter()
            .map(|(k, f)| (rank(f.health.status), f.last_activity_us, k))
            .collect();
        order.sort_unstable();
        let drop: Vec<String> = order
            .into_iter()
            .take(self.flows.len() - target)
            .map(|(_, _, k)| k.clone())
            .collect();
        for key in drop {
            self.drop_flow(&key);
            self.evicted += 1;
        }
    }

    fn drop_flow(&mut self, key: &str) {
        if let Some(flow) = self.flows.remove(key) {
            for id in flow.index.keys() {
                self.flow_of.remove(id);
            }
        }
    }

    /// Keeps no flow longer than `retention` after its last event: once that event is older
    /// than the store's retention, the flow's events are being deleted, and a status computed
    /// from what is left (a flow missing its first events) would be about events no longer
    /// stored. Lowers `keep_for` and `keep_stopped_for` to `retention` when they are longer.
    pub fn keep_within(&mut self, retention: Duration) {
        self.config.keep_for = self.config.keep_for.min(retention);
        self.config.keep_stopped_for = self.config.keep_stopped_for.min(retention);
    }

    /// Flows tracked now per status.
    pub fn counts(&self) -> BTreeMap<FlowStatus, usize> {
        let mut counts = BTreeMap::new();
        for f in self.flows.values() {
            *counts.entry(f.health.status).or_default() += 1;
        }
        counts
    }

    /// The health of the flow `key`, if tracked.
    pub fn health(&self, key: &str) -> Option<&FlowHealth> {
        self.flows.get(key).map(|f| &f.health)
    }

    /// Tracked flows with `status` (any, when `None`), oldest first, at most `limit`.
    pub fn flows(&self, status: Option<FlowStatus>, limit: usize) -> Vec<FlowSummary> {
        let mut found: Vec<FlowSummary> = self
            .flows
            .iter()
            .filter(|(_, f)| status.is_none_or(|s| f.health.status == s))
            .map(|(key, f)| summary(key, f))
            .collect();
        found.sort_by(|a, b| (a.started_us, &a.flow).cmp(&(b.started_us, &b.flow)));
        found.truncate(limit);
        found
    }

    /// Stalled and failed flows grouped by where they stopped, largest groups first; each group
    /// names up to `oldest` of its flows, oldest first.
    pub fn stopped_groups(&self, oldest: usize) -> Vec<StoppedGroup> {
        type Key = (FlowStatus, Option<Step>, Option<Reaction>);
        let mut groups: BTreeMap<Key, Vec<(i64, &str)>> = BTreeMap::new();
        for (key, f) in &self.flows {
            let started = f
                .facts
                .events
                .iter()
                .map(|e| e.time_us)
                .min()
                .unwrap_or_default();
            match f.health.status {
                FlowStatus::Stalled => {
                    for m in f.health.missing.iter().filter(|m| m.overdue_ms.is_some()) {
                        groups
                            .entry((
                                FlowStatus::Stalled,
                                Some(m.after.clone()),
                                Some(m.expected.clone()),
                            ))
                            .or_default()
                            .push((started, key));
                    }
                }
                FlowStatus::Failed => {
                    for failure in &f.health.failures {
                        let step = f
                            .index
                            .get(&failure.event)
                            .and_then(|&i| f.facts.events[i].step());
                        groups
                            .entry((FlowStatus::Failed, step, None))
                            .or_default()
                            .push((started, key));
                    }
                }
                _ => {}
            }
        }
        let mut out: Vec<StoppedGroup> = groups
            .into_iter()
            .map(|((status, after, waiting_for), mut flows)| {
                flows.sort();
                flows.dedup();
                StoppedGroup {
                    status,
                    after,
                    waiting_for,
                    flows: flows.len(),
                    oldest: flows
                        .iter()
                        .take(oldest)
                        .map(|(_, k)| (*k).to_owned())
                        .collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.status.cmp(&b.status)));
        out
    }
}

fn summary(key: &str, f: &TrackedFlow) -> FlowSummary {
    let root = f
        .facts
        .events
        .iter()
        .enumerate()
        .min_by_key(|(_, e)| (e.time_us, &e.id))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let root_event = &f.facts.events[root];
    FlowSummary {
        flow: key.to_owned(),
        health: f.health.clone(),
        root: root_event.id.clone(),
        root_service: root_event.service.clone(),
        root_type: root_event.event_type.clone(),
        started_us: root_event.time_us,
        last_event_us: f
            .facts
            .events
            .iter()
            .map(|e| e.time_us)
            .max()
            .unwrap_or_default(),
        events: f.facts.events.len(),
        keys: {
            let mut keys = f.keys.clone();
            keys.sort_unstable();
            keys
        },
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::config::{HealthConfig, DEFAULT_STALL_FLOOR};

    const S: i64 = 1_000_000;

    fn event(id: &str, step: &str, t_us: i64, cause: Option<&str>, flow: &str) -> TrackedEvent {
        let (service, event_type) = step.split_once('/').unwrap();
        TrackedEvent {
            event: FlowEvent {
                id: id.into(),
                service: Some(service.into()),
                event_type: Some(event_type.into()),
                time_us: t_us,
                failure: None,
            },
            causation_id: cause.map(str::to_owned),
            correlation_id: Some(flow.into()),
            keys: vec![("order.id".into(), flow.into())],
        }
    }

    /// Order `n` of the checkout choreography, starting at `t` seconds: order → payment → bank
    /// (a fifth declined) → inventory and email after a confirmation (a fan-out). With
    /// `stop_after`, the flow has only its first events.
    fn order(n: usize, t: i64, stop_after: Option<usize>) -> Vec<TrackedEvent> {
        let f = format!("flow-{n}");
        let id = |s: &str| format!("{s}-{n}");
        let t = t * S;
        let mut events = vec![
            event(&id("o"), "order/OrderCreated", t, None, &f),
            event(
                &id("p"),
                "payment/PaymentCreated",
                t + 100_000,
                Some(&id("o")),
                &f,
            ),
        ];
        if n % 5 == 0 {
            events.push(event(
                &id("b"),
                "bank/PaymentDeclined",
                t + 150_000,
                Some(&id("p")),
                &f,
            ));
        } else {
            events.push(event(
                &id("b"),
                "bank/PaymentConfirmed",
                t + 150_000,
                Some(&id("p")),
                &f,
            ));
            events.push(event(
                &id("i"),
                "inventory/StockReserved",
                t + 170_000,
                Some(&id("b")),
                &f,
            ));
            events.push(event(
                &id("e"),
                "notification/EmailSent",
                t + 400_000,
                Some(&id("b")),
                &f,
            ));
        }
        events.truncate(stop_after.unwrap_or(usize::MAX));
        events
    }

    /// A tracker that has learned from `n` normal orders, one a second, and been ticked past
    /// their settling.
    fn trained(n: usize) -> (Tracker, i64) {
        let mut tracker = Tracker::new(
            ChoreographyModel::new(HealthConfig::default()),
            TrackerConfig::default(),
        );
        for i in 0..n {
            for e in order(i, i as i64, None) {
                tracker.observe(e, i as i64 * S);
            }
            tracker.tick(i as i64 * S);
        }
        let now = (n as i64 + 60) * S;
        tracker.tick(now);
        (tracker, now)
    }

    #[test]
    fn a_dead_lettered_event_fails_its_flow_and_names_the_reason() {
        let (mut tracker, now) = trained(100);
        for e in order(1002, now / S, Some(2)) {
            tracker.observe(e, now);
        }
        tracker.fail(
            "p-1002",
            "bank-group: IllegalStateException: card expired",
            now,
        );
        let health = tracker.health("flow-1002").unwrap();
        assert_eq!(health.status, FlowStatus::Failed);
        assert_eq!(health.failures[0].event, "p-1002");
        assert_eq!(
            health.failures[0].reason,
            "bank-group: IllegalStateException: card expired"
        );
        let groups = tracker.stopped_groups(10);
        assert_eq!(
            (groups[0].status, groups[0].after.clone()),
            (
                FlowStatus::Failed,
                Some(Step::new("payment", "PaymentCreated"))
            )
        );
    }

    #[test]
    fn a_dead_letter_read_before_its_original_fails_the_flow_when_the_original_arrives() {
        let (mut tracker, now) = trained(100);
        tracker.fail("p-1003", "bank-group: timeout", now);
        assert!(tracker.health("flow-1003").is_none());
        for e in order(1003, now / S, Some(2)) {
            tracker.observe(e, now);
        }
        assert_eq!(
            tracker.health("flow-1003").unwrap().status,
            FlowStatus::Failed
        );
    }

    #[test]
    fn a_few_hundred_normal_flows_are_all_complete() {
        let (tracker, _) = trained(300);
        assert_eq!(
            tracker.counts(),
            BTreeMap::from([(FlowStatus::Complete, 300)])
        );
        assert!(tracker.flows(Some(FlowStatus::Stalled), 10).is_empty());
    }

    #[test]
    fn a_flow_missing_an_expected_reaction_stalls_once_it_is_overdue() {
        let (mut tracker, now) = trained(300);
        for e in order(1001, now / S, Some(2)) {
            tracker.observe(e, now);
        }
        assert_eq!(
            tracker.health("flow-1001").unwrap().status,
            FlowStatus::InProgress
        );
        let due = now + S / 10 + DEFAULT_STALL_FLOOR.as_micros() as i64;
        tracker.tick(due - 1);
        assert_eq!(
            tracker.health("flow-1001").unwrap().status,
            FlowStatus::InProgress
        );
        tracker.tick(due + 1);
        let health = tracker.health("flow-1001").unwrap();
        assert_eq!(health.status, FlowStatus::Stalled);
        assert_eq!(health.missing[0].after_event, "p-1001");
        assert_eq!(
            health.missing[0].expected,
            Reaction::ByService {
                service: "bank".into()
            }
        );
    }

    #[test]
    fn a_missing_branch_of_a_fan_out_stalls_the_flow_at_that_step() {
        let (mut tracker, now) = trained(300);
        let mut partial = order(1002, now / S, None);
        partial.retain(|e| !e.event.id.starts_with("e-"));
        for e in partial {
            tracker.observe(e, now);
        }
        tracker.tick(now + 3600 * S);
        let health = tracker.health("flow-1002").unwrap();
        assert_eq!(health.status, FlowStatus::Stalled);
        assert_eq!(
            health.missing[0].after,
            Step::new("bank", "PaymentConfirmed")
        );
        assert_eq!(
            health.missing[0].expected.to_string(),
            "notification/EmailSent"
        );
    }

    #[test]
    fn a_reaction_stored_before_its_cause_is_linked_when_the_cause_arrives() {
        let (mut tracker, now) = trained(300);
        let mut events = order(1003, now / S, None);
        events.swap(0, 1);
        for e in events {
            tracker.observe(e, now);
        }
        tracker.tick(now + 3600 * S);
        assert_eq!(
            tracker.health("flow-1003").unwrap().status,
            FlowStatus::Complete
        );
    }

    #[test]
    fn stalled_flows_are_grouped_by_step_and_missing_reaction_oldest_first() {
        let (mut tracker, now) = trained(300);
        let base = now / S;
        for n in 0..3 {
            for e in order(2000 + n, base + n as i64, Some(2)) {
                tracker.observe(e, now);
            }
        }
        for e in order(3000, base, Some(1)) {
            tracker.observe(e, now);
        }
        tracker.tick(now + 3600 * S);
        let groups = tracker.stopped_groups(2);
        let shown: Vec<(String, String, usize, Vec<String>)> = groups
            .iter()
            .map(|g| {
                (
                    g.after.as_ref().unwrap().to_string(),
                    g.waiting_for.as_ref().unwrap().to_string(),
                    g.flows,
                    g.oldest.clone(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "payment/PaymentCreated".into(),
                    "bank".into(),
                    3,
                    vec!["flow-2000".into(), "flow-2001".into()]
                ),
                (
                    "order/OrderCreated".into(),
                    "payment/PaymentCreated".into(),
                    1,
                    vec!["flow-3000".into()]
                ),
            ]
        );
    }

    #[test]
    fn a_failed_event_fails_its_flow_and_is_grouped_by_its_step() {
        let (mut tracker, now) = trained(300);
        let mut events = order(4000, now / S, None);
        events[1].event.failure = Some("bank-group: card expired".into());
        for e in events {
            tracker.observe(e, now);
        }
        assert_eq!(
            tracker.health("flow-4000").unwrap().status,
            FlowStatus::Failed
        );
        let failed: Vec<_> = tracker
            .stopped_groups(5)
            .into_iter()
            .filter(|g| g.status == FlowStatus::Failed)
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(
            failed[0].after,
            Some(Step::new("payment", "PaymentCreated"))
        );
    }

    #[test]
    fn what_the_model_learns_reaches_flows_that_had_no_event_since() {
        // Before anything is learned, a lone payment is complete (nothing is expected yet).
        let mut tracker = Tracker::new(
            ChoreographyModel::new(HealthConfig::default()),
            TrackerConfig::default(),
        );
        for e in order(5000, 0, Some(2)) {
            tracker.observe(e, 0);
        }
        assert_eq!(
            tracker.health("flow-5000").unwrap().status,
            FlowStatus::Complete
        );
        for i in 1..=300 {
            for e in order(i, i as i64, None) {
                tracker.observe(e, i as i64 * S);
            }
            tracker.tick(i as i64 * S);
        }
        tracker.tick(400 * S);
        assert_eq!(
            tracker.health("flow-5000").unwrap().status,
            FlowStatus::Stalled
        );
    }

    #[test]
    fn quiet_complete_flows_are_forgotten_and_the_rest_is_bounded() {
        let (mut tracker, now) = trained(50);
        tracker.tick(now + 2 * 3600 * S);
        assert_eq!(
            tracker.tracked(),
            0,
            "complete and quiet for longer than keep_for"
        );

        let config = TrackerConfig {
            max_flows: 10,
            ..TrackerConfig::default()
        };
        let mut bounded = Tracker::new(ChoreographyModel::new(HealthConfig::default()), config);
        for i in 0..25 {
            for e in order(i, i as i64, None) {
                bounded.observe(e, i as i64 * S);
            }
        }
        assert_eq!((bounded.tracked(), bounded.evicted()), (10, 15));
        assert!(bounded.health("flow-24").is_some() && bounded.health("flow-0").is_none());
    }

    #[test]
    fn an_event_seen_twice_is_tracked_once() {
        let mut tracker = Tracker::new(
            ChoreographyModel::new(HealthConfig::default()),
            TrackerConfig::default(),
        );
        let e = order(1, 0, Some(1)).remove(0);
        tracker.observe(e.clone(), 0);
        tracker.observe(e, 0);
        assert_eq!(tracker.flows(None, 10)[0].events, 1);
    }

    #[test]
    fn a_flow_lists_the_business_keys_its_events_carry() {
        let mut tracker = Tracker::new(
            ChoreographyModel::new(HealthConfig::default()),
            TrackerConfig::default(),
        );
        let mut events = order(7, 0, Some(2));
        events[1].keys.push(("payment.id".into(), "pay-7".into()));
        for e in events {
            tracker.observe(e, 0);
        }
        assert_eq!(
            tracker.flows(None, 1)[0].keys,
            [
                ("order.id".to_owned(), "flow-7".to_owned()),
                ("payment.id".into(), "pay-7".into())
            ]
        );
    }

    #[test]
    fn a_tick_exactly_at_a_deadline_returns_and_stalls_the_flow() {
        let (mut tracker, now) = trained(300);
        for e in order(6000, now / S, Some(2)) {
            tracker.observe(e, now);
        }
        let due = now + S / 10 + DEFAULT_STALL_FLOOR.as_micros() as i64;
        tracker.tick(due - 1);
        tracker.tick(due);
        assert_eq!(
            tracker.health("flow-6000").unwrap().status,
            FlowStatus::Stalled
        );
        assert_eq!(tracker.health("flow-6000").unwrap().next_deadline_us, None);
    }

    #[test]
    fn a_rare_alternative_outcome_of_a_service_is_not_a_missing_reaction() {
        // The bank confirms 95 % of payments: the confirmation itself passes 0.9.
        let mut tracker = Tracker::new(
            ChoreographyModel::new(HealthConfig::default()),
            TrackerConfig::default(),
        );
        for i in 0..300usize {
            let f = format!("flow-{i}");
            let t = i as i64 * S;
            let outcome = if i % 20 == 0 {
                "bank/PaymentDeclined"
            } else {
                "bank/PaymentConfirmed"
            };
            for e in [
                event(&format!("p-{i}"), "payment/PaymentCreated", t, None, &f),
                event(
                    &format!("b-{i}"),
                    outcome,
                    t + S / 10,
                    Some(&format!("p-{i}")),
                    &f,
                ),
            ] {
                tracker.observe(e, t);
            }
            tracker.tick(t);
        }
        tracker.tick(400 * S);
        assert!(tracker
            .model()
            .expectations(&Step::new("payment", "PaymentCreated"))
            .iter()
            .any(|e| e.reaction.to_string() == "bank/PaymentConfirmed"));
        assert_eq!(
            tracker.counts(),
            BTreeMap::from([(FlowStatus::Complete, 300)])
        );
    }

    #[test]
    fn an_event_naming_itself_as_its_cause_is_no_reaction_to_itself() {
        let mut tracker = Tracker::new(
            ChoreographyModel::new(HealthConfig::default()),
            TrackerConfig::default(),
        );
        for i in 0..50 {
            let id = format!("o-{i}");
            tracker.observe(
                event(&id, "order/OrderCreated", i * S, Some(&id), &id),
                i * S,
            );
        }
        tracker.tick(3600 * S);
        let step = tracker
            .model()
            .steps()
            .into_iter()
            .find(|v| v.step == Step::new("order", "OrderCreated"))
            .unwrap();
        assert!(step.terminal && step.seen.is_empty(), "{step:?}");
    }

    #[test]
    fn a_stuck_flow_stays_longer_than_a_complete_one_but_not_forever() {
        let (mut tracker, now) = trained(50);
        for e in order(7000, now / S, Some(2)) {
            tracker.observe(e, now);
        }
        tracker.tick(now + 2 * 3600 * S);
        assert_eq!(
            tracker.tracked(),
            1,
            "the complete flows are forgotten after an hour"
        );
        assert_eq!(
            tracker.health("flow-7000").unwrap().status,
            FlowStatus::Stalled
        );
        tracker.tick(now + 25 * 3600 * S);
        assert_eq!(tracker.tracked(), 0, "a stuck flow is kept for a day");
    }

    #[test]
    fn a_full_tracker_drops_complete_flows_before_stuck_ones() {
        let config = TrackerConfig {
            max_flows: 300,
            ..TrackerConfig::default()
        };
        let (mut tracker, now) = (
            Tracker::new(ChoreographyModel::new(HealthConfig::default()), config),
            320 * S,
        );
        for i in 0..250 {
            for e in order(i, i as i64, None) {
                tracker.observe(e, i as i64 * S);
            }
            tracker.tick(i as i64 * S);
        }
        tracker.tick(now);
        // The oldest activity of all, and stuck.
        for e in order(8000, 0, Some(2)) {
            tracker.observe(e, now);
        }
        tracker.tick(now + S);
        assert_eq!(
            tracker.health("flow-8000").unwrap().status,
            FlowStatus::Stalled
        );
        for i in 0..100 {
            for e in order(9000 + i, now / S + 2, None) {
                tracker.observe(e, now + 2 * S);
            }
        }
        assert!(tracker.tracked() <= 300);
        assert!(tracker.evicted() > 0);
        assert!(
            tracker.health("flow-8000").is_some(),
            "the stuck flow outlives complete ones"
        );
    }
}
