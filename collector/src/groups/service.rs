//! Consumer-group positions as a part of the running collector: a [`GroupsHandle`] shared by the
//! HTTP handlers and the query layer, and [`follow`], the task that polls the cluster into it.
//!
//! The task polls every `every` (a poll that takes longer delays the next, never overlaps it),
//! on a blocking thread, records what answered and exports the lag gauges. A failed request is
//! counted (`choreoscope_consumer_group_poll_errors_total{request}`) and logged — at `warn` when
//! a kind of request starts failing, at `debug` while it goes on failing — and never stops the
//! task.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::book::{GroupBook, Poll};
use super::config::GroupsConfig;
use super::poll::{Poller, Request};
use super::position::{Diagnosis, GroupPosition};
use crate::clock::now_us;
use crate::ingest::IngestConfig;
use crate::metrics::{GroupPartitionLabel, Metrics, RequestLabel};
use crate::store::{Store, StoreError};

/// The collector's consumer-group positions, shared by the task that polls and the handlers
/// that read them. The default is an empty book, never polled (every diagnosis `unknown`).
#[derive(Debug, Clone, Default)]
pub struct GroupsHandle {
    book: Arc<RwLock<GroupBook>>,
}

impl GroupsHandle {
    /// An empty book with the services `config` declares.
    pub fn new(config: &GroupsConfig) -> Self {
        Self {
            book: Arc::new(RwLock::new(GroupBook::new(config))),
        }
    }

    /// The book, for reading (held briefly: the polling task waits meanwhile).
    pub fn book(&self) -> RwLockReadGuard<'_, GroupBook> {
        // A panic while holding the lock leaves a book that is still consistent enough to read.
        self.book
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn book_mut(&self) -> RwLockWriteGuard<'_, GroupBook> {
        self.book
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every group reading `topic`, against the record `topic`/`partition`@`offset`
    /// ([`GroupBook::positions`]).
    pub fn positions(&self, topic: &str, partition: i32, offset: i64) -> Vec<GroupPosition> {
        self.book().positions(topic, partition, offset)
    }

    /// Why the reaction of `expected_service` (any when `None`) to the event `event_type` at
    /// `topic`/`partition`@`offset` is missing ([`GroupBook::diagnose`]).
    pub fn diagnose(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        event_type: &str,
        expected_service: Option<&str>,
        now_us: i64,
    ) -> Diagnosis {
        self.book().diagnose(
            topic,
            partition,
            offset,
            event_type,
            expected_service,
            now_us,
        )
    }

    /// Names the services that react to events of `topic` ([`GroupBook::set_reactors`]).
    pub fn set_reactors(&self, topic: &str, services: impl IntoIterator<Item = String>) {
        self.book_mut().set_reactors(topic, services);
    }

    /// Records a poll ([`GroupBook::record`]).
    pub fn record(&self, poll: Poll) {
        self.book_mut().record(poll);
    }

    /// Sets the lag gauges of `metrics` to what the book says now (series of groups and
    /// partitions gone are removed).
    pub fn export(&self, metrics: &Metrics) {
        let lags = self.book().lags();
        metrics.consumer_group_lag.clear();
        metrics.consumer_group_lag_seconds.clear();
        for lag in lags {
            let label = GroupPartitionLabel {
                group: lag.group,
                topic: lag.topic,
                partition: lag.partition.to_string(),
            };
            metrics
                .consumer_group_lag
                .get_or_create(&label)
                .set(lag.records);
            if let Some(seconds) = lag.seconds {
                metrics
                    .consumer_group_lag_seconds
                    .get_or_create(&label)
                    .set(seconds);
            }
        }
    }
}

/// How often the services reacting to each topic are read again from the store.
pub const REACTORS_EVERY: Duration = Duration::from_secs(60);

/// Reactions read from the store's last hour to learn which services react to which topic.
pub const REACTORS_SAMPLE: i64 = 20_000;

/// Names, for every topic, the services that reacted to its events in the store's last hour (at
/// most the [`REACTORS_SAMPLE`] latest reactions): what ties a group to the service it consumes
/// for when neither the config file nor the names do ([`GroupBook::set_reactors`]).
///
/// [`GroupBook::set_reactors`]: super::GroupBook::set_reactors
pub async fn learn_reactors(groups: &GroupsHandle, store: &Store) -> Result<(), StoreError> {
    let now = now_us();
    let hops = store
        .hops(now.saturating_sub(3_600_000_000), now, REACTORS_SAMPLE)
        .await?;
    let mut reactors: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for hop in hops {
        if let Some(service) = hop.source {
            reactors.entry(hop.cause_topic).or_default().insert(service);
        }
    }
    for (topic, services) in reactors {
        groups.set_reactors(&topic, services);
    }
    Ok(())
}

/// Polls the cluster `ingest` consumes into `groups` every `every` until `cancel` fires (see
/// the module docs), leaving out the collector's own group and the topics it does not collect;
/// every [`REACTORS_EVERY`] it learns from `store` which services react to which topic.
pub async fn follow(
    groups: GroupsHandle,
    store: Store,
    ingest: IngestConfig,
    metrics: Arc<Metrics>,
    every: Duration,
    cancel: CancellationToken,
) {
    let declared: Vec<String> = groups.book().declared_groups().map(str::to_owned).collect();
    let poller = match Poller::new(&ingest, declared) {
        Ok(poller) => Arc::new(poller),
        Err(e) => {
            tracing::warn!(error = %e, "cannot create the consumer-group poller; consumer-group positions stay unknown");
            return;
        }
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing: BTreeSet<Request> = BTreeSet::new();
    let mut reactors_learned: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if reactors_learned.is_none_or(|at| at.elapsed() >= REACTORS_EVERY) {
            reactors_learned = Some(tokio::time::Instant::now());
            if let Err(e) = learn_reactors(&groups, &store).await {
                tracing::warn!(error = %e, "cannot read which services react to which topic; groups are tied to services by name only");
            }
        }
        let (poller, stop) = (poller.clone(), cancel.clone());
        let polled = tokio::task::spawn_blocking(move || poller.poll(now_us(), &stop));
        // On cancel the poll stops at its next request; nobody waits for it.
        let (poll, failures) = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            polled = polled => match polled {
                Ok(polled) => polled,
                Err(e) => {
                    tracing::error!(error = %e, "the consumer-group poll panicked");
                    continue;
                }
            },
        };
        let mut failed_now = BTreeSet::new();
        for f in failures {
            metrics
                .consumer_group_poll_errors
                .get_or_create(&RequestLabel {
                    request: f.request.as_str().to_owned(),
                })
                .inc();
            if failing.contains(&f.request) {
                tracing::debug!(request = f.request.as_str(), subject = %f.subject, error = %f.error, "consumer-group poll request failed again");
            } else if !failed_now.contains(&f.request) {
                tracing::warn!(request = f.request.as_str(), subject = %f.subject, error = %f.error, "consumer-group poll request failed; what it would tell stays as last known");
            }
            failed_now.insert(f.request);
        }
        failing = failed_now;
        if let Some(poll) = poll {
            groups.record(poll);
            groups.export(&metrics);
        }
    }
}
