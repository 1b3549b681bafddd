//! The flow health API (`/api/v1/flows`, `/api/v1/flows/summary`, `/api/v1/model`) over a
//! tracker that learned a checkout choreography and holds one stuck flow.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use choreoscope::health::{FlowEvent, HealthHandle, TrackedEvent};
use choreoscope::http::{app, AppState};
use choreoscope::live::LiveFeed;
use choreoscope::metrics::Metrics;
use choreoscope::store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const S: i64 = 1_000_000;

fn event(id: &str, step: &str, t_us: i64, cause: Option<&str>, flow: &str) -> TrackedEvent {
    let (service, event_type) = step.split_once('/').unwrap();
    TrackedEvent {
        event: FlowEvent {
            id: id.into(),
            service: Some(service.into()),
            event_type: Some(event_type.into()),
            time_us: t_us,
            failure: None,
        },
        causation_id: cause.map(str::to_owned),
        correlation_id: Some(flow.into()),
        keys: vec![("order.id".into(), flow.into())],
    }
}

/// 300 orders a second apart that ended within the hour (order → payment → bank), then
/// `o-stuck`, whose payment the bank has not answered for 25 s (its events not yet settled, so
/// the model has not learned from it).
fn health() -> HealthHandle {
    let handle = HealthHandle::default();
    let now = chrono::Utc::now().timestamp_micros();
    let start = now - 3000 * S;
    for i in 0..300 {
        let t = start + i * S;
        let f = format!("o-{i}");
        handle.observe(
            [
                event(&format!("{f}/o"), "order/OrderCreated", t, None, &f),
                event(
                    &format!("{f}/p"),
                    "payment/PaymentCreated",
                    t + S / 10,
                    Some(&format!("{f}/o")),
                    &f,
                ),
                event(
                    &format!("{f}/b"),
                    "bank/PaymentConfirmed",
                    t + S / 5,
                    Some(&format!("{f}/p")),
                    &f,
                ),
            ],
            t,
        );
        handle.tick(t);
    }
    handle.tick(now - 200 * S);
    let t = now - 25 * S;
    handle.observe(
        [
            event("stuck/o", "order/OrderCreated", t, None, "o-stuck"),
            event(
                "stuck/p",
                "payment/PaymentCreated",
                t + S / 10,
                Some("stuck/o"),
                "o-stuck",
            ),
        ],
        t,
    );
    handle.tick(now);
    handle
}

async fn get(path: &str) -> (StatusCode, Value) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("h.db").display()))
        .await
        .unwrap();
    let router = app(AppState {
        store: store.clone(),
        metrics: Arc::new(Metrics::new()),
        live: LiveFeed::new(),
        health: health(),
        groups: Default::default(),
        progress: Default::default(),
        redaction: Default::default(),
    });
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    store.close().await;
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn the_stalled_flows_name_what_is_missing_after_which_event() {
    let (status, page) = get("/api/v1/flows?status=stalled").await;
    assert_eq!(status, StatusCode::OK);
    let flows = page["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1, "{page:#}");
    let stuck = &flows[0];
    assert_eq!(stuck["flow"], "o-stuck");
    assert_eq!(stuck["status"], "stalled");
    assert_eq!(stuck["root"]["id"], "stuck/o");
    assert_eq!(stuck["root"]["event_type"], "OrderCreated");
    assert_eq!(
        stuck["keys"],
        serde_json::json!([{"name": "order.id", "value": "o-stuck"}])
    );
    let missing = &stuck["missing"][0];
    assert_eq!(missing["after_event"], "stuck/p");
    assert_eq!(missing["after"]["service"], "payment");
    // The bank always confirmed: the most specific reaction missing is the confirmation.
    assert_eq!(
        missing["expected"],
        serde_json::json!({"kind": "specific", "service": "bank", "event_type": "PaymentConfirmed"})
    );
    assert_eq!(missing["support"], 1.0);
    assert_eq!(missing["samples"], 300);
    assert_eq!(missing["origin"], "learned");
    assert!(
        missing["overdue_ms"].as_f64().unwrap() > 14_000.0,
        "25 s after, 10 s due: {missing}"
    );
}

#[tokio::test]
async fn the_flow_list_counts_every_status_and_lists_oldest_first() {
    let (_, page) = get("/api/v1/flows?limit=2").await;
    assert_eq!(
        page["counts"],
        serde_json::json!({"complete": 300, "in_progress": 0, "stalled": 1, "failed": 0})
    );
    let flows: Vec<&str> = page["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flow"].as_str().unwrap())
        .collect();
    assert_eq!(flows, ["o-0", "o-1"]);
    assert_eq!(page["limit"], 2);
}

#[tokio::test]
async fn the_summary_groups_stalled_flows_by_step_and_missing_reaction() {
    let (status, summary) = get("/api/v1/flows/summary").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary["counts"]["stalled"], 1);
    assert_eq!(
        summary["stopped"],
        serde_json::json!([{
            "status": "stalled",
            "after": {"service": "payment", "event_type": "PaymentCreated"},
            "waiting_for": {"kind": "specific", "service": "bank", "event_type": "PaymentConfirmed"},
            "flows": 1,
            "oldest": ["o-stuck"]
        }])
    );
    assert_eq!(summary["lagged_batches"], 0);
}

#[tokio::test]
async fn the_model_shows_each_step_with_its_expected_reactions() {
    let (status, model) = get("/api/v1/model").await;
    assert_eq!(status, StatusCode::OK);
    let steps = model["steps"].as_array().unwrap();
    let payment = steps
        .iter()
        .find(|s| s["step"]["event_type"] == "PaymentCreated")
        .unwrap();
    assert_eq!(payment["terminal"], false);
    let expected: Vec<&Value> = payment["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["reaction"])
        .collect();
    assert!(expected.contains(&&serde_json::json!({"kind": "specific", "service": "bank", "event_type": "PaymentConfirmed"})));
    let bank = payment["expectations"][0]["within_ms"].as_f64().unwrap();
    assert_eq!(bank, 10_000.0, "the floor: 3 × 100 ms is less");
    let confirmed = steps
        .iter()
        .find(|s| s["step"]["event_type"] == "PaymentConfirmed")
        .unwrap();
    assert_eq!(confirmed["terminal"], true);
}

#[tokio::test]
async fn bad_flow_parameters_are_refused_with_the_status_that_says_why() {
    for (path, status, code) in [
        (
            "/api/v1/flows?status=stuck",
            StatusCode::BAD_REQUEST,
            "bad_parameter",
        ),
        (
            "/api/v1/flows?limit=zero",
            StatusCode::BAD_REQUEST,
            "bad_parameter",
        ),
        (
            "/api/v1/flows?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unusable_value",
        ),
    ] {
        let (got, body) = get(path).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
}
