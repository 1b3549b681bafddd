//! [`EventContext`]: everything the wire format says about one consumed record — its ids, its
//! place in the trace, its business keys, its CloudEvents attributes — and every problem met while
//! reading it.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{TraceContextExt, TraceState};
use opentelemetry::{Context, KeyValue};
use rdkafka::message::{Headers, Message};

use crate::aliases::AliasTable;
use crate::baggage;
use crate::headers::{self, RecordHeaders};
use crate::problem::HeaderProblem;
use crate::traceparent::TraceParent;

/// A text attribute together with the header it was read from (canonical or alias).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    /// The value.
    pub value: String,
    /// The header that supplied it, e.g. `ce_correlationid` or `x-correlation-id`.
    pub header: String,
}

/// The CloudEvents context attributes of a record (binary mode), as far as they were readable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudEventAttributes {
    /// `ce_specversion`.
    pub spec_version: Option<String>,
    /// `ce_source`: the producing service.
    pub source: Option<String>,
    /// `ce_type`.
    pub event_type: Option<String>,
    /// `ce_time`, parsed.
    pub time: Option<DateTime<FixedOffset>>,
    /// `ce_subject`: the business entity.
    pub subject: Option<String>,
    /// `content-type`.
    pub content_type: Option<String>,
}

/// What a consumed record's headers say, read leniently: fields that could not be read are `None`
/// and the reason is in [`problems`](EventContext::problems).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventContext {
    /// The event id (`ce_id` or an alias).
    pub event_id: Option<Sourced>,
    /// The id of the event whose handling produced this one (`ce_causationid` or an alias).
    pub causation_id: Option<Sourced>,
    /// The conversation id (`ce_correlationid` or an alias).
    pub correlation_id: Option<Sourced>,
    /// The W3C trace parent, when valid.
    pub trace_parent: Option<TraceParent>,
    /// The W3C trace state, when valid and accompanied by a valid parent.
    pub trace_state: Option<String>,
    /// Business keys from `baggage` (e.g. `order.id` → `o-1001`).
    pub keys: BTreeMap<String, String>,
    /// CloudEvents attributes.
    pub cloud_event: CloudEventAttributes,
    /// Everything that could not be used, with the reason.
    pub problems: Vec<HeaderProblem>,
}

/// Reads a single-valued text header, reporting null, non-UTF-8, empty and duplicated values.
/// The first usable value wins unless another one differs (then the header is unusable).
fn read_text<'a>(
    values: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>,
    problems: &mut Vec<HeaderProblem>,
) -> Option<Sourced> {
    // (header, trimmed value) of the first usable value; only the winner is copied.
    let mut first: Option<(&str, &str)> = None;
    let mut conflicting = false;
    let mut header_name = None;
    let mut count = 0;
    for (name, value) in values {
        count += 1;
        header_name.get_or_insert(name);
        let Some(bytes) = value else {
            problems.push(HeaderProblem::NullValue {
                header: name.to_owned(),
            });
            continue;
        };
        match std::str::from_utf8(bytes).map(str::trim) {
            Err(_) => problems.push(HeaderProblem::NotUtf8 {
                header: name.to_owned(),
            }),
            Ok("") => problems.push(HeaderProblem::Empty {
                header: name.to_owned(),
            }),
            Ok(text) => match first {
                None => first = Some((name, text)),
                Some((_, winner)) => conflicting |= winner != text,
            },
        }
    }
    if count > 1 {
        problems.push(HeaderProblem::Duplicated {
            header: header_name.unwrap_or_default().to_owned(),
            count,
            conflicting,
        });
        if conflicting {
            return None;
        }
    }
    first.map(|(header, value)| Sourced {
        value: value.to_owned(),
        header: header.to_owned(),
    })
}

/// Reads a list-valued header (W3C allows `baggage` and `tracestate` to be split over several
/// headers): UTF-8 values are joined with `,`.
fn read_list(
    headers: &RecordHeaders,
    name: &str,
    problems: &mut Vec<HeaderProblem>,
) -> Option<String> {
    let mut parts = Vec::new();
    for value in headers.get_all(name) {
        match value.map(std::str::from_utf8) {
            None => problems.push(HeaderProblem::NullValue {
                header: name.to_owned(),
            }),
            Some(Err(_)) => problems.push(HeaderProblem::NotUtf8 {
                header: name.to_owned(),
            }),
            Some(Ok(text)) if !text.trim().is_empty() => parts.push(text.trim()),
            Some(Ok(_)) => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

fn exact<'a>(
    headers: &'a RecordHeaders,
    name: &'a str,
) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
    headers.get_all(name).map(move |v| (name, v))
}

/// The canonical header if present, else the first alias present (ignoring case).
fn read_id(
    headers: &RecordHeaders,
    canonical: &str,
    aliases: &[String],
    problems: &mut Vec<HeaderProblem>,
) -> Option<Sourced> {
    if headers.contains(canonical) {
        return read_text(exact(headers, canonical), problems);
    }
    aliases.iter().find_map(|alias| {
        let mut found = headers.get_all_ignore_case(alias).peekable();
        found.peek()?;
        read_text(found, problems)
    })
}

impl EventContext {
    /// Reads the context of a consumed record, borrowed or owned.
    pub fn from_message<M: Message>(message: &M, aliases: &AliasTable) -> Self
    where
        M::Headers: Headers,
    {
        match message.headers() {
            Some(h) => Self::extract(&RecordHeaders::from_kafka(h), aliases),
            None => Self::extract(&RecordHeaders::new(), aliases),
        }
    }

    /// Reads the context from a header snapshot. Never fails: see [`EventContext::problems`].
    pub fn extract(headers: &RecordHeaders, aliases: &AliasTable) -> Self {
        let mut problems = Vec::new();
        let p = &mut problems;

        let event_id = read_id(headers, headers::CE_ID, &aliases.event_id, p);
        let mut causation_id = read_id(headers, headers::CE_CAUSATIONID, &aliases.causation_id, p);
        let correlation_id = read_id(
            headers,
            headers::CE_CORRELATIONID,
            &aliases.correlation_id,
            p,
        );
        if let (Some(id), Some(cause)) = (&event_id, &causation_id) {
            if id.value == cause.value {
                p.push(HeaderProblem::SelfCausation {
                    id: id.value.clone(),
                });
                causation_id = None;
            }
        }

        let trace_parent = read_text(exact(headers, headers::TRACEPARENT), p).and_then(|tp| {
            tp.value
                .parse::<TraceParent>()
                .map_err(|reason| {
                    p.push(HeaderProblem::InvalidTraceParent {
                        value: tp.value.clone(),
                        reason,
                    })
                })
                .ok()
        });
        let trace_state = read_list(headers, headers::TRACESTATE, p).and_then(|ts| {
            if ts.parse::<TraceState>().is_err() {
                p.push(HeaderProblem::InvalidTraceState { value: ts });
                None
            } else if trace_parent.is_none() {
                p.push(HeaderProblem::OrphanTraceState);
                None
            } else {
                Some(ts)
            }
        });
        let keys = match read_list(headers, headers::BAGGAGE, p) {
            Some(value) => {
                let (keys, mut found) = baggage::parse(&value);
                p.append(&mut found);
                keys
            }
            None => BTreeMap::new(),
        };

        let text = |name: &str, p: &mut Vec<HeaderProblem>| {
            read_text(exact(headers, name), p).map(|s| s.value)
        };
        let spec_version = text(headers::CE_SPECVERSION, p);
        if let Some(v) = spec_version
            .as_deref()
            .filter(|v| *v != headers::SPEC_VERSION)
        {
            p.push(HeaderProblem::UnsupportedSpecVersion {
                value: v.to_owned(),
            });
        }
        let time = text(headers::CE_TIME, p).and_then(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map_err(|_| {
                    p.push(HeaderProblem::InvalidTime {
                        header: headers::CE_TIME.to_owned(),
                        value: t.clone(),
                    })
                })
                .ok()
        });
        let cloud_event = CloudEventAttributes {
            spec_version,
            source: text(headers::CE_SOURCE, p),
            event_type: text(headers::CE_TYPE, p),
            time,
            subject: text(headers::CE_SUBJECT, p),
            content_type: text(headers::CONTENT_TYPE, p),
        };

        Self {
            event_id,
            causation_id,
            correlation_id,
            trace_parent,
            trace_state,
            keys,
            cloud_event,
            problems,
        }
    }

    /// The event id, if the record has one.
    pub fn id(&self) -> Option<&str> {
        self.event_id.as_ref().map(|s| s.value.as_str())
    }

    /// The correlation id of the conversation this event belongs to. An event without one starts
    /// its own conversation, so its own id is returned.
    pub fn conversation(&self) -> Option<&str> {
        self.correlation_id
            .as_ref()
            .map(|s| s.value.as_str())
            .or_else(|| self.id())
    }

    /// The OpenTelemetry context to continue from: the remote span of `traceparent` (if valid)
    /// and the business keys as baggage. Without a valid `traceparent` there is no remote span:
    /// no parent is invented.
    pub fn otel_context(&self) -> Context {
        let mut cx = Context::new();
        if let Some(tp) = &self.trace_parent {
            let state = self
                .trace_state
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or_default();
            cx = cx.with_remote_span_context(tp.to_span_context(state));
        }
        if !self.keys.is_empty() {
            cx = cx.with_baggage(
                self.keys
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                    .collect::<Vec<_>>(),
            );
        }
        cx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &[u8])]) -> RecordHeaders {
        pairs.iter().map(|(k, v)| (*k, v.to_vec())).collect()
    }

    fn kinds(cx: &EventContext) -> Vec<&'static str> {
        cx.problems.iter().map(HeaderProblem::kind).collect()
    }

    #[test]
    fn canonical_headers_are_read_completely() {
        let cx = EventContext::extract(
            &headers(&[
                ("traceparent", TP.as_bytes()),
                ("tracestate", b"vendor=x"),
                ("baggage", b"order.id=o-1001"),
                ("ce_specversion", b"1.0"),
                ("ce_id", b"e-2"),
                ("ce_source", b"payment"),
                ("ce_type", b"PaymentCaptured"),
                ("ce_time", b"2026-11-29T10:00:00.123Z"),
                ("ce_subject", b"order/o-1001"),
                ("content-type", b"application/json"),
                ("ce_causationid", b"e-1"),
                ("ce_correlationid", b"e-1"),
            ]),
            &AliasTable::default(),
        );
        assert!(cx.problems.is_empty(), "{:?}", cx.problems);
        assert_eq!(cx.id(), Some("e-2"));
        assert_eq!(cx.causation_id.as_ref().unwrap().value, "e-1");
        assert_eq!(cx.conversation(), Some("e-1"));
        assert_eq!(cx.trace_parent.unwrap().to_string(), TP);
        assert_eq!(cx.trace_state.as_deref(), Some("vendor=x"));
        assert_eq!(cx.keys.get("order.id").map(String::as_str), Some("o-1001"));
        assert_eq!(
            cx.cloud_event.event_type.as_deref(),
            Some("PaymentCaptured")
        );
        assert_eq!(cx.cloud_event.subject.as_deref(), Some("order/o-1001"));
        assert_eq!(
            cx.cloud_event.time.unwrap().timestamp_millis(),
            1_795_946_400_123
        );
    }

    #[test]
    fn no_headers_means_nothing_known_and_nothing_wrong() {
        let cx = EventContext::extract(&RecordHeaders::new(), &AliasTable::default());
        assert_eq!(cx, EventContext::default());
        assert!(!cx.otel_context().span().span_context().is_valid());
    }

    #[test]
    fn aliases_are_used_when_canonical_headers_are_absent_and_say_where_from() {
        let cx = EventContext::extract(
            &headers(&[
                ("Message-ID", b"m-1"),
                ("X-Correlation-Id", b"c-1"),
                ("causation-id", b"p-1"),
            ]),
            &AliasTable::default(),
        );
        assert_eq!(cx.event_id.as_ref().unwrap().header, "Message-ID");
        assert_eq!(cx.correlation_id.as_ref().unwrap().value, "c-1");
        assert_eq!(cx.causation_id.as_ref().unwrap().value, "p-1");
    }

    #[test]
    fn canonical_header_wins_over_alias() {
        let cx = EventContext::extract(
            &headers(&[
                ("correlation-id", b"alias"),
                ("ce_correlationid", b"canonical"),
            ]),
            &AliasTable::default(),
        );
        assert_eq!(cx.correlation_id.unwrap().value, "canonical");
    }

    #[test]
    fn framework_profile_reads_its_own_names_only() {
        let nsb = headers(&[
            ("NServiceBus.MessageId", b"m"),
            ("NServiceBus.ConversationId", b"c"),
            ("NServiceBus.RelatedTo", b"p"),
        ]);
        let cx = EventContext::extract(&nsb, &AliasTable::profile("nservicebus").unwrap());
        assert_eq!((cx.id(), cx.conversation()), (Some("m"), Some("c")));
        assert_eq!(cx.causation_id.unwrap().value, "p");
        let generic = EventContext::extract(&nsb, &AliasTable::default());
        assert_eq!(generic.id(), None);
    }

    #[test]
    fn malformed_traceparent_is_reported_and_no_parent_is_invented() {
        let cx = EventContext::extract(
            &headers(&[
                (
                    "traceparent",
                    b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                ),
                ("tracestate", b"a=b"),
            ]),
            &AliasTable::default(),
        );
        assert!(cx.trace_parent.is_none());
        assert_eq!(kinds(&cx), vec!["invalid_traceparent", "orphan_tracestate"]);
        assert!(!cx.otel_context().span().span_context().is_valid());
    }

    #[test]
    fn non_utf8_header_is_reported_not_decoded() {
        let cx = EventContext::extract(
            &headers(&[("ce_id", &[0xc3, 0x28]), ("traceparent", &[0xff; 55])]),
            &AliasTable::default(),
        );
        assert_eq!(cx.id(), None);
        assert!(cx.trace_parent.is_none());
        assert_eq!(kinds(&cx), vec!["not_utf8", "not_utf8"]);
    }

    #[test]
    fn conflicting_duplicates_are_treated_as_absent_identical_ones_are_used() {
        let conflicting = EventContext::extract(
            &headers(&[("ce_id", b"a"), ("ce_id", b"b")]),
            &AliasTable::default(),
        );
        assert_eq!(conflicting.id(), None);
        assert!(matches!(
            conflicting.problems[0],
            HeaderProblem::Duplicated {
                count: 2,
                conflicting: true,
                ..
            }
        ));
        let same = EventContext::extract(
            &headers(&[
                ("traceparent", TP.as_bytes()),
                ("traceparent", TP.as_bytes()),
            ]),
            &AliasTable::default(),
        );
        assert!(same.trace_parent.is_some());
        assert!(matches!(
            same.problems[0],
            HeaderProblem::Duplicated {
                conflicting: false,
                ..
            }
        ));
    }

    #[test]
    fn null_and_empty_values_are_reported() {
        let mut h = RecordHeaders::new();
        h.push("ce_id", None);
        h.push("ce_type", Some(b"  ".to_vec()));
        let cx = EventContext::extract(&h, &AliasTable::default());
        assert_eq!(kinds(&cx), vec!["null_value", "empty"]);
        assert_eq!(cx.cloud_event.event_type, None);
    }

    #[test]
    fn split_baggage_headers_are_combined() {
        let cx = EventContext::extract(
            &headers(&[("baggage", b"order.id=o-1"), ("baggage", b"member.id=m-7")]),
            &AliasTable::default(),
        );
        assert_eq!(cx.keys.len(), 2);
        assert!(cx.problems.is_empty());
    }

    #[test]
    fn oversized_baggage_is_reported() {
        let big = format!("blob={}", "x".repeat(9000));
        let cx = EventContext::extract(
            &headers(&[("baggage", big.as_bytes())]),
            &AliasTable::default(),
        );
        assert_eq!(kinds(&cx)[0], "baggage_too_large");
    }

    #[test]
    fn self_causation_is_reported_and_not_used_as_a_parent() {
        let cx = EventContext::extract(
            &headers(&[("ce_id", b"e-1"), ("ce_causationid", b"e-1")]),
            &AliasTable::default(),
        );
        assert!(cx.causation_id.is_none());
        assert_eq!(kinds(&cx), vec!["self_causation"]);
    }

    #[test]
    fn bad_time_and_spec_version_are_reported() {
        let cx = EventContext::extract(
            &headers(&[("ce_time", b"yesterday"), ("ce_specversion", b"0.3")]),
            &AliasTable::default(),
        );
        assert_eq!(kinds(&cx), vec!["unsupported_specversion", "invalid_time"]);
    }

    #[test]
    fn otel_context_carries_remote_parent_and_baggage() {
        let cx = EventContext::extract(
            &headers(&[("traceparent", TP.as_bytes()), ("baggage", b"order.id=o-9")]),
            &AliasTable::default(),
        )
        .otel_context();
        let sc = cx.span().span_context().clone();
        assert!(sc.is_remote() && sc.is_valid());
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(
            cx.baggage().get("order.id").map(|v| v.as_str()),
            Some("o-9")
        );
    }
}
