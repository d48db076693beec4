//! Set-up the in-process tests share (metering, budgets, rules, volumes).

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

/// An in-process Warren over the fake runtime, in a directory of its own.
pub async fn start() -> (InProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    (server, dir)
}

/// A running sandbox made with `key` that does not resume by itself: its id.
pub async fn sandbox(w: &InProcess, key: &str) -> String {
    let (status, created) = w
        .call(
            Some(key),
            "POST",
            "/v1/sandboxes",
            Some(json!({"auto_resume": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// A second team, made by the operator `admin`: its admin key and its id.
pub async fn rival_team(w: &InProcess, admin: &str) -> (String, String) {
    let (status, body) = w
        .call(
            Some(admin),
            "POST",
            "/v1/teams",
            Some(json!({"name": "rivals", "admin": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["key"]["secret"].as_str().unwrap().to_owned(),
        body["team"]["id"].as_str().unwrap().to_owned(),
    )
}

/// `method path` as the E2B SDK sends it (`X-API-KEY`).
pub async fn e2b(
    w: &InProcess,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("x-api-key", key);
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(axum::body::Body::from(b.to_string())),
        None => req.body(axum::body::Body::empty()),
    }
    .unwrap();
    w.send(req).await
}
