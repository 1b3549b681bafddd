//! Interpreting a consumed record: from raw Kafka fields to the [`EventRecord`] the store keeps.
//!
//! Interpretation never fails. Whatever cannot be read is kept raw (headers binary-safe, payload
//! up to the limit) and described in [`EventRecord::problems`].

use std::collections::BTreeSet;

use base64::Engine as _;
use choreoscope_sdk::{EventContext, HeaderProblem, RecordHeaders};
use serde::{Deserialize, Serialize};

use crate::dead_letter::{self, Original};
use crate::redact::{KeyPolicy, PayloadPolicy, Redaction, RedactionNote, MASK};
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
    /// What redaction removed before it was stored, when anything.
    pub redactions: Option<RedactionNote>,
    /// Set when the record is a dead-letter copy of another event (see [`crate::dead_letter`]):
    /// the store keeps it apart, as that event's failure, neither a new event nor a delivery.
    pub dead_letter: Option<DeadLetterMark>,
}

/// What makes a record a dead-letter copy: the event it is a copy of, and why that one failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterMark {
    /// The failed event's id: the id the copy carries (`ce_id` or an alias), else the id derived
    /// from the original position the headers name.
    pub original_id: String,
    /// The original's position, when the headers name it.
    pub original: Option<(String, i32, i64)>,
    /// What recognised it: `spring`, `connect` or `topic_name`.
    pub recognised_by: &'static str,
    /// Who failed it and why, one line (`bank-group: java.lang.IllegalStateException: card expired`).
    pub reason: String,
    /// The consumer group that gave up on it, when the headers say.
    pub consumer_group: Option<String>,
}

impl EventRecord {
    /// When a dead-letter copy was dead-lettered: its broker time, else when it was read (its
    /// `ce_time` is the original's, copied with its headers).
    pub fn dead_lettered_at_us(&self) -> i64 {
        self.broker_time_us.unwrap_or(self.ingested_at_us)
    }
}

/// The id the collector gives a record that names none: derived from its position.
pub fn derived_id(topic: &str, partition: i32, offset: i64) -> String {
    format!("kafka:{topic}/{partition}/{offset}")
}

/// Turns raw records into [`EventRecord`]s.
#[derive(Debug, Clone)]
pub struct Interpreter {
    rules: Rules,
    max_payload: usize,
    redaction: Redaction,
}

/// Encodes business keys as JSON, `[["name","value"],…]` (what the SQLite store keeps on the row).
pub fn keys_to_json<'a, I>(keys: I) -> String
where
    I: IntoIterator<Item = &'a (String, String)>,
    I::IntoIter: Clone,
{
    let keys = keys.into_iter();
    let capacity = 2 + keys
        .clone()
        .map(|(n, v)| n.len() + v.len() + 8)
        .sum::<usize>();
    json_pairs(
        keys.map(|(n, v)| (n.as_str(), v.as_str())),
        capacity,
        json_string,
    )
}

/// Encodes headers as binary-safe JSON: `[[name, "text" | {"base64": "…"} | null], …]`.
///
/// Written straight into the string (this runs for every record: building a `serde_json::Value`
/// per header first took half of the interpretation's instructions).
pub fn headers_to_json(headers: &RecordHeaders) -> String {
    let capacity = 64
        + headers
            .iter()
            .map(|(n, v)| n.len() + v.map_or(4, <[u8]>::len) + 8)
            .sum::<usize>();
    json_pairs(headers.iter(), capacity, |out, value| match value {
        None => out.extend_from_slice(b"null"),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => json_string(out, text),
            Err(_) => {
                out.extend_from_slice(br#"{"base64":""#);
                out.extend_from_slice(
                    base64::engine::general_purpose::STANDARD
                        .encode(bytes)
                        .as_bytes(),
                );
                out.extend_from_slice(br#""}"#);
            }
        },
    })
}

/// `detail` with each `` `quoted` `` part that is (part of) one of the `dropped` header values
/// replaced by [`MASK`]: a problem quotes what it could not read, and a dropped value is quoted
/// nowhere.
fn unquote_dropped(detail: &str, dropped: &[String]) -> String {
    let mut parts = detail.split('`');
    let mut out = parts.next().unwrap_or_default().to_owned();
    // Every other part is quoted; the text between quotes is kept as it is.
    for (i, part) in parts.enumerate() {
        out.push('`');
        let quoted = i % 2 == 0;
        if quoted && !part.is_empty() && dropped.iter().any(|v| v.contains(part)) {
            out.push_str(MASK);
        } else {
            out.push_str(part);
        }
    }
    out
}

/// [`headers_to_json`] with the values of the headers `drops` names replaced by
/// [`MASK`], and their names noted.
fn headers_to_json_dropping(
    headers: &RecordHeaders,
    drops: impl Fn(&str) -> bool,
    note: &mut RedactionNote,
) -> String {
    let mut kept = RecordHeaders::default();
    for (name, value) in headers.iter() {
        if drops(name) {
            if !note.headers.iter().any(|n| n == name) {
                note.headers.push(name.to_owned());
            }
            kept.push(name, Some(MASK.as_bytes().to_vec()));
        } else {
            kept.push(name, value.map(<[u8]>::to_vec));
        }
    }
    headers_to_json(&kept)
}

/// Writes `[[name, value], …]`: each name a JSON string, each value as `value` writes it (which
/// must write valid UTF-8 JSON).
fn json_pairs<'a, V>(
    pairs: impl Iterator<Item = (&'a str, V)>,
    capacity: usize,
    mut value: impl FnMut(&mut Vec<u8>, V),
) -> String {
    let mut out = Vec::with_capacity(capacity);
    out.push(b'[');
    for (i, (name, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        json_string(&mut out, name);
        out.push(b',');
        value(&mut out, v);
        out.push(b']');
    }
    out.push(b']');
    // Only valid UTF-8 went in: names are `str`, values write UTF-8, the rest is ASCII.
    String::from_utf8(out).expect("JSON text of str values is UTF-8")
}

/// Appends `text` as a JSON string literal (serde_json's escaping).
pub(crate) fn json_string(out: &mut Vec<u8>, text: &str) {
    // Most header values need no escape: copied whole when a vectorized scan finds none.
    let plain = !needs_escape(text.as_bytes());
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail, and a str always serializes.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

fn looks_like_json(payload: &[u8]) -> bool {
    matches!(
        payload.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// Whether JSON must escape any of `bytes` (a control character, `"` or `\\`). Tested 16 bytes
/// at a time without early exit inside a block, which the compiler turns into vector compares.
fn needs_escape(bytes: &[u8]) -> bool {
    let special = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        if block.iter().fold(false, |any, &b| any | special(b)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| special(b))
}

/// Checks that `payload` is JSON, and parses it when a key rule will read it (`keep`): building
/// the value costs allocations for every object and string, which a check alone does not.
fn parse_json(payload: &[u8], keep: bool) -> Result<Option<serde_json::Value>, serde_json::Error> {
    // serde_json checks UTF-8 when it builds strings, not when it skips them: a payload that is
    // not UTF-8 takes the full parse, which reports it.
    if keep || std::str::from_utf8(payload).is_err() {
        return serde_json::from_slice(payload).map(Some);
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(payload).map(|_| None)
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
    /// An interpreter with these rules, keeping at most `max_payload` bytes of each payload,
    /// redacting by default ([`Redaction::default`]: credential headers).
    pub fn new(rules: Rules, max_payload: usize) -> Self {
        Self {
            rules,
            max_payload,
            redaction: Redaction::default(),
        }
    }

    /// This interpreter redacting by `redaction` instead.
    pub fn with_redaction(self, redaction: Redaction) -> Self {
        Self { redaction, ..self }
    }

    /// Interprets one record. Never fails.
    pub fn interpret(&self, raw: RawRecord<'_>, ingested_at_us: i64) -> EventRecord {
        let cx = EventContext::extract(raw.headers, self.rules.aliases_for(raw.topic));
        let mut problems: Vec<Problem> = cx.problems.iter().map(Problem::from).collect();

        let (event_id, id_source) = match &cx.event_id {
            Some(id) => (id.value.clone(), id.header.clone()),
            None => {
                let derived = derived_id(raw.topic, raw.partition, raw.offset);
                problems.push(Problem {
                    kind: "no_event_id".into(),
                    detail: format!("no ce_id or alias header; id derived from the record's position: {derived}"),
                });
                (derived, "derived".to_owned())
            }
        };

        let plan = self.redaction.plan(raw.topic);
        let mut note = RedactionNote::default();
        let payload_size = raw.payload.map_or(0, <[u8]>::len);
        // Pointer rules rewrite the payload's JSON before anything else reads it; a payload
        // they cannot read is withheld, never stored as it came.
        let mut redacted: Option<(Option<Vec<u8>>, Option<serde_json::Value>)> = None;
        if plan.has_pointers() {
            redacted = Some(
                match raw.payload.map(serde_json::from_slice::<serde_json::Value>) {
                    None => (None, None),
                    Some(Ok(mut doc)) => {
                        plan.rewrite(&mut doc, &mut note);
                        (serde_json::to_vec(&doc).ok(), Some(doc))
                    }
                    // Under `payload = "none"` nothing of it was to be stored anyway.
                    Some(Err(_)) if plan.payload == PayloadPolicy::None => (None, None),
                    Some(Err(e)) => {
                        let why = format!("withheld: not JSON under pointer rules ({e})");
                        problems.push(Problem {
                            kind: "payload_withheld".into(),
                            detail: format!("payload of {payload_size} bytes not stored: {why}"),
                        });
                        note.payload = Some(why);
                        (None, None)
                    }
                },
            );
        }
        let kept = match &redacted {
            Some((bytes, _)) => bytes.as_deref(),
            None => raw.payload,
        };
        let limit = match plan.payload {
            PayloadPolicy::Full => self.max_payload,
            PayloadPolicy::Truncated => plan.truncate_at.min(self.max_payload),
            PayloadPolicy::None => 0,
        };
        let kept_size = kept.map_or(0, <[u8]>::len);
        let payload_truncated = plan.payload != PayloadPolicy::None && kept_size > limit;
        match plan.payload {
            PayloadPolicy::None if raw.payload.is_some() => note.payload = Some("none".into()),
            PayloadPolicy::Truncated if payload_truncated => {
                note.payload = Some("truncated".into())
            }
            _ if payload_truncated => problems.push(Problem {
                kind: "payload_truncated".into(),
                detail: format!(
                    "payload of {kept_size} bytes cut to {} bytes",
                    self.max_payload
                ),
            }),
            _ => {}
        }
        let stored_payload = match plan.payload {
            PayloadPolicy::None => None,
            _ => kept.map(|p| p[..p.len().min(limit)].to_vec()),
        };
        let content_type = cx.cloud_event.content_type.clone();
        let claims_json = content_type
            .as_deref()
            .is_some_and(|ct| ct.contains("json"));
        let mut rules = self
            .rules
            .key_rules
            .iter()
            .filter(|r| r.topics.matches(raw.topic))
            .peekable();
        let json = match (redacted, raw.payload) {
            (Some((_, doc)), _) => doc,
            (None, Some(p)) if claims_json || (content_type.is_none() && looks_like_json(p)) => {
                match parse_json(p, rules.peek().is_some()) {
                    Ok(v) => v,
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
        let record_key = match (plan.record_key, raw.key) {
            (_, None) => None,
            (KeyPolicy::Keep, Some(k)) => Some(k.to_vec()),
            (KeyPolicy::Hash, Some(k)) => {
                note.record_key = Some("hashed".into());
                plan.hash(&String::from_utf8_lossy(k))
                    .map(String::into_bytes)
            }
            (KeyPolicy::Drop, Some(_)) => {
                note.record_key = Some("dropped".into());
                None
            }
        };
        if let Some(key) = record_key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
        {
            if !key.is_empty() {
                keys.insert(("kafka.key".into(), key.to_owned()));
            }
        }
        if let Some(json) = &json {
            for rule in rules {
                // A masked value is no key: every event would share it.
                if let Some(value) = json
                    .pointer(&rule.pointer)
                    .and_then(scalar_text)
                    .filter(|v| v != MASK)
                {
                    keys.insert((rule.key.clone(), value));
                }
            }
        }
        let keys: Vec<(String, String)> = keys
            .into_iter()
            .map(|(name, value)| {
                let value = plan.key_value(&name, value, &mut note);
                (name, value)
            })
            .collect();
        let headers_json = if raw.headers.iter().any(|(name, _)| plan.drops_header(name)) {
            // A problem may quote a header's value (an invalid baggage member, say): a dropped
            // one is not quoted either.
            let dropped: Vec<String> = raw
                .headers
                .iter()
                .filter(|(n, _)| plan.drops_header(n))
                .filter_map(|(_, v)| v.map(|v| String::from_utf8_lossy(v).into_owned()))
                .collect();
            for p in &mut problems {
                p.detail = unquote_dropped(&p.detail, &dropped);
            }
            headers_to_json_dropping(raw.headers, |name| plan.drops_header(name), &mut note)
        } else {
            headers_to_json(raw.headers)
        };

        let carried_id = (id_source != "derived").then_some(event_id.as_str());
        let dead_letter = self.dead_letter(&raw, carried_id, &mut problems);
        let broker_time_us = raw.timestamp_ms.filter(|t| *t >= 0).map(|t| t * 1000);
        let event_time_us = cx.cloud_event.time.map(|t| t.timestamp_micros());
        EventRecord {
            event_id,
            id_source,
            topic: raw.topic.to_owned(),
            partition: raw.partition,
            offset: raw.offset,
            record_key,
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
            headers_json,
            payload: stored_payload,
            payload_size: payload_size as i64,
            payload_truncated,
            problems,
            keys,
            ingested_at_us,
            redactions: (!note.is_empty()).then_some(note),
            dead_letter,
        }
    }

    /// Whether `raw` is a dead-letter copy, and of which event (`carried_id`: the id the copy's
    /// own headers give, if any). Its unreadable dead-letter headers, and a dead letter naming no
    /// original (then kept as an ordinary event), are added to `problems`.
    fn dead_letter(
        &self,
        raw: &RawRecord<'_>,
        carried_id: Option<&str>,
        problems: &mut Vec<Problem>,
    ) -> Option<DeadLetterMark> {
        let problem = |p: &dead_letter::DeadLetterProblem| Problem {
            kind: p.kind().to_owned(),
            detail: p.to_string(),
        };
        let dl = match dead_letter::recognise(raw.topic, raw.headers, &self.rules.dead_letters) {
            Ok(found) => found?,
            Err(no_original) => {
                problems.push(problem(&no_original));
                return None;
            }
        };
        problems.extend(dl.problems.iter().map(problem));
        let (original_id, original) = match &dl.original {
            Original::SameId { id } => (id.clone(), None),
            Original::Position {
                topic,
                partition,
                offset,
            } => (
                carried_id
                    .map(str::to_owned)
                    .unwrap_or_else(|| derived_id(topic, *partition, *offset)),
                Some((topic.clone(), *partition, *offset)),
            ),
        };
        Some(DeadLetterMark {
            original_id,
            original,
            recognised_by: dl.source.as_str(),
            reason: dl.reason(),
            consumer_group: dl.consumer_group.clone(),
        })
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

    fn redacting(rules: &[&str], redaction: &str) -> Interpreter {
        let table: crate::redact::RedactionTable = toml::from_str(redaction).unwrap();
        let key = |_: &str| Some("interpreter-test-key-0123456789".to_owned());
        interpreter(rules).with_redaction(Redaction::from_table(&table, key).unwrap())
    }

    #[test]
    fn a_hashed_pointer_becomes_a_hashed_business_key_and_the_clear_value_is_kept_nowhere() {
        let h: RecordHeaders = [("ce_id", "e-1"), ("x-api-key", "k-secret")]
            .into_iter()
            .collect();
        let i = redacting(
            &["orders : /email -> customer.email"],
            "[[topics]]\ntopics = 'orders'\nhash = ['/email']\nmask = ['/card']",
        );
        let payload = br#"{"email":"a@b.example","card":"4111"}"#;
        let e = i.interpret(raw(&h, Some(payload)), 0);
        let hashed = i.redaction.hash("a@b.example").unwrap();
        assert!(e.keys.contains(&("customer.email".into(), hashed.clone())));
        let stored = format!(
            "{} {} {:?}",
            String::from_utf8_lossy(e.payload.as_deref().unwrap()),
            e.headers_json,
            e.keys
        );
        for secret in ["a@b.example", "4111", "k-secret"] {
            assert!(!stored.contains(secret), "{secret} in {stored}");
        }
        let note = e.redactions.unwrap();
        assert_eq!(note.hashed, ["/email"]);
        assert_eq!(note.masked, ["/card"]);
        assert_eq!(note.headers, ["x-api-key"]);
    }

    #[test]
    fn a_payload_policy_of_none_keeps_the_size_only_and_a_hashed_record_key_hashes_kafka_key() {
        let h: RecordHeaders = [("ce_id", "e-1")].into_iter().collect();
        let i = redacting(
            &[],
            "[[topics]]\ntopics = 'orders'\npayload = 'none'\nrecord_key = 'hash'",
        );
        let e = i.interpret(raw(&h, Some(b"{}")), 0);
        assert_eq!(e.payload, None);
        assert_eq!(e.payload_size, 2);
        let hashed = i.redaction.hash("o-1").unwrap();
        assert_eq!(e.record_key.as_deref(), Some(hashed.as_bytes()));
        assert_eq!(e.keys, vec![("kafka.key".to_string(), hashed)]);
        let note = e.redactions.unwrap();
        assert_eq!(note.payload.as_deref(), Some("none"));
        assert_eq!(note.record_key.as_deref(), Some("hashed"));
        assert!(e.problems.is_empty(), "redaction is not a problem");
    }

    #[test]
    fn a_key_read_from_a_hashed_pointer_and_named_in_hash_keys_is_hashed_once() {
        let h: RecordHeaders = [("ce_id", "e-1"), ("baggage", "customer.email=a@b.example")]
            .into_iter()
            .collect();
        let i = redacting(
            &["orders : /email -> customer.email"],
            "hash_keys = ['customer.email']\n[[topics]]\ntopics = 'orders'\nhash = ['/email']",
        );
        let none = RecordHeaders::new();
        let from_payload = i.interpret(raw(&none, Some(br#"{"email":"a@b.example"}"#)), 0);
        let from_baggage = i.interpret(raw(&h, Some(b"{}")), 0);
        let hashed = i.redaction.hash("a@b.example").unwrap();
        let key = |e: &EventRecord| {
            e.keys
                .iter()
                .find(|(k, _)| k == "customer.email")
                .map(|(_, v)| v.clone())
        };
        assert_eq!(key(&from_payload), Some(hashed.clone()));
        assert_eq!(key(&from_baggage), Some(hashed), "both join on one hash");
    }

    #[test]
    fn a_masked_value_is_no_business_key() {
        let h: RecordHeaders = [("ce_id", "e-1")].into_iter().collect();
        let i = redacting(
            &["orders : /card -> card.number"],
            "[[topics]]\ntopics = 'orders'\nmask = ['/card']",
        );
        let e = i.interpret(raw(&h, Some(br#"{"card":"4111"}"#)), 0);
        assert!(
            e.keys.iter().all(|(k, _)| k != "card.number"),
            "{:?}",
            e.keys
        );
    }

    #[test]
    fn a_problem_does_not_quote_a_dropped_headers_value() {
        let h: RecordHeaders = [
            ("ce_id", "e-1"),
            ("baggage", "secret-member-without-equals,order.id=o-1"),
        ]
        .into_iter()
        .collect();
        let i = redacting(&[], "drop_headers = ['baggage']");
        let e = i.interpret(raw(&h, None), 0);
        let details: Vec<&str> = e.problems.iter().map(|p| p.detail.as_str()).collect();
        assert!(
            details
                .iter()
                .any(|d| d.starts_with("baggage member `[redacted]` is invalid")),
            "{details:?}"
        );
        assert!(
            details.iter().all(|d| !d.contains("secret-member")),
            "{details:?}"
        );
    }

    #[test]
    fn nothing_of_a_payload_under_policy_none_is_cut_or_withheld() {
        let h: RecordHeaders = [("ce_id", "e-1")].into_iter().collect();
        let i = redacting(
            &[],
            "[[topics]]\ntopics = 'orders'\npayload = 'none'\nmask = ['/x']",
        );
        let long = b"not json at all, and long enough to be cut at the test's 64 bytes ...";
        let e = i.interpret(raw(&h, Some(long)), 0);
        assert_eq!(e.payload, None);
        assert!(!e.payload_truncated);
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        assert_eq!(e.redactions.unwrap().payload.as_deref(), Some("none"));
    }

    #[test]
    fn a_record_without_anything_to_redact_carries_no_note() {
        let h: RecordHeaders = [("ce_id", "e-1")].into_iter().collect();
        let e = interpreter(&[]).interpret(raw(&h, Some(b"{}")), 0);
        assert_eq!(e.redactions, None);
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
    fn json_is_checked_whole_whether_or_not_a_rule_reads_it() {
        let json: RecordHeaders = [("ce_id", "e"), ("content-type", "application/json")]
            .into_iter()
            .collect();
        for rules in [&[][..], &["orders : /orderId -> order.id"][..]] {
            let i = interpreter(rules);
            for bad in [
                &b"{\"orderId\":\"o-\xff\"}"[..], // not UTF-8 inside a string
                b"{\"orderId\":\"o-1\"} trailing",
                b"{\"orderId\":\"o-1\"",
            ] {
                let e = i.interpret(raw(&json, Some(bad)), 0);
                assert_eq!(kinds(&e), vec!["payload_not_json"], "{rules:?} {bad:?}");
            }
            let e = i.interpret(raw(&json, Some(b" {\"orderId\":\"o-7\"} ")), 0);
            assert!(e.problems.is_empty(), "{rules:?}");
            let from_rule = e.keys.contains(&("order.id".into(), "o-7".into()));
            assert_eq!(from_rule, !rules.is_empty());
        }
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

    #[test]
    fn header_json_round_trips_names_and_values_that_need_escaping() {
        let mut h = RecordHeaders::new();
        h.push(
            "quote\"back\\slash",
            Some(b"line\nbreak\ttab \x01 \xc3\xa9 \"q\"".to_vec()),
        );
        h.push("", Some(Vec::new()));
        h.push("emoji \u{1f600}", Some(vec![0x80]));
        h.push("dup", None);
        h.push("dup", Some(b"second".to_vec()));
        // Escapes past the first 16 bytes: in a later block, in the remainder, at the very end.
        h.push(
            "long",
            Some(format!("{}\\{}", "a".repeat(20), "b".repeat(20)).into_bytes()),
        );
        h.push("tail", Some(format!("{}\"", "a".repeat(17)).into_bytes()));
        h.push(
            "last",
            Some(format!("{}\u{1f}", "a".repeat(31)).into_bytes()),
        );
        let json: serde_json::Value = serde_json::from_str(&headers_to_json(&h)).unwrap();
        let decoded: Vec<(String, Option<Vec<u8>>)> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                let name = pair[0].as_str().unwrap().to_owned();
                let value = match &pair[1] {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
                    other => Some(
                        base64::engine::general_purpose::STANDARD
                            .decode(other["base64"].as_str().unwrap())
                            .unwrap(),
                    ),
                };
                (name, value)
            })
            .collect();
        let expected: Vec<(String, Option<Vec<u8>>)> = h
            .iter()
            .map(|(n, v)| (n.to_owned(), v.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(decoded, expected);
        assert_eq!(headers_to_json(&RecordHeaders::new()), "[]");
    }

    #[test]
    fn key_json_is_what_serde_reads_back() {
        let keys = vec![
            ("order.id".to_string(), "o-1".to_string()),
            ("quote\"d".to_string(), "back\\slash\nnew line".to_string()),
            ("größe".to_string(), String::new()),
        ];
        let back: Vec<(String, String)> = serde_json::from_str(&keys_to_json(&keys)).unwrap();
        assert_eq!(back, keys);
        assert_eq!(keys_to_json(&Vec::new()), "[]");
    }
}
