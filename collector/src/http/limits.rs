//! Request limits in front of every route: a body larger than `--max-request-bytes` is refused
//! with 413, a client address asking faster than `--rate-limit` with 429 and `Retry-After`.
//! `/healthz` and `/metrics` are not rate limited: probes and scrapers must not be refused for
//! asking.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ErrorBody;

/// The error code of a body over the limit (413).
pub const TOO_LARGE: &str = "payload_too_large";
/// The error code of a client over its rate (429).
pub const RATE_LIMITED: &str = "rate_limited";

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// Requests per second each client address may make on average (twice as many in a burst);
    /// `None`: no rate limit.
    pub rate_per_second: Option<NonZeroU32>,
}

impl Default for Limits {
    /// 1 MiB bodies, no rate limit.
    fn default() -> Self {
        Self {
            max_request_bytes: 1 << 20,
            rate_per_second: None,
        }
    }
}

/// What the limit layer keeps between requests: each client address's budget.
#[derive(Clone)]
pub(super) struct Limiter {
    limits: Limits,
    per_client: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub(super) fn new(limits: Limits) -> Self {
        let per_client = limits.rate_per_second.map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        Self { limits, per_client }
    }

    /// Forgets addresses whose budget is full again, so the table stays as small as the set
    /// of clients asking now.
    fn forget_quiet_clients(&self) {
        if let Some(limiter) = &self.per_client {
            if limiter.len() > 1024 {
                limiter.retain_recent();
            }
        }
    }
}

/// The middleware: 413 for a declared body over the limit (a body that only turns out larger
/// while read is cut by the body limit of the router), 429 for a client over its rate.
pub(super) async fn limit(
    State(limiter): State<Limiter>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limiter.limits.max_request_bytes as u64) {
        return too_large(limiter.limits.max_request_bytes);
    }
    let path = request.uri().path();
    let exempt = path == "/healthz" || path == "/metrics";
    if let (Some(per_client), false) = (&limiter.per_client, exempt) {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        if let Some(client) = client {
            limiter.forget_quiet_clients();
            if let Err(not_until) = per_client.check_key(&client) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return too_many(client, wait);
            }
        }
    }
    next.run(request).await
}

fn too_large(max: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(ErrorBody {
            error: TOO_LARGE.to_owned(),
            detail: format!("the request body is larger than {max} bytes (--max-request-bytes)"),
        }),
    )
        .into_response()
}

fn too_many(client: IpAddr, wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(ErrorBody {
            error: RATE_LIMITED.to_owned(),
            detail: format!("{client} asks faster than --rate-limit allows; retry in {seconds} s"),
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}
