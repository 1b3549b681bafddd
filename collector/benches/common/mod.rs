//! What the collector's benchmarks share: synthetic events of a choreography.
#![allow(dead_code)] // each bench uses a part

pub mod cluster;

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

/// The id of event `j` of flow `flow`.
pub fn event_id(flow: usize, j: usize) -> String {
    format!("{flow:08}-{j:04}-0000-7000-8000-000000000000")
}

/// Event `i` of flow `flow` (key `order.id=o-{flow}`), caused by event `cause` of the same flow.
pub fn record(
    flow: usize,
    i: usize,
    cause: Option<usize>,
    offset: i64,
    base_us: i64,
) -> EventRecord {
    event(Event {
        flow,
        i,
        cause,
        service: SERVICES[i % 5],
        event_type: TYPES[i % 5],
        topic: &format!("{}s", SERVICES[i % 5]),
        offset,
        time_us: base_us + i as i64 * 1000,
        ingested_at_us: base_us,
    })
}

/// What [`event`] builds: event `i` of flow `flow`, a step `service/event_type` on `topic`.
pub struct Event<'a> {
    pub flow: usize,
    pub i: usize,
    /// The event of the same flow that caused it.
    pub cause: Option<usize>,
    pub service: &'a str,
    pub event_type: &'a str,
    pub topic: &'a str,
    pub offset: i64,
    pub time_us: i64,
    pub ingested_at_us: i64,
}

/// An SDK-stamped event of flow `flow` (key `order.id=o-{flow}`, one trace and correlation per
/// flow, correlated by the flow's event 0).
pub fn event(e: Event<'_>) -> EventRecord {
    let Event {
        flow,
        i,
        cause,
        service,
        event_type,
        topic,
        offset,
        time_us,
        ingested_at_us,
    } = e;
    let id = |j: usize| event_id(flow, j);
    let order = format!("o-{flow}");
    let headers = format!(
        r#"[["ce_id","{}"],["ce_type","{event_type}"],["ce_source","{service}"],["traceparent","00-{flow:032x}-{:016x}-01"],["baggage","order.id={order}"]]"#,
        id(i),
        i + 1
    );
    EventRecord {
        event_id: id(i),
        id_source: "ce_id".into(),
        topic: topic.to_owned(),
        partition: (flow % 3) as i32,
        offset,
        record_key: Some(order.clone().into_bytes()),
        broker_time_us: Some(time_us),
        event_time_us: Some(time_us),
        time_us,
        event_type: Some(event_type.into()),
        source: Some(service.into()),
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
        ingested_at_us,
        redactions: None,
        dead_letter: None,
    }
}

/// Runs `run(url, label)` on a fresh SQLite file named `file` (unless `BENCH_SKIP_SQLITE` is
/// set), then on a fresh database of the PostgreSQL server `BENCH_PG` (when set).
pub async fn on_each_store<F, Fut>(file: &str, mut run: F)
where
    F: FnMut(String, &'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    if std::env::var("BENCH_SKIP_SQLITE").is_err() {
        run(
            format!("sqlite://{}", dir.path().join(file).display()),
            "SQLite",
        )
        .await;
    }
    match std::env::var("BENCH_PG") {
        Ok(admin) => {
            use sqlx::Connection;
            let name = format!("cs_bench_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
            run(url, "PostgreSQL").await;
        }
        Err(_) => println!("PostgreSQL: skipped (set BENCH_PG)"),
    }
}
