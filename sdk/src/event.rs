//! [`OutgoingEvent`], a record about to be produced, and [`stamp`], which fills in the wire format:
//! ids, causation, correlation, trace context, business keys and CloudEvents attributes.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use serde::Serialize;

use crate::baggage::{self, BaggageError};
use crate::carrier::HeaderInjector;
use crate::context::EventContext;
use crate::headers::{self, RecordHeaders};
use crate::traceparent::TraceParent;

/// A record to produce, before the SDK stamps it.
///
/// ```
/// use choreoscope_sdk::OutgoingEvent;
/// let event = OutgoingEvent::json("payments", "PaymentCaptured", &serde_json::json!({"amount": 12}))
///     .unwrap()
///     .subject("order/o-1001")
///     .record_key("o-1001")
///     .business_key("order.id", "o-1001");
/// assert_eq!(event.topic(), "payments");
/// ```
#[derive(Debug, Clone)]
pub struct OutgoingEvent {
    topic: String,
    event_type: String,
    id: Option<String>,
    subject: Option<String>,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    content_type: Option<String>,
    time: Option<DateTime<Utc>>,
    keys: BTreeMap<String, String>,
    headers: RecordHeaders,
}

impl OutgoingEvent {
    /// An event of CloudEvents `type` `event_type` for `topic`, with no payload yet.
    pub fn new(topic: impl Into<String>, event_type: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            event_type: event_type.into(),
            id: None,
            subject: None,
            key: None,
            payload: None,
            content_type: None,
            time: None,
            keys: BTreeMap::new(),
            headers: RecordHeaders::new(),
        }
    }

    /// An event whose payload is `data` as JSON, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(
        topic: impl Into<String>,
        event_type: impl Into<String>,
        data: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::new(topic, event_type)
            .payload(serde_json::to_vec(data)?)
            .content_type("application/json"))
    }

    /// Uses `id` as the event id instead of a fresh UUIDv7 (e.g. an outbox row's id).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The business entity, e.g. `order/o-1001` (CloudEvents `subject`).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The Kafka record key (partitioning).
    pub fn record_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The record value.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = Some(payload.into());
        self
    }

    /// CloudEvents `datacontenttype`, written as the `content-type` header.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// The event's time (CloudEvents `time`); defaults to the moment it is stamped.
    pub fn time(mut self, time: DateTime<Utc>) -> Self {
        self.time = Some(time);
        self
    }

    /// A business key carried in baggage by this event and every event it causes.
    pub fn business_key(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.keys.insert(name.into(), value.into());
        self
    }

    /// An extra header of the application's own. Wire-format headers set by the SDK replace
    /// application headers of the same name.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push(name, Some(value.into()));
        self
    }

    /// The destination topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The event id set with [`OutgoingEvent::id`], or a fresh UUIDv7 assigned now.
    pub(crate) fn ensure_id(&mut self) -> &str {
        self.id
            .get_or_insert_with(|| uuid::Uuid::now_v7().to_string())
            .as_str()
    }

    /// The record key as text, when it is UTF-8.
    pub(crate) fn key_text(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }
}

/// Why an event could not be stamped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StampError {
    /// The business keys cannot be written as W3C baggage.
    #[error(transparent)]
    Baggage(#[from] BaggageError),
    /// The service name is empty; `ce_source` is required.
    #[error("service name (ce_source) must not be empty")]
    EmptySource,
    /// The event type is empty; `ce_type` is required.
    #[error("event type (ce_type) must not be empty")]
    EmptyType,
    /// The event id is empty; `ce_id` is required.
    #[error("event id (ce_id) must not be empty")]
    EmptyId,
}

/// A stamped record, ready to produce.
#[derive(Debug, Clone)]
pub struct StampedEvent {
    /// Destination topic.
    pub topic: String,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub payload: Option<Vec<u8>>,
    /// Every header, wire format included.
    pub headers: RecordHeaders,
    /// `ce_id`.
    pub event_id: String,
    /// `ce_causationid`, absent on a flow's first event.
    pub causation_id: Option<String>,
    /// `ce_correlationid`.
    pub correlation_id: String,
    /// `traceparent`.
    pub trace_parent: TraceParent,
}

/// The span context to write as `traceparent`: the current span's when it is valid; otherwise a
/// new span id in the cause's trace (or a new trace for a flow's first event), so that services
/// without an OpenTelemetry pipeline still stamp a connected trace.
fn outgoing_span(current: &Context, cause: Option<&EventContext>) -> SpanContext {
    let span = current.span();
    let sc = span.span_context();
    if sc.is_valid() {
        return sc.clone();
    }
    let ids = RandomIdGenerator::default();
    let (trace_id, flags, state) = match cause.and_then(|c| c.trace_parent.map(|tp| (tp, c))) {
        Some((tp, c)) => (
            tp.trace_id,
            tp.flags,
            c.trace_state
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or_default(),
        ),
        None => (
            ids.new_trace_id(),
            TraceFlags::SAMPLED,
            TraceState::default(),
        ),
    };
    SpanContext::new(trace_id, ids.new_span_id(), flags, false, state)
}

/// Stamps `event` as produced by `service` while handling `cause` (if any), inside the
/// OpenTelemetry context `current` (normally the producer span's).
///
/// - `ce_id`: the event's own id, or a fresh UUIDv7;
/// - `ce_causationid`: the cause's id (absent when there is no cause or it has no id);
/// - `ce_correlationid`: inherited from the cause; a cause without one started its own
///   conversation, so its id is used; with no cause, the new event's own id;
/// - `traceparent`/`tracestate`: from `current`'s span (see `outgoing_span` for the fallback);
/// - `baggage`: the cause's keys, then `current`'s baggage, then the event's own keys (later wins);
/// - CloudEvents `specversion`, `source`, `type`, `time`, `subject`, `content-type`.
pub fn stamp(
    mut event: OutgoingEvent,
    service: &str,
    cause: Option<&EventContext>,
    current: &Context,
) -> Result<StampedEvent, StampError> {
    if service.trim().is_empty() {
        return Err(StampError::EmptySource);
    }
    if event.event_type.trim().is_empty() {
        return Err(StampError::EmptyType);
    }
    let event_id = event.ensure_id().to_owned();
    if event_id.trim().is_empty() {
        return Err(StampError::EmptyId);
    }
    let causation_id = cause.and_then(|c| c.id()).map(str::to_owned);
    let correlation_id = cause
        .and_then(EventContext::conversation)
        .unwrap_or(&event_id)
        .to_owned();

    let mut keys = cause.map(|c| c.keys.clone()).unwrap_or_default();
    for (k, v) in current.baggage().iter() {
        keys.insert(k.to_string(), v.0.to_string());
    }
    keys.append(&mut event.keys);

    let span = outgoing_span(current, cause);
    let trace_parent =
        TraceParent::from_span_context(&span).expect("outgoing span context is always valid");

    let mut h = event.headers;
    TraceContextPropagator::new().inject_context(
        &Context::new().with_remote_span_context(span),
        &mut HeaderInjector(&mut h),
    );
    if keys.is_empty() {
        h.remove(headers::BAGGAGE);
    } else {
        h.set(headers::BAGGAGE, baggage::format(&keys)?);
    }
    h.set(headers::CE_SPECVERSION, headers::SPEC_VERSION);
    h.set(headers::CE_ID, event_id.as_str());
    h.set(headers::CE_SOURCE, service);
    h.set(headers::CE_TYPE, event.event_type.as_str());
    let time = event.time.unwrap_or_else(Utc::now);
    h.set(
        headers::CE_TIME,
        time.to_rfc3339_opts(SecondsFormat::Micros, true),
    );
    h.remove(headers::CE_SUBJECT);
    if let Some(subject) = &event.subject {
        h.set(headers::CE_SUBJECT, subject.as_str());
    }
    h.remove(headers::CONTENT_TYPE);
    if let Some(ct) = &event.content_type {
        h.set(headers::CONTENT_TYPE, ct.as_str());
    }
    h.remove(headers::CE_CAUSATIONID);
    if let Some(cause_id) = &causation_id {
        h.set(headers::CE_CAUSATIONID, cause_id.as_str());
    }
    h.set(headers::CE_CORRELATIONID, correlation_id.as_str());

    Ok(StampedEvent {
        topic: event.topic,
        key: event.key,
        payload: event.payload,
        headers: h,
        event_id,
        causation_id,
        correlation_id,
        trace_parent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aliases::AliasTable;
    use opentelemetry::trace::{SpanId, TraceId};

    fn read_back(stamped: &StampedEvent) -> EventContext {
        EventContext::extract(&stamped.headers, &AliasTable::none())
    }

    #[test]
    fn first_event_of_a_flow_correlates_to_itself_and_has_no_cause() {
        let stamped = stamp(
            OutgoingEvent::new("orders", "OrderCreated").business_key("order.id", "o-1"),
            "order",
            None,
            &Context::new(),
        )
        .unwrap();
        let cx = read_back(&stamped);
        assert!(cx.problems.is_empty(), "{:?}", cx.problems);
        assert_eq!(cx.id(), Some(stamped.event_id.as_str()));
        assert_eq!(cx.correlation_id.unwrap().value, stamped.event_id);
        assert!(cx.causation_id.is_none());
        assert_eq!(
            uuid::Uuid::parse_str(&stamped.event_id)
                .unwrap()
                .get_version_num(),
            7
        );
        assert_eq!(cx.cloud_event.source.as_deref(), Some("order"));
        assert_eq!(cx.cloud_event.spec_version.as_deref(), Some("1.0"));
        assert!(cx.cloud_event.time.is_some());
        assert_eq!(cx.keys.get("order.id").map(String::as_str), Some("o-1"));
        assert!(cx.trace_parent.is_some(), "a fresh trace is started");
    }

    #[test]
    fn reaction_names_its_cause_inherits_conversation_trace_and_keys() {
        let first = stamp(
            OutgoingEvent::new("orders", "OrderCreated").business_key("order.id", "o-1"),
            "order",
            None,
            &Context::new(),
        )
        .unwrap();
        let cause = read_back(&first);
        let second = stamp(
            OutgoingEvent::new("payments", "PaymentCaptured").business_key("payment.id", "p-9"),
            "payment",
            Some(&cause),
            &Context::new(),
        )
        .unwrap();
        let cx = read_back(&second);
        assert_eq!(cx.causation_id.unwrap().value, first.event_id);
        assert_eq!(cx.correlation_id.unwrap().value, first.event_id);
        assert_eq!(second.trace_parent.trace_id, first.trace_parent.trace_id);
        assert_ne!(second.trace_parent.parent_id, first.trace_parent.parent_id);
        assert_eq!(cx.keys.len(), 2, "keys are carried forward and extended");
    }

    #[test]
    fn current_valid_span_is_used_as_parent() {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            "k=v".parse().unwrap(),
        );
        let stamped = stamp(
            OutgoingEvent::new("t", "T"),
            "svc",
            None,
            &Context::new().with_remote_span_context(sc),
        )
        .unwrap();
        assert_eq!(
            stamped.headers.first("traceparent"),
            Some(&b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..])
        );
        assert_eq!(stamped.headers.first("tracestate"), Some(&b"k=v"[..]));
    }

    #[test]
    fn caller_id_is_kept_and_sdk_headers_override_application_ones() {
        let stamped = stamp(
            OutgoingEvent::new("t", "T")
                .id("outbox-42")
                .header("ce_id", "spoofed")
                .header("x-app", "kept"),
            "svc",
            None,
            &Context::new(),
        )
        .unwrap();
        assert_eq!(stamped.headers.get_all("ce_id").count(), 1);
        assert_eq!(stamped.headers.first("ce_id"), Some(&b"outbox-42"[..]));
        assert_eq!(stamped.headers.first("x-app"), Some(&b"kept"[..]));
    }

    #[test]
    fn cause_without_correlation_is_the_root_of_the_conversation() {
        let cause = EventContext {
            event_id: Some(crate::context::Sourced {
                value: "legacy-1".into(),
                header: "message-id".into(),
            }),
            ..EventContext::default()
        };
        let stamped = stamp(
            OutgoingEvent::new("t", "T"),
            "svc",
            Some(&cause),
            &Context::new(),
        )
        .unwrap();
        assert_eq!(stamped.correlation_id, "legacy-1");
        assert_eq!(stamped.causation_id.as_deref(), Some("legacy-1"));
    }

    #[test]
    fn invalid_input_is_refused_with_a_reason() {
        let none = Context::new();
        assert_eq!(
            stamp(OutgoingEvent::new("t", "T"), " ", None, &none).unwrap_err(),
            StampError::EmptySource
        );
        assert_eq!(
            stamp(OutgoingEvent::new("t", ""), "s", None, &none).unwrap_err(),
            StampError::EmptyType
        );
        assert!(matches!(
            stamp(
                OutgoingEvent::new("t", "T").business_key("bad key", "v"),
                "s",
                None,
                &none
            ),
            Err(StampError::Baggage(BaggageError::InvalidKey(_)))
        ));
    }
}
