//! The command line: `choreoscope collect | serve | query | demo`, its flags with their
//! environment fallbacks (`--help` shows both), and what they turn into.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::access::{AccessArgs, Role};
use crate::cluster::{Cluster, SecurityError, SecuritySettings};
use crate::groups::GroupsConfig;
use crate::health::FlowStatus;
use crate::ingest::{IngestConfig, StartAt, TopicFilter};
use crate::retention::{ByteSize, RetentionSettings, RetentionTable};
use crate::rules::TopicPattern;

/// Where the lineage store is; one flag for every command that opens it.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct StoreArgs {
    /// Lineage store: sqlite://PATH (created if missing) or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "CHOREOSCOPE_DB",
        default_value = "sqlite://choreoscope.db",
        global = true
    )]
    pub db: String,
}

/// Choreoscope: see what happened to a business entity across every service of a Kafka
/// choreography.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Consume every topic of a cluster into the lineage store, receive OTLP traces, and serve
    /// the API and /metrics.
    #[command(after_help = COLLECT_EXAMPLES)]
    Collect(Box<CollectArgs>),
    /// Serve the query API (and the UI) over an existing store, without consuming.
    Serve(ServeArgs),
    /// Ask the store a question and print the answer as a causal tree (or the API's JSON).
    Query(QueryArgs),
    /// Run a whole choreography in one process: embedded broker, sample services with trouble
    /// mixed in, the collector, the API and the UI.
    Demo(DemoArgs),
    /// Make API tokens for `--auth tokens`.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `choreoscope token`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Print a new API token and the `[[tokens]]` entry (its hash, never the token) to add to
    /// the tokens file.
    New(TokenNewArgs),
}

/// `choreoscope token new`.
#[derive(Args, Debug)]
pub struct TokenNewArgs {
    /// The token's name, as the audit log shows who asked.
    #[arg(long)]
    pub name: String,
    /// What it may see: viewer (no payloads or header values), reader, admin.
    #[arg(long, value_enum)]
    pub role: Role,
    /// A topic pattern whose events it sees in full (`orders.*`); repeat for more; none: every
    /// topic.
    #[arg(long = "topic", value_name = "PATTERN")]
    pub topics: Vec<String>,
}

/// How the HTTP server listens beyond `--listen`: TLS, request limits, a separate address for
/// `/metrics` and `/healthz`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    /// Serve HTTPS with this certificate chain (PEM; with --tls-key).
    #[arg(
        long,
        env = "CHOREOSCOPE_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "CHOREOSCOPE_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// How often the certificate files are looked at; a changed pair is used for new
    /// connections without a restart.
    #[arg(long, env = "CHOREOSCOPE_TLS_RELOAD", default_value = "30s", value_parser = duration)]
    pub tls_reload: Duration,
    /// The largest request body accepted (bytes); a larger one is answered 413.
    #[arg(long, env = "CHOREOSCOPE_MAX_REQUEST_BYTES", default_value_t = 1 << 20)]
    pub max_request_bytes: usize,
    /// Requests per second each client address may make (twice as many in a burst); faster
    /// ones are answered 429 with Retry-After. 0: no limit. /metrics and /healthz are exempt.
    #[arg(long, env = "CHOREOSCOPE_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
    /// Also serve /metrics and /healthz, without a login, on this address (for scrapers and
    /// probes; keep it off the users' network).
    #[arg(long, env = "CHOREOSCOPE_OPS_LISTEN", value_name = "ADDR")]
    pub ops_listen: Option<SocketAddr>,
    /// HTTP connections open at once; more are answered 503 and closed. Lowered to the
    /// descriptor limit less a reserve for the store, Kafka and OTLP.
    #[arg(long, env = "CHOREOSCOPE_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// HTTP connections open at once from one client address; more are answered 429.
    #[arg(
        long,
        env = "CHOREOSCOPE_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 512
    )]
    pub max_connections_per_client: usize,
    /// Live-feed streams open at once; more are answered 503.
    #[arg(long, env = "CHOREOSCOPE_MAX_STREAMS", default_value_t = 1024)]
    pub max_streams: usize,
    /// Live-feed streams open at once from one client address; more are answered 429.
    #[arg(long, env = "CHOREOSCOPE_MAX_STREAMS_PER_CLIENT", default_value_t = 64)]
    pub max_streams_per_client: usize,
    /// Store queries running at once; the next wait --query-wait for a turn, then get 503.
    #[arg(long, env = "CHOREOSCOPE_MAX_QUERIES", default_value_t = 16)]
    pub max_queries: usize,
    /// How long a query waits for a turn.
    #[arg(long, env = "CHOREOSCOPE_QUERY_WAIT", default_value = "2s", value_parser = duration)]
    pub query_wait: Duration,
    /// How long a query may run before it is cut with a 503.
    #[arg(long, env = "CHOREOSCOPE_QUERY_BUDGET", default_value = "30s", value_parser = duration)]
    pub query_budget: Duration,
    /// How long a client may take to send a request's headers, and a connection may stay idle
    /// between requests, before it is closed.
    #[arg(long, env = "CHOREOSCOPE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_read_timeout: Duration,
}

impl ServerArgs {
    /// The caps these flags set, before [`crate::http::Caps::within_descriptors`].
    pub fn caps(&self) -> crate::http::Caps {
        crate::http::Caps {
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            max_streams: self.max_streams,
            max_streams_per_client: self.max_streams_per_client,
            max_queries: self.max_queries,
            query_wait: self.query_wait,
            query_budget: self.query_budget,
            header_read_timeout: self.header_read_timeout,
        }
    }

    /// The request limits these flags set.
    pub fn limits(&self) -> crate::http::Limits {
        crate::http::Limits {
            max_request_bytes: self.max_request_bytes,
            rate_per_second: std::num::NonZeroU32::new(self.rate_limit),
        }
    }
}

/// `choreoscope serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The lineage store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// TOML config file (its `[health]` table: flow health's thresholds and declared
    /// expectations).
    #[arg(long, env = "CHOREOSCOPE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the HTTP server.
    #[arg(long, env = "CHOREOSCOPE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Who may use the viewer and the API (`--auth`, `--allow-unauthenticated`).
    #[command(flatten)]
    pub access: AccessArgs,
    /// TLS, request limits, the ops address.
    #[command(flatten)]
    pub server: ServerArgs,
    /// How often the live feed looks for events a collector has stored meanwhile (ms).
    #[arg(long, env = "CHOREOSCOPE_FOLLOW_MS", default_value_t = 500)]
    pub follow_ms: u64,
}

/// `choreoscope query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The lineage store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the API's JSON instead of the tree.
    #[arg(long, global = true)]
    pub json: bool,
    /// The question.
    #[command(subcommand)]
    pub what: QueryWhat,
}

/// What `choreoscope query` can be asked.
#[derive(Subcommand, Debug)]
pub enum QueryWhat {
    /// Everything that happened to a business entity, e.g. `key order.id o-1001`.
    Key {
        /// Key name.
        name: String,
        /// Key value.
        value: String,
    },
    /// One event's causes and reactions.
    Event {
        /// Event id.
        id: String,
        /// up, down or both.
        #[arg(long, default_value = "both")]
        direction: String,
        /// Hops each way.
        #[arg(long, default_value_t = 10)]
        depth: u32,
    },
    /// Every event of a W3C trace.
    Trace {
        /// Trace id (32 hex digits).
        id: String,
    },
    /// Every event of a correlation (conversation).
    Correlation {
        /// Correlation id.
        id: String,
    },
    /// Flows with an event in the last hour and their health: which are stuck, where, since when.
    Flows {
        /// Only flows with this status: complete, in_progress, stalled or failed.
        #[arg(long, value_parser = flow_status)]
        status: Option<FlowStatus>,
        /// At most this many flows, oldest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// How each service is instrumented: per service, how its events arrive, whether it sends
    /// spans, the lineage that allows and what to add.
    Services {
        /// How far back: a number and s, m, h or d.
        #[arg(long, default_value = "24h")]
        window: String,
    },
}

impl QueryWhat {
    /// Whether the answer tells flows' health (and so needs the store's recent flows learned
    /// first).
    pub fn needs_health(&self) -> bool {
        !matches!(self, QueryWhat::Event { .. } | QueryWhat::Services { .. })
    }
}

/// `choreoscope demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address of the API and UI.
    #[arg(long, env = "CHOREOSCOPE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Who may use the viewer and the API (`--auth`, `--allow-unauthenticated`).
    #[command(flatten)]
    pub access: AccessArgs,
    /// TLS, request limits, the ops address.
    #[command(flatten)]
    pub server: ServerArgs,
    /// SQLite store of the demo (recreated at each start).
    #[arg(
        long,
        env = "CHOREOSCOPE_DEMO_DB",
        default_value = "choreoscope-demo.db"
    )]
    pub db: PathBuf,
    /// New orders per second.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Stop after this many seconds (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub seconds: u64,
}

/// `collect --help`'s examples: secured clusters as the usual providers run them (more in
/// docs/collector.md, "A secured cluster"). Each secret is in its variable, never a flag.
const COLLECT_EXAMPLES: &str = "\
Examples (the password or secret in CHOREOSCOPE_SASL_PASSWORD / CHOREOSCOPE_OAUTH_CLIENT_SECRET;
AWS_MSK_IAM signs with the credentials of the AWS default chain):
  Confluent Cloud:  choreoscope collect --brokers pkc-xxxxx.REGION.aws.confluent.cloud:9092 \\
                      --security-protocol sasl_ssl --sasl-mechanism PLAIN --sasl-username API_KEY
  Amazon MSK:       choreoscope collect --brokers b-1.CLUSTER.xxxxxx.c2.kafka.REGION.amazonaws.com:9096 \\
                      --security-protocol sasl_ssl --sasl-mechanism SCRAM-SHA-512 --sasl-username USER
  Amazon MSK (IAM): choreoscope collect --brokers b-1.CLUSTER.xxxxxx.c2.kafka.REGION.amazonaws.com:9098 \\
                      --sasl-mechanism AWS_MSK_IAM --aws-region REGION
  Aiven:            choreoscope collect --brokers kafka-xxxx.aivencloud.com:12345 --ssl-ca ca.pem \\
                      --sasl-mechanism SCRAM-SHA-256 --sasl-username avnadmin
  Strimzi (mTLS):   choreoscope collect --brokers CLUSTER-kafka-bootstrap.NAMESPACE:9093 \\
                      --ssl-ca ca.crt --ssl-cert user.crt --ssl-key user.key
  OAuth (OIDC):     choreoscope collect --brokers HOST:9092 --security-protocol sasl_ssl \\
                      --sasl-mechanism OAUTHBEARER --oauth-token-endpoint https://IDP/token --oauth-client-id ID
  From 1 h ago on a cluster with history: add --start-at 1h";

/// `choreoscope collect`.
#[derive(Args, Debug)]
pub struct CollectArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT…].
    #[arg(long, env = "CHOREOSCOPE_BROKERS")]
    pub brokers: String,
    /// The lineage store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Consumer group of the collector.
    #[arg(long, env = "CHOREOSCOPE_GROUP", default_value = "choreoscope")]
    pub group: String,
    /// Store only topics whose whole name matches this regular expression.
    #[arg(long, env = "CHOREOSCOPE_INCLUDE", value_parser = topic_pattern)]
    pub include: Option<TopicPattern>,
    /// Do not store topics whose whole name matches this regular expression.
    #[arg(long, env = "CHOREOSCOPE_EXCLUDE", value_parser = topic_pattern)]
    pub exclude: Option<TopicPattern>,
    /// Also store the internal topics of platform parts (Schema Registry's `_schemas`,
    /// `_confluent*`, Kafka Connect's `*connect-configs|offsets|status`, Kafka Streams'
    /// `*-changelog` and `*-repartition`, MirrorMaker's `*.internal`), left out by default.
    #[arg(long, env = "CHOREOSCOPE_KEEP_PLATFORM_TOPICS")]
    pub keep_platform_topics: bool,
    /// TOML config file: alias profiles per topic, business-key rules, and flow health's
    /// `[health]` table.
    #[arg(long, env = "CHOREOSCOPE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the HTTP server (/api/v1, /metrics, /healthz).
    #[arg(long, env = "CHOREOSCOPE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Who may use the viewer and the API (`--auth`, `--allow-unauthenticated`).
    #[command(flatten)]
    pub access: AccessArgs,
    /// TLS, request limits, the ops address.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Records per store transaction, at most.
    #[arg(long, env = "CHOREOSCOPE_BATCH_SIZE", default_value_t = 5000)]
    pub batch_size: usize,
    /// Milliseconds a batch may stay open after its first record.
    #[arg(long, env = "CHOREOSCOPE_BATCH_MS", default_value_t = 200)]
    pub batch_ms: u64,
    /// Bytes of each payload kept; the rest is cut and marked.
    #[arg(long, env = "CHOREOSCOPE_MAX_PAYLOAD", default_value_t = 64 * 1024)]
    pub max_payload: usize,
    /// Milliseconds between looks for new topics.
    #[arg(
        long,
        env = "CHOREOSCOPE_METADATA_REFRESH_MS",
        default_value_t = 10_000
    )]
    pub metadata_refresh_ms: u64,
    /// TLS and SASL (docs/collector.md, "A secured cluster", has examples for Confluent Cloud,
    /// MSK, Aiven and Strimzi).
    #[command(flatten)]
    pub security: SecuritySettings,
    /// Extra librdkafka property, KEY=VALUE (repeatable), e.g. client.id=choreoscope-1; set
    /// last, over every other setting.
    #[arg(long = "kafka", value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,
    /// Where partitions the group has no committed offset for start (committed offsets always
    /// win): earliest, latest, a DURATION before the collector started (e.g. 1h, by Kafka's
    /// offsets-for-times) or an RFC 3339 time (e.g. 2026-05-01T08:00:00Z).
    #[arg(long, env = "CHOREOSCOPE_START_AT", default_value = "earliest", value_parser = start_at)]
    pub start_at: StartAt,
    /// Track no flow health (no learned model, no stalled flows, no /flows list): for a collector
    /// that only stores, e.g. beside a `serve` that tracks. Also `[health] enabled = false`.
    #[arg(long, env = "CHOREOSCOPE_NO_FLOW_HEALTH")]
    pub no_flow_health: bool,
    /// How often the cluster's consumer groups are polled for their positions, e.g. 5s; 0 turns
    /// polling off. Overrides the config file's `[consumer_groups] poll_every` (default 5s).
    #[arg(long, env = "CHOREOSCOPE_GROUP_POLL_EVERY", value_parser = duration)]
    pub group_poll_every: Option<Duration>,
    /// The OTLP trace receiver.
    #[command(flatten)]
    pub otlp: OtlpArgs,
    /// Retention of events (`--retention`, `--max-store-size`).
    #[command(flatten)]
    pub retention: RetentionArgs,
}

/// How long events are kept (both off by default: the store keeps everything).
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionArgs {
    /// Delete events whose time is older than this, e.g. 7d, in small batches in the background
    /// (also `[retention] max_age` in the config file).
    #[arg(long, env = "CHOREOSCOPE_RETENTION", value_parser = duration)]
    pub retention: Option<Duration>,
    /// Delete the oldest events while the store takes more than this, e.g. 500MB or 10GiB (also
    /// `[retention] max_size`).
    #[arg(long, env = "CHOREOSCOPE_MAX_STORE_SIZE", value_parser = byte_size)]
    pub max_store_size: Option<u64>,
}

impl RetentionArgs {
    /// Retention's settings: these flags, each over the config file's `[retention]` table.
    pub fn settings(&self, file: &RetentionTable) -> RetentionSettings {
        RetentionSettings::over(
            self.retention.filter(|d| !d.is_zero()),
            self.max_store_size,
            file,
        )
    }
}

/// Parses `--max-store-size`.
fn byte_size(s: &str) -> Result<u64, String> {
    s.parse::<ByteSize>()
        .map(|b| b.0)
        .map_err(|e| e.to_string())
}

/// An address to listen on, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint(pub Option<SocketAddr>);

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "off" | "" => Ok(Self(None)),
            addr => addr.parse().map(|a| Self(Some(a))).map_err(|_| {
                format!("`{addr}` is not HOST:PORT (an IP address and a port) or `off`")
            }),
        }
    }
}

/// The OTLP trace receiver's flags (`collect`).
#[derive(Args, Debug, Clone)]
pub struct OtlpArgs {
    /// OTLP/gRPC trace receiver, IP:PORT or `off`.
    #[arg(long, env = "CHOREOSCOPE_OTLP_GRPC", default_value = "127.0.0.1:4317")]
    pub otlp_grpc: Endpoint,
    /// OTLP/HTTP trace receiver (`POST /v1/traces`, protobuf or JSON), IP:PORT or `off`.
    #[arg(long, env = "CHOREOSCOPE_OTLP_HTTP", default_value = "127.0.0.1:4318")]
    pub otlp_http: Endpoint,
    /// Most spans queued for the store; a request beyond it is told to retry (gRPC
    /// UNAVAILABLE, HTTP 503).
    #[arg(
        long,
        env = "CHOREOSCOPE_OTLP_MAX_QUEUED_SPANS",
        default_value_t = 100_000
    )]
    pub otlp_max_queued_spans: usize,
    /// How long a span whose trace has shown no messaging span yet is held before it is
    /// dropped, e.g. 30s.
    #[arg(long, env = "CHOREOSCOPE_OTLP_HOLD", default_value = "30s", value_parser = duration)]
    pub otlp_hold: Duration,
    /// How long spans are kept (by start time), e.g. 7d; 0 keeps them for ever.
    #[arg(long, env = "CHOREOSCOPE_SPAN_RETENTION", default_value = "7d", value_parser = duration)]
    pub span_retention: Duration,
}

impl OtlpArgs {
    /// The receiver's settings.
    pub fn config(&self) -> crate::otlp::OtlpConfig {
        let mut config = crate::otlp::OtlpConfig {
            max_queued_spans: self.otlp_max_queued_spans,
            retention: self.span_retention,
            ..Default::default()
        };
        config.sieve.hold = self.otlp_hold;
        config
    }
}

/// Parses a duration such as `5s` or `500ms`; a bare `0` is zero.
fn duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime_serde::re::humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e}"))
}

/// Parses `--include`/`--exclude`.
fn topic_pattern(s: &str) -> Result<TopicPattern, String> {
    TopicPattern::new(s).map_err(|e| e.to_string())
}

/// Parses `--status`.
fn flow_status(s: &str) -> Result<FlowStatus, String> {
    FlowStatus::ALL
        .into_iter()
        .find(|status| status.as_str() == s)
        .ok_or_else(|| format!("`{s}` is not complete, in_progress, stalled or failed"))
}

/// Parses `--start-at`.
fn start_at(s: &str) -> Result<StartAt, String> {
    s.parse()
        .map_err(|e: crate::ingest::StartAtError| e.to_string())
}

/// Parses `--kafka KEY=VALUE`.
fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

impl CollectArgs {
    /// Consumer-group positions' settings: the config file's, with `--group-poll-every` over its
    /// interval when given.
    pub fn groups_config(&self, mut file: GroupsConfig) -> GroupsConfig {
        if let Some(every) = self.group_poll_every {
            file.poll_every = every;
        }
        file
    }

    /// How the ingest loop consumes, from these flags and the config file's `[kafka]` table
    /// (flags win); reads the secrets and checks the security settings fit together.
    pub fn ingest_config(&self, file: SecuritySettings) -> Result<IngestConfig, SecurityError> {
        let settings = self.security.clone().over(file);
        let security = settings.resolve(|name| std::env::var(name).ok())?;
        let mut properties: Vec<(String, String)> = settings.properties.into_iter().collect();
        properties.extend(self.kafka_properties.iter().cloned());
        Ok(IngestConfig {
            cluster: Cluster::new(self.brokers.clone(), security, properties),
            group: self.group.clone(),
            topics: TopicFilter {
                include: self.include.clone(),
                exclude: self.exclude.clone(),
                keep_platform_topics: self.keep_platform_topics,
            },
            batch_size: self.batch_size.max(1),
            batch_timeout: Duration::from_millis(self.batch_ms),
            metadata_refresh: Duration::from_millis(self.metadata_refresh_ms.max(100)),
            start_at: self.start_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("choreoscope").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_otlp_receivers_listen_on_their_default_ports_or_are_off() {
        let defaults = collect_args(&[]);
        assert_eq!(
            defaults.otlp.otlp_grpc.0,
            Some("127.0.0.1:4317".parse().unwrap())
        );
        assert_eq!(
            defaults.otlp.otlp_http.0,
            Some("127.0.0.1:4318".parse().unwrap())
        );
        let off = collect_args(&["--otlp-grpc", "off", "--otlp-http", "0.0.0.0:9418"]);
        assert_eq!(off.otlp.otlp_grpc.0, None);
        assert_eq!(off.otlp.otlp_http.0, Some("0.0.0.0:9418".parse().unwrap()));
        assert!(Cli::try_parse_from([
            "choreoscope",
            "collect",
            "--brokers",
            "b",
            "--otlp-grpc",
            "nope"
        ])
        .is_err());
    }

    fn collect_args(args: &[&str]) -> CollectArgs {
        let all = [&["collect", "--brokers", "b:9092"], args].concat();
        match parse(&all).command {
            Command::Collect(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn group_poll_every_overrides_the_config_file_and_zero_turns_polling_off() {
        let file = GroupsConfig {
            poll_every: Duration::from_secs(7),
            ..GroupsConfig::default()
        };
        let given = |args: &[&str]| collect_args(args).groups_config(file.clone()).poll_every;
        assert_eq!(given(&[]), Duration::from_secs(7));
        assert_eq!(given(&["--group-poll-every", "2s"]), Duration::from_secs(2));
        assert_eq!(
            given(&["--group-poll-every", "500ms"]),
            Duration::from_millis(500)
        );
        assert_eq!(given(&["--group-poll-every", "0"]), Duration::ZERO);
        assert!(Cli::try_parse_from([
            "choreoscope",
            "collect",
            "--brokers",
            "b",
            "--group-poll-every",
            "soon"
        ])
        .is_err());
    }

    #[test]
    fn every_command_takes_the_store_from_one_db_flag() {
        let db = "sqlite:///tmp/x.db";
        let stores = [
            parse(&["collect", "--brokers", "b:9092", "--db", db]),
            parse(&["serve", "--db", db]),
            parse(&["query", "key", "order.id", "o-1", "--db", db]),
            parse(&[
                "query",
                "--db",
                db,
                "trace",
                "0af7651916cd43dd8448eb211c80319c",
            ]),
        ]
        .map(|cli| match cli.command {
            Command::Collect(a) => a.store.db,
            Command::Serve(a) => a.store.db,
            Command::Query(a) => a.store.db,
            Command::Demo(_) | Command::Token(_) => unreachable!(),
        });
        assert_eq!(stores, [db; 4].map(str::to_owned));
    }

    #[test]
    fn collect_flags_become_the_ingest_config() {
        let cli = parse(&[
            "collect",
            "--brokers",
            "k1:9092,k2:9092",
            "--group",
            "g",
            "--include",
            "orders.*",
            "--batch-size",
            "0",
            "--metadata-refresh-ms",
            "5",
            "--kafka",
            "security.protocol = ssl",
        ]);
        let Command::Collect(args) = cli.command else {
            panic!("collect parsed as {:?}", cli.command)
        };
        let config = args.ingest_config(Default::default()).unwrap();
        assert_eq!(config.cluster.brokers, "k1:9092,k2:9092");
        assert_eq!(config.group, "g");
        assert!(config.topics.wants("orders.v1") && !config.topics.wants("payments"));
        assert_eq!(config.batch_size, 1, "at least one record per batch");
        assert_eq!(
            config.metadata_refresh,
            Duration::from_millis(100),
            "at least 100 ms"
        );
        assert_eq!(
            config.cluster.properties,
            [("security.protocol".to_owned(), "ssl".to_owned())]
        );
    }

    #[test]
    fn query_flows_takes_a_status_and_refuses_an_unknown_one() {
        let cli = parse(&["query", "flows", "--status", "stalled", "--limit", "5"]);
        let Command::Query(QueryArgs {
            what: QueryWhat::Flows { status, limit },
            ..
        }) = cli.command
        else {
            panic!("not query flows")
        };
        assert_eq!((status, limit), (Some(FlowStatus::Stalled), 5));
        let error = Cli::try_parse_from(["choreoscope", "query", "flows", "--status", "stuck"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`stuck` is not complete, in_progress, stalled or failed"),
            "{error}"
        );
    }

    #[test]
    fn a_kafka_property_without_equals_sign_is_refused_in_one_line() {
        let error = Cli::try_parse_from([
            "choreoscope",
            "collect",
            "--brokers",
            "b",
            "--kafka",
            "oops",
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("`oops` is not KEY=VALUE"), "{error}");
    }

    #[test]
    fn security_flags_map_onto_the_cluster_and_the_file_fills_in_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("pw");
        std::fs::write(&password, "secret\n").unwrap();
        let args = collect_args(&[
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--sasl-username",
            "alice",
            "--sasl-password-file",
            password.to_str().unwrap(),
            "--kafka",
            "client.id=flag",
        ]);
        let file = SecuritySettings {
            ssl_ca: Some("/etc/ca.pem".into()),
            sasl_username: Some("bob".into()),
            properties: [
                ("client.id".to_owned(), "file".to_owned()),
                ("socket.keepalive.enable".to_owned(), "true".to_owned()),
            ]
            .into(),
            ..SecuritySettings::default()
        };
        let cluster = args.ingest_config(file).unwrap().cluster;
        assert_eq!(
            cluster.security.describe(),
            "sasl_ssl, SASL SCRAM-SHA-512 as alice"
        );
        assert_eq!(
            cluster.security.password.as_ref().unwrap().expose(),
            "secret"
        );
        let client = cluster.client_config();
        assert_eq!(client.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(client.get("client.id"), Some("flag"), "--kafka is set last");
        assert_eq!(client.get("socket.keepalive.enable"), Some("true"));
    }

    #[test]
    fn there_is_no_flag_that_takes_a_password_itself() {
        let refused = Cli::try_parse_from([
            "choreoscope",
            "collect",
            "--brokers",
            "b:9092",
            "--sasl-password",
            "x",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            refused.contains("unexpected argument '--sasl-password'"),
            "{refused}"
        );
    }

    #[test]
    fn start_at_defaults_to_earliest_and_reaches_the_ingest_config() {
        assert_eq!(
            collect_args(&[])
                .ingest_config(Default::default())
                .unwrap()
                .start_at,
            StartAt::Earliest
        );
        assert_eq!(
            collect_args(&["--start-at", "1h"])
                .ingest_config(Default::default())
                .unwrap()
                .start_at,
            StartAt::Ago(Duration::from_secs(3600))
        );
        assert_eq!(
            collect_args(&["--start-at", "latest"]).start_at,
            StartAt::Latest
        );
    }

    #[test]
    fn a_bad_start_at_is_refused_in_one_clear_line() {
        let error = Cli::try_parse_from([
            "choreoscope",
            "collect",
            "--brokers",
            "b",
            "--start-at",
            "yesterday",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("invalid value 'yesterday' for '--start-at <START_AT>': `yesterday` is not earliest, latest, a duration such as 1h or 30m, or an RFC 3339 time such as 2026-05-01T08:00:00Z\n"),
            "{error}"
        );
    }

    #[test]
    fn every_example_of_collect_help_parses_and_its_security_settings_fit_together() {
        let joined = COLLECT_EXAMPLES.replace("\\\n", " ");
        let commands: Vec<&str> = joined
            .lines()
            .filter_map(|l| l.split_once("choreoscope collect").map(|(_, rest)| rest))
            .collect();
        assert_eq!(commands.len(), 6, "{joined}");
        let secrets = |name: &str| Some(format!("secret of {name}"));
        for rest in commands {
            let args: Vec<&str> = ["choreoscope", "collect"]
                .into_iter()
                .chain(rest.split_whitespace())
                .collect();
            let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{rest}: {e}"));
            let Command::Collect(collect) = cli.command else {
                panic!("{rest}: not collect")
            };
            let security = collect
                .security
                .clone()
                .resolve(secrets)
                .unwrap_or_else(|e| panic!("{rest}: {e}"));
            assert!(
                security.effective_protocol().is_some_and(|p| p.uses_tls()),
                "{rest}: every example is over TLS"
            );
        }
    }

    #[test]
    fn retention_flags_take_a_duration_and_a_size_and_are_off_by_default() {
        let off = collect_args(&[]);
        assert!(!off.retention.settings(&RetentionTable::default()).is_on());
        let on = collect_args(&["--retention", "7d", "--max-store-size", "10GiB"]);
        let settings = on.retention.settings(&RetentionTable::default());
        assert_eq!(settings.max_age, Some(Duration::from_secs(7 * 24 * 3600)));
        assert_eq!(settings.max_size, Some(10 << 30));
    }
}
