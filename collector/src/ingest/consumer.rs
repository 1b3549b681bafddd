//! The collector's Kafka consumer: every client setting it runs with, and the context that
//! forwards the client's statistics into the lag gauges and the backfill progress, and places
//! partitions without a committed offset at `--start-at` when they are assigned.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};

use super::config::IngestConfig;
use super::progress::{PartitionPosition, ProgressHandle};
use super::start::StartPositions;
use crate::cluster::{oauth_token, MskIamTokens, RefusalLog};
use crate::metrics::{Metrics, PartitionLabel};
use crate::store::StoreProfile;

/// Forwards the client's statistics into the lag gauges and the backfill progress, and its
/// errors into the refusal log; places newly assigned partitions ([`StartPositions`]).
pub struct LagContext {
    pub(super) metrics: Arc<Metrics>,
    /// The cluster's refusals, one line per kind and minute.
    pub(super) refusals: RefusalLog,
    /// Where partitions without a committed offset start.
    pub(super) start: StartPositions,
    /// Records behind, fed from the statistics.
    pub(super) progress: ProgressHandle,
    /// Rebalances so far: a partition the group took away and gave back was read by another
    /// member meanwhile, so the loop forgets its last offsets when this changes.
    pub(super) rebalances: Arc<AtomicU64>,
    /// OAUTHBEARER tokens, for `AWS_MSK_IAM`.
    pub(super) tokens: Option<Arc<MskIamTokens>>,
}

impl ClientContext for LagContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        oauth_token(self.tokens.as_deref())
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.metrics.kafka_errors.inc();
        self.refusals.report(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        self.progress.observe(
            std::time::Instant::now(),
            crate::clock::now_us(),
            PartitionPosition::from_statistics(&statistics),
            &self.metrics,
        );
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                if partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&PartitionLabel {
                            topic: topic.clone(),
                            partition: partition.to_string(),
                        })
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.rebalances.fetch_add(1, Ordering::Relaxed);
        self.start.rebalance(consumer, err, tpl);
    }
}

/// A topic-partition list committing `next` offsets.
pub(super) fn offset_list(next: &HashMap<(String, i32), i64>) -> rdkafka::TopicPartitionList {
    let mut list = rdkafka::TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        // Only fails for an invalid offset, which `offset + 1` of a consumed record is not.
        let _ = list.add_partition_offset(topic, *partition, rdkafka::Offset::Offset(*offset));
    }
    list
}

/// The collector's `fetch.wait.max.ms` (librdkafka's default is 500; `--kafka` overrides it).
///
/// A Kafka broker answers a fetch as soon as `fetch.min.bytes` (1) is there, whatever the wait;
/// not every Kafka-protocol broker does. tansu, the test broker, holds every fetch for the whole
/// wait and answers ~5 MB: 500 ms held the collector at 40 000 records/s, 100 ms near 80 000,
/// 20 ms lets it reach 90 000–100 000 (docs/benchmarks.md, runs 11–12). Idle, it costs 50 small
/// fetch requests per second per broker instead of 2.
pub const FETCH_WAIT_MAX_MS: &str = "20";

/// Every client setting of the collector's consumer for a store of `profile`, `--kafka`
/// overrides last: what the ingest loop runs with, and what a like-for-like baseline (the ingest
/// benchmark's bare consumer) must run with.
pub fn consumer_config(config: &IngestConfig, profile: &StoreProfile) -> ClientConfig {
    let mut client = config.cluster.base_config();
    client
        .set("group.id", &config.group)
        // librdkafka never commits on its own (not on a timer, not on a rebalance): the writer
        // commits explicit offsets once their records are durable.
        .set("enable.auto.commit", "false")
        // Only for partitions `--start-at` does not place (see `start`).
        .set("auto.offset.reset", config.start_at.offset_reset())
        .set("enable.partition.eof", "false")
        .set(
            "topic.metadata.refresh.interval.ms",
            config.metadata_refresh.as_millis().to_string(),
        )
        .set("statistics.interval.ms", "5000")
        // Bound the client's prefetch: memory stays small whatever the backlog.
        .set(
            "queued.max.messages.kbytes",
            profile.fetch_queue_kbytes.to_string(),
        )
        .set("fetch.max.bytes", "16777216")
        .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS);
    config.cluster.apply_properties(&mut client);
    client
}
