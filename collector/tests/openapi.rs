//! The API's contract: the OpenAPI document the server serves is the committed copy
//! `ui/src/lib/openapi.json`, from which the viewer's types (`ui/src/lib/api-types.ts`) are
//! generated, so a change to the Rust model that is not carried to the viewer fails here (and the
//! viewer's own test fails until its types are generated again: `npm --prefix ui run api-types`).
//!
//! `UPDATE_OPENAPI=1 cargo test -p choreoscope --test openapi` writes the copy anew.
//!
//! The other tests check what the document says against the server's own rules, where the two
//! are written apart; schemathesis (`scripts/contract`) checks the running server against it.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use choreoscope::http::api::ApiDoc;
use choreoscope::http::{app, AppState};
use choreoscope::live::{LiveFeed, LiveFilter, MAX_FILTERS};
use choreoscope::metrics::Metrics;
use choreoscope::store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use utoipa::OpenApi;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/lib/openapi.json")
}

/// The document as the committed copy is written: pretty JSON and a final newline.
fn current() -> String {
    serde_json::to_string_pretty(&ApiDoc::openapi()).unwrap() + "\n"
}

fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

#[test]
fn the_committed_document_is_the_one_the_server_serves() {
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, current()).unwrap();
    }
    let committed =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        committed == current(),
        "{} differs from ApiDoc::openapi(): run `UPDATE_OPENAPI=1 cargo test -p choreoscope --test \
         openapi`, then `npm --prefix ui run api-types`, and commit both",
        path.display()
    );
}

#[test]
fn every_error_response_is_an_error_body() {
    let doc = document();
    let mut errors = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (status, response) in item["get"]["responses"].as_object().unwrap() {
            if status.starts_with('2') {
                continue;
            }
            errors += 1;
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{path} {status}"
            );
        }
    }
    assert!(errors >= 9 * 2, "only {errors} error responses");
}

#[test]
fn every_operation_that_reads_the_store_can_answer_503() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // These answer from memory: the live feed listens to the ingest loop, flow health reads
        // its tracker, ingest progress the consumer's statistics, `me` the request's login.
        use choreoscope::http::admission::FROM_MEMORY;
        if FROM_MEMORY.contains(&path.as_str()) {
            assert!(item["get"]["responses"].get("503").is_none());
            continue;
        }
        assert!(
            item["get"]["responses"].get("503").is_some(),
            "{path} does not declare 503"
        );
    }
}

#[test]
fn node_flags_are_an_enum_of_the_names_the_viewer_knows() {
    let doc = document();
    let flag = &doc["components"]["schemas"]["Flag"];
    let mut names: Vec<&str> = flag["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "cause_missing",
            "cycle",
            "dead_lettered",
            "duplicate_publish",
            "duplicate_reaction",
            "end",
            "handler_failed",
            "problems",
            "root"
        ]
    );
    for schema in ["EventSummary", "EventDetail"] {
        assert_eq!(
            doc["components"]["schemas"][schema]["properties"]["flags"]["items"]["$ref"],
            "#/components/schemas/Flag",
            "{schema}"
        );
    }
}

/// The schema of query parameter `name` of `GET path`.
fn parameter(doc: &Value, path: &str, name: &str) -> Value {
    doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{path} has no parameter {name}"))["schema"]
        .clone()
}

#[test]
fn the_live_feed_declares_as_many_things_to_follow_as_it_takes() {
    let doc = document();
    for name in ["key", "correlation", "trace"] {
        assert_eq!(
            parameter(&doc, "/api/v1/live", name)["maxItems"],
            MAX_FILTERS,
            "{name}"
        );
    }
}

#[test]
fn the_live_key_pattern_is_what_the_feed_accepts() {
    let doc = document();
    let pattern = doc["components"]["schemas"]["LiveKey"]["pattern"]
        .as_str()
        .unwrap();
    let pattern = regex::Regex::new(pattern).unwrap();
    for key in ["order.id=o-1", "a=", "a=b=c", "=x", "x", ""] {
        assert_eq!(
            pattern.is_match(key),
            LiveFilter::from_pairs([("key", key)]).is_ok(),
            "{key}"
        );
    }
}

async fn get(path: &str) -> (StatusCode, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("contract.db").display());
    let state = AppState {
        store: Store::connect(&url).await.unwrap(),
        metrics: Arc::new(Metrics::new()),
        live: LiveFeed::new(),
        health: Default::default(),
        groups: Default::default(),
        progress: Default::default(),
        redaction: Default::default(),
    };
    let response = app(state)
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_all_zero_trace_id_is_not_found() {
    let (status, _, body) = get("/api/v1/traces/00000000000000000000000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn the_api_root_with_a_slash_is_a_json_404_not_the_viewer() {
    let (status, content_type, body) = get("/api/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type, "application/json");
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn ingest_progress_of_a_process_that_consumes_nothing_is_zeros() {
    let (status, _, body) = get("/api/v1/ingest/progress").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["consuming"], false);
    assert_eq!(body["catching_up"], false);
    assert_eq!(body["records_behind"], 0);
    assert_eq!(body["as_of"], Value::Null);
    assert_eq!(body["topics"], serde_json::json!([]));
}
