//! `choreoscope demo`: a whole choreography in one process — librdkafka's mock cluster as the
//! broker, the sample services of [`services`] with trouble mixed in, the collector writing to
//! SQLite, and the API (and UI) on one address.

pub mod services;
pub mod shipping;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::collector::{Collector, CollectorError, Source};
use crate::ingest::{IngestConfig, TopicFilter};
use crate::record::Interpreter;
use crate::rules::Rules;
use crate::store::Store;

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Address of the API and UI.
    pub listen: SocketAddr,
    /// SQLite file of the demo's store; recreated at each start.
    pub db: PathBuf,
    /// New orders per second.
    pub orders_per_second: f64,
    /// Who may use the viewer and the API.
    pub access: std::sync::Arc<crate::access::Access>,
    /// TLS and request limits of its HTTP server.
    pub server: crate::http::ServerSettings,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The embedded broker or a client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The listen address is taken or not ours.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// The collector could not start or stopped with an error.
    #[error("collector: {0}")]
    Collector(#[from] CollectorError),
    /// Removing the previous demo store failed.
    #[error("cannot remove the previous demo store {0}: {1}")]
    Reset(PathBuf, std::io::Error),
}

fn remove_store(db: &std::path::Path) -> Result<(), DemoError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DemoError::Reset(path, e)),
        }
    }
    Ok(())
}

/// The demo's reading rules: the order id of `shipments` (the OpenTelemetry-only service's topic)
/// comes from its payload.
fn demo_rules() -> Rules {
    let table: toml::Table = toml::from_str(&format!(
        "key_rules = [\"{} : /orderId -> order.id\"]",
        shipping::TOPIC
    ))
    .expect("the demo's rules parse");
    Rules::from_table(table).expect("the demo's rules are valid")
}

/// Runs the demo until `cancel` fires, then stops everything in order: services, collector (its
/// last batch written), server, broker.
pub async fn run(config: DemoConfig, cancel: CancellationToken) -> Result<(), DemoError> {
    let cluster = MockCluster::new(1)?;
    for topic in services::TOPICS {
        cluster.create_topic(topic, 3, 1)?;
    }
    let brokers = cluster.bootstrap_servers();
    remove_store(&config.db)?;
    let db_url = format!("sqlite://{}", config.db.display());
    let store = Store::connect(&db_url).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| DemoError::Listen(config.listen, e))?;
    let source = Source::Kafka {
        config: IngestConfig {
            cluster: Cluster::plaintext(brokers.clone()),
            group: "choreoscope-demo".into(),
            topics: TopicFilter::default(),
            batch_size: 1000,
            batch_timeout: Duration::from_millis(100),
            metadata_refresh: Duration::from_secs(1),
            start_at: Default::default(),
        },
        // The OpenTelemetry-only service carries no baggage: its order id is read from its payload.
        interpreter: Interpreter::new(demo_rules(), 64 * 1024),
        // librdkafka's mock cluster does not list its groups (ListGroups is `UnsupportedFeature`)
        // but answers OffsetFetch: the services' groups are declared, and read on their own.
        groups: crate::groups::GroupsConfig {
            poll_every: Duration::from_secs(2),
            services: services::CONSUMERS
                .iter()
                .map(|s| (services::group_of(s), (*s).to_owned()))
                .collect(),
        },
    };
    let mut collector = Collector::start(
        store.clone(),
        source,
        None,
        crate::health::HealthConfig::default(),
    )?;
    collector.serve_with(listener, config.access.clone(), config.server.clone());
    // The OTLP/gRPC receiver the OpenTelemetry-only service exports to, on a port of its own.
    let otlp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| DemoError::Listen(config.listen, e))?;
    let otlp_endpoint = format!(
        "http://{}",
        otlp.local_addr()
            .map_err(|e| DemoError::Listen(config.listen, e))?
    );
    collector.start_otlp(crate::otlp::OtlpConfig::default(), Some(otlp), None);
    let services_cancel = CancellationToken::new();
    let mut running = services::spawn_all(&brokers, config.orders_per_second, &services_cancel);
    running.spawn(shipping::run(
        brokers.clone(),
        otlp_endpoint.clone(),
        services_cancel.clone(),
    ));

    // How to call this binary from here, for the printed commands.
    let exe = std::env::current_exe()
        .ok()
        .map(|p| {
            let relative = std::env::current_dir()
                .ok()
                .and_then(|d| p.strip_prefix(d).ok().map(|r| r.to_path_buf()));
            relative.unwrap_or(p).display().to_string()
        })
        .unwrap_or_else(|| "choreoscope".into());
    let stalled = (1..).find(|&n| services::never_confirmed(n)).unwrap_or(7);
    let twice = (1..).find(|&n| services::processed_twice(n)).unwrap_or(9);
    let dead = (1..).find(|&n| services::dead_lettered(n)).unwrap_or(23);
    let no_courier = (1..)
        .find(|&n| {
            shipping::no_courier(n) && !services::never_confirmed(n) && !services::dead_lettered(n)
        })
        .unwrap_or(31);
    println!(
        "\nChoreoscope demo: a checkout choreography on an embedded broker ({brokers}), {} new orders/s.\n\
         \n  Viewer       http://{listen}/          {viewer}\
         \n  API          http://{listen}/api/v1/openapi.json\n\
         \n  An order whose payment the bank never confirmed — where did its flow stop?\n\
         \n    http://{listen}/flows/key/order.id/{stalled_order}\
         \n    {exe} query key order.id {stalled_order} --db {db_url}\n    curl http://{listen}/api/v1/keys/order.id/{stalled_order}\n\
         \n  Which flows are stuck, where, and since when (flow health learns the choreography in about a minute):\n\
         \n    {exe} query flows --status stalled --db {db_url}\n    curl http://{listen}/api/v1/flows/summary\n\
         \n  The ledger's consumer group pauses for 40 s every two minutes from 1:00: the payments\
         \n  confirmed meanwhile stall waiting for the ledger, diagnosed as lagging:  curl http://{listen}/api/v1/flows?status=stalled\n\
         \n  An order inventory failed on, dead-lettered to bank-dlt: {exe} query key order.id {dead_order} --db {db_url}\
         \n  An order shipping (OpenTelemetry only, spans to {otlp_endpoint}) failed on:  {exe} query key order.id {no_courier_order} --db {db_url}\
         \n  How each service is instrumented, and what to add:     curl http://{listen}/api/v1/services\
         \n  An order whose confirmation inventory processed twice:  {exe} query key order.id {twice_order} --db {db_url}\
         \n  A member with a refund and balance changes:            {exe} query key member.id m-4 --db {db_url}\n\
         \nCtrl-C stops it.\n",
        config.orders_per_second,
        listen = config.listen,
        viewer = if crate::http::web::is_embedded() {
            format!("(type {} in the search box)", services::order_id(stalled))
        } else {
            "(built without the viewer: npm --prefix ui install && npm --prefix ui run build, then rebuild)".into()
        },
        stalled_order = services::order_id(stalled),
        twice_order = services::order_id(twice),
        dead_order = services::order_id(dead),
        no_courier_order = services::order_id(no_courier),
    );

    cancel.cancelled().await;
    services_cancel.cancel();
    while let Some(result) = running.join_next().await {
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "demo service stopped with an error");
        }
    }
    // Let the collector take in what the services last produced.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = collector.stop().await;
    store.close().await;
    drop(cluster);
    stopped?;
    Ok(())
}
