//! Flow health benchmark (issue 18), reported as figures of one run over a store of 1,000,000
//! events in 20,000 flows of 50 (`BENCH_FLOWS`), all within the last hour:
//!
//! - each flow is a checkout: `order/OrderCreated` → `payment/PaymentCreated` →
//!   `bank/PaymentConfirmed` → 23 × `inventory/InventoryReserved` → `shipping/ItemShipped`, and
//!   `notification/EmailSent` after the confirmation; 2 % of the flows are stalled (two lines
//!   never shipped, or one line never shipped and no email), 0.5 % failed (two lines never
//!   shipped, one of them dead-lettered by `shipping-group`: a dead-letter record written through
//!   `write_batch`);
//! - the tracker is fed as the collector's live feed does (every event through
//!   `HealthHandle::observe`, in batches of 5,000 as written), then the collector's first tick
//!   (the model learns from the settled events, every flow is reassessed) after the dead letters
//!   are read from the store: the backfill at start reads at most 200,000 events, so it cannot
//!   fill a tracker of a million;
//! - then, through the real HTTP server over TCP (one connection per request):
//!   `GET /api/v1/flows?status=stalled`, `GET /api/v1/flows/summary` and
//!   `GET /api/v1/keys/order.id/o-N` (random flows; the answer carries each flow's health),
//!   p50/p99 of sequential requests with nothing else running, then again while the collector's
//!   1 s tick runs (a sweep of every flow each 10 s, under the tracker's lock) for
//!   `BENCH_TICKED_SECS` (default 20; 0 skips it) per request kind, the requests due on a fixed
//!   schedule and timed from when due (so a request held up by a sweep also delays those due
//!   meanwhile, as arriving clients would be), after the same schedule with the tracker idle for
//!   half as long (the control);
//! - the same answers computed in-process (no HTTP), to tell the answer from the transport;
//! - for information, the tracker alone fed 600,000 flows of one event (`BENCH_SINGLE_EVENT_FLOWS`,
//!   as the ingest bench's topic): µs per event below its bound of 100,000 flows and past it;
//! - for information: feeding time, the sweep (`Tracker::tick` forced to sweep, 5 times) and the
//!   resident memory before and after the tracker was filled (mimalloc, as the binary).
//!
//! Without `BENCH_PG` only SQLite is measured; `BENCH_SKIP_SQLITE=1` measures only PostgreSQL.
//!
//! ```text
//! scripts/bench
//! BENCH_PG=postgres://postgres@127.0.0.1/postgres cargo bench -p choreoscope --bench health
//! ```
//!
//! Targets (issue 18): the two flow lists p99 < 100 ms, the key answer p99 < 20 ms.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use choreoscope::groups::GroupsHandle;
use choreoscope::health::{FlowStatus, HealthHandle, TrackedEvent};
use choreoscope::http::{app, AppState};
use choreoscope::metrics::Metrics;
use choreoscope::query::Limits;
use choreoscope::record::{DeadLetterMark, EventRecord};
use choreoscope::store::{Store, StoredEvent};

mod common;
use common::{env_usize, event, event_id, Event};

/// As the binary: the tracker's memory is measured with the collector's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FLOW_EVENTS: usize = 50;
/// Order lines per flow: each reserved, then shipped.
const LINES: usize = 23;
/// Events per write (and per live-feed batch).
const BATCH: usize = 5000;
/// Samples per request kind with nothing else running.
const SAMPLES: usize = 500;

const S: i64 = 1_000_000;
const MS: i64 = 1000;

/// (service, event type, topic)
type StepDef = (&'static str, &'static str, &'static str);
const ORDER: StepDef = ("order", "OrderCreated", "orders");
const PAYMENT: StepDef = ("payment", "PaymentCreated", "payments");
const BANK: StepDef = ("bank", "PaymentConfirmed", "bank");
const INVENTORY: StepDef = ("inventory", "InventoryReserved", "inventory");
const SHIPPING: StepDef = ("shipping", "ItemShipped", "shipping");
const EMAIL: StepDef = ("notification", "EmailSent", "notifications");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    /// Two lines reserved and never shipped.
    StalledShipping,
    /// One line never shipped, and no email.
    StalledEmail,
    /// Two lines never shipped, the first of them dead-lettered by the shipping service.
    Failed,
}

fn kind(flow: usize) -> Kind {
    if flow % 200 == 3 {
        return Kind::Failed;
    }
    match flow % 100 {
        1 => Kind::StalledShipping,
        51 => Kind::StalledEmail,
        _ => Kind::Normal,
    }
}

/// Flow `flow`'s 50 events from `t0` (and its dead-letter copy, if it failed); `offset` and
/// `dlt_offset` count positions on the event topics and the dead-letter topic.
fn flow_records(flow: usize, t0: i64, offset: &mut i64, dlt_offset: &mut i64) -> Vec<EventRecord> {
    let k = kind(flow);
    let (shipped, unshipped, email) = match k {
        Kind::Normal => (LINES, 0, true),
        Kind::StalledShipping | Kind::Failed => (LINES - 1, 2, true),
        Kind::StalledEmail => (LINES, 1, false),
    };
    let mut out = Vec::with_capacity(FLOW_EVENTS + 1);
    let mut add = |cause: Option<usize>, (service, event_type, topic): StepDef, time_us: i64| {
        let i = out.len();
        *offset += 1;
        out.push(event(Event {
            flow,
            i,
            cause,
            service,
            event_type,
            topic,
            offset: *offset,
            time_us,
            ingested_at_us: time_us + 50 * MS,
        }));
        (i, time_us)
    };
    let (order, t) = add(None, ORDER, t0);
    let (payment, t) = add(Some(order), PAYMENT, t + 20 * MS);
    let (bank, t_bank) = add(
        Some(payment),
        BANK,
        t + (80 + (flow as i64 * 37) % 220) * MS,
    );
    let mut first_unshipped = None;
    for line in 0..shipped + unshipped {
        let (inventory, t) = add(Some(bank), INVENTORY, t_bank + (10 + 2 * line as i64) * MS);
        if line < shipped {
            add(
                Some(inventory),
                SHIPPING,
                t + (30 + ((flow + line) % 50) as i64) * MS,
            );
        } else if first_unshipped.is_none() {
            first_unshipped = Some(inventory);
        }
    }
    if email {
        add(Some(bank), EMAIL, t_bank + 15 * MS);
    }
    debug_assert_eq!(out.len(), FLOW_EVENTS);
    if k == Kind::Failed {
        let original = &out[first_unshipped.expect("a failed flow has an unshipped line")];
        let at = original.time_us + 2 * S;
        *dlt_offset += 1;
        let mut copy = original.clone();
        copy.dead_letter = Some(DeadLetterMark {
            original_id: original.event_id.clone(),
            original: Some((original.topic.clone(), original.partition, original.offset)),
            recognised_by: "spring",
            reason: "shipping-group: java.lang.IllegalStateException: no carrier for the address"
                .into(),
            consumer_group: Some("shipping-group".into()),
        });
        copy.topic = "inventory-dlt".into();
        copy.partition = 0;
        copy.offset = *dlt_offset;
        copy.broker_time_us = Some(at);
        copy.ingested_at_us = at + 50 * MS;
        out.push(copy);
    }
    out
}

/// Where the flows start: spread over 50 minutes, the last 20 s before `now`, so every flow is
/// within the hour the tracker keeps and every missing reaction is overdue.
fn starts(flows: usize, now: i64) -> impl Fn(usize) -> i64 {
    let first = now - 50 * 60 * S;
    let span = 50 * 60 * S - 20 * S;
    move |flow| first + (span as f64 * flow as f64 / flows as f64) as i64
}

/// Every record of the run, in batches of about [`BATCH`] as they are written.
struct Batches<F> {
    flow: usize,
    flows: usize,
    start: F,
    offset: i64,
    dlt_offset: i64,
}

impl<F: Fn(usize) -> i64> Batches<F> {
    fn new(flows: usize, start: F) -> Self {
        Self {
            flow: 0,
            flows,
            start,
            offset: 0,
            dlt_offset: 0,
        }
    }
}

impl<F: Fn(usize) -> i64> Iterator for Batches<F> {
    type Item = Vec<EventRecord>;

    fn next(&mut self) -> Option<Vec<EventRecord>> {
        let mut batch = Vec::with_capacity(BATCH + FLOW_EVENTS + 1);
        while self.flow < self.flows && batch.len() < BATCH {
            let t0 = (self.start)(self.flow);
            batch.extend(flow_records(
                self.flow,
                t0,
                &mut self.offset,
                &mut self.dlt_offset,
            ));
            self.flow += 1;
        }
        (!batch.is_empty()).then_some(batch)
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// One HTTP/1.0 GET; returns the status code and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").unwrap();
    let mut text = Vec::new();
    s.read_to_end(&mut text).unwrap();
    let text = String::from_utf8_lossy(&text);
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// p50, p99 and max in ms, and the number of samples.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64, usize) {
    samples.sort();
    let n = samples.len();
    let at = |p: f64| samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    (
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        at(1.0).as_secs_f64() * 1000.0,
        n,
    )
}

/// A small deterministic generator for the random keys (xorshift64).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The request kinds measured.
#[derive(Clone, Copy)]
enum Request {
    Stalled,
    Summary,
    Key,
}

impl Request {
    const ALL: [Request; 3] = [Request::Stalled, Request::Summary, Request::Key];

    fn label(self) -> &'static str {
        match self {
            Request::Stalled => "GET /api/v1/flows?status=stalled",
            Request::Summary => "GET /api/v1/flows/summary",
            Request::Key => "GET /api/v1/keys/order.id/o-N (random)",
        }
    }

    /// The issue's target for p99, ms.
    fn target_ms(self) -> f64 {
        match self {
            Request::Stalled | Request::Summary => 100.0,
            Request::Key => 20.0,
        }
    }

    /// How often [`paced`] sends it: well above its time alone, so a client keeps up unless
    /// something holds the answer up.
    fn every(self) -> Duration {
        match self {
            Request::Stalled | Request::Key => Duration::from_millis(5),
            Request::Summary => Duration::from_millis(10),
        }
    }

    fn path(self, rng: &mut Rng, flows: usize) -> String {
        match self {
            Request::Stalled => "/api/v1/flows?status=stalled".into(),
            Request::Summary => "/api/v1/flows/summary".into(),
            Request::Key => format!("/api/v1/keys/order.id/o-{}", rng.below(flows)),
        }
    }
}

/// [`SAMPLES`] sequential requests of one kind over HTTP.
fn over_http(addr: SocketAddr, request: Request, flows: usize) -> Vec<Duration> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut samples = Vec::with_capacity(SAMPLES);
    while samples.len() < SAMPLES {
        let path = request.path(&mut rng, flows);
        let t = Instant::now();
        let (status, _) = get(addr, &path);
        samples.push(t.elapsed());
        assert_eq!(status, 200, "{path}");
    }
    samples
}

/// Requests of one kind due on a fixed schedule, one every `request.every()`, for `for_`. Each
/// latency counts from when the request was due, so a request held up (by a sweep holding the
/// tracker's lock) delays those due meanwhile, as clients that keep arriving would be (an open
/// loop: a sequential client alone would count a 200 ms wait once, however many requests arrive
/// during it).
fn paced(addr: SocketAddr, request: Request, flows: usize, for_: Duration) -> Vec<Duration> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let every = request.every();
    let start = Instant::now();
    let mut samples = Vec::new();
    for k in 0u32.. {
        let due = start + every * k;
        if due - start >= for_ {
            break;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let path = request.path(&mut rng, flows);
        let (status, _) = get(addr, &path);
        samples.push(due.elapsed());
        assert_eq!(status, 200, "{path}");
    }
    samples
}

/// The same answers computed in-process: the tracker and store reads, no HTTP nor JSON.
async fn in_process(
    store: &Store,
    health: &HealthHandle,
    request: Request,
    flows: usize,
) -> Vec<Duration> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let limits = Limits::default();
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        match request {
            Request::Stalled => {
                let page = choreoscope::query::health::flows(
                    health,
                    &GroupsHandle::default(),
                    store,
                    Some(FlowStatus::Stalled),
                    50,
                    &limits,
                )
                .await
                .unwrap();
                std::hint::black_box(page);
            }
            Request::Summary => {
                std::hint::black_box(choreoscope::query::health::summary(health));
            }
            Request::Key => {
                let value = format!("o-{}", rng.below(flows));
                let answer = choreoscope::query::answers::key_answer(
                    store,
                    health,
                    &GroupsHandle::default(),
                    "order.id",
                    &value,
                    None,
                    &limits,
                )
                .await
                .unwrap();
                std::hint::black_box(answer);
            }
        }
        samples.push(t.elapsed());
    }
    samples
}

/// Width of the label column.
const LABEL: usize = 58;

fn line(label: &str, samples: Vec<Duration>) -> (f64, f64) {
    let (p50, p99, max, n) = percentiles(samples);
    println!("  {label:<LABEL$} {p50:>9.2} {p99:>9.2} {max:>9.2} {n:>8}");
    (p50, p99)
}

async fn run(url: &str, label: &str, flows: usize) {
    let store = Store::connect(url).await.unwrap();
    choreoscope::memory::apply_store_profile(&store.profile());
    let start = starts(flows, now_us());

    // 1. The store: every event and dead letter through write_batch.
    let t = Instant::now();
    let (mut events, mut dead_letters) = (0, 0);
    for b in Batches::new(flows, &start) {
        let outcome = store.write_batch(&b).await.unwrap();
        events += outcome.new_events;
        dead_letters += outcome.dead_letters;
    }
    if let Store::Sqlite(s) = &store {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(s.pool())
            .await
            .unwrap();
    }
    println!(
        "{label}: stored {events} events and {dead_letters} dead letters in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 2. The tracker, fed as the live feed does, then the collector's first tick.
    let health = HealthHandle::default();
    let rss_before = rss_mib();
    let t = Instant::now();
    let mut fed = 0usize;
    for b in Batches::new(flows, &start) {
        // As the live feed: a dead-letter copy is no event of its flow.
        let stored: Vec<StoredEvent> = b
            .iter()
            .filter(|r| r.dead_letter.is_none())
            .map(StoredEvent::from)
            .collect();
        fed += stored.len();
        health.observe(stored.iter().map(TrackedEvent::from), now_us());
    }
    let feed = t.elapsed();
    let t = Instant::now();
    let now = now_us();
    health.read_dead_letters(&store).await.unwrap();
    let read_dead = t.elapsed();
    let t = Instant::now();
    health.tick(now);
    let first_tick = t.elapsed();
    let rss_after = rss_mib();
    let counts = health.tracker().counts();
    let count = |s: FlowStatus| counts.get(&s).copied().unwrap_or(0);
    println!(
        "{label}: tracker fed {fed} events in {:.2} s ({:.1} µs/event, batches of {BATCH}); dead \
         letters read in {:.1} ms; first tick (learn from every settled event, sweep) {:.0} ms",
        feed.as_secs_f64(),
        feed.as_secs_f64() * 1e6 / fed as f64,
        read_dead.as_secs_f64() * 1000.0,
        first_tick.as_secs_f64() * 1000.0
    );
    println!(
        "{label}: tracked {} flows: {} complete, {} in progress, {} stalled, {} failed",
        health.tracker().tracked(),
        count(FlowStatus::Complete),
        count(FlowStatus::InProgress),
        count(FlowStatus::Stalled),
        count(FlowStatus::Failed),
    );
    println!(
        "{label}: resident memory {rss_before:.0} MiB before the tracker, {rss_after:.0} MiB \
         after (+{:.0} MiB for {flows} flows)",
        rss_after - rss_before
    );
    assert!(
        count(FlowStatus::Stalled) > 0 && count(FlowStatus::Failed) > 0,
        "the model learned what to expect, and the dead letters failed their flows"
    );

    // 3. Over HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::new());
    let router = app(AppState {
        store: store.clone(),
        metrics: metrics.clone(),
        live: choreoscope::live::LiveFeed::new(),
        health: health.clone(),
        groups: GroupsHandle::default(),
        progress: Default::default(),
        redaction: Default::default(),
    });
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let (_, body) = tokio::task::spawn_blocking(move || get(addr, "/api/v1/flows?status=stalled"))
        .await
        .unwrap();
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    println!(
        "{label}: /flows?status=stalled answers {} flows ({} bytes); latencies in ms:",
        page["flows"].as_array().map_or(0, Vec::len),
        body.len()
    );
    println!(
        "  {:<LABEL$} {:>9} {:>9} {:>9} {:>8}",
        "request (sequential, one connection each)", "p50", "p99", "max", "samples"
    );
    let mut quiet = Vec::new();
    for request in Request::ALL {
        let samples = tokio::task::spawn_blocking(move || over_http(addr, request, flows))
            .await
            .unwrap();
        quiet.push(line(request.label(), samples));
        line(
            "  same answer in-process (no HTTP, no JSON)",
            in_process(&store, &health, request, flows).await,
        );
    }

    // 4. Again while the collector's tick runs: every second, and a sweep each 10 s, on a tokio
    //    worker as in the collector, holding the tracker's lock.
    let ticked_secs = env_usize("BENCH_TICKED_SECS", 20);
    let mut ticked = Vec::new();
    if ticked_secs > 0 {
        // The control: the same schedule with the tracker idle, so that what the tick adds shows.
        let control_secs = (ticked_secs / 2).max(1);
        println!(
            "  requests due on a schedule, tracker idle ({control_secs} s each; latency from when \
             due):"
        );
        for request in Request::ALL {
            let d = Duration::from_secs(control_secs as u64);
            let samples = tokio::task::spawn_blocking(move || paced(addr, request, flows, d))
                .await
                .unwrap();
            let label = format!(
                "{} every {} ms",
                request.label(),
                request.every().as_millis()
            );
            line(&label, samples);
        }
        let ticks: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let ticker = {
            let (health, ticks, metrics) = (health.clone(), ticks.clone(), metrics.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    every.tick().await;
                    let t = Instant::now();
                    // As the collector's health task does: the sweep in parts.
                    health.tick_in_parts(now_us()).await;
                    health.export(&metrics);
                    ticks.lock().unwrap().push(t.elapsed());
                }
            })
        };
        println!(
            "  with the collector's 1 s tick running, requests due on a schedule ({ticked_secs} s \
             each; latency from when due):"
        );
        for request in Request::ALL {
            let d = Duration::from_secs(ticked_secs as u64);
            let samples = tokio::task::spawn_blocking(move || paced(addr, request, flows, d))
                .await
                .unwrap();
            let label = format!(
                "{} every {} ms",
                request.label(),
                request.every().as_millis()
            );
            ticked.push(line(&label, samples));
        }
        ticker.abort();
        let mut ticks = ticks.lock().unwrap().clone();
        ticks.sort();
        println!(
            "  ticks meanwhile: {}, median {:.1} ms, longest {:.0} ms (the sweeps)",
            ticks.len(),
            ticks
                .get(ticks.len() / 2)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            ticks.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        );
    }

    // 5. The sweep alone: ticks 10 s apart, each reassessing every tracked flow.
    let mut sweeps = Vec::new();
    let base = now_us();
    for k in 1..=5 {
        let t = Instant::now();
        health.tick(base + k * 10 * S);
        sweeps.push(t.elapsed());
    }
    let ms: Vec<String> = sweeps
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
        .collect();
    println!(
        "{label}: sweep of {} tracked flows (Tracker::tick, 5 forced): {} ms",
        health.tracker().tracked(),
        ms.join(", ")
    );

    for (i, request) in Request::ALL.into_iter().enumerate() {
        let target = request.target_ms();
        let verdict = |p99: f64| if p99 < target { "met" } else { "NOT MET" };
        let (_, p99) = quiet[i];
        println!(
            "target ({label}): {} p99 < {target:.0} ms: {p99:.2} ms, {}",
            request.label(),
            verdict(p99)
        );
        if let Some(&(_, p99)) = ticked.get(i) {
            println!(
                "target ({label}, tick running): {} p99 < {target:.0} ms: {p99:.2} ms, {}",
                request.label(),
                verdict(p99)
            );
        }
    }
    server.abort();
    store.close().await;
}

/// The tracker alone fed flows of one event each (as the ingest bench's topic), in batches of
/// [`BATCH`]: µs per event while it holds fewer than its bound of flows, and past it, when every
/// batch makes it evict (for information: what flow health costs the ingest loop there).
fn single_event_flows(events: usize) {
    let health = HealthHandle::default();
    let now = now_us();
    let bound = choreoscope::health::TrackerConfig::default().max_flows;
    let tracked = |i: usize| TrackedEvent {
        event: choreoscope::health::FlowEvent {
            id: format!("{i:08}-0000-0000-7000-8000-000000000000"),
            service: Some("bench".into()),
            event_type: Some("OrderCreated".into()),
            time_us: now - 60 * S + i as i64,
            failure: None,
        },
        causation_id: None,
        correlation_id: None,
        keys: vec![("order.id".into(), format!("o-{}", i / 2))],
    };
    let mut phases = [(0usize, Duration::ZERO); 2];
    for first in (0..events).step_by(BATCH) {
        let batch: Vec<TrackedEvent> = (first..(first + BATCH).min(events)).map(tracked).collect();
        let n = batch.len();
        let t = Instant::now();
        health.observe(batch, now);
        let phase = &mut phases[usize::from(first + n > bound)];
        phase.0 += n;
        phase.1 += t.elapsed();
    }
    let per = |(n, d): (usize, Duration)| d.as_secs_f64() * 1e6 / n.max(1) as f64;
    println!(
        "tracker alone, {events} flows of one event in batches of {BATCH}: {:.1} µs/event up to \
         its bound of {bound} flows, {:.1} µs/event past it (evicting; {} evicted)",
        per(phases[0]),
        per(phases[1]),
        health.tracker().evicted()
    );
}

fn main() {
    // The binary's memory settings (allocator, SQLite's allocator), before SQLite's first use.
    choreoscope::memory::tune_process();
    let flows = env_usize("BENCH_FLOWS", 20_000);
    let stalled = (0..flows)
        .filter(|&f| matches!(kind(f), Kind::StalledShipping | Kind::StalledEmail))
        .count();
    let failed = (0..flows).filter(|&f| kind(f) == Kind::Failed).count();
    println!(
        "flow health benchmark: {} events in {flows} flows of {FLOW_EVENTS} ({stalled} stalled, \
         {failed} failed by a dead letter), within the last hour; event ids like {}",
        flows * FLOW_EVENTS,
        event_id(0, 0)
    );
    single_event_flows(env_usize("BENCH_SINGLE_EVENT_FLOWS", 600_000));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(common::on_each_store(
        "health.db",
        |url, label| async move { run(&url, label, flows).await },
    ));
}
