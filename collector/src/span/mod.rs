//! What the collector keeps of an OpenTelemetry span: enough to follow a record through the
//! services that handled it, not a second trace store (docs/otlp.md, "What is kept").
//!
//! A span here is one row: its ids and parent, kind, name, the service that sent it
//! (`service.name`), start and end, whether it failed and the first exception it recorded, its
//! links, and the messaging attributes (`messaging.*`) under any of the names the semantic
//! conventions have used. [`convert`] reads them from an OTLP export request, rejecting spans
//! whose ids the protocol calls invalid.

pub mod convert;

use serde::Serialize;

/// Longest kept span name, service, attribute value or status message, in bytes; longer ones are
/// cut at a character boundary.
pub const MAX_TEXT: usize = 256;

/// Longest kept exception message, in bytes.
pub const MAX_EXCEPTION_MESSAGE: usize = 2048;

/// Most links kept per span (a batch consumer's span links every record of its batch).
pub const MAX_LINKS: usize = 1024;

/// A span's kind, numbered as OTLP numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// Not said.
    Unspecified = 0,
    /// Inside a process.
    Internal = 1,
    /// Handles a synchronous request.
    Server = 2,
    /// Makes a synchronous request.
    Client = 3,
    /// Sends a message.
    Producer = 4,
    /// Receives or processes a message.
    Consumer = 5,
}

impl SpanKind {
    /// The kind OTLP's number stands for (unknown numbers are [`SpanKind::Unspecified`]).
    pub fn from_otlp(n: i32) -> Self {
        match n {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// Its OTLP number, as stored.
    pub fn number(self) -> i32 {
        self as i32
    }
}

/// The exception a span recorded (its first `exception` event).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Exception {
    /// `exception.type`.
    pub kind: Option<String>,
    /// `exception.message`.
    pub message: Option<String>,
}

/// A span's messaging attributes, whichever version of the semantic conventions named them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Messaging {
    /// `messaging.system` (`kafka`).
    pub system: Option<String>,
    /// The topic: `messaging.destination.name` (or the older `messaging.destination`).
    pub destination: Option<String>,
    /// `messaging.destination.partition.id`, `messaging.kafka.destination.partition` or
    /// `messaging.kafka.partition`.
    pub partition: Option<i32>,
    /// `messaging.kafka.offset` or `messaging.kafka.message.offset`.
    pub offset: Option<i64>,
    /// `messaging.consumer.group.name`, `messaging.kafka.consumer.group` or
    /// `messaging.kafka.consumer_group`.
    pub consumer_group: Option<String>,
    /// `messaging.message.id` (or `messaging.message_id`).
    pub message_id: Option<String>,
    /// `messaging.operation.type`, `messaging.operation` or `messaging.operation.name`
    /// (`publish`, `send`, `receive`, `process`, …).
    pub operation: Option<String>,
}

/// The part of a span the collector keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRecord {
    /// Trace id, 32 lower-case hex digits.
    pub trace_id: String,
    /// Span id, 16 lower-case hex digits.
    pub span_id: String,
    /// The parent span's id (same trace), if any.
    pub parent_span_id: Option<String>,
    /// Its kind.
    pub kind: SpanKind,
    /// Its name.
    pub name: String,
    /// `service.name` of the resource that sent it.
    pub service: Option<String>,
    /// Start, µs since the Unix epoch.
    pub start_us: i64,
    /// End, µs since the Unix epoch.
    pub end_us: i64,
    /// Its status is ERROR.
    pub failed: bool,
    /// The status message, if any.
    pub status_message: Option<String>,
    /// The first exception it recorded, if any.
    pub exception: Option<Exception>,
    /// Its messaging attributes.
    pub messaging: Messaging,
    /// The spans it links to, `(trace id, span id)` (a consumer's link to the producer's context).
    pub links: Vec<(String, String)>,
}

impl SpanRecord {
    /// Whether the span is part of messaging: a producer or consumer span, or one that names a
    /// messaging system. The traces of such spans are kept whole.
    pub fn is_messaging(&self) -> bool {
        matches!(self.kind, SpanKind::Producer | SpanKind::Consumer)
            || self.messaging.system.is_some()
    }
}

/// `s` without NUL characters (PostgreSQL's text refuses them), cut to at most `max` bytes at a
/// character boundary.
pub(crate) fn cut(mut s: String, max: usize) -> String {
    if s.contains('\0') {
        s.retain(|c| c != '\0');
    }
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
