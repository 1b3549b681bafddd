//! One store suite, run against SQLite and against a real PostgreSQL server: both must behave
//! identically.

use choreoscope::lineage::{lineage, Direction, Flag};
use choreoscope::record::{EventRecord, Interpreter, RawRecord};
use choreoscope::rules::Rules;
use choreoscope::store::{SearchFilter, Store, WriteOutcome};
use choreoscope_sdk::RecordHeaders;

struct Fixture {
    store: Store,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lineage.db").display());
    Fixture {
        store: Store::connect(&url).await.unwrap(),
        url,
        _dir: Some(dir),
    }
}

async fn postgres() -> Fixture {
    let url = choreoscope_e2e::fresh_pg_database().await;
    Fixture {
        store: Store::connect(&url).await.unwrap(),
        url,
        _dir: None,
    }
}

/// Builds an event record the way the collector would from a record with these headers.
struct Ev<'a> {
    id: &'a str,
    cause: Option<&'a str>,
    correlation: Option<&'a str>,
    topic: &'a str,
    offset: i64,
    time_ms: i64,
    extra: Vec<(&'a str, String)>,
}

fn ev<'a>(id: &'a str, cause: Option<&'a str>, offset: i64) -> Ev<'a> {
    Ev {
        id,
        cause,
        correlation: Some("flow-1"),
        topic: "orders",
        offset,
        time_ms: 1_000 + offset,
        extra: vec![],
    }
}

impl Ev<'_> {
    fn record(&self) -> EventRecord {
        let mut h = RecordHeaders::new();
        h.set("ce_id", self.id);
        h.set("ce_type", format!("T{}", self.id));
        h.set("ce_source", "svc");
        if let Some(c) = self.cause {
            h.set("ce_causationid", c);
        }
        if let Some(c) = self.correlation {
            h.set("ce_correlationid", c);
        }
        for (k, v) in &self.extra {
            h.set(k, v.as_str());
        }
        Interpreter::new(Rules::default(), 1024).interpret(
            RawRecord {
                topic: self.topic,
                partition: 0,
                offset: self.offset,
                key: Some(b"o-1"),
                payload: Some(br#"{"id":"o-1"}"#),
                headers: &h,
                timestamp_ms: Some(self.time_ms),
            },
            0,
        )
    }
}

fn ids(l: &choreoscope::lineage::Lineage) -> Vec<&str> {
    let mut v: Vec<&str> = l.nodes.iter().map(|n| n.event.event_id.as_str()).collect();
    v.sort_unstable();
    v
}

fn edges(l: &choreoscope::lineage::Lineage) -> Vec<(String, String)> {
    let mut v: Vec<_> = l
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    v.sort();
    v
}

async fn redelivered_records_are_stored_once(f: Fixture) {
    let batch = vec![ev("a", None, 0).record(), ev("b", Some("a"), 1).record()];
    let first = f.store.write_batch(&batch).await.unwrap();
    assert_eq!(
        (first.new_events, first.new_deliveries, first.redelivered),
        (2, 2, 0)
    );
    let again = f.store.write_batch(&batch).await.unwrap();
    assert_eq!(
        (again.new_events, again.new_deliveries, again.redelivered),
        (0, 0, 2)
    );
    let counts = f.store.counts().await.unwrap();
    assert_eq!((counts.events, counts.deliveries), (2, 2));
}

async fn same_id_at_two_offsets_is_one_event_with_two_deliveries(f: Fixture) {
    let out = f
        .store
        .write_batch(&[ev("a", None, 0).record(), ev("a", None, 7).record()])
        .await
        .unwrap();
    assert_eq!((out.new_events, out.duplicate_publishes), (1, 1));
    let later = f
        .store
        .write_batch(&[ev("a", None, 9).record()])
        .await
        .unwrap();
    assert_eq!((later.new_events, later.duplicate_publishes), (0, 1));
    assert_eq!(later.per_topic["orders"].duplicate_publishes, 1);
    let event = f.store.event("a").await.unwrap().unwrap();
    assert_eq!(event.delivery_count, 3);
    assert_eq!(
        event.kafka_offset, 0,
        "the first delivery is the event's position"
    );
    let offsets: Vec<i64> = f
        .store
        .deliveries("a")
        .await
        .unwrap()
        .iter()
        .map(|d| d.kafka_offset)
        .collect();
    assert_eq!(offsets, vec![0, 7, 9]);
    // All three re-delivered (a restart), the first and an extra one in one batch: nothing changes.
    let again = f
        .store
        .write_batch(&[
            ev("a", None, 9).record(),
            ev("a", None, 0).record(),
            ev("a", None, 7).record(),
        ])
        .await
        .unwrap();
    assert_eq!(
        (again.new_events, again.new_deliveries, again.redelivered),
        (0, 0, 3)
    );
    assert_eq!(f.store.event("a").await.unwrap().unwrap().delivery_count, 3);
    let counts = f.store.counts().await.unwrap();
    assert_eq!((counts.events, counts.deliveries), (1, 3));
    let graph = lineage(&f.store, "a", Direction::Both, 5, 100)
        .await
        .unwrap()
        .unwrap();
    assert!(graph.nodes[0].flags.contains(&Flag::DuplicatePublish));
}

/// Two collectors of one group given the same records (a rebalance): two stores on one database
/// write overlapping batches at once — one forwards, the other backwards and forwards, two
/// batches at a time as the collector does — in batches of different sizes; all their outcomes.
async fn overlapping_batches_written_at_once(
    f: &Fixture,
    records: &[EventRecord],
) -> Vec<WriteOutcome> {
    let forward: Vec<EventRecord> = records.to_vec();
    let backward: Vec<EventRecord> = records.iter().rev().cloned().collect();
    let other = Store::connect(&f.url).await.unwrap();
    let write_all = |store: &Store, records: Vec<EventRecord>, size: usize| {
        let store = store.clone();
        async move {
            let mut outcomes = Vec::new();
            for batch in records.chunks(size) {
                outcomes.push(store.write_batch(batch).await.expect("no batch fails"));
            }
            outcomes
        }
    };
    let (a, b, c) = tokio::join!(
        write_all(&f.store, forward.clone(), 60),
        write_all(&other, backward, 45),
        write_all(&other, forward, 80),
    );
    a.into_iter().chain(b).chain(c).collect()
}

async fn concurrent_writers_of_overlapping_batches_store_each_event_and_delivery_once(f: Fixture) {
    // 300 events at offsets 0–299; 40 of them published again at offsets 300–339.
    let ids: Vec<String> = (0..300).map(|i| format!("e{i:03}")).collect();
    let mut records: Vec<EventRecord> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| ev(id, None, i as i64).record())
        .collect();
    records.extend((0..40).map(|i| ev(&ids[i * 7], None, 300 + i as i64).record()));

    let outcomes = overlapping_batches_written_at_once(&f, &records).await;

    let sum = |field: fn(&WriteOutcome) -> usize| outcomes.iter().map(field).sum::<usize>();
    assert_eq!(sum(|o| o.new_events), 300, "each event is created once");
    assert_eq!(
        sum(|o| o.duplicate_publishes),
        40,
        "each second publish is counted once"
    );
    assert_eq!(sum(|o| o.new_deliveries), 340);
    assert_eq!(sum(|o| o.redelivered), 3 * 340 - 340);
    let counts = f.store.counts().await.unwrap();
    assert_eq!((counts.events, counts.deliveries), (300, 340));
    for (i, id) in ids.iter().enumerate() {
        let event = f.store.event(id).await.unwrap().unwrap();
        let published_twice = i % 7 == 0 && i / 7 < 40;
        assert_eq!(event.delivery_count, 1 + i64::from(published_twice), "{id}");
    }
    let graph = lineage(&f.store, &ids[7], Direction::Both, 5, 100)
        .await
        .unwrap()
        .unwrap();
    let node = graph.nodes.iter().find(|n| n.event.event_id == ids[7]);
    assert!(node.unwrap().flags.contains(&Flag::DuplicatePublish));
}

async fn reaction_stored_before_its_cause_links_once_the_cause_arrives(f: Fixture) {
    f.store
        .write_batch(&[ev("child", Some("parent"), 5).record()])
        .await
        .unwrap();
    let before = lineage(&f.store, "child", Direction::Up, 5, 100)
        .await
        .unwrap()
        .unwrap();
    assert!(before.edges.is_empty());
    assert!(before.nodes[0].flags.contains(&Flag::CauseMissing));

    f.store
        .write_batch(&[ev("parent", None, 9).record()])
        .await
        .unwrap();
    let after = lineage(&f.store, "child", Direction::Up, 5, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edges(&after), vec![("parent".into(), "child".into())]);
    assert!(!after.nodes[0].flags.contains(&Flag::CauseMissing));
    assert!(after.nodes[1].flags.contains(&Flag::Root));
    let down = lineage(&f.store, "parent", Direction::Down, 5, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&down), vec!["child", "parent"]);
    assert_eq!(
        down.edges[0].latency_us,
        (1_005 - 1_009) * 1000,
        "latency from broker times"
    );
}

async fn lineage_terminates_on_a_cycle_and_marks_it(f: Fixture) {
    f.store
        .write_batch(&[
            ev("a", Some("c"), 0).record(),
            ev("b", Some("a"), 1).record(),
            ev("c", Some("b"), 2).record(),
        ])
        .await
        .unwrap();
    for direction in [Direction::Up, Direction::Down, Direction::Both] {
        let graph = lineage(&f.store, "a", direction, 50, 100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ids(&graph), vec!["a", "b", "c"], "{direction:?}");
        assert_eq!(graph.edges.len(), 3, "{direction:?}: {:?}", graph.edges);
        assert_eq!(
            graph.edges.iter().filter(|e| e.cycle).count(),
            1,
            "{direction:?}"
        );
        assert!(graph.nodes.iter().any(|n| n.flags.contains(&Flag::Cycle)));
    }
}

async fn fan_out_depth_and_node_limits_are_respected(f: Fixture) {
    f.store
        .write_batch(&[
            ev("root", None, 0).record(),
            ev("x", Some("root"), 1).record(),
            ev("y", Some("root"), 2).record(),
            ev("z", Some("x"), 3).record(),
        ])
        .await
        .unwrap();
    let one = lineage(&f.store, "root", Direction::Down, 1, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&one), vec!["root", "x", "y"]);
    let all = lineage(&f.store, "root", Direction::Down, 9, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edges(&all).len(), 3);
    let cut = lineage(&f.store, "root", Direction::Down, 9, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cut.nodes.len(), 2);
    assert!(cut.truncated.as_deref().unwrap().contains("node limit"));
    let up = lineage(&f.store, "z", Direction::Up, 9, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&up), vec!["root", "x", "z"]);
    assert_eq!(
        up.nodes
            .iter()
            .find(|n| n.event.event_id == "root")
            .unwrap()
            .depth,
        -2
    );
    assert!(lineage(&f.store, "nope", Direction::Both, 1, 10)
        .await
        .unwrap()
        .is_none());
}

async fn flows_are_found_by_correlation_trace_and_key(f: Fixture) {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut root = ev("flow-1", None, 0);
    root.correlation = None;
    root.extra = vec![
        ("baggage", "order.id=o-1".into()),
        ("traceparent", tp.into()),
    ];
    let mut other = ev("other", None, 1);
    other.correlation = Some("flow-2");
    f.store
        .write_batch(&[
            root.record(),
            ev("b", Some("flow-1"), 2).record(),
            other.record(),
        ])
        .await
        .unwrap();
    let flow: Vec<_> = f
        .store
        .by_correlation("flow-1", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.event_id)
        .collect();
    assert_eq!(
        flow,
        vec!["flow-1", "b"],
        "root (its own id) and members, in time order"
    );
    let trace = f
        .store
        .by_trace("4bf92f3577b34da6a3ce929d0e0e4736", 100)
        .await
        .unwrap();
    assert_eq!(trace.len(), 1);
    let keyed = f.store.by_key("order.id", "o-1", 100).await.unwrap();
    assert_eq!(
        keyed
            .iter()
            .map(|s| s.event_id.as_str())
            .collect::<Vec<_>>(),
        vec!["flow-1"]
    );
    let by_record_key = f.store.by_key("kafka.key", "o-1", 2).await.unwrap();
    assert_eq!(by_record_key.len(), 2, "limit applies");
}

async fn traces_sharing_a_suffix_are_told_apart(f: Fixture) {
    // SQLite finds a trace by the last 8 characters of its id: the rest must still be compared.
    let traces = [
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00000000000000000000ffff0e0e4736",
    ];
    let mut records = Vec::new();
    for (i, trace) in traces.iter().enumerate() {
        for (j, span) in ["00f067aa0ba902b7", "b7ad6b7169203331"].iter().enumerate() {
            let id = format!("t{i}s{j}");
            let mut e = ev(&id, None, (2 * i + j) as i64);
            e.extra = vec![("traceparent", format!("00-{trace}-{span}-01"))];
            records.push(e.record());
        }
    }
    f.store.write_batch(&records).await.unwrap();
    let ids = |rows: Vec<choreoscope::store::SummaryRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.event_id).collect()
    };
    assert_eq!(
        ids(f.store.by_trace(traces[1], 10).await.unwrap()),
        vec!["t1s0", "t1s1"]
    );
    assert_eq!(
        ids(f
            .store
            .same_span(traces[0], "b7ad6b7169203331")
            .await
            .unwrap()),
        vec!["t0s1"]
    );
    let spans = vec![
        (traces[0].to_owned(), "00f067aa0ba902b7".to_owned()),
        (traces[1].to_owned(), "b7ad6b7169203331".to_owned()),
    ];
    assert_eq!(
        ids(f.store.same_spans(&spans).await.unwrap()),
        vec!["t0s0", "t1s1"]
    );
    assert!(
        f.store.by_trace("0e0e4736", 10).await.unwrap().is_empty(),
        "a suffix is no id"
    );
}

/// Follows `store` from `from` until `n` events came (or 20 s passed): PostgreSQL's horizon waits
/// for every transaction of the cluster, other tests' included.
async fn stored_until(
    store: &Store,
    mut from: choreoscope::store::FeedPosition,
    n: usize,
) -> (
    Vec<String>,
    choreoscope::live::StoredEvent,
    choreoscope::store::FeedPosition,
) {
    let mut ids = Vec::new();
    let mut first = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ids.len() < n && std::time::Instant::now() < deadline {
        let (events, next) = store.stored_after(from, 100).await.unwrap();
        for e in events {
            ids.push(e.id.clone());
            first.get_or_insert(e);
        }
        from = next;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (ids, first.expect("an event came"), from)
}

async fn the_feed_tells_each_stored_event_once_in_order(f: Fixture) {
    // What `serve`'s live feed follows: events stored since a position, each once.
    let start = f.store.feed_position().await.unwrap();
    let mut a = ev("a", None, 0);
    a.extra = vec![("baggage", "order.id=o-1".into())];
    let batch = [a.record(), ev("b", Some("a"), 1).record()];
    f.store.write_batch(&batch).await.unwrap();
    let (ids, first, after) = stored_until(&f.store, start, 2).await;
    assert_eq!(ids, ["a", "b"]);
    assert!(
        first
            .keys
            .contains(&("order.id".to_owned(), "o-1".to_owned())),
        "{:?}",
        first.keys
    );
    assert_eq!(first.correlation_id.as_deref(), Some("flow-1"));
    // Delivered again, then one new event: only the new one is told.
    f.store.write_batch(&batch).await.unwrap();
    f.store
        .write_batch(&[ev("c", Some("b"), 2).record()])
        .await
        .unwrap();
    let (ids, _, end) = stored_until(&f.store, after, 1).await;
    assert_eq!(ids, ["c"]);
    // (PostgreSQL's position may still move: other transactions of the server end meanwhile.)
    let (nothing, _) = f.store.stored_after(end, 100).await.unwrap();
    assert!(nothing.is_empty(), "told twice: {nothing:?}");
}

async fn copied_traceparent_yields_an_inferred_edge(f: Fixture) {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut first = ev("first", None, 0);
    first.extra = vec![("traceparent", tp.into())];
    let mut legacy = ev("legacy", None, 4);
    legacy.extra = vec![("traceparent", tp.into())];
    f.store
        .write_batch(&[legacy.record(), first.record()])
        .await
        .unwrap();
    let down = lineage(&f.store, "first", Direction::Down, 3, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edges(&down), vec![("first".into(), "legacy".into())]);
    assert!(down.edges[0].inferred);
    let up = lineage(&f.store, "legacy", Direction::Up, 3, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edges(&up), vec![("first".into(), "legacy".into())]);
}

async fn event_keeps_headers_payload_keys_and_problems(f: Fixture) {
    let mut e = ev("e", None, 0);
    e.extra = vec![("traceparent", "00-BAD".into())];
    f.store.write_batch(&[e.record()]).await.unwrap();
    let row = f.store.event("e").await.unwrap().unwrap();
    assert!(
        row.headers.contains(r#"["traceparent","00-BAD"]"#),
        "{}",
        row.headers
    );
    assert_eq!(row.payload.as_deref(), Some(&br#"{"id":"o-1"}"#[..]));
    assert_eq!(row.problem_count, 1);
    assert!(row.problems.contains("invalid_traceparent"));
    assert_eq!(row.record_key.as_deref(), Some(&b"o-1"[..]));
    let keys = f.store.keys_of(&["e".into()]).await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| format!("{}={}", k.name, k.value))
            .collect::<Vec<_>>(),
        vec!["kafka.key=o-1"]
    );
}

async fn every_business_key_of_an_event_is_stored_however_many(f: Fixture) {
    // Six baggage keys plus the record key: more than one key statement holds (four).
    let mut e = ev("many", None, 0);
    e.extra = vec![(
        "baggage",
        "a.id=1,b.id=2,c.id=3,d.id=4,e.id=5,f.id=6".into(),
    )];
    f.store.write_batch(&[e.record()]).await.unwrap();
    let mut keys: Vec<String> = f
        .store
        .keys_of(&["many".into()])
        .await
        .unwrap()
        .iter()
        .map(|k| format!("{}={}", k.name, k.value))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "a.id=1",
            "b.id=2",
            "c.id=3",
            "d.id=4",
            "e.id=5",
            "f.id=6",
            "kafka.key=o-1"
        ]
    );
    for (name, value) in [("a.id", "1"), ("f.id", "6"), ("kafka.key", "o-1")] {
        let found = f.store.by_key(name, value, 10).await.unwrap();
        assert_eq!(found.len(), 1, "{name}={value}");
    }
}

async fn keys_are_listed_searched_and_gathered_from_every_publish(f: Fixture) {
    let mut first = ev("a", None, 0);
    first.extra = vec![("baggage", "order.id=o-1".into())];
    let mut second = ev("a", None, 5);
    second.extra = vec![("baggage", "order.id=o-1,customer.id=c-7".into())];
    let mut other = ev("b", None, 1);
    other.extra = vec![("baggage", "customer.id=o-1".into())];
    f.store.write_batch(&[first.record()]).await.unwrap();
    // A second publish of "a" (a duplicate publish) brings a key the first did not have.
    let out = f
        .store
        .write_batch(&[second.record(), other.record()])
        .await
        .unwrap();
    assert_eq!((out.new_events, out.duplicate_publishes), (1, 1));
    let keys: Vec<String> = f
        .store
        .keys_of(&["a".into(), "b".into()])
        .await
        .unwrap()
        .iter()
        .map(|k| format!("{} {}={}", k.event_id, k.name, k.value))
        .collect();
    assert_eq!(
        keys,
        vec![
            "a customer.id=c-7",
            "a kafka.key=o-1",
            "a order.id=o-1",
            "b customer.id=o-1",
            "b kafka.key=o-1"
        ]
    );
    let ids = |rows: Vec<choreoscope::store::SummaryRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.event_id).collect()
    };
    assert_eq!(
        ids(f.store.by_key("customer.id", "c-7", 10).await.unwrap()),
        vec!["a"]
    );
    assert_eq!(
        f.store.key_names().await.unwrap(),
        vec!["customer.id", "kafka.key", "order.id"]
    );
    let all = f.store.key_names().await.unwrap();
    assert_eq!(
        f.store.names_with_value(&all, "o-1").await.unwrap(),
        vec!["customer.id", "kafka.key", "order.id"]
    );
    assert_eq!(
        f.store.names_with_value(&all, "c-7").await.unwrap(),
        vec!["customer.id"]
    );
    let search = |name: Option<&str>, value: &str| SearchFilter {
        key: Some((name.map(str::to_owned), value.to_owned())),
        limit: 10,
        ..SearchFilter::default()
    };
    assert_eq!(
        ids(f
            .store
            .search(&search(Some("order.id"), "o-1"))
            .await
            .unwrap()),
        vec!["a"]
    );
    assert_eq!(
        ids(f.store.search(&search(None, "o-1")).await.unwrap()),
        vec!["b", "a"],
        "a value under any name, newest first"
    );
    assert!(f
        .store
        .search(&search(None, "o-404"))
        .await
        .unwrap()
        .is_empty());
}

/// Runs `sql` on the store's database through a connection of its own.
async fn execute(url: &str, sql: &str) {
    use sqlx::{Connection, Executor};
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        c.execute(sql).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        c.execute(sql).await.unwrap();
    }
}

async fn a_store_of_the_first_schema_keeps_its_deliveries_after_migrating(f: Fixture) {
    f.store
        .write_batch(&[
            ev("a", None, 0).record(),
            ev("a", None, 7).record(),
            ev("b", Some("a"), 1).record(),
        ])
        .await
        .unwrap();
    // Migration 1 kept every delivery in `deliveries`, the first ones included: put them back and
    // forget migration 2, which moves to "extra deliveries only".
    execute(
        &f.url,
        "INSERT INTO deliveries (topic, kafka_partition, kafka_offset, event_id, broker_time_us) \
         SELECT topic, kafka_partition, kafka_offset, event_id, broker_time_us FROM events; \
         DELETE FROM _sqlx_migrations WHERE version = 2;",
    )
    .await;
    assert_eq!(
        f.store.counts().await.unwrap().deliveries,
        5,
        "doubled before migrating"
    );
    drop(f.store);
    let store = Store::connect(&f.url).await.unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.events, counts.deliveries), (2, 3));
    let offsets = |rows: Vec<choreoscope::store::DeliveryRow>| -> Vec<i64> {
        rows.iter().map(|d| d.kafka_offset).collect()
    };
    assert_eq!(offsets(store.deliveries("a").await.unwrap()), vec![0, 7]);
    assert_eq!(offsets(store.deliveries("b").await.unwrap()), vec![1]);
    // And it goes on telling re-deliveries from duplicate publishes.
    let again = store
        .write_batch(&[ev("a", None, 7).record(), ev("a", None, 8).record()])
        .await
        .unwrap();
    assert_eq!((again.redelivered, again.duplicate_publishes), (1, 1));
}

/// A Spring Kafka dead-letter copy of event `id` (from `payments`, offset `of`), at `offset` of
/// `payments-dlt`: the original's headers copied, then Spring's.
fn spring_copy<'a>(id: &'a str, of: i64, offset: i64) -> Ev<'a> {
    let mut copy = ev(id, None, offset);
    copy.topic = "payments-dlt";
    copy.extra = vec![
        ("kafka_dlt-original-topic", "payments".into()),
        ("kafka_dlt-original-partition", "0".into()),
        ("kafka_dlt-original-offset", of.to_string()),
        ("kafka_dlt-original-consumer-group", "bank".into()),
        (
            "kafka_dlt-exception-fqcn",
            "java.lang.IllegalStateException".into(),
        ),
        ("kafka_dlt-exception-message", "card expired".into()),
    ];
    copy
}

async fn a_dead_letter_copy_is_kept_apart_as_its_originals_failure(f: Fixture) {
    let mut original = ev("p", None, 0);
    original.topic = "payments";
    let first = f.store.write_batch(&[original.record()]).await.unwrap();
    assert_eq!(first.new_events, 1);
    let copy = spring_copy("p", 0, 0).record();
    let out = f
        .store
        .write_batch(std::slice::from_ref(&copy))
        .await
        .unwrap();
    assert_eq!(
        (
            out.dead_letters,
            out.new_events,
            out.duplicate_publishes,
            out.redelivered
        ),
        (1, 0, 0, 0),
        "neither a new event nor a duplicate publish"
    );
    assert_eq!(f.store.event("p").await.unwrap().unwrap().delivery_count, 1);
    assert_eq!(f.store.deliveries("p").await.unwrap().len(), 1);
    let rows = f.store.dead_letters_of(&["p".to_owned()]).await.unwrap();
    assert_eq!(rows.len(), 1);
    let d = &rows[0];
    assert_eq!(
        (
            d.topic.as_str(),
            d.kafka_offset,
            d.recognised_by.as_str(),
            d.consumer_group.as_deref()
        ),
        ("payments-dlt", 0, "spring", Some("bank"))
    );
    assert_eq!(
        d.reason,
        "bank: java.lang.IllegalStateException: card expired"
    );
    let again = f.store.write_batch(&[copy]).await.unwrap();
    assert_eq!((again.dead_letters, again.redelivered), (0, 1));
    assert_eq!(f.store.dead_letters_since(0, 10).await.unwrap(), rows);
    let flow = f.store.by_correlation("flow-1", 10).await.unwrap();
    assert_eq!(flow.len(), 1, "the copy is no event of the flow");
}

async fn a_dead_letter_names_a_header_less_original_by_its_position(f: Fixture) {
    fn raw<'a>(topic: &'a str, offset: i64, headers: &'a RecordHeaders) -> RawRecord<'a> {
        RawRecord {
            topic,
            partition: 0,
            offset,
            key: None,
            payload: Some(b"{}"),
            headers,
            timestamp_ms: Some(5_000),
        }
    }
    let interpreter = Interpreter::new(Rules::default(), 1024);
    let original = interpreter.interpret(raw("legacy", 3, &RecordHeaders::new()), 0);
    let mut h = RecordHeaders::new();
    h.set("__connect.errors.topic", "legacy");
    h.set("__connect.errors.partition", "0");
    h.set("__connect.errors.offset", "3");
    h.set("__connect.errors.connector.name", "erp-sink");
    h.set("__connect.errors.task.id", "0");
    h.set("__connect.errors.stage", "VALUE_CONVERTER");
    h.set(
        "__connect.errors.exception.class.name",
        "org.apache.kafka.connect.errors.DataException",
    );
    h.set("__connect.errors.exception.message", "bad schema");
    let copy = interpreter.interpret(raw("erp-dlq", 0, &h), 0);
    let out = f.store.write_batch(&[original, copy]).await.unwrap();
    assert_eq!((out.new_events, out.dead_letters), (1, 1));
    let rows = f
        .store
        .dead_letters_of(&["kafka:legacy/0/3".to_owned()])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].recognised_by, "connect");
    assert!(
        rows[0].reason.contains("DataException: bad schema"),
        "{}",
        rows[0].reason
    );
}

macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod sqlite_store {
            $( #[tokio::test] async fn $test() { super::$test(super::sqlite().await).await } )*
        }
        mod postgres_store {
            $( #[tokio::test] async fn $test() { super::$test(super::postgres().await).await } )*
        }
    };
}

on_both_stores!(
    redelivered_records_are_stored_once,
    same_id_at_two_offsets_is_one_event_with_two_deliveries,
    concurrent_writers_of_overlapping_batches_store_each_event_and_delivery_once,
    reaction_stored_before_its_cause_links_once_the_cause_arrives,
    lineage_terminates_on_a_cycle_and_marks_it,
    fan_out_depth_and_node_limits_are_respected,
    flows_are_found_by_correlation_trace_and_key,
    traces_sharing_a_suffix_are_told_apart,
    the_feed_tells_each_stored_event_once_in_order,
    copied_traceparent_yields_an_inferred_edge,
    event_keeps_headers_payload_keys_and_problems,
    a_store_of_the_first_schema_keeps_its_deliveries_after_migrating,
    every_business_key_of_an_event_is_stored_however_many,
    keys_are_listed_searched_and_gathered_from_every_publish,
    a_dead_letter_copy_is_kept_apart_as_its_originals_failure,
    a_dead_letter_names_a_header_less_original_by_its_position,
    spans_are_stored_once_and_found_by_id_parent_link_and_position,
    lineage_follows_a_consumer_span_s_link_on_either_store,
    coverage_counts_each_service_s_events_and_spans,
    old_spans_are_pruned_with_their_links,
);

fn span_record(
    trace: &str,
    id: &str,
    parent: Option<&str>,
    kind: choreoscope::span::SpanKind,
) -> choreoscope::span::SpanRecord {
    choreoscope::span::SpanRecord {
        trace_id: trace.repeat(32 / trace.len()),
        span_id: id.repeat(16 / id.len()),
        parent_span_id: parent.map(|p| p.repeat(16 / p.len())),
        kind,
        name: format!("{id} span"),
        service: Some("payment".into()),
        start_us: 1_000_000,
        end_us: 1_002_000,
        failed: false,
        status_message: None,
        exception: None,
        messaging: choreoscope::span::Messaging {
            system: Some("kafka".into()),
            ..Default::default()
        },
        links: vec![],
    }
}

fn key(trace: &str, id: &str) -> (String, String) {
    (trace.repeat(32 / trace.len()), id.repeat(16 / id.len()))
}

async fn spans_are_stored_once_and_found_by_id_parent_link_and_position(f: Fixture) {
    use choreoscope::span::SpanKind::*;
    let mut consumer = span_record("b", "2", None, Consumer);
    consumer.links = vec![key("a", "1")];
    consumer.messaging.destination = Some("orders".into());
    consumer.messaging.partition = Some(0);
    consumer.messaging.offset = Some(7);
    let mut handler = span_record("b", "3", Some("2"), Internal);
    handler.failed = true;
    handler.exception = Some(choreoscope::span::Exception {
        kind: Some("OutOfStock".into()),
        message: Some("none".into()),
    });
    let spans = vec![span_record("a", "1", None, Producer), consumer, handler];
    assert!(!f.store.has_spans().await.unwrap());
    assert_eq!(f.store.write_spans(&spans).await.unwrap(), 3);
    assert!(f.store.has_spans().await.unwrap());
    assert_eq!(
        f.store.write_spans(&spans).await.unwrap(),
        0,
        "a retried export adds nothing"
    );
    let got = f
        .store
        .spans(&[key("b", "2"), key("b", "9")])
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].position(), Some(("orders".into(), 0, 7)));
    let children = f.store.span_children(&[key("b", "2")]).await.unwrap();
    assert_eq!(
        children.iter().map(|s| s.key()).collect::<Vec<_>>(),
        [key("b", "3")]
    );
    let links = f.store.links_to(&[key("a", "1")]).await.unwrap();
    assert_eq!(
        (links[0].trace_id.clone(), links[0].span_id.clone()),
        key("b", "2")
    );
    assert_eq!(f.store.links_from(&[key("b", "2")]).await.unwrap(), links);
    let at = f
        .store
        .consumer_spans_at(&[("orders".into(), 0, 7), ("orders".into(), 0, 8)])
        .await
        .unwrap();
    assert_eq!(
        at.iter().map(|s| s.key()).collect::<Vec<_>>(),
        [key("b", "2")]
    );
    let failed = f.store.failed_spans_since(0, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].exception().unwrap().kind.as_deref(),
        Some("OutOfStock")
    );
}

async fn lineage_follows_a_consumer_span_s_link_on_either_store(f: Fixture) {
    use choreoscope::span::SpanKind::*;
    let traced = |offset: i64, topic: &str, trace: &str, span: &str| {
        let mut h = RecordHeaders::new();
        let (t, s) = key(trace, span);
        h.set("traceparent", format!("00-{t}-{s}-01"));
        Interpreter::new(Rules::default(), 1024).interpret(
            RawRecord {
                topic,
                partition: 0,
                offset,
                key: None,
                payload: None,
                headers: &h,
                timestamp_ms: Some(1_000 + offset),
            },
            0,
        )
    };
    f.store
        .write_batch(&[
            traced(0, "orders", "a", "1"),
            traced(1, "payments", "b", "4"),
        ])
        .await
        .unwrap();
    let mut consumer = span_record("b", "2", None, Consumer);
    consumer.links = vec![key("a", "1")];
    f.store
        .write_spans(&[consumer, span_record("b", "4", Some("2"), Producer)])
        .await
        .unwrap();
    let l = lineage(&f.store, "kafka:orders/0/0", Direction::Down, 3, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        edges(&l),
        [(
            "kafka:orders/0/0".to_owned(),
            "kafka:payments/0/1".to_owned()
        )]
    );
    assert_eq!(l.edges[0].rule, choreoscope::lineage::Rule::SpanLink);
}

async fn coverage_counts_each_service_s_events_and_spans(f: Fixture) {
    use choreoscope::span::SpanKind::*;
    let mut traced = ev("a", None, 0);
    traced.extra = vec![
        (
            "traceparent",
            format!("00-{}-{}-01", "c".repeat(32), "d".repeat(16)),
        ),
        ("baggage", "tenant=acme".into()),
    ];
    f.store
        .write_batch(&[traced.record(), ev("b", Some("a"), 1).record()])
        .await
        .unwrap();
    f.store
        .write_spans(&[
            span_record("a", "1", None, Producer),
            span_record("a", "2", Some("1"), Consumer),
        ])
        .await
        .unwrap();
    let rows = f.store.coverage(0, i64::MAX, 1000).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let svc = &rows[0];
    assert_eq!(
        (
            svc.service.as_str(),
            svc.events,
            svc.with_ce_id,
            svc.with_causation,
            svc.with_traceparent,
            svc.with_baggage
        ),
        ("svc", 2, 2, 1, 1, 1)
    );
    let headers = f.store.baggage_of("svc", 0, i64::MAX, 10).await.unwrap();
    assert_eq!(headers.len(), 1);
    let spans = f.store.span_services(0).await.unwrap();
    assert_eq!(
        spans
            .iter()
            .map(|s| (s.service.as_str(), s.received, s.consumer, s.producer))
            .collect::<Vec<_>>(),
        [("payment", 2, 1, 1)]
    );
}

async fn old_spans_are_pruned_with_their_links(f: Fixture) {
    use choreoscope::span::SpanKind::*;
    let mut old = span_record("a", "1", None, Consumer);
    old.links = vec![key("c", "9")];
    let mut new = span_record("a", "2", None, Consumer);
    new.start_us = 5_000_000;
    new.links = vec![key("c", "8")];
    f.store.write_spans(&[old, new]).await.unwrap();
    assert_eq!(f.store.prune_spans(2_000_000).await.unwrap(), 1);
    assert_eq!(
        f.store
            .spans(&[key("a", "1"), key("a", "2")])
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(f.store.links_to(&[key("c", "9")]).await.unwrap().is_empty());
    assert_eq!(f.store.links_to(&[key("c", "8")]).await.unwrap().len(), 1);
}

/// Every key of events "a" and "b" as sorted `(name, value, event id)`.
async fn key_rows(store: &Store) -> Vec<(String, String, String)> {
    let mut rows: Vec<_> = store
        .keys_of(&["a".into(), "b".into()])
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.name, k.value, k.event_id))
        .collect();
    rows.sort();
    rows
}

/// Writes event "a" (with a baggage key) and its reaction "b"; returns their key rows.
async fn two_events_with_keys(f: &Fixture) -> Vec<(String, String, String)> {
    let mut a = ev("a", None, 0);
    a.extra = vec![("baggage", "order.id=o-1".into())];
    f.store
        .write_batch(&[a.record(), ev("b", Some("a"), 1).record()])
        .await
        .unwrap();
    key_rows(&f.store).await
}

#[tokio::test]
async fn a_postgres_store_of_the_second_schema_keeps_its_keys_after_migrating() {
    // Migration 3 moves PostgreSQL's keys from `event_keys` rows onto the event rows.
    let f = postgres().await;
    let mut rows = two_events_with_keys(&f).await;
    // Back to the second schema: keys as rows of `event_keys`, one with a name of non-ASCII
    // characters (the array's length prefix counts bytes), and migration 3 forgotten.
    rows.push(("größe".into(), "xl".into(), "a".into()));
    let values: Vec<String> = rows
        .iter()
        .map(|(n, v, id)| format!("('{n}', '{v}', '{id}')"))
        .collect();
    execute(
        &f.url,
        &format!(
            "CREATE TABLE event_keys (name TEXT NOT NULL, value TEXT NOT NULL, event_id TEXT NOT NULL, \
             PRIMARY KEY (name, value, event_id)); \
             CREATE INDEX event_keys_by_event ON event_keys (event_id); \
             INSERT INTO event_keys (name, value, event_id) VALUES {}; \
             DROP INDEX events_by_key; ALTER TABLE events DROP COLUMN keys; DROP TABLE key_names; \
             DELETE FROM _sqlx_migrations WHERE version = 3;",
            values.join(", ")
        ),
    )
    .await;
    after_migrating(
        f,
        rows,
        &["größe", "kafka.key", "order.id"],
        &[
            ("größe", "xl", &["a"]),
            ("order.id", "o-1", &["a"]),
            ("kafka.key", "o-1", &["a", "b"]),
        ],
    )
    .await;
}

/// Reopens the store of `f` (so pending migrations run) and asserts that it holds exactly the key
/// `rows`, lists the key `names`, and finds by key the events of each case `(name, value, ids)`.
async fn after_migrating(
    f: Fixture,
    mut rows: Vec<(String, String, String)>,
    names: &[&str],
    cases: &[(&str, &str, &[&str])],
) {
    drop(f.store);
    let store = Store::connect(&f.url).await.unwrap();
    rows.sort();
    assert_eq!(key_rows(&store).await, rows);
    assert_eq!(store.key_names().await.unwrap(), names);
    for (name, value, want) in cases {
        let found: Vec<String> = store
            .by_key(name, value, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event_id)
            .collect();
        assert_eq!(found, *want, "{name}={value}");
    }
}

/// SQL taking a SQLite store back from the fourth schema to the third: `event_keys` keyed by name
/// first, no `key_names` table, migration 4 forgotten.
const SQLITE_THIRD_SCHEMA: &str =
    "CREATE TABLE old_keys (name TEXT NOT NULL, value TEXT NOT NULL, \
     event_id TEXT NOT NULL, PRIMARY KEY (name, value, event_id)) WITHOUT ROWID; \
     INSERT INTO old_keys SELECT name, value, event_id FROM event_keys; \
     DROP TABLE event_keys; ALTER TABLE old_keys RENAME TO event_keys; DROP TABLE key_names; \
     DELETE FROM _sqlx_migrations WHERE version = 4;";

#[tokio::test]
async fn a_sqlite_store_of_the_second_schema_keeps_its_keys_after_migrating() {
    // Migration 3 copies SQLite's keys onto the event rows (JSON) and drops the index of
    // `event_keys` by event; the rows stay for lookups by key. Migration 4 follows.
    let f = sqlite().await;
    let mut rows = two_events_with_keys(&f).await;
    // Back to the second schema: keys only as rows of `event_keys` (one more, with a name that
    // JSON must carry as is), and migrations 3 and 4 forgotten.
    rows.push(("größe \"quoted\"".into(), "xl".into(), "a".into()));
    execute(
        &f.url,
        &format!(
            "{SQLITE_THIRD_SCHEMA} \
             CREATE INDEX event_keys_by_event ON event_keys (event_id); \
             INSERT INTO event_keys (name, value, event_id) VALUES ('größe \"quoted\"', 'xl', 'a'); \
             ALTER TABLE events DROP COLUMN keys; \
             DELETE FROM _sqlx_migrations WHERE version = 3;"
        ),
    )
    .await;
    after_migrating(
        f,
        rows,
        &["größe \"quoted\"", "kafka.key", "order.id"],
        &[
            ("größe \"quoted\"", "xl", &["a"]),
            ("kafka.key", "o-1", &["a", "b"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_sqlite_store_of_the_third_schema_keeps_its_keys_and_lists_their_names_after_migrating() {
    // Migration 4 orders `event_keys` by value first and lists the names in `key_names`.
    let f = sqlite().await;
    let mut rows = two_events_with_keys(&f).await;
    // Back to the third schema, with a key written then: its name must be listed afterwards.
    rows.push(("region".into(), "o-1".into(), "b".into()));
    execute(
        &f.url,
        &format!(
            "{SQLITE_THIRD_SCHEMA} \
             INSERT INTO event_keys (name, value, event_id) VALUES ('region', 'o-1', 'b'); \
             UPDATE events SET keys = json_insert(keys, '$[#]', json_array('region', 'o-1')) \
             WHERE event_id = 'b';"
        ),
    )
    .await;
    after_migrating(
        f,
        rows,
        &["kafka.key", "order.id", "region"],
        &[
            ("region", "o-1", &["b"]),
            ("order.id", "o-1", &["a"]),
            ("kafka.key", "o-1", &["a", "b"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_sqlite_trace_is_found_whole_across_generations_and_migration() {
    // SQLite's trace index is split into generations of 65 536 stored events (migration 6): a
    // trace whose events were stored generations apart, some before the migration, is still one.
    let f = sqlite().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traced = |id: &'static str, span: &str, offset: i64| {
        let mut e = ev(id, None, offset);
        e.extra = vec![("traceparent", format!("00-{trace}-{span}-01"))];
        e.record()
    };
    f.store
        .write_batch(&[traced("old", "00f067aa0ba902b7", 0)])
        .await
        .unwrap();
    // Back to the fifth schema (no generations), then as if 200 000 events had been stored since.
    execute(
        &f.url,
        "DROP INDEX events_by_generation_trace; ALTER TABLE events DROP COLUMN generation; \
         CREATE INDEX events_by_trace_suffix ON events (substr(trace_id, -8)) \
         WHERE trace_id IS NOT NULL; DELETE FROM _sqlx_migrations WHERE version = 6; \
         UPDATE events SET rowid = 200000 WHERE event_id = 'old';",
    )
    .await;
    drop(f.store);
    let store = Store::connect(&f.url).await.unwrap();
    store
        .write_batch(&[
            traced("new-a", "b7ad6b7169203331", 1),
            traced("new-b", "00f067aa0ba902b7", 2),
        ])
        .await
        .unwrap();
    let generations: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_id, generation FROM events ORDER BY event_id")
            .fetch_all(&sqlx::SqlitePool::connect(&f.url).await.unwrap())
            .await
            .unwrap();
    assert_eq!(
        generations,
        vec![
            ("new-a".to_owned(), 3),
            ("new-b".to_owned(), 3),
            ("old".to_owned(), 0)
        ],
        "a batch's generation is the greatest row id before it / 65 536"
    );
    let ids = |rows: Vec<choreoscope::store::SummaryRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.event_id).collect()
    };
    assert_eq!(
        ids(store.by_trace(trace, 10).await.unwrap()),
        vec!["old", "new-a", "new-b"]
    );
    assert_eq!(
        ids(store.same_span(trace, "00f067aa0ba902b7").await.unwrap()),
        vec!["old", "new-b"]
    );
    let spans = vec![(trace.to_owned(), "00f067aa0ba902b7".to_owned())];
    assert_eq!(
        ids(store.same_spans(&spans).await.unwrap()),
        vec!["old", "new-b"]
    );
}

#[tokio::test]
async fn a_sqlite_batch_waits_for_a_write_lock_held_elsewhere() {
    // A `TRUNCATE` checkpoint holds SQLite's write lock for a moment: a batch written meanwhile
    // waits for it (busy timeout) instead of failing. The writer reads before it inserts (the
    // generation), and a transaction that has read fails at once when its first write finds the
    // lock taken; it must take the lock first.
    use sqlx::{Connection, Executor};
    let f = sqlite().await;
    f.store
        .write_batch(&[ev("first", None, 0).record()])
        .await
        .unwrap();
    let mut other = sqlx::SqliteConnection::connect(&f.url).await.unwrap();
    other.execute("BEGIN IMMEDIATE").await.unwrap();
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        other.execute("COMMIT").await.unwrap();
    };
    let second = [ev("second", Some("first"), 1).record()];
    let (written, ()) = tokio::join!(f.store.write_batch(&second), release);
    assert_eq!(
        written.expect("the batch waited for the lock").new_events,
        1
    );
    assert!(f.store.event("second").await.unwrap().is_some());
}

#[tokio::test]
async fn the_postgres_feed_waits_for_a_transaction_that_commits_late() {
    // The collector writes PostgreSQL with several connections: a batch may commit after a later
    // one. The feed must not pass over the earlier one meanwhile.
    use sqlx::{Connection, Executor};
    let f = postgres().await;
    let start = f.store.feed_position().await.unwrap();
    let mut slow = sqlx::PgConnection::connect(&f.url).await.unwrap();
    slow.execute(
        "BEGIN; INSERT INTO events (event_id, id_source, topic, kafka_partition, kafka_offset, \
         time_us, headers, payload_size, payload_truncated, problems, problem_count, \
         delivery_count, ingested_at_us) \
         VALUES ('late', 'ce_id', 'orders', 0, 99, 0, '[]', 0, false, '[]', 0, 1, 0)",
    )
    .await
    .unwrap();
    f.store
        .write_batch(&[ev("quick", None, 1).record()])
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (held, position) = f.store.stored_after(start, 100).await.unwrap();
    assert!(
        held.is_empty(),
        "told of events while an earlier transaction is open: {held:?}"
    );
    slow.execute("COMMIT").await.unwrap();
    let (ids, _, _) = stored_until(&f.store, position, 2).await;
    assert_eq!(
        ids,
        ["late", "quick"],
        "both, in the order they were stored"
    );
}

#[tokio::test]
async fn the_live_feed_follows_what_another_writer_stores() {
    // `serve` has no ingest loop: its feed follows the store, here written through another handle.
    let f = sqlite().await;
    let feed = choreoscope::live::LiveFeed::new();
    let mut watcher = feed.subscribe();
    let cancel = tokio_util::sync::CancellationToken::new();
    let follower = tokio::spawn(choreoscope::live::follow_store(
        Store::connect(&f.url).await.unwrap(),
        feed.clone(),
        std::time::Duration::from_millis(20),
        cancel.clone(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    f.store
        .write_batch(&[ev("x", None, 0).record(), ev("y", Some("x"), 1).record()])
        .await
        .unwrap();
    let batch = tokio::time::timeout(std::time::Duration::from_secs(10), watcher.recv())
        .await
        .expect("told within 10 s")
        .unwrap();
    let ids: Vec<&str> = batch.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["x", "y"]);
    cancel.cancel();
    follower.await.unwrap();
}

#[tokio::test]
async fn two_processes_opening_a_new_sqlite_file_at_once_both_succeed() {
    // The collector and `serve` (or a test) may start together on one new file; SQLite's migrator
    // takes no lock, so the loser of the race must retry rather than fail on "table exists".
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("race.db").display());
        let (a, b, c) = tokio::join!(
            Store::connect(&url),
            Store::connect(&url),
            Store::connect(&url)
        );
        for store in [a, b, c] {
            store.expect("every opener succeeds").ping().await.unwrap();
        }
    }
}
