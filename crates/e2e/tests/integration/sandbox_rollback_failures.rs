//! A rollback that cannot be done leaves a consistent sandbox: one whose
//! snapshot image is gone is refused before anything changes; one whose
//! restore fails is failed (running before) or paused as it was (paused
//! before), with the reason in its timeline. Other sandboxes go on.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_api_types::{Sandbox, SnapshotList};
use warren_e2e::Daemon;

/// Writes `/home/user/mark`, takes snapshot `name`, then writes
/// `/home/user/after`; the snapshot's image directory.
async fn snapshot_between(d: &Daemon, id: &str, name: &str) -> PathBuf {
    d.sh(id, "echo marked > /home/user/mark").await;
    let (status, body) = post(
        d,
        &format!("/v1/sandboxes/{id}/snapshots"),
        json!({"name": name}),
    )
    .await;
    assert_eq!(status, 201, "snapshot: {body}\n{}", d.log());
    d.sh(id, "echo after > /home/user/after").await;
    d.data_dir()
        .join("snapshots/images")
        .join(body["id"].as_str().unwrap())
}

async fn post(d: &Daemon, path: &str, body: Value) -> (u16, Value) {
    let resp = d.post(path).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn sandbox(d: &Daemon, id: &str) -> Sandbox {
    d.get_json(&format!("/v1/sandboxes/{id}")).await
}

/// Overwrites every file of the image with bytes no restore can read.
fn corrupt(image: &std::path::Path) {
    let mut files = 0;
    for entry in walk(image) {
        std::fs::write(&entry, b"not a checkpoint").unwrap();
        files += 1;
    }
    assert!(files > 0, "no files in {}", image.display());
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn sandbox_rollback_to_a_snapshot_whose_image_is_gone_changes_nothing() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let image = snapshot_between(&d, &sb.id, "lost").await;
    std::fs::remove_dir_all(&image).unwrap();

    let path = format!("/v1/sandboxes/{}/rollback", sb.id);
    let (status, body) = post(&d, &path, json!({"snapshot": "lost"})).await;
    assert_eq!(status, 404, "{body}\n{}", d.log());
    assert_eq!(body["code"], "not_found", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("lost its image"), "{message}");

    // The sandbox runs on as it was, the file written after the snapshot
    // still there; the snapshot shows it can no longer be restored.
    assert_eq!(sandbox(&d, &sb.id).await.state, "running");
    let out = d.sh(&sb.id, "cat /home/user/mark /home/user/after").await;
    assert_eq!(out.stdout_str(), "marked\nafter\n");
    let list: SnapshotList = d
        .get_json(&format!("/v1/sandboxes/{}/snapshots", sb.id))
        .await;
    let lost = list
        .snapshots
        .iter()
        .find(|s| s.name.as_deref() == Some("lost"))
        .unwrap();
    assert!(!lost.available);
    let (status, _) = post(&d, &path, json!({"snapshot": "lost"})).await;
    assert_eq!(status, 404);
    assert!(!d.log().contains("panicked"));
}

#[tokio::test]
async fn sandbox_rollback_whose_restore_fails_fails_a_running_one_and_keeps_a_paused_one() {
    let d = Daemon::with_base().await;
    let running = d.create_sandbox(json!({})).await;
    let paused = d.create_sandbox(json!({})).await;
    let bystander = d.create_sandbox(json!({})).await;
    let image = snapshot_between(&d, &running.id, "broken").await;
    corrupt(&image);
    let paused_image = snapshot_between(&d, &paused.id, "broken").await;
    corrupt(&paused_image);
    let (status, body) = post(&d, &format!("/v1/sandboxes/{}/pause", paused.id), json!({})).await;
    assert_eq!(status, 200, "pause: {body}");

    // A running sandbox: its instance is gone when the restore fails, so
    // it ends failed, with the reason recorded, and its resources go.
    let (status, body) = post(
        &d,
        &format!("/v1/sandboxes/{}/rollback", running.id),
        json!({"snapshot": "broken"}),
    )
    .await;
    // runsc cannot read the image: a host failure, whose detail goes to
    // the log and the audit entry.
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["code"], "internal", "{body}");
    assert_eq!(sandbox(&d, &running.id).await.state, "failed");
    let timeline: Value = d
        .get_json(&format!("/v1/sandboxes/{}/timeline", running.id))
        .await;
    let failed = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "failed")
        .unwrap_or_else(|| panic!("no failure in the timeline: {timeline}"))
        .to_string();
    assert!(failed.contains("back to snapshot"), "{failed}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.runsc_containers().contains(&running.id) {
        assert!(Instant::now() < deadline, "{:?}", d.runsc_containers());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = post(
        &d,
        &format!("/v1/sandboxes/{}/exec", running.id),
        json!({"cmd": ["true"]}),
    )
    .await;
    assert_eq!(status, 409);

    // A paused sandbox: its pause image is untouched, so it stays paused
    // and resumes as it was.
    let (status, body) = post(
        &d,
        &format!("/v1/sandboxes/{}/rollback", paused.id),
        json!({"snapshot": "broken"}),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(sandbox(&d, &paused.id).await.state, "paused");
    let timeline = d
        .get_text(&format!("/v1/sandboxes/{}/timeline", paused.id))
        .await;
    assert!(timeline.contains("stays paused as it was"), "{timeline}");
    let (status, body) = post(
        &d,
        &format!("/v1/sandboxes/{}/resume", paused.id),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "resume: {body}\n{}", d.log());
    let out = d
        .sh(&paused.id, "cat /home/user/mark /home/user/after")
        .await;
    assert_eq!(out.stdout_str(), "marked\nafter\n");

    // The daemon serves its other sandboxes throughout.
    let out = d.sh(&bystander.id, "echo fine").await;
    assert_eq!(out.stdout_str(), "fine\n");
    assert!(!d.log().contains("panicked"));
}
