//! What the end-to-end benchmarks share around the broker and the collector binary: a fresh
//! topic, a fresh PostgreSQL database, and the events a running collector has ingested.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

fn admin(brokers: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap()
}

/// Deletes `topic`; returns why not when the broker refuses.
pub async fn delete_topic(brokers: &str, topic: &str) -> Result<(), String> {
    let results = admin(brokers)
        .delete_topics(&[topic], &AdminOptions::new())
        .await
        .map_err(|e| e.to_string())?;
    results
        .into_iter()
        .try_for_each(|r| r.map(drop).map_err(|(_, e)| e.to_string()))
}

/// Creates a topic named `PREFIX-<uuid>` with `partitions` partitions on `brokers`.
pub async fn fresh_topic(brokers: &str, prefix: &str, partitions: i32) -> String {
    let topic = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    admin(brokers)
        .create_topics(
            &[NewTopic::new(
                &topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    topic
}

/// Creates a database `cs_bench_<uuid>` on the server `admin` connects to; returns its URL and
/// its name.
pub async fn fresh_pg(admin: &str) -> (String, String) {
    use sqlx::Connection;
    let name = format!("cs_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    (
        format!("{}/{name}", admin.rsplit_once('/').unwrap().0),
        name,
    )
}

/// `choreoscope_events_ingested_total` of the collector listening at `listen` (0 while it does
/// not answer).
pub fn ingested(listen: &str) -> u64 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(listen) else {
        return 0;
    };
    let _ = write!(s, "GET /metrics HTTP/1.0\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines()
        .filter(|l| l.starts_with("choreoscope_events_ingested_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
