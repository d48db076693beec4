//! Set-up the in-process tests of metering, budgets and rules share.

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;
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
