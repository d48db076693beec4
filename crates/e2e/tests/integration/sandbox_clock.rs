//! Time inside a sandbox across a pause: the wall clock and the monotonic
//! clock both keep running while the sandbox is paused, in standby and
//! from an image, so a timer whose deadline passed during the pause fires
//! as soon as the sandbox resumes (docs/runtime.md).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use warren_e2e::Daemon;

fn host_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Seconds since boot inside the sandbox, and its wall clock.
async fn clocks(d: &Daemon, id: &str) -> (f64, f64) {
    let out = d
        .sh(id, "cut -d' ' -f1 /proc/uptime; date +%s.%N")
        .await
        .stdout_str();
    let mut it = out.lines().map(|l| l.trim().parse::<f64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

async fn clocks_run_through_a_pause(standby: &str) {
    let d = Daemon::with_base_and(&["--standby", standby]).await;
    let id = d.create_sandbox(json!({})).await.id;
    d.sh(&id, "(sleep 2; touch /tmp/slept) >/dev/null 2>&1 &")
        .await;
    let (uptime_before, _) = clocks(&d, &id).await;
    let host_before = host_now();
    let resp = d
        .post(&format!("/v1/sandboxes/{id}/pause"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let resp = d
        .post(&format!("/v1/sandboxes/{id}/resume"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let (uptime_after, wall_after) = clocks(&d, &id).await;
    let host_after = host_now();
    // The monotonic clock counted the paused seconds...
    let host_gap = host_after - host_before;
    assert!(
        uptime_after - uptime_before > host_gap - 1.0,
        "standby {standby}: uptime moved {:.2}s while {host_gap:.2}s passed",
        uptime_after - uptime_before
    );
    // ...the wall clock is the host's...
    assert!((wall_after - host_after).abs() < 1.0, "standby {standby}");
    // ...and the sleep, due during the pause, is over.
    let out = d.sh(&id, "sleep 0.5; test -e /tmp/slept").await;
    assert_eq!(
        out.exit_code,
        Some(0),
        "standby {standby}: the sleep did not end"
    );
}

#[tokio::test]
async fn sandbox_clocks_run_through_a_standby_pause() {
    clocks_run_through_a_pause("60s").await;
}

#[tokio::test]
async fn sandbox_clocks_run_through_an_image_pause() {
    clocks_run_through_a_pause("0").await;
}
