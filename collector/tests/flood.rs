//! Under a connection flood the collector keeps answering: three client processes, each from
//! its own loopback address, try to hold more live streams and idle connections than the
//! collector has descriptors; the caps shed them quickly, the collector never runs out of
//! descriptors, and the key query and `/healthz` from another address answer every probe within
//! a second.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The descriptor limit the collector runs under (soft and hard).
const DESCRIPTORS: u64 = 1024;
/// Connections each flooding process tries to hold.
const ATTEMPTS_PER_CLIENT: usize = 900;
/// The flooding processes and the loopback address each one uses.
const FLOODERS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// Opens `n` connections from `source` to `target` and holds them: every other one asks for a
/// live stream, the rest say nothing. Prints how many were answered 429/503 (refused) and how
/// many stayed open without an answer, then waits to be killed.
const FLOODER: &str = r#"
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
source, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
held, refused, failed = [], 0, 0
for i in range(n):
    s = socket.socket()
    try:
        s.bind((source, 0))
        s.connect((host, port))
        if i % 2 == 0:
            s.sendall(b"GET /api/v1/live?key=order.id%3Do-1 HTTP/1.1\r\nhost: x\r\n\r\n")
        held.append(s)
    except OSError:
        failed += 1
        s.close()
time.sleep(1.5)
for s in held:
    s.setblocking(False)
    try:
        head = s.recv(64)
        if head.startswith(b"HTTP/1.1 429") or head.startswith(b"HTTP/1.1 503") or head == b"":
            refused += 1
    except BlockingIOError:
        pass
    except OSError:
        refused += 1
print(f"held={len(held)} refused={refused} failed={failed}", flush=True)
time.sleep(120)
"#;

/// One GET on a new connection from 127.0.0.1; the status line, or why there is none.
fn probe(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

/// A store holding one event of `order.id=o-1`.
async fn store_with_one_order(dir: &std::path::Path) -> String {
    let db = format!("sqlite://{}", dir.join("flood.db").display());
    let store = choreoscope::store::Store::connect(&db).await.unwrap();
    store
        .write_batch(&[common::baggage_record("e-1", "order.id=o-1", 0)])
        .await
        .unwrap();
    store.close().await;
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_query_and_healthz_answer_every_probe_while_a_flood_is_shed() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_one_order(dir.path()).await;
    let addr = common::free_addr();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_choreoscope"));
    serve
        .args(["serve", "--db", &db, "--listen", &addr.to_string()])
        .args([
            "--max-connections-per-client",
            "200",
            "--max-streams-per-client",
            "100",
        ])
        // Idle connections are held for the whole test: the caps, not the timeout, shed them.
        .args(["--header-read-timeout", "120s"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // SAFETY: setrlimit only changes the child's own limit, between fork and exec.
    unsafe {
        serve.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: DESCRIPTORS,
                rlim_max: DESCRIPTORS,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let _serve = common::KilledOnDrop(serve.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe(addr, "/healthz").is_err() {
        assert!(Instant::now() < deadline, "serve never answered");
        std::thread::sleep(Duration::from_millis(50));
    }

    let flooders: Vec<common::KilledOnDrop> = FLOODERS
        .iter()
        .map(|source| {
            let child = Command::new("python3")
                .args(["-c", FLOODER, source, "127.0.0.1"])
                .arg(addr.port().to_string())
                .arg(ATTEMPTS_PER_CLIENT.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            common::KilledOnDrop(child)
        })
        .collect();
    assert!(
        FLOODERS.len() * ATTEMPTS_PER_CLIENT > DESCRIPTORS as usize,
        "the flood must ask for more than the collector's descriptors"
    );

    // Probe while the flood opens its connections and holds them.
    for round in 0..20 {
        for path in ["/api/v1/keys/order.id/o-1", "/healthz"] {
            let asked = Instant::now();
            let answer = probe(addr, path);
            let took = asked.elapsed();
            assert_eq!(
                answer.as_deref(),
                Ok("HTTP/1.1 200 OK"),
                "round {round}: {path}"
            );
            assert!(
                took < Duration::from_secs(1),
                "round {round}: {path} took {took:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut flooders = flooders;
    let mut refused = 0;
    for flooder in &mut flooders {
        let mut line = String::new();
        let stdout = flooder.0.stdout.as_mut().unwrap();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0] as char);
        }
        let count = |name: &str| -> usize {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                .parse()
                .unwrap()
        };
        assert_eq!(
            count("failed"),
            0,
            "every connection was accepted by the kernel: {line}"
        );
        refused += count("refused");
    }
    // Each address holds at most its 200; the rest were told no.
    assert!(
        refused >= FLOODERS.len() * (ATTEMPTS_PER_CLIENT - 200),
        "only {refused} refused"
    );

    // A new client from a flooding address is refused at once, not left hanging.
    let asked = Instant::now();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap().into_std().unwrap();
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 429");
    assert!(asked.elapsed() < Duration::from_secs(1));

    let metrics = std::str::from_utf8(&{
        let mut tcp = TcpStream::connect(addr).unwrap();
        write!(
            tcp,
            "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        tcp.read_to_end(&mut out).unwrap();
        out
    })
    .unwrap()
    .to_owned();
    let shed: f64 = metrics
        .lines()
        .find(|l| l.starts_with(r#"choreoscope_http_shed_total{reason="connections_per_client"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no shed connections in /metrics"));
    assert!(
        !metrics.contains(r#"reason="accept_failed""#),
        "the collector ran out of descriptors:\n{metrics}"
    );
    let over_cap = FLOODERS.len() * (ATTEMPTS_PER_CLIENT - 200);
    assert!(
        shed >= over_cap as f64,
        "{shed} shed, {over_cap} over the cap"
    );
}
