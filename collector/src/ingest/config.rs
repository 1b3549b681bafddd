//! What the ingest loop is told: how to consume ([`IngestConfig`]) and which topics to store
//! ([`TopicFilter`]), and why it can stop.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::error::KafkaError;

use crate::rules::TopicPattern;

/// How the collector consumes.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Bootstrap servers.
    pub brokers: String,
    /// Consumer group.
    pub group: String,
    /// Which topics are stored (`--include`/`--exclude`); a filter narrows the subscription.
    pub topics: TopicFilter,
    /// Records per transaction, at most.
    pub batch_size: usize,
    /// Time a batch may stay open after its first record.
    pub batch_timeout: Duration,
    /// How often new topics are looked for.
    pub metadata_refresh: Duration,
    /// Extra librdkafka properties (`key=value`).
    pub kafka_properties: Vec<(String, String)>,
}

/// Why ingestion stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The consumer could not be created or subscribed.
    #[error("kafka consumer: {0}")]
    Kafka(#[from] KafkaError),
}

/// Which topics the collector stores: `--include` and `--exclude` over every non-internal topic.
#[derive(Debug, Clone, Default)]
pub struct TopicFilter {
    /// Only topics whose whole name matches are stored (all when `None`).
    pub include: Option<TopicPattern>,
    /// Topics whose whole name matches are not stored.
    pub exclude: Option<TopicPattern>,
}

impl TopicFilter {
    /// Whether neither `--include` nor `--exclude` was given.
    pub fn is_everything(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    /// Whether records of `topic` are stored: not internal, included, not excluded.
    pub fn wants(&self, topic: &str) -> bool {
        !topic.starts_with("__")
            && self.include.as_ref().is_none_or(|p| p.matches(topic))
            && !self.exclude.as_ref().is_some_and(|p| p.matches(topic))
    }

    /// Splits the cluster's topic names into those to subscribe to and those left out (Kafka's
    /// internal topics are neither: they are never collected and not worth reporting).
    pub fn split<'a>(
        &self,
        topics: impl IntoIterator<Item = &'a str>,
    ) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut wanted = BTreeSet::new();
        let mut left_out = BTreeSet::new();
        for topic in topics.into_iter().filter(|t| !t.starts_with("__")) {
            if self.wants(topic) {
                wanted.insert(topic.to_owned());
            } else {
                left_out.insert(topic.to_owned());
            }
        }
        (wanted, left_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: Option<&str>, exclude: Option<&str>) -> TopicFilter {
        TopicFilter {
            include: include.map(|p| TopicPattern::new(p).unwrap()),
            exclude: exclude.map(|p| TopicPattern::new(p).unwrap()),
        }
    }

    const CLUSTER: [&str; 6] = [
        "__consumer_offsets",
        "orders",
        "orders-dlq",
        "payments",
        "audit.orders",
        "_private",
    ];

    fn names(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    #[test]
    fn without_filters_everything_but_internal_topics_is_wanted() {
        let f = filter(None, None);
        assert!(f.is_everything());
        let (wanted, left_out) = f.split(CLUSTER);
        assert_eq!(
            names(&wanted),
            [
                "_private",
                "audit.orders",
                "orders",
                "orders-dlq",
                "payments"
            ]
        );
        assert!(left_out.is_empty(), "internal topics are not reported");
        assert!(!f.wants("__consumer_offsets"));
    }

    #[test]
    fn include_matches_whole_names_and_exclude_wins_over_it() {
        let f = filter(Some("orders.*|payments"), Some(".*-dlq"));
        assert!(!f.is_everything());
        let (wanted, left_out) = f.split(CLUSTER);
        assert_eq!(names(&wanted), ["orders", "payments"]);
        assert_eq!(
            names(&left_out),
            ["_private", "audit.orders", "orders-dlq"],
            "`orders.*` does not match inside `audit.orders`: patterns are anchored"
        );
    }

    #[test]
    fn an_include_never_brings_in_internal_topics() {
        let f = filter(Some(".*"), None);
        assert!(!f.wants("__consumer_offsets"));
        let (wanted, _) = f.split(CLUSTER);
        assert!(!wanted.contains("__consumer_offsets"));
        assert_eq!(wanted.len(), 5);
    }

    #[test]
    fn exclude_alone_keeps_the_rest() {
        let f = filter(None, Some("audit\\..*"));
        let (wanted, left_out) = f.split(CLUSTER);
        assert_eq!(
            names(&wanted),
            ["_private", "orders", "orders-dlq", "payments"]
        );
        assert_eq!(names(&left_out), ["audit.orders"]);
    }
}
