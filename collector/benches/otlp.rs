//! OTLP receiver throughput: spans per second accepted over OTLP/gRPC into the store, with the
//! span indexes that lineage resolution reads maintained, while records are ingested into the same
//! store at the same time.
//!
//! The exporters run in a child process (this binary again, `BENCH_OTLP_CLIENT` set): `CLIENTS`
//! concurrent gRPC connections, each sending requests of 512 spans (the OpenTelemetry SDKs'
//! batch size) one after another, as BatchSpanProcessors do. Every trace is one Kafka hop as the
//! instrumentations write it: a producer span, a consumer `process` span linked to it with its
//! messaging attributes, a handler span and the reaction's producer span. The collector's own CPU
//! time (this process: receiver, sieve, writer, and the record writer beside them) gives the
//! spans per CPU-second ("per core").
//!
//! Two runs on each store, with the same exporters and spans: spans alone, then spans while
//! records are written at `BENCH_RECORD_RATE` per second (default 20 000) in batches of 2 000.
//!
//! `cargo bench -p choreoscope --bench otlp`; `BENCH_SPANS` (default 400 000), `BENCH_CLIENTS`
//! (4), `BENCH_PG` for a PostgreSQL run too, `BENCH_SKIP_SQLITE`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use choreoscope::metrics::Metrics;
use choreoscope::otlp::{self, OtlpConfig};
use choreoscope::store::Store;
use common::env_usize;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
use tokio_util::sync::CancellationToken;

const PER_REQUEST: usize = 512;

fn attr(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn id(n: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0x5a; len];
    v[len - 8..].copy_from_slice(&n.to_be_bytes());
    v
}

/// The four spans of hop `hop`.
fn hop(hop: u64, now_ns: u64) -> [Span; 4] {
    let (t1, t2) = (id(hop * 2 + 1, 16), id(hop * 2 + 2, 16));
    let (send, process, handle, react) = (
        id(hop * 4 + 1, 8),
        id(hop * 4 + 2, 8),
        id(hop * 4 + 3, 8),
        id(hop * 4 + 4, 8),
    );
    let messaging = |op: &str, topic: &str| {
        vec![
            attr("messaging.system", Value::StringValue("kafka".into())),
            attr(
                "messaging.destination.name",
                Value::StringValue(topic.into()),
            ),
            attr("messaging.operation", Value::StringValue(op.into())),
        ]
    };
    let base = |trace: &Vec<u8>,
                span_id: &Vec<u8>,
                parent: Option<&Vec<u8>>,
                kind: span::SpanKind,
                name: &str| Span {
        trace_id: trace.clone(),
        span_id: span_id.clone(),
        parent_span_id: parent.cloned().unwrap_or_default(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: now_ns,
        end_time_unix_nano: now_ns + 1_000_000,
        ..Default::default()
    };
    let mut s1 = base(&t1, &send, None, span::SpanKind::Producer, "orders send");
    s1.attributes = messaging("publish", "orders");
    let mut s2 = base(
        &t2,
        &process,
        None,
        span::SpanKind::Consumer,
        "orders process",
    );
    s2.attributes = messaging("process", "orders");
    s2.attributes.extend([
        attr(
            "messaging.destination.partition.id",
            Value::StringValue((hop % 12).to_string()),
        ),
        attr("messaging.kafka.offset", Value::IntValue(hop as i64)),
        attr(
            "messaging.consumer.group.name",
            Value::StringValue("payment".into()),
        ),
    ]);
    s2.links.push(span::Link {
        trace_id: t1.clone(),
        span_id: send.clone(),
        ..Default::default()
    });
    let s3 = base(
        &t2,
        &handle,
        Some(&process),
        span::SpanKind::Internal,
        "charge",
    );
    let mut s4 = base(
        &t2,
        &react,
        Some(&handle),
        span::SpanKind::Producer,
        "payments send",
    );
    s4.attributes = messaging("publish", "payments");
    [s1, s2, s3, s4]
}

fn requests(client: usize, clients: usize, spans: usize) -> Vec<ExportTraceServiceRequest> {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let hops = spans / 4;
    let mine: Vec<u64> = (0..hops as u64)
        .filter(|h| *h as usize % clients == client)
        .collect();
    mine.chunks(PER_REQUEST / 4)
        .map(|chunk| ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attr("service.name", Value::StringValue("payment".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: chunk.iter().flat_map(|&h| hop(h, now_ns)).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
        .collect()
}

/// The exporters (child process): sends every request, retrying refused ones as exporters do.
fn client(addr: &str, clients: usize, spans: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let addr = addr.to_owned();
                let batches = requests(c, clients, spans);
                tokio::spawn(async move {
                    let mut client = TraceServiceClient::connect(addr).await.unwrap();
                    for request in batches {
                        loop {
                            match client.export(request.clone()).await {
                                Ok(_) => break,
                                Err(s) if s.code() == tonic::Code::Unavailable => {
                                    tokio::time::sleep(Duration::from_millis(20)).await
                                }
                                Err(s) => panic!("export refused: {s}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

async fn run(url: &str, label: &str, spans: usize, clients: usize, record_rate: usize) {
    let store = Store::connect(url).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let tasks = otlp::start(
        store.clone(),
        metrics.clone(),
        OtlpConfig::default(),
        Some(listener),
        None,
        stop.clone(),
    );
    // Records ingested meanwhile: batches of 2 000 at `record_rate` per second.
    let done = Arc::new(AtomicBool::new(record_rate == 0));
    let records = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (store, done, records) = (store.clone(), done.clone(), records.clone());
        tokio::spawn(async move {
            let base = chrono::Utc::now().timestamp_micros();
            let mut flow = 0;
            let every = Duration::from_secs_f64(2000.0 / record_rate.max(1) as f64);
            let mut tick = tokio::time::interval(every);
            while !done.load(Ordering::Relaxed) {
                tick.tick().await;
                let batch: Vec<_> = (0..400)
                    .flat_map(|_| {
                        flow += 1;
                        (0..5).map(move |i| {
                            common::record(flow, i, i.checked_sub(1), (flow * 5 + i) as i64, base)
                        })
                    })
                    .collect();
                store.write_batch(&batch).await.unwrap();
                records.fetch_add(batch.len(), Ordering::Relaxed);
            }
        })
    };
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env("BENCH_OTLP_CLIENT", &addr)
        .env("BENCH_SPANS", spans.to_string())
        .env("BENCH_CLIENTS", clients.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    done.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let records = records.load(Ordering::Relaxed);
    let kept = metrics
        .encode()
        .lines()
        .find(|l| l.starts_with("choreoscope_otlp_spans_total{outcome=\"kept\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0) as usize;
    assert_eq!(kept, spans / 4 * 4, "every span stored");
    let label = if record_rate == 0 {
        format!("{label}, spans alone")
    } else {
        format!("{label}, with records")
    };
    println!(
        "{label}: {spans} spans in {wall:.2} s = {:.0} spans/s over OTLP/gRPC ({clients} exporters), \
         {:.0} spans per collector CPU-second ({cpu:.2} CPU-s); {records} records ingested meanwhile \
         ({:.0}/s)",
        spans as f64 / wall,
        spans as f64 / cpu,
        records as f64 / wall
    );
    if let Store::Sqlite(s) = &store {
        let size: (i64,) = sqlx::query_as("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'span%'")
            .fetch_one(s.pool())
            .await
            .unwrap_or((0,));
        if size.0 > 0 {
            println!(
                "{label}: span tables and indexes {:.0} bytes per span",
                size.0 as f64 / spans as f64
            );
        }
    }
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    store.close().await;
}

fn main() {
    let spans = env_usize("BENCH_SPANS", 400_000);
    let clients = env_usize("BENCH_CLIENTS", 4);
    if let Ok(addr) = std::env::var("BENCH_OTLP_CLIENT") {
        client(&addr, clients, spans);
        return;
    }
    choreoscope::memory::tune_process();
    println!(
        "OTLP benchmark: {spans} spans ({} Kafka hops of 4 spans), requests of {PER_REQUEST}, \
         {clients} exporters in a child process, records written beside",
        spans / 4
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let record_rate = env_usize("BENCH_RECORD_RATE", 20_000);
    for rate in [0, record_rate] {
        rt.block_on(common::on_each_store("otlp.db", |url, label| async move {
            run(&url, label, spans, clients, rate).await
        }));
    }
}
