//! What both protocols do with an export request: read its spans, sieve them, store what is
//! kept, and say what was rejected.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use super::sieve::{Sieve, SieveConfig};
use super::sink::{Refusal, Sink};
use crate::metrics::Metrics;
use crate::span::convert::spans_of;

/// The receiver both servers share (cheap to clone).
#[derive(Debug, Clone)]
pub struct Receiver {
    sieve: Arc<Mutex<Sieve>>,
    sink: Sink,
    metrics: Arc<Metrics>,
}

impl Receiver {
    /// A receiver storing through `sink`.
    pub fn new(sink: Sink, sieve: SieveConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            sieve: Arc::new(Mutex::new(Sieve::new(sieve))),
            sink,
            metrics,
        }
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Handles one export request received over `protocol` (`grpc`, `http`); answers once the
    /// kept spans are durable.
    pub async fn export(
        &self,
        request: &ExportTraceServiceRequest,
        protocol: &str,
    ) -> Result<ExportTraceServiceResponse, Refusal> {
        let converted = spans_of(request);
        let metrics = &self.metrics;
        metrics.count_spans("received", converted.spans.len() + converted.rejected);
        metrics.count_spans("rejected", converted.rejected);
        let sifted = {
            let mut sieve = self.sieve.lock().unwrap_or_else(|p| p.into_inner());
            let sifted = sieve.sift(converted.spans, Instant::now());
            metrics.otlp_held_spans.set(sieve.held() as i64);
            sifted
        };
        metrics.count_spans("dropped", sifted.dropped);
        let kept = sifted.keep.len();
        let released = sifted.released.clone();
        let mut spans = sifted.keep;
        spans.extend(sifted.released);
        if let Err(refusal) = self.sink.store(spans).await {
            metrics.count_spans("refused", kept);
            let mut sieve = self.sieve.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = sieve.hold_again(released, Instant::now());
            metrics.count_spans("dropped", dropped);
            metrics.count_otlp_request(
                protocol,
                match refusal {
                    Refusal::Busy => "unavailable",
                    Refusal::Store(_) => "error",
                },
            );
            return Err(refusal);
        }
        let partial = (converted.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: converted.rejected as i64,
            error_message: format!(
                "{} span(s) rejected: {}",
                converted.rejected,
                converted.first_error.unwrap_or_default()
            ),
        });
        metrics.count_otlp_request(protocol, if partial.is_some() { "partial" } else { "ok" });
        Ok(ExportTraceServiceResponse {
            partial_success: partial,
        })
    }
}
