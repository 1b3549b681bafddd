//! What the collector subscribes to.
//!
//! With `--keep-platform-topics` and no `--include`/`--exclude` it is every topic but Kafka's
//! internal `__*` ones, by regex subscription ([`ALL_TOPICS`]): librdkafka matches new topics on
//! each metadata refresh.
//!
//! Otherwise — by default, the platform parts' internal topics being left out
//! ([`super::PLATFORM_TOPICS`]) — the subscription is narrowed to an explicit list of the topics that pass it, so
//! the topics left out are never fetched (a collector `--include`d to one topic of a busy cluster
//! used to read every record of every other topic only to drop it). Our filters are Rust regexes,
//! which librdkafka's POSIX dialect cannot stand in for, so the list is computed here from the
//! cluster's metadata and followed: every refresh interval the metadata is read again and, when
//! the set of passing topics changed (a topic created or deleted), the consumer subscribes to the
//! new list — which the group takes as a rebalance, absorbed by the idempotent store. The topics
//! left out are surfaced, not skipped silently: their number is a gauge and their names are logged
//! whenever the set changes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use super::config::TopicFilter;
use super::consumer::LagContext;
use crate::cluster::RefusalKind;
use crate::metrics::{KindLabel, Metrics};

/// The regex subscription used without filters: every topic whose name does not start with `__`.
pub const ALL_TOPICS: &str = "^([^_]|_[^_]).*";

/// How long one metadata request may take before the refresh gives up until the next interval.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps a consumer subscribed to exactly the topics `filter` wants, re-reading the cluster's
/// metadata every `every` until `cancel` fires. Only for a filter that is not
/// [`TopicFilter::is_everything`] (which the regex subscription serves without this).
pub async fn follow(
    consumer: Arc<StreamConsumer<LagContext>>,
    filter: TopicFilter,
    every: Duration,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut current: Option<BTreeSet<String>> = None;
    let mut last_denied: Vec<String> = Vec::new();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let names = {
            let consumer = consumer.clone();
            tokio::task::spawn_blocking(move || {
                consumer.fetch_metadata(None, METADATA_TIMEOUT).map(|m| {
                    // A topic the collector may not describe (an ACL) is not subscribed to: it is
                    // named, and the others are collected.
                    let (denied, readable): (Vec<_>, Vec<_>) = m.topics().iter().partition(|t| {
                        t.error().is_some_and(|e| {
                            RDKafkaErrorCode::from(e) == RDKafkaErrorCode::TopicAuthorizationFailed
                        })
                    });
                    let names = |ts: Vec<&rdkafka::metadata::MetadataTopic>| {
                        ts.iter().map(|t| t.name().to_owned()).collect::<Vec<_>>()
                    };
                    (names(readable), names(denied))
                })
            })
            .await
        };
        let (names, denied) = match names {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                metrics.kafka_errors.inc();
                tracing::warn!(error = %e, "cannot read the topic list; the subscription stays as it is until the next refresh");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "topic list refresh panicked");
                continue;
            }
        };
        if !denied.is_empty() && denied != last_denied {
            metrics
                .kafka_refusals
                .get_or_create(&KindLabel {
                    kind: RefusalKind::Topic.label().to_owned(),
                })
                .inc();
            tracing::error!(topics = ?denied, "not authorized to describe these topics (ACL): they are not collected, the others are; grant the collector's principal READ and DESCRIBE on them");
        }
        last_denied = denied;
        let (wanted, left_out) = filter.split(names.iter().map(String::as_str));
        metrics.topics_subscribed.set(wanted.len() as i64);
        metrics.topics_left_out.set(left_out.len() as i64);
        if current.as_ref() == Some(&wanted) {
            continue;
        }
        let result = if wanted.is_empty() {
            consumer.unsubscribe();
            Ok(())
        } else {
            let list: Vec<&str> = wanted.iter().map(String::as_str).collect();
            consumer.subscribe(&list)
        };
        match result {
            Ok(()) => {
                if wanted.is_empty() {
                    tracing::warn!(left_out = ?left_out, "no topic passes --include/--exclude (and the platform topics left out) yet; waiting for one");
                } else {
                    tracing::info!(subscribed = ?wanted, left_out = ?left_out, "collecting these topics; leaving out those (--include/--exclude, platform topics)");
                }
                current = Some(wanted);
            }
            Err(e) => {
                metrics.kafka_errors.inc();
                tracing::warn!(error = %e, "cannot subscribe; trying again at the next refresh");
            }
        }
    }
}
