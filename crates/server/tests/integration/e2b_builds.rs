//! E2B's template builder, in process over the fake runtime: who may ask
//! for builds, what a build refuses before anything runs (bases that
//! cannot be had, bad steps, files never uploaded, hostile archives), and
//! the signed upload URL the SDK PUTs files to without its key.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;
use warren_template::oci::testing::{self, Entry};

const HASH: &str = "5d41402abc4b2a76b9719d911017c592ae1f2c8a3b4c5d6e7f8091a2b3c4d5e6";
const OTHER_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000001";

/// `method path` with `key` as E2B sends it, and a body.
async fn e2b(
    w: &InProcess,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Body,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "warren.test:3000")
        .header("content-type", "application/json");
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    w.send(req.body(body).unwrap()).await
}

fn json_body(v: Value) -> Body {
    Body::from(v.to_string())
}

/// The admin key of a new team (not the operators').
async fn other_team(w: &InProcess, admin: &str) -> String {
    let (status, team) = w
        .call(
            Some(admin),
            "POST",
            "/v1/teams",
            Some(json!({"name": "other", "admin": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    team["key"]["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn e2b_builds_refuse_what_they_cannot_build_and_uploads_need_their_signature() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let w = &w;

    // Only operators build: templates are every team's.
    let member = w.key("member").await;
    let ask = |key: String, body: Value| async move {
        e2b(w, Some(&key), "POST", "/v3/templates", json_body(body)).await
    };
    let (status, _) = ask(member.clone(), json!({"name": "app"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = ask(admin.clone(), json!({"name": "team/app"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("flat"), "{body}");
    let (status, body) = ask(admin.clone(), json!({"name": "app", "tags": ["no good"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, asked) = ask(admin.clone(), json!({"name": "app:v1", "tags": ["stable"]})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
    assert_eq!(asked["templateID"], "app");
    assert_eq!(asked["tags"], json!(["v1", "stable"]));
    let build = asked["buildID"].as_str().unwrap().to_owned();
    assert_eq!(build.len(), 36, "a UUID: {build}");

    // Files: absent, then uploaded to the signed URL, then present.
    let (status, body) = e2b(
        w,
        Some(&admin),
        "GET",
        "/templates/app/files/../x",
        Body::empty(),
    )
    .await;
    assert_ne!(status, StatusCode::CREATED, "{body}");
    let (status, body) = e2b(
        w,
        Some(&admin),
        "GET",
        "/templates/app/files/NOTHEX",
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let files = format!("/templates/app/files/{HASH}");
    let (status, link) = e2b(w, Some(&admin), "GET", &files, Body::empty()).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(link["present"], false);
    let url = link["url"].as_str().unwrap();
    let path = url
        .strip_prefix("http://warren.test:3000")
        .expect(url)
        .to_owned();
    let archive = testing::layer(&[Entry::File("app/hello.txt", b"hello\n")]);
    let put = |path: String, body: Vec<u8>| async move {
        e2b(w, None, "PUT", &path, Body::from(body)).await
    };
    let tampered = path.replace("signature=", "signature=A");
    let (status, _) = put(tampered, archive.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let elsewhere = path.replace(HASH, OTHER_HASH);
    let (status, _) = put(elsewhere, archive.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a URL is for one hash");
    let (status, _) = put(path.split('?').next().unwrap().to_owned(), archive.clone()).await;
    assert!(status.is_client_error(), "no signature: {status}");
    let (status, body) = put(path.clone(), archive).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, link) = e2b(w, Some(&admin), "GET", &files, Body::empty()).await;
    assert_eq!(link["present"], true, "{link}");
    let other = other_team(w, &admin).await;
    let (status, _) = e2b(w, Some(&other), "GET", &files, Body::empty()).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "another team's admin builds nothing"
    );

    // Starting: refused with reasons, the build still waiting after each.
    let start = format!("/v2/templates/app/builds/{build}");
    let refused = |spec: Value, needle: &'static str| {
        let start = start.clone();
        let admin = admin.clone();
        async move {
            let (status, body) = e2b(w, Some(&admin), "POST", &start, json_body(spec)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(needle), "{needle}: {message}");
        }
    };
    refused(
        json!({"fromImage": "python:3.12", "steps": []}),
        "cannot be had here",
    )
    .await;
    refused(
        json!({"fromTemplate": "base", "steps": [{"type": "RUN", "args": []}]}),
        "step 1 (RUN): needs a command",
    )
    .await;
    refused(
        json!({"fromTemplate": "base", "steps": [
            {"type": "COPY", "args": ["app", "/srv/"], "filesHash": OTHER_HASH}]}),
        "were not uploaded",
    )
    .await;
    let status_path = format!("/templates/app/builds/{build}/status");
    let (status, body) = e2b(w, Some(&admin), "GET", &status_path, Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "waiting", "{body}");
    assert_eq!(body["logEntries"], json!([]));
    // Another team sees nothing of it; an unknown build is a 404.
    let (status, _) = e2b(w, Some(&other), "GET", &status_path, Body::empty()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let unknown = "/v2/templates/app/builds/00000000-0000-4000-8000-000000000000";
    let (status, _) = e2b(w, Some(&admin), "POST", unknown, json_body(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A hostile archive: refused at unpacking, nothing written outside.
    let hostile = format!("/templates/app/files/{}", OTHER_HASH.replace('1', "2"));
    let (_, link) = e2b(w, Some(&admin), "GET", &hostile, Body::empty()).await;
    let path = link["url"]
        .as_str()
        .unwrap()
        .replace("http://warren.test:3000", "");
    let evil = testing::layer(&[Entry::File("../../../../escaped.txt", b"x")]);
    let (status, _) = put(path, evil).await;
    assert_eq!(status, StatusCode::OK);
    refused(
        json!({"fromTemplate": "base", "steps": [
            {"type": "COPY", "args": ["x", "/srv/"], "filesHash": OTHER_HASH.replace('1', "2")}]}),
        "not a usable tar",
    )
    .await;
    assert!(!dir.path().join("escaped.txt").exists());
    assert!(!dir.path().join("templates/escaped.txt").exists());
    assert!(!std::path::Path::new("/escaped.txt").exists());
}
