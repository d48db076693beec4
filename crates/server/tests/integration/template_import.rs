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
    archive_saying(b"hi")
}

fn archive_saying(hello: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let tar = testing::layer(&[Entry::Dir("etc"), Entry::File("hello", hello)]);
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
    let v1 = done["template"]["version"].as_str().unwrap().to_owned();
    let vdir = dir.path().join("templates/img/v").join(&v1);
    assert_eq!(
        std::fs::read_to_string(vdir.join("rootfs/hello")).unwrap(),
        "hi"
    );
    let meta = std::fs::read_to_string(vdir.join("version.json")).unwrap();
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
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["template_version"],
        v1.as_str()
    );
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

/// Creates a sandbox from `template` as `key`: the status and the body.
async fn create(w: &InProcess, key: &str, template: &str) -> (StatusCode, Value) {
    let body = Body::from(json!({ "template": template }).to_string());
    let (status, text) = call(w, key, "POST", "/v1/sandboxes", body).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `GET`s `path` as `key`: the status and the body.
async fn get(w: &InProcess, key: &str, path: &str) -> (StatusCode, Value) {
    let (status, text) = call(w, key, "GET", path, Body::empty()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_new_version_leaves_running_sandboxes_on_theirs_until_collected() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let import = |hello: &'static [u8]| {
        let w = &w;
        let admin = &admin;
        async move {
            let url = "/v1/templates/img/import?format=oci-archive";
            let (_, text) = call(w, admin, "POST", url, Body::from(archive_saying(hello))).await;
            last_event(&text)["template"]["version"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    let v1 = import(b"one").await;
    let (status, old) = create(&w, &admin, "img").await;
    assert_eq!(status, StatusCode::CREATED, "{old}");
    assert_eq!(old["template_version"], v1.as_str());
    let old_id = old["id"].as_str().unwrap().to_owned();

    // A new image under the same name: a new version, now `latest`.
    let v2 = import(b"two").await;
    assert_ne!(v1, v2);
    let (_, new) = create(&w, &admin, "img").await;
    assert_eq!(new["template_version"], v2.as_str());
    // The old sandbox keeps its version; a create may still name it.
    let (_, info) = get(&w, &admin, &format!("/v1/sandboxes/{old_id}")).await;
    assert_eq!(info["template_version"], v1.as_str());
    let (status, pinned) = create(&w, &admin, &format!("img@{v1}")).await;
    assert_eq!(status, StatusCode::CREATED, "{pinned}");

    let (status, info) = get(&w, &admin, "/v1/templates/img").await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["versions"][0]["version"], v2.as_str());
    assert_eq!(info["versions"][0]["tags"], json!(["latest"]));
    assert_eq!(info["versions"][1]["version"], v1.as_str());
    assert_eq!(info["versions"][1]["tags"], json!([]));
    assert_eq!(info["versions"][1]["in_use"], true);

    // Tags: name a version, create from the tag.
    let body = Body::from(json!({ "target": v1 }).to_string());
    let (status, text) = call(&w, &admin, "PUT", "/v1/templates/img/tags/stable", body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, from_tag) = create(&w, &admin, "img:stable").await;
    assert_eq!(status, StatusCode::CREATED, "{from_tag}");
    assert_eq!(from_tag["template_version"], v1.as_str());
    for (reference, want) in [
        ("img:nope", StatusCode::NOT_FOUND),
        ("img@zz", StatusCode::BAD_REQUEST),
        ("img:../x", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = create(&w, &admin, reference).await;
        assert_eq!(status, want, "{reference}: {body}");
    }

    // Untagged and unused: collected once the grace has passed, not before.
    let (status, text) = call(
        &w,
        &admin,
        "DELETE",
        "/v1/templates/img:stable",
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    for id in [&old, &pinned, &from_tag].map(|s| s["id"].as_str().unwrap().to_owned()) {
        let (status, text) = call(
            &w,
            &admin,
            "DELETE",
            &format!("/v1/sandboxes/{id}"),
            Body::empty(),
        )
        .await;
        assert!(status.is_success(), "{text}");
    }
    let v1_dir = dir.path().join("templates/img/v").join(&v1);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(v1_dir.exists(), "deleted before its grace ran out");
    w.clock.advance(time::Duration::seconds(61));
    let mut waited = 0;
    while v1_dir.exists() && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(!v1_dir.exists(), "an unused, untagged version is collected");
    assert!(dir.path().join("templates/img/v").join(&v2).exists());

    // Only operators change tags or remove templates.
    let body = Body::from(json!({"name": "m", "role": "member"}).to_string());
    let (_, text) = call(&w, &admin, "POST", "/v1/keys", body).await;
    let member = serde_json::from_str::<Value>(&text).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(&w, &member, "DELETE", "/v1/templates/img", Body::empty()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body = Body::from(json!({ "target": v2 }).to_string());
    let (status, _) = call(&w, &member, "PUT", "/v1/templates/img/tags/x", body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // `latest` cannot be removed alone; the whole template can.
    let latest = format!("/v1/templates/img@{v2}");
    let (status, text) = call(&w, &admin, "DELETE", &latest, Body::empty()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    let (status, text) = call(&w, &admin, "DELETE", "/v1/templates/img", Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // Gone for new sandboxes; the version a sandbox runs on stays, untagged.
    let (status, _) = create(&w, &admin, "img").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, info) = get(&w, &admin, "/v1/templates/img").await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["versions"][0]["version"], v2.as_str());
    assert_eq!(info["versions"][0]["tags"], json!([]));
    assert_eq!(info["versions"][0]["in_use"], true);
}

/// A build context holding `files` (name, content).
fn context(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<Entry> = files.iter().map(|(n, c)| Entry::File(n, c)).collect();
    testing::layer(&entries)
}

#[tokio::test]
async fn dockerfile_builds_are_refused_before_anything_runs_when_they_cannot_be_built() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let builds = "/v1/templates/app/builds";
    let refused = |status: StatusCode, text: &str, needle: &str| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains(needle), "{needle}: {text}");
    };

    let body = context(&[("Dockerfile", b"FROM base\nSTOPSIGNAL SIGINT\n")]);
    let (status, text) = call(&w, &admin, "POST", builds, Body::from(body)).await;
    refused(
        status,
        &text,
        "Dockerfile line 2: STOPSIGNAL is not supported",
    );
    let body = context(&[("other", b"x")]);
    let (status, text) = call(&w, &admin, "POST", builds, Body::from(body)).await;
    refused(status, &text, "the build context has no Dockerfile");
    let body = context(&[("Dockerfile", b"FROM base\n")]);
    let url = format!("{builds}?dockerfile=../../etc/passwd");
    let (status, text) = call(&w, &admin, "POST", &url, Body::from(body)).await;
    refused(
        status,
        &text,
        "must be a relative path inside the build context",
    );
    let (status, text) = call(&w, &admin, "POST", builds, Body::empty()).await;
    refused(status, &text, "holds no build context");
    let (status, text) = call(&w, &admin, "POST", builds, Body::from(vec![7u8; 4096])).await;
    refused(status, &text, "not a usable tar");
    let body = context(&[("Dockerfile", b"FROM base\n")]);
    let url = format!("{builds}?args=NOEQUALS");
    let (status, text) = call(&w, &admin, "POST", &url, Body::from(body)).await;
    refused(status, &text, "is not KEY=VALUE");
    let body = context(&[("Dockerfile", b"FROM base\n")]);
    let url = format!("{builds}?no_cache=maybe");
    let (status, text) = call(&w, &admin, "POST", &url, Body::from(body)).await;
    refused(
        status,
        &text,
        "no_cache: provided string was not `true` or `false`",
    );
    // A recipe's name is not for Dockerfile builds.
    let body = context(&[("Dockerfile", b"FROM tiny\n")]);
    let (status, text) = call(
        &w,
        &admin,
        "POST",
        "/v1/templates/base/builds",
        Body::from(body),
    )
    .await;
    refused(status, &text, "is the name of a recipe");

    // Templates are every team's: members may not build them.
    let body = Body::from(json!({"name": "m", "role": "member"}).to_string());
    let (_, text) = call(&w, &admin, "POST", "/v1/keys", body).await;
    let member = serde_json::from_str::<Value>(&text).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = context(&[("Dockerfile", b"FROM base\n")]);
    let (status, _) = call(&w, &member, "POST", builds, Body::from(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing was made, nor left behind.
    let (status, _) = get(&w, &admin, "/v1/templates/app").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upload-") || n.starts_with(".context-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
