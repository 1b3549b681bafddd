//! Collector ingest benchmark, reported as figures of one run:
//! 1. the store alone: `write_batch` of interpreted records into SQLite and PostgreSQL;
//! 2. end to end, on one topic: for each store, a bare rdkafka `StreamConsumer` built from exactly
//!    the collector's consumer configuration for that store (`ingest::consumer_config`: the fetch
//!    wait, the fetch queue sized by store, everything the collector sets), then the
//!    `choreoscope collect` binary ingesting the same topic into that store — events/s, ratio to
//!    that like-for-like consumer, CPU time per event of the consuming process (every thread; not
//!    the broker's nor PostgreSQL's), bytes stored per event, and the collector's peak RSS. A bare
//!    consumer with librdkafka's defaults is measured too, for information (tansu holds each fetch
//!    for the whole `fetch.wait.max.ms`, so it is bound by fetch round trips: not a baseline).
//!
//! Each end-to-end rate is given twice: over the whole run (process start, group join and first
//! fetch included: these took from under one to several seconds with the test broker) and in
//! steady state (from the 10th percent of the records to the last).
//!
//! ```text
//! scripts/bench                                                  # starts tansu and PostgreSQL
//! BENCH_EVENTS=500000 BENCH_BROKERS=127.0.0.1:9092 BENCH_PG=postgres://postgres@127.0.0.1/postgres \
//!     cargo bench -p choreoscope --bench ingest
//! ```
//! Without `BENCH_PG` the PostgreSQL parts are skipped, and without `BENCH_BROKERS` the
//! end-to-end part is (both say so): librdkafka's mock broker stalls a partition under this load,
//! so the end-to-end figures come from a real broker. `BENCH_COLLECTOR=path` runs another
//! `choreoscope` binary end to end (to compare two builds against one broker) instead of this
//! build's; the like-for-like consumers still use this build's configuration. `BENCH_KEEP_TOPIC=1`
//! leaves the run's topic on the broker (it is deleted otherwise), so that the next run's
//! collector works on a cluster holding other busy topics.
//!
//! 3. flow health on against off (issue 18): the SQLite collector of step 2 run again, alternated
//!    with flow health on (the default) and off (`--no-flow-health`), `BENCH_HEALTH_PAIRS` pairs
//!    (default 2; 0 skips them), each into a fresh store, on the same topic; the ratio on/off of
//!    the summed rates. Every event of the topic is a flow of its own: past 100,000 the tracker
//!    evicts (its bound), so this is the tracker's worst case per event, not a typical one.
//!
//! 0. redaction at ingest (issue 21): interpretation alone, without redaction, with the default
//!    (credential headers) and with pointer rules; ratios to the first. `BENCH_INTERPRET_ONLY=1`
//!    stops after it.
//!
//! 4. an HTTP flood on against off (issue 22): the SQLite collector of step 2 under a descriptor
//!    limit of 1024, with and without three client threads (each from its own loopback address)
//!    holding 900 connections each open on its HTTP port — every other one a live stream — and
//!    opening again every second those refused; `BENCH_FLOOD_PAIRS` pairs (default 1; 0 skips).
//!
//! 1b. retention deleting in the background (issue 21): on each store, fresh stores filled with
//!    `BENCH_OLD` events past a one-day retention, then written `BENCH_EVENTS` new ones (at most
//!    100 000) in batches of 5000, alternately without and with the retention task running;
//!    the ratio with/without of the summed rates. `BENCH_RETENTION_ONLY=1` runs it alone.
//!
//! Targets: end to end into SQLite at least half the like-for-like consumer's rate (issue 3);
//! with flow health on, at least 0.9 of the rate with it off (issue 18); with the HTTP port
//! flooded, at least 0.8 of the rate without (issue 22); with retention deleting, at least 0.9
//! of the rate without (issue 21).

use std::time::{Duration, Instant};

use choreoscope::cli::{Cli, Command};
use choreoscope::ingest::consumer_config;
use choreoscope::record::{EventRecord, Interpreter, RawRecord};
use choreoscope::redact::{Redaction, RedactionTable};
use choreoscope::rules::Rules;
use choreoscope::store::{Store, StoreProfile};
use choreoscope_sdk::{stamp, OutgoingEvent, RecordHeaders};
use clap::Parser;
use futures::stream::{self, StreamExt};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

mod common;

use common::cluster::{delete_topic, fresh_pg, fresh_topic, ingested};
use common::env_usize;

const PARTITIONS: i32 = 3;

fn headers(topic: &str, i: usize, cause: Option<&RecordHeaders>) -> RecordHeaders {
    let cause = cause.map(|h| choreoscope_sdk::EventContext::extract(h, &Default::default()));
    stamp(
        OutgoingEvent::new(
            topic,
            if cause.is_some() {
                "PaymentCaptured"
            } else {
                "OrderCreated"
            },
        )
        .subject(format!("order/o-{}", i / 2))
        .content_type("application/json")
        .business_key("order.id", format!("o-{}", i / 2)),
        "bench",
        cause.as_ref(),
        &opentelemetry::Context::new(),
    )
    .unwrap()
    .headers
}

const PAYLOAD: &[u8] =
    br#"{"orderId":"o-1","amount":4200,"currency":"EUR","lines":[{"sku":"A-1","qty":2}]}"#;

/// Interpreted records of `n / 2` two-event flows.
fn records(n: usize) -> Vec<EventRecord> {
    let interpreter = Interpreter::new(Rules::default(), 64 * 1024);
    let mut out = Vec::with_capacity(n);
    let mut cause = None;
    for i in 0..n {
        let h = headers("orders", i, if i % 2 == 1 { cause.as_ref() } else { None });
        out.push(interpreter.interpret(
            RawRecord {
                topic: "orders",
                partition: (i % 3) as i32,
                offset: i as i64,
                key: Some(b"o-1"),
                payload: Some(PAYLOAD),
                headers: &h,
                timestamp_ms: Some(1_700_000_000_000 + i as i64),
            },
            0,
        ));
        cause = Some(h);
    }
    out
}

/// Interpretation alone, in events/s (best of three passes over the same raw records), with
/// `redaction`.
fn interpret_rate(redaction: Redaction, raw: &[(RecordHeaders, usize)]) -> f64 {
    let interpreter = Interpreter::new(Rules::default(), 64 * 1024).with_redaction(redaction);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for (h, i) in raw {
            std::hint::black_box(interpreter.interpret(
                RawRecord {
                    topic: "orders",
                    partition: (i % 3) as i32,
                    offset: *i as i64,
                    key: Some(b"o-1"),
                    payload: Some(PAYLOAD),
                    headers: h,
                    timestamp_ms: Some(1_700_000_000_000 + *i as i64),
                },
                0,
            ));
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    raw.len() as f64 / best
}

/// What redaction at ingest costs the interpretation: no redaction (the baseline), the default
/// (credential headers dropped; one record in ten carries an `authorization` header), and pointer
/// rules on the topic (a hash and a wildcard mask: every payload parsed and rewritten).
fn redaction_cost(n: usize) {
    let raw: Vec<(RecordHeaders, usize)> = (0..n)
        .map(|i| {
            let mut h = headers("orders", i, None);
            if i % 10 == 0 {
                h.push("authorization", Some(b"Bearer abc".to_vec()));
            }
            (h, i)
        })
        .collect();
    let table = |text: &str| {
        let table: RedactionTable = toml::from_str(text).unwrap();
        Redaction::from_table(&table, |_| Some("bench-key-0123456789abcdef".into())).unwrap()
    };
    let none = interpret_rate(table("drop_headers = []"), &raw);
    let default = interpret_rate(Redaction::default(), &raw);
    let pointers = interpret_rate(
        table("[[topics]]\ntopics = 'orders'\nhash = ['/orderId']\nmask = ['/lines/*/sku']"),
        &raw,
    );
    for (label, rate) in [
        ("interpret, no redaction", none),
        ("interpret, default header redaction", default),
        ("interpret, pointer rules (hash + mask)", pointers),
    ] {
        println!("{label:<LABEL$} {rate:>12.0} {:>8.2}", rate / none);
    }
}

async fn store_only(url: &str, label: &str, records: &[EventRecord]) {
    let store = Store::connect(url).await.unwrap();
    let start = Instant::now();
    for batch in records.chunks(5000) {
        store.write_batch(batch).await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:<LABEL$} {:>12.0}",
        format!("store only, {label} (write_batch of 5000)"),
        records.len() as f64 / secs
    );
}

/// Writes `new` into `store` in batches of 5000; events/s.
async fn write_rate(store: &Store, new: &[EventRecord]) -> f64 {
    let start = Instant::now();
    for batch in new.chunks(5000) {
        store.write_batch(batch).await.unwrap();
    }
    new.len() as f64 / start.elapsed().as_secs_f64()
}

/// A fresh store: a new PostgreSQL database on `pg` when given, else SQLite file `i` in `dir`.
async fn fresh_store(dir: &std::path::Path, pg: Option<&str>, i: usize) -> Store {
    let url = match pg {
        Some(admin) => fresh_pg(admin).await.0,
        None => format!(
            "sqlite://{}",
            dir.join(format!("retention-{i}.db")).display()
        ),
    };
    Store::connect(&url).await.unwrap()
}

/// The ingest rate with retention deleting in the background, against the rate without it:
/// `pairs` pairs of fresh stores ([`fresh_store`]), each filled with `old` (all past a one-day
/// retention) and then written `new`, alternately without and with `retention::run` (its default
/// batch and pause) started just before. Returns the summed rates (without, with) and the events
/// retention deleted while the `new` events were written.
async fn retention_cost(
    dir: &std::path::Path,
    pg: Option<&str>,
    old: &[EventRecord],
    new: &[EventRecord],
    pairs: usize,
) -> (f64, f64, u64) {
    use choreoscope::retention::{self, RetentionSettings};
    let (mut without, mut with, mut deleted) = (0.0, 0.0, 0);
    for pair in 0..pairs {
        for on in [false, true] {
            let store = fresh_store(dir, pg, 2 * pair + usize::from(on)).await;
            for batch in old.chunks(5000) {
                store.write_batch(batch).await.unwrap();
            }
            let stop = tokio_util::sync::CancellationToken::new();
            let metrics = std::sync::Arc::new(choreoscope::metrics::Metrics::new());
            let task = on.then(|| {
                tokio::spawn(retention::run(
                    store.clone(),
                    RetentionSettings {
                        max_age: Some(Duration::from_secs(24 * 3600)),
                        ..RetentionSettings::default()
                    },
                    choreoscope::clock::Clock::System,
                    metrics.clone(),
                    stop.clone(),
                ))
            });
            let rate = write_rate(&store, new).await;
            stop.cancel();
            if let Some(task) = task {
                task.await.unwrap();
                deleted += metrics.retention_deleted_events.get();
                with += rate;
            } else {
                without += rate;
            }
            store.close().await;
        }
    }
    (without, with, deleted)
}

/// Retention's cost to ingest (issue 21), on each store: see [`retention_cost`]. `BENCH_OLD`
/// old events (default 200 000) are being deleted while `BENCH_EVENTS` new ones (at most
/// 100 000) are written; `BENCH_RETENTION_PAIRS` pairs (default 2).
fn retention_report(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    n: usize,
    pg: Option<&str>,
) {
    let now = choreoscope::clock::now_us();
    // Two days old: past the one-day retention (the SDK stamps each record's event time now).
    let two_days_ago = now - 2 * 24 * 3600 * 1_000_000;
    let old: Vec<EventRecord> = records(env_usize("BENCH_OLD", 200_000))
        .into_iter()
        .map(|mut e| {
            e.time_us = two_days_ago + e.offset;
            e.broker_time_us = Some(e.time_us);
            e
        })
        .collect();
    let new: Vec<EventRecord> = records(n.min(100_000))
        .into_iter()
        .map(|mut e| {
            e.offset += 100_000_000;
            e.time_us = now;
            e.broker_time_us = Some(now);
            e
        })
        .collect();
    let pairs = env_usize("BENCH_RETENTION_PAIRS", 2);
    if pg.is_none() {
        println!("retention, PostgreSQL: skipped (set BENCH_PG)");
    }
    for (label, pg) in [("SQLite", None), ("PostgreSQL", pg)] {
        if label == "PostgreSQL" && pg.is_none() {
            continue;
        }
        let (without, with, deleted) = rt.block_on(retention_cost(dir, pg, &old, &new, pairs));
        println!(
            "{:<LABEL$} {:>12.0}",
            format!("store only, {label}, no retention"),
            without / pairs as f64
        );
        println!(
            "{:<LABEL$} {:>12.0} {:>8.2}   ({deleted} old events deleted meanwhile)",
            format!("store only, {label}, retention deleting"),
            with / pairs as f64,
            with / without
        );
    }
    println!(
        "target: ingest with retention deleting at least {TARGET_RETENTION_RATIO:.2} of the rate without"
    );
}

/// Issue 21: ingest with retention deleting in the background, as a ratio to without.
const TARGET_RETENTION_RATIO: f64 = 0.9;

async fn produce(brokers: &str, topic: &str, n: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .unwrap();
    stream::iter(0..n)
        .map(|i| {
            let h = headers(topic, i, None);
            let producer = &producer;
            async move {
                producer
                    .send(
                        FutureRecord::to(topic)
                            .key("o-1")
                            .payload(PAYLOAD)
                            .headers(h.to_kafka()),
                        Timeout::After(Duration::from_secs(30)),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
        })
        .buffer_unordered(2000)
        .count()
        .await;
}

/// Rates of one end-to-end measure: over the whole run, and from the tenth of the records on.
#[derive(Clone, Copy)]
struct Rates {
    whole: f64,
    steady: f64,
    /// CPU time (user + system, every thread) per record of the consuming process, µs.
    cpu_us: f64,
}

impl Rates {
    /// `n` records counted from `start`; the tenth of them was reached at `tenth`; `cpu` the
    /// consumer's CPU time meanwhile.
    fn of(n: usize, start: Instant, tenth: Instant, cpu: Duration) -> Self {
        let end = Instant::now();
        Self {
            whole: n as f64 / (end - start).as_secs_f64(),
            steady: (n - n / 10) as f64 / (end - tenth).as_secs_f64(),
            cpu_us: cpu.as_secs_f64() * 1e6 / n as f64,
        }
    }
}

/// CPU time (user + system) of this process so far, every thread included (librdkafka's).
fn own_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// CPU time (user + system) of process `pid` so far, from `/proc/PID/stat`.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (in parentheses, maybe with spaces) come fields 3…: utime is the
    // 14th field, stime the 15th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(ticks as f64 / hz)
}

/// Reads the whole topic with a bare consumer of configuration `config`.
async fn raw_consume(config: ClientConfig, topic: &str, n: usize) -> Rates {
    let cpu = own_cpu();
    let consumer: StreamConsumer = config.create().unwrap();
    // Subscribe, as the collector does, so both pay the same group protocol.
    consumer.subscribe(&[topic]).unwrap();
    let start = Instant::now();
    let mut tenth = start;
    for i in 0..n {
        let m = match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Ok(m) => m.unwrap(),
            Err(_) => panic!("raw consumer stalled after {i} of {n} records"),
        };
        std::hint::black_box(rdkafka::Message::payload(&m));
        if i + 1 == n / 10 {
            tenth = Instant::now();
        }
    }
    Rates::of(n, start, tenth, own_cpu() - cpu)
}

/// A consumer group of its own: every consumer of the run reads the topic from its start.
fn fresh_group(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// librdkafka's defaults, with the collector's group and offset settings (information only).
fn default_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", fresh_group("bench-raw"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    config
}

/// The arguments [`collector`] runs `choreoscope` with.
fn collect_args(brokers: &str, topic: &str, db: &str, listen: &str, group: &str) -> Vec<String> {
    [
        "collect",
        "--brokers",
        brokers,
        "--db",
        db,
        "--listen",
        listen,
        "--include",
        topic,
        "--group",
        group,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Exactly the client configuration of the consumer [`collector`] starts for the store `db` of
/// `profile`: its arguments (and the `CHOREOSCOPE_*` environment it inherits) read by the
/// binary's own parser, then the ingest loop's own settings (`ingest::consumer_config`). Only the
/// group differs (one of its own) and the consumer around it: no interpretation, no store, and
/// librdkafka's default context instead of the collector's lag gauges.
fn collector_config(brokers: &str, topic: &str, db: &str, profile: &StoreProfile) -> ClientConfig {
    let args = collect_args(brokers, topic, db, "127.0.0.1:0", &fresh_group("bench-raw"));
    let cli = Cli::try_parse_from(std::iter::once("choreoscope".to_owned()).chain(args))
        .expect("the collector's arguments parse");
    let Command::Collect(collect) = cli.command else {
        unreachable!("a collect command")
    };
    let config = collect
        .ingest_config(Default::default())
        .expect("the benchmark's flags are consistent");
    consumer_config(&config, profile)
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the collector binary until it has ingested `n` events; returns (events/s, peak RSS KiB).
fn collector(brokers: &str, topic: &str, db: &str, n: usize) -> (Rates, u64) {
    collector_with(brokers, topic, db, n, None, false)
}

/// [`collector`] with flow health forced on (`Some(true)`: `CHOREOSCOPE_NO_FLOW_HEALTH` removed
/// from its environment) or off (`Some(false)`: `--no-flow-health`); `None` leaves it to the
/// environment. With `flood`, the collector runs under a descriptor limit of
/// [`FLOOD_DESCRIPTORS`] and [`Flood`] holds more connections and live streams open on its HTTP
/// port than that for the whole run; without, under the same limit and nothing else.
fn collector_with(
    brokers: &str,
    topic: &str,
    db: &str,
    n: usize,
    flow_health: Option<bool>,
    flood: bool,
) -> (Rates, u64) {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    };
    let listen = free();
    // The bench reads progress from `/metrics` on an ops address of its own (`--ops-listen`), in
    // every run: on the main address a flood at its caps would refuse the bench's own probe, and
    // the runs would measure when the bench got through rather than when ingest finished.
    let ops = free();
    let binary = std::env::var("BENCH_COLLECTOR")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_choreoscope").to_owned());
    let mut command = std::process::Command::new(binary);
    command
        .args(collect_args(
            brokers,
            topic,
            db,
            &listen,
            &fresh_group("bench"),
        ))
        .args(["--ops-listen", &ops])
        .env("RUST_LOG", "warn");
    match flow_health {
        Some(true) => {
            command.env_remove("CHOREOSCOPE_NO_FLOW_HEALTH");
        }
        Some(false) => {
            command.arg("--no-flow-health");
        }
        None => {}
    }
    if flood {
        limit_descriptors(&mut command, FLOOD_DESCRIPTORS);
    }
    let mut child = command.spawn().unwrap();
    let start = Instant::now();
    let flooding = flood.then(|| Flood::start(&listen));
    let mut tenth = None;
    let mut peak = 0;
    loop {
        let count = ingested(&ops);
        if count >= (n / 10) as u64 && tenth.is_none() {
            tenth = Some(Instant::now());
        }
        if count >= n as u64 {
            break;
        }
        peak = peak.max(vm_hwm_kib(child.id()));
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "collector too slow"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Polled every 10 ms: the tenth is seen at most that late (the steady rate errs low).
    let rate = Rates::of(n, start, tenth.unwrap_or(start), cpu_of(child.id()));
    peak = peak.max(vm_hwm_kib(child.id()));
    if let Some(flooding) = flooding {
        let refused = flooding.stop();
        eprintln!("the flood was refused {refused} connections");
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    (rate, peak)
}

async fn pg_bytes(url: &str) -> u64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let (bytes,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
        .fetch_one(&pool)
        .await
        .unwrap();
    bytes as u64
}

/// Width of the measure column.
const LABEL: usize = 50;

/// One collector line: rates and their ratios to the like-for-like consumer's, bytes/event, peak
/// RSS (KiB).
fn report(label: &str, rate: Rates, raw: Rates, bytes_per_event: u64, rss_kib: u64) {
    println!(
        "{label:<LABEL$} {:>12.0} {:>8.2} {:>12.0} {:>8.2} {:>10.1} {bytes_per_event:>11} {:>6} MiB",
        rate.whole,
        rate.whole / raw.whole,
        rate.steady,
        rate.steady / raw.steady,
        rate.cpu_us,
        rss_kib / 1024
    );
}

/// One bare-consumer line; `baseline` when the ratios below are relative to it.
fn report_raw(label: &str, rate: Rates, baseline: bool) {
    let ratio = if baseline { "1.00" } else { "-" };
    println!(
        "{label:<LABEL$} {:>12.0} {ratio:>8} {:>12.0} {ratio:>8} {:>10.1}",
        rate.whole, rate.steady, rate.cpu_us
    );
}

/// Issue 3's target: into SQLite, at least half the like-for-like consumer's rate.
const TARGET_SQLITE_RATIO: f64 = 0.5;

/// Issue 18's target: with flow health on, at least this share of the rate with it off.
const TARGET_HEALTH_RATIO: f64 = 0.9;

/// The SQLite collector with flow health on and off, `pairs` times alternated (on, off, on, off:
/// drift cancels), each into a fresh store, on the same topic with the same settings; prints each
/// run against `baseline` (the like-for-like consumer), then the ratio on/off.
fn health_on_off(
    brokers: &str,
    topic: &str,
    dir: &std::path::Path,
    n: usize,
    pairs: usize,
    baseline: Rates,
) {
    let ratios = on_off(pairs, |round, on| {
        let path = dir.join(format!("health-{round}-{on}.db"));
        let url = format!("sqlite://{}", path.display());
        let (rate, rss) = collector_with(brokers, topic, &url, n, Some(on), false);
        let bytes = store_bytes(&path);
        let label = format!(
            "collector → SQLite, flow health {} ({round})",
            if on { "on" } else { "off" }
        );
        report(&label, rate, baseline, bytes / n as u64, rss);
        remove_store(&path);
        rate
    });
    println!(
        "flow health on/off, {pairs} alternated pair(s): rate ratio {:.2} whole (pairs: {}), \
         {:.2} steady; CPU per event ratio {:.2}",
        ratios.whole,
        ratios.pairs_whole.join(", "),
        ratios.steady,
        ratios.cpu
    );
    println!(
        "target: collector → SQLite with flow health on at least {TARGET_HEALTH_RATIO:.2} of its \
         rate with it off: {:.2} whole, {:.2} steady, {}",
        ratios.whole,
        ratios.steady,
        verdict(ratios.whole >= TARGET_HEALTH_RATIO)
    );
}

/// What [`on_off`] measured: the sums of the "on" runs over the sums of the "off" runs.
struct OnOff {
    whole: f64,
    steady: f64,
    cpu: f64,
    /// Each pair's whole-run ratio, formatted.
    pairs_whole: Vec<String>,
}

/// Runs `run(round, on)` for `pairs` rounds, on then off in each (drift cancels), and compares the
/// two sides.
fn on_off(pairs: usize, mut run: impl FnMut(usize, bool) -> Rates) -> OnOff {
    let mut runs: [Vec<Rates>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=pairs {
        for on in [true, false] {
            runs[usize::from(!on)].push(run(round, on));
        }
    }
    let sum = |rates: &[Rates], f: fn(&Rates) -> f64| rates.iter().map(f).sum::<f64>();
    OnOff {
        whole: sum(&runs[0], |r| r.whole) / sum(&runs[1], |r| r.whole),
        steady: sum(&runs[0], |r| r.steady) / sum(&runs[1], |r| r.steady),
        cpu: sum(&runs[0], |r| r.cpu_us) / sum(&runs[1], |r| r.cpu_us),
        pairs_whole: runs[0]
            .iter()
            .zip(&runs[1])
            .map(|(on, off)| format!("{:.2}", on.whole / off.whole))
            .collect(),
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT MET"
    }
}

/// Bytes of a SQLite store: the file, its log and its shared memory.
fn store_bytes(path: &std::path::Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// Deletes a SQLite store's files.
fn remove_store(path: &std::path::Path) {
    for s in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{s}", path.display()));
    }
}

/// Issue 22's target: with the HTTP port flooded, at least this share of the rate without.
const TARGET_FLOOD_RATIO: f64 = 0.8;

/// The descriptor limit (soft and hard) of the collector in the flood pairs, flooded or not.
const FLOOD_DESCRIPTORS: u64 = 1024;

/// Sets `command`'s descriptor limit, soft and hard, to `n`.
fn limit_descriptors(command: &mut std::process::Command, n: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit only changes the child's own limit, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Clients holding connections open on the collector's HTTP port: from each of three loopback
/// addresses, [`Flood::PER_ADDRESS`] connections, every other one a live stream, the rest idle;
/// those the collector refuses are opened again a second later (as `Retry-After` says), until
/// stopped. Together they ask for more than [`FLOOD_DESCRIPTORS`].
struct Flood {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<usize>>,
}

impl Flood {
    const PER_ADDRESS: usize = 900;
    const SOURCES: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

    fn start(listen: &str) -> Self {
        let target: std::net::SocketAddr = listen.parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(target).is_err() {
            assert!(Instant::now() < deadline, "the collector never listened");
            std::thread::sleep(Duration::from_millis(10));
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = Self::SOURCES
            .iter()
            .map(|source| {
                let stop = stop.clone();
                let source: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
                std::thread::spawn(move || Self::hold(source, target, &stop))
            })
            .collect();
        Self { stop, threads }
    }

    /// Keeps [`Flood::PER_ADDRESS`] connections from `source` open; returns how many were
    /// refused.
    fn hold(
        source: std::net::SocketAddr,
        target: std::net::SocketAddr,
        stop: &std::sync::atomic::AtomicBool,
    ) -> usize {
        use std::io::{Read, Write};
        let mut held: Vec<std::net::TcpStream> = Vec::new();
        let mut refused = 0;
        let mut opened = 0usize;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            while held.len() < Self::PER_ADDRESS {
                let socket =
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None);
                let Ok(socket) = socket else { break };
                if socket.bind(&source.into()).is_err() || socket.connect(&target.into()).is_err() {
                    break;
                }
                let mut tcp: std::net::TcpStream = socket.into();
                if opened % 2 == 0 {
                    let _ = tcp.write_all(
                        b"GET /api/v1/live?key=order.id%3Do-1 HTTP/1.1\r\nhost: x\r\n\r\n",
                    );
                }
                opened += 1;
                let _ = tcp.set_nonblocking(true);
                held.push(tcp);
            }
            std::thread::sleep(Duration::from_secs(1));
            // Drop what the collector refused (answered 429/503 and closed), to open it again.
            held.retain_mut(|tcp| {
                let mut head = [0u8; 12];
                match tcp.read(&mut head) {
                    Ok(0) => {
                        refused += 1;
                        false
                    }
                    Ok(_) if head.starts_with(b"HTTP/1.1 4") || head.starts_with(b"HTTP/1.1 5") => {
                        refused += 1;
                        false
                    }
                    Ok(_) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                }
            });
        }
        refused
    }

    /// Stops the flood and closes its connections; how many connections were refused.
    fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().unwrap_or(0))
            .sum()
    }
}

/// The SQLite collector with its HTTP port flooded and not, `pairs` times alternated, each into
/// a fresh store, on the same topic, both under the same descriptor limit; prints each run
/// against `baseline`, then the ratio flooded/unflooded.
fn flood_on_off(
    brokers: &str,
    topic: &str,
    dir: &std::path::Path,
    n: usize,
    pairs: usize,
    baseline: Rates,
) {
    let ratios = on_off(pairs, |round, flooded| {
        let path = dir.join(format!("flood-{round}-{flooded}.db"));
        let url = format!("sqlite://{}", path.display());
        let (rate, rss) = collector_with(brokers, topic, &url, n, None, flooded);
        let label = format!(
            "collector → SQLite, HTTP {} ({round})",
            if flooded { "flooded" } else { "quiet" }
        );
        report(&label, rate, baseline, 0, rss);
        remove_store(&path);
        rate
    });
    println!(
        "target: collector → SQLite with its HTTP port flooded at least {TARGET_FLOOD_RATIO:.2} of \
         its rate without: {:.2} whole (pairs: {}), {:.2} steady, {}",
        ratios.whole,
        ratios.pairs_whole.join(", "),
        ratios.steady,
        verdict(ratios.whole >= TARGET_FLOOD_RATIO)
    );
}

fn main() {
    let n = env_usize("BENCH_EVENTS", 200_000);
    let pg = std::env::var("BENCH_PG").ok();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();

    println!("collector ingest benchmark: {n} events, {PARTITIONS} partitions");
    println!(
        "{:<LABEL$} {:>12} {:>8} {:>12} {:>8} {:>10} {:>11} {:>10}",
        "measure",
        "events/s",
        "ratio",
        "steady ev/s",
        "ratio",
        "CPU µs/ev",
        "bytes/event",
        "peak RSS"
    );
    if std::env::var("BENCH_RETENTION_ONLY").is_ok() {
        retention_report(&rt, dir.path(), n, pg.as_deref());
        return;
    }
    redaction_cost(n.min(100_000));
    if std::env::var("BENCH_INTERPRET_ONLY").is_ok() {
        return;
    }
    let recs = records(n.min(100_000));
    rt.block_on(store_only(
        &format!("sqlite://{}", dir.path().join("s.db").display()),
        "SQLite",
        &recs,
    ));
    match &pg {
        Some(admin) => {
            rt.block_on(async { store_only(&fresh_pg(admin).await.0, "PostgreSQL", &recs).await })
        }
        None => println!("store only, PostgreSQL: skipped (set BENCH_PG)"),
    }
    drop(recs);
    retention_report(&rt, dir.path(), n, pg.as_deref());
    if std::env::var("BENCH_STORE_ONLY").is_ok() {
        return;
    }

    let Ok(brokers) = std::env::var("BENCH_BROKERS") else {
        println!("end to end: skipped (set BENCH_BROKERS, or run scripts/bench)");
        return;
    };
    let topic = rt.block_on(fresh_topic(&brokers, "bench-ingest", PARTITIONS));
    eprintln!("producing {n} events to {brokers}");
    rt.block_on(produce(&brokers, &topic, n));
    eprintln!("consuming them with bare consumers, then the collector");
    let defaults = rt.block_on(raw_consume(default_config(&brokers), &topic, n));
    report_raw(
        "raw consume, librdkafka defaults (information)",
        defaults,
        false,
    );

    // Each store's collector against a bare consumer with exactly its consumer configuration,
    // measured just before it on the same topic.
    let sqlite_path = dir.path().join("e2e.db");
    let sqlite_url = format!("sqlite://{}", sqlite_path.display());
    let baseline = rt.block_on(raw_consume(
        collector_config(&brokers, &topic, &sqlite_url, &StoreProfile::SQLITE),
        &topic,
        n,
    ));
    report_raw(
        "raw consume, the collector's config for SQLite",
        baseline,
        true,
    );
    let (rate, rss) = collector(&brokers, &topic, &sqlite_url, n);
    let bytes = store_bytes(&sqlite_path);
    report("collector → SQLite", rate, baseline, bytes / n as u64, rss);
    let ratios = (rate.whole / baseline.whole, rate.steady / baseline.steady);
    // BENCH_HEALTH_PAIRS=0 skips the flow health pairs (4 more collector runs by default).
    let pairs = env_usize("BENCH_HEALTH_PAIRS", 2);
    if pairs > 0 {
        health_on_off(&brokers, &topic, dir.path(), n, pairs, baseline);
    }
    // BENCH_FLOOD_PAIRS=0 skips the HTTP flood pairs (issue 22).
    let flood_pairs = env_usize("BENCH_FLOOD_PAIRS", 1);
    if flood_pairs > 0 {
        flood_on_off(&brokers, &topic, dir.path(), n, flood_pairs, baseline);
    }
    if let Some(admin) = &pg {
        let url = rt.block_on(fresh_pg(admin)).0;
        let baseline = rt.block_on(raw_consume(
            collector_config(&brokers, &topic, &url, &StoreProfile::POSTGRES),
            &topic,
            n,
        ));
        report_raw(
            "raw consume, the collector's config for PostgreSQL",
            baseline,
            true,
        );
        let (rate, rss) = collector(&brokers, &topic, &url, n);
        let bytes = rt.block_on(pg_bytes(&url));
        report(
            "collector → PostgreSQL",
            rate,
            baseline,
            bytes / n as u64,
            rss,
        );
    }
    println!(
        "target: collector → SQLite at least {TARGET_SQLITE_RATIO:.2} of the like-for-like \
         consumer's rate: {:.2} whole, {:.2} steady, {}",
        ratios.0,
        ratios.1,
        verdict(ratios.0 >= TARGET_SQLITE_RATIO)
    );
    // Collectors before the subscription was narrowed by `--include` read every topic of the
    // cluster, so a topic left behind slowed the next run's by 30 %. `BENCH_KEEP_TOPIC=1` leaves
    // it, to measure a collector on a broker holding other busy topics.
    if std::env::var("BENCH_KEEP_TOPIC").is_ok() {
        println!("topic {topic} kept on the broker (BENCH_KEEP_TOPIC)");
        return;
    }
    if let Err(e) = rt.block_on(delete_topic(&brokers, &topic)) {
        eprintln!(
            "bench topic {topic} not deleted ({e}): the next run on this broker reads it too"
        );
    }
}
