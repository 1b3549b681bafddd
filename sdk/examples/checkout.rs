//! A three-service checkout choreography built on the SDK.
//!
//! `order` publishes `OrderCreated`; `payment` reacts with `PaymentCaptured`; `notification`
//! reacts to that with `EmailSent` and `SmsSent`. An audit consumer prints every record's wire
//! format so you can follow the chain: each reaction names its cause, every event of a flow shares
//! the correlation id, the trace id and the `order.id` key.
//!
//! ```text
//! cargo run -p choreoscope-sdk --example checkout                 # embedded mock broker
//! cargo run -p choreoscope-sdk --example checkout -- --brokers 127.0.0.1:9092 --orders 5
//! ```

use std::time::Duration;

use anyhow::Context as _;
use choreoscope_sdk::{AliasTable, EventContext, OutgoingEvent, TracedConsumer, TracedProducer};
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureProducer;
use rdkafka::Message;

/// Runs the checkout choreography and prints the chain of every order.
#[derive(Parser, Debug)]
struct Args {
    /// Bootstrap servers of a real cluster (topics `orders`, `payments`, `notifications` must
    /// exist); without it an in-process mock broker is started.
    #[arg(long, env = "CHOREOSCOPE_BROKERS")]
    brokers: Option<String>,
    /// How many orders to place.
    #[arg(long, default_value_t = 3)]
    orders: usize,
}

const TOPICS: [&str; 3] = ["orders", "payments", "notifications"];

fn config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c
}

fn consumer(brokers: &str, group: &str, topics: &[&str]) -> anyhow::Result<StreamConsumer> {
    let c: StreamConsumer = config(brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()?;
    c.subscribe(topics)?;
    Ok(c)
}

async fn payment(brokers: String) -> anyhow::Result<()> {
    let consumer = TracedConsumer::new(consumer(&brokers, "payment", &["orders"])?, "payment");
    let producer = TracedProducer::new(config(&brokers).create()?, "payment");
    loop {
        let received = consumer.recv().await?;
        let order: serde_json::Value = received.json()?;
        received
            .handle(producer.send(
                OutgoingEvent::json("payments", "PaymentCaptured", &order)?.business_key(
                    "payment.id",
                    format!("pay-{}", order["id"].as_str().unwrap_or("?")),
                ),
            ))
            .await?;
    }
}

async fn notification(brokers: String) -> anyhow::Result<()> {
    let consumer = TracedConsumer::new(
        consumer(&brokers, "notification", &["payments"])?,
        "notification",
    );
    let producer = TracedProducer::new(config(&brokers).create()?, "notification");
    loop {
        let received = consumer.recv().await?;
        received
            .handle(async {
                for kind in ["EmailSent", "SmsSent"] {
                    producer
                        .send(OutgoingEvent::new("notifications", kind))
                        .await?;
                }
                anyhow::Ok(())
            })
            .await?;
    }
}

fn short(id: Option<&str>) -> String {
    id.map(|s| {
        s.chars()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    })
    .unwrap_or_else(|| "-".into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let mock;
    let brokers = match &args.brokers {
        Some(b) => b.clone(),
        None => {
            mock = MockCluster::new(1).context("starting the mock broker")?;
            for topic in TOPICS {
                mock.create_topic(topic, 3, 1)?;
            }
            println!("embedded mock broker on {}", mock.bootstrap_servers());
            mock.bootstrap_servers()
        }
    };

    let services = [
        tokio::spawn(payment(brokers.clone())),
        tokio::spawn(notification(brokers.clone())),
    ];

    let order: FutureProducer = config(&brokers).create()?;
    let order = TracedProducer::new(order, "order");
    for n in 0..args.orders {
        let id = format!("o-{}", 1001 + n);
        order
            .send(
                OutgoingEvent::json("orders", "OrderCreated", &serde_json::json!({ "id": id }))?
                    .record_key(id.as_str())
                    .subject(format!("order/{id}"))
                    .business_key("order.id", id.as_str()),
            )
            .await?;
    }

    let audit = consumer(&brokers, "audit", &TOPICS)?;
    println!(
        "{:<14} {:<13} {:<16} {:>9} {:>9} {:>9} {:>9}  keys",
        "topic", "source", "type", "id", "cause", "flow", "trace"
    );
    let expected = args.orders * 4;
    for _ in 0..expected {
        let m = tokio::time::timeout(Duration::from_secs(30), audit.recv())
            .await
            .context("waiting for the choreography")??;
        let cx = EventContext::from_message(&m, &AliasTable::default());
        println!(
            "{:<14} {:<13} {:<16} {:>9} {:>9} {:>9} {:>9}  {:?}",
            m.topic(),
            cx.cloud_event.source.as_deref().unwrap_or("-"),
            cx.cloud_event.event_type.as_deref().unwrap_or("-"),
            short(cx.id()),
            short(cx.causation_id.as_ref().map(|s| s.value.as_str())),
            short(cx.correlation_id.as_ref().map(|s| s.value.as_str())),
            short(cx.trace_parent.map(|t| t.trace_id.to_string()).as_deref()),
            cx.keys,
        );
    }
    println!("{expected} events; every reaction names its cause, every flow shares one correlation and trace id.");
    // Stop the services before the embedded broker goes away.
    drop(audit);
    for service in services {
        service.abort();
        let _ = service.await;
    }
    Ok(())
}
