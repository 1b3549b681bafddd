//! Consumer-group positions: where every consumer group of the cluster stands against an
//! event's record — `consumed`, `pending` (and how far behind) or `inactive` — and the diagnosis
//! that says why an expected reaction is missing (the group read the event and did nothing, is
//! lagging, has no members, or nobody reads the topic).
//!
//! # Layout
//! - [`position`]: the vocabulary — [`GroupPosition`], [`GroupState`], [`Diagnosis`],
//!   [`DiagnosisKind`] (times in µs; the query layer renders them).
//! - [`book`]: what the polls saw, kept for ten minutes per group and partition, and what it
//!   says about one record; which service a group consumes for. Pure.
//! - [`config`]: the poll interval and declared group services (`[consumer_groups]` in TOML).
//! - [`poll`]: one poll of the cluster (metadata, ListGroups + DescribeGroups, OffsetFetch per
//!   group, high watermarks), blocking, each request with a timeout.
//! - [`service`]: the collector's [`GroupsHandle`] and the task that polls into it.
//! - [`peers`]: the collector's own group — a warning when a collector tracking flow health
//!   shares it with other members (docs/deployment.md).
//!
//! What the test broker (tansu) answers to these requests is in `docs/health.md`.

pub mod book;
pub mod config;
pub mod peers;
pub mod poll;
pub mod position;
pub mod service;

pub use book::{GroupBook, GroupLag, Poll, PolledGroup};
pub use config::{GroupsConfig, GroupsConfigError, DEFAULT_POLL_EVERY};
pub use position::{Diagnosis, DiagnosisKind, GroupPosition, GroupState};
pub use service::GroupsHandle;
