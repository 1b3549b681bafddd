//! `--start-at` against the real broker: on a topic with old and new records, `latest`, a duration
//! and a time each collect exactly the records they should; a group with committed offsets
//! resumes from them whatever `--start-at` says; and records behind are measured from the
//! client's statistics.
//!
//! The broker's offsets-for-times (tansu 0.6's in-memory engine) looks a time up by when each
//! record batch was stored, not by the records' timestamps: the "old" records are therefore
//! produced seconds before the "new" ones, with old `CreateTime`s as well, so the tests hold on a
//! broker of either kind (docs/collector.md, "Test broker").

mod common;

use std::time::Duration;

use choreoscope::ingest::StartAt;
use choreoscope_e2e::TestBroker;
use choreoscope_sdk::OutgoingEvent;
use common::{stamped, InProcessCollector};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

/// Records written "long ago": their timestamps are three hours old.
const OLD: usize = 30;
/// Records written just before the collector starts.
const NEW: usize = 12;
/// How long after the old records the new ones are written.
const GAP: Duration = Duration::from_secs(8);

/// Produces `n` SDK-stamped records to `topic` with record timestamp `timestamp_ms`, spread over
/// its two partitions (each gets some: tansu answers a time after every record of a partition with
/// its first offset, where Kafka answers "none").
async fn produce_at(producer: &FutureProducer, topic: &str, n: usize, timestamp_ms: i64) {
    for i in 0..n {
        let key = format!("o-{timestamp_ms}-{i}");
        let headers = stamped(
            OutgoingEvent::new(topic, "OrderCreated").business_key("order.id", key.as_str()),
            "load",
            None,
        );
        producer
            .send(
                FutureRecord::to(topic)
                    .partition((i % 2) as i32)
                    .key(key.as_bytes())
                    .payload(&b"{}"[..])
                    .headers(headers.to_kafka())
                    .timestamp(timestamp_ms),
                Timeout::After(Duration::from_secs(10)),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A fresh topic of two partitions holding [`OLD`] records three hours old, then, [`GAP`] later,
/// [`NEW`] records of now; returns it with a time between the two (after the old ones were
/// stored, before the new ones were).
async fn topic_with_history(
    broker: &TestBroker,
    name: &str,
) -> (String, chrono::DateTime<chrono::Utc>) {
    let topic = TestBroker::unique_topic(name);
    broker.create_topics(&[&topic], 2).await.unwrap();
    let producer = broker.producer().unwrap();
    produce_at(&producer, &topic, OLD, now_ms() - 3 * 3600 * 1000).await;
    tokio::time::sleep(GAP / 2).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(GAP / 2).await;
    produce_at(&producer, &topic, NEW, now_ms()).await;
    (topic, between)
}

/// Waits until the collector's statistics show it assigned `topic` (its records-behind gauge).
async fn wait_until_assigned(collector: &InProcessCollector, topic: &str) {
    let gauge = format!("choreoscope_records_behind{{topic=\"{topic}\"}}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !collector.metrics.encode().contains(&gauge) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic} not assigned after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for `expected` deliveries, then long enough for any record beyond them to arrive, and
/// returns how many the store holds.
async fn settled_deliveries(collector: &InProcessCollector, expected: i64) -> i64 {
    if expected > 0 {
        collector
            .wait_for_deliveries(expected, Duration::from_secs(60))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    collector.store.counts().await.unwrap().deliveries
}

fn group(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn earliest_collects_the_whole_history() {
    let broker = TestBroker::from_env();
    let (topic, _) = topic_with_history(&broker, "start-earliest").await;
    let collector =
        InProcessCollector::start_at(&broker, &group("earliest"), &topic, StartAt::Earliest).await;
    let total = (OLD + NEW) as i64;
    assert_eq!(settled_deliveries(&collector, total).await, total);
    collector.stop().await;
}

#[tokio::test]
async fn latest_collects_only_records_written_after_it_started() {
    let broker = TestBroker::from_env();
    let (topic, _) = topic_with_history(&broker, "start-latest").await;
    let collector =
        InProcessCollector::start_at(&broker, &group("latest"), &topic, StartAt::Latest).await;
    wait_until_assigned(&collector, &topic).await;
    let producer = broker.producer().unwrap();
    produce_at(&producer, &topic, 7, now_ms()).await;
    assert_eq!(
        settled_deliveries(&collector, 7).await,
        7,
        "only the records written after the start, none of the {} before",
        OLD + NEW
    );
    collector.stop().await;
}

#[tokio::test]
async fn with_latest_a_topic_created_while_it_runs_is_read_from_its_first_record() {
    use choreoscope::health::HealthConfig;
    use choreoscope::ingest::TopicFilter;
    use choreoscope::rules::TopicPattern;

    let broker = TestBroker::from_env();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (first, later) = (
        format!("start-new-a-{suffix}"),
        format!("start-new-b-{suffix}"),
    );
    // Empty: tansu would answer its look-up at the start time (after the rebalance the new topic
    // causes) with offset 0 rather than Kafka's "none", and so re-read any history.
    broker.create_topics(&[&first], 1).await.unwrap();
    let filter = TopicFilter {
        include: Some(TopicPattern::new(&format!("start-new-.*-{suffix}")).unwrap()),
        ..Default::default()
    };
    let collector = InProcessCollector::start_configured(
        &broker,
        &group("new-topic"),
        filter,
        HealthConfig::default(),
        choreoscope::groups::GroupsConfig {
            poll_every: Duration::ZERO,
            ..Default::default()
        },
        StartAt::Latest,
    )
    .await;
    wait_until_assigned(&collector, &first).await;

    // Written at once, before the subscription (refreshed every 500 ms) catches up with the
    // topic: its end when assigned would skip them.
    broker.create_topics(&[&later], 2).await.unwrap();
    produce_at(&broker.producer().unwrap(), &later, 9, now_ms()).await;
    assert_eq!(settled_deliveries(&collector, 9).await, 9);
    collector.stop().await;
}

#[tokio::test]
async fn a_duration_collects_the_records_written_since_that_long_before_it_started() {
    let broker = TestBroker::from_env();
    let (topic, _) = topic_with_history(&broker, "start-duration").await;
    // The new records are a moment old, the old ones at least GAP (and, by timestamp, hours).
    let collector =
        InProcessCollector::start_at(&broker, &group("duration"), &topic, StartAt::Ago(GAP / 2))
            .await;
    assert_eq!(
        settled_deliveries(&collector, NEW as i64).await,
        NEW as i64,
        "exactly the {NEW} new records"
    );
    collector.stop().await;
}

#[tokio::test]
async fn a_time_collects_the_records_written_since_then() {
    let broker = TestBroker::from_env();
    let (topic, between) = topic_with_history(&broker, "start-time").await;
    let collector =
        InProcessCollector::start_at(&broker, &group("time"), &topic, StartAt::At(between)).await;
    assert_eq!(
        settled_deliveries(&collector, NEW as i64).await,
        NEW as i64,
        "exactly the {NEW} records written after {between}"
    );
    collector.stop().await;
}

#[tokio::test]
async fn a_restarted_group_resumes_from_its_committed_offsets_whatever_start_at_says() {
    let broker = TestBroker::from_env();
    let (topic, between) = topic_with_history(&broker, "start-resume").await;
    let group = group("resume");
    let producer = broker.producer().unwrap();

    // A first run from the start time commits the new records' offsets.
    let first = InProcessCollector::start_at(&broker, &group, &topic, StartAt::At(between)).await;
    assert_eq!(settled_deliveries(&first, NEW as i64).await, NEW as i64);
    first.stop().await;

    // Written while no collector runs: `latest` would skip them, the committed offsets do not.
    produce_at(&producer, &topic, 5, now_ms()).await;
    let second = InProcessCollector::start_at(&broker, &group, &topic, StartAt::Latest).await;
    assert_eq!(
        settled_deliveries(&second, 5).await,
        5,
        "the records after the committed offsets, whatever latest says"
    );
    second.stop().await;

    // And `earliest` reads nothing again of what the group has committed.
    produce_at(&producer, &topic, 3, now_ms()).await;
    let third = InProcessCollector::start_at(&broker, &group, &topic, StartAt::Earliest).await;
    assert_eq!(
        settled_deliveries(&third, 3).await,
        3,
        "only the records after the committed offsets, not the {} before",
        OLD + NEW + 5
    );
    third.stop().await;
}

#[tokio::test]
async fn records_behind_come_from_the_clients_statistics_and_reach_zero_once_caught_up() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let broker = TestBroker::from_env();
    let (topic, _) = topic_with_history(&broker, "start-progress").await;
    let collector =
        InProcessCollector::start_at(&broker, &group("progress"), &topic, StartAt::Earliest).await;
    let total = (OLD + NEW) as i64;
    collector
        .wait_for_deliveries(total, Duration::from_secs(60))
        .await;

    // The next statistics reports (every 5 s) see every partition at its end.
    let gauge = format!("choreoscope_records_behind{{topic=\"{topic}\"}} ");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let exposition = collector.metrics.encode();
        let behind: Option<i64> = exposition
            .lines()
            .find_map(|l| l.strip_prefix(&gauge)?.parse().ok());
        let p = collector.progress().progress();
        if behind == Some(0) && p.as_of_us.is_some() && p.records_behind == 0 {
            assert!(!p.catching_up && p.consuming, "{p:?}");
            assert!(
                exposition.contains("choreoscope_catching_up 0"),
                "{exposition}"
            );
            assert!(
                exposition.contains("choreoscope_catch_up_seconds 0"),
                "{exposition}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never at zero behind: {behind:?}, {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let response = choreoscope::http::app(collector.state())
        .oneshot(
            Request::get("/api/v1/ingest/progress")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["consuming"], true, "{answer}");
    assert_eq!(answer["catching_up"], false, "{answer}");
    assert_eq!(answer["records_behind"], 0, "{answer}");
    assert!(answer["as_of"].is_string(), "{answer}");
    collector.stop().await;
}
