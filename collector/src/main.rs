//! `choreoscope`: the collector binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use choreoscope::http::{app, AppState};
use choreoscope::ingest::{IngestConfig, Ingestor};
use choreoscope::metrics::Metrics;
use choreoscope::record::Interpreter;
use choreoscope::rules::Rules;
use choreoscope::rules::TopicPattern;
use choreoscope::store::Store;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Choreoscope: see what happened to a business entity across every service of a Kafka
/// choreography.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Consume every topic of a cluster into the lineage store, and serve /metrics.
    Collect(CollectArgs),
}

/// `choreoscope collect`.
#[derive(Args, Debug)]
struct CollectArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT…].
    #[arg(long, env = "CHOREOSCOPE_BROKERS")]
    brokers: String,
    /// Lineage store: sqlite://PATH (created if missing) or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "CHOREOSCOPE_DB",
        default_value = "sqlite://choreoscope.db"
    )]
    db: String,
    /// Consumer group of the collector.
    #[arg(long, env = "CHOREOSCOPE_GROUP", default_value = "choreoscope")]
    group: String,
    /// Store only topics whose whole name matches this regular expression.
    #[arg(long, env = "CHOREOSCOPE_INCLUDE", value_parser = topic_pattern)]
    include: Option<TopicPattern>,
    /// Do not store topics whose whole name matches this regular expression.
    #[arg(long, env = "CHOREOSCOPE_EXCLUDE", value_parser = topic_pattern)]
    exclude: Option<TopicPattern>,
    /// TOML config file: alias profiles per topic, business-key rules.
    #[arg(long, env = "CHOREOSCOPE_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the HTTP server (/metrics, /healthz).
    #[arg(long, env = "CHOREOSCOPE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Records per store transaction, at most.
    #[arg(long, env = "CHOREOSCOPE_BATCH_SIZE", default_value_t = 5000)]
    batch_size: usize,
    /// Milliseconds a batch may stay open after its first record.
    #[arg(long, env = "CHOREOSCOPE_BATCH_MS", default_value_t = 200)]
    batch_ms: u64,
    /// Bytes of each payload kept; the rest is cut and marked.
    #[arg(long, env = "CHOREOSCOPE_MAX_PAYLOAD", default_value_t = 64 * 1024)]
    max_payload: usize,
    /// Milliseconds between looks for new topics.
    #[arg(
        long,
        env = "CHOREOSCOPE_METADATA_REFRESH_MS",
        default_value_t = 10_000
    )]
    metadata_refresh_ms: u64,
    /// Extra librdkafka property, KEY=VALUE (repeatable), e.g. security.protocol=SSL.
    #[arg(long = "kafka", value_parser = parse_property)]
    kafka_properties: Vec<(String, String)>,
}

fn topic_pattern(s: &str) -> Result<TopicPattern, String> {
    TopicPattern::new(s).map_err(|e| e.to_string())
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

/// Resolves when ctrl-c or SIGTERM arrives.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Connects to the store, retrying while it is unreachable (it may start after us).
async fn connect_store(url: &str, cancel: &CancellationToken) -> anyhow::Result<Store> {
    let mut delay = Duration::from_millis(200);
    loop {
        match Store::connect(url).await {
            Ok(store) => return Ok(store),
            Err(choreoscope::store::StoreError::Database(e)) if !cancel.is_cancelled() => {
                tracing::warn!(error = %e, retry_in = ?delay, "store unreachable");
                tokio::select! {
                    _ = cancel.cancelled() => anyhow::bail!("stopped while waiting for the store"),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e).with_context(|| format!("opening store {url}")),
        }
    }
}

async fn collect(args: CollectArgs) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            cancel.cancel();
        }
    });
    let rules = match &args.config {
        Some(path) => Rules::load(path)?,
        None => Rules::default(),
    };
    let store = connect_store(&args.db, &cancel).await?;
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, "serving /metrics and /healthz");
    let server = tokio::spawn({
        let cancel = cancel.clone();
        let router = app(AppState {
            store: store.clone(),
            metrics: metrics.clone(),
        });
        async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { cancel.cancelled().await })
                .await
        }
    });
    let ingestor = Ingestor::new(
        IngestConfig {
            brokers: args.brokers,
            group: args.group,
            include: args.include,
            exclude: args.exclude,
            batch_size: args.batch_size.max(1),
            batch_timeout: Duration::from_millis(args.batch_ms),
            metadata_refresh: Duration::from_millis(args.metadata_refresh_ms.max(100)),
            kafka_properties: args.kafka_properties,
        },
        Interpreter::new(rules, args.max_payload),
        store.clone(),
        metrics,
    )?;
    let result = ingestor.run(cancel.clone()).await;
    cancel.cancel();
    server.await.context("http server task")??;
    store.close().await;
    Ok(result?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=warn,rdkafka=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Collect(args) => collect(args).await,
    }
}
