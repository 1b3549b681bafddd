//! Three services built on the SDK — order → payment → notification, where notification fans out
//! into an email and an SMS — run against the real broker. A plain client then reads the topics
//! and checks, record by record, that the chain is exactly what the wire format promises.

use std::collections::HashSet;
use std::time::Duration;

use choreoscope_e2e::{by_event_id, header, TestBroker};
use choreoscope_sdk::{OutgoingEvent, TraceParent, TracedConsumer, TracedProducer};
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rdkafka::message::{Message, OwnedMessage};
use service::spawn_service;
use tracing_subscriber::layer::SubscriberExt;

/// Spawns a service loop on the current runtime; aborted when the handle drops.
mod service {
    use std::future::Future;

    pub struct Service(tokio::task::JoinHandle<()>);
    impl Drop for Service {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    pub fn spawn_service(fut: impl Future<Output = ()> + Send + 'static) -> Service {
        Service(tokio::spawn(fut))
    }
}

struct Topics {
    orders: String,
    payments: String,
    notifications: String,
}

/// payment: OrderCreated → PaymentCaptured.
async fn payment_service(broker: TestBroker, topics: &Topics) -> anyhow::Result<()> {
    let consumer = TracedConsumer::new(broker.consumer("payment", &[&topics.orders])?, "payment");
    let producer = TracedProducer::new(broker.producer()?, "payment");
    loop {
        let received = consumer.recv().await?;
        let order: serde_json::Value = received.json()?;
        received
            .handle(async {
                producer
                    .send(
                        OutgoingEvent::json(&topics.payments, "PaymentCaptured", &order)?
                            .record_key(received.message().key().unwrap_or_default())
                            .business_key(
                                "payment.id",
                                format!("p-{}", order["id"].as_str().unwrap_or("?")),
                            ),
                    )
                    .await?;
                anyhow::Ok(())
            })
            .await?;
    }
}

/// notification: PaymentCaptured → EmailSent + SmsSent (a fan-out).
async fn notification_service(broker: TestBroker, topics: &Topics) -> anyhow::Result<()> {
    let consumer = TracedConsumer::new(
        broker.consumer("notification", &[&topics.payments])?,
        "notification",
    );
    let producer = TracedProducer::new(broker.producer()?, "notification");
    loop {
        let received = consumer.recv().await?;
        received
            .handle(async {
                for kind in ["EmailSent", "SmsSent"] {
                    producer
                        .send(OutgoingEvent::new(&topics.notifications, kind).payload("{}"))
                        .await?;
                }
                anyhow::Ok(())
            })
            .await?;
    }
}

fn traceparent(m: &OwnedMessage) -> TraceParent {
    header(m, "traceparent")
        .expect("every record has exactly one traceparent")
        .parse()
        .expect("every traceparent is valid")
}

fn span_by_id(spans: &[SpanData], id: opentelemetry::trace::SpanId) -> &SpanData {
    spans
        .iter()
        .find(|s| s.span_context.span_id() == id)
        .unwrap_or_else(|| panic!("no exported span {id}"))
}

#[tokio::test]
async fn causation_correlation_and_trace_hold_through_every_hop_and_the_fan_out(
) -> anyhow::Result<()> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("e2e")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let broker = TestBroker::from_env();
    let topics = Topics {
        orders: TestBroker::unique_topic("orders"),
        payments: TestBroker::unique_topic("payments"),
        notifications: TestBroker::unique_topic("notifications"),
    };
    broker
        .create_topics(
            &[&topics.orders, &topics.payments, &topics.notifications],
            3,
        )
        .await?;
    let topics = std::sync::Arc::new(topics);

    let _payment = spawn_service({
        let (b, t) = (broker.clone(), topics.clone());
        async move { payment_service(b, &t).await.expect("payment service") }
    });
    let _notification = spawn_service({
        let (b, t) = (broker.clone(), topics.clone());
        async move {
            notification_service(b, &t)
                .await
                .expect("notification service")
        }
    });

    // order service: two independent flows.
    let order = TracedProducer::new(broker.producer()?, "order");
    let mut created = Vec::new();
    for id in ["o-1001", "o-1002"] {
        created.push(
            order
                .send(
                    OutgoingEvent::json(
                        &topics.orders,
                        "OrderCreated",
                        &serde_json::json!({"id": id}),
                    )?
                    .record_key(id)
                    .subject(format!("order/{id}"))
                    .business_key("order.id", id),
                )
                .await?,
        );
    }

    let timeout = Duration::from_secs(60);
    let orders = broker.read_all(&[&topics.orders], 2, timeout).await?;
    let payments = broker.read_all(&[&topics.payments], 2, timeout).await?;
    let notifications = broker
        .read_all(&[&topics.notifications], 4, timeout)
        .await?;
    let all: Vec<OwnedMessage> = orders
        .iter()
        .chain(&payments)
        .chain(&notifications)
        .cloned()
        .collect();
    let events = by_event_id(&all);
    assert_eq!(events.len(), 8, "every record has its own ce_id");

    for sent in &created {
        let root = events[&sent.event_id];
        assert_eq!(
            header(root, "ce_correlationid"),
            Some(sent.event_id.as_str())
        );
        assert_eq!(
            header(root, "ce_causationid"),
            None,
            "a flow's first event has no cause"
        );
        assert_eq!(header(root, "ce_type"), Some("OrderCreated"));
        let order_id = header(root, "ce_subject")
            .unwrap()
            .trim_start_matches("order/");

        let flow: Vec<&OwnedMessage> = all
            .iter()
            .filter(|m| header(m, "ce_correlationid") == Some(sent.event_id.as_str()))
            .collect();
        assert_eq!(flow.len(), 4, "order, payment, email, sms");
        for m in &flow {
            assert_eq!(
                traceparent(m).trace_id,
                sent.trace_parent.trace_id,
                "one trace per flow"
            );
            assert_eq!(header(m, "ce_specversion"), Some("1.0"));
            let baggage = header(m, "baggage").unwrap();
            assert!(
                baggage.contains(&format!("order.id={order_id}")),
                "{baggage}"
            );
        }

        let payment = flow
            .iter()
            .find(|m| header(m, "ce_type") == Some("PaymentCaptured"))
            .unwrap();
        assert_eq!(
            header(payment, "ce_causationid"),
            Some(sent.event_id.as_str())
        );
        assert_eq!(header(payment, "ce_source"), Some("payment"));
        assert_eq!(payment.key(), Some(order_id.as_bytes()));
        let payment_id = header(payment, "ce_id").unwrap();

        let reactions: Vec<_> = flow
            .iter()
            .filter(|m| header(m, "ce_causationid") == Some(payment_id))
            .map(|m| header(m, "ce_type").unwrap())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            reactions.len(),
            2,
            "fan-out: email and sms both name the payment as cause"
        );
        for m in flow
            .iter()
            .filter(|m| header(m, "ce_causationid") == Some(payment_id))
        {
            assert_eq!(header(m, "ce_source"), Some("notification"));
            assert!(
                header(m, "baggage").unwrap().contains("payment.id="),
                "keys accumulate"
            );
        }

        // The spans: payment's send span ← payment's process span ← order's send span.
        let spans = exporter.get_finished_spans()?;
        let send_payment = span_by_id(&spans, traceparent(payment).parent_id);
        assert_eq!(send_payment.name, format!("send {}", topics.payments));
        assert_eq!(send_payment.span_kind, SpanKind::Producer);
        let process_order = span_by_id(&spans, send_payment.parent_span_id);
        assert_eq!(process_order.name, format!("process {}", topics.orders));
        assert_eq!(process_order.span_kind, SpanKind::Consumer);
        assert_eq!(process_order.parent_span_id, sent.trace_parent.parent_id);
        let attribute = |key: &str| {
            process_order
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(attribute("messaging.system").as_deref(), Some("kafka"));
        assert_eq!(
            attribute("messaging.consumer.group.name").as_deref(),
            Some("payment")
        );
        assert_eq!(
            attribute("messaging.message.id").as_deref(),
            Some(sent.event_id.as_str())
        );
        assert_eq!(
            attribute("messaging.kafka.message.key").as_deref(),
            Some(order_id)
        );
        assert!(attribute("messaging.kafka.offset").is_some());
    }

    let traces: HashSet<_> = created.iter().map(|s| s.trace_parent.trace_id).collect();
    assert_eq!(traces.len(), 2, "independent flows have independent traces");
    Ok(())
}
