//! # Choreoscope SDK
//!
//! Instrument a Kafka service in a few lines so that every event it produces carries its trace
//! (W3C `traceparent`, `tracestate`, `baggage`), its id, the id of the event that caused it and the
//! id of the whole conversation, following the CloudEvents Kafka binding — and so that
//! consume → handle → produce is one causal chain in your traces and in Choreoscope.
//!
//! ```no_run
//! use choreoscope_sdk::{OutgoingEvent, TracedConsumer, TracedProducer};
//! # async fn run(consumer: rdkafka::consumer::StreamConsumer, producer: rdkafka::producer::FutureProducer) -> anyhow::Result<()> {
//! let consumer = TracedConsumer::new(consumer, "payment");
//! let producer = TracedProducer::new(producer, "payment");
//! loop {
//!     let received = consumer.recv().await?;
//!     received.handle(async {
//!         // Caused by `received`, same conversation, same trace, keys carried forward.
//!         producer.send(OutgoingEvent::new("payments", "PaymentCaptured")).await
//!     }).await?;
//! }
//! # }
//! ```
//!
//! # Layout
//! - [`headers`]: header names of the wire format and [`RecordHeaders`], a binary-safe header list.
//! - [`traceparent`], [`baggage`]: strict W3C parsers with explained errors.
//! - [`aliases`]: which other headers may carry ids (generic table and framework profiles).
//! - [`context`]: [`EventContext`], what a consumed record's headers say, read leniently.
//! - [`problem`]: [`HeaderProblem`], everything a reader could not use, and why.
//! - [`event`]: [`OutgoingEvent`] and [`stamp`], which writes the wire format.
//! - [`carrier`]: OpenTelemetry `Injector`/`Extractor` over Kafka headers.
//! - [`scope`]: the event being handled, so produces know their cause.
//! - [`spans`], [`semconv`]: `send {topic}` / `process {topic}` spans.
//! - [`producer`], [`consumer`]: [`TracedProducer`] and [`TracedConsumer`].
//!
//! The wire format is specified in `docs/wire-format.md`.

pub mod aliases;
pub mod baggage;
pub mod carrier;
pub mod consumer;
pub mod context;
pub mod event;
pub mod headers;
pub mod problem;
pub mod producer;
pub mod scope;
pub mod semconv;
pub mod spans;
pub mod traceparent;

pub use aliases::AliasTable;
pub use carrier::{HeaderExtractor, HeaderInjector, KafkaHeaderExtractor};
pub use consumer::{Received, ReceivedOwned, TracedConsumer};
pub use context::{CloudEventAttributes, EventContext, Sourced};
pub use event::{stamp, OutgoingEvent, StampError, StampedEvent};
pub use headers::RecordHeaders;
pub use problem::HeaderProblem;
pub use producer::{SendError, Sent, TracedProducer};
pub use scope::{current_event, handling, handling_sync};
pub use traceparent::{TraceParent, TraceParentError};
