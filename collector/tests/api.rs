//! The query API over a store filled by the collector from the real broker: every endpoint's
//! content, and every error path.
//!
//! The choreography (all on topics private to this test):
//! ```text
//! o-1: OrderCreated ─► PaymentCreated ─► PaymentConfirmed ─┬► InventoryReserved
//!                                                          ├► InventoryReserved   (processed twice)
//!                                                          └► EmailSent ×2, one id (published twice)
//! o-2: OrderCreated ─► PaymentCreated                                             (never confirmed)
//! o-3: RefundIssued, caused by an event never seen
//! a legacy record with a malformed traceparent and a non-UTF-8 header; a cycle a ⇄ b
//! ```

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use choreoscope::http::{app, AppState};
use choreoscope_e2e::TestBroker;
use choreoscope_sdk::{OutgoingEvent, RecordHeaders};
use common::{produce_raw, stamped, InProcessCollector};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn id_of(h: &RecordHeaders) -> String {
    String::from_utf8(h.first("ce_id").unwrap().to_vec()).unwrap()
}

fn trace_of(h: &RecordHeaders) -> String {
    let tp = String::from_utf8(h.first("traceparent").unwrap().to_vec()).unwrap();
    tp.split('-').nth(1).unwrap().to_owned()
}

struct Fixture {
    router: axum::Router,
    topics: [String; 4],
    order1: RecordHeaders,
    payment1: RecordHeaders,
    confirmed1: RecordHeaders,
    email1: RecordHeaders,
    order2: RecordHeaders,
    refund3: RecordHeaders,
    legacy: RecordHeaders,
    order1_at: (i32, i64),
    _collector: InProcessCollector,
}

async fn fixture() -> Fixture {
    let broker = TestBroker::from_env();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topics =
        ["orders", "payments", "inventory", "notifications"].map(|t| format!("{t}-{suffix}"));
    let [orders, payments, inventory, notifications] = &topics;
    broker
        .create_topics(
            &[
                orders.as_str(),
                payments.as_str(),
                inventory.as_str(),
                notifications.as_str(),
            ],
            3,
        )
        .await
        .unwrap();
    let producer = broker.producer().unwrap();
    let collector = InProcessCollector::start(&broker, &suffix).await;

    let order1 = stamped(
        OutgoingEvent::new(orders, "OrderCreated").business_key("order.id", "o-1"),
        "order",
        None,
    );
    let payment1 = stamped(
        OutgoingEvent::new(payments, "PaymentCreated"),
        "payment",
        Some(&order1),
    );
    let confirmed1 = stamped(
        OutgoingEvent::new(payments, "PaymentConfirmed"),
        "bank",
        Some(&payment1),
    );
    let reserved1 = stamped(
        OutgoingEvent::new(inventory, "InventoryReserved"),
        "inventory",
        Some(&confirmed1),
    );
    let reserved1_again = stamped(
        OutgoingEvent::new(inventory, "InventoryReserved"),
        "inventory",
        Some(&confirmed1),
    );
    let email1 = stamped(
        OutgoingEvent::new(notifications, "EmailSent"),
        "notification",
        Some(&confirmed1),
    );
    let order2 = stamped(
        OutgoingEvent::new(orders, "OrderCreated").business_key("order.id", "o-2"),
        "order",
        None,
    );
    let payment2 = stamped(
        OutgoingEvent::new(payments, "PaymentCreated"),
        "payment",
        Some(&order2),
    );
    let never_seen = stamped(
        OutgoingEvent::new(orders, "RefundRequested"),
        "support",
        None,
    );
    let refund3 = stamped(
        OutgoingEvent::new(payments, "RefundIssued").business_key("order.id", "o-3"),
        "payment",
        Some(&never_seen),
    );
    let mut legacy = stamped(OutgoingEvent::new(orders, "LegacyPing"), "legacy", None);
    legacy.set("traceparent", "00-NOT-A-TRACE");
    legacy.set("x-binary", vec![0xff, 0x00, 0xfe]);
    let mut cycle_a = stamped(
        OutgoingEvent::new(orders, "CycleA").id("api-cycle-a"),
        "loop",
        None,
    );
    cycle_a.set("ce_causationid", "api-cycle-b");
    let mut cycle_b = stamped(
        OutgoingEvent::new(orders, "CycleB").id("api-cycle-b"),
        "loop",
        None,
    );
    cycle_b.set("ce_causationid", "api-cycle-a");

    let order1_at = produce_raw(
        &producer,
        orders,
        Some(b"o-1"),
        Some(br#"{"orderId":"o-1"}"#),
        &order1,
    )
    .await;
    for (topic, h) in [
        (payments, &payment1),
        (payments, &confirmed1),
        (inventory, &reserved1),
        (inventory, &reserved1_again),
        (notifications, &email1),
        (notifications, &email1),
        (orders, &order2),
        (payments, &payment2),
        (payments, &refund3),
        (orders, &cycle_a),
        (orders, &cycle_b),
    ] {
        produce_raw(&producer, topic, Some(b"k"), Some(br#"{"ok":true}"#), h).await;
    }
    produce_raw(
        &producer,
        orders,
        None,
        Some(b"ping \xff not json"),
        &legacy,
    )
    .await;
    collector
        .wait_for_deliveries(13, Duration::from_secs(60))
        .await;
    let router = app(AppState {
        store: collector.store.clone(),
        metrics: collector.metrics.clone(),
        live: choreoscope::live::LiveFeed::new(),
    });
    Fixture {
        router,
        topics,
        order1,
        payment1,
        confirmed1,
        email1,
        order2,
        refund3,
        legacy,
        order1_at,
        _collector: collector,
    }
}

impl Fixture {
    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let response = self
            .router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{uri}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, json)
    }

    async fn ok(&self, uri: &str) -> Value {
        let (status, json) = self.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {json}");
        json
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

fn node<'a>(graph: &'a Value, id: &str) -> &'a Value {
    graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id}"))
}

fn flags(graph: &Value, id: &str) -> Vec<String> {
    node(graph, id)["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_endpoint_answers_with_the_stored_choreography() {
    let f = fixture().await;
    let [orders, payments, _, _] = &f.topics;
    let (order1, payment1, confirmed1, email1) = (
        id_of(&f.order1),
        id_of(&f.payment1),
        id_of(&f.confirmed1),
        id_of(&f.email1),
    );

    // An event, with its ids, position, keys, headers, payload, deliveries and links.
    let e = f.ok(&format!("/api/v1/events/{order1}")).await;
    assert_eq!(e["id"], order1);
    assert_eq!(e["type"], "OrderCreated");
    assert_eq!(e["source"], "order");
    assert_eq!(e["topic"], orders.as_str());
    assert_eq!(
        (
            e["partition"].as_i64().unwrap() as i32,
            e["offset"].as_i64().unwrap()
        ),
        f.order1_at
    );
    assert_eq!(e["trace_id"], trace_of(&f.order1));
    assert_eq!(
        e["correlation_id"], order1,
        "a root's correlation is its own id"
    );
    assert_eq!(
        e["key"],
        serde_json::json!({ "encoding": "utf8", "data": "o-1" })
    );
    assert!(e["keys"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({ "name": "order.id", "value": "o-1" })));
    assert_eq!(e["payload"]["body"]["data"], r#"{"orderId":"o-1"}"#);
    assert_eq!(e["payload"]["truncated"], false);
    assert!(e["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["name"] == "ce_id" && h["value"]["data"] == order1));
    assert_eq!(e["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(e["reactions"], serde_json::json!([payment1]));
    let p = f.ok(&format!("/api/v1/events/{payment1}")).await;
    assert_eq!(p["causation_id"], order1);
    assert_eq!(p["cause_stored"], true);

    // Bad input is kept and shown: a non-UTF-8 header as base64, the problems listed.
    let legacy = f.ok(&format!("/api/v1/events/{}", id_of(&f.legacy))).await;
    let binary = legacy["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "x-binary")
        .unwrap();
    assert_eq!(
        binary["value"],
        serde_json::json!({ "encoding": "base64", "data": "/wD+" })
    );
    assert_eq!(legacy["payload"]["body"]["encoding"], "base64");
    let kinds: Vec<&str> = legacy["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"invalid_traceparent"), "{kinds:?}");

    // A duplicate publish: one event, two deliveries.
    let email = f.ok(&format!("/api/v1/events/{email1}")).await;
    assert_eq!(email["deliveries"].as_array().unwrap().len(), 2);

    // Lineage down from the order, up from the email, bounded by depth.
    let down = f
        .ok(&format!(
            "/api/v1/events/{order1}/lineage?direction=down&depth=10"
        ))
        .await;
    assert_eq!(down["nodes"].as_array().unwrap().len(), 6, "{down}");
    assert_eq!(down["edges"].as_array().unwrap().len(), 5);
    assert_eq!(node(&down, &order1)["depth"], 0);
    assert_eq!(node(&down, &email1)["depth"], 3);
    assert!(flags(&down, &order1).contains(&"root".to_owned()));
    assert!(flags(&down, &email1).contains(&"duplicate_publish".to_owned()));
    for edge in down["edges"].as_array().unwrap() {
        assert!(edge["latency_ms"].as_f64().unwrap() >= 0.0, "{edge}");
    }
    let up = f
        .ok(&format!("/api/v1/events/{email1}/lineage?direction=up"))
        .await;
    assert_eq!(
        ids(&up["nodes"]),
        [
            email1.clone(),
            confirmed1.clone(),
            payment1.clone(),
            order1.clone()
        ]
    );
    let shallow = f
        .ok(&format!(
            "/api/v1/events/{order1}/lineage?direction=down&depth=1"
        ))
        .await;
    assert_eq!(ids(&shallow["nodes"]), [order1.clone(), payment1.clone()]);
    let orphan = f
        .ok(&format!(
            "/api/v1/events/{}/lineage?direction=up",
            id_of(&f.refund3)
        ))
        .await;
    assert!(flags(&orphan, &id_of(&f.refund3)).contains(&"cause_missing".to_owned()));
    let cycle = f.ok("/api/v1/events/api-cycle-a/lineage").await;
    assert!(
        cycle["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cycle"] == true),
        "{cycle}"
    );

    // What happened to order o-1: one flow, its services, where it ends, the double processing.
    let k = f.ok("/api/v1/keys/order.id/o-1").await;
    assert_eq!(k["matched_events"], 6);
    assert_eq!(k["flows"].as_array().unwrap().len(), 1);
    let flow = &k["flows"][0];
    assert_eq!(flow["correlation_id"], order1);
    assert_eq!(flow["roots"], serde_json::json!([order1]));
    assert_eq!(flow["events"][0], order1, "causal order starts at the root");
    assert_eq!(flow["events"].as_array().unwrap().len(), 6);
    assert_eq!(
        k["services"],
        serde_json::json!(["order", "payment", "bank", "inventory", "notification"])
    );
    let ends: Vec<&str> = flow["ends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        ends.iter().filter(|t| **t == "InventoryReserved").count(),
        2
    );
    assert!(ends.contains(&"EmailSent"));
    assert_eq!(flow["hops"].as_array().unwrap().len(), 5);
    assert_eq!(k["graph"]["nodes"].as_array().unwrap().len(), 6);
    assert_eq!(k["graph"]["edges"].as_array().unwrap().len(), 5);
    let doubled: Vec<&Value> = k["graph"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            n["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "duplicate_reaction")
        })
        .collect();
    assert_eq!(doubled.len(), 1, "the second InventoryReserved");
    assert_eq!(doubled[0]["type"], "InventoryReserved");

    // Order o-2 stopped at the payment.
    let k2 = f.ok("/api/v1/keys/order.id/o-2").await;
    let ends2 = &k2["flows"][0]["ends"];
    assert_eq!(ends2.as_array().unwrap().len(), 1);
    assert_eq!(ends2[0]["type"], "PaymentCreated");
    assert_eq!(ends2[0]["source"], "payment");
    assert!(ends2[0]["idle_ms"].as_f64().unwrap() >= 0.0);

    // Trace and correlation of o-1: the same six events.
    let t = f
        .ok(&format!("/api/v1/traces/{}", trace_of(&f.order1)))
        .await;
    assert_eq!(t["graph"]["nodes"].as_array().unwrap().len(), 6);
    assert_eq!(t["flow"]["ends"].as_array().unwrap().len(), 3);
    let c = f.ok(&format!("/api/v1/correlations/{order1}")).await;
    assert_eq!(ids(&c["graph"]["nodes"]), ids(&t["graph"]["nodes"]));
    assert_ne!(id_of(&f.order2), order1);

    // Search: by key, a page at a time, without overlap; by problem, type, topic, source.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/search?key=order.id%3Do-1&limit=4".to_owned();
    loop {
        let page = f.ok(&uri).await;
        assert!(page["events"].as_array().unwrap().len() <= 4);
        seen.extend(ids(&page["events"]));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                uri = format!("/api/v1/search?key=order.id%3Do-1&limit=4&cursor={cursor}")
            }
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (6, 6), "{seen:?}");
    let by_value = f.ok("/api/v1/search?key=o-2").await;
    assert_eq!(by_value["events"].as_array().unwrap().len(), 2);
    let problems = f.ok("/api/v1/search?problem=invalid_traceparent").await;
    assert!(ids(&problems["events"]).contains(&id_of(&f.legacy)));
    let typed = f
        .ok(&format!("/api/v1/search?type=OrderCreated&topic={orders}"))
        .await;
    assert_eq!(typed["events"].as_array().unwrap().len(), 2);
    let by_source = f
        .ok(&format!("/api/v1/search?source=bank&topic={payments}"))
        .await;
    assert_eq!(ids(&by_source["events"]), std::slice::from_ref(&confirmed1));
    let names = f.ok("/api/v1/keys").await;
    assert!(names["names"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "order.id"));
    // Which names hold a bare value: o-2 only as an order id; o-1 also as a raw record's key.
    let holding = f.ok("/api/v1/keys?value=o-2").await;
    assert_eq!(holding["names"], serde_json::json!(["order.id"]));
    let holding = f.ok("/api/v1/keys?value=o-1").await;
    assert_eq!(
        holding["names"],
        serde_json::json!(["kafka.key", "order.id"])
    );
    let holding = f.ok("/api/v1/keys?value=o-404").await;
    assert_eq!(holding["names"], serde_json::json!([]));

    // The choreography: produce and consume edges with counts and latencies.
    let map = f.ok("/api/v1/topology?from=0").await;
    let edge = |from: &str, to: &str| {
        map["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["from"] == from && e["to"] == to)
            .cloned()
    };
    let produced =
        edge("service:order", &format!("topic:{orders}")).expect("order produces to orders");
    assert_eq!(produced["kind"], "produce");
    assert_eq!(produced["count"], 2);
    let consumed =
        edge(&format!("topic:{orders}"), "service:payment").expect("payment consumes orders");
    assert_eq!(consumed["kind"], "consume");
    assert_eq!(consumed["count"], 2);
    assert!(
        consumed["latency_p95_ms"].as_f64().unwrap()
            >= consumed["latency_p50_ms"].as_f64().unwrap()
    );

    // The OpenAPI document is generated and names every resource.
    let doc = f.ok("/api/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/events/{id}",
        "/api/v1/events/{id}/lineage",
        "/api/v1/keys/{name}/{value}",
        "/api/v1/traces/{trace_id}",
        "/api/v1/correlations/{id}",
        "/api/v1/search",
        "/api/v1/topology",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn every_error_is_json_with_the_right_status() {
    let f = fixture().await;
    let order1 = id_of(&f.order1);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (
            "/api/v1/events/no-such-event".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            format!("/api/v1/events/{order1}/lineage?direction=sideways"),
            StatusCode::BAD_REQUEST,
            "bad_parameter",
        ),
        (
            format!("/api/v1/events/{order1}/lineage?depth=abc"),
            StatusCode::BAD_REQUEST,
            "bad_parameter",
        ),
        (
            format!("/api/v1/events/{order1}/lineage?depth=-1"),
            StatusCode::BAD_REQUEST,
            "bad_parameter",
        ),
        (
            "/api/v1/events/no-such-event/lineage".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/traces/xyz".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unusable_value",
        ),
        (
            "/api/v1/traces/0123456789abcdef0123456789abcdef".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/correlations/nothing-here".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/keys/order.id/o-404".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/search?limit=0".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unusable_value",
        ),
        (
            "/api/v1/search?limit=many".into(),
            StatusCode::BAD_REQUEST,
            "bad_parameter",
        ),
        (
            "/api/v1/search?cursor=garbage!".into(),
            StatusCode::BAD_REQUEST,
            "bad_parameter",
        ),
        (
            "/api/v1/search?from=yesterday".into(),
            StatusCode::BAD_REQUEST,
            "bad_parameter",
        ),
        (
            "/api/v1/search?from=2000&to=1000".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unusable_value",
        ),
        (
            "/api/v1/topology?from=2000&to=1000".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unusable_value",
        ),
        (
            "/api/v1/no-such-resource".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (uri, status, code) in cases {
        let (got, body) = f.get(&uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert_eq!(body["error"], code, "{uri}: {body}");
        assert!(
            !body["detail"].as_str().unwrap().is_empty(),
            "{uri}: {body}"
        );
    }

    // Limits are applied and said, not refused.
    let deep = f
        .ok(&format!("/api/v1/events/{order1}/lineage?depth=100000"))
        .await;
    assert_eq!(deep["truncated"], "depth limited to 100");
    let page = f.ok("/api/v1/search?limit=100000").await;
    assert_eq!(page["limit"], 500);
    let _ = (&f.order2, &f.refund3);
}
