//! Answers the API fuzzer (`tests/api-fuzz/`) found off their documented
//! shape, pinned in process: every error of the native API, wherever it
//! arises (a query string, a body that is no object, a plain GET on the
//! terminal route, `/metrics`), is an `ApiError` JSON body.

use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

async fn start(dir: &tempfile::TempDir) -> (InProcess, String) {
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    (w, admin)
}

fn assert_api_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn metrics_errors_are_the_native_apis() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _) = start(&dir).await;
    let (status, body) = w.call(None, "GET", "/metrics", None).await;
    assert_api_error(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
    let member = w.key("member").await;
    let (status, body) = w.call(Some(&member), "GET", "/metrics", None).await;
    assert_api_error(status, &body, StatusCode::FORBIDDEN, "permission_denied");
    w.stop().await;
}
