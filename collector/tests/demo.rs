//! `choreoscope demo` as a newcomer runs it: it prints the URL and a query for an interesting
//! order, its API answers for that order with the trouble the demo promises, `query` prints the
//! flow, it stops cleanly on SIGTERM, and `serve` answers over the store it leaves.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str, path: &str) -> Option<(u16, serde_json::Value)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: demo\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    Some((status, serde_json::from_str(body).ok()?))
}

#[test]
fn the_demo_serves_the_order_it_points_at_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let addr = common::free_addr().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_choreoscope"))
        .args(["demo", "--listen", &addr, "--rate", "5", "--db"])
        .arg(&db)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("Ctrl-C") {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the demo exited early: {printed}"
        );
        printed.push_str(&line);
    }
    assert!(printed.contains(&format!("http://{addr}/")), "{printed}");
    let order = printed
        .split("query key order.id ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a query command for an order")
        .to_owned();
    assert_eq!(
        order, "o-1007",
        "the first order whose payment is never confirmed"
    );

    // Its flow reaches the payment and stops there; a doubly processed order shows as such.
    let deadline = Instant::now() + Duration::from_secs(90);
    let answer = loop {
        if let Some((200, a)) = get(&addr, &format!("/api/v1/keys/order.id/{order}")) {
            if a["flows"][0]["events"].as_array().map_or(0, Vec::len) >= 3 {
                break a;
            }
        }
        assert!(Instant::now() < deadline, "no answer for {order}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let flow = &answer["flows"][0];
    assert_eq!(
        flow["services"],
        serde_json::json!(["shop", "order", "payment"]),
        "{answer}"
    );
    assert_eq!(flow["ends"][0]["type"], "PaymentCreated", "{answer}");
    let twice = loop {
        if let Some((200, a)) = get(&addr, "/api/v1/keys/order.id/o-1009") {
            let flagged = a["graph"]["nodes"].as_array().unwrap().iter().any(|n| {
                n["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f == "duplicate_reaction")
            });
            if flagged {
                break a;
            }
        }
        assert!(
            Instant::now() < deadline,
            "o-1009 never showed its double processing"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(twice["services"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "inventory"));
    // The OpenTelemetry-only shipping service: linked through its spans, and o-1031's flow failed
    // with the exception its handler raised.
    let shipped = loop {
        if let Some((200, a)) = get(&addr, "/api/v1/keys/order.id/o-1031") {
            if a["flows"][0]["health"]["status"] == "failed" {
                break a;
            }
        }
        assert!(Instant::now() < deadline, "o-1031 never failed on shipping");
        std::thread::sleep(Duration::from_millis(300));
    };
    let failure = &shipped["flows"][0]["health"]["failures"][0];
    assert_eq!(failure["service"], "shipping", "{shipped}");
    assert_eq!(
        failure["exception"]["message"],
        "no courier serves the address of o-1031"
    );
    let linked = loop {
        if let Some((200, a)) = get(&addr, "/api/v1/keys/order.id/o-1001") {
            let through_spans = a["graph"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["rule"] == "span_link");
            if through_spans {
                break a;
            }
        }
        assert!(
            Instant::now() < deadline,
            "o-1001's shipment never linked through spans"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(linked["services"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "shipping"));
    let (status, coverage) = get(&addr, "/api/v1/services?window=1h").unwrap();
    assert_eq!(status, 200);
    let shipping = coverage["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "shipping")
        .unwrap_or_else(|| panic!("{coverage}"));
    assert_eq!(shipping["lineage"], "spans", "{shipping}");
    assert_eq!(shipping["with_ce_id"], 0, "{shipping}");

    let (status, problems) = loop {
        let r = get(&addr, "/api/v1/search?problem=invalid_traceparent").unwrap();
        if !r.1["events"].as_array().unwrap().is_empty() || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(status, 200);
    assert_eq!(problems["events"][0]["source"], "legacy-erp", "{problems}");

    // The CLI reads the same store beside the running demo.
    let query = Command::new(env!("CARGO_BIN_EXE_choreoscope"))
        .args(["query", "key", "order.id", &order, "--db"])
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&query.stdout);
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    assert!(text.contains("ends at PaymentCreated (payment)"), "{text}");

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");

    // `serve` answers over the store the demo left behind.
    let addr = common::free_addr().to_string();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_choreoscope"))
        .args(["serve", "--listen", &addr, "--db"])
        .arg(format!("sqlite://{}", db.display()))
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let served = loop {
        if let Some(answer) = get(&addr, &format!("/api/v1/keys/order.id/{order}")) {
            break answer;
        }
        assert!(Instant::now() < deadline, "serve never answered");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(served.0, 200);
    assert_eq!(served.1["flows"][0]["ends"][0]["type"], "PaymentCreated");
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    assert!(serve.wait().unwrap().success());
}
