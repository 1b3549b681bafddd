//! Fuzzing on the stable toolchain: every parser that reads what others send is fed its committed
//! corpus (`tests/fuzz/<target>/`), then mutations of it (bit flips, byte runs inserted, cut
//! and repeated, splices of two inputs, tokens of the format) for a bounded time each, and must
//! neither panic nor answer a 500. `cargo fuzz` needs a nightly toolchain, which this machine
//! cannot fetch; this runner is the fallback the issue allows (docs/reliability.md).
//!
//! `FUZZ_SECONDS` (default 3) is the time per target, `FUZZ_SEED` the seed (default: the clock;
//! printed, so a failure can be replayed). A failing input is written to
//! `target/fuzz-failures/<target>-<hash>`; copy it into the target's corpus to keep it as a
//! regression case. `scripts/fuzz` runs each target longer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use choreoscope::config::CollectorConfig;
use choreoscope::http::{app, AppState};
use choreoscope::live::LiveFeed;
use choreoscope::metrics::Metrics;
use choreoscope::record::{Interpreter, RawRecord};
use choreoscope::store::Store;
use choreoscope_sdk::headers::RecordHeaders;
use tower::ServiceExt;

/// A small, fast, seedable generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens of the formats the targets read, spliced into inputs.
const TOKENS: [&[u8]; 24] = [
    b"00-",
    b"-01",
    b"ff",
    b"=",
    b",",
    b";",
    b"%",
    b"%zz",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b"/",
    b"~1",
    b"*",
    b"\\u0000",
    b"\xff\xfe",
    b"\x00",
    b"\n[health]\n",
    b"key_rules = [",
    b"&",
    b"key=",
    b"depth=",
];

/// One mutation of `input`, sometimes spliced with `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            2 if !out.is_empty() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 => {
                let byte = rng.next() as u8;
                out.splice(at..at, std::iter::repeat_n(byte, 1 + rng.below(8)));
            }
            4 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            5 if !out.is_empty() && out.len() < 1 << 16 => {
                // Repeat a slice: long inputs, deep nesting.
                let end = (at + 1 + rng.below(8)).min(out.len());
                let slice = out[at.min(end.saturating_sub(1))..end].to_vec();
                for _ in 0..rng.below(64) {
                    out.splice(at..at, slice.iter().copied());
                }
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!inputs.is_empty(), "corpus {} is empty", dir.display());
    inputs
}

fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(seconds)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// Writes `input` where a failure of `target` is kept, and says where.
fn keep_failure(target: &str, input: &[u8]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut hasher);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{target}-{:016x}", hasher.finish()));
    std::fs::write(&path, input).unwrap();
    path
}

/// Runs `check` on the corpus, then on mutations until the budget is spent; a panic or a
/// `false` fails the test with the input kept.
fn fuzz(target: &str, check: impl FnMut(&[u8]) -> bool) {
    fuzz_from(target, Vec::new(), check)
}

/// [`fuzz`] with `extra` inputs beside the committed corpus (binary seeds built here).
fn fuzz_from(target: &str, extra: Vec<Vec<u8>>, mut check: impl FnMut(&[u8]) -> bool) {
    let seed = seed();
    let mut rng = Rng(seed);
    let mut pool = corpus(target);
    pool.extend(extra);
    let started = Instant::now();
    let mut executions = 0u64;
    let mut run = |input: &[u8], executions: &mut u64| {
        *executions += 1;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input)));
        if !matches!(outcome, Ok(true)) {
            let kept = keep_failure(target, input);
            panic!(
                "{target}: {} on input kept at {} (FUZZ_SEED={seed})",
                if outcome.is_err() {
                    "panic"
                } else {
                    "a wrong answer"
                },
                kept.display()
            );
        }
    };
    for input in pool.clone() {
        run(&input, &mut executions);
    }
    while started.elapsed() < budget() {
        let a = rng.below(pool.len());
        let b = rng.below(pool.len());
        let input = mutate(&mut rng, &pool[a], &pool[b]);
        run(&input, &mut executions);
        // Keep some mutants as parents: walks further from the seeds.
        if rng.below(16) == 0 && pool.len() < 4096 {
            pool.push(input);
        }
    }
    println!(
        "{target}: {executions} executions in {:.1} s, seed {seed}",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn traceparent_parsing_never_panics() {
    fuzz("traceparent", |input| {
        let text = String::from_utf8_lossy(input);
        let _ = text.parse::<choreoscope_sdk::traceparent::TraceParent>();
        true
    });
}

#[test]
fn baggage_parsing_never_panics() {
    fuzz("baggage", |input| {
        let (entries, _problems) = choreoscope_sdk::baggage::parse(&String::from_utf8_lossy(input));
        entries.len() <= input.len()
    });
}

/// The rules every record of the record target is interpreted under: key rules and redaction
/// pointers (with wildcards) on its topic.
const RULES: &str = r#"
key_rules = ["orders : /order/id -> order.id", "orders : /items/0/sku -> sku"]
[redaction]
[[redaction.topics]]
topics = "orders"
mask = ["/card/number", "/items/*/token"]
drop = ["/customer/address"]
payload = "truncated"
truncate_at = 64
"#;

/// Splits an input into headers (name, value) pairs, a record key and a payload at 0xFF bytes:
/// `name \xff value \xff name \xff value … \xff\xff key \xff payload`.
fn record_parts(input: &[u8]) -> (RecordHeaders, Option<&[u8]>, Option<&[u8]>) {
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

#[test]
fn a_whole_record_is_interpreted_without_panicking_and_keeps_its_place() {
    let config = CollectorConfig::from_toml(RULES).unwrap();
    let interpreter = Interpreter::new(config.rules, 4096).with_redaction(config.redaction);
    fuzz("record", |input| {
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
        // Whatever the headers say, the record is stored where it was read.
        record.topic == "orders" && record.partition == 3 && record.offset == 42
    });
}

#[test]
fn config_file_parsing_never_panics() {
    fuzz("config", |input| {
        let _ = CollectorConfig::from_toml(&String::from_utf8_lossy(input));
        true
    });
}

/// A valid OTLP export request of one consumer span, as protobuf.
fn otlp_protobuf_seed() -> Vec<u8> {
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

#[test]
fn no_otlp_request_body_makes_the_receiver_panic_or_answer_500() {
    use choreoscope::otlp::{self, OtlpConfig, Receiver};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let router = rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("otlp.db").display());
        let store = Store::connect(&url).await.unwrap();
        let metrics = std::sync::Arc::new(Metrics::new());
        let config = OtlpConfig::default();
        let (sink, _) = otlp::sink::Sink::start(
            store,
            metrics.clone(),
            config.max_queued_spans,
            stop.clone(),
        );
        otlp::http::router(Receiver::new(sink, config.sieve, metrics), 1 << 20)
    });
    let mut turn = 0usize;
    fuzz_from("otlp", vec![otlp_protobuf_seed()], |input| {
        turn += 1;
        let content_type = if turn % 2 == 0 {
            "application/x-protobuf"
        } else {
            "application/json"
        };
        let request = Request::post("/v1/traces")
            .header("content-type", content_type)
            .body(Body::from(input.to_vec()))
            .unwrap();
        let status = rt.block_on(async { router.clone().oneshot(request).await.unwrap().status() });
        status != StatusCode::INTERNAL_SERVER_ERROR
    });
    stop.cancel();
}

/// Routes whose query strings the API reads, each asked with the fuzzed string.
const ROUTES: [&str; 9] = [
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

#[test]
fn no_query_string_makes_the_api_answer_500() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("fuzz.db").display());
        AppState {
            store: Store::connect(&url).await.unwrap(),
            metrics: std::sync::Arc::new(Metrics::new()),
            live: LiveFeed::new(),
            health: Default::default(),
            groups: Default::default(),
            progress: Default::default(),
            redaction: Default::default(),
        }
    });
    let router = app(state);
    let mut route = 0;
    fuzz("query", |input| {
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
        route = (route + 1) % ROUTES.len();
        let uri = format!("{}?{query}", ROUTES[route]);
        let Ok(request) = Request::get(&uri).body(Body::empty()) else {
            // Not a URI at all: the HTTP server would refuse it before any handler.
            return true;
        };
        let status = rt.block_on(async {
            let response = router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            // A live stream that opened is left at once.
            drop(response);
            status
        });
        status != StatusCode::INTERNAL_SERVER_ERROR
    });
}
