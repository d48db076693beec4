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

#[tokio::test]
async fn a_query_string_that_does_not_decode_is_an_api_error() {
    let dir = tempfile::tempdir().unwrap();
    let (w, admin) = start(&dir).await;
    for path in [
        "/v1/audit/heads?all=maybe",
        "/v1/audit/entries?limit=-1",
        "/v1/audit/consistency?from=0&nope=1",
        "/v1/templates/base/build?rebuild=2",
    ] {
        let method = if path.contains("/build") {
            "POST"
        } else {
            "GET"
        };
        let (status, body) = w.call(Some(&admin), method, path, None).await;
        assert_api_error(status, &body, StatusCode::BAD_REQUEST, "invalid_argument");
    }
    w.stop().await;
}
