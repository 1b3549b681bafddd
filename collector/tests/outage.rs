//! PostgreSQL goes away for a while during ingest — stopped at once, or its processes killed
//! with SIGKILL so connections vanish mid-transaction — and comes back: the collector pauses,
//! retries, resumes, and nothing is lost or doubled.

mod common;

use std::time::Duration;

use choreoscope::store::Store;
use choreoscope_e2e::{PrivatePostgres, TestBroker};
use common::{metric, produce_many, wait_for, CollectorProcess, NO_GROUP_POLLS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_during_ingest_loses_nothing() {
    outage("outage", PrivatePostgres::stop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_during_ingest_loses_nothing() {
    outage("pgkill", PrivatePostgres::kill).await;
}

/// Ingest into a private PostgreSQL that `go_away` takes down after the first 2 000 events and
/// that is started again once consumption has paused; 40 000 events in all.
async fn outage(name: &str, go_away: fn(&PrivatePostgres)) {
    let broker = TestBroker::from_env();
    let topic = TestBroker::unique_topic(name);
    broker.create_topics(&[&topic], 3).await.unwrap();
    let producer = broker.producer().unwrap();
    let pg = PrivatePostgres::start();
    let store = Store::connect(&pg.url()).await.unwrap();

    produce_many(&producer, &topic, 20_000).await;
    // Both outages run at once: neither may take the OTLP ports.
    let mut collector = CollectorProcess::start_with(
        &broker,
        &pg.url(),
        &format!("{name}-{}", uuid::Uuid::new_v4().simple()),
        &topic,
        &[
            NO_GROUP_POLLS.as_slice(),
            &["--otlp-grpc", "off", "--otlp-http", "off"],
        ]
        .concat(),
    );
    let before = wait_for(&store, 2_000, Duration::from_secs(120)).await;
    assert!(before.deliveries >= 2_000, "ingest started: {before:?}");

    go_away(&pg);
    produce_many(&producer, &topic, 20_000).await;
    // A write fails once the pool gives up reconnecting (its 5 s acquire timeout): poll for the
    // outage to show rather than sleeping a fixed time that may end before it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let during = loop {
        assert!(
            collector.running(),
            "the collector survives its store going away"
        );
        let text = collector.get("/metrics");
        if metric(&text, "choreoscope_paused") == 1.0 {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumption not paused 60 s into the outage:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        metric(
            &during,
            r#"choreoscope_store_errors_total{reason="unavailable"}"#
        ) >= 1.0,
        "{during}"
    );
    assert!(collector.get("/healthz").contains("store unavailable"));

    pg.resume();
    let after = wait_for(&store, 40_000, Duration::from_secs(300)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = store.counts().await.unwrap();
    if after.deliveries != 40_000 {
        if let choreoscope::store::Store::Postgres(pg) = &store {
            let rows: Vec<(i32, i64, i64, i64)> = sqlx::query_as(
                "SELECT kafka_partition, COUNT(*), MIN(kafka_offset), MAX(kafka_offset) FROM events GROUP BY 1 ORDER BY 1",
            )
            .fetch_all(pg.pool())
            .await
            .unwrap();
            eprintln!("per partition (partition, count, min, max): {rows:?}");
        }
    }
    assert_eq!(after.deliveries, 40_000);
    assert_eq!(
        (counts.events, counts.deliveries),
        (40_000, 40_000),
        "nothing lost, nothing doubled"
    );
    let metrics = collector.get("/metrics");
    assert_eq!(metric(&metrics, "choreoscope_paused"), 0.0, "resumed");
    assert!(collector.stop().success());
}
