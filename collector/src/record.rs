//! Interpreting a consumed record: from raw Kafka fields to the [`EventRecord`] the store keeps.
//!
//! Interpretation never fails. Whatever cannot be read is kept raw (headers binary-safe, payload
//! up to the limit) and described in [`EventRecord::problems`].

use std::collections::BTreeSet;

use base64::Engine as _;
use choreoscope_sdk::{EventContext, HeaderProblem, RecordHeaders};
use serde::{Deserialize, Serialize};

use crate::rules::Rules;

/// The raw fields of a consumed record.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value.
    pub payload: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a RecordHeaders,
    /// Broker (or producer) timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

/// Something the collector could not interpret, stored with the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable kind, e.g. `invalid_traceparent` or `payload_not_json`.
    pub kind: String,
    /// Human-readable explanation.
    pub detail: String,
}

impl From<&HeaderProblem> for Problem {
    fn from(p: &HeaderProblem) -> Self {
        Self {
            kind: p.kind().to_owned(),
            detail: p.to_string(),
        }
    }
}

/// One event as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Event id: `ce_id`, an alias, or derived from the record's position.
    pub event_id: String,
    /// The header that supplied the id, or `derived`.
    pub id_source: String,
    /// Topic of (first) delivery.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Record key bytes.
    pub record_key: Option<Vec<u8>>,
    /// Broker timestamp, µs since the epoch.
    pub broker_time_us: Option<i64>,
    /// `ce_time`, µs since the epoch.
    pub event_time_us: Option<i64>,
    /// The best-known time of the event: `ce_time`, else broker time, else ingest time (µs).
    pub time_us: i64,
    /// `ce_type`.
    pub event_type: Option<String>,
    /// `ce_source`.
    pub source: Option<String>,
    /// `ce_subject`.
    pub subject: Option<String>,
    /// `content-type`.
    pub content_type: Option<String>,
    /// Trace id from `traceparent`.
    pub trace_id: Option<String>,
    /// Span id (the producing span) from `traceparent`.
    pub span_id: Option<String>,
    /// `ce_causationid` or alias.
    pub causation_id: Option<String>,
    /// `ce_correlationid` or alias.
    pub correlation_id: Option<String>,
    /// Every header, binary-safe JSON: `[[name, "text" | {"base64": "…"} | null], …]`.
    pub headers_json: String,
    /// Payload, cut at the configured limit.
    pub payload: Option<Vec<u8>>,
    /// Payload size before cutting.
    pub payload_size: i64,
    /// Whether the payload was cut.
    pub payload_truncated: bool,
    /// Everything that could not be interpreted.
    pub problems: Vec<Problem>,
    /// Business keys `(name, value)`, deduplicated.
    pub keys: Vec<(String, String)>,
    /// When the collector read it, µs since the epoch.
    pub ingested_at_us: i64,
}

/// Turns raw records into [`EventRecord`]s.
#[derive(Debug, Clone)]
pub struct Interpreter {
    rules: Rules,
    max_payload: usize,
}

/// Encodes headers as binary-safe JSON.
pub fn headers_to_json(headers: &RecordHeaders) -> String {
    let list: Vec<serde_json::Value> = headers
        .iter()
        .map(|(name, value)| {
            let value = match value {
                None => serde_json::Value::Null,
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => serde_json::Value::String(text.to_owned()),
                    Err(_) => serde_json::json!({
                        "base64": base64::engine::general_purpose::STANDARD.encode(bytes)
                    }),
                },
            };
            serde_json::json!([name, value])
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn looks_like_json(payload: &[u8]) -> bool {
    matches!(
        payload.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Interpreter {
    /// An interpreter with these rules, keeping at most `max_payload` bytes of each payload.
    pub fn new(rules: Rules, max_payload: usize) -> Self {
        Self { rules, max_payload }
    }

    /// Interprets one record. Never fails.
    pub fn interpret(&self, raw: RawRecord<'_>, ingested_at_us: i64) -> EventRecord {
        let cx = EventContext::extract(raw.headers, self.rules.aliases_for(raw.topic));
        let mut problems: Vec<Problem> = cx.problems.iter().map(Problem::from).collect();

        let (event_id, id_source) = match &cx.event_id {
            Some(id) => (id.value.clone(), id.header.clone()),
            None => {
                let derived = format!("kafka:{}/{}/{}", raw.topic, raw.partition, raw.offset);
                problems.push(Problem {
                    kind: "no_event_id".into(),
                    detail: format!("no ce_id or alias header; id derived from the record's position: {derived}"),
                });
                (derived, "derived".to_owned())
            }
        };

        let payload_size = raw.payload.map_or(0, <[u8]>::len);
        let payload_truncated = payload_size > self.max_payload;
        if payload_truncated {
            problems.push(Problem {
                kind: "payload_truncated".into(),
                detail: format!(
                    "payload of {payload_size} bytes cut to {} bytes",
                    self.max_payload
                ),
            });
        }
        let content_type = cx.cloud_event.content_type.clone();
        let claims_json = content_type
            .as_deref()
            .is_some_and(|ct| ct.contains("json"));
        let json = match raw.payload {
            Some(p) if claims_json || (content_type.is_none() && looks_like_json(p)) => {
                match serde_json::from_slice::<serde_json::Value>(p) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        problems.push(Problem {
                            kind: "payload_not_json".into(),
                            detail: format!(
                                "payload {} but is not JSON: {e}",
                                if claims_json {
                                    "is declared JSON"
                                } else {
                                    "looks like JSON"
                                }
                            ),
                        });
                        None
                    }
                }
            }
            _ => None,
        };

        let mut keys: BTreeSet<(String, String)> = cx.keys.clone().into_iter().collect();
        if let Some(subject) = &cx.cloud_event.subject {
            keys.insert(("subject".into(), subject.clone()));
            if let Some((entity, id)) = subject.split_once('/') {
                if !entity.is_empty() && !id.is_empty() && !entity.contains(char::is_whitespace) {
                    keys.insert((format!("{entity}.id"), id.to_owned()));
                }
            }
        }
        if let Some(key) = raw.key.and_then(|k| std::str::from_utf8(k).ok()) {
            if !key.is_empty() {
                keys.insert(("kafka.key".into(), key.to_owned()));
            }
        }
        if let Some(json) = &json {
            for rule in self
                .rules
                .key_rules
                .iter()
                .filter(|r| r.topics.matches(raw.topic))
            {
                if let Some(value) = json.pointer(&rule.pointer).and_then(scalar_text) {
                    keys.insert((rule.key.clone(), value));
                }
            }
        }

        let broker_time_us = raw.timestamp_ms.filter(|t| *t >= 0).map(|t| t * 1000);
        let event_time_us = cx.cloud_event.time.map(|t| t.timestamp_micros());
        EventRecord {
            event_id,
            id_source,
            topic: raw.topic.to_owned(),
            partition: raw.partition,
            offset: raw.offset,
            record_key: raw.key.map(<[u8]>::to_vec),
            broker_time_us,
            event_time_us,
            time_us: event_time_us.or(broker_time_us).unwrap_or(ingested_at_us),
            event_type: cx.cloud_event.event_type.clone(),
            source: cx.cloud_event.source.clone(),
            subject: cx.cloud_event.subject.clone(),
            content_type,
            trace_id: cx.trace_parent.map(|t| t.trace_id.to_string()),
            span_id: cx.trace_parent.map(|t| t.parent_id.to_string()),
            causation_id: cx.causation_id.map(|s| s.value),
            correlation_id: cx.correlation_id.map(|s| s.value),
            headers_json: headers_to_json(raw.headers),
            payload: raw
                .payload
                .map(|p| p[..p.len().min(self.max_payload)].to_vec()),
            payload_size: payload_size as i64,
            payload_truncated,
            problems,
            keys: keys.into_iter().collect(),
            ingested_at_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::ConfigFile;

    fn interpreter(rules: &[&str]) -> Interpreter {
        let config = ConfigFile {
            key_rules: rules.iter().map(|s| s.to_string()).collect(),
            ..ConfigFile::default()
        };
        Interpreter::new(Rules::from_config(&config).unwrap(), 64)
    }

    fn raw<'a>(headers: &'a RecordHeaders, payload: Option<&'a [u8]>) -> RawRecord<'a> {
        RawRecord {
            topic: "orders",
            partition: 2,
            offset: 41,
            key: Some(b"o-1"),
            payload,
            headers,
            timestamp_ms: Some(1_700_000_000_000),
        }
    }

    fn kinds(e: &EventRecord) -> Vec<&str> {
        e.problems.iter().map(|p| p.kind.as_str()).collect()
    }

    #[test]
    fn record_without_headers_gets_a_derived_id_and_says_so() {
        let h = RecordHeaders::new();
        let e = interpreter(&[]).interpret(raw(&h, Some(b"plain text")), 5);
        assert_eq!(e.event_id, "kafka:orders/2/41");
        assert_eq!(e.id_source, "derived");
        assert_eq!(kinds(&e), vec!["no_event_id"]);
        assert_eq!(
            e.time_us, 1_700_000_000_000_000,
            "broker time when no ce_time"
        );
        assert_eq!(e.keys, vec![("kafka.key".to_string(), "o-1".to_string())]);
    }

    #[test]
    fn keys_come_from_baggage_subject_record_key_and_rules() {
        let h: RecordHeaders = [
            ("ce_id", "e-1"),
            ("ce_subject", "order/o-1"),
            ("baggage", "member.id=m-7"),
            ("content-type", "application/json"),
        ]
        .into_iter()
        .collect();
        let e = interpreter(&["ord.* : /customer/id -> customer.id"])
            .interpret(raw(&h, Some(br#"{"customer":{"id":42}}"#)), 0);
        let keys: Vec<_> = e.keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            keys,
            vec![
                "customer.id=42",
                "kafka.key=o-1",
                "member.id=m-7",
                "order.id=o-1",
                "subject=order/o-1"
            ]
        );
        assert!(e.problems.is_empty());
    }

    #[test]
    fn big_payload_is_cut_and_marked_with_its_real_size() {
        let h: RecordHeaders = [("ce_id", "e-1")].into_iter().collect();
        let big = vec![b'x'; 1000];
        let e = interpreter(&[]).interpret(raw(&h, Some(&big)), 0);
        assert_eq!(e.payload.as_ref().unwrap().len(), 64);
        assert_eq!(e.payload_size, 1000);
        assert!(e.payload_truncated);
        assert_eq!(kinds(&e), vec!["payload_truncated"]);
    }

    #[test]
    fn declared_json_that_is_not_json_is_a_problem_binary_without_type_is_not() {
        let json: RecordHeaders = [("ce_id", "e"), ("content-type", "application/json")]
            .into_iter()
            .collect();
        let e = interpreter(&[]).interpret(raw(&json, Some(b"{not json")), 0);
        assert_eq!(kinds(&e), vec!["payload_not_json"]);
        let untyped: RecordHeaders = [("ce_id", "e")].into_iter().collect();
        let e = interpreter(&[]).interpret(raw(&untyped, Some(&[0, 159, 146, 150])), 0);
        assert!(e.problems.is_empty());
    }

    #[test]
    fn binary_headers_are_kept_as_base64_and_reported() {
        let mut h = RecordHeaders::new();
        h.push("ce_id", Some(vec![0xff, 0xfe]));
        h.push("nothing", None);
        let e = interpreter(&[]).interpret(raw(&h, None), 0);
        assert_eq!(
            e.headers_json,
            r#"[["ce_id",{"base64":"//4="}],["nothing",null]]"#
        );
        assert_eq!(kinds(&e), vec!["not_utf8", "no_event_id"]);
    }
}
