//! The learned choreography: for every **step** (a producing service and an event type), which
//! reactions follow it, how often, and how fast.
//!
//! A reaction is counted three ways at once: the exact reaction (`bank/PaymentConfirmed`), *some*
//! reaction by a service (`bank`), and *some* reaction at all. So mutually exclusive outcomes —
//! `PaymentConfirmed` 80 %, `PaymentDeclined` 20 % — still make "the bank reacts" expected.
//!
//! The model follows change by decaying per occurrence: each settled occurrence of a step
//! multiplies that step's weights by `1 - 1/horizon` before adding its own, so a support is the
//! share of (roughly) the last `horizon` occurrences that saw the reaction. A reaction that stops
//! happening falls below `min_support` after a few dozen occurrences of its step (with the
//! defaults, 0.9 support is lost after ~21 occurrences without it) and is no longer expected.
//! Latencies are the last [`LATENCY_WINDOW`] of each reaction.
//!
//! An expectation counts once its step has `min_samples` settled occurrences and its support is
//! at least `min_support`; a step without one is terminal. Declared expectations
//! ([`super::config::Declared`]) replace whatever was learned for their step.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::config::{Declared, HealthConfig};
pub use super::step::{LatencySummary, Reaction, Step};

/// Latencies kept per reaction for its distribution.
pub const LATENCY_WINDOW: usize = 512;

/// A reaction's latency summary is recomputed at each sample while it has fewer than this many,
/// then every [`SUMMARY_EVERY`] samples (a summary sorts its window).
const SUMMARY_EXACT_BELOW: usize = 128;
/// See [`SUMMARY_EXACT_BELOW`].
const SUMMARY_EVERY: u32 = 16;

/// One reaction seen after one occurrence of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedReaction {
    /// The reacting service.
    pub service: String,
    /// The reaction's event type.
    pub event_type: String,
    /// Its time minus the cause's.
    pub latency: Duration,
}

/// Whether an expectation was learned or declared in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Learned from the stored causation edges.
    Learned,
    /// Declared in the config file (`[[health.expect]]`).
    Declared,
}

/// A reaction a step is expected to get, and within how long.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Expectation {
    /// The step it follows.
    pub after: Step,
    /// The expected reaction.
    pub reaction: Reaction,
    /// Share of the step's recent occurrences followed by it (1 when declared).
    pub support: f64,
    /// Settled occurrences of the step seen.
    pub samples: u64,
    /// Its latency distribution (none when declared and never seen).
    #[schema(required)]
    pub latency: Option<LatencySummary>,
    /// How long after the step's event the reaction is due (`within_ms` in JSON, ms).
    #[serde(rename = "within_ms", serialize_with = "as_ms")]
    #[schema(value_type = f64)]
    pub within: Duration,
    /// Learned or declared.
    pub origin: Origin,
}

fn as_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// What is known of one reaction to one step.
#[derive(Debug, Clone, Default)]
struct ReactionStats {
    /// Decayed count of the step's occurrences it followed.
    weight: f64,
    /// The last latencies, µs.
    latencies: VecDeque<u64>,
    /// Their summary, as of `since_summary` samples ago.
    summary: Option<LatencySummary>,
    since_summary: u32,
}

impl ReactionStats {
    fn record(&mut self, latency: Duration) {
        self.weight += 1.0;
        if self.latencies.len() == LATENCY_WINDOW {
            self.latencies.pop_front();
        }
        self.latencies
            .push_back(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        self.since_summary += 1;
        if self.latencies.len() < SUMMARY_EXACT_BELOW || self.since_summary >= SUMMARY_EVERY {
            self.summary = self.compute_summary();
            self.since_summary = 0;
        }
    }

    fn summary(&self) -> Option<LatencySummary> {
        self.summary
    }

    fn compute_summary(&self) -> Option<LatencySummary> {
        let mut sorted: Vec<u64> = self.latencies.iter().copied().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable();
        // Nearest rank: the smallest value with at least p of the samples at or below it.
        let at = |p: f64| {
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1] as f64 / 1000.0
        };
        Some(LatencySummary {
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        })
    }
}

/// What is known of one step.
#[derive(Debug, Clone, Default)]
struct StepStats {
    /// Decayed count of its settled occurrences.
    weight: f64,
    /// Settled occurrences seen.
    samples: u64,
    reactions: BTreeMap<Reaction, ReactionStats>,
    /// Occurrences observed since its expectations were last recomputed.
    since_refresh: u32,
}

impl StepStats {
    /// The share of the step's recent occurrences `r` followed (0 before any).
    fn support(&self, r: &ReactionStats) -> f64 {
        if self.weight > 0.0 {
            (r.weight / self.weight).min(1.0)
        } else {
            0.0
        }
    }
}

/// A step's expectations are recomputed at least every this many of its occurrences (their
/// support, samples and deadlines as shown); sooner when the set of expected reactions changes.
const REFRESH_EVERY: u32 = 16;

/// Everything the model knows of one step, expected or not (what `GET /api/v1/model` shows).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StepView {
    /// The step.
    pub step: Step,
    /// Settled occurrences seen.
    pub samples: u64,
    /// Whether nothing is expected after it.
    pub terminal: bool,
    /// What it is expected to get (declared ones replace the learned).
    pub expectations: Vec<Expectation>,
    /// Every reaction seen after it, expected or not, with its support.
    pub seen: Vec<Expectation>,
}

/// The learned choreography (see the module docs).
#[derive(Debug, Clone)]
pub struct ChoreographyModel {
    config: HealthConfig,
    steps: BTreeMap<Step, StepStats>,
    /// Each step's expectations, recomputed when the step is observed: a flow's assessment
    /// asks for them once per event.
    expected: HashMap<Step, Arc<[Expectation]>>,
    none: Arc<[Expectation]>,
}

impl ChoreographyModel {
    /// An empty model with these thresholds and declarations.
    pub fn new(config: HealthConfig) -> Self {
        let mut model = Self {
            config,
            steps: BTreeMap::new(),
            expected: HashMap::new(),
            none: Arc::from(Vec::new()),
        };
        let declared: Vec<Step> = model
            .config
            .declared
            .iter()
            .map(|d| d.after.clone())
            .collect();
        for step in declared {
            model.refresh(&step);
        }
        model
    }

    fn refresh(&mut self, step: &Step) {
        let expected = self.compute_expectations(step);
        self.expected.insert(step.clone(), Arc::from(expected));
    }

    /// Its thresholds and declarations.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Learns from one settled occurrence of `step`: every reaction it got (none, if it got
    /// none). Each distinct reaction counts once per occurrence, with its earliest latency.
    pub fn observe(&mut self, step: &Step, reactions: &[ObservedReaction]) {
        let decay = 1.0 - 1.0 / self.config.horizon.max(1) as f64;
        if !self.steps.contains_key(step) {
            self.steps.insert(step.clone(), StepStats::default());
        }
        let stats = self.steps.get_mut(step).expect("inserted");
        stats.weight = stats.weight * decay + 1.0;
        stats.samples += 1;
        for r in stats.reactions.values_mut() {
            r.weight *= decay;
        }
        let mut earliest: BTreeMap<Reaction, Duration> = BTreeMap::new();
        for r in reactions {
            for key in [
                Reaction::Specific {
                    service: r.service.clone(),
                    event_type: r.event_type.clone(),
                },
                Reaction::ByService {
                    service: r.service.clone(),
                },
                Reaction::Any,
            ] {
                let latency = earliest.entry(key).or_insert(r.latency);
                *latency = (*latency).min(r.latency);
            }
        }
        for (key, latency) in earliest {
            stats.reactions.entry(key).or_default().record(latency);
        }
        stats.since_refresh += 1;
        // Recomputing a step's expectations allocates each of them: done when what is expected
        // may change (while learning, or when a reaction crosses `min_support`), else every
        // `REFRESH_EVERY` occurrences; in between, their support and samples are brought up to
        // date in place (their deadlines follow the latency summaries, every 16 samples anyway).
        let due = stats.samples <= self.config.min_samples
            || stats.since_refresh >= REFRESH_EVERY
            || self.passing_changed(step)
            || !self.update_in_place(step);
        if due {
            if let Some(stats) = self.steps.get_mut(step) {
                stats.since_refresh = 0;
            }
            self.refresh(step);
        }
    }

    /// Brings the support and samples of `step`'s cached expectations up to date without
    /// reallocating them; `false` when they are shared and cannot be changed in place.
    fn update_in_place(&mut self, step: &Step) -> bool {
        let (Some(stats), Some(cached)) = (self.steps.get(step), self.expected.get_mut(step))
        else {
            return true;
        };
        let Some(list) = Arc::get_mut(cached) else {
            return false;
        };
        for e in list.iter_mut() {
            e.samples = stats.samples;
            if e.origin == Origin::Learned {
                if let Some(r) = stats.reactions.get(&e.reaction) {
                    e.support = stats.support(r);
                }
            }
        }
        true
    }

    /// Whether the reactions of `step` that pass `min_support` now differ from those its cached
    /// expectations hold (learned steps only: a declared step's are its declarations).
    fn passing_changed(&self, step: &Step) -> bool {
        if self.config.declared_for(step).is_some() {
            return false;
        }
        let Some(stats) = self.steps.get(step) else {
            return false;
        };
        let cached = self.expected.get(step).map(|e| &e[..]).unwrap_or(&[]);
        let mut passing = stats
            .reactions
            .iter()
            .filter(|(_, r)| stats.support(r) >= self.config.min_support);
        let mut cached = cached.iter();
        loop {
            match (passing.next(), cached.next()) {
                (None, None) => return false,
                (Some((reaction, _)), Some(e)) if *reaction == e.reaction => {}
                _ => return true,
            }
        }
    }

    /// What `step` is expected to get: its declared expectations when the config declares any
    /// for it (none when declared terminal), else the learned ones that pass the thresholds.
    pub fn expectations(&self, step: &Step) -> Arc<[Expectation]> {
        self.expected.get(step).unwrap_or(&self.none).clone()
    }

    /// Whether flow health does not know yet what follows `step`: nothing is declared for it and
    /// it has fewer than `min_samples` settled occurrences.
    pub fn is_learning(&self, step: &Step) -> bool {
        self.config.declared_for(step).is_none()
            && self
                .steps
                .get(step)
                .is_none_or(|s| s.samples < self.config.min_samples)
    }

    fn compute_expectations(&self, step: &Step) -> Vec<Expectation> {
        let stats = self.steps.get(step);
        if let Some(declared) = self.config.declared_for(step) {
            return declared
                .iter()
                .filter_map(|d| self.declared_expectation(step, d, stats))
                .collect();
        }
        let Some(stats) = stats else {
            return Vec::new();
        };
        if stats.samples < self.config.min_samples {
            return Vec::new();
        }
        self.seen(step, stats)
            .into_iter()
            .filter(|e| e.support >= self.config.min_support)
            .collect()
    }

    /// Every step seen or declared, with what it is expected to get and every reaction seen.
    pub fn steps(&self) -> Vec<StepView> {
        let mut steps: Vec<&Step> = self.steps.keys().collect();
        for d in &self.config.declared {
            if !steps.contains(&&d.after) {
                steps.push(&d.after);
            }
        }
        steps.sort();
        steps
            .into_iter()
            .map(|step| {
                let expectations = self.expectations(step).to_vec();
                let stats = self.steps.get(step);
                StepView {
                    step: step.clone(),
                    samples: stats.map_or(0, |s| s.samples),
                    terminal: expectations.is_empty(),
                    seen: stats.map(|s| self.seen(step, s)).unwrap_or_default(),
                    expectations,
                }
            })
            .collect()
    }

    /// Every reaction seen after `step`, as an expectation with its support and deadline.
    fn seen(&self, step: &Step, stats: &StepStats) -> Vec<Expectation> {
        stats
            .reactions
            .iter()
            .map(|(reaction, r)| {
                let latency = r.summary();
                Expectation {
                    after: step.clone(),
                    reaction: reaction.clone(),
                    support: stats.support(r),
                    samples: stats.samples,
                    within: self.config.deadline(latency.as_ref()),
                    latency,
                    origin: Origin::Learned,
                }
            })
            .collect()
    }

    fn declared_expectation(
        &self,
        step: &Step,
        declared: &Declared,
        stats: Option<&StepStats>,
    ) -> Option<Expectation> {
        let reaction = declared.expect.clone()?;
        let within = declared.within?;
        let seen = stats.and_then(|s| s.reactions.get(&reaction));
        Some(Expectation {
            after: step.clone(),
            support: 1.0,
            samples: stats.map_or(0, |s| s.samples),
            latency: seen.and_then(ReactionStats::summary),
            reaction,
            within,
            origin: Origin::Declared,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(s: &str) -> Step {
        let (service, event_type) = s.split_once('/').unwrap();
        Step::new(service, event_type)
    }

    fn reaction(s: &str, ms: u64) -> ObservedReaction {
        let (service, event_type) = s.split_once('/').unwrap();
        ObservedReaction {
            service: service.into(),
            event_type: event_type.into(),
            latency: Duration::from_millis(ms),
        }
    }

    fn by_service(service: &str) -> Reaction {
        Reaction::ByService {
            service: service.into(),
        }
    }

    fn specific(s: &str) -> Reaction {
        let (service, event_type) = s.split_once('/').unwrap();
        Reaction::Specific {
            service: service.into(),
            event_type: event_type.into(),
        }
    }

    fn model() -> ChoreographyModel {
        ChoreographyModel::new(HealthConfig::default())
    }

    fn expected(model: &ChoreographyModel, s: &str) -> Vec<Reaction> {
        model
            .expectations(&step(s))
            .iter()
            .map(|e| e.reaction.clone())
            .collect()
    }

    #[test]
    fn a_reaction_that_always_follows_is_expected_once_there_are_enough_samples() {
        let mut m = model();
        let payment = step("payment/PaymentCreated");
        for _ in 0..m.config().min_samples - 1 {
            m.observe(&payment, &[reaction("bank/PaymentConfirmed", 40)]);
        }
        assert!(
            expected(&m, "payment/PaymentCreated").is_empty(),
            "too few samples yet"
        );
        m.observe(&payment, &[reaction("bank/PaymentConfirmed", 40)]);
        assert_eq!(
            expected(&m, "payment/PaymentCreated"),
            [
                specific("bank/PaymentConfirmed"),
                by_service("bank"),
                Reaction::Any
            ]
        );
    }

    #[test]
    fn mutually_exclusive_outcomes_still_expect_the_service_to_react() {
        let mut m = model();
        let payment = step("payment/PaymentCreated");
        for i in 0..100 {
            let outcome = if i % 5 == 0 {
                "bank/PaymentDeclined"
            } else {
                "bank/PaymentConfirmed"
            };
            m.observe(&payment, &[reaction(outcome, 40)]);
        }
        assert_eq!(
            expected(&m, "payment/PaymentCreated"),
            [by_service("bank"), Reaction::Any],
            "neither outcome alone reaches 0.9"
        );
    }

    #[test]
    fn a_step_nothing_reacts_to_is_terminal() {
        let mut m = model();
        let email = step("notification/EmailSent");
        for _ in 0..50 {
            m.observe(&email, &[]);
        }
        assert!(expected(&m, "notification/EmailSent").is_empty());
        let view = m.steps();
        assert!(view
            .iter()
            .any(|v| v.step == email && v.terminal && v.samples == 50));
    }

    #[test]
    fn a_reaction_below_the_support_threshold_is_seen_but_not_expected() {
        let mut m = model();
        let order = step("order/OrderCreated");
        for i in 0..100 {
            let reactions = if i % 2 == 0 {
                vec![reaction("fraud/Checked", 10)]
            } else {
                vec![]
            };
            m.observe(&order, &reactions);
        }
        assert!(expected(&m, "order/OrderCreated").is_empty());
        let view = m.steps().into_iter().find(|v| v.step == order).unwrap();
        let fraud = view
            .seen
            .iter()
            .find(|e| e.reaction == by_service("fraud"))
            .unwrap();
        assert!(
            (fraud.support - 0.5).abs() < 0.05,
            "support {}",
            fraud.support
        );
    }

    #[test]
    fn the_model_forgets_a_reaction_that_stopped_happening() {
        let mut m = model();
        let order = step("order/OrderCreated");
        // A long history: without decay, 2 000 occurrences would take 200 more to forget.
        for _ in 0..2000 {
            m.observe(&order, &[reaction("loyalty/PointsAdded", 20)]);
        }
        assert!(expected(&m, "order/OrderCreated").contains(&by_service("loyalty")));
        // A new version of the service stops reacting.
        let mut forgotten_after = None;
        for n in 1..=200 {
            m.observe(&order, &[]);
            if !expected(&m, "order/OrderCreated").contains(&by_service("loyalty")) {
                forgotten_after = Some(n);
                break;
            }
        }
        let n = forgotten_after.expect("still expected after 200 occurrences without it");
        assert!(n <= 30, "forgotten only after {n} occurrences");
    }

    #[test]
    fn latencies_are_summarised_by_percentiles_of_the_earliest_reaction() {
        let mut m = model();
        let payment = step("payment/PaymentCreated");
        for ms in 1..=100 {
            // A second, later reaction by the same service does not count for `bank`.
            m.observe(
                &payment,
                &[
                    reaction("bank/PaymentConfirmed", ms),
                    reaction("bank/Audited", ms + 1000),
                ],
            );
        }
        let expected = m.expectations(&payment);
        let bank = expected
            .iter()
            .find(|e| e.reaction == by_service("bank"))
            .unwrap();
        let latency = bank.latency.unwrap();
        assert_eq!(
            (
                latency.p50_ms,
                latency.p95_ms,
                latency.p99_ms,
                latency.max_ms
            ),
            (50.0, 95.0, 99.0, 100.0)
        );
    }

    #[test]
    fn the_deadline_is_the_p99_times_the_factor_with_a_floor() {
        let config = HealthConfig::default();
        let mut fast = model();
        let mut slow = model();
        let (payment, email) = (step("payment/PaymentCreated"), step("order/OrderPaid"));
        for _ in 0..100 {
            fast.observe(&payment, &[reaction("bank/PaymentConfirmed", 200)]);
            slow.observe(&email, &[reaction("notification/EmailSent", 8_000)]);
        }
        let within = |m: &ChoreographyModel, s: &Step| m.expectations(s)[0].within;
        assert_eq!(
            within(&fast, &payment),
            config.stall_floor,
            "200 ms × factor is under the floor"
        );
        assert_eq!(
            within(&slow, &email),
            Duration::from_secs_f64(8.0 * config.stall_factor)
        );
    }

    #[test]
    fn implied_reactions() {
        let (confirmed, bank) = (specific("bank/PaymentConfirmed"), by_service("bank"));
        assert!(confirmed.implies(&bank) && confirmed.implies(&Reaction::Any));
        assert!(bank.implies(&Reaction::Any));
        assert!(!bank.implies(&confirmed) && !Reaction::Any.implies(&bank));
        assert!(!confirmed.implies(&by_service("shop")));
    }
}
