//! One poll of the cluster's consumer groups, with blocking client calls (run it on
//! `spawn_blocking`), each with [`REQUEST_TIMEOUT`]:
//!
//! 1. the cluster's metadata: the topics the collector collects ([`TopicFilter::wants`]) and
//!    their partitions;
//! 2. each partition's high watermark (ListOffsets);
//! 3. ListGroups + DescribeGroups: every group, its state and members, but the collector's own;
//! 4. per group, its committed offsets on those partitions (OffsetFetch), from a client created
//!    with the group's `group.id` that never subscribes: it reads the offsets and does not join or
//!    disturb the group. [`OFFSET_FETCH_WORKERS`] groups at once.
//!
//! A request that fails is reported with the others ([`Failure`]) and the poll goes on: the
//! book keeps what it knew of what did not answer. Only a metadata failure leaves nothing to
//! record.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::book::{Partition, Poll, PolledGroup};
use crate::cluster::{serve_events, ClusterContext};
use crate::ingest::{IngestConfig, TopicFilter};

/// How long each request of a poll may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Groups whose offsets are read at once.
pub const OFFSET_FETCH_WORKERS: usize = 8;

/// The kinds of request a poll makes (the `request` label of the failure counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Request {
    /// The cluster's metadata.
    Metadata,
    /// A partition's high watermark.
    Watermark,
    /// ListGroups + DescribeGroups.
    ListGroups,
    /// A group's committed offsets.
    OffsetFetch,
}

impl Request {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::Watermark => "watermark",
            Self::ListGroups => "list_groups",
            Self::OffsetFetch => "offset_fetch",
        }
    }
}

/// The state of a declared group read without the cluster's group list.
pub const UNKNOWN_STATE: &str = "Unknown";

/// A request of a poll that failed.
#[derive(Debug)]
pub struct Failure {
    /// Which request.
    pub request: Request,
    /// What it was about: a partition `topic/partition`, a group, or empty.
    pub subject: String,
    /// Why.
    pub error: KafkaError,
}

/// Polls one cluster (see the module docs).
pub struct Poller {
    client: BaseConsumer<ClusterContext>,
    config: ClientConfig,
    context: ClusterContext,
    own_group: String,
    topics: TopicFilter,
    declared: Vec<String>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("own_group", &self.own_group)
            .finish_non_exhaustive()
    }
}

impl Poller {
    /// A poller of the cluster `ingest` consumes (its brokers and `--kafka` properties), leaving
    /// out the collector's group and the topics it does not collect. `declared` are the groups
    /// the config file names, read on their own when the cluster does not list its groups.
    pub fn new(ingest: &IngestConfig, declared: Vec<String>) -> Result<Self, KafkaError> {
        let mut config = ingest.cluster.client_config();
        config.remove("group.id");
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let context = ingest.cluster.context();
        Ok(Self {
            client: config.create_with_context(context.clone())?,
            config,
            context,
            own_group: ingest.group.clone(),
            topics: ingest.topics.clone(),
            declared,
        })
    }

    /// Polls the cluster once, starting at `at_us` (each group's offsets are stamped with the time
    /// they were read); stops early (returning nothing) once `cancel` fires.
    pub fn poll(&self, at_us: i64, cancel: &CancellationToken) -> (Option<Poll>, Vec<Failure>) {
        // The client's own events (connection errors, token requests) queue up until served:
        // serve them, so they do not pile up between polls; the requests below report what
        // matters.
        serve_events(&self.client);
        let mut failures = Vec::new();
        let partitions = match self.partitions() {
            Ok(p) => p,
            Err(error) => {
                failures.push(Failure {
                    request: Request::Metadata,
                    subject: String::new(),
                    error,
                });
                return (None, failures);
            }
        };
        let mut poll = Poll {
            at_us,
            topics: partitions.iter().map(|(t, _)| t.clone()).collect(),
            groups: None,
            watermarks: BTreeMap::new(),
        };
        for (topic, partition) in &partitions {
            if cancel.is_cancelled() {
                return (None, failures);
            }
            match self
                .client
                .fetch_watermarks(topic, *partition, REQUEST_TIMEOUT)
            {
                Ok((_, high)) => {
                    poll.watermarks.insert((topic.clone(), *partition), high);
                }
                Err(error) => failures.push(Failure {
                    request: Request::Watermark,
                    subject: format!("{topic}/{partition}"),
                    error,
                }),
            }
        }
        // (name, state, members) of every group but ours.
        let listed: Vec<(String, String, usize)> =
            match self.client.fetch_group_list(None, REQUEST_TIMEOUT) {
                Ok(list) => list
                    .groups()
                    .iter()
                    .filter(|g| g.name() != self.own_group && !g.name().is_empty())
                    .map(|g| (g.name().to_owned(), g.state().to_owned(), g.members().len()))
                    .collect(),
                Err(error) => {
                    failures.push(Failure {
                        request: Request::ListGroups,
                        subject: String::new(),
                        error,
                    });
                    if self.declared.is_empty() {
                        return (Some(poll), failures);
                    }
                    // A cluster that does not list its groups (librdkafka's mock cluster) still
                    // answers OffsetFetch: the declared groups are read alone, their membership
                    // unknown and taken as active.
                    self.declared
                        .iter()
                        .filter(|g| **g != self.own_group)
                        .map(|g| (g.clone(), UNKNOWN_STATE.to_owned(), 1))
                        .collect()
                }
            };
        // Each group needs a client of its own (about 50 ms to find its coordinator and fetch,
        // 100 ms to close): a few at once.
        let names: Vec<String> = listed.iter().map(|(name, _, _)| name.clone()).collect();
        let next = AtomicUsize::new(0);
        let read = Mutex::new(Vec::with_capacity(listed.len()));
        std::thread::scope(|scope| {
            for _ in 0..OFFSET_FETCH_WORKERS.min(names.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    if cancel.is_cancelled() {
                        break;
                    }
                    let committed = self.committed(name, &partitions);
                    let at_us = chrono::Utc::now().timestamp_micros();
                    read.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, committed, at_us));
                });
            }
        });
        if cancel.is_cancelled() {
            return (None, failures);
        }
        let mut groups = BTreeMap::new();
        for (i, committed, read_at_us) in read.into_inner().unwrap_or_else(|e| e.into_inner()) {
            let (name, state, members) = &listed[i];
            let committed = match committed {
                Ok(c) => Some(c),
                Err(error) => {
                    failures.push(Failure {
                        request: Request::OffsetFetch,
                        subject: name.clone(),
                        error,
                    });
                    None
                }
            };
            groups.insert(
                name.clone(),
                PolledGroup {
                    state: state.clone(),
                    members: *members,
                    committed,
                    read_at_us,
                },
            );
        }
        poll.groups = Some(groups);
        (Some(poll), failures)
    }

    /// The collected topics' partitions.
    fn partitions(&self) -> Result<BTreeSet<Partition>, KafkaError> {
        let metadata = self.client.fetch_metadata(None, REQUEST_TIMEOUT)?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| self.topics.wants(t.name()) && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| (t.name().to_owned(), p.id())))
            .collect())
    }

    /// `group`'s committed offsets on `partitions` (valid ones only), read by a client with its
    /// `group.id` that never subscribes.
    fn committed(
        &self,
        group: &str,
        partitions: &BTreeSet<Partition>,
    ) -> Result<BTreeMap<Partition, i64>, KafkaError> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let reader: BaseConsumer<ClusterContext> = self
            .config
            .clone()
            .set("group.id", group)
            .create_with_context(self.context.clone())?;
        serve_events(&reader);
        let mut list = TopicPartitionList::new();
        for (topic, partition) in partitions {
            list.add_partition(topic, *partition);
        }
        let committed = reader.committed_offsets(list, REQUEST_TIMEOUT)?;
        Ok(committed
            .elements()
            .iter()
            .filter(|e| e.error().is_ok())
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(((e.topic().to_owned(), e.partition()), o)),
                _ => None,
            })
            .collect())
    }
}
