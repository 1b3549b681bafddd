//! `choreoscope serve` has no ingest loop of its own: its live feed (`/api/v1/live`) follows what
//! a collector in another process stores. Here the "collector" is a store handle of the test; the
//! watcher is a raw HTTP client of the served binary.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use choreoscope::store::Store;
use common::baggage_record;

/// Serves `db` with the binary, watches order o-7 on its live feed, stores events of o-7 and o-8
/// through another handle, and expects exactly o-7's to be announced.
async fn serve_announces_what_another_process_stores(db: &str) {
    let store = Store::connect(db).await.unwrap();
    let addr = common::free_addr().to_string();
    let mut serve = common::KilledOnDrop(
        Command::new(env!("CARGO_BIN_EXE_choreoscope"))
            .args(["serve", "--listen", &addr, "--follow-ms", "50", "--db", db])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = loop {
        if let Ok(s) = std::net::TcpStream::connect(&addr) {
            break s;
        }
        assert!(Instant::now() < deadline, "serve never listened");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut writer = stream.try_clone().unwrap();
    write!(
        writer,
        "GET /api/v1/live?key=order.id%3Do-7 HTTP/1.1\r\nHost: test\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut lines = BufReader::new(stream).lines();
    // Keep-alive comments every 15 s reset the read timeout: the deadline is checked per line.
    let mut next_event = move || -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut name = String::new();
        for line in lines.by_ref() {
            let line = line.expect("the feed answered within 20 s");
            assert!(Instant::now() < deadline, "no event within 20 s");
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_owned();
            } else if let Some(data) = line.strip_prefix("data: ") {
                if !name.is_empty() {
                    return (name, data.to_owned());
                }
            }
        }
        panic!("the feed ended");
    };
    assert_eq!(next_event().0, "ready");
    // The follower looks every 50 ms; let it take its place before anything is stored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    store
        .write_batch(&[
            baggage_record("o7-created", "order.id=o-7", 0),
            baggage_record("o8-created", "order.id=o-8", 1),
            baggage_record("o7-paid", "order.id=o-7", 2),
        ])
        .await
        .unwrap();
    let (name, data) = next_event();
    assert_eq!(name, "stored");
    let told: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(told["ids"], serde_json::json!(["o7-created", "o7-paid"]));
    unsafe { libc::kill(serve.0.id() as i32, libc::SIGTERM) };
    assert!(serve.0.wait().unwrap().success(), "serve stops cleanly");
}

#[tokio::test]
async fn serve_over_sqlite_announces_what_a_collector_stores() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("live.db").display());
    serve_announces_what_another_process_stores(&db).await;
}

#[tokio::test]
async fn serve_over_postgres_announces_what_a_collector_stores() {
    let db = choreoscope_e2e::fresh_pg_database().await;
    serve_announces_what_another_process_stores(&db).await;
}
