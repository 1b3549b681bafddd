//! The Kafka cluster the collector reads: its address, how connections are secured
//! ([`Security`]: TLS and SASL), the `--kafka KEY=VALUE` passthrough, and what the cluster's
//! refusals mean ([`Refusal`]). Every client the collector makes (the ingest consumer, the
//! consumer-group poller, the start-up check) takes its settings from one [`Cluster`].
//!
//! - `features`: what this build's librdkafka can do (TLS, SASL mechanisms, OIDC).
//! - `security`: TLS and SASL settings, secrets from files or the environment.
//! - `refusal`: the cluster's refusals told apart from transient errors, one line each.
//! - `settings`: the settings as flags and the config file's `[kafka]` table give them.
//! - `reach`: the start-up check that stops on a refusal before anything is consumed.
//! - `msk_iam`: Amazon MSK's IAM tokens for OAUTHBEARER, signed with the AWS credential chain.
//! - `context`: the client context of the collector's helper clients (token requests, errors).

mod context;
mod features;
mod msk_iam;
mod reach;
mod refusal;
mod security;
mod settings;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

use crate::metrics::{KindLabel, Metrics};

pub use context::{serve_events, ClusterContext};
pub use features::builtin_features;
pub use msk_iam::{oauth_token, MskIamTokens, TokenError};
pub use reach::{reach, ReachError, Reached};
pub use refusal::{Refusal, RefusalKind};
pub use security::{
    OAuthSettings, SaslMechanism, Secret, SecretSource, Security, SecurityError, SecurityProtocol,
};
pub use settings::{
    SecuritySettings, AWS_REGION_ENV, OAUTH_CLIENT_SECRET_ENV, SASL_PASSWORD_ENV,
    SSL_KEY_PASSWORD_ENV,
};

/// Where the cluster is and how to connect to it.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT…]`.
    pub brokers: String,
    /// TLS and SASL.
    pub security: Security,
    /// Extra librdkafka properties (`--kafka KEY=VALUE`), set last: they override everything.
    pub properties: Vec<(String, String)>,
    /// OAUTHBEARER tokens for `AWS_MSK_IAM`, shared by every client of the cluster.
    pub tokens: Option<Arc<MskIamTokens>>,
}

impl Cluster {
    /// A cluster at `brokers` with these settings; makes the token source `AWS_MSK_IAM` needs.
    pub fn new(
        brokers: impl Into<String>,
        security: Security,
        properties: Vec<(String, String)>,
    ) -> Self {
        let tokens = match (security.mechanism, &security.aws_region) {
            (Some(SaslMechanism::AwsMskIam), Some(region)) => {
                Some(Arc::new(MskIamTokens::new(region.clone())))
            }
            _ => None,
        };
        Self {
            brokers: brokers.into(),
            security,
            properties,
            tokens,
        }
    }

    /// A cluster at `brokers`, plaintext, no extra properties.
    pub fn plaintext(brokers: impl Into<String>) -> Self {
        Self::new(brokers, Security::default(), Vec::new())
    }

    /// The context for a helper client of this cluster (no statistics, no rebalances).
    pub fn context(&self) -> ClusterContext {
        ClusterContext::new(self.tokens.clone())
    }

    /// The bootstrap servers and the security settings, without the passthrough: for a client
    /// that sets its own properties before [`Cluster::apply_properties`].
    pub fn base_config(&self) -> ClientConfig {
        let mut client = ClientConfig::new();
        client.set("bootstrap.servers", &self.brokers);
        self.security.apply(&mut client);
        client
    }

    /// The client settings every client of this cluster starts from: the bootstrap servers, the
    /// security settings, then the passthrough properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut client = self.base_config();
        self.apply_properties(&mut client);
        client
    }

    /// Sets the passthrough properties on `client` (over what it already has).
    pub fn apply_properties(&self, client: &mut ClientConfig) {
        for (k, v) in &self.properties {
            client.set(k, v);
        }
    }
}

/// How often the same kind of refusal is logged again while it lasts.
const REPEAT_EVERY: Duration = Duration::from_secs(60);

/// Reports the cluster's refusals from a client's error callback: one warning line per kind and
/// minute, each counted in `choreoscope_kafka_refusals_total{kind}`; other client errors are
/// logged at debug level (librdkafka retries them).
#[derive(Debug, Clone)]
pub struct RefusalLog {
    metrics: Arc<Metrics>,
    last: Arc<Mutex<Vec<(RefusalKind, Instant)>>>,
}

impl RefusalLog {
    /// A log counting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            last: Arc::default(),
        }
    }

    /// Reports `error` (with librdkafka's `reason`); returns the refusal it is, if one.
    pub fn report(&self, error: &KafkaError, reason: &str) -> Option<Refusal> {
        let Some(refusal) = Refusal::of(error, reason) else {
            tracing::debug!(%error, reason, "kafka client error");
            return None;
        };
        self.metrics
            .kafka_refusals
            .get_or_create(&KindLabel {
                kind: refusal.kind.label().to_owned(),
            })
            .inc();
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let due = match last.iter_mut().find(|(k, _)| *k == refusal.kind) {
            Some((_, at)) if now.duration_since(*at) < REPEAT_EVERY => false,
            Some((_, at)) => {
                *at = now;
                true
            }
            None => {
                last.push((refusal.kind, now));
                true
            }
        };
        if due {
            tracing::error!("{refusal}");
        }
        Some(refusal)
    }
}
