//! The start-up check: reach the cluster with the collector's settings before consuming, and stop
//! with one line when the cluster refuses them. A cluster that does not answer yet is no reason
//! to stop (the collector waits for it, as librdkafka does); a refusal is: a wrong password or an
//! untrusted certificate does not heal by retrying.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;

use super::msk_iam::{oauth_token, MskIamTokens};
use super::{Cluster, Refusal, RefusalKind};

/// What the start-up check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reached {
    /// The cluster answered: its brokers and topics (Kafka's internal `__*` ones included).
    Cluster {
        /// Brokers in the cluster's metadata.
        brokers: usize,
        /// Topic names the collector may see.
        topics: Vec<String>,
    },
    /// No answer within the time given, and no refusal either: the brokers are down or
    /// unreachable for now.
    NoAnswer(String),
}

/// Why the collector cannot start on this cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReachError {
    /// The cluster refused the collector's settings.
    #[error("{0}")]
    Refused(Refusal),
    /// librdkafka refused the client settings themselves (an unknown property, a missing file).
    #[error("kafka client settings: {0}")]
    Settings(KafkaError),
}

/// Keeps the first refusal the client reports.
#[derive(Default)]
struct Watch {
    refusal: Arc<Mutex<Option<Refusal>>>,
    /// Connections dropped at their first request so far: one may be a broker going down at
    /// that moment, two in a row are a listener of another protocol.
    dropped_at_first_request: AtomicU32,
    /// OAUTHBEARER tokens, for `AWS_MSK_IAM`.
    tokens: Option<Arc<MskIamTokens>>,
}

impl Watch {
    fn keep(&self, refusal: Refusal) {
        if refusal.kind.blocks_connection() {
            let mut first = self.refusal.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert(refusal);
        }
    }
}

impl ClientContext for Watch {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        oauth_token(self.tokens.as_deref())
    }
    fn error(&self, error: KafkaError, reason: &str) {
        match Refusal::of(&error, reason) {
            Some(refusal) => self.keep(refusal),
            None => tracing::debug!(%error, reason, "kafka client error during the start-up check"),
        }
    }

    fn log(&self, _level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(target: "librdkafka", facility, "{message}");
        if facility == "FAIL" {
            let Some(refusal) = Refusal::of_connection_failure(message) else {
                return;
            };
            // One dropped connection may be a broker going down; the second is a pattern.
            let repeated = refusal.kind != RefusalKind::ProtocolMismatch
                || self
                    .dropped_at_first_request
                    .fetch_add(1, Ordering::Relaxed)
                    >= 1;
            if repeated {
                self.keep(refusal);
            }
        }
    }
}

impl ConsumerContext for Watch {}

/// Asks the cluster for its metadata with `cluster`'s settings for up to `patience`; returns
/// early on a refusal. Blocking: run it off the async runtime.
pub fn reach(cluster: &Cluster, patience: Duration) -> Result<Reached, ReachError> {
    let mut config = cluster.client_config();
    config.remove("group.id");
    // librdkafka logs a failed connection at `info` level; whatever the process's log level,
    // the check reads those lines (some refusals are told only there) and logs them at debug.
    config.set_log_level(RDKafkaLogLevel::Info);
    let watch = Watch {
        tokens: cluster.tokens.clone(),
        ..Watch::default()
    };
    let refusal = watch.refusal.clone();
    let client: BaseConsumer<Watch> = config
        .create_with_context(watch)
        .map_err(ReachError::Settings)?;
    let start = Instant::now();
    // Token requests (OAUTHBEARER) are served by polling: the first one is queued already.
    serve(&client);
    loop {
        let last_error = match client.fetch_metadata(None, Duration::from_millis(500)) {
            Ok(metadata) => {
                return Ok(Reached::Cluster {
                    brokers: metadata.brokers().len(),
                    topics: metadata
                        .topics()
                        .iter()
                        .map(|t| t.name().to_owned())
                        .collect(),
                })
            }
            Err(e) => e.to_string(),
        };
        serve(&client);
        if let Some(r) = refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(ReachError::Refused(r));
        }
        if start.elapsed() >= patience {
            return Ok(Reached::NoAnswer(last_error));
        }
    }
}

/// Serves the client's events: errors reach the context here, and token requests are answered.
fn serve(client: &BaseConsumer<Watch>) {
    while let Some(event) = client.poll(Duration::ZERO) {
        if let Some(r) = event.err().and_then(|e| Refusal::of(&e, "")) {
            client.context().keep(r);
        }
    }
}
