//! Query benchmark over a store of at least a million events, reported as figures of one run:
//! - p50/p99 latency of the key query (`GET /api/v1/keys/order.id/{value}`, 50-event flows),
//! - p50/p99 latency of a 1,000-node lineage (`GET /api/v1/events/{root}/lineage?direction=down`),
//! - requests/s of the key query under concurrent load from `wrk` (random keys), when `wrk` is
//!   installed (`scripts/bench` installs it).
//!
//! All requests go through the real HTTP server. Without `BENCH_PG` only SQLite is measured;
//! `BENCH_SKIP_SQLITE=1` measures only PostgreSQL.
//!
//! ```text
//! scripts/bench
//! BENCH_FLOWS=20000 BENCH_PG=postgres://postgres@127.0.0.1/postgres cargo bench -p choreoscope --bench query
//! ```

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use choreoscope::http::{app, AppState};
use choreoscope::metrics::Metrics;
use choreoscope::store::Store;

mod common;
use common::{env_usize, record};

const FLOW_EVENTS: usize = 50;
const BIG_FLOW: usize = 1000;
async fn fill(store: &Store, flows: usize) {
    let base = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(5000);
    let mut offset = 0;
    for flow in 0..flows {
        for i in 0..FLOW_EVENTS {
            batch.push(record(
                flow,
                i,
                (i > 0).then(|| (i - 1) / 2),
                offset,
                base + flow as i64 * 100_000,
            ));
            offset += 1;
        }
        if batch.len() >= 5000 {
            store.write_batch(&batch).await.unwrap();
            batch.clear();
        }
    }
    // The big flow: a tree of 1,000 events, four reactions per event.
    for i in 0..BIG_FLOW {
        batch.push(record(flows, i, (i > 0).then(|| (i - 1) / 4), offset, base));
        offset += 1;
    }
    store.write_batch(&batch).await.unwrap();
    eprintln!("  filled {} events in {:.1?}", offset, started.elapsed());
}

/// One HTTP/1.0 GET; returns the status line's code and the body length.
fn get(addr: SocketAddr, path: &str) -> (u16, usize) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    let status = std::str::from_utf8(&body[9..12]).unwrap().parse().unwrap();
    (status, body.len())
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at =
        |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    (
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
    )
}

fn latency(addr: SocketAddr, paths: &[String]) -> (f64, f64) {
    let samples = paths
        .iter()
        .map(|p| {
            let t = Instant::now();
            let (status, _) = get(addr, p);
            assert_eq!(status, 200, "{p}");
            t.elapsed()
        })
        .collect();
    percentiles(samples)
}

fn wrk(addr: SocketAddr, flows: usize) -> Option<String> {
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        script.path(),
        format!(
            "math.randomseed(7)\nrequest = function()\n  return wrk.format('GET', '/api/v1/keys/order.id/o-' .. math.random(0, {}))\nend\n",
            flows - 1
        ),
    )
    .unwrap();
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c16", "-d10s", "-s"])
        .arg(script.path())
        .arg(format!("http://{addr}/"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("Requests/sec"))
        .map(|l| l.split_whitespace().last().unwrap_or("?").to_owned())
}

async fn run(url: &str, label: &str, flows: usize) {
    let store = Store::connect(url).await.unwrap();
    fill(&store, flows).await;
    // Measure the steady state, not the seconds after a bulk load: fold SQLite's write-ahead log
    // into the database first (the background checkpointer would, while the first queries run).
    if let Store::Sqlite(s) = &store {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(s.pool())
            .await
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(AppState {
        store: store.clone(),
        metrics: Arc::new(Metrics::new()),
        live: choreoscope::live::LiveFeed::new(),
        health: Default::default(),
        groups: Default::default(),
        progress: Default::default(),
        redaction: Default::default(),
    });
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let keys: Vec<String> = (0..500)
        .map(|i| format!("/api/v1/keys/order.id/o-{}", (i * 7919) % flows))
        .collect();
    let root = format!("{flows:08}-0000-0000-7000-8000-000000000000");
    let (status, _) = tokio::task::spawn_blocking(move || get(addr, "/api/v1/keys/order.id/o-0"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let lineage_path = format!("/api/v1/events/{root}/lineage?direction=down&depth=100");
    let check = lineage_path.clone();
    let nodes = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {check} HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("{}").to_owned();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["nodes"].as_array().map_or(0, Vec::len)
    })
    .await
    .unwrap();
    assert_eq!(
        nodes, BIG_FLOW,
        "the lineage answer holds the whole 1,000-event flow"
    );

    let (kp50, kp99) = tokio::task::spawn_blocking(move || latency(addr, &keys))
        .await
        .unwrap();
    // BENCH_LINEAGE_REPEAT: more lineage samples (e.g. to profile the walk); default 50.
    let lineage_paths = vec![lineage_path; env_usize("BENCH_LINEAGE_REPEAT", 50)];
    let (lp50, lp99) = tokio::task::spawn_blocking(move || latency(addr, &lineage_paths))
        .await
        .unwrap();
    let rps = tokio::task::spawn_blocking(move || wrk(addr, flows))
        .await
        .unwrap();
    println!(
        "{:<12} {:>12.2} {:>12.2} {:>14.2} {:>14.2} {:>14}",
        label,
        kp50,
        kp99,
        lp50,
        lp99,
        rps.unwrap_or_else(|| "(no wrk)".into())
    );
    server.abort();
    store.close().await;
}

fn main() {
    let flows = env_usize("BENCH_FLOWS", 20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "query benchmark: {} events ({flows} flows of {FLOW_EVENTS}, plus one of {BIG_FLOW}); latencies in ms",
        flows * FLOW_EVENTS + BIG_FLOW
    );
    println!(
        "{:<12} {:>12} {:>12} {:>14} {:>14} {:>14}",
        "store", "key p50", "key p99", "lineage p50", "lineage p99", "key req/s"
    );
    rt.block_on(common::on_each_store("query.db", |url, label| async move {
        run(&url, label, flows).await
    }));
}
