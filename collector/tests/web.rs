//! The viewer's side of the HTTP server: the embedded page at every viewer address, the API's
//! JSON errors beside it, and the live feed (`/api/v1/live`) that flow views follow. Runs on a
//! real SQLite store; needs no broker.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use choreoscope::http::{app, AppState};
use choreoscope::live::LiveFeed;
use choreoscope::metrics::Metrics;
use choreoscope::store::Store;
use common::baggage_record;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("web.db").display());
    let state = AppState {
        store: Store::connect(&url).await.unwrap(),
        metrics: Arc::new(Metrics::new()),
        live: LiveFeed::new(),
        health: Default::default(),
        groups: Default::default(),
        progress: Default::default(),
        redaction: Default::default(),
    };
    (state, dir)
}

async fn get(state: &AppState, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app(state.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn every_viewer_address_gets_the_viewer_or_says_how_to_build_it() {
    let (state, _dir) = state().await;
    for path in [
        "/",
        "/flows/key/order.id/o-1001",
        "/flows/trace/4bf92f3577b34da6a3ce929d0e0e4736?event=e-1",
        "/events/kafka%3Ainventory%2F2%2F3",
        "/map?from=2026-01-01T00:00:00Z",
    ] {
        let (status, headers, body) = get(&state, path).await;
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{path}"
        );
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        if choreoscope::http::web::is_embedded() {
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body.contains(r#"<div id="root">"#), "{path}: {body}");
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(body.contains("npm --prefix ui run build"), "{path}: {body}");
        }
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (state, _dir) = state().await;
    let check = |path: &str, headers: &axum::http::HeaderMap| {
        for (name, value) in choreoscope::http::SECURITY_HEADERS {
            assert_eq!(
                headers.get(&name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{path}: {name}"
            );
        }
    };
    for path in [
        "/",
        "/events/e-1",
        "/assets/missing.js",
        "/api/v1/keys",
        "/api/v1/openapi.json",
        "/api/v1/events/missing",
        "/api/v1/search?from=yesterday",
        "/api/v1/nope",
        "/metrics",
        "/healthz",
    ] {
        let (_, headers, _) = get(&state, path).await;
        check(path, &headers);
    }
    // The live feed streams forever: its headers come first.
    let live = app(state.clone())
        .oneshot(
            Request::get("/api/v1/live?correlation=c-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    check("/api/v1/live", live.headers());
    let csp = choreoscope::http::VIEWER_CSP;
    assert!(csp.contains("script-src 'self';") && !csp.contains("script-src 'self' 'unsafe"));
    assert!(csp.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn unknown_api_paths_and_assets_are_errors_not_pages() {
    let (state, _dir) = state().await;
    let (status, headers, body) = get(&state, "/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert!(body.contains(r#""error":"not_found""#), "{body}");
    let (status, _, _) = get(&state, "/api").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, headers, _) = get(&state, "/assets/index-stale.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn the_live_feed_refuses_unusable_filters() {
    let (state, _dir) = state().await;
    for (path, status) in [
        ("/api/v1/live", StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/live?key=o-1", StatusCode::BAD_REQUEST),
        ("/api/v1/live?topic=orders", StatusCode::BAD_REQUEST),
    ] {
        let (got, _, body) = get(&state, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains(r#""detail""#), "{path}: {body}");
    }
}

/// Reads server-sent events from `body` until `want` of them arrived (or 5 s passed).
async fn read_events(body: &mut Body, want: usize) -> Vec<(String, String)> {
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while events.len() < want {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("the feed sent too few events")
            .expect("the feed ended early")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_default()
            };
            if !block.starts_with(':') {
                events.push((field("event:"), field("data:")));
            }
        }
    }
    events
}

#[tokio::test]
async fn a_watcher_is_told_of_its_flows_durable_events_only_and_the_feed_ends_on_shutdown() {
    let (state, _dir) = state().await;
    let response = app(state.clone())
        .oneshot(
            Request::get("/api/v1/live?key=order.id%3Do-1&correlation=c-9")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    assert_eq!(
        read_events(&mut body, 1).await,
        [("ready".into(), "{}".into())]
    );

    // A batch with an event of the flow and one of another order: only the first is announced.
    state.live.publish(&[
        baggage_record("e-1", "order.id=o-1", 1),
        baggage_record("e-2", "order.id=o-2", 2),
    ]);
    // A batch with nothing of the flow: nothing is sent for it.
    state
        .live
        .publish(&[baggage_record("e-3", "order.id=o-3", 3)]);
    state
        .live
        .publish(&[baggage_record("e-4", "order.id=o-1", 4)]);
    assert_eq!(
        read_events(&mut body, 2).await,
        [
            ("stored".into(), r#"{"ids":["e-1"]}"#.into()),
            ("stored".into(), r#"{"ids":["e-4"]}"#.into()),
        ]
    );

    state.live.close();
    let end = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the feed closes on shutdown");
    assert!(end.is_none(), "no frame after close");
}
