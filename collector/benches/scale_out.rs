//! Scale-out benchmark: events/s with 1, 2 and 3 `choreoscope collect` processes in one consumer
//! group writing into one PostgreSQL database, and where the CPU goes in each run.
//!
//! One topic of `BENCH_EVENTS` SDK-stamped events (default 200 000) in 6 partitions is produced
//! once; then, for each count of collectors, a fresh database and a fresh group: that many
//! collector binaries start at the same moment (`--no-flow-health`, the documented shape: flow
//! health is `serve`'s) and the run ends when the store holds every event. Same topic, same
//! settings, same machine, in one run: the rates compare like with like.
//!
//! Reported per run: the whole rate (start of the processes, group join and first fetch included),
//! the steady one (from the tenth of the events on), the all-in one (from the moment every
//! collector had ingested an event — the group had settled, the time after start in brackets —
//! to the end: the rate of the collectors sharing the partitions), then CPU time per event of the collectors
//! (all of them), of the PostgreSQL backends serving the run's database, of PostgreSQL's shared
//! background processes (WAL writer, checkpointer…: the whole server's, other databases'
//! included), and of the broker; and the machine's busy share of its cores over the run (from
//! `/proc/stat`: everything on the machine, so a busy neighbour shows here).
//!
//! The events are produced one per producer batch: members joining at once rebalance while they
//! fetch, and tansu serves a fetch starting inside a batch from the next batch (docs/collector.md,
//! "Test broker"), which would lose records — the run would never end. A real cluster needs
//! nothing of the kind; the per-record fetch cost is the same in every run.
//!
//! ```text
//! scripts/bench                                        # starts tansu and PostgreSQL
//! BENCH_BROKERS=127.0.0.1:9092 BENCH_PG=postgres://postgres@127.0.0.1/postgres \
//!     cargo bench -p choreoscope --bench scale_out
//! ```
//! `BENCH_SCALE_COLLECTORS=1,2,3` (the default) chooses the runs, in that order;
//! `BENCH_SCALE_ROUNDS=2` repeats them in reverse order (1 2 3 3 2 1) so drift cancels.

use std::time::{Duration, Instant};

use choreoscope_sdk::{stamp, OutgoingEvent};
use futures::stream::{self, StreamExt};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

mod common;

use common::cluster::{delete_topic, fresh_pg, fresh_topic, ingested};
use common::env_usize;

const PARTITIONS: i32 = 6;

const PAYLOAD: &[u8] =
    br#"{"orderId":"o-1","amount":4200,"currency":"EUR","lines":[{"sku":"A-1","qty":2}]}"#;

/// Produces `n` SDK-stamped events (orders `o-0`…`o-4999`), one per producer batch.
async fn produce(brokers: &str, topic: &str, n: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("batch.num.messages", "1")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .unwrap();
    stream::iter(0..n)
        .map(|i| {
            let key = format!("o-{}", i % 5000);
            let headers = stamp(
                OutgoingEvent::new(topic, "OrderCreated")
                    .content_type("application/json")
                    .business_key("order.id", key.as_str()),
                "bench",
                None,
                &opentelemetry::Context::new(),
            )
            .unwrap()
            .headers;
            let producer = &producer;
            async move {
                producer
                    .send(
                        FutureRecord::to(topic)
                            .key(&key)
                            .payload(PAYLOAD)
                            .headers(headers.to_kafka()),
                        Timeout::After(Duration::from_secs(60)),
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

/// Clock ticks (user + system) of process `pid` so far; 0 once it is gone.
fn ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (in parentheses, maybe with spaces): utime is field 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum()
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// Processes whose command line satisfies `wanted`.
fn pids_where(wanted: impl Fn(&str) -> bool) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| wanted(&String::from_utf8_lossy(&c).replace('\0', " ")))
                .unwrap_or(false)
        })
        .collect()
}

/// PostgreSQL's own processes: the server's background ones (not serving a client).
fn pg_background() -> Vec<u32> {
    pids_where(|c| {
        c.starts_with("postgres: ")
            && [
                "checkpointer",
                "background writer",
                "walwriter",
                "autovacuum",
                "logical replication launcher",
                "stats",
            ]
            .iter()
            .any(|w| c.contains(w))
    })
}

/// The machine's (busy, total) jiffies over every core so far, from `/proc/stat`.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = cpu.iter().sum();
    // idle and iowait
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// One run's figures.
struct Run {
    collectors: usize,
    whole: f64,
    steady: f64,
    /// The rate from the moment every collector had ingested an event (the group settled) to the
    /// end, and that moment (s after start); none when one never got a partition in time.
    shared: Option<f64>,
    settled: Option<f64>,
    /// CPU µs per event: the collectors, the run database's backends, PostgreSQL's background
    /// processes, the broker.
    cpu_collectors: f64,
    cpu_backends: f64,
    cpu_pg_background: f64,
    cpu_broker: f64,
    /// The machine's busy share of its cores over the run.
    busy: f64,
    /// Events each collector ingested.
    shares: Vec<u64>,
}

/// `k` collectors in one fresh group into one fresh database until it holds all `n` events.
async fn run(brokers: &str, admin: &str, topic: &str, n: usize, k: usize) -> Run {
    let (db, name) = fresh_pg(admin).await;
    // Migrated before the clock starts: the first run would otherwise pay it alone.
    let store = choreoscope::store::Store::connect(&db).await.unwrap();
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let group = format!("bench-scale-{}", uuid::Uuid::new_v4().simple());
    let broker = brokers.rsplit(':').next().unwrap_or_default().to_owned();
    let broker_pids = pids_where(|c| c.contains("tansu") && c.contains(&format!(":{broker}")));
    let hz = clock_ticks_per_second();
    let background = pg_background();
    let background_0: u64 = background.iter().map(|&p| ticks(p)).sum();
    let broker_0: u64 = broker_pids.iter().map(|&p| ticks(p)).sum();
    let machine_0 = machine_jiffies();
    let start = Instant::now();
    let mut children: Vec<(std::process::Child, String)> = (0..k)
        .map(|_| {
            let listen = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .to_string();
            let child = std::process::Command::new(env!("CARGO_BIN_EXE_choreoscope"))
                .args([
                    "collect",
                    "--brokers",
                    brokers,
                    "--db",
                    &db,
                    "--listen",
                    &listen,
                ])
                .args(["--include", topic, "--group", &group, "--no-flow-health"])
                .args([
                    "--group-poll-every",
                    "0",
                    "--otlp-grpc",
                    "off",
                    "--otlp-http",
                    "off",
                ])
                .env("RUST_LOG", "warn")
                .spawn()
                .unwrap();
            (child, listen)
        })
        .collect();
    let mut tenth = None;
    let mut all_in = None;
    loop {
        let each: Vec<u64> = children.iter().map(|(_, l)| ingested(l)).collect();
        let sum: u64 = each.iter().sum();
        if tenth.is_none() && sum >= (n / 10) as u64 {
            tenth = Some(Instant::now());
        }
        if all_in.is_none() && each.iter().all(|&e| e > 0) {
            all_in = Some((Instant::now(), sum));
        }
        if sum >= n as u64 {
            break;
        }
        for (child, _) in &mut children {
            assert!(child.try_wait().unwrap().is_none(), "a collector exited");
        }
        assert!(start.elapsed() < Duration::from_secs(1800), "too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The metrics count what the store took in; the store confirms it.
    let counts = store.counts().await.unwrap();
    let end = Instant::now();
    assert_eq!(
        (counts.events, counts.deliveries),
        (n as i64, n as i64),
        "every event once"
    );
    let machine_1 = machine_jiffies();
    let collector_ticks: u64 = children.iter().map(|(c, _)| ticks(c.id())).sum();
    let shares: Vec<u64> = children.iter().map(|(_, l)| ingested(l)).collect();
    let backends: Vec<(i32,)> = sqlx::query_as(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .fetch_all(&pool)
    .await
    .unwrap();
    // Every backend of the run's database was started by this run: its ticks are all the run's
    // (the store handle's and the pool's here are idle).
    let backend_ticks: u64 = backends.iter().map(|&(p,)| ticks(p as u32)).sum();
    let background_ticks = background.iter().map(|&p| ticks(p)).sum::<u64>() - background_0;
    let broker_ticks = broker_pids.iter().map(|&p| ticks(p)).sum::<u64>() - broker_0;
    for (child, _) in &mut children {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap();
    }
    pool.close().await;
    store.close().await;
    let us = |t: u64| t as f64 / hz * 1e6 / n as f64;
    let tenth = tenth.unwrap_or(start);
    let (shared, settled) = match all_in {
        Some((at, done)) if done < n as u64 => (
            Some((n as u64 - done) as f64 / (end - at).as_secs_f64()),
            Some((at - start).as_secs_f64()),
        ),
        _ => (None, None),
    };
    Run {
        collectors: k,
        whole: n as f64 / (end - start).as_secs_f64(),
        steady: (n - n / 10) as f64 / (end - tenth).as_secs_f64(),
        shared,
        settled,
        cpu_collectors: us(collector_ticks),
        cpu_backends: us(backend_ticks),
        cpu_pg_background: us(background_ticks),
        cpu_broker: us(broker_ticks),
        busy: (machine_1.0 - machine_0.0) as f64 / (machine_1.1 - machine_0.1).max(1) as f64,
        shares,
    }
}

fn main() {
    let n = env_usize("BENCH_EVENTS", 200_000);
    let (Ok(brokers), Ok(admin)) = (std::env::var("BENCH_BROKERS"), std::env::var("BENCH_PG"))
    else {
        println!("scale-out: skipped (set BENCH_BROKERS and BENCH_PG, or run scripts/bench)");
        return;
    };
    let mut counts: Vec<usize> = std::env::var("BENCH_SCALE_COLLECTORS")
        .unwrap_or_else(|_| "1,2,3".into())
        .split(',')
        .filter_map(|k| k.trim().parse().ok())
        .collect();
    if env_usize("BENCH_SCALE_ROUNDS", 1) >= 2 {
        let back: Vec<usize> = counts.iter().rev().copied().collect();
        counts.extend(back);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let topic = rt.block_on(fresh_topic(&brokers, "bench-scale", PARTITIONS));
    let produced = Instant::now();
    rt.block_on(produce(&brokers, &topic, n));
    eprintln!("produced {n} events in {:?}", produced.elapsed());
    // SAFETY: getloadavg writes at most 3 doubles into the array it is given.
    let load = unsafe {
        let mut l = [0f64; 3];
        libc::getloadavg(l.as_mut_ptr(), 3);
        l
    };
    println!(
        "scale-out benchmark: {n} events, {PARTITIONS} partitions, one PostgreSQL; {} cores; load before: {:.1}",
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        load[0]
    );
    println!(
        "{:>10} {:>10} {:>12} {:>6} {:>15}   CPU µs/event: {:>10} {:>9} {:>9} {:>7}  {:>9}  per collector",
        "collectors",
        "events/s",
        "steady ev/s",
        "ratio",
        "all-in ev/s",
        "collectors",
        "PG backs",
        "PG bkgd",
        "broker",
        "busy"
    );
    let mut first = None;
    for k in counts {
        let r = rt.block_on(run(&brokers, &admin, &topic, n, k));
        let base = *first.get_or_insert(r.steady);
        println!(
            "{:>10} {:>10.0} {:>12.0} {:>6.2} {:>15}                 {:>10.1} {:>9.1} {:>9.1} {:>7.1}  {:>8.0}%  {:?}",
            r.collectors,
            r.whole,
            r.steady,
            r.steady / base,
            match (r.shared, r.settled) {
                (Some(rate), Some(at)) => format!("{rate:.0} ({at:.1} s)"),
                _ => "-".to_owned(),
            },
            r.cpu_collectors,
            r.cpu_backends,
            r.cpu_pg_background,
            r.cpu_broker,
            r.busy * 100.0,
            r.shares
        );
    }
    let _ = rt.block_on(delete_topic(&brokers, &topic));
}
