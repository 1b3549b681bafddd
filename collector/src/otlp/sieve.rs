//! Which spans are kept: every span of a trace that touches messaging (a producer or consumer
//! span, or one naming a messaging system). A span of a trace not (yet) known to do so is held
//! in memory for a while, since a handler's span is often exported before the consumer span it
//! runs under (it ends first); it is stored as soon as its trace shows a messaging span, and
//! dropped — counted — when it has waited too long or the hold is full.
//!
//! Both sets are bounded: the traces known to touch messaging (the newest
//! [`SieveConfig::known_traces`]) and the held spans ([`SieveConfig::max_held`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::span::SpanRecord;

/// How long and how much the sieve holds.
#[derive(Debug, Clone, Copy)]
pub struct SieveConfig {
    /// How long a span waits for a messaging span of its trace.
    pub hold: Duration,
    /// Most spans held at once; the oldest are dropped beyond it.
    pub max_held: usize,
    /// How many recent messaging traces are remembered.
    pub known_traces: usize,
}

impl Default for SieveConfig {
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(30),
            max_held: 50_000,
            known_traces: 200_000,
        }
    }
}

/// What the sieve made of a request's spans.
#[derive(Debug, Default)]
pub struct Sifted {
    /// The request's spans to store now.
    pub keep: Vec<SpanRecord>,
    /// Held spans their traces released, to store now too.
    pub released: Vec<SpanRecord>,
    /// Spans dropped: held too long, or pushed out of a full hold.
    pub dropped: usize,
}

/// Spans held for one trace, and which holding of that trace they are (a trace released and held
/// again is a new holding: the older entry of the hold's queue is then stale).
#[derive(Debug)]
struct Holding {
    generation: u64,
    spans: Vec<SpanRecord>,
}

/// The sieve (see the module docs). Not thread-safe: the receiver keeps it behind a mutex.
#[derive(Debug)]
pub struct Sieve {
    config: SieveConfig,
    known: HashSet<String>,
    known_order: VecDeque<String>,
    held: HashMap<String, Holding>,
    /// When each holding began, oldest first; entries of released holdings stay until popped.
    held_order: VecDeque<(Instant, String, u64)>,
    held_count: usize,
    generation: u64,
}

impl Sieve {
    /// An empty sieve.
    pub fn new(config: SieveConfig) -> Self {
        Self {
            config,
            known: HashSet::new(),
            known_order: VecDeque::new(),
            held: HashMap::new(),
            held_order: VecDeque::new(),
            held_count: 0,
            generation: 0,
        }
    }

    /// Spans held now.
    pub fn held(&self) -> usize {
        self.held_count
    }

    /// Sorts `spans`, received at `now`: kept, held or (later) dropped. Any span of a trace known
    /// to touch messaging releases what is held of it.
    pub fn sift(&mut self, spans: Vec<SpanRecord>, now: Instant) -> Sifted {
        let mut out = Sifted {
            dropped: self.expire(now),
            ..Sifted::default()
        };
        for s in spans.iter().filter(|s| s.is_messaging()) {
            self.remember(&s.trace_id);
        }
        for s in &spans {
            if self.known.contains(&s.trace_id) {
                if let Some(holding) = self.held.remove(&s.trace_id) {
                    self.held_count -= holding.spans.len();
                    out.released.extend(holding.spans);
                }
            }
        }
        for s in spans {
            if self.known.contains(&s.trace_id) {
                out.keep.push(s);
            } else {
                out.dropped += self.hold(s, now);
            }
        }
        out
    }

    /// Holds again spans that could not be stored (the store refused the request that released
    /// them): the sender retries that request, and its spans release them again.
    pub fn hold_again(&mut self, spans: Vec<SpanRecord>, now: Instant) -> usize {
        spans.into_iter().map(|s| self.hold(s, now)).sum()
    }

    /// Marks `trace` as touching messaging.
    fn remember(&mut self, trace: &str) {
        if self.known.contains(trace) {
            return;
        }
        self.known.insert(trace.to_owned());
        self.known_order.push_back(trace.to_owned());
        while self.known_order.len() > self.config.known_traces {
            if let Some(old) = self.known_order.pop_front() {
                self.known.remove(&old);
            }
        }
    }

    /// Holds `span`; returns how many spans that pushed out.
    fn hold(&mut self, span: SpanRecord, now: Instant) -> usize {
        let trace = span.trace_id.clone();
        let holding = match self.held.get_mut(&trace) {
            Some(holding) => holding,
            None => {
                self.generation += 1;
                self.held_order
                    .push_back((now, trace.clone(), self.generation));
                self.held.entry(trace).or_insert(Holding {
                    generation: self.generation,
                    spans: Vec::new(),
                })
            }
        };
        holding.spans.push(span);
        self.held_count += 1;
        let mut dropped = 0;
        // The queue also holds entries of released holdings: it is kept within a few times the
        // hold's size, whatever the trace rate.
        while self.held_count > self.config.max_held
            || self.held_order.len() > 4 * self.config.max_held.max(1)
        {
            dropped += self.drop_oldest();
        }
        dropped
    }

    /// Drops the spans held longer than the hold; returns how many.
    fn expire(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some((since, _, _)) = self.held_order.front() {
            if now.duration_since(*since) < self.config.hold {
                break;
            }
            dropped += self.drop_oldest();
        }
        dropped
    }

    /// Drops the oldest holding's spans (nothing when its entry is stale); returns how many.
    fn drop_oldest(&mut self) -> usize {
        let Some((_, trace, generation)) = self.held_order.pop_front() else {
            return 0;
        };
        match self.held.get(&trace) {
            Some(holding) if holding.generation == generation => {
                let n = holding.spans.len();
                self.held.remove(&trace);
                self.held_count -= n;
                n
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{Messaging, SpanKind};

    fn span(trace: &str, id: &str, kind: SpanKind) -> SpanRecord {
        SpanRecord {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: None,
            kind,
            name: id.into(),
            service: None,
            start_us: 0,
            end_us: 0,
            failed: false,
            status_message: None,
            exception: None,
            messaging: Messaging::default(),
            links: vec![],
        }
    }

    fn ids(spans: &[SpanRecord]) -> Vec<&str> {
        spans.iter().map(|s| s.span_id.as_str()).collect()
    }

    #[test]
    fn a_trace_with_a_consumer_span_is_kept_whole() {
        let mut sieve = Sieve::new(SieveConfig::default());
        let out = sieve.sift(
            vec![
                span("t", "handler", SpanKind::Internal),
                span("t", "process", SpanKind::Consumer),
            ],
            Instant::now(),
        );
        assert_eq!(ids(&out.keep), ["handler", "process"]);
        assert_eq!((out.dropped, sieve.held()), (0, 0));
    }

    #[test]
    fn a_handler_span_sent_before_its_consumer_span_is_held_then_kept() {
        let mut sieve = Sieve::new(SieveConfig::default());
        let now = Instant::now();
        let first = sieve.sift(vec![span("t", "handler", SpanKind::Internal)], now);
        assert!(first.keep.is_empty());
        assert_eq!(sieve.held(), 1);
        let second = sieve.sift(vec![span("t", "process", SpanKind::Consumer)], now);
        assert_eq!(ids(&second.keep), ["process"]);
        assert_eq!(ids(&second.released), ["handler"]);
        assert_eq!(sieve.held(), 0);
    }

    #[test]
    fn spans_of_a_trace_without_messaging_are_dropped_after_the_hold() {
        let config = SieveConfig {
            hold: Duration::from_secs(30),
            ..SieveConfig::default()
        };
        let mut sieve = Sieve::new(config);
        let now = Instant::now();
        sieve.sift(vec![span("http", "get", SpanKind::Server)], now);
        let later = sieve.sift(vec![], now + Duration::from_secs(31));
        assert_eq!((later.dropped, sieve.held()), (1, 0));
    }

    #[test]
    fn a_full_hold_drops_its_oldest_trace_first() {
        let config = SieveConfig {
            max_held: 2,
            ..SieveConfig::default()
        };
        let mut sieve = Sieve::new(config);
        let now = Instant::now();
        let out = sieve.sift(
            vec![
                span("a", "a1", SpanKind::Internal),
                span("b", "b1", SpanKind::Internal),
                span("c", "c1", SpanKind::Internal),
            ],
            now,
        );
        assert_eq!((out.dropped, sieve.held()), (1, 2));
        let released = sieve.sift(vec![span("a", "a2", SpanKind::Producer)], now);
        assert_eq!(
            ids(&released.keep),
            ["a2"],
            "a's held span was the one dropped"
        );
    }

    #[test]
    fn spans_held_again_after_a_refusal_are_released_by_the_retried_request() {
        let mut sieve = Sieve::new(SieveConfig::default());
        let now = Instant::now();
        sieve.sift(vec![span("t", "handler", SpanKind::Internal)], now);
        let retry = vec![span("t", "process", SpanKind::Consumer)];
        let first = sieve.sift(retry.clone(), now);
        assert_eq!(ids(&first.released), ["handler"]);
        // The store refused that request: the released span is held again, and the retry brings it.
        sieve.hold_again(first.released, now);
        let second = sieve.sift(retry, now);
        assert_eq!(ids(&second.released), ["handler"]);
        assert_eq!(sieve.held(), 0);
    }

    #[test]
    fn a_trace_held_again_is_not_dropped_by_its_earlier_holding_s_expiry() {
        let config = SieveConfig {
            known_traces: 1,
            hold: Duration::from_secs(30),
            ..SieveConfig::default()
        };
        let mut sieve = Sieve::new(config);
        let t0 = Instant::now();
        sieve.sift(vec![span("t", "h1", SpanKind::Internal)], t0);
        sieve.sift(vec![span("t", "p1", SpanKind::Producer)], t0); // released
        sieve.sift(vec![span("u", "p2", SpanKind::Producer)], t0); // t forgotten
        let t1 = t0 + Duration::from_secs(20);
        sieve.sift(vec![span("t", "h2", SpanKind::Internal)], t1); // held anew
        let t2 = t0 + Duration::from_secs(31);
        let out = sieve.sift(vec![], t2);
        assert_eq!(
            (out.dropped, sieve.held()),
            (0, 1),
            "the first holding's expiry is stale"
        );
    }

    #[test]
    fn later_spans_of_a_known_trace_are_kept_at_once() {
        let mut sieve = Sieve::new(SieveConfig::default());
        let now = Instant::now();
        sieve.sift(vec![span("t", "send", SpanKind::Producer)], now);
        let out = sieve.sift(vec![span("t", "db", SpanKind::Client)], now);
        assert_eq!(ids(&out.keep), ["db"]);
    }
}
