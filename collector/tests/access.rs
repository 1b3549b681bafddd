//! Who may use the HTTP server: with no login (`--auth none`, the only mode yet) the binary
//! listens on loopback addresses only, unless told `--allow-unauthenticated`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `serve` on `listen` over a store in `dir`, with `extra` flags.
fn serve(dir: &std::path::Path, listen: &str, extra: &[&str]) -> Command {
    let db = format!("sqlite://{}", dir.join("access.db").display());
    let mut command = Command::new(env!("CARGO_BIN_EXE_choreoscope"));
    command
        .args(["serve", "--db", &db, "--listen", listen])
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("CHOREOSCOPE_ALLOW_UNAUTHENTICATED")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn serving_without_a_login_on_an_address_others_reach_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_addr().port();
    let output = serve(dir.path(), &format!("0.0.0.0:{port}"), &[])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with(&format!(
            "error: refusing to serve every stored event without a login on 0.0.0.0:{port}"
        )),
        "{stderr}"
    );
    assert!(
        !dir.path().join("access.db").exists(),
        "refused before the store was opened"
    );
}

#[test]
fn allow_unauthenticated_serves_on_every_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_addr().port();
    let child = serve(
        dir.path(),
        &format!("0.0.0.0:{port}"),
        &["--auth", "none", "--allow-unauthenticated"],
    )
    .spawn()
    .unwrap();
    let _child = common::KilledOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
}
