//! What the collector's benchmarks share: synthetic events of a choreography.
#![allow(dead_code)] // each bench uses a part

use choreoscope::record::EventRecord;

pub const TYPES: [&str; 5] = [
    "OrderCreated",
    "PaymentCreated",
    "PaymentConfirmed",
    "InventoryReserved",
    "EmailSent",
];
pub const SERVICES: [&str; 5] = ["order", "payment", "bank", "inventory", "notification"];

/// A number from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Event `i` of flow `flow` (key `order.id=o-{flow}`), caused by event `cause` of the same flow.
pub fn record(
    flow: usize,
    i: usize,
    cause: Option<usize>,
    offset: i64,
    base_us: i64,
) -> EventRecord {
    let id = |j: usize| format!("{flow:08}-{j:04}-0000-7000-8000-000000000000");
    let order = format!("o-{flow}");
    let headers = format!(
        r#"[["ce_id","{}"],["ce_type","{}"],["ce_source","{}"],["traceparent","00-{flow:032x}-{:016x}-01"],["baggage","order.id={order}"]]"#,
        id(i),
        TYPES[i % 5],
        SERVICES[i % 5],
        i + 1
    );
    EventRecord {
        event_id: id(i),
        id_source: "ce_id".into(),
        topic: format!("{}s", SERVICES[i % 5]),
        partition: (flow % 3) as i32,
        offset,
        record_key: Some(order.clone().into_bytes()),
        broker_time_us: Some(base_us + i as i64 * 1000),
        event_time_us: Some(base_us + i as i64 * 1000),
        time_us: base_us + i as i64 * 1000,
        event_type: Some(TYPES[i % 5].into()),
        source: Some(SERVICES[i % 5].into()),
        subject: Some(format!("order/{order}")),
        content_type: Some("application/json".into()),
        trace_id: Some(format!("{flow:032x}")),
        span_id: Some(format!("{:016x}", i + 1)),
        causation_id: cause.map(id),
        correlation_id: Some(id(0)),
        headers_json: headers,
        payload: Some(format!(r#"{{"orderId":"{order}","amount":{}}}"#, 1000 + i).into_bytes()),
        payload_size: 40,
        payload_truncated: false,
        problems: Vec::new(),
        keys: vec![("order.id".into(), order)],
        ingested_at_us: base_us,
        dead_letter: None,
    }
}
