//! The demo's OpenTelemetry-only service: `shipping` knows nothing of Choreoscope or CloudEvents.
//! It reads `InventoryReserved` from `inventory` with a plain librdkafka consumer and the
//! OpenTelemetry SDK, as a Kafka instrumentation does — a CONSUMER span per record, in a new
//! trace *linked* to the producer's context from its `traceparent`, with the messaging
//! attributes; a handler span under it; a PRODUCER span whose context is the only header of the
//! `ShipmentScheduled` it writes to `shipments` — and exports its spans with the OTLP/gRPC
//! exporter (gzip) to the demo collector's receiver. Its reactions are linked only through those
//! spans (docs/lineage.md, "Edges through spans").
//!
//! Trouble: for one order in fifty (o-1031, o-1081, …) the handler raises — no courier for the
//! address — so the flow fails with that exception.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Link, Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::services::{group_of, order_id};

/// The service's name (`service.name`, its consumer group `demo-shipping`).
pub const SERVICE: &str = "shipping";

/// The topic it writes.
pub const TOPIC: &str = "shipments";

/// Orders whose shipment the handler fails to schedule.
pub fn no_courier(order: u64) -> bool {
    order % 50 == 31
}

/// The tracer provider: OTLP/gRPC to `endpoint`, batched on the Tokio runtime.
fn provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .with_batch_config(
            opentelemetry_sdk::trace::BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(500))
                .build(),
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(SERVICE)
                .build(),
        )
        .build())
}

/// Runs `shipping` until `cancel`, sending its spans to the OTLP/gRPC `endpoint`.
pub async fn run(
    brokers: String,
    endpoint: String,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let provider = provider(&endpoint)?;
    let tracer = provider.tracer("choreoscope-demo-shipping");
    let propagator = TraceContextPropagator::new();
    let consumer: StreamConsumer = super::services::client(&brokers)
        .set("group.id", group_of(SERVICE))
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&["inventory"])?;
    let producer: FutureProducer = super::services::client(&brokers)
        .set("linger.ms", "5")
        .create()?;
    loop {
        let message = tokio::select! {
            _ = cancel.cancelled() => break,
            m = consumer.recv() => m?,
        };
        let headers: HashMap<String, String> = message
            .headers()
            .map(|h| {
                h.iter()
                    .filter_map(|h| {
                        Some((h.key.to_owned(), String::from_utf8(h.value?.to_vec()).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let is_reservation =
            headers.get("ce_type").map(String::as_str) == Some("InventoryReserved");
        let body: Value = message
            .payload()
            .and_then(|p| serde_json::from_slice(p).ok())
            .unwrap_or(Value::Null);
        if !is_reservation {
            continue;
        }
        let n = body["n"].as_u64().unwrap_or(0);
        let sender = propagator.extract(&headers);
        let mut links = Vec::new();
        let sender_span = sender.span().span_context().clone();
        if sender_span.is_valid() {
            links.push(Link::with_context(sender_span));
        }
        // The consumer span: a new trace, linked to the producer's context.
        let process = tracer
            .span_builder("inventory process")
            .with_kind(SpanKind::Consumer)
            .with_links(links)
            .with_attributes([
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.destination.name", message.topic().to_owned()),
                KeyValue::new(
                    "messaging.destination.partition.id",
                    message.partition().to_string(),
                ),
                KeyValue::new("messaging.kafka.offset", message.offset()),
                KeyValue::new("messaging.consumer.group.name", group_of(SERVICE)),
                KeyValue::new("messaging.operation.type", "process"),
            ])
            .start_with_context(&tracer, &Context::new());
        let cx = Context::new().with_span(process);
        let mut handler = tracer
            .span_builder("schedule-shipment")
            .with_kind(SpanKind::Internal)
            .start_with_context(&tracer, &cx);
        handler.set_attribute(KeyValue::new("order.id", order_id(n)));
        if no_courier(n) {
            let message = format!("no courier serves the address of {}", order_id(n));
            handler.add_event(
                "exception",
                vec![
                    KeyValue::new("exception.type", "demo.shipping.NoCourierAvailable"),
                    KeyValue::new("exception.message", message.clone()),
                ],
            );
            handler.set_status(Status::error(message));
            handler.end();
        } else {
            let handler_cx = cx.with_span(handler);
            let mut send = tracer
                .span_builder(format!("{TOPIC} send"))
                .with_kind(SpanKind::Producer)
                .with_attributes([
                    KeyValue::new("messaging.system", "kafka"),
                    KeyValue::new("messaging.destination.name", TOPIC),
                    KeyValue::new("messaging.operation.type", "send"),
                ])
                .start_with_context(&tracer, &handler_cx);
            let mut carrier = HashMap::new();
            propagator.inject_context(
                &handler_cx.with_remote_span_context(send.span_context().clone()),
                &mut carrier,
            );
            let mut out = OwnedHeaders::new();
            for (key, value) in &carrier {
                out = out.insert(Header {
                    key: key.as_str(),
                    value: Some(value.as_bytes()),
                });
            }
            let payload =
                json!({ "type": "ShipmentScheduled", "orderId": order_id(n), "n": n }).to_string();
            let key = order_id(n);
            let sent = producer
                .send(
                    FutureRecord::to(TOPIC)
                        .key(&key)
                        .payload(&payload)
                        .headers(out),
                    Timeout::After(Duration::from_secs(5)),
                )
                .await;
            if let Err((e, _)) = &sent {
                send.set_status(Status::error(e.to_string()));
            }
            send.end();
            handler_cx.span().end();
        }
        cx.span().end();
    }
    // Shutting down sends the last spans and waits for the batch task, which runs on this
    // runtime: off its workers, and not for ever.
    let shutdown = tokio::task::spawn_blocking(move || provider.shutdown());
    match tokio::time::timeout(Duration::from_secs(5), shutdown).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "shipping's last spans were not sent"),
        Ok(Err(e)) => tracing::warn!(error = %e, "shipping's tracer shutdown panicked"),
        Err(_) => tracing::warn!("shipping's tracer did not shut down within 5 s"),
    }
    Ok(())
}
