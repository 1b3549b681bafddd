//! The OTLP trace receiver and lineage through spans, end to end in one process: spans sent by
//! a real OTLP client (tonic, over a socket) or over OTLP/HTTP, records written as the ingest
//! loop writes them, answers read through the query layer. Services here carry only a
//! `traceparent` (no CloudEvents headers): their lineage comes from the spans alone.
//!
//! The Python services of `otel_e2e.rs` do the same with real OpenTelemetry SDKs on the broker.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use choreoscope::groups::GroupsHandle;
use choreoscope::health::HealthHandle;
use choreoscope::metrics::Metrics;
use choreoscope::otlp::{self, OtlpConfig, Receiver, SieveConfig};
use choreoscope::query::{self, Limits};
use choreoscope::record::{EventRecord, Interpreter, RawRecord};
use choreoscope::rules::Rules;
use choreoscope::store::Store;
use choreoscope_sdk::RecordHeaders;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span::{Event, Link, SpanKind},
    status::StatusCode as SpanStatus,
    ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const NOW_NS: u64 = 1_765_000_000_000_000_000;

/// A store in a temporary directory, with key rules for `orderId`.
struct World {
    _dir: tempfile::TempDir,
    store: Store,
    interpreter: Interpreter,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&common::fixture::sqlite_url(&dir.path().join("s.db")))
            .await
            .unwrap();
        let table: toml::Table =
            toml::from_str(r#"key_rules = [".* : /orderId -> order.id"]"#).unwrap();
        let interpreter = Interpreter::new(Rules::from_table(table).unwrap(), 4096);
        Self {
            _dir: dir,
            store,
            interpreter,
        }
    }

    /// A record of `topic` at `offset` for `order`, produced in span `(trace, span)`: only a
    /// `traceparent` header, as OpenTelemetry's Kafka instrumentations write.
    fn record(&self, topic: &str, offset: i64, order: &str, trace: u8, span: u8) -> EventRecord {
        let mut headers = RecordHeaders::new();
        headers.set(
            "traceparent",
            format!("00-{}-{}-01", hex(&trace_id(trace)), hex(&span_id(span))),
        );
        let payload = format!(r#"{{"orderId":"{order}"}}"#);
        self.interpreter.interpret(
            RawRecord {
                topic,
                partition: 0,
                offset,
                key: None,
                payload: Some(payload.as_bytes()),
                headers: &headers,
                timestamp_ms: Some(chrono::Utc::now().timestamp_millis() - 60_000 + offset),
            },
            1,
        )
    }

    async fn write(&self, records: &[EventRecord]) {
        self.store.write_batch(records).await.unwrap();
    }

    /// A receiver storing into this world's store (its writer stops with `stop`).
    fn receiver(&self, config: OtlpConfig, stop: &CancellationToken) -> (Receiver, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let (sink, _) = otlp::sink::Sink::start(
            self.store.clone(),
            metrics.clone(),
            config.max_queued_spans,
            stop.clone(),
        );
        (Receiver::new(sink, config.sieve, metrics.clone()), metrics)
    }

    async fn send(&self, spans: Vec<Span>) {
        let stop = CancellationToken::new();
        let (receiver, _) = self.receiver(OtlpConfig::default(), &stop);
        receiver.export(&request(spans), "test").await.unwrap();
        stop.cancel();
    }

    async fn key(&self, order: &str) -> Json {
        let answer = query::answers::key_answer(
            &self.store,
            &HealthHandle::default(),
            &GroupsHandle::default(),
            "order.id",
            order,
            None,
            &Limits::default(),
        )
        .await
        .unwrap();
        serde_json::to_value(answer).unwrap()
    }

    async fn event(&self, id: &str) -> Json {
        let answer = query::answers::event_detail(
            &self.store,
            &GroupsHandle::default(),
            id,
            &Limits::default(),
        )
        .await
        .unwrap();
        serde_json::to_value(answer).unwrap()
    }
}

fn trace_id(n: u8) -> Vec<u8> {
    let mut id = vec![0xab; 16];
    id[15] = n;
    id
}

fn span_id(n: u8) -> Vec<u8> {
    let mut id = vec![0xcd; 8];
    id[7] = n;
    id
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn span(trace: u8, id: u8, parent: Option<u8>, kind: SpanKind, name: &str) -> Span {
    Span {
        trace_id: trace_id(trace),
        span_id: span_id(id),
        parent_span_id: parent.map(span_id).unwrap_or_default(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: NOW_NS + u64::from(id) * 1_000_000,
        end_time_unix_nano: NOW_NS + u64::from(id) * 1_000_000 + 500_000,
        attributes: vec![attr("messaging.system", Value::StringValue("kafka".into()))],
        ..Default::default()
    }
}

fn link(mut s: Span, trace: u8, id: u8) -> Span {
    s.links.push(Link {
        trace_id: trace_id(trace),
        span_id: span_id(id),
        ..Default::default()
    });
    s
}

fn failing(mut s: Span, kind: &str, message: &str) -> Span {
    s.status = Some(Status {
        code: SpanStatus::Error as i32,
        message: format!("{kind}: {message}"),
    });
    s.events.push(Event {
        name: "exception".into(),
        attributes: vec![
            attr("exception.type", Value::StringValue(kind.into())),
            attr("exception.message", Value::StringValue(message.into())),
        ],
        ..Default::default()
    });
    s
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    let mut by_service: Vec<(String, Vec<Span>)> = Vec::new();
    for s in spans {
        let service = s.name.split(' ').next().unwrap_or("svc").to_owned();
        match by_service.iter_mut().find(|(n, _)| *n == service) {
            Some((_, list)) => list.push(s),
            None => by_service.push((service, vec![s])),
        }
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attr("service.name", Value::StringValue(service))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// `(from, to, rule)` of every edge of a graph, sorted.
fn edges(graph: &Json) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
                e["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn edge(from: &str, to: &str, rule: &str) -> (String, String, String) {
    (from.into(), to.into(), rule.into())
}

/// One order through a linked choreography: `shop` produces the order (trace 1, producer span
/// 1); `payment` processes it in a new trace linked to it (consumer span 2 → handler span 3 →
/// producer span 4) and produces the payment.
fn linked_chain_spans() -> Vec<Span> {
    vec![
        span(1, 1, None, SpanKind::Producer, "shop send"),
        link(
            span(2, 2, None, SpanKind::Consumer, "payment process"),
            1,
            1,
        ),
        span(2, 3, Some(2), SpanKind::Internal, "payment charge"),
        span(2, 4, Some(3), SpanKind::Producer, "payment send"),
    ]
}

#[tokio::test]
async fn a_record_produced_under_a_linked_consumer_span_is_a_reaction_to_the_record_it_processed() {
    let w = World::new().await;
    w.write(&[
        w.record("orders", 0, "o-1", 1, 1),
        w.record("payments", 0, "o-1", 2, 4),
    ])
    .await;
    w.send(linked_chain_spans()).await;
    let answer = w.key("o-1").await;
    assert_eq!(
        edges(&answer["graph"]),
        [edge("kafka:orders/0/0", "kafka:payments/0/0", "span_link")]
    );
    assert_eq!(
        answer["flows"].as_array().unwrap().len(),
        1,
        "one flow: {answer}"
    );
    let services: Vec<&str> = answer["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        ["shop", "payment"],
        "services come from the producer spans"
    );
}

#[tokio::test]
async fn spans_that_arrive_before_their_records_give_the_same_edges() {
    let w = World::new().await;
    w.send(linked_chain_spans()).await;
    w.write(&[w.record("payments", 0, "o-1", 2, 4)]).await;
    w.write(&[w.record("orders", 0, "o-1", 1, 1)]).await;
    assert_eq!(
        edges(&w.key("o-1").await["graph"]),
        [edge("kafka:orders/0/0", "kafka:payments/0/0", "span_link")]
    );
}

#[tokio::test]
async fn a_consumer_span_that_names_the_message_position_is_tied_by_it() {
    let w = World::new().await;
    w.write(&[
        w.record("orders", 7, "o-2", 1, 1),
        w.record("payments", 0, "o-2", 2, 4),
    ])
    .await;
    let mut consumer = span(2, 2, None, SpanKind::Consumer, "payment process");
    consumer.attributes.extend([
        attr(
            "messaging.destination.name",
            Value::StringValue("orders".into()),
        ),
        attr(
            "messaging.destination.partition.id",
            Value::StringValue("0".into()),
        ),
        attr("messaging.kafka.offset", Value::IntValue(7)),
    ]);
    w.send(vec![
        consumer,
        span(2, 4, Some(2), SpanKind::Producer, "payment send"),
    ])
    .await;
    assert_eq!(
        edges(&w.key("o-2").await["graph"]),
        [edge(
            "kafka:orders/0/7",
            "kafka:payments/0/0",
            "span_message"
        )]
    );
}

#[tokio::test]
async fn a_consumer_span_that_is_the_producer_span_s_child_is_tied_by_its_parent() {
    let w = World::new().await;
    w.write(&[
        w.record("orders", 0, "o-3", 1, 1),
        w.record("payments", 0, "o-3", 1, 4),
    ])
    .await;
    w.send(vec![
        span(1, 1, None, SpanKind::Producer, "shop send"),
        span(1, 2, Some(1), SpanKind::Consumer, "payment process"),
        span(1, 4, Some(2), SpanKind::Producer, "payment send"),
    ])
    .await;
    assert_eq!(
        edges(&w.key("o-3").await["graph"]),
        [edge(
            "kafka:orders/0/0",
            "kafka:payments/0/0",
            "span_parent"
        )]
    );
}

#[tokio::test]
async fn a_batch_consumer_gives_one_edge_per_linked_record() {
    let w = World::new().await;
    w.write(&[
        w.record("orders", 0, "o-4", 1, 1),
        w.record("orders", 1, "o-4", 3, 1),
        w.record("audits", 0, "o-4", 2, 4),
    ])
    .await;
    let batch = link(
        link(span(2, 2, None, SpanKind::Consumer, "audit process"), 1, 1),
        3,
        1,
    );
    w.send(vec![
        batch,
        span(2, 4, Some(2), SpanKind::Producer, "audit send"),
    ])
    .await;
    assert_eq!(
        edges(&w.key("o-4").await["graph"]),
        [
            edge("kafka:orders/0/0", "kafka:audits/0/0", "span_link"),
            edge("kafka:orders/0/1", "kafka:audits/0/0", "span_link"),
        ]
    );
}

#[tokio::test]
async fn a_handler_that_raised_fails_the_flow_with_its_exception() {
    let w = World::new().await;
    w.write(&[w.record("orders", 0, "o-5", 1, 1)]).await;
    w.send(vec![
        span(1, 1, None, SpanKind::Producer, "shop send"),
        link(
            span(2, 2, None, SpanKind::Consumer, "inventory process"),
            1,
            1,
        ),
        failing(
            span(2, 3, Some(2), SpanKind::Internal, "inventory reserve"),
            "OutOfStock",
            "no stock for o-5",
        ),
    ])
    .await;
    let answer = w.key("o-5").await;
    let flow = &answer["flows"][0]["health"];
    assert_eq!(flow["status"], "failed", "{flow}");
    let failure = &flow["failures"][0];
    assert_eq!(failure["event"], "kafka:orders/0/0");
    assert_eq!(failure["service"], "inventory");
    assert_eq!(failure["exception"]["type"], "OutOfStock");
    assert_eq!(failure["exception"]["message"], "no stock for o-5");
    let node = &answer["graph"]["nodes"][0];
    assert!(node["flags"]
        .as_array()
        .unwrap()
        .contains(&Json::from("handler_failed")));
}

#[tokio::test]
async fn a_failed_handling_that_a_retry_got_through_does_not_fail_the_flow() {
    let w = World::new().await;
    w.write(&[
        w.record("orders", 0, "o-6", 1, 1),
        w.record("payments", 0, "o-6", 3, 4),
    ])
    .await;
    w.send(vec![
        span(1, 1, None, SpanKind::Producer, "shop send"),
        failing(
            link(
                span(2, 2, None, SpanKind::Consumer, "payment process"),
                1,
                1,
            ),
            "Timeout",
            "bank did not answer",
        ),
        link(
            span(3, 3, None, SpanKind::Consumer, "payment process"),
            1,
            1,
        ),
        span(3, 4, Some(3), SpanKind::Producer, "payment send"),
    ])
    .await;
    let answer = w.key("o-6").await;
    assert_ne!(answer["flows"][0]["health"]["status"], "failed", "{answer}");
    let handlings = &w.event("kafka:orders/0/0").await["handlings"];
    let outcomes: Vec<&str> = handlings
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "ok"], "both handlings, oldest first");
}

#[tokio::test]
async fn an_event_lists_its_handlings_with_what_each_produced() {
    let w = World::new().await;
    w.write(&[
        w.record("payments", 0, "o-7", 1, 1),
        w.record("stock", 0, "o-7", 2, 4),
    ])
    .await;
    w.send(vec![
        span(1, 1, None, SpanKind::Producer, "payment send"),
        link(
            span(2, 2, None, SpanKind::Consumer, "inventory process"),
            1,
            1,
        ),
        span(2, 4, Some(2), SpanKind::Producer, "inventory send"),
        link(
            span(3, 5, None, SpanKind::Consumer, "notification process"),
            1,
            1,
        ),
    ])
    .await;
    let event = w.event("kafka:payments/0/0").await;
    let handlings = event["handlings"].as_array().unwrap();
    let seen: Vec<(&str, &str, usize)> = handlings
        .iter()
        .map(|h| {
            (
                h["service"].as_str().unwrap(),
                h["outcome"].as_str().unwrap(),
                h["produced"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("inventory", "ok", 1), ("notification", "ok", 0)],
        "a handler that produced nothing is still a handling"
    );
    assert_eq!(handlings[0]["duration_ms"], 0.5);
    assert_eq!(
        event["source"], "payment",
        "the service comes from the producer span"
    );
    assert_eq!(event["reactions"], serde_json::json!(["kafka:stock/0/0"]));
}

#[tokio::test]
async fn lineage_walks_follow_span_edges_both_ways() {
    let w = World::new().await;
    w.write(&[
        w.record("orders", 0, "o-8", 1, 1),
        w.record("payments", 0, "o-8", 2, 4),
    ])
    .await;
    w.send(linked_chain_spans()).await;
    for (start, direction) in [("kafka:orders/0/0", "down"), ("kafka:payments/0/0", "up")] {
        let graph = query::answers::lineage_graph(
            &w.store,
            start,
            query::parse_direction(Some(direction)).unwrap(),
            5,
            &Limits::default(),
        )
        .await
        .unwrap();
        let graph = serde_json::to_value(graph).unwrap();
        assert_eq!(
            edges(&graph),
            [edge("kafka:orders/0/0", "kafka:payments/0/0", "span_link")],
            "{direction}"
        );
    }
}

// --- The receiver's protocols ---------------------------------------------------------------

async fn post(
    router: axum::Router,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::post("/v1/traces").header("content-type", content_type);
    if let Some(e) = encoding {
        request = request.header("content-encoding", e);
    }
    let response = router
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn counted(metrics: &Metrics, line: &str) -> bool {
    metrics.encode().lines().any(|l| l == line)
}

#[tokio::test]
async fn otlp_http_takes_protobuf_json_and_gzip_and_answers_in_kind() {
    let w = World::new().await;
    let stop = CancellationToken::new();
    let (receiver, metrics) = w.receiver(OtlpConfig::default(), &stop);
    let router = otlp::http::router(receiver, 1 << 20);
    let proto = request(vec![span(1, 1, None, SpanKind::Producer, "shop send")]).encode_to_vec();
    let (status, headers, _) = post(
        router.clone(),
        "application/x-protobuf",
        None,
        proto.clone(),
    )
    .await;
    assert_eq!(
        (status, headers["content-type"].to_str().unwrap()),
        (StatusCode::OK, "application/x-protobuf")
    );
    let json = serde_json::to_vec(&request(vec![span(
        1,
        2,
        Some(1),
        SpanKind::Internal,
        "shop log",
    )]))
    .unwrap();
    let (status, headers, body) = post(router.clone(), "application/json", None, json).await;
    assert_eq!(
        (status, headers["content-type"].to_str().unwrap()),
        (StatusCode::OK, "application/json")
    );
    assert!(serde_json::from_slice::<Json>(&body).is_ok());
    let zipped =
        gzip(&request(vec![span(1, 3, Some(1), SpanKind::Internal, "shop db")]).encode_to_vec());
    let (status, _, _) = post(router, "application/x-protobuf", Some("gzip"), zipped).await;
    assert_eq!(status, StatusCode::OK);
    let stored = w
        .store
        .spans(&[1u8, 2, 3].map(|i| (hex(&trace_id(1)), hex(&span_id(i)))))
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    assert!(
        counted(
            &metrics,
            r#"choreoscope_otlp_requests_total{protocol="http",outcome="ok"} 3"#
        ),
        "{}",
        metrics.encode()
    );
    stop.cancel();
}

#[tokio::test]
async fn malformed_otlp_http_requests_get_protocol_errors_and_are_counted() {
    let w = World::new().await;
    let stop = CancellationToken::new();
    let (receiver, metrics) = w.receiver(OtlpConfig::default(), &stop);
    let router = otlp::http::router(receiver, 64 * 1024);
    let cases: [(&str, Option<&str>, Vec<u8>, StatusCode); 6] = [
        (
            "application/x-protobuf",
            None,
            b"\xff\xff\xff not protobuf".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json",
            None,
            b"{\"resourceSpans\": 7}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "text/plain",
            None,
            b"hello".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/x-protobuf",
            None,
            vec![0u8; 128 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "application/x-protobuf",
            Some("gzip"),
            gzip(&vec![0u8; 1 << 20]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "application/x-protobuf",
            Some("br"),
            b"x".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (content_type, encoding, body, expected) in cases {
        let (status, _, body) = post(router.clone(), content_type, encoding, body).await;
        assert_eq!(
            status,
            expected,
            "{content_type} {encoding:?}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    assert!(
        counted(
            &metrics,
            r#"choreoscope_otlp_requests_total{protocol="http",outcome="invalid"} 6"#
        ),
        "{}",
        metrics.encode()
    );
    // Nothing else lost: a good request still goes through.
    let good = request(vec![span(1, 1, None, SpanKind::Producer, "shop send")]).encode_to_vec();
    assert_eq!(
        post(router, "application/x-protobuf", None, good).await.0,
        StatusCode::OK
    );
    stop.cancel();
}

/// Starts the receiver's servers on free ports; returns the gRPC address.
async fn grpc_receiver(w: &World, stop: &CancellationToken) -> (String, Arc<Metrics>) {
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let metrics = Arc::new(Metrics::new());
    otlp::start(
        w.store.clone(),
        metrics.clone(),
        OtlpConfig {
            max_request_bytes: 256 * 1024,
            ..OtlpConfig::default()
        },
        Some(grpc),
        None,
        stop.clone(),
    );
    (format!("http://{addr}"), metrics)
}

#[tokio::test]
async fn spans_sent_over_grpc_are_stored_and_bad_ids_rejected_as_a_partial_success() {
    let w = World::new().await;
    let stop = CancellationToken::new();
    let (url, metrics) = grpc_receiver(&w, &stop).await;
    let mut client = TraceServiceClient::connect(url).await.unwrap();
    let mut bad = span(1, 9, None, SpanKind::Consumer, "shop bad");
    bad.trace_id = vec![1; 15];
    let response = client
        .export(request(vec![
            span(1, 1, None, SpanKind::Producer, "shop send"),
            bad,
        ]))
        .await
        .unwrap()
        .into_inner();
    let partial = response.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace_id is 15 bytes"),
        "{}",
        partial.error_message
    );
    assert_eq!(
        w.store
            .spans(&[(hex(&trace_id(1)), hex(&span_id(1)))])
            .await
            .unwrap()
            .len(),
        1
    );
    let text = metrics.encode();
    assert!(
        text.contains(r#"choreoscope_otlp_spans_total{outcome="rejected"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"choreoscope_otlp_spans_total{outcome="kept"} 1"#),
        "{text}"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_grpc_request_that_does_not_decode_is_an_invalid_argument_and_one_too_large_exhausts() {
    let w = World::new().await;
    let stop = CancellationToken::new();
    let (url, metrics) = grpc_receiver(&w, &stop).await;
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = raw_export(
        channel.clone(),
        b"\x0a\xff\xff\xff\xff\x0f garbage".to_vec(),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let status = raw_export(channel, vec![0x0a; 512 * 1024]).await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        counted(
            &metrics,
            r#"choreoscope_otlp_requests_total{protocol="grpc",outcome="invalid"} 2"#
        ),
        "{}",
        metrics.encode()
    );
    // The server still answers.
    let mut client = TraceServiceClient::connect(url).await.unwrap();
    client
        .export(request(vec![span(
            1,
            1,
            None,
            SpanKind::Producer,
            "shop send",
        )]))
        .await
        .unwrap();
    stop.cancel();
}

/// Sends `bytes` as the body of an Export call, whatever they are.
async fn raw_export(channel: tonic::transport::Channel, bytes: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    grpc.ready().await.unwrap();
    let path = axum::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    grpc.unary::<Vec<u8>, Vec<u8>, RawCodec>(tonic::Request::new(bytes), path, RawCodec)
        .await
        .expect_err("refused")
}

/// A codec that sends bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_receiver_tells_the_sender_to_retry() {
    let w = World::new().await;
    let stop = CancellationToken::new();
    let (receiver, metrics) = w.receiver(
        OtlpConfig {
            max_queued_spans: 1,
            sieve: SieveConfig::default(),
            ..OtlpConfig::default()
        },
        &stop,
    );
    // Another connection holds the database's write lock: the first request's write waits.
    let path = w._dir.path().join("s.db");
    let blocker = rusqlite_blocker(&path);
    let router = otlp::http::router(receiver, 1 << 20);
    let first = tokio::spawn(post(
        router.clone(),
        "application/x-protobuf",
        None,
        request(vec![span(1, 1, None, SpanKind::Producer, "shop send")]).encode_to_vec(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, headers, _) = post(
        router,
        "application/x-protobuf",
        None,
        request(vec![span(1, 2, None, SpanKind::Producer, "shop send")]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    drop(blocker);
    assert_eq!(
        first.await.unwrap().0,
        StatusCode::OK,
        "the first waits for the lock, then lands"
    );
    assert!(
        counted(
            &metrics,
            r#"choreoscope_otlp_requests_total{protocol="http",outcome="unavailable"} 1"#
        ),
        "{}",
        metrics.encode()
    );
    stop.cancel();
}

/// A connection holding `path`'s write lock until dropped.
fn rusqlite_blocker(path: &std::path::Path) -> blocker::Blocker {
    blocker::Blocker::new(path)
}

mod blocker {
    /// Holds an `IMMEDIATE` transaction on a SQLite file.
    pub struct Blocker(
        std::sync::mpsc::Sender<()>,
        Option<std::thread::JoinHandle<()>>,
    );

    impl Blocker {
        pub fn new(path: &std::path::Path) -> Self {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
            let path = path.to_owned();
            let thread = std::thread::spawn(move || {
                let c = rusqlite::Connection::open(path).unwrap();
                c.execute_batch("BEGIN IMMEDIATE").unwrap();
                ready_tx.send(()).unwrap();
                let _ = rx.recv();
                c.execute_batch("ROLLBACK").unwrap();
            });
            ready.recv().unwrap();
            Self(tx, Some(thread))
        }
    }

    impl Drop for Blocker {
        fn drop(&mut self) {
            let _ = self.0.send(());
            if let Some(t) = self.1.take() {
                t.join().unwrap();
            }
        }
    }
}

#[tokio::test]
async fn flow_health_lists_the_flow_of_a_handler_that_raised_as_failed() {
    let w = World::new().await;
    w.write(&[w.record("orders", 0, "o-9", 1, 1)]).await;
    let health = HealthHandle::default();
    health.backfill(&w.store, 1000).await.unwrap();
    w.send(vec![
        span(1, 1, None, SpanKind::Producer, "shop send"),
        link(
            span(2, 2, None, SpanKind::Consumer, "inventory process"),
            1,
            1,
        ),
        failing(
            span(2, 3, Some(2), SpanKind::Internal, "inventory reserve"),
            "OutOfStock",
            "no stock for o-9",
        ),
    ])
    .await;
    assert_eq!(health.read_failed_handlings(&w.store).await.unwrap(), 1);
    let page = query::health::flows(
        &health,
        &GroupsHandle::default(),
        &w.store,
        Some(choreoscope::health::FlowStatus::Failed),
        10,
        &Limits::default(),
    )
    .await
    .unwrap();
    let page = serde_json::to_value(page).unwrap();
    assert_eq!(page["flows"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(
        page["flows"][0]["failures"][0]["reason"],
        "inventory's handler raised OutOfStock: no stock for o-9"
    );
}

#[tokio::test]
async fn a_handler_failure_read_before_its_record_arrives_fails_the_flow_once_it_does() {
    let w = World::new().await;
    let health = HealthHandle::default();
    w.send(vec![
        span(1, 1, None, SpanKind::Producer, "shop send"),
        link(
            span(2, 2, None, SpanKind::Consumer, "inventory process"),
            1,
            1,
        ),
        failing(
            span(2, 3, Some(2), SpanKind::Internal, "inventory reserve"),
            "OutOfStock",
            "no stock for o-10",
        ),
    ])
    .await;
    health.read_failed_handlings(&w.store).await.unwrap();
    w.write(&[w.record("orders", 0, "o-10", 1, 1)]).await;
    health.backfill(&w.store, 1000).await.unwrap();
    health.read_failed_handlings(&w.store).await.unwrap();
    let page = query::health::flows(
        &health,
        &GroupsHandle::default(),
        &w.store,
        Some(choreoscope::health::FlowStatus::Failed),
        10,
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(page.flows.len(), 1, "the failed span was read again");
}

#[tokio::test]
async fn a_record_produced_in_a_span_with_a_sibling_links_to_what_the_consumer_processed_both_ways()
{
    let w = World::new().await;
    // Two records produced in one span (no producer span per record) under the consumer span.
    w.write(&[
        w.record("orders", 0, "o-11", 1, 1),
        w.record("payments", 0, "o-11", 2, 3),
        w.record("payments", 1, "o-11", 2, 3),
    ])
    .await;
    w.send(vec![
        span(1, 1, None, SpanKind::Producer, "shop send"),
        link(
            span(2, 2, None, SpanKind::Consumer, "payment process"),
            1,
            1,
        ),
        span(2, 3, Some(2), SpanKind::Internal, "payment charge"),
    ])
    .await;
    let expected = [
        edge("kafka:orders/0/0", "kafka:payments/0/0", "span_link"),
        edge("kafka:orders/0/0", "kafka:payments/0/1", "span_link"),
    ];
    assert_eq!(edges(&w.key("o-11").await["graph"]), expected);
    for (start, direction, want) in [
        ("kafka:payments/0/0", "both", &expected[..1]),
        ("kafka:orders/0/0", "down", &expected[..]),
    ] {
        let graph = query::answers::lineage_graph(
            &w.store,
            start,
            query::parse_direction(Some(direction)).unwrap(),
            5,
            &Limits::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            edges(&serde_json::to_value(graph).unwrap()),
            want,
            "no same-span edge between the siblings ({start}, {direction})"
        );
    }
}
