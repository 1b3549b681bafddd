//! Header names of the wire format and [`RecordHeaders`], a binary-safe, ordered snapshot of a
//! Kafka record's headers that the rest of the SDK reads from and writes to.
//!
//! Kafka headers are an ordered list in which a name may repeat and a value may be absent (null)
//! or any bytes. `RecordHeaders` keeps all of that, so a reader can tell "absent" from "empty" from
//! "duplicated" from "not UTF-8" instead of guessing.

use rdkafka::message::{Header, Headers, OwnedHeaders};

/// W3C Trace Context: `00-<trace id>-<parent id>-<flags>`.
pub const TRACEPARENT: &str = "traceparent";
/// W3C Trace Context vendor state, carried unchanged.
pub const TRACESTATE: &str = "tracestate";
/// W3C Baggage: business keys such as `order.id=o-1001` travel here.
pub const BAGGAGE: &str = "baggage";
/// CloudEvents `specversion`, always `1.0` when we write it.
pub const CE_SPECVERSION: &str = "ce_specversion";
/// CloudEvents `id`: the event id (a UUIDv7 by default).
pub const CE_ID: &str = "ce_id";
/// CloudEvents `source`: the producing service.
pub const CE_SOURCE: &str = "ce_source";
/// CloudEvents `type`, e.g. `OrderCreated`.
pub const CE_TYPE: &str = "ce_type";
/// CloudEvents `time`, RFC 3339.
pub const CE_TIME: &str = "ce_time";
/// CloudEvents `subject`: the business entity, e.g. `order/o-1001`.
pub const CE_SUBJECT: &str = "ce_subject";
/// CloudEvents `datacontenttype` in the Kafka binary binding.
pub const CONTENT_TYPE: &str = "content-type";
/// Extension attribute: id of the event whose handling produced this one.
pub const CE_CAUSATIONID: &str = "ce_causationid";
/// Extension attribute: id of the conversation (the flow's first event id).
pub const CE_CORRELATIONID: &str = "ce_correlationid";
/// The CloudEvents spec version the SDK writes.
pub const SPEC_VERSION: &str = "1.0";

/// An ordered, binary-safe copy of a record's headers.
///
/// Reading never fails: values are kept as bytes, and interpretation (UTF-8, duplicates) is left to
/// the code that knows what a header means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordHeaders {
    entries: Vec<(String, Option<Vec<u8>>)>,
}

impl RecordHeaders {
    /// An empty header list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies the headers of a consumed record (borrowed or owned) or of any rdkafka header list.
    pub fn from_kafka<H: Headers>(headers: &H) -> Self {
        let entries = headers
            .iter()
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect();
        Self { entries }
    }

    /// Builds the rdkafka header list to produce with, in the same order.
    pub fn to_kafka(&self) -> OwnedHeaders {
        self.entries.iter().fold(
            OwnedHeaders::new_with_capacity(self.entries.len()),
            |acc, (key, value)| {
                acc.insert(Header {
                    key,
                    value: value.as_deref(),
                })
            },
        )
    }

    /// Every value stored under `name` (exact, case-sensitive match), in record order.
    pub fn get_all<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = Option<&'a [u8]>> + use<'a, 'n> {
        self.entries
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_deref())
    }

    /// Every `(name, value)` whose name equals `name` ignoring ASCII case, in record order.
    pub fn get_all_ignore_case<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + use<'a, 'n> {
        self.entries
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(key, value)| (key.as_str(), value.as_deref()))
    }

    /// The first value under `name`, if the header is present and not null.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.get_all(name).flatten().next()
    }

    /// Whether at least one header is called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|(key, _)| key == name)
    }

    /// Appends a header, keeping any existing one of the same name.
    pub fn push(&mut self, name: impl Into<String>, value: Option<Vec<u8>>) {
        self.entries.push((name.into(), value));
    }

    /// Sets `name` to `value`, replacing every existing header of that name.
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.remove(name);
        self.entries.push((name.to_owned(), Some(value.into())));
    }

    /// Removes every header called `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(key, _)| key != name);
    }

    /// All headers in record order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_deref()))
    }

    /// Number of headers, duplicates included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<String>, V: Into<Vec<u8>>> FromIterator<(K, V)> for RecordHeaders {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Self {
            entries: iter
                .into_iter()
                .map(|(k, v)| (k.into(), Some(v.into())))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_round_trip_keeps_order_duplicates_nulls_and_bytes() {
        let mut headers = RecordHeaders::new();
        headers.push("a", Some(b"1".to_vec()));
        headers.push("bin", Some(vec![0xff, 0x00, 0xfe]));
        headers.push("a", Some(b"2".to_vec()));
        headers.push("null", None);

        let back = RecordHeaders::from_kafka(&headers.to_kafka());

        assert_eq!(back, headers);
        assert_eq!(
            back.get_all("a").collect::<Vec<_>>(),
            vec![Some(&b"1"[..]), Some(&b"2"[..])]
        );
        assert_eq!(back.get_all("null").collect::<Vec<_>>(), vec![None]);
    }

    #[test]
    fn set_replaces_every_header_of_that_name() {
        let mut headers: RecordHeaders = [("x", "1"), ("y", "2"), ("x", "3")].into_iter().collect();
        headers.set("x", "4");
        assert_eq!(
            headers.get_all("x").collect::<Vec<_>>(),
            vec![Some(&b"4"[..])]
        );
        assert_eq!(headers.len(), 2);
    }
}
