//! The rows the span tables answer (see `collector/src/span` for what is kept).

use crate::span::{Exception, SpanKind};

/// Columns of [`SpanRow`], in order.
pub(super) const SPAN_COLUMNS: &str = "s.trace_id, s.span_id, s.parent_span_id, s.kind, s.name, \
    s.service, s.start_us, s.end_us, s.failed, s.status_message, s.exception_type, \
    s.exception_message, s.destination, s.kafka_partition, s.kafka_offset, s.consumer_group, \
    s.message_id, s.received_us";

/// A stored span.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SpanRow {
    /// Trace id (hex).
    pub trace_id: String,
    /// Span id (hex).
    pub span_id: String,
    /// Parent span id, if any.
    pub parent_span_id: Option<String>,
    /// OTLP's kind number (see [`SpanRow::span_kind`]).
    pub kind: i32,
    /// Span name.
    pub name: String,
    /// `service.name`.
    pub service: Option<String>,
    /// Start, µs.
    pub start_us: i64,
    /// End, µs.
    pub end_us: i64,
    /// Status ERROR.
    pub failed: bool,
    /// Status message.
    pub status_message: Option<String>,
    /// `exception.type` of its first exception event.
    pub exception_type: Option<String>,
    /// `exception.message` of its first exception event.
    pub exception_message: Option<String>,
    /// Topic (`messaging.destination.name`).
    pub destination: Option<String>,
    /// Partition.
    pub kafka_partition: Option<i32>,
    /// Offset.
    pub kafka_offset: Option<i64>,
    /// Consumer group.
    pub consumer_group: Option<String>,
    /// `messaging.message.id`.
    pub message_id: Option<String>,
    /// When the collector stored it, µs.
    pub received_us: i64,
}

impl SpanRow {
    /// Its kind.
    pub fn span_kind(&self) -> SpanKind {
        SpanKind::from_otlp(self.kind)
    }

    /// `(trace id, span id)`.
    pub fn key(&self) -> (String, String) {
        (self.trace_id.clone(), self.span_id.clone())
    }

    /// The position of the record it names, when it names one.
    pub fn position(&self) -> Option<(String, i32, i64)> {
        Some((
            self.destination.clone()?,
            self.kafka_partition?,
            self.kafka_offset?,
        ))
    }

    /// The exception it recorded, or its status message when it failed without one.
    pub fn exception(&self) -> Option<Exception> {
        if self.exception_type.is_some() || self.exception_message.is_some() {
            return Some(Exception {
                kind: self.exception_type.clone(),
                message: self.exception_message.clone(),
            });
        }
        (self.failed && self.status_message.is_some()).then(|| Exception {
            kind: None,
            message: self.status_message.clone(),
        })
    }
}

/// A span's link.
#[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::FromRow)]
pub struct LinkRow {
    /// The linking span's trace id.
    pub trace_id: String,
    /// The linking span's id.
    pub span_id: String,
    /// The linked trace id.
    pub linked_trace_id: String,
    /// The linked span id.
    pub linked_span_id: String,
}

/// Spans received from one service.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SpanServiceRow {
    /// `service.name` (empty when none was sent).
    pub service: String,
    /// Spans stored.
    pub received: i64,
    /// Of which consumer spans.
    pub consumer: i64,
    /// Of which producer spans.
    pub producer: i64,
    /// Of which failed.
    pub failed: i64,
    /// The newest span's start, µs.
    pub last_us: i64,
}

/// Consumer spans of one service on one topic.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsumeRow {
    /// The topic (`messaging.destination.name`).
    pub topic: String,
    /// The service (`service.name`).
    pub service: Option<String>,
    /// Consumer spans.
    pub handlings: i64,
}

/// How the recent events of one service arrive.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CoverageRow {
    /// The producing service: `ce_source`, else the `service.name` of the span that produced the
    /// record; empty when neither is known.
    pub service: String,
    /// Events.
    pub events: i64,
    /// With an id header (`ce_id` or an alias), not one derived from the position.
    pub with_ce_id: i64,
    /// With a causation id.
    pub with_causation: i64,
    /// With a correlation id.
    pub with_correlation: i64,
    /// With a `traceparent`.
    pub with_traceparent: i64,
    /// With a `baggage` header.
    pub with_baggage: i64,
}
