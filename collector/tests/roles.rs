//! Access control on the HTTP server: API tokens and their roles on every endpoint, topic
//! patterns that turn other teams' events into opaque nodes, the trusted proxy's headers, the
//! viewer's token login, `/metrics` behind a login, and the audit log. Runs the real router
//! over a real SQLite store; needs no broker.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use choreoscope::access::tokens::{entry, new_token};
use choreoscope::access::{Access, AccessArgs, AuthMode, Grants, OpsAccess, Role};
use choreoscope::http::{app_with_access, AppState};
use choreoscope::live::LiveFeed;
use choreoscope::metrics::Metrics;
use choreoscope::record::{Interpreter, RawRecord};
use choreoscope::rules::Rules;
use choreoscope::store::Store;
use choreoscope_sdk::RecordHeaders;
use http_body_util::BodyExt;
use tower::ServiceExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// In the payload of every event: only readers and admins may see it.
const PAYLOAD_SECRET: &str = "card-4111";
/// In a header of every event: only readers and admins may see it.
const HEADER_SECRET: &str = "private-note";

/// One flow over two teams' topics: OrderCreated (orders) → PaymentTaken (payments) →
/// OrderConfirmed (orders), all carrying order.id=o-1.
fn records() -> Vec<choreoscope::record::EventRecord> {
    let flow = [
        ("e-1", "orders", "OrderCreated", "order-svc", None),
        (
            "e-2",
            "payments",
            "PaymentTaken",
            "payment-svc",
            Some("e-1"),
        ),
        ("e-3", "orders", "OrderConfirmed", "order-svc", Some("e-2")),
    ];
    let interpreter = Interpreter::new(Rules::default(), 4096);
    flow.iter()
        .enumerate()
        .map(|(i, (id, topic, kind, source, cause))| {
            let mut h = RecordHeaders::new();
            h.set("ce_id", *id);
            h.set("ce_type", *kind);
            h.set("ce_source", *source);
            h.set("ce_correlationid", "c-1");
            h.set("baggage", "order.id=o-1");
            h.set("x-note", HEADER_SECRET);
            h.set("traceparent", format!("00-{TRACE}-00f067aa0ba902b{i}-01"));
            if let Some(cause) = cause {
                h.set("ce_causationid", *cause);
            }
            let payload = format!(r#"{{"card":"{PAYLOAD_SECRET}"}}"#);
            interpreter.interpret(
                RawRecord {
                    topic,
                    partition: 0,
                    offset: i as i64,
                    key: Some(b"o-1"),
                    payload: Some(payload.as_bytes()),
                    headers: &h,
                    timestamp_ms: Some(1_767_000_000_000 + i as i64 * 1000),
                },
                1,
            )
        })
        .collect()
}

/// The tokens of the test, one per role, and the reader's limited to `orders`.
struct Tokens {
    viewer: String,
    reader: String,
    orders_reader: String,
    admin: String,
    file: String,
}

fn tokens() -> Tokens {
    let (viewer, reader, orders_reader, admin) =
        (new_token(), new_token(), new_token(), new_token());
    let file = [
        entry("vera", &viewer, Role::Viewer, &[]),
        entry("rita", &reader, Role::Reader, &[]),
        entry("otto", &orders_reader, Role::Reader, &["orders".to_owned()]),
        entry("ada", &admin, Role::Admin, &[]),
    ]
    .join("\n");
    Tokens {
        viewer,
        reader,
        orders_reader,
        admin,
        file,
    }
}

struct Server {
    state: AppState,
    access: Arc<Access>,
    dir: tempfile::TempDir,
}

async fn server(args: impl FnOnce(&std::path::Path) -> AccessArgs, grants: Grants) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("roles.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.write_batch(&records()).await.unwrap();
    let state = AppState {
        store,
        metrics: Arc::new(Metrics::new()),
        live: LiveFeed::new(),
        health: Default::default(),
        groups: Default::default(),
        progress: Default::default(),
        redaction: Default::default(),
    };
    let access = Arc::new(Access::from_args(&args(dir.path()), grants).unwrap());
    Server { state, access, dir }
}

async fn token_server(tokens: &Tokens, ops: OpsAccess) -> Server {
    server(
        |dir| {
            let file = dir.join("tokens.toml");
            std::fs::write(&file, &tokens.file).unwrap();
            AccessArgs {
                auth: AuthMode::Tokens,
                auth_tokens: Some(file),
                ops_access: ops,
                audit_log: Some(dir.join("audit.jsonl")),
                ..AccessArgs::default()
            }
        },
        Grants::default(),
    )
    .await
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn send(server: &Server, request: Request<Body>) -> Answer {
    let response = app_with_access(server.state.clone(), server.access.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    // Event streams never end: their status and headers are the answer.
    let body = if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    {
        String::new()
    } else {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(server: &Server, path: &str, token: Option<&str>) -> Answer {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    send(server, request.body(Body::empty()).unwrap()).await
}

/// Every operation of the API, with ids that exist.
fn endpoints() -> Vec<String> {
    [
        "/api/v1/events/e-1",
        "/api/v1/events/e-1/lineage",
        "/api/v1/keys",
        "/api/v1/keys/order.id/o-1",
        &format!("/api/v1/traces/{TRACE}"),
        "/api/v1/correlations/c-1",
        "/api/v1/search",
        "/api/v1/topology?from=2025-01-01T00:00:00Z",
        "/api/v1/flows",
        "/api/v1/flows/summary",
        "/api/v1/model",
        "/api/v1/services",
        "/api/v1/ingest/progress",
        "/api/v1/live?key=order.id%3Do-1",
        "/api/v1/me",
        "/api/v1/openapi.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test]
async fn every_endpoint_refuses_a_request_without_a_token_with_a_json_401() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Public).await;
    for path in endpoints() {
        let answer = get(&server, &path, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(answer.json()["error"], "unauthenticated", "{path}");
        assert_eq!(
            answer.headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"choreoscope\"",
            "{path}"
        );
    }
}

#[tokio::test]
async fn every_endpoint_refuses_a_token_that_is_not_listed() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Public).await;
    for path in endpoints() {
        let answer = get(&server, &path, Some(&new_token())).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("not one of"));
    }
}

#[tokio::test]
async fn every_role_gets_every_endpoint() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Public).await;
    for token in [
        &tokens.viewer,
        &tokens.reader,
        &tokens.orders_reader,
        &tokens.admin,
    ] {
        for path in endpoints() {
            let answer = get(&server, &path, Some(token)).await;
            assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        }
    }
}

#[tokio::test]
async fn a_viewer_sees_the_flow_but_no_payload_header_value_or_record_key() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Public).await;
    for path in endpoints() {
        let answer = get(&server, &path, Some(&tokens.viewer)).await;
        assert!(
            !answer.body.contains(PAYLOAD_SECRET),
            "{path}: {}",
            answer.body
        );
        assert!(
            !answer.body.contains(HEADER_SECRET),
            "{path}: {}",
            answer.body
        );
    }
    let detail = get(&server, "/api/v1/events/e-1", Some(&tokens.viewer))
        .await
        .json();
    assert_eq!(detail["type"], "OrderCreated");
    assert_eq!(detail["payload"], serde_json::Value::Null);
    assert_eq!(detail["key"], serde_json::Value::Null);
    let note = detail["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "x-note")
        .expect("the header's name is shown");
    assert_eq!(note["value"], serde_json::Value::Null);
    assert_eq!(
        detail["withheld"],
        "payload, record key, header values not shown to your role (viewer)"
    );
    let key = get(&server, "/api/v1/keys/order.id/o-1", Some(&tokens.viewer))
        .await
        .json();
    assert_eq!(key["graph"]["nodes"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_reader_and_an_admin_see_payloads_and_header_values() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Public).await;
    for token in [&tokens.reader, &tokens.admin] {
        let answer = get(&server, "/api/v1/events/e-2", Some(token)).await;
        assert!(answer.body.contains(PAYLOAD_SECRET), "{}", answer.body);
        assert!(answer.body.contains(HEADER_SECRET), "{}", answer.body);
        assert_eq!(answer.json()["withheld"], serde_json::Value::Null);
    }
}

#[tokio::test]
async fn another_teams_events_are_opaque_nodes_that_keep_the_flow_connected() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Public).await;
    let key = get(
        &server,
        "/api/v1/keys/order.id/o-1",
        Some(&tokens.orders_reader),
    )
    .await;
    assert!(!key.body.contains("PaymentTaken"), "{}", key.body);
    assert!(!key.body.contains("payment-svc\""), "{}", key.body);
    let graph = &key.json()["graph"];
    let payment = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "e-2")
        .expect("the other team's event stays in the graph");
    assert_eq!(payment["opaque"], true);
    assert_eq!(payment["type"], serde_json::Value::Null);
    assert_eq!(payment["topic"], "");
    let edges: Vec<(String, String)> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(edges.contains(&("e-1".into(), "e-2".into())), "{edges:?}");
    assert!(edges.contains(&("e-2".into(), "e-3".into())), "{edges:?}");
    for path in [
        "/api/v1/events/e-3/lineage",
        &format!("/api/v1/traces/{TRACE}"),
        "/api/v1/correlations/c-1",
        "/api/v1/search",
        "/api/v1/topology?from=2025-01-01T00:00:00Z",
    ] {
        let answer = get(&server, path, Some(&tokens.orders_reader)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(
            !answer.body.contains("PaymentTaken"),
            "{path}: {}",
            answer.body
        );
        assert!(!answer.body.contains("payments"), "{path}: {}", answer.body);
    }
    let own = get(
        &server,
        "/api/v1/events/e-1/lineage",
        Some(&tokens.orders_reader),
    )
    .await;
    assert!(own.body.contains("OrderCreated"));
}

#[tokio::test]
async fn the_detail_of_another_teams_event_is_forbidden() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Public).await;
    let answer = get(&server, "/api/v1/events/e-2", Some(&tokens.orders_reader)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.json()["error"], "forbidden");
    assert!(!answer.body.contains(PAYLOAD_SECRET));
    let own = get(&server, "/api/v1/events/e-1", Some(&tokens.orders_reader)).await;
    assert_eq!(own.status, StatusCode::OK);
}

#[tokio::test]
async fn me_says_who_the_token_is_and_what_it_sees() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Public).await;
    let me = get(&server, "/api/v1/me", Some(&tokens.orders_reader))
        .await
        .json();
    assert_eq!(me["name"], "otto");
    assert_eq!(me["role"], "reader");
    assert_eq!(me["via"], "token");
    assert_eq!(me["payloads"], true);
    assert_eq!(me["topics"], serde_json::json!(["orders"]));
}

#[tokio::test]
async fn metrics_and_healthz_are_public_unless_told_otherwise() {
    let tokens = tokens();
    let public = token_server(&tokens, OpsAccess::Public).await;
    for path in ["/metrics", "/healthz"] {
        assert_eq!(
            get(&public, path, None).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    let guarded = token_server(&tokens, OpsAccess::Login).await;
    for path in ["/metrics", "/healthz"] {
        assert_eq!(
            get(&guarded, path, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        let viewer = get(&guarded, path, Some(&tokens.reader)).await;
        assert_eq!(viewer.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(viewer.json()["error"], "forbidden");
        assert_eq!(
            get(&guarded, path, Some(&tokens.admin)).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_viewer_files_need_no_login() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Login).await;
    let answer = get(&server, "/flows/key/order.id/o-1", None).await;
    assert_ne!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(!answer.body.contains(PAYLOAD_SECRET));
}

#[tokio::test]
async fn the_login_form_keeps_a_valid_token_in_an_http_only_cookie() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Public).await;
    let login = |body: String, content_type: &'static str| {
        Request::post("/auth/token")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let answer = send(
        &server,
        login(
            serde_json::json!({ "token": tokens.viewer }).to_string(),
            "application/json",
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json()["role"], "viewer");
    let cookie = answer.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let me = send(
        &server,
        Request::get("/api/v1/me")
            .header(header::COOKIE, pair)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(me.json()["name"], "vera");

    let wrong = send(
        &server,
        login(
            serde_json::json!({ "token": new_token() }).to_string(),
            "application/json",
        ),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(!wrong.headers.contains_key(header::SET_COOKIE));
    // A form another site could post is not accepted.
    let form = send(
        &server,
        login(
            format!("token={}", tokens.viewer),
            "application/x-www-form-urlencoded",
        ),
    )
    .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn the_audit_log_says_who_asked_for_what_and_who_was_refused() {
    let tokens = tokens();
    let server = token_server(&tokens, OpsAccess::Public).await;
    get(&server, "/api/v1/events/e-1", Some(&tokens.reader)).await;
    get(&server, "/api/v1/keys/order.id/o-1", Some(&tokens.viewer)).await;
    get(&server, "/api/v1/events/e-2", None).await;
    get(&server, "/metrics", None).await;
    let text = std::fs::read_to_string(server.dir.path().join("audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        (
            &lines[0]["who"],
            &lines[0]["role"],
            &lines[0]["resource"],
            &lines[0]["id"],
            &lines[0]["status"]
        ),
        (
            &"rita".into(),
            &"reader".into(),
            &"event".into(),
            &"e-1".into(),
            &200.into()
        )
    );
    assert_eq!(
        (&lines[1]["who"], &lines[1]["resource"], &lines[1]["id"]),
        (&"vera".into(), &"key".into(), &"order.id=o-1".into())
    );
    assert_eq!(
        (&lines[2]["who"], &lines[2]["role"], &lines[2]["status"]),
        (&"-".into(), &serde_json::Value::Null, &401.into())
    );
    assert!(
        !text.contains(&tokens.reader),
        "the audit log holds no token"
    );
}

fn proxy_args(_dir: &std::path::Path) -> AccessArgs {
    AccessArgs {
        auth: AuthMode::Proxy,
        trusted_proxies: vec!["10.0.0.0/8".into()],
        ..AccessArgs::default()
    }
}

fn proxy_grants() -> Grants {
    toml::from_str(
        r#"
        [[grants]]
        group = "payments-team"
        role = "reader"
        "#,
    )
    .unwrap()
}

fn from(peer: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::get("/api/v1/me");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut request = request.body(Body::empty()).unwrap();
    let addr: SocketAddr = format!("{peer}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    request
}

#[tokio::test]
async fn the_proxy_mode_believes_the_trusted_proxy_and_maps_its_groups() {
    let server = server(proxy_args, proxy_grants()).await;
    let answer = send(
        &server,
        from(
            "10.0.0.7",
            &[
                ("x-forwarded-user", "ann"),
                ("x-forwarded-groups", "sales,payments-team"),
            ],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let me = answer.json();
    assert_eq!(
        (&me["name"], &me["role"], &me["via"]),
        (&"ann".into(), &"reader".into(), &"proxy".into())
    );
}

#[tokio::test]
async fn the_proxy_mode_refuses_the_same_headers_from_another_source() {
    let server = server(proxy_args, proxy_grants()).await;
    let answer = send(
        &server,
        from(
            "192.168.1.20",
            &[
                ("x-forwarded-user", "ann"),
                ("x-forwarded-groups", "payments-team"),
            ],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.json()["detail"]
        .as_str()
        .unwrap()
        .contains("192.168.1.20 is not one of --trusted-proxies"));
}

#[tokio::test]
async fn the_proxy_mode_forbids_a_user_no_grant_names() {
    let server = server(proxy_args, proxy_grants()).await;
    let answer = send(
        &server,
        from(
            "10.0.0.7",
            &[("x-forwarded-user", "bob"), ("x-forwarded-groups", "sales")],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.json()["detail"]
        .as_str()
        .unwrap()
        .contains("`bob` is signed in"));
}
