//! A flow's status, from its events, their causal edges and the [`ChoreographyModel`]:
//!
//! - `failed`: an event of the flow failed (dead-lettered, or its handler raised);
//! - `stalled`: an expected reaction is overdue (past its deadline);
//! - `in_progress`: an expected reaction is missing but not yet due;
//! - `complete`: nothing expected is missing — every end is terminal.
//!
//! The same facts feed the model: [`FlowFacts::observations`] turns the flow's settled events
//! into what [`ChoreographyModel::observe`] learns from.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{ChoreographyModel, ObservedReaction, Origin, Reaction, Step};

/// A flow's status (see the module docs), worst first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatus {
    /// An event of the flow failed.
    Failed,
    /// An expected reaction is overdue.
    Stalled,
    /// An expected reaction is missing but not yet due.
    InProgress,
    /// Nothing expected is missing.
    Complete,
}

impl FlowStatus {
    /// Every status, worst first.
    pub const ALL: [FlowStatus; 4] = [
        FlowStatus::Failed,
        FlowStatus::Stalled,
        FlowStatus::InProgress,
        FlowStatus::Complete,
    ];

    /// Its name as the API, the metrics and `--status` write it (`in_progress`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Failed => "failed",
            FlowStatus::Stalled => "stalled",
            FlowStatus::InProgress => "in_progress",
            FlowStatus::Complete => "complete",
        }
    }
}

/// One event of a flow, as flow health needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEvent {
    /// Event id.
    pub id: String,
    /// Producing service (`ce_source`), if known.
    pub service: Option<String>,
    /// Event type (`ce_type`), if known.
    pub event_type: Option<String>,
    /// Best-known time, µs since the epoch.
    pub time_us: i64,
    /// Why it failed (dead-lettered, or its handler raised), if it did.
    pub failure: Option<String>,
}

impl FlowEvent {
    /// Its step, when its service and type are known.
    pub fn step(&self) -> Option<Step> {
        Some(Step::new(
            self.service.as_deref()?,
            self.event_type.as_deref()?,
        ))
    }
}

/// An expected reaction a flow is missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissingReaction {
    /// The event after which it is missing.
    pub after_event: String,
    /// That event's step.
    pub after: Step,
    /// The reaction expected.
    pub expected: Reaction,
    /// Share of the step's recent occurrences followed by it.
    pub support: f64,
    /// Settled occurrences of the step the model has seen.
    pub samples: u64,
    /// Learned or declared.
    pub origin: Origin,
    /// When it is due, µs since the epoch.
    pub deadline_us: i64,
    /// How long past due it is, ms (`None` while not yet due).
    pub overdue_ms: Option<f64>,
}

/// An event of the flow that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Event id.
    pub event: String,
    /// Why (who failed it and the exception message, as far as known).
    pub reason: String,
}

/// What flow health says of one flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowHealth {
    /// Its status.
    pub status: FlowStatus,
    /// Every expected reaction it is missing, most specific only, by deadline.
    pub missing: Vec<MissingReaction>,
    /// Its events that failed.
    pub failures: Vec<Failure>,
    /// When it turns `stalled` if nothing arrives, µs (the earliest deadline not yet passed).
    pub next_deadline_us: Option<i64>,
    /// The steps of its ends that the model has not learned yet (too few occurrences, nothing
    /// declared): nothing can be expected after them, so a `complete` flow is complete only as
    /// far as learned.
    pub learning: Vec<Step>,
}

/// A flow's events and causal edges (indexes into `events`, cause → reaction).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowFacts {
    /// Its events.
    pub events: Vec<FlowEvent>,
    /// Its causal edges, `(cause, reaction)` as indexes into `events`.
    pub edges: Vec<(usize, usize)>,
}

impl FlowFacts {
    fn reactions_of(&self, cause: usize) -> impl Iterator<Item = &FlowEvent> {
        self.edges
            .iter()
            .filter(move |(from, _)| *from == cause)
            .filter_map(|(_, to)| self.events.get(*to))
    }

    /// Each event's reactions in the flow, by index: one pass over the edges.
    fn reactions(&self) -> Vec<Vec<&FlowEvent>> {
        let mut out = vec![Vec::new(); self.events.len()];
        for &(from, to) in &self.edges {
            if let (Some(list), Some(r)) = (out.get_mut(from), self.events.get(to)) {
                list.push(r);
            }
        }
        out
    }

    /// The flow's status at `now_us` under `model` (see the module docs).
    pub fn assess(&self, model: &ChoreographyModel, now_us: i64) -> FlowHealth {
        let mut missing = Vec::new();
        let mut learning: Vec<Step> = Vec::new();
        let reactions_of = self.reactions();
        for (i, event) in self.events.iter().enumerate() {
            let Some(step) = event.step() else { continue };
            if reactions_of[i].is_empty() && model.is_learning(&step) && !learning.contains(&step) {
                learning.push(step.clone());
            }
            let reactions: Vec<(&str, &str)> = reactions_of[i]
                .iter()
                .map(|r| {
                    (
                        r.service.as_deref().unwrap_or(""),
                        r.event_type.as_deref().unwrap_or(""),
                    )
                })
                .collect();
            let expected = model.expectations(&step);
            // An exact reaction is met by the same service reacting otherwise too: outcomes of
            // one service are alternatives (a rare `PaymentDeclined` is no missing
            // `PaymentConfirmed`); that the service reacted at all is what is expected of it.
            let met = |r: &Reaction| match r {
                Reaction::Specific { service, .. } => Reaction::ByService {
                    service: service.clone(),
                }
                .is_met_by(reactions.iter().copied()),
                other => other.is_met_by(reactions.iter().copied()),
            };
            let unmet: Vec<_> = expected.iter().filter(|e| !met(&e.reaction)).collect();
            for e in &unmet {
                // Only the most specific: a missing `bank/PaymentConfirmed` is also a missing
                // reaction by `bank`, and a missing reaction at all.
                if unmet.iter().any(|other| {
                    other.reaction != e.reaction && other.reaction.implies(&e.reaction)
                }) {
                    continue;
                }
                // Due as soon as the first of what it implies is due.
                let within = unmet
                    .iter()
                    .filter(|other| e.reaction.implies(&other.reaction))
                    .map(|other| other.within)
                    .min()
                    .unwrap_or(e.within);
                let deadline_us = event.time_us.saturating_add(micros(within));
                missing.push(MissingReaction {
                    after_event: event.id.clone(),
                    after: step.clone(),
                    expected: e.reaction.clone(),
                    support: e.support,
                    samples: e.samples,
                    origin: e.origin,
                    deadline_us,
                    // Due at its deadline: from then on it is overdue, and no deadline at or
                    // before `now_us` is left pending (the tracker waits only for later ones).
                    overdue_ms: (now_us >= deadline_us)
                        .then(|| (now_us - deadline_us) as f64 / 1000.0),
                });
            }
        }
        missing
            .sort_by(|a, b| (a.deadline_us, &a.after_event).cmp(&(b.deadline_us, &b.after_event)));
        let failures: Vec<Failure> = self
            .events
            .iter()
            .filter_map(|e| {
                e.failure.as_ref().map(|reason| Failure {
                    event: e.id.clone(),
                    reason: reason.clone(),
                })
            })
            .collect();
        let status = if !failures.is_empty() {
            FlowStatus::Failed
        } else if missing.iter().any(|m| m.overdue_ms.is_some()) {
            FlowStatus::Stalled
        } else if !missing.is_empty() {
            FlowStatus::InProgress
        } else {
            FlowStatus::Complete
        };
        FlowHealth {
            status,
            next_deadline_us: missing
                .iter()
                .filter(|m| m.overdue_ms.is_none())
                .map(|m| m.deadline_us)
                .min(),
            missing,
            failures,
            learning,
        }
    }

    /// What the model learns from this flow: for every event produced before `settled_before_us`
    /// with a known step, [`FlowFacts::observation`].
    pub fn observations(&self, settled_before_us: i64) -> Vec<(Step, Vec<ObservedReaction>)> {
        (0..self.events.len())
            .filter(|&i| self.events[i].time_us < settled_before_us)
            .filter_map(|i| self.observation(i))
            .collect()
    }

    /// What the model learns from event `i`: its step and the reactions it got in the flow, with
    /// their latencies (a reaction earlier than its cause, under clock skew, counts as
    /// immediate); `None` when its step is not known.
    pub fn observation(&self, i: usize) -> Option<(Step, Vec<ObservedReaction>)> {
        let e = self.events.get(i)?;
        let step = e.step()?;
        let reactions = self
            .reactions_of(i)
            .filter_map(|r| {
                Some(ObservedReaction {
                    service: r.service.clone()?,
                    event_type: r.event_type.clone()?,
                    latency: Duration::from_micros(
                        u64::try_from(r.time_us - e.time_us).unwrap_or(0),
                    ),
                })
            })
            .collect();
        Some((step, reactions))
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::config::HealthConfig;

    #[test]
    fn a_status_is_named_as_it_is_written_in_json() {
        for status in FlowStatus::ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    const S: i64 = 1_000_000;

    fn event(id: &str, step: &str, t_s: f64) -> FlowEvent {
        let (service, event_type) = step.split_once('/').unwrap();
        FlowEvent {
            id: id.into(),
            service: Some(service.into()),
            event_type: Some(event_type.into()),
            time_us: (t_s * S as f64) as i64,
            failure: None,
        }
    }

    fn flow(events: Vec<FlowEvent>, edges: &[(usize, usize)]) -> FlowFacts {
        FlowFacts {
            events,
            edges: edges.to_vec(),
        }
    }

    /// The checkout choreography learned from `n` normal flows: order → payment → bank (80 %
    /// confirmed, 20 % declined, within 0.5 s) → email after a confirmation.
    fn learned(config: HealthConfig, n: usize) -> ChoreographyModel {
        let mut model = ChoreographyModel::new(config);
        for i in 0..n {
            let outcome = if i % 5 == 0 {
                "bank/PaymentDeclined"
            } else {
                "bank/PaymentConfirmed"
            };
            let mut events = vec![
                event("o", "order/OrderCreated", 0.0),
                event("p", "payment/PaymentCreated", 0.1),
                event("b", outcome, 0.1 + 0.0005 * (i % 100) as f64),
            ];
            let mut edges = vec![(0, 1), (1, 2)];
            if outcome.ends_with("Confirmed") {
                events.push(event("e", "notification/EmailSent", 1.0));
                edges.push((2, 3));
            }
            for (step, reactions) in flow(events, &edges).observations(i64::MAX) {
                model.observe(&step, &reactions);
            }
        }
        model
    }

    fn model() -> ChoreographyModel {
        learned(HealthConfig::default(), 200)
    }

    #[test]
    fn a_flow_whose_every_end_is_terminal_is_complete() {
        let done = flow(
            vec![
                event("o", "order/OrderCreated", 0.0),
                event("p", "payment/PaymentCreated", 0.1),
                event("b", "bank/PaymentConfirmed", 0.2),
                event("e", "notification/EmailSent", 0.9),
            ],
            &[(0, 1), (1, 2), (2, 3)],
        );
        let health = done.assess(&model(), 3600 * S);
        assert_eq!(health.status, FlowStatus::Complete);
        assert!(health.missing.is_empty() && health.next_deadline_us.is_none());
    }

    #[test]
    fn the_less_frequent_of_two_exclusive_outcomes_is_complete_too() {
        let declined = flow(
            vec![
                event("o", "order/OrderCreated", 0.0),
                event("p", "payment/PaymentCreated", 0.1),
                event("b", "bank/PaymentDeclined", 0.2),
            ],
            &[(0, 1), (1, 2)],
        );
        assert_eq!(
            declined.assess(&model(), 3600 * S).status,
            FlowStatus::Complete
        );
    }

    #[test]
    fn a_missing_reaction_not_yet_due_is_in_progress_until_its_deadline() {
        let waiting = flow(
            vec![
                event("o", "order/OrderCreated", 0.0),
                event("p", "payment/PaymentCreated", 0.1),
            ],
            &[(0, 1)],
        );
        let health = waiting.assess(&model(), S);
        assert_eq!(health.status, FlowStatus::InProgress);
        let floor = crate::health::config::DEFAULT_STALL_FLOOR.as_micros() as i64;
        assert_eq!(
            health.next_deadline_us,
            Some(S / 10 + floor),
            "the floor beats 3 × 50 ms"
        );
        assert_eq!(health.missing[0].overdue_ms, None);
    }

    #[test]
    fn an_overdue_reaction_stalls_the_flow_and_says_what_is_missing_where() {
        let stuck = flow(
            vec![
                event("o", "order/OrderCreated", 0.0),
                event("p", "payment/PaymentCreated", 0.1),
            ],
            &[(0, 1)],
        );
        // 60 s past due, while the hop's learned p99 is under a second.
        let floor = crate::health::config::DEFAULT_STALL_FLOOR.as_micros() as i64;
        let now = S / 10 + floor + 60 * S;
        let health = stuck.assess(&model(), now);
        assert_eq!(health.status, FlowStatus::Stalled);
        assert_eq!(
            health.missing.len(),
            1,
            "only the most specific: {:?}",
            health.missing
        );
        let m = &health.missing[0];
        assert_eq!(m.after_event, "p");
        assert_eq!(m.after, Step::new("payment", "PaymentCreated"));
        assert_eq!(
            m.expected,
            Reaction::ByService {
                service: "bank".into()
            }
        );
        assert_eq!(
            (m.support, m.samples, m.origin),
            (1.0, 200, Origin::Learned)
        );
        assert_eq!(m.deadline_us, S / 10 + floor);
        assert_eq!(m.overdue_ms, Some(60_000.0));
        assert_eq!(health.next_deadline_us, None);
    }

    #[test]
    fn a_missing_reaction_in_the_middle_of_a_fan_out_is_found_too() {
        let mut model = ChoreographyModel::new(HealthConfig::default());
        for _ in 0..50 {
            model.observe(
                &Step::new("bank", "PaymentConfirmed"),
                &[
                    ObservedReaction {
                        service: "inventory".into(),
                        event_type: "Reserved".into(),
                        latency: Duration::from_millis(5),
                    },
                    ObservedReaction {
                        service: "notification".into(),
                        event_type: "EmailSent".into(),
                        latency: Duration::from_millis(5),
                    },
                ],
            );
        }
        let half = flow(
            vec![
                event("b", "bank/PaymentConfirmed", 0.0),
                event("i", "inventory/Reserved", 0.01),
            ],
            &[(0, 1)],
        );
        let health = half.assess(&model, 3600 * S);
        assert_eq!(health.status, FlowStatus::Stalled);
        let expected: Vec<String> = health
            .missing
            .iter()
            .map(|m| m.expected.to_string())
            .collect();
        assert_eq!(expected, ["notification/EmailSent"]);
    }

    #[test]
    fn a_failed_event_fails_the_flow_whatever_else_is_missing() {
        let mut events = vec![
            event("o", "order/OrderCreated", 0.0),
            event("p", "payment/PaymentCreated", 0.1),
        ];
        events[1].failure =
            Some("bank-group: java.lang.IllegalStateException: card expired".into());
        let health = flow(events, &[(0, 1)]).assess(&model(), 3600 * S);
        assert_eq!(health.status, FlowStatus::Failed);
        assert_eq!(
            health.failures,
            [Failure {
                event: "p".into(),
                reason: "bank-group: java.lang.IllegalStateException: card expired".into()
            }]
        );
        assert_eq!(
            health.missing.len(),
            1,
            "the missing reaction is still named"
        );
    }

    #[test]
    fn a_declared_terminal_step_completes_a_flow_the_model_would_call_stalled() {
        let config = HealthConfig::from_toml(
            "[[expect]]\nafter = \"payment/PaymentCreated\"\nterminal = true",
        )
        .unwrap();
        let stuck = flow(
            vec![
                event("o", "order/OrderCreated", 0.0),
                event("p", "payment/PaymentCreated", 0.1),
            ],
            &[(0, 1)],
        );
        assert_eq!(
            stuck.assess(&learned(config, 200), 3600 * S).status,
            FlowStatus::Complete
        );
    }

    #[test]
    fn a_declared_expectation_stalls_a_flow_nothing_was_learned_for() {
        let config = HealthConfig::from_toml(
            "[[expect]]\nafter = \"notification/EmailSent\"\nexpect = \"audit/Archived\"\nwithin = \"2s\"",
        )
        .unwrap();
        let mailed = flow(vec![event("e", "notification/EmailSent", 0.0)], &[]);
        let model = learned(config, 0);
        assert_eq!(mailed.assess(&model, S).status, FlowStatus::InProgress);
        let late = mailed.assess(&model, 3 * S);
        assert_eq!(late.status, FlowStatus::Stalled);
        assert_eq!(late.missing[0].origin, Origin::Declared);
        assert_eq!(late.missing[0].overdue_ms, Some(1000.0));
    }

    #[test]
    fn a_flow_ending_at_a_step_not_learned_yet_is_complete_as_far_as_learned() {
        let waiting = flow(
            vec![
                event("o", "order/OrderCreated", 0.0),
                event("p", "payment/PaymentCreated", 0.1),
            ],
            &[(0, 1)],
        );
        let early = waiting.assess(&learned(HealthConfig::default(), 5), 3600 * S);
        assert_eq!(early.status, FlowStatus::Complete);
        assert_eq!(early.learning, [Step::new("payment", "PaymentCreated")]);
        assert!(
            waiting.assess(&model(), 3600 * S).learning.is_empty(),
            "once learned, it is expected a reaction"
        );
    }

    #[test]
    fn an_event_without_a_service_or_type_is_expected_nothing() {
        let mut anonymous = event("x", "payment/PaymentCreated", 0.0);
        anonymous.service = None;
        assert_eq!(
            flow(vec![anonymous], &[]).assess(&model(), 3600 * S).status,
            FlowStatus::Complete
        );
    }

    #[test]
    fn only_settled_events_are_learned_from() {
        let f = flow(
            vec![
                event("o", "order/OrderCreated", 0.0),
                event("p", "payment/PaymentCreated", 5.0),
            ],
            &[(0, 1)],
        );
        let learned = f.observations(3 * S);
        assert_eq!(learned.len(), 1);
        assert_eq!(learned[0].0, Step::new("order", "OrderCreated"));
        assert_eq!(learned[0].1[0].latency, Duration::from_secs(5));
    }
}
