//! The SDK's `tracing` spans, shaped by the OpenTelemetry messaging conventions so that
//! `tracing-opentelemetry` exports them as a PRODUCER span `send {topic}` and a CONSUMER span
//! `process {topic}` (see [`crate::semconv`] for the attribute names).
//!
//! # Parent or link?
//! The process span is the **child** of the producer's `send` span (the `traceparent` of the
//! record), not a new trace with a link. A choreography is one business flow, and parent/child keeps
//! the whole of it — every hop across services, topics and partitions — in one trace, which is what
//! a user opening the flow in Jaeger or Tempo expects to see. The conventions allow this for
//! single-message processing; batch processing, where one span handles many records, should link
//! instead, and [`process_span`] callers doing batches can use
//! `OpenTelemetrySpanExt::add_link` with each record's context.

use rdkafka::message::Message;
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::EventContext;

/// A PRODUCER span for sending event `event_id` to `topic`; partition and offset are recorded on
/// delivery by [`record_delivery`].
pub fn send_span(topic: &str, event_id: &str, key: Option<&str>) -> Span {
    tracing::info_span!(
        target: "choreoscope_sdk",
        "send",
        otel.name = %format_args!("send {topic}"),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = "kafka",
        messaging.operation.type = "send",
        messaging.destination.name = %topic,
        messaging.message.id = %event_id,
        messaging.kafka.message.key = key,
        messaging.destination.partition.id = Empty,
        messaging.kafka.offset = Empty,
        error = Empty,
    )
}

/// Records where a sent record landed on its send span.
pub fn record_delivery(span: &Span, partition: i32, offset: i64) {
    span.record("messaging.destination.partition.id", partition.to_string());
    span.record("messaging.kafka.offset", offset);
}

/// Marks a span as failed with `error`.
pub fn record_error(span: &Span, error: &dyn std::fmt::Display) {
    span.record("otel.status_code", "ERROR");
    span.record("error", tracing::field::display(error));
}

/// A CONSUMER span for processing `message`, the child of the producer's span when the record has
/// a valid `traceparent` (and a new root otherwise: no parent is invented).
pub fn process_span<M: Message>(message: &M, context: &EventContext, group: &str) -> Span {
    let key = message.key().and_then(|k| std::str::from_utf8(k).ok());
    let span = tracing::info_span!(
        target: "choreoscope_sdk",
        "process",
        otel.name = %format_args!("process {}", message.topic()),
        otel.kind = "consumer",
        otel.status_code = Empty,
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.destination.name = message.topic(),
        messaging.destination.partition.id = %message.partition(),
        messaging.kafka.offset = message.offset(),
        messaging.kafka.message.key = key,
        messaging.consumer.group.name = group,
        messaging.message.id = context.id(),
        error = Empty,
    );
    if context.trace_parent.is_some() || !context.keys.is_empty() {
        // Fails only when no OpenTelemetry layer is installed, where there is no span to parent.
        let _ = span.set_parent(context.otel_context());
    }
    span
}
