//! Helpers shared by the collector's end-to-end tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use choreoscope::ingest::{IngestConfig, Ingestor};
use choreoscope::metrics::Metrics;
use choreoscope::record::Interpreter;
use choreoscope::rules::Rules;
use choreoscope::store::Store;
use choreoscope_e2e::TestBroker;
use choreoscope_sdk::{stamp, EventContext, OutgoingEvent, RecordHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

/// A collector running in this process against the test broker.
pub struct InProcessCollector {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl InProcessCollector {
    /// Starts collecting the topics whose names end with `suffix` into a fresh SQLite store.
    pub async fn start(broker: &TestBroker, suffix: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("c.db").display()))
            .await
            .unwrap();
        let metrics = Arc::new(Metrics::new());
        let ingestor = Ingestor::new(
            IngestConfig {
                brokers: broker.bootstrap().to_owned(),
                group: format!("collector-{suffix}"),
                include: Some(regex::Regex::new(&format!(".*{suffix}")).unwrap()),
                exclude: None,
                batch_size: 500,
                batch_timeout: Duration::from_millis(50),
                metadata_refresh: Duration::from_millis(500),
                kafka_properties: vec![],
            },
            Interpreter::new(Rules::default(), 64 * 1024),
            store.clone(),
            metrics.clone(),
        )
        .unwrap();
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let cancel = cancel.clone();
            async move { ingestor.run(cancel).await.unwrap() }
        });
        Self { store, metrics, cancel, task, _dir: dir }
    }

    /// Waits until the store holds `deliveries` deliveries.
    pub async fn wait_for_deliveries(&self, deliveries: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let counts = self.store.counts().await.unwrap();
            if counts.deliveries >= deliveries {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {counts:?} stored after {timeout:?}, expected {deliveries} deliveries"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops it gracefully.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
    }
}

/// Produces one record exactly as given.
pub async fn produce_raw(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    headers: &RecordHeaders,
) -> (i32, i64) {
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers.to_kafka());
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(p) = payload {
        record = record.payload(p);
    }
    let d = producer
        .send(record, Timeout::After(Duration::from_secs(10)))
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
    (d.partition, d.offset)
}

/// The wire-format headers of event `event` caused by `cause`, as the SDK stamps them.
pub fn stamped(event: OutgoingEvent, source: &str, cause: Option<&RecordHeaders>) -> RecordHeaders {
    let cause = cause.map(|h| EventContext::extract(h, &Default::default()));
    stamp(event, source, cause.as_ref(), &opentelemetry_context())
        .expect("stamp")
        .headers
}

fn opentelemetry_context() -> opentelemetry::Context {
    opentelemetry::Context::new()
}
