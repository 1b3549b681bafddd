//! The broker is killed mid-ingest and started again (tansu on its SQLite engine, so records
//! and committed offsets survive): the collector reconnects, resumes from its committed offsets,
//! and stores every record exactly once.

mod common;

use std::time::Duration;

use choreoscope::store::Store;
use choreoscope_e2e::{RestartableBroker, TestBroker};
use common::{produce_many, wait_for, CollectorProcess, NO_GROUP_POLLS};

/// Left out of `scripts/test`: the broker, not the collector, fails it about one run in four on a
/// busy machine. After the restart, tansu 0.6.0's SQLite engine cannot read back the consumer
/// group it stored: every JoinGroup of the collector's group fails inside tansu with
/// `Storage(SerdeJson(Error("invalid type: string \"{\"generation_id\":…", expected struct
/// GroupDetail)))` (the stored JSON is wrapped as a string instead of parsed), so the group never
/// forms again and nothing is fetched; the collector meanwhile retries as it should. The fix is
/// upstream (the project is now `nisshi`, pull request nisshi-io/nisshi#662), in releases that
/// need rustc 1.96, newer than this machine's toolchain. The test's failure prints tansu's errors
/// and keeps its whole log (`tests/src/restart.rs`). Run it with
/// `cargo test -p choreoscope --test broker_restart -- --ignored`.
#[ignore = "tansu 0.6.0 cannot read back its stored consumer group after a restart (see the doc comment)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_ingest_loses_and_doubles_nothing() {
    let mut tansu = RestartableBroker::start();
    let broker = tansu.broker();
    let topic = TestBroker::unique_topic("restart");
    broker.create_topics(&[&topic], 3).await.unwrap();
    let producer = broker.producer().unwrap();
    produce_many(&producer, &topic, 3_000).await;
    drop(producer);

    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("restart.db").display());
    let store = Store::connect(&db).await.unwrap();
    let mut collector = CollectorProcess::start_with(
        &broker,
        &db,
        &format!("restart-{}", uuid::Uuid::new_v4().simple()),
        &topic,
        &[
            NO_GROUP_POLLS.as_slice(),
            &["--otlp-grpc", "off", "--otlp-http", "off"],
        ]
        .concat(),
    );
    let before = wait_for(&store, 300, Duration::from_secs(120)).await;
    assert!(before.deliveries >= 300, "ingest started: {before:?}");

    tansu.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        collector.running(),
        "the collector survives its broker going away"
    );
    tansu.resume();

    let producer = broker.producer().unwrap();
    produce_many(&producer, &topic, 1_000).await;
    let after = wait_for(&store, 4_000, Duration::from_secs(300)).await;
    // Anything doubled would show up after the last record arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = store.counts().await.unwrap();
    assert_eq!(after.deliveries, 4_000, "{after:?}");
    assert_eq!(
        (counts.events, counts.deliveries),
        (4_000, 4_000),
        "nothing lost, nothing doubled"
    );
    assert!(collector.stop().success());
}
