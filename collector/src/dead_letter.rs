//! Dead letters: recognise a record on a dead-letter topic, tie it to the event it is a copy of,
//! and say who failed it and why — so flow health can fail that event's flow.
//!
//! A dead-letter copy is neither a duplicate publish nor a reaction: it is the failed event
//! itself, re-published by the consumer that gave up on it. [`recognise`] is pure: it reads a
//! record's topic and headers and returns a [`DeadLetter`] (or nothing); the caller looks the
//! [`Original`] up and fails that event with [`DeadLetter::reason`]. The interpreter marks the
//! record ([`crate::record::EventRecord::dead_letter`]) and the store keeps it apart from the
//! events (`dead_letters`), where flow health and the answers find it.
//!
//! # How a dead letter is recognised
//!
//! In this order of evidence (the newest hop wins when a record carries several sets):
//!
//! 1. **Spring Kafka** (`DeadLetterPublishingRecoverer`, source `spring`): any of the
//!    `kafka_dlt-*` headers below, whatever the topic is called (its destination resolver is
//!    the user's to choose).
//! 2. **Spring Kafka's retry topics** (`@RetryableTopic`, also source `spring`): the same facts
//!    under `kafka_original-*` / `kafka_exception-*`. Those headers also ride on every *retry*
//!    topic (`orders-retry-0`), so they count only on a topic the [`DeadLetterRules`] match
//!    (the feature's DLT is `<topic>-dlt` by default).
//! 3. **Kafka Connect** (a sink connector with `errors.deadletterqueue.topic.name` set and
//!    `errors.deadletterqueue.context.headers.enable=true`, source `connect`): the
//!    `__connect.errors.*` headers below, whatever the topic is called (the name is user-chosen).
//! 4. **Topic name** (source `topic_name`): a record on a topic the [`DeadLetterRules`] match,
//!    with none of the above: a copy carrying the original's `ce_id` ([`Original::SameId`]).
//!
//! A record whose recorded original topic is its own topic is **not** a dead letter: it is a
//! replay from the DLT back onto the main topic (the copied headers ride along) or a same-topic
//! retry.
//!
//! # Header names and encodings
//!
//! **Spring Kafka** — `org.springframework.kafka.support.KafkaHeaders` (`PREFIX = "kafka_"`);
//! values written by `DeadLetterPublishingRecoverer.maybeAddOriginalHeaders` /
//! `addExceptionInfoHeaders` (moved to `DeadLetterRecordManager` in 4.1), read in
//! spring-projects/spring-kafka at `main`, 2026-08:
//!
//! | header (DLPR) | header (retry topics) | value |
//! |---|---|---|
//! | `kafka_dlt-original-topic` | `kafka_original-topic` | UTF-8 |
//! | `kafka_dlt-original-partition` | `kafka_original-partition` | **4-byte big-endian `int`** (`ByteBuffer.allocate(4).putInt`) |
//! | `kafka_dlt-original-offset` | `kafka_original-offset` | **8-byte big-endian `long`** (`ByteBuffer.allocate(8).putLong`) |
//! | `kafka_dlt-original-timestamp` | `kafka_original-timestamp` | 8-byte big-endian `long`, ms |
//! | `kafka_dlt-original-consumer-group` | (the same name) | UTF-8; only when the listener's `ListenerExecutionFailedException` knows its group (2.8+) |
//! | `kafka_dlt-exception-fqcn` | `kafka_exception-fqcn` | UTF-8; usually `…listener.ListenerExecutionFailedException` |
//! | `kafka_dlt-exception-cause-fqcn` | `kafka_exception-cause-fqcn` | UTF-8; 2.8+; the root cause past that wrapper since 3.0.7 |
//! | `kafka_dlt-exception-message` | `kafka_exception-message` | UTF-8; absent when null; since 3.0.7 `"<wrapper>; <root cause message>"` |
//! | `kafka_dlt-exception-stacktrace` | `kafka_exception-stacktrace` | UTF-8, `printStackTrace` |
//! | `kafka_dlt-key-exception-{fqcn,message,stacktrace}` | `kafka_key-exception-…` | as above, key deserialisation failures only |
//!
//! The original headers are *appended* by default (`appendOriginalHeaders = true`): a record
//! dead-lettered twice carries two sets, the last the newest; the exception headers replace the
//! previous ones (`stripPreviousExceptionHeaders = true`). So the **last** value of a repeated
//! header is used. The default destination is `<topic>.DLT` from 2.2 to 3.2 and `<topic>-dlt`
//! since 3.3.0 (GH-3291, "DLT topic naming convention"); retry topics have always used
//! `-retry…` / `-dlt` (`RetryTopicConstants`).
//!
//! **Kafka Connect** — `org.apache.kafka.connect.runtime.errors.DeadLetterQueueReporter`
//! (`HEADER_PREFIX = "__connect.errors."`), read in apache/kafka: every value is UTF-8 text,
//! the numbers too (`toBytes(String.valueOf(…))`):
//! `__connect.errors.topic`, `.partition` (decimal), `.offset` (decimal), `.connector.name`,
//! `.task.id` (decimal), `.stage` (e.g. `VALUE_CONVERTER`), `.class.name` (the executing class),
//! `.exception.class.name`, `.exception.message` (null value when the message is null),
//! `.exception.stacktrace`. The original record's headers are copied first, so the copy also
//! carries the original's `ce_id`. Recent versions `add` each header (last is newest); old
//! ones skipped a name already present — the last value is used here too.
//!
//! # Reading values
//!
//! - Partition and offset: decimal ASCII text (optionally signed) is read as text, otherwise a
//!   value of exactly 4 (partition) or 8 (offset, timestamp) bytes as a big-endian integer. A
//!   binary value that is all ASCII digits would be ≥ 808 464 432 (partition) or ≥ 3.4 × 10¹⁸
//!   (offset), so the order cannot misread a real one.
//! - A header absent, or present with a null value, is simply unknown.
//! - A header that is present but unusable (not UTF-8, empty, a 3-byte partition, a negative
//!   offset) leaves its field absent and is listed in [`DeadLetter::problems`], so the collector
//!   can count and show it; the rest of the dead letter still counts. An unreadable exception
//!   message is decoded lossily (U+FFFD) so the diagnosis still shows it. Only a dead letter
//!   that names no original at all — no complete position and no usable `ce_id` — is an error
//!   ([`DeadLetterProblem::NoOriginal`]).
//! - Position first: when the topic, partition and offset are all readable the original is
//!   [`Original::Position`]; otherwise the `ce_id` the copy carries ([`Original::SameId`]).
//!   The carried id is kept either way ([`DeadLetter::event_id`]).

use choreoscope_sdk::headers::CE_ID;
use choreoscope_sdk::RecordHeaders;
use regex::{Regex, RegexSet};
use serde::Serialize;

/// Topic-name patterns of the default [`DeadLetterRules`], each anchored at the end: Spring
/// Kafka's `.DLT` (2.2–3.2) and `-dlt` (3.3+, retry topics), and the common `-dlq`, `.dlq`,
/// `.DLQ`, `.dead-letter`, `-dead-letter`. Case-sensitive, as those conventions write them.
pub const DEFAULT_PATTERNS: &[&str] = &[
    r"\.DLT$",
    r"-dlt$",
    r"-dlq$",
    r"\.dlq$",
    r"\.DLQ$",
    r"\.dead-letter$",
    r"-dead-letter$",
];

/// Spring Kafka's wrapper around a listener's exception; the cause is the real failure.
const SPRING_LISTENER_WRAPPER: &str =
    "org.springframework.kafka.listener.ListenerExecutionFailedException";

/// At most this many characters of the message in [`DeadLetter::reason`].
const REASON_MESSAGE_CHARS: usize = 240;
/// At most this many characters of [`DeadLetter::stacktrace_head`].
const STACKTRACE_HEAD_CHARS: usize = 500;

/// One producer's header names (Spring's two sets, or Connect's).
struct Names {
    topic: &'static str,
    partition: &'static str,
    offset: &'static str,
    timestamp: Option<&'static str>,
    group: Option<&'static str>,
    exception: &'static str,
    key_exception: Option<&'static str>,
    cause: Option<&'static str>,
    message: &'static str,
    key_message: Option<&'static str>,
    stacktrace: &'static str,
    key_stacktrace: Option<&'static str>,
}

impl Names {
    /// The headers that tell this set apart: all but the consumer group's, which Spring's two
    /// sets share.
    fn markers(&self) -> impl Iterator<Item = &'static str> {
        [
            Some(self.topic),
            Some(self.partition),
            Some(self.offset),
            self.timestamp,
            Some(self.exception),
            self.key_exception,
            self.cause,
            Some(self.message),
            self.key_message,
            Some(self.stacktrace),
            self.key_stacktrace,
        ]
        .into_iter()
        .flatten()
    }
}

const SPRING_DLT: Names = Names {
    topic: "kafka_dlt-original-topic",
    partition: "kafka_dlt-original-partition",
    offset: "kafka_dlt-original-offset",
    timestamp: Some("kafka_dlt-original-timestamp"),
    group: Some("kafka_dlt-original-consumer-group"),
    exception: "kafka_dlt-exception-fqcn",
    key_exception: Some("kafka_dlt-key-exception-fqcn"),
    cause: Some("kafka_dlt-exception-cause-fqcn"),
    message: "kafka_dlt-exception-message",
    key_message: Some("kafka_dlt-key-exception-message"),
    stacktrace: "kafka_dlt-exception-stacktrace",
    key_stacktrace: Some("kafka_dlt-key-exception-stacktrace"),
};

/// The retry-topic feature's names (`KafkaHeaders.ORIGINAL_*`, `EXCEPTION_*`); its consumer
/// group header keeps the `dlt-` name.
const SPRING_RETRY: Names = Names {
    topic: "kafka_original-topic",
    partition: "kafka_original-partition",
    offset: "kafka_original-offset",
    timestamp: Some("kafka_original-timestamp"),
    group: Some("kafka_dlt-original-consumer-group"),
    exception: "kafka_exception-fqcn",
    key_exception: Some("kafka_key-exception-fqcn"),
    cause: Some("kafka_exception-cause-fqcn"),
    message: "kafka_exception-message",
    key_message: Some("kafka_key-exception-message"),
    stacktrace: "kafka_exception-stacktrace",
    key_stacktrace: Some("kafka_key-exception-stacktrace"),
};

const CONNECT: Names = Names {
    topic: "__connect.errors.topic",
    partition: "__connect.errors.partition",
    offset: "__connect.errors.offset",
    timestamp: None,
    group: None,
    exception: "__connect.errors.exception.class.name",
    key_exception: None,
    cause: None,
    message: "__connect.errors.exception.message",
    key_message: None,
    stacktrace: "__connect.errors.exception.stacktrace",
    key_stacktrace: None,
};

const CONNECT_PREFIX: &str = "__connect.errors.";
const CONNECT_CONNECTOR: &str = "__connect.errors.connector.name";
const CONNECT_TASK: &str = "__connect.errors.task.id";
const CONNECT_STAGE: &str = "__connect.errors.stage";
const CONNECT_CLASS: &str = "__connect.errors.class.name";

/// A topic-name pattern of [`DeadLetterRules`] that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterRulesError {
    /// The pattern is not a valid regular expression.
    #[error(
        "dead-letter topic pattern {index} `{pattern}` is not a valid regular expression: {source}"
    )]
    BadPattern {
        /// Its position in the list, from 0.
        index: usize,
        /// The pattern as given.
        pattern: String,
        /// What the regex parser said.
        #[source]
        source: regex::Error,
    },
    /// The pattern is empty (or blank), which would make every topic a dead-letter topic.
    #[error("dead-letter topic pattern {index} is empty; it would match every topic")]
    Empty {
        /// Its position in the list, from 0.
        index: usize,
    },
}

/// Which topic names are dead-letter topics, for copies that carry only the original's `ce_id`
/// (and for Spring's retry-topic headers, which also ride on retry topics).
///
/// Each pattern is a regular expression searched in the topic name (not implicitly anchored:
/// write `$` for a suffix). The default is [`DEFAULT_PATTERNS`].
#[derive(Debug, Clone)]
pub struct DeadLetterRules {
    patterns: Vec<Regex>,
    /// The same, matched in one pass (every record's topic is tested).
    any: RegexSet,
}

impl DeadLetterRules {
    /// Rules from these patterns (replacing the defaults; add them back with
    /// [`DEFAULT_PATTERNS`] to extend them).
    pub fn new<I, S>(patterns: I) -> Result<Self, DeadLetterRulesError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns: Vec<Regex> = patterns
            .into_iter()
            .enumerate()
            .map(|(index, pattern)| {
                let pattern = pattern.as_ref();
                if pattern.trim().is_empty() {
                    return Err(DeadLetterRulesError::Empty { index });
                }
                Regex::new(pattern).map_err(|source| DeadLetterRulesError::BadPattern {
                    index,
                    pattern: pattern.to_owned(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        let any = RegexSet::new(patterns.iter().map(Regex::as_str))
            .expect("patterns that compiled alone compile as a set");
        Ok(Self { patterns, any })
    }

    /// Whether `topic` is a dead-letter topic by name.
    pub fn is_dead_letter_topic(&self, topic: &str) -> bool {
        self.any.is_match(topic)
    }

    /// The patterns, as given.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(Regex::as_str)
    }
}

impl Default for DeadLetterRules {
    fn default() -> Self {
        Self::new(DEFAULT_PATTERNS).expect("the default dead-letter patterns are valid")
    }
}

/// What recognised a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Spring Kafka's headers (`kafka_dlt-*`, or the retry topics' `kafka_original-*`).
    Spring,
    /// Kafka Connect's headers (`__connect.errors.*`).
    Connect,
    /// Only the topic's name ([`DeadLetterRules`]) and the copy's `ce_id`.
    TopicName,
}

impl Source {
    /// `spring`, `connect` or `topic_name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spring => "spring",
            Self::Connect => "connect",
            Self::TopicName => "topic_name",
        }
    }
}

/// The event a dead letter is a copy of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Original {
    /// The record at this position (from Spring's or Connect's headers).
    Position {
        /// Its topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
    },
    /// The event with this id: the copy carries the original's `ce_id`.
    SameId {
        /// The `ce_id`.
        id: String,
    },
}

/// A header of a dead letter that could not be read, or a dead letter that names no original.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetterProblem {
    /// A text header is not UTF-8.
    #[error("header `{header}` is not UTF-8")]
    NotUtf8 {
        /// The header.
        header: &'static str,
    },
    /// A header that must name something is empty.
    #[error("header `{header}` is empty")]
    Empty {
        /// The header.
        header: &'static str,
    },
    /// A number header is neither decimal text nor a big-endian integer of the expected width.
    #[error("header `{header}` ({len} bytes) is neither decimal text nor a {width}-byte big-endian integer")]
    BadNumber {
        /// The header.
        header: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The binary width expected (4 for a partition, 8 for an offset or timestamp).
        width: usize,
    },
    /// A number header holds a value no partition or offset can have (negative, or a partition
    /// beyond `i32`).
    #[error("header `{header}` holds {value}, not a valid partition or offset")]
    OutOfRange {
        /// The header.
        header: &'static str,
        /// The value read.
        value: i64,
    },
    /// A header that must have one value has several different ones; none is used.
    #[error("header `{header}` has {count} different values; none is used")]
    Conflicting {
        /// The header.
        header: &'static str,
        /// How many distinct values.
        count: usize,
    },
    /// The record is a dead letter, but names no original: no complete original position and no
    /// usable `ce_id`.
    #[error("dead letter on `{topic}` (by {}) names no original: no complete original position and no usable ce_id", .by.as_str())]
    NoOriginal {
        /// The dead-letter topic.
        topic: String,
        /// What recognised it.
        by: Source,
    },
}

impl DeadLetterProblem {
    /// A short, stable name of the problem kind, for metrics and filters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotUtf8 { .. } => "dead_letter_not_utf8",
            Self::Empty { .. } => "dead_letter_empty",
            Self::BadNumber { .. } => "dead_letter_bad_number",
            Self::OutOfRange { .. } => "dead_letter_out_of_range",
            Self::Conflicting { .. } => "dead_letter_conflicting",
            Self::NoOriginal { .. } => "dead_letter_no_original",
        }
    }
}

/// A recognised dead letter: which event it is a copy of, and what is known of its failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead-letter topic the copy was read from.
    pub topic: String,
    /// What recognised it.
    pub source: Source,
    /// The event it is a copy of.
    pub original: Original,
    /// The original's topic, if the headers give it.
    pub original_topic: Option<String>,
    /// The original's partition, if the headers give it.
    pub original_partition: Option<i32>,
    /// The original's offset, if the headers give it.
    pub original_offset: Option<i64>,
    /// The original record's timestamp, ms since the epoch (Spring only).
    pub original_timestamp_ms: Option<i64>,
    /// The `ce_id` the copy carries (the original's), if any.
    pub event_id: Option<String>,
    /// The consumer group that failed it (Spring 2.8+).
    pub consumer_group: Option<String>,
    /// The Connect connector that failed it.
    pub connector: Option<String>,
    /// The connector's task id.
    pub task: Option<String>,
    /// The Connect stage that failed (`KEY_CONVERTER`, `TRANSFORMATION`, `TASK_PUT`, …).
    pub stage: Option<String>,
    /// The class Connect was executing when it failed.
    pub executing_class: Option<String>,
    /// The exception's class, fully qualified (for Spring usually its listener wrapper).
    pub exception_class: Option<String>,
    /// The exception's cause's class (Spring 2.8+; the root cause since 3.0.7).
    pub exception_cause_class: Option<String>,
    /// The exception's message, as sent.
    pub exception_message: Option<String>,
    /// The stack trace's first line (at most 500 characters; the rest is not kept).
    pub stacktrace_head: Option<String>,
    /// Headers present but unusable; their fields are absent (see the module docs).
    pub problems: Vec<DeadLetterProblem>,
}

impl DeadLetter {
    /// One line for the flow's diagnosis: who failed it, the exception, and its message, e.g.
    /// `bank-group: java.lang.IllegalStateException: card expired` or
    /// `connector orders-sink task 0, stage VALUE_CONVERTER: org.apache.kafka.connect.errors.DataException: …`.
    ///
    /// Spring's `ListenerExecutionFailedException` wrapper gives way to its cause, and its
    /// message prefix (`Listener method '…' threw exception; `, `nested exception is …: `) is
    /// dropped. The message is cut to its first line and 240 characters. Without exception
    /// details it says where it was dead-lettered: `bank-group: dead-lettered to orders.DLT`.
    pub fn reason(&self) -> String {
        let who = self.who();
        let wrapped = self.exception_class.as_deref() == Some(SPRING_LISTENER_WRAPPER);
        let class = match (&self.exception_class, &self.exception_cause_class) {
            (Some(_), Some(cause)) if wrapped => Some(cause.as_str()),
            (class, _) => class.as_deref(),
        };
        let message = self
            .exception_message
            .as_deref()
            .map(|m| {
                if wrapped {
                    unwrap_spring_message(m, self.exception_cause_class.as_deref())
                } else {
                    m
                }
            })
            .map(first_line)
            .filter(|m| !m.is_empty());
        let what = match (class, message) {
            (Some(class), Some(message)) => format!("{class}: {message}"),
            (Some(class), None) => class.to_owned(),
            (None, Some(message)) => message,
            (None, None) => format!("dead-lettered to {}", self.topic),
        };
        match who {
            Some(who) => format!("{who}: {what}"),
            None => what,
        }
    }

    fn who(&self) -> Option<String> {
        if let Some(group) = &self.consumer_group {
            return Some(group.clone());
        }
        let connector = self.connector.as_deref()?;
        let mut who = format!("connector {connector}");
        if let Some(task) = &self.task {
            who.push_str(" task ");
            who.push_str(task);
        }
        if let Some(stage) = &self.stage {
            who.push_str(", stage ");
            who.push_str(stage);
        }
        Some(who)
    }
}

/// Drops the prefix Spring's listener wrapper puts before the real message.
fn unwrap_spring_message<'m>(message: &'m str, cause: Option<&str>) -> &'m str {
    let mut rest = message;
    if rest.starts_with("Listener method '") {
        if let Some(at) = rest.find("' threw exception") {
            rest = &rest[at + "' threw exception".len()..];
            rest = rest.strip_prefix(';').unwrap_or(rest).trim_start();
        }
    } else if let Some(after) = rest.strip_prefix("Listener failed;") {
        rest = after.trim_start();
    }
    if let Some(after) = rest.strip_prefix("nested exception is ") {
        rest = after;
        if let Some(after) = cause.and_then(|c| rest.strip_prefix(c)) {
            rest = after.strip_prefix(':').unwrap_or(after).trim_start();
        }
    }
    if rest.is_empty() {
        message
    } else {
        rest
    }
}

/// The first line, at most [`REASON_MESSAGE_CHARS`] characters (`…` when cut).
fn first_line(text: &str) -> String {
    truncate(
        text.lines().next().unwrap_or("").trim(),
        REASON_MESSAGE_CHARS,
    )
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Whether `topic`'s record with these headers is a dead letter, and of which event.
///
/// `Ok(None)`: not a dead letter. `Ok(Some(_))`: a dead letter, with any unreadable header in
/// [`DeadLetter::problems`]. `Err(_)`: a dead letter that names no original
/// ([`DeadLetterProblem::NoOriginal`]). Never panics; see the module docs for the rules.
pub fn recognise(
    topic: &str,
    headers: &RecordHeaders,
    rules: &DeadLetterRules,
) -> Result<Option<DeadLetter>, DeadLetterProblem> {
    let dlt_named = rules.is_dead_letter_topic(topic);
    let spring = last_index(headers, &SPRING_DLT)
        .map(|at| (at, &SPRING_DLT))
        .or_else(|| {
            last_index(headers, &SPRING_RETRY)
                .filter(|_| dlt_named)
                .map(|at| (at, &SPRING_RETRY))
        });
    let connect = headers
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| name.starts_with(CONNECT_PREFIX))
        .map(|(at, _)| at)
        .last();
    let (source, names) = match (spring, connect) {
        (Some((s, names)), Some(c)) if s >= c => (Source::Spring, Some(names)),
        (Some((_, names)), None) => (Source::Spring, Some(names)),
        (_, Some(_)) => (Source::Connect, Some(&CONNECT)),
        (None, None) if dlt_named => (Source::TopicName, None),
        (None, None) => return Ok(None),
    };

    let mut r = Reader {
        headers,
        problems: Vec::new(),
    };
    let event_id = r.id(CE_ID);
    let mut letter = DeadLetter {
        topic: topic.to_owned(),
        source,
        original: Original::SameId { id: String::new() },
        original_topic: None,
        original_partition: None,
        original_offset: None,
        original_timestamp_ms: None,
        event_id: event_id.clone(),
        consumer_group: None,
        connector: None,
        task: None,
        stage: None,
        executing_class: None,
        exception_class: None,
        exception_cause_class: None,
        exception_message: None,
        stacktrace_head: None,
        problems: Vec::new(),
    };
    if let Some(n) = names {
        letter.original_topic = r.name(n.topic);
        if letter.original_topic.as_deref() == Some(topic) {
            // A replay from the DLT onto the main topic, or a same-topic retry.
            return Ok(None);
        }
        letter.original_partition = r
            .number(n.partition, 4)
            .and_then(|v| r.in_range(n.partition, v, i64::from(i32::MAX)))
            .map(|v| v as i32);
        letter.original_offset = r
            .number(n.offset, 8)
            .and_then(|v| r.in_range(n.offset, v, i64::MAX));
        // Kafka's "no timestamp" is -1.
        letter.original_timestamp_ms = n.timestamp.and_then(|h| r.number(h, 8)).filter(|t| *t >= 0);
        letter.consumer_group = n.group.and_then(|h| r.name(h));
        letter.exception_class = r
            .name(n.exception)
            .or_else(|| n.key_exception.and_then(|h| r.name(h)));
        letter.exception_cause_class = n.cause.and_then(|h| r.name(h));
        letter.exception_message = r
            .lossy(n.message)
            .or_else(|| n.key_message.and_then(|h| r.lossy(h)));
        letter.stacktrace_head = r
            .lossy(n.stacktrace)
            .or_else(|| n.key_stacktrace.and_then(|h| r.lossy(h)))
            .and_then(|t| {
                t.lines()
                    .next()
                    .map(|l| truncate(l.trim(), STACKTRACE_HEAD_CHARS))
            })
            .filter(|l| !l.is_empty());
        if source == Source::Connect {
            letter.connector = r.name(CONNECT_CONNECTOR);
            letter.task = r.name(CONNECT_TASK);
            letter.stage = r.name(CONNECT_STAGE);
            letter.executing_class = r.name(CONNECT_CLASS);
        }
    }
    letter.problems = r.problems;

    letter.original = match (
        &letter.original_topic,
        letter.original_partition,
        letter.original_offset,
    ) {
        (Some(t), Some(partition), Some(offset)) => Original::Position {
            topic: t.clone(),
            partition,
            offset,
        },
        _ => match event_id {
            Some(id) => Original::SameId { id },
            None => {
                return Err(DeadLetterProblem::NoOriginal {
                    topic: topic.to_owned(),
                    by: source,
                })
            }
        },
    };
    Ok(Some(letter))
}

/// Index (in record order) of the last of the headers that mark `names`.
fn last_index(headers: &RecordHeaders, names: &Names) -> Option<usize> {
    headers
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| names.markers().any(|n| n == *name))
        .map(|(at, _)| at)
        .last()
}

/// Reads header values, collecting what it could not read.
struct Reader<'h> {
    headers: &'h RecordHeaders,
    problems: Vec<DeadLetterProblem>,
}

impl<'h> Reader<'h> {
    /// The last non-null value of `header`.
    fn last(&self, header: &str) -> Option<&'h [u8]> {
        self.headers.get_all(header).flatten().last()
    }

    /// A name (topic, group, class): UTF-8, trimmed, not empty.
    fn name(&mut self, header: &'static str) -> Option<String> {
        let bytes = self.last(header)?;
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.problems.push(DeadLetterProblem::NotUtf8 { header });
            return None;
        };
        let text = text.trim();
        if text.is_empty() {
            self.problems.push(DeadLetterProblem::Empty { header });
            return None;
        }
        Some(text.to_owned())
    }

    /// Free text (a message, a stack trace): decoded lossily, noting when it was not UTF-8.
    fn lossy(&mut self, header: &'static str) -> Option<String> {
        let bytes = self.last(header)?;
        let text = String::from_utf8_lossy(bytes);
        if let std::borrow::Cow::Owned(_) = text {
            self.problems.push(DeadLetterProblem::NotUtf8 { header });
        }
        Some(text.into_owned())
    }

    /// Decimal text, else a big-endian integer of exactly `width` (4 or 8) bytes.
    fn number(&mut self, header: &'static str, width: usize) -> Option<i64> {
        let bytes = self.last(header)?;
        if let Some(value) = decimal(bytes) {
            return Some(value);
        }
        let value = match (width, bytes.len()) {
            (4, 4) => <[u8; 4]>::try_from(bytes)
                .ok()
                .map(|b| i64::from(i32::from_be_bytes(b))),
            (8, 8) => <[u8; 8]>::try_from(bytes).ok().map(i64::from_be_bytes),
            _ => None,
        };
        if value.is_none() {
            self.problems.push(DeadLetterProblem::BadNumber {
                header,
                len: bytes.len(),
                width,
            });
        }
        value
    }

    /// `value` if within `0..=max`, else noted as out of range.
    fn in_range(&mut self, header: &'static str, value: i64, max: i64) -> Option<i64> {
        if (0..=max).contains(&value) {
            Some(value)
        } else {
            self.problems
                .push(DeadLetterProblem::OutOfRange { header, value });
            None
        }
    }

    /// An id header (`ce_id`): its non-empty UTF-8 values must agree (as the SDK reads ids).
    fn id(&mut self, header: &'static str) -> Option<String> {
        let mut values: Vec<&str> = Vec::new();
        for bytes in self.headers.get_all(header).flatten() {
            match std::str::from_utf8(bytes) {
                Ok(text) if !text.trim().is_empty() => {
                    if !values.contains(&text.trim()) {
                        values.push(text.trim());
                    }
                }
                Ok(_) => {}
                Err(_) => self.problems.push(DeadLetterProblem::NotUtf8 { header }),
            }
        }
        match values.as_slice() {
            [] => None,
            [one] => Some((*one).to_owned()),
            many => {
                self.problems.push(DeadLetterProblem::Conflicting {
                    header,
                    count: many.len(),
                });
                None
            }
        }
    }
}

/// Optionally signed ASCII decimal digits, as an `i64`.
fn decimal(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> RecordHeaders {
        let mut h = RecordHeaders::new();
        for (name, value) in pairs {
            h.push(*name, Some(value.to_vec()));
        }
        h
    }

    fn recognised(topic: &str, h: &RecordHeaders) -> DeadLetter {
        recognise(topic, h, &DeadLetterRules::default())
            .expect("names its original")
            .expect("is a dead letter")
    }

    /// What Spring's `DeadLetterPublishingRecoverer` writes for a listener failure in
    /// `bank-group` (3.0.7+), partition and offset as `ByteBuffer` writes them.
    fn spring_binary() -> RecordHeaders {
        headers(&[
            ("ce_id", b"evt-1"),
            ("kafka_dlt-exception-fqcn", SPRING_LISTENER_WRAPPER.as_bytes()),
            ("kafka_dlt-exception-cause-fqcn", b"java.lang.IllegalStateException"),
            (
                "kafka_dlt-exception-message",
                b"Listener method 'public void com.bank.Handler.on(Payment)' threw exception; card expired",
            ),
            (
                "kafka_dlt-exception-stacktrace",
                b"org.springframework.kafka.listener.ListenerExecutionFailedException: Listener method ...\n\tat com.bank.Handler.on(Handler.java:42)\n",
            ),
            ("kafka_dlt-original-topic", b"payments"),
            ("kafka_dlt-original-partition", &3i32.to_be_bytes()),
            ("kafka_dlt-original-offset", &1234i64.to_be_bytes()),
            ("kafka_dlt-original-timestamp", &1_700_000_000_000i64.to_be_bytes()),
            ("kafka_dlt-original-timestamp-type", b"CreateTime"),
            ("kafka_dlt-original-consumer-group", b"bank-group"),
        ])
    }

    fn connect() -> RecordHeaders {
        headers(&[
            ("ce_id", b"evt-9"),
            ("__connect.errors.topic", b"orders"),
            ("__connect.errors.partition", b"2"),
            ("__connect.errors.offset", b"77"),
            ("__connect.errors.connector.name", b"orders-sink"),
            ("__connect.errors.task.id", b"0"),
            ("__connect.errors.stage", b"VALUE_CONVERTER"),
            (
                "__connect.errors.class.name",
                b"org.apache.kafka.connect.json.JsonConverter",
            ),
            (
                "__connect.errors.exception.class.name",
                b"org.apache.kafka.connect.errors.DataException",
            ),
            (
                "__connect.errors.exception.message",
                b"Converting byte[] to Kafka Connect data failed due to serialization error: ",
            ),
            (
                "__connect.errors.exception.stacktrace",
                b"org.apache.kafka.connect.errors.DataException: Converting byte[] ...\n\tat org.apache...\n",
            ),
        ])
    }

    fn position(topic: &str, partition: i32, offset: i64) -> Original {
        Original::Position {
            topic: topic.into(),
            partition,
            offset,
        }
    }

    #[test]
    fn spring_headers_with_binary_partition_and_offset_give_the_original_position() {
        let dl = recognised("payments.DLT", &spring_binary());
        assert_eq!(dl.source, Source::Spring);
        assert_eq!(dl.original, position("payments", 3, 1234));
        assert_eq!(dl.original_timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(dl.consumer_group.as_deref(), Some("bank-group"));
        assert_eq!(dl.exception_class.as_deref(), Some(SPRING_LISTENER_WRAPPER));
        assert_eq!(
            dl.exception_cause_class.as_deref(),
            Some("java.lang.IllegalStateException")
        );
        assert_eq!(dl.event_id.as_deref(), Some("evt-1"));
        assert_eq!(
            dl.stacktrace_head.as_deref(),
            Some("org.springframework.kafka.listener.ListenerExecutionFailedException: Listener method ...")
        );
        assert!(dl.problems.is_empty(), "{:?}", dl.problems);
    }

    #[test]
    fn spring_headers_with_decimal_text_partition_and_offset_read_the_same() {
        let mut h = spring_binary();
        h.set("kafka_dlt-original-partition", "3");
        h.set("kafka_dlt-original-offset", "1234");
        let dl = recognised("payments.DLT", &h);
        assert_eq!(dl.original, position("payments", 3, 1234));
        assert!(dl.problems.is_empty(), "{:?}", dl.problems);
    }

    #[test]
    fn four_digit_text_partition_is_read_as_text_not_as_binary() {
        let mut h = spring_binary();
        h.set("kafka_dlt-original-partition", "1234");
        h.set("kafka_dlt-original-offset", "12345678");
        let dl = recognised("payments.DLT", &h);
        assert_eq!(dl.original, position("payments", 1234, 12_345_678));
    }

    #[test]
    fn spring_headers_count_on_any_topic_name() {
        let dl = recognised("payments-errors", &spring_binary());
        assert_eq!(dl.source, Source::Spring);
        assert_eq!(dl.original, position("payments", 3, 1234));
    }

    #[test]
    fn spring_key_deserialisation_failure_uses_the_key_exception_headers() {
        let h = headers(&[
            (
                "kafka_dlt-key-exception-fqcn",
                b"org.springframework.kafka.support.serializer.DeserializationException",
            ),
            ("kafka_dlt-key-exception-message", b"failed to deserialize"),
            ("kafka_dlt-original-topic", b"orders"),
            ("kafka_dlt-original-partition", &0i32.to_be_bytes()),
            ("kafka_dlt-original-offset", &5i64.to_be_bytes()),
        ]);
        let dl = recognised("orders-dlt", &h);
        assert_eq!(
            dl.reason(),
            "org.springframework.kafka.support.serializer.DeserializationException: failed to deserialize"
        );
    }

    #[test]
    fn a_record_dead_lettered_twice_uses_the_newest_original_headers() {
        let mut h = spring_binary();
        h.push(
            "kafka_dlt-original-topic",
            Some(b"payments-replay".to_vec()),
        );
        h.push(
            "kafka_dlt-original-partition",
            Some(0i32.to_be_bytes().to_vec()),
        );
        h.push(
            "kafka_dlt-original-offset",
            Some(9i64.to_be_bytes().to_vec()),
        );
        let dl = recognised("payments.DLT", &h);
        assert_eq!(dl.original, position("payments-replay", 0, 9));
    }

    #[test]
    fn spring_retry_topic_headers_on_its_dlt_give_the_original_position() {
        let h = headers(&[
            ("ce_id", b"evt-2"),
            ("kafka_original-topic", b"orders"),
            ("kafka_original-partition", &1i32.to_be_bytes()),
            ("kafka_original-offset", &10i64.to_be_bytes()),
            ("kafka_exception-fqcn", b"java.lang.RuntimeException"),
            ("kafka_exception-message", b"stock service down"),
            ("kafka_dlt-original-consumer-group", b"stock"),
        ]);
        let dl = recognised("orders-dlt", &h);
        assert_eq!(dl.source, Source::Spring);
        assert_eq!(dl.original, position("orders", 1, 10));
        assert_eq!(
            dl.reason(),
            "stock: java.lang.RuntimeException: stock service down"
        );
    }

    #[test]
    fn spring_retry_topic_headers_on_a_retry_topic_are_not_a_dead_letter() {
        let h = headers(&[
            ("ce_id", b"evt-2"),
            ("kafka_original-topic", b"orders"),
            ("kafka_original-partition", &1i32.to_be_bytes()),
            ("kafka_original-offset", &10i64.to_be_bytes()),
            ("kafka_exception-fqcn", b"java.lang.RuntimeException"),
        ]);
        let rules = DeadLetterRules::default();
        assert_eq!(recognise("orders-retry-0", &h, &rules), Ok(None));
    }

    #[test]
    fn a_replay_onto_the_original_topic_is_not_a_dead_letter() {
        let rules = DeadLetterRules::default();
        assert_eq!(recognise("payments", &spring_binary(), &rules), Ok(None));
    }

    #[test]
    fn connect_headers_give_the_original_position_and_the_connector() {
        let dl = recognised("dlq-orders-sink", &connect());
        assert_eq!(dl.source, Source::Connect);
        assert_eq!(dl.original, position("orders", 2, 77));
        assert_eq!(dl.connector.as_deref(), Some("orders-sink"));
        assert_eq!(dl.task.as_deref(), Some("0"));
        assert_eq!(dl.stage.as_deref(), Some("VALUE_CONVERTER"));
        assert_eq!(
            dl.executing_class.as_deref(),
            Some("org.apache.kafka.connect.json.JsonConverter")
        );
        assert_eq!(dl.consumer_group, None);
        assert_eq!(dl.event_id.as_deref(), Some("evt-9"));
        assert!(dl.problems.is_empty(), "{:?}", dl.problems);
    }

    #[test]
    fn connect_null_exception_message_is_simply_unknown() {
        let mut h = connect();
        h.remove("__connect.errors.exception.message");
        h.push("__connect.errors.exception.message", None);
        let dl = recognised("dlq-orders-sink", &h);
        assert_eq!(dl.exception_message, None);
        assert!(dl.problems.is_empty(), "{:?}", dl.problems);
    }

    #[test]
    fn the_later_of_spring_and_connect_headers_wins() {
        let mut h = spring_binary();
        for (name, value) in connect().iter() {
            if name != "ce_id" {
                h.push(name, value.map(<[u8]>::to_vec));
            }
        }
        assert_eq!(recognised("x.DLT", &h).source, Source::Connect);
    }

    #[test]
    fn same_id_copy_on_orders_dot_dlt_refers_to_the_event_with_that_id() {
        let dl = recognised("orders.DLT", &headers(&[("ce_id", b"evt-7")]));
        assert_eq!(dl.source, Source::TopicName);
        assert_eq!(dl.original, Original::SameId { id: "evt-7".into() });
        assert_eq!(dl.reason(), "dead-lettered to orders.DLT");
    }

    #[test]
    fn same_id_copy_on_payments_dlq_refers_to_the_event_with_that_id() {
        let dl = recognised("payments-dlq", &headers(&[("ce_id", b"evt-8")]));
        assert_eq!(dl.original, Original::SameId { id: "evt-8".into() });
    }

    #[test]
    fn every_default_suffix_names_a_dead_letter_topic() {
        let rules = DeadLetterRules::default();
        for topic in [
            "o.DLT",
            "o-dlt",
            "o-dlq",
            "o.dlq",
            "o.DLQ",
            "o.dead-letter",
            "o-dead-letter",
        ] {
            assert!(rules.is_dead_letter_topic(topic), "{topic}");
        }
    }

    #[test]
    fn a_topic_with_dlt_in_the_middle_is_not_a_dead_letter_topic() {
        let rules = DeadLetterRules::default();
        for topic in [
            "orders.DLT.audit",
            "dlt-orders",
            "orders-dltx",
            "sdlt",
            "orders",
        ] {
            assert!(!rules.is_dead_letter_topic(topic), "{topic}");
            assert_eq!(
                recognise(topic, &headers(&[("ce_id", b"e")]), &rules),
                Ok(None),
                "{topic}"
            );
        }
    }

    #[test]
    fn default_suffixes_are_case_sensitive() {
        assert!(!DeadLetterRules::default().is_dead_letter_topic("orders.dlt"));
    }

    #[test]
    fn a_custom_pattern_replaces_the_defaults() {
        let rules = DeadLetterRules::new([r"^errors\."]).unwrap();
        assert!(rules.is_dead_letter_topic("errors.orders"));
        assert!(!rules.is_dead_letter_topic("orders.DLT"));
        let dl = recognise("errors.orders", &headers(&[("ce_id", b"e1")]), &rules)
            .unwrap()
            .unwrap();
        assert_eq!(dl.original, Original::SameId { id: "e1".into() });
        assert_eq!(rules.patterns().collect::<Vec<_>>(), vec![r"^errors\."]);
    }

    #[test]
    fn a_bad_pattern_is_an_error_naming_it() {
        let err = DeadLetterRules::new([r"\.DLT$", "(unclosed"]).unwrap_err();
        assert!(matches!(
            &err,
            DeadLetterRulesError::BadPattern { index: 1, pattern, .. } if pattern == "(unclosed"
        ));
        assert!(err.to_string().contains("(unclosed"), "{err}");
    }

    #[test]
    fn an_empty_pattern_is_an_error() {
        assert!(matches!(
            DeadLetterRules::new([" "]),
            Err(DeadLetterRulesError::Empty { index: 0 })
        ));
    }

    #[test]
    fn a_three_byte_partition_is_a_problem_and_the_original_falls_back_to_the_id() {
        let mut h = spring_binary();
        h.set("kafka_dlt-original-partition", vec![0u8, 0, 3]);
        let dl = recognised("payments.DLT", &h);
        assert_eq!(dl.original_partition, None);
        assert_eq!(dl.original, Original::SameId { id: "evt-1".into() });
        assert_eq!(
            dl.problems,
            vec![DeadLetterProblem::BadNumber {
                header: "kafka_dlt-original-partition",
                len: 3,
                width: 4
            }]
        );
        assert_eq!(dl.problems[0].kind(), "dead_letter_bad_number");
    }

    #[test]
    fn a_negative_offset_is_out_of_range() {
        let mut h = spring_binary();
        h.set("kafka_dlt-original-offset", (-1i64).to_be_bytes());
        let dl = recognised("payments.DLT", &h);
        assert_eq!(dl.original_offset, None);
        assert_eq!(
            dl.problems,
            vec![DeadLetterProblem::OutOfRange {
                header: "kafka_dlt-original-offset",
                value: -1
            }]
        );
    }

    #[test]
    fn a_text_partition_beyond_i32_is_out_of_range() {
        let mut h = connect();
        h.set("__connect.errors.partition", "4294967296");
        let dl = recognised("dlq", &h);
        assert_eq!(dl.original_partition, None);
        assert_eq!(dl.problems[0].kind(), "dead_letter_out_of_range");
    }

    #[test]
    fn a_non_utf8_original_topic_is_a_problem_and_leaves_the_topic_unknown() {
        let mut h = spring_binary();
        h.set("kafka_dlt-original-topic", vec![0xff, 0xfe]);
        let dl = recognised("payments.DLT", &h);
        assert_eq!(dl.original_topic, None);
        assert_eq!(
            dl.problems,
            vec![DeadLetterProblem::NotUtf8 {
                header: "kafka_dlt-original-topic"
            }]
        );
    }

    #[test]
    fn a_non_utf8_message_is_kept_lossily_and_noted() {
        let mut h = connect();
        h.set(
            "__connect.errors.exception.message",
            b"caf\xe9 closed".to_vec(),
        );
        let dl = recognised("dlq", &h);
        assert_eq!(dl.exception_message.as_deref(), Some("caf\u{fffd} closed"));
        assert_eq!(
            dl.problems,
            vec![DeadLetterProblem::NotUtf8 {
                header: "__connect.errors.exception.message"
            }]
        );
    }

    #[test]
    fn a_dead_letter_with_no_position_and_no_id_names_no_original() {
        let rules = DeadLetterRules::default();
        assert_eq!(
            recognise("orders.DLT", &RecordHeaders::new(), &rules),
            Err(DeadLetterProblem::NoOriginal {
                topic: "orders.DLT".into(),
                by: Source::TopicName
            })
        );
        let h = headers(&[("kafka_dlt-exception-fqcn", b"java.lang.Error")]);
        assert_eq!(
            recognise("orders-errors", &h, &rules),
            Err(DeadLetterProblem::NoOriginal {
                topic: "orders-errors".into(),
                by: Source::Spring
            })
        );
    }

    #[test]
    fn conflicting_ce_ids_are_no_id() {
        let h = headers(&[("ce_id", b"a"), ("ce_id", b"b")]);
        let rules = DeadLetterRules::default();
        assert!(matches!(
            recognise("orders.DLT", &h, &rules),
            Err(DeadLetterProblem::NoOriginal { .. })
        ));
    }

    #[test]
    fn reason_names_the_group_the_real_exception_and_its_message() {
        let dl = recognised("payments.DLT", &spring_binary());
        assert_eq!(
            dl.reason(),
            "bank-group: java.lang.IllegalStateException: card expired"
        );
    }

    #[test]
    fn reason_unwraps_spring_2_nested_exception_messages() {
        let mut h = spring_binary();
        h.set(
            "kafka_dlt-exception-message",
            "Listener method 'public void com.bank.Handler.on(Payment)' threw exception; nested exception is java.lang.IllegalStateException: card expired",
        );
        assert_eq!(
            recognised("payments.DLT", &h).reason(),
            "bank-group: java.lang.IllegalStateException: card expired"
        );
    }

    #[test]
    fn reason_names_the_connector_task_and_stage() {
        assert_eq!(
            recognised("dlq", &connect()).reason(),
            "connector orders-sink task 0, stage VALUE_CONVERTER: org.apache.kafka.connect.errors.DataException: Converting byte[] to Kafka Connect data failed due to serialization error:"
        );
    }

    #[test]
    fn reason_is_one_line_of_at_most_240_message_characters() {
        let mut h = connect();
        let long = format!("{}\nsecond line", "x".repeat(300));
        h.set("__connect.errors.exception.message", long);
        let reason = recognised("dlq", &h).reason();
        assert!(!reason.contains('\n'));
        assert!(
            reason.ends_with(&format!("{}…", "x".repeat(240))),
            "{reason}"
        );
    }

    #[test]
    fn reason_without_exception_says_where_it_was_dead_lettered() {
        let h = headers(&[
            ("kafka_dlt-original-topic", b"orders"),
            ("kafka_dlt-original-partition", b"0"),
            ("kafka_dlt-original-offset", b"1"),
            ("kafka_dlt-original-consumer-group", b"shipping"),
        ]);
        assert_eq!(
            recognised("orders.DLT", &h).reason(),
            "shipping: dead-lettered to orders.DLT"
        );
    }

    #[test]
    fn source_names_are_spring_connect_and_topic_name() {
        assert_eq!(Source::Spring.as_str(), "spring");
        assert_eq!(Source::Connect.as_str(), "connect");
        assert_eq!(Source::TopicName.as_str(), "topic_name");
        assert_eq!(
            serde_json::to_string(&Source::TopicName).unwrap(),
            r#""topic_name""#
        );
    }
}
