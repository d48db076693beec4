//! Calls on one sandbox that race each other, over the fake runtime: each
//! answers as if it came first or last, never with a 500.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use warren_runtime::fake::{FakeRuntime, Op};
use warren_server::testing::InProcess;

use crate::fixtures::sandbox;

/// A fork that found the sandbox running, then waited for its lock while a
/// pause took it, must see the pause: 409, and the sandbox stays paused and
/// resumable. (It answered 500, "checkpointing … it is not running", under
/// the soak's three clients.)
#[tokio::test]
async fn a_fork_queued_behind_a_pause_answers_409_not_500() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(FakeRuntime::new());
    let w = InProcess::start(dir.path(), runtime.clone()).await.unwrap();
    let key = w.admin_key.clone().unwrap();
    let id = sandbox(&w, &key).await;
    let fork = format!("/v1/sandboxes/{id}/fork");
    let pause = format!("/v1/sandboxes/{id}/pause");

    // The first fork holds the sandbox's lock through a slow checkpoint;
    // the pause queues behind it, then the second fork behind the pause.
    runtime.delay(Op::Checkpoint, Duration::from_millis(400));
    let first = w.call(Some(&key), "POST", &fork, Some(json!({"count": 1})));
    let paused = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        w.call(Some(&key), "POST", &pause, None).await
    };
    let second = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        w.call(Some(&key), "POST", &fork, Some(json!({"count": 1})))
            .await
    };
    let ((first, first_body), (paused, paused_body), (second, second_body)) =
        tokio::join!(first, paused, second);
    assert_eq!(first, StatusCode::CREATED, "{first_body}");
    assert_eq!(paused, StatusCode::OK, "{paused_body}");
    assert_eq!(second, StatusCode::CONFLICT, "{second_body}");
    assert!(
        second_body["message"]
            .as_str()
            .unwrap_or("")
            .contains("paused"),
        "{second_body}"
    );

    runtime.delay(Op::Checkpoint, Duration::ZERO);
    let (status, body) = w
        .call(
            Some(&key),
            "POST",
            &format!("/v1/sandboxes/{id}/resume"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "running", "{body}");
}
