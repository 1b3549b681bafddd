//! SDK overhead, measured as ratios in one run.
//!
//! Produces N records through the same `FutureProducer` four ways — bare (same payload and key,
//! no headers), bare with the same wire-format headers precomputed once, through `TracedProducer` without a tracing subscriber, and through `TracedProducer`
//! with a `tracing-opentelemetry` pipeline (spans built, not exported) — interleaving rounds so
//! that drift hits every variant alike. Also times `stamp` and `EventContext::extract` alone.
//!
//! ```text
//! cargo bench -p choreoscope-sdk --bench overhead             # embedded mock broker
//! BENCH_RECORDS=200000 BENCH_BROKERS=127.0.0.1:9092 cargo bench -p choreoscope-sdk --bench overhead
//! ```
//! `BENCH_BROKERS` must name a broker where topic `bench-overhead` exists (or auto-creates).

use std::hint::black_box;
use std::time::{Duration, Instant};

use choreoscope_sdk::{stamp, AliasTable, EventContext, OutgoingEvent, TracedProducer};
use futures::stream::{self, StreamExt};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tracing_subscriber::layer::SubscriberExt;

const TOPIC: &str = "bench-overhead";
const IN_FLIGHT: usize = 1024;
const ROUNDS: usize = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn payload() -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"id": "o-1001", "amount": 4200, "currency": "EUR",
        "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]}),
    )
    .unwrap()
}

/// Runs `send(i)` for `0..n` with `IN_FLIGHT` sends outstanding; returns the elapsed time.
async fn pipelined<F, Fut>(n: usize, send: F) -> Duration
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    stream::iter(0..n)
        .map(send)
        .buffer_unordered(IN_FLIGHT)
        .count()
        .await;
    start.elapsed()
}

fn order_key(i: usize) -> String {
    format!("o-{}", i % 1000)
}

async fn bare(producer: &FutureProducer, n: usize, payload: &[u8]) -> Duration {
    pipelined(n, |i| async move {
        let key = order_key(i);
        producer
            .send(
                FutureRecord::to(TOPIC).key(&key).payload(payload),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .expect("bare send");
    })
    .await
}

/// Bare, but with the same 11 wire-format headers, built once: what the headers cost the client
/// and the broker, without any of the SDK's per-event work.
async fn bare_with_headers(
    producer: &FutureProducer,
    n: usize,
    payload: &[u8],
    headers: &rdkafka::message::OwnedHeaders,
) -> Duration {
    pipelined(n, |i| async move {
        let key = order_key(i);
        producer
            .send(
                FutureRecord::to(TOPIC)
                    .key(&key)
                    .payload(payload)
                    .headers(headers.clone()),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .expect("bare send");
    })
    .await
}

async fn sdk(producer: &TracedProducer, n: usize, payload: &[u8]) -> Duration {
    pipelined(n, |i| async move {
        let key = order_key(i);
        producer
            .send(
                OutgoingEvent::new(TOPIC, "OrderCreated")
                    .record_key(key.as_str())
                    .payload(payload)
                    .content_type("application/json")
                    .business_key("order.id", key.as_str()),
            )
            .await
            .expect("sdk send");
    })
    .await
}

fn per_op(n: usize, f: impl Fn()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed() / n as u32
}

fn main() {
    let n = env_usize("BENCH_RECORDS", 100_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock;
    let brokers = match std::env::var("BENCH_BROKERS") {
        Ok(b) => b,
        Err(_) => {
            mock = MockCluster::new(1).unwrap();
            mock.create_topic(TOPIC, 3, 1).unwrap();
            mock.bootstrap_servers()
        }
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .unwrap();
    let traced = TracedProducer::new(producer.clone(), "bench");
    let payload = payload();
    let provider = SdkTracerProvider::builder().build();
    let otel = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    let otel = std::sync::Arc::new(otel);

    let headers = stamp(
        OutgoingEvent::new(TOPIC, "OrderCreated")
            .content_type("application/json")
            .business_key("order.id", "o-1"),
        "bench",
        None,
        &opentelemetry::Context::new(),
    )
    .unwrap()
    .headers;
    let kafka_headers = headers.to_kafka();
    println!("SDK overhead: {n} records per variant and round, {ROUNDS} rounds, {IN_FLIGHT} in flight, broker {brokers}");
    runtime.block_on(bare(&producer, n / 10, &payload)); // warm up connections and metadata
    let (mut t_bare, mut t_headers, mut t_sdk, mut t_otel) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for _ in 0..ROUNDS {
        t_bare += runtime.block_on(bare(&producer, n, &payload));
        t_headers += runtime.block_on(bare_with_headers(&producer, n, &payload, &kafka_headers));
        t_sdk += runtime.block_on(sdk(&traced, n, &payload));
        t_otel += {
            let _guard = tracing::subscriber::set_default(otel.clone());
            // A current-thread runtime so every span is made under this thread's subscriber.
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(sdk(&traced, n, &payload))
        };
    }
    let rate = |t: Duration| (n * ROUNDS) as f64 / t.as_secs_f64();
    println!("{:<38} {:>12} {:>8}", "variant", "records/s", "ratio");
    println!(
        "{:<38} {:>12.0} {:>8.2}",
        "bare FutureProducer",
        rate(t_bare),
        1.0
    );
    println!(
        "{:<38} {:>12.0} {:>8.2}",
        "bare + same headers, precomputed",
        rate(t_headers),
        rate(t_headers) / rate(t_bare)
    );
    println!(
        "{:<38} {:>12.0} {:>8.2}",
        "TracedProducer",
        rate(t_sdk),
        rate(t_sdk) / rate(t_bare)
    );
    println!(
        "{:<38} {:>12.0} {:>8.2}",
        "TracedProducer + tracing-opentelemetry",
        rate(t_otel),
        rate(t_otel) / rate(t_bare)
    );

    let cause_headers = headers;
    let cause = EventContext::extract(&cause_headers, &AliasTable::default());
    let ops = 200_000;
    let t_stamp = per_op(ops, || {
        black_box(
            stamp(
                OutgoingEvent::new(TOPIC, "PaymentCaptured").payload(payload.as_slice()),
                "bench",
                Some(&cause),
                &opentelemetry::Context::new(),
            )
            .unwrap(),
        );
    });
    let aliases = AliasTable::default();
    let t_extract = per_op(ops, || {
        black_box(EventContext::extract(black_box(&cause_headers), &aliases));
    });
    println!(
        "stamp (reaction, 11 headers): {:?}/event; extract: {:?}/event",
        t_stamp, t_extract
    );
    drop(provider);
}
