//! A sandbox that dies by itself does not look alive: root inside killing
//! PID 1 (the agent), or the sandbox's kernel killed from outside, marks it
//! `failed` with the reason, in the audit log and the timeline, and its
//! resources are released.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_api_types::Sandbox;
use warren_e2e::Daemon;

/// Waits until the sandbox is `failed` and its network namespace is gone.
async fn wait_failed_and_released(d: &Daemon, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sb: Sandbox = d.get_json(&format!("/v1/sandboxes/{id}")).await;
        let netns = Path::new("/run/netns").join(format!("warren-{id}"));
        if sb.state == "failed" && !netns.exists() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sandbox {id} still {} (netns there: {})\n{}",
            sb.state,
            netns.exists(),
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The timeline's last event says why the sandbox failed.
async fn failure_recorded(d: &Daemon, id: &str) {
    let timeline: Value = d.get_json(&format!("/v1/sandboxes/{id}/timeline")).await;
    let events = timeline["events"].as_array().unwrap();
    let failed = events
        .iter()
        .find(|e| e["kind"] == "failed")
        .unwrap_or_else(|| panic!("no failure in the timeline: {timeline}"));
    let text = failed.to_string();
    assert!(text.contains("ended by themselves"), "{text}");
    assert!(text.contains("liveness"), "{text}");
}

#[tokio::test]
async fn sandbox_whose_init_is_killed_inside_is_marked_failed() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    // The exec cannot end normally: the agent that runs it goes.
    let _ = d
        .post(&format!("/v1/sandboxes/{}/exec", sb.id))
        .json(&json!({"cmd": ["kill", "-9", "1"], "user": "root"}))
        .send()
        .await;
    wait_failed_and_released(&d, &sb.id).await;
    failure_recorded(&d, &sb.id).await;
    // Calls to it say it is failed rather than hanging.
    let resp = d
        .post(&format!("/v1/sandboxes/{}/exec", sb.id))
        .json(&json!({"cmd": ["true"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409, "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn sandbox_whose_kernel_is_killed_outside_is_marked_failed() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let other = d.create_sandbox(json!({})).await;
    let status = std::process::Command::new("pkill")
        .args(["-KILL", "-f", &format!("runsc-sandbox.*{}", sb.id)])
        .status()
        .unwrap();
    assert!(status.success());
    wait_failed_and_released(&d, &sb.id).await;
    failure_recorded(&d, &sb.id).await;
    // Its neighbour is untouched.
    let out = d.exec(&other.id, json!({"cmd": ["true"]})).await;
    assert_eq!(out.exit_code, Some(0));
    let neighbour: Sandbox = d.get_json(&format!("/v1/sandboxes/{}", other.id)).await;
    assert_eq!(neighbour.state, "running");
}
