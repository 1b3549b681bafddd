//! Test harness for end-to-end tests against a real Kafka-protocol broker.
//!
//! The broker is started by the project's test command (`scripts/test`), which exports its address
//! as `CHOREOSCOPE_TEST_BROKERS`. Every test creates its own topics with unique names, so tests
//! share one broker without seeing each other's records.
//!
//! # Layout
//! - [`TestBroker`]: the broker of this run — topics, producers, consumers, raw reads.
//! - [`secure`]: a secured cluster (TLS through stunnel, SCRAM) for the TLS and SASL tests.

pub mod restart;
pub mod secure;

pub use restart::RestartableBroker;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

/// The environment variable that names the broker of this test run.
pub const BROKERS_ENV: &str = "CHOREOSCOPE_TEST_BROKERS";

/// Errors of the harness itself (never of the code under test).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The client refused or failed a call.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// Creating a topic failed.
    #[error("cannot create topic `{0}`: {1}")]
    CreateTopic(String, String),
    /// Fewer records than expected arrived in time.
    #[error("expected {expected} records from {topics:?}, got {got} within {timeout:?}")]
    Timeout {
        /// Topics read.
        topics: Vec<String>,
        /// Records expected.
        expected: usize,
        /// Records seen.
        got: usize,
        /// How long we waited.
        timeout: Duration,
    },
}

/// The real broker this test run talks to.
#[derive(Debug, Clone)]
pub struct TestBroker {
    bootstrap: String,
    /// Client properties every client of this broker sets (TLS and SASL for a secured one).
    properties: Vec<(String, String)>,
}

impl TestBroker {
    /// The broker named by `CHOREOSCOPE_TEST_BROKERS`.
    ///
    /// # Panics
    /// When the variable is unset: these tests need a real broker, and skipping them silently would
    /// hide that they did not run. Run them through `scripts/test`, which starts one.
    pub fn from_env() -> Self {
        let bootstrap = std::env::var(BROKERS_ENV).unwrap_or_else(|_| {
            panic!(
                "{BROKERS_ENV} is not set: end-to-end tests need a real Kafka-protocol broker. \
                 Run `scripts/test` (it installs and starts one), or set {BROKERS_ENV}=HOST:PORT."
            )
        });
        Self {
            bootstrap,
            properties: Vec::new(),
        }
    }

    /// A broker at `bootstrap` whose clients all set `properties` (TLS, SASL).
    pub fn with_properties(bootstrap: String, properties: Vec<(String, String)>) -> Self {
        Self {
            bootstrap,
            properties,
        }
    }

    /// `HOST:PORT` of the broker.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// A client configuration pointing at this broker.
    pub fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("broker.address.family", "v4");
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }

    /// A topic name no other test uses.
    pub fn unique_topic(prefix: &str) -> String {
        format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
    }

    /// Creates `topics` with `partitions` partitions each (the broker does not auto-create).
    pub async fn create_topics(
        &self,
        topics: &[&str],
        partitions: i32,
    ) -> Result<(), HarnessError> {
        let admin: AdminClient<DefaultClientContext> = self.config().create()?;
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin.create_topics(&new, &options).await? {
            if let Err((topic, code)) = result {
                return Err(HarnessError::CreateTopic(topic, code.to_string()));
            }
        }
        Ok(())
    }

    /// A producer that waits for the broker's acknowledgement.
    pub fn producer(&self) -> Result<FutureProducer, HarnessError> {
        Ok(self
            .config()
            .set("acks", "all")
            .set("message.timeout.ms", "10000")
            .create()?)
    }

    /// A consumer in `group`, reading from the earliest offset, subscribed to `topics`.
    pub fn consumer(&self, group: &str, topics: &[&str]) -> Result<StreamConsumer, HarnessError> {
        let consumer: StreamConsumer = self
            .config()
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("session.timeout.ms", "10000")
            .create()?;
        consumer.subscribe(topics)?;
        Ok(consumer)
    }

    /// Reads every record of `topics` from the beginning with a plain client (no SDK, no group
    /// coordination) until `expected` records have arrived, then returns them.
    pub async fn read_all(
        &self,
        topics: &[&str],
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<OwnedMessage>, HarnessError> {
        let consumer: StreamConsumer = self
            .config()
            .set(
                "group.id",
                format!("raw-reader-{}", uuid::Uuid::new_v4().simple()),
            )
            .set("enable.auto.commit", "false")
            .create()?;
        let mut assignment = TopicPartitionList::new();
        for topic in topics {
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    assignment.add_partition_offset(t.name(), p.id(), Offset::Beginning)?;
                }
            }
        }
        consumer.assign(&assignment)?;
        let mut records = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while records.len() < expected {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(message) => records.push(message?.detach()),
                Err(_) => {
                    return Err(HarnessError::Timeout {
                        topics: topics.iter().map(|t| t.to_string()).collect(),
                        expected,
                        got: records.len(),
                        timeout,
                    })
                }
            }
        }
        Ok(records)
    }
}

/// The UTF-8 value of header `name` on `message`, if present once.
pub fn header<'a>(message: &'a OwnedMessage, name: &str) -> Option<&'a str> {
    use rdkafka::message::Headers;
    let headers = message.headers()?;
    let values: Vec<_> = headers.iter().filter(|h| h.key == name).collect();
    match values.as_slice() {
        [only] => only.value.and_then(|v| std::str::from_utf8(v).ok()),
        _ => None,
    }
}

/// Records indexed by their `ce_id` header.
pub fn by_event_id(records: &[OwnedMessage]) -> HashMap<String, &OwnedMessage> {
    records
        .iter()
        .filter_map(|m| Some((header(m, "ce_id")?.to_owned(), m)))
        .collect()
}

/// The environment variable naming a PostgreSQL server the tests may create databases on.
pub const PG_ENV: &str = "CHOREOSCOPE_TEST_PG";
/// The environment variable naming the PostgreSQL binaries folder (`initdb`, `pg_ctl`).
pub const PG_BIN_ENV: &str = "CHOREOSCOPE_PG_BIN";

/// A fresh, empty database on the test PostgreSQL server; returns its URL.
///
/// # Panics
/// When `CHOREOSCOPE_TEST_PG` is unset (run through `scripts/test`, which starts a server).
pub async fn fresh_pg_database() -> String {
    use sqlx::Connection;
    let admin = std::env::var(PG_ENV).unwrap_or_else(|_| {
        panic!(
            "{PG_ENV} is not set: store tests need a real PostgreSQL server. Run `scripts/test`."
        )
    });
    let name = format!("cs_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {admin}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// A private PostgreSQL server the test owns, so it can stop and restart it (store outages).
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

fn as_postgres(bin: &std::path::Path, tool: &str, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl PrivatePostgres {
    /// Initialises a cluster in a temporary folder and starts it on a free port.
    pub fn start() -> Self {
        let bin: std::path::PathBuf = std::env::var(PG_BIN_ENV)
            .unwrap_or_else(|_| panic!("{PG_BIN_ENV} is not set. Run `scripts/test`."))
            .into();
        let dir = tempfile::Builder::new()
            .prefix("cs-pg-")
            .tempdir()
            .expect("temp dir");
        std::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let data = dir.path().join("data");
        as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let pg = Self { dir, bin, port };
        pg.resume();
        pg
    }

    /// The URL of database `postgres` on it.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server immediately, as a crash or an outage would.
    pub fn stop(&self) {
        let data = self.dir.path().join("data");
        as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Kills the server and every backend with SIGKILL, as an out-of-memory killer or a lost
    /// machine would: no shutdown, no checkpoint; connections simply vanish.
    pub fn kill(&self) {
        let pid_file = self.dir.path().join("data").join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).expect("postmaster.pid of a running server");
        let pid: i32 = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("a pid on the first line of postmaster.pid");
        // The backends first (children of the postmaster), then the postmaster itself.
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-P", &pid.to_string()])
            .status();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "postmaster {pid} survived SIGKILL"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Starts the server again (after a kill: crash recovery first).
    pub fn resume(&self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args([
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}
