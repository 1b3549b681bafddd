//! The collector against the real broker: a scripted choreography with fan-out, fan-in, a chain
//! across three topics, a reaction produced before its cause, a duplicate publish, a malformed
//! header, a non-UTF-8 header, a 1 MiB payload, a causation cycle and a record with no headers.
//! The store must then hold exactly the expected events and edges.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use choreoscope::lineage::{lineage, Direction, Flag};
use choreoscope_e2e::TestBroker;
use choreoscope_sdk::{OutgoingEvent, RecordHeaders};
use common::{produce_raw, stamped, InProcessCollector};

fn id_of(h: &RecordHeaders) -> String {
    String::from_utf8(h.first("ce_id").unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn scripted_choreography_is_stored_exactly() {
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
    let before = lineage(
        &collector.store,
        &id_of(&early_reaction),
        Direction::Up,
        5,
        100,
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        before.nodes[0].flags.contains(&Flag::CauseMissing),
        "cause not seen yet"
    );
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
    let (p, o) = produce_raw(
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
    let counts = collector.store.counts().await.unwrap();
    assert_eq!(
        (counts.events, counts.deliveries),
        (15, 16),
        "one event, two deliveries for the duplicate"
    );

    // Edges of the main flow, rebuilt regardless of topic, partition and arrival order.
    let flow = lineage(&collector.store, &id_of(&order), Direction::Down, 10, 100)
        .await
        .unwrap()
        .unwrap();
    let edges: BTreeSet<(String, String)> = flow
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (&order, &payment),
        (&order, &dup),
        (&payment, &shipment),
        (&payment, &stock),
        (&stock, &label),
        (&shipment, &shipped),
    ]
    .into_iter()
    .map(|(a, b)| (id_of(a), id_of(b)))
    .collect();
    assert_eq!(edges, expected);
    assert_eq!(flow.nodes.len(), 7);
    assert!(flow.edges.iter().all(|e| !e.cycle && !e.inferred));
    let shipped_up = lineage(&collector.store, &id_of(&shipped), Direction::Up, 10, 100)
        .await
        .unwrap()
        .unwrap();
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
    let keyed = collector
        .store
        .by_key("order.id", "o-1", 100)
        .await
        .unwrap();
    assert_eq!(
        keyed.len(),
        7,
        "the key travels through every hop in baggage"
    );

    // The reaction stored before its cause is now linked.
    let after = lineage(
        &collector.store,
        &id_of(&early_reaction),
        Direction::Up,
        5,
        100,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(after.edges.len(), 1);
    assert_eq!(after.edges[0].from, id_of(&late_cause));

    // Duplicate publish: one event, two deliveries, flagged.
    let d = collector.store.event(&id_of(&dup)).await.unwrap().unwrap();
    assert_eq!(d.delivery_count, 2);
    assert_eq!(
        collector
            .store
            .deliveries(&id_of(&dup))
            .await
            .unwrap()
            .len(),
        2
    );

    // Problems are stored with the event.
    let m = collector
        .store
        .event(&id_of(&malformed))
        .await
        .unwrap()
        .unwrap();
    assert!(m.problems.contains("invalid_traceparent"), "{}", m.problems);
    assert_eq!(m.trace_id, None, "no trace invented");
    let b = collector
        .store
        .event(&id_of(&binary))
        .await
        .unwrap()
        .unwrap();
    assert!(b.problems.contains("not_utf8"));
    assert_eq!(b.event_type, None);
    assert!(
        b.headers.contains(r#"["ce_type",{"base64":"//79"}]"#),
        "binary-safe: {}",
        b.headers
    );

    // The 1 MiB payload is cut to the limit and marked, its real size kept.
    let blob_row = collector.store.event(&id_of(&big)).await.unwrap().unwrap();
    assert_eq!(blob_row.payload_size, 1024 * 1024);
    assert_eq!(blob_row.payload.unwrap().len(), 64 * 1024);
    assert!(blob_row.payload_truncated);

    // The cycle is stored and its lineage terminates.
    let cycle = lineage(&collector.store, "cycle-a", Direction::Both, 50, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cycle.nodes.len(), 2);
    assert!(cycle.edges.iter().any(|e| e.cycle));

    // A record without headers is kept under a derived id.
    let bare = collector
        .store
        .event(&format!("kafka:{shipping}/{p}/{o}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bare.payload.as_deref(), Some(&b"hello"[..]));
    assert!(bare.problems.contains("no_event_id"));

    // And the metrics say what happened.
    let text = collector.metrics.encode();
    for needle in [
        "choreoscope_problems_total{kind=\"invalid_traceparent\"} 1",
        "choreoscope_problems_total{kind=\"not_utf8\"} 1",
        "choreoscope_problems_total{kind=\"payload_truncated\"} 1",
        "choreoscope_problems_total{kind=\"no_event_id\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    assert!(
        text.contains(&format!(
            "choreoscope_duplicate_publishes_total{{topic=\"{payments}\"}} 1"
        )),
        "{text}"
    );
    collector.stop().await;
}
