//! Flow health: learn the choreography from the stored causation edges, and tell a stalled flow
//! from a finished one — which expected reaction is missing, after which event, and since when.
//!
//! # Layout
//! - [`model`]: the learned choreography — per step (service, event type), the reactions that
//!   follow it, their support and latency, decayed per occurrence so it follows change.
//! - [`status`]: a flow's status (`complete`, `in_progress`, `stalled`, `failed`) and what it
//!   is missing, from its events, their edges and the model.
//! - [`step`]: the vocabulary — a step (service, event type), a reaction, a latency summary.
//! - [`config`]: the thresholds, deadlines and declared expectations (`[health]` in TOML).
//! - [`service`]: the collector's [`service::HealthHandle`] and the task that feeds it from the
//!   live feed, backfilled from the store at start.
//! - [`tracker`]: all of it kept incrementally as events become durable — open flows, their
//!   deadlines, the model learning from settled events, counts and groups of stopped flows.
//!
//! All but `service` is pure: it takes facts and time and touches no store, so the same code
//! serves the incremental tracker and an answer computed at query time.

pub mod config;
pub mod model;
pub mod service;
pub mod status;
pub mod step;
pub mod tracker;

pub use config::{Declared, HealthConfig, HealthConfigError};
pub use model::{ChoreographyModel, Expectation, ObservedReaction, Origin, Reaction, Step};
pub use service::HealthHandle;
pub use status::{FlowEvent, FlowFacts, FlowHealth, FlowStatus, MissingReaction};
pub use tracker::{FlowSummary, StoppedGroup, TrackedEvent, Tracker, TrackerConfig};
