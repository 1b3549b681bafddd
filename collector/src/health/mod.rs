//! Flow health: learn the choreography from the stored causation edges, and tell a stalled flow
//! from a finished one — which expected reaction is missing, after which event, and since when.
//!
//! # Layout
//! - [`model`]: the learned choreography — per step (service, event type), the reactions that
//!   follow it, their support and latency, decayed per occurrence so it follows change.
//! - [`status`]: a flow's status (`complete`, `in_progress`, `stalled`, `failed`) and what it
//!   is missing, from its events, their edges and the model.
//! - [`config`]: the thresholds, deadlines and declared expectations (`[health]` in TOML).
//!
//! Both are pure: they take facts and time and touch no store, so the same code serves an
//! incremental tracker at ingest and an answer computed at query time.

pub mod config;
pub mod dead_letter;
pub mod model;
pub mod status;

pub use config::{Declared, HealthConfig, HealthConfigError};
pub use model::{ChoreographyModel, Expectation, ObservedReaction, Origin, Reaction, Step};
pub use status::{FlowEvent, FlowFacts, FlowHealth, FlowStatus, MissingReaction};
