//! The one place the collector's parts are wired together: a store, where its events come from
//! (the ingest loop, or another process's collector followed through the store), the live feed,
//! flow health (which follows the live feed), consumer-group positions (polled from the cluster,
//! with the Kafka source only) and the HTTP server. `choreoscope collect`, `serve` and `demo` and the tests' in-process
//! collector all start through [`Collector::start`].
//!
//! # Shutdown
//! [`Collector::stop`] cancels the collector's own token: the ingest loop writes its last batch
//! and commits exactly the offsets of durable records, the HTTP server closes the live feed's
//! streams and finishes the requests in flight, the store follower ends, retention stops between
//! two deleting transactions, and the consumer-group poller stops at its next request. The store stays
//! open for the caller, who closes it last ([`Store::close`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::access::Access;
use crate::clock::Clock;
use crate::groups::{self, GroupsConfig, GroupsHandle};
use crate::health::tracker::TrackerConfig;
use crate::health::{self, HealthConfig, HealthHandle};
use crate::http::{serve_ops, serve_with, AppState, ServerSettings, Tls};
use crate::ingest::{IngestConfig, IngestError, Ingestor, ProgressHandle};
use crate::live::{follow_store, LiveFeed};
use crate::metrics::Metrics;
use crate::otlp::OtlpConfig;
use crate::record::Interpreter;
use crate::redact::Redaction;
use crate::retention::RetentionSettings;
use crate::store::Store;

/// How often flow health moves time on: deadlines passed, events settled.
const HEALTH_TICK: Duration = Duration::from_secs(1);

/// Where a collector's events come from. Made once per process, so the size of its Kafka variant
/// does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Source {
    /// Consume the cluster into the store (`collect`, `demo`).
    Kafka {
        /// How to consume.
        config: IngestConfig,
        /// How records become events.
        interpreter: Interpreter,
        /// How the cluster's consumer groups are polled (`poll_every` zero: not at all).
        groups: GroupsConfig,
    },
    /// Store nothing: announce on the live feed what a collector in another process stores,
    /// looking every `every` (`serve`).
    FollowStore {
        /// How often the store is asked for what is new.
        every: Duration,
    },
}

/// Why a collector could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// The consumer could not be created or subscribed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(#[from] std::io::Error),
    /// A task of the collector panicked.
    #[error("the {0} task panicked")]
    Panicked(&'static str),
}

/// A running collector (see the module docs).
#[derive(Debug)]
pub struct Collector {
    store: Store,
    metrics: Arc<Metrics>,
    live: LiveFeed,
    health: HealthHandle,
    groups: GroupsHandle,
    progress: ProgressHandle,
    redaction: Arc<Redaction>,
    stop: CancellationToken,
    source: JoinHandle<Result<(), IngestError>>,
    /// Flow health's task (none when flow health is off).
    health_task: Option<JoinHandle<()>>,
    /// The consumer-group poller (none when not polling).
    groups_task: Option<JoinHandle<()>>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    /// The OTLP receiver's tasks (none unless started).
    otlp_tasks: Vec<JoinHandle<()>>,
    /// Retention's task (none unless started).
    retention_task: Option<JoinHandle<()>>,
}

impl Collector {
    /// Starts `source` into `store`, with flow health under `health` and the HTTP server on
    /// `listener` when one is given (the viewer, the API, `/metrics`, `/healthz`). Applies the
    /// store's memory profile ([`crate::memory::apply_store_profile`]).
    pub fn start(
        store: Store,
        source: Source,
        listener: Option<TcpListener>,
        health: HealthConfig,
    ) -> Result<Self, CollectorError> {
        let mut collector = Self::start_redacting(store, source, health, Redaction::default())?;
        if let Some(listener) = listener {
            collector.serve(listener, Arc::new(Access::open()));
        }
        Ok(collector)
    }

    /// [`Collector::start`] without a server (start one with [`Collector::serve`]), its API
    /// looking for hashed key values under `redaction`'s key (the ingest side redacts by the
    /// interpreter's rules).
    pub fn start_redacting(
        store: Store,
        source: Source,
        health: HealthConfig,
        redaction: Redaction,
    ) -> Result<Self, CollectorError> {
        let redaction = Arc::new(redaction);
        crate::memory::apply_store_profile(&store.profile());
        let metrics = Arc::new(Metrics::new());
        let live = LiveFeed::new();
        let enabled = health.enabled;
        let health = HealthHandle::new(health, TrackerConfig::default());
        let stop = CancellationToken::new();
        // Subscribed before the source starts, so it sees every durable batch.
        let health_task = enabled.then(|| {
            tokio::spawn(health::service::follow(
                health.clone(),
                store.clone(),
                live.clone(),
                metrics.clone(),
                HEALTH_TICK,
                stop.clone(),
            ))
        });
        let mut groups = GroupsHandle::default();
        let mut groups_task = None;
        let mut progress = ProgressHandle::default();
        let source = match source {
            Source::Kafka {
                config,
                interpreter,
                groups: groups_config,
            } => {
                groups = GroupsHandle::new(&groups_config);
                // One of several collectors sees only its partitions: say so (docs/deployment.md).
                if enabled {
                    tokio::spawn(groups::peers::warn_if_shared(config.clone(), stop.clone()));
                }
                if !groups_config.poll_every.is_zero() {
                    groups_task = Some(tokio::spawn(groups::service::follow(
                        groups.clone(),
                        store.clone(),
                        config.clone(),
                        metrics.clone(),
                        groups_config.poll_every,
                        stop.clone(),
                    )));
                }
                let ingestor = Ingestor::new(config, interpreter, store.clone(), metrics.clone())?
                    .with_live_feed(live.clone());
                progress = ingestor.progress();
                tokio::spawn(ingestor.run(stop.clone()))
            }
            Source::FollowStore { every } => {
                let follower = follow_store(store.clone(), live.clone(), every, stop.clone());
                tokio::spawn(async move {
                    follower.await;
                    Ok(())
                })
            }
        };
        Ok(Self {
            store,
            metrics,
            live,
            health,
            groups,
            progress,
            redaction,
            stop,
            source,
            health_task,
            groups_task,
            servers: Vec::new(),
            otlp_tasks: Vec::new(),
            retention_task: None,
        })
    }

    /// Serves the viewer, the API, `/metrics` and `/healthz` on `listener`, every request through
    /// `access`, until the collector stops.
    pub fn serve(&mut self, listener: TcpListener, access: Arc<Access>) {
        self.serve_with(listener, access, ServerSettings::default());
    }

    /// [`Collector::serve`] under `settings`: TLS and request limits.
    pub fn serve_with(
        &mut self,
        listener: TcpListener,
        access: Arc<Access>,
        settings: ServerSettings,
    ) {
        let server = serve_with(listener, self.state(), access, settings, self.stop.clone());
        self.servers.push(tokio::spawn(server));
    }

    /// Serves `/metrics` and `/healthz` alone, without a login, on `listener` (`--ops-listen`),
    /// until the collector stops.
    pub fn serve_ops(&mut self, listener: TcpListener, tls: Option<Tls>) {
        let server = serve_ops(listener, self.state(), tls, self.stop.clone());
        self.servers.push(tokio::spawn(server));
    }

    /// Starts the OTLP trace receiver ([`crate::otlp`]) on the listeners given, storing into
    /// this collector's store; it stops with the collector.
    pub fn start_otlp(
        &mut self,
        config: OtlpConfig,
        grpc: Option<TcpListener>,
        http: Option<TcpListener>,
    ) {
        self.otlp_tasks.extend(crate::otlp::start(
            self.store.clone(),
            self.metrics.clone(),
            config,
            grpc,
            http,
            self.stop.clone(),
        ));
    }

    /// Starts retention ([`crate::retention`]) on this collector's store, reading the time from
    /// `clock`; it stops with the collector, between two deleting transactions. Flow health then
    /// keeps no flow longer than the retention after its last event
    /// ([`crate::health::Tracker::keep_within`]), so no flow is judged on events being deleted.
    /// Nothing starts when the settings delete nothing.
    pub fn start_retention(&mut self, settings: RetentionSettings, clock: Clock) {
        if !settings.is_on() {
            return;
        }
        if let Some(max_age) = settings.max_age {
            self.health.tracker().keep_within(max_age);
        }
        tracing::info!(max_age = ?settings.max_age, max_size = ?settings.max_size,
            "retention deletes old events in the background");
        self.retention_task = Some(tokio::spawn(crate::retention::run(
            self.store.clone(),
            settings,
            clock,
            self.metrics.clone(),
            self.stop.clone(),
        )));
    }

    /// The store it writes into (or follows).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Its live feed.
    pub fn live(&self) -> &LiveFeed {
        &self.live
    }

    /// What its HTTP handlers share (for a router built without a socket).
    pub fn state(&self) -> AppState {
        AppState {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            live: self.live.clone(),
            health: self.health.clone(),
            groups: self.groups.clone(),
            progress: self.progress.clone(),
            redaction: self.redaction.clone(),
        }
    }

    /// Its backfill progress (answers "not consuming" unless it consumes a cluster).
    pub fn progress(&self) -> &ProgressHandle {
        &self.progress
    }

    /// Its flow health.
    pub fn health(&self) -> &HealthHandle {
        &self.health
    }

    /// Its consumer-group positions (empty, never polled, unless it consumes a cluster).
    pub fn groups(&self) -> &GroupsHandle {
        &self.groups
    }

    /// Stops it in order (see the module docs) and waits until every part has.
    pub async fn stop(self) -> Result<(), CollectorError> {
        self.stop.cancel();
        let source = self.source.await;
        let health = match self.health_task {
            Some(task) => task.await,
            None => Ok(()),
        };
        let groups = match self.groups_task {
            Some(task) => task.await,
            None => Ok(()),
        };
        let mut otlp = Ok(());
        for task in self.otlp_tasks {
            if task.await.is_err() {
                otlp = Err(CollectorError::Panicked("OTLP receiver"));
            }
        }
        let retention = match self.retention_task {
            Some(task) => task.await,
            None => Ok(()),
        };
        let mut servers = Vec::new();
        for server in self.servers {
            servers.push(server.await);
        }
        source.map_err(|_| CollectorError::Panicked("ingest"))??;
        health.map_err(|_| CollectorError::Panicked("flow health"))?;
        groups.map_err(|_| CollectorError::Panicked("consumer-group positions"))?;
        otlp?;
        retention.map_err(|_| CollectorError::Panicked("retention"))?;
        for server in servers {
            server.map_err(|_| CollectorError::Panicked("http server"))??;
        }
        Ok(())
    }
}
