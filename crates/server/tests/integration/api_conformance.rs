//! Answers the API fuzzer (`tests/api-fuzz/`) found off their documented
//! shape, pinned in process: every error of the native API, wherever it
//! arises (a query string, a body that is no object, a plain GET on the
//! terminal route, `/metrics`), is an `ApiError` JSON body.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
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

#[tokio::test]
async fn a_json_body_that_is_no_object_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (w, admin) = start(&dir).await;
    let (status, me) = w.call(Some(&admin), "GET", "/v1/whoami", None).await;
    assert_eq!(status, StatusCode::OK);
    let quota = format!("/v1/teams/{}/quota", me["team"].as_str().unwrap());
    // serde takes an array for a struct's fields in order: `[null, null]`
    // was a sandbox created with every default.
    for (method, path) in [
        ("POST", "/v1/sandboxes"),
        ("PUT", quota.as_str()),
        ("POST", "/v1/keys"),
    ] {
        for bad in [json!([null, null]), json!([]), json!("x"), json!(1)] {
            let (status, body) = w.call(Some(&admin), method, path, Some(bad.clone())).await;
            assert_api_error(status, &body, StatusCode::BAD_REQUEST, "invalid_argument");
        }
    }
    let (_, list) = w.call(Some(&admin), "GET", "/v1/sandboxes", None).await;
    assert_eq!(list["sandboxes"], json!([]), "{list}");
    // Objects decode as before: unknown and duplicate fields are refused.
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/sandboxes",
            Some(json!({"nope": 1})),
        )
        .await;
    assert_api_error(status, &body, StatusCode::BAD_REQUEST, "invalid_argument");
    let twice = Request::post("/v1/sandboxes")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(Body::from(r#" {"cpus": 1, "cpus": 2}"#))
        .unwrap();
    let (status, body) = w.send(twice).await;
    assert_api_error(status, &body, StatusCode::BAD_REQUEST, "invalid_argument");
    let (status, body) = w
        .call(Some(&admin), "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    w.stop().await;
}

#[tokio::test]
async fn a_terminal_request_without_a_websocket_handshake_is_an_api_error() {
    let dir = tempfile::tempdir().unwrap();
    let (w, admin) = start(&dir).await;
    let (status, sb) = w
        .call(Some(&admin), "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sb}");
    let req = Request::get(format!("/v1/sandboxes/{}/pty", sb["id"].as_str().unwrap()))
        .header("authorization", format!("Bearer {admin}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = w.send(req).await;
    assert_api_error(status, &body, StatusCode::BAD_REQUEST, "invalid_argument");
    w.stop().await;
}

#[tokio::test]
async fn audit_filters_past_the_logs_integers_select_nothing_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let (w, admin) = start(&dir).await;
    let huge = u64::MAX - 1;
    let count = |body: &Value| body["entries"].as_array().map(Vec::len);
    let (status, body) = w.call(Some(&admin), "GET", "/v1/audit/entries", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let all = count(&body).unwrap();
    assert!(all > 0, "{body}");
    for (path, want) in [
        (format!("/v1/audit/entries?after={huge}"), 0),
        (format!("/v1/audit/entries?since={huge}"), 0),
        (format!("/v1/audit/entries?until={huge}"), all),
    ] {
        let (status, body) = w.call(Some(&admin), "GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(count(&body), Some(want), "{path}: {body}");
    }
    let path = format!("/v1/audit/entries?after={huge}&format=jsonl");
    let (status, body) = w.call(Some(&admin), "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    assert_eq!(body, Value::String(String::new()), "{path}");
    // A team's own proofs look the entry up by index first.
    let member = w.key("member").await;
    let (status, body) = w
        .call(
            Some(&member),
            "GET",
            &format!("/v1/audit/entries/{huge}/proof"),
            None,
        )
        .await;
    assert_api_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    w.stop().await;
}
