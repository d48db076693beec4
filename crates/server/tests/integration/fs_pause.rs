//! Filesystem-only pauses through the native and the E2B API, over the
//! fake runtime: what the pause body may say, what is refused, and how the
//! pause is recorded and shown until the resume. (That the processes end
//! and the start command runs again is the real runtime's, in the e2e
//! suite.)

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use warren_runtime::fake::{FakeRuntime, Op};
use warren_server::testing::InProcess;

use crate::fixtures::{e2b, start};

async fn create(w: &InProcess, key: &str, body: Value) -> String {
    let (status, created) = w.call(Some(key), "POST", "/v1/sandboxes", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn info(w: &InProcess, key: &str, id: &str) -> Value {
    let (status, info) = w
        .call(Some(key), "GET", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    info
}

async fn pause(w: &InProcess, key: &str, id: &str, body: Option<Value>) -> (StatusCode, Value) {
    w.call(
        Some(key),
        "POST",
        &format!("/v1/sandboxes/{id}/pause"),
        body,
    )
    .await
}

async fn resume(w: &InProcess, key: &str, id: &str) -> (StatusCode, Value) {
    w.call(
        Some(key),
        "POST",
        &format!("/v1/sandboxes/{id}/resume"),
        None,
    )
    .await
}

#[tokio::test]
async fn the_pause_mode_is_recorded_shown_while_paused_and_forgotten_at_resume() {
    let (w, _dir) = start().await;
    let key = w.admin_key.clone().unwrap();
    let id = create(&w, &key, json!({"template": "base"})).await;
    assert_eq!(info(&w, &key, &id).await["pause_mode"], Value::Null);

    let (status, paused) = pause(&w, &key, &id, Some(json!({"mode": "filesystem"}))).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["pause_mode"], "filesystem");
    assert_eq!(info(&w, &key, &id).await["pause_mode"], "filesystem");

    let (status, again) = pause(&w, &key, &id, Some(json!({"mode": "filesystem"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    let (status, resumed) = resume(&w, &key, &id).await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["state"], "running");
    assert_eq!(resumed["pause_mode"], Value::Null);

    // No body, an empty object and `full` are all the whole pause.
    for body in [None, Some(json!({})), Some(json!({"mode": "full"}))] {
        let (status, paused) = pause(&w, &key, &id, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body:?}: {paused}");
        assert_eq!(paused["pause_mode"], "full", "{body:?}");
        let (status, _) = resume(&w, &key, &id).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn bad_pause_bodies_and_sandboxes_that_are_not_running_are_refused() {
    let (w, _dir) = start().await;
    let key = w.admin_key.clone().unwrap();
    let id = create(&w, &key, json!({"template": "base"})).await;
    for body in [
        json!({"mode": "memory"}),
        json!({"mode": 1}),
        json!({"mode": "filesystem", "colour": "red"}),
        json!(["filesystem"]),
    ] {
        let (status, err) = pause(&w, &key, &id, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
    }
    // A body that is not declared JSON.
    let req = Request::post(format!("/v1/sandboxes/{id}/pause"))
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(r#"{"mode":"filesystem"}"#))
        .unwrap();
    let (status, err) = w.send(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(
        info(&w, &key, &id).await["state"],
        "running",
        "nothing refused paused it"
    );

    let (status, _) = w
        .call(Some(&key), "DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert!(status.is_success(), "{status}");
    let (status, err) = pause(&w, &key, &id, Some(json!({"mode": "filesystem"}))).await;
    assert!(
        status == StatusCode::CONFLICT || status == StatusCode::NOT_FOUND,
        "{status}: {err}"
    );
}

#[tokio::test]
async fn e2b_pauses_without_memory_and_auto_pauses_keep_only_the_filesystem() {
    let (w, _dir) = start().await;
    let key = w.admin_key.clone().unwrap();
    let (status, created) = e2b(
        &w,
        &key,
        "POST",
        "/sandboxes",
        Some(json!({"templateID": "base"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["sandboxID"].as_str().unwrap().to_owned();

    // Paused whole, a reboot is refused; without memory, it is taken.
    let (status, _) = e2b(&w, &key, "POST", &format!("/sandboxes/{id}/pause"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, detail) = e2b(&w, &key, "GET", &format!("/sandboxes/{id}"), None).await;
    assert_eq!(detail["pauseMode"], "full", "{detail}");
    let connect = format!("/sandboxes/{id}/connect");
    let reboot = json!({"timeout": 60, "memory": false});
    let (status, err) = e2b(&w, &key, "POST", &connect, Some(reboot.clone())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, _) = e2b(&w, &key, "POST", &connect, Some(json!({"timeout": 60}))).await;
    assert!(status.is_success(), "{status}");

    let (status, _) = e2b(
        &w,
        &key,
        "POST",
        &format!("/sandboxes/{id}/pause"),
        Some(json!({"memory": false})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, detail) = e2b(&w, &key, "GET", &format!("/sandboxes/{id}"), None).await;
    assert_eq!(detail["state"], "paused");
    assert_eq!(detail["pauseMode"], "filesystem", "{detail}");
    let (status, back) = e2b(&w, &key, "POST", &connect, Some(reboot)).await;
    assert!(status.is_success(), "{status}: {back}");
    let (_, detail) = e2b(&w, &key, "GET", &format!("/sandboxes/{id}"), None).await;
    assert_eq!(detail["state"], "running");
    assert!(detail.get("pauseMode").is_none(), "{detail}");

    // Filesystem-only auto-pauses cannot be woken by traffic.
    let both = json!({"templateID": "base", "autoPause": true, "autoPauseMemory": false,
                      "autoResume": {"enabled": true}});
    let (status, err) = e2b(&w, &key, "POST", "/sandboxes", Some(both)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");

    // The end of its lifetime pauses it, keeping only the filesystem.
    let body =
        json!({"templateID": "base", "timeout": 30, "autoPause": true, "autoPauseMemory": false});
    let (status, created) = e2b(&w, &key, "POST", "/sandboxes", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["sandboxID"].as_str().unwrap().to_owned();
    let (_, detail) = e2b(&w, &key, "GET", &format!("/sandboxes/{id}"), None).await;
    assert_eq!(detail["lifecycle"]["onTimeout"], "pause", "{detail}");
    assert_eq!(info(&w, &key, &id).await["on_idle"], "pause_filesystem");
    w.clock.advance(Duration::seconds(31));
    let mut state = String::new();
    for _ in 0..500 {
        let (_, detail) = e2b(&w, &key, "GET", &format!("/sandboxes/{id}"), None).await;
        if detail["pauseMode"] == "filesystem" {
            state = "paused".into();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        state, "paused",
        "the reaper paused it, keeping only its files"
    );
    let (status, _) = e2b(
        &w,
        &key,
        "POST",
        &format!("/sandboxes/{id}/connect"),
        Some(json!({"timeout": 60})),
    )
    .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(info(&w, &key, &id).await["state"], "running");
}

#[tokio::test]
async fn a_failed_checkpoint_leaves_the_sandbox_running_with_no_pause_mode() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = std::sync::Arc::new(FakeRuntime::new());
    let w = InProcess::start(dir.path(), runtime.clone()).await.unwrap();
    let key = w.admin_key.clone().unwrap();
    let id = create(&w, &key, json!({"template": "base"})).await;
    runtime.fail_next(Op::Checkpoint);
    let (status, err) = pause(&w, &key, &id, Some(json!({"mode": "filesystem"}))).await;
    assert!(status.is_server_error(), "{status}: {err}");
    let after = info(&w, &key, &id).await;
    assert_eq!(after["state"], "running", "{after}");
    assert_eq!(after["pause_mode"], Value::Null);
    // And it can be paused again.
    let (status, paused) = pause(&w, &key, &id, Some(json!({"mode": "filesystem"}))).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["pause_mode"], "filesystem");
}
