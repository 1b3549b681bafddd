//! Retention, on SQLite and on a real PostgreSQL server, with a clock the tests set: old events go
//! with every row hanging off them, recent ones and their lineage stay, ingest keeps running while
//! deletion runs, the size bound deletes the oldest events first, the metrics say what was done,
//! and flow health forgets flows whose events are past the retention.

use std::sync::Arc;
use std::time::{Duration, Instant};

use choreoscope::clock::Clock;
use choreoscope::health::{
    ChoreographyModel, FlowEvent, HealthConfig, TrackedEvent, Tracker, TrackerConfig,
};
use choreoscope::lineage::{lineage, Direction, Flag};
use choreoscope::metrics::Metrics;
use choreoscope::record::{EventRecord, Interpreter, RawRecord};
use choreoscope::retention::{self, RetentionSettings};
use choreoscope::rules::Rules;
use choreoscope::store::Store;
use choreoscope_sdk::RecordHeaders;
use tokio_util::sync::CancellationToken;

/// "Now" for every test: 2027-01-15T08:00:00Z.
const NOW_US: i64 = 1_800_000_000_000_000;
const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

struct Fixture {
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lineage.db").display());
    Fixture {
        store: Store::connect(&url).await.unwrap(),
        _dir: Some(dir),
    }
}

async fn postgres() -> Fixture {
    let url = choreoscope_e2e::fresh_pg_database().await;
    Fixture {
        store: Store::connect(&url).await.unwrap(),
        _dir: None,
    }
}

/// An event as the collector would store it: id, cause, flow (correlation id and `order.id`
/// key), offset on `orders` partition 0, and time.
fn event(id: &str, cause: Option<&str>, flow: &str, offset: i64, time_us: i64) -> EventRecord {
    event_with(id, cause, flow, offset, time_us, &[])
}

fn event_with(
    id: &str,
    cause: Option<&str>,
    flow: &str,
    offset: i64,
    time_us: i64,
    extra: &[(&str, &str)],
) -> EventRecord {
    let mut h = RecordHeaders::new();
    h.set("ce_id", id);
    h.set("ce_type", "OrderStep");
    h.set("ce_source", "orders");
    h.set("ce_correlationid", flow);
    if let Some(c) = cause {
        h.set("ce_causationid", c);
    }
    for (k, v) in extra {
        h.set(k, *v);
    }
    let payload = format!(r#"{{"orderId":"{flow}","pad":"{}"}}"#, "x".repeat(512));
    let rules = Rules::from_table(
        toml::from_str(r#"key_rules = ["orders : /orderId -> order.id"]"#).unwrap(),
    )
    .unwrap();
    Interpreter::new(rules, 64 * 1024).interpret(
        RawRecord {
            topic: "orders",
            partition: 0,
            offset,
            key: Some(flow.as_bytes()),
            payload: Some(payload.as_bytes()),
            headers: &h,
            timestamp_ms: Some(time_us / 1000),
        },
        time_us,
    )
}

/// Rows of `table` (through the store's own pool).
async fn rows(store: &Store, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table}");
    match store {
        Store::Sqlite(s) => sqlx::query_scalar(&sql).fetch_one(s.pool()).await.unwrap(),
        Store::Postgres(p) => sqlx::query_scalar(&sql).fetch_one(p.pool()).await.unwrap(),
    }
}

fn keep_for(max_age: Duration) -> RetentionSettings {
    RetentionSettings {
        max_age: Some(max_age),
        pause: Duration::from_millis(1),
        ..RetentionSettings::default()
    }
}

/// Flow A entirely two days old, flow B an hour old, flow C straddling: its cause two days old,
/// its reaction an hour old. Returns the store's clock, standing at [`NOW_US`].
async fn three_flows(store: &Store) -> Clock {
    let old = NOW_US - 2 * DAY_US;
    let recent = NOW_US - HOUR_US;
    let batch = vec![
        event_with(
            "a1",
            None,
            "A",
            0,
            old,
            &[("traceparent", "not-a-traceparent")],
        ),
        event("a2", Some("a1"), "A", 1, old + 1_000),
        event("c1", None, "C", 2, old + 2_000),
        event("b1", None, "B", 3, recent),
        event("b2", Some("b1"), "B", 4, recent + 1_000),
        event("c2", Some("c1"), "C", 5, recent + 2_000),
        // a2 published again: an extra delivery and a duplicate_publish problem row.
        event("a2", Some("a1"), "A", 6, old + 1_000),
    ];
    store.write_batch(&batch).await.unwrap();
    Clock::manual(NOW_US)
}

async fn old_events_go_with_their_deliveries_keys_and_problems(f: Fixture) {
    let clock = three_flows(&f.store).await;
    let done = retention::pass(
        &f.store,
        &keep_for(Duration::from_secs(24 * 3600)),
        &clock,
        &Metrics::new(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(done.by_age, 3);
    for id in ["a1", "a2", "c1"] {
        assert!(f.store.event(id).await.unwrap().is_none(), "{id} kept");
    }
    assert_eq!(rows(&f.store, "events").await, 3);
    // A first delivery lives on its event's row: a2's extra one was the only `deliveries` row.
    assert_eq!(rows(&f.store, "deliveries").await, 0);
    assert_eq!(rows(&f.store, "event_problems").await, 0);
    if matches!(f.store, Store::Sqlite(_)) {
        let kept = ["b1", "b2", "c2"].map(str::to_owned);
        let kept_keys = f.store.keys_of(&kept).await.unwrap().len() as i64;
        assert_eq!(rows(&f.store, "event_keys").await, kept_keys);
    }
    assert!(f
        .store
        .by_key("order.id", "A", 100)
        .await
        .unwrap()
        .is_empty());
}

async fn recent_events_keep_their_lineage_and_keys(f: Fixture) {
    let clock = three_flows(&f.store).await;
    retention::pass(
        &f.store,
        &keep_for(Duration::from_secs(24 * 3600)),
        &clock,
        &Metrics::new(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let flow_b: Vec<String> = f
        .store
        .by_key("order.id", "B", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(flow_b, ["b1", "b2"]);
    let l = lineage(&f.store, "b2", Direction::Both, 10, 100)
        .await
        .unwrap()
        .unwrap();
    let mut edges: Vec<(String, String)> = l
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    edges.sort();
    assert_eq!(edges, [("b1".to_owned(), "b2".to_owned())]);
}

async fn a_flow_straddling_the_boundary_shows_its_reaction_with_a_missing_cause(f: Fixture) {
    let clock = three_flows(&f.store).await;
    retention::pass(
        &f.store,
        &keep_for(Duration::from_secs(24 * 3600)),
        &clock,
        &Metrics::new(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let l = lineage(&f.store, "c2", Direction::Both, 10, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(l.nodes.len(), 1);
    assert_eq!(l.nodes[0].event.event_id, "c2");
    assert!(l.nodes[0].flags.contains(&Flag::CauseMissing));
}

async fn the_metrics_tell_the_size_the_oldest_event_kept_and_the_events_deleted(f: Fixture) {
    let clock = three_flows(&f.store).await;
    let metrics = Metrics::new();
    let done = retention::pass(
        &f.store,
        &keep_for(Duration::from_secs(24 * 3600)),
        &clock,
        &metrics,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let text = metrics.encode();
    assert!(
        text.contains("choreoscope_retention_deleted_events_total 3\n"),
        "{text}"
    );
    let b1_seconds = (NOW_US - HOUR_US) / 1_000_000;
    assert!(
        text.contains(&format!("choreoscope_oldest_event_seconds {b1_seconds}\n")),
        "{text}"
    );
    assert!(done.size_bytes > 0);
    assert!(
        text.contains(&format!(
            "choreoscope_store_size_bytes {}\n",
            done.size_bytes
        )),
        "{text}"
    );
}

/// `n` events of flows `prefix-0…`, one a second from `from_us`, at offsets from `offset`.
fn many(prefix: &str, n: usize, offset: i64, from_us: i64) -> Vec<EventRecord> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let flow = format!("{prefix}-flow-{}", i / 4);
            event(
                &id,
                None,
                &flow,
                offset + i as i64,
                from_us + i as i64 * 1_000_000,
            )
        })
        .collect()
}

async fn ingest_keeps_running_while_retention_deletes(f: Fixture) {
    const OLD: usize = 20_000;
    const NEW: usize = 4_000;
    for chunk in many("old", OLD, 0, NOW_US - 30 * DAY_US).chunks(2_000) {
        f.store.write_batch(chunk).await.unwrap();
    }
    let settings = RetentionSettings {
        batch: 500,
        ..keep_for(Duration::from_secs(24 * 3600))
    };
    let new = many("new", NEW, OLD as i64, NOW_US - HOUR_US);
    let store = f.store.clone();
    let deleting = tokio::spawn(async move {
        retention::pass(
            &store,
            &settings,
            &Clock::manual(NOW_US),
            &Metrics::new(),
            &CancellationToken::new(),
        )
        .await
        .unwrap()
    });
    let mut slowest = Duration::ZERO;
    let mut written_while_deleting = 0;
    for chunk in new.chunks(100) {
        let started = Instant::now();
        let out = f.store.write_batch(chunk).await.unwrap();
        slowest = slowest.max(started.elapsed());
        assert_eq!(out.new_events, chunk.len());
        if !deleting.is_finished() {
            written_while_deleting += chunk.len();
        }
    }
    let done = deleting.await.unwrap();
    assert_eq!(done.by_age, OLD as u64);
    assert_eq!(f.store.counts().await.unwrap().events, NEW as i64);
    assert!(
        written_while_deleting > 0,
        "no batch was written while retention deleted"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "a batch waited {slowest:?} behind retention"
    );
}

async fn max_store_size_deletes_the_oldest_events_first(f: Fixture) {
    const N: usize = 6_000;
    for chunk in many("e", N, 0, NOW_US - DAY_US).chunks(2_000) {
        f.store.write_batch(chunk).await.unwrap();
    }
    let size = f.store.size_bytes().await.unwrap();
    let settings = RetentionSettings {
        max_size: Some(size / 2),
        pause: Duration::from_millis(1),
        ..RetentionSettings::default()
    };
    let done = retention::pass(
        &f.store,
        &settings,
        &Clock::manual(NOW_US),
        &Metrics::new(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(
        done.by_size >= N as u64 / 2,
        "{} deleted of {N}",
        done.by_size
    );
    let kept = N as u64 - done.by_size;
    assert_eq!(f.store.counts().await.unwrap().events, kept as i64);
    let first_kept = format!("e-{}", done.by_size);
    assert!(f.store.event(&first_kept).await.unwrap().is_some());
    let last_deleted = format!("e-{}", done.by_size - 1);
    assert!(f.store.event(&last_deleted).await.unwrap().is_none());
    assert_eq!(
        done.oldest_event_us,
        Some(NOW_US - DAY_US + done.by_size as i64 * 1_000_000)
    );
}

async fn a_cancelled_token_stops_retention_between_two_transactions(f: Fixture) {
    for chunk in many("old", 4_000, 0, NOW_US - 30 * DAY_US).chunks(2_000) {
        f.store.write_batch(chunk).await.unwrap();
    }
    let stop = CancellationToken::new();
    stop.cancel();
    let settings = RetentionSettings {
        batch: 1_000,
        ..keep_for(Duration::from_secs(3600))
    };
    let task = tokio::spawn(retention::run(
        f.store.clone(),
        settings,
        Clock::manual(NOW_US),
        Arc::new(Metrics::new()),
        stop,
    ));
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("retention stopped")
        .unwrap();
    assert_eq!(f.store.counts().await.unwrap().events, 3_000);
}

macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod sqlite_store {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $test() { super::$test(super::sqlite().await).await } )*
        }
        mod postgres_store {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $test() { super::$test(super::postgres().await).await } )*
        }
    };
}

on_both_stores!(
    old_events_go_with_their_deliveries_keys_and_problems,
    recent_events_keep_their_lineage_and_keys,
    a_flow_straddling_the_boundary_shows_its_reaction_with_a_missing_cause,
    the_metrics_tell_the_size_the_oldest_event_kept_and_the_events_deleted,
    ingest_keeps_running_while_retention_deletes,
    max_store_size_deletes_the_oldest_events_first,
    a_cancelled_token_stops_retention_between_two_transactions,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_max_store_size_brings_the_measured_size_under_the_limit() {
    let f = sqlite().await;
    for chunk in many("e", 6_000, 0, NOW_US - DAY_US).chunks(2_000) {
        f.store.write_batch(chunk).await.unwrap();
    }
    let limit = f.store.size_bytes().await.unwrap() / 3;
    let settings = RetentionSettings {
        max_size: Some(limit),
        pause: Duration::from_millis(1),
        ..RetentionSettings::default()
    };
    let done = retention::pass(
        &f.store,
        &settings,
        &Clock::manual(NOW_US),
        &Metrics::new(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(done.size_bytes <= limit, "{} > {limit}", done.size_bytes);
    assert_eq!(f.store.size_bytes().await.unwrap(), done.size_bytes);
}

/// A flow of one failed event at `time_us` (failed flows are kept longest: a day by default).
fn failed_flow(time_us: i64) -> TrackedEvent {
    TrackedEvent {
        event: FlowEvent {
            id: "f1".into(),
            service: Some("payment".into()),
            event_type: Some("PaymentFailed".into()),
            time_us,
            failure: Some("payment-group: card declined".into()),
        },
        causation_id: None,
        correlation_id: Some("flow-f".into()),
        keys: vec![],
    }
}

#[test]
fn flow_health_forgets_a_flow_once_its_last_event_is_past_the_retention() {
    let tracker = |retention: Option<Duration>| {
        let mut t = Tracker::new(
            ChoreographyModel::new(HealthConfig::default()),
            TrackerConfig::default(),
        );
        if let Some(r) = retention {
            t.keep_within(r);
        }
        t.observe(failed_flow(NOW_US), NOW_US);
        t.tick(NOW_US + 2 * HOUR_US);
        t
    };
    // Without retention a failed flow is kept a day after its last event …
    assert!(tracker(None).health("flow-f").is_some());
    // … with a one-hour retention its events are deleted after an hour, and so is the flow.
    assert!(tracker(Some(Duration::from_secs(3600)))
        .health("flow-f")
        .is_none());
}
