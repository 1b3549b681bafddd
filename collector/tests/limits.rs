//! The HTTP server's edges: request bodies over `--max-request-bytes` are refused with 413, a
//! client over `--rate-limit` with 429 and `Retry-After` (others and the probes unaffected),
//! HTTPS with a certificate that is reloaded when its files change, and `--ops-listen`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use choreoscope::access::Access;
use choreoscope::http::{app_with, serve_ops, serve_with, AppState, Limits, ServerSettings, Tls};
use choreoscope::live::LiveFeed;
use choreoscope::metrics::Metrics;
use choreoscope::store::Store;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

async fn state(dir: &Path) -> AppState {
    let url = format!("sqlite://{}", dir.join("limits.db").display());
    AppState {
        store: Store::connect(&url).await.unwrap(),
        metrics: Arc::new(Metrics::new()),
        live: LiveFeed::new(),
        health: Default::default(),
        groups: Default::default(),
        progress: Default::default(),
        redaction: Default::default(),
    }
}

fn get(path: &str, peer: &str) -> Request<Body> {
    let mut request = Request::get(path).body(Body::empty()).unwrap();
    let addr: SocketAddr = format!("{peer}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    request
}

async fn json(response: axum::response::Response) -> serde_json::Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn limited(per_second: u32) -> Limits {
    Limits {
        rate_per_second: NonZeroU32::new(per_second),
        ..Limits::default()
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_request_bytes: 1000,
        ..Limits::default()
    };
    let app = app_with(state(dir.path()).await, Arc::new(Access::open()), limits);
    let request = Request::post("/auth/token")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "5000")
        .body(Body::from(vec![b' '; 5000]))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = json(response).await;
    assert_eq!(body["error"], "payload_too_large");
    assert!(body["detail"].as_str().unwrap().contains("1000 bytes"));
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        state(dir.path()).await,
        Arc::new(Access::open()),
        limited(2),
    );
    // A burst of twice the rate passes.
    for _ in 0..4 {
        let response = app
            .clone()
            .oneshot(get("/api/v1/me", "10.0.0.1"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = app
        .clone()
        .oneshot(get("/api/v1/me", "10.0.0.1"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    assert_eq!(json(response).await["error"], "rate_limited");
}

#[tokio::test]
async fn one_clients_rate_does_not_limit_another() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        state(dir.path()).await,
        Arc::new(Access::open()),
        limited(1),
    );
    for _ in 0..3 {
        let _ = app
            .clone()
            .oneshot(get("/api/v1/me", "10.0.0.1"))
            .await
            .unwrap();
    }
    let other = app.oneshot(get("/api/v1/me", "10.0.0.2")).await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn probes_and_scrapers_are_never_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        state(dir.path()).await,
        Arc::new(Access::open()),
        limited(1),
    );
    for path in ["/healthz", "/metrics"] {
        for _ in 0..10 {
            let response = app.clone().oneshot(get(path, "10.0.0.1")).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
    }
}

/// Writes a new self-signed certificate for `localhost` and its key to `dir`; returns the
/// certificate.
fn new_certificate(dir: &Path) -> rustls::pki_types::CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    made.cert.der().clone()
}

/// Connects over TLS trusting only `trusted`, asks `GET path`, and returns the status line and
/// the certificate the server presented.
async fn https_get(
    addr: SocketAddr,
    trusted: &rustls::pki_types::CertificateDer<'static>,
    path: &str,
) -> Result<(String, Vec<u8>), std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await?;
    let status = answer.lines().next().unwrap_or_default().to_owned();
    Ok((status, presented))
}

async fn tls_server(dir: &Path) -> (SocketAddr, CancellationToken) {
    let tls = Tls::load(
        &dir.join("cert.pem"),
        &dir.join("key.pem"),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let settings = ServerSettings {
        tls: Some(tls),
        ..ServerSettings::default()
    };
    tokio::spawn(serve_with(
        listener,
        state(dir).await,
        Arc::new(Access::open()),
        settings,
        cancel.clone(),
    ));
    (addr, cancel)
}

#[tokio::test]
async fn the_server_answers_over_https_with_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = new_certificate(dir.path());
    let (addr, cancel) = tls_server(dir.path()).await;
    let (status, presented) = https_get(addr, &cert, "/healthz").await.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(presented, cert.to_vec());
    cancel.cancel();
}

#[tokio::test]
async fn a_new_certificate_in_the_files_is_used_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = new_certificate(dir.path());
    let (addr, cancel) = tls_server(dir.path()).await;
    https_get(addr, &first, "/healthz").await.unwrap();
    // Modification times have a coarse grain on some filesystems.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = new_certificate(dir.path());
    let mut presented = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok((_, cert)) = https_get(addr, &second, "/healthz").await {
            presented = cert;
            break;
        }
    }
    assert_eq!(
        presented,
        second.to_vec(),
        "the new certificate was not taken up"
    );
    assert!(
        https_get(addr, &first, "/healthz").await.is_err(),
        "the old certificate is still served"
    );
    cancel.cancel();
}

#[tokio::test]
async fn a_certificate_that_does_not_load_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let error = Tls::load(
        &dir.path().join("cert.pem"),
        &dir.path().join("key.pem"),
        Duration::from_secs(1),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("cannot use the TLS certificate"),
        "{error}"
    );
    assert!(!error.contains('\n'), "{error}");
}

#[tokio::test]
async fn the_ops_address_serves_metrics_and_healthz_only_without_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    tokio::spawn(serve_ops(
        listener,
        state(dir.path()).await,
        None,
        cancel.clone(),
    ));
    let ask = |path: &'static str| async move {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        answer.lines().next().unwrap().to_owned()
    };
    assert_eq!(ask("/healthz").await, "HTTP/1.1 200 OK");
    assert_eq!(ask("/metrics").await, "HTTP/1.1 200 OK");
    assert_eq!(ask("/api/v1/me").await, "HTTP/1.1 404 Not Found");
    cancel.cancel();
}
