//! The query API, endpoint by endpoint and error by error, over one stored choreography.
//!
//! The choreography (all on topics private to this binary):
//! ```text
//! o-1: OrderCreated ─► PaymentCreated ─► PaymentConfirmed ─┬► InventoryReserved
//!                                                          ├► InventoryReserved   (processed twice)
//!                                                          └► EmailSent ×2, one id (published twice)
//! o-2: OrderCreated ─► PaymentCreated                                             (never confirmed)
//! o-3: RefundIssued, caused by an event never seen
//! a legacy record with a malformed traceparent and a non-UTF-8 header; a cycle a ⇄ b
//! ```
//!
//! Its records are stamped by the SDK and interpreted as the collector interprets them, then
//! written straight into a SQLite store, once per binary ([`stored`]); every test queries the
//! router over a store of its own on that file. One test sends the same records through the real
//! broker and the collector, and finds the same answers
//! ([`through_the_broker_the_collector_stores_what_the_api_answers_from`]).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use choreoscope::http::{app, AppState};
use choreoscope::live::LiveFeed;
use choreoscope::metrics::Metrics;
use choreoscope::record::{Interpreter, RawRecord};
use choreoscope::rules::Rules;
use choreoscope::store::Store;
use choreoscope_e2e::TestBroker;
use choreoscope_sdk::{OutgoingEvent, RecordHeaders};
use common::fixture::{sqlite_url, Filled, OnceFilled};
use common::{produce_raw, stamped, InProcessCollector};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn id_of(h: &RecordHeaders) -> String {
    String::from_utf8(h.first("ce_id").unwrap().to_vec()).unwrap()
}

fn trace_of(h: &RecordHeaders) -> String {
    let tp = String::from_utf8(h.first("traceparent").unwrap().to_vec()).unwrap();
    tp.split('-').nth(1).unwrap().to_owned()
}

/// One record as a producer sends it.
struct Produced {
    topic: String,
    key: Option<&'static [u8]>,
    payload: Option<&'static [u8]>,
    headers: RecordHeaders,
}

/// The choreography's records, in the order they are produced, and the ids the tests look for.
struct Choreography {
    /// What every topic name ends with (the collector of the broker test stores only those).
    suffix: String,
    /// orders, payments, inventory, notifications.
    topics: [String; 4],
    records: Vec<Produced>,
    order1: String,
    order1_trace: String,
    payment1: String,
    confirmed1: String,
    email1: String,
    order2: String,
    refund3: String,
    legacy: String,
}

impl Choreography {
    fn new() -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let topics =
            ["orders", "payments", "inventory", "notifications"].map(|t| format!("{t}-{suffix}"));
        let [orders, payments, inventory, notifications] = &topics;

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

        let produced = |topic: &String, key, payload, headers: &RecordHeaders| Produced {
            topic: topic.clone(),
            key,
            payload,
            headers: headers.clone(),
        };
        let mut records = vec![produced(
            orders,
            Some(b"o-1"),
            Some(br#"{"orderId":"o-1"}"#),
            &order1,
        )];
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
            records.push(produced(topic, Some(b"k"), Some(br#"{"ok":true}"#), h));
        }
        records.push(produced(orders, None, Some(b"ping \xff not json"), &legacy));

        Self {
            order1: id_of(&order1),
            order1_trace: trace_of(&order1),
            payment1: id_of(&payment1),
            confirmed1: id_of(&confirmed1),
            email1: id_of(&email1),
            order2: id_of(&order2),
            refund3: id_of(&refund3),
            legacy: id_of(&legacy),
            suffix,
            topics,
            records,
        }
    }

    fn orders(&self) -> &str {
        &self.topics[0]
    }

    fn payments(&self) -> &str {
        &self.topics[1]
    }
}

/// The choreography as written into the shared store.
struct Stored {
    choreography: Choreography,
    /// Where the first OrderCreated of o-1 was written: (partition, offset).
    order1_at: (i32, i64),
}

static STORED: OnceFilled<Stored> = OnceFilled::new();

/// The shared store, filled on first use.
fn stored() -> &'static Filled<Stored> {
    STORED.get(fill)
}

/// Writes the choreography into a fresh store at `path` as the collector would store it from a
/// broker with three partitions per topic: a keyed record on partition (sum of its key's bytes)
/// mod 3, an unkeyed one on 0, offsets counted per partition, the broker's time now.
async fn fill(path: PathBuf) -> Stored {
    let choreography = Choreography::new();
    let store = Store::connect(&sqlite_url(&path)).await.unwrap();
    let interpreter = Interpreter::new(Rules::default(), 64 * 1024);
    let now_us = chrono::Utc::now().timestamp_micros();
    let mut next_offset: HashMap<(&str, i32), i64> = HashMap::new();
    let mut order1_at = None;
    let mut batch = Vec::new();
    for r in &choreography.records {
        let partition = r
            .key
            .map_or(0, |k| k.iter().map(|&b| i32::from(b)).sum::<i32>() % 3);
        let next = next_offset
            .entry((r.topic.as_str(), partition))
            .or_insert(0);
        let offset = *next;
        *next += 1;
        if id_of(&r.headers) == choreography.order1 {
            order1_at.get_or_insert((partition, offset));
        }
        batch.push(interpreter.interpret(
            RawRecord {
                topic: &r.topic,
                partition,
                offset,
                key: r.key,
                payload: r.payload,
                headers: &r.headers,
                timestamp_ms: Some(now_us / 1000),
            },
            now_us,
        ));
    }
    let outcome = store.write_batch(&batch).await.unwrap();
    assert_eq!(
        (outcome.new_deliveries, outcome.new_events),
        (13, 12),
        "{outcome:?}"
    );
    store.close().await;
    Stored {
        choreography,
        order1_at: order1_at.unwrap(),
    }
}

/// The router over `store`, as `choreoscope collect` serves it.
struct Api {
    router: axum::Router,
}

impl Api {
    fn over(store: Store) -> Self {
        Self {
            router: app(AppState {
                store,
                metrics: Arc::new(Metrics::new()),
                live: LiveFeed::new(),
                health: Default::default(),
                groups: Default::default(),
                progress: Default::default(),
                redaction: Default::default(),
            }),
        }
    }

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

/// The API over a store of this test's own on the shared file, and what that file holds.
async fn api() -> (Api, &'static Stored) {
    let filled = stored();
    (Api::over(filled.open().await), &filled.data)
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

fn len(list: &Value) -> usize {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .len()
}

// ---------------------------------------------------------------------------------------------
// An event

#[tokio::test]
async fn an_event_answer_names_the_event_its_type_source_topic_and_position() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let e = api.ok(&format!("/api/v1/events/{}", c.order1)).await;
    assert_eq!(e["id"], c.order1);
    assert_eq!(e["type"], "OrderCreated");
    assert_eq!(e["source"], "order");
    assert_eq!(e["topic"], c.orders());
    assert_eq!(
        (
            e["partition"].as_i64().unwrap() as i32,
            e["offset"].as_i64().unwrap()
        ),
        s.order1_at
    );
}

#[tokio::test]
async fn an_event_answer_carries_the_trace_id_of_its_traceparent() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let e = api.ok(&format!("/api/v1/events/{}", c.order1)).await;
    assert_eq!(e["trace_id"], c.order1_trace);
}

#[tokio::test]
async fn a_root_event_is_the_correlation_of_its_own_flow() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let e = api.ok(&format!("/api/v1/events/{}", c.order1)).await;
    assert_eq!(
        e["correlation_id"], c.order1,
        "a root's correlation is its own id"
    );
}

#[tokio::test]
async fn an_event_answer_shows_the_record_key_and_the_business_keys() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let e = api.ok(&format!("/api/v1/events/{}", c.order1)).await;
    assert_eq!(e["key"], json!({ "encoding": "utf8", "data": "o-1" }));
    assert!(
        e["keys"]
            .as_array()
            .unwrap()
            .contains(&json!({ "name": "order.id", "value": "o-1" })),
        "{}",
        e["keys"]
    );
}

#[tokio::test]
async fn an_event_answer_shows_the_whole_payload_and_every_header() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let e = api.ok(&format!("/api/v1/events/{}", c.order1)).await;
    assert_eq!(e["payload"]["body"]["data"], r#"{"orderId":"o-1"}"#);
    assert_eq!(e["payload"]["truncated"], false);
    assert!(
        e["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "ce_id" && h["value"]["data"] == c.order1),
        "{}",
        e["headers"]
    );
}

#[tokio::test]
async fn an_event_answer_lists_its_deliveries_and_its_reactions() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let e = api.ok(&format!("/api/v1/events/{}", c.order1)).await;
    assert_eq!(len(&e["deliveries"]), 1);
    assert_eq!(e["reactions"], json!([c.payment1]));
}

#[tokio::test]
async fn a_reaction_names_its_cause_and_whether_the_cause_is_stored() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let p = api.ok(&format!("/api/v1/events/{}", c.payment1)).await;
    assert_eq!(p["causation_id"], c.order1);
    assert_eq!(p["cause_stored"], true);
    let orphan = api.ok(&format!("/api/v1/events/{}", c.refund3)).await;
    assert!(orphan["causation_id"].is_string(), "{orphan}");
    assert_eq!(orphan["cause_stored"], false, "its cause was never seen");
}

#[tokio::test]
async fn a_header_that_is_not_utf8_is_shown_as_base64() {
    let (api, s) = api().await;
    let legacy = api
        .ok(&format!("/api/v1/events/{}", s.choreography.legacy))
        .await;
    let binary = legacy["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "x-binary")
        .unwrap();
    assert_eq!(
        binary["value"],
        json!({ "encoding": "base64", "data": "/wD+" })
    );
}

#[tokio::test]
async fn a_payload_that_is_not_utf8_is_shown_as_base64() {
    let (api, s) = api().await;
    let legacy = api
        .ok(&format!("/api/v1/events/{}", s.choreography.legacy))
        .await;
    assert_eq!(legacy["payload"]["body"]["encoding"], "base64");
}

#[tokio::test]
async fn an_event_answer_lists_what_could_not_be_interpreted() {
    let (api, s) = api().await;
    let legacy = api
        .ok(&format!("/api/v1/events/{}", s.choreography.legacy))
        .await;
    let kinds: Vec<&str> = legacy["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"invalid_traceparent"), "{kinds:?}");
}

#[tokio::test]
async fn a_duplicate_publish_is_one_event_with_two_deliveries() {
    let (api, s) = api().await;
    let email = api
        .ok(&format!("/api/v1/events/{}", s.choreography.email1))
        .await;
    assert_eq!(len(&email["deliveries"]), 2, "{email}");
}

// ---------------------------------------------------------------------------------------------
// Lineage

#[tokio::test]
async fn a_lineage_down_reaches_every_reaction_at_its_depth() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let down = api
        .ok(&format!(
            "/api/v1/events/{}/lineage?direction=down&depth=10",
            c.order1
        ))
        .await;
    assert_eq!(len(&down["nodes"]), 6, "{down}");
    assert_eq!(len(&down["edges"]), 5);
    assert_eq!(node(&down, &c.order1)["depth"], 0);
    assert_eq!(node(&down, &c.email1)["depth"], 3);
}

#[tokio::test]
async fn a_lineage_flags_the_event_that_starts_the_flow_as_its_root() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let down = api
        .ok(&format!(
            "/api/v1/events/{}/lineage?direction=down&depth=10",
            c.order1
        ))
        .await;
    assert!(flags(&down, &c.order1).contains(&"root".to_owned()));
}

#[tokio::test]
async fn a_lineage_flags_an_event_published_twice_as_a_duplicate_publish() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let down = api
        .ok(&format!(
            "/api/v1/events/{}/lineage?direction=down&depth=10",
            c.order1
        ))
        .await;
    assert!(flags(&down, &c.email1).contains(&"duplicate_publish".to_owned()));
}

#[tokio::test]
async fn no_lineage_edge_has_a_negative_latency() {
    let (api, s) = api().await;
    let down = api
        .ok(&format!(
            "/api/v1/events/{}/lineage?direction=down&depth=10",
            s.choreography.order1
        ))
        .await;
    assert!(len(&down["edges"]) > 0, "{down}");
    for edge in down["edges"].as_array().unwrap() {
        assert!(edge["latency_ms"].as_f64().unwrap() >= 0.0, "{edge}");
    }
}

#[tokio::test]
async fn a_lineage_up_walks_from_a_reaction_back_to_its_root() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let up = api
        .ok(&format!("/api/v1/events/{}/lineage?direction=up", c.email1))
        .await;
    assert_eq!(
        ids(&up["nodes"]),
        [
            c.email1.clone(),
            c.confirmed1.clone(),
            c.payment1.clone(),
            c.order1.clone()
        ]
    );
}

#[tokio::test]
async fn a_lineage_goes_no_deeper_than_asked() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let shallow = api
        .ok(&format!(
            "/api/v1/events/{}/lineage?direction=down&depth=1",
            c.order1
        ))
        .await;
    assert_eq!(
        ids(&shallow["nodes"]),
        [c.order1.clone(), c.payment1.clone()]
    );
}

#[tokio::test]
async fn a_lineage_flags_an_event_whose_cause_was_never_seen() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let orphan = api
        .ok(&format!(
            "/api/v1/events/{}/lineage?direction=up",
            c.refund3
        ))
        .await;
    assert!(flags(&orphan, &c.refund3).contains(&"cause_missing".to_owned()));
}

#[tokio::test]
async fn a_lineage_through_a_causation_cycle_marks_an_edge_as_closing_it() {
    let (api, _) = api().await;
    let cycle = api.ok("/api/v1/events/api-cycle-a/lineage").await;
    assert!(
        cycle["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cycle"] == true),
        "{cycle}"
    );
}

#[tokio::test]
async fn a_lineage_deeper_than_the_limit_is_cut_at_the_limit_and_says_so() {
    let (api, s) = api().await;
    let deep = api
        .ok(&format!(
            "/api/v1/events/{}/lineage?depth=100000",
            s.choreography.order1
        ))
        .await;
    assert_eq!(deep["truncated"], "depth limited to 100");
}

// ---------------------------------------------------------------------------------------------
// What happened to a business key

#[tokio::test]
async fn a_key_answer_counts_every_event_that_carried_the_key() {
    let (api, _) = api().await;
    let k = api.ok("/api/v1/keys/order.id/o-1").await;
    assert_eq!(k["matched_events"], 6);
}

#[tokio::test]
async fn a_key_answer_lists_every_flow_that_carried_the_key() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let k = api.ok("/api/v1/keys/order.id/o-1").await;
    assert_eq!(len(&k["flows"]), 1, "{}", k["flows"]);
    let flow = &k["flows"][0];
    assert_eq!(flow["correlation_id"], c.order1);
    assert_eq!(flow["roots"], json!([c.order1]));
}

#[tokio::test]
async fn a_flow_lists_its_events_in_causal_order_from_its_root() {
    let (api, s) = api().await;
    let k = api.ok("/api/v1/keys/order.id/o-1").await;
    let flow = &k["flows"][0];
    assert_eq!(
        flow["events"][0], s.choreography.order1,
        "causal order starts at the root"
    );
    assert_eq!(len(&flow["events"]), 6);
}

#[tokio::test]
async fn a_key_answer_names_the_services_in_the_order_they_took_part() {
    let (api, _) = api().await;
    let k = api.ok("/api/v1/keys/order.id/o-1").await;
    assert_eq!(
        k["services"],
        json!(["order", "payment", "bank", "inventory", "notification"])
    );
}

#[tokio::test]
async fn a_flow_ends_at_every_event_nothing_reacted_to() {
    let (api, _) = api().await;
    let k = api.ok("/api/v1/keys/order.id/o-1").await;
    let ends: Vec<&str> = k["flows"][0]["ends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        ends.iter().filter(|t| **t == "InventoryReserved").count(),
        2,
        "{ends:?}"
    );
    assert!(ends.contains(&"EmailSent"), "{ends:?}");
    assert_eq!(ends.len(), 3, "{ends:?}");
}

#[tokio::test]
async fn a_flow_lists_every_hop_from_cause_to_reaction() {
    let (api, _) = api().await;
    let k = api.ok("/api/v1/keys/order.id/o-1").await;
    assert_eq!(len(&k["flows"][0]["hops"]), 5);
}

#[tokio::test]
async fn a_key_answer_graph_holds_every_event_and_edge_of_its_flows() {
    let (api, _) = api().await;
    let k = api.ok("/api/v1/keys/order.id/o-1").await;
    assert_eq!(len(&k["graph"]["nodes"]), 6);
    assert_eq!(len(&k["graph"]["edges"]), 5);
}

#[tokio::test]
async fn a_second_same_reaction_of_one_service_to_one_cause_is_flagged_a_duplicate_reaction() {
    let (api, _) = api().await;
    let k = api.ok("/api/v1/keys/order.id/o-1").await;
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
}

#[tokio::test]
async fn a_flow_that_stopped_ends_at_its_last_event_with_the_time_it_has_been_idle() {
    let (api, _) = api().await;
    let k2 = api.ok("/api/v1/keys/order.id/o-2").await;
    let ends2 = &k2["flows"][0]["ends"];
    assert_eq!(len(ends2), 1, "{ends2}");
    assert_eq!(ends2[0]["type"], "PaymentCreated");
    assert_eq!(ends2[0]["source"], "payment");
    assert!(ends2[0]["idle_ms"].as_f64().unwrap() >= 0.0);
}

// ---------------------------------------------------------------------------------------------
// Traces and correlations

#[tokio::test]
async fn a_trace_answer_holds_the_flow_of_the_trace() {
    let (api, s) = api().await;
    let t = api
        .ok(&format!("/api/v1/traces/{}", s.choreography.order1_trace))
        .await;
    assert_eq!(len(&t["graph"]["nodes"]), 6);
    assert_eq!(len(&t["flow"]["ends"]), 3);
}

#[tokio::test]
async fn a_correlation_answer_holds_the_same_events_as_the_trace_of_its_root() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let t = api.ok(&format!("/api/v1/traces/{}", c.order1_trace)).await;
    let corr = api.ok(&format!("/api/v1/correlations/{}", c.order1)).await;
    assert_eq!(ids(&corr["graph"]["nodes"]), ids(&t["graph"]["nodes"]));
    assert_eq!(len(&corr["graph"]["nodes"]), 6);
    assert!(
        !ids(&corr["graph"]["nodes"]).contains(&c.order2),
        "o-2 is a conversation of its own"
    );
    assert_ne!(c.order2, c.order1);
}

// ---------------------------------------------------------------------------------------------
// Search

#[tokio::test]
async fn a_key_search_pages_through_every_match_without_overlap() {
    let (api, _) = api().await;
    let mut seen = Vec::new();
    let mut uri = "/api/v1/search?key=order.id%3Do-1&limit=4".to_owned();
    let mut pages = 0;
    loop {
        let page = api.ok(&uri).await;
        pages += 1;
        assert!(len(&page["events"]) <= 4, "{page}");
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
    assert!(pages >= 2, "six matches four at a time take two pages");
}

#[tokio::test]
async fn a_search_by_a_bare_value_matches_it_under_any_key_name() {
    let (api, _) = api().await;
    let by_value = api.ok("/api/v1/search?key=o-2").await;
    assert_eq!(len(&by_value["events"]), 2, "{by_value}");
}

#[tokio::test]
async fn a_search_by_problem_finds_the_events_that_have_it() {
    let (api, s) = api().await;
    let problems = api.ok("/api/v1/search?problem=invalid_traceparent").await;
    assert!(ids(&problems["events"]).contains(&s.choreography.legacy));
}

#[tokio::test]
async fn a_search_by_type_and_topic_finds_only_events_of_both() {
    let (api, s) = api().await;
    let typed = api
        .ok(&format!(
            "/api/v1/search?type=OrderCreated&topic={}",
            s.choreography.orders()
        ))
        .await;
    assert_eq!(len(&typed["events"]), 2, "{typed}");
}

#[tokio::test]
async fn a_search_by_source_and_topic_finds_only_events_of_both() {
    let (api, s) = api().await;
    let c = &s.choreography;
    let by_source = api
        .ok(&format!(
            "/api/v1/search?source=bank&topic={}",
            c.payments()
        ))
        .await;
    assert_eq!(
        ids(&by_source["events"]),
        std::slice::from_ref(&c.confirmed1)
    );
}

#[tokio::test]
async fn a_search_page_larger_than_the_limit_is_cut_to_the_limit() {
    let (api, _) = api().await;
    let page = api.ok("/api/v1/search?limit=100000").await;
    assert_eq!(page["limit"], 500);
}

// ---------------------------------------------------------------------------------------------
// Key names

#[tokio::test]
async fn the_key_names_include_every_business_key_name_seen() {
    let (api, _) = api().await;
    let names = api.ok("/api/v1/keys").await;
    assert!(
        names["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "order.id"),
        "{names}"
    );
}

#[tokio::test]
async fn the_key_names_holding_a_value_are_exactly_those_it_was_stored_under() {
    let (api, _) = api().await;
    // o-2 only as an order id; o-1 also as a raw record's key.
    let holding = api.ok("/api/v1/keys?value=o-2").await;
    assert_eq!(holding["names"], json!(["order.id"]));
    let holding = api.ok("/api/v1/keys?value=o-1").await;
    assert_eq!(holding["names"], json!(["kafka.key", "order.id"]));
    let holding = api.ok("/api/v1/keys?value=o-404").await;
    assert_eq!(holding["names"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// The choreography's topology

/// The topology's edge `from` → `to`.
fn map_edge(map: &Value, from: &str, to: &str) -> Option<Value> {
    map["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == from && e["to"] == to)
        .cloned()
}

#[tokio::test]
async fn the_topology_counts_the_events_each_service_produces_to_each_topic() {
    let (api, s) = api().await;
    let orders = s.choreography.orders();
    let map = api.ok("/api/v1/topology?from=0").await;
    let produced = map_edge(&map, "service:order", &format!("topic:{orders}"))
        .expect("order produces to orders");
    assert_eq!(produced["kind"], "produce");
    assert_eq!(produced["count"], 2);
}

#[tokio::test]
async fn the_topology_counts_the_events_each_service_reacts_to_with_its_latencies() {
    let (api, s) = api().await;
    let orders = s.choreography.orders();
    let map = api.ok("/api/v1/topology?from=0").await;
    let consumed = map_edge(&map, &format!("topic:{orders}"), "service:payment")
        .expect("payment consumes orders");
    assert_eq!(consumed["kind"], "consume");
    assert_eq!(consumed["count"], 2);
    assert!(
        consumed["latency_p95_ms"].as_f64().unwrap()
            >= consumed["latency_p50_ms"].as_f64().unwrap(),
        "{consumed}"
    );
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document

#[tokio::test]
async fn the_openapi_document_is_generated_and_names_every_resource() {
    let (api, _) = api().await;
    let doc = api.ok("/api/v1/openapi.json").await;
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

// ---------------------------------------------------------------------------------------------
// Errors

/// Every error path: the request (`{id}` stands for an event the store holds), the status, the
/// stable error code and words the human-readable detail must contain.
const ERRORS: &[(&str, StatusCode, &str, &str)] = &[
    (
        "/api/v1/events/no-such-event",
        StatusCode::NOT_FOUND,
        "not_found",
        "no-such-event",
    ),
    (
        "/api/v1/events/{id}/lineage?direction=sideways",
        StatusCode::BAD_REQUEST,
        "bad_parameter",
        "sideways",
    ),
    (
        "/api/v1/events/{id}/lineage?depth=abc",
        StatusCode::BAD_REQUEST,
        "bad_parameter",
        "depth",
    ),
    (
        "/api/v1/events/{id}/lineage?depth=-1",
        StatusCode::BAD_REQUEST,
        "bad_parameter",
        "depth",
    ),
    (
        "/api/v1/events/no-such-event/lineage",
        StatusCode::NOT_FOUND,
        "not_found",
        "no-such-event",
    ),
    (
        "/api/v1/traces/xyz",
        StatusCode::UNPROCESSABLE_ENTITY,
        "unusable_value",
        "xyz",
    ),
    (
        "/api/v1/traces/0123456789abcdef0123456789abcdef",
        StatusCode::NOT_FOUND,
        "not_found",
        "0123456789abcdef0123456789abcdef",
    ),
    (
        "/api/v1/correlations/nothing-here",
        StatusCode::NOT_FOUND,
        "not_found",
        "nothing-here",
    ),
    (
        "/api/v1/keys/order.id/o-404",
        StatusCode::NOT_FOUND,
        "not_found",
        "o-404",
    ),
    (
        "/api/v1/search?limit=0",
        StatusCode::UNPROCESSABLE_ENTITY,
        "unusable_value",
        "limit",
    ),
    (
        "/api/v1/search?limit=many",
        StatusCode::BAD_REQUEST,
        "bad_parameter",
        "limit",
    ),
    (
        "/api/v1/search?cursor=garbage!",
        StatusCode::BAD_REQUEST,
        "bad_parameter",
        "garbage!",
    ),
    (
        "/api/v1/search?from=yesterday",
        StatusCode::BAD_REQUEST,
        "bad_parameter",
        "from",
    ),
    (
        "/api/v1/search?from=2000&to=1000",
        StatusCode::UNPROCESSABLE_ENTITY,
        "unusable_value",
        "`from` is after `to`",
    ),
    (
        "/api/v1/topology?from=2000&to=1000",
        StatusCode::UNPROCESSABLE_ENTITY,
        "unusable_value",
        "`from` is after `to`",
    ),
    (
        "/api/v1/no-such-resource",
        StatusCode::NOT_FOUND,
        "not_found",
        "/api/v1/no-such-resource",
    ),
];

#[tokio::test]
async fn every_error_is_json_with_its_status_its_code_and_a_detail_that_says_what_was_wrong() {
    let (api, s) = api().await;
    let mut failed = Vec::new();
    for (row, &(path, status, code, words)) in ERRORS.iter().enumerate() {
        let uri = path.replace("{id}", &s.choreography.order1);
        let (got, body) = api.get(&uri).await;
        let detail = body["detail"].as_str().unwrap_or_default();
        if got != status || body["error"] != code || detail.is_empty() || !detail.contains(words) {
            failed.push(format!(
                "row {row}: {uri}: expected {status} {code:?} with a detail containing \
                 {words:?}, got {got} {body}"
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The broker path

/// Removes what depends on where and when the broker put each record (positions, broker and
/// ingest times, and the time since a flow's end, which moves while the test runs).
fn without_positions_and_clock(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for field in [
                "partition",
                "offset",
                "broker_time",
                "ingested_at",
                "idle_ms",
            ] {
                map.remove(field);
            }
            map.values_mut().for_each(without_positions_and_clock);
        }
        Value::Array(list) => list.iter_mut().for_each(without_positions_and_clock),
        _ => {}
    }
}

/// The same records produced to the real broker and stored by the collector answer as the store
/// the other tests query does, but for where and when the broker put them; and the event shows
/// the position the broker gave it.
#[tokio::test]
async fn through_the_broker_the_collector_stores_what_the_api_answers_from() {
    let (reference, s) = api().await;
    let c = &s.choreography;
    let broker = TestBroker::from_env();
    let topics: Vec<&str> = c.topics.iter().map(String::as_str).collect();
    broker.create_topics(&topics, 3).await.unwrap();
    let producer = broker.producer().unwrap();
    let collector = InProcessCollector::start(&broker, &c.suffix).await;
    let mut order1_at = None;
    for r in &c.records {
        let at = produce_raw(&producer, &r.topic, r.key, r.payload, &r.headers).await;
        if id_of(&r.headers) == c.order1 {
            order1_at.get_or_insert(at);
        }
    }
    collector
        .wait_for_deliveries(13, Duration::from_secs(60))
        .await;
    let collected = Api::over(collector.store.clone());

    let e = collected.ok(&format!("/api/v1/events/{}", c.order1)).await;
    assert_eq!(
        (
            e["partition"].as_i64().unwrap() as i32,
            e["offset"].as_i64().unwrap()
        ),
        order1_at.unwrap(),
        "where the broker put it"
    );
    let k = collected.ok("/api/v1/keys/order.id/o-1").await;
    assert_eq!(k["matched_events"], 6, "{k}");

    for (uri, part) in [
        ("/api/v1/keys/order.id/o-1".to_owned(), ""),
        ("/api/v1/keys/order.id/o-2".to_owned(), ""),
        (format!("/api/v1/events/{}", c.order1), ""),
        (format!("/api/v1/events/{}", c.email1), ""),
        (format!("/api/v1/events/{}", c.legacy), ""),
        (
            format!("/api/v1/events/{}/lineage?direction=up", c.refund3),
            "",
        ),
        ("/api/v1/events/api-cycle-a/lineage".to_owned(), ""),
        ("/api/v1/search?key=order.id%3Do-1".to_owned(), ""),
        ("/api/v1/keys?value=o-1".to_owned(), ""),
        ("/api/v1/topology?from=0".to_owned(), "/edges"),
    ] {
        let mut got = collected.ok(&uri).await.pointer(part).unwrap().clone();
        let mut expected = reference.ok(&uri).await.pointer(part).unwrap().clone();
        without_positions_and_clock(&mut got);
        without_positions_and_clock(&mut expected);
        assert_eq!(
            got, expected,
            "{uri}{part}: the broker path (left) answers otherwise than the store (right)"
        );
    }
    collector.stop().await;
}
