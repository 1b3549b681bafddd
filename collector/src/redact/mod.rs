//! Redaction at ingest: what the collector removes from a record before anything of it is
//! stored, irreversibly. Per topic pattern, JSON pointers (with `*` over arrays) whose values are
//! masked, hashed (keyed HMAC: a hashed e-mail still joins flows) or dropped; header values
//! dropped by name pattern (credentials by default); a payload policy (`full`, `truncated`,
//! `none`); the record key kept, hashed or dropped; business keys stored hashed by name. What was
//! redacted is recorded on the event ([`RedactionNote`]) and counted in metrics.
//!
//! A payload under a topic with pointer rules that is not JSON is stored without payload, and the
//! event says why: never stored unredacted.
//!
//! - `config`: the config file's `[redaction]` table.
//! - `pointer`: JSON pointers with wildcards.
//! - `hash`: the keyed hash.

mod config;
mod hash;
mod pointer;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rules::TopicPattern;

pub use config::{
    KeyPolicy, PayloadPolicy, RedactionTable, TopicTable, DEFAULT_DROP_HEADERS,
    DEFAULT_TRUNCATE_AT, HASH_KEY_ENV,
};
pub use hash::{HashKey, MIN_KEY_LEN, PREFIX as HASH_PREFIX};
pub use pointer::{Key, Pointer};

/// What a masked value becomes, and a dropped header's value.
pub const MASK: &str = "[redacted]";

/// Why the `[redaction]` table cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("[redaction]: {0}")]
pub struct RedactionError(pub String);

/// What was redacted on one event, stored with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionNote {
    /// Pointers whose values were masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked: Vec<String>,
    /// Pointers whose values were hashed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashed: Vec<String>,
    /// Pointers whose values were dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// Headers whose values were dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// Business keys whose values were hashed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// What became of the payload, when not all of it (after the pointers) was kept:
    /// `none`, `truncated`, or `withheld` with why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// What became of the record key: `hashed` or `dropped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_key: Option<String>,
}

impl RedactionNote {
    /// Whether nothing was redacted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// How many of each kind it notes, for `choreoscope_redactions_total{kind}` (kinds of
    /// count 0 left out).
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        [
            ("masked", self.masked.len()),
            ("hashed", self.hashed.len()),
            ("dropped", self.dropped.len()),
            ("header", self.headers.len()),
            ("key", self.keys.len()),
            ("payload", usize::from(self.payload.is_some())),
            ("record_key", usize::from(self.record_key.is_some())),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }

    /// The note as stored: JSON, or `None` when nothing was redacted.
    pub fn to_json(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(self).unwrap_or_default())
    }
}

/// Header name patterns (`*` any run of characters, the rest literal, case-insensitive), matched
/// as one anchored alternation: a single pass over the name, whatever the number of patterns (it
/// runs for every header of every record).
#[derive(Debug, Clone, Default)]
struct HeaderPatterns(Option<regex::bytes::Regex>);

impl HeaderPatterns {
    fn new(patterns: &[impl AsRef<str>]) -> Result<Self, RedactionError> {
        if patterns.is_empty() {
            return Ok(Self(None));
        }
        let mut alternatives = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let pattern = pattern.as_ref();
            if pattern.is_empty() {
                return Err(RedactionError("an empty header pattern".into()));
            }
            let parts: Vec<String> = pattern.split('*').map(regex::escape).collect();
            alternatives.push(parts.join(".*"));
        }
        // ASCII case folding over bytes: header names are ASCII in practice, and the Unicode
        // classes of `(?i)` made each match several times slower.
        regex::bytes::Regex::new(&format!("(?i-u)^(?:{})$", alternatives.join("|")))
            .map(|r| Self(Some(r)))
            .map_err(|e| RedactionError(format!("header patterns: {e}")))
    }

    /// Whether `name` matches any of the patterns.
    fn matches(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|r| r.is_match(name.as_bytes()))
    }
}

fn header_patterns(patterns: &[impl AsRef<str>]) -> Result<HeaderPatterns, RedactionError> {
    HeaderPatterns::new(patterns)
}

fn pointers(list: &[String]) -> Result<Vec<Pointer>, RedactionError> {
    list.iter()
        .map(|p| Pointer::parse(p).map_err(RedactionError))
        .collect()
}

/// One compiled `[[redaction.topics]]` entry.
#[derive(Debug, Clone)]
struct TopicRules {
    topics: TopicPattern,
    mask: Vec<Pointer>,
    hash: Vec<Pointer>,
    drop: Vec<Pointer>,
    drop_headers: HeaderPatterns,
    payload: PayloadPolicy,
    truncate_at: usize,
    record_key: KeyPolicy,
}

/// The compiled redaction rules.
#[derive(Debug, Clone)]
pub struct Redaction {
    key: Option<HashKey>,
    drop_headers: HeaderPatterns,
    hash_keys: BTreeSet<String>,
    topics: Vec<TopicRules>,
}

impl Default for Redaction {
    /// Header values of [`DEFAULT_DROP_HEADERS`] dropped, nothing else.
    fn default() -> Self {
        Self {
            key: None,
            drop_headers: header_patterns(DEFAULT_DROP_HEADERS).expect("the defaults compile"),
            hash_keys: BTreeSet::new(),
            topics: Vec::new(),
        }
    }
}

impl Redaction {
    /// Compiles the table; the hashing key is read from its file or, through `env`, from
    /// [`HASH_KEY_ENV`], and is required when anything is to be hashed.
    pub fn from_table(
        table: &RedactionTable,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RedactionError> {
        let key = match &table.hash_key_file {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    RedactionError(format!("hash_key_file {}: {e}", path.display()))
                })?;
                Some(HashKey::new(bytes).map_err(RedactionError)?)
            }
            None => env(HASH_KEY_ENV)
                .map(HashKey::new)
                .transpose()
                .map_err(RedactionError)?,
        };
        let topics = table
            .topics
            .iter()
            .map(|t| {
                Ok(TopicRules {
                    topics: TopicPattern::new(&t.topics)
                        .map_err(|e| RedactionError(e.to_string()))?,
                    mask: pointers(&t.mask)?,
                    hash: pointers(&t.hash)?,
                    drop: pointers(&t.drop)?,
                    drop_headers: header_patterns(&t.drop_headers)?,
                    payload: t.payload,
                    truncate_at: t.truncate_at.unwrap_or(DEFAULT_TRUNCATE_AT),
                    record_key: t.record_key,
                })
            })
            .collect::<Result<Vec<_>, RedactionError>>()?;
        let hashes = !table.hash_keys.is_empty()
            || topics
                .iter()
                .any(|t| !t.hash.is_empty() || t.record_key == KeyPolicy::Hash);
        if hashes && key.is_none() {
            return Err(RedactionError(format!(
                "hashing needs a key: hash_key_file or {HASH_KEY_ENV} (at least {MIN_KEY_LEN} bytes)"
            )));
        }
        let drop_headers = match &table.drop_headers {
            Some(list) => header_patterns(list)?,
            None => header_patterns(DEFAULT_DROP_HEADERS)?,
        };
        Ok(Self {
            key,
            drop_headers,
            hash_keys: table.hash_keys.iter().cloned().collect(),
            topics,
        })
    }

    /// The rules for records of `topic`.
    pub fn plan(&self, topic: &str) -> Plan<'_> {
        let rules: Vec<&TopicRules> = self
            .topics
            .iter()
            .filter(|t| t.topics.matches(topic))
            .collect();
        Plan {
            redaction: self,
            payload: rules.iter().map(|r| r.payload).max().unwrap_or_default(),
            truncate_at: rules
                .iter()
                .filter(|r| r.payload == PayloadPolicy::Truncated)
                .map(|r| r.truncate_at)
                .min()
                .unwrap_or(DEFAULT_TRUNCATE_AT),
            record_key: rules.iter().map(|r| r.record_key).max().unwrap_or_default(),
            rules,
        }
    }

    /// The hash of `text` under the key, when there is one: what a query for a hashed value
    /// looks for.
    pub fn hash(&self, text: &str) -> Option<String> {
        self.key.as_ref().map(|k| k.hash(text))
    }

    /// Whether any value is stored hashed.
    pub fn hashes(&self) -> bool {
        self.key.is_some()
    }
}

/// The redaction rules of one topic (every matching entry; the strictest payload and key policy).
#[derive(Debug)]
pub struct Plan<'a> {
    redaction: &'a Redaction,
    rules: Vec<&'a TopicRules>,
    /// How much of the payload is kept.
    pub payload: PayloadPolicy,
    /// Bytes kept with [`PayloadPolicy::Truncated`].
    pub truncate_at: usize,
    /// What becomes of the record key.
    pub record_key: KeyPolicy,
}

impl Plan<'_> {
    /// Whether the payload's JSON must be rewritten before it is stored.
    pub fn has_pointers(&self) -> bool {
        self.rules
            .iter()
            .any(|r| !r.mask.is_empty() || !r.hash.is_empty() || !r.drop.is_empty())
    }

    /// Whether the value of header `name` is dropped.
    pub fn drops_header(&self, name: &str) -> bool {
        self.redaction.drop_headers.matches(name)
            || self.rules.iter().any(|r| r.drop_headers.matches(name))
    }

    /// Applies the pointer rules to `doc` (drop, then hash, then mask), noting the pointers that
    /// reached something.
    pub fn rewrite(&self, doc: &mut Value, note: &mut RedactionNote) {
        for rules in &self.rules {
            for p in &rules.drop {
                let reached = p.visit(doc, &mut |parent, key| match (parent, key) {
                    (Value::Object(map), Key::Member(name)) => {
                        map.remove(name);
                    }
                    (Value::Array(items), Key::Index(i)) => items[*i] = Value::Null,
                    _ => {}
                });
                noted(&mut note.dropped, p, reached);
            }
            for p in &rules.hash {
                let key = self.redaction.key.as_ref();
                let reached = p.visit(doc, &mut |parent, k| {
                    if let (Some(slot), Some(key)) = (child(parent, k), key) {
                        *slot = Value::String(key.hash(&value_text(slot)));
                    }
                });
                noted(&mut note.hashed, p, reached);
            }
            for p in &rules.mask {
                let reached = p.visit(doc, &mut |parent, k| {
                    if let Some(slot) = child(parent, k) {
                        *slot = Value::String(MASK.to_owned());
                    }
                });
                noted(&mut note.masked, p, reached);
            }
        }
    }

    /// The value to store for business key `name`: hashed when the table names it (a value
    /// hashed already, read from a hashed pointer or a hashed record key, is kept as it is, so
    /// it still joins the same value hashed elsewhere).
    pub fn key_value(&self, name: &str, value: String, note: &mut RedactionNote) -> String {
        match &self.redaction.key {
            Some(_) if value.starts_with(hash::PREFIX) => value,
            Some(key) if self.redaction.hash_keys.contains(name) => {
                if !note.keys.iter().any(|k| k == name) {
                    note.keys.push(name.to_owned());
                }
                key.hash(&value)
            }
            _ => value,
        }
    }

    /// The hash of `text` under the key, if there is one.
    pub fn hash(&self, text: &str) -> Option<String> {
        self.redaction.hash(text)
    }
}

fn child<'v>(parent: &'v mut Value, key: &Key) -> Option<&'v mut Value> {
    match (parent, key) {
        (Value::Object(map), Key::Member(name)) => map.get_mut(name),
        (Value::Array(items), Key::Index(i)) => items.get_mut(*i),
        _ => None,
    }
}

/// The text a value is hashed as: a string's own text, anything else its JSON.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn noted(list: &mut Vec<String>, pointer: &Pointer, reached: usize) {
    if reached > 0 && !list.iter().any(|p| p == pointer.as_str()) {
        list.push(pointer.as_str().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "test-key-0123456789abcdef";

    fn redaction(toml_text: &str) -> Redaction {
        let table: RedactionTable = toml::from_str(toml_text).unwrap();
        Redaction::from_table(&table, |n| (n == HASH_KEY_ENV).then(|| KEY.to_owned())).unwrap()
    }

    const ORDERS: &str = r#"
        hash_keys = ["customer.email"]
        [[topics]]
        topics = "orders.*"
        mask = ["/card/number"]
        hash = ["/customer/email"]
        drop = ["/customer/address", "/items/*/giftNote"]
    "#;

    #[test]
    fn masked_hashed_and_dropped_pointers_leave_no_trace_of_their_values() {
        let r = redaction(ORDERS);
        let mut doc = json!({
            "orderId": "o-1",
            "card": {"number": "4111111111111111"},
            "customer": {"email": "alice@example.com", "address": "1 Main St"},
            "items": [{"sku": "a", "giftNote": "love"}, {"sku": "b"}]
        });
        let mut note = RedactionNote::default();
        r.plan("orders").rewrite(&mut doc, &mut note);
        let text = doc.to_string();
        for secret in ["4111111111111111", "alice@example.com", "1 Main St", "love"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(doc["card"]["number"], MASK);
        assert_eq!(
            doc["customer"]["email"],
            Value::String(HashKey::new(KEY).unwrap().hash("alice@example.com"))
        );
        assert_eq!(doc["orderId"], "o-1");
        assert_eq!(note.masked, ["/card/number"]);
        assert_eq!(note.hashed, ["/customer/email"]);
        assert_eq!(note.dropped, ["/customer/address", "/items/*/giftNote"]);
    }

    #[test]
    fn rules_of_other_topics_do_not_apply() {
        let r = redaction(ORDERS);
        let mut doc = json!({"card": {"number": "4111"}});
        let mut note = RedactionNote::default();
        r.plan("payments").rewrite(&mut doc, &mut note);
        assert_eq!(doc["card"]["number"], "4111");
        assert!(note.is_empty());
        assert!(!r.plan("payments").has_pointers());
    }

    #[test]
    fn credential_headers_are_dropped_by_default_whatever_their_case() {
        let r = Redaction::default();
        let plan = r.plan("orders");
        for name in [
            "Authorization",
            "cookie",
            "X-Api-Key",
            "x-auth-token",
            "db_password",
        ] {
            assert!(plan.drops_header(name), "{name}");
        }
        for name in ["traceparent", "ce_id", "baggage", "content-type"] {
            assert!(!plan.drops_header(name), "{name}");
        }
    }

    #[test]
    fn header_patterns_anchor_where_they_have_no_star() {
        let g = |p: &str, name: &str| HeaderPatterns::new(&[p]).unwrap().matches(name);
        assert!(g("x-*-id", "x-user-id") && !g("x-*-id", "x-user-idx"));
        assert!(g("*token*", "token") && g("*token*", "X-Token-2"));
        assert!(g("cookie", "cookie") && !g("cookie", "cookies"));
        assert!(g("a*b*c", "a-b-b-c") && !g("a*b*c", "a-c-b"));
        assert!(g("x.y", "x.y") && !g("x.y", "xzy"), "the rest is literal");
        assert!(!HeaderPatterns::new(&[] as &[&str])
            .unwrap()
            .matches("anything"));
    }

    #[test]
    fn a_topic_adds_header_patterns_and_the_table_can_replace_the_defaults() {
        let r = redaction(
            r#"
            drop_headers = ["x-secret"]
            [[topics]]
            topics = "orders"
            drop_headers = ["x-internal-*"]
            "#,
        );
        assert!(r.plan("orders").drops_header("X-Internal-Route"));
        assert!(!r.plan("payments").drops_header("x-internal-route"));
        assert!(
            !r.plan("orders").drops_header("authorization"),
            "the list replaced the defaults"
        );
    }

    #[test]
    fn the_strictest_payload_and_key_policy_of_the_matching_entries_wins() {
        let r = redaction(
            r#"
            [[topics]]
            topics = ".*"
            payload = "truncated"
            truncate_at = 64
            [[topics]]
            topics = "audit"
            payload = "none"
            record_key = "hash"
            "#,
        );
        let audit = r.plan("audit");
        assert_eq!(audit.payload, PayloadPolicy::None);
        assert_eq!(audit.record_key, KeyPolicy::Hash);
        let orders = r.plan("orders");
        assert_eq!(orders.payload, PayloadPolicy::Truncated);
        assert_eq!(orders.truncate_at, 64);
        assert_eq!(orders.record_key, KeyPolicy::Keep);
    }

    #[test]
    fn hashing_without_a_key_is_refused_in_one_line() {
        let table: RedactionTable = toml::from_str(ORDERS).unwrap();
        let e = Redaction::from_table(&table, |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "[redaction]: hashing needs a key: hash_key_file or CHOREOSCOPE_REDACTION_KEY"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_bad_pointer_is_refused_naming_it() {
        let table: RedactionTable =
            toml::from_str("[[topics]]\ntopics = 'x'\nmask = ['customer']").unwrap();
        let e = Redaction::from_table(&table, |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`customer` is not a JSON pointer"), "{e}");
    }

    #[test]
    fn named_business_keys_are_hashed_and_noted_once() {
        let r = redaction(ORDERS);
        let plan = r.plan("anything");
        let mut note = RedactionNote::default();
        let v = plan.key_value("customer.email", "alice@example.com".into(), &mut note);
        assert_eq!(Some(v), r.hash("alice@example.com"));
        plan.key_value("customer.email", "bob@example.com".into(), &mut note);
        assert_eq!(plan.key_value("order.id", "o-1".into(), &mut note), "o-1");
        assert_eq!(note.keys, ["customer.email"]);
        let once = r.hash("carol@example.com").unwrap();
        assert_eq!(
            plan.key_value("customer.email", once.clone(), &mut note),
            once,
            "a value hashed at its pointer is not hashed again"
        );
    }
}
