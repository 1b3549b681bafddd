//! The properties both fuzzers check, one per target: the stable runner (`tests/fuzz.rs`) and the
//! cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) include this file with `#[path]`. Each check
//! takes one input and answers whether the property held (a panic fails it too). What a check
//! needs that is costly to build (an interpreter, a runtime with a store and a router) is built
//! once by the caller and passed in; a check answers the same for the same input.

// Each includer uses only some of the targets.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use choreoscope::config::CollectorConfig;
use choreoscope::http::{app, AppState};
use choreoscope::live::LiveFeed;
use choreoscope::metrics::Metrics;
use choreoscope::record::{Interpreter, RawRecord};
use choreoscope::store::Store;
use choreoscope_sdk::headers::RecordHeaders;
use tower::ServiceExt;

/// Target `traceparent`: parsing a `traceparent` header never panics.
pub fn traceparent(input: &[u8]) -> bool {
    let text = String::from_utf8_lossy(input);
    let _ = text.parse::<choreoscope_sdk::traceparent::TraceParent>();
    true
}

/// Target `baggage`: parsing a `baggage` header never panics, nor finds more entries than the
/// header has bytes.
pub fn baggage(input: &[u8]) -> bool {
    let (entries, _problems) = choreoscope_sdk::baggage::parse(&String::from_utf8_lossy(input));
    entries.len() <= input.len()
}

/// Target `config`: parsing a config file never panics.
pub fn config(input: &[u8]) -> bool {
    let _ = CollectorConfig::from_toml(&String::from_utf8_lossy(input));
    true
}

/// The rules every record of the record target is interpreted under: key rules and redaction
/// pointers (with wildcards) on its topic.
pub const RULES: &str = r#"
key_rules = ["orders : /order/id -> order.id", "orders : /items/0/sku -> sku"]
[redaction]
[[redaction.topics]]
topics = "orders"
mask = ["/card/number", "/items/*/token"]
drop = ["/customer/address"]
payload = "truncated"
truncate_at = 64
"#;

/// The interpreter of the record target, under [`RULES`].
pub fn record_interpreter() -> Interpreter {
    let config = CollectorConfig::from_toml(RULES).unwrap();
    Interpreter::new(config.rules, 4096).with_redaction(config.redaction)
}

/// Splits an input into headers (name, value) pairs, a record key and a payload at 0xFF bytes:
/// `name \xff value \xff name \xff value … \xff\xff key \xff payload`.
pub fn record_parts(input: &[u8]) -> (RecordHeaders, Option<&[u8]>, Option<&[u8]>) {
    let (head, tail) = match input.windows(2).position(|w| w == b"\xff\xff") {
        Some(i) => (&input[..i], &input[i + 2..]),
        None => (input, &[][..]),
    };
    let mut headers = RecordHeaders::new();
    let mut fields = head.split(|b| *b == 0xff);
    while let Some(name) = fields.next() {
        let value = fields.next().map(<[u8]>::to_vec);
        headers.push(String::from_utf8_lossy(name).into_owned(), value);
    }
    let mut rest = tail.splitn(2, |b| *b == 0xff);
    let key = rest.next().filter(|k| !k.is_empty());
    let payload = rest.next();
    (headers, key, payload)
}

/// Target `record`: a whole record (headers, key, payload; see [`record_parts`]) is interpreted
/// without panicking and keeps its place: whatever the headers say, the record is stored where it
/// was read.
pub fn record(interpreter: &Interpreter, input: &[u8]) -> bool {
    let (headers, key, payload) = record_parts(input);
    let record = interpreter.interpret(
        RawRecord {
            topic: "orders",
            partition: 3,
            offset: 42,
            key,
            payload,
            headers: &headers,
            timestamp_ms: Some(1_767_000_000_000),
        },
        1,
    );
    record.topic == "orders" && record.partition == 3 && record.offset == 42
}

/// A valid OTLP export request of one consumer span, as protobuf (a seed of the otlp target
/// beside its committed JSON corpus).
pub fn otlp_protobuf_seed() -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    let attr = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "payment")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![0xab; 16],
                    span_id: vec![0xcd; 8],
                    name: "orders process".into(),
                    kind: 5,
                    start_time_unix_nano: 1_767_000_000_000_000_000,
                    end_time_unix_nano: 1_767_000_000_500_000_000,
                    attributes: vec![
                        attr("messaging.system", "kafka"),
                        attr("messaging.destination.name", "orders"),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// A tokio runtime, a SQLite store in a temporary directory and a router over them: what the
/// otlp and query targets send their requests to. Built once per process, then shared.
pub struct Server {
    pub rt: tokio::runtime::Runtime,
    pub router: Router,
    stop: tokio_util::sync::CancellationToken,
    // Last: the store's files are removed after the runtime that uses them stopped.
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Server {
    /// The OTLP/HTTP receiver (`POST /v1/traces`), its spans written to the store.
    pub fn otlp() -> Self {
        use choreoscope::otlp::{self, OtlpConfig, Receiver};
        Self::start("otlp.db", |store, stop| {
            let metrics = std::sync::Arc::new(Metrics::new());
            let config = OtlpConfig::default();
            let (sink, _) =
                otlp::sink::Sink::start(store, metrics.clone(), config.max_queued_spans, stop);
            otlp::http::router(Receiver::new(sink, config.sieve, metrics), 1 << 20)
        })
    }

    /// The query API (`/api/v1/…`) over an empty store.
    pub fn api() -> Self {
        Self::start("fuzz.db", |store, _stop| {
            app(AppState {
                store,
                metrics: std::sync::Arc::new(Metrics::new()),
                live: LiveFeed::new(),
                health: Default::default(),
                groups: Default::default(),
                progress: Default::default(),
                redaction: Default::default(),
            })
        })
    }

    fn start(
        file: &str,
        router: impl FnOnce(Store, tokio_util::sync::CancellationToken) -> Router,
    ) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let router = rt.block_on(async {
            let url = format!("sqlite://{}", dir.path().join(file).display());
            router(Store::connect(&url).await.unwrap(), stop.clone())
        });
        Self {
            rt,
            router,
            stop,
            _dir: dir,
        }
    }

    /// The status `request` is answered with (the response itself dropped at once: a live
    /// stream that opened is left).
    pub fn status(&self, request: Request<Body>) -> StatusCode {
        self.rt.block_on(async {
            let response = self.router.clone().oneshot(request).await.unwrap();
            response.status()
        })
    }
}

/// Target `otlp`: no OTLP/HTTP request body, sent as protobuf and as JSON, makes the receiver
/// panic or answer 500. `server` is [`Server::otlp`].
pub fn otlp(server: &Server, input: &[u8]) -> bool {
    ["application/x-protobuf", "application/json"]
        .into_iter()
        .all(|content_type| {
            let request = Request::post("/v1/traces")
                .header("content-type", content_type)
                .body(Body::from(input.to_vec()))
                .unwrap();
            server.status(request) != StatusCode::INTERNAL_SERVER_ERROR
        })
}

/// Routes whose query strings the API reads, each asked with the fuzzed string.
pub const ROUTES: [&str; 9] = [
    "/api/v1/search",
    "/api/v1/events/e-1/lineage",
    "/api/v1/keys/order.id/o-1",
    "/api/v1/topology",
    "/api/v1/services",
    "/api/v1/flows",
    "/api/v1/keys",
    "/api/v1/live",
    "/api/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736",
];

/// Target `query`: no query string, asked of every route of [`ROUTES`], makes the API panic or
/// answer 500. `server` is [`Server::api`].
pub fn query(server: &Server, input: &[u8]) -> bool {
    // Bytes a URI cannot hold are percent-encoded; the rest go as they are.
    let query: String = input
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() && b != b'#' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    ROUTES.iter().all(|route| {
        let Ok(request) = Request::get(format!("{route}?{query}")).body(Body::empty()) else {
            // Not a URI at all: the HTTP server would refuse it before any handler.
            return true;
        };
        server.status(request) != StatusCode::INTERNAL_SERVER_ERROR
    })
}
