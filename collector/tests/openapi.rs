//! The API's contract: the OpenAPI document the server serves is the committed copy
//! `ui/src/lib/openapi.json`, from which the viewer's types (`ui/src/lib/api-types.ts`) are
//! generated, so a change to the Rust model that is not carried to the viewer fails here (and the
//! viewer's own test fails until its types are generated again: `npm --prefix ui run api-types`).
//!
//! `UPDATE_OPENAPI=1 cargo test -p choreoscope --test openapi` writes the copy anew.

use std::path::PathBuf;

use choreoscope::http::api::ApiDoc;
use serde_json::Value;
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
        // The live feed only listens to the ingest loop.
        if path == "/api/v1/live" {
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
            "duplicate_publish",
            "duplicate_reaction",
            "end",
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
