//! The collector's own consumer group, seen from inside: a collector that tracks flow health sees
//! only the events of the partitions it is assigned, so in a group with other members its flow
//! health and live feed are partial (docs/deployment.md, "Flow health and the live feed"). This
//! says so in the log, once: the group is described (ListGroups + DescribeGroups for it alone)
//! [`FIRST_LOOK`] after start, then every [`LOOK_EVERY`], until it has other members.
//!
//! One small request a minute from a client of its own that never joins the group; a failed
//! request is logged at debug level and tried again at the next look. On tansu 0.6 a SIGKILLed
//! member stays listed (docs/health.md), so a collector restarted after a crash there may warn
//! about its own dead predecessor; Kafka drops it after `session.timeout.ms`.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio_util::sync::CancellationToken;

use super::poll::REQUEST_TIMEOUT;
use crate::cluster::{serve_events, ClusterContext};
use crate::ingest::IngestConfig;

/// The first look, once the collector has had time to join its group.
pub const FIRST_LOOK: Duration = Duration::from_secs(30);
/// The looks after it.
pub const LOOK_EVERY: Duration = Duration::from_secs(60);

/// Members of `group` as the cluster describes it now (this collector included), or why not.
fn members(
    client: &BaseConsumer<ClusterContext>,
    group: &str,
) -> Result<usize, rdkafka::error::KafkaError> {
    serve_events(client);
    let list = client.fetch_group_list(Some(group), REQUEST_TIMEOUT)?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .map(|g| g.members().len())
        .sum())
}

/// Warns once when the consumer group of `ingest` has members besides this collector, which
/// tracks flow health; ends then, or when `cancel` fires. A client that cannot be created ends it
/// quietly (the ingest loop's own client reports the configuration's errors).
pub async fn warn_if_shared(ingest: IngestConfig, cancel: CancellationToken) {
    let mut config = ingest.cluster.client_config();
    config.remove("group.id");
    let created = config.create_with_context(ingest.cluster.context());
    let client: Arc<BaseConsumer<ClusterContext>> = match created {
        Ok(client) => Arc::new(client),
        Err(e) => {
            tracing::debug!(error = %e, "own consumer group: no client");
            return;
        }
    };
    let mut wait = FIRST_LOOK;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = LOOK_EVERY;
        let (client, group) = (client.clone(), ingest.group.clone());
        let members = tokio::task::spawn_blocking(move || members(&client, &group)).await;
        match members {
            Ok(Ok(members)) if members > 1 => {
                tracing::warn!(
                    group = %ingest.group,
                    members,
                    "flow health on in a consumer group shared with {} other member(s): this \
                     collector sees only its own partitions' events, so its flow health and live \
                     feed are partial. Run every collector of the group with --no-flow-health \
                     and let `choreoscope serve` track flow health (docs/deployment.md)",
                    members - 1
                );
                return;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "own consumer group: not described"),
            Err(_) => return,
        }
    }
}
