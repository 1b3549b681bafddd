//! Helpers shared by the collector's end-to-end tests.
#![allow(dead_code)]

pub mod fixture;

use std::sync::Arc;
use std::time::Duration;

use choreoscope::cluster::Cluster;
use choreoscope::collector::{Collector, Source};
use choreoscope::health::{HealthConfig, HealthHandle};
use choreoscope::ingest::{IngestConfig, StartAt, TopicFilter};
use choreoscope::metrics::Metrics;
use choreoscope::record::Interpreter;
use choreoscope::rules::{Rules, TopicPattern};
use choreoscope::store::Store;
use choreoscope_e2e::TestBroker;
use choreoscope_sdk::{stamp, EventContext, OutgoingEvent, RecordHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

/// A collector running in this process against the test broker.
pub struct InProcessCollector {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    collector: Collector,
    /// Its store's URL (`sqlite://…`).
    pub url: String,
    _dir: tempfile::TempDir,
}

/// Consumer groups not polled: the shared test broker holds every test's groups.
fn no_group_polls() -> choreoscope::groups::GroupsConfig {
    choreoscope::groups::GroupsConfig {
        poll_every: Duration::ZERO,
        ..Default::default()
    }
}

impl InProcessCollector {
    /// Starts collecting the topics whose names end with `suffix` into a fresh SQLite store.
    pub async fn start(broker: &TestBroker, suffix: &str) -> Self {
        let filter = TopicFilter {
            include: Some(TopicPattern::new(&format!(".*{suffix}")).unwrap()),
            exclude: None,
            ..Default::default()
        };
        Self::start_filtered(broker, &format!("collector-{suffix}"), filter).await
    }

    /// Starts collecting the topics `filter` lets through, in consumer group `group`, into a
    /// fresh SQLite store; consumer groups are not polled ([`NO_GROUP_POLLS`]).
    pub async fn start_filtered(broker: &TestBroker, group: &str, filter: TopicFilter) -> Self {
        Self::start_with(
            broker,
            group,
            filter,
            HealthConfig::default(),
            no_group_polls(),
        )
        .await
    }

    /// Starts collecting the topics `filter` lets through, in consumer group `group`, with flow
    /// health under `health`, into a fresh SQLite store; consumer groups are not polled.
    pub async fn start_with_health(
        broker: &TestBroker,
        group: &str,
        filter: TopicFilter,
        health: HealthConfig,
    ) -> Self {
        Self::start_with(broker, group, filter, health, no_group_polls()).await
    }

    /// Starts collecting the topics `filter` lets through, in consumer group `group`, polling the
    /// cluster's consumer groups as `groups` says, into a fresh SQLite store.
    pub async fn start_with_groups(
        broker: &TestBroker,
        group: &str,
        filter: TopicFilter,
        groups: choreoscope::groups::GroupsConfig,
    ) -> Self {
        Self::start_with(broker, group, filter, HealthConfig::default(), groups).await
    }

    /// Starts collecting the topics `filter` lets through, in consumer group `group`, with flow
    /// health under `health` and consumer groups polled as `groups` says, into a fresh SQLite
    /// store.
    pub async fn start_with(
        broker: &TestBroker,
        group: &str,
        filter: TopicFilter,
        health: HealthConfig,
        groups: choreoscope::groups::GroupsConfig,
    ) -> Self {
        Self::start_configured(broker, group, filter, health, groups, StartAt::default()).await
    }

    /// Starts collecting `topic` alone, in consumer group `group`, partitions without a committed
    /// offset starting at `start_at`, into a fresh SQLite store.
    pub async fn start_at(
        broker: &TestBroker,
        group: &str,
        topic: &str,
        start_at: StartAt,
    ) -> Self {
        let filter = TopicFilter {
            include: Some(TopicPattern::new(&regex::escape(topic)).unwrap()),
            ..Default::default()
        };
        Self::start_configured(
            broker,
            group,
            filter,
            HealthConfig::default(),
            no_group_polls(),
            start_at,
        )
        .await
    }

    /// Starts collecting the topics `filter` lets through, in consumer group `group`, with flow
    /// health under `health`, consumer groups polled as `groups` says and partitions without a
    /// committed offset starting at `start_at`, into a fresh SQLite store.
    pub async fn start_configured(
        broker: &TestBroker,
        group: &str,
        filter: TopicFilter,
        health: HealthConfig,
        groups: choreoscope::groups::GroupsConfig,
        start_at: StartAt,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::connect(&url).await.unwrap();
        let source = Source::Kafka {
            config: IngestConfig {
                cluster: Cluster::plaintext(broker.bootstrap().to_owned()),
                group: group.to_owned(),
                topics: filter,
                batch_size: 500,
                batch_timeout: Duration::from_millis(50),
                metadata_refresh: Duration::from_millis(500),
                start_at,
            },
            interpreter: Interpreter::new(Rules::default(), 64 * 1024),
            groups,
        };
        let collector = Collector::start(store.clone(), source, None, health).unwrap();
        Self {
            store,
            metrics: collector.metrics().clone(),
            collector,
            url,
            _dir: dir,
        }
    }

    /// What its HTTP handlers share (for a router built without a socket).
    pub fn state(&self) -> choreoscope::http::AppState {
        self.collector.state()
    }

    /// Its backfill progress.
    pub fn progress(&self) -> &choreoscope::ingest::ProgressHandle {
        self.collector.progress()
    }

    /// Its consumer-group positions.
    pub fn groups(&self) -> &choreoscope::groups::GroupsHandle {
        self.collector.groups()
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

    /// Its flow health.
    pub fn health(&self) -> &HealthHandle {
        self.collector.health()
    }

    /// Stops it gracefully.
    pub async fn stop(self) {
        self.collector.stop().await.unwrap();
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
    let mut record: FutureRecord<'_, [u8], [u8]> =
        FutureRecord::to(topic).headers(headers.to_kafka());
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

/// A child process of a test, killed (and reaped) when dropped, so a failing test leaves none
/// running.
pub struct KilledOnDrop(pub std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An event record `id` of topic `orders` at `offset`, with a `baggage` header (its business
/// keys), interpreted as the collector would.
pub fn baggage_record(id: &str, baggage: &str, offset: i64) -> choreoscope::record::EventRecord {
    let mut headers = RecordHeaders::new();
    headers.set("ce_id", id);
    headers.set("baggage", baggage);
    Interpreter::new(Rules::default(), 1024).interpret(
        choreoscope::record::RawRecord {
            topic: "orders",
            partition: 0,
            offset,
            key: None,
            payload: Some(b"{}"),
            headers: &headers,
            timestamp_ms: None,
        },
        1,
    )
}

/// The `choreoscope collect` binary running as a child process.
pub struct CollectorProcess {
    child: KilledOnDrop,
    /// Its HTTP address.
    pub listen: std::net::SocketAddr,
}

/// An address on 127.0.0.1 that nothing listens on now.
pub fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Flags that turn consumer-group polling off. The test broker holds every test's groups, and a
/// collector polling all of them every 5 s is load the tests of other behaviours do not need; the
/// tests of consumer-group positions (`tests/groups.rs`) poll.
pub const NO_GROUP_POLLS: [&str; 2] = ["--group-poll-every", "0"];

/// The consumer-group session timeout of test collectors.
pub const SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl CollectorProcess {
    /// Starts `choreoscope collect` on `db`, storing only `topic`, consumer groups not polled.
    pub fn start(broker: &TestBroker, db: &str, group: &str, topic: &str) -> Self {
        Self::start_with(broker, db, group, topic, &NO_GROUP_POLLS)
    }

    /// Starts `choreoscope collect` on `db`, storing only `topic`, with `extra` flags.
    pub fn start_with(
        broker: &TestBroker,
        db: &str,
        group: &str,
        topic: &str,
        extra: &[&str],
    ) -> Self {
        Self::start_with_env(broker, db, group, topic, extra, &[])
    }

    /// Starts `choreoscope collect` on `db`, storing only `topic`, with `extra` flags and `env`
    /// variables.
    pub fn start_with_env(
        broker: &TestBroker,
        db: &str,
        group: &str,
        topic: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let listen = free_addr();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_choreoscope"))
            .envs(env.iter().copied())
            .args([
                "collect",
                "--brokers",
                broker.bootstrap(),
                "--db",
                db,
                "--group",
                group,
            ])
            .args([
                "--include",
                &regex::escape(topic),
                "--listen",
                &listen.to_string(),
            ])
            .args(["--batch-size", "2000", "--batch-ms", "100"])
            // A member that died is dropped by the group coordinator after this long (10 s
            // instead of librdkafka's 45 s): tests that kill a collector wait it out.
            .args([
                "--kafka",
                &format!("session.timeout.ms={}", SESSION_TIMEOUT.as_millis()),
            ])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("CHOREOSCOPE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()
            .expect("start the collector binary");
        Self {
            child: KilledOnDrop(child),
            listen,
        }
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill_hard(&mut self) {
        self.child.0.kill().unwrap();
        self.child.0.wait().unwrap();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.0.id() as i32, libc::SIGTERM) };
        self.child.0.wait().unwrap()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.0.try_wait().unwrap().is_none()
    }

    /// GETs `path` from its HTTP server and returns the body.
    pub fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.listen).unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        body.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or(body)
    }
}

/// Produces `n` SDK-stamped records to `topic`, `in_flight` at a time.
pub async fn produce_many(producer: &FutureProducer, topic: &str, n: usize) {
    use futures::stream::{self, StreamExt};
    stream::iter(0..n)
        .map(|i| {
            let key = format!("o-{}", i % 5000);
            let headers = stamped(
                OutgoingEvent::new(topic, "OrderCreated").business_key("order.id", key.as_str()),
                "load",
                None,
            );
            async move {
                produce_raw(
                    producer,
                    topic,
                    Some(key.as_bytes()),
                    Some(br#"{"amount":42}"#),
                    &headers,
                )
                .await;
            }
        })
        .buffer_unordered(2000)
        .count()
        .await;
}

/// Polls `store` until it holds `deliveries` deliveries or `timeout` passes; returns the counts.
pub async fn wait_for(
    store: &Store,
    deliveries: i64,
    timeout: Duration,
) -> choreoscope::store::StoreCounts {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(counts) = store.counts().await {
            if counts.deliveries >= deliveries || tokio::time::Instant::now() >= deadline {
                return counts;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A consumer in `group` subscribed to `topic` from its start, committing only when told.
pub fn consumer(
    broker: &TestBroker,
    group: &str,
    topic: &str,
) -> rdkafka::consumer::StreamConsumer {
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::StreamConsumer = broker
        .config()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

/// Reads partition 0 of `topic` up to offset `next - 1`, then commits `next` (Kafka's committed
/// offset is the next one to read).
pub async fn read_and_commit(consumer: &rdkafka::consumer::StreamConsumer, topic: &str, next: i64) {
    use rdkafka::consumer::{CommitMode, Consumer};
    use rdkafka::message::Message;
    let mut last = -1;
    while last + 1 < next {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("records arrive")
            .unwrap();
        last = message.offset();
    }
    let mut commit = rdkafka::TopicPartitionList::new();
    commit
        .add_partition_offset(topic, 0, rdkafka::Offset::Offset(next))
        .unwrap();
    consumer.commit(&commit, CommitMode::Sync).unwrap();
}

/// The value of the Prometheus sample whose line starts with `series` (a name, or a name with its
/// labels) in `/metrics` text; 0 when there is none.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
