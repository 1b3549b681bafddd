//! "How is each service instrumented, and what lineage does that allow?" — per producing
//! service, how its recent events arrive (ids, causation, correlation, trace context, baggage),
//! whether it sends spans, the best lineage that gives, and what to add.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{headers_from_json, rfc3339};
use super::QueryError;
use crate::store::{CoverageRow, SpanServiceRow, Store};

/// Events read per answer: the newest of the window.
pub const SAMPLE: i64 = 100_000;

/// Events per service whose `baggage` headers are read for their entry names.
const BAGGAGE_SAMPLE: i64 = 50;

/// The name shown for records whose service is not known (no `ce_source`, no span).
pub const UNKNOWN_SERVICE: &str = "(unknown)";

/// Longest window asked about: 30 days.
pub const MAX_WINDOW_US: i64 = 30 * 24 * 3600 * 1_000_000;

/// Reads a look-back window, a number (1 to 6 digits, no leading zero) and a unit — `s`, `m`,
/// `h` or `d` — such as `24h`, in µs; longer than [`MAX_WINDOW_US`] reads as that.
pub fn parse_window(w: &str) -> Result<i64, QueryError> {
    let bad = || {
        QueryError::BadParameter(format!(
            "`window` = `{w}`: a number and a unit (s, m, h or d), e.g. 24h"
        ))
    };
    if !w.is_ascii() {
        return Err(bad());
    }
    let (digits, unit) = w.split_at(w.len().saturating_sub(1));
    if digits.is_empty()
        || digits.len() > 6
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    Ok((n * seconds * 1_000_000).min(MAX_WINDOW_US))
}

/// The best lineage a service's events allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineageLevel {
    /// Its events name their causes (`ce_causationid`).
    Declared,
    /// Its consumer and producer spans reach the collector: every reaction is linked.
    Spans,
    /// Only trace context: a reaction is linked when it carries its cause's span unchanged.
    SameSpan,
    /// Nothing to link by.
    None,
}

/// Spans received from a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SpanCoverage {
    /// Spans stored.
    pub received: i64,
    /// Consumer spans.
    pub consumer: i64,
    /// Producer spans.
    pub producer: i64,
    /// Failed spans.
    pub failed: i64,
    /// When its newest span started (RFC 3339).
    pub last_seen: String,
}

/// One service's instrumentation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceCoverage {
    /// The service: `ce_source`, else the `service.name` of the span that produced the record.
    pub service: String,
    /// Events it produced in the window (of the newest read).
    pub events: i64,
    /// Of those, with an id header (`ce_id` or an alias).
    pub with_ce_id: i64,
    /// With a causation id.
    pub with_causation: i64,
    /// With a correlation id.
    pub with_correlation: i64,
    /// With a `traceparent`.
    pub with_traceparent: i64,
    /// Names of the `baggage` entries its recent events carry.
    pub baggage_keys: Vec<String>,
    /// Spans received from it (`null`: none).
    #[schema(required)]
    pub spans: Option<SpanCoverage>,
    /// The best lineage its events allow.
    pub lineage: LineageLevel,
    /// That, in a sentence.
    pub lineage_note: String,
    /// What to add, each a sentence.
    pub advice: Vec<String>,
}

/// The services answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServicesAnswer {
    /// Start of the window (RFC 3339).
    pub from: String,
    /// End of the window (RFC 3339).
    pub to: String,
    /// Events read: the newest of the window, at most [`SAMPLE`].
    pub sampled_events: i64,
    /// One entry per service, by name.
    pub services: Vec<ServiceCoverage>,
}

/// The names of the entries of every `baggage` header in `headers` (stored header JSON).
fn baggage_keys(headers: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for json in headers {
        for h in headers_from_json(json) {
            if !h.name.eq_ignore_ascii_case("baggage") {
                continue;
            }
            let Some(value) = h
                .value
                .filter(|v| v.encoding == super::model::Encoding::Utf8)
            else {
                continue;
            };
            for member in value.data.split(',') {
                let name = member.split(['=', ';']).next().unwrap_or("").trim();
                if !name.is_empty() {
                    out.insert(name.to_owned());
                }
            }
        }
    }
    out
}

fn share(n: i64, of: i64) -> String {
    if of == 0 {
        return "0%".into();
    }
    format!("{}%", (n * 100 + of / 2) / of)
}

/// The lineage level, its note and the advice for one service.
fn judge(c: &CoverageRow, spans: Option<&SpanServiceRow>) -> (LineageLevel, String, Vec<String>) {
    let has_spans = spans.is_some_and(|s| s.consumer + s.producer > 0);
    let mut advice = Vec::new();
    // A service whose events carry ids and a correlation but name no cause starts flows: its
    // events are roots, declared as such.
    let starts_flows = c.events > 0 && c.with_ce_id == c.events && c.with_correlation == c.events;
    let level = if c.with_causation > 0 || starts_flows {
        LineageLevel::Declared
    } else if has_spans {
        LineageLevel::Spans
    } else if c.with_traceparent > 0 {
        LineageLevel::SameSpan
    } else {
        LineageLevel::None
    };
    let note = match level {
        LineageLevel::Declared if c.with_causation == 0 => "Its events carry ids and a \
             correlation and name no cause: they start flows."
            .to_owned(),
        LineageLevel::Declared => format!(
            "{} of its events name their cause (ce_causationid): their edges are declared.",
            share(c.with_causation, c.events)
        ),
        LineageLevel::Spans => "Its consumer and producer spans reach Choreoscope: each event it \
             produces is linked to the record its handler was processing."
            .to_owned(),
        LineageLevel::SameSpan => "Only trace context: an event is linked to its cause only when \
             it carries the cause's span unchanged."
            .to_owned(),
        LineageLevel::None => {
            "Nothing to link its events by: they start flows of their own.".to_owned()
        }
    };
    if c.events > 0 && level != LineageLevel::Declared && !has_spans {
        advice.push(
            "Send its traces to Choreoscope (OTLP to --otlp-grpc or --otlp-http) with its Kafka \
             instrumentation on, or set ce_causationid on what it produces (docs/instrumenting.md)."
                .to_owned(),
        );
    }
    if c.events > 0 && c.with_traceparent < c.events {
        advice.push(format!(
            "{} of its events carry no traceparent: turn on its OpenTelemetry Kafka producer \
             instrumentation so trace context travels with them.",
            share(c.events - c.with_traceparent, c.events)
        ));
    }
    if c.events > 0 && c.with_ce_id < c.events {
        advice.push(format!(
            "{} of its events carry no ce_id: their ids are derived from the record's position, so \
             a re-published copy looks like a new event; set ce_id (CloudEvents binary mode).",
            share(c.events - c.with_ce_id, c.events)
        ));
    }
    if c.events > 0 && c.with_correlation == 0 && level != LineageLevel::Spans {
        advice.push(
            "Its events carry no correlation id: set ce_correlationid, or add a key rule for the \
             business id in its payload, to group them into flows."
                .to_owned(),
        );
    }
    if spans.is_some_and(|s| s.consumer == 0) && c.events > 0 {
        advice.push(
            "Its spans reach Choreoscope but none is a consumer span: instrument its Kafka \
             consumer so its handlings are seen."
                .to_owned(),
        );
    }
    (level, note, advice)
}

/// The services answer for `[from_us, to_us)`.
pub async fn services(
    store: &Store,
    from_us: i64,
    to_us: i64,
) -> Result<ServicesAnswer, QueryError> {
    if from_us >= to_us {
        return Err(QueryError::Unusable("the window is empty".into()));
    }
    let coverage = store.coverage(from_us, to_us, SAMPLE).await?;
    let spans: BTreeMap<String, SpanServiceRow> = store
        .span_services(from_us)
        .await?
        .into_iter()
        .map(|s| (s.service.clone(), s))
        .collect();
    let mut by_name: BTreeMap<String, CoverageRow> = coverage
        .into_iter()
        .map(|c| (c.service.clone(), c))
        .collect();
    for name in spans.keys() {
        by_name.entry(name.clone()).or_insert_with(|| CoverageRow {
            service: name.clone(),
            events: 0,
            with_ce_id: 0,
            with_causation: 0,
            with_correlation: 0,
            with_traceparent: 0,
            with_baggage: 0,
        });
    }
    let sampled_events = by_name.values().map(|c| c.events).sum();
    let mut services = Vec::with_capacity(by_name.len());
    for (name, c) in by_name {
        let span_row = spans.get(&name);
        let baggage = if c.with_baggage > 0 && !name.is_empty() {
            baggage_keys(
                &store
                    .baggage_of(&name, from_us, to_us, BAGGAGE_SAMPLE)
                    .await?,
            )
        } else {
            BTreeSet::new()
        };
        let (lineage, lineage_note, advice) = judge(&c, span_row);
        services.push(ServiceCoverage {
            service: if name.is_empty() {
                UNKNOWN_SERVICE.to_owned()
            } else {
                name
            },
            events: c.events,
            with_ce_id: c.with_ce_id,
            with_causation: c.with_causation,
            with_correlation: c.with_correlation,
            with_traceparent: c.with_traceparent,
            baggage_keys: baggage.into_iter().collect(),
            spans: span_row.map(|s| SpanCoverage {
                received: s.received,
                consumer: s.consumer,
                producer: s.producer,
                failed: s.failed,
                last_seen: rfc3339(s.last_us),
            }),
            lineage,
            lineage_note,
            advice,
        });
    }
    services.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(ServicesAnswer {
        from: rfc3339(from_us),
        to: rfc3339(to_us),
        sampled_events,
        services,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(events: i64) -> CoverageRow {
        CoverageRow {
            service: "svc".into(),
            events,
            with_ce_id: 0,
            with_causation: 0,
            with_correlation: 0,
            with_traceparent: events,
            with_baggage: 0,
        }
    }

    #[test]
    fn a_window_is_a_number_and_a_unit_and_at_most_thirty_days() {
        assert_eq!(parse_window("90s").unwrap(), 90_000_000);
        assert_eq!(parse_window("24h").unwrap(), 86_400_000_000);
        assert_eq!(parse_window("999999d").unwrap(), MAX_WINDOW_US);
        for bad in [
            "", "h", "0h", "01h", "1w", "1.5h", "-1h", "1234567h", "24 h", "1é",
        ] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn baggage_entry_names_are_read_from_every_baggage_header() {
        let headers = vec![
            r#"[["baggage","member.id=m-7,tenant=acme;prop=1"]]"#.to_owned(),
            r#"[["Baggage","region=eu"],["other","x=y"]]"#.to_owned(),
        ];
        let keys: Vec<String> = baggage_keys(&headers).into_iter().collect();
        assert_eq!(keys, ["member.id", "region", "tenant"]);
    }

    #[test]
    fn trace_context_without_spans_allows_only_the_same_span_rule_and_says_what_to_add() {
        let (level, _, advice) = judge(&row(10), None);
        assert_eq!(level, LineageLevel::SameSpan);
        assert!(advice.iter().any(|a| a.contains("OTLP")), "{advice:?}");
        assert!(advice.iter().any(|a| a.contains("ce_id")), "{advice:?}");
    }

    #[test]
    fn consumer_spans_give_lineage_through_spans() {
        let spans = SpanServiceRow {
            service: "svc".into(),
            received: 30,
            consumer: 10,
            producer: 10,
            failed: 1,
            last_us: 0,
        };
        let (level, _, advice) = judge(&row(10), Some(&spans));
        assert_eq!(level, LineageLevel::Spans);
        assert!(!advice.iter().any(|a| a.contains("OTLP")), "{advice:?}");
    }

    #[test]
    fn a_service_whose_events_carry_ids_and_correlation_but_no_cause_starts_flows() {
        let mut c = row(10);
        c.with_ce_id = 10;
        c.with_correlation = 10;
        let (level, note, _) = judge(&c, None);
        assert_eq!(level, LineageLevel::Declared);
        assert!(note.contains("start flows"), "{note}");
    }

    #[test]
    fn declared_causation_wins() {
        let mut c = row(10);
        c.with_causation = 9;
        assert_eq!(judge(&c, None).0, LineageLevel::Declared);
    }
}
