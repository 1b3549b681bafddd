//! Scale-out (docs/deployment.md): several `choreoscope collect` processes in one consumer group
//! share a topic's partitions and write into one PostgreSQL database, while `choreoscope serve`
//! answers queries, tracks flow health and serves the live feed from that database.
//!
//! One run of the scenario below, shared by the tests (each states one behaviour of it):
//! 1. a fresh database; `serve` and three collectors (`--no-flow-health`, the documented shape)
//!    start at the same moment, so all four migrate the empty database at once;
//! 2. a watcher follows 20 orders on `serve`'s live feed;
//! 3. the first half of the events is produced into a 6-partition topic; once the store holds a
//!    quarter of all of them and each collector has ingested some, one collector is SIGKILLed;
//! 4. after the group's session timeout another collector is started (see the note on the test
//!    broker below), and the second half is produced;
//! 5. throughout, from the moment every watched order has an event until the end, `serve` is
//!    asked for `/healthz` and an order's answer every 200 ms.
//!
//! Broker quirks designed around (docs/collector.md, "Test broker"): tansu's in-memory engine
//! serves a fetch starting inside a record batch from the next batch, so a partition handed to
//! another member at a committed offset inside a batch would lose the rest of it — the events are
//! produced one per batch. Joining while a dead member's session is still open sometimes left
//! tansu 0.6's coordinator with a rebalance that never completed, so the replacement joins after
//! the killed member's session has timed out; the two survivors take over its partitions when
//! it does (that rebalance is Kafka's, with or without the replacement). One record per batch
//! costs the memory engine more the more batches it holds: 40 000 events (the default,
//! `SCALE_OUT_TEST_EVENTS` for more) take about a minute; 240 000 took over ten, production
//! falling from ~500 to ~130 records/s.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use choreoscope::store::{Store, StoreCounts};
use choreoscope_e2e::TestBroker;
use common::{free_addr, produce_many, wait_for, CollectorProcess, KilledOnDrop, SESSION_TIMEOUT};

/// Partitions of the topic: two per collector.
const PARTITIONS: i32 = 6;
/// Orders the live watcher follows (`o-0` … `o-19`; `produce_many` keys event `i` `o-{i % 5000}`).
const WATCHED: usize = 20;
/// How often `serve` is asked.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Flags of every collector of the group: the documented shape (no flow health of their own,
/// `serve` tracks), no consumer-group polling, no OTLP receiver (three on one host would contend
/// for its ports).
const COLLECTOR_FLAGS: [&str; 7] = [
    "--no-flow-health",
    "--group-poll-every",
    "0",
    "--otlp-grpc",
    "off",
    "--otlp-http",
    "off",
];

/// What the scenario saw.
#[derive(Debug)]
struct Outcome {
    /// Events produced.
    n: i64,
    /// The store's counts at the end.
    counts: StoreCounts,
    /// Events stored with more than one delivery.
    doubled: i64,
    /// The store's counts right after the SIGKILL.
    at_kill: StoreCounts,
    /// Events each of the three first collectors had ingested just before the kill.
    ingested_before_kill: Vec<u64>,
    /// Events the replacement ingested.
    ingested_by_replacement: u64,
    /// Whether every collector still running at the end stopped cleanly on SIGTERM.
    clean_stops: Vec<bool>,
    /// Every request to `serve`: path, when (since the first), status or error, how long.
    polls: Vec<Poll>,
    /// Seconds since the first poll at which the collector was killed and its replacement
    /// started.
    killed_at: f64,
    replaced_at: f64,
    /// Event ids `serve`'s live feed announced to the watcher, in order (with any repeats).
    announced: Vec<String>,
    /// How many of the announced ids the store holds.
    announced_stored: i64,
    /// `lagged` notices of the live feed (it fell behind: the watcher should reload).
    lagged: Vec<String>,
}

/// One request to `serve`.
#[derive(Debug)]
struct Poll {
    path: String,
    at: f64,
    status: Result<u16, String>,
    took: Duration,
}

/// The scenario's outcome, run once for every test of this file.
fn outcome() -> &'static Outcome {
    static RUN: OnceLock<Result<Outcome, String>> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        // On a thread of its own with a runtime of its own: every test waits for this one run,
        // and a failure of the run fails each of them with its message.
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(scenario())
        })
        .join()
        .map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match run {
        Ok(outcome) => outcome,
        Err(message) => panic!("the scale-out scenario failed: {message}"),
    }
}

async fn scenario() -> Outcome {
    let n: usize = std::env::var("SCALE_OUT_TEST_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000);
    assert!(n % 10_000 == 0, "whole rounds of 5000 orders per half");
    let broker = TestBroker::from_env();
    let topic = TestBroker::unique_topic("scale-out");
    broker.create_topics(&[&topic], PARTITIONS).await.unwrap();
    let db = choreoscope_e2e::fresh_pg_database().await;
    let group = format!("scale-out-{}", uuid::Uuid::new_v4().simple());
    let started = Instant::now();

    // 1. Everything at once on the empty database.
    let serve = Serve::start(&db);
    let mut collectors: Vec<CollectorProcess> = (0..3)
        .map(|_| CollectorProcess::start_with(&broker, &db, &group, &topic, &COLLECTOR_FLAGS))
        .collect();
    serve.wait_ready();
    let store = Store::connect(&db).await.unwrap();

    // 2. The watcher, before anything is produced.
    let watcher = Watcher::start(serve.addr);

    // 3. The first half, one record per producer batch.
    let producer: rdkafka::producer::FutureProducer = broker
        .config()
        .set("acks", "all")
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    let first_half = {
        let (producer, topic) = (producer.clone(), topic.clone());
        tokio::spawn(async move { produce_many(&producer, &topic, n / 2).await })
    };
    // 5. Polled from the moment every watched order has an event (an order without one is a 404).
    let keys: Vec<String> = (0..WATCHED)
        .map(|k| format!("/api/v1/keys/order.id/o-{k}"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while keys.iter().any(|k| status(serve.addr, k).0 != Ok(200)) {
        assert!(Instant::now() < deadline, "the watched orders never showed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let poller = Poller::start(serve.addr, keys);

    // Killed once a quarter is stored and the group has settled: each of the three has ingested
    // part of the topic (the first to join holds every partition until the others are in).
    let deadline = Instant::now() + Duration::from_secs(300);
    let ingested_before_kill: Vec<u64> = loop {
        let each: Vec<u64> = collectors.iter().map(ingested).collect();
        let stored = store.counts().await.map_or(0, |c| c.deliveries);
        if stored >= (n / 4) as i64 && each.iter().all(|&e| e > 0) {
            break each;
        }
        assert!(
            Instant::now() < deadline,
            "the group never settled: {each:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut killed = collectors.remove(0);
    killed.kill_hard();
    let killed_at = poller.now();
    let at_kill = store.counts().await.unwrap();
    eprintln!(
        "killed one collector with {at_kill:?} stored after {:?}; ingested by each before: {ingested_before_kill:?}",
        started.elapsed()
    );

    // 4. The replacement, once the killed member's session is over.
    tokio::time::sleep(SESSION_TIMEOUT + Duration::from_secs(2)).await;
    collectors.push(CollectorProcess::start_with(
        &broker,
        &db,
        &group,
        &topic,
        &COLLECTOR_FLAGS,
    ));
    let replaced_at = poller.now();
    first_half.await.unwrap();
    produce_many(&producer, &topic, n / 2).await;
    eprintln!("produced {n} events after {:?}", started.elapsed());

    let done = wait_for(&store, n as i64, Duration::from_secs(600)).await;
    assert_eq!(done.deliveries, n as i64, "every event arrives: {done:?}");
    // Give a late duplicate the time to show up before the final count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ingested_by_replacement = ingested(&collectors[2]);
    let clean_stops = collectors.into_iter().map(|c| c.stop().success()).collect();
    let counts = store.counts().await.unwrap();
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let (doubled,): (i64,) = sqlx::query_as("SELECT count(*) FROM events WHERE delivery_count > 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let expected_announced = WATCHED * n / 5000;
    let (announced, lagged) = watcher.until(expected_announced, Duration::from_secs(30));
    let (announced_stored,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE event_id = ANY($1)")
            .bind(&announced)
            .fetch_one(&pool)
            .await
            .unwrap();
    let polls = poller.stop();
    eprintln!(
        "scenario done in {:?}: {counts:?}, {} requests to serve, {} announced",
        started.elapsed(),
        polls.len(),
        announced.len()
    );
    Outcome {
        n: n as i64,
        counts,
        doubled,
        at_kill,
        ingested_before_kill,
        ingested_by_replacement,
        clean_stops,
        polls,
        killed_at,
        replaced_at,
        announced,
        announced_stored,
        lagged,
    }
}

#[test]
fn every_event_is_stored_exactly_once_though_a_collector_was_killed_and_another_joined() {
    let o = outcome();
    assert!(
        o.at_kill.deliveries < o.n,
        "killed too late to test anything: {:?}",
        o.at_kill
    );
    assert_eq!(
        (o.counts.events, o.counts.deliveries),
        (o.n, o.n),
        "every event once, every delivery once"
    );
    assert_eq!(o.doubled, 0, "no event stored with a second delivery");
    assert!(
        o.clean_stops.iter().all(|&clean| clean),
        "the collectors left stop cleanly on SIGTERM: {:?}",
        o.clean_stops
    );
}

#[test]
fn the_collectors_of_one_group_share_the_partitions_and_the_replacement_takes_its_part() {
    let o = outcome();
    assert!(
        o.ingested_before_kill.iter().all(|&n| n > 0),
        "each of the three ingested part of the topic before the kill: {:?}",
        o.ingested_before_kill
    );
    assert!(
        o.ingested_before_kill
            .iter()
            .all(|&n| (n as i64) < o.at_kill.deliveries),
        "none ingested it all: {:?} of {:?}",
        o.ingested_before_kill,
        o.at_kill
    );
    assert!(
        o.ingested_by_replacement > 0,
        "the collector that joined was given partitions and ingested from them"
    );
}

#[test]
fn serve_answers_every_request_while_the_group_rebalances() {
    let o = outcome();
    let failed: Vec<String> = o
        .polls
        .iter()
        .filter(|p| p.status != Ok(200))
        .map(|p| {
            format!(
                "{} at {:.1} s: {:?} after {:?}",
                p.path, p.at, p.status, p.took
            )
        })
        .collect();
    assert!(failed.is_empty(), "requests that failed: {failed:#?}");
    let during = |from: f64, to: f64| o.polls.iter().filter(|p| p.at >= from && p.at < to).count();
    assert!(
        during(0.0, o.killed_at) > 0
            && during(o.killed_at, o.replaced_at) > 0
            && during(o.replaced_at, f64::INFINITY) > 0,
        "serve was asked before the kill, between the kill and the join, and after"
    );
    let slowest = o.polls.iter().map(|p| p.took).max().unwrap_or_default();
    eprintln!(
        "{} requests, all 200; slowest {slowest:?}; kill at {:.1} s, join at {:.1} s",
        o.polls.len(),
        o.killed_at,
        o.replaced_at
    );
}

#[test]
fn serves_live_feed_announces_each_watched_event_once_whichever_collector_stored_it() {
    let o = outcome();
    assert!(
        o.lagged.is_empty(),
        "the feed never fell behind: {:?}",
        o.lagged
    );
    let distinct: HashSet<&String> = o.announced.iter().collect();
    assert_eq!(
        distinct.len(),
        o.announced.len(),
        "no event announced twice"
    );
    assert_eq!(
        o.announced.len() as i64,
        WATCHED as i64 * o.n / 5000,
        "every event of the watched orders announced (each order has one in 5000)"
    );
    assert_eq!(
        o.announced_stored,
        o.announced.len() as i64,
        "each announced event is in the store"
    );
}

/// A collector that tracks flow health (the default) in a group with other members sees only its
/// own partitions' events; it says so in its log once it has looked at its group
/// (`groups::peers::FIRST_LOOK`, 30 s after start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_tracking_flow_health_warns_when_its_group_has_other_members() {
    let broker = TestBroker::from_env();
    let topic = TestBroker::unique_topic("scale-out-warn");
    broker.create_topics(&[&topic], 2).await.unwrap();
    // The group must have committed offsets for the test broker to list it.
    produce_many(&broker.producer().unwrap(), &topic, 200).await;
    let group = format!("scale-out-warn-{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let collectors: Vec<(KilledOnDrop, std::sync::mpsc::Receiver<String>)> = (0..2)
        .map(|i| {
            let db = format!("sqlite://{}", dir.path().join(format!("{i}.db")).display());
            let mut child = Command::new(env!("CARGO_BIN_EXE_choreoscope"))
                .args(["collect", "--brokers", broker.bootstrap(), "--db", &db])
                .args(["--group", &group, "--include", &regex::escape(&topic)])
                .args(["--listen", &free_addr().to_string()])
                .args([
                    "--group-poll-every",
                    "0",
                    "--otlp-grpc",
                    "off",
                    "--otlp-http",
                    "off",
                ])
                .env("RUST_LOG", "warn")
                .env_remove("CHOREOSCOPE_NO_FLOW_HEALTH")
                // Its log goes to standard output.
                .stdout(Stdio::piped())
                .spawn()
                .expect("start the collector binary");
            let log = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(log).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            (KilledOnDrop(child), rx)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (_, log) in &collectors {
        let warned = std::iter::from_fn(|| {
            log.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()
        })
        .find(|line| {
            line.contains("flow health on in a consumer group shared with 1 other member")
        });
        assert!(
            warned.is_some(),
            "each collector of the two warns within 120 s"
        );
    }
}

/// Events a collector has ingested so far (its `/metrics`).
fn ingested(collector: &CollectorProcess) -> u64 {
    collector
        .get("/metrics")
        .lines()
        .filter(|l| l.starts_with("choreoscope_events_ingested_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The status of `GET path` from `addr`, or why there is none, and how long it took.
fn status(addr: SocketAddr, path: &str) -> (Result<u16, String>, Duration) {
    let start = Instant::now();
    let result = (|| {
        let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n")
            .map_err(|e| format!("write: {e}"))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| format!("read: {e}"))?;
        response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not HTTP: {response:.200}"))
    })();
    (result, start.elapsed())
}

/// `choreoscope serve` on the database, its live feed looking every 100 ms.
struct Serve {
    _child: KilledOnDrop,
    addr: SocketAddr,
}

impl Serve {
    fn start(db: &str) -> Self {
        let addr = free_addr();
        let child = Command::new(env!("CARGO_BIN_EXE_choreoscope"))
            .args(["serve", "--db", db, "--listen", &addr.to_string()])
            .args(["--follow-ms", "100"])
            .env(
                "RUST_LOG",
                std::env::var("CHOREOSCOPE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("start serve");
        Self {
            _child: KilledOnDrop(child),
            addr,
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while status(self.addr, "/healthz").0 != Ok(200) {
            assert!(Instant::now() < deadline, "serve never answered /healthz");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Asks `serve` for `/healthz` and each path in turn, every [`POLL_EVERY`], on a thread.
struct Poller {
    start: Instant,
    stop: Arc<AtomicBool>,
    polls: Arc<Mutex<Vec<Poll>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Poller {
    fn start(addr: SocketAddr, paths: Vec<String>) -> Self {
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, polls) = (stop.clone(), polls.clone());
            std::thread::spawn(move || {
                for path in paths.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    for path in ["/healthz", path.as_str()] {
                        let at = start.elapsed().as_secs_f64();
                        let (status, took) = status(addr, path);
                        polls.lock().unwrap().push(Poll {
                            path: path.to_owned(),
                            at,
                            status,
                            took,
                        });
                    }
                    std::thread::sleep(POLL_EVERY);
                }
            })
        };
        Self {
            start,
            stop,
            polls,
            thread,
        }
    }

    /// Seconds since polling began.
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn stop(self) -> Vec<Poll> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        Arc::try_unwrap(self.polls).unwrap().into_inner().unwrap()
    }
}

/// A client of `serve`'s live feed following the watched orders, collecting the ids it is told
/// of on a thread.
struct Watcher {
    ids: Arc<Mutex<Vec<String>>>,
    lagged: Arc<Mutex<Vec<String>>>,
}

impl Watcher {
    /// Connects and waits for the feed's `ready`.
    fn start(addr: SocketAddr) -> Self {
        let query: Vec<String> = (0..WATCHED)
            .map(|k| format!("key=order.id%3Do-{k}"))
            .collect();
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to serve");
        write!(
            stream,
            "GET /api/v1/live?{} HTTP/1.1\r\nHost: test\r\n\r\n",
            query.join("&")
        )
        .unwrap();
        let lines = BufReader::new(stream).lines();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let ids = Arc::new(Mutex::new(Vec::new()));
        let lagged = Arc::new(Mutex::new(Vec::new()));
        let (told, behind) = (ids.clone(), lagged.clone());
        std::thread::spawn(move || {
            let mut name = String::new();
            // Ends when the stream does: when serve is killed at the end of the run.
            for line in lines {
                let Ok(line) = line else { return };
                if let Some(event) = line.strip_prefix("event: ") {
                    name = event.to_owned();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    match name.as_str() {
                        "ready" => {
                            let _ = ready_tx.send(());
                        }
                        "stored" => {
                            let data: serde_json::Value = serde_json::from_str(data).unwrap();
                            let mut told = told.lock().unwrap();
                            for id in data["ids"].as_array().into_iter().flatten() {
                                told.push(id.as_str().unwrap_or_default().to_owned());
                            }
                        }
                        other => behind.lock().unwrap().push(format!("{other}: {data}")),
                    }
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the live feed is ready");
        // serve's follower takes its position at its next look (every 100 ms).
        std::thread::sleep(Duration::from_millis(500));
        Self { ids, lagged }
    }

    /// The ids told so far, once there are `expected` or `timeout` has passed, then a little
    /// more time for any repeat to show.
    /// Returns the other notices (`lagged`) beside.
    fn until(&self, expected: usize, timeout: Duration) -> (Vec<String>, Vec<String>) {
        let deadline = Instant::now() + timeout;
        while self.ids.lock().unwrap().len() < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(1));
        let ids = self.ids.lock().unwrap().clone();
        (ids, self.lagged.lock().unwrap().clone())
    }
}
