//! Consumer-group positions against the real test broker: a collector polls the cluster's groups
//! while real consumer groups read a topic — one committed part of it and stays, one read it all
//! and left cleanly — and its handle says where each stands against each record, and why a
//! reaction would be missing.
//!
//! The topic gets one record per produce batch: tansu answers the high watermark right only then
//! (docs/health.md, "What the test broker answers").

mod common;

use std::sync::Arc;
use std::time::Duration;

use choreoscope::cluster::Cluster;
use choreoscope::groups::service::follow;
use choreoscope::groups::{DiagnosisKind, GroupPosition, GroupState, GroupsConfig, GroupsHandle};
use choreoscope::ingest::{IngestConfig, TopicFilter};
use choreoscope::metrics::Metrics;
use choreoscope::rules::TopicPattern;
use choreoscope_e2e::TestBroker;
use common::{consumer, read_and_commit, CollectorProcess, InProcessCollector};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

/// Records produced.
const N: i64 = 10;
/// Records the lagging group commits.
const M: i64 = 4;

/// A collector polling every 200 ms, a topic of `N` records, group `bank-…` that committed `M`
/// of them and is still a member, and group `ledger-…` that committed all and left.
struct Scene {
    collector: InProcessCollector,
    topic: String,
    quiet: String,
    bank: String,
    ledger: String,
    own: String,
    bank_consumer: StreamConsumer,
}

impl Scene {
    async fn start() -> Self {
        let broker = TestBroker::from_env();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let topic = format!("payments-{suffix}");
        let quiet = format!("quiet-{suffix}");
        broker.create_topics(&[&topic, &quiet], 1).await.unwrap();
        let producer = broker.producer().unwrap();
        for i in 0..N {
            // Awaited one by one: one record per batch.
            producer
                .send(
                    FutureRecord::<str, str>::to(&topic).payload(&format!("payment {i}")),
                    Timeout::After(Duration::from_secs(10)),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
        let own = format!("collector-{suffix}");
        let collector = InProcessCollector::start_with_groups(
            &broker,
            &own,
            TopicFilter {
                include: Some(TopicPattern::new(&format!(".*{suffix}")).unwrap()),
                exclude: None,
                ..Default::default()
            },
            GroupsConfig {
                poll_every: Duration::from_millis(200),
                ..GroupsConfig::default()
            },
        )
        .await;
        let bank = format!("bank-{suffix}");
        let bank_consumer = consumer(&broker, &bank, &topic);
        read_and_commit(&bank_consumer, &topic, M).await;
        let ledger = format!("ledger-{suffix}");
        let ledger_consumer = consumer(&broker, &ledger, &topic);
        read_and_commit(&ledger_consumer, &topic, N).await;
        ledger_consumer.unsubscribe();
        drop(ledger_consumer);
        let scene = Self {
            collector,
            topic,
            quiet,
            bank,
            ledger,
            own,
            bank_consumer,
        };
        // The collector stores every record and commits: its own group is listed by then.
        scene
            .collector
            .wait_for_deliveries(N, Duration::from_secs(30))
            .await;
        scene.wait_until_polled().await;
        scene
    }

    fn position(&self, group: &str, offset: i64) -> Option<GroupPosition> {
        self.collector
            .groups()
            .positions(&self.topic, 0, offset)
            .into_iter()
            .find(|p| p.group == group)
    }

    /// Waits until a poll shows bank at `M`, and ledger at `N` without members.
    async fn wait_until_polled(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let bank = self.position(&self.bank, 0);
            let ledger = self.position(&self.ledger, 0);
            if bank.as_ref().and_then(|p| p.committed_offset) == Some(M)
                && ledger.as_ref().map(|p| (p.state, p.committed_offset))
                    == Some((GroupState::Inactive, Some(N)))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the polls never showed bank at {M} and ledger inactive at {N}: bank {bank:?}, ledger {ledger:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) {
        self.collector.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_is_pending_from_its_committed_offset_with_the_records_left_to_read() {
    let scene = Scene::start().await;
    for offset in M..N {
        let p = scene.position(&scene.bank, offset).unwrap();
        assert_eq!(p.state, GroupState::Pending, "offset {offset}");
        assert_eq!(p.lag_records, Some(offset + 1 - M), "offset {offset}");
        assert_eq!(p.service, None, "no service named bank is known yet");
    }
    assert_eq!(
        scene.position(&scene.bank, N - 1).unwrap().lag_records,
        Some(N - M),
        "the last record is N − M records away"
    );
    scene.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_has_consumed_the_records_before_its_committed_offset() {
    let scene = Scene::start().await;
    for offset in 0..M {
        let p = scene.position(&scene.bank, offset).unwrap();
        assert_eq!(p.state, GroupState::Consumed, "offset {offset}");
        assert_eq!(p.committed_offset, Some(M));
        assert_eq!(p.lag_records, None);
    }
    scene.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_whose_member_left_cleanly_is_inactive_whatever_its_offsets() {
    let scene = Scene::start().await;
    for offset in 0..N {
        let p = scene.position(&scene.ledger, offset).unwrap();
        assert_eq!(p.state, GroupState::Inactive, "offset {offset}");
        assert_eq!(p.committed_offset, Some(N));
    }
    scene.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_collectors_own_group_has_no_position() {
    let scene = Scene::start().await;
    let lister: BaseConsumer = TestBroker::from_env().config().create().unwrap();
    let listed = lister
        .fetch_group_list(Some(&scene.own), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        listed.groups().iter().map(|g| g.name()).collect::<Vec<_>>(),
        [scene.own.as_str()],
        "the broker lists the collector's group: it committed its offsets"
    );
    let groups: Vec<String> = scene
        .collector
        .groups()
        .positions(&scene.topic, 0, 0)
        .into_iter()
        .map(|p| p.group)
        .collect();
    assert!(!groups.contains(&scene.own), "{groups:?}");
    assert!(
        !scene
            .collector
            .groups()
            .book()
            .group_names()
            .any(|g| g == scene.own),
        "it is left out of the book altogether"
    );
    scene.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lag_gauge_shows_each_groups_records_left_per_partition() {
    let scene = Scene::start().await;
    let text = scene.collector.metrics.encode();
    for (group, lag) in [(&scene.bank, N - M), (&scene.ledger, 0)] {
        let series = format!(
            "choreoscope_consumer_group_lag{{group=\"{group}\",topic=\"{}\",partition=\"0\"}} {lag}",
            scene.topic
        );
        assert!(text.contains(&series), "{series} not in\n{text}");
    }
    scene.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_diagnosis_tells_a_lagging_group_from_one_that_consumed_one_without_members_and_no_group()
{
    let scene = Scene::start().await;
    let groups = scene.collector.groups();
    let now = chrono::Utc::now().timestamp_micros();
    let diagnose = |topic: &str, offset, service| {
        groups.diagnose(topic, 0, offset, "PaymentCreated", service, now)
    };

    let lagging = diagnose(&scene.topic, N - 1, Some("bank"));
    assert_eq!(lagging.kind, DiagnosisKind::Lagging, "{lagging:?}");
    assert!(
        lagging.text.starts_with(&format!(
            "bank's group `{}` is {} records behind on {}/0",
            scene.bank,
            N - M,
            scene.topic
        )),
        "{}",
        lagging.text
    );

    let consumed = diagnose(&scene.topic, 0, Some("bank"));
    assert_eq!(consumed.kind, DiagnosisKind::ConsumedNoReaction);
    assert!(
        consumed
            .text
            .contains(&format!("consumed PaymentCreated ({}/0@0)", scene.topic))
            && consumed.text.ends_with("and produced nothing"),
        "{}",
        consumed.text
    );

    let inactive = diagnose(&scene.topic, 0, Some("ledger"));
    assert_eq!(inactive.kind, DiagnosisKind::Inactive);
    assert_eq!(
        inactive.text,
        format!("ledger's group `{}` has no members", scene.ledger)
    );

    let nobody = diagnose(&scene.quiet, 0, Some("bank"));
    assert_eq!(nobody.kind, DiagnosisKind::NoGroup);
    assert_eq!(
        nobody.text,
        format!("no consumer group reads {}", scene.quiet)
    );
    scene.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn consumed_at_is_when_a_poll_first_saw_the_group_commit_past_the_record() {
    let scene = Scene::start().await;
    assert_eq!(
        scene.position(&scene.bank, M).unwrap().state,
        GroupState::Pending
    );
    let before = chrono::Utc::now().timestamp_micros();
    read_and_commit(&scene.bank_consumer, &scene.topic, M + 2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let p = loop {
        let p = scene.position(&scene.bank, M).unwrap();
        if p.state == GroupState::Consumed {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "{p:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let at = p.consumed_at_us.expect("a poll saw it pending before");
    assert!(
        at >= before && at <= chrono::Utc::now().timestamp_micros(),
        "{at} not after {before}"
    );
    scene.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_collect_binary_polls_the_groups_at_the_interval_given_and_serves_their_lag() {
    let broker = TestBroker::from_env();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("payments-{suffix}");
    broker.create_topics(&[&topic], 1).await.unwrap();
    let producer = broker.producer().unwrap();
    for i in 0..N {
        producer
            .send(
                FutureRecord::<str, str>::to(&topic).payload(&format!("payment {i}")),
                Timeout::After(Duration::from_secs(10)),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let bank = format!("bank-{suffix}");
    let bank_consumer = consumer(&broker, &bank, &topic);
    read_and_commit(&bank_consumer, &topic, M).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let process = CollectorProcess::start_with(
        &broker,
        &db,
        &format!("collector-{suffix}"),
        &topic,
        &["--group-poll-every", "300ms"],
    );
    let series = format!(
        "choreoscope_consumer_group_lag{{group=\"{bank}\",topic=\"{topic}\",partition=\"0\"}} {}",
        N - M
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(process.listen).is_err() {
        assert!(tokio::time::Instant::now() < deadline, "it never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let metrics = process.get("/metrics");
        if metrics.contains(&series) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never served:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(process.stop().success(), "it stops cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_that_does_not_answer_is_counted_and_never_stops_the_polling() {
    // Nothing listens on this port: every metadata request fails after its timeout. (Here and not
    // in the library's unit tests: librdkafka's threads would disturb their glibc-arena count.)
    let port = common::free_addr().port();
    let ingest = IngestConfig {
        cluster: Cluster::plaintext(format!("127.0.0.1:{port}")),
        group: "collector".into(),
        topics: TopicFilter::default(),
        batch_size: 1,
        batch_timeout: Duration::from_millis(10),
        metadata_refresh: Duration::from_secs(1),
        start_at: Default::default(),
    };
    let groups = GroupsHandle::default();
    let metrics = Arc::new(Metrics::new());
    let cancel = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();
    let store = choreoscope::store::Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("g.db").display()
    ))
    .await
    .unwrap();
    let task = tokio::spawn(follow(
        groups.clone(),
        store,
        ingest,
        metrics.clone(),
        Duration::from_millis(50),
        cancel.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let failed = "choreoscope_consumer_group_poll_errors_total{request=\"metadata\"} 1";
    while !metrics.encode().contains(failed) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!task.is_finished(), "a failed poll is not fatal");
    assert_eq!(groups.book().polled_at_us(), None, "nothing was recorded");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the task stops at once when cancelled")
        .unwrap();
}

fn record(
    id: &str,
    source: &str,
    topic: &str,
    cause: Option<&str>,
) -> choreoscope::record::EventRecord {
    let mut h = choreoscope_sdk::RecordHeaders::new();
    h.set("ce_id", id);
    h.set("ce_source", source);
    h.set("ce_type", "Happened");
    if let Some(c) = cause {
        h.set("ce_causationid", c);
    }
    let now = chrono::Utc::now().timestamp_micros();
    choreoscope::record::Interpreter::new(choreoscope::rules::Rules::default(), 1024).interpret(
        choreoscope::record::RawRecord {
            topic,
            partition: 0,
            offset: 0,
            key: None,
            payload: None,
            headers: &h,
            timestamp_ms: Some(now / 1000),
        },
        now,
    )
}

#[tokio::test]
async fn a_group_named_after_no_service_is_tied_to_the_one_service_reacting_to_its_topic() {
    use choreoscope::groups::service::learn_reactors;
    use choreoscope::groups::{Poll, PolledGroup};
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().unwrap();
    let store = choreoscope::store::Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("r.db").display()
    ))
    .await
    .unwrap();
    store
        .write_batch(&[
            record("p", "payment", "payments", None),
            record("a", "audit", "audits", Some("p")),
        ])
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_micros();
    let groups = GroupsHandle::default();
    groups.record(Poll {
        at_us: now,
        topics: ["payments".to_owned()].into(),
        groups: Some(BTreeMap::from([(
            "ledger-svc-7".to_owned(),
            PolledGroup {
                state: "Stable".into(),
                members: 1,
                committed: Some(BTreeMap::from([(("payments".to_owned(), 0), 1)])),
                read_at_us: now,
            },
        )])),
        watermarks: BTreeMap::new(),
    });
    assert_eq!(groups.book().service_of("ledger-svc-7"), None);
    learn_reactors(&groups, &store).await.unwrap();
    assert_eq!(
        groups.book().service_of("ledger-svc-7").as_deref(),
        Some("audit")
    );
    store.close().await;
}
