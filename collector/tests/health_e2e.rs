//! Flow health on the real broker: a checkout choreography of 300 normal flows — exclusive
//! outcomes at the bank (a fifth declined), a fan-out to inventory and notification after a
//! confirmation — and flows that miss a reaction at three different steps, one whose event was
//! dead-lettered with Spring Kafka's headers, and an audit step whose reaction stopped happening.
//! One collector learns with the defaults and polls the consumer groups — the bank's group read
//! every record and reacted to none of the stuck payments, the payment service's group is behind
//! the stuck orders; a second one, on the same records, learns with declared expectations.
//!
//! Events carry their own `ce_time`, minutes in the past, so the model learns and deadlines pass
//! as soon as the records are read. The choreography is produced and collected once per binary
//! ([`collected`]); what flow health then says is kept for the tests.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use choreoscope::groups::GroupsConfig;
use choreoscope::health::{FlowStatus, HealthConfig, HealthHandle};
use choreoscope::ingest::TopicFilter;
use choreoscope::query::{self, Limits};
use choreoscope::rules::TopicPattern;
use choreoscope_e2e::TestBroker;
use choreoscope_sdk::RecordHeaders;
use common::fixture::{Filled, OnceFilled};
use common::{consumer, read_and_commit, InProcessCollector};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

const S: i64 = 1_000_000;
const MS: i64 = 1_000;
const NORMAL: i64 = 300;

/// What one flow's health said, as the API writes it.
#[derive(Debug, Clone)]
struct Seen {
    status: FlowStatus,
    /// `after → expected` of each missing reaction that is overdue.
    overdue: Vec<String>,
    /// Each failure's reason.
    failures: Vec<String>,
}

/// What the two collectors said once everything was read.
struct Collected {
    /// Per flow (the correlation id), with the default settings.
    learned: BTreeMap<String, Seen>,
    /// Per flow, with declared expectations.
    declared: BTreeMap<String, Seen>,
    /// `/api/v1/flows/summary`, as JSON.
    summary: Value,
    /// `/api/v1/model`, as JSON.
    model: Value,
    /// The key answer of `bank-0`, as JSON.
    key_answer: Value,
    /// The key answer of `pay-0`, as JSON.
    lagging_answer: Value,
    /// The event answer of `pay-0`'s order, as JSON.
    lagging_event: Value,
    /// The consumer groups: the bank's, the payment service's.
    groups: (String, String),
    /// The map of the last hour, as JSON.
    map: Value,
    /// The collector's metrics.
    metrics: String,
}

static COLLECTED: OnceFilled<Collected> = OnceFilled::new();

fn collected() -> &'static Collected {
    let filled: &'static Filled<Collected> = COLLECTED.get(produce_and_collect);
    &filled.data
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One record of the choreography.
struct Record {
    time_us: i64,
    topic: String,
    headers: RecordHeaders,
}

/// The flow `flow` (order `flow`), its events appended to `out`.
struct FlowWriter<'a> {
    flow: String,
    topic: &'a str,
    out: &'a mut Vec<Record>,
}

impl FlowWriter<'_> {
    /// Appends event `id` of `step` at `time_us`, caused by `cause`; returns its id.
    fn event(&mut self, id: &str, step: &str, time_us: i64, cause: Option<&str>) -> String {
        let (service, event_type) = step.split_once('/').unwrap();
        let id = format!("{}/{id}", self.flow);
        let mut h = RecordHeaders::new();
        h.set("ce_specversion", "1.0");
        h.set("ce_id", id.as_str());
        h.set("ce_source", service);
        h.set("ce_type", event_type);
        h.set("ce_time", rfc3339(time_us).as_str());
        h.set("ce_correlationid", self.flow.as_str());
        h.set("baggage", format!("order.id={}", self.flow).as_str());
        if let Some(cause) = cause {
            h.set("ce_causationid", cause);
        }
        self.out.push(Record {
            time_us,
            topic: self.topic.to_owned(),
            headers: h,
        });
        id
    }
}

fn writer<'a>(flow: String, topic: &'a str, out: &'a mut Vec<Record>) -> FlowWriter<'a> {
    FlowWriter { flow, topic, out }
}

/// Order `flow` at `t`: order → payment → bank (declined when `declined`) → inventory and
/// notification after a confirmation; `upto` keeps only its first events.
fn checkout(w: &mut FlowWriter<'_>, t: i64, declined: bool, upto: usize) {
    let mut made = 0;
    let next = |made: &mut usize| {
        *made += 1;
        *made <= upto
    };
    if !next(&mut made) {
        return;
    }
    let o = w.event("o", "order/OrderCreated", t, None);
    if !next(&mut made) {
        return;
    }
    let p = w.event("p", "payment/PaymentCreated", t + 100 * MS, Some(&o));
    if !next(&mut made) {
        return;
    }
    if declined {
        w.event("b", "bank/PaymentDeclined", t + 300 * MS, Some(&p));
        return;
    }
    let b = w.event("b", "bank/PaymentConfirmed", t + 300 * MS, Some(&p));
    if !next(&mut made) {
        return;
    }
    w.event("i", "inventory/StockReserved", t + 350 * MS, Some(&b));
    if !next(&mut made) {
        return;
    }
    w.event("e", "notification/EmailSent", t + 600 * MS, Some(&b));
}

/// Spring Kafka's `DeadLetterPublishingRecoverer` copy of `original` (read from `topic` at
/// `offset` of partition 0) by `group`: the original's headers, then `kafka_dlt-*` with the
/// partition and offset as big-endian binary numbers.
fn spring_dead_letter(
    original: &RecordHeaders,
    topic: &str,
    offset: i64,
    group: &str,
) -> RecordHeaders {
    let mut h = original.clone();
    h.set("kafka_dlt-original-topic", topic);
    h.set("kafka_dlt-original-partition", &0i32.to_be_bytes()[..]);
    h.set("kafka_dlt-original-offset", &offset.to_be_bytes()[..]);
    h.set("kafka_dlt-original-consumer-group", group);
    h.set(
        "kafka_dlt-exception-fqcn",
        "org.springframework.kafka.listener.ListenerExecutionFailedException",
    );
    h.set(
        "kafka_dlt-exception-cause-fqcn",
        "java.lang.IllegalStateException",
    );
    h.set(
        "kafka_dlt-exception-message",
        "Listener method 'onConfirmed' threw exception; SKU-42 is out of stock",
    );
    h
}

/// Sends `records` in order to one partition and waits for every acknowledgement; returns their
/// offsets.
async fn produce(producer: &FutureProducer, records: &[Record]) -> Vec<i64> {
    let mut pending = Vec::with_capacity(records.len());
    for r in records {
        let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&r.topic)
            .partition(0)
            .payload(&b"{}"[..])
            .headers(r.headers.to_kafka());
        pending.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("queued"),
        );
    }
    let mut offsets = Vec::with_capacity(pending.len());
    for p in pending {
        let delivery = p
            .await
            .expect("delivered")
            .map_err(|(e, _)| e)
            .expect("acknowledged");
        offsets.push(delivery.offset);
    }
    offsets
}

fn seen(handle: &HealthHandle) -> BTreeMap<String, Seen> {
    handle
        .tracker()
        .flows(None, usize::MAX)
        .into_iter()
        .map(|f| {
            let seen = Seen {
                status: f.health.status,
                overdue: f
                    .health
                    .missing
                    .iter()
                    .filter(|m| m.overdue_ms.is_some())
                    .map(|m| format!("{} → {}", m.after, m.expected))
                    .collect(),
                failures: f.health.failures.iter().map(|x| x.reason.clone()).collect(),
            };
            (f.flow, seen)
        })
        .collect()
}

/// The flows and their statuses we expect, once everything is read.
fn settled(handle: &HealthHandle, flows: usize) -> bool {
    let tracker = handle.tracker();
    let counts = tracker.counts();
    tracker.tracked() >= flows
        && counts.get(&FlowStatus::Failed) == Some(&1)
        && counts.get(&FlowStatus::Stalled).copied().unwrap_or(0) >= 8
}

async fn produce_and_collect(_path: std::path::PathBuf) -> Collected {
    let broker = TestBroker::from_env();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (checkout_topic, dlt) = (
        format!("checkout-{suffix}"),
        format!("checkout-dlt-{suffix}"),
    );
    broker
        .create_topics(&[&checkout_topic, &dlt], 1)
        .await
        .unwrap();
    let filter = || TopicFilter {
        include: Some(TopicPattern::new(&format!(".*{suffix}")).unwrap()),
        exclude: None,
        ..Default::default()
    };
    let learned = InProcessCollector::start_with(
        &broker,
        &format!("learned-{suffix}"),
        filter(),
        HealthConfig::default(),
        GroupsConfig {
            poll_every: Duration::from_millis(500),
            ..GroupsConfig::default()
        },
    )
    .await;
    let declared = InProcessCollector::start_with_health(
        &broker,
        &format!("declared-{suffix}"),
        filter(),
        HealthConfig::from_toml(
            r#"
            [[expect]]
            after = "payment/PaymentCreated"
            terminal = true

            [[expect]]
            after = "bank/PaymentDeclined"
            expect = "notification"
            within = "5s"
            "#,
        )
        .unwrap(),
    )
    .await;

    let now = chrono::Utc::now().timestamp_micros();
    let mut records = Vec::new();
    // 300 normal orders over ten minutes, ending ten minutes ago.
    for n in 0..NORMAL {
        let t = now - 20 * 60 * S + n * 2 * S;
        checkout(
            &mut writer(format!("ok-{n}"), &checkout_topic, &mut records),
            t,
            n % 5 == 0,
            usize::MAX,
        );
    }
    // An audit step whose reaction stops after the first 100 occurrences.
    for n in 0..160i64 {
        let t = now - 20 * 60 * S + n * 3 * S + S / 2;
        let mut w = writer(format!("audit-{n}"), &checkout_topic, &mut records);
        let r = w.event("r", "audit/Recorded", t, None);
        if n < 100 {
            w.event("a", "archive/Archived", t + 50 * MS, Some(&r));
        }
    }
    // Flows that stopped four minutes ago: at the order, at the payment, in the fan-out.
    let t = now - 4 * 60 * S;
    for k in 0..3 {
        checkout(
            &mut writer(format!("pay-{k}"), &checkout_topic, &mut records),
            t + k * S,
            false,
            1,
        );
        checkout(
            &mut writer(format!("bank-{k}"), &checkout_topic, &mut records),
            t + k * S,
            false,
            2,
        );
    }
    for k in 0..2 {
        checkout(
            &mut writer(format!("fanout-{k}"), &checkout_topic, &mut records),
            t + k * S,
            false,
            4,
        );
    }
    // One whose confirmation inventory gave up on: everything but the reservation.
    let mut w = writer("dead-0".into(), &checkout_topic, &mut records);
    let o = w.event("o", "order/OrderCreated", t, None);
    let p = w.event("p", "payment/PaymentCreated", t + 100 * MS, Some(&o));
    let b = w.event("b", "bank/PaymentConfirmed", t + 300 * MS, Some(&p));
    w.event("e", "notification/EmailSent", t + 600 * MS, Some(&b));
    records.sort_by_key(|r| r.time_us);
    let confirmed_id = "dead-0/b";
    let at = records
        .iter()
        .position(|r| r.headers.first("ce_id") == Some(confirmed_id.as_bytes()))
        .expect("the confirmation");

    let producer = broker.producer().unwrap();
    let offsets = produce(&producer, &records).await;
    let copy = Record {
        time_us: now,
        topic: dlt.clone(),
        headers: spring_dead_letter(
            &records[at].headers,
            &checkout_topic,
            offsets[at],
            "inventory-group",
        ),
    };
    produce(&producer, std::slice::from_ref(&copy)).await;

    // The bank's group reads every record (and reacts to none: nothing is produced); the payment
    // service's group stops before the first stuck order.
    let (bank, payment) = (format!("bank-{suffix}"), format!("payment-{suffix}"));
    let lagging_at = records
        .iter()
        .position(|r| r.headers.first("ce_id") == Some(b"pay-0/o".as_slice()))
        .expect("pay-0's order");
    let bank_consumer = consumer(&broker, &bank, &checkout_topic);
    read_and_commit(
        &bank_consumer,
        &checkout_topic,
        offsets[records.len() - 1] + 1,
    )
    .await;
    let payment_consumer = consumer(&broker, &payment, &checkout_topic);
    read_and_commit(&payment_consumer, &checkout_topic, offsets[lagging_at]).await;

    let flows = NORMAL as usize + 160 + 9;
    learned
        .wait_for_deliveries(records.len() as i64, Duration::from_secs(60))
        .await;
    declared
        .wait_for_deliveries(records.len() as i64, Duration::from_secs(60))
        .await;
    // Flow health ticks every second and reassesses every flow every 10 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !(settled(learned.health(), flows)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // One more sweep, so every flow was reassessed against everything learned (and the groups
    // were polled since their commits).
    tokio::time::sleep(Duration::from_secs(11)).await;

    let handle = learned.health();
    let limits = Limits::default();
    let groups = learned.groups();
    let key_answer = query::key_answer(
        &learned.store,
        handle,
        groups,
        "order.id",
        "bank-0",
        None,
        &limits,
    )
    .await
    .unwrap();
    let lagging_answer = query::key_answer(
        &learned.store,
        handle,
        groups,
        "order.id",
        "pay-0",
        None,
        &limits,
    )
    .await
    .unwrap();
    let lagging_event = query::event_detail(&learned.store, groups, "pay-0/o", &limits)
        .await
        .unwrap();
    let map = query::topology(
        &learned.store,
        handle,
        groups,
        now - 3600 * S,
        now + 60 * S,
        &limits,
    )
    .await
    .unwrap();
    handle.export(&learned.metrics);
    let out = Collected {
        learned: seen(handle),
        declared: seen(declared.health()),
        summary: serde_json::to_value(query::health::summary(handle)).unwrap(),
        model: serde_json::to_value(query::health::model(handle)).unwrap(),
        key_answer: serde_json::to_value(key_answer).unwrap(),
        lagging_answer: serde_json::to_value(lagging_answer).unwrap(),
        lagging_event: serde_json::to_value(lagging_event).unwrap(),
        groups: (bank, payment),
        map: serde_json::to_value(map).unwrap(),
        metrics: learned.metrics.encode(),
    };
    learned.stop().await;
    declared.stop().await;
    drop((bank_consumer, payment_consumer));
    out
}

fn flow(name: &str) -> &'static Seen {
    collected()
        .learned
        .get(name)
        .unwrap_or_else(|| panic!("flow {name} is not tracked"))
}

#[test]
fn every_normal_flow_is_complete_whichever_outcome_the_bank_gave() {
    let wrong: Vec<(&String, &Seen)> = collected()
        .learned
        .iter()
        .filter(|(k, s)| k.starts_with("ok-") && s.status != FlowStatus::Complete)
        .collect();
    assert!(wrong.is_empty(), "not complete: {wrong:?}");
    let normal = collected()
        .learned
        .keys()
        .filter(|k| k.starts_with("ok-"))
        .count();
    assert_eq!(normal, NORMAL as usize);
}

#[test]
fn a_flow_that_stopped_at_the_order_is_stalled_waiting_for_the_payment() {
    for k in 0..3 {
        let s = flow(&format!("pay-{k}"));
        assert_eq!(s.status, FlowStatus::Stalled);
        assert_eq!(s.overdue, ["order/OrderCreated → payment/PaymentCreated"]);
    }
}

#[test]
fn a_flow_the_bank_never_answered_is_stalled_waiting_for_the_bank_whatever_its_outcome() {
    for k in 0..3 {
        let s = flow(&format!("bank-{k}"));
        assert_eq!(s.status, FlowStatus::Stalled);
        assert_eq!(s.overdue, ["payment/PaymentCreated → bank"]);
    }
}

#[test]
fn a_fan_out_missing_one_branch_is_stalled_waiting_for_that_branch() {
    for k in 0..2 {
        let s = flow(&format!("fanout-{k}"));
        assert_eq!(s.status, FlowStatus::Stalled);
        assert_eq!(
            s.overdue,
            ["bank/PaymentConfirmed → notification/EmailSent"]
        );
    }
}

#[test]
fn a_dead_lettered_event_fails_its_flow_naming_the_group_and_the_exception() {
    let s = flow("dead-0");
    assert_eq!(s.status, FlowStatus::Failed);
    assert_eq!(
        s.failures,
        ["inventory-group: java.lang.IllegalStateException: SKU-42 is out of stock"]
    );
}

#[test]
fn the_summary_groups_stalled_and_failed_flows_by_where_they_stopped() {
    let groups: Vec<(String, String, String, u64)> = collected().summary["stopped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| {
            !g["after"]["service"]
                .as_str()
                .unwrap_or("")
                .starts_with("audit")
        })
        .map(|g| {
            (
                g["status"].as_str().unwrap().to_owned(),
                format!(
                    "{}/{}",
                    g["after"]["service"].as_str().unwrap(),
                    g["after"]["event_type"].as_str().unwrap()
                ),
                g["waiting_for"]["service"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                g["flows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            (
                "stalled".into(),
                "order/OrderCreated".into(),
                "payment".into(),
                3
            ),
            (
                "stalled".into(),
                "payment/PaymentCreated".into(),
                "bank".into(),
                3
            ),
            (
                "stalled".into(),
                "bank/PaymentConfirmed".into(),
                "notification".into(),
                2
            ),
            (
                "failed".into(),
                "bank/PaymentConfirmed".into(),
                "".into(),
                1
            ),
        ]
    );
}

#[test]
fn the_key_answer_carries_each_flows_status_and_what_it_misses() {
    let health = &collected().key_answer["flows"][0]["health"];
    assert_eq!(health["status"], "stalled");
    assert_eq!(health["tracked"], true);
    assert_eq!(health["missing"][0]["after"]["service"], "payment");
    assert_eq!(health["missing"][0]["expected"]["service"], "bank");
    assert!(health["missing"][0]["overdue_ms"].as_f64().unwrap() > 60_000.0);
}

#[test]
fn declared_expectations_override_learned_ones() {
    let declared = &collected().declared;
    for k in 0..3 {
        assert_eq!(
            declared[&format!("bank-{k}")].status,
            FlowStatus::Complete,
            "payment/PaymentCreated is declared terminal"
        );
    }
    assert_eq!(
        declared["ok-0"].overdue,
        ["bank/PaymentDeclined → notification"],
        "a declined payment is declared to get an email within 5 s"
    );
    assert_eq!(declared["ok-1"].status, FlowStatus::Complete);
}

#[test]
fn the_model_forgets_a_reaction_that_stopped_happening() {
    let steps = collected().model["steps"].as_array().unwrap();
    let audit = steps
        .iter()
        .find(|s| s["step"]["service"] == "audit")
        .expect("the audit step");
    assert_eq!(audit["terminal"], true, "{audit}");
    let archive = audit["seen"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reaction"]["service"] == "archive")
        .expect("archive was seen");
    assert!(archive["support"].as_f64().unwrap() < 0.9, "{archive}");
    let bank = steps
        .iter()
        .find(|s| s["step"]["service"] == "payment" && s["step"]["event_type"] == "PaymentCreated")
        .unwrap();
    assert_eq!(
        bank["expectations"][0]["reaction"]["service"], "bank",
        "{bank}"
    );
}

#[test]
fn the_map_counts_stalled_flows_on_the_edge_to_the_service_that_did_not_react() {
    let edges = collected().map["edges"].as_array().unwrap();
    let to_bank = edges
        .iter()
        .find(|e| e["to"] == "service:bank" && e["kind"] == "consume")
        .unwrap();
    assert_eq!(to_bank["stalled"], 3);
    let failed: i64 = edges.iter().map(|e| e["failed"].as_i64().unwrap()).sum();
    assert_eq!(failed, 1);
}

#[test]
fn the_map_counts_a_failed_flow_on_the_edge_to_the_service_that_gave_up_and_not_as_stalled() {
    let edges = collected().map["edges"].as_array().unwrap();
    let to_inventory = edges
        .iter()
        .find(|e| e["to"] == "service:inventory" && e["kind"] == "consume")
        .unwrap();
    assert_eq!(
        (
            to_inventory["failed"].as_i64(),
            to_inventory["stalled"].as_i64()
        ),
        (Some(1), Some(0)),
        "{to_inventory}"
    );
}

#[test]
fn the_metrics_count_flows_per_status_and_where_they_stopped() {
    let m = &collected().metrics;
    assert!(m.contains("choreoscope_flows{status=\"failed\"} 1"), "{m}");
    assert!(
        m.contains("choreoscope_stopped_flows{status=\"stalled\",after=\"payment/PaymentCreated\",waiting_for=\"bank\"} 3"),
        "{m}"
    );
    assert!(m.contains("choreoscope_dead_letters_total 1"), "{m}");
}

#[test]
fn a_stall_whose_group_read_the_event_and_produced_nothing_says_so() {
    let missing = &collected().key_answer["flows"][0]["health"]["missing"][0];
    let d = &missing["diagnosis"];
    assert_eq!(d["kind"], "consumed_no_reaction", "{d}");
    let (bank, _) = &collected().groups;
    assert!(d["text"].as_str().unwrap().contains(bank.as_str()), "{d}");
    assert_eq!(d["groups"][0]["group"], bank.as_str());
    assert_eq!(d["groups"][0]["service"], "bank");
    assert_eq!(d["groups"][0]["state"], "consumed");
}

#[test]
fn a_stall_whose_group_has_not_reached_the_event_is_lagging_with_how_far_behind() {
    let missing = &collected().lagging_answer["flows"][0]["health"]["missing"][0];
    assert_eq!(missing["expected"]["service"], "payment");
    let d = &missing["diagnosis"];
    assert_eq!(d["kind"], "lagging", "{d}");
    let (_, payment) = &collected().groups;
    assert_eq!(d["groups"][0]["group"], payment.as_str());
    assert_eq!(d["groups"][0]["state"], "pending");
    assert_eq!(
        d["groups"][0]["lag_records"], 1,
        "the group's next record is this one: {d}"
    );
}

#[test]
fn the_event_answer_carries_every_groups_position_against_it() {
    let positions = collected().lagging_event["consumer_groups"]
        .as_array()
        .unwrap();
    let (bank, payment) = &collected().groups;
    let state = |group: &str| {
        positions
            .iter()
            .find(|p| p["group"] == group)
            .map(|p| p["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state(bank).as_deref(), Some("consumed"), "{positions:?}");
    assert_eq!(state(payment).as_deref(), Some("pending"), "{positions:?}");
}
