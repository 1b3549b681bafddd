//! Viewer benchmark: time until a 2,000-event flow is laid out and interactive in headless
//! Chromium (target: under 2 s). Fills a SQLite store with two 2,000-event flows of different
//! shapes, serves the real API and the embedded viewer, and runs `ui/e2e/bench.mjs`
//! (playwright-core + Debian's chromium), which opens each flow several times and reports, per
//! run, the API answer, the layout and the total until a click on a node shows its details.
//!
//! Needs the viewer built (`npm --prefix ui run build`, which `scripts/bench` does) and Chromium.
//!
//! ```text
//! scripts/bench
//! BENCH_UI_EVENTS=2000 BENCH_UI_RUNS=5 cargo bench -p choreoscope --bench ui
//! ```

use std::process::Command;
use std::sync::Arc;

use choreoscope::http::{serve, AppState};
use choreoscope::live::LiveFeed;
use choreoscope::metrics::Metrics;
use choreoscope::store::Store;
use tokio_util::sync::CancellationToken;

mod common;
use common::{env_usize, record};

/// The cause of event `i` of a flow, if any.
type CauseOf = Box<dyn Fn(usize) -> Option<usize>>;

/// The flows: (key value, cause of event `i`).
fn shapes() -> Vec<(usize, CauseOf)> {
    vec![
        // A tree: every event makes three reactions (7 levels, a wide last column).
        (1, Box::new(|i| (i > 0).then(|| (i - 1) / 3))),
        // A long chain whose every step also fans out to four side reactions.
        (
            2,
            Box::new(|i| match i {
                0 => None,
                _ if i % 5 == 0 => Some(i - 5),
                _ => Some(i - i % 5),
            }),
        ),
    ]
}

fn main() {
    let events = env_usize("BENCH_UI_EVENTS", 2000);
    let runs = env_usize("BENCH_UI_RUNS", 5);
    assert!(
        choreoscope::http::web::is_embedded(),
        "the viewer is not built: npm --prefix ui install && npm --prefix ui run build, then run this again"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ui-bench.db").display());
    rt.block_on(async {
        let store = Store::connect(&url).await.unwrap();
        let base = chrono::Utc::now().timestamp_micros() - 600_000_000;
        let mut offset = 0;
        for (flow, cause) in shapes() {
            let batch: Vec<_> = (0..events)
                .map(|i| {
                    offset += 1;
                    record(flow, i, cause(i), offset, base)
                })
                .collect();
            store.write_batch(&batch).await.unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let state = AppState {
            store: store.clone(),
            metrics: Arc::new(Metrics::new()),
            live: LiveFeed::new(),
        health: Default::default(),
        groups: Default::default(),
        progress: Default::default(),
        redaction: Default::default(),
        };
        let server = tokio::spawn(serve(
            listener,
            state,
            Arc::new(choreoscope::access::Access::open()),
            cancel.clone(),
        ));
        let ui = concat!(env!("CARGO_MANIFEST_DIR"), "/../ui");
        let paths = ["/flows/key/order.id/o-1", "/flows/key/order.id/o-2"];
        println!("viewer benchmark: two flows of {events} events (tree of fan-out 3; chain with fan-outs), {runs} runs each");
        if std::env::var_os("BENCH_UI_HOLD").is_some() {
            println!("serving on http://{addr} until killed (BENCH_UI_HOLD)");
            std::future::pending::<()>().await;
        }
        let status = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .current_dir(ui)
                .arg("e2e/bench.mjs")
                .arg(format!("http://{addr}"))
                .arg(runs.to_string())
                .args(paths)
                .status()
        })
        .await
        .unwrap()
        .expect("node runs (install Node.js)");
        cancel.cancel();
        server.await.unwrap().unwrap();
        store.close().await;
        assert!(status.success(), "ui/e2e/bench.mjs failed");
    });
}
