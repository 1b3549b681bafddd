//! [`TracedProducer`]: a `FutureProducer` that stamps every record and traces every send.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::EventContext;
use crate::event::{stamp, OutgoingEvent, StampError, StampedEvent};
use crate::scope::current_event;
use crate::spans;
use crate::traceparent::TraceParent;

/// Where a stamped event went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Topic written to.
    pub topic: String,
    /// Partition written to.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
    /// `ce_id` of the event.
    pub event_id: String,
    /// `ce_causationid`, when the event has a cause.
    pub causation_id: Option<String>,
    /// `ce_correlationid`.
    pub correlation_id: String,
    /// The `traceparent` written on the record.
    pub trace_parent: TraceParent,
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The event could not be stamped; nothing was sent.
    #[error("cannot stamp event: {0}")]
    Stamp(#[from] StampError),
    /// The broker did not accept the record.
    #[error("kafka refused event `{event_id}` for topic `{topic}`: {source}")]
    Kafka {
        /// The event id that was being sent.
        event_id: String,
        /// The topic.
        topic: String,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
}

/// A producer that stamps the wire format on every record.
///
/// Inside [`Received::handle`](crate::Received::handle) (or [`crate::handling`]), [`send`](Self::send)
/// makes the new event a reaction to the event being handled; elsewhere it starts a new flow.
#[derive(Clone)]
pub struct TracedProducer {
    producer: FutureProducer,
    service: Arc<str>,
    queue_timeout: Duration,
}

impl std::fmt::Debug for TracedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedProducer")
            .field("service", &self.service)
            .field("queue_timeout", &self.queue_timeout)
            .finish_non_exhaustive()
    }
}

impl TracedProducer {
    /// Wraps `producer`; `service` becomes `ce_source` of every event.
    pub fn new(producer: FutureProducer, service: impl Into<String>) -> Self {
        Self {
            producer,
            service: service.into().into(),
            queue_timeout: Duration::from_secs(5),
        }
    }

    /// How long a send may wait for room in the client's queue (default 5 s).
    pub fn with_queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = timeout;
        self
    }

    /// The wrapped producer, e.g. to flush it.
    pub fn inner(&self) -> &FutureProducer {
        &self.producer
    }

    /// The service name written as `ce_source`.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Sends `event`, caused by the event being handled in this task, if any.
    pub async fn send(&self, event: OutgoingEvent) -> Result<Sent, SendError> {
        let cause = current_event();
        self.send_caused_by(event, cause.as_ref()).await
    }

    /// Sends `event` as a reaction to `cause` (or as a flow's first event when `None`).
    pub async fn send_caused_by(
        &self,
        mut event: OutgoingEvent,
        cause: Option<&EventContext>,
    ) -> Result<Sent, SendError> {
        let event_id = event.ensure_id().to_owned();
        let span = spans::send_span(event.topic(), &event_id, event.key_text());
        let stamped = stamp(event, &self.service, cause, &span.context()).inspect_err(|e| {
            spans::record_error(&span, e);
        })?;
        self.deliver(stamped).instrument(span).await
    }

    async fn deliver(&self, stamped: StampedEvent) -> Result<Sent, SendError> {
        let span = tracing::Span::current();
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&stamped.topic).headers(stamped.headers.to_kafka());
        if let Some(key) = stamped.key.as_deref() {
            record = record.key(key);
        }
        if let Some(payload) = stamped.payload.as_deref() {
            record = record.payload(payload);
        }
        match self
            .producer
            .send(record, Timeout::After(self.queue_timeout))
            .await
        {
            Ok(delivery) => {
                spans::record_delivery(&span, delivery.partition, delivery.offset);
                Ok(Sent {
                    topic: stamped.topic,
                    partition: delivery.partition,
                    offset: delivery.offset,
                    event_id: stamped.event_id,
                    causation_id: stamped.causation_id,
                    correlation_id: stamped.correlation_id,
                    trace_parent: stamped.trace_parent,
                })
            }
            Err((source, _)) => {
                spans::record_error(&span, &source);
                Err(SendError::Kafka {
                    event_id: stamped.event_id,
                    topic: stamped.topic,
                    source,
                })
            }
        }
    }
}
