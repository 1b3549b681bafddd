//! OpenTelemetry carriers over Kafka record headers, usable with any
//! [`TextMapPropagator`](opentelemetry::propagation::TextMapPropagator) (trace context, baggage,
//! B3, a composite…).
//!
//! ```
//! use choreoscope_sdk::{HeaderExtractor, HeaderInjector, RecordHeaders};
//! use opentelemetry::propagation::TextMapPropagator;
//! use opentelemetry_sdk::propagation::TraceContextPropagator;
//!
//! let mut headers = RecordHeaders::new();
//! headers.set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
//! let mut out = RecordHeaders::new();
//! TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut out));
//! assert_eq!(out.first("traceparent"), headers.first("traceparent"));
//! ```

use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::message::Headers;

use crate::headers::RecordHeaders;

/// Writes propagation fields into a [`RecordHeaders`], replacing existing headers of the same name.
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut RecordHeaders);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.set(key, value);
    }
}

/// Reads propagation fields from a [`RecordHeaders`].
///
/// A field is returned only when it appears once and is UTF-8: a duplicated `traceparent` is
/// ambiguous, and a propagator handed either copy would silently pick a parent.
#[derive(Debug, Clone, Copy)]
pub struct HeaderExtractor<'a>(pub &'a RecordHeaders);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let mut values = self.0.get_all(key);
        let only = values.next()??;
        values.next().is_none().then_some(())?;
        std::str::from_utf8(only).ok()
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.0.iter().map(|(k, _)| k).collect();
        keys.dedup();
        keys
    }
}

/// Reads propagation fields straight from an rdkafka header list (borrowed or owned), with the
/// same single-value rule as [`HeaderExtractor`].
#[derive(Debug, Clone, Copy)]
pub struct KafkaHeaderExtractor<'a, H>(pub &'a H);

impl<H: Headers> Extractor for KafkaHeaderExtractor<'_, H> {
    fn get(&self, key: &str) -> Option<&str> {
        let mut values = self.0.iter().filter(|h| h.key == key);
        let only = values.next()?.value?;
        values.next().is_none().then_some(())?;
        std::str::from_utf8(only).ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|h| h.key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry::KeyValue;
    use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn composite() -> opentelemetry::propagation::TextMapCompositePropagator {
        opentelemetry::propagation::TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ])
    }

    #[test]
    fn trace_context_and_baggage_round_trip_through_kafka_headers() {
        let mut headers = RecordHeaders::new();
        headers.set("traceparent", TP);
        headers.set("tracestate", "vendor=opaque");
        let cx = composite()
            .extract(&HeaderExtractor(&headers))
            .with_baggage(vec![KeyValue::new("order.id", "o-1001")]);

        let mut out = RecordHeaders::new();
        composite().inject_context(&cx, &mut HeaderInjector(&mut out));
        let kafka = out.to_kafka();
        let back = composite().extract(&KafkaHeaderExtractor(&kafka));

        assert_eq!(
            back.span().span_context().trace_id(),
            cx.span().span_context().trace_id()
        );
        assert_eq!(out.first("traceparent"), Some(TP.as_bytes()));
        assert_eq!(out.first("tracestate"), Some(&b"vendor=opaque"[..]));
        assert_eq!(
            back.baggage().get("order.id").map(|v| v.as_str()),
            Some("o-1001")
        );
    }

    #[test]
    fn injector_replaces_rather_than_duplicates() {
        let mut headers = RecordHeaders::new();
        headers.set("traceparent", "stale");
        HeaderInjector(&mut headers).set("traceparent", TP.to_owned());
        assert_eq!(headers.get_all("traceparent").count(), 1);
    }

    #[test]
    fn duplicated_or_non_utf8_fields_are_not_extracted() {
        let mut headers = RecordHeaders::new();
        headers.push("traceparent", Some(TP.as_bytes().to_vec()));
        headers.push("traceparent", Some(TP.as_bytes().to_vec()));
        headers.push("baggage", Some(vec![0xff]));
        assert_eq!(HeaderExtractor(&headers).get("traceparent"), None);
        assert_eq!(HeaderExtractor(&headers).get("baggage"), None);
        let kafka = headers.to_kafka();
        assert_eq!(KafkaHeaderExtractor(&kafka).get("traceparent"), None);
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        assert!(!cx.span().span_context().is_valid());
    }
}
