//! Who may use the HTTP server, through the binary: with no login (`--auth none`) it listens on
//! loopback addresses only, unless told `--allow-unauthenticated`; a token made by
//! `choreoscope token new` opens `serve --auth tokens`.

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
    wait_for(port);
}

/// Waits until something listens on `port` of loopback.
fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET /api/v1/me` on loopback `port` with `authorization`; the raw answer.
fn me(port: u16, authorization: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = authorization
        .map(|a| format!("authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        tcp,
        "GET /api/v1/me HTTP/1.1\r\nhost: x\r\n{auth}connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_token_made_by_token_new_logs_in_to_serve_with_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new(env!("CARGO_BIN_EXE_choreoscope"))
        .args(["token", "new", "--name", "ci-bot", "--role", "reader"])
        .output()
        .unwrap();
    assert!(made.status.success());
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let entry = String::from_utf8(made.stderr).unwrap();
    assert!(
        !entry.contains(&token),
        "the file entry must not hold the token"
    );
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, &entry).unwrap();
    let port = common::free_addr().port();
    let child = serve(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &[
            "--auth",
            "tokens",
            "--auth-tokens",
            tokens.to_str().unwrap(),
        ],
    )
    .spawn()
    .unwrap();
    let _child = common::KilledOnDrop(child);
    wait_for(port);
    let refused = me(port, None);
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let answer = me(port, Some(&format!("Bearer {token}")));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""name":"ci-bot""#), "{answer}");
    assert!(answer.contains(r#""role":"reader""#), "{answer}");
}
