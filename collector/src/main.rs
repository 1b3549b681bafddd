//! `choreoscope`: the collector binary. Parses the command line ([`choreoscope::cli`]), makes the
//! process-wide memory settings ([`choreoscope::memory`]), and runs the command; everything else
//! is the library's.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use choreoscope::access::{Access, AccessArgs};
use choreoscope::cli::{
    Cli, CollectArgs, Command, DemoArgs, QueryArgs, QueryWhat, ServeArgs, ServerArgs, TokenCommand,
};
use choreoscope::clock::Clock;
use choreoscope::cluster::{reach, Cluster, Reached};
use choreoscope::collector::{Collector, Source};
use choreoscope::config::CollectorConfig;
use choreoscope::http::{ServerSettings, Tls};
use choreoscope::memory::{self, Untuned};
use choreoscope::record::Interpreter;
use choreoscope::retention::RetentionSettings;
use choreoscope::store::Store;
use clap::Parser as _;
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's allocator: a profile of the ingest loop spent ~30 % of the
/// collector's CPU in glibc `malloc`/`free` (docs/benchmarks.md, run 10).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// Binds the HTTP server's address, saying what it serves.
async fn listen(
    addr: std::net::SocketAddr,
    access: &AccessArgs,
) -> anyhow::Result<tokio::net::TcpListener> {
    access.check(addr)?;
    let listener = bind_with_backlog(addr).with_context(|| format!("binding {addr}"))?;
    tracing::info!(listen = %addr, viewer = choreoscope::http::web::is_embedded(),
        "serving the web viewer, the query API, /metrics and /healthz");
    Ok(listener)
}

/// Binds `addr` with a long accept queue, so a burst of connections waits for the acceptor
/// (which sheds what is over the caps) instead of having its SYNs dropped.
fn bind_with_backlog(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Binds an OTLP receiver's address, when it is not `off`.
async fn listen_otlp(
    endpoint: choreoscope::cli::Endpoint,
    what: &str,
) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = endpoint.0 else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the OTLP/{what} receiver to {addr} (or set it `off`)"))?;
    tracing::info!(listen = %addr, "receiving OTLP/{what} traces");
    Ok(Some(listener))
}

/// The HTTP server's TLS and limits from its flags: a certificate that does not load stops the
/// command with one line.
async fn server_settings(args: &ServerArgs) -> anyhow::Result<ServerSettings> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::load(cert, key, args.tls_reload).await?),
        _ => None,
    };
    let descriptors = choreoscope::http::admission::raise_descriptor_limit();
    Ok(ServerSettings {
        limits: args.limits(),
        caps: args.caps().within_descriptors(descriptors),
        tls,
    })
}

/// A command's HTTP server flags: its address, who may use it, TLS, limits and caps.
struct HttpFlags<'a> {
    addr: std::net::SocketAddr,
    access: &'a AccessArgs,
    server: &'a ServerArgs,
}

/// Runs `source` into the store until ctrl-c or SIGTERM, then stops in order; with an OTLP
/// receiver when `otlp` says so, and retention when `retention` deletes anything.
async fn run_collector(
    db: &str,
    source: Source,
    http: HttpFlags<'_>,
    otlp: Option<&choreoscope::cli::OtlpArgs>,
    retention: RetentionSettings,
    config: CollectorConfig,
) -> anyhow::Result<()> {
    let HttpFlags {
        addr,
        access,
        server,
    } = http;
    let guard = Arc::new(Access::from_args(access, config.access).await?);
    let settings = server_settings(server).await?;
    let cancel = CancellationToken::new();
    spawn_shutdown(&cancel);
    let store = connect_store(db, &cancel).await?;
    let receivers = match otlp {
        Some(args) => Some((
            args.config(),
            listen_otlp(args.otlp_grpc, "gRPC").await?,
            listen_otlp(args.otlp_http, "HTTP").await?,
        )),
        None => None,
    };
    let listener = listen(addr, access).await?;
    let ops = match server.ops_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the ops address {addr}"))?,
        ),
        None => None,
    };
    let mut collector =
        Collector::start_redacting(store.clone(), source, config.health, config.redaction)?;
    tracing::info!(auth = guard.mode().as_str(), ops = ?access.ops_access,
        audit = access.audit_log.as_ref().map(|p| p.display().to_string()), "access to the viewer and the API");
    if let Some(ops) = ops {
        tracing::info!(listen = %server.ops_listen.unwrap_or(addr), "serving /metrics and /healthz without a login");
        collector.serve_ops(ops, settings.tls.clone());
    }
    tracing::info!(
        tls = settings.tls.is_some(),
        max_request_bytes = settings.limits.max_request_bytes,
        rate_limit = server.rate_limit,
        "HTTP server"
    );
    collector.serve_with(listener, guard, settings);
    if let Some((config, grpc, http)) = receivers {
        if grpc.is_some() || http.is_some() {
            collector.start_otlp(config, grpc, http);
        }
    }
    collector.start_retention(retention, Clock::System);
    cancel.cancelled().await;
    let stopped = collector.stop().await;
    store.close().await;
    Ok(stopped?)
}

/// `choreoscope collect`.
async fn collect(args: CollectArgs) -> anyhow::Result<()> {
    args.access.check(args.listen)?;
    let mut config = CollectorConfig::load(args.config.as_deref())?;
    config.health.enabled &= !args.no_flow_health;
    let ingest = args.ingest_config(std::mem::take(&mut config.kafka))?;
    check_cluster(&ingest.cluster).await?;
    let source = Source::Kafka {
        config: ingest,
        interpreter: Interpreter::new(std::mem::take(&mut config.rules), args.max_payload)
            .with_redaction(config.redaction.clone()),
        groups: args.groups_config(std::mem::take(&mut config.groups)),
    };
    run_collector(
        &args.store.db,
        source,
        HttpFlags {
            addr: args.listen,
            access: &args.access,
            server: &args.server,
        },
        Some(&args.otlp),
        args.retention.settings(&config.retention),
        config,
    )
    .await
}

/// Reaches the cluster before anything starts: a refusal (credentials, certificate, protocol)
/// stops `collect` with one line; a cluster that does not answer yet is waited for.
async fn check_cluster(cluster: &Cluster) -> anyhow::Result<()> {
    let checked = cluster.clone();
    let reached = tokio::task::spawn_blocking(move || reach(&checked, CLUSTER_PATIENCE))
        .await
        .context("the start-up check of the cluster panicked")??;
    match reached {
        Reached::Cluster { brokers, topics } => tracing::info!(
            brokers,
            topics = topics.len(),
            security = %cluster.security.describe(),
            "reached the cluster at {}",
            cluster.brokers
        ),
        Reached::NoAnswer(error) => tracing::warn!(
            %error,
            security = %cluster.security.describe(),
            "no answer from {} yet; collecting once it answers",
            cluster.brokers
        ),
    }
    Ok(())
}

/// How long `collect` waits for the cluster's first answer before starting anyway.
const CLUSTER_PATIENCE: Duration = Duration::from_secs(10);

/// `choreoscope serve`: the API and viewer over a store another process fills.
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    args.access.check(args.listen)?;
    let config = CollectorConfig::load(args.config.as_deref())?;
    tracing::info!(db = %args.store.db, "serving the query API over the store");
    let every = Duration::from_millis(args.follow_ms.max(10));
    run_collector(
        &args.store.db,
        Source::FollowStore { every },
        HttpFlags {
            addr: args.listen,
            access: &args.access,
            server: &args.server,
        },
        None,
        RetentionSettings::default(),
        config,
    )
    .await
}

/// `choreoscope query`: the answer as a causal tree, or the API's JSON.
async fn query(args: QueryArgs) -> anyhow::Result<()> {
    use choreoscope::query::{self, parse_direction, Limits};
    use choreoscope::render;
    let store = Store::connect(&args.store.db)
        .await
        .with_context(|| format!("opening store {}", args.store.db))?;
    let limits = Limits::default();
    // This process has no tracker of its own: flow health learns from the store's last hour.
    let health = choreoscope::health::HealthHandle::default();
    // Nor does it poll consumer groups: no diagnoses.
    let groups = choreoscope::groups::GroupsHandle::default();
    if args.what.needs_health() {
        health
            .backfill(&store, choreoscope::health::service::BACKFILL_MAX)
            .await
            .context("reading the store's recent events")?;
    }
    let (json, text) = match &args.what {
        QueryWhat::Key { name, value } => {
            // Values hashed at ingest are found with the same key (CHOREOSCOPE_REDACTION_KEY).
            let hashed = std::env::var(choreoscope::redact::HASH_KEY_ENV)
                .ok()
                .and_then(|key| choreoscope::redact::HashKey::new(key).ok())
                .map(|key| key.hash(value));
            let a = query::key_answer(
                &store,
                &health,
                &groups,
                name,
                value,
                hashed.as_deref(),
                &limits,
            )
            .await?;
            (serde_json::to_string_pretty(&a)?, render::key_answer(&a))
        }
        QueryWhat::Event {
            id,
            direction,
            depth,
        } => {
            let g = query::lineage_graph(
                &store,
                id,
                parse_direction(Some(direction))?,
                *depth,
                &limits,
            )
            .await?;
            (serde_json::to_string_pretty(&g)?, render::lineage(id, &g))
        }
        QueryWhat::Trace { id } => {
            let a = query::trace_answer(&store, &health, &groups, id, &limits).await?;
            (serde_json::to_string_pretty(&a)?, render::flow_answer(&a))
        }
        QueryWhat::Correlation { id } => {
            let a = query::correlation_answer(&store, &health, &groups, id, &limits).await?;
            (serde_json::to_string_pretty(&a)?, render::flow_answer(&a))
        }
        QueryWhat::Services { window } => {
            let to = chrono::Utc::now().timestamp_micros() + 1;
            let from = to - query::services::parse_window(window)?;
            let a = query::services::services(&store, from, to).await?;
            (serde_json::to_string_pretty(&a)?, render::services(&a))
        }
        QueryWhat::Flows { status, limit } => {
            let page =
                query::health::flows(&health, &groups, &store, *status, *limit, &limits).await?;
            (
                serde_json::to_string_pretty(&page)?,
                render::flows_page(&page),
            )
        }
    };
    println!("{}", if args.json { json } else { text });
    Ok(())
}

/// `choreoscope demo`.
async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    args.access.check(args.listen)?;
    let cancel = CancellationToken::new();
    spawn_shutdown(&cancel);
    if args.seconds > 0 {
        let cancel = cancel.clone();
        let seconds = args.seconds;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            cancel.cancel();
        });
    }
    choreoscope::demo::run(
        choreoscope::demo::DemoConfig {
            listen: args.listen,
            db: args.db,
            orders_per_second: args.rate,
            access: Arc::new(Access::from_args(&args.access, Default::default()).await?),
            server: server_settings(&args.server).await?,
        },
        cancel,
    )
    .await?;
    Ok(())
}

/// Cancels `cancel` on ctrl-c or SIGTERM.
fn spawn_shutdown(cancel: &CancellationToken) {
    let cancel = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        cancel.cancel();
    });
}

fn main() -> std::process::ExitCode {
    let untuned = memory::tune_process();
    // Two rustls crypto providers are linked (aws-lc-rs, and ring by the OIDC client): name the
    // process default before anything builds a TLS configuration.
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(untuned)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error as a user reads it, whatever RUST_BACKTRACE says: what failed, then why, on one line.
/// A cause whose text the message before it already holds (errors that print their source) is
/// not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut previous = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !previous.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        previous = text;
    }
    line
}

/// Logs what the memory settings could not set, once logging is up.
fn report_untuned(untuned: Untuned) {
    for (option, value, expected) in untuned.mimalloc {
        tracing::warn!(
            option,
            value,
            expected,
            "mimalloc option not at the default this build expects; left alone"
        );
    }
    if untuned.arenas {
        tracing::warn!(
            arenas = memory::MALLOC_ARENAS,
            "glibc refused to limit its malloc arenas"
        );
    }
    if untuned.sqlite {
        tracing::warn!(
            "SQLite was initialized before its memory statistics could be turned off and its allocator set"
        );
    }
}

async fn run(untuned: Untuned) -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo's legacy producer is malformed on purpose: its services need not say so each time.
    let default_filter = match cli.command {
        Command::Demo(_) => "info,librdkafka=warn,rdkafka=warn,choreoscope_sdk=error",
        _ => "info,librdkafka=warn,rdkafka=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .init();
    report_untuned(untuned);
    match cli.command {
        Command::Collect(args) => collect(*args).await,
        Command::Serve(args) => serve(args).await,
        Command::Token(TokenCommand::New(args)) => {
            let token = choreoscope::access::tokens::new_token();
            println!("{token}");
            eprintln!(
                "# Give the token above to its user; add this entry to the --auth-tokens file:\n{}",
                choreoscope::access::tokens::entry(&args.name, &token, args.role, &args.topics)
            );
            Ok(())
        }
        Command::Query(args) => query(args).await,
        Command::Demo(args) => demo(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_one_line_with_each_cause_once() {
        let store = std::io::Error::other("pool timed out");
        let wrapped = anyhow::Error::new(std::io::Error::other(format!("database: {store}")))
            .context("opening store postgres://db");
        assert_eq!(
            one_line(&wrapped),
            "opening store postgres://db: database: pool timed out"
        );
        let chained = anyhow::anyhow!("pool timed out")
            .context("database")
            .context("opening store");
        assert_eq!(
            one_line(&chained),
            "opening store: database: pool timed out"
        );
    }
}
