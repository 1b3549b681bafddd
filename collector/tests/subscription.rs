//! `--include`/`--exclude` against the real broker: they narrow the subscription itself, so the
//! topics they leave out are never fetched, and a topic created later that passes them is picked
//! up without a restart.

mod common;

use std::time::Duration;

use choreoscope::ingest::TopicFilter;
use choreoscope::rules::TopicPattern;
use choreoscope_e2e::TestBroker;
use common::{produce_many, InProcessCollector};

/// The value of an unlabelled metric in a Prometheus text exposition.
fn gauge(exposition: &str, name: &str) -> i64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{exposition}"))
}

#[tokio::test]
async fn a_filter_narrows_the_subscription_and_follows_new_topics() {
    let broker = TestBroker::from_env();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (kept, left_out, created_later, excluded) = (
        format!("kept-a-{suffix}"),
        format!("left-{suffix}"),
        format!("kept-b-{suffix}"),
        format!("kept-dlq-{suffix}"),
    );
    broker
        .create_topics(&[&kept, &left_out, &excluded], 2)
        .await
        .unwrap();
    let producer = broker.producer().unwrap();
    produce_many(&producer, &kept, 50).await;
    produce_many(&producer, &left_out, 400).await;
    produce_many(&producer, &excluded, 30).await;

    let filter = TopicFilter {
        include: Some(TopicPattern::new(&format!("kept-.*-{suffix}")).unwrap()),
        exclude: Some(TopicPattern::new("kept-dlq-.*").unwrap()),
        ..Default::default()
    };
    let collector =
        InProcessCollector::start_filtered(&broker, &format!("filtered-{suffix}"), filter).await;
    collector
        .wait_for_deliveries(50, Duration::from_secs(60))
        .await;

    // A topic created after the start, which the filter lets through, joins the subscription
    // at the next refresh (500 ms in the test collector); the rebalance that takes loses and
    // doubles nothing.
    broker.create_topics(&[&created_later], 1).await.unwrap();
    produce_many(&producer, &created_later, 20).await;
    collector
        .wait_for_deliveries(70, Duration::from_secs(60))
        .await;
    // Time for anything of the left-out topics to arrive, were it fetched.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = collector.store.counts().await.unwrap();
    assert_eq!(
        (counts.events, counts.deliveries),
        (70, 70),
        "exactly the records of the two topics let through"
    );

    let exposition = collector.metrics.encode();
    for topic in [&left_out, &excluded] {
        assert!(
            !exposition.contains(topic.as_str()),
            "{topic} was fetched although the filter leaves it out:\n{exposition}"
        );
    }
    for topic in [&kept, &created_later] {
        assert!(
            exposition.contains(&format!(
                "choreoscope_records_consumed_total{{topic=\"{topic}\"}}"
            )),
            "{topic} was not consumed"
        );
    }
    assert_eq!(gauge(&exposition, "choreoscope_topics_subscribed"), 2);
    assert!(
        gauge(&exposition, "choreoscope_topics_left_out") >= 2,
        "the two left-out topics of this test are counted (the shared broker may hold more)"
    );
    collector.stop().await;
}
