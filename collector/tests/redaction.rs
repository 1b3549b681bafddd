//! Redaction at ingest, end to end: records carrying a secret in a masked pointer, a hashed
//! pointer, a credential header and a payload that is not JSON are collected by the `collect`
//! binary (its `--config` file's `[redaction]` table) into SQLite and PostgreSQL; the secrets'
//! bytes are nowhere in the database files or in a `pg_dump`, and the hashed e-mail still finds
//! the flow.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use choreoscope_e2e::{fresh_pg_database, TestBroker, PG_BIN_ENV, PG_ENV};
use choreoscope_sdk::OutgoingEvent;
use common::{produce_raw, stamped, CollectorProcess, NO_GROUP_POLLS};

const CARD: &str = "4111-SECRET-CARD-0042";
const EMAIL: &str = "alice.secret@example.com";
const BEARER: &str = "Bearer SECRET-BEARER-TOKEN-77";
const NOT_JSON: &str = "SECRET-IN-A-PAYLOAD-THAT-IS-NOT-JSON";
const HASH_KEY: &str = "redaction-test-key-0123456789";

/// Every secret the records carry.
const SECRETS: [&str; 4] = [CARD, EMAIL, BEARER, NOT_JSON];

/// The config file: key rules on the topic, and its redaction.
fn config(dir: &Path, topic: &str) -> String {
    let key = dir.join("hash.key");
    std::fs::write(&key, HASH_KEY).unwrap();
    let path = dir.join("choreoscope.toml");
    std::fs::write(
        &path,
        format!(
            r#"
key_rules = ["{topic} : /orderId -> order.id", "{topic} : /customer/email -> customer.email"]
[redaction]
hash_key_file = "{key}"
[[redaction.topics]]
topics = "{topic}"
mask = ["/card/number"]
hash = ["/customer/email"]
"#,
            key = key.display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Produces order `order`'s record with every secret, and one record that is not JSON.
async fn produce_secrets(broker: &TestBroker, topic: &str, order: &str) {
    let producer = broker.producer().unwrap();
    let mut headers = stamped(OutgoingEvent::new(topic, "OrderCreated"), "checkout", None);
    headers.push("Authorization", Some(BEARER.as_bytes().to_vec()));
    let payload = serde_json::json!({
        "orderId": order,
        "card": {"number": CARD},
        "customer": {"email": EMAIL, "tier": "gold"},
    })
    .to_string();
    produce_raw(
        &producer,
        topic,
        Some(b"k-1"),
        Some(payload.as_bytes()),
        &headers,
    )
    .await;
    let other = stamped(OutgoingEvent::new(topic, "Legacy"), "legacy", None);
    produce_raw(
        &producer,
        topic,
        None,
        Some(format!("plain text {NOT_JSON}").as_bytes()),
        &other,
    )
    .await;
}

/// GETs `path` from `collector` until it answers with JSON holding `wanted`, for up to 60 s.
fn wait_for_answer(collector: &CollectorProcess, path: &str, wanted: &str) -> String {
    let start = Instant::now();
    loop {
        // Refused while the collector starts.
        let up = std::net::TcpStream::connect(collector.listen).is_ok();
        let body = if up {
            collector.get(path)
        } else {
            String::new()
        };
        if body.contains(wanted) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{path} never held {wanted}: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Checks what the collector answers: the e-mail in clear finds the flow through its hash, the
/// event says what was redacted, and no answer shows a secret.
fn check_answers(collector: &CollectorProcess, order: &str) {
    let by_order = wait_for_answer(
        collector,
        &format!("/api/v1/keys/order.id/{order}"),
        "\"matched_events\":1",
    );
    let by_email = wait_for_answer(
        collector,
        &format!("/api/v1/keys/customer.email/{EMAIL}"),
        "\"matched_events\":1",
    );
    let by_order_json: serde_json::Value = serde_json::from_str(&by_order).unwrap();
    let by_email_json: serde_json::Value = serde_json::from_str(&by_email).unwrap();
    assert_eq!(
        by_email_json["flows"][0]["events"], by_order_json["flows"][0]["events"],
        "the e-mail in clear finds the order's flow"
    );
    let detail = event_of_type(collector, "OrderCreated");
    let event: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(
        event["payload"]["body"]["data"]
            .as_str()
            .map(|p| p.contains(order)),
        Some(true)
    );
    assert_eq!(
        event["redactions"]["masked"],
        serde_json::json!(["/card/number"])
    );
    assert_eq!(
        event["redactions"]["hashed"],
        serde_json::json!(["/customer/email"])
    );
    assert_eq!(
        event["redactions"]["headers"],
        serde_json::json!(["Authorization"])
    );
    // The e-mail answer echoes the value asked for; nothing else shows it.
    for (body, asked) in [(&by_order, ""), (&by_email, EMAIL), (&detail, "")] {
        for secret in SECRETS.into_iter().filter(|s| *s != asked) {
            assert!(!body.contains(secret), "{secret} in an answer: {body}");
        }
    }
}

/// The detail (JSON text) of the collected event of type `event_type`.
fn event_of_type(collector: &CollectorProcess, event_type: &str) -> String {
    let page = wait_for_answer(
        collector,
        &format!("/api/v1/search?type={event_type}"),
        event_type,
    );
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let id = page["events"][0]["id"].as_str().unwrap().to_owned();
    collector.get(&format!("/api/v1/events/{}", urlencode(&id)))
}

/// Checks the record that is not JSON was stored without its payload, saying why.
fn check_withheld(collector: &CollectorProcess) {
    let detail = event_of_type(collector, "Legacy");
    let event: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert!(event["payload"].is_null(), "{detail}");
    assert_eq!(event["problems"][0]["kind"], "payload_withheld", "{detail}");
    assert!(
        event["redactions"]["payload"]
            .as_str()
            .is_some_and(|p| p.starts_with("withheld: not JSON")),
        "{detail}"
    );
    assert!(!detail.contains(NOT_JSON), "{detail}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Produces the secrets of order `order` on a topic of their own, collects them into `db` with
/// the redaction config (written in `dir`), and checks the answers; returns the collector, still
/// running.
async fn collect_secrets(
    broker: &TestBroker,
    dir: &Path,
    db: &str,
    order: &str,
) -> CollectorProcess {
    let topic = TestBroker::unique_topic("redacted");
    broker.create_topics(&[&topic], 1).await.unwrap();
    let config = config(dir, &topic);
    produce_secrets(broker, &topic, order).await;
    let mut flags = vec!["--config", config.as_str()];
    flags.extend(NO_GROUP_POLLS);
    flags.extend(["--otlp-grpc", "off", "--otlp-http", "off"]);
    let collector = CollectorProcess::start_with(broker, db, &topic, &topic, &flags);
    check_answers(&collector, order);
    check_withheld(&collector);
    collector
}

/// Whether any of `bytes` holds `secret`.
fn holds(bytes: &[u8], secret: &str) -> bool {
    bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_the_sqlite_files_and_the_hashed_email_still_finds_the_flow() {
    let broker = TestBroker::from_env();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("store.db").display());
    let collector = collect_secrets(&broker, dir.path(), &db, "o-redacted-1").await;
    let metrics = collector.get("/metrics");
    for kind in ["masked", "hashed", "header", "payload"] {
        assert!(
            metrics.contains(&format!("choreoscope_redactions_total{{kind=\"{kind}\"}}")),
            "{kind} counted: {metrics}"
        );
    }
    assert!(collector.stop().success());
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("store.db")
        {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        for secret in SECRETS {
            assert!(!holds(&bytes, secret), "{secret} in {}", path.display());
        }
    }
    assert!(files >= 1, "the store's files were read");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_postgresql_or_its_dump() {
    let broker = TestBroker::from_env();
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_pg_database().await;
    let collector = collect_secrets(&broker, dir.path(), &db, "o-redacted-2").await;
    assert!(collector.stop().success());
    let bin =
        std::env::var(PG_BIN_ENV).map_or_else(|_| "pg_dump".into(), |b| format!("{b}/pg_dump"));
    let dump = std::process::Command::new(bin)
        .args(["--data-only", &db])
        .output()
        .expect("run pg_dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(
        holds(&dump.stdout, "o-redacted-2"),
        "the dump holds the collected events"
    );
    for secret in SECRETS {
        assert!(!holds(&dump.stdout, secret), "{secret} in pg_dump of {db}");
    }
    assert!(std::env::var(PG_ENV).is_ok());
}
