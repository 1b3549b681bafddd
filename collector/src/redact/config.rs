//! The config file's `[redaction]` table, read and checked into [`Redaction`](super::Redaction)'s parts.
//!
//! ```toml
//! [redaction]
//! hash_key_file = "/run/secrets/choreoscope-hash-key"   # else CHOREOSCOPE_REDACTION_KEY
//! drop_headers = ["authorization", "*token*"]           # replaces the default list
//! hash_keys = ["customer.email"]                        # business keys stored hashed
//!
//! [[redaction.topics]]
//! topics = "orders.*"                                   # a regex over the whole topic name
//! mask = ["/customer/email", "/items/*/cardToken"]
//! hash = ["/customer/id"]
//! drop = ["/customer/address"]
//! drop_headers = ["x-internal-*"]                       # besides the table's list
//! payload = "full"                                      # full | truncated | none
//! truncate_at = 256                                     # bytes kept with payload = "truncated"
//! record_key = "keep"                                   # keep | hash | drop
//! ```

use std::path::PathBuf;

use serde::Deserialize;

/// The header names whose values are dropped when the config names none: credentials and
/// session material that never belongs in a lineage store.
pub const DEFAULT_DROP_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "*api-key*",
    "*apikey*",
    "*token*",
    "*secret*",
    "*password*",
];

/// Environment variable holding the hashing key when no `hash_key_file` is given.
pub const HASH_KEY_ENV: &str = "CHOREOSCOPE_REDACTION_KEY";

/// The `[redaction]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionTable {
    /// File holding the HMAC key for `hash` (else [`HASH_KEY_ENV`]).
    pub hash_key_file: Option<PathBuf>,
    /// Header name patterns (`*` any run of characters, case-insensitive) whose values are
    /// dropped on every topic; [`DEFAULT_DROP_HEADERS`] when absent.
    pub drop_headers: Option<Vec<String>>,
    /// Business-key names whose values are stored hashed, whatever they are read from.
    #[serde(default)]
    pub hash_keys: Vec<String>,
    /// Per-topic rules; every entry whose pattern matches applies.
    #[serde(default)]
    pub topics: Vec<TopicTable>,
}

/// One `[[redaction.topics]]` entry as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicTable {
    /// Topic regular expression (whole name).
    pub topics: String,
    /// Pointers whose values become `"[redacted]"`.
    #[serde(default)]
    pub mask: Vec<String>,
    /// Pointers whose values become `"hmac:…"`, the same for the same value.
    #[serde(default)]
    pub hash: Vec<String>,
    /// Pointers whose members are removed (array elements become `null`).
    #[serde(default)]
    pub drop: Vec<String>,
    /// Header name patterns dropped on these topics, besides the table's.
    #[serde(default)]
    pub drop_headers: Vec<String>,
    /// How much of the payload is kept.
    #[serde(default)]
    pub payload: PayloadPolicy,
    /// Bytes kept with `payload = "truncated"`.
    pub truncate_at: Option<usize>,
    /// What becomes of the record key.
    #[serde(default)]
    pub record_key: KeyPolicy,
}

/// How much of a payload is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadPolicy {
    /// All of it (up to `--max-payload`), after the pointer rules.
    #[default]
    Full,
    /// Its first `truncate_at` bytes, after the pointer rules.
    Truncated,
    /// None of it: its size only.
    None,
}

/// What becomes of the Kafka record key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPolicy {
    /// Stored as it is.
    #[default]
    Keep,
    /// Stored hashed (and so is the `kafka.key` business key).
    Hash,
    /// Not stored.
    Drop,
}

/// Bytes kept with `payload = "truncated"` when `truncate_at` is not given.
pub const DEFAULT_TRUNCATE_AT: usize = 256;
