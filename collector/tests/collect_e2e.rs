//! The collector against the real broker: a scripted choreography with fan-out, fan-in, a chain
//! across three topics, a reaction produced before its cause, a duplicate publish, a malformed
//! header, a non-UTF-8 header, a 1 MiB payload, a causation cycle and a record with no headers.
//! The store must then hold exactly the expected events and edges.
//!
//! The choreography is produced and collected once per binary ([`collected`]); the collector's
//! store is then copied to a file on which each test opens a store of its own.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use choreoscope::lineage::{lineage, Direction, Flag, Lineage};
use choreoscope::store::Store;
use choreoscope_e2e::TestBroker;
use choreoscope_sdk::{OutgoingEvent, RecordHeaders};
use common::fixture::{copy_sqlite_store, Filled, OnceFilled};
use common::{produce_raw, stamped, InProcessCollector};

fn id_of(h: &RecordHeaders) -> String {
    String::from_utf8(h.first("ce_id").unwrap().to_vec()).unwrap()
}

/// What was produced and seen while collecting.
struct Collected {
    payments: String,
    shipping: String,
    order: String,
    payment: String,
    shipment: String,
    stock: String,
    label: String,
    shipped: String,
    late_cause: String,
    early_reaction: String,
    dup: String,
    malformed: String,
    binary: String,
    big: String,
    /// Where the broker put the record without headers: (partition, offset).
    bare_at: (i32, i64),
    /// The early reaction's lineage up, read once it was stored and before its cause was produced.
    before_cause: Lineage,
    /// The collector's metrics once everything was stored.
    metrics: String,
}

static COLLECTED: OnceFilled<Collected> = OnceFilled::new();

/// The collected store, produced and collected on first use.
fn collected() -> &'static Filled<Collected> {
    COLLECTED.get(produce_and_collect)
}

/// This test's own store on the collected file, and what was produced into it.
async fn store() -> (Store, &'static Collected) {
    let filled = collected();
    (filled.open().await, &filled.data)
}

/// Produces the choreography to the broker, collects it with the in-process collector and copies
/// its store to `path`.
async fn produce_and_collect(path: PathBuf) -> Collected {
    let broker = TestBroker::from_env();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (orders, payments, shipping) = (
        format!("orders-{suffix}"),
        format!("payments-{suffix}"),
        format!("shipping-{suffix}"),
    );
    broker
        .create_topics(&[&orders, &payments, &shipping], 3)
        .await
        .unwrap();
    let producer = broker
        .config()
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap();
    let collector = InProcessCollector::start(&broker, &suffix).await;

    // A chain across three topics, a fan-out at the payment, and a fan-in at shipping, which
    // receives reactions from two services (shipping's own path and inventory's):
    //   order ─► payment ─┬► shipment-requested ─► shipped        orders → payments → shipping
    //                     └► stock-reserved ─────► label-printed   (payments → shipping)
    let order = stamped(
        OutgoingEvent::new(&orders, "OrderCreated").business_key("order.id", "o-1"),
        "order",
        None,
    );
    let payment = stamped(
        OutgoingEvent::new(&payments, "PaymentCaptured"),
        "payment",
        Some(&order),
    );
    let shipment = stamped(
        OutgoingEvent::new(&shipping, "ShipmentRequested"),
        "shipping",
        Some(&payment),
    );
    let stock = stamped(
        OutgoingEvent::new(&payments, "StockReserved"),
        "inventory",
        Some(&payment),
    );
    let label = stamped(
        OutgoingEvent::new(&shipping, "LabelPrinted"),
        "shipping",
        Some(&stock),
    );
    let shipped = stamped(
        OutgoingEvent::new(&shipping, "Shipped"),
        "shipping",
        Some(&shipment),
    );

    // The reaction is produced — and stored — before its cause exists anywhere.
    let late_cause = stamped(
        OutgoingEvent::new(&orders, "RefundRequested"),
        "support",
        None,
    );
    let early_reaction = stamped(
        OutgoingEvent::new(&payments, "RefundIssued"),
        "payment",
        Some(&late_cause),
    );
    produce_raw(
        &producer,
        &payments,
        Some(b"r"),
        Some(b"{}"),
        &early_reaction,
    )
    .await;
    collector
        .wait_for_deliveries(1, Duration::from_secs(60))
        .await;
    let before_cause = lineage(
        &collector.store,
        &id_of(&early_reaction),
        Direction::Up,
        5,
        100,
    )
    .await
    .unwrap()
    .expect("the early reaction is stored");
    produce_raw(&producer, &orders, Some(b"r"), Some(b"{}"), &late_cause).await;

    for (topic, h) in [
        (&orders, &order),
        (&payments, &payment),
        (&shipping, &shipment),
        (&payments, &stock),
        (&shipping, &label),
        (&shipping, &shipped),
    ] {
        produce_raw(&producer, topic, Some(b"o-1"), Some(br#"{"id":"o-1"}"#), h).await;
    }

    // The same event published twice (a non-idempotent producer retrying).
    let dup = stamped(
        OutgoingEvent::new(&payments, "PaymentCaptured"),
        "payment",
        Some(&order),
    );
    produce_raw(&producer, &payments, Some(b"o-1"), Some(b"{}"), &dup).await;
    produce_raw(&producer, &payments, Some(b"o-1"), Some(b"{}"), &dup).await;

    // A malformed traceparent from a legacy producer, and a non-UTF-8 header.
    let mut malformed = stamped(OutgoingEvent::new(&orders, "LegacyPing"), "legacy", None);
    malformed.set("traceparent", "00-NOT-A-TRACE");
    produce_raw(&producer, &orders, None, Some(b"ping"), &malformed).await;
    let mut binary = stamped(OutgoingEvent::new(&orders, "BinaryHeader"), "legacy", None);
    binary.set("ce_type", vec![0xff, 0xfe, 0xfd]);
    produce_raw(&producer, &orders, None, None, &binary).await;

    // A 1 MiB payload.
    let big = stamped(
        OutgoingEvent::new(&orders, "Blob").content_type("application/octet-stream"),
        "blob",
        None,
    );
    let blob = vec![b'z'; 1024 * 1024];
    produce_raw(&producer, &orders, None, Some(&blob), &big).await;

    // A causation cycle: a ← b ← a.
    let mut cyc_a = stamped(
        OutgoingEvent::new(&orders, "CycleA").id("cycle-a"),
        "loop",
        None,
    );
    cyc_a.set("ce_causationid", "cycle-b");
    let mut cyc_b = stamped(
        OutgoingEvent::new(&payments, "CycleB").id("cycle-b"),
        "loop",
        None,
    );
    cyc_b.set("ce_causationid", "cycle-a");
    produce_raw(&producer, &orders, None, None, &cyc_a).await;
    produce_raw(&producer, &payments, None, None, &cyc_b).await;

    // A record without any header.
    let bare_at = produce_raw(
        &producer,
        &shipping,
        Some(b"bare"),
        Some(b"hello"),
        &RecordHeaders::new(),
    )
    .await;

    // 2 (refund) + 6 (flow) + 2 (dup) + 2 (bad headers) + 1 (blob) + 2 (cycle) + 1 (bare) = 16.
    collector
        .wait_for_deliveries(16, Duration::from_secs(60))
        .await;
    let metrics = collector.metrics.encode();
    copy_sqlite_store(&collector.store, &path).await;
    collector.stop().await;
    Collected {
        payments,
        shipping,
        order: id_of(&order),
        payment: id_of(&payment),
        shipment: id_of(&shipment),
        stock: id_of(&stock),
        label: id_of(&label),
        shipped: id_of(&shipped),
        late_cause: id_of(&late_cause),
        early_reaction: id_of(&early_reaction),
        dup: id_of(&dup),
        malformed: id_of(&malformed),
        binary: id_of(&binary),
        big: id_of(&big),
        bare_at,
        before_cause,
        metrics,
    }
}

/// The lineage of stored event `id`.
async fn lineage_of(store: &Store, id: &str, direction: Direction, depth: u32) -> Lineage {
    lineage(store, id, direction, depth, 100)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no event {id} stored"))
}

fn edges(l: &Lineage) -> BTreeSet<(String, String)> {
    l.edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect()
}

fn pairs(list: &[(&String, &String)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).clone(), (*b).clone()))
        .collect()
}

#[tokio::test]
async fn every_record_is_stored_once_and_a_duplicate_publish_is_one_event() {
    let (store, _) = store().await;
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.events, counts.deliveries),
        (15, 16),
        "one event, two deliveries for the duplicate"
    );
}

#[tokio::test]
async fn the_flow_is_rebuilt_edge_for_edge_whatever_the_topic_partition_and_arrival_order() {
    let (store, c) = store().await;
    let flow = lineage_of(&store, &c.order, Direction::Down, 10).await;
    assert_eq!(
        edges(&flow),
        pairs(&[
            (&c.order, &c.payment),
            (&c.order, &c.dup),
            (&c.payment, &c.shipment),
            (&c.payment, &c.stock),
            (&c.stock, &c.label),
            (&c.shipment, &c.shipped),
        ])
    );
    assert_eq!(flow.nodes.len(), 7);
    assert!(flow.edges.iter().all(|e| !e.cycle && !e.inferred));
}

#[tokio::test]
async fn a_fan_out_links_every_reaction_to_the_one_cause() {
    let (store, c) = store().await;
    let fan_out = lineage_of(&store, &c.payment, Direction::Down, 1).await;
    assert_eq!(
        edges(&fan_out),
        pairs(&[(&c.payment, &c.shipment), (&c.payment, &c.stock)])
    );
}

#[tokio::test]
async fn a_fan_in_links_each_reaction_on_one_topic_to_its_own_cause_from_another_service() {
    let (store, c) = store().await;
    for (reaction, cause, cause_source) in [
        (&c.label, &c.stock, "inventory"),
        (&c.shipped, &c.shipment, "shipping"),
    ] {
        let up = lineage_of(&store, reaction, Direction::Up, 1).await;
        assert_eq!(edges(&up), pairs(&[(cause, reaction)]), "{reaction}");
        let reaction_row = store.event(reaction).await.unwrap().unwrap();
        assert_eq!(reaction_row.topic, c.shipping);
        let cause_row = store.event(cause).await.unwrap().unwrap();
        assert_eq!(cause_row.source.as_deref(), Some(cause_source));
    }
}

#[tokio::test]
async fn a_chain_across_three_topics_is_walked_up_to_its_root() {
    let (store, c) = store().await;
    let shipped_up = lineage_of(&store, &c.shipped, Direction::Up, 10).await;
    assert_eq!(
        shipped_up.nodes.len(),
        4,
        "shipped ← shipment ← payment ← order"
    );
    let topics: BTreeSet<&str> = shipped_up
        .nodes
        .iter()
        .map(|n| n.event.topic.as_str())
        .collect();
    assert_eq!(topics.len(), 3, "the chain crosses three topics");
}

#[tokio::test]
async fn a_business_key_travels_through_every_hop_in_baggage() {
    let (store, _) = store().await;
    let keyed = store.by_key("order.id", "o-1", 100).await.unwrap();
    assert_eq!(
        keyed.len(),
        7,
        "the key travels through every hop in baggage"
    );
}

#[test]
fn a_reaction_stored_before_its_cause_is_flagged_cause_missing() {
    let c = &collected().data;
    let before = &c.before_cause;
    assert_eq!(before.nodes[0].event.event_id, c.early_reaction);
    assert!(
        before.nodes[0].flags.contains(&Flag::CauseMissing),
        "cause not seen yet"
    );
    assert!(before.edges.is_empty(), "no edge to a cause not seen yet");
}

#[tokio::test]
async fn a_reaction_stored_before_its_cause_is_linked_once_the_cause_arrives() {
    let (store, c) = store().await;
    let after = lineage_of(&store, &c.early_reaction, Direction::Up, 5).await;
    assert_eq!(after.edges.len(), 1);
    assert_eq!(after.edges[0].from, c.late_cause);
    let reaction = after
        .nodes
        .iter()
        .find(|n| n.event.event_id == c.early_reaction)
        .unwrap();
    assert!(!reaction.flags.contains(&Flag::CauseMissing));
}

#[tokio::test]
async fn a_duplicate_publish_is_one_event_with_two_deliveries() {
    let (store, c) = store().await;
    let d = store.event(&c.dup).await.unwrap().unwrap();
    assert_eq!(d.delivery_count, 2);
    assert_eq!(store.deliveries(&c.dup).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_malformed_traceparent_is_stored_as_a_problem_and_no_trace_is_invented() {
    let (store, c) = store().await;
    let m = store.event(&c.malformed).await.unwrap().unwrap();
    assert!(m.problems.contains("invalid_traceparent"), "{}", m.problems);
    assert_eq!(m.trace_id, None, "no trace invented");
}

#[tokio::test]
async fn a_header_that_is_not_utf8_is_kept_binary_safe_and_stored_as_a_problem() {
    let (store, c) = store().await;
    let b = store.event(&c.binary).await.unwrap().unwrap();
    assert!(b.problems.contains("not_utf8"), "{}", b.problems);
    assert_eq!(b.event_type, None);
    assert!(
        b.headers.contains(r#"["ce_type",{"base64":"//79"}]"#),
        "binary-safe: {}",
        b.headers
    );
}

#[tokio::test]
async fn a_1_mib_payload_is_cut_to_the_limit_and_marked_its_real_size_kept() {
    let (store, c) = store().await;
    let blob_row = store.event(&c.big).await.unwrap().unwrap();
    assert_eq!(blob_row.payload_size, 1024 * 1024);
    assert_eq!(blob_row.payload.unwrap().len(), 64 * 1024);
    assert!(blob_row.payload_truncated);
}

#[tokio::test]
async fn a_causation_cycle_is_stored_and_its_lineage_terminates() {
    let (store, _) = store().await;
    let cycle = lineage_of(&store, "cycle-a", Direction::Both, 50).await;
    assert_eq!(cycle.nodes.len(), 2);
    assert!(cycle.edges.iter().any(|e| e.cycle));
}

#[tokio::test]
async fn a_record_without_headers_is_kept_under_an_id_derived_from_its_position() {
    let (store, c) = store().await;
    let (p, o) = c.bare_at;
    let bare = store
        .event(&format!("kafka:{}/{p}/{o}", c.shipping))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bare.payload.as_deref(), Some(&b"hello"[..]));
    assert!(bare.problems.contains("no_event_id"), "{}", bare.problems);
}

#[test]
fn the_metrics_count_each_problem_once_by_kind() {
    let c = &collected().data;
    for needle in [
        "choreoscope_problems_total{kind=\"invalid_traceparent\"} 1",
        "choreoscope_problems_total{kind=\"not_utf8\"} 1",
        "choreoscope_problems_total{kind=\"payload_truncated\"} 1",
        "choreoscope_problems_total{kind=\"no_event_id\"} 1",
    ] {
        assert!(
            c.metrics.contains(needle),
            "{needle} missing from\n{}",
            c.metrics
        );
    }
}

#[test]
fn the_metrics_count_the_duplicate_publish_on_its_topic() {
    let c = &collected().data;
    let needle = format!(
        "choreoscope_duplicate_publishes_total{{topic=\"{}\"}} 1",
        c.payments
    );
    assert!(
        c.metrics.contains(&needle),
        "{needle} missing from\n{}",
        c.metrics
    );
}
