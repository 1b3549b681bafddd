//! Admission: what keeps the server answering when clients ask for more than it has. Every cap
//! is counted where it is cheapest to refuse:
//!
//! - connections, in total and per client address, as they are accepted (the accept loop of
//!   [`super::server`]): one over a cap is answered at once (503 over the total, 429 over the
//!   client's share) and closed, and no more are accepted than the caps plus a small slack for
//!   those being refused, so the collector never runs out of descriptors for its store, Kafka
//!   and OTLP;
//! - live-feed streams, in total and per client address, as they are asked for;
//! - queries that read the store: at most so many at once, the next ones wait a moment for a
//!   turn and are then answered 503 with `Retry-After`; each has a time budget and is cut with a
//!   503 when over it.
//!
//! Slow clients that never finish their request, and idle keep-alive connections, are closed
//! by the header-read timeout of the HTTP/1 server ([`Caps::header_read_timeout`]).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::error::ErrorBody;
use crate::metrics::Metrics;

/// The error code of a request shed because the server is at a cap (503).
pub const BUSY: &str = "busy";
/// The error code of a client over its own share of connections or streams (429).
pub const CLIENT_CAP: &str = "too_many_from_client";
/// The error code of a query cut at its time budget (503).
pub const QUERY_BUDGET: &str = "query_over_budget";

/// Descriptors the collector keeps for its own work (store, Kafka, OTLP, files) whatever the
/// clients do.
pub const DESCRIPTOR_RESERVE: usize = 256;

/// The caps, each a flag of `collect`, `serve` and `demo` (see docs/reliability.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_connections_per_client: usize,
    /// Live-feed streams open at once, in all.
    pub max_streams: usize,
    /// Live-feed streams open at once from one client address.
    pub max_streams_per_client: usize,
    /// Store queries running at once.
    pub max_queries: usize,
    /// How long a query waits for a turn before it is answered 503.
    pub query_wait: Duration,
    /// How long a query may run before it is cut (503).
    pub query_budget: Duration,
    /// How long a connection may take to send a request's headers, and may stay idle between
    /// requests.
    pub header_read_timeout: Duration,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_client: 512,
            max_streams: 1024,
            max_streams_per_client: 64,
            max_queries: 16,
            query_wait: Duration::from_secs(2),
            query_budget: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

impl Caps {
    /// These caps with the connection caps lowered to what `descriptors` (the process's limit)
    /// allows after [`DESCRIPTOR_RESERVE`]; says so in the log when it lowers one.
    pub fn within_descriptors(mut self, descriptors: usize) -> Self {
        let room = descriptors
            .saturating_sub(DESCRIPTOR_RESERVE + super::server::REFUSAL_SLACK)
            .max(16);
        if self.max_connections > room {
            tracing::warn!(
                asked = self.max_connections,
                allowed = room,
                descriptors,
                reserve = DESCRIPTOR_RESERVE,
                "lowering --max-connections to what the descriptor limit leaves"
            );
            self.max_connections = room;
        }
        self.max_connections_per_client = self.max_connections_per_client.min(room);
        self.max_streams = self.max_streams.min(room);
        self
    }
}

/// How many open connections and streams each client address has.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

impl Counts {
    /// Takes one for `client` unless that would pass `total_cap` or `client_cap`.
    fn take(&mut self, client: IpAddr, total_cap: usize, client_cap: usize) -> Result<(), Shed> {
        if self.total >= total_cap {
            return Err(Shed::Busy);
        }
        let mine = self.per_client.entry(client).or_default();
        if *mine >= client_cap {
            return Err(Shed::Client);
        }
        *mine += 1;
        self.total += 1;
        Ok(())
    }

    fn give_back(&mut self, client: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(mine) = self.per_client.get_mut(&client) {
            *mine -= 1;
            if *mine == 0 {
                self.per_client.remove(&client);
            }
        }
    }
}

/// Why something was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shed {
    /// The server is at a total cap.
    Busy,
    /// The client is at its own cap.
    Client,
}

/// The shared state of admission: the counts, the query turns, the metrics.
#[derive(Debug)]
pub struct Admission {
    caps: Caps,
    connections: Mutex<Counts>,
    streams: Mutex<Counts>,
    queries: Semaphore,
    metrics: Arc<Metrics>,
    last_accept_warning: std::sync::atomic::AtomicI64,
}

impl Admission {
    /// Admission under `caps`, counting into `metrics`.
    pub fn new(caps: Caps, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            caps,
            connections: Mutex::default(),
            streams: Mutex::default(),
            queries: Semaphore::new(caps.max_queries.max(1)),
            metrics,
            last_accept_warning: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// The caps in force.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    fn shed(&self, reason: &str) {
        self.metrics.count_shed(reason);
    }

    /// Counts a failed accept (out of descriptors, most likely) and says so in the log, at
    /// most once a second.
    pub(super) fn accept_failed(&self, error: &io::Error) {
        self.shed("accept_failed");
        let now = crate::clock::now_us();
        let last = self
            .last_accept_warning
            .load(std::sync::atomic::Ordering::Relaxed);
        if now - last > 1_000_000 {
            self.last_accept_warning
                .store(now, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(%error, "accepting a connection failed; retrying in 50 ms");
        }
    }

    /// Takes a connection place for `client`, or says which cap refuses it.
    pub(super) fn admit_connection(self: &Arc<Self>, client: IpAddr) -> Result<Ticket, Shed> {
        let caps = self.caps;
        let taken = lock(&self.connections).take(
            client,
            caps.max_connections,
            caps.max_connections_per_client,
        );
        match taken {
            Ok(()) => {
                self.metrics.http_connections.inc();
                Ok(Ticket {
                    admission: self.clone(),
                    client,
                    kind: Kind::Connection,
                })
            }
            Err(shed) => {
                self.shed(match shed {
                    Shed::Busy => "connections",
                    Shed::Client => "connections_per_client",
                });
                Err(shed)
            }
        }
    }

    fn admit_stream(self: &Arc<Self>, client: IpAddr) -> Result<Ticket, Shed> {
        let caps = self.caps;
        let taken = lock(&self.streams).take(client, caps.max_streams, caps.max_streams_per_client);
        match taken {
            Ok(()) => {
                self.metrics.http_streams.inc();
                Ok(Ticket {
                    admission: self.clone(),
                    client,
                    kind: Kind::Stream,
                })
            }
            Err(shed) => {
                self.shed(match shed {
                    Shed::Busy => "streams",
                    Shed::Client => "streams_per_client",
                });
                Err(shed)
            }
        }
    }
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    counts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Connection,
    Stream,
}

/// One admitted connection or stream; dropping it gives its place back.
#[derive(Debug)]
pub(super) struct Ticket {
    admission: Arc<Admission>,
    client: IpAddr,
    kind: Kind,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        match self.kind {
            Kind::Connection => {
                lock(&self.admission.connections).give_back(self.client);
                self.admission.metrics.http_connections.dec();
            }
            Kind::Stream => {
                lock(&self.admission.streams).give_back(self.client);
                self.admission.metrics.http_streams.dec();
            }
        }
    }
}

/// Answers a connection refused for `shed` and closes it: best effort, and quick — a client
/// that does not read is not waited for.
pub(super) async fn refuse(mut stream: TcpStream, shed: Shed) {
    let answer = refusal_bytes(shed);
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
}

/// The whole HTTP/1.1 answer to a connection over a cap.
fn refusal_bytes(shed: Shed) -> Vec<u8> {
    let (status, error, detail) = match shed {
        Shed::Busy => (
            "503 Service Unavailable",
            BUSY,
            "the server is at --max-connections; retry shortly",
        ),
        Shed::Client => (
            "429 Too Many Requests",
            CLIENT_CAP,
            "this address holds --max-connections-per-client connections already",
        ),
    };
    let body = serde_json::to_string(&super::error::ErrorBody {
        error: error.to_owned(),
        detail: detail.to_owned(),
    })
    .unwrap_or_default();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Paths answered from memory: they take no query turn (and declare no 503 in the API's
/// description).
pub const FROM_MEMORY: [&str; 6] = [
    "/api/v1/live",
    "/api/v1/flows",
    "/api/v1/flows/summary",
    "/api/v1/model",
    "/api/v1/ingest/progress",
    "/api/v1/me",
];

/// The middleware: a live-feed stream takes a stream place for as long as it is open; a query
/// of the store waits for a turn (503 `busy` after [`Caps::query_wait`]) and is cut at
/// [`Caps::query_budget`] (503 `query_over_budget`).
pub(super) async fn admit(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if !path.starts_with("/api/") {
        return next.run(request).await;
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if path == "/api/v1/live" {
        let Some(client) = client else {
            return next.run(request).await;
        };
        return match admission.admit_stream(client) {
            Ok(ticket) => {
                let response = next.run(request).await;
                let (parts, body) = response.into_parts();
                // The place is given back when the stream ends or its client goes.
                let body = body.into_data_stream().map(move |chunk| {
                    let _held = &ticket;
                    chunk
                });
                Response::from_parts(parts, Body::from_stream(body))
            }
            Err(Shed::Busy) => refused(
                StatusCode::SERVICE_UNAVAILABLE,
                BUSY,
                "the server is at --max-streams live streams; retry shortly".to_owned(),
                1,
            ),
            Err(Shed::Client) => refused(
                StatusCode::TOO_MANY_REQUESTS,
                CLIENT_CAP,
                "this address holds --max-streams-per-client live streams already".to_owned(),
                1,
            ),
        };
    }
    if FROM_MEMORY.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let caps = admission.caps;
    let turn = match tokio::time::timeout(caps.query_wait, admission.queries.acquire()).await {
        Ok(Ok(turn)) => turn,
        _ => {
            admission.shed("queries");
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                BUSY,
                format!(
                    "{} queries are running (--max-queries) and none finished within {} ms; retry shortly",
                    caps.max_queries,
                    caps.query_wait.as_millis()
                ),
                1,
            );
        }
    };
    let answer = tokio::time::timeout(caps.query_budget, next.run(request)).await;
    drop(turn);
    answer.unwrap_or_else(|_| {
        admission.shed("query_budget");
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            QUERY_BUDGET,
            format!(
                "the query ran past its budget of {} s (--query-budget) and was cut; narrow it (a shorter window, a smaller depth or limit)",
                caps.query_budget.as_secs_f64()
            ),
            5,
        )
    })
}

fn refused(status: StatusCode, code: &str, detail: String, retry_after: u64) -> Response {
    let mut response = (
        status,
        Json(ErrorBody {
            error: code.to_owned(),
            detail,
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// The process's descriptor limit, raised to its hard limit first (a server that counts its
/// connections wants all it may have).
pub fn raise_descriptor_limit() -> usize {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_client_at_its_cap_is_refused_while_others_are_admitted() {
        let mut counts = Counts::default();
        assert_eq!(counts.take(ip(1), 10, 2), Ok(()));
        assert_eq!(counts.take(ip(1), 10, 2), Ok(()));
        assert_eq!(counts.take(ip(1), 10, 2), Err(Shed::Client));
        assert_eq!(counts.take(ip(2), 10, 2), Ok(()));
    }

    #[test]
    fn at_the_total_cap_everyone_is_refused_until_a_place_is_given_back() {
        let mut counts = Counts::default();
        counts.take(ip(1), 2, 5).unwrap();
        counts.take(ip(2), 2, 5).unwrap();
        assert_eq!(counts.take(ip(3), 2, 5), Err(Shed::Busy));
        counts.give_back(ip(1));
        assert_eq!(counts.take(ip(3), 2, 5), Ok(()));
        assert!(
            !counts.per_client.contains_key(&ip(1)),
            "an address with nothing open is forgotten"
        );
    }

    #[test]
    fn the_connection_caps_leave_the_descriptor_reserve() {
        let caps = Caps::default().within_descriptors(1024);
        assert_eq!(
            caps.max_connections,
            1024 - DESCRIPTOR_RESERVE - super::super::server::REFUSAL_SLACK
        );
        let roomy = Caps::default().within_descriptors(1 << 20);
        assert_eq!(roomy.max_connections, Caps::default().max_connections);
    }

    #[test]
    fn a_refused_connection_gets_a_whole_http_answer() {
        let answer = String::from_utf8(refusal_bytes(Shed::Client)).unwrap();
        assert!(answer.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], CLIENT_CAP);
    }
}
