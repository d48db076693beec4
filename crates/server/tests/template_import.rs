//! `POST /v1/templates/{name}/import` in process over the fake runtime:
//! an uploaded OCI archive becomes a ready template sandboxes start from; a
//! taken name, a recipe's name, a directory format, an empty body and a
//! caller who is not an operator admin are refused before anything is
//! imported; a broken archive leaves a failed template that
//! creates refuse.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;
use warren_template::oci::testing::{self, Entry};

async fn call(
    w: &InProcess,
    key: &str,
    method: &str,
    path: &str,
    body: Body,
) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let resp = w.api.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The last NDJSON event of a stream.
fn last_event(text: &str) -> Value {
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

fn archive() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let tar = testing::layer(&[Entry::Dir("etc"), Entry::File("hello", b"hi")]);
    let config = testing::config(&[&tar], &["FOO=bar"], &[], "", "");
    testing::oci_layout(&dir.path().join("layout"), &config, &[testing::gzip(&tar)]);
    let out = dir.path().join("image.tar");
    testing::tar_dir(&dir.path().join("layout"), &out);
    std::fs::read(out).unwrap()
}

#[tokio::test]
async fn uploaded_archives_become_templates() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let import = "/v1/templates/img/import?format=oci-archive";

    let (status, text) = call(&w, &admin, "POST", import, Body::from(archive())).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let done = last_event(&text);
    assert_eq!(done["type"], "done", "{text}");
    assert_eq!(done["template"]["status"], "ready");
    assert!(text.contains("layer 1/1"), "{text}");
    let rootfs = dir.path().join("templates/img/rootfs");
    assert_eq!(std::fs::read_to_string(rootfs.join("hello")).unwrap(), "hi");
    let meta = std::fs::read_to_string(dir.path().join("templates/img/template.json")).unwrap();
    assert!(meta.contains("\"FOO\": \"bar\""), "{meta}");
    // The upload is gone.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upload-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let (status, text) = call(
        &w,
        &admin,
        "POST",
        "/v1/sandboxes",
        Body::from(json!({"template": "img"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");

    // Refused before the body is read.
    let (status, text) = call(&w, &admin, "POST", import, Body::from(archive())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("exists already"), "{text}");
    let (status, text) = call(
        &w,
        &admin,
        "POST",
        "/v1/templates/x/import?format=oci",
        Body::from(archive()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let (status, _) = call(
        &w,
        &admin,
        "POST",
        "/v1/templates/x/import?format=zip",
        Body::from(archive()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, text) = call(
        &w,
        &admin,
        "POST",
        "/v1/templates/x/import?format=docker-archive",
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");

    // A recipe's name is not for imports.
    let (status, text) = call(
        &w,
        &admin,
        "POST",
        "/v1/templates/base/import?format=oci-archive",
        Body::from(archive()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("is the name of a recipe"), "{text}");
    // Templates are every team's: only operators import them.
    let (status, text) = call(
        &w,
        &admin,
        "POST",
        "/v1/keys",
        Body::from(json!({"name": "m", "role": "member"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let member = serde_json::from_str::<Value>(&text).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, text) = call(
        &w,
        &member,
        "POST",
        "/v1/templates/mine/import?format=oci-archive",
        Body::from(archive()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let (status, text) = call(
        &w,
        &admin,
        "POST",
        "/v1/teams",
        Body::from(json!({"name": "rivals", "admin": "eve"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let rival = serde_json::from_str::<Value>(&text).unwrap()["key"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, text) = call(
        &w,
        &rival,
        "POST",
        "/v1/templates/mine/import?format=oci-archive",
        Body::from(archive()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(!dir.path().join("templates/mine").exists());

    // Garbage: the import fails, the template is failed, creates refuse it.
    let (status, text) = call(
        &w,
        &admin,
        "POST",
        "/v1/templates/junk/import?format=docker-archive",
        Body::from(vec![7u8; 4096]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let err = last_event(&text);
    assert_eq!(err["type"], "error", "{text}");
    let (status, text) = call(
        &w,
        &admin,
        "POST",
        "/v1/sandboxes",
        Body::from(json!({"template": "junk"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("template 'junk' is failed"), "{text}");
}
