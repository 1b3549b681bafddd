//! The vocabulary of flow health: a step of the choreography, a reaction to it, a latency
//! distribution.

use std::fmt;

use serde::Serialize;
use utoipa::ToSchema;

/// A step of the choreography: a service producing an event type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
pub struct Step {
    /// The producing service (`ce_source`).
    pub service: String,
    /// The event type (`ce_type`).
    pub event_type: String,
}

impl Step {
    /// The step of `service` producing `event_type`.
    pub fn new(service: impl Into<String>, event_type: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            event_type: event_type.into(),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.service, self.event_type)
    }
}

/// What may follow a step.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reaction {
    /// This service reacts with this event type.
    Specific {
        /// The reacting service.
        service: String,
        /// The reaction's event type.
        event_type: String,
    },
    /// This service reacts, with any event type.
    ByService {
        /// The reacting service.
        service: String,
    },
    /// Some service reacts.
    Any,
}

impl Reaction {
    /// Whether one of `reactions` (service, event type) is this reaction.
    pub fn is_met_by<'a>(&self, mut reactions: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        match self {
            Reaction::Specific {
                service,
                event_type,
            } => reactions.any(|(s, t)| s == service && t == event_type),
            Reaction::ByService { service } => reactions.any(|(s, _)| s == service),
            Reaction::Any => reactions.next().is_some(),
        }
    }

    /// Whether meeting this reaction means `other` is met too: a specific reaction is a
    /// reaction by its service, and any reaction is some reaction.
    pub fn implies(&self, other: &Reaction) -> bool {
        match (self, other) {
            (a, b) if a == b => true,
            (_, Reaction::Any) => true,
            (Reaction::Specific { service, .. }, Reaction::ByService { service: other }) => {
                service == other
            }
            _ => false,
        }
    }

    /// The service this reaction names, if any.
    pub fn service(&self) -> Option<&str> {
        match self {
            Reaction::Specific { service, .. } | Reaction::ByService { service } => Some(service),
            Reaction::Any => None,
        }
    }
}

impl fmt::Display for Reaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reaction::Specific {
                service,
                event_type,
            } => write!(f, "{service}/{event_type}"),
            Reaction::ByService { service } => write!(f, "{service}"),
            Reaction::Any => write!(f, "any reaction"),
        }
    }
}

/// A latency distribution (over the last `model::LATENCY_WINDOW` samples of a reaction).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct LatencySummary {
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}
