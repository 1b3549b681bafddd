//! Reading [`SpanRecord`]s out of an OTLP export request.
//!
//! A span whose trace or span id is not of the protocol's length (16 and 8 bytes), or all zero,
//! or whose parent or link ids are malformed, is *rejected*: counted and named in the answer's
//! partial success, never stored. The request's other spans are kept.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};

use super::{
    cut, Exception, Messaging, SpanKind, SpanRecord, MAX_EXCEPTION_MESSAGE, MAX_LINKS, MAX_TEXT,
};

/// The spans of one export request.
#[derive(Debug, Default)]
pub struct Converted {
    /// The spans read.
    pub spans: Vec<SpanRecord>,
    /// Spans rejected for malformed ids.
    pub rejected: usize,
    /// Why the first rejected span was rejected.
    pub first_error: Option<String>,
}

/// Reads every span of `request`.
pub fn spans_of(request: &ExportTraceServiceRequest) -> Converted {
    let mut out = Converted::default();
    for resource_spans in &request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| text(&r.attributes, &["service.name"]));
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                match record(span, service.as_deref()) {
                    Ok(record) => out.spans.push(record),
                    Err(why) => {
                        out.rejected += 1;
                        out.first_error.get_or_insert(why);
                    }
                }
            }
        }
    }
    out
}

/// Lower-case hex of an id of `len` bytes that is not all zero.
fn id(bytes: &[u8], len: usize, what: &str) -> Result<String, String> {
    if bytes.len() != len {
        return Err(format!("{what} is {} bytes, not {len}", bytes.len()));
    }
    if bytes.iter().all(|&b| b == 0) {
        return Err(format!("{what} is all zero"));
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(len * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Ok(out)
}

fn record(span: &Span, service: Option<&str>) -> Result<SpanRecord, String> {
    let trace_id = id(&span.trace_id, 16, "trace_id")?;
    let span_id = id(&span.span_id, 8, "span_id")?;
    let parent_span_id = match span.parent_span_id.as_slice() {
        [] => None,
        bytes => Some(id(bytes, 8, "parent_span_id")?),
    };
    let mut links = Vec::with_capacity(span.links.len().min(MAX_LINKS));
    for link in span.links.iter().take(MAX_LINKS) {
        links.push((
            id(&link.trace_id, 16, "a link's trace_id")?,
            id(&link.span_id, 8, "a link's span_id")?,
        ));
    }
    let status = span.status.as_ref();
    let failed = status.is_some_and(|s| s.code == StatusCode::Error as i32);
    let status_message = status
        .map(|s| s.message.clone())
        .filter(|m| !m.is_empty())
        .map(|m| cut(m, MAX_EXCEPTION_MESSAGE));
    let exception = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .map(|e| Exception {
            kind: text(&e.attributes, &["exception.type"]),
            message: text(&e.attributes, &["exception.message"])
                .map(|m| cut(m, MAX_EXCEPTION_MESSAGE)),
        })
        // Some instrumentations (kafkajs, .NET) mark a failure with `error.type` and the status
        // message only.
        .or_else(|| {
            let kind = text(&span.attributes, &["error.type"])?;
            failed.then(|| Exception {
                kind: Some(kind),
                message: status_message.clone(),
            })
        });
    let a = &span.attributes;
    let messaging = with_position_from_message_id(Messaging {
        system: text(a, &["messaging.system"]),
        destination: text(
            a,
            &[
                "messaging.destination.name",
                "messaging.destination",
                "messaging.source.name",
            ],
        ),
        partition: int(
            a,
            &[
                "messaging.destination.partition.id",
                "messaging.kafka.destination.partition",
                "messaging.kafka.source.partition",
                "messaging.kafka.partition",
            ],
        )
        .and_then(|p| i32::try_from(p).ok()),
        offset: int(
            a,
            &["messaging.kafka.offset", "messaging.kafka.message.offset"],
        ),
        consumer_group: text(
            a,
            &[
                "messaging.consumer.group.name",
                "messaging.kafka.consumer.group",
                "messaging.kafka.consumer_group",
            ],
        ),
        message_id: text(a, &["messaging.message.id", "messaging.message_id"]),
        operation: text(
            a,
            &[
                "messaging.operation.type",
                "messaging.operation",
                "messaging.operation.name",
            ],
        ),
    });
    Ok(SpanRecord {
        trace_id,
        span_id,
        parent_span_id,
        kind: SpanKind::from_otlp(span.kind),
        name: cut(span.name.clone(), MAX_TEXT),
        service: service.map(|s| cut(s.to_owned(), MAX_TEXT)),
        start_us: micros(span.start_time_unix_nano),
        end_us: micros(span.end_time_unix_nano.max(span.start_time_unix_nano)),
        failed,
        status_message,
        exception,
        messaging,
        links,
    })
}

/// Some instrumentations (Python's confluent-kafka) write no offset attribute, only a message id
/// `TOPIC.PARTITION.OFFSET`: the position is read from it when its topic is the destination.
fn with_position_from_message_id(mut m: Messaging) -> Messaging {
    if m.offset.is_some() {
        return m;
    }
    let (Some(id), Some(topic)) = (&m.message_id, &m.destination) else {
        return m;
    };
    let Some(rest) = id
        .strip_prefix(topic.as_str())
        .and_then(|r| r.strip_prefix('.'))
    else {
        return m;
    };
    if let Some((partition, offset)) = rest.split_once('.') {
        if let (Ok(p), Ok(o)) = (partition.parse::<i32>(), offset.parse::<i64>()) {
            if m.partition.is_none_or(|known| known == p) {
                m.partition = Some(p);
                m.offset = Some(o);
            }
        }
    }
    m
}

fn micros(nanos: u64) -> i64 {
    i64::try_from(nanos / 1000).unwrap_or(i64::MAX)
}

fn value<'a>(attributes: &'a [KeyValue], names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| {
        attributes
            .iter()
            .find(|kv| kv.key == *name)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    })
}

/// The first of `names` present, as text (numbers and booleans written out).
fn text(attributes: &[KeyValue], names: &[&str]) -> Option<String> {
    let s = match value(attributes, names)? {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::BoolValue(b) => b.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then(|| cut(s, MAX_TEXT))
}

/// The first of `names` present, as an integer (a decimal string counts: some conventions write
/// the partition as a string).
fn int(attributes: &[KeyValue], names: &[&str]) -> Option<i64> {
    match value(attributes, names)? {
        Value::IntValue(i) => Some(*i),
        Value::StringValue(s) => s.trim().parse().ok(),
        Value::DoubleValue(d) if d.fract() == 0.0 => Some(*d as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Status};

    use super::*;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue("inventory".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn consumer_span() -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![],
            name: "payments process".into(),
            kind: span::SpanKind::Consumer as i32,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_002_500_000,
            attributes: vec![
                kv("messaging.system", Value::StringValue("kafka".into())),
                kv(
                    "messaging.destination.name",
                    Value::StringValue("payments".into()),
                ),
                kv(
                    "messaging.destination.partition.id",
                    Value::StringValue("2".into()),
                ),
                kv("messaging.kafka.message.offset", Value::IntValue(41)),
                kv(
                    "messaging.kafka.consumer.group",
                    Value::StringValue("inv".into()),
                ),
                kv("messaging.operation", Value::StringValue("process".into())),
            ],
            links: vec![span::Link {
                trace_id: vec![9; 16],
                span_id: vec![8; 8],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_consumer_span_keeps_its_service_ids_times_link_and_messaging_attributes() {
        let c = spans_of(&request(vec![consumer_span()]));
        assert_eq!(c.rejected, 0);
        let s = &c.spans[0];
        assert_eq!(s.trace_id, "01".repeat(16));
        assert_eq!(s.span_id, "02".repeat(8));
        assert_eq!(s.parent_span_id, None);
        assert_eq!(s.kind, SpanKind::Consumer);
        assert_eq!(s.service.as_deref(), Some("inventory"));
        assert_eq!(s.end_us - s.start_us, 2500);
        assert_eq!(s.links, vec![("09".repeat(16), "08".repeat(8))]);
        assert_eq!(s.messaging.destination.as_deref(), Some("payments"));
        assert_eq!(s.messaging.partition, Some(2));
        assert_eq!(s.messaging.offset, Some(41));
        assert_eq!(s.messaging.consumer_group.as_deref(), Some("inv"));
        assert_eq!(s.messaging.operation.as_deref(), Some("process"));
        assert!(s.is_messaging() && !s.failed);
    }

    #[test]
    fn an_error_status_and_the_first_exception_event_are_kept() {
        let mut failing = consumer_span();
        failing.status = Some(Status {
            code: StatusCode::Error as i32,
            message: "OutOfStock: none left".into(),
        });
        failing.events = vec![span::Event {
            name: "exception".into(),
            attributes: vec![
                kv("exception.type", Value::StringValue("OutOfStock".into())),
                kv("exception.message", Value::StringValue("none left".into())),
            ],
            ..Default::default()
        }];
        let s = &spans_of(&request(vec![failing])).spans[0];
        assert!(s.failed);
        let e = s.exception.as_ref().unwrap();
        assert_eq!(
            (e.kind.as_deref(), e.message.as_deref()),
            (Some("OutOfStock"), Some("none left"))
        );
    }

    #[test]
    fn spans_with_ids_of_the_wrong_length_are_rejected_and_the_others_kept() {
        let mut short = consumer_span();
        short.trace_id = vec![1; 15];
        let mut zero = consumer_span();
        zero.span_id = vec![0; 8];
        let mut bad_parent = consumer_span();
        bad_parent.parent_span_id = vec![3; 4];
        let c = spans_of(&request(vec![short, consumer_span(), zero, bad_parent]));
        assert_eq!((c.spans.len(), c.rejected), (1, 3));
        assert_eq!(
            c.first_error.as_deref(),
            Some("trace_id is 15 bytes, not 16")
        );
    }

    #[test]
    fn a_message_id_of_topic_partition_offset_gives_the_position() {
        let mut python = consumer_span();
        python.attributes = vec![
            kv("messaging.system", Value::StringValue("kafka".into())),
            kv(
                "messaging.destination",
                Value::StringValue("t.payments".into()),
            ),
            kv("messaging.kafka.partition", Value::IntValue(1)),
            kv(
                "messaging.message.id",
                Value::StringValue("t.payments.1.42".into()),
            ),
        ];
        let m = &spans_of(&request(vec![python])).spans[0].messaging;
        assert_eq!((m.partition, m.offset), (Some(1), Some(42)));
    }

    #[test]
    fn nul_characters_are_left_out_of_kept_texts() {
        let mut nul = consumer_span();
        nul.name = "pay\0ments".into();
        assert_eq!(spans_of(&request(vec![nul])).spans[0].name, "payments");
    }

    #[test]
    fn long_texts_are_cut_at_a_character_boundary() {
        let mut long = consumer_span();
        long.name = "é".repeat(MAX_TEXT);
        let s = &spans_of(&request(vec![long])).spans[0];
        assert!(s.name.len() <= MAX_TEXT && s.name.chars().all(|c| c == 'é'));
    }
}
