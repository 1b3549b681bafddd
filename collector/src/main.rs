//! `choreoscope`: the collector binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use choreoscope::http::{serve as serve_http, AppState};
use choreoscope::ingest::{IngestConfig, Ingestor};
use choreoscope::live::LiveFeed;
use choreoscope::metrics::Metrics;
use choreoscope::record::Interpreter;
use choreoscope::rules::Rules;
use choreoscope::rules::TopicPattern;
use choreoscope::store::Store;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's allocator: a profile of the ingest loop spent ~30 % of the
/// collector's CPU in glibc `malloc`/`free` (docs/benchmarks.md, run 10).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's options that keep the collector's memory small (see [`tune_allocator`]), by their
/// number in mimalloc 3's `mi_option_e` (the Rust bindings name only some), with the default each
/// must have — checked before setting, so a renumbered option is reported, never mis-set.
const MI_OPTION_ARENA_EAGER_COMMIT: (i32, i64) = (4, 2);
const MI_OPTION_PURGE_DELAY: (i32, i64) = (15, 1000);

/// How long mimalloc keeps freed memory before returning it to the OS: a tenth of its default.
/// At once (0, until run 14) cost the ingest loop 0.8 µs of kernel time per event in `madvise`
/// (every spent batch's records returned, then faulted in again for the next), and SQLite
/// ingest is bound by CPU.
const PURGE_DELAY_MS: i64 = 100;

/// The purge delay while collecting into PostgreSQL: at once. That path is bound by the server,
/// not the collector's CPU, and holds the most in flight (two batches being written): with
/// [`PURGE_DELAY_MS`] its peak RSS over a million events was 235–240 MiB against 211–226, at the
/// same rate, and 255 MiB over three million (docs/benchmarks.md, run 14).
const PURGE_DELAY_POSTGRES_MS: i64 = 0;

/// Sets mimalloc's purge delay to `ms` if it is still the one [`tune_allocator`] chose (an
/// explicit `MIMALLOC_PURGE_DELAY` wins); returns whether it did. mimalloc reads the option each
/// time it purges, so it may change while running.
fn set_purge_delay(ms: i64) -> bool {
    let (option, _) = MI_OPTION_PURGE_DELAY;
    // SAFETY: plain getter and setter of mimalloc's global options, valid at any time.
    if unsafe { libmimalloc_sys::mi_option_get(option) } != PURGE_DELAY_MS {
        return false;
    }
    unsafe { libmimalloc_sys::mi_option_set(option, ms) };
    true
}

/// Returns freed memory to the OS soon and commits arena memory on demand. With mimalloc's
/// defaults (freed memory purged after 1 s, arenas committed eagerly) the collector's peak RSS
/// writing 600 000 events into PostgreSQL was 244–258 MiB (glibc: 212 MiB); with these, 220–223.
/// Called first thing in `main`, before the runtime's threads exist. Returns the options found
/// with another value than expected, `(option, value, expected)`, left alone.
fn tune_allocator() -> Vec<(i32, i64, i64)> {
    let mut untouched = Vec::new();
    for ((option, default), value) in [
        (MI_OPTION_ARENA_EAGER_COMMIT, 0),
        (MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS),
    ] {
        // SAFETY: plain getter and setter of mimalloc's global options, valid at any time.
        let current: i64 = unsafe { libmimalloc_sys::mi_option_get(option) };
        if current == default {
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        } else {
            untouched.push((option, current, default));
        }
    }
    untouched
}

/// glibc malloc arenas the process may have (see [`limit_malloc_arenas`]).
const MALLOC_ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`], unless `MALLOC_ARENA_MAX` says otherwise.
/// librdkafka allocates through glibc, not mimalloc (and so did SQLite until run 14, see
/// [`choreoscope::store::allocate_with_mimalloc`]), and glibc gives each thread that allocates an
/// arena of its own (up to 8 per core): SQLite's writes moved between the runtime's worker
/// threads, so its page cache and statements were spread over four to six arenas of ~18 MiB each.
/// Ingesting 3 000 000 events into SQLite, peak RSS was 200–246 MiB with glibc's default and
/// 193–202 with two arenas, at the same rate (docs/benchmarks.md, run 13). Called first thing in
/// `main`; returns whether glibc took the setting (`true` where there is nothing to set).
fn limit_malloc_arenas() -> bool {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return true;
    }
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: `mallopt` only sets a malloc parameter; M_ARENA_MAX bounds arenas created later.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) == 1 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        true
    }
}

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
    /// Consume every topic of a cluster into the lineage store, and serve the API and /metrics.
    Collect(CollectArgs),
    /// Serve the query API (and the UI) over an existing store, without consuming.
    Serve(ServeArgs),
    /// Ask the store a question and print the answer as a causal tree (or the API's JSON).
    Query(QueryArgs),
    /// Run a whole choreography in one process: embedded broker, sample services with trouble
    /// mixed in, the collector, the API and the UI.
    Demo(DemoArgs),
}

/// `choreoscope serve`.
#[derive(Args, Debug)]
struct ServeArgs {
    /// Lineage store: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "CHOREOSCOPE_DB",
        default_value = "sqlite://choreoscope.db"
    )]
    db: String,
    /// Address of the HTTP server.
    #[arg(long, env = "CHOREOSCOPE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How often the live feed looks for events a collector has stored meanwhile (ms).
    #[arg(long, env = "CHOREOSCOPE_FOLLOW_MS", default_value_t = 500)]
    follow_ms: u64,
}

/// `choreoscope query`.
#[derive(Args, Debug)]
struct QueryArgs {
    /// Lineage store: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "CHOREOSCOPE_DB",
        default_value = "sqlite://choreoscope.db",
        global = true
    )]
    db: String,
    /// Print the API's JSON instead of the tree.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    what: QueryWhat,
}

#[derive(Subcommand, Debug)]
enum QueryWhat {
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
}

/// `choreoscope demo`.
#[derive(Args, Debug)]
struct DemoArgs {
    /// Address of the API and UI.
    #[arg(long, env = "CHOREOSCOPE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// SQLite store of the demo (recreated at each start).
    #[arg(
        long,
        env = "CHOREOSCOPE_DEMO_DB",
        default_value = "choreoscope-demo.db"
    )]
    db: PathBuf,
    /// New orders per second.
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Stop after this many seconds (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
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
    /// Address of the HTTP server (/api/v1, /metrics, /healthz).
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
    spawn_shutdown(&cancel);
    let rules = match &args.config {
        Some(path) => Rules::load(path)?,
        None => Rules::default(),
    };
    let store = connect_store(&args.db, &cancel).await?;
    if matches!(store, Store::Postgres(_)) {
        set_purge_delay(PURGE_DELAY_POSTGRES_MS);
    }
    let metrics = Arc::new(Metrics::new());
    let live = LiveFeed::new();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, viewer = choreoscope::web::is_embedded(),
        "serving the web viewer, the query API, /metrics and /healthz");
    let server = tokio::spawn(serve_http(
        listener,
        AppState {
            store: store.clone(),
            metrics: metrics.clone(),
            live: live.clone(),
        },
        cancel.clone(),
    ));
    let ingestor = Ingestor::new(
        IngestConfig {
            brokers: args.brokers,
            group: args.group,
            topics: choreoscope::subscription::TopicFilter {
                include: args.include,
                exclude: args.exclude,
            },
            batch_size: args.batch_size.max(1),
            batch_timeout: Duration::from_millis(args.batch_ms),
            metadata_refresh: Duration::from_millis(args.metadata_refresh_ms.max(100)),
            kafka_properties: args.kafka_properties,
        },
        Interpreter::new(rules, args.max_payload),
        store.clone(),
        metrics,
    )?
    .with_live_feed(live);
    let result = ingestor.run(cancel.clone()).await;
    cancel.cancel();
    server.await.context("http server task")??;
    store.close().await;
    Ok(result?)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    spawn_shutdown(&cancel);
    let store = connect_store(&args.db, &cancel).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, db = %args.db, "serving the query API");
    let live = LiveFeed::new();
    // No ingest loop here: the live feed follows what a collector elsewhere stores.
    let follower = tokio::spawn(choreoscope::live::follow_store(
        store.clone(),
        live.clone(),
        Duration::from_millis(args.follow_ms.max(10)),
        cancel.clone(),
    ));
    let state = AppState {
        store: store.clone(),
        metrics: Arc::new(Metrics::new()),
        live,
    };
    let served = serve_http(listener, state, cancel.clone()).await;
    cancel.cancel();
    follower.await.context("live feed follower task")?;
    served?;
    store.close().await;
    Ok(())
}

async fn query(args: QueryArgs) -> anyhow::Result<()> {
    use choreoscope::api::{parse_direction, queries, queries::Limits};
    use choreoscope::render;
    let store = Store::connect(&args.db)
        .await
        .with_context(|| format!("opening store {}", args.db))?;
    let limits = Limits::default();
    let (json, text) = match &args.what {
        QueryWhat::Key { name, value } => {
            let a = queries::key_answer(&store, name, value, &limits).await?;
            (serde_json::to_string_pretty(&a)?, render::key_answer(&a))
        }
        QueryWhat::Event {
            id,
            direction,
            depth,
        } => {
            let g = queries::lineage_graph(
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
            let a = queries::trace_answer(&store, id, &limits).await?;
            (serde_json::to_string_pretty(&a)?, render::flow_answer(&a))
        }
        QueryWhat::Correlation { id } => {
            let a = queries::correlation_answer(&store, id, &limits).await?;
            (serde_json::to_string_pretty(&a)?, render::flow_answer(&a))
        }
    };
    println!("{}", if args.json { json } else { text });
    Ok(())
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
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
        },
        cancel,
    )
    .await?;
    Ok(())
}

fn spawn_shutdown(cancel: &CancellationToken) {
    let cancel = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        cancel.cancel();
    });
}

fn main() -> anyhow::Result<()> {
    let arenas_limited = limit_malloc_arenas();
    let untuned = tune_allocator();
    // Both, whatever the first returns: each only takes effect before SQLite's first use.
    let sqlite_tuned = [
        choreoscope::store::disable_memory_statistics(),
        choreoscope::store::allocate_with_mimalloc(),
    ] == [true, true];
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(untuned, sqlite_tuned, arenas_limited))
}

async fn run(
    untuned: Vec<(i32, i64, i64)>,
    sqlite_tuned: bool,
    arenas_limited: bool,
) -> anyhow::Result<()> {
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
    for (option, value, expected) in untuned {
        tracing::warn!(
            option,
            value,
            expected,
            "mimalloc option not at the default this build expects; left alone"
        );
    }
    if !arenas_limited {
        tracing::warn!(
            arenas = MALLOC_ARENAS,
            "glibc refused to limit its malloc arenas"
        );
    }
    if !sqlite_tuned {
        tracing::warn!(
            "SQLite was initialized before its memory statistics could be turned off and its allocator set"
        );
    }
    match cli.command {
        Command::Collect(args) => collect(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Query(args) => query(args).await,
        Command::Demo(args) => demo(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc's malloc arenas now, from `malloc_info`'s report.
    #[cfg(target_env = "gnu")]
    fn malloc_arenas() -> usize {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malloc.xml");
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a file opened, written by glibc and closed here.
        unsafe {
            let file = libc::fopen(c_path.as_ptr(), c"w".as_ptr());
            assert!(!file.is_null());
            assert_eq!(libc::malloc_info(0, file), 0);
            libc::fclose(file);
        }
        std::fs::read_to_string(path)
            .unwrap()
            .matches("<heap nr=")
            .count()
    }

    #[cfg(target_env = "gnu")]
    #[test]
    fn threads_allocating_through_glibc_share_at_most_two_arenas() {
        // As librdkafka's threads do: eight threads hold glibc memory at once.
        let before = malloc_arenas();
        assert!(limit_malloc_arenas());
        let all_holding = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let all_holding = all_holding.clone();
                std::thread::spawn(move || {
                    // SAFETY: a glibc allocation, freed once every thread holds one.
                    let p = unsafe { libc::malloc(1 << 16) };
                    all_holding.wait();
                    unsafe { libc::free(p) };
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let after = malloc_arenas();
        assert!(
            after <= before.max(MALLOC_ARENAS as usize),
            "{before} arenas before, {after} after eight threads allocated"
        );
    }

    #[test]
    fn the_allocator_options_tuned_are_the_ones_this_mimalloc_numbers_so() {
        // Each option's number is checked through its documented default: a mimalloc that
        // renumbered them would show other defaults here instead of being mis-set silently.
        assert_eq!(
            tune_allocator(),
            Vec::new(),
            "options found at other defaults"
        );
        for ((option, _), value) in [
            (MI_OPTION_ARENA_EAGER_COMMIT, 0),
            (MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS),
        ] {
            assert_eq!(unsafe { libmimalloc_sys::mi_option_get(option) }, value);
        }
        assert!(
            !tune_allocator().is_empty(),
            "a second call finds the options already changed and leaves them"
        );
        // Collecting into PostgreSQL purges at once; a delay set by someone else stays.
        let (purge_delay, _) = MI_OPTION_PURGE_DELAY;
        assert!(set_purge_delay(PURGE_DELAY_POSTGRES_MS));
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(purge_delay) },
            PURGE_DELAY_POSTGRES_MS
        );
        unsafe { libmimalloc_sys::mi_option_set(purge_delay, 7) };
        assert!(!set_purge_delay(PURGE_DELAY_POSTGRES_MS));
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(purge_delay) }, 7);
    }
}
