//! # Choreoscope collector
//!
//! Consumes every topic of a Kafka cluster, interprets each record's wire format (see
//! `docs/wire-format.md`), keeps every event in a lossless lineage store and rebuilds the causal
//! chains across services, topics and partitions when asked.
//!
//! # Layout
//! Layers point one way, each using only those above it:
//!
//! 1. [`rules`] (the config file: alias profiles and key rules) and [`dead_letter`] (a
//!    dead-letter copy and the event it is a copy of) → [`record`] (raw record →
//!    [`record::EventRecord`]; never fails, records its problems); [`span`] (what is kept of an
//!    OpenTelemetry span, read from OTLP); [`edge_rule`] (how an edge was found); [`metrics`]
//!    (Prometheus); [`clock`] (times as the API writes them); [`cluster`] (the Kafka cluster's
//!    address, TLS and SASL settings, and its refusals in one line each).
//! 2. [`store`]: the lineage store, one folder per database behind [`store::LineageStore`];
//!    idempotent batch writes and lookups.
//! 3. [`lineage`] (causal walks from one event: ancestors, descendants, cycles, missing causes),
//!    [`flow`] (the causal graph of a set of events and its ends) and [`health`] (the learned
//!    choreography and a flow's status: complete, in progress, stalled or failed) and [`groups`]
//!    (consumer-group positions against an event's record, and why a reaction is missing), with
//!    [`handling`] (lineage through spans: which consumer span processed a record, what it
//!    produced, whether it failed) below [`lineage`], [`flow`] and [`health`].
//! 4. [`query`]: the answers, shared by the API and `choreoscope query`, with [`query::QueryError`].
//! 5. Interfaces: [`http`] (the viewer, `/api/v1`, the live feed's streams, `/metrics`,
//!    `/healthz`), [`render`] (terminal trees for `choreoscope query`), [`cli`] (flags) and
//!    [`config`] (the config file: reading rules and flow health's `[health]`).
//!
//! Beside them: [`ingest`] (the consumer loop — batches, back-pressure, offsets after
//! durability — its client settings and its subscription), [`otlp`] (the OTLP trace receiver:
//! gRPC and HTTP, the sieve of messaging traces, the bounded span writer) and [`live`] (the feed
//! of durable events) feed the store and the watchers; [`retention`] deletes old events from it
//! in short batches; [`memory`] holds the process-wide allocator settings;
//! [`collector`] wires store, ingest, HTTP and live feed once, for `collect`, `serve`, `demo`
//! ([`demo`]: mock broker and sample services with trouble) and the tests.

pub mod access;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod collector;
pub mod config;
pub mod dead_letter;
pub mod demo;
pub mod edge_rule;
pub mod flow;
pub mod groups;
pub mod handling;
pub mod health;
pub mod http;
pub mod ingest;
pub mod lineage;
pub mod live;
pub mod memory;
pub mod metrics;
pub mod otlp;
pub mod query;
pub mod record;
pub mod redact;
pub mod render;
pub mod retention;
pub mod rules;
pub mod span;
pub mod store;
