//! # Choreoscope collector
//!
//! Consumes every topic of a Kafka cluster, interprets each record's wire format (see
//! `docs/wire-format.md`), keeps every event in a lossless lineage store and rebuilds the causal
//! chains across services, topics and partitions when asked.
//!
//! # Layout
//! - [`rules`]: config file — per-topic alias profiles and JSON-pointer key rules.
//! - [`record`]: raw record → [`record::EventRecord`]; never fails, records its problems.
//! - [`store`]: the lineage store (SQLite, PostgreSQL), idempotent batch writes and lookups.
//! - [`lineage`]: causal graph walks over the store (ancestors, descendants, cycles, missing causes).
//! - [`flow`]: the causal graph of a set of events (a key, a trace, a correlation) and its ends.
//! - [`ingest`]: the consumer loop — batches, back-pressure, offsets after durability — its
//!   client settings, and what it subscribes to.
//! - [`metrics`]: Prometheus metrics.
//! - [`api`]: the query API under `/api/v1` and the answers it shares with `choreoscope query`.
//! - [`demo`]: `choreoscope demo` — mock broker, sample services with trouble, collector, API.
//! - [`render`]: terminal rendering of answers (causal trees) for `choreoscope query`.
//! - [`live`]: the live feed of durable events, for watchers of a flow (server-sent events).
//! - [`web`]: the web viewer (`ui/`), embedded in the binary and served at `/`.
//! - [`http`]: the HTTP server: the viewer, the API, `/metrics`, `/healthz`.

pub mod cli;
pub mod collector;
pub mod demo;
pub mod flow;
pub mod http;
pub mod ingest;
pub mod lineage;
pub mod live;
pub mod memory;
pub mod metrics;
pub mod query;
pub mod record;
pub mod render;
pub mod rules;
pub mod store;
