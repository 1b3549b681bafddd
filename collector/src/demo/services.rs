//! The sample services of the demo, each a few lines on the SDK, and the trouble they cause.
//!
//! ```text
//! shop ──CartCheckedOut──▶ carts ──▶ order ──OrderCreated──▶ orders ──▶ payment ──PaymentCreated──▶ payments
//! payments ──▶ bank ──PaymentConfirmed──▶ bank ──▶ inventory ──InventoryReserved──▶ inventory
//!                                         bank ──▶ ledger ──LedgerEntryRecorded──▶ ledger
//!                                         bank ──▶ notification ──EmailSent──▶ notifications
//! inventory ──▶ support ──RefundRequested──▶ refunds ──▶ payment ──RefundIssued──▶ payments
//! members ──MemberRegistered──▶ members ──▶ loyalty ──BalanceChanged──▶ balances
//! payments(RefundIssued) ──▶ loyalty ──BalanceChanged──▶ balances
//! inventory ──▶ shipping ──ShipmentScheduled──▶ shipments   (OpenTelemetry only: [`super::shipping`])
//! ```
//!
//! Trouble, deterministic by order number so the demo can name an example of each:
//! - one order in fifty (o-1007, o-1057, …): the bank never confirms the payment (the flow stops
//!   at `PaymentCreated`, and flow health calls it stalled, waiting for the bank);
//! - one order in fifty (o-1023, o-1073, …): inventory fails on the bank's confirmation and
//!   dead-letters it to `bank-dlt` with Spring Kafka's headers (the flow is failed, and says why);
//! - the ledger stops reading confirmed payments for 40 s every two minutes, from one minute in:
//!   its consumer group falls behind, and the payments confirmed in those 40 s stall waiting for
//!   the ledger, diagnosed as lagging, until it reads again;
//! - every 9th order: inventory processes the confirmation twice (two `InventoryReserved`);
//! - every 11th order: notification publishes its `EmailSent` twice with the same id;
//! - every 5th order: notification is slow (3 s); the bank always takes 0.2–1.2 s;
//! - every 4th order: the customer asks for a refund;
//! - every 5 s a legacy ERP producer, not on the SDK, writes a `StockAdjusted` record with a
//!   malformed `traceparent`, a non-UTF-8 header and a non-JSON payload whose free-text note
//!   is HTML (`<img src=x onerror=…>`: viewers must show it as text).

use std::time::Duration;

use choreoscope_sdk::{OutgoingEvent, ReceivedOwned, TracedConsumer, TracedProducer};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::{json, Value};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Every topic the demo uses.
pub const TOPICS: [&str; 12] = [
    "carts",
    "orders",
    "payments",
    "bank",
    "inventory",
    "notifications",
    "refunds",
    "members",
    "balances",
    "bank-dlt",
    "ledger",
    "shipments",
];

/// Every service that consumes, each in consumer group `demo-<service>` ([`group_of`]).
pub const CONSUMERS: [&str; 9] = [
    "order",
    "payment",
    "bank",
    "ledger",
    "inventory",
    "notification",
    "support",
    "loyalty",
    "shipping",
];

/// The consumer group of a demo service.
pub fn group_of(service: &str) -> String {
    format!("demo-{service}")
}

/// The ledger stops reading confirmed payments for 40 s every two minutes, the first time one
/// minute in (once flow health has learned that it reacts to every confirmation).
const LEDGER_PAUSES: Pauses = Pauses {
    start: Duration::from_secs(60),
    length: Duration::from_secs(40),
    every: Duration::from_secs(120),
};

/// Orders whose payment the bank never confirms.
pub fn never_confirmed(order: u64) -> bool {
    // One in fifty: rare enough that flow health learns the bank reacts to every payment
    // (support 0.98, above its 0.9 threshold), so these orders show as stalled.
    order % 50 == 7
}
/// Orders whose payment confirmation inventory fails on and dead-letters (to `bank-dlt`,
/// the way Spring Kafka's `DeadLetterPublishingRecoverer` does).
pub fn dead_lettered(order: u64) -> bool {
    order % 50 == 23
}
/// Orders whose confirmation inventory processes twice.
pub fn processed_twice(order: u64) -> bool {
    order % 9 == 0
}
/// Orders whose email is published twice under one id.
pub fn published_twice(order: u64) -> bool {
    order % 11 == 0
}
/// Orders the notification service is slow on.
pub fn slow_notification(order: u64) -> bool {
    order % 5 == 0
}
/// Orders the customer asks a refund for.
pub fn refunded(order: u64) -> bool {
    order % 4 == 0
}

/// The order id of order number `n`.
pub fn order_id(n: u64) -> String {
    format!("o-{}", 1000 + n)
}
/// The member who places order number `n`.
pub fn member_id(n: u64) -> String {
    format!("m-{}", n % 10)
}

fn number(value: &Value) -> u64 {
    value["n"].as_u64().unwrap_or(0)
}

pub(super) fn client(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c
}

fn producer(brokers: &str, service: &str) -> anyhow::Result<TracedProducer> {
    let p: FutureProducer = client(brokers).set("linger.ms", "5").create()?;
    Ok(TracedProducer::new(p, service))
}

fn consumer(brokers: &str, service: &str, topics: &[&str]) -> anyhow::Result<TracedConsumer> {
    let c: StreamConsumer = client(brokers)
        .set("group.id", group_of(service))
        .set("auto.offset.reset", "earliest")
        .create()?;
    c.subscribe(topics)?;
    Ok(TracedConsumer::new(c, service))
}

/// Runs `react` for every record of `topics` whose type is one of `types`, each in its own task
/// (so a slow reaction does not hold the others back), until `cancel` fires.
async fn service<F, Fut>(
    brokers: String,
    name: &'static str,
    topics: &'static [&'static str],
    types: &'static [&'static str],
    cancel: CancellationToken,
    react: F,
) -> anyhow::Result<()>
where
    F: Fn(TracedProducer, String, Value, OwnedMessage) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    paused_service(brokers, name, topics, types, None, cancel, react).await
}

/// When a service stops reading: from `start` on, for `length`, every `every`.
#[derive(Debug, Clone, Copy)]
struct Pauses {
    start: Duration,
    length: Duration,
    every: Duration,
}

impl Pauses {
    /// How long the pause running `elapsed` into the service's life still lasts, if one does.
    fn left(&self, elapsed: Duration) -> Option<Duration> {
        let into = elapsed.checked_sub(self.start)?;
        let phase = Duration::from_nanos((into.as_nanos() % self.every.as_nanos().max(1)) as u64);
        self.length
            .checked_sub(phase)
            .filter(|left| !left.is_zero())
    }
}

/// [`service`], which stops reading during `pauses` (its consumer group falls behind).
async fn paused_service<F, Fut>(
    brokers: String,
    name: &'static str,
    topics: &'static [&'static str],
    types: &'static [&'static str],
    pauses: Option<Pauses>,
    cancel: CancellationToken,
    react: F,
) -> anyhow::Result<()>
where
    F: Fn(TracedProducer, String, Value, OwnedMessage) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let consumer = consumer(&brokers, name, topics)?;
    let producer = producer(&brokers, name)?;
    let started = tokio::time::Instant::now();
    loop {
        if let Some(left) = pauses.and_then(|p| p.left(started.elapsed())) {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(left) => {}
            }
        }
        let received = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = consumer.recv() => r?,
        };
        let event_type = received
            .context()
            .cloud_event
            .event_type
            .clone()
            .unwrap_or_default();
        if !types.contains(&event_type.as_str()) {
            continue;
        }
        let body: Value = received.json().unwrap_or(Value::Null);
        let owned: ReceivedOwned = received.detach();
        let (react, producer) = (react.clone(), producer.clone());
        tokio::spawn(async move {
            let record = owned.message.clone();
            if let Err(e) = owned
                .handle(react(producer, event_type, body, record))
                .await
            {
                tracing::warn!(service = name, error = %e, "demo service failed to react");
            }
        });
    }
}

/// Starts every sample service and the order and member generators.
pub fn spawn_all(
    brokers: &str,
    orders_per_second: f64,
    cancel: &CancellationToken,
) -> JoinSet<anyhow::Result<()>> {
    let mut set = JoinSet::new();
    let b = || brokers.to_owned();
    let c = || cancel.clone();

    set.spawn(service(
        b(),
        "order",
        &["carts"],
        &["CartCheckedOut"],
        c(),
        |p, _, cart, _| async move {
            p.send(OutgoingEvent::json(
                "orders",
                "OrderCreated",
                &json!({ "n": cart["n"], "orderId": cart["orderId"], "total": cart["total"] }),
            )?)
            .await?;
            Ok(())
        },
    ));

    set.spawn(service(
        b(),
        "payment",
        &["orders", "refunds"],
        &["OrderCreated", "RefundRequested"],
        c(),
        |p, t, body, _| async move {
            let n = number(&body);
            if t == "OrderCreated" {
                p.send(
                    OutgoingEvent::json(
                        "payments",
                        "PaymentCreated",
                        &json!({ "n": n, "amount": body["total"] }),
                    )?
                    .business_key("payment.id", format!("pay-{n}")),
                )
                .await?;
            } else {
                p.send(OutgoingEvent::json(
                    "payments",
                    "RefundIssued",
                    &json!({ "n": n, "amount": body["amount"] }),
                )?)
                .await?;
            }
            Ok(())
        },
    ));

    set.spawn(service(
        b(),
        "bank",
        &["payments"],
        &["PaymentCreated"],
        c(),
        |p, _, body, _| async move {
            let n = number(&body);
            if never_confirmed(n) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200 + (n * 137) % 1000)).await;
            p.send(OutgoingEvent::json(
                "bank",
                "PaymentConfirmed",
                &json!({ "n": n, "authorization": format!("AUTH{n:06}") }),
            )?)
            .await?;
            Ok(())
        },
    ));

    set.spawn(paused_service(
        b(),
        "ledger",
        &["bank"],
        &["PaymentConfirmed"],
        Some(LEDGER_PAUSES),
        c(),
        |p, _, body, _| async move {
            p.send(OutgoingEvent::json(
                "ledger",
                "LedgerEntryRecorded",
                &json!({ "n": number(&body), "amount": body["amount"] }),
            )?)
            .await?;
            Ok(())
        },
    ));

    set.spawn(service(
        b(),
        "inventory",
        &["bank"],
        &["PaymentConfirmed"],
        c(),
        |p, _, body, record| async move {
            let n = number(&body);
            if dead_lettered(n) {
                // The handler throws; the container's recoverer dead-letters the record.
                return dead_letter(
                    p.inner(),
                    &record,
                    "demo-inventory",
                    "SKU-42 is out of stock in every warehouse",
                )
                .await;
            }
            let times = if processed_twice(n) { 2 } else { 1 };
            for _ in 0..times {
                p.send(OutgoingEvent::json(
                    "inventory",
                    "InventoryReserved",
                    &json!({ "n": n, "sku": "SKU-42", "qty": 1 }),
                )?)
                .await?;
            }
            Ok(())
        },
    ));

    set.spawn(service(
        b(),
        "notification",
        &["bank"],
        &["PaymentConfirmed"],
        c(),
        |p, _, body, _| async move {
            let n = number(&body);
            if slow_notification(n) {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            let email = OutgoingEvent::json(
                "notifications",
                "EmailSent",
                &json!({ "n": n, "template": "order-confirmed" }),
            )?;
            let email = email.id(uuid::Uuid::now_v7().to_string());
            if published_twice(n) {
                p.send(email.clone()).await?;
            }
            p.send(email).await?;
            Ok(())
        },
    ));

    set.spawn(service(
        b(),
        "support",
        &["inventory"],
        &["InventoryReserved"],
        c(),
        |p, _, body, _| async move {
            let n = number(&body);
            // The first reservation only (a double-processed one must not double the refund).
            if refunded(n) && !processed_twice(n) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                p.send(OutgoingEvent::json(
                    "refunds",
                    "RefundRequested",
                    &json!({ "n": n, "amount": 1999, "reason": "damaged" }),
                )?)
                .await?;
            }
            Ok(())
        },
    ));

    set.spawn(service(
        b(),
        "loyalty",
        &["members", "payments"],
        &["MemberRegistered", "RefundIssued"],
        c(),
        |p, t, body, _| async move {
            let delta = if t == "MemberRegistered" { 500 } else { -100 };
            p.send(OutgoingEvent::json(
                "balances",
                "BalanceChanged",
                &json!({ "n": body["n"], "delta": delta }),
            )?)
            .await?;
            Ok(())
        },
    ));

    set.spawn(shop(b(), orders_per_second, c()));
    set.spawn(legacy_erp(b(), c()));
    set
}

/// Publishes `record` to `<topic>-dlt` as Spring Kafka's `DeadLetterPublishingRecoverer` does
/// when `group`'s listener threw: the record's key, value and headers, then the `kafka_dlt-*`
/// headers (partition and offset as big-endian binary numbers).
async fn dead_letter(
    producer: &FutureProducer,
    record: &OwnedMessage,
    group: &str,
    message: &str,
) -> anyhow::Result<()> {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = record.headers() {
        for h in original.iter() {
            headers = headers.insert(h);
        }
    }
    let timestamp = record.timestamp().to_millis().unwrap_or_default();
    let wrapper = "org.springframework.kafka.listener.ListenerExecutionFailedException";
    let text = format!("Listener method 'onConfirmed' threw exception; {message}");
    let dlt = [
        (
            "kafka_dlt-original-topic",
            record.topic().as_bytes().to_vec(),
        ),
        (
            "kafka_dlt-original-partition",
            record.partition().to_be_bytes().to_vec(),
        ),
        (
            "kafka_dlt-original-offset",
            record.offset().to_be_bytes().to_vec(),
        ),
        (
            "kafka_dlt-original-timestamp",
            timestamp.to_be_bytes().to_vec(),
        ),
        (
            "kafka_dlt-original-consumer-group",
            group.as_bytes().to_vec(),
        ),
        ("kafka_dlt-exception-fqcn", wrapper.as_bytes().to_vec()),
        (
            "kafka_dlt-exception-cause-fqcn",
            b"java.lang.IllegalStateException".to_vec(),
        ),
        ("kafka_dlt-exception-message", text.into_bytes()),
    ];
    for (key, value) in &dlt {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_slice()),
        });
    }
    let topic = format!("{}-dlt", record.topic());
    let mut out = FutureRecord::<[u8], [u8]>::to(&topic).headers(headers);
    if let Some(key) = record.key() {
        out = out.key(key);
    }
    if let Some(payload) = record.payload() {
        out = out.payload(payload);
    }
    producer
        .send(out, Timeout::After(Duration::from_secs(5)))
        .await
        .map_err(|(e, _)| e)?;
    Ok(())
}

/// Registers the ten members, then checks out carts at `rate` per second.
async fn shop(brokers: String, rate: f64, cancel: CancellationToken) -> anyhow::Result<()> {
    let members = producer(&brokers, "members")?;
    for m in 0..10u64 {
        members
            .send(
                OutgoingEvent::json(
                    "members",
                    "MemberRegistered",
                    &json!({ "n": m, "memberId": member_id(m) }),
                )?
                .business_key("member.id", member_id(m)),
            )
            .await?;
    }
    let shop = producer(&brokers, "shop")?;
    let period = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let mut tick = tokio::time::interval(period);
    for n in 1.. {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let order = order_id(n);
        shop.send(
            OutgoingEvent::json(
                "carts",
                "CartCheckedOut",
                &json!({ "n": n, "orderId": order, "total": 1999 + n }),
            )?
            .record_key(order.as_str())
            .subject(format!("order/{order}"))
            .business_key("order.id", order.as_str())
            .business_key("member.id", member_id(n))
            .business_key("cart.id", format!("c-{n}")),
        )
        .await?;
    }
    Ok(())
}

/// A producer that predates the SDK: hand-made headers, one of them broken.
async fn legacy_erp(brokers: String, cancel: CancellationToken) -> anyhow::Result<()> {
    let producer: FutureProducer = client(&brokers).create()?;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    for n in 1u64.. {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "ce_type",
                value: Some("StockAdjusted"),
            })
            .insert(Header {
                key: "ce_source",
                value: Some("legacy-erp"),
            })
            .insert(Header {
                key: "traceparent",
                value: Some("00-not-a-trace-id-01"),
            })
            .insert(Header {
                key: "x-erp-batch",
                value: Some(&[0xff, 0xfe, 0x00, 0x41][..]),
            });
        // The free-text note is what a clerk typed: HTML that a careless viewer would run.
        let payload =
            format!("ADJ;SKU-42;{n};-1;note=<img src=x onerror=\"document.title='pwned'\">");
        producer
            .send(
                FutureRecord::to("inventory")
                    .key("SKU-42")
                    .payload(&payload)
                    .headers(headers),
                Timeout::After(Duration::from_secs(5)),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_pauses_from_its_start_for_its_length_every_period() {
        let s = Duration::from_secs;
        let left = |t| LEDGER_PAUSES.left(s(t));
        assert_eq!(left(59), None, "not before the first pause");
        assert_eq!(left(60), Some(s(40)));
        assert_eq!(left(99), Some(s(1)));
        assert_eq!(left(100), None, "reading again after 40 s");
        assert_eq!(left(179), None);
        assert_eq!(left(190), Some(s(30)), "again two minutes later");
    }
}
