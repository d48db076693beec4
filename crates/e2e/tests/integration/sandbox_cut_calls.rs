//! Lifecycle calls whose client goes away half-way run to their end: a
//! pause, resume, named snapshot, rollback or fork cut by the client's
//! disconnect leaves the sandbox as if the client had waited, which the
//! API then shows.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_api_types::{Sandbox, SandboxList, SnapshotList};
use warren_e2e::Daemon;

/// Sends `POST path` with `body` and lets go of it after a moment, while
/// the daemon is still at work; the answer, if one came that fast, is
/// ignored.
async fn cut(d: &Daemon, path: &str, body: Value) {
    let _ = d
        .post(path)
        .timeout(Duration::from_millis(100))
        .json(&body)
        .send()
        .await;
}

/// Polls `check` until it holds (at most two minutes).
async fn until<F, Fut>(d: &Daemon, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check().await {
        assert!(Instant::now() < deadline, "never {what}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn state(d: &Daemon, id: &str) -> String {
    d.get_json::<Sandbox>(&format!("/v1/sandboxes/{id}"))
        .await
        .state
}

/// The sandbox runs commands, still has its file and its process, and has
/// no `/home/user/after` (written after the snapshot) when `rolled_back`.
async fn intact(d: &Daemon, id: &str, rolled_back: bool) {
    let out = d
        .sh(
            id,
            "cat /home/user/mark; kill -0 $(cat /home/user/pid) && echo alive; \
             test -e /home/user/after && echo after",
        )
        .await;
    let text = out.stdout_str();
    assert!(text.contains("marked"), "{text}");
    assert!(text.contains("alive"), "{text}");
    assert_eq!(text.contains("after"), !rolled_back, "{text}");
}

#[tokio::test]
async fn sandbox_lifecycle_calls_cut_by_the_client_run_to_their_end() {
    // Standby off: every resume restores the image, which takes longer
    // than the client waits.
    let d = Daemon::with_base_and(&["--standby", "0"]).await;
    let sb = d.create_sandbox(json!({})).await;
    let id = sb.id.as_str();
    d.sh(
        id,
        "echo marked > /home/user/mark; (sleep 100000 >/dev/null 2>&1 & echo $! > /home/user/pid)",
    )
    .await;

    cut(&d, &format!("/v1/sandboxes/{id}/pause"), json!({})).await;
    until(&d, "paused", || async { state(&d, id).await == "paused" }).await;

    cut(&d, &format!("/v1/sandboxes/{id}/resume"), json!({})).await;
    until(&d, "resumed", || async { state(&d, id).await == "running" }).await;
    intact(&d, id, true).await;

    cut(
        &d,
        &format!("/v1/sandboxes/{id}/snapshots"),
        json!({"name": "cut"}),
    )
    .await;
    until(&d, "snapshot listed", || async {
        let list: SnapshotList = d.get_json(&format!("/v1/sandboxes/{id}/snapshots")).await;
        list.snapshots
            .iter()
            .any(|s| s.name.as_deref() == Some("cut") && s.available)
    })
    .await;
    until(&d, "running after the snapshot", || async {
        state(&d, id).await == "running"
    })
    .await;
    d.sh(id, "echo after > /home/user/after").await;
    intact(&d, id, false).await;

    cut(
        &d,
        &format!("/v1/sandboxes/{id}/rollback"),
        json!({"snapshot": "cut"}),
    )
    .await;
    until(&d, "rolled back", || async {
        if state(&d, id).await != "running" {
            return false;
        }
        let out = d.sh(id, "test -e /home/user/after || echo gone").await;
        out.stdout_str().contains("gone")
    })
    .await;
    intact(&d, id, true).await;

    cut(&d, &format!("/v1/sandboxes/{id}/fork"), json!({"count": 2})).await;
    let branches = || async {
        let list: SandboxList = d.get_json("/v1/sandboxes").await;
        list.sandboxes
            .into_iter()
            .filter(|s| s.id != id)
            .collect::<Vec<_>>()
    };
    until(&d, "forked", || async {
        let branches = branches().await;
        branches.len() == 2 && branches.iter().all(|b| b.state == "running")
    })
    .await;
    let branches = branches().await;
    for branch in &branches {
        intact(&d, &branch.id, true).await;
    }
    intact(&d, id, true).await;

    // No image was left half-written.
    let staging = d.data_dir().join("snapshots/staging");
    let staged: Vec<_> = std::fs::read_dir(&staging).unwrap().collect();
    assert!(staged.is_empty(), "{staged:?}");
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
}
