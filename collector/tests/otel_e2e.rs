//! Lineage from OpenTelemetry alone, on the real broker: the services are real Python programs
//! (`tests/otel/services.py`: `confluent-kafka` under `opentelemetry-instrumentation-confluent-kafka`,
//! spans sent by the OTLP exporters) in a chain with a fan-out — shop → payment → inventory and
//! notification — with no Choreoscope and no CloudEvents headers; inventory's handler raises for
//! two orders. Their records carry only a `traceparent`; every edge comes from the spans.
//!
//! Each test runs the choreography once and holds the collector to the services' own ground
//! truth (each consumed position and what was produced handling it): every edge of every order's
//! flow, exactly, and the failing orders `failed` with the exception. Spans arrive before their
//! records (a collector that receives spans but reads no topic, then one that reads them) or after
//! them (the services hold their spans until the records are stored), over gRPC and over HTTP.
//!
//! `scripts/test` installs the Python packages (`CHOREOSCOPE_OTEL_PYTHON`).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use choreoscope::cluster::Cluster;
use choreoscope::collector::{Collector, Source};
use choreoscope::groups::{GroupsConfig, GroupsHandle};
use choreoscope::health::{HealthConfig, HealthHandle};
use choreoscope::ingest::{IngestConfig, TopicFilter};
use choreoscope::otlp::OtlpConfig;
use choreoscope::query::{self, Limits};
use choreoscope::record::{derived_id, Interpreter};
use choreoscope::rules::{Rules, TopicPattern};
use choreoscope::store::Store;
use choreoscope_e2e::TestBroker;
use serde_json::Value;

const ORDERS: usize = 12;
const FAILING: [&str; 2] = ["o-3", "o-7"];

/// The interpreter the tests' services need: `/orderId` of every payload is the key `order.id`.
fn python() -> PathBuf {
    std::env::var_os("CHOREOSCOPE_OTEL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "CHOREOSCOPE_OTEL_PYTHON is not set: these tests run real OpenTelemetry-instrumented \
                 Python services. Run `scripts/test` (it installs them), or point it at a Python with \
                 tests/otel/requirements.txt installed."
            )
        })
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/otel/services.py")
}

/// How spans reach the collector.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    /// Before their records: the collector reads no topic while the services run.
    Before,
    /// After their records: the services hold their spans until the records are stored.
    After,
}

/// One service process, its ground-truth lines read on a thread.
struct Service {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl Service {
    fn start(role: &str, env: &[(&str, String)]) -> Self {
        let mut child = Command::new(python())
            .arg(script())
            .arg(role)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {role} service: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("a ground-truth line that is not JSON ({e}): {line}")
                });
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// Reads `n` ground-truth lines, waiting at most `timeout` in all.
    fn read(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = std::time::Instant::now() + timeout;
        (0..n)
            .map(|i| {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                self.lines
                    .recv_timeout(left)
                    .unwrap_or_else(|_| panic!("only {i} of {n} ground-truth lines in {timeout:?}"))
            })
            .collect()
    }

    /// Lets a service holding its spans send them (a line on its stdin), then waits for it.
    fn finish(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "a service failed: {status}");
    }
}

/// A collector of this test: the store, the OTLP receiver's addresses, and the Kafka source
/// reading the topics `include` lets through.
async fn collector(
    store: &Store,
    broker: &TestBroker,
    group: &str,
    include: &str,
) -> (Collector, String, String) {
    let table: toml::Table =
        toml::from_str(r#"key_rules = [".* : /orderId -> order.id"]"#).unwrap();
    let source = Source::Kafka {
        config: IngestConfig {
            cluster: Cluster::plaintext(broker.bootstrap().to_owned()),
            group: group.to_owned(),
            topics: TopicFilter {
                include: Some(TopicPattern::new(include).unwrap()),
                exclude: None,
                ..Default::default()
            },
            batch_size: 500,
            batch_timeout: Duration::from_millis(50),
            metadata_refresh: Duration::from_millis(500),
            start_at: Default::default(),
        },
        interpreter: Interpreter::new(Rules::from_table(table).unwrap(), 64 * 1024),
        groups: GroupsConfig {
            poll_every: Duration::ZERO,
            ..Default::default()
        },
    };
    let mut collector =
        Collector::start(store.clone(), source, None, HealthConfig::default()).unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (g, h) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    collector.start_otlp(OtlpConfig::default(), Some(grpc), Some(http));
    (
        collector,
        format!("http://{g}"),
        format!("http://{h}/v1/traces"),
    )
}

/// Runs the choreography with spans sent over `protocol` (`grpc`, `http`) arriving as `arrival`
/// says; returns the store and the ground truth.
async fn choreography(
    protocol: &str,
    arrival: Arrival,
    dir: &tempfile::TempDir,
) -> (Store, Vec<Value>) {
    let broker = TestBroker::from_env();
    let prefix = format!(
        "otel{protocol}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let store = Store::connect(&common::fixture::sqlite_url(&dir.path().join("s.db")))
        .await
        .unwrap();
    let mine = format!("{prefix}\\..*");
    let base = vec![
        ("BROKERS", broker.bootstrap().to_owned()),
        ("PREFIX", prefix.clone()),
        ("N", ORDERS.to_string()),
        ("EXPECT", ORDERS.to_string()),
        ("DEADLINE_S", "90".to_owned()),
        ("FAIL_ORDERS", FAILING.join(",")),
        ("OTLP_PROTOCOL", protocol.to_owned()),
        (
            "SPAN_EXPORT",
            match arrival {
                Arrival::Before => "soon",
                Arrival::After => "late",
            }
            .to_owned(),
        ),
    ];
    Service::start("topics", &base).finish();
    // Before: a collector that receives spans and reads no topic of this test.
    let first_include = match arrival {
        Arrival::Before => format!("{prefix}-none"),
        Arrival::After => mine.clone(),
    };
    let (first, grpc, http) =
        collector(&store, &broker, &format!("{prefix}-c1"), &first_include).await;
    let mut env = base.clone();
    env.push((
        "OTLP_ENDPOINT",
        if protocol == "grpc" { grpc } else { http },
    ));
    let roles = ["payment", "inventory", "notification", "shop"];
    let services: Vec<Service> = roles.iter().map(|r| Service::start(r, &env)).collect();
    let mut truth = Vec::new();
    for s in &services {
        truth.extend(s.read(ORDERS, Duration::from_secs(90)));
    }
    let records = 4 * ORDERS - FAILING.len();
    let expect_records = |store: Store| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let n = store.counts().await.unwrap().events;
            if n as usize >= records {
                return n;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} of {records} records stored"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    match arrival {
        Arrival::Before => {
            for s in services {
                s.finish();
            }
            assert_eq!(
                store.counts().await.unwrap().events,
                0,
                "no record is stored yet"
            );
            first.stop().await.unwrap();
            let (second, _, _) = collector(&store, &broker, &format!("{prefix}-c2"), &mine).await;
            assert_eq!(expect_records(store.clone()).await as usize, records);
            second.stop().await.unwrap();
        }
        Arrival::After => {
            assert_eq!(expect_records(store.clone()).await as usize, records);
            assert!(
                store.span_services(0).await.unwrap().is_empty(),
                "no span is stored before the services send them"
            );
            for s in services {
                s.finish();
            }
            first.stop().await.unwrap();
        }
    }
    (store, truth)
}

/// Every cause → reaction edge the services' ground truth names, by event id.
fn expected_edges(truth: &[Value]) -> BTreeSet<(String, String)> {
    let id = |p: &Value| {
        derived_id(
            p["topic"].as_str().unwrap(),
            p["partition"].as_i64().unwrap() as i32,
            p["offset"].as_i64().unwrap(),
        )
    };
    truth
        .iter()
        .filter(|l| !l["consumed"].is_null())
        .flat_map(|l| {
            let cause = id(&l["consumed"]);
            l["produced"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |p| (cause.clone(), id(p)))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn key_answer(store: &Store, order: &str) -> Value {
    let answer = query::answers::key_answer(
        store,
        &HealthHandle::default(),
        &GroupsHandle::default(),
        "order.id",
        order,
        None,
        &Limits::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{order}: {e}"));
    serde_json::to_value(answer).unwrap()
}

/// Holds the store to the ground truth: every edge of every order's flow, exactly, each found by
/// a span rule; the failing orders failed with inventory's exception, the others not.
async fn check(store: &Store, truth: &[Value]) {
    let expected = expected_edges(truth);
    assert_eq!(
        expected.len(),
        3 * ORDERS - FAILING.len(),
        "ground truth: {truth:?}"
    );
    let mut found = BTreeSet::new();
    for i in 1..=ORDERS {
        let order = format!("o-{i}");
        let answer = key_answer(store, &order).await;
        let flows = answer["flows"].as_array().unwrap();
        assert_eq!(flows.len(), 1, "{order} is one flow: {answer}");
        for e in answer["graph"]["edges"].as_array().unwrap() {
            assert!(
                e["rule"].as_str().unwrap().starts_with("span_"),
                "{order}: {e} is not an edge through spans"
            );
            found.insert((
                e["from"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
            ));
        }
        let health = &flows[0]["health"];
        if FAILING.contains(&order.as_str()) {
            assert_eq!(health["status"], "failed", "{order}: {health}");
            let failure = &health["failures"][0];
            assert_eq!(failure["service"], "inventory", "{failure}");
            assert_eq!(
                failure["exception"]["message"],
                format!("no stock for {order}")
            );
            assert!(
                failure["exception"]["type"]
                    .as_str()
                    .unwrap()
                    .ends_with("OutOfStock"),
                "{failure}"
            );
        } else {
            assert_ne!(health["status"], "failed", "{order}: {health}");
        }
    }
    assert_eq!(
        found, expected,
        "the store's edges are exactly the services' own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_over_grpc_before_their_records_rebuild_every_edge() {
    let dir = tempfile::tempdir().unwrap();
    let (store, truth) = choreography("grpc", Arrival::Before, &dir).await;
    check(&store, &truth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_over_http_after_their_records_rebuild_every_edge() {
    let dir = tempfile::tempdir().unwrap();
    let (store, truth) = choreography("http", Arrival::After, &dir).await;
    check(&store, &truth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_over_grpc_after_their_records_rebuild_every_edge() {
    let dir = tempfile::tempdir().unwrap();
    let (store, truth) = choreography("grpc", Arrival::After, &dir).await;
    check(&store, &truth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_over_http_before_their_records_rebuild_every_edge() {
    let dir = tempfile::tempdir().unwrap();
    let (store, truth) = choreography("http", Arrival::Before, &dir).await;
    check(&store, &truth).await;
}
