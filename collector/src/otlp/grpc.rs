//! OTLP/gRPC: the `opentelemetry.proto.collector.trace.v1.TraceService/Export` method, with gzip
//! accepted. Answers: `OK` (with a partial success naming rejected spans), `UNAVAILABLE` when the
//! collector is busy (the exporters retry), `INVALID_ARGUMENT` for a request that does not
//! decode, `RESOURCE_EXHAUSTED` for one over the size limit. tonic answers the last two as
//! `INTERNAL` and `OUT_OF_RANGE`, which OTLP exporters would treat as permanent and retryable
//! respectively; a layer rewrites them to OTLP's codes and counts every error answer.

use std::sync::Arc;

use axum::http::{HeaderValue, Response};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;

use super::receiver::Receiver;
use super::sink::Refusal;
use crate::metrics::Metrics;

struct Traces(Receiver);

#[tonic::async_trait]
impl TraceService for Traces {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        match self.0.export(request.get_ref(), "grpc").await {
            Ok(response) => Ok(tonic::Response::new(response)),
            Err(refusal @ (Refusal::Busy | Refusal::Store(_))) => {
                Err(tonic::Status::unavailable(refusal.to_string()))
            }
        }
    }
}

/// gRPC status codes (`grpc-status`) that matter here.
const INVALID_ARGUMENT: &str = "3";
const RESOURCE_EXHAUSTED: &str = "8";
const OUT_OF_RANGE: &str = "11";
const UNAVAILABLE: &str = "14";
const INTERNAL: &str = "13";

/// Counts an error answer (a trailers-only response carries its status in the headers) and
/// gives tonic's decoding errors OTLP's codes.
fn checked<B>(mut response: Response<B>, metrics: &Metrics) -> Response<B> {
    let Some(code) = response.headers().get("grpc-status").cloned() else {
        return response;
    };
    let code = match code.to_str().unwrap_or_default() {
        INTERNAL => INVALID_ARGUMENT,
        OUT_OF_RANGE => RESOURCE_EXHAUSTED,
        other => {
            // Answers of the service itself (unavailable) are counted where they are made.
            if other != UNAVAILABLE && other != "0" {
                metrics.count_otlp_request("grpc", "invalid");
            }
            return response;
        }
    };
    metrics.count_otlp_request("grpc", "invalid");
    response
        .headers_mut()
        .insert("grpc-status", HeaderValue::from_static(code));
    response
}

/// Serves OTLP/gRPC on `listener` until `stop`; requests over `max_bytes` (decoded) are refused.
pub async fn serve(
    listener: TcpListener,
    receiver: Receiver,
    metrics: Arc<Metrics>,
    max_bytes: usize,
    stop: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let service = TraceServiceServer::new(Traces(receiver))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_bytes);
    tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(move |r| {
            checked(r, &metrics)
        }))
        .add_service(service)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            stop.cancelled_owned(),
        )
        .await
}
