//! A tansu broker on its SQLite engine that a test can kill and start again on the same port,
//! its topics, records and committed offsets kept in its file: a broker restart.
//!
//! The binary: `CHOREOSCOPE_TANSU` (else `tansu` on the `PATH`; `scripts/test` installs it).

use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::TestBroker;

/// tansu on SQLite in a folder of its own, killed when dropped.
pub struct RestartableBroker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl RestartableBroker {
    /// Starts tansu on a free port; waits until it listens.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut broker = Self {
            dir: tempfile::tempdir().expect("a folder for tansu"),
            port,
            child: None,
        };
        broker.resume();
        broker
    }

    /// The broker for clients.
    pub fn broker(&self) -> TestBroker {
        TestBroker::with_properties(format!("127.0.0.1:{}", self.port), Vec::new())
    }

    /// Kills tansu with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts tansu again on the same port over the same file; waits until it listens.
    pub fn resume(&mut self) {
        let tansu = std::env::var("CHOREOSCOPE_TANSU").unwrap_or_else(|_| "tansu".to_owned());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .expect("tansu's log");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&tansu)
            .current_dir(self.dir.path())
            .args(["broker", "--storage-engine", "sqlite://tansu.db"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .env(
                "RUST_LOG",
                std::env::var("CHOREOSCOPE_TANSU_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdout(log.try_clone().expect("tansu's log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {tansu}: {e} (run scripts/test, which installs it)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RestartableBroker {
    /// Kills tansu; when the test failed, keeps tansu's log (its path is printed) and prints the
    /// log's warnings and errors.
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let kept = std::env::temp_dir().join(format!("tansu-{}.log", self.port));
            let _ = std::fs::copy(self.dir.path().join("tansu.log"), &kept);
            let log = std::fs::read_to_string(&kept).unwrap_or_default();
            eprintln!(
                "--- tansu's warnings and errors (whole log: {}) ---",
                kept.display()
            );
            for line in log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .take(100)
            {
                eprintln!("{line}");
            }
        }
    }
}
