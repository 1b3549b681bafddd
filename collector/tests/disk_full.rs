//! The SQLite store's disk fills up during ingest and later has room again: the collector holds
//! consumption back and says why (metrics, `/healthz`, the progress answer), queries keep answering
//! from what is stored, and once space returns ingest resumes with every event stored exactly once.
//!
//! The disk is a tmpfs of its own, mounted for the test (it runs as root, as CI does); a
//! filler file takes its free space and is deleted to give it back.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use choreoscope::store::Store;
use choreoscope_e2e::TestBroker;
use common::{metric, produce_many, wait_for, CollectorProcess, NO_GROUP_POLLS};

/// A tmpfs of a fixed size, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "could not mount a {megabytes} MiB tmpfs at {} (the disk-full test needs root)",
            dir.path().display()
        );
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Takes every free byte with a file; returns how many it took.
    fn fill(&self) -> u64 {
        let mut filler = std::fs::File::create(self.filler()).unwrap();
        let mut taken = 0u64;
        for chunk in [1 << 20, 4096, 1] {
            let block = vec![0u8; chunk];
            while filler.write_all(&block).is_ok() {
                taken += chunk as u64;
            }
        }
        taken
    }

    /// Gives the filler's space back.
    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    fn filler(&self) -> PathBuf {
        self.path("filler")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn get(collector: &CollectorProcess, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{}{path}", collector.listen))
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_ingest_back_and_loses_nothing_once_space_returns() {
    let broker = TestBroker::from_env();
    let topic = TestBroker::unique_topic("diskfull");
    broker.create_topics(&[&topic], 3).await.unwrap();
    let producer = broker.producer().unwrap();
    // Room for every event once the filler is gone; the filler takes whatever is free.
    let disk = SmallDisk::mount(256);
    let db = sqlite_url(&disk.path("store.db"));
    let store = Store::connect(&db).await.unwrap();
    let mut collector = CollectorProcess::start_with(
        &broker,
        &db,
        &format!("diskfull-{}", uuid::Uuid::new_v4().simple()),
        &topic,
        &[
            NO_GROUP_POLLS.as_slice(),
            &["--otlp-grpc", "off", "--otlp-http", "off"],
        ]
        .concat(),
    );

    produce_many(&producer, &topic, 2_000).await;
    let before = wait_for(&store, 2_000, Duration::from_secs(120)).await;
    assert_eq!(before.deliveries, 2_000, "stored before the disk fills");

    let taken = disk.fill();
    assert!(taken > 0, "the filler took the free space");
    produce_many(&producer, &topic, 30_000).await;

    // Held back: paused, counted by reason, and unhealthy. The first failures may clear once or
    // twice (a checkpoint truncating the write-ahead log frees a little), so wait for a stretch of
    // them: the 30 000 events do not fit in what the log can give back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let during = loop {
        assert!(collector.running(), "the collector survives a full disk");
        let text = get(&collector, "/metrics").await.1;
        let failures = metric(
            &text,
            r#"choreoscope_store_errors_total{reason="disk_full"}"#,
        );
        if metric(&text, "choreoscope_paused") == 1.0 && failures >= 4.0 {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumption not held back 120 s after the disk filled:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        metric(&during, r#"choreoscope_store_errors_total{reason="other"}"#),
        0.0,
        "every failure counted as disk_full:\n{during}"
    );
    let (status, body) = get(&collector, "/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("disk_full"), "{body}");

    let progress: serde_json::Value =
        serde_json::from_str(&get(&collector, "/api/v1/ingest/progress").await.1).unwrap();
    assert_eq!(progress["held_back"]["reason"], "disk_full", "{progress}");

    // Queries answer from what is stored.
    let (status, body) = get(&collector, "/api/v1/keys/order.id/o-1").await;
    assert_eq!(status, 200, "{body}");
    let stored = store.counts().await.unwrap();
    assert!(
        (2_000..32_000).contains(&stored.deliveries),
        "held back part-way: {stored:?}"
    );

    disk.free();
    let after = wait_for(&store, 32_000, Duration::from_secs(300)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = store.counts().await.unwrap();
    assert_eq!(after.deliveries, 32_000);
    assert_eq!(
        (counts.events, counts.deliveries),
        (32_000, 32_000),
        "nothing lost, nothing doubled"
    );
    let (status, body) = get(&collector, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"), "healthy again");
    assert_eq!(
        metric(&get(&collector, "/metrics").await.1, "choreoscope_paused"),
        0.0,
        "resumed"
    );
    assert!(collector.stop().success());
}
