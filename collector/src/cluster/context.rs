//! The client context of the collector's helper clients (the consumer-group poller, the peers
//! check): answers librdkafka's OAUTHBEARER token requests and logs client errors at debug
//! level (the ingest consumer reports the cluster's refusals).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::OAuthToken;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;

use super::msk_iam::{oauth_token, MskIamTokens};

/// A helper client's context (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ClusterContext {
    tokens: Option<Arc<MskIamTokens>>,
}

impl ClusterContext {
    /// A context answering token requests from `tokens`, if any.
    pub fn new(tokens: Option<Arc<MskIamTokens>>) -> Self {
        Self { tokens }
    }
}

impl ClientContext for ClusterContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "kafka helper client error");
    }

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        oauth_token(self.tokens.as_deref())
    }
}

impl ConsumerContext for ClusterContext {}

/// Serves a client's queued events (token requests, errors) without waiting: call it before a
/// request of a client nobody else polls, or the request waits for a token nobody makes.
pub fn serve_events<C: ConsumerContext>(client: &BaseConsumer<C>) {
    while let Some(event) = client.poll(Duration::ZERO) {
        if let Err(e) = event {
            tracing::debug!(error = %e, "kafka helper client event");
        }
    }
}
