//! What every handler shares.

use std::sync::Arc;

use crate::groups::GroupsHandle;
use crate::health::HealthHandle;
use crate::ingest::ProgressHandle;
use crate::live::LiveFeed;
use crate::metrics::Metrics;
use crate::redact::Redaction;
use crate::store::Store;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The lineage store.
    pub store: Store,
    /// The collector's metrics.
    pub metrics: Arc<Metrics>,
    /// Durable events as they come, for watchers of a flow (nobody publishes in `serve`).
    pub live: LiveFeed,
    /// Flow health: the learned model and the tracked flows (empty when nothing feeds it).
    pub health: HealthHandle,
    /// Consumer-group positions (empty, never polled, when the collector consumes no cluster).
    pub groups: GroupsHandle,
    /// The ingest loop's backfill progress (answers "not consuming" when there is none).
    pub progress: ProgressHandle,
    /// Redaction at ingest: a key query also looks for the value's hash under its key.
    pub redaction: Arc<Redaction>,
}
