//! What the ingest loop is told: how to consume ([`IngestConfig`]) and which topics to store
//! ([`TopicFilter`]), and why it can stop.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::error::KafkaError;

use super::start::StartAt;
use crate::cluster::Cluster;
use crate::rules::TopicPattern;

/// How the collector consumes.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The cluster: bootstrap servers, TLS and SASL, `--kafka` properties.
    pub cluster: Cluster,
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
    /// Where partitions without a committed offset start (`--start-at`).
    pub start_at: StartAt,
}

/// Why ingestion stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The consumer could not be created or subscribed.
    #[error("kafka consumer: {0}")]
    Kafka(#[from] KafkaError),
}

/// The internal topics of the usual platform parts, left out unless
/// [`TopicFilter::keep_platform_topics`]: Schema Registry's `_schemas`, Confluent's `_confluent*`
/// (ksqlDB, Control Center, the balancer), Kafka Connect's config, offset and status topics
/// (`connect-configs`, `my-cluster-connect-offsets`, …), Kafka Streams' `*-changelog` and
/// `*-repartition`, MirrorMaker 2's `*.internal`. A whole-name regular expression.
pub const PLATFORM_TOPICS: &str = r"_schemas|_confluent.*|(.+[-_.])?connect-(configs|offsets|status)|.+-(changelog|repartition)|.+\.internal";

static PLATFORM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(&format!("^(?:{PLATFORM_TOPICS})$")).expect("PLATFORM_TOPICS compiles")
});

/// Whether `topic` is a platform part's internal topic ([`PLATFORM_TOPICS`]).
pub fn is_platform_topic(topic: &str) -> bool {
    PLATFORM.is_match(topic)
}

/// Which topics the collector stores: `--include` and `--exclude` over every non-internal topic,
/// the platform parts' internal topics left out unless kept.
#[derive(Debug, Clone, Default)]
pub struct TopicFilter {
    /// Only topics whose whole name matches are stored (all when `None`).
    pub include: Option<TopicPattern>,
    /// Topics whose whole name matches are not stored.
    pub exclude: Option<TopicPattern>,
    /// Store the platform parts' internal topics too ([`PLATFORM_TOPICS`]; `--keep-platform-topics`).
    pub keep_platform_topics: bool,
}

impl TopicFilter {
    /// Whether every topic but Kafka's own `__*` is stored: no `--include`, no `--exclude`, and
    /// the platform topics kept.
    pub fn is_everything(&self) -> bool {
        self.include.is_none() && self.exclude.is_none() && self.keep_platform_topics
    }

    /// Whether records of `topic` are stored: not internal, not a platform part's (unless kept),
    /// included, not excluded.
    pub fn wants(&self, topic: &str) -> bool {
        !topic.starts_with("__")
            && (self.keep_platform_topics || !is_platform_topic(topic))
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
            keep_platform_topics: true,
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
    fn platform_topics_are_left_out_by_default_and_named_as_left_out() {
        let f = TopicFilter::default();
        assert!(!f.is_everything(), "the default follows the topic list");
        let cluster = [
            "orders",
            "_schemas",
            "_confluent-ksql-default__command_topic",
            "connect-configs",
            "my-cluster-connect-offsets",
            "docker-connect-status",
            "shop-app-KSTREAM-AGGREGATE-STATE-STORE-0000000003-changelog",
            "shop-app-KSTREAM-KEY-SELECT-0000000002-repartition",
            "mm2-offset-syncs.east.internal",
            "__consumer_offsets",
            "connector-events",
        ];
        let (wanted, left_out) = f.split(cluster);
        assert_eq!(names(&wanted), ["connector-events", "orders"]);
        assert_eq!(left_out.len(), 8, "{left_out:?}");
        let kept = TopicFilter {
            keep_platform_topics: true,
            ..TopicFilter::default()
        };
        assert!(kept.is_everything());
        assert_eq!(kept.split(cluster).0.len(), 10);
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
