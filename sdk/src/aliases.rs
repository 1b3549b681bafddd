//! The alias table: which headers other than the canonical `ce_*` ones may carry an event id, a
//! causation id or a correlation id.
//!
//! Frameworks disagree on names *and* meanings (Axon 4's `correlationId` is the parent, Axon 5's is
//! the root), so there is no single global mapping: the table is a value, built from the generic
//! default and named per-framework [profiles](AliasTable::profile), and a reader is given the table
//! that fits the source it reads. Alias names match ignoring ASCII case; canonical headers always
//! win over aliases.

use serde::{Deserialize, Serialize};

/// Header names, in priority order, that may carry each id when the canonical header is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AliasTable {
    /// Aliases of `ce_id`.
    pub event_id: Vec<String>,
    /// Aliases of `ce_causationid` (the parent event).
    pub causation_id: Vec<String>,
    /// Aliases of `ce_correlationid` (the conversation's root).
    pub correlation_id: Vec<String>,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for AliasTable {
    /// The generic table: `message-id`, `event-id`, `correlation-id`, `causation-id` and their
    /// `x-` forms.
    fn default() -> Self {
        Self {
            event_id: names(&["message-id", "event-id", "x-message-id", "x-event-id"]),
            causation_id: names(&["causation-id", "x-causation-id"]),
            correlation_id: names(&["correlation-id", "x-correlation-id"]),
        }
    }
}

impl AliasTable {
    /// Names of the built-in framework profiles accepted by [`AliasTable::profile`].
    pub const PROFILES: &'static [&'static str] = &[
        "generic",
        "nservicebus",
        "masstransit",
        "axon4",
        "axon5",
        "eventuous",
    ];

    /// A table with no aliases: only the canonical `ce_*` headers are read.
    pub fn none() -> Self {
        Self {
            event_id: Vec::new(),
            causation_id: Vec::new(),
            correlation_id: Vec::new(),
        }
    }

    /// A built-in profile by name (see [`AliasTable::PROFILES`]), or `None` if unknown.
    pub fn profile(name: &str) -> Option<Self> {
        let (event_id, correlation_id, causation_id): (&[&str], &[&str], &[&str]) =
            match name.to_ascii_lowercase().as_str() {
                "generic" => return Some(Self::default()),
                "nservicebus" => (
                    &["NServiceBus.MessageId"],
                    &["NServiceBus.ConversationId"],
                    &["NServiceBus.RelatedTo"],
                ),
                "masstransit" => (&["MessageId"], &["ConversationId"], &["MT-InitiatorId"]),
                // Axon's Kafka extension prefixes metadata with `axon-metadata-`.
                "axon5" => (
                    &["axon-message-id"],
                    &["axon-metadata-correlationId"],
                    &["axon-metadata-causationId"],
                ),
                // Axon 4: `traceId` is the root, `correlationId` the parent.
                "axon4" => (
                    &["axon-message-id"],
                    &["axon-metadata-traceId"],
                    &["axon-metadata-correlationId"],
                ),
                "eventuous" => (
                    &["eventuous.message-id"],
                    &["eventuous.correlation-id"],
                    &["eventuous.causation-id"],
                ),
                _ => return None,
            };
        Some(Self {
            event_id: names(event_id),
            causation_id: names(causation_id),
            correlation_id: names(correlation_id),
        })
    }

    /// This table followed by `other`'s aliases (this table's take priority).
    pub fn merged(mut self, other: &AliasTable) -> Self {
        for (mine, theirs) in [
            (&mut self.event_id, &other.event_id),
            (&mut self.causation_id, &other.causation_id),
            (&mut self.correlation_id, &other.correlation_id),
        ] {
            for name in theirs {
                if !mine.iter().any(|m| m.eq_ignore_ascii_case(name)) {
                    mine.push(name.clone());
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_profile_exists_and_unknown_ones_do_not() {
        for name in AliasTable::PROFILES {
            assert!(AliasTable::profile(name).is_some(), "{name}");
        }
        assert!(AliasTable::profile("kafka-streams").is_none());
    }

    #[test]
    fn axon4_and_axon5_give_correlation_id_opposite_meanings() {
        let a4 = AliasTable::profile("axon4").unwrap();
        let a5 = AliasTable::profile("axon5").unwrap();
        assert_eq!(a4.causation_id, vec!["axon-metadata-correlationId"]);
        assert_eq!(a5.correlation_id, vec!["axon-metadata-correlationId"]);
    }

    #[test]
    fn merge_keeps_priority_and_skips_case_insensitive_duplicates() {
        let merged = AliasTable::default().merged(&AliasTable {
            event_id: vec!["MESSAGE-ID".into(), "msg-id".into()],
            ..AliasTable::none()
        });
        assert_eq!(
            merged.event_id.first().map(String::as_str),
            Some("message-id")
        );
        assert_eq!(merged.event_id.last().map(String::as_str), Some("msg-id"));
        assert_eq!(merged.event_id.len(), 5);
    }

    #[test]
    fn table_reads_from_toml_like_config_and_rejects_unknown_fields() {
        let t: AliasTable = serde_json::from_str(r#"{"correlation_id":["x-request-id"]}"#).unwrap();
        assert_eq!(t.correlation_id, vec!["x-request-id"]);
        assert_eq!(
            t.event_id,
            AliasTable::default().event_id,
            "missing fields fall back to defaults"
        );
        assert!(serde_json::from_str::<AliasTable>(r#"{"parent":[]}"#).is_err());
    }
}
