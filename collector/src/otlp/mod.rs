//! The OTLP trace receiver: OpenTelemetry spans over gRPC (`--otlp-grpc`, port 4317) and HTTP
//! (`--otlp-http`, port 4318, `POST /v1/traces`, protobuf or JSON), from SDKs directly or from an
//! OpenTelemetry Collector's `otlp` exporter (docs/otlp.md).
//!
//! - [`receiver`]: what both protocols do with a request (read, sieve, store, answer).
//! - [`sieve`]: which spans are kept — the traces that touch messaging — and for how long others
//!   are held.
//! - [`sink`]: the bounded queue in front of the span writer (busy → the sender retries) and the
//!   pruning of old spans.
//! - [`grpc`], [`http`]: the two servers.

pub mod grpc;
pub mod http;
pub mod receiver;
pub mod sieve;
pub mod sink;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::Store;
pub use receiver::Receiver;
pub use sieve::SieveConfig;

/// How the receiver runs.
#[derive(Debug, Clone, Copy)]
pub struct OtlpConfig {
    /// Most spans queued for the writer; a request that does not fit is refused (retry).
    pub max_queued_spans: usize,
    /// Largest request accepted, bytes (decompressed).
    pub max_request_bytes: usize,
    /// Which spans are kept, and how long others wait.
    pub sieve: SieveConfig,
    /// How long spans are kept (by start time); zero keeps them for ever.
    pub retention: Duration,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            max_queued_spans: 100_000,
            max_request_bytes: 16 * 1024 * 1024,
            sieve: SieveConfig::default(),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// How often spans past the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Starts the receiver's writer and pruner and a server on each listener given; every task ends
/// after `stop` (the writer once its queue is written).
pub fn start(
    store: Store,
    metrics: Arc<Metrics>,
    config: OtlpConfig,
    grpc: Option<TcpListener>,
    http: Option<TcpListener>,
    stop: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let (sink, writer) = sink::Sink::start(
        store.clone(),
        metrics.clone(),
        config.max_queued_spans,
        stop.clone(),
    );
    let receiver = Receiver::new(sink, config.sieve, metrics.clone());
    let mut tasks = vec![writer];
    if !config.retention.is_zero() {
        tasks.push(tokio::spawn(sink::prune(
            store,
            metrics.clone(),
            config.retention,
            PRUNE_EVERY,
            stop.clone(),
        )));
    }
    if let Some(listener) = grpc {
        let (receiver, metrics, stop) = (receiver.clone(), metrics.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) =
                grpc::serve(listener, receiver, metrics, config.max_request_bytes, stop).await
            {
                tracing::error!(error = %e, "the OTLP/gRPC server stopped");
            }
        }));
    }
    if let Some(listener) = http {
        tasks.push(tokio::spawn(async move {
            if let Err(e) = http::serve(listener, receiver, config.max_request_bytes, stop).await {
                tracing::error!(error = %e, "the OTLP/HTTP server stopped");
            }
        }));
    }
    tasks
}
